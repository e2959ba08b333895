"""The recipes of configs/: each run resolves to the settings it had as a file of its own,
every entry point builds the same settings from the same flags, and a broken recipe is
one line that names the file, the key and what is allowed."""
import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import pytest

import predict
import train
from benchmarks import distorted, mnist
from letters import data as letters_data
from letters import train as letters_train
from mnist_stn import checkpoints, configs
from mnist_stn.constants import TRAIN_FILE_SIZE, VALIDATION_SIZE

ROOT = Path(__file__).resolve().parents[1]
# Every run as it resolved when each was a file of configs/ of its own (at da27c6f):
# TrainConfig fields, the model among them
BEFORE = json.loads((ROOT / "tests" / "data" / "runs_before_recipes.json").read_text())
# recipes changed on purpose since the files became recipes, each by its record
CHANGED_SINCE = {name: {"steps": 3600, "lr_schedule": "cosine"}   # the time-to-the-paper record
                 for name in ("letters", "letters-cnn")}


def settings(config):
    out = dataclasses.asdict(config)
    out.pop("ckpt_dir")
    out["model"] = checkpoints.current_names(out["model"])
    out["classifier_hold"] = list(out["classifier_hold"] or []) or None
    if out["loc_hold"] is None:          # a setting added since, which no former run had
        del out["loc_hold"]
    return out


@pytest.mark.parametrize("run", sorted(BEFORE))
def test_every_run_that_was_a_file_resolves_to_the_same_settings(run):
    before = dict(BEFORE[run], model=checkpoints.current_names(BEFORE[run]["model"]),
                  **CHANGED_SINCE.get(run, {}))
    assert settings(configs.train_config(run, configs.wing_of(run), "c")) == before


def test_distortion_and_transform_flags_build_what_the_twin_file_said():
    ours, _ = train.parse_args(["--distortion", "R", "--transform", "tps", "--precision",
                                "fp32"])
    assert settings(ours) == dict(BEFORE["R-tps"], model=checkpoints.current_names(
        BEFORE["R-tps"]["model"]))
    assert ours.ckpt_dir == configs.default_dir("R-tps")


@pytest.mark.parametrize("results", ["distorted", "mnist"])
def test_every_committed_record_names_a_run_with_its_settings(results):
    records = json.loads((ROOT / "benchmarks" / "results" / f"{results}.json").read_text())
    for key, record in records.items():
        model, train_table = configs.load(record["config"], "mnist")
        assert key.split("-seed")[0] == record["config"]
        if results == "distorted":
            assert model["distortion"] == record["kind"], key
            assert model["stn"] == (record["model"] == "ST-CNN"), key
            if record.get("transform"):
                assert model["transform"] == record["transform"], key
            assert train_table.get("batch_size", 50) == record["batch_size"], key
        else:
            assert model["stn"] == record["stn"], key


@pytest.mark.parametrize("wing, train_size", [
    ("mnist", TRAIN_FILE_SIZE - VALIDATION_SIZE), ("letters", letters_data.SPLIT[0])])
def test_every_recipe_passes_the_check_and_links_its_record(wing, train_size):
    for name in configs.names(wing):
        configs.train_config(name, wing, "ckpt").check(train_size=train_size)
        text = (configs.CONFIG_DIR / f"{name}.toml").read_text()
        links = [line.split("Record: ")[1].strip() for line in text.splitlines()
                 if "Record: " in line]
        assert links and all((ROOT / link).is_file() for link in links), name


def test_configs_holds_recipes_that_say_only_what_differs():
    files = sorted(configs.CONFIG_DIR.glob("*.toml"))
    assert len(files) <= 11
    assert sum(len(f.read_text().splitlines()) for f in files) <= 230
    defaults = dataclasses.asdict(configs.train_config("mnist", "mnist", "c"))
    for path in files:
        model, train_table = configs._read(path.stem)
        wing = configs.wing_of(path.stem)
        for key, value in model.items():
            assert value != configs.MODEL_SETTINGS[wing][key][0], (path.name, key)
        for key, value in train_table.items():
            assert defaults.get(key) != value, (path.name, key)


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
    assert configs.select("mnist", config="tutorial", stn=False) == "tutorial-cnn"
    assert configs.select("mnist", transform="tps") == "mnist-tps"
    assert configs.select("mnist", transform="affine") == "mnist"
    assert configs.select("mnist", config="R-tps", transform="affine") == "R"
    assert configs.select("letters", stn=False) == "letters-cnn"
    assert configs.select("mnist", distortion="P", transform="tps") == "P-tps"
    assert configs.select("mnist", config="E", transform="projective") == "E-projective"
    assert configs.parse_run("letters-tutorial-cnn", "letters") == (
        "letters-tutorial", {"stn": False})
    with pytest.raises(configs.ConfigError, match="no run 'R' in the letters wing"):
        configs.load("R", "letters")
    with pytest.raises(configs.ConfigError, match="-tsp is neither"):
        configs.load("R-tsp", "mnist")


@pytest.mark.parametrize("flags, message", [
    (["--distortion", "R", "--no-stn", "--transform", "projective"],
     "--transform: a classifier without the STN has no transformer"),
    (["--config", "R-cnn-cnn"], "-cnn is neither"),
    (["--config", "nope"], "no run 'nope' in the mnist wing")])
def test_a_run_that_cannot_be_is_one_error_line(flags, message, capsys):
    for entry_point in (train, predict):
        with pytest.raises(SystemExit) as exit_info:
            entry_point.parse_args(flags)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_clean_mnist_takes_every_transformer():
    for transform in ("affine", "projective", "tps"):
        config, _ = train.parse_args(["--transform", transform])
        assert config.model["transform"] == transform and config.model["stn"]
        assert config.model["loc_head"] == "tutorial"


def test_predict_finds_the_checkpoint_of_the_transform_train_py_saved():
    trained, _ = train.parse_args(["--distortion", "P", "--transform", "tps"])
    found = predict.parse_args(["--distortion", "P", "--transform", "tps"])
    assert trained.ckpt_dir == found.ckpt_dir == str(Path("checkpoints") / "P-tps")
    assert trained.model["transform"] == "tps"


def benchmark_args(steps=None, stn=True, transform=None, configs_="R"):
    return argparse.Namespace(steps=steps, precision="fp32", stn=stn, transform=transform,
                              configs=configs_, seeds="0")


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


def test_the_benchmarks_take_the_same_overrides():
    parser = argparse.ArgumentParser()
    planned = distorted.common.planned_runs(
        parser, benchmark_args(transform="tps", configs_="R,E"), ["R", "E"],
        distorted.make_config, 1000)
    assert planned == [("R-tps", 0), ("E-tps", 0)]
    planned = distorted.common.planned_runs(
        parser, benchmark_args(stn=False, configs_="R"), ["R"], distorted.make_config, 1000)
    assert planned == [("R-cnn", 0)]


def test_train_py_and_the_mnist_benchmark_build_the_same_settings():
    ours, _ = train.parse_args(["--precision", "fp32", "--ckpt-dir", "c"])
    assert dataclasses.asdict(ours) == dataclasses.asdict(
        mnist.make_config("mnist", 0, benchmark_args(), "c"))


def test_the_bare_letters_command_trains_the_headline_run():
    config, _ = letters_train.parse_args(["--precision", "fp32"])
    headline = configs.train_config("letters", "letters", configs.default_dir("letters"),
                                    precision="fp32")
    assert dataclasses.asdict(config) == dataclasses.asdict(headline)
    assert config.steps == 3600 and config.model["pixel_range"] == "-1,1"
    assert config.save_every == config.eval_every       # one meaning in both wings


def test_a_flag_overrides_one_field_and_a_config_names_the_folder(capsys):
    config, _ = train.parse_args(["--config", "tutorial", "--steps", "7"])
    assert (config.steps, config.learning_rate, config.lr_schedule) == (7, 1e-4, "constant")
    assert config.ckpt_dir == configs.default_dir("tutorial")
    assert "Run: tutorial (configs/tutorial.toml)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        train.parse_args(["--config", "R", "--distortion", "RTS"])
    assert stop.value.code == 2
    assert "--distortion is short for --config" in capsys.readouterr().err


# -- a broken recipe: one line naming the file, the key and what is allowed ------------

@pytest.fixture
def recipes(tmp_path, monkeypatch):
    """configs/ copied into tmp_path, for a test to break one recipe of."""
    folder = tmp_path / "configs"
    shutil.copytree(configs.CONFIG_DIR, folder)
    monkeypatch.setattr(configs, "CONFIG_DIR", folder)
    return folder


@pytest.mark.parametrize("model, train_table, message", [
    ('loc_haed = "identity"', "", "configs/R.toml: [model] has no setting 'loc_haed'"),
    ('transform = "tsp"', "", "[model] transform = 'tsp': must be one of 'affine', "
                              "'projective', 'tps'"),
    ('distortion = "X"', "", "[model] distortion = 'X': must be one of 'none', 'R'"),
    ('stn = "no"', "", "[model] stn = 'no': must be true or false"),
    ("", "batch_size = 50.5", "[train] batch_size = 50.5: must be a whole number"),
    ("", "steps = 4.5", "[train] steps = 4.5: must be a whole number"),
    ("", 'learning_rate = "3e-4"', "[train] learning_rate = '3e-4': must be a number"),
    ("", 'ramp = "5/3"', "[train] ramp '5/3': a share of the steps must be a fraction "
                         "from 0 to 1"),
    ("", 'classifier_hold = ["1/18", "5/3"]', "[train] classifier_hold '5/3'"),
    ("", 'classifier_hold = ["5/18", "1/18"]', "FROM must come before UNTIL"),
    ("", "stepz = 10", "[train] has no setting 'stepz'"),
])
def test_a_broken_value_is_one_line_and_breaks_only_its_run(recipes, model, train_table,
                                                            message, capsys):
    text = (recipes / "R.toml").read_text()
    text = text.replace("[model]\n", f"[model]\n{model}\n") if model else text
    text = text.replace("[train]\n", f"[train]\n{train_table}\n") if train_table else text
    # a key given twice is TOML's own error: drop the recipe's own line of that key
    key = (model or train_table).split(" =")[0]
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(key + " "))
    text = "\n".join(line for i, line in enumerate(lines)
                     if not (line.startswith(key + " ") and i != first)) + "\n"
    (recipes / "R.toml").write_text(text)
    with pytest.raises(SystemExit):
        train.parse_args(["--distortion", "R"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in err
    config, _ = train.parse_args(["--distortion", "E"])      # the others still run
    assert config.model["distortion"] == "E"


@pytest.mark.parametrize("text, message", [
    ("[model\n", "cannot read configs/R.toml"),
    ("[model]\n[extra]\n", "extra is not a table of a recipe")])
def test_a_recipe_that_is_not_toml_breaks_only_its_run_and_not_help(recipes, text, message,
                                                                    capsys):
    (recipes / "R.toml").write_text(text)
    with pytest.raises(SystemExit) as stop:
        train.parse_args(["--help"])
    assert stop.value.code == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        train.parse_args(["--distortion", "R"])
    assert message in capsys.readouterr().err
    assert train.parse_args(["--distortion", "P"])[0].model["distortion"] == "P"
