r"""Long short-term memory (LSTM), written from its equations.

An LSTM cell keeps two vectors from step to step: the hidden state $h_t$ and the cell state
$c_t$. Four small layers read $x_t$ and $h_{t-1}$; three of them are gates (sigmoid, values in
(0, 1)) and one proposes new content (tanh, values in (-1, 1)). With row vectors:

$$
\begin{aligned}
i_t &= \sigma(x_t W_{xi} + h_{t-1} W_{hi} + b_i) && \text{input gate} \\
f_t &= \sigma(x_t W_{xf} + h_{t-1} W_{hf} + b_f) && \text{forget gate} \\
g_t &= \tanh(x_t W_{xg} + h_{t-1} W_{hg} + b_g) && \text{candidate} \\
o_t &= \sigma(x_t W_{xo} + h_{t-1} W_{ho} + b_o) && \text{output gate} \\
c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
h_t &= o_t \odot \tanh(c_t)
\end{aligned}
$$

As in the course notes, the four weight matrices are stored side by side in one fused matrix
with $4H$ columns, in PyTorch's order (i, f, g, o): one product gives all four pre-activations,
which are then split into four chunks.

Shapes follow d2l's letters: N batch, T time steps, D input features, H hidden units,
L layers, C outputs. ``x`` is batch-first, (N, T, D), unless ``batch_first=False``.

Contents: `LSTMCell` (one step), `cell_backward` (the step's backward pass by hand), `LSTM`
(stacked layers over T, equal to ``torch.nn.LSTM``), `FastLSTM` (the same function with a
hand-written backward over the whole sequence, for speed), the heads `LSTMRegressor` and
`LSTMClassifier`, the training system `LSTMSystem`, `LossHistory` and the `fit` helper.

To run:

```bash
python lessons/lstm.py                          # the multiplication problem, T = 30
python lessons/lstm.py --steps 100 --epochs 60  # the notes' full length
python lessons/lstm.py --accelerator gpu
```

The file imports only the standard library, torch, pytorch_lightning and torchmetrics, so it
can be copied into a project on its own.
"""

from __future__ import annotations

import argparse
import logging
import math
import warnings

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F

__all__ = [
    "LSTMCell",
    "cell_backward",
    "LSTM",
    "FastLSTM",
    "LSTMRegressor",
    "LSTMClassifier",
    "LSTMSystem",
    "LossHistory",
    "fit",
]


def check_sequence(x: torch.Tensor, input_size: int, name: str = "x", batch_first: bool = True) -> None:
    """Raise a ``ValueError`` unless ``x`` is a floating-point sequence tensor with D = input_size.

    >>> check_sequence(torch.zeros(32, 64), input_size=8)
    Traceback (most recent call last):
    ...
    ValueError: expected x of shape (N, T, D) = (*, *, 8), got (32, 64)
    """
    layout = "(N, T, D)" if batch_first else "(T, N, D)"
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected {name} to be a torch.Tensor of shape {layout}, got {type(x).__name__}")
    if x.dim() != 3 or x.shape[-1] != input_size:
        raise ValueError(f"expected {name} of shape {layout} = (*, *, {input_size}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(
            f"expected {name} to be a floating-point tensor of shape {layout} = (*, *, {input_size}), "
            f"got dtype {x.dtype} (embed integer tokens first)"
        )
    if x.shape[1 if batch_first else 0] == 0:
        raise ValueError(f"expected {name} of shape {layout} with at least one time step (T >= 1), got T = 0")


def _check_state(s: torch.Tensor, shape: tuple[int, ...], like: torch.Tensor, name: str) -> None:
    if not isinstance(s, torch.Tensor) or tuple(s.shape) != shape:
        got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
        raise ValueError(f"expected {name} of shape (L, N, H) = {shape}, got {got}")
    if s.dtype != like.dtype:
        raise ValueError(f"expected {name} with dtype {like.dtype} like the input, got {s.dtype}")


# --8<-- [start:cell]
class LSTMCell(nn.Module):
    r"""One LSTM step with the four gates fused: $W_{xh}$ is $(D, 4H)$, $W_{hh}$ is $(H, 4H)$.

    The columns are four blocks of $H$ in PyTorch's order i, f, g, o.

    Parameters
    ----------
    input_size : int
        D, the number of features of one input vector ``x_t``.
    hidden_size : int
        H, the number of hidden units (and of cell-state units).

    Examples
    --------
    >>> cell = LSTMCell(input_size=4, hidden_size=3)
    >>> h, c = cell(torch.zeros(2, 4), (torch.zeros(2, 3), torch.zeros(2, 3)))
    >>> tuple(h.shape), tuple(c.shape)
    ((2, 3), (2, 3))
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_xh = nn.Parameter(torch.empty(input_size, 4 * hidden_size))  # (D, 4H)
        self.W_hh = nn.Parameter(torch.empty(hidden_size, 4 * hidden_size))  # (H, 4H)
        self.b = nn.Parameter(torch.empty(4 * hidden_size))  # (4H,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same scale as torch.nn.LSTM: U(-1/sqrt(H), 1/sqrt(H)).
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(
        self, x_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.recur(x_t @ self.W_xh + self.b, *state)  # (N, H), (N, H)

    def gates(self, xp_t: torch.Tensor, h_prev: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The four gate values from ``xp_t = x_t W_xh + b`` (N, 4H) and ``h_prev`` (N, H)."""
        a = xp_t + h_prev @ self.W_hh  # (N, 4H): all four pre-activations in one product
        a_i, a_f, a_g, a_o = a.chunk(4, dim=-1)  # four (N, H) blocks, PyTorch's order
        i = torch.sigmoid(a_i)  # $$i_t = \sigma(x_t W_{xi} + h_{t-1} W_{hi} + b_i)$$
        f = torch.sigmoid(a_f)  # $$f_t = \sigma(x_t W_{xf} + h_{t-1} W_{hf} + b_f)$$
        g = torch.tanh(a_g)  # $$g_t = \tanh(x_t W_{xg} + h_{t-1} W_{hg} + b_g)$$
        o = torch.sigmoid(a_o)  # $$o_t = \sigma(x_t W_{xo} + h_{t-1} W_{ho} + b_o)$$
        return i, f, g, o

    def recur(
        self, xp_t: torch.Tensor, h_prev: torch.Tensor, c_prev: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The part of a step that depends on the previous state."""
        i, f, g, o = self.gates(xp_t, h_prev)
        c = f * c_prev + i * g  # $$c_t = f_t \odot c_{t-1} + i_t \odot g_t$$
        h = o * torch.tanh(c)  # $$h_t = o_t \odot \tanh(c_t)$$
        return h, c  # (N, H), (N, H)
# --8<-- [end:cell]


# --8<-- [start:backward]
def cell_backward(
    x_t: torch.Tensor,
    h_prev: torch.Tensor,
    c_prev: torch.Tensor,
    cell: LSTMCell,
    dh: torch.Tensor,
    dc: torch.Tensor,
) -> dict[str, torch.Tensor]:
    r"""Backward pass of one `LSTMCell` step, written out by hand.

    Given the gradients flowing into the step's outputs, ``dh`` $= \partial L/\partial h_t$ and
    ``dc`` $= \partial L/\partial c_t$ (from the next step), return the gradients of the step's
    inputs and weights: ``x``, ``h_prev``, ``c_prev``, ``W_xh``, ``W_hh``, ``b``.

    Each gate's gradient is multiplied by the local derivative of its activation
    ($\sigma' = \sigma(1-\sigma)$, $\tanh' = 1-\tanh^2$), and the four results are merged side by
    side into one (N, 4H) matrix ``da``, the gradient of the fused pre-activation.
    """
    with torch.no_grad():
        i, f, g, o = cell.gates(x_t @ cell.W_xh + cell.b, h_prev)  # recompute the forward
        c = f * c_prev + i * g
        tanh_c = torch.tanh(c)
        do = dh * tanh_c  # h = o * tanh(c)
        dc = dc + dh * o * (1 - tanh_c**2)  # both paths into c: from h_t and from c_{t+1}
        di, df, dg = dc * g, dc * c_prev, dc * i  # c = f * c_prev + i * g
        da = torch.cat(
            [
                di * i * (1 - i),  # sigmoid'
                df * f * (1 - f),  # sigmoid'
                dg * (1 - g**2),  # tanh'
                do * o * (1 - o),  # sigmoid'
            ],
            dim=-1,
        )  # (N, 4H): the four gate gradients merged
        return {
            "x": da @ cell.W_xh.T,  # (N, D)
            "h_prev": da @ cell.W_hh.T,  # (N, H)
            "c_prev": dc * f,  # (N, H): the additive path, scaled only by f
            "W_xh": x_t.T @ da,  # (D, 4H)
            "W_hh": h_prev.T @ da,  # (H, 4H)
            "b": da.sum(dim=0),  # (4H,)
        }
# --8<-- [end:backward]


# --8<-- [start:layer]
class LSTM(nn.Module):
    """Stacked LSTM layers unrolled over time, with ``torch.nn.LSTM``'s interface.

    Input (N, T, D) (or (T, N, D) with ``batch_first=False``); returns the top layer's hidden
    states, (N, T, H), and the last states ``(h_n, c_n)`` of every layer, each (L, N, H).
    In each layer the input projection ``x W_xh + b`` of all T steps is one matrix product
    before the loop; only ``h_{t-1} W_hh`` stays inside it.

    Examples
    --------
    >>> layer = LSTM(input_size=4, hidden_size=3, num_layers=2)
    >>> out, (h_n, c_n) = layer(torch.zeros(5, 7, 4))  # (N, T, D)
    >>> tuple(out.shape), tuple(h_n.shape), tuple(c_n.shape)
    ((5, 7, 3), (2, 5, 3), (2, 5, 3))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, batch_first: bool = True) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"expected num_layers >= 1, got {num_layers}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.batch_first = num_layers, batch_first
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.cells = nn.ModuleList(LSTMCell(d, hidden_size) for d in sizes)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        h0, c0 = self._initial_state(x, state)  # (L, N, H) each
        seq = x if self.batch_first else x.transpose(0, 1)  # (N, T, D)
        h_n, c_n = [], []
        for layer, cell in enumerate(self.cells):
            h, c = h0[layer], c0[layer]  # (N, H)
            xp = seq @ cell.W_xh + cell.b  # (N, T, 4H), all steps in one product
            hs = []
            for xp_t in xp.transpose(0, 1).unbind(0):  # T tensors of (N, 4H); no xp[:, t]
                h, c = cell.recur(xp_t, h, c)  # (N, H), (N, H)
                hs.append(h)
            seq = torch.stack(hs, dim=1)  # (N, T, H): the next layer's input
            h_n.append(h)
            c_n.append(c)
        out = seq if self.batch_first else seq.transpose(0, 1)
        return out, (torch.stack(h_n), torch.stack(c_n))  # (N, T, H), (L, N, H) x 2
# --8<-- [end:layer]

    def _initial_state(self, x, state):
        check_sequence(x, self.input_size, batch_first=self.batch_first)
        N = x.shape[0 if self.batch_first else 1]
        shape = (self.num_layers, N, self.hidden_size)
        if state is None:
            zeros = x.new_zeros(shape)
            return zeros, zeros
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError("expected state to be a tuple (h0, c0), each of shape (L, N, H)")
        _check_state(state[0], shape, x, "h0")
        _check_state(state[1], shape, x, "c0")
        return state

    @torch.no_grad()
    def gate_trace(self, x: torch.Tensor, layer: int = -1) -> dict[str, torch.Tensor]:
        """Gate values of one layer at every step, each (N, T, H), for plotting.

        Keys ``i``, ``f``, ``g``, ``o``, ``c`` and ``h``.
        """
        check_sequence(x, self.input_size, batch_first=self.batch_first)
        seq = x if self.batch_first else x.transpose(0, 1)
        layer = range(self.num_layers)[layer]
        trace: dict[str, list[torch.Tensor]] = {k: [] for k in "ifgoch"}
        for index, cell in enumerate(self.cells[: layer + 1]):
            h = c = seq.new_zeros(seq.shape[0], self.hidden_size)
            hs = []
            for xp_t in (seq @ cell.W_xh + cell.b).transpose(0, 1).unbind(0):
                i, f, g, o = cell.gates(xp_t, h)
                h, c = cell.recur(xp_t, h, c)
                hs.append(h)
                if index == layer:
                    for key, value in zip("ifgoch", (i, f, g, o, c, h)):
                        trace[key].append(value)
            seq = torch.stack(hs, dim=1)
        return {k: torch.stack(v, dim=1) for k, v in trace.items()}

    @classmethod
    def from_torch(cls, reference: nn.LSTM) -> "LSTM":
        """Build an `LSTM` holding a copy of a ``torch.nn.LSTM``'s weights.

        PyTorch stores ``weight_ih_l{k}`` as (4H, D) with the rows in the order i, f, g, o, and two
        biases; this lesson keeps the same order in the columns of the row-vector form, so
        ``W_xh = weight_ih.T``, ``W_hh = weight_hh.T`` and ``b = b_ih + b_hh``.
        Copy after any ``.double()``: a bias summed in float32 then cast differs by about 1e-8.
        """
        if reference.bidirectional or reference.proj_size:
            raise ValueError("expected a one-direction torch.nn.LSTM without proj_size")
        layer = cls(reference.input_size, reference.hidden_size, reference.num_layers, reference.batch_first)
        layer = layer.to(reference.weight_ih_l0)
        with torch.no_grad():
            for k, cell in enumerate(layer.cells):
                cell.W_xh.copy_(getattr(reference, f"weight_ih_l{k}").T)
                cell.W_hh.copy_(getattr(reference, f"weight_hh_l{k}").T)
                bias = torch.zeros_like(cell.b)
                if reference.bias:
                    bias = getattr(reference, f"bias_ih_l{k}") + getattr(reference, f"bias_hh_l{k}")
                cell.b.copy_(bias)
        return layer


class _FusedLSTMFunction(torch.autograd.Function):
    """One layer over the whole sequence with a hand-written backward (see `cell_backward`).

    Forward keeps the gate values of every step; backward runs the cell backward from t = T to 1,
    keeping only the (N, H) products with ``W_hh`` inside the loop. The weight gradients of all
    steps are then one product each, ``X^T dA`` and ``H_prev^T dA`` over all N*T rows.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, W_xh, W_hh, b):  # x: (T, N, D) time-major
        T, N, _ = x.shape
        H = W_hh.shape[0]
        # x W_xh + b for all steps, written straight into the buffer that becomes the gate activations
        acts = torch.addmm(b, x.reshape(T * N, -1), W_xh).view(T, N, 4 * H)  # (T, N, 4H)
        cs = x.new_empty(T + 1, N, H)
        hs = x.new_empty(T + 1, N, H)
        tanh_cs = x.new_empty(T, N, H)
        hs[0], cs[0] = h0, c0
        for t in range(T):
            a = acts[t].addmm_(hs[t], W_hh)  # (N, 4H): pre-activation, in place
            torch.sigmoid_(a[:, : 2 * H])  # i, f
            torch.tanh_(a[:, 2 * H : 3 * H])  # g
            torch.sigmoid_(a[:, 3 * H :])  # o
            i, f, g, o = a.chunk(4, dim=1)
            torch.addcmul(i * g, f, cs[t], out=cs[t + 1])  # c = f * c_prev + i * g
            torch.tanh(cs[t + 1], out=tanh_cs[t])
            torch.mul(o, tanh_cs[t], out=hs[t + 1])  # h = o * tanh(c)
        ctx.save_for_backward(x, W_xh, W_hh, acts, cs, hs, tanh_cs)
        return hs[1:], hs[T].clone(), cs[T].clone()

    @staticmethod
    def backward(ctx, d_out, d_hT, d_cT):
        x, W_xh, W_hh, acts, cs, hs, tanh_cs = ctx.saved_tensors
        T, N, _ = x.shape
        H = W_hh.shape[0]
        # our own contiguous copy of dL/dh_t (one copy, not T): dh_{t-1} accumulates into it in place
        d_out = hs.new_zeros(T, N, H) if d_out is None else torch.empty_like(hs[1:]).copy_(d_out)
        da = torch.empty_like(acts)  # (T, N, 4H): the merged gate gradients dA_t
        dh = d_out[T - 1] + d_hT if d_hT is not None else d_out[T - 1].clone()
        dc = d_cT.clone() if d_cT is not None else torch.zeros_like(cs[0])
        ones = torch.ones_like(dc)
        W_hh_T = W_hh.T
        # One step at a time, so that each step's values stay in the CPU cache.
        for t in range(T - 1, -1, -1):
            a_t, da_t, tanh_c = acts[t], da[t], tanh_cs[t]
            i, f, g, o = a_t.chunk(4, dim=1)
            di, df, dg, do = da_t.chunk(4, dim=1)
            torch.mul(dh, tanh_c, out=do)  # h = o tanh(c)
            through_h = torch.addcmul(ones, tanh_c, tanh_c, value=-1).mul_(o)  # o (1 - tanh^2 c)
            dc.addcmul_(dh, through_h)  # both paths into c_t: from h_t and from c_{t+1}
            torch.mul(dc, g, out=di)  # c = f c_prev + i g
            torch.mul(dc, cs[t], out=df)
            torch.mul(dc, i, out=dg)
            dc.mul_(f)  # dc_{t-1} = dc_t f_t: the conveyor belt
            local = torch.addcmul(a_t, a_t, a_t, value=-1)  # sigmoid' = s (1 - s) for i, f, o ...
            torch.addcmul(ones, g, g, value=-1, out=local[:, 2 * H : 3 * H])  # ... tanh' = 1 - g^2 for g
            da_t.mul_(local)
            if t > 0:
                dh = d_out[t - 1].addmm_(da_t, W_hh_T)  # dh_{t-1}
            else:
                dh = torch.mm(da_t, W_hh_T)
        da2 = da.view(T * N, 4 * H)
        dx = torch.mm(da2, W_xh.T).view_as(x)
        dW_xh = torch.mm(x.reshape(T * N, -1).T, da2)
        dW_hh = torch.mm(hs[:T].reshape(T * N, H).T, da2)
        db = da2.sum(0)
        return dx, dh, dc, dW_xh, dW_hh, db


class FastLSTM(LSTM):
    """`LSTM` with the same weights and results, faster: one layer is one autograd node.

    Forward fills preallocated buffers in place; backward is the hand-written `cell_backward`
    run over the sequence (`_FusedLSTMFunction`). Use `LSTM` to read the method, this one to
    train; ``benchmarks/rnn_speed.py`` times both against ``torch.nn.LSTM``.
    """

    def forward(self, x, state=None):
        h0, c0 = self._initial_state(x, state)
        seq = x.transpose(0, 1) if self.batch_first else x  # (T, N, D)
        h_n, c_n = [], []
        for layer, cell in enumerate(self.cells):
            seq, h, c = _FusedLSTMFunction.apply(seq, h0[layer], c0[layer], cell.W_xh, cell.W_hh, cell.b)
            h_n.append(h)
            c_n.append(c)
        out = seq.transpose(0, 1) if self.batch_first else seq
        return out, (torch.stack(h_n), torch.stack(c_n))


# --8<-- [start:heads]
class LSTMRegressor(nn.Module):
    """Many-to-one regression: read the sequence, answer once from the top layer's last state.

    ``forget_bias`` (if given) starts every forget-gate bias at that value, as Keras'
    ``unit_forget_bias=True`` does with 1.0: the cell state is kept from the first update on.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, output_size: int = 1,
                 fast: bool = True, forget_bias: float | None = None) -> None:
        super().__init__()
        self.rnn = (FastLSTM if fast else LSTM)(input_size, hidden_size, num_layers)
        self.head = nn.Linear(hidden_size, output_size)
        if forget_bias is not None:
            with torch.no_grad():
                for cell in self.rnn.cells:
                    cell.b[hidden_size : 2 * hidden_size] = forget_bias  # the f block of i, f, g, o

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.rnn(x)  # (L, N, H)
        return self.head(h_n[-1])  # (N, C)


class LSTMClassifier(nn.Module):
    """The notes' news-topic model: Embedding(V, E) → LSTM(H) → Linear(C) on word ids (N, T)."""

    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int, num_classes: int,
                 fast: bool = True) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=0)  # (V, E)
        self.rnn = (FastLSTM if fast else LSTM)(embed_size, hidden_size)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.is_floating_point():
            raise ValueError(f"expected integer word ids of shape (N, T), got {tuple(tokens.shape)} {tokens.dtype}")
        _, (h_n, _) = self.rnn(self.embed(tokens))  # (N, T) -> (N, T, E) -> (1, N, H)
        return self.head(h_n[-1])  # (N, C) logits; softmax is inside the loss
# --8<-- [end:heads]


# --8<-- [start:system]
class LSTMSystem(pl.LightningModule):
    """Trains an `LSTMRegressor` (``task="regression"``) or an `LSTMClassifier` with Lightning.

    Parameters
    ----------
    task : {"regression", "classification"}
        Mean squared error on (N, T, D) sequences, or cross-entropy with accuracy on word ids.
    lr : float
        Adam's learning rate.
    **model_args
        Passed to the model: ``input_size, hidden_size, num_layers`` for regression,
        ``vocab_size, embed_size, hidden_size, num_classes`` for classification.
    """

    def __init__(self, task: str = "regression", lr: float = 0.01, **model_args) -> None:
        super().__init__()
        if task not in ("classification", "regression"):
            raise ValueError(f"expected task 'classification' or 'regression', got {task!r}")
        self.save_hyperparameters()
        if task == "regression":
            self.model = LSTMRegressor(**model_args)
            metric = torchmetrics.MeanSquaredError
        else:
            self.model = LSTMClassifier(**model_args)
            classes = model_args["num_classes"]
            metric = lambda: torchmetrics.Accuracy(task="multiclass", num_classes=classes)  # noqa: E731
        self.metrics = nn.ModuleDict({f"{stage}_metric": metric() for stage in ("train", "val", "test")})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        out = self(x)
        if self.hparams.task == "regression":
            loss = F.mse_loss(out, y.view_as(out))
            self.metrics[f"{stage}_metric"](out, y.view_as(out))
            name = "mse"
        else:
            loss = F.cross_entropy(out, y)
            self.metrics[f"{stage}_metric"](out, y)
            name = "acc"
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        self.log(f"{stage}_{name}", self.metrics[f"{stage}_metric"], prog_bar=True, on_step=False, on_epoch=True)
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


class LossHistory(pl.Callback):
    """Keep every epoch's logged metrics (e.g. ``val_mse``) in ``self.history`` for plotting."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for key, value in trainer.callback_metrics.items():
            self.history.setdefault(key, []).append(float(value))


def fit(
    system: pl.LightningModule,
    train: torch.utils.data.DataLoader,
    val: torch.utils.data.DataLoader | None = None,
    max_epochs: int = 100,
    progress: bool = False,
    accelerator: str = "cpu",
    callbacks: list[pl.Callback] | None = None,
) -> pl.Trainer:
    """Train ``system`` with deterministic algorithms and return the trainer.

    Seed *before* building the system (``pl.seed_everything(0)``); ``progress=True`` shows
    Lightning's progress bar (the command line uses it).
    """
    quiet = logging.getLogger("pytorch_lightning")
    level = quiet.level
    if not progress:
        quiet.setLevel(logging.WARNING)
    try:
        trainer = pl.Trainer(
            max_epochs=max_epochs,
            accelerator=accelerator,
            devices=1,
            deterministic=True,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=progress,
            enable_progress_bar=progress,
            log_every_n_steps=1,
            callbacks=callbacks,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            trainer.fit(system, train, val)
    finally:
        quiet.setLevel(level)
    return trainer


def _multiplication(count: int, steps: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The notes' multiplication problem (same as ``lessons.datasets.multiplication_problem``)."""
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(count, steps, generator=g)
    positions = torch.rand(count, steps, generator=g).argsort(dim=1)[:, :2].sort(dim=1).values
    marker = torch.zeros(count, steps).scatter_(1, positions, 1.0)
    return torch.stack([marker, values], dim=-1), values.gather(1, positions).prod(dim=1, keepdim=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train an LSTM on the notes' multiplication problem.")
    parser.add_argument("--steps", type=int, default=30, help="T, the sequence length (the notes use 100)")
    parser.add_argument("--hidden", type=int, default=30, help="H, the number of hidden units")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accelerator", default="cpu", help="cpu, gpu or auto")
    args = parser.parse_args(argv)
    x, y = _multiplication(3000, args.steps, args.seed)
    loader = lambda a, b, shuffle: torch.utils.data.DataLoader(  # noqa: E731
        torch.utils.data.TensorDataset(a, b), batch_size=64, shuffle=shuffle
    )
    pl.seed_everything(args.seed)
    system = LSTMSystem("regression", lr=args.lr, input_size=2, hidden_size=args.hidden, num_layers=args.layers)
    trainer = fit(system, loader(x[:2048], y[:2048], True), loader(x[2048:2560], y[2048:2560], False),
                  max_epochs=args.epochs, progress=True, accelerator=args.accelerator)
    variance = y[2048:2560].var().item()
    mse = trainer.callback_metrics["val_mse"].item()
    print(f"validation MSE {mse:.5f} = {mse / variance:.1%} of the target variance {variance:.5f}")


if __name__ == "__main__":
    main()
