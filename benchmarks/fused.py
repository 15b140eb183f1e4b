"""Fused LSTM and GRU layers: one autograd node per layer with a hand-written backward, for speed.

`FastLSTM` and `FastGRU` compute what ``torch.nn.LSTM`` / ``torch.nn.GRU`` compute, with torch.nn's
constructor arguments, ``from_torch`` and ``to_torch``. The forward pass fills preallocated buffers in
place; the backward pass runs the cell's backward (see `lessons.lstm.cell_backward`) from t = T to 1,
keeping only the (N, H) products with ``W_hh`` inside the loop, and computes each weight gradient of
all steps in one matrix product. ``benchmarks/rnn_speed.py`` times them against torch.nn and the
lessons' readable layers.

- `FastLSTM` is a `lessons.lstm.LSTM` (same parameters, ``from_torch``/``to_torch``); plain tensors in one
  direction take the fused path, packed or bidirectional input falls back to the readable layer.
- `FastGRU` stands alone (parameters ``W_xh`` (D, 3H), ``W_hh`` (H, 3H), ``b`` (3H,) and ``b_hg`` (H,),
  the hidden-side bias of the candidate, which the reset gate scales); tensors in one direction only.

Under ``torch.autocast`` (e.g. Lightning's ``precision="bf16-mixed"``) both run in the autocast dtype:
inputs, states and weights are cast once, and the Function itself runs with autocast off (its in-place
and ``out=`` operations need one dtype); the gradients flow back to the float32 weights through the casts.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lessons.lstm import LSTM, _as_padded  # noqa: E402

__all__ = ["FastLSTM", "FastGRU", "init_forget_bias"]


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    kind = x.device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype


class _FusedLSTMFunction(torch.autograd.Function):
    """One LSTM layer over the whole (T, N, D) sequence; backward is `cell_backward` run over time."""

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
        with torch.autocast(x.device.type, enabled=False):
            T, N, _ = x.shape
            H = W_hh.shape[0]
            # our own contiguous copy of dL/dh_t (one copy, not T): dh_{t-1} accumulates into it in place
            d_out = hs.new_zeros(T, N, H) if d_out is None else torch.empty_like(hs[1:]).copy_(d_out)
            da = torch.empty_like(acts)  # (T, N, 4H): the merged gate gradients dA_t
            dh = d_out[T - 1] + d_hT if d_hT is not None else d_out[T - 1].clone()
            dc = d_cT.to(cs.dtype, copy=True) if d_cT is not None else torch.zeros_like(cs[0])
            ones = torch.ones_like(dc)
            W_hh_T = W_hh.T
            for t in range(T - 1, -1, -1):  # one step at a time, so that each step's values stay in the cache
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
                dh = d_out[t - 1].addmm_(da_t, W_hh_T) if t > 0 else torch.mm(da_t, W_hh_T)  # dh_{t-1}
            da2 = da.view(T * N, 4 * H)
            dx = torch.mm(da2, W_xh.T).view_as(x)
            dW_xh = torch.mm(x.reshape(T * N, -1).T, da2)
            dW_hh = torch.mm(hs[:T].reshape(T * N, H).T, da2)
            return dx, dh, dc, dW_xh, dW_hh, da2.sum(0)


class FastLSTM(LSTM):
    """`lessons.lstm.LSTM` with the same weights and results, faster: one layer is one autograd node."""

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence) or self.bidirectional:
            return super().forward(input, hx)  # the readable layer handles lengths and directions
        x, _, unbatched = _as_padded(input, self.batch_first, self.input_size)  # (T, N, D)
        h0, c0 = self._initial_state(hx, x, unbatched)  # (L, N, H) each
        dtype, kind = _compute_dtype(x), x.device.type
        h_n, c_n = [], []
        with torch.autocast(kind, enabled=False):
            seq = x.to(dtype)
            for layer, cell in enumerate(self.cells):
                b = cell.b if cell.b is not None else cell.W_xh.new_zeros(cell.W_xh.shape[1])
                seq, h, c = _FusedLSTMFunction.apply(seq, h0[layer].to(dtype), c0[layer].to(dtype), cell.W_xh.to(dtype),
                                                     cell.W_hh.to(dtype), b.to(dtype))
                h_n.append(h)
                c_n.append(c)
                if self.dropout and self.training and layer < self.num_layers - 1:
                    seq = F.dropout(seq, self.dropout)  # between layers, as torch.nn
        h_n, c_n = torch.stack(h_n), torch.stack(c_n)  # (L, N, H)
        if unbatched:
            return seq[:, 0], (h_n[:, 0], c_n[:, 0])
        return (seq.transpose(0, 1) if self.batch_first else seq), (h_n, c_n)


class _FusedGRUFunction(torch.autograd.Function):
    """One GRU layer over the whole sequence with a hand-written backward.

    With $a = h_{t-1} W_{hh}$ split into $a_r, a_z, a_g$ and $\\tilde a_g = a_g + b_{hg}$:
    $g = \\tanh(x W_{xg} + b_g + r \\odot \\tilde a_g)$, $h = (1 - z) \\odot g + z \\odot h_{t-1}$;
    $dg = dh (1 - z)$, $dz = dh (h_{t-1} - g)$, $d\\text{pre}_g = dg (1 - g^2)$,
    $d\\tilde a_g = d\\text{pre}_g\\, r$, $dr = d\\text{pre}_g\\, \\tilde a_g$, and the sigmoid
    derivatives for r and z; the weight gradients of all steps are one product each.
    """

    @staticmethod
    def forward(ctx, x, h0, W_xh, W_hh, b, b_hg):  # x: (T, N, D) time-major
        T, N, _ = x.shape
        H = W_hh.shape[0]
        xp = torch.addmm(b, x.reshape(T * N, -1), W_xh).view(T, N, 3 * H)  # (T, N, 3H)
        hs = x.new_empty(T + 1, N, H)
        rz = x.new_empty(T, N, 2 * H)  # r and z
        gs = x.new_empty(T, N, H)
        ah_g = x.new_empty(T, N, H)  # h_{t-1} W_hg + b_hg
        hs[0] = h0
        for t in range(T):
            a = torch.mm(hs[t], W_hh)  # (N, 3H)
            torch.add(xp[t, :, : 2 * H], a[:, : 2 * H], out=rz[t]).sigmoid_()
            r, z = rz[t].chunk(2, dim=1)
            torch.add(a[:, 2 * H :], b_hg, out=ah_g[t])
            torch.addcmul(xp[t, :, 2 * H :], r, ah_g[t], out=gs[t]).tanh_()
            g = gs[t]
            torch.addcmul(g, z, hs[t] - g, out=hs[t + 1])  # h = g + z (h_prev - g)
        ctx.save_for_backward(x, W_xh, W_hh, hs, rz, gs, ah_g)
        return hs[1:], hs[T].clone()

    @staticmethod
    def backward(ctx, d_out, d_hT):
        x, W_xh, W_hh, hs, rz, gs, ah_g = ctx.saved_tensors
        with torch.autocast(x.device.type, enabled=False):
            T, N, _ = x.shape
            H = W_hh.shape[0]
            d_out = hs.new_zeros(T, N, H) if d_out is None else torch.empty_like(hs[1:]).copy_(d_out)
            r, z = rz[..., :H], rz[..., H:]
            dax = torch.empty(T, N, 3 * H, dtype=x.dtype, device=x.device)  # input-side pre-activations
            dah = torch.empty_like(dax)  # hidden-side products h W_hh
            dh = d_out[T - 1] + d_hT if d_hT is not None else d_out[T - 1].clone()
            W_hh_T = W_hh.T
            for t in range(T - 1, -1, -1):
                dax_t, dah_t, r_t, z_t, g_t = dax[t], dah[t], r[t], z[t], gs[t]
                dpre_g = torch.mul(dh, 1 - z_t, out=dax_t[:, 2 * H :]).mul_(1 - g_t * g_t)  # through 1 - z, tanh'
                torch.mul(dh, hs[t] - g_t, out=dax_t[:, H : 2 * H]).mul_(z_t * (1 - z_t))  # h_prev - g, sigmoid'
                torch.mul(dpre_g, ah_g[t], out=dax_t[:, :H]).mul_(r_t * (1 - r_t))  # h W_hg + b_hg, sigmoid'
                dah_t[:, : 2 * H] = dax_t[:, : 2 * H]  # r and z enter both sides alike
                torch.mul(dpre_g, r_t, out=dah_t[:, 2 * H :])  # g's hidden side is scaled by r
                h_direct = dh * z_t  # the direct path z * h_prev
                if t > 0:
                    dh = d_out[t - 1].addmm_(dah_t, W_hh_T).add_(h_direct)
                else:
                    dh = torch.mm(dah_t, W_hh_T).add_(h_direct)
            dax2, dah2 = dax.view(T * N, 3 * H), dah.view(T * N, 3 * H)
            dx = torch.mm(dax2, W_xh.T).view_as(x)
            dW_xh = torch.mm(x.reshape(T * N, -1).T, dax2)
            dW_hh = torch.mm(hs[:T].reshape(T * N, H).T, dah2)
            return dx, dh, dW_xh, dW_hh, dax2.sum(0), dah2[:, 2 * H :].sum(0)


class _GRUWeights(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, bias: bool) -> None:
        super().__init__()
        self.W_xh = nn.Parameter(torch.empty(input_size, 3 * hidden_size))  # (D, 3H): blocks r, z, g
        self.W_hh = nn.Parameter(torch.empty(hidden_size, 3 * hidden_size))  # (H, 3H)
        self.b = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None  # (3H,)
        self.b_hg = nn.Parameter(torch.empty(hidden_size)) if bias else None  # (H,)
        for p in self.parameters():
            nn.init.uniform_(p, -1 / math.sqrt(hidden_size), 1 / math.sqrt(hidden_size))


class FastGRU(nn.Module):
    """A fused GRU with ``torch.nn.GRU``'s arguments; tensors (batched or unbatched) in one direction."""

    _ARGUMENTS = "input_size hidden_size num_layers bias batch_first dropout bidirectional".split()

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__()
        if bidirectional:
            raise ValueError("FastGRU runs one direction; use lessons.gru.GRU for bidirectional=True")
        if num_layers < 1 or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"expected num_layers >= 1 and 0 <= dropout <= 1, got {num_layers}, {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, dropout, False
        self.cells = nn.ModuleList(_GRUWeights(input_size if k == 0 else hidden_size, hidden_size, bias)
                                   for k in range(num_layers))

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            raise ValueError("FastGRU takes tensors; use lessons.gru.GRU for a PackedSequence")
        x, _, unbatched = _as_padded(input, self.batch_first, self.input_size)  # (T, N, D)
        shape = (self.num_layers, x.shape[1], self.hidden_size)
        if hx is None:
            hx = x.new_zeros(shape)
        elif unbatched and isinstance(hx, torch.Tensor) and hx.dim() == 2:
            hx = hx.unsqueeze(1)
        if not isinstance(hx, torch.Tensor) or tuple(hx.shape) != shape:
            got = tuple(hx.shape) if isinstance(hx, torch.Tensor) else type(hx).__name__
            raise ValueError(f"expected an initial state of shape (L, N, H) = {shape}, got {got}")
        dtype, kind = _compute_dtype(x), x.device.type
        h_n = []
        with torch.autocast(kind, enabled=False):
            seq = x.to(dtype)
            for layer, cell in enumerate(self.cells):
                H = self.hidden_size
                b = cell.b if cell.b is not None else cell.W_xh.new_zeros(3 * H)
                b_hg = cell.b_hg if cell.b_hg is not None else cell.W_xh.new_zeros(H)
                seq, h = _FusedGRUFunction.apply(seq, hx[layer].to(dtype), cell.W_xh.to(dtype), cell.W_hh.to(dtype),
                                                 b.to(dtype), b_hg.to(dtype))
                h_n.append(h)
                if self.dropout and self.training and layer < self.num_layers - 1:
                    seq = F.dropout(seq, self.dropout)
        h_n = torch.stack(h_n)  # (L, N, H)
        if unbatched:
            return seq[:, 0], h_n[:, 0]
        return (seq.transpose(0, 1) if self.batch_first else seq), h_n

    @classmethod
    def from_torch(cls, reference: nn.GRU) -> "FastGRU":
        """``W_xh = weight_ih.T``, ``W_hh = weight_hh.T``; for r and z the two biases are summed, for g the
        input-side bias goes to ``b`` and the hidden-side one stays apart as ``b_hg``."""
        layer = cls(**{k: getattr(reference, k) for k in cls._ARGUMENTS}).to(reference.weight_ih_l0)
        H = reference.hidden_size
        with torch.no_grad():
            for k, cell in enumerate(layer.cells):
                cell.W_xh.copy_(getattr(reference, f"weight_ih_l{k}").T)
                cell.W_hh.copy_(getattr(reference, f"weight_hh_l{k}").T)
                if cell.b is not None:
                    b_ih, b_hh = getattr(reference, f"bias_ih_l{k}"), getattr(reference, f"bias_hh_l{k}")
                    cell.b.copy_(torch.cat([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]]))
                    cell.b_hg.copy_(b_hh[2 * H :])
        return layer

    def to_torch(self) -> nn.GRU:
        reference = nn.GRU(**{k: getattr(self, k) for k in self._ARGUMENTS}).to(self.cells[0].W_xh)
        H = self.hidden_size
        with torch.no_grad():
            for k, cell in enumerate(self.cells):
                getattr(reference, f"weight_ih_l{k}").copy_(cell.W_xh.T)
                getattr(reference, f"weight_hh_l{k}").copy_(cell.W_hh.T)
                if cell.b is not None:
                    getattr(reference, f"bias_ih_l{k}").copy_(cell.b)
                    getattr(reference, f"bias_hh_l{k}").copy_(torch.cat([torch.zeros_like(cell.b[: 2 * H]), cell.b_hg]))
        return reference


def init_forget_bias(rnn: nn.Module, value: float = 1.0) -> nn.Module:
    """Start every forget-gate bias (block f of i, f, g, o) of an LSTM (lessons' `LSTM`, `FastLSTM` or
    ``nn.LSTM``) at ``value``, as Keras' ``unit_forget_bias=True`` does with 1.0: the cell state is kept
    from the first update on. torch.nn sums two biases: ``bias_ih`` gets ``value``, ``bias_hh`` zero."""
    H = rnn.hidden_size
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            if name.split(".")[-1] == "b" or name.startswith(("bias_ih", "bias_hh")):
                p[H : 2 * H] = 0.0 if name.startswith("bias_hh") else value
    return rnn
