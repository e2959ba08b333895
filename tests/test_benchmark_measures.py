"""The benchmarks' measures (benchmarks/measures.py) against cases worked out by hand:
the box's area, which points lie in it, the rotation an STN leaves, a stroke's lean."""
import numpy as np
import pytest

from benchmarks import measures
from mnist_stn import distort, geometry


def test_residual_rotation_of_a_perfect_and_of_a_lazy_stn():
    with distort.Distorter("R", seed=3) as distorter:
        _, params = distorter(np.zeros((200, 784), np.float32), return_params=True)
    matrices = params["matrix"]                               # (N, 2, 3) canvas -> digit
    # An STN that undoes the rotation exactly: theta's linear part is M's inverse.
    perfect = np.concatenate([np.linalg.inv(matrices[:, :, :2]),
                              np.zeros((200, 2, 1))], axis=2).reshape(-1, 6)
    np.testing.assert_allclose(measures.residual_rotation(matrices, perfect), 0, atol=1e-9)
    # An STN that does nothing leaves the applied rotation, up to the sign convention.
    lazy = np.tile([1.0, 0, 0, 0, 1.0, 0], (200, 1))
    left = measures.residual_rotation(matrices, lazy)
    np.testing.assert_allclose(np.abs(left), np.abs(params["angle"]), atol=1e-9)
    assert np.degrees(left).std() > 40


def test_box_area_and_inside():
    identity = geometry.sampled_box([[1, 0, 0, 0, 1, 0]], 29, "affine")
    np.testing.assert_allclose(measures.box_area(identity), [28 * 28])
    half = geometry.sampled_box([[0.5, 0, 0, 0, 0.5, 0]], 29, "affine")  # a quarter of it
    np.testing.assert_allclose(measures.box_area(half), [14 * 14])
    turned = geometry.sampled_box([[0, -0.5, 0, 0.5, 0, 0]], 29, "affine")  # turned 90 deg
    np.testing.assert_allclose(measures.box_area(turned), [14 * 14])
    boxes = np.concatenate([half, half, turned])
    points = np.array([[14.0, 14.0], [3.0, 14.0], [20.9, 7.1]])
    np.testing.assert_array_equal(measures.inside_box(points, boxes), [True, False, True])


def test_output_points_invert_sampled_box():
    # the corners of the sampled box are shown at the output's corners, for any theta
    rng = np.random.RandomState(5)
    thetas = np.array([1, 0, 0, 0, 1, 0]) + rng.uniform(-0.4, 0.4, (6, 6))
    boxes = geometry.sampled_box(thetas, 60, "affine")
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


def test_the_protocol_measures_ink_where_it_is_put(fake_mnist_dir, tmp_path):
    from benchmarks import protocol
    # one lit pixel: its distance from the canvas centre, by hand
    canvas = np.zeros((1, 42, 42))
    canvas[0, 5, 30] = 1.0
    np.testing.assert_allclose(protocol.ink_centre_distance(canvas, 42),
                               [np.hypot(30 - 20.5, 5 - 20.5)])
    # ink at the centre stays on the canvas under a 2x zoom; a corner's leaves it
    centre, corner = np.zeros((2, 784)), np.zeros((2, 784))
    centre[:, 14 * 28 + 14] = corner[:, 0] = 1.0
    homographies = np.stack([np.eye(3), np.diag([0.5, 0.5, 1.0])])    # canvas -> digit
    np.testing.assert_allclose(protocol.p_ink_outside(centre, homographies), [0, 0])
    np.testing.assert_allclose(protocol.p_ink_outside(corner, homographies), [0, 1])
    table = tmp_path / "protocol.md"
    protocol.main(["--data-dir", str(fake_mnist_dir), "--table", str(table)])
    rows = [line for line in table.read_text().splitlines() if line.startswith("| ")][2:]
    assert [row.split(" |")[0] for row in rows] == [
        "| RTS (42x42)", "| clutter (60x60)", "| P (28x28)", "| E (28x28)", "| simard (28x28)"]
