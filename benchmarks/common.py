"""Helpers shared by the benchmark scripts: the CPU's name, and hand-written notes in results files.

The notes live between `<!-- notes -->` and `<!-- /notes -->` markers at the end of
`benchmarks/results/<name>.md`; a script that regenerates the file reads them first and appends them.
"""

from __future__ import annotations

import platform
import re
from pathlib import Path


def cpu_name() -> str:
    "CPU model from /proc/cpuinfo, else the platform's processor or machine name"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


NOTES_TAG = re.compile(r"<!-- notes -->\n(.*?)<!-- /notes -->", re.S)
PLACEHOLDER = "(no notes yet: write the discussion of the numbers here)\n"


def read_notes(path: Path) -> str:
    "Hand-written notes kept between `<!-- notes -->` markers of an existing results file"
    path = Path(path)
    m = NOTES_TAG.search(path.read_text()) if path.exists() else None
    return m.group(1) if m else PLACEHOLDER


def notes_section(notes: str) -> list[str]:
    "The Markdown lines of a notes section"
    return ["", "## Notes", "", "<!-- notes -->", notes.rstrip("\n"), "<!-- /notes -->", ""]
