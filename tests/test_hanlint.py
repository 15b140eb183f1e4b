"""The Korean pages pass hanlint, the Korean prose linter, apart from reviewed false positives.

hanlint (pinned in ``requirements.txt``) runs once over every Korean Markdown page under ``docs/``
(lessons, API pages, glossary, home; never ``*.en.md``) and reports its errors: translationese
(``~에 대한``, ``~을 위해``), chains of 의, dangling 이것/이를, en and em dashes, and so on. Its
notices (sentence rhythm, no question marks) are style advice and are not checked.

A finding either gets fixed in the page or, when hanlint is wrong, gets an entry in
``tests/hanlint-baseline.json`` with the reason. Entries match by (file, rule, the sentence hanlint
quotes, whitespace-normalised), never by line number, so edits elsewhere on a page keep them valid.
The test fails on a finding that no entry covers, and on an entry that no longer matches any finding
(stale: the sentence was rewritten or the page fixed), so the baseline lists only live false positives.

To see the findings of one page: ``.venv/bin/hanlint lint docs/rnn.md --errors-only``;
``hanlint explain <rule>`` tells why a rule exists.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BASELINE = Path(__file__).resolve().parent / "hanlint-baseline.json"
KO_PAGES = sorted(p for p in DOCS.rglob("*.md") if not p.name.endswith(".en.md"))


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    rule: str
    text: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.file, self.rule, self.text)

    def show(self) -> str:
        return f"{self.file}:{self.line}: [{self.rule}] {self.text}"


def normalise(text: str) -> str:
    return " ".join(text.split())


def parse_report(report: dict) -> list[Finding]:
    """Errors of a ``hanlint lint --format json`` report; notices are left out."""
    return [
        Finding(f["path"], int(x["line"]), x["rule"], normalise(x.get("quote", "")))
        for f in report["files"]
        for x in f["findings"]
        if x.get("severity") == "error"
    ]


def run_hanlint(paths: list[Path]) -> list[Finding]:
    cmd = [sys.executable, "-m", "hanlint", "lint", *(str(p.relative_to(ROOT)) for p in paths),
           "--format", "json", "--errors-only", "--quiet", "--no-color"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, encoding="utf-8", timeout=120)
    if proc.returncode not in (0, 1):  # 0: no error, 1: errors found, 2: bad input or settings
        pytest.fail(f"hanlint failed ({proc.returncode}):\n{proc.stderr}", pytrace=False)
    return parse_report(json.loads(proc.stdout))


def load_baseline(path: Path = BASELINE) -> list[dict]:
    entries = json.loads(path.read_text(encoding="utf-8"))["entries"]
    for e in entries:
        assert set(e) == {"file", "rule", "text", "reason"}, f"baseline entry needs file, rule, text, reason: {e}"
        assert e["reason"].strip(), f"baseline entry without a reason: {e}"
    return entries


def compare(findings: list[Finding], entries: list[dict]) -> list[str]:
    """New findings (no entry covers them) and stale entries (they match no finding)."""
    allowed = {(e["file"], e["rule"], normalise(e["text"])) for e in entries}
    found = {f.key for f in findings}
    problems = [f"{f.show()}\n    fix the sentence, or add a reviewed false positive to {BASELINE.name}"
                for f in findings if f.key not in allowed]
    problems += [f"stale {BASELINE.name} entry (matches no finding; remove it): "
                 f"{e['file']} [{e['rule']}] {normalise(e['text'])}"
                 for e in entries if (e["file"], e["rule"], normalise(e["text"])) not in found]
    return problems


def test_korean_pages_pass_hanlint() -> None:
    assert KO_PAGES, "no Korean pages found"
    problems = compare(run_hanlint(KO_PAGES), load_baseline())
    if problems:
        pytest.fail(f"{len(problems)} hanlint problem(s):\n" + "\n".join(problems), pytrace=False)


def test_baseline_is_sorted_and_unique() -> None:
    keys = [(e["file"], e["rule"], normalise(e["text"])) for e in load_baseline()]
    assert len(keys) == len(set(keys)), "duplicate baseline entries"
    assert keys == sorted(keys), "keep the baseline sorted by file, rule, text"


# --------------------------------------------------------------------------------------------
# The check catches what it should
# --------------------------------------------------------------------------------------------

REPORT = {
    "files": [
        {"path": "docs/a.md", "findings": [
            {"rule": "translationese", "line": 3, "severity": "error", "quote": "폭주에 대한\n처방입니다."},
            {"rule": "imperativePeriod", "line": 9, "severity": "error", "quote": "합시다."},
            {"rule": "noQuestion", "line": 1, "severity": "notice", "quote": "제목"},
        ]},
    ],
}


def test_report_keeps_errors_only_and_normalises_quotes() -> None:
    assert parse_report(REPORT) == [
        Finding("docs/a.md", 3, "translationese", "폭주에 대한 처방입니다."),
        Finding("docs/a.md", 9, "imperativePeriod", "합시다."),
    ]


def test_new_and_stale_are_caught_whatever_the_line() -> None:
    findings = parse_report(REPORT)
    entry = {"file": "docs/a.md", "rule": "imperativePeriod", "text": "합시다.", "reason": "2015 rules"}
    stale = {"file": "docs/a.md", "rule": "euiChain", "text": "고친 문장입니다.", "reason": "was wrong"}
    problems = compare(findings, [entry, stale])
    assert len(problems) == 2
    assert problems[0].startswith("docs/a.md:3: [translationese] 폭주에 대한 처방입니다.")
    assert problems[1].startswith("stale") and "[euiChain] 고친 문장입니다." in problems[1]
    moved = [Finding("docs/a.md", 40, "imperativePeriod", "합시다.")]  # same sentence, other line
    assert compare(moved, [entry]) == []
