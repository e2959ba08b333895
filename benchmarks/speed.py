"""Benchmark: training speed in float32 and bfloat16, and the sampler's speed.

    python -m benchmarks.speed
    python -m benchmarks.speed --steps 40 --calls 50

Everything is timed in this one process, one after the other, so the numbers compare
as ratios. Training: images/s of optimizer steps (Adam, a fixed random batch, after
warm-up steps) for the STN + CNN, the CNN, the RTS ST-CNN and the letters' STN-CNN, in
float32 and bfloat16, and the STN + CNN with the sampler as it was before it was made
faster (``benchmarks/sampler_before.py``). Sampler: median milliseconds of one forward
pass plus the gradients for the image and theta, current against before, at three
sizes, and a variant whose forward pass is TensorFlow's own transform kernel
(``benchmarks/sampler_native.py``). Transformers: the same two timings for the STN
paper's three transformers (affine, projective, thin-plate spline): the grid and the
sampler, forward and backward, at the R and RTS sizes, and the training images/s of the
R and RTS ST-CNN with each. Results: --results (JSON) and the markdown table beside it.
A recorded part is replaced only with --overwrite.
"""
import argparse
import contextlib
import os
import time

import numpy as np

import model
import transformer
from benchmarks import common, sampler_before, sampler_native
from letters import model as letters_model
from mnist_stn import configs, precision
from mnist_stn.compat import tf

# batch x input (H, W, C) -> output (h, w): the sizes of the MNIST STN, the RTS canvas
# and the letters
SAMPLER_SIZES = [(50, (28, 28, 1), (28, 28)), (256, (42, 42, 1), (28, 28)),
                 (32, (60, 60, 3), (60, 60))]
# the sampler before it was made faster, today's, and one whose forward pass is TF's own kernel
SAMPLERS = {"before": sampler_before, "now": transformer, "native": sampler_native}
MODELS = {   # name: (build_graph, config, batch)
    "STN + CNN": (model.build_graph, configs.load("mnist", "mnist")[0], 50),
    "CNN": (model.build_graph, configs.load("mnist-cnn", "mnist")[0], 50),
    "RTS ST-CNN": (model.build_graph, configs.load("RTS", "mnist")[0], 50),
    # the letters' tutorial model with plain batch norm, as first timed
    "letters STN-CNN": (letters_model.build_graph,
                        {**configs.load("letters-tutorial", "letters")[0], "norm": "plain"},
                        32),
}


@contextlib.contextmanager
def sampler(module):
    """Build the MNIST model with this STN module's sampler."""
    saved = model.transformer
    model.transformer = module
    try:
        yield
    finally:
        model.transformer = saved


def train_rate(build_graph, config, batch, session_precision, steps, warmup=5):
    """Training images/s of one model: ``steps`` Adam steps on a fixed random batch."""
    rng = np.random.RandomState(0)
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        g = build_graph(config)
        pixels = int(np.prod(g["input_shape"]))
        classes = g["logits"].shape.as_list()[-1]
        feed = {g["images"]: rng.rand(batch, pixels).astype(np.float32),
                g["labels"]: rng.randint(0, classes, batch), g["keep_prob"]: 0.5}
        if "training" in g:
            feed[g["training"]] = True
        with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
            step = tf.train.AdamOptimizer(1e-4).minimize(g["loss"])
        with tf.Session(config=precision.session_config(session_precision)) as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(warmup):
                sess.run(step, feed)
            start = time.perf_counter()
            for _ in range(steps):
                sess.run(step, feed)
            return steps * batch / (time.perf_counter() - start)


def sampler_ms(module, batch, in_shape, out_dims, calls, transform, warmup=5):
    """Median ms of one forward pass (grid and sampler) and the gradients for the image
    and theta."""
    rng = np.random.RandomState(1)
    start_theta = np.array(transformer.TRANSFORMS[transform].identity, np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        # variables, not constants, which TF would fold into the graph before timing
        images = tf.Variable(rng.rand(batch, *in_shape).astype(np.float32))
        # a perspective of 0.3 would reach the horizon: the last row moves less
        spread = np.where(np.arange(len(start_theta)) >= 6, 0.05, 0.3) \
            if transform == "projective" else 0.3 if transform == "affine" else 0.1
        theta = tf.Variable((start_theta + rng.uniform(-1, 1, (batch, len(start_theta)))
                             * spread).astype(np.float32))
        kwargs = {"transform": transform} if transform != "affine" else {}
        out = module.spatial_transformer_network(images, theta, out_dims=list(out_dims),
                                                 **kwargs)
        weights = tf.constant(rng.rand(*out.shape.as_list()).astype(np.float32))
        fetch = [out] + tf.gradients(tf.reduce_sum(out * weights), [images, theta])
        sess.run(tf.global_variables_initializer())
        for _ in range(warmup):
            sess.run(fetch)
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            sess.run(fetch)
            times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def table(records):
    lines = []
    rates = records.get("training")
    if rates:
        lines += ["| model | float32 images/s | bfloat16 images/s | bf16 / fp32 |",
                  "| --- | ---: | ---: | ---: |"]
        for name, r in rates["rates"].items():
            bf16 = f"{r['bf16']:.0f}" if r.get("bf16") else "-"
            ratio = f"{r['bf16'] / r['fp32']:.2f}x" if r.get("bf16") else "-"
            lines.append(f"| {name} | {r['fp32']:.0f} | {bf16} | {ratio} |")
        lines += ["", f"`{rates['command']}`, {rates['machine']}, {rates['date']}, load "
                      f"{rates['load_at_end']} at the end.", ""]
    ms = records.get("sampler")
    if ms:
        native = all("native" in r for r in ms["sizes"].values())   # older records: none
        lines += ["| sampler: batch x input -> output | before (ms) | now (ms) | speed-up |"
                  + (" TF's transform op forward (ms) | its speed-up |" if native else ""),
                  "| --- | ---: | ---: | ---: |" + (" ---: | ---: |" if native else "")]
        for name, r in ms["sizes"].items():
            lines.append(f"| {name} | {r['before']:.2f} | {r['now']:.2f} | "
                         f"{r['before'] / r['now']:.2f}x |" + (
                             f" {r['native']:.2f} | {r['before'] / r['native']:.2f}x |"
                             if native else ""))
        lines += ["", "Forward pass plus the gradients for the image and theta, median of "
                      f"{ms['calls']} calls, float32. `{ms['command']}`, {ms['machine']}, "
                      f"{ms['date']}."]
    kinds = records.get("transformers")
    if kinds:
        lines += ["", "| transformer | sampler, 50 x 28x28 (ms) | sampler, 256 x 42x42 -> "
                      "28x28 (ms) | R ST-CNN float32 images/s | bfloat16 | RTS ST-CNN "
                      "float32 images/s | bfloat16 |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, r in kinds["transformers"].items():
            rates = [f"{r[key]:.0f}" if r.get(key) else "-"
                     for key in ("R fp32", "R bf16", "RTS fp32", "RTS bf16")]
            lines.append(f"| {name} | {r['ms 28']:.2f} | {r['ms 42']:.2f} | "
                         + " | ".join(rates) + " |")
        lines += ["", "The grid and the sampler forward plus the gradients for the image and "
                      f"theta, median of {kinds['calls']} calls, float32; training: Adam on a "
                      f"fixed batch of 50. `{kinds['command']}`, {kinds['machine']}, "
                      f"{kinds['date']}, load {kinds['load_at_end']} at the end."]
    return "\n".join(lines) + "\n"


def transformer_speeds(calls, steps, bf16):
    """Each transformer's sampler ms and its ST-CNN's training images/s, one after the
    other in this process."""
    speeds = {}
    for transform in transformer.TRANSFORMS:
        r = {"ms 28": sampler_ms(transformer, 50, (28, 28, 1), (28, 28), calls,
                                 transform=transform),
             "ms 42": sampler_ms(transformer, 256, (42, 42, 1), (28, 28), calls,
                                 transform=transform)}
        for kind in ("R", "RTS"):
            config = configs.load(configs.select("mnist", kind, transform=transform),
                                  "mnist")[0]
            for p in (("fp32", "bf16") if bf16 else ("fp32",)):
                r[f"{kind} {p}"] = train_rate(model.build_graph, config, 50, p, steps)
        speeds[transform] = r
        print(transform, r, flush=True)
    return speeds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="sampler,training,transformers",
                        help="comma-separated: sampler, training, transformers "
                             "(default: %(default)s)")
    parser.add_argument("--steps", type=int, default=60,
                        help="timed training steps per model and precision (default: "
                             "%(default)s; the letters' model takes a quarter of them)")
    parser.add_argument("--calls", type=int, default=50,
                        help="timed sampler calls per size (default: %(default)s)")
    parser.add_argument("--results", default=os.path.join("benchmarks", "results", "speed.json"),
                        help="JSON record; the markdown table is written beside it, .md "
                             "for .json (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the parts already recorded in --results (without it, "
                             "a recorded part is refused before it is timed)")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    unknown = set(parts) - {"sampler", "training", "transformers"}
    if unknown or args.steps < 1 or args.calls < 1:
        parser.error(f"--parts takes sampler, training, transformers (not {sorted(unknown)}); "
                     "--steps and --calls at least 1")
    records = common.Records(args.results, os.path.splitext(args.results)[0] + ".md", table)
    common.refuse_recorded(parser, records, parts, args.overwrite)
    bf16 = precision.resolve("auto") == "bf16"
    if not bf16:
        print("This CPU has no bfloat16 dot products: float32 only.")
    if "sampler" in parts:
        sizes = {}
        for batch, in_shape, out_dims in SAMPLER_SIZES:
            name = f"{batch} x {in_shape[0]}x{in_shape[1]}x{in_shape[2]} -> " \
                   f"{out_dims[0]}x{out_dims[1]}"
            sizes[name] = {variant: sampler_ms(module, batch, in_shape, out_dims, args.calls,
                                               "affine")
                           for variant, module in SAMPLERS.items()}
            print(name, sizes[name], flush=True)
        records.add("sampler", {"sizes": sizes, "calls": args.calls, **common.stamp()})
    if "training" in parts:
        rates = {}
        with sampler(sampler_before):
            build, config, batch = MODELS["STN + CNN"]
            rates["STN + CNN, sampler before"] = {
                "fp32": train_rate(build, config, batch, "fp32", args.steps)}
        for name, (build, config, batch) in MODELS.items():
            steps = args.steps // 4 if name.startswith("letters") else args.steps
            rates[name] = {p: train_rate(build, config, batch, p, steps)
                           for p in (("fp32", "bf16") if bf16 else ("fp32",))}
            print(name, rates[name], flush=True)
        records.add("training", {"rates": rates, "steps": args.steps, **common.stamp()})
    if "transformers" in parts:
        records.add("transformers", {"transformers": transformer_speeds(args.calls, args.steps,
                                                                        bf16),
                                     "calls": args.calls, "steps": args.steps,
                                     **common.stamp()})
    print(table(records.data))


if __name__ == "__main__":
    common.run_main(main)
