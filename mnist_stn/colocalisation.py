"""The data and the score of the STN paper's co-localisation (its Appendix A.2).

For one digit class, images of that class are placed at random on a larger canvas,
uniformly over every position where their 28x28 frame fits (T); with clutter (TC),
16 random 6x6 crops of other training digits go on the canvas too, combined by
maximum as the distortions' clutter is. An attention transformer learns, from these
images alone, a window on each: the triplet loss of ``model.triplet_loss`` pulls the
windows of different images together in the clean classifier's embedding and pushes
each away from a random window of its own image. No class or box label reaches it.

The score is the paper's: the share of images whose window overlaps the digit's true
box, its 28x28 frame on the canvas, with an intersection over union above 0.5.
"""
import numpy as np

from mnist_stn.constants import IMAGE_SIZE, PIXEL_SCALE

CANVAS = 84                  # the paper's canvas: three digits wide
PER_CLASS = 100              # images of each class, as the paper's
CLUTTER_PIECES = 16
CLUTTER_SIZE = 6
HIT_IOU = 0.5                # a window on its digit overlaps its frame by more than this


def class_images(dataset, digit, count=PER_CLASS, seed=0):
    """``count`` images of one class from a data.DataSet, chosen with ``seed``:
    (count, 784) float32 in [0, 1]."""
    chosen = np.flatnonzero(dataset.labels == digit)
    if len(chosen) < count:
        raise ValueError(f"the set holds {len(chosen)} images of {digit}, fewer than {count}")
    picked = np.random.RandomState(seed).choice(chosen, count, replace=False)
    return dataset.images[np.sort(picked)]


def place(digits, clutter_from=None, size=CANVAS, seed=0):
    """Digits on canvases, each at a random position; with ``clutter_from`` (N', 784)
    images, CLUTTER_PIECES crops of them on each canvas too.

    Returns ((N, size*size) float32 canvases in [0, 1], (N, 2) int64 the top-left pixel
    (x, y) of each digit's 28x28 frame).
    """
    rng = np.random.RandomState(seed)
    digits = np.asarray(digits, np.float32).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    count = len(digits)
    canvases = np.zeros((count, size, size), np.float32)
    corners = rng.randint(0, size - IMAGE_SIZE + 1, size=(count, 2))      # (x, y)
    for canvas, digit, (x, y) in zip(canvases, digits, corners):
        canvas[y:y + IMAGE_SIZE, x:x + IMAGE_SIZE] = digit
    if clutter_from is not None:
        sources = np.asarray(clutter_from, np.float32).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
        for canvas in canvases:
            for _ in range(CLUTTER_PIECES):
                source = sources[rng.randint(len(sources))]
                row, col = rng.randint(0, IMAGE_SIZE - CLUTTER_SIZE + 1, size=2)
                y, x = rng.randint(0, size - CLUTTER_SIZE + 1, size=2)
                piece = source[row:row + CLUTTER_SIZE, col:col + CLUTTER_SIZE]
                np.maximum(canvas[y:y + CLUTTER_SIZE, x:x + CLUTTER_SIZE], piece,
                           out=canvas[y:y + CLUTTER_SIZE, x:x + CLUTTER_SIZE])
    return canvases.reshape(count, -1), corners.astype(np.int64)


def class_set(dataset, digit, clutter, seed=0, count=PER_CLASS):
    """The canvases of one class to co-localise, from a data.DataSet: ((N, 84*84) in
    [0, 1], (N, 2) frame corners). Clutter comes from the set's images of other classes."""
    digits = class_images(dataset, digit, count, seed)
    others = dataset.images[dataset.labels != digit] if clutter else None
    return place(digits, others, seed=seed * 10 + digit)


def scaled(canvases):
    """Canvases in [0, 1] as data.DataSet takes images: in 0..255."""
    return np.asarray(canvases) * PIXEL_SCALE


def window_boxes(thetas, size=CANVAS):
    """(N, 3) attention windows (s, t_x, t_y) -> (N, 4) boxes (x0, y0, x1, y1) in pixels,
    0 the centre of the first pixel, as ``model.window_boxes``."""
    scale, shift_x, shift_y = np.asarray(thetas, np.float64).reshape(-1, 3).T
    half = scale * (size - 1) / 2.0
    centre_x, centre_y = (shift_x + 1) * (size - 1) / 2.0, (shift_y + 1) * (size - 1) / 2.0
    return np.stack([centre_x - half, centre_y - half, centre_x + half, centre_y + half], 1)


def frame_boxes(corners):
    """(N, 2) top-left pixels -> (N, 4) boxes of the 28x28 frames, pixel centres."""
    corners = np.asarray(corners, np.float64)
    return np.concatenate([corners, corners + IMAGE_SIZE - 1], axis=1)


def iou(a, b):
    """Intersection over union of (N, 4) boxes (x0, y0, x1, y1), row by row: (N,)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    width = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    height = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = width * height
    union = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
             + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter)
    return inter / np.maximum(union, 1e-12)
