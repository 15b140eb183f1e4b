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
# # 이미지 캡션 생성 실습 노트북 { #captioning-notebook }
#
# [이미지 캡션 생성](../captioning.md) 장의 숫자 띠를 직접 만들어 보고, `benchmarks/captioning.py`가 저장한
# `benchmarks/results/captioning.json`으로 두 모델의 에포크별 검증 완전 일치, 띠 길이별 완전 일치, 어텐션 가중치를 그립니다.
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
    "val_exact": "검증 완전 일치 (시드 3개 평균)",
    "digits": "띠의 숫자 수",
    "test_exact": "테스트 완전 일치",
    "plain": "CNN → LSTM",
    "attention": "CNN → LSTM + 어텐션",
    "truth": "정답",
    "column": "열 (4픽셀)",
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import torch

from lessons.captioning import DIGIT_WORDS, split_strips
from lessons.datasets import load_digit_images

# %% [markdown]
# ## 숫자 띠 { #strips }
#
# 손글씨 숫자 이미지를 먼저 훈련, 검증, 테스트로 나누고, 나뉜 이미지끼리 1~4개씩 이어 붙여 띠를 만듭니다. 캡션은 띠의 숫자를 읽은 것입니다.

# %%
images, labels = load_digit_images()
parts = split_strips(images, labels, counts=(8000, 1000, 1000), language=LANG, seed=0)
strips, y, captions = parts["train"]
print({split: len(part[0]) for split, part in parts.items()})
print(y[:3])
fig, axes = plt.subplots(3, 2, figsize=(7, 3.2))
for ax, strip, text in zip(axes.flat, strips, captions):
    ax.imshow(strip[0], cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(text, fontsize=9)
    ax.axis("off")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 에포크별 검증 완전 일치 { #curves }
#
# 벤치마크의 두 모델이 25 에포크 동안 보인 검증 완전 일치(시드 3개의 평균)입니다. 어텐션이 있는 모델이 얼마나 빨리 올라가는지 봅니다.

# %%
results = json.loads(pathlib.Path("benchmarks/results/captioning.json").read_text(encoding="utf-8"))
fig, ax = plt.subplots(figsize=(7, 4))
for name, model in results["models"].items():
    curve = model["val_curve_mean"]
    ax.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, label=TEXT[name])
    print(name, [round(v, 3) for v in curve[::4]])
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["val_exact"])
ax.grid(True, alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# ## 띠 길이별 완전 일치 { #by-length }
#
# 숫자가 많은 띠일수록 캡션이 길어서 틀릴 곳이 많습니다. 막대는 시드 3개의 평균, 선은 표준편차입니다.

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for k, (name, model) in enumerate(results["models"].items()):
    by = model["by_length"]
    xs = torch.arange(1, 5) + (k - 0.5) * 0.35
    ax.bar(xs, [by[n]["mean"] for n in "1234"], width=0.35, yerr=[by[n]["std"] for n in "1234"], capsize=3,
           label=TEXT[name])
ax.set(xlabel=TEXT["digits"], ylabel=TEXT["test_exact"], xticks=range(1, 5), ylim=(0.5, 1.0))
ax.legend()
plt.show()

# %% [markdown]
# ## 어텐션 가중치 { #attention }
#
# 어텐션 모델(시드 0)이 테스트 띠 여덟 개의 단어마다 여덟 열에 준 가중치입니다. 단어를 하나씩 쓸 때마다 보는 곳이 오른쪽으로 옮겨 가는지 봅니다.

# %%
samples = results["samples"]
fig, axes = plt.subplots(2, 4, figsize=(10, 4.6))
for ax, image, words, weights, truth in zip(axes.flat, samples["images"], samples["attention"], samples["weights"],
                                            samples["truth"]):
    ax.imshow(weights, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_yticks(range(len(weights)), [DIGIT_WORDS[LANG][d] for d in words] + ["<eos>"])
    ax.set_xlabel(TEXT["column"], fontsize=8)
    ax.set_title(TEXT["truth"] + ": " + " ".join(DIGIT_WORDS[LANG][d] for d in truth), fontsize=9)
fig.tight_layout()
plt.show()
print("columns looked at most:", [torch.tensor(w).argmax(-1).tolist() for w in samples["weights"]])
