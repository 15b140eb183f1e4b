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
# # 양방향 순환 신경망 실습 노트북 { #bidirectional-notebook }
#
# [양방향 순환 신경망](../bidirectional.md) 장의 층이 위치마다 어떤 입력을 보는지 그림으로 확인하고,
# `benchmarks/forecasting.py`가 저장한 `benchmarks/results/forecast-curves.json`으로
# 앞 방향, 뒤 방향, 양방향 GRU의 기온 예측 곡선을 비교합니다.
# 그림의 글자(`TEXT`)와 경고·로그 설정은 페이지에서 숨긴 설정 셀에 있고, 내려받은 노트북에는 그대로 들어 있습니다.

# %%
LANG = "ko"

# %% tags=["remove-cell"]
# Hidden on the page: figure labels in this notebook's language, Hangul in figures,
# and no Lightning banners or known harmless warnings in the output.
from lessons.plotting import use_hangul_font

use_hangul_font()  # lessons/plotting.py

TEXT = {  # figure labels
    "forward": "앞 방향 절반",
    "backward": "뒤 방향 절반",
    "output": "출력 위치 t",
    "input": "입력 위치",
    "reach_title": "출력 h_t가 기울기를 받는 입력 (검은색)",
    "epoch": "에포크",
    "mae": "검증 MAE (°C)",
    "baseline": "상식 기준 모델",
    "curves_title": "읽는 방향과 검증 MAE",
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import torch

from torch import nn

from lessons.bidirectional import Bidirectional

# %% [markdown]
# ## 위치마다 보는 입력 { #reach }
#
# 길이 10인 시퀀스에서 출력 $h_t$의 앞 방향 절반과 뒤 방향 절반을 입력으로 미분해, 기울기가 0이 아닌 입력 위치를 검은색으로 칠합니다.
# 앞 방향은 아래 삼각형(자기 위치까지), 뒤 방향은 위 삼각형(자기 위치부터)이 됩니다.

# %%
torch.manual_seed(0)
T, H = 10, 4
layer = Bidirectional(nn.LSTM(3, H, batch_first=True), nn.LSTM(3, H, batch_first=True))
x = torch.randn(1, T, 3, requires_grad=True)
hs, _ = layer(x)
reach = torch.zeros(2, T, T)
for t in range(T):
    for d, part in enumerate((hs[0, t, :H], hs[0, t, H:])):
        grad, = torch.autograd.grad(part.sum(), x, retain_graph=True)
        reach[d, t] = (grad[0].abs().sum(-1) > 0).float()
fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
for ax, d, name in zip(axes, range(2), ("forward", "backward")):
    ax.imshow(reach[d], cmap="Greys", vmin=0, vmax=1)
    ax.set(title=TEXT[name], xlabel=TEXT["input"], ylabel=TEXT["output"])
fig.suptitle(TEXT["reach_title"])
plt.show()
assert torch.equal(reach[0], torch.ones(T, T).tril())
assert torch.equal(reach[1], torch.ones(T, T).triu())

# %% [markdown]
# ## 읽는 방향과 검증 MAE { #curves }
#
# 같은 창으로 30 에포크 동안 학습시킨 세 모델의 에포크별 검증 MAE입니다. 선은 시드 3개의 평균, 색 띠는 시드 사이의 최솟값에서 최댓값까지이고, 점선은 상식 기준 모델입니다.

# %%
curves = json.loads(pathlib.Path("benchmarks/results/forecast-curves.json").read_text())
names = ["gru", "gru_reversed", "bigru"]
fig, ax = plt.subplots(figsize=(7, 4))
for name in names:
    seeds = torch.tensor([run["history"]["val_mae"] for run in curves[name]["runs"]])  # (seeds, epochs)
    epochs = range(1, seeds.shape[1] + 1)
    line, = ax.plot(epochs, seeds.mean(0), label=curves[name]["label"])
    ax.fill_between(epochs, seeds.min(0).values, seeds.max(0).values, color=line.get_color(), alpha=0.2)
ax.axhline(curves["common_sense"]["val"], color="k", linestyle="--", linewidth=1, label=TEXT["baseline"])
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["mae"], title=TEXT["curves_title"])
ax.grid(True, alpha=0.3)
ax.legend()
plt.show()
for name in names:
    row = curves[name]
    print(f"{row['label']}: best val {row['val_mae_best']:.2f} ± {row['val_mae_best_std']:.2f}, "
          f"test {row['test_mae']:.2f} ± {row['test_mae_std']:.2f}")
gru, back = curves["gru"], curves["gru_reversed"]
assert back["val_mae_best"] - back["val_mae_best_std"] > gru["val_mae_best"] + gru["val_mae_best_std"]
