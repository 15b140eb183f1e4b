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
# # Bidirectional RNN notebook { #bidirectional-notebook }
#
# We check in a plot which inputs the layer of the [bidirectional RNN](../bidirectional.md) lesson sees at every position,
# and compare the forecasting curves of the forward, backward and bidirectional GRU from
# `benchmarks/results/forecast-curves.json`, saved by `benchmarks/forecasting.py`.
# The figure labels (`TEXT`) and the warning and logging settings are in a setup cell this page hides; the downloaded notebook has it.

# %%
LANG = "en"

# %% tags=["remove-cell"]
# Hidden on the page: figure labels in this notebook's language, Hangul in figures,
# and no Lightning banners or known harmless warnings in the output.
from lessons.plotting import use_hangul_font

use_hangul_font()  # lessons/plotting.py

TEXT = {  # figure labels
    "forward": "forward half",
    "backward": "backward half",
    "output": "output position t",
    "input": "input position",
    "reach_title": "Inputs that reach the output h_t (black)",
    "epoch": "epoch",
    "mae": "validation MAE (°C)",
    "baseline": "common sense",
    "curves_title": "Reading direction and validation MAE",
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import torch

from torch import nn

from lessons.bidirectional import Bidirectional

# %% [markdown]
# ## What each position sees { #reach }
#
# On a sequence of length 10, we differentiate the forward and backward halves of each output $h_t$ with respect to the input and paint black the input positions with a nonzero gradient.
# The forward half gives the lower triangle (up to its own position), the backward half the upper triangle (from its own position on).

# %%
torch.manual_seed(0)
T, H = 10, 4
layer = Bidirectional(nn.LSTM(3, H, batch_first=True), nn.LSTM(3, H, batch_first=True))
x = torch.randn(1, T, 3, requires_grad=True)
hs, _ = layer(x)
reach = torch.zeros(2, T, T)
for t in range(T):
    for d, part in enumerate((hs[0, t, :H], hs[0, t, H:])):
        grad, = torch.autograd.grad(part.sum(), x, retain_graph=True)
        reach[d, t] = (grad[0].abs().sum(-1) > 0).float()
fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
for ax, d, name in zip(axes, range(2), ("forward", "backward")):
    ax.imshow(reach[d], cmap="Greys", vmin=0, vmax=1)
    ax.set(title=TEXT[name], xlabel=TEXT["input"], ylabel=TEXT["output"])
fig.suptitle(TEXT["reach_title"])
plt.show()
assert torch.equal(reach[0], torch.ones(T, T).tril())
assert torch.equal(reach[1], torch.ones(T, T).triu())

# %% [markdown]
# ## Reading direction and validation MAE { #curves }
#
# The validation MAE per epoch of the three models, trained for 30 epochs on the same windows. The lines are the mean over 3 seeds, the bands run from the lowest to the highest seed, and the dashed line is the common-sense baseline.

# %%
curves = json.loads(pathlib.Path("benchmarks/results/forecast-curves.json").read_text())
names = ["gru", "gru_reversed", "bigru"]
fig, ax = plt.subplots(figsize=(7, 4))
for name in names:
    seeds = torch.tensor([run["history"]["val_mae"] for run in curves[name]["runs"]])  # (seeds, epochs)
    epochs = range(1, seeds.shape[1] + 1)
    line, = ax.plot(epochs, seeds.mean(0), label=curves[name]["label"])
    ax.fill_between(epochs, seeds.min(0).values, seeds.max(0).values, color=line.get_color(), alpha=0.2)
ax.axhline(curves["common_sense"]["val"], color="k", linestyle="--", linewidth=1, label=TEXT["baseline"])
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["mae"], title=TEXT["curves_title"])
ax.grid(True, alpha=0.3)
ax.legend()
plt.show()
for name in names:
    row = curves[name]
    print(f"{row['label']}: best val {row['val_mae_best']:.2f} ± {row['val_mae_best_std']:.2f}, "
          f"test {row['test_mae']:.2f} ± {row['test_mae_std']:.2f}")
gru, back = curves["gru"], curves["gru_reversed"]
assert back["val_mae_best"] - back["val_mae_best_std"] > gru["val_mae_best"] + gru["val_mae_best_std"]
