"""The shared quantization core of hopfield-quant: arrays in, integer codes + codebook out.

Public API
----------
quantize(w, bits, scheme, objective, axis, group_size, *, gain, preserve_mean, seed)
    Fit levels and encode a float tensor; returns a :class:`QuantizedTensor`.
QuantizedTensor
    Frozen container: uint8 ``codes``, float32 ``params``/``codebook``, layout,
    ``dequantize()``, ``nbytes``, ``correlation(w)``, ``sqnr_db(w)``.
pack_bits, unpack_bits
    Exact LSB-first bit packing of 1..8-bit codes.
save, load
    A compact, versioned, checksummed file of named quantized tensors.
correlation, sqnr_db
    Quality metrics.

The background: Karandashev, Kryzhanovsky, Malsagov et al. found that what matters when
quantizing the weights of Hopfield networks, and later of trained CNNs, is the
correlation between the original and the quantized weights; ``objective="correlation"``
chooses the levels to maximise it.
"""

from ._core import PARAM_DTYPES, QuantizedTensor, quantize, round_bfloat16
from ._format import FORMAT_VERSION, FormatError, load, save
from ._io import atomic_write
from ._packing import pack_bits, packed_nbytes, unpack_bits
from ._validate import GAINS, OBJECTIVES, SCHEMES
from .metrics import correlation, sqnr_db

__version__ = "0.1.0"

__all__ = [
    "quantize",
    "QuantizedTensor",
    "pack_bits",
    "unpack_bits",
    "packed_nbytes",
    "save",
    "load",
    "FormatError",
    "FORMAT_VERSION",
    "atomic_write",
    "correlation",
    "sqnr_db",
    "SCHEMES",
    "PARAM_DTYPES",
    "round_bfloat16",
    "OBJECTIVES",
    "GAINS",
    "__version__",
]
