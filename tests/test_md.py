"""Lennard-Jones against ASE and finite differences; integrators against ase.md; MD analysis helpers."""

import math

import ase.build
import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.calculators.lj import LennardJones as ASELennardJones
from ase.md.verlet import VelocityVerlet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlp_roadmap.md import (
    VOIGT,
    LennardJones,
    MDInstabilityError,
    compute_properties,
    diffusion_coefficient,
    energy_drift,
    force_function,
    init_state,
    kinetic_energy,
    langevin_step,
    maxwell_boltzmann,
    msd,
    rdf,
    run_md,
    temperature,
    unwrap_positions,
    velocity_verlet_step,
)
from mlp_roadmap.neighbors import atoms_to_batch

EPS, SIG, RC = 120 * units.kB, 3.4, 8.5  # argon
RHO = 1.374 / 39.948 * units.mol / 1e24  # liquid argon density (atoms/Å^3)
A_LIQ = (4 / RHO) ** (1 / 3)

MODES = {  # the cutoff treatments ASE implements
    "shifted": dict(),
    "smooth": dict(smooth=True),
    "smooth_ro": dict(smooth=True, ro=6.0),
}


def ase_calc(lj: LennardJones) -> ASELennardJones:
    if lj.smooth:
        return ASELennardJones(
            epsilon=lj.epsilon, sigma=lj.sigma, rc=lj.cutoff, ro=lj.ro, smooth=True
        )
    return ASELennardJones(epsilon=lj.epsilon, sigma=lj.sigma, rc=lj.cutoff)


def ours(lj: LennardJones, atoms: Atoms):
    return compute_properties(lj, atoms_to_batch(atoms, lj.cutoff), forces=True, stress=True)


def assert_matches_ase(lj: LennardJones, atoms: Atoms, tol: float = 1e-10):
    p = ours(lj, atoms)
    atoms = atoms.copy()
    atoms.calc = ase_calc(lj)
    np.testing.assert_allclose(p.energy.item(), atoms.get_potential_energy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(p.forces.numpy(), atoms.get_forces(), rtol=tol, atol=tol)
    np.testing.assert_allclose(p.stress[0].numpy(), atoms.get_stress(), rtol=tol, atol=tol)
    np.testing.assert_allclose(
        p.energies.detach().numpy(), atoms.get_potential_energies(), rtol=tol, atol=tol
    )


def fcc_argon(rep: int = 2, a: float = 5.26, rattle: float = 0.1, seed: int = 0) -> Atoms:
    at = ase.build.bulk("Ar", "fcc", a=a, cubic=True).repeat(rep)
    at.rattle(rattle, seed=seed)
    return at


def liquid_start(rep: int = 2, temperature_K: float = 100.0, seed: int = 1) -> Atoms:
    at = fcc_argon(rep, a=A_LIQ, rattle=0.05, seed=seed)
    at.set_momenta(
        maxwell_boltzmann(torch.tensor(at.get_masses()), temperature_K, seed=seed).numpy()
    )
    return at


# ----------------------------------------------------------------------------- Lennard-Jones vs ASE
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("system", ["fcc", "fcc_compressed", "triclinic"])
def test_lj_matches_ase(mode, system):
    if system == "fcc":
        atoms = fcc_argon()
    elif system == "fcc_compressed":
        atoms = fcc_argon(rep=1, a=4.9, rattle=0.2, seed=5)  # cell smaller than 2 rc: many images
    else:
        atoms = fcc_argon(rep=1, a=5.5, rattle=0.2, seed=7)
        atoms.set_cell(
            atoms.cell.array + [[0, 1.1, 0.4], [0.7, 0, 0], [0.3, -0.6, 0]], scale_atoms=True
        )
    assert_matches_ase(LennardJones(EPS, SIG, RC, **MODES[mode]), atoms)


def random_atoms(n: int, cell: np.ndarray, seed: int, d_min: float = 2.6) -> Atoms:
    "Up to `n` random atoms in a periodic `cell`, no two closer than `d_min` (random sequential addition)"
    rng = np.random.default_rng(seed)
    images = np.array(list(np.ndindex(5, 5, 5))) - 2
    pos = []
    for _ in range(50 * n):
        x = rng.random(3) @ cell
        if pos:
            d = np.array(pos)[:, None] + (images @ cell)[None] - x
            if np.linalg.norm(d, axis=-1).min() < d_min:
                continue
        pos.append(x)
        if len(pos) == n:
            break
    return Atoms(f"Ar{len(pos)}", positions=pos, cell=cell, pbc=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 14),
    lengths=st.tuples(*[st.floats(5.5, 9.0)] * 3),
    skew=st.tuples(*[st.floats(-0.45, 0.45)] * 3),
    mode=st.sampled_from(sorted(MODES)),
    seed=st.integers(0, 2**31 - 1),
)
def test_lj_matches_ase_random_cells(n, lengths, skew, mode, seed):
    cell = (
        np.diag(lengths)
        + np.array([[0, skew[0], skew[1]], [0, 0, skew[2]], [0, 0, 0]]) * lengths[0]
    )
    assert_matches_ase(LennardJones(EPS, SIG, RC, **MODES[mode]), random_atoms(n, cell, seed))


def test_plain_truncation_is_shifted_plus_constant():
    # ASE only shifts; the plain truncation has the same forces and stress and differs in energy
    # by u(rc)/2 for every ordered pair inside the cutoff
    atoms = fcc_argon(rep=1, a=5.5, rattle=0.2, seed=7)
    plain, shifted = LennardJones(EPS, SIG, RC, shift=False), LennardJones(EPS, SIG, RC)
    p, q = ours(plain, atoms), ours(shifted, atoms)
    n_pairs = int((atoms_to_batch(atoms, RC).idx_i >= 0).sum())
    u_rc = 4 * EPS * ((SIG / RC) ** 12 - (SIG / RC) ** 6)
    assert abs(p.energy.item() - q.energy.item() - 0.5 * n_pairs * u_rc) < 1e-10
    assert torch.allclose(p.forces, q.forces, atol=1e-12) and torch.allclose(
        p.stress, q.stress, atol=1e-14
    )


def test_lj_plain_truncation_is_continuous_only_when_shifted():
    r2 = torch.tensor([(RC - 1e-9) ** 2, (RC + 1e-9) ** 2], dtype=torch.float64)
    plain = LennardJones(EPS, SIG, RC, shift=False).pair_energy(r2)
    shifted = LennardJones(EPS, SIG, RC).pair_energy(r2)
    smooth = LennardJones(EPS, SIG, RC, smooth=True).pair_energy(r2)
    assert abs(plain[0].item()) > 1e-4 and plain[1].item() == 0
    assert abs(shifted[0].item()) < 1e-12 and abs(smooth[0].item()) < 1e-12


def test_lj_hparams_round_trip_and_bad_input():
    lj = LennardJones(EPS, SIG, RC, smooth=True, ro=6.5, species=[18])
    assert LennardJones(**lj.hparams()).hparams() == lj.hparams()
    for kw in (
        dict(epsilon=-1.0),
        dict(sigma=0.0),
        dict(cutoff=-2.0),
        dict(smooth=True, cutoff=5.0, ro=6.0),
    ):
        with pytest.raises(ValueError):
            LennardJones(**{**dict(epsilon=EPS, sigma=SIG), **kw})


# ----------------------------------------------------------------------------- finite differences
def _energy(lj, atoms):
    return compute_properties(lj, atoms_to_batch(atoms, lj.cutoff), forces=False).energy.item()


@pytest.mark.parametrize("mode", ["smooth", "shifted"])
def test_forces_and_stress_equal_finite_differences(mode):
    lj = LennardJones(EPS, SIG, RC, **MODES[mode])
    atoms = fcc_argon(rep=1, a=5.3, rattle=0.15, seed=2)
    atoms.set_cell(atoms.cell.array + [[0, 0.3, 0], [0.2, 0, 0], [0, 0, 0.1]], scale_atoms=True)
    p = ours(lj, atoms)
    h = 1e-4
    fd = np.zeros((len(atoms), 3))
    for i, a in np.ndindex(len(atoms), 3):
        e = []
        for sgn in (1, -1):
            moved = atoms.copy()
            moved.positions[i, a] += sgn * h
            e.append(_energy(lj, moved))
        fd[i, a] = -(e[0] - e[1]) / (2 * h)
    np.testing.assert_allclose(p.forces.numpy(), fd, atol=1e-7)
    h = 1e-5
    fs = np.zeros(6)
    for k, (a, b) in enumerate(VOIGT):
        e = []
        for sgn in (1, -1):
            eps = np.zeros((3, 3))
            eps[a, b] += 0.5 * sgn * h
            eps[b, a] += 0.5 * sgn * h
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            e.append(_energy(lj, strained))
        fs[k] = (e[0] - e[1]) / (2 * h) / atoms.get_volume()
    np.testing.assert_allclose(p.stress[0].numpy(), fs, atol=1e-9)


# ----------------------------------------------------------------------------- integrators
def _force_fn(lj, atoms, **kw):
    return force_function(
        lj,
        torch.tensor(atoms.numbers),
        torch.tensor(atoms.cell.array),
        torch.tensor(atoms.pbc),
        **kw,
    )


def test_velocity_verlet_reproduces_ase_100_steps():
    lj = LennardJones(EPS, SIG, RC)
    start = liquid_start(temperature_K=150.0)
    ref = start.copy()
    ref.calc = ase_calc(lj)
    dyn = VelocityVerlet(ref, timestep=5 * units.fs)
    dyn.run(20)
    ref_20 = ref.positions.copy()
    dyn.run(80)
    fn = _force_fn(lj, start)
    s = init_state(
        torch.tensor(start.positions),
        torch.tensor(start.get_momenta()),
        torch.tensor(start.get_masses()),
        fn,
    )
    for _ in range(100):
        s = velocity_verlet_step(s, fn, 5.0)
    assert np.abs(s.positions.numpy() - ref.positions).max() < 1e-8
    assert np.abs(s.momenta.numpy() - ref.get_momenta()).max() < 1e-8
    # and run_md (neighbour list with skin, log) follows the same trajectory
    atoms = start.copy()
    log = run_md(lj, atoms, steps=20, dt_fs=5.0, log_every=10)
    assert np.abs(atoms.positions - ref_20).max() < 1e-10
    assert np.abs(log.positions[-1] - ref_20).max() < 1e-10


def test_nve_energy_drift_small():
    # 32 atoms of liquid-density argon, smooth LJ, 100 steps of 5 fs: |drift| < 0.01 meV/atom/ps
    lj = LennardJones(EPS, SIG, RC, smooth=True)
    atoms = liquid_start(temperature_K=120.0, seed=4)
    log = run_md(lj, atoms, steps=100, dt_fs=5.0, log_every=5)
    drift = energy_drift(log.time_fs, log.etot, len(atoms))
    assert abs(drift) < 0.01, drift  # measured: 6e-4
    # fluctuations of Etot small compared with those of Epot
    assert np.ptp(log.etot) < 0.05 * np.ptp(log.epot)


def test_maxwell_boltzmann_zero_momentum_and_temperature():
    masses = torch.full((400,), 39.948, dtype=torch.float64)
    masses[::2] = 4.0026  # mixture: the momentum removal must weight by mass
    temps = []
    for seed in range(100):
        p = maxwell_boltzmann(masses, 250.0, seed=seed)
        assert p.sum(0).abs().max() < 1e-10
        temps.append(float(temperature(p, masses)))
    expected = 250.0 * (len(masses) - 1) / len(masses)
    sem = expected * math.sqrt(2 / (3 * len(masses))) / math.sqrt(len(temps))
    assert abs(np.mean(temps) - expected) < 4 * sem
    # seeded: same seed, same momenta; different seeds differ
    assert torch.equal(
        maxwell_boltzmann(masses, 250.0, seed=3), maxwell_boltzmann(masses, 250.0, seed=3)
    )
    assert not torch.equal(
        maxwell_boltzmann(masses, 250.0, seed=3), maxwell_boltzmann(masses, 250.0, seed=4)
    )


def test_kinetic_energy_and_temperature_match_ase():
    atoms = liquid_start(temperature_K=80.0)
    p, m = torch.tensor(atoms.get_momenta()), torch.tensor(atoms.get_masses())
    assert abs(kinetic_energy(p, m).item() - atoms.get_kinetic_energy()) < 1e-12
    assert abs(temperature(p, m).item() - atoms.get_temperature()) < 1e-9


def test_dtype_follows_inputs():
    masses = torch.full((8,), 39.948, dtype=torch.float32)
    p = maxwell_boltzmann(masses, 100.0, seed=0)
    assert p.dtype == torch.float32
    lj = LennardJones(EPS, SIG, RC)
    atoms = liquid_start()
    fn = force_function(
        lj,
        torch.tensor(atoms.numbers),
        torch.tensor(atoms.cell.array, dtype=torch.float32),
        torch.tensor(atoms.pbc),
    )
    s = init_state(
        torch.tensor(atoms.positions, dtype=torch.float32),
        torch.tensor(atoms.get_momenta(), dtype=torch.float32),
        torch.tensor(atoms.get_masses(), dtype=torch.float32),
        fn,
    )
    s = langevin_step(s, fn, 5.0, 100.0, 0.01, torch.Generator().manual_seed(0))
    assert s.positions.dtype == s.momenta.dtype == s.forces.dtype == torch.float32


def test_langevin_reaches_target_temperature():
    lj = LennardJones(EPS, SIG, RC)
    atoms = liquid_start(temperature_K=10.0)  # start cold
    log = run_md(
        lj,
        atoms,
        steps=80,
        dt_fs=5.0,
        ensemble="nvt",
        temperature_K=200.0,
        friction=0.1,
        log_every=2,
        seed=1,
    )
    assert log.temperature_K[0] < 30
    late = log.temperature_K[len(log.temperature_K) // 2 :].mean()
    assert abs(late - 200.0) < 50.0, late


# ----------------------------------------------------------------------------- trajectory, guards, bad input
def test_run_md_writes_trajectories(tmp_path):
    lj = LennardJones(EPS, SIG, RC)
    for name in ("md.extxyz", "md.traj"):
        atoms = liquid_start()
        log = run_md(lj, atoms, steps=20, dt_fs=5.0, log_every=5, trajectory=tmp_path / name)
        frames = ase.io.read(tmp_path / name, ":")
        assert len(frames) == len(log.time_fs) == 5
        np.testing.assert_allclose(frames[-1].positions, atoms.positions, atol=1e-8)
        np.testing.assert_allclose(frames[-1].get_potential_energy(), log.epot[-1], atol=1e-8)
        np.testing.assert_allclose(frames[-1].get_momenta(), atoms.get_momenta(), atol=1e-8)


def test_overlap_guard_raises():
    lj = LennardJones(EPS, SIG, RC)
    atoms = liquid_start()
    atoms.positions[1] = atoms.positions[0] + [0.2, 0, 0]
    with pytest.raises(MDInstabilityError, match="overlap"):
        run_md(lj, atoms, steps=5, dt_fs=1.0)


def test_explosion_guard_stops_before_writing_garbage(tmp_path):
    lj = LennardJones(EPS, SIG, RC)
    atoms = liquid_start(temperature_K=5000.0)
    traj = tmp_path / "boom.extxyz"
    with pytest.raises(MDInstabilityError):
        run_md(lj, atoms, steps=200, dt_fs=60.0, log_every=1, trajectory=traj, min_distance=1.5)
    frames = ase.io.read(traj, ":")
    assert all(
        np.isfinite(f.get_potential_energy()) and np.isfinite(f.positions).all() for f in frames
    )


class _NaNModel(torch.nn.Module):
    cutoff = 5.0

    def forward(self, batch, d_ij):
        return (d_ij.sum() * float("nan")).expand(len(batch.pos))


def test_non_finite_energy_raises():
    with pytest.raises(MDInstabilityError, match="non-finite"):
        run_md(_NaNModel(), liquid_start(), steps=2, dt_fs=1.0)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(dt_fs=-1.0), "dt_fs"),
        (dict(dt_fs=float("nan")), "dt_fs"),
        (dict(ensemble="nvt", temperature_K=-5.0), "temperature_K"),
        (dict(ensemble="nvt"), "temperature_K"),
        (dict(ensemble="nvt", temperature_K=100.0, friction=-1.0), "friction"),
        (dict(ensemble="npt"), "ensemble"),
        (dict(neighbor_skin=-1.0), "skin"),
        (dict(log_every=0), "log_every"),
    ],
)
def test_run_md_bad_input(kw, match):
    args = dict(steps=2, dt_fs=1.0) | kw
    with pytest.raises(ValueError, match=match):
        run_md(LennardJones(EPS, SIG, RC), liquid_start(), **args)


def test_integrator_bad_input():
    masses = torch.full((4,), 39.948, dtype=torch.float64)
    with pytest.raises(ValueError, match="temperature_K"):
        maxwell_boltzmann(masses, -1.0)
    with pytest.raises(ValueError, match="masses"):
        maxwell_boltzmann(-masses, 10.0)
    lj = LennardJones(EPS, SIG, RC)
    atoms = liquid_start()
    fn = _force_fn(lj, atoms)
    s = init_state(
        torch.tensor(atoms.positions),
        torch.tensor(atoms.get_momenta()),
        torch.tensor(atoms.get_masses()),
        fn,
    )
    with pytest.raises(ValueError, match="dt_fs"):
        velocity_verlet_step(s, fn, -2.0)
    with pytest.raises(ValueError, match="temperature_K"):
        langevin_step(s, fn, 2.0, -10.0)


# ----------------------------------------------------------------------------- analysis
def test_rdf_of_random_positions_is_one():
    rng = np.random.default_rng(0)
    cell = np.diag([12.0, 13.0, 14.0])
    frames = rng.random((20, 60, 3)) @ cell
    r, g = rdf(frames, cell, r_max=9.0, n_bins=30)
    assert r.shape == g.shape == (30,)
    sel = r > 3.0  # small shells hold few pairs: noisy
    assert abs(g[sel].mean().item() - 1) < 0.02
    assert (g[sel] - 1).abs().max().item() < 0.15


def test_rdf_of_fcc_first_shell():
    atoms = ase.build.bulk("Ar", "fcc", a=5.26, cubic=True).repeat(3)
    r, g = rdf(atoms.positions, atoms.cell.array, r_max=4.5, n_bins=45)
    nn = 5.26 / math.sqrt(2)
    # 12 neighbours in the shell: integral of rho g 4 pi r^2 dr over the first peak is 12
    rho, dr = (len(atoms) - 1) / atoms.get_volume(), r[1] - r[0]
    shell = 4 / 3 * math.pi * ((r + dr / 2) ** 3 - (r - dr / 2) ** 3)
    n1 = (rho * g * shell)[(r > nn - 0.3) & (r < nn + 0.3)]
    assert abs(n1.sum().item() - 12) < 1e-9


def test_msd_unwrap_and_diffusion():
    rng = np.random.default_rng(1)
    cell = np.diag([10.0, 10.0, 10.0])
    steps = rng.normal(scale=0.3, size=(400, 50, 3))
    true = np.cumsum(steps, axis=0)
    wrapped = true % 10.0
    unwrapped = unwrap_positions(wrapped, cell).numpy()
    np.testing.assert_allclose(unwrapped - unwrapped[0], true - true[0], atol=1e-9)
    m = msd(true, max_lag=100).numpy()
    t = np.arange(101) * 2.0  # 2 fs between frames
    d = diffusion_coefficient(t, m)
    # random walk: MSD = 3 sigma^2 k, D = sigma^2 / (2 dt) = 0.0225 Å^2/fs
    assert abs(d.A2_per_fs - 0.09 / 4) < 0.1 * 0.09 / 4
    assert d.cm2_per_s == pytest.approx(0.1 * d.A2_per_fs)
    ballistic = np.arange(10.0)[:, None, None] * np.array([1.0, 2.0, 2.0])
    np.testing.assert_allclose(
        msd(np.repeat(ballistic, 3, axis=1), max_lag=9).numpy(), 9 * np.arange(10.0) ** 2
    )


def test_energy_drift_units_and_bad_input():
    t = np.linspace(0, 2000.0, 21)  # fs
    e = -10 + 3e-3 * t / 1000  # +3 meV per ps in total
    assert energy_drift(t, e, n_atoms=3) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        energy_drift(t, e[:-1], 3)
    with pytest.raises(ValueError):
        rdf(np.zeros((1, 3)), np.eye(3), 1.0)
    with pytest.raises(ValueError):
        msd(np.zeros((1, 2, 3)))
