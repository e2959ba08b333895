"""Batch norm statistics re-estimated after training, against NumPy."""
import numpy as np
import pytest

from benchmarks import bn_stats
from letters import model
from letters.data import CHANNELS, SIZE
from mnist_stn.compat import tf


@pytest.mark.parametrize("renorm", [False, True])
def test_population_statistics_of_one_layer(renorm):
    # 10 inputs in batches of 4, 4, 2: the unequal last batch must count for less
    rng = np.random.RandomState(3)
    x = (rng.randn(10, 2, 3, 2) * [3.0, 0.5] + [2.0, -1.0]).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        images = tf.placeholder(tf.float32, [None, 12])
        training = tf.placeholder_with_default(False, [])
        out = model.batch_norm(tf.reshape(images, [-1, 2, 3, 2]), training, renorm=renorm)
        g = {"images": images, "training": training,
             "keep_prob": tf.placeholder_with_default(1.0, []),
             "loc_keep_prob": tf.placeholder_with_default(1.0, [])}
        sess.run(tf.global_variables_initializer())
        [(mean, variance)] = bn_stats.reestimate(sess, g, x.reshape(10, 12), batch_size=4)
        got = sess.run(out, {images: x.reshape(10, 12)})
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(variance, x.var(axis=(0, 1, 2)), rtol=1e-4)
    expected = (x - x.mean(axis=(0, 1, 2))) / np.sqrt(x.var(axis=(0, 1, 2)) + model.BN_EPSILON)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def tiny_model(seed, count, stn, norm):
    """(count, pixels) random letters and a letters model 5% wide, built in the default
    graph with graph seed 0: its nodes."""
    batch = np.random.RandomState(seed).rand(count, SIZE * SIZE * CHANNELS).astype(np.float32)
    tf.set_random_seed(0)
    return batch, model.build_graph({"stn": stn, "width": 0.05, "bn": "after-relu",
                                     "pixel_range": "0,1", "norm": norm,
                                     "transform": "affine"})


def test_plain_model_then_tests_as_it_trains():
    # re-estimated on one batch, plain batch norm at test time sees exactly that batch's
    # statistics in every layer: inference equals training mode without dropout
    with tf.Graph().as_default(), tf.Session() as sess:
        batch, g = tiny_model(4, 6, stn=True, norm="plain")
        sess.run(tf.global_variables_initializer())
        before = sess.run(g["logits"], {g["images"]: batch})
        layers = bn_stats.reestimate(sess, g, batch, batch_size=len(batch))
        assert len(layers) == 6        # three in the loc net, three in the classifier
        tested = sess.run(g["logits"], {g["images"]: batch})
        trained = sess.run(g["logits"], {g["images"]: batch, g["training"]: True})
    assert np.abs(before - trained).max() > 1e-3   # the check below means something
    np.testing.assert_allclose(tested, trained, rtol=1e-4, atol=1e-5)


def test_stn_effect_reads_zoom_and_centring():
    # a fake restored model whose STN zooms x2 about the centre: the sampled area is a
    # quarter, and a letter 10 px right of the centre is shown 20 px right of it
    from benchmarks import letters as bench

    class Zoom:
        def run(self, images, names):
            return {"theta": np.tile([0.5, 0, 0, 0, 0.5, 0], (len(images), 1))}

    image = np.ones((SIZE, SIZE, CHANNELS))
    image[28:32, 38:42] = 0.0                       # dark ink centred at x 39.5, y 29.5
    effect = bench.stn_effect(Zoom(), image.reshape(1, -1))
    assert effect["theta_det_mean"] == pytest.approx(0.25)
    assert effect["ink_offset_before_px"] == pytest.approx(10.0)
    assert effect["ink_offset_after_px"] == pytest.approx(20.0)
    assert "letter_offset_before_px" not in effect          # no strokes given
    # the letter's own strokes, 10 px above the centre, apart from the image's dark ink
    strokes = np.zeros((1, SIZE, SIZE), bool)
    strokes[0, 18:22, 28:32] = True                 # centred at x 29.5, y 19.5
    effect = bench.stn_effect(Zoom(), image.reshape(1, -1), strokes)
    assert effect["letter_offset_before_px"] == pytest.approx(10.0)
    assert effect["letter_offset_after_px"] == pytest.approx(20.0)
    assert effect["ink_offset_before_px"] == pytest.approx(10.0)


def test_renorm_model_reestimated_layer_by_layer():
    # batch renorm after a few updates: re-estimated on one batch, every layer's new
    # moving statistics are those of its inputs as the test sees them (inference mode,
    # the layers before it using their new statistics), not as training mode does
    with tf.Graph().as_default(), tf.Session() as sess:
        batch, g = tiny_model(6, 8, stn=False, norm="renorm")
        updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        sess.run(tf.global_variables_initializer())
        for _ in range(3):   # the moving averages move away from their start
            sess.run(updates, {g["images"]: batch, g["training"]: True, g["keep_prob"]: 0.5})
        bn_stats.reestimate(sess, g, batch, batch_size=len(batch))
        layers = sess.graph.get_collection(model.BN_LAYERS)
        seen = sess.run([(l.batch_mean, l.batch_variance) for l in layers], {g["images"]: batch})
        kept = sess.run([(l.moving_mean, l.moving_spread) for l in layers])
    assert len(layers) == 3
    for (mean, variance), (moving_mean, moving_stddev) in zip(seen, kept):
        np.testing.assert_allclose(moving_mean, mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(moving_stddev, np.sqrt(variance + model.BN_EPSILON),
                                   rtol=1e-4, atol=1e-5)
