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
# # Embedding notebook { #embedding-notebook }
#
# We train the skip-gram of the [embeddings](../embedding.md) lesson on the Korean corpora (kolaw, kobill) and look at the loss curve and the word vectors.
# The notebook runs from scratch every time the site is built, so every plot comes from the code as it is now.
# Open it with `jupyter lab` from the repository root, or download the `.py` file with the button above and open it with jupytext.
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
    "loss": "training loss (mean per pair)",
    "loss_title": "Skip-gram: loss curve",
    "pc1": "principal component 1",
    "pc2": "principal component 2",
    "map_title": "Word vectors projected to 2-D (PCA)",
    "groups": ["family and school", "state bodies", "rights"],
}

# %%
import csv
import tempfile

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from lessons.datasets import korean_corpus
from lessons.embedding import (SkipGramBatches, SkipGramNegativeSampling,
                               Word2VecSystem, encode_corpus)

torch.set_num_threads(1)  # small batches: one thread is faster

# %% [markdown]
# ## Skip-gram training and its loss curve { #loss-curve }
#
# We train skip-gram with the lesson's seed and settings (50 dimensions, window 5, 5 noise words, batch 2048)
# and plot the training loss per epoch that `CSVLogger` wrote to `metrics.csv`.

# %%
corpus = korean_corpus()
words, counts, ids, sentence_ids = encode_corpus(corpus, min_count=3)
index = {w: i for i, w in enumerate(words)}
stream = SkipGramBatches(ids, sentence_ids, counts, window=5,
                         negatives=5, batch_size=2048, seed=0)
pl.seed_everything(0, verbose=False)
system = Word2VecSystem(SkipGramNegativeSampling(len(words), embedding_dim=50), lr=0.02)
trainer = pl.Trainer(max_epochs=5, logger=pl.loggers.CSVLogger(tempfile.mkdtemp()),
                     log_every_n_steps=1, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, deterministic=True)
trainer.fit(system, DataLoader(stream, batch_size=None))

with open(f"{trainer.logger.log_dir}/metrics.csv") as f:  # one row per epoch
    losses = [float(row["train_loss"]) for row in csv.DictReader(f)]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(range(1, len(losses) + 1), losses, marker="o")
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["loss"], title=TEXT["loss_title"])
ax.grid(True, alpha=0.3)
plt.show()
print(f"V = {len(words)}, first epoch {losses[0]:.3f}, last epoch {losses[-1]:.3f}")
assert losses[-1] < 0.7 * losses[0]  # checked whenever the notebook runs

# %% [markdown]
# ## The word vectors in two dimensions { #projection }
#
# The 50-dimensional vectors are projected to two dimensions by principal component analysis (PCA), and three groups of words get Hangul labels.
# Words of one group gathering together means the vectors capture similar contexts.
# A 2-D projection loses much information, so the cosine similarities below check the actual distances.

# %%
groups = [
    ["자녀", "양육", "초등학교", "나이", "취학", "육아"],
    ["대통령", "국회", "국무총리", "법원", "정부", "의원"],
    ["자유", "권리", "의무", "국민", "보장", "신체"],
]
assert all(w in index for group in groups for w in group)
W = F.normalize(system.vectors, dim=1)  # (V, D) unit rows
rows = torch.tensor([index[w] for group in groups for w in group])
centred = W[rows] - W[rows].mean(dim=0)  # PCA of the 18 words shown
_, _, basis = torch.linalg.svd(centred, full_matrices=False)
xy = centred @ basis[:2].T  # (18, 2)

fig, ax = plt.subplots(figsize=(6.5, 5))
for g, (group, name) in enumerate(zip(groups, TEXT["groups"])):
    points = xy[6 * g : 6 * g + 6]
    color = f"C{g}"
    ax.scatter(points[:, 0], points[:, 1], color=color, label=name)
    for word, (x, y) in zip(group, points.tolist()):
        ax.annotate(word, (x, y), textcoords="offset points", xytext=(4, 4))
ax.set(xlabel=TEXT["pc1"], ylabel=TEXT["pc2"], title=TEXT["map_title"])
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()

# %% [markdown]
# ## Cosine similarity within and across groups { #similarities }
#
# We compare the mean cosine similarity of word pairs within a group with that of pairs across groups,
# and print the nearest neighbours of a few words.

# %%
def mean_cosine(a, b):
    ia = torch.tensor([index[w] for w in a])
    ib = torch.tensor([index[w] for w in b])
    sims = W[ia] @ W[ib].T
    if a is b:  # leave out each word with itself
        sims = sims[~torch.eye(len(a), dtype=torch.bool)]
    return sims.mean().item()

within = sum(mean_cosine(g, g) for g in groups) / len(groups)
across = sum(mean_cosine(groups[i], groups[j])
             for i in range(3) for j in range(3) if i != j) / 6
print(f"within groups {within:.2f}, across groups {across:.2f}")
assert within > across

for word in ["자녀", "대통령", "자유"]:
    sims = W @ W[index[word]]  # cosine similarities with every word
    sims[index[word]] = -float("inf")
    top = sims.topk(5)
    print(word, "->", ", ".join(f"{words[i]} {s:.2f}"
                               for i, s in zip(top.indices.tolist(), top.values.tolist())))
