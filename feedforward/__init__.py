"""Feedforward CNNs in numpy/numba with post-training quantization.

Placeholder: layers, model container, training and ``quantize_model`` are tracked in
their own issue. The module will use :mod:`quantization` for every quantization and
never import :mod:`hopfield`.
"""

__all__: list[str] = []
