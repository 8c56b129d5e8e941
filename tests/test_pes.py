"""Tests for mlp_roadmap.pes: Morse vs ASE, dimer curves, PySCF calculator forces, timing, bad input."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.calculators.calculator import Calculator
from ase.calculators.emt import EMT
from ase.calculators.fd import calculate_numerical_forces
from ase.calculators.lj import LennardJones
from ase.calculators.morse import MorsePotential

from mlp_roadmap.pes import (
    PySCFCalculator,
    bond_scan,
    cost_accuracy,
    dimer,
    dimer_curve,
    morse_energy,
    pes_grid,
    potential_energies,
    stretch_bond,
    time_calculator,
)


@pytest.mark.parametrize("D_e, a, r_e", [(1.0, 6.0, 1.0), (4.75, 1.94, 0.741), (0.35, 1.3, 2.3)])
def test_morse_matches_ase(D_e, a, r_e):
    calc = MorsePotential(epsilon=D_e, rho0=a * r_e, r0=r_e, rcut1=20.0, rcut2=21.0)
    r = np.linspace(0.5 * r_e, 4 * r_e, 25)
    np.testing.assert_allclose(dimer_curve(calc, "H2", r), morse_energy(r, D_e, a, r_e), atol=1e-12)


def test_morse_torch_matches_numpy_and_ase_forces():
    D_e, a, r_e = 4.75, 1.94, 0.741
    r = torch.linspace(0.5, 2.5, 9, dtype=torch.float64, requires_grad=True)
    e = morse_energy(r, D_e, a, r_e)
    assert isinstance(e, torch.Tensor) and e.dtype == torch.float64
    np.testing.assert_allclose(e.detach().numpy(), morse_energy(r.detach().numpy(), D_e, a, r_e))
    f = -torch.autograd.grad(e.sum(), r)[0].numpy()
    calc = MorsePotential(epsilon=D_e, rho0=a * r_e, r0=r_e, rcut1=20.0, rcut2=21.0)
    f_ase = []
    for d in r.detach().numpy():
        atoms = dimer("H2", d)
        atoms.calc = calc
        f_ase.append(atoms.get_forces()[1, 2])
    np.testing.assert_allclose(f, f_ase, atol=1e-10)


def test_morse_bad_parameters():
    with pytest.raises(ValueError, match="positive"):
        morse_energy(1.0, D_e=-1.0, a=1.0, r_e=1.0)


@pytest.mark.parametrize("sigma", [1.0, 3.4])
def test_lj_dimer_minimum(sigma):
    r = np.linspace(0.9 * sigma, 1.5 * sigma, 601)
    e = dimer_curve(LennardJones(sigma=sigma, epsilon=0.01, rc=3 * sigma), "Ar2", r)
    step = r[1] - r[0]
    assert abs(r[e.argmin()] - 2 ** (1 / 6) * sigma) <= step
    v_rc = 4 * 0.01 * (3.0**-12 - 3.0**-6)  # ASE shifts the pair energy by -V(rc)
    assert e.min() == pytest.approx(-0.01 - v_rc, abs=1e-6)


def test_dimer_and_stretch_geometry():
    atoms = dimer(["Cu", "Cu"], 2.3)
    assert atoms.get_distance(0, 1) == pytest.approx(2.3)
    water = molecule("H2O")
    stretched = stretch_bond(water, 0, 1, 1.7)
    assert stretched.get_distance(0, 1) == pytest.approx(1.7)
    np.testing.assert_allclose(stretched.positions[[0, 2]], water.positions[[0, 2]])
    # the bond direction is kept
    u0 = water.positions[1] - water.positions[0]
    u1 = stretched.positions[1] - stretched.positions[0]
    np.testing.assert_allclose(u1 / 1.7, u0 / np.linalg.norm(u0), atol=1e-12)


def test_bond_scan_and_pes_grid_match_direct_evaluation():
    water = molecule("H2O")
    r = [0.9, 1.0, 1.2]
    e = bond_scan(EMT(), water, 0, 2, r)
    direct = potential_energies(EMT(), [stretch_bond(water, 0, 2, x) for x in r])
    np.testing.assert_allclose(e, direct)
    grid = pes_grid(EMT(), lambda x, y: dimer("Cu2", x + y), [2.0, 2.2], [0.0, 0.1, 0.3])
    assert grid.shape == (2, 3)
    np.testing.assert_allclose(grid[1], dimer_curve(EMT(), "Cu2", [2.2, 2.3, 2.5]))


def _pyscf():
    return pytest.importorskip("pyscf")


def test_pyscf_forces_equal_finite_differences():
    _pyscf()
    h2 = Atoms("H2", positions=[[0.0, 0.0, 0.0], [0.1, 0.05, 0.8]])
    h2.calc = PySCFCalculator(basis="sto-3g")
    f = h2.get_forces()
    assert f.shape == (2, 3) and f.dtype == np.float64
    np.testing.assert_allclose(f.sum(axis=0), 0.0, atol=1e-6)  # no net force on a molecule
    f_num = calculate_numerical_forces(h2, eps=1e-3, iatoms=[1])
    np.testing.assert_allclose(f[1], f_num[0], atol=1e-3)


def test_pyscf_energy_in_ev():
    _pyscf()
    from ase.units import Hartree
    from pyscf import dft, gto

    h2 = dimer("H2", 0.74)
    h2.calc = PySCFCalculator(xc="pbe", basis="sto-3g")
    mol = gto.M(atom="H 0 0 0; H 0 0 0.74", basis="sto-3g", unit="Angstrom", verbose=0)
    e_ha = dft.RKS(mol, xc="pbe").kernel()
    assert h2.get_potential_energy() == pytest.approx(e_ha * Hartree, abs=1e-6)


def test_pyscf_rejects_periodic():
    _pyscf()
    atoms = dimer("H2", 0.74)
    atoms.cell = [5, 5, 5]
    atoms.pbc = True
    atoms.calc = PySCFCalculator(basis="sto-3g")
    with pytest.raises(ValueError, match="molecules"):
        atoms.get_potential_energy()


class _Counting(Calculator):
    implemented_properties = ["energy", "forces"]

    def __init__(self):
        super().__init__()
        self.calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        super().calculate(atoms, properties, system_changes)
        self.calls += 1
        self.results = {"energy": 0.0, "forces": np.zeros((len(self.atoms), 3))}


def test_time_calculator_counts_every_call():
    calc = _Counting()
    t = time_calculator(calc, dimer("Cu2", 2.2), repeats=4, warmup=2)
    assert calc.calls == 6  # the ASE cache must not swallow repeated calls
    assert isinstance(t, float) and t > 0


def test_cost_accuracy_reference_row():
    calcs = {"LJ": LennardJones(sigma=2.3, epsilon=0.1), "EMT": EMT()}
    atoms = dimer("Cu2", 2.4)
    rows = cost_accuracy(calcs, atoms, "EMT", repeats=2)
    assert [r.name for r in rows] == ["LJ", "EMT"]
    assert rows[1].force_rmse == 0.0 and rows[0].force_rmse > 0
    assert all(r.seconds > 0 for r in rows)
    with pytest.raises(ValueError, match="reference"):
        cost_accuracy(calcs, atoms, "DFT")


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: dimer_curve(EMT(), "Cu2", []), "empty"),
        (lambda: dimer_curve(EMT(), "Cu2", [2.0, -1.0]), "positive"),
        (lambda: dimer_curve(EMT(), "Cu2", [0.0]), "positive"),
        (lambda: dimer_curve(EMT(), "Cu3", [2.0]), "two atoms"),
        (lambda: bond_scan(EMT(), molecule("H2O"), 0, 1, []), "empty"),
        (lambda: stretch_bond(molecule("H2O"), 1, 1, 1.0), "different"),
        (lambda: pes_grid(EMT(), lambda x, y: dimer("Cu2", x), [], [1.0]), "non-empty"),
        (lambda: time_calculator(EMT(), dimer("Cu2", 2.2), repeats=0), "repeats"),
        (lambda: time_calculator(EMT(), dimer("Cu2", 2.2), repeats=-3), "repeats"),
        (lambda: time_calculator(EMT(), dimer("Cu2", 2.2), warmup=-1), "warmup"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
