"""Hopfield associative memories on quantized weights.

Store +-1 patterns (Hebb, projection or Storkey rule), quantize the weights through the
shared core :mod:`quantization`, and run energy-descent dynamics directly on the uint8
codes and codebook to study recall quality versus weight bits.
"""

from .explorer import Explorer
from .images import image_to_pattern, images_to_patterns, letter_patterns, plot_patterns
from .measures import classify_states, overlaps, target_overlaps
from .network import DYNAMICS, RULES, HopfieldNetwork, QuantizedHopfieldNetwork, RecallResult
from .patterns import digits_patterns, flip_noise, random_patterns
from .trajectory import Trajectory, plot_trajectory, record_recall, save_animation

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
    "image_to_pattern",
    "images_to_patterns",
    "letter_patterns",
    "plot_patterns",
    "Trajectory",
    "record_recall",
    "plot_trajectory",
    "save_animation",
    "Explorer",
]
