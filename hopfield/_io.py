"""Atomic CSV and JSON outputs of studies."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path


def _atomic_text(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_csv(rows: list[dict], path) -> None:
    """Write tidy rows (dicts with the same keys) as CSV, atomically."""
    if not rows:
        raise ValueError("no rows to write")

    def w(f):
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)

    _atomic_text(Path(path), w)


def write_json(obj: dict, path) -> None:
    """Write a JSON sidecar atomically."""
    _atomic_text(Path(path), lambda f: json.dump(obj, f, indent=2, default=str))
