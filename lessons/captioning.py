r"""Image captioning: one image in, a sentence out; a CNN reads the image, an LSTM writes the caption (one-to-many).

The encoder turns an image into columns $a_j$ (one per 4 pixels of width) and a feature vector $f$ read from all
of them in order; $(h_0, c_0) = \tanh(f W_0 + b_0)$ starts the decoder, which writes one word per step from the word
before it ($w_0$ = ``<bos>``) until ``<eos>``: $h_t = \operatorname{LSTM}(e_{w_{t-1}}, h_{t-1})$,
$P(w_t \mid w_{<t}, \text{image}) = \operatorname{softmax}(h_t W + b)$. With ``attention=True`` each step also reads
$c_t = \sum_j \alpha_{tj} a_j$, $\alpha_t = \operatorname{softmax}_j(v^\top \tanh(h_t W_q + a_j W_k))$ (additive
attention), and the word comes from $\tanh([h_t; c_t] W_c)$. Training feeds the true previous word (teacher forcing);
captioning feeds the model's own words (greedy or beam search). N batch, W width, J columns, T words, V vocabulary.

To run:

```bash
python lessons/captioning.py fit                                     # built-in font digits, 10 epochs in seconds
python lessons/captioning.py fit --data.path digits.pt --data.language en   # {"images": (M, 8, 8), "labels": (M,)}
python lessons/captioning.py caption --image strip.npy --beam 3     # (8, W) or (1, 8, W), W <= 32, values in [0, 1]
```
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import sys
import warnings

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F

__all__ = ["DIGIT_WORDS", "SPECIALS", "split_strips", "encode_captions", "font_digits", "prepare_images",
           "DigitEncoder", "CaptionModel", "greedy", "beam_search", "CaptionSystem", "caption", "CaptionData"]

# --8<-- [start:data]
DIGIT_WORDS = {"ko": "영 일 이 삼 사 오 육 칠 팔 구".split(), "en": "zero one two three four five six seven eight nine".split()}
SPECIALS = ["<pad>", "<bos>", "<eos>"]  # ids 0, 1, 2; the words follow
PAD, BOS, EOS = 0, 1, 2


def split_strips(images: torch.Tensor, labels: torch.Tensor, counts=(4000, 500, 500), fractions=(0.7, 0.15),
                 language: str = "ko", max_digits: int = 4, width: int = 32, seed: int = 0) -> dict[str, tuple]:
    """Split the digit images (M, 8, 8) first (shuffled with ``seed``), then compose each split's strips of 1 to
    ``max_digits`` digits from its own images only, side by side from the left, 0 (background) on the right: test
    strips show handwriting no training strip shows. → {"train"/"val"/"test": (strips (n, 1, 8, width), y, captions)}."""
    if images.dim() != 3 or tuple(images.shape[1:]) != (8, 8) or len(labels) != len(images) or not 1 <= max_digits <= width // 8:
        raise ValueError(f"expected digit images (M, 8, 8), M labels and 1 <= max_digits <= width / 8, got "
                         f"{tuple(images.shape)}, {len(labels)}, {max_digits}")
    order, out = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed)), {}
    cuts = [0, round(len(order) * fractions[0]), round(len(order) * sum(fractions)), len(order)]
    for k, (split, count) in enumerate(zip(("train", "val", "test"), counts)):
        part, g = order[cuts[k]:cuts[k + 1]], torch.Generator().manual_seed(seed + k)
        lengths = torch.randint(1, max_digits + 1, (count,), generator=g).tolist()
        picks = part[torch.randint(len(part), (count, max_digits), generator=g)]  # image indices, (count, max_digits)
        strips = images.new_zeros(count, 1, 8, width)
        for n, (length, pick) in enumerate(zip(lengths, picks)):
            strips[n, 0, :, :8 * length] = images[pick[:length]].transpose(0, 1).reshape(8, 8 * length)
        captions = [" ".join(DIGIT_WORDS[language][d] for d in labels[p[:n]].tolist()) for n, p in zip(lengths, picks)]
        out[split] = (strips, encode_captions(captions, SPECIALS + DIGIT_WORDS[language]), captions)
    return out


def encode_captions(captions: list[str], words: list[str]) -> torch.Tensor:
    """Captions (words split by spaces) → ids ending in ``<eos>``, (N, T + 1), padded with -100 (ignored)."""
    index, ids = {w: i for i, w in enumerate(words)}, []
    for text in captions:
        tokens = text.split() if isinstance(text, str) else []
        if not tokens or any(t not in index or index[t] < len(SPECIALS) for t in tokens):
            raise ValueError(f"expected a caption of words from {words[len(SPECIALS):]}, got {text!r}")
        ids.append(torch.tensor([index[t] for t in tokens] + [EOS]))
    return nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=-100)
# --8<-- [end:data]


def font_digits(count: int = 600, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The command line's default data: a 3 × 5 font stretched to 7 × 5, shifted and noisy; (count, 8, 8) in [0, 1]."""
    font = ("111101101101111 010110010010111 111001111100111 111001111001111 101101111001001 111100111001111 "
            "111100111101111 111001001001001 111101111101111 111101111001111").split()  # 3 × 5 pixels, row by row
    glyphs = F.interpolate(torch.tensor([[float(c) for c in d] for d in font]).view(10, 1, 5, 3), size=(7, 5), mode="bilinear")
    g = torch.Generator().manual_seed(seed)
    labels, shifts = torch.randint(10, (count,), generator=g), torch.randint(0, 4, (count, 2), generator=g).tolist()
    images = torch.stack([F.pad(glyphs[d, 0], (x, 3 - x, y % 2, 1 - y % 2)) for d, (y, x) in zip(labels.tolist(), shifts)])
    return (images + 0.15 * torch.rand(images.shape, generator=g)).clamp(0, 1), labels


def prepare_images(images, width: int = 32) -> torch.Tensor:
    """A grey image (8, W) or (1, 8, W), or images (N, 1, 8, W), W <= ``width``, values in [0, 1] → (N, 1, 8, width)."""
    x = torch.as_tensor(images, dtype=torch.float32)
    x = x.view(1, 1, *x.shape[-2:]) if x.dim() == 2 or (x.dim() == 3 and len(x) == 1) else x
    if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != 8 or not 1 <= x.shape[3] <= width:
        raise ValueError(f"expected one grey channel: an image (8, W) or (1, 8, W), or images (N, 1, 8, W), with "
                         f"W <= {width}, got {tuple(torch.as_tensor(images).shape)}")
    if x.numel() and not 0 <= float(x.min()) <= float(x.max()) <= 1:
        raise ValueError(f"expected pixel values in [0, 1] (0 = background), got {float(x.min())} … {float(x.max())}")
    return F.pad(x, (0, width - x.shape[3]))


# --8<-- [start:models]
class DigitEncoder(nn.Module):
    """(N, 1, 8, W) → columns (N, W/4, 2C), one per 4 pixels of width, and a feature vector (N, F) of all of them."""

    def __init__(self, width: int = 32, channels: int = 32, features: int = 128) -> None:
        super().__init__()
        if width % 4:
            raise ValueError(f"expected a width divisible by 4, got {width}")
        self.width, self.columns_size = width, 2 * channels
        self.conv = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.feature = nn.Linear(self.columns_size * (width // 4), features)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.dim() != 4 or tuple(images.shape[1:]) != (1, 8, self.width):
            raise ValueError(f"expected images of shape (N, 1, 8, {self.width}), got {tuple(images.shape)}")
        columns = self.conv(images).flatten(1, 2).transpose(1, 2)  # (N, C, 2, W/4) → (N, J, 2C)
        return columns, torch.relu(self.feature(columns.flatten(1)))


class CaptionModel(nn.Module):
    """Encoder → first state of any ``batch_first=True`` recurrent layer → a word per step (+ attention over columns)."""

    def __init__(self, encoder: nn.Module, rnn: nn.Module, vocab_size: int, attention: bool = False) -> None:
        super().__init__()
        H, C = rnn.hidden_size, encoder.columns_size
        self.encoder, self.rnn, self.attention = encoder, rnn, attention
        self.embed = nn.Embedding(vocab_size, rnn.input_size)
        self.init = nn.Linear(encoder.feature.out_features, 2 * H)  # f → (h_0, c_0)
        if attention:
            self.key, self.query = nn.Linear(C, H, bias=False), nn.Linear(H, H)
            self.score, self.combine = nn.Linear(H, 1, bias=False), nn.Linear(H + C, H)
        self.head = nn.Linear(H, vocab_size)

    def start(self, images: torch.Tensor):
        columns, feature = self.encoder(images)
        h0, c0 = (s.unsqueeze(0).repeat(getattr(self.rnn, "num_layers", 1), 1, 1) for s in torch.tanh(self.init(feature)).chunk(2, dim=-1))
        state = (h0, c0) if "LSTM" in type(self.rnn).__name__ else h0  # (layers, N, H)
        return (columns, self.key(columns) if self.attention else None), state

    def step(self, tokens: torch.Tensor, memory, state):
        """Words so far (N, t) → logits (N, t, V), the new state and attention weights (N, t, J) or None."""
        out, state = self.rnn(self.embed(tokens), state)  # (N, t, H)
        weights = None
        if self.attention:
            columns, keys = memory
            scores = self.score(torch.tanh(self.query(out).unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)  # (N, t, J)
            weights = scores.softmax(-1)
            out = torch.tanh(self.combine(torch.cat([out, weights @ columns], dim=-1)))  # [h_t; c_t]
        return self.head(out), state, weights

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: ``tokens`` (N, T) start with ``<bos>``; logits (N, T, V) for the next words."""
        memory, state = self.start(images)
        return self.step(tokens, memory, state)[0]
# --8<-- [end:models]


# --8<-- [start:decode]
@torch.no_grad()
def greedy(model: CaptionModel, images: torch.Tensor, max_len: int = 8):
    """The most likely word at each step, fed back in; after ``<eos>`` a caption is padded with 0.
    Returns ids (N, T ≤ max_len) and the attention weights (N, T, J) (None without attention)."""
    memory, state = model.start(images)
    token, tokens, weights = torch.full((len(images), 1), BOS, device=images.device), [], []
    done = torch.zeros(len(images), dtype=torch.bool, device=images.device)
    for _ in range(max_len):
        logits, state, w = model.step(token, memory, state)
        token = logits.argmax(-1).masked_fill(done.unsqueeze(1), PAD)  # (N, 1)
        tokens, weights = tokens + [token], weights + [w]
        done |= token.squeeze(1) == EOS
        if done.all():
            break
    return torch.cat(tokens, 1), (torch.cat(weights, 1) if model.attention else None)


@torch.no_grad()
def beam_search(model: CaptionModel, images: torch.Tensor, beam: int = 3, max_len: int = 8) -> list[list[int]]:
    """Keep the ``beam`` most likely unfinished captions (sum of log-probabilities) at each step, one image at a
    time; stop when the best finished caption beats every unfinished one. Returns word ids without ``<eos>``."""
    results = []
    for image in images:
        (columns, keys), state = model.start(image[None])
        alive, scores, finished = [[]], torch.zeros(1, device=images.device), []
        for _ in range(max_len):
            memory = (columns.expand(len(alive), -1, -1), None if keys is None else keys.expand(len(alive), -1, -1))
            last = torch.tensor([[s[-1] if s else BOS] for s in alive], device=images.device)
            logits, state, _ = model.step(last, memory, state)
            total = (scores[:, None] + logits[:, -1].log_softmax(-1)).flatten()  # (k · V,)
            keep, top = [], total.topk(min(beam, len(total)))
            for score, i in zip(top.values.tolist(), top.indices.tolist()):
                row, word = divmod(i, logits.shape[-1])
                if word == EOS:
                    finished.append((score, alive[row]))
                elif word >= len(SPECIALS):
                    keep.append((score, row, alive[row] + [word]))
            if not keep or (finished and max(finished)[0] >= keep[0][0]):
                break
            rows = torch.tensor([row for _, row, _ in keep], device=images.device)
            state = tuple(s[:, rows] for s in state) if isinstance(state, tuple) else state[:, rows]
            alive, scores = [seq for _, _, seq in keep], torch.tensor([s for s, _, _ in keep], device=images.device)
        results.append(max(finished)[1] if finished else alive[0])
    return results
# --8<-- [end:decode]


# --8<-- [start:system]
class CaptionSystem(pl.LightningModule):
    """Cross-entropy on the next word under teacher forcing (padding -100 counts nowhere); ``{stage}_acc`` is the
    share of right next words, ``val_exact``/``test_exact`` the share of greedy captions exactly right.
    ``words`` (the vocabulary, ``SPECIALS`` first) is saved in the checkpoint."""

    def __init__(self, model: nn.Module, words: list[str], lr: float = 1e-3, max_len: int = 8) -> None:
        super().__init__()
        size = model.head.out_features
        if len(words) != size or list(words[:len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"expected {size} words starting with {SPECIALS} (one per output of the model), got "
                             f"{len(words)} words {list(words[:4])}…: the checkpoint and the model come from different vocabularies")
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        accuracy = {f"{s}_metric": torchmetrics.Accuracy("multiclass", num_classes=size, ignore_index=-100) for s in ("train", "val", "test")}
        self.metrics = nn.ModuleDict({**accuracy, "val_exact": torchmetrics.MeanMetric(), "test_exact": torchmetrics.MeanMetric()})

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.model(images, tokens)  # (N, T, V)

    def _step(self, batch, stage: str) -> torch.Tensor:
        images, y = batch[0], batch[-1]  # y (N, T): word ids, <eos>, then -100
        inputs = torch.cat([torch.full_like(y[:, :1], BOS), y[:, :-1].clamp(min=PAD)], dim=1)  # teacher forcing
        logits = self(images, inputs)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100)
        self.metrics[f"{stage}_metric"].update(logits.argmax(-1), y)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log(f"{stage}_acc", self.metrics[f"{stage}_metric"], on_step=False, on_epoch=True, prog_bar=True)
        if stage != "train":
            predicted = greedy(self.model, images, y.shape[1])[0]  # (N, t ≤ T), 0 after <eos>
            exact = ((F.pad(predicted, (0, y.shape[1] - predicted.shape[1])) == y) | (y == -100)).all(1)
            self.metrics[f"{stage}_exact"].update(exact.float())
            self.log(f"{stage}_exact", self.metrics[f"{stage}_exact"], on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx):
        images = batch if isinstance(batch, torch.Tensor) else batch[0]  # (images, y), (images,) or images
        return greedy(self.model, images, self.hparams.max_len)[0]

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
# --8<-- [end:system]


# --8<-- [start:caption]
def caption(system: CaptionSystem, images, beam: int = 1) -> list[str]:
    """Captions of images ((8, W), (N, 8, W) or (N, 1, 8, W)) in the words saved in ``system``; ``beam`` > 1
    searches with that many hypotheses, 1 is greedy."""
    words, x = system.hparams.words, prepare_images(images, system.model.encoder.width).to(system.device)
    system.eval()
    ids = (beam_search(system.model, x, beam, system.hparams.max_len) if beam > 1 else
           [row[:(row + [EOS]).index(EOS)] for row in greedy(system.model, x, system.hparams.max_len)[0].tolist()])
    return [" ".join(words[i] for i in row) for row in ids]
# --8<-- [end:caption]


class CaptionData(pl.LightningDataModule):
    """`split_strips` of the digits in ``path`` (``torch.save``d ``{"images": (M, 8, 8) in [0, 1], "labels": (M,)}``)
    or, without it, of `font_digits`; ``strips``: how many for training, validation, test."""

    def __init__(self, path: str | None = None, language: str = "ko", max_digits: int = 4,
                 strips: tuple[int, int, int] = (2000, 300, 300), batch_size: int = 64, seed: int = 0) -> None:
        super().__init__()
        if language not in DIGIT_WORDS:
            raise ValueError(f"expected language {' or '.join(map(repr, DIGIT_WORDS))}, got {language!r}")
        digits = font_digits(seed=seed) if path is None else torch.load(path)
        images, labels = (digits["images"], digits["labels"]) if isinstance(digits, dict) else digits
        self.words, self.batch_size, self.seed = SPECIALS + DIGIT_WORDS[language], batch_size, seed
        self.parts = {split: torch.utils.data.TensorDataset(strips, y) for split, (strips, y, _) in split_strips(
            images.float(), labels, strips, language=language, max_digits=max_digits, seed=seed).items()}

    vocab_size = property(lambda self: len(self.words))

    def _loader(self, split: str, shuffle: bool = False):
        return torch.utils.data.DataLoader(self.parts[split], self.batch_size, shuffle=shuffle,
                                           generator=torch.Generator().manual_seed(self.seed))

    train_dataloader = lambda self: self._loader("train", shuffle=True)  # noqa: E731
    val_dataloader = lambda self: self._loader("val")  # noqa: E731
    test_dataloader = predict_dataloader = lambda self: self._loader("test")  # noqa: E731


def caption_command(args: list[str]) -> list[str]:
    """``caption --image file [--image file] [--ckpt_path file] [--language ko|en] [--beam k]``: print and return
    the captions. Without ``--ckpt_path``, the newest ``lightning_logs/*/checkpoints/*.ckpt`` (written by ``fit``)."""
    parser = argparse.ArgumentParser(prog="captioning.py caption", description=caption_command.__doc__)
    parser.add_argument("--image", action="append", required=True, help=".npy or .pt, (8, W) or (1, 8, W), W <= 32")
    parser.add_argument("--ckpt_path", default=None, help="a checkpoint written by fit")
    parser.add_argument("--language", choices=sorted(DIGIT_WORDS), default=None, help="must be the checkpoint's")
    parser.add_argument("--beam", type=int, default=1, help="1: greedy")
    options = parser.parse_args(args)
    found = sorted(pathlib.Path("lightning_logs").glob("*/checkpoints/*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not (options.ckpt_path or found):
        raise FileNotFoundError("no checkpoint under lightning_logs/: run `fit` first or pass --ckpt_path")
    system = CaptionSystem.load_from_checkpoint(options.ckpt_path or found[-1], map_location="cpu")
    if options.language and system.hparams.words[len(SPECIALS):] != DIGIT_WORDS[options.language]:
        raise ValueError(f"expected a checkpoint trained on {options.language!r} captions, got one whose words are "
                         f"{' '.join(system.hparams.words[len(SPECIALS):])}: train it with --data.language {options.language}")
    load = {".npy": lambda p: importlib.import_module("numpy").load(p), ".pt": torch.load}  # numpy only for .npy
    if bad := [p for p in options.image if pathlib.Path(p).suffix not in load]:
        raise ValueError(f"expected image files ending in .npy or .pt, got {bad}")
    images = torch.cat([prepare_images(load[pathlib.Path(p).suffix](p), system.model.encoder.width) for p in options.image])
    captions = caption(system, images, options.beam)
    print("\n".join(f"{text}\t{file}" for file, text in zip(options.image, captions)))
    return captions


def main(args: list[str] | None = None):
    """``LightningCLI`` over `CaptionSystem` and `CaptionData` (CNN + nn.LSTM); ``caption --image`` runs `caption_command`."""
    args = sys.argv[1:] if args is None else list(args)
    if args[:1] == ["caption"]:
        return caption_command(args[1:])
    from pytorch_lightning.cli import LightningCLI

    here = __name__  # importable (see the __main__ block), so checkpoints name classes that import again
    lstm = {"class_path": "torch.nn.LSTM", "init_args": {"input_size": 32, "hidden_size": 64, "batch_first": True}}
    model = {"class_path": f"{here}.CaptionModel", "init_args": {"rnn": lstm, "attention": True, "encoder": {
        "class_path": f"{here}.DigitEncoder", "init_args": {"width": 32}}}}

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model.model": model, "model.lr": 3e-3, "trainer.max_epochs": 10, "trainer.log_every_n_steps": 1})
            for source, target in (("vocab_size", "model.model.init_args.vocab_size"), ("words", "model.words")):
                parser.link_arguments(f"data.{source}", target, apply_on="instantiate")

        def instantiate_classes(self):  # keep the model's class path and arguments: load_from_checkpoint rebuilds it
            super().instantiate_classes()
            self.model.hparams["model"] = self.config_dump["model"]["model"]
            self.model.hparams["model"]["init_args"]["vocab_size"] = len(self.datamodule.words)

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix
    CLI(CaptionSystem, CaptionData, seed_everything_default=0, args=args)


if __name__ == "__main__":  # run the importable module's main: the classes a checkpoint names must import again
    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
