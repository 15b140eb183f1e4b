r"""Word embeddings: the lookup table, and word2vec (CBOW and skip-gram with negative sampling).

An embedding layer holds one row of $D$ real numbers per vocabulary entry: a weight matrix
$W$ of shape (V, D). Looking up token $i$ returns row $i$, which is the same as multiplying its
one-hot vector by $W$:

$$
\operatorname{embed}(i) = W_{i,:} = \operatorname{onehot}(i)\, W, \qquad (1, V)(V, D) = (1, D)
$$

word2vec learns $W$ from raw text. Skip-gram with negative sampling (SGNS) scores a centre word
$c$ with input vector $v_c$ (a row of $W_{in}$) against a context word $o$ with output vector
$u_o$ (a row of $W_{out}$), and against $K$ noise words $k_1, \dots, k_K$ drawn from the unigram
distribution raised to the power 3/4:

$$
\ell(c, o) = -\log \sigma(u_o^\top v_c) - \sum_{j=1}^{K} \log \sigma(-u_{k_j}^\top v_c),
\qquad P_n(w) \propto \operatorname{count}(w)^{3/4}
$$

CBOW swaps the roles: the mean of the context words' input vectors,
$\bar v = \frac{1}{|C|}\sum_{w \in C} v_w$, predicts the centre word with the same loss.
Frequent words are subsampled: a word of corpus frequency $f$ is kept with probability
$p = (\sqrt{f / t} + 1)\, t / f$ (word2vec's formula, sample $t = 10^{-3}$).

Shapes follow d2l's letters: N batch, T time steps, V vocabulary, D embedding dimension,
K negatives per pair, C context slots (2 x window).

Contents: `LookupEmbedding` (the table from scratch), `check_token_ids`, `pad_sequences`,
`pretrained_embedding`, `Vocab`, `keep_probabilities`, `NegativeSampler`, `skipgram_pairs`,
`cbow_windows`, the models `SkipGramNegativeSampling` and `CBOW`, the batch streams
`SkipGramBatches` and `CBOWBatches`, the training system `Word2VecSystem`, `fit`, the plain
fast loop `train_sgns`, and the queries `most_similar` and `analogy`.

To run:

```bash
python lessons/embedding.py                              # skip-gram on gensim's Lee corpus
python lessons/embedding.py --model cbow --epochs 5
python lessons/embedding.py --corpus my_text.txt --dim 50  # one sentence per line, split on spaces
```

The file imports only the standard library, torch, pytorch_lightning and torchmetrics, so it
can be copied into a project on its own.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import logging
import math
import pathlib
import time
import warnings
from collections.abc import Iterable, Sequence

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "check_token_ids",
    "LookupEmbedding",
    "pad_sequences",
    "pretrained_embedding",
    "Vocab",
    "keep_probabilities",
    "NegativeSampler",
    "skipgram_pairs",
    "cbow_windows",
    "SkipGramNegativeSampling",
    "CBOW",
    "SkipGramBatches",
    "CBOWBatches",
    "Word2VecSystem",
    "LossHistory",
    "fit",
    "train_sgns",
    "most_similar",
    "analogy",
]


def check_token_ids(idx: torch.Tensor, num_embeddings: int, name: str = "idx") -> None:
    """Raise a ``ValueError`` unless ``idx`` is an integer tensor with values in [0, V).

    >>> check_token_ids(torch.tensor([0, 3, 10]), num_embeddings=10)
    Traceback (most recent call last):
    ...
    ValueError: expected idx to hold token ids in [0, V) = [0, 10), got max 10
    >>> check_token_ids(torch.tensor([0.0, 1.0]), num_embeddings=10)
    Traceback (most recent call last):
    ...
    ValueError: expected idx to be an integer tensor of token ids (any shape, e.g. (N, T)), got dtype torch.float32
    """
    if not isinstance(idx, torch.Tensor):
        raise ValueError(f"expected {name} to be a torch.Tensor of token ids, got {type(idx).__name__}")
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise ValueError(
            f"expected {name} to be an integer tensor of token ids (any shape, e.g. (N, T)), got dtype {idx.dtype}"
        )
    if idx.numel():
        low, high = int(idx.min()), int(idx.max())
        if low < 0:
            raise ValueError(f"expected {name} to hold token ids in [0, V) = [0, {num_embeddings}), got min {low}")
        if high >= num_embeddings:
            raise ValueError(f"expected {name} to hold token ids in [0, V) = [0, {num_embeddings}), got max {high}")


# --8<-- [start:lookup]
class LookupEmbedding(nn.Module):
    r"""An embedding layer from scratch: a (V, D) table whose row $i$ is token $i$'s vector.

    ``forward`` indexes the table; ``one_hot_forward`` computes the same thing as
    $\operatorname{onehot}(idx)\, W$, which costs a (V, D) product per token instead of a row copy.

    Examples
    --------
    >>> embed = LookupEmbedding(num_embeddings=10, embedding_dim=3)   # (V, D)
    >>> tuple(embed(torch.tensor([[0, 1, 2, 3]])).shape)               # (N, T) -> (N, T, D)
    (1, 4, 3)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(num_embeddings, embedding_dim))  # (V, D), like nn.Embedding

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        check_token_ids(idx, self.W.shape[0])
        return self.W[idx]  # (*, D): one row per id, e.g. (N, T) -> (N, T, D)

    def one_hot_forward(self, idx: torch.Tensor) -> torch.Tensor:
        check_token_ids(idx, self.W.shape[0])
        one_hot = F.one_hot(idx, self.W.shape[0]).to(self.W.dtype)  # (*, V)
        return one_hot @ self.W  # (*, V)(V, D) = (*, D)
# --8<-- [end:lookup]


# --8<-- [start:padding]
def pad_sequences(
    sequences: Sequence[Sequence[int]],
    maxlen: int,
    value: int = 0,
    padding: str = "pre",
    truncating: str = "pre",
) -> torch.Tensor:
    """Pad or cut token-id lists to one length ``maxlen``: a (N, T) = (len(sequences), maxlen) tensor.

    The defaults follow Keras' ``pad_sequences``, used in the course notes: padding goes *before*
    the tokens and long sequences lose their *first* tokens, so the last tokens always stay
    (an RNN reads them last). ``padding="post"`` / ``truncating="post"`` do the opposite.

    >>> pad_sequences([[5, 6, 7], [8], [1, 2, 3, 4, 5]], maxlen=4)
    tensor([[0, 5, 6, 7],
            [0, 0, 0, 8],
            [2, 3, 4, 5]])
    """
    if maxlen < 1:
        raise ValueError(f"expected maxlen >= 1, got {maxlen}")
    if padding not in ("pre", "post") or truncating not in ("pre", "post"):
        raise ValueError(f"expected padding and truncating to be 'pre' or 'post', got {padding!r}, {truncating!r}")
    out = torch.full((len(sequences), maxlen), value, dtype=torch.long)  # (N, T)
    for n, seq in enumerate(sequences):
        seq = list(seq)[-maxlen:] if truncating == "pre" else list(seq)[:maxlen]
        if seq:
            row = torch.as_tensor(seq, dtype=torch.long)
            if padding == "pre":
                out[n, maxlen - len(seq):] = row
            else:
                out[n, : len(seq)] = row
    return out


def pretrained_embedding(vectors: torch.Tensor, freeze: bool = True, padding_idx: int | None = None) -> nn.Embedding:
    """An ``nn.Embedding`` initialised from trained vectors of shape (V, D).

    ``freeze=True`` keeps them fixed (no gradient); ``freeze=False`` fine-tunes them with the
    rest of the model. With ``padding_idx`` that row is set to zeros and never receives a
    gradient, so padding adds nothing to a sum or a mean.
    """
    if vectors.dim() != 2:
        raise ValueError(f"expected vectors of shape (V, D), got {tuple(vectors.shape)}")
    vectors = vectors.detach().clone()
    if padding_idx is not None:
        vectors[padding_idx] = 0.0
    return nn.Embedding.from_pretrained(vectors, freeze=freeze, padding_idx=padding_idx)
# --8<-- [end:padding]


class Vocab:
    """Words kept at least ``min_count`` times, most frequent first (ties in order of appearance).

    >>> vocab = Vocab([["a", "b", "a"], ["c", "a", "b"]], min_count=2)
    >>> vocab.words, vocab.counts.tolist(), vocab.encode(["b", "c", "a"])
    (['a', 'b'], [3, 2], [1, 0])
    """

    def __init__(self, sentences: Iterable[Sequence[str]], min_count: int = 1) -> None:
        counter = collections.Counter()
        for sentence in sentences:
            counter.update(sentence)
        kept = [(w, c) for w, c in counter.most_common() if c >= min_count]  # stable for ties
        if not kept:
            raise ValueError(f"no word occurs at least min_count={min_count} times")
        self.words = [w for w, _ in kept]
        self.index = {w: i for i, w in enumerate(self.words)}
        self.counts = torch.tensor([c for _, c in kept], dtype=torch.long)  # (V,)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def encode(self, sentence: Sequence[str]) -> list[int]:
        """Ids of the words in the vocabulary; the others are dropped, as word2vec does."""
        return [self.index[w] for w in sentence if w in self.index]

    def encode_corpus(self, sentences: Iterable[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """All sentences as one id stream plus the sentence number of every token: two (L,) tensors."""
        ids, sentence_ids = [], []
        for s, sentence in enumerate(sentences):
            encoded = self.encode(sentence)
            ids.extend(encoded)
            sentence_ids.extend([s] * len(encoded))
        return torch.tensor(ids, dtype=torch.long), torch.tensor(sentence_ids, dtype=torch.long)


# --8<-- [start:sampling]
def keep_probabilities(counts: torch.Tensor, sample: float = 1e-3) -> torch.Tensor:
    r"""Subsampling: the probability of keeping each word, $p = (\sqrt{f/t} + 1)\, t/f$, capped at 1.

    ``f`` is the word's share of the corpus and ``t = sample``; words rarer than about $t$
    are always kept, and "the", "of", 의, 을 lose most of their occurrences.
    ``sample=0`` keeps everything.
    """
    if sample <= 0:
        return torch.ones(len(counts))
    f = counts.double() / counts.sum()  # (V,)
    return ((f / sample).sqrt() + 1).mul(sample / f).clamp(max=1.0).float()  # (V,)


class NegativeSampler:
    r"""Draws noise words from $P_n(w) \propto \operatorname{count}(w)^{3/4}$ with a lookup table.

    Like word2vec's C code, the distribution is written into a table of ``table_size`` word ids
    (word $w$ fills a share $P_n(w)$ of it), so one batch of negatives is a single
    ``torch.randint`` plus an index: no per-sample search.
    """

    def __init__(self, counts: torch.Tensor, power: float = 0.75, table_size: int = 1_000_000) -> None:
        probs = counts.double().pow(power)
        self.probs = (probs / probs.sum()).float()  # (V,)
        repeats = (self.probs.double() * table_size).round().long().clamp(min=1)  # every word at least once
        self.table = torch.repeat_interleave(torch.arange(len(counts)), repeats)  # (table_size ± V,)

    def sample(self, shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
        slots = torch.randint(len(self.table), shape, generator=generator)
        return self.table[slots]  # shape, word ids
# --8<-- [end:sampling]


# --8<-- [start:pairs]
def _subsample(ids, sentence_ids, keep_prob, generator):
    keep = torch.rand(len(ids), generator=generator) < keep_prob[ids]
    return ids[keep], sentence_ids[keep]


def skipgram_pairs(
    ids: torch.Tensor,
    sentence_ids: torch.Tensor,
    window: int,
    keep_prob: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All (centre, context) pairs of one epoch, built with tensor operations (no Python loop over words).

    Frequent words are first dropped with ``keep_prob`` (subsampling); then, as in word2vec,
    every centre word draws its own window size b in [1, window] and pairs with the words at
    most b positions away in the same sentence. Returns two (P,) tensors of word ids.

    >>> ids = torch.tensor([0, 1, 2, 3, 4]); same = torch.zeros(5, dtype=torch.long)
    >>> centre, context = skipgram_pairs(ids, same, window=1)
    >>> sorted(zip(centre.tolist(), context.tolist()))
    [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2), (3, 4), (4, 3)]
    """
    if keep_prob is not None:
        ids, sentence_ids = _subsample(ids, sentence_ids, keep_prob, generator)
    b = torch.randint(1, window + 1, (len(ids),), generator=generator)  # (L,) each centre's window
    centres, contexts = [], []
    for offset in range(1, window + 1):
        left, right = slice(0, len(ids) - offset), slice(offset, None)
        same = sentence_ids[left] == sentence_ids[right]
        forward = same & (b[left] >= offset)  # centre on the left, context `offset` to its right
        backward = same & (b[right] >= offset)  # centre on the right, context to its left
        centres += [ids[left][forward], ids[right][backward]]
        contexts += [ids[right][forward], ids[left][backward]]
    return torch.cat(centres), torch.cat(contexts)  # (P,), (P,)


def cbow_windows(
    ids: torch.Tensor,
    sentence_ids: torch.Tensor,
    window: int,
    keep_prob: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CBOW examples of one epoch: every kept word with its context words.

    Returns ``contexts`` of shape (P, C) = (P, 2 * window), where empty slots (beyond the drawn
    window b, or across a sentence end) hold -1, and the centre words, shape (P,).
    Words without any context are left out.

    >>> contexts, centres = cbow_windows(torch.tensor([5, 6, 7]), torch.zeros(3, dtype=torch.long), window=1)
    >>> contexts.tolist(), centres.tolist()
    ([[-1, 6], [5, 7], [6, -1]], [5, 6, 7])
    """
    if keep_prob is not None:
        ids, sentence_ids = _subsample(ids, sentence_ids, keep_prob, generator)
    L = len(ids)
    b = torch.randint(1, window + 1, (L,), generator=generator)  # (L,)
    offsets = torch.cat([torch.arange(-window, 0), torch.arange(1, window + 1)])  # (C,)
    pos = torch.arange(L).unsqueeze(1) + offsets  # (L, C)
    inside = (pos >= 0) & (pos < L)
    pos = pos.clamp(0, max(L - 1, 0))
    valid = inside & (offsets.abs() <= b.unsqueeze(1)) & (sentence_ids[pos] == sentence_ids.unsqueeze(1))
    contexts = torch.where(valid, ids[pos], torch.full_like(pos, -1))  # (L, C)
    has_context = valid.any(dim=1)
    return contexts[has_context], ids[has_context]  # (P, C), (P,)
# --8<-- [end:pairs]


# --8<-- [start:models]
class SkipGramNegativeSampling(nn.Module):
    r"""Skip-gram with negative sampling: two (V, D) tables, $W_{in}$ (the word vectors) and $W_{out}$.

    ``forward(centre, context, negatives)`` with shapes (N,), (N,), (N, K) returns the loss of
    every pair, shape (N,):
    $-\log \sigma(u_o^\top v_c) - \sum_k \log \sigma(-u_k^\top v_c)$.
    ``sparse=True`` makes the gradients of both tables sparse: a batch touches only the rows
    of the words it holds, which is what makes training on a CPU fast (use ``torch.optim.SGD``
    or ``torch.optim.SparseAdam``).
    """

    def __init__(self, vocab_size: int, embedding_dim: int, sparse: bool = True, num_negatives: int = 5) -> None:
        super().__init__()
        self.vocab_size, self.num_negatives = vocab_size, num_negatives
        self.W_in = nn.Embedding(vocab_size, embedding_dim, sparse=sparse)  # (V, D), v_w
        self.W_out = nn.Embedding(vocab_size, embedding_dim, sparse=sparse)  # (V, D), u_w
        # word2vec's start: small random input vectors, zero output vectors
        nn.init.uniform_(self.W_in.weight, -0.5 / embedding_dim, 0.5 / embedding_dim)
        nn.init.zeros_(self.W_out.weight)

    def forward(self, centre: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        for name, ids in (("centre", centre), ("context", context), ("negatives", negatives)):
            check_token_ids(ids, self.vocab_size, name)
        v = self.W_in(centre)  # (N, D)
        return _negative_sampling_loss(v, self.W_out, context, negatives, self.num_negatives)  # (N,)


class CBOW(nn.Module):
    r"""Continuous bag of words: the mean of the context vectors predicts the centre word.

    ``forward(contexts, centre, negatives)`` with shapes (N, C), (N,), (N, K); empty context
    slots hold -1 (see `cbow_windows`). Returns the loss of every example, shape (N,).
    """

    def __init__(self, vocab_size: int, embedding_dim: int, sparse: bool = True, num_negatives: int = 5) -> None:
        super().__init__()
        self.vocab_size, self.num_negatives = vocab_size, num_negatives
        self.W_in = nn.Embedding(vocab_size, embedding_dim, sparse=sparse)  # (V, D)
        self.W_out = nn.Embedding(vocab_size, embedding_dim, sparse=sparse)  # (V, D)
        nn.init.uniform_(self.W_in.weight, -0.5 / embedding_dim, 0.5 / embedding_dim)
        nn.init.zeros_(self.W_out.weight)

    def forward(self, contexts: torch.Tensor, centre: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        if contexts.dim() != 2:
            raise ValueError(f"expected contexts of shape (N, C), got {tuple(contexts.shape)}")
        mask = contexts >= 0  # (N, C)
        check_token_ids(contexts[mask], self.vocab_size, "contexts")
        check_token_ids(centre, self.vocab_size, "centre")
        check_token_ids(negatives, self.vocab_size, "negatives")
        vectors = self.W_in(contexts.clamp(min=0)) * mask.unsqueeze(-1)  # (N, C, D), empty slots zeroed
        v_mean = vectors.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)  # (N, D)
        return _negative_sampling_loss(v_mean, self.W_out, centre, negatives, self.num_negatives)  # (N,)


def _negative_sampling_loss(v, W_out, target, negatives, num_negatives):
    if negatives.dim() == 1:  # (M,) noise words shared by the whole batch, each weighted K / M
        u = W_out(torch.cat([target, negatives]))  # (N + M, D), one lookup: one sparse gradient
        positive = (u[: len(target)] * v).sum(-1)  # (N,)  u_o . v_c
        negative = v @ u[len(target) :].T  # (N, D)(D, M) = (N, M)  u_k . v_c, one matrix product
        weight = num_negatives / len(negatives)
        return -F.logsigmoid(positive) - weight * F.logsigmoid(-negative).sum(-1)  # (N,)
    # (N, K) noise words per example: one lookup for the true word and its K noise words
    u = W_out(torch.cat([target.unsqueeze(1), negatives], dim=1))  # (N, 1 + K, D)
    scores = (u * v.unsqueeze(1)).sum(-1)  # (N, 1 + K)  u_o . v_c, then u_k . v_c
    sign = torch.ones_like(scores)
    sign[:, 1:] = -1.0
    # $$\ell = -\log\sigma(u_o^\top v_c) - \sum_k \log\sigma(-u_k^\top v_c)$$
    return -F.logsigmoid(scores * sign).sum(-1)  # (N,)
# --8<-- [end:models]


# --8<-- [start:batches]
class _WindowBatches(torch.utils.data.IterableDataset):
    """Shared machinery of `SkipGramBatches` and `CBOWBatches`."""

    def __init__(self, ids, sentence_ids, counts, window=5, negatives=5, batch_size=1024, sample=1e-3,
                 shared_negatives=None, seed=0):
        super().__init__()
        self.ids, self.sentence_ids = ids, sentence_ids
        self.window, self.negatives, self.batch_size, self.seed = window, negatives, batch_size, seed
        self.shared_negatives = shared_negatives
        self.keep_prob = keep_probabilities(counts, sample)
        self.sampler = NegativeSampler(counts)
        self.epoch = 0

    def examples(self, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        examples = self.examples(generator)
        order = torch.randperm(len(examples[0]), generator=generator)
        starts = range(0, len(order), self.batch_size)
        if self.shared_negatives:  # (batches, M)
            negatives = self.sampler.sample((len(starts), self.shared_negatives), generator)
        else:  # (P, K), all pairs at once
            negatives = self.sampler.sample((len(order), self.negatives), generator)
        for i, start in enumerate(starts):
            batch = order[start : start + self.batch_size]
            noise = negatives[i] if self.shared_negatives else negatives[start : start + self.batch_size]
            yield (*(e[batch] for e in examples), noise)


class SkipGramBatches(_WindowBatches):
    """One epoch of shuffled skip-gram batches ``(centre (B,), context (B,), negatives)``.

    ``negatives`` is (B, K), K noise words per pair as in word2vec, or with
    ``shared_negatives=M`` one (M,) set of noise words for the whole batch (faster: one matrix
    product instead of K lookups per pair). Every pass (epoch) subsamples again, draws new
    windows and new negatives from its own generator seeded with ``seed + epoch``, so training
    is reproducible. Use it with ``DataLoader(batches, batch_size=None)``: the batches are made.
    """

    def examples(self, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        return skipgram_pairs(self.ids, self.sentence_ids, self.window, self.keep_prob, generator)


class CBOWBatches(_WindowBatches):
    """The same for CBOW: ``(contexts (B, C), centre (B,), negatives (B, K))``; same arguments."""

    def examples(self, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        return cbow_windows(self.ids, self.sentence_ids, self.window, self.keep_prob, generator)
# --8<-- [end:batches]


MODELS = {"skipgram": SkipGramNegativeSampling, "cbow": CBOW}


# --8<-- [start:system]
class Word2VecSystem(pl.LightningModule):
    """Trains `SkipGramNegativeSampling` or `CBOW` with Lightning.

    Parameters
    ----------
    vocab_size, embedding_dim : int
        V and D.
    model : {"skipgram", "cbow"}
        Which word2vec model.
    lr : float
        ``torch.optim.SparseAdam``'s learning rate (both tables have sparse gradients).
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 50, model: str = "skipgram", lr: float = 0.01) -> None:
        super().__init__()
        if model not in MODELS:
            raise ValueError(f"expected model to be one of {sorted(MODELS)}, got {model!r}")
        self.save_hyperparameters()
        self.model = MODELS[model](vocab_size, embedding_dim, sparse=True)

    def forward(self, *batch: torch.Tensor) -> torch.Tensor:
        return self.model(*batch)  # (N,) loss of every example

    def _step(self, batch: tuple[torch.Tensor, ...], stage: str) -> torch.Tensor:
        loss = self(*batch).mean()
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(batch[0]))
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        return torch.optim.SparseAdam(self.parameters(), lr=self.hparams.lr)

    @property
    def vectors(self) -> torch.Tensor:
        """The word vectors: the input table $W_{in}$, shape (V, D)."""
        return self.model.W_in.weight.detach()
# --8<-- [end:system]


class LossHistory(pl.Callback):
    """Keep every epoch's logged metrics (e.g. ``train_loss``) in ``self.history`` for plotting."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for key, value in trainer.callback_metrics.items():
            self.history.setdefault(key, []).append(float(value))


# --8<-- [start:fit]
def fit(
    system: pl.LightningModule,
    train: torch.utils.data.DataLoader,
    val: torch.utils.data.DataLoader | None = None,
    max_epochs: int = 5,
    progress: bool = False,
    accelerator: str = "cpu",
    callbacks: list[pl.Callback] | None = None,
) -> pl.Trainer:
    """Train ``system`` with deterministic algorithms and return the trainer.

    Seed *before* building the system (``pl.seed_everything(0)``): the initial weights come from
    the random state at construction time. ``progress=True`` shows Lightning's progress bar.
    """
    quiet = logging.getLogger("pytorch_lightning")
    level = quiet.level
    if not progress:
        quiet.setLevel(logging.WARNING)
    try:
        trainer = pl.Trainer(
            max_epochs=max_epochs,
            accelerator=accelerator,
            devices=1,
            deterministic=True,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=progress,
            enable_progress_bar=progress,
            log_every_n_steps=1,
            callbacks=callbacks,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            # the batch streams have no len(): Lightning says so once per fit
            warnings.filterwarnings("ignore", message=".*IterableDataset.*has `__len__` defined.*")
            warnings.filterwarnings("ignore", message=".*Your `IterableDataset` has `__len__`.*")
            trainer.fit(system, train, val)
    finally:
        quiet.setLevel(level)
    return trainer
# --8<-- [end:fit]


# --8<-- [start:fast]
def train_sgns(
    model: SkipGramNegativeSampling,
    batches: SkipGramBatches,
    epochs: int,
    lr: float = 0.025,
    min_lr: float = 1e-4,
) -> list[float]:
    """A plain loop for speed: plain SGD on the sparse gradients, learning rate decaying linearly.

    This is word2vec's own schedule (``alpha`` from 0.025 down to 0.0001). The loss is *summed*
    over the batch, so every pair moves its rows by ``lr`` times its own gradient, as one
    sequential SGD step per pair would. Returns the mean loss of every epoch.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        batch_list = list(batches)  # one epoch: new subsampling, windows and negatives
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


# --8<-- [start:queries]
def most_similar(vectors: torch.Tensor, query: int | torch.Tensor, k: int = 5, exclude: Sequence[int] = ()):
    """The ``k`` rows with the highest cosine similarity to ``query`` (a row id or a (D,) vector).

    Returns ``(ids, similarities)``, two (k,) tensors. The query row itself and ``exclude`` are skipped.
    """
    unit = F.normalize(vectors, dim=1)  # (V, D)
    if isinstance(query, int):
        check_token_ids(torch.tensor([query]), len(vectors), "query")
        exclude = (*exclude, query)
        query = vectors[query]
    sims = unit @ F.normalize(query, dim=0)  # (V,)  cos(w, q)
    if exclude:
        sims[list(exclude)] = -math.inf
    top = sims.topk(k)
    return top.indices, top.values


def analogy(vectors: torch.Tensor, a: int, b: int, c: int, k: int = 1):
    """Solve a : b = c : ? with $\\hat d = \\arg\\max_w \\cos(w, b - a + c)$ on unit vectors (3CosAdd).

    king − man + woman ≈ queen is ``analogy(W, man, king, woman)``; the three query words are
    never returned.
    """
    unit = F.normalize(vectors, dim=1)  # (V, D)
    return most_similar(vectors, unit[b] - unit[a] + unit[c], k=k, exclude=(a, b, c))
# --8<-- [end:queries]


def _read_corpus(path: pathlib.Path) -> list[list[str]]:
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train word2vec (skip-gram or CBOW with negative sampling).")
    parser.add_argument("--corpus", type=pathlib.Path, help="text file, one sentence per line (default: gensim's Lee corpus)")
    parser.add_argument("--model", choices=sorted(MODELS), default="skipgram")
    parser.add_argument("--dim", type=int, default=50, help="D, the embedding dimension")
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negatives", type=int, default=5, help="K, noise words per pair")
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accelerator", default="cpu", help="cpu, gpu or auto")
    parser.add_argument("--probe", nargs="*", default=["government", "police", "australia", "president"])
    args = parser.parse_args(argv)
    path = args.corpus
    if path is None:
        spec = importlib.util.find_spec("gensim")
        if spec is None:
            parser.error("no --corpus given and gensim (whose test data holds the Lee corpus) is not installed")
        path = pathlib.Path(spec.submodule_search_locations[0]) / "test" / "test_data" / "lee_background.cor"
    sentences = [[w.lower() for w in s] for s in _read_corpus(path)]
    vocab = Vocab(sentences, min_count=args.min_count)
    ids, sentence_ids = vocab.encode_corpus(sentences)
    print(f"{path.name}: {len(ids)} tokens, V = {len(vocab)}")
    stream = (SkipGramBatches if args.model == "skipgram" else CBOWBatches)(
        ids, sentence_ids, vocab.counts, window=args.window, negatives=args.negatives,
        batch_size=args.batch_size, seed=args.seed,
    )
    pl.seed_everything(args.seed)
    system = Word2VecSystem(len(vocab), args.dim, model=args.model, lr=args.lr)
    start = time.perf_counter()
    fit(system, torch.utils.data.DataLoader(stream, batch_size=None), max_epochs=args.epochs,
        progress=True, accelerator=args.accelerator)
    print(f"{args.epochs * len(ids) / (time.perf_counter() - start):,.0f} words/s")
    vectors = system.vectors.cpu()
    for word in args.probe:
        if word in vocab:
            ids_, sims = most_similar(vectors, vocab.index[word], k=5)
            print(word, "->", ", ".join(f"{vocab.words[i]} {s:.2f}" for i, s in zip(ids_.tolist(), sims.tolist())))


if __name__ == "__main__":
    main()
