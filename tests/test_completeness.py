"""Every lesson is complete: module, pages, notebooks, API pages, tests and nav entries.

A lesson ``<topic>`` is any top-level nav page ``<topic>.md`` other than the home page and the
glossary, and any module ``lessons/<topic>.py`` other than the shared ``lessons/datasets.py``. Each
needs ``lessons/<topic>.py``, ``docs/<topic>.md`` and ``.en.md``, ``docs/notebooks/<topic>.py`` and
``.en.py``, ``docs/api/<topic>.md`` and ``.en.md`` (with ``::: lessons.<topic>``) and
``tests/test_<topic>.py``; the page, the notebook and the API page are in the nav. Lesson modules
say how to run them, import only the standard library, torch, pytorch_lightning and torchmetrics
(never ``lessons.*``: each file can be copied on its own), and keep the Lightning shape of
``templates/lesson.py``. Every ``--8<--`` include names a file and region that exist.

Parsed with ``ast`` and ``yaml`` only: nothing is imported or built.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs_tools as dt  # noqa: E402

ROOT, DOCS = dt.ROOT, dt.DOCS
LESSONS_DIR = ROOT / "lessons"
TEMPLATES = ROOT / "templates"
MKDOCS_YML = ROOT / "mkdocs.yml"

NON_LESSON_PAGES = {"index", "glossary", "appendix", "licenses"}  # top-level nav pages that are not lessons
# Shared modules, not lessons: lessons/datasets.py (data for pages, notebooks and tests) and
# lessons/plotting.py (the notebooks' figure settings); what each may import besides the standard library.
SHARED_MODULES = {"datasets", "plotting"}
SHARED_ALLOWED = {"torch"}
SHARED_IMPORTS = {"datasets": SHARED_ALLOWED | {"pytorch_lightning"}, "plotting": set()}
TEMPLATE_TOPIC = "topic"  # the placeholder name used throughout templates/


def load_nav() -> list[str] | None:
    if not MKDOCS_YML.exists():
        return None
    config = dt.load_yaml(MKDOCS_YML.read_text(encoding="utf-8")) or {}
    return dt.nav_paths(config.get("nav")) if config.get("nav") else None


NAV = load_nav()
MODULES = sorted(p for p in LESSONS_DIR.glob("*.py") if p.stem != "__init__")
LESSON_MODULES = [p for p in MODULES if p.stem not in SHARED_MODULES]
NAV_TOPICS = [p[: -len(".md")] for p in NAV or [] if "/" not in p and p.endswith(".md")]
LESSONS = sorted(
    {t for t in NAV_TOPICS if t not in NON_LESSON_PAGES} | {p.stem for p in LESSON_MODULES}
)
PAGES = sorted(DOCS.rglob("*.md"))


def check(problems: list[str]) -> None:
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def lesson_files(topic: str) -> list[str]:
    return [
        f"lessons/{topic}.py",
        f"docs/{topic}.md",
        f"docs/{topic}.en.md",
        f"docs/notebooks/{topic}.py",
        f"docs/notebooks/{topic}.en.py",
        f"docs/api/{topic}.md",
        f"docs/api/{topic}.en.md",
        f"tests/test_{topic}.py",
    ]


def module_problems(source: str, path: str, allowed: set[str], to_run: bool = True) -> list[str]:
    out = dt.import_problems(source, path, allowed)
    if to_run:
        out += dt.docstring_problems(source, path)
    elif not ast.get_docstring(ast.parse(source)):
        out.append(f"{path}: no module docstring")
    out += dt.lightning_problems(source, path)
    if to_run:  # lesson modules and the template (shared modules such as datasets.py are exempt)
        out += dt.design_problems(source, path)
    out += dt.regions(source, path)[1]
    return out


def include_problems(page: dt.Page, resolve=lambda path: ROOT / path) -> list[str]:
    out = []
    for inc in page.includes:
        path, region = dt.split_include(inc.target)
        file = resolve(path)
        if not file.is_file():
            out.append(f"{page.path}:{inc.line}: included file {path!r} does not exist")
            continue
        if region is not None:
            done, _ = dt.regions(file.read_text(encoding="utf-8"), path)
            if region not in done:
                out.append(
                    f"{page.path}:{inc.line}: {path} has no region {region!r} "
                    f"('# --8<-- [start:{region}]' … '# --8<-- [end:{region}]')"
                )
    return out


# --------------------------------------------------------------------------------------------
# The real site
# --------------------------------------------------------------------------------------------


def test_mkdocs_nav_exists() -> None:
    assert MKDOCS_YML.exists(), "mkdocs.yml is missing"
    assert NAV, "mkdocs.yml has no nav"


def test_nav_pages_exist() -> None:
    if not NAV:
        pytest.skip("no nav (test_mkdocs_nav_exists fails)")
    check([f"mkdocs.yml: nav entry {p!r} has no file docs/{p}" for p in NAV if not (DOCS / p).is_file()])


def test_glossary_in_nav() -> None:
    assert NAV and "glossary.md" in NAV, "glossary.md is not in the nav of mkdocs.yml"


def test_there_are_lessons() -> None:
    assert LESSONS, "no lesson found (neither a lesson page in the nav nor a lessons/<topic>.py)"


@pytest.mark.parametrize("topic", LESSONS)
def test_lesson_files_exist(topic: str) -> None:
    check([f"lesson {topic!r}: {f} is missing" for f in lesson_files(topic) if not (ROOT / f).is_file()])


@pytest.mark.parametrize("topic", LESSONS)
def test_lesson_in_nav(topic: str) -> None:
    if NAV is None:
        pytest.fail("mkdocs.yml or its nav is missing", pytrace=False)
    wanted = [f"{topic}.md", f"notebooks/{topic}.py", f"api/{topic}.md"]
    check([f"lesson {topic!r}: {w!r} is not in the nav of mkdocs.yml" for w in wanted if w not in NAV])


@pytest.mark.parametrize("topic", LESSONS)
def test_api_pages_document_the_module(topic: str) -> None:
    problems = []
    for name in (f"{topic}.md", f"{topic}.en.md"):
        path = DOCS / "api" / name
        if not path.is_file():
            problems.append(f"docs/api/{name} is missing")
            continue
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        if f"::: lessons.{topic}" not in lines:
            problems.append(f"docs/api/{name} has no line '::: lessons.{topic}'")
    check(problems)


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_lesson_module(path: Path) -> None:
    """Docstring with 'To run:', allowed imports only, Lightning shape, balanced regions."""
    shared = path.stem in SHARED_MODULES
    allowed = SHARED_IMPORTS[path.stem] if shared else dt.ALLOWED_THIRD_PARTY
    check(module_problems(path.read_text(encoding="utf-8"), dt.rel(path), allowed, to_run=not shared))


def test_package_init_imports_nothing_else() -> None:
    init = LESSONS_DIR / "__init__.py"
    if init.exists():
        check(dt.import_problems(init.read_text(encoding="utf-8"), dt.rel(init), set()))


@pytest.mark.parametrize("path", PAGES, ids=[dt.rel(p) for p in PAGES])
def test_included_regions_exist(path: Path) -> None:
    check(include_problems(dt.read_page(path)))


# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------

TEMPLATE_FILES = ["lesson.md", "lesson.en.md", "lesson.py", "notebook.py", "notebook.en.py", "test_lesson.py"]


def test_template_files_exist() -> None:
    check([f"templates/{f} is missing" for f in TEMPLATE_FILES if not (TEMPLATES / f).is_file()])


def test_template_module_has_the_lesson_shape() -> None:
    path = TEMPLATES / "lesson.py"
    source = path.read_text(encoding="utf-8")
    problems = module_problems(source, "templates/lesson.py", dt.ALLOWED_THIRD_PARTY)
    classes = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef)]
    bases = {ast.unparse(b) for c in classes for b in c.bases}
    problems += [f"templates/lesson.py: no class derived from {b}" for b in ("nn.Module", "pl.LightningModule") if b not in bases]
    if "if __name__ == \"__main__\":" not in source:
        problems.append("templates/lesson.py: no __main__ block")
    check(problems)


@pytest.mark.parametrize("name", ["lesson.md", "lesson.en.md"])
def test_template_pages_include_template_regions(name: str) -> None:
    """The template pages include regions that templates/lesson.py defines."""

    def resolve(path: str) -> Path:
        return TEMPLATES / "lesson.py" if path == f"lessons/{TEMPLATE_TOPIC}.py" else ROOT / path

    page = dt.read_page(TEMPLATES / name)
    assert page.includes, f"templates/{name} includes no region"
    check(include_problems(page, resolve))


def test_template_test_imports_the_lesson() -> None:
    tree = ast.parse((TEMPLATES / "test_lesson.py").read_text(encoding="utf-8"))
    imported = {
        f"{n.module}.{a.name}" if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in n.names
    }
    assert any(name.startswith(f"lessons.{TEMPLATE_TOPIC}") for name in imported), imported
    tests = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    assert len(tests) >= 4, tests


# --------------------------------------------------------------------------------------------
# The checks catch what they should (inline bad examples)
# --------------------------------------------------------------------------------------------

GOOD_MODULE = '''\
"""A lesson.

To run:
    python lessons/good.py
"""
from __future__ import annotations

import argparse

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn


# --8<-- [start:model]
class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x
# --8<-- [end:model]


class System(pl.LightningModule):
    def __init__(self, model: nn.Module, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model

    def forward(self, x):
        return x

    def _step(self, batch, stage):
        return torch.zeros(())

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx):
        return self(batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


if __name__ == "__main__":
    import sys
'''


def test_good_module_passes() -> None:
    assert module_problems(GOOD_MODULE, "good.py", dt.ALLOWED_THIRD_PARTY) == []
    assert dt.regions(GOOD_MODULE, "good.py") == ({"model"}, [])


def test_bad_imports_are_caught() -> None:
    bad = GOOD_MODULE + "    import numpy as np\n    from lessons.datasets import x\n    from . import rnn\n    import lightning\n"
    problems = dt.import_problems(bad, "bad.py", dt.ALLOWED_THIRD_PARTY)
    assert [p.split(": ", 1)[1].split(";")[0] for p in problems] == [
        "imports numpy", "imports lessons.datasets", "relative import", "imports lightning",
    ]
    assert dt.import_problems("import pytorch_lightning\n", "datasets.py", SHARED_ALLOWED)


def test_missing_docstring_and_to_run_are_caught() -> None:
    assert dt.docstring_problems("import torch\n", "a.py") == ["a.py: no module docstring"]
    assert dt.docstring_problems('"""A lesson.\n\nRun it with python."""\n', "a.py") == [
        "a.py: the module docstring has no 'To run:' line"
    ]


def test_bad_lightning_shape_is_caught() -> None:
    swapped = GOOD_MODULE.replace("def validation_step", "def tmp_v").replace("def test_step", "def validation_step")
    swapped = swapped.replace("def tmp_v", "def test_step")
    assert any("hooks in order" in p for p in dt.lightning_problems(swapped, "a.py"))
    no_hparams = GOOD_MODULE.replace("self.save_hyperparameters(ignore=[\"model\"])", "pass")
    assert any("save_hyperparameters" in p for p in dt.lightning_problems(no_hparams, "a.py"))
    no_shared = GOOD_MODULE.replace('return self._step(batch, "train")', "return torch.zeros(())")
    assert any("training_step does not call self._step" in p for p in dt.lightning_problems(no_shared, "a.py"))
    no_step = GOOD_MODULE.replace("def _step(self, batch, stage)", "def shared(self, batch, stage)")
    assert any("no shared _step" in p for p in dt.lightning_problems(no_step, "a.py"))


def test_unbalanced_regions_are_caught() -> None:
    source = "# --8<-- [start:a]\n# --8<-- [end:b]\n# --8<-- [start:c]\n"
    done, problems = dt.regions(source, "a.py")
    assert done == set()
    assert problems == [
        "a.py:2: region 'b' ends without a start",
        "a.py:1: region 'a' never ends",
        "a.py:3: region 'c' never ends",
    ]


def test_missing_include_targets_are_caught(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(GOOD_MODULE, encoding="utf-8")
    text = '```python title="m.py"\n--8<-- "m.py:model"\n--8<-- "m.py:nope"\n--8<-- "gone.py"\n--8<-- "m.py:3:5"\n```\n'
    problems = include_problems(dt.scan_markdown(dt.numbered(text), "p.md"), lambda p: tmp_path / p)
    assert problems == [
        "p.md:3: m.py has no region 'nope' ('# --8<-- [start:nope]' … '# --8<-- [end:nope]')",
        "p.md:4: included file 'gone.py' does not exist",
    ]


def test_nav_parsing_tolerates_python_tags() -> None:
    text = """\
nav:
  - 홈: index.md
  - 순환 신경망(RNN): rnn.md
  - 실습:
      - notebooks/rnn.py
      - GitHub: https://github.com/example/x
markdown_extensions:
  - toc:
      slugify: !!python/object/apply:pymdownx.slugs.slugify
        kwds:
          case: lower
  - pymdownx.superfences:
      custom_fences:
        - format: !!python/name:pymdownx.superfences.fence_code_format
plugins:
  - something: !ENV [HOME, x]
"""
    config = dt.load_yaml(text)
    assert dt.nav_paths(config["nav"]) == ["index.md", "rnn.md", "notebooks/rnn.py"]
    assert config["markdown_extensions"][0]["toc"]["slugify"] == {"kwds": {"case": "lower"}}


def test_split_include() -> None:
    assert dt.split_include("lessons/rnn.py:cell") == ("lessons/rnn.py", "cell")
    assert dt.split_include("lessons/rnn.py") == ("lessons/rnn.py", None)
    assert dt.split_include("lessons/rnn.py:3:10") == ("lessons/rnn.py", None)


def test_plumbing_and_incomplete_systems_are_caught() -> None:
    no_predict = GOOD_MODULE.replace("    def predict_step(self, batch, batch_idx):\n        return self(batch)\n\n", "")
    assert any("predict_step" in p for p in module_problems(no_predict, "m.py", dt.ALLOWED_THIRD_PARTY))
    registry = GOOD_MODULE.replace("model: nn.Module", 'model: str = "rnn"')
    assert any("takes no model" in p for p in module_problems(registry, "m.py", dt.ALLOWED_THIRD_PARTY))
    helper = GOOD_MODULE.replace("class System(", "def fit(system):\n    pass\n\n\nclass System(")
    assert any("defines fit" in p for p in module_problems(helper, "m.py", dt.ALLOWED_THIRD_PARTY))
    long = GOOD_MODULE + "\n" * 400
    assert any("at most 350" in p for p in module_problems(long, "m.py", dt.ALLOWED_THIRD_PARTY))


def repeated_definitions(sources: dict[str, str]) -> list[str]:
    """A top-level function or class that several lesson modules define must be the same code in all
    of them (CONTRIBUTING: the repeats we chose), so that a fix made in one copy reaches the others."""
    seen: dict[str, dict[str, str]] = {}
    for module, source in sources.items():
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name not in {"main"}:
                seen.setdefault(node.name, {})[module] = ast.unparse(node)
    problems = []
    for name, copies in sorted(seen.items()):
        first, *others = sorted(copies)
        problems += [f"lessons/{m}.py: {name} differs from lessons/{first}.py's (copies of a chosen repeat stay identical)"
                     for m in others if copies[m] != copies[first]]
    return problems


def test_repeated_definitions_are_identical() -> None:
    check(repeated_definitions({p.stem: p.read_text(encoding="utf-8") for p in LESSON_MODULES}))


def test_layer_machinery_is_in_every_layer_module() -> None:
    """The machinery that runs a cell over packed, stacked, bidirectional input is in each layer module."""
    names = {"_map", "_as_padded", "_reverse", "_scan", "_restore"}
    for topic in ("rnn", "lstm", "gru"):
        tree = ast.parse((LESSONS_DIR / f"{topic}.py").read_text(encoding="utf-8"))
        assert names <= {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, topic


def test_drifted_copy_is_caught() -> None:
    a = "def split_batch(batch):\n    return batch\n"
    assert repeated_definitions({"a": a, "b": a}) == []
    assert repeated_definitions({"a": a, "b": a.replace("batch\n", "batch[0]\n")}) == [
        "lessons/b.py: split_batch differs from lessons/a.py's (copies of a chosen repeat stay identical)"]


def test_template_runs_and_passes_its_own_tests(tmp_path: Path) -> None:
    """Copied as CONTRIBUTING says, the template lesson and its test pass (so a new lesson starts green)."""
    import shutil
    import subprocess

    (tmp_path / "lessons").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "lessons" / "__init__.py").write_text("")
    shutil.copy(TEMPLATES / "lesson.py", tmp_path / "lessons" / "topic.py")
    shutil.copy(TEMPLATES / "test_lesson.py", tmp_path / "tests" / "test_topic.py")
    shutil.copy(ROOT / "tests" / "lightning_checks.py", tmp_path / "tests" / "lightning_checks.py")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                             "-W", "ignore::DeprecationWarning", "tests"],
                            cwd=tmp_path, capture_output=True, text=True, env={**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{tmp_path / 'tests'}"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
