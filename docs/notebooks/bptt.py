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
# # 시간 역전파 실습 노트북 { #bptt-notebook }
#
# [시간 역전파(BPTT)](../bptt.md) 장의 측정을 그림으로 봅니다. 거리에 따른 기울기 노름, 기울기 클리핑이 있을 때와 없을 때의 학습,
# 그리고 곱셈 문제의 학습 곡선입니다. 이 노트북은 사이트를 만들 때마다 처음부터 실행되므로, 그림은 모두 지금 코드가 만든 결과입니다.
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

logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # no "GPU available" banner in the output
warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix
warnings.filterwarnings("ignore", message=".*val_dataloader.*")  # the clipping runs have no validation set
warnings.filterwarnings("ignore", message=".*does not have many workers.*")  # small tensors in memory
use_hangul_font()  # lessons/plotting.py

TEXT = {  # figure labels
    "distance": "거리 k = T - t (시점)",
    "norm": "기울기 노름 (로그 축)",
    "small": "작은 입력 (0.001배)",
    "large": "보통 입력 (1배)",
    "radius": "스펙트럼 반지름",
    "step": "학습 단계",
    "grad": "클리핑 전 기울기 노름 (로그 축)",
    "clip_title": "SGD, 학습률 0.5",
    "no_clip": "클리핑 없음",
    "clip": "gradient_clip_val=0.1",
    "epoch": "에포크",
    "mse": "MSE",
    "train": "훈련",
    "val": "검증",
    "baseline": "기준 모델 (훈련 평균으로 답함)",
    "full_title": "노트 크기: 배치 32, 100 에포크",
    "fast_title": "빠른 실행: 배치 128, 4 에포크",
}

# %%
import csv
import json
import math
import pathlib
import tempfile

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from matplotlib.ticker import FuncFormatter, NullFormatter
from torch.utils.data import DataLoader, TensorDataset

from lessons.bptt import RNNRegressionSystem, RNNRegressor, norms_by_radius
from lessons.datasets import multiplication_problem, notes_split
from lessons.rnn import RNN

# (N, 30) matrices: one thread is faster than two (no synchronisation)
torch.set_num_threads(1)


def train(system, train_loader, val_loader=None, **options):
    """pl.Trainer with a CSVLogger; returns metrics.csv's rows (one per logged step or epoch)."""
    logger = pl.loggers.CSVLogger(tempfile.mkdtemp(), name="", version="")
    trainer = pl.Trainer(logger=logger, log_every_n_steps=1, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         deterministic=True, num_sanity_val_steps=0, **options)
    trainer.fit(system, train_loader, val_loader)
    with open(pathlib.Path(logger.log_dir) / "metrics.csv") as f:
        return list(csv.DictReader(f))


def column(rows, key):
    """Every value of one metric, in order."""
    return [float(r[key]) for r in rows if r.get(key)]


def stacked_rnn():
    """Two lessons.rnn.RNN layers (PyTorch's initialisation) and a linear output: 2851 parameters."""
    return RNNRegressor(RNN(2, 30, num_layers=2, batch_first=True))


def plain_log_ticks(ax):
    """Label a log axis 1e-4, 1e0, ... (NanumGothic has no math minus sign for 10^-4)."""
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"1e{math.log10(v):.0f}"))
    ax.yaxis.set_minor_formatter(NullFormatter())

# %% [markdown]
# ## 거리에 따른 기울기 노름 { #gradient-norms }
#
# 마지막 은닉 상태에만 건 손실이 $k$ 시점 앞의 은닉 상태에 주는 기울기의 크기를 세 가지 스펙트럼 반지름에 대해 그립니다.
# 로그 축에서 기하급수적인 변화는 직선이 됩니다. 왼쪽은 은닉 상태가 0 근처에 머무는 작은 입력, 오른쪽은 $\tanh$가 포화되는 보통 크기의 입력입니다.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for ax, scale, title in zip(axes, (1e-3, 1.0), (TEXT["small"], TEXT["large"])):
    norms = norms_by_radius(radii=(0.9, 1.0, 1.1), steps=50, input_scale=scale)
    for radius, n in norms.items():
        ax.semilogy(range(len(n)), n, label=f"{radius}")
    ax.set(xlabel=TEXT["distance"], title=title)
    plain_log_ticks(ax)
    ax.grid(True, alpha=0.3)
axes[0].set_ylabel(TEXT["norm"])
axes[0].legend(title=TEXT["radius"])
plt.show()

small = norms_by_radius(radii=(0.9, 1.0, 1.1), steps=50)
print({r: f"{n[-1].item():.3g}" for r, n in small.items()})
ratios = small[0.9][1:] / small[0.9][:-1]
assert ((ratios - 0.9).abs() < 1e-3).all()  # geometric: 0.9 per step back
assert (small[1.1][1:] > small[1.1][:-1]).all()  # grows with every step back

# %% [markdown]
# ## 기울기 클리핑 { #clipping }
#
# 곱셈 문제를 20시점으로 줄이고 큰 학습률의 SGD로 학습시키면서, 매 단계 클리핑 직전의 기울기 노름을 기록합니다.
# 클리핑이 없으면 노름이 단계마다 불어나 무한대에 이릅니다. `gradient_clip_val=0.1`이면 클리핑 전 노름도 유한하게 머물고, 점선(0.1)을 넘는 길이는 잘린 채 적용됩니다.

# %%
xm, ym = multiplication_problem(count=256, steps=20)
loader = DataLoader(TensorDataset(xm, ym), batch_size=32)
runs = {}
for clip in (None, 0.1):
    pl.seed_everything(0, verbose=False)
    system = RNNRegressionSystem(stacked_rnn(), lr=0.5, optimizer="sgd")
    rows = train(system, loader, max_epochs=3, gradient_clip_val=clip)
    runs[clip] = column(rows, "train_loss"), column(rows, "grad_norm")

fig, ax = plt.subplots(figsize=(6, 3.8))
for clip, label in ((None, TEXT["no_clip"]), (0.1, TEXT["clip"])):
    ax.semilogy(range(1, len(runs[clip][1]) + 1), runs[clip][1], label=label)
ax.axhline(0.1, color="k", linestyle=":", linewidth=1)
ax.set(xlabel=TEXT["step"], ylabel=TEXT["grad"], title=TEXT["clip_title"])
plain_log_ticks(ax)
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()
for clip, (losses, _) in runs.items():
    print(clip, [f"{v:.3g}" for v in losses])
assert not torch.isfinite(torch.tensor(runs[None][0][-1]))  # diverged
assert all(torch.isfinite(torch.tensor(runs[0.1][0])))  # stayed finite

# %% [markdown]
# ## 곱셈 문제: 노트 크기의 학습 곡선 { #multiplication-full }
#
# 노트와 같은 크기(배치 32, 100 에포크)의 학습은 사이트를 만들 때마다 돌리기에 길어서, `benchmarks/bptt_multiplication.py`가
# 저장한 에포크별 손실을 그립니다. 왼쪽은 PyTorch 초기화, 오른쪽은 Keras 초기화입니다.
# PyTorch 초기화에서는 검증 손실이 기준 모델보다 의미 있게 낮아지지 않고, Keras 초기화에서는 훈련 손실이 기준 모델 아래로 내려가지만 검증 손실은 끝에 기준 모델보다 높습니다. 모델이 규칙을 배우지 않고 훈련 세트에 맞춰진 것입니다.

# %%
full = json.loads(pathlib.Path("benchmarks/results/bptt-multiplication.json").read_text())
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for ax, (init, run) in zip(axes, full.items()):
    epochs = range(1, len(run["train_loss"]) + 1)
    ax.plot(epochs, run["train_loss"], label=TEXT["train"])
    ax.plot(epochs, run["val_loss"], label=TEXT["val"])
    ax.axhline(run["baseline_val"], color="k", linestyle="--", label=TEXT["baseline"])
    ax.set(xlabel=TEXT["epoch"], title=f"init={init!r}")
    ax.grid(True, alpha=0.3)
axes[0].set_ylabel(TEXT["mse"])
axes[0].legend()
fig.suptitle(TEXT["full_title"])
plt.show()
torch_run, keras_run = full["torch"], full["keras"]
for init, run in full.items():
    print(f"{init}: baseline {run['baseline_val']:.4f}, "
          f"best validation {min(run['val_loss']):.4f}, last {run['val_loss'][-1]:.4f}")
# torch init: never meaningfully better than answering the mean
assert min(torch_run["val_loss"]) > 0.95 * torch_run["baseline_val"]
# keras init: fits the training set (training loss below the baseline) but not the rule (validation above it), every seed
assert keras_run["train_loss"][-1] < keras_run["baseline_val"] < keras_run["val_loss"][-1]
assert all(s["last_train"] < 1 < s["last_val"] for s in keras_run["seeds"])

# %% [markdown]
# ## 곱셈 문제: 빠른 실행 { #multiplication-fast }
#
# 같은 생성기, 같은 분할, 같은 모델(PyTorch 초기화)을 배치 128로 4 에포크만 지금 학습시킵니다. 검증 손실은 기준 모델 근처에 머뭅니다.

# %%
x, y = multiplication_problem()
(x_tr, y_tr), (x_va, y_va), _ = notes_split(x, y)
baseline = ((y_va - y_tr.mean()) ** 2).mean().item()
pl.seed_everything(0, verbose=False)
system = RNNRegressionSystem(stacked_rnn())
shuffle = torch.Generator().manual_seed(0)
train_loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=128, shuffle=True,
                          generator=shuffle)
val_loader = DataLoader(TensorDataset(x_va, y_va), batch_size=512)
rows = train(system, train_loader, val_loader, max_epochs=4)
history = {key: column(rows, key) for key in ("train_loss", "val_loss")}

fig, ax = plt.subplots(figsize=(6, 3.8))
epochs = range(1, 5)
ax.plot(epochs, history["train_loss"], "o-", label=TEXT["train"])
ax.plot(epochs, history["val_loss"], "o-", label=TEXT["val"])
ax.axhline(baseline, color="k", linestyle="--", label=TEXT["baseline"])
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["mse"], title=TEXT["fast_title"])
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()
print(f"baseline {baseline:.4f}, validation",
      [round(v, 4) for v in history["val_loss"]])
assert min(history["val_loss"]) > 0.95 * baseline
