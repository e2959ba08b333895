"""Benchmark: the named runs of clean MNIST, with and without the STN.

    python -m benchmarks.mnist --data-dir ../shared/mnist
    python -m benchmarks.mnist --data-dir ../shared/mnist --configs tutorial

Trains each named run (a recipe of configs/ with its overrides, as train.py --config RUN
does) once per
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

RECIPES = ("mnist", "tutorial")


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_run_flags(parser, "mnist", RECIPES, ("mnist", "mnist-cnn"))
    args = parser.parse_args(argv)
    args.precision = precision.resolve(args.precision)
    common.keep_beside_results(args, "mnist")
    planned = common.planned_runs(parser, args, RECIPES, make_config,
                                  TRAIN_FILE_SIZE - VALIDATION_SIZE)
    records = common.Records(args.results, os.path.splitext(args.results)[0] + ".md", table)
    common.train_all(parser, records, planned, args, run)
    print(table(records.data))


if __name__ == "__main__":
    common.run_main(main)
