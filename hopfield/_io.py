"""CSV and JSON outputs of studies, written atomically (the core's writers)."""

from quantization._io import write_csv, write_json

__all__ = ["write_csv", "write_json"]
