"""Captcha letters A-Z for the second tutorial: generate them once, keep them as PNGs, batch them.

The tutorial drew 10,000 single letters with the ``captcha`` package, 60x60 RGB, and
split them 8,000 / 1,000 / 1,000 into train, validation and test. Here the drawing is
seeded, so the same seed gives the same set on every machine with the same ``captcha``
and Pillow, and the set is cached as ``<index>_<LETTER>.png`` files (the tutorial's
names) plus a ``manifest.json`` written last: a directory without one is incomplete.
Batches come from the MNIST ``DataSet``, so pixels are float32 in [0, 1], flattened.
"""
import contextlib
import importlib.metadata
import json
import operator
import os
import random
import re
import string
import time

import numpy as np
from PIL import Image

from mnist_stn import data, images as image_files
from mnist_stn.compat import tf

SIZE = 60                             # the letters are drawn on 60x60 ...
CHANNELS = 3                          # ... in RGB
LETTERS = string.ascii_uppercase      # class k is the letter LETTERS[k]
NUM_LETTERS = len(LETTERS)

COUNT = 10000                 # the tutorial's set ...
SPLIT = (8000, 1000, 1000)    # ... cut in index order into train, validation, test
GENERATION_SEED = 0
MANIFEST = "manifest.json"
WRITING = "incomplete"                # present only while write_set fills a directory
PROGRESS_EVERY = 2000                 # images between progress lines (10,000 take ~6 s)

_NAME = re.compile(r"(0|[1-9][0-9]*)_([A-Z])\.png")
_SHAPE = (SIZE, SIZE, CHANNELS)


class _SeededSecrets(random.Random):
    """The three functions ``captcha.image`` takes from ``secrets``, drawn from a seed.

    ``choice`` is Random's own; ``randbelow`` and ``randbits`` are the secrets module's
    names for ``randrange`` and ``getrandbits``.
    """

    def randbelow(self, n):
        return self.randrange(n)

    def randbits(self, k):
        return self.getrandbits(k)


@contextlib.contextmanager
def _seeded(module, rng):
    """Let ``module`` use ``rng`` as its ``secrets`` until the block ends, even on error."""
    # captcha 0.7.1 draws all its randomness from the secrets module, which cannot be
    # seeded; a seeded stand-in under the same name makes a generated set reproducible.
    if not hasattr(module, "secrets"):
        raise data.DataError(f"captcha {_version('captcha')} does not draw its randomness "
                             f"from secrets, so it cannot be seeded here; "
                             f"pip install captcha==0.7.1.")
    saved = module.secrets
    module.secrets = rng
    try:
        yield
    finally:
        module.secrets = saved


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def generate(count, seed, progress=None, strokes=False):
    """``count`` letters drawn from ``seed``: uint8 (count, 60, 60, 3) and int64 labels.

    The letter of each image (uniform over A-Z) and every stroke of it come from one
    seeded generator, so the same seed gives the same arrays. ``progress(done)`` is
    called every PROGRESS_EVERY images, for callers that report on long runs.
    With ``strokes``, also (count, 60, 60) bool: the letter's own strokes. ``captcha``
    draws the letter first, then noise dots and a curve in the letter's colour over
    it, so no later look at the image can tell them apart; this catches the letter as
    drawn, before the noise (the images come out the same).
    """
    try:
        import captcha.image
    except ImportError as e:
        raise data.DataError("the captcha letters are generated with the captcha package; "
                             "pip install captcha==0.7.1.") from e
    drawer = captcha.image.ImageCaptcha(width=SIZE, height=SIZE)
    rng = _SeededSecrets(seed)
    images = np.empty((count,) + _SHAPE, np.uint8)
    labels = np.empty(count, np.int64)
    letter = np.zeros((count, SIZE, SIZE), bool) if strokes else None
    draw_letter = drawer.create_captcha_image

    def create_captcha_image(chars, color, background):    # of image i, the loop's below
        image = draw_letter(chars, color, background)
        # a stroke pixel: at least halfway from the background to the letter's colour
        # (its antialiased edges count by that rule)
        away = np.abs(np.asarray(image.convert("RGB"), np.int16) - background).sum(axis=2)
        letter[i] = away >= 0.5 * np.abs(np.subtract(color[:3], background)).sum()
        return image

    if strokes:
        drawer.create_captcha_image = create_captcha_image
    with _seeded(captcha.image, rng):
        for i in range(count):
            labels[i] = rng.randrange(NUM_LETTERS)
            images[i] = np.asarray(drawer.generate_image(LETTERS[labels[i]]))
            if progress and (i + 1) % PROGRESS_EVERY == 0:
                progress(i + 1)
    return (images, labels, letter) if strokes else (images, labels)


def file_name(index, label):
    """The tutorial's name for image ``index`` of letter ``label``: 12, 2 -> '12_C.png'."""
    if not 0 <= label < NUM_LETTERS:
        raise ValueError(f"label must be in 0..{NUM_LETTERS - 1}, got {label}")
    return f"{int(index)}_{LETTERS[label]}.png"


def parse_name(name):
    """(index, label) of a name like '12_C.png'; DataError for any other name."""
    match = _NAME.fullmatch(name)
    if not match:
        raise data.DataError(f"{name} is not named like a captcha letter (<index>_<LETTER>.png, "
                             f"e.g. 12_C.png); remove it from the directory.")
    return int(match.group(1)), LETTERS.index(match.group(2))


def _letter_files(directory):
    """Names in ``directory`` ending in .png (any case); none if it does not exist."""
    if not os.path.isdir(directory):
        return []
    return [name for name in os.listdir(directory) if name.lower().endswith(".png")]


def write_set(directory, images, labels, seed):
    """Write each image as ``<index>_<LETTER>.png`` into ``directory``, then the manifest.

    A letter set already there is replaced. The manifest is removed first and written
    last, so a directory left by an interruption has none and is regenerated. PNG is
    lossless: ``read_set`` gives back exactly these arrays.
    """
    images, labels = np.asarray(images, np.uint8), np.asarray(labels)
    if images.shape[1:] != _SHAPE or len(images) != len(labels):
        raise ValueError(f"need N images of shape {_SHAPE} and N labels, got "
                         f"{images.shape} and {labels.shape}")
    seed = operator.index(seed)
    try:
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, WRITING), "w"):
            pass
        if os.path.exists(os.path.join(directory, MANIFEST)):
            os.remove(os.path.join(directory, MANIFEST))
        for name in _letter_files(directory):
            if _NAME.fullmatch(name):
                os.remove(os.path.join(directory, name))
        for i, (image, label) in enumerate(zip(images, labels)):
            Image.fromarray(image).save(os.path.join(directory, file_name(i, label)), "PNG")
        manifest = {"count": len(images), "seed": seed, "captcha": _version("captcha"),
                    "pillow": _version("pillow"), "image_size": list(_SHAPE)}
        path = os.path.join(directory, MANIFEST)
        with open(path + ".tmp", "w") as f:
            json.dump(manifest, f, indent=2)
        os.replace(path + ".tmp", path)
        os.remove(os.path.join(directory, WRITING))
    except OSError as e:
        raise data.DataError(f"cannot write the captcha letters into {directory} ({e}); "
                             f"name a writable directory with --data-dir.") from e


def _read_manifest(directory):
    """The manifest of ``directory`` as a dict, or None if there is none."""
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            manifest = json.load(f)
        if not isinstance(manifest, dict) or not {"count", "seed"} <= manifest.keys():
            raise ValueError("it lacks count or seed")
        manifest["count"] = operator.index(manifest["count"])
        return manifest
    except (OSError, ValueError, TypeError) as e:
        raise data.DataError(f"{path} is not a readable captcha manifest ({e}); "
                             f"delete {directory} to regenerate the letters.") from e


def read_set(directory):
    """The images and labels that ``write_set`` wrote into ``directory``, in index order.

    Checks what training would otherwise trip over later: the manifest is there, the
    files are exactly indices 0..count-1, and each is a readable 60x60 RGB PNG.
    """
    manifest = _read_manifest(directory)
    if manifest is None:
        raise data.DataError(f"{directory} has no {MANIFEST}, so it is not a complete "
                             f"captcha letter set; delete it to regenerate the letters.")
    count = manifest["count"]
    redo = f"delete {directory} to regenerate the letters"
    names = [None] * count
    labels = np.empty(count, np.int64)
    for name in sorted(_letter_files(directory)):
        index, label = parse_name(name)
        path = os.path.join(directory, name)
        if index >= count:
            raise data.DataError(f"{path} is beyond the {count} letters (0..{count - 1}) "
                                 f"of {MANIFEST}; {redo}.")
        if names[index] is not None:
            raise data.DataError(f"{path} and {names[index]} are both letter {index}; {redo}.")
        names[index], labels[index] = name, label
    if None in names:
        raise data.DataError(f"{directory} lacks letter {names.index(None)} (of {count} in "
                             f"{MANIFEST}); {redo}.")
    images = np.empty((count,) + _SHAPE, np.uint8)
    for index, name in enumerate(names):
        path = os.path.join(directory, name)
        try:
            with Image.open(path) as image:
                image.load()
                if image.mode != "RGB" or image.size != (SIZE, SIZE):
                    raise data.DataError(
                        f"{path} is a {image.size[0]}x{image.size[1]} {image.mode} image, not "
                        f"{SIZE}x{SIZE} RGB; {redo}.")
                images[index] = np.asarray(image)
        except (OSError, SyntaxError, ValueError) as e:  # Pillow's ways of saying "corrupt"
            raise data.DataError(f"cannot read {path} ({e}); {redo}.") from e
    return images, labels


def default_dir(seed=GENERATION_SEED):
    """Where the letters of ``seed`` are kept when no directory is named."""
    return os.path.join(data.default_cache_dir(), f"letters-{seed}")


def load_letters(data_dir=None, seed=GENERATION_SEED, count=COUNT, split=SPLIT,
                 shuffle_seed=None, progress=print):
    """Train, validation and test DataSets of captcha letters, generated on first use.

    ``data_dir`` (else ``default_dir(seed)``) is read if its manifest has this count and
    seed; otherwise the letters are generated and written there, reporting through
    ``progress``. A named directory holding other PNG files is left alone (DataError).
    The split follows the index order; ``shuffle_seed`` fixes the order of batches.
    """
    if len(split) != 3 or min(split) < 0 or sum(split) != count:
        raise ValueError(f"split must be three sizes that add up to count={count}, got {split}")
    seed = operator.index(seed)  # a set is named and cached by its seed: no None, no 1.5
    directory = os.path.expanduser(data_dir) if data_dir else default_dir(seed)
    manifest = _read_manifest(directory)
    if manifest is not None and manifest["count"] == count and manifest["seed"] == seed:
        images, labels = read_set(directory)
    else:
        ours = (manifest is not None or not data_dir
                or os.path.exists(os.path.join(directory, WRITING)))
        if not ours and os.path.isdir(directory) and os.listdir(directory):
            raise data.DataError(
                f"{directory} holds files but no {MANIFEST}, so it is not a captcha letter "
                f"set written here; name an empty or new directory for the letters.")
        progress(f"Generating {count} captcha letters into {directory} (seed {seed})...")
        start = time.perf_counter()
        images, labels = generate(count, seed, progress=lambda done: progress(
            f"  {done}/{count} letters ({time.perf_counter() - start:.0f} s)"))
        write_set(directory, images, labels, seed)
        progress(f"Generated and saved {count} captcha letters in "
                 f"{time.perf_counter() - start:.1f} s")
    train_end = split[0]
    validation_end = split[0] + split[1]
    return data.Datasets(
        train=data.DataSet(images[:train_end], labels[:train_end], seed=shuffle_seed),
        validation=data.DataSet(images[train_end:validation_end],
                                labels[train_end:validation_end], seed=shuffle_seed),
        test=data.DataSet(images[validation_end:], labels[validation_end:], seed=shuffle_seed))


def prepare(path):
    """Load any colour image and resize it to (60, 60, 3) float32 in [0, 1], as the
    letters are: area averaging, as the tutorial's ``cv2.resize(..., INTER_AREA)``."""
    image = image_files.load_color(path)
    with tf.Graph().as_default(), tf.Session() as sess:
        resized = sess.run(tf.image.resize(image, [SIZE, SIZE], method="area"))
    return np.clip(resized, 0.0, 1.0).astype(np.float32)
