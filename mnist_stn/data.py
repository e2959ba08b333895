"""MNIST for the tutorial: find or download the four IDX files, read them, batch them.

This replaces TF1's removed ``tensorflow.examples.tutorials.mnist.input_data`` and
keeps its conventions: the first training images are held out as the validation set,
pixels are float32 in [0, 1] flattened to one row per image, and ``next_batch``
reshuffles every epoch. It knows nothing of the model.

Where the files come from, first match wins: an explicit directory (``--data-dir``),
the ``MNIST_STN_DATA`` environment variable, else a cache directory that missing
files are downloaded into. Every problem raises DataError with a message for users.
"""
import gzip
import hashlib
import os
import struct
import zlib
from collections import namedtuple

import numpy as np

from mnist_stn.compat import tf
from mnist_stn.constants import IMAGE_SIZE, NUM_CLASSES, PIXEL_SCALE, VALIDATION_SIZE

DATA_DIR_ENV = "MNIST_STN_DATA"
DEFAULT_BASE_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"

# Either hash proves a file intact: mirrors serve the same .gz bytes (gz_md5), while a
# file re-compressed elsewhere still holds the original IDX payload (payload_sha256).
FILES = {
    "train-images-idx3-ubyte": {
        "payload_sha256": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "gz_md5": "f68b3c2dcbeaaa9fbdd348bbdeb94873"},
    "train-labels-idx1-ubyte": {
        "payload_sha256": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "gz_md5": "d53e105ee54ea40749a09fcbcd1e9432"},
    "t10k-images-idx3-ubyte": {
        "payload_sha256": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "gz_md5": "9fb629c4189551a2d022fa330f9573f3"},
    "t10k-labels-idx1-ubyte": {
        "payload_sha256": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        "gz_md5": "ec29112dd5afa0611ce80d1b7f02629c"},
}

IMAGES_MAGIC = 2051  # IDX: unsigned bytes (0x08), 3 dimensions
LABELS_MAGIC = 2049  # IDX: unsigned bytes (0x08), 1 dimension
_GZIP_MAGIC = b"\x1f\x8b"
_HOW_TO_GET = f"download the four files by hand and pass --data-dir DIR or set {DATA_DIR_ENV}=DIR"


class DataError(Exception):
    """MNIST is missing, unreachable or damaged; the message says which file and what to do."""


def default_cache_dir():
    """Where downloads go when no directory is named: the user's XDG cache."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mnist_stn")


def _find(directory, name):
    """Path of ``name`` in ``directory``, uncompressed or .gz, or None."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def locate(data_dir=None, cache_dir=None, base_url=DEFAULT_BASE_URL, hashes=FILES):
    """Return the directory holding the four MNIST files, downloading only into the cache.

    A directory the user named (``data_dir``, else $MNIST_STN_DATA) must already hold
    them: writing into it uninvited would be rude. The cache is checked against
    ``hashes`` on every call so that an interrupted or damaged download is replaced.
    """
    if data_dir:
        source, named = "--data-dir", data_dir
    else:
        source, named = DATA_DIR_ENV, os.environ.get(DATA_DIR_ENV)
    if named:
        named = os.path.expanduser(named)
        if not os.path.isdir(named):
            raise DataError(f"{named} (from {source}) is not a directory; "
                            f"name the directory that holds the four MNIST files.")
        missing = [name for name in FILES if _find(named, name) is None]
        if missing:
            raise DataError(
                f"{named} (from {source}) lacks {', '.join(missing)} (.gz or uncompressed); "
                f"put the four MNIST files there or name another directory.")
        return named

    cache_dir = os.path.expanduser(cache_dir or default_cache_dir())
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the MNIST cache {cache_dir} ({e}); {_HOW_TO_GET}.") from e
    # Keras quietly downloads to /tmp/.keras instead when cache_dir is not writable.
    if not os.access(cache_dir, os.W_OK):
        raise DataError(f"the MNIST cache {cache_dir} is not writable; {_HOW_TO_GET}.")
    for name in FILES:
        _fetch(name, cache_dir, base_url, hashes[name])
    return cache_dir


def _fetch(name, cache_dir, base_url, expected):
    """Make ``cache_dir/name.gz`` an intact copy, downloading it if absent or damaged."""
    path = os.path.join(cache_dir, name + ".gz")
    damaged = False
    if os.path.exists(path):
        if _intact(path, expected):
            return
        os.remove(path)  # left by an interrupted download, or damaged since
        damaged = True
        print(f"The cached {path} was damaged (checksum mismatch) and was deleted; "
              "downloading it again.")
    url = base_url + name + ".gz"
    try:
        tf.keras.utils.get_file(name + ".gz", origin=url, cache_dir=cache_dir, cache_subdir="")
    except Exception as e:
        # Keras re-raises URL errors as a bare Exception; the original holds the reason.
        reason = getattr(e.__context__, "reason", e)
        found = (f"the cached {path} was damaged and was deleted" if damaged
                 else f"no MNIST file {name} found in {cache_dir}")
        raise DataError(f"{found}; could not download it from {url} ({reason}); "
                        f"{_HOW_TO_GET}.") from e
    if not _intact(path, expected):
        os.remove(path)
        raise DataError(f"the download of {url} was corrupt (checksum mismatch) and was deleted; "
                        f"try again later, or {_HOW_TO_GET}.")


def _intact(path, expected):
    """True if the .gz bytes are the mirrors' (md5) or they unpack to the original (sha256)."""
    with open(path, "rb") as f:
        raw = f.read()
    if hashlib.md5(raw, usedforsecurity=False).hexdigest() == expected["gz_md5"]:
        return True
    try:
        payload = _unpack(path, raw)
    except DataError:
        return False
    return hashlib.sha256(payload).hexdigest() == expected["payload_sha256"]


def _unpack(path, raw):
    """The IDX bytes of a file's contents, gunzipped if they start with the gzip magic."""
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} is not a readable gzip file ({e}); "
                        f"replace it with an intact copy of the MNIST file.") from e


def _read_idx(path, magic, kind):
    """Read an IDX file of unsigned bytes, checking the header against the payload size."""
    try:
        with open(path, "rb") as f:
            raw = _unpack(path, f.read())
    except OSError as e:
        raise DataError(f"cannot read {path} ({e}); check the path and its permissions.") from e

    def bad(problem):
        return DataError(f"{path} {problem}; "
                         f"replace it with an intact copy of the MNIST {kind} file.")

    ndim = magic & 0xFF
    header = 4 * (1 + ndim)
    found = struct.unpack(">I", raw[:4])[0] if len(raw) >= 4 else None
    if found is not None and found != magic:
        raise bad(f"has magic number {found}, not {magic}, so it is not an IDX {kind} file")
    if len(raw) < header:
        raise bad(f"is only {len(raw)} bytes long, too short for an IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    size, payload = int(np.prod(shape)), len(raw) - header
    if payload < size:
        raise bad(f"is truncated: its header promises {size} bytes of {kind} "
                  f"but it holds {payload}")
    if payload > size:
        raise bad(f"has {payload - size} unexpected bytes after its {size} bytes of {kind}")
    # Copied so callers get an ordinary writable array, not a view of immutable bytes.
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape).copy()


def read_images(path):
    """MNIST images from an IDX file (gzipped or not) as uint8 (N, 28, 28)."""
    images = _read_idx(path, IMAGES_MAGIC, "images")
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{path} holds {images.shape[1]}x{images.shape[2]} images, not "
                        f"{IMAGE_SIZE}x{IMAGE_SIZE}; use the MNIST images file.")
    return images


def read_labels(path):
    """MNIST labels from an IDX file (gzipped or not) as uint8 (N,), each a digit."""
    labels = _read_idx(path, LABELS_MAGIC, "labels")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DataError(f"{path} holds the label {labels.max()}, but digits go up to "
                        f"{NUM_CLASSES - 1}; replace it with an intact copy of the MNIST "
                        f"labels file.")
    return labels


class DataSet:
    """Images and labels in memory, served in minibatches that reshuffle every epoch.

    ``images`` and ``labels`` keep the file order (evaluation and figures rely on it);
    only ``next_batch`` shuffles, with its own RandomState so a seed fixes the sequence
    of batches without touching numpy's global generator.
    """

    def __init__(self, images, labels, seed=None):
        images, labels = np.asarray(images), np.asarray(labels)
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        pixels = int(np.prod(images.shape[1:]))  # any image size; reshape(0, -1) would fail
        self.images = images.reshape(len(images), pixels).astype(np.float32)
        self.images /= PIXEL_SCALE
        self.labels = labels.astype(np.int64)
        self._rng = np.random.RandomState(seed)
        self._order = self._rng.permutation(self.num_examples)
        self._index_in_epoch = 0

    @property
    def num_examples(self):
        return len(self.labels)

    def next_batch(self, batch_size):
        """The next ``batch_size`` (images, labels); each example comes once per epoch.

        A batch that crosses the end of an epoch is, as in TF1's input_data, the rest
        of this epoch followed by the start of the freshly shuffled next one.
        """
        if not 0 < batch_size <= self.num_examples:
            raise ValueError(f"batch_size must be in 1..{self.num_examples}, got {batch_size}")
        start = self._index_in_epoch
        if start + batch_size <= self.num_examples:
            self._index_in_epoch = start + batch_size
            picked = self._order[start:self._index_in_epoch]
        else:
            rest = self._order[start:]
            self._order = self._rng.permutation(self.num_examples)
            self._index_in_epoch = batch_size - len(rest)
            picked = np.concatenate([rest, self._order[:self._index_in_epoch]])
        return self.images[picked], self.labels[picked]


Datasets = namedtuple("Datasets", ["train", "validation", "test"])


def _read_pair(directory, prefix):
    """Images and labels of one split, checked to be the same number."""
    images_path = _find(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = _find(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_images(images_path), read_labels(labels_path)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                        f"{len(labels)} labels; replace them with a matching pair of MNIST files.")
    return images, labels, images_path


def load_mnist(data_dir=None, validation_size=VALIDATION_SIZE, seed=None, cache_dir=None,
               base_url=DEFAULT_BASE_URL):
    """Train, validation and test DataSets; validation is the first ``validation_size``
    training images, as in TF1's input_data, so results compare with the tutorial's."""
    directory = locate(data_dir, cache_dir, base_url)
    train_images, train_labels, train_path = _read_pair(directory, "train")
    test_images, test_labels, _ = _read_pair(directory, "t10k")
    if not 0 <= validation_size <= len(train_images):
        n = len(train_images)
        raise DataError(f"validation_size {validation_size} does not fit the {n} training "
                        f"images of {train_path}; use a size from 0 to {n}.")
    held_out = slice(None, validation_size)
    rest = slice(validation_size, None)
    return Datasets(
        train=DataSet(train_images[rest], train_labels[rest], seed=seed),
        validation=DataSet(train_images[held_out], train_labels[held_out], seed=seed),
        test=DataSet(test_images, test_labels, seed=seed))
