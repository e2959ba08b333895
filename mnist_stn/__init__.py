"""Support package of the STN-on-MNIST port: TF1 shim, constants, data and distortions,
the training loop, checkpoints, figures. ``model.py`` builds the graph; ``train.py`` and
``predict.py`` are the entry points that use both."""
