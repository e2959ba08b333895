"""Support package for the STN-on-MNIST port: TF1 shim, constants, data, figures."""
