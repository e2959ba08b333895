"""Spatial Transformer Network layer (Jaderberg et al. 2015, arXiv 1506.02025).

The tutorial this project ports took this layer from a public TF1 implementation and
used it unchanged. The public functions and their signatures are kept; two bugs in the
sampler are fixed, because with them the identity theta does not return the input:

1. Rescaling. The grid runs over ``linspace(-1, 1)``: -1 is the centre of the first pixel
   and +1 the centre of the last, so a normalised x maps to pixel ``(x + 1) / 2 * (W - 1)``.
   The original multiplied by ``W - 2``, shrinking every image by one pixel towards the
   top-left corner.
2. Weights after clipping. The original clipped the corner indices to the image and then
   computed the bilinear weights from the clipped indices. For a point on the last row or
   column ``x1`` was clipped onto ``x0``, both weights became 0, and the pixel came out
   black. Here the weights come from the unclipped corners, and a corner outside the
   image reads 0 (zero padding), so samples outside the image fade to 0.

Also changed: the sampler computes in the dtype of its inputs (float32 in the model,
float64 lets tests compare gradients with finite differences), the output keeps the
static shape when it is known, so layers after it can be built without reshapes, and a
non-finite sampling point (a NaN or infinite theta) reads 0 instead of crashing the
gather with an out-of-range index.

Beyond the tutorial, the STN paper's other transformers feed the same sampler:
``projective_grid_generator`` (a homography, 8 parameters), ``tps_grid_generator``
(a thin-plate spline through 4x4 control points) and ``attention_grid_generator`` (a
square window: one scale and a shift, 3 parameters, the paper's co-localisation). ``TRANSFORMS``, at the end of the
file, declares every transformer once: how many parameters it takes, its identity and
its grid generator. ``spatial_transformer_network``'s ``transform`` picks one by name;
the affine warp stays the default and unchanged.

This file imports nothing but TensorFlow, so it can be copied out alone. It is written
with ``tf.compat.v1`` names and runs both ways: in a TF1 graph (the rest of this project
calls ``tf.compat.v1.disable_v2_behavior()`` in ``mnist_stn/compat.py``) and eagerly on
TensorFlow 2, inside a Keras layer (the README shows one).
"""
import tensorflow.compat.v1 as tf

# theta of "no change": the rows [[1, 0, 0], [0, 1, 0]] map each output point onto itself
IDENTITY_THETA = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
TPS_GRID = 4                 # the STN paper's thin-plate spline: 4x4 control points
# |w| below this: the output point maps to the projective horizon or beyond it, and
# reads 0 (a point behind the camera is not in the image)
HORIZON = 1e-6


def spatial_transformer_network(input_fmap, theta, out_dims=None, transform="affine",
                                **kwargs):
    """Warp ``input_fmap`` with the transforms ``theta``.

    The layer is composed of three parts:

    - localization net (in ``model.py``): looks at the image and outputs the
      parameters of a transform, ``theta``.
    - a grid generator: for every output pixel, the point of the input (in
      normalised coordinates) that it should show: ``affine_grid_generator``,
      ``projective_grid_generator`` or ``tps_grid_generator``.
    - ``bilinear_sampler``: reads the input at those points with bilinear
      interpolation.

    Args:
      input_fmap: images or feature maps, (B, H, W, C).
      theta: (B, P), P the transformer's ``TRANSFORMS[transform].size``: for
        "affine", (B, 6) or (B, 2, 3), the rows of the 2x3 matrix that maps an output
        point ``(x_t, y_t, 1)`` to the input point ``(x_s, y_s)`` it samples; for
        "projective", (B, 8); for "tps", (B, 2K); for "attention", (B, 3) (see the
        generators).
      out_dims: optional ``[out_H, out_W]``; defaults to the input size.
      transform: a name of ``TRANSFORMS``: "affine" (the tutorial's), "projective",
        "tps" or "attention".
      **kwargs: accepted and ignored, as in the original layer.

    Returns:
      The transformed maps, (B, out_H, out_W, C).
    """
    B = tf.shape(input_fmap)[0]
    H = _dim(input_fmap, 1)
    W = _dim(input_fmap, 2)

    if out_dims:
        out_H, out_W = out_dims[0], out_dims[1]
    else:
        out_H, out_W = H, W
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {', '.join(TRANSFORMS)}, "
                         f"not {transform!r}")
    kind = TRANSFORMS[transform]
    # (B, ...) -> (B, P) -> (B, 2, out_H, out_W): the x and y of the input point behind
    # each output pixel
    batch_grids = kind.grid(out_H, out_W, tf.reshape(theta, [B, kind.size]))

    # (B, 2, h, w) -> (B, h, w) each (unstack: its gradient is cheap, a slice's is not)
    x_s, y_s = tf.unstack(batch_grids, axis=1)

    # (B, H, W, C) sampled at (B, out_H, out_W) points -> (B, out_H, out_W, C)
    return bilinear_sampler(input_fmap, x_s, y_s)


def get_pixel_value(img, x, y):
    """Read ``img`` at integer pixel coordinates.

    Args:
      img: (B, H, W, C).
      x, y: int32 (B, h, w): column and row of the pixel to read, per batch item;
        they must lie inside the image.

    Returns:
      (B, h, w, C): ``img[b, y[b, i, j], x[b, i, j], :]``.
    """
    img_shape = tf.shape(img)
    height, width = img_shape[1], img_shape[2]
    channels = _dim(img, 3)

    # One flat index is much cheaper than gather_nd on stacked (b, y, x) triples:
    # (B, H, W, C) -> (B*H*W, C), and (b, y, x) -> b*H*W + y*W + x.
    batch_idx = tf.range(tf.shape(x)[0])
    batch_idx = tf.reshape(batch_idx * (height * width), (-1, 1, 1))
    flat_idx = batch_idx + y * width + x
    flat_img = tf.reshape(img, tf.stack([-1, channels]))
    # (B, h, w) indices -> (B, h, w, C)
    return _gather_rows(flat_img, flat_idx)


@tf.custom_gradient
def _gather_rows(rows, index):
    """``tf.gather(rows, index)``, read by ``gather_nd``, which is faster on the CPU.

    gather_nd's own gradient is a dense scatter, slower than gather's segment sum, so
    the gradient is gather's: each row gets the sum of the gradients of its reads."""
    def grad(d_out):
        # (B, h, w, C) -> (B*h*w, C), summed into the (B*H*W, C) rows
        d_out = tf.reshape(d_out, tf.stack([-1, tf.shape(rows)[1]]))
        return tf.math.unsorted_segment_sum(d_out, tf.reshape(index, [-1]),
                                            tf.shape(rows)[0]), None

    return tf.gather_nd(rows, tf.expand_dims(index, -1)), grad


def affine_grid_generator(height, width, theta):
    """Sampling points of an affine warp.

    Args:
      height, width: size of the output grid (ints or scalar int tensors); larger
        or smaller than the input to up- or down-sample.
      theta: (B, 2, 3) affine matrices, float.

    Returns:
      (B, 2, height, width): for every output pixel, the (x, y) point of the input
      it samples, in normalised coordinates where -1 and +1 are the centres of the
      first and last pixel.
    """
    num_batch = tf.shape(theta)[0]
    dtype = theta.dtype if theta.dtype.is_floating else tf.float32
    theta = tf.cast(theta, dtype)

    # the regular output grid in homogeneous coordinates (x_t, y_t, 1), (1, 3, h*w):
    # the product broadcasts it over the batch (no copies)
    sampling_grid = _output_points(height, width, dtype)

    # (B, 2, 3) @ (1, 3, h*w) -> (B, 2, h*w) -> (B, 2, h, w)
    batch_grids = tf.matmul(theta, sampling_grid)
    return tf.reshape(batch_grids, [num_batch, 2, height, width])


def projective_grid_generator(height, width, theta):
    """Sampling points of a projective warp (a homography).

    Each output point ``(x_t, y_t, 1)`` maps to ``(X, Y, w) = H (x_t, y_t, 1)`` and
    samples the input at ``(X / w, Y / w)``. H's last entry is fixed to 1, leaving
    eight parameters: with a last row of (0, 0, 1) this is the affine warp of the same
    six numbers, exactly (the division is by 1). A point at or beyond the horizon
    (``w <= HORIZON``) gets an infinite coordinate, which the sampler reads as 0.

    Args:
      height, width: size of the output grid (ints or scalar int tensors).
      theta: (B, 8), H's entries row by row without the last, float.

    Returns:
      (B, 2, height, width): for every output pixel, the (x, y) point of the input
      it samples, in normalised coordinates as ``affine_grid_generator``'s.
    """
    num_batch = tf.shape(theta)[0]
    dtype = theta.dtype if theta.dtype.is_floating else tf.float32
    theta = tf.cast(theta, dtype)
    # (B, 8) + 1 -> (B, 9) -> (B, 3, 3)
    matrix = tf.reshape(tf.concat([theta, tf.ones([num_batch, 1], dtype)], axis=1),
                        [num_batch, 3, 3])
    # (B, 3, 3) @ (1, 3, h*w) -> (B, 3, h*w): X, Y, w of every output point
    X, Y, w = tf.unstack(tf.matmul(matrix, _output_points(height, width, dtype)), axis=1)
    ahead = w > HORIZON
    # divide by 1 where the point is not ahead, so no NaN reaches either branch's
    # gradient; those points then go to infinity, which the sampler reads as 0
    safe_w = tf.where(ahead, w, tf.ones_like(w))
    far = tf.fill(tf.shape(w), tf.constant(float("inf"), dtype))
    x_s = tf.where(ahead, X / safe_w, far)
    y_s = tf.where(ahead, Y / safe_w, far)
    # (B, h*w) each -> (B, 2, h, w)
    return tf.reshape(tf.stack([x_s, y_s], axis=1), [num_batch, 2, height, width])


def attention_grid_generator(height, width, theta):
    """Sampling points of an attention window: a scale s and a shift (t_x, t_y).

    The affine warp with rows [[s, 0, t_x], [0, s, t_y]], exactly: the output shows
    the square of the input centred on (t_x, t_y), s times its side, with no turn or
    shear. (1, 0, 0) is the identity.

    Args:
      height, width: size of the output grid (ints or scalar int tensors).
      theta: (B, 3) as (s, t_x, t_y), float.

    Returns:
      (B, 2, height, width): for every output pixel, the (x, y) point of the input
      it samples, in normalised coordinates as ``affine_grid_generator``'s.
    """
    dtype = theta.dtype if theta.dtype.is_floating else tf.float32
    scale, shift_x, shift_y = tf.unstack(tf.cast(theta, dtype), axis=1)    # (B,) each
    zero = tf.zeros_like(scale)
    # (B, 6) -> (B, 2, 3): [[s, 0, t_x], [0, s, t_y]]
    matrix = tf.reshape(tf.stack([scale, zero, shift_x, zero, scale, shift_y], axis=1),
                        [-1, 2, 3])
    return affine_grid_generator(height, width, matrix)


def tps_control_points(grid=TPS_GRID, dtype=tf.float32):
    """The K = grid * grid control points of a thin-plate spline: a regular grid over
    the output, from -1 to +1 in both axes, (K, 2) as (x, y), x running fastest."""
    ticks = tf.linspace(tf.constant(-1.0, dtype), tf.constant(1.0, dtype), grid)
    x, y = tf.meshgrid(ticks, ticks)
    return tf.stack([tf.reshape(x, [-1]), tf.reshape(y, [-1])], axis=1)


def tps_grid_generator(height, width, theta, grid=TPS_GRID):
    """Sampling points of a thin-plate spline warp.

    K = grid * grid control points ``c_k`` sit on a regular grid over the output
    (``tps_control_points``); theta says how far each one moves: control point k of
    the output samples the input at ``c_k + theta_k``. Every other output point
    follows the thin-plate spline through those K pairs, the smoothest such map:
    ``f(p) = a_0 + a_1 x + a_2 y + sum_k v_k U(|p - c_k|)``, ``U(r) = r^2 log r^2``.
    Its coefficients solve a (K+3)x(K+3) linear system that depends on the control
    points alone, so the matrix taking theta to every output point's offset is built
    from constants and computed once, not per batch. theta = 0 is the identity,
    exactly (the offsets are added to the output grid); moving the control points by
    an affine map gives that affine warp, since the spline reproduces affine maps.

    Args:
      height, width: size of the output grid (ints).
      theta: (B, 2K) or (B, K, 2), float: each control point's (dx, dy) in normalised
        coordinates.
      grid: control points per side.

    Returns:
      (B, 2, height, width): for every output pixel, the (x, y) point of the input
      it samples, in normalised coordinates as ``affine_grid_generator``'s.
    """
    num_batch = tf.shape(theta)[0]
    dtype = theta.dtype if theta.dtype.is_floating else tf.float32
    count = grid * grid
    # (B, 2K) -> (B, K, 2)
    theta = tf.reshape(tf.cast(theta, dtype), [num_batch, count, 2])
    points = _output_points(height, width, dtype)                    # (1, 3, h*w)
    # (h*w, K): each output point's share of each control point's offset
    spread = _tps_spread(tf.transpose(points[0, :2]), tps_control_points(grid, dtype))
    # (1, h*w, K) @ (B, K, 2) -> (B, h*w, 2) -> (B, 2, h*w): the offsets
    offsets = tf.transpose(tf.matmul(spread[None], theta), [0, 2, 1])
    # (1, 2, h*w) + (B, 2, h*w) -> (B, 2, h, w)
    return tf.reshape(points[:, :2] + offsets, [num_batch, 2, height, width])


def _tps_spread(points, control):
    """(P, 2) points, (K, 2) control points -> (P, K): row p holds how the spline
    through the control points' values carries each value to point p.

    With L = [[U(c_i, c_j), 1, c_i], [1 / c^T, 0]] (K+3 square), the spline through
    values t has coefficients L^-1 [t; 0], and its value at p is
    [U(p, c_k), 1, p] L^-1 [t; 0]: this matrix is the first K columns of
    [U(p, c_k), 1, p] L^-1.
    """
    count = tf.shape(control)[0]
    dtype = control.dtype

    def kernel(a, b):                        # (M, 2), (K, 2) -> (M, K): U(|a - b|)
        r2 = tf.reduce_sum(tf.square(a[:, None, :] - b[None, :, :]), axis=2)
        # r^2 log r^2, with its limit 0 at r = 0 (and no NaN in the unused branch)
        return tf.where(r2 > 0, r2 * tf.math.log(tf.where(r2 > 0, r2, tf.ones_like(r2))),
                        tf.zeros_like(r2))

    def affine_part(a):                      # (M, 2) -> (M, 3): 1, x, y
        return tf.concat([tf.ones([tf.shape(a)[0], 1], dtype), a], axis=1)

    top = tf.concat([kernel(control, control), affine_part(control)], axis=1)  # (K, K+3)
    bottom = tf.concat([tf.transpose(affine_part(control)), tf.zeros([3, 3], dtype)],
                       axis=1)                                                 # (3, K+3)
    system = tf.concat([top, bottom], axis=0)                                  # (K+3, K+3)
    at_points = tf.concat([kernel(points, control), affine_part(points)], axis=1)
    # (P, K+3) L^-1 = solve(L^T, at_points^T)^T; keep its first K columns
    spread = tf.transpose(tf.linalg.solve(tf.transpose(system), tf.transpose(at_points)))
    return spread[:, :count]


def _output_points(height, width, dtype):
    """The regular output grid in homogeneous coordinates, (1, 3, height * width): the
    pixel centres from -1 to +1, x running fastest, and a row of ones."""
    start, stop = tf.constant(-1.0, dtype), tf.constant(1.0, dtype)
    x_t, y_t = tf.meshgrid(tf.linspace(start, stop, width), tf.linspace(start, stop, height))
    x_t, y_t = tf.reshape(x_t, [-1]), tf.reshape(y_t, [-1])
    return tf.stack([x_t, y_t, tf.ones_like(x_t)])[None]


def bilinear_sampler(img, x, y):
    """Bilinear interpolation of ``img`` at normalised points, zero outside.

    The identity grid returns the input exactly: x = -1 reads the centre of the
    first column, x = +1 the centre of the last. A point between pixels mixes its
    four neighbours; a neighbour outside the image counts as 0.

    Args:
      img: (B, H, W, C).
      x, y: (B, h, w) normalised coordinates (any float dtype; computed in the
        dtype of ``img`` when that is floating, else float32).

    Returns:
      (B, h, w, C) samples.
    """
    dtype = img.dtype if img.dtype.is_floating else tf.float32
    img = tf.cast(img, dtype)
    H = tf.shape(img)[1]
    W = tf.shape(img)[2]
    max_y = tf.cast(H - 1, dtype)
    max_x = tf.cast(W - 1, dtype)

    # normalised [-1, 1] -> pixel coordinates [0, W-1] x [0, H-1] (fix 1: W-1, not W-2)
    x = 0.5 * (tf.cast(x, dtype) + 1.0) * max_x
    y = 0.5 * (tf.cast(y, dtype) + 1.0) * max_y

    # A NaN or infinite point would become an int32 index far out of range: move it
    # two pixels outside the image, where all four neighbours read 0.
    finite = tf.logical_and(tf.math.is_finite(x), tf.math.is_finite(y))
    outside = tf.fill(tf.shape(x), tf.constant(-2.0, dtype))
    x = tf.where(finite, x, outside)
    y = tf.where(finite, y, outside)

    # the four integer neighbours of every point
    x0 = tf.floor(x)
    x1 = x0 + 1.0
    y0 = tf.floor(y)
    y1 = y0 + 1.0

    # fix 2: the weights use the true, unclipped neighbours: (B, h, w) -> (B, h, w, 1)
    wa = tf.expand_dims((x1 - x) * (y1 - y), axis=3)
    wb = tf.expand_dims((x1 - x) * (y - y0), axis=3)
    wc = tf.expand_dims((x - x0) * (y1 - y), axis=3)
    wd = tf.expand_dims((x - x0) * (y - y0), axis=3)

    # Zero padding: a one-pixel frame of zeros around the image, (B, H+2, W+2, C).
    # A neighbour outside the image is clipped into that frame, so it reads 0; a point
    # far outside has all four neighbours there. Indices shift by one for the frame.
    padded = tf.pad(img, [[0, 0], [1, 1], [1, 1], [0, 0]])
    x0_i, x1_i = _frame_index(x0, W), _frame_index(x1, W)
    y0_i, y1_i = _frame_index(y0, H), _frame_index(y1, H)

    # (B, h, w, C) each
    Ia = get_pixel_value(padded, x0_i, y0_i)
    Ib = get_pixel_value(padded, x0_i, y1_i)
    Ic = get_pixel_value(padded, x1_i, y0_i)
    Id = get_pixel_value(padded, x1_i, y1_i)

    return tf.add_n([wa * Ia, wb * Ib, wc * Ic, wd * Id])


def _frame_index(coord, size):
    """Float pixel index -> int32 index into the zero-framed image, 0 .. size + 1."""
    # Clip in float first: a wild theta can put points far beyond int32's range.
    upper = tf.cast(size, coord.dtype)
    return tf.cast(tf.clip_by_value(coord + 1.0, 0.0, upper + 1.0), tf.int32)


def _dim(tensor, axis):
    """The static size of ``axis`` when known (keeps shapes static), else a tensor."""
    static = tensor.shape[axis]
    static = static.value if hasattr(static, "value") else static
    return static if static is not None else tf.shape(tensor)[axis]


def _affine_grid(height, width, theta):
    """``affine_grid_generator`` for theta (B, 6): (B, 6) -> (B, 2, 3)."""
    return affine_grid_generator(height, width, tf.reshape(theta, [-1, 2, 3]))


def _tps_zoom(scale, grid=TPS_GRID):
    """The spline theta whose control points c move to ``scale`` c: (2K,) offsets."""
    ticks = [-1.0 + 2.0 * i / (grid - 1) for i in range(grid)]
    return tuple((scale - 1.0) * value for y in ticks for x in ticks for value in (x, y))


class Transformer:
    """One transformer of the STN: theta (B, ``size``) -> a sampling grid.

    ``zoom(s)``: the parameters that show the centre of the input, s times its side,
    filling the output (s = 1: the whole input, the identity). ``grid(height, width,
    theta)``: the grid generator, theta (B, size) -> (B, 2, height, width) normalised
    input points, as ``affine_grid_generator`` returns them.
    """

    def __init__(self, size, zoom, grid):
        self.size, self.zoom, self.grid = size, zoom, grid

    @property
    def identity(self):
        """The parameters that leave the input as it is."""
        return self.zoom(1.0)


# Every transformer, declared once; a new one is a grid generator and a line here.
TRANSFORMS = {
    "affine": Transformer(6, lambda s: (s, 0.0, 0.0, 0.0, s, 0.0), _affine_grid),
    # the 3x3 matrix's first eight entries (the ninth is fixed to 1)
    "projective": Transformer(8, lambda s: (s, 0.0, 0.0, 0.0, s, 0.0, 0.0, 0.0),
                              projective_grid_generator),
    # each control point's (dx, dy)
    "tps": Transformer(2 * TPS_GRID ** 2, _tps_zoom, tps_grid_generator),
    # a square window: its scale, then its centre's x and y
    "attention": Transformer(3, lambda s: (s, 0.0, 0.0), attention_grid_generator),
}
