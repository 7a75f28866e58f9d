"""Atomic file writes, shared by every package of the project."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["atomic_write", "save_figure"]

_TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, data: bytes | str | Iterable[bytes]) -> int:
    """Write ``data`` to ``path`` so that a crash never leaves a half-written file.

    The bytes go to a temporary file in the same directory with a unique name
    (``.<name>.<pid>.<random>.tmp``, so concurrent writers never collide), which is
    flushed, fsynced and renamed over ``path``; on any error the temporary file is
    removed and ``path`` is untouched.  A temporary of the same target left behind by a
    writer that was killed (its process no longer exists) is removed on the next write.
    Parent directories are created.  ``str`` data is UTF-8 encoded.

    Returns
    -------
    int
        Bytes written.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    chunks = [data.encode("utf-8")] if isinstance(data, str) else [data] if isinstance(data, bytes) else list(data)
    _remove_stale_temporaries(p)
    fd, tmp = tempfile.mkstemp(prefix=f"{_tmp_prefix(p)}{os.getpid()}.", suffix=_TMP_SUFFIX, dir=p.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return sum(len(c) for c in chunks)


def _tmp_prefix(p: Path) -> str:
    return f".{p.name}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove_stale_temporaries(p: Path) -> None:
    """Remove ``.<name>.<pid>.*.tmp`` files of target ``p`` whose writer process is gone."""
    prefix = _tmp_prefix(p)
    try:
        entries = list(os.scandir(p.parent))
    except OSError:
        return
    for e in entries:
        name = e.name
        if not (name.startswith(prefix) and name.endswith(_TMP_SUFFIX)):
            continue
        pid_text = name[len(prefix):].split(".", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
            continue
        try:
            os.unlink(e.path)
        except OSError:
            pass  # another writer cleaned it first, or no permission: harmless


def save_figure(fig, path: str | os.PathLike, **savefig_kwargs) -> None:
    """Save a matplotlib figure atomically (render to memory, then :func:`atomic_write`).

    The format follows the suffix of ``path`` unless ``format`` is given.
    """
    import io

    p = Path(path)
    buf = io.BytesIO()
    savefig_kwargs.setdefault("format", p.suffix.lstrip(".") or "png")
    fig.savefig(buf, **savefig_kwargs)
    atomic_write(p, buf.getvalue())


def write_csv(rows: list[dict], path: str | os.PathLike) -> None:
    """Write tidy rows (dicts with the same keys, in order) as CSV, atomically."""
    import csv
    import io

    if not rows:
        raise ValueError("no rows to write")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write(path, buf.getvalue())


def write_json(obj: dict, path: str | os.PathLike) -> None:
    """Write a JSON document (e.g. a run's sidecar) atomically."""
    import json
    import math

    def clean(v):  # strict JSON has no NaN or infinity: write null
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:  # numpy scalars
            return clean(v.item())
        return v

    atomic_write(path, json.dumps(clean(obj), indent=2, default=str, allow_nan=False))


def run_sidecar(command: str, parameters: dict, seed: int, seconds: float, **extra) -> dict:
    """What every command-line run records next to its results: the command line, all
    parameters, the seed, package versions and the elapsed time."""
    import platform
    import sys

    import numba
    import numpy as np

    from . import __version__

    return dict(command=command, argv=" ".join(sys.argv), parameters=parameters, seed=seed, version=__version__,
                python=platform.python_version(), numpy=np.__version__, numba=numba.__version__,
                seconds=round(seconds, 3), **extra)


def run_command(handler, args, interrupted: str = "interrupted") -> int:
    """Run a command-line handler: one line on stderr and status 2 for any error (the
    traceback only with ``args.debug``), 130 and the ``interrupted`` line on Ctrl-C."""
    import sys

    try:
        handler(args)
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the command line reports every error in one line
        if getattr(args, "debug", False):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
