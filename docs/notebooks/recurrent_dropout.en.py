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
# # Recurrent dropout notebook { #recurrent-dropout-notebook }
#
# We look at the masks of the [recurrent dropout](../recurrent_dropout.md) lesson and plot the forecasting models' training and validation curves, epoch by epoch.
# The mask plots are computed afresh at every site build. The curves are read from `benchmarks/results/forecast-curves.json`, saved by
# `benchmarks/forecasting.py` while it trained the models to the end, so they come from the same runs as the lesson's results table.
# The figure labels (`TEXT`) and the warning and logging settings are in a setup cell this page hides; the downloaded notebook has it.

# %%
LANG = "en"

# %% tags=["remove-cell"]
# Hidden on the page: figure labels in this notebook's language, Hangul in figures,
# and no Lightning banners or known harmless warnings in the output.
from lessons.plotting import use_hangul_font

use_hangul_font()  # lessons/plotting.py

TEXT = {  # figure labels
    "per_sequence": "once per sequence",
    "per_step": "new at every step",
    "step": "time step t",
    "feature": "input feature",
    "mask_title": "Kept input features (white = dropped)",
    "epoch": "epoch",
    "mae": "MAE (°C)",
    "train": "training",
    "val": "validation",
    "baseline": "common sense (validation)",
    "best": "best epoch",
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import torch

from torch import nn

from lessons.recurrent_dropout import RecurrentDropout

# %% [markdown]
# ## Two kinds of masks { #masks }
#
# We feed the same sequence to two layers and read their masks from the gradient that dropped input features do not get.
# A mask drawn once per sequence shows as horizontal stripes (the same features at every step); masks drawn at every step show as scattered dots.

# %%
torch.manual_seed(0)
x = torch.randn(1, 40, 8)
fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
patterns = {}
for ax, per_step in zip(axes, (False, True)):
    layer = RecurrentDropout(nn.GRUCell(8, 16), dropout=0.5, batch_first=True, per_step=per_step)
    xg = x.clone().requires_grad_(True)
    layer(xg)[0].sum().backward()
    kept = (xg.grad[0] != 0).float()  # (T, D)
    patterns[per_step] = kept
    ax.imshow(kept.T, cmap="Greys_r", aspect="auto", vmin=0, vmax=1)
    ax.set(xlabel=TEXT["step"], title=TEXT["per_step" if per_step else "per_sequence"])
axes[0].set_ylabel(TEXT["feature"])
fig.suptitle(TEXT["mask_title"])
plt.show()
# once per sequence: every step keeps the same features; per step: not
assert torch.equal(patterns[False], patterns[False][:1].expand_as(patterns[False]))
assert not torch.equal(patterns[True], patterns[True][:1].expand_as(patterns[True]))

# %% [markdown]
# ## Training and validation curves { #curves }
#
# The MAE per epoch of the GRU without dropout, the GRU with one mask per sequence, the GRU with new masks at every step, and the LSTM without and with dropout.
# Every model trained for 30 epochs with seeds 0, 1 and 2; the curves of all three seeds are drawn in the same colours, and a dot marks each seed's best epoch, whose weights are kept.
# The training curve is measured with dropout on, so a model with dropout can show a training MAE above its validation MAE.

# %%
curves = json.loads(pathlib.Path("benchmarks/results/forecast-curves.json").read_text())
names = ["gru", "gru_dropout", "gru_dropout_per_step", "lstm_plain", "lstm_dropout"]
fig, axes = plt.subplots(1, len(names), figsize=(3.3 * len(names), 3.3), sharey=True)
for ax, name in zip(axes, names):
    row = curves[name]
    for i, run in enumerate(row["runs"]):  # one pair of curves per seed, the same colours
        epochs = range(1, len(run["history"]["train_mae"]) + 1)
        first = i == 0
        ax.plot(epochs, run["history"]["train_mae"], color="C0", alpha=0.6, label=TEXT["train"] if first else None)
        ax.plot(epochs, run["history"]["val_mae"], color="C1", alpha=0.6, label=TEXT["val"] if first else None)
        ax.plot(run["best_epoch"], run["val_mae_best"], "o", color="C1", label=TEXT["best"] if first else None)
    ax.axhline(curves["common_sense"]["val"], color="k", linestyle="--", linewidth=1, label=TEXT["baseline"])
    ax.set(xlabel=TEXT["epoch"], ylim=(0.5, 10.5))
    ax.set_title(row["label"], fontsize=8)
    ax.grid(True, alpha=0.3)
axes[0].set_ylabel(TEXT["mae"])
axes[0].legend(fontsize=7, loc="upper right")
fig.tight_layout()
plt.show()
for name in names:
    row = curves[name]
    print(f"{row['label']}: best val {row['val_mae_best']:.2f} ± {row['val_mae_best_std']:.2f} at epochs "
          f"{row['best_epochs']}, last val {row['val_mae_last']:.2f}, test {row['test_mae']:.2f} ± {row['test_mae_std']:.2f}")
assert all(len(r["history"]["val_mae"]) == curves[n]["epochs"] for n in names for r in curves[n]["runs"])
