"""python -m feedforward: train, quantize, evaluate, demo."""

import csv
import json

import pytest

pytest.importorskip("sklearn")

from feedforward.__main__ import main  # noqa: E402


def test_train_quantize_evaluate(tmp_path, capsys):
    m, q = tmp_path / "m", tmp_path / "q"
    assert main(["train", "--epochs", "2", "--out", str(m), "--quiet"]) == 0
    meta = json.loads((m / "train.json").read_text())
    assert meta["parameters"]["epochs"] == 2 and meta["seed"] == 0 and 0.5 < meta["test_accuracy"] <= 1
    assert len(list(csv.DictReader(open(m / "train.csv")))) == 2
    assert main(["quantize", str(m / "model.npz"), "--bits", "4", "--scheme", "exponential", "--out", str(q)]) == 0
    out = capsys.readouterr().out
    assert "rho" in out and "smaller than" in out
    qmeta = json.loads((q / "quantize.json").read_text())
    assert qmeta["compression_ratio"] > 6
    assert main(["evaluate", str(q / "model.hq"), "--out", str(q)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert json.loads((q / "evaluate.json").read_text())["accuracy"] > 0.5
    # --param-dtype float32: the same codes, each codebook row's parameters at 4 bytes instead of 2
    q32 = tmp_path / "q32"
    assert main(["quantize", str(m / "model.npz"), "--bits", "4", "--scheme", "exponential", "--param-dtype",
                 "float32", "--out", str(q32), "--quiet"]) == 0
    m32 = json.loads((q32 / "quantize.json").read_text())
    assert m32["parameters"]["param_dtype"] == "float32" and qmeta["parameters"]["param_dtype"] == "auto"
    assert m32["compressed_bytes"] > qmeta["compressed_bytes"]
    import feedforward as ff
    k16, k32 = ff.load_quantized(q / "model.hq"), ff.load_quantized(q32 / "model.hq")
    halved = sum(t.params.size for t in k16.quantized.values() if t.param_dtype == "bfloat16")
    assert halved > 0 and {t.param_dtype for t in k32.quantized.values()} == {"float32"}
    assert m32["compressed_bytes"] - qmeta["compressed_bytes"] == 2 * halved
    for name, t in k16.quantized.items():
        assert (t.codes == k32.quantized[name].codes).all()


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "none.npz"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model file") and err.count("\n") == 1
    assert main(["train", "--data", str(tmp_path / "nodir"), "--out", str(tmp_path)]) == 2
    assert "neither 'digits' nor a directory" in capsys.readouterr().err
    assert main(["train", "--model", "lenet", "--epochs", "1", "--out", str(tmp_path)]) == 2
    assert "expects inputs (1, 28, 28)" in capsys.readouterr().err
    for cmd in ("train", "quantize", "evaluate", "demo"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "Example: python -m feedforward" in capsys.readouterr().out.replace("\n", " ")
