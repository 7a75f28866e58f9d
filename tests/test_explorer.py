"""The notebook explorer: its callbacks run without a browser, and its widgets drive them."""

import importlib.util
import sys

import numpy as np
import pytest

from hopfield import HopfieldNetwork, random_patterns
from hopfield.explorer import Explorer, ExplorerView

needs_ipywidgets = pytest.mark.skipif(importlib.util.find_spec("ipywidgets") is None,
                                      reason="ipywidgets is not installed (the explorer extra)")


@pytest.fixture
def explorer():
    X = random_patterns(5, 64, seed=0)
    return Explorer(X, shape=(8, 8), labels=list("ABCDE"), seed=3)


def test_update_recalls_and_reports(explorer):
    v = explorer.update(target=2, noise=0.1)
    assert isinstance(v, ExplorerView) and explorer.view is v
    assert v.kind == "retrieved" and v.target_overlap == 1.0 and v.converged
    assert v.rho == 1.0 and v.bits is None and v.stored == (0, 1, 2, 3, 4)
    assert v.cue.shape == v.recalled.shape == (64,) and v.cue.dtype == np.int8
    assert (v.cue != explorer.images[2]).sum() == round(0.1 * 64)
    np.testing.assert_allclose(v.overlaps, explorer.images @ v.recalled / 64.0)
    np.testing.assert_allclose(v.cue_overlaps, explorer.images @ v.cue / 64.0)


def test_quantized_rho_is_the_networks(explorer):
    v = explorer.update(target=0, noise=0.2, bits=2, scheme="exponential", dynamics="sync")
    q = HopfieldNetwork.from_patterns(explorer.images).quantize(2, "exponential")
    assert v.rho == pytest.approx(q.rho) and v.rho < 1.0
    assert explorer.update(bits="float").rho == 1.0


def test_same_settings_same_view_and_noise_grows_by_nesting(explorer):
    a = explorer.update(target=1, noise=0.3, bits=3)
    b = explorer.update(target=1, noise=0.3, bits=3)
    np.testing.assert_array_equal(a.cue, b.cue)
    np.testing.assert_array_equal(a.recalled, b.recalled)
    small = explorer.update(target=1, noise=0.1)
    flipped_small = small.cue != explorer.images[1]
    flipped_big = a.cue != explorer.images[1]
    assert np.all(flipped_big[flipped_small])  # the slider adds flips; it does not redraw them
    other = explorer.update(target=1, noise=0.3, bits=3, seed=4)
    assert not np.array_equal(other.cue, a.cue)


def test_stored_subset_and_unstored_target(explorer):
    v = explorer.update(target=4, noise=0.0, stored=[0, 1])
    assert v.stored == (0, 1)
    assert v.target_overlap < 1.0  # image 4 is not stored: the network cannot keep it
    assert explorer.update(target=0, noise=0.0, stored=(1, 0), rule="projection").kind == "retrieved"


@pytest.mark.parametrize("kwargs,match", [
    (dict(target=5), r"target must be an image index in \[0, 4\]"),
    (dict(noise=1.5), r"noise must be a number in \[0.0, 1.0\]"),
    (dict(bits=9), r"bits must be None \(float weights\) or an int in 1..8"),
    (dict(bits=2.0), "bits must be None"),
    (dict(scheme="fancy"), "scheme='fancy' is not supported"),
    (dict(dynamics="glauber"), "dynamics='glauber' is not supported"),
    (dict(rule="oja"), "rule='oja' is not supported"),
    (dict(stored=[]), "stored is empty"),
    (dict(stored=[1, 1]), "repeats an image"),
    (dict(seed=-1), "seed must be an int >= 0"),
])
def test_update_refuses_bad_settings(explorer, kwargs, match):
    with pytest.raises(ValueError, match=match):
        explorer.update(**kwargs)


def test_constructor_refuses_bad_input():
    X = random_patterns(3, 12, seed=0)
    with pytest.raises(ValueError, match="N=12 neurons is not a square"):
        Explorer(X)
    with pytest.raises(ValueError, match=r"shape=\(3, 3\) holds 9 pixels but the images have N=12"):
        Explorer(X, shape=(3, 3))
    with pytest.raises(ValueError, match="got 2 labels for 3 images"):
        Explorer(X, shape=(3, 4), labels=["a", "b"])
    with pytest.raises(ValueError, match="images must contain only"):
        Explorer(np.zeros((2, 4)), shape=(2, 2))


def test_figure_png_and_summary(explorer):
    v = explorer.update(target=3, noise=0.25, bits=1)
    fig = explorer.figure(v)
    assert len(fig.axes) == 4
    assert explorer.png(v)[:8] == b"\x89PNG\r\n\x1a\n"
    text = explorer.summary(v)
    assert "target 'D'" in text and "1 bit uniform" in text and f"rho {v.rho:.4f}" in text
    with pytest.raises(RuntimeError, match="call widget\\(\\) first"):
        explorer.settings()


@needs_ipywidgets
def test_widget_builds_and_its_controls_drive_the_callback(explorer, monkeypatch):
    import ipywidgets

    box = explorer.widget()
    assert isinstance(box, ipywidgets.Box)
    c = explorer.controls
    assert set(c) == {"stored", "target", "noise", "bits", "scheme", "dynamics", "rule", "seed"}
    first = explorer.view
    assert first is not None and explorer._image.value[:8] == b"\x89PNG\r\n\x1a\n"
    drawn = []
    monkeypatch.setattr(explorer, "png", lambda view=None: drawn.append(view) or b"png")  # skip the slow drawing
    c["noise"].value = 0.35  # the observer calls refresh
    assert explorer.view.noise == 0.35 and explorer.view is not first
    c["bits"].value = 2
    c["scheme"].value = "lloyd"
    assert (explorer.view.bits, explorer.view.scheme) == (2, "lloyd")
    c["target"].value = 4
    c["stored"].value = (0, 4)
    assert explorer.view.target == 4 and explorer.view.stored == (0, 4)
    assert "target &#x27;E&#x27;" in explorer._summary.value
    c["dynamics"].value = "sync"
    c["seed"].value = 9
    assert (explorer.view.dynamics, explorer.view.seed) == ("sync", 9)
    assert drawn[-1] is explorer.view and explorer._image.value == b"png"  # every change redraws


@needs_ipywidgets
def test_widget_shows_refused_settings_instead_of_raising(explorer, monkeypatch):
    monkeypatch.setattr(explorer, "png", lambda view=None: b"png")
    explorer.widget()
    c = explorer.controls
    kept = explorer.view
    c["stored"].value = ()
    assert "stored is empty" in explorer.message and explorer.view is kept
    assert "stored is empty" in explorer._summary.value
    c["stored"].value = (0, 1, 2)
    c["scheme"].value = "pow2"
    c["bits"].value = 8  # pow2 stops at 5 bits
    assert "pow2" in explorer.message and explorer.view.bits is None
    c["bits"].value = 3
    assert explorer.message == "" and explorer.view.bits == 3


def test_widget_without_ipywidgets_names_the_extra(explorer, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(ImportError, match=r"hopfield-quant\[explorer\]"):
        explorer.widget()
    assert explorer.update(noise=0.1).kind == "retrieved"  # the callbacks need no widgets
