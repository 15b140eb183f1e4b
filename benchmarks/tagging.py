"""Part-of-speech tagging on human tags: UD Korean-GSD and UD English-EWT (the tagging lesson's tables).

Each language's 989 / 2,077 sentences are split by sentence with seed 0 into 80% / 10% / 10%
(`lessons.tagging.TaggingData` on `lessons.datasets.ud_path`). Four taggers, the same budget: the most-frequent-tag baseline
(no training), a left-to-right LSTM, a bidirectional LSTM, and a bidirectional LSTM whose words also
carry a character BiLSTM's vector. Each network trains ``EPOCHS`` epochs with seeds 0, 1, 2; the
epoch with the best validation accuracy is kept (``ModelCheckpoint``) and scored on the test split:
accuracy over all words and over unseen words (not in the training split), per-tag accuracy and a
confusion matrix (seed 0). ``torch.nn.LSTM`` for speed: the lessons' layers are drop-ins (tests).

    python benchmarks/tagging.py            # full: writes benchmarks/results/tagging.{json,md,en.md}
    python benchmarks/tagging.py --quick    # a few seconds: a subset, 1 epoch, 1 seed (tests)
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lessons.datasets import ud_path  # noqa: E402
from lessons.tagging import CharEncoder, MostFrequentTag, PosTagger, TaggingData, TaggingSystem, collate  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
LANGUAGES = ("ko", "en")
MODELS = ("lstm", "bilstm", "bilstm_chars")
SEEDS = (0, 1, 2)
EPOCHS = 20
SIZES = dict(embedding_dim=64, hidden=64, char_dim=32, char_hidden=32, dropout=0.3, lr=3e-3, batch_size=32)


def make_model(kind: str, vocab: dict, sizes: dict = SIZES) -> PosTagger:
    """The three networks with the same word embedding and hidden size (per direction)."""
    e, h = sizes["embedding_dim"], sizes["hidden"]
    chars = None
    if kind == "bilstm_chars":
        c = sizes["char_hidden"]
        chars = CharEncoder(len(vocab["chars"]), sizes["char_dim"],
                            nn.LSTM(sizes["char_dim"], c, batch_first=True, bidirectional=True))
    rnn = nn.LSTM(e + (chars.output_size if chars else 0), h, batch_first=True, bidirectional=kind != "lstm")
    return PosTagger(len(vocab["words"]), e, rnn, len(vocab["tags"]), chars=chars, dropout=sizes["dropout"])


class Timer(pl.Callback):
    """Seconds of each training epoch and each validation pass."""

    def __init__(self) -> None:
        self.train, self.val = [], []

    def on_train_epoch_start(self, trainer, module):
        self._t = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        self.train.append(time.perf_counter() - self._t)

    def on_validation_epoch_start(self, trainer, module):
        self._v = time.perf_counter()

    def on_validation_epoch_end(self, trainer, module):
        if not trainer.sanity_checking:
            self.val.append(time.perf_counter() - self._v)


@torch.no_grad()
def predict(system: TaggingSystem, items: list, batch_size: int = 64) -> list[list[int]]:
    system.eval()
    out = []
    for start in range(0, len(items), batch_size):
        x, lengths, _ = collate(items[start : start + batch_size])
        tags = system(x, lengths).argmax(-1)
        out += [t[:n].tolist() for t, n in zip(tags, lengths.tolist())]
    return out


def scores(predicted: list[list[str]], sentences: list, seen: set[str], tags: list[str]) -> dict:
    """Accuracy over all words and unseen words, per-tag accuracy (recall) and the confusion matrix."""
    index = {t: i for i, t in enumerate(tags)}
    confusion = [[0] * len(tags) for _ in tags]  # rows: gold, columns: predicted
    right = total = right_unseen = unseen = 0
    for guess, (words, gold) in zip(predicted, sentences):
        for w, p, g in zip(words, guess, gold):
            confusion[index[g]][index[p]] += 1
            right, total = right + (p == g), total + 1
            if w.lower() not in seen:
                right_unseen, unseen = right_unseen + (p == g), unseen + 1
    per_tag = {t: confusion[i][i] / sum(confusion[i]) for i, t in enumerate(tags) if sum(confusion[i])}
    return {"acc": right / total, "unseen_acc": right_unseen / max(unseen, 1), "per_tag": per_tag,
            "confusion": confusion}


def run_network(kind: str, data, seed: int, epochs: int, sizes: dict = SIZES) -> dict:
    pl.seed_everything(seed, verbose=False)
    system = TaggingSystem(make_model(kind, data.vocab, sizes), vocab=data.vocab, lr=sizes["lr"])
    timer = Timer()
    with tempfile.TemporaryDirectory() as tmp:
        best = pl.callbacks.ModelCheckpoint(dirpath=tmp, monitor="val_acc", mode="max", save_top_k=1)
        trainer = pl.Trainer(max_epochs=epochs, logger=False, callbacks=[best, timer], enable_progress_bar=False,
                             enable_model_summary=False, deterministic=True, accelerator="cpu", devices=1,
                             num_sanity_val_steps=0)
        trainer.fit(system, data)
        loaded = TaggingSystem.load_from_checkpoint(best.best_model_path, model=make_model(kind, data.vocab, sizes))
        best_epoch = int(Path(best.best_model_path).stem.split("-")[0].split("=")[1]) + 1
    guesses = predict(loaded, data.items["test"])
    named = [[data.vocab["tags"][i] for i in g] for g in guesses]
    result = scores(named, data.sentences["test"], data.seen, data.vocab["tags"])
    return {**result, "val_acc": float(best.best_model_score), "best_epoch": best_epoch,
            "seconds_per_epoch": sum(timer.train) / len(timer.train), "seconds_per_eval": sum(timer.val) / len(timer.val),
            "parameters": sum(p.numel() for p in system.model.parameters())}


def _mean_std(values: list[float]) -> dict:
    t = torch.tensor(values, dtype=torch.float64)
    return {"mean": float(t.mean()), "std": float(t.std()) if len(values) > 1 else 0.0, "runs": values}


def run_language(language: str, seeds=SEEDS, epochs: int = EPOCHS, limit: int | None = None, log=print) -> dict:
    data = TaggingData(ud_path(language), batch_size=SIZES["batch_size"])
    if limit:  # quick: the first sentences of each split (the vocabulary is the full training split's)
        data.sentences = {s: part[:limit] for s, part in data.sentences.items()}
        data.items = {s: part[:limit] for s, part in data.items.items()}
    sentences = data.sentences
    data.seen = {w.lower() for words, _ in sentences["train"] for w in words}
    baseline = MostFrequentTag(sentences["train"])
    base = scores([baseline(w) for w, _ in sentences["test"]], sentences["test"], data.seen, data.vocab["tags"])
    base_val = scores([baseline(w) for w, _ in sentences["val"]], sentences["val"], data.seen, data.vocab["tags"])
    words = {s: sum(len(w) for w, _ in part) for s, part in sentences.items()}
    unseen = sum(w.lower() not in data.seen for ws, _ in sentences["test"] for w in ws)
    out = {"sentences": {s: len(p) for s, p in sentences.items()}, "words": words,
           "unseen_fraction": unseen / words["test"], "tags": data.vocab["tags"],
           "vocabulary": len(data.vocab["words"]), "characters": len(data.vocab["chars"]),
           "baseline": {"test_acc": base["acc"], "unseen_acc": base["unseen_acc"], "val_acc": base_val["acc"],
                        "per_tag": base["per_tag"], "confusion": base["confusion"]}, "models": {}}
    for kind in MODELS:
        runs = []
        for seed in seeds:
            runs.append(run_network(kind, data, seed, epochs))
            log(f"{language} {kind} seed {seed}: test {runs[-1]['acc']:.4f} unseen {runs[-1]['unseen_acc']:.4f} "
                f"(best epoch {runs[-1]['best_epoch']}, {runs[-1]['seconds_per_epoch']:.1f} s/epoch)")
        out["models"][kind] = {
            "test_acc": _mean_std([r["acc"] for r in runs]), "unseen_acc": _mean_std([r["unseen_acc"] for r in runs]),
            "val_acc": _mean_std([r["val_acc"] for r in runs]), "best_epoch": [r["best_epoch"] for r in runs],
            "seconds_per_epoch": sum(r["seconds_per_epoch"] for r in runs) / len(runs),
            "seconds_per_eval": sum(r["seconds_per_eval"] for r in runs) / len(runs),
            "parameters": runs[0]["parameters"], "per_tag": runs[0]["per_tag"], "confusion": runs[0]["confusion"]}
    return out


NAMES = {
    "ko": {"baseline": "단어마다 가장 흔한 태그 (미등록어 → 가장 흔한 태그)", "lstm": "LSTM, 왼쪽에서 오른쪽",
           "bilstm": "양방향 LSTM", "bilstm_chars": "양방향 LSTM + 문자 BiLSTM"},
    "en": {"baseline": "most frequent tag per word (unseen → most frequent tag)", "lstm": "LSTM, left to right",
           "bilstm": "bidirectional LSTM", "bilstm_chars": "bidirectional LSTM + character BiLSTM"},
}
HEADERS = {
    "ko": ("데이터", "모델", "파라미터", "테스트 정확도", "미등록어 정확도", "에포크당 초"),
    "en": ("data", "model", "parameters", "test accuracy", "unseen-word accuracy", "seconds per epoch"),
}
CORPUS = {"ko": {"ko": "한국어 GSD", "en": "영어 EWT"}, "en": {"ko": "Korean GSD", "en": "English EWT"}}


def render_table(results: dict, lang: str = "en") -> str:
    """The page's table (Markdown) from the JSON: mean ± std over the seeds, in percent."""
    pct = lambda s: f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"  # noqa: E731
    meta = results["meta"]
    lines = [f"`python benchmarks/tagging.py` · {meta['machine']} · {meta['date']} · "
             + (f"{meta['epochs']} epochs, seeds {', '.join(map(str, meta['seeds']))}" if lang == "en" else
                f"{meta['epochs']} 에포크, 시드 {', '.join(map(str, meta['seeds']))}"), "",
             "| " + " | ".join(HEADERS[lang]) + " |", "|---|---|---:|---:|---:|---:|"]
    for language in LANGUAGES:
        if language not in results:
            continue
        r = results[language]
        b = r["baseline"]
        name = CORPUS[lang][language]
        lines.append(f"| {name} | {NAMES[lang]['baseline']} | 0 | {100 * b['test_acc']:.1f} | "
                     f"{100 * b['unseen_acc']:.1f} | – |")
        for kind in MODELS:
            m = r["models"][kind]
            lines.append(f"| {name} | {NAMES[lang][kind]} | {m['parameters']:,} | {pct(m['test_acc'])} | "
                         f"{pct(m['unseen_acc'])} | {m['seconds_per_epoch']:.1f} |")
    return "\n".join(lines) + "\n"


def render_per_tag(results: dict, lang: str = "en") -> str:
    """Per-tag test accuracy (seed 0) of the four taggers for each language, most frequent tags first, and the
    tag the character model most often gives instead (its confusion matrix's largest entry off the diagonal)."""
    kinds = ("baseline", *MODELS)
    short = {"ko": ("기준 모델", "LSTM", "양방향", "양방향 + 문자", "가장 흔한 오답"),
             "en": ("baseline", "LSTM", "bidirectional", "bidirectional + characters", "most common mistake")}[lang]
    out = []
    for language in LANGUAGES:
        r = results[language]
        confusion = r["models"]["bilstm_chars"]["confusion"]
        counts = {t: sum(row) for t, row in zip(r["tags"], r["baseline"]["confusion"])}
        head = ("태그", "테스트 단어") if lang == "ko" else ("tag", "test words")
        out += [f"**{CORPUS[lang][language]}**", "", "| " + " | ".join((*head, *short)) + " |",
                "|---|---:|" + "---:|" * len(kinds) + "---|"]
        for i, t in sorted(enumerate(r["tags"]), key=lambda it: -counts[it[1]]):
            if not counts[t]:
                continue
            cells = [r["baseline"]["per_tag"][t]] + [r["models"][k]["per_tag"][t] for k in MODELS]
            wrong = max((n, j) for j, n in enumerate(confusion[i]) if j != i)
            mistake = f"{r['tags'][wrong[1]]} ({wrong[0]})" if wrong[0] else "–"
            out.append(f"| {t} | {counts[t]} | " + " | ".join(f"{100 * c:.1f}" for c in cells) + f" | {mistake} |")
        out.append("")
    return "\n".join(out)


def write(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "tagging.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for lang, suffix in (("ko", ""), ("en", ".en")):
        (out / f"tagging{suffix}.md").write_text(render_table(results, lang), encoding="utf-8")
        (out / f"tagging-tags{suffix}.md").write_text(render_per_tag(results, lang), encoding="utf-8")


def main(args: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 sentences per language, 1 epoch, 1 seed")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--languages", nargs="+", default=list(LANGUAGES), choices=LANGUAGES)
    options = parser.parse_args(args)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*(does not have many workers|LeafSpec|Checkpoint directory).*")
    torch.set_num_threads(1)
    seeds, epochs, limit = ((0,), 1, 60) if options.quick else (SEEDS, EPOCHS, None)
    results = {"meta": {"machine": f"{platform.system()} {platform.machine()}, torch {torch.__version__}, 1 thread",
                        "date": datetime.date.today().isoformat(), "epochs": epochs, "seeds": list(seeds),
                        "quick": options.quick, "sizes": SIZES}}
    for language in options.languages:
        results[language] = run_language(language, seeds, epochs, limit)
    write(results, options.out)
    return results


if __name__ == "__main__":
    main()
