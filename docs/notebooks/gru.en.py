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
# # GRU notebook { #gru-notebook }
#
# Plots for the [gated recurrent unit (GRU)](../gru.md) lesson.
# The multiplication-problem curves are read from the results file of `benchmarks/gated_multiplication.py`;
# the difference between the notes' equation and PyTorch's is computed here. The notebook runs from scratch at every site build.

# %%
LANG = "en"

# %%
import json
import pathlib

import matplotlib.pyplot as plt
import torch

from lessons.gru import GRUCell, notes_gru_step
from lessons.plotting import use_hangul_font

use_hangul_font()  # Hangul in figures; a missing glyph fails the build (lessons/plotting.py)
RESULTS = pathlib.Path("benchmarks/results")

TEXT = {
    "ko": {
        "epoch": "에포크",
        "ratio": "검증 MSE / 기준 모델 MSE (로그 축)",
        "mult_title": "곱셈 문제 (T = 100): 같은 설정의 세 모델",
        "target": "분산의 10%",
        "step": "시점 t",
        "diff": "PyTorch와 노트의 은닉 상태 차이 (최댓값)",
        "diff_title": "같은 가중치, 다른 후보 식: 두 GRU의 은닉 상태 차이",
    },
    "en": {
        "epoch": "epoch",
        "ratio": "validation MSE / baseline MSE (log scale)",
        "mult_title": "Multiplication problem (T = 100): three models, same settings",
        "target": "10% of the variance",
        "step": "time step $t$",
        "diff": "largest $|h_t^{PyTorch} - h_t^{notes}|$",
        "diff_title": "Same weights, different candidate: hidden states of the two GRUs",
    },
}[LANG]

# %% [markdown]
# ## Learning curves on the multiplication problem { #multiplication }
#
# The same results file as in the LSTM lesson: validation MSE per epoch divided by the baseline (a model that always answers the mean).

# %%
mult = json.loads((RESULTS / "gated-multiplication.json").read_text())
baseline = mult["baseline_val_mse"]
fig, ax = plt.subplots(figsize=(6.5, 4))
for name, run in mult["models"].items():
    ratio = [v / baseline for v in run["val_mse"]]
    ax.semilogy(range(1, len(ratio) + 1), ratio, label=name)
ax.axhline(0.1, color="k", linestyle="--", linewidth=1, label=TEXT["target"])
ax.set(xlabel=TEXT["epoch"], ylabel=TEXT["ratio"], title=TEXT["mult_title"])
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()
best = {name: min(run["val_mse"]) / baseline for name, run in mult["models"].items()}
print({name: round(value, 3) for name, value in best.items()})
assert best["GRU"] < 0.1 and best["RNN"] > 0.8  # a failing cell fails the site build

# %% [markdown]
# ## The notes' equation and PyTorch's { #notes-variant }
#
# One cell, one set of weights, both equations run for 50 steps; the plot shows the largest difference between the two hidden states at each step.
# The difference is not zero: the two equations are different functions.

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
