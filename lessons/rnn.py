r"""Vanilla recurrent neural network (RNN), written from its equation.

A recurrent layer reads a sequence one time step at a time and carries a hidden state from
step to step; unrolled in time, every step is the *same* layer with the same weights.
With row vectors, as in the course notes' shape rule (1, D)(D, H) = (1, H):

$$
h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b), \qquad h_0 = 0, \qquad y_t = h_t W_{hy} + c
$$

Shapes follow d2l's letters: N batch, T time steps, D input features, H hidden units,
C outputs (classes or regression targets). ``x`` is batch-first, (N, T, D).

Contents: `RNNCell` (one step), `RNN` (the cell unrolled over T, with the input projection of
all steps done in one matrix product), the heads `ManyToOne` and `ManyToMany`, the training
system `RNNSystem`, the `fit` helper and greedy `generate`.

To run:

```bash
python lessons/rnn.py                          # char model, "hell" -> "hello"
python lessons/rnn.py --task sequence          # windows of 4 values -> the next value
python lessons/rnn.py --task hello --accelerator gpu --epochs 300
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

__all__ = ["RNNCell", "RNN", "ManyToOne", "ManyToMany", "RNNSystem", "LossHistory", "fit", "generate"]


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
        raise ValueError(
            f"expected {name} to be a floating-point tensor of shape (N, T, D) = (*, *, {input_size}), "
            f"got dtype {x.dtype} (one-hot encode or embed integer tokens first)"
        )


def _check_state(h: torch.Tensor, batch_size: int, hidden_size: int, like: torch.Tensor, name: str) -> None:
    if tuple(h.shape) != (batch_size, hidden_size):
        raise ValueError(f"expected {name} of shape (N, H) = ({batch_size}, {hidden_size}), got {tuple(h.shape)}")
    if h.dtype != like.dtype:
        raise ValueError(f"expected {name} with dtype {like.dtype} like the input, got {h.dtype}")


# --8<-- [start:cell]
class RNNCell(nn.Module):
    r"""One step of a vanilla RNN: $h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b)$.

    Parameters
    ----------
    input_size : int
        D, the number of features of one input vector ``x_t``.
    hidden_size : int
        H, the number of hidden units.

    Examples
    --------
    >>> cell = RNNCell(input_size=4, hidden_size=3)
    >>> h = cell(torch.zeros(2, 4), torch.zeros(2, 3))  # (N, D), (N, H)
    >>> tuple(h.shape)
    (2, 3)
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_xh = nn.Parameter(torch.empty(input_size, hidden_size))  # (D, H)
        self.W_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))  # (H, H)
        self.b = nn.Parameter(torch.empty(hidden_size))  # (H,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same scale as torch.nn.RNN: U(-1/sqrt(H), 1/sqrt(H)) keeps tanh out of saturation at start.
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        return self.recur(x_t @ self.W_xh + self.b, h_prev)  # (N, H)

    def recur(self, xp_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        """The part of a step that depends on the previous state; ``xp_t = x_t W_xh + b``."""
        return torch.tanh(xp_t + h_prev @ self.W_hh)  # (N, H)
# --8<-- [end:cell]


# --8<-- [start:layer]
class RNN(nn.Module):
    """The cell unrolled over time: (N, T, D) → (N, T, H), plus the last state h_T of shape (N, H).

    Every time step uses the *same* `RNNCell` (shared weights). The input projection
    ``x W_xh + b`` does not depend on the state, so it is computed for all T steps in one
    matrix product before the loop; only ``h_{t-1} W_hh`` stays inside it.

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
        N, T, _ = x.shape
        if T == 0:
            raise ValueError("expected x of shape (N, T, D) with at least one time step (T >= 1), got T = 0")
        h = x.new_zeros(N, H) if h0 is None else h0
        _check_state(h, N, H, x, "h0")
        xp = x @ self.cell.W_xh + self.cell.b  # (N, T, H), all steps in one product
        hs = []
        # unbind on the time-major view: indexing xp[:, t] in the loop would make backward O(T^2)
        for xp_t in xp.transpose(0, 1).unbind(0):  # T tensors of (N, H)
            h = self.cell.recur(xp_t, h)  # (N, H)
            hs.append(h)
        return torch.stack(hs, dim=1), h  # (N, T, H), (N, H)
# --8<-- [end:layer]

    @classmethod
    def from_torch(cls, reference: nn.RNN) -> "RNN":
        """Build an `RNN` holding a copy of a one-layer ``torch.nn.RNN``'s weights.

        PyTorch stores ``weight_ih`` as (H, D) and two biases; this lesson uses the row-vector
        form, so ``W_xh = weight_ih.T``, ``W_hh = weight_hh.T`` and ``b = b_ih + b_hh``.
        """
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


# --8<-- [start:heads]
class ManyToOne(nn.Module):
    """Read the whole sequence, answer once from the last state: (N, T, D) → (N, C).

    Used for sentiment analysis or, as in the notes' toy, predicting the next value of a series.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.rnn = RNN(input_size, hidden_size)
        self.head = nn.Linear(hidden_size, output_size)  # W_hy, c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h_T = self.rnn(x)  # (N, H)
        return self.head(h_T)  # (N, C)


class ManyToMany(nn.Module):
    """Answer at every step from that step's state: (N, T, D) → (N, T, C).

    Used for part-of-speech tagging or next-character prediction.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.rnn = RNN(input_size, hidden_size)
        self.head = nn.Linear(hidden_size, output_size)  # the same W_hy at every step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hs, _ = self.rnn(x)  # (N, T, H)
        return self.head(hs)  # (N, T, C)
# --8<-- [end:heads]


HEADS = {"many_to_one": ManyToOne, "many_to_many": ManyToMany}


# --8<-- [start:system]
class RNNSystem(pl.LightningModule):
    """Trains a `ManyToOne` or `ManyToMany` RNN with Lightning.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        D, H and C.
    head : {"many_to_one", "many_to_many"}
        Answer once per sequence or once per step.
    task : {"classification", "regression"}
        Cross-entropy with accuracy, or mean squared error with mean absolute error.
    lr : float
        Adam's learning rate.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        head: str = "many_to_many",
        task: str = "classification",
        lr: float = 0.01,
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"expected head to be one of {sorted(HEADS)}, got {head!r}")
        if task not in ("classification", "regression"):
            raise ValueError(f"expected task 'classification' or 'regression', got {task!r}")
        self.save_hyperparameters()
        self.model = HEADS[head](input_size, hidden_size, output_size)
        if task == "classification":
            metric = lambda: torchmetrics.Accuracy(task="multiclass", num_classes=output_size)  # noqa: E731
        else:
            metric = torchmetrics.MeanAbsoluteError
        # one metric object per stage: train and validation states must not mix
        self.metrics = nn.ModuleDict({f"{stage}_metric": metric() for stage in ("train", "val", "test")})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # (N, C) or (N, T, C)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        out = self(x)
        if self.hparams.task == "classification":
            logits = out.reshape(-1, out.shape[-1])  # (N*T, C) or (N, C)
            target = y.reshape(-1)  # (N*T,) or (N,)
            loss = F.cross_entropy(logits, target)
            self.metrics[f"{stage}_metric"](logits, target)
            name = "acc"
        else:
            loss = F.mse_loss(out, y.view_as(out))
            self.metrics[f"{stage}_metric"](out, y.view_as(out))
            name = "mae"
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
    """Keep every epoch's logged metrics (e.g. ``train_loss``) in ``self.history`` for plotting."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for key, value in trainer.callback_metrics.items():
            self.history.setdefault(key, []).append(float(value))


# --8<-- [start:fit]
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

    Seed *before* building the system (``pl.seed_everything(0)``): the initial weights come from
    the random state at construction time, and the same seed then gives the same result run to run.
    ``progress=True`` shows Lightning's progress bar (the command line uses it); pages and tests
    keep it off because it writes to standard output.
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
            log_every_n_steps=1,
            callbacks=callbacks,
        )
        with warnings.catch_warnings():
            # in-memory tensors need no worker processes; Lightning's hint about them is noise here
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            # training without validation data is a choice of the caller, not a mistake
            warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`.*")
            # torch 2.13 deprecates a pytree class that Lightning 2.6.6 still checks for
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            trainer.fit(system, train, val)
    finally:
        quiet.setLevel(level)
    return trainer
# --8<-- [end:fit]


@torch.no_grad()
def generate(model: nn.Module, prefix: list[int], steps: int, vocab_size: int) -> list[int]:
    """Greedy generation with a next-token `ManyToMany` model on one-hot inputs.

    Each new token is the argmax at the last step; the whole prefix is re-read every time,
    which is O(T^2) but keeps the model's interface to plain (N, T, D) sequences.
    """
    if not prefix:
        raise ValueError("expected a non-empty prefix of token ids to start generating from")
    device = next(model.parameters()).device
    ids = list(prefix)
    for _ in range(steps):
        x = F.one_hot(torch.tensor([ids], device=device), vocab_size).float()  # (1, t, V)
        ids.append(int(model(x)[0, -1].argmax()))
    return ids


def _hello_demo(args: argparse.Namespace) -> None:
    text = "hello"
    chars = list(dict.fromkeys(text))  # h, e, l, o
    ids = torch.tensor([chars.index(c) for c in text])
    x = F.one_hot(ids[:-1], len(chars)).float().unsqueeze(0)  # (1, 4, 4)
    y = ids[1:].unsqueeze(0)  # (1, 4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=1)
    pl.seed_everything(args.seed)
    system = RNNSystem(len(chars), args.hidden, len(chars), head="many_to_many", lr=0.05)
    fit(system, loader, max_epochs=args.epochs, progress=True, accelerator=args.accelerator)
    with torch.no_grad():
        pred = system(x.to(system.device)).argmax(-1)[0].tolist()
    print("input 'hell' -> predicted next characters", repr("".join(chars[i] for i in pred)))
    generated = generate(system.model, [chars.index("h")], steps=4, vocab_size=len(chars))
    print("generated from 'h':", "".join(chars[i] for i in generated))


def _sequence_demo(args: argparse.Namespace) -> None:
    i = torch.arange(6, dtype=torch.float32).unsqueeze(1)  # (6, 1)
    x = ((i + torch.arange(4)) / 10).unsqueeze(-1)  # (6, 4, 1)
    y = (i + 4) / 10  # (6, 1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=6)
    pl.seed_everything(args.seed)
    system = RNNSystem(1, args.hidden, 1, head="many_to_one", task="regression", lr=0.01)
    fit(system, loader, max_epochs=args.epochs, progress=True, accelerator=args.accelerator)
    probe = torch.tensor([[0.6, 0.7, 0.8, 0.9], [-0.1, 0.0, 0.1, 0.2]]).unsqueeze(-1)  # (2, 4, 1)
    with torch.no_grad():
        pred = system(probe.to(system.device)).squeeze(-1).tolist()
    print(f"[0.6 0.7 0.8 0.9] -> {pred[0]:.3f} (target 1.0)")
    print(f"[-0.1 0.0 0.1 0.2] -> {pred[1]:.3f} (target 0.3)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the vanilla RNN lesson's toy models.")
    parser.add_argument("--task", choices=["hello", "sequence"], default="hello")
    parser.add_argument("--hidden", type=int, default=8, help="H, the number of hidden units")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accelerator", default="cpu", help="cpu, gpu or auto")
    args = parser.parse_args(argv)
    (_hello_demo if args.task == "hello" else _sequence_demo)(args)


if __name__ == "__main__":
    main()
