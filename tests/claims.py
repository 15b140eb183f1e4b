"""What a page quotes from a benchmark, checked on the committed run and on a fresh one.

Each lesson's test file writes its page's claims once, as a function of a run's results, and calls
it twice: by default on the committed results file (the page and the file agree), and under
``-m slow`` on a run the test makes itself (the numbers still come out of the code). A fresh run on
another CPU differs in the last digits, so quoted numbers are compared exactly (as rounded on the
page) for the committed file and within a relative ``tol`` for a fresh run; the conclusions are the same asserts.
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def committed(name: str) -> dict:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def check_quoted(actual: dict, quoted: dict, tol: float | None, digits: int = 2) -> None:
    """``actual`` and ``quoted`` map the same keys to numbers; ``tol=None``: equal as rounded on the page."""
    if tol is None:
        assert {k: round(v, digits) for k, v in actual.items()} == quoted
    else:
        far = {k: (v, quoted[k]) for k, v in actual.items() if abs(v - quoted[k]) > tol * max(1.0, abs(quoted[k]))}
        assert not far, f"fresh run far from the page (relative tolerance {tol}): {far}"
