"""ACSF cost: our PyTorch symmetry functions (`mlp_roadmap.descriptors.ACSF`) against DScribe's
compiled `ACSF.create` and `ACSF.derivatives`, plus DScribe's SOAP for scale.

Cases: one rattled 108-atom fcc Cu cell, and a batch of 100 rattled 32-atom Cu cells. For each:
values (DScribe `create` vs our `create`, which includes the neighbour list, and our batched
torch forward on a prebuilt neighbour list) and values + derivatives (DScribe's finite-difference
`derivatives` vs our forward + one autograd backward, which is what forces need). DScribe's
derivatives are slow (about 6 N calls of `create`), so by default they are timed on the 32-atom
cell only; `--full` also times them once on the 108-atom cell. A size scan checks that our cost is
linear in the number of atoms. Prints ratios and writes a markdown table to
benchmarks/results/descriptors.md.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/descriptors.py [--full] [--device cuda]
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
from dscribe.descriptors import ACSF as DScribeACSF
from dscribe.descriptors import SOAP

from mlp_roadmap.descriptors import ACSF, angular_params, radial_params, soap_features
from mlp_roadmap.neighbors import atoms_to_batch, pair_vectors

R_CUT = 5.0


def cu_cell(rep: int, seed: int) -> ase.Atoms:
    "Rattled cubic fcc copper, 4 rep^3 atoms"
    at = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True).repeat(rep)
    at.rattle(0.05, seed=seed)
    return at


def cu_32(seed: int) -> ase.Atoms:
    return cu_cell(2, seed)


def best(f, n: int = 5, sync=lambda: None) -> float:
    "Best wall time of n calls after one warm-up (s)"
    f()
    sync()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        sync()
        ts.append(time.perf_counter() - t)
    return min(ts)


def acsf_kwargs() -> dict:
    return dict(
        r_cut=R_CUT,
        g2_params=radial_params(2.0, R_CUT, 8),
        g4_params=angular_params(2.0, R_CUT, 2, zetas=(1, 4)),
        species=["Cu"],
        periodic=True,
    )


def torch_timers(acsf: ACSF, atoms_list: list, device: str):
    "Forward-only and forward+backward closures on one prebuilt batch"
    batch = atoms_to_batch(atoms_list, acsf.cutoff, device=device)
    acsf = acsf.to(device)
    w = torch.linspace(-1, 1, acsf.n_features, dtype=torch.float64, device=device)

    def d_of(pos):
        return pair_vectors(pos, batch.cell, batch.batch, batch.idx_i, batch.idx_j, batch.shifts)

    def values():
        with torch.no_grad():
            return acsf(batch.numbers, d_of(batch.pos), batch.idx_i, batch.idx_j)

    def values_forces():
        pos = batch.pos.detach().requires_grad_(True)
        e = (acsf(batch.numbers, d_of(pos), batch.idx_i, batch.idx_j) @ w).sum()
        return torch.autograd.grad(e, pos)[0]

    return values, values_forces


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--full", action="store_true", help="time DScribe derivatives on 108 atoms (~30-60 s)"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "descriptors.md"))
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    dev = args.device
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    kw = acsf_kwargs()
    ours, ds = ACSF(**kw), DScribeACSF(**kw)
    rows = []  # (case, quantity, dscribe s, ours s, ratio)

    # ---------------- one 108-atom cell
    cu = cu_cell(3, 0)
    np.testing.assert_allclose(ours.create(cu), ds.create(cu), rtol=1e-10, atol=1e-12)
    t_ds = best(lambda: ds.create(cu))
    t_cr = best(lambda: ours.create(cu))
    v, vf = torch_timers(ours, [cu], dev)
    t_v, t_vf = best(v, sync=sync), best(vf, sync=sync)
    rows.append(
        ("Cu 108 atoms", "values: DScribe create vs our create (incl. neighbour list)", t_ds, t_cr)
    )
    rows.append(("Cu 108 atoms", f"values: DScribe create vs our torch forward ({dev})", t_ds, t_v))
    if args.full:
        t0 = time.perf_counter()
        ds.derivatives(cu, attach=True)
        t_dd = time.perf_counter() - t0
        rows.append(
            (
                "Cu 108 atoms",
                "values+derivatives: DScribe derivatives vs our forward+backward",
                t_dd,
                t_vf,
            )
        )
    else:
        rows.append(
            (
                "Cu 108 atoms",
                "values+forces: our forward+backward (DScribe: run --full)",
                float("nan"),
                t_vf,
            )
        )

    # ---------------- DScribe derivatives on 32 atoms
    c32 = cu_32(1)
    t0 = time.perf_counter()
    d_ref, _ = ds.derivatives(c32, attach=True)
    t_dd32 = time.perf_counter() - t0
    d_ours, _ = ours.derivatives(c32)
    err = np.abs(d_ours - d_ref).max() / np.abs(d_ref).max()
    v32, vf32 = torch_timers(ours, [c32], dev)
    rows.append(
        (
            "Cu 32 atoms",
            "values+derivatives: DScribe derivatives vs our forward+backward",
            t_dd32,
            best(vf32, sync=sync),
        )
    )
    rows.append(
        (
            "Cu 32 atoms",
            "full Jacobian: DScribe derivatives vs our ACSF.derivatives",
            t_dd32,
            best(lambda: ours.derivatives(c32), n=2),
        )
    )

    # ---------------- batch of 100 x 32 atoms
    batch = [cu_32(s) for s in range(100)]
    t_ds_b = best(lambda: ds.create(batch), n=3)
    t_cr_b = best(lambda: ours.create(batch), n=3)
    vb, vfb = torch_timers(ours, batch, dev)
    rows.append(
        (
            "100 x Cu 32",
            "values: DScribe create vs our create (incl. neighbour lists)",
            t_ds_b,
            t_cr_b,
        )
    )
    rows.append(
        (
            "100 x Cu 32",
            f"values: DScribe create vs our batched torch forward ({dev})",
            t_ds_b,
            best(vb, n=3, sync=sync),
        )
    )
    rows.append(
        (
            "100 x Cu 32",
            "values+derivatives: DScribe derivatives (32-atom time x 100) vs our batched forward+backward",
            100 * t_dd32,
            best(vfb, n=3, sync=sync),
        )
    )

    # ---------------- SOAP for scale
    soap = SOAP(species=["Cu"], r_cut=R_CUT, n_max=8, l_max=6, sigma=1.0, periodic=True)
    t_soap = best(lambda: soap.create(cu))
    t_soap_b = best(lambda: soap_features(batch, ["Cu"], R_CUT, 8, 6), n=2)

    # ---------------- linear scaling of our forward (+backward)
    scan = []
    for rep in (2, 3, 4, 5):
        at = cu_cell(rep, 2)
        v_, vf_ = torch_timers(ours, [at], dev)
        scan.append((len(at), best(v_, n=3, sync=sync), best(vf_, n=3, sync=sync)))

    lines = [
        "# ACSF benchmark",
        "",
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), device {dev}. Descriptor: {ours.n_features} features "
        f"(G1, 8 shifted G2, 8 centred G4), r_cut = {R_CUT} Å, float64. Times are best of several runs (s).",
        "",
        "| case | quantity | DScribe (s) | ours (s) | speed-up |",
        "|---|---|---|---|---|",
    ]
    for case, q, a, b in rows:
        ratio = a / b if np.isfinite(a) else float("nan")
        lines.append(f"| {case} | {q} | {a:.4g} | {b:.4g} | {ratio:.3g}x |")
    lines += [
        "",
        f"Our `ACSF.derivatives` vs DScribe `derivatives` on the 32-atom cell: max relative difference {err:.2e} "
        "(DScribe uses central finite differences).",
        "",
        f"SOAP (DScribe, n_max=8, l_max=6, {soap.get_number_of_features()} features): {t_soap:.4g} s for the 108-atom cell, "
        f"{t_soap_b:.4g} s for 100 x 32 atoms via `soap_features`.",
        "",
        "Cost of our descriptor vs size (one cell):",
        "",
        "| atoms | forward (ms) | per atom (µs) | forward+backward (ms) | per atom (µs) |",
        "|---|---|---|---|---|",
    ]
    for n, a, b in scan:
        lines.append(
            f"| {n} | {1e3 * a:.2f} | {1e6 * a / n:.1f} | {1e3 * b:.2f} | {1e6 * b / n:.1f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
