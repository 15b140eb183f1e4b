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
# # Translation and attention notebook { #seq2seq-notebook }
#
# With the Tatoeba pairs of the [translation and attention](../seq2seq.md) lesson we train a small attention model for a few epochs, translate with greedy decoding and beam search, and draw the attention weights.
# Last, we plot BLEU by source length from `benchmarks/results/translation.json`, saved by `benchmarks/translation.py`.
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
warnings.filterwarnings("ignore", message=".*(does not have many workers|LeafSpec|num_workers).*")

TEXT = {  # figure labels
    "korean": "Korean (morphemes)",
    "english": "English (words)",
    "length": "tokens per sentence",
    "pairs": "training pairs",
    "source": "source morphemes",
    "output": "output words",
    "bucket": "source morphemes",
    "bleu": "test BLEU (mean ± std of 3 seeds)",
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import pytorch_lightning as pl

from lessons.datasets import TranslationData, load_tatoeba, tatoeba_tokens
from lessons.seq2seq import GRUSeq2Seq, Seq2SeqSystem, Vocabulary, translate

# %% [markdown]
# ## Sentence lengths { #lengths }
#
# Korean morphemes and English words per training pair. Most are short everyday sentences; cut into morphemes, Korean has more tokens than English.

# %%
data = TranslationData(limit=(800, 80, 80), batch_size=32)
tokens = tatoeba_tokens("morphemes")
fig, ax = plt.subplots(figsize=(7, 3.5))
for side, name in ((0, "korean"), (1, "english")):
    lengths = [len(tokens[i][side]) for i in data.indices["train"]]
    ax.hist(lengths, bins=range(0, 40), alpha=0.6, label=TEXT[name])
    print(f"{name}: mean {sum(lengths) / len(lengths):.1f}, longest {max(lengths)}")
ax.set(xlabel=TEXT["length"], ylabel=TEXT["pairs"])
ax.legend()
plt.show()

# %% [markdown]
# ## Training a small attention model { #training }
#
# A `GRUSeq2Seq` with attention, 4 epochs on 800 training pairs. With so little data and so few epochs the translations are poor; we only look at whether the training loss falls and at what the two decodings give.
# `val_bleu` is torchmetrics' value between 0 and 1 (the lesson's BLEU is 100 times it).

# %%
pl.seed_everything(0, verbose=False)
system = Seq2SeqSystem(GRUSeq2Seq(data.source_size, data.target_size, embedding_dim=32, hidden_size=64),
                       data.source_words, data.target_words, tokenizer="kiwi", lr=0.005)
logger = pl.loggers.CSVLogger("/tmp/seq2seq-notebook")
trainer = pl.Trainer(max_epochs=4, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, deterministic=True, log_every_n_steps=5)
trainer.fit(system, data)
print({k: round(float(v), 3) for k, v in trainer.callback_metrics.items()})

# %%
pairs = load_tatoeba()
for i in data.indices["test"][:5]:
    english, korean, _ = pairs[i]
    greedy, beam = (translate(system, [korean], beam=b)[0] for b in (1, 5))
    print(f"{korean} | {english} | greedy: {greedy} | beam: {beam}")

# %% [markdown]
# ## Attention weights { #attention }
#
# One test sentence translated greedily, with the attention weights of each step. Rows are output words, columns source morphemes.

# %%
src, target = data.splits["test"][0]
ids, maps = system.model.eval().greedy(src.unsqueeze(0))
source_words, target_vocab = [data.source_words[i] for i in src.tolist()], Vocabulary(data.target_words)
fig, ax = plt.subplots(figsize=(5, 4))
ax.imshow(maps[0], cmap="Blues", vmin=0, vmax=1)
ax.set_xticks(range(len(source_words)), source_words, rotation=60)
ax.set_yticks(range(len(ids[0]) + 1), target_vocab.decode(ids[0]) + ["<eos>"])
ax.set(xlabel=TEXT["source"], ylabel=TEXT["output"])
plt.show()

# %% [markdown]
# ## BLEU by source length { #buckets }
#
# The test BLEU of the benchmark's two models (15 epochs, 3 seeds) by the number of source morphemes.

# %%
results = json.loads(pathlib.Path("benchmarks/results/translation.json").read_text(encoding="utf-8"))
fig, ax = plt.subplots(figsize=(7, 4))
for k, (name, model) in enumerate(results["models"].items()):
    buckets = model["buckets"]
    ax.bar([j + 0.4 * k for j in range(len(buckets))], [b["mean"] for b in buckets.values()], width=0.4,
           yerr=[b["std"] for b in buckets.values()], capsize=3, label=name)
    print(name, {b: round(v["mean"], 1) for b, v in buckets.items()})
ax.set_xticks([j + 0.2 for j in range(len(buckets))], [f"{b} ({v['count']})" for b, v in buckets.items()])
ax.set(xlabel=TEXT["bucket"], ylabel=TEXT["bleu"])
ax.legend()
plt.show()
