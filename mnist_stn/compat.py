"""The one place that chooses the TensorFlow API.

Everything else in the project does ``from mnist_stn.compat import tf`` and is then
written as TensorFlow 1 graph code: placeholders, variable scopes, sessions, savers.
On TensorFlow 2 that API lives in ``tensorflow.compat.v1``; turning the v2 behaviour
off (eager execution, resource variables, v2 control flow) makes it act like TF 1.x.
"""
import mnist_stn  # noqa: F401 (its import quiets TensorFlow's C++ log first)
import tensorflow.compat.v1 as tf

# Quiet Python-side deprecation notices (set first: disabling v2 emits one itself).
tf.logging.set_verbosity(tf.logging.ERROR)
tf.disable_v2_behavior()

__all__ = ["tf"]
