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
"""

from __future__ import annotations

import copy
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import jupytext
import nbclient
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs_jupyter import nbconvert2
from traitlets.config import Config

ROOT = Path(__file__).resolve().parent.parent
_runs: dict[Path, Future] = {}
_pool: ThreadPoolExecutor | None = None


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
        notebooks = sorted((Path(config.docs_dir) / "notebooks").glob("*.py"))
        # the default language's notebooks first: its build renders them first
        notebooks.sort(key=lambda p: (len(p.suffixes) > 1, p.name))
        workers = int(os.environ.get("RNN_NOTEBOOK_WORKERS", "2"))
        _pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="notebook")
        for path in notebooks:
            _runs[path.resolve()] = _pool.submit(_execute, path)
        nbconvert2.jupytext = _ExecutedJupytext()
    jupyter.config["execute"] = False  # already executed above
    return config
