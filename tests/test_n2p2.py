"""n2p2 interoperability: n2p2's own water prediction, export round trip, data files and bad input."""

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from mlp_roadmap.bpnn import BPModel
from mlp_roadmap.descriptors import SymmetryFunction, SymmetryFunctions
from mlp_roadmap.md import compute_properties
from mlp_roadmap.n2p2 import (
    lammps_pair_style,
    n2p2_cutoff,
    n2p2_functions,
    n2p2_symmetry_functions,
    read_data,
    read_potential,
    write_data,
    write_potential,
)
from mlp_roadmap.neighbors import atoms_to_batch, pair_vectors


def _reference(header: Path, name: str = "H2O_RPBE-D3"):
    block = (
        header.read_text().split(f'ExamplePrediction("{name}")')[1].split("examples.push_back")[0]
    )
    energy = float(re.search(r"e->energy = ([-+\dE.]+);", block).group(1))
    num = r"\s*([-+\dE.]+)"
    return energy, np.array(re.findall(rf"Vec3D\({num},{num},{num}\)", block), dtype=float)


def test_reproduces_n2p2_water_prediction(shared_data):
    d = shared_data / "n2p2_h2o_rpbe_d3" / "predict"
    model = read_potential(d)
    assert model.n_features == {1: 27, 8: 30}
    box = read_data(d / "input.data")[0]
    assert len(box) == 1080 and box.pbc.all()
    pred = compute_properties(model, atoms_to_batch([box], model.cutoff))
    e_ref, f_ref = _reference(d / "reference_ExamplePrediction.h")
    assert f_ref.shape == (1080, 3)
    e = pred.energy.item() / units.Hartree
    f = pred.forces.detach().numpy() / (units.Hartree / units.Bohr)
    assert abs(e - e_ref) / abs(e_ref) < 1e-8
    assert np.abs(f - f_ref).max() < 1e-6


def _cu_model(activation="tanh", scaling="scalecenter", seed=0):
    torch.manual_seed(seed)
    fns = [dict(center=29, type=2, neighbors=[29], eta=0.8, rs=rs, rc=4.2) for rs in (2.2, 3.0)]
    fns += [
        dict(
            center=29,
            type=3,
            neighbors=[29, 29],
            eta=0.02,
            rs=0.0,
            rc=4.2,
            **{"lambda": -1.0, "zeta": 2.0},
        ),
        dict(
            center=29,
            type=9,
            neighbors=[29, 29],
            eta=0.03,
            rs=0.5,
            rc=4.0,
            **{"lambda": 1.0, "zeta": 1.0},
        ),
    ]
    m = BPModel(
        [29],
        n2p2_symmetry_functions([29], fns, cutoff_type=6, cutoff_alpha=0.1),
        hidden=[6, 5],
        activation=activation,
        scaling=scaling,
        scale_min=-1.0,
        scale_max=1.0,
    ).double()
    with torch.no_grad():
        m.feature_min.uniform_(0.0, 0.5)
        m.feature_max.copy_(m.feature_min + torch.rand_like(m.feature_min) + 0.5)
        m.feature_mean.copy_(0.5 * (m.feature_min + m.feature_max))
        m.feature_sigma.uniform_(0.2, 1.0)
        m.energy_scale.fill_(0.37)
        m.energy_shift.fill_(-3.21)
    return m


@pytest.mark.parametrize("units_", [("Angstrom", "eV"), ("Bohr", "Hartree")])
@pytest.mark.parametrize("scaling", ["scalecenter", "scalesigma", "none"])
def test_export_round_trip(tmp_path, units_, scaling):
    m = _cu_model(activation=["tanh", "softplus"], scaling=scaling)
    at = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    at.rattle(0.1, seed=2)
    b = atoms_to_batch([at], m.cutoff)
    p = compute_properties(m, b, stress=True)
    write_potential(m, tmp_path, *units_)
    q = compute_properties(read_potential(tmp_path, *units_), b, stress=True)
    assert abs(q.energy.item() - p.energy.item()) <= 1e-10 * abs(p.energy.item())
    assert (q.forces - p.forces).abs().max() < 1e-10
    assert (q.stress - p.stress).abs().max() < 1e-10


def test_export_refuses_non_n2p2_models(tmp_path):
    with pytest.raises(ValueError, match="silu"):
        write_potential(_cu_model(activation="silu"), tmp_path)
    g3 = SymmetryFunctions([29], [SymmetryFunction("G3", 29, 4.0, kappa=1.0)])
    with pytest.raises(ValueError, match=r"\['G3'\] have no n2p2 equivalent"):
        write_potential(BPModel([29], g3), tmp_path)
    mixed = SymmetryFunctions(
        [29],
        [SymmetryFunction("G2", 29, 4.0, eta=1.0), SymmetryFunction("G2", 29, 4.0, cutoff="poly2")],
    )
    with pytest.raises(ValueError, match="one cutoff function"):
        write_potential(BPModel([29], mixed), tmp_path)

    class Radial(torch.nn.Module):
        cutoff, n_features = 4.0, 1

        def forward(self, batch, d_ij):
            return torch.zeros(len(batch.numbers), 1, dtype=d_ij.dtype)

    with pytest.raises(ValueError, match="only descriptors.SymmetryFunctions"):
        write_potential(BPModel([29], Radial()), tmp_path)


def _emt_cells(n=4, symbols=None, seed=0):
    rng = np.random.default_rng(seed)
    cells = []
    for _ in range(n):
        at = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 1, 1))
        if symbols:
            at.symbols[rng.choice(len(at), 3, replace=False)] = symbols
        at.positions += rng.normal(0, 0.08, at.positions.shape)
        at.calc = EMT()
        at.get_forces()
        cells.append(at)
    return cells


@pytest.mark.parametrize("species", [[29], [29, 79]])
def test_export_of_trainer_default_bp_model(tmp_path, species):
    from mlp_roadmap.training import build_model, prepare_model

    torch.manual_seed(0)
    model = build_model(
        "bp", species, 4.5
    ).double()  # default ACSF: G2 grid + G4 set, cosine cutoff
    cells = _emt_cells(symbols="Au" if len(species) > 1 else None)
    prepare_model(model, cells)
    with torch.no_grad():  # distinct output scales per element: folded into the output layers
        model.energy_scale.copy_(torch.linspace(0.4, 0.9, len(species), dtype=torch.float64))
    b = atoms_to_batch(cells, model.cutoff)
    p = compute_properties(model, b, stress=True)
    for units_ in [("Angstrom", "eV"), ("Bohr", "Hartree")]:
        write_potential(model, tmp_path / units_[0], *units_)
        back = read_potential(tmp_path / units_[0], *units_)
        assert back.n_features == model.n_features
        q = compute_properties(back, b, stress=True)
        assert (q.energy - p.energy).abs().max() <= 1e-10 * p.energy.abs().max()
        assert (q.forces - p.forces).abs().max() < 1e-10
        assert (q.stress - p.stress).abs().max() < 1e-10


def test_n2p2_order_permutes_dscribe_columns():
    from dscribe.descriptors import ACSF as DScribeACSF

    from mlp_roadmap.descriptors import ACSF, angular_params, radial_params
    from mlp_roadmap.n2p2 import _n2p2_permutation

    at = _emt_cells(1, symbols="Au", seed=3)[0]
    g2, g4 = radial_params(1.0, 4.5, 4), angular_params(1.0, 4.5, 2, zetas=(1, 4))
    ref = DScribeACSF(r_cut=4.5, g2_params=g2, g4_params=g4, species=["Cu", "Au"], periodic=True)
    fns, ct, alpha = n2p2_functions(ACSF(r_cut=4.5, g2_params=g2, g4_params=g4, species=[29, 79]))
    assert (ct, alpha) == (1, 0.0) and {f["type"] for f in fns} == {2, 3}
    perm = _n2p2_permutation([29, 79], fns)
    assert perm[29] != sorted(perm[29])  # the two orders really differ
    b = atoms_to_batch([at], 4.5)
    d = pair_vectors(b.pos, b.cell, b.batch, b.idx_i, b.idx_j, b.shifts)
    G = n2p2_symmetry_functions([29, 79], fns, ct, alpha)(b.numbers, d, b.idx_i, b.idx_j).numpy()
    want = ref.create(at)  # DScribe's own G2/G4: same normalisation as n2p2 types 2/3, no factor
    for i, z in enumerate(at.numbers):
        np.testing.assert_allclose(G[i, : len(perm[z])], want[i][perm[z]], atol=1e-12, rtol=0)


def test_export_n2p2_from_model_directory(tmp_path):
    from mlp_roadmap.n2p2 import export_n2p2
    from mlp_roadmap.training import build_model, load_model, prepare_model, save_model

    torch.manual_seed(1)
    model = build_model("bp", [29], 4.0, n_radial=4, n_angular=2).double()
    cells = _emt_cells(2)
    prepare_model(model, cells)
    save_model(model, tmp_path / "model")
    out = export_n2p2(tmp_path / "model", tmp_path / "n2p2")
    readme = (out / "README.md").read_text()
    assert lammps_pair_style(out.resolve(), 4.0, [29]) in readme
    assert "pair_style hdnnp 4.000000" in readme and "pair_coeff * * Cu" in readme
    b = atoms_to_batch(cells, 4.0)
    saved = load_model(tmp_path / "model", dtype=torch.float64)  # as stored (card + safetensors)
    p, q = (
        compute_properties(saved, b),
        compute_properties(read_potential(out, "Angstrom", "eV"), b),
    )
    assert (q.forces - p.forces).abs().max() < 1e-10
    with pytest.raises(ValueError, match="only Behler-Parrinello"):
        from mlp_roadmap.mpnn import SchNet

        export_n2p2(SchNet([29], 4.0), tmp_path / "x")


def test_lammps_line():
    line = lammps_pair_style("pot", 6.35, [8, 1], "Bohr", "Hartree")
    assert line.startswith("pair_style hdnnp 6.350000 dir")
    cfl = float(re.search(r"cflength (\S+)", line).group(1))
    cfe = float(re.search(r"cfenergy (\S+)", line).group(1))
    assert cfl == pytest.approx(1 / units.Bohr, rel=1e-9) and cfe == pytest.approx(
        1 / units.Hartree, rel=1e-8
    )
    assert line.endswith("pair_coeff * * O H")
    assert "cflength 1.0000000000 cfenergy 1.0000000000" in lammps_pair_style("p", 5.0, [29])


@pytest.mark.parametrize(
    "ct,alpha",
    [(1, 0.0), (1, 0.3), (2, 0.0), (3, 0.0), (4, 0.2), (5, 0.0), (6, 0.1), (7, 0.0), (8, 0.0)],
)
def test_cutoff_functions(ct, alpha):
    rc = 5.0
    r = torch.tensor([0.0, alpha * rc, 2.5, 4.99, 5.0, 6.0], dtype=torch.float64)
    f = n2p2_cutoff(r, rc, ct, alpha)
    assert f[-2:].abs().max() == 0
    assert (f >= 0).all() and (f <= 1 + 1e-12).all() or ct == 3
    x = (2.5 - alpha * rc) / (rc - alpha * rc)
    expected = {
        1: 0.5 * (math.cos(math.pi * x) + 1),
        2: math.tanh(0.5) ** 3,
        5: (2 * x - 3) * x * x + 1,
        6: ((15 - 6 * x) * x - 10) * x**3 + 1,
        4: math.exp(1 - 1 / (1 - x * x)),
    }
    if ct in expected:
        assert float(f[2]) == pytest.approx(expected[ct], rel=1e-12)
    if ct == 3:
        assert float(n2p2_cutoff(torch.tensor(0.0, dtype=torch.float64), rc, 3)) == pytest.approx(
            1.0, rel=1e-12
        )
    rr = torch.tensor([4.999], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(n2p2_cutoff(rr, rc, ct, alpha).sum(), rr)
    assert torch.isfinite(g).all() and abs(float(g)) < 1e-2


@pytest.mark.parametrize("ct,alpha", [(2, 0.0), (1, 0.2), (6, 0.1), (4, 0.0)])
def test_n2p2_order_of_symmetry_functions(ct, alpha):
    w = molecule("H2O")
    w2 = w.copy()
    w2.translate([2.2, 0.8, 0.3])
    w += w2
    w.rattle(0.1, seed=0)
    fs = [
        dict(center=1, type=2, neighbors=[8], eta=0.3, rs=0.9, rc=5.0),
        dict(
            center=1,
            type=3,
            neighbors=[1, 8],
            eta=0.07,
            rs=0.3,
            rc=5.5,
            **{"lambda": -1.0, "zeta": 4.0},
        ),
        dict(
            center=8,
            type=9,
            neighbors=[1, 1],
            eta=0.03,
            rs=0.0,
            rc=5.0,
            **{"lambda": 1.0, "zeta": 1.0},
        ),
        dict(
            center=8,
            type=3,
            neighbors=[1, 8],
            eta=0.01,
            rs=0.0,
            rc=6.0,
            **{"lambda": 1.0, "zeta": 2.0},
        ),
    ]
    sf = n2p2_symmetry_functions([1, 8], fs, ct, alpha)
    listed, ct2, alpha2 = n2p2_functions(sf)  # back to n2p2 dicts, per centre in column order
    assert (ct2, alpha2) == (ct, alpha) and sf.n_features_per_species == [2, 2]
    by_centre = {z: [f for f in listed if f["center"] == z] for z in (1, 8)}
    assert [f["type"] for f in by_centre[1]] == [2, 3]  # n2p2 sorts by type first ...
    assert [f["rc"] for f in by_centre[8]] == [6.0, 5.0]  # ... so type 3 (rc 6) precedes type 9
    kind = {2: "G2", 3: "G4", 9: "G5"}
    given = SymmetryFunctions(  # the same functions in the order given, centres explicit
        [1, 8],
        [
            SymmetryFunction(
                kind[f["type"]],
                tuple(f["neighbors"]),
                f["rc"],
                center=f["center"],
                eta=f["eta"],
                rs=f["rs"],
                zeta=f.get("zeta", 1.0),
                lam=f.get("lambda", 1.0),
                cutoff=ct,
                alpha=alpha,
            )  # fmt: skip
            for f in fs
        ],
    )
    b = atoms_to_batch([w], 6.5)
    d = pair_vectors(b.pos, b.cell, b.batch, b.idx_i, b.idx_j, b.shifts)
    G, ref = sf(b.numbers, d, b.idx_i, b.idx_j), given(b.numbers, d, b.idx_i, b.idx_j)
    assert G.abs().max() > 0.1
    hyd, oxy = b.numbers == 1, b.numbers == 8
    torch.testing.assert_close(G[hyd][:, :2], ref[hyd][:, :2], atol=0, rtol=0)
    torch.testing.assert_close(G[oxy][:, :2], ref[oxy][:, [1, 0]], atol=0, rtol=0)


def test_data_round_trip_and_units(tmp_path):
    atoms = []
    for s in range(2):
        at = bulk("Cu", "fcc", a=3.6, cubic=True)
        at.rattle(0.05, seed=s)
        at.calc = EMT()
        at.get_forces()
        atoms.append(at)
    path = write_data(atoms, tmp_path / "input.data")
    text = path.read_text()
    assert text.count("begin") == 2
    first_x = float(re.search(r"^atom\s+(\S+)", text, re.M).group(1))
    assert first_x == pytest.approx(atoms[0].positions[0, 0] / units.Bohr)
    back = read_data(path)
    for a, b in zip(atoms, back):
        np.testing.assert_allclose(b.positions, a.positions, atol=1e-12)
        np.testing.assert_allclose(b.cell.array, a.cell.array, atol=1e-12)
        np.testing.assert_allclose(b.get_forces(), a.get_forces(), atol=1e-12)
        assert b.get_potential_energy() == pytest.approx(a.get_potential_energy(), abs=1e-12)
    ev = read_data(write_data(atoms, tmp_path / "ev.data", "Angstrom", "eV"), "Angstrom", "eV")
    np.testing.assert_allclose(ev[1].get_forces(), atoms[1].get_forces(), atol=1e-12)


@pytest.mark.parametrize(
    "text,match",
    [
        ("atom 0 0 0 H 0 0 0 0 0\n", "line 1: 'atom' outside"),
        ("begin\natom 0 0 0 H 0 0 0 0\nend\n", "line 2: 'atom' needs"),
        ("begin\natom 0 0 x H 0 0 0 0 0\nend\n", "line 2: atom field must be a number"),
        ("begin\natom 0 0 0 Xx 0 0 0 0 0\nend\n", "line 2: unknown element"),
        ("begin\nlattice 1 0 0\natom 0 0 0 H 0 0 0 0 0\nend\n", "line 1: structure has 1 lattice"),
        ("begin\natom 0 0 0 H 0 0 0 0 0\n", "begun on line 1 has no 'end'"),
        ("begin\nfoo 1\nend\n", "line 2: unknown keyword 'foo'"),
    ],
)
def test_bad_data_names_file_and_line(tmp_path, text, match):
    p = tmp_path / "bad.data"
    p.write_text(text)
    with pytest.raises(
        ValueError, match=f"bad.data, {match}" if match.startswith("line") else match
    ):
        read_data(p)


def test_bad_potential_files(tmp_path):
    write_potential(_cu_model(), tmp_path)
    nn = tmp_path / "input.nn"
    good = nn.read_text()
    lines = good.splitlines()
    nn.write_text(good + "ewald_prec 1e-6\n")
    with pytest.raises(
        ValueError, match=rf"input.nn, line {len(lines) + 1}: unsupported keyword 'ewald_prec'"
    ):
        read_potential(tmp_path)
    nn.write_text(good + "symfunction_short Cu 21 Cu 0.0 1.0 4.0\n")
    with pytest.raises(ValueError, match="type 21 is not supported"):
        read_potential(tmp_path)
    nn.write_text(good.replace("global_activation_short t t l", "global_activation_short t q l"))
    with pytest.raises(ValueError, match=r"unsupported activation\(s\) \['q'\]"):
        read_potential(tmp_path)
    nn.write_text(good.replace("global_nodes_short 6 5", "global_nodes_short 6 4"))
    with pytest.raises(
        ValueError,
        match=r"weights.029.data, line \d+: weight .* does not fit layer sizes \[4, 6, 4, 1\]",
    ):
        read_potential(tmp_path)
    nn.write_text(good.replace("global_nodes_short 6 5", "global_nodes_short 6 6"))
    with pytest.raises(
        ValueError, match=r"weights.029.data: \d+ connections, but layer sizes \[4, 6, 6, 1\] need"
    ):
        read_potential(tmp_path)
    nn.write_text(good)
    sc = tmp_path / "scaling.data"
    good_sc = sc.read_text()
    sc.write_text(good_sc.replace("         1          2", "         1          7", 1))
    with pytest.raises(ValueError, match=r"scaling.data, line \d+: expected element 1 function 2"):
        read_potential(tmp_path)
    sc.write_text(good_sc)
    (tmp_path / "weights.029.data").unlink()
    with pytest.raises(FileNotFoundError, match="weights.029.data"):
        read_potential(tmp_path)
