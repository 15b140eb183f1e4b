"""Tests of the built site: files (no browser), then pages in Chromium, in both languages.

The site is built once per session in the background (tests/conftest.py).
"""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LANGS = {"ko": "", "en": "en/"}  # language -> URL prefix
OTHER = {"ko": "en", "en": "ko"}
NOTEBOOK_SUFFIX = {"ko": ".py", "en": ".en.py"}  # notebooks/<topic><suffix>
VENDOR = [
    "assets/vendor/katex/katex.min.js",
    "assets/vendor/katex/katex.min.css",
    "assets/vendor/katex/contrib/auto-render.min.js",
    "assets/vendor/mermaid/mermaid.min.js",
]
LESSON = "rnn/"
# pages checked in the browser: the reference lesson and the newest one (its diagram is a flowchart)
BROWSER_LESSONS = ["rnn", "conv1d"]

lang_params = pytest.mark.parametrize("lang", list(LANGS))


# --------------------------------------------------------------------------- helpers


class _Tags(HTMLParser):
    """Collects (tag, attrs) of every start tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags(path: Path) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.tags


def pages(site: Path, lang: str) -> set[str]:
    """Built pages of one language, as paths relative to that language's root."""
    if lang == "ko":
        return {
            p.relative_to(site).as_posix()
            for p in site.rglob("index.html")
            if p.relative_to(site).parts[0] != "en"
        }
    return {p.relative_to(site / "en").as_posix() for p in (site / "en").rglob("index.html")}


def html_lang(path: Path) -> str | None:
    for tag, attrs in tags(path):
        if tag == "html":
            return attrs.get("lang")
    return None


# --------------------------------------------------------------------------- files


def test_vendor_assets_are_served_once_from_the_site_root(site_dir):
    for rel in VENDOR:
        path = site_dir / rel
        assert path.is_file() and path.stat().st_size > 0, f"missing {rel}"
    fonts = list((site_dir / "assets/vendor/katex/fonts").glob("KaTeX_*.woff2"))
    assert len(fonts) >= 20, "KaTeX fonts missing next to katex.min.css"
    # one copy for both languages
    assert not (site_dir / "en/assets").exists()


@lang_params
def test_notebook_page_is_built_in_each_language(site_dir, lang):
    page = site_dir / LANGS[lang] / "notebooks/rnn/index.html"
    assert page.is_file(), "mkdocs-jupyter page lost (mkdocs-static-i18n issue #198)"
    text = page.read_text(encoding="utf-8")
    assert "jupyter-wrapper" in text, "not rendered by mkdocs-jupyter"
    assert re.search(r'<img [^>]*src="data:image/png;base64,', text), "no executed figure"
    assert html_lang(page) == lang
    # the source can be downloaded from next to the page
    source = DOCS / "notebooks" / f"rnn{NOTEBOOK_SUFFIX[lang]}"
    copied = page.parent / source.name
    assert copied.read_bytes() == source.read_bytes()
    links = [a for t, a in tags(page) if t == "a" and a.get("href") == source.name]
    assert links and "download" in links[0], "no download link to the notebook source"
    # not also copied raw where the page should be
    assert not (site_dir / LANGS[lang] / "notebooks/rnn.py").exists()


def test_notebook_pages_hide_the_build_plumbing(site_dir):
    """Readers see the lesson's code, not the label dictionaries, LANG cells or warning filters
    (the hidden cell tagged remove-cell); the downloaded sources keep them, so they still run."""
    plumbing = ("TEXT = {", "LANG = ", "filterwarnings", "use_hangul_font", "fails the site build")
    pages_ = sorted(site_dir.glob("notebooks/*/index.html")) + sorted(site_dir.glob("en/notebooks/*/index.html"))
    assert len(pages_) == 2 * len(list((DOCS / "notebooks").glob("*.en.py")))
    for page in pages_:
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))
        shown = [p for p in plumbing if p in text]
        assert not shown, f"{page.relative_to(site_dir)} shows {shown}"
    for source in (DOCS / "notebooks").glob("*.py"):
        assert "TEXT = {" in source.read_text(encoding="utf-8") or "TEXT[" not in source.read_text(encoding="utf-8")


def test_every_page_exists_in_both_languages(site_dir):
    ko, en = pages(site_dir, "ko"), pages(site_dir, "en")
    assert "index.html" in ko and LESSON + "index.html" in ko
    assert ko == en, f"only in ko: {sorted(ko - en)}; only in en: {sorted(en - ko)}"
    for rel in sorted(ko):
        assert html_lang(site_dir / rel) == "ko", rel
        assert html_lang(site_dir / "en" / rel) == "en", rel


def test_english_pages_come_from_english_sources(site_dir):
    """No fallback copy: every /en/ page has its own `.en.md` / `.en.py` source."""
    for rel in sorted(pages(site_dir, "en")):
        stem = rel[: -len("index.html")].rstrip("/") or "index"
        candidates = [
            DOCS / f"{stem}.en.md",
            DOCS / stem / "index.en.md",
            DOCS / f"{stem}.en.py",
        ]
        assert any(c.is_file() for c in candidates), f"en/{rel} has no English source"


def test_no_html_loads_anything_from_another_origin(site_dir):
    loaders = {"script": "src", "link": "href", "img": "src", "iframe": "src",
               "source": "src", "video": "src", "audio": "src", "embed": "src"}
    offenders = []
    for page in sorted(site_dir.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        for tag, attrs in tags(page):
            value = attrs.get(loaders.get(tag, ""), None)
            if tag == "link" and attrs.get("rel") == "canonical":
                continue  # names the page's published address (site_url); never fetched
            if value and re.match(r"^(https?:)?//", value.strip()):
                offenders.append(f"{page.relative_to(site_dir)}: <{tag}> {value}")
        for pattern in (r"import\(\s*[\"']https?://", r"url\(\s*[\"']?https?://", r"@import\s+[\"']?https?://"):
            for match in re.finditer(pattern, text):
                offenders.append(f"{page.relative_to(site_dir)}: {text[match.start():match.start() + 80]}")
    for css in sorted(site_dir.rglob("*.css")):
        text = css.read_text(encoding="utf-8", errors="replace")
        for match in re.finditer(r"(url\(\s*[\"']?|@import\s+[\"']?)https?://", text):
            offenders.append(f"{css.relative_to(site_dir)}: {text[match.start():match.start() + 80]}")
    assert not offenders, "\n".join(offenders)


def test_headings_have_anchors_and_toc_links_resolve(site_dir):
    problems = []
    for page in sorted(site_dir.rglob("index.html")):
        found = tags(page)
        ids = {a.get("id") for _, a in found if a.get("id")}
        for tag, attrs in found:
            if re.fullmatch(r"h[1-6]", tag) and "id" in attrs and not attrs["id"]:
                problems.append(f"{page.relative_to(site_dir)}: empty <{tag} id>")
            if tag == "a" and "md-nav__link" in (attrs.get("class") or ""):
                href = attrs.get("href") or ""
                if href.startswith("#") and href[1:] not in ids:
                    problems.append(f"{page.relative_to(site_dir)}: toc link {href} has no target")
    assert not problems, "\n".join(problems)


def test_api_section_titles_follow_the_page_language(site_dir):
    ko = (site_dir / "api" / "stacking" / "index.html").read_text(encoding="utf-8")
    en = (site_dir / "en" / "api" / "stacking" / "index.html").read_text(encoding="utf-8")
    assert '<span class="doc-section-title">매개변수:</span>' in ko and "<th>설명</th>" in ko
    assert '<span class="doc-section-title">Parameters:</span>' not in ko
    assert '<span class="doc-section-title">Parameters:</span>' in en and "<th>Description</th>" in en


def test_search_index_holds_both_languages(site_dir):
    """One index per language (hooks/search.py): ko at the root, en under en/."""
    for lang, prefix in LANGS.items():
        index = json.loads((site_dir / prefix / "search/search_index.json").read_text(encoding="utf-8"))
        assert lang in index["config"]["lang"]
        locations = {doc["location"].split("#")[0] for doc in index["docs"]}
        assert LESSON in locations  # relative to the language's root


# --------------------------------------------------------------------------- browser

browser = pytest.mark.browser


@browser
@lang_params
@pytest.mark.parametrize("topic", BROWSER_LESSONS)
def test_notebook_page_shows_its_plots(site_page, lang, topic):
    site_page.goto(LANGS[lang] + f"notebooks/{topic}/")
    page = site_page.page
    page.wait_for_selector(".jupyter-wrapper img", state="attached")
    sizes = page.eval_on_selector_all(
        ".jupyter-wrapper .jp-OutputArea-output img",
        "imgs => imgs.map(img => img.complete ? img.naturalWidth : 0)",
    )
    assert sizes and all(width > 0 for width in sizes), sizes
    # the download button serves the source
    href = page.get_attribute(".nb-download a[download]", "href")
    response = page.request.get(urljoin(page.url, href))
    assert response.ok
    assert response.body() == (DOCS / "notebooks" / f"{topic}{NOTEBOOK_SUFFIX[lang]}").read_bytes()
    site_page.assert_clean()


@browser
@lang_params
def test_api_page_lists_the_classes(site_page, lang):
    site_page.goto(LANGS[lang] + "api/rnn/")
    page = site_page.page
    heading = page.locator('[id="lessons.rnn.RNNCell"]')
    assert heading.count() == 1
    assert "RNNCell" in heading.inner_text()
    site_page.assert_clean()


@browser
def test_no_request_of_the_session_left_localhost(request_log, site_page):
    """Every request of every page visited in this session (run last in this file)."""
    if len(request_log.urls) < 10:  # run alone: visit the pages first
        for lang in LANGS:
            for path in ("", LESSON, "notebooks/rnn/", "api/rnn/"):
                site_page.goto(LANGS[lang] + path)
    assert not request_log.remote(), f"requests that left 127.0.0.1: {request_log.remote()}"
    assert request_log.hosts() == {"127.0.0.1"}
