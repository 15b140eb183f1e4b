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
# # Image captioning notebook { #captioning-notebook }
#
# Make the digit strips of the [image captioning](../captioning.md) chapter yourself, then plot, from the
# `benchmarks/results/captioning.json` that `benchmarks/captioning.py` saved, both models' validation exact match per epoch, exact match by strip length, and attention weights.
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
    "val_exact": "validation exact match (mean of 3 seeds)",
    "digits": "digits in the strip",
    "test_exact": "test exact match",
    "plain": "CNN → LSTM",
    "attention": "CNN → LSTM + attention",
    "truth": "truth",
    "column": "column (4 pixels)",
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import torch

from lessons.captioning import DIGIT_WORDS, split_strips
from lessons.datasets import load_digit_images

# %% [markdown]
# ## Digit strips { #strips }
#
# The handwritten digit images are split first into training, validation and test images; then each split's images are placed 1 to 4 side by side into strips. The caption reads the strip's digits.

# %%
images, labels = load_digit_images()
parts = split_strips(images, labels, counts=(8000, 1000, 1000), language=LANG, seed=0)
strips, y, captions = parts["train"]
print({split: len(part[0]) for split, part in parts.items()})
print(y[:3])
fig, axes = plt.subplots(3, 2, figsize=(7, 3.2))
for ax, strip, text in zip(axes.flat, strips, captions):
    ax.imshow(strip[0], cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(text, fontsize=9)
    ax.axis("off")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Validation exact match per epoch { #curves }
#
# The validation exact match of the benchmark's two models over 25 epochs (mean of 3 seeds): see how fast the model with attention rises.

# %%
results = json.loads(pathlib.Path("benchmarks/results/captioning.json").read_text(encoding="utf-8"))
fig, ax = plt.subplots(figsize=(7, 4))
for name, model in results["models"].items():
    curve = model["val_curve_mean"]
    ax.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, label=TEXT[name])
    print(name, [round(v, 3) for v in curve[::4]])
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["val_exact"])
ax.grid(True, alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# ## Exact match by strip length { #by-length }
#
# The more digits a strip has, the longer its caption and the more places to go wrong. Bars: mean of 3 seeds; lines: standard deviation.

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for k, (name, model) in enumerate(results["models"].items()):
    by = model["by_length"]
    xs = torch.arange(1, 5) + (k - 0.5) * 0.35
    ax.bar(xs, [by[n]["mean"] for n in "1234"], width=0.35, yerr=[by[n]["std"] for n in "1234"], capsize=3,
           label=TEXT[name])
ax.set(xlabel=TEXT["digits"], ylabel=TEXT["test_exact"], xticks=range(1, 5), ylim=(0.5, 1.0))
ax.legend()
plt.show()

# %% [markdown]
# ## Attention weights { #attention }
#
# The weights the attention model (seed 0) gives the eight columns for each word of eight test strips: see whether the place it looks at moves right with each word it writes.

# %%
samples = results["samples"]
fig, axes = plt.subplots(2, 4, figsize=(10, 4.6))
for ax, image, words, weights, truth in zip(axes.flat, samples["images"], samples["attention"], samples["weights"],
                                            samples["truth"]):
    ax.imshow(weights, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_yticks(range(len(weights)), [DIGIT_WORDS[LANG][d] for d in words] + ["<eos>"])
    ax.set_xlabel(TEXT["column"], fontsize=8)
    ax.set_title(TEXT["truth"] + ": " + " ".join(DIGIT_WORDS[LANG][d] for d in truth), fontsize=9)
fig.tight_layout()
plt.show()
print("columns looked at most:", [torch.tensor(w).argmax(-1).tolist() for w in samples["weights"]])
