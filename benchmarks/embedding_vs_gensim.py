"""Skip-gram with negative sampling: this lesson's PyTorch code against gensim's Word2Vec.

Both train on the same corpus (the English Wikipedia sample in gensim's test data, about
453,000 words) with the same settings: dimension 100, window 5, 5 negatives, subsampling
1e-3, min_count 5, learning rate 0.025 decaying linearly, 5 epochs. Rounds are interleaved
(gensim, ours, ours with per-pair negatives, then the next round in another order) and the
table reports medians; the speed ratio is the median of the per-round ratios, because the
machine is shared and single timings move by ±30 %.

Words per second = corpus words x epochs / training seconds, the same count for every model.
Quality, measured by gensim's own evaluation code on every model's vectors:

- analogy accuracy on the questions of ``questions-words.txt`` whose four words are all in
  the vocabulary (3CosAdd, the question words excluded);
- Spearman correlation with ``wordsim353.tsv`` on the pairs the vocabulary covers;
- nearest-neighbour overlap: the share of the 10 nearest neighbours of fixed probe words that a
  model shares with gensim of the same round (gensim against gensim of the next round, with
  another seed, shows how much two runs of the *same* code agree).

To run:

```bash
python benchmarks/embedding_vs_gensim.py                 # the page's table (a few minutes)
python benchmarks/embedding_vs_gensim.py --quick --out /tmp/t   # a seconds-long check
```
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from gensim.models import KeyedVectors, Word2Vec  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from lessons.datasets import gensim_test_file, lee_corpus, wiki_sample  # noqa: E402
from lessons.embedding import SkipGramBatches, SkipGramNegativeSampling, encode_corpus  # noqa: E402

NAME = "embedding-vs-gensim"  # results/<NAME>.json, and the tables docs/embedding.md (.md) and .en.md include
OUT = ROOT / "benchmarks" / "results"
PROBES = ("king", "war", "music", "france", "university", "water", "computer", "church")
ANALOGIES = (("man", "king", "woman"), ("france", "paris", "germany"), ("good", "better", "bad"))
MODELS = ("gensim", "ours_shared", "ours_pairs")
LABELS = {
    "gensim": "gensim `Word2Vec` (C, 2 worker threads)",
    "ours_shared": "this lesson, {M} shared negatives per batch of {B} (1 thread)",
    "ours_pairs": "this lesson, 5 negatives per pair, batch {B2} (1 thread)",
}
LABELS_KO = {
    "gensim": "gensim `Word2Vec` (C, 워커 스레드 2개)",
    "ours_shared": "이 강의, 배치 {B}쌍이 잡음 단어 {M}개를 함께 씀 (스레드 1개)",
    "ours_pairs": "이 강의, 쌍마다 잡음 단어 5개, 배치 {B2} (스레드 1개)",
}


class SharedNegativeSGNS(SkipGramNegativeSampling):
    """Skip-gram that also takes one (M,) set of noise words for the whole batch, each weighted K / M:
    the scores are one (N, D)(D, M) matrix product instead of K lookups per pair."""

    def __init__(self, vocab_size, embedding_dim, num_negatives=5):
        super().__init__(vocab_size, embedding_dim, sparse=True)
        self.num_negatives = num_negatives

    def forward(self, centre, context, negatives):
        if negatives.dim() == 2:
            return super().forward(centre, context, negatives)
        v = self.W_in(centre)  # (N, D)
        u = self.W_out(torch.cat([context, negatives]))  # (N + M, D), one lookup: one sparse gradient
        positive = (u[: len(context)] * v).sum(-1)  # (N,)  u_o . v_c
        negative = v @ u[len(context):].T  # (N, M)  u_k . v_c
        return -F.logsigmoid(positive) - self.num_negatives / len(negatives) * F.logsigmoid(-negative).sum(-1)


def shared_batches(stream, M):
    """One epoch of ``stream`` (a SkipGramBatches) with one (M,) set of noise words per batch."""
    generator = torch.Generator().manual_seed(stream.seed + stream.epoch)
    stream.epoch += 1
    centre, context = stream.examples(stream.ids, stream.sentence_ids, stream.window, stream.keep_prob, generator)
    order = torch.randperm(len(centre), generator=generator)
    starts = range(0, len(order), stream.batch_size)
    negatives = stream.table[torch.randint(len(stream.table), (len(starts), M), generator=generator)]
    for i, start in enumerate(starts):
        batch = order[start : start + stream.batch_size]
        yield centre[batch], context[batch], negatives[i]


# --8<-- [start:fast]
def train_sgns(model, batches, epochs, lr=0.025, min_lr=1e-4, shared=None):
    """A plain loop for speed: plain SGD on the sparse gradients, learning rate decaying linearly.

    This is word2vec's own schedule (``alpha`` from 0.025 down to 0.0001). The loss is *summed*
    over the batch, so every pair moves its rows by ``lr`` times its own gradient, as one
    sequential SGD step per pair would. ``shared=M`` draws one (M,) set of noise words per batch.
    Returns the mean loss of every epoch.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        batch_list = list(shared_batches(batches, shared) if shared else batches)  # new windows and negatives
        total, pairs = torch.zeros(()), 0
        for i, batch in enumerate(batch_list):
            progress = (epoch + i / len(batch_list)) / epochs  # share of the training done
            optimizer.param_groups[0]["lr"] = max(min_lr, lr * (1 - progress))
            loss = model(*batch).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            pairs += len(batch[0])
        losses.append(total.item() / max(pairs, 1))
    return losses
# --8<-- [end:fast]


def train_gensim(corpus, args, seed):
    start = time.perf_counter()
    model = Word2Vec(
        corpus, vector_size=args.dim, window=args.window, negative=args.negatives, sg=1, hs=0,
        sample=1e-3, min_count=args.min_count, alpha=0.025, min_alpha=1e-4, epochs=args.epochs,
        workers=2, seed=seed,
    )
    return model.wv, time.perf_counter() - start


def train_ours(corpus, args, seed, shared):
    torch.manual_seed(seed)
    start = time.perf_counter()
    words, counts, ids, sentence_ids = encode_corpus(corpus, min_count=args.min_count)
    batches = SkipGramBatches(
        ids, sentence_ids, counts, window=args.window, negatives=args.negatives,
        batch_size=args.batch_size if shared else args.pair_batch_size, seed=seed,
    )
    model = SharedNegativeSGNS(len(words), args.dim, num_negatives=args.negatives)
    train_sgns(model, batches, epochs=args.epochs, lr=0.025, shared=args.shared if shared else None)
    seconds = time.perf_counter() - start
    wv = KeyedVectors(args.dim)
    wv.add_vectors(words, model.W_in.weight.detach().numpy())
    return wv, seconds


def quality(wv):
    score, sections = wv.evaluate_word_analogies(str(gensim_test_file("questions-words.txt")))
    covered = sum(len(s["correct"]) + len(s["incorrect"]) for s in sections if s["section"] == "Total accuracy")
    _, spearman, oov = wv.evaluate_word_pairs(str(gensim_test_file("wordsim353.tsv")))
    return {"analogy": 100 * score, "covered": covered, "spearman": spearman.statistic, "oov": oov}


def neighbours(wv, word, k=10):
    return {w for w, _ in wv.most_similar(word, topn=k)} if word in wv else set()


def overlap(a, b):
    probes = [w for w in PROBES if w in a and w in b]
    return 100 * float(np.mean([len(neighbours(a, w) & neighbours(b, w)) / 10 for w in probes]))


def answer(wv, a, b, c):
    if not all(w in wv for w in (a, b, c)):
        return "(not in vocabulary)"
    return wv.most_similar(positive=[b, c], negative=[a], topn=1)[0][0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Lee corpus, 1 epoch, dim 20, 1 round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negatives", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--shared", type=int, default=32, help="M, noise words shared by one batch")
    parser.add_argument("--pair-batch-size", type=int, default=1024)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the JSON and the two tables")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.epochs, args.dim = 1, 1, 20
    logging.getLogger("gensim").setLevel(logging.WARNING)
    torch.set_num_threads(args.torch_threads)
    started = time.perf_counter()
    corpus = [list(s) for s in (lee_corpus() if args.quick else wiki_sample())]
    corpus_name = "gensim's Lee corpus" if args.quick else "the English Wikipedia sample in gensim's test data"
    words = sum(map(len, corpus))

    runs = {m: [] for m in MODELS}  # per round: (wv, seconds)
    for r in range(args.rounds):
        order = MODELS[r % 3:] + MODELS[: r % 3]  # interleaved: each model goes first once
        for m in order:
            if m == "gensim":
                runs[m].append(train_gensim(corpus, args, seed=r))
            else:
                runs[m].append(train_ours(corpus, args, seed=r, shared=(m == "ours_shared")))
            print(f"round {r + 1} {m}: {words * args.epochs / runs[m][-1][1]:,.0f} words/s", flush=True)

    rows = []
    for m in MODELS:
        speeds = [words * args.epochs / s for _, s in runs[m]]
        ratios = [g / o for (_, o), (_, g) in zip(runs[m], runs["gensim"])]  # ours_s / gensim_s as speed
        quals = [quality(wv) for wv, _ in runs[m]]
        if m == "gensim":
            overlaps = [overlap(runs[m][r][0], runs[m][r + 1][0]) for r in range(args.rounds - 1)]
        else:
            overlaps = [overlap(wv, g) for (wv, _), (g, _) in zip(runs[m], runs["gensim"])]
        rows.append({
            "model": m,
            "speed": statistics.median(speeds),
            "ratio": statistics.median(ratios),
            "analogy": statistics.median(q["analogy"] for q in quals),
            "spearman": statistics.median(q["spearman"] for q in quals),
            "overlap": statistics.median(overlaps) if overlaps else None,
        })
    gensim_wv, ours_wv = runs["gensim"][0][0], runs["ours_shared"][0][0]
    nearest = lambda wv, word: [w for w, _ in wv.most_similar(word, topn=4)] if word in wv else None  # noqa: E731
    result = {
        "meta": {
            "command": "python benchmarks/embedding_vs_gensim.py" + (" --quick" if args.quick else ""),
            "machine": platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
            "seconds": time.perf_counter() - started, "quick": args.quick,
            "corpus": "lee" if args.quick else "wiki", "words": words, "dim": args.dim, "window": args.window,
            "negatives": args.negatives, "epochs": args.epochs, "rounds": args.rounds, "shared": args.shared,
            "batch_size": args.batch_size, "pair_batch_size": args.pair_batch_size,
            "covered": quality(gensim_wv)["covered"], "oov": quality(gensim_wv)["oov"],
        },
        "rows": rows,
        "analogies": [[a, b, c, answer(gensim_wv, a, b, c), answer(ours_wv, a, b, c)] for a, b, c in ANALOGIES],
        "nearest": [[word, nearest(gensim_wv, word), nearest(ours_wv, word)] for word in PROBES[:4]],
    }
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{NAME}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for lang, suffix in (("ko", ".md"), ("en", ".en.md")):
        (out / f"{NAME}{suffix}").write_text(table(result, lang), encoding="utf-8")
    print(table(result, "en"))
    return result


def table(result, lang="en"):
    """The page's tables in ``lang`` ("ko" or "en") from a run's JSON; the numbers are the same in both."""
    ko, meta = lang == "ko", result["meta"]
    labels = LABELS_KO if ko else LABELS
    missing = "(어휘에 없음)" if ko else "(not in vocabulary)"
    lines = [
        f"<!-- generated by `{meta['command']}` ({meta['machine']}, {meta['cores']} CPU cores, "
        f"torch {meta['torch']}, {meta['seconds']:.0f} s); do not edit -->",
        "",
        "| 모델 | 초당 단어 수 | gensim 대비 속도 | 유추 정확도 (%) | wordsim353 스피어먼 상관 | gensim과 겹치는 이웃 (%) |"
        if ko else
        "| model | words/s | speed vs gensim | analogy accuracy (%) | wordsim353 Spearman | neighbour overlap with gensim (%) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        label = labels[row["model"]].format(M=meta["shared"], B=meta["batch_size"], B2=meta["pair_batch_size"])
        overlap_cell = "–" if row["overlap"] is None else format(row["overlap"], ".0f")
        lines.append(f"| {label} | {row['speed']:,.0f} | {row['ratio']:.2f} | {row['analogy']:.1f} | "
                     f"{row['spearman']:.3f} | {overlap_cell} |")
    settings = (meta["dim"], meta["window"], meta["negatives"], meta["epochs"], meta["rounds"])
    if ko:
        corpus = "gensim의 Lee 말뭉치" if meta["corpus"] == "lee" else "gensim 테스트 데이터의 영어 위키백과 표본"
        lines += ["", (
            f"말뭉치: {corpus}, {meta['words']:,} 단어. {settings[0]}차원, 창 {settings[1]}, 잡음 단어 {settings[2]}개, "
            f"{settings[3]} 에포크이며, 번갈아 돌린 라운드 {settings[4]}번의 중앙값입니다. gensim 대비 속도는 라운드마다 잰 "
            "속도 비의 중앙값이라 초당 단어 수 중앙값끼리의 비와 꼭 같지는 않습니다. "
            f"유추: questions-words.txt 가운데 어휘에 있는 {meta['covered']:,}문제. "
            f"wordsim353: 단어 쌍의 {meta['oov']:.0f} %가 어휘 밖입니다. gensim 행의 이웃 겹침은 시드가 다른 "
            "gensim 두 번을 비교한 값입니다."),
            "", "| 질의 | gensim | 이 강의 (잡음 단어 공유) |", "|---|---|---|"]
    else:
        corpus = "gensim's Lee corpus" if meta["corpus"] == "lee" else "the English Wikipedia sample in gensim's test data"
        lines += ["", (
            f"Corpus: {corpus}, {meta['words']:,} words; dimension {settings[0]}, window {settings[1]}, "
            f"{settings[2]} negatives, {settings[3]} epochs, medians of {settings[4]} interleaved rounds "
            "(speed vs gensim: the median of the per-round ratios, so it need not equal the ratio of the median words/s). "
            f"Analogies: {meta['covered']:,} questions of questions-words.txt in the vocabulary; "
            f"wordsim353: {meta['oov']:.0f} % of the pairs out of the vocabulary. "
            "gensim's overlap row compares two gensim runs with different seeds."),
            "", "| probe | gensim | this lesson (shared negatives) |", "|---|---|---|"]
    for a, b, c, by_gensim, by_ours in result["analogies"]:
        lines.append(f"| {b} − {a} + {c} | {by_gensim} | {by_ours} |".replace("(not in vocabulary)", missing))
    for word, *near in result["nearest"]:
        cells = [missing if n is None else ", ".join(n) for n in near]
        lines.append(f"| {f'{word}에 가장 가까운 단어' if ko else f'nearest to {word}'} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
