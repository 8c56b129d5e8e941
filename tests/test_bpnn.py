"""Behler-Parrinello model: derivatives, invariances, extensivity, continuity, dtypes and bad input."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from mlp_roadmap.bpnn import (
    BPModel,
    deepmd_prefactors,
    energy_force_loss,
    fit_reference_energies,
    fit_scaling,
    set_reference_energies,
)
from mlp_roadmap.descriptors import ACSF
from mlp_roadmap.md import compute_properties
from mlp_roadmap.n2p2 import n2p2_symmetry_functions
from mlp_roadmap.neighbors import atoms_to_batch

RC = 4.0


def _n2p2_descriptor():
    fns = [dict(center=29, type=2, neighbors=[29], eta=1.0, rs=rs, rc=RC) for rs in (2.0, 2.6, 3.2)]
    fns += [
        dict(
            center=29,
            type=3,
            neighbors=[29, 29],
            eta=0.02,
            rs=0.0,
            rc=RC,
            **{"lambda": lm, "zeta": 2.0},
        )
        for lm in (1.0, -1.0)
    ]
    fns += [
        dict(
            center=29,
            type=9,
            neighbors=[29, 29],
            eta=0.05,
            rs=0.0,
            rc=RC,
            **{"lambda": 1.0, "zeta": 1.0},
        )
    ]
    return n2p2_symmetry_functions([29], fns, cutoff_type=1)


def _acsf():
    return ACSF(
        r_cut=RC,
        g2_params=[[1.0, 2.0], [1.0, 3.0]],
        g4_params=[[0.02, 1.0, 1.0], [0.02, 2.0, -1.0]],
        species=["Cu"],
    )


@pytest.fixture(params=["n2p2", "acsf"])
def model(request):
    torch.manual_seed(0)
    desc = _n2p2_descriptor() if request.param == "n2p2" else _acsf()
    m = BPModel([29], desc, hidden=[8, 8], activation="tanh").double()
    fit_scaling(m, atoms_to_batch([_cu(seed=s) for s in range(4)], m.cutoff))
    with torch.no_grad():
        m.energy_shift.fill_(-3.5)
    return m


def _cu(seed=1):
    at = bulk("Cu", "fcc", a=3.6, cubic=True)
    at.rattle(0.08, seed=seed)
    return at


def _props(model, atoms, **kw):
    return compute_properties(
        model, atoms_to_batch(atoms if isinstance(atoms, list) else [atoms], model.cutoff), **kw
    )


def _energy(model, at):
    return _props(model, at, forces=False).energy.item()


def test_forces_match_finite_differences(model):
    at = _cu()
    f = _props(model, at).forces.detach().numpy()
    h = 1e-5
    for i, k in [(0, 0), (1, 2), (3, 1)]:
        ap, am = at.copy(), at.copy()
        ap.positions[i, k] += h
        am.positions[i, k] -= h
        fd = -(_energy(model, ap) - _energy(model, am)) / (2 * h)
        assert abs(fd - f[i, k]) < 1e-7 * max(1.0, abs(f[i, k]))


def test_stress_matches_strain_derivative(model):
    at = _cu()
    s = _props(model, at, stress=True).stress[0].detach().numpy()
    h = 1e-6
    for v, (a, b) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        eps = np.zeros((3, 3))
        eps[a, b] = eps[b, a] = h if a == b else h / 2
        ap, am = at.copy(), at.copy()
        ap.set_cell(at.cell.array @ (np.eye(3) + eps), scale_atoms=True)
        am.set_cell(at.cell.array @ (np.eye(3) - eps), scale_atoms=True)
        fd = (_energy(model, ap) - _energy(model, am)) / (2 * h) / at.get_volume()
        assert abs(fd - s[v]) < 1e-7 * max(1.0, abs(s[v]))


def test_supercell_is_extensive(model):
    at = _cu()
    p1, p8 = _props(model, at), _props(model, at.repeat(2))
    assert abs(p8.energy.item() - 8 * p1.energy.item()) < 1e-9
    torch.testing.assert_close(p8.forces[: len(at)], p1.forces, atol=1e-10, rtol=0)
    torch.testing.assert_close(p8.energies[: len(at)], p1.energies, atol=1e-10, rtol=0)


def test_rotation_translation_permutation(model):
    at = _cu()
    p0 = _props(model, at)
    rot = at.copy()
    rot.rotate(33, (1, 2, 3), rotate_cell=True)
    rot.translate([0.4, -2.0, 1.3])
    pr = _props(model, rot)
    assert abs(pr.energy.item() - p0.energy.item()) < 1e-10
    R = np.linalg.solve(at.cell.array, rot.cell.array)  # rows: cell @ R = rotated cell
    torch.testing.assert_close(pr.forces, p0.forces @ torch.as_tensor(R), atol=1e-10, rtol=0)
    perm = [2, 0, 3, 1]
    pp = _props(model, at[perm])
    assert abs(pp.energy.item() - p0.energy.item()) < 1e-10
    torch.testing.assert_close(pp.forces, p0.forces[perm], atol=1e-10, rtol=0)


def test_energy_continuous_across_cutoff(model):
    def e(r):
        return _energy(model, Atoms("Cu2", positions=[[0, 0, 0], [r, 0, 0]]))

    rc, d = model.cutoff, 1e-7
    assert abs(e(rc - d) - e(rc + d)) < 1e-9
    assert abs(e(rc + 0.5) - e(rc + 1e-3)) < 1e-12  # outside: two isolated atoms
    f_inside = -(e(rc - 1e-4) - e(rc - 2e-4)) / 1e-4
    assert abs(f_inside) < 1e-3  # forces vanish smoothly at the cutoff


def test_batch_of_different_sizes(model):
    small, big = bulk("Cu", "fcc", a=3.6), _cu().repeat((2, 1, 1))
    both = _props(model, [small, big])
    alone = torch.cat([_props(model, x).energy for x in (small, big)])
    torch.testing.assert_close(both.energy, alone, atol=1e-10, rtol=0)
    assert both.energies.shape == (len(small) + len(big),)


def test_float32(model):
    m32 = BPModel(**model.hparams()).float()
    m32.load_state_dict(model.state_dict())
    at = _cu()
    p32 = compute_properties(
        m32, atoms_to_batch([at], m32.cutoff, dtype=torch.float32), stress=True
    )
    p64 = _props(model, at, stress=True)
    assert p32.energy.dtype == torch.float32 and p32.forces.dtype == torch.float32
    assert abs(p32.energy.item() - p64.energy.item()) < 1e-4
    torch.testing.assert_close(p32.forces.double(), p64.forces, atol=1e-4, rtol=0)


def test_hparams_rebuild(model):
    clone = BPModel(**model.hparams()).double()
    clone.load_state_dict(model.state_dict())
    at = _cu()
    assert abs(_energy(clone, at) - _energy(model, at)) < 1e-12


def test_unknown_elements_are_listed(model):
    at = _cu()
    at.symbols[0], at.symbols[2] = "Au", "Ni"
    with pytest.raises(ValueError, match=r"\['Ni', 'Au'\]"):
        _props(model, at)


def test_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        BPModel([29], _n2p2_descriptor(), activation="swishy")
    with pytest.raises(ValueError, match="scaling"):
        BPModel([29], _n2p2_descriptor(), scaling="zscore")
    with pytest.raises(ValueError, match="no features"):
        BPModel([29, 79], _n2p2_descriptor())


def test_reference_energies_least_squares():
    rng = np.random.default_rng(0)
    true = {29: -1500.0, 79: -18000.0}
    atoms = []
    for _ in range(6):
        at = bulk("Cu", "fcc", a=3.8, cubic=True)
        at.symbols[rng.choice(4, rng.integers(0, 5), replace=False)] = "Au"
        at.calc = SinglePointCalculator(
            at, energy=sum(true[z] for z in at.numbers) + rng.normal(0, 1e-3)
        )
        atoms.append(at)
    ref = fit_reference_energies(atoms, [29, 79])
    assert all(abs(ref[z] - true[z]) < 0.01 for z in true)
    b = atoms_to_batch(atoms, 3.0)
    b.energy = torch.tensor([a.get_potential_energy() for a in atoms], dtype=torch.float64)
    assert fit_reference_energies(b, [29, 79]) == pytest.approx(ref, abs=1e-9)
    with pytest.raises(ValueError, match="Au"):
        fit_reference_energies(atoms, [29])


def test_loss_and_training_step(model):
    atoms = []
    for s in range(3):
        at = _cu(seed=s)
        at.calc = EMT()
        at.calc = SinglePointCalculator(
            at, energy=at.get_potential_energy(), forces=at.get_forces()
        )
        atoms.append(at)
    b = atoms_to_batch(atoms, model.cutoff)
    b.energy = torch.tensor([a.get_potential_energy() for a in atoms], dtype=torch.float64)
    b.forces = torch.tensor(np.concatenate([a.get_forces() for a in atoms]))
    set_reference_energies(model, fit_reference_energies(b, [29]))
    p = compute_properties(model, b, training=True)
    expected = torch.mean(((p.energy - b.energy) / 4) ** 2) + 10 * torch.mean(
        (p.forces - b.forces) ** 2
    )
    loss = energy_force_loss(p, b, 1.0, 10.0)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert all(q.grad is not None for q in model.nets.parameters())
    with pytest.raises(ValueError, match="stress"):
        energy_force_loss(p, b, 1.0, 1.0, 1.0)


def test_deepmd_prefactors():
    assert deepmd_prefactors(0, 100) == pytest.approx((0.02, 1000.0))
    pe, pf = zip(*[deepmd_prefactors(s, 100) for s in range(0, 101, 10)])
    assert all(np.diff(pe) > 0) and all(np.diff(pf) < 0)
    assert deepmd_prefactors(100, 100, decay=1e-3) == pytest.approx((1 - 0.98e-3, 1 + 0.999))
    with pytest.raises(ValueError):
        deepmd_prefactors(0, 0)


def test_as_calculator(model):
    at = _cu()
    at.calc = model.as_calculator()
    p = _props(model, at, stress=True)
    assert at.get_potential_energy() == pytest.approx(p.energy.item(), abs=1e-10)
    np.testing.assert_allclose(at.get_forces(), p.forces.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(at.get_stress(), p.stress[0].detach().numpy(), atol=1e-12)


def test_as_calculator_is_mlp_calculator(model):
    from mlp_roadmap.calculator import MLPCalculator

    assert type(model.as_calculator()) is MLPCalculator


def test_two_element_model_matches_per_element_sum():
    torch.manual_seed(1)
    acsf = ACSF(r_cut=RC, g2_params=[[1.0, 2.0], [0.5, 3.0]], species=["Cu", "Au"])
    m = BPModel([29, 79], acsf, hidden=[5], scaling="scalesigma").double()
    at = _cu()
    at.symbols[[0, 3]] = "Au"
    b = atoms_to_batch([at], m.cutoff)
    fit_scaling(m, b)
    with torch.no_grad():
        m.energy_scale.copy_(torch.tensor([0.3, 0.7]))
        m.energy_shift.copy_(torch.tensor([-3.0, -4.0]))
    e = compute_properties(m, b).energies.detach()
    d = b.pos[b.idx_j] - b.pos[b.idx_i] + b.shifts @ b.cell[0]
    G = acsf(b.numbers, d, b.idx_i, b.idx_j)
    for i, z in enumerate(at.numbers):
        k = m.species.index(int(z))
        x = (G[i] - m.feature_mean[k]) / m.feature_sigma[k]
        expected = m.nets[k](x[None])[0] * m.energy_scale[k] + m.energy_shift[k]
        assert abs(float(e[i]) - float(expected)) < 1e-12


def _desc(kind, species):
    if kind == "acsf":
        return ACSF(r_cut=RC, g2_params=[[1.0, 2.0], [1.0, 3.0]], g4_params=[[0.02, 1.0, 1.0]],
                    species=species)  # fmt: skip
    fns = [
        dict(center=c, type=2, neighbors=[n], eta=1.0, rs=2.5, rc=RC)
        for c in species
        for n in species
    ]
    fns += [dict(center=c, type=3, neighbors=[species[0], species[-1]], eta=0.02, rs=0.0, rc=RC,
                 **{"lambda": 1.0, "zeta": 2.0}) for c in species]  # fmt: skip
    return n2p2_symmetry_functions(species, fns, cutoff_type=1)


@pytest.mark.parametrize("kind", ["n2p2", "acsf"])
@pytest.mark.parametrize("species", [[29], [29, 79]])
def test_torchscript_export_and_reload(tmp_path, species, kind):
    from mlp_roadmap.lammps import export_torchscript, load_torchscript, structure_tensors

    torch.manual_seed(0)
    m = BPModel(species, _desc(kind, species), hidden=[6], activation="tanh").double()
    at = _cu()
    if len(species) > 1:
        at.symbols[1] = "Au"
    fit_scaling(m, atoms_to_batch([at], m.cutoff))
    export_torchscript(m, tmp_path / "bp.pt", at)  # checks itself on a larger, rattled cell
    module, meta = load_torchscript(tmp_path / "bp.pt")
    assert meta["species"] == species and meta["cutoff"] == pytest.approx(RC)
    other = at.repeat((1, 2, 1))
    other.rattle(0.05, seed=5)
    e, f = module(*structure_tensors(other, m.cutoff))
    p = _props(m, other)
    assert abs(float(e) - p.energy.item()) < 1e-10
    torch.testing.assert_close(f, p.forces, atol=1e-10, rtol=0)
