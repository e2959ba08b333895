"""What a checkpoint folder holds, and getting a trained model back out of it.

A folder holds the Saver's ``model.ckpt-<step>`` files, ``config.json`` (how its graph
was built: the dict handed to a ``build_graph`` function), ``metrics.json`` (written
when training ends) and TensorBoard's event files. Training and prediction both read
it through this module, so neither script imports the other.
"""
import json
import os
import re

import numpy as np

from mnist_stn.compat import tf
from mnist_stn.precision import session_config

CKPT_NAME = "model.ckpt"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
EVAL_BATCH = 1000           # images per session run when evaluating: large is faster


class CheckpointError(Exception):
    """No checkpoint, a damaged one, or one of another model; the message says what to do."""


def default_dir(stn, distortion="none", root="checkpoints"):
    """Where a model is kept unless --ckpt-dir says: checkpoints/stn, checkpoints/cnn,
    checkpoints/stn-RTS, ..."""
    name = "stn" if stn else "cnn"
    return os.path.join(root, name if distortion == "none" else f"{name}-{distortion}")


def write_json(path, payload):
    """Write JSON atomically, so Ctrl-C never leaves half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def read_config(ckpt_dir):
    """The build settings saved beside a checkpoint, or None if there are none."""
    path = os.path.join(ckpt_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def prepare_dir(ckpt_dir, config):
    """Make the folder; refuse one that holds a checkpoint of another model."""
    os.makedirs(ckpt_dir, exist_ok=True)
    saved = read_config(ckpt_dir)
    if saved is not None and saved != config:
        differ = ", ".join(f"{key} {saved.get(key)}, not {config.get(key)}"
                           for key in sorted(set(saved) | set(config))
                           if saved.get(key) != config.get(key))
        raise CheckpointError(f"{ckpt_dir} holds a checkpoint of another model ({differ}); "
                              "use another --ckpt-dir or the same flags")


def _step(path):
    return int(re.search(r"-(\d+)$", path).group(1))


def unlisted_steps(ckpt_dir):
    """Steps of checkpoint files newer than the latest one listed in ``checkpoint``.

    A save that was cut off leaves such files: TF writes the data and index files first
    and lists them last, so they are not resumed from.
    """
    latest = tf.train.latest_checkpoint(ckpt_dir)
    newest = _step(latest) if latest else -1
    found = {int(m.group(1)) for name in os.listdir(ckpt_dir)
             for m in [re.fullmatch(re.escape(CKPT_NAME) + r"-(\d+)\.index", name)] if m}
    return sorted(step for step in found if step > newest)


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


def restore_or_initialize(sess, saver, ckpt_dir):
    """Resume from the latest checkpoint, else initialise. Returns its path or None."""
    latest = tf.train.latest_checkpoint(ckpt_dir)
    unlisted = unlisted_steps(ckpt_dir)
    if unlisted:
        print(f"Found checkpoint files of step {unlisted[-1]} in {ckpt_dir} that were "
              "never listed (a save was cut off); they are not used.")
    if not latest:
        sess.run(tf.global_variables_initializer())
        if unlisted:
            print("Starting from step 0.")
        return None
    try:
        saver.restore(sess, latest)
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError(f"cannot resume from {latest} ({tf_error_reason(e)}); "
                              f"delete {ckpt_dir} or use another --ckpt-dir") from e
    print(f"Resuming from {latest}")
    return latest


class Restored:
    """A trained model back from its folder, for inference.

    ``build_graph(config)`` must build the same graph as training did, from the
    ``config.json`` saved there, and return a dict of its nodes; ``precision`` is
    "fp32" or "bf16" (see mnist_stn/precision.py).
    """

    def __init__(self, ckpt_dir, build_graph, how_to_train="run train.py first",
                 precision="fp32"):
        latest = tf.train.latest_checkpoint(ckpt_dir) if os.path.isdir(ckpt_dir) else None
        config = read_config(ckpt_dir) if latest else None
        if config is None:
            raise CheckpointError(f"no checkpoint in {ckpt_dir}: {how_to_train}, "
                                  "or pass --ckpt-dir")
        self.config = config
        self.checkpoint = latest
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.g = build_graph(config)
            self.sess = tf.Session(config=session_config(precision))
            try:
                tf.train.Saver().restore(self.sess, latest)
            except (tf.errors.OpError, ValueError) as e:
                raise CheckpointError(f"cannot restore {latest} ({tf_error_reason(e)}); "
                                      "train again or pass another --ckpt-dir") from e

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
