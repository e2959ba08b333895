"""The STN paper's MNIST addition (its Appendix A.1): two digits, one per channel; add them.

An input is a canvas of two channels: channel 1 holds one MNIST digit, channel 2 another,
each distorted on its own (the run's distortion; the paper's is RTS: turned by up to 45
degrees, scaled by 0.7-1.2 and placed anywhere on 42x42). The label is their sum, 0 to
18, so the model must read both digits: no single channel tells it.

Training pairs fresh digits every batch (each batch of the training set split in two
halves, the first half's digits in channel 1) and distorts them afresh; the validation
and test sets pair every digit with a fixed partner (a permutation of the set with a
fixed seed) and distort both once with fixed seeds, so every run is tested on the same
pairs. Flat inputs are (N, S*S*2), channel last, as the model's placeholder takes them.
"""
import numpy as np

from mnist_stn import distort

CHANNELS = 2
PARTNER_SEED = 1507          # which digit each validation and test digit is paired with


class Pairs:
    """Batches of training pairs drawn from a data.DataSet: ``next_batch(n)`` takes 2n
    digits and pairs the first n with the last n: ((n, 2 * 784) flat pairs, (n,) sums).
    The DataSet's epochs and seed fix the sequence, so a resumed run replays it."""

    def __init__(self, dataset):
        self.dataset = dataset

    @property
    def num_examples(self):
        return self.dataset.num_examples // CHANNELS

    def next_batch(self, batch_size):
        images, labels = self.dataset.next_batch(CHANNELS * batch_size)
        # (2n, 784) -> (n, 2 * 784): channel 1's digit, then channel 2's
        return (np.concatenate([images[:batch_size], images[batch_size:]], axis=1),
                labels[:batch_size] + labels[batch_size:])


class PairDistorter:
    """Distorts the two digits of each pair on their own and stacks them as channels:
    (n, 2 * 784) pairs -> (n, S*S*2) canvases, through ``distorter`` (a
    distort.Distorter, or a distort.Ramp around one)."""

    def __init__(self, distorter):
        self.distorter = distorter

    def __call__(self, pairs):
        pairs = np.asarray(pairs, np.float32)
        n = len(pairs)
        # (n, 2 * 784) -> (2n, 784): each pair's two digits in turn
        canvases = self.distorter(pairs.reshape(n * CHANNELS, -1))
        # (2n, S*S) -> (n, 2, S*S) -> (n, S*S, 2) -> (n, S*S*2): channel last
        return canvases.reshape(n, CHANNELS, -1).transpose(0, 2, 1).reshape(n, -1)

    def close(self):
        self.distorter.close()


def partners(count, seed=PARTNER_SEED):
    """The index of each digit's partner in a fixed pairing of a set of ``count``."""
    return np.random.RandomState(seed).permutation(count)


def fixed_pairs(dataset, kind, seed):
    """A set as the addition tests on it: every digit i in channel 1 beside digit
    ``partners(N)[i]`` in channel 2, distorted by ``kind`` with a fixed seed.

    Returns ((N, S*S*2) canvases, (N,) sums, (N, 2) the two digits). The same set,
    kind and seed give the same bytes in every run.
    """
    other = partners(dataset.num_examples)
    pairs = np.concatenate([dataset.images, dataset.images[other]], axis=1)
    with distort.Distorter(kind, seed=seed) as distorter:
        canvases = PairDistorter(distorter)(pairs)
    digits = np.stack([dataset.labels, dataset.labels[other]], axis=1)
    return canvases, digits.sum(axis=1), digits


def training_inputs(datasets, kind, seed=0, ramp_steps=0):
    """The data arguments of ``training.fit`` for the addition, each digit distorted by
    ``kind``, as ``distort.training_inputs`` gives them for one digit."""
    def make_augment(step):
        distorter = distort.Distorter(kind, seed=seed * 1000003 + step)
        return PairDistorter(distort.Ramp(distorter, step, ramp_steps) if ramp_steps
                             else distorter)
    validation = fixed_pairs(datasets.validation, kind, distort.VALIDATION_SEED)
    test = fixed_pairs(datasets.test, kind, distort.TEST_SEED)
    return {"train_set": Pairs(datasets.train), "validation": validation[:2],
            "test": test[:2], "make_augment": make_augment}


def channel_shares(rectified, transformers):
    """Which channel each STN took: (N, 2), row k the share of STN k's output ink that
    comes from channel 1 and from channel 2, over all images (an output of no ink
    counts for neither).

    Args:
      rectified: (B, h, w, N*2) the STNs' outputs side by side, each two channels.
      transformers: N.
    """
    out = np.asarray(rectified, np.float64)
    # (B, h, w, N*2) -> (B, N, 2): each STN's ink in each channel
    ink = out.reshape(len(out), -1, transformers, CHANNELS).sum(axis=1)
    return ink.sum(axis=0) / np.maximum(ink.sum(axis=(0, 2))[:, None], 1e-12)


def in_words(first, second, total=None):
    """'7 + 5 = 12': two digits and their sum (``total`` when another sum is meant)."""
    return f"{first} + {second} = {first + second if total is None else total}"
