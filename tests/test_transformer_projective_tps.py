"""The projective, thin-plate-spline and attention grid generators against NumPy, as the
affine one is tested: exact identities, the affine special cases, a float64 reference,
gradients."""
import numpy as np
import pytest

import transformer
from helpers import grid_points, stn_gradients, tps_sources
from mnist_stn import precision
from mnist_stn.compat import tf

IDENTITY_8 = list(transformer.TRANSFORMS["projective"].identity)
K = transformer.TPS_GRID ** 2


@pytest.fixture(params=["fp32", "bf16"])
def session_precision(request):
    """Each value test runs in a float32 session and in a bfloat16-rewrite one."""
    return request.param


@pytest.fixture
def rng():
    return np.random.RandomState(29)


def run_stn(images, thetas, transform, out_dims=None, dtype=np.float32, session="fp32"):
    """spatial_transformer_network on NumPy inputs, in a fresh graph and session."""
    images = np.asarray(images, dtype)
    thetas = np.asarray(thetas, dtype).reshape(len(images), -1)
    with tf.Graph().as_default(), \
            tf.Session(config=precision.session_config(session)) as sess:
        img_ph = tf.placeholder(dtype, [None] + list(images.shape[1:]))
        theta_ph = tf.placeholder(dtype, [None, thetas.shape[1]])
        out = transformer.spatial_transformer_network(img_ph, theta_ph, out_dims=out_dims,
                                                      transform=transform)
        return sess.run(out, {img_ph: images, theta_ph: thetas})


# -- the independent reference: NumPy, float64, one output point at a time ----------

def reference_warp(images, sources, out_h, out_w):
    """Bilinear reads of each image at its (out_h * out_w, 2) source points, zero
    outside and at a non-finite point."""
    b_count, h, w, c = images.shape
    out = np.zeros((b_count, out_h * out_w, c))
    for b in range(b_count):
        for p, (x_s, y_s) in enumerate(sources[b]):
            if not (np.isfinite(x_s) and np.isfinite(y_s)):
                continue
            col, row = (x_s + 1) / 2 * (w - 1), (y_s + 1) / 2 * (h - 1)
            c0, r0 = int(np.floor(col)), int(np.floor(row))
            for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
                r, cc = r0 + dr, c0 + dc
                if 0 <= r < h and 0 <= cc < w:
                    weight = (1 - abs(row - r)) * (1 - abs(col - cc))
                    out[b, p] += weight * images[b, r, cc]
    return out.reshape(b_count, out_h, out_w, c)


def projective_sources(theta, out_h, out_w):
    """H (x, y, 1), divided by w; at or beyond the horizon, infinite."""
    matrix = np.append(np.asarray(theta, np.float64), 1.0).reshape(3, 3)
    pts = grid_points(out_h, out_w)
    X, Y, W = matrix @ np.concatenate([pts, np.ones((len(pts), 1))], axis=1).T
    ahead = W > transformer.HORIZON
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ahead, np.stack([X / W, Y / W]), np.inf).T


# -- exact cases ----------------------------------------------------------------------

@pytest.mark.parametrize("transform, identity", [("projective", IDENTITY_8),
                                                 ("tps", [0.0] * 2 * K),
                                                 ("attention", [1.0, 0.0, 0.0])])
@pytest.mark.parametrize("shape", [(3, 28, 28, 1), (2, 11, 6, 3)])
def test_identity_returns_the_input(rng, session_precision, transform, identity, shape):
    # as the affine identity: float32's grid puts a point within an ulp of its pixel
    # centre, so up to 1e-6 in float32; float64 leaves 1e-14
    images = rng.rand(*shape)
    out = run_stn(images, [identity] * shape[0], transform, session=session_precision)
    np.testing.assert_allclose(out, images, atol=1e-5, rtol=0)
    exact = run_stn(images, [identity] * shape[0], transform, dtype=np.float64,
                    session=session_precision)
    np.testing.assert_allclose(exact, images, atol=1e-12, rtol=0)


def test_a_projective_with_last_row_0_0_1_is_the_affine_of_its_six(rng, session_precision):
    images = rng.rand(3, 12, 10, 2)
    affine = np.array([[0.83, 0.21, 0.07, -0.18, 0.91, -0.05],
                       [1.1, -0.3, -0.12, 0.25, 0.72, 0.09],
                       [0.0, -1.0, 0.0, 1.0, 0.0, 0.0]])
    projective = np.c_[affine, np.zeros((3, 2))]
    got = run_stn(images, projective, "projective", out_dims=[9, 7],
                  session=session_precision)
    want = run_stn(images, affine, "affine", out_dims=[9, 7], session=session_precision)
    np.testing.assert_array_equal(got, want)


WINDOWS = np.array([[0.5, 0.2, -0.3], [1.3, -0.1, 0.05], [0.33, -0.6, 0.6]])


def test_an_attention_window_is_the_affine_of_the_same_entries(rng, session_precision):
    # (s, t_x, t_y) is the affine [[s, 0, t_x], [0, s, t_y]]: the same points, the same bits
    images = rng.rand(3, 12, 10, 2)
    affine = np.stack([WINDOWS[:, 0], 0 * WINDOWS[:, 0], WINDOWS[:, 1],
                       0 * WINDOWS[:, 0], WINDOWS[:, 0], WINDOWS[:, 2]], axis=1)
    got = run_stn(images, WINDOWS, "attention", out_dims=[9, 7], session=session_precision)
    want = run_stn(images, affine, "affine", out_dims=[9, 7], session=session_precision)
    np.testing.assert_array_equal(got, want)


def test_an_attention_window_is_numpys_crop():
    # on a 9x9 input a pixel is 1/4 of a normalised unit: s = 1/4 and t = 0 show its
    # central 3x3 pixels on a 3x3 output (the points -1/4, 0, 1/4: centres 3, 4, 5)
    image = np.random.RandomState(5).rand(1, 9, 9, 1)
    out = run_stn(image, [[0.25, 0.0, 0.0]], "attention", out_dims=[3, 3], dtype=np.float64)
    np.testing.assert_allclose(out[0, ..., 0], image[0, 3:6, 3:6, 0], atol=1e-12)
    # shifted by two pixels right and one down: t = (2 / 4, 1 / 4) in normalised units
    out = run_stn(image, [[0.25, 0.5, 0.25]], "attention", out_dims=[3, 3], dtype=np.float64)
    np.testing.assert_allclose(out[0, ..., 0], image[0, 4:7, 5:8, 0], atol=1e-12)


def attention_sources(theta, out_h, out_w):
    """s (x, y) + t for every output point."""
    scale, shift = theta[0], np.asarray(theta[1:], np.float64)
    return scale * grid_points(out_h, out_w) + shift


def affine_moved_controls(affine, grid=transformer.TPS_GRID):
    """The TPS offsets that move each control point c to A c + t."""
    ticks = np.linspace(-1, 1, grid)
    cx, cy = np.meshgrid(ticks, ticks)
    control = np.stack([cx.ravel(), cy.ravel()], axis=1)
    matrix = np.asarray(affine, np.float64).reshape(2, 3)
    return (control @ matrix[:, :2].T + matrix[:, 2] - control).ravel()


def test_a_tps_whose_controls_move_by_an_affine_map_is_that_affine(rng):
    images = rng.rand(2, 12, 10, 2)
    affine = np.array([[0.83, 0.21, 0.07, -0.18, 0.91, -0.05],
                       [0.0, -1.0, 0.0, 1.0, 0.0, 0.0]])          # a quarter turn
    offsets = np.stack([affine_moved_controls(t) for t in affine])
    got = run_stn(images, offsets, "tps", out_dims=[9, 7], dtype=np.float64)
    want = run_stn(images, affine, "affine", out_dims=[9, 7], dtype=np.float64)
    np.testing.assert_allclose(got, want, atol=1e-10, rtol=0)
    # and the quarter turn is NumPy's rot90 of the image
    square = rng.rand(1, 8, 8, 1)
    turned = run_stn(square, affine_moved_controls(affine[1])[None], "tps", dtype=np.float64)
    # x_s = -y_t, y_s = x_t: output pixel (i, j) reads input (j, W-1-i), np.rot90's turn
    np.testing.assert_allclose(turned[0, ..., 0], np.rot90(square[0, ..., 0], k=1),
                               atol=1e-10)


# -- against the NumPy reference ------------------------------------------------------

HOMOGRAPHIES = np.array([[0.9, 0.1, 0.05, -0.1, 1.05, -0.08, 0.12, -0.2],
                         [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.4, 0.3],
                         [0.7, -0.2, 0.1, 0.3, 0.8, 0.0, -0.35, 0.25]])


def test_points_beyond_the_horizon_read_zero():
    # w = 1 + 2 x_t: zero at x_t = -1/2, negative left of it
    images = np.ones((1, 8, 9, 1))
    out = run_stn(images, [[1, 0, 0, 0, 1, 0, 2.0, 0]], "projective", dtype=np.float64)
    x_t = np.linspace(-1, 1, 9)
    assert (out[0, :, x_t <= -0.5, 0] == 0).all()
    assert (out[0, :, x_t > -0.25, 0] > 0).any()


@pytest.mark.parametrize("transform", ["projective", "tps", "attention"])
def test_values_match_the_reference(rng, session_precision, transform):
    images = rng.rand(3, 13, 11, 2)
    if transform == "projective":
        thetas, sources, tolerance = HOMOGRAPHIES, projective_sources, 2e-5
    elif transform == "attention":
        thetas, sources, tolerance = WINDOWS, attention_sources, 2e-5
    else:
        thetas, sources, tolerance = rng.uniform(-0.25, 0.25, (3, 2 * K)), tps_sources, 1e-4
    want = reference_warp(images, [sources(t, 10, 9) for t in thetas], 10, 9)
    for dtype, atol in ((np.float64, 1e-10), (np.float32, tolerance)):
        got = run_stn(images, thetas, transform, out_dims=[10, 9], dtype=dtype,
                      session=session_precision)
        np.testing.assert_allclose(got, want, atol=atol, rtol=0, err_msg=str(dtype))


def test_tps_control_points_land_where_theta_says():
    # the spline passes through its control points: the output pixel on control
    # point k reads the input at c_k + theta_k
    offsets = np.random.RandomState(3).uniform(-0.2, 0.2, size=2 * K)
    sources = tps_sources(offsets, 4, 4)      # a 4x4 output: one pixel per control point
    ticks = np.linspace(-1, 1, 4)
    cx, cy = np.meshgrid(ticks, ticks)
    np.testing.assert_allclose(sources, np.c_[cx.ravel(), cy.ravel()]
                               + offsets.reshape(K, 2), atol=1e-12)
    with tf.Graph().as_default(), tf.Session() as sess:
        grid = sess.run(transformer.tps_grid_generator(4, 4, tf.constant(offsets[None])))
    np.testing.assert_allclose(grid[0].reshape(2, -1).T, sources, atol=1e-12)


# -- gradients ------------------------------------------------------------------------

@pytest.mark.parametrize("transform", ["projective", "tps", "attention"])
def test_gradients_match_finite_differences(rng, transform):
    images = rng.rand(2, 7, 8, 2)
    # away from the identity, so no sampling point sits on a pixel centre (a kink)
    thetas = {"projective": np.array([[0.83, 0.21, 0.07, -0.18, 0.91, -0.05, 0.1, -0.15],
                                      [1.1, -0.3, -0.12, 0.25, 0.72, 0.09, -0.2, 0.12]]),
              "attention": np.array([[0.61, 0.113, -0.207], [1.17, -0.09, 0.051]]),
              "tps": rng.uniform(-0.15, 0.15, size=(2, 2 * K)) + 0.013}[transform]
    weights = rng.rand(2, 6, 9, 2)   # a random linear read-out: loss = sum(out * weights)
    (g_theta, fd_theta), (g_img, fd_img) = stn_gradients(images, thetas, weights, [6, 9],
                                                         transform)
    assert np.abs(g_theta).max() > 1e-3  # the check below means something
    np.testing.assert_allclose(g_theta, fd_theta, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(g_img, fd_img, rtol=1e-6, atol=1e-7)


def test_the_horizon_leaves_no_nan_in_the_gradient():
    with tf.Graph().as_default(), tf.Session() as sess:
        theta = tf.constant([[1, 0, 0, 0, 1, 0, 2.0, 0]], tf.float64)
        out = transformer.spatial_transformer_network(tf.ones([1, 8, 9, 1], tf.float64),
                                                      theta, transform="projective")
        grad = sess.run(tf.gradients(tf.reduce_sum(out), theta)[0])
    assert np.isfinite(grad).all()


def test_an_unknown_transform_is_refused():
    with tf.Graph().as_default(), pytest.raises(ValueError,
                                                 match="one of affine, projective, tps, attention"):
        transformer.spatial_transformer_network(tf.zeros([1, 4, 4, 1]), tf.zeros([1, 6]),
                                                transform="elastic")
