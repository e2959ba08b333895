"""The second tutorial: an STN-CNN with batch norm on captcha letters A-Z, 60x60 RGB.

Its own wing of the project, in the same TF1 style as the MNIST port: ``data`` draws and
caches the letters, ``model`` builds the graph, and ``python -m letters.train`` /
``python -m letters.predict`` run it, with the runs named in ``configs/``. It reuses the
MNIST port's ``transformer.py`` and the ``mnist_stn`` package (shim, batching, configs,
checkpoints, training loop, figures); nothing of the MNIST port imports it.
"""
import mnist_stn  # noqa: F401 (first: it quiets TensorFlow's C++ start-up log)
