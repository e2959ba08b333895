"""What a checkpoint folder holds, and getting a trained model back out of it.

A folder holds the Saver's ``model.ckpt-<step>`` files (the newest three), the
``checkpoint`` index TensorFlow's tools read, ``config.json`` (how its graph was built:
the dict handed to a ``build_graph`` function), ``metrics.json`` (the training settings,
the losses so far and, once training ends, the accuracies) and TensorBoard's event
files. Every path written inside is relative, so the folder can be moved, renamed or
copied; training and prediction both find the newest intact checkpoint by listing the
folder itself, never through paths written inside it. Training and prediction both read
it through this module, so neither script imports the other.
"""
import contextlib
import json
import os
import re
import shutil
import tempfile

import numpy as np

from mnist_stn.compat import tf
from mnist_stn.precision import session_config

try:
    import fcntl                 # POSIX: a lock that dies with the process holding it
except ImportError:              # Windows: no lock, two runs into one folder go unnoticed
    fcntl = None

CKPT_NAME = "model.ckpt"
INDEX_FILE = "checkpoint"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
LOCK_FILE = ".lock"
KEEP = 3                    # newest checkpoints kept in a folder
EVAL_BATCH = 1000           # images per session run when evaluating: large is faster


class CheckpointError(Exception):
    """No checkpoint, a damaged one, or one of another model; the message says what to do."""


def write_json(path, payload):
    """Write JSON atomically, so Ctrl-C never leaves half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def read_json(ckpt_dir, name):
    """A JSON file of the folder as a dict, or None if there is none.

    Raises CheckpointError (one line) if it is there but damaged.
    """
    path = os.path.join(ckpt_dir, name)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            payload = json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path} ({e}); restore it from a copy or use "
                              "another --ckpt-dir") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} is not a {name} of this project")
    return payload


def read_config(ckpt_dir):
    """The build settings saved beside a checkpoint, as this version names them, or None
    if there are none."""
    saved = read_json(ckpt_dir, CONFIG_FILE)
    return None if saved is None else current_names(saved)


def current_names(config):
    """A model's settings as this version names them, complete: the one place that reads
    what older folders leave unsaid. A model saved before the transformer was a setting
    is affine, and an MNIST one's distortion E was Simard's warp, now called simard (E
    is the STN paper's since): read as such, it is tested on the data it was trained on
    and is not resumed on other data. A letters model saved before batch
    renormalisation has plain batch norm; an MNIST one before the start scale, 1, and
    before the addition, one digit, one STN, the CNN. A CNN has no loc net: its start
    scale and number of STNs are moot, read as 1."""
    config = dict(config)
    if "transform" not in config:
        config["transform"] = "affine"
        if config.get("distortion") == "E":
            config["distortion"] = "simard"
    if "distortion" in config:
        config["loc_start_scale"] = config.get("loc_start_scale", 1.0) if config["stn"] \
            else 1.0
        config.setdefault("digits", 1)
        config.setdefault("classifier", "cnn")
        config["transformers"] = config.get("transformers", 1) if config["stn"] else 1
    if "width" in config:
        config.setdefault("norm", "plain")
    return config


def make_dir(path, flag="--ckpt-dir"):
    """Make a folder to write into (``~`` expanded), or say in one line why not."""
    path = os.path.expanduser(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise CheckpointError(f"{flag} {path} is a file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"cannot make {flag} {path} ({e.strerror or e})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CheckpointError(f"{flag} {path} is read-only; pass another {flag}")
    return path


def prepare_dir(ckpt_dir, config):
    """Make the folder; refuse one that holds a checkpoint of another model."""
    make_dir(ckpt_dir)
    saved, config = read_config(ckpt_dir), current_names(config)
    if saved is not None and saved != config:
        differ = ", ".join(f"{key} {saved.get(key)}, not {config.get(key)}"
                           for key in sorted(set(saved) | set(config))
                           if saved.get(key) != config.get(key))
        raise CheckpointError(f"{ckpt_dir} holds a checkpoint of another model ({differ}); "
                              "use another --ckpt-dir or the same flags")


@contextlib.contextmanager
def lock(ckpt_dir):
    """Hold the folder for one training run: a second one into it is refused.

    The lock is the kernel's (flock), so a run that died, however, holds nothing.
    """
    if fcntl is None:
        yield
        return
    with open(os.path.join(ckpt_dir, LOCK_FILE), "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            pid = f.read().strip() or "unknown"
            raise CheckpointError(f"another training (process {pid}) is writing to "
                                  f"{ckpt_dir}; wait for it to end or use another "
                                  "--ckpt-dir") from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def checkpoint_steps(ckpt_dir):
    """The steps of the checkpoints in the folder (index and data files both there),
    newest first. The folder is listed, not globbed: names like ``run[1]`` work."""
    try:
        names = set(os.listdir(ckpt_dir))
    except OSError:
        return []
    steps = []
    for name in names:
        m = re.fullmatch(re.escape(CKPT_NAME) + r"-(\d+)\.index", name)
        if m and any(n.startswith(f"{CKPT_NAME}-{m.group(1)}.data-") for n in names):
            steps.append(int(m.group(1)))
    return sorted(steps, reverse=True)


def prefix(ckpt_dir, step):
    return os.path.join(ckpt_dir, f"{CKPT_NAME}-{step}")


def tf_error_reason(error):
    """The line of a TensorFlow error that says what went wrong.

    TF's OpError message opens with "Graph execution error:" and the node's stack;
    the reason (e.g. "Read less bytes than requested") is among the lines after it.
    """
    lines = [line.strip() for line in str(getattr(error, "message", error)).splitlines()]
    skip = ("Graph execution error", "Detected at node", "File ", "Node:", "[[",
            "Original stack trace", "(most recent call last)")
    for line in lines:
        if line and not line.startswith(skip) and not line.endswith(":"):
            return line
    return next((line for line in lines if line), type(error).__name__)


@contextlib.contextmanager
def unglobbed(folder):
    """The folder under a name without glob characters (``*?[``), which TensorFlow's
    checkpoint reader would read as a pattern: a link to it in a temporary folder."""
    if not any(c in folder for c in "*?["):
        yield folder
        return
    with tempfile.TemporaryDirectory() as tmp:
        link = os.path.join(tmp, "checkpoints")
        os.symlink(os.path.abspath(folder), link)
        yield link


def restore_newest(sess, saver, ckpt_dir):
    """Restore the newest intact checkpoint of the folder; returns its step, or None if
    the folder holds none.

    A damaged one (a save cut off, a file truncated) is skipped with a line that names
    its files, and the one before it is tried. Raises CheckpointError if every
    checkpoint there is damaged.
    """
    steps = checkpoint_steps(ckpt_dir)
    damaged = []
    for step in steps:
        try:
            with unglobbed(ckpt_dir) as folder:
                # the restore op itself: Saver.restore checks the path first, by globbing
                sess.run(saver.saver_def.restore_op_name,
                         {saver.saver_def.filename_tensor_name: prefix(folder, step)})
        except (tf.errors.OpError, ValueError) as e:
            reason = tf_error_reason(e)
            damaged.append(f"{CKPT_NAME}-{step} ({reason})")
            if step != steps[-1]:
                print(f"Skipping the damaged {prefix(ckpt_dir, step)} ({reason}); its "
                      f"files {CKPT_NAME}-{step}.* can be removed.", flush=True)
            continue
        return step
    if damaged:
        raise CheckpointError(f"cannot restore {prefix(ckpt_dir, steps[0])}: every "
                              f"checkpoint in {ckpt_dir} is damaged: {'; '.join(damaged)}. "
                              f"Remove the {CKPT_NAME}-* files to train again, or pass "
                              "another --ckpt-dir")
    return None


class Checkpointer:
    """Saves a session's variables into a folder that stays self-contained.

    The Saver writes the files; this class keeps the newest KEEP, writes the index with
    names relative to the folder, and on a failed save (a full disk) removes what the
    save left and says so in one line, the older checkpoints untouched.
    """

    def __init__(self, ckpt_dir):
        self.ckpt_dir = ckpt_dir
        self.saver = tf.train.Saver(max_to_keep=None)

    def restore_or_initialize(self, sess):
        """Resume from the newest intact checkpoint, else initialise. Returns its step or
        None."""
        step = restore_newest(sess, self.saver, self.ckpt_dir)
        if step is None:
            sess.run(tf.global_variables_initializer())
        else:
            print(f"Resuming from {prefix(self.ckpt_dir, step)}", flush=True)
        return step

    def save(self, sess, step):
        """Save step ``step``; returns the checkpoint's file name (no folder)."""
        try:
            self.saver.save(sess, os.path.join(self.ckpt_dir, CKPT_NAME), global_step=step,
                            write_meta_graph=False, write_state=False)
        except (tf.errors.OpError, OSError, ValueError) as e:
            self._remove(step)
            kept = checkpoint_steps(self.ckpt_dir)
            raise CheckpointError(
                f"could not save step {step} in {self.ckpt_dir} ({tf_error_reason(e)}); "
                + (f"the newest checkpoint kept is {CKPT_NAME}-{kept[0]}" if kept
                   else "no checkpoint kept")) from None
        steps = checkpoint_steps(self.ckpt_dir)
        for old in steps[KEEP:]:
            self._remove(old)
        names = [f"{CKPT_NAME}-{s}" for s in reversed(steps[:KEEP])]
        index = "".join([f'model_checkpoint_path: "{names[-1]}"\n'] +
                        [f'all_model_checkpoint_paths: "{name}"\n' for name in names])
        tmp = os.path.join(self.ckpt_dir, INDEX_FILE + ".tmp")
        with open(tmp, "w") as f:
            f.write(index)
        os.replace(tmp, os.path.join(self.ckpt_dir, INDEX_FILE))
        return f"{CKPT_NAME}-{step}"

    def _remove(self, step):
        """Remove every file a save of ``step`` wrote or left half-written."""
        base = f"{CKPT_NAME}-{step}"
        for name in os.listdir(self.ckpt_dir):
            if name.startswith((base + ".", base + "_temp")):
                path = os.path.join(self.ckpt_dir, name)
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.remove(path)


def trained_precision(ckpt_dir):
    """The precision the folder's model was trained in ("fp32" or "bf16"), from
    metrics.json; "fp32" if it does not say."""
    metrics = read_json(ckpt_dir, METRICS_FILE) or {}
    return metrics.get("precision") if metrics.get("precision") in ("fp32", "bf16") else "fp32"


class Restored:
    """A trained model back from its folder, for inference.

    ``build_graph(config)`` must build the same graph as training did, from the
    ``config.json`` saved there, and return a dict of its nodes; ``needs`` are keys
    that config must hold (a folder of the other wing's model lacks them);
    ``precision`` is "fp32" or "bf16" (see mnist_stn/precision.py), by default the one
    it was trained in.
    """

    def __init__(self, ckpt_dir, build_graph, how_to_train="run train.py first",
                 precision=None, needs=()):
        ckpt_dir = os.path.expanduser(ckpt_dir)
        steps = checkpoint_steps(ckpt_dir) if os.path.isdir(ckpt_dir) else []
        config = read_config(ckpt_dir) if steps else None
        if config is None:
            raise CheckpointError(f"no checkpoint in {ckpt_dir}: {how_to_train}, "
                                  "or pass --ckpt-dir")
        missing = [key for key in needs if key not in config]
        if missing:
            raise CheckpointError(f"{ckpt_dir} holds a model of another kind (its "
                                  f"{CONFIG_FILE} has no {', '.join(missing)}); "
                                  "pass the folder this model was trained into")
        self.config = config
        self.precision = precision or trained_precision(ckpt_dir)
        self.graph = tf.Graph()
        with self.graph.as_default():
            try:
                self.g = build_graph(config)
            except (KeyError, TypeError, ValueError) as e:
                raise CheckpointError(f"{ckpt_dir}/{CONFIG_FILE} does not describe a model "
                                      f"of this kind ({e})") from None
            self.sess = tf.Session(config=session_config(self.precision))
            try:
                step = restore_newest(self.sess, tf.train.Saver(), ckpt_dir)
            except CheckpointError as e:
                raise CheckpointError(f"{e}; or train again") from None
        self.checkpoint = prefix(ckpt_dir, step)

    def run(self, images, names=("probabilities", "rectified", "theta"), feed=None):
        """Evaluate graph nodes on (N, pixels) images, EVAL_BATCH at a time, no dropout.

        Returns a dict name -> array with N rows; a node that is None in the graph
        (``theta`` without the STN) is left out. ``feed`` adds to every batch's feed.
        """
        fetches = {name: self.g[name] for name in names if self.g[name] is not None}
        parts = {name: [] for name in fetches}
        for start in range(0, len(images), EVAL_BATCH):
            out = self.sess.run(fetches, {self.g["images"]: images[start:start + EVAL_BATCH],
                                          **(feed or {})})
            for name, value in out.items():
                parts[name].append(value)
        return {name: np.concatenate(value) for name, value in parts.items()}

    def evaluate(self, images, labels):
        """Run the model over a labelled set: arrays and accuracies, nothing printed.

        Returns ``run``'s arrays plus ``predictions`` (N,), ``correct`` (N,) bool,
        ``accuracy`` and ``per_class`` (classes,), the accuracy on each class (NaN for
        a class the set lacks).
        """
        out = self.run(images)
        out["predictions"] = out["probabilities"].argmax(1)
        out["correct"] = out["predictions"] == labels
        out["accuracy"] = float(out["correct"].mean())
        out["per_class"] = np.array([out["correct"][labels == k].mean()
                                     if (labels == k).any() else np.nan
                                     for k in range(out["probabilities"].shape[1])])
        return out

    def close(self):
        self.sess.close()
