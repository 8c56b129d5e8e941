"""Model cost: energy + forces per call and training-step time for our Behler-Parrinello model against a
TorchANI ANI model of the same size, in one run on the same machine.

Equal size means: the same descriptor length and cutoffs (ANI-1x AEV layout: 16 radial shells with
r_c = 5.2 Å and 4 x 8 angular terms per neighbour-element pair with r_c = 3.5 Å; for BP, 16 n2p2 type-2
functions per neighbour element and 32 type-9 functions per element pair with the same cutoffs) and the
same atomic networks (features -> 64 -> 64 -> 1, tanh), float32, one thread.

Cases: fcc Cu with 108 and 1,000 atoms (periodic) and a batch of 100 rattled ethanol molecules;
training step = energy + forces with a graph, energy/force loss, backward and Adam step, on the ethanol
batch. BP is timed with the neighbour list prebuilt (`model`) and including `atoms_to_batch` (`+NL`);
TorchANI builds its neighbour list inside its forward (cell list for the periodic cells, all pairs
per molecule for the ethanol batch). Prints ratios and writes
benchmarks/results/models.md.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/models.py [--device cuda] [--repeats 5]

Hooks for the message-passing models (SchNet, PaiNN from `mlp_roadmap.mpnn`): add builders to
`MODEL_BUILDERS` below; each returns an nn.Module with the BPModel interface (species, cutoff,
forward(batch, d_ij) -> per-atom energies) and is timed by the same `time_ours`.
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

from mlp_roadmap.bpnn import BPModel, energy_force_loss
from mlp_roadmap.md import compute_properties
from mlp_roadmap.n2p2 import N2P2SymmetryFunctions
from mlp_roadmap.neighbors import atoms_to_batch

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


def bp_model(species: list[int]) -> BPModel:
    "BP model with ANI-1x-sized descriptors: 16 radial per element, 32 angular per element pair"
    shifts = np.linspace(0.9, RADIAL_RC, 17)[:-1]
    fns = []
    for zc in species:
        for zn in species:
            fns += [
                dict(center=zc, type=2, neighbors=[zn], eta=16.0, rs=float(rs), rc=RADIAL_RC)
                for rs in shifts
            ]
        for a, z1 in enumerate(species):
            for z2 in species[a:]:
                for eta, rs in [(8.0, 0.9), (8.0, 1.55), (8.0, 2.2), (8.0, 2.85)]:
                    for zeta in (1.0, 4.0, 16.0, 32.0):
                        fns += [
                            dict(
                                center=zc,
                                type=9,
                                neighbors=[z1, z2],
                                eta=eta,
                                rs=rs,
                                rc=ANGULAR_RC,
                                **{"lambda": lm, "zeta": zeta},
                            )
                            for lm in (1.0, -1.0)
                        ]
    sfd = N2P2SymmetryFunctions(species, fns, cutoff_type=1)
    return BPModel(species, sfd, hidden=HIDDEN, activation="tanh", scaling="none")


MODEL_BUILDERS = {"BP": bp_model}  # add "SchNet"/"PaiNN" builders here (same interface)


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


def best(f, n: int, sync) -> float:
    f()
    f()
    sync()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        sync()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


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
) -> dict:
    torch.manual_seed(0)
    bp = MODEL_BUILDERS["BP"](species).to(device=device, dtype=dtype)
    batch = atoms_to_batch(atoms_list, bp.cutoff, dtype=dtype, device=device)
    aev, nets = ani_model(species, max(bp.n_features.values()), bool(atoms_list[0].pbc.all()))
    aev, nets = aev.to(device=device, dtype=dtype), nets.to(device=device, dtype=dtype)
    elem, coords, cell, pbc = ani_inputs(atoms_list, species, device, dtype)

    def ani_ef():
        x = coords.detach().requires_grad_(True)
        e = nets(elem, aev(elem, x, cell=cell, pbc=pbc))
        return e, -torch.autograd.grad(e.sum(), x)[0]

    def bp_ef():
        return compute_properties(bp, batch)

    def bp_ef_nl():
        return compute_properties(
            bp, atoms_to_batch(atoms_list, bp.cutoff, dtype=dtype, device=device)
        )

    # same physics check: both give finite energies and forces of the right shape
    e_ani, f_ani = ani_ef()
    p = bp_ef()
    assert f_ani.shape == (len(atoms_list), len(atoms_list[0]), 3) and p.forces.shape == (
        len(batch.pos),
        3,
    )
    row = {
        "case": name,
        "atoms": int(batch.n_atoms.sum()),
        "BP model (ms)": 1e3 * best(bp_ef, repeats, sync),
        "BP +NL (ms)": 1e3 * best(bp_ef_nl, repeats, sync),
        "ANI (ms)": 1e3 * best(ani_ef, repeats, sync),
    }
    row["ratio BP+NL/ANI"] = row["BP +NL (ms)"] / row["ANI (ms)"]
    return row


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

    row = {
        "case": "training step, 100 ethanol",
        "atoms": int(batch.n_atoms.sum()),
        "BP model (ms)": 1e3 * best(bp_step, repeats, sync),
        "BP +NL (ms)": float("nan"),
        "ANI (ms)": 1e3 * best(ani_step, repeats, sync),
    }
    row["ratio BP+NL/ANI"] = row["BP model (ms)"] / row["ANI (ms)"]
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
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    device, dtype = torch.device(args.device), torch.float32
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rows = [
        time_case("Cu fcc 108", [cu_cell((3, 3, 3))], [29], device, dtype, args.repeats, sync),
        time_case("Cu fcc 1000", [cu_cell((5, 5, 10))], [29], device, dtype, args.repeats, sync),
        time_case("100 ethanol", ethanols(100), [1, 6, 8], device, dtype, args.repeats, sync),
        time_training(ethanols(100), [1, 6, 8], device, dtype, args.repeats, sync),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = (
        f"# Model cost: BP vs TorchANI (energy + forces per call, median of {args.repeats})\n\n"
        f"Device {device}, float32, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"{platform.processor() or platform.machine()}, load average {load:.1f} during the run.\n"
        f"Networks features -> {HIDDEN} -> 1 (tanh) for both; descriptors of equal length and cutoffs "
        f"(ANI-1x layout). 'BP +NL' includes building the neighbour list (TorchANI does it inside). "
        f"Training row: ratio is BP/ANI per optimisation step."
    )
    text = markdown(rows, header)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
