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
# # 언어 모델 실습 노트북 { #language-model-notebook }
#
# [언어 모델](../language_model.md) 장의 장난감 모델로 온도가 다음 토큰의 분포를 어떻게 바꾸는지 그리고, 크네저-나이 n-그램의 차수를 바꾸며 퍼플렉서티를 잽니다.
# 마지막으로 `benchmarks/language_model.py`가 저장한 `benchmarks/results/language-model.json`으로 에포크별 검증 퍼플렉서티를 그립니다.
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
warnings.filterwarnings("ignore", message=".*(does not have many workers|LeafSpec|IterableDataset).*")

TEXT = {  # figure labels
    "probability": "다음 토큰의 확률",
    "temperature": "온도",
    "order": "n-그램 차수",
    "perplexity": "검증 퍼플렉서티",
    "epoch": "에포크",
    "curves_title": "에포크별 검증 퍼플렉서티 (시드 3개 평균)",
    "word": "형태소",
    "char": "글자",
}

# %%
import importlib.util
import json
import math
import pathlib

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from torch import nn

from lessons.datasets import nsmc_lm_reviews
from lessons.language_model import LanguageModel, LanguageModelSystem, StreamData, LMVocab, encode_prefix, encode_stream

# %% [markdown]
# ## 온도와 다음 토큰의 분포 { #temperature }
#
# 장난감 리뷰로 작은 LSTM을 학습하고, "이 영화 정말" 다음에 올 토큰의 분포를 세 온도에서 그립니다. 온도가 낮으면 가장 그럴듯한 토큰에 확률이 몰리고, 높으면 고르게 퍼집니다.

# %%
pl.seed_everything(0, verbose=False)
data = StreamData(batch_size=4, bptt=8)
system = LanguageModelSystem(LanguageModel(len(data.words), 16, nn.LSTM(16, 16, batch_first=True)),
                             words=data.words, tokenizer="spaces", lr=0.02)
trainer = pl.Trainer(max_epochs=25, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, deterministic=True)
trainer.fit(system, data)
system.eval()
with torch.no_grad():
    logits = system(torch.tensor([encode_prefix(system, "이 영화 정말")]))[0, -1]
top = logits.topk(6).indices
fig, ax = plt.subplots(figsize=(7, 3.5))
for i, tau in enumerate((0.5, 1.0, 2.0)):
    p = (logits / tau).softmax(-1)[top]
    ax.bar(torch.arange(6) + 0.27 * (i - 1), p, width=0.27, label=f"{TEXT['temperature']} {tau}")
ax.set_xticks(range(6), [data.words[i] for i in top.tolist()])
ax.set_ylabel(TEXT["probability"])
ax.legend()
plt.show()

# %% [markdown]
# ## n-그램의 차수 { #ngram-order }
#
# 훈련 리뷰 5,000개로 크네저-나이 n-그램을 차수 1부터 4까지 만들고, 검증 리뷰 1,000개의 퍼플렉서티를 잽니다. 차수를 올리면 문맥을 더 보지만, 리뷰 5,000개로는 긴 n-그램 대부분을 한 번도 보지 못합니다.

# %%
spec = importlib.util.spec_from_file_location("lm_benchmark", "benchmarks/language_model.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
train, val, _ = nsmc_lm_reviews("morphemes")
vocab = LMVocab.build(train[:5000], min_freq=2)
train_stream, val_stream = (encode_stream(part, vocab).tolist() for part in (train[:5000], val[:1000]))
orders, perplexities = [1, 2, 3, 4], []
for order in orders:
    logp = bench.KneserNey(order).fit(train_stream, len(vocab) - 1).log_probs(val_stream)
    perplexities.append(math.exp(-sum(logp) / len(logp)))
print([round(p, 1) for p in perplexities])
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(orders, perplexities, marker="o")
ax.set(xlabel=TEXT["order"], ylabel=TEXT["perplexity"], xticks=orders)
ax.grid(True, alpha=0.3)
plt.show()

# %% [markdown]
# ## 에포크별 검증 퍼플렉서티 { #curves }
#
# 벤치마크의 LSTM이 에포크마다 보인 검증 퍼플렉서티(시드 3개의 평균)와 n-그램의 검증 퍼플렉서티(점선)입니다. 형태소와 글자의 퍼플렉서티는 서로 비교할 수 없으므로 그림을 나눕니다.

# %%
results = json.loads(pathlib.Path("benchmarks/results/language-model.json").read_text(encoding="utf-8"))
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for ax, (level, models) in zip(axes, results["models"].items()):
    curves = torch.tensor([run["val_curve"] for run in models["lstm"]["runs"]])
    ax.plot(range(1, curves.shape[1] + 1), curves.mean(0), marker="o", label="LSTM")
    ax.axhline(models["ngram"]["val_ppl"], linestyle="--", color="gray", label=f"{models['ngram']['order']}-gram")
    print(level, [round(v, 2) for v in curves.mean(0).tolist()], round(models["ngram"]["val_ppl"], 2))
    ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["perplexity"], title=TEXT[level])
    ax.grid(True, alpha=0.3)
    ax.legend()
fig.suptitle(TEXT["curves_title"])
plt.show()
