"""Benchmark: the named runs of distorted MNIST, beside the STN paper's Table 1.

    python -m benchmarks.distorted --data-dir ../shared/mnist --configs R,R-cnn
    python -m benchmarks.distorted --data-dir ../shared/mnist --configs RTS --seeds 0,1,2

Trains each named run (a recipe of configs/ with its overrides, as train.py --config
RUN does) once per seed, one after the other in this process, and tests it on the
fixed distorted test set. Each finished run is recorded in --results (JSON; a recorded
run is replaced only with --overwrite) and a markdown table beside it is rebuilt from
all records. For an
ST-CNN it draws a grid (digits with the region the STN sampled, and the STN's output)
into --figures, and measures how much rotation the STN removed (R, RTS) and how well
its box finds the digit (RTS, clutter).
"""
import argparse
import os
import shutil
import time

import numpy as np

import model
from benchmarks import common, measures
from mnist_stn import (animation, checkpoints, configs, data, distort, figures, geometry,
                       precision, training)
from mnist_stn.constants import TRAIN_FILE_SIZE, VALIDATION_SIZE

FIGURES = os.path.join("docs", "distorted")     # the committed figures of the records
ROTATING = ("R", "RTS")
LOCATING = ("RTS", "clutter")
FIGURE_DIGITS = 10
LONG = 0.4                  # elongation above which a digit's lean is read (ink_lean)


def rotation_spread(restored, test_images, labels, kind):
    """Spread (std, degrees) of the applied rotation and of what is left after the STN,
    and where what is left sits (``measures.turn_left``).

    The fixed test set is drawn again with its parameters, to know each digit's
    distortion M; the rotation of M . theta is what the STN's output still shows.
    """
    with distort.Distorter(kind, seed=distort.TEST_SEED) as distorter:
        images, params = distorter(test_images, return_params=True)
    # the turn of a projective or a spline is its affine part's
    transform = restored.config["transform"]
    theta = geometry.affine_part(restored.run(images, names=("theta",))["theta"], transform)[0]
    residual = np.degrees(measures.residual_rotation(params["matrix"], theta))
    # the same digits as written (strength 0: on the canvas, not turned) through the STN
    with distort.Distorter(kind, seed=distort.TEST_SEED, strength=0.0) as distorter:
        written, written_params = distorter(test_images, return_params=True)
    theta = geometry.affine_part(restored.run(written, names=("theta",))["theta"],
                                 transform)[0]
    own_pose = np.degrees(measures.residual_rotation(written_params["matrix"], theta))
    left = measures.turn_left(residual, labels, own_pose, np.degrees(params["angle"]))
    # does it stand leaning digits up? A residual > 0 shows the digit turned counter-
    # clockwise, so an STN that undoes a share k of each clockwise lean has slope k.
    lean, elongation = measures.ink_lean(test_images)
    long = elongation > LONG
    left["lean_undone"], left["lean_correlation"] = lean_fit(lean[long], own_pose[long])
    return float(np.degrees(params["angle"]).std()), left["std"], left


def lean_fit(lean, pose):
    """The slope and correlation of the STN's pose against the digits' lean, or
    (None, None) where fewer than three digits (or no spread of lean) leave nothing to
    fit."""
    if len(lean) < 3 or np.ptp(lean) == 0 or np.ptp(pose) == 0:
        return None, None
    return (float(np.polyfit(lean, pose, 1)[0]), float(np.corrcoef(lean, pose)[0, 1]))


def most_rotated_grid(restored, test_images, labels, digits, kind, path):
    """The grid of the FIGURE_DIGITS most rotated test digits: do they stand up?"""
    with distort.Distorter(kind, seed=distort.TEST_SEED) as distorter:
        _, params = distorter(digits, return_params=True)
    chosen = np.argsort(-np.abs(params["angle"]))[:FIGURE_DIGITS]
    out = restored.run(test_images[chosen])
    size, transform = distort.CANVAS_SIZE[kind], restored.config["transform"]
    parts = geometry.decompose(out["theta"], size, transform)
    figures.save_grid(path, test_images[chosen].reshape(-1, size, size), out["rectified"],
                      out["probabilities"].argmax(1), labels[chosen],
                      title=f"ST-CNN ({transform}) on {kind}: "
                            f"the {FIGURE_DIGITS} most rotated test digits "
                            "(top), the STN's output (below, with what it turned)",
                      boxes=geometry.sampled_box(out["theta"], size, transform),
                      notes=[geometry.short_label(parts, i) for i in range(len(chosen))])
    return path


def how_it_found(restored, test_images, digits, kind):
    """Median area of the sampled box over the canvas's, and the fraction of test digits
    whose ink centre lies inside their box."""
    size = distort.CANVAS_SIZE[kind]
    boxes = geometry.sampled_box(restored.run(test_images, names=("theta",))["theta"], size,
                                 restored.config["transform"])
    # the digit's own ink centre, in canvas pixels (the clutter's pieces left out)
    with distort.Distorter(kind, seed=distort.TEST_SEED) as distorter:
        _, params = distorter(digits, return_params=True)
    frame = digits.reshape(-1, 28, 28)
    rows, cols = np.mgrid[0:28, 0:28] - 13.5
    mass = frame.sum(axis=(1, 2))
    centre = np.stack([(frame * cols).sum(axis=(1, 2)), (frame * rows).sum(axis=(1, 2))],
                      axis=1) / mass[:, None]                          # from the frame centre
    linear, shift = params["matrix"][:, :, :2], params["matrix"][:, :, 2]
    normalised = np.einsum("nij,nj->ni", np.linalg.inv(linear), centre / 13.5 - shift)
    on_canvas = (normalised + 1.0) / 2.0 * (size - 1)
    inside = measures.inside_box(on_canvas, boxes)
    return (float(np.median(measures.box_area(boxes)) / (size - 1) ** 2),
            float(inside.mean()))


def make_config(name, seed, args, ckpt_dir=""):
    """The TrainConfig of one named run and seed, as train.py builds it."""
    return configs.train_config(name, "mnist", ckpt_dir, steps=args.steps, seed=seed,
                                precision=args.precision)


def run(name, seed, args, ckpt_dir):
    """Train one named run with one seed; returns its record."""
    config = make_config(name, seed, args, ckpt_dir)
    kind, stn = config.model["distortion"], config.model["stn"]
    datasets = data.load_mnist(args.data_dir, seed=seed)
    inputs = distort.training_inputs(datasets, kind, seed, config.ramp_steps)
    start = time.time()
    metrics = training.fit(config, model.build_graph, **inputs)
    record = {"config": name, "seed": seed, "kind": kind, "model": "ST-CNN" if stn else "CNN",
              "transform": config.model["transform"] if stn else None,
              "steps": metrics["steps"], "batch_size": metrics["batch_size"],
              "test_error": 100 * (1 - metrics["test_accuracy"]),
              "wall_minutes": (time.time() - start) / 60,     # of this process only
              "resumed_at_step": metrics["resumed_at_step"],
              "images_per_second": metrics["images_per_second"],
              "precision": config.precision,
              "train_minutes": metrics["train_seconds"] / 60,     # of every process
              "frame_share": (metrics["frame_seconds"] / metrics["train_seconds_this_run"]
                              if metrics.get("frame_seconds") and
                              metrics["train_seconds_this_run"] else None),
              **common.stamp()}
    if stn:
        restored = checkpoints.Restored(ckpt_dir, model.build_graph)
        record.update(measure(restored, ckpt_dir, datasets, inputs["test"][0],
                              common.run_name(name, seed), args.figures))
        restored.close()
    return record


def measure(restored, ckpt_dir, datasets, test_images, name_seed, figures_dir):
    """A trained ST-CNN's figures (into figures_dir) and measures, as fields of its
    record: its grid of test digits, its learning film (from ckpt_dir) if it has one,
    how far it turned the digits upright (R, RTS), how its box found them (RTS, clutter)."""
    kind, size = restored.config["distortion"], restored.config["image_size"]
    transform = restored.config["transform"]
    labels = datasets.test.labels
    out = restored.run(test_images[:FIGURE_DIGITS])
    os.makedirs(figures_dir, exist_ok=True)
    fields = {"figure": os.path.join(figures_dir, f"{name_seed}.png")}
    figures.save_grid(fields["figure"], test_images[:FIGURE_DIGITS].reshape(-1, size, size),
                      out["rectified"], out["probabilities"].argmax(1),
                      labels[:FIGURE_DIGITS],
                      title=f"ST-CNN ({transform}) on {kind}: input (top), the STN's output "
                            "(below)",
                      boxes=geometry.sampled_box(out["theta"], size, transform))
    gif = os.path.join(ckpt_dir, animation.GIF_FILE)
    if os.path.exists(gif):
        fields["animation"] = os.path.join(figures_dir, f"{name_seed}-learning.gif")
        shutil.copyfile(gif, fields["animation"])
    if kind in ROTATING:
        fields["angle_std"], fields["residual_angle_std"], fields["turn_left"] = \
            rotation_spread(restored, datasets.test.images, labels, kind)
        fields["most_rotated_figure"] = most_rotated_grid(
            restored, test_images, labels, datasets.test.images, kind,
            os.path.join(figures_dir, f"{name_seed}-most-rotated.png"))
    if kind in LOCATING:
        fields["box_area"], fields["centre_in_box"] = how_it_found(
            restored, test_images, datasets.test.images, kind)
    return fields


def remeasure(name, seed, args, records, parser):
    """Measure a recorded ST-CNN run again from its kept checkpoint (--remeasure)."""
    key = common.run_name(name, seed)
    ckpt_dir = os.path.join(args.ckpt_root, key)
    if key not in records or not os.path.isdir(ckpt_dir):
        parser.error(f"--remeasure: no record {key!r} with its checkpoint in {ckpt_dir}")
    record = dict(records.data[key])
    if record["model"] != "ST-CNN":
        print(f"--remeasure: {key} is a CNN, it has no STN to measure")
        return
    datasets = data.load_mnist(args.data_dir, seed=seed)
    restored = checkpoints.Restored(ckpt_dir, model.build_graph)
    test_images = distort.eval_images(datasets.test, record["kind"], distort.TEST_SEED)
    record.update(measure(restored, ckpt_dir, datasets, test_images, key, args.figures))
    restored.close()
    stamp = common.stamp()
    record["remeasured"] = {"date": stamp["date"], "command": stamp["command"]}
    records.add(key, record)


def table(records):
    """The markdown table of every recorded run, in the paper's order, beside its number."""
    lines = ["| run | seed | paper | ours | steps x batch | training time | rotation std before "
             "/ after the STN | median box area / ink centre in box |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    machines = set()
    order = {kind: i for i, kind in enumerate(common.TABLE_1)}
    for key, r in sorted(records.items(), key=lambda item: (
            order.get(item[1]["kind"], len(order)), item[1]["model"] == "CNN",
            item[1]["seed"])):
        machines.add(r["machine"])
        # older records lack the transformer: their run's name says it
        transform = r.get("transform") or configs.load(r["config"], "mnist")[0]["transform"]
        paper = common.TABLE_1.get(r["kind"], {}).get(
            transform if r["model"] == "ST-CNN" else "CNN")
        rotation = (f"{r['angle_std']:.1f}° / {r['residual_angle_std']:.1f}°"
                    if "angle_std" in r else "")
        found = f"{r['box_area']:.0%} / {r['centre_in_box']:.1%}" if "box_area" in r else ""
        lines.append(f"| {r['config']} | {r['seed']} | "
                     f"{'' if paper is None else f'{paper}%'} | {r['test_error']:.2f}% | "
                     f"{r['steps']} x {r['batch_size']} | {training_time(r)} | "
                     f"{rotation} | {found} |")
    lines += ["", "% test error on the fixed distorted test sets (10,000 digits each); the "
              "paper's: Jaderberg et al. 2015, Table 1. On " + "; ".join(sorted(machines))
              + ". Each run's command and date are in the JSON record beside this table."]
    return "\n".join(lines) + "\n"


def training_time(record):
    """The minutes spent training, over every process that trained the run (a run
    measured again after it finished trains no more); older records: this process's
    wall time, marked when resumed."""
    if "train_minutes" in record:
        return f"{record['train_minutes']:.1f} min"
    return common.wall_time(record)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    recipes = [name for name in configs.names("mnist")
               if configs.load(name, "mnist")[0]["distortion"] != "none"]
    common.add_run_flags(parser, "distorted", recipes, recipes)
    parser.add_argument("--figures", default=None,
                        help=f"where the ST-CNN grids go (default: {FIGURES}; for a trial's "
                             "own --results, RESULTS-figures beside it)")
    parser.add_argument("--remeasure", action="store_true",
                        help="train nothing: measure the recorded ST-CNN runs of --configs "
                             "and --seeds again from their kept checkpoints (--ckpt-root), "
                             "with this version's measures and figures; their training "
                             "record is kept")
    args = parser.parse_args(argv)
    args.precision = precision.resolve(args.precision)
    args.figures = args.figures or common.keep_beside_results(args, "distorted") or FIGURES
    planned = common.planned_runs(parser, args, recipes, make_config,
                                  TRAIN_FILE_SIZE - VALIDATION_SIZE)
    records = common.Records(args.results, os.path.splitext(args.results)[0] + ".md", table)
    if args.remeasure:
        for name, seed in planned:
            remeasure(name, seed, args, records, parser)
        return
    common.train_all(parser, records, planned, args, run)
    print(table(records.data))


if __name__ == "__main__":
    common.run_main(main)
