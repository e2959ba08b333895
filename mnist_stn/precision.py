"""float32 or bfloat16: the one place that builds the Session's config.

On CPUs with bfloat16 dot products (``avx512_bf16`` or ``amx_bf16`` in /proc/cpuinfo)
TensorFlow's oneDNN build can run convolutions and matrix products in bfloat16 at
about twice the float32 rate, through a graph rewrite
(``auto_mixed_precision_onednn_bfloat16``). Weights, the loss and the optimizer stay
float32; the rewrite only changes ops TF lists as safe, and this module keeps the
spatial transformer out of that list, because bfloat16's 8-bit mantissa would move a
sampling point on a 42-pixel canvas by up to 0.15 px:

- ``Reshape`` is no longer "clear" (free to follow its neighbours into bfloat16). The
  image the STN samples, theta and the sampler's output all pass through reshapes,
  so they stay float32 even where a reshape also feeds a bfloat16 convolution.
- ``AddV2`` is not converted: theta is ``matmul + [1, 0, 0, 0, 1, 0]``, and that bias
  must stay exact. (The model's other biases use ``tf.nn.bias_add``, which is.)
- ``BatchMatMul`` is not converted: the grid generator's product theta . grid is where
  the sampling points are computed.
"""
import os

from tensorflow.core.protobuf import rewriter_config_pb2

from mnist_stn.compat import tf

PRECISIONS = ("auto", "fp32", "bf16")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# Read by the rewrite when a session first runs its graph: <list>_REMOVE takes ops out.
_KEEP_FLOAT32 = {"TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_CLEARLIST_REMOVE": "Reshape",
                 "TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_REMOVE": "Add,AddV2",
                 "TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_ALLOWLIST_REMOVE":
                     "BatchMatMul,BatchMatMulV2"}


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags (empty where /proc/cpuinfo does not exist)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve(choice, flags=None):
    """'auto' -> 'bf16' if the CPU has bfloat16 dot products, else 'fp32'."""
    if choice != "auto":
        return choice
    flags = cpu_flags() if flags is None else flags
    return "bf16" if flags & set(BF16_FLAGS) else "fp32"


def describe(precision, choice):
    """The line printed at start, e.g. 'Precision: bf16 (auto: the CPU has avx512_bf16)'."""
    if choice != "auto":
        return f"Precision: {precision}"
    found = sorted(cpu_flags() & set(BF16_FLAGS))
    why = f"the CPU has {', '.join(found)}" if found else "the CPU has no bfloat16 dot products"
    return f"Precision: {precision} (auto: {why})"


def session_config(precision):
    """A ConfigProto for tf.Session: the bfloat16 rewrite on for 'bf16', else none."""
    config = tf.ConfigProto()
    if precision == "bf16":
        os.environ.update(_KEEP_FLOAT32)
        config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = \
            rewriter_config_pb2.RewriterConfig.ON
    elif precision != "fp32":
        raise ValueError(f"precision must be fp32 or bf16, not {precision!r}")
    return config
