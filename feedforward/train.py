"""Training: softmax cross-entropy, SGD with momentum and weight decay, Adam."""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from .model import Sequential

__all__ = ["softmax_cross_entropy", "SGD", "Adam", "train"]


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient
    with respect to the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = len(labels)
    loss = -float(logp[np.arange(n), labels].mean())
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1.0
    return loss, (grad / n).astype(np.float32)


class SGD:
    """SGD with (heavy-ball) momentum and L2 weight decay on weights (not biases/BN)."""

    def __init__(self, lr: float = 0.05, momentum: float = 0.9, weight_decay: float = 5e-4):
        self.lr, self.momentum, self.wd = float(lr), float(momentum), float(weight_decay)
        self._v: dict = {}

    def step(self, model: Sequential) -> None:
        for path, layer in model.named_layers():
            for k, p in layer.params.items():
                g = layer.grads[k]
                if self.wd and k == "weight" and p.ndim > 1:
                    g = g + self.wd * p
                v = self._v.get((path, k))
                v = g if v is None else self.momentum * v + g
                self._v[(path, k)] = v
                p -= self.lr * v


class Adam:
    """Adam (Kingma & Ba 2015) with decoupled weight decay on weights."""

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        self.lr, (self.b1, self.b2), self.eps, self.wd = float(lr), betas, float(eps), float(weight_decay)
        self._m: dict = {}
        self._v: dict = {}
        self._t = 0

    def step(self, model: Sequential) -> None:
        self._t += 1
        for path, layer in model.named_layers():
            for k, p in layer.params.items():
                g = layer.grads[k]
                m = self._m.get((path, k), np.zeros_like(p)) * self.b1 + (1 - self.b1) * g
                v = self._v.get((path, k), np.zeros_like(p)) * self.b2 + (1 - self.b2) * g * g
                self._m[(path, k)], self._v[(path, k)] = m, v
                mh = m / (1 - self.b1 ** self._t)
                vh = v / (1 - self.b2 ** self._t)
                if self.wd and k == "weight" and p.ndim > 1:
                    p -= self.lr * self.wd * p
                p -= (self.lr * mh / (np.sqrt(vh) + self.eps)).astype(np.float32)


def train(model: Sequential, x: np.ndarray, y: np.ndarray, epochs: int = 10, batch_size: int = 64,
          optimizer: SGD | Adam | None = None, seed: int | np.random.Generator | None = 0,
          x_val: np.ndarray | None = None, y_val: np.ndarray | None = None, lr_schedule: str = "cosine",
          progress: bool = True) -> list[dict]:
    """Train with mini-batches in a seeded random order; returns one dict per epoch
    (epoch, loss, train_accuracy, val_accuracy, lr).

    ``lr_schedule`` "cosine" anneals the optimizer's learning rate to 0 over the run;
    "constant" keeps it.  A tqdm bar shows loss and accuracy (``progress=False`` hides it).
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}.")
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.int64)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)} labels.")
    if y.min() < 0 or y.max() >= model.output_shape[0]:
        raise ValueError(f"labels must lie in 0..{model.output_shape[0] - 1}, found {y.min()}..{y.max()}.")
    if lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"lr_schedule={lr_schedule!r} is not supported; use 'cosine' or 'constant'.")
    opt = optimizer or SGD()
    base_lr = opt.lr
    rng = np.random.default_rng(seed)
    steps = epochs * -(-len(x) // batch_size)
    step = 0
    history = []
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        tot_loss = tot_ok = 0.0
        bar = tqdm(range(0, len(x), batch_size), desc=f"epoch {epoch + 1}/{epochs}", disable=not progress,
                   leave=False)
        for i in bar:
            if lr_schedule == "cosine":
                opt.lr = base_lr * 0.5 * (1 + np.cos(np.pi * step / steps))
            idx = order[i:i + batch_size]
            model.zero_grads()
            logits = model.forward(x[idx], train=True)
            loss, g = softmax_cross_entropy(logits, y[idx])
            model.backward(g)
            opt.step(model)
            step += 1
            tot_loss += loss * len(idx)
            tot_ok += float((logits.argmax(1) == y[idx]).sum())
            bar.set_postfix(loss=f"{loss:.3f}")
        row = {"epoch": epoch + 1, "loss": tot_loss / len(x), "train_accuracy": tot_ok / len(x), "lr": opt.lr}
        if x_val is not None:
            row["val_accuracy"] = model.accuracy(x_val, y_val)
        history.append(row)
    opt.lr = base_lr
    return history
