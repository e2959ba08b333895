"""Benchmark: CNN vs ST-CNN on the STN paper's distorted MNIST, beside the paper's Table 1.

    python benchmarks/distorted.py --data-dir ../shared/mnist --kinds RTS --steps 20000
    python benchmarks/distorted.py --data-dir ../shared/mnist --kinds R,P,E,clutter --steps 4000

For each distortion, trains the plain CNN and the ST-CNN with the same steps, seed and
learning-rate schedule (train.py's defaults otherwise), one after the other in this
process, and tests both on the fixed distorted test set. Each run is recorded in
--results (JSON, replacing an earlier run of the same distortion and model), and the
markdown table in --table is rebuilt from all recorded runs. For the ST-CNN it draws
a grid (digits with the region the STN sampled, and the STN's output) into --figures,
and for R and RTS it measures how much rotation the STN removed.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import predict  # noqa: E402
import train  # noqa: E402
from benchmarks.mnist import machine  # noqa: E402
from mnist_stn import data, distort  # noqa: E402

# Jaderberg et al. 2015, Table 1: % test error of the CNN and the ST-CNN (affine).
PAPER = {"R": (1.2, 0.7), "RTS": (0.8, 0.5), "P": (1.5, 0.8), "E": (1.4, 1.2),
         "clutter": (3.5, 1.7)}
ROTATING = ("R", "RTS")


def rotation_removed(predictor, test, kind):
    """Spread (std, degrees) of the applied rotation and of what is left after the STN.

    The fixed test set is drawn again with its parameters: M maps canvas to digit
    coordinates, theta maps the STN's output to canvas coordinates, so the STN's output
    shows the digit through M . theta; the rotation of that composite is the residual.
    """
    with distort.Distorter(kind, seed=train.TEST_SEED) as distorter:
        images, params = distorter(test.images, return_params=True)
    assert np.array_equal(images, train.eval_images(test, kind, train.TEST_SEED))
    _, _, thetas = predictor.run(images)
    residual = residual_rotation(params["matrix"], thetas)
    return float(np.degrees(params["angle"]).std()), float(np.degrees(residual).std())


def residual_rotation(matrices, thetas):
    """Rotation (radians) of the digit as the STN shows it: that of M . theta.

    Args:
      matrices: (N, 2, 3) canvas -> digit normalised coordinates (the distortion).
      thetas: (N, 6) output -> canvas normalised coordinates (the STN).
    """
    # (N, 2, 2) linear parts: digit <- canvas <- output
    composite = np.asarray(matrices)[:, :, :2] @ np.asarray(thetas).reshape(-1, 2, 3)[:, :, :2]
    # the rotation of a 2x2 matrix: that of its closest similarity transform
    return np.arctan2(composite[:, 1, 0] - composite[:, 0, 1],
                      composite[:, 0, 0] + composite[:, 1, 1])


def run(kind, stn, args, tmp):
    """Train one model on one distortion; returns its record."""
    ckpt = os.path.join(tmp, f"{'stn' if stn else 'cnn'}-{kind}")
    flags = ["--distortion", kind, "--ckpt-dir", ckpt, "--steps", str(args.steps),
             "--seed", str(args.seed)] + (["--data-dir", args.data_dir] if args.data_dir
                                          else []) + ([] if stn else ["--no-stn"])
    if stn:
        flags += args.stn_args.split()
    start = time.time()
    metrics = train.train(train.parse_args(flags))
    record = {"kind": kind, "model": "ST-CNN" if stn else "CNN", "steps": metrics["steps"],
              "batch_size": metrics["batch_size"],
              "test_error": 100 * (1 - metrics["test_accuracy"]),
              "wall_minutes": (time.time() - start) / 60,
              "images_per_second": metrics["images_per_second"],
              "extra_args": (args.stn_args if stn else "") or None,
              "machine": machine(), "date": time.strftime("%Y-%m-%d")}
    if stn:
        predictor = predict.Predictor(ckpt)
        test = data.load_mnist(args.data_dir, validation_size=0).test
        predict.evaluate_test_set(predictor, test, kind, ckpt, num_images=10)
        os.makedirs(args.figures, exist_ok=True)
        figure = os.path.join(args.figures, f"{kind}.png")
        shutil.copy(os.path.join(ckpt, predict.GRID_FILE), figure)
        record["figure"] = figure
        if kind in ROTATING:
            record["angle_std"], record["residual_angle_std"] = \
                rotation_removed(predictor, test, kind)
    return record


def table(records):
    """The markdown table of all recorded runs, in the paper's order."""
    lines = ["| distortion | paper CNN | paper ST-CNN | our CNN | our ST-CNN | steps x batch "
             "| wall time CNN / ST-CNN | rotation std before / after the STN |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    machines = set()
    for kind in PAPER:
        cnn, stn = records.get(f"{kind}/CNN"), records.get(f"{kind}/ST-CNN")
        if not (cnn or stn):
            continue
        ran = [r for r in (cnn, stn) if r]
        machines.update(r["machine"] for r in ran)
        steps = " / ".join(sorted({f"{r['steps']} x {r['batch_size']}" for r in ran}))
        rotation = (f"{stn['angle_std']:.1f}° / {stn['residual_angle_std']:.1f}°"
                    if stn and "angle_std" in stn else "")
        error = {name: f"{r['test_error']:.2f}%" if r else "not run"
                 for name, r in (("cnn", cnn), ("stn", stn))}
        wall = {name: f"{r['wall_minutes']:.1f}" if r else "-"
                for name, r in (("cnn", cnn), ("stn", stn))}
        lines.append(f"| {kind} | {PAPER[kind][0]}% | {PAPER[kind][1]}% | {error['cnn']} | "
                     f"{error['stn']} | {steps} | {wall['cnn']} / {wall['stn']} min | "
                     f"{rotation} |")
    lines += ["", "% test error on the fixed distorted test sets (10,000 digits each). "
              "Measured with `python benchmarks/distorted.py` on "
              + "; ".join(sorted(machines)) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None,
                        help="MNIST directory (default: as train.py)")
    parser.add_argument("--kinds", default="R,RTS,P,E,clutter",
                        help="comma-separated distortions (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=4000,
                        help="training steps of each run (default: %(default)s)")
    parser.add_argument("--models", default="cnn,stn",
                        help="cnn, stn or both, in order (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of every run (default: %(default)s)")
    parser.add_argument("--stn-args", default="",
                        help="extra train.py flags for the ST-CNN runs, e.g. "
                             "'--loc-head identity'")
    parser.add_argument("--results", default=os.path.join("benchmarks", "results",
                                                          "distorted.json"),
                        help="JSON record of all runs (default: %(default)s)")
    parser.add_argument("--table", default=os.path.join("benchmarks", "results",
                                                        "distorted.md"),
                        help="markdown table rebuilt from --results (default: %(default)s)")
    parser.add_argument("--figures", default=os.path.join("docs", "distorted"),
                        help="where the ST-CNN grids go (default: %(default)s)")
    args = parser.parse_args(argv)
    kinds = args.kinds.split(",")
    unknown = set(kinds) - set(PAPER)
    if unknown:
        parser.error(f"unknown distortions {sorted(unknown)}; choose from {list(PAPER)}")

    records = {}
    if os.path.exists(args.results):
        with open(args.results) as f:
            records = json.load(f)
    data.locate(args.data_dir)      # fail before training if MNIST cannot be had
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            for model in args.models.split(","):
                record = run(kind, model == "stn", args, tmp)
                records[f"{kind}/{record['model']}"] = record
                print(json.dumps(record, indent=2))
                os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
                train.write_json(args.results, records)
                with open(args.table, "w") as f:
                    f.write(table(records))
    print(table(records))


if __name__ == "__main__":
    main()
