"""The notes' multiplication problem with two stacked vanilla RNN layers, at the notes' size.

The notes train ``SimpleRNN(30, return_sequences=True) -> SimpleRNN(30) -> Dense(1)`` with Adam
and mean squared error for 100 epochs on ``X[:2560]`` with ``validation_split=0.2`` (Keras' default
batch size 32). This script does the same with `lessons.bptt.RNNRegressor` on two stacked
`lessons.rnn.RNN` layers, trained by `lessons.bptt.RNNRegressionSystem` and ``pl.Trainer``, seeded, and
writes

- ``benchmarks/results/bptt-multiplication.md`` (Korean) and ``bptt-multiplication.en.md`` (English):
  a table of train/validation MSE at a few epochs against the baseline that ignores the input
  (predict the training mean), for PyTorch's and for Keras' initialisation of the RNN layers,
  included by the BPTT pages of each language;
- ``benchmarks/results/bptt-multiplication.json``: every epoch's losses, plotted by the BPTT notebook.

Run from the repository root (about 2–6 minutes on 2 CPU cores)::

    python benchmarks/bptt_multiplication.py
    python benchmarks/bptt_multiplication.py --quick --out /tmp/x   # a seconds-long check of the script
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import logging
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
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from lessons.bptt import RNNRegressionSystem, RNNRegressor  # noqa: E402
from lessons.datasets import multiplication_problem, notes_split  # noqa: E402
from lessons.rnn import RNN  # noqa: E402

NAME = "bptt-multiplication"


def run(steps: int, epochs: int, batch_size: int, count: int, seed: int = 0, init: str = "torch") -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # (N, 30) matrices: a second thread only adds synchronisation
    try:
        return _run(steps, epochs, batch_size, count, seed, init)
    finally:
        torch.set_num_threads(threads)


def _run(steps: int, epochs: int, batch_size: int, count: int, seed: int, init: str) -> dict:
    x, y = multiplication_problem(count=count, steps=steps, seed=seed)
    fit_count = min(2560, count * 2560 // 3000)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = notes_split(x, y, fit_count=fit_count)
    g = torch.Generator().manual_seed(seed)  # Keras shuffles the training data every epoch
    train = DataLoader(TensorDataset(x_tr, y_tr), batch_size=batch_size, shuffle=True, generator=g)
    val = DataLoader(TensorDataset(x_va, y_va), batch_size=512)
    pl.seed_everything(seed, verbose=False)
    # the notes' SimpleRNN(30, return_sequences=True) -> SimpleRNN(30) -> Dense(1): 2851 parameters
    system = RNNRegressionSystem(RNNRegressor(RNN(2, 30, num_layers=2, batch_first=True), init=init), lr=1e-3)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as logs:
        logger = pl.loggers.CSVLogger(logs, name="", version="")
        logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
        trainer = pl.Trainer(max_epochs=epochs, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, deterministic=True, num_sanity_val_steps=0,
                             accelerator="cpu", devices=1, log_every_n_steps=1)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(does not have many workers|LeafSpec).*")
            trainer.fit(system, train, val)
        with open(Path(logger.log_dir) / "metrics.csv", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r.get("epoch") and (r.get("train_loss") or r.get("val_loss"))]
    seconds = time.perf_counter() - start
    history = {key: [float(r[key]) for r in rows if r.get(key)] for key in ("train_loss", "val_loss")}
    with torch.no_grad():
        test_mse = torch.nn.functional.mse_loss(system(x_te), y_te).item() if len(x_te) else float("nan")
    mean = y_tr.mean()
    return {
        "init": init,
        "steps": steps,
        "epochs": epochs,
        "batch_size": batch_size,
        "sizes": [len(x_tr), len(x_va), len(x_te)],
        "train_loss": history["train_loss"],
        "val_loss": history["val_loss"],
        "baseline_val": ((y_va - mean) ** 2).mean().item(),
        "baseline_test": ((y_te - mean) ** 2).mean().item() if len(x_te) else float("nan"),
        "test_mse": test_mse,
        "seconds": seconds,
    }


def _job(job: tuple) -> dict:
    size, init, seed = job
    return run(**size, seed=seed, init=init)


def _summary(r: dict, seed: int) -> dict:
    """One run in units of its own baseline (always answering the training mean)."""
    best = min(r["val_loss"])
    return {"seed": seed, "best_val": best / r["baseline_val"], "best_epoch": r["val_loss"].index(best) + 1,
            "last_train": r["train_loss"][-1] / r["baseline_val"], "last_val": r["val_loss"][-1] / r["baseline_val"],
            "seconds": r["seconds"]}


def seeds_table(results: dict[str, dict], lang: str = "en") -> list[str]:
    ko = lang == "ko"
    lines = (["| 초기화 | 시드 | 최고 검증 MSE / 기준(에포크) | 마지막 훈련 MSE / 기준 | 마지막 검증 MSE / 기준 |"] if ko else
             ["| init | seed | best validation MSE / baseline (epoch) | last training MSE / baseline "
              "| last validation MSE / baseline |"]) + ["|---|---:|---:|---:|---:|"]
    for init, r in results.items():
        for s in r["seeds"]:
            lines.append(f"| {init} | {s['seed']} | {s['best_val']:.3f} ({s['best_epoch']}) | {s['last_train']:.3f} "
                         f"| {s['last_val']:.3f} |")
        if len(r["seeds"]) > 1:
            cols = [[s[k] for s in r["seeds"]] for k in ("best_val", "last_train", "last_val")]
            lines.append(f"| {init} | {'평균 ± 표준편차' if ko else 'mean ± std'} | " + " | ".join(
                f"{statistics.mean(c):.3f} ± {statistics.stdev(c):.3f}" for c in cols) + " |")
    return lines


def table(results: dict[str, dict], command: str, lang: str = "en", machine: str | None = None) -> str:
    """The page's table in ``lang`` ("ko" or "en"); ``machine`` defaults to this machine's description."""
    ko = lang == "ko"
    machine = machine or f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    seconds = sum(s["seconds"] for r in results.values() for s in r["seeds"])
    first = next(iter(results.values()))
    epochs = len(first["train_loss"])
    shown = sorted({1, *(e for e in (5, 10, 25, 50, 75) if e < epochs), epochs})
    inits = list(results)
    head = ("| 에포크 | " + " | ".join(f"훈련 MSE({i} 초기화) | 검증 MSE({i} 초기화)" for i in inits)
            + " | 기준 MSE(검증) |" if ko else
            "| epoch | " + " | ".join(f"train MSE ({i} init) | validation MSE ({i} init)" for i in inits)
            + " | baseline MSE (validation) |")
    lines = [
        f"<!-- generated by `{command}` ({machine}, {seconds:.0f} s); do not edit -->",
        "",
        head,
        "|---:|" + "---:|---:|" * len(inits) + "---:|",
    ]
    for e in shown:
        cells = " | ".join(f"{r['train_loss'][e - 1]:.4f} | {r['val_loss'][e - 1]:.4f}" for r in results.values())
        lines.append(f"| {e} | {cells} | {first['baseline_val']:.4f} |")
    sizes = "/".join(map(str, first["sizes"]))
    best = {i: (min(r["val_loss"]), r["val_loss"].index(min(r["val_loss"])) + 1) for i, r in results.items()}
    if ko:
        caption = (f"T = {first['steps']}, 훈련/검증/테스트 = {sizes}, 배치 {first['batch_size']}, Adam(학습률 0.001). "
                   "가장 낮은 검증 MSE는 " + ", ".join(f"{i} 초기화 {v:.4f}({e} 에포크)" for i, (v, e) in best.items())
                   + "입니다. 마지막 에포크 뒤의 테스트 MSE는 "
                   + ", ".join(f"{i} 초기화 {r['test_mse']:.4f}" for i, r in results.items())
                   + f"입니다(기준 {first['baseline_test']:.4f}). 위의 곡선은 시드 0의 값이고, 시드마다의 결과는 다음과 같습니다.")
    else:
        caption = (f"T = {first['steps']}, train/validation/test = {sizes}, "
                   f"batch {first['batch_size']}, Adam (lr 0.001). Best validation MSE: "
                   + ", ".join(f"{i} init {v:.4f} (epoch {e})" for i, (v, e) in best.items())
                   + ". Test MSE after the last epoch: "
                   + ", ".join(f"{i} init {r['test_mse']:.4f}" for i, r in results.items())
                   + f" (baseline {first['baseline_test']:.4f}). The curves above are seed 0; every seed:")
    lines += ["", caption, "", *seeds_table(results, lang), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run that only checks the script works")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 … n-1 for data, initial weights and order")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one thread each)")
    args = parser.parse_args(argv)
    if args.quick:
        size = dict(steps=10, epochs=2, batch_size=64, count=300)
        command = "python benchmarks/bptt_multiplication.py --quick"
    else:
        size = dict(steps=100, epochs=100, batch_size=32, count=3000)
        command = "python benchmarks/bptt_multiplication.py"
    seeds = [0] if args.quick else list(range(args.seeds))
    jobs = [(init, seed) for init in ("torch", "keras") for seed in seeds]
    work = [(size, init, seed) for init, seed in jobs]
    if args.jobs > 1 and not args.quick:
        with concurrent.futures.ProcessPoolExecutor(max_workers=min(args.jobs, len(jobs))) as pool:  # one thread each
            runs = dict(zip(jobs, pool.map(_job, work)))
    else:
        runs = dict(zip(jobs, map(_job, work)))
    # the curves of seed 0, and every seed's summary: one run at the edge of vanishing gradients can mislead
    results = {init: {**runs[init, 0], "seeds": [_summary(runs[init, s], s) for s in seeds]} for init in ("torch", "keras")}
    args.out.mkdir(parents=True, exist_ok=True)
    for lang, suffix in (("ko", ".md"), ("en", ".en.md")):  # the Korean page includes .md, the English .en.md
        (args.out / f"{NAME}{suffix}").write_text(table(results, command, lang), encoding="utf-8")
    (args.out / f"{NAME}.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(table(results, command))
    return results


if __name__ == "__main__":
    main()
