"""Train the STN + CNN on MNIST, TF1 style: placeholders, a Session loop, a Saver.

    python train.py              # STN + CNN: Adam, batch 50, dropout 0.5 as the tutorial
    python train.py --no-stn     # the same CNN without the STN, for comparison
    python train.py --learning-rate 1e-4 --lr-schedule constant --steps 20000
                                 # the tutorial to the letter (slower to converge)

Checkpoints, TensorBoard summaries and metrics.json go to --ckpt-dir. Running again
resumes from the latest checkpoint; Ctrl-C saves one before it exits.
"""
import argparse
import json
import math
import os
import signal
import sys
import time

import numpy as np

import model
from mnist_stn import data, distort
from mnist_stn.compat import tf

CKPT_NAME = "model.ckpt"
CONFIG_FILE = "config.json"     # how the checkpoint's graph was built, for predict.py
METRICS_FILE = "metrics.json"
EVAL_BATCH = 1000               # evaluation batch: large is faster, memory is no concern
SUMMARY_IMAGES = 8              # digits shown in TensorBoard, original and rectified
# The distorted validation and test sets are fixed, so numbers compare between runs.
VALIDATION_SEED, TEST_SEED = 1, 2


class TrainingError(Exception):
    """Training cannot go on (NaN loss, a checkpoint from another model)."""


def default_ckpt_dir(stn, distortion):
    """checkpoints/stn, checkpoints/cnn, checkpoints/stn-RTS, ..."""
    name = "stn" if stn else "cnn"
    return os.path.join("checkpoints", name if distortion == "none" else f"{name}-{distortion}")


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12000,
                        help="total training steps, counting those of a resumed run "
                             "(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=50,
                        help="images per step (default: %(default)s, as the tutorial)")
    parser.add_argument("--learning-rate", type=float, default=3e-4,
                        help="Adam learning rate, the peak of the schedule (default: "
                             "%(default)s; the tutorial's 1e-4 needs more steps than 10 "
                             "minutes of CPU allow to reach 99.4%%)")
    parser.add_argument("--lr-schedule", choices=("constant", "cosine"), default="cosine",
                        help="cosine: decay from --learning-rate to 0 at --steps; "
                             "constant: the tutorial's (default: %(default)s)")
    parser.add_argument("--keep-prob", type=float, default=0.5,
                        help="dropout keep probability of the classifier's FC 1024 "
                             "(default: %(default)s)")
    parser.add_argument("--loc-keep-prob", type=float, default=1.0,
                        help="dropout keep probability inside the localisation net "
                             "(default: %(default)s)")
    parser.add_argument("--no-stn", dest="stn", action="store_false",
                        help="train the plain CNN, without the spatial transformer")
    parser.add_argument("--distortion", choices=distort.KINDS, default="none",
                        help="train and test on distorted digits, as in the STN paper: "
                             "R rotated, RTS rotated/scaled/translated on 42x42, P "
                             "projective, E elastic, clutter on 60x60 (default: %(default)s)")
    parser.add_argument("--data-dir", default=None,
                        help="directory with the four MNIST IDX files (.gz or not); "
                             f"default: ${data.DATA_DIR_ENV}, else download to "
                             f"{data.default_cache_dir()}")
    parser.add_argument("--ckpt-dir", default=None,
                        help="checkpoints, summaries and metrics (default: checkpoints/stn, "
                             "checkpoints/cnn with --no-stn, checkpoints/stn-RTS with "
                             "--distortion RTS, ...)")
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
    if args.ckpt_dir is None:
        args.ckpt_dir = default_ckpt_dir(args.stn, args.distortion)
    for name in ("steps", "batch_size", "log_every", "eval_every", "save_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("keep_prob", "loc_keep_prob"):
        if not 0 < getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be in (0, 1]")
    return args


def build_graph(use_stn, image_size):
    """Placeholders, the model and its metrics. Returns a dict of graph nodes."""
    images = tf.placeholder(tf.float32, [None, image_size * image_size], name="images")
    labels = tf.placeholder(tf.int64, [None], name="labels")
    keep_prob = tf.placeholder_with_default(1.0, [], name="keep_prob")
    loc_keep_prob = tf.placeholder_with_default(1.0, [], name="loc_keep_prob")

    logits, rectified = model.forward(images, keep_prob, loc_keep_prob, use_stn=use_stn,
                                      image_size=image_size)
    probabilities = tf.nn.softmax(logits)
    predictions = tf.argmax(logits, 1)
    correct = tf.equal(predictions, labels)
    return {
        "images": images, "labels": labels,
        "keep_prob": keep_prob, "loc_keep_prob": loc_keep_prob,
        "logits": logits, "rectified": rectified, "image_size": image_size,
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
    if distortion == "none":
        return dataset.images
    return distort.fixed_test_set(dataset.images, distortion, seed=seed)


def read_config(ckpt_dir):
    """The build settings saved beside a checkpoint, or None if there are none."""
    path = os.path.join(ckpt_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_json(path, payload):
    """Write JSON atomically, so Ctrl-C never leaves half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def describe(config):
    """'STN' / 'CNN', with the distortion when there is one."""
    name = "STN" if config["stn"] else "CNN"
    return name if config["distortion"] == "none" else f"{name} on {config['distortion']}"


def format_seconds(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"


def train(args, datasets=None):
    """Train as ``args`` say; returns the metrics dict also written to metrics.json.

    ``datasets`` (a data.Datasets) skips reading MNIST, for callers that hold it.
    Raises TrainingError on a NaN loss or a checkpoint of the other model.
    """
    os.makedirs(args.ckpt_dir, exist_ok=True)
    config = {"stn": args.stn, "distortion": args.distortion}
    saved = read_config(args.ckpt_dir)
    if saved is not None and saved != config:
        raise TrainingError(
            f"{args.ckpt_dir} holds a checkpoint of another model ({describe(saved)}, "
            f"not {describe(config)}); use another --ckpt-dir or the same flags")
    if datasets is None:
        datasets = data.load_mnist(args.data_dir, seed=args.seed)
    image_size = distort.CANVAS_SIZE[args.distortion]
    val_images = eval_images(datasets.validation, args.distortion, VALIDATION_SEED)
    # A resumed run draws fresh distortions, seeded by the step it resumes from.
    distorter = None

    tf.reset_default_graph()
    tf.set_random_seed(args.seed)
    g = build_graph(args.stn, image_size)
    global_step = tf.train.get_or_create_global_step()
    learning_rate = args.learning_rate
    if args.lr_schedule == "cosine":
        learning_rate = tf.train.cosine_decay(learning_rate, global_step, args.steps)
    train_op = tf.train.AdamOptimizer(learning_rate).minimize(
        g["loss"], global_step=global_step)

    # TensorBoard: the training curves, and a few digits before and after the STN.
    scalar_summaries = tf.summary.merge([tf.summary.scalar("loss", g["loss"]),
                                         tf.summary.scalar("accuracy", g["accuracy"])])
    # (B, S, S, 1) input | rectified padded to (B, S, S, 1) -> (B, S, 2S, 1)
    side_by_side = tf.concat(
        [tf.reshape(g["images"], [-1, image_size, image_size, 1]),
         tf.image.resize_with_crop_or_pad(g["rectified"], image_size, image_size)], axis=2)
    image_summary = tf.summary.image("input_rectified", side_by_side,
                                     max_outputs=SUMMARY_IMAGES)
    saver = tf.train.Saver(max_to_keep=3)
    ckpt_prefix = os.path.join(args.ckpt_dir, CKPT_NAME)

    with tf.Session() as sess:
        latest = tf.train.latest_checkpoint(args.ckpt_dir)
        if latest:
            try:
                saver.restore(sess, latest)
            except (tf.errors.OpError, ValueError) as e:
                reason = str(e).splitlines()[0]
                raise TrainingError(f"cannot resume from {latest} ({reason}); delete "
                                    f"{args.ckpt_dir} or use another --ckpt-dir") from e
            print(f"Resuming from {latest}")
        else:
            sess.run(tf.global_variables_initializer())
        write_json(os.path.join(args.ckpt_dir, CONFIG_FILE), config)
        writer = tf.summary.FileWriter(args.ckpt_dir, sess.graph if not latest else None)

        step = int(sess.run(global_step))
        # Replay the batch order up to here, so a resumed run sees the same batches
        # as one that never stopped.
        for _ in range(step):
            datasets.train.next_batch(args.batch_size)
        if args.distortion != "none":
            distorter = distort.Distorter(args.distortion, seed=args.seed * 1000003 + step)
        fixed_images = val_images[:SUMMARY_IMAGES]

        def save():
            return saver.save(sess, ckpt_prefix, global_step=step)

        # Ctrl-C or SIGTERM only asks the loop to stop after the current step, so an
        # interrupt never lands inside TF or the summary writer; a second one forces it.
        stop_requested = []

        def request_stop(signum, frame):
            if stop_requested:
                raise KeyboardInterrupt
            stop_requested.append(signum)
        previous_handlers = {sig: signal.signal(sig, request_stop)
                             for sig in (signal.SIGINT, signal.SIGTERM)}

        start_step, start_time = step, time.time()
        val_acc = None
        try:
            while step < args.steps and not stop_requested:
                batch_images, batch_labels = datasets.train.next_batch(args.batch_size)
                if distorter:                       # a fresh distortion for every batch
                    batch_images = distorter(batch_images)
                feed = {g["images"]: batch_images, g["labels"]: batch_labels,
                        g["keep_prob"]: args.keep_prob,
                        g["loc_keep_prob"]: args.loc_keep_prob}
                loss, acc, _ = sess.run([g["loss"], g["accuracy"], train_op], feed)
                if not math.isfinite(loss):
                    last = tf.train.latest_checkpoint(args.ckpt_dir)
                    raise TrainingError(
                        f"the loss became {loss} at step {step + 1}; stopped without "
                        f"saving. Last good checkpoint: {last or 'none'}. "
                        "Try a smaller --learning-rate.")
                step += 1

                if step % args.log_every == 0 or step == args.steps:
                    writer.add_summary(sess.run(scalar_summaries, feed), step)
                    writer.add_summary(sess.run(image_summary,
                                                {g["images"]: fixed_images}), step)
                if step % args.eval_every == 0 or step == args.steps:
                    val_acc = evaluate(sess, g, val_images, datasets.validation.labels)
                    writer.add_summary(tf.Summary(value=[tf.Summary.Value(
                        tag="validation_accuracy", simple_value=val_acc)]), step)
                if step % args.log_every == 0 or step == args.steps:
                    elapsed = time.time() - start_time
                    rate = (step - start_step) * args.batch_size / elapsed
                    eta = (args.steps - step) * args.batch_size / rate
                    val = f"  val {val_acc:.2%}" if val_acc is not None else ""
                    print(f"step {step:6d}/{args.steps}  loss {loss:.4f}  acc {acc:6.1%}"
                          f"{val}  {rate:5.0f} img/s  ETA {format_seconds(eta)}", flush=True)
                if step % args.save_every == 0:
                    save()
        finally:
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
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
        test_acc = evaluate(sess, g, eval_images(datasets.test, args.distortion, TEST_SEED),
                            datasets.test.labels)

    trained = step - start_step
    metrics = {
        "model": "stn" if args.stn else "cnn",
        "distortion": args.distortion,
        "steps": step,
        "batch_size": args.batch_size,
        "test_accuracy": test_acc,
        "validation_accuracy": val_acc,
        "train_seconds_this_run": round(train_seconds, 1),
        "images_per_second": round(trained * args.batch_size / train_seconds, 1)
        if trained else None,
        "checkpoint": path,
    }
    write_json(os.path.join(args.ckpt_dir, METRICS_FILE), metrics)
    print(f"Saved {path}")
    print(f"Test accuracy: {test_acc:.2%} ({describe(config)}, {step} steps)")
    return metrics


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
