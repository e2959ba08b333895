"""Train the STN + CNN on MNIST: a run's recipe and flags in, mnist_stn/training.py's TF1
Session loop (placeholders, a Saver, checkpoints) out.

    python train.py                    # the run configs/mnist.toml names: STN + CNN
    python train.py --no-stn           # the same CNN without the STN (run mnist-cnn)
    python train.py --transform tps    # the STN paper's thin-plate spline (run mnist-tps)
    python train.py --config tutorial  # exactly the tutorial (slower to converge)
    python train.py --distortion R     # the STN paper's rotated digits (configs/R.toml)
    python train.py --distortion P --transform projective   # run P-projective
    python train.py --config addition  # two digits, two STNs side by side: their sum

A run is a recipe of configs/ (what it changes from the defaults, and why) plus the
flags: --transform and --no-stn change its model, --steps and the like its training,
and its name says the model's changes.
Checkpoints, TensorBoard summaries and metrics.json go to --ckpt-dir, a folder that
can be moved or copied. Running again resumes from its newest intact checkpoint; Ctrl-C,
SIGTERM or a closed terminal save one before it exits. Flags changed on resume apply to
the steps still to come and are listed when it resumes (the schedule then runs over the
new --steps); a model of another run, or --steps below the saved step, is refused. One
training at a time writes into a folder.
"""
import argparse
import sys

import model
from mnist_stn import addition, checkpoints, configs, data, distort, precision, training
from mnist_stn.constants import TRAIN_FILE_SIZE, VALIDATION_SIZE

def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    configs.add_model_flags(parser, "mnist")
    add("--distortion", choices=distort.KINDS, default="none",
        help="train and test on distorted digits, as in the STN paper: R rotated, RTS "
             "rotated/scaled/translated on 42x42, P projective, E elastic (the paper's "
             "spline), simard Simard's elastic field, clutter on 60x60; short for "
             "--config K, whose file says how it trains and why (default: %(default)s)")
    configs.add_override_flags(parser)
    add("--data-dir", default=None,
        help="directory with the four MNIST IDX files (.gz or not) (default: "
             f"${data.DATA_DIR_ENV}, else download to {data.default_cache_dir()})")
    add("--ckpt-dir", default=None,
        help="checkpoints, summaries and metrics (default: checkpoints/<the run's name>)")
    add("--frames", type=int, default=None,
        help="frames of the animation of the STN learning (learning.gif in --ckpt-dir: a "
             "fixed panel of validation digits, their boxes and the STN's outputs), taken "
             "evenly over the run; 0: none (default: 60)")
    add("--precision", choices=precision.PRECISIONS, default="auto",
        help="fp32, or bf16 for the convolutions and matrix products (the STN's sampler "
             "stays float32); auto: bf16 where the CPU has bfloat16 dot products "
             "(default: %(default)s)")
    return parser


def parse_args(argv=None):
    """Flags -> (TrainConfig, data dir); a bad value is one argparse error line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config and args.distortion != "none":
        parser.error("--distortion is short for --config: give one of them")
    try:
        name = configs.select("mnist", args.config, args.stn, args.distortion,
                              args.transform)
        overrides = {**configs.overrides(args), "frames": args.frames,
                     "save_every": args.eval_every}
        config = configs.train_config(name, "mnist",
                                      args.ckpt_dir or configs.default_dir(name),
                                      precision=precision.resolve(args.precision),
                                      **overrides)
        config.check(train_size=TRAIN_FILE_SIZE - VALIDATION_SIZE)
    except ValueError as e:                 # configs.ConfigError among them
        parser.error(str(e))
    recipe = configs.parse_run(name, "mnist")[0]
    print(f"Run: {name} (configs/{recipe}.toml). "
          + precision.describe(config.precision, args.precision))
    return config, args.data_dir


def train(config, datasets):
    """Train on MNIST (distorted as config.model says, one digit or the addition's
    pairs); returns the metrics."""
    make = addition if config.model["digits"] == 2 else distort
    inputs = make.training_inputs(datasets, config.model["distortion"], config.seed,
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
        print(f"error: cannot write {e.filename or 'into ' + config.ckpt_dir} "
              f"({e.strerror or e})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
