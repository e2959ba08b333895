"""The tutorial's picture: original images on top, the STN's output below."""
import textwrap

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402
import numpy as np  # noqa: E402

from mnist_stn import images  # noqa: E402

MISTAKE_COLOR = "#d62728"
BOX_COLOR = "#1f9bff"
BOX_COLORS = (BOX_COLOR, "#ff8c1a", "#2ca02c", "#9467bd")   # one per STN side by side
CORRECT_COLOR = "black"
# two channels as one picture: channel 1 magenta, channel 2 green (white where both)
CHANNEL_COLORS = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
GAP = 1                # pixels between the outputs of STNs side by side


MIN_WIDTH = 4.0        # inches: room for a title over even a single image
CHARS_PER_INCH = 11    # at the title's font size, to wrap it to the figure


def save_grid(path, originals, rectified, predictions, *args, **kwargs):
    """Write ``grid_figure``'s picture to the PNG file ``path``."""
    fig = grid_figure(originals, rectified, predictions, *args, **kwargs)
    try:
        images.write_whole(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)


def grid_figure(originals, rectified, predictions, labels=None, per_row=10,
                title=None, boxes=None, lower_label="STN", notes=None, groups=1):
    """A figure of digit pairs: each original above its rectified version.

    Args:
      originals, rectified: (N, H, W), (N, H, W, 1) or RGB (N, H, W, 3) images in
        [0, 1], or two channels (N, H, W, 2), drawn in CHANNEL_COLORS; ``rectified``
        may hold the outputs of ``groups`` STNs side by side as channels.
      predictions: (N,) predicted class names, printed over the
        rectified images.
      labels: optional (N,) true classes; a wrong prediction is drawn in red with the
        true class after it, and its rectified image gets a red frame.
      per_row: digits per row pair.
      title: optional figure title.
      boxes: optional (N, P, 2) pixel (x, y) outline of the region the STN sampled,
        drawn on the originals; or a list of them, one per STN, in BOX_COLORS.
      lower_label: names the lower row ("STN"; for a model without one, e.g. "CNN").
      notes: optional (N,) short texts printed under each prediction (what the STN
        did: "31°cw 1.4x").
      groups: how many STNs' outputs ``rectified`` holds, drawn side by side.
    """
    originals = viewable(originals)
    rectified = viewable(rectified, groups)
    if boxes is not None and not isinstance(boxes, list):
        boxes = [boxes]
    count = len(originals)
    if count == 0:
        raise ValueError("save_grid needs at least one image")
    cols = min(per_row, count)
    pairs = -(-count // cols)                  # ceiling division: rows of pairs
    width = max(1.0 * cols, MIN_WIDTH)
    if title:
        title = textwrap.fill(title, int(width * CHARS_PER_INCH))
    title_height = 0.2 * (title.count("\n") + 2) if title else 0
    note_height = 0.25 * pairs if notes is not None else 0
    fig, axes = plt.subplots(2 * pairs, cols, squeeze=False,
                             figsize=(width, 2.3 * pairs + title_height + note_height))
    for ax in axes.flat:
        ax.axis("off")
    for i in range(count):
        row, col = 2 * (i // cols), i % cols
        top, bottom = axes[row, col], axes[row + 1, col]
        top.imshow(originals[i], cmap="gray", vmin=0, vmax=1)
        for k, outline in enumerate(boxes or []):
            # draw without letting the box rescale the axes: a box may leave the image
            top.add_patch(Polygon(outline[i], closed=True, fill=False, lw=1,
                                  edgecolor=BOX_COLORS[k % len(BOX_COLORS)], clip_on=True))
        bottom.imshow(rectified[i], cmap="gray", vmin=0, vmax=1)
        wrong = labels is not None and predictions[i] != labels[i]
        text = f"{predictions[i]}" + (f" (true {labels[i]})" if wrong else "")
        if notes is not None:
            text += f"\n{notes[i]}"
        bottom.set_title(text, fontsize=8, pad=2,
                         color=MISTAKE_COLOR if wrong else CORRECT_COLOR)
        if wrong:
            bottom.axis("on")
            bottom.set_xticks([])
            bottom.set_yticks([])
            for spine in bottom.spines.values():
                spine.set_color(MISTAKE_COLOR)
                spine.set_linewidth(2)
    axes[0, 0].text(-0.15, 0.5, "input", transform=axes[0, 0].transAxes,
                    rotation=90, va="center", ha="right", fontsize=8)
    axes[1, 0].text(-0.15, 0.5, lower_label, transform=axes[1, 0].transAxes,
                    rotation=90, va="center", ha="right", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.3)
    return fig


def viewable(images, groups=1):
    """Images as imshow draws them: (N, H, W, 1) or (N, H, W) -> (N, H, W) gray; RGB
    (N, H, W, 3) stays RGB; two channels (N, H, W, 2) -> RGB in CHANNEL_COLORS; the
    outputs of ``groups`` STNs of two channels each, (N, H, W, 2 * groups) -> RGB,
    side by side, GAP pixels of gray between them.

    Clipped to [0, 1]: bilinear sampling can overshoot 1 by a rounding error, which
    matplotlib would warn about for RGB.
    """
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    if images.ndim == 4 and images.shape[-1] == 1:
        return images[..., 0]
    if images.ndim < 4 or (images.shape[-1] == 3 and groups == 1):
        return images
    n, h, w, channels = images.shape
    # (N, H, W, G*C) -> (N, H, W, G, C) @ (C, 3) -> (N, H, W, G, 3): each STN in colour
    coloured = np.clip(images.reshape(n, h, w, groups, channels // groups)
                       @ CHANNEL_COLORS[:channels // groups], 0.0, 1.0)
    gap = np.full((n, h, GAP, 3), 0.5, np.float32)
    parts = [part for g in range(groups) for part in ((gap,) if g else ()) + (coloured[:, :, :, g],)]
    return np.concatenate(parts, axis=2)
