"""Build the documentation website offline: nbdev's notebook processing, rendered by mkdocs-material.

Quarto (what `nbdev-docs` uses) cannot be installed on our machines, so `make docs` runs this script:

1. every `nbs/[0-9]*.ipynb` and `nbs/index.ipynb` goes through nbdev's own docs processors
   (`nbdev.processors.FilterDefaults`, the code behind `nbdev-proc-nbs`): `show_doc` cells added after
   exports and executed, hidden and exported cells removed, directives handled, symbols linkified.
   One change: nbdev re-runs any cell containing an import and stores its fresh outputs; here a cell
   that mixes imports with other code runs its imports only and every cell keeps its stored outputs
   (the page shows the saved run; a heavy lesson cell is never re-run by the docs build);
2. the processed notebooks are turned into plain notebooks (nbdev-only cell keys and Quarto-only
   directives/markup dropped, `show_doc` output turned into markdown, nbdev links pointed at local pages);
3. an API reference page per module is generated from `<lib>/_modidx.py` and each module's `__all__`
   (signature, docstring and docments through fastcore, plus a link to the lesson that defines it);
4. mkdocs-material + mkdocs-jupyter render it all (`execute: false`: stored outputs, figures included,
   are shown as saved) into a static site with offline search, no web fonts and, where the
   `jupyter-server-mathjax` package is installed, a local copy of MathJax.

Everything is staged in a temporary folder; nothing is written into `nbs/` or the library. A notebook
whose processing fails stops the build with its name: the docs must be complete.

    python tools/build_docs.py --out _site
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import multiprocessing
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

# Roadmap stages, keyed by the two-digit notebook prefix (letters after it, as in 06a, stay in the stage).
STAGES: list[tuple[range, str]] = [
    (range(0, 2), "Stage 1 · Regression & neural nets"),
    (range(2, 5), "Stage 2 · PES, neighbours & MD"),
    (range(5, 6), "Stage 3 · Descriptors"),
    (range(6, 7), "Stage 4 · Models"),
    (range(7, 8), "Stage 5 · Data"),
    (range(8, 10), "Stage 6 · Training & the ASE calculator"),
    (range(10, 13), "Stage 7 · Active learning, LAMMPS & validation"),
    (range(13, 14), "Stage 8 · Command line"),
]
OTHER_STAGE = "More notebooks"
API_DIR = "api"
MATHJAX_CDN = (
    "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe"
)
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe,local/offline"
# Only the fonts that jupyter-server-mathjax ships (STIX-Web) exist offline: tell MathJax so.
MATHJAX_LOCAL = """MathJax.Hub.Config({
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null},
  messageStyle: "none"
});
MathJax.Ajax.loadComplete("[MathJax]/config/local/offline.js");
"""
# mkdocs in a child process. nbformat -> jsonschema imports `rfc3987_syntax` when installed, which compiles
# ~40 lark grammars at import (4-5 s here) for IRI checks the docs build never makes: block that import.
MKDOCS_RUN = (
    "import sys; sys.modules['rfc3987_syntax'] = None; sys.argv[0] = 'mkdocs'; "
    "from mkdocs.__main__ import cli; cli()"
)
EXTRA_CSS = """/* mlp-roadmap: compact notebook pages */
.jupyter-wrapper .jp-InputPrompt, .jupyter-wrapper .jp-OutputPrompt { display: none; }
.jupyter-wrapper .jp-OutputArea-output img { max-width: 100%; height: auto; }
.api-link { font-size: 0.85em; }
"""


# ---------------------------------------------------------------- notebooks and pages


def notebook_paths(nbs: Path) -> list[Path]:
    "The course notebooks, `nbs/[0-9]*.ipynb`, sorted (found by glob: new notebooks appear by themselves)"
    return sorted(p for p in nbs.glob("[0-9]*.ipynb") if p.is_file())


def page_name(nb: Path) -> str:
    "Site file of notebook `nb`: nbdev/Quarto's name (numeric prefix stripped), e.g. `00_regression` -> `regression`"
    from nbdev.config import nbpath2html

    return nbpath2html(Path(nb).name).stem


def stage_of(nb: Path) -> str:
    "Roadmap stage of notebook `nb`, from its number prefix (`06a_n2p2` -> stage of 06)"
    m = re.match(r"^(\d+)", Path(nb).name)
    if not m:
        raise ValueError(f"notebook {nb} has no number prefix")
    n = int(m.group(1))
    return next((title for r, title in STAGES if n in r), OTHER_STAGE)


def default_exp(nb_json: dict) -> str | None:
    "Module named by the notebook's `#| default_exp` directive, if any"
    for cell in nb_json.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = "".join(cell.get("source", ""))
        m = re.search(r"^\s*#\s*\|\s*default_exp\s+(\S+)", src, flags=re.M)
        if m:
            return m.group(1)
    return None


_EXEC_DIRS = {"export", "exports", "exporti", "exec_doc"}


def imports_only(source: str) -> str | None:
    "The top-level imports of a cell that mixes them with other code (None for any other cell)"
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return None
    imps = [n for n in body if isinstance(n, (ast.Import, ast.ImportFrom))]
    if not imps or len(imps) == len(body):
        return None
    return "\n".join(ast.get_source_segment(source, n) for n in imps)


def _docs_filter(mixed: list[str]):
    "nbdev's `FilterDefaults`, except that the notebook is not re-run (see `ExecShowDocs`)"
    from nbdev.processors import FilterDefaults, exec_show_docs

    class ExecShowDocs(exec_show_docs):
        """nbdev runs export, import and show_doc cells to render API docs, and stores the fresh outputs.
        Here a lesson cell that mixes imports with other code (nbdev warns about those) runs its imports
        only, and every cell but show_doc keeps its stored outputs: the page shows the saved run."""

        def __call__(self, cell):
            src = cell.get("source") if cell.cell_type == "code" else None
            skip = (
                not src or "show_doc(" in src or "nbdev_export()" in src
            )  # nbdev never runs the latter
            if skip or cell.directives_.keys() & _EXEC_DIRS:
                return super().__call__(cell)
            keep = {k: cell[k] for k in ("outputs", "execution_count", "metadata") if k in cell}
            imp = imports_only(src)
            if imp is not None:
                mixed.append(
                    next(ln for ln in src.splitlines() if ln.strip() and not ln.startswith("#|"))[
                        :60
                    ]
                )
            try:
                if imp is not None:
                    cell.source = imp
                super().__call__(cell)
            finally:
                cell.source = src
                cell.update(keep)

    class DocsFilter(FilterDefaults):
        def base_procs(self):
            return [ExecShowDocs if p is exec_show_docs else p for p in super().base_procs()]

    return DocsFilter()


def _process_worker(src: str, root: str) -> tuple[str, list[str]]:
    "Run nbdev's docs processors on notebook `src` (in a worker process): the notebook as JSON, mixed cells"
    import warnings

    os.environ["IN_TEST"] = "1"  # as nbdev-proc-nbs does: nbdev_export() and friends are no-ops
    if root not in sys.path:
        sys.path.insert(0, root)
    os.chdir(Path(src).parent)  # import cells run where nbdev-test runs them
    from fastcore.nbio import nb2str, read_nb

    nb, mixed = read_nb(src), []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Found cells containing imports")
        _docs_filter(mixed)(nb)
    return nb2str(nb), mixed


def _executor(jobs: int) -> ProcessPoolExecutor:
    "Worker processes for nbdev's processing (spawned: nbdev's IPython shell must not touch this process)"
    # The workers must import this file by name: nbdev's IPython shell replaces their `__main__`.
    if str(Path(__file__).parent) not in sys.path:
        sys.path.insert(0, str(Path(__file__).parent))
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))


def process_notebooks(ex: ProcessPoolExecutor, nbs: list[Path], root: Path) -> dict[Path, dict]:
    "nbdev-process every notebook; stops at the first failure, naming the notebook"
    worker = importlib.import_module("build_docs")._process_worker
    futs = {nb: ex.submit(worker, str(nb), str(root)) for nb in nbs}
    out: dict[Path, dict] = {}
    for nb, fut in futs.items():
        try:
            text, mixed = fut.result()
            out[nb] = json.loads(text)
            if mixed:
                print(
                    f"docs: note: {nb.name}: {len(mixed)} cell(s) mix imports with other code; ran only "
                    f"their imports (STYLE A.2), first: {mixed[0]!r}"
                )
        except Exception as e:
            for f in futs.values():
                f.cancel()
            raise RuntimeError(
                f"docs: processing {nb.relative_to(root)} failed (nbdev runs the import, export and "
                f"show_doc cells of a notebook to render its API docs):\n{e}"
            ) from e
    return out


def _api_worker(root: str, lib_path: str, lessons: dict, shown: set) -> tuple[dict, dict]:
    "Exported symbols and API pages, made in a worker whose imports (torch, ase, ...) are already warm"
    if root not in sys.path:
        sys.path.insert(0, root)
    symbols = exported_symbols(load_modidx(Path(lib_path)), Path(lib_path).name, Path(lib_path))
    return symbols, api_pages(symbols, lessons, shown)


# ---------------------------------------------------------------- cleaning processed notebooks

_STD_KEYS = {
    "code": {"cell_type", "id", "metadata", "source", "outputs", "execution_count"},
    "markdown": {"cell_type", "id", "metadata", "source", "attachments"},
    "raw": {"cell_type", "id", "metadata", "source"},
}
_re_directive = re.compile(r"^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*?)\s*$")
_re_attrs_after_link = re.compile(r"(\]\([^)\s]*\))\{[^}\n]*\}")
_re_md_link = re.compile(r"\]\(([^)\s]+)\)")
_re_nb_link = re.compile(r"^(?:\./)?([\w.-]+\.ipynb)(#[^)\s]*)?$")
_re_callout = re.compile(r"^:::+\s*\{\s*\.callout-(\w+)[^}]*\}\s*$")
_re_fence_div = re.compile(r"^:::+.*$")
_re_source_link = re.compile(r"^\[source\]\([^)]*\)\s*$", flags=re.M)


def _src(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def split_directives(source: str) -> tuple[dict[str, str], str]:
    "Split leading `#| key: value` lines (Quarto/nbdev directives) from the code below them"
    dirs, lines = {}, source.splitlines()
    i = 0
    while i < len(lines):
        m = _re_directive.match(lines[i])
        if not m:
            break
        dirs[m.group(1)] = m.group(2).strip("'\"")
        i += 1
    return dirs, "\n".join(lines[i:]).strip("\n")


def quarto_to_markdown(md: str) -> str:
    "Turn the Quarto-only markup nbdev emits into plain markdown: link attributes, callouts, fenced divs"
    md = _re_attrs_after_link.sub(r"\1", md)
    md = _re_source_link.sub("", md)  # show_doc's GitHub source link: no repository URL offline
    out, quote = [], 0
    for line in md.splitlines():
        m = _re_callout.match(line.strip())
        if m:
            quote += 1
            out.append(f"> **{m.group(1).capitalize()}**")
            out.append(">")
        elif _re_fence_div.match(line.strip()):
            quote = max(0, quote - 1) if line.strip().strip(":") == "" else quote
        else:
            out.append(("> " * quote + line) if quote else line)
    return "\n".join(out)


class LinkMap:
    "Points nbdev's hosted-doc links (`{doc_host}{doc_baseurl}/page.html#anchor`) at pages of this site"

    def __init__(
        self,
        prefixes: list[str],  # URL prefixes that mean "our own docs site"
        anchors: dict[tuple[str, str], str],  # (page, nbdev anchor) -> fully qualified symbol
        shown: dict[str, set[str]],  # page -> symbols that have a show_doc entry on that page
        api_page: dict[str, str],  # module (dotted) -> API page stem
        notebooks: dict[str, str] | None = None,  # notebook file name -> page stem
    ):
        self.prefixes = sorted({p.rstrip("/") + "/" for p in prefixes if p}, key=len, reverse=True)
        self.anchors, self.shown, self.api_page = anchors, shown, api_page
        self.notebooks, self.missing = notebooks or {}, set()

    def target(self, url: str, depth: int = 0) -> str:
        "Local URL for `url` seen from a page `depth` folders deep (unchanged if it is not one of ours)"
        up = "../" * depth
        m = _re_nb_link.match(url)
        if m:  # a link between notebooks, as written in Jupyter: `04_lj_md.ipynb#section`
            if m.group(1) not in self.notebooks:
                self.missing.add(m.group(1))
                return url
            return f"{up}{self.notebooks[m.group(1)]}.html{m.group(2) or ''}"
        rel = next((url[len(p) :] for p in self.prefixes if url.startswith(p)), None)
        if rel is None:
            return url
        page, _, anchor = rel.partition("#")
        page = page.removesuffix(".html")
        sym = self.anchors.get((page, anchor))
        if sym is None:
            return f"{up}{page}.html" + (f"#{anchor}" if anchor else "")
        if sym in self.shown.get(page, set()):
            return f"{up}{page}.html#{sym}"
        mod = sym_module(sym, self.api_page)
        return f"{up}{API_DIR}/{self.api_page[mod]}.html#{sym}" if mod else f"{up}{page}.html"

    def __call__(self, md: str, depth: int = 0) -> str:
        return _re_md_link.sub(lambda m: f"]({self.target(m.group(1), depth)})", md)


def sym_module(sym: str, modules) -> str | None:
    "The longest module name in `modules` that prefixes the dotted symbol `sym`"
    parts = sym.split(".")
    for k in range(len(parts) - 1, 0, -1):
        if ".".join(parts[:k]) in modules:
            return ".".join(parts[:k])
    return None


def _md_cell(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _dedupe_outputs(outputs: list[dict]) -> list[dict]:
    "Drop repeated rich outputs: a figure both auto-displayed by the inline backend and returned"
    seen, out = set(), []
    for o in outputs:
        data = o.get("data") or {}
        key = next(
            (
                json.dumps(data[k])
                for k in ("image/png", "image/svg+xml", "image/jpeg")
                if k in data
            ),
            None,
        )
        if key is not None and key in seen:
            continue
        if key is not None:
            seen.add(key)
        out.append(o)
    return out


def frontmatter(nb: dict) -> dict:
    "Title/description from the raw YAML frontmatter cell that nbdev's FrontmatterProc puts first"
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "raw":
            m = re.match(r"^\s*---\s*\n(.*?)\n---", _src(cell), flags=re.S)
            if m:
                return yaml.safe_load(m.group(1)) or {}
    return {}


def clean_notebook(nb: dict, module: str | None, lib: str, links: LinkMap) -> dict:
    "Plain notebook from nbdev's processed one: only nbformat keys, no Quarto-isms, show_doc as markdown"
    fm, cells = frontmatter(nb), []
    if fm.get("title"):
        head = f"# {fm['title']}"
        if fm.get("description"):
            head += f"\n\n> {fm['description']}"
        cells.append(_md_cell(head))
    for cell in nb.get("cells", []):
        kind = cell.get("cell_type")
        if "source" not in cell or kind not in _STD_KEYS:
            continue  # removed by nbdev (hidden, exported, or frontmatter already used)
        src = _src(cell)
        if kind == "raw" or (kind == "markdown" and src.strip().startswith("<!-- WARNING")):
            continue
        if kind == "markdown":
            cells.append(_keep(cell, kind) | _md_cell(links(quarto_to_markdown(src))))
            continue
        dirs, code = split_directives(src)
        if dirs.get("include") == "false":
            continue
        outputs = [] if dirs.get("output") == "false" else _dedupe_outputs(cell.get("outputs", []))
        mds = [
            o["data"]["text/markdown"] for o in outputs if "text/markdown" in (o.get("data") or {})
        ]
        if dirs.get("echo") == "false" and dirs.get("output") == "asis" and mds:
            text = "\n\n".join("".join(m) if isinstance(m, list) else m for m in mds)
            cells.append(_md_cell(_anchor_show_doc(links(quarto_to_markdown(text)), module, lib)))
            continue
        new = _keep(cell, kind) | {"source": code, "outputs": outputs, "execution_count": None}
        meta = {k: v for k, v in cell.get("metadata", {}).items() if k in ("tags",)}
        if dirs.get("echo") == "false":
            meta["tags"] = [*meta.get("tags", []), "hide-input"]
        new["metadata"] = meta
        if code or outputs:
            cells.append(new)
    meta = {k: v for k, v in nb.get("metadata", {}).items() if k in ("kernelspec", "language_info")}
    return {"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


def _keep(cell: dict, kind: str) -> dict:
    "Only the nbformat keys of `cell` (drops nbdev's `has_sd` and friends)"
    out = {k: v for k, v in cell.items() if k in _STD_KEYS[kind]}
    out["metadata"] = {}
    return out


_re_sd_heading = re.compile(r"^(#{1,6})\s+(\S+)\s*$", flags=re.M)


def _anchor_show_doc(md: str, module: str | None, lib: str) -> str:
    "Give a show_doc entry an id equal to its fully qualified name (what API links point at)"
    m = _re_sd_heading.search(md)
    if not (m and module):
        return md
    sym = f"{lib}.{module}.{m.group(2).strip('`')}"
    return md[: m.start()] + f'<a id="{sym}"></a>\n\n' + md[m.start() :]


def shown_symbols(nb: dict, module: str | None, lib: str) -> set[str]:
    "Fully qualified symbols given a show_doc entry in a processed notebook"
    if not module:
        return set()
    names = set()
    for cell in nb.get("cells", []):
        src = _src(cell)
        if cell.get("cell_type") == "code" and "show_doc(" in src:
            names |= set(re.findall(r"^\s*show_doc\(\s*([\w.]+)", src, flags=re.M))
    return {f"{lib}.{module}.{n}" for n in names}


# ---------------------------------------------------------------- API reference


def load_modidx(lib_path: Path) -> dict:
    "The library's nbdev index `_modidx.d` ({} when the library has not been exported yet)"
    p = lib_path / "_modidx.py"
    return runpy.run_path(str(p))["d"] if p.exists() else {"settings": {}, "syms": {}}


def exported_symbols(modidx: dict, lib: str, lib_path: Path | None = None) -> dict[str, list[str]]:
    "Module -> fully qualified exported symbols in source (`__all__`) order, each class followed by its methods"
    idx = {m: syms for m, syms in modidx.get("syms", {}).items() if m.startswith(lib + ".")}
    if (
        lib_path is not None
    ):  # modules the index lacks (stale or missing `_modidx.py`): `__all__` only
        for f in sorted(Path(lib_path).glob("[!_]*.py")):
            idx.setdefault(f"{lib}.{f.stem}", {})
    out: dict[str, list[str]] = {}
    for mod, syms in sorted(idx.items()):
        names: list[str] = []
        for n in getattr(importlib.import_module(mod), "__all__", []):
            names += [f"{mod}.{n}"] + [s for s in syms if s.startswith(f"{mod}.{n}.")]
        names += [
            s for s in syms if s not in names
        ]  # e.g. methods patched onto other modules' classes
        out[mod] = list(dict.fromkeys(names))
    return out


def resolve(sym: str, mod: str):
    "The object named by the fully qualified `sym` inside module `mod`"
    obj = importlib.import_module(mod)
    for part in sym[len(mod) + 1 :].split("."):
        obj = getattr(obj, part)
    return obj


def _md_escape(s: str) -> str:
    "Escape underscores so that markdown does not read `__init__` in an attribute list as bold"
    return s.replace("_", r"\_")


def is_private(short: str) -> bool:
    "Whether a (dotted) name relative to its module is private: a part starts with one underscore"
    return any(
        p.startswith("_") and not (p.startswith("__") and p.endswith("__"))
        for p in short.split(".")
    )


def _namedtuple_md(obj: type, name: str) -> str:
    "A NamedTuple's fields as written in its source (with their comments); fastcore shows `*args`"
    try:
        src = inspect.getsource(obj).splitlines()
    except (OSError, TypeError):
        return f"```python\nclass {name}{inspect.signature(obj)}\n```"
    body = [src[0]]
    for line in src[1:]:
        s = line.strip()
        if s.startswith(("def ", "@")):
            break
        if s and not s.startswith(('"', "'")):
            body.append(line.rstrip())
    return "```python\n" + "\n".join(body) + "\n```"


def symbol_markdown(sym: str, mod: str, lesson: str | None, shown: bool) -> str:
    "API entry: heading with the symbol as id, signature with docments, docstring, link to the lesson"
    from fastcore.docments import MarkdownRenderer

    short = sym[len(mod) + 1 :]
    level = "###" if "." in short or is_private(short) else "##"
    out = [f"{level} `{short}` {{ #{_md_escape(sym)} }}", ""]
    obj = resolve(sym, mod)
    if inspect.isclass(obj) and issubclass(obj, tuple) and hasattr(obj, "_fields"):
        doc = inspect.getdoc(obj)
        out.append(_namedtuple_md(obj, short) + (f"\n\n*{doc.splitlines()[0]}*" if doc else ""))
    elif callable(obj):
        r = MarkdownRenderer(obj, name=short)
        if "." in short and inspect.isroutine(obj) and not getattr(obj, "__doc__", None):
            r.docs = None  # a method without its own docstring: don't show the one it inherits (nn.Module's)
        md = r._repr_markdown_()
        if inspect.isclass(obj):  # fastcore shows a class's constructor as `def Name(...)`
            md = md.replace("```python\ndef ", "```python\nclass ", 1)
        out.append(md)
    else:
        r = repr(obj)
        out.append(
            f"```python\n{short}: {type(obj).__name__} = {r if len(r) < 200 else r[:200] + '...'}\n```"
        )
    if lesson:
        anchor = f"#{sym}" if shown else ""
        out += ["", f'<span class="api-link">Defined in [the lesson]({lesson}{anchor}).</span>']
    return "\n".join(out) + "\n"


def api_pages(
    symbols: dict[str, list[str]],  # module -> fully qualified symbols
    lessons: dict[str, tuple[str, str]],  # module -> (notebook page file, nav title)
    shown: set[str],  # symbols with a show_doc entry on their lesson page
) -> dict[str, str]:
    "Markdown text of the API reference: one page per module plus an index, keyed by file name"
    pages, rows = {}, []
    order = list(lessons)  # notebook order
    for mod in sorted(symbols, key=lambda m: (order.index(m) if m in order else len(order), m)):
        syms = symbols[mod]
        stem = mod.split(".", 1)[-1]
        nbfile, title = lessons.get(mod, (None, None))
        lesson = f"../{nbfile}" if nbfile else None
        doc = (inspect.getdoc(importlib.import_module(mod)) or "").strip().splitlines()
        head = [f"# `{mod}`", ""]
        if doc:
            head += [doc[0], ""]
        if lesson:
            head += [f"Lesson: [{title}]({lesson}).", ""]
        public = [s for s in syms if not is_private(s[len(mod) + 1 :])]
        private = [s for s in syms if is_private(s[len(mod) + 1 :])]
        body = [symbol_markdown(s, mod, lesson, s in shown) for s in public]
        if private:
            body += [
                "## Internal helpers",
                "",
                "Exported with the module but not meant to be called directly.",
                "",
            ]
            body += [symbol_markdown(s, mod, lesson, s in shown) for s in private]
        pages[f"{stem}.md"] = "\n".join(head + body)
        names = ", ".join(
            f"[`{s[len(mod) + 1 :]}`]({stem}.md#{s})"
            for s in public
            if "." not in s[len(mod) + 1 :]
        )
        ref = f"[{title}](../{nbfile})" if nbfile else ""
        rows.append(f"| [`{stem}`]({stem}.md) | {ref} | {names} |")
    index = ["# API reference", "", "Every exported symbol of the library, module by module.", ""]
    index += (
        ["| module | lesson | symbols |", "|---|---|---|", *rows] if rows else ["No module yet."]
    )
    pages["index.md"] = "\n".join(index) + "\n"
    return pages


# ---------------------------------------------------------------- mkdocs


def mathjax_dir() -> Path | None:
    "Local MathJax 2 shipped by the `jupyter-server-mathjax` package, if installed"
    try:
        import jupyter_server_mathjax
    except ImportError:
        return None
    p = Path(jupyter_server_mathjax.__file__).parent / "static"
    return p if (p / "MathJax.js").exists() else None


def mkdocs_config(title: str, description: str, nav: list, mathjax_url: str) -> dict:
    "mkdocs.yml contents: material theme without web fonts, offline search, notebooks rendered as stored"
    jupyter = {
        "include": ["*.ipynb"],
        "execute": False,
        "include_source": False,
        "no_prompt": True,
        "cache": False,
        "allow_errors": True,
        "toc_depth": 3,
        "ignore_h1_titles": True,  # the nav shows "04 · Title" labels, not the notebooks' H1
        "remove_tag_config": {"remove_input_tags": ["hide-input"]},
    }
    jupyter["custom_mathjax_url"] = mathjax_url
    return {
        "site_name": title,
        "site_description": description,
        "docs_dir": "docs",
        "use_directory_urls": False,  # plain page.html files: works from file:// and matches nbdev's URLs
        "strict": True,
        "theme": {
            "name": "material",
            "font": False,  # no Google fonts: the site must work offline
            "features": ["navigation.sections", "navigation.top", "search.highlight", "toc.follow"],
            "palette": {"primary": "indigo", "accent": "indigo"},
        },
        "plugins": [{"search": {"lang": "en"}}, {"mkdocs-jupyter": jupyter}],
        "markdown_extensions": [
            "attr_list",
            "admonition",
            "tables",
            {"toc": {"permalink": True}},
            {"pymdownx.highlight": {"use_pygments": True}},
            "pymdownx.superfences",
        ],
        "extra_css": ["assets/extra.css"],
        "extra": {"generator": False},
        "nav": nav,
    }


def nav_title(nb: Path, fm: dict) -> str:
    "Navigation label of a notebook: number prefix and its title, e.g. `04 · Lennard-Jones MD`"
    prefix = re.match(r"^(\d+[a-zA-Z]*)", nb.name).group(1)
    return f"{prefix} · {fm.get('title') or nb.stem}".replace("`", "")  # nav labels are plain text


def build_nav(nbs: list[Path], titles: dict[Path, str], api: dict[str, str]) -> list:
    "Home, then the notebooks grouped by roadmap stage in number order, then the API reference"
    nav: list = [{"Home": "index.ipynb"}]
    groups: dict[str, list] = {}
    for nb in nbs:
        groups.setdefault(stage_of(nb), []).append({titles[nb]: f"{page_name(nb)}.ipynb"})
    order = [t for _, t in STAGES] + [OTHER_STAGE]
    nav += [{t: groups[t]} for t in order if t in groups]
    api_nav = [{"Overview": f"{API_DIR}/index.md"}]
    api_nav += [{k[:-3]: f"{API_DIR}/{k}"} for k in api if k != "index.md"]
    nav.append({"API reference": api_nav})
    return nav


def external_refs(site: Path) -> list[str]:
    "Resources the built pages would fetch from the internet (scripts, styles, fonts): should be none"
    pat = re.compile(r"""<(?:script|link|img)\b[^>]*?(?:src|href)=["'](?:https?:)?//[^"']+""", re.I)
    css = re.compile(r"""url\(\s*["']?(?:https?:)?//|@import\s+url\(|fonts\.googleapis""", re.I)
    hits = []
    for f in site.rglob("*.html"):
        hits += [
            f"{f.relative_to(site)}: {m.group(0)[:120]}"
            for m in pat.finditer(f.read_text(errors="ignore"))
        ]
    for f in site.rglob("*.css"):
        hits += [
            f"{f.relative_to(site)}: {m.group(0)}"
            for m in css.finditer(f.read_text(errors="ignore"))
        ]
    return hits


# ---------------------------------------------------------------- main


def link_map(modidx: dict, cfg, shown: dict, pages: dict[Path, str], lib: str) -> LinkMap:
    "LinkMap for this project: nbdev's hosted URLs and notebook file links pointed at local pages"
    anchors = {}
    for syms in modidx.get("syms", {}).values():
        for sym, v in syms.items():
            url = v[0] if isinstance(v, (tuple, list)) else v
            page, _, anchor = url.partition("#")
            anchors[(page.removesuffix(".html"), anchor)] = sym
    st = modidx.get("settings", {})
    prefixes = [
        f"{st.get('doc_host') or ''}{st.get('doc_baseurl') or ''}",
        f"{cfg.get('doc_host') or ''}{cfg.get('doc_baseurl') or ''}",
    ]
    api_page = {m: m.split(".", 1)[-1] for m in modidx.get("syms", {}) if m.startswith(lib + ".")}
    notebooks = {nb.name: page for nb, page in pages.items()} | {"index.ipynb": "index"}
    return LinkMap(prefixes, anchors, shown, api_page, notebooks)


def add_mathjax(docs: Path) -> str:
    "Copy MathJax into the site if `jupyter-server-mathjax` is installed; returns the URL notebooks use"
    mj = mathjax_dir()
    if not mj:
        print(
            "docs: warning: jupyter-server-mathjax is not installed; equations need MathJax's CDN"
        )
        return MATHJAX_CDN
    shutil.copytree(mj, docs / "assets" / "mathjax")
    (docs / "assets" / "mathjax" / "config" / "local").mkdir(exist_ok=True)
    (docs / "assets" / "mathjax" / "config" / "local" / "offline.js").write_text(MATHJAX_LOCAL)
    return f"assets/mathjax/MathJax.js?config={MATHJAX_CONFIG}"


def tidy_search_index(path: Path) -> None:
    "Drop notebook-page noise from search results: heading anchors (¶) and the copy button's text"
    if not path.exists():
        return
    idx = json.loads(path.read_text())
    for d in idx.get("docs", []):
        d["title"] = d.get("title", "").rstrip("¶").rstrip()
        d["text"] = d.get("text", "").replace("Copied! ", "")
    path.write_text(json.dumps(idx, separators=(",", ":")))


def run_mkdocs(tmp: Path, conf: dict) -> Path:
    "Render `tmp/docs` with mkdocs into `tmp/site`; raises with mkdocs' output on failure"
    (tmp / "mkdocs.yml").write_text(yaml.safe_dump(conf, sort_keys=False, allow_unicode=True))
    site = tmp / "site"
    cmd = [sys.executable, "-c", MKDOCS_RUN, "build", "-q", "-f", str(tmp / "mkdocs.yml")]
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    res = subprocess.run([*cmd, "-d", str(site)], cwd=tmp, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"docs: mkdocs build failed:\n{res.stdout}\n{res.stderr}")
    tidy_search_index(site / "search" / "search_index.json")
    ext = [e for e in external_refs(site) if MATHJAX_CDN.split("?")[0] not in e]
    if ext:
        raise RuntimeError("docs: pages reference online resources:\n" + "\n".join(ext[:20]))
    return site


def _cpu() -> float:
    "CPU seconds used so far by this process and its finished children (workers, mkdocs)"
    import resource

    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def build(out: Path, root: Path = ROOT, jobs: int | None = None, keep: Path | None = None) -> Path:
    "Build the site into `out` (replaced); returns `out`. Raises with the notebook's name on failure"
    from nbdev.config import get_config

    t0, cpu0 = time.perf_counter(), _cpu()
    root = root.resolve()
    cfg = get_config(path=root)
    lib_path = Path(cfg.lib_path)
    lib = lib_path.name
    nbs = notebook_paths(Path(cfg.nbs_path))
    index = Path(cfg.nbs_path) / "index.ipynb"
    if not index.exists():
        raise FileNotFoundError(f"docs: {index} (the home page) is missing")
    pages = {nb: page_name(nb) for nb in nbs}
    dup = {p for p in pages.values() if list(pages.values()).count(p) > 1 or p == "index"}
    if dup:
        raise ValueError(f"docs: notebooks map to the same page name(s) {sorted(dup)}: rename them")
    pages[index] = "index"
    raw = {nb: json.loads(nb.read_text()) for nb in pages}
    modules = {nb: default_exp(raw[nb]) for nb in pages}
    modidx = load_modidx(lib_path)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    # One worker by default: the notebooks then share their heavy imports (torch, ase, pyscf, ...),
    # several times faster on our 2-core machines than a process per core importing everything again.
    with _executor(jobs or 1) as ex:
        processed = process_notebooks(ex, list(pages), root)
        t1 = time.perf_counter()
        shown = {pages[nb]: shown_symbols(processed[nb], modules[nb], lib) for nb in pages}
        titles = {nb: nav_title(nb, frontmatter(processed[nb])) for nb in nbs}
        lessons = {
            f"{lib}.{modules[nb]}": (f"{pages[nb]}.ipynb", titles[nb]) for nb in nbs if modules[nb]
        }
        api_job = importlib.import_module("build_docs")._api_worker
        fut = ex.submit(api_job, str(root), str(lib_path), lessons, set().union(*shown.values()))
        links = link_map(modidx, cfg, shown, pages, lib)
        clean = {nb: clean_notebook(processed[nb], modules[nb], lib, links) for nb in pages}
        symbols, api = fut.result()
    cpu1 = _cpu()
    if links.missing:
        print(f"docs: warning: links to notebooks that do not exist: {sorted(links.missing)}")
    t2 = time.perf_counter()

    tmp = Path(tempfile.mkdtemp(prefix="mlp-docs-"))
    try:
        docs = tmp / "docs"
        (docs / API_DIR).mkdir(parents=True)
        (docs / "assets").mkdir()
        for nb, nbj in clean.items():
            (docs / f"{pages[nb]}.ipynb").write_text(json.dumps(nbj, indent=1, ensure_ascii=False))
        for fname, text in api.items():
            (docs / API_DIR / fname).write_text(text)
        (docs / "assets" / "extra.css").write_text(EXTRA_CSS)
        nav = build_nav(nbs, titles, api)
        conf = mkdocs_config(cfg.title, cfg.get("description", ""), nav, add_mathjax(docs))
        site = run_mkdocs(tmp, conf)
        out = Path(out).resolve()
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(site, out)
        if keep:
            shutil.copytree(docs, keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t3, cpu2 = time.perf_counter(), _cpu()
    print(
        f"docs: {len(nbs)} notebooks + index, {len(symbols)} API modules "
        f"({sum(map(len, symbols.values()))} symbols) -> {out} in {t3 - t0:.1f} s "
        f"(nbdev processing {t1 - t0:.1f} s, cleaning + API pages {t2 - t1:.1f} s, mkdocs {t3 - t2:.1f} s; "
        f"CPU time {cpu1 - cpu0:.1f} s + {cpu2 - cpu1:.1f} s)"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="_site", help="output folder (replaced)")
    ap.add_argument("--root", default=str(ROOT), help="project root (holds pyproject.toml)")
    ap.add_argument("--jobs", type=int, default=None, help="parallel notebook processes")
    ap.add_argument(
        "--keep", default=None, help="also copy the staged mkdocs sources here (debugging)"
    )
    a = ap.parse_args(argv)
    try:
        build(Path(a.out), Path(a.root), a.jobs, Path(a.keep) if a.keep else None)
    except (RuntimeError, ValueError, FileNotFoundError) as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
