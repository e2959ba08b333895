"""The speed benchmark's sampler variants compute what transformer.py computes, so the
benchmark compares speeds of the same thing: values and both gradients, in float32."""
import numpy as np
import pytest

import transformer
from benchmarks import sampler_before, sampler_native, speed
from mnist_stn.compat import tf


def forward_and_gradients(module, images, thetas, out_dims, weights):
    with tf.Graph().as_default(), tf.Session() as sess:
        img = tf.placeholder(tf.float32, [None] + list(images.shape[1:]))
        theta = tf.placeholder(tf.float32, [None, 6])
        out = module.spatial_transformer_network(img, theta, out_dims=out_dims)
        grads = tf.gradients(tf.reduce_sum(out * weights), [img, theta])
        return sess.run([out] + grads, {img: images, theta: thetas})


@pytest.mark.parametrize("module", [sampler_before, sampler_native])
@pytest.mark.parametrize("shape,out_dims", [((3, 7, 8, 2), [6, 9]), ((2, 16, 12, 3), [5, 4]),
                                            ((2, 28, 28, 1), [28, 28])])
def test_variant_matches_the_sampler(module, shape, out_dims):
    rng = np.random.RandomState(7)
    images = rng.rand(*shape).astype(np.float32)
    # big enough to leave the image in places; off the identity, whose points sit on
    # pixel centres, where bilinear sampling has kinks and either one-sided slope will do
    thetas = (np.array(transformer.IDENTITY_THETA)
              + rng.uniform(-0.6, 0.6, (shape[0], 6))).astype(np.float32)
    weights = rng.rand(shape[0], *out_dims, shape[3]).astype(np.float32)
    want = forward_and_gradients(transformer, images, thetas, out_dims, weights)
    got = forward_and_gradients(module, images, thetas, out_dims, weights)
    assert np.abs(want[2]).max() > 1.0    # the theta gradients compared below are not ~0
    for name, a, b in zip(("output", "image gradient", "theta gradient"), got, want):
        scale = max(1.0, np.abs(b).max())   # float32 coordinates: 1e-5 as the sampler tests
        np.testing.assert_allclose(a, b, atol=1e-5 * scale, rtol=0, err_msg=name)


def test_native_variant_returns_the_input_at_the_identity():
    images = np.random.RandomState(3).rand(2, 28, 28, 1).astype(np.float32)
    thetas = np.tile(np.array(transformer.IDENTITY_THETA, np.float32), (2, 1))
    out = forward_and_gradients(sampler_native, images, thetas, [28, 28], images)[0]
    np.testing.assert_array_equal(out, images)


def test_sampler_table_shows_every_variant_timed():
    records = {"sampler": {"sizes": {"50 x 28x28x1 -> 28x28": {"before": 2.0, "now": 1.0,
                                                               "native": 1.6}},
                           "calls": 5, "command": "c", "machine": "m", "date": "d"}}
    row = next(line for line in speed.table(records).splitlines() if line.startswith("| 50"))
    assert row == "| 50 x 28x28x1 -> 28x28 | 2.00 | 1.00 | 2.00x | 1.60 | 1.25x |"


@pytest.mark.slow
def test_the_transformers_part_times_each_transformer_and_keeps_its_record(tmp_path, capsys):
    results = tmp_path / "speed.json"
    speed.main(["--parts", "transformers", "--steps", "1", "--calls", "1",
                "--results", str(results)])
    table = (tmp_path / "speed.md").read_text()
    for name in ("affine", "projective", "tps"):
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        assert all(float(cell) > 0 for cell in row.strip("| ").split(" | ")[1:4])
    with pytest.raises(SystemExit) as stop:        # a second trial: refused, record kept
        speed.main(["--parts", "transformers", "--results", str(results)])
    assert stop.value.code == 2 and "transformers already recorded" in capsys.readouterr().err
