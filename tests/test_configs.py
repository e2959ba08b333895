"""The named runs of configs/: each one loads, passes the one check, and every entry point
builds the same settings from it."""
import argparse
import dataclasses
from pathlib import Path

import pytest

import predict
import train
from benchmarks import distorted, mnist
from letters import data as letters_data
from letters import train as letters_train
from mnist_stn import configs
from mnist_stn.constants import TRAIN_FILE_SIZE, VALIDATION_SIZE


@pytest.mark.parametrize("wing, train_size", [
    ("mnist", TRAIN_FILE_SIZE - VALIDATION_SIZE), ("letters", letters_data.SPLIT[0])])
def test_every_named_run_loads_and_passes_the_check(wing, train_size):
    names = configs.names(wing)
    assert len(names) >= 3
    for name in names:
        config = configs.train_config(name, wing, "ckpt")
        config.check(train_size=train_size)
        text = (configs.CONFIG_DIR / f"{name}.toml").read_text()
        assert "Record: docs/records/" in text, name              # its story
        record = text.split("Record: ")[1].split()[0]
        assert (configs.CONFIG_DIR.parent / record).is_file(), (name, record)


def test_shares_of_the_run_become_steps_in_one_place():
    r = configs.train_config("R", "mnist", "ckpt")
    assert (r.steps, r.ramp_steps, r.classifier_hold) == (36000, 8000, (2000, 10000))
    assert r.loc_lr_multiplier == 3.0 and r.model["image_size"] == 28
    short = configs.train_config("R", "mnist", "ckpt", steps=900)
    assert (short.ramp_steps, short.classifier_hold) == (200, (50, 250))
    cnn = configs.train_config("R-cnn", "mnist", "ckpt")
    assert cnn.ramp_steps == 8000 and cnn.classifier_hold is None
    assert cnn.loc_lr_multiplier == 1.0 and cnn.model["stn"] is False
    clutter = configs.train_config("clutter", "mnist", "ckpt")
    assert clutter.model["loc_start_scale"] == 0.5 and clutter.model["image_size"] == 60
    assert configs.steps_of("2/9", 36000) == 8000
    with pytest.raises(configs.ConfigError, match="a fraction like"):
        configs.steps_of("two ninths", 900)


def test_the_flags_name_the_runs():
    assert configs.select("mnist") == "mnist"
    assert configs.select("mnist", stn=False) == "mnist-cnn"
    assert configs.select("mnist", distortion="R", stn=False) == "R-cnn"
    assert configs.select("mnist", config="tutorial") == "tutorial"
    assert configs.select("letters", stn=False) == "letters-cnn"
    with pytest.raises(configs.ConfigError, match="has no cnn run of its own"):
        configs.select("mnist", config="tutorial", stn=False)
    assert configs.select("mnist", distortion="P", transform="tps") == "P-tps"
    assert configs.select("mnist", config="E", transform="projective") == "E-projective"
    with pytest.raises(configs.ConfigError, match="not a run of the letters wing"):
        configs.load("R", "letters")


@pytest.mark.parametrize("flags, message", [
    (["--transform", "tps"], "--transform: config 'mnist' has no tps run of its own "
                             "(mnist-tps); the runs with one: E, P, R, RTS"),
    (["--distortion", "R", "--no-stn", "--transform", "projective"],
     "--transform: a CNN without the STN has no transformer"),
    (["--config", "R-tps", "--transform", "tps"], "config 'R-tps' has no tps run")])
def test_a_transform_the_run_has_no_config_for_is_one_error_line(flags, message, capsys):
    for entry_point in (train, predict):
        with pytest.raises(SystemExit) as exit_info:
            entry_point.parse_args(flags)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_predict_finds_the_checkpoint_of_the_transform_train_py_saved():
    trained, _ = train.parse_args(["--distortion", "P", "--transform", "tps"])
    found = predict.parse_args(["--distortion", "P", "--transform", "tps"])
    assert trained.ckpt_dir == found.ckpt_dir == str(Path("checkpoints") / "P-tps")
    assert trained.model["transform"] == "tps"


def benchmark_args(steps=None):
    return argparse.Namespace(steps=steps, precision="fp32")


@pytest.mark.parametrize("flags, name", [
    (["--distortion", "R"], "R"), (["--distortion", "R", "--no-stn"], "R-cnn"),
    (["--distortion", "clutter"], "clutter"), (["--distortion", "RTS", "--steps", "900"], "RTS"),
    (["--distortion", "P", "--transform", "tps"], "P-tps"),
    (["--config", "E", "--transform", "projective"], "E-projective")])
def test_train_py_and_the_distorted_benchmark_build_the_same_settings(flags, name):
    ours, _ = train.parse_args(flags + ["--precision", "fp32", "--ckpt-dir", "c"])
    steps = 900 if "--steps" in flags else None
    theirs = distorted.make_config(name, 0, benchmark_args(steps), "c")
    assert dataclasses.asdict(ours) == dataclasses.asdict(theirs)


def test_train_py_and_the_mnist_benchmark_build_the_same_settings():
    ours, _ = train.parse_args(["--precision", "fp32", "--ckpt-dir", "c"])
    assert dataclasses.asdict(ours) == dataclasses.asdict(
        mnist.make_config("mnist", 0, benchmark_args(), "c"))


def test_the_bare_letters_command_trains_the_headline_run():
    config, _ = letters_train.parse_args(["--precision", "fp32"])
    headline = configs.train_config("letters", "letters", configs.default_dir("letters"),
                                    precision="fp32")
    assert dataclasses.asdict(config) == dataclasses.asdict(headline)
    assert config.steps == 9000 and config.model["pixel_range"] == "-1,1"


def test_a_flag_overrides_one_field_and_a_config_names_the_folder(capsys):
    config, _ = train.parse_args(["--config", "tutorial", "--steps", "7"])
    assert (config.steps, config.learning_rate, config.lr_schedule) == (7, 1e-4, "constant")
    assert config.ckpt_dir == configs.default_dir("tutorial")
    assert "Run: tutorial (configs/tutorial.toml)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        train.parse_args(["--config", "R", "--distortion", "RTS"])
    assert stop.value.code == 2
    assert "--distortion is short for --config" in capsys.readouterr().err
