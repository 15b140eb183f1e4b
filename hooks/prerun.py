"""MkDocs hook: execute every notebook once, two at a time, before its page is rendered.

mkdocs-jupyter executes a notebook while it renders that page, one page after another, and the
i18n plugin builds the languages one after the other, so a build used to run all notebooks
serially; most of each run is a kernel starting and importing torch. This hook starts every
notebook of ``docs/notebooks/`` (both languages) on the build's first ``on_config``, executes them
with nbclient in a small thread pool (each kernel is its own process), and hands mkdocs-jupyter
the executed notebook when it reads the source, with mkdocs-jupyter's own execution switched off.

Nothing else changes: the kernel starts in the repository root as before, and a failing cell
still fails the build (its error is raised when the page is rendered).
``RNN_NOTEBOOK_WORKERS`` sets the number of notebooks run at once (default 2).

Executed notebooks are cached in ``.cache/notebooks/`` under a key made of everything their
output depends on: the notebook's source, the source of every ``lessons`` module it imports
(followed through ``lessons.*`` imports of those modules, with ``lessons/datasets.py`` and
``lessons/plotting.py`` always in), the files under ``data/`` and ``benchmarks/results/`` and the
pinned ``requirements.txt``. A build (or ``mkdocs serve`` rebuild: mkdocs.yml watches ``lessons/``)
re-executes exactly the notebooks whose key changed. jupyter-cache keys a notebook on its own code
cells only, so it would serve stale output after a change to a lesson module; hence this key.
``RNN_NOTEBOOK_CACHE=0`` executes everything again; ``RNN_NOTEBOOK_CACHE_DIR`` moves the cache.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import jinja2
import jupytext
import nbclient
import nbformat
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs_jupyter import nbconvert2
from nbconvert.exporters.templateexporter import TemplateExporter
from traitlets.config import Config

ROOT = Path(__file__).resolve().parent.parent
_runs: dict[Path, Future] = {}
_keys: dict[Path, str] = {}
_pool: ThreadPoolExecutor | None = None
_IMPORT = re.compile(r"^\s*(?:from\s+lessons\.(\w+)\s+import|from\s+lessons\s+import\s+([\w, ()]+)|import\s+lessons\.(\w+))",
                     re.MULTILINE)
_ALWAYS = ("datasets", "plotting")  # shared by every notebook (data, figure settings)


def _lesson_imports(source: str) -> set[str]:
    names = set()
    for one, many, plain in _IMPORT.findall(source):
        names |= {one or plain} if (one or plain) else {n.strip(" ()") for n in many.split(",")}
    return {n for n in names if n}


def _key(path: Path) -> str:
    """A hash of everything the executed notebook's outputs depend on."""
    digest = hashlib.sha256(path.read_bytes())
    seen, todo = set(), set(_ALWAYS) | _lesson_imports(path.read_text(encoding="utf-8"))
    while todo:
        name = todo.pop()
        module = ROOT / "lessons" / f"{name}.py"
        if name in seen or not module.exists():
            continue
        seen.add(name)
        todo |= _lesson_imports(module.read_text(encoding="utf-8"))
    files = [ROOT / "lessons" / f"{n}.py" for n in sorted(seen)] + [ROOT / "requirements.txt"]
    for folder in ("data", "benchmarks/results"):
        files += sorted(f for f in (ROOT / folder).rglob("*") if f.is_file())
    for file in files:
        if file.exists():
            digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:20]


def _cache_dir() -> Path | None:
    if os.environ.get("RNN_NOTEBOOK_CACHE", "1") == "0":
        return None
    return Path(os.environ.get("RNN_NOTEBOOK_CACHE_DIR", ROOT / ".cache" / "notebooks"))


def _cached_execute(path: Path, key: str):
    cache = _cache_dir()
    hit = cache / f"{path.name}.{key}.ipynb" if cache else None
    if hit is not None and hit.exists():
        return nbformat.read(hit, as_version=4)
    nb = _execute(path)
    if hit is not None:
        cache.mkdir(parents=True, exist_ok=True)
        for stale in cache.glob(f"{path.name}.*.ipynb"):
            stale.unlink()
        tmp = hit.with_suffix(".tmp")  # written whole, then renamed: never a half-written cache entry
        nbformat.write(nb, tmp)
        tmp.replace(hit)
    return nb


def _execute(path: Path):
    nb = jupytext.read(path)
    config = Config()
    # without it ipykernel logs "Kernel is running over TCP without encryption" on every run
    config.KernelManager.transport_encryption = "auto"
    client = nbclient.NotebookClient(
        nb,
        config=config,
        kernel_name="python3",
        timeout=900,
        allow_errors=False,
        resources={"metadata": {"path": str(ROOT)}},  # notebooks import lessons/ from here
    )
    client.execute()
    # An error while *displaying* an output (e.g. a figure that cannot be drawn) does not fail
    # the cell, only shows up as an error output: fail the build on those too.
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else ():
            if output.get("output_type") == "error":
                raise RuntimeError(f"{path}: {output['ename']}: {output['evalue']}\n{cell.source}")
    return nb


class _SharedBytecode(jinja2.BytecodeCache):
    """nbconvert builds a new Jinja environment for every notebook page and compiles its templates
    again each time (about 15 % of a build); the compiled templates are kept here for all of them
    (Jinja checks each against its source's checksum)."""

    def __init__(self) -> None:
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


def _share_compiled_templates() -> None:
    create = TemplateExporter._create_environment
    if getattr(create, "shares_bytecode", False):
        return
    shared = _SharedBytecode()

    def _create_environment(self):
        environment = create(self)
        environment.bytecode_cache = shared
        return environment

    _create_environment.shares_bytecode = True
    TemplateExporter._create_environment = _create_environment


class _ExecutedJupytext:
    """Stands in for the ``jupytext`` module inside mkdocs_jupyter.nbconvert2."""

    def __getattr__(self, name):
        return getattr(jupytext, name)

    def read(self, path, *args, **kwargs):
        run = _runs.get(Path(path).resolve())
        if run is None:
            return jupytext.read(path, *args, **kwargs)
        return copy.deepcopy(run.result())  # re-raises a failing cell's error here


@event_priority(100)
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    global _pool
    jupyter = config.plugins.get("mkdocs-jupyter")
    if jupyter is None or not jupyter.config.get("execute"):
        return config
    if _pool is None:
        workers = int(os.environ.get("RNN_NOTEBOOK_WORKERS", "2"))
        _pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="notebook")
        nbconvert2.jupytext = _ExecutedJupytext()
        _share_compiled_templates()
    notebooks = sorted((Path(config.docs_dir) / "notebooks").glob("*.py"))
    # the default language's notebooks first: its build renders them first
    notebooks.sort(key=lambda p: (len(p.suffixes) > 1, p.name))
    for path in notebooks:
        path, key = path.resolve(), _key(path)
        if _keys.get(path) != key:  # new, or changed since the last (serve) build
            _keys[path], _runs[path] = key, _pool.submit(_cached_execute, path, key)
    jupyter.config["execute"] = False  # already executed above
    return config
