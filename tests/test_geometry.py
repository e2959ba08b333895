"""What a theta does, in pixels: the sampled box drawn on the figures."""
import numpy as np
import pytest

from benchmarks import measures
from mnist_stn import distort, geometry


def test_sampled_box_maps_the_output_corners_into_the_input():
    identity = [1, 0, 0, 0, 1, 0]
    np.testing.assert_allclose(geometry.sampled_box([identity], 28)[0],
                               [[0, 0], [27, 0], [27, 27], [0, 27]])
    # half size, shifted right by a quarter of the canvas: x in [-0.25, 0.75]
    zoom = [0.5, 0, 0.25, 0, 0.5, 0]
    np.testing.assert_allclose(geometry.sampled_box([zoom], 41)[0],
                               [[15, 10], [35, 10], [35, 30], [15, 30]])
    # a 90 degree turn visits the same corners, in another order
    turn = [0, -1, 0, 1, 0, 0]
    np.testing.assert_allclose(geometry.sampled_box([turn], 28)[0],
                               [[27, 0], [27, 27], [0, 27], [0, 0]])


def test_box_area_and_inside():
    identity = geometry.sampled_box([[1, 0, 0, 0, 1, 0]], 29)
    np.testing.assert_allclose(measures.box_area(identity), [28 * 28])
    half = geometry.sampled_box([[0.5, 0, 0, 0, 0.5, 0]], 29)            # a quarter of it
    np.testing.assert_allclose(measures.box_area(half), [14 * 14])
    turned = geometry.sampled_box([[0, -0.5, 0, 0.5, 0, 0]], 29)          # turned 90 deg
    np.testing.assert_allclose(measures.box_area(turned), [14 * 14])
    boxes = np.concatenate([half, half, turned])
    points = np.array([[14.0, 14.0], [3.0, 14.0], [20.9, 7.1]])
    np.testing.assert_array_equal(measures.inside_box(points, boxes), [True, False, True])


# -- theta in words ---------------------------------------------------------------------

def read_back(size=28, **transform):
    parts = geometry.decompose([geometry.compose(size=size, **transform)], size)
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
    words = geometry.decompose([geometry.compose(scale_x=1.0, scale_y=-1.0)], 28)
    assert geometry.describe(words, 0) == "mirrored"


def test_undoing_a_counter_clockwise_turn_is_a_clockwise_one():
    # distort's R turns digits counter-clockwise as seen for a positive angle; the theta
    # that shows the digit upright again turns it clockwise by as much
    m = distort._similarity_matrix(np.radians([30.0]), np.ones(1), np.zeros((1, 2)), 28)[0]
    theta = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2].ravel()
    parts = geometry.decompose([theta], 28)
    assert parts["angle"][0] == pytest.approx(30.0)
    assert geometry.describe(parts, 0) == "turned 30° clockwise"


def test_the_words():
    theta = geometry.compose(angle=31.0, scale_x=1.4, scale_y=1.4, shift_x=-5.0, shift_y=-2.0)
    parts = geometry.decompose([theta, [1, 0, 0, 0, 1, 0]], 28)
    assert geometry.describe(parts, 0) == ("turned 31° clockwise, enlarged 1.4x, "
                                           "moved 5 px left and 2 px up")
    assert geometry.short_label(parts, 0) == "31°cw 1.4x"
    assert geometry.describe(parts, 1) == "left as it was"
    # the identity on a 42x42 canvas passes the whole canvas on at 28x28: shrunk
    parts = geometry.decompose([[1, 0, 0, 0, 1, 0]], 42)
    assert geometry.describe(parts, 0) == "shrunk to 0.66x"
    parts = geometry.decompose([geometry.compose(scale_x=0.7, scale_y=1.3, shear=-10)], 28)
    assert geometry.describe(parts, 0) == ("zoomed 0.7x across and 1.3x up and down, "
                                           "sheared 10° left")


def test_degenerate_thetas_get_a_word_not_a_crash():
    thetas = [[0, 0, 0, 0, 0, 0], [1, 2, 0, 0.5, 1, 0], [np.nan, 0, 0, 0, 1, 0],
              [np.inf, 0, 0, 0, 1, 0], [1, 0, 0, 0, 1, 0]]
    parts = geometry.decompose(thetas, 28)
    np.testing.assert_array_equal(parts["degenerate"], [True, True, True, True, False])
    assert np.isnan(parts["angle"][:4]).all() and np.isnan(parts["shift_x"][:4]).all()
    assert geometry.describe(parts, 0).startswith("degenerate")
    assert geometry.describe(parts, 2).startswith("no transform: theta is not finite")
    assert geometry.short_label(parts, 1) == "degenerate"
    assert geometry.summary(parts).endswith("; 4 degenerate")


def test_summary_gives_medians_and_spread():
    thetas = [geometry.compose(angle=a, scale_x=z, scale_y=z)
              for a, z in ((-10, 1.2), (0, 1.3), (10, 1.4), (20, 1.3))]
    line = geometry.summary(geometry.decompose(thetas, 28))
    angles = np.array([-10, 0, 10, 20.0])
    assert line == (f"turned by +5.0° (median; clockwise +), std {angles.std():.1f}°; "
                    f"zoom 1.30x (median), std {np.std([1.2, 1.3, 1.4, 1.3]):.2f}")


def test_output_points_invert_sampled_box():
    # the corners of the sampled box are shown at the output's corners, for any theta
    rng = np.random.RandomState(5)
    thetas = np.array([1, 0, 0, 0, 1, 0]) + rng.uniform(-0.4, 0.4, (6, 6))
    boxes = geometry.sampled_box(thetas, 60)
    for k, corner in enumerate([(0, 0), (27, 0), (27, 27), (0, 27)]):
        np.testing.assert_allclose(measures.output_points(thetas, boxes[:, k], 60, 28),
                                   np.tile(corner, (6, 1)), atol=1e-9)
    # a zoom x2 about the centre (theta samples the central half) doubles distances
    zoom = np.array([[0.5, 0, 0, 0, 0.5, 0]])
    np.testing.assert_allclose(measures.output_points(zoom, [[39.5, 29.5]], 60, 60),
                               [[49.5, 29.5]], atol=1e-9)


def test_turn_left_says_where_the_spread_sits():
    # five upright 7s and five 1s of which two were stood up upside down
    residual = np.array([0, 5, -5, 10, -10, 3, -3, 178, -175, 40.0])
    labels = np.array([7] * 5 + [1] * 5)
    left = measures.turn_left(residual, labels)
    assert left["std"] == pytest.approx(residual.std())
    assert left["median_abs"] == pytest.approx(7.5)
    assert left["upright"] == pytest.approx(0.7) and left["upside_down"] == pytest.approx(0.2)
    # folded, 178 is -2 and -175 is 5: only the 40 is left far from upright
    assert left["std_folded"] == pytest.approx(np.std([0, 5, -5, 10, -10, 3, -3, -2, 5, 40]))
    assert left["std_per_digit"][7] == pytest.approx(np.std([0, 5, -5, 10, -10]))
    assert left["std_per_digit"][1] == pytest.approx(np.std([3, -3, 178, -175, 40]))


def test_turn_left_from_the_pose_the_stn_gives_a_digit_as_written():
    # an STN that stands each digit in its own pose, whatever the rotation: nothing left
    own = np.array([10.0, -20.0, 5.0, 170.0])
    left = measures.turn_left(own, np.zeros(4), own_pose=own)
    assert left["std_own_pose"] == pytest.approx(own.std())
    assert left["std_from_own_pose"] == pytest.approx(0.0)
    # 175 from -175 is 10 degrees away, not 350
    left = measures.turn_left(np.array([175.0, 0.0]), np.zeros(2), own_pose=[-175.0, 0.0])
    assert left["std_from_own_pose"] == pytest.approx(np.std([-10.0, 0.0]))


def test_ink_lean_reads_a_turned_bar():
    bar = np.zeros((28, 28))
    bar[4:24, 13:15] = 1.0                              # a vertical stroke, 20 px long
    lean, elongation = measures.ink_lean(bar[None])
    assert lean[0] == pytest.approx(0, abs=1e-9) and elongation[0] > 0.9
    # its top moved right: a clockwise lean as seen (y points down)
    rows, cols = np.mgrid[0:28, 0:28]
    a = np.radians(20)
    along = (cols - 13.5) * np.sin(a) - (rows - 13.5) * np.cos(a)    # up the stroke
    across = (cols - 13.5) * np.cos(a) + (rows - 13.5) * np.sin(a)
    turned = ((np.abs(along) < 10) & (np.abs(across) < 1)).astype(float)
    assert measures.ink_lean(turned[None])[0][0] == pytest.approx(20, abs=1.5)
    assert measures.ink_lean(turned[::, ::-1][None])[0][0] == pytest.approx(-20, abs=1.5)
    disc = ((cols - 13.5) ** 2 + (rows - 13.5) ** 2 < 64).astype(float)
    assert measures.ink_lean(disc[None])[1][0] < 0.05


def test_turn_left_by_band_of_the_applied_turn():
    applied = np.array([5.0, -10, 20, -40, 50, 70, -80, 90])
    lazy = measures.turn_left(applied, np.zeros(8), own_pose=np.zeros(8), applied=applied)
    bands = lazy["by_angle"]
    assert [(b["from"], b["to"]) for b in bands] == list(zip(measures.ANGLE_BANDS,
                                                             measures.ANGLE_BANDS[1:]))
    assert [b["digits"] for b in bands] == [2, 1, 1, 1, 1, 2]   # 90 counts in the last
    # an STN that turns nothing leaves each digit short by all of its turn
    assert bands[0]["short"] == pytest.approx(7.5) and bands[5]["short"] == pytest.approx(85)
    assert bands[5]["std_from_own_pose"] == pytest.approx(np.std([-80.0, 90.0]))


# -- the projective and the spline, read by their affine part --------------------------

AFFINE = np.array([0.83, 0.21, 0.07, -0.18, 0.91, -0.05])


def spline_of(affine):
    """TPS thetas that move each control point c to A c + t."""
    control = geometry.tps_control_points()
    matrix = np.asarray(affine, np.float64).reshape(2, 3)
    return (control @ matrix[:, :2].T + matrix[:, 2] - control).ravel()


def test_each_transformer_outlines_the_region_it_samples():
    box = geometry.sampled_box([AFFINE], 29)
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
    plain = geometry.decompose([AFFINE], 28)
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
