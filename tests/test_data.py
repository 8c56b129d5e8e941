"""Tests for mlp_roadmap.data: units, readers/writers, validation, generation, batching."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from mlp_roadmap.data import (
    AtomsDataset,
    attach_labels,
    collate,
    convert_units,
    dataset_summary,
    deduplicate,
    default_dataset_path,
    farthest_point_sampling,
    generate_cu_dataset,
    get_labels,
    label,
    labelled_batch,
    make_loader,
    rattle_and_strain,
    read_dataset,
    read_isolated_atoms,
    split_by_config_type,
    split_dataset,
    validate_dataset,
    write_dataset,
)
from mlp_roadmap.neighbors import atoms_to_batch

ROOT = Path(__file__).resolve().parents[1]


def _same(a, b):
    def close(u, v):
        return (u is None and v is None) or (u is not None and v is not None and np.allclose(u, v))

    return len(a) == len(b) and all(
        close(x.positions, y.positions)
        and close(x.cell.array, y.cell.array)
        and all(close(p, q) for p, q in zip(get_labels(x), get_labels(y)))
        and x.info.get("config_type") == y.info.get("config_type")
        for x, y in zip(a, b)
    )


@pytest.fixture(scope="module")
def cu_set():
    "Labelled bulk Cu (with stress) and a labelled slab (without)"
    strained = rattle_and_strain(bulk("Cu", cubic=True) * (2, 1, 1), EMT(), 5, seed=0)
    from ase.build import fcc111

    slab = label([fcc111("Cu", (2, 2, 3), vacuum=5.0)], EMT(), "slab")
    return strained + slab


# ---------------------------------------------------------------- units
def test_hartree_bohr_forces_to_ev_per_A():
    at = Atoms("H2", positions=[[0, 0, 0], [0, 0, 1.4]])
    attach_labels(at, energy=-1.0, forces=[[0, 0, -0.02], [0, 0, 0.02]])
    (c,) = convert_units([at], energy_unit="Hartree", length_unit="Bohr")
    assert np.isclose(c.get_potential_energy(), -units.Hartree)
    assert np.isclose(c.get_forces()[1, 2], 0.02 * 51.42208619083232, rtol=1e-6)
    assert np.isclose(c.get_distance(0, 1), 1.4 * 0.529177210903, rtol=1e-6)
    assert at.get_forces()[1, 2] == 0.02  # the input is not modified


def test_kcal_mol_and_stress_units():
    at = bulk("Cu", cubic=True)
    attach_labels(at, energy=23.0605, forces=np.zeros((4, 3)), stress=[-10, -10, -10, 0, 0, 0])
    (c,) = convert_units([at], energy_unit="kcal/mol", stress_unit="kbar", stress_sign="vasp")
    assert np.isclose(c.get_potential_energy(), 1.0, rtol=1e-4)  # 23.06 kcal/mol = 1 eV
    assert np.allclose(c.get_stress()[:3], units.GPa)  # VASP -10 kbar (tension) -> ASE +1 GPa


@pytest.mark.parametrize("kw", [{"energy_unit": "kcal"}, {"length_unit": "bohr"}, {"stress_unit": "Pa"},
                                {"stress_sign": "lammps"}])  # fmt: skip
def test_unknown_unit_names(kw):
    at = attach_labels(bulk("Cu"), 0.0, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="known:"):
        convert_units([at], **kw)


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("fmt,name", [("extxyz", "a.extxyz"), ("db", "a.db"), ("deepmd", "dp")])
def test_round_trip(cu_set, tmp_path, fmt, name):
    data = cu_set[:5]  # one composition, all with stress
    back = read_dataset(write_dataset(data, tmp_path / name, fmt))
    if fmt == "deepmd":  # deepmd has no config_type: the system folder name is used
        back = [attach_labels(b.copy(), *get_labels(b)) for b in back]
        for b, d in zip(back, data):
            b.info["config_type"] = d.info["config_type"]
    assert _same(data, back)


def test_deepmd_molecules_and_several_systems(tmp_path):
    w = label([molecule("H2O"), molecule("CH4")], EMT(), "mol")  # EMT has H, C, O parameters
    for at in w:
        at.pbc = False
    dirs = write_dataset(w, tmp_path / "dp", "deepmd")
    assert dirs == tmp_path / "dp" and (tmp_path / "dp/sys.000/nopbc").exists()
    back = read_dataset(tmp_path / "dp")
    assert [len(b) for b in back] == [3, 5] and not back[0].pbc.any()
    assert np.allclose(back[1].get_forces(), w[1].get_forces())


def test_extxyz_custom_keys(tmp_path):
    at = bulk("Cu", cubic=True)
    at.info["REF_energy"] = -1.5
    at.arrays["REF_forces"] = np.ones((4, 3)) * 0.1
    at.info["config_type"] = "custom"
    import ase.io

    ase.io.write(tmp_path / "c.xyz", at, format="extxyz")
    (r,) = read_dataset(tmp_path / "c.xyz", energy_key="REF_energy", forces_key="REF_forces")
    assert r.get_potential_energy() == -1.5 and np.allclose(r.get_forces(), 0.1)
    assert r.info["config_type"] == "custom"


# ---------------------------------------------------------------- shared reference data
def test_deepmd_water(shared_data):
    frames, rep = read_dataset(shared_data / "deepmd_water", return_report=True)
    assert len(frames) == 320 and rep.n_kept == 320 and not rep.skipped
    assert all(len(f) == 192 for f in frames)
    assert frames[0].get_chemical_formula() == "H128O64"
    assert np.allclose(frames[0].cell.lengths(), 12.44, atol=0.01)
    assert get_labels(frames[0]).stress is None  # no virial in this set
    assert {f.info["config_type"] for f in frames} == {"data_0", "data_1", "data_2"}
    assert np.isfinite([f.get_potential_energy() for f in frames]).all()


def test_rmd17_ethanol_and_e0(shared_data):
    d = shared_data / "rmd17_ethanol"
    frames = read_dataset(d / "train.xyz")
    e0 = read_isolated_atoms(d / "isolated_atoms.xyz")
    assert len(frames) == 1000 and all(f.get_chemical_formula() == "C2H6O" for f in frames)
    assert set(e0) == {"H", "C", "O", "N"} and np.isclose(e0["H"], -13.568422383046626)
    atomization = frames[0].get_potential_energy() - sum(
        e0[s] for s in frames[0].get_chemical_symbols()
    )
    assert -50 < atomization < -25  # bound by tens of eV (here -41.9 eV with these E0s)
    assert frames[0].info["config_type"] == "Training_set"
    e0_ha = read_isolated_atoms(d / "isolated_atoms.xyz", energy_unit="Hartree")
    assert np.isclose(e0_ha["H"], e0["H"] * units.Hartree)


def test_zuo2020_cu(shared_data):
    frames = read_dataset(shared_data / "zuo2020" / "Cu_train.extxyz")
    assert len(frames) == 262 and {s for f in frames for s in f.get_chemical_symbols()} == {"Cu"}
    assert all(f.pbc.all() for f in frames) and frames[0].info["config_type"] == "Cu_train"
    epa = np.array([f.get_potential_energy() / len(f) for f in frames])
    assert -4.5 < np.median(epa) < -3.0  # PBE Cu ~ -3.7 eV/atom


def test_n2p2_dispatch(shared_data):
    pytest.importorskip("mlp_roadmap.n2p2")
    f = shared_data / "n2p2_h2o_rpbe_d3" / "train" / "input.data"
    if not f.exists():
        pytest.skip("no n2p2 training snippet")
    frames = read_dataset(f, require=("energy",))
    assert len(frames) == 20 and all(f.info["config_type"] for f in frames)


# ---------------------------------------------------------------- bad input
def _good():
    at = bulk("Cu", cubic=True)
    at.rattle(0.05, seed=1)
    return label([at], EMT(), "ok")[0]


@pytest.mark.parametrize(
    "make,msg",
    [
        (lambda g: attach_labels(g.copy(), energy=1.0), "structure 1: forces: missing"),
        (lambda g: attach_labels(g.copy(), forces=g.get_forces()), "structure 1: energy: missing"),
        (lambda g: attach_labels(g.copy(), np.nan, g.get_forces()), "energy: contains NaN"),
        (
            lambda g: attach_labels(g.copy(), 0.0, np.full((4, 3), np.inf)),
            "forces: contains NaN or inf",
        ),
        (lambda g: attach_labels(g.copy(), 0.0, np.full((4, 3), 80.0)), "exceeds max_force=50"),
        (lambda g: Atoms(), "structure 1: atoms: structure has zero atoms"),
    ],
)
def test_bad_structures_raise(make, msg):
    g = _good()
    with pytest.raises(ValueError, match=msg):
        validate_dataset([g, make(g)], "x.xyz")


def test_skip_reports_counts_and_duplicates_warn(tmp_path):
    g = _good()
    data = [g, attach_labels(g.copy(), energy=1.0), attach_labels(g.copy(), *get_labels(g))]
    import ase.io

    ase.io.write(tmp_path / "b.xyz", data, format="extxyz")
    with pytest.raises(ValueError, match=r"b.xyz: structure 1: forces: missing"):
        read_dataset(tmp_path / "b.xyz")
    with pytest.warns(UserWarning, match="duplicate of structure 0"):
        frames, rep = read_dataset(tmp_path / "b.xyz", on_error="skip", return_report=True)
    assert len(frames) == 2 and rep.n_read == 3 and rep.skipped == [1] and rep.n_kept == 2
    with pytest.warns(UserWarning, match="read 3, kept 3"):
        assert len(read_dataset(tmp_path / "b.xyz", on_error="warn")) == 3
    assert len(read_dataset(tmp_path / "b.xyz", max_force=1e-9, on_error="skip")) == 0


def test_deepmd_bad_folders(cu_set, tmp_path):
    write_dataset(cu_set[:5], tmp_path / "dp", "deepmd")
    np.save(tmp_path / "dp/set.000/energy.npy", np.zeros(4))
    with pytest.raises(
        ValueError, match=r"energy.npy: field 'energy' has 4 frames but coord.npy has 5"
    ):
        read_dataset(tmp_path / "dp")
    (tmp_path / "dp/type_map.raw").unlink()
    with pytest.raises(ValueError, match="no type_map.raw"):
        read_dataset(tmp_path / "dp")
    with pytest.raises(FileNotFoundError, match="no DeePMD system"):
        read_dataset(tmp_path / "dp" / "set.000", format="deepmd")
    with pytest.raises(FileNotFoundError):
        read_dataset(tmp_path / "missing.xyz")


# ---------------------------------------------------------------- generation and selection
CU_GROUPS = {"bulk", "rattle", "vacancy", "surface", "liquid", "neb"}  # config_type prefixes


def test_generate_cu_dataset_reproducible():
    a = generate_cu_dataset(12, seed=0)
    b = generate_cu_dataset(12, seed=0)
    assert len(a) == 12 and _same(a, b)
    assert all(s.info.get("config_type") for s in a)
    assert all((get_labels(s).stress is not None) == bool(s.pbc.all()) for s in a)
    assert {s.info["config_type"].split("_")[0] for s in a} >= CU_GROUPS
    with pytest.raises(ValueError, match="n must be >= 12"):
        generate_cu_dataset(5)


def test_bundled_default_dataset():
    p = ROOT / "data" / "cu_emt.extxyz"
    if not p.exists():
        pytest.skip("bundled dataset not generated")
    assert default_dataset_path() == p.resolve()
    assert p.stat().st_size < 6e6
    s = dataset_summary(read_dataset(p))
    assert s["n_structures"] == 1000 and s["species"].keys() == {"Cu"}
    assert s["force_component_max_eV_A"] < 50 and s["n_with_stress"] == s["n_periodic_3d"]
    assert {c.split("_")[0] for c in s["config_types"]} == CU_GROUPS


def test_fps_and_deduplicate():
    x = np.array([[0.0, 0], [0.1, 0], [5, 5], [0, 5], [0.05, 0.05]])
    sel = farthest_point_sampling(x, 3, seed=0)
    assert len(set(sel.tolist())) == 3 and {2, 3} <= set(sel.tolist())
    with pytest.raises(ValueError):
        farthest_point_sampling(x, 6)
    g = _good()
    h = g.copy()
    h.positions[0, 0] += 0.1
    assert deduplicate([g, g.copy(), h]) == [0, 2]
    assert deduplicate([g, h], features=np.zeros((2, 3)), tol=1e-3) == [0]


def test_splits(cu_set):
    tr, va, te = split_dataset(cu_set, (0.5, 0.25, 0.25), seed=0)
    assert sorted(map(id, tr + va + te)) == sorted(map(id, cu_set))
    assert (
        split_dataset(cu_set, (0.5, 0.5), seed=3)[0] == split_dataset(cu_set, (0.5, 0.5), seed=3)[0]
    )
    rest, held = split_by_config_type(cu_set, ["slab"])
    assert len(held) == 1 and len(rest) == 5
    with pytest.raises(ValueError):
        split_dataset(cu_set, (0.5, 0.6))


# ---------------------------------------------------------------- batching
def test_collate_shapes_and_targets(cu_set):
    ds = AtomsDataset(cu_set, cutoff=4.0)
    b = collate([ds[i] for i in range(len(ds))])
    n = sum(len(a) for a in cu_set)
    assert b.pos.shape == (n, 3) and b.forces.shape == (n, 3)
    assert b.energy.shape == (6,) and b.stress.shape == (6, 6) and b.cell.shape == (6, 3, 3)
    assert torch.isnan(b.stress[5]).all() and torch.isfinite(b.stress[:5]).all()  # slab row
    ref = atoms_to_batch(cu_set, 4.0)
    for f in ("pos", "numbers", "batch", "idx_i", "idx_j", "shifts", "n_atoms", "pbc"):
        assert torch.equal(getattr(b, f), getattr(ref, f)), f
    assert torch.allclose(
        b.energy, torch.tensor([a.get_potential_energy() for a in cu_set], dtype=b.energy.dtype)
    )
    assert collate([ds[0]]).stress is not None and labelled_batch(cu_set[5:], 4.0).stress is None


def test_disk_cache_matches_memory(cu_set, tmp_path):
    mem = AtomsDataset(cu_set, 4.0, dtype=torch.float32)
    disk = AtomsDataset(cu_set, 4.0, dtype=torch.float32, cache="disk", cache_dir=tmp_path / "c")
    reopened = AtomsDataset.from_cache(tmp_path / "c", dtype=torch.float32)
    assert len(reopened) == 6 and reopened.config_types == mem.config_types
    for k in range(6):
        for f in (
            "pos",
            "numbers",
            "cell",
            "pbc",
            "idx_i",
            "idx_j",
            "shifts",
            "energy",
            "forces",
            "stress",
        ):
            u, v = getattr(mem[k], f), getattr(reopened[k], f)
            assert (u is None and v is None) or torch.equal(u, v), (k, f)
    assert mem[0].pos.dtype == torch.float32
    with pytest.raises(ValueError, match="cutoff"):
        AtomsDataset(None, 5.0, cache="disk", cache_dir=tmp_path / "c")
    with pytest.raises(IndexError):
        disk[6]


def test_loader_is_seeded(cu_set):
    ds = AtomsDataset(cu_set, 4.0)
    order = lambda s: [b.energy.tolist() for b in make_loader(ds, 2, shuffle=True, seed=s)]  # noqa: E731
    assert order(1) == order(1) and sorted(sum(order(1), [])) == sorted(sum(order(2), []))
    assert sum(b.n_structures for b in make_loader(ds, 4)) == 6


def test_summary(cu_set):
    s = dataset_summary(cu_set)
    assert s["n_structures"] == 6 and s["n_with_stress"] == 5 and s["config_types"]["slab"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_dataset(cu_set)
