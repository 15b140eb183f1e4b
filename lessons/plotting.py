"""Plot settings shared by the notebooks (``docs/notebooks/*.py``); not a lesson.

Lesson modules never import this file (each stays copyable on its own); the notebooks do, so
that every figure of the site draws Hangul the same way:

```python
from lessons.plotting import use_hangul_font

use_hangul_font()
```

The font is NanumGothic from the pinned ``koreanize-matplotlib`` wheel (no system font, no
download). DejaVu Sans stays first because NanumGothic lacks some glyphs matplotlib needs (the
minus sign of log-axis ticks, math symbols); NanumGothic then supplies the Hangul. A glyph that
neither font has would be drawn as an empty box, so it becomes an error instead: matplotlib
reports it as a warning, through its mathtext logger, or as an exception while the figure is
drawn, and the site build fails on any of them. A label with ``$...$`` goes through mathtext as a
whole, and mathtext has no Hangul font: a label holds either math or Hangul, never both.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pathlib
import warnings

__all__ = ["save_figure", "use_hangul_font"]

FONT_FAMILY = ["DejaVu Sans", "NanumGothic"]


class _FailOnMissingGlyph(logging.Handler):
    """Turns matplotlib's log record about a missing glyph (mathtext) into an error."""

    def emit(self, record: logging.LogRecord) -> None:
        if "glyph" in record.getMessage().lower():
            raise RuntimeError(record.getMessage())


def use_hangul_font() -> None:
    """Draw Hangul with NanumGothic after DejaVu Sans, and fail on any missing glyph.

    Calling it again changes nothing more (the font and the log handler are added once).
    """
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("use_hangul_font needs koreanize-matplotlib (its NanumGothic): "
                                  "pip install -r requirements.txt")
    font_manager = importlib.import_module("matplotlib.font_manager")
    pyplot = importlib.import_module("matplotlib.pyplot")
    font = pathlib.Path(spec.submodule_search_locations[0]) / "fonts" / "NanumGothic.ttf"
    if "NanumGothic" not in {f.name for f in font_manager.fontManager.ttflist}:
        font_manager.fontManager.addfont(str(font))
    pyplot.rcParams.update({"font.family": FONT_FAMILY})
    warnings.filterwarnings("error", message="Glyph .* missing")
    logger = logging.getLogger("matplotlib")
    if not any(isinstance(h, _FailOnMissingGlyph) for h in logger.handlers):
        logger.addHandler(_FailOnMissingGlyph())


def save_figure(fig, path, dpi: int = 100) -> None:
    """Write ``fig`` as a PNG with a 256-colour palette (Pillow, matplotlib's own dependency): the
    same picture at about 40 % of the bytes, so a page with figures stays under 1 MB. The benchmark
    scripts write the pages' figures with it."""
    image_module = importlib.import_module("PIL.Image")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, metadata={"Software": None})
    with image_module.open(path) as image:
        image.convert("RGB").quantize(colors=256, method=image_module.Quantize.MEDIANCUT).save(path, optimize=True)
