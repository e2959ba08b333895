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
