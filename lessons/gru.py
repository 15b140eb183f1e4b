r"""Gated recurrent unit (GRU), written from its equations, a drop-in for ``torch.nn.GRU``.

One state $h_t$ (an LSTM keeps two): the reset gate $r_t$ decides how much of $h_{t-1}$ the candidate $g_t$ sees,
the update gate $z_t$ mixes $h_{t-1}$ and $g_t$. Row vectors, ``torch.nn.GRU``'s convention, blocks fused as r, z, g:
$$r_t = \sigma(x_t W_{xr} + h_{t-1} W_{hr} + b_r), \qquad z_t = \sigma(x_t W_{xz} + h_{t-1} W_{hz} + b_z),$$
$$g_t = \tanh\big(x_t W_{xg} + b_{xg} + r_t \odot (h_{t-1} W_{hg} + b_{hg})\big), \qquad
h_t = z_t \odot h_{t-1} + (1 - z_t) \odot g_t.$$
The notes apply the reset *before* the product, $g_t = \tanh(x_t W_{xg} + (r_t \odot h_{t-1}) W_{hg} + b_g)$:
a different function of the same weights (`notes_gru_step`). N batch, T steps, D inputs, H hidden units.
`GRUCell`, `GRU` take torch.nn's arguments, inputs (tensor, ``PackedSequence``, initial state) and outputs;
`ManyToOne` puts a head on any such layer, `GRUSystem` trains it. Imports: stdlib, torch, Lightning, torchmetrics.

To run: ``python lessons/gru.py fit`` (multiplication problem, T = 30), ``fit --help``, ``fit --print_config``.
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

# --8<-- [start:cell]
class GRUCell(nn.Module):
    r"""One GRU step, PyTorch's convention and ``torch.nn.GRUCell``'s interface. $W_{xh}$ (D, 3H), $W_{hh}$ (H, 3H)
    hold r, z, g side by side; ``b`` (3H,) is the input-side bias (r, z: torch's two summed), ``b_hg`` (H,) g's other.

    >>> tuple(GRUCell(4, 3)(torch.zeros(2, 4), torch.zeros(2, 3)).shape)  # (N, D), (N, H) -> (N, H)
    (2, 3)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_xh = nn.Parameter(torch.empty(input_size, 3 * hidden_size))  # (D, 3H)
        self.W_hh = nn.Parameter(torch.empty(hidden_size, 3 * hidden_size))  # (H, 3H)
        self.b = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None  # (3H,)
        self.b_hg = nn.Parameter(torch.empty(hidden_size)) if bias else None  # (H,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in self.parameters():  # torch.nn's U(-1/√H, 1/√H)
            nn.init.uniform_(p, -1 / math.sqrt(self.hidden_size), 1 / math.sqrt(self.hidden_size))

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(input, torch.Tensor) or input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            got = tuple(input.shape) if isinstance(input, torch.Tensor) else type(input).__name__
            raise ValueError(f"expected input of shape (N, D) = (*, {self.input_size}) or (D,), got {got}")
        x = input.view(-1, self.input_size)  # (N, D), N = 1 for an unbatched step
        h = self.recur(self.project(x), self.initial_state(len(x), x) if hx is None else hx.view(len(x), -1))
        return h if input.dim() == 2 else h[0]  # (N, H) or (H,)

    def project(self, x: torch.Tensor) -> torch.Tensor:  # the part of a step that does not need h_{t-1}: all T at once
        return x @ self.W_xh if self.b is None else x @ self.W_xh + self.b  # (..., 3H)

    def recur(self, xp_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:  # xp_t = x_t W_xh + b, (N, 3H)
        xr, xz, xg = xp_t.chunk(3, dim=-1)  # (N, H) each
        hr, hz, hg = (h_prev @ self.W_hh).chunk(3, dim=-1)  # one product for all three blocks
        hg = hg if self.b_hg is None else hg + self.b_hg
        r = torch.sigmoid(xr + hr)  # $$r_t = \sigma(x_t W_{xr} + h_{t-1} W_{hr} + b_r)$$
        z = torch.sigmoid(xz + hz)  # $$z_t = \sigma(x_t W_{xz} + h_{t-1} W_{hz} + b_z)$$
        g = torch.tanh(xg + r * hg)  # $$g_t = \tanh(x_t W_{xg} + b_{xg} + r_t \odot (h_{t-1} W_{hg} + b_{hg}))$$
        return z * h_prev + (1 - z) * g  # $$h_t = z_t \odot h_{t-1} + (1 - z_t) \odot g_t$$

    def initial_state(self, N: int, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(N, self.hidden_size)  # h_0 = 0
# --8<-- [end:cell]


# --8<-- [start:notes]
def notes_gru_step(cell: GRUCell, x_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
    r"""The notes' step with the same weights: $g_t = \tanh(x_t W_{xg} + (r_t \odot h_{t-1}) W_{hg} + b_g)$,
    $b_g = b_{xg} + b_{hg}$."""
    xr, xz, xg = cell.project(x_t).chunk(3, dim=-1)  # b_xg is already in xg
    hr, hz, _ = (h_prev @ cell.W_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    W_hg = cell.W_hh[:, 2 * cell.hidden_size :]  # (H, H)
    g = torch.tanh(xg + (r * h_prev) @ W_hg + (0 if cell.b_hg is None else cell.b_hg))  # r on h, then the product
    return z * h_prev + (1 - z) * g
# --8<-- [end:notes]


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
        raise ValueError(f"expected a floating-point input, got {input.dtype} (embed or one-hot encode token ids)")
    if input.shape[-2 if input.dim() == 2 else (1 if batch_first else 0)] == 0:
        raise ValueError(f"expected at least one time step, got input of shape {tuple(input.shape)}")
    unbatched = input.dim() == 2
    return input.unsqueeze(1) if unbatched else input.transpose(0, 1) if batch_first else input, None, unbatched


def _reverse(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence of (T, N, ...) within its own length; the padding stays where it is."""
    if lengths is None:
        return x.flip(0)  # all sequences are full length
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
                                    (lengths if order is None else lengths[order]).cpu()).data
        return PackedSequence(data, input.batch_sizes, input.sorted_indices, input.unsorted_indices)
    return out[:, 0] if unbatched else out.transpose(0, 1) if batch_first else out


# --8<-- [start:layer]
class GRU(nn.Module):
    """GRU cells unrolled over time, stacked and optionally bidirectional: ``torch.nn.GRU``'s interface.

    Returns ``(output, h_n)``: the top layer's states, (T, N, K·H) ((N, T, K·H) with ``batch_first``,
    packed like a packed input), and every layer's and direction's last state, (L·K, N, H).

    >>> layer = GRU(input_size=4, hidden_size=3, num_layers=2, batch_first=True)
    >>> output, h_n = layer(torch.zeros(5, 7, 4))  # (N, T, D)
    >>> tuple(output.shape), tuple(h_n.shape)
    ((5, 7, 3), (2, 5, 3))
    """
    _ARGUMENTS = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False):
        super().__init__()
        if num_layers < 1 or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"expected num_layers >= 1 and 0 <= dropout <= 1, got {num_layers}, {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, dropout, bidirectional
        K = 2 if bidirectional else 1
        self.cells = nn.ModuleList(  # layer by layer, forward direction first, as torch.nn orders h_n
            GRUCell(input_size if layer == 0 else K * hidden_size, hidden_size, bias)
            for layer in range(num_layers) for _ in range(K))

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
        h_n = _map(lambda *s: torch.stack(s)[:, 0] if unbatched else torch.stack(s), *finals)  # (L·K, N, H)
        return _restore(x, input, lengths, self.batch_first, unbatched), h_n
# --8<-- [end:layer]

    def _initial_state(self, hx, x, unbatched: bool):
        shape = ((2 if self.bidirectional else 1) * self.num_layers, x.shape[1], self.hidden_size)
        if hx is None:
            return _map(lambda s: s.expand(shape[0], -1, -1), _map(lambda s: s[None],
                                                                   self.cells[0].initial_state(shape[1], x)))
        hx = _map(lambda s: s.unsqueeze(1) if unbatched and isinstance(s, torch.Tensor) and s.dim() == 2 else s, hx)
        for s in hx if isinstance(hx, tuple) else (hx,):
            if not isinstance(s, torch.Tensor) or tuple(s.shape) != shape:
                got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise ValueError(f"expected an initial state of shape (L·num_directions, N, H) = {shape}, got {got}")
        return hx

    def _torch_names(self, reference: nn.Module):  # each cell with a getter of its torch.nn tensors
        K = 2 if self.bidirectional else 1
        for k, cell in enumerate(self.cells):
            yield cell, lambda name, k=k: getattr(reference, f"{name}_l{k // K}{'_reverse' if k % K else ''}")

    @classmethod
    def from_torch(cls, reference: nn.GRU) -> "GRU":
        """A copy of a ``torch.nn.GRU``: ``W = weight.T``; r and z sum its two biases, g's go to ``b`` and ``b_hg``."""
        layer = cls(**{k: getattr(reference, k) for k in cls._ARGUMENTS}).to(reference.weight_ih_l0)
        H = layer.hidden_size
        with torch.no_grad():
            for cell, torch_weight in layer._torch_names(reference):
                cell.W_xh.copy_(torch_weight("weight_ih").T)
                cell.W_hh.copy_(torch_weight("weight_hh").T)
                if cell.b is not None:
                    b_ih, b_hh = torch_weight("bias_ih"), torch_weight("bias_hh")
                    cell.b.copy_(torch.cat([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]]))
                    cell.b_hg.copy_(b_hh[2 * H :])
        return layer

    def to_torch(self) -> nn.GRU:
        """The same function as a ``torch.nn.GRU`` (``bias_ih`` holds ``b``, ``bias_hh`` zeros and ``b_hg``)."""
        reference = nn.GRU(**{k: getattr(self, k) for k in self._ARGUMENTS}).to(self.cells[0].W_xh)
        with torch.no_grad():
            for cell, torch_weight in self._torch_names(reference):
                torch_weight("weight_ih").copy_(cell.W_xh.T)
                torch_weight("weight_hh").copy_(cell.W_hh.T)
                if cell.b is not None:
                    torch_weight("bias_ih").copy_(cell.b)
                    torch_weight("bias_hh").copy_(torch.cat([torch.zeros_like(cell.b[self.hidden_size:]), cell.b_hg]))
        return reference


# --8<-- [start:heads]
class ManyToOne(nn.Module):
    """(N, T, D) → (N, C) from the last state of any ``batch_first=True`` layer with torch.nn's interface;
    with ``lengths`` each sequence answers from its own last real step, never reading padding."""

    def __init__(self, rnn: nn.Module, output_size: int) -> None:
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(rnn.hidden_size * (2 if rnn.bidirectional else 1), output_size)  # W_hy, c

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:
            x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h_n = self.rnn(x)
        h_n = h_n[0] if isinstance(h_n, tuple) else h_n  # an LSTM's (h_n, c_n)
        K = 2 if self.rnn.bidirectional else 1
        return self.head(torch.cat(list(h_n[-K:]), dim=-1))  # the top layer's K directions (N, K·H) → (N, C)
# --8<-- [end:heads]


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``x``, ``(x,)``, ``(x, y)`` or ``(x, lengths, y)`` → ``(x, lengths, y)``."""
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    return tuple(batch) if len(batch) == 3 else (batch[0], None, batch[1] if len(batch) == 2 else None)


# --8<-- [start:system]
class GRUSystem(pl.LightningModule):
    """Trains a regression ``model(x)`` or ``model(x, lengths)`` → (N, C) with MSE and Adam (learning rate ``lr``)."""

    def __init__(self, model: nn.Module, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.metrics = nn.ModuleDict({f"{s}_metric": torchmetrics.MeanSquaredError() for s in ("train", "val", "test")})

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x) if lengths is None else self.model(x, lengths)  # (N, C)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, lengths, y = split_batch(batch)
        out = self(x, lengths)
        loss = F.mse_loss(out, y.view_as(out))
        self.metrics[f"{stage}_metric"].update(out, y.view_as(out))
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(x), sync_dist=True)
        self.log(f"{stage}_mse", self.metrics[f"{stage}_metric"], prog_bar=True, on_step=False, on_epoch=True)
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


class MultiplicationData(pl.LightningDataModule):
    """``lessons.datasets.multiplication_problem``'s numbers: [marker, value] (N, T, 2) → product (N, 1)."""

    def __init__(self, count: int = 3000, steps: int = 100, batch_size: int = 32, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        values = torch.rand(count, steps, generator=g)  # (N, T)
        positions = torch.rand(count, steps, generator=g).argsort(dim=1)[:, :2].sort(dim=1).values  # (N, 2)
        x = torch.stack([torch.zeros(count, steps).scatter_(1, positions, 1.0), values], dim=-1)  # (N, T, 2)
        y, fit = values.gather(1, positions).prod(dim=1, keepdim=True), min(2560, count * 2560 // 3000)
        n, self.batch_size = round(0.8 * fit), batch_size  # Keras' validation_split=0.2 of X[:2560]
        self.parts = [torch.utils.data.TensorDataset(x[a:b], y[a:b]) for a, b in ((0, n), (n, fit))]

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.parts[0], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return torch.utils.data.DataLoader(self.parts[1], batch_size=self.batch_size)

    predict_dataloader = val_dataloader


def main(args: list[str] | None = None) -> None:
    """``LightningCLI`` over `GRUSystem` and any data module; the defaults learn the multiplication problem."""
    from pytorch_lightning.cli import LightningCLI

    here = __name__  # importable (see the __main__ block), so checkpoints name classes that import again
    gru = {"class_path": f"{here}.GRU", "init_args": dict(input_size=2, hidden_size=30, num_layers=2, batch_first=True)}
    model = {"class_path": f"{here}.ManyToOne", "init_args": {"rnn": gru, "output_size": 1}}
    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model.model": model, "data": {"class_path": f"{here}.MultiplicationData", "init_args": {"steps": 30}},
                                 "model.lr": 0.01, "trainer.max_epochs": 30, "trainer.log_every_n_steps": 1})

        def instantiate_classes(self):  # keep the model's class path and arguments: load_from_checkpoint rebuilds it
            super().instantiate_classes()
            self.model.hparams["model"] = self.config_dump["model"]["model"]

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix
    CLI(GRUSystem, MultiplicationData, subclass_mode_data=True, seed_everything_default=0, args=args)


if __name__ == "__main__":  # run the importable module's main: the classes a checkpoint names must import again
    import importlib, pathlib  # noqa: E401
    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
