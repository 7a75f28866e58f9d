"""Patterns people can see: images and rendered letters as +-1 patterns.

Any image (a file Pillow reads, a Pillow image, or an array) becomes a +-1 pattern of
``height * width`` neurons: converted to grayscale in [0, 1] (1 = white), resized by
area averaging, then binarised by a fixed threshold, the image mean, Otsu's threshold
or Floyd-Steinberg error diffusion.  Bright pixels become +1 and dark ones -1
(``invert=True`` swaps them).  Letters and digits are rendered from the font bundled
with Pillow (no font file needed), ink = +1, so ``letter_patterns("HOPFIELD")`` gives
eight patterns.  Patterns are rows of the image in C order: ``pattern.reshape(size)``
is the picture again.

Pillow (the ``images`` extra: ``pip install 'hopfield-quant[images]'``) is needed for
image files, Pillow images and letters; arrays are converted with numpy alone.

References
----------
N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans. Syst.
Man Cybern. 9, 62 (1979).
R. W. Floyd and L. Steinberg, "An adaptive algorithm for spatial greyscale", Proc. Soc.
Inf. Disp. 17, 75 (1976).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence

import numpy as np
from numba import njit

from ._validate import check_fraction, check_patterns

__all__ = [
    "BINARIZE_METHODS",
    "MAX_NEURONS",
    "to_grayscale",
    "binarize",
    "image_to_pattern",
    "images_to_patterns",
    "letter_patterns",
    "pattern_images",
    "plot_patterns",
]

BINARIZE_METHODS = ("threshold", "mean", "otsu", "dither")
# a network of N neurons stores N**2 weights: 2**16 neurons already need 16 GiB as float32
MAX_NEURONS = 1 << 16
_FLOAT32_BYTES = 4
_GIB = float(1 << 30)
_OTSU_LEVELS = 256  # gray levels of the histogram Otsu's method searches
# Floyd-Steinberg weights of the quantization error: right, below-left, below, below-right
_FS_RIGHT, _FS_BELOW_LEFT, _FS_BELOW, _FS_BELOW_RIGHT = 7.0 / 16.0, 3.0 / 16.0, 5.0 / 16.0, 1.0 / 16.0
# ITU-R 601-2 luma, the weights of Pillow's convert("L")
_LUMA = np.array([0.299, 0.587, 0.114])
_UINT8_MAX = 255.0
_UINT16_MAX = 65535.0
# letters are drawn this many times larger than the target, then area-averaged down
_RENDER_OVERSAMPLING = 4
_MIN_FONT_PX, _MAX_FONT_PX = 32, 512
_MISSING_GLYPH = "\U0010fffd"  # a private-use code point no font has: renders the "missing glyph" box
_EXTRA_HINT = "pip install 'hopfield-quant[images]' (or pip install pillow)"
_PLOT_DPI = 120


# ----------------------------------------------------------------------- helpers


def _pillow():
    """The PIL package, or an ImportError that names the extra."""
    try:
        import PIL.Image  # noqa: F401
        import PIL.ImageDraw  # noqa: F401
        import PIL.ImageFont  # noqa: F401
        import PIL.ImageOps  # noqa: F401
    except ImportError as exc:  # pragma: no cover - Pillow comes with matplotlib
        raise ImportError(f"reading images and rendering letters needs Pillow: {_EXTRA_HINT}") from exc
    import PIL

    return PIL


def _check_size(size: object, native: tuple[int, int] | None = None) -> tuple[int, int]:
    """``size`` as (height, width) with 2 <= height * width <= MAX_NEURONS."""
    if size is None:
        if native is None:
            raise ValueError("size=None keeps the image's own size, but there is no image to take it from; "
                             "give size=(height, width).")
        h, w = native
    elif isinstance(size, numbers.Integral) and not isinstance(size, bool):
        h = w = int(size)
    elif (isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2
          and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in size)):
        h, w = (int(v) for v in size)
    else:
        raise TypeError(f"size must be an int or a pair of ints (height, width), got {size!r}.")
    if h < 1 or w < 1 or h * w < 2:
        raise ValueError(f"size=(height={h}, width={w}) gives {max(h, 0) * max(w, 0)} neuron(s); a pattern needs "
                         "height >= 1, width >= 1 and at least 2 neurons, e.g. size=(16, 16).")
    if h * w > MAX_NEURONS:
        gib = (h * w) ** 2 * _FLOAT32_BYTES / _GIB
        raise ValueError(f"size=(height={h}, width={w}) gives N={h * w:,} neurons, more than MAX_NEURONS="
                         f"{MAX_NEURONS:,}: a network of N neurons stores N**2 weights ({gib:,.0f} GiB as float32). "
                         "Use a smaller size, e.g. size=(64, 64).")
    return h, w


def _array_to_gray(arr: np.ndarray, name: str) -> np.ndarray:
    """An image array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) as float64 gray in [0, 1]."""
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be an array of numbers (bool, integer or float), got dtype {arr.dtype}.")
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        channels = arr.shape[2]
    elif arr.ndim == 2:
        channels = 0
    else:
        raise ValueError(f"{name} must have shape (height, width) or (height, width, channels) with 1, 3 (RGB) or "
                         f"4 (RGBA) channels, got shape {arr.shape}.")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} is empty (shape {arr.shape}).")
    if arr.dtype.kind == "b":
        x = arr.astype(np.float64)
    elif arr.dtype.kind == "f":
        x = arr.astype(np.float64)
        if not np.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or inf; image values must be finite.")
        if x.min() < 0.0 or x.max() > 1.0:
            raise ValueError(f"{name} is a float array with values in [{x.min():.4g}, {x.max():.4g}]; float images "
                             "must lie in [0, 1] (1 = white). Rescale first, e.g. (x - x.min()) / np.ptp(x), or for "
                             "a +-1 pattern (x + 1) / 2.")
    else:
        top = _UINT16_MAX if arr.dtype == np.uint16 else _UINT8_MAX
        if arr.min() < 0 or arr.max() > top:
            raise ValueError(f"{name} is an integer array with values in [{arr.min()}, {arr.max()}]; integer images "
                             f"must lie in [0, {int(top)}] ({'uint16' if top == _UINT16_MAX else '8-bit'} gray "
                             "levels). For a +-1 pattern use (x + 1) / 2.")
        x = arr.astype(np.float64) / top
    if channels == 0:
        return x
    if channels == 1:
        return x[:, :, 0]
    gray = x[:, :, :3] @ _LUMA if channels >= 3 else x[:, :, 0]
    if channels == 4:  # composite over a white background
        alpha = x[:, :, 3]
        gray = alpha * gray + (1.0 - alpha)
    return np.clip(gray, 0.0, 1.0)


def _open_image(path: str | os.PathLike):
    PIL = _pillow()
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"image file {p!r} does not exist.")
    try:
        img = PIL.Image.open(p)
        img.load()
    except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot read {p!r} as an image ({type(exc).__name__}: {exc}); Pillow reads PNG, JPEG, "
                         "GIF, BMP, TIFF, WebP and more.") from exc
    return img


def _pil_to_gray(img) -> np.ndarray:
    PIL = _pillow()
    img = PIL.ImageOps.exif_transpose(img)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        return _array_to_gray(np.asarray(img.convert("RGBA")), "image")
    if img.mode.startswith("I"):  # 16-bit gray (Pillow opens 16-bit PNGs as "I" or "I;16")
        return _array_to_gray(np.asarray(img, dtype=np.float64) / _UINT16_MAX, "image")
    if img.mode == "F":
        return _array_to_gray(np.asarray(img, dtype=np.float64), "image")
    return np.asarray(img.convert("L"), dtype=np.float64) / _UINT8_MAX


def _box_weights(n_in: int, n_out: int, start: float = 0.0, length: float | None = None) -> np.ndarray:
    """(n_out, n_in) area-averaging weights: output pixel k covers the input interval
    [start + k L/n_out, start + (k + 1) L/n_out), L = ``length`` (default n_in), and is
    the mean over it, input pixel i filling [i, i + 1); outside the input counts as 0."""
    L = float(n_in) if length is None else float(length)
    edges = start + np.arange(n_out + 1) * (L / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    pix = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, pix + 1) - np.maximum(lo, pix), 0.0, None)
    return overlap / (L / n_out)


def _resize(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    if gray.shape == (h, w):
        return gray
    out = _box_weights(gray.shape[0], h) @ gray @ _box_weights(gray.shape[1], w).T
    return np.clip(out, 0.0, 1.0)  # weights sum to 1 up to rounding


# ----------------------------------------------------------------- binarisation


def _otsu_level(levels: np.ndarray) -> int:
    """Otsu's threshold t on integer gray levels 0..255: pixels > t form the bright
    class; t maximises the between-class variance w0 w1 (mu0 - mu1)**2 (first maximum;
    -1 when all pixels share one level)."""
    hist = np.bincount(levels.ravel(), minlength=_OTSU_LEVELS).astype(np.float64)
    p = hist / hist.sum()
    w0 = np.cumsum(p)[:-1]  # class 0: levels <= t, for t = 0..254
    m0 = np.cumsum(p * np.arange(_OTSU_LEVELS))[:-1]
    mt = float(np.sum(p * np.arange(_OTSU_LEVELS)))
    w1 = 1.0 - w0
    valid = (hist.cumsum()[:-1] > 0) & (hist.cumsum()[:-1] < hist.sum())
    if not valid.any():  # one gray level: nothing above it
        return int(levels.max())
    with np.errstate(divide="ignore", invalid="ignore"):
        between = np.where(valid, (mt * w0 - m0) ** 2 / (w0 * w1), -np.inf)
    return int(np.argmax(between))


@njit(cache=True)
def _floyd_steinberg_kernel(x, threshold, out):
    """Error diffusion in raster order on float64 gray ``x`` (modified in place):
    out[i, j] = +1 where the diffused value is > threshold, else -1 (int8); the error
    against 1 or 0 goes 7/16 right, 3/16 below left, 5/16 below, 1/16 below right."""
    H, W = x.shape
    for i in range(H):
        for j in range(W):
            old = x[i, j]
            if old > threshold:
                out[i, j] = 1
                err = old - 1.0
            else:
                out[i, j] = -1
                err = old
            if j + 1 < W:
                x[i, j + 1] += err * _FS_RIGHT
            if i + 1 < H:
                if j > 0:
                    x[i + 1, j - 1] += err * _FS_BELOW_LEFT
                x[i + 1, j] += err * _FS_BELOW
                if j + 1 < W:
                    x[i + 1, j + 1] += err * _FS_BELOW_RIGHT


def binarize(gray: np.ndarray, method: str = "otsu", threshold: float = 0.5) -> np.ndarray:
    """A grayscale image in [0, 1] as a +-1 image: +1 where bright.

    Parameters
    ----------
    gray : ndarray of shape (height, width)
        Gray levels in [0, 1] (1 = white), e.g. from :func:`to_grayscale`.
    method : {"threshold", "mean", "otsu", "dither"}, default "otsu"
        ``threshold``: +1 where gray > ``threshold``; ``mean``: +1 where gray is above
        the image mean; ``otsu``: Otsu's (1979) threshold on 256 gray levels (the
        split of largest between-class variance); ``dither``: Floyd-Steinberg (1976)
        error diffusion in raster order, which keeps the local mean gray level.  A
        uniform image gives all -1 with ``mean`` and ``otsu``.
    threshold : float in [0, 1], default 0.5
        For ``threshold`` and ``dither``.

    Returns
    -------
    ndarray of int8, shape (height, width)

    Raises
    ------
    ValueError
        An unknown method, a threshold outside [0, 1], or gray levels outside [0, 1].
    """
    g = _array_to_gray(np.asarray(gray), "gray")
    if method not in BINARIZE_METHODS:
        raise ValueError(f"method={method!r} is not supported; choose one of {', '.join(map(repr, BINARIZE_METHODS))}.")
    t = check_fraction(threshold, "threshold")
    if method == "threshold":
        bright = g > t
    elif method == "mean":
        bright = g > g.mean()
    elif method == "otsu":
        levels = np.rint(g * (_OTSU_LEVELS - 1)).astype(np.int64)
        bright = levels > _otsu_level(levels)
    else:
        out = np.empty(g.shape, np.int8)
        _floyd_steinberg_kernel(np.ascontiguousarray(g, dtype=np.float64).copy(), t, out)
        return out
    return np.where(bright, 1, -1).astype(np.int8)


# ------------------------------------------------------------------- public API


def to_grayscale(image: object, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Any image as float64 gray levels in [0, 1] (1 = white), resized to ``size``.

    Parameters
    ----------
    image : str, os.PathLike, PIL.Image.Image or ndarray
        A file Pillow reads (the first frame of an animation; EXIF rotation applied),
        a Pillow image, or an array of shape (height, width), (height, width, 3) RGB or
        (height, width, 4) RGBA: bool, integers in 0..255 (uint16: 0..65535) or floats
        in [0, 1].  Color becomes ITU-R 601-2 luma (as Pillow's ``convert("L")``);
        transparent pixels are composited over white.
    size : int, (height, width) or None
        Resized by area averaging (each output pixel is the mean of the input area it
        covers); an int gives a square; None keeps the image's size.  At most
        :data:`MAX_NEURONS` pixels.

    Returns
    -------
    ndarray of float64, shape (height, width)

    Raises
    ------
    FileNotFoundError
        A path that does not exist.
    ValueError
        A file Pillow cannot read (the message names it), values outside the allowed
        range, a bad shape, or a size with fewer than 2 or more than
        :data:`MAX_NEURONS` pixels.
    TypeError
        An image of the wrong kind or dtype, or a size that is not ints.
    ImportError
        A file or Pillow image without Pillow installed (the ``images`` extra).
    """
    if isinstance(image, (str, os.PathLike)):
        gray = _pil_to_gray(_open_image(image))
    elif isinstance(image, np.ndarray) or isinstance(image, (list, tuple)):
        gray = _array_to_gray(np.asarray(image), "image")
    elif type(image).__module__.startswith("PIL."):
        gray = _pil_to_gray(image)
    else:
        raise TypeError(f"image must be a file path, a PIL.Image.Image or an array, got {type(image).__name__}.")
    return _resize(gray, _check_size(size, gray.shape))


def image_to_pattern(
    image: object,
    size: int | tuple[int, int] | None = (16, 16),
    method: str = "otsu",
    threshold: float = 0.5,
    invert: bool = False,
) -> np.ndarray:
    """One image as a +-1 pattern of ``height * width`` neurons (+1 = bright).

    Parameters
    ----------
    image : str, os.PathLike, PIL.Image.Image or ndarray
        See :func:`to_grayscale`.
    size : int, (height, width) or None, default (16, 16)
        The pattern's picture size; None keeps the image's size.
    method : {"threshold", "mean", "otsu", "dither"}, default "otsu"
        See :func:`binarize`.
    threshold : float in [0, 1], default 0.5
        For ``threshold`` and ``dither``.
    invert : bool, default False
        Dark pixels become +1 instead (e.g. ink on paper).

    Returns
    -------
    ndarray of int8, shape (height * width,)
        Row-major: ``pattern.reshape(height, width)`` is the picture.

    Raises
    ------
    See :func:`to_grayscale` and :func:`binarize`.

    Examples
    --------
    >>> import numpy as np
    >>> from hopfield.images import image_to_pattern
    >>> ramp = np.tile(np.linspace(0, 1, 32), (32, 1))
    >>> p = image_to_pattern(ramp, size=(8, 8), method="threshold")
    >>> p.reshape(8, 8)[0].tolist()
    [-1, -1, -1, -1, 1, 1, 1, 1]
    """
    img = binarize(to_grayscale(image, size), method, threshold)
    if invert:
        img = -img
    return np.ascontiguousarray(img.ravel(), dtype=np.int8)


def images_to_patterns(
    images: Sequence[object],
    size: int | tuple[int, int] = (16, 16),
    method: str = "otsu",
    threshold: float = 0.5,
    invert: bool = False,
) -> np.ndarray:
    """Several images as rows of a (P, N) pattern matrix, all at one ``size``.

    Parameters
    ----------
    images : sequence of images
        Each as :func:`to_grayscale` takes it; a 3-D array of shape (P, height, width)
        is read as P gray images.
    size, method, threshold, invert
        As :func:`image_to_pattern`; ``size=None`` only when all images share a size.

    Returns
    -------
    ndarray of int8, shape (n_images, height * width)
    """
    if isinstance(images, (str, os.PathLike)) or (isinstance(images, np.ndarray) and images.ndim < 3):
        raise TypeError("images must be a sequence of images (or an array of shape (P, height, width)); for one "
                        "image use image_to_pattern.")
    items = list(images)
    if not items:
        raise ValueError("images is empty; give at least one image.")
    rows = [image_to_pattern(im, size, method, threshold, invert) for im in items]
    if len({r.size for r in rows}) > 1:
        raise ValueError(f"the images have different sizes ({sorted({r.size for r in rows})} pixels); give a size "
                         "to resize them all to one, e.g. size=(16, 16).")
    return np.stack(rows)


def _default_font(px: int):
    """Pillow's bundled font at ``px`` pixels (FreeType), or its small bitmap font."""
    PIL = _pillow()
    try:
        return PIL.ImageFont.load_default(size=px)
    except TypeError:  # pragma: no cover - Pillow < 10.1 has no sized default font
        return PIL.ImageFont.load_default()


def _glyph_mask(font, ch: str) -> tuple[bytes, tuple[int, int]]:
    """The rendered coverage of ``ch`` (to compare with the missing-glyph box)."""
    mask = font.getmask(ch)
    return np.asarray(mask).tobytes(), tuple(mask.size)


def letter_patterns(
    text: str,
    size: int | tuple[int, int] = (16, 16),
    margin: int = 1,
    method: str = "threshold",
    threshold: float = 0.3,
) -> np.ndarray:
    """Letters, digits or any characters rendered as +-1 patterns (ink = +1).

    Every character is drawn with the font bundled with Pillow (Aileron, via
    ``ImageFont.load_default(size=...)``; no font file or network is needed) at
    four times the target resolution, then area-averaged down
    and binarised.  All characters share one scale and one baseline (the union of
    their ink boxes fills ``size`` less the margin), each centred horizontally, so
    "HOPFIELD" fills the box and lower-case letters keep their smaller height.

    Parameters
    ----------
    text : str
        One pattern per character, in order (repeated characters give repeated
        patterns).  Whitespace and characters the font lacks are refused.
    size : int or (height, width), default (16, 16)
    margin : int, default 1
        Blank pixels kept on every side.
    method : {"threshold", "mean", "otsu", "dither"}, default "threshold"
        How the anti-aliased rendering is binarised (see :func:`binarize`).
    threshold : float in [0, 1], default 0.3
        A pixel is ink when more than this fraction of it is covered: below 0.5, so
        that strokes thinner than a pixel at small sizes do not vanish.

    Returns
    -------
    ndarray of int8, shape (len(text), height * width)

    Raises
    ------
    ValueError
        Empty text, whitespace, a character the font has no glyph for or that
        vanishes at this size, a margin that leaves no room, or a bad size.
    ImportError
        Pillow is not installed (the ``images`` extra).

    Examples
    --------
    >>> from hopfield.images import letter_patterns
    >>> letter_patterns("HOPFIELD", size=(16, 16)).shape
    (8, 256)
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str (one pattern per character), got {type(text).__name__}.")
    if not text:
        raise ValueError("text is empty; give at least one character, e.g. 'HOPFIELD'.")
    h, w = _check_size(size)
    if isinstance(margin, bool) or not isinstance(margin, numbers.Integral) or margin < 0:
        raise ValueError(f"margin must be an int >= 0, got {margin!r}.")
    if 2 * margin >= min(h, w):
        raise ValueError(f"margin={margin} leaves no room inside size=({h}, {w}); use margin < {min(h, w) / 2:g}.")
    for k, ch in enumerate(text):
        if ch.isspace() or not ch.isprintable():
            raise ValueError(f"text[{k}]={ch!r} is whitespace or unprintable: every character becomes one pattern; "
                             "remove it.")
    PIL = _pillow()
    px = int(np.clip(_RENDER_OVERSAMPLING * max(h, w), _MIN_FONT_PX, _MAX_FONT_PX))
    font = _default_font(px)
    missing = _glyph_mask(font, _MISSING_GLYPH)
    glyphs, boxes = [], []
    for k, ch in enumerate(text):
        if _glyph_mask(font, ch) == missing:
            raise ValueError(f"text[{k}]={ch!r}: Pillow's bundled font has no glyph for this character; use Latin "
                             "letters, digits or punctuation.")
        # every glyph drawn from the same origin, so all share one baseline
        img = PIL.Image.new("L", (2 * px, 2 * px), 0)
        PIL.ImageDraw.Draw(img).text((px // 2, px // 2), ch, fill=255, font=font)
        box = img.getbbox()  # ink extent (x0, y0, x1, y1)
        if box is None:
            raise ValueError(f"text[{k}]={ch!r} renders no ink; use letters, digits or punctuation.")
        glyphs.append(np.asarray(img, dtype=np.float64) / _UINT8_MAX)
        boxes.append(box)
    top, bottom = min(b[1] for b in boxes), max(b[3] for b in boxes)
    ink_w = max(b[2] - b[0] for b in boxes)
    scale = min((h - 2 * margin) / (bottom - top), (w - 2 * margin) / ink_w)  # target pixels per rendered pixel
    win_h, win_w = h / scale, w / scale  # the window of the rendering that becomes the pattern
    rows_w = _box_weights(2 * px, h, (top + bottom) / 2.0 - win_h / 2.0, win_h)
    r_used = np.flatnonzero(rows_w.any(axis=0))  # only the rendered rows inside the window
    rows = []
    for k, (ch, g, b) in enumerate(zip(text, glyphs, boxes)):
        cols_w = _box_weights(2 * px, w, (b[0] + b[2]) / 2.0 - win_w / 2.0, win_w)  # centred on its ink
        c_used = np.flatnonzero(cols_w.any(axis=0))
        gray = rows_w[:, r_used] @ g[np.ix_(r_used, c_used)] @ cols_w[:, c_used].T
        gray = np.clip(gray, 0.0, 1.0)
        pattern = binarize(gray, method, threshold).ravel()
        if np.all(pattern == -1):
            raise ValueError(f"text[{k}]={ch!r} vanishes at size=({h}, {w}) (no pixel is ink); use a larger size or "
                             "a lower threshold.")
        rows.append(pattern)
    return np.stack(rows).astype(np.int8)


def pattern_images(patterns: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Patterns back as pictures: (P, N) or (N,) +-1 rows to (P, height, width).

    Raises
    ------
    ValueError
        ``height * width`` differs from the patterns' N.
    """
    X = check_patterns(patterns)
    h, w = _check_size(shape)
    if h * w != X.shape[1]:
        raise ValueError(f"shape=({h}, {w}) holds {h * w} pixels but the patterns have N={X.shape[1]} neurons.")
    return X.reshape(len(X), h, w)


def plot_patterns(
    patterns: np.ndarray,
    shape: tuple[int, int],
    labels: Sequence[str] | None = None,
    path: str | os.PathLike | None = None,
    columns: int = 10,
    cmap: str = "gray",
):
    """Patterns drawn as pictures in a grid (+1 white with ``cmap="gray"``).

    Parameters
    ----------
    patterns : array of +-1, shape (n_patterns, height * width)
    shape : (height, width)
    labels : sequence of str, optional
        A title per pattern.
    path : path, optional
        Also write the figure there, atomically (format from the suffix).
    columns : int, default 10

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    imgs = pattern_images(patterns, shape)
    if labels is not None and len(labels) != len(imgs):
        raise ValueError(f"got {len(labels)} labels for {len(imgs)} patterns; give one label per pattern.")
    if isinstance(columns, bool) or not isinstance(columns, numbers.Integral) or columns < 1:
        raise ValueError(f"columns must be an int >= 1, got {columns!r}.")
    cols = min(len(imgs), int(columns))
    rows = -(-len(imgs) // cols)
    fig = Figure(figsize=(1.2 * cols, 1.3 * rows), layout="constrained")
    for k, img in enumerate(imgs):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(img, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
        if labels is not None:
            ax.set_title(str(labels[k]), fontsize="small")
        ax.set_axis_off()
    if path is not None:
        from quantization._io import save_figure

        save_figure(fig, path, dpi=_PLOT_DPI)
    return fig
