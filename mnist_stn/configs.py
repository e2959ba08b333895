"""Named runs: a recipe of ``configs/`` says what a run family changes from the defaults.

A recipe (TOML) has up to two tables. ``[model]`` says how the graph is built (saved
beside the checkpoint as config.json), each key one of its wing's ``MODEL_SETTINGS``;
``[train]`` holds TrainConfig fields. What a recipe leaves out is the default: the
settings below for ``[model]``, TrainConfig's for ``[train]``. Two entries of ``[train]``
are shares of the run instead of steps, so that a run made longer or shorter keeps its
shape: ``ramp`` (the distortions grow from none to full over this share of the steps)
and ``classifier_hold`` (the classifier held still from the first share of the steps
to the second; ``loc_hold`` the same for the loc nets), written as fractions such as
"2/9". A recipe's comments say why the run
is set so and which record tells its story. Recipes whose name starts with "letters"
belong to the letters wing, the others to MNIST.

A run is a recipe plus model overrides (``--transform``, ``--no-stn``, or in its name),
and its name says each: ``R`` with the thin-plate
spline is ``R-tps``, without the STN ``R-cnn`` (the classifier alone; ``addition-fcn``),
with another classifier after the STN ``addition-stcnn``, with one STN instead of the
recipe's two ``addition-x1``.
Such a name is read back (``parse_run``), so a checkpoint folder, record or figure named
after a run finds its settings.
"""
import dataclasses
import fractions
import tomllib
from pathlib import Path

from mnist_stn import distort
from mnist_stn.constants import BN_ORDERS, CLASSIFIERS, LOC_HEADS, NORMS, PIXEL_RANGES
from mnist_stn.training import TrainConfig
from transformer import TRANSFORMS

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
WINGS = ("mnist", "letters")
CNN = "cnn"                   # a run name's suffix for the model without the STN
ST = "st"                     # ... before a classifier's name: another one after the STN
COUNT = "x"                   # ... before a number: that many STNs side by side
# Each wing's [model] settings: key -> (default, what is allowed: a tuple of values or a
# type). The defaults are the tutorials' models.
STN = {"stn": (True, bool), "transform": ("affine", tuple(TRANSFORMS))}  # both wings'
MODEL_SETTINGS = {
    "mnist": {**STN, "distortion": ("none", distort.KINDS),
              "loc_head": ("tutorial", LOC_HEADS), "loc_start_scale": (1.0, float),
              # 2: the addition, a digit in each of two channels, the target their sum
              "digits": (1, (1, 2)), "transformers": (1, int),
              "classifier": (CLASSIFIERS[0], CLASSIFIERS)},
    "letters": {**STN, "width": (1.0, float), "bn": (BN_ORDERS[0], BN_ORDERS),
                "pixel_range": (PIXEL_RANGES[0], PIXEL_RANGES), "norm": (NORMS[0], NORMS)},
}
SHARES = ("ramp", "classifier_hold", "loc_hold")   # [train] entries: shares of the steps
# A CNN has no loc net: these [train] settings of its recipe do not apply to it
LOC_ONLY = {"loc_lr_multiplier": 1.0, "classifier_hold": None, "loc_hold": None}


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
    ("--eval-every", int, "validation accuracy and a checkpoint every N steps"),
)


def add_override_flags(parser):
    """Add OVERRIDE_FLAGS to an entry point's parser; each defaults to the run's value."""
    for flag, kind, what in OVERRIDE_FLAGS:
        field = _field(flag)
        parser.add_argument(flag, type=kind, default=None,
                            help=f"{what} (default: the run's; "
                                 f"{getattr(TrainConfig, field)} where it says none)")


def add_model_flags(parser, wing, what="train"):
    """--config, --no-stn and --transform: which run, as every entry point names it.
    Other model changes are run names: addition-x1 (one STN), addition-stcnn (a CNN
    after the STNs), addition-cnn (the CNN alone)."""
    parser.add_argument("--config", default=None, metavar="RUN",
                        help=f"the named run to {what}: a recipe of configs/ "
                             f"({', '.join(names(wing))}), or a run name such as R-tps "
                             f"or addition-x1 (default: {wing})")
    parser.add_argument("--no-stn", dest="stn", action="store_false",
                        help="the run's classifier alone, without the spatial transformer "
                             f"(its name ends in -{CNN}, or the run's classifier)")
    parser.add_argument("--transform", choices=tuple(TRANSFORMS), default=None,
                        help="the STN's transformer in place of the run's own: affine "
                             "(the tutorial's), projective or tps, the STN paper's thin-"
                             "plate spline, or attention, a square window (its name ends "
                             "in -NAME) (default: the run's)")


def overrides(args, flags=OVERRIDE_FLAGS):
    """The TrainConfig fields the user's OVERRIDE_FLAGS set (None: as the run says)."""
    return {_field(flag): getattr(args, _field(flag)) for flag, *_ in flags}


def _field(flag):
    return flag.lstrip("-").replace("-", "_")


class ConfigError(ValueError):
    """A recipe that is missing or does not describe a run; the message says which."""


def wing_of(name):
    """The wing a recipe belongs to, by its name."""
    return "letters" if name.startswith("letters") else "mnist"


def names(wing):
    """The recipes of a wing ("mnist" or "letters"), sorted. Only the file names are
    read: a broken recipe breaks only the run that reads it."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.toml")
                  if wing_of(path.stem) == wing)


def default_dir(name):
    """Where a named run is kept unless --ckpt-dir says: checkpoints/<name>."""
    return str(Path("checkpoints") / name)


def select(wing, config=None, stn=True, distortion=None, transform=None):
    """The run an entry point's flags name: --config RUN, else the wing's default (for
    MNIST, ``--distortion K`` names the recipe K); --no-stn and --transform then change
    its model, and the run's name says so (``run_name``)."""
    run = config or (distortion if distortion not in (None, "none") else wing)
    recipe, changes = parse_run(run, wing)
    if not stn:
        changes["stn"] = False
    if transform:
        changes["transform"] = transform
    return run_name(recipe, changes, wing)


def parse_run(run, wing):
    """A run name -> (recipe, model overrides): "R-tps" -> ("R", {"transform": "tps"}),
    "R-cnn" -> ("R", {"stn": False}), "letters-tutorial" -> ("letters-tutorial", {})."""
    recipes = names(wing)
    recipe = max((r for r in recipes if run == r or run.startswith(r + "-")), key=len,
                 default=None)
    if recipe is None:
        where = "" if wing_of(run) == wing else f" (a {wing_of(run)} run?)"
        raise ConfigError(f"no run {run!r} in the {wing} wing{where}; its recipes are "
                          f"{', '.join(recipes)}, each with -{CNN} or -TRANSFORM after it")
    changes = {}
    classifiers = CLASSIFIERS if wing == "mnist" else (CNN,)
    for suffix in filter(None, run[len(recipe):].split("-")):
        if suffix in classifiers and "stn" not in changes:
            changes["stn"] = False
            if wing == "mnist":
                changes["classifier"] = suffix
        elif suffix[len(ST):] in classifiers and suffix.startswith(ST) \
                and "classifier" not in changes and wing == "mnist":
            changes["classifier"] = suffix[len(ST):]
        elif suffix[len(COUNT):].isdigit() and suffix.startswith(COUNT) \
                and "transformers" not in changes and wing == "mnist":
            changes["transformers"] = int(suffix[len(COUNT):])
        elif suffix in TRANSFORMS and "transform" not in changes:
            changes["transform"] = suffix
        else:
            raise ConfigError(f"run {run!r}: -{suffix} is neither -{CNN} nor a transformer "
                              f"({', '.join(TRANSFORMS)}) after the recipe {recipe!r}")
    return recipe, changes


def run_name(recipe, changes, wing):
    """The name of a recipe run with model ``changes``: each change from the recipe's
    own model adds its suffix (``-cnn``, ``-tps``); a CNN has no transformer to change."""
    model = _recipe_model(recipe, wing)
    stn = changes.get("stn", model["stn"])
    changed = {key: value for key, value in changes.items()
               if key != "stn" and value != model.get(key)}
    for key in ("transform", "transformers"):
        if not stn and key in changed:
            raise ConfigError(f"--{key}: a classifier without the STN has no transformer")
    if stn and not model["stn"]:
        raise ConfigError(f"recipe {recipe!r} is a CNN; it has no STN to change")
    if changed.get("transformers", 1) < 1:
        raise ConfigError(f"run {recipe}-{COUNT}{changed['transformers']}: one STN or more")
    classifier = changes.get("classifier", model.get("classifier", CNN))
    name = recipe
    if not stn and model["stn"]:
        name += f"-{classifier}"
    elif "classifier" in changed:
        name += f"-{ST}{classifier}"
    if "transformers" in changed:
        name += f"-{COUNT}{changed['transformers']}"
    if "transform" in changed:
        name += f"-{changed['transform']}"
    _check_model(f"run {name}", {**model, **changes})
    return name


def load(run, wing):
    """The [model] and [train] tables of a run, as two dicts, complete: the recipe's
    values over the defaults, then the run name's model overrides. For MNIST runs the
    model's ``image_size`` follows from its distortion."""
    recipe, changes = parse_run(run, wing)
    run_name(recipe, changes, wing)             # refuses a change that cannot be
    model = {**_recipe_model(recipe, wing), **changes}
    train = dict(_read(recipe)[1])
    if not model["stn"]:
        train.update(LOC_ONLY)
        if wing == "mnist":
            model["loc_start_scale"] = MODEL_SETTINGS[wing]["loc_start_scale"][0]
            model["transformers"] = 1
    if wing == "mnist":
        model["image_size"] = distort.CANVAS_SIZE[model["distortion"]]
    return model, train


def _check_model(where, model):
    """What one setting alone cannot say: a digit has one STN, a list of transformers
    names one for each."""
    if "digits" not in model:
        return
    if model["digits"] == 1 and model["transformers"] != 1:
        raise ConfigError(f"{where}: one digit takes one STN, not transformers = "
                          f"{model['transformers']} (two digits: digits = 2)")
    if isinstance(model["transform"], list) and len(model["transform"]) != model["transformers"]:
        raise ConfigError(f"{where}: transform names {len(model['transform'])} "
                          f"transformers, but transformers = {model['transformers']}")


def _recipe_model(recipe, wing):
    """A recipe's [model] over its wing's defaults."""
    return {**_defaults(wing), **_read(recipe)[0]}


def _defaults(wing):
    return {key: default for key, (default, _) in MODEL_SETTINGS[wing].items()}


def _read(recipe):
    """configs/<recipe>.toml -> ([model], [train]) dicts, every value checked: a broken
    recipe is one ConfigError line naming the file, the key and what is allowed."""
    path = CONFIG_DIR / f"{recipe}.toml"
    where = f"configs/{recipe}.toml"
    try:
        with open(path, "rb") as f:
            tables = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read {where} ({e})") from None
    extra = set(tables) - {"model", "train"}
    if extra:
        raise ConfigError(f"{where}: {', '.join(sorted(extra))} is not a table of a "
                          "recipe; it holds [model] and [train]")
    model, train = tables.get("model", {}), tables.get("train", {})
    for table, value in (("model", model), ("train", train)):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {table} must be a table, [{table}]")
    settings = MODEL_SETTINGS[wing_of(recipe)]
    for key, value in model.items():
        if key not in settings:
            raise ConfigError(f"{where}: [model] has no setting {key!r}; the "
                              f"{wing_of(recipe)} wing's are {', '.join(settings)}")
        if key == "transform" and isinstance(value, list) and value:   # one per STN
            for name in value:
                _check(where, "model", key, name, settings[key][1])
        else:
            _check(where, "model", key, value, settings[key][1])
    if "transformers" in model and model["transformers"] < 1:
        raise ConfigError(f"{where}: [model] transformers = {model['transformers']}: "
                          "must be 1 or more")
    if wing_of(recipe) == "mnist":
        _check_model(where, {**_defaults("mnist"), **model})
    fields = {field.name: field.type for field in dataclasses.fields(TrainConfig)
              if field.name not in ("model", "ckpt_dir", "ramp_steps")}
    for key, value in train.items():
        if key not in fields and key not in SHARES:
            raise ConfigError(f"{where}: [train] has no setting {key!r}; a recipe's are "
                              f"{', '.join(sorted(set(fields) | set(SHARES)))}")
        if key not in SHARES:
            _check(where, "train", key, value, fields[key])
    if "ramp" in train:
        _share(where, "ramp", train["ramp"])
    for key in ("classifier_hold", "loc_hold"):
        if key not in train:
            continue
        hold = train[key]
        if not (isinstance(hold, list) and len(hold) == 2):
            raise ConfigError(f"{where}: [train] {key} must be two shares "
                              f"[\"FROM\", \"UNTIL\"] such as [\"1/18\", \"5/18\"], not {hold!r}")
        start, until = (_share(where, key, share) for share in hold)
        if not start < until:
            raise ConfigError(f"{where}: [train] {key} {hold}: FROM must come "
                              "before UNTIL")
    return model, train


def _check(where, table, key, value, allowed):
    """One value of a recipe against what its key allows (a tuple of values, a type)."""
    if isinstance(allowed, tuple):
        ok = type(value) is type(allowed[0]) and value in allowed
        what = f"one of {', '.join(map(repr, allowed))}"
    elif allowed is bool:
        ok, what = isinstance(value, bool), "true or false"
    elif allowed is int:
        ok, what = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif allowed is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        what = "a number"
    elif allowed is str:
        ok, what = isinstance(value, str), "a string"
    else:
        return
    if not ok:
        raise ConfigError(f"{where}: [{table}] {key} = {value!r}: must be {what}")


def _share(where, key, share):
    """A share of the run, "2/9" or a number in [0, 1], as a Fraction."""
    try:
        value = fractions.Fraction(share)
    except (TypeError, ValueError, ZeroDivisionError):
        value = None
    if isinstance(share, bool) or value is None or not 0 <= value <= 1:
        raise ConfigError(f"{where}: [train] {key} {share!r}: a share of the steps must "
                          "be a fraction from 0 to 1 such as \"2/9\"")
    return value


def train_config(run, wing, ckpt_dir, **overrides):
    """The TrainConfig of a named run; ``overrides`` (TrainConfig fields, None for "as the
    recipe says") are applied first, so shares count the steps asked for."""
    model, train = load(run, wing)
    train.update({key: value for key, value in overrides.items() if value is not None})
    steps = train.get("steps", TrainConfig.steps)
    train["ramp_steps"] = steps_of(train.pop("ramp", 0), steps)
    for key in ("classifier_hold", "loc_hold"):
        if train.get(key) is not None:
            start, until = (steps_of(share, steps) for share in train[key])
            train[key] = (start, max(until, start + 1))
    return TrainConfig(model=model, ckpt_dir=ckpt_dir, **train)


def steps_of(share, steps):
    """A share of the run ("2/9", or a number) -> whole steps."""
    try:
        return round(fractions.Fraction(share) * steps)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ConfigError(f"a share of the steps must be a fraction like \"2/9\", "
                          f"not {share!r}") from None
