"""Watch the STN learn: a fixed panel of validation digits, filmed while it trains.

Every few steps training records, for the same PANEL digits, where the STN looked (its
theta) and what it passed on. ``write_gif`` turns the frames into an animation: the
inputs with their sampled boxes moving on top, the STN's outputs below, the step in the
title. The frames are kept beside the checkpoint (FRAMES_FILE), with the panel filmed,
so a resumed run goes on filming where it stopped, and the GIF can be drawn again:

    python -m mnist_stn.animation checkpoints/stn-R --max-frames 30
"""
import argparse
import json
import os
import sys
import zipfile

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from mnist_stn import checkpoints, figures, geometry, images  # noqa: E402

PANEL = 16               # digits filmed: two rows of eight, each input above its output
PER_ROW = 8
GIF_FILE = "learning.gif"
FRAMES_FILE = "frames.npz"
# what np.load raises on a damaged .npz: not a zip, a short read, a missing array
DAMAGED = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
MAX_FRAMES = 40          # frames in the GIF (taken evenly when more were recorded): ~1.6 MB
FPS = 6
HOLD_LAST = 2 * FPS      # the trained state stays on screen two seconds before the loop
DPI = 50                 # 8 x 4.6 inches -> 400 x 230 pixels: small enough for a phone


class Film:
    """The frames of one training run: steps, thetas (F, PANEL, P) of its ``transform``
    (a name of ``transformer.TRANSFORMS``, or a list of them, one per STN side by side:
    each frame then draws a box per STN), outputs as uint8."""

    def __init__(self, ckpt_dir, panel, input_shape, transform):
        self.path = os.path.join(ckpt_dir, FRAMES_FILE)
        self.panel = np.asarray(panel)                   # (PANEL, pixels), flat inputs
        self.input_shape = tuple(input_shape)            # (S, S, C)
        self.transform = transform
        self.kinds = list(transform) if isinstance(transform, (list, tuple)) else [transform]
        self.steps, self.thetas, self.outputs = [], [], []
        self.seconds = 0.0                               # spent recording, for the metrics

    def resume(self, step):
        """Take back the frames of the run so far (none after ``step``); a damaged file
        is said in one line and the film starts again from here."""
        if not os.path.exists(self.path):
            return
        try:
            with np.load(self.path) as saved:
                keep = saved["steps"] <= step
                self.steps = saved["steps"][keep].tolist()
                self.thetas = list(saved["thetas"][keep])
                self.outputs = list(saved["outputs"][keep])
        except DAMAGED as e:
            print(f"The frames in {self.path} are damaged ({e or type(e).__name__}); the "
                  "film starts again from this step.", flush=True)
            self.steps, self.thetas, self.outputs = [], [], []

    def add(self, step, theta, rectified):
        """One frame: theta (PANEL, P) and the STN's outputs (PANEL, h, w, C) in [0, 1]."""
        if self.steps and self.steps[-1] == step:
            return
        self.steps.append(step)
        self.thetas.append(np.asarray(theta, np.float32))
        self.outputs.append(np.round(np.clip(rectified, 0, 1) * 255).astype(np.uint8))

    def save(self):
        """Keep the frames beside the checkpoint (whole: Ctrl-C or a full disk never
        halves it)."""
        images.write_whole(self.path, lambda tmp: np.savez_compressed(
            tmp, steps=np.array(self.steps), thetas=np.array(self.thetas),
            outputs=np.array(self.outputs), panel=self.panel,
            input_shape=np.array(self.input_shape)))

    @classmethod
    def load(cls, ckpt_dir):
        """The frames a run kept in ``ckpt_dir``, of the transformer its config.json
        names. Raises checkpoints.CheckpointError without a readable config.json."""
        with np.load(os.path.join(ckpt_dir, FRAMES_FILE)) as saved:
            panel, input_shape = saved["panel"], saved["input_shape"].tolist()
        config = checkpoints.read_config(ckpt_dir)
        if config is None:
            raise checkpoints.CheckpointError(f"{ckpt_dir} has no {checkpoints.CONFIG_FILE} "
                                              "to say which transformer it filmed")
        film = cls(ckpt_dir, panel, input_shape, geometry.kinds(config))
        film.resume(float("inf"))
        return film

    def write_gif(self, path, total_steps, title="The STN learning", max_frames=MAX_FRAMES):
        """The animation as a GIF at ``path``; returns its path."""
        chosen = np.unique(np.linspace(0, len(self.steps) - 1,
                                       min(max_frames, len(self.steps))).round().astype(int))
        size = self.input_shape[0]
        inputs = figures.viewable(self.panel.reshape(-1, *self.input_shape))
        groups = len(self.kinds)

        def view(outputs):                  # uint8 outputs -> what imshow draws
            return figures.viewable(outputs / 255.0, groups)
        rows = -(-len(inputs) // PER_ROW)
        fig, axes = plt.subplots(2 * rows, PER_ROW, figsize=(8, 2.3 * rows), dpi=DPI,
                                 squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        boxes, shown = [], []               # boxes[i][k]: digit i's box of STN k
        first = view(self.outputs[chosen[0]])
        for i, image in enumerate(inputs):
            top, bottom = axes[2 * (i // PER_ROW), i % PER_ROW], \
                axes[2 * (i // PER_ROW) + 1, i % PER_ROW]
            top.imshow(image, cmap="gray", vmin=0, vmax=1)
            boxes.append([top.add_patch(Polygon(
                np.zeros((4, 2)), closed=True, fill=False, lw=1.5, clip_on=True,
                edgecolor=figures.BOX_COLORS[k % len(figures.BOX_COLORS)]))
                for k in range(groups)])
            shown.append(bottom.imshow(first[i], cmap="gray", vmin=0, vmax=1))
        heading = fig.suptitle("", fontsize=11)
        fig.tight_layout(pad=0.2, rect=(0, 0, 1, 0.88))

        # each distinct frame drawn once; the last one held on screen by its duration
        pictures = []
        for frame in chosen:
            corners = [geometry.sampled_box(theta, size, kind) for kind, theta in
                       zip(self.kinds, geometry.split(self.thetas[frame], self.kinds))]
            outputs = view(self.outputs[frame])
            for i, digit_boxes in enumerate(boxes):
                for k, box in enumerate(digit_boxes):
                    box.set_xy(corners[k][i])
                shown[i].set_data(outputs[i])
            heading.set_text(f"{title}: step {self.steps[frame]:,} of {total_steps:,}\n"
                             "inputs with the box each STN samples, its output below")
            fig.canvas.draw()
            pictures.append(Image.fromarray(np.array(fig.canvas.buffer_rgba())))
        plt.close(fig)
        durations = [1000 // FPS] * len(pictures)
        durations[-1] += HOLD_LAST * 1000 // FPS
        images.write_whole(path, lambda tmp: pictures[0].save(
            tmp, format="GIF", save_all=True, append_images=pictures[1:],
            duration=durations, loop=0))
        return path


def main(argv=None):
    parser = argparse.ArgumentParser(description="Draw a training run's learning.gif again "
                                                 "from the frames kept beside its checkpoint.")
    parser.add_argument("ckpt_dir", help="the run's checkpoint folder (holds frames.npz)")
    parser.add_argument("--out", default=None,
                        help="where to write the GIF (default: learning.gif in ckpt_dir)")
    parser.add_argument("--max-frames", type=int, default=MAX_FRAMES,
                        help="frames in the GIF, taken evenly (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.max_frames < 1:
        parser.error("--max-frames must be at least 1")
    try:
        film = Film.load(args.ckpt_dir)
    except checkpoints.CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except DAMAGED as e:
        print(f"error: no frames with their panel readable in {args.ckpt_dir} "
              f"({e or type(e).__name__})", file=sys.stderr)
        return 1
    if not film.steps:
        print(f"error: {args.ckpt_dir} holds no frames", file=sys.stderr)
        return 1
    metrics = os.path.join(args.ckpt_dir, "metrics.json")
    total = film.steps[-1]
    if os.path.exists(metrics):
        try:
            with open(metrics) as f:
                run = json.load(f)
            # "steps" is the step reached; a stopped run was given more ("planned_steps",
            # absent from older files)
            total = int(run.get("planned_steps", run["steps"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            print(f"error: cannot read the run's steps from {metrics} ({e}); remove it "
                  "to take them from the frames", file=sys.stderr)
            return 1
    path = film.write_gif(args.out or os.path.join(args.ckpt_dir, GIF_FILE), total,
                          max_frames=args.max_frames)
    print(f"Wrote {path}, {os.path.getsize(path) / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
