"""transformer.py copied out alone runs on TensorFlow 2 as it is: eagerly, and inside a
Keras layer whose loc net learns through it, for every transformer it declares.

The script runs in a fresh interpreter that sees only a copy of transformer.py (no
mnist_stn, so no compat.v1 graph mode), as a user's own project would. The layer is the
one the README shows.
"""
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import transformer

SCRIPT = textwrap.dedent('''
    import json, os, sys
    import numpy as np
    import tensorflow as tf
    import keras

    import transformer

    class SpatialTransformer(keras.layers.Layer):
        """A loc net and transformer.py's STN: (B, H, W, C) -> (B, H, W, C)."""

        def __init__(self, transform="affine", **kwargs):
            super().__init__(**kwargs)
            kind = transformer.TRANSFORMS[transform]
            self.transform = transform
            self.loc = keras.Sequential([
                keras.layers.Flatten(), keras.layers.Dense(32, activation="tanh"),
                # zero weights, the identity as bias: every image starts as it is
                keras.layers.Dense(kind.size, kernel_initializer="zeros",
                                   bias_initializer=keras.initializers.Constant(
                                       kind.identity))])

        def call(self, images):
            return transformer.spatial_transformer_network(images, self.loc(images),
                                                           transform=self.transform)

    assert tf.executing_eagerly()
    assert "mnist_stn" not in sys.modules
    rng = np.random.RandomState(0)
    # a bright square left or right of the centre: the class is the side
    labels = rng.randint(0, 2, 64)
    images = np.zeros((64, 12, 12, 1), np.float32)
    for image, label in zip(images, labels):
        row, col = rng.randint(2, 7), (1 if label == 0 else 7) + rng.randint(0, 2)
        image[row:row + 4, col:col + 3] = 1.0
    out = {}
    for transform in transformer.TRANSFORMS:
        keras.utils.set_random_seed(0)
        stn = SpatialTransformer(transform)
        model = keras.Sequential([keras.Input((12, 12, 1)), stn, keras.layers.Flatten(),
                                  keras.layers.Dense(2)])
        identity = float(np.abs(stn(images[:8]).numpy() - images[:8]).max())
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(images) ** 2)
        grads = tape.gradient(loss, stn.loc.trainable_variables)
        before = [v.numpy().copy() for v in stn.loc.trainable_variables]
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.
                      SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(images, labels, epochs=3, batch_size=16, verbose=0)
        moved = max(float(np.abs(v.numpy() - b).max())
                    for v, b in zip(stn.loc.trainable_variables, before))
        out[transform] = {"identity_error": identity,
                          "loc_gradient": max(float(np.abs(g.numpy()).max()) for g in grads),
                          "loc_moved": moved, "losses": history.history["loss"]}
    print(json.dumps(out))
''')


@pytest.mark.slow
def test_transformer_py_alone_trains_inside_a_keras_model(tmp_path):
    shutil.copy(Path(transformer.__file__), tmp_path / "transformer.py")
    (tmp_path / "run.py").write_text(SCRIPT)
    done = subprocess.run([sys.executable, "run.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(out) == set(transformer.TRANSFORMS)
    for transform, r in out.items():
        assert r["identity_error"] < 1e-6, transform       # starts as the identity
        assert r["loc_gradient"] > 0, transform            # the loss reaches the loc net
        assert r["loc_moved"] > 0, transform               # and training moves it
        assert all(np.isfinite(r["losses"])), transform
