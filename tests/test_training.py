"""The TF1 training loop (mnist_stn/training.py): resuming, refusing a NaN, the loc net's
own rate and the classifier's hold, measured against what Adam must do."""
import json

import numpy as np
import pytest

import train
from helpers import checkpoint_step, small_datasets
from mnist_stn import checkpoints, training
from mnist_stn.compat import tf


def train_config(tmp_path, *extra):
    config, _ = train.parse_args(["--ckpt-dir", str(tmp_path), "--log-every", "10", *extra])
    return config


def test_resume_gives_the_same_model_as_one_run(fake_mnist_dir, tmp_path):
    # No dropout, so the only randomness is the seeded initialisation and batch order:
    # stopping at step 10 and resuming must end where an unbroken run ends. (A cosine
    # schedule would differ: it decays over the --steps of each run.)
    no_dropout = ["--keep-prob", "1", "--batch-size", "20", "--eval-every", "10", "--frames", "0",
                  "--config", "tutorial", "--learning-rate", "3e-4"]    # a constant rate
    train.train(train_config(tmp_path / "a", "--steps", "20", *no_dropout),
                small_datasets(fake_mnist_dir))
    train.train(train_config(tmp_path / "b", "--steps", "10", *no_dropout),
                small_datasets(fake_mnist_dir))
    resumed = train.train(train_config(tmp_path / "b", "--steps", "20", *no_dropout),
                          small_datasets(fake_mnist_dir))
    assert resumed["steps"] == 20 and checkpoint_step(tmp_path / "b") == 20
    assert resumed["resumed_at_step"] == 10

    def weights(ckpt_dir):
        reader = tf.train.load_checkpoint(str(ckpt_dir))
        return {name: reader.get_tensor(name)
                for name in reader.get_variable_to_shape_map() if "Adam" not in name}
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(fake_mnist_dir, tmp_path):
    # Adam moves every weight by about the learning rate: 1e38 overflows float32 at once.
    config = train_config(tmp_path, "--steps", "50", "--eval-every", "1",
                          "--learning-rate", "1e38", "--no-stn")
    with pytest.raises(training.TrainingError, match="loss became"):
        train.train(config, small_datasets(fake_mnist_dir))
    assert checkpoint_step(tmp_path) is not None and checkpoint_step(tmp_path) < 50
    metrics = json.loads((tmp_path / checkpoints.METRICS_FILE).read_text())
    assert metrics["steps"] == checkpoint_step(tmp_path) and metrics["test_accuracy"] is None


def test_loc_lr_multiplier_moves_only_the_loc_net_faster():
    # Adam's first step moves every weight by the learning rate (times the gradient's
    # sign): 0.1 for the classifier's, 10 x 0.1 for the loc net's
    config = training.TrainConfig(model={}, ckpt_dir="", learning_rate=0.1,
                                  lr_schedule="constant", loc_lr_multiplier=10.0)
    with tf.Graph().as_default(), tf.Session() as sess:
        loc = tf.Variable([1.0, -2.0])
        rest = tf.Variable([3.0])
        loss = tf.reduce_sum(loc * [2.0, -1.0]) + tf.reduce_sum(rest * 5.0)
        step = tf.train.get_or_create_global_step()
        op = training.build_train_op({"loss": loss, "loc_variables": [loc]}, step, config)
        sess.run(tf.global_variables_initializer())
        sess.run(op)
        got_loc, got_rest, got_step = sess.run([loc, rest, step])
    np.testing.assert_allclose(got_loc, [1.0 - 1.0, -2.0 + 1.0], atol=1e-5)
    np.testing.assert_allclose(got_rest, [3.0 - 0.1], atol=1e-6)
    assert got_step == 1


def test_the_papers_schedule_divides_the_rate_by_ten_after_each_third():
    # plain SGD moves a weight of gradient 1 by the rate itself: 9 steps in thirds of 3
    config = training.TrainConfig(model={}, ckpt_dir="", steps=9, learning_rate=0.5,
                                  optimizer="sgd", lr_schedule="thirds")
    with tf.Graph().as_default(), tf.Session() as sess:
        weight = tf.Variable([0.0])
        step = tf.train.get_or_create_global_step()
        op = training.build_train_op({"loss": tf.reduce_sum(weight),
                                      "loc_variables": []}, step, config)
        sess.run(tf.global_variables_initializer())
        moves = []
        for _ in range(9):
            before = sess.run(weight)[0]
            sess.run(op)
            moves.append(before - sess.run(weight)[0])
    np.testing.assert_allclose(moves, [0.5] * 3 + [0.05] * 3 + [0.005] * 3, rtol=1e-5)


def adam_moves(config, steps):
    """How far each of two weights, the loc net's and the classifier's, moves per step of
    ``build_train_op`` (with Adam, each step moves a weight whose gradient keeps its
    sign by exactly its learning rate). Returns (steps, 2): [loc net, classifier]."""
    with tf.Graph().as_default(), tf.Session() as sess:
        loc = tf.Variable([0.0])
        rest = tf.Variable([0.0])
        loss = tf.reduce_sum(loc * 2.0) + tf.reduce_sum(rest * 5.0)
        step = tf.train.get_or_create_global_step()
        op = training.build_train_op({"loss": loss, "loc_variables": [loc]}, step, config)
        sess.run(tf.global_variables_initializer())
        moves = []
        for _ in range(steps):
            before = np.concatenate(sess.run([loc, rest]))
            sess.run(op)
            moves.append(before - np.concatenate(sess.run([loc, rest])))
    return np.array(moves)


@pytest.mark.parametrize("hold, classifier_moves", [
    (None, [0.1, 0.1, 0.1, 0.1]),
    ((1, 3), [0.1, 0.0, 0.0, 0.1])])      # held still over steps 1 and 2 only
def test_the_classifier_hold_stops_only_the_classifier(hold, classifier_moves):
    # the classifier moves by 0.1, or not at all while held; the loc net by 0.1 throughout
    config = training.TrainConfig(model={}, ckpt_dir="", learning_rate=0.1,
                                  lr_schedule="constant", classifier_hold=hold)
    moves = adam_moves(config, 4)
    np.testing.assert_allclose(moves, [[0.1, c] for c in classifier_moves], atol=1e-6)


@pytest.mark.parametrize("steps", [(3, 3), (-1, 2), (5, 2)])
def test_an_empty_classifier_hold_is_refused(steps):
    config = training.TrainConfig(model={}, ckpt_dir="", classifier_hold=steps)
    with pytest.raises(ValueError, match="classifier_hold must be steps"):
        config.check(train_size=100)


def test_an_unknown_optimizer_is_refused():
    config = training.TrainConfig(model={}, ckpt_dir="", optimizer="adagrad")
    with pytest.raises(ValueError, match="optimizer must be one of adam, amsgrad, sgd"):
        config.check(train_size=100)
