"""The notes' multiplication problem with a vanilla RNN, an LSTM and a GRU, side by side.

Same data (`lessons.datasets.multiplication_problem`, split with `notes_split`: 2048 train,
512 validation, 440 test), same size (two stacked layers of 30 units and a linear output), same
loop, optimizer, batch size and seed for the three models:

- RNN: `lessons.rnn.RNN`,
- LSTM: `lessons.lstm.LSTM` (forget-gate bias starting at 1, as Keras' ``unit_forget_bias=True``),
- GRU: `lessons.gru.GRU`,

each ``(2, 30, num_layers=2, batch_first=True)`` with torch.nn's interface, under the BPTT lesson's
`lessons.bptt.RNNRegressor` (a linear output from the top layer's last state). The RNN runs twice: with
torch.nn's initialisation and with Keras' (Glorot inputs, orthogonal recurrent weights, the BPTT page's
"keras" init), so the gated layers are not compared only with the weaker start. Seeds 0, 1, 2 change the
initial weights and the batch order (the data stay the same); the table gives mean ± std. ``--layers torch`` uses
``torch.nn.RNN/LSTM/GRU`` instead (their parameter counts differ: torch.nn keeps two bias vectors).

Writes

- ``benchmarks/results/gated-multiplication.md`` (Korean) and ``.en.md``: validation MSE relative to the
  baseline (the MSE of always answering the training mean) at a few epochs (mean over seeds), and test
  MSE at the best validation epoch (mean ± std), included by the LSTM and GRU pages;
- ``benchmarks/results/gated-multiplication.json``: every seed's every epoch's validation MSE (seed 0's
  curve at the top of each model, plotted by the LSTM and GRU notebooks).

Uses one CPU thread (the models are small; more threads only add overhead on a shared machine).
Run from the repository root (several minutes on a 2-core CPU)::

    python benchmarks/gated_multiplication.py --jobs 2   # 12 runs of 2-4 minutes each, one thread each
    python benchmarks/gated_multiplication.py --quick --out /tmp/x   # a seconds-long check of the script
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # fused.py

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from torch import nn  # noqa: E402

from fused import init_forget_bias  # noqa: E402
from lessons.bptt import RNNRegressor  # noqa: E402
from lessons.datasets import multiplication_problem, notes_split  # noqa: E402
from lessons.gru import GRU  # noqa: E402
from lessons.lstm import LSTM  # noqa: E402
from lessons.rnn import RNN  # noqa: E402

NAME = "gated-multiplication"
LAYERS = {
    "lessons": {"RNN": RNN, "LSTM": LSTM, "GRU": GRU},
    "torch": {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU},
}
# row: (layer, initialisation of RNNRegressor)
ROWS = {"RNN": ("RNN", "torch"), "RNN, Keras init": ("RNN", "keras"), "LSTM": ("LSTM", "torch"), "GRU": ("GRU", "torch")}
MODELS = list(ROWS)
LABELS = {"ko": {"RNN": "RNN", "RNN, Keras init": "RNN, Keras 초기화", "LSTM": "LSTM", "GRU": "GRU"},
          "en": {name: name for name in ROWS}}


def build(name: str, forget_bias: float | None, layers: str = "lessons") -> nn.Module:
    """The model for one row of the table: two stacked layers of 30 units and a linear output."""
    layer, init = ROWS.get(name, (name, "torch"))
    model = RNNRegressor(LAYERS[layers][layer](2, 30, num_layers=2, batch_first=True), init=init)
    if name == "LSTM" and forget_bias is not None:
        init_forget_bias(model.rnn, forget_bias)
    return model


def train(name: str, data, epochs: int, batch_size: int, lr: float, clip: float | None, forget_bias: float,
          seed: int = 0, layers: str = "lessons") -> dict:
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = data
    torch.manual_seed(seed)
    model = build(name, forget_bias, layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)  # the same shuffles for every model
    val = []
    best = (float("inf"), 0, None)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        for idx in torch.randperm(len(x_tr), generator=order).split(batch_size):
            loss = F.mse_loss(model(x_tr[idx]), y_tr[idx])
            optimizer.zero_grad()
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val.append(F.mse_loss(model(x_va), y_va).item())
        if val[-1] < best[0]:
            best = (val[-1], epoch, {k: v.clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[2])
    with torch.no_grad():
        test = F.mse_loss(model(x_te), y_te).item()
    return {
        "val_mse": val,
        "best_epoch": best[1],
        "test_mse": test,
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": time.perf_counter() - start,
    }


def _pm(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def _job(job: tuple) -> dict:
    name, seed, data, args = job
    torch.set_num_threads(1)
    return train(name, data, args["epochs"], args["batch_size"], args["lr"], args["clip"], args["forget_bias"],
                 seed=seed, layers=args["layers"])


def table(result: dict, command: str, lang: str = "en") -> str:
    """The page's table in ``lang`` ("ko" or "en"): mean validation MSE / baseline at a few epochs,
    the best epoch of each seed, and test MSE / baseline at that epoch (mean ± std over seeds)."""
    ko = lang == "ko"
    variance, test_base = result["baseline_val_mse"], result["baseline_test_mse"]
    epochs = result["epochs"]
    marks = sorted({e for e in (1, 5, 10, 20, 40, 60, 80, 100, epochs) if e <= epochs})
    seeds = [s["seed"] for s in next(iter(result["models"].values()))["seeds"]]
    head = (["", "파라미터 수", *(f"{e} 에포크" for e in marks), "최고 에포크", "최고 검증 MSE / 기준", "테스트 MSE / 기준"] if ko
            else ["", "parameters", *(f"epoch {e}" for e in marks), "best epochs", "best val MSE / baseline",
                  "test MSE / baseline"])
    lines = [
        f"<!-- generated by `{command}` ({result['machine']}, {result['threads']} CPU thread per run, "
        f"torch {result['torch']}, {result['seconds']:.0f} CPU s); do not edit -->",
        "",
        "| " + " | ".join(head) + " |",
        "|---|---:|" + "---:|" * len(marks) + "---:|---:|---:|",
    ]
    for name, run in result["models"].items():
        curves = [s["val_mse"] for s in run["seeds"]]
        ratios = " | ".join(f"{statistics.mean(c[e - 1] for c in curves) / variance:.3f}" for e in marks)
        lines.append(
            f"| {LABELS[lang].get(name, name)} | {run['parameters']:,} | {ratios} | "
            f"{', '.join(str(s['best_epoch']) for s in run['seeds'])} | "
            f"{_pm([min(c) / variance for c in curves])} | {_pm([s['test_mse'] / test_base for s in run['seeds']])} |"
        )
    sizes = "/".join(map(str, result["sizes"]))
    clip = result["clip"]
    if ko:
        lines += ["", f"검증 MSE를 기준 MSE {variance:.4f}(늘 훈련 평균으로 답할 때)로 나눈 값이고, 에포크 열은 시드 "
                  f"{len(seeds)}개({', '.join(map(str, seeds))})의 평균입니다. T = {result['steps']}, 훈련/검증/테스트 = {sizes}, "
                  f"배치 {result['batch_size']}, Adam(학습률 {result['lr']})"
                  + (f", 기울기 노름을 {clip}에서 자름" if clip else "")
                  + f", LSTM 망각 게이트 편향의 시작값 {result['forget_bias']}. 테스트 MSE는 검증 MSE가 가장 낮은 에포크의 "
                  "값이고, 오른쪽 두 열은 평균 ± 표준편차입니다. 시드는 초기 가중치와 배치 순서를 바꾸고 데이터는 같습니다."]
    else:
        lines += ["", f"Validation MSE divided by the baseline MSE {variance:.4f} (always answering the training mean); "
                  f"the epoch columns are the mean over {len(seeds)} seeds ({', '.join(map(str, seeds))}). "
                  f"T = {result['steps']}, train/validation/test = {sizes}, batch {result['batch_size']}, "
                  f"Adam (lr {result['lr']})" + (f", gradient norm clipped at {clip}" if clip else "")
                  + f", LSTM forget-gate bias starting at {result['forget_bias']}. Test MSE of the epoch with the best "
                  "validation MSE; the last two columns are mean ± std. Seeds change the initial weights and the "
                  "batch order, not the data."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--clip", type=float, default=0.0, help="gradient norm clipping (0: none)")
    parser.add_argument("--forget-bias", type=float, default=1.0)
    parser.add_argument("--layers", choices=list(LAYERS), default="lessons", help="the lessons' layers or torch.nn's")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 … n-1 for initial weights and batch order")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one thread each)")
    parser.add_argument("--quick", action="store_true", help="T = 10, 300 sequences, 2 epochs: checks the script")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    count, steps, epochs = (300, 10, 2) if args.quick else (3000, args.steps, args.epochs)
    seeds = list(range(2 if args.quick else args.seeds))
    x, y = multiplication_problem(count=count, steps=steps, seed=0)
    data = notes_split(x, y, fit_count=count * 2560 // 3000)
    y_tr = data[0][1]
    result = {
        "steps": steps,
        "epochs": epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "clip": args.clip,
        "forget_bias": args.forget_bias,
        "layers": args.layers,
        "sizes": [len(part[0]) for part in data],
        "baseline_val_mse": F.mse_loss(y_tr.mean().expand_as(data[1][1]), data[1][1]).item(),
        "baseline_test_mse": F.mse_loss(y_tr.mean().expand_as(data[2][1]), data[2][1]).item(),
        "models": {},
    }
    settings = dict(epochs=epochs, batch_size=args.batch_size, lr=args.lr, clip=args.clip,
                    forget_bias=args.forget_bias, layers=args.layers)
    jobs = [(name, seed) for name in ("LSTM", "GRU", "RNN", "RNN, Keras init") for seed in seeds]  # slowest first
    work = [(name, seed, data, settings) for name, seed in jobs]
    if args.jobs > 1:
        with concurrent.futures.ProcessPoolExecutor(max_workers=min(args.jobs, len(jobs))) as pool:
            runs = dict(zip(jobs, pool.map(_job, work)))
    else:
        runs = dict(zip(jobs, map(_job, work)))
    for name in MODELS:
        per_seed = [{"seed": s, **runs[name, s]} for s in seeds]
        for s in per_seed:
            print(f"{name} seed {s['seed']}: best validation MSE {min(s['val_mse']):.5f} at epoch {s['best_epoch']} "
                  f"({s['seconds']:.0f} s)", flush=True)
        result["models"][name] = {**runs[name, 0], "seeds": per_seed}  # seed 0's curve on top: the notebooks plot it
    result["seconds"] = sum(r["seconds"] for r in runs.values())
    result.update(machine=f"{platform.machine()}, {os.cpu_count()} CPU cores", threads=1, torch=torch.__version__)
    command = ("python benchmarks/gated_multiplication.py" + (" --quick" if args.quick else "")
               + ("" if args.layers == "lessons" else f" --layers {args.layers}"))
    args.out.mkdir(parents=True, exist_ok=True)
    result["command"] = command
    (args.out / f"{NAME}.md").write_text(table(result, command, "ko"), encoding="utf-8")
    (args.out / f"{NAME}.en.md").write_text(table(result, command, "en"), encoding="utf-8")
    (args.out / f"{NAME}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print((args.out / f"{NAME}.en.md").read_text(encoding="utf-8"))
    return result


if __name__ == "__main__":
    main()
