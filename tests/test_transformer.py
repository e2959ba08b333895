"""The STN layer against NumPy: exact geometric cases, a reference sampler, gradients."""
import numpy as np
import pytest

import transformer
from helpers import stn_gradients
from mnist_stn import precision
from mnist_stn.compat import tf

IDENTITY = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
SESSION = {"precision": "fp32"}


@pytest.fixture(autouse=True, params=["fp32", "bf16"])
def session_precision(request):
    """Every sampler test runs in a float32 session and in a bfloat16-rewrite one: the
    rewrite must leave the sampler's values alone."""
    SESSION["precision"] = request.param
    yield request.param
    SESSION["precision"] = "fp32"


def run_stn(images, thetas, out_dims=None, dtype=np.float32):
    """Run spatial_transformer_network on NumPy inputs in a fresh graph."""
    images = np.asarray(images, dtype)
    thetas = np.asarray(thetas, dtype).reshape(len(images), 6)
    config = precision.session_config(SESSION["precision"])
    with tf.Graph().as_default(), tf.Session(config=config) as sess:
        img_ph = tf.placeholder(dtype, [None] + list(images.shape[1:]))
        theta_ph = tf.placeholder(dtype, [None, 6])
        out = transformer.spatial_transformer_network(img_ph, theta_ph, out_dims=out_dims)
        return sess.run(out, {img_ph: images, theta_ph: thetas})


def reference_sampler(images, thetas, out_h, out_w):
    """Plain per-pixel bilinear warp: zero outside, -1/+1 = first/last pixel centre."""
    b_count, h, w, c = images.shape
    out = np.zeros((b_count, out_h, out_w, c))

    def pixel(b, row, col):
        if 0 <= row < h and 0 <= col < w:
            return images[b, row, col]
        return np.zeros(c)

    for b in range(b_count):
        t = np.asarray(thetas[b], np.float64).reshape(2, 3)
        for i in range(out_h):
            for j in range(out_w):
                x_t = -1.0 + 2.0 * j / (out_w - 1)
                y_t = -1.0 + 2.0 * i / (out_h - 1)
                x_s, y_s = t @ np.array([x_t, y_t, 1.0])
                col = (x_s + 1.0) / 2.0 * (w - 1)
                row = (y_s + 1.0) / 2.0 * (h - 1)
                c0, r0 = int(np.floor(col)), int(np.floor(row))
                fc, fr = col - c0, row - r0
                out[b, i, j] = ((1 - fr) * (1 - fc) * pixel(b, r0, c0)
                                + (1 - fr) * fc * pixel(b, r0, c0 + 1)
                                + fr * (1 - fc) * pixel(b, r0 + 1, c0)
                                + fr * fc * pixel(b, r0 + 1, c0 + 1))
    return out


@pytest.fixture
def rng():
    return np.random.RandomState(1234)


@pytest.mark.parametrize("shape", [(3, 28, 28, 1), (1, 5, 9, 3), (2, 11, 6, 2)])
def test_identity_returns_input(rng, shape):
    images = rng.rand(*shape)
    out = run_stn(images, [IDENTITY] * shape[0])
    assert out.shape == shape
    np.testing.assert_allclose(out, images, atol=1e-5, rtol=0)


def test_identity_keeps_last_row_and_column(rng):
    # The original sampler blacked these out; a bright image shows it at once.
    images = np.ones((1, 28, 28, 1))
    out = run_stn(images, [IDENTITY])
    assert out[0, -1, :, 0].min() > 1 - 1e-5
    assert out[0, :, -1, 0].min() > 1 - 1e-5


def test_horizontal_flip(rng):
    images = rng.rand(2, 7, 10, 3)
    out = run_stn(images, [[-1, 0, 0, 0, 1, 0]] * 2)
    np.testing.assert_allclose(out, images[:, :, ::-1, :], atol=1e-5, rtol=0)


def test_vertical_flip(rng):
    images = rng.rand(1, 8, 5, 1)
    out = run_stn(images, [[1, 0, 0, 0, -1, 0]])
    np.testing.assert_allclose(out, images[:, ::-1, :, :], atol=1e-5, rtol=0)


def test_rotation_by_90_degrees_matches_rot90(rng):
    images = rng.rand(2, 12, 12, 2)
    # x_s = -y_t, y_s = x_t: output pixel (i, j) reads input (j, W-1-i), which is
    # np.rot90's counter-clockwise turn.
    out = run_stn(images, [[0, -1, 0, 1, 0, 0]] * 2)
    np.testing.assert_allclose(out, np.rot90(images, k=1, axes=(1, 2)), atol=1e-5, rtol=0)
    back = run_stn(images, [[0, 1, 0, -1, 0, 0]] * 2)
    np.testing.assert_allclose(back, np.rot90(images, k=-1, axes=(1, 2)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("dx,dy", [(1, 0), (0, 1), (-2, 3)])
def test_whole_pixel_shift_fills_with_zeros(rng, dx, dy):
    h, w = 9, 13
    images = rng.rand(1, h, w, 1) + 0.5  # no zeros of its own, so the fill shows
    # one pixel is 2 / (size - 1) in normalised units
    theta = [1, 0, 2.0 * dx / (w - 1), 0, 1, 2.0 * dy / (h - 1)]
    out = run_stn(images, [theta])
    expected = np.zeros_like(images)
    # output (i, j) reads input (i + dy, j + dx) where that exists
    src = images[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)]
    expected[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)] = src
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)


def test_far_outside_is_zero(rng):
    images = rng.rand(1, 6, 6, 1) + 1.0
    out = run_stn(images, [[1, 0, 50.0, 0, 1, -1e9]])
    assert np.all(out == 0)


@pytest.mark.parametrize("shape,out_dims", [
    ((4, 10, 10, 1), None),
    ((1, 9, 14, 3), None),
    ((2, 8, 6, 2), [13, 17]),   # upsampling, non-square
    ((2, 16, 12, 1), [5, 4]),   # downsampling
])
def test_random_thetas_match_reference(rng, shape, out_dims):
    images = rng.rand(*shape)
    # scale, rotation, shear and shifts big enough to leave the image in places
    thetas = np.array(IDENTITY) + rng.uniform(-0.6, 0.6, size=(shape[0], 6))
    out = run_stn(images, thetas, out_dims=out_dims, dtype=np.float64)
    out_h, out_w = out_dims or shape[1:3]
    np.testing.assert_allclose(out, reference_sampler(images, thetas, out_h, out_w),
                               atol=1e-10, rtol=0)
    out32 = run_stn(images, thetas, out_dims=out_dims)
    np.testing.assert_allclose(out32, out, atol=1e-5, rtol=0)


def test_static_shape_is_kept():
    with tf.Graph().as_default():
        images = tf.placeholder(tf.float32, [None, 28, 28, 3])
        theta = tf.placeholder(tf.float32, [None, 6])
        assert transformer.spatial_transformer_network(images, theta).shape.as_list() == \
            [None, 28, 28, 3]
        out = transformer.spatial_transformer_network(images, theta, out_dims=[14, 20])
        assert out.shape.as_list() == [None, 14, 20, 3]


def test_affine_grid_generator_identity_is_linspace():
    with tf.Graph().as_default(), tf.Session() as sess:
        theta = tf.constant(np.array(IDENTITY, np.float32).reshape(1, 2, 3))
        grid = sess.run(transformer.affine_grid_generator(3, 5, theta))
    assert grid.shape == (1, 2, 3, 5)
    np.testing.assert_allclose(grid[0, 0], np.tile(np.linspace(-1, 1, 5), (3, 1)), atol=1e-6)
    np.testing.assert_allclose(grid[0, 1], np.tile(np.linspace(-1, 1, 3)[:, None], (1, 5)),
                               atol=1e-6)


def test_get_pixel_value_reads_indexed_pixels(rng):
    images = rng.rand(2, 4, 5, 3).astype(np.float32)
    xs = rng.randint(0, 5, size=(2, 3, 3)).astype(np.int32)
    ys = rng.randint(0, 4, size=(2, 3, 3)).astype(np.int32)
    with tf.Graph().as_default(), tf.Session() as sess:
        got = sess.run(transformer.get_pixel_value(tf.constant(images), xs, ys))
    expected = images[np.arange(2)[:, None, None], ys, xs]
    np.testing.assert_array_equal(got, expected)


def test_gradients_match_finite_differences(rng):
    images = rng.rand(2, 7, 8, 2)
    # Away from the identity, so no sampling point sits on a pixel centre where
    # bilinear interpolation has a kink.
    thetas = np.array([[0.83, 0.21, 0.07, -0.18, 0.91, -0.05],
                       [1.1, -0.3, -0.12, 0.25, 0.72, 0.09]])
    weights = rng.rand(2, 6, 9, 2)   # a random linear read-out: loss = sum(out * weights)
    (g_theta, fd_theta), (g_img, fd_img) = stn_gradients(images, thetas, weights, [6, 9])
    assert np.abs(g_theta).max() > 1e-3  # the check below means something
    np.testing.assert_allclose(g_theta, fd_theta, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(g_img, fd_img, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_theta_reads_zero(rng, bad):
    # a NaN or infinite theta (a diverged loc net) must not crash the gather: the
    # points it makes read 0, and a finite theta beside it in the batch is unaffected
    images = rng.rand(2, 6, 5, 1)
    thetas = np.array([[bad, 0, 0, 0, 1, 0], IDENTITY])
    out = run_stn(images, thetas)
    np.testing.assert_array_equal(out[0], 0)
    np.testing.assert_allclose(out[1], images[1], atol=1e-6)


def test_transformer_imports_nothing_of_this_repo():
    # it can be copied out alone: TensorFlow is its only import
    import ast
    tree = ast.parse(open(transformer.__file__).read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported == {"tensorflow"}
