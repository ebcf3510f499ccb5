"""resolve_backend refuses devices and dtypes that cannot compute; to_numpy copies; the index dtype."""

from __future__ import annotations

import importlib.util

import array_api_compat
import numpy as np
import pytest

from portable_nn import Network, network2, network3, resolve_backend, to_numpy
from portable_nn._backend import backends
from portable_nn._backend.backends import host_view

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")


def _chapter6(**kwargs):
    return network3.Network([network3.FullyConnectedLayer(4, 3), network3.SoftmaxLayer(3, 2)], 5, **kwargs)


BUILDERS = {
    "network": lambda **kw: Network([4, 3, 2], **kw),
    "network2": lambda **kw: network2.Network([4, 3, 2], **kw),
    "network3": _chapter6,
}


@needs_torch
@pytest.mark.parametrize("build", BUILDERS.values(), ids=BUILDERS.keys())
def test_torch_meta_device_is_refused_when_the_network_is_built(build):
    with pytest.raises(ValueError, match=r"device='meta' cannot be used with xp='torch'.*Cannot copy out of meta"):
        build(xp="torch", device="meta", dtype="float32")


@needs_torch
def test_a_cuda_device_torch_cannot_reach_is_refused():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this torch has a CUDA device")
    with pytest.raises(ValueError, match=r"(?i)device='cuda' cannot be used with xp='torch'.*cuda"):
        resolve_backend("torch", device="cuda")


@needs_torch
def test_a_dtype_the_backend_cannot_compute_in_is_refused_with_its_reason(monkeypatch):
    """A device without float64 kernels (MPS, some accelerators) is refused at build, with the library's reason."""
    xp = array_api_compat.array_namespace(importlib.import_module("torch").zeros(1))
    real_exp = xp.exp

    def exp(x):
        if x.dtype == xp.float64:
            raise RuntimeError("\"exp_vml_cpu\" not implemented for 'Double'")
        return real_exp(x)

    monkeypatch.setattr(xp, "exp", exp)
    monkeypatch.setattr(backends, "_PROBED", set())
    with pytest.raises(ValueError, match=r"dtype='float64' cannot be computed in by xp='torch'.*not implemented"):
        network2.Network([4, 3, 2], xp="torch", dtype="float64")
    network2.Network([4, 3, 2], xp="torch", dtype="float32")  # float32 computes: accepted


def test_to_numpy_copies_on_every_backend(backend):
    """Writing into ``to_numpy``'s result never changes the network's weights (NumPy and torch CPU included)."""
    net = Network([3, 4, 2], backend, seed=0)
    before = np.array(host_view(net.weights[0]), copy=True)
    host = to_numpy(net.weights[0])
    assert isinstance(host, np.ndarray) and host.flags.writeable
    host[...] = 123.0
    np.testing.assert_array_equal(host_view(net.weights[0]), before)


def test_to_numpy_of_a_numpy_array_is_a_new_array_and_host_view_is_not():
    array = np.arange(6.0).reshape(2, 3)
    copy = to_numpy(array)
    assert copy is not array and not np.shares_memory(copy, array)
    np.testing.assert_array_equal(copy, array)
    assert host_view(array) is array  # the package-internal read-only path: no copy


def test_index_dtype_is_the_namespaces_default_indexing_dtype(backend):
    expected = (
        "int32" if backend.name == "jax" and not importlib.import_module("jax").config.jax_enable_x64 else "int64"
    )
    assert backend.index_dtype == getattr(backend.xp, expected)
