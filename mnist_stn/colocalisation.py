"""The data and the score of the STN paper's co-localisation (its Appendix A.2).

For one digit class, images of that class are placed at random on a larger canvas,
uniformly over every position where their 28x28 frame fits (T); with clutter (TC),
16 random 6x6 crops of other training digits go on the canvas too, combined by
maximum as the distortions' clutter is. An attention transformer learns, from these
images alone, a window on each: the triplet loss of ``model.triplet_loss`` pulls the
windows of different images together in the clean classifier's embedding and pushes
each away from a random window of its own image. No class or box label reaches it.

The score is the paper's: the share of images whose window overlaps the digit's true
box with an intersection over union above 0.5. The true box is the digit's 28x28 frame
on the canvas, where it was placed; ``ink_boxes`` gives the tighter box of its ink
(MNIST's digits fill about 20x20 pixels of the frame), a stricter score.
"""
import numpy as np

from mnist_stn.constants import IMAGE_SIZE
from mnist_stn.distort import INK_LEVEL

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


def layout(count, clutter_from=None, size=CANVAS, seed=0):
    """Where ``count`` digits go, and what lies around them: ((count, 2) int64 the top-
    left pixel (x, y) of each digit's 28x28 frame, uniform where it fits; (count, size,
    size) backgrounds, blank, or with CLUTTER_PIECES crops of the (N', 784) images
    ``clutter_from``)."""
    rng = np.random.RandomState(seed)
    corners = rng.randint(0, size - IMAGE_SIZE + 1, size=(count, 2)).astype(np.int64)
    backgrounds = np.zeros((count, size, size), np.float32)
    if clutter_from is not None:
        sources = np.asarray(clutter_from, np.float32).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
        for background in backgrounds:
            for _ in range(CLUTTER_PIECES):
                source = sources[rng.randint(len(sources))]
                row, col = rng.randint(0, IMAGE_SIZE - CLUTTER_SIZE + 1, size=2)
                y, x = rng.randint(0, size - CLUTTER_SIZE + 1, size=2)
                piece = source[row:row + CLUTTER_SIZE, col:col + CLUTTER_SIZE]
                np.maximum(background[y:y + CLUTTER_SIZE, x:x + CLUTTER_SIZE], piece,
                           out=background[y:y + CLUTTER_SIZE, x:x + CLUTTER_SIZE])
    return corners, backgrounds


def compose(digits, corners, backgrounds):
    """Each digit (N, 784) at its corner (N, 2) on its background (N, S, S), combined by
    maximum (the digit's ink is never erased): ((N, S*S) float32 canvases, (N, 4) int64
    each digit's box (x0, y0, x1, y1), the first and last column and row of its frame)."""
    digits = np.asarray(digits, np.float32).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    canvases = np.array(backgrounds, np.float32)
    for canvas, digit, (x, y) in zip(canvases, digits, corners):
        np.maximum(canvas[y:y + IMAGE_SIZE, x:x + IMAGE_SIZE], digit,
                   out=canvas[y:y + IMAGE_SIZE, x:x + IMAGE_SIZE])
    return canvases.reshape(len(canvases), -1), frame_boxes(corners)


def frame_boxes(corners):
    """(N, 2) top-left pixels (x, y) -> (N, 4) int64 boxes of the 28x28 frames there."""
    corners = np.asarray(corners, np.int64)
    return np.concatenate([corners, corners + IMAGE_SIZE - 1], axis=1)


def place(digits, clutter_from=None, size=CANVAS, seed=0):
    """Digits on canvases, each at a random position; with ``clutter_from`` (N', 784)
    images, CLUTTER_PIECES crops of them on each canvas too: ``compose``'s canvases and
    boxes."""
    return compose(digits, *layout(len(digits), clutter_from, size, seed))


class Gathering:
    """The training batches of one class's canvases, with a curriculum: over the first
    ``ramp_steps`` batches each digit moves from the centre of the canvas out to its
    place (the clutter stays), so the window first follows digits it can see, then
    finds them anywhere; from then on the canvases are the set's own. Like a
    data.DataSet: ``next_batch(n)`` -> (canvases (n, S*S), boxes (n, 4)), each image once
    per epoch, shuffled with ``seed``."""

    def __init__(self, digits, corners, backgrounds, ramp_steps=0, seed=0):
        self.digits, self.corners, self.backgrounds = digits, corners, backgrounds
        self.ramp_steps, self.step = ramp_steps, 0
        self._rng = np.random.RandomState(seed)
        self._order = []
        self.centre = (backgrounds.shape[1] - IMAGE_SIZE) // 2

    @property
    def num_examples(self):
        return len(self.digits)

    def next_batch(self, batch_size):
        while len(self._order) < batch_size:
            self._order = np.concatenate([self._order, self._rng.permutation(
                self.num_examples)]).astype(int)
        picked, self._order = self._order[:batch_size], self._order[batch_size:]
        self.step += 1
        strength = min(1.0, self.step / self.ramp_steps) if self.ramp_steps else 1.0
        corners = np.round(self.centre + strength * (self.corners[picked] - self.centre))
        return compose(self.digits[picked], corners.astype(np.int64),
                       self.backgrounds[picked])


def ink_boxes(digits, corners):
    """(N, 784) digits at (N, 2) corners -> (N, 4) int64 boxes (x0, y0, x1, y1) of their
    ink on the canvas (a blank digit: its whole frame)."""
    digits = np.asarray(digits).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    boxes = np.tile(np.array([0, 0, IMAGE_SIZE - 1, IMAGE_SIZE - 1], np.int64), (len(digits), 1))
    for box, digit in zip(boxes, digits):
        rows, cols = np.flatnonzero((digit > INK_LEVEL).any(1)), np.flatnonzero(
            (digit > INK_LEVEL).any(0))
        if len(rows):
            box[:] = cols[0], rows[0], cols[-1], rows[-1]
    return boxes + np.tile(np.asarray(corners, np.int64), 2)


def class_set(dataset, digit, clutter, seed=0, count=PER_CLASS):
    """The digits of one class to co-localise and their scenes, from a data.DataSet:
    (digits (N, 784), corners (N, 2), backgrounds (N, 84, 84)), for ``compose`` and
    ``Gathering``. Clutter comes from the set's images of other classes."""
    digits = class_images(dataset, digit, count, seed)
    others = dataset.images[dataset.labels != digit] if clutter else None
    return (digits, *layout(len(digits), others, seed=seed * 10 + digit))


def window_boxes(thetas, size=CANVAS):
    """(N, 3) attention windows (s, t_x, t_y) -> (N, 4) boxes (x0, y0, x1, y1) in pixels,
    0 the centre of the first pixel, as ``model.window_boxes``."""
    scale, shift_x, shift_y = np.asarray(thetas, np.float64).reshape(-1, 3).T
    half = scale * (size - 1) / 2.0
    centre_x, centre_y = (shift_x + 1) * (size - 1) / 2.0, (shift_y + 1) * (size - 1) / 2.0
    return np.stack([centre_x - half, centre_y - half, centre_x + half, centre_y + half], 1)


def iou(a, b):
    """Intersection over union of (N, 4) boxes (x0, y0, x1, y1), row by row: (N,)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    width = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    height = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = width * height
    union = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
             + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter)
    return inter / np.maximum(union, 1e-12)
