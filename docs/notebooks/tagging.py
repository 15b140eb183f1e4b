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
# # 품사 태깅 실습 노트북 { #tagging-notebook }
#
# [품사 태깅](../tagging.md) 장의 결과를 그림으로 봅니다. `benchmarks/tagging.py`가 저장한
# `benchmarks/results/tagging.json`에서 모델별 정확도와 혼동 행렬(confusion matrix)을 읽습니다.
# 그림의 글자(`TEXT`)와 경고·로그 설정은 페이지에서 숨긴 설정 셀에 있고, 내려받은 노트북에는 그대로 들어 있습니다.

# %%
LANG = "ko"

# %% tags=["remove-cell"]
# Hidden on the page: figure labels in this notebook's language, Hangul in figures,
# and no Lightning banners or known harmless warnings in the output.
from lessons.plotting import use_hangul_font

use_hangul_font()  # lessons/plotting.py

TEXT = {  # figure labels
    "ko": "한국어 GSD", "en": "영어 EWT", "all": "전체 테스트 단어", "unseen": "미등록어",
    "accuracy": "테스트 정확도 (%)", "acc_title": "모델별 테스트 정확도 (시드 3개의 평균 ± 표준편차)",
    "gold": "정답 태그", "guess": "예측 태그", "cm_title": "양방향 LSTM + 문자의 혼동 행렬 (행마다 비율, 시드 0)",
    "names": {"baseline": "기준 모델", "lstm": "LSTM", "bilstm": "양방향", "bilstm_chars": "양방향 + 문자"},
}

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import torch


results = json.loads(pathlib.Path("benchmarks/results/tagging.json").read_text(encoding="utf-8"))
KINDS = ["baseline", "lstm", "bilstm", "bilstm_chars"]

# %% [markdown]
# ## 모델별 정확도 { #accuracy }
#
# 기준 모델과 세 신경망의 테스트 정확도입니다. 왼쪽 막대는 모든 테스트 단어, 오른쪽 막대는 훈련 문장에 없던 미등록어만 센 정확도입니다.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, layout="constrained")
for ax, language in zip(axes, ("ko", "en")):
    r = results[language]
    for k, (key, label) in enumerate((("test_acc", TEXT["all"]), ("unseen_acc", TEXT["unseen"]))):
        means = [100 * r["baseline"][key]] + [100 * r["models"][m][key]["mean"] for m in KINDS[1:]]
        stds = [0] + [100 * r["models"][m][key]["std"] for m in KINDS[1:]]
        ax.bar([i + 0.4 * k for i in range(4)], means, width=0.4, yerr=stds, capsize=3, label=label)
    ax.set_xticks([i + 0.2 for i in range(4)], [TEXT["names"][m] for m in KINDS], rotation=15)
    ax.set(title=TEXT[language], ylim=(0, 100))
    ax.grid(True, axis="y", alpha=0.3)
axes[0].set_ylabel(TEXT["accuracy"])
axes[0].legend(loc="lower right")
fig.suptitle(TEXT["acc_title"])
plt.show()
for language in ("ko", "en"):
    r = results[language]
    print(language, {m: round(100 * r["models"][m]["test_acc"]["mean"], 1) for m in KINDS[1:]},
          "baseline", round(100 * r["baseline"]["test_acc"], 1))

# %% [markdown]
# ## 혼동 행렬 { #confusion }
#
# 행은 정답 태그, 열은 예측 태그입니다. 행마다 비율로 바꾸었으므로 대각선이 그 태그의 정확도이고, 대각선 밖의 칸이 어떤 태그와 헷갈렸는지를 보여 줍니다.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 5.5), layout="constrained")
for ax, language in zip(axes, ("ko", "en")):
    r = results[language]
    counts = torch.tensor(r["models"]["bilstm_chars"]["confusion"], dtype=torch.float64)  # rows: true, columns: predicted
    keep = counts.sum(1) > 0
    shares = counts[keep][:, keep] / counts[keep].sum(1, keepdim=True)
    tags = [t for t, k in zip(r["tags"], keep.tolist()) if k]
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(tags)), tags, rotation=90)
    ax.set_yticks(range(len(tags)), tags)
    ax.set(title=TEXT[language], xlabel=TEXT["guess"], ylabel=TEXT["gold"])
    for i in range(len(tags)):
        for j in range(len(tags)):
            if shares[i, j] >= 0.05:
                ax.text(j, i, f"{shares[i, j]:.2f}".lstrip("0"), ha="center", va="center", fontsize=6,
                        color="white" if shares[i, j] > 0.5 else "black")
fig.suptitle(TEXT["cm_title"])
plt.show()
