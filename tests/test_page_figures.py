"""benchmarks/page_figures.py: the figures on the bptt and rnn pages, their alt text, and the numbers the pages read off them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lightning_checks as lk

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PNG = b"\x89PNG\r\n\x1a\n"
HANGUL = re.compile("[\uac00-\ud7a3]")

# figure name -> the page (Korean; English is .en.md) that shows it
FIGURES = {"bptt-gradient-norms": "bptt", "rnn-loss": "rnn"}


def _script():
    return lk.load_script(ROOT / "benchmarks" / "page_figures.py", "page_figures")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    return out, _script().main(["--out", str(out)])


def _names():
    return [f"{figure}{suffix}.png" for figure in FIGURES for suffix in ("", ".en")]


def test_main_writes_the_four_pngs(run):
    out, _ = run
    for name in _names():
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 1000, name


def test_committed_figures_exist():
    for name in _names():
        data = (DOCS / "figures" / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 1000, name


@pytest.mark.parametrize("figure,page", FIGURES.items())
@pytest.mark.parametrize("lang", ["ko", "en"])
def test_page_shows_its_figure_in_its_language(figure, page, lang):
    # Both pages link figures/<figure>.png; mkdocs-static-i18n (docs_structure: suffix) serves
    # <figure>.en.png in its place on the English site, as for every other per-language figure.
    suffix = "" if lang == "ko" else ".en"
    text = (DOCS / f"{page}{suffix}.md").read_text(encoding="utf-8")
    images = {target: alt for alt, target in re.findall(r"!\[([^\]]*)\]\(([^)\s]+)\)", text)}
    target = f"figures/{figure}.png"
    assert target in images, f"{page}{suffix}.md does not show {target}"
    assert (DOCS / f"figures/{figure}{suffix}.png").is_file(), f"no {figure}{suffix}.png for the {lang} site"
    alt = images[target].strip()
    assert len(alt) > 20
    if lang == "ko":
        assert HANGUL.search(alt), alt
    else:
        assert not HANGUL.search(alt), alt


def _page(name):
    return (DOCS / name).read_text(encoding="utf-8")


def test_bptt_numbers_quoted_on_the_pages(run):
    norms = run[1]["norms"]
    small, large = norms[1e-3], norms[1.0]
    assert len(small[1.0]) == 50
    assert f"{small[1.0][49]:.3f}" == "0.999"  # rho = 1.0 stays at 1 with small inputs
    assert small[0.9][49] < 1 < small[1.1][49]  # down and up: opposite slopes
    assert all(n[49] < n[0] for n in large.values())  # ordinary inputs: all three go down
    assert max(large, key=lambda r: large[r][49]) == 1.1  # rho = 1.1 is the slowest to shrink
    assert f"{large[1.1][49]:.1e}" == "3.7e-07"
    for name in ("bptt.md", "bptt.en.md"):
        text = _page(name)
        assert "0.999" in text and r"3.7 \times 10^{-7}" in text, name


def test_rnn_loss_numbers_quoted_on_the_pages(run):
    losses = run[1]["losses"]
    first_below = lambda limit: next(epoch for epoch, v in enumerate(losses, start=1) if v < limit)  # noqa: E731
    assert len(losses) == 300
    assert f"{losses[0]:.2f}" == "0.49"
    assert first_below(1e-2) == 65
    assert first_below(1e-4) == 107
    assert losses[99] > 1e-4 > losses[106]  # the steep drop around epoch 100
    assert max(losses[107:]) < 3e-4  # almost flat afterwards
    assert f"{losses[-1]:.1e}" == "4.8e-05"
    for name, phrases in (("rnn.md", ["0.49", "65번째 에포크", "107번째 에포크", "300번째 에포크"]),
                          ("rnn.en.md", ["0.49", "epoch 65", "epoch 107", "epoch 300"])):
        text = _page(name)
        for phrase in [*phrases, "10^{-4}", r"4.8 \times 10^{-5}"]:
            assert phrase in text, (name, phrase)
