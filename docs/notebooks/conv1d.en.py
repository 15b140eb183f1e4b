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
# # 1D convolution notebook { #conv1d-notebook }
#
# Pictures for the [1D convolution](../conv1d.md) lesson: the feature maps of a shifted pattern, the speed measured by the
# benchmark script, the receptive field of three ways of stacking, and the per-epoch curves of forecasting and news classification.
# The figure labels (`TEXT`) and the warning and logging settings are in a setup cell this page hides; the downloaded notebook has it.

# %%
LANG = "en"

# %% tags=["remove-cell"]
# Hidden on the page: figure labels in this notebook's language, Hangul in figures,
# and no Lightning banners or known harmless warnings in the output.
from lessons.plotting import use_hangul_font

use_hangul_font()  # lessons/plotting.py

TEXT = {  # figure labels
    "step": "step",
    "feature": "feature map (channel 0)",
    "early": "pattern at step 5",
    "late": "pattern at step 45",
    "T": "sequence length T",
    "ms": "one training step (ms)",
    "layers": "layers",
    "field": "receptive field (steps)",
    "plain3": "k = 3, stacked",
    "plain7": "k = 7, stacked",
    "dilated": "k = 3, dilations 1, 2, 4, …",
    "epoch": "epoch",
    "mae": "validation MAE (°C)",
    "baseline": "common sense",
    "acc": "validation accuracy",
    "words": "words",
    "global max": "global max",
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator

from lessons.conv1d import Conv1d, receptive_field

# %% [markdown]
# ## A shifted pattern { #translation-invariance }
#
# The convolution layer of the lesson gets the same pattern at step 5 and at step 45. The feature maps have the same shape, only 40 steps apart,
# so global max pooling (dotted line) gives both inputs the same value.

# %%
torch.manual_seed(0)
conv = Conv1d(in_channels=1, out_channels=4, kernel_size=3).double()


def placed(t, T=50):
    x = torch.zeros(1, T, 1, dtype=torch.float64)
    x[0, t:t + 3, 0] = torch.tensor([1.0, -1.0, 2.0])
    return x


with torch.no_grad():
    maps = {key: conv(placed(t).transpose(1, 2))[0, 0] for key, t in (("early", 5), ("late", 45))}  # (N, D, T) in
fig, ax = plt.subplots(figsize=(8, 3))
for key, y in maps.items():
    ax.plot(y, marker=".", label=TEXT[key])
ax.axhline(float(maps["early"].max()), color="k", linestyle=":", linewidth=1)
ax.set(xlabel=TEXT["step"], ylabel=TEXT["feature"])
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()
assert float(maps["early"].max()) == float(maps["late"].max())

# %% [markdown]
# ## Speed { #speed }
#
# The medians that `benchmarks/conv_speed.py` saved in `benchmarks/results/conv-speed.json`, on log scales for both axes.
# Both kinds grow about in proportion to $T$; on the CPU that made this table the LSTM that keeps subnormal floats (subnormals kept) runs as fast as the other.

# %%
speed = json.loads(pathlib.Path("benchmarks/results/conv-speed.json").read_text())
fig, ax = plt.subplots(figsize=(6, 4))
for key, label in speed["labels"].items():
    ax.plot(speed["Ts"], [row["median_ms"][key] for row in speed["rows"]], marker="o", label=label)
ax.set(xscale="log", yscale="log", xlabel=TEXT["T"], ylabel=TEXT["ms"])
ax.legend()
ax.grid(True, which="both", alpha=0.3)
plt.show()
for row in speed["rows"]:
    print(f"T = {row['T']:5d}: LSTM / Conv1d = {row['ratio']['lstm/conv']:5.1f}x, "
          f"LSTM / nn.Conv1d = {row['ratio']['lstm/conv_torch']:5.1f}x")

# %% [markdown]
# ## Receptive field { #receptive-field }
#
# Stacking alone adds $k - 1$ steps per layer; doubling the dilation from layer to layer makes the receptive field grow exponentially with depth.

# %%
layers = list(range(1, 11))
fields = {
    "plain3": [receptive_field([(3, 1, 1)] * L) for L in layers],
    "plain7": [receptive_field([(7, 1, 1)] * L) for L in layers],
    "dilated": [receptive_field([(3, 1, 2 ** l) for l in range(L)]) for L in layers],
}
fig, ax = plt.subplots(figsize=(6, 4))
for key, values in fields.items():
    ax.plot(layers, values, marker="o", label=TEXT[key])
ax.set(yscale="log", xlabel=TEXT["layers"], ylabel=TEXT["field"])
ax.legend()
ax.grid(True, which="both", alpha=0.3)
plt.show()
assert fields["dilated"][-1] == 2 ** 11 - 1 and fields["plain3"][-1] == 21

# %% [markdown]
# ## Temperature forecasting { #forecasting }
#
# The per-epoch validation MAE saved by `benchmarks/forecasting.py`. The lines are the mean over 3 seeds, the bands run from the lowest to the highest seed. The convnet stays above the common-sense baseline throughout training in all three seeds.

# %%
curves = json.loads(pathlib.Path("benchmarks/results/forecast-curves.json").read_text())
fig, ax = plt.subplots(figsize=(7, 4))
for name in ("lstm_plain", "conv", "cnn_lstm"):
    seeds = torch.tensor([run["history"]["val_mae"] for run in curves[name]["runs"]])  # (seeds, epochs)
    epochs = range(1, seeds.shape[1] + 1)
    line, = ax.plot(epochs, seeds.mean(0), marker=".", label=curves[name]["label"])
    ax.fill_between(epochs, seeds.min(0).values, seeds.max(0).values, color=line.get_color(), alpha=0.2)
ax.axhline(curves["common_sense"]["val"], color="k", linestyle="--", linewidth=1, label=TEXT["baseline"])
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["mae"])
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.legend(fontsize=8)
ax.grid(True, alpha=0.3)
plt.show()
assert all(min(run["history"]["val_mae"]) > curves["common_sense"]["val"] for run in curves["conv"]["runs"])

# %% [markdown]
# ## News classification { #text-classification }
#
# The per-epoch validation accuracy on BBC News saved by `benchmarks/conv_text.py`: the first 100 words of each article on the left, 400 on the right.
# Each line is the mean over 3 seeds, each band runs from the lowest to the highest seed. The LSTM has the widest band at both lengths: it varies most from seed to seed.

# %%
text = json.loads(pathlib.Path("benchmarks/results/conv-text.json").read_text())
fig, axes = plt.subplots(1, len(text["runs"]), figsize=(11, 3.5), sharey=True)
width = {}
for ax, (T, runs) in zip(axes, text["runs"].items()):
    for kind, row in runs.items():
        seeds = torch.tensor([run["history"]["val_acc"] for run in row["runs"]])  # (seeds, epochs)
        epochs = range(1, seeds.shape[1] + 1)
        label = row["label"].replace("global max", TEXT["global max"])
        line, = ax.plot(epochs, seeds.mean(0), marker=".", label=label)
        ax.fill_between(epochs, seeds.min(0).values, seeds.max(0).values, color=line.get_color(), alpha=0.2)
        width[T, kind] = (seeds.max(0).values - seeds.min(0).values).mean().item()  # the band's mean width
    ax.set(title=f"T = {T} {TEXT['words']}", xlabel=TEXT["epoch"])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
axes[0].set_ylabel(TEXT["acc"])
axes[0].legend(fontsize=8)
plt.show()
assert all(max(runs, key=lambda kind: width[T, kind]) == "lstm" for T, runs in text["runs"].items())
for T, runs in text["runs"].items():
    for kind, row in runs.items():
        print(f"T = {T}, {kind:6s}: test accuracy {row['test_acc']:.3f} ± {row['test_acc_std']:.3f} "
              f"over seeds {text['seeds']}, best epochs {row['best_epochs']}, {row['seconds_per_epoch']:.1f} s/epoch")
