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
    ex = explore.Explorer(digit)
    yield ex
    ex.close()


def stn_output(image, theta):
    """The STN layer on its own, in a graph of its own: (28, 28)."""
    with tf.Graph().as_default(), tf.Session() as sess:
        out = transformer.spatial_transformer_network(
            tf.constant(image[None, :, :, None], tf.float32),
            tf.constant(np.asarray(theta, np.float32)[None]))
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
    (["--theta", "1,2,3"], "--theta needs six comma-separated numbers"),
    (["--theta", "1,0,0,0,1,nan"], "--theta needs six comma-separated numbers"),
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
