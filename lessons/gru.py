r"""Gated recurrent unit (GRU), written from its equations and equal to ``torch.nn.GRU``.

A GRU keeps one state vector $h_t$ (an LSTM keeps two). A reset gate $r_t$ decides how much of
the previous state the candidate $g_t$ may see, and one update gate $z_t$ mixes the old state
and the candidate, doing the work of the LSTM's forget and input gates together. With row
vectors, in ``torch.nn.GRU``'s convention:

$$
\begin{aligned}
r_t &= \sigma(x_t W_{xr} + h_{t-1} W_{hr} + b_r) && \text{reset gate} \\
z_t &= \sigma(x_t W_{xz} + h_{t-1} W_{hz} + b_z) && \text{update gate} \\
g_t &= \tanh\big(x_t W_{xg} + b_{xg} + r_t \odot (h_{t-1} W_{hg} + b_{hg})\big) && \text{candidate} \\
h_t &= z_t \odot h_{t-1} + (1 - z_t) \odot g_t
\end{aligned}
$$

The course notes write the candidate as $g_t = \tanh(x_t W_{xg} + (r_t \odot h_{t-1}) W_{hg} + b_g)$:
the reset gate is applied *before* the product with $W_{hg}$ (the original GRU paper's form).
PyTorch (and cuDNN) apply it *after* the product and its bias. The two are different functions of
the same weights; `notes_gru_step` computes the notes' form for comparison.

The three weight matrices are fused side by side in PyTorch's order (r, z, g): $W_{xh}$ is
$(D, 3H)$, $W_{hh}$ is $(H, 3H)$. Shapes use d2l's letters: N batch, T time steps, D input
features, H hidden units, L layers. ``x`` is batch-first, (N, T, D), unless ``batch_first=False``.

Contents: `GRUCell`, `notes_gru_step`, `GRU` (stacked, equal to ``torch.nn.GRU``), `FastGRU` (same
function, hand-written backward), `GRURegressor`, the training system `GRUSystem` and `fit`.

To run:

```bash
python lessons/gru.py                          # the multiplication problem, T = 30
python lessons/gru.py --steps 100 --epochs 60  # the notes' full length
python lessons/gru.py --accelerator gpu
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

__all__ = ["GRUCell", "notes_gru_step", "GRU", "FastGRU", "GRURegressor", "GRUSystem", "LossHistory", "fit"]


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


# --8<-- [start:cell]
class GRUCell(nn.Module):
    r"""One GRU step, PyTorch's convention, gates fused in the order r, z, g.

    Parameters: $W_{xh}$ (D, 3H), $W_{hh}$ (H, 3H), the input-side bias ``b`` (3H,) (for r and z it
    is PyTorch's two biases summed) and ``b_hg`` (H,), the bias inside the reset gate's product.

    Examples
    --------
    >>> cell = GRUCell(input_size=4, hidden_size=3)
    >>> tuple(cell(torch.zeros(2, 4), torch.zeros(2, 3)).shape)
    (2, 3)
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_xh = nn.Parameter(torch.empty(input_size, 3 * hidden_size))  # (D, 3H)
        self.W_hh = nn.Parameter(torch.empty(hidden_size, 3 * hidden_size))  # (H, 3H)
        self.b = nn.Parameter(torch.empty(3 * hidden_size))  # (3H,)
        self.b_hg = nn.Parameter(torch.empty(hidden_size))  # (H,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)  # as torch.nn.GRU
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        return self.recur(x_t @ self.W_xh + self.b, h_prev)  # (N, H)

    def gates(self, xp_t: torch.Tensor, h_prev: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``r, z, g`` from ``xp_t = x_t W_xh + b`` (N, 3H) and ``h_prev`` (N, H)."""
        xr, xz, xg = xp_t.chunk(3, dim=-1)  # (N, H) each
        hr, hz, hg = (h_prev @ self.W_hh).chunk(3, dim=-1)  # one product for all three
        r = torch.sigmoid(xr + hr)  # $$r_t = \sigma(x_t W_{xr} + h_{t-1} W_{hr} + b_r)$$
        z = torch.sigmoid(xz + hz)  # $$z_t = \sigma(x_t W_{xz} + h_{t-1} W_{hz} + b_z)$$
        g = torch.tanh(xg + r * (hg + self.b_hg))  # $$g_t = \tanh(x_t W_{xg} + b_{xg} + r_t \odot (h_{t-1} W_{hg} + b_{hg}))$$
        return r, z, g

    def recur(self, xp_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        """The part of a step that depends on the previous state."""
        r, z, g = self.gates(xp_t, h_prev)
        return z * h_prev + (1 - z) * g  # $$h_t = z_t \odot h_{t-1} + (1 - z_t) \odot g_t$$
# --8<-- [end:cell]


# --8<-- [start:notes]
def notes_gru_step(cell: GRUCell, x_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
    r"""The course notes' GRU step with the same weights: reset *before* the product.

    $g_t = \tanh(x_t W_{xg} + (r_t \odot h_{t-1}) W_{hg} + b_g)$, with $b_g = b_{xg} + b_{hg}$.
    """
    H = cell.hidden_size
    xr, xz, xg = (x_t @ cell.W_xh + cell.b).chunk(3, dim=-1)
    hr, hz, _ = (h_prev @ cell.W_hh).chunk(3, dim=-1)
    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    W_hg = cell.W_hh[:, 2 * H :]  # (H, H)
    g = torch.tanh(xg + (r * h_prev) @ W_hg + cell.b_hg)  # r applied to h, then the product
    return z * h_prev + (1 - z) * g
# --8<-- [end:notes]


# --8<-- [start:layer]
class GRU(nn.Module):
    """Stacked GRU layers unrolled over time, with ``torch.nn.GRU``'s interface.

    Input (N, T, D) (or (T, N, D) with ``batch_first=False``); returns the top layer's hidden
    states (N, T, H) and the last state of every layer, ``h_n`` (L, N, H).

    Examples
    --------
    >>> out, h_n = GRU(input_size=4, hidden_size=3, num_layers=2)(torch.zeros(5, 7, 4))
    >>> tuple(out.shape), tuple(h_n.shape)
    ((5, 7, 3), (2, 5, 3))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, batch_first: bool = True) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"expected num_layers >= 1, got {num_layers}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.batch_first = num_layers, batch_first
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.cells = nn.ModuleList(GRUCell(d, hidden_size) for d in sizes)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h0 = self._initial_state(x, h0)  # (L, N, H)
        seq = x if self.batch_first else x.transpose(0, 1)  # (N, T, D)
        h_n = []
        for layer, cell in enumerate(self.cells):
            h = h0[layer]  # (N, H)
            xp = seq @ cell.W_xh + cell.b  # (N, T, 3H), all steps in one product
            hs = []
            for xp_t in xp.transpose(0, 1).unbind(0):  # T tensors of (N, 3H)
                h = cell.recur(xp_t, h)  # (N, H)
                hs.append(h)
            seq = torch.stack(hs, dim=1)  # (N, T, H)
            h_n.append(h)
        out = seq if self.batch_first else seq.transpose(0, 1)
        return out, torch.stack(h_n)  # (N, T, H), (L, N, H)
# --8<-- [end:layer]

    def _initial_state(self, x, h0):
        check_sequence(x, self.input_size, batch_first=self.batch_first)
        shape = (self.num_layers, x.shape[0 if self.batch_first else 1], self.hidden_size)
        if h0 is None:
            return x.new_zeros(shape)
        if not isinstance(h0, torch.Tensor) or tuple(h0.shape) != shape:
            got = tuple(h0.shape) if isinstance(h0, torch.Tensor) else type(h0).__name__
            raise ValueError(f"expected h0 of shape (L, N, H) = {shape}, got {got}")
        if h0.dtype != x.dtype:
            raise ValueError(f"expected h0 with dtype {x.dtype} like the input, got {h0.dtype}")
        return h0

    @classmethod
    def from_torch(cls, reference: nn.GRU) -> "GRU":
        """Build a `GRU` holding a copy of a ``torch.nn.GRU``'s weights.

        ``W_xh = weight_ih.T``, ``W_hh = weight_hh.T``; for r and z the two biases are summed,
        for g the input-side bias goes to ``b`` and the hidden-side one stays apart as ``b_hg``.
        """
        if reference.bidirectional:
            raise ValueError("expected a one-direction torch.nn.GRU")
        layer = cls(reference.input_size, reference.hidden_size, reference.num_layers, reference.batch_first)
        layer = layer.to(reference.weight_ih_l0)
        H = reference.hidden_size
        with torch.no_grad():
            for k, cell in enumerate(layer.cells):
                cell.W_xh.copy_(getattr(reference, f"weight_ih_l{k}").T)
                cell.W_hh.copy_(getattr(reference, f"weight_hh_l{k}").T)
                b_ih = getattr(reference, f"bias_ih_l{k}") if reference.bias else torch.zeros_like(cell.b)
                b_hh = getattr(reference, f"bias_hh_l{k}") if reference.bias else torch.zeros_like(cell.b)
                cell.b.copy_(torch.cat([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]]))
                cell.b_hg.copy_(b_hh[2 * H :])
        return layer


class _FusedGRUFunction(torch.autograd.Function):
    """One GRU layer over the whole sequence with a hand-written backward.

    With $a = h_{t-1} W_{hh}$ split into $a_r, a_z, a_g$ and $\\tilde a_g = a_g + b_{hg}$:
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
        T, N, _ = x.shape
        H = W_hh.shape[0]
        # our own contiguous copy of dL/dh_t (one copy, not T): dh_{t-1} accumulates into it in place
        d_out = hs.new_zeros(T, N, H) if d_out is None else torch.empty_like(hs[1:]).copy_(d_out)
        r, z = rz[..., :H], rz[..., H:]
        dax = torch.empty(T, N, 3 * H, dtype=x.dtype, device=x.device)  # input-side pre-activations
        dah = torch.empty_like(dax)  # hidden-side products h W_hh
        dh = d_out[T - 1] + d_hT if d_hT is not None else d_out[T - 1].clone()
        W_hh_T = W_hh.T
        for t in range(T - 1, -1, -1):
            dax_t, dah_t, r_t, z_t, g_t = dax[t], dah[t], r[t], z[t], gs[t]
            # one step at a time, so that the step's values stay in the CPU cache
            dpre_g = torch.mul(dh, 1 - z_t, out=dax_t[:, 2 * H :]).mul_(1 - g_t * g_t)  # through 1 - z, tanh'
            torch.mul(dh, hs[t] - g_t, out=dax_t[:, H : 2 * H]).mul_(z_t * (1 - z_t))  # through h_prev - g, sigmoid'
            torch.mul(dpre_g, ah_g[t], out=dax_t[:, :H]).mul_(r_t * (1 - r_t))  # through h W_hg + b_hg, sigmoid'
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


class FastGRU(GRU):
    """`GRU` with the same weights and results, faster: one layer is one autograd node."""

    def forward(self, x, h0=None):
        h0 = self._initial_state(x, h0)
        seq = x.transpose(0, 1) if self.batch_first else x  # (T, N, D)
        h_n = []
        for layer, cell in enumerate(self.cells):
            seq, h = _FusedGRUFunction.apply(seq, h0[layer], cell.W_xh, cell.W_hh, cell.b, cell.b_hg)
            h_n.append(h)
        out = seq.transpose(0, 1) if self.batch_first else seq
        return out, torch.stack(h_n)


# --8<-- [start:heads]
class GRURegressor(nn.Module):
    """Many-to-one regression: read the sequence, answer once from the top layer's last state."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, output_size: int = 1,
                 fast: bool = True) -> None:
        super().__init__()
        self.rnn = (FastGRU if fast else GRU)(input_size, hidden_size, num_layers)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h_n = self.rnn(x)  # (L, N, H)
        return self.head(h_n[-1])  # (N, C)
# --8<-- [end:heads]


class GRUSystem(pl.LightningModule):
    """Trains a `GRURegressor` with mean squared error.

    Parameters
    ----------
    input_size, hidden_size, num_layers : int
        D, H and L.
    lr : float
        Adam's learning rate.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = GRURegressor(input_size, hidden_size, num_layers)
        self.metrics = nn.ModuleDict(
            {f"{stage}_metric": torchmetrics.MeanSquaredError() for stage in ("train", "val", "test")}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        out = self(x)
        loss = F.mse_loss(out, y.view_as(out))
        self.metrics[f"{stage}_metric"](out, y.view_as(out))
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        self.log(f"{stage}_mse", self.metrics[f"{stage}_metric"], prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


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
    """Train ``system`` with deterministic algorithms and return the trainer (seed before building it)."""
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
    parser = argparse.ArgumentParser(description="Train a GRU on the notes' multiplication problem.")
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
    system = GRUSystem(2, args.hidden, args.layers, lr=args.lr)
    trainer = fit(system, loader(x[:2048], y[:2048], True), loader(x[2048:2560], y[2048:2560], False),
                  max_epochs=args.epochs, progress=True, accelerator=args.accelerator)
    variance = y[2048:2560].var().item()
    mse = trainer.callback_metrics["val_mse"].item()
    print(f"validation MSE {mse:.5f} = {mse / variance:.1%} of the target variance {variance:.5f}")


if __name__ == "__main__":
    main()
