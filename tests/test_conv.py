"""portable_nn._math.conv: Theano-semantics convolution and max pooling on every backend.

References are plain NumPy with explicit Python loops written from the
definitions (true convolution, ``pool_2d(ignore_border=True)``, Theano's
``MaxPoolGrad``), checked in turn against ``scipy.signal.convolve2d``.
Gradients are checked against central finite differences of the forward pass.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers import PARITY_TOL, assert_close

from portable_nn import to_numpy
from portable_nn._math.conv import (
    col2im,
    conv_backward,
    conv_forward,
    conv_forward_with_patches,
    conv_output_shape,
    im2col,
    maxpool_backward,
    maxpool_forward,
    pad_hw,
)

#: (n, c, h, w, f, kh, kw): c = 1 and c > 1, n = 1 and n > 1, square and
#: non-square kernels, a 1x1 kernel and a kernel as large as the image.
CONV_SHAPES = [
    (2, 3, 7, 6, 4, 3, 2),
    (3, 2, 6, 8, 2, 1, 4),
    (2, 1, 4, 5, 3, 4, 5),
    (1, 2, 3, 3, 2, 1, 1),
]

#: (n, c, h, w, ph, pw): even, odd (ignore_border drops rows/columns), 1x1 and whole-map pools.
POOL_SHAPES = [
    (2, 3, 4, 6, 2, 2),
    (1, 2, 5, 7, 2, 2),
    (2, 1, 7, 5, 3, 2),
    (1, 2, 3, 4, 1, 1),
    (2, 2, 5, 3, 5, 3),
]

DTYPES = ("float64", "float32")


def _ids(shapes):
    return ["x".join(map(str, s)) for s in shapes]


def _grid(shapes):
    """``(shape, dtype)``: float64 for every shape, float32 for the first (JAX compiles per shape)."""
    cases = [(shape, "float64") for shape in shapes] + [(shapes[0], "float32")]
    return [pytest.param(shape, dtype, id=f"{_ids([shape])[0]}-{dtype}") for shape, dtype in cases]


def _random(shape, seed, dtype="float64"):
    """Standard normal values, rounded to ``dtype`` and returned as float64 NumPy."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype).astype(np.float64)


# -- loop references --------------------------------------------------------------------------
def ref_conv2d(x, w, b=None):
    """Theano ``conv2d(border_mode='valid')`` from the definition of convolution.

    ``(x * k)[p', q'] = sum_{p, q} x[p, q] k[p' - p, q' - q]``, kept where the
    kernel lies fully inside the image (``p' in [kh-1, h-1]``).
    """
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh, ow = h - kh + 1, wd - kw + 1
    out = np.zeros((n, f, oh, ow))
    for s, g, i, j in itertools.product(range(n), range(f), range(oh), range(ow)):
        total = 0.0 if b is None else b[g]
        full_i, full_j = i + kh - 1, j + kw - 1
        for ch in range(c):
            for p in range(full_i - kh + 1, full_i + 1):
                for q in range(full_j - kw + 1, full_j + 1):
                    total += x[s, ch, p, q] * w[g, ch, full_i - p, full_j - q]
        out[s, g, i, j] = total
    return out


def ref_im2col(x, kh, kw):
    n, c, h, wd = x.shape
    oh, ow = h - kh + 1, wd - kw + 1
    out = np.zeros((n, c * kh * kw, oh * ow))
    for s, ch, a, b, i, j in itertools.product(range(n), range(c), range(kh), range(kw), range(oh), range(ow)):
        out[s, (ch * kh + a) * kw + b, i * ow + j] = x[s, ch, i + a, j + b]
    return out


def ref_maxpool(x, ph, pw):
    n, c, h, wd = x.shape
    oh, ow = h // ph, wd // pw
    out = np.zeros((n, c, oh, ow))
    for s, ch, i, j in itertools.product(range(n), range(c), range(oh), range(ow)):
        best = -np.inf
        for p in range(i * ph, (i + 1) * ph):
            for q in range(j * pw, (j + 1) * pw):
                best = max(best, x[s, ch, p, q])
        out[s, ch, i, j] = best
    return out


def ref_maxpool_grad(x, ph, pw, delta):
    """Theano ``MaxPoolGrad.perform``: ``if maxout == x: gx += gz`` -- every tie gets the gradient."""
    maxout = ref_maxpool(x, ph, pw)
    gx = np.zeros_like(x)
    n, c, oh, ow = maxout.shape
    for s, ch, i, j in itertools.product(range(n), range(c), range(oh), range(ow)):
        for p in range(i * ph, (i + 1) * ph):
            for q in range(j * pw, (j + 1) * pw):
                if x[s, ch, p, q] == maxout[s, ch, i, j]:
                    gx[s, ch, p, q] += delta[s, ch, i, j]
    return gx


def run(backend, fn, *arrays, **options):
    """``fn(*arrays, **options)``; for JAX traced by ``jax.jit``.

    Every function must be traceable anyway, and one compilation per shape is
    far quicker than JAX's eager mode compiling each small op separately.
    Only arrays (and tuples of them) come back from a jitted call.
    """
    if backend.name == "jax":
        import jax

        return jax.jit(lambda *a: fn(*a, **options))(*arrays)
    return fn(*arrays, **options)


def numeric_grad(loss, arrays, name, h=1e-6):
    """Central differences of the host scalar ``loss(**arrays)`` with respect to ``arrays[name]``."""
    arrays = {k: v.copy() for k, v in arrays.items()}
    param = arrays[name]
    grad = np.zeros_like(param)
    for idx in np.ndindex(param.shape):
        saved = param[idx]
        param[idx] = saved + h
        plus = loss(**arrays)
        param[idx] = saved - h
        minus = loss(**arrays)
        param[idx] = saved
        grad[idx] = (plus - minus) / (2 * h)
    return grad


# -- the references themselves ----------------------------------------------------------------
@pytest.mark.parametrize("shape", CONV_SHAPES, ids=_ids(CONV_SHAPES))
def test_loop_reference_is_true_convolution(shape):
    """The loop reference equals scipy.signal.convolve2d(mode='valid') summed over channels."""
    signal = pytest.importorskip("scipy.signal")
    n, c, h, w, f, kh, kw = shape
    x, k = _random((n, c, h, w), 1), _random((f, c, kh, kw), 2)
    expected = np.array(
        [
            [sum(signal.convolve2d(x[s, ch], k[g, ch], mode="valid") for ch in range(c)) for g in range(f)]
            for s in range(n)
        ]
    )
    np.testing.assert_allclose(ref_conv2d(x, k), expected, rtol=1e-12, atol=1e-12)


# -- forward ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("shape", "dtype"), _grid(CONV_SHAPES))
def test_conv_forward_and_im2col_match_theano_conv2d_loops(backend, shape, dtype):
    n, c, h, w, f, kh, kw = shape
    x, k, b = _random((n, c, h, w), 4, dtype), _random((f, c, kh, kw), 5, dtype), _random((f,), 6, dtype)
    assert conv_output_shape(x.shape, k.shape) == (n, f, h - kh + 1, w - kw + 1)
    dt = backend.dtype(dtype)
    no_bias, with_bias, patches = run(
        backend,
        lambda x, k, b: (conv_forward(x, k), *conv_forward_with_patches(x, k, b)),
        *(backend.asarray(a, dt) for a in (x, k, b)),
    )
    assert_close(no_bias, ref_conv2d(x, k), backend, dtype)
    assert_close(with_bias, ref_conv2d(x, k, b), backend, dtype)
    assert_close(patches, ref_im2col(x, kh, kw), backend, dtype, tol=0.0)
    assert_close(run(backend, im2col, backend.asarray(x, dt), kh=kh, kw=kw), ref_im2col(x, kh, kw), backend, dtype, 0.0)


def test_conv_forward_is_torch_cross_correlation_with_flipped_kernel():
    """Documented convention: conv_forward(x, w) == torch conv2d(x, w.flip(2, 3)), and != conv2d(x, w)."""
    torch = pytest.importorskip("torch")
    x, k, b = _random((2, 3, 8, 7), 7), _random((4, 3, 3, 2), 8), _random((4,), 9)
    ours = conv_forward(x, k, b)
    flipped = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(k).flip((2, 3)), torch.tensor(b)).numpy()
    np.testing.assert_allclose(ours, flipped, rtol=1e-12, atol=1e-12)
    plain = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(k), torch.tensor(b)).numpy()
    assert np.max(np.abs(ours - plain)) > 0.1


@pytest.mark.parametrize(("shape", "dtype"), _grid(POOL_SHAPES))
def test_maxpool_forward_matches_loops_ignore_border(backend, shape, dtype):
    n, c, h, w, ph, pw = shape
    x = _random((n, c, h, w), 10, dtype)
    out = run(backend, lambda x: maxpool_forward(x, ph, pw)[0], backend.asarray(x, backend.dtype(dtype)))
    assert tuple(out.shape) == (n, c, h // ph, w // pw)
    assert_close(out, ref_maxpool(x, ph, pw), backend, dtype, tol=0.0)


# -- adjoints and padding ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_pad_hw_matches_numpy_pad(backend, dtype):
    x = _random((2, 3, 4, 5), 11, dtype)
    xb = backend.asarray(x, backend.dtype(dtype))
    all_pads = [(0, 0, 0, 0), (1, 0, 0, 2), (0, 3, 1, 0), (2, 1, 3, 4)]
    padded = run(backend, lambda x: tuple(pad_hw(x, *pads) for pads in all_pads), xb)
    for (top, bottom, left, right), got in zip(all_pads, padded):
        assert_close(got, np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))), backend, dtype, tol=0.0)
    with pytest.raises(ValueError, match=">= 0"):
        pad_hw(xb, -1, 0, 0, 0)


@pytest.mark.parametrize("shape", CONV_SHAPES, ids=_ids(CONV_SHAPES))
def test_col2im_is_the_adjoint_of_im2col(backend, shape):
    """<im2col(x), P> == <x, col2im(P)> for random x and P, and col2im matches a loop scatter-add."""
    n, c, h, w, _, kh, kw = shape
    x = _random((n, c, h, w), 12)
    cols = _random((n, c * kh * kw, (h - kh + 1) * (w - kw + 1)), 13)
    back = run(backend, col2im, backend.asarray(cols, backend.xp.float64), h=h, w=w, kh=kh, kw=kw)
    expected = np.zeros_like(x)
    ow = w - kw + 1
    for s, ch, a, b, i, j in itertools.product(
        range(n), range(c), range(kh), range(kw), range(h - kh + 1), range(w - kw + 1)
    ):
        expected[s, ch, i + a, j + b] += cols[s, (ch * kh + a) * kw + b, i * ow + j]
    assert_close(back, expected, backend, "float64")
    lhs = float(np.sum(ref_im2col(x, kh, kw) * cols))
    rhs = float(np.sum(x * to_numpy(back)))
    assert lhs == pytest.approx(rhs, rel=1e-12)


# -- gradients --------------------------------------------------------------------------------
def ref_conv_grads(x, k, delta):
    """Loop reference for the gradients of ``sum(conv(x, k, b) * delta)``."""
    n, c = x.shape[:2]
    f, _, kh, kw = k.shape
    _, _, oh, ow = delta.shape
    gw, gx = np.zeros_like(k), np.zeros_like(x)
    for s, g, i, j, ch, a, b in itertools.product(
        range(n), range(f), range(oh), range(ow), range(c), range(kh), range(kw)
    ):
        gw[g, ch, kh - 1 - a, kw - 1 - b] += delta[s, g, i, j] * x[s, ch, i + a, j + b]
        gx[s, ch, i + a, j + b] += delta[s, g, i, j] * k[g, ch, kh - 1 - a, kw - 1 - b]
    return gw, delta.sum(axis=(0, 2, 3)), gx


@pytest.mark.parametrize(("shape", "dtype"), _grid(CONV_SHAPES))
def test_conv_backward_matches_loops(backend, shape, dtype):
    """grad_w, grad_b, grad_x from x or from the patches, against loops (parity within PARITY_TOL)."""
    n, c, h, w, f, kh, kw = shape
    x, k = _random((n, c, h, w), 14, dtype), _random((f, c, kh, kw), 15, dtype)
    delta = _random((n, f, h - kh + 1, w - kw + 1), 16, dtype)
    dt = backend.dtype(dtype)
    xb, kb, db = (backend.asarray(a, dt) for a in (x, k, delta))
    expected = ref_conv_grads(x, k, delta)

    def both_ways(d, x, k):
        from_patches = conv_backward(d, im2col(x, kh, kw), k, need_grad_x=False)
        assert from_patches[2] is None
        return (*conv_backward(d, x, k), *from_patches[:2])

    grads = run(backend, both_ways, db, xb, kb)
    for got, want in zip(grads, (*expected, *expected[:2])):
        assert_close(got, want, backend, dtype)


def test_conv_backward_matches_finite_differences(backend):
    """d/d(w, b, x) of L = sum(conv_forward(x, w, b) * R), float64, tiny shapes."""
    arrays = {"x": _random((2, 2, 5, 4), 17), "k": _random((3, 2, 3, 2), 18), "b": _random((3,), 19)}
    r = _random((2, 3, 3, 3), 20)

    def loss(x, k, b):
        return float(np.sum(conv_forward(x, k, b) * r))

    dt = backend.xp.float64
    grads = conv_backward(backend.asarray(r, dt), backend.asarray(arrays["x"], dt), backend.asarray(arrays["k"], dt))
    for got, name in zip(grads, ("k", "b", "x")):
        assert_close(got, numeric_grad(loss, arrays, name), backend, "float64", tol=1e-7)


def test_maxpool_backward_matches_finite_differences(backend):
    """d/dx of L = sum(maxpool(x) * R) on random inputs (no ties), odd sizes so a border is dropped."""
    arrays = {"x": _random((2, 2, 5, 7), 21)}
    r = _random((2, 2, 2, 3), 22)

    def loss(x):
        return float(np.sum(maxpool_forward(x, 2, 2)[0] * r))

    dt = backend.xp.float64
    _, cache = maxpool_forward(backend.asarray(arrays["x"], dt), 2, 2)
    grad = maxpool_backward(backend.asarray(r, dt), cache)
    expected = numeric_grad(loss, arrays, "x")
    assert_close(grad, expected, backend, "float64", tol=1e-7)
    assert np.count_nonzero(expected) == r.size  # one winner per window, border untouched


@pytest.mark.parametrize(("shape", "dtype"), _grid(POOL_SHAPES))
def test_maxpool_backward_matches_theano_with_ties(backend, shape, dtype):
    """Small integers make many ties; every tied maximum gets the full gradient, like MaxPoolGrad."""
    n, c, h, w, ph, pw = shape
    x = np.random.default_rng(23).integers(0, 3, size=(n, c, h, w)).astype(np.float64)
    delta = _random((n, c, h // ph, w // pw), 24, dtype)
    dt = backend.dtype(dtype)
    grad = run(
        backend,
        lambda x, d: maxpool_backward(d, maxpool_forward(x, ph, pw)[1]),
        *(backend.asarray(a, dt) for a in (x, delta)),
    )
    assert_close(grad, ref_maxpool_grad(x, ph, pw, delta), backend, dtype)


def test_maxpool_backward_ties_each_get_the_full_gradient(backend):
    x = np.array([[[[1.0, 3.0, 0.0, 0.0, 9.0], [3.0, 2.0, 0.0, 0.0, 9.0], [9.0, 9.0, 9.0, 9.0, 9.0]]]])
    delta = np.array([[[[10.0, 5.0]]]])
    dt = backend.xp.float64
    xb = backend.asarray(x, dt)
    out, cache = maxpool_forward(xb, 2, 2)
    assert cache.pool == (2, 2) and cache.x is xb and cache.out is out
    assert_close(out, np.array([[[[3.0, 0.0]]]]), backend, "float64", tol=0.0)
    expected = np.array([[[[0.0, 10.0, 5.0, 5.0, 0.0], [10.0, 0.0, 5.0, 5.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]]]])
    assert_close(maxpool_backward(backend.asarray(delta, dt), cache), expected, backend, "float64", tol=0.0)


def test_conv_pool_layer_chain_matches_finite_differences(backend):
    """The book's ConvPoolLayer, tanh(maxpool(conv(x, w)) + b), differentiated through all three functions."""
    arrays = {"x": _random((2, 2, 7, 6), 25), "k": _random((3, 2, 3, 2), 26), "b": _random((3,), 27)}
    r = _random((2, 3, 2, 2), 28)

    def loss(x, k, b):
        pooled = maxpool_forward(conv_forward(x, k), 2, 2)[0]
        return float(np.sum(np.tanh(pooled + b.reshape(1, -1, 1, 1)) * r))

    xp, dt = backend.xp, backend.xp.float64
    x, k, b = (backend.asarray(arrays[name], dt) for name in ("x", "k", "b"))
    rb = backend.asarray(r, dt)
    conv_out, patches = conv_forward_with_patches(x, k)
    pooled, cache = maxpool_forward(conv_out, 2, 2)
    act = xp.tanh(pooled + xp.reshape(b, (1, 3, 1, 1)))
    delta_pooled = rb * (1.0 - act * act)
    grad_b = xp.sum(delta_pooled, axis=(0, 2, 3))
    grad_k, grad_b_unpooled, _ = conv_backward(maxpool_backward(delta_pooled, cache), patches, k, need_grad_x=False)
    grad_x = conv_backward(maxpool_backward(delta_pooled, cache), x, k)[2]
    assert_close(grad_b_unpooled, to_numpy(grad_b), backend, "float64")
    for got, name in ((grad_k, "k"), (grad_b, "b"), (grad_x, "x")):
        assert_close(got, numeric_grad(loss, arrays, name), backend, "float64", tol=1e-7)


# -- parity with NumPy on a realistic layer ------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_first_book_layer_parity_with_numpy(backend, dtype):
    """20 5x5 filters on 28x28 images and 2x2 pooling: every output equals the NumPy backend's."""
    x, k = _random((3, 1, 28, 28), 29, dtype), _random((20, 1, 5, 5), 30, dtype)
    delta = _random((3, 20, 12, 12), 31, dtype)

    def layer(x, k, delta):
        out, patches = conv_forward_with_patches(x, k)
        pooled, cache = maxpool_forward(out, 2, 2)
        return (out, pooled, *conv_backward(maxpool_backward(delta, cache), patches, k))

    expected = layer(x, k, delta)  # NumPy float64 on the same (dtype-rounded) values
    dt = backend.dtype(dtype)
    got = run(backend, layer, *(backend.asarray(a, dt) for a in (x, k, delta)))
    for g, e in zip(got, expected):
        assert_close(g, e, backend, dtype, tol=PARITY_TOL[dtype] * 10)


def test_jax_jit_traces_the_whole_layer():
    """No value-dependent control flow or host syncs: jax.jit of forward + backward equals NumPy."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    x, k, b = _random((2, 2, 9, 8), 32, "float32"), _random((3, 2, 3, 2), 33, "float32"), _random((3,), 34, "float32")
    r = _random((2, 3, 3, 3), 35, "float32")

    def step(x, k, b, r):
        out, patches = conv_forward_with_patches(x, k, b)
        pooled, cache = maxpool_forward(out, 2, 2)
        return (pooled, *conv_backward(maxpool_backward(r, cache), patches, k))

    got = jax.jit(step)(*(jnp.asarray(a, dtype=jnp.float32) for a in (x, k, b, r)))
    want = step(x, k, b, r)
    for g, e in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), e, rtol=1e-4, atol=1e-4)


# -- errors -----------------------------------------------------------------------------------
def test_shape_errors_are_clear():
    x, k = np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3))
    with pytest.raises(ValueError, match="channels"):
        conv_forward(x, np.zeros((4, 2, 3, 3)))
    with pytest.raises(ValueError, match="does not fit"):
        conv_forward(x, np.zeros((4, 3, 6, 3)))
    with pytest.raises(ValueError, match="bias"):
        conv_forward(x, k, np.zeros(3))
    with pytest.raises(ValueError, match=r"\(n, c, h, w\)"):
        im2col(np.zeros((5, 5)), 2, 2)
    with pytest.raises(ValueError, match="expected"):
        conv_backward(np.zeros((2, 4, 3, 3)), np.zeros((2, 3, 6, 5)), k)
    with pytest.raises(ValueError, match="patches"):
        conv_backward(np.zeros((2, 4, 3, 3)), np.zeros((2, 27, 8)), k)
    with pytest.raises(ValueError, match="filters"):
        conv_backward(np.zeros((2, 5, 3, 3)), x, k)
    with pytest.raises(ValueError, match="does not fit"):
        maxpool_forward(x, 6, 1)
    _, cache = maxpool_forward(x, 2, 2)
    with pytest.raises(ValueError, match="delta"):
        maxpool_backward(np.zeros((2, 3, 3, 2)), cache)
    with pytest.raises(ValueError, match="cols"):
        col2im(np.zeros((2, 10, 9)), 5, 5, 3, 3)
