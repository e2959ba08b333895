"""Restore the letters' model and look at what its STN does.

    python -m letters.predict               # test accuracy per letter; grids of test letters
    python -m letters.predict letter.png    # classify your own images (resized to 60x60)

Pass --no-stn (or --ckpt-dir) as given to letters.train to find its checkpoint.
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

from letters import data as letters_data
from letters import model
from mnist_stn import checkpoints, configs, data, figures, geometry, images, precision

GRID_FILE = "predictions.png"
MISTAKES_FILE = "mistakes.png"
USER_GRID_FILE = "your_letters.png"
NAMES = np.array(list(letters_data.LETTERS))


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", metavar="IMAGE",
                        help="your own images of one letter (PNG, JPEG, GIF, BMP or WebP); "
                             "without them, evaluate on the test letters")
    configs.add_model_flags(parser, "letters", what="restore, as given to letters.train")
    parser.add_argument("--ckpt-dir", default=None,
                        help="where letters.train saved the model (default: as it does)")
    parser.add_argument("--data-dir", default=None,
                        help="the generated letters (default: as letters.train)")
    parser.add_argument("--out-dir", default=None,
                        help="where to write the figures (default: the checkpoint directory)")
    parser.add_argument("--precision", choices=precision.PRECISIONS, default=None,
                        help="fp32, or bf16 for the convolutions and matrix products; "
                             "auto: bf16 where the CPU has bfloat16 dot products "
                             "(default: the one the model was trained in)")
    parser.add_argument("--num-images", type=int, default=20,
                        help="test letters (and at most as many mistakes) in the grids "
                             "(default: %(default)s)")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.ckpt_dir is None:
        try:
            args.ckpt_dir = configs.default_dir(configs.select(
                "letters", args.config, args.stn, transform=args.transform))
        except configs.ConfigError as e:
            parser.error(str(e))
    args.out_dir = args.out_dir or args.ckpt_dir
    args.ckpt_dir, args.out_dir = map(os.path.expanduser, (args.ckpt_dir, args.out_dir))
    if args.precision is not None:
        args.precision = precision.resolve(args.precision)
    if args.num_images < 1:
        parser.error("--num-images must be at least 1")
    return args


def restore(ckpt_dir, precision=None):
    """The trained model in ``ckpt_dir``, by default in the precision it was trained in."""
    return checkpoints.Restored(ckpt_dir, model.build_graph, precision=precision,
                                how_to_train="run python -m letters.train first",
                                needs=("stn", "width"))


def report(result, labels, restored):
    correct = result["correct"]
    print(f"Test accuracy: {result['accuracy']:.2%} ({correct.sum()}/{len(correct)}, "
          f"{model.describe(restored.config)}, checkpoint {restored.checkpoint})")
    for k, accuracy in enumerate(result["per_class"]):
        count = (labels == k).sum()
        if count:
            print(f"  letter {NAMES[k]}: {accuracy:.2%} ({correct[labels == k].sum()}/{count})")


def draw_grids(result, test_images, labels, restored, out_dir, num_images):
    originals = test_images.reshape(-1, letters_data.SIZE, letters_data.SIZE,
                                    letters_data.CHANNELS)
    boxes = (geometry.sampled_box(result["theta"], letters_data.SIZE,
                                  restored.config["transform"])
             if "theta" in result else None)
    lower = "STN" if restored.config["stn"] else "CNN"

    def grid(name, chosen, title):
        path = os.path.join(out_dir, name)
        figures.save_grid(path, originals[chosen], result["rectified"][chosen],
                          NAMES[result["predictions"][chosen]], NAMES[labels[chosen]],
                          title=title, boxes=None if boxes is None else boxes[chosen],
                          lower_label=lower)
        print(f"Wrote {path}")

    grid(GRID_FILE, np.arange(min(num_images, len(labels))),
         f"Test letters: input (top), {lower} input (below)")
    wrong = np.flatnonzero(~result["correct"])
    if len(wrong):
        grid(MISTAKES_FILE, wrong[:num_images],
             f"{min(len(wrong), num_images)} of {len(wrong)} misclassified test letters")


def classify_files(restored, paths, out_dir):
    """Classify every readable image; returns the paths that could not be read."""
    # (N, 60, 60, 3)
    pictures, read, failed = images.read_each(paths, letters_data.prepare)
    if not read:
        return failed
    out = restored.run(pictures.reshape(len(read), -1))
    predictions = out["probabilities"].argmax(1)
    for path, p, k in zip(read, out["probabilities"], predictions):
        print(f"{path}: {NAMES[k]} ({p[k]:.1%})")
    grid = os.path.join(out_dir, USER_GRID_FILE)
    figures.save_grid(grid, pictures, out["rectified"], NAMES[predictions],
                      title="Your images, resized to 60x60 (top), what the classifier read "
                            "(below)",
                      boxes=geometry.sampled_box(out["theta"], letters_data.SIZE,
                                                 restored.config["transform"])
                      if "theta" in out else None,
                      lower_label="STN" if restored.config["stn"] else "CNN")
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
        restored = restore(args.ckpt_dir, args.precision)
        checkpoints.make_dir(args.out_dir, "--out-dir")
        if args.images:
            failed = classify_files(restored, args.images, args.out_dir)
            if failed:
                print(f"{len(failed)} of {len(args.images)} files could not be read",
                      file=sys.stderr)
            return 1 if failed else 0
        test = letters_data.load_letters(args.data_dir).test
        result = restored.evaluate(test.images, test.labels)
        report(result, test.labels, restored)
        draw_grids(result, test.images, test.labels, restored, args.out_dir, args.num_images)
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
