"""Korean → English translation (Tatoeba): a plain GRU encoder–decoder vs a bidirectional encoder with attention.

Data: the 3,798 Tatoeba pairs shipped in ``data/tatoeba/`` (CC BY 2.0 FR), split by pair with seed 0 into
3,038 / 379 / 381 (`lessons.datasets.tatoeba_split`). Korean in Kiwi's morphemes, English in lower-cased
words with punctuation split off (`lessons.datasets.tatoeba_tokens`); vocabularies of the training pairs,
tokens seen fewer than ``min_freq`` times become ``<unk>``; training pairs longer than ``max_train_len``
tokens on either side are left out of training (validation and test keep every pair). Models
(`lessons.seq2seq`, trained by `Seq2SeqSystem`: Adam, teacher forcing, cross-entropy over real target tokens):

- ``plain``: `Encoder` (``nn.GRU``, one direction, H units) → `Decoder` (``nn.GRU``, H units), no attention;
- ``attention``: `Encoder` (``nn.GRU``, bidirectional, H/2 units per direction, so the same H-wide states)
  → `Decoder` with `AdditiveAttention` (Bahdanau) over the encoder's states.

Same data, epochs and seeds (0, 1, 2). Each epoch the validation pairs are translated greedily and scored
by corpus BLEU (torchmetrics ``SacreBLEUScore(tokenize="13a")`` on detokenised lower-cased English);
``ModelCheckpoint`` keeps the epoch with the best validation BLEU, and the test set is read once with
it: greedy corpus BLEU, BLEU by source length (Kiwi morphemes: 1–7, 8–12, 13+), and beam search (beam 5,
length penalty α = 0.6). Writes

- ``benchmarks/results/translation.json``: every number, sample translations and the attention weights of
  a few test sentences (seed 0);
- ``benchmarks/results/translation.md`` / ``.en.md``: the tables the pages include (`render_table`);
- ``docs/figures/attention.png`` / ``.en.png``: attention heatmaps (Hangul tick labels on both).

Run from the repository root (about 8 minutes of one core: 446 s of CPU for the committed run; ``--jobs N`` runs the (model, seed) jobs in N
single-thread processes, the numbers do not depend on it)::

    OMP_NUM_THREADS=1 python benchmarks/translation.py --jobs 1
    python benchmarks/translation.py --quick --out /tmp/x   # a seconds-long check of the script
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from pytorch_lightning.callbacks import Callback, ModelCheckpoint  # noqa: E402
from torch import nn  # noqa: E402
from torchmetrics.text import SacreBLEUScore  # noqa: E402

from lessons import datasets  # noqa: E402
from lessons.datasets import TranslationData, pad_pairs  # noqa: E402
from lessons.seq2seq import GRUSeq2Seq, Seq2SeqSystem, Vocabulary, detokenize  # noqa: E402

FULL = dict(epochs=15, seeds=[0, 1, 2], embed=64, hidden=128, dropout=0.3, lr=3e-3, batch_size=32, min_freq=2,
            max_train_len=30, beam=5, alpha=0.6, limit=None)
QUICK = dict(FULL, epochs=2, seeds=[0], embed=16, hidden=16, limit=(240, 40, 60))
MODELS = ["plain", "attention"]
BUCKETS = [(1, 7), (8, 12), (13, None)]
LABELS = {"ko": {"plain": "인코더-디코더 (단방향 GRU)", "attention": "양방향 GRU + 어텐션"},
          "en": {"plain": "encoder–decoder (unidirectional GRU)", "attention": "bidirectional GRU + attention"}}
LOVE = "난 널 사랑해"  # the course notes' "I love you" → "난 널 사랑해"
SHOWN = 4  # test sentences whose translations and attention maps the JSON keeps


def bucket_name(lo: int, hi: int | None) -> str:
    return f"{lo}–{hi}" if hi else f"{lo}+"


def token_table(split) -> dict:
    """For each way to cut Korean: training vocabulary (every token seen), share of test tokens unseen, mean length."""
    train, _, test = (p.tolist() for p in split)
    out = {}
    for name in ("morphemes", "spaces", "chars"):
        tokens = datasets.tatoeba_tokens(name)
        seen = {t for i in train for t in tokens[i][0]}
        test_tokens = [t for i in test for t in tokens[i][0]]
        out[name] = {"vocab": len(seen), "test_unknown": sum(t not in seen for t in test_tokens) / len(test_tokens),
                     "mean_length": sum(len(tokens[i][0]) for i in train) / len(train)}
    return out


def prepare(cfg: dict, seed: int = 0) -> TranslationData:
    return TranslationData(cfg["min_freq"], cfg["max_train_len"], cfg["batch_size"], seed, cfg["limit"])


def build(name: str, cfg: dict, data: TranslationData) -> GRUSeq2Seq:
    """``plain``: one-direction GRU encoder (H units), no attention; ``attention``: bidirectional (H/2 + H/2) + attention."""
    return GRUSeq2Seq(data.source_size, data.target_size, cfg["embed"], cfg["hidden"], name == "attention", cfg["dropout"])


class EpochTimer(Callback):
    """Seconds of each training epoch (batches only) and of each validation pass (greedy decoding + BLEU)."""

    def __init__(self) -> None:
        self.train, self.val = [], []

    def on_train_epoch_start(self, trainer, module):
        self.start = time.process_time()

    def on_validation_epoch_start(self, trainer, module):
        if hasattr(self, "start"):
            self.train.append(time.process_time() - self.start)
        self.val_start = time.process_time()

    def on_validation_epoch_end(self, trainer, module):
        self.val.append(time.process_time() - self.val_start)


def _bleu(hyps: list[str], refs: list[str]) -> float:
    """Corpus BLEU (0–100); an ``<unk>`` written by the model counts as a wrong word (it matches nothing)."""
    hyps = [" ".join("UNK" if w == "<unk>" else w for w in h.split(" ")) for h in hyps]
    return float(SacreBLEUScore(tokenize="13a")(hyps, [[r] for r in refs])) * 100


def job(name: str, seed: int, cfg: dict) -> dict:
    """Train one (model, seed), keep the epoch with the best validation BLEU, then read the test set."""
    torch.set_num_threads(1)
    _quiet()
    data = prepare(cfg, seed)
    source, target = Vocabulary(data.source_words), Vocabulary(data.target_words)
    pl.seed_everything(seed, verbose=False)
    model = build(name, cfg, data)
    system = Seq2SeqSystem(model, source.words, target.words, tokenizer="kiwi", lr=cfg["lr"])
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as folder:
        best = ModelCheckpoint(dirpath=folder, monitor="val_bleu", mode="max", save_top_k=1)
        trainer = pl.Trainer(max_epochs=cfg["epochs"], accelerator="cpu", devices=1, logger=False, callbacks=[best, timer],
                             enable_progress_bar=False, enable_model_summary=False, deterministic=True,
                             num_sanity_val_steps=0)
        trainer.fit(system, data)
        system = Seq2SeqSystem.load_from_checkpoint(best.best_model_path, model=build(name, cfg, data))
        best_epoch = int(Path(best.best_model_path).stem.split("-")[0].split("=")[1]) + 1  # counted from 1
        val_bleu = float(best.best_model_score) * 100
    system.eval()
    tokens, pairs = datasets.tatoeba_tokens("morphemes"), datasets.load_tatoeba()
    src, lengths, _ = pad_pairs(data.splits["test"])
    refs = [detokenize(datasets.english_words(pairs[i][0])) for i in data.indices["test"]]  # the real words, no <unk>
    start = time.process_time()
    greedy_ids, maps = system.model.greedy(src, lengths)
    greedy_s = time.process_time() - start
    start = time.process_time()
    beam_ids = system.model.beam_search(src, lengths, cfg["beam"], cfg["alpha"])
    beam_s = time.process_time() - start
    greedy, beam = ([detokenize(target.decode(h)) for h in ids] for ids in (greedy_ids, beam_ids))  # shown with <unk>
    buckets = {}
    for lo, hi in BUCKETS:
        rows = [k for k, n in enumerate(lengths.tolist()) if n >= lo and (hi is None or n <= hi)]
        buckets[bucket_name(lo, hi)] = {"count": len(rows), "bleu": _bleu([greedy[k] for k in rows], [refs[k] for k in rows]),
                                        "beam_bleu": _bleu([beam[k] for k in rows], [refs[k] for k in rows])}
    love_ids = torch.tensor([source.encode(datasets.kiwi_morphemes(LOVE))])
    shown = list(range(min(SHOWN, len(refs))))
    test_index = data.indices["test"]
    samples = [{"korean": pairs[test_index[k]][1], "source": list(tokens[test_index[k]][0]),
                "reference": refs[k], "greedy": greedy[k], "beam": beam[k],
                "attention": None if maps is None else [[round(w, 3) for w in row] for row in maps[k].tolist()],
                "output": target.decode(greedy_ids[k]) + ["<eos>"]} for k in _pick(lengths, shown)]
    return {"model": name, "seed": seed, "best_epoch": best_epoch, "val_bleu": val_bleu,
            "test_bleu": _bleu(greedy, refs), "test_beam_bleu": _bleu(beam, refs), "buckets": buckets,
            "epoch_s": statistics.mean(timer.train), "val_s": statistics.mean(timer.val), "greedy_test_s": greedy_s,
            "beam_test_s": beam_s, "parameters": sum(p.numel() for p in model.parameters()),
            "love": {"greedy": detokenize(target.decode(system.model.greedy(love_ids)[0][0])),
                     "beam": detokenize(target.decode(system.model.beam_search(love_ids, None, cfg["beam"], cfg["alpha"])[0]))},
            "samples": samples if seed == 0 else []}


def _pick(lengths: torch.Tensor, shown: list[int]) -> list[int]:
    """Test sentences of 5 to 9 morphemes (short enough to read as a heatmap), the first ``SHOWN``."""
    good = [k for k, n in enumerate(lengths.tolist()) if 5 <= n <= 9]
    return (good or shown)[:len(shown)]


def _quiet() -> None:
    import logging

    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def benchmark(cfg: dict, jobs: int = 1, log=print) -> dict:
    start = time.time()
    pairs = datasets.load_tatoeba()
    split = datasets.tatoeba_split(len(pairs))
    where = {int(i): part for part, idx in zip(("train", "val", "test"), split) for i in idx}
    love_rows = [k for k, (en, ko, _) in enumerate(pairs) if ko.strip(" .!") == LOVE or en.strip(" .!") == "I love you"]
    data = prepare(cfg)
    keys = [(name, seed) for name in MODELS for seed in cfg["seeds"]]
    if jobs > 1:
        with concurrent.futures.ProcessPoolExecutor(jobs) as pool:
            runs = list(pool.map(job, *zip(*[(n, s, cfg) for n, s in keys])))
    else:
        runs = []
        for n, s in keys:
            runs.append(job(n, s, cfg))
            log(f"done {n} seed {s} after {time.time() - start:.0f} s")
    for run in runs:
        log(f"{run['model']} seed {run['seed']}: val {run['val_bleu']:.2f} test {run['test_bleu']:.2f} "
            f"beam {run['test_beam_bleu']:.2f} epoch {run['best_epoch']} {run['epoch_s']:.1f} s/epoch")
    models = {}
    for name in MODELS:
        mine = [r for r in runs if r["model"] == name]
        entry = {"runs": [{k: v for k, v in r.items() if k != "samples"} for r in mine],
                 "parameters": mine[0]["parameters"], "best_epochs": [r["best_epoch"] for r in mine],
                 "epoch_s": statistics.mean(r["epoch_s"] for r in mine), "val_s": statistics.mean(r["val_s"] for r in mine),
                 "beam_test_s": statistics.mean(r["beam_test_s"] for r in mine),
                 "greedy_test_s": statistics.mean(r["greedy_test_s"] for r in mine), "samples": mine[0]["samples"]}
        for key, field in (("val", "val_bleu"), ("test", "test_bleu"), ("beam", "test_beam_bleu")):
            entry[f"{key}_mean"], entry[f"{key}_std"] = _stats([r[field] for r in mine])
        entry["buckets"] = {b: {"count": mine[0]["buckets"][b]["count"],
                                **dict(zip(("mean", "std"), _stats([r["buckets"][b]["bleu"] for r in mine]))),
                                **dict(zip(("beam_mean", "beam_std"), _stats([r["buckets"][b]["beam_bleu"] for r in mine])))}
                            for b in mine[0]["buckets"]}
        models[name] = entry
    sizes = {s: len(data.indices[s]) for s in ("train", "val", "test")} | {"train_used": len(data.splits["train"])}
    return {"config": {k: v for k, v in cfg.items()}, "sizes": sizes,
            "vocab": {"source": data.source_size, "target": data.target_size},
            "tokens": token_table(split), "models": models,
            "love": {"korean": LOVE, "pairs_in_data": [{"english": pairs[k][0], "korean": pairs[k][1], "split": where[k]}
                                                       for k in love_rows],
                     "outputs": {name: [r["love"] for r in runs if r["model"] == name] for name in MODELS}},
            "cpu_seconds": sum(r["epoch_s"] * cfg["epochs"] + r["val_s"] * cfg["epochs"] + r["beam_test_s"] for r in runs),
            "wall_seconds": time.time() - start, "torch": torch.__version__}


def _pm(mean: float, std: float) -> str:
    return f"{mean:.1f} ± {std:.1f}"


def render_table(results: dict, lang: str = "en") -> str:
    """Markdown tables of ``results``: corpus BLEU of each model, then BLEU by source length."""
    ko = lang == "ko"
    cfg, models, sizes = results["config"], results["models"], results["sizes"]
    head = (["모델", "파라미터 수", "검증 BLEU", "테스트 BLEU (탐욕)", "테스트 BLEU (빔 5)", "최고 에포크", "에포크당 CPU 초"] if ko else
            ["model", "parameters", "validation BLEU", "test BLEU (greedy)", "test BLEU (beam 5)", "best epochs", "CPU s / epoch"])
    lines = ["`python benchmarks/translation.py`: " + (
        f"훈련 쌍 {sizes['train_used']:,}개, {cfg['epochs']} 에포크, 시드 {len(cfg['seeds'])}개의 평균 ± 표준편차, "
        f"검증 BLEU가 가장 높은 에포크의 테스트 말뭉치 BLEU (테스트 쌍 {sizes['test']:,}개)" if ko else
        f"{sizes['train_used']:,} training pairs, {cfg['epochs']} epochs, mean ± std over {len(cfg['seeds'])} seeds, "
        f"test corpus BLEU at the epoch with the best validation BLEU ({sizes['test']:,} test pairs)"),
        "", "| " + " | ".join(head) + " |", "|---|--:|--:|--:|--:|--:|--:|"]
    for name in MODELS:
        m = models[name]
        lines.append(f"| {LABELS[lang][name]} | {m['parameters']:,} | {_pm(m['val_mean'], m['val_std'])} | "
                     f"{_pm(m['test_mean'], m['test_std'])} | {_pm(m['beam_mean'], m['beam_std'])} | "
                     f"{', '.join(map(str, m['best_epochs']))} | {m['epoch_s']:.1f} |")
    buckets = list(models[MODELS[0]]["buckets"])
    lines += ["", "| " + ("원문 형태소 수" if ko else "source morphemes") + " | " +
              " | ".join(f"{b} ({models[MODELS[0]]['buckets'][b]['count']}{'문장' if ko else ' sentences'})" for b in buckets)
              + " |", "|---|" + "--:|" * len(buckets)]
    for name in MODELS:
        lines.append(f"| {LABELS[lang][name]} | " + " | ".join(
            _pm(models[name]["buckets"][b]["mean"], models[name]["buckets"][b]["std"]) for b in buckets) + " |")
    return "\n".join(lines) + "\n"


def plot_attention(results: dict, path: Path, lang: str) -> None:
    """Heatmaps of the attention model's weights (seed 0) for the JSON's test sentences: rows are English
    output tokens, columns Korean source morphemes (Hangul labels on both pages)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lessons.plotting import use_hangul_font

    use_hangul_font()
    samples = [s for s in results["models"]["attention"]["samples"] if s["attention"]][:SHOWN]
    fig, axes = plt.subplots(1, len(samples), figsize=(3.3 * len(samples), 3.6), squeeze=False)
    for ax, s in zip(axes[0], samples):
        weights = torch.tensor(s["attention"])
        ax.imshow(weights, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(s["source"])), s["source"], rotation=60, fontsize=8)
        ax.set_yticks(range(len(s["output"])), s["output"], fontsize=8)
        ax.set_title(s["korean"], fontsize=9)
    fig.supxlabel("원문 형태소 (한국어)" if lang == "ko" else "source morphemes (Korean)", fontsize=9)
    fig.supylabel("출력 단어 (영어)" if lang == "ko" else "output words (English)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def main(args: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long check: tiny models, 240 pairs, 2 epochs")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--figures", type=Path, default=None, help="default: docs/figures (full run) or --out (quick)")
    parser.add_argument("--jobs", type=int, default=1, help="single-thread processes for the (model, seed) jobs")
    options = parser.parse_args(args)
    torch.set_num_threads(1)
    _quiet()
    results = benchmark(QUICK if options.quick else FULL, options.jobs,
                        log=(lambda *a: None) if options.quick else (lambda *a: print(*a, flush=True)))
    write(results, options.out, options.figures or (options.out if options.quick else ROOT / "docs" / "figures"))
    return results


def write(results: dict, out: Path, figures: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "translation.json").write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    for lang, suffix in (("ko", ""), ("en", ".en")):
        (out / f"translation{suffix}.md").write_text(render_table(results, lang), encoding="utf-8")
        plot_attention(results, figures / f"attention{suffix}.png", lang)


if __name__ == "__main__":
    main()
