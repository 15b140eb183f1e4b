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
# # GRU 실습 노트북 { #gru-notebook }
#
# [게이트 순환 유닛(GRU)](../gru.md) 장의 결과를 그림으로 살펴봅니다.
# 곱셈 문제의 곡선은 `benchmarks/gated_multiplication.py`가 만든 결과 파일에서 읽고,
# 짧은 학습 곡선과 노트의 식과 PyTorch의 식의 차이는 이 노트북이 직접 계산합니다. 노트북은 사이트를 만들 때마다 처음부터 실행됩니다.
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

TEXT = {  # figure labels
    "epoch": "에포크",
    "ratio": "검증 MSE / 기준 모델 MSE (로그 축)",
    "mult_title": "곱셈 문제 (T = 100): 같은 설정의 네 모델, 시드 3개",
    "labels": {"RNN, Keras init": "RNN, Keras 초기화"},
    "target": "분산의 10%",
    "step": "시점 t",
    "diff": "PyTorch와 노트의 은닉 상태 차이 (최댓값)",
    "diff_title": "같은 가중치, 다른 후보 식: 두 GRU의 은닉 상태 차이",
    "mse_ratio": "MSE / 정답 분산",
    "train": "학습",
    "val": "검증",
    "short_title": "곱셈 문제 (T = 10): GRUSystem과 pl.Trainer, CSVLogger의 기록",
}

# %%
import csv
import json
import pathlib
import tempfile

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lessons.datasets import multiplication_problem
from lessons.gru import GRU, GRUCell, GRUSystem, ManyToOne, notes_gru_step

RESULTS = pathlib.Path("benchmarks/results")

# %% [markdown]
# ## 곱셈 문제의 학습 곡선 { #multiplication }
#
# LSTM 장과 같은 결과 파일입니다. 에포크별 검증 MSE를 기준 모델(정답의 평균만 답하는 모델)의 MSE로 나눠 그립니다.
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
assert best["GRU"].max() < 0.1 and best["RNN"].min() > 0.9 and best["RNN, Keras init"].mean() > 0.8  # checked whenever the notebook runs

# %% [markdown]
# ## Lightning으로 학습한 곡선 { #training-curve }
#
# 본문의 짧은 학습($T = 10$, 12에포크)을 `CSVLogger`와 함께 다시 돌리고, 로거가 남긴 `metrics.csv`에서 에포크별 MSE를 읽어 그립니다.

# %%
x, y = multiplication_problem(count=1200, steps=10)  # (N, T, D), (N, 1)
train = DataLoader(TensorDataset(x[:1000], y[:1000]), batch_size=50, shuffle=True)
val = DataLoader(TensorDataset(x[1000:], y[1000:]), batch_size=200)
pl.seed_everything(0, verbose=False)
system = GRUSystem(ManyToOne(GRU(2, 16, batch_first=True), 1), lr=0.01)
with tempfile.TemporaryDirectory() as logs:
    trainer = pl.Trainer(max_epochs=12, logger=pl.loggers.CSVLogger(logs), enable_checkpointing=False, log_every_n_steps=1,
                         enable_progress_bar=False, enable_model_summary=False, deterministic=True)
    trainer.fit(system, train, val)
    with open(pathlib.Path(trainer.logger.log_dir) / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
variance = y[1000:].var().item()
curves = {stage: [float(r[f"{stage}_mse"]) / variance for r in rows if r.get(f"{stage}_mse")] for stage in ("train", "val")}
fig, ax = plt.subplots(figsize=(6, 3.5))
for stage, ratio in curves.items():
    ax.plot(range(1, len(ratio) + 1), ratio, marker="o", label=TEXT[stage])
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["mse_ratio"], title=TEXT["short_title"])
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()
print(f"last validation MSE / variance {curves['val'][-1]:.3f}")
assert len(curves["val"]) == 12 and curves["val"][-1] < 0.2

# %% [markdown]
# ## 노트의 식과 PyTorch의 식 { #notes-variant }
#
# 같은 가중치의 셀 하나로 두 식을 50시점 동안 각각 돌리고, 시점마다 두 은닉 상태의 차이 가운데 가장 큰 값을 그립니다.
# 차이가 0이 아니므로 두 식은 다른 함수입니다.

# %%
torch.manual_seed(0)
cell = GRUCell(input_size=3, hidden_size=8).double()
x = torch.randn(50, 4, 3, dtype=torch.float64)  # (T, N, D)
h_torch = h_notes = torch.zeros(4, 8, dtype=torch.float64)
gaps = []
with torch.no_grad():
    for x_t in x:
        h_torch = cell(x_t, h_torch)
        h_notes = notes_gru_step(cell, x_t, h_notes)
        gaps.append((h_torch - h_notes).abs().max().item())

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(range(1, len(gaps) + 1), gaps)
ax.set(xlabel=TEXT["step"], ylabel=TEXT["diff"], title=TEXT["diff_title"])
ax.grid(True, alpha=0.3)
plt.show()
print(f"largest gap {max(gaps):.3f}")
assert max(gaps) > 0.01
