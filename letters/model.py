"""The second tutorial's STN-CNN for captcha letters, as TF1 graph code.

The tutorial built it in Keras: one ``cnn()`` (three conv + ReLU -> batch norm ->
dropout blocks) shared in shape by the localisation net and the classifier, each with
its own weights. Here the same layers are written with ``tf.nn`` ops (Keras 3 layers
cannot live in a TF1 graph), with the project's ``transformer.py`` between the two.
Only graph building lives here: no files, no sessions, no flags.
"""
import collections

import numpy as np

import transformer
from letters.data import CHANNELS, NUM_LETTERS, SIZE
from mnist_stn.compat import tf
from mnist_stn.metrics import metrics

FILTERS = (512, 256, 64)     # cnn(): conv 5x5 stride 3, 3x3 stride 2, 3x3 stride 2
LOC_FILTERS = 20             # the loc head's conv 3x3 before global pooling
BN_MOMENTUM = 0.99           # Keras' BatchNormalization defaults, as the seed used
BN_EPSILON = 1e-3
RENORM_MOMENTUM = 0.99       # renorm_momentum; renorm_clipping=None leaves r and d unclipped
# Every batch norm layer of the graph, for re-estimating its statistics (benchmarks/bn_stats.py)
BN_LAYERS = "batch_norm_layers"
BatchNormLayer = collections.namedtuple(
    "BatchNormLayer", "batch_mean batch_variance moving_mean moving_spread renorm epsilon")


def glorot_weights(shape):
    """Glorot-uniform weights, Keras' default for Conv2D and Dense (the seed's layers)."""
    return tf.Variable(tf.glorot_uniform_initializer()(shape), name="weights")


def batch_norm(x, training, renorm=True, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
               renorm_momentum=RENORM_MOMENTUM):
    """Batch normalisation over (B, H, W) per channel, built from tf.nn ops.

    Inference normalises with moving averages of the batches' statistics. Plain batch
    norm trains with each batch's own mean and variance; at test time the moving
    averages stand in for them, and where the two differ (here: collected while
    dropout thinned the activations) the model sees other inputs than it learnt on.
    Batch renormalisation (Ioffe 2017; Keras' ``renorm=True``, what the seed used)
    trains on the same statistics it will be tested on: the batch's normalised
    values are corrected by r = sigma_B / sigma and d = (mu_B - mu) / sigma, where mu
    and sigma are moving averages (``renorm_momentum``) and r and d are constants for
    the gradient. As Keras, it keeps the moving standard deviation for inference,
    and no clipping of r and d (Keras' default ``renorm_clipping=None``).

    The updates of the averages go in ``tf.GraphKeys.UPDATE_OPS`` (run them with the
    train op, as with TF1's ``tf.layers.batch_normalization``); they wait for r and d.

    Args:
      x: (B, H, W, C).
      training: scalar bool tensor.
      renorm: batch renormalisation (True) or plain batch norm.
    """
    channels = x.shape.as_list()[-1]
    gamma = tf.Variable(tf.ones([channels]), name="gamma")
    beta = tf.Variable(tf.zeros([channels]), name="beta")
    moving_mean = tf.Variable(tf.zeros([channels]), trainable=False, name="moving_mean")
    # (C,) each
    batch_mean, batch_variance = tf.nn.moments(x, axes=[0, 1, 2])
    if renorm:
        moving_stddev = tf.Variable(tf.ones([channels]), trainable=False, name="moving_stddev")
        renorm_mean = tf.Variable(tf.zeros([channels]), trainable=False, name="renorm_mean")
        renorm_stddev = tf.Variable(tf.ones([channels]), trainable=False, name="renorm_stddev")
        batch_stddev = tf.sqrt(batch_variance + epsilon)
        sigma = tf.maximum(renorm_stddev, np.sqrt(epsilon))   # no division by 0 early on
        r = tf.stop_gradient(batch_stddev / sigma)
        d = tf.stop_gradient((batch_mean - renorm_mean) / sigma)
        # (x_B * r + d) * gamma + beta == x_B * (gamma * r) + (beta + gamma * d)
        train_scale, train_offset = gamma * r, beta + gamma * d
        moving_variance = tf.square(moving_stddev) - epsilon   # stddev = sqrt(var + eps)
        averages = ((moving_mean, batch_mean, momentum), (moving_stddev, batch_stddev, momentum),
                    (renorm_mean, batch_mean, renorm_momentum),
                    (renorm_stddev, batch_stddev, renorm_momentum))
        after = [r, d]
        spread = moving_stddev     # what inference reads besides the mean
    else:
        spread = tf.Variable(tf.ones([channels]), trainable=False, name="moving_variance")
        moving_variance = tf.identity(spread)
        train_scale, train_offset = gamma, beta
        averages = ((moving_mean, batch_mean, momentum), (spread, batch_variance, momentum))
        after = []
    tf.add_to_collection(BN_LAYERS, BatchNormLayer(batch_mean, batch_variance, moving_mean,
                                                   spread, renorm, epsilon))
    with tf.control_dependencies(after):
        for moving, value, rate in averages:
            tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, tf.assign(
                moving, rate * moving + (1.0 - rate) * value))
    mean, variance, scale, offset = tf.cond(
        training, lambda: (batch_mean, batch_variance, train_scale, train_offset),
        lambda: (tf.identity(moving_mean), moving_variance, tf.identity(gamma),
                 tf.identity(beta)))
    return tf.nn.batch_normalization(x, mean, variance, offset, scale, epsilon)


def scaled(filters, width):
    """A layer's channels under the width multiplier (1 = the seed), at least 1."""
    return max(1, int(round(filters * width)))


def conv_block(x, filters, kernel, stride, training, keep_prob, bn="after-relu",
               norm="renorm"):
    """One block of the seed's cnn(): conv + ReLU, batch norm, dropout.

    ``bn="before-relu"`` swaps the order to conv -> BN -> ReLU (one of its ablations);
    ``norm`` is "renorm" (the seed's) or "plain" batch norm.
    """
    w = glorot_weights([kernel, kernel, x.shape.as_list()[-1], filters])
    b = tf.Variable(tf.zeros([filters]), name="bias")
    x = tf.nn.bias_add(tf.nn.conv2d(x, w, strides=[1, stride, stride, 1], padding="SAME"), b)
    if bn == "after-relu":
        x = batch_norm(tf.nn.relu(x), training, renorm=norm == "renorm")
    else:
        x = tf.nn.relu(batch_norm(x, training, renorm=norm == "renorm"))
    return tf.nn.dropout(x, rate=1.0 - keep_prob)


def cnn(x, training, keep_prob, width=1.0, bn="after-relu", norm="renorm"):
    """The seed's cnn(), shared by its loc net and its classifier (separate weights).

    (B, 60, 60, C) -> (B, 20, 20, 512) -> (B, 10, 10, 256) -> (B, 5, 5, 64),
    channels times ``width``.
    """
    for i, (filters, kernel, stride) in enumerate(zip(FILTERS, (5, 3, 3), (3, 2, 2))):
        with tf.variable_scope(f"conv_{i + 1}"):
            x = conv_block(x, scaled(filters, width), kernel, stride, training, keep_prob,
                           bn, norm)
    return x


def conv_relu_pool(x, filters):
    """Conv 3x3 + ReLU, then global average pooling: (B, H, W, C) -> (B, filters)."""
    w = glorot_weights([3, 3, x.shape.as_list()[-1], filters])
    b = tf.Variable(tf.zeros([filters]), name="bias")
    x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w, strides=[1, 1, 1, 1], padding="SAME"), b))
    return tf.reduce_mean(x, axis=[1, 2])


def forward(input_data, training, keep_prob, loc_keep_prob, use_stn=True,
            width=1.0, bn="after-relu", pixel_range="0,1", norm="renorm", transform="affine"):
    """The seed's STN-CNN for captcha letters: loc net, STN (60x60 out), classifier.

    Args:
      input_data: (B, 60*60*3) flat RGB images with pixels in [0, 1].
      training: scalar bool tensor: batch statistics and moving-average updates.
      keep_prob, loc_keep_prob: dropout keep probabilities of the classifier and of
        the loc net (the seed: 0.8 in both).
      use_stn: False builds the same classifier on the raw images.
      width: channel multiplier of every conv layer but the last (1 = the seed).
      bn: "after-relu" (the seed) or "before-relu".
      norm: "renorm" (the seed's batch renormalisation) or "plain" batch norm.
      transform: the STN's transformer, a name of ``transformer.TRANSFORMS`` (the
        seed's: "affine").
      pixel_range: "0,1" (the seed) or "-1,1": the model rescales its input to it.
        The STN fills outside the image with 0, which is black in [0, 1] but grey in
        [-1, 1].

    Returns:
      ``(logits, rectified_images)``: (B, 26), and (B, 60, 60, 3) in [0, 1] for
      figures whatever ``pixel_range``. With the STN, the graph holds ``theta`` (B, P),
      P the transformer's number of parameters (6 for the affine).
    """
    # (B, 10800) -> (B, 60, 60, 3)
    images = tf.reshape(input_data, [-1, SIZE, SIZE, CHANNELS])
    if pixel_range == "-1,1":
        images = images * 2.0 - 1.0
    if use_stn:
        with tf.variable_scope("loc_net"):
            # (B, 60, 60, 3) -> (B, 5, 5, 64) -> (B, 5, 5, 20) -> (B, 20)
            x = cnn(images, training, loc_keep_prob, width, bn, norm)
            with tf.variable_scope("conv_4"):
                x = conv_relu_pool(x, scaled(LOC_FILTERS, width))
            with tf.variable_scope("fc"):
                # (B, 20) -> (B, P), zero weights: every image starts at the identity
                identity = transformer.TRANSFORMS[transform].identity
                w = tf.Variable(tf.zeros([x.shape.as_list()[-1], len(identity)]),
                                name="weights")
                b = tf.Variable(np.array(identity, np.float32), name="bias")
        theta = tf.identity(tf.matmul(x, w) + b, name="theta")
        # (B, 60, 60, 3) warped by theta -> (B, 60, 60, 3)
        images = transformer.spatial_transformer_network(
            images, theta, out_dims=[SIZE, SIZE], transform=transform)
    with tf.variable_scope("classifier"):
        # (B, 60, 60, 3) -> (B, 5, 5, 64) -> (B, 26); the seed puts a ReLU before its
        # softmax too, so these logits are never negative.
        x = cnn(images, training, keep_prob, width, bn, norm)
        with tf.variable_scope("conv_4"):
            logits = conv_relu_pool(x, NUM_LETTERS)
    if pixel_range == "-1,1":
        images = (images + 1.0) / 2.0
    return logits, images


def build_graph(config):
    """Placeholders -> forward -> loss and metrics, in the default graph.

    Args:
      config: ``stn`` (bool), ``width``, ``bn``, ``pixel_range``, ``norm`` and
        ``transform`` (see ``forward``), as ``mnist_stn.configs`` resolves them and
        config.json keeps them.

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
                                pixel_range=config["pixel_range"], norm=config["norm"],
                                transform=config["transform"])
    theta = tf.get_default_graph().get_tensor_by_name("theta:0") if config["stn"] else None
    return {"images": images, "labels": labels, "keep_prob": keep_prob,
            "loc_keep_prob": loc_keep_prob, "training": training,
            "input_shape": (SIZE, SIZE, CHANNELS), "logits": logits, "rectified": rectified,
            "theta": theta, **metrics(logits, labels)}


def describe(config):
    """'STN-CNN (width 1, batch renorm after-relu, pixels in [0,1])' and the like."""
    name = "STN-CNN" if config["stn"] else "CNN"
    norm = "batch renorm" if config.get("norm", "plain") == "renorm" else "plain BN"
    return (f"{name} (width {config['width']:g}, {norm} {config['bn']}, "
            f"pixels in [{config['pixel_range']}])")
