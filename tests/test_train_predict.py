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
from helpers import checkpoint_step, small_datasets
from mnist_stn import (animation, checkpoints, data, figures, geometry, images, precision)

ROOT = Path(__file__).resolve().parents[1]


def train_config(tmp_path, *extra):
    config, _ = train.parse_args(["--ckpt-dir", str(tmp_path), "--log-every", "10", *extra])
    return config


@pytest.fixture(scope="module")
def trained_stn(tmp_path_factory, mnist_dir):
    """A short STN training run on MNIST (real when available): its checkpoint dir. Its
    film is not looked at here (the animation's tests look at theirs)."""
    ckpt = tmp_path_factory.mktemp("stn")
    assert train.main(["--data-dir", str(mnist_dir), "--ckpt-dir", str(ckpt),
                       "--steps", "120", "--batch-size", "40", "--eval-every", "120",
                       "--frames", "0"]) == 0
    return ckpt


def test_training_learns_and_writes_its_files(trained_stn):
    metrics = json.loads((trained_stn / checkpoints.METRICS_FILE).read_text())
    assert metrics["steps"] == 120 and metrics["stn"] is True and metrics["resumed_at_step"] == 0
    assert metrics["test_accuracy"] > 0.8        # chance is 0.10
    assert checkpoint_step(trained_stn) == 120
    assert json.loads((trained_stn / checkpoints.CONFIG_FILE).read_text()) == \
        {"stn": True, "distortion": "none", "image_size": 28, "loc_head": "tutorial",
         "loc_start_scale": 1.0, "transform": "affine", "digits": 1, "transformers": 1,
         "classifier": "cnn"}
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(trained_stn))


def test_predict_reports_the_same_accuracy_and_draws_grids(trained_stn, mnist_dir,
                                                           tmp_path, capsys):
    assert predict.main(["--ckpt-dir", str(trained_stn), "--data-dir", str(mnist_dir),
                         "--out-dir", str(tmp_path), "--num-images", "12"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((trained_stn / checkpoints.METRICS_FILE).read_text())
    assert f"Test accuracy: {metrics['test_accuracy']:.2%}" in out
    assert out.count("  digit ") == 10
    # what the STN did, over the test set: the summary of its thetas
    restored = predict.restore(str(trained_stn), precision.resolve("auto"))  # as predict ran
    test_images, _ = predict.test_set(restored, str(mnist_dir), "none")
    parts = geometry.decompose(restored.run(test_images, names=("theta",))["theta"], 28,
                               "affine")
    assert f"What the STN did to the test digits: {geometry.summary(parts)}\n" in out
    grid = plt.imread(tmp_path / predict.GRID_FILE)
    assert grid.ndim == 3 and grid.shape[0] > 100 and grid.shape[1] > 300
    assert grid[..., :3].std() > 0.1             # a picture, not a blank page
    # mistakes.png exists exactly when some test digit was misclassified
    correct, total = map(int, re.search(r"Test accuracy: [\d.]+% \((\d+)/(\d+)", out).groups())
    assert (tmp_path / predict.MISTAKES_FILE).exists() == (correct < total)


def test_predict_classifies_a_users_image(trained_stn, mnist_dir, tmp_path, capsys):
    # A test digit as a user might photograph it: big, dark ink on white paper.
    test = data.load_mnist(str(mnist_dir), validation_size=0).test
    probs = predict.restore(str(trained_stn)).run(test.images[:200])["probabilities"]
    index = int(np.flatnonzero((probs.argmax(1) == test.labels[:200])
                               & (probs.max(1) > 0.9))[0])
    digit = test.images[index].reshape(28, 28)
    big = np.kron(1.0 - digit, np.ones((6, 6)))   # (168, 168), dark on light
    path = tmp_path / "digit.png"
    plt.imsave(path, np.pad(big, 30, constant_values=1.0), cmap="gray", vmin=0, vmax=1)

    # in one precision, float32, here and in restore() below: across precisions theta
    # moves a little, and a turn near x.5° can then read one degree off
    assert predict.main([str(path), "--ckpt-dir", str(trained_stn), "--precision", "fp32",
                         "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: {test.labels[index]}, ")
    # theta in words: what the STN did to this image, as decompose reads its theta
    prepared = images.prepare(str(path)).reshape(1, -1)
    theta = predict.restore(str(trained_stn), "fp32").run(prepared, names=("theta",))["theta"]
    words = geometry.describe(geometry.decompose(theta, 28, "affine"), 0)
    assert re.match(rf"{re.escape(str(path))}: \d, [\d.]+%: {re.escape(words)}  rectified: ",
                    out)
    rectified = plt.imread(tmp_path / "digit_rectified.png")
    assert rectified.shape[:2] == (28, 28)
    assert (tmp_path / predict.USER_GRID_FILE).exists()


def test_predict_without_checkpoint_is_one_clear_error(tmp_path, capsys):
    assert predict.main(["--ckpt-dir", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert "no checkpoint in" in err and "run train.py first" in err


def test_predict_unreadable_image_is_one_clear_error(trained_stn, tmp_path, capsys):
    bad = tmp_path / "not_an_image.png"
    bad.write_text("hello")
    assert predict.main([str(bad), "--ckpt-dir", str(trained_stn),
                         "--out-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not_an_image.png" in err and "Traceback" not in err


def digit_file(path, digit_index=0, fmt=None):
    """A test-like digit saved as an image file (dark on light, enlarged)."""
    digit = np.zeros((28, 28))
    digit[6:22, 12:16] = 1.0                      # a "1"
    big = np.kron(1.0 - digit, np.ones((4, 4)))
    plt.imsave(path, np.stack([big] * 3, -1), format=fmt)
    return path


def test_predict_classifies_every_readable_file(trained_stn, tmp_path, capsys):
    # a bad file between two good ones: both good ones are classified, the bad one is
    # one line, and the exit status says that something failed
    good, good2 = digit_file(tmp_path / "a.png"), digit_file(tmp_path / "b.png")
    bad = tmp_path / "bad.txt"
    bad.write_text("not an image")
    assert predict.main([str(good), str(bad), str(good2), "--ckpt-dir", str(trained_stn),
                         "--out-dir", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert f"{good}: " in captured.out and f"{good2}: " in captured.out
    assert (tmp_path / "out" / "a_rectified.png").exists()
    assert (tmp_path / "out" / "b_rectified.png").exists()
    errors = captured.err.splitlines()
    assert len(errors) == 2 and "bad.txt" in errors[0]       # the file, then the count
    assert errors[-1] == "1 of 3 files could not be read"


def test_files_with_the_same_stem_get_their_own_outputs(trained_stn, tmp_path, capsys):
    seven_bmp = digit_file(tmp_path / "seven.bmp", fmt="bmp")
    seven_gif = tmp_path / "seven.gif"
    from PIL import Image
    Image.open(seven_bmp).save(seven_gif)
    out = tmp_path / "out"
    assert predict.main([str(seven_bmp), str(seven_gif), "--ckpt-dir", str(trained_stn),
                         "--out-dir", str(out)]) == 0
    written = sorted(p.name for p in out.glob("*_rectified.png"))
    assert written == ["seven_gif_rectified.png", "seven_rectified.png"]
    assert predict.output_names(["a/x.png", "b/x.png", "x.png"]) == \
        ["x_rectified.png", "x_png_rectified.png", "x_png_2_rectified.png"]


def test_missing_data_is_one_clear_error(tmp_path, capsys):
    assert train.main(["--data-dir", str(tmp_path), "--ckpt-dir", str(tmp_path / "c")]) == 1
    assert "train-images-idx3-ubyte" in capsys.readouterr().err


def test_checkpoint_of_the_other_model_is_refused(fake_mnist_dir, tmp_path):
    train.train(train_config(tmp_path, "--steps", "2", "--no-stn"),
                small_datasets(fake_mnist_dir))
    with pytest.raises(checkpoints.CheckpointError,
                       match=r"another model \(stn False, not True\)"):
        train.train(train_config(tmp_path, "--steps", "4"), small_datasets(fake_mnist_dir))


def start_training(mnist_dir, ckpt_dir):
    """train.py as a user runs it, in a real process, until its first progress line."""
    proc = subprocess.Popen(
        [sys.executable, "train.py", "--data-dir", str(mnist_dir), "--ckpt-dir",
         str(ckpt_dir), "--steps", "100000", "--log-every", "5", "--eval-every", "100000"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("step"):
            break
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(mnist_dir, tmp_path, presses):
    # A second Ctrl-C right after the first (an impatient user) must not cut the save
    # short: the run still saves a whole, listed checkpoint and exits 130.
    proc = start_training(mnist_dir, tmp_path)
    try:
        for _ in range(presses):
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Interrupted at step" in out and "Traceback" not in err
    step = checkpoint_step(tmp_path)
    assert step is not None and step >= 5
    assert checkpoints.checkpoint_steps(str(tmp_path))[0] == step
    assert (tmp_path / animation.GIF_FILE).stat().st_size > 0     # the film so far


def test_a_damaged_newest_checkpoint_is_skipped_for_the_one_before(fake_mnist_dir, tmp_path,
                                                                   capsys):
    # what a save cut off by a kill, or a truncated copy, leaves: the newest files
    # unreadable; the run resumes from the newest intact one and names the bad files
    train.train(train_config(tmp_path, "--steps", "3", "--no-stn", "--eval-every", "1"),
                small_datasets(fake_mnist_dir))
    data_file = next(tmp_path.glob("model.ckpt-3.data-*"))
    data_file.write_bytes(data_file.read_bytes()[:100])
    capsys.readouterr()
    metrics = train.train(train_config(tmp_path, "--steps", "4", "--no-stn"),
                          small_datasets(fake_mnist_dir))
    out = capsys.readouterr().out
    assert "Skipping the damaged" in out and "model.ckpt-3.*" in out
    assert f"Resuming from {tmp_path / 'model.ckpt-2'}" in out
    assert metrics["resumed_at_step"] == 2 and metrics["steps"] == 4


@pytest.mark.parametrize("module", [train, predict])
def test_every_flag_has_help(module, capsys):
    actions = [a for a in module.build_parser()._actions if a.dest != "help"]
    assert len(actions) >= 4
    for action in actions:
        assert action.help and len(action.help) > 15, action.dest
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--ckpt-dir" in out
    assert not re.search("captcha|letter", out, re.IGNORECASE)


def test_train_has_at_most_16_flags():
    assert len([a for a in train.build_parser()._actions if a.dest != "help"]) <= 16


@pytest.mark.parametrize("flags, message", [
    (["--keep-prob", "0"], "--keep-prob must be in (0, 1]"),
    (["--learning-rate", "nan"], "--learning-rate must be a positive number, not nan"),
    (["--learning-rate", "inf"], "--learning-rate must be a positive number, not inf"),
    (["--learning-rate", "-0.001"], "--learning-rate must be a positive number"),
    (["--batch-size", "100000"], "--batch-size must be in 1..55000"),
    (["--batch-size", "0"], "--batch-size must be in 1..55000"),
    (["--steps", "0"], "--steps must be at least 1"),
])
def test_bad_flag_values_are_refused(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(flags)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_damaged_checkpoint_is_one_clear_error(fake_mnist_dir, tmp_path, capsys):
    train.train(train_config(tmp_path, "--steps", "2", "--no-stn"),
                small_datasets(fake_mnist_dir))
    data_file = next(tmp_path.glob("model.ckpt-2.data-*"))
    data_file.write_bytes(data_file.read_bytes()[:100])      # truncated
    assert predict.main(["--no-stn", "--ckpt-dir", str(tmp_path), "--data-dir",
                         str(fake_mnist_dir)]) == 1
    err = capsys.readouterr().err
    assert "cannot restore" in err and "model.ckpt-2" in err and len(err.splitlines()) == 1
    # the reason TF gives, not the header of its error message
    assert "Graph execution error" not in err and "Read less bytes" in err
    with pytest.raises(checkpoints.CheckpointError, match="cannot restore.*Read less bytes"):
        train.train(train_config(tmp_path, "--steps", "4", "--no-stn"),
                    small_datasets(fake_mnist_dir))


def grid_texts(path, count, **kwargs):
    """Draw a grid of ``count`` digits; return its figure's texts and the figure."""
    rng = np.random.RandomState(0)
    fig = figures.grid_figure(rng.rand(count, 28, 28), rng.rand(count, 28, 28),
                              np.arange(count) % 10, **kwargs)
    fig.canvas.draw()
    return fig


def test_a_one_image_grid_keeps_its_whole_title(tmp_path):
    title = "Your images, fitted to 28x28 (top), after the STN (below)"
    fig = grid_texts(tmp_path, 1, title=title)
    suptitle = fig._suptitle
    assert suptitle.get_text().replace("\n", " ") == title
    box, page = suptitle.get_window_extent(), fig.bbox
    assert box.x0 >= page.x0 and box.x1 <= page.x1 and box.y1 <= page.y1


def test_a_grid_without_stn_says_so(tmp_path):
    texts = [t.get_text() for ax in grid_texts(tmp_path, 3, lower_label="CNN").axes
             for t in ax.texts]
    assert "CNN" in texts and "STN" not in texts


# the lines TF_CPP_MIN_LOG_LEVEL=2 hides: CPU features, MLIR passes, the bfloat16 rewrite
QUIETED = ("cpu_feature_guard", "MLIR", "auto_mixed_precision")


@pytest.mark.slow
def test_the_entry_points_start_quietly(mnist_dir, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    ckpt = str(tmp_path / "c")
    runs = [["train.py", "--data-dir", str(mnist_dir), "--ckpt-dir", ckpt, "--steps", "2",
             "--batch-size", "10", "--eval-every", "2", "--frames", "0"],
            ["predict.py", "--data-dir", str(mnist_dir), "--ckpt-dir", ckpt,
             "--num-images", "2"]]
    for run in runs:
        done = subprocess.run([sys.executable, *run], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        said = done.stdout + done.stderr
        assert not [word for word in QUIETED if word in said], said
    # a user's own setting wins
    loud = subprocess.run([sys.executable, "-c", "import model"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**env, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert "cpu_feature_guard" in loud.stderr


def test_a_full_disk_is_one_line_and_leaves_no_cut_figure(trained_stn, mnist_dir, tmp_path,
                                                          capsys, monkeypatch):
    import errno

    import matplotlib.figure

    def full_disk(fig, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a figure")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full_disk)
    out = tmp_path / "out"
    assert predict.main(["--ckpt-dir", str(trained_stn), "--data-dir", str(mnist_dir),
                         "--out-dir", str(out), "--num-images", "3"]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and "No space left on device" in errors[0]
    assert str(out / predict.GRID_FILE) in errors[0] and "None" not in errors[0]
    assert os.listdir(out) == []                    # nothing cut short left behind


def test_a_transform_the_folder_does_not_hold_is_one_line(trained_stn, capsys):
    assert predict.main(["--ckpt-dir", str(trained_stn), "--transform", "tps"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {trained_stn} holds an STN with the affine transformer, not the "
                   "tps transformer that --transform asks for"]
