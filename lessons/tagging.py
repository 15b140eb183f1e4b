r"""Part-of-speech tagging: one tag per word, read by a (bidirectional) LSTM over words and characters.

A tagger is a *synchronized many-to-many* model: for words $w_1, \dots, w_T$ it gives one
distribution over the C tags at every step,

$$
x_t = [E_{w_t} ; c_t], \qquad
h_t = [\overrightarrow{h}_t ; \overleftarrow{h}_t], \qquad
p(y_t \mid w_1, \dots, w_T) = \mathrm{softmax}(h_t W_{hy} + b_y),
$$

where $E_{w_t}$ is the word's embedding (words rarer than ``min_count`` in training share the row
``<unk>``) and $c_t$ is read off the word's characters by a small bidirectional LSTM (`CharEncoder`),
so a word never seen in training still has a spelling to go by. ``rnn`` is any ``batch_first=True``
layer: ``nn.LSTM`` (left to right), ``nn.LSTM(bidirectional=True)`` or the course's drop-ins
(``lessons.bidirectional.Bidirectional``). Padding (tag -100) counts in neither loss nor accuracy.
Letters: N sentences, T words, W characters per word, V words, C tags.

To run:

```bash
python lessons/tagging.py fit --trainer.max_epochs 30     # a dozen built-in sentences (--help: all options)
python lessons/tagging.py fit --data.conllu data/ud/en_ewt-ud-test.conllu.gz --trainer.max_epochs 10
python lessons/tagging.py predict --text "i work at google"   # tags with the newest checkpoint of fit
```

``predict`` splits the text at whitespace (English words, Korean eojeols: no morpheme analyser needed);
the vocabulary travels inside the checkpoint. Imports: stdlib, torch, pytorch_lightning, torchmetrics.
"""

from __future__ import annotations

import collections
import gzip
import warnings

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["read_conllu", "build_vocab", "encode", "collate", "MostFrequentTag", "CharEncoder", "PosTagger",
           "TaggingSystem", "tag", "TaggingData", "TOY_SENTENCES"]

TOY_SENTENCES = [(s.split(), t.split()) for s, t in (  # with UD's UPOS tags: the command line's default data
    ("i work at google", "PRON VERB ADP PROPN"), ("she works at a bank", "PRON VERB ADP DET NOUN"),
    ("we live in seoul", "PRON VERB ADP PROPN"), ("they play in the park", "PRON VERB ADP DET NOUN"),
    ("my friend works in london", "PRON NOUN VERB ADP PROPN"), ("the work is hard", "DET NOUN AUX ADJ"),
    ("he reads a book at home", "PRON VERB DET NOUN ADP NOUN"), ("you play the piano", "PRON VERB DET NOUN"),
    ("the bank is in seoul", "DET NOUN AUX ADP PROPN"), ("i like my work", "PRON VERB PRON NOUN"),
    ("a friend lives in the city", "DET NOUN VERB ADP DET NOUN"), ("she is kind", "PRON AUX ADJ"))]


# --8<-- [start:data]
def read_conllu(path: str) -> list[tuple[list[str], list[str]]]:
    """``(words, tags)`` per sentence of a CoNLL-U file (gzip or plain): FORM and UPOS of the word lines.

    Multiword-token ranges (``1-2``) and empty nodes (``8.1``) are skipped; comments start with ``#``.
    """
    with (gzip.open if str(path).endswith(".gz") else open)(path, "rt", encoding="utf-8") as f:
        blocks = f.read().split("\n\n")  # one sentence per block; word lines have an integer id
    rows = [[c for c in (line.split("\t") for line in b.splitlines()) if len(c) == 10 and c[0].isdigit()] for b in blocks]
    return [([c[1] for c in r], [c[3] for c in r]) for r in rows if r]


def build_vocab(sentences, min_count: int = 2, tags=None) -> dict[str, list[str]]:
    """Words (lower-cased, seen ``min_count`` times), characters and tags (default: the sentences')
    of the training sentences; index 0 pads and 1 is ``<unk>`` in ``words`` and ``chars``."""
    counts = collections.Counter(w.lower() for words, _ in sentences for w in words)
    chars = collections.Counter(c for words, _ in sentences for w in words for c in w)
    return {"words": ["<pad>", "<unk>", *sorted(w for w, n in counts.items() if n >= min_count)],
            "chars": ["<pad>", "<unk>", *sorted(chars)],
            "tags": sorted(tags if tags is not None else {t for _, ts in sentences for t in ts})}


def encode(vocab: dict, words: list[str], tags: list[str] | None = None, max_chars: int = 20):
    """Ids of one sentence: tokens (T, 1 + W) — column 0 the word, then its first W ≤ ``max_chars``
    characters, 0 after the word's end — and tag ids (T,) (None without tags)."""
    if not words:
        raise ValueError("expected a sentence of at least one word, got none")
    if tags is not None and len(tags) != len(words):
        raise ValueError(f"expected one tag per word: {len(words)} words, got {len(tags)} tags")
    index = {name: {s: i for i, s in enumerate(vocab[name])} for name in ("words", "chars", "tags")}
    if set(tags or ()) - set(index["tags"]):
        raise ValueError(f"expected tags among {vocab['tags']}, got {sorted(set(tags) - set(index['tags']))}")
    tokens = torch.zeros(len(words), 1 + min(max_chars, max(map(len, words))), dtype=torch.long)  # (T, 1 + W)
    for t, word in enumerate(words):
        ids = [index["words"].get(word.lower(), 1)] + [index["chars"].get(c, 1) for c in word[:max_chars]]
        tokens[t, : len(ids)] = torch.tensor(ids)
    return tokens, None if tags is None else torch.tensor([index["tags"][s] for s in tags])


def collate(items) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(tokens (T, 1 + W), tags (T,))`` items → ``(x (N, T, 1 + W), lengths (N,), y (N, T))``; y is -100 at padding."""
    lengths = torch.tensor([len(x) for x, _ in items])
    x = torch.zeros(len(items), int(lengths.max()), max(x.shape[1] for x, _ in items), dtype=torch.long)
    y = torch.full(x.shape[:2], -100, dtype=torch.long)
    for i, (tokens, tags) in enumerate(items):
        x[i, : len(tokens), : tokens.shape[1]] = tokens
        y[i, : len(tags)] = tags
    return x, lengths, y
# --8<-- [end:data]


# --8<-- [start:baseline]
class MostFrequentTag:
    """The baseline: each word's most frequent training tag, without context; a word the training
    sentences never showed gets the most frequent tag of all. Words are compared lower-cased."""

    def __init__(self, sentences) -> None:
        counts = collections.Counter((w.lower(), t) for words, tags in sentences for w, t in zip(words, tags))
        self.tags = {w: t for (w, t), _ in sorted(counts.items(), key=lambda item: item[1])}  # most frequent last
        self.default = collections.Counter(t for _, tags in sentences for t in tags).most_common(1)[0][0]

    def __call__(self, words: list[str]) -> list[str]:
        return [self.tags.get(w.lower(), self.default) for w in words]
# --8<-- [end:baseline]


# --8<-- [start:models]
class CharEncoder(nn.Module):
    """A word's vector from its characters: a bidirectional ``rnn`` (``batch_first=True``) reads them;
    its forward state after the last character and backward state after the first, joined."""

    def __init__(self, num_chars: int, char_dim: int, rnn: nn.Module) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_chars, char_dim, padding_idx=0)  # (V_c, E_c)
        self.rnn = rnn
        self.output_size = rnn.hidden_size * (2 if rnn.bidirectional else 1)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        """(M, W) character ids of M words, 0 after each word's end → (M, output_size)."""
        lengths = (chars != 0).sum(1).clamp(min=1)  # every word has at least one character
        packed = pack_padded_sequence(self.embed(chars), lengths.cpu(), batch_first=True, enforce_sorted=False)
        h_n = self.rnn(packed)[1]
        h_n = h_n[0] if isinstance(h_n, tuple) else h_n  # an LSTM's (h_n, c_n): keep h_n (directions, M, H_c)
        return torch.cat(list(h_n[-(2 if self.rnn.bidirectional else 1):]), dim=-1)  # (M, 2 H_c)


class PosTagger(nn.Module):
    """Many-to-many tagger: word embedding (+ `CharEncoder` of its characters) → ``rnn`` → a tag per word.
    ``tokens``: (N, T) word ids, or (N, T, 1 + W) from `encode` (needed with ``chars``). With ``lengths``
    the layer reads packed input: padding never changes a tag. Without ``chars``: the bidirectional lesson's Tagger."""

    def __init__(self, vocab_size: int, embedding_dim: int, rnn: nn.Module, num_tags: int,
                 chars: CharEncoder | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)  # (V, E)
        self.rnn = rnn
        self.head = nn.Linear(rnn.hidden_size * (2 if rnn.bidirectional else 1), num_tags)
        self.chars, self.dropout = chars, nn.Dropout(dropout)
        expected = embedding_dim + (chars.output_size if chars is not None else 0)
        if rnn.input_size != expected:
            raise ValueError(f"expected an rnn with input_size = embedding_dim + characters' output = {expected}, "
                             f"got {rnn.input_size}")

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() not in (2, 3) or tokens.is_floating_point() or \
                (self.chars is not None and (tokens.dim() != 3 or tokens.shape[-1] < 2)):
            got = f"{tuple(tokens.shape)} {tokens.dtype}" if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise ValueError(f"expected tokens of shape {'(N, T, 1 + W)' if self.chars else '(N, T)'} of ids, got {got}")
        words = tokens[..., 0] if tokens.dim() == 3 else tokens  # (N, T)
        x = self.embed(words)  # (N, T, E)
        if self.chars is not None:  # characters of the real words only, never of the padding
            real = torch.ones_like(words, dtype=torch.bool) if lengths is None else \
                torch.arange(words.shape[1], device=words.device) < lengths.to(words.device).unsqueeze(1)
            spelled = self.chars(tokens[..., 1:][real])  # (M, 2 H_c)
            c = spelled.new_zeros(*words.shape, spelled.shape[-1])
            c[real] = spelled
            x = torch.cat([x, c.to(x.dtype)], dim=-1)  # (N, T, E + 2 H_c)
        x = self.dropout(x)
        if lengths is None:
            return self.head(self.dropout(self.rnn(x)[0]))  # (N, T, C)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        hs, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=words.shape[1])
        return self.head(self.dropout(hs))  # (N, T, C)
# --8<-- [end:models]


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``x``, ``(x,)``, ``(x, y)`` or ``(x, lengths, y)`` → ``(x, lengths, y)``."""
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    return tuple(batch) if len(batch) == 3 else (batch[0], None, batch[1] if len(batch) == 2 else None)


# --8<-- [start:system]
class TaggingSystem(pl.LightningModule):
    """Trains a tagger with cross-entropy; tags of -100 (padding) count in neither the loss nor the accuracy.
    ``vocab`` (`build_vocab`) is a hyperparameter, so a checkpoint tags text on its own (`tag`)."""

    def __init__(self, model: nn.Module, vocab: dict | None = None, lr: float = 3e-3) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.metrics = nn.ModuleDict({f"{s}_metric": torchmetrics.MeanMetric() for s in ("train", "val", "test")})
        rows = {k: getattr(m, "num_embeddings", getattr(m, "out_features", None)) for k, m in (  # a PosTagger's sizes
            ("words", getattr(model, "embed", None)), ("tags", getattr(model, "head", None)),
            ("chars", getattr(getattr(model, "chars", None), "embed", None)))}
        wrong = [f"{k}: {len(vocab[k])} and {n}" for k, n in rows.items() if vocab and n and len(vocab[k]) != n]
        if wrong:
            raise ValueError(f"expected a model sized like the vocabulary, got (vocabulary, model) {', '.join(wrong)}")

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(tokens) if lengths is None else self.model(tokens, lengths)

    def _step(self, batch, stage: str) -> torch.Tensor:
        tokens, lengths, tags = split_batch(batch)
        logits, target = self(tokens, lengths).flatten(0, 1), tags.flatten()  # (N·T, C), (N·T,)
        loss = F.cross_entropy(logits, target, ignore_index=-100)
        real = target != -100
        self.metrics[f"{stage}_metric"].update((logits.argmax(-1)[real] == target[real]).float())
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True,
                 batch_size=int(real.sum()), sync_dist=True)  # the epoch's loss: a mean over real words
        self.log(f"{stage}_acc", self.metrics[f"{stage}_metric"], prog_bar=True, on_step=False, on_epoch=True)
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
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["vocab"] = self.hparams.vocab  # apart from the hyperparameters, which loading may override

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if checkpoint.get("vocab") != self.hparams.vocab:
            raise ValueError("expected a checkpoint made with this system's vocabulary, got one with another vocabulary")


@torch.no_grad()
def tag(system: TaggingSystem, words: list[str] | str) -> tuple[list[str], torch.Tensor]:
    """Tags of one sentence (words, or a text split at whitespace) and their probabilities (T, C),
    columns in the order of ``system.hparams.vocab["tags"]``."""
    vocab = system.hparams.vocab
    if vocab is None:
        raise ValueError("expected a system that holds its vocabulary (TaggingSystem(model, vocab=...)), got none")
    words = words.split() if isinstance(words, str) else list(words)
    tokens, _ = encode(vocab, words)  # raises on an empty sentence
    system.eval()
    p = system(tokens.unsqueeze(0).to(system.device), torch.tensor([len(words)])).softmax(-1)[0].cpu()  # (T, C)
    return [vocab["tags"][i] for i in p.argmax(-1).tolist()], p
# --8<-- [end:system]


class TaggingData(pl.LightningDataModule):
    """A CoNLL-U file's sentences (or `TOY_SENTENCES`) split with ``seed``: ``fractions`` train and validate, the
    rest tests. ``vocab`` is the training split's (tags: all splits'); batches ``(x, lengths, y)`` by `collate`."""

    def __init__(self, conllu: str | None = None, fractions: tuple[float, float] = (0.8, 0.1), seed: int = 0,
                 min_count: int = 2, batch_size: int = 32) -> None:
        super().__init__()
        everything = TOY_SENTENCES if conllu is None else read_conllu(conllu)
        order = torch.randperm(len(everything), generator=torch.Generator().manual_seed(seed)).tolist()
        cut = [int(len(order) * fractions[0]), int(len(order) * (fractions[0] + fractions[1]))]
        parts = order[: cut[0]], order[cut[0] : cut[1]], order[cut[1] :]
        self.sentences = {s: [everything[i] for i in part] for s, part in zip(("train", "val", "test"), parts)}
        self.vocab = build_vocab(self.sentences["train"], min_count, {t for _, ts in everything for t in ts})
        self.items = {s: [encode(self.vocab, w, t) for w, t in part] for s, part in self.sentences.items()}
        self.batch_size, self.seed = batch_size, seed

    def _loader(self, split: str, shuffle: bool = False):
        return torch.utils.data.DataLoader(self.items[split] or self.items["train"], self.batch_size, shuffle=shuffle,
                                           collate_fn=collate, generator=torch.Generator().manual_seed(self.seed))

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val")

    def test_dataloader(self):
        return self._loader("test")

    predict_dataloader = test_dataloader


def main(args: list[str] | None = None) -> None:
    """``LightningCLI`` over `TaggingSystem`; defaults: a bidirectional LSTM with characters on the toy.
    ``predict --text`` tags a sentence with the newest checkpoint instead."""
    import sys
    from pytorch_lightning.cli import LightningCLI

    argv = sys.argv[1:] if args is None else args
    if argv[:1] == ["predict"] and any(a.startswith("--text") for a in argv):  # tag the text with fit's checkpoint
        import argparse, pathlib  # noqa: E401
        parser = argparse.ArgumentParser(prog="tagging.py predict", description="tag a text with fit's checkpoint")
        parser.add_argument("--text", required=True, help="words (or Korean eojeols) separated by spaces")
        parser.add_argument("--ckpt_path", help="default: the newest lightning_logs/*/checkpoints/*.ckpt here")
        options = parser.parse_args(argv[1:])
        path = options.ckpt_path or max(pathlib.Path().glob("lightning_logs/*/checkpoints/*.ckpt"),
                                        key=lambda p: p.stat().st_mtime, default=None)
        if path is None:
            raise SystemExit("error: no checkpoint; run `python lessons/tagging.py fit` first, or give --ckpt_path")
        system = TaggingSystem.load_from_checkpoint(path, map_location="cpu")
        try:
            tags, p = tag(system, options.text)
        except ValueError as error:  # an empty text
            raise SystemExit(f"error: {error}") from None
        known = [w.lower() in set(system.hparams.vocab["words"][2:]) for w in options.text.split()]
        for word, t, q, k in zip(options.text.split(), tags, p.max(-1).values.tolist(), known):
            print(f"{word}\t{t}\t{q:.2f}" + ("" if k else "\t(unknown word)"))
        if not any(known):
            print("note: every word is unknown to the vocabulary; the tags come from spelling and position only")
        return
    here = __name__  # importable (see the __main__ block), so checkpoints name classes that import again
    lstm = lambda d, h: {"class_path": "torch.nn.LSTM", "init_args": dict(input_size=d, hidden_size=h,  # noqa: E731
                                                                          batch_first=True, bidirectional=True)}
    chars = {"class_path": f"{here}.CharEncoder", "init_args": {"num_chars": 2, "char_dim": 16, "rnn": lstm(16, 16)}}
    model = {"class_path": f"{here}.PosTagger", "init_args": dict(vocab_size=2, embedding_dim=32, num_tags=1,
                                                                  rnn=lstm(64, 32), chars=chars)}  # sized by the data

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model.model": model, "data": {"class_path": f"{here}.TaggingData"},
                                 "trainer.max_epochs": 30, "trainer.log_every_n_steps": 1})

        def instantiate_classes(self):  # size the model like the data's vocabulary, which the system keeps
            config = self.config[self.subcommand] if self.subcommand else self.config
            data = self._parser(self.subcommand).instantiate_classes(config).get("data")
            self.__dict__.pop("config_dump", None)  # dumped while sizing: dump again with the sizes below
            if data is not None and hasattr(data, "vocab"):
                m, v = config["model"]["model"]["init_args"], data.vocab
                m["vocab_size"], m["num_tags"], config["model"]["vocab"] = len(v["words"]), len(v["tags"]), v
                if m.get("chars"):
                    m["chars"]["init_args"]["num_chars"] = len(v["chars"])
            super().instantiate_classes()
            # the system ignores its model object; its class path and arguments let load_from_checkpoint rebuild it
            self.model.hparams["model"] = self.config_dump["model"]["model"]

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix
    CLI(TaggingSystem, TaggingData, subclass_mode_data=True, seed_everything_default=0, args=args)


if __name__ == "__main__":  # run the importable module's main: the classes a checkpoint names must import again
    import importlib, pathlib  # noqa: E401
    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
