"""What a theta does to an image, in pixels and degrees: the numbers behind the figures.

theta (B, 6) holds the rows of the 2x3 matrix that maps a point of the STN's output
grid, normalised to [-1, 1], to the point of its input that it shows (see
``transformer.py``). The projective transformer's theta (B, 8) adds the homography's
last row (its ninth entry is 1); the thin-plate spline's (B, 32) moves 4x4 control
points. Each is read here as its affine part (for the projective, its first six
entries; for the spline, the affine map closest to its control points) plus what the
affine part cannot say: a perspective, a bend. Every function takes the transformer's
name, a key of ``transformer.TRANSFORMS``, as the run's config.json names it: theta's
width alone cannot tell two transformers of the same size apart.
"""
import numpy as np

from transformer import TPS_GRID, TRANSFORMS

BORDER_POINTS = 8           # points per side of a spline's outline, which can curve


def _known(transform):
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {', '.join(TRANSFORMS)}, "
                         f"not {transform!r}")
    return transform


def kinds(config):
    """The transformer of each of a model's STNs side by side, a list of names, from its
    config: ``transform`` (one name for all of them, or a list) and ``transformers``."""
    transform = config.get("transform", "affine")
    if isinstance(transform, (list, tuple)):
        return list(transform)
    return [transform] * config.get("transformers", 1)


def split(thetas, names):
    """(N, P1 + P2 + ...) thetas of STNs side by side -> [(N, P1), (N, P2), ...]."""
    thetas = np.asarray(thetas)
    ends = np.cumsum([TRANSFORMS[name].size for name in names])
    return np.split(thetas, ends[:-1], axis=-1)


def as_affine(thetas):
    """Attention windows (N, 3) as (s, t_x, t_y) -> the affine thetas (N, 6) they are."""
    scale, shift_x, shift_y = np.asarray(thetas, np.float64).reshape(-1, 3).T
    zero = np.zeros_like(scale)
    return np.stack([scale, zero, shift_x, zero, scale, shift_y], axis=1)


def sampled_box(thetas, size, transform):
    """Where the STN looked: the outline of its output grid mapped into the input.

    Args:
      thetas: (N, 6), (N, 8), (N, 32) or (N, 3): the parameters of ``transform``.
      size: side of the (square) input, in pixels.
      transform: "affine", "projective", "tps" or "attention": a key of
        ``transformer.TRANSFORMS``.
    Returns:
      (N, P, 2) pixel coordinates (x, y) of the outline, 0 being the centre of the
      first pixel: the 4 corners (top-left, top-right, bottom-right, bottom-left) for
      the affine and the projective (whose edges stay straight), 4 * BORDER_POINTS
      points around the border for the spline. A corner at or beyond a projective's
      horizon is NaN.
    """
    if _known(transform) == "attention":
        thetas, transform = as_affine(thetas), "affine"
    if transform == "tps":
        side = np.linspace(-1.0, 1.0, BORDER_POINTS + 1)[:-1]
        border = np.concatenate([np.c_[side, -np.ones_like(side)],      # top, going right
                                 np.c_[np.ones_like(side), side],       # right, going down
                                 np.c_[-side, np.ones_like(side)],      # bottom, going left
                                 np.c_[-np.ones_like(side), -side]])    # left, going up
        points = border[None] + tps_offsets(thetas, border)
    else:
        corners = np.array([[-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], np.float64)
        rows = 2 if transform == "affine" else 3
        matrix = _matrices(thetas, transform)[:, :rows]
        # (N, rows, 3) @ (3, 4) -> (N, rows, 4) -> (N, 4, rows)
        points = (matrix @ corners.T).transpose(0, 2, 1)
        if transform == "projective":
            w = points[:, :, 2:]
            points = np.where(w > 1e-6, points[:, :, :2] / np.where(w > 1e-6, w, 1), np.nan)
    return (points + 1.0) / 2.0 * (size - 1)


def _matrices(thetas, transform):
    """(N, 6) -> (N, 2, 3), or (N, 8) -> (N, 3, 3) with the ninth entry 1."""
    thetas = np.asarray(thetas, np.float64)
    if transform == "projective":
        thetas = thetas.reshape(-1, 8)
        return np.concatenate([thetas, np.ones((len(thetas), 1))], axis=1).reshape(-1, 3, 3)
    return thetas.reshape(-1, 2, 3)


def tps_control_points(grid=TPS_GRID):
    """(K, 2) control points of the thin-plate spline, as ``transformer.py`` places them."""
    ticks = np.linspace(-1.0, 1.0, grid)
    x, y = np.meshgrid(ticks, ticks)
    return np.stack([x.ravel(), y.ravel()], axis=1)


def tps_offsets(thetas, points):
    """(N, 2K) spline thetas, (P, 2) normalised output points -> (N, P, 2): how far the
    spline moves each point (it passes through control point k moved by theta_k)."""
    control = tps_control_points()
    count = len(control)

    def kernel(a, b):                       # U(r) = r^2 log r^2, 0 at r = 0
        r2 = ((a[:, None] - b[None]) ** 2).sum(-1)
        return np.where(r2 > 0, r2 * np.log(np.where(r2 > 0, r2, 1.0)), 0.0)
    system = np.zeros((count + 3, count + 3))
    system[:count, :count] = kernel(control, control)
    system[:count, count:] = np.c_[np.ones(count), control]
    system[count:, :count] = system[:count, count:].T
    at = np.c_[kernel(np.asarray(points, np.float64), control), np.ones(len(points)), points]
    spread = np.linalg.solve(system.T, at.T).T[:, :count]                # (P, K)
    offsets = np.asarray(thetas, np.float64).reshape(-1, count, 2)
    return np.einsum("pk,nkc->npc", spread, offsets)


def affine_part(thetas, transform):
    """(N, 6): each theta's affine part, and (N,) what it adds beyond it.

    An attention window is an affine map, with nothing beyond it. The projective's
    affine part is its first six entries and its addition the
    perspective: how many times one side of the output's square is drawn the size of
    the opposite one (1: none). The spline's is the affine map closest (least squares)
    to where it moves its control points, and its addition the bend: how far, root mean
    square, those points lie off that affine map, in normalised units.
    """
    thetas = np.asarray(thetas, np.float64)
    if _known(transform) == "attention":
        thetas, transform = as_affine(thetas), "affine"
    if transform == "affine":
        return thetas.reshape(-1, 6), np.zeros(len(thetas.reshape(-1, 6)))
    if transform == "projective":
        thetas = thetas.reshape(-1, 8)
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
        w = thetas[:, 6:] @ corners.T + 1.0                             # (N, 4)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(w.min(1) > 0, w.max(1) / w.min(1), np.inf)
        return thetas[:, :6], ratio
    control = tps_control_points()
    targets = control[None] + thetas.reshape(-1, len(control), 2)        # (N, K, 2)
    design = np.c_[control, np.ones(len(control))]                        # (K, 3)
    fit = np.einsum("ij,njc->nic", np.linalg.pinv(design), targets)       # (N, 3, 2)
    bend = np.sqrt(((targets - design @ fit) ** 2).sum(-1).mean(-1))
    return fit.transpose(0, 2, 1).reshape(-1, 6), bend


# -- theta in words ---------------------------------------------------------------------
#
# theta maps output points to input points: the output shows input point A p + t at
# output point p (A, t: theta's 2x2 and last column). What the STN does to the digit is
# the inverse, q -> A^-1 (q - t). In pixels (the output is OUTPUT_SIZE wide, the input
# ``size``) its linear part is L = (OUTPUT_SIZE - 1) / (size - 1) * A^-1, written here as
#
#     L = R(angle) @ [[1, shear], [0, 1]] @ diag(scale_x, scale_y)
#
# first a zoom per axis, then a horizontal shear, then a turn (x right, y down, so a
# positive angle is clockwise as seen); a negative scale_y means the digit is mirrored.
# The shift is how far the STN moved the digit: the input point it puts at the output's
# centre (theta's t) came from t * (size - 1) / 2 pixels off the input's centre.
OUTPUT_SIZE = 28            # the STN's output side in this project (the classifier's input)
DEGENERATE = 1e-9           # |det A| below this: the STN collapsed the digit (no inverse)


def decompose(thetas, size, transform, out_size=OUTPUT_SIZE):
    """What each theta does to the digit: turn, zoom, shear, shift, as a person sees it.

    Args:
      thetas: (N, P) parameters of ``transform`` as the STN uses them (N, 6 for the
        affine), read as their affine part.
      size: side of the input in pixels; out_size: side of the output.
      transform: a key of ``transformer.TRANSFORMS``.
    Returns:
      a dict of (N,) arrays: ``angle`` (degrees, clockwise as seen when positive, in
      (-180, 180]), ``scale_x``, ``scale_y`` (output pixels per input pixel, 1.4 =
      enlarged 1.4x; ``scale_y`` < 0 when mirrored), ``shear`` (degrees the vertical
      leans right), ``shift_x``, ``shift_y`` (input pixels the digit moved, right and
      down positive), ``mirrored``, ``degenerate`` and ``finite`` (bool). A degenerate
      theta (no inverse, or not finite) has NaN in every number. For the projective
      also ``perspective``, for the spline ``bend`` in input pixels (``affine_part``).
    """
    thetas, beyond = affine_part(np.atleast_2d(thetas), transform)
    thetas = thetas.reshape(-1, 2, 3)
    a, t = thetas[:, :, :2], thetas[:, :, 2]
    finite = np.isfinite(thetas).all(axis=(1, 2))
    det = np.linalg.det(np.where(finite[:, None, None], a, 0.0))
    degenerate = ~finite | ~(np.abs(det) > DEGENERATE)
    safe = np.where(degenerate[:, None, None], np.eye(2), a)
    linear = (out_size - 1) / (size - 1) * np.linalg.inv(safe)          # (N, 2, 2) L
    # L = R @ U with U upper triangular, U[0, 0] > 0 (a QR decomposition by hand)
    angle = np.arctan2(linear[:, 1, 0], linear[:, 0, 0])
    c, s = np.cos(angle), np.sin(angle)
    scale_x = np.hypot(linear[:, 0, 0], linear[:, 1, 0])
    u01 = c * linear[:, 0, 1] + s * linear[:, 1, 1]                     # (R^T L)[0, 1]
    scale_y = -s * linear[:, 0, 1] + c * linear[:, 1, 1]                # (R^T L)[1, 1]
    shift = -t * (size - 1) / 2.0
    out = {"angle": np.degrees(angle), "scale_x": scale_x, "scale_y": scale_y,
           "shear": np.degrees(np.arctan(u01 / scale_y)),
           "shift_x": shift[:, 0], "shift_y": shift[:, 1]}
    for value in out.values():
        value[degenerate] = np.nan
    out["mirrored"] = ~degenerate & (scale_y < 0)
    out["degenerate"], out["finite"] = degenerate, finite
    if transform == "projective":
        out["perspective"] = beyond
    if transform == "tps":
        out["bend"] = beyond * (size - 1) / 2.0
    return out


def compose(angle=0.0, scale_x=1.0, scale_y=1.0, shear=0.0, shift_x=0.0, shift_y=0.0,
            size=OUTPUT_SIZE, out_size=OUTPUT_SIZE):
    """The theta (6,) that does this to the digit: the inverse of ``decompose``."""
    r = np.radians(angle)
    rotation = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    linear = rotation @ np.array([[1.0, np.tan(np.radians(shear))], [0.0, 1.0]]) \
        @ np.diag([scale_x, scale_y])
    a = (out_size - 1) / (size - 1) * np.linalg.inv(linear)
    t = -np.array([shift_x, shift_y]) / ((size - 1) / 2.0)
    return np.concatenate([a, t[:, None]], axis=1).ravel()


def describe(parts, i):
    """One digit's transform from ``decompose(...)`` in words: 'turned 31° clockwise,
    enlarged 1.4x, moved 5 px left and 2 px up'. Small amounts are left out."""
    if not parts["finite"][i]:
        return "no transform: theta is not finite (NaN or infinite)"
    if parts["degenerate"][i]:
        return "degenerate: the STN squashed the digit flat (theta has no inverse)"
    words = []
    angle = parts["angle"][i]
    if abs(angle) >= 1:
        words.append(f"turned {abs(angle):.0f}° {'clockwise' if angle > 0 else 'anticlockwise'}")
    if parts["mirrored"][i]:
        words.append("mirrored")
    sx, sy = parts["scale_x"][i], abs(parts["scale_y"][i])
    if abs(sx / sy - 1) >= 0.05:
        words.append(f"zoomed {sx:.2g}x across and {sy:.2g}x up and down")
    elif abs(np.sqrt(sx * sy) - 1) >= 0.02:
        zoom = np.sqrt(sx * sy)
        words.append(f"enlarged {zoom:.2g}x" if zoom > 1 else f"shrunk to {zoom:.2g}x")
    if abs(parts["shear"][i]) >= 2:
        words.append(f"sheared {abs(parts['shear'][i]):.0f}° "
                     f"{'right' if parts['shear'][i] > 0 else 'left'}")
    moves = []
    for value, plus, minus in ((parts["shift_x"][i], "right", "left"),
                               (parts["shift_y"][i], "down", "up")):
        if abs(value) >= 0.5:
            moves.append(f"{abs(value):.0f} px {plus if value > 0 else minus}")
    if moves:
        words.append("moved " + " and ".join(moves))
    if "perspective" in parts and parts["perspective"][i] >= 1.05:
        ratio = parts["perspective"][i]
        words.append("seen in perspective, one side " + (f"{ratio:.2g}x the other"
                     if np.isfinite(ratio) else "beyond the horizon"))
    if "bend" in parts and parts["bend"][i] >= 0.5:
        words.append(f"bent, its control points {parts['bend'][i]:.1f} px (rms) off the "
                     "nearest affine map")
    return ", ".join(words) if words else "left as it was"


def short_label(parts, i):
    """A grid label: '31°cw 1.4x' (the angle and the mean zoom)."""
    if parts["degenerate"][i]:
        return "degenerate"
    angle = parts["angle"][i]
    turn = "0°" if abs(angle) < 0.5 else f"{abs(angle):.0f}°{'cw' if angle > 0 else 'acw'}"
    zoom = np.sqrt(abs(parts["scale_x"][i] * parts["scale_y"][i]))
    return f"{turn} {zoom:.2g}x" + (" mirrored" if parts["mirrored"][i] else "")


def summary(parts):
    """The test set in one line: median angle and zoom, and their spread."""
    ok = ~parts["degenerate"]
    if not ok.any():
        return "every theta is degenerate"
    angle = parts["angle"][ok]
    zoom = np.sqrt(np.abs(parts["scale_x"][ok] * parts["scale_y"][ok]))
    line = (f"turned by {np.median(angle):+.1f}° (median; clockwise +), std {angle.std():.1f}°; "
            f"zoom {np.median(zoom):.2f}x (median), std {zoom.std():.2f}")
    extra = [f"{count} {name}" for count, name in
             ((int(parts['mirrored'].sum()), "mirrored"), (int((~ok).sum()), "degenerate"))
             if count]
    return line + (f"; {', '.join(extra)}" if extra else "")
