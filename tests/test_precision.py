"""bfloat16 where the CPU has it: chosen from the CPU's flags, and never in the sampler."""
import numpy as np
import pytest

import model
from mnist_stn import precision
from mnist_stn.compat import tf


def test_auto_picks_bf16_only_where_the_cpu_has_it():
    assert precision.resolve("auto", flags={"avx2", "avx512_bf16"}) == "bf16"
    assert precision.resolve("auto", flags={"amx_bf16"}) == "bf16"
    assert precision.resolve("auto", flags={"avx2", "avx512f"}) == "fp32"
    assert precision.resolve("fp32", flags={"avx512_bf16"}) == "fp32"
    assert precision.resolve("bf16", flags=set()) == "bf16"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512_bf16\n")
    assert precision.cpu_flags(str(cpuinfo)) == {"fpu", "sse2", "avx512_bf16"}
    assert precision.cpu_flags(str(tmp_path / "missing")) == set()


def test_session_config_turns_the_rewrite_on_for_bf16_only():
    on = precision.session_config("bf16").graph_options.rewrite_options
    off = precision.session_config("fp32").graph_options.rewrite_options
    assert on.auto_mixed_precision_onednn_bfloat16 == 1          # RewriterConfig.ON
    assert off.auto_mixed_precision_onednn_bfloat16 == 0         # DEFAULT: off
    with pytest.raises(ValueError):
        precision.session_config("auto")


def stn_outputs(config, thetas, size, session_precision):
    """The STN's output for random canvases, theta set through the loc head's bias."""
    batch = np.random.RandomState(0).rand(len(thetas), size * size).astype(np.float32)
    outs = []
    for theta in thetas:
        with tf.Graph().as_default():
            tf.set_random_seed(0)
            g = model.build_graph({**config, "image_size": size})
            bias = [v for v in tf.global_variables() if v.name == "loc_layer_4/bias:0"][0]
            with tf.Session(config=precision.session_config(session_precision)) as sess:
                sess.run(tf.global_variables_initializer())
                sess.run(bias.assign(theta))
                outs.append(sess.run(g["rectified"], {g["images"]: batch}))
    return batch, outs


@pytest.mark.parametrize("size", [28, 42])
def test_bf16_identity_stn_returns_its_input(size):
    # on 28x28 the identity returns the input; a 42x42 canvas is resampled to 28x28,
    # exactly as in float32
    identity = np.array([1, 0, 0, 0, 1, 0], np.float32)
    config = {"stn": True, "loc_head": "identity", "loc_start_scale": 1.0, "transform": "affine"}
    batch, (bf16,) = stn_outputs(config, [identity], size, "bf16")
    _, (fp32,) = stn_outputs(config, [identity], size, "fp32")
    np.testing.assert_allclose(bf16, fp32, atol=1e-5, rtol=0)
    if size == 28:
        np.testing.assert_allclose(bf16.reshape(len(batch), -1), batch, atol=1e-5, rtol=0)


def test_bf16_leaves_theta_and_the_sampler_in_float32():
    # a rotated, zoomed, shifted theta: the STN's output under the rewrite equals the
    # float32 one (a bfloat16 theta or bfloat16 coordinates would move it by ~0.02)
    a = np.radians(30)
    theta = np.array([0.8 * np.cos(a), -np.sin(a), 0.1, np.sin(a), 0.9 * np.cos(a), -0.05],
                     np.float32)
    config = {"stn": True, "loc_head": "identity", "loc_start_scale": 1.0, "transform": "affine"}
    _, (fp32,) = stn_outputs(config, [theta], 42, "fp32")
    _, (bf16,) = stn_outputs(config, [theta], 42, "bf16")
    np.testing.assert_allclose(bf16, fp32, atol=1e-5, rtol=0)
