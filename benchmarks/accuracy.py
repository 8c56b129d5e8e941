"""Accuracy: train our models on the reference training sets in ../shared/data and compare test errors
with published numbers for the same datasets.

Cases (`--dataset`):
- `ethanol`: rMD17 ethanol, 1,000 training structures. Published test MAE, energy (meV per molecule) /
  forces (meV/Å): ANI 2.5 / 13.4, PaiNN 2.7 / 10.0, NequIP 0.4 / 2.8, MACE 0.4 / 2.1 (MACE paper,
  NeurIPS 2022). Goal: our BP at or below ANI, our PaiNN at or below the published PaiNN.
- `zuo`: Zuo et al. 2020 (J. Phys. Chem. A 124, 731) single-element sets. Published test energy MAE
  (meV/atom) GAP / MTP, e.g. Cu 0.46 / 0.41, Si 2.91 / 2.21, Mo 2.24 / 2.83. Goal: our BP at or below GAP.
- `water`: DeePMD-kit example water, data_0-2; energy-per-atom and force RMSE on a held-out split
  (no published figure exists for this small set).

The published numbers come from the datasets' official *test* sets, which we do not have and must not
look for. We therefore split the training file itself (seeded) into train / validation (early stopping,
model selection) / internal test (reported), so our training sets are smaller than the published
protocol's and our test sets are different structures: the ratios are indicative, not a like-for-like
comparison.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/accuracy.py --dataset zuo --model bp --elements Cu,Si
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/accuracy.py --dataset ethanol --model painn --epochs 200
    .venv/bin/python benchmarks/accuracy.py --dataset all --device cuda       # on a GPU
    .venv/bin/python benchmarks/accuracy.py --quick --dataset zuo --elements Cu --results /tmp/a.md  # smoke
    # a committee of 4 (seeds 0-3, same split; errors of the mean prediction), reusing finished members:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/accuracy.py --dataset ethanol --committee 4 --resume --run-root runs
    # with the official test set at hand: train + validate on the whole training file, test on that file
    .venv/bin/python benchmarks/accuracy.py --dataset ethanol --test-data rmd17_ethanol_test.xyz

Every run appends (or replaces, same dataset/system/model) a row in benchmarks/results/accuracy.md; the
rows are also kept as JSON inside an HTML comment of that file so later runs can merge into it.
Settings per case are in `CASES` below; `--config FILE.yaml` overrides TrainConfig keys (and
`model_hparams` entries) for every case of the run, e.g. `lr: 1e-3` or `model_hparams: {hidden: [64, 64]}`.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from mlp_roadmap.data import get_labels, read_dataset, read_isolated_atoms
from mlp_roadmap.training import TrainConfig, default_bp_descriptor, predict, resolve_device, train

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/common.py
from common import cpu_name, notes_section, read_notes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = ROOT / "benchmarks" / "results" / "accuracy.md"
ZUO_ELEMENTS = ["Cu", "Ni", "Li", "Mo", "Si", "Ge"]

# Published test errors. ethanol: MAE energy (meV per molecule), forces (meV/Å).
PUBLISHED_ETHANOL = {
    "ANI": (2.5, 13.4),
    "PaiNN": (2.7, 10.0),
    "NequIP": (0.4, 2.8),
    "MACE": (0.4, 2.1),
}
GOAL_ETHANOL = {"bp": "ANI", "painn": "PaiNN", "schnet": "PaiNN"}
# Zuo et al. 2020: test energy MAE (meV/atom), GAP / MTP.
PUBLISHED_ZUO = {"Cu": (0.46, 0.41), "Ni": (0.42, 0.48), "Li": (0.49, 0.49),
                 "Mo": (2.24, 2.83), "Si": (2.91, 2.21), "Ge": (2.06, 1.79)}  # fmt: skip

# Benchmark settings per (dataset, model): TrainConfig keys plus "descriptor" (BP only: our ACSF with a
# shorter angular cutoff, see `bp_descriptor`) and the split sizes. BP cases train on cached
# descriptors (`cache_features`: descriptors and their derivatives computed once, as n2p2 does), which
# made a training epoch 3-4x cheaper on this CPU (ethanol: 0.8 s instead of 2.5-3.5 s) and 1,000-epoch
# runs affordable.
BP_HIDDEN = {"hidden": [64, 64], "activation": "tanh"}
CASES: dict = {
    ("ethanol", "bp"): dict(
        split=dict(n_test=100, n_valid=50),
        cutoff=5.0,
        epochs=1000,
        batch_size=8,
        lr=3e-3,
        scheduler="cosine",
        w_energy=1.0,
        w_forces=10.0,
        weight_decay=0.03,
        ema_decay=0.99,
        dtype="float64",
        cache_features=True,
        model_hparams=dict(BP_HIDDEN),
        descriptor=dict(r_cut_angular=5.0, n_radial=12, n_angular=3, r_min=0.8, zetas=[1, 4]),
    ),
    ("ethanol", "painn"): dict(
        split=dict(n_test=100, n_valid=50),
        cutoff=5.0,
        epochs=500,
        batch_size=8,
        lr=1e-3,
        scheduler="cosine",
        w_energy=1.0,
        w_forces=10.0,
        weight_decay=0.01,
        ema_decay=0.99,
        dtype="float32",
        model_hparams=dict(n_features=64, n_interactions=3, n_rbf=20),
    ),
    ("zuo", "bp"): dict(
        split=dict(test_fraction=0.1, valid_fraction=0.1),
        cutoff=5.0,
        epochs=1000,
        batch_size=4,
        lr=2e-3,
        scheduler="cosine",
        w_energy=3000.0,
        w_forces=1.0,
        ema_decay=0.99,
        dtype="float64",
        cache_features=True,
        model_hparams=dict(hidden=[64, 64], activation="tanh"),
        descriptor=dict(
            r_cut_angular=4.5, n_radial=12, n_angular=3, r_min=1.5, zetas=[1, 2, 4, 16]
        ),
    ),
    ("water", "bp"): dict(
        split=dict(test_fraction=0.1, valid_fraction=0.1),
        cutoff=5.0,
        epochs=150,
        batch_size=4,
        lr=2e-3,
        scheduler="cosine",
        w_energy=100.0,
        w_forces=1.0,
        ema_decay=0.99,
        dtype="float32",
        cache_features=True,
        model_hparams=dict(BP_HIDDEN),
        descriptor=dict(r_cut_angular=3.5, n_radial=10, n_angular=3, r_min=0.8, zetas=[1, 4]),
    ),
}
# SchNet: PaiNN's settings with the 200-epoch budget and no weight decay of the first PaiNN row
CASES[("ethanol", "schnet")] = dict(CASES[("ethanol", "painn")], epochs=200, weight_decay=0.0)
for _ds in ("zuo", "water"):
    for _m in ("painn", "schnet"):
        CASES[(_ds, _m)] = dict(
            split=copy.deepcopy(CASES[(_ds, "bp")]["split"]), cutoff=5.0, epochs=30, batch_size=4, lr=1e-3,
            scheduler="cosine", w_energy=CASES[(_ds, "bp")]["w_energy"], w_forces=CASES[(_ds, "bp")]["w_forces"],
            ema_decay=0.99, dtype="float32", model_hparams=dict(n_features=64, n_interactions=3, n_rbf=20),
        )  # fmt: skip


def bp_descriptor(
    species: list[int],  # atomic numbers
    r_cut: float,  # radial (G2) cutoff (Å)
    r_cut_angular: float,  # angular (G5) cutoff (Å); shorter than r_cut keeps the triplet count down
    n_radial: int = 10,  # shifted G2 functions per neighbour element
    n_angular: int = 3,  # centred G5 widths (x zetas x lambdas ±1) per neighbour-element pair
    r_min: float = 1.0,  # shortest distance resolved (Å)
    zetas: tuple = (1, 4),  # angular exponents
):
    "ANI-like ACSF: the library's default BP descriptor with wide (G5) angular terms to r_cut_angular"
    return default_bp_descriptor(
        species, r_cut, n_radial, n_angular, r_min, r_cut_angular, "G5", tuple(zetas)
    )


# ---------------------------------------------------------------------------------------------- data
def data_root(path: str | None) -> Path:
    "Reference-data folder: --data-root, else $MLP_SHARED_DATA, else ../shared/data beside the repo"
    root = Path(path or os.environ.get("MLP_SHARED_DATA", ROOT.parent / "shared" / "data"))
    if not root.is_dir():
        raise FileNotFoundError(
            f"reference data folder {root} not found: pass --data-root or set MLP_SHARED_DATA"
        )
    return root


def load_systems(
    dataset: str, root: Path, elements: list[str]
) -> list[tuple[str, list[Atoms], dict | None]]:
    "(system name, labelled structures, isolated-atom energies or None) for one dataset"
    if dataset == "ethanol":
        d = root / "rmd17_ethanol"
        return [
            (
                "ethanol",
                read_dataset(d / "train.xyz"),
                read_isolated_atoms(d / "isolated_atoms.xyz"),
            )
        ]
    if dataset == "zuo":
        bad = [e for e in elements if e not in ZUO_ELEMENTS]
        if bad:
            raise ValueError(f"unknown Zuo elements {bad}; choose from {ZUO_ELEMENTS}")
        return [
            (el, read_dataset(root / "zuo2020" / f"{el}_train.extxyz"), None) for el in elements
        ]
    if dataset == "water":
        atoms = []
        for k in range(3):
            atoms += read_dataset(root / "deepmd_water" / f"data_{k}", format="deepmd")
        return [("water", atoms, None)]
    raise ValueError(f"unknown dataset {dataset!r}; choose ethanol, zuo, water or all")


def split(
    n: int,  # number of structures
    seed: int,  # seed of the permutation
    n_test: int | None = None,  # internal test structures (or test_fraction)
    n_valid: int | None = None,  # validation structures (or valid_fraction)
    test_fraction: float = 0.1,  # used when n_test is None
    valid_fraction: float = 0.1,  # used when n_valid is None
    n_train: int | None = None,  # cap on training structures (None: all the rest)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # train, valid, test indices
    "Seeded disjoint train / validation / internal-test indices"
    n_test = int(round(test_fraction * n)) if n_test is None else n_test
    n_valid = int(round(valid_fraction * n)) if n_valid is None else n_valid
    if n_test < 0 or n_valid < 1 or n_test + n_valid >= n:
        raise ValueError(
            f"cannot split {n} structures into {n_test} test, {n_valid} validation and >= 1 train"
        )
    perm = np.random.default_rng(seed).permutation(n)
    test, valid, rest = perm[:n_test], perm[n_test : n_test + n_valid], perm[n_test + n_valid :]
    return (rest if n_train is None else rest[:n_train]), valid, test


# ---------------------------------------------------------------------------------------------- run
def hardware(device: torch.device) -> dict:
    "CPU model, threads, torch version, device (GPU name) and load average"
    cpu = cpu_name()
    dev = str(device)
    if device.type == "cuda":
        dev += f" ({torch.cuda.get_device_name(device)})"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "device": dev, "load_avg_1min": round(load, 1)}  # fmt: skip


def errors_of(preds: list[dict], atoms_list: list[Atoms]) -> dict:
    "Energy (per structure and per atom) and force MAE/RMSE in eV and eV/Å of predictions"
    de = np.array([p["energy"] - get_labels(a).energy for p, a in zip(preds, atoms_list)])
    n = np.array([len(a) for a in atoms_list])
    df = np.concatenate(
        [(p["forces"] - get_labels(a).forces).ravel() for p, a in zip(preds, atoms_list)]
    )
    mae, rmse = lambda x: float(np.abs(x).mean()), lambda x: float(np.sqrt((x**2).mean()))  # noqa: E731
    return {"energy_mae": mae(de), "energy_rmse": rmse(de), "energy_mae_per_atom": mae(de / n),
            "energy_rmse_per_atom": rmse(de / n), "force_mae": mae(df), "force_rmse": rmse(df)}  # fmt: skip


def errors(model: torch.nn.Module, atoms_list: list[Atoms]) -> dict:
    "Test errors of one model on labelled structures (see `errors_of`)"
    return errors_of(predict(model, atoms_list, batch_size=16), atoms_list)


def committee_mean(member_preds: list[list[dict]]) -> list[dict]:
    "Per-structure mean energy and forces over committee members' predictions"
    return [{"energy": float(np.mean([p["energy"] for p in ps])),
             "forces": np.mean([p["forces"] for p in ps], axis=0)} for ps in zip(*member_preds)]  # fmt: skip


def check_same_config(run_dir: Path, cfg: TrainConfig) -> None:
    "Refuse to resume (or reuse) a run directory trained with other settings"
    card = run_dir / "card.json"
    if not card.exists():
        return  # interrupted before its first best epoch: the checkpoint alone
    from dataclasses import asdict

    def norm(d: dict) -> dict:
        return {k: v for k, v in json.loads(json.dumps(d, default=str)).items() if k != "device"}

    old, new = norm(json.loads(card.read_text())["config"]), norm(asdict(cfg))
    diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if diff:
        raise ValueError(f"{run_dir} was trained with other settings ({', '.join(diff)}): "
                         "use another --run-root or drop --resume")  # fmt: skip


def make_config(
    case: dict, args: argparse.Namespace, overrides: dict
) -> tuple[TrainConfig, dict | None]:
    "TrainConfig of a case after command-line and YAML overrides; also the descriptor settings"
    d = copy.deepcopy(case)
    d.pop("split")
    desc = d.pop("descriptor", None)
    hp = {**d.get("model_hparams", {}), **overrides.get("model_hparams", {})}
    d.update({k: v for k, v in overrides.items() if k not in ("model_hparams", "descriptor")})
    if desc is not None:
        desc.update(overrides.get("descriptor", {}))
    d["model_hparams"] = hp
    d["model"] = args.model  # the case table is keyed by model; TrainConfig's default would be "bp"
    if args.epochs is not None:
        d["epochs"] = args.epochs
    if args.quick:
        d["epochs"] = 2
        d["model_hparams"] = {k: v for k, v in hp.items() if k not in ("n_features", "hidden")}
        d["model_hparams"].update(
            {"hidden": [8]} if args.model == "bp" else {"n_features": 8, "n_interactions": 1}
        )
        if desc is not None:
            desc.update(n_radial=4, n_angular=2, zetas=[1])
    d.update(device=args.device, seed=args.seed, patience=max(d.get("patience", 40), d["epochs"]))
    return TrainConfig.from_dict(d), desc


def run_case(
    dataset: str,
    system: str,
    atoms: list[Atoms],
    e0: dict | None,
    args,
    overrides: dict,
    run_root: Path,
    test_atoms: list[Atoms] | None = None,  # external test set (None: an internal split)
) -> dict:
    "Train one model (or committee) on one system, evaluate it on the test structures, return a result row"
    case = CASES[(dataset, args.model)]
    sp = dict(case["split"], **({"n_test": 4, "n_valid": 4, "n_train": 12} if args.quick else {}))
    if args.n_train is not None:
        sp["n_train"] = args.n_train
    if test_atoms is not None:  # an external test set: the whole file is train + validation
        sp.update(n_test=0, test_fraction=0.0)
    i_tr, i_va, i_te = split(len(atoms), args.seed, **sp)
    tr, va, te = ([atoms[k] for k in ix] for ix in (i_tr, i_va, i_te))
    if test_atoms is not None:
        te = list(test_atoms)
    if not te:
        raise ValueError(f"{dataset}/{system}: the split left no test structures")
    cfg, desc = make_config(case, args, overrides)
    species = sorted({int(z) for a in atoms for z in a.numbers})
    if desc is not None:  # BP: our descriptor is a module, passed through model_hparams
        cfg.model_hparams["descriptor"] = bp_descriptor(species, cfg.cutoff, **desc)
    if args.use_e0 and e0 is not None:  # only the elements present (PaiNN/SchNet reject extra ones)
        from ase.data import atomic_numbers

        cfg.e0 = {atomic_numbers[s]: v for s, v in e0.items() if atomic_numbers[s] in species}
    name = f"{dataset}_{system}_{args.model}"
    from mlp_roadmap.training import load_model

    member_preds, member_tests, seconds = [], [], 0.0
    for k in range(args.committee):  # member k: same split, initialisation/shuffling seed seed + k
        cfg_k = copy.deepcopy(cfg)
        cfg_k.seed = args.seed + k
        run_dir = run_root / (name if k == 0 else f"{name}_seed{cfg_k.seed}")
        resume = args.resume and (run_dir / "checkpoint.pt").exists()
        if resume:
            check_same_config(run_dir, cfg_k)
        n_done = (  # epochs an earlier invocation trained: their logged time is counted below
            torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] + 1 if resume else 0
        )
        t0 = time.perf_counter()
        res = train(
            cfg_k,
            tr,
            va,
            run_dir,
            resume=resume,
            overwrite=not resume,
            progress=not args.no_progress,
        )
        # a resumed run: the earlier epochs' logged time (their set-up not included) plus this call's
        seconds += time.perf_counter() - t0 + sum(h["seconds"] for h in res.history[:n_done])
        device = next(res.model.parameters()).device
        model = load_model(run_dir, device=device, dtype=torch.float64)  # evaluated in float64
        member_preds.append(predict(model, te, batch_size=16))
        member_tests.append(errors_of(member_preds[-1], te))
    test = errors_of(committee_mean(member_preds), te)
    cfg_row = {k: v for k, v in vars(cfg).items() if k != "model_hparams"}
    cfg_row["model_hparams"] = {k: v for k, v in cfg.model_hparams.items() if k != "descriptor"}
    return {
        "dataset": dataset, "system": system, "model": args.model, "quick": bool(args.quick),
        "n_train": len(tr), "n_valid": len(va), "n_test": len(te),
        "n_params": sum(p.numel() for p in model.parameters()),
        "n_features": getattr(model, "n_features", None) if args.model == "bp" else None,
        "epochs_run": len(res.history), "best_epoch": res.best_epoch, "train_seconds": round(seconds, 1),
        "test_source": "internal split" if test_atoms is None else args.test_data, "committee": args.committee, "member_test": member_tests if args.committee > 1 else None, "test": test, "config": cfg_row, "descriptor": desc, "e0": "isolated atoms" if cfg.e0 else "least squares",
        "hardware": hardware(resolve_device(cfg.device)), "date": time.strftime("%Y-%m-%d"),
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------- report
def compare(row: dict) -> list[tuple[str, float, float, float]]:
    "(reference, our value, published value, ratio ours/published) in the published units"
    t = row["test"]
    if row["dataset"] == "ethanol":
        e, f = 1000 * t["energy_mae"], 1000 * t["force_mae"]
        out = []
        for name, (pe, pf) in PUBLISHED_ETHANOL.items():
            out += [(f"{name} E", e, pe, e / pe), (f"{name} F", f, pf, f / pf)]
        return out
    if row["dataset"] == "zuo":
        e = 1000 * t["energy_mae_per_atom"]
        gap, mtp = PUBLISHED_ZUO[row["system"]]
        return [("GAP E", e, gap, e / gap), ("MTP E", e, mtp, e / mtp)]
    return []


def goal_met(row: dict) -> str:
    "'yes'/'no' against the stated goal, '-' where there is none"
    if row["dataset"] == "ethanol":
        ref = GOAL_ETHANOL.get(row["model"])
        pe, pf = PUBLISHED_ETHANOL[ref]
        t = row["test"]
        ok = 1000 * t["energy_mae"] <= pe and 1000 * t["force_mae"] <= pf
        return f"{'yes' if ok else 'no'} (vs {ref})"
    if row["dataset"] == "zuo" and row["model"] == "bp":
        return (
            "yes (vs GAP)"
            if 1000 * row["test"]["energy_mae_per_atom"] <= PUBLISHED_ZUO[row["system"]][0]
            else "no (vs GAP)"
        )
    return "-"


def print_row(row: dict) -> None:
    "Human-readable summary of one result"
    t, h = row["test"], row["hardware"]
    print(f"\n== {row['dataset']} / {row['system']} / {row['model']}: train {row['n_train']}, valid {row['n_valid']}, "
          f"internal test {row['n_test']}; {row['epochs_run']} epochs (best {row['best_epoch']}) in "
          f"{row['train_seconds']:.0f} s on {h['device']} ({h['cpu']}, torch {h['torch']}, {h['torch_threads']} threads)")  # fmt: skip
    print(f"   test energy MAE {1000 * t['energy_mae']:.2f} meV/structure = {1000 * t['energy_mae_per_atom']:.3f} meV/atom, "
          f"RMSE {1000 * t['energy_rmse_per_atom']:.3f} meV/atom; force MAE {1000 * t['force_mae']:.1f} meV/Å, "
          f"RMSE {1000 * t['force_rmse']:.1f} meV/Å")  # fmt: skip
    for name, ours, pub, ratio in compare(row):
        print(f"   {name:9s} ours {ours:8.2f}  published {pub:6.2f}  ratio {ratio:6.2f}")
    for k, m in enumerate(row.get("member_test") or []):
        print(f"   member {k}: energy MAE {1000 * m['energy_mae']:.2f} meV/structure = "
              f"{1000 * m['energy_mae_per_atom']:.3f} meV/atom; force MAE {1000 * m['force_mae']:.1f} meV/Å")  # fmt: skip
    print(f"   goal met: {goal_met(row)}")


ROWS_TAG = re.compile(r"<!-- accuracy-rows\n(.*?)\n-->", re.S)
# the comparisons the benchmark is meant to make (reported as "not run" while they have no row)
EXPECTED = [("ethanol", "ethanol", "bp"), ("ethanol", "ethanol", "painn")] + [
    ("zuo", el, "bp") for el in ("Cu", "Si", "Mo")] + [("water", "water", "bp")]  # fmt: skip


def read_rows(path: Path) -> list[dict]:
    "Result rows stored in an existing results file (empty if none)"
    if not path.exists():
        return []
    m = ROWS_TAG.search(path.read_text())
    return json.loads(m.group(1)) if m else []


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    "Old rows with those of the same dataset, system, model, quick flag, committee size and test set replaced"

    def key(r: dict) -> tuple:
        return (r["dataset"], r["system"], r["model"], r.get("quick", False), r.get("committee", 1),
                r.get("test_source", "internal split"))  # fmt: skip

    fresh = {key(r) for r in new}
    return [r for r in old if key(r) not in fresh] + new


def _label(row: dict) -> str:
    "Model name, with the committee size, quick marker and external test file"
    n, src = row.get("committee", 1), row.get("test_source", "internal split")
    return (row["model"] + (f" committee of {n}" if n > 1 else "") + (" (quick)" if row["quick"] else "")
            + ("" if src == "internal split" else f" (test: {Path(src).name})"))  # fmt: skip


def _members(row: dict) -> str:
    "The committee members' own test errors (empty for a single model)"
    if row.get("committee", 1) < 2:
        return ""
    e = [
        1000 * m["energy_mae_per_atom" if row["dataset"] != "ethanol" else "energy_mae"]
        for m in row["member_test"]
    ]
    f = [1000 * m["force_mae"] for m in row["member_test"]]
    unit = "meV/atom" if row["dataset"] != "ethanol" else "meV"
    return (f"; errors of the mean prediction of {row['committee']} models (seeds {row['config']['seed']}-"
            f"{row['config']['seed'] + row['committee'] - 1}, same split), the members alone: E MAE "
            f"{', '.join(f'{x:.2f}' for x in e)} {unit}, F MAE {', '.join(f'{x:.1f}' for x in f)} meV/Å; epochs and "
            "parameters are per member, train time is the sum")  # fmt: skip


def _settings(row: dict) -> str:
    c = row["config"]
    s = (f"cutoff {c['cutoff']} Å, {c['dtype']}, batch {c['batch_size']}, lr {c['lr']} ({c['scheduler']}), "
         f"w_E {c['w_energy']} / w_F {c['w_forces']}, weight decay {c.get('weight_decay', 0.0)}, "
         f"EMA {c['ema_decay']}, {'cached descriptors, ' if c.get('cache_features') else ''}E0 {row['e0']}, "
         f"hparams {json.dumps(c['model_hparams'])}")  # fmt: skip
    if row.get("descriptor"):
        s += f", descriptor {json.dumps(row['descriptor'])} ({row['n_features']} features)"
    return s


def markdown(rows: list[dict], notes: str = "") -> str:
    "The results file: tables per dataset, settings, hardware, notes, what was not run, and the rows as JSON"
    L = ["# Accuracy against published numbers", "",
         "Written by `benchmarks/accuracy.py`. **Our test sets differ from the published protocols'**: the official "
         "test sets are not available to this project, so every training file is split (seeded) into train / "
         "validation (early stopping, model selection) / internal test, and the numbers below are on the internal "
         "test part. Our training sets are therefore smaller than in the papers (ethanol: 850 instead of 950-1,000). "
         "Ratios are ours / published (below 1 is better than published).", ""]  # fmt: skip
    eth = [r for r in rows if r["dataset"] == "ethanol"]
    if eth:
        L += ["## rMD17 ethanol (MAE; energy meV per molecule, forces meV/Å)", "",
              "| model | n train/valid/test | epochs (best) | train time | E MAE | F MAE | E ratio vs ANI / PaiNN / NequIP / MACE | F ratio vs ANI / PaiNN / NequIP / MACE | goal |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in eth:
            c = {n: (o, rt) for n, o, _, rt in compare(r)}
            er = " / ".join(f"{c[f'{m} E'][1]:.2f}" for m in PUBLISHED_ETHANOL)
            fr = " / ".join(f"{c[f'{m} F'][1]:.2f}" for m in PUBLISHED_ETHANOL)
            L.append(f"| {_label(r)} | {r['n_train']}/{r['n_valid']}/{r['n_test']} | "
                     f"{r['epochs_run']} ({r['best_epoch']}) | {r['train_seconds'] / 60:.1f} min | "
                     f"{1000 * r['test']['energy_mae']:.2f} | {1000 * r['test']['force_mae']:.1f} | {er} | {fr} | {goal_met(r)} |")  # fmt: skip
        L += [
            "",
            "Published (test MAE, E / F): "
            + ", ".join(f"{m} {e} / {f}" for m, (e, f) in PUBLISHED_ETHANOL.items()),
            "",
        ]
    zuo = [r for r in rows if r["dataset"] == "zuo"]
    if zuo:
        L += ["## Zuo et al. 2020 (energy MAE meV/atom; forces eV/Å)", "",
              "| element | model | n train/valid/test | epochs (best) | train time | E MAE | GAP | MTP | ratio vs GAP | ratio vs MTP | F MAE | F RMSE | goal |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in zuo:
            t, (gap, mtp) = r["test"], PUBLISHED_ZUO[r["system"]]
            e = 1000 * t["energy_mae_per_atom"]
            L.append(f"| {r['system']} | {_label(r)} | {r['n_train']}/{r['n_valid']}/{r['n_test']} | "
                     f"{r['epochs_run']} ({r['best_epoch']}) | {r['train_seconds'] / 60:.1f} min | {e:.2f} | {gap} | {mtp} | "
                     f"{e / gap:.2f} | {e / mtp:.2f} | {t['force_mae']:.3f} | {t['force_rmse']:.3f} | {goal_met(r)} |")  # fmt: skip
        L += ["", "Published force MAEs for these sets are 0.01-0.09 eV/Å.", ""]
    wat = [r for r in rows if r["dataset"] == "water"]
    if wat:
        L += ["## DeePMD-kit water, data_0-2 (held-out split; no published figure)", "",
              "| model | n train/valid/test | epochs (best) | train time | E RMSE (meV/atom) | E MAE (meV/atom) | F RMSE (meV/Å) | F MAE (meV/Å) |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in wat:
            t = r["test"]
            L.append(f"| {_label(r)} | {r['n_train']}/{r['n_valid']}/{r['n_test']} | "
                     f"{r['epochs_run']} ({r['best_epoch']}) | {r['train_seconds'] / 60:.1f} min | "
                     f"{1000 * t['energy_rmse_per_atom']:.3f} | {1000 * t['energy_mae_per_atom']:.3f} | "
                     f"{1000 * t['force_rmse']:.1f} | {1000 * t['force_mae']:.1f} |")  # fmt: skip
        L.append("")
    L += ["## Settings and hardware of each row", ""]
    for r in rows:
        h = r["hardware"]
        L.append(f"- **{r['dataset']} / {r['system']} / {_label(r)}** ({r['date']}): {_settings(r)}{_members(r)}; "
                 f"{r['n_params']} parameters; epochs {r['config']['epochs']}, seed {r['config']['seed']}; "
                 f"{h['device']}, CPU {h['cpu']} ({h['cpu_count']} cores, {h['torch_threads']} torch threads, "
                 f"load average {h['load_avg_1min']}), torch {h['torch']}.")  # fmt: skip
    have = {(r["dataset"], r["system"], r["model"]) for r in rows if not r.get("quick")}
    missing = [" / ".join(k) for k in EXPECTED if k not in have]
    gpu = any(r["hardware"]["device"].startswith("cuda") for r in rows)
    L += ["", "## Not run", ""]
    L.append(
        "- Cases without a (non-quick) row: " + (", ".join(missing) if missing else "none") + "."
    )
    if not gpu:
        L.append("- No row was run on a GPU: every number above is from a CPU run.")
    L += notes_section(notes)[:-1]
    L += [
        "",
        "<!-- accuracy-rows",
        "[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]",
        "-->",
        "",
    ]
    return "\n".join(L)


def load_overrides(path: str | None) -> dict:
    "TrainConfig overrides from a YAML file (unknown keys are rejected by TrainConfig)"
    if path is None:
        return {}
    import yaml

    d = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a mapping of TrainConfig keys")
    return d


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", choices=["ethanol", "zuo", "water", "all"], default="all")
    p.add_argument("--model", choices=["bp", "painn", "schnet"], default="bp")
    p.add_argument(
        "--elements",
        default="Cu,Si,Mo",
        help="Zuo elements, comma-separated (Cu, Ni, Li, Mo, Si, Ge)",
    )
    p.add_argument("--epochs", type=int, default=None, help="override the per-case epochs")
    p.add_argument(
        "--n-train", type=int, default=None, help="cap the training structures (e.g. for CPU runs)"
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--use-e0",
        action="store_true",
        help="fix E0 to the isolated-atom energies where given (ethanol)",
    )
    p.add_argument(
        "--config", default=None, help="YAML file of TrainConfig overrides for every case"
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 12 structures, 2 epochs, tiny models"
    )
    p.add_argument(
        "--data-root",
        default=None,
        help="reference data (default $MLP_SHARED_DATA or ../shared/data)",
    )
    p.add_argument(
        "--results", default=str(DEFAULT_RESULTS), help="markdown results file (rows are merged)"
    )
    p.add_argument(
        "--run-root", default=None, help="folder for the run directories (default: a temporary one)"
    )
    p.add_argument(
        "--committee", type=int, default=1,
        help="train N models (seeds seed..seed+N-1, same split); test errors of their mean prediction",
    )  # fmt: skip
    p.add_argument(
        "--resume", action="store_true",
        help="continue (or reuse, when finished) run directories already in --run-root",
    )  # fmt: skip
    p.add_argument(
        "--test-data", default=None,
        help="test on this file (e.g. an official test set) and train/validate on the whole training "
        "file; one system per run (ethanol, water, or one Zuo element)",
    )  # fmt: skip
    p.add_argument(
        "--test-format", default=None, help="format of --test-data (default: from the name)"
    )
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    args = p.parse_args(argv)
    if args.committee < 1:
        p.error(f"--committee must be at least 1, got {args.committee}")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    root, overrides = data_root(args.data_root), load_overrides(args.config)
    run_root = Path(args.run_root or tempfile.mkdtemp(prefix="mlp_accuracy_"))
    datasets = ["ethanol", "zuo", "water"] if args.dataset == "all" else [args.dataset]
    elements = [e.strip() for e in args.elements.split(",") if e.strip()]
    systems = [(ds, sy) for ds in datasets for sy in load_systems(ds, root, elements)]
    test_atoms = None
    if args.test_data is not None:
        if len(systems) != 1:
            p.error(
                f"--test-data needs one system per run, got {len(systems)}: pick --dataset/--elements"
            )
        test_atoms = read_dataset(args.test_data, format=args.test_format)
        have = {int(z) for _, (_, atoms, _) in systems for a in atoms for z in a.numbers}
        extra = sorted({int(z) for a in test_atoms for z in a.numbers} - have)
        if extra:
            raise ValueError(f"--test-data has elements {extra} that the training data lacks")
    rows = []
    for ds, (system, atoms, e0) in systems:
        row = run_case(ds, system, atoms, e0, args, overrides, run_root, test_atoms)
        print_row(row)
        rows.append(row)
        out = Path(args.results)  # written after every case, so an interrupted run keeps its rows
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(markdown(merge_rows(read_rows(out), [row]), read_notes(out)))
    print(f"\nresults: {args.results}; run directories: {run_root}")
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
