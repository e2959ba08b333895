"""images.py on drawings made here: inversion, 20-px fit, mass centring, formats, errors."""
import errno
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_stn import images
from mnist_stn.compat import tf
from mnist_stn.constants import IMAGE_SIZE, PIXEL_SCALE
from mnist_stn.images import MAX_SIDE, ImageError, load_image, prepare, to_mnist

ROOT = Path(__file__).resolve().parents[1]

HEIGHT, WIDTH = 200, 120             # the "photo": white paper, portrait
CENTRE = IMAGE_SIZE / 2              # 14: where real MNIST digits have their centre of mass
WHITE = 255


def paper(height=HEIGHT, width=WIDTH):
    """(H, W) uint8 white canvas."""
    return np.full((height, width), WHITE, np.uint8)


def bar():
    """A black 80x40 bar, off-centre: 2:1, multiples of 4 so the 1/4 resize is exact."""
    img = paper()
    img[20:100, 64:104] = 0
    return img


def ell():
    """A thick black L, off-centre: its centre of mass is far from its bbox centre."""
    img = paper()
    img[40:160, 10:34] = 0           # upright, 120 x 24
    img[136:160, 10:90] = 0          # foot, 24 x 80
    return img


def bar_expected():
    """What MNIST-making does to bar(), worked out by hand.

    The 80x40 box scales by exactly 1/4 to a uniform 20x10 block of 1s; its centre of
    mass is at index (9.5, 4.5), so the shift is (14 - 9.5, 14 - 4.5) = (4.5, 9.5),
    rounded half up to (5, 10).
    """
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    out[5:25, 10:20] = 1.0
    return out


def save(path, pixels, quality=95):
    """Write uint8 (H, W) or (H, W, C) pixels as PNG/JPEG with TF, GIF/BMP with Pillow."""
    pixels = np.asarray(pixels, np.uint8)
    suffix = path.suffix.lower()
    if suffix in (".gif", ".bmp"):
        Image.fromarray(pixels).save(path)
        return path
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    with tf.Graph().as_default(), tf.Session() as sess:
        encode = (tf.io.encode_png(pixels) if suffix == ".png"
                  else tf.io.encode_jpeg(pixels, quality=quality))
        path.write_bytes(sess.run(encode))
    return path


def centre_of_mass(img):
    """(row, col) centre of mass in pixel-index coordinates."""
    rows, cols = np.indices(img.shape)
    return np.array([(rows * img).sum(), (cols * img).sum()]) / img.sum()


def ink_box(img, threshold=0.1):
    """(height, width) of the bounding box of pixels brighter than threshold."""
    rows, cols = np.nonzero(img > threshold)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def check_mnist_like(out):
    assert out.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.max() == pytest.approx(1.0)


def test_load_image_png_is_exact_gray(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (30, 17), np.uint8)
    gray = load_image(save(tmp_path / "noise.png", pixels))
    assert gray.dtype == np.float32 and gray.shape == (30, 17)
    np.testing.assert_allclose(gray, pixels / PIXEL_SCALE, atol=1e-6)


def test_load_image_rgb_uses_luminance(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (9, 11, 3), np.uint8)
    gray = load_image(save(tmp_path / "colour.png", pixels))
    expected = pixels @ np.array([0.299, 0.587, 0.114]) / PIXEL_SCALE
    np.testing.assert_allclose(gray, expected, atol=1e-5)


def test_dark_on_light_png_matches_hand_worked_result(tmp_path):
    out = prepare(save(tmp_path / "bar.png", bar()))
    check_mnist_like(out)
    np.testing.assert_allclose(out, bar_expected(), atol=1e-6)


def test_dark_on_light_is_inverted(tmp_path):
    out = prepare(save(tmp_path / "ell.png", ell()))
    check_mnist_like(out)
    frame = np.concatenate([out[0], out[-1], out[:, 0], out[:, -1]])
    assert frame.max() == 0.0                     # black border, as MNIST
    # Area averaging keeps total ink: the L's 4224 px shrunk by 20/120 in each direction.
    assert out.sum() == pytest.approx(4224 * (20 / 120) ** 2, rel=0.05)


def test_light_on_dark_is_not_inverted(tmp_path):
    out = prepare(save(tmp_path / "bar_negative.png", WHITE - bar()))
    check_mnist_like(out)
    np.testing.assert_allclose(out, bar_expected(), atol=1e-6)


def test_transparent_background_is_composited_on_white(tmp_path):
    # Black opaque ink; the background is transparent *black*, so ignoring alpha
    # would give an all-black (blank) picture.
    rgba = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    rgba[..., 3] = np.where(bar() == 0, WHITE, 0)
    out = prepare(save(tmp_path / "bar_alpha.png", rgba))
    check_mnist_like(out)
    np.testing.assert_allclose(out, bar_expected(), atol=1e-6)


def test_coloured_ink_counts_as_ink(tmp_path):
    rgb = np.stack([bar()] * 3, axis=-1)
    rgb[bar() == 0] = [20, 40, 200]               # a blue pen
    out = prepare(save(tmp_path / "bar_blue.png", rgb))
    np.testing.assert_allclose(out, bar_expected(), atol=1e-6)


def test_centre_of_mass_not_bbox_centre(tmp_path):
    out = prepare(save(tmp_path / "ell.png", ell()))
    com = centre_of_mass(out)
    assert np.all(np.abs(com - CENTRE) <= 0.5), com
    # The L's mass sits ~2.5 px low and left of its box centre, so the box must end up
    # high and right; centring the box instead of the mass would fail here.
    rows, cols = np.nonzero(out)
    box_row, box_col = (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
    assert box_row < CENTRE - 1.5 and box_col > CENTRE + 1.5, (box_row, box_col)


def test_longer_side_is_20_and_aspect_kept(tmp_path):
    out = prepare(save(tmp_path / "ell.png", ell()))
    height, width = ink_box(out)
    assert abs(max(height, width) - 20) <= 1
    assert height / width == pytest.approx(120 / 80, abs=0.1)   # the L is 120 x 80


def test_small_digit_is_enlarged(tmp_path):
    img = paper(60, 60)
    img[10:18, 40:44] = 0                         # 8 x 4: must grow 2.5 times
    out = prepare(save(tmp_path / "tiny.png", img))
    check_mnist_like(out)
    np.testing.assert_allclose(out, bar_expected(), atol=1e-6)


def test_matches_numpy_reference_on_scattered_ink():
    # Scattered 1-px ink inside a solid frame (which fixes the box at 80 x 40): only true
    # area averaging gives the 4x4 block means; plain bilinear would skip pixels.
    rng = np.random.default_rng(3)
    patch = (rng.random((80, 40)) < 0.3).astype(np.float32)
    patch[[0, -1], :] = 1.0
    patch[:, [0, -1]] = 1.0
    img = np.zeros((HEIGHT, WIDTH), np.float32)   # light on dark: used as it is
    img[20:100, 64:104] = patch
    small = patch.reshape(20, 4, 10, 4).mean(axis=(1, 3))
    small /= small.max()
    top, left = np.floor(CENTRE - centre_of_mass(small) + 0.5).astype(int)
    expected = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    expected[top:top + 20, left:left + 10] = small
    np.testing.assert_allclose(to_mnist(img), expected, atol=1e-5)


def test_noisy_unevenly_lit_photo():
    # Grey pencil on grey paper, darker to the right, with sensor noise: the haze must
    # not count as ink, or the box would span the page and the digit would shrink.
    rng = np.random.default_rng(2)
    gray = ell() / PIXEL_SCALE * 0.6 + 0.3 - np.linspace(0, 0.12, WIDTH)
    gray = np.clip(gray + rng.normal(0, 0.02, gray.shape), 0, 1)
    out = to_mnist(gray)
    check_mnist_like(out)
    height, width = ink_box(out, threshold=0.5)
    assert (height, width) == (20, 13)
    assert np.abs(centre_of_mass(out) - CENTRE).max() <= 0.5
    clean = to_mnist(ell() / PIXEL_SCALE)
    assert out[clean == 0].max() < 0.02           # the paper around the digit stays black
    assert np.abs(out - clean).max() < 0.25


def test_enlarging_keeps_symmetry():
    # Resizing on pixel centres keeps a symmetric ring symmetric; TF1's legacy bilinear
    # (corner-anchored) would drift it up and left.
    img = np.zeros((40, 40), np.float32)
    img[15:21, 15:21] = 1.0
    img[17:19, 17:19] = 0.0                       # 6 x 6 ring, grown to 20 x 20
    out = to_mnist(img)
    assert ink_box(out) == (20, 20)
    np.testing.assert_allclose(out, out[::-1, ::-1], atol=1e-6)
    np.testing.assert_allclose(out, out.T, atol=1e-6)
    assert out[13:15, 13:15].max() < 0.5          # the hole survives


def test_jpeg_matches_png(tmp_path):
    from_png = prepare(save(tmp_path / "ell.png", ell()))
    from_jpeg = prepare(save(tmp_path / "ell.jpg", ell()))
    check_mnist_like(from_jpeg)
    assert np.abs(from_png - from_jpeg).max() < 0.1
    assert np.abs(centre_of_mass(from_jpeg) - CENTRE).max() <= 0.5


def test_bmp_with_unused_alpha_byte_is_opaque(tmp_path):
    # 32-bit BI_RGB BMPs usually leave the 4th byte 0; TF hands it over as alpha.
    height, width = 3, 4
    bgra = np.full((height, width, 4), WHITE, np.uint8)
    bgra[..., 3] = 0
    bgra[1, 1, :3] = 0                            # one black pixel
    pixels = bgra[::-1].tobytes()                 # BMP rows run bottom-up
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 32, 0, len(pixels),
                       2835, 2835, 0, 0)    # BITMAPINFOHEADER: 32 bpp, uncompressed
    path = tmp_path / "alpha0.bmp"
    path.write_bytes(header + info + pixels)
    expected = np.ones((height, width), np.float32)
    expected[1, 1] = 0.0
    np.testing.assert_array_equal(load_image(path), expected)


@pytest.mark.parametrize("suffix", [".gif", ".bmp"])
def test_gif_and_bmp_load(tmp_path, suffix):
    out = prepare(save(tmp_path / f"bar{suffix}", bar()))
    np.testing.assert_allclose(out, bar_expected(), atol=1e-6)


def test_to_mnist_accepts_plain_arrays():
    out = to_mnist(bar() / PIXEL_SCALE)
    np.testing.assert_allclose(out, bar_expected(), atol=1e-6)


def test_missing_file_names_it(tmp_path):
    path = tmp_path / "no_such_digit.png"
    with pytest.raises(ImageError, match="no_such_digit.png"):
        prepare(path)


def test_directory_names_it(tmp_path):
    with pytest.raises(ImageError) as err:
        load_image(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_text_file_named_png_names_it(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    with pytest.raises(ImageError) as err:
        prepare(path)
    assert str(path) in str(err.value)


def test_blank_image_names_it(tmp_path):
    path = save(tmp_path / "blank.png", paper())
    with pytest.raises(ImageError) as err:
        prepare(path)
    assert str(path) in str(err.value) and "blank" in str(err.value)


def test_blank_jpeg_is_blank_despite_noise(tmp_path):
    img = paper()
    img[::7, ::5] = 250                           # faint grain JPEG will smear
    path = save(tmp_path / "grain.jpg", img, quality=70)
    with pytest.raises(ImageError, match="blank"):
        prepare(path)


# Each EXIF orientation says how to turn the stored pixels to show the photo upright;
# here: the stored pixels of an upright picture, as a camera held that way writes them.
STORED = {3: lambda up: np.rot90(up, 2), 6: lambda up: np.rot90(up, 1),
          8: lambda up: np.rot90(up, -1)}


def save_with_orientation(path, pixels, orientation, **options):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(pixels)).save(path, exif=exif, **options)
    return path


@pytest.mark.parametrize("orientation", sorted(STORED))
def test_a_photo_is_read_upright_as_its_exif_orientation_says(tmp_path, orientation):
    upright = load_image(save(tmp_path / "upright.png", ell()))
    stored = save_with_orientation(tmp_path / "turned.png", STORED[orientation](ell()),
                                   orientation)
    np.testing.assert_array_equal(load_image(stored), upright)


def test_a_phone_jpeg_stored_turned_gives_the_upright_digit(tmp_path):
    upright = prepare(save(tmp_path / "upright.jpg", ell(), quality=95))
    turned = prepare(save_with_orientation(tmp_path / "phone.jpg", STORED[6](ell()), 6,
                                           quality=95))
    assert np.abs(turned - upright).max() < 0.1
    # read as stored it would lie on its side: far from the upright digit
    assert np.abs(to_mnist(np.rot90(upright)) - upright).max() > 0.5


def test_webp_loads(tmp_path):
    path = tmp_path / "bar.webp"
    Image.fromarray(bar()).save(path, lossless=True)
    np.testing.assert_allclose(prepare(path), bar_expected(), atol=1e-6)


def test_a_white_digit_on_a_transparent_background_is_a_digit(tmp_path):
    # drawing apps export this: white strokes, the rest transparent (and black beneath)
    rgba = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    rgba[20:100, 64:104] = WHITE                  # the bar, opaque white
    out = prepare(save(tmp_path / "white_on_clear.png", rgba))
    np.testing.assert_allclose(out, bar_expected(), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_huge_picture_is_shrunk_while_read(tmp_path, suffix):
    # 10000x10000: 1.2 GB as float RGB; read whole it peaked near 5 GB
    side = 10000
    image = Image.new("RGB" if suffix == ".jpg" else "L", (side, side), "white")
    image.paste("black", (4000, 2000, 6000, 8000))            # a bar, 2000 x 6000
    path = tmp_path / f"huge{suffix}"
    image.save(path, **({"quality": 90} if suffix == ".jpg" else {"compress_level": 1}))
    del image
    code = ("import resource, sys\n"
            "from mnist_stn import images\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "gray = images.load_image(sys.argv[1])\n"
            "digit = images.prepare(sys.argv[1])\n"
            "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
            "print(gray.shape[0], gray.shape[1], grown // 1024, round(float(digit.sum())))\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, cwd=ROOT, check=True).stdout.split()
    height, width, grown_mb, ink = map(int, out)
    assert max(height, width) <= MAX_SIDE
    assert grown_mb < 600, f"reading it grew the process by {grown_mb} MB"
    assert ink > 100                                     # the bar is there, 20 px long


def test_a_picture_too_large_to_read_says_so(tmp_path):
    # a PNG header of 20000 x 20000 (400 million pixels, beyond Pillow's limit): the size
    # is refused as too large, not as "not a PNG"
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)     # 8-bit gray
    path = tmp_path / "wall.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    with pytest.raises(images.ImageError, match="too large to read") as error:
        images.prepare(str(path))
    assert "not a PNG" not in str(error.value)


def test_a_file_cut_short_by_a_full_disk_never_takes_the_name(tmp_path):
    path = tmp_path / "grid.png"
    path.write_bytes(b"the old figure")

    def full_disk(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half a fig")
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError) as error:
        images.write_whole(str(path), full_disk)
    assert error.value.filename == str(path) and error.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"the old figure" and os.listdir(tmp_path) == ["grid.png"]
