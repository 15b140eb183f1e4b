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
# # Part-of-speech tagging notebook { #tagging-notebook }
#
# Figures for the results of the [part-of-speech tagging](../tagging.md) lesson: accuracy per model and the
# confusion matrices, read from `benchmarks/results/tagging.json`, which `benchmarks/tagging.py` saves.
# The figure labels (`TEXT`) and the warning and logging settings are in a setup cell this page hides; the downloaded notebook has it.

# %%
LANG = "en"

# %% tags=["remove-cell"]
# Hidden on the page: figure labels in this notebook's language, Hangul in figures,
# and no Lightning banners or known harmless warnings in the output.
from lessons.plotting import use_hangul_font

use_hangul_font()  # lessons/plotting.py

TEXT = {  # figure labels
    "ko": "Korean GSD", "en": "English EWT", "all": "all test words", "unseen": "unseen words",
    "accuracy": "test accuracy (%)", "acc_title": "Test accuracy per model (mean ± std over 3 seeds)",
    "gold": "true tag", "guess": "predicted tag", "cm_title": "Confusion matrix of the bidirectional LSTM + characters (row shares, seed 0)",
    "names": {"baseline": "baseline", "lstm": "LSTM", "bilstm": "bidirectional", "bilstm_chars": "bidirectional + characters"},
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import torch


results = json.loads(pathlib.Path("benchmarks/results/tagging.json").read_text(encoding="utf-8"))
KINDS = ["baseline", "lstm", "bilstm", "bilstm_chars"]

# %% [markdown]
# ## Accuracy per model { #accuracy }
#
# Test accuracy of the baseline and the three networks. The left bar counts every test word, the right bar only the unseen words (not in the training sentences).

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, layout="constrained")
for ax, language in zip(axes, ("ko", "en")):
    r = results[language]
    for k, (key, label) in enumerate((("test_acc", TEXT["all"]), ("unseen_acc", TEXT["unseen"]))):
        means = [100 * r["baseline"][key]] + [100 * r["models"][m][key]["mean"] for m in KINDS[1:]]
        stds = [0] + [100 * r["models"][m][key]["std"] for m in KINDS[1:]]
        ax.bar([i + 0.4 * k for i in range(4)], means, width=0.4, yerr=stds, capsize=3, label=label)
    ax.set_xticks([i + 0.2 for i in range(4)], [TEXT["names"][m] for m in KINDS], rotation=15)
    ax.set(title=TEXT[language], ylim=(0, 100))
    ax.grid(True, axis="y", alpha=0.3)
axes[0].set_ylabel(TEXT["accuracy"])
axes[0].legend(loc="lower right")
fig.suptitle(TEXT["acc_title"])
plt.show()
for language in ("ko", "en"):
    r = results[language]
    print(language, {m: round(100 * r["models"][m]["test_acc"]["mean"], 1) for m in KINDS[1:]},
          "baseline", round(100 * r["baseline"]["test_acc"], 1))

# %% [markdown]
# ## Confusion matrix { #confusion }
#
# Rows are the true tags, columns the predicted ones. Each row is turned into shares, so the diagonal is the tag's accuracy and the cells off it show which tag it is mistaken for.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 5.5), layout="constrained")
for ax, language in zip(axes, ("ko", "en")):
    r = results[language]
    counts = torch.tensor(r["models"]["bilstm_chars"]["confusion"], dtype=torch.float64)  # rows: true, columns: predicted
    keep = counts.sum(1) > 0
    shares = counts[keep][:, keep] / counts[keep].sum(1, keepdim=True)
    tags = [t for t, k in zip(r["tags"], keep.tolist()) if k]
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(tags)), tags, rotation=90)
    ax.set_yticks(range(len(tags)), tags)
    ax.set(title=TEXT[language], xlabel=TEXT["guess"], ylabel=TEXT["gold"])
    for i in range(len(tags)):
        for j in range(len(tags)):
            if shares[i, j] >= 0.05:
                ax.text(j, i, f"{shares[i, j]:.2f}".lstrip("0"), ha="center", va="center", fontsize=6,
                        color="white" if shares[i, j] > 0.5 else "black")
fig.suptitle(TEXT["cm_title"])
plt.show()
