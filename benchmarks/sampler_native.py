"""The STN layer with TensorFlow's own image transform kernel for the forward pass: a
variant the speed benchmark measures beside ``transformer.py``, to show why the
project does not use it. Not used by the project.

``tf.raw_ops.ImageProjectiveTransformV3`` warps a batch of images by affine transforms in
one native op, with the sampler's conventions when asked for them (bilinear, each
neighbour outside the image reads 0), and matches ``transformer.py`` to float32
rounding. But its gradient for the image is an approximation (the inverse warp) and it
has none for the transform, so training needs both written out here, and they need the
four neighbours of every sampling point, read by the same gathers the readable sampler
uses: the forward pass was not where the time goes. float32 only (the kernel's
transforms are float32).
"""
import tensorflow.compat.v1 as tf


def spatial_transformer_network(input_fmap, theta, out_dims=None, **kwargs):
    """As ``transformer.spatial_transformer_network``, for float32 maps of static size."""
    H, W, C = input_fmap.shape.as_list()[1:]
    h, w = out_dims or (H, W)
    B = tf.shape(input_fmap)[0]
    # the output pixel grid, (3, h*w) rows x, y, 1
    xs, ys = tf.meshgrid(tf.range(w, dtype=tf.float32), tf.range(h, dtype=tf.float32))
    grid = tf.stack([tf.reshape(xs, [-1]), tf.reshape(ys, [-1]), tf.ones([h * w])])

    @tf.custom_gradient
    def warp(img, theta):
        # (B, 6) in normalised coordinates -> (B, 2, 3) from output to input pixels
        m = _pixel_matrices(tf.reshape(theta, [B, 2, 3]), (H, W), (h, w))
        transforms = tf.concat([tf.reshape(m, [B, 6]), tf.zeros([B, 2])], axis=1)
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=img, transforms=transforms, output_shape=[h, w], fill_value=0.0,
            interpolation="BILINEAR", fill_mode="CONSTANT")

        def grad(d_out):
            # (B, 2, 3) @ (3, h*w) -> (B, 2, h*w): the input pixel behind every output
            # pixel, clipped two pixels outside, where both neighbours read 0 either way
            xy = tf.matmul(m, tf.broadcast_to(grid, [B, 3, h * w]))
            x = tf.clip_by_value(xy[:, 0], -2.0, W + 1.0)
            y = tf.clip_by_value(xy[:, 1], -2.0, H + 1.0)
            x0, y0 = tf.floor(x), tf.floor(y)
            fx = tf.reshape(x - x0, [B, h, w, 1])
            fy = tf.reshape(y - y0, [B, h, w, 1])
            # a frame of zeros (2 before, 3 after) holds every neighbour of a clipped point
            wp = W + 5
            rows = tf.reshape(tf.pad(img, [[0, 0], [2, 3], [2, 3], [0, 0]]), [-1, C])
            first = (tf.reshape(tf.range(B) * ((H + 5) * wp), [B, 1])
                     + tf.cast(y0 + 2.0, tf.int32) * wp + tf.cast(x0 + 2.0, tf.int32))
            first = tf.reshape(first, [B, h, w])
            corners = (first, first + 1, first + wp, first + wp + 1)   # 00, 01, 10, 11
            f00, f01, f10, f11 = (tf.gather(rows, i) for i in corners)
            # (B, h, w, C): the slopes of the bilinear surface along x and y
            top, bottom = f01 - f00, f11 - f10
            left, right = f10 - f00, f11 - f01
            slopes = tf.stack([tf.reduce_sum(d_out * (top + fy * (bottom - top)), 3),
                               tf.reduce_sum(d_out * (left + fx * (right - left)), 3)], 1)
            # (B, 2, h*w) @ (B, h*w, 3) -> (B, 2, 3), then through the pixel scaling
            d_m = tf.matmul(tf.reshape(slopes, [B, 2, h * w]),
                            tf.broadcast_to(tf.transpose(grid), [B, h * w, 3]))
            d_theta = tf.reshape(tf.gradients(m, theta, d_m)[0], [B, 6])
            # the image: every output's gradient shared among its four neighbours
            d_y1 = d_out * fy
            d_y0 = d_out - d_y1
            d_11 = d_y1 * fx
            d_01 = d_y0 * fx
            parts = (d_y0 - d_01, d_01, d_y1 - d_11, d_11)
            count = B * (H + 5) * wp
            d_rows = tf.add_n([tf.math.unsorted_segment_sum(
                tf.reshape(part, [-1, C]), tf.reshape(index, [-1]), count)
                for part, index in zip(parts, corners)])
            d_img = tf.reshape(d_rows, [B, H + 5, wp, C])[:, 2:H + 2, 2:W + 2, :]
            return d_img, d_theta

        return out, grad

    return warp(input_fmap, theta)


def _pixel_matrices(theta, in_size, out_size):
    """(B, 2, 3) theta on normalised coordinates -> the same map on pixel indices.

    An output pixel (x, y) is the normalised point (2x / (w-1) - 1, 2y / (h-1) - 1);
    a normalised input point u is the pixel (u + 1) (W-1) / 2. The ratios are taken in
    Python, so the identity theta gives exactly the identity matrix when the sizes agree.
    """
    (H, W), (h, w) = in_size, out_size
    half = tf.constant([[(W - 1) / 2.0], [(H - 1) / 2.0]])                   # (2, 1)
    ratio = tf.constant([[(W - 1) / (w - 1), (W - 1) / (h - 1)],
                         [(H - 1) / (w - 1), (H - 1) / (h - 1)]])            # (2, 2)
    # x_in = t00 (W-1)/(w-1) x + t01 (W-1)/(h-1) y + (W-1)/2 (t02 + 1 - t00 - t01)
    linear = theta[:, :, :2] * ratio
    shift = half * (theta[:, :, 2:] + 1.0 - tf.reduce_sum(theta[:, :, :2], 2, keepdims=True))
    return tf.concat([linear, shift], axis=2)
