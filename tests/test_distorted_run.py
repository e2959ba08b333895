"""Training and predicting on distorted digits, and the rotation the benchmark reports."""
import argparse
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

import predict
import train
from helpers import refused
from mnist_stn import animation, data, distort
from mnist_stn.compat import tf


def test_distorted_training_and_prediction(fake_mnist_dir, tmp_path, capsys):
    ckpt = tmp_path / "stn-RTS"
    config, _ = train.parse_args(["--ckpt-dir", str(ckpt), "--steps", "5", "--batch-size",
                                  "10", "--distortion", "RTS"])
    datasets = data.load_mnist(str(fake_mnist_dir), validation_size=50)
    metrics = train.train(config, datasets)
    assert metrics["distortion"] == "RTS" and metrics["image_size"] == 42
    assert metrics["loc_head"] == "identity"          # the default with --distortion
    # The test accuracy is that of the fixed RTS test set, not of the clean digits:
    # evaluate the checkpoint on both and compare.
    restored = predict.restore(str(ckpt), config.precision)   # as trained
    rts = distort.fixed_test_set(datasets.test.images, "RTS", seed=distort.TEST_SEED)
    assert restored.evaluate(rts, datasets.test.labels)["accuracy"] == metrics["test_accuracy"]
    # TensorBoard shows each 42x42 input beside its 28x28 rectified digit (padded)
    events = next(ckpt.glob("events.out.tfevents*"))
    images = [value.image for event in tf.train.summary_iterator(str(events))
              for value in event.summary.value if value.tag.startswith("input_rectified")]
    assert images and (images[0].height, images[0].width) == (42, 84)
    # the learning animation, one frame a step here (5 steps, fewer than --frames)
    assert Image.open(ckpt / animation.GIF_FILE).n_frames >= 2
    with np.load(ckpt / animation.FRAMES_FILE) as film:
        np.testing.assert_array_equal(film["steps"], [0, 1, 2, 3, 4, 5])

    out = tmp_path / "out"
    assert predict.main(["--ckpt-dir", str(ckpt), "--data-dir", str(fake_mnist_dir),
                         "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "tested on distortion 'RTS'" in printed
    shown, _, total = re.search(r"Test accuracy: ([\d.]+)% \((\d+)/(\d+), STN",
                                      printed).groups()
    assert int(total) == 100     # the whole generated test set, distorted as in training
    assert shown == f"{100 * metrics['test_accuracy']:.2f}"
    assert (out / predict.GRID_FILE).stat().st_size > 1000

    # the model reads 42x42 canvases: a 60x60 test set or a user's 28x28 digit won't do
    assert predict.main(["--ckpt-dir", str(ckpt), "--data-dir", str(fake_mnist_dir),
                         "--out-dir", str(out), "--distortion", "clutter"]) == 1
    assert "42x42" in capsys.readouterr().err


def test_default_checkpoint_dirs_follow_the_named_run():
    assert train.parse_args([])[0].ckpt_dir == "checkpoints/mnist"
    assert train.parse_args(["--no-stn", "--distortion", "RTS"])[0].ckpt_dir == \
        "checkpoints/RTS-cnn"
    assert predict.parse_args(["--distortion", "R"]).ckpt_dir == "checkpoints/R"


@pytest.mark.slow
def test_the_distorted_benchmark_records_a_run(mnist_dir, have_real_mnist, tmp_path):
    from benchmarks import distorted
    results = tmp_path / "r.json"
    distorted.main(["--data-dir", str(mnist_dir), "--configs", "R", "--steps", "3",
                    "--seeds", "2", "--results", str(results), "--figures",
                    str(tmp_path / "fig"), "--ckpt-root", str(tmp_path / "ck")])
    record = json.loads(results.read_text())["R-seed2"]
    assert (record["config"], record["seed"], record["kind"], record["model"]) == (
        "R", 2, "R", "ST-CNN")
    assert record["steps"] == 3 and record["batch_size"] == 50
    assert record["resumed_at_step"] == 0
    # the run is configs/R.toml at 3 steps, as train.py builds it
    metrics = json.loads((tmp_path / "ck" / "R-seed2" / "metrics.json").read_text())
    assert metrics["ramp_steps"] == 1 and metrics["classifier_hold"] == [0, 1]
    assert metrics["loc_lr_multiplier"] == 3.0 and metrics["seed"] == 2
    left = record["turn_left"]             # 3 steps: the STN has turned nothing yet
    assert abs(left["std"] - record["residual_angle_std"]) < 1e-9 and left["std"] > 40
    assert sorted(left["std_per_digit"]) == [str(d) for d in range(10)]   # JSON keys
    # ... and digits not rotated it leaves nearly as written (the 3-step loc net is
    # still near the identity start: a few degrees against the ±90° applied, more on the
    # stand-ins' bars), so the turn left from that pose is the applied one
    assert left["std_own_pose"] < 8 and abs(left["std_from_own_pose"] - left["std"]) < 8
    assert len(left["by_angle"]) == 6 and left["by_angle"][-1]["short"] > 60
    if have_real_mnist:        # the stand-ins' bars may have no digit long enough to lean
        assert np.isfinite(left["lean_undone"]) and abs(left["lean_correlation"]) <= 1
    assert 50 < record["angle_std"] < 54          # ±90° uniform: 52° std
    for figure in ("figure", "most_rotated_figure", "animation"):
        assert (tmp_path / "fig" / os.path.basename(record[figure])).stat().st_size > 1000
    table = (tmp_path / "r.md").read_text()
    assert "| R | 2 | 0.7% |" in table

    # measured and drawn again from the kept checkpoint: the same numbers, the training
    # record kept
    for figure in ("figure", "most_rotated_figure"):
        (tmp_path / "fig" / os.path.basename(record[figure])).unlink()
    distorted.main(["--data-dir", str(mnist_dir), "--configs", "R", "--seeds", "2",
                    "--remeasure", "--results", str(results), "--ckpt-root",
                    str(tmp_path / "ck"), "--figures", str(tmp_path / "fig")])
    again = json.loads(results.read_text())["R-seed2"]
    assert set(again["remeasured"]) == {"date", "command"}
    for figure in ("figure", "most_rotated_figure"):
        assert (tmp_path / "fig" / os.path.basename(record[figure])).stat().st_size > 1000
    assert again["residual_angle_std"] == pytest.approx(record["residual_angle_std"])
    assert again["steps"] == 3


def test_each_distortion_trains_with_its_named_run():
    r = train.parse_args(["--distortion", "R", "--steps", "900"])[0]
    assert r.ramp_steps == 200 and r.loc_lr_multiplier == 3.0
    # the classifier held still from 1/18 to 5/18 of the steps (2,000-10,000 of 36,000)
    assert r.classifier_hold == (50, 250)
    cnn = train.parse_args(["--distortion", "R", "--no-stn"])[0]
    assert cnn.classifier_hold is None and cnn.ramp_steps == 8000
    for flags in (["--distortion", "RTS"], [], ["--distortion", "R", "--no-stn"],
                  ["--distortion", "E"], ["--distortion", "simard"], ["--distortion", "P"],
                  ["--distortion", "clutter"]):
        config = train.parse_args(flags)[0]
        assert config.loc_lr_multiplier == 1.0
        kind = flags[1] if flags else ""
        budget = {"R": 36000, "RTS": 50000, "P": 72000, "E": 36000, "simard": 60000,
                  "clutter": 24000}.get(
            kind, 12000)
        assert config.steps == budget                        # the measured budgets
        ramp = {"R": 8000, "clutter": 8000}.get(kind, 0)
        assert config.ramp_steps == ramp                     # the CNN: the same data
        # only clutter's box starts zoomed in (half the canvas's side)
        assert config.model.get("loc_start_scale", 1.0) == (0.5 if kind == "clutter" else 1.0)


def test_the_distorted_benchmark_refuses_what_cannot_run(capsys):
    from benchmarks import distorted
    for flags, says in ((["--steps", "0"], "--steps must be at least 1, not 0"),
                        (["--seeds", "-1"], "--seed must be in 0..4294967295, not -1"),
                        (["--seeds", str(2 ** 32)], "--seed must be in 0..4294967295"),
                        (["--seeds", "one"], "--seeds takes comma-separated integers"),
                        (["--configs", "STN"], "no run 'STN' in the mnist wing"),
                        (["--configs", "mnist"], "runs ['mnist'] are not of this benchmark"),
                        (["--configs", "R", "--no-stn", "--transform", "tps"],
                         "a classifier without the STN has no transformer")):
        refused(distorted.main, flags, says, capsys)


def test_the_distorted_benchmark_has_at_most_twelve_flags(capsys):
    from benchmarks import distorted
    with pytest.raises(SystemExit):
        distorted.main(["--help"])
    flags = set(re.findall(r"^  (--[a-z-]+)", capsys.readouterr().out, re.M)) - {"--help"}
    assert 5 <= len(flags) <= 12, flags


def test_a_trial_keeps_its_checkpoints_and_figures_beside_its_results(tmp_path):
    from benchmarks import common
    trial = argparse.Namespace(results=str(tmp_path / "trial.json"), ckpt_root=None)
    assert common.keep_beside_results(trial, "distorted") == str(tmp_path / "trial-figures")
    assert trial.ckpt_root == str(tmp_path / "trial-checkpoints")
    own = argparse.Namespace(results=common.results_path("distorted"), ckpt_root=None)
    assert common.keep_beside_results(own, "distorted") is None
    assert own.ckpt_root == os.path.join(common.CKPT_ROOT, "distorted")


def test_two_benchmarks_on_one_results_file_keep_each_others_records(tmp_path):
    from benchmarks import common
    path, table_path = str(tmp_path / "r.json"), str(tmp_path / "r.md")
    make_table = lambda data: "\n".join(sorted(data)) + "\n"     # noqa: E731
    first = common.Records(path, table_path, make_table)         # started first ...
    second = common.Records(path, table_path, make_table)
    second.add("b", {"error": 2})                                 # ... finished second
    first.add("a", {"error": 1})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": {"error": 1},
                                                             "b": {"error": 2}}
    assert (tmp_path / "r.md").read_text() == "a\nb\n"


@pytest.mark.slow
def test_remeasure_finds_the_box_again(mnist_dir, tmp_path):
    from benchmarks import distorted
    results = tmp_path / "r.json"
    common = ["--data-dir", str(mnist_dir), "--configs", "clutter", "--results",
              str(results), "--ckpt-root", str(tmp_path / "ck"), "--figures",
              str(tmp_path / "fig")]
    distorted.main(common + ["--steps", "2"])
    record = json.loads(results.read_text())["clutter"]
    measured = record["box_area"], record["centre_in_box"]
    record["box_area"] = record["centre_in_box"] = -1.0          # as if not yet measured
    results.write_text(json.dumps({"clutter": record}))
    distorted.main(common + ["--remeasure"])
    again = json.loads(results.read_text())["clutter"]
    # a sampled box may reach past the canvas, so its area can exceed the canvas's
    assert (again["box_area"], again["centre_in_box"]) == pytest.approx(measured)
    assert again["box_area"] > 0 and 0 <= again["centre_in_box"] <= 1


def test_the_lean_fit_reports_an_empty_selection_and_finds_a_known_slope():
    from benchmarks import distorted
    assert distorted.lean_fit(np.array([]), np.array([])) == (None, None)
    assert distorted.lean_fit(np.ones(5), np.arange(5.0)) == (None, None)   # no spread
    lean = np.linspace(-20, 20, 9)
    slope, correlation = distorted.lean_fit(lean, -0.4 * lean + 3)
    assert slope == pytest.approx(-0.4) and correlation == pytest.approx(-1)


def test_a_benchmark_stopped_by_ctrl_c_exits_130_without_a_traceback():
    from benchmarks import common

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as stopped:
        common.run_main(interrupted)
    assert stopped.value.code == 130
    with pytest.raises(SystemExit) as finished:
        common.run_main(lambda: None)
    assert finished.value.code is None                  # exit status 0


@pytest.mark.slow
def test_a_trial_never_replaces_a_recorded_run_and_a_stopped_one_resumes(mnist_dir, tmp_path,
                                                                         capsys):
    from benchmarks import distorted
    results = tmp_path / "r.json"
    common = ["--data-dir", str(mnist_dir), "--configs", "RTS-cnn", "--results",
              str(results), "--ckpt-root", str(tmp_path / "ck"), "--figures",
              str(tmp_path / "fig")]
    distorted.main(common + ["--steps", "2"])
    recorded = results.read_text()
    # the same run again, as a 5-step trial would be: refused before it trains
    with pytest.raises(SystemExit) as stop:
        distorted.main(common + ["--steps", "5"])
    assert stop.value.code == 2
    assert "RTS-cnn already recorded" in capsys.readouterr().err
    assert results.read_text() == recorded
    # asked to: it goes on from the kept checkpoint (as after Ctrl-C), not from step 0
    distorted.main(common + ["--steps", "4", "--overwrite"])
    record = json.loads(results.read_text())["RTS-cnn"]
    assert record["steps"] == 4 and record["resumed_at_step"] == 2
    # a finished run measured again (as after a crash in its measures): nothing trains,
    # the record keeps the training time of the runs that did
    distorted.main(common + ["--steps", "4", "--overwrite"])
    again = json.loads(results.read_text())["RTS-cnn"]
    assert again["resumed_at_step"] == 4 and again["test_error"] == record["test_error"]
    assert again["train_minutes"] == pytest.approx(record["train_minutes"], abs=0.01)
    assert again["train_minutes"] > 0 and again["frame_share"] is None


@pytest.mark.slow
def test_the_distorted_benchmark_measures_a_spline_run(mnist_dir, tmp_path):
    from benchmarks import distorted
    results = tmp_path / "r.json"
    distorted.main(["--data-dir", str(mnist_dir), "--configs", "R-tps", "--steps", "3",
                    "--results", str(results), "--ckpt-root", str(tmp_path / "ck"),
                    "--figures", str(tmp_path / "fig")])
    record = json.loads(results.read_text())["R-tps"]
    # the turn of its affine part: 3 steps from the identity, nearly all of it left
    assert 50 < record["angle_std"] < 54 and record["residual_angle_std"] > 40
    assert (tmp_path / "fig" / "R-tps-most-rotated.png").stat().st_size > 1000


def test_the_mnist_benchmark_refuses_what_cannot_train(capsys):
    from benchmarks import mnist
    for flags, says in ((["--steps", "0"], "--steps must be at least 1"),
                        (["--seeds", "-1"], "--seed must be in 0..4294967295"),
                        (["--configs", "STN"], "no run 'STN' in the mnist wing")):
        refused(mnist.main, flags, says, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [("RTS-projective", 8), ("R-tps", 32)])
def test_each_transformer_trains_films_and_predicts(fake_mnist_dir, tmp_path, capsys, name,
                                                    size):
    ckpt = tmp_path / name
    config, _ = train.parse_args(["--config", name, "--ckpt-dir", str(ckpt), "--steps", "3",
                                  "--batch-size", "10", "--eval-every", "3"])
    assert config.model["transform"] == name.split("-")[1]
    metrics = train.train(config, data.load_mnist(str(fake_mnist_dir), validation_size=50))
    assert metrics["transform"] == config.model["transform"]
    with np.load(ckpt / animation.FRAMES_FILE) as film:
        assert film["thetas"].shape[-1] == size
    assert Image.open(ckpt / animation.GIF_FILE).n_frames >= 2
    capsys.readouterr()
    assert predict.main(["--ckpt-dir", str(ckpt), "--data-dir", str(fake_mnist_dir),
                         "--out-dir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "What the STN did to the test digits: turned by" in out
    assert (tmp_path / "out" / predict.GRID_FILE).stat().st_size > 1000


def test_a_damaged_results_file_is_one_line_and_kept(tmp_path, capsys):
    from benchmarks import common, distorted
    results = tmp_path / "r.json"
    results.write_text("{broken")
    with pytest.raises(SystemExit) as stop:
        common.run_main(lambda: distorted.main(["--configs", "R", "--results", str(results)]))
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot read {results}") and len(err.splitlines()) == 1
    assert results.read_text() == "{broken"
