"""Trainer reliability: SIGKILL + resume, torchrun DDP, safe model files, guards, determinism."""

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import ase.build
import numpy as np
import pytest
import torch
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from mlp_roadmap.training import (
    TrainConfig,
    TrainingDiverged,
    evaluate,
    load_model,
    read_card,
    save_model,
    train,
)

ROOT = Path(__file__).resolve().parents[1]


def emt_cu(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        at = ase.build.bulk("Cu", "fcc", a=float(rng.uniform(3.52, 3.68)), cubic=True)
        at.rattle(0.05, seed=int(rng.integers(1 << 30)))
        at.calc = EMT()
        e, f = at.get_potential_energy(), at.get_forces()
        at.calc = SinglePointCalculator(at, energy=e, forces=f)  # picklable labels
        out.append(at)
    return out


CFG = dict(model="schnet", cutoff=3.5, epochs=4, batch_size=4, lr=5e-3, w_forces=1.0,
           model_hparams=dict(n_features=8, n_interactions=1, n_rbf=6))  # fmt: skip


@pytest.fixture(scope="module")
def data():
    return emt_cu(12, 0), emt_cu(4, 1)


def test_same_seed_same_result(data, tmp_path):
    tr, va = data
    a = train(TrainConfig(**CFG), tr, va, tmp_path / "a", progress=False)
    b = train(TrainConfig(**CFG), tr, va, tmp_path / "b", progress=False)
    assert a.history[-1]["valid_loss"] == b.history[-1]["valid_loss"]
    c = train(TrainConfig(**{**CFG, "seed": 1}), tr, va, tmp_path / "c", progress=False)
    assert c.history[-1]["valid_loss"] != a.history[-1]["valid_loss"]


SCRIPT = textwrap.dedent(
    """
    import sys, pickle, time
    import mlp_roadmap.training as T
    tr, va, cfg, out = pickle.load(open(sys.argv[1], "rb"))
    orig = T.compute_properties
    def slow(*a, **k):  # slow each batch down so the kill lands mid-epoch
        time.sleep(0.05)
        return orig(*a, **k)
    T.compute_properties = slow
    T.train(T.TrainConfig(**cfg), tr, va, out, progress=False)
    """
)


def test_sigkill_mid_epoch_then_resume(data, tmp_path):
    tr, va = data
    cfg = {**CFG, "epochs": 6}
    ref = train(TrainConfig(**cfg), tr, va, tmp_path / "ref", progress=False)
    run = tmp_path / "killed"
    inp = tmp_path / "inp.pkl"
    with open(inp, "wb") as f:
        pickle.dump((tr, va, cfg, str(run)), f)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(inp)], env=env)
    log = run / "log.csv"
    t0 = time.time()
    while time.time() - t0 < 120:
        if log.exists() and len(log.read_text().strip().splitlines()) >= 3:  # header + 2 epochs
            break
        time.sleep(0.02)
    time.sleep(0.1)  # into the next epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert (run / "checkpoint.pt").exists()
    res = train(TrainConfig(**cfg), tr, va, run, resume=True, progress=False)
    assert len(res.history) == len(ref.history)
    np.testing.assert_allclose(
        res.history[-1]["valid_loss"], ref.history[-1]["valid_loss"], rtol=1e-9
    )
    assert len((run / "log.csv").read_text().strip().splitlines()) == 1 + len(ref.history)


def test_refuses_to_overwrite_and_unknown_keys(data, tmp_path):
    tr, va = data
    train(TrainConfig(**{**CFG, "epochs": 1}), tr, va, tmp_path / "r", progress=False)
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(TrainConfig(**{**CFG, "epochs": 1}), tr, va, tmp_path / "r", progress=False)
    with pytest.raises(ValueError, match=r"unknown config keys \['learning_rate'\]"):
        TrainConfig.from_dict({"learning_rate": 1e-3})
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig.from_dict({"model": "mace"})


def test_nan_loss_stops_and_keeps_checkpoint(data, tmp_path, monkeypatch):
    import mlp_roadmap.training as T

    tr, va = data
    run = tmp_path / "nan"
    train(TrainConfig(**{**CFG, "epochs": 2}), tr, va, run, progress=False)
    before = (run / "checkpoint.pt").read_bytes()
    orig, calls = T.weighted_loss, []

    def diverging(*a, **k):  # the loss blows up on the second batch of the resumed run
        loss, parts = orig(*a, **k)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 2 else loss), parts

    monkeypatch.setattr(T, "weighted_loss", diverging)
    with pytest.raises(TrainingDiverged, match="epoch 2, batch 1"):
        train(TrainConfig(**{**CFG, "epochs": 4}), tr, va, run, resume=True, progress=False)
    # no checkpoint was written after the failure: the previous file is intact and loadable
    assert (run / "checkpoint.pt").read_bytes() == before
    load_model(run)


def test_missing_labels_are_masked(data):
    from mlp_roadmap.md import Properties
    from mlp_roadmap.neighbors import atoms_to_batch
    from mlp_roadmap.training import weighted_loss

    tr, _ = data
    b = atoms_to_batch(tr[:2], 3.5)
    b.energy = torch.tensor([1.0, float("nan")], dtype=torch.float64)
    b.forces = torch.zeros(8, 3, dtype=torch.float64)
    b.forces[0, 0] = float("inf")
    e = torch.tensor([2.0, 5.0], dtype=torch.float64, requires_grad=True)
    f = torch.ones(8, 3, dtype=torch.float64, requires_grad=True)
    loss, parts = weighted_loss(Properties(e, f, None, None), b, 1.0, 1.0)
    loss.backward()
    assert torch.isfinite(e.grad).all() and torch.isfinite(f.grad).all()
    assert parts["energy"] == pytest.approx(((2.0 - 1.0) / 4) ** 2)
    assert parts["forces"] == pytest.approx(1.0)


def test_model_files_refuse_pickles_and_mismatch(data, tmp_path):
    tr, va = data
    res = train(TrainConfig(**{**CFG, "epochs": 1}), tr, va, tmp_path / "m", progress=False)
    card = read_card(res.run_dir)
    assert card["model_type"] == "schnet" and card["species"] == [29] and card["data_hash"]
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.write_text, (marker, "code ran"))

    # a malicious pickle in place of the weights and of the checkpoint
    (res.run_dir / "model.safetensors").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ValueError, match="corrupt"):
        load_model(res.run_dir)
    torch.save({"x": Evil()}, res.run_dir / "checkpoint.pt")
    with pytest.raises(Exception, match="(?i)weights_only|unpickl|unsupported"):
        train(TrainConfig(**{**CFG, "epochs": 2}), tr, va, res.run_dir, resume=True, progress=False)
    assert not marker.exists()
    # card/weights mismatch
    good = train(TrainConfig(**{**CFG, "epochs": 1}), tr, va, tmp_path / "g", progress=False)
    import json

    c = json.loads((good.run_dir / "card.json").read_text())
    c["hparams"]["n_features"] = 16
    (good.run_dir / "card.json").write_text(json.dumps(c))
    with pytest.raises(ValueError, match="weights do not fit|does not match"):
        load_model(good.run_dir)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nothing")


KILL_SAVE = textwrap.dedent(
    """
    import sys, time, safetensors.torch as st
    from mlp_roadmap.mpnn import SchNet
    from mlp_roadmap.training import save_model
    orig = st.save_file
    def slow(state, path, *a, **k):
        orig(state, path, *a, **k)
        print("written", flush=True)
        time.sleep(30)  # killed here: after the temp file is written, before the rename
    st.save_file = slow
    save_model(SchNet([29], cutoff=3.0, n_features=8).double(), sys.argv[1])
    """
)


def test_killed_save_leaves_previous_file(tmp_path):
    from mlp_roadmap.mpnn import SchNet

    torch.manual_seed(0)
    m = SchNet([29], cutoff=3.0, n_features=8).double()
    save_model(m, tmp_path / "model")
    before = (tmp_path / "model" / "model.safetensors").read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SAVE, str(tmp_path / "model")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (tmp_path / "model" / "model.safetensors").read_bytes() == before
    load_model(tmp_path / "model")


DDP_SCRIPT = textwrap.dedent(
    """
    import sys, pickle, torch
    from mlp_roadmap.training import TrainConfig, train, init_distributed
    rank, world = init_distributed()
    tr, va, cfg, out = pickle.load(open(sys.argv[1], "rb"))
    res = train(TrainConfig(**cfg), tr, va, out, progress=False, overwrite=True)
    flat = torch.cat([p.detach().flatten() for p in res.model.parameters()])
    with open(f"{out}.rank{rank}", "w") as f:  # one file per rank: stdout lines of two ranks can interleave
        f.write(f"rank {rank}/{world} checksum {flat.sum().item():.12e} loss {res.best_valid:.6e}")
    torch.distributed.destroy_process_group()
    """
)


def test_torchrun_two_processes_gloo(data, tmp_path):
    tr, va = data
    inp = tmp_path / "inp.pkl"
    with open(inp, "wb") as f:
        pickle.dump((tr, va, {**CFG, "epochs": 2}, str(tmp_path / "ddp")), f)
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(script), str(inp)],
                         capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [Path(f"{tmp_path / 'ddp'}.rank{r}").read_text() for r in (0, 1)]
    assert lines[0].startswith("rank 0/2") and lines[1].startswith("rank 1/2")
    assert (
        lines[0].split("checksum")[1] == lines[1].split("checksum")[1]
    )  # identical weights on both ranks
    assert (tmp_path / "ddp" / "card.json").exists()
    assert evaluate(load_model(tmp_path / "ddp"), va)["n_structures"] == len(va)


def test_tensorboard_log(data, tmp_path):
    pytest.importorskip("torch.utils.tensorboard")
    tr, va = data
    train(
        TrainConfig(**{**CFG, "epochs": 2, "tensorboard": True}),
        tr,
        va,
        tmp_path / "tb",
        progress=False,
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(tmp_path / "tb" / "tensorboard"))
    ev.Reload()
    steps = [s.step for s in ev.Scalars("valid_loss")]
    assert steps == [0, 1] and {"train_loss", "valid_e_rmse", "valid_f_rmse", "lr"} <= set(
        ev.Tags()["scalars"]
    )
    with pytest.raises(ValueError, match="tensorboard"):
        TrainConfig.from_dict({"tensorboard": "yes"})
