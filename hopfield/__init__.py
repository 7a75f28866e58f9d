"""Hopfield associative-memory simulator running on quantized weights.

Placeholder: the simulator (Hebbian, projection and Storkey rules, energy-descent
dynamics on codes + codebook, capacity and basin studies) is tracked in its own issue.
It will use :mod:`quantization` for every quantization and never import
:mod:`feedforward`.
"""

__all__: list[str] = []
