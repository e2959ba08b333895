"""The letters benchmark's tables: runs over several seeds read as mean and range."""
import json
import os
import types

import numpy as np
import pytest

from benchmarks import letters as bench
from letters import data as letters_data


def main_record(accuracy, seed=0, part="main", run="STN-CNN", norm="renorm",
                pixel_range="0,1"):
    return {"test_accuracy": accuracy, "validation_accuracy": accuracy - 1.0,
            "steps": 100, "batch_size": 32, "epochs": 0.4, "wall_minutes": 2.0,
            "machine": "test CPU", **bench.variant(part, run, norm, pixel_range, seed)}


def recorded(*records):
    """--results as the benchmark keeps them: each record under the key its fields make."""
    return {bench.record_key(record): record for record in records}


def test_main_table_gives_the_mean_and_range_over_seeds():
    records = recorded(main_record(98.0), main_record(98.6, 2), main_record(99.0, 1),
                       main_record(90.0, norm="plain"),                 # its own row
                       main_record(97.0, 0, run="CNN"))
    assert "main/STN-CNN [seed 2]" in records and "main/STN-CNN [plain BN]" in records
    assert [r["seed"] for r in bench.by_seed(records, "main", "STN-CNN", "renorm", "0,1")] \
        == [0, 1, 2]
    rows = {line.split(" | ")[0]: line for line in bench.tables(records).splitlines()
            if line.startswith("| ")}
    assert "| 98.5% (98.0-99.0, 3 seeds) | 97.5% (97.0-98.0, 3 seeds) |" in rows["| STN-CNN"]
    assert "| 90.0% | 89.0% |" in rows["| STN-CNN [plain BN]"]
    assert "| 97.0% | 96.0% |" in rows["| CNN"]
    assert rows["| CNN"].endswith("| 2.0 min |")


def test_a_resumed_run_is_marked_beside_its_wall_time():
    # its wall time is of the resumed process only, so the mean over seeds is too short
    records = recorded(main_record(97.0, 0, run="CNN"),
                       {**main_record(98.0, 1, run="CNN"), "wall_minutes": 1.0,
                        "resumed_at_step": 60})
    row = next(line for line in bench.tables(records).splitlines()
               if line.startswith("| CNN |"))
    assert row.endswith("| 1.5 min (resumed) |")


def test_over_seeds_leaves_out_missing_values():
    assert bench.over_seeds([]) == "-"
    assert bench.over_seeds([None, 1.25], digits=2, unit="") == "1.25"
    assert bench.over_seeds([1.0, 2.0, 4.5], digits=3, unit="") == \
        "2.500 (1.000-4.500, 3 seeds)"


@pytest.mark.parametrize("flags", [["--seeds", "0,x"], ["--variants", "9"],
                                   ["--parts", "bnstats"]])
def test_bad_flags_are_one_error_line(flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(flags)
    assert exit_info.value.code == 2
    assert "error: " in capsys.readouterr().err.strip().splitlines()[-1]


def test_the_test_letters_strokes_are_drawn_again_only_for_the_generated_set(monkeypatch,
                                                                            capsys):
    monkeypatch.setattr(letters_data, "COUNT", 30)          # a set of 30: 10 / 10 / 10
    monkeypatch.setattr(letters_data, "SPLIT", (10, 10, 10))
    images, _, strokes = letters_data.generate(30, letters_data.GENERATION_SEED, strokes=True)
    test = types.SimpleNamespace(images=images[20:].reshape(10, -1) / np.float32(255))
    np.testing.assert_array_equal(bench.letter_strokes(test), strokes[20:])
    other = types.SimpleNamespace(images=images[10:20].reshape(10, -1) / np.float32(255))
    assert bench.letter_strokes(other) is None
    assert "strokes are unknown" in capsys.readouterr().out


def test_skip_recorded_leaves_measured_checkpoints_alone(tmp_path, monkeypatch):
    # a re-run after a stop measures only the checkpoints not yet recorded
    measured = bench.record_key(bench.variant("bnstats", "STN-CNN", "renorm", "0,1", 1))
    results = tmp_path / "letters.json"
    results.write_text(json.dumps({measured: {"moving_averages": 97.0}}))
    for name in ("CNN-seed1", "STN-CNN-seed1"):
        (tmp_path / name).mkdir()
    opened = []

    class Restored:
        def __init__(self, folder, *args, **kwargs):
            opened.append(os.path.basename(folder))
            raise KeyboardInterrupt     # stop the pass at the first checkpoint it opens

    monkeypatch.setattr(bench.checkpoints, "Restored", Restored)
    monkeypatch.setattr(bench.letters_data, "load_letters", lambda *a, **k: types.SimpleNamespace(
        test=None, train=None))
    with pytest.raises(KeyboardInterrupt):
        bench.main(["--parts", "bnstats", "--seeds", "1", "--skip-recorded",
                    "--ckpt-root", str(tmp_path), "--results", str(results),
                    "--table", str(tmp_path / "letters.md")])
    assert opened == ["CNN-seed1"]
    assert json.loads(results.read_text())[measured] == {"moving_averages": 97.0}


def test_the_stn_effect_reads_as_one_row_over_seeds():
    effect = {"theta_det_mean": 0.4, "letter_offset_before_px": 15.0, "width": 0.5,
              "validation_loss": 0.1, "final_train_loss": 0.1,
              "letter_offset_after_px": 14.0, "ink_offset_before_px": 7.0,
              "ink_offset_after_px": 6.0}
    amsgrad = {"part": "ablation", "run": "AMSGrad"}
    records = recorded({**main_record(96.0, 0, **amsgrad), **effect},
                       {**main_record(97.0, 1, **amsgrad), **effect, "theta_det_mean": 0.6,
                        "letter_offset_after_px": 16.0},
                       {**main_record(98.0, 0), "theta_det_mean": 0.5})
    rows = [line for line in bench.tables(records).splitlines()
            if line.startswith("| AMSGrad |") or line.startswith("| STN-CNN |")]
    assert "| STN-CNN | 0.500 | - | - |" in rows
    assert ("| AMSGrad | 0.500 (0.400-0.600, 2 seeds) | 15.00 -> 15.00 px (14.00-16.00, "
            "2 seeds) | 7.00 -> 6.00 px (6.00-6.00, 2 seeds) |") in rows


def test_main_runs_in_signed_pixels_are_their_own_rows_and_resume(tmp_path, monkeypatch):
    # --pixel-range -1,1 trains both main models on pixels in [-1, 1], records them
    # apart from the tutorial's [0, 1] runs, and --skip-recorded leaves a recorded one
    results = tmp_path / "main.json"
    done = main_record(99.0, 1, pixel_range="-1,1")
    results.write_text(json.dumps(recorded({**done, "width": 1.0},
                                           {**main_record(97.0, 0, run="CNN"), "width": 1.0})))
    done = bench.record_key(done)
    trained = []

    class Restored:
        def close(self):
            pass

    def run(name, config, optimizer, datasets, strokes=None):
        trained.append((name, config.model["pixel_range"], config.seed,
                        os.path.basename(config.ckpt_dir)))
        return Restored(), {"test_accuracy": 98.0, "validation_accuracy": 97.0, "steps": 100,
                            "batch_size": 32, "epochs": 0.4, "wall_minutes": 2.0,
                            "machine": "test CPU", "seed": config.seed, "model": config.model}

    monkeypatch.setattr(bench, "run", run)
    monkeypatch.setattr(bench.letters_data, "load_letters", lambda *a, **k: types.SimpleNamespace(
        test=None, train=None))
    bench.main(["--parts", "main", "--seeds", "1", "--pixel-range=-1,1", "--skip-recorded",
                "--ckpt-root", str(tmp_path), "--results", str(results),
                "--table", str(tmp_path / "main.md")])
    assert trained == [("CNN", "-1,1", 1, "CNN_pixels_in_-1_1_-seed1")]
    kept = json.loads(results.read_text())
    assert kept[done]["test_accuracy"] == 99.0              # not trained again
    new = kept["main/CNN [pixels in [-1, 1]] [seed 1]"]
    assert new["test_accuracy"] == 98.0 and (new["run"], new["pixel_range"]) == ("CNN", "-1,1")
    rows = [line.split(" | ")[:3] for line in (tmp_path / "main.md").read_text().splitlines()
            if line.startswith("| CNN")]
    assert rows == [["| CNN", "98.5%", "97.0%"], ["| CNN [pixels in [-1, 1]]", "98.5%", "98.0%"]]
