"""The letters' schedule benchmark: the validation history it reads, and its table."""
import pytest

from benchmarks import letters_peak


def test_the_validation_range_is_read_over_the_last_third():
    history = [[1000, 0.90], [2000, 0.97], [2999, 0.99], [3000, 0.995], [3500, 0.988],
               [4000, 0.992]]
    # the last third of 4,000 steps: from step 2,667 on
    assert letters_peak.last_range(history, 4000) == pytest.approx([98.8, 99.5])
    assert letters_peak.last_range([[9, 0.5]], 9) == [50.0, 50.0]


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
