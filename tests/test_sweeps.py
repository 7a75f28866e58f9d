"""Sweeps: identical results on every backend, resumable and loss-free when killed."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from hopfield import studies as S

KW = dict(n_neurons=150, loads=(0.05, 0.1, 0.15), bits=(None, 2), trials=2, seed=7)


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.mark.slow
def test_local_processes_match_serial(tmp_path):
    serial = S.capacity(**KW)
    parallel = S.capacity(**KW, jobs=2, cache_dir=tmp_path)
    assert _strip(parallel) == _strip(serial)
    assert len(list(tmp_path.glob("*.json"))) == 6


@pytest.mark.slow
def test_dask_local_cluster_matches_serial():
    distributed = pytest.importorskip("distributed", reason="the distributed extra is not installed")
    serial = S.capacity(**KW)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        on_dask = S.capacity(**KW, scheduler=cluster.scheduler_address)
    assert _strip(on_dask) == _strip(serial)


def _read(path):
    rows = list(csv.DictReader(open(path)))
    for r in rows:
        r.pop("seconds")
    return rows


@pytest.mark.slow
def test_sweep_killed_half_way_and_rerun_has_every_task_once(tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "hopfield", "capacity", "--n", "500", "--loads", "0.04:0.16:0.02", "--bits", "float",
           "1", "2", "3", "--trials", "3", "--quiet", "--out", str(out), "--seed", "3"]
    n_tasks = 7 * 3
    proc = subprocess.Popen(cmd, cwd=os.getcwd())
    tasks = out / "tasks"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(tasks.glob("*.json")) if tasks.exists() else []) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(tasks.glob("*.json")))
    assert 3 <= done < n_tasks, done
    assert not (out / "capacity.csv").exists()
    subprocess.run(cmd, check=True, cwd=os.getcwd())
    assert len(list(tasks.glob("*.json"))) == n_tasks
    resumed = _read(out / "capacity.csv")
    clean = tmp_path / "clean"
    subprocess.run(cmd[:-3] + [str(clean), "--seed", "3"], check=True, cwd=os.getcwd())
    assert resumed == _read(clean / "capacity.csv")
    keys = [(r["load"], r["trial"], r["bits"], r["scheme"], r["objective"]) for r in resumed]
    assert len(keys) == len(set(keys)) == n_tasks * 4


def test_interrupt_message(tmp_path, monkeypatch, capsys):
    from hopfield.__main__ import main

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(S, "run_task", boom)
    assert main(["capacity", "--n", "50", "--loads", "0.1", "--bits", "float", "--trials", "1", "--out",
                 str(tmp_path)]) == 130
    assert "run the same command again to resume" in capsys.readouterr().err


def test_cli_errors_are_one_line(tmp_path, capsys):
    from hopfield.__main__ import main

    assert main(["capacity", "--n", "50", "--loads", "-0.1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: loads must be") and err.count("\n") == 1
    assert main(["recall", "--out", str(tmp_path)]) == 2
    assert "exactly one of --patterns" in capsys.readouterr().err
    with pytest.raises(ValueError):
        main(["capacity", "--n", "50", "--loads", "-0.1", "--out", str(tmp_path), "--debug"])
    with pytest.raises(SystemExit):
        main(["capacity", "--bits", "two"])


def test_recall_command_with_files(tmp_path):
    import numpy as np

    from hopfield import flip_noise, random_patterns
    from hopfield.__main__ import main

    X = random_patterns(5, 80, seed=0)
    np.save(tmp_path / "X.npy", X)
    np.savetxt(tmp_path / "C.txt", flip_noise(X, 0.1, seed=1), fmt="%d")
    assert main(["recall", "--patterns", str(tmp_path / "X.npy"), "--cues", str(tmp_path / "C.txt"), "--bits", "3",
                 "--scheme", "exponential", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    S_ = np.load(tmp_path / "o" / "final_states.npy")
    assert S_.shape == (5, 80) and (S_ == X).all(axis=1).mean() >= 0.8
    rows = list(csv.DictReader(open(tmp_path / "o" / "recall.csv")))
    assert len(rows) == 5 and float(rows[0]["target_overlap"]) > 0.9


def test_help_explains_every_option(capsys):
    from hopfield.__main__ import EXAMPLES, main

    for cmd in ("demo", "capacity", "basins", "recall"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = capsys.readouterr().out
        assert "Example: " + EXAMPLES[cmd] in " ".join(text.split())  # argparse wraps lines at spaces
        assert "--out" in text and "--seed" in text


@pytest.mark.slow
def test_cli_jobs_2_writes_the_same_csv(tmp_path):
    base = [sys.executable, "-m", "hopfield", "capacity", "--n", "150", "--loads", "0.05:0.15:0.05", "--bits", "float",
            "2", "--trials", "2", "--quiet", "--seed", "4"]
    subprocess.run(base + ["--out", str(tmp_path / "serial")], check=True)
    subprocess.run(base + ["--out", str(tmp_path / "jobs"), "--jobs", "2"], check=True)
    assert _read(tmp_path / "serial" / "capacity.csv") == _read(tmp_path / "jobs" / "capacity.csv")
