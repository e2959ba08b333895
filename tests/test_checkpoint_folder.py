"""A checkpoint folder as users treat it: moved, copied, damaged, shared, full, resumed."""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import predict
import train
from helpers import ctrl_c_at_batch, small_datasets
from letters import predict as letters_predict
from mnist_stn import animation, checkpoints, configs, data, training
from mnist_stn.compat import tf

ROOT = Path(__file__).resolve().parents[1]


def train_cnn(fake_mnist_dir, ckpt_dir, *flags):
    """train.py's train() on the small plain CNN; returns the metrics."""
    config, _ = train.parse_args(["--ckpt-dir", str(ckpt_dir), "--no-stn", "--log-every", "1",
                                  "--frames", "0", *flags])
    return train.train(config, small_datasets(fake_mnist_dir))


def test_a_moved_folder_resumes_and_a_copy_restores_its_own(fake_mnist_dir, tmp_path, capsys):
    first = (tmp_path / "first").resolve()              # an absolute --ckpt-dir
    train_cnn(fake_mnist_dir, first, "--steps", "2", "--eval-every", "1")
    index = (first / checkpoints.INDEX_FILE).read_text()
    assert str(tmp_path) not in index and '"model.ckpt-2"' in index
    assert str(tmp_path) not in (first / checkpoints.METRICS_FILE).read_text()
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    moved = tmp_path / "moved"
    first.rename(moved)
    capsys.readouterr()
    metrics = train_cnn(fake_mnist_dir, moved, "--steps", "4")
    assert metrics["resumed_at_step"] == 2 and metrics["steps"] == 4
    assert f"Resuming from {moved / 'model.ckpt-2'}" in capsys.readouterr().out
    # the copy restores from its own files, not from the folder it was copied from
    (moved / "model.ckpt-2.index").unlink()
    restored = predict.restore(str(copy))
    assert restored.checkpoint == str(copy / "model.ckpt-2")
    restored.close()


def test_a_folder_named_with_glob_characters_resumes(fake_mnist_dir, tmp_path):
    folder = tmp_path / "run[1]*?"
    train_cnn(fake_mnist_dir, folder, "--steps", "3", "--eval-every", "1")
    metrics = train_cnn(fake_mnist_dir, folder, "--steps", "5", "--eval-every", "1")
    assert metrics["resumed_at_step"] == 3
    # only the newest three are kept, here as everywhere
    assert checkpoints.checkpoint_steps(str(folder)) == [5, 4, 3]


def test_a_damaged_index_does_not_restart_from_zero(fake_mnist_dir, tmp_path):
    train_cnn(fake_mnist_dir, tmp_path, "--steps", "2")
    (tmp_path / checkpoints.INDEX_FILE).write_text("garbage {{{")
    assert train_cnn(fake_mnist_dir, tmp_path, "--steps", "3")["resumed_at_step"] == 2


def test_a_second_training_into_a_busy_folder_is_refused(fake_mnist_dir, mnist_dir, tmp_path,
                                                         capsys):
    train_cnn(fake_mnist_dir, tmp_path, "--steps", "1")
    with checkpoints.lock(str(tmp_path)):           # a first training, still running
        code = train.main(["--ckpt-dir", str(tmp_path), "--no-stn", "--steps", "5",
                           "--data-dir", str(mnist_dir)])
    err = capsys.readouterr().err
    assert code == 1 and "another training" in err and str(os.getpid()) in err
    assert len(err.strip().splitlines()) == 1
    assert checkpoints.checkpoint_steps(str(tmp_path)) == [1]       # nothing written


@pytest.mark.slow
def test_a_folder_locked_by_a_process_that_died_is_free(fake_mnist_dir, tmp_path):
    train_cnn(fake_mnist_dir, tmp_path, "--steps", "1")
    code = ("import os, sys\nfrom mnist_stn import checkpoints\n"
            "with checkpoints.lock(sys.argv[1]):\n    os._exit(9)\n")   # killed holding it
    assert subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT).returncode == 9
    assert train_cnn(fake_mnist_dir, tmp_path, "--steps", "2")["steps"] == 2


def limit_file_size(limit):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # writes fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


@pytest.mark.slow
def test_a_failed_save_is_one_line_and_keeps_the_last_checkpoint(mnist_dir, tmp_path):
    run = [sys.executable, "train.py", "--data-dir", str(mnist_dir), "--ckpt-dir",
           str(tmp_path), "--no-stn", "--frames", "0", "--eval-every", "2"]
    assert subprocess.run(run + ["--steps", "2"], cwd=ROOT, capture_output=True).returncode == 0
    kept = {p.name: p.read_bytes() for p in tmp_path.glob("model.ckpt-*")}
    # a file-size limit below the checkpoint's size: the disk is full for it
    size = sum(len(b) for name, b in kept.items() if ".data-" in name)
    proc = subprocess.run(run + ["--steps", "4"], cwd=ROOT, capture_output=True, text=True,
                          preexec_fn=limit_file_size(size // 2))
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "could not save step 4" in errors[0]
    assert "model.ckpt-2" in errors[0] and "Traceback" not in proc.stderr
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("model.ckpt"))
    assert left == sorted(kept)                             # nothing half-written left
    assert {p.name: p.read_bytes() for p in tmp_path.glob("model.ckpt-*")} == kept


def test_metrics_keep_every_loss_across_resumes_and_a_finished_rerun(fake_mnist_dir, tmp_path):
    train_cnn(fake_mnist_dir, tmp_path, "--steps", "2")
    train_cnn(fake_mnist_dir, tmp_path, "--steps", "4")
    metrics = json.loads((tmp_path / checkpoints.METRICS_FILE).read_text())
    assert [step for step, _ in metrics["losses"]] == [1, 2, 3, 4]
    # evaluated at the end of each run (--eval-every is 1000): the history of both
    assert [step for step, _ in metrics["validations"]] == [2, 4]
    assert metrics["validations"][-1][1] == pytest.approx(metrics["validation_accuracy"])
    assert metrics["train_seconds"] >= metrics["train_seconds_this_run"] > 0
    again = train_cnn(fake_mnist_dir, tmp_path, "--steps", "4")     # the finished command
    assert again["losses"] == metrics["losses"] and again["test_accuracy"] is not None
    assert checkpoints.checkpoint_steps(str(tmp_path))[0] == 4


def test_metrics_are_kept_on_ctrl_c_before_the_end(fake_mnist_dir, tmp_path):
    train_cnn(fake_mnist_dir, tmp_path, "--steps", "3", "--eval-every", "1")
    # a later checkpoint damaged: the losses of the steps after the one resumed go
    metrics = json.loads((tmp_path / checkpoints.METRICS_FILE).read_text())
    assert metrics["steps"] == 3 and len(metrics["losses"]) == 3
    shutil.rmtree(tmp_path / "gone", ignore_errors=True)
    for path in tmp_path.glob("model.ckpt-3.*"):
        path.unlink()
    resumed = train_cnn(fake_mnist_dir, tmp_path, "--steps", "4")
    assert resumed["resumed_at_step"] == 2
    assert [step for step, _ in resumed["losses"]] == [1, 2, 3, 4]
    # evaluated every step, then (default --eval-every) at the end: step 3's is gone
    assert [step for step, _ in resumed["validations"]] == [1, 2, 4]


def test_weights_gone_nan_are_never_saved(fake_mnist_dir, tmp_path):
    with pytest.raises(training.TrainingError, match="NaN or infinite|loss became"):
        train_cnn(fake_mnist_dir, tmp_path, "--steps", "20", "--eval-every", "1",
                  "--learning-rate", "1e30")
    for step in checkpoints.checkpoint_steps(str(tmp_path)):
        reader = tf.train.load_checkpoint(checkpoints.prefix(str(tmp_path), step))
        for name in reader.get_variable_to_shape_map():
            assert np.isfinite(reader.get_tensor(name)).all(), (step, name)


def test_resuming_with_changed_flags_says_what_changed(fake_mnist_dir, tmp_path, capsys):
    train_cnn(fake_mnist_dir, tmp_path, "--steps", "2")
    capsys.readouterr()
    train_cnn(fake_mnist_dir, tmp_path, "--steps", "3", "--batch-size", "20")
    out = capsys.readouterr().out
    assert "changed settings" in out and "batch_size 20 (was 50)" in out
    assert "steps 3 (was 2)" in out
    with pytest.raises(checkpoints.CheckpointError, match="holds step 3, past --steps 2"):
        train_cnn(fake_mnist_dir, tmp_path, "--steps", "2")
    with pytest.raises(checkpoints.CheckpointError, match="another model"):
        train.train(train.parse_args(["--ckpt-dir", str(tmp_path), "--steps", "4"])[0],
                    small_datasets(fake_mnist_dir))                 # the STN into a CNN's


def test_a_stopped_run_resumed_with_its_own_flags_says_nothing_changed(fake_mnist_dir,
                                                                       tmp_path, capsys):
    # metrics.json of a stopped run holds the step it reached: resuming it with the same
    # --steps is no change, and a new --steps is said against the one it was given
    datasets = small_datasets(fake_mnist_dir)
    ctrl_c_at_batch(datasets.train, 3)
    config, _ = train.parse_args(["--ckpt-dir", str(tmp_path / "a"), "--no-stn",
                                  "--frames", "0", "--steps", "6"])
    with pytest.raises(KeyboardInterrupt):
        train.train(config, datasets)
    assert checkpoints.checkpoint_steps(str(tmp_path / "a"))[0] == 3
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    capsys.readouterr()
    metrics = train_cnn(fake_mnist_dir, tmp_path / "a", "--steps", "6")
    out = capsys.readouterr().out
    assert "Resuming from" in out and "changed settings" not in out
    assert metrics["resumed_at_step"] == 3 and metrics["steps"] == 6
    train_cnn(fake_mnist_dir, tmp_path / "b", "--steps", "8")
    assert "steps 8 (was 6)" in capsys.readouterr().out


def test_help_of_train_says_what_resume_does(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "moved or copied" in out and "newest intact checkpoint" in out
    assert "Flags changed on resume apply to the steps still to come" in out


@pytest.mark.parametrize("seed", ["-1", str(2 ** 32)])
def test_a_seed_out_of_range_is_one_line(seed, capsys):
    from letters import train as letters_train
    for parse in (train.parse_args, letters_train.parse_args):
        with pytest.raises(SystemExit) as stop:
            parse(["--seed", seed])
        assert stop.value.code == 2
        assert f"--seed must be in 0..4294967295, not {seed}" in capsys.readouterr().err


def test_a_tilde_folder_goes_home(fake_mnist_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    train_cnn(fake_mnist_dir, "~/runs/cnn", "--steps", "1")
    assert checkpoints.checkpoint_steps(str(tmp_path / "home" / "runs" / "cnn")) == [1]
    assert not (tmp_path / "~").exists()


def test_folders_that_cannot_be_written_are_one_line(fake_mnist_dir, mnist_dir, tmp_path,
                                                     capsys, monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    flags = ["--data-dir", str(mnist_dir), "--no-stn", "--steps", "1"]
    assert train.main(["--ckpt-dir", str(a_file), *flags]) == 1
    assert capsys.readouterr().err == f"error: --ckpt-dir {a_file} is a file, not a folder\n"
    assert train.main(["--ckpt-dir", str(a_file / "below"), *flags]) == 1
    assert "error: cannot make --ckpt-dir" in capsys.readouterr().err
    # a read-only folder (root writes anywhere, so the OS's answer is given here)
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(checkpoints.os, "access",
                        lambda path, mode: False if str(path) == str(read_only)
                        else real_access(path, mode))
    assert train.main(["--ckpt-dir", str(read_only), *flags]) == 1
    assert capsys.readouterr().err == f"error: --ckpt-dir {read_only} is read-only; pass " \
                                      "another --ckpt-dir\n"
    trained = tmp_path / "trained"
    train_cnn(fake_mnist_dir, trained, "--steps", "1")
    capsys.readouterr()
    for out_dir, says in ((a_file, "is a file, not a folder"), (read_only, "is read-only")):
        assert predict.main(["--ckpt-dir", str(trained), "--no-stn", "--data-dir",
                             str(fake_mnist_dir), "--out-dir", str(out_dir)]) == 1
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1


def fake_folder(path, config):
    """A checkpoint folder of some model: its config and checkpoint file names."""
    path.mkdir()
    (path / checkpoints.CONFIG_FILE).write_text(json.dumps(config))
    for name in ("model.ckpt-1.index", "model.ckpt-1.data-00000-of-00001"):
        (path / name).write_bytes(b"")
    return path


def test_each_wing_refuses_the_other_wings_checkpoint(tmp_path, capsys):
    letters = fake_folder(tmp_path / "letters", {"stn": True, "width": 1.0, "bn": "after-relu",
                                                 "pixel_range": "0,1", "norm": "renorm"})
    digits = fake_folder(tmp_path / "digits", {"stn": True, "distortion": "none",
                                               "image_size": 28, "loc_head": "tutorial"})
    assert predict.main(["--ckpt-dir", str(letters)]) == 1
    err = capsys.readouterr().err
    assert "holds a model of another kind" in err and len(err.strip().splitlines()) == 1
    assert letters_predict.main(["--ckpt-dir", str(digits)]) == 1
    err = capsys.readouterr().err
    assert "holds a model of another kind" in err and len(err.strip().splitlines()) == 1


def test_a_corrupt_config_is_one_line(fake_mnist_dir, mnist_dir, tmp_path, capsys):
    train_cnn(fake_mnist_dir, tmp_path, "--steps", "1")
    (tmp_path / checkpoints.CONFIG_FILE).write_text("{not json")
    capsys.readouterr()
    assert train.main(["--ckpt-dir", str(tmp_path), "--no-stn", "--steps", "2",
                       "--data-dir", str(mnist_dir)]) == 1
    assert predict.main(["--ckpt-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(f"cannot read {tmp_path}" in line for line in err)


@pytest.mark.parametrize("name, content, says", [
    (animation.FRAMES_FILE, b"PK\x03\x04 not a zip", "no frames"),
    ("metrics.json", b"{broken", "cannot read the run's steps"),
])
def test_the_film_from_damaged_files_is_one_line(tmp_path, capsys, name, content, says):
    film = animation.Film(str(tmp_path), np.zeros((animation.PANEL, 784)), (28, 28, 1),
                          "affine")
    film.add(0, np.tile([1, 0, 0, 0, 1, 0], (animation.PANEL, 1)),
             np.zeros((animation.PANEL, 28, 28, 1)))
    film.save()
    checkpoints.write_json(str(tmp_path / checkpoints.CONFIG_FILE),
                           configs.load("mnist", "mnist")[0])
    (tmp_path / name).write_bytes(content)
    assert animation.main([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and says in err and len(err.strip().splitlines()) == 1


def test_a_damaged_film_restarts_with_a_line(tmp_path, capsys):
    (tmp_path / animation.FRAMES_FILE).write_bytes(b"garbage")
    film = animation.Film(str(tmp_path), np.zeros((animation.PANEL, 784)), (28, 28, 1),
                          "affine")
    film.resume(10)
    assert film.steps == [] and "damaged" in capsys.readouterr().out


def test_ctrl_c_while_predict_starts_leaves_no_traceback(tmp_path):
    proc = subprocess.Popen([sys.executable, "predict.py", "--ckpt-dir", str(tmp_path)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)                          # TensorFlow is still loading
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (-signal.SIGINT, 130) and "Traceback" not in err


@pytest.mark.slow
def test_a_closed_terminal_saves_as_ctrl_c_does(mnist_dir, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "train.py", "--data-dir", str(mnist_dir), "--ckpt-dir",
         str(tmp_path), "--steps", "100000", "--log-every", "5", "--eval-every", "100000",
         "--frames", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("step"):
                break
        proc.send_signal(signal.SIGHUP)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Interrupted at step" in out, err
    assert checkpoints.checkpoint_steps(str(tmp_path))[0] >= 5


def test_letters_refuse_to_write_into_a_folder_of_other_files(tmp_path):
    from letters import data as letters_data
    (tmp_path / "thesis.txt").write_text("precious")
    with pytest.raises(data.DataError, match="holds files but no"):
        letters_data.load_letters(str(tmp_path), count=30, split=(10, 10, 10))
    assert os.listdir(tmp_path) == ["thesis.txt"]


def test_a_model_is_restored_in_the_precision_it_was_trained_in(fake_mnist_dir, tmp_path):
    train_cnn(fake_mnist_dir, tmp_path, "--steps", "1", "--precision", "bf16")
    restored = predict.restore(str(tmp_path))
    assert restored.precision == "bf16"
    restored.close()
    restored = predict.restore(str(tmp_path), "fp32")          # unless told otherwise
    assert restored.precision == "fp32"
    restored.close()
    assert predict.parse_args([]).precision is None              # the command line: as trained


def test_a_model_saved_when_E_was_simards_warp_is_read_as_simard(tmp_path):
    # config.json as training wrote it before the transformer was a setting: its E was
    # Simard's warp, which is now called simard (E is the STN paper's spline)
    old = {"stn": True, "distortion": "E", "loc_head": "identity", "image_size": 28}
    (tmp_path / checkpoints.CONFIG_FILE).write_text(json.dumps(old))
    assert checkpoints.read_config(tmp_path) == dict(
        old, distortion="simard", transform="affine", loc_start_scale=1.0, digits=1,
        transformers=1, classifier="cnn")
    # resuming it on the paper's E is refused; on simard it goes on
    paper_e, _ = configs.load("E", "mnist")
    with pytest.raises(checkpoints.CheckpointError, match="distortion simard, not E"):
        checkpoints.prepare_dir(str(tmp_path), paper_e)
    checkpoints.prepare_dir(str(tmp_path), configs.load("simard", "mnist")[0])
    # a model saved with its transformer keeps its names
    new = dict(old, transform="affine")
    (tmp_path / checkpoints.CONFIG_FILE).write_text(json.dumps(new))
    assert checkpoints.read_config(tmp_path) == dict(new, loc_start_scale=1.0, digits=1,
                                                     transformers=1, classifier="cnn")
    checkpoints.prepare_dir(str(tmp_path), paper_e)
