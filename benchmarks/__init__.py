"""Benchmark scripts, run from the project root: python -m benchmarks.<name> --help."""
