"""The Korean and English versions of every page and notebook say the same thing in the same shape.

For each ``docs/**/x.md`` / ``x.en.md`` pair (and ``templates/lesson.md`` / ``lesson.en.md``): same
heading ids and levels, identical code blocks, same included regions, figures and link targets, in
the same order. For each ``docs/notebooks/x.py`` / ``x.en.py`` pair: identical code cells except the
``LANG = "ko"`` / ``LANG = "en"`` line, and the same Markdown heading ids. Korean prose uses the
terms of the glossary (``docs/glossary.md``). The helpers live in ``tests/docs_tools.py``; the unit
tests at the end prove each check catches what it is meant to catch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs_tools as dt  # noqa: E402

ROOT, DOCS = dt.ROOT, dt.DOCS
TEMPLATES = ROOT / "templates"

PAGES = sorted([*DOCS.rglob("*.md"), *TEMPLATES.glob("*.md")])
NOTEBOOKS = sorted([*(DOCS / "notebooks").rglob("*.py"), *TEMPLATES.glob("notebook*.py")])
KO_PAGES = [p for p in PAGES if not dt.is_english(p)]
KO_NOTEBOOKS = [p for p in NOTEBOOKS if not dt.is_english(p)]
GLOSSARY_KO, GLOSSARY_EN = DOCS / "glossary.md", DOCS / "glossary.en.md"
# Korean prose outside docs/ that follows the glossary too.
OTHER_KO_PROSE = [p for p in (ROOT / "CONTRIBUTING.md", ROOT / ".github" / "pull_request_template.md") if p.exists()]

# Terms the course cannot do without; the glossary must keep a row for each.
REQUIRED_TERMS = [
    "recurrent neural network (RNN)", "hidden state", "time step", "weight", "bias", "input", "output",
    "unroll", "sequence", "batch", "loss", "gradient", "vanishing gradient", "exploding gradient",
    "backpropagation", "backpropagation through time (BPTT)", "activation function", "one-hot encoding",
    "embedding", "vocabulary", "many-to-one", "one-to-many", "many-to-many", "part-of-speech tagging",
    "sentiment analysis", "weight sharing", "cell", "gate", "long short-term memory (LSTM)",
    "gated recurrent unit (GRU)", "epoch", "learning rate", "overfitting", "training set",
    "validation set", "test set",
]


def ids(paths: list[Path]) -> list[str]:
    return [dt.rel(p) for p in paths]


def check(problems: list[str]) -> None:
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def glossary_terms() -> list[dt.Term]:
    if not GLOSSARY_KO.exists():
        pytest.fail(f"{dt.rel(GLOSSARY_KO)} is missing", pytrace=False)
    return dt.parse_glossary(GLOSSARY_KO.read_text(encoding="utf-8"), dt.KO_GLOSSARY_HEADER)


# --------------------------------------------------------------------------------------------
# The real pages
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES + NOTEBOOKS, ids=ids(PAGES + NOTEBOOKS))
def test_translation_exists(path: Path) -> None:
    other = dt.counterpart(path)
    assert other.exists(), f"{dt.rel(path)} has no {'Korean' if dt.is_english(path) else 'English'} version {dt.rel(other)}"


@pytest.mark.parametrize("path", PAGES, ids=ids(PAGES))
def test_page_headings_have_ids(path: Path) -> None:
    check(dt.heading_problems(dt.read_page(path)))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_notebook_headings_have_ids(path: Path) -> None:
    check(dt.heading_problems(dt.read_notebook(path)[1]))


@pytest.mark.parametrize("path", PAGES, ids=ids(PAGES))
def test_includes_are_display_only(path: Path) -> None:
    check(dt.include_fence_problems(dt.read_page(path)))


@pytest.mark.parametrize("path", KO_PAGES, ids=ids(KO_PAGES))
def test_page_parity(path: Path) -> None:
    en = dt.counterpart(path)
    if not en.exists():
        pytest.skip(f"no {dt.rel(en)} (test_translation_exists fails for it)")
    check(dt.page_parity_problems(dt.read_page(path), dt.read_page(en)))


@pytest.mark.parametrize("path", KO_NOTEBOOKS, ids=ids(KO_NOTEBOOKS))
def test_notebook_parity(path: Path) -> None:
    en = dt.counterpart(path)
    if not en.exists():
        pytest.skip(f"no {dt.rel(en)} (test_translation_exists fails for it)")
    ko_cells, _ = dt.read_notebook(path)
    en_cells, _ = dt.read_notebook(en)
    check(dt.notebook_parity_problems(ko_cells, dt.rel(path), en_cells, dt.rel(en)))


def test_glossary_is_consistent() -> None:
    terms = glossary_terms()
    problems = dt.glossary_self_problems(terms)
    have = {t.english for t in terms}
    problems += [f"{dt.rel(GLOSSARY_KO)}: no row for {name!r}" for name in REQUIRED_TERMS if name not in have]
    problems += glossary_anchor_problems(terms)
    check(problems)


def glossary_anchor_problems(terms: list[dt.Term]) -> list[str]:
    """Each term's link goes to a heading that exists on a Korean page (the English page has the same ids)."""
    out, ids_of = [], {}
    for t in terms:
        link = dt.glossary_link(t)
        if not link:
            continue  # reported by glossary_self_problems
        page, anchor = link
        if page not in ids_of:
            path = DOCS / page
            ids_of[page] = {h.id for h in dt.read_page(path).headings} if path.exists() else None
        if ids_of[page] is None:
            out.append(f"{dt.rel(GLOSSARY_KO)}:{t.line}: {t.english!r} links to a missing page {page}")
        elif anchor not in ids_of[page]:
            out.append(f"{dt.rel(GLOSSARY_KO)}:{t.line}: {t.english!r} links to {page}#{anchor}, which has no such heading id")
    return out


def test_glossary_tables_match() -> None:
    ko = glossary_terms()
    assert GLOSSARY_EN.exists(), f"{dt.rel(GLOSSARY_EN)} is missing"
    en = dt.parse_glossary(GLOSSARY_EN.read_text(encoding="utf-8"), dt.EN_GLOSSARY_HEADER)
    assert en, f"{dt.rel(GLOSSARY_EN)}: no table with header {' | '.join(dt.EN_GLOSSARY_HEADER)}"
    check(dt.diff_sequences("Glossary rows", dt.rel(GLOSSARY_KO), ko, dt.rel(GLOSSARY_EN), en, key=dt.Term.row, show=dt.Term.show))


KO_PROSE = [p for p in KO_PAGES if p != GLOSSARY_KO] + KO_NOTEBOOKS + OTHER_KO_PROSE


@pytest.mark.parametrize("path", KO_PROSE, ids=ids(KO_PROSE))
def test_korean_prose_uses_glossary_terms(path: Path) -> None:
    page = dt.read_notebook(path)[1] if path.suffix == ".py" else dt.read_page(path)
    check(dt.variant_problems(page.prose, glossary_terms(), dt.rel(path)))


# --------------------------------------------------------------------------------------------
# The checks catch what they should (inline bad examples)
# --------------------------------------------------------------------------------------------

KO_PAGE = """\
# 순환 신경망 { #rnn }

은닉 상태(hidden state)를 다룹니다. [용어집](glossary.md)

## 코드 { #code }

```python title="lessons/rnn.py"
--8<-- "lessons/rnn.py:cell"
```

```python
>>> 1 + 1
2
```

![펼친 RNN](figures/unrolled.svg)
"""

EN_PAGE = """\
# Recurrent neural networks { #rnn }

About the hidden state. See the [glossary](glossary.md).

## The code { #code }

```python title="lessons/rnn.py"
--8<-- "lessons/rnn.py:cell"
```

```python
>>> 1 + 1
2
```

![Unrolled RNN](figures/unrolled.svg)
"""


def page(text: str, name: str = "x.md") -> dt.Page:
    return dt.scan_markdown(dt.numbered(text), name)


def test_good_pair_has_no_problems() -> None:
    ko, en = page(KO_PAGE, "ko.md"), page(EN_PAGE, "en.md")
    assert dt.page_parity_problems(ko, en) == []
    assert dt.heading_problems(ko) == dt.heading_problems(en) == []
    assert dt.include_fence_problems(ko) == []
    assert [i.target for i in ko.includes] == ["lessons/rnn.py:cell"]
    assert [i.target for i in ko.images] == ["figures/unrolled.svg"]
    assert [i.target for i in ko.links] == ["glossary.md"]
    assert [(h.level, h.id) for h in ko.headings] == [(1, "rnn"), (2, "code")]


def test_drifted_code_block_is_caught() -> None:
    en = page(EN_PAGE.replace(">>> 1 + 1\n2", ">>> 1 + 2\n3"), "en.md")
    problems = dt.page_parity_problems(page(KO_PAGE, "ko.md"), en)
    assert problems[0].startswith("Code blocks differ")
    assert any(p.strip() == "->>> 1 + 1" for p in problems), problems
    assert any(p.strip() == "+>>> 1 + 2" for p in problems), problems


def test_changed_fence_info_is_caught() -> None:
    en = page(EN_PAGE.replace('```python title="lessons/rnn.py"', "```py"), "en.md")
    problems = dt.page_parity_problems(page(KO_PAGE, "ko.md"), en)
    assert any(p.startswith("Code blocks differ") for p in problems)


def test_missing_and_bad_ids_are_caught() -> None:
    text = "# 제목\n\n## 둘 { #Two_Words }\n\n## 셋 { #same }\n\n## 넷 { #same }\n\n본문\n---\n"
    problems = dt.heading_problems(page(text))
    assert any("x.md:1: heading without an id" in p for p in problems), problems
    assert any("'Two_Words' is not lowercase" in p for p in problems)
    assert any("'same' already used on line 5" in p for p in problems)
    assert any("x.md:9: setext heading" in p for p in problems)


def test_heading_id_syntaxes() -> None:
    text = "# A {#a}\n## B { #b .cls }\n### C {: #c }\n#### D ## { #d }\n#hashtag is not a heading\n"
    assert [(h.level, h.id, h.text) for h in page(text).headings] == [
        (1, "a", "A"), (2, "b", "B"), (3, "c", "C"), (4, "d", "D"),
    ]


def test_headings_in_fences_and_comments_are_ignored() -> None:
    text = "# T { #t }\n\n```python\n# a comment\n```\n\n<!--\n# hidden\n-->\n~~~~\n# tilde\n~~~~\n"
    assert [h.id for h in page(text).headings] == ["t"]


def test_heading_order_and_level_drift_are_caught() -> None:
    ko = page("# A { #a }\n## B { #b }\n## C { #c }\n", "ko.md")
    assert dt.page_parity_problems(ko, page("# A { #a }\n## C { #c }\n## B { #b }\n", "en.md"))
    assert dt.page_parity_problems(ko, page("# A { #a }\n## B { #b }\n### C { #c }\n", "en.md"))


def test_include_link_and_figure_drift_are_caught() -> None:
    ko = page(KO_PAGE, "ko.md")
    for old, new, what in [
        ('"lessons/rnn.py:cell"', '"lessons/rnn.py:layer"', "Included regions"),
        ("(glossary.md)", "(glossary.en.md)", "Link targets"),
        ("(figures/unrolled.svg)", "(figures/unrolled-en.svg)", "Figures"),
    ]:
        problems = dt.page_parity_problems(ko, page(EN_PAGE.replace(old, new), "en.md"))
        assert any(p.startswith(what) for p in problems), (what, problems)


def test_links_and_images_forms() -> None:
    text = (
        "[a](one.md) and [![i](img.png)](two.md \"t\") and <https://example.org/x>\n"
        "`[not](a-link.md)` and [wiki](https://en.wikipedia.org/wiki/RNN_(x))\n"
        '<img src="fig.svg" alt="x"> <a href="three.md">t</a>\n'
        "[ref]: four.md\n"
        "[^1]: a footnote\n"
    )
    p = page(text)
    assert [r.target for r in p.links] == [
        "one.md", "two.md", "https://example.org/x", "https://en.wikipedia.org/wiki/RNN_(x)", "three.md", "four.md",
    ]
    assert [r.target for r in p.images] == ["img.png", "fig.svg"]


def test_include_in_python_fence_is_caught() -> None:
    text = (
        '```python\n--8<-- "lessons/rnn.py:cell"\n```\n\n--8<-- "lessons/rnn.py:cell"\n'
        ';--8<-- "escaped.py"\n--8<-- "docs/snippets/abbreviations.md"\n'
    )
    problems = dt.include_fence_problems(page(text))
    assert len(problems) == 2
    assert "inside a ```python fence" in problems[0]
    assert "outside a fence" in problems[1]


def test_block_include_form() -> None:
    text = '```python title="lessons/rnn.py"\n--8<--\nlessons/rnn.py:cell\nlessons/rnn.py:layer\n--8<--\n```\n'
    p = page(text)
    assert [(i.target, i.fence) for i in p.includes] == [
        ("lessons/rnn.py:cell", 'python title="lessons/rnn.py"'),
        ("lessons/rnn.py:layer", 'python title="lessons/rnn.py"'),
    ]


def test_unclosed_fence_is_caught() -> None:
    assert any("never closed" in p for p in dt.heading_problems(page("# A { #a }\n```python\n>>> 1\n")))


def test_indented_fences_in_admonitions() -> None:
    ko = page('!!! note "메모"\n\n    ```python\n    >>> 1\n    1\n    ```\n', "ko.md")
    en = page('!!! note "Note"\n\n    ```python\n    >>> 1\n    1\n    ```\n', "en.md")
    assert ko.fences == [dt.Fence("python", (">>> 1", "1"), 3)]
    assert dt.page_parity_problems(ko, en) == []


KO_NOTEBOOK = """\
# %% [markdown]
# # 실습 { #lab }
# 은닉 상태를 그립니다.

# %%
LANG = "ko"
import math

# %% [markdown]
# ## 결과 { #results }

# %%
print(math.pi)
"""


def en_notebook(text: str = KO_NOTEBOOK) -> str:
    return (
        text.replace('LANG = "ko"', 'LANG = "en"')
        .replace("# # 실습 { #lab }", "# # Lab { #lab }")
        .replace("# 은닉 상태를 그립니다.", "# We plot the hidden state.")
        .replace("# ## 결과 { #results }", "# ## Results { #results }")
    )


def notebook_problems(ko: str, en: str) -> list[str]:
    return dt.notebook_parity_problems(dt.parse_percent(ko), "ko.py", dt.parse_percent(en), "en.py")


def test_notebook_parser() -> None:
    cells = dt.parse_percent(KO_NOTEBOOK)
    assert [c.kind for c in cells] == ["markdown", "code", "markdown", "code"]
    assert cells[0].lines == ((2, "# 실습 { #lab }"), (3, "은닉 상태를 그립니다."))
    assert cells[1].code() == ('LANG = "ko"', "import math")
    md = dt.notebook_markdown(cells, "ko.py")
    assert [(h.level, h.id, h.line) for h in md.headings] == [(1, "lab", 2), (2, "results", 10)]


def test_good_notebook_pair_has_no_problems() -> None:
    assert notebook_problems(KO_NOTEBOOK, en_notebook()) == []


def test_notebook_code_drift_is_caught() -> None:
    problems = notebook_problems(KO_NOTEBOOK, en_notebook().replace("print(math.pi)", 'print("pi", math.pi)'))
    assert problems and problems[0].startswith("Code cells differ")
    assert any(p.strip() == '+print("pi", math.pi)' for p in problems), problems


def test_notebook_lang_line_is_checked() -> None:
    assert any('LANG = "en" in a ko notebook' in p for p in notebook_problems(en_notebook(), en_notebook()))
    twice = KO_NOTEBOOK.replace("import math", 'import math\nLANG = "ko"')
    assert any("2 LANG lines" in p for p in notebook_problems(twice, en_notebook(twice)))


def test_notebook_heading_drift_is_caught() -> None:
    problems = notebook_problems(KO_NOTEBOOK, en_notebook().replace("{ #results }", "{ #result }"))
    assert any(p.startswith("Markdown heading ids") for p in problems)


GLOSSARY = """\
# 용어집 { #glossary }

| 영어 용어 | 한국어 용어 | 뜻 | 처음 나오는 곳 | 쓰지 않는 표현 |
|---|---|---|---|---|
| hidden state | 은닉 상태 | 시점마다 넘기는 벡터 | [수식](rnn.md#equation) | 숨겨진 상태, 은닉상태 |
| loss | 손실 | 예측과 정답의 거리 | [손실](bptt.md#losses) | 로스 |
| cross-entropy | 교차 엔트로피 | 분류 손실 | [손실](bptt.md#losses) | 크로스 엔트로피 |
| gradient | 기울기 | 손실의 변화율 | [학습](bptt.md#training) | 그래디언트 |
| vanishing gradient | 기울기 소실 | 기울기가 0으로 | [소실](bptt.md#vanishing-exploding) | 그래디언트 소실 |
| gate | 게이트 | 곱하는 0~1 벡터 | [수식](lstm.md#equations) | |
"""


def test_glossary_parser() -> None:
    terms = dt.parse_glossary(GLOSSARY, dt.KO_GLOSSARY_HEADER)
    assert [t.row() for t in terms][:2] == [
        ("hidden state", "은닉 상태", ("숨겨진 상태", "은닉상태")),
        ("loss", "손실", ("로스",)),
    ]
    assert terms[-1].variants == ()
    assert dt.glossary_self_problems(terms) == []
    en = GLOSSARY.replace("| 영어 용어 | 한국어 용어 | 뜻 | 처음 나오는 곳 | 쓰지 않는 표현 |",
                          "| English term | Korean term | Meaning | Introduced in | Avoid |")
    assert [t.row() for t in dt.parse_glossary(en, dt.EN_GLOSSARY_HEADER)] == [t.row() for t in terms]


def test_glossary_row_drift_is_caught() -> None:
    ko = dt.parse_glossary(GLOSSARY, dt.KO_GLOSSARY_HEADER)
    en = dt.parse_glossary(GLOSSARY.replace("| 로스 |", "| 로스, 로쓰 |"), dt.KO_GLOSSARY_HEADER)
    assert dt.diff_sequences("Glossary rows", "ko", ko, "en", en, key=dt.Term.row, show=dt.Term.show)


def test_glossary_that_flags_its_own_terms_is_caught() -> None:
    # "은닉" as a variant of hidden layer would flag every 은닉 상태; "전파" is harmless for
    # 역전파 because a variant only matches at the start of a word.
    bad = GLOSSARY + (
        "| hidden layer | 은닉층 | 층 | [a](a.md#b) | 은닉 |\n| backpropagation | 역전파 | 역 | [a](a.md#b) | 전파 |\n"
        "| loss | 손실2 | | 없음 | |\n"
    )
    problems = dt.glossary_self_problems(dt.parse_glossary(bad, dt.KO_GLOSSARY_HEADER))
    assert any("variant '은닉' (hidden layer) matches inside the preferred term '은닉 상태'" in p for p in problems), problems
    assert not any("'전파'" in p for p in problems), problems
    assert any("english term 'loss' already" in p for p in problems), problems
    assert any("no definition for 'loss'" in p for p in problems), problems
    assert any("'loss' needs a link" in p for p in problems), problems


def test_variant_terms_are_caught() -> None:
    terms = dt.parse_glossary(GLOSSARY, dt.KO_GLOSSARY_HEADER)
    text = (
        "# 제목 { #t }\n\n"
        "RNN의 은닉상태를 봅니다.\n"  # line 3
        "크로스 엔트로피로 로스를 구합니다.\n"  # line 4: two variants; 로스 inside 크로스 is not one
        "그래디언트  소실이 일어납니다.\n"  # line 5: longest variant, any run of spaces
        "`은닉상태`와 [링크](은닉상태.md)는 괜찮습니다.\n"  # line 6: inline code, link target
        "```python\n# 숨겨진 상태\n```\n"  # code is not prose
        "<!-- 숨겨진 상태 -->\n"
        "은닉 상태, 교차 엔트로피, 손실, 기울기 소실은 바른 용어입니다.\n"
    )
    problems = dt.variant_problems(page(text, "ko.md").prose, terms, "ko.md")
    assert problems == [
        "ko.md:3: '은닉상태' -> write '은닉 상태' (hidden state)",
        "ko.md:4: '크로스 엔트로피' -> write '교차 엔트로피' (cross-entropy)",
        "ko.md:4: '로스' -> write '손실' (loss)",
        "ko.md:5: '그래디언트 소실' -> write '기울기 소실' (vanishing gradient)",
    ]


def test_variant_terms_in_notebook_markdown_are_caught() -> None:
    terms = dt.parse_glossary(GLOSSARY, dt.KO_GLOSSARY_HEADER)
    nb = KO_NOTEBOOK.replace("# 은닉 상태를 그립니다.", "# 숨겨진 상태를 그립니다.").replace(
        "import math", "import math  # 로스"
    )
    md = dt.notebook_markdown(dt.parse_percent(nb), "ko.py")
    assert dt.variant_problems(md.prose, terms, "ko.py") == ["ko.py:3: '숨겨진 상태' -> write '은닉 상태' (hidden state)"]


def test_counterpart() -> None:
    assert dt.counterpart(Path("docs/rnn.md")) == Path("docs/rnn.en.md")
    assert dt.counterpart(Path("docs/rnn.en.md")) == Path("docs/rnn.md")
    assert dt.counterpart(Path("docs/notebooks/rnn.py")) == Path("docs/notebooks/rnn.en.py")
    assert dt.counterpart(Path("docs/notebooks/rnn.en.py")) == Path("docs/notebooks/rnn.py")


def test_hidden_label_cells_may_differ_only_in_their_strings() -> None:
    ko = KO_NOTEBOOK.replace("# %%\nprint", '# %% tags=["remove-cell"]\nTEXT = {"pi": "원주율"}\n\n# %%\nprint')
    en = en_notebook(ko).replace('"원주율"', '"pi"')
    assert notebook_problems(ko, en) == []
    assert notebook_problems(ko, en.replace('TEXT = {"pi"', 'TEXT = {"pi", 1: "x"')) != []  # code still compared
    visible = ko.replace(' tags=["remove-cell"]', ""), en.replace(' tags=["remove-cell"]', "")
    assert notebook_problems(*visible) != []  # a visible cell's strings are compared as they are
