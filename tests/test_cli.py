"""The `mlp` console script: every command's --help, a tiny end-to-end run, JSON output, errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

_SCRIPT = Path(sys.executable).parent / "mlp"  # the installed console script
MLP = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "mlp_roadmap.cli"]


def run(*args, check=True):
    out = subprocess.run([*MLP, *args], capture_output=True, text=True, timeout=600)
    if check:
        assert out.returncode == 0, out.stderr[-2000:]
    return out


@pytest.mark.parametrize(
    "cmd", [[], ["data", "generate"], ["train"], ["eval"], ["md"], ["validate"], ["quickstart"]]
)
def test_help(cmd):
    out = run(*cmd, "--help")
    assert "usage: mlp" in out.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    run("data", "generate", "--out", str(d / "cu.extxyz"), "--n", "16", "--seed", "1")
    run("train", "--data", str(d / "cu.extxyz"), "--model", "bp", "--out", str(d / "run"), "--epochs", "2",
        "--cutoff", "4.0", "--quiet")  # fmt: skip
    return d


def test_eval_json(trained):
    out = run(
        "eval", "--model", str(trained / "run"), "--data", str(trained / "cu.extxyz"), "--json"
    )
    res = json.loads(out.stdout)
    assert {
        "energy_mae_per_atom",
        "energy_rmse_per_atom",
        "force_mae",
        "force_rmse",
        "n_structures",
    } <= set(res)
    assert res["n_structures"] == 16 and res["force_rmse"] > 0
    assert (trained / "run" / "parity.png").exists()


def test_md_json(trained):
    import ase.build
    import ase.io

    ase.io.write(trained / "start.extxyz", ase.build.bulk("Cu", "fcc", a=3.6, cubic=True))
    out = run("md", "--model", str(trained / "run"), "--structure", str(trained / "start.extxyz"), "--repeat", "2",
              "--steps", "10", "--dt", "1.0", "--temperature", "100", "--json")  # fmt: skip
    res = json.loads(out.stdout)
    assert res["n_atoms"] == 32 and res["steps"] == 10 and "drift_meV_atom_ps" in res
    assert Path(res["trajectory"]).exists()


def test_errors_are_one_line(trained, tmp_path):
    out = run(
        "train", "--data", str(tmp_path / "nope.xyz"), "--out", str(tmp_path / "r"), check=False
    )
    assert (
        out.returncode == 2
        and out.stderr.startswith("mlp: error:")
        and "Traceback" not in out.stderr
    )
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("epochs: 2\nlearnig_rate: 0.1\n")
    out = run("train", "--data", str(trained / "cu.extxyz"), "--config", str(cfg), "--out", str(tmp_path / "r"),
              check=False)  # fmt: skip
    assert out.returncode == 2 and "learnig_rate" in out.stderr
    out = run(
        "train",
        "--data",
        str(trained / "cu.extxyz"),
        "--out",
        str(trained / "run"),
        "--epochs",
        "1",
        check=False,
    )
    assert out.returncode == 2 and "already holds a run" in out.stderr
    out = run(
        "eval",
        "--model",
        str(tmp_path / "missing"),
        "--data",
        str(trained / "cu.extxyz"),
        check=False,
    )
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_quickstart_tiny(tmp_path):
    from mlp_roadmap.cli import quickstart

    m = quickstart(
        out=tmp_path / "q",
        n_train=24,
        epochs=2,
        md_steps=10,
        learning_curve_sizes=(8,),
        progress=False,
    )
    for f in (
        "report.md",
        "report.html",
        "metrics.json",
        "parity.png",
        "learning_curve.png",
        "nve_energy.png",
    ):
        assert (tmp_path / "q" / f).exists(), f
    assert m["n_train"] == 24 and [r["size"] for r in m["learning_curve"]] == [8, 24]
    assert "Test errors" in (tmp_path / "q" / "report.md").read_text()


@pytest.mark.lammps
def test_md_lammps_engine(trained):
    pytest.importorskip("lammps")
    import ase.build
    import ase.io

    ase.io.write(trained / "start.extxyz", ase.build.bulk("Cu", "fcc", a=3.6, cubic=True))
    out = run("md", "--model", str(trained / "run"), "--structure", str(trained / "start.extxyz"), "--steps", "10",
              "--engine", "lammps", "--temperature", "100", "--json")  # fmt: skip
    res = json.loads(out.stdout)
    assert (
        res["engine"] == "lammps" and res["n_atoms"] == 4 and np.isfinite(res["drift_meV_atom_ps"])
    )


def test_export_n2p2_and_torchscript(trained, tmp_path):
    out = run(
        "export",
        "--model",
        str(trained / "run"),
        "--format",
        "n2p2",
        "--out",
        str(tmp_path / "nnp"),
    )
    assert (tmp_path / "nnp" / "input.nn").exists() and "pair_style hdnnp" in (
        tmp_path / "nnp" / "README.md"
    ).read_text()
    assert "wrote n2p2 potential" in out.stdout
    bad = run("export", "--model", str(trained / "run"), "--format", "torchscript", "--out", str(tmp_path / "m.pt"),
              check=False)  # fmt: skip
    assert bad.returncode == 2 and "--structure" in bad.stderr


def test_train_cache_features(trained, tmp_path):
    run("train", "--data", str(trained / "cu.extxyz"), "--model", "bp", "--out", str(tmp_path / "run"),
        "--epochs", "2", "--cutoff", "4.0", "--cache-features", "--seed", "1", "--quiet")  # fmt: skip
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    assert card["config"]["cache_features"] is True
    out = run(
        "eval", "--model", str(tmp_path / "run"), "--data", str(trained / "cu.extxyz"), "--json"
    )
    single = json.loads(out.stdout)
    assert np.isfinite(single["force_rmse"]) and single["n_models"] == 1
    first = json.loads(
        run(
            "eval", "--model", str(trained / "run"), "--data", str(trained / "cu.extxyz"), "--json"
        ).stdout
    )
    out = run("eval", "--model", str(trained / "run"), str(tmp_path / "run"), "--data", str(trained / "cu.extxyz"),
              "--json")  # fmt: skip
    both = json.loads(out.stdout)  # the committee mean: never worse than the members' average
    assert both["n_models"] == 2 and (trained / "run" / "parity_committee.png").exists()
    for k in ("energy_rmse_per_atom", "force_rmse", "force_mae"):
        assert both[k] <= (single[k] + first[k]) / 2 + 1e-9 and both[k] not in (single[k], first[k])
    bad = run("train", "--data", str(trained / "cu.extxyz"), "--model", "schnet", "--cache-features",
              "--out", str(tmp_path / "r2"), "--epochs", "1", check=False)  # fmt: skip
    assert bad.returncode != 0 and "cache_features needs fixed descriptors" in bad.stderr


def test_train_committee_eval_md(trained, tmp_path):
    "train --committee 2 writes member_0/1 (seeds 0, 1); eval and md take the committee directory"
    import ase.build
    import ase.io

    run("train", "--data", str(trained / "cu.extxyz"), "--model", "bp", "--out", str(tmp_path / "c"),
        "--epochs", "1", "--cutoff", "4.0", "--committee", "2", "--quiet")  # fmt: skip
    seeds = [
        json.loads((tmp_path / "c" / f"member_{k}" / "card.json").read_text())["seed"]
        for k in (0, 1)
    ]
    assert seeds == [0, 1]
    res = json.loads(
        run(
            "eval", "--model", str(tmp_path / "c"), "--data", str(trained / "cu.extxyz"), "--json"
        ).stdout
    )
    assert res["n_models"] == 2 and np.isfinite(res["force_rmse"])
    ase.io.write(tmp_path / "start.extxyz", ase.build.bulk("Cu", "fcc", a=3.6, cubic=True))
    md = run("md", "--model", str(tmp_path / "c"), "--structure", str(tmp_path / "start.extxyz"), "--steps", "5",
             "--json")  # fmt: skip
    assert (
        json.loads(md.stdout)["steps"] == 5
        and (tmp_path / "c" / "member_0" / "md_ase.extxyz").exists()
    )
    again = run("train", "--data", str(trained / "cu.extxyz"), "--model", "bp", "--out", str(tmp_path / "c"),
                "--epochs", "1", "--cutoff", "4.0", "--committee", "2", "--resume", "--quiet")  # fmt: skip
    assert again.stdout.count("best epoch 0") == 2  # finished members are reused
    bad = run("train", "--data", str(trained / "cu.extxyz"), "--out", str(tmp_path / "c0"), "--committee", "0",
              check=False)  # fmt: skip
    assert bad.returncode == 2 and "--committee must be at least 1" in bad.stderr
