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
# # 레슨 제목: 실습 노트북 { #topic-notebook }
#
# [레슨 제목](../topic.md) 장의 모델을 학습시키고 그림으로 살펴봅니다.
# 이 노트북은 사이트를 만들 때마다 처음부터 실행되므로 그림은 모두 지금 코드가 만든 결과입니다.
# 그림의 글자(`TEXT`)와 경고·로그 설정은 페이지에서 숨긴 설정 셀에 있고, 내려받은 노트북에는 그대로 들어 있습니다.
#
# 템플릿 안내(이 문단은 지웁니다): `docs/notebooks/<이름>.py`로 복사하고 영어 노트북도 함께 복사합니다.
# 두 노트북의 코드 셀은 `LANG` 줄 하나만 빼고 같아야 합니다. 그림의 글은 아래 숨은 셀(`remove-cell`)의 `TEXT`에 이 노트북의
# 언어로 적습니다. 두 언어의 문자열 내용이 달라도 되는 곳은 이 셀뿐입니다.

# %%
LANG = "ko"

# %% tags=["remove-cell"]
# Hidden on the page: figure labels in this notebook's language, Hangul in figures,
# and no Lightning banners or known harmless warnings in the output.
import logging

from lessons.plotting import use_hangul_font

use_hangul_font()  # lessons/plotting.py
logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)

TEXT = {  # figure labels
    "epoch": "에포크",
    "loss": "훈련 손실",
    "loss_title": "손실 곡선",
    "step": "시점 t",
    "unit": "은닉 유닛",
    "state_title": "시퀀스 하나를 읽는 동안의 은닉 상태 h_t",
}

# %%
import csv

import matplotlib.pyplot as plt
import pytorch_lightning as pl

from lessons.topic import TopicClassifier, TopicData, TopicModel, make_data

# %% [markdown]
# ## 손실 곡선 { #loss-curve }
#
# 장 본문과 같은 시드로 학습시키면서 에포크마다 훈련 손실을 모아 그립니다.

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
# ## 은닉 상태 { #hidden-states }
#
# 학습한 모델이 시퀀스 하나를 읽는 동안 은닉 상태의 각 유닛이 어떻게 변하는지 봅니다.

# %%
x, y = make_data()
states = system.model.hidden_states(x[:1]).detach()[0]  # (T, H)

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
image = ax.imshow(states.T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
ax.set_xticks(range(x.shape[1]), [f"{v:+.0f}" for v in x[0, :, 0].tolist()])
ax.set(xlabel=TEXT["step"], ylabel=TEXT["unit"], title=TEXT["state_title"])
fig.colorbar(image, ax=ax)
plt.show()
