"""Train the second tutorial's STN-CNN on captcha letters A-Z, TF1 style.

    python -m letters.train                 # STN-CNN: Adam 1e-3, batch 32, dropout 0.2
    python -m letters.train --no-stn        # the same classifier without the STN
    python -m letters.train --optimizer amsgrad --bn before-relu    # its ablations

The first run draws the 10,000 letters into a cache (about 12 s). Checkpoints,
TensorBoard summaries and metrics.json go to --ckpt-dir; running again resumes, and
Ctrl-C saves a checkpoint before it exits. The tutorial trained 400 epochs (100,000
steps); the default here is 2,500 steps (10 epochs).
"""
import argparse
import math
import sys

from letters import CKPT_ROOT
from letters import data as letters_data
from letters import model, optimizers
from mnist_stn import checkpoints, data, precision, training
from mnist_stn.training import TrainConfig

# The tutorial's Keras run: Adam at Keras' 1e-3, batch 32, dropout 0.2 in both nets.
DEFAULTS = TrainConfig(model={}, ckpt_dir="", steps=2500, batch_size=32, learning_rate=1e-3,
                       lr_schedule="constant", keep_prob=0.8, loc_keep_prob=0.8)


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--steps", type=int, default=DEFAULTS.steps,
        help="total training steps, counting those of a resumed run (default: %(default)s)")
    add("--batch-size", type=int, default=DEFAULTS.batch_size,
        help="letters per step, as the tutorial (default: %(default)s)")
    add("--learning-rate", type=float, default=DEFAULTS.learning_rate,
        help="learning rate, the peak of the schedule (default: %(default)s)")
    add("--lr-schedule", choices=training.LR_SCHEDULES, default=DEFAULTS.lr_schedule,
        help="cosine: decay to 0 at --steps; constant: the tutorial's; thirds: /10 after "
             "a third and two thirds of --steps (default: %(default)s)")
    add("--optimizer", choices=optimizers.OPTIMIZERS, default="adam",
        help="adam (what the tutorial ran), amsgrad (what it built), or sgd "
             "(default: %(default)s)")
    add("--keep-prob", type=float, default=DEFAULTS.keep_prob,
        help="dropout keep probability of the classifier (default: %(default)s)")
    add("--loc-keep-prob", type=float, default=DEFAULTS.loc_keep_prob,
        help="dropout keep probability inside the localisation net (default: %(default)s)")
    add("--no-stn", dest="stn", action="store_false",
        help="train the plain CNN, without the spatial transformer")
    add("--width", type=float, default=1.0,
        help="channel multiplier of the conv layers, to run the model small "
             "(default: %(default)s, the tutorial's)")
    add("--bn", choices=model.BN_PLACES, default=model.BN_PLACES[0],
        help="batch norm after the ReLU (the tutorial) or before it (default: %(default)s)")
    add("--batch-norm", dest="norm", choices=model.NORMS, default=model.NORMS[0],
        help="batch renormalisation (the tutorial's renorm=True) or plain batch norm "
             "(default: %(default)s)")
    add("--signed-pixels", dest="pixel_range", action="store_const", const="-1,1",
        default="0,1", help="the model rescales pixels from [0, 1] (the tutorial's) to "
                            "[-1, 1], one of the tutorial's ablations")
    add("--data-dir", default=None,
        help="where the generated PNG letters are kept "
             f"(default: {letters_data.default_dir()})")
    add("--ckpt-dir", default=None,
        help="checkpoints, summaries and metrics (default: checkpoints/letters/stn, "
             "checkpoints/letters/cnn with --no-stn)")
    add("--seed", type=int, default=DEFAULTS.seed,
        help="seed for weights, dropout and batch order (default: %(default)s)")
    add("--log-every", type=int, default=DEFAULTS.log_every,
        help="print progress every N steps (default: %(default)s)")
    add("--eval-every", type=int, default=DEFAULTS.eval_every,
        help="validation accuracy every N steps (default: %(default)s)")
    add("--save-every", type=int, default=DEFAULTS.save_every,
        help="checkpoint every N steps (default: %(default)s)")
    add("--precision", choices=precision.PRECISIONS, default="auto",
        help="fp32, or bf16 for the convolutions and matrix products (the STN's sampler "
             "stays float32); auto: bf16 where the CPU has bfloat16 dot products "
             "(default: %(default)s)")
    return parser


def parse_args(argv=None):
    """Flags -> (TrainConfig, optimizer name, data dir); a bad value is one error line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (math.isfinite(args.width) and args.width > 0):
        parser.error("--width must be positive")
    model_config = {"stn": args.stn, "width": args.width, "bn": args.bn,
                    "pixel_range": args.pixel_range, "norm": args.norm}
    ckpt_dir = args.ckpt_dir or checkpoints.default_dir(args.stn, root=CKPT_ROOT)
    config = TrainConfig(
        model=model_config, ckpt_dir=ckpt_dir,
        steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
        lr_schedule=args.lr_schedule, keep_prob=args.keep_prob,
        loc_keep_prob=args.loc_keep_prob, seed=args.seed, log_every=args.log_every,
        eval_every=args.eval_every, save_every=args.save_every,
        precision=precision.resolve(args.precision))
    try:
        config.check(train_size=letters_data.SPLIT[0])
    except ValueError as e:
        parser.error(str(e))
    print(precision.describe(config.precision, args.precision))
    return config, args.optimizer, args.data_dir


def train(config, optimizer, datasets):
    """Train on the letters; returns the metrics."""
    metrics = training.fit(
        config, model.build_graph, datasets.train,
        (datasets.validation.images, datasets.validation.labels),
        (datasets.test.images, datasets.test.labels),
        make_optimizer=lambda learning_rate: optimizers.make_optimizer(optimizer,
                                                                       learning_rate))
    print(f"Test accuracy: {metrics['test_accuracy']:.2%} "
          f"({model.describe(config.model)}, {metrics['steps']} steps)")
    return metrics


def main(argv=None):
    config, optimizer, data_dir = parse_args(argv)
    try:
        train(config, optimizer, letters_data.load_letters(data_dir, shuffle_seed=config.seed))
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
