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
# # 1D 합성곱 실습 노트북 { #conv1d-notebook }
#
# [1D 합성곱](../conv1d.md) 장의 내용을 그림으로 확인합니다. 옮겨 간 패턴에 대한 특성 맵, 벤치마크 스크립트가 저장한 속도 측정,
# 층을 쌓는 세 방법의 수용 영역, 그리고 기온 예측과 뉴스 분류의 에포크별 곡선입니다.
# 그림의 글자(`TEXT`)와 경고·로그 설정은 페이지에서 숨긴 설정 셀에 있고, 내려받은 노트북에는 그대로 들어 있습니다.

# %%
LANG = "ko"

# %% tags=["remove-cell"]
# Hidden on the page: figure labels in this notebook's language, Hangul in figures,
# and no Lightning banners or known harmless warnings in the output.
from lessons.plotting import use_hangul_font

use_hangul_font()  # lessons/plotting.py

TEXT = {  # figure labels
    "step": "시점",
    "feature": "특성 맵 (채널 0)",
    "early": "패턴이 5번째 시점에",
    "late": "패턴이 45번째 시점에",
    "T": "시퀀스 길이 T",
    "ms": "학습 한 단계 (ms)",
    "layers": "층 수",
    "field": "수용 영역 (시점)",
    "plain3": "k = 3, 쌓기만",
    "plain7": "k = 7, 쌓기만",
    "dilated": "k = 3, 팽창 1, 2, 4, …",
    "epoch": "에포크",
    "mae": "검증 MAE (°C)",
    "baseline": "상식 기준 모델",
    "acc": "검증 정확도",
    "words": "단어",
    "global max": "전역 최대",
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator

from lessons.conv1d import Conv1d, receptive_field

# %% [markdown]
# ## 옮겨 간 패턴 { #translation-invariance }
#
# 본문과 같은 합성곱 층에 같은 패턴을 5번째 시점과 45번째 시점에 넣습니다. 특성 맵은 모양이 같고 40시점 옮겨 갔을 뿐이므로,
# 전역 최대 풀링의 값(점선)은 두 입력에서 같습니다.

# %%
torch.manual_seed(0)
conv = Conv1d(in_channels=1, out_channels=4, kernel_size=3).double()


def placed(t, T=50):
    x = torch.zeros(1, T, 1, dtype=torch.float64)
    x[0, t:t + 3, 0] = torch.tensor([1.0, -1.0, 2.0])
    return x


with torch.no_grad():
    maps = {key: conv(placed(t).transpose(1, 2))[0, 0] for key, t in (("early", 5), ("late", 45))}  # (N, D, T) in
fig, ax = plt.subplots(figsize=(8, 3))
for key, y in maps.items():
    ax.plot(y, marker=".", label=TEXT[key])
ax.axhline(float(maps["early"].max()), color="k", linestyle=":", linewidth=1)
ax.set(xlabel=TEXT["step"], ylabel=TEXT["feature"])
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()
assert float(maps["early"].max()) == float(maps["late"].max())

# %% [markdown]
# ## 속도 { #speed }
#
# `benchmarks/conv_speed.py`가 저장한 `benchmarks/results/conv-speed.json`의 중앙값입니다. 두 축 모두 로그 눈금입니다.
# 두 종류 모두 시간이 $T$에 거의 비례해 늘고, 이 표를 만든 CPU에서는 비정규 수를 그대로 둔 LSTM(subnormals kept)도 다른 LSTM과 같은 속도입니다.

# %%
speed = json.loads(pathlib.Path("benchmarks/results/conv-speed.json").read_text())
fig, ax = plt.subplots(figsize=(6, 4))
for key, label in speed["labels"].items():
    ax.plot(speed["Ts"], [row["median_ms"][key] for row in speed["rows"]], marker="o", label=label)
ax.set(xscale="log", yscale="log", xlabel=TEXT["T"], ylabel=TEXT["ms"])
ax.legend()
ax.grid(True, which="both", alpha=0.3)
plt.show()
for row in speed["rows"]:
    print(f"T = {row['T']:5d}: LSTM / Conv1d = {row['ratio']['lstm/conv']:5.1f}x, "
          f"LSTM / nn.Conv1d = {row['ratio']['lstm/conv_torch']:5.1f}x")

# %% [markdown]
# ## 수용 영역 { #receptive-field }
#
# 층을 쌓기만 하면 수용 영역이 층마다 $k - 1$씩 늘고, 팽창을 두 배씩 늘리면 층 수에 대해 지수적으로 늘어납니다.

# %%
layers = list(range(1, 11))
fields = {
    "plain3": [receptive_field([(3, 1, 1)] * L) for L in layers],
    "plain7": [receptive_field([(7, 1, 1)] * L) for L in layers],
    "dilated": [receptive_field([(3, 1, 2 ** l) for l in range(L)]) for L in layers],
}
fig, ax = plt.subplots(figsize=(6, 4))
for key, values in fields.items():
    ax.plot(layers, values, marker="o", label=TEXT[key])
ax.set(yscale="log", xlabel=TEXT["layers"], ylabel=TEXT["field"])
ax.legend()
ax.grid(True, which="both", alpha=0.3)
plt.show()
assert fields["dilated"][-1] == 2 ** 11 - 1 and fields["plain3"][-1] == 21

# %% [markdown]
# ## 기온 예측 { #forecasting }
#
# `benchmarks/forecasting.py`가 저장한 에포크별 검증 MAE입니다. 선은 시드 3개의 평균, 색 띠는 시드 사이의 최솟값에서 최댓값까지입니다. 합성곱 모델은 세 시드 모두 훈련 내내 상식 기준 모델보다 위에 있습니다.

# %%
curves = json.loads(pathlib.Path("benchmarks/results/forecast-curves.json").read_text())
fig, ax = plt.subplots(figsize=(7, 4))
for name in ("lstm_plain", "conv", "cnn_lstm"):
    seeds = torch.tensor([run["history"]["val_mae"] for run in curves[name]["runs"]])  # (seeds, epochs)
    epochs = range(1, seeds.shape[1] + 1)
    line, = ax.plot(epochs, seeds.mean(0), marker=".", label=curves[name]["label"])
    ax.fill_between(epochs, seeds.min(0).values, seeds.max(0).values, color=line.get_color(), alpha=0.2)
ax.axhline(curves["common_sense"]["val"], color="k", linestyle="--", linewidth=1, label=TEXT["baseline"])
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["mae"])
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.legend(fontsize=8)
ax.grid(True, alpha=0.3)
plt.show()
assert all(min(run["history"]["val_mae"]) > curves["common_sense"]["val"] for run in curves["conv"]["runs"])

# %% [markdown]
# ## 뉴스 분류 { #text-classification }
#
# `benchmarks/conv_text.py`가 저장한 BBC 뉴스의 에포크별 검증 정확도입니다. 왼쪽은 기사의 처음 100단어, 오른쪽은 400단어를 읽은 결과입니다.
# 선은 시드 3개의 평균, 색 띠는 시드 사이의 최솟값에서 최댓값까지입니다. LSTM은 두 길이 모두 띠가 가장 넓어, 시드에 따라 가장 크게 흔들립니다.

# %%
text = json.loads(pathlib.Path("benchmarks/results/conv-text.json").read_text())
fig, axes = plt.subplots(1, len(text["runs"]), figsize=(11, 3.5), sharey=True)
width = {}
for ax, (T, runs) in zip(axes, text["runs"].items()):
    for kind, row in runs.items():
        seeds = torch.tensor([run["history"]["val_acc"] for run in row["runs"]])  # (seeds, epochs)
        epochs = range(1, seeds.shape[1] + 1)
        label = row["label"].replace("global max", TEXT["global max"])
        line, = ax.plot(epochs, seeds.mean(0), marker=".", label=label)
        ax.fill_between(epochs, seeds.min(0).values, seeds.max(0).values, color=line.get_color(), alpha=0.2)
        width[T, kind] = (seeds.max(0).values - seeds.min(0).values).mean().item()  # the band's mean width
    ax.set(title=f"T = {T} {TEXT['words']}", xlabel=TEXT["epoch"])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
axes[0].set_ylabel(TEXT["acc"])
axes[0].legend(fontsize=8)
plt.show()
assert all(max(runs, key=lambda kind: width[T, kind]) == "lstm" for T, runs in text["runs"].items())
for T, runs in text["runs"].items():
    for kind, row in runs.items():
        print(f"T = {T}, {kind:6s}: test accuracy {row['test_acc']:.3f} ± {row['test_acc_std']:.3f} "
              f"over seeds {text['seeds']}, best epochs {row['best_epochs']}, {row['seconds_per_epoch']:.1f} s/epoch")
