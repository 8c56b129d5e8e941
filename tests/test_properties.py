"""Property-based tests (hypothesis) of every model type over random structures.

Structures: random triclinic periodic cells (lengths 2.5-6 Å, angles 60-120 degrees, scaled to
at least 12 Å^3 per atom, so that the 3.5 Å cutoff often reaches several periodic images) and
open-boundary molecules, 1-12 atoms of 1 or 2 species (Na, Cl), no pair closer than 1.3 Å.
Models (float64, tiny, random weights): Behler-Parrinello (ACSF), SchNet, PaiNN and
Lennard-Jones (smooth cutoff). Properties: invariance of the energy (and covariance of forces and
stress) under rotation, translation and permutation; forces equal to central finite differences
of the energy; stress equal to finite differences in the strain; extensivity under 2x1x1 and
2x2x2 supercells (and for two far-apart copies of a molecule); the neighbour list equals ASE's.

Default runs use a few derandomized examples per property and model (the whole file takes well
under a minute); the `slow`-marked variants draw 100 random examples each.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.geometry import cellpar_to_cell
from ase.neighborlist import neighbor_list as ase_neighbor_list
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlp_roadmap.md import LennardJones, compute_properties
from mlp_roadmap.mpnn import PaiNN, SchNet
from mlp_roadmap.neighbors import atoms_to_batch, neighbor_list
from mlp_roadmap.training import build_model

CUTOFF = 3.5  # Å
R_MIN = 1.3  # Å, closest pair allowed in generated structures
SPECIES = [11, 17]
VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
COMMON = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck))


@functools.cache
def model(name: str) -> torch.nn.Module:
    "Tiny float64 model of each type with fixed random weights"
    torch.manual_seed(0)
    if name == "bp":
        return build_model("bp", SPECIES, CUTOFF, n_radial=3, n_angular=2, hidden=[4]).double()
    if name == "schnet":
        return SchNet(SPECIES, CUTOFF, n_features=8, n_interactions=2, n_rbf=6).double()
    if name == "painn":
        return PaiNN(SPECIES, CUTOFF, n_features=8, n_interactions=2, n_rbf=6).double()
    return LennardJones(epsilon=0.01, sigma=1.5, cutoff=CUTOFF, smooth=True)


MODELS = ["bp", "schnet", "painn", "lj"]


# ---------------------------------------------------------------------------------------------
# structures
def _place(n: int, cell: np.ndarray, pbc: bool, rng: np.random.Generator) -> np.ndarray | None:
    "Random positions, none closer than R_MIN (minimum image), by sequential addition"
    from ase.geometry import get_distances

    pos: list[np.ndarray] = []
    for _ in range(n):
        for _try in range(100):
            p = rng.random(3) @ cell
            if not pos:
                break
            _, d = get_distances(p[None], np.array(pos), cell=cell, pbc=pbc)
            if d.min() >= R_MIN:
                break
        else:
            return None
        pos.append(p)
    return np.array(pos)


@st.composite
def structures(draw, periodic: bool | None = None, pbc=None) -> Atoms:
    "Random periodic cell or molecule, 1-12 atoms of 1-2 species"
    n = draw(st.integers(1, 12))
    species = draw(st.sampled_from([[11], [17], SPECIES]))
    periodic = draw(st.booleans()) if periodic is None else periodic
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if periodic:
        par = [draw(st.floats(2.5, 6.0)) for _ in range(3)] + [
            draw(st.floats(60, 120)) for _ in range(3)
        ]
        with np.errstate(invalid="ignore"):
            cell = cellpar_to_cell(par)
        vol = abs(np.linalg.det(cell)) if np.isfinite(cell).all() else 0.0
        assume(vol > 0.3 * np.prod(par[:3]))
        cell = cell * max(1.0, (12.0 * n / vol) ** (1 / 3))
    else:
        cell = np.eye(3) * (12.0 * n) ** (1 / 3)
    pos = _place(n, cell, periodic, rng)
    assume(pos is not None)
    at = Atoms(
        numbers=rng.choice(species, n), positions=pos, cell=cell if periodic else None, pbc=periodic
    )
    if pbc is not None and periodic:
        at.pbc = pbc
    if n > 1 or periodic:  # self-images of a small cell may also come too close
        r = neighbor_list(at, R_MIN).r_ij
        assume(len(r) == 0)
    return at


def rotation(rng: np.random.Generator) -> np.ndarray:
    "Random proper rotation matrix"
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


# ---------------------------------------------------------------------------------------------
# helpers
def props(m, at: Atoms, stress: bool = False):
    "(energy, forces (N,3), stress (3,3) or None) as NumPy"
    p = compute_properties(m, atoms_to_batch(at, m.cutoff), forces=True, stress=stress)
    s = None
    if stress:
        v = p.stress[0].detach().numpy()
        s = np.zeros((3, 3))
        for k, (a, b) in enumerate(VOIGT):
            s[a, b] = s[b, a] = v[k]
    return float(p.energy[0].detach()), p.forces.detach().numpy(), s


def energy(m, at: Atoms) -> float:
    with torch.no_grad():
        return float(compute_properties(m, atoms_to_batch(at, m.cutoff), forces=False).energy[0])


def close(a, b, tol: float = 1e-9) -> None:
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    np.testing.assert_allclose(a, b, rtol=0, atol=tol * scale)


# ---------------------------------------------------------------------------------------------
# properties
def check_invariance(m, at: Atoms, seed: int) -> None:
    rng = np.random.default_rng(seed)
    periodic = bool(at.pbc.all())
    e, f, s = props(m, at, stress=periodic)
    R = rotation(rng)
    rot = at.copy()
    rot.positions = at.positions @ R.T
    if periodic:
        rot.cell = at.cell.array @ R.T
    er, fr, sr = props(m, rot, stress=periodic)
    close(er, e)
    close(fr, f @ R.T)
    if periodic:
        close(sr, R @ s @ R.T)
    moved = at.copy()
    moved.positions += rng.normal(scale=3.0, size=3)
    if periodic:
        moved.wrap()
    et, ft, _ = props(m, moved)
    close(et, e)
    close(ft, f)
    perm = rng.permutation(len(at))
    ep, fp, _ = props(m, at[perm])
    close(ep, e)
    close(fp, f[perm])


def check_forces_fd(m, at: Atoms, seed: int, h: float = 1e-5) -> None:
    rng = np.random.default_rng(seed)
    _, f, _ = props(m, at)
    for _ in range(2):  # directional derivatives along random unit directions
        u = rng.normal(size=at.positions.shape)
        u /= np.linalg.norm(u)
        plus, minus = at.copy(), at.copy()
        plus.positions += h * u
        minus.positions -= h * u
        fd = (energy(m, plus) - energy(m, minus)) / (2 * h)
        assert abs(fd - -(f * u).sum()) <= 1e-6 * max(1.0, np.abs(f).max()), (fd, -(f * u).sum())


def check_stress_fd(m, at: Atoms, seed: int, h: float = 1e-5) -> None:
    _, _, s = props(m, at, stress=True)
    vol = at.get_volume()
    for a, b in VOIGT:
        D = np.zeros((3, 3))
        D[a, b] = D[b, a] = 1.0 if a == b else 0.5
        es = []
        for sign in (1, -1):
            x = at.copy()
            x.set_cell(at.cell.array @ (np.eye(3) + sign * h * D), scale_atoms=True)
            es.append(energy(m, x))
        fd = (es[0] - es[1]) / (2 * h * vol)
        assert abs(fd - s[a, b]) <= 1e-6 * max(1.0, np.abs(s).max()), ((a, b), fd, s[a, b])


def check_extensive(m, at: Atoms, seed: int) -> None:
    if at.pbc.all():
        e, f, s = props(m, at, stress=True)
        for rep, k in (((2, 1, 1), 2), ((2, 2, 2), 8)):
            es, fs, ss = props(m, at.repeat(rep), stress=True)
            close(es, k * e)
            close(fs, np.tile(f, (k, 1)))
            close(ss, s)
    else:  # two copies far apart: twice the energy
        e, f, _ = props(m, at)
        far = at.copy()
        far.positions += [np.ptp(at.positions[:, 0]) + m.cutoff + 1.0, 0, 0]
        e2, f2, _ = props(m, at + far)
        close(e2, 2 * e)
        close(f2, np.vstack([f, f]))


def check_neighbor_list(at: Atoms, cutoff: float, tie: float = 1e-9) -> None:
    "Same (i, j, S) pairs as ASE, ignoring pairs within `tie` Å of the cutoff (round-off decides those)"
    nl = neighbor_list(at, cutoff)
    r = nl.r_ij.numpy()
    ours = sorted(
        (a, b, tuple(s))
        for a, b, s, d in zip(nl.i.tolist(), nl.j.tolist(), nl.S.tolist(), r)
        if abs(d - cutoff) > tie
    )
    i, j, S, d = ase_neighbor_list("ijSd", at, cutoff)
    ref = sorted(
        (a, b, tuple(s))
        for a, b, s, x in zip(i.tolist(), j.tolist(), S.tolist(), d)
        if abs(x - cutoff) > tie
    )
    assert ours == ref
    np.testing.assert_allclose(
        np.sort(r[np.abs(r - cutoff) > tie]), np.sort(d[np.abs(d - cutoff) > tie]), atol=1e-10
    )


# ---------------------------------------------------------------------------------------------
# tests: a fast derandomized variant and a slow random one of each property
SEEDS = st.integers(0, 2**32 - 1)
FAST, SLOW = dict(**COMMON, derandomize=True), dict(**COMMON)


def _model_tests(check, strategy, n_fast: int, n_slow: int = 100):
    @pytest.mark.parametrize("name", MODELS)
    @settings(max_examples=n_fast, **FAST)
    @given(at=strategy, seed=SEEDS)
    def fast(name, at, seed):
        check(model(name), at, seed)

    @pytest.mark.slow
    @pytest.mark.parametrize("name", MODELS)
    @settings(max_examples=n_slow, **SLOW)
    @given(at=strategy, seed=SEEDS)
    def slow(name, at, seed):
        check(model(name), at, seed)

    return fast, slow


test_invariance, test_invariance_slow = _model_tests(check_invariance, structures(), 10)
test_forces_fd, test_forces_fd_slow = _model_tests(check_forces_fd, structures(), 10)
test_stress_fd, test_stress_fd_slow = _model_tests(check_stress_fd, structures(periodic=True), 6)
test_extensive, test_extensive_slow = _model_tests(check_extensive, structures(), 8)

PBCS = st.sampled_from(
    [(True, True, True), (True, False, True), (False, False, True), (False, False, False)]
)


@settings(max_examples=60, **FAST)
@given(at=st.tuples(structures(periodic=True), PBCS), cutoff=st.floats(0.5, 6.0))
def test_neighbor_list_equals_ase(at, cutoff):
    at, pbc = at
    at.pbc = pbc
    check_neighbor_list(at, cutoff)


@pytest.mark.slow
@settings(max_examples=500, **SLOW)
@given(at=st.tuples(structures(periodic=True), PBCS), cutoff=st.floats(0.5, 6.0))
def test_neighbor_list_equals_ase_slow(at, cutoff):
    at, pbc = at
    at.pbc = pbc
    check_neighbor_list(at, cutoff)


def test_checks_catch_a_broken_model():
    "The checks are not vacuous: a model that sees absolute positions fails invariance and FD"

    class Absolute(torch.nn.Module):
        cutoff = CUTOFF

        def forward(self, batch, d_ij):  # energy from absolute positions, forces from d_ij only
            return (batch.pos.detach() ** 2).sum(1) + 0.1 * (d_ij**2).sum() / len(batch.pos)

    at = Atoms("Na2", positions=[[0, 0, 0], [2, 0, 0]])
    with pytest.raises(AssertionError):
        check_invariance(Absolute(), at, 0)
    with pytest.raises(AssertionError):
        check_forces_fd(Absolute(), at, 0)
