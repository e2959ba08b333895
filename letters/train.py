"""Train the second tutorial's STN-CNN on captcha letters A-Z, TF1 style.

    python -m letters.train                            # configs/letters.toml: the headline
    python -m letters.train --no-stn                   # the same classifier, no STN
    python -m letters.train --config letters-tutorial  # the tutorial's own set-up

A run is a recipe of configs/ plus the flags: --no-stn and --transform change its model
(and its name: letters-cnn), --steps and the like its training. The
first run draws the 10,000 letters into a cache (about 12 s). Checkpoints, TensorBoard
summaries and metrics.json go to --ckpt-dir; running again resumes (changed flags apply
to the steps still to come), and Ctrl-C saves a checkpoint before it exits.
"""
import argparse
import math
import sys

from letters import data as letters_data
from letters import model
from mnist_stn import checkpoints, configs, data, precision, training

def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    configs.add_model_flags(parser, "letters")
    configs.add_override_flags(parser)
    add("--width", type=float, default=None,
        help="channel multiplier of the conv layers, to run the model small "
             "(default: the config's, 1 as the tutorial)")
    add("--data-dir", default=None,
        help="where the generated PNG letters are kept "
             f"(default: {letters_data.default_dir()})")
    add("--ckpt-dir", default=None,
        help="checkpoints, summaries and metrics (default: checkpoints/<the run's name>)")
    add("--precision", choices=precision.PRECISIONS, default="auto",
        help="fp32, or bf16 for the convolutions and matrix products (the STN's sampler "
             "stays float32); auto: bf16 where the CPU has bfloat16 dot products "
             "(default: %(default)s)")
    return parser


def parse_args(argv=None):
    """Flags -> (TrainConfig, data dir); a bad value is one error line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.width is not None and not (math.isfinite(args.width) and args.width > 0):
        parser.error("--width must be positive")
    try:
        name = configs.select("letters", args.config, args.stn, transform=args.transform)
        config = configs.train_config(name, "letters",
                                      args.ckpt_dir or configs.default_dir(name),
                                      precision=precision.resolve(args.precision),
                                      save_every=args.eval_every,
                                      **configs.overrides(args))
        if args.width is not None:
            config.model["width"] = args.width
        config.check(train_size=letters_data.SPLIT[0])
    except ValueError as e:                 # configs.ConfigError among them
        parser.error(str(e))
    recipe = configs.parse_run(name, "letters")[0]
    print(f"Run: {name} (configs/{recipe}.toml). "
          + precision.describe(config.precision, args.precision))
    return config, args.data_dir


def train(config, datasets):
    """Train on the letters; returns the metrics."""
    metrics = training.fit(
        config, model.build_graph, datasets.train,
        (datasets.validation.images, datasets.validation.labels),
        (datasets.test.images, datasets.test.labels))
    print(f"Test accuracy: {metrics['test_accuracy']:.2%} "
          f"({model.describe(config.model)}, {metrics['steps']} steps)")
    return metrics


def main(argv=None):
    config, data_dir = parse_args(argv)
    try:
        train(config, letters_data.load_letters(data_dir, shuffle_seed=config.seed))
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
