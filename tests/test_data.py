"""mnist_stn.data: reading IDX files, the validation split, batching, locating and downloading."""
import functools
import gzip
import hashlib
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from helpers import FAKE_SIZES, MNIST_NAMES, STANDIN_SIZES, idx_bytes, make_digits, \
    write_file, write_idx, write_mnist
from mnist_stn import data
from mnist_stn.constants import IMAGE_PIXELS, IMAGE_SIZE, NUM_CLASSES, VALIDATION_SIZE


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """No user data dir, no real cache, and localhost never sent through a proxy."""
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg_cache"))
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(directory) -> base URL of an HTTP server on 127.0.0.1 serving it."""
    servers = []

    def start(directory):
        server = ThreadingHTTPServer(("127.0.0.1", 0),
                                     functools.partial(QuietHandler, directory=str(directory)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def down_url():
    """The URL of a local port nobody listens on: a mirror that is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def hashes_for(directory):
    """FILES-style hashes of the .gz files in ``directory``."""
    hashes = {}
    for name in MNIST_NAMES:
        raw = (directory / (name + ".gz")).read_bytes()
        hashes[name] = {"payload_sha256": hashlib.sha256(gzip.decompress(raw)).hexdigest(),
                        "gz_md5": hashlib.md5(raw).hexdigest()}
    return hashes


# --- reading -----------------------------------------------------------------------------

def test_reads_the_four_files(mnist_dir, have_real_mnist):
    train_images = data.read_images(mnist_dir / "train-images-idx3-ubyte.gz")
    train_labels = data.read_labels(mnist_dir / "train-labels-idx1-ubyte.gz")
    test_images = data.read_images(mnist_dir / "t10k-images-idx3-ubyte.gz")
    test_labels = data.read_labels(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    sizes = {"train": 60000, "t10k": 10000} if have_real_mnist else STANDIN_SIZES
    assert train_images.shape == (sizes["train"], IMAGE_SIZE, IMAGE_SIZE)
    assert test_images.shape == (sizes["t10k"], IMAGE_SIZE, IMAGE_SIZE)
    assert train_labels.shape == (sizes["train"],) and test_labels.shape == (sizes["t10k"],)
    for array in (train_images, train_labels, test_images, test_labels):
        assert array.dtype == np.uint8
    assert set(np.unique(train_labels)) == set(np.unique(test_labels)) == set(range(NUM_CLASSES))
    assert train_images.max() == 255 and train_images.min() == 0
    if have_real_mnist:
        assert train_labels[0] == 5 and test_labels[0] == 7


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    return data.load_mnist(mnist_dir, seed=0)


def test_default_split_holds_out_the_first_training_images(mnist, mnist_dir, have_real_mnist):
    n_train = 60000 if have_real_mnist else STANDIN_SIZES["train"]
    n_test = 10000 if have_real_mnist else STANDIN_SIZES["t10k"]
    assert mnist.validation.num_examples == VALIDATION_SIZE
    assert mnist.train.num_examples == n_train - VALIDATION_SIZE
    assert mnist.test.num_examples == n_test
    if have_real_mnist:
        assert (mnist.train.num_examples, mnist.validation.num_examples) == (55000, 5000)
    labels = data.read_labels(mnist_dir / "train-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(mnist.validation.labels, labels[:VALIDATION_SIZE])
    np.testing.assert_array_equal(mnist.train.labels, labels[VALIDATION_SIZE:])


def test_pixels_are_float32_in_unit_range(mnist, mnist_dir):
    for split in mnist:
        assert split.images.dtype == np.float32 and split.labels.dtype == np.int64
        assert split.images.shape == (split.num_examples, IMAGE_PIXELS)
        assert split.images.min() == 0.0 and split.images.max() == 1.0
    first = data.read_images(mnist_dir / "t10k-images-idx3-ubyte.gz")[0]
    np.testing.assert_allclose(mnist.test.images[0], first.reshape(-1) / 255.0, rtol=1e-6)


def test_gzip_is_detected_by_content_not_name(tmp_path):
    images, labels = make_digits(7, np.random.RandomState(0))
    gz_images, _ = write_idx(tmp_path, images, labels, "a", gz=True)
    raw_images, _ = write_idx(tmp_path, images, labels, "b", gz=False)
    misnamed_gz = write_file(tmp_path / "gz-without-suffix", idx_bytes(images), gz=True)
    misnamed_raw = write_file(tmp_path / "raw-with-suffix.gz", idx_bytes(images), gz=False)
    for path in (gz_images, raw_images, misnamed_gz, misnamed_raw):
        np.testing.assert_array_equal(data.read_images(path), images)


IMAGES = make_digits(5, np.random.RandomState(1))[0]
GOOD_LABELS = np.array([0, 3, 9, 1, 2], np.uint8)
BAD_FILES = {  # name: (reader, bytes of the file, what the message must say)
    "wrong-magic": (data.read_images, gzip.compress(idx_bytes(GOOD_LABELS)), "magic number 2049"),
    "truncated-gzip": (data.read_images, gzip.compress(idx_bytes(IMAGES))[:-100], "gzip"),
    "truncated-payload": (data.read_images, gzip.compress(idx_bytes(IMAGES)[:-10]), "truncated"),
    "extra-bytes": (data.read_labels, gzip.compress(idx_bytes(GOOD_LABELS) + b"\0\0"),
                    "2 unexpected bytes"),
    "bad-label": (data.read_labels, idx_bytes(np.array([0, 3, 10], np.uint8)), "label 10"),
    "wrong-size": (data.read_images, idx_bytes(np.zeros((2, 27, 27), np.uint8)), "27x27"),
    "no-header": (data.read_labels, b"\0\0\x08", "too short"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_damaged_files_raise_data_error_naming_the_file(tmp_path, name):
    reader, content, problem = BAD_FILES[name]
    path = tmp_path / f"{name}-idx-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(data.DataError) as error:
        reader(path)
    assert str(path) in str(error.value) and problem in str(error.value)


def test_image_and_label_counts_must_agree(fake_mnist_dir):
    write_file(fake_mnist_dir / "t10k-labels-idx1-ubyte.gz", idx_bytes(GOOD_LABELS))
    with pytest.raises(data.DataError, match="t10k-labels"):
        data.load_mnist(fake_mnist_dir)


def test_validation_size_is_honoured_and_checked(fake_mnist_dir):
    sets = data.load_mnist(fake_mnist_dir, validation_size=50)
    assert [s.num_examples for s in sets] == [FAKE_SIZES["train"] - 50, 50, FAKE_SIZES["t10k"]]
    with pytest.raises(data.DataError, match="train-images"):
        data.load_mnist(fake_mnist_dir, validation_size=FAKE_SIZES["train"] + 1)


# --- batching ----------------------------------------------------------------------------

def numbered(n, seed=None):
    """A DataSet whose example i has first pixel i and label i % 10."""
    images = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    images[:, 0, 0] = np.arange(n)
    return data.DataSet(images, np.arange(n) % NUM_CLASSES, seed=seed)


def ids(images):
    return np.rint(images[:, 0] * 255).astype(int)


def test_next_batch_serves_every_example_once_per_epoch():
    dataset = numbered(10, seed=3)
    before = dataset.images.copy()
    served = []
    for _ in range(5):  # 5 batches of 4 = exactly 2 epochs, crossing the boundary mid-batch
        images, labels = dataset.next_batch(4)
        np.testing.assert_array_equal(labels, ids(images) % NUM_CLASSES)
        served.extend(ids(images))
    assert sorted(served[:10]) == sorted(served[10:]) == list(range(10))
    assert served[:10] != list(range(10)) and served[:10] != served[10:]  # shuffled, anew
    np.testing.assert_array_equal(dataset.images, before)  # file order kept


def test_next_batch_is_reproducible_with_a_seed():
    def sequence(seed):
        dataset = numbered(50, seed=seed)
        return [ids(dataset.next_batch(16)[0]).tolist() for _ in range(8)]

    assert sequence(7) == sequence(7)
    assert sequence(7) != sequence(8)


def test_next_batch_rejects_impossible_sizes():
    with pytest.raises(ValueError):
        numbered(10).next_batch(11)


# --- locating and downloading ------------------------------------------------------------

def test_default_cache_dir_follows_xdg(monkeypatch, tmp_path):
    assert data.default_cache_dir() == str(tmp_path / "xdg_cache" / "mnist_stn")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.default_cache_dir() == str(tmp_path / "home" / ".cache" / "mnist_stn")


def test_named_dirs_are_used_as_they_are(monkeypatch, tmp_path, fake_mnist_dir, down_url):
    raw_dir = write_mnist(tmp_path / "raw", FAKE_SIZES, gz=False)
    assert data.locate(fake_mnist_dir, base_url=down_url) == str(fake_mnist_dir)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(raw_dir))
    assert data.locate(base_url=down_url) == str(raw_dir)
    assert data.locate(fake_mnist_dir, base_url=down_url) == str(fake_mnist_dir)  # flag wins
    assert data.load_mnist(validation_size=0).test.num_examples == FAKE_SIZES["t10k"]


@pytest.mark.parametrize("via_env", [False, True])
def test_named_dir_missing_files_is_an_error_not_a_download(monkeypatch, tmp_path, serve,
                                                            mnist_dir, via_env):
    named = tmp_path / "partial"
    named.mkdir()
    (named / "train-images-idx3-ubyte.gz").write_bytes(b"")
    url = serve(mnist_dir)
    if via_env:
        monkeypatch.setenv(data.DATA_DIR_ENV, str(named))
    with pytest.raises(data.DataError) as error:
        data.locate(None if via_env else named, base_url=url)
    message = str(error.value)
    assert str(named) in message and "t10k-labels-idx1-ubyte" in message
    assert "train-images" not in message
    assert [p.name for p in named.iterdir()] == ["train-images-idx3-ubyte.gz"]


def test_named_dir_that_does_not_exist(tmp_path):
    with pytest.raises(data.DataError, match="not a directory"):
        data.locate(tmp_path / "nowhere")


@pytest.fixture
def served_mnist(mnist_dir, have_real_mnist):
    """(directory, hashes): the real files with the real hashes, else generated ones."""
    if have_real_mnist:
        return mnist_dir, data.FILES
    return mnist_dir, hashes_for(mnist_dir)


def test_download_fills_the_cache_once(tmp_path, serve, served_mnist, down_url):
    served, hashes = served_mnist
    cache = tmp_path / "cache"
    assert data.locate(cache_dir=cache, base_url=serve(served), hashes=hashes) == str(cache)
    for name in MNIST_NAMES:
        assert (cache / (name + ".gz")).read_bytes() == (served / (name + ".gz")).read_bytes()
    # The mirror is down now: a second call must be served from the cache.
    assert data.locate(cache_dir=cache, base_url=down_url, hashes=hashes) == str(cache)


@pytest.mark.parametrize("known", ["gz_md5", "payload_sha256"])
def test_either_hash_proves_a_download_intact(tmp_path, serve, fake_mnist_dir, known):
    hashes = {name: {"gz_md5": "0" * 32, "payload_sha256": "0" * 64, known: h[known]}
              for name, h in hashes_for(fake_mnist_dir).items()}
    cache = tmp_path / "cache"
    data.locate(cache_dir=cache, base_url=serve(fake_mnist_dir), hashes=hashes)
    assert sorted(p.name for p in cache.iterdir()) == sorted(n + ".gz" for n in MNIST_NAMES)


def test_corrupt_download_is_rejected_and_deleted(tmp_path, serve, fake_mnist_dir):
    hashes = hashes_for(fake_mnist_dir)
    labels_path = fake_mnist_dir / "t10k-labels-idx1-ubyte.gz"
    payload = bytearray(gzip.decompress(labels_path.read_bytes()))
    payload[-3:] = bytes((b + 1) % NUM_CLASSES for b in payload[-3:])  # still valid digits
    write_file(labels_path, bytes(payload))
    cache = tmp_path / "cache"
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte.gz was corrupt"):
        data.locate(cache_dir=cache, base_url=serve(fake_mnist_dir), hashes=hashes)
    assert not (cache / "t10k-labels-idx1-ubyte.gz").exists()
    assert (cache / "train-images-idx3-ubyte.gz").exists()


def test_damaged_cache_file_is_downloaded_again(tmp_path, serve, fake_mnist_dir):
    hashes, url, cache = hashes_for(fake_mnist_dir), serve(fake_mnist_dir), tmp_path / "cache"
    data.locate(cache_dir=cache, base_url=url, hashes=hashes)
    cached = cache / "train-labels-idx1-ubyte.gz"
    cached.write_bytes(cached.read_bytes()[:20])  # as an interrupted download leaves it
    data.locate(cache_dir=cache, base_url=url, hashes=hashes)
    assert cached.read_bytes() == (fake_mnist_dir / cached.name).read_bytes()


def test_unreachable_mirror_says_what_to_do(tmp_path, down_url):
    cache = tmp_path / "cache"
    with pytest.raises(data.DataError) as error:
        data.load_mnist(cache_dir=cache, base_url=down_url)
    message = str(error.value)
    assert message.startswith(f"no MNIST file train-images-idx3-ubyte found in {cache}; "
                              f"could not download it from {down_url}")
    assert "--data-dir" in message and data.DATA_DIR_ENV in message
    assert list(cache.iterdir()) == []


def test_damaged_cache_file_is_named_when_it_cannot_be_replaced(tmp_path, serve, down_url,
                                                               fake_mnist_dir, capsys):
    # deleting a damaged cached file is said at once, and the error then names it
    # instead of claiming that no files were found
    hashes, cache = hashes_for(fake_mnist_dir), tmp_path / "cache"
    data.locate(cache_dir=cache, base_url=serve(fake_mnist_dir), hashes=hashes)
    cached = cache / "train-images-idx3-ubyte.gz"
    cached.write_bytes(cached.read_bytes()[:50])
    capsys.readouterr()
    with pytest.raises(data.DataError) as error:
        data.locate(cache_dir=cache, base_url=down_url, hashes=hashes)
    assert str(error.value).startswith(f"the cached {cached} was damaged and was deleted; "
                                       "could not download it")
    assert f"The cached {cached} was damaged" in capsys.readouterr().out
