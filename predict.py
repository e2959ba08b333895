"""Restore the latest checkpoint and look at what the STN does.

    python predict.py                  # test accuracy, per digit; grids of test digits
    python predict.py my_digit.png     # classify your own digit images
    python predict.py --dataset captcha            # the captcha letters' model

The grids show the original digits on top, with the quadrilateral the STN sampled
drawn on them, and the STN's rectified digits below with the predicted labels; mistakes
are red. Pass the model flags given to train.py (--no-stn, --distortion) to find its
checkpoint.
"""
import argparse
import os
import sys

import numpy as np

import train
import transformer
from mnist_stn import captcha_data, data, distort, figures, images
from mnist_stn.compat import tf
from mnist_stn.constants import CAPTCHA_SIZE, IMAGE_PIXELS, LETTERS, NUM_CLASSES

CLASS_NAMES = {"mnist": np.array([str(digit) for digit in range(NUM_CLASSES)]),
               "captcha": np.array(list(LETTERS))}

GRID_FILE = "predictions.png"
MISTAKES_FILE = "mistakes.png"
USER_GRID_FILE = {"mnist": "your_digits.png", "captcha": "your_letters.png"}


class PredictError(Exception):
    """No checkpoint, or a request the restored model cannot serve."""


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", metavar="IMAGE",
                        help="your own digit (or letter) images (PNG or JPEG, any size); "
                             "without them, evaluate on the test set")
    parser.add_argument("--dataset", choices=train.DATASETS, default="mnist",
                        help="the model's dataset, as given to train.py; picks the test "
                             "set and the default --ckpt-dir (default: %(default)s)")
    parser.add_argument("--no-stn", dest="stn", action="store_false",
                        help="the plain CNN's checkpoint: checkpoints/cnn by default")
    parser.add_argument("--distortion", choices=distort.KINDS, default=None,
                        help="distortion of the test digits (default: the one the model "
                             "was trained on); also picks the default --ckpt-dir as "
                             "train.py does")
    parser.add_argument("--ckpt-dir", default=None,
                        help="where train.py saved the model (default: as train.py, "
                             "from --no-stn and --distortion)")
    parser.add_argument("--data-dir", default=None,
                        help="directory with the MNIST IDX files, or of the captcha "
                             "letters (default: as train.py)")
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
    if args.ckpt_dir is None:
        args.ckpt_dir = train.default_ckpt_dir(args.stn, args.distortion or "none",
                                               args.dataset)
    if args.dataset == "captcha" and args.distortion not in (None, "none"):
        parser.error("--distortion applies to MNIST only")
    if args.out_dir is None:
        args.out_dir = args.ckpt_dir
    if args.num_images < 1:
        parser.error("--num-images must be at least 1")
    return args


class Predictor:
    """A restored model: classify flat (N, S*S*C) images and return the rectified ones."""

    def __init__(self, ckpt_dir):
        latest = tf.train.latest_checkpoint(ckpt_dir) if os.path.isdir(ckpt_dir) else None
        config = train.read_config(ckpt_dir)
        if latest is None or config is None:
            raise PredictError(
                f"no checkpoint in {ckpt_dir}: run train.py first with the model "
                "flags given here (--dataset, --no-stn, --distortion), or pass --ckpt-dir")
        self.config = config
        self.use_stn = config["stn"]
        self.image_size, self.channels = train.input_shape(config)
        self.class_names = CLASS_NAMES[config["dataset"]]
        self.checkpoint = latest
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.g = train.build_graph(config)
            self.sess = tf.Session()
            try:
                tf.train.Saver().restore(self.sess, latest)
            except (tf.errors.OpError, ValueError) as e:
                reason = str(e).splitlines()[0]
                raise PredictError(f"cannot restore {latest} ({reason}); retrain with "
                                   "train.py or pass another --ckpt-dir") from e

    def run(self, flat_images):
        """(N, S*S*C) in [0, 1] -> probabilities (N, classes), rectified (N, h, w) or
        (N, h, w, C) for colour, theta (N, 6).

        Without the STN, theta is the identity and "rectified" is the input.
        """
        fetches = [self.g["probabilities"], self.g["rectified"]]
        if self.use_stn:
            fetches.append(self.g["theta"])
        out = []
        for start in range(0, len(flat_images), train.EVAL_BATCH):
            out.append(self.sess.run(
                fetches, {self.g["images"]: flat_images[start:start + train.EVAL_BATCH]}))
        probs = np.concatenate([o[0] for o in out])
        rectified = np.concatenate([o[1] for o in out])
        if self.channels == 1:
            rectified = rectified[..., 0]
        thetas = (np.concatenate([o[2] for o in out]) if self.use_stn
                  else np.tile(transformer.IDENTITY_THETA, (len(probs), 1)))
        return probs, rectified, thetas


def sampled_box(thetas, size):
    """Where the STN looked: the corners of its output grid mapped into the input.

    Args:
      thetas: (N, 6) affine parameters as the STN uses them.
      size: side of the (square) input, in pixels.
    Returns:
      (N, 4, 2) pixel coordinates (x, y) of the corners (top-left, top-right,
      bottom-right, bottom-left), 0 being the centre of the first pixel.
    """
    corners = np.array([[-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], np.float64)
    # (N, 2, 3) @ (3, 4) -> (N, 2, 4) -> (N, 4, 2), normalised -> pixels
    points = (np.asarray(thetas, np.float64).reshape(-1, 2, 3) @ corners.T).transpose(0, 2, 1)
    return (points + 1.0) / 2.0 * (size - 1)


def evaluate_test_set(predictor, test, distortion, out_dir, num_images):
    """Print overall and per-class test accuracy; write the two grids."""
    if (predictor.config["dataset"] == "mnist"
            and distort.CANVAS_SIZE[distortion] != predictor.image_size):
        raise PredictError(f"the model reads {predictor.image_size}x{predictor.image_size} "
                         f"inputs; --distortion {distortion} makes "
                         f"{distort.CANVAS_SIZE[distortion]}x{distort.CANVAS_SIZE[distortion]}")
    test_images = train.eval_images(test, distortion, train.TEST_SEED)
    probs, rectified, thetas = predictor.run(test_images)
    predictions = probs.argmax(1)
    correct = predictions == test.labels
    tested_on = (f" tested on distortion '{distortion}'"
                 if predictor.config["dataset"] == "mnist" else "")
    print(f"Test accuracy: {correct.mean():.2%} "
          f"({correct.sum()}/{len(correct)}, {train.describe(predictor.config)} model"
          f"{tested_on}, checkpoint {predictor.checkpoint})")
    names = predictor.class_names
    kind = "digit" if predictor.config["dataset"] == "mnist" else "letter"
    for label, name in enumerate(names):
        mask = test.labels == label
        if mask.any():
            print(f"  {kind} {name}: {correct[mask].mean():.2%} "
                  f"({correct[mask].sum()}/{mask.sum()})")

    size = predictor.image_size
    originals = test_images.reshape(-1, size, size, predictor.channels)
    boxes = sampled_box(thetas, size) if predictor.use_stn else None
    model_kind = "STN" if predictor.use_stn else "no STN (plain CNN)"

    def grid(name, chosen, title):
        path = os.path.join(out_dir, name)
        figures.save_grid(path, originals[chosen], rectified[chosen],
                          names[predictions[chosen]], names[test.labels[chosen]], title=title,
                          boxes=None if boxes is None else boxes[chosen])
        print(f"Wrote {path}")

    what = "digits" if predictor.config["dataset"] == "mnist" else "letters"
    grid(GRID_FILE, np.arange(min(num_images, len(predictions))),
         f"Test {what}: input (top), {model_kind} (below)")
    wrong = np.flatnonzero(~correct)[:num_images]
    if len(wrong):
        grid(MISTAKES_FILE, wrong, f"{len(wrong)} of {(~correct).sum()} misclassified "
                                   f"test {what}")
    return correct.mean()


def classify_files(predictor, paths, out_dir):
    """Print the label and confidence of each image file; save its rectified version."""
    captcha = predictor.config["dataset"] == "captcha"
    if not captcha and predictor.image_size * predictor.image_size != IMAGE_PIXELS:
        raise PredictError(f"this model reads {predictor.image_size}x{predictor.image_size} "
                         "canvases of distorted digits; classify your images with a model "
                         "trained without --distortion")
    if captcha:     # letters as the captcha set has them: RGB, resized to 60x60
        inputs = np.stack([images.prepare_rgb(path, CAPTCHA_SIZE) for path in paths])
    else:           # digits made to look like MNIST's: (N, 28, 28)
        inputs = np.stack([images.prepare(path) for path in paths])
    probs, rectified, thetas = predictor.run(inputs.reshape(len(paths), -1))
    predictions = probs.argmax(1)
    names = predictor.class_names
    for path, p, pred, rect in zip(paths, probs, predictions, rectified):
        stem = os.path.splitext(os.path.basename(path))[0]
        out = os.path.join(out_dir, f"{stem}_rectified.png")
        images.save_png(out, rect)
        print(f"{path}: {names[pred]} ({p[pred]:.1%})  rectified: {out}")
    grid = os.path.join(out_dir, USER_GRID_FILE[predictor.config["dataset"]])
    fitted = ("resized to 60x60" if captcha else "fitted to 28x28")
    figures.save_grid(grid, inputs, rectified, names[predictions],
                      title=f"Your images, {fitted} (top), after the STN (below)",
                      boxes=sampled_box(thetas, inputs.shape[1]) if predictor.use_stn else None)
    print(f"Wrote {grid}")
    return predictions, probs


def main(argv=None):
    args = parse_args(argv)
    try:
        predictor = Predictor(args.ckpt_dir)
        os.makedirs(args.out_dir, exist_ok=True)
        if args.images:
            classify_files(predictor, args.images, args.out_dir)
        elif predictor.config["dataset"] == "captcha":
            test = captcha_data.load_captcha(args.data_dir).test
            evaluate_test_set(predictor, test, "none", args.out_dir, args.num_images)
        else:
            test = data.load_mnist(args.data_dir, validation_size=0).test
            distortion = args.distortion or predictor.config["distortion"]
            evaluate_test_set(predictor, test, distortion, args.out_dir, args.num_images)
    except (PredictError, data.DataError, images.ImageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
