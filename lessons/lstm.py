r"""Long short-term memory (LSTM), written from its equations, a drop-in for ``torch.nn.LSTM``.

A cell state $c_t = f_t \odot c_{t-1} + i_t \odot g_t$ next to $h_t = o_t \odot \tanh(c_t)$, gates i, f, o and
candidate g side by side in PyTorch's order (row vectors; N batch, T steps, D inputs, H hidden units, C outputs).
`LSTMCell`, `LSTM` (torch.nn's interface), `cell_backward` (one step by hand), heads on any layer, `LSTMSystem`.
To run: ``python lessons/lstm.py fit`` (multiplication problem, T = 30), ``fit --help``, ``fit --print_config``."""

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
class LSTMCell(nn.Module):
    r"""One LSTM step with the gates fused: $W_{xh}$ (D, 4H), $W_{hh}$ (H, 4H), blocks i, f, g, o;
    ``torch.nn.LSTMCell``'s interface: ``cell(x, (h, c))`` → ``(h', c')``, zeros if no state is given.
    >>> h, c = LSTMCell(4, 3)(torch.zeros(2, 4))  # (N, D) -> (N, H), (N, H)
    >>> tuple(h.shape), tuple(c.shape)
    ((2, 3), (2, 3))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_xh = nn.Parameter(torch.empty(input_size, 4 * hidden_size))  # (D, 4H)
        self.W_hh = nn.Parameter(torch.empty(hidden_size, 4 * hidden_size))  # (H, 4H)
        self.b = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None  # (4H,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in self.parameters():  # torch.nn's U(-1/√H, 1/√H)
            nn.init.uniform_(p, -1 / math.sqrt(self.hidden_size), 1 / math.sqrt(self.hidden_size))

    def forward(self, input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None):
        if not isinstance(input, torch.Tensor) or input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            got = tuple(input.shape) if isinstance(input, torch.Tensor) else type(input).__name__
            raise ValueError(f"expected input of shape (N, D) = (*, {self.input_size}) or (D,), got {got}")
        x = input.view(-1, self.input_size)  # (N, D), N = 1 for an unbatched step
        state = self.initial_state(len(x), x) if hx is None else tuple(s.view(len(x), -1) for s in hx)
        return _map(lambda s: s if input.dim() == 2 else s[0], self.recur(self.project(x), state))  # (N, H) or (H,)

    def project(self, x: torch.Tensor) -> torch.Tensor:  # the part of a step that does not need h_{t-1}: all T at once
        return x @ self.W_xh if self.b is None else x @ self.W_xh + self.b  # (..., 4H)

    def gates(self, xp_t: torch.Tensor, h_prev: torch.Tensor) -> tuple[torch.Tensor, ...]:
        a = xp_t + h_prev @ self.W_hh  # (N, 4H): all four pre-activations in one product
        a_i, a_f, a_g, a_o = a.chunk(4, dim=-1)  # four (N, H) blocks, PyTorch's order
        i = torch.sigmoid(a_i)  # $$i_t = \sigma(x_t W_{xi} + h_{t-1} W_{hi} + b_i)$$
        f = torch.sigmoid(a_f)  # $$f_t = \sigma(x_t W_{xf} + h_{t-1} W_{hf} + b_f)$$
        g = torch.tanh(a_g)  # $$g_t = \tanh(x_t W_{xg} + h_{t-1} W_{hg} + b_g)$$
        o = torch.sigmoid(a_o)  # $$o_t = \sigma(x_t W_{xo} + h_{t-1} W_{ho} + b_o)$$
        return i, f, g, o

    def recur(self, xp_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):  # xp_t = x_t W_xh + b
        h_prev, c_prev = state
        i, f, g, o = self.gates(xp_t, h_prev)
        c = f * c_prev + i * g  # $$c_t = f_t \odot c_{t-1} + i_t \odot g_t$$
        h = o * torch.tanh(c)  # $$h_t = o_t \odot \tanh(c_t)$$
        return h, c  # (N, H), (N, H)

    def initial_state(self, N: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (like.new_zeros(N, self.hidden_size),) * 2  # h_0 = c_0 = 0
# --8<-- [end:cell]

# --8<-- [start:backward]
def cell_backward(x_t, h_prev, c_prev, cell: LSTMCell, dh, dc) -> dict[str, torch.Tensor]:
    r"""One `LSTMCell` step's backward by hand: ``dh`` $= \partial L/\partial h_t$, ``dc`` $= \partial L/\partial c_t$
    → gradients of ``x``, ``h_prev``, ``c_prev``, ``W_xh``, ``W_hh``, ``b``. Each gate's gradient times its
    activation's derivative ($\sigma(1-\sigma)$, $1-\tanh^2$), side by side, is ``da``, the (N, 4H) pre-activation's."""
    with torch.no_grad():
        i, f, g, o = cell.gates(cell.project(x_t), h_prev)  # recompute the forward
        tanh_c = torch.tanh(f * c_prev + i * g)
        do = dh * tanh_c  # h = o * tanh(c)
        dc = dc + dh * o * (1 - tanh_c**2)  # both paths into c: from h_t and from c_{t+1}
        di, df, dg = dc * g, dc * c_prev, dc * i  # c = f * c_prev + i * g
        da = torch.cat([di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)], dim=-1)  # (N, 4H)
        return {"x": da @ cell.W_xh.T, "h_prev": da @ cell.W_hh.T,  # (N, D), (N, H)
                "c_prev": dc * f,  # (N, H): the additive path, scaled only by f
                "W_xh": x_t.T @ da, "W_hh": h_prev.T @ da, "b": da.sum(dim=0)}  # (D, 4H), (H, 4H), (4H,)
# --8<-- [end:backward]

# The machinery below is the same in lessons/rnn.py, lstm.py and gru.py (each file is copied alone); a state is (h, c).
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
class LSTM(nn.Module):
    """Cells unrolled over time, stacked and optionally bidirectional: ``torch.nn.LSTM``'s interface.

    Returns the top layer's states (T, N, K·H) ((N, T, K·H) with ``batch_first``, packed like packed input) and
    ``(h_n, c_n)``, every layer's and direction's last states, (L·K, N, H) each.
    >>> output, (h_n, c_n) = LSTM(4, 3, num_layers=2, batch_first=True)(torch.zeros(5, 7, 4))  # (N, T, D)
    >>> tuple(output.shape), tuple(h_n.shape), tuple(c_n.shape)
    ((5, 7, 3), (2, 5, 3), (2, 5, 3))
    """
    _ARGUMENTS = "input_size hidden_size num_layers bias batch_first dropout bidirectional proj_size".split()

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0):
        super().__init__()
        if num_layers < 1 or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"expected num_layers >= 1 and 0 <= dropout <= 1, got {num_layers}, {dropout}")
        if proj_size:
            raise ValueError(f"proj_size > 0 (projected LSTM) is not part of this lesson, got proj_size={proj_size}")
        self.input_size, self.hidden_size, self.num_layers, self.proj_size = input_size, hidden_size, num_layers, 0
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, dropout, bidirectional
        K = 2 if bidirectional else 1
        self.cells = nn.ModuleList(  # layer by layer, forward direction first, as torch.nn orders h_n
            LSTMCell(input_size if layer == 0 else K * hidden_size, hidden_size, bias)
            for layer in range(num_layers) for _ in range(K))

    def forward(self, input, hx=None):
        x, lengths, unbatched = _as_padded(input, self.batch_first, self.input_size)  # (T, N, D)
        K = 2 if self.bidirectional else 1
        h0 = self._initial_state(hx, x, unbatched)  # (h_0, c_0), (L·K, N, H) each
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
        if hx is not None and not (isinstance(hx, tuple) and len(hx) == 2):
            raise ValueError(f"expected hx = (h_0, c_0), a tuple of two tensors, got {type(hx).__name__}")
        shape = ((2 if self.bidirectional else 1) * self.num_layers, x.shape[1], self.hidden_size)
        if hx is None:
            return _map(lambda s: s[None].expand(shape[0], -1, -1), self.cells[0].initial_state(shape[1], x))
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
    def from_torch(cls, reference: nn.LSTM) -> "LSTM":
        """A copy of an ``nn.LSTM``: ``W_xh = weight_ih.T`` (i, f, g, o), ``W_hh = weight_hh.T``, ``b = b_ih + b_hh``."""
        layer = cls(**{k: getattr(reference, k) for k in cls._ARGUMENTS}).to(reference.weight_ih_l0)
        with torch.no_grad():
            for cell, torch_weight in layer._torch_names(reference):
                cell.W_xh.copy_(torch_weight("weight_ih").T)
                cell.W_hh.copy_(torch_weight("weight_hh").T)
                if cell.b is not None:
                    cell.b.copy_(torch_weight("bias_ih") + torch_weight("bias_hh"))
        return layer

    def to_torch(self) -> nn.LSTM:
        """The same function as a ``torch.nn.LSTM`` (its two biases hold ``b`` and zeros)."""
        reference = nn.LSTM(**{k: getattr(self, k) for k in self._ARGUMENTS}).to(self.cells[0].W_xh)
        with torch.no_grad():
            for cell, torch_weight in self._torch_names(reference):
                torch_weight("weight_ih").copy_(cell.W_xh.T)
                torch_weight("weight_hh").copy_(cell.W_hh.T)
                if cell.b is not None:
                    torch_weight("bias_ih").copy_(cell.b)
                    torch_weight("bias_hh").zero_()
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

class LSTMClassifier(ManyToOne):
    """The notes' topic model: word ids (N, T) → ``embedding`` → ``rnn`` → logits (N, C); ``lengths`` as above."""

    def __init__(self, embedding: nn.Embedding, rnn: nn.Module, num_classes: int) -> None:
        super().__init__(rnn, num_classes)
        self.embedding = embedding  # (V, E), E = rnn.input_size

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.is_floating_point():
            raise ValueError(f"expected integer word ids of shape (N, T), got {tuple(tokens.shape)} {tokens.dtype}")
        return super().forward(self.embedding(tokens), lengths)  # (N, C) logits; softmax is in the loss
# --8<-- [end:heads]

def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``x``, ``(x,)``, ``(x, y)`` or ``(x, lengths, y)`` → ``(x, lengths, y)``."""
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    return tuple(batch) if len(batch) == 3 else (batch[0], None, batch[1] if len(batch) == 2 else None)

# --8<-- [start:system]
class LSTMSystem(pl.LightningModule):
    """Trains any sequence model, ``model(x)`` or ``model(x, lengths)`` → (N, C) or (N, T, C): MSE
    (``task="regression"``) or cross-entropy and accuracy, both ignoring targets of −100 (padding); Adam (``lr``)."""

    def __init__(self, model: nn.Module, task: str = "regression", lr: float = 0.01) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"expected model: nn.Module, e.g. ManyToOne(LSTM(2, 8, batch_first=True), 1), got {model}")
        if task not in ("classification", "regression"):
            raise ValueError(f"expected task 'classification' or 'regression', got {task!r}")
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        metric = torchmetrics.MeanMetric if task == "classification" else torchmetrics.MeanSquaredError
        self.metrics = nn.ModuleDict({f"{stage}_metric": metric() for stage in ("train", "val", "test")})  # never mixed

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x) if lengths is None else self.model(x, lengths)  # (N, C) or (N, T, C)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, lengths, y = split_batch(batch)
        out = self(x, lengths)
        if self.hparams.task == "classification":
            logits, target = out.reshape(-1, out.shape[-1]), y.reshape(-1)  # (N·T, C), (N·T,)
            loss, real = F.cross_entropy(logits, target, ignore_index=-100), target != -100
            self.metrics[f"{stage}_metric"].update((logits.argmax(-1)[real] == target[real]).float())
        else:
            loss = F.mse_loss(out, y.view_as(out))
            self.metrics[f"{stage}_metric"].update(out, y.view_as(out))
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(x), sync_dist=True)
        self.log(f"{stage}_{'acc' if self.hparams.task == 'classification' else 'mse'}", self.metrics[f"{stage}_metric"], prog_bar=True, on_step=False, on_epoch=True)
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

class MultiplicationProblem(pl.LightningDataModule):
    """The notes' multiplication problem: steps [marker, value] (N, T, 2), two marked → their product (N, 1); 80/20."""
    def __init__(self, count: int = 3000, steps: int = 30, batch_size: int = 64, seed: int = 0) -> None:
        super().__init__()
        g, self.batch_size = torch.Generator().manual_seed(seed), batch_size
        values = torch.rand(count, steps, generator=g)  # (N, T)
        marks = torch.rand(count, steps, generator=g).argsort(dim=1)[:, :2].sort(dim=1).values  # (N, 2)
        x = torch.stack([torch.zeros(count, steps).scatter_(1, marks, 1.0), values], dim=-1)  # (N, T, 2)
        data = torch.utils.data.TensorDataset(x, values.gather(1, marks).prod(dim=1, keepdim=True))  # y (N, 1)
        self.parts = torch.utils.data.random_split(data, [0.8, 0.2], generator=g)  # train, validation
    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.parts[0], batch_size=self.batch_size, shuffle=True)
    def val_dataloader(self):
        return torch.utils.data.DataLoader(self.parts[1], batch_size=self.batch_size)

def main(args: list[str] | None = None) -> None:
    """``LightningCLI`` over `LSTMSystem` and any data module; the defaults learn the multiplication problem."""
    from pytorch_lightning.cli import LightningCLI
    here = __name__  # importable (see the __main__ block), so checkpoints name classes that import again
    rnn = dict(class_path=f"{here}.LSTM", init_args=dict(input_size=2, hidden_size=30, num_layers=2, batch_first=True))
    model = {"class_path": f"{here}.ManyToOne", "init_args": {"rnn": rnn, "output_size": 1}}
    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model.model": model, "trainer.max_epochs": 30, "trainer.log_every_n_steps": 1})
        def instantiate_classes(self):  # keep the model's class path and arguments: load_from_checkpoint rebuilds it
            super().instantiate_classes()
            self.model.hparams["model"] = self.config_dump["model"]["model"]

    warnings.filterwarnings("ignore", message=".*LeafSpec.*|.*pin_memory.*")  # Lightning vs torch 2.13: not ours
    CLI(LSTMSystem, MultiplicationProblem, seed_everything_default=0, args=args)

if __name__ == "__main__":  # run the importable module's main: the classes a checkpoint names must import again
    import importlib, pathlib  # noqa: E401
    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
