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
# # RNN 실습 노트북 { #rnn-notebook }
#
# [순환 신경망(RNN)](../rnn.md) 장의 모델을 학습시키고 그림으로 살펴봅니다.
# 이 노트북은 사이트를 만들 때마다 처음부터 실행되므로, 그림은 모두 지금 코드가 만든 결과입니다.
# 저장소 루트에서 `jupyter lab`으로 열거나, 위의 내려받기 버튼으로 받은 `.py` 파일을 jupytext로 열 수 있습니다.
# 그림의 글자(`TEXT`)와 경고·로그 설정은 페이지에서 숨긴 설정 셀에 있고, 내려받은 노트북에는 그대로 들어 있습니다.

# %%
LANG = "ko"

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
    "epoch": "에포크",
    "loss": "훈련 손실 (MSE, 로그 축)",
    "loss_title": "다음 값 예측: 손실 곡선",
    "x": "입력의 마지막 값",
    "y": "예측한 다음 값",
    "pred_title": "학습 범위 안과 밖의 예측",
    "train": "훈련 데이터",
    "probe": "학습 범위 밖 입력",
    "ideal": "정답 (마지막 값 + 0.1)",
    "step": "시점 (입력 글자)",
    "unit": "은닉 유닛",
    "state_title": "'hello'를 만드는 동안의 은닉 상태",
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
# ## 다음 값 예측의 손실 곡선 { #loss-curve }
#
# 값 네 개로 다음 값을 맞히는 다대일 모델을 장 본문과 같은 시드와 설정으로 학습시키고,
# Lightning의 `CSVLogger`가 `metrics.csv`에 기록한 에포크별 훈련 손실을 그립니다.

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
# ## 학습 범위 안과 밖의 예측 { #predictions }
#
# 훈련 창 여섯 개와, 본문에서 검사한 학습 범위 밖의 두 입력을 함께 그립니다.
# 점이 점선에 가까울수록 정답에 가깝습니다.

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
# ## 'hello'를 만드는 동안의 은닉 상태 { #hidden-state }
#
# 글자 단위 모델이 "h"에서 시작해 "hello"를 만드는 동안 은닉 상태 8개 값이 어떻게 바뀌는지 봅니다.
# 두 l 시점의 은닉 상태가 서로 다르기 때문에 첫 l 다음에는 l을, 두 번째 l 다음에는 o를 고를 수 있습니다.

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
