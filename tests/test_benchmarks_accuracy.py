"""Smoke test of benchmarks/accuracy.py (slow: trains tiny models on a few reference structures)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _accuracy_module():
    spec = importlib.util.spec_from_file_location(
        "bench_accuracy", ROOT / "benchmarks" / "accuracy.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_split_is_disjoint_and_seeded():
    acc = _accuracy_module()
    tr, va, te = acc.split(100, seed=3, n_test=10, n_valid=5)
    assert (len(tr), len(va), len(te)) == (85, 5, 10)
    assert len(set(tr) | set(va) | set(te)) == 100
    assert (acc.split(100, seed=3, n_test=10, n_valid=5)[2] == te).all()
    with pytest.raises(ValueError, match="cannot split"):
        acc.split(10, seed=0, n_test=5, n_valid=5)


@pytest.mark.slow
def test_quick_run_writes_results(shared_data, tmp_path):
    acc = _accuracy_module()
    out = tmp_path / "accuracy.md"
    argv = ["--quick", "--dataset", "zuo", "--elements", "Si", "--data-root", str(shared_data),
            "--results", str(out), "--run-root", str(tmp_path / "runs"), "--no-progress", "--device", "cpu"]  # fmt: skip
    rows = acc.main(argv)
    assert len(rows) == 1 and rows[0]["n_train"] == 12 and rows[0]["quick"]
    t = rows[0]["test"]
    assert all(
        math.isfinite(t[k]) and t[k] > 0 for k in ("energy_mae_per_atom", "force_mae", "force_rmse")
    )
    text = out.read_text()
    assert "| Si | bp (quick) |" in text and "Not run" in text
    # a second run merges: the row is replaced, not duplicated, and notes survive
    out.write_text(
        text.replace("(no notes yet: write the discussion of the numbers here)", "my note")
    )
    acc.main(argv)
    text = out.read_text()
    assert text.count("| Si | bp (quick) |") == 1 and "my note" in text
    assert len(acc.read_rows(out)) == 1


def test_config_follows_the_model_flag():
    "Each case's TrainConfig is for the model asked for (the case table itself names no model)"
    import argparse

    acc = _accuracy_module()
    for model in ("bp", "painn", "schnet"):
        args = argparse.Namespace(model=model, epochs=None, quick=False, device="cpu", seed=0)
        cfg, desc = acc.make_config(acc.CASES[("ethanol", model)], args, {})
        assert cfg.model == model and (desc is not None) == (model == "bp")


def test_committee_mean_averages_members():
    import numpy as np

    acc = _accuracy_module()
    a = [{"energy": 1.0, "forces": np.ones((2, 3))}, {"energy": -2.0, "forces": np.zeros((1, 3))}]
    b = [{"energy": 3.0, "forces": -np.ones((2, 3))}, {"energy": 0.0, "forces": np.ones((1, 3))}]
    m = acc.committee_mean([a, b])
    assert [p["energy"] for p in m] == [2.0, -1.0]
    assert (m[0]["forces"] == 0).all() and (m[1]["forces"] == 0.5).all()


@pytest.mark.slow
def test_committee_run_and_resume(shared_data, tmp_path):
    "--committee N: one row with the mean prediction's errors (no worse than the members' average); --resume reuses"
    acc = _accuracy_module()
    out, runs = tmp_path / "accuracy.md", tmp_path / "runs"
    argv = ["--quick", "--dataset", "zuo", "--elements", "Si", "--data-root", str(shared_data), "--committee", "2",
            "--results", str(out), "--run-root", str(runs), "--no-progress", "--device", "cpu"]  # fmt: skip
    (row,) = acc.main(argv)
    assert row["committee"] == 2 and len(row["member_test"]) == 2
    assert (runs / "zuo_Si_bp").is_dir() and (runs / "zuo_Si_bp_seed1").is_dir()
    m0, m1 = row["member_test"]
    assert m0["force_mae"] != m1["force_mae"]  # different seeds, different models
    for k in ("energy_mae_per_atom", "energy_rmse_per_atom", "force_mae", "force_rmse"):
        assert row["test"][k] <= (m0[k] + m1[k]) / 2 + 1e-12  # convexity of |x| and x^2
    assert "| Si | bp committee of 2 (quick) |" in out.read_text()
    stamps = [
        (runs / d / "checkpoint.pt").stat().st_mtime_ns for d in ("zuo_Si_bp", "zuo_Si_bp_seed1")
    ]
    (again,) = acc.main(argv + ["--resume"])  # finished members are reused, not retrained
    assert again["test"] == row["test"] and again["member_test"] == row["member_test"]
    assert stamps == [
        (runs / d / "checkpoint.pt").stat().st_mtime_ns for d in ("zuo_Si_bp", "zuo_Si_bp_seed1")
    ]
    (tmp_path / "lr.yaml").write_text("lr: 0.5\n")
    with pytest.raises(
        ValueError, match=r"other settings \(lr\)"
    ):  # a changed setting is not reused
        acc.main(argv + ["--resume", "--config", str(tmp_path / "lr.yaml")])
    with pytest.raises(SystemExit):
        acc.main(argv + ["--committee", "0"])


@pytest.mark.slow
def test_external_test_set(shared_data, tmp_path):
    "--test-data: the whole training file is train + validation, the errors are on the given file"
    from ase.io import read, write

    acc = _accuracy_module()
    test_file = tmp_path / "si_test.extxyz"
    write(test_file, read(shared_data / "zuo2020" / "Si_train.extxyz", ":3"))
    argv = ["--quick", "--dataset", "zuo", "--elements", "Si", "--data-root", str(shared_data), "--test-data",
            str(test_file), "--results", str(tmp_path / "a.md"), "--run-root", str(tmp_path / "r"), "--no-progress",
            "--device", "cpu"]  # fmt: skip
    (row,) = acc.main(argv)
    assert row["n_test"] == 3 and row["test_source"] == str(test_file)
    assert "bp (quick) (test: si_test.extxyz)" in (tmp_path / "a.md").read_text()
    with pytest.raises(SystemExit):  # one system per run
        acc.main([*argv[:4], "Si,Mo", *argv[5:]])
    write(test_file, read(shared_data / "zuo2020" / "Cu_train.extxyz", ":2"))
    with pytest.raises(ValueError, match=r"elements \[29\]"):
        acc.main(argv)
