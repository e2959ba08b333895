"""train.py and predict.py as a user runs them, with tiny settings."""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

import predict
import train
from mnist_stn import data
from mnist_stn.compat import tf

ROOT = Path(__file__).resolve().parents[1]


def train_args(tmp_path, data_dir, *extra):
    return train.parse_args(["--data-dir", str(data_dir), "--ckpt-dir", str(tmp_path),
                             "--log-every", "10", "--eval-every", "10", *extra])


def small_datasets(data_dir, seed=0):
    # the generated sets are smaller than the default validation split
    return data.load_mnist(str(data_dir), validation_size=50, seed=seed)


def checkpoint_step(ckpt_dir):
    latest = tf.train.latest_checkpoint(str(ckpt_dir))
    return None if latest is None else int(latest.rsplit("-", 1)[1])


@pytest.fixture(scope="module")
def trained_stn(tmp_path_factory, mnist_dir):
    """A short STN training run on MNIST (real when available): its checkpoint dir."""
    ckpt = tmp_path_factory.mktemp("stn")
    assert train.main(["--data-dir", str(mnist_dir), "--ckpt-dir", str(ckpt),
                       "--steps", "300", "--eval-every", "100"]) == 0
    return ckpt


def test_training_learns_and_writes_its_files(trained_stn):
    metrics = json.loads((trained_stn / train.METRICS_FILE).read_text())
    assert metrics["steps"] == 300 and metrics["model"] == "stn"
    assert metrics["test_accuracy"] > 0.85       # chance is 0.10
    assert checkpoint_step(trained_stn) == 300
    assert json.loads((trained_stn / train.CONFIG_FILE).read_text()) == \
        {"dataset": "mnist", "stn": True, "distortion": "none", "loc_head": "tutorial"}
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(trained_stn))


def test_predict_reports_the_same_accuracy_and_draws_grids(trained_stn, mnist_dir,
                                                           tmp_path, capsys):
    assert predict.main(["--ckpt-dir", str(trained_stn), "--data-dir", str(mnist_dir),
                         "--out-dir", str(tmp_path), "--num-images", "12"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((trained_stn / train.METRICS_FILE).read_text())
    assert f"Test accuracy: {metrics['test_accuracy']:.2%}" in out
    assert out.count("  digit ") == 10
    grid = plt.imread(tmp_path / predict.GRID_FILE)
    assert grid.ndim == 3 and grid.shape[0] > 100 and grid.shape[1] > 300
    assert grid[..., :3].std() > 0.1             # a picture, not a blank page
    # mistakes.png exists exactly when some test digit was misclassified
    correct, total = map(int, re.search(r"Test accuracy: [\d.]+% \((\d+)/(\d+)", out).groups())
    assert (tmp_path / predict.MISTAKES_FILE).exists() == (correct < total)


def test_predict_classifies_a_users_image(trained_stn, mnist_dir, tmp_path, capsys):
    # A test digit as a user might photograph it: big, dark ink on white paper.
    test = data.load_mnist(str(mnist_dir), validation_size=0).test
    probe = predict.Predictor(str(trained_stn))
    probs, _, _ = probe.run(test.images[:200])
    index = int(np.flatnonzero((probs.argmax(1) == test.labels[:200])
                               & (probs.max(1) > 0.9))[0])
    digit = test.images[index].reshape(28, 28)
    big = np.kron(1.0 - digit, np.ones((6, 6)))   # (168, 168), dark on light
    path = tmp_path / "digit.png"
    plt.imsave(path, np.pad(big, 30, constant_values=1.0), cmap="gray", vmin=0, vmax=1)

    assert predict.main([str(path), "--ckpt-dir", str(trained_stn),
                         "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: {test.labels[index]} (")
    rectified = plt.imread(tmp_path / "digit_rectified.png")
    assert rectified.shape[:2] == (28, 28)
    assert (tmp_path / predict.USER_GRID_FILE["mnist"]).exists()


def test_predict_without_checkpoint_is_one_clear_error(tmp_path, capsys):
    assert predict.main(["--ckpt-dir", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert "no checkpoint in" in err and "run train.py first" in err


def test_predict_unreadable_image_is_one_clear_error(trained_stn, tmp_path, capsys):
    bad = tmp_path / "not_an_image.png"
    bad.write_text("hello")
    assert predict.main([str(bad), "--ckpt-dir", str(trained_stn),
                         "--out-dir", str(tmp_path)]) == 1
    assert "not_an_image.png" in capsys.readouterr().err


def test_missing_data_is_one_clear_error(tmp_path, capsys):
    assert train.main(["--data-dir", str(tmp_path), "--ckpt-dir", str(tmp_path / "c")]) == 1
    assert "train-images-idx3-ubyte" in capsys.readouterr().err


def test_resume_gives_the_same_model_as_one_run(fake_mnist_dir, tmp_path):
    # No dropout, so the only randomness is the seeded initialisation and batch order:
    # stopping at step 20 and resuming must end where an unbroken run ends. (A cosine
    # schedule would differ: it decays over the --steps of each run.)
    no_dropout = ["--keep-prob", "1", "--batch-size", "20", "--save-every", "10",
                  "--lr-schedule", "constant"]
    train.train(train_args(tmp_path / "a", fake_mnist_dir, "--steps", "40", *no_dropout),
                small_datasets(fake_mnist_dir))
    train.train(train_args(tmp_path / "b", fake_mnist_dir, "--steps", "20", *no_dropout),
                small_datasets(fake_mnist_dir))
    resumed = train.train(train_args(tmp_path / "b", fake_mnist_dir, "--steps", "40",
                                     *no_dropout), small_datasets(fake_mnist_dir))
    assert resumed["steps"] == 40 and checkpoint_step(tmp_path / "b") == 40

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
    args = train_args(tmp_path, fake_mnist_dir, "--steps", "50", "--save-every", "1",
                      "--learning-rate", "1e38", "--no-stn")
    with pytest.raises(train.TrainingError, match="loss became"):
        train.train(args, small_datasets(fake_mnist_dir))
    assert checkpoint_step(tmp_path) is not None and checkpoint_step(tmp_path) < 50
    assert not (tmp_path / train.METRICS_FILE).exists()


def test_configs_from_before_dataset_and_loc_head_still_load(tmp_path):
    (tmp_path / train.CONFIG_FILE).write_text('{"stn": true, "distortion": "RTS"}')
    config = train.read_config(str(tmp_path))
    assert config == {"dataset": "mnist", "stn": True, "distortion": "RTS",
                      "loc_head": "tutorial"}
    assert train.input_shape(config) == (42, 1)


def test_checkpoint_of_the_other_model_is_refused(fake_mnist_dir, tmp_path):
    train.train(train_args(tmp_path, fake_mnist_dir, "--steps", "2", "--no-stn"),
                small_datasets(fake_mnist_dir))
    with pytest.raises(train.TrainingError, match=r"another model \(CNN, not STN\)"):
        train.train(train_args(tmp_path, fake_mnist_dir, "--steps", "4"),
                    small_datasets(fake_mnist_dir))


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(mnist_dir, tmp_path):
    # As a user does it: a real process, a real SIGINT once training is under way.
    proc = subprocess.Popen(
        [sys.executable, "train.py", "--data-dir", str(mnist_dir), "--ckpt-dir",
         str(tmp_path), "--steps", "100000", "--log-every", "5", "--save-every", "100000"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("step"):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Interrupted at step" in out and "Traceback" not in err
    step = checkpoint_step(tmp_path)
    assert step is not None and step >= 5


@pytest.mark.parametrize("module", [train, predict])
def test_every_flag_has_help(module, capsys):
    actions = [a for a in module.build_parser()._actions if a.dest != "help"]
    assert len(actions) >= 4
    for action in actions:
        assert action.help and len(action.help) > 15, action.dest
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args(["--help"])
    assert exit_info.value.code == 0
    assert "--ckpt-dir" in capsys.readouterr().out


def test_bad_flag_values_are_refused(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--keep-prob", "0"])
    assert "--keep-prob must be in (0, 1]" in capsys.readouterr().err


def test_sampled_box_maps_the_output_corners_into_the_input():
    identity = [1, 0, 0, 0, 1, 0]
    np.testing.assert_allclose(predict.sampled_box([identity], 28)[0],
                               [[0, 0], [27, 0], [27, 27], [0, 27]])
    # half size, shifted right by a quarter of the canvas: x in [-0.25, 0.75]
    zoom = [0.5, 0, 0.25, 0, 0.5, 0]
    np.testing.assert_allclose(predict.sampled_box([zoom], 41)[0],
                               [[15, 10], [35, 10], [35, 30], [15, 30]])
    # a 90 degree turn visits the same corners, in another order
    turn = [0, -1, 0, 1, 0, 0]
    np.testing.assert_allclose(predict.sampled_box([turn], 28)[0],
                               [[27, 0], [27, 27], [0, 27], [0, 0]])


def test_damaged_checkpoint_is_one_clear_error(fake_mnist_dir, tmp_path, capsys):
    train.train(train_args(tmp_path, fake_mnist_dir, "--steps", "2", "--no-stn"),
                small_datasets(fake_mnist_dir))
    data_file = next(tmp_path.glob("model.ckpt-2.data-*"))
    data_file.write_bytes(data_file.read_bytes()[:100])      # truncated
    assert predict.main(["--no-stn", "--ckpt-dir", str(tmp_path), "--data-dir",
                         str(fake_mnist_dir)]) == 1
    err = capsys.readouterr().err
    assert "cannot restore" in err and "model.ckpt-2" in err and len(err.splitlines()) == 1
    with pytest.raises(train.TrainingError, match="cannot resume"):
        train.train(train_args(tmp_path, fake_mnist_dir, "--steps", "4", "--no-stn"),
                    small_datasets(fake_mnist_dir))
