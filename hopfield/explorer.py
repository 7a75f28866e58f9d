"""An interactive explorer of recall from noisy images, for notebooks.

:class:`Explorer` holds a set of images (+-1 patterns) and answers one question per
call of :meth:`Explorer.update`: store these images, quantize the weights to these
bits with this scheme, flip this fraction of one image's pixels, run these dynamics:
what is recalled, how close is it to every image, and how well do the quantized
weights correlate with the float ones (rho)?  :meth:`Explorer.widget` wires
ipywidgets controls (the ``explorer`` extra: ``pip install 'hopfield-quant[explorer]'``)
to :meth:`Explorer.refresh`, which calls :meth:`Explorer.update` and draws
:meth:`Explorer.figure`; all three are plain methods that run without a browser.

Every draw is reproducible: the cue's flipped pixels and the update order derive from
``seed`` and the chosen image only, so moving the noise slider flips a growing,
nested set of pixels, and changing bits, scheme or dynamics compares them on the same
cue (a paired comparison).
"""

from __future__ import annotations

import io
import math
import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from quantization import SCHEMES

from ._validate import check_fraction, check_patterns, check_positive_int
from .measures import classify_states, overlaps
from .network import RULES, HopfieldNetwork
from .patterns import flip_noise

__all__ = ["Explorer", "ExplorerView", "EXPLORER_DYNAMICS", "EXPLORER_BITS"]

EXPLORER_DYNAMICS = ("async", "async-fixed", "sync")  # the zero-temperature dynamics
EXPLORER_BITS = (None, 1, 2, 3, 4, 5, 6, 7, 8)  # None: float weights
_MAX_BITS = 8
_MAX_NOISE = 0.5  # the slider's range: beyond half the pixels a cue is closer to the inverse
_NOISE_STEP = 0.01
_CACHED_NETWORKS = 32  # networks (float and quantized) kept between updates
_FIGURE_DPI = 90
_MAX_TICK_LABELS = 40  # more images than this: the overlap bars go unlabelled
_EXTRA_HINT = "pip install 'hopfield-quant[explorer]' (or pip install ipywidgets)"


@dataclass(frozen=True)
class ExplorerView:
    """What one :meth:`Explorer.update` shows.

    Attributes
    ----------
    target : int
        The image the cue was made from.
    stored : tuple of int
        The images stored in the network.
    noise, bits, scheme, dynamics, rule, seed
        The settings (``bits`` None: float weights).
    cue, recalled : ndarray of int8, shape (n_neurons,)
    cue_overlaps, overlaps : ndarray of float64, shape (n_images,)
        Overlap of the cue and of the recalled state with every image.
    rho : float
        Correlation of the quantized with the float off-diagonal weights (1 for float).
    sweeps : int
    converged : bool
    kind : str
        The recalled state among the stored images: "retrieved", "reversed",
        "mixture" or "spurious" (:func:`hopfield.classify_states`).
    """

    target: int
    stored: tuple[int, ...]
    noise: float
    bits: int | None
    scheme: str
    dynamics: str
    rule: str
    seed: int
    cue: np.ndarray
    recalled: np.ndarray
    cue_overlaps: np.ndarray
    overlaps: np.ndarray
    rho: float
    sweeps: int
    converged: bool
    kind: str

    @property
    def target_overlap(self) -> float:
        """Overlap of the recalled state with the target image."""
        return float(self.overlaps[self.target])


def _ipywidgets():
    try:
        import ipywidgets
    except ImportError as exc:
        raise ImportError(f"the interactive explorer needs ipywidgets: {_EXTRA_HINT}") from exc
    return ipywidgets


class Explorer:
    """Recall from noisy images with float or quantized weights, interactively.

    Parameters
    ----------
    images : array of +-1, shape (n_images, n_neurons)
        E.g. from :func:`hopfield.images.letter_patterns` or
        :func:`hopfield.images.images_to_patterns`.
    shape : (height, width) or None
        How a pattern is drawn; None: a square.
    labels : sequence of str, optional
        Image names (default "0", "1", ...).
    max_sweeps : int, default 100
    seed : int, default 0
        The default seed of :meth:`update` (each update's randomness derives from
        its seed and the target image).

    Attributes
    ----------
    view : ExplorerView or None
        The last view computed (by :meth:`update` or :meth:`refresh`).
    controls : dict of ipywidgets widgets
        After :meth:`widget`: "stored", "target", "noise", "bits", "scheme",
        "dynamics", "rule", "seed".
    message : str
        The last error or warning :meth:`refresh` showed ("" if none).

    Examples
    --------
    >>> from hopfield.explorer import Explorer
    >>> from hopfield import random_patterns
    >>> ex = Explorer(random_patterns(4, 64, seed=0), shape=(8, 8))
    >>> v = ex.update(target=1, noise=0.1, bits=2, scheme="uniform")
    >>> v.kind, round(v.target_overlap, 2)
    ('retrieved', 1.0)
    """

    def __init__(self, images: np.ndarray, shape: tuple[int, int] | None = None, labels: Sequence[str] | None = None,
                 max_sweeps: int = 100, seed: int = 0):
        self.images = check_patterns(images, "images")
        P, N = self.images.shape
        self.shape = _check_shape(shape, N)
        self.labels = [str(i) for i in range(P)] if labels is None else [str(x) for x in labels]
        if len(self.labels) != P:
            raise ValueError(f"got {len(self.labels)} labels for {P} images; give one label per image.")
        self.max_sweeps = check_positive_int(max_sweeps, "max_sweeps")
        self.seed = _check_seed(seed)
        self.view: ExplorerView | None = None
        self.controls: dict = {}
        self.message = ""
        self._networks: dict = {}
        self._image = None
        self._summary = None

    # --------------------------------------------------------------- the model

    def _network(self, stored: tuple[int, ...], rule: str, bits: int | None, scheme: str):
        key = (stored, rule, bits, scheme if bits is not None else None)
        if key not in self._networks:
            if bits is None:
                net = HopfieldNetwork.from_patterns(self.images[list(stored)], rule)
            else:
                net = self._network(stored, rule, None, scheme).quantize(bits, scheme)
            if len(self._networks) >= _CACHED_NETWORKS:
                self._networks.pop(next(iter(self._networks)))  # the oldest
            self._networks[key] = net
        return self._networks[key]

    def update(
        self,
        target: int = 0,
        noise: float = 0.2,
        bits: int | None = None,
        scheme: str = "uniform",
        dynamics: str = "async",
        rule: str = "hebb",
        stored: Sequence[int] | None = None,
        seed: int | None = None,
    ) -> ExplorerView:
        """Recall image ``target`` with ``noise`` of its pixels flipped.

        Parameters
        ----------
        target : int, default 0
            Index of the image the cue is made from (stored or not).
        noise : float in [0, 1], default 0.2
            Fraction of pixels flipped (exactly round(noise * N)).
        bits : int in 1..8 or None, default None
            Weight bits; None (or "float") keeps float weights.
        scheme : str, default "uniform"
            A quantization scheme of :data:`quantization.SCHEMES`.
        dynamics : {"async", "async-fixed", "sync"}, default "async"
        rule : {"hebb", "projection", "storkey"}, default "hebb"
        stored : sequence of int, optional
            The images stored (default: all).
        seed : int, optional
            Default: the explorer's seed.

        Returns
        -------
        ExplorerView
            Also kept as :attr:`view`.

        Raises
        ------
        ValueError
            A setting outside its choices (the message lists them), or one the
            quantizer or learning rule refuses.
        """
        P, N = self.images.shape
        target = _check_index(target, P, "target")
        stored_t = tuple(range(P)) if stored is None else _check_stored(stored, P)
        noise = check_fraction(noise, "noise")
        if isinstance(bits, str) and bits.lower() == "float":
            bits = None
        if bits is not None and (isinstance(bits, bool) or not isinstance(bits, numbers.Integral)
                                 or not 1 <= bits <= _MAX_BITS):
            raise ValueError(f"bits must be None (float weights) or an int in 1..{_MAX_BITS}, got {bits!r}.")
        bits = None if bits is None else int(bits)
        for name, value, allowed in (("scheme", scheme, SCHEMES), ("dynamics", dynamics, EXPLORER_DYNAMICS),
                                     ("rule", rule, RULES)):
            if value not in allowed:
                raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(map(repr, allowed))}.")
        seed = self.seed if seed is None else _check_seed(seed)

        net = self._network(stored_t, rule, bits, scheme)
        cue_ss, dyn_ss = np.random.SeedSequence([seed, target]).spawn(2)
        cue = flip_noise(self.images[target], noise, seed=np.random.default_rng(cue_ss))[0]
        res = net.recall(cue, dynamics=dynamics, max_sweeps=self.max_sweeps, seed=np.random.default_rng(dyn_ss))
        rho = 1.0 if isinstance(net, HopfieldNetwork) else float(net.rho)
        m_cue = overlaps(cue, self.images)[0]
        m = overlaps(res.states, self.images)[0]
        kind = str(classify_states(res.states, self.images[list(stored_t)])[0])
        self.view = ExplorerView(target=target, stored=stored_t, noise=noise, bits=bits, scheme=scheme,
                                 dynamics=dynamics, rule=rule, seed=seed, cue=cue, recalled=res.states,
                                 cue_overlaps=m_cue, overlaps=m, rho=rho, sweeps=int(res.sweeps),
                                 converged=bool(res.converged), kind=kind)
        return self.view

    # ---------------------------------------------------------------- drawing

    def figure(self, view: ExplorerView | None = None):
        """The cue, the recalled state, the target and the overlaps as a figure.

        Parameters
        ----------
        view : ExplorerView, optional
            Default: the last one (:meth:`update` runs with defaults if none).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        v = view or self.view or self.update()
        h, w = self.shape
        fig = Figure(figsize=(10.0, 2.8), layout="constrained")
        gs = fig.add_gridspec(1, 4, width_ratios=[1, 1, 1, 2.2])
        for k, (img, title) in enumerate(((v.cue, f"cue ({v.noise:.0%} flipped)"),
                                          (v.recalled, f"recalled: {v.kind}"),
                                          (self.images[v.target], f"target '{self.labels[v.target]}'"))):
            ax = fig.add_subplot(gs[0, k])
            ax.imshow(img.reshape(h, w), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_title(title, fontsize="small")
            ax.set_xticks([])
            ax.set_yticks([])
        ax = fig.add_subplot(gs[0, 3])
        x = np.arange(len(self.images))
        stored = np.zeros(len(x), bool)
        stored[list(v.stored)] = True
        colors = np.where(stored, "tab:blue", "lightgray").astype(object)
        colors[v.target] = "tab:orange"
        ax.bar(x, v.overlaps, color=list(colors))
        ax.plot(x, v.cue_overlaps, "k_", ms=10, label="cue")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylim(-1.05, 1.05)
        if len(x) <= _MAX_TICK_LABELS:
            ax.set_xticks(x, self.labels, fontsize="x-small")
        ax.set_ylabel("overlap")
        ax.legend(fontsize="x-small", loc="lower right")
        weights = "float weights" if v.bits is None else f"{v.bits}-bit {v.scheme}"
        ax.set_title(f"{weights}, rho = {v.rho:.4f}; {v.dynamics}, {v.sweeps} sweeps"
                     f"{'' if v.converged else ' (not converged)'}", fontsize="small")
        return fig

    def png(self, view: ExplorerView | None = None) -> bytes:
        """:meth:`figure` rendered as PNG bytes."""
        buf = io.BytesIO()
        self.figure(view).savefig(buf, format="png", dpi=_FIGURE_DPI)
        return buf.getvalue()

    def summary(self, view: ExplorerView | None = None) -> str:
        """One line of text: target overlap, kind, rho, sweeps."""
        v = view or self.view or self.update()
        weights = "float" if v.bits is None else f"{v.bits} bit {v.scheme}"
        return (f"target '{self.labels[v.target]}': overlap {v.cue_overlaps[v.target]:+.3f} -> "
                f"{v.target_overlap:+.3f} ({v.kind}); weights {weights}, rho {v.rho:.4f}; {v.dynamics} "
                f"{v.sweeps} sweeps{'' if v.converged else ', not converged'}")

    # ----------------------------------------------------------------- widgets

    def settings(self) -> dict:
        """The current control values as :meth:`update` arguments (after :meth:`widget`)."""
        if not self.controls:
            raise RuntimeError("no controls yet: call widget() first, or call update() directly.")
        c = self.controls
        bits = c["bits"].value
        return dict(target=c["target"].value, noise=c["noise"].value, bits=None if bits == "float" else bits,
                    scheme=c["scheme"].value, dynamics=c["dynamics"].value, rule=c["rule"].value,
                    stored=tuple(c["stored"].value), seed=c["seed"].value)

    def refresh(self, change=None) -> ExplorerView | None:
        """The widgets' callback: :meth:`update` with the controls' values, then redraw.

        Errors and warnings (e.g. a scheme that refuses these bits, or no image
        stored) are shown under the figure instead of raised.

        Returns
        -------
        ExplorerView or None
            None when the settings were refused.
        """
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                view = self.update(**self.settings())
            self.message = "; ".join(str(w.message) for w in caught)
        except ValueError as exc:
            self.message = str(exc)
            if self._summary is not None:
                self._summary.value = f"<span style='color:#b00'>{_html(self.message)}</span>"
            return None
        if self._image is not None:
            self._image.value = self.png(view)
        if self._summary is not None:
            note = f"<br><span style='color:#a60'>{_html(self.message)}</span>" if self.message else ""
            self._summary.value = _html(self.summary(view)) + note
        return view

    def widget(self):
        """The controls, the figure and a summary line, wired to :meth:`refresh`.

        Returns
        -------
        ipywidgets.Box
            Display it in a notebook (it is the last expression of a cell, or
            ``IPython.display.display(w)``).

        Raises
        ------
        ImportError
            ipywidgets is not installed (the ``explorer`` extra).
        """
        W = _ipywidgets()
        options = [(f"{i}: {lab}", i) for i, lab in enumerate(self.labels)]
        style = {"description_width": "70px"}
        c = self.controls = {
            "stored": W.SelectMultiple(options=options, value=tuple(range(len(options))), rows=min(8, len(options)),
                                       description="stored", style=style),
            "target": W.Dropdown(options=options, value=0, description="cue from", style=style),
            "noise": W.FloatSlider(value=0.2, min=0.0, max=_MAX_NOISE, step=_NOISE_STEP, continuous_update=False,
                                   readout_format=".2f", description="noise", style=style),
            "bits": W.Dropdown(options=[("float", "float")] + [(str(b), b) for b in EXPLORER_BITS if b is not None],
                               value="float", description="bits", style=style),
            "scheme": W.Dropdown(options=list(SCHEMES), value="uniform", description="scheme", style=style),
            "dynamics": W.Dropdown(options=list(EXPLORER_DYNAMICS), value="async", description="dynamics",
                                   style=style),
            "rule": W.Dropdown(options=list(RULES), value="hebb", description="rule", style=style),
            "seed": W.IntText(value=self.seed, description="seed", style=style),
        }
        self._image = W.Image(format="png")
        self._summary = W.HTML()
        for control in c.values():
            control.observe(self.refresh, names="value")
        self.refresh()
        return W.HBox([W.VBox(list(c.values())), W.VBox([self._image, self._summary])])


def _html(text: str) -> str:
    import html

    return html.escape(text)


def _check_shape(shape, N: int) -> tuple[int, int]:
    if shape is None:
        side = math.isqrt(N)
        if side * side != N:
            raise ValueError(f"N={N} neurons is not a square; give shape=(height, width) with height * width = {N}.")
        return side, side
    if (not isinstance(shape, Sequence) or len(shape) != 2
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in shape)):
        raise TypeError(f"shape must be a pair of ints (height, width), got {shape!r}.")
    h, w = int(shape[0]), int(shape[1])
    if h < 1 or w < 1 or h * w != N:
        raise ValueError(f"shape=({h}, {w}) holds {h * w} pixels but the images have N={N} neurons.")
    return h, w


def _check_index(value, n: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < n:
        raise ValueError(f"{name} must be an image index in [0, {n - 1}], got {value!r}.")
    return int(value)


def _check_stored(stored, n: int) -> tuple[int, ...]:
    idx = tuple(_check_index(i, n, "stored") for i in stored)
    if not idx:
        raise ValueError("stored is empty: store at least one image.")
    if len(set(idx)) != len(idx):
        raise ValueError(f"stored={list(idx)} repeats an image; give each index once.")
    return tuple(sorted(idx))


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}.")
    return int(seed)
