r"""Word embeddings: the lookup table (a drop-in for ``torch.nn.Embedding``) and word2vec.

A (V, D) table $W$ gives token $i$ its row, $W_{i,:} = \operatorname{onehot}(i)\, W$, $(1, V)(V, D) = (1, D)$.
word2vec learns $W$: skip-gram with negative sampling scores a centre word's $v_c$ (row of $W_{in}$) against a
context word's $u_o$ (row of $W_{out}$) and $K$ noise words $k \sim \operatorname{count}^{3/4}$,
$\ell = -\log \sigma(u_o^\top v_c) - \sum_k \log \sigma(-u_k^\top v_c)$; CBOW predicts the centre from the mean
context vector. Letters: N batch, T steps, V vocabulary, D embedding dimension, K negatives, C context slots.

To run:

```bash
python lessons/embedding.py fit --trainer.max_epochs 2   # skip-gram on the toy text; --data.corpus my.txt: a file
```

It imports only the standard library, torch and pytorch_lightning (and jsonargparse for the CLI).
"""

from __future__ import annotations

import collections
import pathlib
import warnings

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

# --8<-- [start:lookup]
class _Lookup(torch.autograd.Function):
    @staticmethod
    def forward(ctx, W, idx, padding_idx, scale_grad_by_freq, sparse):  # copy one row per id
        ctx.idx, ctx.shape, ctx.options = idx, W.shape, (padding_idx, scale_grad_by_freq, sparse)
        return W[idx]  # (*, D)

    @staticmethod
    def backward(ctx, grad):  # dW = onehot(idx)^T grad: each row collects the gradient of the steps that used it
        idx, (padding_idx, scale_grad_by_freq, sparse) = ctx.idx, ctx.options
        flat, grad = idx.reshape(-1), grad.reshape(-1, ctx.shape[1])  # (L,), (L, D)
        if padding_idx is not None:
            grad = grad * (flat != padding_idx).unsqueeze(1)  # the padding row learns nothing
        if scale_grad_by_freq:  # a word seen n times in the batch gets 1/n of each step's gradient
            grad = grad / torch.bincount(flat, minlength=ctx.shape[0])[flat].unsqueeze(1)
        if sparse:  # only the rows the batch used, as (row id, gradient) pairs
            return torch.sparse_coo_tensor(flat.unsqueeze(0), grad, ctx.shape, check_invariants=False), None, None, None, None
        return grad.new_zeros(ctx.shape).index_add_(0, flat, grad), None, None, None, None


class LookupEmbedding(nn.Module):
    r"""A (V, D) table whose row $i$ is token $i$'s vector, (N, T) ids → (N, T, D): ``torch.nn.Embedding``'s interface."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, max_norm: float | None = None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight: torch.Tensor | None = None, _freeze: bool = False, device=None, dtype=None) -> None:
        super().__init__()
        V, D = num_embeddings, embedding_dim
        if padding_idx is not None and not -V <= padding_idx < V:
            raise ValueError(f"expected padding_idx in [-V, V) = [-{V}, {V}), got {padding_idx}")
        if _weight is not None and tuple(_weight.shape) != (V, D):
            raise ValueError(f"expected a weight of shape (V, D) = ({V}, {D}), got {tuple(_weight.shape)}")
        self.num_embeddings, self.embedding_dim, self.padding_idx = V, D, None if padding_idx is None else padding_idx % V
        self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse = max_norm, norm_type, scale_grad_by_freq, sparse
        if _weight is None:  # N(0, 1) as in torch.nn; padding starts as the zero vector
            _weight = torch.randn(V, D, device=device, dtype=dtype)
            _weight[[] if self.padding_idx is None else self.padding_idx] = 0.0
        self.W = nn.Parameter(_weight, requires_grad=not _freeze)  # (V, D)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        idx, V = input, self.num_embeddings
        if not isinstance(idx, torch.Tensor) or idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
            got = f"dtype {idx.dtype}" if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(f"expected token ids as an integer tensor (any shape, e.g. (N, T)), got {got}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= V):  # a clear message, not an IndexError
            got = f"min {int(idx.min())}" if int(idx.min()) < 0 else f"max {int(idx.max())}"
            raise ValueError(f"expected token ids in [0, V) = [0, {V}), got {got}")
        if self.max_norm is not None:  # rescale, in place, the used rows longer than max_norm
            with torch.no_grad():
                norms = self.W[input.unique()].norm(p=self.norm_type, dim=1, keepdim=True)
                self.W[input.unique()] *= torch.where(norms > self.max_norm, self.max_norm / (norms + 1e-7), 1.0)
        return _Lookup.apply(self.W, input, self.padding_idx, self.scale_grad_by_freq, self.sparse)  # (*, D)
# --8<-- [end:lookup]

    weight = property(lambda self: self.W, doc="``W`` under ``torch.nn.Embedding``'s name.")

    # --8<-- [start:pretrained]
    @classmethod
    def from_pretrained(cls, embeddings: torch.Tensor, freeze: bool = True, padding_idx: int | None = None, max_norm=None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False):
        """A table holding trained (V, D) vectors, fixed (``freeze=True``) or fine-tuned with the model."""
        if not isinstance(embeddings, torch.Tensor) or embeddings.dim() != 2:
            raise ValueError(f"expected embeddings of shape (V, D), got {tuple(getattr(embeddings, 'shape', ()))}")
        return cls(*embeddings.shape, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)
    # --8<-- [end:pretrained]

    @classmethod
    def from_torch(cls, reference: nn.Embedding) -> "LookupEmbedding":
        """A copy of a ``torch.nn.Embedding`` (its ``weight`` is ``W``)."""
        return cls(*reference.weight.shape, reference.padding_idx, reference.max_norm, reference.norm_type,
                   reference.scale_grad_by_freq, reference.sparse, reference.weight.detach().clone(), not reference.weight.requires_grad)

    def to_torch(self) -> nn.Embedding:
        """The same table as a ``torch.nn.Embedding``."""
        return nn.Embedding(*self.W.shape, self.padding_idx, self.max_norm, self.norm_type, self.scale_grad_by_freq,
                            self.sparse, self.W.detach().clone(), not self.W.requires_grad)


def encode_corpus(sentences, min_count: int = 1):
    """Words seen at least ``min_count`` times, most frequent first, their counts (V,), the corpus as ids (L,),
    each token's sentence number (L,).

    >>> encode_corpus([["a", "b", "a"], ["c", "a", "b"]], min_count=2)
    (['a', 'b'], tensor([3, 2]), tensor([0, 1, 0, 0, 1]), tensor([0, 0, 0, 1, 1]))
    """
    sentences = [list(s) for s in sentences]
    kept = [(w, c) for w, c in collections.Counter(w for s in sentences for w in s).most_common() if c >= min_count]
    if not kept:
        raise ValueError(f"no word occurs at least min_count={min_count} times")
    index = {w: i for i, (w, _) in enumerate(kept)}  # stable for ties: first seen first
    encoded = [[index[w] for w in s if w in index] for s in sentences]  # unknown words dropped, as word2vec does
    return ([w for w, _ in kept], torch.tensor([c for _, c in kept]), torch.tensor([i for e in encoded for i in e]),
            torch.tensor([n for n, e in enumerate(encoded) for _ in e]))


# --8<-- [start:sampling]
def keep_probabilities(counts: torch.Tensor, sample: float = 1e-3) -> torch.Tensor:
    r"""Subsampling: keep each word with $p = (\sqrt{f/t} + 1)\, t/f$, capped at 1; ``sample=0`` keeps all."""
    f = counts.double() / counts.sum()  # (V,) each word's share of the corpus
    return ((f / sample).sqrt() + 1).mul(sample / f).clamp(max=1.0).float() if sample > 0 else torch.ones(len(counts))


def negative_table(counts: torch.Tensor, power: float = 0.75, size: int = 1_000_000) -> torch.Tensor:
    r"""Word ids, word $w$ filling a share $P_n(w) \propto \operatorname{count}(w)^{3/4}$ of the table (as word2vec's
    C code does): a batch of noise words is then one ``torch.randint`` and an index."""
    probs = counts.double().pow(power)
    repeats = ((probs / probs.sum()).float().double() * size).round().long().clamp(min=1)  # every word at least once
    return torch.repeat_interleave(torch.arange(len(counts)), repeats)  # (size ± V,)
# --8<-- [end:sampling]


# --8<-- [start:pairs]
def cbow_windows(ids, sentence_ids, window: int, keep_prob=None, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch's examples, as word2vec draws them: after subsampling with ``keep_prob``, each word (P,) with
    the words at most b ~ U{1..window} away in its sentence (P, C = 2·window), empty slots -1.

    >>> contexts, centres = cbow_windows(torch.tensor([5, 6, 7]), torch.zeros(3, dtype=torch.long), window=1)
    >>> contexts.tolist(), centres.tolist()
    ([[-1, 6], [5, 7], [6, -1]], [5, 6, 7])
    """
    if keep_prob is not None:  # subsampling
        keep = torch.rand(len(ids), generator=generator) < keep_prob[ids]
        ids, sentence_ids = ids[keep], sentence_ids[keep]
    b = torch.randint(1, window + 1, (len(ids),), generator=generator)  # (L,) each centre's window
    offsets = torch.cat([torch.arange(-window, 0), torch.arange(1, window + 1)])  # (C,)
    pos = torch.arange(len(ids)).unsqueeze(1) + offsets  # (L, C): no Python loop over words
    inside, pos = (pos >= 0) & (pos < len(ids)), pos.clamp(0, max(len(ids) - 1, 0))
    valid = inside & (offsets.abs() <= b.unsqueeze(1)) & (sentence_ids[pos] == sentence_ids.unsqueeze(1))
    contexts = torch.where(valid, ids[pos], torch.full_like(pos, -1))  # (L, C)
    has_context = valid.any(dim=1)  # words without any context are left out
    return contexts[has_context], ids[has_context]  # (P, C), (P,)


def skipgram_pairs(ids, sentence_ids, window: int, keep_prob=None, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The same windows as (centre, context) pairs, two (P,) tensors, offset +1, -1, +2, -2, … in turn.

    >>> centre, context = skipgram_pairs(torch.tensor([0, 1, 2, 3]), torch.zeros(4, dtype=torch.long), window=1)
    >>> sorted(zip(centre.tolist(), context.tolist()))
    [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)]
    """
    contexts, centres = cbow_windows(ids, sentence_ids, window, keep_prob, generator)
    columns = [c for o in range(1, window + 1) for c in (window + o - 1, window - o)]  # offsets +o, -o
    contexts = contexts[:, columns].T  # (C, P): one offset after the other
    return centres.expand_as(contexts)[contexts >= 0], contexts[contexts >= 0]  # (P,), (P,)
# --8<-- [end:pairs]


# --8<-- [start:models]
class SkipGramNegativeSampling(nn.Module):
    r"""Two (V, D) tables, $W_{in}$ (the word vectors $v$) and $W_{out}$ (the $u$); ``forward(centre (N,),
    context (N,), negatives (N, K))`` gives each pair's loss (N,). ``sparse=True``: gradients only for used rows."""

    def __init__(self, vocab_size: int, embedding_dim: int, sparse: bool = True) -> None:
        super().__init__()
        self.W_in = LookupEmbedding(vocab_size, embedding_dim, sparse=sparse)  # (V, D), v_w
        self.W_out = LookupEmbedding(vocab_size, embedding_dim, sparse=sparse)  # (V, D), u_w
        nn.init.uniform_(self.W_in.weight, -0.5 / embedding_dim, 0.5 / embedding_dim)  # word2vec's start
        nn.init.zeros_(self.W_out.weight)

    def forward(self, centre: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        return _negative_sampling_loss(self.W_in(centre), self.W_out, context, negatives)  # (N,)


class CBOW(SkipGramNegativeSampling):
    """The mean context vector predicts the centre: ``forward(contexts (N, C), centre, negatives)``, -1 = empty."""

    def forward(self, contexts: torch.Tensor, centre: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        if not isinstance(contexts, torch.Tensor) or contexts.dim() != 2:
            raise ValueError(f"expected contexts of shape (N, C), got {tuple(getattr(contexts, 'shape', ()))}")
        mask = contexts >= 0  # (N, C)
        vectors = self.W_in(contexts.masked_fill(~mask, 0)) * mask.unsqueeze(-1)  # (N, C, D), empty slots zeroed
        v_mean = vectors.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)  # (N, D)
        return _negative_sampling_loss(v_mean, self.W_out, centre, negatives)  # (N,)


def _negative_sampling_loss(v, W_out, target, negatives):
    u = W_out(torch.cat([target.unsqueeze(1), negatives], dim=1))  # (N, 1 + K, D): true word, K noise words
    scores = (u * v.unsqueeze(1)).sum(-1)  # (N, 1 + K)  u_o . v_c, then u_k . v_c
    sign = torch.tensor([1.0] + [-1.0] * negatives.shape[1], dtype=scores.dtype, device=scores.device)  # (1 + K,)
    return -F.logsigmoid(scores * sign).sum(-1)  # (N,)  -log σ(u_o.v_c) - Σ_k log σ(-u_k.v_c)
# --8<-- [end:models]


# --8<-- [start:batches]
class _WindowBatches(torch.utils.data.IterableDataset):
    def __init__(self, ids, sentence_ids, counts, window=5, negatives=5, batch_size=1024, sample=1e-3, seed=0):
        super().__init__()
        self.ids, self.sentence_ids, self.window, self.negatives = ids, sentence_ids, window, negatives
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0
        self.keep_prob, self.table = keep_probabilities(counts, sample), negative_table(counts)

    def set_epoch(self, epoch: int) -> None:  # the next pass draws from seed + epoch; Word2VecSystem sets it
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1  # also in a persistent worker's copy
        examples = self.examples(self.ids, self.sentence_ids, self.window, self.keep_prob, generator)  # every worker
        order = torch.randperm(len(examples[0]), generator=generator)  # and rank draws the same epoch ...
        negatives = self.table[torch.randint(len(self.table), (len(order), self.negatives), generator=generator)]
        info, dist = torch.utils.data.get_worker_info(), torch.distributed
        workers, w = (1, 0) if info is None else (info.num_workers, info.id)
        ranks, r = (dist.get_world_size(), dist.get_rank()) if dist.is_available() and dist.is_initialized() else (1, 0)
        for start in range(w * self.batch_size, len(order), workers * self.batch_size):  # ... worker w keeps
            rows = slice(start, start + self.batch_size)  # batches w, w + workers, … and rank r its part of each
            n = len(order[rows])
            if n < ranks:
                break  # DDP: every rank needs a piece of every batch
            part = slice(r * n // ranks, (r + 1) * n // ranks)
            yield (*(e[order[rows][part]] for e in examples), negatives[rows][part])


class SkipGramBatches(_WindowBatches):
    """Shuffled batches ``(centre (B,), context (B,), negatives (B, K))``, drawn anew from ``seed + epoch``.

    In ``DataLoader(batches, batch_size=None, num_workers=n)`` worker w yields batches w, w + n, …; under DDP
    each of R ranks takes 1/R of every batch: together they see each example once per epoch."""

    examples = staticmethod(skipgram_pairs)


class CBOWBatches(_WindowBatches):
    """The same for CBOW: ``(contexts (B, C), centre (B,), negatives (B, K))``; same arguments."""

    examples = staticmethod(cbow_windows)
# --8<-- [end:batches]


# --8<-- [start:system]
class Word2VecSystem(pl.LightningModule):
    """Trains `SkipGramNegativeSampling` or `CBOW` (any ``model(*batch)`` giving each example's loss) with
    ``SparseAdam`` (``Adam`` if no table is sparse); ``predict_step`` returns each example's loss, (N,)."""

    def __init__(self, model: nn.Module, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model

    def forward(self, *batch: torch.Tensor) -> torch.Tensor:
        return self.model(*batch)  # (N,) the loss of every example

    def on_train_epoch_start(self) -> None:  # a resumed run or a new worker process draws this epoch's batches
        getattr(getattr(self.trainer.train_dataloader, "dataset", None), "set_epoch", int)(self.current_epoch)

    def _step(self, batch, stage: str) -> torch.Tensor:
        loss = self(*batch).mean()
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(batch[0]), sync_dist=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx):
        return self(*batch)

    def configure_optimizers(self):
        sparse = any(getattr(m, "sparse", False) for m in self.model.modules())
        return (torch.optim.SparseAdam if sparse else torch.optim.Adam)(self.parameters(), lr=self.hparams.lr)

    vectors = property(lambda self: self.model.W_in.weight.detach(), doc="The word vectors: $W_{in}$, (V, D).")
# --8<-- [end:system]


TOY_TEXT = """the king rules the land\nthe queen rules the land\nthe king is a man\nthe queen is a woman
the cat drinks milk\nthe dog drinks water\nthe cat chases the dog\nthe dog chases the cat"""


class Word2VecData(pl.LightningDataModule):
    """Skip-gram (or ``cbow=True``) batches of a text file (a sentence per line) or of the toy text."""

    def __init__(self, corpus: str | None = None, cbow: bool = False, window: int = 2, batch_size: int = 64,
                 min_count: int = 1, sample: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        self.words, counts, ids, sentence_ids = _read(corpus, min_count)
        self.stream = (CBOWBatches if cbow else SkipGramBatches)(ids, sentence_ids, counts, window=window,
                                                                  batch_size=batch_size, sample=sample, seed=seed)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.stream, batch_size=None)

    val_dataloader = predict_dataloader = train_dataloader


def _read(corpus: str | None, min_count: int = 1):
    text = TOY_TEXT if corpus is None else pathlib.Path(corpus).read_text(encoding="utf-8")
    return encode_corpus((line.split() for line in text.splitlines()), min_count)


def main(args: list[str] | None = None) -> None:
    """``LightningCLI`` over `Word2VecSystem` and `Word2VecData`; V follows the data's vocabulary."""
    from pytorch_lightning.cli import LightningCLI

    here = __name__  # the importable name (see the __main__ block), so checkpoints can name their classes

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model.model": {"class_path": f"{here}.SkipGramNegativeSampling", "init_args": {
                                 "embedding_dim": 10}}, "model.lr": 0.05, "trainer.max_epochs": 50, "trainer.log_every_n_steps": 1})
            parser.link_arguments(("data.corpus", "data.min_count"), "model.model.init_args.vocab_size",
                                  compute_fn=lambda corpus, min_count: len(_read(corpus, min_count)[0]))

        def instantiate_classes(self):
            super().instantiate_classes()
            # the system ignores its model object; its class path and arguments let load_from_checkpoint rebuild it
            self.model.hparams["model"] = self.config_dump["model"]["model"]

    warnings.filterwarnings("ignore", message=".*(LeafSpec|IterableDataset).*")  # Lightning's hints, not ours to fix
    CLI(Word2VecSystem, Word2VecData, seed_everything_default=0, args=args)


if __name__ == "__main__":
    # run the importable module's main, not __main__'s: the classes a checkpoint names must import again
    import importlib

    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
