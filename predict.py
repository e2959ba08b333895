"""Restore the latest checkpoint and look at what the STN does.

    python predict.py                  # test accuracy, per digit; grids of test digits
    python predict.py my_digit.png     # classify your own digit images

The grids show the original digits on top and the STN's rectified digits below, with
the predicted labels; mistakes are red.
"""
import argparse
import os
import sys

import numpy as np

import train
from mnist_stn import data, figures, images
from mnist_stn.compat import tf
from mnist_stn.constants import IMAGE_PIXELS, IMAGE_SIZE, NUM_CLASSES

GRID_FILE = "predictions.png"
MISTAKES_FILE = "mistakes.png"
USER_GRID_FILE = "your_digits.png"


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", metavar="IMAGE",
                        help="your own digit images (PNG or JPEG, any size); "
                             "without them, evaluate on the MNIST test set")
    parser.add_argument("--ckpt-dir", default=os.path.join("checkpoints", "stn"),
                        help="where train.py saved the model (default: %(default)s)")
    parser.add_argument("--data-dir", default=None,
                        help="directory with the MNIST IDX files (default: as train.py)")
    parser.add_argument("--out-dir", default=None,
                        help="where to write the figures and rectified images "
                             "(default: the checkpoint directory)")
    parser.add_argument("--num-images", type=int, default=20,
                        help="test digits (and at most as many mistakes) in the grids "
                             "(default: %(default)s)")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.out_dir is None:
        args.out_dir = args.ckpt_dir
    if args.num_images < 1:
        parser.error("--num-images must be at least 1")
    return args


class Predictor:
    """A restored model: classify flat (N, 784) images and return the rectified ones."""

    def __init__(self, ckpt_dir):
        latest = tf.train.latest_checkpoint(ckpt_dir) if os.path.isdir(ckpt_dir) else None
        config = train.read_config(ckpt_dir)
        if latest is None or config is None:
            raise FileNotFoundError(
                f"no checkpoint in {ckpt_dir}: run `python train.py` first, "
                "or pass --ckpt-dir")
        self.use_stn = config["stn"]
        self.checkpoint = latest
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.g = train.build_graph(self.use_stn)
            self.sess = tf.Session()
            tf.train.Saver().restore(self.sess, latest)

    def run(self, flat_images):
        """(N, 784) in [0, 1] -> probabilities (N, 10), rectified (N, 28, 28)."""
        probs, rect = [], []
        for start in range(0, len(flat_images), train.EVAL_BATCH):
            p, r = self.sess.run([self.g["probabilities"], self.g["rectified"]],
                                 {self.g["images"]: flat_images[start:start + train.EVAL_BATCH]})
            probs.append(p)
            rect.append(r[..., 0])
        return np.concatenate(probs), np.concatenate(rect)


def evaluate_test_set(predictor, test, out_dir, num_images):
    """Print overall and per-digit test accuracy; write the two grids."""
    probs, rectified = predictor.run(test.images)
    predictions = probs.argmax(1)
    correct = predictions == test.labels
    print(f"Test accuracy: {correct.mean():.2%} "
          f"({correct.sum()}/{len(correct)}, checkpoint {predictor.checkpoint})")
    for digit in range(NUM_CLASSES):
        mask = test.labels == digit
        print(f"  digit {digit}: {correct[mask].mean():.2%} "
              f"({correct[mask].sum()}/{mask.sum()})")

    originals = test.images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    kind = "STN" if predictor.use_stn else "no STN (plain CNN)"
    shown = np.arange(min(num_images, len(predictions)))
    grid = os.path.join(out_dir, GRID_FILE)
    figures.save_grid(grid, originals[shown], rectified[shown], predictions[shown],
                      test.labels[shown],
                      title=f"First {len(shown)} test digits: input (top), {kind} (below)")
    print(f"Wrote {grid}")
    wrong = np.flatnonzero(~correct)[:num_images]
    if len(wrong):
        path = os.path.join(out_dir, MISTAKES_FILE)
        figures.save_grid(path, originals[wrong], rectified[wrong], predictions[wrong],
                          test.labels[wrong],
                          title=f"{len(wrong)} of {(~correct).sum()} misclassified test digits")
        print(f"Wrote {path}")
    return correct.mean()


def classify_files(predictor, paths, out_dir):
    """Print the label and confidence of each image file; save its rectified version."""
    digits = np.stack([images.prepare(path) for path in paths])  # (N, 28, 28)
    probs, rectified = predictor.run(digits.reshape(-1, IMAGE_PIXELS))
    predictions = probs.argmax(1)
    for path, p, pred, rect in zip(paths, probs, predictions, rectified):
        stem = os.path.splitext(os.path.basename(path))[0]
        out = os.path.join(out_dir, f"{stem}_rectified.png")
        images.save_png(out, rect)
        print(f"{path}: {pred} ({p[pred]:.1%})  rectified: {out}")
    grid = os.path.join(out_dir, USER_GRID_FILE)
    figures.save_grid(grid, digits, rectified, predictions,
                      title="Your digits, fitted to 28x28 (top), after the STN (below)")
    print(f"Wrote {grid}")
    return predictions, probs


def main(argv=None):
    args = parse_args(argv)
    try:
        predictor = Predictor(args.ckpt_dir)
        os.makedirs(args.out_dir, exist_ok=True)
        if args.images:
            classify_files(predictor, args.images, args.out_dir)
        else:
            test = data.load_mnist(args.data_dir, validation_size=0).test
            evaluate_test_set(predictor, test, args.out_dir, args.num_images)
    except (FileNotFoundError, data.DataError, images.ImageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
