"""Describe the machine a benchmark ran on (printed at the top of every bench script)."""

import importlib.metadata
import os
import platform

import numba
import numpy as np


def describe() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"machine: {cpu}, {os.cpu_count()} cores, numba threads {numba.get_num_threads()}, "
            f"BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS', os.environ.get('OMP_NUM_THREADS', 'default'))}, "
            f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}{_torch()}")


def _torch() -> str:
    """torch's version (its int8 GEMM runs the Hopfield integer GEMMs, see hopfield._int8), if installed."""
    try:
        v = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return ", no torch"
    return f", torch {v}" + ("" if os.environ.get("HOPFIELD_INT8_GEMM", "1") != "0" else " (HOPFIELD_INT8_GEMM=0)")
