"""What a theta does to an image, in pixels and degrees: the numbers behind the figures.

theta (B, 6) holds the rows of the 2x3 matrix that maps a point of the STN's output
grid, normalised to [-1, 1], to the point of its input that it shows (see
``transformer.py``).
"""
import numpy as np


def sampled_box(thetas, size):
    """Where the STN looked: the corners of its output grid mapped into the input.

    Args:
      thetas: (N, 6) affine parameters as the STN uses them.
      size: side of the (square) input, in pixels.
    Returns:
      (N, 4, 2) pixel coordinates (x, y) of the corners (top-left, top-right,
      bottom-right, bottom-left), 0 being the centre of the first pixel.
    """
    corners = np.array([[-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], np.float64)
    # (N, 2, 3) @ (3, 4) -> (N, 2, 4) -> (N, 4, 2), normalised -> pixels
    points = (np.asarray(thetas, np.float64).reshape(-1, 2, 3) @ corners.T).transpose(0, 2, 1)
    return (points + 1.0) / 2.0 * (size - 1)


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


def decompose(thetas, size, out_size=OUTPUT_SIZE):
    """What each theta does to the digit: turn, zoom, shear, shift, as a person sees it.

    Args:
      thetas: (N, 6) affine parameters as the STN uses them.
      size: side of the input in pixels; out_size: side of the output.
    Returns:
      a dict of (N,) arrays: ``angle`` (degrees, clockwise as seen when positive, in
      (-180, 180]), ``scale_x``, ``scale_y`` (output pixels per input pixel, 1.4 =
      enlarged 1.4x; ``scale_y`` < 0 when mirrored), ``shear`` (degrees the vertical
      leans right), ``shift_x``, ``shift_y`` (input pixels the digit moved, right and
      down positive), ``mirrored``, ``degenerate`` and ``finite`` (bool). A degenerate
      theta (no inverse, or not finite) has NaN in every number.
    """
    thetas = np.asarray(thetas, np.float64).reshape(-1, 2, 3)
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
