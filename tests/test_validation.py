"""Tests for mlp_roadmap.validation: property functions on EMT Cu, the model validation report, bad input."""

import json

import ase.build
import numpy as np
import pytest
from ase.calculators.emt import EMT

from mlp_roadmap.validation import (
    compare_properties,
    elastic_constants,
    equation_of_state,
    format_table,
    liquid,
    measure_properties,
    nve_drift,
    phonons,
    reference_calculator,
    surface_energy,
    vacancy_formation_energy,
    vacancy_migration_barrier,
    validate_model,
)

A_EMT = 3.5899  # EMT Cu lattice constant (Å), from equation_of_state below


@pytest.fixture(scope="module")
def eos():
    return equation_of_state(EMT())


def test_eos_emt(eos):
    assert eos.a == pytest.approx(3.59, abs=0.005)
    assert eos.B_GPa == pytest.approx(134, rel=0.03)
    assert eos.e0 == pytest.approx(0.0, abs=0.02)  # EMT's zero is the fcc crystal
    assert len(eos.volumes) == 9 and np.argmin(eos.energies) == 4


def test_elastic_emt_consistent_with_eos(eos):
    el = elastic_constants(EMT(), a=eos.a)
    assert el.C11 > el.C12 > 0 and el.C44 > 0
    assert el.B == pytest.approx(
        eos.B_GPa, rel=0.05
    )  # (C11 + 2 C12) / 3 from stress = B from energy
    assert el.C11 - el.C12 > 0  # mechanically stable (Born criteria)
    assert el.C12 != pytest.approx(
        el.C44, rel=0.1
    )  # EMT is not a pair potential: no Cauchy relation


def test_phonons_emt():
    ph = phonons(EMT(), a=A_EMT, supercell=3, npoints=30, dos_kpts=6)
    assert ph.bands_THz.shape == (30, 3)
    assert np.abs(ph.bands_THz[0]).max() < 1e-3  # acoustic modes at Gamma
    assert ph.bands_THz.min() > -0.05  # no imaginary modes of the stable crystal
    ta, la = np.mean(ph.X_THz[:2]), ph.X_THz[2]
    assert 4.5 < ta < 6.5 and 7 < la < 9 and la > ta  # Cu experiment: TA 5.1, LA 7.3 THz
    integral = ph.dos.sum() * (ph.dos_THz[1] - ph.dos_THz[0])
    assert integral == pytest.approx(3.0, rel=0.02)  # three modes per atom


def test_defects_and_surfaces_emt():
    vac = vacancy_formation_energy(EMT(), a=A_EMT, size=2, fmax=0.05)
    assert 1.0 < vac.relaxed <= vac.unrelaxed < 1.5 and vac.n_atoms == 32
    g100 = surface_energy(EMT(), a=A_EMT, face="100", layers=5, fmax=0.05)
    g111 = surface_energy(EMT(), a=A_EMT, face="111", layers=5, fmax=0.05)
    assert 0.8 < g111 < g100 < 1.5  # J/m^2; close-packed face lowest
    with pytest.raises(ValueError, match="unknown face"):
        surface_energy(EMT(), face="123")


def test_nve_liquid_neb_emt():
    d = nve_drift(EMT(), a=A_EMT, size=2, steps=40)
    assert abs(d.drift_meV_atom_ps) < 2 and d.ekin_std_meV_atom > 0 and d.drift_ratio < 0.1
    liq = liquid(EMT(), a=A_EMT, size=2, melt_steps=40, steps=60, every=3)
    assert 2.2 < liq.peak_r < 2.8 and liq.D_cm2_s > 0 and 1200 < liq.mean_temperature_K < 3000
    neb = vacancy_migration_barrier(EMT(), a=A_EMT, size=2, n_images=1, fmax=0.1)
    assert neb.converged and 0.6 < neb.barrier < 1.0 and abs(neb.energies[-1]) < 1e-3


def test_compare_and_table(eos):
    other = eos._replace(a=eos.a * 1.01)
    rows = compare_properties({"eos": other}, {"eos": eos})
    assert rows["lattice_constant"]["rel_error"] == pytest.approx(0.01)
    assert rows["C11"]["model"] is None and rows["C11"]["rel_error"] is None  # not measured
    table = format_table(rows)
    assert "+1.0 %" in table and "failed" in table
    json.dumps(rows)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="unknown reference"):
        reference_calculator("dft")
    with pytest.raises(ValueError, match="unknown reference"):
        validate_model(tmp_path, reference="lj")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        validate_model(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="card.json"):
        validate_model(tmp_path)
    with pytest.raises(ValueError, match="lattice constant"):
        equation_of_state(EMT(), a_guess=-1.0)
    with pytest.raises(ValueError, match="n_points"):
        equation_of_state(EMT(), n_points=3)
    with pytest.raises(ValueError, match="unknown property"):
        measure_properties(EMT(), quick=True, settings={"melting_point": {}})


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    "A small BP model on strained and rattled 4-atom Cu cells (seconds to train)"
    from mlp_roadmap.data import rattle_and_strain
    from mlp_roadmap.training import TrainConfig, train

    cube = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True)
    data = rattle_and_strain(cube, EMT(), 24, rattle_std=0.08, max_volumetric=0.06, seed=1)
    cfg = TrainConfig(model="bp", cutoff=4.0, epochs=10, batch_size=8, lr=1e-2, w_forces=1.0,
                      model_hparams=dict(hidden=(8,), n_radial=4, n_angular=2))  # fmt: skip
    run = tmp_path_factory.mktemp("tiny_bp")
    train(cfg, data, None, run, overwrite=True, progress=False)
    return run


TINY = dict(  # smaller still than quick mode: the report machinery, not the physics
    phonons=dict(supercell=2, npoints=20, dos_kpts=4), vacancy=dict(steps=10), surface=dict(layers=4, steps=10),
    nve=dict(steps=10), liquid=dict(melt_steps=10, steps=12), neb=dict(steps=10),
)  # fmt: skip


def test_validate_model_report(tiny_model, tmp_path):
    out = tmp_path / "val"
    s = validate_model(tiny_model, "emt", out=out, quick=True, settings=TINY)
    assert (out / "report.md").exists() and (out / "validation.json").exists()
    assert {"properties", "report", "figures", "errors", "element", "reference"} <= set(s)
    assert s["element"] == "Cu" and s["reference"] == "emt"
    ref_a = s["properties"]["lattice_constant"]["reference"]
    assert ref_a == pytest.approx(3.59, abs=0.01)
    for key in ("lattice_constant", "bulk_modulus", "C11", "C12", "C44", "phonon_LA_X", "vacancy_formation",
                "surface_100", "surface_111", "vacancy_migration", "liquid_diffusion", "nve_drift"):  # fmt: skip
        row = s["properties"][key]
        assert set(row) == {"label", "unit", "model", "reference", "rel_error"}
        assert row["reference"] is not None  # EMT never fails
    text = (out / "report.md").read_text()
    assert "| lattice constant a |" in text and "eos.png" in text
    assert (
        json.loads((out / "validation.json").read_text())["properties"].keys()
        == s["properties"].keys()
    )


@pytest.mark.slow
def test_validate_model_quick_default_location(tiny_model):
    s = validate_model(tiny_model, quick=True)
    assert (tiny_model / "validation" / "report.md").exists()
    assert s["seconds"] < 120
