"""MkDocs hook: one search index per language, small, with readable snippets.

mkdocs-static-i18n merges the languages' search entries into one index (and drops
entries whose title and text are the same in both languages, such as most of the
English API pages, which left results pointing at ``/undefined``). Here each
language keeps its own index instead:

- the Korean pages (site root) search ``search/search_index.json``, Korean entries only;
- the English pages search ``en/search/search_index.json``: their ``__config.base``
  (where Material's search looks for the index and resolves result links) is the
  ``en/`` folder, and the entries' locations are relative to it.

Every entry is also trimmed for readers: math (``\\( … \\)``, ``$ … $``) becomes plain
text instead of raw TeX, code blocks are left out (they made up half of the index,
which every page downloads), and the lesson pages get a higher boost so that a
lesson comes before its notebook and API page for its own title terms.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import CombinedEvent, event_priority
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.hooks.search")

LESSONS = Path(__file__).resolve().parent.parent / "lessons"  # lessons/<topic>.py makes <topic>/ a lesson
INDEX = "search/search_index.json"
LESSON_BOOST = 4.0
API_BOOST = 0.5

# Words end at punctuation too, so "LSTM" finds "장단기 메모리(LSTM)" and "lessons.rnn"
# finds "rnn" (Material's default separator is only blanks and hyphens).
SEPARATOR = r'[\s\-,:;!=\[\]()"`/]+|\.(?!\d)|&[lg]t;'

_indexes: dict[str, dict] = {}

RE_PRE = re.compile(r"<pre\b[^>]*>.*?</pre>", re.S)
# A notebook's code cell and its output reach the index as "In [3]: Copied! <code> <output>" up to
# the next Markdown cell (mkdocs-jupyter renders them without <pre>): left out like code blocks.
RE_NOTEBOOK_CELL = re.compile(r"In\xa0\[\s*\d*\]:.*?(?=<p>|<h\d|<ul>|<ol>|$)", re.S)
RE_MATH = re.compile(r"\\\((.+?)\\\)|\\\[(.+?)\\\]|\$\$(.+?)\$\$|(?<![$\\])\$(?![\s$])([^$\n]+?)(?<![\s\\])\$(?![\d$])", re.S)
RE_CONFIG = re.compile(r'(<script id="__config" type="application/json">)(.*?)(</script>)', re.S)
RE_COMMAND = re.compile(r"\\([A-Za-z]+)\s*")

SYMBOLS = {
    "odot": "⊙", "otimes": "⊗", "oplus": "⊕", "cdot": "·", "times": "×", "top": "ᵀ",
    "partial": "∂", "sum": "Σ", "prod": "Π", "in": "∈", "le": "≤", "leq": "≤", "ge": "≥",
    "geq": "≥", "ne": "≠", "neq": "≠", "approx": "≈", "sim": "~", "propto": "∝", "to": "→",
    "rightarrow": "→", "leftarrow": "←", "infty": "∞", "nabla": "∇", "ldots": "…",
    "cdots": "⋯", "dots": "…", "mid": "|", "lVert": "‖", "rVert": "‖", "Vert": "‖",
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "Delta": "Δ", "epsilon": "ε",
    "varepsilon": "ε", "eta": "η", "theta": "θ", "lambda": "λ", "mu": "μ", "pi": "π",
    "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "psi": "ψ", "omega": "ω",
    "Sigma": "Σ", "Theta": "Θ", "Omega": "Ω", "mathbb": "", "mathrm": "", "mathbf": "",
    "mathcal": "", "text": "", "textrm": "", "operatorname": "", "boldsymbol": "",
    "left": "", "right": "", "big": "", "Big": "", "bigg": "", "Bigg": "", "quad": " ",
    "qquad": " ", "frac": "", "tfrac": "", "dfrac": "", "sqrt": "√", "overrightarrow": "",
    "overleftarrow": "", "tilde": "", "hat": "", "bar": "", "vec": "", "begin": "", "end": "",
    "displaystyle": "", "limits": "", "exp": "exp", "log": "log", "tanh": "tanh",
    "max": "max", "min": "min", "arg": "arg", "diag": "diag",
}
ENVIRONMENTS = re.compile(r"\\(?:begin|end)\{[a-z*]+\}")
BLACKBOARD = {"R": "ℝ", "N": "ℕ", "Z": "ℤ", "E": "𝔼"}


def plain_math(tex: str) -> str:
    """Readable text for a TeX formula (no backslash commands, braces or delimiters)."""
    text = ENVIRONMENTS.sub(" ", tex)
    text = re.sub(r"\\mathbb\{(\w)\}", lambda m: BLACKBOARD.get(m.group(1), m.group(1)), text)
    text = re.sub(r"\\(?:mathrm|mathbf|mathcal|text|textrm|operatorname|boldsymbol)\{([^{}]*)\}", r"\1", text)
    for _ in range(2):
        text = re.sub(r"\\[td]?frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1)/(\2)", text)
    text = re.sub(r"\\overrightarrow\{([^{}]*)\}", r"\1→", text)
    text = re.sub(r"\\overleftarrow\{([^{}]*)\}", r"\1←", text)
    text = re.sub(r"\\[,;:! ]", " ", text)
    text = text.replace("\\\\", " ").replace("\\{", "{").replace("\\}", "}").replace("\\|", "‖")
    text = RE_COMMAND.sub(lambda m: SYMBOLS.get(m.group(1), m.group(1)) + " ", text)
    text = text.replace("&amp;", " ").replace("&", " ").replace("{", "").replace("}", "")
    text = text.replace("\\", "")
    return re.sub(r"\s+", " ", text).strip()


def clean_text(text: str) -> str:
    text = RE_NOTEBOOK_CELL.sub(" ", RE_PRE.sub(" ", text))
    text = RE_MATH.sub(lambda m: plain_math(next(g for g in m.groups() if g is not None)), text)
    return text.strip()


def _kind(location: str) -> str:
    path = location.split("#")[0]
    if path.startswith("api/"):
        return "api"
    if path.startswith("notebooks/"):
        return "notebook"
    # a lesson is a page with a module of its name (as tests/test_completeness.py counts them); the home,
    # glossary, appendix and licence pages get no lesson boost
    return "lesson" if path and (LESSONS / f"{path.strip('/')}.py").is_file() else "other"


def _i18n(config: MkDocsConfig):
    return config.plugins.get("i18n")


def _prefix(lang: str, default: str) -> str:
    return "" if lang == default else f"{lang}/"


@event_priority(-50)  # after the search plugin wrote this language's index, before i18n merges
def _save_language_index(config: MkDocsConfig) -> None:
    i18n = _i18n(config)
    if i18n is None:
        return
    lang, default = i18n.current_language, i18n.default_language
    path = Path(config.site_dir) / INDEX
    if not path.is_file():
        return
    index = json.loads(path.read_text(encoding="utf-8"))
    prefix = _prefix(lang, default)
    docs = []
    for doc in index.get("docs", []):
        location = doc.get("location")
        if location is None:
            continue
        if prefix:
            if not location.startswith(prefix):
                continue  # another language's entry
            location = location[len(prefix):]
        elif any(location.startswith(f"{other}/") for other in i18n.all_languages if other != default):
            continue
        doc = dict(doc, location=location, text=clean_text(doc.get("text", "")),
                   title=clean_text(doc.get("title", "")))
        kind = _kind(location)
        if kind == "lesson":
            doc["boost"] = LESSON_BOOST
        elif kind == "api":
            doc["boost"] = API_BOOST
        docs.append(doc)
    langs = [lang] + (["en"] if lang != "en" else [])
    index["config"] = dict(index.get("config", {}), lang=langs, separator=SEPARATOR)
    index["docs"] = docs
    _indexes[lang] = index


@event_priority(-110)  # after i18n wrote its merged index: put each language's in place
def _write_language_indexes(config: MkDocsConfig) -> None:
    i18n = _i18n(config)
    if i18n is None:
        return
    for lang, index in _indexes.items():
        path = Path(config.site_dir) / _prefix(lang, i18n.default_language) / INDEX
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(index, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


on_post_build = CombinedEvent(_save_language_index, _write_language_indexes)


def on_post_page(output: str, page: Page, config: MkDocsConfig) -> str:
    """Pages of another language than the default look for their own index."""
    i18n = _i18n(config)
    if i18n is None:
        return output
    lang = i18n.current_language
    if lang == i18n.default_language:
        return output
    match = RE_CONFIG.search(output)
    if match is None:
        return output
    app = json.loads(match.group(2))
    base = app.get("base", "")
    if re.match(r"^[a-z]+:|^/", base):
        return output  # an absolute base (site_url): leave it
    url = page.url or ""
    page_dir = url if url.endswith("/") or not url else posixpath.dirname(url)
    app["base"] = posixpath.relpath(lang, page_dir.rstrip("/") or ".")
    replacement = match.group(1) + json.dumps(app, ensure_ascii=False) + match.group(3)
    return output[: match.start()] + replacement + output[match.end():]
