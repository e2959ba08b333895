"""Train the STN + CNN on MNIST, TF1 style: placeholders, a Session loop, a Saver.

    python train.py              # the tutorial's settings, with the STN
    python train.py --no-stn     # the same CNN without the STN, for comparison

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
from mnist_stn import data
from mnist_stn.compat import tf
from mnist_stn.constants import IMAGE_PIXELS, IMAGE_SIZE

CKPT_NAME = "model.ckpt"
CONFIG_FILE = "config.json"     # how the checkpoint's graph was built, for predict.py
METRICS_FILE = "metrics.json"
EVAL_BATCH = 1000               # evaluation batch: large is faster, memory is no concern
SUMMARY_IMAGES = 8              # digits shown in TensorBoard, original | rectified


class TrainingError(Exception):
    """Training cannot go on (NaN loss, a checkpoint from another model)."""


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12000,
                        help="total training steps, counting those of a resumed run "
                             "(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=50,
                        help="images per step (default: %(default)s, as the tutorial)")
    parser.add_argument("--learning-rate", type=float, default=1e-4,
                        help="Adam learning rate (default: %(default)s, as the tutorial)")
    parser.add_argument("--keep-prob", type=float, default=0.5,
                        help="dropout keep probability of the classifier's FC 1024 "
                             "(default: %(default)s)")
    parser.add_argument("--loc-keep-prob", type=float, default=1.0,
                        help="dropout keep probability inside the localisation net "
                             "(default: %(default)s)")
    parser.add_argument("--no-stn", dest="stn", action="store_false",
                        help="train the plain CNN, without the spatial transformer")
    parser.add_argument("--data-dir", default=None,
                        help="directory with the four MNIST IDX files (.gz or not); "
                             f"default: ${data.DATA_DIR_ENV}, else download to "
                             f"{data.default_cache_dir()}")
    parser.add_argument("--ckpt-dir", default=None,
                        help="checkpoints, summaries and metrics "
                             "(default: checkpoints/stn, or checkpoints/cnn with --no-stn)")
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
        args.ckpt_dir = os.path.join("checkpoints", "stn" if args.stn else "cnn")
    for name in ("steps", "batch_size", "log_every", "eval_every", "save_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("keep_prob", "loc_keep_prob"):
        if not 0 < getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be in (0, 1]")
    return args


def build_graph(use_stn):
    """Placeholders, the model and its metrics. Returns a dict of graph nodes."""
    images = tf.placeholder(tf.float32, [None, IMAGE_PIXELS], name="images")
    labels = tf.placeholder(tf.int64, [None], name="labels")
    keep_prob = tf.placeholder_with_default(1.0, [], name="keep_prob")
    loc_keep_prob = tf.placeholder_with_default(1.0, [], name="loc_keep_prob")

    logits, rectified = model.forward(images, keep_prob, loc_keep_prob, use_stn=use_stn)
    probabilities = tf.nn.softmax(logits)
    predictions = tf.argmax(logits, 1)
    correct = tf.equal(predictions, labels)
    return {
        "images": images, "labels": labels,
        "keep_prob": keep_prob, "loc_keep_prob": loc_keep_prob,
        "logits": logits, "rectified": rectified,
        "probabilities": probabilities, "predictions": predictions,
        "num_correct": tf.reduce_sum(tf.cast(correct, tf.int32)),
        "accuracy": tf.reduce_mean(tf.cast(correct, tf.float32)),
        "loss": tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits)),
    }


def evaluate(sess, g, dataset):
    """Accuracy over a whole DataSet, without dropout."""
    correct = 0
    for start in range(0, dataset.num_examples, EVAL_BATCH):
        end = start + EVAL_BATCH
        correct += sess.run(g["num_correct"], {g["images"]: dataset.images[start:end],
                                               g["labels"]: dataset.labels[start:end]})
    return correct / dataset.num_examples


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


def format_seconds(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"


def train(args, datasets=None):
    """Train as ``args`` say; returns the metrics dict also written to metrics.json.

    ``datasets`` (a data.Datasets) skips reading MNIST, for callers that hold it.
    Raises TrainingError on a NaN loss or a checkpoint of the other model.
    """
    os.makedirs(args.ckpt_dir, exist_ok=True)
    config = {"stn": args.stn}
    saved = read_config(args.ckpt_dir)
    if saved is not None and saved != config:
        raise TrainingError(
            f"{args.ckpt_dir} holds a {'STN' if saved['stn'] else 'plain CNN'} checkpoint; "
            f"use another --ckpt-dir or {'drop' if args.stn else 'add'} --no-stn")
    if datasets is None:
        datasets = data.load_mnist(args.data_dir, seed=args.seed)

    tf.reset_default_graph()
    tf.set_random_seed(args.seed)
    g = build_graph(args.stn)
    global_step = tf.train.get_or_create_global_step()
    train_op = tf.train.AdamOptimizer(args.learning_rate).minimize(
        g["loss"], global_step=global_step)

    # TensorBoard: the training curves, and a few digits before | after the STN.
    side_by_side = tf.concat([tf.reshape(g["images"], [-1, IMAGE_SIZE, IMAGE_SIZE, 1]),
                              g["rectified"]], axis=2)      # (B, 28, 56, 1)
    scalar_summaries = tf.summary.merge([tf.summary.scalar("loss", g["loss"]),
                                         tf.summary.scalar("accuracy", g["accuracy"])])
    image_summary = tf.summary.image("original_rectified", side_by_side,
                                     max_outputs=SUMMARY_IMAGES)
    saver = tf.train.Saver(max_to_keep=3)
    ckpt_prefix = os.path.join(args.ckpt_dir, CKPT_NAME)

    with tf.Session() as sess:
        latest = tf.train.latest_checkpoint(args.ckpt_dir)
        if latest:
            saver.restore(sess, latest)
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
        fixed_images = datasets.validation.images[:SUMMARY_IMAGES]

        def save():
            return saver.save(sess, ckpt_prefix, global_step=step)

        def stop_on_sigterm(signum, frame):
            raise KeyboardInterrupt
        previous_handler = signal.signal(signal.SIGTERM, stop_on_sigterm)

        start_step, start_time = step, time.time()
        val_acc = None
        try:
            while step < args.steps:
                batch_images, batch_labels = datasets.train.next_batch(args.batch_size)
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
                    val_acc = evaluate(sess, g, datasets.validation)
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
        except KeyboardInterrupt:
            path = save()
            print(f"\nInterrupted at step {step}; saved {path}. "
                  "Run the same command again to resume.")
            raise
        finally:
            signal.signal(signal.SIGTERM, previous_handler)
            writer.close()

        train_seconds = time.time() - start_time
        path = save()
        test_acc = evaluate(sess, g, datasets.test)

    trained = step - start_step
    metrics = {
        "model": "stn" if args.stn else "cnn",
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
    print(f"Test accuracy: {test_acc:.2%} ({'STN' if args.stn else 'CNN'}, {step} steps)")
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
