"""MD throughput of our potential in ASE and in LAMMPS (fix external), against EMT and TorchANI in ASE and
native LAMMPS pair styles; and the cost of one energy+force call against GFN2-xTB and PySCF DFT.

MD part: fcc Cu, 3x3x3 cubic cells (108 atoms) at 300 K, NVE velocity Verlet, 1 fs. Reported as atom-steps
per second (atoms x steps / wall time, after a warm-up); ours-BP and TorchANI, the compared pair, run in turn
for 5 rounds of --steps steps and the fastest round of each counts. Models, all with random weights (speed does
not depend on the weights):
  - ours-BP: `BPModel` with TorchANI's `simple_ani` AEV layout (16 G2 at 5.2 Å, 32 G5 at 3.5 Å: 48 features
    for one element) and a 48-160-128-96-1 network per element, the size of `simple_ani`'s defaults;
  - ours-SchNet: `SchNet` (64 features, 3 interactions, cutoff 5 Å);
  - TorchANI: `torchani.arch.simple_ani(["Cu"], ...)` (radial cutoff 5.2 Å, angular 3.5 Å), `model.ase()`;
  - EMT: ASE's reference calculator; LAMMPS `pair_style eam` (Cu_u3) and `lj/cut` for scale.
Electronic-structure part: water and ethanol, energy+forces per call for our BP model (its species),
GFN2-xTB (tblite) and PBE/def2-SVP DFT (PySCF).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/md.py            # ~5 min on one core
    .venv/bin/python benchmarks/md.py --rep 4 --steps 50
Writes benchmarks/results/md.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import ase.build
import numpy as np
import torch
from ase import units
from ase.calculators.emt import EMT
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet
from common import notes_section, read_notes  # benchmarks/common.py
from models import (
    ani_like_descriptor,  # benchmarks/models.py: the same layout as the model benchmark
)

from mlp_roadmap.bpnn import BPModel
from mlp_roadmap.calculator import MLPCalculator
from mlp_roadmap.lammps import (
    create_lammps_system,
    lammps_available,
    lammps_commands,
    new_lammps,
    run_md_lammps,
)
from mlp_roadmap.mpnn import SchNet

warnings.filterwarnings("ignore")


def cu_cell(rep: int):
    at = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True).repeat(rep)
    MaxwellBoltzmannDistribution(at, temperature_K=300, rng=np.random.default_rng(0))
    Stationary(at)
    return at


def bp_model(species: list[int]) -> BPModel:
    """BP model the size of TorchANI's simple_ani: its AEV layout (16 radial functions at 5.2 Å per
    element, 32 angular at 3.5 Å per element pair; 48 features for Cu) and a 160-128-96 network"""
    torch.manual_seed(0)
    return BPModel(species, ani_like_descriptor(species), hidden=(160, 128, 96)).double()


def time_ase(atoms, calc, steps: int) -> float:
    "atom-steps/s of ASE velocity Verlet with `calc` (one timed run after a warm-up)"
    return time_ase_interleaved(atoms, {"calc": calc}, steps, rounds=1)["calc"]


def time_lammps_external(atoms, calc, steps: int) -> float:
    "atom-steps/s of LAMMPS fix nve with forces from `calc` through fix external (incl. set-up)"
    w, a = atoms.copy(), atoms.copy()
    w.calc = a.calc = calc
    run_md_lammps(w, "nve", steps=3, temperature_K=300, log_every=3)  # warm-up
    t0 = time.perf_counter()
    run_md_lammps(a, "nve", steps=steps, temperature_K=300, log_every=steps)
    return len(a) * steps / (time.perf_counter() - t0)


def time_lammps_native(atoms, pair: list[str], steps: int) -> float:
    "atom-steps/s of LAMMPS with a native pair style"
    lmp = new_lammps()
    try:
        create_lammps_system(lmp, atoms)
        lammps_commands(lmp, [*pair, "timestep 0.001", "fix 1 all nve", "thermo 0", "run 10"])
        t0 = time.perf_counter()
        lammps_commands(lmp, f"run {steps}")
        return len(atoms) * steps / (time.perf_counter() - t0)
    finally:
        lmp.close()


def time_calls(atoms, calc, n: int) -> float:
    "seconds per energy+forces call (positions perturbed each call so nothing is cached)"
    a = atoms.copy()
    a.calc = calc
    a.get_forces()
    t0 = time.perf_counter()
    for k in range(n):
        a.positions[0, 0] += 1e-4 * (-1) ** k
        a.get_potential_energy()
        a.get_forces()
    return (time.perf_counter() - t0) / n


def time_ase_interleaved(atoms, calcs: dict, steps: int, rounds: int = 5) -> dict:
    """atom-steps/s of ASE velocity Verlet for several calculators, run in turn for `rounds` rounds of
    `steps` steps each (every calculator sees the same machine state); the fastest round of each counts"""
    dyns = {}
    for name, calc in calcs.items():
        a = atoms.copy()
        a.calc = calc
        dyns[name] = VelocityVerlet(a, timestep=1.0 * units.fs)
        dyns[name].run(3)  # warm-up
    best = dict.fromkeys(calcs, float("inf"))
    for _ in range(rounds):
        for name, dyn in dyns.items():
            t0 = time.perf_counter()
            dyn.run(steps)
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: len(atoms) * steps / t for name, t in best.items()}


def md_rows(rep: int, steps: int) -> list[tuple[str, float]]:
    at = cu_cell(rep)
    calcs = {"ours-BP, ASE": MLPCalculator(bp_model([29]))}
    try:
        from torchani.arch import simple_ani

        ani = simple_ani(
            ["Cu"], "wb97x-631gd", self_energies="zero", repulsion=False, neighborlist="cell_list"
        )
        calcs["TorchANI (simple_ani, same size), ASE"] = ani.double().ase()
    except ImportError:
        print("torchani not installed: skipped")
    speed = time_ase_interleaved(at, calcs, steps)  # the compared pair, interleaved
    rows = [("ours-BP, ASE", speed["ours-BP, ASE"])]
    rows.append(("ours-SchNet, ASE", time_ase(at, MLPCalculator(_schnet()), steps)))
    rows += [(k, v) for k, v in speed.items() if k != "ours-BP, ASE"]
    rows.append(("EMT, ASE", time_ase(at, EMT(), steps * 4)))
    if lammps_available():
        rows.append(
            (
                "ours-BP, LAMMPS fix external",
                time_lammps_external(at, MLPCalculator(bp_model([29])), steps),
            )
        )
        eam = Path(__import__("lammps").__file__).parent / "share/lammps/potentials/Cu_u3.eam"
        rows.append(
            (
                "LAMMPS eam (Cu_u3), native",
                time_lammps_native(at, ["pair_style eam", f"pair_coeff * * {eam}"], 2000),
            )
        )
        lj = ["pair_style lj/cut 5.2", "pair_coeff * * 0.4 2.3"]
        rows.append(("LAMMPS lj/cut, native", time_lammps_native(at, lj, 2000)))
    else:
        print("lammps not importable: LAMMPS rows skipped")
    return rows


def _schnet():
    torch.manual_seed(0)
    return SchNet([29], cutoff=5.0, n_features=64, n_interactions=3).double()


ES_MOLECULES = {"H2O": [1, 8], "CH3CH2OH": [1, 6, 8]}  # molecule -> species of our model


def es_rows(name: str, species: list[int], n_model: int = 50) -> list[tuple[str, float]]:
    "seconds per energy+force call on one molecule (ase.build.molecule name)"
    mol = ase.build.molecule(name)
    rows = [
        (
            "ours-BP (ANI layout, 160-128-96)",
            time_calls(mol, MLPCalculator(bp_model(species)), n_model),
        )
    ]
    try:
        from tblite.ase import TBLite

        rows.append(
            ("GFN2-xTB (tblite)", time_calls(mol, TBLite(method="GFN2-xTB", verbosity=0), 5))
        )
    except ImportError:
        print("tblite not installed: skipped")
    try:
        from mlp_roadmap.pes import PySCFCalculator

        rows.append(("PBE/def2-SVP (PySCF)", time_calls(mol, PySCFCalculator(), 2)))
    except ImportError:
        print("pyscf not installed: skipped")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rep", type=int, default=3, help="cubic Cu cells per side (4 rep^3 atoms)")
    ap.add_argument("--steps", type=int, default=30, help="timed MD steps for the ML models")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "md.md"))
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    md = md_rows(args.rep, args.steps)
    es = {name: dict(es_rows(name, sp)) for name, sp in ES_MOLECULES.items()}
    speed = dict(md)
    n_atoms = 4 * args.rep**3
    lines = [
        "# MD throughput and cost per call", "",
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s); fcc Cu, {n_atoms} atoms, NVE, 1 fs; random weights.", "",
        "| engine | atom-steps/s | relative to ours-BP in ASE |", "|---|---:|---:|",
    ]  # fmt: skip
    base = speed["ours-BP, ASE"]
    lines += [f"| {k} | {v:,.0f} | {v / base:.2f} |" for k, v in md]
    ratios = []
    if "TorchANI (simple_ani, same size), ASE" in speed:
        r = base / speed["TorchANI (simple_ani, same size), ASE"]
        ratios.append(f"speed, ours-BP / TorchANI in ASE: {r:.2f} (goal >= 1)")
    if "ours-BP, LAMMPS fix external" in speed:
        r = base / speed["ours-BP, LAMMPS fix external"]
        ratios.append(f"time per step, LAMMPS fix external / ASE: {r:.2f} (goal <= 1.5)")
    names = list(es)
    lines += ["", *[f"- {r}" for r in ratios], "", "## One energy+force call per molecule", "",
              "Seconds per call, and in brackets the cost relative to ours-BP on the same molecule.", "",
              "| method | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]  # fmt: skip
    for method in es[names[0]]:
        cells = [
            f"{es[n][method]:.2e} ({es[n][method] / es[n]['ours-BP (ANI layout, 160-128-96)']:.3g})"
            if method in es[n]
            else "–"
            for n in names
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    text = text.rstrip("\n") + "\n" + "\n".join(notes_section(read_notes(Path(args.out))))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
