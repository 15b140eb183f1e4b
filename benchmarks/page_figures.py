"""Figures shown on the lesson pages themselves (not only in the notebooks), one function per figure.

- ``bptt-gradient-norms.png`` / ``.en.png`` (docs/bptt.md): $\\lVert \\partial L / \\partial h_{T-k} \\rVert$ against the
  distance k for spectral radii 0.9, 1.0 and 1.1, with small inputs (left) and ordinary inputs (right), from
  `lessons.bptt.norms_by_radius` exactly as the page's tables call it (float64, seed 0: no training);
- ``rnn-loss.png`` / ``.en.png`` (docs/rnn.md): the training loss per epoch of the page's next-value model
  (`lessons.rnn.ManyToOne`, seed 0, 300 epochs), read from Lightning's ``CSVLogger``.

Korean figures draw their labels with `lessons.plotting.use_hangul_font`; English ones (``.en.png``) with
English labels. Each PNG is stored with a 256-colour palette. `main` returns the numbers the pages quote
(tests/test_page_figures.py checks them). A few seconds of one core; run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/page_figures.py            # writes docs/figures
    python benchmarks/page_figures.py --out /tmp/figures
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from lessons.plotting import save_figure  # noqa: E402
from lessons.bptt import norms_by_radius  # noqa: E402

RADII = (0.9, 1.0, 1.1)
STEPS = 50
SCALES = (1e-3, 1.0)  # small inputs (the page's first table), ordinary inputs (its second)

TEXT = {
    "ko": {"distance": "거리 k = T - t (시점)", "norm": "기울기 노름 (로그 축)", "radius": "스펙트럼 반지름",
           "small": "작은 입력 (0.001배)", "large": "보통 입력 (1배)",
           "epoch": "에포크", "loss": "훈련 손실 (MSE, 로그 축)", "loss_title": "다음 값 예측: 에포크별 훈련 손실"},
    "en": {"distance": "distance k = T - t (steps)", "norm": "gradient norm (log scale)", "radius": "spectral radius",
           "small": "small inputs (scale 0.001)", "large": "ordinary inputs (scale 1)",
           "epoch": "epoch", "loss": "training loss (MSE, log scale)", "loss_title": "Next value: training loss per epoch"},
}


def _pyplot(lang: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if lang == "ko":
        from lessons.plotting import use_hangul_font

        use_hangul_font()
    return plt


def _plain_log_ticks(ax) -> None:
    """Label a log axis 1e-4, 1e0, ... (NanumGothic has no math minus sign for 10^-4)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"1e{math.log10(v):.0f}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def gradient_norms() -> dict[float, dict[float, list[float]]]:
    """{input scale: {radius: norms for k = 0 .. STEPS - 1}}, the page's two `norms_by_radius` calls."""
    return {scale: {r: n.tolist() for r, n in norms_by_radius(radii=RADII, steps=STEPS, input_scale=scale).items()}
            for scale in SCALES}


def plot_gradient_norms(norms: dict, path: Path, lang: str) -> None:
    plt, text = _pyplot(lang), TEXT[lang]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, scale, title in zip(axes, SCALES, (text["small"], text["large"])):
        for radius, n in norms[scale].items():
            ax.semilogy(range(len(n)), n, label=f"{radius}")
        ax.set(xlabel=text["distance"], title=title)
        _plain_log_ticks(ax)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(text["norm"])
    axes[0].legend(title=text["radius"])
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def next_value_losses(epochs: int = 300) -> list[float]:
    """Training loss per epoch of docs/rnn.md's next-value model (same seed and settings as the page)."""
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    from lessons.datasets import sequence_windows
    from lessons.rnn import RNN, ManyToOne, RNNSystem

    x, y = sequence_windows()
    pl.seed_everything(0, verbose=False)
    system = RNNSystem(ManyToOne(RNN(1, 10, batch_first=True), 1), task="regression", lr=0.01)
    with tempfile.TemporaryDirectory() as logs:
        logger = pl.loggers.CSVLogger(logs, name="next_value")
        trainer = pl.Trainer(max_epochs=epochs, logger=logger, log_every_n_steps=1, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, deterministic=True)
        trainer.fit(system, DataLoader(TensorDataset(x, y), batch_size=6))
        with open(Path(logger.log_dir) / "metrics.csv", newline="") as f:
            return [float(row["train_loss"]) for row in csv.DictReader(f) if row.get("train_loss")]


def plot_losses(losses: list[float], path: Path, lang: str) -> None:
    plt, text = _pyplot(lang), TEXT[lang]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.semilogy(range(1, len(losses) + 1), losses)
    ax.set(xlabel=text["epoch"], ylabel=text["loss"], title=text["loss_title"])
    _plain_log_ticks(ax)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def _quiet() -> None:
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    for message in (".*LeafSpec.*", ".*val_dataloader.*", ".*does not have many workers.*", ".*GPU available.*"):
        warnings.filterwarnings("ignore", message=message)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    options = parser.parse_args(argv)
    torch.set_num_threads(1)
    _quiet()
    norms, losses = gradient_norms(), next_value_losses()
    for lang, suffix in (("ko", ""), ("en", ".en")):
        plot_gradient_norms(norms, options.out / f"bptt-gradient-norms{suffix}.png", lang)
        plot_losses(losses, options.out / f"rnn-loss{suffix}.png", lang)
    return {"norms": norms, "losses": losses}


if __name__ == "__main__":
    main()
