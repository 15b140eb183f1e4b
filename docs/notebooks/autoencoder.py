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
# # 시퀀스 오토인코더 실습 노트북 { #autoencoder-notebook }
#
# [시퀀스 오토인코더](../autoencoder.md) 장의 모델을 작게 학습해 테스트 창 하나와 그 복원을 그려 보고,
# `benchmarks/autoencoder.py`가 저장한 `benchmarks/results/autoencoder.json`으로 병목 크기별 검증 곡선과 가장 이상한 창의 관측값을 봅니다.
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
logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*(does not have many workers|LeafSpec).*")

TEXT = {  # figure labels
    "hour": "창 안의 시각 (시간)",
    "window": "창",
    "rebuilt": "복원",
    "epoch": "에포크",
    "val_mse": "검증 MSE (시드 3개 평균)",
    "score": "재구성 오차",
    "names": {
        "temp": "기온 (°C)",
        "dewp": "이슬점 (°C)",
        "humid": "습도 (%)",
        "wind_speed": "풍속 (m/s)",
        "precip": "강수량 (mm)",
        "visib": "시정 (km)",
    },
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lessons.autoencoder import AutoencoderSystem, SequenceAutoencoder
from lessons.datasets import AUTOENCODER_FEATURES, weather_autoencoder, weather_grid

# %% [markdown]
# ## 창 하나와 그 복원 { #one-window }
#
# 병목 크기 $k = 8$, 은닉 유닛 32개인 모델을 훈련 창의 4분의 1로 3 에포크만 학습합니다. 테스트 구간의 첫 창(11월 1일, EWR)을 실제 단위로 되돌려 복원과 함께 그립니다.
# 이렇게 짧게 학습한 모델은 창마다 대략적인 수준만 복원하고, 시간에 따른 변화와 강수량처럼 드물게 튀는 값은 거의 평평하게 복원합니다([연습 문제 4](../autoencoder.md#exercises)와 같은 결론입니다).

# %%
data = weather_autoencoder()
pl.seed_everything(0, verbose=False)
model = SequenceAutoencoder(nn.LSTM(6, 32, batch_first=True), nn.LSTM(8, 32, batch_first=True), features=6, bottleneck=8)
system = AutoencoderSystem(model, mean=data.mean.tolist(), std=data.std.tolist(), window=24,
                           features=list(AUTOENCODER_FEATURES), lr=3e-3)
trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, deterministic=True)
trainer.fit(system, DataLoader(TensorDataset(data.train[::4]), batch_size=128, shuffle=True),
            DataLoader(TensorDataset(data.val), batch_size=1024))
print(f"val_mse {float(trainer.callback_metrics['val_mse']):.3f}")
system.eval()
with torch.no_grad():
    rebuilt = system(data.test[:1]) * data.std + data.mean  # (1, 24, 6) in °C, %, m/s, mm, km
window = data.raw("test")[0]
fig, axes = plt.subplots(2, 3, figsize=(10, 5), sharex=True)
for d, (name, ax) in enumerate(zip(AUTOENCODER_FEATURES, axes.flat)):
    ax.plot(window[:, d], label=TEXT["window"])
    ax.plot(rebuilt[0, :, d], ls="--", label=TEXT["rebuilt"])
    ax.set_title(TEXT["names"][name], fontsize=10)
axes[0, 0].legend()
for ax in axes[1]:
    ax.set_xlabel(TEXT["hour"])
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 병목 크기별 검증 곡선 { #curves }
#
# 벤치마크의 LSTM 오토인코더가 에포크마다 보인 검증 MSE(시드 3개의 평균)입니다. $k$가 1, 2, 4, 8로 커질 때는 곡선이 뚜렷이 내려가지만, $k = 8, 16, 32$의 곡선은 거의 겹치고 10 에포크 끝까지 조금씩 내려갑니다.

# %%
results = json.loads(pathlib.Path("benchmarks/results/autoencoder.json").read_text(encoding="utf-8"))
fig, ax = plt.subplots(figsize=(7, 4))
for k, summary in results["lstm"].items():
    curves = torch.tensor([run["val_curve"] for run in summary["runs"]])
    ax.plot(range(1, curves.shape[1] + 1), curves.mean(0), marker="o", label=f"k = {k}")
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["val_mse"])
ax.set_yscale("log")
ax.grid(True, alpha=0.3)
ax.legend(ncol=3)
plt.show()

# %% [markdown]
# ## 가장 이상한 창의 관측값 { #strangest }
#
# 벤치마크가 찾은, 서로 겹치지 않는 가장 이상한 테스트 창 다섯 개입니다. 창(빨간 띠)과 그 앞뒤 하루의 기온, 풍속, 강수량, 시정을 원래 단위로 그립니다.

# %%
grid = weather_grid()
top = results["anomalies"]["top"]
fig, axes = plt.subplots(len(top), 4, figsize=(11, 2 * len(top)), sharex=True)
for row, found in zip(axes, top):
    s = grid.stations.index(found["station"])
    first = grid.hour(found["first"][:19])
    values = grid.values[s, first - 24:first + 48]  # the day before, the window, the day after
    for ax, name in zip(row, ("temp", "wind_speed", "precip", "visib")):
        ax.plot(range(-24, 48), values[:, ("temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib").index(name)])
        ax.axvspan(0, 23, color="red", alpha=0.15)
        ax.set_title(f"{found['station']} {found['first'][:13]}h · {TEXT['names'][name]}", fontsize=8)
    print(found["station"], found["first"], round(found["score"], 2))
for ax in axes[-1]:
    ax.set_xlabel(TEXT["hour"])
fig.tight_layout()
plt.show()
