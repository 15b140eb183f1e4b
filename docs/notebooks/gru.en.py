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
# # GRU notebook { #gru-notebook }
#
# Plots for the [gated recurrent unit (GRU)](../gru.md) lesson.
# The multiplication-problem curves are read from the results file of `benchmarks/gated_multiplication.py`;
# a short training run and the difference between the notes' equation and PyTorch's are computed here. The notebook runs from scratch at every site build.
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
logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # no "GPU available" banner in the output
warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix

TEXT = {  # figure labels
    "epoch": "epoch",
    "ratio": "validation MSE / baseline MSE (log scale)",
    "mult_title": "Multiplication problem (T = 100): four models, same settings, 3 seeds",
    "labels": {"RNN, Keras init": "RNN, Keras init"},
    "target": "10% of the variance",
    "step": "time step $t$",
    "diff": "largest $|h_t^{PyTorch} - h_t^{notes}|$",
    "diff_title": "Same weights, different candidate: hidden states of the two GRUs",
    "mse_ratio": "MSE / variance of the targets",
    "train": "training",
    "val": "validation",
    "short_title": "Multiplication problem (T = 10): GRUSystem, pl.Trainer, CSVLogger's record",
}

# %%
import csv
import json
import pathlib
import tempfile

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lessons.datasets import multiplication_problem
from lessons.gru import GRU, GRUCell, GRUSystem, ManyToOne, notes_gru_step

RESULTS = pathlib.Path("benchmarks/results")

# %% [markdown]
# ## Learning curves on the multiplication problem { #multiplication }
#
# The same results file as in the LSTM lesson: validation MSE per epoch divided by the baseline (a model that always answers the mean).
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
assert best["GRU"].max() < 0.1 and best["RNN"].min() > 0.9 and best["RNN, Keras init"].mean() > 0.8  # checked whenever the notebook runs

# %% [markdown]
# ## Curves of a Lightning run { #training-curve }
#
# The lesson's short run ($T = 10$, 12 epochs) again, with a `CSVLogger`; the plot reads each epoch's MSE from the logger's `metrics.csv`.

# %%
x, y = multiplication_problem(count=1200, steps=10)  # (N, T, D), (N, 1)
train = DataLoader(TensorDataset(x[:1000], y[:1000]), batch_size=50, shuffle=True)
val = DataLoader(TensorDataset(x[1000:], y[1000:]), batch_size=200)
pl.seed_everything(0, verbose=False)
system = GRUSystem(ManyToOne(GRU(2, 16, batch_first=True), 1), lr=0.01)
with tempfile.TemporaryDirectory() as logs:
    trainer = pl.Trainer(max_epochs=12, logger=pl.loggers.CSVLogger(logs), enable_checkpointing=False, log_every_n_steps=1,
                         enable_progress_bar=False, enable_model_summary=False, deterministic=True)
    trainer.fit(system, train, val)
    with open(pathlib.Path(trainer.logger.log_dir) / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
variance = y[1000:].var().item()
curves = {stage: [float(r[f"{stage}_mse"]) / variance for r in rows if r.get(f"{stage}_mse")] for stage in ("train", "val")}
fig, ax = plt.subplots(figsize=(6, 3.5))
for stage, ratio in curves.items():
    ax.plot(range(1, len(ratio) + 1), ratio, marker="o", label=TEXT[stage])
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["mse_ratio"], title=TEXT["short_title"])
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()
print(f"last validation MSE / variance {curves['val'][-1]:.3f}")
assert len(curves["val"]) == 12 and curves["val"][-1] < 0.2

# %% [markdown]
# ## The notes' equation and PyTorch's { #notes-variant }
#
# One cell, one set of weights, both equations run for 50 steps; the plot shows the largest difference between the two hidden states at each step.
# The difference is not zero: the two equations are different functions.

# %%
torch.manual_seed(0)
cell = GRUCell(input_size=3, hidden_size=8).double()
x = torch.randn(50, 4, 3, dtype=torch.float64)  # (T, N, D)
h_torch = h_notes = torch.zeros(4, 8, dtype=torch.float64)
gaps = []
with torch.no_grad():
    for x_t in x:
        h_torch = cell(x_t, h_torch)
        h_notes = notes_gru_step(cell, x_t, h_notes)
        gaps.append((h_torch - h_notes).abs().max().item())

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(range(1, len(gaps) + 1), gaps)
ax.set(xlabel=TEXT["step"], ylabel=TEXT["diff"], title=TEXT["diff_title"])
ax.grid(True, alpha=0.3)
plt.show()
print(f"largest gap {max(gaps):.3f}")
assert max(gaps) > 0.01
