r"""Bidirectional recurrent layers: read the sequence left to right and right to left, and concatenate.

A recurrent layer reads like a person reading left to right: at step $t$ its state has seen
$x_1, \dots, x_t$ only. A second layer with its own weights reads the same sequence from the end,
so its state at $t$ has seen $x_T, \dots, x_t$. Concatenating the two gives every step both sides:

$$
\overrightarrow{h}_t = \mathrm{cell}_f(x_t, \overrightarrow{h}_{t-1}), \qquad
\overleftarrow{h}_t = \mathrm{cell}_b(x_t, \overleftarrow{h}_{t+1}), \qquad
h_t = [\overrightarrow{h}_t ; \overleftarrow{h}_t] \in \mathbb{R}^{2H}
$$

With copied weights this equals ``torch.nn.LSTM(bidirectional=True)`` (or ``GRU``).

Contents: the cells `LSTMCell` and `GRUCell`, `DirectionalRNN` (one direction, forward or
reversed), `Bidirectional`, the forecaster `DirectionForecaster` with its system
`DirectionForecastSystem`, the part-of-speech `Tagger` with its system `TaggerSystem`, the
callbacks `History` and `KeepBest`, and `fit`. Shapes follow d2l's letters: N batch, T time
steps, D input features, H hidden units, V vocabulary, C classes (tags).

To run:

```bash
python lessons/bidirectional.py                      # a toy tagging task, forward vs both directions
python lessons/bidirectional.py --direction backward --epochs 30
```

The file imports only the standard library, torch, pytorch_lightning and torchmetrics, so it
can be copied into a project on its own.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import warnings

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F

__all__ = ["LSTMCell", "GRUCell", "DirectionalRNN", "Bidirectional", "DirectionForecaster",
           "DirectionForecastSystem", "Tagger", "TaggerSystem", "History", "KeepBest", "fit"]

DIRECTIONS = ("forward", "backward", "both")


def check_sequence(x: torch.Tensor, input_size: int, name: str = "x") -> None:
    """Raise a ``ValueError`` unless ``x`` is a floating-point (N, T, D) tensor with D = input_size.

    >>> check_sequence(torch.zeros(32, 64), input_size=8)
    Traceback (most recent call last):
    ...
    ValueError: expected x of shape (N, T, D) = (*, *, 8), got (32, 64)
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected {name} to be a torch.Tensor of shape (N, T, D), got {type(x).__name__}")
    if x.dim() != 3 or x.shape[-1] != input_size:
        raise ValueError(f"expected {name} of shape (N, T, D) = (*, *, {input_size}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected {name} to be a floating-point tensor, got dtype {x.dtype}")
    if x.shape[1] == 0:
        raise ValueError(f"expected {name} of shape (N, T, D) with at least one time step (T >= 1), got T = 0")


def _uniform_(module: nn.Module, hidden_size: int) -> None:
    bound = 1.0 / math.sqrt(hidden_size)  # torch.nn.LSTM/GRU's initialisation
    for p in module.parameters():
        nn.init.uniform_(p, -bound, bound)


class LSTMCell(nn.Module):
    r"""One LSTM step, gates fused in PyTorch's order i, f, g, o: state ``(h, c)``."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_xh = nn.Parameter(torch.empty(input_size, 4 * hidden_size))  # (D, 4H)
        self.W_hh = nn.Parameter(torch.empty(hidden_size, 4 * hidden_size))  # (H, 4H)
        self.b_xh = nn.Parameter(torch.empty(4 * hidden_size))  # (4H,)
        self.b_hh = nn.Parameter(torch.empty(4 * hidden_size))  # (4H,)
        _uniform_(self, hidden_size)

    def init_state(self, x: torch.Tensor):
        h = x.new_zeros(x.shape[0], self.hidden_size)
        return h, h.clone()

    def recur(self, xp_t: torch.Tensor, state):
        h, c = state
        i, f, g, o = (xp_t + h @ self.W_hh + self.b_hh).chunk(4, dim=-1)  # 4 × (N, H)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # $$c_t = f_t \odot c_{t-1} + i_t \odot g_t$$
        return torch.sigmoid(o) * torch.tanh(c), c  # $$h_t = o_t \odot \tanh(c_t)$$


class GRUCell(nn.Module):
    r"""One GRU step, gates fused in PyTorch's order r, z, n: state ``h``."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_xh = nn.Parameter(torch.empty(input_size, 3 * hidden_size))  # (D, 3H)
        self.W_hh = nn.Parameter(torch.empty(hidden_size, 3 * hidden_size))  # (H, 3H)
        self.b_xh = nn.Parameter(torch.empty(3 * hidden_size))  # (3H,)
        self.b_hh = nn.Parameter(torch.empty(3 * hidden_size))  # (3H,)
        _uniform_(self, hidden_size)

    def init_state(self, x: torch.Tensor):
        return x.new_zeros(x.shape[0], self.hidden_size)

    def recur(self, xp_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        x_r, x_z, x_n = xp_t.chunk(3, dim=-1)  # 3 × (N, H)
        h_r, h_z, h_n = (h @ self.W_hh + self.b_hh).chunk(3, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)  # reset and update gates
        n = torch.tanh(x_n + r * h_n)  # candidate hidden state
        return z * h + (1 - z) * n  # $$h_t = z_t \odot h_{t-1} + (1 - z_t) \odot n_t$$


CELLS = {"lstm": LSTMCell, "gru": GRUCell}


# --8<-- [start:direction]
class DirectionalRNN(nn.Module):
    """One recurrent layer that reads left to right, or right to left with ``reverse=True``.

    Either way the outputs are returned in the input's order: ``hs[:, t]`` is the state at
    position t. Reading backwards, the last state read (``h_last``) is the one at position 1.
    """

    def __init__(self, input_size: int, hidden_size: int, cell: str = "lstm", reverse: bool = False) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"expected cell to be one of {sorted(CELLS)}, got {cell!r}")
        self.cell, self.reverse = CELLS[cell](input_size, hidden_size), reverse

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_sequence(x, self.cell.input_size)
        xp = x @ self.cell.W_xh + self.cell.b_xh  # (N, T, G·H), all steps in one product
        steps = xp.transpose(0, 1).unbind(0)  # T tensors of (N, G·H)
        if self.reverse:
            steps = steps[::-1]  # x_T first
        state, hs = self.cell.init_state(x), []
        for xp_t in steps:
            state = self.cell.recur(xp_t, state)
            hs.append(state[0] if isinstance(state, tuple) else state)  # (N, H)
        h_last = hs[-1]
        if self.reverse:
            hs = hs[::-1]  # back to the input's order
        return torch.stack(hs, dim=1), h_last  # (N, T, H), (N, H)
# --8<-- [end:direction]


# --8<-- [start:bidirectional]
class Bidirectional(nn.Module):
    """Two `DirectionalRNN` with their own weights, one reading each way; outputs concatenated.

    Returns ``hs`` of shape (N, T, 2H), forward features first, and ``h_last`` of shape (N, 2H):
    the forward layer's state at position T next to the backward layer's state at position 1.

    Examples
    --------
    >>> layer = Bidirectional(input_size=4, hidden_size=3)
    >>> hs, h_last = layer(torch.zeros(5, 7, 4))  # (N, T, D)
    >>> tuple(hs.shape), tuple(h_last.shape)
    ((5, 7, 6), (5, 6))
    """

    def __init__(self, input_size: int, hidden_size: int, cell: str = "lstm") -> None:
        super().__init__()
        self.forward_rnn = DirectionalRNN(input_size, hidden_size, cell)
        self.backward_rnn = DirectionalRNN(input_size, hidden_size, cell, reverse=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hs_f, last_f = self.forward_rnn(x)  # (N, T, H): has read x_1..x_t
        hs_b, last_b = self.backward_rnn(x)  # (N, T, H): has read x_T..x_t
        return torch.cat([hs_f, hs_b], dim=-1), torch.cat([last_f, last_b], dim=-1)  # (N, T, 2H), (N, 2H)
# --8<-- [end:bidirectional]

    @classmethod
    def from_torch(cls, reference: nn.LSTM | nn.GRU) -> "Bidirectional":
        """A layer holding a copy of a one-layer ``torch.nn.LSTM``/``GRU(bidirectional=True)``'s weights.

        PyTorch keeps the backward direction's weights under the suffix ``_reverse``.
        """
        if reference.num_layers != 1 or not reference.bidirectional or not reference.batch_first \
                or not reference.bias:
            raise ValueError("expected a one-layer torch.nn.LSTM/GRU with bidirectional=True, batch_first=True and biases")
        kind = "lstm" if isinstance(reference, nn.LSTM) else "gru"
        layer = cls(reference.input_size, reference.hidden_size, kind).to(reference.weight_ih_l0)
        with torch.no_grad():
            for rnn, suffix in ((layer.forward_rnn, ""), (layer.backward_rnn, "_reverse")):
                rnn.cell.W_xh.copy_(getattr(reference, f"weight_ih_l0{suffix}").T)
                rnn.cell.W_hh.copy_(getattr(reference, f"weight_hh_l0{suffix}").T)
                rnn.cell.b_xh.copy_(getattr(reference, f"bias_ih_l0{suffix}"))
                rnn.cell.b_hh.copy_(getattr(reference, f"bias_hh_l0{suffix}"))
        return layer


def _layer(input_size: int, hidden_size: int, direction: str, cell: str) -> nn.Module:
    if direction not in DIRECTIONS:
        raise ValueError(f"expected direction to be one of {DIRECTIONS}, got {direction!r}")
    if direction == "both":
        return Bidirectional(input_size, hidden_size, cell)
    return DirectionalRNN(input_size, hidden_size, cell, reverse=direction == "backward")


# --8<-- [start:models]
class DirectionForecaster(nn.Module):
    """Many-to-one forecaster reading the window forward, backward or both ways."""

    def __init__(self, input_size: int, hidden_size: int = 32, direction: str = "forward", cell: str = "gru") -> None:
        super().__init__()
        self.rnn = _layer(input_size, hidden_size, direction, cell)
        self.head = nn.Linear(hidden_size * (2 if direction == "both" else 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h_last = self.rnn(x)  # (N, H) or (N, 2H): the last state each direction read
        return self.head(h_last)  # (N, 1)


class Tagger(nn.Module):
    """Many-to-many tagger: embed the tokens, read them, one tag per position."""

    def __init__(self, vocab_size: int, num_tags: int, embedding_dim: int = 32, hidden_size: int = 32,
                 direction: str = "both", cell: str = "lstm") -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)  # (V, E)
        self.rnn = _layer(embedding_dim, hidden_size, direction, cell)
        self.head = nn.Linear(hidden_size * (2 if direction == "both" else 1), num_tags)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.is_floating_point():
            raise ValueError(f"expected tokens of shape (N, T) holding integer ids, got {tuple(tokens.shape)} {tokens.dtype}")
        hs, _ = self.rnn(self.embed(tokens))  # (N, T, H) or (N, T, 2H)
        return self.head(hs)  # (N, T, C)
# --8<-- [end:models]


class DirectionForecastSystem(pl.LightningModule):
    """Trains a `DirectionForecaster` with the L1 loss on normalised targets; logs MAE × ``target_std``."""

    def __init__(self, input_size: int = 8, hidden_size: int = 32, direction: str = "forward", cell: str = "gru",
                 target_std: float = 1.0, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = DirectionForecaster(input_size, hidden_size, direction, cell)
        self.metrics = nn.ModuleDict({f"{s}_mae": torchmetrics.MeanAbsoluteError() for s in ("train", "val", "test")})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # (N, 1)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        pred = self(x)
        loss = F.l1_loss(pred, y)
        self.metrics[f"{stage}_mae"](pred * self.hparams.target_std, y * self.hparams.target_std)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True)
        self.log(f"{stage}_mae", self.metrics[f"{stage}_mae"], prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


# --8<-- [start:system]
class TaggerSystem(pl.LightningModule):
    """Trains a `Tagger` with cross-entropy; positions whose tag is -100 (padding) are ignored."""

    def __init__(self, vocab_size: int, num_tags: int, embedding_dim: int = 32, hidden_size: int = 32,
                 direction: str = "both", cell: str = "lstm", lr: float = 3e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = Tagger(vocab_size, num_tags, embedding_dim, hidden_size, direction, cell)
        self.metrics = nn.ModuleDict({
            f"{s}_acc": torchmetrics.Accuracy(task="multiclass", num_classes=num_tags, ignore_index=-100)
            for s in ("train", "val", "test")
        })

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model(tokens)  # (N, T, C)

    def _step(self, batch, stage: str) -> torch.Tensor:
        tokens, tags = batch
        logits = self(tokens).flatten(0, 1)  # (N*T, C)
        loss = F.cross_entropy(logits, tags.flatten(), ignore_index=-100)
        self.metrics[f"{stage}_acc"](logits, tags.flatten())
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True)
        self.log(f"{stage}_acc", self.metrics[f"{stage}_acc"], prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
# --8<-- [end:system]


class History(pl.Callback):
    """Every epoch's value of the logged metrics ``train_<name>`` and ``val_<name>``."""

    def __init__(self, name: str = "mae") -> None:
        self.name = name
        self.history: dict[str, list[float]] = {f"train_{name}": [], f"val_{name}": []}

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        key = f"val_{self.name}"
        if not trainer.sanity_checking and key in trainer.callback_metrics:
            self.history[key].append(float(trainer.callback_metrics[key]))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.history[f"train_{self.name}"].append(float(trainer.callback_metrics[f"train_{self.name}"]))


class KeepBest(pl.Callback):
    """Keep the weights of the best validation epoch (``mode`` "min" or "max") and restore them."""

    def __init__(self, monitor: str = "val_mae", mode: str = "min") -> None:
        self.monitor, self.sign = monitor, 1.0 if mode == "min" else -1.0
        self.best, self.best_epoch, self.state = float("inf") * self.sign, -1, None

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if not trainer.sanity_checking and value is not None and self.sign * float(value) < self.sign * self.best:
            self.best, self.best_epoch = float(value), trainer.current_epoch
            self.state = copy.deepcopy(pl_module.state_dict())

    def on_train_end(self, trainer, pl_module) -> None:
        if self.state is not None:
            pl_module.load_state_dict(self.state)


def fit(system: pl.LightningModule, train, val=None, max_epochs: int = 20, progress: bool = False,
        accelerator: str = "cpu", callbacks: list[pl.Callback] | None = None) -> pl.Trainer:
    """Train ``system`` with deterministic algorithms and return the trainer (seed before building it)."""
    quiet = logging.getLogger("pytorch_lightning")
    level = quiet.level
    if not progress:
        quiet.setLevel(logging.WARNING)
    try:
        trainer = pl.Trainer(max_epochs=max_epochs, accelerator=accelerator, devices=1, deterministic=True,
                             logger=False, enable_checkpointing=False, enable_model_summary=progress,
                             enable_progress_bar=progress, num_sanity_val_steps=0, callbacks=callbacks)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            trainer.fit(system, train, val)
    finally:
        quiet.setLevel(level)
    return trainer


def toy_tagging(N: int = 512, T: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A tagging toy that needs the right context: token 2 is tagged 1 if the *next* token is 3, else 0.

    Tokens are 1..5 (0 is padding); every other token's tag is its id. A forward reader cannot
    know the tag of a 2 when it reads it; a backward or bidirectional one can.
    """
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, 6, (N, T), generator=g)  # (N, T)
    tags = tokens.clone()
    following = torch.cat([tokens[:, 1:], torch.zeros(N, 1, dtype=tokens.dtype)], dim=1)
    tags[tokens == 2] = (following[tokens == 2] == 3).long()
    return tokens, tags


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Tag a toy sequence forward, backward or both ways.")
    parser.add_argument("--direction", choices=DIRECTIONS, default="both")
    parser.add_argument("--hidden", type=int, default=16, help="H of each direction")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accelerator", default="cpu", help="cpu, gpu or auto")
    parser.add_argument("--no-progress", action="store_true", help="hide Lightning's progress bar")
    args = parser.parse_args(argv)
    tokens, tags = toy_tagging()
    loader = lambda a, b, shuffle: torch.utils.data.DataLoader(  # noqa: E731
        torch.utils.data.TensorDataset(tokens[a:b], tags[a:b]), batch_size=64, shuffle=shuffle)
    pl.seed_everything(args.seed, verbose=False)
    system = TaggerSystem(6, 6, 16, args.hidden, args.direction)
    trainer = fit(system, loader(0, 384, True), loader(384, 512, False), args.epochs,
                  progress=not args.no_progress, accelerator=args.accelerator)
    print(f"{args.direction}: validation accuracy {float(trainer.callback_metrics['val_acc']):.3f}")


if __name__ == "__main__":
    main()
