"""What a theta does, in pixels: the sampled box drawn on the figures."""
import numpy as np
import pytest

from mnist_stn import distort, geometry


def test_sampled_box_maps_the_output_corners_into_the_input():
    identity = [1, 0, 0, 0, 1, 0]
    np.testing.assert_allclose(geometry.sampled_box([identity], 28, "affine")[0],
                               [[0, 0], [27, 0], [27, 27], [0, 27]])
    # half size, shifted right by a quarter of the canvas: x in [-0.25, 0.75]
    zoom = [0.5, 0, 0.25, 0, 0.5, 0]
    np.testing.assert_allclose(geometry.sampled_box([zoom], 41, "affine")[0],
                               [[15, 10], [35, 10], [35, 30], [15, 30]])
    # a 90 degree turn visits the same corners, in another order
    turn = [0, -1, 0, 1, 0, 0]
    np.testing.assert_allclose(geometry.sampled_box([turn], 28, "affine")[0],
                               [[27, 0], [27, 27], [0, 27], [0, 0]])


# -- theta in words ---------------------------------------------------------------------

def read_back(size=28, **transform):
    parts = geometry.decompose([geometry.compose(size=size, **transform)], size, "affine")
    return {key: value[0] for key, value in parts.items()}


@pytest.mark.parametrize("size", [28, 42, 60])
@pytest.mark.parametrize("transform", [
    dict(angle=31.0),
    dict(angle=-120.0, scale_x=1.4, scale_y=1.4),
    dict(scale_x=0.6, scale_y=1.3, shear=-25.0),
    dict(angle=170.0, scale_x=2.0, scale_y=0.5, shear=40.0, shift_x=-5.0, shift_y=2.5),
    dict(shift_x=7.0, shift_y=-3.0),
])
def test_known_transforms_are_read_back(transform, size):
    parts = read_back(size=size, **transform)
    for key in ("angle", "scale_x", "scale_y", "shear", "shift_x", "shift_y"):
        expected = transform.get(key, 1.0 if key.startswith("scale") else 0.0)
        assert parts[key] == pytest.approx(expected, abs=1e-6), key
    assert not parts["mirrored"] and not parts["degenerate"]


def test_a_mirror_is_named():
    parts = read_back(angle=20.0, scale_x=1.1, scale_y=-1.1)
    assert parts["mirrored"]
    assert parts["angle"] == pytest.approx(20.0) and parts["scale_y"] == pytest.approx(-1.1)
    words = geometry.decompose([geometry.compose(scale_x=1.0, scale_y=-1.0)], 28, "affine")
    assert geometry.describe(words, 0) == "mirrored"


def test_undoing_a_counter_clockwise_turn_is_a_clockwise_one():
    # distort's R turns digits counter-clockwise as seen for a positive angle; the theta
    # that shows the digit upright again turns it clockwise by as much
    m = distort._similarity_matrix(np.radians([30.0]), np.ones(1), np.zeros((1, 2)), 28)[0]
    theta = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2].ravel()
    parts = geometry.decompose([theta], 28, "affine")
    assert parts["angle"][0] == pytest.approx(30.0)
    assert geometry.describe(parts, 0) == "turned 30° clockwise"


def test_the_words():
    theta = geometry.compose(angle=31.0, scale_x=1.4, scale_y=1.4, shift_x=-5.0, shift_y=-2.0)
    parts = geometry.decompose([theta, [1, 0, 0, 0, 1, 0]], 28, "affine")
    assert geometry.describe(parts, 0) == ("turned 31° clockwise, enlarged 1.4x, "
                                           "moved 5 px left and 2 px up")
    assert geometry.short_label(parts, 0) == "31°cw 1.4x"
    assert geometry.describe(parts, 1) == "left as it was"
    # the identity on a 42x42 canvas passes the whole canvas on at 28x28: shrunk
    parts = geometry.decompose([[1, 0, 0, 0, 1, 0]], 42, "affine")
    assert geometry.describe(parts, 0) == "shrunk to 0.66x"
    parts = geometry.decompose([geometry.compose(scale_x=0.7, scale_y=1.3, shear=-10)], 28,
                               "affine")
    assert geometry.describe(parts, 0) == ("zoomed 0.7x across and 1.3x up and down, "
                                           "sheared 10° left")


def test_degenerate_thetas_get_a_word_not_a_crash():
    thetas = [[0, 0, 0, 0, 0, 0], [1, 2, 0, 0.5, 1, 0], [np.nan, 0, 0, 0, 1, 0],
              [np.inf, 0, 0, 0, 1, 0], [1, 0, 0, 0, 1, 0]]
    parts = geometry.decompose(thetas, 28, "affine")
    np.testing.assert_array_equal(parts["degenerate"], [True, True, True, True, False])
    assert np.isnan(parts["angle"][:4]).all() and np.isnan(parts["shift_x"][:4]).all()
    assert geometry.describe(parts, 0).startswith("degenerate")
    assert geometry.describe(parts, 2).startswith("no transform: theta is not finite")
    assert geometry.short_label(parts, 1) == "degenerate"
    assert geometry.summary(parts).endswith("; 4 degenerate")


def test_summary_gives_medians_and_spread():
    thetas = [geometry.compose(angle=a, scale_x=z, scale_y=z)
              for a, z in ((-10, 1.2), (0, 1.3), (10, 1.4), (20, 1.3))]
    line = geometry.summary(geometry.decompose(thetas, 28, "affine"))
    angles = np.array([-10, 0, 10, 20.0])
    assert line == (f"turned by +5.0° (median; clockwise +), std {angles.std():.1f}°; "
                    f"zoom 1.30x (median), std {np.std([1.2, 1.3, 1.4, 1.3]):.2f}")


# -- the projective and the spline, read by their affine part --------------------------

AFFINE = np.array([0.83, 0.21, 0.07, -0.18, 0.91, -0.05])


def spline_of(affine):
    """TPS thetas that move each control point c to A c + t."""
    control = geometry.tps_control_points()
    matrix = np.asarray(affine, np.float64).reshape(2, 3)
    return (control @ matrix[:, :2].T + matrix[:, 2] - control).ravel()


def test_each_transformer_outlines_the_region_it_samples():
    box = geometry.sampled_box([AFFINE], 29, "affine")
    flat = geometry.sampled_box([np.r_[AFFINE, 0, 0]], 29, "projective")
    np.testing.assert_allclose(flat, box, atol=1e-12)
    # the spline's outline runs round the border; moved by an affine map, it is that
    # map's box, straight edges with points along them
    outline = geometry.sampled_box([spline_of(AFFINE)], 29, "tps")[0]
    assert outline.shape == (4 * geometry.BORDER_POINTS, 2)
    np.testing.assert_allclose(outline[::geometry.BORDER_POINTS], box[0], atol=1e-9)
    identity = geometry.sampled_box([np.zeros(32)], 29, "tps")[0]
    assert identity.min() == pytest.approx(0) and identity.max() == pytest.approx(28)
    # a projective seen from the side: its far edge is shorter, and past the horizon NaN
    tilted = geometry.sampled_box([[1, 0, 0, 0, 1, 0, 0.3, 0]], 29, "projective")[0]
    assert np.ptp(tilted[1:3, 1]) < np.ptp(tilted[[0, 3], 1])
    assert np.isnan(geometry.sampled_box([[1, 0, 0, 0, 1, 0, 2.0, 0]], 29,
                                         "projective")).any()


def test_the_spline_offsets_are_the_transformers():
    from mnist_stn.compat import tf
    import transformer
    thetas = np.random.RandomState(7).uniform(-0.2, 0.2, size=(2, 32))
    with tf.Graph().as_default(), tf.Session() as sess:
        grid = sess.run(transformer.tps_grid_generator(5, 6, tf.constant(thetas)))
    x, y = np.meshgrid(np.linspace(-1, 1, 6), np.linspace(-1, 1, 5))
    points = np.c_[x.ravel(), y.ravel()]
    np.testing.assert_allclose(grid.reshape(2, 2, -1).transpose(0, 2, 1),
                               points[None] + geometry.tps_offsets(thetas, points),
                               atol=1e-12)


def test_theta_in_words_for_the_projective_and_the_spline():
    plain = geometry.decompose([AFFINE], 28, "affine")
    for transform, theta in (("projective", np.r_[AFFINE, 0, 0]), ("tps", spline_of(AFFINE))):
        parts = geometry.decompose([theta], 28, transform=transform)
        for key in ("angle", "scale_x", "scale_y", "shear", "shift_x", "shift_y"):
            np.testing.assert_allclose(parts[key], plain[key], atol=1e-9, err_msg=key)
        assert geometry.describe(parts, 0) == geometry.describe(plain, 0)
    tilted = geometry.decompose([[1, 0, 0, 0, 1, 0, 0.2, 0]], 28, transform="projective")
    assert tilted["perspective"][0] == pytest.approx(1.2 / 0.8)
    assert "seen in perspective, one side 1.5x the other" in geometry.describe(tilted, 0)
    bent = np.zeros(32)
    bent[2 * 5] = 0.2                        # one inner control point moved right
    parts = geometry.decompose([bent], 28, transform="tps")
    assert parts["bend"][0] > 0.5 and "bent, its control points" in geometry.describe(parts, 0)


def test_an_attention_window_is_the_affine_box_and_reads_as_a_zoom_and_shift():
    # on a 29-pixel input, half the side centred a quarter right: pixels 14 to 28 across
    box = geometry.sampled_box([[0.5, 0.5, 0.0]], 29, "attention")
    np.testing.assert_allclose(box[0], [[14, 7], [28, 7], [28, 21], [14, 21]], atol=1e-12)
    parts = geometry.decompose([[0.5, 0.5, 0.0]], 28, "attention")
    assert parts["scale_x"][0] == pytest.approx(2.0) and parts["angle"][0] == 0
    assert parts["shift_x"][0] == pytest.approx(-6.75)
