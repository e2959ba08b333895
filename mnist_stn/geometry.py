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


def residual_rotation(matrices, thetas):
    """Rotation (radians) of the digit as the STN shows it: that of M . theta.

    M maps canvas to digit coordinates (a distortion), theta the STN's output to the
    canvas, so the STN's output shows the digit through M . theta: 0 when the STN
    undid the rotation, the applied angle when it did nothing.

    Args:
      matrices: (N, 2, 3) canvas -> digit normalised coordinates (the distortion).
      thetas: (N, 6) output -> canvas normalised coordinates (the STN).
    """
    # (N, 2, 2) linear parts: digit <- canvas <- output
    composite = np.asarray(matrices)[:, :, :2] @ np.asarray(thetas).reshape(-1, 2, 3)[:, :, :2]
    # the rotation of a 2x2 matrix: that of its closest similarity transform
    return np.arctan2(composite[:, 1, 0] - composite[:, 0, 1],
                      composite[:, 0, 0] + composite[:, 1, 1])


def ink_lean(digits):
    """How far each digit's ink leans from vertical (degrees, clockwise as seen +), by
    the main axis of its second moments, and how elongated it is (0: round, 1: a line);
    the lean means something for elongated digits (a 1, 7 or 9).

    Args:
      digits: (N, S*S) or (N, S, S) images, ink > 0.
    Returns:
      (lean, elongation), each (N,).
    """
    digits = np.asarray(digits, np.float64)
    side = int(round(np.sqrt(digits[0].size)))
    ink = digits.reshape(-1, side, side)
    rows, cols = np.mgrid[0:side, 0:side]
    mass = ink.sum(axis=(1, 2))
    def mean(f):
        return (ink * f).sum(axis=(1, 2)) / mass
    dx, dy = cols - mean(cols)[:, None, None], rows - mean(rows)[:, None, None]
    mxx, myy, mxy = mean(dx * dx), mean(dy * dy), mean(dx * dy)
    # the angle of the axis of largest spread from vertical; y points down, so ink whose
    # top leans right (clockwise as seen) has mxy < 0, and that lean comes out > 0
    lean = -0.5 * np.degrees(np.arctan2(2 * mxy, myy - mxx))
    return lean, np.hypot(myy - mxx, 2 * mxy) / (mxx + myy)


ANGLE_BANDS = (0, 15, 30, 45, 60, 75, 90)   # |applied turn| bands of turn_left, degrees


def turn_left(residual, labels, own_pose=None, applied=None, upright=15.0):
    """Where the turn left after the STN sits: is it spread over all digits, or in a few?

    Args:
      residual: (N,) the turn left (degrees), as ``residual_rotation`` in degrees.
      labels: (N,) the digits' classes, 0-9.
      own_pose: optional (N,) the turn the STN leaves on the same digits not rotated
        (degrees): the pose it gives a digit as written. The STN may stand a leaning
        digit up, so this is not 0; an STN that undoes every rotation leaves each
        rotated copy in this pose.
      upright: a digit within this many degrees of upright counts as stood up.
    Returns:
      a dict: ``std`` and ``median_abs`` (degrees), ``upright`` (share within
      ``upright`` degrees), ``upside_down`` (share turned more than 90 degrees),
      ``std_folded`` (the std with a digit turned upside down counted as upright: the
      spread as a digit symmetric under a half turn, a 0, 1 or 8, has it),
      ``std_per_digit`` (class -> std); with ``own_pose`` also ``std_own_pose`` (its
      std: how much the STN turns digits that were not rotated) and ``std_from_own_pose``
      (the std of residual - own_pose, wrapped to (-180, 180]: how far each rotated
      digit is left from the pose the STN gives it unrotated); with ``applied`` (N,)
      too, the turn each digit was given (degrees), ``by_angle``: per band of
      ``ANGLE_BANDS`` of |applied|, that std and ``short``, the mean of the turn left
      from that pose in the applied turn's direction (> 0: turned part of the way).
    """
    residual, labels = np.asarray(residual, np.float64), np.asarray(labels)
    folded = (residual + 90.0) % 180.0 - 90.0            # a half turn counted as none
    out = {"std": float(residual.std()), "median_abs": float(np.median(np.abs(residual))),
           "upright": float((np.abs(residual) <= upright).mean()),
           "upside_down": float((np.abs(residual) > 90.0).mean()),
           "std_folded": float(folded.std()),
           "std_per_digit": {int(d): float(residual[labels == d].std())
                             for d in np.unique(labels)}}
    if own_pose is not None:
        own_pose = np.asarray(own_pose, np.float64)
        out["std_own_pose"] = float(own_pose.std())
        from_own = (residual - own_pose + 180.0) % 360.0 - 180.0
        out["std_from_own_pose"] = float(from_own.std())
        if applied is not None:
            applied = np.asarray(applied, np.float64)
            out["by_angle"] = []
            for low, high in zip(ANGLE_BANDS, ANGLE_BANDS[1:]):
                band = (np.abs(applied) >= low) & (np.abs(applied) < high + (high == 90))
                out["by_angle"].append(
                    {"from": low, "to": high, "digits": int(band.sum()),
                     "std_from_own_pose": float(from_own[band].std()),
                     "short": float(np.mean(from_own[band] * np.sign(applied[band])))})
    return out


def output_points(thetas, points, size, out_size):
    """Where the STN's output shows given input points: the inverse of ``sampled_box``.

    Args:
      thetas: (N, 6) affine parameters as the STN uses them (invertible).
      points: (N, 2) pixel coordinates (x, y) in the (square) input of side ``size``.
      out_size: side of the STN's output, in pixels.
    Returns:
      (N, 2) pixel coordinates in the output.
    """
    theta = np.asarray(thetas, np.float64).reshape(-1, 2, 3)
    # pixels -> normalised; output point q shows input point A q + t, so q = A^-1 (p - t)
    normalised = np.asarray(points, np.float64) / (size - 1) * 2.0 - 1.0
    q = np.einsum("nij,nj->ni", np.linalg.inv(theta[:, :, :2]), normalised - theta[:, :, 2])
    return (q + 1.0) / 2.0 * (out_size - 1)


def box_area(boxes):
    """Area (px^2) of quadrilaterals (N, 4, 2) with corners in order (shoelace formula)."""
    x, y = boxes[..., 0], boxes[..., 1]
    return 0.5 * np.abs((x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1))


def inside_box(points, boxes):
    """Whether each point (N, 2) lies inside its convex quadrilateral (N, 4, 2)."""
    edges = np.roll(boxes, -1, axis=1) - boxes                       # (N, 4, 2)
    to_point = points[:, None, :] - boxes
    cross = edges[..., 0] * to_point[..., 1] - edges[..., 1] * to_point[..., 0]
    return np.all(cross >= 0, axis=1) | np.all(cross <= 0, axis=1)


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
