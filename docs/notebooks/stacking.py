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
# `benchmarks/results/forecast-curves.json`으로 GRU 한 층과 쌓은 GRU 두 가지의 에포크별 훈련·검증 곡선을 그리고 파라미터 수를 출력합니다.
# 그림의 글자(`TEXT`)와 경고·로그 설정은 페이지에서 숨긴 설정 셀에 있고, 내려받은 노트북에는 그대로 들어 있습니다.

# %%
LANG = "ko"

# %% tags=["remove-cell"]
# Hidden on the page: figure labels in this notebook's language, Hangul in figures,
# and no Lightning banners or known harmless warnings in the output.
from lessons.plotting import use_hangul_font

use_hangul_font()  # lessons/plotting.py

TEXT = {  # figure labels
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

# %% [markdown]
# ## 훈련 곡선과 검증 곡선 { #curves }
#
# 드롭아웃이 없는 GRU 한 층과 있는 GRU 한 층(0.2/0.2), 같은 드롭아웃의 두 층과 노트의 드롭아웃(0.1/0.5)을 쓴 두 층의 에포크별 MAE입니다. 훈련 MAE는 드롭아웃이 켜진 상태에서 잰 값입니다.
# 모든 모델은 30 에포크를 시드 0, 1, 2로 학습했고, 세 시드의 곡선을 같은 색으로 모두 그립니다. 점은 시드마다 가중치를 남긴 가장 좋은 에포크입니다.

# %%
curves = json.loads(pathlib.Path("benchmarks/results/forecast-curves.json").read_text())
names = ["gru", "gru_dropout", "stacked_gru_same", "stacked_gru"]
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
    print(f"{row['label']}: {row['parameters']:,} parameters, best val {row['val_mae_best']:.2f} ± "
          f"{row['val_mae_best_std']:.2f} at epochs {row['best_epochs']}, test {row['test_mae']:.2f} ± {row['test_mae_std']:.2f}")
assert all(len(r["history"]["val_mae"]) == curves[n]["epochs"] for n in names for r in curves[n]["runs"])
assert curves["stacked_gru"]["parameters"] == curves["stacked_gru_same"]["parameters"] > curves["gru_dropout"]["parameters"]
