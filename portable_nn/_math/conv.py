"""Convolution and max pooling for chapter 6, written once against the Array API standard.

These pure functions are the math behind ``network3.ConvPoolLayer`` without
Theano.  They take arrays of one standard namespace (NumPy, CuPy, PyTorch,
JAX, array-api-strict, found with ``array_api_compat.array_namespace``) and
return arrays of the same namespace, dtype and device; nothing else is
imported.  No array is updated in place (JAX arrays are immutable), every new
array is created on the device of the inputs, and there is no Python control
flow on array *values* -- only on shapes -- so every function can be traced
by ``jax.jit`` unchanged.

Layout and conventions
----------------------
* Images are **NCHW**: ``x`` has shape ``(n, c, h, w)`` (mini-batch, channels,
  rows, columns); filters are ``w (f, c, kh, kw)`` as Theano's
  ``filter_shape``; biases are ``b (f,)``.
* :func:`conv_forward` is a **true "valid" convolution**, exactly Theano's
  ``conv.conv2d(x, w, border_mode="valid")`` used by the book: the kernel is
  flipped in both spatial axes,

      ``out[n, f, i, j] = sum_{c, a, b} x[n, c, i + a, j + b] * w[f, c, kh-1-a, kw-1-b]``,

  with ``oh = h - kh + 1`` and ``ow = w - kw + 1``.  Weights trained by the
  book's ``network3.py`` can therefore be used as they are.  (PyTorch's
  ``conv2d`` is a cross-correlation: ``conv_forward(x, w)`` equals
  ``torch.nn.functional.conv2d(x, w.flip((2, 3)))``.)
* :func:`im2col` gives ``patches (n, c*kh*kw, oh*ow)``: one column per output
  pixel, rows ordered ``(channel, kernel row, kernel column)`` -- the order of
  ``w.reshape(f, c*kh*kw)`` -- so a convolution is one broadcasting matmul
  with no transposes.
* :func:`maxpool_forward` has Theano's ``pool_2d(ignore_border=True)``
  semantics: non-overlapping ``ph x pw`` windows, ``oh = h // ph``,
  ``ow = w // pw``; trailing rows/columns that do not fill a window are dropped
  (and get a zero gradient).
* :func:`maxpool_backward` routes the gradient to **every** position equal to
  its window's maximum: tied maxima each receive the full upstream gradient.
  This is what Theano's ``MaxPoolGrad`` (``if maxout == x: gx += gz``) does.
  PyTorch's ``max_pool2d`` instead sends it to one position (the first), so
  the two differ only when a window has ties -- e.g. all-zero background
  patches of an MNIST digit.
* Zero padding (for :func:`col2im` and the dropped pooling border) uses
  :func:`pad_hw`, a small helper built from ``xp.zeros`` + ``xp.concat``, so the
  module needs nothing beyond ``array-api-compat``.  (``array_api_extra.pad``
  works on every backend too, but is not a dependency of the package.)

In the book a ``ConvPoolLayer`` computes ``act(maxpool(conv(x, w)) + b)``;
since ``b`` is one constant per feature map, ``maxpool(conv(x, w) + b)`` is the
same thing, and the bias gradient is the pooled delta summed over
``(0, 2, 3)`` (as ``conv_backward`` computes it from the unpooled delta).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import array_api_compat

__all__ = [
    "MaxPoolCache",
    "col2im",
    "conv_backward",
    "conv_forward",
    "conv_forward_with_patches",
    "conv_output_shape",
    "im2col",
    "maxpool_backward",
    "maxpool_forward",
    "pad_hw",
]

#: Any standard-conforming array (NumPy, CuPy, torch, JAX, array-api-strict).
Array = Any


def conv_output_shape(x_shape: tuple[int, ...], w_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``(n, f, oh, ow)`` of a valid convolution of ``x (n, c, h, w)`` with ``w (f, c, kh, kw)``.

    Raises ``ValueError`` for the wrong number of dimensions, a channel
    mismatch or a kernel larger than the image.
    """
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(f"expected x (n, c, h, w) and w (f, c, kh, kw); got shapes {x_shape} and {w_shape}")
    n, c, h, wd = x_shape
    f, cw, kh, kw = w_shape
    if c != cw:
        raise ValueError(f"x has {c} channels but the filters expect {cw} (x {x_shape}, w {w_shape})")
    if not (1 <= kh <= h and 1 <= kw <= wd):
        raise ValueError(f"kernel {kh}x{kw} does not fit in a {h}x{wd} image")
    return n, f, h - kh + 1, wd - kw + 1


def pad_hw(x: Array, top: int, bottom: int, left: int, right: int) -> Array:
    """Zero-pad the last two axes of ``x (..., h, w)`` to ``(..., top+h+bottom, left+w+right)``.

    Built from ``xp.zeros`` (on ``x``'s device, with ``x``'s dtype) and
    ``xp.concat``; pads of 0 add nothing.  Amounts must be non-negative ints.
    """
    if min(top, bottom, left, right) < 0:
        raise ValueError(f"pad amounts must be >= 0; got {(top, bottom, left, right)}")
    xp = array_api_compat.array_namespace(x)
    device = array_api_compat.device(x)
    lead = tuple(x.shape[:-2])
    h, w = x.shape[-2], x.shape[-1]
    if left or right:
        parts = []
        if left:
            parts.append(xp.zeros((*lead, h, left), dtype=x.dtype, device=device))
        parts.append(x)
        if right:
            parts.append(xp.zeros((*lead, h, right), dtype=x.dtype, device=device))
        x = xp.concat(parts, axis=-1)
        w = w + left + right
    if top or bottom:
        parts = []
        if top:
            parts.append(xp.zeros((*lead, top, w), dtype=x.dtype, device=device))
        parts.append(x)
        if bottom:
            parts.append(xp.zeros((*lead, bottom, w), dtype=x.dtype, device=device))
        x = xp.concat(parts, axis=-2)
    return x


def im2col(x: Array, kh: int, kw: int) -> Array:
    """Every ``kh x kw`` patch of ``x (n, c, h, w)`` as ``patches (n, c*kh*kw, oh*ow)``.

    ``patches[s, (ch*kh + a)*kw + b, i*ow + j] == x[s, ch, i + a, j + b]`` with
    ``oh = h - kh + 1``, ``ow = w - kw + 1``.  Built from ``kh*kw`` strided
    slices of ``x``, one ``xp.stack`` and one reshape; same dtype and device as
    ``x``.  Memory: ``kh*kw`` times the output map size per channel.
    """
    if x.ndim != 4:
        raise ValueError(f"im2col expects x of shape (n, c, h, w); got {tuple(x.shape)}")
    n, c, h, w = x.shape
    if not (1 <= kh <= h and 1 <= kw <= w):
        raise ValueError(f"kernel {kh}x{kw} does not fit in a {h}x{w} image")
    xp = array_api_compat.array_namespace(x)
    oh, ow = h - kh + 1, w - kw + 1
    slices = [x[:, :, a : a + oh, b : b + ow] for a in range(kh) for b in range(kw)]
    return xp.reshape(xp.stack(slices, axis=2), (n, c * kh * kw, oh * ow))


def col2im(cols: Array, h: int, w: int, kh: int, kw: int) -> Array:
    """The adjoint of :func:`im2col`: sum patch gradients back onto the image.

    ``cols (n, c*kh*kw, oh*ow)`` with ``oh = h - kh + 1``, ``ow = w - kw + 1``
    gives ``(n, c, h, w)``: every entry of ``cols`` is added to the pixel
    :func:`im2col` took it from.  Computed as a sum of ``kh*kw`` shifted,
    zero-padded ``(n, c, oh, ow)`` slices (:func:`pad_hw`), no scatter.
    """
    xp = array_api_compat.array_namespace(cols)
    n, k, p = cols.shape
    oh, ow = h - kh + 1, w - kw + 1
    if oh < 1 or ow < 1 or k % (kh * kw) or p != oh * ow:
        raise ValueError(f"cols of shape {tuple(cols.shape)} do not come from a {h}x{w} image with a {kh}x{kw} kernel")
    c = k // (kh * kw)
    grid = xp.reshape(cols, (n, c, kh * kw, oh, ow))
    total = None
    for a in range(kh):
        # Shift along the columns first (small (n, c, oh, w) arrays), then once along the rows.
        row = None
        for b in range(kw):
            shifted = pad_hw(grid[:, :, a * kw + b, :, :], 0, 0, b, kw - 1 - b)
            row = shifted if row is None else row + shifted
        shifted = pad_hw(row, a, kh - 1 - a, 0, 0)
        total = shifted if total is None else total + shifted
    return total


def _filter_matrix(w: Array) -> Array:
    """``w (f, c, kh, kw)`` flipped in both spatial axes, as ``(f, c*kh*kw)`` (true convolution)."""
    xp = array_api_compat.array_namespace(w)
    f, c, kh, kw = w.shape
    return xp.reshape(xp.flip(w, axis=(2, 3)), (f, c * kh * kw))


def conv_forward_with_patches(x: Array, w: Array, b: Array | None = None) -> tuple[Array, Array]:
    """:func:`conv_forward` that also returns its ``patches`` for :func:`conv_backward`.

    Returns ``(out (n, f, oh, ow), patches (n, c*kh*kw, oh*ow))``; passing the
    patches to :func:`conv_backward` saves building them a second time.
    """
    n, f, oh, ow = conv_output_shape(tuple(x.shape), tuple(w.shape))
    xp = array_api_compat.array_namespace(x, w) if b is None else array_api_compat.array_namespace(x, w, b)
    patches = im2col(x, w.shape[2], w.shape[3])
    out = xp.reshape(_filter_matrix(w) @ patches, (n, f, oh, ow))
    if b is not None:
        if tuple(b.shape) != (f,):
            raise ValueError(f"bias must have shape ({f},); got {tuple(b.shape)}")
        out = out + xp.reshape(b, (1, f, 1, 1))
    return out, patches


def conv_forward(x: Array, w: Array, b: Array | None = None) -> Array:
    """Valid true convolution (Theano ``conv2d``, kernel flipped), plus an optional bias.

    ``x (n, c, h, w)``, ``w (f, c, kh, kw)``, ``b (f,)`` or ``None`` -> ``(n, f, oh, ow)``
    with ``oh = h - kh + 1``, ``ow = w - kw + 1``::

        out[s, g, i, j] = b[g] + sum_{ch, a, b} x[s, ch, i + a, j + b] * w[g, ch, kh-1-a, kw-1-b]

    One broadcasting matmul ``(f, c*kh*kw) @ (n, c*kh*kw, oh*ow)`` per call.
    Inputs must share a floating dtype and device; the result has them too.
    """
    return conv_forward_with_patches(x, w, b)[0]


def conv_backward(
    delta: Array, x_or_patches: Array, w: Array, *, need_grad_x: bool = True
) -> tuple[Array, Array, Array | None]:
    """Gradients of a :func:`conv_forward` layer from ``delta = dL/d out (n, f, oh, ow)``.

    ``x_or_patches`` is the layer input ``x (n, c, h, w)`` or the ``patches
    (n, c*kh*kw, oh*ow)`` returned by :func:`conv_forward_with_patches`.

    Returns ``(grad_w (f, c, kh, kw), grad_b (f,), grad_x (n, c, h, w))``, all
    summed over the mini-batch (not averaged).  ``grad_x`` -- needed only when
    the layer is not the first -- is ``col2im(W^T @ delta)``; with
    ``need_grad_x=False`` it is skipped and ``None`` is returned in its place.
    """
    xp = array_api_compat.array_namespace(delta, x_or_patches, w)
    if delta.ndim != 4 or w.ndim != 4:
        raise ValueError(f"expected delta (n, f, oh, ow) and w (f, c, kh, kw); got {tuple(delta.shape)}, {w.shape}")
    n, f, oh, ow = delta.shape
    fw, c, kh, kw = w.shape
    if f != fw:
        raise ValueError(f"delta has {f} feature maps but w has {fw} filters")
    h, wd = oh + kh - 1, ow + kw - 1
    if x_or_patches.ndim == 4:
        if tuple(x_or_patches.shape) != (n, c, h, wd):
            raise ValueError(f"x has shape {tuple(x_or_patches.shape)}, expected {(n, c, h, wd)} from delta and w")
        patches = im2col(x_or_patches, kh, kw)
    else:
        patches = x_or_patches
        if tuple(patches.shape) != (n, c * kh * kw, oh * ow):
            raise ValueError(f"patches have shape {tuple(patches.shape)}, expected {(n, c * kh * kw, oh * ow)}")
    d = xp.reshape(delta, (n, f, oh * ow))
    # (n, f, P) @ (n, P, K) summed over the batch: much faster in NumPy than tensordot's copies.
    grad_w_flipped = xp.sum(d @ xp.matrix_transpose(patches), axis=0)  # (f, c*kh*kw)
    grad_w = xp.flip(xp.reshape(grad_w_flipped, (f, c, kh, kw)), axis=(2, 3))
    grad_b = xp.sum(delta, axis=(0, 2, 3))
    if not need_grad_x:
        return grad_w, grad_b, None
    cols = xp.matrix_transpose(_filter_matrix(w)) @ d  # (n, c*kh*kw, oh*ow)
    return grad_w, grad_b, col2im(cols, h, wd, kh, kw)


class MaxPoolCache(NamedTuple):
    """What :func:`maxpool_backward` needs: references to arrays, nothing recomputed.

    ``x`` is the pooling input ``(n, c, h, w)``, ``out`` its result
    ``(n, c, h // ph, w // pw)``, ``pool`` the Python ints ``(ph, pw)``.  Under
    ``jax.jit`` keep the cache inside the traced function (as a training step
    does) so ``pool`` stays static.
    """

    x: Array
    out: Array
    pool: tuple[int, int]


def _window_slices(x: Array, oh: int, ph: int, ow: int, pw: int) -> list[list[Array]]:
    """``[a][b] -> x[:, :, a::ph, b::pw]`` cut to ``(n, c, oh, ow)``: element ``(a, b)`` of every window."""
    return [[x[:, :, a : oh * ph : ph, b : ow * pw : pw] for b in range(pw)] for a in range(ph)]


def maxpool_forward(x: Array, ph: int, pw: int) -> tuple[Array, MaxPoolCache]:
    """Max over non-overlapping ``ph x pw`` windows, Theano ``pool_2d(ignore_border=True)``.

    ``x (n, c, h, w)`` -> ``(out (n, c, h // ph, w // pw), cache)``; the last
    ``h % ph`` rows and ``w % pw`` columns are ignored.  Computed as the
    elementwise ``xp.maximum`` of the ``ph*pw`` strided slices
    ``x[:, :, a::ph, b::pw]`` (in NumPy some 40x faster than ``xp.max`` over
    the two size-2 axes of a 6-D reshape); dtype and device of ``x``.
    """
    if x.ndim != 4:
        raise ValueError(f"maxpool expects x of shape (n, c, h, w); got {tuple(x.shape)}")
    h, w = x.shape[2], x.shape[3]
    if not (1 <= ph <= h and 1 <= pw <= w):
        raise ValueError(f"pool {ph}x{pw} does not fit in a {h}x{w} map")
    xp = array_api_compat.array_namespace(x)
    out = None
    for row in _window_slices(x, h // ph, ph, w // pw, pw):
        for part in row:
            out = part if out is None else xp.maximum(out, part)
    return out, MaxPoolCache(x, out, (ph, pw))


def maxpool_backward(delta: Array, cache: MaxPoolCache) -> Array:
    """Route ``delta = dL/d out (n, c, oh, ow)`` back to the pooling input: ``(n, c, h, w)``.

    Each window's gradient goes to every position holding the window's
    maximum (ties each get the full ``delta``, as Theano's ``MaxPoolGrad``);
    all other positions, and the ignored border, get 0.  The mask of slice
    ``(a, b)`` is ``x[:, :, a::ph, b::pw] == out``; the ``ph*pw`` routed slices
    are interleaved back with two ``xp.stack`` and one reshape, then the
    dropped border is zero-padded (:func:`pad_hw`).
    """
    x, out, (ph, pw) = cache
    xp = array_api_compat.array_namespace(delta, x)
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    if tuple(delta.shape) != (n, c, oh, ow):
        raise ValueError(f"delta has shape {tuple(delta.shape)}, expected {(n, c, oh, ow)}")
    rows = [
        xp.stack([xp.astype(part == out, delta.dtype) * delta for part in row], axis=-1)  # (n, c, oh, ow, pw)
        for row in _window_slices(x, oh, ph, ow, pw)
    ]
    grad = xp.reshape(xp.stack(rows, axis=3), (n, c, oh * ph, ow * pw))  # stacked (n, c, oh, ph, ow, pw)
    return pad_hw(grad, 0, h - oh * ph, 0, w - ow * pw)
