"""What the distorted test sets look like: where RTS and clutter put the digits, and how
much ink P and the elastic warps push off the canvas.

    python -m benchmarks.protocol --data-dir ../shared/mnist

Over the fixed test sets (10,000 digits each, as train.py and predict.py test on them):

- RTS, clutter: the distance of each digit's ink centre from the canvas centre
  (median, the fraction within 4 px and beyond 9 px and 11 px).
- P: the fraction of each digit's ink whose pixel centres the projective warp maps
  outside the 28x28 canvas (exact, through the inverse homography).
- E: the ink on the canvas after the paper's warp over the ink before times the scale
  squared: what the spline's bend adds or takes, beside the shrinking.
- simard: the ink on the canvas after Simard's elastic warp over the ink before. The warp
  keeps the area on average but stretches and squeezes each digit, so a ratio under 1
  is an upper bound on the ink pushed off, not a measure of it.

Writes a markdown table to --table.
"""
import argparse
import os
import time

import numpy as np

from benchmarks import common
from mnist_stn import data, distort
from mnist_stn.constants import IMAGE_SIZE


def ink_centre_distance(canvases, size):
    """Distance (px) of each canvas's ink centre of mass from the canvas centre."""
    canvases = canvases.reshape(-1, size, size)
    rows, cols = np.mgrid[0:size, 0:size] - (size - 1) / 2.0
    mass = canvases.sum(axis=(1, 2))
    centre = np.stack([(canvases * cols).sum(axis=(1, 2)),
                       (canvases * rows).sum(axis=(1, 2))], axis=1) / mass[:, None]
    return np.linalg.norm(centre, axis=1)


def p_ink_outside(images, homography):
    """Fraction of each digit's ink (by intensity) mapped outside the 28x28 canvas."""
    half = (IMAGE_SIZE - 1) / 2.0
    rows, cols = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    digit = np.stack([(cols.ravel() - half) / half, (rows.ravel() - half) / half,
                      np.ones(IMAGE_SIZE ** 2)])                      # (3, 784) normalised
    canvas = np.linalg.inv(homography) @ digit                        # (N, 3, 784)
    xy = canvas[:, :2] / canvas[:, 2:] * half + half                  # canvas pixel indices
    outside = ((xy < -0.5) | (xy > IMAGE_SIZE - 0.5)).any(axis=1) | (canvas[:, 2] <= 0)
    return (images * outside).sum(axis=1) / images.sum(axis=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="MNIST directory (default: as train.py)")
    parser.add_argument("--table", default=os.path.join("benchmarks", "results", "protocol.md"),
                        help="markdown table (default: %(default)s)")
    args = parser.parse_args(argv)
    test = data.load_mnist(args.data_dir, validation_size=0).test
    lines = ["| test set | what | median | share |", "| --- | --- | ---: | --- |"]
    for kind in ("RTS", "clutter"):
        size = distort.CANVAS_SIZE[kind]
        canvases = distort.fixed_test_set(test.images, kind, seed=distort.TEST_SEED)
        if kind == "clutter":     # the pieces would move the centre: place the digit alone
            with distort.Distorter(kind, seed=distort.TEST_SEED) as d:
                _, params = d(test.images, return_params=True)
            position = params["position"]
            canvases = np.zeros((len(test.images), size + 56, size + 56), np.float32)
            for i, (r, c) in enumerate(position + 28):
                canvases[i, r:r + 28, c:c + 28] = test.images[i].reshape(28, 28)
            canvases = canvases[:, 28:-28, 28:-28]
        dist = ink_centre_distance(canvases, size)
        lines.append(f"| {kind} ({size}x{size}) | ink centre's distance from the canvas centre "
                     f"| {np.median(dist):.1f} px | within 4 px {np.mean(dist <= 4):.0%}, "
                     f"beyond 9 px {np.mean(dist > 9):.0%}, beyond 11 px "
                     f"{np.mean(dist > 11):.0%} |")
    with distort.Distorter("P", seed=distort.TEST_SEED) as d:
        _, params = d(test.images, return_params=True)
    lost = p_ink_outside(test.images, params["homography"])
    lines.append(f"| P (28x28) | ink mapped off the canvas | {np.median(lost):.1%} | "
                 f"any {np.mean(lost > 0):.0%} of digits, over 10% of the ink "
                 f"{np.mean(lost > 0.1):.1%}, over 25% {np.mean(lost > 0.25):.1%} |")
    with distort.Distorter("E", seed=distort.TEST_SEED) as d:
        bent, params = d(test.images, return_params=True)
    kept = bent.sum(axis=1) / (test.images.sum(axis=1) * params["scale"] ** 2)
    lines.append(f"| E (28x28) | ink after / (before x scale²) | {np.median(kept):.3f} | "
                 f"under 0.9: {np.mean(kept < 0.9):.1%}, over 1.1: {np.mean(kept > 1.1):.1%} |")
    elastic = distort.fixed_test_set(test.images, "simard", seed=distort.TEST_SEED)
    kept = elastic.sum(axis=1) / test.images.sum(axis=1)
    lines.append(f"| simard (28x28) | ink after / before | {np.median(kept):.3f} | under "
                 f"0.9: {np.mean(kept < 0.9):.1%}, under 0.75: {np.mean(kept < 0.75):.1%} |")
    stamp = common.stamp()
    lines += ["", f"`{stamp['command']}`, {stamp['machine']}, {time.strftime('%Y-%m-%d')}. "
                  "The fixed test sets, seed distort.TEST_SEED."]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.table, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
