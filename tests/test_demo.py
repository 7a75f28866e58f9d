"""The demo command writes its table, CSV and plot."""

import csv
import subprocess
import sys

import pytest

from quantization.__main__ import main


def test_demo_writes_csv_and_png(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--n", "3000", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "laplacian" in printed and "rho / SQNR" in printed
    rows = list(csv.DictReader(open(tmp_path / "quantization_demo.csv")))
    assert len(rows) == 3 * 2 * (3 * 8 + 5)  # pow2 stops at 5 bits
    assert {r["scheme"] for r in rows} == {"uniform", "exponential", "pow2", "lloyd"}
    for r in rows:
        assert 0.0 < float(r["rho"]) <= 1.0
    png = (tmp_path / "quantization_demo.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_cli_bad_argument_exits_nonzero(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "quantization", "demo", "--n", "1", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--n must be at least 2" in proc.stderr
    with pytest.raises(SystemExit):
        main(["nonsense"])
