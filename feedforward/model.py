"""The model container: a sequence of layers (residual blocks nest their own)."""

from __future__ import annotations

import copy
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from quantization import atomic_write

from ._files import LOADABLE, file_kind, wrong_kind_message
from .layers import BatchNorm, Conv2D, Dense, Identity, Layer, Residual, layer_from_config

__all__ = ["Sequential", "fold_batchnorm", "MODEL_FORMAT"]

MODEL_FORMAT = "hopfield-quant/feedforward-model/1"


class Sequential:
    """Layers applied in order to inputs of shape (N, *input_shape).

    Parameters
    ----------
    layers : list of Layer
    input_shape : tuple of int
        Shape of one sample, e.g. (1, 8, 8).
    seed : int, Generator or None
        Initialisation of the parameters that are not set yet.

    Examples
    --------
    >>> from feedforward.layers import Conv2D, ReLU, Flatten, Dense
    >>> m = Sequential([Conv2D(1, 4, 3, padding=1), ReLU(), Flatten(), Dense(4 * 8 * 8, 10)], (1, 8, 8), seed=0)
    >>> m.forward(np.zeros((2, 1, 8, 8), np.float32)).shape
    (2, 10)
    """

    def __init__(self, layers: list[Layer], input_shape: tuple[int, ...], seed: int | np.random.Generator | None = 0):
        if not layers or not all(isinstance(layer, Layer) for layer in layers):
            raise TypeError("layers must be a non-empty list of Layer objects.")
        self.layers = list(layers)
        self.input_shape = tuple(int(s) for s in input_shape)
        rng = np.random.default_rng(seed)
        s = self.input_shape
        for layer in self.layers:
            s = layer.build(s, rng)
        self.output_shape = s

    # ------------------------------------------------------------------ running

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != len(self.input_shape) + 1 or x.shape[1:] != self.input_shape:
            raise ValueError(f"input has shape {x.shape}; this model expects (N, {', '.join(map(str, self.input_shape))}).")
        if x.dtype.kind not in "fiu":
            raise TypeError(f"input must be numeric, got dtype {x.dtype}.")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not np.isfinite(x).all():
            raise ValueError("input contains NaN or inf values.")
        return x

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """Outputs (logits) for a batch; ``train=True`` caches for :meth:`backward`."""
        y = self._check_input(x)
        for layer in self.layers:
            y = layer.forward(y, train)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        d = np.asarray(dy, np.float32)
        for layer in reversed(self.layers):
            d = layer.backward(d)
        return d

    def logits(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Outputs for every input, in batches, refusing what cannot be trusted.

        Parameters
        ----------
        x : ndarray of shape (N, *input_shape)
        batch_size : int, default 256

        Returns
        -------
        ndarray of shape (N, *output_shape), float32

        Raises
        ------
        ValueError
            When a parameter is invalid (see :meth:`check_parameters`), or when the
            outputs of some inputs are NaN or inf (the message counts them, names the
            first few and the first layer whose output is not finite), rather than
            returning predictions that would be argmax of NaN.
        """
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}.")
        self.check_parameters()
        x = np.asarray(x)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # reported below instead
            out = [self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        y = np.concatenate(out) if out else np.empty((0, *self.output_shape), np.float32)
        bad = np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).all(axis=1))
        if bad.size:
            first = ", ".join(map(str, bad[:5])) + (", ..." if bad.size > 5 else "")
            raise ValueError(f"the model's outputs (logits) are NaN or inf for {bad.size} of {len(y)} inputs "
                             f"(input {first}); {self._first_nonfinite_layer(x[bad[0]:bad[0] + 1])}. "
                             "No predictions or accuracy are computed from them.")
        return y

    def _first_nonfinite_layer(self, x1: np.ndarray) -> str:
        """Where one input's activations stop being finite, in words."""
        y = self._check_input(x1)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for i, layer in enumerate(self.layers):
                y = layer.forward(y)
                if not np.isfinite(y).all():
                    return (f"the first non-finite activation is the output of layer {i} ({type(layer).__name__}): "
                            "its parameters overflow float32 or divide by zero")
        return "no layer output is non-finite when that input is run alone"

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class predictions (argmax of the logits), in batches.

        Raises
        ------
        ValueError
            As :meth:`logits`: invalid parameters, or NaN/inf outputs.
        """
        return self.logits(x, batch_size).argmax(axis=1)

    def accuracy(self, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
        """Fraction of inputs whose predicted class equals the label.

        Raises
        ------
        ValueError, TypeError
            Labels that are not one integer per input (e.g. shape (N, 1) or one-hot),
            which would otherwise broadcast into a meaningless figure; invalid
            parameters or NaN/inf outputs (see :meth:`logits`).
        """
        y = check_labels(y, len(x))
        return float(np.mean(self.predict(x, batch_size) == y))

    def zero_grads(self) -> None:
        for layer in self.layers:
            layer.zero_grads()

    # ------------------------------------------------------------- inspection

    def named_layers(self) -> list[tuple[str, Layer]]:
        """Every layer with its dotted path ("3", "5.body.0"), depth first."""
        out = []

        def walk(prefix, layer):
            out.append((prefix, layer))
            for name, child in layer.children():
                walk(f"{prefix}.{name}", child)

        for i, layer in enumerate(self.layers):
            walk(str(i), layer)
        return out

    def named_parameters(self) -> dict[str, np.ndarray]:
        """All parameters and BatchNorm running statistics as "path.name" -> array."""
        out = {}
        for path, layer in self.named_layers():
            for k, v in layer.params.items():
                out[f"{path}.{k}"] = v
            for k, v in getattr(layer, "state", {}).items():
                out[f"{path}.{k}"] = v
        return out

    def set_parameters(self, arrays: dict[str, np.ndarray]) -> None:
        """Load arrays by name; names and shapes must match exactly."""
        own = self.named_parameters()
        missing, extra = set(own) - set(arrays), set(arrays) - set(own)
        if missing or extra:
            raise ValueError(f"parameters do not match the architecture: missing {sorted(missing)[:5]}, "
                             f"unexpected {sorted(extra)[:5]}.")
        layers = dict(self.named_layers())
        for name, a in arrays.items():
            path, key = name.rsplit(".", 1)
            layer = layers[path]
            target = layer.params if key in layer.params else layer.state
            if np.shape(a) != target[key].shape:
                raise ValueError(f"parameter {name} has shape {np.shape(a)}, expected {target[key].shape}.")
            a = np.asarray(a)
            if a.dtype.kind != "f" or not np.isfinite(a).all():
                raise ValueError(f"parameter {name} must be finite floats (found NaN/inf or dtype {a.dtype}).")
            if isinstance(layer, BatchNorm) and key == "running_var":
                _check_variance(name, a)
            target[key] = np.ascontiguousarray(a, dtype=np.float32)

    def check_parameters(self) -> None:
        """Refuse parameters that make the outputs meaningless.

        Raises
        ------
        ValueError
            Naming the layer and the parameter: a NaN or inf anywhere, or a negative
            BatchNorm ``running_var`` (a variance cannot be negative; the square root of
            ``running_var + eps`` would make that channel NaN).
        """
        for path, layer in self.named_layers():
            for group in (layer.params, getattr(layer, "state", {})):
                for key, a in group.items():
                    _check_array(f"{path}.{key}", type(layer).__name__, a)
            if isinstance(layer, BatchNorm) and "running_var" in layer.state:
                _check_variance(f"{path}.running_var", layer.state["running_var"])

    def n_params(self) -> int:
        """Trainable parameters (BatchNorm running statistics excluded)."""
        return sum(v.size for _, layer in self.named_layers() for v in layer.params.values())

    def macs(self) -> int:
        """Multiply-accumulates per sample."""
        total, s = 0, self.input_shape
        for layer in self.layers:
            total += layer.macs(s)
            s = layer.output_shape(s)
        return total

    def config(self) -> dict:
        return {"format": MODEL_FORMAT, "input_shape": list(self.input_shape),
                "layers": [layer.config() for layer in self.layers]}

    @classmethod
    def from_config(cls, cfg: dict) -> Sequential:
        if not isinstance(cfg, dict) or cfg.get("format") != MODEL_FORMAT:
            raise ValueError(f"not a model architecture of format {MODEL_FORMAT!r}.")
        return cls([layer_from_config(c) for c in cfg["layers"]], tuple(cfg["input_shape"]), seed=0)

    def summary(self) -> str:
        lines, s = [], self.input_shape
        for i, layer in enumerate(self.layers):
            o = layer.output_shape(s)
            n = sum(v.size for _, sub in [(None, layer)] + layer.children() for v in sub.params.values())
            lines.append(f"{i:>3} {layer!r:<60} {str(o):<16} {n:>9,}")
            s = o
        lines.append(f"parameters {self.n_params():,}, MACs per sample {self.macs():,}")
        return "\n".join(lines)

    # ---------------------------------------------------------------- files

    def save(self, path: str | os.PathLike) -> int:
        """Write the float32 model: one .npz holding the architecture as JSON
        (``__architecture__``) and every parameter; atomic.  Returns the size in bytes."""
        buf = io.BytesIO()
        arrays = {"__architecture__": np.frombuffer(json.dumps(self.config()).encode(), np.uint8)}
        arrays.update(self.named_parameters())
        np.savez(buf, **arrays)
        atomic_write(path, buf.getvalue())
        return len(buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Sequential:
        """Read a model written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            When ``path`` does not exist.
        ValueError
            Naming the file: another kind of model file (a quantized ``.hq`` file, a
            PyTorch checkpoint, an ONNX model; the message names the function that reads
            it), a file that is no model at all, a damaged one, or invalid parameters
            (see :meth:`check_parameters`).
        """
        p = Path(path)
        kind = file_kind(p)
        if kind == "unknown":
            raise ValueError(f"{p}: not a readable model file: Sequential.save writes .npz archives, and this file "
                             "does not begin like one.")
        if kind not in ("float", "npz"):
            raise ValueError(wrong_kind_message(p, kind, "a float model file written by Sequential.save"
                                                if kind in LOADABLE else "a readable model file"))
        pickled = None
        try:
            z = np.load(p, allow_pickle=False)
            with z:
                arrays = {}
                for k in z.files:
                    try:
                        arrays[k] = z[k]
                    except ValueError as exc:
                        if "pickle" not in str(exc):  # numpy's "Object arrays cannot be loaded when allow_pickle=False"
                            raise
                        pickled = k
                        break
        except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ValueError(f"{p}: not a readable model file ({type(exc).__name__}: {exc}); "
                             "it may be truncated or corrupted.") from None
        if pickled is not None:
            raise ValueError(f"{p}: entry {pickled!r} holds Python objects, which a model file never does (only "
                             "numeric arrays); pickled objects are never loaded, they can run code.")
        if "__architecture__" not in arrays:
            raise ValueError(f"{p}: no __architecture__ entry; not a model file written by Sequential.save.")
        try:
            cfg = json.loads(arrays.pop("__architecture__").tobytes().decode())
            model = cls.from_config(cfg)
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"{p}: corrupted architecture ({type(exc).__name__}: {exc}).") from None
        except ValueError as exc:
            raise ValueError(f"{p}: {exc}") from None
        try:
            model.set_parameters(arrays)
        except ValueError as exc:
            raise ValueError(f"{p}: {exc}") from None
        return model


def check_labels(y, n: int) -> np.ndarray:
    """``y`` as an array of ``n`` integer class indices, or a ValueError/TypeError that
    says how to get one (labels of shape (N, 1) or one-hot would broadcast silently)."""
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},), one class index per input, got {y.shape}; "
                         "for (N, 1) labels pass y.ravel(), for one-hot labels y.argmax(1).")
    if y.dtype.kind not in "iu":
        raise TypeError(f"y must hold integer class indices, got dtype {y.dtype}; use y.astype(int).")
    return y


def _check_array(name: str, layer_type: str, a: np.ndarray) -> None:
    a = np.asarray(a)
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        bad = ~np.isfinite(a)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"parameter {name} (layer {name.rsplit('.', 1)[0]}, {layer_type}) holds "
                         f"{int(bad.sum())} NaN or inf values (first at index {first}: {a[first]}); "
                         "every parameter must be finite.")


def _check_variance(name: str, var: np.ndarray) -> None:
    var = np.asarray(var)
    neg = np.flatnonzero(var.ravel() < 0)
    if neg.size:
        raise ValueError(f"parameter {name} (layer {name.rsplit('.', 1)[0]}, BatchNorm) has {neg.size} negative "
                         f"value{'s' if neg.size > 1 else ''} (first: channel {neg[0]}, {var.ravel()[neg[0]]:g}); "
                         "a variance cannot be negative (it would make that channel NaN): the model's file or "
                         "statistics were damaged or edited.")


def _fold_list(layers: list[Layer]) -> list[Layer]:
    out: list[Layer] = []
    for layer in layers:
        if isinstance(layer, Residual):
            layer.body = _fold_list(layer.body)
        if isinstance(layer, BatchNorm) and out and isinstance(out[-1], (Conv2D, Dense)):
            ident = Identity()
            ident.input_shape = layer.input_shape
            prev = out[-1]
            st = layer.state
            scale = layer.params["weight"].astype(np.float64) / np.sqrt(st["running_var"].astype(np.float64) + layer.eps)
            W = prev.params["weight"].astype(np.float64)
            b = prev.params.get("bias", np.zeros(W.shape[0])).astype(np.float64)
            shape = (-1,) + (1,) * (W.ndim - 1)
            prev.params["weight"] = (W * scale.reshape(shape)).astype(np.float32)
            prev.params["bias"] = ((b - st["running_mean"]) * scale + layer.params["bias"]).astype(np.float32)
            prev.bias = True
            out.append(ident)
            continue
        out.append(layer)
    return out


def fold_batchnorm(model: Sequential) -> Sequential:
    """A copy of ``model`` with every BatchNorm that follows a Conv2D or Dense folded
    into it (inference statistics): W' = W gamma / sqrt(var + eps),
    b' = (b - mean) gamma / sqrt(var + eps) + beta, leaving an Identity in its place so
    that layer paths are unchanged.  Outputs are unchanged up to float32 rounding.

    Raises
    ------
    ValueError
        On invalid parameters, e.g. a negative running variance (see
        :meth:`Sequential.check_parameters`).
    """
    model.check_parameters()
    m = copy.deepcopy(model)
    m.layers = _fold_list(m.layers)
    return m
