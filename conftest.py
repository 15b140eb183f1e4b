"""Run every example a reader sees: ```python blocks and >>> doctests of the pages (both
languages) and the doctests in the lesson modules' docstrings.

Only fences tagged exactly ```python are collected; code included from lessons/*.py is shown in
```python title="lessons/..." fences, which Sybil leaves alone — that code is tested through the
module itself (tests/test_<topic>.py and its docstrings).
"""

import hashlib
import os
import weakref
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

import pytest

# One thread per process for the whole run: pytest and the background site build (whose
# notebook kernels inherit this environment) share the machine's cores, and two processes with
# two threads each on two cores make the small ops of these lessons 10-100x slower.
# Set before anything imports torch; an explicit setting in the environment wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from sybil import Sybil
from sybil.document import PythonDocStringDocument
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
from sybil.parsers.rest import DocTestParser

FLAGS = ELLIPSIS | NORMALIZE_WHITESPACE


def _seed(namespace):
    # every page starts from the same random state, whatever ran before it
    import logging
    import warnings

    import torch

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    # pages build pl.Trainer themselves; the "GPU available" banner and Lightning's hints about
    # worker processes say nothing on a page (the modules readers copy stay untouched)
    for name in ("pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


class RunOnce:
    """Evaluate a page's example once per process: an example whose code and expected output, and
    those of every example before it on its page, equal ones that already passed on another page
    (its twin in the other language: the two run in one worker, see pytest_xdist_make_scheduler)
    passes with them instead of computing the same thing again. Where a page departs from its twin,
    the examples taken over so far run first, so the page's namespace is built exactly as its own
    examples build it. RNN_RERUN_IDENTICAL=1 runs every example."""

    passed: set[str] = set()  # keys of the examples that passed in this process
    reused = 0
    enabled = os.environ.get("RNN_RERUN_IDENTICAL") != "1"

    def __init__(self, evaluator) -> None:
        self.evaluator = evaluator

    @staticmethod
    def text(parsed) -> str:
        if isinstance(parsed, str):
            return parsed
        return f"{parsed.source}\0{parsed.want}\0{sorted(parsed.options.items())}"  # a doctest example

    def __call__(self, example):
        state = _page_state.setdefault(example.document, {"key": "", "taken_over": []})
        state["key"] = hashlib.sha256(f"{state['key']}\0{self.text(example.parsed)}".encode()).hexdigest()
        if self.enabled and state["key"] in RunOnce.passed:
            state["taken_over"].append(example)
            RunOnce.reused += 1
            return None
        for earlier in state["taken_over"]:
            RunOnce.reused -= 1  # counted are the examples that never ran
            failure = earlier.region.evaluator.evaluator(earlier)
            if failure:
                return f"line {earlier.line}, run again before line {example.line}: {failure}"
        state["taken_over"].clear()
        failure = self.evaluator(example)
        if not failure:
            RunOnce.passed.add(state["key"])
        return failure


_page_state: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def run_once(parser):
    def parse(document):
        for region in parser(document):
            region.evaluator = RunOnce(region.evaluator)
            yield region
    return parse


pages = Sybil(
    name="pages",
    parsers=[SkipParser(), run_once(PythonCodeBlockParser(doctest_optionflags=FLAGS))],
    path="docs",
    patterns=["*.md"],
    setup=_seed,
)

docstrings = Sybil(
    name="docstrings",
    parsers=[DocTestParser(optionflags=FLAGS)],
    path="lessons",
    patterns=["*.py"],
    document_types={".py": PythonDocStringDocument},
    setup=_seed,
)

pytest_collect_file = (pages + docstrings).pytest()


def _unit(path: str) -> str:
    """The work unit of a test file: a page and its English twin are one (see RunOnce)."""
    return path.replace(".en.md", ".md") if path.startswith("docs/") else path


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest runs without xdist too (-p no:xdist)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile``, with a page and its twin handed to the same worker."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class PagePairs(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(super()._split_scope(nodeid))

    return PagePairs(config, log)


def pytest_collection_modifyitems(session, config, items):
    """Hand the longest work out first: ``make test`` gives work units (a test file; a page with its
    twin) to its workers in this order (pytest-xdist ``--dist loadfile --no-loadscope-reorder``). The
    files that test the built site take the longest (those with the most browser tests first), and
    they wait for the background build without using a core, so each starts beside a unit that
    computes. The rest follow, those with the most tests first. A Korean page runs before its English
    twin, and a file's own tests keep their order (a page's examples build on each other)."""
    units: dict[str, list] = {}
    for item in items:
        units.setdefault(_unit(item.nodeid.split("::")[0]), []).append(item)
    for name, its in units.items():  # the Korean page first (stable: each file's order is kept)
        its.sort(key=lambda item: item.nodeid.split("::")[0].endswith(".en.md"))
    site = sorted((u for u, its in units.items() if any("site_dir" in getattr(i, "fixturenames", ())
                                                          for i in its)),
                  key=lambda u: -sum(1 for i in units[u] if i.get_closest_marker("browser")))
    rest = sorted((u for u in units if u not in site), key=lambda u: -len(units[u]))
    order = []
    for i, name in enumerate(rest):
        if site and i % 4 == 0:  # apart: two site units at once would both wait for the build
            order.append(site.pop(0))
        order.append(name)
    order += site
    items[:] = [item for name in order for item in units[name]]


def pytest_terminal_summary(terminalreporter) -> None:
    reused = RunOnce.reused + getattr(terminalreporter.config, "_rnn_reused", 0)
    if reused:
        terminalreporter.write_line(
            f"pages: {reused} examples were the same, after the same examples, as ones that had passed on "
            "their twin page, and passed with them (RNN_RERUN_IDENTICAL=1 runs them again)")


def pytest_sessionfinish(session) -> None:
    if hasattr(session.config, "workeroutput"):  # an xdist worker: tell the controller
        session.config.workeroutput["rnn_reused"] = RunOnce.reused


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    config = node.config
    reused = getattr(node, "workeroutput", {}).get("rnn_reused", 0)  # none from a worker that crashed
    config._rnn_reused = getattr(config, "_rnn_reused", 0) + reused
