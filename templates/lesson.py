r"""One line that says what the lesson builds (here: a vanilla RNN that classifies toy sequences).

Template note (delete this paragraph): copy this file to `lessons/<name>.py`, then replace
`topic` with the lesson name and `Topic` with its class prefix (CONTRIBUTING.md shows the
commands). The example content, a vanilla RNN that tells whether a sequence of +1/-1 values sums
to more than zero, only makes the skeleton run and its test pass; replace it with the lesson's
model and keep the shape of the file: docstring, model (`nn.Module`) from the equations, training
system (`LightningModule`), `__main__`.

The equations, with the symbols of the page (row vectors, so $x_t W_{xh}$ is $(N, D)(D, H) = (N, H)$):

$$
h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b_h), \qquad h_0 = 0, \qquad \hat{y} = h_T W_{hq} + b_q
$$

Shapes use d2l's letters: N batch, T time steps, D input features, H hidden units, C classes.
`x` is batch-first, (N, T, D). Layers follow torch.nn's interface (CONTRIBUTING: "drop-in layers");
the system receives its model; Lightning does the training (no home-made fit, history or checkpoints).

To run:
    python lessons/topic.py fit                    # train on CPU with a progress bar
    python lessons/topic.py fit --help             # every model, data and trainer option
    python lessons/topic.py fit --trainer.accelerator gpu --trainer.devices 2 --trainer.strategy ddp

The file imports only the standard library, torch, pytorch_lightning and torchmetrics, so it
can be copied into a project on its own.
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["TopicCell", "TopicModel", "TopicClassifier", "make_data", "TopicData"]


# --8<-- [start:cell]
class TopicCell(nn.Module):
    r"""One time step: $h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b_h)$.

    Parameters
    ----------
    input_size : int
        D, the number of features of one input vector `x_t`.
    hidden_size : int
        H, the number of hidden units.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_xh = nn.Parameter(torch.empty(input_size, hidden_size))  # (D, H)
        self.W_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))  # (H, H)
        self.b_h = nn.Parameter(torch.empty(hidden_size))  # (H,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in $\\pm 1/\\sqrt{H}$, like `torch.nn.RNN`."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        """Next hidden state (N, H) from the input `x_t` (N, D) and the previous state (N, H)."""
        # $$h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b_h)$$
        return torch.tanh(x_t @ self.W_xh + h_prev @ self.W_hh + self.b_h)  # (N, H)
# --8<-- [end:cell]


# --8<-- [start:model]
class TopicModel(nn.Module):
    """Many-to-one model: read the whole sequence, classify it from the last hidden state.

    Parameters
    ----------
    input_size : int
        D, input features per time step.
    hidden_size : int
        H, hidden units.
    num_classes : int
        C, output classes.
    """

    def __init__(self, input_size: int, hidden_size: int, num_classes: int) -> None:
        super().__init__()
        self.cell = TopicCell(input_size, hidden_size)
        self.head = nn.Linear(hidden_size, num_classes)  # W_hq: (H, C), b_q: (C,)

    def hidden_states(self, x: torch.Tensor) -> torch.Tensor:
        """All hidden states (N, T, H) of a batch `x` of shape (N, T, D), starting from $h_0 = 0$."""
        if x.dim() != 3 or x.shape[-1] != self.cell.input_size:
            raise ValueError(f"expected x of shape (N, T, D) = (*, *, {self.cell.input_size}), got {tuple(x.shape)}")
        h = x.new_zeros(x.shape[0], self.cell.hidden_size)  # (N, H)
        hs = []
        for x_t in x.unbind(dim=1):  # T tensors of (N, D); unbind once, not x[:, t] in the loop
            h = self.cell(x_t, h)  # (N, H)
            hs.append(h)
        return torch.stack(hs, dim=1)  # (N, T, H)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (N, C) for a batch `x` of shape (N, T, D)."""
        # $$\hat{y} = h_T W_{hq} + b_q$$
        return self.head(self.hidden_states(x)[:, -1])  # (N, C)
# --8<-- [end:model]


# --8<-- [start:system]
class TopicClassifier(pl.LightningModule):
    """Training system: cross-entropy loss, accuracy per stage, for any model that maps (N, T, D) to (N, C).

    Parameters
    ----------
    model : nn.Module
        The model to train, e.g. `TopicModel` (received, never built here: any model fits).
    num_classes : int
        C, for the accuracy metric.
    lr : float
        Learning rate of Adam.
    """

    def __init__(self, model: nn.Module, num_classes: int = 2, lr: float = 0.02) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        # One metric object per stage, so their states never mix.
        self.metrics = nn.ModuleDict(
            {f"{stage}_acc": torchmetrics.Accuracy(task="multiclass", num_classes=num_classes) for stage in ("train", "val", "test")}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # (N, C)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch  # (N, T, D), (N,)
        logits = self(x)  # (N, C)
        loss = F.cross_entropy(logits, y)
        self.metrics[f"{stage}_acc"](logits, y)
        # Epoch means in every stage (and over all processes under DDP), so train_loss compares with val_loss.
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log(f"{stage}_acc", self.metrics[f"{stage}_acc"], on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x).argmax(-1)  # (N,) predicted classes

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
# --8<-- [end:system]


def make_data(num_sequences: int = 768, num_steps: int = 9, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Toy many-to-one data: `x` (N, T, 1) of +1/-1 values, `y` (N,) is 1 when they sum to more than 0.

    T is odd by default, so the sum is never 0 and both classes are about equally frequent.
    Generated from `seed` alone: no download, same data on every machine.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (num_sequences, num_steps, 1), generator=g).float() * 2 - 1  # (N, T, 1)
    y = (x.sum(dim=(1, 2)) > 0).long()  # (N,)
    return x, y


class TopicData(pl.LightningDataModule):
    """`make_data` split 4:1:1 into train, validation and test."""

    def __init__(self, batch_size: int = 64, seed: int = 0) -> None:
        super().__init__()
        x, y = make_data(seed=seed)
        n = len(x) // 6
        self.splits = {"train": (x[2 * n :], y[2 * n :]), "val": (x[:n], y[:n]), "test": (x[n : 2 * n], y[n : 2 * n])}
        self.batch_size = batch_size

    def _loader(self, split: str) -> DataLoader:
        return DataLoader(TensorDataset(*self.splits[split]), batch_size=self.batch_size, shuffle=split == "train")

    def train_dataloader(self):
        return self._loader("train")

    def val_dataloader(self):
        return self._loader("val")

    def test_dataloader(self):
        return self._loader("test")

    def predict_dataloader(self):
        return self._loader("test")


def main(args: list[str] | None = None) -> None:
    """`LightningCLI` over `TopicClassifier` and `TopicData`; `--help` lists every option."""
    from pytorch_lightning.cli import LightningCLI

    model = {"class_path": f"{__name__}.TopicModel", "init_args": {"input_size": 1, "hidden_size": 16, "num_classes": 2}}

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model.model": model, "trainer.max_epochs": 20})

        def instantiate_classes(self):  # keep the model's class path: load_from_checkpoint rebuilds it
            super().instantiate_classes()
            self.model.hparams["model"] = self.config_dump["model"]["model"]

    CLI(TopicClassifier, TopicData, seed_everything_default=0, args=args)


if __name__ == "__main__":  # run the importable module's main: the classes a checkpoint names must import again
    import importlib, pathlib  # noqa: E401
    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
