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
# # Lesson title: notebook { #topic-notebook }
#
# This notebook trains the model of the [Lesson title](../topic.md) chapter and looks at it in plots.
# It runs from scratch every time the site is built, so every figure comes from the current code.
# The figure labels (`TEXT`) and the warning and logging settings are in a setup cell this page hides; the downloaded notebook has it.
#
# Template note (delete this paragraph): copy to `docs/notebooks/<name>.en.py` together with the
# Korean notebook. The code cells of the two notebooks are identical except for the `LANG` line;
# the text in the figures is written in `TEXT`, in the hidden cell below (tag `remove-cell`), in this notebook's language:
# the only cell whose strings may differ between the languages.

# %%
LANG = "en"

# %% tags=["remove-cell"]
# Hidden on the page: figure labels in this notebook's language, Hangul in figures,
# and no Lightning banners or known harmless warnings in the output.
import logging

from lessons.plotting import use_hangul_font

use_hangul_font()  # lessons/plotting.py
logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)

TEXT = {  # figure labels
    "epoch": "epoch",
    "loss": "training loss",
    "loss_title": "Loss curve",
    "step": "time step t",
    "unit": "hidden unit",
    "state_title": "Hidden state h_t while reading one sequence",
}

# %%
import csv

import matplotlib.pyplot as plt
import pytorch_lightning as pl

from lessons.topic import TopicClassifier, TopicData, TopicModel, make_data

# %% [markdown]
# ## Loss curve { #loss-curve }
#
# Train with the same seed as the chapter, collecting the training loss after every epoch.

# %%
pl.seed_everything(0, verbose=False)
system = TopicClassifier(TopicModel(input_size=1, hidden_size=16, num_classes=2))
logger = pl.loggers.CSVLogger("build/notebook-logs", name="topic")  # one row of metrics per epoch
trainer = pl.Trainer(max_epochs=10, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, deterministic=True)
trainer.fit(system, datamodule=TopicData())
with open(f"{logger.log_dir}/metrics.csv") as f:
    history = [float(row["train_loss"]) for row in csv.DictReader(f) if row.get("train_loss")]

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.plot(range(1, len(history) + 1), history, marker="o")
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["loss"], title=TEXT["loss_title"])
plt.show()

# %% [markdown]
# ## Hidden state { #hidden-states }
#
# How each unit of the hidden state changes while the trained model reads one sequence.

# %%
x, y = make_data()
states = system.model.hidden_states(x[:1]).detach()[0]  # (T, H)

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
image = ax.imshow(states.T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
ax.set_xticks(range(x.shape[1]), [f"{v:+.0f}" for v in x[0, :, 0].tolist()])
ax.set(xlabel=TEXT["step"], ylabel=TEXT["unit"], title=TEXT["state_title"])
fig.colorbar(image, ax=ax)
plt.show()
