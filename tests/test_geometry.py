"""What a theta does, in pixels: the sampled box drawn on the figures."""
import numpy as np

from mnist_stn import geometry


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
    np.testing.assert_allclose(geometry.box_area(identity), [28 * 28])
    half = geometry.sampled_box([[0.5, 0, 0, 0, 0.5, 0]], 29)            # a quarter of it
    np.testing.assert_allclose(geometry.box_area(half), [14 * 14])
    turned = geometry.sampled_box([[0, -0.5, 0, 0.5, 0, 0]], 29)          # turned 90 deg
    np.testing.assert_allclose(geometry.box_area(turned), [14 * 14])
    boxes = np.concatenate([half, half, turned])
    points = np.array([[14.0, 14.0], [3.0, 14.0], [20.9, 7.1]])
    np.testing.assert_array_equal(geometry.inside_box(points, boxes), [True, False, True])
