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
# We compare the models of the [stacking](../stacking.md) lesson: the training and validation curves, epoch by epoch, and the parameter counts of one GRU layer and the two stacked GRUs,
# from `benchmarks/results/forecast-curves.json`, saved by `benchmarks/forecasting.py` while it trained the models to the end.
# The figure labels (`TEXT`) and the warning and logging settings are in a setup cell this page hides; the downloaded notebook has it.

# %%
LANG = "en"

# %% tags=["remove-cell"]
# Hidden on the page: figure labels in this notebook's language, Hangul in figures,
# and no Lightning banners or known harmless warnings in the output.
from lessons.plotting import use_hangul_font

use_hangul_font()  # lessons/plotting.py

TEXT = {  # figure labels
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

# %% [markdown]
# ## Training and validation curves { #curves }
#
# The MAE per epoch of one GRU layer without and with dropout (0.2/0.2), and of two stacked layers with the same dropout and with the notes' dropout (0.1/0.5). The training MAE is measured with dropout on.
# Every model trained for 30 epochs with seeds 0, 1 and 2; the curves of all three seeds are drawn in the same colours, and a dot marks each seed's best epoch, whose weights are kept.

# %%
curves = json.loads(pathlib.Path("benchmarks/results/forecast-curves.json").read_text())
names = ["gru", "gru_dropout", "stacked_gru_same", "stacked_gru"]
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
    print(f"{row['label']}: {row['parameters']:,} parameters, best val {row['val_mae_best']:.2f} ± "
          f"{row['val_mae_best_std']:.2f} at epochs {row['best_epochs']}, test {row['test_mae']:.2f} ± {row['test_mae_std']:.2f}")
assert all(len(r["history"]["val_mae"]) == curves[n]["epochs"] for n in names for r in curves[n]["runs"])
assert curves["stacked_gru"]["parameters"] == curves["stacked_gru_same"]["parameters"] > curves["gru_dropout"]["parameters"]
