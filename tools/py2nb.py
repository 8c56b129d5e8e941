"""Convert a percent-format script (``# %%`` code cells, ``# %% [markdown]`` cells) into a notebook.

Handy for writing lessons in an editor: ``python tools/py2nb.py nbs/_scratch/04_md.py nbs/04_lj_md.ipynb``.
The notebook stays the source of truth; the script is a drafting aid only. Markdown cells are
written with every line starting with ``# `` (stripped on conversion).
"""

import json
import sys
from pathlib import Path


def convert(src: str) -> dict:
    cells, kind, buf = [], None, []

    def flush():
        if kind is None:
            return
        lines = list(buf)
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        text = "\n".join(lines)
        cell = {"cell_type": kind, "metadata": {}, "source": text}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)

    for line in src.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, buf = ("markdown" if "[markdown]" in line else "code"), []
        else:
            buf.append(line)
    flush()
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


if __name__ == "__main__":
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    dst.write_text(json.dumps(convert(src.read_text()), indent=1) + "\n")
    print(f"wrote {dst}")
