"""Train the STN + CNN on MNIST, TF1 style: placeholders, a Session loop, a Saver.

    python train.py              # STN + CNN: Adam, batch 50, dropout 0.5 as the tutorial
    python train.py --no-stn     # the same CNN without the STN, for comparison
    python train.py --learning-rate 1e-4 --lr-schedule constant --steps 20000
                                 # exactly the tutorial (slower to converge)
    python train.py --distortion RTS       # the STN paper's rotated/scaled/moved digits

Checkpoints, TensorBoard summaries and metrics.json go to --ckpt-dir, a folder that
can be moved or copied. Running again resumes from its newest intact checkpoint; Ctrl-C,
SIGTERM or a closed terminal save one before it exits. Flags changed on resume apply to
the steps still to come and are listed when it resumes (the schedule then runs over the
new --steps); a model flag (--no-stn, --distortion) of another model, or --steps below
the saved step, is refused. One training at a time writes into a folder.
"""
import argparse
import sys

import model
from mnist_stn import checkpoints, data, distort, precision, training
from mnist_stn.constants import TRAIN_FILE_SIZE, VALIDATION_SIZE
from mnist_stn.training import TrainConfig

DEFAULTS = TrainConfig(model={}, ckpt_dir="")     # the tutorial's settings, defined once


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    budgets = ", ".join(f"{kind} {tuned['steps']}" for kind, tuned in distort.TRAINING.items()
                        if "steps" in tuned)
    add("--steps", type=int, default=None,
        help="total training steps, counting those of a resumed run (default: "
             f"{DEFAULTS.steps}; with --distortion, what its budget of 30 minutes (40 "
             f"for clutter) held on a 2-core AVX-512 CPU in bf16: {budgets})")
    add("--batch-size", type=int, default=DEFAULTS.batch_size,
        help="images per step, as the tutorial (default: %(default)s)")
    add("--learning-rate", type=float, default=DEFAULTS.learning_rate,
        help="Adam's learning rate, the peak of the schedule (default: %(default)s; the "
             "tutorial's 1e-4 needs more steps than 10 minutes of CPU allow for 99.4%%)")
    add("--lr-schedule", choices=training.LR_SCHEDULES, default=DEFAULTS.lr_schedule,
        help="cosine: decay from --learning-rate to 0 at --steps; constant: the "
             "tutorial's; thirds: /10 after a third and two thirds of --steps, as the STN "
             "paper (default: %(default)s)")
    add("--keep-prob", type=float, default=DEFAULTS.keep_prob,
        help="dropout keep probability of the classifier (default: %(default)s)")
    add("--loc-keep-prob", type=float, default=DEFAULTS.loc_keep_prob,
        help="dropout keep probability inside the localisation net (default: %(default)s)")
    add("--no-stn", dest="stn", action="store_false",
        help="train the plain CNN, without the spatial transformer")
    add("--distortion", choices=distort.KINDS, default="none",
        help="train and test on distorted digits, as in the STN paper: R rotated, RTS "
             "rotated/scaled/translated on 42x42, P projective, E elastic, clutter on "
             "60x60; the loc net then starts at the identity, as the paper's, and "
             "for R the rotations grow from none to full over the first 2/9 of the "
             "steps, the loc net learns at 3x the rate and the classifier is held still "
             "from 1/18 to 5/18 of the steps; for clutter the digits "
             "move out from the centre over the first third and the box starts on the "
             "central quarter of the canvas, half its side (default: %(default)s)")
    add("--data-dir", default=None,
        help="directory with the four MNIST IDX files (.gz or not) (default: "
             f"${data.DATA_DIR_ENV}, else download to {data.default_cache_dir()})")
    add("--ckpt-dir", default=None,
        help="checkpoints, summaries and metrics (default: checkpoints/stn, "
             "checkpoints/cnn with --no-stn, checkpoints/stn-RTS with --distortion RTS...)")
    add("--seed", type=int, default=DEFAULTS.seed,
        help="seed for weights, dropout, batch order and distortions (default: %(default)s)")
    add("--log-every", type=int, default=DEFAULTS.log_every,
        help="print progress every N steps (default: %(default)s)")
    add("--eval-every", type=int, default=DEFAULTS.eval_every,
        help="validation accuracy and a checkpoint every N steps (default: %(default)s)")
    add("--frames", type=int, default=DEFAULTS.frames,
        help="frames of the animation of the STN learning (learning.gif in --ckpt-dir: a "
             "fixed panel of validation digits, their boxes and the STN's outputs), taken "
             "evenly over the run; 0: none (default: %(default)s)")
    add("--precision", choices=precision.PRECISIONS, default="auto",
        help="fp32, or bf16 for the convolutions and matrix products (the STN's sampler "
             "stays float32); auto: bf16 where the CPU has bfloat16 dot products "
             "(default: %(default)s)")
    return parser


def parse_args(argv=None):
    """Flags -> (TrainConfig, data dir); a bad value is one argparse error line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    clean = args.distortion == "none"
    # On distorted canvases the loc net starts at the identity, as the STN paper's (the
    # tutorial's random head gives each digit its own random turn at step 0); the
    # distorted benchmark's --loc-head measures the other start.
    model_config = {"stn": args.stn, "distortion": args.distortion,
                    "image_size": distort.CANVAS_SIZE[args.distortion],
                    "loc_head": "tutorial" if clean else "identity"}
    tuned = distort.TRAINING.get(args.distortion, {})
    if "loc_start_scale" in tuned:
        model_config["loc_start_scale"] = tuned["loc_start_scale"]
    ckpt_dir = args.ckpt_dir or checkpoints.default_dir(args.stn, args.distortion)
    if args.steps is None:
        args.steps = tuned.get("steps", DEFAULTS.steps)
    config = TrainConfig(
        model=model_config, ckpt_dir=ckpt_dir,
        steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
        lr_schedule=args.lr_schedule, keep_prob=args.keep_prob,
        loc_keep_prob=args.loc_keep_prob, seed=args.seed, log_every=args.log_every,
        eval_every=args.eval_every, save_every=args.eval_every,
        ramp_steps=round(tuned.get("ramp_share", 0) * args.steps),
        loc_lr_multiplier=tuned.get("loc_lr_multiplier", 1.0) if args.stn else 1.0,
        **(classifier_frozen(tuned["classifier_frozen"], args.steps)
           if args.stn and "classifier_frozen" in tuned else {}),
        frames=args.frames, precision=precision.resolve(args.precision))
    try:
        config.check(train_size=TRAIN_FILE_SIZE - VALIDATION_SIZE)
    except ValueError as e:
        parser.error(str(e))
    print(precision.describe(config.precision, args.precision))
    return config, args.data_dir


def classifier_frozen(shares, steps):
    """TrainConfig settings that hold the classifier still over these shares of the
    steps while the STN learns to turn digits for it (see distort.TRAINING)."""
    start, until = (round(share * steps) for share in shares)
    return {"classifier_lr_after_ramp": 0.0,
            "classifier_slow_steps": (start, max(until, start + 1))}


def train(config, datasets):
    """Train on MNIST (distorted as config.model says); returns the metrics."""
    inputs = distort.training_inputs(datasets, config.model["distortion"], config.seed,
                                     config.ramp_steps)
    metrics = training.fit(config, model.build_graph, **inputs)
    print(f"Test accuracy: {metrics['test_accuracy']:.2%} "
          f"({model.describe(config.model)}, {metrics['steps']} steps)")
    return metrics


def main(argv=None):
    config, data_dir = parse_args(argv)
    try:
        train(config, data.load_mnist(data_dir, seed=config.seed))
    except (data.DataError, checkpoints.CheckpointError, training.TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:                # e.g. a file in the folder made read-only
        print(f"error: cannot write {e.filename} ({e.strerror or e})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
