"""The learning animation: frames taken while training, kept across a resume, a GIF."""
import numpy as np
import pytest
from PIL import Image

import model
import train
from helpers import ctrl_c_at_batch
from mnist_stn import animation, checkpoints, data


def run(ckpt_dir, data_dir, *flags):
    config, _ = train.parse_args(["--ckpt-dir", str(ckpt_dir), "--batch-size", "20",
                                  "--log-every", "5", "--eval-every", "10", *flags])
    return train.train(config, data.load_mnist(str(data_dir), validation_size=50, seed=0))


def frames(ckpt_dir):
    with np.load(ckpt_dir / animation.FRAMES_FILE) as saved:
        return {key: saved[key] for key in saved.files}


def test_frames_show_the_panel_as_the_model_saw_it(fake_mnist_dir, tmp_path):
    metrics = run(tmp_path, fake_mnist_dir, "--steps", "20", "--frames", "4")
    film = frames(tmp_path)
    np.testing.assert_array_equal(film["steps"], [0, 5, 10, 15, 20])
    assert film["thetas"].shape == (5, animation.PANEL, 6)
    # the last frame is the trained model on the first validation digits
    panel = data.load_mnist(str(fake_mnist_dir), validation_size=50, seed=0) \
        .validation.images[:animation.PANEL]
    # restored as trained: a bf16 session (auto, on a CPU with bfloat16) moves theta by 3e-3
    restored = checkpoints.Restored(str(tmp_path), model.build_graph,
                                    precision=metrics["precision"])
    out = restored.run(panel)
    np.testing.assert_allclose(film["thetas"][-1], out["theta"], atol=1e-5)
    np.testing.assert_allclose(film["outputs"][-1] / 255.0, np.clip(out["rectified"], 0, 1),
                               atol=0.5 / 255 + 1e-6)
    # the first frame is the untrained STN: the tutorial's head starts near its bias
    assert not np.allclose(film["thetas"][0], film["thetas"][-1])
    gif = Image.open(tmp_path / animation.GIF_FILE)
    assert gif.size == (400, 230) and gif.n_frames >= 2
    assert 0 <= metrics["frame_seconds"] < 5


def test_a_resumed_run_goes_on_filming(fake_mnist_dir, tmp_path):
    run(tmp_path, fake_mnist_dir, "--steps", "10", "--frames", "2")
    np.testing.assert_array_equal(frames(tmp_path)["steps"], [0, 5, 10])
    run(tmp_path, fake_mnist_dir, "--steps", "20", "--frames", "2")
    np.testing.assert_array_equal(frames(tmp_path)["steps"], [0, 5, 10, 20])


def test_no_film_without_frames_or_without_an_stn(fake_mnist_dir, tmp_path):
    run(tmp_path / "off", fake_mnist_dir, "--steps", "4", "--frames", "0")
    run(tmp_path / "cnn", fake_mnist_dir, "--steps", "4", "--no-stn")
    for name in ("off", "cnn"):
        assert not (tmp_path / name / animation.GIF_FILE).exists()
        assert not (tmp_path / name / animation.FRAMES_FILE).exists()


def test_write_gif_takes_at_most_max_frames(tmp_path):
    film = animation.Film(str(tmp_path), np.zeros((3, 42 * 42)), (42, 42, 1), "affine")
    for step in range(0, 200, 2):
        film.add(step, np.tile([1.0, 0, 0, 0, 1.0, 0], (3, 1)) * (1 + step / 400),
                 np.full((3, 28, 28, 1), step / 200))
    film.write_gif(str(tmp_path / "a.gif"), 200)
    # distinct frames, each at most once (Pillow merges repeats into one longer frame)
    assert 2 <= Image.open(tmp_path / "a.gif").n_frames <= animation.MAX_FRAMES


def test_the_gif_can_be_drawn_again_from_the_kept_frames(fake_mnist_dir, tmp_path, capsys):
    run(tmp_path, fake_mnist_dir, "--steps", "10", "--frames", "10")
    film = animation.Film.load(str(tmp_path))
    assert film.steps == list(range(11)) and film.input_shape == (28, 28, 1)
    panel = data.load_mnist(str(fake_mnist_dir), validation_size=50, seed=0) \
        .validation.images[:animation.PANEL]
    np.testing.assert_array_equal(film.panel, panel)
    out = tmp_path / "again.gif"
    assert animation.main([str(tmp_path), "--out", str(out), "--max-frames", "3"]) == 0
    assert Image.open(out).n_frames <= 3 and "Wrote" in capsys.readouterr().out
    assert animation.main([str(tmp_path / "nothing")]) == 1
    assert capsys.readouterr().err.startswith("error: no frames")


def test_a_stopped_runs_film_drawn_again_counts_to_the_steps_it_was_given(
        fake_mnist_dir, tmp_path, monkeypatch):
    # metrics.json keeps the step reached under "steps": the film's total is the --steps given
    datasets = data.load_mnist(str(fake_mnist_dir), validation_size=50, seed=0)
    ctrl_c_at_batch(datasets.train, 5)
    config, _ = train.parse_args(["--ckpt-dir", str(tmp_path), "--batch-size", "20",
                                  "--steps", "12", "--frames", "12"])
    with pytest.raises(KeyboardInterrupt):
        train.train(config, datasets)
    totals, write_gif = [], animation.Film.write_gif

    def spy(film, path, total_steps, **kwargs):
        totals.append(total_steps)
        return write_gif(film, path, total_steps, **kwargs)

    monkeypatch.setattr(animation.Film, "write_gif", spy)
    assert animation.main([str(tmp_path), "--out", str(tmp_path / "again.gif")]) == 0
    stopped_at = checkpoints.checkpoint_steps(str(tmp_path))[0]
    assert animation.Film.load(str(tmp_path)).steps[-1] == stopped_at < 12 and totals == [12]
