"""Run every example a reader sees: ```python blocks and >>> doctests of the pages (both
languages) and the doctests in the lesson modules' docstrings.

Only fences tagged exactly ```python are collected; code included from lessons/*.py is shown in
```python title="lessons/..." fences, which Sybil leaves alone — that code is tested through the
module itself (tests/test_<topic>.py and its docstrings).
"""

from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

from sybil import Sybil
from sybil.document import PythonDocStringDocument
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
from sybil.parsers.rest import DocTestParser

FLAGS = ELLIPSIS | NORMALIZE_WHITESPACE


def _seed(namespace):
    # every page starts from the same random state, whatever ran before it
    import torch

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(min(2, torch.get_num_threads()))


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
