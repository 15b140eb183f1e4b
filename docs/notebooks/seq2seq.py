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
# # 번역과 어텐션 실습 노트북 { #seq2seq-notebook }
#
# [번역과 어텐션](../seq2seq.md) 장의 Tatoeba 문장 쌍으로 작은 어텐션 모델을 몇 에포크 학습하고, 탐욕 디코딩과 빔 서치로 번역한 뒤 어텐션 가중치를 그립니다.
# 마지막으로 `benchmarks/translation.py`가 저장한 `benchmarks/results/translation.json`으로 원문 길이별 BLEU를 그립니다.
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
warnings.filterwarnings("ignore", message=".*(does not have many workers|LeafSpec|num_workers).*")

TEXT = {  # figure labels
    "korean": "한국어 (형태소)",
    "english": "영어 (단어)",
    "length": "문장 하나의 토큰 수",
    "pairs": "훈련 쌍 수",
    "source": "원문 형태소",
    "output": "출력 단어",
    "bucket": "원문 형태소 수",
    "bleu": "테스트 BLEU (시드 3개 평균 ± 표준편차)",
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import pytorch_lightning as pl

from lessons.datasets import TranslationData, load_tatoeba, tatoeba_tokens
from lessons.seq2seq import GRUSeq2Seq, Seq2SeqSystem, Vocabulary, translate

# %% [markdown]
# ## 문장 길이 { #lengths }
#
# 훈련 쌍의 한국어 형태소 수와 영어 단어 수입니다. 대부분 짧은 일상 문장이고, 한국어는 형태소로 나누어 영어보다 토큰이 많습니다.

# %%
data = TranslationData(limit=(800, 80, 80), batch_size=32)
tokens = tatoeba_tokens("morphemes")
fig, ax = plt.subplots(figsize=(7, 3.5))
for side, name in ((0, "korean"), (1, "english")):
    lengths = [len(tokens[i][side]) for i in data.indices["train"]]
    ax.hist(lengths, bins=range(0, 40), alpha=0.6, label=TEXT[name])
    print(f"{name}: mean {sum(lengths) / len(lengths):.1f}, longest {max(lengths)}")
ax.set(xlabel=TEXT["length"], ylabel=TEXT["pairs"])
ax.legend()
plt.show()

# %% [markdown]
# ## 작은 어텐션 모델 학습 { #training }
#
# 훈련 쌍 800개로 어텐션이 있는 `GRUSeq2Seq`를 4 에포크 학습합니다. 데이터도 에포크도 적으므로 번역은 서툽니다. 학습 손실이 줄어드는지와, 두 디코딩 방법이 무엇을 내는지만 봅니다.
# `val_bleu`는 torchmetrics가 돌려주는 0~1의 값입니다(페이지의 BLEU는 여기에 100을 곱한 값).

# %%
pl.seed_everything(0, verbose=False)
system = Seq2SeqSystem(GRUSeq2Seq(data.source_size, data.target_size, embedding_dim=32, hidden_size=64),
                       data.source_words, data.target_words, tokenizer="kiwi", lr=0.005)
logger = pl.loggers.CSVLogger("/tmp/seq2seq-notebook")
trainer = pl.Trainer(max_epochs=4, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, deterministic=True, log_every_n_steps=5)
trainer.fit(system, data)
print({k: round(float(v), 3) for k, v in trainer.callback_metrics.items()})

# %%
pairs = load_tatoeba()
for i in data.indices["test"][:5]:
    english, korean, _ = pairs[i]
    greedy, beam = (translate(system, [korean], beam=b)[0] for b in (1, 5))
    print(f"{korean} | {english} | greedy: {greedy} | beam: {beam}")

# %% [markdown]
# ## 어텐션 가중치 { #attention }
#
# 테스트 문장 하나를 탐욕 디코딩으로 번역하면서 매 시점의 어텐션 가중치를 모읍니다. 행은 출력 단어, 열은 원문 형태소입니다.

# %%
src, target = data.splits["test"][0]
ids, maps = system.model.eval().greedy(src.unsqueeze(0))
source_words, target_vocab = [data.source_words[i] for i in src.tolist()], Vocabulary(data.target_words)
fig, ax = plt.subplots(figsize=(5, 4))
ax.imshow(maps[0], cmap="Blues", vmin=0, vmax=1)
ax.set_xticks(range(len(source_words)), source_words, rotation=60)
ax.set_yticks(range(len(ids[0]) + 1), target_vocab.decode(ids[0]) + ["<eos>"])
ax.set(xlabel=TEXT["source"], ylabel=TEXT["output"])
plt.show()

# %% [markdown]
# ## 원문 길이별 BLEU { #buckets }
#
# 벤치마크(15 에포크, 시드 3개)의 두 모델이 원문 형태소 수에 따라 얻은 테스트 BLEU입니다.

# %%
results = json.loads(pathlib.Path("benchmarks/results/translation.json").read_text(encoding="utf-8"))
fig, ax = plt.subplots(figsize=(7, 4))
for k, (name, model) in enumerate(results["models"].items()):
    buckets = model["buckets"]
    ax.bar([j + 0.4 * k for j in range(len(buckets))], [b["mean"] for b in buckets.values()], width=0.4,
           yerr=[b["std"] for b in buckets.values()], capsize=3, label=name)
    print(name, {b: round(v["mean"], 1) for b, v in buckets.items()})
ax.set_xticks([j + 0.2 for j in range(len(buckets))], [f"{b} ({v['count']})" for b, v in buckets.items()])
ax.set(xlabel=TEXT["bucket"], ylabel=TEXT["bleu"])
ax.legend()
plt.show()
