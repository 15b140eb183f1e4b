"""Training-step time of an LSTM against 1D convnets on the same sequences, as T grows.

The course notes say a 1D convnet is "much faster" than an RNN on sequences; this measures it.
Three encoders read the same float32 input (N, T, D) = (64, T, 32) and each ends in one (N, 64)
vector:

- ``lstm``: ``torch.nn.LSTM(32, 64, batch_first=True)``, its last state h_T;
- ``conv``: the lesson's ``lessons.conv1d.Conv1d(32, 64, 5)`` → ReLU → ``MaxPool1d(2)`` →
  ``Conv1d(64, 64, 5)`` → ReLU → max over time, on the transposed (N, D, T) input;
- ``conv_torch``: the same architecture with ``torch.nn.Conv1d`` and ``F.max_pool1d`` on the
  transposed (N, D, T) input (the transpose is timed too);
- ``lstm_subnormal``: the LSTM again, with subnormal floats kept: every other encoder runs with
  ``torch.set_flush_denormal(True)``, because the LSTM's vanishing gradient turns into subnormal
  numbers somewhere between 100 and 200 steps back, and the CPU then spends its time on them.

One measurement is a training step's forward + backward (grads zeroed, ``out.sum().backward()``),
repeated so that a measurement lasts at least ~20 ms, divided by the repeats. For every T in
25, 50, ..., 1600, after one warm-up per encoder, the encoders run in interleaved rounds (each
once per round, so the load of a shared machine hits all of them alike); the table gives each
encoder's median time per step and the median of the per-round ratios LSTM / conv. Weights are
seeded with ``torch.manual_seed(0)``; torch uses 2 threads unless ``--threads`` says otherwise.

Writes ``benchmarks/results/conv-speed.md`` (Korean) and ``conv-speed.en.md`` (English), each a
header line naming the command and the machine, then the table, and
``benchmarks/results/conv-speed.json`` (the header, every T's medians, ratios and raw per-round
times, plotted on log-log axes by the notebook). Run from the repository root (a few
minutes on 2 CPU cores)::

    python benchmarks/conv_speed.py
    python benchmarks/conv_speed.py --rounds 15 --threads 1
    python benchmarks/conv_speed.py --quick --out /tmp/x     # tiny sizes, seconds: checks the script
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from lessons.conv1d import Conv1d, MaxPool1d  # noqa: E402

NAME = "conv-speed"
N, D, H = 64, 32, 64  # batch, input features, output size of every encoder (hidden units / channels)
TS = (25, 50, 100, 200, 400, 800, 1600)
# The smallest T the conv stack accepts is 14: (T - 4) // 2 pooled steps must fill a kernel of 5.
QUICK_N, QUICK_TS, QUICK_ROUNDS = 8, (14, 20), 2
MIN_SECONDS, QUICK_MIN_SECONDS = 0.02, 0.001  # the shortest measurement: repeats fill at least this
KERNEL, POOL = 5, 2
LABELS = {"lstm": "LSTM(64)", "lstm_subnormal": "LSTM(64), subnormals kept", "conv": "Conv1D, this lesson",
          "conv_torch": "nn.Conv1d"}
KO_LABELS = {"lstm": "LSTM(64)", "lstm_subnormal": "비정규 수를 그대로 둔 LSTM(64)", "conv": "이 장의 Conv1D",
             "conv_torch": "nn.Conv1d"}


class LSTMEncoder(nn.Module):
    """``torch.nn.LSTM`` over the whole sequence; (N, T, D) → h_T (N, H)."""

    def __init__(self, input_size: int = D, hidden_size: int = H) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_T, _) = self.lstm(x)  # (1, N, H)
        return h_T[-1]


class ConvEncoder(nn.Module):
    """The lesson's layers: Conv1d + ReLU, MaxPool1d, Conv1d + ReLU, max over time; (N, T, D) → (N, C)."""

    def __init__(self, input_size: int = D, channels: int = H, kernel_size: int = KERNEL, pool_size: int = POOL):
        super().__init__()
        self.conv1 = Conv1d(input_size, channels, kernel_size)
        self.pool = MaxPool1d(pool_size)
        self.conv2 = Conv1d(channels, channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.pool(F.relu(self.conv1(x.transpose(1, 2))))  # channels first: (N, C, (T - k + 1) // m)
        return F.relu(self.conv2(z)).amax(dim=2)  # (N, C)


class TorchConvEncoder(nn.Module):
    """The same function with ``torch.nn.Conv1d`` and ``F.max_pool1d`` on channels-first input."""

    def __init__(self, input_size: int = D, channels: int = H, kernel_size: int = KERNEL, pool_size: int = POOL):
        super().__init__()
        self.conv1 = nn.Conv1d(input_size, channels, kernel_size)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size)
        self.pool_size = pool_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.max_pool1d(F.relu(self.conv1(x.transpose(1, 2))), self.pool_size)  # (N, C, T')
        return F.relu(self.conv2(z)).amax(dim=2)  # (N, C)


class SubnormalLSTMEncoder(LSTMEncoder):
    """The same LSTM, timed with subnormal floats kept (the CPU's default; see `step`)."""

    keeps_subnormals = True


ENCODERS = {"lstm": LSTMEncoder, "lstm_subnormal": SubnormalLSTMEncoder, "conv": ConvEncoder,
            "conv_torch": TorchConvEncoder}


def build_encoders(input_size: int = D, size: int = H) -> dict[str, nn.Module]:
    """The three encoders, in timing order, each built right after ``torch.manual_seed(0)``."""
    encoders = {}
    for name, cls in ENCODERS.items():
        torch.manual_seed(0)
        encoders[name] = cls(input_size, size)
    return encoders


def step(encoder: nn.Module, x: torch.Tensor) -> None:
    """One training step's forward + backward.

    The gradient that flows back from h_T shrinks step by step (the vanishing gradient of the BPTT
    lesson); after 100 to 200 steps it reaches subnormal floats (below 1.2e-38), which x86 CPUs compute
    many times slower. The benchmark flushes them to zero, except for ``lstm_subnormal``.
    """
    keep = getattr(encoder, "keeps_subnormals", False)
    if keep:
        torch.set_flush_denormal(False)
    try:
        encoder.zero_grad(set_to_none=True)
        encoder(x).sum().backward()
    finally:
        if keep:
            torch.set_flush_denormal(True)


def timed(encoder: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Seconds per step, averaged over ``repeats`` steps."""
    start = time.perf_counter()
    for _ in range(repeats):
        step(encoder, x)
    return (time.perf_counter() - start) / repeats


def measure(T: int, batch: int, rounds: int, min_seconds: float) -> dict:
    """Warm up each encoder once, time one step to pick its repeats, then time interleaved rounds at this T."""
    encoders = build_encoders()
    torch.manual_seed(0)
    x = torch.randn(batch, T, D)
    repeats = {}
    for name, encoder in encoders.items():
        step(encoder, x)  # the warm-up: first-call allocations and kernel choices
        one = timed(encoder, x, 1)  # the estimate of one step
        repeats[name] = max(1, math.ceil(min_seconds / max(one, 1e-9)))
    times = {name: [] for name in encoders}
    for _ in range(rounds):
        for name, encoder in encoders.items():
            times[name].append(timed(encoder, x, repeats[name]))
    ratio = lambda a, b: statistics.median(s / t for s, t in zip(times[a], times[b]))  # noqa: E731
    return {
        "T": T,
        "repeats": repeats,
        "median_ms": {name: statistics.median(t) * 1e3 for name, t in times.items()},
        "ratio": {"lstm/conv": ratio("lstm", "conv"), "lstm/conv_torch": ratio("lstm", "conv_torch")},
        "rounds_ms": {name: [s * 1e3 for s in t] for name, t in times.items()},
    }


def header(argv: list[str]) -> str:
    """The command (without ``--out``, which only names the folder) and the machine, as forecasting.py's."""
    shown, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--out="):
            skip = False
            continue
        if arg == "--out":
            skip = True
            continue
        shown.append(arg)
    command = " ".join(["python benchmarks/conv_speed.py", *shown])
    threads = torch.get_num_threads()
    return (f"`{command}` · {platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
            f"torch {torch.__version__.split('+')[0]}, {threads} thread{'s' if threads != 1 else ''} · "
            f"{datetime.date.today().isoformat()}")


def table(result: dict, lang: str = "en") -> str:
    """The page's table in ``lang`` ("ko" or "en"): the same header line and numbers, the column names translated."""
    labels = KO_LABELS if lang == "ko" else LABELS
    lines = [
        result["header"],
        "",
        f"| T | {labels['lstm']} (ms) | {labels['conv']} (ms) | {labels['conv_torch']} (ms) "
        f"| LSTM ÷ Conv1D | LSTM ÷ nn.Conv1d | {labels['lstm_subnormal']} (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        ms, ratio = row["median_ms"], row["ratio"]
        lines.append(f"| {row['T']} | {ms['lstm']:.2f} | {ms['conv']:.2f} | {ms['conv_torch']:.2f} "
                     f"| {ratio['lstm/conv']:.1f}× | {ratio['lstm/conv_torch']:.1f}× | {ms['lstm_subnormal']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds per T (default 9)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 rounds: a seconds-long check")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # see `step`: subnormal floats would time the CPU, not the model
    try:
        start = time.perf_counter()
        batch, Ts = (QUICK_N, QUICK_TS) if args.quick else (N, TS)
        rounds = QUICK_ROUNDS if args.quick else args.rounds
        min_seconds = QUICK_MIN_SECONDS if args.quick else MIN_SECONDS
        rows = [measure(T, batch, rounds, min_seconds) for T in Ts]
        result = {
            "header": header(argv),
            "quick": args.quick,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "N": batch, "D": D, "H": H, "kernel_size": KERNEL, "pool_size": POOL,
            "rounds": rounds,
            "min_ms_per_measurement": min_seconds * 1e3,
            "labels": LABELS,
            "Ts": list(Ts),
            "rows": rows,
            "seconds": time.perf_counter() - start,
        }
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{NAME}.md").write_text(table(result, "ko"), encoding="utf-8")
    (args.out / f"{NAME}.en.md").write_text(table(result, "en"), encoding="utf-8")
    (args.out / f"{NAME}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table(result, "en"))
    return result


if __name__ == "__main__":
    main()
