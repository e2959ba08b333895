"""Benchmark: what the STN paper's Table 1 figures that our runs miss cost on two cores.

    python -m benchmarks.paper_time --data-dir ../shared/mnist --parts rates
    python -m benchmarks.paper_time --data-dir ../shared/mnist --parts recipe
    python -m benchmarks.paper_time --data-dir ../shared/mnist --parts curve --columns R

rates: training images/s of the R and RTS ST-CNNs (each column's best transformer) at
batch 50, 128 and 256, one after the other in this process, on freshly distorted
batches as in training. recipe: the R column's ST-CNN trained for --minutes with the
paper's own recipe (SGD at 0.01 divided by 10 after each third, no dropout, batch 256,
no curriculum) and with today's (configs/R.toml), the steps of each planned from the
recorded images/s. batch: where a larger batch trains at least CLEARLY times the
images/s of 50, the run at that batch (its learning rate scaled by the square root of
the batch's growth) against today's, for --minutes each. curve: each missed column's
best run today at 2x and 4x its steps (its schedule and curriculum stretched, as
train.py --steps does), one seed; a column's 4x is left out once a shorter run reaches
the paper's figure. Each curve starts at today's three-seed mean
(benchmarks/results/distorted.json).

Each finished part or run is recorded in --results as it ends and skipped when the
command is run again (which resumes an unfinished run from its checkpoint under
--ckpt-root); --overwrite records it again (a finished run from its kept checkpoint). The tables beside --results and --figure are
rebuilt after every record.
"""
import argparse
import dataclasses
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

import model
from benchmarks import common
from mnist_stn import configs, data, distort, precision, training
from mnist_stn.constants import TRAIN_FILE_SIZE, VALIDATION_SIZE

PARTS = ("rates", "recipe", "batch", "curve")
# each column the named runs miss, and its best run today (docs/results.md)
COLUMNS = {"R": "R-projective", "RTS": "RTS-tps", "P": "P"}
FACTORS = (2, 4)
RATE_RUNS = ("R-projective", "RTS-tps")
BATCHES = (50, 128, 256)
# the STN paper's training (its Appendix A.2), on today's model
PAPER_RECIPE = {"optimizer": "sgd", "learning_rate": 0.01, "lr_schedule": "thirds",
                "keep_prob": 1.0, "loc_keep_prob": 1.0, "batch_size": 256,
                "ramp_steps": 0, "classifier_hold": None, "loc_lr_multiplier": 1.0}
RECIPE_COLUMN = "R"
CLEARLY = 1.2               # a larger batch worth its changed recipe: this many times the images/s
FIGURE = os.path.join("docs", "paper-time.png")
RATE_EVAL = 500             # validation and test images of a timing run: its speed, not its score


def paper_figure(column):
    """The paper's best ST-CNN error on a column (%), the aim."""
    return min(error for name, error in common.TABLE_1[column].items() if name != "CNN")


def today(column, distorted_results):
    """Today's three-seed record of a column's best run: mean error, mean training
    minutes, steps x batch and the machines, from the distorted benchmark's records."""
    name = COLUMNS[column]
    runs = [r for r in distorted_results.values() if r["config"] == name]
    if not runs:
        return None
    return {"error": float(np.mean([r["test_error"] for r in runs])), "seeds": len(runs),
            "minutes": float(np.mean([r["train_minutes"] for r in runs])),
            "steps": runs[0]["steps"], "batch_size": runs[0]["batch_size"],
            "machines": sorted({r["machine"] for r in runs})}


def run_config(name, steps, args, ckpt_dir, changes=None):
    """The TrainConfig of a named run for ``steps``; ``changes`` (TrainConfig fields)
    replace the recipe's after its shares are counted."""
    config = configs.train_config(name, "mnist", ckpt_dir, steps=steps, seed=args.seed,
                                  precision=args.precision)
    config = dataclasses.replace(config, **(changes or {}))
    config.check(train_size=TRAIN_FILE_SIZE - VALIDATION_SIZE)
    return config


def train_run(name, steps, args, ckpt_dir, changes=None):
    """Train a run_config and test it; returns its record."""
    config = run_config(name, steps, args, ckpt_dir, changes)
    kind = config.model["distortion"]
    datasets = data.load_mnist(args.data_dir, seed=args.seed)
    metrics = training.fit(config, model.build_graph,
                           **distort.training_inputs(datasets, kind, args.seed,
                                                     config.ramp_steps))
    return {"config": name, "kind": kind, "seed": args.seed, "steps": metrics["steps"],
            "batch_size": config.batch_size, "optimizer": config.optimizer,
            "learning_rate": config.learning_rate, "lr_schedule": config.lr_schedule,
            "digits_seen": metrics["steps"] * config.batch_size,
            "test_error": 100 * (1 - metrics["test_accuracy"]),
            "train_minutes": metrics["train_seconds"] / 60,       # of every process
            "resumed_at_step": metrics["resumed_at_step"],
            "images_per_second": metrics["images_per_second"],   # of the last process
            "precision": config.precision, **common.stamp()}


def measure_rates(args, images):
    """Training images/s of each RATE_RUNS run at each of BATCHES, ``images`` each."""
    rates = {}
    datasets = data.load_mnist(args.data_dir, seed=args.seed)
    for name in RATE_RUNS:
        config = configs.train_config(name, "mnist", "", seed=args.seed,
                                      precision=args.precision)
        inputs = distort.training_inputs(datasets, config.model["distortion"], args.seed)
        for key in ("validation", "test"):
            inputs[key] = tuple(part[:RATE_EVAL] for part in inputs[key])
        rates[name] = {}
        for batch in BATCHES:
            steps = max(1, images // batch)
            with tempfile.TemporaryDirectory() as ckpt_dir:
                timed = dataclasses.replace(config, ckpt_dir=ckpt_dir, batch_size=batch,
                                            steps=steps, eval_every=steps,
                                            save_every=steps, log_every=steps, frames=0)
                rates[name][str(batch)] = training.fit(timed, model.build_graph,
                                                       **inputs)["images_per_second"]
            print(name, batch, rates[name][str(batch)], "images/s", flush=True)
    return rates


def recipe_runs(rates, minutes):
    """The R column's run with today's recipe and with the paper's, each given the steps
    ``minutes`` hold at its batch's recorded images/s: {key: (run, steps, changes)}."""
    name = COLUMNS[RECIPE_COLUMN]
    paper_batch = PAPER_RECIPE["batch_size"]
    return {**todays(name, rates, minutes),
            f"{name} paper's recipe, {minutes:g} min": (
                name, steps_in(minutes, rates[name], paper_batch), PAPER_RECIPE)}


def batch_runs(rates, minutes):
    """For each timed run whose fastest batch trains CLEARLY more images/s than 50: the
    run at that batch, its learning rate scaled by the square root of the batch's
    growth, against today's at batch 50, each for ``minutes``."""
    runs = {}
    for name, by_batch in rates.items():
        batch = max(BATCHES, key=lambda b: by_batch[str(b)])
        if by_batch[str(batch)] < CLEARLY * by_batch[str(BATCHES[0])]:
            continue
        rate = configs.train_config(name, "mnist", "").learning_rate
        runs.update(todays(name, rates, minutes))
        runs[f"{name} batch {batch}, {minutes:g} min"] = (
            name, steps_in(minutes, by_batch, batch),
            {"batch_size": batch, "learning_rate": rate * (batch / BATCHES[0]) ** 0.5})
    return runs


def todays(name, rates, minutes):
    """Today's recipe of a run, at batch 50 for ``minutes``."""
    return {f"{name} today's recipe, {minutes:g} min": (
        name, steps_in(minutes, rates[name], BATCHES[0]), None)}


def steps_in(minutes, by_batch, batch):
    """The steps of ``batch`` that ``minutes`` hold at its recorded images/s."""
    return round(minutes * 60 * by_batch[str(batch)] / batch)


def curve_key(column, factor):
    return f"{COLUMNS[column]} x{factor}"


def table(records, distorted_results=None):
    """The markdown of every part recorded: rates, recipes, curves."""
    if distorted_results is None:
        distorted_results = read_distorted()
    lines = []
    rates = records.get("rates")
    if rates:
        lines += ["| training images/s | " + " | ".join(f"batch {b}" for b in BATCHES)
                  + f" | {BATCHES[-1]} / {BATCHES[0]} |",
                  "| --- |" + " ---: |" * (len(BATCHES) + 1)]
        for name, by_batch in rates["rates"].items():
            cells = [f"{by_batch[str(b)]:.0f}" for b in BATCHES]
            ratio = by_batch[str(BATCHES[-1])] / by_batch[str(BATCHES[0])]
            lines.append(f"| {name} ST-CNN | " + " | ".join(cells) + f" | {ratio:.2f}x |")
        lines += ["", f"{rates['images']:,} freshly distorted training images per cell, "
                      f"{rates['precision']}. `{rates['command']}`, {rates['machine']}, "
                      f"{rates['date']}, load {rates['load_at_end']} at the end.", ""]
    timed = {key: r for key, r in records.items() if key.endswith(" min")}
    if timed:
        lines += ["| equal time | steps x batch | learning rate | digits seen | training "
                  "time | test error |", "| --- | ---: | --- | ---: | ---: | ---: |"]
        for key, r in sorted(timed.items()):
            lines.append(f"| {key} | {r['steps']} x {r['batch_size']} | {r['optimizer']} "
                         f"{r['learning_rate']:.2g} {r['lr_schedule']} | "
                         f"{r['digits_seen'] / 1e6:.2f} M | {r['train_minutes']:.1f} min | "
                         f"{r['test_error']:.2f}% |")
        lines += ["", runs_said(timed.values()), ""]
    curves = [r for key, r in records.items() if " x" in key]
    if curves:
        lines += ["| column (run) | paper | today, 1x (3 seeds) | 2x | 4x | the paper's "
                  "figure reached |", "| --- | ---: | ---: | ---: | ---: | --- |"]
        for column, name in COLUMNS.items():
            now = today(column, distorted_results)
            cells = [curve_cell(records.get(curve_key(column, f))) for f in FACTORS]
            first = (f"{now['error']:.2f}% ({now['minutes']:.0f} min*)" if now else "-")
            lines.append(f"| {column} ({name}) | {paper_figure(column)}% | {first} | "
                         + " | ".join(cells) + f" | {reached(column, records, now)} |")
        machines = sorted({machine for column in COLUMNS
                           for machine in (today(column, distorted_results) or {})
                           .get("machines", [])})
        lines += ["", "% test error on the fixed distorted test set (10,000 digits), one "
                      "seed per point past 1x, and its training time on the machine that "
                      "trained it. *On " + "; ".join(machines)
                  + " (benchmarks/results/distorted.md). " + runs_said(curves)]
    return "\n".join(lines) + "\n"


def curve_cell(record):
    if not record:
        return "not run"
    return f"{record['test_error']:.2f}% ({record['train_minutes']:.0f} min)"


def reached(column, records, now):
    """Where a column's curve first reaches the paper's figure, or how far it got."""
    aim = paper_figure(column)
    if now and now["error"] <= aim:
        return "at 1x"
    for factor in FACTORS:
        r = records.get(curve_key(column, factor))
        if r and r["test_error"] <= aim:
            return f"at {factor}x, {r['train_minutes']:.0f} min"
    done = [f for f in FACTORS if curve_key(column, f) in records]
    return f"not by {done[-1]}x" if done else "-"


def runs_said(records):
    """The commands, machines and dates of some records, each said once."""
    said = sorted({f"`{r['command']}`, {r['machine']}, {r['date']}" for r in records})
    return "Runs: " + "; ".join(said) + "."


def read_distorted():
    path = common.results_path("distorted")
    return common.Records(path, os.devnull, lambda data: "").data


def draw(records, path, distorted_results=None):
    """Error against digits seen, a curve per column from today's mean on, and the
    paper's figures as dashed lines of the same colour."""
    if distorted_results is None:
        distorted_results = read_distorted()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    seen = set()
    for i, (column, name) in enumerate(COLUMNS.items()):
        colour = f"C{i}"
        now = today(column, distorted_results)
        points = ([(now["steps"] * now["batch_size"], now["error"])] if now else []) + [
            (r["digits_seen"], r["test_error"]) for r in
            (records.get(curve_key(column, f)) for f in FACTORS) if r]
        if points:
            x, y = zip(*points)
            ax.plot(np.array(x) / 1e6, y, "o-", color=colour, label=f"{column} ({name})")
            seen.update(round(d / 1e6, 1) for d in x)
        ax.axhline(paper_figure(column), color=colour, linestyle="--", linewidth=1,
                   label=f"{column}: the paper's {paper_figure(column)}%")
    ax.set_xscale("log", base=2)
    ax.minorticks_off()                      # a log axis' own ticks fall between the runs
    seen = sorted(seen)
    ax.set_xticks(seen, [f"{x:g}" for x in seen])
    ax.set_xlabel("training digits seen (millions); the paper's runs: 38.4")
    ax.set_ylabel("% test error")
    ax.set_title("Distorted MNIST: one seed at 2x and 4x today's steps")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="comma-separated: rates, recipe, batch, curve (default: "
                             "%(default)s)")
    parser.add_argument("--columns", default=",".join(COLUMNS),
                        help="the curve's columns (default: %(default)s)")
    parser.add_argument("--factors", default=",".join(map(str, FACTORS)),
                        help="the curve's multiples of each run's steps (default: "
                             "%(default)s)")
    parser.add_argument("--minutes", type=float, default=30.0,
                        help="the recipes' training time, turned into steps at the "
                             "recorded images/s (default: %(default)s)")
    parser.add_argument("--rate-images", type=int, default=20000,
                        help="training images timed per run and batch (default: "
                             "%(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="the seed of every run (default: %(default)s)")
    parser.add_argument("--data-dir", default=None, help="MNIST directory (default: as train.py)")
    parser.add_argument("--precision", choices=precision.PRECISIONS, default="auto",
                        help="as train.py's --precision (default: %(default)s)")
    parser.add_argument("--results", default=common.results_path("paper-time"),
                        help="JSON record; the markdown tables are written beside it, .md "
                             "for .json (default: %(default)s)")
    parser.add_argument("--figure", default=FIGURE,
                        help="the curves' figure (default: %(default)s)")
    common.add_keep_flags(parser, "paper-time")
    args = parser.parse_args(argv)
    parts, columns = args.parts.split(","), args.columns.split(",")
    factors = common.int_list(parser, "--factors", args.factors)
    if set(parts) - set(PARTS) or set(columns) - set(COLUMNS) or min(factors) < 1:
        parser.error(f"--parts takes {', '.join(PARTS)}; --columns {', '.join(COLUMNS)}; "
                     "--factors whole multiples of at least 1")
    if not args.minutes > 0 or args.rate_images < 1:
        parser.error("--minutes and --rate-images must be positive")
    args.precision = precision.resolve(args.precision)
    common.keep_beside_results(args, "paper-time")
    distorted_results = read_distorted()
    records = common.Records(args.results, os.path.splitext(args.results)[0] + ".md",
                             lambda data: table(data, distorted_results))

    def record(key, make):
        if common.record_new(records, key, make, args.overwrite) and any(
                " x" in k for k in records.data):
            draw(records.data, args.figure, distorted_results)

    if "rates" in parts:
        record("rates", lambda: {"rates": measure_rates(args, args.rate_images),
                                 "images": args.rate_images, "precision": args.precision,
                                 **common.stamp()})
    for part, plan in (("recipe", recipe_runs), ("batch", batch_runs)):
        if part not in parts:
            continue
        if "rates" not in records:
            parser.error(f"--parts {part} plans its steps from the recorded images/s: "
                         "run --parts rates first")
        for key, (name, steps, changes) in plan(records.data["rates"]["rates"],
                                                args.minutes).items():
            record(key, lambda: train_run(name, steps, args, ckpt(args, key), changes))
    if "curve" in parts:
        for factor in factors:
            for column in columns:
                earlier = [records.data.get(curve_key(column, f)) for f in factors if f < factor]
                if any(r and r["test_error"] <= paper_figure(column) for r in earlier):
                    print(f"{curve_key(column, factor)}: left out, a shorter run reached "
                          f"the paper's {paper_figure(column)}%")
                    continue
                name = COLUMNS[column]
                steps = factor * configs.train_config(name, "mnist", "").steps
                key = curve_key(column, factor)
                record(key, lambda: train_run(name, steps, args, ckpt(args, key)))
    print(table(records.data, distorted_results))


def ckpt(args, key):
    return os.path.join(args.ckpt_root, key.replace(" ", "_").replace(",", "").replace("'", ""))


if __name__ == "__main__":
    common.run_main(main)
