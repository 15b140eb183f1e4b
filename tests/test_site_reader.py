"""What a reader of the built site gets (issue 14, "Read"): readable diagrams with a text
alternative, light pages, one search per language, distinct notebook titles, a copy button
that copies runnable code, usable notebooks, math without KaTeX errors, a language switch
that keeps the section and readable dark-mode notebooks.

The site is built once per session (tests/conftest.py; ``RNN_SITE_DIR`` tests a built one).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LANGS = {"ko": "", "en": "en/"}  # language -> URL prefix
OTHER = {"ko": "en", "en": "ko"}
HANGUL = re.compile(r"[\uac00-\ud7a3]")
MIN_DIAGRAM_TEXT_PX = 12
MAX_PAGE_BYTES = 1_000_000
# One language's search/search_index.json: code and notebook cells are left out (hooks/search.py); the
# prose grows about 25 KB per lesson (19 lessons: about 510 KB), so this guards against regressions
# such as code slipping back in, not against new lessons.
MAX_INDEX_BYTES = 600_000
SEARCH_INDEX = "search/search_index.json"
MIN_CONTRAST = 4.5
MERMAID = "assets/vendor/mermaid/mermaid.min.js"
# raw TeX in a search snippet: a command, or \( \[ $$ delimiters
RAW_TEX = re.compile(r"\\[A-Za-z]+|\\[()\[\]]|\$\$")
# What KaTeX shows in red: an expression it cannot parse (.katex-error, e.g. a control character from a
# docstring that is not raw) and a command it does not know (drawn in errorColor, #cc0000).
KATEX_ERRORS = ".katex-error, .katex-mathml mstyle[mathcolor='#cc0000']"

browser = pytest.mark.browser
lang_params = pytest.mark.parametrize("lang", list(LANGS))


# --------------------------------------------------------------------------- helpers


def built_pages(site: Path) -> list[str]:
    """Every built page as a URL path relative to the site root (``rnn/``, ``en/api/rnn/``)."""
    paths = []
    for page in sorted(site.rglob("index.html")):
        rel = page.parent.relative_to(site).as_posix()
        if (page.parent / "search_index.json").exists():
            continue
        paths.append("" if rel == "." else rel + "/")
    return paths


def pages_with_diagrams(site: Path) -> list[str]:
    return [p for p in built_pages(site)
            if 'class="mermaid"' in (site / p / "index.html").read_text(encoding="utf-8")]


def lesson_topics(site: Path) -> list[str]:
    """Lessons with a built notebook page (a lesson still being written may lack one)."""
    return sorted(p.stem for p in DOCS.glob("notebooks/*.py")
                  if not p.stem.endswith(".en") and (site / "notebooks" / p.stem / "index.html").is_file())


def wait_for_diagrams(site_page) -> None:
    site_page.wait_for(
        """() => {
            const blocks = [...document.querySelectorAll('.mermaid')];
            return blocks.length > 0 && blocks.every(b => b.shadowRoot && b.shadowRoot.querySelector('svg'));
        }""",
        what="every mermaid diagram to become an SVG",
    )


# Font size of every piece of diagram text as drawn on screen (CSS px): the computed
# font size times the SVG's scale (a diagram fitted to the column is scaled down).
DIAGRAM_TEXT = """() => {
  const out = [];
  for (const host of document.querySelectorAll('.mermaid')) {
    const root = host.shadowRoot;
    const svg = root && root.querySelector('svg');
    if (!svg) continue;
    const scale = svg.getScreenCTM().a;
    const title = svg.querySelector(':scope > title');
    const desc = svg.querySelector(':scope > desc');
    const sizes = [];
    for (const el of root.querySelectorAll('text, tspan, span, p, div')) {
      const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
      if (!own) continue;
      sizes.push(parseFloat(getComputedStyle(el).fontSize) * scale);
    }
    out.push({
      min: sizes.length ? Math.min(...sizes) : null,
      count: sizes.length,
      title: title ? title.textContent.trim() : "",
      desc: desc ? desc.textContent.trim() : "",
      labelled: svg.getAttribute('aria-labelledby') || "",
      described: svg.getAttribute('aria-describedby') || "",
    });
  }
  return out;
}"""

CONTRAST = """(selector) => {
  const parse = c => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return [0, 0, 0, 0];
    const v = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1];
  };
  const over = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const background = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let color = [255, 255, 255, 1];
    for (const layer of layers.reverse()) color = over(layer, color);
    return color;
  };
  const lum = c => {
    const f = x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const results = [];
  for (const el of document.querySelectorAll(selector)) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const bg = background(el);
    const fg = over(parse(getComputedStyle(el).color), bg);
    const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    results.push({ratio: (l1 + 0.05) / (l2 + 0.05), color: getComputedStyle(el).color,
                  background: `rgb(${bg.slice(0, 3).map(Math.round).join(', ')})`,
                  text: el.textContent.trim().slice(0, 30), cls: el.className});
  }
  return results;
}"""


# --------------------------------------------------------------------------- files


def test_pages_with_diagrams_are_found(site_dir):
    found = pages_with_diagrams(site_dir)
    for page in ("rnn/", "en/rnn/", "gru/", "en/gru/"):
        assert page in found


def test_each_language_has_its_own_search_index(site_dir):
    built = set(built_pages(site_dir))
    for lang, prefix in LANGS.items():
        path = site_dir / prefix / "search/search_index.json"
        assert path.is_file(), f"no search index for {lang}"
        index = json.loads(path.read_text(encoding="utf-8"))
        docs = index["docs"]
        locations = {doc["location"].split("#")[0] for doc in docs}
        assert "rnn/" in locations and "api/rnn/" in locations and "notebooks/rnn/" in locations
        # every entry is a page of this language (locations are relative to the language root)
        for doc in docs:
            page = prefix + doc["location"].split("#")[0]
            assert page in built, f"{lang} search entry links nowhere: {doc['location']!r}"
            assert not RAW_TEX.search(doc["title"] + " " + doc["text"]), (
                f"raw TeX in the {lang} search entry {doc['location']}: "
                f"{RAW_TEX.search(doc['title'] + ' ' + doc['text']).group(0)!r}"
            )
        # notebooks are found by their prose; their code cells and outputs stay out of the index
        notebook = " ".join(d["text"] for d in docs if d["location"].startswith("notebooks/"))
        assert "Copied!" not in notebook and "import torch" not in notebook, f"{lang}: notebook code in the index"
        # the English API pages are there too (not deduplicated away)
        api = [d for d in docs if d["location"].startswith("api/")]
        assert len(api) > 20, f"{lang}: only {len(api)} API entries"
        sample = " ".join(d["text"] for d in docs if d["location"].startswith("rnn/"))
        # the Korean RNN page is mostly Hangul; the English one only quotes Korean (the course notes'
        # excerpts, "난 널 사랑해")
        hangul = len(HANGUL.findall(sample)) / max(1, sum(c.isalpha() for c in sample))
        assert hangul > 0.3 if lang == "ko" else hangul < 0.1, f"{lang}: {hangul:.1%} of the RNN entries' letters are Hangul"


def test_notebook_css_is_one_shared_stylesheet(site_dir):
    sheets = set()
    for lang, prefix in LANGS.items():
        for topic in lesson_topics(site_dir):
            page = site_dir / prefix / "notebooks" / topic / "index.html"
            text = page.read_text(encoding="utf-8")
            inline = sum(len(m) for m in re.findall(r"<style[^>]*>(.*?)</style>", text, re.S))
            assert inline < 20_000, f"{page}: {inline} bytes of inline CSS"
            links = re.findall(r'<link rel="stylesheet" href="([^"]*notebook\.[0-9a-f]+\.css)"', text)
            assert len(links) == 1, f"{page}: no link to the shared notebook stylesheet"
            target = (page.parent / links[0]).resolve()
            assert target.is_file(), target
            sheets.add(target)
    assert len(sheets) == 1, sheets


@lang_params
def test_notebook_pages_have_their_own_titles(site_dir, lang):
    titles = {}
    for topic in lesson_topics(site_dir):
        for kind, rel in (("lesson", f"{topic}/"), ("notebook", f"notebooks/{topic}/")):
            text = (site_dir / LANGS[lang] / rel / "index.html").read_text(encoding="utf-8")
            titles[(kind, topic)] = re.search(r"<title>(.*?)</title>", text, re.S).group(1).strip()
    for topic in lesson_topics(site_dir):
        lesson, notebook = titles[("lesson", topic)], titles[("notebook", topic)]
        assert lesson != notebook, f"{topic}: the lesson and its notebook are both titled {lesson!r}"
        assert ("노트북" if lang == "ko" else "notebook") in notebook, notebook
    nav = (site_dir / LANGS[lang] / "index.html").read_text(encoding="utf-8")
    for topic in lesson_topics(site_dir):
        links = [m for m in re.finditer(rf'href="[^"]*notebooks/{topic}/"([^>]*)>\s*(?:<span[^>]*>)?\s*([^<]+?)\s*<', nav)
                 if "md-tabs__link" not in m.group(1)]  # the section's tab links its first notebook too
        assert links and ("노트북" if lang == "ko" else "notebook") in links[0].group(2), (topic, links and links[0].group(2))


@lang_params
def test_notebook_downloads_and_colab_link(site_dir, lang):
    suffix = "" if lang == "ko" else ".en"
    for topic in lesson_topics(site_dir):
        folder = site_dir / LANGS[lang] / "notebooks" / topic
        text = (folder / "index.html").read_text(encoding="utf-8")
        ipynb = f"{topic}{suffix}.ipynb"
        assert f'href="{ipynb}" download' in text, f"{topic}: no .ipynb download"
        nb = json.loads((folder / ipynb).read_text(encoding="utf-8"))
        assert nb["nbformat"] == 4
        code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
        assert 'find_spec("lessons")' in code[0] and "git" in code[0], "no set-up cell first"
        compile(code[0], ipynb, "exec")
        colab = re.search(r'href="(https://colab\.research\.google\.com/github/[^"]+)"', text)
        assert colab and colab.group(1).endswith(f"/notebooks/{topic}/{ipynb}"), colab
        # build plumbing stays out of the page
        assert not re.search(r"LANG</span>\s*<span class=\"o\">=</span>", text), f"{topic}: LANG cell shown"
        # figures are described in the page's language
        alts = re.findall(r'<img [^>]*alt="([^"]*)"', text)
        assert alts, topic
        for alt in alts:
            assert alt and "No description" not in alt, (topic, alt)
            assert bool(HANGUL.search(alt)) == (lang == "ko") or lang == "en", (topic, alt)


# --------------------------------------------------------------------------- browser


WIDTHS = {"desktop": 1280, "phone": 390}


@browser
def test_diagram_pages_draw_readable_described_diagrams(site_page, site_dir):
    """Every page with a diagram, loaded whole in a tab of the session (tests/conftest.py): each diagram
    becomes an SVG, its smallest text is readable at a desktop's and a phone's width, and it names and
    describes itself in the page's language; the page's math is typeset without a KaTeX error, and no
    page logs an error, fails a request or asks another origin for anything. Each page is drawn once
    and measured at both widths (mermaid draws once; the page's layout scales what it drew)."""
    page = site_page.page
    smallest = {name: {} for name in WIDTHS}
    problems = []
    for path in pages_with_diagrams(site_dir):
        page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})
        site_page.goto(path)
        wait_for_diagrams(site_page)
        site_page.wait_for("() => ['done', 'none', 'failed'].includes(document.documentElement.dataset.math)",
                           what="the page's math to be typeset")
        math = page.evaluate("document.documentElement.dataset.math")
        if math == "failed" or (math == "done" and page.locator(".katex").count() == 0):
            problems.append(f"{path}: KaTeX did not typeset the page ({math})")
        problems += [f"{path}: KaTeX error {e}" for e in page.evaluate(
            "(s) => [...document.querySelectorAll(s)].map(e => e.getAttribute('title') || e.textContent)", KATEX_ERRORS)]
        korean = not path.startswith("en/")
        for name, width in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": 900})
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            diagrams = page.evaluate(DIAGRAM_TEXT)
            assert diagrams, path
            for i, d in enumerate(diagrams):
                smallest[name][f"{path}#{i}"] = d["min"]
                if d["min"] is None or d["min"] < MIN_DIAGRAM_TEXT_PX:
                    problems.append(f"{path} diagram {i} at {width} px: text {d['min']} px")
                if name == "desktop" and not (d["title"] and d["desc"] and d["labelled"] and d["described"]):
                    problems.append(f"{path} diagram {i}: no accessible title/description")
                elif name == "desktop" and bool(HANGUL.search(d["title"] + d["desc"])) != korean:
                    problems.append(f"{path} diagram {i}: description not in the page's language")
            # a wide diagram scrolls inside its own box, never the page
            assert page.evaluate("document.documentElement.scrollWidth") <= width, (path, width)
    for name, width in WIDTHS.items():
        print(f"smallest diagram text at {width} px: {min(smallest[name].values()):.1f} px")
    assert {"rnn/", "en/rnn/", "conv1d/", "en/conv1d/"} <= set(pages_with_diagrams(site_dir))
    assert not problems, "\n".join(problems)
    site_page.assert_clean()


class _Weigher:
    """One tab that loads pages and adds up what each loads (bytes per URL). The browser's cache is
    off, so every page counts everything it uses, as on a reader's first visit, and the tab is reused
    (opening a tab costs about as much as loading a page)."""

    def __init__(self, context) -> None:
        self.page = context.new_page()
        context.new_cdp_session(self.page).send("Network.setCacheDisabled", {"cacheDisabled": True})
        self.sizes: dict[str, int] = {}
        self.pending: set = set()
        self.page.on("request", self._started)
        self.page.on("requestfinished", self._finished)
        self.page.on("requestfailed", lambda request: self.pending.discard(request))

    def _started(self, request) -> None:
        self.pending.add(request)
        self.sizes.setdefault(request.url, 0)  # also those aborted by a route

    def _finished(self, request) -> None:
        self.pending.discard(request)
        try:
            response = request.response()
            self.sizes[request.url] = len(response.body()) if response else 0
        except Exception:  # body of a request the page abandoned
            self.sizes.setdefault(request.url, 0)

    def load(self, url: str) -> dict:
        """Everything the page at ``url`` loads once it is done: loaded, its math typeset (KaTeX is
        fetched after DOMContentLoaded), its fonts ready and no request left in flight. (Playwright's
        "networkidle" would do, but waits a fixed 0.5 s of quiet on every page.)"""
        page = self.page
        page.goto("about:blank")
        self.sizes.clear()
        self.pending.clear()
        page.goto(url, wait_until="load")
        page.wait_for_function("() => ['done', 'none', 'failed'].includes(document.documentElement.dataset.math)")
        page.evaluate("() => document.fonts.ready.then(() => true)")
        for _ in range(500):  # at most 10 s
            if not self.pending:
                break
            page.wait_for_timeout(20)
        assert not self.pending, f"{url}: requests still in flight: {[r.url for r in self.pending]}"
        timing = page.evaluate("() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
        sizes = {u: s for u, s in self.sizes.items() if not u.startswith("about:")}
        return {"bytes": sum(sizes.values()), "urls": sizes, "dcl_ms": timing}


@browser
def test_pages_load_mermaid_only_with_a_diagram_and_stay_light(browser, site_dir, site_url):
    diagrams = set(pages_with_diagrams(site_dir))
    plain_lessons = [f"{t}/" for t in lesson_topics(site_dir) if f"{t}/" not in diagrams]
    checked = plain_lessons + ["glossary/", "en/glossary/"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    report = []
    # The search index is fetched only when the reader opens search (docs/javascripts/search-on-demand.js),
    # so a page's weight is everything it loads; the index files are held to their own limit.
    def index_bytes(result):
        return sum(s for u, s in result["urls"].items() if u.endswith(SEARCH_INDEX))

    for index_file in (site_dir / SEARCH_INDEX, site_dir / "en" / SEARCH_INDEX):
        size = index_file.stat().st_size
        report.append(f"{index_file.relative_to(site_dir)}: {size} bytes")
        assert size <= MAX_INDEX_BYTES, f"{index_file}: {size} bytes > {MAX_INDEX_BYTES}"
    try:
        weigher = _Weigher(context)
        for path in checked:
            result = weigher.load(urljoin(site_url, path))
            report.append(f"{path}: {result['bytes']} bytes, DOMContentLoaded {result['dcl_ms']:.0f} ms")
            assert not any(u.endswith(MERMAID) for u in result["urls"]), f"{path} loads mermaid"
            assert index_bytes(result) == 0, f"{path} fetched the search index before anyone searched"
            assert result["bytes"] <= MAX_PAGE_BYTES, (
                f"{path}: {result['bytes']} bytes > {MAX_PAGE_BYTES}: "
                + ", ".join(f"{u} {s}" for u, s in sorted(result["urls"].items(), key=lambda x: -x[1])[:5])
            )
        # a lesson with diagrams: only its diagrams (mermaid) make it heavier. Mermaid is requested, not
        # fetched: parsing and drawing it would cost seconds a page, and its weight is known (MERMAID's file)
        context.route(f"**/{MERMAID}", lambda route: route.abort())
        for path in sorted(diagrams & {f"{t}/" for t in lesson_topics(site_dir)}):
            result = weigher.load(urljoin(site_url, path))
            rest = result["bytes"] - index_bytes(result) - sum(s for u, s in result["urls"].items() if u.endswith(MERMAID))
            report.append(f"{path}: {rest} bytes without mermaid, DOMContentLoaded {result['dcl_ms']:.0f} ms")
            assert any(u.endswith(MERMAID) for u in result["urls"]), f"{path} draws no diagram"
            assert rest <= MAX_PAGE_BYTES, f"{path}: {rest} bytes besides mermaid"
    finally:
        context.close()
    print("\n".join(report))


SEARCH_FIRST = {
    "ko": [("순환 신경망", "rnn/"), ("장단기 메모리", "lstm/"), ("LSTM", "lstm/"),
           ("순환 드롭아웃", "recurrent_dropout/"), ("1D 합성곱", "conv1d/")],
    "en": [("recurrent neural networks", "en/rnn/"), ("LSTM", "en/lstm/"),
           ("recurrent dropout", "en/recurrent_dropout/"), ("1D convolution", "en/conv1d/"),
           ("gated recurrent unit", "en/gru/")],
}
# a term the lesson explains in its own words: among the results, not necessarily first
SEARCH_FINDS = {"ko": ("은닉 상태", "rnn/"), "en": ("hidden state", "en/rnn/")}


@browser
@lang_params
def test_search_ranks_the_lesson_first_in_its_language(site_page, lang):
    site_page.goto(LANGS[lang])
    page = site_page.page
    box = page.locator("input.md-search__input")
    assert page.evaluate("document.documentElement.dataset.searchIndex") is None  # not fetched with the page
    for term, expected in SEARCH_FIRST[lang] + [SEARCH_FINDS[lang]]:
        box.click()
        box.fill(term)  # Hangul typed key by key fires no keyup: fill, then a key
        box.press("End")
        site_page.wait_for(
            """(term) => document.querySelector('.md-search-result__meta')
                  && document.querySelectorAll('.md-search-result__item a').length > 0
                  && document.querySelector('input.md-search__input').value === term""",
            arg=term,
            what=f"search results for {term!r}",
        )
        page.wait_for_timeout(300)
        assert page.evaluate("document.documentElement.dataset.searchIndex") == "requested"
        hrefs = page.eval_on_selector_all(".md-search-result__item a", "as => as.map(a => a.href)")
        paths = [urlsplit(h).path for h in hrefs]
        if (term, expected) == SEARCH_FINDS[lang]:
            assert "/" + expected in paths, f"{lang} {term!r}: no result links to /{expected}, all: {paths}"
        else:
            assert paths[0] == "/" + expected, f"{lang} {term!r}: first result {paths[0]}, all: {paths[:6]}"
        for path in paths:
            assert "undefined" not in path, f"{term!r}: a result links to {path}"
            assert path.startswith("/en/") == (lang == "en"), f"{term!r}: result {path} of the other language"
        snippets = page.eval_on_selector_all(".md-search-result__article", "as => as.map(a => a.textContent)")
        assert not any(RAW_TEX.search(s) for s in snippets), f"raw TeX in the snippets for {term!r}"
        box.fill("")
    site_page.assert_clean()


@browser
def test_search_index_is_fetched_when_search_opens(site_page):
    """Not with the page (test above): on the keyboard shortcut, or at once for a shared query (?q=)."""
    site_page.goto("tagging/")  # a page without diagrams: mermaid would only slow the test down
    page = site_page.page
    page.wait_for_timeout(500)
    assert page.evaluate("document.documentElement.dataset.searchIndex") is None
    with page.expect_response(lambda r: r.url.endswith(SEARCH_INDEX)) as response:
        page.keyboard.press("/")  # Material's shortcut focuses the search box
    assert response.value.ok and page.evaluate("document.documentElement.dataset.searchIndex") == "requested"
    page.keyboard.type("LSTM")  # and the search works: results, before the next page is opened
    page.wait_for_function("() => document.querySelectorAll('.md-search-result__item a').length > 0")
    with page.expect_response(lambda r: r.url.endswith(SEARCH_INDEX)) as response:
        site_page.goto("en/tagging/?q=LSTM")
    assert response.value.ok
    site_page.assert_clean()


@browser
def test_copy_button_copies_runnable_code(browser, site_url):
    """bptt/ shows interactive sessions (>>> prompts and output)."""
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    context.route(f"**/{MERMAID}", lambda route: route.abort())  # the page's diagram is not this test's business
    try:
        page = context.new_page()
        page.goto(urljoin(site_url, "bptt/"), wait_until="load")
        blocks = page.locator(".highlight:has(code[data-copy])")
        assert blocks.count() > 0, "no interactive example on the page"
        for i in range(min(blocks.count(), 3)):
            block = blocks.nth(i)
            block.hover()
            block.locator("[data-clipboard-target]").click()
            text = page.evaluate("navigator.clipboard.readText()")
            assert text and ">>>" not in text and not re.search(r"^\.\.\. ", text, re.M), text
            compile(text, f"copied block {i}", "exec")  # only code: no prompts, no output
            shown = block.locator("code").inner_text()
            first_code = shown.splitlines()[0][4:]
            assert text.splitlines()[0] == first_code
    finally:
        context.close()


# Whole page loads: a lesson in each language, an API page (docstrings) and a notebook page.
KATEX_PAGE_LOADS = ("rnn/", "en/bptt/", "api/bptt/", "en/notebooks/gru/")
TYPESET_EVERY_PAGE = """async ([urls, errors]) => {
  const out = [];
  for (const url of urls) {
    const doc = new DOMParser().parseFromString(await (await fetch(url)).text(), "text/html");
    const box = document.createElement("div");
    box.append(document.importNode(doc.querySelector("article"), true));
    document.body.append(box);
    await window.rnnTypesetMath(box);
    out.push({url, typeset: box.querySelectorAll(".katex").length,
              errors: [...box.querySelectorAll(errors)].map(e => e.getAttribute("title") || e.textContent)});
    box.remove();
  }
  return out;
}"""


@browser
def test_no_katex_error_on_any_page(browser, site_dir, site_url):
    """The site's KaTeX typesets every page's math without an error, in a real browser.

    A few pages are loaded whole (docs/javascripts/katex.js runs as a reader's browser runs it); the math
    of all the others goes through the same function inside one page, since a page load costs about
    0.3 s of CPU and about 100 pages have math."""
    context = browser.new_context()
    # diagrams and search are other tests' business: skip fetching and drawing mermaid (5.9 MB a page)
    context.route(f"**/{MERMAID}", lambda route: route.abort())
    with_math = [path for path in built_pages(site_dir)
                 if re.search(r"arithmatex|jp-RenderedMarkdown", (site_dir / path / "index.html").read_text(encoding="utf-8"))]
    assert set(KATEX_PAGE_LOADS) <= set(with_math) and len(with_math) > 20, with_math
    errors = []
    try:
        page = context.new_page()
        for path in KATEX_PAGE_LOADS:
            page.goto(urljoin(site_url, path), wait_until="domcontentloaded")
            # katex.js loads KaTeX when a page has math and marks <html> when done
            page.wait_for_function("() => ['done', 'none', 'failed'].includes(document.documentElement.dataset.math)")
            assert page.evaluate("document.documentElement.dataset.math") == "done", f"{path}: KaTeX did not run"
            assert page.locator(".katex").count() > 0, path
            errors += [f"{path}: {e}" for e in page.evaluate(
                "(s) => [...document.querySelectorAll(s)].map(e => e.getAttribute('title') || e.textContent)", KATEX_ERRORS)]
        results = page.evaluate(TYPESET_EVERY_PAGE, [[urljoin(site_url, path) for path in with_math], KATEX_ERRORS])
    finally:
        context.close()
    for path, result in zip(with_math, results):
        errors += [f"{path}: {e}" for e in result["errors"][:3]]
        if "arithmatex" in (site_dir / path / "index.html").read_text(encoding="utf-8"):
            assert result["typeset"] > 0, f"{path}: math on the page, none typeset"
    assert sum(r["typeset"] for r in results) > 500
    assert not errors, "\n".join(errors)


@browser
def test_the_katex_check_catches_an_error(browser, site_url):
    """The in-page typesetting above reports what KaTeX cannot parse (so the test can fail)."""
    context = browser.new_context()
    context.route(f"**/{MERMAID}", lambda route: route.abort())
    try:
        page = context.new_page()
        page.goto(urljoin(site_url, "rnn/"), wait_until="domcontentloaded")
        page.wait_for_function("() => document.documentElement.dataset.math === 'done'")
        found = page.evaluate("""async ([tex, errors]) => {
          const out = [];
          for (const t of tex) {
            const box = document.createElement("div");
            box.innerHTML = '<span class="arithmatex"></span>';
            box.firstChild.textContent = t;
            document.body.append(box);
            await window.rnnTypesetMath(box);
            out.push(box.querySelectorAll(errors).length);
            box.remove();
          }
          return out;
        }""", [["\\(x^2\\)", "\\(x^^2\\)", "\\(\\frac{1}{\\notamacro}\\)", "\\(\x07lpha\\)"], KATEX_ERRORS])
    finally:
        context.close()
    assert found == [0, 1, 1, 1]  # fine; a parse error; an unknown command; \a read as a control character


# a section of a lesson without diagrams (drawing them twice would only slow the test down); the
# headings' ids are the same in both languages
SECTION = "tagging/#characters"


@browser
@lang_params
def test_language_switch_keeps_the_section(site_page, lang):
    site_page.goto(LANGS[lang] + SECTION)
    page = site_page.page
    page.hover(".md-header__option .md-select")
    page.locator(f'.md-select__link[hreflang="{OTHER[lang]}"]').click()
    page.wait_for_url(urljoin(site_page.base_url, LANGS[OTHER[lang]] + SECTION))
    assert page.locator("html").get_attribute("lang") == OTHER[lang]
    site_page.assert_clean()


@browser
@lang_params
def test_dark_scheme_notebook_contrast(browser, site_url, lang):
    context = browser.new_context(color_scheme="dark")
    try:
        page = context.new_page()
        page.goto(urljoin(site_url, LANGS[lang] + "notebooks/rnn/"), wait_until="load")
        assert page.get_attribute("body", "data-md-color-scheme") == "slate"
        low = []
        for selector in (".nb-download .md-button",
                         ".jupyter-wrapper .jp-InputArea pre, .jupyter-wrapper .jp-InputArea pre span",
                         ".jupyter-wrapper .jp-OutputArea pre, .jupyter-wrapper .jp-OutputArea pre span"):
            found = page.evaluate(CONTRAST, selector)
            assert found, selector
            low += [r for r in found if r["ratio"] < MIN_CONTRAST]
        worst = sorted(low, key=lambda r: r["ratio"])[:8]
        assert not low, "\n".join(f"{r['ratio']:.2f}:1 {r['color']} on {r['background']} "
                                  f"({r['cls']}: {r['text']!r})" for r in worst)
    finally:
        context.close()
