"""Neighbour-list benchmark: mlp_roadmap.neighbors.neighbor_list vs ASE, vesin and matscipy.

fcc Cu (a = 3.61 Å), cutoff 5 Å, full lists with shifts (and distance vectors where the library
gives them), ~100 to 32,000 atoms (10^5 with --max-atoms 100000). Every library must agree on the
pair count. Times are the minimum of --repeat runs (at least 25 up to 2,000 atoms; the libraries run
in turn in every round) (wall clock, plus process CPU time for ours and
vesin, which is less sensitive to other jobs on a shared machine). Peak memory of ours: torch's CPU
allocator is invisible to tracemalloc, so we report the growth of the peak resident set size
(`resource` ru_maxrss) of one call in a fresh subprocess per size, and that growth per pair.

Writes benchmarks/results/neighbors.md (table) and benchmarks/results/neighbors.png (scaling plot).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/neighbors.py --max-atoms 32000 [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import ase.build
import ase.neighborlist
import numpy as np
import torch

from mlp_roadmap.neighbors import neighbor_list

RESULTS = Path(__file__).resolve().parent / "results"
CUTOFF = 5.0
REPEATS = [1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 24, 30]  # cubic fcc cells: 4 n^3 atoms


def fcc_cu(rep: int) -> ase.Atoms:
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(rep)
    atoms.rattle(0.01, seed=0)  # break exact lattice symmetry (pairs exactly at the cutoff)
    return atoms


def best(f, repeat: int) -> tuple[float, float, object]:
    "min wall time, min CPU time, last result"
    wall, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        out = f()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu, out


def runners(device: str) -> dict:
    "name -> (function of atoms returning the number of pairs)"
    out = {}

    def ours(at):
        nl = neighbor_list(at, CUTOFF, device=device)
        return len(nl.i)

    out["ours"] = ours
    try:
        import vesin

        calc = vesin.NeighborList(cutoff=CUTOFF, full_list=True)
        out["vesin"] = lambda at: len(calc.compute(at.positions, at.cell.array, True, "ijSd")[0])
    except ImportError:
        print("vesin not installed: skipped", file=sys.stderr)
    try:
        from matscipy.neighbours import neighbour_list as msp

        out["matscipy"] = lambda at: len(msp("ijSD", at, CUTOFF)[0])
    except ImportError:
        print("matscipy not installed: skipped", file=sys.stderr)
    out["ase"] = lambda at: len(ase.neighborlist.neighbor_list("ijSD", at, CUTOFF)[0])
    return out


def peak_rss_growth(rep: int, device: str) -> float:
    "Peak-RSS growth (MB) during one neighbour list, in a fresh process (Linux: VmHWM reset)"
    code = f"""
import os, torch, ase.build
torch.set_num_threads(1)
from mlp_roadmap.neighbors import neighbor_list
def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return float(line.split()[1]) / 1024
at = ase.build.bulk('Cu', 'fcc', a=3.61, cubic=True).repeat({rep}); at.rattle(0.01, seed=0)
neighbor_list(ase.build.bulk('Cu', 'fcc', a=3.61, cubic=True), {CUTOFF})  # warm-up
with open('/proc/self/clear_refs', 'w') as f:
    f.write('5')  # reset the peak resident set size (VmHWM) to the current one
base = status('VmRSS')
nl = neighbor_list(at, {CUTOFF}, device={device!r})
print(status('VmHWM') - base)
"""
    try:
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        return float(res.stdout.strip().splitlines()[-1])
    except (subprocess.CalledProcessError, ValueError, IndexError):
        return float("nan")  # not Linux, or /proc not writable


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-atoms", type=int, default=32000, help="largest system (atoms)")
    ap.add_argument("--device", default="cpu", help="device for ours (cpu or cuda)")
    ap.add_argument("--repeat", type=int, default=5, help="timings per size (minimum is kept)")
    ap.add_argument("--ase-max-atoms", type=int, default=32000, help="skip ASE above this size")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: CUDA is not available")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    args.out.mkdir(parents=True, exist_ok=True)
    run = runners(args.device)
    run["ours"](fcc_cu(2))  # warm-up (first torch calls are slow)
    rows = []
    for rep in REPEATS:
        at = fcc_cu(rep)
        if len(at) > args.max_atoms:
            break
        row = {"atoms": len(at)}
        names = [k for k in run if not (k == "ase" and len(at) > args.ase_max_atoms)]
        reps = max(args.repeat, 25) if len(at) <= 2000 else args.repeat  # small sizes: cheap, noisy
        for r in range(reps):  # libraries interleaved: every round sees the same machine state
            for name in names:
                if name == "ase" and len(at) > 20000 and r > 0:
                    continue
                wall, cpu, pairs = best(lambda f=run[name], at=at: f(at), 1)
                row[name] = min(row.get(name, wall), wall)
                row[name + "_cpu"] = min(row.get(name + "_cpu", cpu), cpu)
                row[name + "_pairs"] = pairs
        counts = {row[k] for k in row if k.endswith("_pairs")}
        assert len(counts) == 1, f"pair counts disagree at {len(at)} atoms: {row}"
        row["pairs"] = counts.pop()
        row["rss_mb"] = peak_rss_growth(rep, args.device) if args.device == "cpu" else float("nan")
        rows.append(row)
        msg = "  ".join(f"{k} {1e3 * row[k]:.1f} ms" for k in run if k in row)
        print(
            f"{len(at):7d} atoms {row['pairs']:9d} pairs  {msg}  peak RSS +{row['rss_mb']:.0f} MB",
            flush=True,
        )
    write_results(rows, list(run), args)


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "–"


def write_results(rows: list[dict], names: list[str], args) -> None:
    lines = [
        "# Neighbour-list benchmark",
        "",
        f"fcc Cu, cutoff {CUTOFF} Å, full list with shifts; ours on `{args.device}`, "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; minimum of {args.repeat} runs, at least 25 up to 2,000 atoms, libraries in turn in every round "
        "(wall clock; CPU time in brackets for ours and vesin). Ratios > 1 mean the other library is "
        "slower than ours. Generated by `benchmarks/neighbors.py`.",
        "",
        "| atoms | pairs | ours (ms) | vesin (ms) | matscipy (ms) | ASE (ms) | ASE/ours | matscipy/ours | ours/vesin (wall) | ours/vesin (CPU) | peak RSS growth (MB) | bytes/pair |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:

        def ms(k, r=r):
            return f"{1e3 * r[k]:.1f}" if k in r else "–"

        lines.append(
            f"| {r['atoms']} | {r['pairs']} | {ms('ours')} ({1e3 * r['ours_cpu']:.1f}) | "
            f"{ms('vesin')} ({1e3 * r.get('vesin_cpu', float('nan')):.1f}) | {ms('matscipy')} | {ms('ase')} | "
            f"{ratio(r.get('ase'), r['ours'])} | {ratio(r.get('matscipy'), r['ours'])} | "
            f"{ratio(r['ours'], r.get('vesin'))} | {ratio(r['ours_cpu'], r.get('vesin_cpu'))} | "
            f"{r['rss_mb']:.0f} | {1e6 * r['rss_mb'] / max(r['pairs'], 1):.0f} |"
        )
    (args.out / "neighbors.md").write_text("\n".join(lines) + "\n")
    (args.out / "neighbors.json").write_text(json.dumps(rows, indent=1))
    plot(rows, names, args.out / "neighbors.png")
    print(f"wrote {args.out / 'neighbors.md'} and neighbors.png")


def plot(rows: list[dict], names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name in names:
        pts = [(r["atoms"], r[name]) for r in rows if name in r]
        if pts:
            ax.loglog(*zip(*pts), "o-", label=name)
    n = np.array([r["atoms"] for r in rows], dtype=float)
    t0 = rows[-1]["ours"] / n[-1]
    ax.loglog(n, t0 * n, "k:", lw=1, label="linear")
    ax.set(xlabel="atoms", ylabel="time per list (s)", title=f"fcc Cu, cutoff {CUTOFF} Å")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
