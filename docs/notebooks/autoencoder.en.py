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
# # Sequence autoencoder notebook { #autoencoder-notebook }
#
# A small version of the model of the [sequence autoencoder](../autoencoder.md) lesson rebuilds one test window;
# then `benchmarks/results/autoencoder.json`, written by `benchmarks/autoencoder.py`, gives the validation curves per bottleneck size and the readings of the strangest windows.
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
logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*(does not have many workers|LeafSpec).*")

TEXT = {  # figure labels
    "hour": "hour of the window",
    "window": "window",
    "rebuilt": "rebuilt",
    "epoch": "epoch",
    "val_mse": "validation MSE (mean of 3 seeds)",
    "score": "reconstruction error",
    "names": {
        "temp": "temperature (°C)",
        "dewp": "dew point (°C)",
        "humid": "humidity (%)",
        "wind_speed": "wind (m/s)",
        "precip": "rain (mm)",
        "visib": "visibility (km)",
    },
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lessons.autoencoder import AutoencoderSystem, SequenceAutoencoder
from lessons.datasets import AUTOENCODER_FEATURES, weather_autoencoder, weather_grid

# %% [markdown]
# ## One window and its reconstruction { #one-window }
#
# A model with bottleneck size $k = 8$ and 32 hidden units trains for 3 epochs on a quarter of the training windows. The first test window (1 November, EWR) is drawn back in real units with its reconstruction.
# Trained this briefly, the model rebuilds little more than each window's rough level: the changes over the hours and rare spikes such as rain come back almost flat (the conclusion of [exercise 4](../autoencoder.md#exercises) too).

# %%
data = weather_autoencoder()
pl.seed_everything(0, verbose=False)
model = SequenceAutoencoder(nn.LSTM(6, 32, batch_first=True), nn.LSTM(8, 32, batch_first=True), features=6, bottleneck=8)
system = AutoencoderSystem(model, mean=data.mean.tolist(), std=data.std.tolist(), window=24,
                           features=list(AUTOENCODER_FEATURES), lr=3e-3)
trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, deterministic=True)
trainer.fit(system, DataLoader(TensorDataset(data.train[::4]), batch_size=128, shuffle=True),
            DataLoader(TensorDataset(data.val), batch_size=1024))
print(f"val_mse {float(trainer.callback_metrics['val_mse']):.3f}")
system.eval()
with torch.no_grad():
    rebuilt = system(data.test[:1]) * data.std + data.mean  # (1, 24, 6) in °C, %, m/s, mm, km
window = data.raw("test")[0]
fig, axes = plt.subplots(2, 3, figsize=(10, 5), sharex=True)
for d, (name, ax) in enumerate(zip(AUTOENCODER_FEATURES, axes.flat)):
    ax.plot(window[:, d], label=TEXT["window"])
    ax.plot(rebuilt[0, :, d], ls="--", label=TEXT["rebuilt"])
    ax.set_title(TEXT["names"][name], fontsize=10)
axes[0, 0].legend()
for ax in axes[1]:
    ax.set_xlabel(TEXT["hour"])
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Validation curves per bottleneck size { #curves }
#
# The benchmark's LSTM autoencoders' validation MSE at each epoch (mean of 3 seeds). From $k$ = 1 to 2, 4 and 8 the curves drop clearly; the curves of $k$ = 8, 16 and 32 nearly overlap and still creep down at the 10th epoch.

# %%
results = json.loads(pathlib.Path("benchmarks/results/autoencoder.json").read_text(encoding="utf-8"))
fig, ax = plt.subplots(figsize=(7, 4))
for k, summary in results["lstm"].items():
    curves = torch.tensor([run["val_curve"] for run in summary["runs"]])
    ax.plot(range(1, curves.shape[1] + 1), curves.mean(0), marker="o", label=f"k = {k}")
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["val_mse"])
ax.set_yscale("log")
ax.grid(True, alpha=0.3)
ax.legend(ncol=3)
plt.show()

# %% [markdown]
# ## The readings of the strangest windows { #strangest }
#
# The five strangest test windows the benchmark found that do not overlap. The window (red band) and the day before and after it: temperature, wind, rain and visibility in real units.

# %%
grid = weather_grid()
top = results["anomalies"]["top"]
fig, axes = plt.subplots(len(top), 4, figsize=(11, 2 * len(top)), sharex=True)
for row, found in zip(axes, top):
    s = grid.stations.index(found["station"])
    first = grid.hour(found["first"][:19])
    values = grid.values[s, first - 24:first + 48]  # the day before, the window, the day after
    for ax, name in zip(row, ("temp", "wind_speed", "precip", "visib")):
        ax.plot(range(-24, 48), values[:, ("temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib").index(name)])
        ax.axvspan(0, 23, color="red", alpha=0.15)
        ax.set_title(f"{found['station']} {found['first'][:13]}h · {TEXT['names'][name]}", fontsize=8)
    print(found["station"], found["first"], round(found["score"], 2))
for ax in axes[-1]:
    ax.set_xlabel(TEXT["hour"])
fig.tight_layout()
plt.show()
