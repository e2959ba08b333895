"""The generated captcha letters: reproducible, captcha-like, cached as PNGs, checked on read."""
import json
import os
import re
import secrets

import captcha.image
import numpy as np
import pytest
from PIL import Image

from letters import data as letters_data
from letters.data import LETTERS
from mnist_stn import data

NAME = re.compile(r"^(\d+)_([A-Z])\.png$")


def quiet(*args):
    pass


@pytest.fixture(scope="module")
def letters():
    return letters_data.generate(200, seed=0)


def test_generate_is_reproducible_and_depends_on_the_seed():
    images, labels = letters_data.generate(50, seed=3)
    again_images, again_labels = letters_data.generate(50, seed=3)
    other_images, _ = letters_data.generate(50, seed=4)
    np.testing.assert_array_equal(images, again_images)
    np.testing.assert_array_equal(labels, again_labels)
    assert not np.array_equal(images, other_images)
    assert captcha.image.secrets is secrets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_strokes_are_the_letter_without_its_noise(seed, monkeypatch):
    images, labels, strokes = letters_data.generate(1, seed=seed, strokes=True)
    plain_images, plain_labels = letters_data.generate(1, seed=seed)
    np.testing.assert_array_equal(images, plain_images)      # asking for them changes nothing
    np.testing.assert_array_equal(labels, plain_labels)
    # the reference: the same first letter drawn with no noise at all (the noise comes
    # after the letter, so the letter is the same); its ink, thresholded the same way
    for noise in ("create_noise_dots", "create_noise_curve"):
        monkeypatch.setattr(captcha.image.ImageCaptcha, noise,
                            staticmethod(lambda image, *args, **kwargs: image))
    clean, _ = letters_data.generate(1, seed=seed)
    grey = clean[0].astype(float).mean(axis=2)
    background = np.median(grey)
    ink = background - grey
    reference = ink >= 0.5 * ink.max()
    overlap = (strokes[0] & reference).sum() / (strokes[0] | reference).sum()
    assert overlap > 0.9 and 100 < strokes[0].sum() < 0.5 * strokes[0].size
    # ... and the noisy image has dark pixels far from the strokes, which they leave out
    noisy = images[0].astype(float).mean(axis=2)
    assert ((np.median(noisy) - noisy >= 0.5 * ink.max()) & ~strokes[0]).sum() > 20


def test_secrets_is_restored_when_generation_fails(monkeypatch):
    def broken(self, chars):
        raise RuntimeError("no ink")

    monkeypatch.setattr(captcha.image.ImageCaptcha, "generate_image", broken)
    with pytest.raises(RuntimeError, match="no ink"):
        letters_data.generate(5, seed=0)
    assert captcha.image.secrets is secrets


def test_generated_shapes_types_and_letters(letters):
    images, labels = letters
    assert images.shape == (200, 60, 60, 3) and images.dtype == np.uint8
    assert labels.shape == (200,) and labels.dtype == np.int64
    assert labels.min() >= 0 and labels.max() < 26
    assert len(np.unique(labels)) > 15


def test_images_look_like_captchas(letters):
    gray = letters[0].mean(axis=3).reshape(len(letters[0]), -1)
    assert (np.median(gray, axis=1) > 200).all()          # a light background ...
    assert (gray.min(axis=1) < 200).all()                 # ... with ink on every letter
    assert ((gray < 200).mean(axis=1) > 0.03).all()       # ... more than a few noise dots
    assert letters[0].std(axis=(0, 1, 2)).min() > 10      # and coloured, not all one hue


def test_file_names():
    assert letters_data.file_name(12, 2) == "12_C.png"
    assert letters_data.file_name(0, 25) == "0_Z.png"
    assert letters_data.parse_name("9999_B.png") == (9999, 1)
    for bad in ["12_c.png", "012_C.png", "12_CD.png", "x_C.png", "12_C.jpg", "12C.png",
                "-1_C.png", "12_C.png.png"]:
        with pytest.raises(data.DataError, match=re.escape(bad)):
            letters_data.parse_name(bad)
    with pytest.raises(ValueError):
        letters_data.file_name(3, 26)


def test_write_then_read_is_exact(tmp_path, letters):
    images, labels = letters
    directory = tmp_path / "set"
    letters_data.write_set(str(directory), images, labels, seed=0)
    names = [name for name in os.listdir(directory) if name != letters_data.MANIFEST]
    assert len(names) == 200
    for name in names:
        match = NAME.match(name)
        assert match, name
        assert match.group(2) == LETTERS[labels[int(match.group(1))]]
    assert sorted(int(NAME.match(name).group(1)) for name in names) == list(range(200))
    manifest = json.loads((directory / letters_data.MANIFEST).read_text())
    assert manifest["count"] == 200 and manifest["seed"] == 0
    assert manifest["captcha"] == "0.7.1"
    read_images, read_labels = letters_data.read_set(str(directory))
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)


def test_load_generates_once_then_reads(tmp_path, monkeypatch):
    directory = str(tmp_path / "letters")
    lines = []
    first = letters_data.load_letters(directory, count=100, split=(70, 20, 10),
                                      progress=lines.append)
    assert lines and "Generating 100 captcha letters" in lines[0]
    images, labels = letters_data.generate(100, seed=letters_data.GENERATION_SEED)

    def no_generation(*args, **kwargs):
        raise AssertionError("generated again instead of reading the saved letters")

    monkeypatch.setattr(letters_data, "generate", no_generation)
    lines.clear()
    second = letters_data.load_letters(directory, count=100, split=(70, 20, 10),
                                       progress=lines.append)
    assert lines == []
    parts = [slice(0, 70), slice(70, 90), slice(90, 100)]
    for loaded in (first, second):
        assert isinstance(loaded, data.Datasets)
        assert [s.num_examples for s in loaded] == [70, 20, 10]
        for dataset, part in zip(loaded, parts):
            assert dataset.images.dtype == np.float32
            assert dataset.images.shape == (dataset.num_examples, 60 * 60 * 3)
            assert 0 <= dataset.images.min() and dataset.images.max() <= 1
            np.testing.assert_allclose(dataset.images * 255,
                                       images[part].reshape(len(dataset.images), -1), atol=1e-3)
            np.testing.assert_array_equal(dataset.labels, labels[part])


def test_shuffle_seed_fixes_the_batches(tmp_path):
    def first_batch(shuffle_seed):
        loaded = letters_data.load_letters(str(tmp_path), count=60, split=(40, 10, 10),
                                           shuffle_seed=shuffle_seed, progress=quiet)
        return loaded.train.next_batch(8)[1]

    np.testing.assert_array_equal(first_batch(1), first_batch(1))
    assert not np.array_equal(first_batch(1), first_batch(2))


def test_a_manifest_of_another_seed_or_count_is_regenerated(tmp_path):
    directory = str(tmp_path)
    letters_data.load_letters(directory, seed=1, count=80, split=(60, 10, 10), progress=quiet)
    lines = []
    loaded = letters_data.load_letters(directory, seed=2, count=60, split=(40, 10, 10),
                                       progress=lines.append)
    assert any("Generating 60" in line for line in lines)
    assert json.loads((tmp_path / letters_data.MANIFEST).read_text())["seed"] == 2
    # Files 60..79 of the old set are gone, or reading would have failed.
    assert len([n for n in os.listdir(directory) if n.endswith(".png")]) == 60
    _, labels = letters_data.generate(60, seed=2)
    np.testing.assert_array_equal(loaded.train.labels, labels[:40])


def test_default_directory_is_in_the_cache_and_named_by_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    letters_data.load_letters(seed=5, count=60, split=(40, 10, 10), progress=quiet)
    directory = tmp_path / "mnist_stn" / "letters-5"
    assert letters_data.default_dir(5) == str(directory)
    assert json.loads((directory / letters_data.MANIFEST).read_text())["count"] == 60


def test_an_interrupted_write_is_regenerated(tmp_path, monkeypatch):
    real_file_name = letters_data.file_name

    def interrupted(index, label):
        if index == 10:
            raise KeyboardInterrupt
        return real_file_name(index, label)

    monkeypatch.setattr(letters_data, "file_name", interrupted)
    with pytest.raises(KeyboardInterrupt):
        letters_data.load_letters(str(tmp_path), count=60, split=(40, 10, 10), progress=quiet)
    assert not (tmp_path / letters_data.MANIFEST).exists()
    assert len(list(tmp_path.glob("*.png"))) == 10
    monkeypatch.setattr(letters_data, "file_name", real_file_name)
    loaded = letters_data.load_letters(str(tmp_path), count=60, split=(40, 10, 10),
                                       progress=quiet)
    assert loaded.test.num_examples == 10


def test_a_folder_of_other_pngs_is_left_alone(tmp_path, letters):
    letters_data.write_set(str(tmp_path), letters[0][:60], letters[1][:60], seed=0)
    (tmp_path / letters_data.MANIFEST).unlink()
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(data.DataError, match="no manifest.json"):
        letters_data.load_letters(str(tmp_path), count=60, split=(40, 10, 10), progress=quiet)
    assert sorted(os.listdir(tmp_path)) == before


@pytest.fixture
def saved(tmp_path, letters):
    letters_data.write_set(str(tmp_path), letters[0][:60], letters[1][:60], seed=0)
    return tmp_path, letters[1][:60]


def load(directory):
    return letters_data.load_letters(str(directory), count=60, split=(40, 10, 10), progress=quiet)


def test_a_corrupt_png_is_named(saved):
    directory, labels = saved
    name = f"7_{LETTERS[labels[7]]}.png"
    (directory / name).write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    with pytest.raises(data.DataError, match=re.escape(name) + ".*delete"):
        load(directory)


def test_a_bad_file_name_is_named(saved):
    directory, labels = saved
    (directory / f"7_{LETTERS[labels[7]]}.png").rename(directory / "seven.png")
    with pytest.raises(data.DataError, match="seven.png"):
        load(directory)


def test_a_missing_or_extra_letter_is_reported(saved):
    directory, labels = saved
    (directory / f"60_{LETTERS[0]}.png").write_bytes((directory / f"0_{LETTERS[labels[0]]}.png")
                                                     .read_bytes())
    with pytest.raises(data.DataError, match="60_A.png"):
        load(directory)
    (directory / "60_A.png").unlink()
    (directory / f"59_{LETTERS[labels[59]]}.png").unlink()
    with pytest.raises(data.DataError, match="lacks letter 59"):
        load(directory)


def test_an_image_of_the_wrong_size_or_mode_is_named(saved):
    directory, labels = saved
    name = f"3_{LETTERS[labels[3]]}.png"
    Image.new("RGB", (59, 60), "white").save(directory / name)
    with pytest.raises(data.DataError, match=re.escape(name) + ".*59x60 RGB"):
        load(directory)
    Image.new("RGBA", (60, 60), "white").save(directory / name)
    with pytest.raises(data.DataError, match=re.escape(name) + ".*RGBA"):
        load(directory)


def test_split_must_add_up_to_count(tmp_path):
    with pytest.raises(ValueError, match="add up"):
        letters_data.load_letters(str(tmp_path), count=60, split=(40, 10, 5), progress=quiet)
    assert not list(tmp_path.iterdir())
