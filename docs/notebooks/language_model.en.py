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
# # Language model notebook { #language-model-notebook }
#
# With the toy model of the [language models](../language_model.md) lesson, this notebook draws how temperature changes the next-token distribution, and measures the perplexity of Kneser–Ney n-grams of several orders.
# Last, it plots the validation perplexity per epoch from `benchmarks/results/language-model.json`, which `benchmarks/language_model.py` wrote.
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
warnings.filterwarnings("ignore", message=".*(does not have many workers|LeafSpec|IterableDataset).*")

TEXT = {  # figure labels
    "probability": "probability of the next token",
    "temperature": "temperature",
    "order": "n-gram order",
    "perplexity": "validation perplexity",
    "epoch": "epoch",
    "curves_title": "Validation perplexity per epoch (mean of 3 seeds)",
    "word": "morphemes",
    "char": "characters",
}

# %%
import importlib.util
import json
import math
import pathlib

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from torch import nn

from lessons.datasets import nsmc_lm_reviews
from lessons.language_model import LanguageModel, LanguageModelSystem, StreamData, LMVocab, encode_prefix, encode_stream

# %% [markdown]
# ## Temperature and the next-token distribution { #temperature }
#
# A small LSTM learns the toy reviews; the figure shows the distribution of the token after "이 영화 정말" at three temperatures. A low temperature piles the probability onto the most plausible tokens, a high one spreads it out.

# %%
pl.seed_everything(0, verbose=False)
data = StreamData(batch_size=4, bptt=8)
system = LanguageModelSystem(LanguageModel(len(data.words), 16, nn.LSTM(16, 16, batch_first=True)),
                             words=data.words, tokenizer="spaces", lr=0.02)
trainer = pl.Trainer(max_epochs=25, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, deterministic=True)
trainer.fit(system, data)
system.eval()
with torch.no_grad():
    logits = system(torch.tensor([encode_prefix(system, "이 영화 정말")]))[0, -1]
top = logits.topk(6).indices
fig, ax = plt.subplots(figsize=(7, 3.5))
for i, tau in enumerate((0.5, 1.0, 2.0)):
    p = (logits / tau).softmax(-1)[top]
    ax.bar(torch.arange(6) + 0.27 * (i - 1), p, width=0.27, label=f"{TEXT['temperature']} {tau}")
ax.set_xticks(range(6), [data.words[i] for i in top.tolist()])
ax.set_ylabel(TEXT["probability"])
ax.legend()
plt.show()

# %% [markdown]
# ## The order of the n-gram { #ngram-order }
#
# Kneser–Ney n-grams of orders 1 to 4 are built from 5,000 training reviews and measured on 1,000 validation reviews. A higher order sees more context, but 5,000 reviews never show most of the long n-grams.

# %%
spec = importlib.util.spec_from_file_location("lm_benchmark", "benchmarks/language_model.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
train, val, _ = nsmc_lm_reviews("morphemes")
vocab = LMVocab.build(train[:5000], min_freq=2)
train_stream, val_stream = (encode_stream(part, vocab).tolist() for part in (train[:5000], val[:1000]))
orders, perplexities = [1, 2, 3, 4], []
for order in orders:
    logp = bench.KneserNey(order).fit(train_stream, len(vocab) - 1).log_probs(val_stream)
    perplexities.append(math.exp(-sum(logp) / len(logp)))
print([round(p, 1) for p in perplexities])
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(orders, perplexities, marker="o")
ax.set(xlabel=TEXT["order"], ylabel=TEXT["perplexity"], xticks=orders)
ax.grid(True, alpha=0.3)
plt.show()

# %% [markdown]
# ## Validation perplexity per epoch { #curves }
#
# The benchmark LSTMs' validation perplexity after each epoch (mean of 3 seeds) and the n-gram's (dashed). Morpheme and character perplexities cannot be compared, so they get separate panels.

# %%
results = json.loads(pathlib.Path("benchmarks/results/language-model.json").read_text(encoding="utf-8"))
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for ax, (level, models) in zip(axes, results["models"].items()):
    curves = torch.tensor([run["val_curve"] for run in models["lstm"]["runs"]])
    ax.plot(range(1, curves.shape[1] + 1), curves.mean(0), marker="o", label="LSTM")
    ax.axhline(models["ngram"]["val_ppl"], linestyle="--", color="gray", label=f"{models['ngram']['order']}-gram")
    print(level, [round(v, 2) for v in curves.mean(0).tolist()], round(models["ngram"]["val_ppl"], 2))
    ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["perplexity"], title=TEXT[level])
    ax.grid(True, alpha=0.3)
    ax.legend()
fig.suptitle(TEXT["curves_title"])
plt.show()
