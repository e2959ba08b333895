"""Restore the latest checkpoint and look at what the STN does.

    python predict.py                  # test accuracy, per digit; grids of test digits
    python predict.py my_digit.png     # classify your own digit images
    python predict.py --config addition   # the addition: test pairs, their sums

The grids show the original digits on top, with the region the STN sampled drawn on
them (a quadrilateral; curved for the thin-plate spline), and the STN's rectified digits
below with the predicted labels; mistakes are red. For the addition, each pair is drawn
as one picture, channel 1 in magenta and channel 2 in green, with each STN's box in its
own colour; below, each STN's output side by side, and the sum in words ("7 + 5 = 12").
Pass the run flags given to train.py (--config, --distortion, --no-stn, --transform)
to find its checkpoint; with --ckpt-dir, the folder's
model must be the one they name.
"""
import signal
import sys

if __name__ == "__main__":
    # Ctrl-C ends a prediction at once, quietly, even while TensorFlow loads: it has
    # nothing to save
    signal.signal(signal.SIGINT, signal.SIG_DFL)

import argparse
import os

import numpy as np

import model
from mnist_stn import (addition, checkpoints, configs, data, distort, figures, geometry,
                       images, precision)
from mnist_stn.constants import IMAGE_SIZE

GRID_FILE = "predictions.png"
MISTAKES_FILE = "mistakes.png"
USER_GRID_FILE = "your_digits.png"


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", metavar="IMAGE",
                        help="your own digit images (PNG, JPEG, GIF, BMP or WebP, any size; "
                             "photos are turned upright as their EXIF says); without "
                             "them, evaluate on the test set")
    configs.add_model_flags(parser, "mnist", what="restore, as given to train.py")
    parser.add_argument("--distortion", choices=distort.KINDS, default=None,
                        help="distortion of the test digits (default: the one the model "
                             "was trained on); without --config also names the run, as "
                             "train.py's --distortion")
    parser.add_argument("--ckpt-dir", default=None,
                        help="where train.py saved the model (default: as train.py, "
                             "checkpoints/<the run's name>)")
    parser.add_argument("--data-dir", default=None,
                        help="directory with the MNIST IDX files (default: as train.py)")
    parser.add_argument("--out-dir", default=None,
                        help="where to write the figures and rectified images "
                             "(default: the checkpoint directory)")
    parser.add_argument("--precision", choices=precision.PRECISIONS, default=None,
                        help="fp32, or bf16 for the convolutions and matrix products; "
                             "auto: bf16 where the CPU has bfloat16 dot products "
                             "(default: the one the model was trained in)")
    parser.add_argument("--num-images", type=int, default=20,
                        help="test digits (and at most as many mistakes) in the grids "
                             "(default: %(default)s)")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        name = configs.select("mnist", args.config, args.stn, args.distortion,
                              args.transform)
        args.digits = configs.load(name, "mnist")[0]["digits"]   # what the run reads
    except configs.ConfigError as e:
        parser.error(str(e))
    if args.ckpt_dir is None:
        args.ckpt_dir = configs.default_dir(name)
    if args.out_dir is None:
        args.out_dir = args.ckpt_dir
    args.ckpt_dir, args.out_dir = map(os.path.expanduser, (args.ckpt_dir, args.out_dir))
    if args.precision is not None:
        args.precision = precision.resolve(args.precision)
    if args.num_images < 1:
        parser.error("--num-images must be at least 1")
    return args


def restore(ckpt_dir, precision=None, stn=None, transform=None, digits=None):
    """The trained model in ``ckpt_dir``, in ``precision`` (default: the one it was
    trained in). ``stn`` False refuses an STN model (the user said --no-stn), a
    ``transform`` a model with another transformer (the user said --transform), and
    ``digits`` a model that reads another number of digits (1, or the addition's 2)."""
    restored = checkpoints.Restored(ckpt_dir, model.build_graph, precision=precision,
                                    how_to_train="run train.py first with the run flags "
                                                 "given here (--config, --distortion, "
                                                 "--no-stn)",
                                    needs=("stn", "distortion", "image_size"))
    if digits is not None and restored.config["digits"] != digits:
        held = model.describe(restored.config)
        restored.close()
        how = ("pass its run's flags, as --config addition" if digits == 1
               else "pass its run's flags, or leave out --config addition")
        raise checkpoints.CheckpointError(
            f"{ckpt_dir} holds a {held} model, which reads "
            f"{'two digits, one per channel' if digits == 1 else 'one digit'}; the run "
            f"named here reads {'one digit' if digits == 1 else 'pairs'} ({how})")
    if stn is False and restored.config["stn"]:
        restored.close()
        raise checkpoints.CheckpointError(f"{ckpt_dir} holds an STN model, not the plain "
                                          "CNN that --no-stn asks for")
    if transform and (not restored.config["stn"] or restored.config["transform"] != transform):
        held = (f"an STN with the {restored.config['transform']} transformer"
                if restored.config["stn"] else "a CNN")
        restored.close()
        raise checkpoints.CheckpointError(f"{ckpt_dir} holds {held}, not the {transform} "
                                          "transformer that --transform asks for")
    return restored


def test_set(restored, data_dir, distortion):
    """The MNIST test set as the model reads it: (flat images, labels)."""
    size = distort.CANVAS_SIZE[distortion]
    if size != restored.config["image_size"]:
        side = restored.config["image_size"]
        raise checkpoints.CheckpointError(
            f"the model reads {side}x{side} inputs; --distortion {distortion} makes "
            f"{size}x{size}")
    test = data.load_mnist(data_dir, validation_size=0).test
    return distort.eval_images(test, distortion, distort.TEST_SEED), test.labels


def report(result, labels, restored, distortion):
    """Print the overall and per-digit test accuracy, and what the STN did."""
    correct = result["correct"]
    print(f"Test accuracy: {result['accuracy']:.2%} ({correct.sum()}/{len(correct)}, "
          f"{model.describe(restored.config)} model tested on distortion '{distortion}', "
          f"checkpoint {restored.checkpoint})")
    for digit, accuracy in enumerate(result["per_class"]):
        count = (labels == digit).sum()
        if count:
            print(f"  digit {digit}: {accuracy:.2%} ({correct[labels == digit].sum()}/{count})")
    if "parts" in result:
        print(f"What the STN did to the test digits: {geometry.summary(result['parts'])}")


def draw_grids(result, test_images, labels, restored, out_dir, num_images):
    """predictions.png: the first test digits; mistakes.png: misclassified ones, if any."""
    size = restored.config["image_size"]
    originals = test_images.reshape(-1, size, size)
    boxes = result.get("boxes")
    notes = stn_notes(result)
    lower = "STN" if restored.config["stn"] else "CNN"
    seen = "the STN's output" if restored.config["stn"] else "as the CNN reads them"

    def grid(name, chosen, title):
        path = os.path.join(out_dir, name)
        figures.save_grid(path, originals[chosen], result["rectified"][chosen],
                          result["predictions"][chosen], labels[chosen], title=title,
                          boxes=None if boxes is None else boxes[chosen], lower_label=lower,
                          notes=None if notes is None else notes[chosen])
        print(f"Wrote {path}")

    grid(GRID_FILE, np.arange(min(num_images, len(labels))),
         f"Test digits: input (top), {seen} (below)")
    wrong = np.flatnonzero(~result["correct"])
    if len(wrong):
        grid(MISTAKES_FILE, wrong[:num_images],
             f"{min(len(wrong), num_images)} of {len(wrong)} misclassified test digits")


def read_theta(out, size, config):
    """Add to a model's outputs what its thetas did, read once for every image: the
    ``parts`` of ``geometry.decompose`` and the sampled ``boxes``; nothing without an
    STN."""
    if "theta" in out:
        out["parts"] = geometry.decompose(out["theta"], size, config["transform"])
        out["boxes"] = geometry.sampled_box(out["theta"], size, config["transform"])
    return out


def stn_notes(out):
    """Each digit's grid label, its angle and zoom ('31°cw 1.4x'); None without an STN."""
    if "parts" not in out:
        return None
    return np.array([geometry.short_label(out["parts"], i) for i in range(len(out["theta"]))])


def predict_sums(restored, args):
    """The addition: accuracy on the fixed test pairs, which channel each STN took,
    and the grids of pairs."""
    config = restored.config
    distortion = args.distortion or config["distortion"]
    if distort.CANVAS_SIZE[distortion] != config["image_size"]:
        side = config["image_size"]
        raise checkpoints.CheckpointError(f"the model reads {side}x{side} inputs; "
                                          f"--distortion {distortion} makes other sizes")
    test = data.load_mnist(args.data_dir, validation_size=0).test
    canvases, sums, digits = addition.fixed_pairs(test, distortion, distort.TEST_SEED)
    result = restored.evaluate(canvases, sums)
    correct = result["correct"]
    print(f"Test accuracy: {result['accuracy']:.2%} ({correct.sum()}/{len(correct)} sums, "
          f"{model.describe(config)}, checkpoint {restored.checkpoint})")
    size, kinds = config["image_size"], geometry.kinds(config)
    boxes = None
    if "theta" in result:
        shares = addition.channel_shares(result["rectified"], len(kinds))
        for k, (first, second) in enumerate(shares, start=1):
            print(f"  STN {k}: {first:.0%} of its output's ink from channel 1, "
                  f"{second:.0%} from channel 2")
        boxes = [geometry.sampled_box(theta, size, kind)
                 for kind, theta in zip(kinds, geometry.split(result["theta"], kinds))]
    words = np.array([addition.in_words(a, b) for a, b in digits])
    for i in range(min(3, len(sums))):
        print(f"  pair {i}: {words[i]}, predicted {result['predictions'][i]}")
    pairs = canvases.reshape(-1, size, size, addition.CHANNELS)
    groups = len(kinds) if config["stn"] else 1

    def grid(name, chosen, title):
        path = os.path.join(args.out_dir, name)
        figures.save_grid(path, pairs[chosen], result["rectified"][chosen],
                          result["predictions"][chosen], sums[chosen], title=title,
                          boxes=None if boxes is None else [b[chosen] for b in boxes],
                          lower_label="STNs" if config["stn"] else "input",
                          notes=words[chosen], groups=groups, per_row=8)
        print(f"Wrote {path}")

    grid(GRID_FILE, np.arange(min(args.num_images, len(sums))),
         "Test pairs, channel 1 magenta, channel 2 green, each STN's box in its colour "
         "(top); each STN's output, the predicted sum, the true one in words (below)")
    wrong = np.flatnonzero(~correct)
    if len(wrong):
        grid(MISTAKES_FILE, wrong[:args.num_images],
             f"{min(len(wrong), args.num_images)} of {len(wrong)} wrong sums")


def output_names(paths):
    """'<stem>_rectified.png' per input, never the same twice: seven.bmp and seven.gif
    give seven_rectified.png and seven_gif_rectified.png."""
    names, used = [], set()
    for path in paths:
        stem, ext = os.path.splitext(os.path.basename(path))
        candidates = [stem, f"{stem}_{ext.lstrip('.')}"] + [
            f"{stem}_{ext.lstrip('.')}_{n}" for n in range(2, len(paths) + 2)]
        name = next(c for c in candidates if c not in used)
        used.add(name)
        names.append(f"{name}_rectified.png")
    return names


def classify_files(restored, paths, out_dir):
    """Classify every readable image file; returns the paths that could not be read."""
    if restored.config["image_size"] != IMAGE_SIZE:
        raise checkpoints.CheckpointError(
            "this model reads canvases of distorted digits; classify your images with a "
            "model trained without --distortion")
    # each made to look like MNIST: (N, 28, 28)
    digits, read, failed = images.read_each(paths, images.prepare)
    if not read:
        return failed
    out = read_theta(restored.run(digits.reshape(len(read), -1)), IMAGE_SIZE,
                     restored.config)
    predictions = out["probabilities"].argmax(1)
    for i, (path, name) in enumerate(zip(read, output_names(read))):
        target = os.path.join(out_dir, name)
        images.save_png(target, out["rectified"][i, ..., 0])
        label = predictions[i]
        did = f": {geometry.describe(out['parts'], i)}" if "parts" in out else ""
        print(f"{path}: {label}, {out['probabilities'][i, label]:.1%}{did}  "
              f"rectified: {target}")
    grid = os.path.join(out_dir, USER_GRID_FILE)
    seen = "after the STN" if restored.config["stn"] else "as the CNN reads them"
    figures.save_grid(grid, digits, out["rectified"], predictions,
                      title=f"Your images, fitted to 28x28 (top), {seen} (below)",
                      boxes=out.get("boxes"),
                      lower_label="STN" if restored.config["stn"] else "CNN",
                      notes=stn_notes(out))
    print(f"Wrote {grid}")
    return failed


def main(argv=None):
    try:
        return run(argv)
    except KeyboardInterrupt:           # Ctrl-C, even while TensorFlow starts
        return 130


def run(argv):
    args = parse_args(argv)
    try:
        restored = restore(args.ckpt_dir, args.precision, stn=args.stn,
                           transform=args.transform, digits=args.digits)
        checkpoints.make_dir(args.out_dir, "--out-dir")
        if restored.config["digits"] == 2:
            if args.images:
                raise checkpoints.CheckpointError(
                    "an addition model reads pairs of digits, one per channel; give "
                    "image files to a model of one digit")
            predict_sums(restored, args)
            return 0
        if args.images:
            failed = classify_files(restored, args.images, args.out_dir)
            if failed:
                print(f"{len(failed)} of {len(args.images)} files could not be read",
                      file=sys.stderr)
                return 1
            return 0
        distortion = args.distortion or restored.config["distortion"]
        test_images, labels = test_set(restored, args.data_dir, distortion)
        result = read_theta(restored.evaluate(test_images, labels),
                            restored.config["image_size"], restored.config)
        report(result, labels, restored, distortion)
        draw_grids(result, test_images, labels, restored, args.out_dir, args.num_images)
    except (checkpoints.CheckpointError, data.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:                # a figure that cannot be written
        print(f"error: cannot write into --out-dir {args.out_dir} "
              f"({e.strerror or e}: {e.filename})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
