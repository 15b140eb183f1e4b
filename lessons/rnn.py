r"""Vanilla recurrent neural network (RNN), written from its equation, a drop-in for ``torch.nn.RNN``.

A recurrent layer reads a sequence one time step at a time and carries a hidden state from
step to step; unrolled in time, every step is the *same* cell with the same weights.
With row vectors, as in the course notes' shape rule (1, D)(D, H) = (1, H):

$$
h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b), \qquad h_0 = 0, \qquad y_t = h_t W_{hy} + c
$$

Letters: N batch, T time steps, D input features, H hidden units, C outputs.
`RNNCell` and `RNN` take ``torch.nn.RNNCell``'s and ``torch.nn.RNN``'s arguments, inputs and outputs
(``batch_first=False`` by default, ``PackedSequence`` in and out, stacked and bidirectional layers);
`RNN.from_torch` and `RNN.to_torch` move the weights. `ManyToOne` and `ManyToMany` put a linear
head on any such layer (torch.nn's or this one); `RNNSystem` trains them with Lightning.

To run:

```bash
python lessons/rnn.py fit --trainer.max_epochs 200     # "hell" -> "ello" on the built-in text
python lessons/rnn.py fit --help                       # every model, data and trainer option
python lessons/rnn.py fit --print_config > run.yaml    # a YAML file that reproduces the run
```

The file imports only the standard library, torch, pytorch_lightning and torchmetrics (plus
jsonargparse for the command line), so it can be copied into a project on its own.
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

__all__ = ["RNNCell", "RNN", "ManyToOne", "ManyToMany", "RNNSystem", "CharData", "generate"]


# --8<-- [start:cell]
class RNNCell(nn.Module):
    r"""One step, $h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b)$, with ``torch.nn.RNNCell``'s interface.

    Examples
    --------
    >>> cell = RNNCell(input_size=4, hidden_size=3)
    >>> tuple(cell(torch.zeros(2, 4), torch.zeros(2, 3)).shape)  # (N, D), (N, H) -> (N, H)
    (2, 3)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh") -> None:
        super().__init__()
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"expected nonlinearity 'tanh' or 'relu', got {nonlinearity!r}")
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        self.W_xh = nn.Parameter(torch.empty(input_size, hidden_size))  # (D, H)
        self.W_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))  # (H, H)
        self.b = nn.Parameter(torch.empty(hidden_size)) if bias else None  # (H,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch.nn's scale, U(-1/sqrt(H), 1/sqrt(H)), keeps tanh out of saturation at the start
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        x = _check_step(input, self.input_size)  # (N, D)
        h = self.initial_state(x.shape[0], x) if hx is None else hx.reshape(x.shape[0], -1)
        h = self.recur(self.project(x), h)  # (N, H)
        return h if input.dim() == 2 else h[0]

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The part of a step that does not depend on the state, for any number of steps at once."""
        return x @ self.W_xh if self.b is None else x @ self.W_xh + self.b  # (..., H)

    def recur(self, xp_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        """The part that does: ``xp_t = x_t W_xh + b`` (N, H) and ``h_{t-1}`` (N, H) give ``h_t``."""
        a = xp_t + h_prev @ self.W_hh  # (N, H)
        return torch.tanh(a) if self.nonlinearity == "tanh" else torch.relu(a)

    def initial_state(self, N: int, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(N, self.hidden_size)  # h_0 = 0
# --8<-- [end:cell]


def _check_step(input: torch.Tensor, D: int) -> torch.Tensor:
    if not isinstance(input, torch.Tensor) or input.dim() not in (1, 2) or input.shape[-1] != D:
        got = tuple(input.shape) if isinstance(input, torch.Tensor) else type(input).__name__
        raise ValueError(f"expected input of shape (N, D) = (*, {D}) or (D,), got {got}")
    return input if input.dim() == 2 else input.unsqueeze(0)


# The machinery below is the same in lessons/rnn.py, lstm.py and gru.py (each file is copied alone);
# a state is a tensor (RNN, GRU) or a tuple of tensors (LSTM).
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
        raise ValueError(f"expected a floating-point input, got {input.dtype} (embed or one-hot encode token ids first)")
    if input.shape[-2 if input.dim() == 2 else (1 if batch_first else 0)] == 0:
        raise ValueError(f"expected at least one time step, got input of shape {tuple(input.shape)}")
    if input.dim() == 2:
        return input.unsqueeze(1), None, True
    return (input.transpose(0, 1) if batch_first else input), None, False


def _reverse(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence of (T, N, ...) within its own length; the padding stays where it is."""
    if lengths is None:
        return x.flip(0)
    t = torch.arange(x.shape[0], device=x.device).unsqueeze(1)  # (T, 1)
    index = torch.where(t < lengths, lengths - 1 - t, t)  # (T, N)
    return x.gather(0, index.view(*index.shape, *[1] * (x.dim() - 2)).expand_as(x))


def _scan(cell: nn.Module, xp: torch.Tensor, lengths: torch.Tensor | None, state):
    """Run ``cell.recur`` over (T, N, ·); a sequence's state stops changing after its last step."""
    outputs = []
    for t, xp_t in enumerate(xp.unbind(0)):  # unbind, not xp[t] in a loop: keeps backward O(T)
        state_t = cell.recur(xp_t, state)
        h = state_t[0] if isinstance(state_t, tuple) else state_t  # an LSTM's state is (h, c)
        if lengths is not None:
            live = (t < lengths).unsqueeze(1)  # (N, 1)
            state_t = _map(lambda n, s: torch.where(live, n, s), state_t, state)
            h = h * live
        outputs.append(h)
        state = state_t
    return torch.stack(outputs), state  # (T, N, H): zeros past each length, as torch.nn pads


def _restore(out: torch.Tensor, input, lengths, batch_first: bool, unbatched: bool):
    """Give the output the layout of the input: packed like it, unbatched, or (N, T, ·)/(T, N, ·)."""
    if isinstance(input, PackedSequence):
        order = input.sorted_indices
        data = pack_padded_sequence(out if order is None else out.index_select(1, order),
                                    lengths if order is None else lengths[order].cpu()).data
        return PackedSequence(data, input.batch_sizes, input.sorted_indices, input.unsorted_indices)
    if unbatched:
        return out[:, 0]
    return out.transpose(0, 1) if batch_first else out


# --8<-- [start:layer]
class RNN(nn.Module):
    """Cells unrolled over time, stacked and optionally bidirectional: ``torch.nn.RNN``'s interface.

    Returns ``(output, h_n)``: the top layer's states at every step, (T, N, num_directions·H) (or
    (N, T, ·) with ``batch_first=True``, or packed like the input), and the last state of every
    layer and direction, (num_layers·num_directions, N, H).

    Examples
    --------
    >>> layer = RNN(input_size=4, hidden_size=3, batch_first=True)
    >>> output, h_n = layer(torch.zeros(5, 7, 4))  # (N, T, D)
    >>> tuple(output.shape), tuple(h_n.shape)
    ((5, 7, 3), (1, 5, 3))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__()
        if num_layers < 1 or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"expected num_layers >= 1 and 0 <= dropout <= 1, got {num_layers}, {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.nonlinearity, self.bias, self.batch_first = nonlinearity, bias, batch_first
        self.dropout, self.bidirectional = dropout, bidirectional
        K = 2 if bidirectional else 1
        self.cells = nn.ModuleList(  # layer by layer, forward direction first, as torch.nn orders h_n
            RNNCell(input_size if layer == 0 else K * hidden_size, hidden_size, bias, nonlinearity)
            for layer in range(num_layers) for _ in range(K)
        )

    def forward(self, input, hx=None):
        x, lengths, unbatched = _as_padded(input, self.batch_first, self.input_size)  # (T, N, D)
        K = 2 if self.bidirectional else 1
        h0 = self._initial_state(hx, x, unbatched)  # (L·K, N, H)
        finals = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(K):  # the backward direction reads each sequence from its last real step
                cell = self.cells[layer * K + direction]
                seq = x if direction == 0 else _reverse(x, lengths)
                out, state = _scan(cell, cell.project(seq), lengths, _map(lambda s: s[layer * K + direction], h0))
                outputs.append(out if direction == 0 else _reverse(out, lengths))
                finals.append(state)
            x = torch.cat(outputs, dim=-1)  # (T, N, K·H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout)  # between layers, as torch.nn
        h_n = _map(lambda *s: torch.stack(s), *finals) if isinstance(finals[0], tuple) else torch.stack(finals)
        if unbatched:
            h_n = _map(lambda s: s[:, 0], h_n)
        return _restore(x, input, lengths, self.batch_first, unbatched), h_n
# --8<-- [end:layer]

    def _initial_state(self, hx, x, unbatched: bool):
        shape = ((2 if self.bidirectional else 1) * self.num_layers, x.shape[1], self.hidden_size)
        if hx is None:
            return _map(lambda s: s.unsqueeze(0).expand(shape[0], -1, -1), self.cells[0].initial_state(x.shape[1], x))
        for s in hx if isinstance(hx, tuple) else (hx,):
            got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
            if not isinstance(s, torch.Tensor) or (tuple(s.shape) != shape and not (unbatched and tuple(s.shape) == (shape[0], shape[2]))):
                raise ValueError(f"expected an initial state of shape (L·num_directions, N, H) = {shape}, got {got}")
        return _map(lambda s: s.unsqueeze(1) if unbatched else s, hx)

    def _torch_names(self):
        K = 2 if self.bidirectional else 1
        for k, cell in enumerate(self.cells):
            yield cell, f"l{k // K}{'_reverse' if k % K else ''}"

    @classmethod
    def from_torch(cls, reference: nn.RNN) -> "RNN":
        """A copy of a ``torch.nn.RNN``: ``W_xh = weight_ih.T``, ``W_hh = weight_hh.T``, ``b = b_ih + b_hh``."""
        layer = cls(reference.input_size, reference.hidden_size, reference.num_layers, reference.nonlinearity,
                    reference.bias, reference.batch_first, reference.dropout, reference.bidirectional)
        layer = layer.to(reference.weight_ih_l0)
        with torch.no_grad():
            for cell, suffix in layer._torch_names():
                cell.W_xh.copy_(getattr(reference, f"weight_ih_{suffix}").T)
                cell.W_hh.copy_(getattr(reference, f"weight_hh_{suffix}").T)
                if cell.b is not None:
                    cell.b.copy_(getattr(reference, f"bias_ih_{suffix}") + getattr(reference, f"bias_hh_{suffix}"))
        return layer

    def to_torch(self) -> nn.RNN:
        """The same function as a ``torch.nn.RNN`` (its two biases hold ``b`` and zeros)."""
        reference = nn.RNN(self.input_size, self.hidden_size, self.num_layers, self.nonlinearity, self.bias,
                           self.batch_first, self.dropout, self.bidirectional).to(self.cells[0].W_xh)
        with torch.no_grad():
            for cell, suffix in self._torch_names():
                getattr(reference, f"weight_ih_{suffix}").copy_(cell.W_xh.T)
                getattr(reference, f"weight_hh_{suffix}").copy_(cell.W_hh.T)
                if cell.b is not None:
                    getattr(reference, f"bias_ih_{suffix}").copy_(cell.b)
                    getattr(reference, f"bias_hh_{suffix}").zero_()
        return reference


def _last_state(rnn: nn.Module, h_n) -> torch.Tensor:
    """The top layer's final state from any torch.nn-style ``h_n``: both directions side by side."""
    h_n = h_n[0] if isinstance(h_n, tuple) else h_n  # an LSTM's (h_n, c_n)
    K = 2 if getattr(rnn, "bidirectional", False) else 1
    return torch.cat(list(h_n[-K:]), dim=-1)  # (N, K·H)


# --8<-- [start:heads]
class ManyToOne(nn.Module):
    """Read the whole sequence, answer once from its last state: (N, T, D) → (N, C).

    ``rnn`` is any ``batch_first=True`` layer with torch.nn's interface (``nn.RNN``, ``nn.LSTM``,
    this file's `RNN` …). With ``lengths`` each sequence answers from its own last real step.
    """

    def __init__(self, rnn: nn.Module, output_size: int) -> None:
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(rnn.hidden_size * (2 if rnn.bidirectional else 1), output_size)  # W_hy, c

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:
            x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h_n = self.rnn(x)
        return self.head(_last_state(self.rnn, h_n))  # (N, C)


class ManyToMany(nn.Module):
    """Answer at every step from that step's state: (N, T, D) → (N, T, C); padded steps give the bias."""

    def __init__(self, rnn: nn.Module, output_size: int) -> None:
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(rnn.hidden_size * (2 if rnn.bidirectional else 1), output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            return self.head(self.rnn(x)[0])  # (N, T, C)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        hs, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.shape[1])
        return self.head(hs)  # (N, T, C)
# --8<-- [end:heads]


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``x``, ``(x,)``, ``(x, y)`` or ``(x, lengths, y)`` → ``(x, lengths, y)``; lengths come only third-last."""
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    if len(batch) == 3:
        return tuple(batch)
    return batch[0], None, (batch[1] if len(batch) == 2 else None)


# --8<-- [start:system]
class RNNSystem(pl.LightningModule):
    """Trains any sequence model with Lightning: cross-entropy and accuracy, or MSE and MAE.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(x)`` or ``model(x, lengths)``; returns (N, C) or (N, T, C).
    task : {"classification", "regression"}
        Class targets (−100 marks padding, ignored by the loss *and* the accuracy) or real values.
    lr : float
        Adam's learning rate.
    """

    def __init__(self, model: nn.Module, task: str = "classification", lr: float = 0.01) -> None:
        super().__init__()
        if task not in ("classification", "regression"):
            raise ValueError(f"expected task 'classification' or 'regression', got {task!r}")
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        metric = torchmetrics.MeanMetric if task == "classification" else torchmetrics.MeanAbsoluteError
        # one metric object per stage: train and validation states must not mix
        self.metrics = nn.ModuleDict({f"{stage}_metric": metric() for stage in ("train", "val", "test")})

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x) if lengths is None else self.model(x, lengths)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, lengths, y = split_batch(batch)
        out = self(x, lengths)
        if self.hparams.task == "classification":
            logits, target = out.reshape(-1, out.shape[-1]), y.reshape(-1)  # (N·T, C), (N·T,)
            loss = F.cross_entropy(logits, target, ignore_index=-100)
            real = target != -100
            self.metrics[f"{stage}_metric"].update((logits.argmax(-1)[real] == target[real]).float())
            name = "acc"
        else:
            loss = F.mse_loss(out, y.view_as(out))
            self.metrics[f"{stage}_metric"].update(out, y.view_as(out))
            name = "mae"
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(x), sync_dist=True)
        self.log(f"{stage}_{name}", self.metrics[f"{stage}_metric"], prog_bar=True, on_step=False, on_epoch=True)
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


class CharData(pl.LightningDataModule):
    """Next-character prediction on one short text, one-hot inputs: "hell" → "ello" for "hello"."""

    def __init__(self, text: str = "hello") -> None:
        super().__init__()
        if len(text) < 2:
            raise ValueError(f"expected a text of at least 2 characters, got {text!r}")
        self.chars = list(dict.fromkeys(text))  # h, e, l, o
        ids = torch.tensor([self.chars.index(c) for c in text])
        x = F.one_hot(ids[:-1], len(self.chars)).float().unsqueeze(0)  # (1, T, V)
        self.dataset = torch.utils.data.TensorDataset(x, ids[1:].unsqueeze(0))  # targets (1, T)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.dataset, batch_size=1)

    val_dataloader = predict_dataloader = train_dataloader


@torch.no_grad()
def generate(model: nn.Module, prefix: list[int], steps: int, vocab_size: int) -> list[int]:
    """Greedy generation with a next-token model on one-hot (1, t, V) inputs: append the argmax."""
    if not prefix:
        raise ValueError("expected a non-empty prefix of token ids to start generating from")
    device = next(model.parameters()).device
    ids = list(prefix)
    for _ in range(steps):
        x = F.one_hot(torch.tensor([ids], device=device), vocab_size).float()  # (1, t, V)
        ids.append(int(model(x)[0, -1].argmax()))
    return ids


def main(args: list[str] | None = None) -> None:
    """``LightningCLI`` over `RNNSystem` and any data module; the defaults learn "hello"."""
    from pytorch_lightning.cli import LightningCLI

    here = __name__  # the importable name (see the __main__ block), so checkpoints can name their classes
    model = {"class_path": f"{here}.ManyToMany", "init_args": {
        "rnn": {"class_path": f"{here}.RNN", "init_args": {"input_size": 4, "hidden_size": 8, "batch_first": True}},
        "output_size": 4}}

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model.model": model, "data": {"class_path": f"{here}.CharData"}, "model.lr": 0.05,
                                 "trainer.max_epochs": 200, "trainer.log_every_n_steps": 1})

        def instantiate_classes(self):
            super().instantiate_classes()
            # the system ignores its model object; its class path and arguments let load_from_checkpoint rebuild it
            self.model.hparams["model"] = self.config_dump["model"]["model"]

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix
    CLI(RNNSystem, CharData, subclass_mode_data=True, seed_everything_default=0, args=args)


if __name__ == "__main__":
    # run the importable module's main, not __main__'s: the classes a checkpoint names must import again
    import importlib
    import pathlib

    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
