"""Ready-made architectures: the digits CNN, LeNet-5 for MNIST, CIFAR ResNets."""

from __future__ import annotations

from .layers import BatchNorm, Conv2D, Dense, Flatten, GlobalAvgPool, MaxPool2D, ReLU, Residual
from .model import Sequential

__all__ = ["digits_cnn", "lenet", "resnet_cifar"]


def digits_cnn(seed: int = 0) -> Sequential:
    """A small CNN for the 8x8 digits: two 3x3 conv+BN+ReLU, max-pool, 64-unit dense."""
    return Sequential([
        Conv2D(1, 16, 3, padding=1), BatchNorm(16), ReLU(),
        Conv2D(16, 32, 3, padding=1), BatchNorm(32), ReLU(), MaxPool2D(2),
        Flatten(), Dense(32 * 4 * 4, 64), ReLU(), Dense(64, 10),
    ], (1, 8, 8), seed=seed)


def lenet(batchnorm: bool = False, seed: int = 0) -> Sequential:
    """LeNet-5 style for 28x28 inputs (LeCun et al. 1998), ReLU and max-pooling;
    ``batchnorm`` adds BatchNorm after every conv and hidden dense layer."""
    def bn(c):
        return [BatchNorm(c)] if batchnorm else []

    return Sequential([
        Conv2D(1, 6, 5, padding=2), *bn(6), ReLU(), MaxPool2D(2),
        Conv2D(6, 16, 5), *bn(16), ReLU(), MaxPool2D(2),
        Flatten(), Dense(16 * 5 * 5, 120), *bn(120), ReLU(), Dense(120, 84), *bn(84), ReLU(), Dense(84, 10),
    ], (1, 28, 28), seed=seed)


def _block(cin, cout, stride):
    body = [Conv2D(cin, cout, 3, stride, 1, bias=False), BatchNorm(cout), ReLU(),
            Conv2D(cout, cout, 3, 1, 1, bias=False), BatchNorm(cout)]
    short = "identity" if stride == 1 and cin == cout else "option_a"
    return [Residual(body, short, stride), ReLU()]


def resnet_cifar(depth: int = 20, num_classes: int = 10, seed: int = 0) -> Sequential:
    """CIFAR ResNet-(6n+2) of He et al. (2016): 16/32/64 channels, option-A shortcuts,
    no conv biases, global average pooling, one dense layer (as akamaster's ResNet-20/32)."""
    if (depth - 2) % 6:
        raise ValueError(f"depth must be 6n+2 (20, 32, 44, 56, ...), got {depth}.")
    n = (depth - 2) // 6
    layers = [Conv2D(3, 16, 3, 1, 1, bias=False), BatchNorm(16), ReLU()]
    cin = 16
    for stage, cout in enumerate((16, 32, 64)):
        for i in range(n):
            layers += _block(cin, cout, 2 if stage > 0 and i == 0 else 1)
            cin = cout
    layers += [GlobalAvgPool(), Dense(64, num_classes)]
    return Sequential(layers, (3, 32, 32), seed=seed)

