"""Memory and speed of `mlp_roadmap.data.AtomsDataset`: in-memory graph cache vs memory-mapped disk cache.

The issue's goal: 10^5 structures of ~100 atoms trainable without holding every neighbour list in memory.
This script streams `n` labelled 108-atom Cu structures into a disk cache (`cache="disk"`), then iterates
one epoch of collated batches read structure by structure from the files, and reports wall time and peak resident memory
(ru_maxrss) of each phase, each in a fresh process. For comparison it fills the in-memory cache
(`cache=True`) for `n_memory` structures and reports the memory per cached structure.

Labels: `--base` rattled cells are labelled with EMT; the n structures are random lattice translations
and atom permutations of those (exact symmetries of a periodic cell, so the labels stay exact) - this keeps
labelling cheap while every stored neighbour list is computed afresh.

    python benchmarks/data.py --n 3000 --n-memory 500       # a few minutes on one core
    python benchmarks/data.py --n 100000                     # the full goal (about 7.3 GB of cache)
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def structures(n: int, n_base: int, seed: int = 0):
    "Generator of n labelled 108-atom Cu cells (translated/permuted copies of n_base EMT-labelled ones)"
    import numpy as np
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from mlp_roadmap.data import attach_labels, get_labels, label

    rng = np.random.default_rng(seed)
    base = []
    for k in range(n_base):
        at = bulk("Cu", cubic=True) * (3, 3, 3)
        at.rattle(0.1, seed=k)
        base.append(label([at], EMT(), "bench")[0])
    for k in range(n):
        b = base[k % n_base]
        e, f, s = get_labels(b)
        perm = rng.permutation(len(b))
        at = b[perm]
        at.positions += rng.uniform(0, 1, 3) @ b.cell.array
        at.wrap()
        at.info["config_type"] = "bench"
        yield attach_labels(at, e, f[perm], s)


def phase_build(n, n_base, cutoff, cache_dir):
    from mlp_roadmap.data import AtomsDataset

    t0 = time.perf_counter()
    ds = AtomsDataset(structures(n, n_base), cutoff, cache="disk", cache_dir=cache_dir)
    size = sum(p.stat().st_size for p in Path(cache_dir).iterdir())
    return {
        "n": len(ds),
        "build_s": time.perf_counter() - t0,
        "cache_MB": size / 1e6,
        "peak_rss_MB": peak_rss_mb(),
    }


def phase_epoch(cache_dir, batch_size):
    import torch

    from mlp_roadmap.data import AtomsDataset, make_loader

    torch.set_num_threads(1)
    ds = AtomsDataset.from_cache(cache_dir, dtype=torch.float32)
    t0 = time.perf_counter()
    n_str = n_pairs = 0
    for b in make_loader(ds, batch_size=batch_size, shuffle=True, seed=0):
        n_str += b.n_structures
        n_pairs += len(b.idx_i)
        assert torch.isfinite(b.energy).all()
    return {
        "epoch_s": time.perf_counter() - t0,
        "structures": n_str,
        "pairs": n_pairs,
        "peak_rss_MB": peak_rss_mb(),
    }


def phase_memory(n, n_base, cutoff):
    from mlp_roadmap.data import AtomsDataset

    atoms = list(structures(n, n_base))
    rss0 = peak_rss_mb()
    ds = AtomsDataset(atoms, cutoff, cache=True)
    t0 = time.perf_counter()
    for k in range(len(ds)):
        ds[k]
    rss1 = peak_rss_mb()
    return {
        "n": n,
        "fill_s": time.perf_counter() - t0,
        "peak_rss_MB": rss1,
        "graph_cache_MB_per_structure": (rss1 - rss0) / n,
    }


def run_phase(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--phase", *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--n-memory", type=int, default=1000)
    p.add_argument("--base", type=int, default=50)
    p.add_argument("--cutoff", type=float, default=5.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--phase", nargs="*")
    a = p.parse_args()
    if a.phase is not None:  # child process
        kind, *rest = a.phase
        if kind == "build":
            r = phase_build(int(rest[0]), int(rest[1]), float(rest[2]), rest[3])
        elif kind == "epoch":
            r = phase_epoch(rest[0], int(rest[1]))
        else:
            r = phase_memory(int(rest[0]), int(rest[1]), float(rest[2]))
        print(json.dumps(r))
        return
    with tempfile.TemporaryDirectory(dir=a.cache_dir) as tmp:
        cache = str(Path(tmp) / "graphs")
        res = {"cutoff": a.cutoff, "atoms_per_structure": 108}
        res["disk_build"] = run_phase(["build", str(a.n), str(a.base), str(a.cutoff), cache])
        res["disk_epoch"] = run_phase(["epoch", cache, str(a.batch_size)])
    if a.n_memory:
        res["memory_cache"] = run_phase(["memory", str(a.n_memory), str(a.base), str(a.cutoff)])
        per = res["memory_cache"]["graph_cache_MB_per_structure"]
        res["memory_cache_extrapolated_GB_for_n"] = per * a.n / 1e3
        res["memory_cache_extrapolated_GB_for_1e5"] = per * 1e5 / 1e3
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
