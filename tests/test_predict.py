"""``portable-nn predict`` the MNIST way (issue 18 point 4, issue 17 class 18).

Digits are made in the test: MNIST test digits enlarged and put off-centre on
a light 300×100 "photo", thick strokes drawn with Pillow, digits typed with
Pillow's font, and the same digit as RGBA with the ink only in the alpha
channel, 16-bit PNG, float TIFF in [0, 1] and EXIF-rotated JPEG.  The
preprocessing is checked against MNIST's own statistics (ink in a box of at
most 20×20, centre of mass at pixel (14, 14), white on black, peak 1) and
end to end through the console script on a network trained here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from portable_nn import network2
from portable_nn._data.digits import DigitImageError, read_digit_image
from portable_nn._data.forms import Dataset
from portable_nn._data.mnist import load_mnist

Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")
ImageFont = pytest.importorskip("PIL.ImageFont")

PREDICTION = re.compile(r"^(?P<path>.+): (?P<k>\d) \(score (?P<score>[\d.]+), activation [\d.]+; then (?P<rest>.+)\)$")


# -- what MNIST's digits look like ------------------------------------------------------------------------
def assert_mnist_like(vector: np.ndarray) -> None:
    """White ink on black, peak 1, ink inside a box of at most 20×20, centre of mass at (14, 14) within a pixel."""
    assert vector.shape == (784,) and vector.dtype == np.float64
    image = vector.reshape(28, 28)
    assert 0.0 <= image.min() and image.max() == pytest.approx(1.0, abs=0.05)
    rows, cols = np.nonzero(image > 0)
    assert rows.max() - rows.min() + 1 <= 20 and cols.max() - cols.min() + 1 <= 20, (rows, cols)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 >= 18, "the digit should fill the 20x20 box"
    ys, xs = np.indices(image.shape)
    centre = ((ys * image).sum() / image.sum(), (xs * image).sum() / image.sum())
    assert np.allclose(centre, (14.0, 14.0), atol=1.0), centre


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    _, (images, labels) = load_mnist(mnist_dir, download=False, dtype="uint8")
    return images[:40].reshape(-1, 28, 28), labels[:40]


def photo(digit28: np.ndarray, scale: int = 4, offset: tuple[int, int] = (190, 0)) -> Image.Image:
    """An MNIST digit enlarged ``scale`` times, dark on a light 300×(28·scale) background, off-centre."""
    big = Image.fromarray(255 - digit28).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    canvas = Image.new("L", (300, max(100, 28 * scale)), 235)
    canvas.paste(big, offset)
    return canvas


def _stroke_digit() -> Image.Image:
    """A thick hand-drawn 7 on a 400×400 white sheet, in its upper-left part."""
    sheet = Image.new("L", (400, 400), 255)
    draw = ImageDraw.Draw(sheet)
    draw.line([(40, 40), (220, 40), (110, 300)], fill=0, width=28, joint="curve")
    return sheet


def _typed_digit(text: str = "7") -> Image.Image:
    sheet = Image.new("L", (220, 160), 255)
    ImageDraw.Draw(sheet).text((120, 10), text, fill=0, font=ImageFont.load_default(size=120))
    return sheet


# -- preprocessing -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda d: photo(d[0]), lambda d: photo(d[1], scale=10, offset=(0, 0)),
                                  lambda d: _stroke_digit(), lambda d: _typed_digit()],
                         ids=["off-centre", "large", "thick-strokes", "typed"])  # fmt: skip
def test_preprocessing_gives_mnist_statistics(tmp_path, mnist_test, make):
    path = tmp_path / "digit.png"
    make(mnist_test[0]).save(path)
    assert_mnist_like(read_digit_image(path))


def test_an_mnist_digit_stays_close_to_itself(tmp_path, mnist_test):
    """Re-centring a real MNIST digit changes it little (it was made this way)."""
    digit = mnist_test[0][0]
    path = tmp_path / "mnist.png"
    Image.fromarray(digit).save(path)
    vector = read_digit_image(path)
    assert_mnist_like(vector)
    assert np.abs(vector - digit.reshape(784) / 255.0).mean() < 0.05
    assert np.array_equal(read_digit_image(path, raw=True), digit.reshape(784) / 255.0)


def _forms(digit: Image.Image, directory: Path) -> dict[str, Path]:
    """The same digit (dark ink on light, mode L) saved in the forms that predict used to get wrong."""
    ink = 255 - np.asarray(digit, dtype=np.uint8)
    paths = {name: directory / name for name in ("l.png", "rgba-black.png", "rgba-white.png", "16bit.png",
                                                 "float.tif", "float255.tif", "exif.jpg", "la.png")}  # fmt: skip
    digit.save(paths["l.png"])
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
    rgba[..., 3] = ink  # the digit only in the alpha channel, on transparent pixels
    Image.fromarray(rgba, "RGBA").save(paths["rgba-black.png"])
    rgba[..., :3] = 255  # white ink, drawn only by its alpha
    Image.fromarray(rgba, "RGBA").save(paths["rgba-white.png"])
    Image.fromarray(np.asarray(digit, dtype=np.uint16) * 257).save(paths["16bit.png"])
    Image.fromarray(np.asarray(digit, dtype=np.float32) / 255.0, "F").save(paths["float.tif"])
    Image.fromarray(np.asarray(digit, dtype=np.float32), "F").save(paths["float255.tif"])
    la = np.stack([np.zeros_like(ink), ink], axis=-1)
    Image.fromarray(la, "LA").save(paths["la.png"])
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view": the pixels are stored turned the other way
    digit.transpose(Image.Transpose.ROTATE_90).save(paths["exif.jpg"], exif=exif.tobytes(), quality=95)
    return paths


@pytest.mark.parametrize("raw", [False, True], ids=["mnist-way", "raw"])
def test_alpha_16bit_float_and_exif_images_read_as_the_plain_one(tmp_path, mnist_test, raw):
    paths = _forms(photo(mnist_test[0][2], scale=3, offset=(20, 5)), tmp_path)
    reference = read_digit_image(paths.pop("l.png"), raw=raw)
    jpeg = read_digit_image(paths.pop("exif.jpg"), raw=raw)
    for name, path in paths.items():
        np.testing.assert_allclose(read_digit_image(path, raw=raw), reference, atol=2e-3, err_msg=name)
    assert np.abs(jpeg - reference).mean() < 0.03, "the EXIF orientation was not applied"


def test_a_blank_or_broken_image_is_one_clear_error(tmp_path):
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    with pytest.raises(DigitImageError, match=r"blank\.png: no digit found: the image is blank"):
        read_digit_image(tmp_path / "blank.png")
    Image.fromarray(np.full((8, 8), np.nan, dtype=np.float32), "F").save(tmp_path / "nan.tif")
    with pytest.raises(DigitImageError, match=r"nan\.tif: the image holds NaN"):
        read_digit_image(tmp_path / "nan.tif")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(DigitImageError, match=r"text\.png: cannot read the image"):
        read_digit_image(tmp_path / "text.png")


# -- end to end through the console script ---------------------------------------------------------------
@pytest.fixture(scope="module")
def model(mnist_dir, tmp_path_factory) -> Path:
    """A small chapter-3 network trained here (~93% on MNIST), saved."""
    (x, y), _ = load_mnist(mnist_dir, download=False, dtype="uint8")
    net = network2.Network([784, 30, 10], seed=0)
    net.SGD(Dataset(x[:10_000], y[:10_000], divisor=255.0), 3, 10, 0.5, lmbda=1.0)
    return net.save(tmp_path_factory.mktemp("predict") / "model.npz")


def predict(model: Path, paths: list[Path], *extra: str) -> tuple[list[re.Match], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTABLE_NN_")}
    proc = subprocess.run([sys.executable, "-m", "portable_nn", "predict", "--model", str(model), *extra,
                           *map(str, paths)], capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    matches = [PREDICTION.match(line) for line in proc.stdout.splitlines()]
    assert all(matches) and len(matches) == len(paths), proc.stdout
    return matches, proc.stderr  # type: ignore[return-value]


def test_predict_reads_photos_of_digits_the_mnist_way(model, mnist_test, tmp_path):
    """Enlarged, off-centre, dark-on-light digits: right as often as the 28x28 originals; a plain resize fails."""
    images, labels = mnist_test
    paths = []
    for i, digit in enumerate(images):
        paths.append(tmp_path / f"photo{i}.png")
        photo(digit, scale=3, offset=(200 - 4 * (i % 10), 8)).save(paths[-1])
    mnist_way, _ = predict(model, paths)
    raw, _ = predict(model, paths, "--raw")
    right = np.mean([int(m["k"]) == label for m, label in zip(mnist_way, labels)])
    right_raw = np.mean([int(m["k"]) == label for m, label in zip(raw, labels)])
    assert right >= 0.85, right
    assert right_raw <= 0.5, right_raw
    for match in mnist_way:  # the top three, with scores in order
        scores = [float(match["score"])] + [float(s) for s in re.findall(r"\d ([\d.]+)", match["rest"])]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True) and sum(scores) <= 1.0 + 1e-9


def test_predict_reads_alpha_float_16bit_and_exif_images(model, mnist_test, tmp_path):
    images, labels = mnist_test
    paths, expected = [], []
    for i in (3, 4, 5):
        directory = tmp_path / f"digit{i}"
        directory.mkdir()
        forms = _forms(photo(images[i], scale=3, offset=(150, 10)), directory)
        paths += list(forms.values())
        expected += [int(labels[i])] * len(forms)
    matches, _ = predict(model, paths)
    predicted = [int(m["k"]) for m in matches]
    assert predicted == expected


def test_predict_warns_when_unsure(model, tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, size=(28, 28), dtype=np.uint8)).save(tmp_path / "noise.png")
    _, err = predict(model, [tmp_path / "noise.png"], "--min-confidence", "0.99")
    assert re.search(r"portable-nn predict: warning: .*noise\.png: unsure, the top class has only \d+%", err), err
