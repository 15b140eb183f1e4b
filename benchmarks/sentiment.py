"""Sentiment analysis of Korean movie reviews (NSMC): bag of words vs LSTM, BiLSTM, Conv1D + LSTM, LSTM + skip-gram.

Data: the 50,000 balanced NSMC reviews shipped in ``data/nsmc/`` (CC0), Kiwi's morphemes
(`lessons.datasets.nsmc_tokens`, cached), split with seed 0 into 40,000 / 5,000 / 5,000
(`lessons.datasets.NSMCData`: vocabulary of the training reviews with ``min_freq=2``, length-bucketed
batches, packed sequences). Models, all trained by `lessons.sentiment.SentimentSystem` (Adam, binary
cross-entropy on one logit) for the same number of epochs, seeds 0, 1, 2:

- ``bow``: `lessons.sentiment.BagOfWords`, logistic regression on morpheme counts (the baseline; its
  weight decay is chosen on validation, seed 0, from ``BOW_DECAYS``);
- ``lstm``, ``bilstm``: `lessons.sentiment.SentimentClassifier` with ``nn.LSTM`` (one or two directions);
- ``conv1d``: the Conv1D lesson's text model, `lessons.conv1d.HybridClassifier` (the notes' Conv1D(64, 5)
  → MaxPool1D(4) → LSTM(55)), reviews padded to at least 8 tokens so one pooled step exists;
- ``lstm_w2v``: ``lstm`` whose embedding starts from skip-gram vectors trained on the same training
  reviews with the embedding lesson (`lessons.embedding`: `SkipGramNegativeSampling`, `SkipGramBatches`,
  `Word2VecSystem`; window 5, 5 negatives, subsampling 1e-3, ``W2V_EPOCHS`` epochs), then fine-tuned.

``ModelCheckpoint`` keeps each run's epoch with the best validation accuracy; the test set is read
once with it. The best recurrent model (highest mean validation accuracy) and the baseline are then
trained on the first 2,000 / 5,000 / 10,000 training reviews (same epochs, same seeds) for the
learning curve. The best model's seed-0 run gives the error analysis (confusion matrix, the most
confidently wrong test reviews, negations). Writes

- ``benchmarks/results/sentiment.json``: every number;
- ``benchmarks/results/sentiment.md`` / ``.en.md``: the tables the pages include (`render_table`);
- ``docs/figures/sentiment-learning-curve.png`` / ``.en.png``: the learning curve (Korean / English labels).

Run from the repository root: about 15 minutes of one core's CPU time (902 s for the committed run, which
spread its jobs over 3 single-thread processes with ``--workers 3`` on a shared 2-core machine; the numbers
do not depend on ``--workers``)::

    OMP_NUM_THREADS=1 python benchmarks/sentiment.py --workers 3
    python benchmarks/sentiment.py --quick --out /tmp/x   # a seconds-long check of the script
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
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

from lessons import conv1d, embedding  # noqa: E402
from lessons.datasets import NSMCData, kiwi_morphemes, load_nsmc, nsmc_split, nsmc_tokens  # noqa: E402
from lessons.sentiment import BagOfWords, SentimentClassifier, SentimentSystem, Vocab, classify  # noqa: E402

FULL = dict(epochs=3, seeds=[0, 1, 2], embed=64, hidden=64, dropout=0.3, lr=5e-3, bow_lr=1e-2, batch_size=128,
            sizes=[2000, 5000, 10000], w2v_epochs=3, train_size=None, limit_eval=1.0)
QUICK = dict(FULL, epochs=1, seeds=[0], embed=16, hidden=16, sizes=[300], w2v_epochs=1, train_size=600, limit_eval=4)
BOW_DECAYS = [0.0, 1e-6, 1e-5]
MODELS = ["bow", "lstm", "bilstm", "conv1d", "lstm_w2v"]
RECURRENT = ["lstm", "bilstm", "conv1d", "lstm_w2v"]
LABELS = {
    "ko": {"bow": "단어 주머니 로지스틱 회귀 (기준 모델)", "lstm": "LSTM", "bilstm": "양방향 LSTM",
           "conv1d": "Conv1D + LSTM (1D 합성곱 강의)", "lstm_w2v": "LSTM + 스킵그램 초기화"},
    "en": {"bow": "bag-of-words logistic regression (baseline)", "lstm": "LSTM", "bilstm": "bidirectional LSTM",
           "conv1d": "Conv1D + LSTM (1D convolution lesson)", "lstm_w2v": "LSTM + skip-gram init"},
}
NEGATIONS = ["재미있다", "재미없다", "재미없지 않다", "재미있지 않다", "나쁘지 않다", "좋지 않다", "안 좋다",
             "지루하지 않았다", "최악은 아니다", "기대 안 했는데 재밌네요"]


class PadTo(nn.Module):
    """Pads token ids (0) to at least ``length`` steps: the Conv1D model needs kernel + pool - 1 of them."""

    def __init__(self, model: nn.Module, length: int) -> None:
        super().__init__()
        self.model, self.length = model, length

    def forward(self, tokens, lengths=None):
        if tokens.shape[1] < self.length:
            tokens = nn.functional.pad(tokens, (0, self.length - tokens.shape[1]))
        return self.model(tokens, lengths)


class Clock(Callback):
    """CPU seconds of this process (``time.process_time``: one thread, so one core's time, whatever else runs on a
    shared machine) for every training epoch (validation excluded) and every validation pass; val_acc per epoch."""

    def __init__(self) -> None:
        self.train_s, self.eval_s, self.val_acc = [], [], []

    def on_train_epoch_start(self, trainer, module):
        self.start = time.process_time()

    def on_validation_epoch_start(self, trainer, module):
        self.train_s.append(time.process_time() - self.start)
        self.eval_start = time.process_time()

    def on_validation_epoch_end(self, trainer, module):
        self.eval_s.append(time.process_time() - self.eval_start)
        self.val_acc.append(float(trainer.callback_metrics["val_acc"]))


def skipgram_vectors(data: NSMCData, dim: int, epochs: int, seed: int) -> torch.Tensor:
    """Skip-gram vectors for ``data.words`` from the training reviews (rows of unseen words: 0)."""
    tokens = nsmc_tokens()
    train = [tokens[i] for i in data.indices["train"].tolist()]
    words, counts, ids, sentence_ids = embedding.encode_corpus(train, min_count=2)
    pl.seed_everything(seed, verbose=False)
    model = embedding.SkipGramNegativeSampling(len(words), dim)
    batches = embedding.SkipGramBatches(ids, sentence_ids, counts, window=5, negatives=5, batch_size=1024,
                                        sample=1e-3, seed=seed)
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, deterministic=True, accelerator="cpu")
    trainer.fit(embedding.Word2VecSystem(model, lr=0.01), torch.utils.data.DataLoader(batches, batch_size=None))
    found = {w: i for i, w in enumerate(words)}
    vectors = torch.zeros(len(data.words), dim)
    for row, word in enumerate(data.words):
        if word in found:
            vectors[row] = model.W_in.weight.detach()[found[word]]
    return vectors


def make_model(name: str, V: int, cfg: dict, vectors: torch.Tensor | None = None) -> nn.Module:
    E, H, p = cfg["embed"], cfg["hidden"], cfg["dropout"]
    if name == "bow":
        return BagOfWords(V)
    if name == "conv1d":
        return PadTo(conv1d.HybridClassifier(vocab_size=V), length=8)
    rnn = nn.LSTM(E, H, batch_first=True, bidirectional=name == "bilstm")
    model = SentimentClassifier(V, E, rnn, dropout=p)
    if vectors is not None:
        with torch.no_grad():
            known = vectors.abs().sum(1) > 0
            model.embed.weight[known] = vectors[known] / vectors[known].std() * model.embed.weight.std()
    return model


def run(name: str, cfg: dict, seed: int, train_size=None, weight_decay: float = 0.0, keep: bool = False) -> dict:
    """One training run: its numbers, CPU seconds included (and, with ``keep``, the trained weights)."""
    cpu = time.process_time()
    data = NSMCData(train_size=train_size, batch_size=cfg["batch_size"], seed=seed)
    data.setup()
    vectors, skipgram_s = None, None
    if name == "lstm_w2v":
        vectors = skipgram_vectors(data, cfg["embed"], cfg["w2v_epochs"], seed)
        skipgram_s = time.process_time() - cpu
    pl.seed_everything(seed, verbose=False)
    model = make_model(name, len(data.words), cfg, vectors)
    lr = cfg["bow_lr"] if name == "bow" else cfg["lr"]
    system = SentimentSystem(model, words=data.words, tokenizer="kiwi", lr=lr, weight_decay=weight_decay)
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        best = ModelCheckpoint(dirpath=tmp, monitor="val_acc", mode="max", save_top_k=1)
        trainer = pl.Trainer(max_epochs=cfg["epochs"], logger=False, callbacks=[best, clock], enable_progress_bar=False,
                             enable_model_summary=False, deterministic=True, accelerator="cpu", num_sanity_val_steps=0,
                             limit_val_batches=cfg["limit_eval"], limit_test_batches=cfg["limit_eval"])
        trainer.fit(system, data)
        start = time.process_time()
        test = trainer.test(system, data, ckpt_path=best.best_model_path, verbose=False)[0]
        test_s = time.process_time() - start
    out = {"model": name, "seed": seed, "weight_decay": weight_decay, "train_size": len(data.splits["train"]),
           "vocab": len(data.words), "best_epoch": int(max(range(len(clock.val_acc)), key=clock.val_acc.__getitem__)) + 1,
           "val_acc": max(clock.val_acc), "test_acc": float(test["test_acc"]), "val_curve": clock.val_acc,
           "epoch_s": statistics.median(clock.train_s), "eval_s": statistics.median(clock.eval_s), "test_s": test_s,
           "parameters": sum(p.numel() for p in model.parameters())}
    if skipgram_s is not None:
        out["skipgram_s"] = skipgram_s
    if keep:  # the best epoch's weights (trainer.test loaded them)
        out["state"] = {k: v.detach().clone() for k, v in system.model.state_dict().items()}
    out["cpu_s"] = time.process_time() - cpu
    return out


def _job(args: tuple) -> dict:
    """`run` in a worker process: one thread, Lightning quiet."""
    torch.set_num_threads(1)
    _quiet()
    return run(*args)


def _quiet() -> None:
    import logging

    warnings.filterwarnings("ignore", message=".*(LeafSpec|does not have many workers|val_dataloader).*")
    for name in ("pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_all(jobs: list[tuple], workers: int, log) -> list[dict]:
    """``run(*job)`` for every job, in ``workers`` single-thread processes (1: in this process), in order."""
    if workers == 1:
        return [_job(j) for j in jobs]
    import multiprocessing

    out = []
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for r in pool.imap(_job, jobs, chunksize=1):
            log(f"{r['model']} seed {r['seed']} wd {r['weight_decay']} n {r['train_size']}: val {r['val_acc']:.4f} "
                f"test {r['test_acc']:.4f} epoch {r['epoch_s']:.1f} s curve {[round(v, 4) for v in r['val_curve']]} "
                f"({r['cpu_s']:.0f} s CPU)")
            out.append(r)
    return out


def summary(runs: list[dict]) -> dict:
    def mean_std(key):
        values = [r[key] for r in runs]
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    (vm, vs), (tm, ts) = mean_std("val_acc"), mean_std("test_acc")
    return {"val_mean": vm, "val_std": vs, "test_mean": tm, "test_std": ts,
            "runs": [{k: v for k, v in r.items() if k != "state"} for r in runs],
            "epoch_s": statistics.median(r["epoch_s"] for r in runs), "eval_s": statistics.median(r["eval_s"] for r in runs),
            "parameters": runs[0]["parameters"], "best_epochs": [r["best_epoch"] for r in runs]}


def error_analysis(system: SentimentSystem, data: NSMCData, top: int = 5) -> dict:
    texts, labels = load_nsmc()
    system.eval()
    probs = []
    with torch.no_grad():
        for x, lengths, _ in data.test_dataloader():
            probs += torch.sigmoid(system(x, lengths)).squeeze(-1).tolist()
    index = data.indices["test"].tolist()[: len(probs)]
    y = [labels[i] for i in index]
    confusion = [[sum(1 for p, t in zip(probs, y) if t == a and (p > 0.5) == b) for b in (0, 1)] for a in (0, 1)]
    wrong = sorted((abs(p - 0.5), i, p) for i, p in zip(index, probs) if (p > 0.5) != labels[i])[::-1][:top]
    return {"confusion": confusion,  # rows: true negative / positive; columns: predicted negative / positive
            "confident_wrong": [{"text": texts[i], "label": labels[i], "p_positive": p} for _, i, p in wrong],
            "negation": [{"text": t, "p_positive": p} for t, p in zip(NEGATIONS, classify(system, NEGATIONS, kiwi_morphemes))]}


def token_statistics() -> dict:
    """Vocabulary size (min_freq 2, training reviews) and unknown rate on validation, by morphemes and by spaces."""
    train, val, _ = nsmc_split()
    out = {}
    for name in ("morphemes", "spaces"):
        tokens = nsmc_tokens(name)
        vocab = Vocab.build((tokens[i] for i in train.tolist()), min_freq=2)
        out[name] = {"vocab": len(vocab), "val_unknown": vocab.unknown_rate(tokens[i] for i in val.tolist())}
    return out


COST = {"bilstm": 0, "lstm_w2v": 1, "lstm": 2, "conv1d": 3, "bow": 4}  # longest jobs first, for the workers


def benchmark(cfg: dict, workers: int = 1, log=print) -> dict:
    started, cpu = time.perf_counter(), time.process_time()
    results = {"config": dict(cfg), "bow_decays": BOW_DECAYS, "tokens": token_statistics(), "models": {},
               "learning_curve": {}}
    size, first = cfg["train_size"], cfg["seeds"][0]
    jobs = [(name, cfg, seed, size, wd, seed == first) for name in MODELS for seed in cfg["seeds"]
            for wd in (BOW_DECAYS if name == "bow" else [0.0])]
    runs = run_all(sorted(jobs, key=lambda j: COST[j[0]]), workers, log)
    tuning = {wd: summary([r for r in runs if r["model"] == "bow" and r["weight_decay"] == wd]) for wd in BOW_DECAYS}
    decay = max(BOW_DECAYS, key=lambda wd: tuning[wd]["val_mean"])
    results["bow_tuning"] = [{"weight_decay": wd, "val_mean": tuning[wd]["val_mean"]} for wd in BOW_DECAYS]
    results["bow_weight_decay"] = decay
    chosen = {name: sorted([r for r in runs if r["model"] == name and (name != "bow" or r["weight_decay"] == decay)],
                           key=lambda r: r["seed"]) for name in MODELS}
    results["models"] = {name: summary(chosen[name]) for name in MODELS}
    best = max(RECURRENT, key=lambda m: results["models"][m]["val_mean"])
    results["best"] = best
    curve_jobs = [(name, cfg, seed, n, decay if name == "bow" else 0.0) for name in (best, "bow") for n in cfg["sizes"]
                  for seed in cfg["seeds"]]
    curve_runs = run_all(curve_jobs, workers, log)
    for name in ("bow", best):
        curve = {"sizes": [], "test_mean": [], "test_std": []}
        for n in cfg["sizes"] + [None]:
            s = results["models"][name] if n is None else summary([r for r, j in zip(curve_runs, curve_jobs)
                                                                    if j[0] == name and j[3] == n])
            curve["sizes"].append(s["runs"][0]["train_size"])
            curve["test_mean"].append(s["test_mean"])
            curve["test_std"].append(s["test_std"])
        results["learning_curve"][name] = curve
    data = NSMCData(train_size=size, batch_size=cfg["batch_size"], seed=first)
    data.setup()
    model = make_model(best, len(data.words), cfg)
    model.load_state_dict(chosen[best][0]["state"])
    system = SentimentSystem(model, words=data.words, tokenizer="kiwi")
    results["errors"] = {"model": best, "seed": first, **error_analysis(system, data)}
    results["seconds"] = time.perf_counter() - started  # wall clock, with `workers` processes on a shared machine
    results["cpu_seconds"] = time.process_time() - cpu + sum(r["cpu_s"] for r in runs + curve_runs) * (workers > 1)
    results["workers"] = workers
    results["machine"] = {"platform": platform.platform(), "torch": torch.__version__, "threads_per_process": 1,
                          "date": datetime.date.today().isoformat()}
    return results


def _pm(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def render_table(results: dict, lang: str = "en") -> str:
    """Markdown tables of ``results``: the models (40,000 training reviews) and the learning curve."""
    ko = lang == "ko"
    cfg, models = results["config"], results["models"]
    head = (["모델", "파라미터 수", "검증 정확도", "테스트 정확도", "최고 에포크", "에포크당 CPU 초"] if ko else
            ["model", "parameters", "validation accuracy", "test accuracy", "best epochs", "CPU s / epoch"])
    lines = [f"`python benchmarks/sentiment.py`: " + (
        f"훈련 리뷰 {models['bow']['runs'][0]['train_size']:,}개, {cfg['epochs']} 에포크, 시드 {len(cfg['seeds'])}개의 "
        "평균 ± 표준편차, 검증 정확도가 가장 높은 에포크의 테스트 정확도" if ko else
        f"{models['bow']['runs'][0]['train_size']:,} training reviews, {cfg['epochs']} epochs, mean ± std over "
        f"{len(cfg['seeds'])} seeds, test accuracy at the epoch with the best validation accuracy"),
        "", "| " + " | ".join(head) + " |", "|---|--:|--:|--:|--:|--:|"]
    for name in MODELS:
        m = models[name]
        lines.append(f"| {LABELS[lang][name]} | {m['parameters']:,} | {_pm(m['val_mean'], m['val_std'])} | "
                     f"{_pm(m['test_mean'], m['test_std'])} | {', '.join(map(str, m['best_epochs']))} | {m['epoch_s']:.1f} |")
    best = results["best"]
    sizes = results["learning_curve"][best]["sizes"]
    lines += ["", "| " + ("훈련 리뷰 수" if ko else "training reviews") + " | " +
              " | ".join(f"{n:,}" for n in sizes) + " |", "|---|" + "--:|" * len(sizes)]
    for name in ("bow", best):
        c = results["learning_curve"][name]
        lines.append(f"| {LABELS[lang][name]} | " + " | ".join(_pm(m, s) for m, s in zip(c["test_mean"], c["test_std"])) + " |")
    return "\n".join(lines) + "\n"


def plot_curve(results: dict, path: Path, lang: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if lang == "ko":
        from lessons.plotting import use_hangul_font

        use_hangul_font()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, marker in (("bow", "o"), (results["best"], "s")):
        c = results["learning_curve"][name]
        ax.errorbar(c["sizes"], c["test_mean"], yerr=c["test_std"], marker=marker, capsize=3, label=LABELS[lang][name])
    ax.set_xscale("log")
    ax.minorticks_off()  # only the sizes measured are labelled
    ax.set_xticks(results["learning_curve"]["bow"]["sizes"], [f"{n:,}" for n in results["learning_curve"]["bow"]["sizes"]])
    ax.set_xlabel("훈련 리뷰 수" if lang == "ko" else "training reviews")
    ax.set_ylabel("테스트 정확도" if lang == "ko" else "test accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def main(args: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long check: tiny models, 600 reviews, 1 epoch")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--figures", type=Path, default=None, help="default: docs/figures (full run) or --out (quick)")
    parser.add_argument("--workers", type=int, default=1, help="single-thread worker processes (the CPU time is the same)")
    options = parser.parse_args(args)
    torch.set_num_threads(1)
    _quiet()
    results = benchmark(QUICK if options.quick else FULL, options.workers,
                        log=(lambda *a: None) if options.quick else (lambda *a: print(*a, flush=True)))
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "sentiment.json").write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    for lang, suffix in (("ko", ""), ("en", ".en")):
        (options.out / f"sentiment{suffix}.md").write_text(render_table(results, lang), encoding="utf-8")
        figures = options.figures or (options.out if options.quick else ROOT / "docs" / "figures")
        plot_curve(results, figures / f"sentiment-learning-curve{suffix}.png", lang)
    return results


if __name__ == "__main__":
    main()
