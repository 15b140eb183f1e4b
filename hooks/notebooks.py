"""MkDocs hook: make mkdocs-jupyter and mkdocs-static-i18n work together.

1. mkdocs-static-i18n rebuilds the file list last in ``on_files`` and drops the
   wrapper mkdocs-jupyter put around notebook files (upstream
   mkdocs-static-i18n issue #198): the notebook would be copied as a raw ``.py``
   and ``mkdocs build --strict`` would still pass. ``on_files`` below runs after
   i18n (priority below -100) and turns the files mkdocs-jupyter includes back into
   documentation pages, with i18n's destination (``en/`` prefix for English) and
   with their language alternates pointing at the pages, not at the sources.
2. With ``fallback_to_default: false`` i18n also leaves unsuffixed non-page files
   from ``docs/`` (images, ``javascripts/``, ``stylesheets/``) out of the English
   build, so an English page that links an image would fail the strict build.
   They are added back at the site root, as i18n does for the default language.
   Pages are never added back: a page missing in one language stays an error.
3. Notebook headings get the same anchors as Markdown pages: the ``toc.slugify``
   of mkdocs.yml (mkdocs-jupyter and nbconvert drop Hangul otherwise) and an
   explicit ``{ #id }`` at the end of a heading is honoured (Python-Markdown's
   attr_list syntax, which nbconvert does not know), so both languages of a
   notebook can share anchors.
4. Relative links to ``.md`` pages (or notebooks) in notebook Markdown cells are
   resolved like MkDocs resolves them in pages: to the page of the current
   language, and a missing target is a warning (an error with ``--strict``).
5. Notebook pages get no script from another origin (nbconvert's template adds a
   MathJax loader with an empty URL and a mermaid loader importing from a CDN;
   math is typeset by docs/javascripts/katex.js and mermaid fences by Material with
   the site's own mermaid instead) and get a button to download the notebook
   source that ``include_source`` copies next to the page.
6. What a reader gets from a notebook page (issue 14):

   - the CSS nbconvert inlines in every notebook page (~590 KB, the same for all of
     them) is written once to ``assets/stylesheets/notebook.<hash>.css`` and linked;
   - besides the ``.py`` source, a ``.ipynb`` made from it (jupytext, not executed)
     is written next to the page, with a first code cell that makes the notebook run
     outside the repository (it clones the lessons' code when ``lessons`` cannot be
     imported, e.g. on Colab), and an "Open in Colab" link to that ``.ipynb``;
   - figures without alt text get one in the page's language (the section heading
     above the figure and the notebook's title) instead of nbconvert's English
     "No description has been provided for this image";
   - a cell that only sets ``LANG = "..."`` (build plumbing: which language the
     figure labels use) is left out of the page, like cells tagged ``remove-cell``.
"""

from __future__ import annotations

import hashlib
import html
import logging
import posixpath
import re
from pathlib import Path, PurePath
from urllib.parse import unquote, urlsplit

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import CombinedEvent, event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.hooks.notebooks")

JUPYTER = "mkdocs-jupyter"
I18N = "i18n"

DOWNLOAD_LABEL = {"ko": "노트북 내려받기", "en": "Download notebook"}
DOWNLOAD_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" aria-hidden="true">'
    '<path d="M5 20h14v-2H5m14-9h-4V3H9v6H5l7 7z"/></svg>'
)
PERMALINK_TITLE = {"ko": "이 제목으로 가는 링크", "en": "Permanent link"}
NOTEBOOK_LABEL = {"ko": "노트북 내려받기", "en": "Download notebook"}
COLAB_LABEL = {"ko": "Colab에서 열기", "en": "Open in Colab"}
FIGURE_ALT = {"ko": "그림: {section} ({title})", "en": "Figure: {section} ({title})"}
NBCONVERT_DEFAULT_ALT = "No description has been provided for this image"

# The repository the "Open in Colab" link points at: repo_url of mkdocs.yml when it is a
# GitHub repository, else this placeholder. Colab opens .ipynb files only, and the
# repository holds jupytext .py sources, so the link names the .ipynb of the published
# site (the branch GitHub Pages is deployed from, path = the page's folder).
COLAB_REPO = "rnn-lessons/rnn-lessons"
COLAB_BRANCH = "gh-pages"
COLAB_URL = "https://colab.research.google.com/github/{repo}/blob/{branch}/{path}"

# First cell of the downloadable .ipynb: a no-op in the repository, and outside it
# (Colab, a fresh folder) it fetches the lessons' code and the packages the notebooks
# use that Colab does not have.
SETUP_MARKDOWN = {
    "ko": "저장소 밖(예: Colab)에서 실행할 때는 아래 셀이 강의 코드(`lessons/`)를 내려받고 "
    "필요한 패키지를 설치합니다. 저장소 안에서는 아무 일도 하지 않습니다.",
    "en": "Run outside the repository (e.g. on Colab), the cell below fetches the lessons' code "
    "(`lessons/`) and installs the packages it needs. Inside the repository it does nothing.",
}
SETUP_CODE = """\
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("lessons") is None:  # not run from the repository
    subprocess.run(["git", "clone", "--depth", "1", "https://github.com/{repo}.git", "rnn-lessons"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pytorch-lightning", "torchmetrics",
                    "koreanize-matplotlib", "matplotlib"], check=True)
    sys.path.insert(0, "rnn-lessons")
"""
RE_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S)
RE_LANG_CELL = re.compile(r"^\s*LANG\s*=\s*[\"'][a-z]{2}[\"']\s*$")
RE_IMG_DEFAULT_ALT = re.compile(r'(<img\s[^>]*?alt=")' + re.escape(NBCONVERT_DEFAULT_ALT) + '"')
RE_HEADING = re.compile(r"<h([1-6])[^>]*>(.*?)</h\1>", re.S)

# "{ #id }" / "{: #id }" at the end of a heading (attr_list style).
RE_HEADING_ATTRS = re.compile(r"\s*\{:?\s*#([A-Za-z0-9_][\w.:-]*)[^}]*\}\s*$")
RE_TAGS = re.compile(r"<[^>]*>")
RE_LINK = re.compile(r'(<a\s(?:[^>]*?\s)?href=")([^"]*)(")')
LINKED_SOURCES = (".md", ".py", ".ipynb")

# nbconvert template parts that would load scripts from elsewhere.
RE_EMPTY_SCRIPT = re.compile(r"<script src=\"\">\s*</script>")
RE_MATHJAX_CONFIG = re.compile(r"<script type=\"text/x-mathjax-config\">.*?</script>", re.S)
RE_MATHJAX_COMMENTS = re.compile(r"<!-- (?:Load mathjax|MathJax configuration|End of mathjax configuration) -->")
RE_REMOTE_IMPORT_SCRIPT = re.compile(
    r"<script type=\"module\">(?:(?!</script>).)*?import\(\s*[\"']https?://.*?</script>", re.S
)

_state: dict = {"slugify": None, "lang": "ko", "docs_files": None}


# --------------------------------------------------------------------------- helpers


def _plugin(config: MkDocsConfig, name: str):
    plugin = config.plugins.get(name)
    if plugin is None:
        raise PluginError(f"hooks/notebooks.py needs the '{name}' plugin in mkdocs.yml")
    return plugin


def _slugify(text: str) -> str:
    return _state["slugify"](text, "-")


def _split_heading_id(text: str) -> tuple[str, str | None]:
    match = RE_HEADING_ATTRS.search(text)
    if match is None:
        return text, None
    return text[: match.start()], match.group(1)


class NotebookPage(File):
    """An i18n file that mkdocs-jupyter renders as a documentation page."""

    def is_documentation_page(self) -> bool:
        return True


def _notebook_dest_uri(norm_src_uri: str, locale: str, i18n, config: MkDocsConfig) -> str:
    """Where i18n puts the page of a notebook (``notebooks/rnn.py`` -> ``en/notebooks/rnn/index.html``)."""
    parent, filename = posixpath.split(norm_src_uri)
    stem = posixpath.splitext(filename)[0]
    if stem == "index":
        dest = posixpath.join(parent, "index.html")
    elif config.use_directory_urls:
        dest = posixpath.join(parent, stem, "index.html")
    else:
        dest = posixpath.join(parent, stem + ".html")
    if locale != i18n.default_language:
        dest = posixpath.join(locale, dest)
    return dest


def _as_notebook_page(file: File, locale: str, i18n, config: MkDocsConfig) -> NotebookPage:
    """A copy of i18n's ``file`` (locale, name, ... kept) that is a page of ``locale``."""
    page_file = NotebookPage.__new__(NotebookPage)
    page_file.__dict__.update(file.__dict__)
    norm_src_uri = getattr(file, "norm_src_uri", file.src_uri)
    page_file.dest_uri = _notebook_dest_uri(norm_src_uri, locale, i18n, config)
    page_file.abs_dest_path = str(Path(config.site_dir) / page_file.dest_uri)
    page_file.url = page_file._get_url()
    if page_file.url == "./" and locale != i18n.default_language:
        page_file.url = f"{locale}/"
    return page_file


def _notebook_sources(jupyter, i18n, config: MkDocsConfig) -> dict[tuple[str, str], File]:
    """(norm_src_uri, locale) -> i18n view of every notebook source in docs/."""
    from mkdocs_static_i18n.suffix import create_i18n_file

    sources = {}
    for file in _state["docs_files"] or []:
        if file.abs_src_path is None or not jupyter.should_include(file):
            continue
        info = create_i18n_file(
            file, i18n.default_language, i18n.default_language, i18n.all_languages, config
        )
        sources[(info.norm_src_uri, info.locale)] = info
    return sources


# --------------------------------------------------------------------------- headings


def _heading(self, text: str, level: int, **attrs) -> str:
    """nbconvert/mistune heading renderer with Markdown-page-compatible anchors."""
    text, explicit_id = _split_heading_id(text)
    anchor = explicit_id or _slugify(html.unescape(RE_TAGS.sub("", text)))
    title = PERMALINK_TITLE.get(_state["lang"], PERMALINK_TITLE["en"])
    return (
        f'<h{level} id="{html.escape(anchor)}">{text}'
        f'<a class="headerlink" href="#{html.escape(anchor)}" title="{title}">&para;</a>'
        f"</h{level}>\n"
    )


def _markdown_toc(markdown_source: str, toc_depth: int):
    import markdown
    from markdown.extensions.toc import TocExtension

    md = markdown.Markdown(
        extensions=["attr_list", TocExtension(toc_depth=toc_depth, slugify=_state["slugify"])]
    )
    md.convert(markdown_source)
    return md.toc_tokens


def _patch_jupyter() -> None:
    import mkdocs_jupyter.convert  # noqa: F401  (applies mkdocs-jupyter's own patch first)
    import mkdocs_jupyter.plugin
    from nbconvert.filters.markdown_mistune import IPythonRenderer

    import mkdocs_jupyter.nbconvert2 as nbconvert2

    IPythonRenderer.heading = _heading
    mkdocs_jupyter.plugin._get_markdown_toc = _markdown_toc

    # Let the kernel use CurveZMQ (its kernelspec supports it): otherwise ipykernel
    # prints "WARNING | Kernel is running over TCP without encryption" on every run.
    original = getattr(nbconvert2.get_nbconvert_app, "__wrapped__", nbconvert2.get_nbconvert_app)

    def get_nbconvert_app(*args, **kwargs):
        app = original(*args, **kwargs)
        app.config.KernelManager.transport_encryption = "auto"
        return app

    get_nbconvert_app.__wrapped__ = original
    nbconvert2.get_nbconvert_app = get_nbconvert_app

    # Cells that only choose the figures' language are build plumbing: tag them
    # remove-cell (mkdocs.yml: remove_tag_config) on whatever reads the notebook
    # (jupytext itself, or hooks/prerun.py's executed copy).
    if not isinstance(nbconvert2.jupytext, _TaggingJupytext):
        nbconvert2.jupytext = _TaggingJupytext(nbconvert2.jupytext)


class _TaggingJupytext:
    """Stands in for ``jupytext`` in mkdocs_jupyter.nbconvert2: tags plumbing cells."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def read(self, *args, **kwargs):
        nb = self._inner.read(*args, **kwargs)
        for cell in nb.cells:
            if cell.get("cell_type") == "code" and RE_LANG_CELL.match(cell.get("source", "")):
                tags = cell.setdefault("metadata", {}).setdefault("tags", [])
                if "remove-cell" not in tags:
                    tags.append("remove-cell")
        return nb


# --------------------------------------------------------------------------- events


@event_priority(-120)  # after i18n has set this build's language
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    slugify = config.mdx_configs.get("toc", {}).get("slugify")
    if slugify is None:
        raise PluginError(
            "hooks/notebooks.py: set markdown_extensions.toc.slugify (pymdownx.slugs.slugify) "
            "so Korean headings get anchors."
        )
    _state["slugify"] = slugify
    _state["lang"] = _plugin(config, I18N).current_language
    _patch_jupyter()
    return config


@event_priority(-90)
def _files_before_i18n(files: Files, config: MkDocsConfig) -> Files:
    # Remember what docs/ holds before i18n filters it by language.
    _state["docs_files"] = list(files)
    return files


@event_priority(-110)
def _files_after_i18n(files: Files, config: MkDocsConfig) -> Files:
    jupyter = _plugin(config, JUPYTER)
    i18n = _plugin(config, I18N)

    # 1. notebooks become pages again; their language alternates point at the
    #    other languages' notebook pages (i18n computed none: to it they were assets)
    lang = i18n.current_language
    sources = _notebook_sources(jupyter, i18n, config)
    for file in list(files):
        if isinstance(file, NotebookPage) or not jupyter.should_include(file):
            continue
        page_file = _as_notebook_page(file, lang, i18n, config)
        norm_src_uri = getattr(file, "norm_src_uri", file.src_uri)
        alternates = {}
        for other in i18n.build_languages:
            if other == lang:
                alternates[other] = page_file
            elif (norm_src_uri, other) in sources:
                alternates[other] = _as_notebook_page(
                    sources[(norm_src_uri, other)], other, i18n, config
                )
        page_file.alternates = alternates
        files.remove(file)
        files.append(page_file)

    # 2. shared (unsuffixed) non-page assets in the other languages' builds
    if i18n.current_language != i18n.default_language and _state["docs_files"]:
        from mkdocs_static_i18n.suffix import create_i18n_file

        have = {getattr(f, "norm_src_uri", f.src_uri) for f in files}
        docs_dir = Path(config.docs_dir).resolve()
        for file in _state["docs_files"]:
            if file.abs_src_path is None or file.is_documentation_page():
                continue
            if jupyter.should_include(file):
                continue
            if docs_dir not in Path(file.abs_src_path).resolve().parents:
                continue
            suffixes = PurePath(file.src_uri).suffixes
            if len(suffixes) > 1 and suffixes[-2].lstrip(".") in i18n.all_languages:
                continue  # localized asset of another language
            if file.src_uri in have:
                continue
            shared = create_i18n_file(
                file, i18n.default_language, i18n.default_language, i18n.all_languages, config
            )
            files.append(shared)

    # keep i18n's sitemap in step with the page list
    i18n.i18n_files_per_language[i18n.current_language] = files.documentation_pages()
    return files


# One event, two priorities: around i18n's on_files (-100).
on_files = CombinedEvent(_files_before_i18n, _files_after_i18n)


def _resolve_links(html_content: str, page: Page, files: Files) -> str:
    """Rewrite ``href="../rnn.md#x"`` in a notebook page to the built page's URL."""
    source_dir = posixpath.dirname(getattr(page.file, "norm_src_uri", page.file.src_uri))

    def replace(match: re.Match) -> str:
        target = html.unescape(match.group(2))
        parts = urlsplit(target)
        if parts.scheme or parts.netloc or not parts.path or parts.path.startswith("/"):
            return match.group(0)
        if not parts.path.endswith(LINKED_SOURCES):
            return match.group(0)
        src_uri = posixpath.normpath(posixpath.join(source_dir, unquote(parts.path)))
        target_file = files.get_file_from_path(src_uri)
        if target_file is None or not target_file.is_documentation_page():
            log.warning(
                f"Notebook '{page.file.src_uri}' links to '{target}', "
                "which is not a page of the documentation."
            )
            return match.group(0)
        url = target_file.url_relative_to(page.file)
        if parts.fragment:
            url += "#" + parts.fragment
        return match.group(1) + html.escape(url) + match.group(3)

    return RE_LINK.sub(replace, html_content)


def _notebook_css(html_content: str, page: Page, config: MkDocsConfig) -> str:
    """Move nbconvert's inline <style> blocks to one shared stylesheet, linked instead."""
    styles = RE_STYLE.findall(html_content)
    if not styles:
        return html_content
    css = "\n".join(style.strip() for style in styles) + "\n"
    digest = hashlib.sha256(css.encode("utf-8")).hexdigest()[:8]
    dest_uri = f"assets/stylesheets/notebook.{digest}.css"
    path = Path(config.site_dir) / dest_uri
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(css, encoding="utf-8")
    page_dir = posixpath.dirname(page.file.dest_uri)
    href = posixpath.relpath(dest_uri, page_dir or ".")
    first = True

    def replace(match: re.Match) -> str:
        nonlocal first
        if first:
            first = False
            return f'<link rel="stylesheet" href="{html.escape(href)}">'
        return ""

    return RE_STYLE.sub(replace, html_content)


def _figure_alts(html_content: str, page: Page) -> str:
    """Give figures nbconvert left without a description an alt text in the page's language."""
    lang = _state["lang"]
    template = FIGURE_ALT.get(lang, FIGURE_ALT["en"])
    title = page.title or ""
    headings = [(m.start(), html.unescape(RE_TAGS.sub("", m.group(2))).replace("\u00b6", "").strip())
                for m in RE_HEADING.finditer(html_content)]

    def replace(match: re.Match) -> str:
        section = title
        for start, text in headings:
            if start > match.start():
                break
            if text:
                section = text
        alt = template.format(section=section, title=title)
        return match.group(1) + html.escape(alt, quote=True) + '"'

    return RE_IMG_DEFAULT_ALT.sub(replace, html_content)


def _colab_repo(config: MkDocsConfig) -> str:
    match = re.match(r"https?://github\.com/([^/]+/[^/#?]+?)(?:\.git)?/?$", config.repo_url or "")
    return match.group(1) if match else COLAB_REPO


def _write_ipynb(page: Page, config: MkDocsConfig, repo: str) -> str:
    """Write ``<source stem>.ipynb`` next to the page (with the setup cell); return its name."""
    import jupytext
    import nbformat

    lang = _state["lang"]
    source = Path(page.file.abs_src_path)
    nb = jupytext.read(source)
    setup = [
        nbformat.v4.new_markdown_cell(SETUP_MARKDOWN.get(lang, SETUP_MARKDOWN["en"])),
        nbformat.v4.new_code_cell(SETUP_CODE.format(repo=repo).rstrip("\n")),
    ]
    first_heading = 1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0
    nb.cells[first_heading:first_heading] = setup
    nb.metadata.pop("jupytext", None)
    for cell in nb.cells:
        cell.pop("id", None)
    nbformat.validator.normalize(nb)
    name = source.stem + ".ipynb"
    dest = Path(config.site_dir) / posixpath.dirname(page.file.dest_uri) / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(jupytext.writes(nb, fmt="ipynb"), encoding="utf-8")
    return name


def on_page_content(html_content: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if not isinstance(page.file, NotebookPage):
        return html_content
    html_content = _resolve_links(html_content, page, files)
    html_content = RE_EMPTY_SCRIPT.sub("", html_content)
    html_content = RE_MATHJAX_CONFIG.sub("", html_content)
    html_content = RE_MATHJAX_COMMENTS.sub("", html_content)
    html_content = RE_REMOTE_IMPORT_SCRIPT.sub("", html_content)
    # nbconvert hides .jp-Mermaid until its own (removed) loader has drawn it;
    # Material draws the pre.mermaid inside with the site's mermaid instead.
    html_content = html_content.replace('<div class="jp-Mermaid">', '<div class="nb-mermaid">')
    html_content = _notebook_css(html_content, page, config)
    html_content = _figure_alts(html_content, page)

    jupyter = _plugin(config, JUPYTER)
    if jupyter.config["include_source"]:
        source_name = posixpath.basename(page.file.abs_src_path)
        lang = _state["lang"]
        label = DOWNLOAD_LABEL.get(lang, DOWNLOAD_LABEL["en"])
        repo = _colab_repo(config)
        ipynb = _write_ipynb(page, config, repo)
        page_dir = posixpath.dirname(page.file.dest_uri)
        colab = COLAB_URL.format(repo=repo, branch=COLAB_BRANCH, path=posixpath.join(page_dir, ipynb))
        colab_label = COLAB_LABEL.get(lang, COLAB_LABEL["en"])
        button = (
            '<p class="nb-download">'
            f'<a class="md-button" href="{html.escape(source_name)}" '
            f'download title="{label} ({html.escape(source_name)})">'
            f'<span class="twemoji">{DOWNLOAD_ICON}</span> {label} (.py)</a> '
            f'<a class="md-button" href="{html.escape(ipynb)}" '
            f'download title="{label} ({html.escape(ipynb)})">'
            f'<span class="twemoji">{DOWNLOAD_ICON}</span> {label} (.ipynb)</a> '
            f'<a class="md-button nb-colab" href="{html.escape(colab)}" '
            f'title="{colab_label} ({html.escape(repo)})">{colab_label}</a>'
            "</p>"
        )
        html_content = button + html_content
    return html_content
