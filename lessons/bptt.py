r"""Backpropagation through time (BPTT) for the vanilla RNN, written by hand on weight tensors.

$h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b)$ uses the same weights at every step, so each gradient
is a *sum over time*; a step back multiplies $\partial L / \partial h_t$ by $\mathrm{diag}(1 - h_t^2)\, W_{hh}^\top$,
so over $k$ steps it shrinks or grows like $\rho^k$ ($\rho$: the spectral radius of $W_{hh}$).
`RNNRegressor` and `RNNRegressionSystem` train any layer with torch.nn's interface (``nn.RNN``,
``lessons.rnn.RNN`` …). It imports only stdlib, torch, pytorch_lightning, torchmetrics (and jsonargparse).
To run: two ``nn.RNN`` layers on the notes' multiplication problem (``fit --help`` lists every option):

```bash
python lessons/bptt.py fit --trainer.max_epochs 2 --trainer.gradient_clip_val 1.0 --model.model.init keras
```
"""

from __future__ import annotations

import math
import warnings
from collections import namedtuple
from typing import Callable

import pytorch_lightning as pl
import torch
from torchmetrics import MeanAbsoluteError
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence


RNNCache = namedtuple("RNNCache", "x h0 hs W_xh W_hh")  # for backward: (N, T, D), (N, H), (N, T, H), (D, H), (H, H)
RNNGrads = namedtuple("RNNGrads", "dx dh0 dW_xh dW_hh db dh")  # dh (N, T, H): dL/dh_t, what vanishes or explodes


# --8<-- [start:forward]
def rnn_forward(x, W_xh, W_hh, b, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, RNNCache]:
    """The RNN forward pass as an explicit loop; returns ``hs`` (N, T, H) and what backward needs."""
    D, H = W_xh.shape
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != D or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected x of shape (N, T, D) = (*, *, {D}), floating-point, got {got}")
    N, T, _ = x.shape
    h0 = x.new_zeros(N, H) if h0 is None else h0  # (N, H)
    if T == 0 or tuple(W_hh.shape) != (H, H) or tuple(b.shape) != (H,) or tuple(h0.shape) != (N, H):
        raise ValueError(f"expected T >= 1, W_hh, b, h0 of shapes (H, H), (H,), (N, H) = ({H}, {H}), ({H},), "
                         f"({N}, {H}), got T = {T}, {tuple(W_hh.shape)}, {tuple(b.shape)}, {tuple(h0.shape)}")
    h, hs = h0, []
    for t in range(T):
        h = torch.tanh(x[:, t] @ W_xh + h @ W_hh + b)  # $$h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b)$$
        hs.append(h)
    hs = torch.stack(hs, dim=1)  # (N, T, H)
    return hs, RNNCache(x, h0, hs, W_xh, W_hh)
# --8<-- [end:forward]


# --8<-- [start:backward]
def rnn_backward(dhs: torch.Tensor, cache: RNNCache) -> RNNGrads:
    r"""Walk the steps backwards, summing the shared weights' gradients. ``dhs`` (N, T, H) is what the loss
    puts directly on each state, $\partial \ell / \partial h_t$ (zero where it does not look)."""
    x, h0, hs, W_xh, W_hh = cache
    if tuple(dhs.shape) != tuple(hs.shape):
        raise ValueError(f"expected dhs of shape (N, T, H) = {tuple(hs.shape)}, got {tuple(dhs.shape)}")
    dx, dh = torch.zeros_like(x), torch.zeros_like(hs)  # (N, T, D), (N, T, H)
    dW_xh, dW_hh, db = torch.zeros_like(W_xh), torch.zeros_like(W_hh), hs.new_zeros(hs.shape[-1])
    dh_next = torch.zeros_like(h0)  # gradient arriving from step t+1: (N, H)
    for t in reversed(range(hs.shape[1])):
        h_t = hs[:, t]  # (N, H)
        h_prev = hs[:, t - 1] if t > 0 else h0  # (N, H)
        dh[:, t] = dhs[:, t] + dh_next  # addition distributes: both paths add up
        dz = dh[:, t] * (1 - h_t**2)  # tanh' = 1 - tanh^2: (N, H)
        dW_xh += x[:, t].T @ dz  # matmul rule, summed over time: (D, H)
        dW_hh += h_prev.T @ dz  # (H, H)
        db += dz.sum(dim=0)  # (H,)
        dx[:, t] = dz @ W_xh.T  # (N, D)
        dh_next = dz @ W_hh.T  # one step back: (N, H)
    return RNNGrads(dx, dh_next, dW_xh, dW_hh, db, dh)
# --8<-- [end:backward]


class ManualBPTT(torch.autograd.Function):
    """``hs = ManualBPTT.apply(x, W_xh, W_hh, b, h0)`` with the hand-written backward, for ``gradcheck``."""

    @staticmethod
    def forward(ctx, x, W_xh, W_hh, b, h0):
        hs, cache = rnn_forward(x, W_xh, W_hh, b, h0)
        ctx.save_for_backward(*cache)
        return hs  # (N, T, H)

    @staticmethod
    def backward(ctx, dhs):
        g = rnn_backward(dhs, RNNCache(*ctx.saved_tensors))
        return g.dx, g.dW_xh, g.dW_hh, g.db, g.dh0


# --8<-- [start:losses]
def many_to_one_mse(hs, W_hy, c, y) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""MSE of one answer from the last state, $\hat y = h_T W_{hy} + c$: ``loss, {"dhs", "dW_hy", "dc"}``."""
    h_T = hs[:, -1]  # (N, H)
    y_hat = h_T @ W_hy + c  # (N, C)
    if tuple(y.shape) != tuple(y_hat.shape):
        raise ValueError(f"expected y of shape (N, C) = {tuple(y_hat.shape)}, got {tuple(y.shape)}")
    dy = 2 * (y_hat - y) / y.numel()  # (N, C)
    dhs = torch.zeros_like(hs)  # (N, T, H): only the last step is looked at
    dhs[:, -1] = dy @ W_hy.T
    return ((y_hat - y) ** 2).mean(), {"dhs": dhs, "dW_hy": h_T.T @ dy, "dc": dy.sum(dim=0)}


def many_to_many_cross_entropy(hs, W_hy, c, y) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""Cross-entropy of logits $h_t W_{hy} + c$ averaged over every step; ``y`` (N, T) holds class ids."""
    logits = hs @ W_hy + c  # (N, T, C)
    if tuple(y.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"expected y of shape (N, T) = {tuple(logits.shape[:2])}, got {tuple(y.shape)}")
    one_hot = F.one_hot(y, logits.shape[-1]).to(logits)  # (N, T, C)
    loss = -(one_hot * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
    dlogits = (torch.softmax(logits, dim=-1) - one_hot) / y.numel()  # softmax + cross-entropy: p - target
    dW_hy = hs.flatten(0, 1).T @ dlogits.flatten(0, 1)  # (H, C), summed over N and T
    return loss, {"dhs": dlogits @ W_hy.T, "dW_hy": dW_hy, "dc": dlogits.sum(dim=(0, 1))}


def loss_and_gradients(x, y, params: dict[str, torch.Tensor], head: str = "many_to_one"):
    """Forward, loss and hand-written backward; ``params`` holds ``W_xh, W_hh, b, W_hy, c``; returns
    ``loss`` and ``{"dW_xh", "dW_hh", "db", "dW_hy", "dc", "dx"}``."""
    losses = {"many_to_one": many_to_one_mse, "many_to_many": many_to_many_cross_entropy}
    if head not in losses:
        raise ValueError(f"expected head to be one of {sorted(losses)}, got {head!r}")
    hs, cache = rnn_forward(x, params["W_xh"], params["W_hh"], params["b"])
    loss, out = losses[head](hs, params["W_hy"], params["c"], y)
    g = rnn_backward(out["dhs"], cache)
    return loss, {"dW_xh": g.dW_xh, "dW_hh": g.dW_hh, "db": g.db, "dW_hy": out["dW_hy"], "dc": out["dc"], "dx": g.dx}
# --8<-- [end:losses]


def finite_difference(f: Callable[[], torch.Tensor], tensor: torch.Tensor, index: tuple, eps: float = 1e-6) -> float:
    r"""Central difference $(f(w + \epsilon) - f(w - \epsilon)) / 2\epsilon$ for one entry of ``tensor``."""
    with torch.no_grad():
        old = tensor[index].item()
        tensor[index] = old + eps
        up = float(f())
        tensor[index] = old - eps
        down = float(f())
        tensor[index] = old  # restored
    return (up - down) / (2 * eps)


def spectral_radius(W: torch.Tensor) -> float:
    """The largest absolute eigenvalue of a square matrix: ``[[0, 2], [0.5, 0]]`` → 1.0."""
    if W.dim() != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"expected a square matrix of shape (H, H), got {tuple(W.shape)}")
    return torch.linalg.eigvals(W.double()).abs().max().item()


# --8<-- [start:norms]
def hidden_gradient_norms(x: torch.Tensor, W_xh: torch.Tensor, W_hh: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""$\lVert \partial L / \partial h_t \rVert$ at distance $k = T - t$ (entry $k$, batch mean) for a loss
    $L = h_T \cdot g$ on the last state only, $g$ a unit vector: 1 at $k = 0$. Shape (T,)."""
    hs, cache = rnn_forward(x, W_xh, W_hh, b)
    dhs = torch.zeros_like(hs)  # (N, T, H)
    dhs[:, -1] = 1 / math.sqrt(hs.shape[-1])  # g: a unit vector on h_T
    return rnn_backward(dhs, cache).dh.norm(dim=-1).mean(dim=0).flip(0)  # (T,), index k = T - t
# --8<-- [end:norms]


# --8<-- [start:experiment]
def norms_by_radius(radii=(0.9, 1.0, 1.1), steps: int = 50, hidden_size: int = 30, input_scale: float = 1e-3,
                    batch_size: int = 16, seed: int = 0) -> dict[float, torch.Tensor]:
    r"""`hidden_gradient_norms` with $W_{hh}$ = a random orthogonal matrix times each radius (every direction
    stretched by exactly that factor); small inputs keep $h_t$ near 0, where $1 - h_t^2 \approx 1$."""
    g = torch.Generator().manual_seed(seed)
    H, D = hidden_size, 2
    Q = torch.linalg.qr(torch.randn(H, H, generator=g, dtype=torch.float64))[0]  # orthogonal: (H, H)
    W_xh = torch.randn(D, H, generator=g, dtype=torch.float64) / math.sqrt(D)  # (D, H)
    x = input_scale * torch.randn(batch_size, steps, D, generator=g, dtype=torch.float64)  # (N, T, D)
    return {r: hidden_gradient_norms(x, W_xh, r * Q, torch.zeros(H, dtype=torch.float64)) for r in radii}
# --8<-- [end:experiment]


# --8<-- [start:clip]
def clip_gradient_norm(parameters, max_norm: float) -> float:
    """Scale all gradients together to a joint norm ≤ ``max_norm``; returns the norm before (as clip_grad_norm_)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.stack([g.norm() for g in grads]).norm()  # $$\lVert g \rVert$$ over every parameter
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)  # 1 when already short enough
    for g in grads:
        g.mul_(scale)  # the direction stays, the length is capped
    return total.item()
# --8<-- [end:clip]


# --8<-- [start:tbptt]
def truncated_bptt(layer: nn.Module, head: nn.Module, x, y, chunk: int, optimizer=None) -> list[float]:
    """Truncated BPTT, ``chunk`` steps at a time, for a ``batch_first=True`` torch.nn-style ``layer``: the state goes
    on *detached*, so backward stops at each chunk's start. Loss: MSE of ``head(output)`` against ``y`` (N, T, C);
    the ``optimizer`` (if any) steps after every chunk. Returns each chunk's loss."""
    if chunk < 1:
        raise ValueError(f"expected chunk >= 1 time steps, got {chunk}")
    losses, state = [], None
    for x_c, y_c in zip(x.split(chunk, dim=1), y.split(chunk, dim=1)):  # (N, chunk, D), (N, chunk, C)
        if state is not None:  # keep the value, cut the graph (an LSTM's state is a tuple)
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        out, state = layer(x_c, state)  # (N, chunk, H)
        loss = F.mse_loss(head(out), y_c)
        loss.backward()
        if optimizer is not None:  # without one, the chunks' gradients add up in .grad
            optimizer.step()
            optimizer.zero_grad()
        losses.append(loss.item())
    return losses
# --8<-- [end:tbptt]


# --8<-- [start:model]
class RNNRegressor(nn.Module):
    r"""A ``batch_first=True`` torch.nn-style layer, then a linear output from its last state (each sequence's
    own with ``lengths``): (N, T, D) → (N, C). ``init="torch"`` keeps the layer's initialisation (``nn.RNN``:
    spectral radius of $W_{hh}$ about 0.6), ``"keras"``: Glorot $W_{xh}$, orthogonal $W_{hh}$ (radius 1), biases 0."""

    def __init__(self, rnn: nn.Module, output_size: int = 1, init: str = "torch") -> None:
        super().__init__()
        if init not in ("torch", "keras"):
            raise ValueError(f"expected init 'torch' or 'keras', got {init!r}")
        self.K = 2 if getattr(rnn, "bidirectional", False) else 1
        self.rnn, self.head = rnn, nn.Linear(self.K * rnn.hidden_size, output_size)  # W_hy, c
        for name, p in rnn.named_parameters() if init == "keras" else ():  # Keras' SimpleRNN defaults
            w = torch.zeros(p.shape if "W_" in name else p.shape[::-1])  # torch.nn stores W_xh, W_hh transposed
            if p.dim() == 2:
                (nn.init.orthogonal_ if "hh" in name else nn.init.xavier_uniform_)(w)
            with torch.no_grad():
                p.copy_(w if "W_" in name else w.t())  # biases stay 0
# --8<-- [end:model]
    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:
            x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h_n = self.rnn(x)
        h_n = h_n[0] if isinstance(h_n, tuple) else h_n  # an LSTM's (h_n, c_n)
        return self.head(torch.cat(list(h_n[-self.K:]), dim=-1))  # top layer, both directions: (N, C)


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``x``, ``(x,)``, ``(x, y)`` or ``(x, lengths, y)`` → ``(x, lengths, y)``."""
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    return tuple(batch) if len(batch) == 3 else (batch[0], None, batch[1] if len(batch) == 2 else None)


# --8<-- [start:system]
class RNNRegressionSystem(pl.LightningModule):
    """MSE (the notes' ``loss="mse"``) with Adam or SGD (a step is exactly ``lr`` × the clipped gradient);
    logs MAE and, every step, ``grad_norm``: the joint norm *before* ``Trainer(gradient_clip_val=…)``."""

    def __init__(self, model: nn.Module, lr: float = 1e-3, optimizer: str = "adam") -> None:
        super().__init__()
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"expected optimizer 'adam' or 'sgd', got {optimizer!r}")
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.metrics = nn.ModuleDict({f"{s}_metric": MeanAbsoluteError() for s in ("train", "val", "test")})

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x) if lengths is None else self.model(x, lengths)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, lengths, y = split_batch(batch)
        y_hat = self(x, lengths)  # (N, C)
        loss = F.mse_loss(y_hat, y.view_as(y_hat))
        self.metrics[f"{stage}_metric"].update(y_hat, y.view_as(y_hat))
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(x), sync_dist=True)
        self.log(f"{stage}_mae", self.metrics[f"{stage}_metric"], on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx):
        return self(*split_batch(batch)[:2])  # x, lengths

    def configure_optimizers(self):
        optimizer = torch.optim.SGD if self.hparams.optimizer == "sgd" else torch.optim.Adam
        return optimizer(self.parameters(), lr=self.hparams.lr)

    def on_before_optimizer_step(self, optimizer) -> None:  # Lightning clips right after this hook
        norms = [p.grad.detach().float().norm() for p in self.parameters() if p.grad is not None]
        self.log("grad_norm", torch.stack(norms).norm(), on_step=True, on_epoch=False)
# --8<-- [end:system]


class TorchRNN(nn.RNN):
    """``nn.RNN`` with its arguments spelled out for the command line (jsonargparse would pass ``proj_size``)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = True, dropout: float = 0.0, bidirectional: bool = False):
        super().__init__(input_size, hidden_size, num_layers, nonlinearity, bias, batch_first, dropout, bidirectional)


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
    """``LightningCLI`` over `RNNRegressionSystem`: by default two ``nn.RNN`` layers learn to multiply."""
    from pytorch_lightning.cli import LightningCLI

    here = __name__  # the importable name (see the __main__ block), so checkpoints can name their classes
    rnn = {"class_path": f"{here}.TorchRNN", "init_args": {"input_size": 2, "hidden_size": 30, "num_layers": 2}}
    model = {"class_path": f"{here}.RNNRegressor", "init_args": {"rnn": rnn}}

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model.model": model, "data": {"class_path": f"{here}.MultiplicationData"},
                                 "trainer.max_epochs": 20, "trainer.log_every_n_steps": 1})

        def instantiate_classes(self):
            super().instantiate_classes()
            # the system ignores its model object; its class path and arguments let load_from_checkpoint rebuild it
            self.model.hparams["model"] = self.config_dump["model"]["model"]

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix
    CLI(RNNRegressionSystem, MultiplicationData, subclass_mode_data=True, seed_everything_default=0, args=args)


if __name__ == "__main__":
    # run the importable module's main, not __main__'s: the classes a checkpoint names must import again
    import importlib
    import pathlib

    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
