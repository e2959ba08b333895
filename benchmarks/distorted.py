"""Benchmark: CNN vs ST-CNN on the STN paper's distorted MNIST, beside the paper's Table 1.

    python -m benchmarks.distorted --data-dir ../shared/mnist --kinds RTS --steps 30000
    python -m benchmarks.distorted --data-dir ../shared/mnist --kinds R,P,E,clutter --steps 3000

For each distortion, trains the plain CNN and the ST-CNN with the same steps, seed and
learning-rate schedule (train.py's defaults otherwise), one after the other in this
process, and tests both on the fixed distorted test set. Each finished run is recorded
in --results (JSON, replacing an earlier run of the same distortion and model) and the
markdown table --table is rebuilt from all records. For the ST-CNN it draws a grid
(digits with the region the STN sampled, and the STN's output) into --figures, and for
R and RTS it measures how much rotation the STN removed.
"""
import argparse
import os
import shutil
import time

import numpy as np

import model
from benchmarks import common
from mnist_stn import (animation, checkpoints, data, distort, figures, geometry, precision,
                       training)
from mnist_stn.compat import tf
from mnist_stn.constants import TRAIN_FILE_SIZE, VALIDATION_SIZE
from mnist_stn.training import TrainConfig

# Jaderberg et al. 2015, Table 1: % test error of the CNN and the ST-CNN (affine).
PAPER = {"R": (1.2, 0.7), "RTS": (0.8, 0.5), "P": (1.5, 0.8), "E": (1.4, 1.2),
         "clutter": (3.5, 1.7)}
ROTATING = ("R", "RTS")
LOCATING = ("RTS", "clutter")
FIGURE_DIGITS = 10
LONG = 0.4                  # elongation above which a digit's lean is read (ink_lean)
# the paper trained with plain SGD; train.py with Adam
OPTIMIZERS = {"adam": tf.train.AdamOptimizer, "sgd": tf.train.GradientDescentOptimizer}


def rotation_spread(restored, test_images, labels, kind):
    """Spread (std, degrees) of the applied rotation and of what is left after the STN,
    and where what is left sits (``geometry.turn_left``).

    The fixed test set is drawn again with its parameters, to know each digit's
    distortion M; the rotation of M . theta is what the STN's output still shows.
    """
    with distort.Distorter(kind, seed=distort.TEST_SEED) as distorter:
        images, params = distorter(test_images, return_params=True)
    theta = restored.run(images, names=("theta",))["theta"]
    residual = np.degrees(geometry.residual_rotation(params["matrix"], theta))
    # the same digits as written (strength 0: on the canvas, not turned) through the STN
    with distort.Distorter(kind, seed=distort.TEST_SEED, strength=0.0) as distorter:
        written, written_params = distorter(test_images, return_params=True)
    theta = restored.run(written, names=("theta",))["theta"]
    own_pose = np.degrees(geometry.residual_rotation(written_params["matrix"], theta))
    left = geometry.turn_left(residual, labels, own_pose, np.degrees(params["angle"]))
    # does it stand leaning digits up? A residual > 0 shows the digit turned counter-
    # clockwise, so an STN that undoes a share k of each clockwise lean has slope k.
    lean, elongation = geometry.ink_lean(test_images)
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


def most_rotated_grid(restored, test_images, labels, digits, kind, figures_dir, tag):
    """The grid of the FIGURE_DIGITS most rotated test digits: do they stand up?"""
    with distort.Distorter(kind, seed=distort.TEST_SEED) as distorter:
        _, params = distorter(digits, return_params=True)
    chosen = np.argsort(-np.abs(params["angle"]))[:FIGURE_DIGITS]
    out = restored.run(test_images[chosen])
    size = distort.CANVAS_SIZE[kind]
    parts = geometry.decompose(out["theta"], size)
    path = os.path.join(figures_dir, f"{figure_name(kind, tag)}-most-rotated.png")
    figures.save_grid(path, test_images[chosen].reshape(-1, size, size), out["rectified"],
                      out["probabilities"].argmax(1), labels[chosen],
                      title=f"ST-CNN on {kind}: the {FIGURE_DIGITS} most rotated test digits "
                            "(top), the STN's output (below, with what it turned)",
                      boxes=geometry.sampled_box(out["theta"], size),
                      notes=[geometry.short_label(parts, i) for i in range(len(chosen))])
    return path


def how_it_found(restored, test_images, digits, kind):
    """Median area of the sampled box over the canvas's, and the fraction of test digits
    whose ink centre lies inside their box."""
    size = distort.CANVAS_SIZE[kind]
    boxes = geometry.sampled_box(restored.run(test_images, names=("theta",))["theta"], size)
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
    inside = geometry.inside_box(on_canvas, boxes)
    return (float(np.median(geometry.box_area(boxes)) / (size - 1) ** 2),
            float(inside.mean()))


def make_config(kind, stn, args, ckpt_dir):
    """The TrainConfig of one run: one model on one distortion."""
    return TrainConfig(
        model={"stn": stn, "distortion": kind, "image_size": distort.CANVAS_SIZE[kind],
               "loc_head": args.loc_head, "loc_start_scale": args.loc_start_scale,
               "loc_hidden": args.loc_hidden},
        ckpt_dir=ckpt_dir, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
        learning_rate=args.learning_rate, lr_schedule=args.lr_schedule,
        precision=args.precision, loc_lr_multiplier=args.loc_lr_multiplier if stn else 1.0,
        loc_lr_warmup=args.loc_lr_warmup if stn else 0,
        loc_keep_prob=args.loc_keep_prob,
        ramp_steps=args.ramp_steps,
        classifier_lr_after_ramp=args.classifier_lr_after_ramp if stn else 1.0,
        classifier_slow_steps=args.classifier_slow_steps if stn else None)


def run(kind, stn, args, datasets, ckpt_dir):
    """Train one model on one distortion; returns its record."""
    config = make_config(kind, stn, args, ckpt_dir)
    inputs = distort.training_inputs(datasets, kind, args.seed, args.ramp_steps,
                                     args.train_strength)
    start = time.time()
    metrics = training.fit(config, model.build_graph, **inputs,
                           make_optimizer=OPTIMIZERS[args.optimizer])
    record = {"kind": kind, "model": "ST-CNN" if stn else "CNN", "steps": metrics["steps"],
              "batch_size": metrics["batch_size"],
              "test_error": 100 * (1 - metrics["test_accuracy"]),
              "wall_minutes": (time.time() - start) / 60,     # of this process only
              "resumed_at_step": metrics["resumed_at_step"],
              "images_per_second": metrics["images_per_second"],
              "loc_head": args.loc_head if stn else None, "precision": args.precision,
              "loc_lr_multiplier": args.loc_lr_multiplier if stn else None,
              "loc_lr_warmup": args.loc_lr_warmup if stn else None,
              "loc_start_scale": args.loc_start_scale if stn else None,
              "loc_keep_prob": args.loc_keep_prob if stn else None,
              "loc_hidden": args.loc_hidden if stn else None,
              "classifier_lr_after_ramp": args.classifier_lr_after_ramp if stn else None,
              "classifier_slow_steps": args.classifier_slow_steps if stn else None,
              "ramp_steps": args.ramp_steps, "train_strength": args.train_strength,
              "optimizer": args.optimizer, "learning_rate": args.learning_rate,
              "lr_schedule": args.lr_schedule,
              "frame_share": (metrics["frame_seconds"] / metrics["train_seconds_this_run"]
                              if metrics.get("frame_seconds") is not None else None),
              **common.stamp()}
    if stn:
        restored = checkpoints.Restored(ckpt_dir, model.build_graph, precision=args.precision)
        test_images, labels = inputs["test"]
        out = restored.run(test_images[:FIGURE_DIGITS])
        size = config.model["image_size"]
        os.makedirs(args.figures, exist_ok=True)
        record["figure"] = os.path.join(args.figures, f"{figure_name(kind, args.tag)}.png")
        figures.save_grid(record["figure"], test_images[:FIGURE_DIGITS].reshape(-1, size, size),
                          out["rectified"], out["probabilities"].argmax(1),
                          labels[:FIGURE_DIGITS], title=f"ST-CNN on {kind}: input (top), "
                                                        "the STN's output (below)",
                          boxes=geometry.sampled_box(out["theta"], size))
        gif = os.path.join(ckpt_dir, animation.GIF_FILE)
        if os.path.exists(gif):
            record["animation"] = os.path.join(args.figures,
                                               f"{figure_name(kind, args.tag)}-learning.gif")
            shutil.copyfile(gif, record["animation"])
        if kind in ROTATING:
            record["angle_std"], record["residual_angle_std"], record["turn_left"] = \
                rotation_spread(restored, datasets.test.images, labels, kind)
            record["most_rotated_figure"] = most_rotated_grid(
                restored, test_images, labels, datasets.test.images, kind, args.figures,
                args.tag)
        if kind in LOCATING:
            record["box_area"], record["centre_in_box"] = how_it_found(
                restored, test_images, datasets.test.images, kind)
        restored.close()
    return record


def figure_name(kind, tag):
    """A run's figures are named by its distortion and tag: an ablation or a trial never
    draws over the main runs' figures."""
    return safe_name(kind + (f"-{tag}" if tag else ""))


def safe_name(name):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def checkpoint_folder(root, name, kind, tag):
    """Where a run of model ``name`` ("cnn" or "stn") is kept under --ckpt-root."""
    return os.path.join(root, safe_name(f"{name}-{kind}" + (f"-{tag}" if tag else "")))


def remeasure(kind, args, records, parser):
    """Measure a recorded ST-CNN run again from its kept checkpoint (--remeasure)."""
    key = f"{kind}/ST-CNN" + (f" [{args.tag}]" if args.tag else "")
    ckpt_dir = checkpoint_folder(args.ckpt_root, "stn", kind, args.tag)
    if key not in records or not os.path.isdir(ckpt_dir):
        parser.error(f"--remeasure: no record {key!r} with its checkpoint in {ckpt_dir}")
    record = dict(records.data[key])
    datasets = data.load_mnist(args.data_dir, seed=args.seed)
    restored = checkpoints.Restored(ckpt_dir, model.build_graph, precision=record["precision"])
    if kind in ROTATING:
        record["angle_std"], record["residual_angle_std"], record["turn_left"] = \
            rotation_spread(restored, datasets.test.images, datasets.test.labels, kind)
    if kind in LOCATING:
        test_images = distort.eval_images(datasets.test, kind, distort.TEST_SEED)
        record["box_area"], record["centre_in_box"] = how_it_found(
            restored, test_images, datasets.test.images, kind)
    restored.close()
    stamp = common.stamp()
    record["remeasured"] = {"date": stamp["date"], "command": stamp["command"]}
    records.add(key, record)


def table(records):
    """The markdown table of all recorded runs, in the paper's order."""
    lines = ["| distortion | paper CNN | paper ST-CNN | our CNN | our ST-CNN | steps x batch "
             "| wall time CNN / ST-CNN | rotation std before / after the STN | median box "
             "area / ink centre in box |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    machines = set()
    for kind in PAPER:
        cnn, stn = records.get(f"{kind}/CNN"), records.get(f"{kind}/ST-CNN")
        ran = [r for r in (cnn, stn) if r]
        if not ran:
            continue
        machines.update(r["machine"] for r in ran)
        steps = " / ".join(sorted({f"{r['steps']} x {r['batch_size']}" for r in ran}))
        rotation = (f"{stn['angle_std']:.1f}° / {stn['residual_angle_std']:.1f}°"
                    if stn and "angle_std" in stn else "")
        error = [f"{r['test_error']:.2f}%" if r else "not run" for r in (cnn, stn)]
        wall = [common.wall_time(r) if r else "-" for r in (cnn, stn)]
        found = (f"{stn['box_area']:.0%} / {stn['centre_in_box']:.1%}"
                 if stn and "box_area" in stn else "")
        lines.append(f"| {kind} | {PAPER[kind][0]}% | {PAPER[kind][1]}% | {error[0]} | "
                     f"{error[1]} | {steps} | {wall[0]} / {wall[1]} | {rotation} | "
                     f"{found} |")
    lines += ["", "% test error on the fixed distorted test sets (10,000 digits each), on "
              + "; ".join(sorted(machines)) + ". Each run's command and date are in "
              "the JSON record beside this table."]
    tagged = [(key, r) for key, r in records.items() if r.get("tag")]
    if tagged:
        lines += ["", "| run | test error | rotation std before / after | median box area / "
                      "ink centre in box | steps x batch | wall time | command |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        for key, r in tagged:
            rotation = (f"{r['angle_std']:.1f}° / {r['residual_angle_std']:.1f}°"
                        if "angle_std" in r else "")
            found = f"{r['box_area']:.0%} / {r['centre_in_box']:.1%}" if "box_area" in r else ""
            lines.append(f"| {key} | {r['test_error']:.2f}% | {rotation} | {found} | "
                         f"{r['steps']} x {r['batch_size']} | {common.wall_time(r)} | "
                         f"`{r['command']}` |")
    return "\n".join(lines) + "\n"


def steps_range(text):
    """'FROM:UNTIL' -> (FROM, UNTIL), 0 <= FROM < UNTIL, for argparse."""
    try:
        start, until = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not FROM:UNTIL steps: {text!r}") from None
    if not 0 <= start < until:
        raise argparse.ArgumentTypeError(f"need 0 <= FROM < UNTIL, not {text!r}")
    return start, until


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="MNIST directory (default: as train.py)")
    parser.add_argument("--kinds", default="R,RTS,P,E,clutter",
                        help="comma-separated distortions (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=4000,
                        help="training steps of each run (default: %(default)s)")
    parser.add_argument("--models", default="cnn,stn",
                        help="cnn, stn or both, in order (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")
    parser.add_argument("--loc-head", choices=model.LOC_HEADS, default="identity",
                        help="how the ST-CNN's loc net starts (default: %(default)s, as "
                             "train.py with --distortion)")
    parser.add_argument("--results", default=os.path.join("benchmarks", "results",
                                                          "distorted.json"),
                        help="JSON record of all runs (default: %(default)s)")
    parser.add_argument("--table", default=os.path.join("benchmarks", "results",
                                                        "distorted.md"),
                        help="markdown table rebuilt from --results (default: %(default)s)")
    parser.add_argument("--figures", default=os.path.join("docs", "distorted"),
                        help="where the ST-CNN grids go (default: %(default)s)")
    parser.add_argument("--precision", choices=precision.PRECISIONS, default="auto",
                        help="as train.py's --precision (default: %(default)s)")
    parser.add_argument("--tag", default="",
                        help="an ablation's name: its runs are recorded apart from the "
                             "main table's, in the ablation table (default: none)")
    parser.add_argument("--loc-lr-multiplier", type=float, default=1.0,
                        help="the ST-CNN's loc net learns at this multiple of the "
                             "learning rate (default: %(default)s)")
    parser.add_argument("--loc-lr-warmup", type=int, default=0,
                        help="the loc net's multiple of the rate grows from 1 to "
                             "--loc-lr-multiplier over these first steps (default: "
                             "%(default)s, from the start)")
    parser.add_argument("--loc-start-scale", type=float, default=1.0,
                        help="the ST-CNN's first box: the centre of the canvas, s times its "
                             "side, 0 < s <= 1 (default: %(default)s, the whole canvas)")
    parser.add_argument("--loc-keep-prob", type=float, default=1.0,
                        help="as train.py's --loc-keep-prob: dropout in the ST-CNN's loc "
                             "net (default: %(default)s, none)")
    parser.add_argument("--loc-hidden", type=int, default=model.LOC_HIDDEN,
                        help="units of the ST-CNN's loc net FC layer (default: %(default)s, "
                             "the tutorial's)")
    parser.add_argument("--train-strength", type=float, default=1.0,
                        help="R only: train on turns up to this multiple of the test's "
                             "±90° (the curriculum ramps to it; default: %(default)s)")
    parser.add_argument("--remeasure", action="store_true",
                        help="train nothing: measure the recorded ST-CNN runs of --kinds and "
                             "--tag again from their kept checkpoints (--ckpt-root), with "
                             "this version's measures; their training record is kept")
    parser.add_argument("--classifier-lr-after-ramp", type=float, default=1.0,
                        help="the ST-CNN's classifier learns at this multiple of its rate "
                             "once --ramp-steps are over, 0 freezing it (default: "
                             "%(default)s, unchanged)")
    parser.add_argument("--classifier-slow-steps", type=steps_range, default=None,
                        metavar="FROM:UNTIL",
                        help="apply --classifier-lr-after-ramp over these steps instead "
                             "(default: from the end of --ramp-steps to the last step)")
    parser.add_argument("--batch-size", type=int, default=50,
                        help="training images per step, for both models (default: "
                             "%(default)s, the tutorial's)")
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam",
                        help="adam, as train.py, or sgd (plain), as the STN paper "
                             "(default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate,
                        help="the peak rate (default: %(default)s, train.py's; the paper's "
                             "SGD: 0.01)")
    parser.add_argument("--lr-schedule", choices=training.LR_SCHEDULES,
                        default=TrainConfig.lr_schedule,
                        help="as train.py's (default: %(default)s; the paper's: thirds)")
    parser.add_argument("--ramp-steps", type=int, default=0,
                        help="as train.py's --ramp-steps, for both models (default: "
                             "%(default)s)")
    common.add_keep_flags(parser, "distorted")
    args = parser.parse_args(argv)
    args.precision = precision.resolve(args.precision)
    if not 0.0 < args.loc_start_scale <= 1.0:          # also refuses NaN
        parser.error(f"--loc-start-scale must be in (0, 1], not {args.loc_start_scale}")
    models = args.models.split(",")
    if not models or not set(models) <= {"cnn", "stn"}:
        parser.error(f"--models takes cnn and/or stn, not {args.models}")
    try:
        for stn in (False, True):
            make_config("R", stn, args, "").check(train_size=TRAIN_FILE_SIZE - VALIDATION_SIZE)
    except ValueError as e:
        parser.error(str(e))
    if args.loc_hidden < 1:
        parser.error(f"--loc-hidden must be a positive number of units, not {args.loc_hidden}")
    kinds = args.kinds.split(",")
    unknown = set(kinds) - set(PAPER)
    if unknown:
        parser.error(f"unknown distortions {sorted(unknown)}; choose from {list(PAPER)}")
    if args.train_strength != 1.0 and (kinds != ["R"] or not 1.0 <= args.train_strength <= 2.0):
        parser.error("--train-strength is for R alone, from 1 to 2 (turns up to ±180°)")

    records = common.Records(args.results, args.table, table)
    if args.remeasure:
        for kind in kinds:
            remeasure(kind, args, records, parser)
        return
    tag = f" [{args.tag}]" if args.tag else ""
    names = {"cnn": "CNN", "stn": "ST-CNN"}
    common.refuse_recorded(parser, records, [f"{kind}/{names[name]}{tag}" for kind in kinds
                                             for name in models], args.overwrite)
    for kind in kinds:
        for name in models:
            datasets = data.load_mnist(args.data_dir, seed=args.seed)
            record = run(kind, name == "stn", args, datasets,
                         checkpoint_folder(args.ckpt_root, name, kind, args.tag))
            records.add(f"{kind}/{record['model']}{tag}", {**record, "tag": args.tag})
    print(table(records.data))


if __name__ == "__main__":
    common.run_main(main)
