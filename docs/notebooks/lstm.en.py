# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # LSTM notebook { #lstm-notebook }
#
# Plots for the [long short-term memory (LSTM)](../lstm.md) lesson.
# The curves of the multiplication problem and of the news classifier are read from the results files of the `benchmarks/` scripts;
# for the gate plot, this notebook trains a small LSTM itself. The notebook runs from scratch at every site build.
# The figure labels (`TEXT`) and the warning and logging settings are in a setup cell this page hides; the downloaded notebook has it.

# %%
LANG = "en"

# %% tags=["remove-cell"]
# Hidden on the page: figure labels in this notebook's language, Hangul in figures,
# and no Lightning banners or known harmless warnings in the output.
import logging
import warnings

from lessons.plotting import use_hangul_font

use_hangul_font()  # lessons/plotting.py
logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # no "GPU available" banner in the figures' cells
warnings.filterwarnings("ignore", message=".*LeafSpec.*|.*does not have many workers.*")

TEXT = {  # figure labels
    "epoch": "epoch",
    "ratio": "validation MSE / baseline MSE (log scale)",
    "mult_title": "Multiplication problem (T = 100): four models, same settings, 3 seeds",
    "labels": {"RNN, Keras init": "RNN, Keras init"},
    "target": "10% of the variance",
    "step": "time step $t$",
    "unit": "hidden unit",
    "marker": "marker",
    "gates": {"i": "input gate $i_t$", "f": "forget gate $f_t$", "o": "output gate $o_t$"},
    "gate_title": "Gates of a trained LSTM (T = 20, red outline: marked steps)",
    "loss": "loss (cross-entropy)",
    "train": "training set",
    "val": "validation set",
    "text_title": "BBC News topics: loss curves",
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lessons.datasets import multiplication_problem, notes_split
from lessons.lstm import LSTM, LSTMSystem, ManyToOne

RESULTS = pathlib.Path("benchmarks/results")

# %% [markdown]
# ## Learning curves on the multiplication problem { #multiplication }
#
# Validation MSE per epoch saved by `benchmarks/gated_multiplication.py`, divided by the baseline (a model that always answers the mean).
# Below 1 the model has learned something from the input; below the dashed line is the lesson's target.
# The lines are the mean over 3 seeds, the bands run from the lowest to the highest seed.

# %%
mult = json.loads((RESULTS / "gated-multiplication.json").read_text())
baseline = mult["baseline_val_mse"]
fig, ax = plt.subplots(figsize=(6.5, 4))
best = {}
for name, run in mult["models"].items():
    seeds = torch.tensor([s["val_mse"] for s in run["seeds"]]) / baseline  # (seeds, epochs)
    epochs = range(1, seeds.shape[1] + 1)
    line, = ax.semilogy(epochs, seeds.mean(0), label=TEXT["labels"].get(name, name))
    ax.fill_between(epochs, seeds.min(0).values, seeds.max(0).values, color=line.get_color(), alpha=0.2)
    best[name] = seeds.min(1).values  # each seed's best validation MSE / baseline
ax.axhline(0.1, color="k", linestyle="--", linewidth=1, label=TEXT["target"])
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["ratio"], title=TEXT["mult_title"])
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()
print({name: [round(v, 3) for v in seed_best.tolist()] for name, seed_best in best.items()})
assert best["LSTM"].max() < 0.1 and best["RNN"].min() > 0.9 and best["RNN, Keras init"].mean() > 0.8  # checked whenever the notebook runs

# %% [markdown]
# ## Gates over a sequence { #gates }
#
# Training at 100 steps takes minutes, so here a small LSTM (16 hidden units, one layer) trains for a few seconds on the multiplication problem with 20 steps,
# and we plot its gates while it reads one validation sequence. The red outlines are the two marked steps.

# %%
x, y = multiplication_problem(count=3000, steps=20, seed=0)
(x_tr, y_tr), (x_va, y_va), _ = notes_split(x, y)
pl.seed_everything(0, verbose=False)
system = LSTMSystem(ManyToOne(LSTM(2, 16, batch_first=True), 1), task="regression", lr=0.01)
train = DataLoader(TensorDataset(x_tr, y_tr), batch_size=64, shuffle=True)
trainer = pl.Trainer(max_epochs=15, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, deterministic=True)
trainer.fit(system, train, DataLoader(TensorDataset(x_va, y_va), batch_size=512))
ratio = trainer.callback_metrics["val_mse"].item() / y_va.var().item()
print(f"validation MSE / variance: {ratio:.3f}")
assert ratio < 0.3

# the first validation sequence whose two marks are at least 8 steps apart
positions = x_va[:, :, 0].nonzero()[:, 1].view(-1, 2)  # (N, 2)
index = int(((positions[:, 1] - positions[:, 0]) >= 8).nonzero()[0])
sample = x_va[index : index + 1]  # (1, T, 2)
# run the trained cell step by step and keep its gates: i, f, o, each (T, H)
cell = system.model.rnn.cells[0]
state, trace = cell.initial_state(1, sample), {"i": [], "f": [], "o": []}
with torch.no_grad():
    for xp_t in cell.project(sample[0]).unsqueeze(1):  # T steps of (1, 4H)
        i, f, g, o = cell.gates(xp_t, state[0])
        for key, value in zip("ifo", (i, f, o)):
            trace[key].append(value[0])
        state = cell.recur(xp_t, state)
trace = {key: torch.stack(values) for key, values in trace.items()}
marks = positions[index].tolist()
fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), sharey=True, layout="constrained")
for ax, key in zip(axes, "ifo"):
    image = ax.imshow(trace[key].T, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for t in marks:
        ax.axvspan(t - 0.5, t + 0.5, fill=False, edgecolor="red", linewidth=1.5)
    ax.set(title=TEXT["gates"][key], xlabel=TEXT["step"])
axes[0].set_ylabel(TEXT["unit"])
fig.colorbar(image, ax=axes, shrink=0.9)
fig.suptitle(TEXT["gate_title"])
plt.show()
print("marked steps:", marks)

# %% [markdown]
# At the two marked steps the input gates of several units open or close sharply; at the other steps they stay at similar values.
# The model has learned to put only the marked values into its cell state and to ignore the values in between.

# %% [markdown]
# ## Loss curves of the news classifier { #text-classification }
#
# The losses per epoch saved by `benchmarks/lstm_text.py`, training and validation set together as in the notes' plot.

# %%
text = json.loads((RESULTS / "lstm-bbc-news.json").read_text())
history = text["history"]
epochs = range(1, len(history["train_loss"]) + 1)
fig, ax = plt.subplots(figsize=(6, 3.8))
ax.plot(epochs, history["train_loss"], marker=".", label=TEXT["train"])
ax.plot(epochs, history["val_loss"], marker=".", label=TEXT["val"])
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["loss"], title=TEXT["text_title"])
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()
print(f"test accuracy {text['test_acc']:.4f} (epoch {text['best_epoch']})")
assert text["test_acc"] > 3 * text["majority_test_acc"]
