"""CSV and JSON outputs of studies, written atomically."""

from __future__ import annotations

import csv
import io
import json

from quantization import atomic_write


def write_csv(rows: list[dict], path) -> None:
    """Write tidy rows (dicts with the same keys) as CSV, atomically."""
    if not rows:
        raise ValueError("no rows to write")
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    wr.writeheader()
    wr.writerows(rows)
    atomic_write(path, buf.getvalue())


def write_json(obj: dict, path) -> None:
    """Write a JSON sidecar atomically."""
    atomic_write(path, json.dumps(obj, indent=2, default=str))
