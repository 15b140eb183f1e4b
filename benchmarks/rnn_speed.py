"""Forward + backward time of the lessons' recurrent layers against torch.nn, side by side.

Times ``out.sum().backward()`` of

- LSTM: `torch.nn.LSTM`, the readable `lessons.lstm.LSTM`, the fused `FastLSTM` of ``benchmarks/fused.py``;
- GRU: `torch.nn.GRU`, `lessons.gru.GRU`, the fused `FastGRU` of ``benchmarks/fused.py``;
- RNN: `torch.nn.RNN`, `lessons.rnn.RNN` (the RNN lesson's layer),

with the same weights, batch-first float32 input, at N=64, T=100, D=64, H=128 (small) and
N=128, T=200, D=128, H=256 (large). The machine is shared and noisy, so the variants run in
interleaved rounds in one process and each ratio is the median of the per-round ratios
(variant time / torch.nn time in the same round). GFLOP/s counts only the matrix products:
3 x 2 N T G H (D + H) for forward + backward, with G = 4 (LSTM), 3 (GRU), 1 (RNN) blocks.

glibc's allocator decides much of nn.LSTM's time (page faults when large blocks are returned to
the system after every step), so every size runs twice, in two child processes: with the
default allocator and with ``MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000``.

Writes ``benchmarks/results/rnn-speed.md`` (Korean) and ``rnn-speed.en.md`` (English), included by
the LSTM and GRU pages, and ``benchmarks/results/rnn-speed.json``. Run from the repository root (a few minutes)::

    python benchmarks/rnn_speed.py
    python benchmarks/rnn_speed.py --quick --out /tmp/x   # tiny sizes, seconds: checks the script
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # fused.py

NAME = "rnn-speed"
SIZES = {"small": (64, 100, 64, 128), "large": (128, 200, 128, 256)}
QUICK_SIZES = {"small": (4, 6, 3, 5), "large": (6, 8, 4, 7)}
TUNED = {"MALLOC_MMAP_THRESHOLD_": "1000000000", "MALLOC_TRIM_THRESHOLD_": "1000000000"}
BLOCKS = {"LSTM": 4, "GRU": 3, "RNN": 1}


def variants(D: int, H: int):
    """(family, name, module) triples; the first of each family is the torch.nn reference."""
    from torch import nn

    from fused import FastGRU, FastLSTM  # benchmarks/fused.py, next to this file
    from lessons.gru import GRU
    from lessons.lstm import LSTM
    from lessons.rnn import RNN

    lstm, gru, rnn = (cls(D, H, batch_first=True) for cls in (nn.LSTM, nn.GRU, nn.RNN))
    return [
        ("LSTM", "torch.nn.LSTM", lstm),
        ("LSTM", "lessons.lstm.LSTM", LSTM.from_torch(lstm)),
        ("LSTM", "fused.FastLSTM", FastLSTM.from_torch(lstm)),
        ("GRU", "torch.nn.GRU", gru),
        ("GRU", "lessons.gru.GRU", GRU.from_torch(gru)),
        ("GRU", "fused.FastGRU", FastGRU.from_torch(gru)),
        ("RNN", "torch.nn.RNN", rnn),
        ("RNN", "lessons.rnn.RNN", RNN.from_torch(rnn)),
    ]


def measure(size: tuple[int, int, int, int], rounds: int, warmup: int) -> list[dict]:
    import torch

    torch.manual_seed(0)
    N, T, D, H = size
    x = torch.randn(N, T, D)
    runs = variants(D, H)

    def once(module) -> float:
        start = time.perf_counter()
        out = module(x)[0]
        out.sum().backward()
        seconds = time.perf_counter() - start
        module.zero_grad(set_to_none=True)
        return seconds

    for _ in range(warmup):
        for _, _, module in runs:
            once(module)
    times = {name: [] for _, name, _ in runs}
    for _ in range(rounds):
        for _, name, module in runs:
            times[name].append(once(module))
    rows = []
    reference = {}
    for family, name, _ in runs:
        reference.setdefault(family, name)
        ref = times[reference[family]]
        flops = 3 * 2 * N * T * BLOCKS[family] * H * (D + H)
        median = statistics.median(times[name])
        rows.append({
            "family": family,
            "layer": name,
            "median_ms": median * 1e3,
            "ratio": statistics.median(a / b for a, b in zip(times[name], ref)),
            "gflops": flops / median / 1e9,
        })
    return rows


def child(args: argparse.Namespace) -> None:
    import torch

    sizes = QUICK_SIZES if args.quick else SIZES
    rounds, warmup = (2, 1) if args.quick else (args.rounds, 2)
    out = {"threads": torch.get_num_threads(), "torch": torch.__version__, "sizes": {}}
    for label, size in sizes.items():
        out["sizes"][label] = {"size": size, "rows": measure(size, rounds, warmup)}
    print(json.dumps(out))


def table(result: dict, command: str, lang: str = "en") -> str:
    """The pages' table in ``lang`` ("ko" or "en"); the numbers are the same in both."""
    ko = lang == "ko"
    head = ("| 크기 | 층 | 기본 할당기: ms | × torch.nn | GFLOP/s | 조정한 할당기: ms | × torch.nn | GFLOP/s |"
            if ko else
            "| size | layer | default allocator: ms | × torch.nn | GFLOP/s | tuned allocator: ms | × torch.nn | GFLOP/s |")
    names = {"small": "작음", "large": "큼"} if ko else {}
    lines = [
        f"<!-- generated by `{command}` ({platform.machine()}, {os.cpu_count()} CPU cores, "
        f"{result['threads']} torch threads, torch {result['torch']}, {result['rounds']} rounds, "
        f"{result['seconds']:.0f} s); do not edit -->",
        "",
        head,
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label in result["default"]["sizes"]:
        N, T, D, H = result["default"]["sizes"][label]["size"]
        for row, tuned in zip(result["default"]["sizes"][label]["rows"], result["tuned"]["sizes"][label]["rows"]):
            lines.append(
                f"| {names.get(label, label)} | `{row['layer']}` | {row['median_ms']:.1f} | {row['ratio']:.2f} | {row['gflops']:.0f} | "
                f"{tuned['median_ms']:.1f} | {tuned['ratio']:.2f} | {tuned['gflops']:.0f} |"
            )
    sizes = "; ".join(
        f"{names.get(label, label)}: N={s[0]}, T={s[1]}, D={s[2]}, H={s[3]}"
        for label, s in ((k, v["size"]) for k, v in result["default"]["sizes"].items())
    )
    if ko:
        lines += [
            "",
            "순전파와 역전파를 함께 잰 시간(float32)이며, 번갈아 돌린 라운드들의 중앙값입니다. × torch.nn은 "
            "라운드마다 이 층이 걸린 시간을 같은 계열 torch.nn 층이 걸린 시간으로 나누고, 그 비들에서 중앙값을 "
            f"고른 것입니다. {sizes}. 조정한 할당기는 "
            "`MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000`으로 돌린 것입니다.",
        ]
        return "\n".join(lines) + "\n"
    lines += [
        "",
        f"Forward + backward, float32, medians of interleaved rounds; × torch.nn is the median of the "
        f"per-round ratios to the torch.nn layer of the same family. {sizes}. Tuned allocator: "
        "`MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000`.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return {}
    start = time.perf_counter()
    result = {"rounds": 2 if args.quick else args.rounds}
    for setting, extra in (("default", {}), ("tuned", TUNED)):
        env = {k: v for k, v in os.environ.items() if k not in TUNED} | extra
        command = [sys.executable, str(Path(__file__).resolve()), "--child", "--rounds", str(args.rounds)]
        command += ["--quick"] if args.quick else []
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        result[setting] = json.loads(done.stdout.strip().splitlines()[-1])
    result["threads"] = result["default"]["threads"]
    result["torch"] = result["default"]["torch"]
    result["seconds"] = time.perf_counter() - start
    command = "python benchmarks/rnn_speed.py" + (" --quick" if args.quick else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{NAME}.md").write_text(table(result, command, "ko"), encoding="utf-8")
    (args.out / f"{NAME}.en.md").write_text(table(result, command, "en"), encoding="utf-8")
    (args.out / f"{NAME}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print((args.out / f"{NAME}.en.md").read_text(encoding="utf-8"))
    return result


if __name__ == "__main__":
    main()
