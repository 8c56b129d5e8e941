"""MD throughput: our Lennard-Jones + velocity Verlet (`mlp_roadmap.md.run_md`) against ASE's
`LennardJones` calculator + `VelocityVerlet`, on the same liquid-argon system.

Reports atom-steps per second (atoms x MD steps / wall time) for both, their ratio, and the
largest position difference between the two trajectories after the timed steps (both integrate
the same equations from the same start, so it must stay at round-off). Writes a markdown table
to benchmarks/results/lj_md.md.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lj_md.py            # 256 and 864 atoms
    .venv/bin/python benchmarks/lj_md.py --sizes 4 6 8 --steps 100 --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import ase.build
import numpy as np
import torch
from ase import units
from ase.calculators.lj import LennardJones as ASELennardJones
from ase.md.verlet import VelocityVerlet

from mlp_roadmap.md import LennardJones, maxwell_boltzmann, run_md

EPS, SIG, RC = 120 * units.kB, 3.4, 8.5  # argon (Rahman 1964), cutoff 2.5 sigma
RHO = 1.374 / 39.948 * units.mol / 1e24  # liquid argon density (atoms/Å^3)
DT_FS, T_K = 5.0, 94.4


def argon(rep: int):
    "Cubic fcc argon at liquid density with Maxwell-Boltzmann momenta at 94.4 K (4 rep^3 atoms)"
    atoms = ase.build.bulk("Ar", "fcc", a=(4 / RHO) ** (1 / 3), cubic=True).repeat(rep)
    atoms.rattle(0.05, seed=0)
    atoms.set_momenta(maxwell_boltzmann(torch.tensor(atoms.get_masses()), T_K, seed=0).numpy())
    return atoms


def time_ours(
    atoms, steps: int, device: str, dtype: torch.dtype, skin: float
) -> tuple[float, np.ndarray]:
    lj = LennardJones(EPS, SIG, RC)
    run_md(
        lj, atoms.copy(), steps=3, dt_fs=DT_FS, log_every=3, dtype=dtype, device=device
    )  # warm-up
    a = atoms.copy()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    run_md(
        lj,
        a,
        steps=steps,
        dt_fs=DT_FS,
        log_every=steps,
        dtype=dtype,
        device=device,
        neighbor_skin=skin,
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, a.positions


def time_ase(atoms, steps: int) -> tuple[float, np.ndarray]:
    a = atoms.copy()
    a.calc = ASELennardJones(epsilon=EPS, sigma=SIG, rc=RC)
    dyn = VelocityVerlet(a, timestep=DT_FS * units.fs)
    a.get_forces()  # first force call (neighbour list build) is part of the set-up, as for ours
    t0 = time.perf_counter()
    dyn.run(steps)
    return time.perf_counter() - t0, a.positions


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes", type=int, nargs="+", default=[4, 6], help="fcc repeats (4 rep^3 atoms)"
    )
    ap.add_argument("--steps", type=int, default=50, help="timed MD steps per run")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--float32", action="store_true", help="run ours in float32")
    ap.add_argument("--skin", type=float, default=1.0, help="Verlet-list skin (Å)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "lj_md.md"))
    args = ap.parse_args()
    dtype = torch.float32 if args.float32 else torch.float64
    rows = []
    for rep in args.sizes:
        atoms = argon(rep)
        n = len(atoms)
        t_ours, x_ours = time_ours(atoms, args.steps, args.device, dtype, args.skin)
        t_ase, x_ase = time_ase(atoms, args.steps)
        ours, ref = n * args.steps / t_ours, n * args.steps / t_ase
        dx = float(np.abs(x_ours - x_ase).max())
        rows.append((n, args.steps, ours, ref, ours / ref, dx))
        print(
            f"{n:5d} atoms  ours {ours:10.0f} atom-steps/s  ASE {ref:10.0f} atom-steps/s  "
            f"ratio {ours / ref:6.2f}  max |dx| {dx:.1e} Å",
            flush=True,
        )
    import mlp_roadmap.neighbors as nb

    verlet = "VerletList (skin reuse)" if hasattr(nb, "VerletList") else "rebuilt every step"
    lines = [
        "# LJ + velocity Verlet: MD throughput",
        "",
        f"Liquid argon (fcc start at 1.374 g/cm³, {T_K} K Maxwell-Boltzmann, LJ ε/k_B = 120 K, σ = 3.4 Å, "
        f"cutoff {RC} Å, shifted), dt = {DT_FS} fs, {args.steps} timed steps. Ours: `run_md` "
        f"({dtype}, {args.device}, neighbour list {verlet}, skin {args.skin} Å); ASE: "
        "`ase.calculators.lj.LennardJones` + `ase.md.verlet.VelocityVerlet` (float64 NumPy).",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; load average at the end "
        f"{os.getloadavg()[0]:.1f} (other jobs share these CPUs: compare the ratio, not absolute rates).",
        "",
        "| atoms | steps | ours (atom-steps/s) | ASE (atom-steps/s) | ours / ASE | max pos. diff (Å) |",
        "|---:|---:|---:|---:|---:|---:|",
        *[f"| {n} | {s} | {o:.0f} | {r:.0f} | {q:.2f} | {d:.1e} |" for n, s, o, r, q, d in rows],
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
