"""Batch norm's test-time statistics re-estimated after training, for the letters
benchmark's second and third ways of testing a checkpoint.

Plain batch norm collects its moving averages while training, where dropout thins the
activations; at test time there is no dropout, and the averages no longer describe
what the layers see. The cheap fix: after training, run the training set through the
model with dropout off and give every batch norm layer the mean and variance of its
inputs over the whole set, one layer after the other. (With batch renorm the inference
statistics are the moving mean and standard deviation; they are replaced the same way.)
"""
import numpy as np

from letters import model


def reestimate(sess, g, images, batch_size=100):
    """Set every batch norm layer's moving statistics to those of ``images``.

    Runs the graph ``g`` (``letters.model.build_graph``'s nodes) in inference mode with
    dropout off over (N, pixels) ``images``, ``batch_size`` at a time, one pass per
    layer in the order they were built: each layer gets the mean and variance of its
    inputs over the whole set (batch means and second moments, weighted by batch size)
    as the layers before it normalise them now, with their new statistics. (Training
    mode would not do: batch renorm's training output is normalised by its renorm
    averages, which still describe the activations under dropout.)
    Returns the list of layers it set, as ``(mean, variance)`` arrays (C,) each.
    """
    layers = sess.graph.get_collection(model.BN_LAYERS)
    if not layers:
        raise ValueError("the graph has no batch norm layers")
    result = []
    for layer in layers:
        mean_sum = square_sum = 0.0
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            mean, variance = sess.run((layer.batch_mean, layer.batch_variance),
                                      {g["images"]: batch, g["keep_prob"]: 1.0,
                                       g["loc_keep_prob"]: 1.0})
            mean_sum += len(batch) * mean
            square_sum += len(batch) * (variance + mean ** 2)     # E[x^2] of the batch
        mean = mean_sum / len(images)
        variance = np.maximum(square_sum / len(images) - mean ** 2, 0.0)
        spread = np.sqrt(variance + layer.epsilon) if layer.renorm else variance
        layer.moving_mean.load(mean.astype(np.float32), sess)
        layer.moving_spread.load(spread.astype(np.float32), sess)
        result.append((mean, variance))
    return result
