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
# # 층 쌓기 실습 노트북 { #stacking-notebook }
#
# [층 쌓기](../stacking.md) 장의 모델을 비교합니다. `benchmarks/forecasting.py`가 끝까지 학습시키며 저장한
# `benchmarks/results/forecast-curves.json`으로 GRU 한 층과 쌓은 GRU의 에포크별 훈련·검증 곡선을 그리고 파라미터 수를 출력합니다.

# %%
LANG = "ko"

# %%
import json
import pathlib

import matplotlib.pyplot as plt

from lessons.plotting import use_hangul_font


use_hangul_font()  # Hangul in figures; a missing glyph fails the build (lessons/plotting.py)

TEXT = {
    "ko": {
        "epoch": "에포크",
        "mae": "MAE (°C)",
        "train": "훈련",
        "val": "검증",
        "baseline": "상식 기준 모델 (검증)",
    },
    "en": {
        "epoch": "epoch",
        "mae": "MAE (°C)",
        "train": "training",
        "val": "validation",
        "baseline": "common sense (validation)",
    },
}[LANG]

# %% [markdown]
# ## 훈련 곡선과 검증 곡선 { #curves }
#
# 드롭아웃이 없는 GRU 한 층과 있는 GRU 한 층, 드롭아웃이 있는 두 층의 에포크별 MAE입니다. 훈련 MAE는 드롭아웃이 켜진 상태에서 잰 값입니다.

# %%
curves = json.loads(pathlib.Path("benchmarks/results/forecast-curves.json").read_text())
names = ["gru", "gru_dropout", "stacked_gru"]
fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), sharey=True)
for ax, name in zip(axes, names):
    run = curves[name]
    epochs = range(1, len(run["history"]["train_mae"]) + 1)
    ax.plot(epochs, run["history"]["train_mae"], label=TEXT["train"])
    ax.plot(epochs, run["history"]["val_mae"], label=TEXT["val"])
    ax.axhline(curves["common_sense"]["val"], color="k", linestyle="--", linewidth=1, label=TEXT["baseline"])
    ax.set(title=run["label"], xlabel=TEXT["epoch"], ylim=(1.5, 9.0))
    ax.grid(True, alpha=0.3)
axes[0].set_ylabel(TEXT["mae"])
axes[0].legend()
plt.show()
for name in names:
    run = curves[name]
    print(f"{run['label']}: {run['parameters']} parameters, best val {run['val_mae_best']:.2f} "
          f"at epoch {run['best_epoch']}")
assert curves["stacked_gru"]["parameters"] > curves["gru_dropout"]["parameters"]
