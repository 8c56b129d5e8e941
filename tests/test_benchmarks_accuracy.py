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
