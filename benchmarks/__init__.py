"""Benchmark scripts, run from the project root: python -m benchmarks.<name> --help."""
import mnist_stn  # noqa: F401 (first: it quiets TensorFlow's C++ start-up log)
