r"""Backpropagation through time (BPTT) for the vanilla RNN, written by hand.

The forward pass of the RNN lesson, with row vectors ((1, D)(D, H) = (1, H)):

$$
z_t = x_t W_{xh} + h_{t-1} W_{hh} + b, \qquad h_t = \tanh(z_t), \qquad h_0 \text{ given (zero by default)}
$$

The same $W_{xh}$, $W_{hh}$ and $b$ are used at every step, so the gradient of a loss $L$ with
respect to each of them is a *sum over time*. Walking backwards from $t = T$ to $1$:

$$
\frac{\partial L}{\partial h_t} = \frac{\partial \ell}{\partial h_t} + \frac{\partial L}{\partial z_{t+1}} W_{hh}^\top,
\qquad
\frac{\partial L}{\partial z_t} = \frac{\partial L}{\partial h_t} \odot (1 - h_t^2)
$$

$$
\frac{\partial L}{\partial W_{xh}} = \sum_t x_t^\top \frac{\partial L}{\partial z_t}, \qquad
\frac{\partial L}{\partial W_{hh}} = \sum_t h_{t-1}^\top \frac{\partial L}{\partial z_t}, \qquad
\frac{\partial L}{\partial b} = \sum_t \sum_n \frac{\partial L}{\partial z_t}
$$

where $\partial \ell / \partial h_t$ is what the loss puts directly on step $t$. One step back
multiplies the gradient by the Jacobian $\partial h_t / \partial h_{t-1} = \mathrm{diag}(1 - h_t^2)\, W_{hh}^\top$
(column form), so over a distance $k$ it is multiplied by $k$ of them: it shrinks geometrically
when $W_{hh}$'s spectral radius is below 1 (vanishing) and can grow geometrically above 1 (exploding).

Contents: the RNN layer (`RNNCell`, `RNN`, copied from the RNN lesson so that this file stands
alone), the hand-written `rnn_forward` / `rnn_backward` (and `ManualBPTT`, the two as one autograd
operation for ``gradcheck``), the two losses (`many_to_one_mse`, `many_to_many_cross_entropy`,
`loss_and_gradients`), `finite_difference`, the tools of the vanishing/exploding experiment
(`spectral_radius`, `with_spectral_radius`, `hidden_gradient_norms`, `norms_by_radius`),
the remedies (`clip_gradient_norm`, `truncated_bptt`), and the two-layer `StackedRNNRegressor`
with its training system `RNNRegressionSystem` for the notes' multiplication problem.

To run:

```bash
python lessons/bptt.py --task norms                       # ||dL/dh_t|| against T - t for 3 radii
python lessons/bptt.py --task multiply                    # the notes' multiplication problem
python lessons/bptt.py --task multiply --epochs 100 --batch-size 32 --init keras
```

The file imports only the standard library, torch, pytorch_lightning and torchmetrics, so it
can be copied into a project on its own.
"""

from __future__ import annotations

import argparse
import logging
import math
import warnings
from typing import Callable, NamedTuple

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F

__all__ = [
    "RNNCell",
    "RNN",
    "RNNCache",
    "RNNGrads",
    "ManualBPTT",
    "rnn_forward",
    "rnn_backward",
    "many_to_one_mse",
    "many_to_many_cross_entropy",
    "loss_and_gradients",
    "finite_difference",
    "spectral_radius",
    "with_spectral_radius",
    "hidden_gradient_norms",
    "norms_by_radius",
    "clip_gradient_norm",
    "truncated_bptt",
    "StackedRNNRegressor",
    "RNNRegressionSystem",
    "LossHistory",
    "GradNormHistory",
    "fit",
]


def check_sequence(x: torch.Tensor, input_size: int, name: str = "x") -> None:
    """Raise a ``ValueError`` unless ``x`` is a floating-point (N, T, D) tensor with D = input_size, T >= 1.

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
        raise ValueError(
            f"expected {name} to be a floating-point tensor of shape (N, T, D) = (*, *, {input_size}), "
            f"got dtype {x.dtype}"
        )
    if x.shape[1] == 0:
        raise ValueError(f"expected {name} of shape (N, T, D) with at least one time step (T >= 1), got T = 0")


def _check_state(h: torch.Tensor, batch_size: int, hidden_size: int, like: torch.Tensor, name: str) -> None:
    if not isinstance(h, torch.Tensor) or tuple(h.shape) != (batch_size, hidden_size):
        shape = tuple(h.shape) if isinstance(h, torch.Tensor) else type(h).__name__
        raise ValueError(f"expected {name} of shape (N, H) = ({batch_size}, {hidden_size}), got {shape}")
    if h.dtype != like.dtype:
        raise ValueError(f"expected {name} with dtype {like.dtype} like the input, got {h.dtype}")


# ---------------------------------------------------------------------------------------------
# The RNN layer of the RNN lesson (copied so that this file stands alone)
# ---------------------------------------------------------------------------------------------


class RNNCell(nn.Module):
    r"""One step of a vanilla RNN: $h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b)$.

    Parameters
    ----------
    input_size : int
        D, the number of features of one input vector ``x_t``.
    hidden_size : int
        H, the number of hidden units.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_xh = nn.Parameter(torch.empty(input_size, hidden_size))  # (D, H)
        self.W_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))  # (H, H)
        self.b = nn.Parameter(torch.empty(hidden_size))  # (H,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same scale as torch.nn.RNN: U(-1/sqrt(H), 1/sqrt(H)).
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        return self.recur(x_t @ self.W_xh + self.b, h_prev)  # (N, H)

    def recur(self, xp_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        """The part of a step that depends on the previous state; ``xp_t = x_t W_xh + b``."""
        return torch.tanh(xp_t + h_prev @ self.W_hh)  # (N, H)


class RNN(nn.Module):
    """The cell unrolled over time: (N, T, D) → (N, T, H), plus the last state h_T of shape (N, H).

    Autograd differentiates this layer; `rnn_forward` and `rnn_backward` compute the same thing
    by hand.

    Examples
    --------
    >>> layer = RNN(input_size=4, hidden_size=3)
    >>> hs, h_T = layer(torch.zeros(5, 7, 4))  # (N, T, D)
    >>> tuple(hs.shape), tuple(h_T.shape)
    ((5, 7, 3), (5, 3))
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.cell = RNNCell(input_size, hidden_size)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        D, H = self.cell.input_size, self.cell.hidden_size
        check_sequence(x, D)
        N = x.shape[0]
        h = x.new_zeros(N, H) if h0 is None else h0
        _check_state(h, N, H, x, "h0")
        xp = x @ self.cell.W_xh + self.cell.b  # (N, T, H), all steps in one product
        hs = []
        for xp_t in xp.transpose(0, 1).unbind(0):  # T tensors of (N, H); x[:, t] would make backward O(T^2)
            h = self.cell.recur(xp_t, h)  # (N, H)
            hs.append(h)
        return torch.stack(hs, dim=1), h  # (N, T, H), (N, H)

    @classmethod
    def from_torch(cls, reference: nn.RNN) -> "RNN":
        """Build an `RNN` holding a copy of a one-layer, batch-first ``torch.nn.RNN``'s weights
        (``W_xh = weight_ih.T``, ``W_hh = weight_hh.T``, ``b = b_ih + b_hh``)."""
        if reference.num_layers != 1 or reference.bidirectional or reference.nonlinearity != "tanh":
            raise ValueError("expected a one-layer, one-direction torch.nn.RNN with tanh")
        if not reference.batch_first:
            raise ValueError("expected torch.nn.RNN(batch_first=True): this lesson's layout is (N, T, D)")
        layer = cls(reference.input_size, reference.hidden_size).to(reference.weight_ih_l0)
        with torch.no_grad():
            layer.cell.W_xh.copy_(reference.weight_ih_l0.T)
            layer.cell.W_hh.copy_(reference.weight_hh_l0.T)
            bias = torch.zeros_like(layer.cell.b)
            if reference.bias:
                bias = reference.bias_ih_l0 + reference.bias_hh_l0
            layer.cell.b.copy_(bias)
        return layer


# ---------------------------------------------------------------------------------------------
# BPTT by hand
# ---------------------------------------------------------------------------------------------


class RNNCache(NamedTuple):
    """What `rnn_backward` needs from the forward pass."""

    x: torch.Tensor  # (N, T, D)
    h0: torch.Tensor  # (N, H)
    hs: torch.Tensor  # (N, T, H)
    W_xh: torch.Tensor  # (D, H)
    W_hh: torch.Tensor  # (H, H)


class RNNGrads(NamedTuple):
    """The gradients of a loss $L$ that `rnn_backward` returns.

    ``dh`` is $\\partial L / \\partial h_t$ for every step: what the loss puts on step $t$ directly
    plus what flows back from the later steps (the quantity that vanishes or explodes).
    """

    dx: torch.Tensor  # (N, T, D)
    dh0: torch.Tensor  # (N, H)
    dW_xh: torch.Tensor  # (D, H)
    dW_hh: torch.Tensor  # (H, H)
    db: torch.Tensor  # (H,)
    dh: torch.Tensor  # (N, T, H)


# --8<-- [start:forward]
def rnn_forward(
    x: torch.Tensor, W_xh: torch.Tensor, W_hh: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None
) -> tuple[torch.Tensor, RNNCache]:
    """The RNN forward pass as an explicit loop, keeping what the backward pass needs.

    Returns the hidden states ``hs`` of shape (N, T, H) and an `RNNCache`.
    """
    D, H = W_xh.shape
    check_sequence(x, D)
    N, T, _ = x.shape
    if tuple(W_hh.shape) != (H, H) or tuple(b.shape) != (H,):
        raise ValueError(f"expected W_hh of shape (H, H) = ({H}, {H}) and b of shape (H,) = ({H},), "
                         f"got {tuple(W_hh.shape)} and {tuple(b.shape)}")
    h = x.new_zeros(N, H) if h0 is None else h0  # (N, H)
    _check_state(h, N, H, x, "h0")
    hs = []
    for t in range(T):
        h = torch.tanh(x[:, t] @ W_xh + h @ W_hh + b)  # $$h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b)$$
        hs.append(h)
    hs = torch.stack(hs, dim=1)  # (N, T, H)
    return hs, RNNCache(x, x.new_zeros(N, H) if h0 is None else h0, hs, W_xh, W_hh)
# --8<-- [end:forward]


# --8<-- [start:backward]
def rnn_backward(dhs: torch.Tensor, cache: RNNCache) -> RNNGrads:
    """Backpropagation through time: walk the steps backwards, summing the shared weights' gradients.

    ``dhs`` (N, T, H) is what the loss puts directly on each hidden state, $\\partial \\ell / \\partial h_t$
    (zeros where the loss does not look, e.g. every step but the last for a many-to-one head).
    """
    x, h0, hs, W_xh, W_hh = cache
    if tuple(dhs.shape) != tuple(hs.shape):
        raise ValueError(f"expected dhs of shape (N, T, H) = {tuple(hs.shape)} like the hidden states, "
                         f"got {tuple(dhs.shape)}")
    N, T, _ = hs.shape
    dx = torch.zeros_like(x)  # (N, T, D)
    dh = torch.zeros_like(hs)  # (N, T, H)
    dW_xh, dW_hh = torch.zeros_like(W_xh), torch.zeros_like(W_hh)  # (D, H), (H, H)
    db = hs.new_zeros(hs.shape[-1])  # (H,)
    dh_next = torch.zeros_like(h0)  # gradient arriving from step t+1: (N, H)
    for t in reversed(range(T)):
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
    """`rnn_forward` and `rnn_backward` as one autograd operation: ``hs = ManualBPTT.apply(x, W_xh, W_hh, b, h0)``.

    Autograd calls the hand-written `rnn_backward` instead of differentiating the loop itself,
    so ``torch.autograd.gradcheck`` on this function checks the hand-written backward against
    finite differences.
    """

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
def many_to_one_mse(
    hs: torch.Tensor, W_hy: torch.Tensor, c: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean squared error of one answer from the last state, $\\hat y = h_T W_{hy} + c$, and its gradients.

    Returns ``loss`` and ``{"dhs", "dW_hy", "dc"}``; only the last step of ``dhs`` is non-zero.
    """
    h_T = hs[:, -1]  # (N, H)
    y_hat = h_T @ W_hy + c  # (N, C)
    if tuple(y.shape) != tuple(y_hat.shape):
        raise ValueError(f"expected y of shape (N, C) = {tuple(y_hat.shape)}, got {tuple(y.shape)}")
    loss = ((y_hat - y) ** 2).mean()
    dy = 2 * (y_hat - y) / y.numel()  # (N, C)
    dhs = torch.zeros_like(hs)  # (N, T, H)
    dhs[:, -1] = dy @ W_hy.T
    return loss, {"dhs": dhs, "dW_hy": h_T.T @ dy, "dc": dy.sum(dim=0)}


def many_to_many_cross_entropy(
    hs: torch.Tensor, W_hy: torch.Tensor, c: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Cross-entropy averaged over every step, logits $h_t W_{hy} + c$, and its gradients.

    ``y`` (N, T) holds class indices. Returns ``loss`` and ``{"dhs", "dW_hy", "dc"}``.
    """
    logits = hs @ W_hy + c  # (N, T, C)
    if tuple(y.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"expected y of shape (N, T) = {tuple(logits.shape[:2])} holding class indices, "
                         f"got {tuple(y.shape)}")
    p = torch.softmax(logits, dim=-1)  # (N, T, C)
    one_hot = F.one_hot(y, logits.shape[-1]).to(p)  # (N, T, C)
    loss = -(one_hot * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
    dlogits = (p - one_hot) / y.numel()  # softmax + cross-entropy: p - target, averaged
    dW_hy = hs.flatten(0, 1).T @ dlogits.flatten(0, 1)  # (H, C), summed over N and T
    return loss, {"dhs": dlogits @ W_hy.T, "dW_hy": dW_hy, "dc": dlogits.sum(dim=(0, 1))}


LOSSES = {"many_to_one": many_to_one_mse, "many_to_many": many_to_many_cross_entropy}


def loss_and_gradients(
    x: torch.Tensor, y: torch.Tensor, params: dict[str, torch.Tensor], head: str = "many_to_one"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Forward, loss and hand-written backward in one call.

    ``params`` holds ``W_xh, W_hh, b, W_hy, c``; the result holds the gradient of each, named
    ``dW_xh`` …, plus ``dx``.
    """
    if head not in LOSSES:
        raise ValueError(f"expected head to be one of {sorted(LOSSES)}, got {head!r}")
    hs, cache = rnn_forward(x, params["W_xh"], params["W_hh"], params["b"])
    loss, head_grads = LOSSES[head](hs, params["W_hy"], params["c"], y)
    g = rnn_backward(head_grads["dhs"], cache)
    grads = {"dW_xh": g.dW_xh, "dW_hh": g.dW_hh, "db": g.db, "dW_hy": head_grads["dW_hy"],
             "dc": head_grads["dc"], "dx": g.dx}
    return loss, grads
# --8<-- [end:losses]


def finite_difference(f: Callable[[], torch.Tensor], tensor: torch.Tensor, index: tuple[int, ...],
                      eps: float = 1e-6) -> float:
    """Central difference $(f(w + \\epsilon) - f(w - \\epsilon)) / 2\\epsilon$ for one entry of ``tensor``.

    ``f`` takes no argument and reads ``tensor``; the entry is restored afterwards.

    >>> w = torch.tensor([3.0], dtype=torch.float64)
    >>> round(finite_difference(lambda: (w**2).sum(), w, (0,)), 6)   # d(w^2)/dw = 2w
    6.0
    """
    with torch.no_grad():
        old = tensor[index].item()
        tensor[index] = old + eps
        up = float(f())
        tensor[index] = old - eps
        down = float(f())
        tensor[index] = old
    return (up - down) / (2 * eps)


# ---------------------------------------------------------------------------------------------
# Vanishing and exploding gradients
# ---------------------------------------------------------------------------------------------


def spectral_radius(W: torch.Tensor) -> float:
    """The largest absolute eigenvalue of a square matrix.

    >>> spectral_radius(torch.tensor([[0.0, 2.0], [0.5, 0.0]]))
    1.0
    """
    if W.dim() != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"expected a square matrix of shape (H, H), got {tuple(W.shape)}")
    return torch.linalg.eigvals(W.double()).abs().max().item()


def with_spectral_radius(W: torch.Tensor, radius: float) -> torch.Tensor:
    """``W`` scaled so that its spectral radius is ``radius``."""
    return W * (radius / spectral_radius(W))


# --8<-- [start:norms]
def hidden_gradient_norms(x: torch.Tensor, W_xh: torch.Tensor, W_hh: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """$\\lVert \\partial L / \\partial h_t \\rVert$ against the distance $k = T - t$, for a loss on the last state only.

    The loss is $L = h_T \\cdot g$ with a unit vector $g$, so the norm is 1 at $k = 0$; entry $k$ of
    the result is the norm $k$ steps back, averaged over the batch. Shape (T,).
    """
    hs, cache = rnn_forward(x, W_xh, W_hh, b)
    dhs = torch.zeros_like(hs)  # (N, T, H)
    dhs[:, -1] = 1 / math.sqrt(hs.shape[-1])  # g: a unit vector on h_T
    dh = rnn_backward(dhs, cache).dh  # (N, T, H)
    return dh.norm(dim=-1).mean(dim=0).flip(0)  # (T,), index k = T - t
# --8<-- [end:norms]


# --8<-- [start:experiment]
def norms_by_radius(
    radii: tuple[float, ...] = (0.9, 1.0, 1.1),
    steps: int = 50,
    hidden_size: int = 30,
    input_scale: float = 1e-3,
    batch_size: int = 16,
    seed: int = 0,
) -> dict[float, torch.Tensor]:
    """`hidden_gradient_norms` for one RNN whose $W_{hh}$ is scaled to each spectral radius in turn.

    $W_{hh}$ is a random orthogonal matrix times the radius, so every direction is stretched by
    exactly that factor; inputs are Gaussian times ``input_scale`` (small inputs keep $h_t$ near 0,
    where $1 - h_t^2 \approx 1$). Computed in float64. Returns ``{radius: norms of shape (T,)}``.
    """
    g = torch.Generator().manual_seed(seed)
    H, D = hidden_size, 2
    Q = torch.linalg.qr(torch.randn(H, H, generator=g, dtype=torch.float64))[0]  # orthogonal: (H, H)
    W_xh = torch.randn(D, H, generator=g, dtype=torch.float64) / math.sqrt(D)  # (D, H)
    x = input_scale * torch.randn(batch_size, steps, D, generator=g, dtype=torch.float64)  # (N, T, D)
    b = torch.zeros(H, dtype=torch.float64)
    return {r: hidden_gradient_norms(x, W_xh, r * Q, b) for r in radii}
# --8<-- [end:experiment]


# ---------------------------------------------------------------------------------------------
# Remedies
# ---------------------------------------------------------------------------------------------


# --8<-- [start:clip]
def clip_gradient_norm(parameters, max_norm: float) -> float:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    Returns the norm *before* clipping, like ``torch.nn.utils.clip_grad_norm_`` (which Lightning's
    ``gradient_clip_val`` calls).
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.stack([g.norm() for g in grads]).norm()  # $$\lVert g \rVert$$ over every parameter
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)  # 1 when already short enough
    for g in grads:
        g.mul_(scale)  # the direction stays, the length is capped
    return total.item()
# --8<-- [end:clip]


# --8<-- [start:tbptt]
def truncated_bptt(
    layer: RNN,
    head: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    chunk: int,
    optimizer: torch.optim.Optimizer | None = None,
) -> list[float]:
    """Truncated BPTT over one long batch of sequences, ``chunk`` steps at a time.

    The hidden state is carried from chunk to chunk (the forward pass sees the whole history),
    but it is *detached*, so each backward pass stops at the start of its chunk. The loss is the
    mean squared error of ``head(h_t)`` against ``y`` (N, T, C) at every step. With an
    ``optimizer`` the weights are updated after every chunk; without one the chunks' gradients
    add up in ``.grad``. Returns the loss of each chunk.
    """
    if chunk < 1:
        raise ValueError(f"expected chunk >= 1 time steps, got {chunk}")
    losses, h = [], None
    for x_c, y_c in zip(x.split(chunk, dim=1), y.split(chunk, dim=1)):  # (N, chunk, D), (N, chunk, C)
        if h is not None:
            h = h.detach()  # keep the value, cut the graph: backward stops here
        hs, h = layer(x_c, h)  # (N, chunk, H), (N, H)
        loss = F.mse_loss(head(hs), y_c)
        if optimizer is not None:
            optimizer.zero_grad()
        loss.backward()
        if optimizer is not None:
            optimizer.step()
        losses.append(loss.item())
    return losses
# --8<-- [end:tbptt]


# ---------------------------------------------------------------------------------------------
# The multiplication problem: two stacked RNN layers
# ---------------------------------------------------------------------------------------------


# --8<-- [start:stacked]
class StackedRNNRegressor(nn.Module):
    r"""Stacked RNN layers and a linear output: (N, T, D) → (N, 1).

    The notes' Keras model ``SimpleRNN(30, return_sequences=True)`` → ``SimpleRNN(30)`` →
    ``Dense(1)``: every layer but the last hands its whole sequence (N, T, H) to the next one, the
    last layer's final state h_T goes to the output.

    ``init="torch"`` keeps PyTorch's initialisation, uniform in $\pm 1/\sqrt{H}$ (the spectral radius
    of $W_{hh}$ is then about 0.6); ``init="keras"`` uses Keras' defaults for ``SimpleRNN``:
    Glorot-uniform $W_{xh}$, orthogonal $W_{hh}$ (spectral radius exactly 1) and zero bias.

    Examples
    --------
    >>> model = StackedRNNRegressor(input_size=2, hidden_size=30, num_layers=2)
    >>> tuple(model(torch.zeros(4, 100, 2)).shape)
    (4, 1)
    """

    def __init__(self, input_size: int = 2, hidden_size: int = 30, num_layers: int = 2, init: str = "torch") -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"expected num_layers >= 1, got {num_layers}")
        if init not in ("torch", "keras"):
            raise ValueError(f"expected init 'torch' or 'keras', got {init!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        sizes = [input_size] + [hidden_size] * num_layers
        self.layers = nn.ModuleList(RNN(d, hidden_size) for d in sizes[:-1])
        self.head = nn.Linear(hidden_size, 1)  # W_hy, c
        if init == "keras":
            with torch.no_grad():
                for layer in self.layers:
                    nn.init.xavier_uniform_(layer.cell.W_xh)  # Keras' glorot_uniform kernel
                    nn.init.orthogonal_(layer.cell.W_hh)  # every |eigenvalue| = 1
                    nn.init.zeros_(layer.cell.b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence(x, self.input_size)
        hs = x  # (N, T, D)
        for layer in self.layers:
            hs, h_T = layer(hs)  # (N, T, H), (N, H)
        return self.head(h_T)  # (N, 1)
# --8<-- [end:stacked]


# --8<-- [start:system]
class RNNRegressionSystem(pl.LightningModule):
    """Trains a `StackedRNNRegressor` with mean squared error, as the notes' ``compile(loss="mse")``.

    Parameters
    ----------
    input_size, hidden_size, num_layers : int
        D, H and the number of stacked RNN layers.
    lr : float
        The learning rate.
    optimizer : {"adam", "sgd"}
        Adam (the notes' choice) or plain SGD (used to show clipping: each step moves the weights by
        exactly ``lr`` times the gradient).
    init : {"torch", "keras"}
        The initialisation of `StackedRNNRegressor`.
    """

    def __init__(
        self,
        input_size: int = 2,
        hidden_size: int = 30,
        num_layers: int = 2,
        lr: float = 1e-3,
        optimizer: str = "adam",
        init: str = "torch",
    ) -> None:
        super().__init__()
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"expected optimizer 'adam' or 'sgd', got {optimizer!r}")
        self.save_hyperparameters()
        self.model = StackedRNNRegressor(input_size, hidden_size, num_layers, init)
        self.metrics = nn.ModuleDict({f"{s}_mae": torchmetrics.MeanAbsoluteError() for s in ("train", "val", "test")})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # (N, 1)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        y_hat = self(x)  # (N, 1)
        loss = F.mse_loss(y_hat, y.view_as(y_hat))
        self.metrics[f"{stage}_mae"](y_hat, y.view_as(y_hat))
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        self.log(f"{stage}_mae", self.metrics[f"{stage}_mae"], on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        if self.hparams.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
# --8<-- [end:system]


class LossHistory(pl.Callback):
    """Keep every epoch's logged metrics (e.g. ``train_loss``, ``val_loss``) in ``self.history``."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for key, value in trainer.callback_metrics.items():
            self.history.setdefault(key, []).append(float(value))


class GradNormHistory(pl.Callback):
    """Record the joint gradient norm of every training step in ``self.norms``.

    Lightning calls this hook before it clips, so these are the norms *before* clipping.
    """

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer) -> None:
        grads = [p.grad.norm() for p in pl_module.parameters() if p.grad is not None]
        self.norms.append(torch.stack(grads).norm().item())


# --8<-- [start:fit]
def fit(
    system: pl.LightningModule,
    train: torch.utils.data.DataLoader,
    val: torch.utils.data.DataLoader | None = None,
    max_epochs: int = 10,
    gradient_clip_val: float | None = None,
    progress: bool = False,
    accelerator: str = "cpu",
    callbacks: list[pl.Callback] | None = None,
) -> pl.Trainer:
    """Train ``system`` with deterministic algorithms and return the trainer.

    ``gradient_clip_val`` is handed to ``pl.Trainer``: before every optimizer step Lightning scales
    the gradients so that their joint norm is at most this value (``gradient_clip_algorithm="norm"``).
    Seed *before* building the system (``pl.seed_everything(0)``).
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
            gradient_clip_val=gradient_clip_val,
            gradient_clip_algorithm="norm",
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=progress,
            enable_progress_bar=progress,
            num_sanity_val_steps=0,
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
# --8<-- [end:fit]


def _multiplication_data(count: int, steps: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    # The command line's own copy of lessons/datasets.py's multiplication_problem (same numbers for
    # the same seed, checked by tests/test_bptt.py), so that this file runs on its own.
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(count, steps, generator=g)  # (N, T)
    positions = torch.rand(count, steps, generator=g).argsort(dim=1)[:, :2].sort(dim=1).values  # (N, 2)
    marker = torch.zeros(count, steps).scatter_(1, positions, 1.0)  # (N, T)
    return torch.stack([marker, values], dim=-1), values.gather(1, positions).prod(dim=1, keepdim=True)


def _norms_demo(args: argparse.Namespace) -> None:
    shown = [k for k in (0, 10, 20, 30, 40, args.steps - 1) if k < args.steps]
    for input_scale in (1e-3, 1.0):
        print(f"||dL/dh_t|| at distance k = T - t, inputs scaled by {input_scale:g}")
        print("radius  " + "  ".join(f"k={k:<7d}" for k in shown))
        norms = norms_by_radius(steps=args.steps, hidden_size=args.hidden, input_scale=input_scale, seed=args.seed)
        for radius, n in norms.items():
            print(f"{radius:<6}  " + "  ".join(f"{n[k].item():<9.2e}" for k in shown))


def _multiply_demo(args: argparse.Namespace) -> None:
    x, y = _multiplication_data(3000, args.steps, args.seed)
    train_set = torch.utils.data.TensorDataset(x[:2048], y[:2048])
    val_set = torch.utils.data.TensorDataset(x[2048:2560], y[2048:2560])
    train = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    val = torch.utils.data.DataLoader(val_set, batch_size=512)
    pl.seed_everything(args.seed)
    system = RNNRegressionSystem(2, args.hidden, 2, lr=args.lr, init=args.init)
    trainer = fit(system, train, val, max_epochs=args.epochs, gradient_clip_val=args.clip, progress=True,
                  accelerator=args.accelerator)
    baseline = ((y[2048:2560] - y[:2048].mean()) ** 2).mean().item()
    print(f"train MSE {trainer.callback_metrics['train_loss'].item():.4f}, "
          f"val MSE {trainer.callback_metrics['val_loss'].item():.4f}, "
          f"baseline (predict the training mean) {baseline:.4f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Backpropagation through time: gradient norms and the "
                                                 "multiplication problem.")
    parser.add_argument("--task", choices=["norms", "multiply"], default="norms")
    parser.add_argument("--hidden", type=int, default=30, help="H, the number of hidden units")
    parser.add_argument("--steps", type=int, default=None, help="T, the sequence length (50 for norms, 100 for multiply)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--clip", type=float, default=None, help="gradient_clip_val (joint gradient norm)")
    parser.add_argument("--init", choices=["torch", "keras"], default="torch", help="initialisation of the RNN layers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accelerator", default="cpu", help="cpu, gpu or auto")
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = 50 if args.task == "norms" else 100
    (_norms_demo if args.task == "norms" else _multiply_demo)(args)


if __name__ == "__main__":
    main()
