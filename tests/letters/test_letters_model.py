"""The second tutorial's letters model: batch norm, AMSGrad, the graph, a short run."""
import json
import re

import numpy as np
import pytest

from letters import data as letters_data
from letters import model, predict, train
from letters.data import LETTERS, NUM_LETTERS, SIZE
from mnist_stn import checkpoints, configs, images
from mnist_stn.optimizers import AMSGradOptimizer
from mnist_stn.compat import tf
from mnist_stn.constants import PIXEL_RANGES

PIXELS = SIZE * SIZE * 3


def count(variables):
    return sum(int(np.prod(v.shape.as_list())) for v in variables)


def seed_cnn_params(channels_in):
    """The seed's cnn(), counted by hand: conv weights + biases, BN gamma + beta."""
    return (5 * 5 * channels_in * 512 + 512 + 2 * 512) \
        + (3 * 3 * 512 * 256 + 256 + 2 * 256) + (3 * 3 * 256 * 64 + 64 + 2 * 64)


def build(use_stn=True, width=1.0, bn="after-relu", pixel_range="0,1"):
    inputs = tf.placeholder(tf.float32, [None, PIXELS])
    training = tf.placeholder_with_default(False, [])
    logits, rectified = model.forward(inputs, training, 1.0, 1.0, use_stn=use_stn,
                                      width=width, bn=bn, pixel_range=pixel_range)
    return inputs, training, logits, rectified


def test_parameter_counts_match_the_seed():
    loc = seed_cnn_params(3) + (3 * 3 * 64 * 20 + 20) + (20 * 6 + 6)
    classifier = seed_cnn_params(3) + (3 * 3 * 64 * 26 + 26)
    with tf.Graph().as_default():
        build(use_stn=True)
        variables = tf.trainable_variables()
        assert count([v for v in variables if v.name.startswith("loc_net/")]) == loc
        assert count([v for v in variables if v.name.startswith("classifier/")]) == classifier
        assert count(variables) == loc + classifier
        # each batch renorm layer keeps four moving averages beside, not among the
        # trainables: mean and stddev for inference, and for r and d
        assert count(tf.global_variables()) - count(variables) == 2 * 4 * (512 + 256 + 64)
    with tf.Graph().as_default():
        build(use_stn=False)
        assert count(tf.trainable_variables()) == classifier


def test_width_multiplier_scales_channels():
    with tf.Graph().as_default():
        build(width=0.25)
        shapes = {v.name: v.shape.as_list() for v in tf.trainable_variables()}
    assert shapes["loc_net/conv_1/weights:0"] == [5, 5, 3, 128]
    assert shapes["classifier/conv_3/weights:0"] == [3, 3, 64, 16]
    assert shapes["loc_net/conv_4/weights:0"] == [3, 3, 16, 5]     # 20 * 0.25
    assert shapes["loc_net/fc/weights:0"] == [5, 6]
    assert shapes["classifier/conv_4/weights:0"] == [3, 3, 16, NUM_LETTERS]


@pytest.mark.parametrize("pixel_range", PIXEL_RANGES)
def test_untrained_stn_is_the_identity(pixel_range):
    # zero loc weights and the identity bias: the STN returns its input, and the
    # returned images are in [0, 1] whatever range the model works in
    rng = np.random.RandomState(0)
    batch = rng.rand(3, PIXELS).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        inputs, training, logits, rectified = build(width=0.125, pixel_range=pixel_range)
        sess.run(tf.global_variables_initializer())
        theta = tf.get_default_graph().get_tensor_by_name("theta:0")
        out, thetas, out_logits = sess.run([rectified, theta, logits],
                                           {inputs: batch, training: True})
    np.testing.assert_array_equal(thetas, np.tile([1, 0, 0, 0, 1, 0], (3, 1)))
    np.testing.assert_allclose(out.reshape(3, -1), batch, atol=1e-5)
    assert out_logits.shape == (3, NUM_LETTERS) and (out_logits >= 0).all()  # seed's ReLU


def test_batch_norm_against_numpy():
    rng = np.random.RandomState(1)
    x = (rng.randn(4, 3, 5, 2) * [2.0, 0.5] + [1.0, -3.0]).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        inputs = tf.placeholder(tf.float32, x.shape)
        training = tf.placeholder_with_default(False, [])
        out = model.batch_norm(inputs, training, renorm=False, momentum=0.9, epsilon=1e-3)
        updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        assert len(updates) == 2
        sess.run(tf.global_variables_initializer())
        # inference before any update: moving mean 0, variance 1
        np.testing.assert_allclose(sess.run(out, {inputs: x}), x / np.sqrt(1 + 1e-3),
                                   rtol=1e-5)
        trained = sess.run(out, {inputs: x, training: True})
        mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
        np.testing.assert_allclose(trained, (x - mean) / np.sqrt(var + 1e-3), atol=1e-5)
        sess.run(updates, {inputs: x})
        sess.run(updates, {inputs: x})
        moving_mean = mean * (1 - 0.9 ** 2)               # two steps from 0 towards mean
        moving_var = 0.9 ** 2 + var * (1 - 0.9 ** 2)      # and from 1 towards var
        np.testing.assert_allclose(sess.run(out, {inputs: x}),
                                   (x - moving_mean) / np.sqrt(moving_var + 1e-3),
                                   rtol=1e-4, atol=1e-5)


def test_batch_renorm_against_numpy():
    # Keras' renorm=True: train on (x_B * r + d), r = sigma_B / sigma, d = (mu_B - mu) / sigma
    # from moving averages at renorm_momentum, r and d constants for the gradient; test
    # on the moving mean and standard deviation (momentum)
    rng = np.random.RandomState(2)
    x = (rng.randn(4, 3, 5, 2) * [2.0, 0.5] + [1.0, -3.0]).astype(np.float32)
    w = rng.rand(*x.shape)
    eps, momentum, renorm_momentum = 1e-3, 0.9, 0.8
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    std = np.sqrt(var + eps)

    def trained(x_in, r, d):      # NumPy, r and d held fixed
        m, v = x_in.mean(axis=(0, 1, 2)), x_in.var(axis=(0, 1, 2))
        return (x_in - m) / np.sqrt(v + eps) * r + d

    with tf.Graph().as_default(), tf.Session() as sess:
        inputs = tf.placeholder(tf.float32, x.shape)
        training = tf.placeholder_with_default(False, [])
        out = model.batch_norm(inputs, training, renorm=True, momentum=momentum, epsilon=eps,
                               renorm_momentum=renorm_momentum)
        updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        assert len(updates) == 4
        grad = tf.gradients(tf.reduce_sum(out * w), inputs)[0]
        sess.run(tf.global_variables_initializer())
        # before any update: mu 0 and sigma 1, so training and inference both return x
        np.testing.assert_allclose(sess.run(out, {inputs: x}), x, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sess.run(out, {inputs: x, training: True}), x, atol=1e-5)
        # the output of the step that updates uses the averages from before it
        first = sess.run([out] + updates, {inputs: x, training: True})[0]
        np.testing.assert_allclose(first, x, atol=1e-5)
        sess.run(updates, {inputs: x})
        renorm_mean = mean * (1 - renorm_momentum ** 2)                  # two steps from 0
        renorm_std = renorm_momentum ** 2 + std * (1 - renorm_momentum ** 2)   # and from 1
        r, d = std / renorm_std, (mean - renorm_mean) / renorm_std
        assert np.abs(r - 1).min() > 0.05 and np.abs(d).min() > 0.05   # the check means something
        np.testing.assert_allclose(sess.run(out, {inputs: x, training: True}),
                                   trained(x, r, d), rtol=1e-4, atol=1e-5)
        moving_mean = mean * (1 - momentum ** 2)
        moving_std = momentum ** 2 + std * (1 - momentum ** 2)
        np.testing.assert_allclose(sess.run(out, {inputs: x}), (x - moving_mean) / moving_std,
                                   rtol=1e-4, atol=1e-5)
        # r and d are constants for the gradient: it is plain batch norm's, times r
        got = sess.run(grad, {inputs: x, training: True})
    x64 = x.astype(np.float64)
    expected = np.zeros_like(x64)
    for idx in np.ndindex(*x.shape):
        up, down = x64.copy(), x64.copy()
        up[idx] += 1e-5
        down[idx] -= 1e-5
        expected[idx] = (np.sum(w * trained(up, r, d)) - np.sum(w * trained(down, r, d))) / 2e-5
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


def test_conv_block_against_numpy_in_both_orders():
    # conv + ReLU -> BN (the tutorial) and conv -> BN -> ReLU, checked against NumPy
    # with batch statistics, on a 1x1 conv so the reference is a matrix product
    rng = np.random.RandomState(2)
    x = rng.randn(3, 4, 4, 2).astype(np.float32)
    for bn, order in (("after-relu", "relu-bn"), ("before-relu", "bn-relu")):
        with tf.Graph().as_default(), tf.Session() as sess:
            inputs = tf.placeholder(tf.float32, x.shape)
            out = model.conv_block(inputs, 3, 1, 1, tf.constant(True), 1.0, bn=bn, norm="plain")
            sess.run(tf.global_variables_initializer())
            w = sess.run([v for v in tf.global_variables() if "weights" in v.name][0])
            got = sess.run(out, {inputs: x})
        z = x @ w[0, 0]                                     # (3, 4, 4, 3), zero bias

        def norm(a):
            return (a - a.mean((0, 1, 2))) / np.sqrt(a.var((0, 1, 2)) + model.BN_EPSILON)
        expected = norm(np.maximum(z, 0)) if order == "relu-bn" else np.maximum(norm(z), 0)
        np.testing.assert_allclose(got, expected, atol=1e-4, err_msg=bn)


def amsgrad_reference(x, grad, steps, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    m = v = vhat = np.zeros_like(x)
    path = []
    for t in range(1, steps + 1):
        g = grad(x, t)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        vhat = np.maximum(vhat, v)
        x = x - lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * m / (np.sqrt(vhat) + eps)
        path.append(x)
    return np.array(path)


def test_amsgrad_matches_numpy_and_differs_from_adam():
    # f = s * sum(x^2 sin(3x)) with a scale s that drops after two steps; beta2 = 0.5
    # forgets the big gradients fast, so v falls well below vhat and the two differ
    x0 = np.array([1.0, -2.0, 0.5])
    scales = [10.0, 10.0] + [0.1] * 6

    def grad(x, t):
        return scales[t - 1] * (3 * np.cos(3 * x) * x ** 2 + 2 * x * np.sin(3 * x))
    paths = {}
    for name, optimizer in (("amsgrad", AMSGradOptimizer), ("adam", tf.train.AdamOptimizer)):
        with tf.Graph().as_default(), tf.Session() as sess:
            x = tf.Variable(x0, dtype=tf.float32)
            scale = tf.placeholder(tf.float32, [])
            step = optimizer(0.1, beta2=0.5).minimize(scale * tf.reduce_sum(x ** 2 * tf.sin(3 * x)))
            sess.run(tf.global_variables_initializer())
            paths[name] = np.array([sess.run([step, x], {scale: s})[1] for s in scales])
    reference = amsgrad_reference(x0, grad, len(scales), 0.1, beta2=0.5)
    np.testing.assert_allclose(paths["amsgrad"], reference, atol=2e-5)
    assert np.abs(paths["adam"] - reference).max() > 1e-2


# -- letters.train and letters.predict, tiny settings ----------------------------------

@pytest.fixture(scope="module")
def letters(tmp_path_factory):
    directory = tmp_path_factory.mktemp("letters")
    datasets = letters_data.load_letters(str(directory), count=400, split=(320, 40, 40),
                                         progress=lambda *a: None)
    return directory, datasets


@pytest.fixture(scope="module")
def trained_letters(tmp_path_factory, letters):
    ckpt = tmp_path_factory.mktemp("letters-stn")
    # the tutorial's set-up, small: plain batch norm, since with renorm r and d undo the
    # normalisation until its averages settle (~100 steps at momentum 0.99), and 150
    # steps learn little
    config = configs.train_config("letters-tutorial", "letters", str(ckpt), steps=150,
                                  learning_rate=3e-3, log_every=10, eval_every=40,
                                  save_every=40, frames=0)
    config.model.update(width=0.125, norm="plain")
    return ckpt, train.train(config, letters[1])


def test_letters_training_loss_falls(trained_letters):
    ckpt, metrics = trained_letters
    losses = [loss for _, loss in metrics["losses"]]
    assert len(losses) == 15
    # from chance, ln 26 = 3.26, down by more than 0.3 (about 0.6 when measured)
    assert np.mean(losses[:3]) > 3.0
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.3
    assert json.loads((ckpt / checkpoints.CONFIG_FILE).read_text()) == {
        "stn": True, "width": 0.125, "bn": "after-relu", "pixel_range": "0,1", "norm": "plain",
        "transform": "affine"}
    assert metrics["batch_size"] == 32 and metrics["optimizer"] == "adam"


def test_letters_predict_agrees_with_training(trained_letters, letters, tmp_path, capsys):
    ckpt, metrics = trained_letters
    test = letters[1].test
    # in the precision it was trained and tested in: near chance, bfloat16 and float32
    # logits can rank two letters differently
    restored = predict.restore(str(ckpt), metrics["precision"])
    result = restored.evaluate(test.images, test.labels)
    assert result["accuracy"] == pytest.approx(metrics["test_accuracy"])
    predict.report(result, test.labels, restored)
    out = capsys.readouterr().out
    # one line per letter present in the test set, with its count
    lines = re.findall(r"  letter ([A-Z]): [\d.]+% \((\d+)/(\d+)\)", out)
    assert [letter for letter, _, _ in lines] == sorted({LETTERS[k] for k in test.labels})
    assert sum(int(total) for _, _, total in lines) == len(test.labels)
    assert sum(int(right) for _, right, _ in lines) == result["correct"].sum()
    predict.draw_grids(result, test.images, test.labels, restored, str(tmp_path), 12)
    assert (tmp_path / predict.GRID_FILE).exists()
    capsys.readouterr()
    # a test letter saved as a PNG file classifies as the array does
    path = tmp_path / "letter.png"
    images.save_png(str(path), test.images[0].reshape(SIZE, SIZE, 3))
    out = restored.run(test.images[:1])
    assert out["rectified"].shape == (1, SIZE, SIZE, 3)
    assert predict.main([str(path), "--ckpt-dir", str(ckpt), "--out-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith(
        f"{path}: {LETTERS[out['probabilities'][0].argmax()]} (")
    assert (tmp_path / predict.USER_GRID_FILE).exists()


@pytest.mark.parametrize("flags", [["--width", "0"], ["--learning-rate", "nan"],
                                   ["--learning-rate", "-1"], ["--batch-size", "9000"],
                                   ["--distortion", "RTS"], ["--dataset", "captcha"]])
def test_bad_flags_are_refused(flags, capsys):
    with pytest.raises(SystemExit):
        train.parse_args(flags)
    assert "error:" in capsys.readouterr().err


def test_letters_runs_are_the_tutorials_settings_with_a_decaying_rate():
    config, _ = train.parse_args([])
    assert (config.batch_size, config.learning_rate, config.lr_schedule, config.optimizer,
            config.keep_prob, config.loc_keep_prob) == (32, 1e-3, "cosine", "adam", 0.8, 0.8)
    assert config.model == {"stn": True, "width": 1.0, "bn": "after-relu",
                            "pixel_range": "-1,1", "norm": "renorm", "transform": "affine"}
    assert config.ckpt_dir == "checkpoints/letters" and config.steps == 3600
    tutorial, _ = train.parse_args(["--config", "letters-tutorial"])
    assert tutorial.model["pixel_range"] == "0,1" and tutorial.steps == 2500
    cnn, _ = train.parse_args(["--no-stn", "--width", "0.5"])
    assert cnn.model["stn"] is False and cnn.model["width"] == 0.5
    assert cnn.ckpt_dir == "checkpoints/letters-cnn"
