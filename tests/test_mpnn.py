"""SchNet and PaiNN: autograd forces/stress vs finite differences, invariances, extensivity."""

import ase.build
import numpy as np
import pytest
import torch

from mlp_roadmap.md import compute_properties
from mlp_roadmap.mpnn import PaiNN, SchNet
from mlp_roadmap.neighbors import atoms_to_batch

MODELS = [SchNet, PaiNN]


def make(cls, species=(29,), cutoff=3.5):
    torch.manual_seed(0)
    return cls(list(species), cutoff=cutoff, n_features=8, n_interactions=2, n_rbf=8).double()


def energy(model, atoms):
    return compute_properties(
        model, atoms_to_batch(atoms, model.cutoff), forces=False
    ).energy.item()


@pytest.fixture
def cu():
    at = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True)
    at.rattle(0.1, seed=3)
    return at


@pytest.mark.parametrize("cls", MODELS)
def test_forces_and_stress_finite_differences(cls, cu):
    m = make(cls)
    p = compute_properties(m, atoms_to_batch(cu, m.cutoff), forces=True, stress=True)
    h = 1e-5
    for a, k in [(0, 0), (2, 1), (3, 2)]:
        plus, minus = cu.copy(), cu.copy()
        plus.positions[a, k] += h
        minus.positions[a, k] -= h
        fd = -(energy(m, plus) - energy(m, minus)) / (2 * h)
        assert abs(fd - p.forces[a, k].item()) < 1e-7
    vol = cu.get_volume()
    for v, (a, b) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        eps = np.zeros((3, 3))
        eps[a, b] = eps[b, a] = h if a != b else h
        es = []
        for sgn in (1, -1):
            at = cu.copy()
            at.set_cell(cu.cell.array @ (np.eye(3) + sgn * eps), scale_atoms=True)
            es.append(energy(m, at))
        dEde = (es[0] - es[1]) / (2 * h) / (2 if a != b else 1)
        assert abs(dEde / vol - p.stress[0, v].item()) < 1e-7


@pytest.mark.parametrize("cls", MODELS)
def test_invariance_and_supercell(cls, cu):
    m = make(cls)
    b0 = atoms_to_batch(cu, m.cutoff)
    p0 = compute_properties(m, b0)
    # translation and permutation
    moved = cu.copy()
    moved.translate([0.3, -1.2, 2.0])
    perm = np.random.default_rng(0).permutation(len(cu))
    moved = moved[perm]
    p1 = compute_properties(m, atoms_to_batch(moved, m.cutoff))
    torch.testing.assert_close(p1.energy, p0.energy, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(p1.forces, p0.forces[perm], rtol=1e-9, atol=1e-10)
    # rotation (cell rotated with the atoms)
    R = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0].numpy()
    rot = cu.copy()
    rot.set_cell(cu.cell.array @ R.T, scale_atoms=False)
    rot.positions = cu.positions @ R.T
    p2 = compute_properties(m, atoms_to_batch(rot, m.cutoff))
    torch.testing.assert_close(p2.energy, p0.energy, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(p2.forces, p0.forces @ torch.as_tensor(R).T, rtol=1e-9, atol=1e-10)
    # extensivity
    p8 = compute_properties(m, atoms_to_batch(cu.repeat(2), m.cutoff))
    torch.testing.assert_close(p8.energy, 8 * p0.energy, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("cls", MODELS)
def test_continuity_at_cutoff(cls):
    m = make(cls, cutoff=3.0)
    es = []
    for r in (2.999999, 3.000001):
        es.append(energy(m, ase.Atoms("Cu2", positions=[[0, 0, 0], [r, 0, 0]])))
    assert abs(es[0] - es[1]) < 1e-8


@pytest.mark.parametrize("cls", MODELS)
def test_float32_batch_and_rebuild(cls, cu):
    m = make(cls, species=(1, 6, 8)).float()
    mols = [ase.build.molecule("H2O"), ase.build.molecule("CH3CH2OH")]
    p = compute_properties(m, atoms_to_batch(mols, m.cutoff, dtype=torch.float32))
    assert p.energy.dtype == torch.float32 and p.energy.shape == (2,)
    clone = cls(**m.hparams()).float()
    clone.load_state_dict(m.state_dict())
    p2 = compute_properties(clone, atoms_to_batch(mols, m.cutoff, dtype=torch.float32))
    torch.testing.assert_close(p.energy, p2.energy)


@pytest.mark.parametrize("cls", MODELS)
def test_unknown_element_and_bad_cutoff(cls):
    m = make(cls, species=(1, 8))
    with pytest.raises(ValueError, match="not in the model's species"):
        compute_properties(m, atoms_to_batch(ase.build.molecule("CH4"), m.cutoff))
    with pytest.raises(ValueError, match="cutoff"):
        cls([1], cutoff=-1.0)
