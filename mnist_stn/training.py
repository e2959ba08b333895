"""The TF1 training loop: a graph, a train op, a Saver and a Session, step by step.

``fit`` trains any model whose ``build_graph(config)`` returns the nodes ``model.py``'s
does (placeholders ``images``, ``labels``, ``keep_prob``, ``loc_keep_prob``; ``loss``,
``accuracy``, ``num_correct``, ``rectified``): the MNIST STN of ``train.py``, and any
other model built the same way. It resumes from the newest intact checkpoint, stops
cleanly on Ctrl-C, SIGTERM or SIGHUP (saving first), refuses a NaN loss or weights,
logs progress and writes TensorBoard summaries and ``metrics.json``.
"""
import dataclasses
import math
import os
import signal
import time

from mnist_stn import animation, checkpoints, geometry, optimizers, precision
from mnist_stn.compat import tf

SUMMARY_IMAGES = 8       # inputs shown in TensorBoard, each beside its rectified version


@dataclasses.dataclass
class TrainConfig:
    """How to train; the defaults are what a recipe of configs/ leaves unsaid: the
    clean-MNIST run's (``configs/mnist.toml``)."""
    model: dict                  # how the graph is built; saved as config.json
    ckpt_dir: str
    steps: int = 12000           # total, counting those of a resumed run
    batch_size: int = 50
    learning_rate: float = 3e-4  # the peak, with the cosine schedule
    lr_schedule: str = "cosine"  # or "constant", the tutorial's, or "thirds", the STN paper's
    keep_prob: float = 0.5       # dropout in the classifier ...
    loc_keep_prob: float = 1.0   # ... and in the localisation net
    seed: int = 0
    log_every: int = 100
    eval_every: int = 1000
    save_every: int = 1000
    precision: str = "fp32"      # or "bf16": see mnist_stn/precision.py
    optimizer: str = "adam"      # or "amsgrad", "sgd": see mnist_stn/optimizers.py
    loc_lr_multiplier: float = 1.0   # the loc net's learning rate over the classifier's
    ramp_steps: int = 0          # distortions grow from none to full over these first steps
    classifier_hold: tuple | None = None   # the classifier held still over steps [from, until)
    loc_hold: tuple | None = None          # ... and the loc nets
    frames: int = 60             # of the learning animation, over the run (0: none)

    def check(self, train_size):
        """Raise ValueError naming the flag (or, for a setting only a config holds, the
        field) of the first value that cannot train."""
        if not 0 <= self.seed < 2 ** 32:             # NumPy's and TF's seed range
            raise ValueError(f"--seed must be in 0..{2 ** 32 - 1}, not {self.seed}")
        if self.frames < 0:
            raise ValueError("--frames must be 0 (no animation) or more")
        for name in ("steps", "log_every", "eval_every", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, "
                                 f"not {getattr(self, name)}")
        if not 1 <= self.batch_size <= train_size:
            raise ValueError(f"--batch-size must be in 1..{train_size}, the training set, "
                             f"not {self.batch_size}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError("--learning-rate must be a positive number, "
                             f"not {self.learning_rate}")
        for name in ("keep_prob", "loc_keep_prob"):
            if not 0 < getattr(self, name) <= 1:      # also refuses NaN
                raise ValueError(f"--{name.replace('_', '-')} must be in (0, 1], "
                                 f"not {getattr(self, name)}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"--precision must be fp32 or bf16 here, not {self.precision}")
        if not (math.isfinite(self.loc_lr_multiplier) and self.loc_lr_multiplier > 0):
            raise ValueError("loc_lr_multiplier must be a positive number, not "
                             f"{self.loc_lr_multiplier}")
        if self.ramp_steps < 0:
            raise ValueError(f"ramp_steps must be 0 (none) or more, not {self.ramp_steps}")
        for name in HOLDS:
            if getattr(self, name) is not None:
                start, until = getattr(self, name)
                if not 0 <= start < until:
                    raise ValueError(f"{name} must be steps [FROM, UNTIL), "
                                     f"0 <= FROM < UNTIL, not {list(getattr(self, name))}")
        if self.optimizer not in optimizers.OPTIMIZERS:
            raise ValueError("optimizer must be one of "
                             f"{', '.join(optimizers.OPTIMIZERS)}, not {self.optimizer}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, "
                             f"not {self.lr_schedule}")


LR_SCHEDULES = ("cosine", "constant", "thirds")
HOLDS = ("classifier_hold", "loc_hold")     # parts of the model held still a while


class TrainingError(Exception):
    """Training cannot go on (a NaN loss); the message says what to try."""


def fit(config, build_graph, train_set, validation, test, make_augment=None):
    """Train as ``config`` says; returns the metrics also written to metrics.json.

    Args:
      config: a TrainConfig.
      build_graph: ``config.model`` -> dict of graph nodes (see the module docstring).
      train_set: a data.DataSet to draw batches from.
      validation, test: (images, labels) arrays, evaluated without dropout.
      make_augment: optional ``start_step -> callable``: the callable changes every
        training batch (e.g. fresh distortions) and is closed at the end if it can be.
    Raises:
      TrainingError on a NaN loss or weights; checkpoints.CheckpointError on a folder
      of another model, in use, with no intact checkpoint, or that a save failed in;
      KeyboardInterrupt after saving on Ctrl-C, SIGTERM or SIGHUP.
    """
    config = dataclasses.replace(config, ckpt_dir=os.path.expanduser(config.ckpt_dir))
    checkpoints.prepare_dir(config.ckpt_dir, config.model)
    with checkpoints.lock(config.ckpt_dir):
        return _fit(config, build_graph, train_set, validation, test, make_augment)


def _fit(config, build_graph, train_set, validation, test, make_augment):
    """``fit`` inside its folder's lock."""
    tf.reset_default_graph()
    tf.set_random_seed(config.seed)
    g = build_graph(config.model)
    global_step = tf.train.get_or_create_global_step()
    # models with batch norm keep their moving averages' updates here
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        train_op = build_train_op(g, global_step, config)
    image_summary = build_image_summary(g)
    # a loss can stay finite while a far too large rate has made weights inf or NaN
    weights_finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(v))
                                    for v in tf.trainable_variables()])
    checkpointer = checkpoints.Checkpointer(config.ckpt_dir)
    metrics_path = os.path.join(config.ckpt_dir, checkpoints.METRICS_FILE)

    with tf.Session(config=precision.session_config(config.precision)) as sess, \
            StopRequests() as stop:
        restored = checkpointer.restore_or_initialize(sess)
        step = int(sess.run(global_step))
        record = Record(config, checkpoints.read_json(config.ckpt_dir,
                                                      checkpoints.METRICS_FILE), step)
        checkpoints.write_json(os.path.join(config.ckpt_dir, checkpoints.CONFIG_FILE),
                               config.model)
        replay_batches(train_set, step, config.batch_size)
        augment = make_augment(step) if make_augment else None
        film = start_film(config, g, validation[0], step)
        frame_every = max(1, config.steps // config.frames) if film else 0
        saved = restored

        def diverged(what):
            last = "none" if saved is None else checkpoints.prefix(config.ckpt_dir, saved)
            return TrainingError(f"{what}; stopped without saving. Last good checkpoint: "
                                 f"{last}. Try a smaller --learning-rate.")

        def save():
            if not sess.run(weights_finite):
                raise diverged(f"the weights became NaN or infinite by step {step}")
            if film:
                start = time.time()
                film.save()
                film.seconds += time.time() - start
            name = checkpointer.save(sess, step)
            checkpoints.write_json(metrics_path, record.metrics(step, log, name, film))
            return step

        def take_frame():
            start = time.time()
            theta, rectified = sess.run([g["theta"], g["rectified"]],
                                        {g["images"]: film.panel})
            film.add(step, theta, rectified)
            film.seconds += time.time() - start

        if film:
            take_frame()                    # where this run starts

        writer = tf.summary.FileWriter(config.ckpt_dir,
                                       None if restored is not None else sess.graph)
        log = Progress(config, step)
        try:
            while step < config.steps and not stop.requested:
                images, labels = train_set.next_batch(config.batch_size)
                if augment:
                    images = augment(images)
                loss, acc = train_step(sess, g, train_op, images, labels, config)
                if not math.isfinite(loss):
                    raise diverged(f"the loss became {loss} at step {step + 1}")
                step += 1
                if step % config.eval_every == 0 or step == config.steps:
                    log.validate(step, accuracy(sess, g, *validation))
                    writer.add_summary(scalars(validation_accuracy=log.validation), step)
                if step % config.log_every == 0 or step == config.steps:
                    log.record(step, loss, acc)
                    writer.add_summary(scalars(loss=loss, accuracy=acc), step)
                    writer.add_summary(sess.run(image_summary, {
                        g["images"]: validation[0][:SUMMARY_IMAGES]}), step)
                if film and (step % frame_every == 0 or step == config.steps):
                    take_frame()
                if step % config.save_every == 0 and step < config.steps:
                    saved = save()          # the last step is saved below, once
        finally:
            writer.close()
            if hasattr(augment, "close"):
                augment.close()
        train_seconds = log.elapsed()
        if step != saved:                   # a finished run run again trains nothing
            if film:
                take_frame()                # where this run ends (also on Ctrl-C)
            saved = save()
            if film:
                gif = film.write_gif(os.path.join(config.ckpt_dir, animation.GIF_FILE),
                                     config.steps)
                print(f"Wrote {gif}, {len(film.steps)} frames")
        path = checkpoints.prefix(config.ckpt_dir, saved)
        if stop.requested:
            print(f"\nInterrupted at step {step}; saved {path}. "
                  "Run the same command again to resume.")
            raise KeyboardInterrupt
        record.test_accuracy = accuracy(sess, g, *test)
        metrics = record.metrics(step, log, os.path.basename(path), film, train_seconds)
    checkpoints.write_json(metrics_path, metrics)
    print(f"Saved {path}")
    return metrics


class Record:
    """What metrics.json holds: the settings, every logged loss of the run so far (across
    resumes), and once it ends its accuracies. Written at every save."""

    def __init__(self, config, previous, step):
        self.config, self.step = config, step
        self.previous = previous or {}
        self.test_accuracy = None
        if self.previous:
            self.check_resume(step)
        # losses logged after the checkpoint resumed from never happened, for this run
        self.losses, self.validations = (
            [pair for pair in self.previous.get(name, []) if pair[0] <= step]
            for name in ("losses", "validations"))
        self.earlier_seconds = (self.previous.get("train_seconds") or 0.0) if step else 0.0

    def check_resume(self, step):
        """Refuse --steps below the checkpoint's; say which settings changed."""
        if step > self.config.steps:
            raise checkpoints.CheckpointError(
                f"{self.config.ckpt_dir} holds step {step}, past --steps "
                f"{self.config.steps}; pass --steps {step} or more, or another --ckpt-dir")
        if not step:
            return
        previous = dict(self.previous)
        # metrics.json's "steps" is the step reached; a stopped run's --steps is kept
        # as "planned_steps" (older files lack it: a stopped run's --steps is unknown)
        if "planned_steps" in previous:
            previous["steps"] = previous["planned_steps"]
        elif previous.get("test_accuracy") is None:
            previous.pop("steps", None)
        changed = [f"{name} {value} (was {previous[name]})"
                   for name, value in settings(self.config).items()
                   if name in RESUMED_SETTINGS and name in previous
                   and previous[name] != value]
        if changed:
            print(f"Resuming at step {step} with changed settings: {', '.join(changed)}. "
                  "The steps trained so far stay as they were; the steps to come use the "
                  "new values (the learning-rate schedule runs over the new --steps).",
                  flush=True)

    def metrics(self, step, log, checkpoint, film, train_seconds=None):
        seconds = log.elapsed() if train_seconds is None else train_seconds
        rate = log.images_per_second(step, seconds)
        return {**self.config.model, **settings(self.config), "steps": step,
                "planned_steps": self.config.steps,
                "test_accuracy": self.test_accuracy,
                "validation_accuracy": log.validation,
                "train_seconds_this_run": round(seconds, 1),
                "train_seconds": round(self.earlier_seconds + seconds, 1),
                "resumed_at_step": log.start_step,   # 0 unless resumed from a checkpoint
                "images_per_second": rate if rate is not None
                else self.previous.get("images_per_second"),
                "checkpoint": checkpoint,
                "frame_seconds": round(film.seconds, 2) if film else None,
                "losses": self.losses + log.losses,
                "validations": self.validations + log.validations}


# Settings that may change on resume; the rest (the model, --steps below the
# checkpoint) are refused. Their change is said when a run resumes.
RESUMED_SETTINGS = ("steps", "batch_size", "learning_rate", "lr_schedule", "keep_prob",
                    "loc_keep_prob", "seed", "precision", "optimizer", "loc_lr_multiplier",
                    "ramp_steps", "classifier_hold", "loc_hold")


def settings(config):
    """The TrainConfig as metrics.json records it: no model, no folder (it can move)."""
    out = {k: v for k, v in dataclasses.asdict(config).items()
           if k not in ("model", "ckpt_dir")}
    for name in HOLDS:
        if out.get(name) is not None:
            out[name] = list(out[name])
    return out


def start_film(config, g, validation_images, step):
    """The learning animation's frames (animation.Film), resumed; None without an STN
    or with ``config.frames`` 0."""
    if not config.frames or g.get("theta") is None:
        return None
    kinds = geometry.kinds(config.model)
    film = animation.Film(config.ckpt_dir, validation_images[:animation.PANEL],
                          g["input_shape"], kinds if len(kinds) > 1 else kinds[0])
    film.resume(step)
    return film


def build_train_op(g, global_step, config):
    """One optimizer step; the loc net's own optimizer when the two rates differ.

    With Adam, scaling the loc net's gradients would change nothing (its steps do not
    depend on the gradients' scale), so a ``loc_lr_multiplier`` != 1 or a
    ``classifier_hold`` gives the variables in ``g["loc_variables"]`` an optimizer of
    their own at their multiple of the rate, and the classifier one at its own: zero
    over the hold, so that the STN, not the classifier, has to absorb the distortions
    that grow meanwhile. A ``loc_hold`` is the other way round: the loc nets at zero
    while the classifier first learns to read what an untrained STN passes on.
    """
    rate = learning_rate_schedule(config)
    loc_vars = g.get("loc_variables") or []
    if not loc_vars or (config.loc_lr_multiplier == 1.0 and config.classifier_hold is None
                        and config.loc_hold is None):
        return optimizers.make_optimizer(config.optimizer, rate).minimize(
            g["loss"], global_step=global_step)
    rest = [v for v in tf.trainable_variables() if v not in loc_vars]
    grads = tf.gradients(g["loss"], rest + loc_vars)
    def unless_held(rate, hold):             # the rate, zero over the hold's steps
        if hold is None:
            return rate
        held = tf.cast((global_step >= hold[0]) & (global_step < hold[1]), tf.float32)
        return rate * (1.0 - held)
    classifier_rate = unless_held(rate, config.classifier_hold)
    loc_rate = unless_held(config.loc_lr_multiplier * rate, config.loc_hold)
    updates = [optimizers.make_optimizer(config.optimizer, classifier_rate).apply_gradients(
                   zip(grads[:len(rest)], rest)),
               optimizers.make_optimizer(config.optimizer, loc_rate)
               .apply_gradients(zip(grads[len(rest):], loc_vars))]
    # the step counts on only after both updates: each rate reads the step it is for
    # (incremented by one of them, the other could read the next step's rate)
    with tf.control_dependencies(updates):
        return tf.group(global_step.assign_add(1))


def learning_rate_schedule(config):
    """The learning rate: constant, a cosine decay from its peak to 0 at config.steps, or
    divided by 10 after each third of config.steps (the STN paper's: 150,000 iterations,
    divided every 50,000). Both decays follow a run made longer on resume."""
    global_step = tf.train.get_or_create_global_step()
    if config.lr_schedule == "cosine":
        return tf.train.cosine_decay(config.learning_rate, global_step, config.steps)
    if config.lr_schedule == "thirds":
        third = max(1, config.steps // 3)     # a rate holds while the step is <= a boundary
        return tf.train.piecewise_constant(
            global_step, [third - 1, 2 * third - 1],
            [config.learning_rate * 10.0 ** -k for k in range(3)])
    return config.learning_rate


def build_image_summary(g):
    """TensorBoard images: a few inputs, each beside what the STN made of it."""
    rectified = g["rectified"]
    height, width, channels = g["input_shape"]
    inputs = tf.reshape(g["images"], [-1, height, width, channels])
    if channels not in (1, 3) or rectified.shape[3] != channels:
        # two digits, or several STNs' outputs: each picture as its brightest channel
        inputs = tf.reduce_max(inputs, axis=3, keepdims=True)
        rectified = tf.reduce_max(rectified, axis=3, keepdims=True)
    # (B, H, W, C) input | rectified padded to (B, H, W, C) -> (B, H, 2W, C)
    side_by_side = tf.concat(
        [inputs, tf.image.resize_with_crop_or_pad(rectified, height, width)], axis=2)
    return tf.summary.image("input_rectified", side_by_side, max_outputs=SUMMARY_IMAGES)


def replay_batches(train_set, step, batch_size):
    """Draw the batches of steps already trained, so a resumed run sees the same
    batches as one that never stopped."""
    for _ in range(step):
        train_set.next_batch(batch_size)


def train_step(sess, g, train_op, images, labels, config):
    """One optimizer step with dropout (and batch statistics, where the model has them)."""
    feed = {g["images"]: images, g["labels"]: labels, g["keep_prob"]: config.keep_prob,
            g["loc_keep_prob"]: config.loc_keep_prob}
    if "training" in g:
        feed[g["training"]] = True
    loss, acc, _ = sess.run([g["loss"], g["accuracy"], train_op], feed)
    return loss, acc


def accuracy(sess, g, images, labels):
    """Accuracy over whole arrays of flat images and labels, without dropout."""
    correct = 0
    for start in range(0, len(labels), checkpoints.EVAL_BATCH):
        end = start + checkpoints.EVAL_BATCH
        correct += sess.run(g["num_correct"], {g["images"]: images[start:end],
                                               g["labels"]: labels[start:end]})
    return correct / len(labels)


def scalars(**values):
    """A TensorBoard summary of plain Python numbers."""
    return tf.Summary(value=[tf.Summary.Value(tag=tag, simple_value=value)
                             for tag, value in values.items()])


class Progress:
    """The progress line every --log-every steps, and the losses kept for metrics.json."""

    def __init__(self, config, start_step):
        self.config, self.start_step, self.start = config, start_step, time.time()
        self.validation = None
        self.losses = []          # [step, loss] at every log step of this run
        self.validations = []     # [step, validation accuracy] at every evaluation of it

    def elapsed(self):
        return time.time() - self.start

    def validate(self, step, accuracy):
        self.validation = accuracy
        self.validations.append([step, round(float(accuracy), 5)])

    def images_per_second(self, step, seconds=None):
        trained = (step - self.start_step) * self.config.batch_size
        return round(trained / (seconds or self.elapsed()), 1) if trained else None

    def record(self, step, loss, acc):
        self.losses.append([step, round(float(loss), 5)])
        rate = self.images_per_second(step)
        eta = (self.config.steps - step) * self.config.batch_size / rate
        val = f"  val {self.validation:.2%}" if self.validation is not None else ""
        print(f"step {step:6d}/{self.config.steps}  loss {loss:.4f}  acc {acc:6.1%}{val}"
              f"  {rate:5.0f} img/s  ETA {format_seconds(eta)}", flush=True)


def format_seconds(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


class StopRequests:
    """Ctrl-C, SIGTERM and SIGHUP ask the loop to stop; it checks ``requested`` between steps.

    So an interrupt never lands inside TF, the summary writer or a save, and a second
    Ctrl-C (impatience) cannot cut the final save short: the step under way takes
    well under a second, then the checkpoint is saved whole and the run exits.
    """

    def __init__(self):
        self.requested = False
        self._previous = {}

    def _handle(self, signum, frame):
        if self.requested:
            print("\nStopping: saving a checkpoint first.", flush=True)
        self.requested = True

    def __enter__(self):
        # SIGHUP: the terminal was closed
        self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
