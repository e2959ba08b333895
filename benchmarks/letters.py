"""Benchmark: the second tutorial's STN-CNN on captcha letters, its claims and ablations.

    python -m benchmarks.letters                     # speed, main comparison, ablations
    python -m benchmarks.letters --parts speed       # only the images/s of each model
    python -m benchmarks.letters --parts main,bnstats --ckpt-root ckpts
    python -m benchmarks.letters --parts main --seeds 0,1,2 --steps 12000
    python -m benchmarks.letters --parts main --pixel-range=-1,1   # main runs in [-1, 1]

speed: training images/s of the STN-CNN and the plain CNN at full width and at the
ablations' width, timed in this one process (so comparable as ratios), to choose the
budgets. main: STN-CNN and CNN at full width with equal steps and seeds, tested
beside the tutorial's 99.4% / 98.5%; the STN-CNN's grid of test letters goes to
--figure. ablations: the tutorial's questions on a smaller budget: batch norm before
vs after the ReLU, pixels in [-1, 1] vs [0, 1], Adam vs AMSGrad vs SGD (lr 0.02).
bnstats: the test accuracy of every run kept under --ckpt-root (main and ablations)
with batch norm as trained (moving averages), with each batch of 32 normalised by its
own statistics, and with the statistics re-estimated over the training set without
dropout (benchmarks/bn_stats.py); it also measures every kept STN again (its zoom, and
where it moves the letter's own strokes, drawn again from the generation seed).
--batch-norm picks batch renormalisation (the tutorial's, letters.train's default) or
plain batch norm. Each record names its run in fields (part, run, norm, pixel_range,
seed); the tables label a plain one "<name> [plain BN]".
Each run is recorded in --results (JSON) and the tables in --table are rebuilt from
all recorded runs; a run made with several --seeds shows their mean and range.
"""
import argparse
import dataclasses
import os
import re
import time

import numpy as np

from benchmarks import bn_stats, common, measures
from letters import data as letters_data
from letters import model
from mnist_stn import checkpoints, configs, figures, geometry, optimizers, precision, training
from mnist_stn.compat import tf
from mnist_stn.constants import NORMS, PIXEL_RANGES

# The tutorial's results (400 epochs, Adam): best test accuracy with and without the STN.
SEED_ACCURACY = {"STN-CNN": 99.4, "CNN": 98.5}
# The tutorial's model and training, configs/letters-tutorial.toml: every run here is it
# with the changes its flags or its ablation name (the main runs with --pixel-range=-1,1
# and --steps 9000 are configs/letters.toml as it was before its cosine schedule:
# benchmarks/letters_peak.py trains the recipe as it is)
TUTORIAL = configs.train_config("letters-tutorial", "letters", "")
TUTORIAL_MODEL = TUTORIAL.model
FIGURE = os.path.join("docs", "letters.png")     # the committed figure of the records
# A record says which run it is in fields: "part" (main, ablation, bnstats), "run" (the
# model, STN-CNN or CNN, or the ablation's name), "norm", "pixel_range" and "seed". Its
# name in tables and its key are made from them (``label``, ``record_key``), never read.
PLAIN = " [plain BN]"    # the label of a run with plain batch norm
SIGNED = " [pixels in [-1, 1]]"   # ... and of a main run with pixels in [-1, 1]
# the main runs' variants, in the order of the tables' rows: (norm, pixel_range)
MAIN_VARIANTS = (("renorm", "0,1"), ("renorm", "-1,1"), ("plain", "0,1"), ("plain", "-1,1"))
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


def images_per_second(config, batch_size, session_precision, steps=10, warmup=3):
    """Training images/s of one model, timed over ``steps`` after ``warmup`` steps."""
    rng = np.random.RandomState(0)
    batch = rng.rand(batch_size, letters_data.SIZE ** 2 * letters_data.CHANNELS)
    labels = rng.randint(0, letters_data.NUM_LETTERS, batch_size)
    with tf.Graph().as_default(), \
            tf.Session(config=precision.session_config(session_precision)) as sess:
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


def run(name, config, datasets, strokes=None):
    """Train one model; returns its restored checkpoint and its record (``strokes``: see
    ``stn_effect``)."""
    start = time.time()
    metrics = training.fit(
        config, model.build_graph, datasets.train,
        (datasets.validation.images, datasets.validation.labels),
        (datasets.test.images, datasets.test.labels))
    wall = time.time() - start
    restored = checkpoints.Restored(config.ckpt_dir, model.build_graph,
                                    precision=config.precision)
    return restored, {
        "model": config.model, "optimizer": config.optimizer, "seed": config.seed,
        "precision": config.precision,
        "learning_rate": config.learning_rate, "steps": metrics["steps"],
        "batch_size": metrics["batch_size"],
        "epochs": metrics["steps"] * metrics["batch_size"] / datasets.train.num_examples,
        "test_accuracy": 100 * metrics["test_accuracy"],
        "validation_accuracy": 100 * metrics["validation_accuracy"],
        "validation_loss": validation_loss(restored, datasets.validation),
        "final_train_loss": metrics["losses"][-1][1],
        # a resumed run's wall time covers this process only; its images/s stay true
        "wall_minutes": wall / 60, "resumed_at_step": metrics["resumed_at_step"],
        "images_per_second": metrics["images_per_second"],
        **(stn_effect(restored, datasets.test.images, strokes) if config.model["stn"] else {}),
        **common.stamp()}


def stn_effect(restored, images, strokes=None):
    """What the STN does to the letters, over (N, pixels) ``images``.

    The tutorial says its STN enlarges the letters and moves them to the centre. Returns
    the mean determinant of theta's 2x2 part (the area of the sampled region over the
    image's: below 1 enlarges), and the mean distance in pixels of the letter's centre
    from the image centre, in the input and where the STN's output shows it: of its
    ink (how much darker than the image's median, its background, a pixel is; the
    captcha's noise dots and curve count too) and, given the letters' (N, 60, 60)
    ``strokes`` (``letter_strokes``), of the letter's own strokes.
    """
    theta = restored.run(images, names=("theta",))["theta"]
    size = letters_data.SIZE
    grey = images.reshape(-1, size, size, letters_data.CHANNELS).mean(axis=3)
    weights = {"ink": np.maximum(np.median(grey, axis=(1, 2), keepdims=True) - grey, 0.0)}
    if strokes is not None:
        weights["letter"] = strokes.astype(np.float64)
    rows, cols = np.mgrid[0:size, 0:size]
    middle = (size - 1) / 2.0
    effect = {"theta_det_mean": float(np.linalg.det(theta.reshape(-1, 2, 3)[:, :, :2]).mean())}
    for name, ink in weights.items():
        # (N, 2) centres (x, y) in pixels; a blank image counts as centred
        mass = np.maximum(ink.sum(axis=(1, 2)), 1e-12)[:, None]
        centre = np.stack([(ink * cols).sum(axis=(1, 2)),
                           (ink * rows).sum(axis=(1, 2))], 1) / mass
        shown = measures.output_points(theta, centre, size, size)
        effect[f"{name}_offset_before_px"] = float(np.hypot(*(centre - middle).T).mean())
        effect[f"{name}_offset_after_px"] = float(np.hypot(*(shown - middle).T).mean())
    return effect


def letter_strokes(test):
    """The test letters' strokes (letters_data.generate's), drawn again from the
    generation seed: (N, 60, 60) bool, or None when ``test`` is not that set's test
    split (letters of another --data-dir, or another captcha or Pillow)."""
    first = sum(letters_data.SPLIT[:2])
    images, strokes = None, None
    if len(test.images) == letters_data.COUNT - first:
        images, _, strokes = letters_data.generate(letters_data.COUNT,
                                                   letters_data.GENERATION_SEED, strokes=True)
        images = images[first:].reshape(len(test.images), -1)
    if images is None or not np.array_equal(images,
                                            np.round(test.images * 255).astype(np.uint8)):
        print("the test letters are not the generated set's: their strokes are unknown, "
              "the STN's centring is measured on their ink only")
        return None
    return strokes[first:]


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


def variant(part, run, norm, pixel_range, seed):
    """The fields that say which run a record is."""
    return {"part": part, "run": run, "norm": norm, "pixel_range": pixel_range, "seed": seed}


def label(fields):
    """A run's name in the tables: 'STN-CNN', 'CNN [plain BN] [pixels in [-1, 1]]',
    'AMSGrad [plain BN]' (an ablation's pixels are its own question, not a tag)."""
    signed = fields["run"] in SEED_ACCURACY and fields["pixel_range"] == "-1,1"
    return (fields["run"] + (PLAIN if fields["norm"] == "plain" else "")
            + (SIGNED if signed else ""))


def record_key(fields):
    """A record's key in --results, made from its fields: 'main/STN-CNN' for seed 0
    (the records before seeds were counted), then 'main/STN-CNN [seed 1]'..."""
    seed = fields["seed"]
    return f"{fields['part']}/{label(fields)}" + (f" [seed {seed}]" if seed else "")


def by_seed(records, part, run, norm, pixel_range=None):
    """The records of one run over all its seeds, in seed order (an ablation's
    pixel_range: None, whichever its variant has)."""
    def same(r):
        return (r.get("part"), r.get("run"), r.get("norm")) == (part, run, norm) and \
            pixel_range in (None, r.get("pixel_range"))
    return sorted((r for r in records.values() if same(r)), key=lambda r: r["seed"])


def mean_wall(runs):
    """The runs' mean wall time as one record, resumed if any of them was."""
    return {"wall_minutes": np.mean([r["wall_minutes"] for r in runs]),
            "resumed_at_step": max(r.get("resumed_at_step", 0) for r in runs)}


def over_seeds(values, digits=1, unit="%"):
    """'91.5%' for one seed; '98.6% (98.2-99.0, 3 seeds)': the mean and the range."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean = f"{np.mean(values):.{digits}f}{unit}"
    if len(values) == 1:
        return mean
    return (f"{mean} ({min(values):.{digits}f}-{max(values):.{digits}f}, "
            f"{len(values)} seeds)")


def tables(records):
    """Markdown: speed, main comparison and ablations, from all recorded runs; a run
    with several seeds shows their mean and range."""
    lines = []
    speed = records.get("speed")
    if speed:
        lines += ["| model | training images/s |", "| --- | ---: |"]
        lines += [f"| {name} | {rate:.1f} |" for name, rate in speed["rates"].items()]
        lines += ["", f"Batch {speed['batch_size']}, {speed.get('precision', 'fp32')}, timed "
                      f"in one process on {speed['machine']}.", ""]
    main = [(label(variant("main", name, norm, pixels, 0)),
             by_seed(records, "main", name, norm, pixels))
            for norm, pixels in MAIN_VARIANTS for name in SEED_ACCURACY]
    main = [(name, runs) for name, runs in main if runs]
    if main:
        lines += ["| model | tutorial (400 epochs) | ours: test accuracy | validation "
                  "accuracy | steps x batch (epochs) | wall time |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for name, runs in main:
            r = runs[0]
            seed = SEED_ACCURACY[r["run"]]
            lines.append(f"| {name} | {seed}% | "
                         f"{over_seeds([r['test_accuracy'] for r in runs])} | "
                         f"{over_seeds([r['validation_accuracy'] for r in runs])} | "
                         f"{r['steps']} x {r['batch_size']} ({r['epochs']:.0f}) | "
                         f"{common.wall_time(mean_wall(runs))} |")
        lines += ["", "Full width, 1,000 test letters. " + "; ".join(sorted(
            {f"{r['machine']}, {r.get('precision', 'fp32')}" for _, runs in main
             for r in runs})) + ".", ""]
    columns = ("moving_averages", "batch_statistics", "reestimated")
    def bn_columns(name, norm, pixels):
        runs = by_seed(records, "bnstats", name, norm, pixels)
        return [[r.get(column) for r in runs] for column in columns]
    bnstats = [(label(variant("main", name, norm, pixels, 0)), bn_columns(name, norm, pixels))
               for norm, pixels in MAIN_VARIANTS for name in SEED_ACCURACY]
    bnstats = [(name, values) for name, values in bnstats if values[0]]
    if bnstats:
        lines += ["| model | test accuracy, BN as trained (moving averages) | BN with the "
                  "statistics of each test batch of 32 | statistics re-estimated on the "
                  "training set |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {name} | " + " | ".join(over_seeds(column) for column in values) + " |"
                  for name, values in bnstats]
        lines += ["", "The main runs' checkpoints, no dropout in any column.", ""]
    rows = ([("main", name, norm, pixels) for norm, pixels in MAIN_VARIANTS
             for name in SEED_ACCURACY]
            + [("ablation", name, norm, None) for norm in ("renorm", "plain")
               for name, *_ in ABLATIONS])
    effects = [(label(variant(part, name, norm, pixels, 0)),
                [r for r in by_seed(records, part, name, norm, pixels) if "theta_det_mean" in r])
               for part, name, norm, pixels in rows]
    effects = [(name, runs) for name, runs in effects if runs]
    if effects:
        def offsets(runs, name):
            runs = [r for r in runs if name + "_offset_before_px" in r]
            if not runs:
                return "-"
            before = np.mean([r[name + "_offset_before_px"] for r in runs])
            return f"{before:.2f} -> " + over_seeds(
                [r[name + "_offset_after_px"] for r in runs], 2, " px")
        lines += ["| STN-CNN run | mean det theta (sampled area / image) | the letter's "
                  "centre from the image centre: input -> STN output | the same by the "
                  "image's ink (noise included) |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {name} | {over_seeds([r['theta_det_mean'] for r in runs], 3, '')} | "
                  f"{offsets(runs, 'letter')} | {offsets(runs, 'ink')} |"
                  for name, runs in effects]
        lines += ["", "Over the 1,000 test letters; below 1, the STN enlarges. The letter: "
                      "its strokes as drawn, before the noise dots and curve (in its "
                      "colour) were drawn over it.", ""]
    ablations = [(label(variant("ablation", name, norm, None, 0)), norm, name,
                  by_seed(records, "ablation", name, norm), said)
                 for norm in ("renorm", "plain") for name, _, _, said in ABLATIONS]
    ablations = [row for row in ablations if row[3]]
    if ablations:
        first = ablations[0][3][0]
        lines += ["| STN-CNN variant | test accuracy | the same, BN with batch statistics "
                  "| the same, statistics re-estimated | validation loss | final training "
                  "loss | the tutorial said |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        for name, norm, run, runs, said in ablations:
            loss = [over_seeds([r[key] for r in runs], 3, "") for key in
                    ("validation_loss", "final_train_loss")]
            bn = bn_columns(run, norm, None)
            lines.append(f"| {name} | {over_seeds([r['test_accuracy'] for r in runs])} | "
                         f"{over_seeds(bn[1])} | {over_seeds(bn[2])} | "
                         f"{loss[0]} | {loss[1]} | {said} |")
        lines += ["", f"Width {first['width']:g}, {first['steps']} steps x "
                      f"{first['batch_size']} ({first['epochs']:.0f} epochs) each; the "
                      "seeds of a row share their batch orders and initial weights with "
                      "the other rows'."]
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
    parser.add_argument("--seeds", default="0",
                        help="comma-separated seeds: every run once per seed, the tables "
                             "show the mean and range (default: %(default)s)")
    parser.add_argument("--precision", choices=precision.PRECISIONS, default="auto",
                        help="as letters.train's --precision (default: %(default)s)")
    parser.add_argument("--results", default=common.results_path("letters"),
                        help="JSON record of all runs (default: %(default)s)")
    parser.add_argument("--table", default=os.path.join("benchmarks", "results", "letters.md"),
                        help="markdown tables rebuilt from --results (default: %(default)s)")
    parser.add_argument("--batch-norm", choices=NORMS, default=NORMS[0],
                        help="batch renormalisation (the tutorial's) or plain batch norm "
                             "in every run (default: %(default)s)")
    parser.add_argument("--pixel-range", choices=PIXEL_RANGES,
                        default=TUTORIAL_MODEL["pixel_range"],
                        help="pixels of the main runs (the ablations have their own "
                             "question): the tutorial's [0, 1], or [-1, 1], labelled "
                             f"'<model>{SIGNED}' (default: %(default)s)")
    parser.add_argument("--variants", default=",".join(str(i + 1) for i in range(len(ABLATIONS))),
                        help="which ablations to run, by number: " + "; ".join(
                            f"{i + 1} {name}" for i, (name, *_) in enumerate(ABLATIONS))
                        + " (default: %(default)s)")
    parser.add_argument("--skip-recorded", action="store_true",
                        help="skip the runs and the bnstats measurements --results "
                             "already has")
    parser.add_argument("--figure", default=None,
                        help=f"the STN-CNN's grid of test letters (default: {FIGURE}; for "
                             "a trial's own --results, RESULTS-figures/letters.png)")
    common.add_keep_flags(parser, "letters")
    args = parser.parse_args(argv)
    trial_figures = common.keep_beside_results(args, "letters")
    if args.figure is None:
        args.figure = os.path.join(trial_figures, "letters.png") if trial_figures else FIGURE
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
    seeds = common.int_list(parser, "--seeds", args.seeds)
    if any(not 0 <= seed < 2 ** 32 for seed in seeds):
        parser.error(f"--seeds must be in 0..{2 ** 32 - 1}, not {args.seeds}")
    if args.steps < 1 or args.ablation_steps < 1:
        parser.error("--steps and --ablation-steps must be at least 1")
    args.precision = precision.resolve(args.precision)

    records = common.Records(args.results, args.table, tables)
    batch = TUTORIAL.batch_size
    if "speed" in parts:
        rates = {}
        for name, stn, width in (("STN-CNN, width 1", True, 1.0), ("CNN, width 1", False, 1.0),
                                 (f"STN-CNN, width {args.ablation_width:g}", True,
                                  args.ablation_width)):
            rates[name] = images_per_second({**TUTORIAL_MODEL, "stn": stn, "width": width},
                                            batch, args.precision)
            print(f"{name}: {rates[name]:.1f} images/s", flush=True)
        records.add("speed", {"rates": rates, "batch_size": batch,
                              "precision": args.precision, **common.stamp()})

    def fields(part, name, seed):     # which run: the model's or ablation's own pixels
        pixels = args.pixel_range if name in SEED_ACCURACY else next(
            {**TUTORIAL_MODEL, **changes}["pixel_range"] for n, changes, *_ in ABLATIONS
            if n == name)
        return variant(part, name, args.batch_norm, pixels, seed)

    def run_dir(root, name, seed):
        return ckpt_dir(root, label(fields("main", name, seed))
                        + (f"-seed{seed}" if seed else ""))

    def config(root, name, seed, model_changes=None, **changes):
        return dataclasses.replace(
            TUTORIAL, model={**TUTORIAL_MODEL, "norm": args.batch_norm, **(model_changes or {})},
            ckpt_dir=run_dir(root, name, seed), seed=seed, precision=args.precision,
            **changes)

    def datasets(seed):     # the same batch order for every run of a seed
        return letters_data.load_letters(args.data_dir, shuffle_seed=seed)

    drawn = []

    def strokes(test):      # the set drawn again once, when the first STN is measured
        if not drawn:
            drawn.append(letter_strokes(test))
        return drawn[0]

    if not args.skip_recorded:
        planned = (["speed"] if "speed" in parts else []) + [
            record_key(fields(part, name, seed)) for seed in seeds
            for part, names in (("main", list(SEED_ACCURACY)),
                                ("ablation", [n for n, *_ in variants]),
                                ("bnstats", list(SEED_ACCURACY)
                                 + [n for n, *_ in ABLATIONS]))
            if part in parts or (part == "ablation" and "ablations" in parts)
            for name in names]
        common.refuse_recorded(parser, records, planned, args.overwrite)

    root = args.ckpt_root
    for seed in seeds if "main" in parts else ():
        for name in SEED_ACCURACY:
            which = fields("main", name, seed)
            key = record_key(which)
            if args.skip_recorded and key in records:
                continue
            sets = datasets(seed)
            restored, result = run(name, config(
                root, name, seed, {"stn": name == "STN-CNN",
                                   "pixel_range": args.pixel_range},
                steps=args.steps), sets,
                strokes(sets.test) if name == "STN-CNN" else None)
            records.add(key, {**result, "width": 1.0, **which})
            if name == "STN-CNN" and seed == seeds[0]:
                draw_figure(restored, sets.test, args.figure)
            restored.close()
    for seed in seeds if "ablations" in parts else ():
        for name, model_changes, changes, _ in variants:
            which = fields("ablation", name, seed)
            key = record_key(which)
            if args.skip_recorded and key in records:
                continue
            sets = datasets(seed)
            restored, result = run(name, config(
                root, name, seed, {**model_changes, "width": args.ablation_width},
                steps=args.ablation_steps, **changes), sets, strokes(sets.test))
            records.add(key, {**result, "width": args.ablation_width, **which})
            restored.close()
    for seed in seeds if "bnstats" in parts else ():
        sets = datasets(seed)
        test = sets.test
        for name in list(SEED_ACCURACY) + [name for name, *_ in ABLATIONS]:
            folder = run_dir(root, name, seed)
            main_run = name in SEED_ACCURACY
            which = fields("bnstats", name, seed)
            if not os.path.isdir(folder):
                print(f"bnstats: no checkpoint of {label(which)}, seed {seed}, under "
                      f"{root}; skipped")
                continue
            if args.skip_recorded and record_key(which) in records:
                continue
            restored = checkpoints.Restored(folder, model.build_graph,
                                            precision=args.precision)
            trained = record_key({**which, "part": "main" if main_run else "ablation"})
            if restored.g["theta"] is not None and trained in records:
                # measured again on the checkpoint as trained (the letter's strokes
                # are newer than some records); the record's training fields kept
                records.add(trained, {**records.data[trained],
                                      **stn_effect(restored, test.images, strokes(test))})
            record = {
                "moving_averages": 100 * restored.evaluate(test.images,
                                                           test.labels)["accuracy"],
                "batch_statistics": batch_statistics_accuracy(restored, test, batch)}
            # last: it overwrites the restored session's moving averages
            bn_stats.reestimate(restored.sess, restored.g, sets.train.images)
            record["reestimated"] = 100 * restored.evaluate(test.images,
                                                            test.labels)["accuracy"]
            records.add(record_key(which),
                        {**record, **which, "checkpoint": restored.checkpoint,
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
                      boxes=geometry.sampled_box(out["theta"], size,
                                                 restored.config["transform"]))
    print(f"Wrote {path}")


if __name__ == "__main__":
    common.run_main(main)
