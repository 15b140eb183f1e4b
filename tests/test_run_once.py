"""The pages' examples run once per process (conftest.RunOnce): an example that equals, after the
same examples, one that passed on another page passes with it; anything else runs, and a page that
departs from its twin first runs what it took over, so its own namespace is complete."""

from __future__ import annotations

from pathlib import Path

import pytest
from sybil import Sybil
from sybil.example import SybilFailure
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

import lightning_checks as lk

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_once(monkeypatch):
    module = lk.load_script(ROOT / "conftest.py", "root_conftest")
    monkeypatch.setattr(module.RunOnce, "enabled", True)
    return module


def page(tmp_path: Path, name: str, *blocks: str) -> str:
    path = tmp_path / name
    path.write_text("\n\n".join(f"```python\n{b}\n```" for b in blocks) + "\n", encoding="utf-8")
    return str(path)


def evaluate(module, path: str, runs: list[str]) -> None:
    """Evaluate every example of the page at ``path`` as pytest would; record each one computed."""
    sybil = Sybil(parsers=[SkipParser(), module.run_once(PythonCodeBlockParser())], path=".")
    document = sybil.parse(Path(path))
    for example in document:
        inner = example.region.evaluator.evaluator

        def counted(ex, inner=inner):
            runs.append(f"{Path(ex.path).name}:{ex.line}")
            return inner(ex)
        example.region.evaluator.evaluator = counted
    for example in document:
        example.evaluate()


def test_a_twin_page_passes_with_the_page_it_equals(run_once, tmp_path):
    blocks = ("x = 20", ">>> x + 1\n21")
    ko, en = page(tmp_path, "a.md", *blocks), page(tmp_path, "a.en.md", *blocks)
    runs: list[str] = []
    evaluate(run_once, ko, runs)
    evaluate(run_once, en, runs)
    assert runs == ["a.md:1", "a.md:6"]
    assert run_once.RunOnce.reused == 2


def test_a_page_that_departs_runs_what_it_took_over_first(run_once, tmp_path):
    ko = page(tmp_path, "b.md", "x = 20", ">>> x + 1\n21", ">>> x * 2\n40")
    en = page(tmp_path, "b.en.md", "x = 20", ">>> x + 2\n22", ">>> x * 2\n40")
    runs: list[str] = []
    evaluate(run_once, ko, runs)
    evaluate(run_once, en, runs)
    # en's first example equals ko's and is taken over; its second differs, so the first runs again
    # before it (x must exist), and everything after a difference runs, equal text or not
    assert runs == ["b.md:1", "b.md:6", "b.md:11", "b.en.md:1", "b.en.md:6", "b.en.md:11"]
    assert run_once.RunOnce.reused == 0


def test_a_wrong_output_still_fails(run_once, tmp_path):
    ko = page(tmp_path, "c.md", "x = 20", ">>> x + 1\n21")
    en = page(tmp_path, "c.en.md", "x = 20", ">>> x + 1\n22")
    evaluate(run_once, ko, [])
    with pytest.raises(SybilFailure, match="Expected:\\s+22\\s+Got:\\s+21"):
        evaluate(run_once, en, [])


def test_an_example_that_failed_is_not_taken_over(run_once, tmp_path):
    blocks = ("x = 20", ">>> x + 1\n99")
    ko, en = page(tmp_path, "d.md", *blocks), page(tmp_path, "d.en.md", *blocks)
    for path in (ko, en):  # both fail: the failure is not remembered as a pass
        with pytest.raises(SybilFailure):
            evaluate(run_once, path, [])
    assert run_once.RunOnce.reused == 0  # `x = 20` was taken over, then run again before the failing one


def test_the_same_example_after_different_ones_runs(run_once, tmp_path):
    ko = page(tmp_path, "e.md", "x = 20", ">>> x\n20")
    en = page(tmp_path, "e.en.md", "x = 30", ">>> x\n20")
    evaluate(run_once, ko, [])
    with pytest.raises(SybilFailure, match="Got:\\s+30"):
        evaluate(run_once, en, [])


def test_rerun_identical_runs_everything(run_once, tmp_path, monkeypatch):
    monkeypatch.setattr(run_once.RunOnce, "enabled", False)
    blocks = ("x = 20", ">>> x + 1\n21")
    runs: list[str] = []
    evaluate(run_once, page(tmp_path, "f.md", *blocks), runs)
    evaluate(run_once, page(tmp_path, "f.en.md", *blocks), runs)
    assert len(runs) == 4 and run_once.RunOnce.reused == 0
