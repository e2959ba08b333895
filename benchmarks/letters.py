"""Benchmark: the second tutorial's STN-CNN on captcha letters, its claims and ablations.

    python -m benchmarks.letters                     # speed, main comparison, ablations
    python -m benchmarks.letters --parts speed       # only the images/s of each model
    python -m benchmarks.letters --parts main,bnstats --ckpt-root ckpts

speed: training images/s of the STN-CNN and the plain CNN at full width and at the
ablations' width, timed in this one process (so comparable as ratios), to choose the
budgets. main: STN-CNN and CNN at full width with equal steps and seed, tested
beside the tutorial's 99.4% / 98.5%; the STN-CNN's grid of test letters goes to
--figure. ablations: the tutorial's questions on a smaller budget: batch norm before
vs after the ReLU, pixels in [-1, 1] vs [0, 1], Adam vs AMSGrad vs SGD (lr 0.02).
bnstats: the test accuracy of every run kept under --ckpt-root (main and ablations)
with batch norm as trained (moving averages), with each batch of 32 normalised by its
own statistics, and with the statistics re-estimated over the training set without
dropout (letters/bn_stats.py).
--batch-norm picks batch renormalisation (the tutorial's, letters.train's default) or
plain batch norm; plain runs are recorded apart, as "<name> [plain BN]".
Each run is recorded in --results (JSON) and the tables in --table are rebuilt from
all recorded runs.
"""
import argparse
import dataclasses
import os
import re
import tempfile
import time

import numpy as np

from benchmarks import common
from letters import data as letters_data
from letters import bn_stats, model, optimizers
from mnist_stn import checkpoints, figures, geometry, training
from mnist_stn.compat import tf

# The tutorial's results (400 epochs, Adam): best test accuracy with and without the STN.
SEED_ACCURACY = {"STN-CNN": 99.4, "CNN": 98.5}
# The tutorial's model and training (letters.train's defaults).
TUTORIAL_MODEL = {"stn": True, "width": 1.0, "bn": "after-relu", "pixel_range": "0,1",
                  "norm": "renorm"}
PLAIN = " [plain BN]"    # the record names of runs with plain batch norm
TUTORIAL = training.TrainConfig(model=TUTORIAL_MODEL, ckpt_dir="", steps=2500, batch_size=32,
                                learning_rate=1e-3, lr_schedule="constant", keep_prob=0.8,
                                loc_keep_prob=0.8)
# name, what changes (model settings, then training settings), what the tutorial reported
ABLATIONS = [
    ("as the tutorial: BN after ReLU, pixels in [0, 1], Adam", {}, {}, ""),
    ("BN before ReLU", {"bn": "before-relu"}, {},
     "BN after ReLU better: accuracy 0.474 before vs 0.499 after"),
    ("pixels in [-1, 1]", {"pixel_range": "-1,1"}, {},
     "[-1, 1] converges more slowly, higher validation loss"),
    ("AMSGrad", {}, {"optimizer": "amsgrad"},
     "validation loss 0.7458 (AMSGrad) vs 0.9148 (Adam)"),
    ("SGD, lr 0.02", {}, {"optimizer": "sgd", "learning_rate": 0.02},
     "validation loss 41.5: SGD is picky about its learning rate"),
]


def images_per_second(config, batch_size, steps=10, warmup=3):
    """Training images/s of one model, timed over ``steps`` after ``warmup`` steps."""
    rng = np.random.RandomState(0)
    batch = rng.rand(batch_size, letters_data.SIZE ** 2 * letters_data.CHANNELS)
    labels = rng.randint(0, letters_data.NUM_LETTERS, batch_size)
    with tf.Graph().as_default(), tf.Session() as sess:
        g = model.build_graph(config)
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


def validation_loss(restored, dataset):
    """Mean cross entropy of a restored model on a whole DataSet (no dropout)."""
    probs = restored.run(dataset.images, names=("probabilities",))["probabilities"]
    picked = probs[np.arange(len(probs)), dataset.labels]
    return float(-np.log(np.maximum(picked, 1e-12)).mean())


def ckpt_dir(root, name):
    """A directory name without glob characters, which TF's checkpoint lookup expands."""
    return os.path.join(root, re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_"))


def run(name, config, optimizer, datasets):
    """Train one model; returns its restored checkpoint and its record."""
    start = time.time()
    metrics = training.fit(
        config, model.build_graph, datasets.train,
        (datasets.validation.images, datasets.validation.labels),
        (datasets.test.images, datasets.test.labels),
        make_optimizer=lambda lr: optimizers.make_optimizer(optimizer, lr))
    wall = time.time() - start
    restored = checkpoints.Restored(config.ckpt_dir, model.build_graph)
    return restored, {
        "model": config.model, "optimizer": optimizer,
        "learning_rate": config.learning_rate, "steps": metrics["steps"],
        "batch_size": metrics["batch_size"],
        "epochs": metrics["steps"] * metrics["batch_size"] / datasets.train.num_examples,
        "test_accuracy": 100 * metrics["test_accuracy"],
        "validation_accuracy": 100 * metrics["validation_accuracy"],
        "validation_loss": validation_loss(restored, datasets.validation),
        "final_train_loss": metrics["losses"][-1][1],
        "wall_minutes": wall / 60, "images_per_second": metrics["images_per_second"],
        **(stn_effect(restored, datasets.test.images) if config.model["stn"] else {}),
        **common.stamp()}


def stn_effect(restored, images):
    """What the STN does to the letters, over (N, pixels) ``images``.

    The tutorial says its STN enlarges the letters and moves them to the centre. Returns
    the mean determinant of theta's 2x2 part (the area of the sampled region over the
    image's: below 1 enlarges), and the mean distance in pixels of the letter's ink
    centre from the image centre, in the input and where the STN's output shows it.
    Ink: how much darker than the image's median (its background) a pixel is; the
    captcha's noise dots and curve count too.
    """
    theta = restored.run(images, names=("theta",))["theta"]
    size = letters_data.SIZE
    grey = images.reshape(-1, size, size, letters_data.CHANNELS).mean(axis=3)
    ink = np.maximum(np.median(grey, axis=(1, 2), keepdims=True) - grey, 0.0)
    rows, cols = np.mgrid[0:size, 0:size]
    # (N, 2) ink centres (x, y) in pixels; a blank image counts as centred
    mass = np.maximum(ink.sum(axis=(1, 2)), 1e-12)[:, None]
    centre = np.stack([(ink * cols).sum(axis=(1, 2)), (ink * rows).sum(axis=(1, 2))], 1) / mass
    middle = (size - 1) / 2.0
    shown = geometry.output_points(theta, centre, size, size)
    return {"theta_det_mean": float(np.linalg.det(theta.reshape(-1, 2, 3)[:, :, :2]).mean()),
            "ink_offset_before_px": float(np.hypot(*(centre - middle).T).mean()),
            "ink_offset_after_px": float(np.hypot(*(shown - middle).T).mean())}


def batch_statistics_accuracy(restored, dataset, batch_size):
    """Accuracy when every batch is normalised with its own statistics (no dropout)."""
    g = restored.g
    correct = 0
    for start in range(0, dataset.num_examples, batch_size):
        end = start + batch_size
        correct += restored.sess.run(g["num_correct"], {
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
    main = {name + plain: records[f"main/{name}{plain}"] for plain in ("", PLAIN)
            for name in SEED_ACCURACY if f"main/{name}{plain}" in records}
    if main:
        lines += ["| model | tutorial (400 epochs) | ours: test accuracy | validation "
                  "accuracy | steps x batch (epochs) | wall time |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for name, r in main.items():
            seed = SEED_ACCURACY[name.replace(PLAIN, "")]
            lines.append(f"| {name} | {seed}% | {r['test_accuracy']:.1f}% | "
                         f"{r['validation_accuracy']:.1f}% | {r['steps']} x {r['batch_size']} "
                         f"({r['epochs']:.0f}) | {r['wall_minutes']:.1f} min |")
        lines += ["", "Full width, 1,000 test letters. " + "; ".join(sorted(
            {r["machine"] for r in main.values()})) + ".", ""]
    bnstats = [(name + plain, records[f"bnstats/{name}{plain}"]) for plain in ("", PLAIN)
               for name in SEED_ACCURACY if f"bnstats/{name}{plain}" in records]
    bn_columns = {name + plain: tuple(records.get(f"bnstats/{name}{plain}", {}).get(column)
                                      for column in ("batch_statistics", "reestimated"))
                  for plain in ("", PLAIN) for name, *_ in ABLATIONS}
    if bnstats:
        lines += ["| model | test accuracy, BN as trained (moving averages) | BN with the "
                  "statistics of each test batch of 32 | statistics re-estimated on the "
                  "training set |", "| --- | ---: | ---: | ---: |"]
        for name, r in bnstats:
            again = r.get("reestimated")
            again = f"{again:.1f}%" if again is not None else "-"
            lines.append(f"| {name} | {r['moving_averages']:.1f}% | "
                         f"{r['batch_statistics']:.1f}% | {again} |")
        lines += ["", "The main runs' checkpoints, no dropout in any column.", ""]
    effects = [(key.split("/", 1)[1], r) for key, r in records.items()
               if isinstance(r, dict) and "theta_det_mean" in r]
    if effects:
        lines += ["| STN-CNN run | mean det theta (sampled area / image) | ink centre "
                  "from the image centre: input -> STN output |", "| --- | ---: | ---: |"]
        lines += [f"| {name} | {r['theta_det_mean']:.3f} | {r['ink_offset_before_px']:.2f} "
                  f"-> {r['ink_offset_after_px']:.2f} px |" for name, r in effects]
        lines += ["", "Over the 1,000 test letters; below 1, the STN enlarges.", ""]
    ablations = [(name + plain, records[f"ablation/{name}{plain}"], said)
                 for plain in ("", PLAIN) for name, _, _, said in ABLATIONS
                 if f"ablation/{name}{plain}" in records]
    if ablations:
        first = ablations[0][1]
        lines += ["| STN-CNN variant | test accuracy | the same, BN with batch statistics "
                  "| the same, statistics re-estimated | validation loss | final training "
                  "loss | the tutorial said |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        for name, r, said in ablations:
            batch_acc, again = (f"{value:.1f}%" if value is not None else "-"
                                for value in bn_columns[name])
            lines.append(f"| {name} | {r['test_accuracy']:.1f}% | {batch_acc} | {again} | "
                         f"{r['validation_loss']:.3f} | {r['final_train_loss']:.3f} | {said} |")
        lines += ["", f"Width {first['width']:g}, {first['steps']} steps x "
                      f"{first['batch_size']} ({first['epochs']:.0f} epochs) each, same seed."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="speed,main,ablations",
                        help="comma-separated: speed, main, ablations, bnstats "
                             "(default: %(default)s)")
    parser.add_argument("--data-dir", default=None,
                        help="the generated letters (default: as letters.train)")
    parser.add_argument("--steps", type=int, default=TUTORIAL.steps,
                        help="steps of each main run, batch 32 (default: %(default)s, "
                             "10 epochs)")
    parser.add_argument("--ablation-steps", type=int, default=1000,
                        help="steps of each ablation run (default: %(default)s)")
    parser.add_argument("--ablation-width", type=float, default=0.5,
                        help="width multiplier of the ablation runs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of every run (default: %(default)s)")
    parser.add_argument("--results", default=os.path.join("benchmarks", "results",
                                                          "letters.json"),
                        help="JSON record of all runs (default: %(default)s)")
    parser.add_argument("--table", default=os.path.join("benchmarks", "results", "letters.md"),
                        help="markdown tables rebuilt from --results (default: %(default)s)")
    parser.add_argument("--ckpt-root", default=None,
                        help="keep the checkpoints of every run under this directory "
                             "(default: a temporary directory, deleted); bnstats reads "
                             "the runs' checkpoints from here")
    parser.add_argument("--batch-norm", choices=model.NORMS, default=model.NORMS[0],
                        help="batch renormalisation (the tutorial's) or plain batch norm "
                             "in every run (default: %(default)s)")
    parser.add_argument("--variants", default=",".join(str(i + 1) for i in range(len(ABLATIONS))),
                        help="which ablations to run, by number: " + "; ".join(
                            f"{i + 1} {name}" for i, (name, *_) in enumerate(ABLATIONS))
                        + " (default: %(default)s)")
    parser.add_argument("--skip-recorded", action="store_true",
                        help="ablations: skip the variants --results already has")
    parser.add_argument("--figure", default=os.path.join("docs", "letters.png"),
                        help="the STN-CNN's grid of test letters (default: %(default)s)")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    unknown = set(parts) - {"speed", "main", "ablations", "bnstats"}
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}")
    try:
        variants = [ABLATIONS[int(i) - 1] for i in args.variants.split(",")
                    if 0 < int(i) <= len(ABLATIONS)]
    except ValueError:
        variants = []
    if len(variants) != len(args.variants.split(",")):
        parser.error(f"--variants takes numbers from 1 to {len(ABLATIONS)}")
    if "bnstats" in parts and not args.ckpt_root:
        parser.error("bnstats reads the runs' checkpoints: give --ckpt-root")

    records = common.Records(args.results, args.table, tables)
    batch = TUTORIAL.batch_size
    if "speed" in parts:
        rates = {}
        for name, stn, width in (("STN-CNN, width 1", True, 1.0), ("CNN, width 1", False, 1.0),
                                 (f"STN-CNN, width {args.ablation_width:g}", True,
                                  args.ablation_width)):
            rates[name] = images_per_second({**TUTORIAL_MODEL, "stn": stn, "width": width},
                                            batch)
            print(f"{name}: {rates[name]:.1f} images/s", flush=True)
        records.add("speed", {"rates": rates, "batch_size": batch, **common.stamp()})

    suffix = PLAIN if args.batch_norm == "plain" else ""

    def config(root, name, model_changes=None, **changes):
        return dataclasses.replace(
            TUTORIAL, model={**TUTORIAL_MODEL, "norm": args.batch_norm, **(model_changes or {})},
            ckpt_dir=ckpt_dir(root, name + suffix), seed=args.seed, **changes)

    def datasets():     # the same batch order for every run
        return letters_data.load_letters(args.data_dir, shuffle_seed=args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.ckpt_root or tmp
        if "main" in parts:
            for name in SEED_ACCURACY:
                restored, result = run(name, config(root, name, {"stn": name == "STN-CNN"},
                                                    steps=args.steps), "adam", datasets())
                records.add(f"main/{name}{suffix}", {**result, "width": 1.0})
                if name == "STN-CNN":
                    draw_figure(restored, datasets().test, args.figure)
                restored.close()
        if "ablations" in parts:
            for name, model_changes, changes, _ in variants:
                if args.skip_recorded and f"ablation/{name}{suffix}" in records:
                    continue
                changes = dict(changes)
                optimizer = changes.pop("optimizer", "adam")
                restored, result = run(name, config(
                    root, name, {**model_changes, "width": args.ablation_width},
                    steps=args.ablation_steps, **changes), optimizer, datasets())
                records.add(f"ablation/{name}{suffix}",
                            {**result, "width": args.ablation_width})
                restored.close()
        if "bnstats" in parts:
            sets = datasets()
            test = sets.test
            for name in list(SEED_ACCURACY) + [name for name, *_ in ABLATIONS]:
                name += suffix
                if not os.path.isdir(ckpt_dir(root, name)):
                    print(f"bnstats: no checkpoint of {name} under {root}; skipped")
                    continue
                restored = checkpoints.Restored(ckpt_dir(root, name), model.build_graph)
                record = {
                    "moving_averages": 100 * restored.evaluate(test.images,
                                                               test.labels)["accuracy"],
                    "batch_statistics": batch_statistics_accuracy(restored, test, batch)}
                # last: it overwrites the restored session's moving averages
                bn_stats.reestimate(restored.sess, restored.g, sets.train.images)
                record["reestimated"] = 100 * restored.evaluate(test.images,
                                                                test.labels)["accuracy"]
                records.add(f"bnstats/{name}", {**record, "checkpoint": restored.checkpoint,
                                                **common.stamp()})
                restored.close()
    print(tables(records.data))


def draw_figure(restored, test, path, count=20):
    """The STN-CNN's first test letters, with the region its STN sampled."""
    out = restored.run(test.images[:count])
    size = letters_data.SIZE
    names = np.array(list(letters_data.LETTERS))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figures.save_grid(path, test.images[:count].reshape(-1, size, size, letters_data.CHANNELS),
                      out["rectified"], names[out["probabilities"].argmax(1)],
                      names[test.labels[:count]],
                      title="Test letters: input (top), the STN's output (below)",
                      boxes=geometry.sampled_box(out["theta"], size))
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
