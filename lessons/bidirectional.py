r"""Bidirectional recurrent layers: read the sequence left to right and right to left, and concatenate.

A recurrent layer reads like a person reading left to right: at step $t$ its state has seen
$x_1, \dots, x_t$ only. A second layer with its own weights reads the same sequence from the end,
so its state at $t$ has seen $x_T, \dots, x_t$. Concatenating the two gives every step both sides:

$$
\overrightarrow{h}_t = f(x_t, \overrightarrow{h}_{t-1}), \qquad
\overleftarrow{h}_t = g(x_t, \overleftarrow{h}_{t+1}), \qquad
h_t = [\overrightarrow{h}_t ; \overleftarrow{h}_t] \in \mathbb{R}^{2H}
$$

`Bidirectional` joins **any** two one-direction drop-ins (``nn.LSTM``, ``nn.GRU``, the lessons'
layers …) and keeps torch.nn's interface; with copied weights it equals
``nn.LSTM(bidirectional=True)``, packed variable-length input included: the backward layer
starts at each sequence's own last real step, never in the padding. `Reversed` is the backward
reader alone. `Tagger` gives one tag per token and `TaggerSystem` trains it with Lightning.
Letters: N batch, T time steps, D input features, H hidden units, V vocabulary, C tags.

To run:

```bash
python lessons/bidirectional.py fit --trainer.max_epochs 15    # a toy whose tags need the right context
python lessons/bidirectional.py fit --help                     # every model, data and trainer option
```

The file imports only the standard library, torch, pytorch_lightning and torchmetrics (plus
jsonargparse for the command line), so it can be copied into a project on its own.
"""

from __future__ import annotations

import warnings

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = ["Reversed", "Bidirectional", "Tagger", "TaggerSystem", "ToyTagging", "toy_tagging"]


def _map(f, *states):
    return tuple(map(f, *states)) if isinstance(states[0], tuple) else f(*states)


def _reverse(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence of (T, N, ...) within its own length; the padding stays where it is."""
    if lengths is None:
        return x.flip(0)  # all sequences are full length
    t = torch.arange(x.shape[0], device=x.device).unsqueeze(1)  # (T, 1)
    index = torch.where(t < lengths, lengths - 1 - t, t)  # (T, N)
    return x.gather(0, index.view(*index.shape, *[1] * (x.dim() - 2)).expand_as(x))


def _pack_like(x: torch.Tensor, lengths: torch.Tensor, like: PackedSequence) -> PackedSequence:
    """Pack a time-major (T, N, ·) tensor in the batch order of ``like``."""
    order = like.sorted_indices
    data = pack_padded_sequence(x if order is None else x.index_select(1, order),
                                lengths if order is None else lengths[order.cpu()]).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


# --8<-- [start:direction]
def read_backwards(layer: nn.Module, input, hx=None):
    """Run ``layer`` on every sequence from its last real step to its first; outputs in the input's order."""
    if isinstance(input, PackedSequence):  # each sequence reversed within its own length
        x, lengths = pad_packed_sequence(input)  # (T, N, D), original batch order
        output, h_n = layer(_pack_like(_reverse(x, lengths.to(x.device)), lengths, input), hx)
        out, _ = pad_packed_sequence(output)
        return _pack_like(_reverse(out, lengths.to(x.device)), lengths, input), h_n
    if not isinstance(input, torch.Tensor):
        raise ValueError(f"expected a tensor or a PackedSequence, got {type(input).__name__}")
    time = 1 if layer.batch_first and input.dim() == 3 else 0  # (N, T, D), or (T, N, D) / unbatched (T, D)
    output, h_n = layer(input.flip(time), hx)
    return output.flip(time), h_n


class Reversed(nn.Module):
    """A one-direction layer that reads right to left: ``output[t]`` has read x_T … x_t."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer
        self.input_size, self.hidden_size, self.batch_first = layer.input_size, layer.hidden_size, layer.batch_first
        self.num_layers, self.bidirectional = getattr(layer, "num_layers", 1), False

    def forward(self, input, hx=None):
        return read_backwards(self.layer, input, hx)
# --8<-- [end:direction]


# --8<-- [start:bidirectional]
class Bidirectional(nn.Module):
    """Two one-direction layers with their own weights, one reading each way; outputs concatenated.

    Returns torch.nn's ``(output, h_n)``: output (N, T, 2H) with ``batch_first=True`` (forward
    features first) or packed like the input, and h_n (2, N, H): the forward layer's state at the
    last step, then the backward layer's state at the first (an LSTM's ``(h_n, c_n)`` likewise).

    Examples
    --------
    >>> layer = Bidirectional(nn.LSTM(4, 3, batch_first=True), nn.LSTM(4, 3, batch_first=True))
    >>> output, (h_n, c_n) = layer(torch.zeros(5, 7, 4))  # (N, T, D)
    >>> tuple(output.shape), tuple(h_n.shape)
    ((5, 7, 6), (2, 5, 3))
    """

    def __init__(self, forward_layer: nn.Module, backward_layer: nn.Module) -> None:
        super().__init__()
        f, b = forward_layer, backward_layer
        if getattr(f, "bidirectional", False) or getattr(b, "bidirectional", False) or \
                (f.input_size, f.hidden_size, f.batch_first) != (b.input_size, b.hidden_size, b.batch_first):
            raise ValueError("expected two one-direction layers with the same input_size, hidden_size and batch_first, "
                             f"got {(f.input_size, f.hidden_size, f.batch_first)} and {(b.input_size, b.hidden_size, b.batch_first)}")
        self.forward_layer, self.backward_layer = f, b
        self.input_size, self.hidden_size, self.batch_first = f.input_size, f.hidden_size, f.batch_first
        self.num_layers, self.bidirectional = getattr(f, "num_layers", 1), True

    def forward(self, input, hx=None):
        k = self.num_layers  # hx: the forward layer's k states, then the backward layer's
        out_f, h_f = self.forward_layer(input, None if hx is None else _map(lambda s: s[:k], hx))  # read x_1..x_t
        out_b, h_b = read_backwards(self.backward_layer, input, None if hx is None else _map(lambda s: s[k:], hx))
        if isinstance(input, PackedSequence):  # both packed like the input: join their data
            output = out_f._replace(data=torch.cat([out_f.data, out_b.data], dim=-1))
        else:
            output = torch.cat([out_f, out_b], dim=-1)  # (…, T, 2H)
        return output, _map(lambda a, b: torch.cat([a, b]), h_f, h_b)  # (2, N, H)
# --8<-- [end:bidirectional]

    @classmethod
    def from_torch(cls, reference: nn.RNNBase) -> "Bidirectional":
        """Two one-direction copies of a one-layer ``nn.RNN``/``GRU``/``LSTM(bidirectional=True)``."""
        if reference.num_layers != 1 or not reference.bidirectional:
            raise ValueError("expected a one-layer torch.nn layer with bidirectional=True "
                             "(stack several with lessons/stacking.py)")
        options = {k: getattr(reference, k) for k in ("bias", "batch_first")}
        if isinstance(reference, nn.RNN):
            options["nonlinearity"] = reference.nonlinearity
        layers = []
        for suffix in ("", "_reverse"):  # torch.nn keeps the backward weights under *_l0_reverse
            layer = type(reference)(reference.input_size, reference.hidden_size, **options).to(reference.weight_ih_l0)
            with torch.no_grad():
                for name, p in layer.named_parameters():
                    p.copy_(getattr(reference, name + suffix))
            layers.append(layer)
        return cls(*layers)


# --8<-- [start:models]
class Tagger(nn.Module):
    """Many-to-many tagger: embed the token ids (0 is padding), read them with ``rnn``, one tag per token.

    ``rnn`` is any ``batch_first=True`` layer (one direction, `Reversed` or `Bidirectional`). With
    ``lengths`` the layer gets packed input, so the padding never changes a tag.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, rnn: nn.Module, num_tags: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)  # (V, E)
        self.rnn = rnn
        self.head = nn.Linear(rnn.hidden_size * (2 if rnn.bidirectional else 1), num_tags)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.is_floating_point():
            got = f"{tuple(tokens.shape)} {tokens.dtype}" if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise ValueError(f"expected tokens of shape (N, T) holding integer ids, got {got}")
        x = self.embed(tokens)  # (N, T, E)
        if lengths is None:
            return self.head(self.rnn(x)[0])  # (N, T, C)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        hs, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=tokens.shape[1])
        return self.head(hs)  # (N, T, C)
# --8<-- [end:models]


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``x``, ``(x,)``, ``(x, y)`` or ``(x, lengths, y)`` → ``(x, lengths, y)``."""
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    return tuple(batch) if len(batch) == 3 else (batch[0], None, batch[1] if len(batch) == 2 else None)


# --8<-- [start:system]
class TaggerSystem(pl.LightningModule):
    """Trains a tagger with cross-entropy; tags of -100 (padding) count in neither the loss nor the accuracy."""

    def __init__(self, model: nn.Module, lr: float = 3e-3) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.metrics = nn.ModuleDict({f"{s}_metric": torchmetrics.MeanMetric() for s in ("train", "val", "test")})

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(tokens) if lengths is None else self.model(tokens, lengths)

    def _step(self, batch, stage: str) -> torch.Tensor:
        tokens, lengths, tags = split_batch(batch)
        logits, target = self(tokens, lengths).flatten(0, 1), tags.flatten()  # (N·T, C), (N·T,)
        loss = F.cross_entropy(logits, target, ignore_index=-100)
        real = target != -100
        self.metrics[f"{stage}_metric"].update((logits.argmax(-1)[real] == target[real]).float())
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True,
                 batch_size=int(real.sum()), sync_dist=True)  # the epoch's loss: a mean over real tokens
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
# --8<-- [end:system]


def toy_tagging(N: int = 512, T: int = 12, seed: int = 0, min_length: int = 6):
    """A toy that needs the right context: token 2 is tagged 1 if the *next* token is 3, else 0.

    Tokens are 1..5 and every other token's tag is its id; each sequence has a random length in
    [min_length, T], padded with token 0 and tag -100. Returns tokens (N, T), lengths (N,), tags (N, T).
    A forward reader cannot know the tag of a 2 when it reads it; a backward one can.
    """
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, 6, (N, T), generator=g)
    lengths = torch.randint(min_length, T + 1, (N,), generator=g)
    tokens[torch.arange(T) >= lengths.unsqueeze(1)] = 0  # padding
    following = torch.cat([tokens[:, 1:], torch.zeros(N, 1, dtype=tokens.dtype)], dim=1)
    tags = tokens.clone()
    tags[tokens == 2] = (following[tokens == 2] == 3).long()
    tags[tokens == 0] = -100
    return tokens, lengths, tags


class ToyTagging(pl.LightningDataModule):
    """`toy_tagging` batches ``(tokens, lengths, tags)``: 384 sequences train, 128 validate."""

    def __init__(self, batch_size: int = 64) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.dataset = torch.utils.data.TensorDataset(*toy_tagging())

    def train_dataloader(self):
        part = torch.utils.data.Subset(self.dataset, range(384))
        return torch.utils.data.DataLoader(part, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        part = torch.utils.data.Subset(self.dataset, range(384, len(self.dataset)))
        return torch.utils.data.DataLoader(part, batch_size=self.batch_size)

    predict_dataloader = val_dataloader


def main(args: list[str] | None = None) -> None:
    """``LightningCLI`` over `TaggerSystem`; the defaults tag the toy with a bidirectional LSTM."""
    from pytorch_lightning.cli import LightningCLI

    here = __name__  # the importable name (see the __main__ block), so checkpoints can name their classes
    lstm = {"class_path": "torch.nn.LSTM", "init_args": {"input_size": 16, "hidden_size": 16, "batch_first": True}}
    model = {"class_path": f"{here}.Tagger", "init_args": {"vocab_size": 6, "embedding_dim": 16, "num_tags": 6, "rnn": {
        "class_path": f"{here}.Bidirectional", "init_args": {"forward_layer": lstm, "backward_layer": lstm}}}}

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model.model": model, "data": {"class_path": f"{here}.ToyTagging"},
                                 "trainer.max_epochs": 15, "trainer.log_every_n_steps": 1})

        def instantiate_classes(self):
            super().instantiate_classes()
            # the system ignores its model object; its class path and arguments let load_from_checkpoint rebuild it
            self.model.hparams["model"] = self.config_dump["model"]["model"]

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix
    CLI(TaggerSystem, ToyTagging, subclass_mode_data=True, seed_everything_default=0, args=args)


if __name__ == "__main__":
    # run the importable module's main, not __main__'s: the classes a checkpoint names must import again
    import importlib
    import pathlib

    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
