"""Model cost: energy + forces per call and training-step time for our Behler-Parrinello model against a
TorchANI ANI model of the same size, in one run on the same machine.

Equal size means: the same descriptor length and cutoffs (ANI-1x AEV layout: 16 radial shells with
r_c = 5.2 Å and 4 x 8 angular terms per neighbour-element pair with r_c = 3.5 Å; for BP, the library's
`descriptors.SymmetryFunctions` (the class behind the trainer's ACSF) with 16 G2 per neighbour element and
32 G5 per element pair, cosine cutoff, the same cutoffs) and the same atomic networks
(features -> 64 -> 64 -> 1, tanh), float32, one thread. SchNet and PaiNN (`mlp_roadmap.mpnn`, 64
features, 3 interactions, r_c = 5.2 Å) are timed on the same prebuilt batches for comparison.

Cases: fcc Cu with 108 and 1,000 atoms (periodic) and a batch of 100 rattled ethanol molecules;
training step = energy + forces with a graph, energy/force loss, backward and Adam step, on the ethanol
batch, for BP both through the descriptor and on cached descriptors (the trainer's `cache_features`). BP is timed with the neighbour list prebuilt (`model`) and including `atoms_to_batch` (`+NL`);
TorchANI builds its neighbour list inside its forward (cell list for the periodic cells, all pairs
per molecule for the ethanol batch). Prints ratios and writes
benchmarks/results/models.md.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/models.py [--device cuda] [--repeats 5]

Further models: add builders to `MODEL_BUILDERS` below; each returns an nn.Module with the BPModel
interface (species, cutoff, forward(batch, d_ij) -> per-atom energies) and gets its own column.
A second table splits BP's time into neighbour list, descriptor (forward + backward) and the rest
(scaling, networks, energy sum, autograd bookkeeping).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")

import ase.build
import numpy as np
import torch
from ase import Atoms
from common import notes_section, read_notes  # benchmarks/common.py

from mlp_roadmap.bpnn import BPModel, descriptor_features, energy_force_loss
from mlp_roadmap.descriptors import SymmetryFunction, SymmetryFunctions
from mlp_roadmap.md import compute_properties
from mlp_roadmap.mpnn import PaiNN, SchNet
from mlp_roadmap.neighbors import atoms_to_batch, pair_vectors
from mlp_roadmap.training import FeatureCache, cached_properties

HIDDEN = [64, 64]
RADIAL_RC, ANGULAR_RC = 5.2, 3.5


def cu_cell(shape: tuple, seed: int = 0) -> Atoms:
    at = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(shape)
    at.rattle(0.05, seed=seed)
    return at


def ethanols(n: int, seed: int = 0) -> list[Atoms]:
    out = []
    for i in range(n):
        at = ase.build.molecule("CH3CH2OH")
        at.rattle(0.05, seed=seed + i)
        out.append(at)
    return out


def ani_like_descriptor(species: list[int]) -> SymmetryFunctions:
    "ANI-1x-sized symmetry functions: 16 G2 (5.2 Å) per element, 32 G5 (3.5 Å) per element pair"
    shifts = np.linspace(0.9, RADIAL_RC, 17)[:-1]
    fns = [
        SymmetryFunction("G2", z, RADIAL_RC, eta=16.0, rs=float(rs))
        for z in species
        for rs in shifts
    ]
    for a, z1 in enumerate(species):
        for z2 in species[a:]:
            fns += [
                SymmetryFunction("G5", (z1, z2), ANGULAR_RC, eta=8.0, rs=rs, zeta=zeta, lam=lm)
                for rs in (0.9, 1.55, 2.2, 2.85)
                for zeta in (1.0, 4.0, 16.0, 32.0)
                for lm in (1.0, -1.0)
            ]
    return SymmetryFunctions(species, fns)


def bp_model(species: list[int]) -> BPModel:
    "BP model with ANI-1x-sized descriptors and a features-64-64-1 tanh network per element"
    return BPModel(
        species, ani_like_descriptor(species), hidden=HIDDEN, activation="tanh", scaling="none"
    )


MODEL_BUILDERS = {
    "BP": bp_model,
    "SchNet": lambda species: SchNet(species, cutoff=RADIAL_RC, n_features=64, n_interactions=3),
    "PaiNN": lambda species: PaiNN(species, cutoff=RADIAL_RC, n_features=64, n_interactions=3),
}


def ani_model(species: list[int], n_features: int, periodic: bool):
    "TorchANI AEVComputer (ANI-1x layout) + one AtomicNetwork per element of the same size as BP's"
    import torchani.aev
    import torchani.nn
    from ase.data import chemical_symbols

    aev = torchani.aev.AEVComputer.like_1x(
        num_species=len(species), neighborlist="cell_list" if periodic else "all_pairs"
    )
    assert aev.out_dim == n_features, (aev.out_dim, n_features)
    nets = {
        chemical_symbols[z]: torchani.nn.AtomicNetwork(
            [n_features, *HIDDEN, 1], activation=torch.nn.Tanh(), bias=True
        )
        for z in species
    }
    return aev, torchani.nn.ANINetworks(nets)


CLOCK = time.process_time  # CPU time of this process: the machine may be shared (see --wall)


def best(f, n: int, sync) -> float:
    f()
    f()
    sync()
    times = []
    for _ in range(n):
        t = CLOCK()
        f()
        sync()
        times.append(CLOCK() - t)
    return float(np.min(times))  # best of n: the least disturbed run on a shared machine


def best_interleaved(fs: list, n: int, sync) -> list[float]:
    "Best-of-n times of several functions, run in turn in every round"
    for f in fs:
        f()
    times = [[] for _ in fs]
    for _ in range(n):
        for f, t_list in zip(fs, times):
            t = CLOCK()
            f()
            sync()
            t_list.append(CLOCK() - t)
    return [float(np.min(t)) for t in times]


def ani_inputs(atoms_list: list[Atoms], species: list[int], device, dtype):
    idx = {z: k for k, z in enumerate(species)}
    elem = torch.tensor([[idx[z] for z in at.numbers] for at in atoms_list], device=device)
    coords = torch.tensor(np.array([at.positions for at in atoms_list]), dtype=dtype, device=device)
    periodic = bool(atoms_list[0].pbc.all())
    cell = torch.tensor(atoms_list[0].cell.array, dtype=dtype, device=device) if periodic else None
    pbc = torch.tensor([True] * 3, device=device) if periodic else None
    return elem, coords, cell, pbc


def time_case(
    name: str, atoms_list: list[Atoms], species: list[int], device, dtype, repeats, sync
) -> tuple[dict, dict]:
    torch.manual_seed(0)
    models = {k: b(species).to(device=device, dtype=dtype) for k, b in MODEL_BUILDERS.items()}
    bp = models["BP"]
    batch = atoms_to_batch(atoms_list, bp.cutoff, dtype=dtype, device=device)
    aev, nets = ani_model(species, max(bp.n_features.values()), bool(atoms_list[0].pbc.all()))
    aev, nets = aev.to(device=device, dtype=dtype), nets.to(device=device, dtype=dtype)
    elem, coords, cell, pbc = ani_inputs(atoms_list, species, device, dtype)

    def ani_ef():
        x = coords.detach().requires_grad_(True)
        e = nets(elem, aev(elem, x, cell=cell, pbc=pbc))
        return e, -torch.autograd.grad(e.sum(), x)[0]

    def bp_ef_nl():
        return compute_properties(
            bp, atoms_to_batch(atoms_list, bp.cutoff, dtype=dtype, device=device)
        )

    def nl():
        return atoms_to_batch(atoms_list, bp.cutoff, dtype=dtype, device=device)

    def descriptor():
        d = pair_vectors(batch.pos, batch.cell, batch.batch, batch.idx_i, batch.idx_j, batch.shifts)
        d = d.detach().requires_grad_(True)
        torch.autograd.grad(descriptor_features(bp.descriptor, batch, d).sum(), d)

    # same physics check: finite energies and forces of the right shape
    e_ani, f_ani = ani_ef()
    assert f_ani.shape == (len(atoms_list), len(atoms_list[0]), 3)
    for m in models.values():
        p = compute_properties(m, batch)
        assert p.forces.shape == (len(batch.pos), 3) and bool(torch.isfinite(p.forces).all())
    row = {"case": name, "atoms": int(batch.n_atoms.sum()), "BP (ms)": float("nan")}  # column order
    for k, m in models.items():
        if k != "BP":
            row[f"{k} (ms)"] = 1e3 * best(lambda m=m: compute_properties(m, batch), repeats, sync)
    # the compared pair is timed interleaved (one of each per round): both see the same machine state
    t_bp, t_bp_nl, t_ani = best_interleaved(
        [lambda: compute_properties(bp, batch), bp_ef_nl, ani_ef], repeats, sync
    )
    row["BP (ms)"], row["BP +NL (ms)"], row["ANI (ms)"] = 1e3 * t_bp, 1e3 * t_bp_nl, 1e3 * t_ani
    row["ratio BP/ANI"] = row["BP (ms)"] / row["ANI (ms)"]
    row["ratio BP+NL/ANI"] = row["BP +NL (ms)"] / row["ANI (ms)"]
    # the split is timed interleaved (one of each per round), so that all three see the same machine state
    t_nl, t_desc, t_bp = (
        1e3 * t
        for t in best_interleaved(
            [nl, descriptor, lambda: compute_properties(bp, batch)], repeats, sync
        )
    )
    total = t_nl + t_bp
    split = {"case": name, "neighbour list (ms)": t_nl, "descriptor fwd+bwd (ms)": t_desc,
             "rest of BP (ms)": t_bp - t_desc, "NL share": t_nl / total, "descriptor share": t_desc / total}  # fmt: skip
    return row, split


def time_training(atoms_list, species, device, dtype, repeats, sync) -> dict:
    torch.manual_seed(0)
    bp = MODEL_BUILDERS["BP"](species).to(device=device, dtype=dtype)
    batch = atoms_to_batch(atoms_list, bp.cutoff, dtype=dtype, device=device)
    batch.energy = torch.zeros(batch.n_structures, dtype=dtype, device=device)
    batch.forces = torch.zeros_like(batch.pos)
    opt = torch.optim.Adam(bp.parameters(), lr=1e-4)

    def bp_step():
        opt.zero_grad()
        energy_force_loss(compute_properties(bp, batch, training=True), batch, 1.0, 1.0).backward()
        opt.step()

    aev, nets = ani_model(species, max(bp.n_features.values()), False)
    aev, nets = aev.to(device=device, dtype=dtype), nets.to(device=device, dtype=dtype)
    elem, coords, _, _ = ani_inputs(atoms_list, species, device, dtype)
    opt_ani = torch.optim.Adam(nets.parameters(), lr=1e-4)
    n_at = elem.shape[1]

    def ani_step():
        opt_ani.zero_grad()
        x = coords.detach().requires_grad_(True)
        e = nets(elem, aev(elem, x))
        f = -torch.autograd.grad(e.sum(), x, create_graph=True)[0]
        loss = torch.mean((e / n_at) ** 2) + torch.mean(f**2)
        loss.backward()
        opt_ani.step()

    # the trainer's `cache_features` path: descriptors and their derivatives computed once (not timed),
    # a step runs the networks and the chain rule through the stored derivatives
    graphs = [atoms_to_batch([a], bp.cutoff, dtype=dtype, device=device) for a in atoms_list]
    for g in graphs:
        g.energy, g.forces = torch.zeros(1, dtype=dtype, device=device), torch.zeros_like(g.pos)
    cache = FeatureCache(bp, graphs)
    fb = cache.batch(range(len(graphs))).to(device)

    def bp_cached_step():
        opt.zero_grad()
        energy_force_loss(cached_properties(bp, fb, training=True), fb, 1.0, 1.0).backward()
        opt.step()

    t_bp, t_cached, t_ani = best_interleaved([bp_step, bp_cached_step, ani_step], repeats, sync)
    row = {"case": "training step, 100 ethanol", "atoms": int(batch.n_atoms.sum()),
           "BP (ms)": 1e3 * t_bp, "BP cached (ms)": 1e3 * t_cached, "ANI (ms)": 1e3 * t_ani}  # fmt: skip
    row["ratio BP/ANI"] = t_bp / t_ani
    row["ratio BP cached/ANI"] = t_cached / t_ani
    return row


def markdown(rows: list[dict], header: str) -> str:
    cols = list(rows[0])
    out = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append(
            "| "
            + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r.values())
            + " |"
        )
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "models.md"))
    ap.add_argument(
        "--wall", action="store_true", help="wall-clock time instead of process CPU time"
    )
    args = ap.parse_args()
    global CLOCK
    if args.wall or args.device != "cpu":
        CLOCK = time.perf_counter
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    device, dtype = torch.device(args.device), torch.float32
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    cases = [("Cu fcc 108", [cu_cell((3, 3, 3))], [29]), ("Cu fcc 1000", [cu_cell((5, 5, 10))], [29]),
             ("100 ethanol", ethanols(100), [1, 6, 8])]  # fmt: skip
    rows, splits = [], []
    for name, atoms, species in cases:
        row, split = time_case(name, atoms, species, device, dtype, args.repeats, sync)
        rows.append(row)
        splits.append(split)
    train = time_training(ethanols(100), [1, 6, 8], device, dtype, args.repeats, sync)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = (
        f"# Model cost: BP, SchNet, PaiNN vs TorchANI (energy + forces per call, best of {args.repeats})\n\n"
        f"Device {device}, float32, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"{'wall-clock' if CLOCK is time.perf_counter else 'process CPU'} time, "
        f"{platform.processor() or platform.machine()}, load average {load:.1f} during the run.\n"
        f"BP and ANI networks features -> {HIDDEN} -> 1 (tanh); descriptors of equal length and cutoffs "
        f"(ANI-1x layout; BP on `descriptors.SymmetryFunctions`). Model columns use a prebuilt neighbour "
        f"list; 'BP +NL' includes `atoms_to_batch` (TorchANI builds its list inside its forward)."
    )
    text = markdown(rows, header)
    text += "\n" + markdown(splits, "## Where BP's time goes (neighbour list + model = 100 %)")
    text += "\n" + markdown(
        [train], "## Training step (energy + forces with graph, loss, backward, Adam)"
    )
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    text = text.rstrip("\n") + "\n" + "\n".join(notes_section(read_notes(Path(args.out))))
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
