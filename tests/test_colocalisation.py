"""Co-localisation: boxes, IoU and the triplet loss against values worked out by hand
and in NumPy; the entry point with tiny settings, and its one-line refusals."""
import os

import numpy as np
import pytest

import colocalise
import model
import train
from mnist_stn import colocalisation
from mnist_stn.compat import tf


def test_iou_of_boxes_computed_by_hand():
    a = [[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]]
    b = [[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30], [2, 2, 6, 6]]
    # 5x5 of 175; the same box; apart; 4x4 inside 10x10
    want = [25 / 175, 1.0, 0.0, 16 / 100]
    np.testing.assert_allclose(colocalisation.iou(a, b), want)
    with tf.Graph().as_default(), tf.Session() as sess:
        got = sess.run(model.box_iou(tf.constant(a, tf.float32), tf.constant(b, tf.float32)))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_window_is_the_box_it_samples():
    # a third of the 84-pixel canvas, centred: pixel centres 41.5 -+ 83/6
    thetas = [[1 / 3, 0.0, 0.0], [0.5, -0.5, 0.5]]
    want = [[41.5 - 83 / 6, 41.5 - 83 / 6, 41.5 + 83 / 6, 41.5 + 83 / 6],
            [20.75 - 20.75, 62.25 - 20.75, 20.75 + 20.75, 62.25 + 20.75]]
    np.testing.assert_allclose(colocalisation.window_boxes(thetas), want)
    with tf.Graph().as_default(), tf.Session() as sess:
        got = sess.run(model.window_boxes(tf.constant(thetas, tf.float32), 84))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # the frame of a digit placed at (10, 20) runs over its 28 pixel centres; its ink,
    # rows 5-9 and columns 3-12 of the digit, from (13, 25) to (22, 29)
    np.testing.assert_array_equal(colocalisation.frame_boxes([[10, 20]]), [[10, 20, 37, 47]])
    digit = np.zeros((28, 28))
    digit[5:10, 3:13] = 1.0
    np.testing.assert_array_equal(colocalisation.ink_boxes(digit[None], [[10, 20]]),
                                  [[13, 25, 22, 29]])


def test_the_triplet_loss_against_numpy():
    rng = np.random.RandomState(4)
    anchors, negatives = rng.rand(5, 7), rng.rand(5, 7)
    want = np.mean([max(0.0, ((anchors[n] - anchors[m]) ** 2).sum()
                        - ((anchors[n] - negatives[n]) ** 2).sum() + 1.0)
                    for n in range(5) for m in range(5) if n != m])
    with tf.Graph().as_default(), tf.Session() as sess:
        got = sess.run(model.triplet_loss(tf.constant(anchors), tf.constant(negatives)))
    assert got == pytest.approx(want, rel=1e-12)
    assert want > 0                          # some pairs are inside the margin


def test_digits_are_placed_whole_and_clutter_keeps_them():
    digits = np.zeros((3, 784), np.float32)
    digits[:, 100:110] = 0.8
    canvases, boxes = colocalisation.place(digits, size=84, seed=1)
    for canvas, (x, y, x1, y1) in zip(canvases.reshape(3, 84, 84), boxes):
        assert (x1 - x, y1 - y) == (27, 27)
        np.testing.assert_array_equal(canvas[y:y + 28, x:x + 28], digits[0].reshape(28, 28))
        assert canvas.sum() == pytest.approx(digits[0].sum())
    cluttered, same = colocalisation.place(digits, np.ones((4, 784)), size=84, seed=1)
    np.testing.assert_array_equal(same, boxes)
    assert (cluttered >= canvases).all() and cluttered.sum() > canvases.sum()


def test_the_digits_move_out_from_the_centre_then_are_the_sets_own():
    digits = np.random.RandomState(2).rand(4, 784).astype(np.float32)
    corners, backgrounds = colocalisation.layout(4, seed=3)
    gathering = colocalisation.Gathering(digits, corners, backgrounds, ramp_steps=4, seed=0)
    first, boxes = gathering.next_batch(4)           # a quarter of the way out
    centre = (84 - 28) // 2
    order = [int(np.flatnonzero((digits == c.reshape(84, 84)[b[1]:b[1] + 28,
                                                          b[0]:b[0] + 28].ravel()).all(1))[0])
             for c, b in zip(first, boxes)]
    np.testing.assert_array_equal(boxes[:, :2], np.round(centre + 0.25 * (corners[order]
                                                                          - centre)))
    for _ in range(3):
        canvases, boxes = gathering.next_batch(4)    # all the way: the set's own canvases
    own, own_boxes = colocalisation.compose(digits, corners, backgrounds)
    order = [int(np.flatnonzero((own == c).all(1))[0]) for c in canvases]
    np.testing.assert_array_equal(boxes, own_boxes[order])


def test_the_embedding_is_the_classifiers_frozen_weights():
    weights = {"layer_1/weights": np.full((5, 5, 1, 32), 0.01, np.float32)}
    with tf.Graph().as_default(), tf.Session() as sess:
        model.embedding(tf.zeros([1, 28, 28, 1]), weights)
        sess.run(tf.global_variables_initializer())
        frozen = [v for v in tf.global_variables() if v.op.name == "embedding/layer_1/weights"]
        np.testing.assert_array_equal(sess.run(frozen[0]), weights["layer_1/weights"])
        assert frozen[0] not in tf.trainable_variables()


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, mnist_dir):
    folder = tmp_path_factory.mktemp("cnn")
    assert train.main(["--no-stn", "--data-dir", str(mnist_dir), "--ckpt-dir", str(folder),
                       "--steps", "3", "--frames", "0", "--eval-every", "3"]) == 0
    return folder


@pytest.mark.slow
def test_colocalise_trains_a_window_per_class_and_set(classifier, mnist_dir, tmp_path,
                                                      capsys):
    assert colocalise.main(["--digit", "1", "--steps", "4", "--batch-size", "8",
                            "--classifier", str(classifier), "--data-dir", str(mnist_dir),
                            "--ckpt-root", str(tmp_path), "--frames", "2"]) == 0
    out = capsys.readouterr().out
    for name in ("T", "TC"):
        assert f"{name}, digit 1: the window is on the digit (IoU > 0.5 with its" in out
        assert (tmp_path / f"{name}-1" / "learning.gif").stat().st_size > 0


def test_a_class_outside_0_9_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        colocalise.parse_args(["--digit", "10"])
    assert exit_info.value.code == 2 and "--digit" in capsys.readouterr().err


@pytest.mark.slow
def test_a_missing_or_damaged_classifier_is_one_line(classifier, mnist_dir, tmp_path, capsys):
    flags = ["--digit", "1", "--steps", "1", "--data-dir", str(mnist_dir),
             "--ckpt-root", str(tmp_path / "runs")]
    assert colocalise.main(flags + ["--classifier", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no classifier in" in err
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for name in os.listdir(classifier):
        data = (classifier / name).read_bytes()
        (damaged / name).write_bytes(data[:len(data) // 2] if ".data-" in name else data)
    assert colocalise.main(flags + ["--classifier", str(damaged)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "damaged" in err
