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
