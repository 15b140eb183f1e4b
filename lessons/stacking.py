r"""Stacking recurrent layers: every layer hands its whole output sequence to the next one.

A recurrent layer that returns only its last state $h_T$ ends the sequence; a layer that returns
every $h_t$ (Keras's ``return_sequences=True``) produces a new sequence, so another recurrent layer
can read it. With $h^{(0)}_t = x_t$ and layers $l = 1, \dots, L$:

$$
h^{(l)}_t = \mathrm{GRU}^{(l)}\left(h^{(l-1)}_t \odot m^{(l)}_x,\; h^{(l)}_{t-1}\right), \qquad
\hat{y} = h^{(L)}_T W_{hy} + b_y
$$

where the gates of layer $l$ read $h^{(l)}_{t-1} \odot m^{(l)}_h$ (recurrent dropout, one mask per
sequence as in the recurrent dropout lesson). Stacking adds capacity; with dropout off and equal
sizes the stack equals ``torch.nn.GRU(num_layers=L)`` with copied weights.

Contents: `GRUCell`, `GRULayer` (one layer with per-sequence masks), `StackedGRU`, the forecasting
model `StackedForecaster`, the training system `StackedForecastSystem`, the callbacks `History` and
`KeepBest`, and `fit`. Shapes follow d2l's letters: N batch, T time steps, D input features,
H hidden units.

To run:

```bash
python lessons/stacking.py --data weather.pt                       # GRU(32) -> GRU(64), 0.1 / 0.5
python lessons/stacking.py --data weather.pt --hidden 32 32 32 --epochs 10
```

``weather.pt`` holds ``{"train": (x, y), "val": (x, y), "test": (x, y), "temp_std": float}``
(``lessons.datasets.weather_forecast`` builds it); without ``--data`` the command trains on a
synthetic series. The file imports only the standard library, torch, pytorch_lightning and
torchmetrics, so it can be copied into a project on its own.
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

__all__ = ["GRUCell", "GRULayer", "StackedGRU", "StackedForecaster", "StackedForecastSystem", "History",
           "KeepBest", "fit"]


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


class GRUCell(nn.Module):
    r"""One GRU step, gates fused in PyTorch's order r, z, n with its two biases.

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
        bound = 1.0 / math.sqrt(hidden_size)  # torch.nn.GRU's initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def recur(self, xp_t: torch.Tensor, h: torch.Tensor, h_read: torch.Tensor) -> torch.Tensor:
        """One step from ``xp_t = x_t W_xh + b_xh``; the gates read ``h_read``, the update keeps ``h``."""
        x_r, x_z, x_n = xp_t.chunk(3, dim=-1)  # 3 × (N, H)
        h_r, h_z, h_n = (h_read @ self.W_hh + self.b_hh).chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)  # reset gate
        z = torch.sigmoid(x_z + h_z)  # update gate
        n = torch.tanh(x_n + r * h_n)  # candidate hidden state
        return z * h + (1 - z) * n  # $$h_t = z_t \odot h_{t-1} + (1 - z_t) \odot n_t$$


def _mask(N: int, size: int, p: float, like: torch.Tensor) -> torch.Tensor:
    # one inverted-dropout mask per sequence: 0 or 1/(1-p)
    return torch.bernoulli(torch.full((N, size), 1.0 - p, dtype=like.dtype, device=like.device)) / (1.0 - p)


# --8<-- [start:layer]
class GRULayer(nn.Module):
    """One GRU layer that returns its whole output sequence (N, T, H) and h_T (N, H).

    ``dropout`` and ``recurrent_dropout`` draw one mask per sequence (training mode only), on the
    layer's input and on the state its gates read.
    """

    def __init__(self, input_size: int, hidden_size: int, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0) -> None:
        super().__init__()
        for name, p in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"expected 0 <= {name} < 1, got {p}")
        self.cell = GRUCell(input_size, hidden_size)
        self.dropout, self.recurrent_dropout = dropout, recurrent_dropout

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        D, H = self.cell.input_size, self.cell.hidden_size
        check_sequence(x, D)
        N = x.shape[0]
        if self.training and self.dropout:
            x = x * _mask(N, D, self.dropout, x).unsqueeze(1)  # (N, 1, D): the same at every step
        m_h = _mask(N, H, self.recurrent_dropout, x) if self.training and self.recurrent_dropout else None
        xp = x @ self.cell.W_xh + self.cell.b_xh  # (N, T, 3H), all steps in one product
        h = x.new_zeros(N, H)
        hs = []
        for xp_t in xp.transpose(0, 1).unbind(0):  # T tensors of (N, 3H)
            h = self.cell.recur(xp_t, h, h if m_h is None else h * m_h)  # (N, H)
            hs.append(h)
        return torch.stack(hs, dim=1), h  # (N, T, H): the whole sequence, for the next layer
# --8<-- [end:layer]


# --8<-- [start:stack]
class StackedGRU(nn.Module):
    """GRU layers on top of each other: layer l reads the output sequence of layer l - 1.

    Parameters
    ----------
    input_size : int
        D.
    hidden_sizes : sequence of int
        H of each layer, bottom first: ``(32, 64)`` is the notes' GRU(32) → GRU(64).
    dropout, recurrent_dropout : float
        The same rates for every layer (Keras's arguments of each layer).

    Examples
    --------
    >>> stack = StackedGRU(8, (32, 64))
    >>> hs, h_T = stack(torch.zeros(5, 40, 8))  # (N, T, D)
    >>> tuple(hs.shape), tuple(h_T.shape)       # the top layer's sequence and last state
    ((5, 40, 64), (5, 64))
    """

    def __init__(self, input_size: int, hidden_sizes=(32, 64), dropout: float = 0.0,
                 recurrent_dropout: float = 0.0) -> None:
        super().__init__()
        if not hidden_sizes:
            raise ValueError("expected at least one layer in hidden_sizes, got none")
        sizes = [input_size, *hidden_sizes]
        self.layers = nn.ModuleList(
            GRULayer(d, h, dropout, recurrent_dropout) for d, h in zip(sizes[:-1], sizes[1:])
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hs = x  # (N, T, D)
        for layer in self.layers:
            hs, h_T = layer(hs)  # (N, T, H_l): the next layer reads every step
        return hs, h_T  # (N, T, H_L), (N, H_L)
# --8<-- [end:stack]

    @classmethod
    def from_torch(cls, reference: nn.GRU) -> "StackedGRU":
        """A stack holding a copy of a ``torch.nn.GRU(num_layers=L, batch_first=True)``'s weights."""
        if reference.bidirectional or not reference.batch_first or not reference.bias:
            raise ValueError("expected a one-direction torch.nn.GRU with batch_first=True and biases")
        H = reference.hidden_size
        stack = cls(reference.input_size, (H,) * reference.num_layers).to(reference.weight_ih_l0)
        with torch.no_grad():
            for l, layer in enumerate(stack.layers):
                layer.cell.W_xh.copy_(getattr(reference, f"weight_ih_l{l}").T)
                layer.cell.W_hh.copy_(getattr(reference, f"weight_hh_l{l}").T)
                layer.cell.b_xh.copy_(getattr(reference, f"bias_ih_l{l}"))
                layer.cell.b_hh.copy_(getattr(reference, f"bias_hh_l{l}"))
        return stack


# --8<-- [start:system]
class StackedForecaster(nn.Module):
    """Many-to-one on top of a `StackedGRU`: the top layer's last state → one value."""

    def __init__(self, input_size: int, hidden_sizes=(32, 64), dropout: float = 0.0,
                 recurrent_dropout: float = 0.0) -> None:
        super().__init__()
        self.rnn = StackedGRU(input_size, hidden_sizes, dropout, recurrent_dropout)
        self.head = nn.Linear(hidden_sizes[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h_T = self.rnn(x)  # (N, H_L)
        return self.head(h_T)  # (N, 1)


class StackedForecastSystem(pl.LightningModule):
    """Trains a `StackedForecaster` with the L1 loss on normalised targets; logs MAE × ``target_std``."""

    def __init__(self, input_size: int = 8, hidden_sizes=(32, 64), dropout: float = 0.1,
                 recurrent_dropout: float = 0.5, target_std: float = 1.0, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = StackedForecaster(input_size, tuple(hidden_sizes), dropout, recurrent_dropout)
        self.metrics = nn.ModuleDict({f"{s}_mae": torchmetrics.MeanAbsoluteError() for s in ("train", "val", "test")})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # (N, 1)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        pred = self(x)
        loss = F.l1_loss(pred, y)
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
    """Every epoch's ``train_mae`` and ``val_mae`` in ``self.history``."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {"train_mae": [], "val_mae": []}

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and "val_mae" in trainer.callback_metrics:
            self.history["val_mae"].append(float(trainer.callback_metrics["val_mae"]))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.history["train_mae"].append(float(trainer.callback_metrics["train_mae"]))


class KeepBest(pl.Callback):
    """Keep the weights of the epoch with the lowest ``val_mae`` and restore them at the end."""

    def __init__(self) -> None:
        self.best, self.best_epoch, self.state = float("inf"), -1, None

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get("val_mae")
        if not trainer.sanity_checking and value is not None and float(value) < self.best:
            self.best, self.best_epoch = float(value), trainer.current_epoch
            self.state = copy.deepcopy(pl_module.state_dict())

    def on_train_end(self, trainer, pl_module) -> None:
        if self.state is not None:
            pl_module.load_state_dict(self.state)


def fit(system: pl.LightningModule, train, val=None, max_epochs: int = 20, progress: bool = False,
        accelerator: str = "cpu", callbacks: list[pl.Callback] | None = None) -> pl.Trainer:
    """Train ``system`` with deterministic algorithms and return the trainer (seed before building it)."""
    quiet = logging.getLogger("pytorch_lightning")
    level = quiet.level
    if not progress:
        quiet.setLevel(logging.WARNING)
    try:
        trainer = pl.Trainer(max_epochs=max_epochs, accelerator=accelerator, devices=1, deterministic=True,
                             logger=False, enable_checkpointing=False, enable_model_summary=progress,
                             enable_progress_bar=progress, num_sanity_val_steps=0, callbacks=callbacks)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            trainer.fit(system, train, val)
    finally:
        quiet.setLevel(level)
    return trainer


def _synthetic(N: int = 1024, T: int = 40) -> dict:
    """A noisy cycle, D = 1: the command line's fallback when no data file is given."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(N + T + 8).float()
    series = torch.sin(2 * math.pi * t / 8) + 0.3 * torch.randn(len(t), generator=g)
    x = torch.stack([series[i:i + T] for i in range(N)]).unsqueeze(-1)  # (N, T, 1)
    y = series[T + 7:T + 7 + N].unsqueeze(-1)  # (N, 1)
    a, b = int(0.6 * N), int(0.8 * N)
    return {"train": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "test": (x[b:], y[b:]), "temp_std": 1.0}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train a stacked GRU forecaster.")
    parser.add_argument("--data", help="a torch.save'd dict with train/val/test (x, y) pairs and temp_std")
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 64], help="H of each layer, bottom first")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--recurrent-dropout", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accelerator", default="cpu", help="cpu, gpu or auto")
    parser.add_argument("--no-progress", action="store_true", help="hide Lightning's progress bar")
    args = parser.parse_args(argv)
    data = torch.load(args.data) if args.data else _synthetic()
    loader = lambda part, shuffle: torch.utils.data.DataLoader(  # noqa: E731
        torch.utils.data.TensorDataset(*data[part]), batch_size=args.batch_size, shuffle=shuffle)
    pl.seed_everything(args.seed, verbose=False)
    system = StackedForecastSystem(data["train"][0].shape[-1], tuple(args.hidden), args.dropout,
                                   args.recurrent_dropout, target_std=data["temp_std"])
    best = KeepBest()
    trainer = fit(system, loader("train", True), loader("val", False), args.epochs,
                  progress=not args.no_progress, accelerator=args.accelerator, callbacks=[best])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        test = trainer.test(system, loader("test", False), verbose=False)[0]["test_mae"]
    print(f"best epoch {best.best_epoch + 1}: val MAE {best.best:.3f}, test MAE {test:.3f}")


if __name__ == "__main__":
    main()
