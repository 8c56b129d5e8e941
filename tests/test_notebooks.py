"""Runs every course notebook through nbdev's test runner with the configured skip flags.

Each notebook's wall time is recorded and printed in a report at the end of the run (see
conftest.py); a notebook over the budget (60 s by default, `MLP_NB_BUDGET_S`) raises a warning,
and one over twice the budget fails, so regressions are visible without flaky timing asserts.
"""

import os
import time
import warnings

import nbdev.test as nbt  # not `from nbdev.test import test_nb`: pytest would collect it
import pytest
from nbdev.config import get_config

cfg = get_config()
NBS = sorted(cfg.nbs_path.glob("[0-9]*.ipynb"))
BUDGET_S = float(os.environ.get("MLP_NB_BUDGET_S", "60"))


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_notebook(nb, record_property):
    t0 = time.perf_counter()
    ok, _ = nbt.test_nb(nb, skip_flags=cfg.tst_flags.split(), basepath=cfg.config_path)
    dt = time.perf_counter() - t0
    record_property("notebook_seconds", round(dt, 1))
    assert ok, f"{nb.name} failed (run: nbdev-test {nb})"
    if dt > BUDGET_S:
        warnings.warn(f"{nb.name} took {dt:.0f} s, over the {BUDGET_S:.0f} s budget", stacklevel=1)
    assert dt < 2 * BUDGET_S, f"{nb.name} took {dt:.0f} s, over twice the {BUDGET_S:.0f} s budget"
