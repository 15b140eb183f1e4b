"""Figures the lesson pages show themselves (not only their notebooks), in Korean and in English.

- ``lstm-gates.png`` / ``.en.png`` (docs/lstm.md): the input, forget and output gates of a small LSTM
  (`lessons.lstm.LSTM`, 16 hidden units, one layer) trained for a few seconds on the 20-step multiplication
  problem (`lessons.datasets.multiplication_problem`, seed 0), while it reads one validation sequence;
  the same setting as the LSTM notebook's gate figure, trained by a plain Adam loop instead of Lightning.
- ``conv1d-receptive-field.png`` / ``.en.png`` (docs/conv1d.md): the receptive field of 1 to 10 stacked
  layers (`lessons.conv1d.receptive_field`) for kernel 3, kernel 7 and kernel 3 with dilations 1, 2, 4, …,
  with the 40-step forecasting window and the `ConvForecaster`'s 32 steps.

Everything is seeded and runs on one thread in a few seconds; `main` returns the numbers the pages quote
(tests/test_lesson_figures.py checks them). Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/lesson_figures.py            # writes docs/figures/
    python benchmarks/lesson_figures.py --out /tmp/x
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lessons.plotting import save_figure  # noqa: E402
from lessons.conv1d import receptive_field  # noqa: E402
from lessons.datasets import multiplication_problem, notes_split  # noqa: E402
from lessons.lstm import LSTM, ManyToOne  # noqa: E402

GATES = dict(count=3000, steps=20, hidden=16, epochs=15, batch_size=64, lr=0.01, seed=0, min_gap=8)
LAYERS = list(range(1, 11))
WINDOW, FORECASTER = 40, [(5, 1, 1), (2, 2, 1), (5, 1, 1), (2, 2, 1), (5, 1, 1)]

TEXT = {
    "ko": {
        "step": "시점 t",
        "unit": "은닉 유닛",
        "gates": {"i": "입력 게이트 (i)", "f": "망각 게이트 (f)", "o": "출력 게이트 (o)"},
        "gate_title": "학습된 LSTM의 게이트 (T = 20, 빨간 테두리: 표시된 시점)",
        "layers": "층 수",
        "field": "수용 영역 (시점, 로그 축)",
        "plain3": "k = 3, 쌓기만",
        "plain7": "k = 7, 쌓기만",
        "dilated": "k = 3, 팽창 1, 2, 4, …",
        "window": "기온 예측 창 (40시점)",
        "forecaster": "ConvForecaster (32시점)",
    },
    "en": {
        "step": "time step t",
        "unit": "hidden unit",
        "gates": {"i": "input gate (i)", "f": "forget gate (f)", "o": "output gate (o)"},
        "gate_title": "Gates of a trained LSTM (T = 20, red outline: marked steps)",
        "layers": "layers",
        "field": "receptive field (steps, log scale)",
        "plain3": "k = 3, stacked",
        "plain7": "k = 7, stacked",
        "dilated": "k = 3, dilations 1, 2, 4, …",
        "window": "forecasting window (40 steps)",
        "forecaster": "ConvForecaster (32 steps)",
    },
}


def _pyplot(lang: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if lang == "ko":
        from lessons.plotting import use_hangul_font

        use_hangul_font()
    return plt


# ---- LSTM: gates while reading one sequence ----

def lstm_gates(config: dict = GATES) -> dict:
    """Train the small LSTM and trace its gates over one validation sequence whose marks are ``min_gap`` apart."""
    x, y = multiplication_problem(count=config["count"], steps=config["steps"], seed=config["seed"])
    (x_tr, y_tr), (x_va, y_va), _ = notes_split(x, y)
    torch.manual_seed(config["seed"])
    model = ManyToOne(LSTM(2, config["hidden"], batch_first=True), 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    order = torch.Generator().manual_seed(config["seed"])
    for _ in range(config["epochs"]):
        for batch in torch.randperm(len(x_tr), generator=order).split(config["batch_size"]):
            loss = F.mse_loss(model(x_tr[batch]), y_tr[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        val_mse = F.mse_loss(model(x_va), y_va).item()
    positions = x_va[:, :, 0].nonzero()[:, 1].view(-1, 2)  # (N, 2) marked steps of each sequence
    index = int(((positions[:, 1] - positions[:, 0]) >= config["min_gap"]).nonzero()[0])
    sample = x_va[index : index + 1]  # (1, T, 2)
    cell = model.rnn.cells[0]
    state, trace = cell.initial_state(1, sample), {"i": [], "f": [], "o": []}
    with torch.no_grad():
        for xp_t in cell.project(sample[0]).unsqueeze(1):  # T steps of (1, 4H)
            i, f, _g, o = cell.gates(xp_t, state[0])
            for key, value in zip("ifo", (i, f, o)):
                trace[key].append(value[0])
            state = cell.recur(xp_t, state)
    trace = {key: torch.stack(values) for key, values in trace.items()}  # each (T, H)
    marks = positions[index].tolist()
    unmarked = [t for t in range(config["steps"]) if t not in marks]
    i_gate = trace["i"]
    # how far each unit's input gate moves at a marked step from its mean over the unmarked steps
    shift = (i_gate[marks] - i_gate[unmarked].mean(0)).abs()  # (2, H)
    return {
        "val_mse_ratio": val_mse / y_va.var().item(),
        "marks": marks,
        "trace": trace,
        "units_moved": [int((row > 0.3).sum()) for row in shift],  # units whose i moves by more than 0.3
        "i_unmarked_spread": (i_gate[unmarked].max(0).values - i_gate[unmarked].min(0).values).median().item(),
        "hidden": config["hidden"],
    }


def plot_gates(result: dict, path: Path, lang: str) -> None:
    plt, text = _pyplot(lang), TEXT[lang]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), sharey=True, layout="constrained")
    for ax, key in zip(axes, "ifo"):
        image = ax.imshow(result["trace"][key].T.numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto")
        for t in result["marks"]:
            ax.axvspan(t - 0.5, t + 0.5, fill=False, edgecolor="red", linewidth=1.5)
        ax.set(title=text["gates"][key], xlabel=text["step"])
    axes[0].set_ylabel(text["unit"])
    fig.colorbar(image, ax=axes, shrink=0.9)
    fig.suptitle(text["gate_title"])
    save_figure(fig, path)
    plt.close(fig)


# ---- Conv1D: receptive field against depth ----

def conv1d_receptive_field(layers: list[int] = LAYERS) -> dict:
    return {
        "layers": layers,
        "plain3": [receptive_field([(3, 1, 1)] * L) for L in layers],
        "plain7": [receptive_field([(7, 1, 1)] * L) for L in layers],
        "dilated": [receptive_field([(3, 1, 2 ** l) for l in range(L)]) for L in layers],
        "window": WINDOW,
        "forecaster": receptive_field(FORECASTER),
    }


def plot_receptive_field(result: dict, path: Path, lang: str) -> None:
    plt, text = _pyplot(lang), TEXT[lang]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for key in ("plain3", "plain7", "dilated"):
        ax.plot(result["layers"], result[key], marker="o", label=text[key])
    ax.axhline(result["window"], color="k", linestyle="--", linewidth=1, label=text["window"])
    ax.axhline(result["forecaster"], color="gray", linestyle=":", linewidth=1.2, label=text["forecaster"])
    ax.set(yscale="log", xlabel=text["layers"], ylabel=text["field"])
    ax.set_xticks(result["layers"])
    ax.legend(fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def main(args: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    options = parser.parse_args(args)
    torch.set_num_threads(1)
    results = {"lstm": lstm_gates(), "conv1d": conv1d_receptive_field()}
    for lang, suffix in (("ko", ""), ("en", ".en")):
        plot_gates(results["lstm"], options.out / f"lstm-gates{suffix}.png", lang)
        plot_receptive_field(results["conv1d"], options.out / f"conv1d-receptive-field{suffix}.png", lang)
    return results


if __name__ == "__main__":
    main()
