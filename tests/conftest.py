"""Shared pytest configuration: one thread per worker, seeds, paths to reference data."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
# Reference DFT data lives beside the checkout in ../shared/data (CI has it; users do not).
SHARED = Path(os.environ.get("MLP_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    "Path to ../shared/data; skips the test cleanly where it is absent."
    if not SHARED.is_dir():
        pytest.skip(f"reference data not found at {SHARED} (set MLP_SHARED_DATA)")
    return SHARED


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002 (legacy global seed for code that uses np.random directly)


_NB_TIMES: dict[str, float] = {}


def pytest_runtest_logreport(report):
    if report.when == "call":
        for k, v in report.user_properties:
            if k == "notebook_seconds":
                _NB_TIMES[report.nodeid.split("[")[-1].rstrip("]")] = v


def pytest_terminal_summary(terminalreporter):
    if _NB_TIMES:
        terminalreporter.section("notebook time report")
        for name, sec in sorted(_NB_TIMES.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"{sec:7.1f} s  {name}")
        terminalreporter.write_line(
            f"{sum(_NB_TIMES.values()):7.1f} s  total (summed over workers)"
        )
