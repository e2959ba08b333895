"""The MNIST addition: its pairs, its models of several STNs side by side, its entry
points, against values worked out here."""
import json

import numpy as np
import pytest

import model
import predict
import train
from helpers import checkpoint_step
from mnist_stn import addition, checkpoints, configs, data, distort, figures, geometry
from mnist_stn.compat import tf


@pytest.fixture
def digits():
    """Ten distinct 'digits' (a square at a different place each) and labels 0..9."""
    images = np.zeros((10, 28, 28), np.uint8)
    for k in range(10):
        images[k, 2 + 2 * k:8 + 2 * k, 4:10 + k] = 200
    return data.DataSet(images, np.arange(10))


def test_each_channel_holds_its_own_digit_and_the_label_is_their_sum(digits):
    canvases, sums, pair = addition.fixed_pairs(digits, "none", seed=3)
    partner = addition.partners(10)
    pairs = canvases.reshape(10, 28, 28, 2)
    for i in range(10):
        np.testing.assert_array_equal(pairs[i, :, :, 0], digits.images[i].reshape(28, 28))
        np.testing.assert_array_equal(pairs[i, :, :, 1],
                                      digits.images[partner[i]].reshape(28, 28))
    np.testing.assert_array_equal(pair, np.c_[np.arange(10), partner])
    np.testing.assert_array_equal(sums, np.arange(10) + partner)


def test_each_digit_of_a_pair_is_distorted_on_its_own(digits):
    canvases, _, _ = addition.fixed_pairs(digits, "RTS", seed=3)
    pairs = canvases.reshape(10, 42, 42, 2)
    # the same draws, one digit at a time: channel 1 of pair i is draw 2i, channel 2 is
    # draw 2i + 1 (each its own angle, scale and place)
    partner = addition.partners(10)
    order = np.stack([np.arange(10), partner], axis=1).ravel()
    with distort.Distorter("RTS", seed=3) as distorter:
        alone, params = distorter(digits.images[order], return_params=True)
    alone = alone.reshape(10, 2, 42, 42)
    np.testing.assert_array_equal(pairs[..., 0], alone[:, 0])
    np.testing.assert_array_equal(pairs[..., 1], alone[:, 1])
    angles = params["angle"].reshape(10, 2)
    assert (angles[:, 0] != angles[:, 1]).all()


def test_the_fixed_test_pairs_are_the_same_in_every_run(digits):
    first = addition.fixed_pairs(digits, "RTS", seed=distort.TEST_SEED)
    again = addition.fixed_pairs(digits, "RTS", seed=distort.TEST_SEED)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    # training with another seed tests on the very same pairs
    sets = data.Datasets(train=digits, validation=digits, test=digits)
    runs = [addition.training_inputs(sets, "RTS", seed=seed) for seed in (0, 7)]
    for a, b in zip(runs[0]["test"], runs[1]["test"]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(runs[0]["test"][0], first[0])


def test_training_pairs_take_two_digits_each_and_add_their_labels(digits):
    pairs, sums = addition.Pairs(data.DataSet(digits.images * 255, digits.labels,
                                              seed=1)).next_batch(4)
    assert pairs.shape == (4, 2 * 784)
    first = [int(np.flatnonzero((digits.images == p[:784]).all(1))[0]) for p in pairs]
    second = [int(np.flatnonzero((digits.images == p[784:]).all(1))[0]) for p in pairs]
    np.testing.assert_array_equal(sums, np.add(first, second))
    assert len(set(first) | set(second)) == 8          # eight digits, none twice


def test_channel_shares_by_hand():
    rectified = np.zeros((2, 3, 3, 4))
    rectified[0, 0, 0] = [3.0, 1.0, 0.0, 2.0]      # STN 1: 3 from channel 1, 1 from 2
    rectified[1, 1, 1] = [1.0, 0.0, 0.0, 6.0]      # STN 2: 0 and 8 over both images
    np.testing.assert_allclose(addition.channel_shares(rectified, 2),
                               [[0.8, 0.2], [0.0, 1.0]])
    assert addition.in_words(7, 5) == "7 + 5 = 12"


@pytest.mark.parametrize("run, stn, classifier, transformers, transform", [
    ("addition", True, "fcn", 2, "affine"),
    ("addition-x1", True, "fcn", 1, "affine"),
    ("addition-fcn", False, "fcn", 1, "affine"),
    ("addition-cnn", False, "cnn", 1, "affine"),
    ("addition-stcnn", True, "cnn", 2, "affine"),
    ("addition-x1-tps", True, "fcn", 1, "tps"),
])
def test_the_four_models_are_the_recipe_with_overrides(run, stn, classifier, transformers,
                                                       transform):
    built, _ = configs.load(run, "mnist")
    assert (built["stn"], built["classifier"], built["transformers"],
            built["transform"], built["digits"]) == (stn, classifier, transformers,
                                                     transform, 2)
    assert configs.run_name(*configs.parse_run(run, "mnist"), "mnist") == run


@pytest.mark.parametrize("run, message", [
    ("mnist-x2", "one digit takes one STN"),
    ("addition-x0", "one STN or more"),
    ("addition-fcn-tps", "a classifier without the STN has no transformer"),
])
def test_a_model_that_cannot_be_is_one_line(run, message):
    with pytest.raises(configs.ConfigError, match=message):
        configs.load(run, "mnist")


def test_two_stns_start_at_the_identity_and_each_writes_both_channels():
    config = configs.load("addition", "mnist")[0]
    canvases = np.random.RandomState(0).rand(3, 42 * 42 * 2).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        g = model.build_graph(config)
        sess.run(tf.global_variables_initializer())
        theta, rectified, logits = sess.run([g["theta"], g["rectified"], g["logits"]],
                                            {g["images"]: canvases})
    identity = [1, 0, 0, 0, 1, 0]
    np.testing.assert_allclose(theta, [identity * 2] * 3, atol=1e-7)
    assert rectified.shape == (3, 28, 28, 4) and logits.shape == (3, 19)
    np.testing.assert_array_equal(rectified[..., :2], rectified[..., 2:])
    first, second = geometry.split(theta, geometry.kinds(config))
    np.testing.assert_array_equal(first, second)


def test_two_channels_are_drawn_in_their_colours():
    pair = np.zeros((1, 2, 2, 2))
    pair[0, 0, 0, 0] = 1.0          # channel 1 only: magenta
    pair[0, 1, 1] = 1.0             # both: white
    view = figures.viewable(pair)
    np.testing.assert_array_equal(view[0, 0, 0], [1, 0, 1])
    np.testing.assert_array_equal(view[0, 1, 1], [1, 1, 1])
    # two STNs side by side, a gray gap between them
    assert figures.viewable(np.zeros((1, 5, 5, 4)), groups=2).shape == (1, 5, 11, 3)


@pytest.fixture(scope="module")
def trained_addition(tmp_path_factory, mnist_dir):
    ckpt = tmp_path_factory.mktemp("addition")
    assert train.main(["--config", "addition", "--data-dir", str(mnist_dir),
                       "--ckpt-dir", str(ckpt), "--steps", "6", "--batch-size", "8",
                       "--eval-every", "6", "--log-every", "3", "--frames", "2"]) == 0
    return ckpt


@pytest.mark.slow
def test_train_and_predict_the_addition(trained_addition, mnist_dir, tmp_path, capsys):
    assert checkpoint_step(trained_addition) == 6
    saved = json.loads((trained_addition / checkpoints.CONFIG_FILE).read_text())
    assert (saved["digits"], saved["transformers"], saved["classifier"]) == (2, 2, "fcn")
    assert (trained_addition / "learning.gif").stat().st_size > 0
    capsys.readouterr()
    assert predict.main(["--config", "addition", "--ckpt-dir", str(trained_addition),
                         "--data-dir", str(mnist_dir), "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "sums, 2xST-FCN (affine, identity loc head) adding RTS pairs" in out
    assert "STN 1:" in out and "STN 2:" in out and "from channel 2" in out
    labels = data.load_mnist(str(mnist_dir), validation_size=0).test.labels
    first, second = labels[0], labels[addition.partners(len(labels))[0]]
    assert f"pair 0: {first} + {second} = {first + second}, predicted" in out
    assert (tmp_path / predict.GRID_FILE).stat().st_size > 0


@pytest.mark.slow
def test_an_addition_checkpoint_in_a_single_digit_predict_is_one_line(trained_addition,
                                                                       capsys):
    assert predict.main(["--ckpt-dir", str(trained_addition)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "reads two digits" in err and "--config addition" in err
    assert predict.main(["--config", "addition", "--ckpt-dir", str(trained_addition),
                         "seven.png"]) == 1
    assert "an addition model reads pairs" in capsys.readouterr().err


@pytest.mark.slow
def test_a_single_digit_checkpoint_in_the_addition_predict_is_one_line(mnist_dir,
                                                                       tmp_path, capsys):
    assert train.main(["--no-stn", "--data-dir", str(mnist_dir), "--ckpt-dir",
                       str(tmp_path), "--steps", "1", "--frames", "0"]) == 0
    capsys.readouterr()
    assert predict.main(["--config", "addition", "--ckpt-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "reads one digit" in err
