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
# # BPTT notebook { #bptt-notebook }
#
# Plots of the measurements in the [backpropagation through time (BPTT)](../bptt.md) lesson: gradient norms against distance,
# training with and without gradient clipping, and the learning curves of the multiplication problem.
# The notebook runs from scratch every time the site is built, so every plot comes from the code as it is now.
# Open it with `jupyter lab` from the repository root, or download the `.py` file with the button above and open it with jupytext.
# The figure labels (`TEXT`) and the warning and logging settings are in a setup cell this page hides; the downloaded notebook has it.

# %%
LANG = "en"

# %% tags=["remove-cell"]
# Hidden on the page: figure labels in this notebook's language, Hangul in figures,
# and no Lightning banners or known harmless warnings in the output.
import logging
import warnings

from lessons.plotting import use_hangul_font

logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # no "GPU available" banner in the output
warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix
warnings.filterwarnings("ignore", message=".*val_dataloader.*")  # the clipping runs have no validation set
warnings.filterwarnings("ignore", message=".*does not have many workers.*")  # small tensors in memory
use_hangul_font()  # lessons/plotting.py

TEXT = {  # figure labels
    "distance": "distance k = T - t (steps)",
    "norm": "gradient norm (log scale)",
    "small": "small inputs (scale 0.001)",
    "large": "ordinary inputs (scale 1)",
    "radius": "spectral radius",
    "step": "training step",
    "grad": "gradient norm before clipping (log scale)",
    "clip_title": "SGD, learning rate 0.5",
    "no_clip": "no clipping",
    "clip": "gradient_clip_val=0.1",
    "epoch": "epoch",
    "mse": "MSE",
    "train": "training",
    "val": "validation",
    "baseline": "baseline (answer the training mean)",
    "full_title": "Notes' size: batch 32, 100 epochs",
    "fast_title": "Fast run: batch 128, 4 epochs",
}

# %%
import csv
import json
import math
import pathlib
import tempfile

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from matplotlib.ticker import FuncFormatter, NullFormatter
from torch.utils.data import DataLoader, TensorDataset

from lessons.bptt import RNNRegressionSystem, RNNRegressor, norms_by_radius
from lessons.datasets import multiplication_problem, notes_split
from lessons.rnn import RNN

# (N, 30) matrices: one thread is faster than two (no synchronisation)
torch.set_num_threads(1)


def train(system, train_loader, val_loader=None, **options):
    """pl.Trainer with a CSVLogger; returns metrics.csv's rows (one per logged step or epoch)."""
    logger = pl.loggers.CSVLogger(tempfile.mkdtemp(), name="", version="")
    trainer = pl.Trainer(logger=logger, log_every_n_steps=1, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         deterministic=True, num_sanity_val_steps=0, **options)
    trainer.fit(system, train_loader, val_loader)
    with open(pathlib.Path(logger.log_dir) / "metrics.csv") as f:
        return list(csv.DictReader(f))


def column(rows, key):
    """Every value of one metric, in order."""
    return [float(r[key]) for r in rows if r.get(key)]


def stacked_rnn():
    """Two lessons.rnn.RNN layers (PyTorch's initialisation) and a linear output: 2851 parameters."""
    return RNNRegressor(RNN(2, 30, num_layers=2, batch_first=True))


def plain_log_ticks(ax):
    """Label a log axis 1e-4, 1e0, ... (NanumGothic has no math minus sign for 10^-4)."""
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"1e{math.log10(v):.0f}"))
    ax.yaxis.set_minor_formatter(NullFormatter())

# %% [markdown]
# ## Gradient norms against distance { #gradient-norms }
#
# The size of the gradient that a loss on the last hidden state gives to the hidden state $k$ steps earlier, for three spectral radii.
# On a log scale exponential change is a straight line. Left: small inputs that keep the hidden state near 0; right: inputs of ordinary size, where $\tanh$ saturates.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for ax, scale, title in zip(axes, (1e-3, 1.0), (TEXT["small"], TEXT["large"])):
    norms = norms_by_radius(radii=(0.9, 1.0, 1.1), steps=50, input_scale=scale)
    for radius, n in norms.items():
        ax.semilogy(range(len(n)), n, label=f"{radius}")
    ax.set(xlabel=TEXT["distance"], title=title)
    plain_log_ticks(ax)
    ax.grid(True, alpha=0.3)
axes[0].set_ylabel(TEXT["norm"])
axes[0].legend(title=TEXT["radius"])
plt.show()

small = norms_by_radius(radii=(0.9, 1.0, 1.1), steps=50)
print({r: f"{n[-1].item():.3g}" for r, n in small.items()})
ratios = small[0.9][1:] / small[0.9][:-1]
assert ((ratios - 0.9).abs() < 1e-3).all()  # geometric: 0.9 per step back
assert (small[1.1][1:] > small[1.1][:-1]).all()  # grows with every step back

# %% [markdown]
# ## Gradient clipping { #clipping }
#
# The multiplication problem shortened to 20 steps, trained with SGD at a large learning rate, recording the gradient norm just before clipping at every step.
# Without clipping the norm grows step after step until it is infinite. With `gradient_clip_val=0.1` the norm before clipping stays finite too, and any length above the dotted line (0.1) is cut before the step.

# %%
xm, ym = multiplication_problem(count=256, steps=20)
loader = DataLoader(TensorDataset(xm, ym), batch_size=32)
runs = {}
for clip in (None, 0.1):
    pl.seed_everything(0, verbose=False)
    system = RNNRegressionSystem(stacked_rnn(), lr=0.5, optimizer="sgd")
    rows = train(system, loader, max_epochs=3, gradient_clip_val=clip)
    runs[clip] = column(rows, "train_loss"), column(rows, "grad_norm")

fig, ax = plt.subplots(figsize=(6, 3.8))
for clip, label in ((None, TEXT["no_clip"]), (0.1, TEXT["clip"])):
    ax.semilogy(range(1, len(runs[clip][1]) + 1), runs[clip][1], label=label)
ax.axhline(0.1, color="k", linestyle=":", linewidth=1)
ax.set(xlabel=TEXT["step"], ylabel=TEXT["grad"], title=TEXT["clip_title"])
plain_log_ticks(ax)
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()
for clip, (losses, _) in runs.items():
    print(clip, [f"{v:.3g}" for v in losses])
assert not torch.isfinite(torch.tensor(runs[None][0][-1]))  # diverged
assert all(torch.isfinite(torch.tensor(runs[0.1][0])))  # stayed finite

# %% [markdown]
# ## Multiplication problem: learning curves at the notes' size { #multiplication-full }
#
# Training at the notes' size (batch 32, 100 epochs) is too long for every site build, so we plot the per-epoch losses that
# `benchmarks/bptt_multiplication.py` saved. Left: PyTorch's initialisation, right: Keras' initialisation.
# With PyTorch's the validation loss never goes meaningfully below the baseline; with Keras' the training loss falls below the baseline while the validation loss ends above it: the model fits the training set without learning the rule.

# %%
full = json.loads(pathlib.Path("benchmarks/results/bptt-multiplication.json").read_text())
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for ax, (init, run) in zip(axes, full.items()):
    epochs = range(1, len(run["train_loss"]) + 1)
    ax.plot(epochs, run["train_loss"], label=TEXT["train"])
    ax.plot(epochs, run["val_loss"], label=TEXT["val"])
    ax.axhline(run["baseline_val"], color="k", linestyle="--", label=TEXT["baseline"])
    ax.set(xlabel=TEXT["epoch"], title=f"init={init!r}")
    ax.grid(True, alpha=0.3)
axes[0].set_ylabel(TEXT["mse"])
axes[0].legend()
fig.suptitle(TEXT["full_title"])
plt.show()
torch_run, keras_run = full["torch"], full["keras"]
for init, run in full.items():
    print(f"{init}: baseline {run['baseline_val']:.4f}, "
          f"best validation {min(run['val_loss']):.4f}, last {run['val_loss'][-1]:.4f}")
# torch init: never meaningfully better than answering the mean
assert min(torch_run["val_loss"]) > 0.95 * torch_run["baseline_val"]
# keras init: fits the training set (training loss below the baseline) but not the rule (validation above it), every seed
assert keras_run["train_loss"][-1] < keras_run["baseline_val"] < keras_run["val_loss"][-1]
assert all(s["last_train"] < 1 < s["last_val"] for s in keras_run["seeds"])

# %% [markdown]
# ## Multiplication problem: a fast run { #multiplication-fast }
#
# The same generator, split and model (PyTorch's initialisation), trained now for only 4 epochs with batch 128. The validation loss stays near the baseline.

# %%
x, y = multiplication_problem()
(x_tr, y_tr), (x_va, y_va), _ = notes_split(x, y)
baseline = ((y_va - y_tr.mean()) ** 2).mean().item()
pl.seed_everything(0, verbose=False)
system = RNNRegressionSystem(stacked_rnn())
shuffle = torch.Generator().manual_seed(0)
train_loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=128, shuffle=True,
                          generator=shuffle)
val_loader = DataLoader(TensorDataset(x_va, y_va), batch_size=512)
rows = train(system, train_loader, val_loader, max_epochs=4)
history = {key: column(rows, key) for key in ("train_loss", "val_loss")}

fig, ax = plt.subplots(figsize=(6, 3.8))
epochs = range(1, 5)
ax.plot(epochs, history["train_loss"], "o-", label=TEXT["train"])
ax.plot(epochs, history["val_loss"], "o-", label=TEXT["val"])
ax.axhline(baseline, color="k", linestyle="--", label=TEXT["baseline"])
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["mse"], title=TEXT["fast_title"])
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()
print(f"baseline {baseline:.4f}, validation",
      [round(v, 4) for v in history["val_loss"]])
assert min(history["val_loss"]) > 0.95 * baseline
