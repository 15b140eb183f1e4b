"""Parsing helpers for the parity and completeness tests.

Plain Python (``re``, ``ast``, ``difflib``, ``yaml``): no MkDocs build and no torch import, so the
checks that use them run in well under a second.

What the parsers understand (the conventions the pages must follow):

* headings: ATX only (``## 은닉 상태 { #hidden-state }``), the id in a trailing attribute list
  ``{ #id }`` / ``{#id}`` / ``{: #id .class }``; ids are lowercase ASCII words joined by ``-``.
  A setext heading (a line of ``===`` or ``---`` under a paragraph line) counts as a heading
  without an id.
* fenced code: backtick or tilde fences of three or more, indented or not (admonitions, content
  tabs); the info string is everything after the fence characters.
* includes: pymdownx.snippets lines ``--8<-- "path"`` (or single quotes) and the block form
  (a bare ``--8<--`` line, one path per line, a closing ``--8<--``); ``;--8<--`` is an escape.
* images: ``![alt](src)`` and ``<img src="...">``; links: ``[text](target)``, ``<https://...>``,
  ``<a href="...">`` and reference definitions ``[name]: target``. Targets are kept as written.
* notebooks: jupytext percent format; ``# %%`` starts a code cell, ``# %% [markdown]`` (or
  ``[md]``) a Markdown cell whose lines are commented with ``# ``.
"""

from __future__ import annotations

import ast
import difflib
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# --------------------------------------------------------------------------------------------
# Markdown pages
# --------------------------------------------------------------------------------------------

ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_ATX = re.compile(r"^ {0,3}(?P<hashes>#{1,6})(?:[ \t]+(?P<text>.*?))?[ \t]*$")
_ATTR_LIST = re.compile(r"^(?P<text>.*?)[ \t]*\{:?(?P<attrs>[^{}]*)\}[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(?P<underline>=+|-+)[ \t]*$")
# A line that cannot be the text of a setext heading (list item, table row, quote, admonition,
# content tab, math, HTML, blank).
_NOT_PARAGRAPH = re.compile(r"^\s*(?:$|[-*+] |\d+[.)] |\||>|!!!|\?\?\?|===|\$\$|<|#)")
_SNIPPET_INLINE = re.compile(
    r"""^[ \t]*(?P<escape>;*)-+8<-+[ \t]+(?P<quote>["'])(?P<target>.+?)(?P=quote)[ \t]*$"""
)
_SNIPPET_BLOCK = re.compile(r"^[ \t]*(?P<escape>;*)-+8<-+[ \t]*$")
_INLINE_CODE = re.compile(r"(?P<ticks>`+)(?!`)(?P<code>.+?)(?<!`)(?P=ticks)(?!`)")
_HTML_COMMENT = re.compile(r"<!--.*?-->")
# A link destination: no spaces, parentheses only balanced one level deep.
_DEST = r"<?(?P<target>(?:[^()\s<>]|\([^()\s]*\))*)>?(?:[ \t]+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?[ \t]*"
_BRACKETED = r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]"
_IMAGE = re.compile(r"!" + _BRACKETED + r"\(" + _DEST + r"\)")
_LINK = re.compile(r"(?<!!)" + _BRACKETED + r"\(" + _DEST + r"\)")
_HTML_IMG = re.compile(r"""<img\b[^>]*?\bsrc\s*=\s*(["'])(?P<target>[^"']+)\1""", re.I)
_HTML_A = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*(["'])(?P<target>[^"']+)\1""", re.I)
_AUTOLINK = re.compile(r"<(?P<target>(?:https?|mailto|ftp):[^>\s]+)>")
_REF_DEF = re.compile(r"^ {0,3}\[(?!\^)[^\]]+\]:[ \t]*<?(?P<target>\S+?)>?(?:[ \t]+.*)?$")


@dataclass(frozen=True)
class Heading:
    level: int
    id: str | None
    text: str
    line: int

    def show(self) -> str:
        return f"{'#' * self.level} {self.text} {{ #{self.id} }}" if self.id else f"{'#' * self.level} {self.text} (no id)"


@dataclass(frozen=True)
class Fence:
    info: str  # everything after the fence characters, whitespace-normalised
    body: tuple[str, ...]
    line: int

    @property
    def lang(self) -> str:
        return self.info.split()[0] if self.info.split() else ""

    def key(self) -> tuple[str, tuple[str, ...]]:
        if self.info.split()[:1] == ["mermaid"]:  # same shape; titles, descriptions and quoted labels are prose
            return (self.info, tuple(re.sub(r'"[^"]*"', '"…"', line) for line in self.body
                                     if not line.strip().startswith(("accTitle", "accDescr"))))
        return (self.info, self.body)

    def show(self) -> str:
        first = self.body[0] if self.body else ""
        return f"```{self.info}  {first[:60]!r}{' …' if len(self.body) > 1 else ''}"


@dataclass(frozen=True)
class Ref:
    """An include, image or link target as written, with where it is."""

    target: str
    line: int
    fence: str | None = None  # info string of the enclosing fence, for includes

    def show(self) -> str:
        return self.target


@dataclass
class Page:
    path: str
    headings: list[Heading] = field(default_factory=list)
    fences: list[Fence] = field(default_factory=list)
    includes: list[Ref] = field(default_factory=list)
    images: list[Ref] = field(default_factory=list)
    links: list[Ref] = field(default_factory=list)
    prose: list[tuple[int, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def extend(self, other: Page) -> None:
        for name in ("headings", "fences", "includes", "images", "links", "prose", "problems"):
            getattr(self, name).extend(getattr(other, name))


def numbered(text: str, start: int = 1) -> list[tuple[int, str]]:
    return list(enumerate(text.splitlines(), start))


def _heading(level: int, raw: str, line: int) -> Heading:
    raw = raw.strip()
    m = _ATTR_LIST.match(raw)
    hid = None
    if m:
        ids = [tok[1:] for tok in m.group("attrs").split() if tok.startswith("#")]
        hid = ids[0] if ids else None
        raw = m.group("text")
    raw = re.sub(r"[ \t]+#+$", "", raw).strip()  # optional closing hashes
    return Heading(level, hid, raw, line)


def _strip_inline_code(line: str) -> str:
    return _INLINE_CODE.sub(lambda m: " " * len(m.group(0)), line)


def scan_markdown(lines: Sequence[tuple[int, str]], path: str, front_matter: bool = True) -> Page:
    """Scan numbered Markdown lines; see the module docstring for what is recognised."""
    page = Page(path)
    items = list(lines)
    i = 0
    # YAML front matter: only its prose matters (for the glossary check).
    if front_matter and items and items[0][1].rstrip() == "---":
        for j in range(1, len(items)):
            if items[j][1].rstrip() in ("---", "..."):
                page.prose.extend(items[1:j])
                i = j + 1
                break

    fence: re.Match[str] | None = None
    fence_line = 0
    body: list[str] = []
    in_comment = False
    in_block_include = False
    prev_paragraph = False  # previous line could be the text of a setext heading

    for lineno, line in items[i:]:
        # Includes are recognised everywhere, inside fences too (that is where they belong).
        m_inc = _SNIPPET_INLINE.match(line)
        m_blk = _SNIPPET_BLOCK.match(line)
        fence_info = " ".join(fence.group("info").split()) if fence else None
        if m_inc and not m_inc.group("escape") and not in_block_include:
            page.includes.append(Ref(m_inc.group("target"), lineno, fence_info))
        elif m_blk and not m_blk.group("escape"):
            in_block_include = not in_block_include
        elif in_block_include and line.strip() and not line.lstrip().startswith(";"):
            page.includes.append(Ref(line.strip(), lineno, fence_info))

        if fence is not None:
            close = re.match(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*$", line)
            if (
                close
                and close.group("fence")[0] == fence.group("fence")[0]
                and len(close.group("fence")) >= len(fence.group("fence"))
            ):
                page.fences.append(Fence(fence_info or "", tuple(body), fence_line))
                fence = None
                prev_paragraph = False
                continue
            indent = fence.group("indent")
            body.append((line[len(indent) :] if line.startswith(indent) else line.lstrip()).rstrip())
            continue

        if in_comment:
            if "-->" in line:
                in_comment = False
                line = line.split("-->", 1)[1]
            else:
                continue
        line = _HTML_COMMENT.sub(" ", line)
        if "<!--" in line:
            in_comment = True
            line = line.split("<!--", 1)[0]

        m_open = _FENCE_OPEN.match(line)
        if m_open and not (m_open.group("fence")[0] == "`" and "`" in m_open.group("info")):
            fence, fence_line, body = m_open, lineno, []
            prev_paragraph = False
            continue

        m_atx = _ATX.match(line)
        if m_atx:
            page.headings.append(_heading(len(m_atx.group("hashes")), m_atx.group("text") or "", lineno))
            page.prose.append((lineno, _strip_inline_code(line)))
            prev_paragraph = False
            continue

        m_set = _SETEXT.match(line)
        if m_set and prev_paragraph:
            level = 1 if m_set.group("underline")[0] == "=" else 2
            page.headings.append(Heading(level, None, prev_text, lineno - 1))
            page.problems.append(
                f"{path}:{lineno - 1}: setext heading {prev_text!r}: write it as "
                f"'{'#' * level} text {{ #id }}'"
            )
            prev_paragraph = False
            continue

        text = _strip_inline_code(line)
        for m in _IMAGE.finditer(text):
            page.images.append(Ref(m.group("target"), lineno))
        for m in _HTML_IMG.finditer(text):
            page.images.append(Ref(m.group("target"), lineno))
        # Links in text order: inline links, HTML anchors, autolinks.
        found = []
        for rx in (_LINK, _HTML_A, _AUTOLINK):
            found += [(m.start(), m.group("target")) for m in rx.finditer(text)]
        m_ref = _REF_DEF.match(text)
        if m_ref:
            found.append((m_ref.start(), m_ref.group("target")))
        page.links.extend(Ref(target, lineno) for _, target in sorted(found))
        # Prose without link destinations (URLs are not prose).
        prose = _LINK.sub(lambda m: m.group(0)[: m.start("target") - m.start()], text)
        prose = _IMAGE.sub(lambda m: m.group(0)[: m.start("target") - m.start()], prose)
        page.prose.append((lineno, prose))
        prev_paragraph = not _NOT_PARAGRAPH.match(line) and not _SETEXT.match(line)
        prev_text = line.strip()

    if fence is not None:
        page.problems.append(f"{path}:{fence_line}: fence ```{fence_info} is never closed")
    if in_block_include:
        page.problems.append(f"{path}: a block '--8<--' include is never closed")
    return page


def read_page(path: Path) -> Page:
    return scan_markdown(numbered(path.read_text(encoding="utf-8")), rel(path))


def heading_problems(page: Page) -> list[str]:
    """Headings without an id, with a malformed id, or with an id used twice on the page."""
    out = list(page.problems)
    seen: dict[str, int] = {}
    for h in page.headings:
        if h.id is None:
            if not any(f":{h.line}: setext" in p for p in page.problems):
                out.append(f"{page.path}:{h.line}: heading without an id: {h.show()!r}; add '{{ #some-id }}'")
        elif not ID_RE.match(h.id):
            out.append(f"{page.path}:{h.line}: heading id {h.id!r} is not lowercase-ascii-with-dashes")
        elif h.id in seen:
            out.append(f"{page.path}:{h.line}: heading id {h.id!r} already used on line {seen[h.id]}")
        else:
            seen[h.id] = h.line
    return out


def include_fence_problems(page: Page) -> list[str]:
    """Code included outside a fence, or inside a fence tagged exactly ``python`` (Sybil would run it).

    Includes of non-code files (a shared Markdown snippet) may stand outside fences.
    """
    out = []
    for inc in page.includes:
        if inc.fence is None and split_include(inc.target)[0].endswith(".py"):
            out.append(
                f"{page.path}:{inc.line}: include {inc.target!r} outside a fence; put it in "
                f'```python title="{inc.target.split(":")[0]}"'
            )
        elif inc.fence == "python":
            out.append(
                f"{page.path}:{inc.line}: include {inc.target!r} inside a ```python fence (Sybil would run it); "
                f'use ```python title="{inc.target.split(":")[0]}"'
            )
    return out


# --------------------------------------------------------------------------------------------
# Comparing the two languages
# --------------------------------------------------------------------------------------------


def diff_sequences(
    what: str,
    ko_path: str,
    ko_items: Sequence[Any],
    en_path: str,
    en_items: Sequence[Any],
    key: Callable[[Any], Any] = lambda x: x.target,
    show: Callable[[Any], str] = lambda x: x.show(),
) -> list[str]:
    """Problems (empty when equal) listing what differs, with file:line on both sides."""
    ka, ea = [key(x) for x in ko_items], [key(x) for x in en_items]
    if ka == ea:
        return []
    out = [f"{what} differ between {ko_path} ({len(ka)}) and {en_path} ({len(ea)}):"]
    sm = difflib.SequenceMatcher(a=ka, b=ea, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        for x in ko_items[i1:i2]:
            out.append(f"  - {ko_path}:{x.line}: {show(x)}")
        for x in en_items[j1:j2]:
            out.append(f"  + {en_path}:{x.line}: {show(x)}")
        if tag == "replace" and i2 - i1 == j2 - j1:
            for a, b in zip(ko_items[i1:i2], en_items[j1:j2]):
                if isinstance(a, Fence) and isinstance(b, Fence):
                    out += [
                        "    " + d
                        for d in difflib.unified_diff(
                            [f"```{a.info}", *a.body],
                            [f"```{b.info}", *b.body],
                            f"{ko_path}:{a.line}",
                            f"{en_path}:{b.line}",
                            lineterm="",
                        )
                    ]
    return out


def page_parity_problems(ko: Page, en: Page) -> list[str]:
    out: list[str] = []
    out += diff_sequences(
        "Heading ids and levels", ko.path, ko.headings, en.path, en.headings,
        key=lambda h: (h.level, h.id), show=Heading.show,
    )
    out += diff_sequences("Code blocks", ko.path, ko.fences, en.path, en.fences, key=Fence.key, show=Fence.show)
    # a generated table comes in one file per language (x.md on the Korean page, x.en.md on the English one)
    same_file = lambda ref: re.sub(r"\.en\.md$", ".md", ref.target)  # noqa: E731
    out += diff_sequences("Included regions (--8<--)", ko.path, ko.includes, en.path, en.includes, key=same_file)
    for ref in en.includes:
        english = ROOT / re.sub(r"\.md$", ".en.md", ref.target)
        if ref.target.endswith(".md") and not ref.target.endswith(".en.md") and english.exists():
            out.append(f"{en.path}:{ref.line}: includes {ref.target}, the Korean table; include {english.relative_to(ROOT)}")
    for ref in ko.includes:
        if ref.target.endswith(".en.md"):
            out.append(f"{ko.path}:{ref.line}: includes {ref.target}, the English table, on the Korean page")
    out += diff_sequences("Figures (image paths)", ko.path, ko.images, en.path, en.images)
    out += diff_sequences("Link targets", ko.path, ko.links, en.path, en.links)
    return out


def counterpart(path: Path) -> Path:
    """docs/x.md <-> docs/x.en.md, docs/notebooks/x.py <-> docs/notebooks/x.en.py."""
    name = path.name
    for ext in (".md", ".py"):
        if name.endswith(".en" + ext):
            return path.with_name(name[: -len(".en" + ext)] + ext)
        if name.endswith(ext):
            return path.with_name(name[: -len(ext)] + ".en" + ext)
    raise ValueError(f"not a page or notebook: {path}")


def is_english(path: Path) -> bool:
    return path.name.endswith((".en.md", ".en.py"))


def rel(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------
# Notebooks (jupytext percent format)
# --------------------------------------------------------------------------------------------

_CELL = re.compile(r"^# %%(?P<rest>.*)$")
_CELL_KIND = re.compile(r"^\s*\[(?P<kind>markdown|md|raw)\]")
LANG_LINE = re.compile(r"""^LANG\s*=\s*(?P<q>["'])(?P<lang>[a-z]{2})(?P=q)\s*(?:#.*)?$""")
_STRING = re.compile(r"""(?P<q>["'])(?:\\.|(?!(?P=q)).)*(?P=q)""")  # one-line string literals


@dataclass(frozen=True)
class Cell:
    kind: str  # "header" (before the first marker), "code", "markdown" or "raw"
    marker: str  # the '# %%' line as written
    lines: tuple[tuple[int, str], ...]  # numbered lines; Markdown lines uncommented
    line: int

    def code(self) -> tuple[str, ...]:
        return tuple(text.rstrip() for _, text in self.lines)

    def show(self) -> str:
        first = next((t for _, t in self.lines if t.strip()), "")
        return f"{self.marker} cell, first line {first[:60]!r}"


def _trim(lines: list[tuple[int, str]]) -> tuple[tuple[int, str], ...]:
    while lines and not lines[0][1].strip():
        lines.pop(0)
    while lines and not lines[-1][1].strip():
        lines.pop()
    return tuple(lines)


def parse_percent(text: str) -> list[Cell]:
    cells: list[Cell] = []
    kind, marker, start, buf = "header", "", 1, []

    def flush() -> None:
        lines = _trim(buf)
        if kind != "header" or lines:
            cells.append(Cell(kind, marker, lines, start))

    for lineno, line in numbered(text):
        m = _CELL.match(line)
        if m:
            flush()
            k = _CELL_KIND.match(m.group("rest"))
            kind = "code" if not k else ("raw" if k.group("kind") == "raw" else "markdown")
            marker, start, buf = line.rstrip(), lineno, []
            continue
        if kind in ("markdown", "raw"):
            if line.startswith("# "):
                line = line[2:]
            elif line.rstrip() == "#":
                line = ""
        buf.append((lineno, line))
    flush()
    return cells


def notebook_markdown(cells: Iterable[Cell], path: str) -> Page:
    page = Page(path)
    for cell in cells:
        if cell.kind == "markdown":
            page.extend(scan_markdown(cell.lines, path, front_matter=False))
    return page


def read_notebook(path: Path) -> tuple[list[Cell], Page]:
    cells = parse_percent(path.read_text(encoding="utf-8"))
    return cells, notebook_markdown(cells, rel(path))


def lang_line_problems(cells: Sequence[Cell], path: str, lang: str) -> list[str]:
    hits = [(n, m.group("lang")) for c in cells if c.kind in ("code", "header") for n, t in c.lines if (m := LANG_LINE.match(t))]
    out = []
    if len(hits) > 1:
        out.append(f"{path}: {len(hits)} LANG lines (lines {', '.join(str(n) for n, _ in hits)}); keep one")
    out += [f'{path}:{n}: LANG = "{v}" in a {lang} notebook; write LANG = "{lang}"' for n, v in hits if v != lang]
    return out


def notebook_parity_problems(ko_cells: Sequence[Cell], ko_path: str, en_cells: Sequence[Cell], en_path: str) -> list[str]:
    def code_cells(cells: Sequence[Cell]) -> list[Cell]:
        return [c for c in cells if c.kind in ("code", "header")]

    def key(c: Cell) -> tuple[str, tuple[str, ...]]:
        # A hidden setup cell (tag remove-cell) holds the figure labels, written in each notebook's
        # language: there only the strings' contents may differ; every other cell is compared as is.
        hidden = "remove-cell" in c.marker
        return (c.marker, tuple("LANG = <lang>" if LANG_LINE.match(t) else _STRING.sub('"…"', t) if hidden else t
                                for t in c.code()))

    out = lang_line_problems(ko_cells, ko_path, "ko") + lang_line_problems(en_cells, en_path, "en")
    ka, ea = code_cells(ko_cells), code_cells(en_cells)
    out += diff_sequences("Code cells", ko_path, ka, en_path, ea, key=key, show=Cell.show)
    if len(ka) == len(ea):  # show the lines that differ inside cells at the same position
        for a, b in zip(ka, ea):
            if key(a) != key(b):
                out += [
                    "    " + d
                    for d in difflib.unified_diff(
                        list(key(a)[1]), list(key(b)[1]), f"{ko_path}:{a.line}", f"{en_path}:{b.line}", lineterm=""
                    )
                ]
    ko_md, en_md = notebook_markdown(ko_cells, ko_path), notebook_markdown(en_cells, en_path)
    out += diff_sequences(
        "Markdown heading ids and levels", ko_path, ko_md.headings, en_path, en_md.headings,
        key=lambda h: (h.level, h.id), show=Heading.show,
    )
    return out


# --------------------------------------------------------------------------------------------
# Glossary
# --------------------------------------------------------------------------------------------

# Columns: the term in English, the Korean term, a one-line definition, a link to the lesson section
# that introduces the term, and the Korean variants the pages avoid.
KO_GLOSSARY_HEADER = ("영어 용어", "한국어 용어", "뜻", "처음 나오는 곳", "쓰지 않는 표현")
EN_GLOSSARY_HEADER = ("English term", "Korean term", "Meaning", "Introduced in", "Avoid")
_GLOSSARY_LINK = re.compile(r"\[[^\]]+\]\(([\w/.-]+\.md)#([\w-]+)\)")
_NO_VARIANT = {"", "-", "—", "–"}


@dataclass(frozen=True)
class Term:
    english: str
    korean: str
    variants: tuple[str, ...]
    line: int
    meaning: str = ""
    where: str = ""  # the Markdown link to the section that introduces the term

    def row(self) -> tuple[str, str, tuple[str, ...]]:
        return (self.english, self.korean, self.variants)

    def show(self) -> str:
        return f"| {self.english} | {self.korean} | {', '.join(self.variants)} |"


def _cells(line: str) -> list[str]:
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|"):
        s = s[:-1]
    return [c.strip() for c in s.split("|")]


def parse_glossary(text: str, header: Sequence[str]) -> list[Term]:
    """Rows of every table (outside code) whose header row is exactly ``header``."""
    page = scan_markdown(numbered(text), "glossary")
    raw = dict(numbered(text))  # prose drops link targets; the cells need them
    lines = [(n, raw[n]) for n, t in page.prose if t.strip().startswith("|")]
    terms: list[Term] = []
    in_table = False
    prev_n = -10
    for idx, (n, t) in enumerate(lines):
        cells = _cells(t)
        if n != prev_n + 1:
            in_table = False
        prev_n = n
        if tuple(cells) == tuple(header):
            in_table = True
            continue
        if not in_table or all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
            continue
        if len(cells) != len(header):
            raise ValueError(f"glossary line {n}: expected {len(header)} cells ({' | '.join(header)}), got {len(cells)}: {t!r}")
        variants = tuple(v.strip() for v in cells[-1].split(",") if v.strip() not in _NO_VARIANT)
        extra = cells[2:-1] + ["", ""]
        terms.append(Term(cells[0], cells[1], variants, n, meaning=extra[0], where=extra[1]))
    return terms


def glossary_link(term: Term) -> tuple[str, str] | None:
    """(page, anchor) of the link in a term's "introduced in" cell."""
    m = _GLOSSARY_LINK.fullmatch(term.where.strip())
    return (m.group(1), m.group(2)) if m else None


def variant_regex(terms: Sequence[Term]) -> re.Pattern[str] | None:
    """One pattern for all variants: longest first, not preceded by a letter or digit.

    Korean attaches particles on the right (은닉상태를), so only the left edge is a word boundary;
    that keeps e.g. 로스 from matching inside 크로스. Spaces in a variant match any run of spaces.
    """
    variants = sorted({v for t in terms for v in t.variants}, key=len, reverse=True)
    if not variants:
        return None
    alts = "|".join(r"\s+".join(re.escape(w) for w in v.split()) for v in variants)
    return re.compile(rf"(?<!\w)(?:{alts})")


def variant_problems(prose: Iterable[tuple[int, str]], terms: Sequence[Term], path: str) -> list[str]:
    rx = variant_regex(terms)
    if rx is None:
        return []
    by_variant = {v: t for t in terms for v in t.variants}
    out = []
    for n, text in prose:
        for m in rx.finditer(text):
            found = " ".join(m.group(0).split())
            t = by_variant[found]
            out.append(f"{path}:{n}: {found!r} -> write {t.korean!r} ({t.english})")
    return out


def glossary_self_problems(terms: Sequence[Term]) -> list[str]:
    """A glossary that would flag its own preferred terms, or lists a term twice."""
    out = []
    for attr in ("english", "korean"):
        seen: dict[str, int] = {}
        for t in terms:
            key = getattr(t, attr)
            if key in seen:
                out.append(f"glossary line {t.line}: {attr} term {key!r} already on line {seen[key]}")
            seen[key] = t.line
    rx = variant_regex(terms)
    by_variant = {v: t for t in terms for v in t.variants}
    for t in terms:
        if not t.korean:
            out.append(f"glossary line {t.line}: empty Korean term for {t.english!r}")
        if not t.meaning:
            out.append(f"glossary line {t.line}: no definition for {t.english!r}")
        if not glossary_link(t):
            out.append(f"glossary line {t.line}: {t.english!r} needs a link [section](page.md#anchor) to where it is introduced")
        if rx:
            for m in rx.finditer(t.korean):
                found = " ".join(m.group(0).split())
                out.append(
                    f"glossary line {t.line}: variant {found!r} ({by_variant[found].english}) "
                    f"matches inside the preferred term {t.korean!r}"
                )
    return out


# --------------------------------------------------------------------------------------------
# mkdocs.yml and lesson modules
# --------------------------------------------------------------------------------------------


class TolerantLoader(yaml.SafeLoader):
    """SafeLoader that reads unknown tags (``!!python/name:…``, ``!ENV``) as plain values."""


def _construct_any(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


TolerantLoader.add_multi_constructor("", _construct_any)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=TolerantLoader)  # noqa: S506 - a SafeLoader subclass


def nav_paths(nav: Any) -> list[str]:
    """Every page path in a MkDocs nav, in order (external links left out)."""
    out: list[str] = []
    if isinstance(nav, str):
        if "://" not in nav:
            out.append(nav)
    elif isinstance(nav, list):
        for item in nav:
            out += nav_paths(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            out += nav_paths(value)
    return out


ALLOWED_THIRD_PARTY = {"torch", "pytorch_lightning", "torchmetrics"}


def import_problems(source: str, path: str, allowed: set[str]) -> list[str]:
    """Imports outside the standard library and ``allowed``; relative and ``lessons.`` imports."""
    out = []
    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                out.append(f"{path}:{node.lineno}: relative import; lessons are self-contained")
                continue
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top == "lessons":
                out.append(f"{path}:{node.lineno}: imports {name}; lessons are self-contained")
            elif top not in sys.stdlib_module_names and top not in allowed:
                out.append(
                    f"{path}:{node.lineno}: imports {name}; only the standard library and "
                    f"{', '.join(sorted(allowed))} are allowed"
                )
    return out


def docstring_problems(source: str, path: str) -> list[str]:
    doc = ast.get_docstring(ast.parse(source, path))
    if not doc:
        return [f"{path}: no module docstring"]
    if not any(line.strip().startswith("To run:") for line in doc.splitlines()):
        return [f"{path}: the module docstring has no 'To run:' line"]
    return []


LIGHTNING_HOOKS = (
    "__init__", "forward", "training_step", "validation_step", "test_step", "predict_step", "configure_optimizers",
)


def _calls(func: ast.AST, attr: str) -> bool:
    return any(
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == attr
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "self"
        for n in ast.walk(func)
    )


PLUMBING = {"fit", "train", "History", "LossHistory", "KeepBest", "GradNormHistory"}
MAX_LESSON_LINES = 350


def design_problems(source: str, path: str) -> list[str]:
    """Lessons leave training plumbing to Lightning and stay small enough to read in one sitting."""
    out = []
    for node in ast.parse(source, path).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in PLUMBING:
            out.append(f"{path}:{node.lineno}: defines {node.name}; use pl.Trainer with Lightning's callbacks and loggers")
    lines = source.count("\n")
    if lines > MAX_LESSON_LINES:
        out.append(f"{path}: {lines} lines; a lesson module has at most {MAX_LESSON_LINES}")
    return out


def lightning_problems(source: str, path: str) -> list[str]:
    """For each class with a ``training_step``: hook order, save_hyperparameters, one shared _step."""
    out = []
    for cls in ast.walk(ast.parse(source, path)):
        if not isinstance(cls, ast.ClassDef):
            continue
        methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
        if "training_step" not in methods:
            continue
        where = f"{path}:{cls.lineno}: class {cls.name}"
        hooks = [f.name for f in cls.body if isinstance(f, ast.FunctionDef) and f.name in LIGHTNING_HOOKS]
        expected = sorted(hooks, key=LIGHTNING_HOOKS.index)
        if hooks != expected:
            out.append(f"{where}: hooks in order {hooks}; write them as {expected}")
        if "__init__" not in methods or not _calls(methods["__init__"], "save_hyperparameters"):
            out.append(f"{where}: __init__ does not call self.save_hyperparameters()")
        if "predict_step" not in methods:
            out.append(f"{where}: no predict_step (trainer.predict must work)")
        if "__init__" in methods:
            init = methods["__init__"]
            annotations = [ast.unparse(a.annotation) for a in init.args.args + init.args.kwonlyargs if a.annotation]
            if not any("nn.Module" in a for a in annotations):
                out.append(f"{where}: __init__ takes no model (an argument annotated nn.Module); systems receive their model")
        if "_step" not in methods:
            out.append(f"{where}: no shared _step(batch, stage) method")
        else:
            args = [a.arg for a in methods["_step"].args.args]
            if args[:3] != ["self", "batch", "stage"]:
                out.append(f"{where}: _step arguments are {args}; write _step(self, batch, stage)")
            for hook in ("training_step", "validation_step", "test_step"):
                if hook in methods and not _calls(methods[hook], "_step"):
                    out.append(f"{where}: {hook} does not call self._step(batch, {hook.split('_')[0]!r})")
    return out


_REGION = re.compile(r"-+8<-+[ \t]+\[[ \t]*(?P<type>start|end)[ \t]*:[ \t]*(?P<name>[A-Za-z][-_0-9A-Za-z]*)[ \t]*\]")


def regions(source: str, path: str) -> tuple[set[str], list[str]]:
    """Complete regions (start and end markers) of a file, and unbalanced markers."""
    opened: dict[str, int] = {}
    done: set[str] = set()
    out = []
    for n, line in numbered(source):
        m = _REGION.search(line)
        if not m:
            continue
        name = m.group("name")
        if m.group("type") == "start":
            if name in opened:
                out.append(f"{path}:{n}: region {name!r} started again (first on line {opened[name]})")
            opened[name] = n
        elif name in opened:
            del opened[name]
            done.add(name)
        else:
            out.append(f"{path}:{n}: region {name!r} ends without a start")
    out += [f"{path}:{n}: region {name!r} never ends" for name, n in opened.items()]
    return done, out


def split_include(target: str) -> tuple[str, str | None]:
    """'lessons/rnn.py:cell' -> ('lessons/rnn.py', 'cell'); line ranges give no region name."""
    m = re.match(r"^(?P<path>.*?)(?::(?P<name>[A-Za-z][-_0-9A-Za-z]*))?$", target)
    assert m
    path, name = m.group("path"), m.group("name")
    if name is None:
        path = re.sub(r"(?::-?\d*){1,2}(?:,[-\d:]*)*$", "", target)
    return path, name
