"""Fixtures for the tests of the built site (tests/test_site.py).

The site is built once per pytest session with ``mkdocs build --strict``. The build
starts in the background as soon as collection is done, and only when a selected
test uses the ``site_dir`` fixture (directly or through another fixture), so the
other tests run while it builds; ``site_dir`` waits for it.

Environment variables:

``RNN_SITE_DIR``
    Test an already built site in this folder instead of building one
    (e.g. ``mkdocs build --strict && RNN_SITE_DIR=site pytest tests/test_site.py``).
``RNN_SITE_BUILD_TIMEOUT``
    Seconds to wait for the build (default 900).
``RNN_KEEP_SITE``
    ``1`` keeps the temporary build folder and prints where it is.
``CHROMIUM``
    The browser to drive (default ``/usr/bin/chromium``). Missing, the browser tests
    are skipped, or fail when ``CI=true``.

Under pytest-xdist (``pytest -n 2``, as ``make test`` runs it) the workers share one build: the
first worker to finish collecting starts it in a folder named after the run, the others wait for
the result file it writes, and the controller removes the folder at the end.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
]
INSTALL_HINT = "install it with `apt-get install chromium fonts-noto-cjk`"
LOCAL_HOST = "127.0.0.1"

# Lines of a build log that count as warnings: MkDocs' "WARNING -  ..." and any
# other tool's uppercase WARNING (e.g. "[IPKernelApp] WARNING | ...").
WARNING_LINE = re.compile(r"\b(WARNING|ERROR)\b")


# --------------------------------------------------------------------------- build


class SiteBuild:
    """One ``mkdocs build --strict`` running in the background."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.tmp: Path | None = None
        self.site: Path | None = None
        self.log_path: Path | None = None
        self.started = 0.0
        self.seconds: float | None = None
        self.shared = False  # True in an xdist worker that waits for another worker's build

    def start(self) -> None:
        if self.proc is not None or self.shared:
            return
        shared = _xdist_build_dir()
        if shared is not None:
            from filelock import FileLock

            shared.mkdir(exist_ok=True)
            with FileLock(str(shared / "lock")):
                owner = shared / "owner"
                self.shared = owner.exists()  # another worker builds: wait for its result file
                if not self.shared:
                    owner.write_text(os.environ.get("PYTEST_XDIST_WORKER", ""), encoding="utf-8")
            self.tmp, self.site, self.log_path = shared, shared / "site", shared / "mkdocs-build.log"
            if self.shared:
                return
        else:
            self.tmp = Path(tempfile.mkdtemp(prefix="rnn-site-"))
            self.site = self.tmp / "site"
            self.log_path = self.tmp / "mkdocs-build.log"
        env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONUNBUFFERED="1")
        self.started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mkdocs", "build", "--strict", "--clean",
                 "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(self.site)],
                cwd=ROOT,  # notebooks execute here and import lessons/
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # its own process group: stop() ends the kernels too
            )
        if _xdist_build_dir() is not None:  # tell the other workers when the build is over
            def report(proc=self.proc, started=self.started, result=self.tmp / "result"):
                code = proc.wait()
                partial = result.with_suffix(".tmp")
                partial.write_text(f"{code} {time.monotonic() - started}", encoding="utf-8")
                partial.replace(result)

            threading.Thread(target=report, daemon=True).start()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path else ""

    def wait(self, timeout: float) -> Path:
        self.start()
        if self.shared:
            result, deadline = self.tmp / "result", time.monotonic() + timeout
            while not result.exists():
                if time.monotonic() > deadline:
                    pytest.fail(f"the site build of another xdist worker took more than {timeout:.0f} s:\n"
                                f"{self.log()[-20000:]}")
                time.sleep(0.5)
            code_text, seconds = result.read_text(encoding="utf-8").split()
            code, self.seconds = int(code_text), float(seconds)
        else:
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                pytest.fail(f"mkdocs build --strict took more than {timeout:.0f} s:\n{self.log()[-20000:]}")
        if self.seconds is None:
            self.seconds = time.monotonic() - self.started
        log = self.log()
        if code != 0:
            pytest.fail(f"mkdocs build --strict failed (exit {code}):\n{log[-20000:]}", pytrace=False)
        warnings = [line for line in log.splitlines() if WARNING_LINE.search(line)]
        if warnings:
            pytest.fail(
                "mkdocs build --strict printed warnings:\n" + "\n".join(warnings)
                + f"\n\nFull log:\n{log[-20000:]}",
                pytrace=False,
            )
        return self.site

    def stop(self, keep: bool) -> None:
        if _xdist_build_dir() is not None:
            # other workers may still wait for this build; the controller removes the folder
            if self.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=float(os.environ.get("RNN_SITE_BUILD_TIMEOUT", "900")))
            return
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the build and its notebook kernels
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.tmp is not None and not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


_build = SiteBuild()


def _xdist_build_dir() -> Path | None:
    """The build folder the xdist workers of this run share (None outside xdist workers)."""
    run = os.environ.get("RNN_XDIST_RUN")
    if not run or not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    return Path(tempfile.gettempdir()) / f"rnn-site-xdist-{run}"


def pytest_configure(config: pytest.Config) -> None:
    # The controller of an xdist run names the run before it starts the workers (they inherit it).
    if not os.environ.get("PYTEST_XDIST_WORKER") and getattr(config.option, "numprocesses", None):
        os.environ["RNN_XDIST_RUN"] = uuid.uuid4().hex


def pytest_unconfigure(config: pytest.Config) -> None:
    run = os.environ.get("RNN_XDIST_RUN")
    if run and not os.environ.get("PYTEST_XDIST_WORKER"):
        shared = Path(tempfile.gettempdir()) / f"rnn-site-xdist-{run}"
        if os.environ.get("RNN_KEEP_SITE") != "1":
            shutil.rmtree(shared, ignore_errors=True)


def _uses_built_site(item: pytest.Item) -> bool:
    return "site_dir" in getattr(item, "fixturenames", ())


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly or os.environ.get("RNN_SITE_DIR"):
        return
    if any(_uses_built_site(item) for item in session.items):
        _build.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _build.stop(keep=os.environ.get("RNN_KEEP_SITE") == "1")


def pytest_terminal_summary(terminalreporter) -> None:
    seconds, site = _build.seconds, _build.site
    run = os.environ.get("RNN_XDIST_RUN")
    if run and not os.environ.get("PYTEST_XDIST_WORKER"):  # the controller reads the workers' build
        shared = Path(tempfile.gettempdir()) / f"rnn-site-xdist-{run}"
        if (shared / "result").exists():
            seconds, site = float((shared / "result").read_text(encoding="utf-8").split()[1]), shared / "site"
    if seconds is not None:
        terminalreporter.write_line(f"site build (mkdocs build --strict): {seconds:.1f} s")
    if os.environ.get("RNN_KEEP_SITE") == "1" and site is not None:
        terminalreporter.write_line(f"built site kept in {site}")


@pytest.fixture(scope="session")
def site_dir() -> Path:
    """The built site (waits for the background build, fails with its log)."""
    given = os.environ.get("RNN_SITE_DIR")
    if given:
        path = Path(given).resolve()
        if not (path / "index.html").is_file():
            pytest.fail(f"RNN_SITE_DIR={given} holds no built site (no index.html)")
        return path
    timeout = float(os.environ.get("RNN_SITE_BUILD_TIMEOUT", "900"))
    return _build.wait(timeout)


# --------------------------------------------------------------------------- server


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass


@pytest.fixture(scope="session")
def site_url(site_dir: Path):
    """Base URL (ending in /) of the built site, served on 127.0.0.1 on a free port."""
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    server = ThreadingHTTPServer((LOCAL_HOST, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://{LOCAL_HOST}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- browser


def _no_browser(reason: str):
    message = f"{reason}: {INSTALL_HINT}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


# Material renders mermaid diagrams into closed shadow roots; open them so a test
# can see the SVG. Nothing else on the site uses shadow roots.
OPEN_SHADOW_ROOTS = """
(() => {
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) {
    return attach.call(this, Object.assign({}, init, { mode: "open" }));
  };
})();
"""


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session."""
    if not Path(CHROMIUM).is_file():
        _no_browser(f"no browser at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is in requirements.txt
        _no_browser("the playwright Python package is missing (pip install -r requirements.txt)")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
    except Exception as exc:  # a broken install: say so, the way a missing one does
        playwright.stop()
        _no_browser(f"{CHROMIUM} does not start ({exc})")
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


@dataclass
class RequestLog:
    """Every URL any page of the session requested."""

    urls: list[str] = field(default_factory=list)

    def remote(self) -> list[str]:
        """The URLs that left 127.0.0.1."""
        return sorted({url for url in self.urls if not is_local(url)})

    def hosts(self) -> set[str]:
        return {urlsplit(u).hostname for u in self.urls if urlsplit(u).scheme in ("http", "https")}


@pytest.fixture(scope="session")
def request_log() -> RequestLog:
    return RequestLog()


@pytest.fixture(scope="session")
def browser_context(browser, site_url, request_log: RequestLog):
    """One browser context for the session; it records every request."""
    context = browser.new_context(locale="ko-KR", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    context.add_init_script(OPEN_SHADOW_ROOTS)
    context.on("request", lambda request: request_log.urls.append(request.url))
    try:
        yield context
    finally:
        context.close()


def is_local(url: str) -> bool:
    """True for URLs that stay on this machine (127.0.0.1, or data:/blob:/about:)."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname == LOCAL_HOST


def is_sitemap_noise(url: str, status: int | None) -> bool:
    """Material fetches ``<alternate link>/sitemap.xml`` for each language link;
    on a plain server that is a 404 for every page but the site root's."""
    return status == 404 and urlsplit(url).path.endswith("/sitemap.xml")


@dataclass
class WatchedPage:
    """A browser tab with what happened in it: console errors, page errors,
    failed responses and requests."""

    page: object
    base_url: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[tuple[str, str]] = field(default_factory=list)  # (text, url)
    page_errors: list[str] = field(default_factory=list)
    failed: list[tuple[str, int | None]] = field(default_factory=list)  # (url, status)

    def goto(self, path: str):
        url = urljoin(self.base_url, path)
        response = self.page.goto(url, wait_until="load")
        assert response is not None and response.ok, f"{url}: HTTP {response and response.status}"
        return response

    def wait_for(self, expression: str, arg=None, what: str = "condition") -> None:
        """page.wait_for_function, but a timeout first reports what went wrong in the page
        (a request to another origin, a console error...) before saying it timed out."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_function(expression, arg=arg)
        except PlaywrightTimeout:
            self.assert_clean()
            pytest.fail(f"{self.page.url}: timed out waiting for {what}", pytrace=False)

    def assert_clean(self) -> None:
        """No console error, no uncaught exception, no failed request (only the
        sitemap.xml 404s of Material's language links excepted), no request off 127.0.0.1."""
        remote = [url for url in self.requests if not is_local(url)]
        assert not remote, f"requests that left {LOCAL_HOST}: {remote}"
        noise = {url for url, status in self.failed if is_sitemap_noise(url, status)}
        errors = [
            (text, url)
            for text, url in self.console_errors
            if not (url in noise and text.startswith("Failed to load resource"))
        ]
        assert not errors, f"console errors: {errors}"
        assert not self.page_errors, f"uncaught errors: {self.page_errors}"
        failed = [(url, status) for url, status in self.failed if url not in noise]
        assert not failed, f"failed requests: {failed}"


@pytest.fixture
def site_page(browser_context, site_url):
    """A fresh tab in the shared context, watched (see WatchedPage.assert_clean)."""
    page = browser_context.new_page()
    watched = WatchedPage(page=page, base_url=site_url)
    page.on("request", lambda request: watched.requests.append(request.url))
    page.on(
        "console",
        lambda msg: watched.console_errors.append((msg.text, msg.location.get("url", "")))
        if msg.type == "error"
        else None,
    )
    page.on("pageerror", lambda exc: watched.page_errors.append(str(exc)))
    page.on(
        "response",
        lambda response: watched.failed.append((response.url, response.status))
        if response.status >= 400
        else None,
    )
    page.on("requestfailed", lambda request: watched.failed.append((request.url, None)))
    try:
        yield watched
    finally:
        page.close()
