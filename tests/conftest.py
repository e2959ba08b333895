"""Fixtures shared by the tests; the helpers behind them are in helpers.py."""
import pytest

from helpers import FAKE_SIZES, HAVE_REAL_MNIST, REAL_MNIST_DIR, STANDIN_SIZES, write_mnist


@pytest.fixture
def fake_mnist_dir(tmp_path):
    """A fresh directory of small generated MNIST files (standard names, .gz)."""
    return write_mnist(tmp_path / "fake_mnist", FAKE_SIZES)


@pytest.fixture(scope="session")
def have_real_mnist():
    """Whether ``mnist_dir`` is the real MNIST (else a generated stand-in)."""
    return HAVE_REAL_MNIST


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory):
    """The real MNIST directory if present, else generated files of STANDIN_SIZES. Read only."""
    if HAVE_REAL_MNIST:
        return REAL_MNIST_DIR
    return write_mnist(tmp_path_factory.mktemp("mnist_standin"), STANDIN_SIZES)


# The files that take longest (quick and slow suites together), longest first: each of the
# two workers takes whole files in collection order (pytest.ini keeps it), so a long file
# started last keeps one core busy while the other waits; started first, the short files
# fill in around them.
LONG_FILES = ("test_distorted_run.py", "test_train_predict.py", "test_letters_model.py",
              "test_checkpoint_folder.py", "test_sampler_variants.py", "test_animation.py",
              "test_transformer_projective_tps.py", "test_keras_layer.py", "test_explore.py",
              "test_addition.py", "test_images.py", "test_transformer.py", "test_distort.py",
              "test_model.py", "test_training.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))   # stable
