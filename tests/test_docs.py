"""The offline documentation site (tools/build_docs.py): built once into a temporary folder, then checked.

Checks that every notebook and the landing page have a page, that the API reference has an entry for every
exported symbol, that search has an index, that a stored figure is shown, and that nothing is fetched
from the internet. The build takes the bulk of this file's time (it is reported; see `BUDGET_S`).
"""

import base64
import json
import os
import re
import sys
import time
import warnings
from html import unescape
from pathlib import Path

import nbdev.test as nbt  # not `from nbdev.test import test_nb`: pytest would collect it
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_docs as bd  # noqa: E402

NBS = bd.notebook_paths(ROOT / "nbs")
INDEX = ROOT / "nbs" / "index.ipynb"
LIB = "mlp_roadmap"
BUDGET_S = float(os.environ.get("MLP_DOCS_BUDGET_S", "90"))


_NBS_BEFORE: set[str] = set()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "_site"
    _NBS_BEFORE.update(p.name for p in (ROOT / "nbs").iterdir())
    t0 = time.perf_counter()
    bd.build(out, ROOT)
    dt = time.perf_counter() - t0
    if dt > BUDGET_S:
        warnings.warn(f"docs build took {dt:.0f} s, over the {BUDGET_S:.0f} s budget", stacklevel=1)
    return out


def _stored_pngs(nb: Path) -> list[str]:
    "base64 PNGs stored in the outputs of a notebook's code cells"
    cells = json.loads(nb.read_text())["cells"]
    out = []
    for c in cells:
        for o in c.get("outputs", []):
            png = (o.get("data") or {}).get("image/png")
            if png:
                out.append("".join(png) if isinstance(png, list) else png)
    return out


def _title(nb: Path) -> str | None:
    "The notebook's H1 title"
    for c in json.loads(nb.read_text())["cells"]:
        if c["cell_type"] == "markdown":
            m = re.search(r"^#\s+(.+)$", "".join(c["source"]), flags=re.M)
            if m:
                return m.group(1).strip()
    return None


# ---------------------------------------------------------------- the built site


def test_every_notebook_has_a_page(site):
    assert (site / "index.html").exists()
    assert "mlp-roadmap" in (site / "index.html").read_text()
    for nb in NBS:
        page = site / f"{bd.page_name(nb)}.html"
        assert page.exists(), f"no page for {nb.name}"
        html = page.read_text()
        title = _title(nb)
        if title:  # Markdown in titles is rendered, so compare the plain words only
            words = re.findall(r"[A-Za-z]{4,}", title)
            assert all(w in html for w in words), f"{nb.name}: title {title!r} not on its page"
        assert "nbdev_export()" not in html, f"{nb.name}: hidden cell shown"
        # directives are comments in code cells (a lesson may still mention `#| slow` in its prose)
        assert not re.search(r'class="c1">#\|', html), f"{nb.name}: a cell directive is shown"


def test_navigation_follows_the_stages(site):
    html = unescape((site / "index.html").read_text())
    stages = list(dict.fromkeys(bd.stage_of(nb) for nb in NBS))
    pos = [html.find(s) for s in stages]
    assert all(p >= 0 for p in pos), f"stage missing from the navigation: {stages}, {pos}"
    assert pos == sorted(pos), "stages out of order"
    assert "API reference" in html


def test_api_reference_has_every_exported_symbol(site):
    modidx = bd.load_modidx(ROOT / LIB)
    syms = {m: s for m, s in modidx["syms"].items() if m.startswith(LIB + ".")}
    if not syms:
        pytest.skip("library not exported yet")
    index = (site / "api" / "index.html").read_text()
    for mod, entries in syms.items():
        page = site / "api" / f"{mod.split('.', 1)[1]}.html"
        assert page.exists(), f"no API page for {mod}"
        assert mod.split(".", 1)[1] in index
        html = page.read_text()
        module = __import__(mod, fromlist=["__all__"])
        names = set(entries) | {f"{mod}.{n}" for n in getattr(module, "__all__", [])}
        missing = [s for s in sorted(names) if f'id="{s}"' not in html]
        assert not missing, f"{mod}: no API entry for {missing}"


def test_api_entries_link_to_their_lesson(site):
    for nb in NBS:
        mod = bd.default_exp(json.loads(nb.read_text()))
        page = site / "api" / f"{mod}.html" if mod else None
        if page and page.exists():
            assert f'href="../{bd.page_name(nb)}.html' in page.read_text(), (
                f"{mod}: no link to {nb.name}"
            )


def test_search_index(site):
    idx = json.loads((site / "search" / "search_index.json").read_text())
    locs = {d["location"].split("#")[0] for d in idx["docs"]}
    for nb in NBS:
        assert f"{bd.page_name(nb)}.html" in locs, f"{nb.name} not in the search index"
    assert any(loc.startswith("api/") for loc in locs)
    # Pages are indexed by their text, not by the notebook's inlined CSS.
    assert not any(".jp-OutputArea" in d["text"] or "Copied!" in d["text"] for d in idx["docs"])


def test_stored_figure_is_on_the_page(site):
    with_fig = [(nb, _stored_pngs(nb)) for nb in NBS]
    with_fig = [(nb, pngs) for nb, pngs in with_fig if pngs]
    if not with_fig:
        pytest.skip("no notebook has a stored figure yet")
    nb, pngs = with_fig[0]
    html = (site / f"{bd.page_name(nb)}.html").read_text()
    assert base64.b64decode(pngs[0][:100])  # a real PNG payload
    assert f"data:image/png;base64,{pngs[0].strip()[:200]}" in html.replace("\n", "")


def test_site_is_offline(site):
    assert bd.external_refs(site) == []
    for f in site.rglob("*.html"):
        assert "fonts.googleapis" not in f.read_text(errors="ignore"), f
    if bd.mathjax_dir():  # equations render with the local MathJax copy
        assert (site / "assets" / "mathjax" / "MathJax.js").exists()
        assert "assets/mathjax/MathJax.js" in (site / "index.html").read_text()


def test_no_files_written_into_nbs(site):
    leftovers = [
        p for p in (ROOT / "nbs").iterdir() if p.name in ("_proc", "_docs", "_site", "docs")
    ]
    assert not leftovers


# ---------------------------------------------------------------- pieces, without a build


def test_stage_of_uses_the_number_prefix():
    assert bd.stage_of(Path("00_regression.ipynb")).startswith("Stage 1")
    assert bd.stage_of(Path("04_lj_md.ipynb")).startswith("Stage 2")
    assert bd.stage_of(Path("06a_n2p2.ipynb")) == bd.stage_of(Path("06_bpnn.ipynb"))
    assert bd.stage_of(Path("13_cli.ipynb")).startswith("Stage 8")
    assert bd.stage_of(Path("42_extra.ipynb")) == bd.OTHER_STAGE
    with pytest.raises(ValueError, match="number prefix"):
        bd.stage_of(Path("index.ipynb"))


def test_page_names_follow_nbdev():
    assert bd.page_name(Path("nbs/06b_message_passing.ipynb")) == "message_passing"
    assert bd.page_name(Path("00_regression.ipynb")) == "regression"


def test_directives_and_quarto_markup():
    dirs, code = bd.split_directives("#| echo: false\n#| output: asis\nshow_doc(f)")
    assert dirs == {"echo": "false", "output": "asis"} and code == "show_doc(f)"
    md = '[source](https://x/y.py#L3){target="_blank" style="float:right"}\n\n### f\n::: {.callout-note}\nhi\n:::'
    out = bd.quarto_to_markdown(md)
    assert "{target" not in out and ":::" not in out and "[source]" not in out
    assert "> **Note**" in out and "> hi" in out


def test_links_point_at_local_pages():
    host = "https://example.invalid/mlp-roadmap"
    lj, fwd = "mlp_roadmap.md.LennardJones", "mlp_roadmap.md.LennardJones.forward"
    lm = bd.LinkMap(
        [host],
        {("lj_md", "lennardjones"): lj, ("lj_md", "lennardjones.forward"): fwd},
        {"lj_md": {lj}},
        {"mlp_roadmap.md": "md"},
        {"04_lj_md.ipynb": "lj_md"},
    )
    # nbdev's hosted links go to the show_doc entry on the lesson, or to the API page when it has none
    assert lm.target(f"{host}/lj_md.html#lennardjones") == f"lj_md.html#{lj}"
    assert lm.target(f"{host}/lj_md.html#lennardjones.forward", depth=1) == f"../api/md.html#{fwd}"
    assert lm.target(f"{host}/lj_md.html#units") == "lj_md.html#units"
    assert lm("see [04](04_lj_md.ipynb#units)") == "see [04](lj_md.html#units)"
    assert lm.target("https://docs.python.org/3/") == "https://docs.python.org/3/"
    assert lm.target("99_missing.ipynb") == "99_missing.ipynb" and lm.missing == {
        "99_missing.ipynb"
    }


def test_clean_notebook_drops_nbdev_keys_and_turns_show_doc_into_markdown():
    nb = {
        "cells": [
            {"cell_type": "raw", "metadata": {}, "source": "---\ntitle: T\ndescription: D\n---\n"},
            {
                "cell_type": "code",
                "has_sd": True,
                "metadata": {"language": "python"},
                "source": "#| echo: false\n#| output: asis\nshow_doc(f)",
                "outputs": [
                    {
                        "output_type": "execute_result",
                        "data": {"text/markdown": "---\n\n### f\n\n*doc*"},
                        "metadata": {},
                    }
                ],
                "execution_count": 3,
            },
            {
                "cell_type": "code",
                "metadata": {},
                "source": "#| code-fold: show\n#| exports: true\ndef f(): pass",
                "outputs": [],
                "execution_count": 4,
            },
            {"cell_type": "code", "metadata": {}, "outputs": []},  # removed by nbdev (no source)
        ],
        "metadata": {"kernelspec": {"name": "python3"}, "widgets": {}},
    }
    out = bd.clean_notebook(nb, "md", "mlp_roadmap", bd.LinkMap([], {}, {}, {}))
    kinds = [c["cell_type"] for c in out["cells"]]
    assert kinds == ["markdown", "markdown", "code"]
    assert out["cells"][0]["source"] == "# T\n\n> D"
    assert '<a id="mlp_roadmap.md.f"></a>' in out["cells"][1]["source"]
    assert out["cells"][2]["source"] == "def f(): pass" and "has_sd" not in out["cells"][2]
    assert set(out["metadata"]) == {"kernelspec"}


def test_failing_notebook_stops_the_build_with_its_name(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "toy"\nversion = "0"\n[tool.nbdev]\nlib_path = "toylib"\nnbs_path = "nbs"\n'
    )
    (tmp_path / "toylib").mkdir()
    (tmp_path / "toylib" / "__init__.py").write_text("")
    nbs = tmp_path / "nbs"
    nbs.mkdir()

    def nb(*cells):
        cs = [
            {"cell_type": k, "metadata": {}, "source": s}
            | ({"outputs": [], "execution_count": None} if k == "code" else {})
            for k, s in cells
        ]
        return json.dumps({"cells": cs, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})

    (nbs / "index.ipynb").write_text(nb(("markdown", "# Toy")))
    (nbs / "00_broken.ipynb").write_text(
        nb(
            ("code", "#| default_exp broken"),
            ("markdown", "# Broken"),
            ("code", "#| export\nimport not_a_module_xyz"),
        )
    )
    with pytest.raises(RuntimeError, match="00_broken.ipynb"):
        bd.build(tmp_path / "_site", tmp_path)
    assert not (tmp_path / "_site").exists()
    assert sorted(p.name for p in nbs.iterdir()) == ["00_broken.ipynb", "index.ipynb"]


def test_landing_page_example_runs():
    ok, _ = nbt.test_nb(INDEX, skip_flags=["slow", "notest"], basepath=ROOT)
    assert ok, "nbs/index.ipynb failed (run: nbdev-test nbs/index.ipynb)"
