"""Train the STN + CNN on MNIST, TF1 style: placeholders, a Session loop, a Saver.

    python train.py              # STN + CNN: Adam, batch 50, dropout 0.5 as the tutorial
    python train.py --no-stn     # the same CNN without the STN, for comparison
    python train.py --learning-rate 1e-4 --lr-schedule constant --steps 20000
                                 # the tutorial to the letter (slower to converge)
    python train.py --distortion RTS       # the STN paper's rotated/scaled/moved digits
    python train.py --dataset captcha      # the second tutorial: captcha letters A-Z

Checkpoints, TensorBoard summaries and metrics.json go to --ckpt-dir. Running again
resumes from the latest checkpoint; Ctrl-C saves one before it exits.
"""
import argparse
import contextlib
import json
import math
import os
import signal
import sys
import time


import model
from mnist_stn import captcha_data, data, distort, optimizers
from mnist_stn.compat import tf
from mnist_stn.constants import CAPTCHA_CHANNELS, CAPTCHA_SIZE, NUM_CHANNELS

CKPT_NAME = "model.ckpt"
CONFIG_FILE = "config.json"     # how the checkpoint's graph was built, for predict.py
METRICS_FILE = "metrics.json"
EVAL_BATCH = 1000               # evaluation batch: large is faster, memory is no concern
SUMMARY_IMAGES = 8              # digits shown in TensorBoard, original and rectified
# The distorted validation and test sets are fixed, so numbers compare between runs.
VALIDATION_SEED, TEST_SEED = 1, 2
DATASETS = ("mnist", "captcha")
# Each dataset's tutorial, where a flag is not given. MNIST: the first tutorial, with
# a faster learning rate (see --learning-rate). Captcha: the second tutorial's Keras
# run (Adam at Keras' 1e-3, batch 32, dropout 0.2 everywhere), but far fewer steps:
# its 400 epochs would be 100,000 steps.
DEFAULTS = {
    "mnist": {"steps": 12000, "batch_size": 50, "learning_rate": 3e-4,
              "lr_schedule": "cosine", "keep_prob": 0.5, "loc_keep_prob": 1.0},
    "captcha": {"steps": 2500, "batch_size": 32, "learning_rate": 1e-3,
                "lr_schedule": "constant", "keep_prob": 0.8, "loc_keep_prob": 0.8},
}
MNIST_ONLY = ("distortion", "loc_head")
CAPTCHA_ONLY = ("width", "bn", "pixel_range")


class TrainingError(Exception):
    """Training cannot go on (NaN loss, a checkpoint from another model)."""


def default_ckpt_dir(stn, distortion, dataset="mnist"):
    """checkpoints/stn, checkpoints/cnn, checkpoints/stn-RTS, checkpoints/captcha-stn..."""
    name = "stn" if stn else "cnn"
    if dataset != "mnist":
        return os.path.join("checkpoints", f"{dataset}-{name}")
    return os.path.join("checkpoints", name if distortion == "none" else f"{name}-{distortion}")


def help_default(name):
    """'(default: X for MNIST, Y for captcha)' for a flag whose default is per dataset."""
    return (f"(default: {DEFAULTS['mnist'][name]} for MNIST, "
            f"{DEFAULTS['captcha'][name]} for captcha)")


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASETS, default="mnist",
                        help="mnist: the first tutorial's digits; captcha: the second "
                             "tutorial's generated letters A-Z, 60x60 RGB, and its "
                             "STN-CNN with batch norm (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None,
                        help="total training steps, counting those of a resumed run "
                             + help_default("steps"))
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per step, as the tutorials " + help_default("batch_size"))
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="learning rate, the peak of the schedule "
                             + help_default("learning_rate") + "; the MNIST tutorial's "
                             "1e-4 needs more steps than 10 minutes of CPU allow to reach "
                             "99.4%%")
    parser.add_argument("--lr-schedule", choices=("constant", "cosine"), default=None,
                        help="cosine: decay from --learning-rate to 0 at --steps; "
                             "constant: the tutorials' " + help_default("lr_schedule"))
    parser.add_argument("--optimizer", choices=optimizers.OPTIMIZERS, default="adam",
                        help="adam (both tutorials), amsgrad, or sgd (plain gradient "
                             "descent) (default: %(default)s)")
    parser.add_argument("--keep-prob", type=float, default=None,
                        help="dropout keep probability of the classifier "
                             + help_default("keep_prob"))
    parser.add_argument("--loc-keep-prob", type=float, default=None,
                        help="dropout keep probability inside the localisation net "
                             + help_default("loc_keep_prob"))
    parser.add_argument("--no-stn", dest="stn", action="store_false",
                        help="train the plain CNN, without the spatial transformer")
    parser.add_argument("--distortion", choices=distort.KINDS, default=None,
                        help="MNIST: train and test on distorted digits, as in the STN "
                             "paper: R rotated, RTS rotated/scaled/translated on 42x42, P "
                             "projective, E elastic, clutter on 60x60 (default: none)")
    parser.add_argument("--loc-head", choices=model.LOC_HEADS, default=None,
                        help="MNIST: how the loc net's last layer starts: tutorial "
                             "(random weights, identity bias, tanh) or identity (zero "
                             "weights, no tanh: every image starts at the identity, as the "
                             "STN paper) (default: tutorial on clean digits, identity "
                             "with --distortion)")
    parser.add_argument("--width", type=float, default=None,
                        help="captcha: channel multiplier of the conv layers, to run "
                             "the model small (default: 1, the tutorial's)")
    parser.add_argument("--bn", choices=model.BN_PLACES, default=None,
                        help="captcha: batch norm after the ReLU (the tutorial) or "
                             "before it (default: after-relu)")
    parser.add_argument("--signed-pixels", dest="pixel_range", action="store_const",
                        const="-1,1", default=None,
                        help="captcha: the model rescales pixels from [0, 1] (the "
                             "tutorial's) to [-1, 1], one of the tutorial's ablations")
    parser.add_argument("--data-dir", default=None,
                        help="MNIST: directory with the four IDX files (.gz or not); "
                             f"default: ${data.DATA_DIR_ENV}, else download to "
                             f"{data.default_cache_dir()}. Captcha: where the generated "
                             "PNG letters are kept (default: "
                             f"{captcha_data.default_dir()})")
    parser.add_argument("--ckpt-dir", default=None,
                        help="checkpoints, summaries and metrics (default: checkpoints/stn, "
                             "checkpoints/cnn with --no-stn, checkpoints/stn-RTS with "
                             "--distortion RTS, checkpoints/captcha-stn, ...)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for weights, dropout and batch order (default: %(default)s)")
    parser.add_argument("--log-every", type=int, default=100,
                        help="print progress every N steps (default: %(default)s)")
    parser.add_argument("--eval-every", type=int, default=1000,
                        help="validation accuracy every N steps (default: %(default)s)")
    parser.add_argument("--save-every", type=int, default=1000,
                        help="checkpoint every N steps (default: %(default)s)")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    wrong = MNIST_ONLY if args.dataset == "captcha" else CAPTCHA_ONLY
    for name in wrong:
        if getattr(args, name) is not None:
            parser.error(f"--{name.replace('_', '-')} does not apply to --dataset "
                         f"{args.dataset}")
    for name, value in DEFAULTS[args.dataset].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.dataset == "mnist":
        args.distortion = args.distortion or "none"
        args.loc_head = args.loc_head or ("tutorial" if args.distortion == "none"
                                          else "identity")
    else:
        args.width = 1.0 if args.width is None else args.width
        args.bn = args.bn or model.BN_PLACES[0]
        args.pixel_range = args.pixel_range or model.PIXEL_RANGES[0]
        if args.width <= 0:
            parser.error("--width must be positive")
    if args.ckpt_dir is None:
        args.ckpt_dir = default_ckpt_dir(args.stn, args.distortion, args.dataset)
    for name in ("steps", "batch_size", "log_every", "eval_every", "save_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("keep_prob", "loc_keep_prob"):
        if not 0 < getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be in (0, 1]")
    return args


def model_config(args):
    """What the checkpoint's graph is built from; saved beside it for predict.py."""
    if args.dataset == "captcha":
        return {"dataset": "captcha", "stn": args.stn, "width": args.width, "bn": args.bn,
                "pixel_range": args.pixel_range}
    return {"dataset": "mnist", "stn": args.stn, "distortion": args.distortion,
            "loc_head": args.loc_head}


def input_shape(config):
    """(side, channels) of the images a model of this config reads."""
    if config["dataset"] == "captcha":
        return CAPTCHA_SIZE, CAPTCHA_CHANNELS
    return distort.CANVAS_SIZE[config["distortion"]], NUM_CHANNELS


def build_graph(config):
    """Placeholders, the model and its metrics. Returns a dict of graph nodes."""
    use_stn = config["stn"]
    size, channels = input_shape(config)
    images = tf.placeholder(tf.float32, [None, size * size * channels], name="images")
    labels = tf.placeholder(tf.int64, [None], name="labels")
    keep_prob = tf.placeholder_with_default(1.0, [], name="keep_prob")
    loc_keep_prob = tf.placeholder_with_default(1.0, [], name="loc_keep_prob")
    # batch norm: batch statistics while training, moving averages otherwise
    training = tf.placeholder_with_default(False, [], name="training")

    if config["dataset"] == "captcha":
        logits, rectified = model.captcha_forward(
            images, training, keep_prob, loc_keep_prob, use_stn=use_stn,
            width=config["width"], bn=config["bn"], pixel_range=config["pixel_range"])
    else:
        logits, rectified = model.forward(images, keep_prob, loc_keep_prob,
                                          use_stn=use_stn, image_size=size,
                                          loc_head=config["loc_head"])
    probabilities = tf.nn.softmax(logits)
    predictions = tf.argmax(logits, 1)
    correct = tf.equal(predictions, labels)
    return {
        "images": images, "labels": labels,
        "keep_prob": keep_prob, "loc_keep_prob": loc_keep_prob, "training": training,
        "logits": logits, "rectified": rectified, "image_size": size, "channels": channels,
        "theta": tf.get_default_graph().get_tensor_by_name("theta:0") if use_stn else None,
        "probabilities": probabilities, "predictions": predictions,
        "num_correct": tf.reduce_sum(tf.cast(correct, tf.int32)),
        "accuracy": tf.reduce_mean(tf.cast(correct, tf.float32)),
        "loss": tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits)),
    }


def evaluate(sess, g, images, labels):
    """Accuracy over whole arrays of flat images and labels, without dropout."""
    correct = 0
    for start in range(0, len(labels), EVAL_BATCH):
        end = start + EVAL_BATCH
        correct += sess.run(g["num_correct"], {g["images"]: images[start:end],
                                               g["labels"]: labels[start:end]})
    return correct / len(labels)


def eval_images(dataset, distortion, seed):
    """A DataSet's images as the model sees them at test time: fixed distortions."""
    if distortion in ("none", None):
        return dataset.images
    return distort.fixed_test_set(dataset.images, distortion, seed=seed)


def read_config(ckpt_dir):
    """The build settings saved beside a checkpoint, or None if there are none."""
    path = os.path.join(ckpt_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        config = json.load(f)
    config.setdefault("dataset", "mnist")         # checkpoints from before --dataset
    if config["dataset"] == "mnist":
        config.setdefault("loc_head", "tutorial")   # and from before --loc-head
    return config


def write_json(path, payload):
    """Write JSON atomically, so Ctrl-C never leaves half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def describe(config):
    """'STN' / 'CNN', with the distortion or the captcha settings."""
    name = "STN" if config["stn"] else "CNN"
    if config["dataset"] == "captcha":
        return (f"captcha {name} (width {config['width']:g}, BN {config['bn']}, "
                f"pixels in [{config['pixel_range']}])")
    if config["stn"] and config["loc_head"] != "tutorial":
        name += f" ({config['loc_head']} loc head)"
    return name if config["distortion"] == "none" else f"{name} on {config['distortion']}"


def format_seconds(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"


def check_ckpt_dir(ckpt_dir, config):
    """Make the directory; refuse one that holds a checkpoint of another model."""
    os.makedirs(ckpt_dir, exist_ok=True)
    saved = read_config(ckpt_dir)
    if saved is not None and saved != config:
        raise TrainingError(
            f"{ckpt_dir} holds a checkpoint of another model ({describe(saved)}, "
            f"not {describe(config)}); use another --ckpt-dir or the same flags")


def build_train_op(loss, args):
    """The optimizer step, with its schedule and the batch-norm updates. -> (step, op)."""
    global_step = tf.train.get_or_create_global_step()
    learning_rate = args.learning_rate
    if args.lr_schedule == "cosine":
        learning_rate = tf.train.cosine_decay(learning_rate, global_step, args.steps)
    # the batch-norm moving averages (captcha model) update with every training step
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        train_op = optimizers.make_optimizer(args.optimizer, learning_rate).minimize(
            loss, global_step=global_step)
    return global_step, train_op


def build_image_summary(g):
    """TensorBoard images: a few inputs, each beside what the STN made of it."""
    size, channels = g["image_size"], g["channels"]
    # (B, S, S, C) input | rectified padded to (B, S, S, C) -> (B, S, 2S, C)
    side_by_side = tf.concat(
        [tf.reshape(g["images"], [-1, size, size, channels]),
         tf.image.resize_with_crop_or_pad(g["rectified"], size, size)], axis=2)
    return tf.summary.image("input_rectified", side_by_side, max_outputs=SUMMARY_IMAGES)


def scalars(**values):
    """A TensorBoard summary of plain Python numbers."""
    return tf.Summary(value=[tf.Summary.Value(tag=tag, simple_value=value)
                             for tag, value in values.items()])


def restore_or_initialize(sess, saver, ckpt_dir):
    """Resume from the latest checkpoint, else initialise. Returns the checkpoint or None."""
    latest = tf.train.latest_checkpoint(ckpt_dir)
    if not latest:
        sess.run(tf.global_variables_initializer())
        return None
    try:
        saver.restore(sess, latest)
    except (tf.errors.OpError, ValueError) as e:
        reason = str(e).splitlines()[0]
        raise TrainingError(f"cannot resume from {latest} ({reason}); delete "
                            f"{ckpt_dir} or use another --ckpt-dir") from e
    print(f"Resuming from {latest}")
    return latest


@contextlib.contextmanager
def stop_requests():
    """Ctrl-C and SIGTERM only ask the loop to stop, by filling the list this yields.

    The loop checks it between steps, so an interrupt never lands inside TF or the
    summary writer; a second one raises KeyboardInterrupt at once.
    """
    requested = []

    def request_stop(signum, frame):
        if requested:
            raise KeyboardInterrupt
        requested.append(signum)
    previous = {sig: signal.signal(sig, request_stop)
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def train(args, datasets=None):
    """Train as ``args`` say; returns the metrics dict also written to metrics.json.

    ``datasets`` (a data.Datasets) skips reading the data, for callers that hold it.
    Raises TrainingError on a NaN loss or a checkpoint of another model.
    """
    config = model_config(args)
    check_ckpt_dir(args.ckpt_dir, config)
    if datasets is None:
        datasets = load_datasets(args)
    val_images = eval_images(datasets.validation, config.get("distortion"), VALIDATION_SEED)

    tf.reset_default_graph()
    tf.set_random_seed(args.seed)
    g = build_graph(config)
    global_step, train_op = build_train_op(g["loss"], args)
    image_summary = build_image_summary(g)
    saver = tf.train.Saver(max_to_keep=3)
    ckpt_prefix = os.path.join(args.ckpt_dir, CKPT_NAME)

    with tf.Session() as sess, stop_requests() as stop_requested:
        latest = restore_or_initialize(sess, saver, args.ckpt_dir)
        write_json(os.path.join(args.ckpt_dir, CONFIG_FILE), config)
        writer = tf.summary.FileWriter(args.ckpt_dir, sess.graph if not latest else None)

        step = int(sess.run(global_step))
        # Replay the batch order up to here, so a resumed run sees the same batches
        # as one that never stopped; distortions are drawn afresh, seeded by the step.
        for _ in range(step):
            datasets.train.next_batch(args.batch_size)
        distorter = None
        if config.get("distortion", "none") != "none":
            distorter = distort.Distorter(args.distortion, seed=args.seed * 1000003 + step)

        def save():
            return saver.save(sess, ckpt_prefix, global_step=step)

        start_step, start_time = step, time.time()
        val_acc = None
        losses = []             # (step, training loss) at every log step of this run
        try:
            while step < args.steps and not stop_requested:
                batch_images, batch_labels = datasets.train.next_batch(args.batch_size)
                if distorter:                       # a fresh distortion for every batch
                    batch_images = distorter(batch_images)
                feed = {g["images"]: batch_images, g["labels"]: batch_labels,
                        g["training"]: True, g["keep_prob"]: args.keep_prob,
                        g["loc_keep_prob"]: args.loc_keep_prob}
                loss, acc, _ = sess.run([g["loss"], g["accuracy"], train_op], feed)
                if not math.isfinite(loss):
                    last = tf.train.latest_checkpoint(args.ckpt_dir)
                    raise TrainingError(
                        f"the loss became {loss} at step {step + 1}; stopped without "
                        f"saving. Last good checkpoint: {last or 'none'}. "
                        "Try a smaller --learning-rate.")
                step += 1

                last_step = step == args.steps
                if step % args.eval_every == 0 or last_step:
                    val_acc = evaluate(sess, g, val_images, datasets.validation.labels)
                    writer.add_summary(scalars(validation_accuracy=val_acc), step)
                if step % args.log_every == 0 or last_step:
                    losses.append([step, round(float(loss), 5)])
                    writer.add_summary(scalars(loss=loss, accuracy=acc), step)
                    writer.add_summary(sess.run(image_summary, {
                        g["images"]: val_images[:SUMMARY_IMAGES]}), step)
                    rate = (step - start_step) * args.batch_size / (time.time() - start_time)
                    eta = (args.steps - step) * args.batch_size / rate
                    val = f"  val {val_acc:.2%}" if val_acc is not None else ""
                    print(f"step {step:6d}/{args.steps}  loss {loss:.4f}  acc {acc:6.1%}"
                          f"{val}  {rate:5.0f} img/s  ETA {format_seconds(eta)}", flush=True)
                if step % args.save_every == 0:
                    save()
        finally:
            writer.close()
            if distorter:
                distorter.close()
        if stop_requested:
            path = save()
            print(f"\nInterrupted at step {step}; saved {path}. "
                  "Run the same command again to resume.")
            raise KeyboardInterrupt

        train_seconds = time.time() - start_time
        path = save()
        test_images = eval_images(datasets.test, config.get("distortion"), TEST_SEED)
        test_acc = evaluate(sess, g, test_images, datasets.test.labels)

    trained = step - start_step
    metrics = {
        **config,
        "model": "stn" if args.stn else "cnn",
        "optimizer": args.optimizer,
        "steps": step,
        "batch_size": args.batch_size,
        "test_accuracy": test_acc,
        "validation_accuracy": val_acc,
        "train_seconds_this_run": round(train_seconds, 1),
        "images_per_second": round(trained * args.batch_size / train_seconds, 1)
        if trained else None,
        "checkpoint": path,
        "losses": losses,
    }
    write_json(os.path.join(args.ckpt_dir, METRICS_FILE), metrics)
    print(f"Saved {path}")
    print(f"Test accuracy: {test_acc:.2%} ({describe(config)}, {step} steps)")
    return metrics


def load_datasets(args):
    """MNIST (found or downloaded) or the captcha letters (read or generated)."""
    if args.dataset == "captcha":
        return captcha_data.load_captcha(args.data_dir, shuffle_seed=args.seed)
    return data.load_mnist(args.data_dir, seed=args.seed)


def main(argv=None):
    args = parse_args(argv)
    try:
        train(args)
    except (data.DataError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
