"""Turn a user's own digit photo or scan into an MNIST-style 28x28 input.

The network only ever saw MNIST: white ink on black, the digit scaled to fit a 20x20
box and moved so its centre of mass sits at the centre of the 28x28 field (LeCun's
description of how MNIST was made). A photo of a digit on paper is none of these, so
``to_mnist`` repeats those steps on it: invert, remove the paper, crop, fit to 20x20
with area averaging, then centre by mass.
"""
import io
import os
import sys
import warnings

import numpy as np
from PIL import Image, ImageOps

from mnist_stn.compat import tf
from mnist_stn.constants import IMAGE_SIZE, PIXEL_SCALE

DIGIT_BOX = 20          # NIST digits were fitted to a 20x20 box inside the 28x28 field
MIN_CONTRAST = 0.1      # strongest ink must stand this far above the paper, else blank
NOISE_FLOOR = 0.1       # of the ink's peak: fainter than this is paper grain / JPEG noise
INK_LEVEL = 0.5         # of the ink's peak: the bounding box is that of clear ink only
# Where the ink's centre of mass goes, as a pixel index: the field's centre (14, 14) in
# (row + 0.5, col + 0.5) terms. (The MNIST files themselves put it nearer index 14.0.)
# Measured on real MNIST: the centre of mass averages pixel index (14.00, 14.01), not 13.5.
CENTRE_INDEX = IMAGE_SIZE / 2
RGB_TO_GRAY = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, like TF
FORMATS = ("PNG", "JPEG", "MPO", "GIF", "BMP", "WEBP")     # MPO: a phone's JPEG
# A photo is shrunk to this longer side as it is read: far above the 20 px the digit
# ends at, far below what would fill the memory (a 10000x10000 photo is 1.2 GB as floats)
MAX_SIDE = 2048


class ImageError(Exception):
    """A file that cannot be turned into a digit: unreadable, not an image, or blank."""


def load_image(path):
    """Decode an image file into grayscale in [0, 1].

    Returns:
      (H, W) float32 array in [0, 1], 0 = black.
    Raises:
      ImageError: as ``load_color``.
    """
    image = load_color(path)
    return np.clip(image @ RGB_TO_GRAY, 0.0, 1.0).astype(np.float32)


def load_color(path, max_side=MAX_SIDE):
    """Decode a PNG, JPEG, GIF, BMP or WebP file into RGB in [0, 1], upright.

    Pillow decodes it: it turns a photo as its EXIF orientation says (a phone stores an
    upright photo turned, with a tag that says so), and shrinks a large picture while
    reading it, so its longer side is at most ``max_side`` (JPEG decodes at a reduced
    size directly). Transparent pixels are composited on a background that contrasts
    with the visible ink: white under dark ink, black under light ink, so a digit
    drawn on a transparent background is kept whatever its colour.

    Returns:
      (H, W, 3) float32 array in [0, 1], 0 = black; a gray file gives three equal channels.
    Raises:
      ImageError: the file is missing, a directory, or not an image Pillow can decode.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ImageError(
            f"Cannot read image file '{path}': {err.strerror or err}.") from None
    not_an_image = ImageError(f"'{path}' is not a PNG, JPEG, GIF, BMP or WebP image "
                              "that can be decoded.")
    try:
        with warnings.catch_warnings():
            # the size is checked below, and a large picture is shrunk while reading
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in FORMATS:
                    raise not_an_image
                image.draft("RGB", (max_side, max_side))   # JPEG: decode at 1/2..1/8
                image.seek(0)                              # a GIF's first frame
                image = ImageOps.exif_transpose(image)
                image.thumbnail((max_side, max_side), Image.Resampling.BOX)
                pixels = _to_float(image)
    except Image.DecompressionBombError as e:
        raise ImageError(f"'{path}' is too large to read ({e})") from None
    except (OSError, SyntaxError, ValueError):
        raise not_an_image from None
    except MemoryError:
        raise ImageError(f"'{path}' is too large to decode here.") from None
    if pixels.shape[-1] in (2, 4):                         # gray+alpha or RGBA
        color, alpha = pixels[..., :-1], pixels[..., -1:]
        if alpha.min() < 1.0:
            ink = (color.mean(-1, keepdims=True) * alpha).sum() / max(alpha.sum(), 1e-6)
            background = 0.0 if ink > 0.5 else 1.0         # contrasting with the ink
            pixels = color * alpha + background * (1.0 - alpha)
        else:
            pixels = color
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)              # (H, W, 1) -> (H, W, 3)
    return np.clip(pixels, 0.0, 1.0).astype(np.float32)


def _to_float(image):
    """A Pillow image -> (H, W, C) float32 in [0, 1], C in 1..4; alpha kept."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):       # 16-bit gray
        return (np.asarray(image, np.float32) / 65535.0)[..., None]
    if image.mode == "F":
        return np.asarray(image, np.float32)[..., None]
    transparent = "A" in image.getbands() or "transparency" in image.info
    gray = image.mode in ("1", "L", "LA") or (image.mode == "P" and _gray_palette(image))
    mode = ("LA" if transparent else "L") if gray else ("RGBA" if transparent else "RGB")
    pixels = np.asarray(image.convert(mode), np.float32) / 255.0
    return pixels if pixels.ndim == 3 else pixels[..., None]


def _gray_palette(image):
    palette = np.asarray(image.getpalette() or [0, 0, 0]).reshape(-1, 3)
    return bool((palette == palette[:, :1]).all())


def to_mnist(gray, source="the image"):
    """Make an MNIST-style digit out of a grayscale picture of one digit.

    Steps, following how MNIST itself was made:
      1. Invert dark-on-light pictures (border median above 0.5): MNIST is white on black.
      2. Subtract the background (border median) and rescale so the strongest ink is 1;
         fainter than NOISE_FLOOR of that is treated as paper (grain, JPEG noise).
      3. Crop to the bounding box of clear ink (at least INK_LEVEL): on a photo, uneven
         light and grain reach past the floor here and there and would otherwise
         stretch the box and shrink the digit. Resize it, keeping the aspect ratio, so its
         longer side is DIGIT_BOX (20) pixels: area averaging when shrinking (the
         anti-aliasing that gives MNIST its grey edges), bilinear when enlarging (area
         would make blocks). The result is rescaled to peak 1 again, since averaging a
         thin pen stroke leaves it much fainter than MNIST's strokes.
      4. Paste on a black 28x28 canvas, shifted by the nearest whole pixel so the ink's
         centre of mass lands where MNIST's do: pixel index (14, 14), the mean over the
         real test digits, to within 0.5 px per axis. A whole-pixel
         shift keeps the strokes as sharp as the resize left them; a sub-pixel shift
         would blur them. Ink shifted past the edge (very lopsided digits) is cut off,
         as LeCun's translation would.

    Args:
      gray: (H, W) array in [0, 1], e.g. from load_image.
      source: names the picture in error messages (prepare passes the file path).
    Returns:
      (28, 28) float32 array in [0, 1], white digit on black.
    Raises:
      ImageError: nothing stands out from the background (a blank picture).
    """
    gray = np.asarray(gray, np.float32)
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"to_mnist needs a non-empty (H, W) array, not {gray.shape}")
    if np.median(_border(gray)) > 0.5:                     # paper is light: ink is dark
        gray = 1.0 - gray
    ink = gray - np.median(_border(gray))                  # (H, W), background ~0
    peak = ink.max()
    if not peak >= MIN_CONTRAST:                           # also catches NaN
        raise ImageError(f"{source} is blank: no ink stands out from the background.")
    ink = np.clip((ink / peak - NOISE_FLOOR) / (1.0 - NOISE_FLOOR), 0.0, 1.0)

    rows, cols = np.nonzero(ink >= INK_LEVEL)              # clear ink only: see step 3
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]  # (h, w) bounding box
    height, width = ink.shape
    scale = DIGIT_BOX / max(height, width)
    size = [max(1, round(height * scale)), max(1, round(width * scale))]
    with tf.Graph().as_default(), tf.Session() as sess:
        # The v2 resize: v1's bilinear samples off the pixel centres (shifts content).
        resize = tf.compat.v2.image.resize
        method = "area" if scale < 1 else "bilinear"
        digit = sess.run(resize(ink[None, :, :, None], size, method=method))
    digit = digit[0, :, :, 0]                              # (h', w'), longer side 20
    digit = np.clip(digit / digit.max(), 0.0, 1.0)

    # Centre of mass in pixel-index coordinates; pixel i covers [i, i + 1].
    mass = digit.sum()
    com = np.array([(digit.sum(1) * np.arange(digit.shape[0])).sum(),
                    (digit.sum(0) * np.arange(digit.shape[1])).sum()]) / mass
    # round half up (np.round's half-to-even would move ties in opposite directions)
    top, left = np.floor(CENTRE_INDEX - com + 0.5).astype(int)
    # A margin of DIGIT_BOX on every side fits any shift; slicing it off crops the spill.
    canvas = np.zeros((IMAGE_SIZE + 2 * DIGIT_BOX,) * 2, np.float32)
    canvas[DIGIT_BOX + top:DIGIT_BOX + top + digit.shape[0],
           DIGIT_BOX + left:DIGIT_BOX + left + digit.shape[1]] = digit
    return canvas[DIGIT_BOX:-DIGIT_BOX, DIGIT_BOX:-DIGIT_BOX]   # (28, 28)


def prepare(path):
    """Load a digit photo or scan and make it an MNIST-style (28, 28) float32 input."""
    return to_mnist(load_image(path), source=f"'{path}'")


def read_each(paths, prepare):
    """``prepare(path)`` for every path that can be read; each one that cannot is said
    in one line on stderr. Returns (the prepared arrays stacked, or None; the paths
    read; the paths that failed)."""
    arrays, read, failed = [], [], []
    for path in paths:
        try:
            arrays.append(prepare(path))
            read.append(path)
        except ImageError as e:
            print(f"error: {e}", file=sys.stderr)
            failed.append(path)
    return (np.stack(arrays) if arrays else None), read, failed


def _border(image):
    """(H, W) -> the outer 1-pixel frame, flat: on a photo of one digit, mostly paper."""
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


def save_png(path, image):
    """Write a (H, W) or (H, W, 3) image in [0, 1] as an 8-bit PNG, pixel for pixel."""
    pixels = np.clip(np.round(np.asarray(image) * PIXEL_SCALE), 0, PIXEL_SCALE)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]                      # (H, W) -> (H, W, 1): gray PNG
    with tf.Graph().as_default(), tf.Session() as sess:
        png = sess.run(tf.io.encode_png(pixels.astype(np.uint8)))

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(png)
    write_whole(path, write)


def write_whole(path, write):
    """``write(tmp)`` a file beside ``path``, then put it in its place: a full disk or
    Ctrl-C leaves the old file or none, never a cut one. An OSError names ``path``."""
    tmp = f"{path}.tmp{os.path.splitext(path)[1]}"
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), path) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
