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
# # Sentiment analysis notebook { #sentiment-notebook }
#
# We compare the review lengths of the [sentiment analysis](../sentiment.md) lesson in space tokens and in morphemes, and look at the weight the bag-of-words model learns for each morpheme.
# Then we plot the validation accuracy per epoch and the learning curve from `benchmarks/results/sentiment.json`, saved by `benchmarks/sentiment.py`.
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
    "spaces": "space tokens",
    "morphemes": "morphemes",
    "length": "tokens per review",
    "reviews": "training reviews",
    "epoch": "epoch",
    "val_acc": "validation accuracy (mean of 3 seeds)",
    "curves_title": "Validation accuracy per epoch",
    "test_acc": "test accuracy",
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch

from lessons.datasets import NSMCData, nsmc_split, nsmc_tokens
from lessons.sentiment import BagOfWords, SentimentSystem, classify

# %% [markdown]
# ## Review lengths { #lengths }
#
# Split into morphemes, one word becomes several tokens, so reviews get longer: more time steps for the recurrent layer to read, in exchange for shared stems.

# %%
train, val, test = nsmc_split()
fig, ax = plt.subplots(figsize=(7, 3.5))
for name in ("spaces", "morphemes"):
    tokens = nsmc_tokens(name)
    lengths = [len(tokens[i]) for i in train.tolist()]
    ax.hist(lengths, bins=range(0, 100, 2), alpha=0.6, label=TEXT[name])
    print(f"{name}: mean {sum(lengths) / len(lengths):.1f}, longest {max(lengths)}")
ax.set(xlabel=TEXT["length"], ylabel=TEXT["reviews"])
ax.legend()
plt.show()

# %% [markdown]
# ## The bag of words' weights { #weights }
#
# We train the bag-of-words model for 1 epoch on the 40,000 training reviews and look at the morphemes with the largest weights $\beta_w$ (towards positive) and the smallest (towards negative),
# among the morphemes seen at least 10 times in the training set.

# %%
data = NSMCData(batch_size=128, seed=0)
data.setup()
pl.seed_everything(0, verbose=False)
system = SentimentSystem(BagOfWords(len(data.words)), words=data.words, tokenizer="kiwi", lr=0.01)
trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, deterministic=True)
trainer.fit(system, data)
print(f"val_acc {float(trainer.callback_metrics['val_acc']):.3f}")
counts = torch.bincount(torch.cat([ids for ids, _ in data.splits["train"]]), minlength=len(data.words))
beta = system.model.beta.weight.detach().squeeze(1).masked_fill(counts < 10, float("nan"))
order = beta.nan_to_num(0).argsort()
print("+", [data.words[i] for i in order[-15:].flip(0).tolist()])
print("-", [data.words[i] for i in order[:15].tolist()])
print(classify(system, ["재미없지 않다", "노잼", "꿀잼"]))

# %% [markdown]
# ## Validation accuracy per epoch { #curves }
#
# The validation accuracy of the benchmark's five models over 3 epochs (mean of 3 seeds).

# %%
results = json.loads(pathlib.Path("benchmarks/results/sentiment.json").read_text(encoding="utf-8"))
fig, ax = plt.subplots(figsize=(7, 4))
for name, model in results["models"].items():
    curves = torch.tensor([run["val_curve"] for run in model["runs"]])
    ax.plot(range(1, curves.shape[1] + 1), curves.mean(0), marker="o", label=name)
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["val_acc"], title=TEXT["curves_title"])
ax.grid(True, alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# ## Learning curve { #learning-curve }
#
# Test accuracy against the number of training reviews (mean ± standard deviation of 3 seeds). Where the two curves cross, the recurrent model starts to pay off.

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for name, curve in results["learning_curve"].items():
    ax.errorbar(curve["sizes"], curve["test_mean"], yerr=curve["test_std"], marker="o", capsize=3, label=name)
    print(name, [f"{n}: {m:.3f}" for n, m in zip(curve["sizes"], curve["test_mean"])])
ax.set_xscale("log")
ax.set(xlabel=TEXT["reviews"], ylabel=TEXT["test_acc"])
ax.grid(True, alpha=0.3)
ax.legend()
plt.show()
