"""Hopfield associative memories on quantized weights.

Store +-1 patterns (Hebb, projection, Storkey or perceptron rule), quantize the weights through the
shared core :mod:`quantization`, and run energy-descent dynamics directly on the uint8
codes and codebook to study recall quality versus weight bits.
"""

from .explorer import Explorer
from .images import image_to_pattern, images_to_patterns, letter_patterns, plot_patterns
from .learning import (
    covariance_weights,
    dilute,
    gardner_capacity,
    perceptron_weights,
    sparse_patterns,
    stabilities,
    threshold_recall,
    tsodyks_feigelman_capacity,
)
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
    "perceptron_weights",
    "stabilities",
    "gardner_capacity",
    "tsodyks_feigelman_capacity",
    "sparse_patterns",
    "covariance_weights",
    "threshold_recall",
    "dilute",
]
