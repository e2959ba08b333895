"""What every benchmark records: the machine, the date, JSON records, the command."""
import json
import os
import platform
import shlex
import sys
import time

from mnist_stn import checkpoints, configs, precision
from mnist_stn.compat import tf
from transformer import TRANSFORMS


def run_main(main):
    """A benchmark's ``if __name__ == "__main__"``: Ctrl-C ends it with status 130 and no
    traceback (training has saved the run and said how to resume it); a results file
    that cannot be read is one error line."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except ResultsError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


# Jaderberg et al. 2015, Table 1: % test error of the CNN and of the ST-CNN with each
# transformer (its cluttered MNIST: the CNN and the affine ST-CNN only)
TABLE_1 = {"R": {"CNN": 1.2, "affine": 0.7, "projective": 0.8, "tps": 0.7},
           "RTS": {"CNN": 0.8, "affine": 0.5, "projective": 0.6, "tps": 0.5},
           "P": {"CNN": 1.5, "affine": 0.8, "projective": 0.8, "tps": 0.8},
           "E": {"CNN": 1.4, "affine": 1.2, "projective": 1.3, "tps": 1.1},
           "clutter": {"CNN": 3.5, "affine": 1.7}}

# Benchmarks keep each run's checkpoint folder here unless told: a stopped benchmark run
# again resumes from it
CKPT_ROOT = os.path.join("checkpoints", "benchmarks")


def add_run_flags(parser, name, recipes, default_runs):
    """The flags of a benchmark of named runs, the same in each: --configs (runs of
    ``recipes``, by default ``default_runs``), --no-stn and --transform (as train.py's,
    applied to each), --seeds, --steps, --data-dir, --precision, --results
    (benchmarks/results/``name``.json), and those of ``add_keep_flags``."""
    parser.add_argument("--configs", default=",".join(default_runs),
                        help=f"comma-separated runs: recipes of configs/ "
                             f"({', '.join(recipes)}), each maybe with -cnn or "
                             "-TRANSFORM after it, as R-tps (default: %(default)s)")
    parser.add_argument("--no-stn", dest="stn", action="store_false",
                        help="each run's CNN, as train.py --no-stn")
    parser.add_argument("--transform", choices=tuple(TRANSFORMS), default=None,
                        help="each run with this transformer, as train.py --transform")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated seeds, each run once per seed "
                             "(default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps of every run; the runs' shares scale with "
                             "them (default: each config's)")
    parser.add_argument("--data-dir", default=None, help="MNIST directory (default: as train.py)")
    parser.add_argument("--precision", choices=precision.PRECISIONS, default="auto",
                        help="as train.py's --precision (default: %(default)s)")
    parser.add_argument("--results", default=results_path(name),
                        help="JSON record of all runs; the markdown table is written beside "
                             "it, .md for .json (default: %(default)s)")
    add_keep_flags(parser, name)


def results_path(name):
    """Where a benchmark records its runs unless --results says."""
    return os.path.join("benchmarks", "results", f"{name}.json")


def planned_runs(parser, args, recipes, make_config, train_size, wing="mnist"):
    """The (run name, seed) pairs --configs, --no-stn, --transform and --seeds ask for,
    each run's settings passed through the one TrainConfig.check; a bad value is one
    argparse error line."""
    try:
        names = [configs.select(wing, name, args.stn, transform=args.transform)
                 for name in args.configs.split(",")]
    except configs.ConfigError as e:
        parser.error(f"--configs: {e}")
    unknown = [name for name in names if configs.parse_run(name, wing)[0] not in recipes]
    if unknown:
        parser.error(f"runs {unknown} are not of this benchmark; its recipes are "
                     f"{', '.join(recipes)}")
    seeds = int_list(parser, "--seeds", args.seeds)
    planned = [(name, seed) for seed in seeds for name in names]
    try:
        for name, seed in planned:
            make_config(name, seed, args).check(train_size=train_size)
    except ValueError as e:
        parser.error(str(e))
    return planned


def int_list(parser, flag, text):
    """'0,1,2' -> [0, 1, 2]; anything else is one argparse error line naming the flag."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        parser.error(f"{flag} takes comma-separated integers, not {text!r}")


def run_name(name, seed):
    """A run's name in records, figures and checkpoint folders: 'R', 'R-seed1'."""
    return name + (f"-seed{seed}" if seed else "")


def train_all(parser, records, planned, args, run):
    """Refuse a planned run already recorded (unless --overwrite), then ``run`` each one
    into its kept checkpoint folder and record it as it finishes."""
    refuse_recorded(parser, records, [run_name(*pair) for pair in planned], args.overwrite)
    for name, seed in planned:
        key = run_name(name, seed)
        records.add(key, run(name, seed, args, os.path.join(args.ckpt_root, key)))


def add_keep_flags(parser, name):
    """--ckpt-root (by default CKPT_ROOT/``name``, or beside a trial's --results) and
    --overwrite, the same in every training benchmark."""
    parser.add_argument("--ckpt-root", default=None,
                        help="keep each run's checkpoint folder here, so a stopped benchmark "
                             f"resumes when run again (default: {CKPT_ROOT}/{name}; for a "
                             "trial's own --results, RESULTS-checkpoints beside it)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace runs already recorded in --results (without it, a "
                             "run of a recorded name is refused before it starts)")


def keep_beside_results(args, name):
    """Fill in --ckpt-root; returns where a trial's figures go, or None for the
    benchmark's own runs. A trial, whose --results is not the benchmark's own, keeps
    its checkpoints and figures beside its results, so it never draws over the
    committed figures nor leaves a checkpoint that a recorded run would resume from."""
    trial = os.path.abspath(args.results) != os.path.abspath(results_path(name))
    stem = os.path.splitext(args.results)[0]
    if args.ckpt_root is None:
        args.ckpt_root = stem + "-checkpoints" if trial else os.path.join(CKPT_ROOT, name)
    return stem + "-figures" if trial else None


def record_new(records, key, make, overwrite):
    """Record ``make()`` as ``key`` unless --results has it and --overwrite is not given:
    a stopped study run again goes on where it stopped. Returns whether it recorded."""
    if key in records and not overwrite:
        print(f"{key}: recorded, skipped (--overwrite records it again)", flush=True)
        return False
    records.add(key, make())
    return True


def refuse_recorded(parser, records, keys, overwrite):
    """One argparse error line if a run would replace a recorded one unasked."""
    taken = [key for key in keys if key in records]
    if taken and not overwrite:
        parser.error(f"{', '.join(taken)} already recorded in {records.path}; pass "
                     "--overwrite to replace, or --results NEW.json for a trial")


def wall_time(record):
    """'12.3 min', marked when the run resumed: its wall time then misses the steps an
    earlier process trained (its images/s do not: they count this process's steps)."""
    resumed = " (resumed)" if record.get("resumed_at_step") else ""
    return f"{record['wall_minutes']:.1f} min{resumed}"


def machine():
    """'2-core CPU (model), TF x.y, Python x.y' for the record."""
    model_name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model_name = next(line.split(":", 1)[1].strip() for line in f
                              if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    # the same model name covers machines with and without AVX-512 (3-4x apart here)
    flags = precision.cpu_flags()
    vector = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"))
                   if flag in flags), None)
    if vector:
        bf16 = [flag for flag in precision.BF16_FLAGS if flag in flags]
        model_name += f", {vector}" + "".join(f" + {flag}" for flag in bf16)
    return (f"{os.cpu_count()}-core CPU ({model_name}), TF {tf.__version__}, "
            f"Python {platform.python_version()}")


def stamp():
    """The fields every record carries: machine, date, load, and the command."""
    return {"machine": machine(), "date": time.strftime("%Y-%m-%d"),
            "load_at_end": round(os.getloadavg()[0], 2), "command": command()}


def command():
    """The command line this benchmark was started with, to print beside its numbers."""
    module = sys.modules["__main__"].__spec__
    name = f"-m {module.name}" if module else sys.argv[0]
    return " ".join(["python", name] + [shlex.quote(arg) for arg in sys.argv[1:]])


class ResultsError(Exception):
    """A results file that cannot be read; nothing is written over it."""


class Records:
    """Results kept as JSON, one record per finished run, and a markdown table rebuilt
    from all of them after every record, so a stopped benchmark loses at most one run."""

    def __init__(self, path, table_path, make_table):
        self.path, self.table_path, self.make_table = path, table_path, make_table
        self.data = {}
        self._read()

    def _read(self):
        if not os.path.exists(self.path):
            return
        try:
            with open(self.path) as f:
                self.data = json.load(f)
        except (OSError, ValueError) as e:
            raise ResultsError(f"cannot read {self.path} ({e}); restore it (git checkout -- "
                               f"{self.path}) or pass another --results") from None
        if not isinstance(self.data, dict):
            raise ResultsError(f"{self.path} is not a benchmark's results; restore it or "
                               "pass another --results")

    def __contains__(self, key):
        return key in self.data

    def add(self, key, record):
        # read again first: another benchmark may have recorded runs since we started
        self._read()
        self.data[key] = record
        print(json.dumps({key: record}, indent=2), flush=True)
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        checkpoints.write_json(self.path, self.data)
        with open(self.table_path, "w") as f:
            f.write(self.make_table(self.data))
