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
# # 순환 드롭아웃 실습 노트북 { #recurrent-dropout-notebook }
#
# [순환 드롭아웃](../recurrent_dropout.md) 장의 마스크를 그림으로 보고, 기온 예측 모델의 에포크별 훈련·검증 곡선을 그립니다.
# 마스크 그림은 사이트를 만들 때마다 새로 계산합니다. 곡선은 `benchmarks/forecasting.py`가 끝까지 학습시키며 저장한
# `benchmarks/results/forecast-curves.json`을 읽어 그리므로, 장 본문의 결과 표와 같은 실행에서 나온 값입니다.
# 그림의 글자(`TEXT`)와 경고·로그 설정은 페이지에서 숨긴 설정 셀에 있고, 내려받은 노트북에는 그대로 들어 있습니다.

# %%
LANG = "ko"

# %% tags=["remove-cell"]
# Hidden on the page: figure labels in this notebook's language, Hangul in figures,
# and no Lightning banners or known harmless warnings in the output.
from lessons.plotting import use_hangul_font

use_hangul_font()  # lessons/plotting.py

TEXT = {  # figure labels
    "per_sequence": "시퀀스마다 한 번",
    "per_step": "시점마다 새로",
    "step": "시점 t",
    "feature": "입력 특성",
    "mask_title": "살아남은 입력 특성 (흰색 = 지움)",
    "epoch": "에포크",
    "mae": "MAE (°C)",
    "train": "훈련",
    "val": "검증",
    "baseline": "상식 기준 모델 (검증)",
    "best": "가장 좋은 에포크",
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import torch

from torch import nn

from lessons.recurrent_dropout import RecurrentDropout

# %% [markdown]
# ## 두 가지 마스크 { #masks }
#
# 같은 시퀀스 하나를 두 층에 넣고, 지워진 입력 특성이 받지 못한 기울기로 마스크를 읽어 냅니다.
# 시퀀스마다 한 번 뽑은 마스크는 가로 줄무늬가 되고(모든 시점에 같은 특성), 시점마다 새로 뽑은 마스크는 흩어진 점이 됩니다.

# %%
torch.manual_seed(0)
x = torch.randn(1, 40, 8)
fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
patterns = {}
for ax, per_step in zip(axes, (False, True)):
    layer = RecurrentDropout(nn.GRUCell(8, 16), dropout=0.5, batch_first=True, per_step=per_step)
    xg = x.clone().requires_grad_(True)
    layer(xg)[0].sum().backward()
    kept = (xg.grad[0] != 0).float()  # (T, D)
    patterns[per_step] = kept
    ax.imshow(kept.T, cmap="Greys_r", aspect="auto", vmin=0, vmax=1)
    ax.set(xlabel=TEXT["step"], title=TEXT["per_step" if per_step else "per_sequence"])
axes[0].set_ylabel(TEXT["feature"])
fig.suptitle(TEXT["mask_title"])
plt.show()
# once per sequence: every step keeps the same features; per step: not
assert torch.equal(patterns[False], patterns[False][:1].expand_as(patterns[False]))
assert not torch.equal(patterns[True], patterns[True][:1].expand_as(patterns[True]))

# %% [markdown]
# ## 훈련 곡선과 검증 곡선 { #curves }
#
# 드롭아웃이 없는 GRU, 시퀀스마다 마스크를 한 번 뽑은 GRU, 시점마다 새로 뽑은 GRU, 드롭아웃이 없는 LSTM과 있는 LSTM의 에포크별 MAE입니다.
# 모든 모델은 30 에포크를 시드 0, 1, 2로 학습했고, 세 시드의 곡선을 같은 색으로 모두 그립니다. 점은 시드마다 가중치를 남긴 가장 좋은 에포크입니다.
# 훈련 곡선은 드롭아웃이 켜진 상태에서 잰 값이므로, 드롭아웃이 있는 모델의 훈련 MAE는 검증 MAE보다 높게 나올 수 있습니다.

# %%
curves = json.loads(pathlib.Path("benchmarks/results/forecast-curves.json").read_text())
names = ["gru", "gru_dropout", "gru_dropout_per_step", "lstm_plain", "lstm_dropout"]
fig, axes = plt.subplots(1, len(names), figsize=(3.3 * len(names), 3.3), sharey=True)
for ax, name in zip(axes, names):
    row = curves[name]
    for i, run in enumerate(row["runs"]):  # one pair of curves per seed, the same colours
        epochs = range(1, len(run["history"]["train_mae"]) + 1)
        first = i == 0
        ax.plot(epochs, run["history"]["train_mae"], color="C0", alpha=0.6, label=TEXT["train"] if first else None)
        ax.plot(epochs, run["history"]["val_mae"], color="C1", alpha=0.6, label=TEXT["val"] if first else None)
        ax.plot(run["best_epoch"], run["val_mae_best"], "o", color="C1", label=TEXT["best"] if first else None)
    ax.axhline(curves["common_sense"]["val"], color="k", linestyle="--", linewidth=1, label=TEXT["baseline"])
    ax.set(xlabel=TEXT["epoch"], ylim=(0.5, 10.5))
    ax.set_title(row["label"], fontsize=8)
    ax.grid(True, alpha=0.3)
axes[0].set_ylabel(TEXT["mae"])
axes[0].legend(fontsize=7, loc="upper right")
fig.tight_layout()
plt.show()
for name in names:
    row = curves[name]
    print(f"{row['label']}: best val {row['val_mae_best']:.2f} ± {row['val_mae_best_std']:.2f} at epochs "
          f"{row['best_epochs']}, last val {row['val_mae_last']:.2f}, test {row['test_mae']:.2f} ± {row['test_mae_std']:.2f}")
assert all(len(r["history"]["val_mae"]) == curves[n]["epochs"] for n in names for r in curves[n]["runs"])
