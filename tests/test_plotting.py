"""Tests of lessons/plotting.py: Hangul draws with the pinned font, and a glyph that no font has
(the site would show an empty box) is an error, whichever way matplotlib reports it."""

import io
import logging
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from lessons.plotting import _FailOnMissingGlyph, use_hangul_font  # noqa: E402


@pytest.fixture
def hangul():
    """Undo use_hangul_font() after a test (which calls it itself: pytest resets warning filters
    between a fixture's setup and the test)."""
    rc = dict(plt.rcParams)
    with warnings.catch_warnings():
        yield
    plt.rcParams.update(rc)
    logger = logging.getLogger("matplotlib")
    for handler in [h for h in logger.handlers if isinstance(h, _FailOnMissingGlyph)]:
        logger.removeHandler(handler)
    plt.close("all")


def _draw(text: str) -> None:
    fig, ax = plt.subplots()
    ax.set_title(text)
    fig.savefig(io.BytesIO(), format="png")


def test_hangul_draws_without_a_missing_glyph(hangul):
    use_hangul_font()
    _draw("은닉 상태 h_t (−1.5)")
    _draw("$h_t = \\tanh(x_t W_{xh})$ (−1.5)")  # mathtext without Hangul


def test_calling_twice_adds_nothing(hangul):
    use_hangul_font()
    use_hangul_font()
    handlers = [h for h in logging.getLogger("matplotlib").handlers if isinstance(h, _FailOnMissingGlyph)]
    assert len(handlers) == 1
    assert plt.rcParams["font.family"] == ["DejaVu Sans", "NanumGothic"]


# mathtext has no Hangul font, so a label with $...$ must hold no Hangul at all; a script neither font has
@pytest.mark.parametrize("text", ["$은닉$", "은닉 상태 $h_t$", "\u0e01"])  # the last: Thai, in neither font
def test_a_missing_glyph_is_an_error(hangul, text):
    use_hangul_font()
    with pytest.raises((UserWarning, RuntimeError, ValueError)):
        _draw(text)
