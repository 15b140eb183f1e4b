r"""A language model: predict the next token, and complete a sentence. Synchronized many-to-many.

The reviews become one long stream of token ids, each review closed by ``<eos>``. At every step the
recurrent layer reads token $w_t$ and the head scores every word of the vocabulary for $w_{t+1}$:

$$
h_t = \operatorname{LSTM}(e_{w_t}, h_{t-1}), \qquad P(w_{t+1} = v \mid w_{\le t}) = \operatorname{softmax}(h_t E^\top + b)_v,
\qquad \mathrm{PPL} = \exp\Big(-\frac{1}{T}\sum_t \log P(w_{t+1} \mid w_{\le t})\Big).
$$

With weight tying the output matrix is the embedding $E$ (V, H) itself. Stateful truncated BPTT: the stream
is cut into N rows read ``bptt`` steps at a time; the state is carried (detached) from batch to batch.
Imports: stdlib, torch, pytorch_lightning, torchmetrics (and kiwipiepy, only inside `morphemes`).
To run:

```bash
python lessons/language_model.py fit --trainer.max_epochs 30          # built-in toy reviews, split by spaces
python lessons/language_model.py complete --prefix "이 영화 정말" --top_k 5   # the newest checkpoint
```
"""

from __future__ import annotations

import collections
import functools
import importlib
import pathlib
import sys
import warnings

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["morphemes", "TOKENIZERS", "LMVocab", "encode_stream", "stream_chunks", "StreamBatches",
           "LanguageModel", "LanguageModelSystem", "encode_prefix", "generate", "complete", "TOY_REVIEWS", "StreamData"]


@functools.lru_cache(maxsize=1)
def _kiwi_model():
    try:  # imported here, and only here: the rest of the file needs no Korean tokenizer
        return importlib.import_module("kiwipiepy").Kiwi(num_workers=0)
    except ImportError as error:
        raise ModuleNotFoundError("the tokenizer 'kiwi' needs kiwipiepy: pip install kiwipiepy (or use 'spaces', 'chars')") from error


def morphemes(text: str) -> list[str]:
    """Kiwi's morphemes (forms only), punctuation and emoticons kept: the sentiment lesson's tokens."""
    return [token.form for token in _kiwi_model().tokenize(text)]


TOKENIZERS = {"kiwi": (morphemes, " ".join), "spaces": (str.split, " ".join), "chars": (list, "".join)}


# --8<-- [start:stream]
class LMVocab:
    """Token ids: 0 pads, 1 is ``<unk>``, 2 is ``<eos>`` (end of a review), then the tokens seen at least
    ``min_freq`` times in training, most frequent first (ties: first seen).

    >>> vocab = LMVocab.build([["영화", "좋", "다"], ["영화", "별로", "다"]], min_freq=2)
    >>> vocab.words, vocab.encode(["영화", "최고", "다"])
    (['<pad>', '<unk>', '<eos>', '영화', '다'], [3, 1, 4])
    """
    PAD, UNK, EOS = 0, 1, 2

    def __init__(self, words: list[str]) -> None:
        if list(words[:3]) != ["<pad>", "<unk>", "<eos>"] or len(set(words)) != len(words):
            raise ValueError(f"expected distinct words starting with '<pad>', '<unk>', '<eos>', got {list(words[:4])}…")
        self.words, self.index = list(words), {w: i for i, w in enumerate(words)}

    @classmethod
    def build(cls, token_lists, min_freq: int = 2) -> "LMVocab":
        counts = collections.Counter(t for tokens in token_lists for t in tokens)
        return cls(["<pad>", "<unk>", "<eos>"] + [t for t, c in counts.most_common() if c >= min_freq])

    __len__ = lambda self: len(self.words)  # noqa: E731

    def encode(self, tokens) -> list[int]:
        return [self.index.get(t, self.UNK) for t in tokens]


def encode_stream(token_lists, vocab: LMVocab) -> torch.Tensor:
    """Reviews → one stream ``<eos> r₁ <eos> r₂ <eos> …`` (int64): the first ``<eos>`` is the context of r₁."""
    return torch.tensor([LMVocab.EOS] + [i for tokens in token_lists for i in vocab.encode(tokens) + [LMVocab.EOS]])


def stream_chunks(stream: torch.Tensor, rows: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The stream's inputs ``stream[:-1]`` and targets ``stream[1:]`` cut into ``rows`` consecutive pieces,
    each read ``bptt`` steps at a time: ``(x, y)`` of shape (chunks, rows, bptt). Every target appears once;
    the end is padded (inputs 0, targets -100, ignored). Row r of chunk c+1 continues row r of chunk c."""
    n = len(stream) - 1
    steps = -(-n // rows)  # targets per row (the last row may have fewer)
    width = -(-steps // bptt) * bptt  # rounded up to whole chunks
    x, y = torch.zeros(rows * steps, dtype=torch.long), torch.full((rows * steps,), -100)
    x[:n], y[:n] = stream[:-1], stream[1:]
    x, y = (F.pad(t.view(rows, steps), (0, width - steps), value=v) for t, v in ((x, 0), (y, -100)))
    return tuple(t.view(rows, -1, bptt).transpose(0, 1).contiguous() for t in (x, y))  # (chunks, rows, bptt)


class StreamBatches(torch.utils.data.IterableDataset):
    """Chunk after chunk, ``(x, y)`` of shape (rows, bptt). Under DDP, rank k of w reads rows k, k + w, …
    of every chunk, so each process carries its own rows' state and all processes see every chunk."""
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __iter__(self):
        dist = torch.distributed
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)
        for x, y in zip(self.x, self.y):
            yield x[rank::world], y[rank::world]
# --8<-- [end:stream]


# --8<-- [start:model]
class LanguageModel(nn.Module):
    """Embedding → dropout → any ``batch_first=True`` recurrent layer → dropout → scores for every word,
    ``(N, T, V)``. ``tie_weights``: the output layer uses the embedding matrix (needs E = H)."""
    def __init__(self, vocab_size: int, embedding_dim: int, rnn: nn.Module, dropout: float = 0.0,
                 tie_weights: bool = True) -> None:
        super().__init__()
        self.embed, self.dropout, self.rnn = nn.Embedding(vocab_size, embedding_dim), nn.Dropout(dropout), rnn  # E: (V, E)
        self.head = nn.Linear(rnn.hidden_size, vocab_size)  # (H, V)
        if tie_weights:
            if rnn.hidden_size != embedding_dim:
                raise ValueError(f"expected hidden_size == embedding_dim to tie weights, got {rnn.hidden_size}, {embedding_dim}")
            self.head.weight = self.embed.weight  # one (V, E) matrix reads and writes words

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None, state=None):
        """``(logits (N, T, V), state)``; with ``lengths``, packed (the state is each row's own last step)."""
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.is_floating_point():
            raise ValueError(f"expected tokens of shape (N, T) holding integer ids, got {getattr(tokens, 'shape', tokens)}")
        x = self.dropout(self.embed(tokens))  # (N, T, E)
        if lengths is None:
            out, state = self.rnn(x, state)  # (N, T, H)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, state = self.rnn(packed, state)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=tokens.shape[1])
        return self.head(self.dropout(out)), state
# --8<-- [end:model]


def _apply(state, f):  # f on h (GRU, RNN) or on both of (h, c) (LSTM)
    return tuple(f(s) for s in state) if isinstance(state, tuple) else f(state)


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``x``, ``(x,)``, ``(x, y)`` or ``(x, lengths, y)`` → ``(x, lengths, y)``."""
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    return tuple(batch) if len(batch) == 3 else (batch[0], None, batch[1] if len(batch) == 2 else None)


# --8<-- [start:system]
class LanguageModelSystem(pl.LightningModule):
    """Cross-entropy of the next token at every step; perplexity (torchmetrics) per stage; -100 counts nowhere.

    Stateful: a batch without ``lengths`` starts from the state the previous batch of its stage and size left (the
    first of an epoch from zeros). ``words``, ``tokenizer``, ``max_prefix_tokens`` (see `encode_prefix`) are saved."""
    def __init__(self, model: nn.Module, words: list[str] | None = None, tokenizer: str = "spaces",
                 max_prefix_tokens: int = 140, lr: float = 3e-3, weight_decay: float = 0.0) -> None:
        super().__init__()
        rows = next((m.num_embeddings for m in model.modules() if isinstance(m, nn.Embedding)), None)
        if words is not None and rows not in (None, len(words)):
            raise ValueError(f"expected a model whose embedding has one row per word ({len(words)}), "
                             f"got {rows} rows: the checkpoint and the model come from different vocabularies")
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"expected tokenizer {' or '.join(map(repr, TOKENIZERS))}, got {tokenizer!r}")
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.metrics = nn.ModuleDict({f"{s}_metric": torchmetrics.text.Perplexity(ignore_index=-100)
                                      for s in ("train", "val", "test")})
        self.states = {}  # stage → the state the last batch left

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(tokens, lengths)[0]  # (N, T, V) logits

    def _step(self, batch, stage: str, batch_idx: int = 1) -> torch.Tensor:
        tokens, lengths, y = split_batch(batch)
        state = self.states.get(stage) if lengths is None and batch_idx > 0 else None  # epochs start afresh
        if state is not None and (state[0] if isinstance(state, tuple) else state).shape[1] != len(tokens):
            state = None  # another number of rows: start again
        logits, state = self.model(tokens, lengths, state)
        if lengths is None:
            self.states[stage] = _apply(state, torch.Tensor.detach)  # truncated BPTT: carry the values, cut the gradient
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100)
        self.metrics[f"{stage}_metric"].update(logits.float(), y)
        count = int((y != -100).sum())  # the epoch's loss: a mean over tokens, so exp(loss) = perplexity
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=count, sync_dist=True)
        self.log(f"{stage}_ppl", self.metrics[f"{stage}_metric"], on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train", batch_idx)

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val", batch_idx)

    def test_step(self, batch, batch_idx):
        self._step(batch, "test", batch_idx)

    def predict_step(self, batch, batch_idx):
        tokens, lengths, _ = split_batch(batch)
        return self(tokens, lengths)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
# --8<-- [end:system]


# --8<-- [start:generate]
def encode_prefix(system: LanguageModelSystem, prefix: str) -> list[int]:
    """``<eos>`` (a review starts here) + the prefix's ids, with the tokenizer and vocabulary in ``system``."""
    words, limit = system.hparams.get("words"), system.hparams.max_prefix_tokens
    if words is None:
        raise ValueError("expected a system saved with its vocabulary (LanguageModelSystem(..., words=vocab.words))")
    tokens = TOKENIZERS[system.hparams.tokenizer][0](prefix) if prefix and prefix.strip() else []
    if not tokens:
        raise ValueError(f"expected a prefix with at least one token, got {prefix!r}")
    if len(tokens) > limit:
        raise ValueError(f"expected a prefix of at most max_prefix_tokens={limit} tokens, got {len(tokens)}")
    ids = LMVocab(words).encode(tokens)
    if all(i == LMVocab.UNK for i in ids):
        raise ValueError(f"none of the tokens {tokens} of {prefix!r} is in the vocabulary ({len(words)} words)")
    return [LMVocab.EOS] + ids


def _next(system, ids: torch.Tensor, state):  # log-probabilities of the next token, <pad> and <unk> never chosen
    logits, state = system.model(ids.to(system.device), None, state)
    return logits[:, -1].float().index_fill(1, torch.tensor([LMVocab.PAD, LMVocab.UNK], device=logits.device),
                                            float("-inf")).log_softmax(-1), state


@torch.no_grad()
def generate(system: LanguageModelSystem, prefix: str, max_tokens: int = 20, temperature: float = 1.0,
             top_k: int | None = None, generator: torch.Generator | None = None) -> list[str]:
    """The tokens after ``prefix`` until ``<eos>`` or ``max_tokens``, each a draw from softmax(logits / temperature)
    over the ``top_k`` most likely tokens (all if None; ``top_k=1`` is greedy: always the most likely)."""
    if temperature <= 0 or (top_k is not None and top_k < 1):
        raise ValueError(f"expected temperature > 0 and top_k >= 1 or None, got {temperature}, {top_k}")
    system.eval()
    words, out = system.hparams.words, []
    logp, state = _next(system, torch.tensor([encode_prefix(system, prefix)]), None)
    for _ in range(max_tokens):
        scores = logp[0] / temperature
        if top_k is not None:  # all but the k highest scores → -inf
            scores = scores.masked_fill(scores < scores.topk(min(top_k, len(scores))).values[-1], float("-inf"))
        token = int(torch.multinomial(scores.softmax(-1).cpu(), 1, generator=generator))
        if token == LMVocab.EOS:
            break
        out.append(words[token])
        logp, state = _next(system, torch.tensor([[token]]), state)
    return out


@torch.no_grad()
def complete(system: LanguageModelSystem, prefix: str, top_k: int = 5, max_tokens: int = 6) -> list[tuple[str, float]]:
    """Autocomplete: the ``top_k`` most likely next tokens, each continued greedily until ``<eos>`` or
    ``max_tokens`` tokens; returns ``(continuation text, P(continuation | prefix))``, most probable first."""
    system.eval()
    words, join = system.hparams.words, TOKENIZERS[system.hparams.tokenizer][1]
    logp, state = _next(system, torch.tensor([encode_prefix(system, prefix)]), None)
    first = logp[0].topk(min(top_k, len(words) - 2))
    tokens, total = first.indices.view(-1, 1), first.values.clone()  # (k, 1), log P so far
    state = _apply(state, lambda s: s.repeat(1, len(tokens), 1))  # one copy of the prefix's state per candidate
    done = tokens[:, 0] == LMVocab.EOS
    while tokens.shape[1] < max_tokens and not done.all():
        logp, state = _next(system, tokens[:, -1:], state)
        best = logp.max(-1)
        total += torch.where(done, 0.0, best.values)
        tokens = torch.cat([tokens, torch.where(done, LMVocab.EOS, best.indices).view(-1, 1)], 1)
        done |= best.indices == LMVocab.EOS
    texts = [join([words[i] for i in row if i != LMVocab.EOS]) + (" <eos>" if LMVocab.EOS in row else " …") for row in tokens.tolist()]
    return sorted(zip(texts, total.exp().tolist()), key=lambda pair: -pair[1])
# --8<-- [end:generate]


TOY_REVIEWS = [f"{s} {a} {v}" for a in ("정말", "너무", "진짜", "조금")  # 120 made-up reviews, split by spaces
               for s in ("이 영화", "배우 연기가", "스토리가", "음악이", "결말이", "영상미가")
               for v in ("재미있어요", "최고예요", "감동적이에요", "지루해요", "별로예요")]


class StreamData(pl.LightningDataModule):
    """Reviews (a text file, one review per line, or `TOY_REVIEWS`) → shuffled (``seed``); the last
    ``val_fraction`` validates. ``words``: the training reviews' vocabulary. Batches: `StreamBatches`."""
    def __init__(self, path: str | None = None, tokenizer: str = "spaces", min_freq: int = 1, val_fraction: float = 0.2,
                 batch_size: int = 4, bptt: int = 8, seed: int = 0) -> None:
        super().__init__()
        if tokenizer not in TOKENIZERS or not 0 < val_fraction < 1:
            raise ValueError(f"expected tokenizer in {list(TOKENIZERS)} and 0 < val_fraction < 1, got {tokenizer!r}, {val_fraction}")
        texts = TOY_REVIEWS if path is None else pathlib.Path(path).read_text(encoding="utf-8").splitlines()
        tokens = [t for t in (TOKENIZERS[tokenizer][0](text) for text in texts) if t]
        order = torch.randperm(len(tokens), generator=torch.Generator().manual_seed(seed)).tolist()
        cut = len(order) - max(1, round(len(order) * val_fraction))
        vocab = LMVocab.build([tokens[i] for i in order[:cut]], min_freq)
        self.words, self.tokenizer = vocab.words, tokenizer
        self.parts = {s: StreamBatches(*stream_chunks(encode_stream([tokens[i] for i in part], vocab), batch_size, bptt))
                      for s, part in (("train", order[:cut]), ("val", order[cut:]))}

    vocab_size = property(lambda self: len(self.words))
    train_dataloader = lambda self: torch.utils.data.DataLoader(self.parts["train"], batch_size=None)  # noqa: E731
    val_dataloader = predict_dataloader = lambda self: torch.utils.data.DataLoader(self.parts["val"], batch_size=None)  # noqa: E731


def main(args: list[str] | None = None):
    """``LightningCLI`` over `LanguageModelSystem` and `StreamData` (a tied LSTM), and
    ``complete --prefix "…" [--ckpt_path file] [--top_k 5] [--max_tokens 6]``: `complete`'s answers, printed
    and returned, from ``--ckpt_path`` or the newest ``lightning_logs/*/checkpoints/*.ckpt`` (written by ``fit``)."""
    args = sys.argv[1:] if args is None else list(args)
    if args[:1] == ["complete"]:
        import argparse
        parser = argparse.ArgumentParser(prog="language_model.py complete", description=main.__doc__)
        for name, kind, default in (("prefix", str, None), ("ckpt_path", str, None), ("top_k", int, 5), ("max_tokens", int, 6)):
            parser.add_argument(f"--{name}", type=kind, default=default, required=name == "prefix")
        options = parser.parse_args(args[1:])
        path = options.ckpt_path or max(pathlib.Path("lightning_logs").glob("*/checkpoints/*.ckpt"),
                                        key=lambda p: p.stat().st_mtime, default=None)
        if path is None:
            raise FileNotFoundError("no checkpoint under lightning_logs/: run `fit` first or pass --ckpt_path")
        system = LanguageModelSystem.load_from_checkpoint(path, map_location="cpu")
        for text, p in (completions := complete(system, options.prefix, options.top_k, options.max_tokens)):
            print(f"{p:.3f}\t{options.prefix} {text}")
        return completions
    from pytorch_lightning.cli import LightningCLI

    here = __name__  # importable (see the __main__ block), so checkpoints name classes that import again
    lstm = {"class_path": "torch.nn.LSTM", "init_args": {"input_size": 32, "hidden_size": 32, "batch_first": True}}
    model = {"class_path": f"{here}.LanguageModel", "init_args": {"embedding_dim": 32, "rnn": lstm}}

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model.model": model, "trainer.max_epochs": 30, "trainer.log_every_n_steps": 1})
            for source, target in (("vocab_size", "model.model.init_args.vocab_size"), ("words", "model.words"),
                                   ("tokenizer", "model.tokenizer")):  # the data decide the vocabulary
                parser.link_arguments(f"data.{source}", target, apply_on="instantiate")

        def instantiate_classes(self):  # keep the model's class path and arguments: load_from_checkpoint rebuilds it
            super().instantiate_classes()
            self.model.hparams["model"] = self.config_dump["model"]["model"]
            self.model.hparams["model"]["init_args"]["vocab_size"] = len(self.datamodule.words)

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix
    CLI(LanguageModelSystem, StreamData, seed_everything_default=0, args=args)


if __name__ == "__main__":  # run the importable module's main: the classes a checkpoint names must import again
    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
