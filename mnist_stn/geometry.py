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
