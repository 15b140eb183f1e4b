r"""Sentiment analysis: is a review positive or negative? A many-to-one recurrent classifier, end to end.

A review becomes tokens (Korean: Kiwi's morphemes), token ids (a vocabulary with ``<pad>`` = 0 and
``<unk>`` = 1), vectors (an embedding), and a recurrent layer reads them; the state at the review's
own last token, $h_{T_n}$ (both directions' ends for a bidirectional layer), gives one logit:

$$
h_t = \operatorname{LSTM}(e_{w_t}, h_{t-1}), \qquad z = h_{T_n} w + b, \qquad
P(\text{positive}) = \sigma(z), \qquad \ell = -y \log \sigma(z) - (1 - y) \log (1 - \sigma(z)).
$$

The baseline `BagOfWords` is logistic regression on token counts, $z = b + \sum_t \beta_{w_t}$ (no order).
`SentimentSystem` trains either and keeps the vocabulary and tokenizer in its checkpoint for `classify`.
Letters: N batch, T tokens, V vocabulary, E embedding size, H hidden units.

To run:

```bash
python lessons/sentiment.py fit --trainer.max_epochs 5          # built-in toy reviews (Kiwi morphemes)
python lessons/sentiment.py fit --data.path data/nsmc/nsmc_50k.tsv.gz --data.min_freq 2   # NSMC
python lessons/sentiment.py predict --text "연기는 좋은데 스토리가 재미없네요"   # the newest checkpoint
```

Imports: stdlib, torch, pytorch_lightning, torchmetrics (and kiwipiepy, only inside `kiwi_tokenize`).
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
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

__all__ = ["kiwi_tokenize", "Vocab", "encode_reviews", "BagOfWords", "SentimentClassifier", "SentimentSystem",
           "classify", "ReviewData", "toy_reviews"]


# --8<-- [start:tokens]
@functools.lru_cache(maxsize=1)
def _kiwi():
    try:  # imported here, and only here: the rest of the file needs no Korean tokenizer
        kiwipiepy = importlib.import_module("kiwipiepy")
    except ImportError as error:
        raise ModuleNotFoundError("kiwi_tokenize needs kiwipiepy: pip install kiwipiepy "
                                  "(or pass another tokenize function, e.g. str.split)") from error
    with warnings.catch_warnings():  # num_workers=0: one thread (kiwipiepy < 0.21 read 0 as all cores)
        warnings.simplefilter("ignore", DeprecationWarning)
        return kiwipiepy.Kiwi(num_workers=0)


def kiwi_tokenize(text: str) -> list[str]:
    """Kiwi's morphemes (forms only); punctuation and emoticons such as ㅋㅋ and ㅠㅠ are kept."""
    return [token.form for token in _kiwi().tokenize(text)]


TOKENIZERS = {"kiwi": kiwi_tokenize, "spaces": str.split}


class Vocab:
    """Token ids: 0 pads, 1 is ``<unk>`` (a token unseen in training), then the kept tokens.

    >>> vocab = Vocab.build([["좋", "다"], ["좋", "네요"], ["별로", "다"]], min_freq=2)
    >>> vocab.words, vocab.encode(["좋", "았", "다"])
    (['<pad>', '<unk>', '좋', '다'], [2, 1, 3])
    """

    PAD, UNK = 0, 1

    def __init__(self, words: list[str]) -> None:
        if list(words[:2]) != ["<pad>", "<unk>"] or len(set(words)) != len(words):
            raise ValueError(f"expected distinct words starting with '<pad>', '<unk>', got {list(words[:4])}…")
        self.words, self.index = list(words), {w: i for i, w in enumerate(words)}

    @classmethod
    def build(cls, token_lists, min_freq: int = 2) -> "Vocab":
        """Tokens seen at least ``min_freq`` times, most frequent first (ties: first seen)."""
        counts = collections.Counter(t for tokens in token_lists for t in tokens)
        return cls(["<pad>", "<unk>"] + [t for t, c in counts.most_common() if c >= min_freq])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens) -> list[int]:  # unseen tokens → 1
        return [self.index.get(t, self.UNK) for t in tokens]

    def unknown_rate(self, token_lists) -> float:  # the share of tokens that become <unk>
        ids = [i for tokens in token_lists for i in self.encode(tokens)]
        return sum(i == self.UNK for i in ids) / max(len(ids), 1)
# --8<-- [end:tokens]


def encode_reviews(texts: list[str], vocab: Vocab, tokenize=kiwi_tokenize) -> tuple[torch.Tensor, torch.Tensor]:
    """Reviews → ``(x (N, T) int64, lengths (N,))``, padded at the end; an empty review or one whose tokens
    are all unknown is refused (the model would answer from nothing but its bias)."""
    ids = []
    for text in texts:
        tokens = tokenize(text) if isinstance(text, str) and text.strip() else []
        if not tokens:
            raise ValueError(f"expected a review with at least one token, got {text!r}")
        ids.append(vocab.encode(tokens))
        if all(i == vocab.UNK for i in ids[-1]):
            raise ValueError(f"none of the tokens {tokens} of {text!r} is in the vocabulary ({len(vocab)} words)")
    lengths = torch.tensor([len(i) for i in ids])
    return pad_sequence([torch.tensor(i) for i in ids], batch_first=True), lengths  # (N, T), (N,)


# --8<-- [start:models]
class BagOfWords(nn.Module):
    r"""Logistic regression on token counts, $z = b + \sum_t \beta_{w_t}$: a (V, 1) ``EmbeddingBag`` that sums."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.beta = nn.EmbeddingBag(vocab_size, 1, mode="sum", padding_idx=0)  # (V, 1), padding adds nothing
        self.bias = nn.Parameter(torch.zeros(1))
        nn.init.zeros_(self.beta.weight)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        _check_tokens(tokens)
        return self.beta(tokens) + self.bias  # (N, 1) logits


class SentimentClassifier(nn.Module):
    """Embedding → dropout → any ``batch_first=True`` recurrent layer (packed: it never reads padding) →
    the state at each review's own end (both ends if bidirectional) → dropout → one logit, (N, 1)."""

    def __init__(self, vocab_size: int, embedding_dim: int, rnn: nn.Module, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)  # (V, E)
        self.dropout = nn.Dropout(dropout)
        self.rnn = rnn
        self.directions = 2 if getattr(rnn, "bidirectional", False) else 1
        self.head = nn.Linear(rnn.hidden_size * self.directions, 1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        _check_tokens(tokens)
        if lengths is None:
            lengths = torch.full((len(tokens),), tokens.shape[1])
        x = self.dropout(self.embed(tokens))  # (N, T, E)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h_n = state[0] if isinstance(state, tuple) else state  # (layers · directions, N, H); LSTM: (h_n, c_n)
        h = torch.cat(list(h_n[-self.directions:]), dim=-1)  # (N, directions · H): the top layer's ends
        return self.head(self.dropout(h))  # (N, 1) logits
# --8<-- [end:models]


def _check_tokens(tokens) -> None:
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.is_floating_point():
        got = f"{tuple(tokens.shape)} {tokens.dtype}" if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"expected tokens of shape (N, T) holding integer ids, got {got}")


def _rows(model: nn.Module) -> int | None:  # the vocabulary size of the model's first embedding table
    return next((m.num_embeddings for m in model.modules() if hasattr(m, "num_embeddings")), None)


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``x``, ``(x,)``, ``(x, y)`` or ``(x, lengths, y)`` → ``(x, lengths, y)``."""
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    return tuple(batch) if len(batch) == 3 else (batch[0], None, batch[1] if len(batch) == 2 else None)


# --8<-- [start:system]
class SentimentSystem(pl.LightningModule):
    """Binary cross-entropy on one logit; accuracy thresholds the logit at 0 (σ > 0.5); -100 counts nowhere.

    ``words`` (the vocabulary) and ``tokenizer`` ("kiwi" or "spaces") are saved in the checkpoint.
    """

    def __init__(self, model: nn.Module, words: list[str] | None = None, tokenizer: str = "kiwi",
                 lr: float = 2e-3, weight_decay: float = 0.0) -> None:
        super().__init__()
        if words is not None and _rows(model) not in (None, len(words)):
            raise ValueError(f"expected a model whose embedding has one row per word ({len(words)}), "
                             f"got {_rows(model)} rows: the checkpoint and the model come from different vocabularies")
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"expected tokenizer {' or '.join(map(repr, TOKENIZERS))}, got {tokenizer!r}")
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.metrics = nn.ModuleDict({f"{s}_metric": torchmetrics.Accuracy(task="binary") for s in ("train", "val", "test")})

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(tokens, lengths)  # (N, 1) logits

    def _step(self, batch, stage: str) -> torch.Tensor:
        tokens, lengths, y = split_batch(batch)
        real = y != -100
        logits = self(tokens, lengths).squeeze(-1)[real]  # (n,)
        loss = F.binary_cross_entropy_with_logits(logits, y[real].float())
        self.metrics[f"{stage}_metric"].update((logits > 0).long(), y[real])
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(tokens), sync_dist=True)
        self.log(f"{stage}_acc", self.metrics[f"{stage}_metric"], on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx):
        tokens, lengths, _ = split_batch(batch)
        return self(tokens, lengths)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
# --8<-- [end:system]


# --8<-- [start:classify]
def classify(system: SentimentSystem, texts: list[str], tokenize=None, vocab: Vocab | None = None) -> list[float]:
    """P(positive) of each review, with the vocabulary and tokenizer saved in ``system`` (``vocab``, if
    given, must be that vocabulary; ``tokenize`` replaces the saved tokenizer)."""
    words = system.hparams.get("words")
    if words is None:
        raise ValueError("expected a system saved with its vocabulary (SentimentSystem(..., words=vocab.words))")
    if vocab is not None and vocab.words != list(words):
        raise ValueError(f"the checkpoint's vocabulary ({len(words)} words) is not this vocabulary ({len(vocab)} words)")
    x, lengths = encode_reviews(texts, Vocab(words), tokenize or TOKENIZERS[system.hparams.tokenizer])
    system.eval()
    with torch.no_grad():
        return torch.sigmoid(system(x.to(system.device), lengths)).squeeze(-1).tolist()
# --8<-- [end:classify]


def toy_reviews() -> tuple[list[str], list[int]]:
    """180 made-up one-line reviews (90 positive): an aspect, an adverb, a verdict.

    >>> texts, labels = toy_reviews()
    >>> len(texts), sum(labels), texts[0]
    (180, 90, '영화가 최고예요')
    """
    aspects = ["영화가", "배우 연기가", "스토리가", "음악이", "결말이", "영상미가"]
    verdicts = {1: ["최고예요", "재미있네요", "감동적이었다", "훌륭하다", "정말 좋았어요"],
                0: ["최악이에요", "재미없네요", "지루했다", "실망스럽다", "너무 별로였어요"]}
    pairs = [(f"{adverb}{aspect} {verdict}", label) for adverb in ("", "진짜 ", "솔직히 ") for aspect in aspects
             for label in (1, 0) for verdict in verdicts[label]]
    return [text for text, _ in pairs], [label for _, label in pairs]


class ReviewData(pl.LightningDataModule):
    """Reviews → ``(x, lengths, y)`` batches: a TSV file with NSMC's columns ``id document label`` (gzip
    allowed) or, without ``path``, `toy_reviews`. The last ``val_fraction`` of a shuffle (``seed``)
    validates; ``words`` is the vocabulary of the training reviews. Reviews with no token are dropped."""

    def __init__(self, path: str | None = None, tokenizer: str = "kiwi", min_freq: int = 1, val_fraction: float = 0.2,
                 batch_size: int = 64, seed: int = 0) -> None:
        super().__init__()
        if tokenizer not in TOKENIZERS or not 0 < val_fraction < 1:
            raise ValueError(f"expected tokenizer in {list(TOKENIZERS)} and 0 < val_fraction < 1, got {tokenizer!r}, {val_fraction}")
        self.tokenizer, self.batch_size, self.seed = tokenizer, batch_size, seed
        texts, labels = toy_reviews() if path is None else _read_tsv(pathlib.Path(path))
        tokens = [TOKENIZERS[tokenizer](t) for t in texts]
        order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed)).tolist()
        cut = len(order) - round(len(order) * val_fraction)
        vocab = Vocab.build([tokens[i] for i in order[:cut]], min_freq)
        self.words = vocab.words
        self.parts = {s: [(torch.tensor(vocab.encode(tokens[i])), labels[i]) for i in part if tokens[i]]
                      for s, part in (("train", order[:cut]), ("val", order[cut:]))}

    vocab_size = property(lambda self: len(self.words))

    def _loader(self, split: str, shuffle: bool = False):
        return torch.utils.data.DataLoader(self.parts[split], self.batch_size, shuffle=shuffle, collate_fn=_pad,
                                           generator=torch.Generator().manual_seed(self.seed))

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val")

    predict_dataloader = val_dataloader


def _pad(items):  # [(ids (L,), y)] → (x (N, T), lengths (N,), y (N,))
    ids, ys = zip(*items)
    return pad_sequence(ids, batch_first=True), torch.tensor([len(i) for i in ids]), torch.tensor(ys)


def _read_tsv(path: pathlib.Path) -> tuple[list[str], list[int]]:
    import csv, gzip  # noqa: E401
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or rows[0][1:3] != ["document", "label"] or any(len(r) < 3 or r[2] not in ("0", "1") for r in rows[1:]):
        raise ValueError(f"{path}: expected NSMC's tab-separated columns id, document, label (0 or 1)")
    return [r[1] for r in rows[1:]], [int(r[2]) for r in rows[1:]]


def predict(args: list[str]) -> list[float]:
    """``predict --text "…" [--text "…"] [--ckpt_path file]``: P(positive) of each text, printed and returned.
    Without ``--ckpt_path``, the newest ``lightning_logs/*/checkpoints/*.ckpt`` (written by ``fit``)."""
    import argparse
    parser = argparse.ArgumentParser(prog="sentiment.py predict", description=predict.__doc__)
    parser.add_argument("--text", action="append", required=True, help="a review (repeat for several)")
    parser.add_argument("--ckpt_path", default=None, help="a checkpoint written by fit")
    options = parser.parse_args(args)
    path = options.ckpt_path or max(pathlib.Path("lightning_logs").glob("*/checkpoints/*.ckpt"),
                                    key=lambda p: p.stat().st_mtime, default=None)
    if path is None:
        raise FileNotFoundError("no checkpoint under lightning_logs/: run `fit` first or pass --ckpt_path")
    probabilities = classify(SentimentSystem.load_from_checkpoint(path, map_location="cpu"), options.text)
    for text, p in zip(options.text, probabilities):
        print(f"{'positive' if p > 0.5 else 'negative'}\t{p:.3f}\t{text}")
    return probabilities


def main(args: list[str] | None = None):
    """``LightningCLI`` over `SentimentSystem` and `ReviewData` (an LSTM by default); ``predict --text`` runs `predict`."""
    args = sys.argv[1:] if args is None else list(args)
    if args[:1] == ["predict"] and any(a.split("=")[0] == "--text" for a in args):
        return predict(args[1:])
    from pytorch_lightning.cli import LightningCLI

    here = __name__  # importable (see the __main__ block), so checkpoints name classes that import again
    lstm = {"class_path": "torch.nn.LSTM", "init_args": {"input_size": 32, "hidden_size": 32, "batch_first": True}}
    model = {"class_path": f"{here}.SentimentClassifier", "init_args": {"embedding_dim": 32, "rnn": lstm}}

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model.model": model, "trainer.max_epochs": 5, "trainer.log_every_n_steps": 1})
            for source, target in (("vocab_size", "model.model.init_args.vocab_size"), ("words", "model.words"),
                                   ("tokenizer", "model.tokenizer")):  # the data decide the vocabulary
                parser.link_arguments(f"data.{source}", target, apply_on="instantiate")

        def instantiate_classes(self):  # keep the model's class path and arguments: load_from_checkpoint rebuilds it
            super().instantiate_classes()
            self.model.hparams["model"] = self.config_dump["model"]["model"]
            self.model.hparams["model"]["init_args"]["vocab_size"] = len(self.datamodule.words)

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix
    CLI(SentimentSystem, ReviewData, seed_everything_default=0, args=args)


if __name__ == "__main__":  # run the importable module's main: the classes a checkpoint names must import again
    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
