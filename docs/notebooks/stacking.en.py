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
# # Stacking notebook { #stacking-notebook }
#
# We compare the models of the [stacking](../stacking.md) lesson: the training and validation curves, epoch by epoch, and the parameter counts of one GRU layer and the stacked GRU,
# from `benchmarks/results/forecast-curves.json`, saved by `benchmarks/forecasting.py` while it trained the models to the end.

# %%
LANG = "en"

# %%
import json
import pathlib

import matplotlib.pyplot as plt

from lessons.plotting import use_hangul_font


use_hangul_font()  # Hangul in figures; a missing glyph fails the build (lessons/plotting.py)

TEXT = {
    "ko": {
        "epoch": "에포크",
        "mae": "MAE (°C)",
        "train": "훈련",
        "val": "검증",
        "baseline": "상식 기준 모델 (검증)",
    },
    "en": {
        "epoch": "epoch",
        "mae": "MAE (°C)",
        "train": "training",
        "val": "validation",
        "baseline": "common sense (validation)",
    },
}[LANG]

# %% [markdown]
# ## Training and validation curves { #curves }
#
# The MAE per epoch of one GRU layer without and with dropout, and of two stacked layers with dropout. The training MAE is measured with dropout on.

# %%
curves = json.loads(pathlib.Path("benchmarks/results/forecast-curves.json").read_text())
names = ["gru", "gru_dropout", "stacked_gru"]
fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), sharey=True)
for ax, name in zip(axes, names):
    run = curves[name]
    epochs = range(1, len(run["history"]["train_mae"]) + 1)
    ax.plot(epochs, run["history"]["train_mae"], label=TEXT["train"])
    ax.plot(epochs, run["history"]["val_mae"], label=TEXT["val"])
    ax.axhline(curves["common_sense"]["val"], color="k", linestyle="--", linewidth=1, label=TEXT["baseline"])
    ax.set(title=run["label"], xlabel=TEXT["epoch"], ylim=(1.5, 9.0))
    ax.grid(True, alpha=0.3)
axes[0].set_ylabel(TEXT["mae"])
axes[0].legend()
plt.show()
for name in names:
    run = curves[name]
    print(f"{run['label']}: {run['parameters']} parameters, best val {run['val_mae_best']:.2f} "
          f"at epoch {run['best_epoch']}")
assert curves["stacked_gru"]["parameters"] > curves["gru_dropout"]["parameters"]
