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
# # RNN notebook { #rnn-notebook }
#
# We train the models of the [recurrent neural networks (RNN)](../rnn.md) lesson and look at them in plots.
# The notebook runs from scratch every time the site is built, so every plot comes from the code as it is now.
# Open it with `jupyter lab` from the repository root, or download the `.py` file with the button above and open it with jupytext.
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
logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # no "GPU available" banner in the output
warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix
warnings.filterwarnings("ignore", message=".*val_dataloader.*")  # these examples have no validation set

TEXT = {  # figure labels
    "epoch": "epoch",
    "loss": "training loss (MSE, log scale)",
    "loss_title": "Next value: loss curve",
    "x": "last value of the input",
    "y": "predicted next value",
    "pred_title": "Inside and outside the training range",
    "train": "training data",
    "probe": "outside the training range",
    "ideal": "target (last value + 0.1)",
    "step": "time step (input character)",
    "unit": "hidden unit",
    "state_title": "Hidden state while writing 'hello'",
}

# %%
import csv
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lessons.datasets import char_sequence, sequence_windows
from lessons.rnn import RNN, ManyToMany, ManyToOne, RNNSystem

# %% [markdown]
# ## Loss curve of the next-value model { #loss-curve }
#
# We train the many-to-one model that predicts the next value from four, with the same seed and settings as the lesson,
# and plot the training loss per epoch that Lightning's `CSVLogger` wrote to `metrics.csv`.

# %%
x, y = sequence_windows()
pl.seed_everything(0, verbose=False)
system = RNNSystem(ManyToOne(RNN(1, 10, batch_first=True), 1), task="regression", lr=0.01)
with tempfile.TemporaryDirectory() as logs:  # the CSV log lives outside the repository
    logger = pl.loggers.CSVLogger(logs, name="next_value")
    trainer = pl.Trainer(max_epochs=300, logger=logger, log_every_n_steps=1, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, deterministic=True)
    trainer.fit(system, DataLoader(TensorDataset(x, y), batch_size=6))
    with open(Path(logger.log_dir) / "metrics.csv", newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["train_loss"]]  # one row per epoch
losses = [float(row["train_loss"]) for row in rows]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogy(range(1, len(losses) + 1), losses)
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["loss"], title=TEXT["loss_title"])
ax.grid(True, alpha=0.3)
plt.show()
print(f"first epoch {losses[0]:.4f}, last epoch {losses[-1]:.6f}")
assert losses[-1] < losses[0] / 1000  # checked whenever the notebook runs

# %% [markdown]
# ## Predictions inside and outside the training range { #predictions }
#
# The six training windows and the two inputs outside the training range that the lesson checks, in one plot.
# The closer a point is to the dashed line, the closer it is to the target.

# %%
probe = torch.tensor([[0.6, 0.7, 0.8, 0.9], [-0.1, 0.0, 0.1, 0.2]])
probe = probe.unsqueeze(-1)  # (2, 4, 1)
with torch.no_grad():
    train_pred = system(x).squeeze(-1)
    probe_pred = system(probe).squeeze(-1)

fig, ax = plt.subplots(figsize=(5, 4))
line = torch.linspace(-0.2, 1.0, 2)
ax.plot(line, line + 0.1, "k--", linewidth=1, label=TEXT["ideal"])
ax.scatter(x[:, -1, 0], train_pred, label=TEXT["train"])
ax.scatter(probe[:, -1, 0], probe_pred, marker="s", label=TEXT["probe"])
ax.set(xlabel=TEXT["x"], ylabel=TEXT["y"], title=TEXT["pred_title"])
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()
print([round(v, 2) for v in probe_pred.tolist()])
# the lesson's tolerance: one step of the series
assert ((probe_pred - torch.tensor([1.0, 0.3])).abs() < 0.1).all()

# %% [markdown]
# ## The hidden state while writing 'hello' { #hidden-state }
#
# How the 8 values of the hidden state change while the character model writes "hello" starting from "h".
# The hidden states at the two l's differ, which is how the model picks l after the first and o after the second.

# %%
vocab, xc, yc = char_sequence("hello")
V = len(vocab)
pl.seed_everything(0, verbose=False)
char_system = RNNSystem(ManyToMany(RNN(V, 8, batch_first=True), V), lr=0.05)
trainer = pl.Trainer(max_epochs=100, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, deterministic=True)
trainer.fit(char_system, DataLoader(TensorDataset(xc, yc), batch_size=1))

ids = vocab.encode("h")  # greedy generation: feed the text so far, append the likeliest next character
with torch.no_grad():
    for _ in range(4):
        logits = char_system(F.one_hot(torch.tensor([ids]), V).float())  # (1, t, V)
        ids.append(int(logits[0, -1].argmax()))
print(vocab.decode(ids))
assert vocab.decode(ids) == "hello"
with torch.no_grad():
    inputs = F.one_hot(torch.tensor([ids[:-1]]), V).float()
    hs, _ = char_system.model.rnn(inputs)  # (1, T, H) = (1, 4, 8)

fig, ax = plt.subplots(figsize=(5, 4))
image = ax.imshow(hs[0].T, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
steps = [f"{t}: {c}" for t, c in enumerate(vocab.decode(ids[:-1]), start=1)]
ax.set_xticks(range(len(steps)), steps)
ax.set(xlabel=TEXT["step"], ylabel=TEXT["unit"], title=TEXT["state_title"])
fig.colorbar(image, ax=ax, label="h")
plt.show()
