"""The letters' schedule benchmark: the validation history it reads, and its table."""
import argparse

import pytest

from benchmarks import letters_peak
from letters import data as letters_data


def test_a_run_records_its_validation_over_the_last_third(tmp_path):
    sets = letters_data.load_letters(str(tmp_path / "letters"), count=120,
                                     split=(80, 20, 20), progress=lambda *a: None)
    args = argparse.Namespace(steps=3, eval_every=1, precision="fp32")
    record = letters_peak.train_run("cosine", 1, args, str(tmp_path / "run"), sets)
    assert [step for step, _ in record["validations"]] == [1, 2, 3]
    # the last third of 3 steps: steps 2 and 3
    last = [100 * acc for step, acc in record["validations"] if step >= 2]
    assert record["last_third_validation"] == [min(last), max(last)]
    assert (record["schedule"], record["seed"], record["steps"]) == ("cosine", 1, 3)
    assert record["batch_size"] == 32 and 0 <= record["test_accuracy"] <= 100


def peak_record(accuracy, seed, schedule="cosine"):
    return {"run": "letters", "schedule": schedule, "seed": seed, "steps": 4000,
            "batch_size": 32, "test_accuracy": accuracy,
            "last_third_validation": [98.9, 99.6], "train_minutes": 55.2,
            "images_per_second": 38.6, "command": "python -m benchmarks.letters_peak",
            "machine": "a machine", "date": "2026-12-07", "precision": "fp32"}


def test_the_table_gives_each_seed_the_mean_and_the_worst():
    records = {letters_peak.key("cosine", 4000, s): peak_record(a, s)
               for s, a in ((0, 99.6), (1, 99.3), (2, 99.8))}
    records[letters_peak.key("constant", 4000, 0)] = peak_record(98.2, 0, "constant")
    text = letters_peak.table(records)
    assert "| cosine, 4000 x 32 | 99.6% (0), 99.3% (1), 99.8% (2) | 99.57% (99.3%) | " \
           "98.9-99.6%, 98.9-99.6%, 98.9-99.6% | 55, 55, 55 min | 39, 39, 39 |" in text
    assert "| constant, 4000 x 32 | 98.2% (0) | 98.20% (98.2%) |" in text
    # 1,000 letters at 99.4%: sqrt(0.994 x 0.006 / 1000) = 0.244 points
    assert "uncertain by 0.24 points" in text
    assert letters_peak.standard_error(99.4) == pytest.approx(0.2442, abs=1e-4)
    assert letters_peak.standard_error(100.0) == 0.0
