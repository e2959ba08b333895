"""explore.py headless: sliders move theta, and the drawn output is the sampler's."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import explore  # noqa: E402
import transformer  # noqa: E402
from mnist_stn import data, geometry  # noqa: E402
from mnist_stn.compat import tf  # noqa: E402


@pytest.fixture(scope="module")
def digit(mnist_dir):
    return data.load_mnist(str(mnist_dir), validation_size=0).test.images[0].reshape(28, 28)


@pytest.fixture
def explorer(digit):
    ex = explore.Explorer(digit, "affine")
    yield ex
    ex.close()


def stn_output(image, theta, transform="affine"):
    """The STN layer on its own, in a graph of its own: (28, 28)."""
    with tf.Graph().as_default(), tf.Session() as sess:
        out = transformer.spatial_transformer_network(
            tf.constant(image[None, :, :, None], tf.float32),
            tf.constant(np.asarray(theta, np.float32)[None]), transform=transform)
        return sess.run(out)[0, :, :, 0]


def test_identity_shows_the_input_and_the_grid_on_every_pixel(explorer, digit):
    np.testing.assert_allclose(explorer.output(), digit, atol=1e-6)
    points = explorer.points.get_offsets()
    lattice = np.arange(0, 28, explore.GRID_STEP)
    np.testing.assert_allclose(np.unique(points[:, 0]), lattice, atol=1e-5)
    np.testing.assert_allclose(np.unique(points[:, 1]), lattice, atol=1e-5)


def test_move_sliders_draw_the_sampler_output_for_their_theta(explorer, digit):
    moves = {"rotation": 30.0, "zoom-x": 1.5, "zoom-y": 1.2, "shear": 10.0,
             "shift-x": 3.0, "shift-y": -2.0}
    for flag, value in moves.items():
        explorer.sliders[flag].set_val(value)
    theta = geometry.compose(angle=30.0, scale_x=1.5, scale_y=1.2, shear=10.0,
                             shift_x=3.0, shift_y=-2.0)
    np.testing.assert_allclose(explorer.theta, theta, atol=1e-12)
    np.testing.assert_allclose([explorer.sliders[f"theta {k}"].val for k in range(6)], theta)
    np.testing.assert_allclose(explorer.output(), np.clip(stn_output(digit, theta), 0, 1),
                               atol=1e-6)
    assert explorer.output_ax.get_title().startswith("output")
    assert "turned 30° clockwise" in explorer.output_ax.get_title()


def test_theta_sliders_move_the_digit_sliders(explorer, digit):
    explorer.sliders["theta 0"].set_val(0.5)       # read half as far across: zoom 2x
    explorer.sliders["theta 2"].set_val(0.25)      # looking right of the centre
    assert explorer.sliders["zoom-x"].val == pytest.approx(2.0)
    assert explorer.sliders["zoom-y"].val == pytest.approx(1.0)
    assert explorer.sliders["shift-x"].val == pytest.approx(-0.25 * 13.5)
    theta = [0.5, 0, 0.25, 0, 1, 0]
    np.testing.assert_allclose(explorer.output(), np.clip(stn_output(digit, theta), 0, 1),
                               atol=1e-6)
    # a degenerate theta draws (black) and says so, without moving the digit sliders
    explorer.sliders["theta 0"].set_val(0.0)
    explorer.sliders["theta 4"].set_val(0.0)
    assert "\ndegenerate: " in explorer.output_ax.get_title()
    assert explorer.sliders["zoom-x"].val == pytest.approx(2.0)


def test_save_writes_the_figure_for_the_flags(mnist_dir, tmp_path, capsys):
    path = tmp_path / "turned.png"
    assert explore.main(["--data-dir", str(mnist_dir), "--rotation", "-45", "--zoom-x",
                         "1.4", "--zoom-y", "1.4", "--save", str(path)]) == 0
    assert capsys.readouterr().out == (f"Wrote {path}: turned 45° anticlockwise, "
                                       "enlarged 1.4x\n")
    picture = matplotlib.pyplot.imread(path)
    assert picture.shape[:2] == (750, 1000) and picture[..., :3].std() > 0.1
    assert explore.main(["--data-dir", str(mnist_dir), "--theta=-1,0,0,0,1,0",
                         "--save", str(path)]) == 0
    assert "mirrored" in capsys.readouterr().out


@pytest.mark.parametrize("flags, message", [
    (["--theta", "1,2,3"], "--theta needs 6 comma-separated numbers for the affine"),
    (["--theta", "1,0,0,0,1,nan"], "--theta needs 6 comma-separated numbers"),
    (["--transform", "projective", "--theta", "1,0,0,0,1,0"],
     "--theta needs 8 comma-separated numbers for the projective"),
    (["--zoom-x", "0"], "--zoom-x must not be 0"),
    (["--rotation", "nan"], "--rotation must be a finite number, not nan"),
    (["--rotation", "inf"], "--rotation must be a finite number, not inf"),
    (["--shift-x", "nan"], "--shift-x must be a finite number, not nan"),
])
def test_bad_values_are_one_error_line(flags, message, capsys):
    with pytest.raises(SystemExit) as stop:
        explore.main(flags + ["--save", "x.png"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("name, message", [
    ("no_such_folder/x.png", "there is no folder"),
    ("x.nosuchformat", "name a file ending in one of"),
    (".", "is a folder; name a file in it"),
])
def test_a_save_path_that_cannot_be_written_is_refused_first(tmp_path, capsys, name, message):
    with pytest.raises(SystemExit) as stop:
        explore.main(["--save", str(tmp_path / name)])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_without_a_display_it_says_to_save(mnist_dir, capsys):
    assert explore.main(["--data-dir", str(mnist_dir)]) == 1      # Agg here: no window
    assert "pass --save" in capsys.readouterr().err


def test_an_unreadable_image_is_one_error_line(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("no")
    assert explore.main([str(bad), "--save", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.png" in err and len(err.splitlines()) == 1


def test_the_projective_tilts_with_its_two_sliders(digit, mnist_dir, tmp_path, capsys):
    ex = explore.Explorer(digit, transform="projective")
    try:
        assert len([name for name in ex.sliders if name.startswith("theta")]) == 8
        ex.sliders["theta 6"].set_val(0.2)          # the plane tilts: x's side recedes
        assert ex.theta[6] == pytest.approx(0.2)
        np.testing.assert_allclose(ex.output(), stn_output(digit, ex.theta, "projective"),
                                   atol=1e-6)
        ex.sliders["rotation"].set_val(30)          # the affine part turns, the tilt stays
        assert ex.theta[6] == pytest.approx(0.2)
        assert "turned 30° clockwise" in ex.output_ax.get_title()
        assert "perspective" in ex.output_ax.get_title()
    finally:
        ex.close()
    path = tmp_path / "tilted.png"
    assert explore.main(["--data-dir", str(mnist_dir), "--transform", "projective",
                         "--theta", "1,0,0,0,1,0,0.2,0", "--save", str(path)]) == 0
    assert "seen in perspective, one side 1.5x the other" in capsys.readouterr().out


def test_dragging_a_spline_control_point_bends_the_grid(digit):
    ex = explore.Explorer(digit, transform="tps")
    try:
        np.testing.assert_allclose(ex.output(), digit, atol=1e-5)   # the identity
        start = ex.control_pixels()[5].copy()
        ex.move_control(5, start[0] + 3, start[1])   # 3 px right: the output bends there
        np.testing.assert_allclose(ex.control_pixels()[5], start + [3, 0], atol=1e-9)
        np.testing.assert_allclose(ex.output(), stn_output(digit, ex.theta, "tps"), atol=1e-6)
        assert np.abs(ex.output() - digit).max() > 0.1
        assert "bent" in ex.output_ax.get_title()
        ex.sliders["zoom-x"].set_val(2.0)            # the affine part zooms, the bend stays
        assert geometry.decompose(ex.theta[None], 28, "tps")["bend"][0] > 0.5
        np.testing.assert_allclose(ex.output(), stn_output(digit, ex.theta, "tps"), atol=1e-6)
    finally:
        ex.close()


def test_the_attention_window_has_a_scale_and_a_shift(digit, mnist_dir, tmp_path, capsys):
    ex = explore.Explorer(digit, transform="attention")
    try:
        assert [ex.sliders[f"theta {k}"].label.get_text() for k in range(3)] == [
            "scale s", "shift x", "shift y"]
        ex.sliders["theta 0"].set_val(0.5)            # the window halves: enlarged 2x
        np.testing.assert_allclose(ex.output(), stn_output(digit, ex.theta, "attention"),
                                   atol=1e-6)
        assert "enlarged" in ex.output_ax.get_title()
        ex.sliders["shift-x"].set_val(7.0)            # a move slider keeps the window square
        assert ex.theta[0] == pytest.approx(0.5)
        assert ex.theta[1] == pytest.approx(-7.0 / 13.5)    # 7 input px of 13.5
    finally:
        ex.close()
    path = tmp_path / "window.png"
    assert explore.main(["--data-dir", str(mnist_dir), "--transform", "attention",
                         "--theta", "0.5,0.2,0", "--save", str(path)]) == 0
    assert path.stat().st_size > 0
