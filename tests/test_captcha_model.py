"""The second tutorial's captcha model: batch norm, AMSGrad, the graph, a short run."""
import json

import numpy as np
import pytest

import model
import predict
import train
from mnist_stn import captcha_data, images
from mnist_stn.compat import tf
from mnist_stn.constants import CAPTCHA_SIZE, LETTERS, NUM_LETTERS
from mnist_stn.optimizers import AMSGradOptimizer

PIXELS = CAPTCHA_SIZE * CAPTCHA_SIZE * 3


def count(variables):
    return sum(int(np.prod(v.shape.as_list())) for v in variables)


def seed_cnn_params(channels_in):
    """The seed's cnn(), counted by hand: conv weights + biases, BN gamma + beta."""
    return (5 * 5 * channels_in * 512 + 512 + 2 * 512) \
        + (3 * 3 * 512 * 256 + 256 + 2 * 256) + (3 * 3 * 256 * 64 + 64 + 2 * 64)


def build(use_stn=True, width=1.0, bn="after-relu", pixel_range="0,1"):
    inputs = tf.placeholder(tf.float32, [None, PIXELS])
    training = tf.placeholder_with_default(False, [])
    logits, rectified = model.captcha_forward(inputs, training, 1.0, 1.0, use_stn=use_stn,
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
        # each BN layer keeps its two moving averages beside, not among the trainables
        assert count(tf.global_variables()) - count(variables) == 2 * 2 * (512 + 256 + 64)
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


@pytest.mark.parametrize("pixel_range", model.PIXEL_RANGES)
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
        out = model.batch_norm(inputs, training, momentum=0.9, epsilon=1e-3)
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


def test_bn_before_relu_is_another_graph():
    rng = np.random.RandomState(2)
    batch = rng.rand(4, PIXELS).astype(np.float32)
    outputs = []
    for bn in model.BN_PLACES:
        with tf.Graph().as_default(), tf.Session() as sess:
            tf.set_random_seed(0)
            inputs, training, logits, _ = build(use_stn=False, width=0.125, bn=bn)
            sess.run(tf.global_variables_initializer())
            outputs.append(sess.run(logits, {inputs: batch, training: True}))
    assert not np.allclose(outputs[0], outputs[1])


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


# -- train.py and predict.py with --dataset captcha, tiny settings ---------------------

@pytest.fixture(scope="module")
def letters(tmp_path_factory):
    directory = tmp_path_factory.mktemp("letters")
    datasets = captcha_data.load_captcha(str(directory), count=400, split=(320, 40, 40),
                                         progress=lambda *a: None)
    return directory, datasets


def captcha_args(ckpt, *extra):
    return train.parse_args(["--dataset", "captcha", "--ckpt-dir", str(ckpt),
                             "--width", "0.125", "--log-every", "10", "--eval-every", "40",
                             *extra])


@pytest.fixture(scope="module")
def trained_captcha(tmp_path_factory, letters):
    ckpt = tmp_path_factory.mktemp("captcha-stn")
    metrics = train.train(captcha_args(ckpt, "--steps", "150", "--learning-rate", "3e-3"),
                          datasets=letters[1])
    return ckpt, metrics


def test_captcha_training_loss_falls(trained_captcha):
    ckpt, metrics = trained_captcha
    losses = [loss for _, loss in metrics["losses"]]
    assert len(losses) == 15
    # from chance, ln 26 = 3.26, down by more than 0.3 (about 0.6 when measured)
    assert np.mean(losses[:3]) > 3.0
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.3
    assert json.loads((ckpt / train.CONFIG_FILE).read_text()) == {
        "dataset": "captcha", "stn": True, "width": 0.125, "bn": "after-relu",
        "pixel_range": "0,1"}
    assert metrics["batch_size"] == 32 and metrics["optimizer"] == "adam"


def test_captcha_predict_agrees_with_training(trained_captcha, letters, tmp_path, capsys):
    ckpt, metrics = trained_captcha
    predictor = predict.Predictor(str(ckpt))
    test = letters[1].test
    accuracy = predict.evaluate_test_set(predictor, test, "none", str(tmp_path), 12)
    assert accuracy == pytest.approx(metrics["test_accuracy"])
    out = capsys.readouterr().out
    assert "letter A:" in out or "letter B:" in out
    assert (tmp_path / predict.GRID_FILE).exists()
    # a test letter saved as a PNG file classifies as the array does
    path = tmp_path / "letter.png"
    images.save_png(str(path), test.images[0].reshape(CAPTCHA_SIZE, CAPTCHA_SIZE, 3))
    probs, rectified, _ = predictor.run(test.images[:1])
    assert rectified.shape == (1, CAPTCHA_SIZE, CAPTCHA_SIZE, 3)
    predictions, _ = predict.classify_files(predictor, [str(path)], str(tmp_path))
    assert LETTERS[predictions[0]] == LETTERS[probs[0].argmax()]
    assert (tmp_path / predict.USER_GRID_FILE["captcha"]).exists()


@pytest.mark.parametrize("flags", [["--dataset", "captcha", "--distortion", "RTS"],
                                   ["--dataset", "captcha", "--loc-head", "identity"],
                                   ["--width", "0.5"], ["--bn", "before-relu"],
                                   ["--signed-pixels"],
                                   ["--dataset", "captcha", "--width", "0"]])
def test_flags_of_the_other_dataset_are_refused(flags, capsys):
    with pytest.raises(SystemExit):
        train.parse_args(flags)
    assert "error:" in capsys.readouterr().err


def test_captcha_defaults_are_the_seed():
    args = train.parse_args(["--dataset", "captcha"])
    assert (args.batch_size, args.learning_rate, args.lr_schedule, args.optimizer,
            args.keep_prob, args.loc_keep_prob, args.width, args.bn, args.pixel_range) == \
        (32, 1e-3, "constant", "adam", 0.8, 0.8, 1.0, "after-relu", "0,1")
    assert args.ckpt_dir.endswith("captcha-stn")
    assert train.parse_args(["--dataset", "captcha", "--signed-pixels"]).pixel_range == "-1,1"
    mnist = train.parse_args([])
    assert (mnist.batch_size, mnist.learning_rate, mnist.loc_head) == (50, 3e-4, "tutorial")
    assert train.parse_args(["--distortion", "RTS"]).loc_head == "identity"
