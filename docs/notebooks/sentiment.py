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
# # 감성 분석 실습 노트북 { #sentiment-notebook }
#
# [감성 분석](../sentiment.md) 장의 리뷰 길이를 띄어쓰기 토큰과 형태소로 비교하고, 단어 주머니 모델이 배운 형태소별 가중치를 봅니다.
# 그다음 `benchmarks/sentiment.py`가 저장한 `benchmarks/results/sentiment.json`으로 에포크별 검증 정확도와 학습 곡선을 그립니다.
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
    "spaces": "띄어쓰기 토큰",
    "morphemes": "형태소",
    "length": "리뷰 하나의 토큰 수",
    "reviews": "훈련 리뷰 수",
    "epoch": "에포크",
    "val_acc": "검증 정확도 (시드 3개 평균)",
    "curves_title": "에포크별 검증 정확도",
    "test_acc": "테스트 정확도",
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch

from lessons.datasets import NSMCData, nsmc_split, nsmc_tokens
from lessons.sentiment import BagOfWords, SentimentSystem, classify

# %% [markdown]
# ## 리뷰 길이 { #lengths }
#
# 형태소로 나누면 어절 하나가 여러 토큰이 되므로 리뷰가 길어집니다. 순환 층이 읽는 시점 수가 늘어나는 대신, 같은 어간을 공유하게 됩니다.

# %%
train, val, test = nsmc_split()
fig, ax = plt.subplots(figsize=(7, 3.5))
for name in ("spaces", "morphemes"):
    tokens = nsmc_tokens(name)
    lengths = [len(tokens[i]) for i in train.tolist()]
    ax.hist(lengths, bins=range(0, 100, 2), alpha=0.6, label=TEXT[name])
    print(f"{name}: mean {sum(lengths) / len(lengths):.1f}, longest {max(lengths)}")
ax.set(xlabel=TEXT["length"], ylabel=TEXT["reviews"])
ax.legend()
plt.show()

# %% [markdown]
# ## 단어 주머니 모델의 가중치 { #weights }
#
# 훈련 리뷰 40,000개로 단어 주머니 모델을 1 에포크 학습하고, 가중치 $\beta_w$가 가장 큰(긍정 쪽) 형태소와 가장 작은(부정 쪽) 형태소를 봅니다.
# 훈련 세트에 10번 이상 나온 형태소만 봅니다.

# %%
data = NSMCData(batch_size=128, seed=0)
data.setup()
pl.seed_everything(0, verbose=False)
system = SentimentSystem(BagOfWords(len(data.words)), words=data.words, tokenizer="kiwi", lr=0.01)
trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, deterministic=True)
trainer.fit(system, data)
print(f"val_acc {float(trainer.callback_metrics['val_acc']):.3f}")
counts = torch.bincount(torch.cat([ids for ids, _ in data.splits["train"]]), minlength=len(data.words))
beta = system.model.beta.weight.detach().squeeze(1).masked_fill(counts < 10, float("nan"))
order = beta.nan_to_num(0).argsort()
print("+", [data.words[i] for i in order[-15:].flip(0).tolist()])
print("-", [data.words[i] for i in order[:15].tolist()])
print(classify(system, ["재미없지 않다", "노잼", "꿀잼"]))

# %% [markdown]
# ## 에포크별 검증 정확도 { #curves }
#
# 벤치마크의 다섯 모델이 3 에포크 동안 보인 검증 정확도(시드 3개의 평균)입니다.

# %%
results = json.loads(pathlib.Path("benchmarks/results/sentiment.json").read_text(encoding="utf-8"))
fig, ax = plt.subplots(figsize=(7, 4))
for name, model in results["models"].items():
    curves = torch.tensor([run["val_curve"] for run in model["runs"]])
    ax.plot(range(1, curves.shape[1] + 1), curves.mean(0), marker="o", label=name)
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["val_acc"], title=TEXT["curves_title"])
ax.grid(True, alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# ## 학습 곡선 { #learning-curve }
#
# 훈련 리뷰 수에 따른 테스트 정확도(시드 3개의 평균 ± 표준편차)입니다. 두 곡선이 만나는 곳이 순환 모델이 값을 하기 시작하는 곳입니다.

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for name, curve in results["learning_curve"].items():
    ax.errorbar(curve["sizes"], curve["test_mean"], yerr=curve["test_std"], marker="o", capsize=3, label=name)
    print(name, [f"{n}: {m:.3f}" for n, m in zip(curve["sizes"], curve["test_mean"])])
ax.set_xscale("log")
ax.set(xlabel=TEXT["reviews"], ylabel=TEXT["test_acc"])
ax.grid(True, alpha=0.3)
ax.legend()
plt.show()
