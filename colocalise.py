"""Co-localisation: an attention transformer finds digits with no box or class labels.

    python colocalise.py                        # every class, on T and on TC
    python colocalise.py --digit 3 --sets TC    # one class, among clutter

The STN paper's Appendix A.2. For one class, 100 training digits are placed at random
on 84x84 canvases (T), or with 16 random 6x6 crops of other digits as clutter (TC). An
attention transformer (a square window: a scale and a shift) is trained on them with a
triplet loss alone: in the clean-MNIST classifier's embedding, the windows of two
images of the class should be nearer each other than each is to a random window of
its own image. The classifier is the plain CNN of ``python train.py --no-stn``; without
one in --classifier, it is trained there first. Each run prints the share of images
whose window overlaps the digit's box with IoU > 0.5, keeps its checkpoint in
--ckpt-root/<set>-<digit> (the same command resumes a stopped run), and films the
windows moving onto the digits (learning.gif there).
"""
import argparse
import functools
import os
import sys

import model
from mnist_stn import checkpoints, colocalisation, configs, data, distort, training
from mnist_stn.compat import tf
from mnist_stn.constants import IMAGE_SIZE

SETS = ("T", "TC")
CLASSIFIER_RUN = "mnist-cnn"      # the clean-MNIST CNN, as train.py --no-stn names it


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--digit", type=int, choices=range(10), default=None, metavar="0-9",
        help="the class to co-localise (default: each of the ten in turn)")
    add("--sets", default="T,TC",
        help="comma-separated: T, digits alone, and TC, among clutter (default: %(default)s)")
    add("--steps", type=int, default=300, help="training steps per run (default: %(default)s)")
    add("--batch-size", type=int, default=32,
        help="images per step, every pair of them a term of the loss (default: %(default)s)")
    add("--learning-rate", type=float, default=1e-3,
        help="Adam's learning rate, constant (default: %(default)s)")
    add("--start-scale", type=float, default=1 / 3,
        help="the windows' first size, a share of the canvas's side (default: %(default)s)")
    add("--min-scale", type=float, default=0.25,
        help="the smallest window, a share of the canvas's side: the loss alone favours "
             "ever smaller windows, a piece of stroke being as alike across images as a "
             "whole digit (default: %(default)s)")
    add("--loc-net", choices=("paper", "tutorial"), default="tutorial",
        help="the loc net: the paper's (conv 9x9x8 stride 4, FC 8, FC 8) or the "
             "tutorial's (two convolutions, FC 32) (default: %(default)s)")
    add("--ramp", type=float, default=0.5,
        help="share of the steps over which the digits move out from the centre of the "
             "canvas to their places (0: there from the start) (default: %(default)s)")
    add("--seed", type=int, default=0,
        help="seed for the images chosen, their places, clutter and training (default: 0)")
    add("--classifier", default=None, metavar="DIR",
        help="checkpoint folder of the clean-MNIST CNN whose embedding is used (default: "
             f"{configs.default_dir(CLASSIFIER_RUN)}, trained there first if empty)")
    add("--classifier-steps", type=int, default=None,
        help="training steps of that CNN when it has to be trained (default: its "
             "recipe's)")
    add("--data-dir", default=None,
        help="directory with the four MNIST IDX files (default: as train.py)")
    add("--ckpt-root", default=os.path.join("checkpoints", "coloc"),
        help="each run's checkpoint folder goes here, as <set>-<digit> (default: "
             "%(default)s)")
    add("--frames", type=int, default=30,
        help="frames of each run's film of the windows (0: none) (default: %(default)s)")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    args.sets = args.sets.split(",")
    unknown = [name for name in args.sets if name not in SETS]
    if unknown:
        parser.error(f"--sets takes T and TC, not {', '.join(unknown)}")
    if not 0 < args.min_scale <= args.start_scale <= 1:
        parser.error(f"--min-scale and --start-scale must be in (0, 1], the first no "
                     f"larger, not {args.min_scale} and {args.start_scale}")
    try:
        run_config(args, "T", 0).check(train_size=colocalisation.PER_CLASS)
    except ValueError as e:
        parser.error(str(e))
    return args


def run_config(args, name, digit):
    """The TrainConfig of one class on one set."""
    return training.TrainConfig(
        model={"task": "colocalisation", "set": name, "digit": digit, "stn": True,
               "transform": "attention", "image_size": colocalisation.CANVAS,
               "loc_start_scale": args.start_scale, "min_scale": args.min_scale,
               "loc_layers": args.loc_net},
        ckpt_dir=os.path.join(args.ckpt_root, f"{name}-{digit}"), steps=args.steps,
        batch_size=args.batch_size, learning_rate=args.learning_rate,
        lr_schedule="constant", keep_prob=1.0, seed=args.seed,
        log_every=max(1, args.steps // 10), eval_every=max(1, args.steps // 10),
        save_every=max(1, args.steps // 3), frames=args.frames)


def classifier_weights(ckpt_dir):
    """The clean-MNIST CNN's variables, by name, from its folder; CheckpointError if the
    folder holds none, a damaged one, or another model."""
    if not checkpoints.checkpoint_steps(os.path.expanduser(ckpt_dir)):
        raise checkpoints.CheckpointError(
            f"no classifier in {ckpt_dir}: train one with python train.py --no-stn "
            "--ckpt-dir DIR, or leave out --classifier to train it here first")
    restored = checkpoints.Restored(ckpt_dir, model.build_graph, needs=("stn", "image_size"),
                                    how_to_train="train.py --no-stn")
    try:
        config = restored.config
        if config["stn"] or config["image_size"] != IMAGE_SIZE or config["digits"] != 1 \
                or config["classifier"] != "cnn":
            raise checkpoints.CheckpointError(
                f"{ckpt_dir} holds a {model.describe(config)} model, not the clean-MNIST "
                "CNN of python train.py --no-stn")
        with restored.graph.as_default():
            return restored.sess.run({v.op.name: v for v in tf.trainable_variables()})
    finally:
        restored.close()


def train_classifier(args, datasets):
    """Train the clean-MNIST CNN into its default folder (train.py --no-stn's run)."""
    config = configs.train_config(CLASSIFIER_RUN, "mnist",
                                  configs.default_dir(CLASSIFIER_RUN),
                                  steps=args.classifier_steps, seed=args.seed)
    print(f"No classifier yet: training the CNN of python train.py --no-stn into "
          f"{config.ckpt_dir} ({config.steps} steps).", flush=True)
    metrics = training.fit(config, model.build_graph,
                           **distort.training_inputs(datasets, "none", args.seed))
    print(f"Classifier test accuracy: {metrics['test_accuracy']:.2%}", flush=True)
    return config.ckpt_dir


def colocalise(args, datasets, weights, name, digit):
    """Train one class's window on one set; returns the share of its images on which
    the window lands (IoU > 0.5)."""
    scene = colocalisation.class_set(datasets.train, digit, name == "TC", args.seed)
    canvases, boxes = colocalisation.compose(*scene)
    config = run_config(args, name, digit)
    images = colocalisation.Gathering(*scene, ramp_steps=round(args.ramp * config.steps),
                                      seed=args.seed)
    build = functools.partial(model.build_coloc_graph, classifier_weights=weights)
    metrics = training.fit(config, build, train_set=images, validation=(canvases, boxes),
                           test=(canvases, boxes))
    # the stricter score: the window against the box of the digit's ink
    restored = checkpoints.Restored(config.ckpt_dir, build)
    try:
        windows = colocalisation.window_boxes(restored.run(canvases, names=("theta",))["theta"])
    finally:
        restored.close()
    inked = colocalisation.iou(windows, colocalisation.ink_boxes(scene[0], scene[1]))
    return metrics["test_accuracy"], float((inked > colocalisation.HIT_IOU).mean()), \
        metrics["train_seconds"]


def main(argv=None):
    args = parse_args(argv)
    try:
        # the classes' images come from all 60,000 training digits: nothing is validated
        everything = data.load_mnist(args.data_dir, validation_size=0, seed=args.seed)
        folder = args.classifier
        if folder is None:
            folder = configs.default_dir(CLASSIFIER_RUN)
            if not checkpoints.checkpoint_steps(folder):
                folder = train_classifier(args, data.load_mnist(args.data_dir,
                                                                seed=args.seed))
        weights = classifier_weights(folder)
        digits = range(10) if args.digit is None else [args.digit]
        found = {}
        for name in args.sets:
            for digit in digits:
                share, inked, seconds = colocalise(args, everything, weights, name, digit)
                found[name, digit] = share
                print(f"{name}, digit {digit}: the window is on the digit (IoU > 0.5 with "
                      f"its 28x28 frame) in {share:.0%} of its {colocalisation.PER_CLASS} "
                      f"images; on its ink's box in {inked:.0%} ({seconds:.0f} s)",
                      flush=True)
    except (data.DataError, checkpoints.CheckpointError, training.TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    for name in args.sets:
        shares = [found[name, digit] for digit in digits]
        print(f"{name}: " + "  ".join(f"{d}: {s:.0%}" for d, s in zip(digits, shares))
              + f"  (mean {sum(shares) / len(shares):.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
