r"""Translation: an encoder–decoder (sequence to sequence, delayed many-to-many) with optional attention.

The encoder reads the source into states $h_1 \dots h_S$ (both directions' if bidirectional); the decoder starts
from $s_0 = \tanh(W_b h_{\text{end}} + b_b)$ and writes one token a step, $s_t = \operatorname{GRU}([e_{y_{t-1}}; c_t], s_{t-1})$,
$P(y_t \mid y_{<t}, x) = \operatorname{softmax}(W_o [s_t; c_t] + b_o)$. Without attention there is no $c_t$: all the
decoder knows of the source is $s_0$. Additive (Bahdanau) attention recomputes a context at every step,

$$
\text{score}_{tj} = v^\top \tanh(W_s s_{t-1} + W_h h_j), \qquad
\alpha_{tj} = \operatorname{softmax}_{j \le S_n}(\text{score}_{tj}), \qquad c_t = \textstyle\sum_j \alpha_{tj} h_j,
$$

over the sentence's own $S_n$ tokens (padding masked). Training feeds the reference $y_{t-1}$ (teacher forcing);
decoding feeds the model's own tokens, greedily or by beam search ranking finished hypotheses by
$\log P(y \mid x) / \text{lp}(y)$, $\text{lp}(y) = ((5 + |y|) / 6)^\alpha$ (GNMT; $|y|$ counts ``<eos>``). Letters: N batch,
S source and T target tokens, V vocabulary, E embedding, H hidden, A attention units.

To run: (kiwipiepy is imported only inside `kiwi_morphemes`; tokenizer "spaces" takes morphemes split by spaces)

```bash
python lessons/seq2seq.py fit --trainer.max_epochs 20   # the repository's Tatoeba pairs, Kiwi morphemes → English
python lessons/seq2seq.py translate --text "난 널 사랑해" --beam 5   # fit's newest checkpoint
```
"""

import collections
import functools
import importlib
import pathlib
import re
import sys

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torchmetrics.text import SacreBLEUScore

PAD, UNK, BOS, EOS = 0, 1, 2, 3
TARGET_SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")  # the target vocabulary's first words


def english_words(text: str) -> list[str]:
    """Lower-cased words, punctuation split off: ``"I'm OK."`` → ``["i'm", "ok", "."]``."""
    return re.findall(r"[a-z0-9]+(?:'[a-z0-9]+)*|[^\sa-z0-9]", text.lower())


def detokenize(words: list[str]) -> str:
    """Words → one string for BLEU: spaces, none before ``. , ! ? ; :`` (SacreBLEU's 13a splits them again)."""
    return re.sub(r" (?=[.,!?;:])", "", " ".join(words))


@functools.lru_cache(maxsize=1)
def _load_kiwi():  # kiwipiepy is imported here, and only here
    try:
        return importlib.import_module("kiwipiepy").Kiwi(num_workers=0)
    except ImportError as error:
        raise ModuleNotFoundError("Korean morphemes need kiwipiepy (pip install kiwipiepy), or use tokenizer 'spaces'") from error


def kiwi_morphemes(text: str) -> list[str]:
    """Kiwi's morphemes (forms), punctuation kept."""
    return [token.form for token in _load_kiwi().tokenize(text)]


TOKENIZERS = {"kiwi": kiwi_morphemes, "spaces": str.split}


class Vocabulary:
    """Token ids: ``<pad>`` = 0, ``<unk>`` = 1 (targets add ``<bos>`` = 2, ``<eos>`` = 3), then the kept tokens."""

    def __init__(self, words: list[str]) -> None:
        if list(words[:2]) != ["<pad>", "<unk>"] or len(set(words)) != len(words):
            raise ValueError(f"expected distinct words starting with '<pad>', '<unk>', got {list(words[:4])}…")
        self.words, self.index = list(words), {w: i for i, w in enumerate(words)}

    @classmethod
    def build(cls, token_lists, min_freq: int = 1, specials=("<pad>", "<unk>")) -> "Vocabulary":
        counts = collections.Counter(t for tokens in token_lists for t in tokens)  # most frequent first
        return cls(list(specials) + [t for t, c in counts.most_common() if c >= min_freq and t not in specials])

    def encode(self, tokens) -> list[int]:
        return [self.index.get(t, UNK) for t in tokens]

    def decode(self, ids: list[int]) -> list[str]:  # up to <eos>, without <pad> and <bos>
        return [self.words[i] for i in ids[:ids.index(EOS) if EOS in ids else None] if i not in (PAD, BOS)]


# --8<-- [start:encoder]
class Encoder(nn.Module):
    """Embedding → any ``batch_first=True`` layer, packed (padding never read) → memory (N, S, K·H), final (N, K·H)."""

    def __init__(self, rnn: nn.Module, vocab_size: int, embedding_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        if rnn.input_size != embedding_dim or not rnn.batch_first:
            raise ValueError(f"expected a batch_first=True layer with input_size {embedding_dim}, got {rnn}")
        self.embed, self.rnn, self.dropout = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD), rnn, nn.Dropout(dropout)
        self.directions = 2 if rnn.bidirectional else 1  # K; memory and final are K·H wide
        self.output_size = rnn.hidden_size * self.directions

    def forward(self, src: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        packed = pack_padded_sequence(self.dropout(self.embed(src)), lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.rnn(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])  # (N, S, K·H)
        return memory, torch.cat(list(h_n[-self.directions:]), dim=-1)  # the top layer's ends: (N, K·H)
# --8<-- [end:encoder]


# --8<-- [start:attention]
class AdditiveAttention(nn.Module):
    r"""Bahdanau: $v^\top \tanh(W_s s + W_h h_j)$, a softmax over the real positions, context $\sum_j \alpha_j h_j$."""

    def __init__(self, query_size: int, memory_size: int, attention_size: int) -> None:
        super().__init__()
        self.W_s = nn.Linear(query_size, attention_size, bias=False)  # H_dec → A
        self.W_h = nn.Linear(memory_size, attention_size)  # K·H → A, once per sentence
        self.v, self.memory_size = nn.Linear(attention_size, 1, bias=False), memory_size

    def forward(self, query, memory, mask, keys=None) -> tuple[torch.Tensor, torch.Tensor]:
        """query (N, H_dec), memory (N, S, K·H), mask (N, S) True at real tokens → context (N, K·H), weights (N, S)."""
        keys = self.W_h(memory) if keys is None else keys  # (N, S, A)
        scores = self.v(torch.tanh(keys + self.W_s(query).unsqueeze(1))).squeeze(-1)  # (N, S)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # padding: exactly 0
        return torch.bmm(weights.unsqueeze(1), memory).squeeze(1), weights
# --8<-- [end:attention]


# --8<-- [start:decoder]
class Decoder(nn.Module):
    """A step: embed ``y_{t-1}`` (+ context ``c_t`` with ``attention``) → GRU-like ``batch_first`` layer → logits of ``[s_t; c_t]``."""

    def __init__(self, rnn: nn.Module, vocab_size: int, embedding_dim: int, attention: nn.Module | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        context = attention.memory_size if attention is not None else 0
        if rnn.input_size != embedding_dim + context or not rnn.batch_first or rnn.bidirectional:
            raise ValueError(f"expected a one-direction batch_first=True layer, input_size {embedding_dim} + {context}, got {rnn}")
        self.embed, self.rnn, self.attention = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD), rnn, attention
        self.dropout, self.out = nn.Dropout(dropout), nn.Linear(rnn.hidden_size + context, vocab_size)

    def step(self, y_prev, state, memory, mask, keys=None):
        """y_prev (N,) ids, state (layers, N, H) → logits (N, V), the new state, attention weights (N, S) or None."""
        e = self.dropout(self.embed(y_prev))  # (N, E)
        if self.attention is None:
            out, state = self.rnn(e.unsqueeze(1), state)
            return self.out(self.dropout(out[:, 0])), state, None
        context, weights = self.attention(state[-1], memory, mask, keys)  # from s_{t-1}
        out, state = self.rnn(torch.cat([e, context], dim=-1).unsqueeze(1), state)
        return self.out(self.dropout(torch.cat([out[:, 0], context], dim=-1))), state, weights
# --8<-- [end:decoder]


# --8<-- [start:seq2seq]
class Seq2Seq(nn.Module):
    r"""`Encoder` + `Decoder` + the bridge $s_0 = \tanh(W_b h_{end} + b_b)$; ``forward`` is teacher forcing."""

    def __init__(self, encoder: Encoder, decoder: Decoder) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.bridge = nn.Linear(encoder.output_size, decoder.rnn.hidden_size)

    def start(self, src: torch.Tensor, lengths: torch.Tensor | None = None):
        if not isinstance(src, torch.Tensor) or src.dim() != 2 or src.is_floating_point():
            raise ValueError(f"expected source ids of shape (N, S), integers, got {getattr(src, 'shape', type(src))}")
        lengths = torch.full((len(src),), src.shape[1]) if lengths is None else lengths.cpu()
        memory, final = self.encoder(src, lengths)
        mask = torch.arange(src.shape[1], device=src.device) < lengths.to(src.device).unsqueeze(1)  # (N, S)
        keys = self.decoder.attention.W_h(memory) if self.decoder.attention is not None else None
        state = torch.tanh(self.bridge(final)).unsqueeze(0).repeat(self.decoder.rnn.num_layers, 1, 1)
        return memory, mask, keys, state, lengths

    def forward(self, src, lengths=None, tgt_in=None) -> torch.Tensor:
        """Teacher forcing: ``tgt_in`` (N, T) = ``<bos> y_1 … y_{T-1}`` → logits (N, T, V) for ``y_1 … y_T``."""
        memory, mask, keys, state, _ = self.start(src, lengths)
        logits = []
        for t in range(tgt_in.shape[1]):  # the reference token goes in, whatever the model predicted
            step, state, _ = self.decoder.step(tgt_in[:, t], state, memory, mask, keys)
            logits.append(step)
        return torch.stack(logits, dim=1)

    @torch.no_grad()
    def greedy(self, src, lengths=None, max_len: int | None = None):
        """Argmax fed back until ``<eos>`` or ``max_len`` (2·S_n + 10): ids (no ``<eos>``), attention maps (steps, S_n) or None."""
        memory, mask, keys, state, lengths = self.start(src, lengths)
        limits, steps, maps = torch.full_like(lengths, max_len) if max_len else 2 * lengths + 10, [], []
        y, done = torch.full((len(src),), BOS, device=src.device), torch.zeros(len(src), dtype=torch.bool)
        while not done.all():
            logits, state, weights = self.decoder.step(y, state, memory, mask, keys)
            steps.append(y := logits.argmax(-1))
            maps.append(weights)
            done |= (y.cpu() == EOS) | (len(steps) >= limits)
        out = [row[:n][:row[:n].index(EOS) if EOS in row[:n] else None] for row, n in zip(torch.stack(steps, 1).tolist(), limits.tolist())]
        maps = None if maps[0] is None else torch.stack(maps, 1)  # (N, steps, S)
        return out, maps if maps is None else [maps[i, :min(len(o) + 1, m), :n]
                                               for i, (o, n, m) in enumerate(zip(out, lengths.tolist(), limits.tolist()))]

    @torch.no_grad()
    def beam_search(self, src, lengths=None, beam: int = 5, alpha: float = 0.6, max_len: int | None = None):
        """``beam`` hypotheses per sentence (alone); ``<eos>`` finishes one, scored log P / ((5 + |y|) / 6)^α; ``beam`` end it."""
        memory, mask, keys, state, lengths = self.start(src, lengths)
        results, lp = [], lambda length: ((5 + length) / 6) ** alpha  # GNMT's length penalty
        for i, n in enumerate(lengths.tolist()):
            mem, m, k_i = memory[i:i + 1, :n], mask[i:i + 1, :n], None if keys is None else keys[i:i + 1, :n]
            hyps, scores, st, finished = [[]], torch.zeros(1), state[:, i:i + 1], []
            for _ in range(max_len or 2 * n + 10):
                k, last = len(hyps), torch.tensor([h[-1] if h else BOS for h in hyps], device=src.device)
                logits, st, _ = self.decoder.step(last, st, mem.expand(k, -1, -1), m.expand(k, -1),
                                                  None if k_i is None else k_i.expand(k, -1, -1))
                total = (scores.unsqueeze(1) + F.log_softmax(logits.float().cpu(), -1)).flatten()  # (k·V,)
                alive, keep = [], []
                for score, index in zip(*total.topk(min(2 * beam, total.numel()))):
                    h, token = divmod(int(index), logits.shape[-1])
                    if token == EOS:
                        finished.append((float(score) / lp(len(hyps[h]) + 1), hyps[h]))
                    elif len(alive) < beam:
                        alive.append(hyps[h] + [token])
                        keep.append((h, float(score)))
                if len(finished) >= beam:
                    break
                hyps, scores, st = alive, torch.tensor([s for _, s in keep]), st[:, [h for h, _ in keep]]
            else:  # the length limit: unfinished hypotheses compete too
                finished += [(float(s) / lp(len(h)), h) for h, s in zip(hyps, scores)]
            results.append(max(finished, key=lambda f: f[0])[1])
        return results
# --8<-- [end:seq2seq]


class Seq2SeqSystem(pl.LightningModule):
    """Teacher-forced cross-entropy (``<pad>`` ignored); validation and test decode greedily for corpus BLEU (SacreBLEU's
    ``13a`` on detokenised words; an ``<unk>`` never matches). ``source_words``, ``target_words``, ``tokenizer`` are saved."""

    def __init__(self, model: nn.Module, source_words: list[str] | None = None, target_words: list[str] | None = None,
                 tokenizer: str = "spaces", lr: float = 3e-3) -> None:
        super().__init__()
        rows = lambda m: m.num_embeddings if isinstance(m, nn.Embedding) else m.out_features  # noqa: E731
        for words, layer, side in ((source_words, model.encoder.embed, "source"), (target_words, model.decoder.out, "target")):
            if words is not None and rows(layer) != len(words):
                raise ValueError(f"expected a model with one {side} row per word ({len(words)}), got {rows(layer)} rows: "
                                 "the checkpoint and the model come from different vocabularies")
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"expected tokenizer {' or '.join(map(repr, TOKENIZERS))}, got {tokenizer!r}")
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.metrics = nn.ModuleDict({f"{s}_metric": SacreBLEUScore(tokenize="13a") for s in ("val", "test")})

    def forward(self, src, lengths=None, tgt_in=None) -> torch.Tensor:
        return self.model(src, lengths, tgt_in)  # (N, T, V)

    def _step(self, batch, stage: str) -> torch.Tensor:
        src, lengths, tgt = batch  # tgt (N, T + 1) = <bos> y_1 … y_T <eos>, padded with 0
        logits = self(src, lengths, tgt[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1).float(), tgt[:, 1:].flatten(), ignore_index=PAD)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(src), sync_dist=True)
        if stage != "train" and self.hparams.target_words is not None:
            vocab, hyps = Vocabulary(self.hparams.target_words), self.model.greedy(src, lengths)[0]
            text = lambda ids, unk: detokenize([unk if w == "<unk>" else w for w in vocab.decode(ids)])  # noqa: E731
            self.metrics[f"{stage}_metric"].update([text(h, "UNK") for h in hyps], [[text(r, "OOV")] for r in tgt[:, 1:].tolist()])
            self.log(f"{stage}_bleu", self.metrics[f"{stage}_metric"], on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx):  # src, (src,), (src, lengths) or (src, lengths, tgt) → greedy ids (N, L)
        src, lengths = (batch, None) if isinstance(batch, torch.Tensor) else (batch[0], (list(batch) + [None])[1])
        return pad_sequence([torch.tensor(h + [EOS]) for h in self.model.greedy(src, lengths)[0]], batch_first=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def translate(system: Seq2SeqSystem, texts: list[str], beam: int = 1, alpha: float = 0.6, tokenize=None) -> list[str]:
    """Each text translated with the vocabularies and tokenizer saved in ``system``: greedy (``beam=1``) or beam search."""
    if system.hparams.get("source_words") is None or system.hparams.get("target_words") is None:
        raise ValueError("expected a system saved with its vocabularies (Seq2SeqSystem(..., source_words=…, target_words=…))")
    source, target, ids = Vocabulary(system.hparams.source_words), Vocabulary(system.hparams.target_words), []
    for text in texts:
        tokens = (tokenize or TOKENIZERS[system.hparams.tokenizer])(text) if isinstance(text, str) and text.strip() else []
        if not tokens:
            raise ValueError(f"expected a sentence with at least one token, got {text!r}")
        if all(i == UNK for i in source.encode(tokens)):
            raise ValueError(f"none of the tokens {tokens} of {text!r} is in the source vocabulary ({len(source.words)} words)")
        ids.append(torch.tensor(source.encode(tokens)))
    src, lengths = pad_sequence(ids, batch_first=True).to(system.device), torch.tensor([len(i) for i in ids])
    system.eval()
    hyps = system.model.greedy(src, lengths)[0] if beam == 1 else system.model.beam_search(src, lengths, beam, alpha)
    return [detokenize(target.decode(h)) for h in hyps]


class GRUSeq2Seq(Seq2Seq):
    """``nn.GRU`` `Seq2Seq` from sizes: ``attention`` → bidirectional encoder (H/2 a direction) + `AdditiveAttention`."""

    def __init__(self, source_size: int, target_size: int, embedding_dim: int = 32, hidden_size: int = 64,
                 attention: bool = True, dropout: float = 0.0) -> None:
        E, H = embedding_dim, hidden_size
        encoder = Encoder(nn.GRU(E, H // 2 if attention else H, batch_first=True, bidirectional=attention), source_size, E, dropout)
        decoder = Decoder(nn.GRU(E + H if attention else E, H, batch_first=True), target_size, E,
                          AdditiveAttention(H, H, H) if attention else None, dropout)
        super().__init__(encoder, decoder)


def main(args: list[str] | None = None):
    """``LightningCLI`` over `Seq2SeqSystem` and a data module (default ``lessons.datasets.TranslationData``; yours needs the
    attributes linked below), or ``translate --text "…" [--ckpt_path …] [--beam 5] [--alpha 0.6]`` (default: fit's newest)."""
    args = sys.argv[1:] if args is None else list(args)
    if args[:1] == ["translate"]:
        import argparse
        parser = argparse.ArgumentParser(prog="seq2seq.py translate", description="translate with a checkpoint of fit")
        for flag, kwargs in (("--text", dict(action="append", required=True, help="a sentence (repeat for several)")),
                             ("--ckpt_path", dict(help="a checkpoint written by fit (default: the newest)")),
                             ("--beam", dict(type=int, default=1, help="beam width (1: greedy)")),
                             ("--alpha", dict(type=float, default=0.6, help="length penalty exponent"))):
            parser.add_argument(flag, **kwargs)
        options = parser.parse_args(args[1:])
        path = options.ckpt_path or max(pathlib.Path("lightning_logs").glob("*/checkpoints/*.ckpt"),
                                        key=lambda p: p.stat().st_mtime, default=None)
        if path is None:
            raise FileNotFoundError("no checkpoint under lightning_logs/: run `fit` first or pass --ckpt_path")
        out = translate(Seq2SeqSystem.load_from_checkpoint(path, map_location="cpu"), options.text, options.beam, options.alpha)
        print("\n".join(f"{text}\t{translation}" for text, translation in zip(options.text, out)))
        return out
    from pytorch_lightning.cli import LightningCLI
    sys.path.append(str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root: lessons.datasets' data

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model.model": {"class_path": f"{__name__}.GRUSeq2Seq"}, "data": {"class_path": "lessons.datasets.TranslationData"},
                                 "trainer.max_epochs": 20, "trainer.log_every_n_steps": 10})
            for source, target in (("source_words", "model.source_words"), ("target_words", "model.target_words"),
                                   ("tokenizer", "model.tokenizer"), ("source_size", "model.model.init_args.source_size"),
                                   ("target_size", "model.model.init_args.target_size")):
                parser.link_arguments(f"data.{source}", target, apply_on="instantiate")  # the data decide the vocabularies

        def instantiate_classes(self):  # keep the model's class path and arguments: load_from_checkpoint rebuilds it
            super().instantiate_classes()
            self.model.hparams["model"] = self.config_dump["model"]["model"]
            self.model.hparams["model"]["init_args"].update(source_size=self.datamodule.source_size, target_size=self.datamodule.target_size)

    CLI(Seq2SeqSystem, pl.LightningDataModule, subclass_mode_data=True, seed_everything_default=0, args=args)


if __name__ == "__main__":  # run the importable module's main: the classes a checkpoint names must import again
    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
