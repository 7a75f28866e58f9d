"""Hopfield associative memories on quantized weights.

Store +-1 patterns (Hebb, projection or Storkey rule), quantize the weights through the
shared core :mod:`quantization`, and run energy-descent dynamics directly on the uint8
codes and codebook to study recall quality versus weight bits.
"""

from .measures import classify_states, overlaps, target_overlaps
from .network import DYNAMICS, RULES, HopfieldNetwork, QuantizedHopfieldNetwork, RecallResult
from .patterns import digits_patterns, flip_noise, random_patterns

__all__ = [
    "HopfieldNetwork",
    "QuantizedHopfieldNetwork",
    "RecallResult",
    "DYNAMICS",
    "RULES",
    "random_patterns",
    "flip_noise",
    "digits_patterns",
    "overlaps",
    "target_overlaps",
    "classify_states",
]
