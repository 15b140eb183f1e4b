"""benchmarks/lesson_figures.py: the figures the LSTM and Conv1D pages show, and the numbers their sentences quote."""

import re
from pathlib import Path

import pytest

import lightning_checks as lk

ROOT = Path(__file__).resolve().parents[1]
FIGURES = {"lstm": "lstm-gates", "conv1d": "conv1d-receptive-field"}
HANGUL = re.compile("[\uac00-\ud7a3]")


def _script():
    return lk.load_script(ROOT / "benchmarks" / "lesson_figures.py", "lesson_figures")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    return out, _script().main(["--out", str(out)])


def _page(lesson, suffix):
    return (ROOT / "docs" / f"{lesson}{suffix}.md").read_text(encoding="utf-8")


def _is_png(path):
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_main_writes_the_four_pngs(run):
    out, _ = run
    for name in FIGURES.values():
        for suffix in ("", ".en"):
            assert _is_png(out / f"{name}{suffix}.png"), name + suffix


def test_committed_figures_exist():
    for name in FIGURES.values():
        for suffix in ("", ".en"):
            assert _is_png(ROOT / "docs" / "figures" / f"{name}{suffix}.png"), name + suffix


@pytest.mark.parametrize("lesson", FIGURES)
def test_pages_include_their_figure_with_alt_text(lesson):
    # The i18n plugin (docs_structure: suffix) serves figures/x.en.png for figures/x.png on English pages,
    # so both pages name the unsuffixed file, as docs/sentiment*.md do.
    for suffix in ("", ".en"):
        found = re.findall(r"!\[([^\]]*)\]\(figures/" + re.escape(FIGURES[lesson]) + r"(\.en)?\.png\)", _page(lesson, suffix))
        assert len(found) == 1, (lesson, suffix)
        alt, en = found[0]
        assert not en, "name the .png; the English build picks the .en.png"
        assert len(alt) > 40
        assert bool(HANGUL.search(alt)) == (suffix == ""), (lesson, suffix, alt)


def test_lstm_numbers_the_pages_quote(run):
    _, results = run
    gates = results["lstm"]
    assert gates["hidden"] == 16 and _script().GATES["steps"] == 20 and _script().GATES["epochs"] == 15
    assert round(gates["val_mse_ratio"], 2) == 0.03
    assert gates["marks"] == [7, 16]
    assert gates["units_moved"] == [5, 5]
    assert round(gates["i_unmarked_spread"], 2) == 0.08
    for key in "ifo":
        assert tuple(gates["trace"][key].shape) == (20, 16)
    ko, en = _page("lstm", ""), _page("lstm", ".en")
    for text in ("은닉 유닛 16개", "15 에포크", "0.03배", "t = 7, 16", "16개 가운데 5개", "0.3 넘게", "0.08", "시점 7과 16"):
        assert text in ko, text
    for text in ("16 hidden units", "15 epochs", "0.03 times", "t = 7, 16", "5 of the 16 units", "more than 0.3", "0.08",
                 "steps 7 and 16"):
        assert text in en, text


def test_conv1d_numbers_the_pages_quote(run):
    _, results = run
    field = results["conv1d"]
    assert field["layers"] == list(range(1, 11))
    assert field["window"] == 40 and field["forecaster"] == 32
    assert (field["plain3"][-1], field["plain7"][-1], field["dilated"][-1]) == (21, 61, 2047)
    # the dilated stack is narrower than the kernel-7 stack up to 3 layers and wider from 4 on
    assert all(d < p for d, p in zip(field["dilated"][:3], field["plain7"][:3]))
    assert all(d > p for d, p in zip(field["dilated"][3:], field["plain7"][3:]))
    ko, en = _page("conv1d", ""), _page("conv1d", ".en")
    for text in ("40시점 창", "32시점", "3층까지는", "4층부터", "10층에서는 2,047시점", "21시점", "61시점"):
        assert text in ko, text
    for text in ("40-step forecasting window", "32 steps", "up to 3 layers", "from 4 layers on", "2,047 steps at 10 layers",
                 "21 steps", "61."):
        assert text in en, text
