"""hooks/prerun.py's cache of executed notebooks: the key follows what a notebook's outputs depend on."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

import lightning_checks as lk

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def prerun(tmp_path, monkeypatch):
    """The hook, pointed at a copy of the repository's lessons, data and notebooks in tmp_path."""
    for folder in ("lessons", "docs/notebooks", "benchmarks/results"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copy(ROOT / "requirements.txt", tmp_path)
    module = lk.load_script(ROOT / "hooks" / "prerun.py", "prerun_under_test")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setenv("RNN_NOTEBOOK_CACHE_DIR", str(tmp_path / "cache"))
    return module


def test_imports_of_lessons_are_found_in_every_form(prerun):
    source = "from lessons.rnn import RNN\nfrom lessons import gru, lstm\nimport lessons.bptt as b\nimport torch\n"
    assert prerun._lesson_imports(source) == {"rnn", "gru", "lstm", "bptt"}


def test_the_key_changes_with_the_notebook_and_the_lessons_it_imports_only(prerun, tmp_path):
    rnn_nb, conv_nb = tmp_path / "docs/notebooks/rnn.py", tmp_path / "docs/notebooks/conv1d.py"
    before = prerun._key(rnn_nb), prerun._key(conv_nb)
    with open(tmp_path / "lessons/rnn.py", "a") as f:
        f.write("\n# a change\n")
    after = prerun._key(rnn_nb), prerun._key(conv_nb)
    assert after[0] != before[0] and after[1] == before[1]  # conv1d's notebook does not import lessons.rnn
    with open(tmp_path / "lessons/datasets.py", "a") as f:
        f.write("\n# shared by all\n")
    assert prerun._key(conv_nb) != after[1]
    with open(conv_nb, "a") as f:
        f.write("\n# %%\n1 + 1\n")
    assert prerun._key(conv_nb) != prerun._key(tmp_path / "docs/notebooks/conv1d.en.py")


def test_a_hit_is_read_back_and_a_miss_executes_and_replaces_the_old_entry(prerun, tmp_path, monkeypatch):
    calls = []

    def fake_execute(path):
        calls.append(path)
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])

    monkeypatch.setattr(prerun, "_execute", fake_execute)
    path = tmp_path / "docs/notebooks/rnn.py"
    first = prerun._cached_execute(path, "aaa")
    again = prerun._cached_execute(path, "aaa")
    assert len(calls) == 1 and again.cells[0].source == first.cells[0].source == "1 + 1"
    prerun._cached_execute(path, "bbb")
    assert len(calls) == 2
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["rnn.py.bbb.ipynb"]
    monkeypatch.setenv("RNN_NOTEBOOK_CACHE", "0")
    prerun._cached_execute(path, "bbb")
    assert len(calls) == 3
