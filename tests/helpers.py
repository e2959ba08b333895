"""Shared test helpers: MNIST-format files, real when ../shared/mnist has them, else generated.

Tests import these (``from helpers import ...``); the fixtures built on them are in
``conftest.py``.
"""
import gzip
import signal
import struct
from pathlib import Path

import numpy as np
import pytest

from mnist_stn.constants import IMAGE_SIZE, NUM_CLASSES, VALIDATION_SIZE

# The real MNIST files kept beside the project (see its README); never downloaded here.
REAL_MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "mnist"
MNIST_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
HAVE_REAL_MNIST = all((REAL_MNIST_DIR / (name + ".gz")).is_file() for name in MNIST_NAMES)

# Sizes of the generated stand-ins. The session one leaves a train set after the
# default validation split, so load_mnist(mnist_dir) works with its defaults.
FAKE_SIZES = {"train": 300, "t10k": 100}
STANDIN_SIZES = {"train": VALIDATION_SIZE + 500, "t10k": 500}


def idx_bytes(array):
    """The uncompressed IDX encoding of a uint8 array (magic 0x08 = unsigned byte, ndim)."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(f">I{array.ndim}I", 0x0800 | array.ndim, *array.shape)
    return header + array.tobytes()


def write_file(path, payload, gz=True):
    """Write ``payload`` to ``path``, gzip-compressed if ``gz``; returns the path."""
    path = Path(path)
    path.write_bytes(gzip.compress(payload, compresslevel=1) if gz else payload)
    return path


def write_idx(directory, images, labels, prefix, gz=True):
    """Write ``{prefix}-images-idx3-ubyte`` and ``{prefix}-labels-idx1-ubyte`` (+ .gz).

    Returns the (images, labels) paths. ``prefix`` is "train" or "t10k" for the
    standard names.
    """
    suffix = ".gz" if gz else ""
    directory = Path(directory)
    return (write_file(directory / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images), gz),
            write_file(directory / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels), gz))


def make_digits(n, rng):
    """``n`` digit-like uint8 images and their labels.

    Each image is dark with a bright, slightly jittered bar whose position and
    orientation depend on the label, so a classifier can learn them.
    """
    labels = rng.randint(0, NUM_CLASSES, size=n).astype(np.uint8)
    images = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for i, label in enumerate(labels.tolist()):
        offset = 4 + 4 * (label % 5) + rng.randint(-1, 2)
        lo, hi = 4 + rng.randint(0, 3), IMAGE_SIZE - 4 - rng.randint(0, 3)
        if label < 5:
            images[i, lo:hi, offset:offset + 3] = 255
        else:
            images[i, offset:offset + 3, lo:hi] = 255
    noise = rng.randint(0, 40, size=images.shape)
    return np.maximum(images, noise).astype(np.uint8), labels


def write_mnist(directory, sizes, seed=0, gz=True):
    """Generate a full set of the four standard files in ``directory``; returns it."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    for prefix, n in sizes.items():
        write_idx(directory, *make_digits(n, rng), prefix, gz=gz)
    return Path(directory)


def central_differences(f, x, eps=1e-6):
    """The gradient of scalar f at x, one coordinate at a time."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        grad[idx] = (f(up) - f(down)) / (2 * eps)
    return grad


def stn_gradients(images, thetas, weights, out_dims, transform="affine"):
    """The STN layer's gradients of ``sum(out * weights)`` for theta and the image in
    float64, and the same by central finite differences:
    ((theta's, its differences), (the image's, its differences))."""
    import transformer
    from mnist_stn.compat import tf
    with tf.Graph().as_default(), tf.Session() as sess:
        img_ph = tf.placeholder(tf.float64, images.shape)
        theta_ph = tf.placeholder(tf.float64, thetas.shape)
        out = transformer.spatial_transformer_network(img_ph, theta_ph, out_dims=out_dims,
                                                      transform=transform)
        loss = tf.reduce_sum(out * weights)
        grads = sess.run(tf.gradients(loss, [theta_ph, img_ph]),
                         {theta_ph: thetas, img_ph: images})

        def loss_at(t, im):
            return sess.run(loss, {theta_ph: t, img_ph: im})

        return ((grads[0], central_differences(lambda t: loss_at(t, images), thetas)),
                (grads[1], central_differences(lambda im: loss_at(thetas, im), images)))


def grid_points(out_h, out_w):
    """(out_h * out_w, 2) output points, x fastest, -1 and +1 the edge pixels' centres."""
    x, y = np.meshgrid(np.linspace(-1, 1, out_w), np.linspace(-1, 1, out_h))
    return np.stack([x.ravel(), y.ravel()], axis=1)


def tps_sources(theta, out_h, out_w, grid=4):
    """The thin-plate spline through (control point, control point + offset), solved
    here with NumPy's own solver, evaluated at every output point."""
    ticks = np.linspace(-1, 1, grid)
    cx, cy = np.meshgrid(ticks, ticks)
    control = np.stack([cx.ravel(), cy.ravel()], axis=1)
    count = len(control)

    def u(a, b):
        r2 = ((a[:, None] - b[None]) ** 2).sum(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(r2 > 0, r2 * np.log(r2), 0.0)
    system = np.zeros((count + 3, count + 3))
    system[:count, :count] = u(control, control)
    system[:count, count:] = np.c_[np.ones(count), control]
    system[count:, :count] = np.c_[np.ones(count), control].T
    targets = np.zeros((count + 3, 2))
    targets[:count] = control + np.asarray(theta, np.float64).reshape(count, 2)
    coef = np.linalg.solve(system, targets)
    pts = grid_points(out_h, out_w)
    return np.c_[u(pts, control), np.ones(len(pts)), pts] @ coef


def ctrl_c_at_batch(dataset, n):
    """Make `dataset.next_batch` raise a real Ctrl-C (SIGINT) as its n-th batch is drawn."""
    draw, drawn = dataset.next_batch, []

    def next_batch(batch_size):
        drawn.append(batch_size)
        if len(drawn) == n:
            signal.raise_signal(signal.SIGINT)
        return draw(batch_size)

    dataset.next_batch = next_batch


def small_datasets(data_dir, seed=0):
    """load_mnist of a generated folder: its sets are smaller than the default
    validation split."""
    from mnist_stn import data
    return data.load_mnist(str(data_dir), validation_size=50, seed=seed)


def checkpoint_step(ckpt_dir):
    """The step of the checkpoint a folder's index names as the latest, or None."""
    from mnist_stn.compat import tf
    latest = tf.train.latest_checkpoint(str(ckpt_dir))
    return None if latest is None else int(latest.rsplit("-", 1)[1])


def refused(main, flags, says, capsys):
    """``main(flags)`` stops with argparse's status 2 and a line that says ``says``."""
    with pytest.raises(SystemExit) as stop:
        main(flags)
    assert stop.value.code == 2
    assert says in capsys.readouterr().err
