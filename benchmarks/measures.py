"""Measures of what a trained STN did, for the benchmarks: the turn it left, the lean it
undid, where its box lies. Angles in degrees or radians as each function says; theta
(B, 6) as in ``transformer.py``, boxes as ``mnist_stn.geometry.sampled_box`` draws them.
"""
import numpy as np


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
