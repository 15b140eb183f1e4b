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
# # LSTM 실습 노트북 { #lstm-notebook }
#
# [장단기 메모리(LSTM)](../lstm.md) 장의 결과를 그림으로 살펴봅니다.
# 곱셈 문제와 뉴스 분류의 곡선은 `benchmarks/` 스크립트가 만든 결과 파일에서 읽고,
# 게이트 그림은 이 노트북이 작은 LSTM을 직접 학습시켜 그립니다. 노트북은 사이트를 만들 때마다 처음부터 실행됩니다.
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
logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # no "GPU available" banner in the figures' cells
warnings.filterwarnings("ignore", message=".*LeafSpec.*|.*does not have many workers.*")

TEXT = {  # figure labels
    "epoch": "에포크",
    "ratio": "검증 MSE / 기준 모델 MSE (로그 축)",
    "mult_title": "곱셈 문제 (T = 100): 같은 설정의 네 모델, 시드 3개",
    "labels": {"RNN, Keras init": "RNN, Keras 초기화"},
    "target": "분산의 10%",
    "step": "시점 t",
    "unit": "은닉 유닛",
    "marker": "표시",
    "gates": {"i": "입력 게이트 (i)", "f": "망각 게이트 (f)", "o": "출력 게이트 (o)"},
    "gate_title": "학습된 LSTM의 게이트 (T = 20, 빨간 테두리: 표시된 시점)",
    "loss": "손실 (교차 엔트로피)",
    "train": "훈련 세트",
    "val": "검증 세트",
    "text_title": "BBC 뉴스 주제 분류: 손실 곡선",
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lessons.datasets import multiplication_problem, notes_split
from lessons.lstm import LSTM, LSTMSystem, ManyToOne

RESULTS = pathlib.Path("benchmarks/results")

# %% [markdown]
# ## 곱셈 문제의 학습 곡선 { #multiplication }
#
# `benchmarks/gated_multiplication.py`가 저장한 에포크별 검증 MSE를 기준 모델(정답의 평균만 답하는 모델)의 MSE로 나눠 그립니다.
# 1보다 작을수록 입력에서 무언가를 배운 것이고, 점선 아래가 이 장의 목표입니다.
# 선은 시드 3개의 평균, 색 띠는 시드 사이의 최솟값에서 최댓값까지입니다.

# %%
mult = json.loads((RESULTS / "gated-multiplication.json").read_text())
baseline = mult["baseline_val_mse"]
fig, ax = plt.subplots(figsize=(6.5, 4))
best = {}
for name, run in mult["models"].items():
    seeds = torch.tensor([s["val_mse"] for s in run["seeds"]]) / baseline  # (seeds, epochs)
    epochs = range(1, seeds.shape[1] + 1)
    line, = ax.semilogy(epochs, seeds.mean(0), label=TEXT["labels"].get(name, name))
    ax.fill_between(epochs, seeds.min(0).values, seeds.max(0).values, color=line.get_color(), alpha=0.2)
    best[name] = seeds.min(1).values  # each seed's best validation MSE / baseline
ax.axhline(0.1, color="k", linestyle="--", linewidth=1, label=TEXT["target"])
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["ratio"], title=TEXT["mult_title"])
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()
print({name: [round(v, 3) for v in seed_best.tolist()] for name, seed_best in best.items()})
assert best["LSTM"].max() < 0.1 and best["RNN"].min() > 0.9 and best["RNN, Keras init"].mean() > 0.8  # checked whenever the notebook runs

# %% [markdown]
# ## 게이트 시각화 { #gates }
#
# 100시점 학습은 몇 분이 걸리므로, 여기서는 20시점짜리 곱셈 문제로 작은 LSTM(은닉 유닛 16개, 한 층)을 몇 초 동안 학습시키고
# 검증 세트의 시퀀스 하나를 읽는 동안의 게이트 값을 그립니다. 빨간 테두리는 표시가 붙은 두 시점입니다.

# %%
x, y = multiplication_problem(count=3000, steps=20, seed=0)
(x_tr, y_tr), (x_va, y_va), _ = notes_split(x, y)
pl.seed_everything(0, verbose=False)
system = LSTMSystem(ManyToOne(LSTM(2, 16, batch_first=True), 1), task="regression", lr=0.01)
train = DataLoader(TensorDataset(x_tr, y_tr), batch_size=64, shuffle=True)
trainer = pl.Trainer(max_epochs=15, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, deterministic=True)
trainer.fit(system, train, DataLoader(TensorDataset(x_va, y_va), batch_size=512))
ratio = trainer.callback_metrics["val_mse"].item() / y_va.var().item()
print(f"validation MSE / variance: {ratio:.3f}")
assert ratio < 0.3

# the first validation sequence whose two marks are at least 8 steps apart
positions = x_va[:, :, 0].nonzero()[:, 1].view(-1, 2)  # (N, 2)
index = int(((positions[:, 1] - positions[:, 0]) >= 8).nonzero()[0])
sample = x_va[index : index + 1]  # (1, T, 2)
# run the trained cell step by step and keep its gates: i, f, o, each (T, H)
cell = system.model.rnn.cells[0]
state, trace = cell.initial_state(1, sample), {"i": [], "f": [], "o": []}
with torch.no_grad():
    for xp_t in cell.project(sample[0]).unsqueeze(1):  # T steps of (1, 4H)
        i, f, g, o = cell.gates(xp_t, state[0])
        for key, value in zip("ifo", (i, f, o)):
            trace[key].append(value[0])
        state = cell.recur(xp_t, state)
trace = {key: torch.stack(values) for key, values in trace.items()}
marks = positions[index].tolist()
fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), sharey=True, layout="constrained")
for ax, key in zip(axes, "ifo"):
    image = ax.imshow(trace[key].T, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for t in marks:
        ax.axvspan(t - 0.5, t + 0.5, fill=False, edgecolor="red", linewidth=1.5)
    ax.set(title=TEXT["gates"][key], xlabel=TEXT["step"])
axes[0].set_ylabel(TEXT["unit"])
fig.colorbar(image, ax=axes, shrink=0.9)
fig.suptitle(TEXT["gate_title"])
plt.show()
print("marked steps:", marks)

# %% [markdown]
# 표시가 붙은 두 시점에서 여러 유닛의 입력 게이트가 크게 열리거나 닫히고, 나머지 시점에는 비슷한 값에 머뭅니다.
# 모델은 표시된 값만 골라 셀 상태에 넣고, 그 사이의 값은 무시하는 법을 배웠습니다.

# %% [markdown]
# ## 뉴스 주제 분류의 손실 곡선 { #text-classification }
#
# `benchmarks/lstm_text.py`가 저장한 에포크별 손실입니다. 노트의 그림처럼 훈련 세트와 검증 세트의 손실을 함께 그립니다.

# %%
text = json.loads((RESULTS / "lstm-bbc-news.json").read_text())
history = text["history"]
epochs = range(1, len(history["train_loss"]) + 1)
fig, ax = plt.subplots(figsize=(6, 3.8))
ax.plot(epochs, history["train_loss"], marker=".", label=TEXT["train"])
ax.plot(epochs, history["val_loss"], marker=".", label=TEXT["val"])
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["loss"], title=TEXT["text_title"])
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()
print(f"test accuracy {text['test_acc']:.4f} (epoch {text['best_epoch']})")
assert text["test_acc"] > 3 * text["majority_test_acc"]
