"""The graph: the tutorial's localisation net, the STN, and the classic TF1 MNIST CNN;
below them, the second tutorial's STN-CNN for 60x60 captcha letters.

Only graph building lives here: no files, no sessions, no flags. ``train.py`` makes
the placeholders and calls ``forward``; ``predict.py`` does the same to restore.
"""
import numpy as np

import transformer
from mnist_stn.compat import tf
from mnist_stn.constants import (CAPTCHA_CHANNELS, CAPTCHA_SIZE, IMAGE_SIZE, NUM_CHANNELS,
                                  NUM_CLASSES, NUM_LETTERS)


def get_weights(shape):
    """A weight variable, truncated normal with stddev 0.1 as in the TF1 tutorial."""
    return tf.Variable(tf.truncated_normal(shape, stddev=0.1), name="weights")


def get_bias(shape):
    """A bias variable at 0.1, so ReLUs start alive."""
    return tf.Variable(tf.constant(0.1, shape=shape), name="bias")


def conv2d_relu(x, w, b, strides=(1, 1, 1, 1)):
    """ReLU(conv(x, w) + b), SAME padding."""
    return tf.nn.relu(tf.nn.conv2d(x, w, strides=list(strides), padding="SAME") + b)


def max_pool(x):
    """2x2 max pooling, stride 2, SAME padding: halves height and width (rounding up)."""
    return tf.nn.max_pool(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")


def pooled_size(size, halvings):
    """Side of a size x size map after ``halvings`` stride-2 SAME steps (rounding up)."""
    for _ in range(halvings):
        size = -(-size // 2)
    return size


LOC_HEADS = ("tutorial", "identity")


def loc_net(inputs, keep_prob, image_size=IMAGE_SIZE, head="tutorial"):
    """The tutorial's localisation net: six affine parameters per image.

    conv 5x5x32 stride 2 -> pool -> conv 3x3x64 -> pool -> tanh FC 32 + dropout
    -> tanh FC 6, the last bias initialised to the identity ``[1, 0, 0, 0, 1, 0]``.

    Note: the tanh after the last layer squashes that bias, and tanh(1) = 0.76, so the
    first transform is not the identity but a zoom: the STN starts by sampling the
    central 76% of the image, enlarged (plus a small random term from the last
    weights). The tutorial's choice is kept; training moves theta from there.

    ``head="identity"`` is the STN paper's start instead: the last weights are zero
    and there is no final tanh, so every image starts at exactly the identity
    transform. On distorted canvases the tutorial's random start gives each digit its
    own random rotation and shear at step 0, which the net then learns to read.

    Args:
      inputs: (B, S*S) flat images or (B, S, S, 1); S = image_size.
      keep_prob: scalar, the dropout keep probability after the FC 32 layer.
      image_size: S, the side of the input (28, or a larger canvas of distorted digits).
      head: "tutorial" or "identity", how the last layer starts (see above).

    Returns:
      theta, (B, 6).
    """
    # (B, S*S) -> (B, S, S, 1); the shapes below are for the tutorial's S = 28
    inputs = tf.reshape(inputs, [-1, image_size, image_size, NUM_CHANNELS])
    flat_size = pooled_size(image_size, 3) ** 2 * 64     # 1024 for 28x28, as the tutorial
    with tf.variable_scope("loc_layer_1"):
        w1 = get_weights([5, 5, 1, 32])
        b1 = get_bias([32])
        # (B, 28, 28, 1) -> stride 2 -> (B, 14, 14, 32) -> pool -> (B, 7, 7, 32)
        x = conv2d_relu(inputs, w1, b1, strides=[1, 2, 2, 1])
        x = max_pool(x)

    with tf.variable_scope("loc_layer_2"):
        # (B, 7, 7, 32) -> (B, 7, 7, 64) -> pool -> (B, 4, 4, 64) -> (B, 1024)
        x = conv2d_relu(x, get_weights([3, 3, 32, 64]), get_bias([64]))
        x = max_pool(x)
        x = tf.reshape(x, [-1, flat_size])

    with tf.variable_scope("loc_layer_3"):
        # (B, 1024) -> (B, 32)
        fc1 = tf.nn.tanh(tf.matmul(x, get_weights([flat_size, 32])) + get_bias([32]))
        fc1 = tf.nn.dropout(fc1, rate=1.0 - keep_prob)

    with tf.variable_scope("loc_layer_4"):
        # Without this bias the first transforms are random and the STN shows
        # meaningless crops; the identity rows [[1, 0, 0], [0, 1, 0]] start it near
        # "look at the whole image".
        initial = np.array([[1., 0, 0], [0, 1., 0]])
        initial = initial.astype("float32")
        initial = initial.flatten()
        if head == "tutorial":
            w2 = get_weights([32, 6])
        else:
            w2 = tf.Variable(tf.zeros([32, 6]), name="weights")
        b2 = tf.Variable(initial_value=initial, name="bias")
        # (B, 32) -> (B, 6)
        fc2 = tf.matmul(fc1, w2) + b2
        if head == "tutorial":
            fc2 = tf.nn.tanh(fc2)
    return fc2


def classifier(images, keep_prob):
    """The classic TF1 MNIST CNN ("Deep MNIST for experts").

    conv 5x5x32 -> pool -> conv 5x5x64 -> pool -> FC 1024 + dropout -> FC 10.

    Args:
      images: (B, S, S, 1), S static: 28, or a larger canvas for the baseline that
        reads distorted digits without an STN.
      keep_prob: scalar, the dropout keep probability after FC 1024.

    Returns:
      logits, (B, 10).
    """
    with tf.variable_scope("layer_1"):
        # (B, 28, 28, 1) -> (B, 28, 28, 32) -> pool -> (B, 14, 14, 32)
        x = conv2d_relu(images, get_weights([5, 5, NUM_CHANNELS, 32]), get_bias([32]))
        x = max_pool(x)

    with tf.variable_scope("layer_2"):
        # (B, 14, 14, 32) -> (B, 14, 14, 64) -> pool -> (B, 7, 7, 64)
        x = conv2d_relu(x, get_weights([5, 5, 32, 64]), get_bias([64]))
        x = max_pool(x)

    flat_size = pooled_size(images.shape.as_list()[1], 2) ** 2 * 64   # 3136 for 28x28
    with tf.variable_scope("layer_3"):
        # (B, 7, 7, 64) -> (B, 3136) -> (B, 1024)
        x = tf.reshape(x, [-1, flat_size])
        x = tf.nn.relu(tf.matmul(x, get_weights([flat_size, 1024])) + get_bias([1024]))
        x = tf.nn.dropout(x, rate=1.0 - keep_prob)

    with tf.variable_scope("layer_4"):
        # (B, 1024) -> (B, 10)
        return tf.matmul(x, get_weights([1024, NUM_CLASSES])) + get_bias([NUM_CLASSES])


def forward(input_data, keep_prob, loc_keep_prob, use_stn=True, image_size=IMAGE_SIZE,
            loc_head="tutorial"):
    """The tutorial's forward pass: rectify with the STN, then classify.

    Args:
      input_data: (B, S*S) flat images with pixels in [0, 1]; S = image_size.
      keep_prob: dropout keep probability of the classifier.
      loc_keep_prob: dropout keep probability of the localisation net.
      use_stn: False builds the same classifier on the raw images (the baseline);
        ``loc_keep_prob`` is then unused.
      image_size: S: 28 for MNIST, larger for a canvas of distorted digits. The STN
        samples any canvas down to 28x28, so the classifier always reads 28x28; the
        baseline reads the whole canvas.
      loc_head: how the loc net's last layer starts, see ``loc_net``.

    Returns:
      ``(logits, rectified_images)``: (B, 10) and (B, 28, 28, 1), or (B, S, S, 1)
      without the STN, where the "rectified" images are the inputs themselves. With the
      STN, the graph also holds the tensor ``theta`` (B, 6), named so.
    """
    # (B, S*S) -> (B, S, S, 1)
    images = tf.reshape(input_data, [-1, image_size, image_size, NUM_CHANNELS])
    if use_stn:
        theta = tf.identity(loc_net(input_data, loc_keep_prob, image_size, loc_head),
                            name="theta")
        # (B, S, S, 1) warped by theta -> (B, 28, 28, 1)
        images = transformer.spatial_transformer_network(
            images, theta, out_dims=[IMAGE_SIZE, IMAGE_SIZE])
    logits = classifier(images, keep_prob)
    return logits, images


# The second tutorial: an STN-CNN for single captcha letters, 60x60 RGB (Keras there).
CAPTCHA_FILTERS = (512, 256, 64)     # cnn(): conv 5x5 stride 3, 3x3 stride 2, 3x3 stride 2
CAPTCHA_LOC_FILTERS = 20             # the loc head's conv 3x3 before global pooling
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


def captcha_conv(x, filters, kernel, stride, training, keep_prob, bn="after-relu"):
    """One block of the seed's cnn(): conv + ReLU, batch norm, dropout.

    ``bn="before-relu"`` swaps the order to conv -> BN -> ReLU (one of its ablations).
    """
    w = glorot_weights([kernel, kernel, x.shape.as_list()[-1], filters])
    b = tf.Variable(tf.zeros([filters]), name="bias")
    x = tf.nn.conv2d(x, w, strides=[1, stride, stride, 1], padding="SAME") + b
    if bn == "after-relu":
        x = batch_norm(tf.nn.relu(x), training)
    else:
        x = tf.nn.relu(batch_norm(x, training))
    return tf.nn.dropout(x, rate=1.0 - keep_prob)


def captcha_cnn(x, training, keep_prob, width=1.0, bn="after-relu"):
    """The seed's cnn(), shared by its loc net and its classifier (separate weights).

    (B, 60, 60, C) -> (B, 20, 20, 512) -> (B, 10, 10, 256) -> (B, 5, 5, 64),
    channels times ``width``.
    """
    for i, (filters, kernel, stride) in enumerate(zip(CAPTCHA_FILTERS, (5, 3, 3), (3, 2, 2))):
        with tf.variable_scope(f"conv_{i + 1}"):
            x = captcha_conv(x, scaled(filters, width), kernel, stride, training, keep_prob, bn)
    return x


def conv_relu_pool(x, filters):
    """Conv 3x3 + ReLU, then global average pooling: (B, H, W, C) -> (B, filters)."""
    w = glorot_weights([3, 3, x.shape.as_list()[-1], filters])
    b = tf.Variable(tf.zeros([filters]), name="bias")
    x = tf.nn.relu(tf.nn.conv2d(x, w, strides=[1, 1, 1, 1], padding="SAME") + b)
    return tf.reduce_mean(x, axis=[1, 2])


def captcha_forward(input_data, training, keep_prob, loc_keep_prob, use_stn=True,
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
    images = tf.reshape(input_data, [-1, CAPTCHA_SIZE, CAPTCHA_SIZE, CAPTCHA_CHANNELS])
    if pixel_range == "-1,1":
        images = images * 2.0 - 1.0
    if use_stn:
        with tf.variable_scope("loc_net"):
            # (B, 60, 60, 3) -> (B, 5, 5, 64) -> (B, 5, 5, 20) -> (B, 20)
            x = captcha_cnn(images, training, loc_keep_prob, width, bn)
            with tf.variable_scope("conv_4"):
                x = conv_relu_pool(x, scaled(CAPTCHA_LOC_FILTERS, width))
            with tf.variable_scope("fc"):
                # (B, 20) -> (B, 6), zero weights: every image starts at the identity
                w = tf.Variable(tf.zeros([x.shape.as_list()[-1], 6]), name="weights")
                b = tf.Variable(np.array(transformer.IDENTITY_THETA, np.float32),
                                name="bias")
        theta = tf.identity(tf.matmul(x, w) + b, name="theta")
        # (B, 60, 60, 3) warped by theta -> (B, 60, 60, 3)
        images = transformer.spatial_transformer_network(
            images, theta, out_dims=[CAPTCHA_SIZE, CAPTCHA_SIZE])
    with tf.variable_scope("classifier"):
        # (B, 60, 60, 3) -> (B, 5, 5, 64) -> (B, 26); the seed puts a ReLU before its
        # softmax too, so these logits are never negative.
        x = captcha_cnn(images, training, keep_prob, width, bn)
        with tf.variable_scope("conv_4"):
            logits = conv_relu_pool(x, NUM_LETTERS)
    if pixel_range == "-1,1":
        images = (images + 1.0) / 2.0
    return logits, images
