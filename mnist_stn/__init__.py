"""Support package of the STN-on-MNIST port: TF1 shim, constants, data and distortions,
the training loop, checkpoints, figures. ``model.py`` builds the graph; ``train.py`` and
``predict.py`` are the entry points that use both.

Importing the package first quiets TensorFlow's C++ start-up log (CPU feature notes,
MLIR and graph-rewrite lines) before anything loads TensorFlow, so every entry point
imports it before ``model`` or ``transformer``. A user's own setting wins.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
