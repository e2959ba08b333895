"""Benchmark: train.py's defaults with and without the STN on clean MNIST.

    python -m benchmarks.mnist --data-dir ../shared/mnist
    python -m benchmarks.mnist --data-dir ../shared/mnist --models stn \\
        --learning-rate 1e-4 --lr-schedule constant --steps 10000 --tag tutorial-lr

Both models are trained one after the other in this one process, so their speeds
compare as a ratio. Each finished run is recorded in --results (JSON) and the markdown
table --table is rebuilt from all records.
"""
import argparse
import os
import time

import model
from benchmarks import common
from mnist_stn import data, distort, precision, training
from mnist_stn.constants import TRAIN_FILE_SIZE, VALIDATION_SIZE
from mnist_stn.training import TrainConfig

DEFAULTS = TrainConfig(model={}, ckpt_dir="")
NAMES = {"stn": "STN + CNN", "cnn": "CNN (--no-stn)"}


def run(name, settings, datasets, ckpt_dir):
    """Train one model with train.py's defaults but ``settings``; returns its record."""
    config = TrainConfig(model={"stn": name == "stn", "distortion": "none",
                                "image_size": distort.CANVAS_SIZE["none"],
                                "loc_head": "tutorial"}, ckpt_dir=ckpt_dir, **settings)
    start = time.time()
    metrics = training.fit(config, model.build_graph, **distort.training_inputs(
        datasets, "none", config.seed))
    return {"model": NAMES[name], "steps": metrics["steps"], "precision": config.precision,
            "learning_rate": config.learning_rate, "lr_schedule": config.lr_schedule,
            "test_accuracy": metrics["test_accuracy"], "wall_minutes": (time.time() - start) / 60,
            "images_per_second": metrics["images_per_second"], **common.stamp()}


def table(records):
    lines = ["| run | model | precision | steps | learning rate | test accuracy | wall time "
             "(train + evaluation) | training images/s | measured |",
             "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | --- |"]
    for key, r in records.items():
        lines.append(f"| {key} | {r['model']} | {r.get('precision', 'fp32')} | {r['steps']} "
                     f"| {r['learning_rate']:g} "
                     f"{r['lr_schedule']} | {r['test_accuracy']:.2%} | "
                     f"{r['wall_minutes']:.1f} min | {r['images_per_second'] or 0:.0f} | "
                     f"`{r['command']}`, {r['machine']}, {r['date']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="MNIST directory (default: as train.py)")
    parser.add_argument("--models", default="stn,cnn",
                        help="stn, cnn or both, in this order (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=DEFAULTS.steps,
                        help="training steps of each run (default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate,
                        help="peak learning rate (default: %(default)s)")
    parser.add_argument("--lr-schedule", choices=training.LR_SCHEDULES,
                        default=DEFAULTS.lr_schedule, help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")
    parser.add_argument("--precision", choices=precision.PRECISIONS, default="auto",
                        help="as train.py's --precision (default: %(default)s)")
    parser.add_argument("--tag", default="defaults",
                        help="names the runs in the records (default: %(default)s)")
    parser.add_argument("--results", default=os.path.join("benchmarks", "results", "mnist.json"),
                        help="JSON record of all runs (default: %(default)s)")
    parser.add_argument("--table", default=os.path.join("benchmarks", "results", "mnist.md"),
                        help="markdown table rebuilt from --results (default: %(default)s)")
    common.add_keep_flags(parser, "mnist")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    if not set(models) <= set(NAMES):
        parser.error(f"--models takes stn and/or cnn, not {args.models}")
    settings = {"steps": args.steps, "learning_rate": args.learning_rate,
                "lr_schedule": args.lr_schedule, "seed": args.seed,
                "precision": precision.resolve(args.precision)}
    try:
        TrainConfig(model={}, ckpt_dir="", **settings).check(
            train_size=TRAIN_FILE_SIZE - VALIDATION_SIZE)
    except ValueError as e:
        parser.error(str(e))
    records = common.Records(args.results, args.table, table)
    common.refuse_recorded(parser, records, [f"{args.tag}/{name}" for name in models],
                           args.overwrite)

    datasets = data.load_mnist(args.data_dir, seed=args.seed)
    for name in models:
        ckpt = os.path.join(args.ckpt_root, f"{args.tag}-{name}")
        records.add(f"{args.tag}/{name}", run(name, settings, datasets, ckpt))
        datasets = data.load_mnist(args.data_dir, seed=args.seed)   # fresh batch order
    print(table(records.data))


if __name__ == "__main__":
    common.run_main(main)
