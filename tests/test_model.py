"""The graph: parameter counts, scopes, and what the untrained STN does."""
import numpy as np
import pytest

import model
import transformer
from mnist_stn.compat import tf
from mnist_stn.constants import IMAGE_PIXELS, IMAGE_SIZE, NUM_CLASSES

# Counted by hand from the layer sizes (weights + biases):
LOC_NET_PARAMS = (5 * 5 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64) \
    + (1024 * 32 + 32) + (32 * 6 + 6)                      # 52,326
CLASSIFIER_PARAMS = (5 * 5 * 1 * 32 + 32) + (5 * 5 * 32 * 64 + 64) \
    + (7 * 7 * 64 * 1024 + 1024) + (1024 * 10 + 10)        # 3,274,634


def build(use_stn, image_size=IMAGE_SIZE):
    images = tf.placeholder(tf.float32, [None, image_size * image_size])
    keep_prob = tf.placeholder_with_default(1.0, [])
    loc_keep_prob = tf.placeholder_with_default(1.0, [])
    logits, rectified = model.forward(images, keep_prob, loc_keep_prob, use_stn=use_stn,
                                      image_size=image_size)
    return images, logits, rectified


def count(variables):
    return sum(int(np.prod(v.shape.as_list())) for v in variables)


def test_parameter_counts():
    with tf.Graph().as_default():
        build(use_stn=True)
        loc = [v for v in tf.trainable_variables() if v.name.startswith("loc_layer_")]
        rest = [v for v in tf.trainable_variables() if not v.name.startswith("loc_layer_")]
        assert count(loc) == LOC_NET_PARAMS
        assert count(rest) == CLASSIFIER_PARAMS
        assert sorted({v.name.split("/")[0] for v in loc}) == \
            ["loc_layer_1", "loc_layer_2", "loc_layer_3", "loc_layer_4"]
    with tf.Graph().as_default():
        build(use_stn=False)
        assert count(tf.trainable_variables()) == CLASSIFIER_PARAMS


def test_the_identity_head_starts_at_exactly_the_identity():
    batch = np.random.RandomState(4).rand(2, IMAGE_PIXELS).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        g = model.build_graph({"stn": True, "image_size": 28, "loc_head": "identity",
                               "loc_start_scale": 1.0, "transform": "affine"})
        assert count(g["loc_variables"]) == LOC_NET_PARAMS
        sess.run(tf.global_variables_initializer())
        np.testing.assert_array_equal(sess.run(g["theta"], {g["images"]: batch}),
                                      np.tile([1, 0, 0, 0, 1, 0], (2, 1)))


def test_canvas_sizes():
    # A 60x60 canvas: the loc net's FC reads 8*8*64 features; the STN samples 28x28,
    # so the classifier is the 28x28 one; the baseline's FC reads 15*15*64.
    loc_60 = LOC_NET_PARAMS + (8 * 8 * 64 - 1024) * 32
    with tf.Graph().as_default(), tf.Session() as sess:
        images, logits, rectified = build(use_stn=True, image_size=60)
        loc = [v for v in tf.trainable_variables() if v.name.startswith("loc_layer_")]
        assert count(loc) == loc_60
        assert count(tf.trainable_variables()) == loc_60 + CLASSIFIER_PARAMS
        sess.run(tf.global_variables_initializer())
        out_logits, out_rect = sess.run([logits, rectified], {images: np.zeros((2, 3600))})
    assert out_logits.shape == (2, NUM_CLASSES) and out_rect.shape == (2, 28, 28, 1)
    with tf.Graph().as_default():
        _, logits, rectified = build(use_stn=False, image_size=42)
        assert rectified.shape.as_list() == [None, 42, 42, 1]
        assert count(tf.trainable_variables()) == \
            CLASSIFIER_PARAMS + (11 * 11 * 64 - 7 * 7 * 64) * 1024


def test_output_shapes():
    with tf.Graph().as_default(), tf.Session() as sess:
        images, logits, rectified = build(use_stn=True)
        sess.run(tf.global_variables_initializer())
        out_logits, out_rect = sess.run([logits, rectified],
                                        {images: np.random.rand(3, IMAGE_PIXELS)})
    assert out_logits.shape == (3, NUM_CLASSES)
    assert out_rect.shape == (3, IMAGE_SIZE, IMAGE_SIZE, 1)
    assert np.all(np.isfinite(out_logits))


def test_baseline_passes_images_through():
    batch = np.random.RandomState(0).rand(2, IMAGE_PIXELS).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        images, _, rectified = build(use_stn=False)
        out = sess.run(rectified, {images: batch})
    np.testing.assert_array_equal(out.reshape(2, -1), batch)


def test_untrained_stn_zooms_by_tanh_of_identity():
    # With the last weights at zero, theta = tanh([1, 0, 0, 0, 1, 0]): a zoom by
    # tanh(1) = 0.76 about the centre, not the identity (see loc_net's docstring).
    batch = np.random.RandomState(1).rand(2, IMAGE_PIXELS).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        images, _, rectified = build(use_stn=True)
        sess.run(tf.global_variables_initializer())
        w_last = [v for v in tf.global_variables()
                  if v.name == "loc_layer_4/weights:0"][0]
        sess.run(w_last.assign(tf.zeros_like(w_last)))
        got = sess.run(rectified, {images: batch})

        theta = np.tanh(np.array([[1.0, 0, 0, 0, 1.0, 0]] * 2, np.float32))
        expected = sess.run(transformer.spatial_transformer_network(
            tf.constant(batch.reshape(2, IMAGE_SIZE, IMAGE_SIZE, 1)), tf.constant(theta)))
    assert abs(theta[0, 0] - 0.7616) < 1e-4
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not np.allclose(got.reshape(2, -1), batch, atol=1e-3)


def test_identity_loc_head_starts_every_image_at_the_identity():
    # zero last weights and no tanh: theta is exactly the identity whatever the input,
    # so the untrained STN passes a 42x42 canvas through, resampled to 28x28
    batch = np.random.RandomState(2).rand(3, 42 * 42).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        images = tf.placeholder(tf.float32, [None, 42 * 42])
        model.forward(images, 1.0, 1.0, image_size=42, loc_head="identity")
        theta = tf.get_default_graph().get_tensor_by_name("theta:0")
        sess.run(tf.global_variables_initializer())
        got = sess.run(theta, {images: batch})
    np.testing.assert_array_equal(got, np.tile([1, 0, 0, 0, 1, 0], (3, 1)))
    with tf.Graph().as_default(), tf.Session() as sess:    # the tutorial's: per image
        images = tf.placeholder(tf.float32, [None, 42 * 42])
        model.forward(images, 1.0, 1.0, image_size=42)
        theta = tf.get_default_graph().get_tensor_by_name("theta:0")
        sess.run(tf.global_variables_initializer())
        got = sess.run(theta, {images: batch})
    assert np.abs(got - np.tanh([1, 0, 0, 0, 1, 0])).max() > 0.01


def test_a_zoomed_start_samples_the_centre_of_the_canvas():
    # start_scale 0.5 on a 57x57 canvas: theta is [0.5, 0, 0, 0, 0.5, 0] for every image,
    # and the 28x28 output samples the central 29x29 pixels at 28/27 px steps; on a canvas
    # that is linear in x and y, bilinear sampling is exact, so NumPy's values are known
    size, s = 57, 0.5
    x = np.arange(size, dtype=np.float32)
    canvas = (x[None, :] + 100 * x[:, None]).reshape(1, -1)    # value = col + 100 row
    with tf.Graph().as_default(), tf.Session() as sess:
        images = tf.placeholder(tf.float32, [None, size * size])
        _, rectified = model.forward(images, 1.0, 1.0, image_size=size, loc_head="identity",
                                     loc_start_scale=s)
        theta = tf.get_default_graph().get_tensor_by_name("theta:0")
        sess.run(tf.global_variables_initializer())
        got_theta, got = sess.run([theta, rectified], {images: np.tile(canvas, (2, 1))})
    np.testing.assert_array_equal(got_theta, np.tile([s, 0, 0, 0, s, 0], (2, 1)))
    centre, half = (size - 1) / 2, s * (size - 1) / 2          # 28 and 14 pixels
    line = np.linspace(centre - half, centre + half, IMAGE_SIZE)  # 14 .. 42
    expected = line[None, :] + 100 * line[:, None]
    np.testing.assert_allclose(got[0, :, :, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(got[1, :, :, 0], expected, rtol=1e-5)


def test_build_graph_feeds_train_and_predict():
    # the nodes both scripts use: loss and accuracy against NumPy on fixed logits
    with tf.Graph().as_default(), tf.Session() as sess:
        g = model.build_graph({"stn": True, "image_size": 28, "loc_head": "tutorial",
                               "loc_start_scale": 1.0, "transform": "affine"})
        assert g["input_shape"] == (28, 28, 1) and g["theta"] is not None
        sess.run(tf.global_variables_initializer())
        batch = np.random.RandomState(3).rand(4, IMAGE_PIXELS).astype(np.float32)
        labels = np.array([0, 1, 2, 3])
        logits, loss, acc, correct = sess.run(
            [g["logits"], g["loss"], g["accuracy"], g["num_correct"]],
            {g["images"]: batch, g["labels"]: labels})
    shifted = logits - logits.max(1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    np.testing.assert_allclose(loss, -log_softmax[np.arange(4), labels].mean(), rtol=1e-5)
    hits = (logits.argmax(1) == labels).sum()
    assert correct == hits and acc == hits / 4
    with tf.Graph().as_default():
        g = model.build_graph({"stn": False, "image_size": 42, "loc_head": "tutorial"})
        assert g["theta"] is None and g["rectified"].shape.as_list() == [None, 42, 42, 1]


def test_describe_names_model_transformer_and_distortion():
    assert model.describe({"stn": True, "loc_head": "tutorial", "distortion": "none",
                           "transform": "affine"}) == "STN (affine)"
    assert model.describe({"stn": False, "loc_head": "identity", "distortion": "RTS",
                           "transform": "affine"}) == "CNN on RTS"
    assert model.describe({"stn": True, "loc_head": "identity", "distortion": "R",
                           "transform": "tps"}) == "STN (tps, identity loc head) on R"


def started(transform, batch):
    """theta and the STN's output of a fresh identity head zoomed in (s = 0.5)."""
    with tf.Graph().as_default(), tf.Session() as sess:
        g = model.build_graph({"stn": True, "image_size": 42, "loc_head": "identity",
                               "transform": transform, "loc_start_scale": 0.5})
        sess.run(tf.global_variables_initializer())
        return sess.run([g["theta"], g["rectified"]], {g["images"]: batch})


@pytest.mark.parametrize("transform, size", [("affine", 6), ("projective", 8), ("tps", 32)])
def test_each_transformer_starts_at_its_identity(transform, size):
    # the identity head: zero last weights, the bias the transformer's identity; zoomed
    # in, every transformer first samples the same region: the canvas's centre
    batch = np.random.RandomState(5).rand(2, 42 * 42).astype(np.float32)
    theta, rectified = started(transform, batch)
    assert theta.shape == (2, size)
    np.testing.assert_array_equal(theta, np.tile(model.start_theta(transform, 0.5), (2, 1)))
    _, affine = started("affine", batch)
    np.testing.assert_allclose(rectified, affine, atol=1e-5, rtol=0)


@pytest.mark.parametrize("transform", ["projective", "tps"])
def test_the_tutorial_head_takes_any_transformer(transform):
    # tanh over the transformer's identity bias plus the random last weights' term:
    # with those weights zeroed, theta is tanh(identity) exactly
    batch = np.random.RandomState(6).rand(3, IMAGE_PIXELS).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        g = model.build_graph({"stn": True, "image_size": 28, "loc_head": "tutorial",
                               "loc_start_scale": 1.0, "transform": transform})
        sess.run(tf.global_variables_initializer())
        theta = sess.run(g["theta"], {g["images"]: batch})
        assert theta.shape == (3, len(model.start_theta(transform)))
        assert np.abs(theta).max() < 1 and theta.std(0).max() > 0     # tanh, and random
        weights = [v for v in tf.global_variables() if v.name == "loc_layer_4/weights:0"][0]
        sess.run(weights.assign(tf.zeros_like(weights)))
        np.testing.assert_allclose(sess.run(g["theta"], {g["images"]: batch}),
                                   np.tile(np.tanh(model.start_theta(transform)), (3, 1)),
                                   rtol=1e-6)
    with tf.Graph().as_default(), pytest.raises(ValueError, match="loc_head must be one of"):
        model.build_graph({"stn": True, "image_size": 28, "loc_head": "tanh",
                           "loc_start_scale": 1.0, "transform": transform})
