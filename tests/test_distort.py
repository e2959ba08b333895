"""The distorted MNIST generator against NumPy: geometry, conventions, statistics, seeds.

Synthetic digits only (blobs and an 'L'), so nothing here depends on the real MNIST.
"""
import numpy as np
import pytest

from helpers import tps_sources
from mnist_stn import distort
from mnist_stn.constants import IMAGE_PIXELS, IMAGE_SIZE

CENTRE = (IMAGE_SIZE - 1) / 2.0          # 13.5: the pixel index of the digit's centre


# -- synthetic digits and an independent NumPy sampler ---------------------------------

def blob(col, row, sigma=1.5):
    """A 28x28 Gaussian blob of peak ~1 centred at pixel (col, row)."""
    rows, cols = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    return np.exp(-((cols - col) ** 2 + (rows - row) ** 2) / (2 * sigma ** 2)).astype(np.float32)


def l_digit(smooth=0.0):
    """An 'L' of full-intensity strokes 3 px wide, off-centre; optionally blurred."""
    img = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    img[5:22, 8:11] = 1.0                                  # the upright
    img[19:22, 8:19] = 1.0                                 # the foot
    if smooth:
        taps = np.arange(-6, 7)
        k = np.exp(-0.5 * (taps / smooth) ** 2)
        k /= k.sum()
        img = np.apply_along_axis(np.convolve, 0, img, k, "same")
        img = np.apply_along_axis(np.convolve, 1, img, k, "same").astype(np.float32)
    return img


def digits(n, seed=0):
    """n digit-like images (N, 784): 'L's and random blobs, all in [0, 1]."""
    rng = np.random.RandomState(seed)
    out = [l_digit() if i % 2 == 0 else
           np.maximum(blob(*rng.uniform(8, 20, 2), sigma=2.0), blob(*rng.uniform(8, 20, 2)))
           for i in range(n)]
    return np.stack(out).reshape(n, IMAGE_PIXELS)


def np_bilinear(img, col, row):
    """Bilinear read of img (28, 28) at pixel coordinates col, row (any shape), 0 outside."""
    c0, r0 = np.floor(col).astype(int), np.floor(row).astype(int)
    fc, fr = col - c0, row - r0

    def at(r, c):
        inside = (r >= 0) & (r < IMAGE_SIZE) & (c >= 0) & (c < IMAGE_SIZE)
        last = IMAGE_SIZE - 1
        return np.where(inside, img[np.clip(r, 0, last), np.clip(c, 0, last)], 0.0)

    return ((1 - fr) * (1 - fc) * at(r0, c0) + (1 - fr) * fc * at(r0, c0 + 1)
            + fr * (1 - fc) * at(r0 + 1, c0) + fr * fc * at(r0 + 1, c0 + 1))


def np_affine_warp(img, matrix, size):
    """Canvas (size, size) whose pixels read img at matrix @ (x, y, 1), all normalised."""
    line = np.linspace(-1.0, 1.0, size)
    gx, gy = np.meshgrid(line, line)
    xd = matrix[0, 0] * gx + matrix[0, 1] * gy + matrix[0, 2]
    yd = matrix[1, 0] * gx + matrix[1, 1] * gy + matrix[1, 2]
    return np_bilinear(img, (xd + 1) * CENTRE, (yd + 1) * CENTRE)


def centroid(img):
    """Ink-weighted (col, row) of a 2-D image."""
    rows, cols = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    return np.array([(img * cols).sum(), (img * rows).sum()]) / img.sum()


def ccw_as_seen(dx, dy, angle):
    """Where (dx, dy) (x right, y down) goes when turned counter-clockwise on screen:
    flip to y-up, apply the textbook rotation, flip back."""
    x_up, y_up = dx, -dy
    x_rot = x_up * np.cos(angle) - y_up * np.sin(angle)
    y_rot = x_up * np.sin(angle) + y_up * np.cos(angle)
    return x_rot, -y_rot


def run(kind, images, seed=0, params=True):
    with distort.Distorter(kind, seed=seed) as d:
        return d(images, return_params=params)


# -- all kinds ------------------------------------------------------------------------

def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="unknown distortion"):
        distort.Distorter("RT")


def test_bad_image_shape_raises():
    with distort.Distorter("R", seed=0) as d, pytest.raises(ValueError, match="shape"):
        d(np.zeros((3, 27, 27), np.float32))


def test_none_returns_input():
    images = np.random.RandomState(0).rand(7, IMAGE_PIXELS).astype(np.float32)
    out, params = run("none", images)
    np.testing.assert_allclose(out, images, atol=1e-5, rtol=0)
    # (N, 28, 28) input gives the same, flat, output
    np.testing.assert_allclose(run("none", images.reshape(7, 28, 28), params=False), images,
                               atol=1e-5, rtol=0)
    np.testing.assert_array_equal(params["angle"], 0)


@pytest.mark.parametrize("kind", distort.KINDS)
def test_shape_dtype_range(kind):
    rng = np.random.RandomState(1)
    # digits, noise, and all-white images: bilinear mixing must not leave [0, 1]
    images = np.concatenate([digits(6), rng.rand(4, IMAGE_PIXELS), np.ones((2, IMAGE_PIXELS))])
    with distort.Distorter(kind, seed=0) as d:
        size = d.canvas_size
        out = d(images.astype(np.float32))
        empty = d(np.zeros((0, IMAGE_PIXELS), np.float32))
    assert size == distort.CANVAS_SIZE[kind]
    assert out.shape == (len(images), size * size) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.max() > 0.5                                 # the ink is still there
    assert empty.shape == (0, size * size)


@pytest.mark.parametrize("kind", [k for k in distort.KINDS if k != "none"])
def test_seeds_and_fresh_draws(kind):
    images = digits(8)
    with distort.Distorter(kind, seed=5) as a, distort.Distorter(kind, seed=5) as b, \
            distort.Distorter(kind, seed=6) as c:
        first_a, first_b, first_c = a(images), b(images), c(images)
        second_a = a(images)
        second_b = b(images)
    np.testing.assert_array_equal(first_a, first_b)        # same seed, same sequence
    np.testing.assert_array_equal(second_a, second_b)
    assert not np.array_equal(first_a, first_c)            # another seed
    assert not np.array_equal(first_a, second_a)           # fresh distortions every call
    # every image of the batch gets its own draw
    assert not np.allclose(first_a[0], first_a[2])         # images 0 and 2 are the same 'L'


@pytest.mark.parametrize("kind", ["R", "clutter"])
def test_fixed_test_set_is_fixed(kind):
    images = digits(12)
    a = distort.fixed_test_set(images, kind)
    b = distort.fixed_test_set(images, kind)
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, distort.fixed_test_set(images, kind, seed=1))


def test_closed_distorter_refuses():
    d = distort.Distorter("R", seed=0)
    d.close()
    d.close()                                              # twice is fine
    with pytest.raises(ValueError, match="closed"):
        d(digits(1))


# -- R --------------------------------------------------------------------------------

def test_rotation_convention_and_matrix(monkeypatch):
    # A blob 8 px right of the centre and one 6 px above it, separately.
    images = np.stack([blob(CENTRE + 8, CENTRE), blob(CENTRE, CENTRE - 6)] * 10)
    monkeypatch.setattr(distort, "CHUNK", 7)               # results must not depend on chunks
    out, params = run("R", images.reshape(20, -1), seed=3)
    out = out.reshape(20, 28, 28)
    angles = params["angle"]
    assert np.abs(angles).max() > np.radians(30)           # some real rotations to check
    for i in range(20):
        dx, dy = (8.0, 0.0) if i % 2 == 0 else (0.0, -6.0)
        want = CENTRE + np.array(ccw_as_seen(dx, dy, angles[i]))
        np.testing.assert_allclose(centroid(out[i]), want, atol=0.15)
        # the matrix is the one that produced the output (independent NumPy sampler)
        np.testing.assert_allclose(out[i], np_affine_warp(images[i], params["matrix"][i], 28),
                                   atol=1e-4)


def test_rotation_angle_statistics():
    _, params = run("R", np.zeros((2000, IMAGE_PIXELS), np.float32), seed=11)
    angles = np.degrees(params["angle"])
    assert angles.shape == (2000,)
    assert np.abs(angles).max() <= 90.0
    assert np.abs(angles).max() > 85.0                     # the range is used, not ±45
    assert abs(angles.mean()) < 3.0
    uniform_std = 180.0 / np.sqrt(12.0)                    # ~52 degrees
    assert abs(angles.std() / uniform_std - 1.0) < 0.1


# -- RTS ------------------------------------------------------------------------------

def canvas_points(matrix, points, size):
    """Canvas positions (pixels from the canvas centre) of digit points (pixels from the
    digit centre, (K, 2)), by inverting the canvas -> digit matrices: (N, K, 2)."""
    linear, shift = matrix[:, :, :2], matrix[:, :, 2]
    digit = np.asarray(points) / CENTRE                    # normalised digit coordinates
    canvas = np.einsum("nij,nkj->nki", np.linalg.inv(linear), digit[None] - shift[:, None])
    return canvas * (size - 1) / 2.0


def test_rts_ink_stays_on_canvas_and_is_placed_anywhere():
    size, half = distort.CANVAS_SIZE["RTS"], (distort.CANVAS_SIZE["RTS"] - 1) / 2.0
    images = digits(1000, seed=5)
    images[images < 0.05] = 0.0        # a blob's far tail is no ink (MNIST's margins are 0)
    _, p = run("RTS", images, seed=2)
    angle, scale, offset = np.degrees(p["angle"]), p["scale"], p["offset"]
    assert np.abs(angle).max() <= 45.0 and abs(angle.mean()) < 3.0
    assert scale.min() >= 0.7 and scale.max() <= 1.2
    rows, cols = np.mgrid[0:28, 0:28]
    pixels = np.stack([cols.ravel() - CENTRE, rows.ravel() - CENTRE], axis=1)   # (784, 2)
    where = canvas_points(p["matrix"], pixels, size)                # (N, 784, 2)
    ink = images > 0
    # every ink pixel's centre lands on the canvas, and the placement uses all the room:
    # some ink touches an edge, and many digits sit far from the centre
    reach = np.where(ink[..., None], np.abs(where), 0).max(axis=(1, 2))
    assert reach.max() <= half + 1e-6
    assert (reach > half - 1).mean() > 0.05
    ink_centre = (where * ink[..., None]).sum(1) / ink.sum(1)[:, None]
    distance = np.linalg.norm(ink_centre, axis=1)
    assert (distance > 9).mean() > 0.25 and distance.max() > 13
    # the frame's own centre is the offset
    np.testing.assert_allclose(canvas_points(p["matrix"], [[0, 0]], size)[:, 0], offset,
                               atol=1e-6)


def test_rts_ink_scales_with_area_and_matches_matrix():
    size = distort.CANVAS_SIZE["RTS"]
    images = np.stack([l_digit(smooth=1.0), blob(12, 15, sigma=2.5)] * 15).reshape(30, -1)
    out, p = run("RTS", images, seed=4)
    ink_in = images.sum(axis=1)
    ink_out = out.sum(axis=1)
    np.testing.assert_allclose(ink_out, ink_in * p["scale"] ** 2, rtol=0.03)
    for i in range(0, 30, 5):
        want = np_affine_warp(images[i].reshape(28, 28), p["matrix"][i], size)
        np.testing.assert_allclose(out[i].reshape(size, size), want, atol=1e-4)


# -- P --------------------------------------------------------------------------------

def test_projective_corners_and_homography():
    images = digits(400)
    out, p = run("P", images, seed=7)
    scale, corners, h = p["scale"], p["corners"], p["homography"]
    assert scale.min() >= 0.75 and scale.max() <= 1.0
    assert corners.shape == (400, 4, 2)
    signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])
    nominal = CENTRE + scale[:, None, None] * signs * CENTRE      # scaled corner pixels
    noise = corners - nominal
    assert np.abs(noise).max() < 5 * distort.P_CORNER_SIGMA
    assert abs(noise.std() / distort.P_CORNER_SIGMA - 1) < 0.1
    assert abs(noise.mean()) < 0.5
    # H takes each moved corner (canvas, normalised) back to its digit corner (+-1, +-1)
    pts = np.concatenate([corners / CENTRE - 1, np.ones((400, 4, 1))], axis=2)
    mapped = np.einsum("nij,nkj->nki", h, pts)
    np.testing.assert_allclose(mapped[..., :2] / mapped[..., 2:],
                               np.broadcast_to(signs, (400, 4, 2)), atol=1e-6)
    # and the output is the digit read through H (independent sampler, first images)
    line = np.linspace(-1, 1, 28)
    gx, gy = np.meshgrid(line, line)
    for i in range(5):
        xw, yw, w = (h[i, k, 0] * gx + h[i, k, 1] * gy + h[i, k, 2] for k in range(3))
        assert w.min() > 0                                 # no horizon on these canvases
        want = np_bilinear(images[i].reshape(28, 28),
                           (xw / w + 1) * CENTRE, (yw / w + 1) * CENTRE)
        np.testing.assert_allclose(out[i].reshape(28, 28), want, atol=1e-4)
    assert np.abs(out - images).max(axis=1).min() > 0.1    # every digit changed


def test_projective_without_noise_is_identity(monkeypatch):
    monkeypatch.setattr(distort, "P_SCALE_RANGE", (1.0, 1.0))
    monkeypatch.setattr(distort, "P_CORNER_SIGMA", 0.0)
    images = digits(6)
    out, p = run("P", images, seed=0)
    np.testing.assert_allclose(out, images, atol=1e-5, rtol=0)
    np.testing.assert_allclose(p["homography"], np.broadcast_to(np.eye(3), (6, 3, 3)), atol=1e-9)


def test_projective_scale_only_shrinks_about_centre(monkeypatch):
    monkeypatch.setattr(distort, "P_SCALE_RANGE", (0.8, 0.8))
    monkeypatch.setattr(distort, "P_CORNER_SIGMA", 0.0)
    img = blob(CENTRE + 6, CENTRE - 4, sigma=2.0)
    out, _ = run("P", img.reshape(1, -1), seed=0)
    out = out.reshape(28, 28)
    np.testing.assert_allclose(centroid(out), CENTRE + 0.8 * np.array([6.0, -4.0]), atol=0.05)
    np.testing.assert_allclose(out.sum(), img.sum() * 0.8 ** 2, rtol=0.02)


# -- E: the paper's spline ---------------------------------------------------------------

def test_paper_elastic_reads_the_digit_where_an_independent_spline_says():
    images = digits(5)
    out, p = run("E", images, seed=4)
    # Independent of the code under test: the canvas's 4x4 control points read the digit
    # at their place / scale + noise (pixels / 13.5); NumPy solves the spline through them.
    ticks = np.linspace(-1, 1, 4)
    control = np.stack([a.ravel() for a in np.meshgrid(ticks, ticks)], axis=1)
    for i in range(len(images)):
        reads = control / p["scale"][i] + p["noise"][i] / CENTRE
        x, y = tps_sources(reads - control, 28, 28).T
        want = np_bilinear(images[i].reshape(28, 28), (x + 1) * CENTRE, (y + 1) * CENTRE)
        np.testing.assert_allclose(out[i], want, atol=1e-5)


def test_paper_elastic_draws_its_scale_and_noise():
    images = np.stack([l_digit(smooth=0.8)] * 400).reshape(400, -1)
    out, p = run("E", images, seed=9)
    assert p["noise"].shape == (400, 16, 2) and p["theta"].shape == (400, 32)
    low, high = distort.E_SCALE_RANGE
    assert low <= p["scale"].min() < low + 0.02 and high - 0.02 < p["scale"].max() <= high
    assert abs(p["noise"].std() / distort.E_POINT_SIGMA - 1) < 0.05
    assert abs(p["noise"].mean()) < 0.1
    # smaller, by the scale squared on average (the noise bends, it neither adds nor
    # removes ink on average), and visibly bent
    ratio = out.sum(axis=1) / images.sum(axis=1)
    assert abs(ratio.mean() / (p["scale"] ** 2).mean() - 1) < 0.05
    assert np.abs(out - images).max(axis=1).min() > 0.2


# -- simard: Simard's elastic field ---------------------------------------------------------

def test_elastic_field_and_output():
    images = np.stack([l_digit(smooth=0.8)] * 100).reshape(100, -1)
    out, p = run("simard", images, seed=9)
    d = p["displacement"]
    assert d.shape == (100, 2, 28, 28)
    # Expected size of the field, computed independently: uniform[-1, 1] noise (variance
    # 1/3) through a separable normalised Gaussian of sigma SIMARD_SIGMA, times SIMARD_ALPHA.
    taps = np.arange(-40, 41)
    g = np.exp(-0.5 * (taps / distort.SIMARD_SIGMA) ** 2)
    g /= g.sum()
    want_std = distort.SIMARD_ALPHA * np.sqrt(1 / 3.0) * (g ** 2).sum()
    assert abs(d.std() / want_std - 1) < 0.1
    assert abs(d.mean()) < 0.2 * want_std
    # smooth: neighbouring pixels move nearly alike
    step = np.abs(np.diff(d, axis=3)).mean()
    assert step < 0.25 * np.abs(d).mean()
    # the output is the digit read at pixel + displacement
    cols, rows = np.meshgrid(np.arange(28), np.arange(28))
    for i in range(3):
        want = np_bilinear(images[i].reshape(28, 28), cols + d[i, 0], rows + d[i, 1])
        np.testing.assert_allclose(out[i].reshape(28, 28), want, atol=1e-4)
    # visibly changed, but the ink is conserved on average; single digits gain or lose
    # ink where the field stretches or squeezes their strokes (alpha = 34 px does so)
    assert np.abs(out - images).max(axis=1).min() > 0.2
    ratio = out.sum(axis=1) / images.sum(axis=1)
    assert abs(ratio.mean() - 1) < 0.05 and np.all(np.abs(ratio - 1) < 0.75)


# -- clutter --------------------------------------------------------------------------

def test_clutter_digit_inside_and_six_pieces():
    size, piece = distort.CANVAS_SIZE["clutter"], distort.CLUTTER_PIECE_SIZE
    images = digits(40)
    out, p = run("clutter", images, seed=8)
    assert out.shape == (40, size * size)
    position, pieces = p["position"], p["pieces"]
    assert pieces.shape == (40, 6, 5)
    srcs = images.reshape(40, 28, 28)
    # the frame may hang over the edge, the ink never does
    for i in range(40):
        rows, cols = np.nonzero(srcs[i] > 0)
        assert 0 <= position[i, 0] + rows.min() and position[i, 0] + rows.max() < size
        assert 0 <= position[i, 1] + cols.min() and position[i, 1] + cols.max() < size
    assert np.all(pieces[:, :, 0] != np.arange(40)[:, None])    # from other digits
    assert pieces[:, :, 1:3].min() >= 0 and pieces[:, :, 1:3].max() <= 28 - piece
    assert pieces[:, :, 3:].min() >= 0 and pieces[:, :, 3:].max() <= size - piece
    # canvases with a 28-pixel margin, so a frame hanging over the edge can be cut out
    canvases = np.pad(out.reshape(40, size, size), [(0, 0), (28, 28), (28, 28)])
    for i in range(40):
        r, c = position[i] + 28
        block = canvases[i, r:r + 28, c:c + 28]
        # the whole digit is there, never darkened; where it is bright it is unchanged
        assert np.all(block >= srcs[i] - 1e-6)
        bright = srcs[i] > 0.5
        np.testing.assert_allclose(block[bright], srcs[i][bright], atol=1e-5)
        # rebuild the canvas independently: digit pasted, then six max-combined pieces
        want = np.zeros((size + 56, size + 56), np.float32)
        want[r:r + 28, c:c + 28] = srcs[i]
        want = want[28:-28, 28:-28]
        for src, sr, sc, dr, dc in pieces[i]:
            want[dr:dr + piece, dc:dc + piece] = np.maximum(
                want[dr:dr + piece, dc:dc + piece], srcs[src, sr:sr + piece, sc:sc + piece])
        np.testing.assert_allclose(canvases[i, 28:-28, 28:-28], want, atol=1e-5)


def test_clutter_pieces_counted_on_blank_digit():
    # Image 0 is blank, image 1 all white: image 0's canvas shows only its pieces, six
    # white 6x6 squares, possibly overlapping.
    size, piece = distort.CANVAS_SIZE["clutter"], distort.CLUTTER_PIECE_SIZE
    images = np.stack([np.zeros(IMAGE_PIXELS), np.ones(IMAGE_PIXELS)]).astype(np.float32)
    with distort.Distorter("clutter", seed=1) as d:
        for _ in range(5):
            out, p = d(images, return_params=True)
            canvas = out[0].reshape(size, size)
            assert set(np.unique(canvas)) <= {0.0, 1.0}
            union = np.zeros((size, size), bool)
            for _, _, _, dr, dc in p["pieces"][0]:
                union[dr:dr + piece, dc:dc + piece] = True
            np.testing.assert_array_equal(canvas == 1.0, union)
            assert piece * piece < canvas.sum() <= 6 * piece * piece


def test_clutter_positions_cover_the_canvas():
    _, p = run("clutter", np.zeros((500, IMAGE_PIXELS), np.float32), seed=3)
    pos = p["position"]
    assert pos.min() == 0 and pos.max() == distort.CANVAS_SIZE["clutter"] - 28
    assert abs(pos.mean() - 16) < 1.5


def test_p_never_squashes_a_digit_into_a_sliver():
    # A corner nearly on the line through its neighbours gives a homography that squeezes
    # the digit's middle into a corner of the quadrilateral; such corners are redrawn.
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    centre = (IMAGE_SIZE - 1) / 2
    blob = np.exp(-((xx - centre) ** 2 + (yy - centre) ** 2) / (2 * 3.0 ** 2))
    images = np.tile(blob.reshape(1, -1), (2000, 1)).astype(np.float32)
    with distort.Distorter("P", seed=5) as distorter:
        out, params = distorter(images, return_params=True)
    corners = params["corners"]                                   # (n, 4, 2)
    edges = np.roll(corners, -1, axis=1) - corners
    nxt = np.roll(edges, -1, axis=1)
    sines = (edges[..., 0] * nxt[..., 1] - edges[..., 1] * nxt[..., 0]) / (
        np.linalg.norm(edges, axis=2) * np.linalg.norm(nxt, axis=2))
    assert sines.min() >= distort.P_MIN_TURN_SIN - 1e-9
    kept = out.sum(1) / images.sum(1)
    assert np.quantile(kept, 0.01) > 0.12      # 0.07 before near-straight corners were redrawn


def test_clutter_places_the_ink_anywhere_on_the_canvas():
    size = distort.CANVAS_SIZE["clutter"]
    images = digits(500, seed=6)
    _, p = run("clutter", images, seed=4)
    first, last = [], []
    for img in images.reshape(-1, 28, 28):
        rows, cols = np.nonzero(img > 0)
        first.append([rows.min(), cols.min()])
        last.append([rows.max(), cols.max()])
    top_left, bottom_right = p["position"] + first, p["position"] + last
    assert top_left.min() == 0 and bottom_right.max() == size - 1   # edges reached
    assert (p["position"] < 0).any()                                 # frame over the edge
    assert top_left.min() >= 0 and bottom_right.max() <= size - 1


# -- the curriculum: strength and its ramp ---------------------------------------------

@pytest.mark.parametrize("kind", ["R", "RTS", "P", "E", "simard", "clutter"])
def test_strength_zero_leaves_the_digit_as_it_is(kind):
    images = digits(6)
    with distort.Distorter(kind, seed=3, strength=0.0) as distorter:
        out = distorter(images)
    size = distort.CANVAS_SIZE[kind]
    margin = (size - IMAGE_SIZE) // 2
    canvas = out.reshape(-1, size, size)
    centre = canvas[:, margin:margin + IMAGE_SIZE, margin:margin + IMAGE_SIZE]
    if kind == "clutter":          # the pieces stay: the digit's ink is all there
        assert (centre >= images.reshape(-1, 28, 28) - 1e-6).all()
    else:
        np.testing.assert_allclose(centre.reshape(-1, IMAGE_PIXELS), images, atol=1e-6)
        assert np.abs(canvas).sum() == pytest.approx(np.abs(centre).sum(), rel=1e-6)


def test_strength_scales_the_draws_and_one_is_the_protocol():
    images = digits(50)
    draws = {}
    for strength in (1.0, 0.5, None):
        kwargs = {} if strength is None else {"strength": strength}
        with distort.Distorter("RTS", seed=4, **kwargs) as distorter:
            draws[strength] = distorter(images, return_params=True)
    full, half, default = draws[1.0], draws[0.5], draws[None]
    np.testing.assert_array_equal(full[0], default[0])          # 1 is the protocol
    np.testing.assert_allclose(half[1]["angle"], 0.5 * full[1]["angle"])
    np.testing.assert_allclose(half[1]["scale"] - 1, 0.5 * (full[1]["scale"] - 1))
    # the offset's range depends on the turned, scaled digit: only about halved
    ratio = np.abs(half[1]["offset"]).mean() / np.abs(full[1]["offset"]).mean()
    assert 0.4 < ratio < 0.6
    with distort.Distorter("R", seed=4, strength=0.25) as distorter:
        _, params = distorter(images, return_params=True)
    assert np.abs(np.degrees(params["angle"])).max() <= 0.25 * distort.R_MAX_ANGLE


def test_the_ramp_grows_the_strength_step_by_step():
    datasets = type("D", (), {})()                   # only make_augment is used here
    for name in ("train", "validation", "test"):
        setattr(datasets, name, type("S", (), {"images": digits(2), "labels": None})())
    inputs = distort.training_inputs(datasets, "R", seed=0, ramp_steps=4)
    ramp = inputs["make_augment"](1)                 # a run resumed after step 1
    strengths = []
    for _ in range(5):
        ramp(digits(2))
        strengths.append(ramp.distorter.strength)
    ramp.close()
    assert strengths == [0.5, 0.75, 1.0, 1.0, 1.0]
    plain = distort.training_inputs(datasets, "R", seed=0)["make_augment"](0)
    assert isinstance(plain, distort.Distorter) and plain.strength == 1.0
    plain.close()
