"""Captioning strips of handwritten digits: CNN → LSTM without and with attention, same budget, seeds 0, 1, 2.

Data: the 1,797 8 × 8 digits bundled with scikit-learn (`lessons.datasets.load_digit_images`), split FIRST
into 70 % / 15 % / 15 % of the images (seed 0), then composed by `lessons.captioning.split_strips` into
strips of 1 to 4 digits, (1, 8, 32), left-aligned, zero on the right, captioned in Korean number words
("삼 칠 일"). The test strips hold only handwriting no training strip shows. Models
(`lessons.captioning.CaptionModel`, `DigitEncoder`, ``nn.LSTM``), trained by `CaptionSystem` (Adam,
teacher forcing) for the same number of epochs:

- ``plain``: the feature vector of the CNN sets the LSTM's first state, nothing else;
- ``attention``: the same, and each step looks at the CNN's 8 columns (additive attention).

Each run keeps the epoch with the best validation exact match (greedy captions), then reads the test
strips once: exact match (greedy and beam 3), corpus BLEU-4 (torchmetrics ``BLEUScore``, word tokens),
exact match by strip length, CPU seconds per training epoch and per test pass (one thread). The seed-0
runs give the figures: held-out strips with both models' captions, and where the attention model looks
for each word. The English figures show the same ids in English words: the vocabularies have the same
order, so a model trained on English captions is the same model (tests/test_captioning.py checks it).
Writes ``benchmarks/results/captioning.json``, ``captioning.md`` / ``.en.md`` (`render_table`) and
``docs/figures/captioning-samples.png``, ``captioning-attention.png`` (and ``.en.png``).

Run from the repository root (each (model, seed) job takes about 2 minutes of one core)::

    OMP_NUM_THREADS=1 python benchmarks/captioning.py --jobs 1
    python benchmarks/captioning.py --quick --out /tmp/x   # a seconds-long check of the script
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import datetime
import json
import logging
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402
from torchmetrics.text import BLEUScore  # noqa: E402

from lessons.captioning import (DIGIT_WORDS, SPECIALS, CaptionModel, CaptionSystem, DigitEncoder, beam_search,  # noqa: E402
                                greedy, split_strips)
from lessons.datasets import load_digit_images  # noqa: E402

MODELS = ("plain", "attention")
FULL = {"strips": [8000, 1000, 1000], "epochs": 25, "seeds": [0, 1, 2], "batch_size": 64, "lr": 1e-3,
        "embedding": 32, "hidden": 64, "channels": 32, "features": 128, "beam": 3, "samples": 8}
QUICK = {**FULL, "strips": [300, 100, 100], "epochs": 1, "seeds": [0], "hidden": 16, "channels": 8, "features": 16}
LABELS = {"ko": {"plain": "CNN → LSTM", "attention": "CNN → LSTM + 어텐션"},
          "en": {"plain": "CNN → LSTM", "attention": "CNN → LSTM + attention"}}


def _quiet() -> None:
    for name in ("pytorch_lightning", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*(does not have many workers|LeafSpec|val_dataloader).*")


def make_model(name: str, cfg: dict) -> CaptionModel:
    encoder = DigitEncoder(32, cfg["channels"], cfg["features"])
    return CaptionModel(encoder, nn.LSTM(cfg["embedding"], cfg["hidden"], batch_first=True), len(SPECIALS) + 10,
                        attention=name == "attention")


class Track(pl.Callback):
    """CPU seconds of each training epoch, validation exact match per epoch, and the best epoch's weights."""

    def __init__(self) -> None:
        self.train_s, self.val_exact, self.best, self.state = [], [], -1.0, None

    def on_train_epoch_start(self, trainer, module):
        self.started = time.process_time()

    def on_validation_epoch_start(self, trainer, module):
        if not trainer.sanity_checking:
            self.train_s.append(time.process_time() - self.started)

    def on_validation_epoch_end(self, trainer, module):
        if trainer.sanity_checking:
            return
        self.val_exact.append(float(trainer.callback_metrics["val_exact"]))
        if self.val_exact[-1] > self.best:
            self.best, self.epoch, self.state = self.val_exact[-1], trainer.current_epoch + 1, copy.deepcopy(module.state_dict())


def data(cfg: dict) -> dict:
    images, labels = load_digit_images()
    return split_strips(images, labels, cfg["strips"], language="ko", seed=0)


def run(name: str, cfg: dict, seed: int) -> dict:
    _quiet()
    torch.set_num_threads(1)
    parts = data(cfg)
    pl.seed_everything(seed, verbose=False)
    words = SPECIALS + DIGIT_WORDS["ko"]
    system = CaptionSystem(make_model(name, cfg), words, lr=cfg["lr"], max_len=6)
    train = DataLoader(TensorDataset(*parts["train"][:2]), cfg["batch_size"], shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    val = DataLoader(TensorDataset(*parts["val"][:2]), 500)
    track = Track()
    trainer = pl.Trainer(max_epochs=cfg["epochs"], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, deterministic=True, num_sanity_val_steps=0, callbacks=[track],
                         accelerator="cpu")
    trainer.fit(system, train, val)
    system.load_state_dict(track.state)
    system.eval()
    strips, y, captions = parts["test"]
    started = time.process_time()
    ids, _ = greedy(system.model, strips, 6)
    eval_s = time.process_time() - started
    truth = [[i - len(SPECIALS) for i in row.tolist() if i >= len(SPECIALS)] for row in y]
    greedy_digits = [[i - len(SPECIALS) for i in row.tolist()[: (row.tolist() + [2]).index(2)] if i >= len(SPECIALS)]
                     for row in ids]
    beam_digits = [[i - len(SPECIALS) for i in row] for row in beam_search(system.model, strips, cfg["beam"], 6)]
    say = lambda ds: " ".join(DIGIT_WORDS["ko"][d] for d in ds)  # noqa: E731
    bleu = float(BLEUScore(n_gram=4)([say(d) for d in greedy_digits], [[c] for c in captions]))
    by_length = {str(n): statistics.fmean(p == t for p, t in zip(greedy_digits, truth) if len(t) == n) for n in range(1, 5)}
    result = {"model": name, "seed": seed, "best_epoch": track.epoch, "val_exact": track.best,
              "val_curve": track.val_exact, "test_exact": statistics.fmean(p == t for p, t in zip(greedy_digits, truth)),
              "test_beam_exact": statistics.fmean(p == t for p, t in zip(beam_digits, truth)), "test_bleu": bleu,
              "by_length": by_length, "epoch_s": statistics.fmean(track.train_s), "eval_s": eval_s,
              "parameters": sum(p.numel() for p in system.parameters())}
    if seed == cfg["seeds"][0]:
        k = cfg["samples"]
        result["samples"] = {"predicted": greedy_digits[:k]}
        if name == "attention":
            _, weights = greedy(system.model, strips[:k], 6)
            result["samples"]["weights"] = [[[round(w, 3) for w in step] for step in row[: len(p) + 1]]
                                            for row, p in zip(weights.tolist(), greedy_digits[:k])]
    return result


def _job(args: tuple) -> dict:
    return run(*args)


def summary(runs: list[dict]) -> dict:
    def ms(values):
        return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

    out = {"runs": [{k: v for k, v in r.items() if k != "samples"} for r in runs], "parameters": runs[0]["parameters"],
           "best_epochs": [r["best_epoch"] for r in runs], "epoch_s": statistics.fmean(r["epoch_s"] for r in runs),
           "eval_s": statistics.fmean(r["eval_s"] for r in runs)}
    for key in ("val_exact", "test_exact", "test_beam_exact", "test_bleu"):
        out[f"{key}_mean"], out[f"{key}_std"] = ms([r[key] for r in runs])
    out["by_length"] = {n: dict(zip(("mean", "std"), ms([r["by_length"][n] for r in runs]))) for n in ("1", "2", "3", "4")}
    out["val_curve_mean"] = [statistics.fmean(c) for c in zip(*(r["val_curve"] for r in runs))]
    return out


def benchmark(cfg: dict, jobs: int = 1, log=print) -> dict:
    started, cpu = time.perf_counter(), time.process_time()
    todo = [(name, cfg, seed) for name in MODELS for seed in cfg["seeds"]]
    if jobs == 1:
        runs = []
        for job in todo:
            runs.append(_job(job))
            log(job[0], job[2], {k: runs[-1][k] for k in ("best_epoch", "test_exact", "test_bleu", "epoch_s")})
    else:
        with concurrent.futures.ProcessPoolExecutor(jobs) as pool:
            runs = list(pool.map(_job, todo))  # results in the order of `todo`, as with --jobs 1
    parts = data(cfg)
    strips, _, captions = parts["test"]
    k = cfg["samples"]
    first = {r["model"]: r["samples"] for r in runs if "samples" in r}
    words = {w: i for i, w in enumerate(DIGIT_WORDS["ko"])}
    return {"config": cfg,
            "data": {"images": [len(load_digit_images()[1])], "strips": cfg["strips"], "width": 32, "max_digits": 4},
            "models": {name: summary([r for r in runs if r["model"] == name]) for name in MODELS},
            "samples": {"images": [[[round(v, 2) for v in row] for row in s[0]] for s in strips[:k].tolist()],
                        "truth": [[words[w] for w in c.split()] for c in captions[:k]],
                        "plain": first["plain"]["predicted"], "attention": first["attention"]["predicted"],
                        "weights": first["attention"]["weights"]},
            "seconds": time.perf_counter() - started,
            "cpu_seconds": time.process_time() - cpu + (sum(r["epoch_s"] * cfg["epochs"] for r in runs) if jobs > 1 else 0),
            "jobs": jobs,
            "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads_per_process": 1,
                        "date": datetime.date.today().isoformat()}}


def _pm(mean: float, std: float, digits: int = 3) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def render_table(results: dict, lang: str = "en") -> str:
    """Markdown: both models' test exact match (greedy, beam), BLEU, exact match by strip length, seconds."""
    ko = lang == "ko"
    cfg, models = results["config"], results["models"]
    head = (["모델", "파라미터 수", "검증 완전 일치", "테스트 완전 일치", "빔 3 완전 일치", "BLEU (0~100)", "최고 에포크", "에포크당 CPU 초"] if ko else
            ["model", "parameters", "validation exact match", "test exact match", "beam 3 exact match", "BLEU (0–100)",
             "best epochs", "CPU s / epoch"])
    lines = ["`python benchmarks/captioning.py`: " + (
        f"훈련 띠 {cfg['strips'][0]:,}개, 테스트 띠 {cfg['strips'][2]:,}개, {cfg['epochs']} 에포크, 시드 {len(cfg['seeds'])}개의 "
        "평균 ± 표준편차, 검증 완전 일치가 가장 높은 에포크의 테스트 결과" if ko else
        f"{cfg['strips'][0]:,} training strips, {cfg['strips'][2]:,} test strips, {cfg['epochs']} epochs, mean ± std over "
        f"{len(cfg['seeds'])} seeds, test results at the epoch with the best validation exact match"),
        "", "| " + " | ".join(head) + " |", "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for name in MODELS:
        m = models[name]
        lines.append(f"| {LABELS[lang][name]} | {m['parameters']:,} | {_pm(m['val_exact_mean'], m['val_exact_std'])} | "
                     f"{_pm(m['test_exact_mean'], m['test_exact_std'])} | "
                     f"{_pm(m['test_beam_exact_mean'], m['test_beam_exact_std'])} | "
                     f"{_pm(100 * m['test_bleu_mean'], 100 * m['test_bleu_std'], 1)} | {', '.join(map(str, m['best_epochs']))} | "
                     f"{m['epoch_s']:.1f} |")
    lines += ["", "| " + ("띠의 숫자 수" if ko else "digits in the strip") + " | 1 | 2 | 3 | 4 |", "|---|--:|--:|--:|--:|"]
    for name in MODELS:
        by = models[name]["by_length"]
        lines.append(f"| {LABELS[lang][name]} | " + " | ".join(_pm(by[n]["mean"], by[n]["std"]) for n in "1234") + " |")
    return "\n".join(lines) + "\n"


def _plt(lang: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if lang == "ko":
        from lessons.plotting import use_hangul_font

        use_hangul_font()
    return plt


def plot_samples(results: dict, path: Path, lang: str) -> None:
    """Held-out strips with the true caption and both models' greedy captions (seed 0)."""
    plt, s = _plt(lang), results["samples"]
    say = lambda ds: " ".join(DIGIT_WORDS[lang][d] for d in ds) or "∅"  # noqa: E731
    n = len(s["images"])
    fig, axes = plt.subplots((n + 1) // 2, 2, figsize=(8, 1.25 * ((n + 1) // 2)))
    for ax, image, truth, plain, attention in zip(axes.flat, s["images"], s["truth"], s["plain"], s["attention"]):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        mark = lambda p: "✓" if p == truth else "✗"  # noqa: E731
        names = ("정답", "LSTM", "어텐션") if lang == "ko" else ("truth", "LSTM", "attention")
        ax.set_title(f"{names[0]}: {say(truth)}\n{names[1]}: {say(plain)} {mark(plain)}   {names[2]}: {say(attention)} "
                     f"{mark(attention)}", fontsize=8, loc="left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def plot_attention(results: dict, path: Path, lang: str, count: int = 3) -> None:
    """For a few held-out strips: the strip, and below it the attention weights of each word over the 8 columns."""
    plt, s = _plt(lang), results["samples"]
    fig, axes = plt.subplots(2, count, figsize=(3.2 * count, 3.4), gridspec_kw={"height_ratios": [1, 2.2]})
    order = sorted(range(len(s["images"])), key=lambda i: -len(s["truth"][i]))[:count]
    for k, i in enumerate(order):
        axes[0, k].imshow(s["images"][i], cmap="gray_r", vmin=0, vmax=1, extent=(0, 32, 8, 0))
        axes[0, k].set_xticks(range(0, 33, 8))
        axes[0, k].set_yticks([])
        weights = s["weights"][i]
        axes[1, k].imshow(weights, cmap="viridis", vmin=0, vmax=1, aspect="auto", extent=(0, 32, len(weights), 0))
        labels = [DIGIT_WORDS[lang][d] for d in s["attention"][i]] + ["<eos>"]
        axes[1, k].set_yticks([j + 0.5 for j in range(len(weights))], labels)
        axes[1, k].set_xticks(range(0, 33, 8))
        axes[1, k].set_xlabel("픽셀 열 (어텐션 열 하나 = 4픽셀)" if lang == "ko" else "pixel column (one attention column = 4 pixels)",
                              fontsize=8)
    axes[1, 0].set_ylabel("쓴 단어" if lang == "ko" else "word written")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def main(args: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long check: tiny models, 300 strips, 1 epoch")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--figures", type=Path, default=None, help="default: docs/figures (full run) or --out (quick)")
    parser.add_argument("--jobs", type=int, default=1, help="single-thread worker processes, one (model, seed) each")
    options = parser.parse_args(args)
    torch.set_num_threads(1)
    _quiet()
    results = benchmark(QUICK if options.quick else FULL, options.jobs,
                        log=(lambda *a: None) if options.quick else (lambda *a: print(*a, flush=True)))
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "captioning.json").write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    figures = options.figures or (options.out if options.quick else ROOT / "docs" / "figures")
    for lang, suffix in (("ko", ""), ("en", ".en")):
        (options.out / f"captioning{suffix}.md").write_text(render_table(results, lang), encoding="utf-8")
        plot_samples(results, figures / f"captioning-samples{suffix}.png", lang)
        plot_attention(results, figures / f"captioning-attention{suffix}.png", lang)
    return results


if __name__ == "__main__":
    main()
