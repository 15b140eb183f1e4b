"""Language models of Korean movie reviews (NSMC): LSTM vs interpolated Kneser–Ney n-grams, morphemes and characters.

Data: the sentiment lesson's 50,000 NSMC reviews split with seed 0 (`lessons.datasets.nsmc_lm_reviews`):
40,000 training reviews (the only ones any model learns from), 5,000 validation, 5,000 test. Two levels:

- ``word``: Kiwi's morphemes, vocabulary of the training reviews with ``min_freq`` (rarer → ``<unk>``);
- ``char``: the reviews' characters (Hangul syllables, spaces, punctuation), the same rule.

Each review ends with ``<eos>``; the reviews of a split are one stream (`lessons.language_model.encode_stream`).
Models, at each level:

- ``ngram``: interpolated Kneser–Ney (`KneserNey` below; order 3 for morphemes, 5 for characters), fitted once
  on the training stream (deterministic), with the LSTM's vocabulary, ``<unk>`` and ``<eos>``. It is written
  out here because nltk 3.10.4's ``nltk.lm.KneserNeyInterpolated`` took about 0.09 s per token to score
  (about 2.5 hours for the 104,151 test tokens) and gives probability 0 (perplexity inf) to a word with no
  continuation count; tests/test_language_model.py checks this one against nltk on a small corpus;
- ``lstm``: `lessons.language_model.LanguageModel` (one ``nn.LSTM`` layer, tied embedding E = H, dropout)
  trained by `LanguageModelSystem` with stateful truncated BPTT (``rows`` parallel rows, ``bptt`` steps),
  Adam, ``epochs`` epochs, seeds 0, 1, 2; ``ModelCheckpoint`` keeps the epoch with the lowest validation
  perplexity and the test stream is read once with it.

Perplexity is exp of the mean cross-entropy over every token of the validation or test stream (each
review's tokens and its ``<eos>``); the two levels count different tokens, so their perplexities are not
comparable: the character level also reports bits per character, log2 of its perplexity. The seed-0 LSTMs
also generate (greedy and sampled at several temperatures, seeded) and autocomplete ``PREFIX``. Writes

- ``benchmarks/results/language-model.json``: every number and sample;
- ``benchmarks/results/language-model.md``, ``language-model-samples.md``, ``language-model-complete.md`` and
  their ``.en.md``: the tables the pages include (`render_table`, `render_samples`, `render_complete`);
- ``docs/figures/language-model.png`` / ``.en.png``: validation perplexity by epoch (Korean / English labels).

Run from the repository root. Each (level, seed) job is at most about 5 minutes of one core; the whole run is
about 26 minutes of CPU time (1,587 s for the committed run, which spread its jobs over 3 single-thread processes
with ``--jobs 3`` on a shared 2-core machine; the numbers do not depend on ``--jobs``)::

    OMP_NUM_THREADS=1 python benchmarks/language_model.py --jobs 1
    python benchmarks/language_model.py --quick --out /tmp/x   # a seconds-long check of the script
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import datetime
import json
import math
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

from lessons.datasets import nsmc_lm_reviews  # noqa: E402
from lessons.language_model import (LanguageModel, LanguageModelSystem, StreamBatches, LMVocab, complete,  # noqa: E402
                                    encode_stream, generate, stream_chunks)

LEVELS = {"word": dict(reviews="morphemes", tokenizer="kiwi", order=3), "char": dict(reviews="chars", tokenizer="chars", order=5)}
FULL = dict(epochs=5, seeds=[0, 1, 2], min_freq=20, hidden=128, dropout=0.1, lr=3e-3, rows=16, bptt=35,
            train_reviews=None, eval_reviews=None, discount=0.75)
QUICK = dict(FULL, epochs=1, seeds=[0], hidden=16, train_reviews=400, eval_reviews=60, min_freq=2)
PREFIX = "이 영화 정말"
TEMPERATURES = [0.5, 1.0, 1.5]
LABELS = {"ko": {"ngram": "크네저-나이 {order}-그램 (기준 모델)", "lstm": "LSTM", "word": "형태소", "char": "글자"},
          "en": {"ngram": "Kneser–Ney {order}-gram (baseline)", "lstm": "LSTM", "word": "morphemes", "char": "characters"}}


# --8<-- [start:kneser_ney]
class KneserNey:
    """Interpolated Kneser–Ney smoothing of order n with one absolute discount D (Chen & Goodman 1998):

        P_k(w | h) = max(c_k(h w) - D, 0) / c_k(h ·) + D · N_k(h ·) / c_k(h ·) · P_{k-1}(w | h without its first token)

    c_n are raw counts; c_k for k < n are continuation counts (how many different tokens precede the k-gram);
    N_k(h ·) is how many different tokens follow h. An unseen context h leaves P_{k-1} as it is. Below the
    unigrams lies the uniform 1/V over ``vocab_size`` tokens (``floor=True``), so every token of the vocabulary
    gets a probability > 0 and the distribution sums to 1; ``floor=False`` stops at undiscounted continuation
    unigrams, as nltk does. The stream starts with n - 1 copies of its first token (``<eos>``) as context.
    """

    def __init__(self, order: int = 3, discount: float = 0.75, floor: bool = True) -> None:
        if order < 1 or not 0 < discount < 1:
            raise ValueError(f"expected order >= 1 and 0 < discount < 1, got {order}, {discount}")
        self.order, self.discount, self.floor = order, discount, floor

    def fit(self, stream: list[int], vocab_size: int) -> "KneserNey":
        n, tokens = self.order, [stream[0]] * (self.order - 1) + list(stream)
        self.vocab_size = vocab_size
        self.counts = [None] * (n + 1)
        self.counts[n] = collections.Counter(zip(*(tokens[i:] for i in range(n))))  # raw n-gram counts
        for k in range(n - 1, 0, -1):  # continuation counts: distinct left neighbours of each k-gram
            self.counts[k] = collections.Counter(gram[1:] for gram in self.counts[k + 1])
        self.totals = [collections.Counter() for _ in range(n + 1)]  # c_k(h ·)
        self.followers = [collections.Counter() for _ in range(n + 1)]  # N_k(h ·)
        for k in range(1, n + 1):
            for gram, count in self.counts[k].items():
                self.totals[k][gram[:-1]] += count
                self.followers[k][gram[:-1]] += 1
        return self

    def prob(self, word: int, context) -> float:
        """P(word | the last n - 1 tokens of ``context``)."""
        D, context = self.discount, tuple(context)
        p = 1.0 / self.vocab_size if self.floor else 0.0
        for k in range(1, self.order + 1):
            h = context[len(context) - k + 1:] if k > 1 else ()
            total = self.totals[k].get(h, 0)
            if not total:
                continue
            count = self.counts[k].get(h + (word,), 0)
            if k == 1 and not self.floor:
                p = count / total
            else:
                p = max(count - D, 0.0) / total + D * self.followers[k][h] / total * p
        return p

    def log_probs(self, stream: list[int]) -> list[float]:
        """ln P of every token of ``stream`` after its first, each given the tokens before it."""
        n, tokens = self.order, [stream[0]] * (self.order - 1) + list(stream)
        return [math.log(self.prob(tokens[i], tokens[i - n + 1:i])) for i in range(n, len(tokens))]
# --8<-- [end:kneser_ney]


class Clock(Callback):
    """CPU seconds of this process for every training epoch and validation pass; val_ppl per epoch."""

    def __init__(self) -> None:
        self.train_s, self.eval_s, self.val_ppl = [], [], []

    def on_train_epoch_start(self, trainer, module):
        self.start = time.process_time()

    def on_validation_epoch_start(self, trainer, module):
        self.eval_start = time.process_time()

    def on_validation_epoch_end(self, trainer, module):
        if not trainer.sanity_checking:
            self.eval_s.append(time.process_time() - self.eval_start)
            self.val_ppl.append(float(trainer.callback_metrics["val_ppl"]))

    def on_train_epoch_end(self, trainer, module):
        self.train_s.append(time.process_time() - self.start - (self.eval_s[-1] if len(self.eval_s) > len(self.train_s) else 0))


def corpus(level: str, cfg: dict):
    """(vocabulary, training, validation and test streams) of one level."""
    train, val, test = nsmc_lm_reviews(LEVELS[level]["reviews"])
    train, val, test = train[: cfg["train_reviews"]], val[: cfg["eval_reviews"]], test[: cfg["eval_reviews"]]
    vocab = LMVocab.build(train, cfg["min_freq"])
    return vocab, *(encode_stream(part, vocab) for part in (train, val, test))


def ngram(level: str, cfg: dict) -> dict:
    cpu = time.process_time()
    vocab, train, val, test = corpus(level, cfg)
    start = time.process_time()
    model = KneserNey(LEVELS[level]["order"], cfg["discount"]).fit(train.tolist(), len(vocab) - 1)  # all but <pad>
    fit_s = time.process_time() - start
    out = {"model": "ngram", "level": level, "order": model.order, "vocab": len(vocab), "fit_s": fit_s}
    for name, stream in (("val", val), ("test", test)):
        start = time.process_time()
        logp = model.log_probs(stream.tolist())
        out[f"{name}_ppl"], out[f"{name}_tokens"] = math.exp(-sum(logp) / len(logp)), len(logp)
        out[f"{name}_s"] = time.process_time() - start
    out["ngrams"] = len(model.counts[model.order])
    out["cpu_s"] = time.process_time() - cpu
    return out


def lstm(level: str, cfg: dict, seed: int) -> dict:
    cpu = time.process_time()
    vocab, train, val, test = corpus(level, cfg)
    loaders = [torch.utils.data.DataLoader(StreamBatches(*stream_chunks(s, cfg["rows"], cfg["bptt"])), batch_size=None)
               for s in (train, val, test)]
    pl.seed_everything(seed, verbose=False)
    H = cfg["hidden"]
    model = LanguageModel(len(vocab), H, nn.LSTM(H, H, batch_first=True), dropout=cfg["dropout"])
    system = LanguageModelSystem(model, words=vocab.words, tokenizer=LEVELS[level]["tokenizer"], lr=cfg["lr"])
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        best = ModelCheckpoint(dirpath=tmp, monitor="val_ppl", mode="min", save_top_k=1)
        trainer = pl.Trainer(max_epochs=cfg["epochs"], logger=False, callbacks=[best, clock], enable_progress_bar=False,
                             enable_model_summary=False, deterministic=True, accelerator="cpu", num_sanity_val_steps=0)
        trainer.fit(system, loaders[0], loaders[1])
        start = time.process_time()
        test_ppl = float(trainer.test(system, loaders[2], ckpt_path=best.best_model_path, verbose=False)[0]["test_ppl"])
        test_s = time.process_time() - start
    out = {"model": "lstm", "level": level, "seed": seed, "vocab": len(vocab),
           "parameters": sum(p.numel() for p in model.parameters()), "val_curve": clock.val_ppl,
           "best_epoch": clock.val_ppl.index(min(clock.val_ppl)) + 1, "val_ppl": min(clock.val_ppl), "test_ppl": test_ppl,
           "epoch_s": statistics.median(clock.train_s), "eval_s": statistics.median(clock.eval_s), "test_s": test_s}
    if seed == cfg["seeds"][0]:  # the best epoch's weights (trainer.test loaded them) generate
        out["samples"] = samples(system)
    out["cpu_s"] = time.process_time() - cpu
    return out


def samples(system: LanguageModelSystem) -> dict:
    """Greedy and sampled continuations of `PREFIX` (generator seeded 0 at each temperature), and `complete`."""
    out = {"prefix": PREFIX, "greedy": generate(system, PREFIX, max_tokens=20, top_k=1), "sampled": {}}
    for t in TEMPERATURES:
        g = torch.Generator().manual_seed(0)
        out["sampled"][str(t)] = [generate(system, PREFIX, max_tokens=20, temperature=t, generator=g) for _ in range(2)]
    g = torch.Generator().manual_seed(0)
    out["top_k"] = [generate(system, PREFIX, max_tokens=20, temperature=1.0, top_k=5, generator=g) for _ in range(2)]
    out["complete"] = complete(system, PREFIX, top_k=5, max_tokens=6 if system.hparams.tokenizer == "kiwi" else 12)
    return out


def _job(job: tuple) -> dict:
    torch.set_num_threads(1)
    _quiet()
    return ngram(*job[1:]) if job[0] == "ngram" else lstm(*job[1:])


def _quiet() -> None:
    import logging

    warnings.filterwarnings("ignore", message=".*(LeafSpec|does not have many workers|IterableDataset|val_dataloader).*")
    for name in ("pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def summary(runs: list[dict]) -> dict:
    def mean_std(key):
        values = [r[key] for r in runs]
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    (vm, vs), (tm, ts) = mean_std("val_ppl"), mean_std("test_ppl")
    return {"val_mean": vm, "val_std": vs, "test_mean": tm, "test_std": ts, "runs": runs,
            "epoch_s": statistics.median(r["epoch_s"] for r in runs), "eval_s": statistics.median(r["eval_s"] for r in runs),
            "parameters": runs[0]["parameters"], "vocab": runs[0]["vocab"], "best_epochs": [r["best_epoch"] for r in runs]}


def benchmark(cfg: dict, jobs: int = 1, log=print) -> dict:
    started, cpu = time.perf_counter(), time.process_time()
    todo = [("lstm", level, cfg, seed) for level in LEVELS for seed in cfg["seeds"]] + [("ngram", level, cfg) for level in LEVELS]
    if jobs == 1:
        runs = [_job(j) for j in todo]
    else:
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=torch.multiprocessing.get_context("spawn")) as pool:
            runs = list(pool.map(_job, todo))  # results in the order of `todo`, whatever finishes first
    for r in runs:
        log(json.dumps({k: v for k, v in r.items() if k != "samples"}, ensure_ascii=False))
    results = {"config": dict(cfg), "levels": LEVELS, "models": {}}
    for level in LEVELS:
        lstm_runs = [r for r in runs if r["level"] == level and r["model"] == "lstm"]
        results["models"][level] = {"ngram": next(r for r in runs if r["level"] == level and r["model"] == "ngram"),
                                    "lstm": summary([{k: v for k, v in r.items() if k != "samples"} for r in lstm_runs])}
        results["models"][level]["lstm"]["samples"] = lstm_runs[0]["samples"]
    char = results["models"]["char"]
    results["bits_per_char"] = {"ngram": math.log2(char["ngram"]["test_ppl"]),
                                "lstm_mean": statistics.mean(math.log2(r["test_ppl"]) for r in char["lstm"]["runs"]),
                                "lstm_std": statistics.stdev(math.log2(r["test_ppl"]) for r in char["lstm"]["runs"])
                                if len(char["lstm"]["runs"]) > 1 else 0.0}
    results["seconds"] = time.perf_counter() - started
    results["cpu_seconds"] = time.process_time() - cpu + sum(r["cpu_s"] for r in runs) * (jobs > 1)
    results["jobs"] = jobs
    results["machine"] = {"platform": platform.platform(), "torch": torch.__version__, "threads_per_process": 1,
                          "date": datetime.date.today().isoformat()}
    return results


def _pm(mean: float, std: float, digits: int = 1) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def render_table(results: dict, lang: str = "en") -> str:
    """Markdown: the perplexity table and the bits per character."""
    ko, cfg, labels = lang == "ko", results["config"], LABELS[lang]
    head = (["단위", "모델", "어휘 크기", "파라미터 수", "검증 퍼플렉서티", "테스트 퍼플렉서티", "최고 에포크", "에포크당 CPU 초"] if ko else
            ["level", "model", "vocabulary", "parameters", "validation perplexity", "test perplexity", "best epochs",
             "CPU s / epoch"])
    lines = ["`python benchmarks/language_model.py`: " + (
        f"훈련 리뷰로만 학습, LSTM은 {cfg['epochs']} 에포크, 시드 {len(cfg['seeds'])}개의 평균 ± 표준편차 "
        "(검증 퍼플렉서티가 가장 낮은 에포크의 테스트 퍼플렉서티), n-그램은 결정적이라 한 번" if ko else
        f"trained on the training reviews only; LSTM {cfg['epochs']} epochs, mean ± std over {len(cfg['seeds'])} seeds "
        "(test perplexity at the epoch with the lowest validation perplexity); the n-gram is deterministic, fitted once"),
        "", "| " + " | ".join(head) + " |", "|---|---|--:|--:|--:|--:|--:|--:|"]
    for level in LEVELS:
        g, m = results["models"][level]["ngram"], results["models"][level]["lstm"]
        lines.append(f"| {labels[level]} | {labels['ngram'].format(order=g['order'])} | {g['vocab']:,} | – | "
                     f"{g['val_ppl']:.1f} | {g['test_ppl']:.1f} | – | – |")
        digits = 1 if level == "word" else 3
        lines.append(f"| {labels[level]} | {labels['lstm']} | {m['vocab']:,} | {m['parameters']:,} | "
                     f"{_pm(m['val_mean'], m['val_std'], digits)} | {_pm(m['test_mean'], m['test_std'], digits)} | "
                     f"{', '.join(map(str, m['best_epochs']))} | {m['epoch_s']:.0f} |")
    b = results["bits_per_char"]
    lines += ["", ("글자 단위 테스트 비트/글자(bits per character, log₂ 퍼플렉서티): " if ko else
                   "Character level, test bits per character (log₂ perplexity): ") +
              f"n-gram {b['ngram']:.3f}, LSTM {_pm(b['lstm_mean'], b['lstm_std'], 3)}."]
    return "\n".join(lines) + "\n"


def render_samples(results: dict, lang: str = "en") -> str:
    """Markdown: the seed-0 LSTMs' continuations of `PREFIX` by decoding method."""
    ko, labels = lang == "ko", LABELS[lang]
    lines = ["| " + " | ".join(
        ["단위", "생성 방법", f"\"{PREFIX}\" 다음 (시드 0 모델, 생성기 시드 0)"] if ko else
        ["level", "decoding", f"after \"{PREFIX}\" (seed-0 model, generator seed 0)"]) + " |", "|---|---|---|"]
    for level in LEVELS:
        s, join = results["models"][level]["lstm"]["samples"], (" ".join if level == "word" else "".join)
        rows = [("탐욕 디코딩" if ko else "greedy decoding", [s["greedy"]])]
        rows += [((f"온도 {t}" if ko else f"temperature {t}"), s["sampled"][str(t)]) for t in TEMPERATURES]
        rows += [("상위 5개, 온도 1.0" if ko else "top 5, temperature 1.0", s["top_k"])]
        for name, texts in rows:
            cell = " / ".join(f"`{join(t) or '<eos>'}`" for t in texts).replace("|", "\\|")
            lines.append(f"| {labels[level]} | {name} | {cell} |")
    return "\n".join(lines) + "\n"


def render_complete(results: dict, lang: str = "en") -> str:
    """Markdown: `complete`'s answers for `PREFIX` (seed-0 LSTMs), with their probabilities."""
    labels = LABELS[lang]
    lines = ["| " + " | ".join(["단위", "이어지는 말", "확률"] if lang == "ko" else ["level", "continuation", "probability"])
             + " |", "|---|---|--:|"]
    for level in LEVELS:
        for text, p in results["models"][level]["lstm"]["samples"]["complete"]:
            lines.append(f"| {labels[level]} | `{PREFIX}` → `{text}` | {p:.2g} |")
    return "\n".join(lines) + "\n"


RENDER = {"language-model": render_table, "language-model-samples": render_samples, "language-model-complete": render_complete}


def plot_curve(results: dict, path: Path, lang: str) -> None:
    """Validation perplexity by epoch (mean over seeds) against the n-gram's, one panel per level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if lang == "ko":
        from lessons.plotting import use_hangul_font

        use_hangul_font()
    labels = LABELS[lang]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    for ax, level in zip(axes, LEVELS):
        g, m = results["models"][level]["ngram"], results["models"][level]["lstm"]
        curves = torch.tensor([r["val_curve"] for r in m["runs"]])
        epochs = range(1, curves.shape[1] + 1)
        ax.errorbar(epochs, curves.mean(0), yerr=curves.std(0) if len(curves) > 1 else None, marker="o", capsize=3,
                    label=labels["lstm"])
        ax.axhline(g["val_ppl"], color="gray", linestyle="--", label=labels["ngram"].format(order=g["order"]))
        ax.set_title(labels[level])
        ax.set_xticks(list(epochs))
        ax.set_xlabel("에포크" if lang == "ko" else "epoch")
        ax.set_ylabel("검증 퍼플렉서티" if lang == "ko" else "validation perplexity")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def main(args: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long check: tiny models, 400 reviews, 1 epoch")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--figures", type=Path, default=None, help="default: docs/figures (full run) or --out (quick)")
    parser.add_argument("--jobs", type=int, default=1, help="single-thread worker processes (the numbers are the same)")
    options = parser.parse_args(args)
    torch.set_num_threads(1)
    _quiet()
    results = benchmark(QUICK if options.quick else FULL, options.jobs,
                        log=(lambda *a: None) if options.quick else (lambda *a: print(*a, flush=True)))
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "language-model.json").write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n",
                                                    encoding="utf-8")
    figures = options.figures or (options.out if options.quick else ROOT / "docs" / "figures")
    for lang, suffix in (("ko", ""), ("en", ".en")):
        for name, render in RENDER.items():
            (options.out / f"{name}{suffix}.md").write_text(render(results, lang), encoding="utf-8")
        plot_curve(results, figures / f"language-model{suffix}.png", lang)
    return results


if __name__ == "__main__":
    main()
