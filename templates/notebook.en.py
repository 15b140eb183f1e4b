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
#
# Template note (delete this paragraph): copy to `docs/notebooks/<name>.en.py` together with the
# Korean notebook. The code cells of the two notebooks are identical except for the `LANG` line;
# the text in the figures is picked from `TEXT` below.

# %%
LANG = "en"

# %%
import logging

import matplotlib.pyplot as plt
import pytorch_lightning as pl

from lessons.plotting import use_hangul_font
from lessons.topic import make_data, train

use_hangul_font()  # Hangul in figures; a missing glyph fails the build (lessons/plotting.py)
logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)

TEXT = {
    "ko": {"epoch": "에포크", "loss": "훈련 손실", "loss_title": "손실 곡선",
           "step": "시점 t", "unit": "은닉 유닛", "state_title": "시퀀스 하나를 읽는 동안의 은닉 상태 h_t"},
    "en": {"epoch": "epoch", "loss": "training loss", "loss_title": "Loss curve",
           "step": "time step t", "unit": "hidden unit", "state_title": "Hidden state h_t while reading one sequence"},
}[LANG]

# %% [markdown]
# ## Loss curve { #loss-curve }
#
# Train with the same seed as the chapter, collecting the training loss after every epoch.


# %%
class EpochLoss(pl.Callback):
    """Collects the training loss at the end of every epoch."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.values.append(trainer.callback_metrics["train_loss"].item())


history = EpochLoss()
system, trainer = train(max_epochs=10, seed=0, callbacks=[history])

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.plot(range(1, len(history.values) + 1), history.values, marker="o")
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
