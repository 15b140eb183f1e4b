"""The hosted site: published under a sub-path, with licences, previews and edit links.

GitHub Pages serves a project site under a sub-path (https://user.github.io/repo/) and answers a
missing URL with the site's 404.html. These tests serve the built site the same way, under the
path of ``site_url`` (mkdocs.yml), and click through it in Chromium: the homes and a lesson in
both languages, the language selector, the 404 page. The file checks cover sitemap.xml, the Open
Graph tags, the edit / view-source / last-updated parts of each page and the licences page, which
must name every file under ``data/``.

The site fixtures come from tests/conftest.py (``RNN_SITE_DIR=... pytest tests/test_site_publish.py``
tests an existing build).
"""

from __future__ import annotations

import functools
import re
import sys
import threading
from html.parser import HTMLParser
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from xml.etree import ElementTree

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs_tools as dt  # noqa: E402
from conftest import LOCAL_HOST, is_local, is_sitemap_noise  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DATA = ROOT / "data"
CONFIG = dt.load_yaml((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
SITE_URL = CONFIG["site_url"]
PREFIX = urlsplit(SITE_URL).path  # e.g. /rnn-lessons/
REPO_URL = CONFIG["repo_url"].rstrip("/")
EDIT_URI = CONFIG["edit_uri"]
LANGS = {"ko": "", "en": "en/"}  # language -> URL prefix below the site root
OG_LOCALE = {"ko": "ko_KR", "en": "en_US"}
LESSON = "rnn/"
LICENCE_PAGES = {"ko": DOCS / "licenses.md", "en": DOCS / "licenses.en.md"}
LICENCE_NAMES = re.compile(r"CC0|CC BY|MIT|Apache|GPL|Open Font License|public domain|퍼블릭 도메인|연구", re.I)

browser = pytest.mark.browser
lang_params = pytest.mark.parametrize("lang", list(LANGS))


# --------------------------------------------------------------------------- helpers


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags(path: Path) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.tags


def meta(path: Path) -> dict[str, str]:
    return {a["property"]: a.get("content") or "" for t, a in tags(path) if t == "meta" and a.get("property")}


def links(path: Path, cls: str) -> list[dict[str, str | None]]:
    return [a for t, a in tags(path) if t == "a" and cls in (a.get("class") or "").split()]


def page_file(site: Path, lang: str, rel: str) -> Path:
    return site / LANGS[lang] / rel / "index.html"


# --------------------------------------------------------------------------- licences (no build)


# Files that describe the data next to them (their attribution and licence text), not data.
ABOUT_DATA = re.compile(r"(README|LICEN[CS]E|NOTICE|COPYING)(\.\w+)?", re.I)


def data_files() -> list[Path]:
    return sorted(
        p for p in DATA.rglob("*")
        if p.is_file() and not p.name.startswith(".") and not ABOUT_DATA.fullmatch(p.name)
    )


def test_licence_files_exist() -> None:
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    docs_licence = (ROOT / "LICENSE-docs").read_text(encoding="utf-8")
    assert "CC BY 4.0" in docs_licence and "creativecommons.org/licenses/by/4.0/legalcode" in docs_licence


def test_licences_page_is_in_the_nav() -> None:
    assert "licenses.md" in dt.nav_paths(CONFIG["nav"])


@pytest.mark.parametrize("lang", list(LICENCE_PAGES))
def test_every_data_file_has_its_licence_listed(lang: str) -> None:
    """Each file under data/ (or a folder above it) is named in a table row that gives a licence."""
    text = LICENCE_PAGES[lang].read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("|")]
    missing = []
    for path in data_files():
        rel = path.relative_to(ROOT).as_posix()
        names = [rel] + [p.relative_to(ROOT).as_posix() + "/" for p in path.parents if DATA in (p, *p.parents)]
        if not any(f"`{name}`" in row and LICENCE_NAMES.search(row) for row in rows for name in names):
            missing.append(rel)
    assert not missing, f"{LICENCE_PAGES[lang].relative_to(ROOT)} gives no licence for: {missing}"


def test_vendored_assets_are_on_the_licences_page() -> None:
    for path in LICENCE_PAGES.values():
        text = path.read_text(encoding="utf-8")
        for name in ("KaTeX", "mermaid", "Material for MkDocs"):
            assert re.search(rf"\| {name}\b.*\| MIT \|", text), f"{path.name}: no MIT row for {name}"


# --------------------------------------------------------------------------- built files


def test_sitemap_lists_published_urls(site_dir):
    text = (site_dir / "sitemap.xml").read_text(encoding="utf-8")
    assert "None" not in text
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9", "x": "http://www.w3.org/1999/xhtml"}
    root = ElementTree.fromstring(text)
    locs = [el.text for el in root.findall("s:url/s:loc", ns)]
    hrefs = [el.get("href") for el in root.findall("s:url/x:link", ns)]
    assert SITE_URL in locs and SITE_URL + "en/" in locs and SITE_URL + "en/" + LESSON in locs
    for url in locs + hrefs:
        assert url.startswith(SITE_URL), url
        rel = url[len(SITE_URL):]
        assert (site_dir / rel / "index.html").is_file(), f"{url} is in sitemap.xml but not in the site"


@lang_params
def test_home_language_links_are_relative(site_dir, lang):
    home = page_file(site_dir, lang, "")
    hrefs = {a["hreflang"]: a["href"] for a in links(home, "md-select__link")}
    expected = {"ko": {"ko": "./", "en": "en/"}, "en": {"ko": "../", "en": "./"}}[lang]
    assert hrefs == expected
    alternates = [a["href"] for t, a in tags(home) if t == "link" and a.get("rel") == "alternate" and a.get("hreflang")]
    assert alternates and not [h for h in alternates if h.startswith(("/", "http"))], alternates


@lang_params
@pytest.mark.parametrize("rel", ["", LESSON], ids=["home", "lesson"])
def test_open_graph_tags_follow_the_page_language(site_dir, lang, rel):
    og = meta(page_file(site_dir, lang, rel))
    assert og.get("og:locale") == OG_LOCALE[lang]
    assert og.get("og:locale:alternate") == OG_LOCALE["en" if lang == "ko" else "ko"]
    assert og.get("og:url") == SITE_URL + LANGS[lang] + rel
    assert og.get("og:title") and og.get("og:description") and og.get("og:site_name")
    if rel:
        assert og["og:title"] != og["og:site_name"], "a lesson's preview names the lesson"
    if lang == "en":
        assert re.search(r"[A-Za-z]", og["og:title"]) and not re.search(r"[가-힣]", og["og:description"])
    else:
        assert re.search(r"[가-힣]", og["og:description"])


@lang_params
def test_pages_link_to_their_source_and_show_the_last_update(site_dir, lang):
    path = page_file(site_dir, lang, LESSON)
    source = "rnn.md" if lang == "ko" else "rnn.en.md"
    buttons = [a["href"] for a in links(path, "md-content__button")]
    assert f"{REPO_URL}/{EDIT_URI}{source}" in buttons, buttons
    assert f"{REPO_URL}/{EDIT_URI.replace('edit', 'raw')}{source}" in buttons, buttons
    html = path.read_text(encoding="utf-8")
    assert "md-source-file" in html and re.search(r"git-revision-date-localized-plugin-date[^>]*>\s*\S", html)
    # the repository link, without Material's request to the GitHub API for its stars
    source_links = links(path, "md-source")
    assert source_links and all(a["href"] == REPO_URL for a in source_links)
    assert 'data-md-component="source"' not in html


@lang_params
def test_footer_has_the_licence_line_in_the_page_language(site_dir, lang):
    path = page_file(site_dir, lang, LESSON)
    html = path.read_text(encoding="utf-8")
    line = re.search(r'md-copyright__highlight">(.*?)</div>', html, flags=re.S)[1]
    assert "CC BY 4.0" in line and "MIT" in line
    assert bool(re.search(r"[가-힣]", line)) == (lang == "ko")
    (link,) = links(path, "rnn-licenses-link")
    assert not link["href"].startswith(("/", "http"))
    assert (path.parent / link["href"] / "index.html").resolve().is_file()


def test_404_page_is_korean_and_links_both_homes(site_dir):
    path = site_dir / "404.html"
    found = tags(path)
    assert next(a for t, a in found if t == "html").get("lang") == "ko"
    html = path.read_text(encoding="utf-8")
    assert "페이지를 찾을 수 없습니다" in html and "Page not found" in html
    homes = {a["data-home"]: a["href"] for t, a in found if t == "a" and a.get("data-home")}
    assert homes == {"ko": PREFIX, "en": PREFIX + "en/"}
    switcher = {a["hreflang"]: a["href"] for a in links(path, "md-select__link")}
    assert switcher == {"ko": PREFIX, "en": PREFIX + "en/"}, "the 404 page's language links must go to the homes"
    assert not (site_dir / "en" / "404.html").exists()
    # served at any depth: every link and asset is absolute under site_url's path (or external)
    for tag, attrs in found:
        for key in ("href", "src"):
            value = attrs.get(key)
            if value and tag in ("a", "link", "script", "img") and not value.startswith(("#", "http", "data:", "mailto:")):
                assert value.startswith(PREFIX), f"404.html: <{tag} {key}={value!r}>"


# --------------------------------------------------------------------------- browser, under a sub-path


class _SubPathHandler(SimpleHTTPRequestHandler):
    """Serves the site under PREFIX only, and 404.html (status 404) for anything missing, like GitHub Pages."""

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass

    def translate_path(self, path):
        parts = urlsplit(path)
        if not (parts.path + "/").startswith(PREFIX):
            return str(Path(self.directory) / "__outside_the_site__")
        return super().translate_path(path[len(PREFIX) - 1:])

    def send_error(self, code, message=None, explain=None):
        page = Path(self.directory) / "404.html"
        if code != HTTPStatus.NOT_FOUND or not page.is_file():
            return super().send_error(code, message, explain)
        body = page.read_bytes()
        self.send_response(code)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@pytest.fixture(scope="module")
def sub_path_url(site_dir):
    """http://127.0.0.1:<port>/<site_url's path>/ serving the built site, and only there."""
    handler = functools.partial(_SubPathHandler, directory=str(site_dir))
    server = ThreadingHTTPServer((LOCAL_HOST, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="sub-path-server", daemon=True)
    thread.start()
    try:
        yield f"http://{LOCAL_HOST}:{server.server_address[1]}{PREFIX}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Tab:
    """A browser tab that records what went wrong: console errors, page errors, failed requests."""

    def __init__(self, page, base: str) -> None:
        self.page, self.base = page, base
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.failed: list[tuple[str, int | None]] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        page.on("response", lambda r: self.failed.append((r.url, r.status)) if r.status >= 400 else None)
        # a request the next navigation cancels (the search worker's scripts, when a test clicks
        # on at once) is not a failure of the site
        page.on("requestfailed", lambda r: self.failed.append((r.url, None)) if "ERR_ABORTED" not in (r.failure or "") else None)

    def goto(self, rel: str, status: int = 200):
        response = self.page.goto(urljoin(self.base, rel), wait_until="load")
        assert response is not None and response.status == status, f"{rel}: HTTP {response and response.status}"

    def lang(self) -> str | None:
        return self.page.locator("html").get_attribute("lang")

    def switch_to(self, lang: str) -> None:
        self.page.hover(".md-header__option .md-select")
        self.page.locator(f'.md-select__link[hreflang="{lang}"]').click()

    def wait_for_url(self, rel: str) -> None:
        self.page.wait_for_url(urljoin(self.base, rel))
        self.page.wait_for_load_state("load")

    def assert_clean(self, expected_404: set[str] = frozenset()) -> None:
        remote = [u for u in self.requests if not is_local(u)]
        assert not remote, f"requests that left {LOCAL_HOST}: {remote}"
        assert not self.errors, f"errors in the page: {self.errors}"
        failed = [(u, s) for u, s in self.failed if not is_sitemap_noise(u, s) and u not in expected_404]
        assert not failed, f"failed requests: {failed}"


@pytest.fixture
def tab(browser, sub_path_url):
    context = browser.new_context(locale="ko-KR", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    try:
        yield Tab(context.new_page(), sub_path_url)
    finally:
        context.close()


@browser
def test_homes_switch_language_under_a_sub_path(tab):
    tab.goto("")
    assert tab.lang() == "ko"
    tab.switch_to("en")
    tab.wait_for_url("en/")
    assert tab.lang() == "en"
    tab.switch_to("ko")
    tab.wait_for_url("")
    assert tab.lang() == "ko"
    tab.assert_clean()


@browser
@lang_params
def test_lesson_works_under_a_sub_path(tab, lang):
    other = "en" if lang == "ko" else "ko"
    tab.goto(LANGS[lang] + LESSON)
    assert tab.lang() == lang
    # the page's own assets load from under the sub-path: the theme's stylesheet applies
    assert tab.page.locator(".md-header").evaluate("e => getComputedStyle(e).position") == "sticky"
    tab.page.wait_for_function("document.querySelectorAll('.katex').length > 0")
    tab.switch_to(other)
    tab.wait_for_url(LANGS[other] + LESSON)
    assert tab.lang() == other
    # the footer's licences link
    tab.page.locator("a.rnn-licenses-link").click()
    tab.wait_for_url(LANGS[other] + "licenses/")
    assert tab.page.locator("h1").first.get_attribute("id") == "licenses"
    tab.assert_clean()


@browser
def test_missing_url_shows_the_404_page_with_working_links(tab):
    missing = "no/such/page/"
    tab.goto(missing, status=404)
    page = tab.page
    assert tab.lang() == "ko"
    assert page.locator("h1#not-found").is_visible()
    assert page.locator(".md-header").evaluate("e => getComputedStyle(e).position") == "sticky", "404.html lost its stylesheet"
    page.locator('a[data-home="en"]').click()
    tab.wait_for_url("en/")
    assert tab.lang() == "en"
    tab.goto(missing, status=404)
    page.locator('a[data-home="ko"]').click()
    tab.wait_for_url("")
    assert tab.lang() == "ko"
    tab.goto(missing, status=404)
    tab.switch_to("en")
    tab.wait_for_url("en/")
    tab.assert_clean(expected_404={urljoin(tab.base, missing)})


def test_nothing_is_served_outside_the_sub_path(sub_path_url):
    from urllib.error import HTTPError
    from urllib.request import urlopen

    outside = urljoin(sub_path_url, "/index.html")
    with pytest.raises(HTTPError) as error:
        urlopen(outside, timeout=10)  # noqa: S310 - a local test server
    assert error.value.code == 404
