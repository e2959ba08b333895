"""Named runs: each file of ``configs/`` holds one run's settings whole, in TOML.

A file has two tables. ``[model]`` says how the graph is built (it is saved beside the
checkpoint as config.json); ``[train]`` holds TrainConfig fields. Two entries of
``[train]`` are shares of the run instead of steps, so that a run made longer or
shorter keeps its shape: ``ramp`` (the distortions grow from none to full over this
share of the steps) and ``classifier_hold`` (the classifier held still from the first
share of the steps to the second), written as fractions such as "2/9". ``train_config``
turns them into steps, the one place that does. A file's comments say why the run is
set so and which record tells its story.
"""
import dataclasses
import fractions
import tomllib
from pathlib import Path

from mnist_stn import distort
from mnist_stn.training import TrainConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
# the keys of [model] that say which wing a run belongs to
WING_KEYS = {"mnist": "distortion", "letters": "width"}


# The flags both training entry points take, each overriding one [train] field of the run
OVERRIDE_FLAGS = (
    ("--steps", int, "total training steps, counting those of a resumed run; the run's "
                     "shares (its curriculum, the classifier's hold) scale with them"),
    ("--batch-size", int, "examples per step"),
    ("--learning-rate", float, "the learning rate, the peak of the run's schedule"),
    ("--keep-prob", float, "dropout keep probability of the classifier"),
    ("--loc-keep-prob", float, "dropout keep probability inside the localisation net"),
    ("--seed", int, "seed for weights, dropout, batch order and distortions"),
    ("--log-every", int, "print progress every N steps"),
    ("--eval-every", int, "validation accuracy (in train.py also a checkpoint) every N "
                          "steps"),
)


def add_override_flags(parser):
    """Add OVERRIDE_FLAGS to an entry point's parser; each defaults to the run's value."""
    for flag, kind, what in OVERRIDE_FLAGS:
        field = _field(flag)
        parser.add_argument(flag, type=kind, default=None,
                            help=f"{what} (default: the run's; "
                                 f"{getattr(TrainConfig, field)} where it says none)")


def overrides(args, flags=OVERRIDE_FLAGS):
    """The TrainConfig fields the user's OVERRIDE_FLAGS set (None: as the run says)."""
    return {_field(flag): getattr(args, _field(flag)) for flag, *_ in flags}


def _field(flag):
    return flag.lstrip("-").replace("-", "_")


class ConfigError(ValueError):
    """A config that is missing or does not describe a run; the message says which."""


def select(wing, config=None, stn=True, distortion=None, transform=None):
    """The run an entry point's flags name: --config NAME, else the wing's default (for
    MNIST, ``--distortion K`` names the config K); --no-stn then asks for its CNN,
    ``<name>-cnn``, and --transform T the same run with the transformer T in place of
    the affine, ``<name>-T``."""
    name = config or (distortion if distortion not in (None, "none") else wing)
    if transform:
        if not stn:
            raise ConfigError("--transform: a CNN without the STN has no transformer")
        return _variant(wing, name, transform, "--transform")
    if stn:
        return name
    return _variant(wing, name, "cnn", "--no-stn")


def _variant(wing, name, suffix, flag):
    """``<name>-<suffix>``, a file of configs/ of its own, or one clear error."""
    runs = names(wing)
    if f"{name}-{suffix}" in runs:
        return f"{name}-{suffix}"
    having = [run for run in runs if f"{run}-{suffix}" in runs]
    raise ConfigError(f"{flag}: config {name!r} has no {suffix} run of its own "
                      f"({name}-{suffix}); the runs with one: {', '.join(having)}")


def default_dir(name):
    """Where a named run is kept unless --ckpt-dir says: checkpoints/<name>."""
    return str(Path("checkpoints") / name)


def names(wing):
    """The named runs of a wing ("mnist" or "letters"), sorted."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.toml")
                  if WING_KEYS[wing] in _read(path)["model"])


def load(name, wing):
    """The [model] and [train] tables of configs/<name>.toml, as two dicts.

    For MNIST runs the model's ``image_size`` follows from its distortion, and its
    ``transform`` is affine unless the file says otherwise (so a saved model always
    names its transformer).
    """
    path = CONFIG_DIR / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"no config {name!r}; the {wing} runs are: {', '.join(names(wing))}")
    tables = _read(path)
    if WING_KEYS[wing] not in tables["model"]:
        raise ConfigError(f"config {name!r} is not a run of the {wing} wing")
    model = dict(tables["model"])
    if wing == "mnist":
        model["image_size"] = distort.CANVAS_SIZE[model["distortion"]]
        model.setdefault("transform", "affine")
    return model, dict(tables["train"])


def _read(path):
    try:
        with open(path, "rb") as f:
            tables = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read {path} ({e})") from None
    if set(tables) != {"model", "train"}:
        raise ConfigError(f"{path} must hold exactly the tables [model] and [train]")
    return tables


def train_config(name, wing, ckpt_dir, **overrides):
    """The TrainConfig of a named run; ``overrides`` (TrainConfig fields, None for "as the
    config says") are applied first, so shares count the steps asked for."""
    model, train = load(name, wing)
    train.update({key: value for key, value in overrides.items() if value is not None})
    steps = train.get("steps", TrainConfig.steps)
    train["ramp_steps"] = steps_of(train.pop("ramp", 0), steps)
    if "classifier_hold" in train:
        start, until = (steps_of(share, steps) for share in train["classifier_hold"])
        train["classifier_hold"] = (start, max(until, start + 1))
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = set(train) - known
    if unknown:
        raise ConfigError(f"config {name!r} has unknown [train] settings: "
                          f"{', '.join(sorted(unknown))}")
    return TrainConfig(model=model, ckpt_dir=ckpt_dir, **train)


def steps_of(share, steps):
    """A share of the run ("2/9", or a number) -> whole steps."""
    try:
        return round(fractions.Fraction(share) * steps)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ConfigError(f"a share of the steps must be a fraction like \"2/9\", "
                          f"not {share!r}") from None
