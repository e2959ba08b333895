"""Benchmark: the named runs of clean MNIST, with and without the STN.

    python -m benchmarks.mnist --data-dir ../shared/mnist
    python -m benchmarks.mnist --data-dir ../shared/mnist --configs tutorial

Trains each named run (a file of configs/, as train.py --config NAME does) once per
seed, one after the other in this one process, so their speeds compare as a ratio.
Each finished run is recorded in --results (JSON; a recorded run is replaced only with
--overwrite) and a markdown table beside it is rebuilt from all records.
"""
import argparse
import os
import time

import model
from benchmarks import common
from mnist_stn import configs, data, distort, precision, training
from mnist_stn.constants import TRAIN_FILE_SIZE, VALIDATION_SIZE

RUNS = ("mnist", "mnist-cnn", "tutorial")


def make_config(name, seed, args, ckpt_dir=""):
    """The TrainConfig of one named run and seed, as train.py builds it."""
    return configs.train_config(name, "mnist", ckpt_dir, steps=args.steps, seed=seed,
                                precision=args.precision)


def run(name, seed, args, ckpt_dir):
    """Train one named run with one seed; returns its record."""
    config = make_config(name, seed, args, ckpt_dir)
    datasets = data.load_mnist(args.data_dir, seed=seed)
    start = time.time()
    metrics = training.fit(config, model.build_graph,
                           **distort.training_inputs(datasets, "none", seed))
    return {"config": name, "seed": seed, "stn": config.model["stn"],
            "steps": metrics["steps"], "precision": config.precision,
            "learning_rate": config.learning_rate, "lr_schedule": config.lr_schedule,
            "test_accuracy": metrics["test_accuracy"],
            "wall_minutes": (time.time() - start) / 60,
            "resumed_at_step": metrics["resumed_at_step"],
            "images_per_second": metrics["images_per_second"], **common.stamp()}


def table(records):
    lines = ["| run | seed | STN | precision | steps | learning rate | test accuracy | wall "
             "time (train + evaluation) | training images/s | measured |",
             "| --- | ---: | --- | --- | ---: | --- | ---: | ---: | ---: | --- |"]
    for r in sorted(records.values(), key=lambda r: (r["config"], r["seed"])):
        lines.append(f"| {r['config']} | {r['seed']} | {'yes' if r['stn'] else 'no'} | "
                     f"{r['precision']} | {r['steps']} | {r['learning_rate']:g} "
                     f"{r['lr_schedule']} | {r['test_accuracy']:.2%} | "
                     f"{common.wall_time(r)} | {r['images_per_second'] or 0:.0f} | "
                     f"`{r['command']}`, {r['machine']}, {r['date']} |")
    return "\n".join(lines) + "\n"


def run_name(name, seed):
    return name + (f"-seed{seed}" if seed else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="mnist,mnist-cnn",
                        help=f"comma-separated named runs of {', '.join(RUNS)}, in this "
                             "order (default: %(default)s)")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated seeds, each run once per seed "
                             "(default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps of every run (default: each config's)")
    parser.add_argument("--data-dir", default=None, help="MNIST directory (default: as train.py)")
    parser.add_argument("--precision", choices=precision.PRECISIONS, default="auto",
                        help="as train.py's --precision (default: %(default)s)")
    parser.add_argument("--results", default=os.path.join("benchmarks", "results", "mnist.json"),
                        help="JSON record of all runs; the markdown table is written beside "
                             "it, .md for .json (default: %(default)s)")
    common.add_keep_flags(parser, "mnist")
    args = parser.parse_args(argv)
    args.precision = precision.resolve(args.precision)
    names = args.configs.split(",")
    if not set(names) <= set(RUNS):
        parser.error(f"--configs takes {', '.join(RUNS)}, not {args.configs}")
    try:
        seeds = [int(seed) for seed in args.seeds.split(",")]
        for name in names:                  # every run passes the one check
            for seed in seeds:
                make_config(name, seed, args).check(
                    train_size=TRAIN_FILE_SIZE - VALIDATION_SIZE)
    except ValueError as e:
        parser.error(str(e) if "invalid literal" not in str(e)
                     else f"--seeds takes comma-separated integers, not {args.seeds!r}")
    records = common.Records(args.results, os.path.splitext(args.results)[0] + ".md", table)
    common.refuse_recorded(parser, records, [run_name(name, seed) for name in names
                                             for seed in seeds], args.overwrite)
    for seed in seeds:
        for name in names:
            key = run_name(name, seed)
            records.add(key, run(name, seed, args, os.path.join(args.ckpt_root, key)))
    print(table(records.data))


if __name__ == "__main__":
    common.run_main(main)
