"""Images and letters to +-1 patterns: kernels against slow references, and bad input."""

import importlib.util
import sys

import numpy as np
import pytest

from hopfield import HopfieldNetwork, flip_noise
from hopfield.images import (
    MAX_NEURONS,
    _box_weights,
    _floyd_steinberg_kernel,
    _otsu_level,
    _resize,
    binarize,
    image_to_pattern,
    images_to_patterns,
    letter_patterns,
    pattern_images,
    plot_patterns,
    to_grayscale,
)

needs_pillow = pytest.mark.skipif(importlib.util.find_spec("PIL") is None,
                                  reason="Pillow is not installed (the images extra)")


# ------------------------------------------------------------------ slow references


def ref_resize(gray, h, w):
    """Each output pixel: the mean of the input over the rectangle it covers, pixel by pixel."""
    H, W = gray.shape
    out = np.zeros((h, w))
    for a in range(h):
        y0, y1 = a * H / h, (a + 1) * H / h
        for b in range(w):
            x0, x1 = b * W / w, (b + 1) * W / w
            acc = 0.0
            for i in range(H):
                for j in range(W):
                    oy = max(0.0, min(y1, i + 1) - max(y0, i))
                    ox = max(0.0, min(x1, j + 1) - max(x0, j))
                    acc += oy * ox * gray[i, j]
            out[a, b] = acc / ((y1 - y0) * (x1 - x0))
    return out


def ref_floyd_steinberg(gray, threshold):
    x = [list(map(float, row)) for row in gray]
    H, W = len(x), len(x[0])
    out = np.zeros((H, W), np.int8)
    for i in range(H):
        for j in range(W):
            old = x[i][j]
            new = 1.0 if old > threshold else 0.0
            out[i, j] = 1 if new else -1
            err = old - new
            for di, dj, f in ((0, 1, 7 / 16), (1, -1, 3 / 16), (1, 0, 5 / 16), (1, 1, 1 / 16)):
                if 0 <= i + di < H and 0 <= j + dj < W:
                    x[i + di][j + dj] += err * f
    return out


def ref_otsu_best_variance(levels):
    """Largest between-class variance w0 w1 (mu0 - mu1)^2 over every split of the pixels."""
    v = levels.ravel().astype(float)
    best = -1.0
    for t in range(255):
        lo, hi = v[v <= t], v[v > t]
        if lo.size and hi.size:
            best = max(best, lo.size * hi.size / v.size**2 * (lo.mean() - hi.mean()) ** 2)
    return best


# ------------------------------------------------------------------------- kernels


@pytest.mark.parametrize("shape,size", [((7, 5), (3, 2)), ((4, 6), (9, 7)), ((10, 10), (10, 4)), ((3, 8), (5, 8))])
def test_area_resize_matches_reference(shape, size):
    gray = np.random.default_rng(0).random(shape)
    np.testing.assert_allclose(_resize(gray, size), ref_resize(gray, *size), rtol=0, atol=1e-12)
    np.testing.assert_allclose(_box_weights(shape[0], size[0]).sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 5), (6, 1), (5, 7), (16, 16)])
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_floyd_steinberg_matches_reference(shape, threshold):
    gray = np.random.default_rng(shape[0] * 31 + shape[1]).random(shape)
    out = np.empty(shape, np.int8)
    _floyd_steinberg_kernel(gray.copy(), threshold, out)
    np.testing.assert_array_equal(out, ref_floyd_steinberg(gray, threshold))
    np.testing.assert_array_equal(binarize(gray, "dither", threshold), out)


def test_dithering_keeps_the_mean_gray_level():
    for level in (0.1, 0.37, 0.5, 0.8):
        p = binarize(np.full((40, 40), level), "dither")
        assert abs((p == 1).mean() - level) < 0.02


@pytest.mark.parametrize("seed", range(4))
def test_otsu_finds_the_largest_between_class_variance(seed):
    rng = np.random.default_rng(seed)
    levels = np.clip(np.concatenate([rng.normal(60, 15, 300), rng.normal(170, 25, 200)]), 0, 255).astype(np.int64)
    t = _otsu_level(levels)
    lo, hi = levels[levels <= t].astype(float), levels[levels > t].astype(float)
    ours = lo.size * hi.size / levels.size**2 * (lo.mean() - hi.mean()) ** 2
    assert ours == pytest.approx(ref_otsu_best_variance(levels), rel=1e-12)
    assert 60 < t < 170


def test_binarize_methods_on_known_images():
    ramp = np.tile(np.linspace(0, 1, 8), (2, 1))
    np.testing.assert_array_equal(binarize(ramp, "threshold", 0.5)[0], [-1, -1, -1, -1, 1, 1, 1, 1])
    np.testing.assert_array_equal(binarize(ramp, "threshold", 0.2)[0], [-1, -1, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(binarize(ramp, "mean")[0], [-1, -1, -1, -1, 1, 1, 1, 1])
    two = np.array([[0.1, 0.1, 0.2, 0.8, 0.9, 0.9]])
    np.testing.assert_array_equal(binarize(two, "otsu")[0], [-1, -1, -1, 1, 1, 1])
    assert (binarize(np.full((3, 3), 0.7), "otsu") == -1).all()  # one level: nothing above it
    assert (binarize(np.full((3, 3), 0.7), "mean") == -1).all()


# ----------------------------------------------------------------------- images


def test_array_images_of_every_kind():
    gray = np.array([[0.0, 1.0], [0.25, 0.75]])
    u8 = np.rint(gray * 255).astype(np.uint8)
    np.testing.assert_allclose(to_grayscale(u8), u8 / 255)
    np.testing.assert_allclose(to_grayscale((gray * 65535).astype(np.uint16)), gray, atol=1e-4)
    np.testing.assert_array_equal(to_grayscale(gray > 0.5), gray > 0.5)
    rgb = np.stack([gray, gray, gray], axis=2)
    np.testing.assert_allclose(to_grayscale(rgb), gray, atol=1e-12)
    red = np.zeros((1, 2, 3))
    red[..., 0] = 1.0
    np.testing.assert_allclose(to_grayscale(red), 0.299)
    rgba = np.concatenate([np.zeros((2, 2, 3)), np.array([[[0.0], [1.0]], [[0.5], [1.0]]])], axis=2)
    np.testing.assert_allclose(to_grayscale(rgba), [[1.0, 0.0], [0.5, 0.0]])  # black over white by alpha
    np.testing.assert_allclose(to_grayscale(gray[:, :, None]), gray)


def test_image_to_pattern_shape_invert_and_example():
    ramp = np.tile(np.linspace(0, 1, 32), (32, 1))
    p = image_to_pattern(ramp, size=(8, 8), method="threshold")
    assert p.shape == (64,) and p.dtype == np.int8 and set(np.unique(p)) == {-1, 1}
    assert p.reshape(8, 8)[0].tolist() == [-1, -1, -1, -1, 1, 1, 1, 1]
    np.testing.assert_array_equal(image_to_pattern(ramp, size=(8, 8), method="threshold", invert=True), -p)
    assert image_to_pattern(ramp, size=5).shape == (25,)
    assert image_to_pattern(ramp, size=None).shape == (1024,)
    X = images_to_patterns([ramp, ramp.T, 1 - ramp], size=(4, 6))
    assert X.shape == (3, 24)
    np.testing.assert_array_equal(pattern_images(X, (4, 6))[0], X[0].reshape(4, 6))
    assert images_to_patterns(np.stack([ramp, ramp.T]), size=4).shape == (2, 16)


@needs_pillow
def test_files_and_pillow_images_read_like_arrays(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    u8 = (rng.random((20, 30)) * 255).astype(np.uint8)
    Image.fromarray(u8).save(tmp_path / "g.png")
    rgb = np.stack([u8] * 3, axis=2)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    ref = image_to_pattern(u8, size=(10, 15), method="mean")
    for src in (tmp_path / "g.png", str(tmp_path / "rgb.png"), Image.fromarray(u8)):
        np.testing.assert_array_equal(image_to_pattern(src, size=(10, 15), method="mean"), ref)
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent: white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    np.testing.assert_allclose(to_grayscale(tmp_path / "t.png"), 1.0)
    u16 = (rng.random((6, 6)) * 65535).astype(np.uint16)
    Image.fromarray(u16).save(tmp_path / "g16.png")
    np.testing.assert_allclose(to_grayscale(tmp_path / "g16.png"), u16 / 65535, atol=1e-12)


# ------------------------------------------------------------------------ letters


@needs_pillow
def test_letter_patterns_are_distinct_deterministic_and_stored():
    X = letter_patterns("HOPFIELD", size=(16, 16))
    assert X.shape == (8, 256) and X.dtype == np.int8 and set(np.unique(X)) == {-1, 1}
    np.testing.assert_array_equal(X, letter_patterns("HOPFIELD", size=(16, 16)))
    assert len({r.tobytes() for r in X}) == 8
    img = pattern_images(X, (16, 16))
    assert (img[:, 0, :] == -1).all() and (img[:, :, -1] == -1).all()  # the 1-pixel margin
    ink = (X == 1).sum(axis=1)
    assert ink[list("HOPFIELD").index("I")] < ink[0]  # I has less ink than H
    assert letter_patterns("0123456789", size=(12, 10), margin=0).shape == (10, 120)
    # the projection rule stores all eight letters; each comes back from 10% noise
    net = HopfieldNetwork.from_patterns(X, "projection")
    res = net.recall(flip_noise(X, 0.1, seed=0), seed=1)
    np.testing.assert_array_equal(res.states, X)


@needs_pillow
@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(text=""), ValueError, "text is empty"),
    (dict(text="A B"), ValueError, r"text\[1\]=' ' is whitespace"),
    (dict(text="A\u4e2d"), ValueError, r"text\[1\]=.*no glyph"),
    (dict(text="A", size=(4, 4), margin=2), ValueError, "margin=2 leaves no room"),
    (dict(text="A", margin=-1), ValueError, "margin must be an int >= 0"),
    (dict(text="A.", size=(10, 8), threshold=0.5), ValueError, r"text\[1\]='\.' vanishes"),
    (dict(text=["A"]), TypeError, "text must be a str"),
])
def test_letter_patterns_refuse_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        letter_patterns(**kwargs)


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize("size,exc,match", [
    (0, ValueError, r"size=\(height=0, width=0\) gives 0 neuron"),
    ((1, 1), ValueError, "at least 2 neurons"),
    ((-3, 4), ValueError, "height >= 1"),
    ((1000, 1000), ValueError, f"more than MAX_NEURONS={MAX_NEURONS:,}"),
    ((4.0, 4), TypeError, "size must be an int or a pair of ints"),
    ("16", TypeError, "size must be an int or a pair of ints"),
    ((2, 3, 4), TypeError, "size must be an int or a pair of ints"),
])
def test_sizes_that_do_not_fit(size, exc, match):
    with pytest.raises(exc, match=match):
        image_to_pattern(np.zeros((8, 8)), size=size)


@pytest.mark.parametrize("image,exc,match", [
    (np.zeros((2, 3, 4, 1)), ValueError, r"shape \(height, width\) or \(height, width, channels\)"),
    (np.zeros((4, 4, 2)), ValueError, "1, 3 \\(RGB\\) or 4 \\(RGBA\\) channels"),
    (np.zeros((0, 4)), ValueError, "is empty"),
    (np.zeros((4, 4), complex), TypeError, "must be an array of numbers"),
    (np.array([["a", "b"]]), TypeError, "must be an array of numbers"),
    (np.full((3, 3), 2.0), ValueError, r"float images must lie in \[0, 1\]"),
    (np.array([[0.0, np.nan]]), ValueError, "NaN or inf"),
    (np.array([[-1, 1], [1, -1]]), ValueError, r"integer images must lie in \[0, 255\].*\(x \+ 1\) / 2"),
    (12, TypeError, "image must be a file path, a PIL.Image.Image or an array"),
])
def test_images_of_the_wrong_shape_dtype_or_range(image, exc, match):
    with pytest.raises(exc, match=match):
        image_to_pattern(image, size=(4, 4))


def test_methods_thresholds_and_collections_refused():
    with pytest.raises(ValueError, match="method='sobel' is not supported"):
        image_to_pattern(np.zeros((4, 4)), method="sobel")
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0.0, 1.0\]"):
        binarize(np.zeros((4, 4)), "threshold", 1.5)
    with pytest.raises(ValueError, match="images is empty"):
        images_to_patterns([])
    with pytest.raises(TypeError, match="sequence of images"):
        images_to_patterns(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="different sizes"):
        images_to_patterns([np.zeros((4, 4)), np.zeros((5, 5))], size=None)
    with pytest.raises(ValueError, match=r"shape=\(3, 3\) holds 9 pixels but the patterns have N=16"):
        pattern_images(np.ones((2, 16)), (3, 3))


@needs_pillow
def test_unreadable_files_are_named(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(FileNotFoundError, match="nope.png"):
        image_to_pattern(missing)
    bad = tmp_path / "text.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match=r"cannot read .*text\.png.* as an image"):
        image_to_pattern(bad)
    truncated = tmp_path / "cut.png"
    from PIL import Image

    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "ok.png")
    truncated.write_bytes((tmp_path / "ok.png").read_bytes()[:60])
    with pytest.raises(ValueError, match=r"cannot read .*cut\.png"):
        image_to_pattern(truncated)


def test_without_pillow_arrays_work_and_files_name_the_extra(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m == "PIL" or m.startswith("PIL.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now raises ImportError
    assert image_to_pattern(np.eye(4), size=(4, 4), method="threshold").shape == (16,)
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(ImportError, match=r"hopfield-quant\[images\]"):
        image_to_pattern(tmp_path / "a.png")
    with pytest.raises(ImportError, match=r"hopfield-quant\[images\]"):
        letter_patterns("A")


def test_plot_patterns_writes_atomically(tmp_path):
    X = np.where(np.random.default_rng(0).random((3, 12)) < 0.5, 1, -1)
    fig = plot_patterns(X, (3, 4), labels=["a", "b", "c"], path=tmp_path / "p.png", columns=2)
    assert len(fig.axes) == 3 and (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="got 1 labels for 3 patterns"):
        plot_patterns(X, (3, 4), labels=["a"])
    with pytest.raises(ValueError, match="columns must be an int >= 1"):
        plot_patterns(X, (3, 4), columns=0)
