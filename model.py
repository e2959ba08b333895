"""The graph: the tutorial's localisation net, the STN, and the classic TF1 MNIST CNN.

Only graph building lives here: no files, no sessions, no flags. ``forward`` is the
tutorial's forward pass; ``build_graph`` wraps it in the placeholders, loss and
metrics that ``train.py`` and ``predict.py`` both build, as TF1's ``mnist.py`` held
``inference``, ``loss`` and ``evaluation`` for ``fully_connected_feed.py``.
"""
import contextlib

import numpy as np

from mnist_stn.compat import tf     # first: it quiets TensorFlow's C++ start-up log
import transformer  # noqa: I001
from mnist_stn.constants import (IMAGE_SIZE, LOC_HEADS, NUM_CHANNELS, NUM_CLASSES,
                                 SUM_CLASSES)
from mnist_stn import geometry
from mnist_stn.metrics import metrics


def get_weights(shape):
    """A weight variable, truncated normal with stddev 0.1 as in the TF1 tutorial."""
    return tf.Variable(tf.truncated_normal(shape, stddev=0.1), name="weights")


def get_bias(shape):
    """A bias variable at 0.1, so ReLUs start alive."""
    return tf.Variable(tf.constant(0.1, shape=shape), name="bias")


def conv2d_relu(x, w, b, strides=(1, 1, 1, 1)):
    """ReLU(conv(x, w) + b), SAME padding."""
    return tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w, strides=list(strides), padding="SAME"), b))


def max_pool(x):
    """2x2 max pooling, stride 2, SAME padding: halves height and width (rounding up)."""
    return tf.nn.max_pool(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")


def pooled_size(size, halvings):
    """Side of a size x size map after ``halvings`` stride-2 SAME steps (rounding up)."""
    for _ in range(halvings):
        size = -(-size // 2)
    return size


LOC_HIDDEN = 32     # the tutorial's loc net: units of its tanh FC layer


def start_theta(transform, start_scale=1.0):
    """The theta the loc net's last bias starts at: the whole input (or its centre, s
    times its side, for start_scale s < 1), for a transformer of ``transformer.py``."""
    if transform not in transformer.TRANSFORMS:
        raise ValueError(f"transform must be one of {', '.join(transformer.TRANSFORMS)}, "
                         f"not {transform!r}")
    return np.array(transformer.TRANSFORMS[transform].zoom(start_scale), np.float32)


def loc_features(inputs, keep_prob, image_size=IMAGE_SIZE, channels=NUM_CHANNELS):
    """The tutorial's loc net up to its FC 32, what its last layer reads: (B, S*S*C)
    flat images -> conv 5x5x32 stride 2 -> pool -> conv 3x3x64 -> pool -> tanh FC 32
    + dropout -> (B, 32)."""
    # (B, S*S*C) -> (B, S, S, C); the shapes below are for the tutorial's S = 28, C = 1
    inputs = tf.reshape(inputs, [-1, image_size, image_size, channels])
    flat_size = pooled_size(image_size, 3) ** 2 * 64     # 1024 for 28x28, as the tutorial
    with tf.variable_scope("loc_layer_1"):
        w1 = get_weights([5, 5, channels, 32])
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
        fc1 = tf.nn.tanh(tf.nn.bias_add(tf.matmul(x, get_weights([flat_size, LOC_HIDDEN])),
                                        get_bias([LOC_HIDDEN])))
        return tf.nn.dropout(fc1, rate=1.0 - keep_prob)


def loc_net(inputs, keep_prob, image_size=IMAGE_SIZE, head="tutorial", start_scale=1.0,
            transform="affine", channels=NUM_CHANNELS):
    """The tutorial's localisation net: six affine parameters per image (or the
    parameters of another transformer of ``transformer.TRANSFORMS``, ``transform``).

    conv 5x5x32 stride 2 -> pool -> conv 3x3x64 -> pool -> tanh FC 32 + dropout
    -> tanh FC 6, the last bias initialised to the identity ``[1, 0, 0, 0, 1, 0]``.

    Note: the tanh after the last layer squashes that bias, and tanh(1) = 0.76, so the
    first transform is not the identity but a zoom: the STN starts by sampling the
    central 76% of the image, enlarged (plus a small random term from the last
    weights). The tutorial's choice is kept; training moves theta from there. Another
    transformer gets the same head over its own identity: a spline's offsets start at
    tanh(0) = 0, plus the random term.

    ``head="identity"`` is the STN paper's start instead: the last weights are zero
    and there is no final tanh, so every image starts at exactly the identity
    transform. On distorted canvases the tutorial's random start gives each digit its
    own random rotation and shear at step 0, which the net then learns to read.

    ``start_scale`` s < 1 starts the box zoomed in: the bias is ``[s, 0, 0, 0, s, 0]``,
    so the identity head first samples the centre of the canvas, s times its side. A
    net started on the whole canvas learns to read digits shrunk to the output's scale
    and has little reason to zoom later; started zoomed in, it learns enlarged digits.

    Args:
      inputs: (B, S*S) flat images or (B, S, S, 1); S = image_size.
      keep_prob: scalar, the dropout keep probability after the FC 32 layer.
      image_size: S, the side of the input (28, or a larger canvas of distorted digits).
      head: "tutorial" or "identity", how the last layer starts (see above).
      start_scale: the diagonal of the last bias, 1 as the tutorial (see above).
      transform: a name of ``transformer.TRANSFORMS``: "affine" (theta (B, 6)),
        "projective" (B, 8), "tps" (B, 32) or "attention" (B, 3).
      channels: C, the input's channels (2 for the addition's pairs).

    Returns:
      theta, (B, P): P the transformer's number of parameters.
    """
    if head not in LOC_HEADS:
        raise ValueError(f"loc_head must be one of {', '.join(LOC_HEADS)}, not {head!r}")
    # (B, S*S*C) -> (B, 32)
    fc1 = loc_features(inputs, keep_prob, image_size, channels)

    with tf.variable_scope("loc_layer_4"):
        # Without this bias the first transforms are random and the STN shows
        # meaningless crops; the identity rows [[1, 0, 0], [0, 1, 0]] start it near
        # "look at the whole image" (or its centre, zoomed in, with start_scale < 1).
        initial = start_theta(transform, start_scale)
        size = len(initial)
        if head == "tutorial":
            w2 = get_weights([LOC_HIDDEN, size])
        else:
            w2 = tf.Variable(tf.zeros([LOC_HIDDEN, size]), name="weights")
        b2 = tf.Variable(initial_value=initial, name="bias")
        # (B, 32) -> (B, P)
        fc2 = tf.matmul(fc1, w2) + b2
        if head == "tutorial":
            fc2 = tf.nn.tanh(fc2)
    return fc2


def classifier(images, keep_prob, classes=NUM_CLASSES, activations=None):
    """The classic TF1 MNIST CNN ("Deep MNIST for experts").

    conv 5x5x32 -> pool -> conv 5x5x64 -> pool -> FC 1024 + dropout -> FC 10.

    Args:
      images: (B, S, S, C), S and C static: 28 and 1, or a larger canvas for the
        baseline that reads distorted digits without an STN, or more channels.
      keep_prob: scalar, the dropout keep probability after FC 1024.
      classes: 10 digits, or the addition's 19 sums.
      activations: a list the output of each layer is appended to (what the network
        sees in an image, for co-localisation's embedding), or None.

    Returns:
      logits, (B, classes).
    """
    seen = activations if activations is not None else []
    channels = images.shape.as_list()[3]
    with tf.variable_scope("layer_1"):
        # (B, 28, 28, 1) -> (B, 28, 28, 32) -> pool -> (B, 14, 14, 32)
        x = conv2d_relu(images, get_weights([5, 5, channels, 32]), get_bias([32]))
        x = max_pool(x)
        seen.append(x)

    with tf.variable_scope("layer_2"):
        # (B, 14, 14, 32) -> (B, 14, 14, 64) -> pool -> (B, 7, 7, 64)
        x = conv2d_relu(x, get_weights([5, 5, 32, 64]), get_bias([64]))
        x = max_pool(x)
        seen.append(x)

    flat_size = pooled_size(images.shape.as_list()[1], 2) ** 2 * 64   # 3136 for 28x28
    with tf.variable_scope("layer_3"):
        # (B, 7, 7, 64) -> (B, 3136) -> (B, 1024)
        x = tf.reshape(x, [-1, flat_size])
        x = tf.nn.relu(tf.nn.bias_add(tf.matmul(x, get_weights([flat_size, 1024])),
                                      get_bias([1024])))
        seen.append(x)
        x = tf.nn.dropout(x, rate=1.0 - keep_prob)

    with tf.variable_scope("layer_4"):
        # (B, 1024) -> (B, 10)
        logits = tf.nn.bias_add(tf.matmul(x, get_weights([1024, classes])),
                                get_bias([classes]))
        seen.append(logits)
        return logits


FCN_HIDDEN = (256, 256)     # the fully connected classifier's ReLU layers


def fcn(images, keep_prob, classes=NUM_CLASSES):
    """A fully connected classifier, the STN paper's FCN: it sees pixels, not shapes, so
    where a digit sits and how it is turned matter to it as to no CNN.

    flat -> FC 256 -> FC 256 + dropout -> FC classes, ReLUs between.

    Args:
      images: (B, S, S, C), static S and C.
      keep_prob: scalar, the dropout keep probability before the last layer.
      classes: 10 digits, or the addition's 19 sums.

    Returns:
      logits, (B, classes).
    """
    # (B, S, S, C) -> (B, S*S*C)
    x = tf.reshape(images, [-1, int(np.prod(images.shape.as_list()[1:]))])
    for i, units in enumerate(FCN_HIDDEN, start=1):
        with tf.variable_scope(f"fc_{i}"):
            # (B, n) -> (B, 256)
            x = tf.nn.relu(tf.nn.bias_add(
                tf.matmul(x, get_weights([x.shape.as_list()[1], units])), get_bias([units])))
    x = tf.nn.dropout(x, rate=1.0 - keep_prob)
    with tf.variable_scope("fc_out"):
        # (B, 256) -> (B, classes)
        return tf.nn.bias_add(tf.matmul(x, get_weights([FCN_HIDDEN[-1], classes])),
                              get_bias([classes]))


CLASSIFY = {"cnn": classifier, "fcn": fcn}


def forward(input_data, keep_prob, loc_keep_prob, use_stn=True, image_size=IMAGE_SIZE,
            loc_head="tutorial", loc_start_scale=1.0, transform="affine",
            channels=NUM_CHANNELS, classifier_kind="cnn", classes=NUM_CLASSES):
    """The tutorial's forward pass: rectify with the STN, then classify.

    Args:
      input_data: (B, S*S*C) flat images with pixels in [0, 1]; S = image_size,
        C = channels, channel last.
      keep_prob: dropout keep probability of the classifier.
      loc_keep_prob: dropout keep probability of the localisation net.
      use_stn: False builds the same classifier on the raw images (the baseline);
        ``loc_keep_prob`` is then unused.
      image_size: S: 28 for MNIST, larger for a canvas of distorted digits. The STN
        samples any canvas down to 28x28, so the classifier always reads 28x28; the
        baseline reads the whole canvas.
      loc_head, loc_start_scale: how the loc net's last layer starts, see ``loc_net``.
      transform: the STN's transformer, a name of ``transformer.TRANSFORMS``:
        "affine" (the tutorial's), "projective", "tps" or "attention"; or a list of
        names, one STN each, side by side: each reads the whole input and writes all
        its channels, and the classifier reads their outputs stacked as channels
        (the paper's 2xST-FCN for the addition).
      channels: C, 1 for a digit, 2 for the addition's pair.
      classifier_kind: "cnn", the TF1 CNN, or "fcn" (``CLASSIFY``).
      classes: 10 digits, or the addition's 19 sums.

    Returns:
      ``(logits, rectified_images)``: (B, classes) and (B, 28, 28, N*C) for N STNs, or
      (B, S, S, C) without the STN, where the "rectified" images are the inputs
      themselves. With the STN, the graph also holds the tensor ``theta`` (B, P),
      named so: P is 6 for the affine, the transformer's number of parameters for
      another, their sum for several STNs (each one's in turn).
    """
    # (B, S*S*C) -> (B, S, S, C)
    images = tf.reshape(input_data, [-1, image_size, image_size, channels])
    if use_stn:
        names = transform if isinstance(transform, (list, tuple)) else [transform]
        thetas, outputs = [], []
        for i, name in enumerate(names, start=1):
            # one STN keeps the tutorial's variable names; several get a scope each
            with (tf.variable_scope(f"stn_{i}") if len(names) > 1
                  else contextlib.nullcontext()):
                theta = loc_net(input_data, loc_keep_prob, image_size, loc_head,
                                loc_start_scale, name, channels)
            # (B, S, S, C) warped by theta -> (B, 28, 28, C)
            outputs.append(transformer.spatial_transformer_network(
                images, theta, out_dims=[IMAGE_SIZE, IMAGE_SIZE], transform=name))
            thetas.append(theta)
        tf.identity(tf.concat(thetas, axis=1), name="theta")
        # N x (B, 28, 28, C) -> (B, 28, 28, N*C)
        images = tf.concat(outputs, axis=3) if len(outputs) > 1 else outputs[0]
    logits = CLASSIFY[classifier_kind](images, keep_prob, classes)
    return logits, images


def build_graph(config):
    """Placeholders -> forward -> loss and metrics, in the default graph.

    Args:
      config: how the model is built, as ``mnist_stn.configs`` resolves it and
        config.json keeps it: ``stn`` (bool), ``image_size`` (28, or the side of a
        canvas of distorted digits), ``digits`` (1, or 2: the addition, a digit per
        channel, the sum to find), ``classifier`` ("cnn" or "fcn"); with the STN
        also ``loc_head``, ``loc_start_scale`` (see ``loc_net``), ``transformers``
        (how many STNs side by side) and ``transform`` (a name for all, or one each).
        Other keys are ignored.

    Returns:
      A dict of graph nodes: the placeholders ``images`` (B, S*S*C), ``labels`` (B,),
      ``keep_prob`` and ``loc_keep_prob`` (both 1.0 unless fed); ``input_shape``
      (S, S, C), how to unflatten ``images``; ``loc_variables``, the loc nets'
      trainable variables; ``logits``,
      ``rectified``, ``theta`` (None without the STN), ``probabilities``,
      ``predictions``, ``num_correct``, ``accuracy`` and ``loss``.
    """
    size, channels = config["image_size"], config.get("digits", 1)
    images = tf.placeholder(tf.float32, [None, size * size * channels], name="images")
    labels = tf.placeholder(tf.int64, [None], name="labels")
    keep_prob = tf.placeholder_with_default(1.0, [], name="keep_prob")
    loc_keep_prob = tf.placeholder_with_default(1.0, [], name="loc_keep_prob")
    names = geometry.kinds(config)
    stn = {"loc_head": config["loc_head"], "loc_start_scale": config["loc_start_scale"],
           "transform": names if len(names) > 1 else names[0]} if config["stn"] else {}
    logits, rectified = forward(images, keep_prob, loc_keep_prob, use_stn=config["stn"],
                                image_size=size, channels=channels,
                                classifier_kind=config.get("classifier", "cnn"),
                                classes=SUM_CLASSES if channels == 2 else NUM_CLASSES,
                                **stn)
    theta = tf.get_default_graph().get_tensor_by_name("theta:0") if config["stn"] else None
    loc_variables = [v for v in tf.trainable_variables() if "loc_layer_" in v.name]
    return {"images": images, "labels": labels, "keep_prob": keep_prob,
            "loc_variables": loc_variables,
            "loc_keep_prob": loc_keep_prob, "input_shape": (size, size, channels),
            "logits": logits, "rectified": rectified, "theta": theta,
            **metrics(logits, labels)}


def describe(config):
    """'STN (affine)', 'CNN', 'STN (tps, identity loc head) on RTS', '2xST-FCN
    (affine, identity loc head) adding RTS pairs', ... for messages."""
    classifier_name = config.get("classifier", "cnn").upper()
    name = classifier_name
    if config["stn"]:
        head = "" if config["loc_head"] == "tutorial" else f", {config['loc_head']} loc head"
        names = geometry.kinds(config)
        what = ", ".join(dict.fromkeys(names))
        count = f"{len(names)}x" if len(names) > 1 else ""
        name = (f"STN ({what}{head})" if classifier_name == "CNN" and not count
                else f"{count}ST-{classifier_name} ({what}{head})")
    distortion = config.get("distortion", "none")
    if config.get("digits", 1) == 2:
        return f"{name} adding {distortion} pairs"
    return name if distortion == "none" else f"{name} on {distortion}"


# -- co-localisation (the STN paper's Appendix A.2) ------------------------------------

COLOC_MARGIN = 1.0      # the triplet loss's alpha


def coloc_loc_net(inputs, image_size, start_scale, min_scale, layers="paper"):
    """The paper's co-localisation loc net: an attention window (s, t_x, t_y) per image.

    conv 9x9x8 stride 4 -> pool -> FC 8 -> FC 8 -> FC 3, ReLUs between (``layers``
    "paper"), or the tutorial's loc net up to its FC 32, then FC 3 ("tutorial"). The window
    stays on the canvas: its scale is clipped to [min_scale, 1] and its centre moves
    at most as far as the window fits (t = tanh(.) (1 - s)), so it cannot escape to
    the blank beyond the canvas, where every window would look alike. The last layer
    starts at zero weights and the bias (start_scale, 0, 0): every image's window
    starts centred, start_scale times the canvas's side.

    Args:
      inputs: (B, S*S) flat canvases; S = image_size.
    Returns:
      theta, (B, 3).
    """
    if layers == "tutorial":
        x = loc_features(inputs, 1.0, image_size)                     # (B, 32)
    else:
        # (B, S*S) -> (B, S, S, 1); the shapes below are for the paper's S = 84
        x = tf.reshape(inputs, [-1, image_size, image_size, NUM_CHANNELS])
        with tf.variable_scope("loc_layer_1"):
            # (B, 84, 84, 1) -> stride 4 -> (B, 21, 21, 8) -> pool -> (B, 11, 11, 8)
            x = max_pool(conv2d_relu(x, get_weights([9, 9, NUM_CHANNELS, 8]),
                                     get_bias([8]), strides=[1, 4, 4, 1]))
            x = tf.reshape(x, [-1, pooled_size(pooled_size(image_size, 2), 1) ** 2 * 8])
        for i in (2, 3):
            with tf.variable_scope(f"loc_layer_{i}"):
                # (B, 968) -> (B, 8) -> (B, 8)
                x = tf.nn.relu(tf.nn.bias_add(
                    tf.matmul(x, get_weights([x.shape.as_list()[1], 8])), get_bias([8])))
    with tf.variable_scope("loc_layer_4"):
        # (B, 8) -> (B, 3)
        weights = tf.Variable(tf.zeros([x.shape.as_list()[1], 3]), name="weights")
        # the scale's bias only: a bias on the shift would send every window to one
        # place of the canvas, which is where the loss first pulls them all
        bias = tf.Variable(start_theta("attention", start_scale)[:1], name="bias")
        # (B, 8) -> (B, 3) -> (B, 1) scale, (B, 2) shift
        raw = tf.matmul(x, weights) + tf.pad(bias, [[0, 2]])
        scale = tf.clip_by_value(raw[:, :1], min_scale, 1.0)
        return tf.concat([scale, tf.tanh(raw[:, 1:]) * (1.0 - scale)], axis=1)


def frozen(values):
    """Inside this scope, each ``tf.Variable`` whose name (within the scope's name
    scope) is a key of ``values`` starts at that array and is not trained."""
    outer = tf.get_default_graph().get_name_scope()

    def creator(next_creator, **kwargs):
        scope = tf.get_default_graph().get_name_scope()[len(outer):].lstrip("/")
        name = f"{scope}/{kwargs.get('name')}".lstrip("/")
        if name in values:
            kwargs.update(initial_value=values[name], trainable=False)
        return next_creator(**kwargs)
    return tf.variable_creator_scope(creator)


def embedding(images, classifier_weights):
    """e(): the clean-MNIST classifier's view of 28x28 images, every layer's activations,
    each scaled to unit length, concatenated and scaled by 1/sqrt(layers): (B, D), unit
    length, so that the margin of 1 has a scale."""
    layers = []
    with tf.variable_scope("embedding"), frozen(classifier_weights):
        classifier(images, 1.0, activations=layers)
    flat = [tf.math.l2_normalize(tf.reshape(a, [tf.shape(a)[0], -1]), axis=1) for a in layers]
    return tf.concat(flat, axis=1) / np.sqrt(len(flat))


def triplet_loss(anchors, negatives, margin=COLOC_MARGIN):
    """The paper's co-localisation loss over every pair (n, m), n != m, of a batch of one
    class: mean of max(0, |e_n - e_m|^2 - |e_n - r_n|^2 + margin).

    Args:
      anchors: (B, D), e() of each image's window.
      negatives: (B, D), e() of a random window of the same size in the same image.
    """
    # (B, 1, D) - (1, B, D) -> (B, B): |e_n - e_m|^2
    between = tf.reduce_sum(tf.square(anchors[:, None] - anchors[None]), axis=2)
    # (B,): |e_n - r_n|^2
    apart = tf.reduce_sum(tf.square(anchors - negatives), axis=1)
    hinge = tf.nn.relu(between - apart[:, None] + margin)
    others = 1.0 - tf.eye(tf.shape(anchors)[0], dtype=hinge.dtype)
    return tf.reduce_sum(hinge * others) / tf.reduce_sum(others)


def window_boxes(theta, size):
    """(B, 3) windows -> (B, 4) boxes (x0, y0, x1, y1) in pixels of a size x size canvas,
    0 the centre of the first pixel: the outermost points the window samples."""
    scale, shift_x, shift_y = tf.unstack(theta, axis=1)
    half = scale * (size - 1) / 2.0
    centre_x, centre_y = (shift_x + 1.0) * (size - 1) / 2.0, (shift_y + 1.0) * (size - 1) / 2.0
    return tf.stack([centre_x - half, centre_y - half, centre_x + half, centre_y + half], 1)


def box_iou(a, b):
    """Intersection over union of (B, 4) boxes (x0, y0, x1, y1), elementwise: (B,)."""
    width = tf.nn.relu(tf.minimum(a[:, 2], b[:, 2]) - tf.maximum(a[:, 0], b[:, 0]))
    height = tf.nn.relu(tf.minimum(a[:, 3], b[:, 3]) - tf.maximum(a[:, 1], b[:, 1]))
    inter = width * height
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / tf.maximum(area - inter, 1e-12)


def build_coloc_graph(config, classifier_weights):
    """Co-localisation's graph: canvases -> attention windows -> the triplet loss.

    No label reaches the loss: ``labels``, each digit's box (x0, y0, x1, y1) on the
    canvas (its 28x28 frame), only scores the windows (IoU > 0.5 with it).

    Args:
      config: ``image_size`` (the canvas side, 84), ``loc_start_scale`` and
        ``min_scale`` (the windows' first and smallest size, shares of the side),
        ``transform`` ("attention").
      classifier_weights: the clean-MNIST CNN's variables by name ("layer_1/weights",
        ...), arrays: the embedding, frozen.

    Returns:
      The nodes ``training.fit`` reads (as ``build_graph``'s): ``images`` (B, S*S),
      ``labels`` (B, 4) int, ``keep_prob`` and ``loc_keep_prob`` (unused), ``loss``,
      ``accuracy`` and ``num_correct`` (windows on their digit), ``theta`` (B, 3),
      ``rectified`` (B, 28, 28, 1) the windows' contents, ``loc_variables``,
      ``input_shape``; and ``iou`` (B,).
    """
    size = config["image_size"]
    images = tf.placeholder(tf.float32, [None, size * size], name="images")
    labels = tf.placeholder(tf.int64, [None, 4], name="labels")
    canvases = tf.reshape(images, [-1, size, size, NUM_CHANNELS])
    theta = tf.identity(coloc_loc_net(images, size, config["loc_start_scale"],
                                      config["min_scale"], config["loc_layers"]),
                        name="theta")
    # (B, 84, 84, 1) -> (B, 28, 28, 1): what each window shows
    windows = transformer.spatial_transformer_network(
        canvases, theta, out_dims=[IMAGE_SIZE, IMAGE_SIZE], transform="attention")
    # a window of the same size anywhere on the canvas: its centre uniform where it fits
    scale = theta[:, :1]
    place = tf.random.uniform(tf.shape(theta[:, 1:]), -1.0, 1.0) * tf.abs(1.0 - scale)
    elsewhere = transformer.spatial_transformer_network(
        canvases, tf.concat([scale, place], axis=1), out_dims=[IMAGE_SIZE, IMAGE_SIZE],
        transform="attention")
    # (2B, 28, 28, 1) -> (2B, D) -> (B, D) each
    anchors, negatives = tf.split(embedding(tf.concat([windows, elsewhere], 0),
                                            classifier_weights), 2)
    iou = box_iou(window_boxes(theta, size), tf.cast(labels, tf.float32))
    hits = tf.cast(iou > 0.5, tf.float32)
    return {"images": images, "labels": labels,
            "keep_prob": tf.placeholder_with_default(1.0, [], name="keep_prob"),
            "loc_keep_prob": tf.placeholder_with_default(1.0, [], name="loc_keep_prob"),
            "loss": triplet_loss(anchors, negatives), "iou": iou,
            "accuracy": tf.reduce_mean(hits),
            "num_correct": tf.cast(tf.reduce_sum(hits), tf.int32),
            "theta": theta, "rectified": windows, "input_shape": (size, size, NUM_CHANNELS),
            "loc_variables": [v for v in tf.trainable_variables()
                              if v.name.startswith("loc_layer_")]}
