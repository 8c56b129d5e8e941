"""MLPCalculator: ASE parity, finite differences, neighbour reuse, committees, errors."""

import ase.build
import numpy as np
import pytest
import torch
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.lj import LennardJones as ASELJ

from mlp_roadmap.calculator import MLPCalculator, committee_properties, run_ase_md
from mlp_roadmap.md import LennardJones
from mlp_roadmap.mpnn import PaiNN, SchNet
from mlp_roadmap.neighbors import atoms_to_batch


@pytest.fixture
def argon():
    at = ase.build.bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2)
    at.rattle(0.1, seed=1)
    return at


def test_lj_parity_with_ase(argon):
    a, b = argon.copy(), argon.copy()
    a.calc = MLPCalculator(LennardJones(0.0104, 3.4, cutoff=7.0))
    b.calc = ASELJ(epsilon=0.0104, sigma=3.4, rc=7.0)
    np.testing.assert_allclose(a.get_potential_energy(), b.get_potential_energy(), rtol=1e-12)
    np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-12)
    np.testing.assert_allclose(a.get_stress(), b.get_stress(), atol=1e-12)
    assert a.get_potential_energy() == a.get_potential_energies().sum() or np.isclose(
        a.get_potential_energy(), a.get_potential_energies().sum()
    )


def test_skin_reuse_gives_identical_results(argon):
    model = LennardJones(0.0104, 3.4, cutoff=7.0)
    reuse, fresh = MLPCalculator(model, skin=1.0), MLPCalculator(model, skin=0.0)
    at = argon.copy()
    for step in range(5):
        at.positions += np.random.default_rng(step).normal(0, 0.02, at.positions.shape)
        reuse.calculate(at, ["energy", "forces"])
        fresh.calculate(at, ["energy", "forces"])
        np.testing.assert_allclose(reuse.results["forces"], fresh.results["forces"], atol=1e-13)
        np.testing.assert_allclose(reuse.results["energy"], fresh.results["energy"], rtol=1e-13)
    assert reuse.n_neighbor_builds == 1 and fresh.n_neighbor_builds == 5


@pytest.mark.parametrize("cls", [SchNet, PaiNN])
def test_float32_model_and_numerical_forces(cls):
    torch.manual_seed(0)
    m = cls([29], cutoff=3.5, n_features=8, n_interactions=1, n_rbf=6).double()
    at = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True)
    at.rattle(0.05, seed=2)
    at.calc = MLPCalculator(m)
    f = at.get_forces()
    from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

    np.testing.assert_allclose(f, calculate_numerical_forces(at, eps=1e-5), atol=1e-6)
    np.testing.assert_allclose(at.get_stress(), calculate_numerical_stress(at, eps=1e-6), atol=1e-6)
    at32 = at.copy()
    at32.calc = MLPCalculator(m.float())
    assert at32.calc.dtype == torch.float32
    np.testing.assert_allclose(at32.get_forces(), f, atol=1e-4)
    assert at32.get_forces().dtype == np.float64


def test_committee_results():
    torch.manual_seed(0)
    models = [SchNet([29], cutoff=3.5, n_features=8, n_interactions=1).double() for _ in range(3)]
    at = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True)
    at.rattle(0.05, seed=3)
    at.calc = MLPCalculator(models)
    e = at.get_potential_energy()
    r = at.calc.results
    cp = committee_properties(models, atoms_to_batch(at, 3.5))
    np.testing.assert_allclose(e, cp.mean.energy.item())
    assert r["energy_std"] > 0 and r["max_force_deviation"] == pytest.approx(
        float(cp.force_std.max())
    )
    with pytest.raises(ValueError, match="at least two"):
        committee_properties(models[:1], atoms_to_batch(at, 3.5))


def test_errors():
    m = SchNet([29], cutoff=3.5, n_features=8, n_interactions=1).double()
    mol = ase.build.molecule("H2O")
    mol.calc = MLPCalculator(m)
    with pytest.raises(ValueError, match="not in the model's species"):
        mol.get_potential_energy()
    cl = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True)
    cl.pbc = False
    cl.calc = MLPCalculator(m)
    cl.get_potential_energy()
    with pytest.raises(PropertyNotImplementedError, match="periodic"):
        cl.get_stress()
    with pytest.raises(FileNotFoundError):
        MLPCalculator("/nonexistent/model")
    with pytest.raises(ValueError, match="skin"):
        MLPCalculator(m, skin=-1)


def test_nve_drift_and_overlap_guard(argon):
    from mlp_roadmap.md import MDInstabilityError

    at = argon.copy()
    at.calc = MLPCalculator(LennardJones(0.0104, 3.4, cutoff=7.0))
    res = run_ase_md(at, "nve", steps=100, dt_fs=2.0, temperature_K=50)
    assert abs(res.drift_meV_atom_ps) < 0.05
    crash = ase.build.bulk("Ar", "fcc", a=5.26, cubic=True)
    crash.positions[1] = crash.positions[0] + [0.3, 0, 0]
    crash.calc = MLPCalculator(LennardJones(0.0104, 3.4, cutoff=7.0))
    with pytest.raises(MDInstabilityError, match="apart"):
        run_ase_md(crash, "nve", steps=5, dt_fs=1.0, temperature_K=10)
