"""A user's digit image made to look like an MNIST digit (NumPy and Pillow only).

MNIST's digits were made this way (LeCun et al.): the ink of a scanned digit,
white on black, its bounding box scaled to fit a 20×20 box keeping the aspect
ratio (anti-aliased, hence grey levels), then placed in a 28×28 field so that
its centre of mass lies at the field's centre (pixel 14, 14).  A network
trained on MNIST expects exactly that; a plain resize of a photo to 28×28
gives it something else (a thin, off-centre or squashed digit), and it is
confidently wrong.  :func:`read_digit_image` does, in order:

1. **Read** the file (a regular file only; decompression bombs refused),
   apply its EXIF orientation, and convert it to grey levels in [0, 1]:
   8-bit, 16-bit (``I;16``, ``I``) and float (``F``, e.g. a TIFF in [0, 1]
   or in [0, 255]) images alike; colour by luminance.  Transparency is
   composited on a background that contrasts with the ink (so a digit drawn
   only in the alpha channel, whatever its colour, stays visible).
2. **Ink**: the background level is the median of the border pixels; a light
   background is inverted, the background level subtracted and the ink
   scaled to peak at 1.
3. **Crop** to the ink's bounding box (pixels above :data:`INK_THRESHOLD`),
   **scale** it to fit 20×20 keeping the aspect ratio, and **centre** it by
   its centre of mass in 28×28.

``raw=True`` stops after step 2 and resizes the whole image to 28×28 (the
old behaviour, for images that are already MNIST-like).  The result is a
``(784,)`` float64 vector in [0, 1], white ink on black, row-major.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._base import limits
from .._base.errors import OptionalDependencyError

__all__ = ["BOX", "FIELD", "INK_THRESHOLD", "DigitImageError", "ink_image", "mnist_like", "read_digit_image"]

#: Side of the box MNIST's digits are scaled to fit.
BOX = 20
#: Side of MNIST's images.
FIELD = 28
#: Ink level (of 1) above which a pixel counts for the bounding box.
INK_THRESHOLD = 0.2
#: Longest side an image is reduced to before any float copy is made (bounds memory for large photos).
WORKING_SIDE = 1024


class DigitImageError(ValueError):
    """A file cannot be read as a digit image; the message starts with its path and says why."""


def _pillow() -> Any:
    try:
        from PIL import Image, ImageOps
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "PIL":
            raise  # Pillow is there but broken: a bug to show, not a missing extra
        raise OptionalDependencyError('predict needs Pillow: pip install "portable-nn[images]"') from exc
    return Image, ImageOps


def _reduced(image: Any, image_module: Any) -> Any:
    side = max(image.size)
    if side <= WORKING_SIDE:
        return image
    scale = WORKING_SIDE / side
    size = (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale)))
    return image.resize(size, image_module.Resampling.BOX)


def _grey_and_alpha(image: Any, image_module: Any, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Grey levels in [0, 1] ``(h, w)`` float64, and the alpha channel in [0, 1] (``None`` if opaque)."""
    if image.mode in ("F", "I", "I;16", "I;16B", "I;16L", "I;16N"):
        grey = np.asarray(_reduced(image.convert("F"), image_module), dtype=np.float64)
        if not np.all(np.isfinite(grey)):
            raise DigitImageError(f"{path}: the image holds NaN or infinite values")
        low, high = float(grey.min()), float(grey.max())
        if low < 0:
            raise DigitImageError(f"{path}: negative pixel values ({low:g}); expected grey levels >= 0")
        full = 1.0 if high <= 1.0 else 255.0 if high <= 255.0 and image.mode == "F" else 65535.0
        if high > full:
            raise DigitImageError(f"{path}: pixel values up to {high:g}; expected at most 65535")
        return grey / full, None
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if not has_alpha:
        return np.asarray(_reduced(image.convert("L"), image_module), dtype=np.float64) / 255.0, None
    rgba = np.asarray(_reduced(image.convert("RGBA"), image_module), dtype=np.float64) / 255.0
    grey = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])
    alpha = rgba[..., 3]
    return grey, (None if np.all(alpha == 1.0) else alpha)


def _composite(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``grey`` over a background contrasting with its opaque pixels (white under dark ink, black under light)."""
    weight = float(alpha.sum())
    ink_grey = float((grey * alpha).sum() / weight) if weight > 0 else 0.0
    background = 1.0 if ink_grey < 0.5 else 0.0
    image: np.ndarray = alpha * grey + (1.0 - alpha) * background
    return image


def _open(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    image_module, image_ops = _pillow()
    limits.stat_regular_file(path, "an image file", DigitImageError)
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse those too.
            warnings.simplefilter("error", image_module.DecompressionBombWarning)
            with image_module.open(path) as image:
                oriented = image_ops.exif_transpose(image)
                return _grey_and_alpha(oriented, image_module, path)
    except (image_module.DecompressionBombError, image_module.DecompressionBombWarning) as exc:
        raise DigitImageError(
            f"{path}: refused, the image is too large ({exc}); a digit image needs only 28x28 pixels"
        ) from exc
    except DigitImageError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:  # UnidentifiedImageError is an OSError
        raise DigitImageError(f"{path}: cannot read the image ({exc})") from exc


def ink_image(grey: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """Ink levels ``(h, w)`` in [0, 1], white on black, from grey levels (and an alpha channel) in [0, 1].

    The background is the median of the border pixels: inverted when light,
    subtracted, and the ink scaled to peak at 1 (an image without ink is all 0).
    """
    if alpha is not None:
        grey = _composite(grey, alpha)
    border = np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])
    level = float(np.median(border))
    ink = (1.0 - grey) if level > 0.5 else grey
    ink = np.clip(ink - min(level, 1.0 - level), 0.0, None)
    peak = float(ink.max())
    return ink / peak if peak > 0 else ink


def _resize(ink: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``ink`` resized to ``size`` = (width, height), anti-aliased, clipped to [0, 1]."""
    image_module, _ = _pillow()
    image = image_module.fromarray(ink.astype(np.float32), mode="F")
    return np.clip(np.asarray(image.resize(size, image_module.Resampling.LANCZOS), dtype=np.float64), 0.0, 1.0)


def mnist_like(ink: np.ndarray) -> np.ndarray:
    """``(28, 28)`` float64: ``ink``'s bounding box scaled to fit 20×20 and centred by mass, as MNIST's digits.

    Raises :class:`DigitImageError` when there is no ink at all.
    """
    rows, cols = np.nonzero(ink > INK_THRESHOLD)
    if rows.size == 0:
        raise DigitImageError("no digit found: the image is blank (no pixel differs from the background)")
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    height, width = crop.shape
    scale = BOX / max(height, width)
    digit = _resize(crop, (max(1, round(width * scale)), max(1, round(height * scale))))
    mass = float(digit.sum())
    ys, xs = np.indices(digit.shape)
    cy, cx = (float((ys * digit).sum() / mass), float((xs * digit).sum() / mass)) if mass > 0 else (0.0, 0.0)
    top = int(np.clip(round(FIELD / 2 - cy), 0, FIELD - digit.shape[0]))
    left = int(np.clip(round(FIELD / 2 - cx), 0, FIELD - digit.shape[1]))
    field = np.zeros((FIELD, FIELD))
    field[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    return field


def read_digit_image(path: str | os.PathLike[str], *, raw: bool = False) -> np.ndarray:
    """An image file as a ``(784,)`` float64 vector in [0, 1] in MNIST's style (white digit on black, centred).

    See the module docstring for the steps; ``raw=True`` resizes the ink
    image to 28×28 without cropping or centring.  Raises
    :class:`DigitImageError` naming the file (not an image, not a regular
    file, too large, blank, out-of-range values) and
    :class:`portable_nn._base.errors.OptionalDependencyError` without Pillow.
    """
    path = Path(path)
    ink = ink_image(*_open(path))
    if raw:
        fitted = ink if ink.shape == (FIELD, FIELD) else _resize(ink, (FIELD, FIELD))
        return fitted.reshape(FIELD * FIELD)
    try:
        return mnist_like(ink).reshape(FIELD * FIELD)
    except DigitImageError as exc:
        raise DigitImageError(f"{path}: {exc}") from exc
