"""Feedforward CNNs in numpy/numba and their post-training quantization.

Layers with forward and backward passes (NCHW), a model container that can express
CIFAR-style ResNets and depthwise-separable nets, training (SGD with momentum, Adam),
and ``quantize_model``, which quantizes every conv/dense weight through the shared core
:mod:`quantization` with no data and no retraining.
"""

from .datasets import load_digits, load_idx, load_mnist
from .layers import (AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool, Identity, MaxPool2D,
                     ReLU, ReLU6, Residual)
from .model import Sequential, fold_batchnorm
from .quantize import QuantizedModel, accuracy_vs_bits, load_quantized, plot_accuracy_vs_bits, quantize_model
from .onnx_io import from_onnx, to_onnx
from .remedies import BitAllocation, allocate_bits
from .torch_io import from_torch, load_state_dict, quantize_torch_model
from .train import SGD, Adam, softmax_cross_entropy, train
from .zoo import digits_cnn, lenet, resnet_cifar

__all__ = [
    "Conv2D", "Dense", "ReLU", "MaxPool2D", "AvgPool2D", "GlobalAvgPool", "BatchNorm", "Flatten", "Dropout",
    "ReLU6", "Residual", "Identity", "Sequential", "fold_batchnorm", "train", "SGD", "Adam", "softmax_cross_entropy",
    "quantize_model", "QuantizedModel", "load_quantized", "accuracy_vs_bits", "plot_accuracy_vs_bits",
    "allocate_bits", "BitAllocation", "from_torch", "from_onnx", "to_onnx", "load_state_dict", "quantize_torch_model",
    "load_digits", "load_idx", "load_mnist", "digits_cnn", "lenet", "resnet_cifar",
]
