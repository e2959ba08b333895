"""The distorted MNIST of the STN paper (Jaderberg et al. 2015, arXiv 1506.02025, Appendix A).

What the paper did. Its MNIST experiments train and test on digits distorted in one of
several ways, each with a short name:

- R:   rotated by an angle drawn uniformly from [-90, +90] degrees;
- RTS: rotated by [-45, 45] degrees, scaled by [0.7, 1.2] and placed at a random position
       on a 42x42 canvas, all uniform;
- P:   projective: scaled by [0.75, 1.0], then the four corners of the digit moved by
       Gaussian noise of standard deviation 5 pixels;
- E:   elastically warped: scaled by [0.75, 1.0], then a thin-plate spline whose 16
       control points, on a 4x4 grid, are each moved by Gaussian noise of standard
       deviation 1.5 pixels (the paper's text only says "elastically warped"; these
       numbers are from transcriptions of its Appendix A);
- the cluttered variant: the digit at a random position on a 60x60 canvas with 6 clutter
  pieces, 6x6 crops of random MNIST digits, at random positions (DeepMind's
  ``mnist-cluttered`` generator).

How it is done here. Every warp is an inverse map: for every canvas pixel, NumPy computes
the point of the 28x28 digit it shows, in normalised coordinates (-1 and +1 are the centres
of the first and last pixel, as in ``transformer.py``), and the project's own
``transformer.bilinear_sampler`` reads the digits there in a small TF graph built once per
Distorter. Points outside the digit read 0 (black). For the affine kinds the map is a 2x3
matrix M per image, canvas (x, y, 1) -> digit (x, y), both normalised, which is what
``return_params=True`` hands back.

Where we differ from, or go beyond, the paper's short description:

- RTS: the paper only says "placed at a random location". Here the offset is uniform
  over every position that keeps the centre of each ink pixel (any pixel above
  INK_LEVEL) of the rotated, scaled digit on the canvas; the blank margins of its 28x28
  frame may leave it (an earlier version kept the whole frame on the canvas, which kept
  most digits near the centre).
- P: a quadrilateral of moved corners that is not convex (the digit would fold over
  itself) or has a corner nearly on the line through its neighbours (the homography
  would squash the digit into a sliver) is drawn again, so the noise is truncated: every
  interior angle lies between 30 and 150 degrees.
  Canvas points beyond the homography's horizon read 0.
- E: the spline is ``transformer.tps_grid_generator``'s, the one the TPS STN learns,
  run the way a sampler needs it: its control points sit on a 4x4 grid over the canvas
  (from edge pixel centre to edge pixel centre) and each reads the digit at its own
  place divided by the scale, plus the noise (in the digit's pixels). The noise moves
  where a control point reads, not where a point of the digit goes: the same spread of
  bend, drawn on the inverse map the sampler uses.
- simard: not the paper's. Simard et al. (2003)'s elastic distortion (uniform random
  displacements smoothed by a Gaussian of sigma = 4 px, scaled by alpha = 34 px), the
  E of this project's records before it had the paper's. The random field is drawn on a
  margin around the digit and smoothed without padding, so pixels at the border move as
  freely as those in the middle.
- clutter: the digit is placed, like RTS, anywhere its ink stays on the canvas (a whole
  pixel shift). Pieces are combined with the canvas by maximum (the digit's ink is never
  erased); DeepMind's generator adds and clips at 1. Pieces come from other digits of the
  same input (the batch, or the whole set for ``fixed_test_set``), not from all of MNIST.
  Crops are uniform over the 28x28 field, so some pieces are (nearly) blank, as there.

Training draws fresh distortions for every batch (call a Distorter on each batch); the
test set is distorted once with a fixed seed (``fixed_test_set``).

Beyond the paper, a curriculum: a Distorter's ``strength`` (1 = the protocol above) scales
every range towards "no distortion" (angles, the scale's distance from 1, offsets from
the centre, P's corner noise, E's control point noise, simard's displacements; clutter
keeps its pieces). Training can grow it from 0 to 1 over its first steps
(``training_inputs(..., ramp_steps)``), so the classifier first learns upright, centred
digits: then turning a digit upright lowers the loss, which is what teaches the STN to
do it. Test sets are always at strength 1.
"""
import numpy as np

import transformer
from mnist_stn.compat import tf
from mnist_stn.constants import IMAGE_PIXELS, IMAGE_SIZE

KINDS = ("none", "R", "RTS", "P", "E", "simard", "clutter")
CANVAS_SIZE = {"none": 28, "R": 28, "RTS": 42, "P": 28, "E": 28, "simard": 28,
               "clutter": 60}
# R: rotation range, degrees
R_MAX_ANGLE = 90.0
# RTS: rotation range (degrees) and scale range
RTS_MAX_ANGLE = 45.0
RTS_SCALE_RANGE = (0.7, 1.2)
# P: scale range about the centre, then corner noise (pixels, per coordinate)
P_SCALE_RANGE = (0.75, 1.0)
P_CORNER_SIGMA = 5.0
P_MAX_REDRAWS = 100          # attempts to get a well-shaped quadrilateral before giving up
# Every corner of the moved quadrilateral must turn by an angle whose sine is at least
# this (interior angles in 30..150 degrees): a corner nearly on the line through its
# neighbours makes a homography that squashes the digit into a sliver.
P_MIN_TURN_SIN = 0.5
# E: scale range, then the noise moving each control point of the 4x4 spline, pixels
E_SCALE_RANGE = (0.75, 1.0)
E_POINT_SIGMA = 1.5
# simard: Simard et al. 2003: Gaussian smoothing sigma and displacement scale, pixels
SIMARD_SIGMA = 4.0
SIMARD_ALPHA = 34.0
SIMARD_TRUNCATE = 4.0        # the Gaussian kernel reaches SIMARD_TRUNCATE * SIMARD_SIGMA px
# clutter: number of pieces and their side, pixels
CLUTTER_PIECES = 6
CLUTTER_PIECE_SIZE = 6

INK_LEVEL = 0.0              # a pixel brighter than this is ink (RTS and clutter placement)
FIXED_TEST_SEED = 1506       # the default seed of fixed_test_set
VALIDATION_SEED, TEST_SEED = 1, 2   # the seeds of the validation and test sets trained with
CHUNK = 1000                 # images per session run, to bound memory (random draws are
                             # made per chunk, so changing it changes the fixed test sets)

_OUTSIDE = 3.0               # a normalised coordinate well outside the digit: reads 0
_HALF = (IMAGE_SIZE - 1) / 2.0   # 13.5: pixels from the digit centre to its last pixel centre


def _rotation(angle):
    """(N,) radians -> (N, 2, 2) rotation in image coordinates (x right, y down).

    Counter-clockwise as seen in the picture for a positive angle: the point one pixel to
    the right of the centre goes to (cos a, -sin a), i.e. up when a = 90 degrees.
    """
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], -2)


def _similarity_matrix(angle, scale, offset, size):
    """M (N, 2, 3), canvas -> digit normalised, of a digit rotated by ``angle`` (N,)
    about its centre, scaled by ``scale`` (N,) and with its centre at ``offset`` (N, 2)
    pixels (x, y) from the centre of a ``size`` x ``size`` canvas.

    Forward (digit -> canvas, pixels from the centres): p_c = scale * R p_d + offset.
    Inverse: p_d = R^T (p_c - offset) / scale, with p = x_norm * (side - 1) / 2.
    """
    r_inv = np.swapaxes(_rotation(angle), 1, 2) / scale[:, None, None]   # (N, 2, 2)
    linear = r_inv * ((size - 1) / 2.0) / _HALF                           # (N, 2, 2)
    shift = -np.einsum("nij,nj->ni", r_inv, offset) / _HALF               # (N, 2)
    return np.concatenate([linear, shift[:, :, None]], axis=2)


def _canvas_grid(size):
    """Normalised x and y of every pixel centre of a size x size canvas: (size, size) each."""
    line = np.linspace(-1.0, 1.0, size)
    return np.meshgrid(line, line)


def _gaussian_matrix(size, sigma, truncate):
    """(size, size + 2 * radius) matrix G: G @ v smooths a line of size + 2r samples with a
    normalised Gaussian and keeps the ``size`` fully covered ones (no padding)."""
    radius = int(truncate * sigma + 0.5)
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    g = np.zeros((size, size + 2 * radius))
    for i in range(size):
        g[i, i:i + 2 * radius + 1] = kernel
    return g


class Distorter:
    """Distorts batches of MNIST digits one way, drawing fresh distortions on every call.

    Its random numbers come from its own ``np.random.RandomState(seed)``: the same seed
    gives the same sequence of distorted batches. Holds a TF session; ``close()`` it (or use
    ``with Distorter(...) as d``).
    """

    def __init__(self, kind, seed=None, strength=1.0):
        if kind not in KINDS:
            raise ValueError(f"unknown distortion {kind!r}; choose one of {', '.join(KINDS)}")
        self.kind = kind
        self.strength = strength     # 1: the protocol; 0: the digit as it is (see above)
        self.canvas_size = CANVAS_SIZE[kind]
        self._rng = np.random.RandomState(seed)
        self._grid = _canvas_grid(self.canvas_size)          # (S, S) x and y, normalised
        self._session = None
        if kind == "none":
            return                                           # nothing to sample
        size = self.canvas_size
        self._graph = tf.Graph()
        with self._graph.as_default():
            self._images = tf.placeholder(tf.float32, [None, IMAGE_SIZE, IMAGE_SIZE, 1])
            self._x = tf.placeholder(tf.float32, [None, size, size])
            self._y = tf.placeholder(tf.float32, [None, size, size])
            # (B, 28, 28, 1) read at (B, S, S) points -> (B, S, S, 1) -> (B, S*S)
            sampled = transformer.bilinear_sampler(self._images, self._x, self._y)
            self._out = tf.reshape(sampled, [-1, size * size])
            if kind == "E":   # (n, 32) control point moves -> (n, 2, S, S) points read
                self._moves = tf.placeholder(tf.float64, [None, 2 * transformer.TPS_GRID ** 2])
                self._spline = transformer.tps_grid_generator(size, size, self._moves)
                control = transformer.tps_control_points(dtype=tf.float64)   # (16, 2)
        self._session = tf.Session(graph=self._graph)
        if kind == "E":
            self._control = self._session.run(control)

    def __call__(self, images, return_params=False):
        """Distort ``images``.

        Args:
          images: float32 (N, 784) or (N, 28, 28) in [0, 1].
          return_params: also return what was drawn.

        Returns:
          float32 (N, S*S) in [0, 1], S = ``canvas_size``, flat whatever the input's shape;
          with ``return_params``, ``(out, params)``, params a dict of NumPy arrays:

          - 'none', 'R', 'RTS', 'clutter': 'matrix' (N, 2, 3), M mapping normalised canvas
            (x, y, 1) to normalised digit (x, y) (-1/+1: centres of the first/last pixel);
            'none', 'R', 'RTS': 'angle' (N,), radians, counter-clockwise as seen in the
            picture (x right, y down: a point right of the centre moves up).
          - 'RTS': 'scale' (N,); 'offset' (N, 2), pixels (x right, y down) from the canvas
            centre to the digit centre.
          - 'P': 'scale' (N,); 'corners' (N, 4, 2), canvas pixel (x, y) = (column, row)
            where the centres of the digit's top-left, top-right, bottom-right and
            bottom-left pixels went; 'homography' (N, 3, 3), canvas (x, y, 1) -> digit
            (x, y, w) in normalised coordinates (divide by w).
          - 'E': 'scale' (N,); 'noise' (N, 16, 2), pixels (x, y): how far each control
            point's reading moved, control points in ``transformer.tps_control_points``'s
            order; 'theta' (N, 32): the moves, normalised, as the TPS transformer takes
            them (canvas control point k reads the digit at its place plus theta_k).
          - 'simard': 'displacement' (N, 2, 28, 28), pixels (dx, dy): output pixel
            (row, col) shows the digit at (col + dx, row + dy).
          - 'clutter': 'position' (N, 2) int, (row, col) of the digit's top-left pixel on
            the canvas; 'pieces' (N, 6, 5) int, per piece (source image, source row,
            source col, canvas row, canvas col), rows/cols of the pieces' top-left pixels.
        """
        images = self._check(images)
        n, size = len(images), self.canvas_size
        if self.kind == "none":
            out = images.reshape(n, IMAGE_PIXELS).copy()
            params = {"angle": np.zeros(n), "matrix": np.tile(np.eye(2, 3), (n, 1, 1))}
            return (out, params) if return_params else out

        out = np.empty((n, size * size), np.float32)
        if n == 0:
            return (out, {}) if return_params else out
        draws = []
        for start in range(0, n, CHUNK):
            chunk = images[start:start + CHUNK]
            x, y, params = getattr(self, "_draw_" + self.kind)(chunk)
            out[start:start + len(chunk)] = self._sample(chunk, x, y)
            draws.append(params)
        params = {key: np.concatenate([d[key] for d in draws]) for key in draws[0]}
        if self.kind == "clutter":
            params["pieces"] = self._add_clutter(out, images)
        np.clip(out, 0.0, 1.0, out=out)
        return (out, params) if return_params else out

    def close(self):
        """Close the TF session; the Distorter cannot be used afterwards."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- helpers ---------------------------------------------------------------------

    def _toward(self, drawn, neutral):
        """``drawn`` moved towards ``neutral`` as ``strength`` says (exactly it at 1)."""
        if self.strength == 1.0:
            return drawn
        return neutral + self.strength * (drawn - neutral)

    def _check(self, images):
        images = np.asarray(images, np.float32)
        if images.ndim == 2 and images.shape[1] == IMAGE_PIXELS:
            images = images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"expected images of shape (N, {IMAGE_PIXELS}) or "
                             f"(N, {IMAGE_SIZE}, {IMAGE_SIZE}), got {images.shape}")
        if self.kind != "none" and self._session is None:
            raise ValueError("this Distorter has been closed")
        return images                                        # (N, 28, 28)

    def _sample(self, images, x, y):
        """Read images (n, 28, 28) at normalised x, y (n, S, S): (n, S*S) float32."""
        return self._session.run(self._out, {
            self._images: images[..., None], self._x: x.astype(np.float32),
            self._y: y.astype(np.float32)})

    def _apply_matrix(self, matrix):
        """The points (x, y), each (n, S, S), that canvas pixels read under M (n, 2, 3)."""
        gx, gy = self._grid                                  # (S, S) each
        m = matrix[:, :, :, None, None]                      # (n, 2, 3, 1, 1)
        return (m[:, 0, 0] * gx + m[:, 0, 1] * gy + m[:, 0, 2],
                m[:, 1, 0] * gx + m[:, 1, 1] * gy + m[:, 1, 2])

    def _draw_R(self, images):
        n = len(images)
        angle = self.strength * np.radians(self._rng.uniform(-R_MAX_ANGLE, R_MAX_ANGLE, n))
        matrix = _similarity_matrix(angle, np.ones(n), np.zeros((n, 2)), self.canvas_size)
        return (*self._apply_matrix(matrix), {"angle": angle, "matrix": matrix})

    def _draw_RTS(self, images):
        n, size = len(images), self.canvas_size
        angle = self.strength * np.radians(self._rng.uniform(-RTS_MAX_ANGLE, RTS_MAX_ANGLE, n))
        scale = self._toward(self._rng.uniform(*RTS_SCALE_RANGE, size=n), 1.0)
        # Where the ink goes once rotated and scaled about the digit's centre: (n, 784, 2)
        # pixel centres from the canvas centre, before the offset.
        points, ink = _ink_points(images)
        turned = np.einsum("nij,nkj->nki", scale[:, None, None] * _rotation(angle), points)
        lowest = np.where(ink[..., None], turned, np.inf).min(axis=1)      # (n, 2): x, y
        highest = np.where(ink[..., None], turned, -np.inf).max(axis=1)
        # Offsets that keep every ink pixel's centre on the canvas, drawn uniformly.
        half = (size - 1) / 2.0
        low, high = -half - lowest, half - highest
        offset = low + self._rng.uniform(0.0, 1.0, (n, 2)) * np.maximum(high - low, 0.0)
        offset = np.where(high >= low, offset, (low + high) / 2.0)   # too big: centred
        offset = offset * self.strength      # towards the centre, which keeps the ink on
        matrix = _similarity_matrix(angle, scale, offset, size)
        return (*self._apply_matrix(matrix),
                {"angle": angle, "matrix": matrix, "scale": scale, "offset": offset})

    def _draw_P(self, images):
        n = len(images)
        # Digit corners (TL, TR, BR, BL) in normalised digit coordinates: (4, 2)
        square = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
        scale = self._toward(self._rng.uniform(*P_SCALE_RANGE, size=n), 1.0)
        # Moved corners in canvas pixels from the centre: (n, 4, 2)
        moved = scale[:, None, None] * square * _HALF
        redo = np.arange(n)
        for _ in range(P_MAX_REDRAWS):
            moved[redo] = (scale[redo, None, None] * square * _HALF
                           + self.strength
                           * self._rng.normal(0.0, P_CORNER_SIGMA, (len(redo), 4, 2)))
            redo = np.flatnonzero(~_well_shaped(moved))
            if not len(redo):
                break
        else:
            raise RuntimeError("could not draw well-shaped corner quadrilaterals; "
                               f"P_CORNER_SIGMA = {P_CORNER_SIGMA} is too large")
        half_canvas = (self.canvas_size - 1) / 2.0
        homography = _homography(moved / half_canvas, square)  # (n, 3, 3) canvas -> digit
        gx, gy = self._grid
        h = homography[:, :, :, None, None]                    # (n, 3, 3, 1, 1)
        xw, yw, w = (h[:, i, 0] * gx + h[:, i, 1] * gy + h[:, i, 2] for i in range(3))
        # H is scaled so that w = 1 at the centre of the quadrilateral: w <= 0 lies beyond
        # the horizon, where the projection would show a mirrored digit.
        ahead = w > 1e-6
        safe_w = np.where(ahead, w, 1.0)
        x = np.where(ahead, xw / safe_w, _OUTSIDE)
        y = np.where(ahead, yw / safe_w, _OUTSIDE)
        corners = moved + half_canvas                          # pixel (col, row) indices
        return x, y, {"scale": scale, "corners": corners, "homography": homography}

    def _draw_E(self, images):
        n, count = len(images), transformer.TPS_GRID ** 2
        scale = self._toward(self._rng.uniform(*E_SCALE_RANGE, size=n), 1.0)
        noise = self.strength * self._rng.normal(0.0, E_POINT_SIGMA, (n, count, 2))
        # Each of the canvas's control points (K, 2), normalised like the digit (both are
        # 28x28), reads the digit at control / scale + noise: theta is that minus control.
        theta = self._control * (1.0 / scale[:, None, None] - 1.0) + noise / _HALF
        theta = theta.reshape(n, 2 * count)
        points = self._session.run(self._spline, {self._moves: theta})   # (n, 2, S, S)
        return points[:, 0], points[:, 1], {"scale": scale, "noise": noise, "theta": theta}

    def _draw_simard(self, images):
        n = len(images)
        g = _gaussian_matrix(IMAGE_SIZE, SIMARD_SIGMA, SIMARD_TRUNCATE)  # (28, 28 + 2r)
        side = g.shape[1]
        noise = self._rng.uniform(-1.0, 1.0, (n, 2, side, side))
        # smooth rows then columns: (n, 2, L, L) @ (L, 28) -> (n, 2, L, 28);
        # (28, L) @ (n, 2, L, 28) -> (n, 2, 28, 28)
        displacement = self.strength * SIMARD_ALPHA * (g @ (noise @ g.T))
        cols, rows = np.meshgrid(np.arange(IMAGE_SIZE), np.arange(IMAGE_SIZE))
        x = (cols + displacement[:, 0]) / _HALF - 1.0
        y = (rows + displacement[:, 1]) / _HALF - 1.0
        return x, y, {"displacement": displacement}

    def _draw_clutter(self, images):
        n, size = len(images), self.canvas_size
        room = size - IMAGE_SIZE
        # the ink's first and last row and column in the 28x28 frame: (n, 2) each
        first, last = _ink_box(images)
        # (n, 2) row, col of the frame's top-left pixel: any that keeps the ink on the
        # canvas, so the frame itself may hang over the edge
        position = self._rng.randint(-first, size - last)
        # towards the centred frame, in whole pixels
        position = np.rint(self._toward(position, room / 2.0)).astype(int)
        # a pure translation by the position: p_digit = p_canvas - (position - centre gap)
        offset = position[:, ::-1] - room / 2.0              # (n, 2): x, y pixels
        matrix = _similarity_matrix(np.zeros(n), np.ones(n), offset, self.canvas_size)
        return (*self._apply_matrix(matrix), {"position": position, "matrix": matrix})

    def _add_clutter(self, out, images):
        """Max-combine CLUTTER_PIECES crops of other ``images`` into ``out`` (n, S*S), in
        place. Returns the pieces (n, CLUTTER_PIECES, 5) as documented in __call__."""
        n, size, piece = len(out), self.canvas_size, CLUTTER_PIECE_SIZE
        canvas = out.reshape(n, size, size)
        if n > 1:   # another image: shift by 1..n-1 so a digit never clutters itself;
            # a single image can only be cluttered with pieces of itself
            source = (np.arange(n)[:, None]
                      + self._rng.randint(1, n, (n, CLUTTER_PIECES))) % n
        else:
            source = np.zeros((n, CLUTTER_PIECES), int)
        src_rc = self._rng.randint(0, IMAGE_SIZE - piece + 1, (n, CLUTTER_PIECES, 2))
        dst_rc = self._rng.randint(0, size - piece + 1, (n, CLUTTER_PIECES, 2))
        span = np.arange(piece)
        batch = np.arange(n)[:, None, None]                  # (n, 1, 1)
        for k in range(CLUTTER_PIECES):
            # (n, piece, piece) index arrays of the crop and of where it goes
            sr = (src_rc[:, k, 0, None] + span)[:, :, None]
            sc = (src_rc[:, k, 1, None] + span)[:, None, :]
            dr = (dst_rc[:, k, 0, None] + span)[:, :, None]
            dc = (dst_rc[:, k, 1, None] + span)[:, None, :]
            crop = images[source[:, k, None, None], sr, sc]
            canvas[batch, dr, dc] = np.maximum(canvas[batch, dr, dc], crop)
        return np.concatenate([source[:, :, None], src_rc, dst_rc], axis=2)


def _ink_points(images):
    """Every pixel centre of the 28x28 frame, (n, 784, 2) as (x, y) pixels from the
    frame's centre, and (n, 784) whether it holds ink; a blank digit counts every pixel
    (its whole frame is placed)."""
    ink = images.reshape(len(images), -1) > INK_LEVEL
    ink[~ink.any(axis=1)] = True
    rows, cols = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    points = np.stack([cols.ravel() - _HALF, rows.ravel() - _HALF], axis=1)
    return np.broadcast_to(points, (len(images),) + points.shape), ink


def _ink_box(images):
    """First and last (row, col) holding ink per digit, (n, 2) each; the whole frame for
    a blank digit."""
    ink = images.reshape(len(images), IMAGE_SIZE, IMAGE_SIZE) > INK_LEVEL
    blank = ~ink.any(axis=(1, 2))
    ink[blank] = True
    lines = (ink.any(axis=2), ink.any(axis=1))                       # rows, cols: (n, 28)
    first = np.stack([line.argmax(axis=1) for line in lines], axis=1)
    last = np.stack([IMAGE_SIZE - 1 - line[:, ::-1].argmax(axis=1) for line in lines], axis=1)
    return first, last


def _well_shaped(quads):
    """(n, 4, 2) quadrilaterals, corners in order TL, TR, BR, BL (y down) -> (n,) bool:
    convex, in that order (every turn clockwise as seen, like the square's), and no
    corner nearly straight (the sine of every turn at least P_MIN_TURN_SIN)."""
    edges = np.roll(quads, -1, axis=1) - quads               # (n, 4, 2)
    nxt = np.roll(edges, -1, axis=1)
    turn = edges[..., 0] * nxt[..., 1] - edges[..., 1] * nxt[..., 0]
    lengths = np.linalg.norm(edges, axis=2) * np.linalg.norm(nxt, axis=2)
    return np.all(turn >= P_MIN_TURN_SIN * lengths, axis=1)


def _homography(src, dst):
    """(n, 3, 3) H with H (src, 1) ~ (dst, 1) for 4 point pairs src, dst (n, 4, 2),
    scaled so that w = 1 at the mean of the src points (so w > 0 inside the quad)."""
    n = len(src)
    dst = np.broadcast_to(dst, src.shape)
    x, y = src[..., 0], src[..., 1]                          # (n, 4)
    u, v = dst[..., 0], dst[..., 1]
    zero, one = np.zeros_like(x), np.ones_like(x)
    # two equations per pair, h33 = 1: (n, 8, 8) a @ h = b
    rows_u = np.stack([x, y, one, zero, zero, zero, -u * x, -u * y], -1)
    rows_v = np.stack([zero, zero, zero, x, y, one, -v * x, -v * y], -1)
    a = np.concatenate([rows_u, rows_v], axis=1)
    b = np.concatenate([u, v], axis=1)
    h = np.concatenate([np.linalg.solve(a, b[..., None])[..., 0], np.ones((n, 1))], axis=1)
    h = h.reshape(n, 3, 3)
    centre = np.concatenate([src.mean(axis=1), np.ones((n, 1))], axis=1)   # (n, 3)
    return h / (h[:, 2] * centre).sum(axis=1)[:, None, None]


def fixed_test_set(images, kind, seed=FIXED_TEST_SEED):
    """The distorted test set: ``images`` (N, 784) distorted by ``kind`` with a fixed seed.

    Same images, kind and seed give identical bytes. Returns float32 (N, S*S).
    """
    with Distorter(kind, seed=seed) as distorter:
        return distorter(images)


def eval_images(dataset, kind, seed):
    """A DataSet's images as a model of ``kind`` is tested on: fixed distortions."""
    if kind == "none":
        return dataset.images
    return fixed_test_set(dataset.images, kind, seed=seed)


class Ramp:
    """A Distorter whose strength grows linearly from 0 to 1 (the protocol) over
    ``ramp_steps`` calls (one call a training step), starting at ``step``; called like
    the Distorter."""

    def __init__(self, distorter, step, ramp_steps):
        self.distorter, self.step, self.ramp_steps = distorter, step, ramp_steps

    def __call__(self, images):
        self.step += 1
        self.distorter.strength = min(1.0, self.step / self.ramp_steps)
        return self.distorter(images)

    def close(self):
        self.distorter.close()


def training_inputs(datasets, kind, seed=0, ramp_steps=0):
    """The data arguments of ``training.fit`` for MNIST distorted by ``kind``.

    Training batches get fresh distortions (a Distorter seeded by ``seed`` and the
    step a run starts from, so a resumed run draws new ones); the validation and test
    sets are distorted once, with fixed seeds, so numbers compare between runs. With
    ``ramp_steps`` the training distortions grow from none to full over that many
    first steps (the curriculum of the module docstring).
    """
    def make_augment(step):
        distorter = Distorter(kind, seed=seed * 1000003 + step)
        return Ramp(distorter, step, ramp_steps) if ramp_steps else distorter
    return {"train_set": datasets.train,
            "validation": (eval_images(datasets.validation, kind, VALIDATION_SEED),
                           datasets.validation.labels),
            "test": (eval_images(datasets.test, kind, TEST_SEED), datasets.test.labels),
            "make_augment": None if kind == "none" else make_augment}
