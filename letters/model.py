"""The second tutorial's STN-CNN for captcha letters, as TF1 graph code.

The tutorial built it in Keras: one ``cnn()`` (three conv + ReLU -> batch norm ->
dropout blocks) shared in shape by the localisation net and the classifier, each with
its own weights. Here the same layers are written with ``tf.nn`` ops (Keras 3 layers
cannot live in a TF1 graph), with the project's ``transformer.py`` between the two.
Only graph building lives here: no files, no sessions, no flags.
"""
import numpy as np

import transformer
from letters.data import CHANNELS, NUM_LETTERS, SIZE
from mnist_stn.compat import tf
from model import metrics

FILTERS = (512, 256, 64)     # cnn(): conv 5x5 stride 3, 3x3 stride 2, 3x3 stride 2
LOC_FILTERS = 20             # the loc head's conv 3x3 before global pooling
BN_MOMENTUM = 0.99                   # Keras' BatchNormalization defaults, as the seed used
BN_EPSILON = 1e-3
BN_PLACES = ("after-relu", "before-relu")
PIXEL_RANGES = ("0,1", "-1,1")


def glorot_weights(shape):
    """Glorot-uniform weights, Keras' default for Conv2D and Dense (the seed's layers)."""
    return tf.Variable(tf.glorot_uniform_initializer()(shape), name="weights")


def batch_norm(x, training, momentum=BN_MOMENTUM, epsilon=BN_EPSILON):
    """Batch normalisation over (B, H, W) per channel, built from tf.nn ops.

    Training normalises with the batch's statistics and puts the updates of the moving
    averages in ``tf.GraphKeys.UPDATE_OPS`` (run them with the train op, as with TF1's
    ``tf.layers.batch_normalization``); inference uses the moving averages. Plain batch
    norm: the seed's Keras layer had ``renorm=True``, which this does not reproduce.

    Args:
      x: (B, H, W, C).
      training: scalar bool tensor.
    """
    channels = x.shape.as_list()[-1]
    gamma = tf.Variable(tf.ones([channels]), name="gamma")
    beta = tf.Variable(tf.zeros([channels]), name="beta")
    moving_mean = tf.Variable(tf.zeros([channels]), trainable=False, name="moving_mean")
    moving_variance = tf.Variable(tf.ones([channels]), trainable=False,
                                  name="moving_variance")
    batch_mean, batch_variance = tf.nn.moments(x, axes=[0, 1, 2])
    for moving, value in ((moving_mean, batch_mean), (moving_variance, batch_variance)):
        tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, tf.assign(
            moving, momentum * moving + (1.0 - momentum) * value))
    mean, variance = tf.cond(training, lambda: (batch_mean, batch_variance),
                             lambda: (tf.identity(moving_mean), tf.identity(moving_variance)))
    return tf.nn.batch_normalization(x, mean, variance, beta, gamma, epsilon)


def scaled(filters, width):
    """A layer's channels under the width multiplier (1 = the seed), at least 1."""
    return max(1, int(round(filters * width)))


def conv_block(x, filters, kernel, stride, training, keep_prob, bn="after-relu"):
    """One block of the seed's cnn(): conv + ReLU, batch norm, dropout.

    ``bn="before-relu"`` swaps the order to conv -> BN -> ReLU (one of its ablations).
    """
    w = glorot_weights([kernel, kernel, x.shape.as_list()[-1], filters])
    b = tf.Variable(tf.zeros([filters]), name="bias")
    x = tf.nn.bias_add(tf.nn.conv2d(x, w, strides=[1, stride, stride, 1], padding="SAME"), b)
    if bn == "after-relu":
        x = batch_norm(tf.nn.relu(x), training)
    else:
        x = tf.nn.relu(batch_norm(x, training))
    return tf.nn.dropout(x, rate=1.0 - keep_prob)


def cnn(x, training, keep_prob, width=1.0, bn="after-relu"):
    """The seed's cnn(), shared by its loc net and its classifier (separate weights).

    (B, 60, 60, C) -> (B, 20, 20, 512) -> (B, 10, 10, 256) -> (B, 5, 5, 64),
    channels times ``width``.
    """
    for i, (filters, kernel, stride) in enumerate(zip(FILTERS, (5, 3, 3), (3, 2, 2))):
        with tf.variable_scope(f"conv_{i + 1}"):
            x = conv_block(x, scaled(filters, width), kernel, stride, training, keep_prob, bn)
    return x


def conv_relu_pool(x, filters):
    """Conv 3x3 + ReLU, then global average pooling: (B, H, W, C) -> (B, filters)."""
    w = glorot_weights([3, 3, x.shape.as_list()[-1], filters])
    b = tf.Variable(tf.zeros([filters]), name="bias")
    x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w, strides=[1, 1, 1, 1], padding="SAME"), b))
    return tf.reduce_mean(x, axis=[1, 2])


def forward(input_data, training, keep_prob, loc_keep_prob, use_stn=True,
                    width=1.0, bn="after-relu", pixel_range="0,1"):
    """The seed's STN-CNN for captcha letters: loc net, STN (60x60 out), classifier.

    Args:
      input_data: (B, 60*60*3) flat RGB images with pixels in [0, 1].
      training: scalar bool tensor: batch statistics and moving-average updates.
      keep_prob, loc_keep_prob: dropout keep probabilities of the classifier and of
        the loc net (the seed: 0.8 in both).
      use_stn: False builds the same classifier on the raw images.
      width: channel multiplier of every conv layer but the last (1 = the seed).
      bn: "after-relu" (the seed) or "before-relu".
      pixel_range: "0,1" (the seed) or "-1,1": the model rescales its input to it.
        The STN fills outside the image with 0, which is black in [0, 1] but grey in
        [-1, 1].

    Returns:
      ``(logits, rectified_images)``: (B, 26), and (B, 60, 60, 3) in [0, 1] for
      figures whatever ``pixel_range``. With the STN, the graph holds ``theta`` (B, 6).
    """
    # (B, 10800) -> (B, 60, 60, 3)
    images = tf.reshape(input_data, [-1, SIZE, SIZE, CHANNELS])
    if pixel_range == "-1,1":
        images = images * 2.0 - 1.0
    if use_stn:
        with tf.variable_scope("loc_net"):
            # (B, 60, 60, 3) -> (B, 5, 5, 64) -> (B, 5, 5, 20) -> (B, 20)
            x = cnn(images, training, loc_keep_prob, width, bn)
            with tf.variable_scope("conv_4"):
                x = conv_relu_pool(x, scaled(LOC_FILTERS, width))
            with tf.variable_scope("fc"):
                # (B, 20) -> (B, 6), zero weights: every image starts at the identity
                w = tf.Variable(tf.zeros([x.shape.as_list()[-1], 6]), name="weights")
                b = tf.Variable(np.array(transformer.IDENTITY_THETA, np.float32),
                                name="bias")
        theta = tf.identity(tf.matmul(x, w) + b, name="theta")
        # (B, 60, 60, 3) warped by theta -> (B, 60, 60, 3)
        images = transformer.spatial_transformer_network(
            images, theta, out_dims=[SIZE, SIZE])
    with tf.variable_scope("classifier"):
        # (B, 60, 60, 3) -> (B, 5, 5, 64) -> (B, 26); the seed puts a ReLU before its
        # softmax too, so these logits are never negative.
        x = cnn(images, training, keep_prob, width, bn)
        with tf.variable_scope("conv_4"):
            logits = conv_relu_pool(x, NUM_LETTERS)
    if pixel_range == "-1,1":
        images = (images + 1.0) / 2.0
    return logits, images


def build_graph(config):
    """Placeholders -> forward -> loss and metrics, in the default graph.

    Args:
      config: ``stn`` (bool), ``width``, ``bn`` and ``pixel_range`` (see ``forward``),
        as saved beside the checkpoint.

    Returns:
      A dict of graph nodes as the MNIST ``model.build_graph``'s, plus ``training``,
      the bool placeholder for batch norm (False, the moving averages, unless fed).
    """
    images = tf.placeholder(tf.float32, [None, SIZE * SIZE * CHANNELS], name="images")
    labels = tf.placeholder(tf.int64, [None], name="labels")
    keep_prob = tf.placeholder_with_default(1.0, [], name="keep_prob")
    loc_keep_prob = tf.placeholder_with_default(1.0, [], name="loc_keep_prob")
    training = tf.placeholder_with_default(False, [], name="training")
    logits, rectified = forward(images, training, keep_prob, loc_keep_prob,
                                use_stn=config["stn"], width=config["width"], bn=config["bn"],
                                pixel_range=config["pixel_range"])
    theta = tf.get_default_graph().get_tensor_by_name("theta:0") if config["stn"] else None
    return {"images": images, "labels": labels, "keep_prob": keep_prob,
            "loc_keep_prob": loc_keep_prob, "training": training,
            "input_shape": (SIZE, SIZE, CHANNELS), "logits": logits, "rectified": rectified,
            "theta": theta, **metrics(logits, labels)}


def describe(config):
    """'STN-CNN (width 1, BN after-relu, pixels in [0,1])' and the like, for messages."""
    name = "STN-CNN" if config["stn"] else "CNN"
    return (f"{name} (width {config['width']:g}, BN {config['bn']}, "
            f"pixels in [{config['pixel_range']}])")
