import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

# The CUDA backend's tests (test_cuda.py) run on numba-cuda's simulator unless the variable
# is already set (NUMBA_ENABLE_CUDASIM=0 on a GPU machine runs them on the GPU).  It must be
# set before numba.cuda is first imported; numba's CPU target ignores it.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

# Derandomized in CI so a red run is reproducible; no deadline because the first
# example of a test may include numba compilation.
settings.register_profile(
    "ci", deadline=None, derandomize=True, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _ci_requirements() -> list[str]:
    """The test extra of pyproject.toml, plus torch (which .ci/run installs itself)."""
    import tomllib

    meta = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    return list(meta["project"]["optional-dependencies"]["test"]) + ["torch"]


def missing_requirements(requirements: list[str]) -> list[str]:
    """Requirements (PEP 508 strings) with no installed distribution of that name."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    missing = []
    for spec in requirements:
        req = Requirement(spec)
        try:
            if not req.specifier.contains(version(req.name), prereleases=True):
                missing.append(f"{spec} (found {version(req.name)})")
        except PackageNotFoundError:
            missing.append(spec)
    return missing


def pytest_sessionstart(session):
    # In CI nothing may be skipped for want of a test dependency: a missing one would turn
    # whole modules (ONNX, notebooks, Dask, PyTorch, the digits tests) into silent skips.
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        missing = missing_requirements(_ci_requirements())
        if missing:
            raise RuntimeError("CI=true but these test dependencies are missing, so their tests would be "
                               f"skipped: {', '.join(missing)}. Install the test extra: pip install '.[test]'.")
