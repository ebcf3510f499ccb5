"""JAX: the package never changes JAX's process-wide 64-bit mode; float64 needs the user's opt-in."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import synthetic_problem

from portable_nn import Network, network2, network3, to_numpy

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
ROOT = Path(__file__).resolve().parents[1]

FLOAT32_SESSION = textwrap.dedent(
    """
    import tempfile, warnings
    from pathlib import Path
    warnings.simplefilter("error")
    import jax, jax.numpy as jnp, numpy as np
    from portable_nn import network, network2, network3
    assert not jax.config.jax_enable_x64
    rng = np.random.default_rng(0)
    x, y = rng.random((95, 20)), rng.integers(0, 4, 95)
    out = Path(tempfile.mkdtemp())
    nets = [
        network.Network([20, 8, 4], xp="jax", dtype="float32", seed=0),
        network2.Network([20, 8, 4], xp="jax", dtype="float32", seed=0),
        network3.Network([network3.FullyConnectedLayer(20, 8), network3.SoftmaxLayer(8, 4)], 10, xp="jax", seed=0),
    ]
    nets[0].SGD((x, y), 2, 10, 3.0, test_data=(x, y))
    nets[0].update_mini_batch((x[:10], y[:10]), 1.0)
    nets[1].SGD((x, y), 2, 10, 0.5, evaluation_data=(x, y), monitor_evaluation_accuracy=True,
                monitor_evaluation_cost=True, monitor_training_cost=True, monitor_training_accuracy=True)
    nets[2].SGD((x, y), 2, 10, 0.1, (x, y), (x, y), quiet=True)
    print(nets[0].evaluate((x, y)), nets[1].accuracy((x, y)), nets[1].total_cost((x, y), 0.1))
    print(nets[2].accuracy((x, y)), nets[2].cost((x, y)), nets[2].feedforward(x).dtype)
    for i, net in enumerate(nets):
        net.save(out / f"m{i}.npz")
        assert net.backend.index_dtype == jnp.int32
    network2.load(out / "m1.npz", "jax")
    network3.load(out / "m2.npz", "jax")
    assert not jax.config.jax_enable_x64, "a float32 network switched JAX to 64-bit mode"
    assert jnp.zeros(1).dtype == jnp.float32 and jnp.arange(3).dtype == jnp.int32
    print("ok")
    """
)


def test_float32_networks_leave_jax_in_32_bit_mode():
    """Build, train, evaluate, save and load float32 JAX networks of all three chapters with 64-bit mode off."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", FLOAT32_SESSION], capture_output=True, text=True, env=env, timeout=240, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok"), proc.stdout


@pytest.mark.parametrize(
    "build",
    [
        lambda: Network([4, 3, 2], xp="jax"),  # chapters 1 and 3 default to float64
        lambda: network2.Network([4, 3, 2], xp="jax", dtype="float64"),
        lambda: network3.Network([network3.SoftmaxLayer(4, 2)], 5, xp="jax", dtype="float64"),
    ],
    ids=["network-default", "network2", "network3"],
)
def test_float64_without_64_bit_mode_is_refused_with_how_to_turn_it_on(build):
    assert not jax.config.jax_enable_x64
    with pytest.raises(ValueError, match=r"dtype='float64' with xp='jax' needs JAX's 64-bit mode") as info:
        build()
    assert 'jax.config.update("jax_enable_x64", True)' in str(info.value) and "JAX_ENABLE_X64=1" in str(info.value)
    assert not jax.config.jax_enable_x64 and jnp.zeros(1).dtype == jnp.float32


def test_loading_a_float64_file_onto_jax_needs_64_bit_mode_too(tmp_path):
    path = network2.Network([4, 3, 2], seed=0).save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="jax_enable_x64"):
        network2.load(path, "jax")
    assert network2.load(path, "jax", dtype="float32").weights[0].dtype == jnp.float32


def test_float64_with_64_bit_mode_on_trains_in_float64_and_matches_numpy():
    inputs, labels = synthetic_problem(40, n_in=6, n_out=3)
    with jax.enable_x64(True):
        net = network2.Network([6, 5, 3], xp="jax", dtype="float64", seed=0)
        net.SGD((inputs, labels), 2, 10, 0.5, quiet=True)
        assert net.weights[0].dtype == jnp.float64 and net.backend.index_dtype == jnp.int64
        weights = to_numpy(net.weights[0])
    ref = network2.Network([6, 5, 3], dtype="float64", seed=0)
    ref.SGD((inputs, labels), 2, 10, 0.5, quiet=True)
    np.testing.assert_allclose(weights, to_numpy(ref.weights[0]), rtol=1e-12, atol=1e-12)


def test_the_command_line_turns_64_bit_mode_on_for_a_float64_jax_run(mnist_dir):
    """``portable-nn`` owns its process: ``--backend jax`` (float64 by default) trains in float64."""
    args = ["train", "--backend", "jax", "--data-dir", str(mnist_dir), "--no-download", "--train-size", "500"]
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    proc = subprocess.run(
        [sys.executable, "-m", "portable_nn", *args, "--epochs", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "on jax (cpu:0), float64" in proc.stdout, proc.stdout
