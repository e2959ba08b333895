"""Benchmark: the second tutorial's STN-CNN on captcha letters, its claims and ablations.

    python benchmarks/captcha_letters.py                     # speed, main comparison, ablations
    python benchmarks/captcha_letters.py --parts speed       # only the images/s of each model
    python benchmarks/captcha_letters.py --parts main,bnstats --ckpt-root ckpts

speed: training images/s of the STN-CNN and the plain CNN at full width and at the
ablations' width, timed in this one process (so comparable as ratios), to choose the
budgets. main: STN-CNN and CNN at full width with equal steps and seed, tested
beside the tutorial's 99.4% / 98.5%; the STN-CNN's grid of test letters goes to
--figure. ablations: the tutorial's questions on a smaller budget: batch norm before
vs after the ReLU, pixels in [-1, 1] vs [0, 1], Adam vs AMSGrad vs SGD (lr 0.02).
bnstats: the test accuracy of every run kept under --ckpt-root (main and ablations)
with batch norm as trained (moving averages) and with each batch of 32 normalised by
its own statistics.
Each run is recorded in --results (JSON) and the tables in --table are rebuilt from
all recorded runs.
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import predict  # noqa: E402
import train  # noqa: E402
from benchmarks.mnist import machine  # noqa: E402
from mnist_stn import captcha_data, optimizers  # noqa: E402
from mnist_stn.compat import tf  # noqa: E402

# The tutorial's results (400 epochs, Adam): best test accuracy with and without the STN.
SEED_ACCURACY = {"STN-CNN": 99.4, "CNN": 98.5}
# name, train.py flags, what the tutorial reported for it
ABLATIONS = [
    ("as the tutorial: BN after ReLU, pixels in [0, 1], Adam", [], ""),
    ("BN before ReLU", ["--bn", "before-relu"],
     "BN after ReLU better: accuracy 0.474 before vs 0.499 after"),
    ("pixels in [-1, 1]", ["--signed-pixels"],
     "[-1, 1] converges more slowly, higher validation loss"),
    ("AMSGrad", ["--optimizer", "amsgrad"],
     "validation loss 0.7458 (AMSGrad) vs 0.9148 (Adam)"),
    ("SGD, lr 0.02", ["--optimizer", "sgd", "--learning-rate", "0.02"],
     "validation loss 41.5: SGD is picky about its learning rate"),
]


def images_per_second(config, batch_size, steps=10, warmup=3):
    """Training images/s of one model, timed over ``steps`` after ``warmup`` steps."""
    rng = np.random.RandomState(0)
    size, channels = train.input_shape(config)
    batch = rng.rand(batch_size, size * size * channels).astype(np.float32)
    labels = rng.randint(0, 26, batch_size)
    with tf.Graph().as_default(), tf.Session() as sess:
        g = train.build_graph(config)
        with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
            step = optimizers.make_optimizer("adam", 1e-3).minimize(g["loss"])
        sess.run(tf.global_variables_initializer())
        feed = {g["images"]: batch, g["labels"]: labels, g["training"]: True}
        for _ in range(warmup):
            sess.run(step, feed)
        start = time.time()
        for _ in range(steps):
            sess.run(step, feed)
        return steps * batch_size / (time.time() - start)


def validation_loss(predictor, dataset):
    """Mean cross entropy of a restored model on a whole DataSet (no dropout)."""
    probs, _, _ = predictor.run(dataset.images)
    picked = probs[np.arange(len(probs)), dataset.labels]
    return float(-np.log(np.maximum(picked, 1e-12)).mean())


def ckpt_dir(root, name):
    """A directory name without glob characters, which TF's checkpoint lookup expands."""
    return os.path.join(root, re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_"))


def run(name, flags, args, datasets, root):
    """Train one model; returns its record (and keeps its checkpoint under root)."""
    ckpt = ckpt_dir(root, name)
    train_args = train.parse_args(["--dataset", "captcha", "--ckpt-dir", ckpt,
                                   "--seed", str(args.seed), *flags])
    start = time.time()
    metrics = train.train(train_args, datasets=datasets)
    wall = time.time() - start
    predictor = predict.Predictor(ckpt)
    return ckpt, predictor, {
        "flags": " ".join(flags), "steps": metrics["steps"],
        "batch_size": metrics["batch_size"],
        "epochs": metrics["steps"] * metrics["batch_size"] / datasets.train.num_examples,
        "test_accuracy": 100 * metrics["test_accuracy"],
        "validation_accuracy": 100 * metrics["validation_accuracy"],
        "validation_loss": validation_loss(predictor, datasets.validation),
        "final_train_loss": metrics["losses"][-1][1],
        "wall_minutes": wall / 60, "images_per_second": metrics["images_per_second"],
        "machine": machine(), "date": time.strftime("%Y-%m-%d")}


def batch_statistics_accuracy(predictor, dataset, batch_size):
    """Accuracy when every batch is normalised with its own statistics (no dropout)."""
    g = predictor.g
    correct = 0
    for start in range(0, dataset.num_examples, batch_size):
        end = start + batch_size
        correct += predictor.sess.run(g["num_correct"], {
            g["images"]: dataset.images[start:end], g["labels"]: dataset.labels[start:end],
            g["training"]: True})
    return 100 * correct / dataset.num_examples


def tables(records):
    """Markdown: speed, main comparison and ablations, from all recorded runs."""
    lines = []
    speed = records.get("speed")
    if speed:
        lines += ["| model | training images/s |", "| --- | ---: |"]
        lines += [f"| {name} | {rate:.1f} |" for name, rate in speed["rates"].items()]
        lines += ["", f"Batch {speed['batch_size']}, timed in one process on "
                      f"{speed['machine']}.", ""]
    main = {name: records[f"main/{name}"] for name in SEED_ACCURACY
            if f"main/{name}" in records}
    if main:
        lines += ["| model | tutorial (400 epochs) | ours: test accuracy | validation "
                  "accuracy | steps x batch (epochs) | wall time |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for name, r in main.items():
            lines.append(f"| {name} | {SEED_ACCURACY[name]}% | {r['test_accuracy']:.1f}% | "
                         f"{r['validation_accuracy']:.1f}% | {r['steps']} x {r['batch_size']} "
                         f"({r['epochs']:.0f}) | {r['wall_minutes']:.1f} min |")
        lines += ["", "Full width, 1,000 test letters. " + "; ".join(sorted(
            {r["machine"] for r in main.values()})) + ".", ""]
    bnstats = [(name, records[f"bnstats/{name}"]) for name in SEED_ACCURACY
               if f"bnstats/{name}" in records]
    batch_stats = {name: records.get(f"bnstats/{name}", {}).get("batch_statistics")
                   for name, _, _ in ABLATIONS}
    if bnstats:
        lines += ["| model | test accuracy, BN as trained (moving averages) | BN with the "
                  "statistics of each test batch of 32 |", "| --- | ---: | ---: |"]
        lines += [f"| {name} | {r['moving_averages']:.1f}% | {r['batch_statistics']:.1f}% |"
                  for name, r in bnstats]
        lines += ["", "The main runs' checkpoints, no dropout in either column.", ""]
    ablations = [(name, records[f"ablation/{name}"], said) for name, _, said in ABLATIONS
                 if f"ablation/{name}" in records]
    if ablations:
        first = ablations[0][1]
        lines += ["| STN-CNN variant | test accuracy | the same, BN with batch statistics "
                  "| validation loss | final training loss | the tutorial said |",
                  "| --- | ---: | ---: | ---: | ---: | --- |"]
        for name, r, said in ablations:
            batch_acc = batch_stats[name]
            batch_acc = f"{batch_acc:.1f}%" if batch_acc is not None else "-"
            lines.append(f"| {name} | {r['test_accuracy']:.1f}% | {batch_acc} | "
                         f"{r['validation_loss']:.3f} | {r['final_train_loss']:.3f} | {said} |")
        lines += ["", f"Width {first['width']:g}, {first['steps']} steps x "
                      f"{first['batch_size']} ({first['epochs']:.0f} epochs) each, same seed."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="speed,main,ablations",
                        help="comma-separated: speed, main, ablations (default: %(default)s)")
    parser.add_argument("--data-dir", default=None,
                        help="the generated letters (default: as train.py)")
    parser.add_argument("--steps", type=int, default=2500,
                        help="steps of each main run, batch 32 (default: %(default)s, "
                             "10 epochs)")
    parser.add_argument("--ablation-steps", type=int, default=1000,
                        help="steps of each ablation run (default: %(default)s)")
    parser.add_argument("--ablation-width", type=float, default=0.5,
                        help="width multiplier of the ablation runs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of every run (default: %(default)s)")
    parser.add_argument("--results", default=os.path.join("benchmarks", "results",
                                                          "captcha.json"),
                        help="JSON record of all runs (default: %(default)s)")
    parser.add_argument("--table", default=os.path.join("benchmarks", "results",
                                                        "captcha.md"),
                        help="markdown tables rebuilt from --results (default: %(default)s)")
    parser.add_argument("--ckpt-root", default=None,
                        help="keep the checkpoints of every run under this directory "
                             "(default: a temporary directory, deleted); bnstats reads "
                             "the main runs' from here")
    parser.add_argument("--skip-recorded", action="store_true",
                        help="ablations: skip the variants --results already has")
    parser.add_argument("--figure", default=os.path.join("docs", "captcha.png"),
                        help="the STN-CNN's grid of test letters (default: %(default)s)")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    unknown = set(parts) - {"speed", "main", "ablations", "bnstats"}
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}")

    records = {}
    if os.path.exists(args.results):
        with open(args.results) as f:
            records = json.load(f)

    def record(key, value):
        records[key] = value
        print(json.dumps({key: value}, indent=2), flush=True)
        os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
        train.write_json(args.results, records)
        with open(args.table, "w") as f:
            f.write(tables(records))

    datasets = captcha_data.load_captcha(args.data_dir, shuffle_seed=args.seed)
    batch = train.DEFAULTS["captcha"]["batch_size"]
    if "speed" in parts:
        rates = {}
        for name, stn, width in (("STN-CNN, width 1", True, 1.0), ("CNN, width 1", False, 1.0),
                                 (f"STN-CNN, width {args.ablation_width:g}", True,
                                  args.ablation_width)):
            config = {"dataset": "captcha", "stn": stn, "width": width, "bn": "after-relu",
                      "pixel_range": "0,1"}
            rates[name] = images_per_second(config, batch)
            print(f"{name}: {rates[name]:.1f} images/s", flush=True)
        record("speed", {"rates": rates, "batch_size": batch, "machine": machine(),
                         "date": time.strftime("%Y-%m-%d")})
    if "bnstats" in parts and not args.ckpt_root:
        parser.error("bnstats reads the main runs' checkpoints: give --ckpt-root")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.ckpt_root or tmp
        if "main" in parts:
            for name in SEED_ACCURACY:
                flags = ["--steps", str(args.steps)] + ([] if name == "STN-CNN"
                                                        else ["--no-stn"])
                ckpt, predictor, result = run(name, flags, args, datasets, root)
                record(f"main/{name}", {**result, "width": 1.0})
                if name == "STN-CNN":
                    predict.evaluate_test_set(predictor, datasets.test, "none", ckpt, 20)
                    os.makedirs(os.path.dirname(args.figure) or ".", exist_ok=True)
                    shutil.copy(os.path.join(ckpt, predict.GRID_FILE), args.figure)
                    print(f"Wrote {args.figure}")
        if "ablations" in parts:
            for name, flags, _ in ABLATIONS:
                if args.skip_recorded and f"ablation/{name}" in records:
                    continue
                flags = flags + ["--steps", str(args.ablation_steps),
                                 "--width", str(args.ablation_width)]
                _, _, result = run(name, flags, args, datasets, root)
                record(f"ablation/{name}", {**result, "width": args.ablation_width})
        if "bnstats" in parts:
            names = list(SEED_ACCURACY) + [name for name, _, _ in ABLATIONS]
            for name in names:
                if not os.path.isdir(ckpt_dir(root, name)):
                    print(f"bnstats: no checkpoint of {name} under {root}; skipped")
                    continue
                predictor = predict.Predictor(ckpt_dir(root, name))
                record(f"bnstats/{name}", {
                    "moving_averages": predict.evaluate_test_set(
                        predictor, datasets.test, "none", tmp, 1) * 100,
                    "batch_statistics": batch_statistics_accuracy(
                        predictor, datasets.test, batch),
                    "checkpoint": predictor.checkpoint, "date": time.strftime("%Y-%m-%d")})
    print(tables(records))


if __name__ == "__main__":
    main()
