"""Benchmark: does the letters' headline run hold its peak? Its schedules at equal steps.

    python -m benchmarks.letters_peak --schedules constant,cosine --seeds 0 --steps 4000
    python -m benchmarks.letters_peak --schedules cosine --seeds 1,2 --steps 4000

Trains the README's letters run (configs/letters.toml, as ``python -m letters.train``
does) with each learning-rate schedule and seed for --steps, testing it on the 1,000
validation letters every --eval-every steps. Records the test accuracy, the
validation accuracy's history and its range over the last third of the run (how far
the figure depends on the step where the run stops), the training time and images/s.
One seed's test figure is uncertain by the binomial standard error of 1,000 letters,
printed beside the table. Each finished run is recorded in --results as it ends and
skipped when the command is run again (an unfinished one resumes from its checkpoint
under --ckpt-root); --overwrite records it again (a finished run from its checkpoint).
"""
import argparse
import os

import numpy as np

from benchmarks import common
from letters import data as letters_data
from letters import model
from mnist_stn import configs, precision, training

RUN = "letters"
LAST = 1 / 3                # the share of the run whose validation range is read


def train_run(schedule, seed, args, ckpt_dir, sets):
    """Train the letters run with one schedule and seed on ``sets`` (the letters as
    loaded with that seed's order); returns its record."""
    config = configs.train_config(RUN, "letters", ckpt_dir, steps=args.steps, seed=seed,
                                  lr_schedule=schedule, eval_every=args.eval_every,
                                  save_every=args.eval_every, precision=args.precision)
    config.check(train_size=sets.train.num_examples)
    metrics = training.fit(config, model.build_graph, sets.train,
                           (sets.validation.images, sets.validation.labels),
                           (sets.test.images, sets.test.labels))
    return {"run": RUN, "schedule": schedule, "seed": seed, "steps": metrics["steps"],
            "batch_size": config.batch_size, "learning_rate": config.learning_rate,
            "test_accuracy": 100 * metrics["test_accuracy"],
            "validation_accuracy": 100 * metrics["validation_accuracy"],
            "validations": metrics["validations"],
            "last_third_validation": last_range(metrics["validations"], metrics["steps"]),
            "train_minutes": metrics["train_seconds"] / 60,       # of every process
            "resumed_at_step": metrics["resumed_at_step"],
            "images_per_second": metrics["images_per_second"],
            "precision": config.precision, **common.stamp()}


def last_range(validations, steps):
    """[lowest, highest] validation accuracy (%) of the evaluations ([step, accuracy]
    pairs) over the last LAST of ``steps``."""
    last = [100 * acc for step, acc in validations if step >= (1 - LAST) * steps]
    return [min(last), max(last)]


def key(schedule, steps, seed):
    return f"{RUN} {schedule}, {steps} steps, seed {seed}"


def standard_error(accuracy, count=letters_data.SPLIT[2]):
    """The binomial standard error (points) of an accuracy (%) over ``count`` letters."""
    p = accuracy / 100
    return 100 * float(np.sqrt(p * (1 - p) / count))


def table(records):
    """A row per schedule and steps: each seed's test accuracy, the mean, the validation
    range over the last third, training time."""
    groups = {}
    for r in records.values():
        groups.setdefault((r["schedule"], r["steps"]), []).append(r)
    lines = ["| schedule, steps x batch | test accuracy by seed | mean (min) | validation "
             "over the last third, by seed | training time | images/s |",
             "| --- | --- | ---: | --- | ---: | ---: |"]
    for (schedule, steps), runs in sorted(groups.items()):
        runs.sort(key=lambda r: r["seed"])
        accuracies = [r["test_accuracy"] for r in runs]
        by_seed = ", ".join(f"{r['test_accuracy']:.1f}% ({r['seed']})" for r in runs)
        ranges = ", ".join("{:.1f}-{:.1f}%".format(*r["last_third_validation"]) for r in runs)
        minutes = ", ".join(f"{r['train_minutes']:.0f}" for r in runs)
        rates = ", ".join(f"{r['images_per_second']:.0f}" for r in runs)
        lines.append(f"| {schedule}, {steps} x {runs[0]['batch_size']} | {by_seed} | "
                     f"{np.mean(accuracies):.2f}% ({min(accuracies):.1f}%) | {ranges} | "
                     f"{minutes} min | {rates} |")
    said = sorted({f"`{r['command']}`, {r['machine']}, {r['date']}, {r['precision']}"
                   for r in records.values()})
    lines += ["", f"Test: {letters_data.SPLIT[2]:,} letters, so one seed's figure at 99.4% "
                  f"is uncertain by {standard_error(99.4):.2f} points (binomial standard "
                  f"error; {standard_error(99.8):.2f} at 99.8%). Validation: "
                  f"{letters_data.SPLIT[1]:,} letters. Runs: " + "; ".join(said) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = configs.train_config(RUN, "letters", "")
    parser.add_argument("--schedules", default=defaults.lr_schedule,
                        help="comma-separated learning-rate schedules: "
                             f"{', '.join(training.LR_SCHEDULES)} (default: the run's, "
                             "%(default)s)")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated seeds (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=defaults.steps,
                        help="steps of each run (default: the run's, %(default)s)")
    parser.add_argument("--eval-every", type=int, default=250,
                        help="validation every N steps (default: %(default)s)")
    parser.add_argument("--data-dir", default=None,
                        help="the generated letters (default: as letters.train)")
    parser.add_argument("--precision", choices=precision.PRECISIONS, default="auto",
                        help="as letters.train's --precision (default: %(default)s)")
    parser.add_argument("--results", default=common.results_path("letters-peak"),
                        help="JSON record; the markdown table is written beside it, .md "
                             "for .json (default: %(default)s)")
    common.add_keep_flags(parser, "letters-peak")
    args = parser.parse_args(argv)
    schedules = args.schedules.split(",")
    if set(schedules) - set(training.LR_SCHEDULES):
        parser.error(f"--schedules takes {', '.join(training.LR_SCHEDULES)}, "
                     f"not {args.schedules!r}")
    seeds = common.int_list(parser, "--seeds", args.seeds)
    if args.steps < 1 or args.eval_every < 1 or min(seeds) < 0:
        parser.error("--steps and --eval-every must be at least 1, --seeds at least 0")
    args.precision = precision.resolve(args.precision)
    common.keep_beside_results(args, "letters-peak")
    records = common.Records(args.results, os.path.splitext(args.results)[0] + ".md", table)
    for seed in seeds:
        for schedule in schedules:
            folder = os.path.join(args.ckpt_root, f"{schedule}-{args.steps}-seed{seed}")
            common.record_new(records, key(schedule, args.steps, seed), lambda: train_run(
                schedule, seed, args, folder,
                letters_data.load_letters(args.data_dir, shuffle_seed=seed)), args.overwrite)
    print(table(records.data))


if __name__ == "__main__":
    common.run_main(main)
