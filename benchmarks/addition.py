"""Benchmark: the STN paper's MNIST addition, its four models beside its Appendix A.1.

    python -m benchmarks.addition --data-dir ../shared/mnist
    python -m benchmarks.addition --data-dir ../shared/mnist --configs addition --transform tps

Trains each named run (``configs/addition.toml`` with its overrides, as train.py --config
RUN does) once per seed, one after the other in this process, so their speeds compare
as a ratio, and tests it on the fixed test pairs. The default runs are the paper's four
models: the 2xST-FCN (addition), the ST-FCN (addition-x1), the FCN (addition-fcn) and
the CNN (addition-cnn). For a model with STNs it measures which channel each took: the
share of its output's ink that comes from channel 1 and from channel 2. Each finished
run is recorded in --results (JSON; a recorded run is replaced only with --overwrite)
and a markdown table beside it is rebuilt from all records.
"""
import argparse
import os
import time

import numpy as np

import model
from benchmarks import common
from mnist_stn import addition, checkpoints, configs, data, geometry, training
from mnist_stn import precision
from mnist_stn.compat import tf
from mnist_stn.constants import TRAIN_FILE_SIZE, VALIDATION_SIZE

RECIPES = ("addition",)
# Jaderberg et al. 2015, Appendix A.1: % test error of the four models (thin-plate
# spline transformers); transcriptions of its table give the 2xST-FCN with the affine
# 9.0, the projective 5.9, and the ST-FCN with the affine 22.6 (secondary)
PAPER = {"addition-fcn": 47.7, "addition-cnn": 14.7, "addition-x1-tps": 18.5,
         "addition-tps": 5.8, "addition": 9.0, "addition-projective": 5.9,
         "addition-x1": 22.6}
TENSORPACK = 8.8            # its two affine transformers, after about 300 of its epochs
DEFAULT_RUNS = ("addition", "addition-fcn", "addition-x1", "addition-cnn")


def make_config(name, seed, args, ckpt_dir=""):
    """The TrainConfig of one named run and seed, as train.py builds it."""
    return configs.train_config(name, "mnist", ckpt_dir, steps=args.steps, seed=seed,
                                precision=args.precision)


def weights(config):
    """The number of trainable weights of a model."""
    with tf.Graph().as_default():
        model.build_graph(config.model)
        return int(sum(np.prod(v.shape.as_list()) for v in tf.trainable_variables()))


def run(name, seed, args, ckpt_dir):
    """Train one named run with one seed; returns its record."""
    config = make_config(name, seed, args, ckpt_dir)
    datasets = data.load_mnist(args.data_dir, seed=seed)
    start = time.time()
    inputs = addition.training_inputs(datasets, config.model["distortion"], seed)
    metrics = training.fit(config, model.build_graph, **inputs)
    record = {"config": name, "seed": seed, "model": model.describe(config.model),
              "weights": weights(config), "steps": metrics["steps"],
              "precision": config.precision, "test_error": 1 - metrics["test_accuracy"],
              "wall_minutes": (time.time() - start) / 60,
              "train_minutes": metrics["train_seconds"] / 60,
              "resumed_at_step": metrics["resumed_at_step"],
              "images_per_second": metrics["images_per_second"], "shares": None}
    if config.model["stn"]:
        restored = checkpoints.Restored(ckpt_dir, model.build_graph)
        try:
            rectified = restored.run(inputs["test"][0], names=("rectified",))["rectified"]
        finally:
            restored.close()
        count = len(geometry.kinds(config.model))
        record["shares"] = addition.channel_shares(rectified, count).round(4).tolist()
    return {**record, **common.stamp()}


def took(shares):
    """'STN 1: 97% channel 1; STN 2: 95% channel 2' from channel_shares' rows."""
    if not shares:
        return "–"
    return "; ".join(f"STN {k}: {max(row):.0%} channel {int(np.argmax(row)) + 1}"
                     for k, row in enumerate(shares, start=1))


def table(records):
    lines = ["| run | model | weights | seed | precision | steps | test error | paper | "
             "which channel each STN took | wall time | training images/s | measured |",
             "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | --- |"]
    for r in sorted(records.values(), key=lambda r: (r["config"], r["seed"])):
        paper = PAPER.get(r["config"])
        lines.append(f"| {r['config']} | {r['model']} | {r['weights']:,} | {r['seed']} | "
                     f"{r['precision']} | {r['steps']} | {r['test_error']:.2%} | "
                     f"{'–' if paper is None else f'{paper}%'} | {took(r['shares'])} | "
                     f"{common.wall_time(r)} | {r['images_per_second'] or 0:.0f} | "
                     f"`{r['command']}`, {r['machine']}, {r['date']}, load "
                     f"{r['load_at_end']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_run_flags(parser, "addition", RECIPES, DEFAULT_RUNS)
    args = parser.parse_args(argv)
    args.precision = precision.resolve(args.precision)
    common.keep_beside_results(args, "addition")
    planned = common.planned_runs(parser, args, RECIPES, make_config,
                                  (TRAIN_FILE_SIZE - VALIDATION_SIZE) // addition.CHANNELS)
    records = common.Records(args.results, os.path.splitext(args.results)[0] + ".md", table)
    common.train_all(parser, records, planned, args, run)
    print(table(records.data))


if __name__ == "__main__":
    common.run_main(main)
