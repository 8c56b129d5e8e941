"""Neighbour lists: property tests against ASE, conventions, bad input, Verlet lists, batches."""

import math
import warnings

import ase
import ase.build
import ase.neighborlist
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlp_roadmap.neighbors import (
    VerletList,
    atoms_to_batch,
    batch_neighbor_list,
    neighbor_list,
    neighbor_list_brute,
    pair_vectors,
)

EDGE = 1e-8  # pairs this close to the cutoff may legitimately differ by rounding


def triples(i, j, S) -> set:
    return set(
        zip(np.asarray(i).tolist(), np.asarray(j).tolist(), map(tuple, np.asarray(S).tolist()))
    )


def pair_distance(atoms, i, j, S) -> float:
    return float(
        np.linalg.norm(atoms.positions[j] - atoms.positions[i] + np.asarray(S) @ atoms.cell.array)
    )


def assert_same_as_ase(atoms: ase.Atoms, cutoff: float) -> int:
    "Our pairs equal ASE's as a set of (i, j, S), up to pairs within EDGE of the cutoff"
    ours = neighbor_list(atoms, cutoff)
    ref = ase.neighborlist.neighbor_list("ijS", atoms, cutoff)
    diff = triples(ours.i, ours.j, ours.S) ^ triples(*ref)
    bad = [t for t in diff if abs(pair_distance(atoms, *t) - cutoff) > EDGE]
    assert not bad, f"{len(bad)} pairs differ from ASE, e.g. {bad[:3]}"
    # the convention: d_ij = pos[j] - pos[i] + S @ cell, r_ij = |d_ij| < cutoff
    d = (
        atoms.positions[ours.j.numpy()]
        - atoms.positions[ours.i.numpy()]
        + ours.S.numpy() @ atoms.cell.array
    )
    np.testing.assert_allclose(ours.d_ij.numpy(), d, atol=1e-12)
    np.testing.assert_allclose(ours.r_ij.numpy(), np.linalg.norm(d, axis=1), atol=1e-12)
    assert (ours.r_ij < cutoff).all()
    assert ours.S.dtype == torch.long and ours.i.dtype == torch.long
    assert (torch.diff(ours.i) >= 0).all(), "list is sorted by i"
    return len(ours.i)


@st.composite
def structures(draw, max_atoms: int = 500):
    "Random triclinic cells (incl. strongly skewed and tiny ones), slabs, wires, molecules"
    n = draw(st.integers(1, max_atoms))
    pbc = draw(st.lists(st.booleans(), min_size=3, max_size=3))
    lengths = draw(st.lists(st.floats(1.0, 12.0), min_size=3, max_size=3))
    # upper-triangular shear factors: up to 3 cell lengths of skew
    shear = draw(st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3))
    cell = np.diag(lengths)
    cell[1, 0] = shear[0] * lengths[0]
    cell[2, 0] = shear[1] * lengths[0]
    cell[2, 1] = shear[2] * lengths[1]
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    # keep the density physical (<= 0.2 atoms/Å^3) so ASE's reference stays cheap
    vol = abs(np.linalg.det(cell))
    scale = max(1.0, (n / (0.1 * vol)) ** (1 / 3))
    cell = cell * scale
    frac = rng.random((n, 3)) * draw(st.sampled_from([1.0, 1.5]))  # some atoms outside the cell
    cutoff = draw(st.floats(0.5, 6.0))
    return ase.Atoms(f"H{n}", scaled_positions=frac, cell=cell, pbc=pbc), cutoff


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structures(max_atoms=100))
def test_matches_ase_random(case):
    atoms, cutoff = case
    assert_same_as_ase(atoms, cutoff)


@pytest.mark.slow
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structures(max_atoms=500))
def test_matches_ase_random_many(case):
    atoms, cutoff = case
    assert_same_as_ase(atoms, cutoff)


@pytest.mark.parametrize(
    "name",
    [
        "strongly_skewed",
        "cell_smaller_than_cutoff",
        "slab",
        "wire",
        "molecule",
        "single_atom",
        "500_atoms",
    ],
)
def test_matches_ase_named(name):
    rng = np.random.default_rng(1)
    if name == "strongly_skewed":
        atoms = ase.Atoms(
            "H5",
            cell=[[4.0, 0, 0], [11.7, 1.0, 0], [-7.5, 3.3, 2.0]],
            pbc=True,
            scaled_positions=rng.random((5, 3)),
        )
        cutoff = 4.5
    elif name == "cell_smaller_than_cutoff":
        atoms, cutoff = ase.build.bulk("Ar", "fcc", a=5.26), 9.0
    elif name == "slab":
        atoms = ase.build.fcc111("Cu", size=(2, 2, 3), vacuum=5.0)
        atoms.rattle(0.05, seed=1)
        cutoff = 5.0
    elif name == "wire":
        atoms = ase.Atoms(
            "H3", positions=rng.random((3, 3)) * 2, cell=[0, 0, 2.5], pbc=[False, False, True]
        )
        cutoff = 4.0
    elif name == "molecule":
        atoms, cutoff = ase.build.molecule("C6H6"), 3.0
    elif name == "single_atom":
        atoms, cutoff = ase.Atoms("H", positions=[[0, 0, 0]]), 2.0
    else:
        atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat((5, 5, 5))
        atoms.rattle(0.1, seed=2)
        cutoff = 5.0
    n = assert_same_as_ase(atoms, cutoff)
    assert n > 0 or name == "single_atom"


def test_equals_brute_force_including_vectors():
    atoms = ase.Atoms(
        "H7",
        cell=[[3.0, 0, 0], [2.5, 2.0, 0], [1.0, 1.0, 2.2]],
        pbc=[True, True, False],
        scaled_positions=np.random.default_rng(5).random((7, 3)),
    )
    fast, brute = neighbor_list(atoms, 4.0), neighbor_list_brute(atoms, 4.0)

    def by_triple(nl):
        key = np.lexsort((*nl.S.numpy().T[::-1], nl.j.numpy(), nl.i.numpy()))
        return nl.d_ij.numpy()[key]

    assert triples(fast.i, fast.j, fast.S) == triples(brute.i, brute.j, brute.S)
    np.testing.assert_allclose(by_triple(fast), by_triple(brute), atol=1e-12)


def test_full_list_symmetry():
    atoms = ase.build.bulk("Cu", "fcc", a=3.61).repeat(2)
    atoms.rattle(0.05, seed=0)
    nl = neighbor_list(atoms, 4.0)
    fwd = triples(nl.i, nl.j, nl.S)
    rev = triples(nl.j, nl.i, -nl.S)
    assert fwd == rev


def test_gradient_flows_to_positions_and_cell():
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True)
    pos = torch.tensor(atoms.positions, requires_grad=True)
    cell = torch.tensor(atoms.cell.array, requires_grad=True)
    nl = neighbor_list((pos, cell, atoms.pbc), 3.0)
    nl.r_ij.sum().backward()
    assert pos.grad is not None and cell.grad is not None
    assert torch.isfinite(cell.grad).all()


# ---- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("cutoff", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_cutoff(cutoff):
    with pytest.raises(ValueError, match="cutoff"):
        neighbor_list(ase.build.molecule("H2O"), cutoff)
    with pytest.raises(ValueError, match="cutoff"):
        VerletList(cutoff)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_positions(bad):
    pos = np.zeros((2, 3))
    pos[1, 2] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        neighbor_list((pos, np.eye(3), [False] * 3), 2.0)


def test_non_finite_cell():
    with pytest.raises(ValueError, match="cell contains NaN"):
        neighbor_list((np.zeros((1, 3)), np.diag([1.0, 1.0, float("nan")]), [True] * 3), 2.0)


def test_non_finite_atoms_in_a_batch():
    bad = ase.build.molecule("H2O")
    bad.positions[0, 1] = float("nan")
    with pytest.raises(ValueError, match="structure 1: positions contain NaN"):
        batch_neighbor_list([ase.build.molecule("CH4"), bad], 3.0)
    bad = ase.Atoms("H", cell=np.diag([1.0, float("inf"), 1.0]), pbc=True)
    with pytest.raises(ValueError, match="cell contains NaN or inf"):
        atoms_to_batch([bad], 3.0)


@pytest.mark.parametrize(
    "cell, pbc",
    [
        (np.zeros((3, 3)), [True, True, True]),  # zero volume
        ([[2, 0, 0], [4, 0, 0], [0, 0, 2]], [True, True, True]),  # linearly dependent vectors
        ([[2, 0, 0], [0, 2, 0], [0, 0, 0]], [False, False, True]),  # zero vector on a periodic axis
    ],
)
def test_singular_periodic_cell(cell, pbc):
    with pytest.raises(ValueError, match="singular"):
        neighbor_list((np.zeros((2, 3)), cell, pbc), 2.0)


def test_zero_cell_is_fine_without_pbc():
    nl = neighbor_list((np.array([[0.0, 0, 0], [1.0, 0, 0]]), np.zeros((3, 3)), [False] * 3), 2.0)
    assert len(nl.i) == 2


@pytest.mark.parametrize(
    "arrays, what",
    [
        ((np.zeros((2, 2)), np.eye(3), [True] * 3), "positions must have shape"),
        ((np.zeros(3), np.eye(3), [True] * 3), "positions must have shape"),
        ((np.zeros((2, 3)), np.eye(2), [True] * 3), "cell must have shape"),
        ((np.zeros((2, 3)), np.eye(3), [True] * 2), "pbc must have shape"),
        ((np.zeros((2, 3)), np.eye(3)), "tuple"),
    ],
)
def test_mismatched_shapes(arrays, what):
    with pytest.raises(ValueError, match=what):
        neighbor_list(arrays, 2.0)


def test_pair_count_warning():
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    with pytest.warns(UserWarning, match="max_pairs"):
        nl = neighbor_list(atoms, 6.0, max_pairs=1000)
    assert len(nl.i) > 1000  # the estimate was right to warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        neighbor_list(atoms, 6.0)  # default threshold: no warning


# ---- Verlet list ------------------------------------------------------------------------------


def test_verlet_list_matches_fresh_lists_and_rebuilds_rarely():
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    rng = np.random.default_rng(0)
    vl = VerletList(cutoff=4.0, skin=0.6)
    pos = atoms.positions.copy()
    for step in range(60):
        pos = pos + rng.uniform(-0.03, 0.03, pos.shape)
        arrays = (torch.tensor(pos), torch.tensor(atoms.cell.array), torch.tensor(atoms.pbc))
        got, ref = vl.update(arrays), neighbor_list(arrays, 4.0)
        assert triples(got.i, got.j, got.S) == triples(ref.i, ref.j, ref.S), step
        key = lambda nl: np.lexsort((*nl.S.numpy().T[::-1], nl.j.numpy(), nl.i.numpy()))  # noqa: E731
        np.testing.assert_allclose(
            got.r_ij.numpy()[key(got)], ref.r_ij.numpy()[key(ref)], atol=1e-12
        )
    assert vl.n_updates == 60
    assert (
        1 < vl.n_builds < 30
    )  # moves of up to 0.05 Å per step: some rebuilds, far fewer than steps


def test_verlet_list_rebuild_triggers():
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True)
    vl = VerletList(cutoff=3.0, skin=0.4)
    vl.update(atoms)
    vl.update(atoms)
    assert vl.n_builds == 1
    moved = atoms.copy()
    moved.positions[0, 0] += 0.19  # less than skin/2
    vl.update(moved)
    assert vl.n_builds == 1
    moved.positions[0, 0] += 0.02  # now 0.21 > skin/2
    vl.update(moved)
    assert vl.n_builds == 2
    strained = moved.copy()
    strained.set_cell(moved.cell * 1.001, scale_atoms=False)
    vl.update(strained)
    assert vl.n_builds == 3
    vl.update(moved.repeat((2, 1, 1)))  # different number of atoms
    assert vl.n_builds == 4


def test_verlet_list_bad_skin():
    for skin in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="skin"):
            VerletList(3.0, skin)


# ---- dtype, batches ---------------------------------------------------------------------------


def test_float32_path():
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=3)
    arrays = (
        torch.tensor(atoms.positions, dtype=torch.float32),
        torch.tensor(atoms.cell.array, dtype=torch.float32),
        atoms.pbc,
    )
    nl32, nl64 = neighbor_list(arrays, 4.5), neighbor_list(atoms, 4.5)
    assert nl32.d_ij.dtype == torch.float32 and nl32.r_ij.dtype == torch.float32
    diff = triples(nl32.i, nl32.j, nl32.S) ^ triples(nl64.i, nl64.j, nl64.S)
    assert all(abs(pair_distance(atoms, *t) - 4.5) < 1e-4 for t in diff)
    # explicit dtype argument casts an Atoms input
    assert neighbor_list(atoms, 4.5, dtype=torch.float32).d_ij.dtype == torch.float32


def test_batch_neighbor_list_offsets():
    structures = [
        ase.build.bulk("Cu", "fcc", a=3.61, cubic=True),
        ase.build.molecule("CH4"),
        ase.build.bulk("Ar", "fcc", a=5.26),
    ]
    bnl = batch_neighbor_list(structures, 4.0)
    offsets = np.cumsum([0] + [len(a) for a in structures])
    assert bnl.n_atoms.tolist() == [len(a) for a in structures]
    assert bnl.batch.tolist() == sum(([b] * len(a) for b, a in enumerate(structures)), [])
    for b, atoms in enumerate(structures):
        sel = bnl.batch[bnl.i] == b
        ref = neighbor_list(atoms, 4.0)
        assert (bnl.batch[bnl.j][sel] == b).all()
        assert triples(bnl.i[sel] - offsets[b], bnl.j[sel] - offsets[b], bnl.S[sel]) == triples(
            ref.i, ref.j, ref.S
        )


def test_batch_neighbor_list_names_bad_structure():
    with pytest.raises(ValueError, match="structure 1: .*NaN"):
        batch_neighbor_list(
            [ase.build.molecule("H2O"), (np.full((1, 3), np.nan), np.eye(3), [False] * 3)], 3.0
        )
    with pytest.raises(ValueError, match="at least one"):
        batch_neighbor_list([], 3.0)


def test_atoms_to_batch_offsets_and_pair_vectors():
    structures = [
        ase.build.bulk("Cu", "fcc", a=3.61, cubic=True),
        ase.build.molecule("C2H6"),
        ase.build.fcc111("Al", (2, 2, 2), vacuum=4.0),
    ]
    b = atoms_to_batch(structures, cutoff=3.5)
    assert b.n_structures == 3
    assert b.n_atoms.tolist() == [4, 8, 8]
    assert b.batch.tolist() == [0] * 4 + [1] * 8 + [2] * 8
    assert (b.batch[b.idx_i] == b.batch[b.idx_j]).all(), "no pair crosses structures"
    d = pair_vectors(b.pos, b.cell, b.batch, b.idx_i, b.idx_j, b.shifts)
    assert (torch.linalg.norm(d, dim=1) < 3.5).all()
    start = 0
    for k, atoms in enumerate(structures):
        ref = ase.neighborlist.neighbor_list("ijS", atoms, 3.5)
        sel = b.batch[b.idx_i] == k
        assert triples(b.idx_i[sel] - start, b.idx_j[sel] - start, b.shifts[sel].long()) == triples(
            *ref
        )
        start += len(atoms)
    assert b.to(dtype=torch.float32).pos.dtype == torch.float32


def random_mixture(seed: int) -> list[ase.Atoms]:
    "Molecules of 0-80 atoms (both sides of ALL_PAIRS_MAX_ATOMS), periodic and slab cells, shuffled"
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(12):
        n = int(rng.choice([0, 1, 2, 5, 9, 30, 64, 65, 80]))
        box = max(2.0, (n * 12.0) ** (1 / 3))
        out.append(ase.Atoms("H" * n, positions=rng.uniform(0, box, (n, 3)), pbc=False))
    for name in ("CH3CH2OH", "C6H6", "H2O"):
        m = ase.build.molecule(name)
        m.rattle(0.05, seed=seed)
        out.append(m)
    cu = ase.build.bulk("Cu", "fcc", a=3.61)
    cu.rattle(0.05, seed=seed)
    slab = ase.build.fcc111("Al", (2, 2, 2), vacuum=3.0)
    wire = ase.Atoms("C2", positions=[[0, 0, 0], [0.7, 0.3, 1.2]], cell=[5, 5, 2.5], pbc=[0, 0, 1])
    out += [cu, slab, wire]
    return [out[k] for k in rng.permutation(len(out))]


@pytest.mark.parametrize("seed", range(4))
def test_batch_neighbor_list_matches_loop_and_ase(seed):
    structures, cutoff = random_mixture(seed), 3.3
    bnl = batch_neighbor_list(structures, cutoff)
    offsets = np.cumsum([0] + [len(a) for a in structures])
    assert (torch.diff(bnl.i) >= 0).all(), "batched list is sorted by i"
    assert (bnl.batch[bnl.i] == bnl.batch[bnl.j]).all()
    for b, atoms in enumerate(structures):
        sel = bnl.batch[bnl.i] == b
        got = triples(bnl.i[sel] - offsets[b], bnl.j[sel] - offsets[b], bnl.S[sel])
        loop = neighbor_list(atoms, cutoff)
        assert got == triples(loop.i, loop.j, loop.S), f"structure {b} differs from the loop"
        assert got == triples(*ase.neighborlist.neighbor_list("ijS", atoms, cutoff))
        # vectors and distances equal the loop's, pair by pair
        key = {
            t: k
            for k, t in enumerate(
                zip(loop.i.tolist(), loop.j.tolist(), map(tuple, loop.S.tolist()))
            )
        }
        perm = [
            key[t]
            for t in zip(
                (bnl.i[sel] - offsets[b]).tolist(),
                (bnl.j[sel] - offsets[b]).tolist(),
                map(tuple, bnl.S[sel].tolist()),
            )
        ]
        torch.testing.assert_close(bnl.d_ij[sel], loop.d_ij[perm], rtol=0, atol=0)
        torch.testing.assert_close(bnl.r_ij[sel], loop.r_ij[perm], rtol=0, atol=0)


def test_batch_neighbor_list_molecules_only_float32_and_gradient():
    mols = [ase.build.molecule(n) for n in ("CH3CH2OH", "CH4", "H2O")]
    arrays = [
        (
            torch.tensor(m.positions, dtype=torch.float32, requires_grad=True),
            torch.zeros(3, 3),
            [False] * 3,
        )
        for m in mols
    ]
    bnl = batch_neighbor_list(arrays, 2.0)
    assert bnl.d_ij.dtype == torch.float32 and bnl.S.dtype == torch.long
    assert (bnl.S == 0).all()
    bnl.r_ij.sum().backward()
    for (p, _, _), m in zip(arrays, mols):  # d(sum r)/dx_a = -2 sum_j unit(d_aj) over a's pairs
        nl = neighbor_list(m, 2.0)
        u = nl.d_ij / nl.r_ij[:, None]
        ref = -2 * torch.zeros(len(m), 3, dtype=torch.float64).index_add_(0, nl.i, u)
        torch.testing.assert_close(p.grad.double(), ref, atol=1e-5, rtol=1e-5)


def test_molecule_pairs_chunks_agree():
    from mlp_roadmap.neighbors import _molecule_pairs

    rng = np.random.default_rng(1)
    n = torch.tensor([3, 0, 7, 1, 12, 5])
    pos = torch.tensor(rng.uniform(0, 4, (int(n.sum()), 3)))
    whole = _molecule_pairs(pos, n, 2.5)
    for size in (1, 10, 60):
        parts = _molecule_pairs(pos, n, 2.5, chunk_size=size)
        for a, b in zip(whole, parts):
            assert torch.equal(a, b)
    assert len(whole[0]) > 0


def test_batch_neighbor_list_still_warns_for_huge_cutoffs():
    mol = ase.build.molecule("CH3CH2OH")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batch_neighbor_list([mol, mol], 30.0, max_pairs=10)
    assert any("max_pairs" in str(w.message) for w in caught)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(4)
    atoms.rattle(0.1, seed=0)
    cpu, gpu = neighbor_list(atoms, 5.0), neighbor_list(atoms, 5.0, device="cuda")
    assert gpu.i.device.type == "cuda" and gpu.d_ij.device.type == "cuda"
    assert triples(cpu.i, cpu.j, cpu.S) == triples(gpu.i.cpu(), gpu.j.cpu(), gpu.S.cpu())
    vl = VerletList(5.0)
    out = vl.update(
        (
            torch.tensor(atoms.positions, device="cuda"),
            torch.tensor(atoms.cell.array, device="cuda"),
            atoms.pbc,
        )
    )
    assert out.i.device.type == "cuda"
    assert math.isclose(float(out.r_ij.sum()), float(cpu.r_ij.sum()), rel_tol=1e-12)
