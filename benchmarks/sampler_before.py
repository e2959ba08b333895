"""The STN layer as it was before the sampler was made faster: the reference
the speed benchmark measures the current one against. Not used by the project."""
import tensorflow.compat.v1 as tf

# theta of "no change": the rows [[1, 0, 0], [0, 1, 0]] map each output point onto itself
IDENTITY_THETA = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def spatial_transformer_network(input_fmap, theta, out_dims=None, **kwargs):
    """Warp ``input_fmap`` with the affine transforms ``theta``.

    The layer is composed of three parts:

    - localization net (in ``model.py``): looks at the image and outputs the six
      parameters of an affine transform, ``theta``.
    - ``affine_grid_generator``: for every output pixel, the point of the input
      (in normalised coordinates) that it should show.
    - ``bilinear_sampler``: reads the input at those points with bilinear
      interpolation.

    Args:
      input_fmap: images or feature maps, (B, H, W, C).
      theta: (B, 6) or (B, 2, 3): the rows of the 2x3 matrix that maps an output
        point ``(x_t, y_t, 1)`` to the input point ``(x_s, y_s)`` it samples.
      out_dims: optional ``[out_H, out_W]``; defaults to the input size.
      **kwargs: accepted and ignored, as in the original layer.

    Returns:
      The transformed maps, (B, out_H, out_W, C).
    """
    B = tf.shape(input_fmap)[0]
    H = _dim(input_fmap, 1)
    W = _dim(input_fmap, 2)

    # (B, 6) -> (B, 2, 3)
    theta = tf.reshape(theta, [B, 2, 3])

    if out_dims:
        out_H, out_W = out_dims[0], out_dims[1]
    else:
        out_H, out_W = H, W
    # (B, 2, out_H, out_W): the x and y of the input point behind each output pixel
    batch_grids = affine_grid_generator(out_H, out_W, theta)

    x_s = batch_grids[:, 0, :, :]
    y_s = batch_grids[:, 1, :, :]

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

    # One flat gather is much cheaper than gather_nd on stacked (b, y, x) triples:
    # (B, H, W, C) -> (B*H*W, C), and (b, y, x) -> b*H*W + y*W + x.
    batch_idx = tf.range(tf.shape(x)[0])
    batch_idx = tf.reshape(batch_idx * (height * width), (-1, 1, 1))
    flat_idx = batch_idx + y * width + x
    flat_img = tf.reshape(img, tf.stack([-1, channels]))
    # (B, h, w) indices -> (B, h, w, C)
    return tf.gather(flat_img, flat_idx)


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

    # the regular output grid, pixel centres from -1 to +1: (height, width) each
    start, stop = tf.constant(-1.0, dtype), tf.constant(1.0, dtype)
    x = tf.linspace(start, stop, width)
    y = tf.linspace(start, stop, height)
    x_t, y_t = tf.meshgrid(x, y)

    # homogeneous coordinates (x_t, y_t, 1): (3, height * width)
    x_t_flat = tf.reshape(x_t, [-1])
    y_t_flat = tf.reshape(y_t, [-1])
    ones = tf.ones_like(x_t_flat)
    sampling_grid = tf.stack([x_t_flat, y_t_flat, ones])

    # (3, h*w) -> (B, 3, h*w)
    sampling_grid = tf.expand_dims(sampling_grid, axis=0)
    sampling_grid = tf.tile(sampling_grid, tf.stack([num_batch, 1, 1]))

    # (B, 2, 3) @ (B, 3, h*w) -> (B, 2, h*w) -> (B, 2, h, w)
    batch_grids = tf.matmul(theta, sampling_grid)
    return tf.reshape(batch_grids, [num_batch, 2, height, width])


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
