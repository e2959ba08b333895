"""Benchmark: train.py's defaults with and without the STN on MNIST, one after the other.

    python benchmarks/mnist.py --data-dir ../shared/mnist

Prints, and writes as a markdown table to --out, the test accuracy, wall time and
training images/s of each run, with the machine it ran on. Both runs happen in this
one process, so their speeds are comparable as a ratio even on a busy machine.
"""
import argparse
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import train  # noqa: E402
from mnist_stn import data  # noqa: E402
from mnist_stn.compat import tf  # noqa: E402


def machine():
    """'2-core CPU (model), TF x.y, Python x.y' for the record."""
    model_name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model_name = next(line.split(":", 1)[1].strip() for line in f
                              if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{os.cpu_count()}-core CPU ({model_name}), TF {tf.__version__}, "
            f"Python {platform.python_version()}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None,
                        help="MNIST directory (default: as train.py)")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "mnist.md"),
                        help="markdown file for the results (default: %(default)s)")
    parser.add_argument("--train-args", default="",
                        help="extra train.py flags for every run, e.g. '--steps 500'")
    parser.add_argument("--ckpt-root", default=None,
                        help="keep the checkpoints in ROOT/stn and ROOT/cnn "
                             "(default: a temporary directory, deleted)")
    parser.add_argument("--models", default="stn,cnn",
                        help="which to train, in order: stn, cnn or both "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)

    data.locate(args.data_dir)      # fail before training if MNIST cannot be had
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.ckpt_root or tmp
        models = {"stn": ("STN + CNN", []), "cnn": ("CNN (--no-stn)", ["--no-stn"])}
        for model in args.models.split(","):
            name, flags = models[model]
            data_flags = ["--data-dir", args.data_dir] if args.data_dir else []
            train_args = train.parse_args(["--ckpt-dir", os.path.join(root, model),
                                           *data_flags, *flags, *args.train_args.split()])
            start = time.time()
            metrics = train.train(train_args)   # reads MNIST as a user's run does
            wall = time.time() - start
            rows.append((name, metrics, wall))

    command = "python benchmarks/mnist.py" + "".join(
        f" --{flag.replace('_', '-')} '{getattr(args, flag)}'"
        for flag in ("train_args", "models") if getattr(args, flag) != parser.get_default(flag))
    lines = [f"Measured with `{command}` on {machine()}, "
             f"{time.strftime('%Y-%m-%d')}.", "",
             "| model | steps | test accuracy | wall time (train + evaluation) "
             "| training images/s |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, m, wall in rows:
        lines.append(f"| {name} | {m['steps']} | {m['test_accuracy']:.2%} | "
                     f"{wall / 60:.1f} min | {m['images_per_second']:.0f} |")
    if len(rows) == 2:
        ratio = rows[1][1]["images_per_second"] / rows[0][1]["images_per_second"]
        lines += ["", f"{rows[1][0]} trains {ratio:.2f}x as many images per second as "
                      f"{rows[0][0]} (same process, one after the other)."]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
