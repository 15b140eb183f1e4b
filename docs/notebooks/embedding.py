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
# # 임베딩 실습 노트북 { #embedding-notebook }
#
# [임베딩](../embedding.md) 장의 스킵그램을 한국어 말뭉치(kolaw, kobill)로 학습시키고, 손실 곡선과 단어 벡터를 그림으로 살펴봅니다.
# 이 노트북은 사이트를 만들 때마다 처음부터 실행되므로, 그림은 모두 지금 코드가 만든 결과입니다.
# 저장소 루트에서 `jupyter lab`으로 열거나, 위의 내려받기 버튼으로 받은 `.py` 파일을 jupytext로 열 수 있습니다.
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
    "loss": "훈련 손실 (쌍마다의 평균)",
    "loss_title": "스킵그램: 손실 곡선",
    "pc1": "주성분 1",
    "pc2": "주성분 2",
    "map_title": "단어 벡터의 2차원 투영 (PCA)",
    "groups": ["가족과 교육", "국가 기관", "권리"],
}

# %%
import csv
import tempfile

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from lessons.datasets import korean_corpus
from lessons.embedding import (SkipGramBatches, SkipGramNegativeSampling,
                               Word2VecSystem, encode_corpus)

torch.set_num_threads(1)  # small batches: one thread is faster

# %% [markdown]
# ## 스킵그램 학습과 손실 곡선 { #loss-curve }
#
# 장 본문과 같은 시드와 설정(50차원, 창 5, 잡음 단어 5개, 배치 2048)으로 스킵그램을 학습시키고,
# `CSVLogger`가 `metrics.csv`에 남긴 에포크별 훈련 손실을 그립니다.

# %%
corpus = korean_corpus()
words, counts, ids, sentence_ids = encode_corpus(corpus, min_count=3)
index = {w: i for i, w in enumerate(words)}
stream = SkipGramBatches(ids, sentence_ids, counts, window=5,
                         negatives=5, batch_size=2048, seed=0)
pl.seed_everything(0, verbose=False)
system = Word2VecSystem(SkipGramNegativeSampling(len(words), embedding_dim=50), lr=0.02)
trainer = pl.Trainer(max_epochs=5, logger=pl.loggers.CSVLogger(tempfile.mkdtemp()),
                     log_every_n_steps=1, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, deterministic=True)
trainer.fit(system, DataLoader(stream, batch_size=None))

with open(f"{trainer.logger.log_dir}/metrics.csv") as f:  # one row per epoch
    losses = [float(row["train_loss"]) for row in csv.DictReader(f)]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(range(1, len(losses) + 1), losses, marker="o")
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["loss"], title=TEXT["loss_title"])
ax.grid(True, alpha=0.3)
plt.show()
print(f"V = {len(words)}, first epoch {losses[0]:.3f}, last epoch {losses[-1]:.3f}")
assert losses[-1] < 0.7 * losses[0]  # checked whenever the notebook runs

# %% [markdown]
# ## 단어 벡터의 2차원 투영 { #projection }
#
# 50차원 벡터를 주성분 분석(PCA)으로 2차원에 투영하고, 세 무리의 단어에 한글 이름표를 붙입니다.
# 같은 무리의 단어가 가까이 모이면 벡터가 문맥의 비슷함을 담고 있다는 뜻입니다.
# 2차원 투영은 정보를 많이 잃으므로, 정확한 거리는 아래의 코사인 유사도로 확인합니다.

# %%
groups = [
    ["자녀", "양육", "초등학교", "나이", "취학", "육아"],
    ["대통령", "국회", "국무총리", "법원", "정부", "의원"],
    ["자유", "권리", "의무", "국민", "보장", "신체"],
]
assert all(w in index for group in groups for w in group)
W = F.normalize(system.vectors, dim=1)  # (V, D) unit rows
rows = torch.tensor([index[w] for group in groups for w in group])
centred = W[rows] - W[rows].mean(dim=0)  # PCA of the 18 words shown
_, _, basis = torch.linalg.svd(centred, full_matrices=False)
xy = centred @ basis[:2].T  # (18, 2)

fig, ax = plt.subplots(figsize=(6.5, 5))
for g, (group, name) in enumerate(zip(groups, TEXT["groups"])):
    points = xy[6 * g : 6 * g + 6]
    color = f"C{g}"
    ax.scatter(points[:, 0], points[:, 1], color=color, label=name)
    for word, (x, y) in zip(group, points.tolist()):
        ax.annotate(word, (x, y), textcoords="offset points", xytext=(4, 4))
ax.set(xlabel=TEXT["pc1"], ylabel=TEXT["pc2"], title=TEXT["map_title"])
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()

# %% [markdown]
# ## 무리 안과 밖의 코사인 유사도 { #similarities }
#
# 같은 무리 안의 단어 쌍과 서로 다른 무리 사이 쌍의 평균 코사인 유사도를 비교하고,
# 몇 단어의 가장 가까운 이웃을 출력합니다.

# %%
def mean_cosine(a, b):
    ia = torch.tensor([index[w] for w in a])
    ib = torch.tensor([index[w] for w in b])
    sims = W[ia] @ W[ib].T
    if a is b:  # leave out each word with itself
        sims = sims[~torch.eye(len(a), dtype=torch.bool)]
    return sims.mean().item()

within = sum(mean_cosine(g, g) for g in groups) / len(groups)
across = sum(mean_cosine(groups[i], groups[j])
             for i in range(3) for j in range(3) if i != j) / 6
print(f"within groups {within:.2f}, across groups {across:.2f}")
assert within > across

for word in ["자녀", "대통령", "자유"]:
    sims = W @ W[index[word]]  # cosine similarities with every word
    sims[index[word]] = -float("inf")
    top = sims.topk(5)
    print(word, "->", ", ".join(f"{words[i]} {s:.2f}"
                               for i, s in zip(top.indices.tolist(), top.values.tolist())))
