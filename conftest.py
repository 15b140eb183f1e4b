"""Run every example a reader sees: ```python blocks and >>> doctests of the pages (both
languages) and the doctests in the lesson modules' docstrings.

Only fences tagged exactly ```python are collected; code included from lessons/*.py is shown in
```python title="lessons/..." fences, which Sybil leaves alone — that code is tested through the
module itself (tests/test_<topic>.py and its docstrings).
"""

import os
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

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


pages = Sybil(
    name="pages",
    parsers=[SkipParser(), PythonCodeBlockParser(doctest_optionflags=FLAGS)],
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
