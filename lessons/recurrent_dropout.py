r"""Recurrent dropout: one dropout mask per sequence, on the inputs and on the recurrent state.

Ordinary dropout draws a new mask for every value it sees. Inside a recurrent layer that would
mean a new mask at every time step, so the state that carries the memory is disturbed again and
again. Variational dropout (Gal and Ghahramani 2016; Keras's ``dropout`` and
``recurrent_dropout``) draws **one** mask per sequence and reuses it at every step:

$$
\tilde{x}_t = x_t \odot m_x, \qquad \tilde{h}_{t-1} = h_{t-1} \odot m_h, \qquad
m_x \sim \frac{\mathrm{Bernoulli}(1 - p_x)}{1 - p_x} \in \mathbb{R}^{D}, \quad
m_h \sim \frac{\mathrm{Bernoulli}(1 - p_h)}{1 - p_h} \in \mathbb{R}^{H}
$$

and the cell reads $\tilde{x}_t$ and $\tilde{h}_{t-1}$ instead of $x_t$ and $h_{t-1}$. An LSTM's
cell state $c_{t-1}$ is never masked, so its memory is never wiped. A GRU or plain RNN has one
state, which a GRU also carries forward ($z_t \odot \tilde{h}_{t-1}$): there the state mask is 0 or 1,
without the $1/(1 - p_h)$, or the kept units would grow by that factor at every step. In evaluation
mode there are no masks and the layer is the plain cell unrolled (``torch.nn.LSTM`` / ``GRU`` / ``RNN``).

`RecurrentDropout` wraps **any** cell with torch.nn's cell interface (``nn.LSTMCell``,
``nn.GRUCell``, ``nn.RNNCell`` or the lessons' cells) and is a one-layer drop-in for the matching
torch.nn layer: ``(output, h_n)`` or ``(output, (h_n, c_n))``, ``batch_first``, an initial state,
``PackedSequence`` in and out. `Forecaster` puts a linear head on any such layer, `Dense` is the
dense baseline, `ForecastSystem` trains either with Lightning. Letters: N batch, T time steps,
D input features, H hidden units.

To run:

```bash
python lessons/recurrent_dropout.py fit --trainer.max_epochs 5    # GRU cell, dropout 0.2 / 0.2, a noisy cycle
python lessons/recurrent_dropout.py fit --data.path weather.pt --model.target_std 10.52   # or --help
```

``weather.pt`` holds ``{"train": (x, y), "val": (x, y), "test": (x, y)}``. The file imports only the standard
library, torch, pytorch_lightning and torchmetrics (plus jsonargparse for the command line).
"""

from __future__ import annotations

import math
import warnings

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = ["sequence_mask", "RecurrentDropout", "Dense", "Forecaster", "ForecastSystem", "WindowData"]


# --8<-- [start:mask]
def sequence_mask(N: int, size: int, p: float, like: torch.Tensor) -> torch.Tensor:
    """One inverted-dropout mask per sequence: (N, size), entries 0 or 1/(1-p)."""
    keep = torch.full((N, size), 1.0 - p, dtype=like.dtype, device=like.device)
    return torch.bernoulli(keep) / (1.0 - p)  # (N, size)
# --8<-- [end:mask]


# The same helpers as lessons/rnn.py (each file is copied alone); a state is h or a tuple (h, c).
def _map(f, *states):
    return tuple(map(f, *states)) if isinstance(states[0], tuple) else f(*states)


def _as_padded(input, batch_first: bool, D: int):
    """Time-major padded (T, N, D) tensor, lengths (N,) or None, and whether the input was unbatched."""
    if isinstance(input, PackedSequence):
        x, lengths = pad_packed_sequence(input)  # original batch order
        if x.shape[-1] != D:
            raise ValueError(f"expected a PackedSequence of D = {D} features, got {x.shape[-1]}")
        return x, lengths.to(x.device), False
    layout = "(N, T, D)" if batch_first else "(T, N, D)"
    if not isinstance(input, torch.Tensor) or input.dim() not in (2, 3) or input.shape[-1] != D:
        got = tuple(input.shape) if isinstance(input, torch.Tensor) else type(input).__name__
        raise ValueError(f"expected input of shape {layout} = (*, *, {D}) or unbatched (T, D), got {got}")
    if not input.is_floating_point():
        raise ValueError(f"expected a floating-point input, got {input.dtype} (embed or one-hot encode token ids)")
    if input.shape[-2 if input.dim() == 2 else (1 if batch_first else 0)] == 0:
        raise ValueError(f"expected at least one time step, got input of shape {tuple(input.shape)}")
    unbatched = input.dim() == 2
    return input.unsqueeze(1) if unbatched else input.transpose(0, 1) if batch_first else input, None, unbatched


def _restore(out: torch.Tensor, input, lengths, batch_first: bool, unbatched: bool):
    """Give the output the layout of the input: packed like it, unbatched, or (N, T, ·)/(T, N, ·)."""
    if isinstance(input, PackedSequence):
        order = input.sorted_indices
        data = pack_padded_sequence(out if order is None else out.index_select(1, order),
                                    (lengths if order is None else lengths[order]).cpu()).data
        return PackedSequence(data, input.batch_sizes, input.sorted_indices, input.unsorted_indices)
    return out[:, 0] if unbatched else out.transpose(0, 1) if batch_first else out


# --8<-- [start:layer]
class RecurrentDropout(nn.Module):
    """Unroll any torch.nn-style cell with one input mask and one state mask per sequence.

    Parameters
    ----------
    cell : nn.Module
        Called as ``cell(x_t, state)``: ``nn.LSTMCell``, ``nn.GRUCell``, ``nn.RNNCell`` or a lesson's cell.
    dropout : float
        $p_x$, the probability of dropping an input feature (Keras's ``dropout``).
    recurrent_dropout : float
        $p_h$, the probability of dropping a unit of $h_{t-1}$ where the cell reads it.
    batch_first : bool
        Tensors are (N, T, D) instead of torch.nn's default (T, N, D).
    per_step : bool
        Draw new masks at every step instead (the naive way, kept only for comparison).

    Examples
    --------
    >>> layer = RecurrentDropout(nn.LSTMCell(4, 3), dropout=0.2, recurrent_dropout=0.2, batch_first=True)
    >>> output, (h_n, c_n) = layer(torch.zeros(5, 7, 4))  # (N, T, D)
    >>> tuple(output.shape), tuple(h_n.shape), tuple(c_n.shape)
    ((5, 7, 3), (1, 5, 3), (1, 5, 3))
    """

    def __init__(self, cell: nn.Module, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 batch_first: bool = False, per_step: bool = False) -> None:
        super().__init__()
        for name, p in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"expected 0 <= {name} < 1, got {p}")
        self.cell, self.dropout, self.recurrent_dropout = cell, dropout, recurrent_dropout
        self.batch_first, self.per_step = batch_first, per_step
        self.input_size, self.hidden_size = cell.input_size, cell.hidden_size
        self.num_layers, self.bidirectional = 1, False  # read by heads and wrappers, as torch.nn's

    def forward(self, input, hx=None):
        x, lengths, unbatched = _as_padded(input, self.batch_first, self.input_size)  # (T, N, D)
        T, N, D = x.shape
        state = self._initial_state(hx, x, unbatched)  # h or (h, c), each (N, H)
        p_x = self.dropout if self.training else 0.0  # evaluation: no masks at all
        p_h = self.recurrent_dropout if self.training else 0.0
        if p_x:  # (1, N, D): the same at every step, or (T, N, D): new at every step
            x = x * sequence_mask(T * N if self.per_step else N, D, p_x, x).view(-1, N, D)
        m_h = sequence_mask(N, self.hidden_size, p_h, x) if p_h else None  # (N, H), drawn once
        step = self.cell
        if hasattr(self.cell, "project") and hasattr(self.cell, "recur"):  # a lesson's cell:
            x, step = self.cell.project(x), self.cell.recur  # the input part of all steps in one product
        outputs = []
        for t, x_t in enumerate(x.unbind(0)):  # unbind, not x[t] in a loop: keeps backward O(T)
            if m_h is not None and self.per_step:
                m_h = sequence_mask(N, self.hidden_size, p_h, x)
            if m_h is None:
                read = state
            elif isinstance(state, tuple):  # $$\tilde h_{t-1} = h_{t-1} \odot m_h$$; an LSTM's c_{t-1} is never masked
                read = (state[0] * m_h, *state[1:])
            else:  # a GRU passes on what it reads (z ⊙ h̃): 0/1 masks, or kept units grow 1/(1-p) per step
                read = state * (m_h > 0)
            new = step(x_t, read)
            if lengths is not None:  # a finished sequence keeps its state
                live = (t < lengths).unsqueeze(1)  # (N, 1)
                new = _map(lambda n, s: torch.where(live, n, s), new, state)
            state = new
            h = state[0] if isinstance(state, tuple) else state
            outputs.append(h if lengths is None else h * (t < lengths).unsqueeze(1))
        h_n = _map(lambda s: s.unsqueeze(0) if not unbatched else s, state)  # (1, N, H) as torch.nn
        return _restore(torch.stack(outputs), input, lengths, self.batch_first, unbatched), h_n
# --8<-- [end:layer]

    def _initial_state(self, hx, x, unbatched: bool):
        N, H = x.shape[1], self.hidden_size
        if hx is None:  # a lesson's cell says its zero state; torch.nn's LSTMCell has (h, c)
            if hasattr(self.cell, "initial_state"):
                return self.cell.initial_state(N, x)
            h = x.new_zeros(N, H)
            return (h, h.clone()) if isinstance(self.cell, nn.LSTMCell) else h
        for s in hx if isinstance(hx, tuple) else (hx,):
            if not isinstance(s, torch.Tensor) or tuple(s.shape) not in ((1, N, H), (1, H) if unbatched else ()):
                got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise ValueError(f"expected an initial state of shape (1, N, H) = {(1, N, H)}, got {got}")
        return _map(lambda s: s.reshape(N, H), hx)


def _last_state(rnn: nn.Module, h_n) -> torch.Tensor:
    """The top layer's final state from any torch.nn-style ``h_n``: both directions side by side."""
    h_n = h_n[0] if isinstance(h_n, tuple) else h_n  # an LSTM's (h_n, c_n)
    K = 2 if getattr(rnn, "bidirectional", False) else 1
    return torch.cat(list(h_n[-K:]), dim=-1)  # (N, K·H)


# --8<-- [start:models]
class Dense(nn.Module):
    """The dense baseline: flatten the window, one hidden layer of ``hidden_size`` ReLU units."""

    def __init__(self, steps: int, input_size: int, hidden_size: int = 32) -> None:
        super().__init__()
        self.steps, self.input_size = steps, input_size
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(steps * input_size, hidden_size), nn.ReLU(),
                                 nn.Linear(hidden_size, 1))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != (self.steps, self.input_size):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected x of shape (N, T, D) = (*, {self.steps}, {self.input_size}), got {got}")
        return self.net(x)  # (N, 1)


class Forecaster(nn.Module):
    """Many-to-one: read the window with any ``batch_first=True`` layer, predict from its last state.

    With ``lengths`` each window answers from its own last real step (the layer gets packed input).
    """

    def __init__(self, rnn: nn.Module, output_size: int = 1) -> None:
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(rnn.hidden_size * (2 if rnn.bidirectional else 1), output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:
            x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h_n = self.rnn(x)
        return self.head(_last_state(self.rnn, h_n))  # (N, 1)
# --8<-- [end:models]


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``x``, ``(x,)``, ``(x, y)`` or ``(x, lengths, y)`` → ``(x, lengths, y)``."""
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    return tuple(batch) if len(batch) == 3 else (batch[0], None, batch[1] if len(batch) == 2 else None)


# --8<-- [start:system]
class ForecastSystem(pl.LightningModule):
    """L1 loss on normalised targets; the MAE is logged in the target's units (× ``target_std``)."""

    def __init__(self, model: nn.Module, target_std: float = 1.0, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.metrics = nn.ModuleDict({f"{s}_metric": torchmetrics.MeanAbsoluteError()
                                      for s in ("train", "val", "test")})

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x) if lengths is None else self.model(x, lengths)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, lengths, y = split_batch(batch)
        pred = self(x, lengths)  # (N, 1)
        loss = F.l1_loss(pred, y.view_as(pred))
        std = self.hparams.target_std
        self.metrics[f"{stage}_metric"].update(pred * std, y.view_as(pred) * std)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x), sync_dist=True)
        self.log(f"{stage}_mae", self.metrics[f"{stage}_metric"], on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx):
        x, lengths, _ = split_batch(batch)
        return self(x, lengths)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
# --8<-- [end:system]


class WindowData(pl.LightningDataModule):
    """Windows (N, T, D) → the value 8 steps after each window: a noisy cycle, or a saved dict.

    ``path`` names a ``torch.save``'d ``{"train": (x, y), "val": (x, y), "test": (x, y)}``;
    without it the data is a daily cycle of period 8 plus noise, D = 1, T = 40.
    """

    def __init__(self, path: str | None = None, batch_size: int = 128) -> None:
        super().__init__()
        self.path, self.batch_size = path, batch_size
        self.parts = torch.load(path) if path else _noisy_cycle()

    def _loader(self, part: str, shuffle: bool = False):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*self.parts[part]), self.batch_size, shuffle)

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val")

    def test_dataloader(self):
        return self._loader("test")

    predict_dataloader = test_dataloader


def _noisy_cycle(N: int = 1024, T: int = 40) -> dict:
    g = torch.Generator().manual_seed(0)
    t = torch.arange(N + T + 8).float()
    series = torch.sin(2 * math.pi * t / 8) + 0.3 * torch.randn(len(t), generator=g)
    x = torch.stack([series[i:i + T] for i in range(N)]).unsqueeze(-1)  # (N, T, 1)
    y = series[T + 7:T + 7 + N].unsqueeze(-1)  # (N, 1): 8 steps after the window's last value
    a, b = int(0.6 * N), int(0.8 * N)
    return {"train": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "test": (x[b:], y[b:])}


def main(args: list[str] | None = None) -> None:
    """``LightningCLI`` over `ForecastSystem`; the defaults train a GRU cell with dropout 0.2 / 0.2."""
    from pytorch_lightning.cli import LightningCLI

    here = __name__  # the importable name (see the __main__ block), so checkpoints can name their classes
    cell = {"class_path": "torch.nn.GRUCell", "init_args": {"input_size": 1, "hidden_size": 32}}
    model = {"class_path": f"{here}.Forecaster", "init_args": {"rnn": {
        "class_path": f"{here}.RecurrentDropout",
        "init_args": {"cell": cell, "dropout": 0.2, "recurrent_dropout": 0.2, "batch_first": True}}}}

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model.model": model, "data": {"class_path": f"{here}.WindowData"},
                                 "trainer.max_epochs": 20, "trainer.log_every_n_steps": 1})

        def instantiate_classes(self):
            super().instantiate_classes()
            # the system ignores its model object; its class path and arguments let load_from_checkpoint rebuild it
            self.model.hparams["model"] = self.config_dump["model"]["model"]

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix
    CLI(ForecastSystem, WindowData, subclass_mode_data=True, seed_everything_default=0, args=args)


if __name__ == "__main__":
    # run the importable module's main, not __main__'s: the classes a checkpoint names must import again
    import importlib
    import pathlib

    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
