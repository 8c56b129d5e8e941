"""Determinism on CPU: the same seed gives bit-identical results; plus the MD blow-up guards of `run_ase_md`.

Covered here, each run twice with the same seed and compared exactly (and once with another seed,
which must differ, so the comparison is not vacuous): `training.train` (full history except wall
times, and every weight), `active.train_committee` (with bootstrap), `data.generate_cu_dataset`
(the written extxyz bytes), `calculator.run_ase_md` (Langevin NVT: energies and trajectory) and
`md.run_md` (BAOAB Langevin: positions).

GPU tolerance (documented, not tested: this CI machine has no GPU). On CUDA the scatter-adds
that every model and `compute_properties` use (`index_add`, atomic adds) sum in a
run-dependent order, so repeated runs are not bit-identical: a single energy/force evaluation
should agree to round-off (relative ~1e-12 in float64, ~1e-5 in float32, the accumulated
rounding of sums over neighbours), while a training run's weights drift apart as those
differences are amplified step by step; compare GPU training runs by their validation metrics
(e.g. energy RMSE within a few per cent), not by weights. For bit-identical GPU runs set
`torch.use_deterministic_algorithms(True)` and `CUBLAS_WORKSPACE_CONFIG=:4096:8` (slower). These
figures are expectations from the floating-point argument above, not measurements.
"""

from __future__ import annotations

import ase.build
import ase.io
import numpy as np
import pytest
import torch
from ase.calculators.emt import EMT

from mlp_roadmap.active import train_committee
from mlp_roadmap.calculator import MLPCalculator, run_ase_md
from mlp_roadmap.data import attach_labels, generate_cu_dataset, write_dataset
from mlp_roadmap.md import LennardJones, MDInstabilityError, maxwell_boltzmann, run_md
from mlp_roadmap.training import TrainConfig, train


def emt_cu(n: int, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        at = ase.build.bulk("Cu", "fcc", a=float(rng.uniform(3.55, 3.65)), cubic=True)
        at.rattle(0.05, seed=int(rng.integers(1 << 30)))
        at.calc = EMT()
        out.append(attach_labels(at, at.get_potential_energy(), at.get_forces()))
    return out


@pytest.fixture(scope="module")
def data():
    return emt_cu(8, 0), emt_cu(3, 1)


TINY = {
    "bp": dict(n_radial=3, n_angular=2, hidden=[4]),
    "painn": dict(n_features=8, n_interactions=1, n_rbf=4),
}


def cfg(model: str, seed: int = 0, epochs: int = 2) -> TrainConfig:
    return TrainConfig(model=model, cutoff=3.0, epochs=epochs, batch_size=3, lr=5e-3, seed=seed,
                       w_forces=1.0, model_hparams=dict(TINY[model]), device="cpu")  # fmt: skip


def weights(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def strip_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.mark.parametrize("model", ["bp", "painn"])
def test_training_same_seed_identical(data, tmp_path, model):
    tr, va = data
    a = train(cfg(model), tr, va, tmp_path / "a", progress=False)
    b = train(cfg(model), tr, va, tmp_path / "b", progress=False)
    assert strip_times(a.history) == strip_times(b.history)
    assert same_weights(weights(a.model), weights(b.model))
    c = train(cfg(model, seed=1), tr, va, tmp_path / "c", progress=False)
    assert not same_weights(weights(a.model), weights(c.model))


def test_committee_same_seed_identical(data, tmp_path):
    tr, va = data
    run = lambda d: train_committee(
        cfg("painn", epochs=1), tr, va, tmp_path / d, n_models=2, bootstrap=True
    )
    a, b = run("a"), run("b")
    for ma, mb in zip(a, b):
        assert same_weights(weights(ma), weights(mb))
    assert not same_weights(weights(a[0]), weights(a[1]))  # members differ by seed


@pytest.mark.slow  # ~10 s per dataset; test_data.py::test_generate_cu_dataset_reproducible runs by default
def test_generate_cu_dataset_same_bytes(tmp_path):
    paths = [write_dataset(generate_cu_dataset(12, seed=s), tmp_path / f"{k}.extxyz")
             for k, s in enumerate((3, 3, 4))]  # fmt: skip
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b and a != c


def _argon(seed: int = 0):
    at = ase.build.bulk("Ar", "fcc", a=5.26, cubic=True)
    at.rattle(0.02, seed=seed)
    return at


LJ = dict(epsilon=0.0104, sigma=3.4, cutoff=7.0)


def test_run_ase_md_same_seed_identical(tmp_path):
    def run(seed, name):
        at = _argon()
        at.calc = MLPCalculator(LennardJones(**LJ))
        traj = tmp_path / f"{name}.extxyz"
        res = run_ase_md(
            at,
            "nvt",
            steps=20,
            dt_fs=2.0,
            temperature_K=80,
            seed=seed,
            trajectory=traj,
            log_every=5,
        )
        return res, traj.read_bytes()

    (ra, ta), (rb, tb), (rc, tc) = run(7, "a"), run(7, "b"), run(8, "c")
    assert np.array_equal(ra.etot, rb.etot) and np.array_equal(ra.temperature_K, rb.temperature_K)
    assert ta == tb
    assert not np.array_equal(ra.etot, rc.etot) and ta != tc


def test_run_md_same_seed_identical():
    def run(seed):
        at = _argon()
        at.set_momenta(maxwell_boltzmann(torch.tensor(at.get_masses()), 80.0, seed=0).numpy())
        return run_md(
            LennardJones(**LJ),
            at,
            steps=20,
            dt_fs=2.0,
            ensemble="nvt",
            temperature_K=80.0,
            seed=seed,
            log_every=5,
        )

    a, b, c = run(3), run(3), run(4)
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.etot, b.etot)
    assert not np.array_equal(a.positions, c.positions)


# ---------------------------------------------------------------------------------------------
# MD guards of run_ase_md not covered elsewhere (overlap: test_calculator; run_md: test_md)
def test_run_ase_md_stops_when_energy_explodes(tmp_path):
    at = _argon()
    at.calc = MLPCalculator(LennardJones(**LJ))
    traj = tmp_path / "boom.extxyz"
    with pytest.raises(MDInstabilityError, match="apart at step"):
        run_ase_md(
            at, "nve", steps=200, dt_fs=80.0, temperature_K=3000, trajectory=traj, min_distance=2.0
        )
    frames = ase.io.read(traj, ":")
    assert frames and all(
        np.isfinite(f.positions).all() and np.isfinite(f.get_potential_energy()) for f in frames
    )


class _NaNAfter(torch.nn.Module):
    "LJ whose energy turns NaN once any pair is closer than `r_bad` (a potential that breaks down)"

    def __init__(self, r_bad: float):
        super().__init__()
        self.lj, self.cutoff, self.r_bad = LennardJones(**LJ), LJ["cutoff"], r_bad

    def forward(self, batch, d_ij):
        e = self.lj(batch, d_ij)
        bad = torch.linalg.norm(d_ij, dim=1).min() < self.r_bad
        return e * float("nan") if bool(bad) else e


def test_run_ase_md_stops_on_non_finite_energy():
    at = _argon()
    at.calc = MLPCalculator(_NaNAfter(r_bad=3.3))
    with pytest.raises((MDInstabilityError, FloatingPointError), match="non-finite"):
        run_ase_md(at, "nve", steps=200, dt_fs=20.0, temperature_K=2000, min_distance=0.5)


def test_run_ase_md_non_finite_energy_is_md_instability_with_step():
    at = _argon()
    at.calc = MLPCalculator(_NaNAfter(r_bad=3.3))
    with pytest.raises(MDInstabilityError, match="step"):
        run_ase_md(at, "nve", steps=200, dt_fs=20.0, temperature_K=2000, min_distance=0.5)
