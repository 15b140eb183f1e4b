"""MkDocs hook: Korean section titles on the Korean API pages.

mkdocstrings writes its docstring sections ("Parameters:", "Examples:", the table headers Name,
Type, Description, Default) in English whatever the page's language. On the Korean API pages
(``docs/api/<topic>.md``; the English ones are ``.en.md``) this hook puts the glossary's Korean
titles in their place. Only mkdocstrings' own markup is touched, never the docstrings' text.
"""

from __future__ import annotations

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

SECTION_TITLES = {
    "Parameters:": "매개변수:",
    "Other Parameters:": "기타 매개변수:",
    "Returns:": "반환값:",
    "Yields:": "생성값:",
    "Raises:": "예외:",
    "Examples:": "예제:",
    "Attributes:": "속성:",
    "Methods:": "메서드:",
    "Classes:": "클래스:",
    "Functions:": "함수:",
}
TABLE_HEADERS = {"Name": "이름", "Type": "형식", "Description": "설명", "Default": "기본값"}


def korean_labels(html: str) -> str:
    """The HTML of an API page with mkdocstrings' English section titles in Korean."""
    for english, korean in SECTION_TITLES.items():
        html = html.replace(f'<span class="doc-section-title">{english}</span>',
                            f'<span class="doc-section-title">{korean}</span>')
    for english, korean in TABLE_HEADERS.items():
        html = html.replace(f"<th>{english}</th>", f"<th>{korean}</th>")
    return html


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    src = page.file.src_uri
    if src.startswith("api/") and src.endswith(".md") and not src.endswith(".en.md"):
        return korean_labels(html)
    return html
