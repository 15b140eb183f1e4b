"""MkDocs hook: serve KaTeX and mermaid from the site itself.

The built site must make no request to another origin. Material loads mermaid
from a CDN unless a global ``mermaid`` exists, and math needs a renderer, so
both come from ``node_modules/`` (installed by ``npm ci`` from the committed
``package-lock.json``) and are added to the build as static files under
``assets/vendor/``. Nothing third-party is copied into the repository.

The files are placed at the site root in every language build (mkdocs-static-i18n
leaves files from outside ``docs/`` where they are), so ``/en/`` pages use the same
copy through the root-relative ``extra_css`` / ``extra_javascript`` entries.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.assets")

VENDOR_PREFIX = "assets/vendor"

# package -> (files relative to node_modules/<package>/dist, glob patterns allowed)
VENDOR_FILES: dict[str, list[str]] = {
    "katex": [
        "katex.min.js",
        "katex.min.css",
        "contrib/auto-render.min.js",
        "fonts/*",  # katex.min.css refers to fonts/ next to itself
    ],
    "mermaid": [
        "mermaid.min.js",
    ],
}

NPM_HINT = "Run `npm ci` in the repository root (it installs the versions pinned in package-lock.json)."


def _project_root(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent


def _pinned_versions(root: Path) -> dict[str, str]:
    package_json = root / "package.json"
    try:
        return json.loads(package_json.read_text(encoding="utf-8")).get("dependencies", {})
    except (OSError, ValueError) as exc:
        raise PluginError(f"hooks/assets.py: cannot read {package_json}: {exc}") from exc


def vendor_files(root: Path) -> list[tuple[Path, str]]:
    """Return (source path, destination URI) for every vendored file.

    Raises PluginError with a clear message when node_modules is missing,
    incomplete or holds another version than package.json pins.
    """
    node_modules = root / "node_modules"
    pinned = _pinned_versions(root)
    found: list[tuple[Path, str]] = []
    for package, patterns in VENDOR_FILES.items():
        package_dir = node_modules / package
        manifest = package_dir / "package.json"
        if not manifest.is_file():
            raise PluginError(
                f"hooks/assets.py: {package_dir} is missing, so the site cannot serve "
                f"{package} itself. {NPM_HINT}"
            )
        installed = json.loads(manifest.read_text(encoding="utf-8")).get("version")
        wanted = pinned.get(package)
        if wanted is not None and installed != wanted:
            raise PluginError(
                f"hooks/assets.py: node_modules has {package} {installed}, "
                f"package.json pins {wanted}. {NPM_HINT}"
            )
        dist = package_dir / "dist"
        for pattern in patterns:
            matches = sorted(p for p in dist.glob(pattern) if p.is_file())
            if not matches:
                raise PluginError(
                    f"hooks/assets.py: {dist / pattern} not found. {NPM_HINT}"
                )
            for source in matches:
                dest_uri = f"{VENDOR_PREFIX}/{package}/{source.relative_to(dist).as_posix()}"
                found.append((source, dest_uri))
    return found


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    # Every assets/vendor/ path named in extra_css / extra_javascript must be one
    # this hook provides: a typo would otherwise only show up as a 404 in a browser.
    provided = {dest for _, dest in vendor_files(_project_root(config))}
    named = [str(p) for p in config.extra_css] + [
        str(getattr(s, "path", s)) for s in config.extra_javascript
    ]
    for path in named:
        if path.startswith(VENDOR_PREFIX + "/") and path not in provided:
            raise PluginError(
                f"hooks/assets.py: mkdocs.yml names {path}, which is not one of the "
                f"vendored files ({', '.join(sorted(provided))})."
            )
    return config


@event_priority(-50)
def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = _project_root(config)
    for source, dest_uri in vendor_files(root):
        file = File(
            source.relative_to(root).as_posix(),  # unique src_uri: node_modules/<pkg>/dist/...
            str(root),
            config.site_dir,
            config.use_directory_urls,
            dest_uri=dest_uri,
        )
        existing = files.get_file_from_path(file.src_uri)
        if existing is not None:
            files.remove(existing)
        files.append(file)
    return files
