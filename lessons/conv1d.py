r"""1D convolution over time: a window of k steps slides along the sequence and applies the same weights everywhere.

With the RNN lessons' layout, an input $x$ of shape (N, T, D) (channels last), a kernel
$W \in \mathbb{R}^{C \times D \times k}$ (C output channels, torch's layout), stride $s$, zero
padding $p$ and dilation $d$, output step $t$ and channel $o$ are

$$
y_{t,o} = b_o + \sum_{i=0}^{k-1} \sum_{c=1}^{D} x_{st + di - p,\; c}\, W_{o,c,i},
\qquad
T_{\text{out}} = \left\lfloor \frac{T + 2p - d(k-1) - 1}{s} \right\rfloor + 1 .
$$

Max pooling of size $m$ keeps the largest value of each block of $m$ steps,
$y_{t,c} = \max_{0 \le i < m} x_{mt+i,\,c}$, and global max pooling the largest over all steps,
$g_c = \max_t y_{t,c}$. Because the same $W$ reads every window, a pattern shifted in time gives the
same values shifted in time, and the global maximum does not move at all (translation invariance).
After $L$ layers with kernels $k_l$, dilations $d_l$ and strides $s_l$ (pooling counts as a layer
with $k = s = m$), one output step sees

$$
r_L = 1 + \sum_{l=1}^{L} (k_l - 1)\, d_l \prod_{j<l} s_j
$$

input steps (its receptive field).

Contents: `Conv1D` (the layer from the equation, equal to ``torch.nn.Conv1d``), `MaxPool1D`,
`conv1d_output_length`, `receptive_field`; the forecasting models `ConvForecaster` and
`HybridForecaster` (convolution front end + LSTM), the text models `ConvClassifier`,
`HybridClassifier` (the notes' movie-review model) and `LSTMClassifier`; the training systems
`ForecastSystem` and `TextSystem`, the callbacks `History` and `KeepBest`, and `fit`.
Shapes follow d2l's letters: N batch, T time steps, D input features, C channels, H hidden units,
V vocabulary.

To run:

```bash
python lessons/conv1d.py --model hybrid --data weather.pt      # forecasting: conv, hybrid or lstm
python lessons/conv1d.py --model hybrid --data reviews.pt      # text: x holds word ids (N, T)
python lessons/conv1d.py --model conv --epochs 5               # a synthetic series, no file needed
```

A data file holds ``{"train": (x, y), "val": (x, y), "test": (x, y)}`` plus ``"temp_std"`` for
forecasting (``lessons.datasets.weather_forecast`` builds it) or ``"num_classes"`` for text
(``lessons.datasets.load_imdb`` and ``pad_sequences``, or ``load_bbc_news``). The file imports only
the standard library, torch, pytorch_lightning and torchmetrics, so it can be copied into a project
on its own.
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

__all__ = ["Conv1D", "MaxPool1D", "conv1d_output_length", "receptive_field", "ConvForecaster",
           "HybridForecaster", "ConvClassifier", "HybridClassifier", "LSTMClassifier", "ForecastSystem",
           "TextSystem", "History", "KeepBest", "fit"]


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


def check_tokens(tokens: torch.Tensor, vocab_size: int) -> None:
    """Raise a ``ValueError`` unless ``tokens`` holds word ids of shape (N, T) below ``vocab_size``."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.is_floating_point():
        got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"expected word ids of shape (N, T) and an integer dtype, got {got}")
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(f"expected word ids in [0, {vocab_size}), got values in "
                         f"[{int(tokens.min())}, {int(tokens.max())}]")


# --8<-- [start:length]
def conv1d_output_length(T: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """$T_{out} = \\lfloor (T + 2p - d(k-1) - 1) / s \\rfloor + 1$: the number of whole windows.

    >>> conv1d_output_length(100, kernel_size=5)        # the notes' Conv1D(64, 5), padding='valid'
    96
    >>> conv1d_output_length(100, 5, stride=2, padding=2, dilation=1)
    50
    """
    span = dilation * (kernel_size - 1) + 1  # steps one window covers, holes included
    return (T + 2 * padding - span) // stride + 1
# --8<-- [end:length]


# --8<-- [start:conv]
class Conv1D(nn.Module):
    """A 1D convolution over time on (N, T, D) inputs, written from its definition.

    Every output step reads one window of ``kernel_size`` steps (``dilation - 1`` steps skipped
    between taps); the windows are cut with ``unfold`` and all of them go through one matrix product.
    ``padding`` is a number of zero steps on both ends, or ``"causal"``: ``dilation * (kernel_size - 1)``
    zero steps at the front only, so that output step t reads no input after t.

    Examples
    --------
    >>> conv = Conv1D(in_channels=8, out_channels=64, kernel_size=5)
    >>> tuple(conv(torch.zeros(32, 100, 8)).shape)       # (N, T, D) → (N, T_out, C)
    (32, 96, 64)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | str = 0, dilation: int = 1, bias: bool = True) -> None:
        super().__init__()
        for name, value, low in (("kernel_size", kernel_size, 1), ("stride", stride, 1), ("dilation", dilation, 1)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"expected an integer {name} >= {low}, got {value!r}")
        if padding != "causal" and (not isinstance(padding, int) or padding < 0):
            raise ValueError(f"expected padding to be an integer >= 0 or 'causal', got {padding!r}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.W = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size))  # (C, D, k): torch's layout
        self.b = nn.Parameter(torch.empty(out_channels)) if bias else None  # (C,)
        bound = 1.0 / math.sqrt(in_channels * kernel_size)  # torch.nn.Conv1d's initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence(x, self.in_channels)
        k, s, d = self.kernel_size, self.stride, self.dilation
        span = d * (k - 1) + 1
        front, back = (span - 1, 0) if self.padding == "causal" else (self.padding, self.padding)
        if x.shape[1] + front + back < span:
            raise ValueError(f"expected at least {span - front - back} time steps for kernel_size={k}, "
                             f"dilation={d}, padding={self.padding!r}, got T = {x.shape[1]}")
        x = F.pad(x, (0, 0, front, back))  # zero steps on the time axis: (N, T + front + back, D)
        windows = x.unfold(1, span, s)[..., ::d]  # (N, T_out, D, k): tap i of window t is x[s t + d i]
        y = windows.flatten(2) @ self.W.flatten(1).T  # (N, T_out, D k) @ (D k, C) → (N, T_out, C)
        return y if self.b is None else y + self.b
# --8<-- [end:conv]

    @classmethod
    def from_torch(cls, reference: nn.Conv1d) -> "Conv1D":
        """A layer holding a copy of a ``torch.nn.Conv1d``'s weights (zero padding, one group)."""
        if reference.groups != 1 or reference.padding_mode != "zeros" or isinstance(reference.padding, str):
            raise ValueError("expected a torch.nn.Conv1d with groups=1, padding_mode='zeros' and an integer padding")
        layer = cls(reference.in_channels, reference.out_channels, reference.kernel_size[0], reference.stride[0],
                    reference.padding[0], reference.dilation[0], bias=reference.bias is not None)
        layer = layer.to(reference.weight)
        with torch.no_grad():
            layer.W.copy_(reference.weight)
            if reference.bias is not None:
                layer.b.copy_(reference.bias)
        return layer


# --8<-- [start:pool]
class MaxPool1D(nn.Module):
    """Max pooling over time, Keras' ``MaxPooling1D(pool_size)``: blocks of ``pool_size`` steps,
    no overlap, a last incomplete block dropped; (N, T, C) → (N, T // pool_size, C)."""

    def __init__(self, pool_size: int) -> None:
        super().__init__()
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"expected an integer pool_size >= 1, got {pool_size!r}")
        self.pool_size = pool_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected x of shape (N, T, C), got {got}")
        if x.shape[1] < self.pool_size:
            raise ValueError(f"expected at least pool_size = {self.pool_size} time steps, got T = {x.shape[1]}")
        return x.unfold(1, self.pool_size, self.pool_size).amax(-1)  # (N, T // m, C)
# --8<-- [end:pool]


# --8<-- [start:receptive]
def receptive_field(layers: list[tuple[int, int, int]]) -> int:
    """Input steps one output step of a stack sees; ``layers`` lists (kernel_size, stride, dilation).

    A pooling layer of size m is (m, m, 1). Each layer widens the field by (k - 1) d steps of its
    input, and a step of its input is ``jump`` input steps apart (the product of the strides below).

    >>> receptive_field([(5, 1, 1)])                         # one Conv1D(64, 5)
    5
    >>> receptive_field([(5, 1, 1), (4, 4, 1), (5, 1, 1)])   # conv, MaxPool1D(4), conv
    24
    >>> receptive_field([(2, 1, 2 ** l) for l in range(8)])  # WaveNet-style dilations 1, 2, ..., 128
    256
    """
    field, jump = 1, 1
    for kernel_size, stride, dilation in layers:
        field += (kernel_size - 1) * dilation * jump
        jump *= stride
    return field
# --8<-- [end:receptive]


# --8<-- [start:forecasters]
class ConvForecaster(nn.Module):
    """Conv1D + ReLU + MaxPool1D blocks, a last Conv1D, global max pooling and one output.

    The global maximum forgets *when* a feature fired: the model cannot weigh the last hours
    more than the first ones.
    """

    def __init__(self, input_size: int, channels: int = 32, kernel_size: int = 5, pool_size: int = 2,
                 blocks: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(blocks):
            layers += [Conv1D(input_size if i == 0 else channels, channels, kernel_size), nn.ReLU(),
                       MaxPool1D(pool_size)]
        self.features = nn.Sequential(*layers, Conv1D(channels if blocks else input_size, channels, kernel_size),
                                      nn.ReLU())
        self.head = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.features(x)  # (N, T', C)
        return self.head(y.amax(dim=1))  # global max pooling (N, C) → (N, 1)


class HybridForecaster(nn.Module):
    """Conv1D + ReLU + MaxPool1D shorten the sequence; an LSTM reads what is left, in order."""

    def __init__(self, input_size: int, channels: int = 32, kernel_size: int = 5, pool_size: int = 2,
                 hidden_size: int = 32) -> None:
        super().__init__()
        self.front = nn.Sequential(Conv1D(input_size, channels, kernel_size), nn.ReLU(), MaxPool1D(pool_size))
        self.lstm = nn.LSTM(channels, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.front(x)  # (N, (T - k + 1) // m, C): a shorter sequence of local features
        _, (h_T, _) = self.lstm(z)  # (1, N, H)
        return self.head(h_T[-1])  # (N, 1)
# --8<-- [end:forecasters]


class LSTMForecaster(nn.Module):
    """The plain LSTM(H) → one output, for comparison."""

    def __init__(self, input_size: int, hidden_size: int = 32) -> None:
        super().__init__()
        self.input_size = input_size
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence(x, self.input_size)
        _, (h_T, _) = self.lstm(x)
        return self.head(h_T[-1])  # (N, 1)


# --8<-- [start:classifiers]
class HybridClassifier(nn.Module):
    """The notes' movie-review model: Embedding(5000, 100), Dropout(0.5), Conv1D(64, 5) + ReLU,
    MaxPooling1D(4), LSTM(55), Dense(1) (a logit: the sigmoid lives in the loss).

    Examples
    --------
    >>> model = HybridClassifier()
    >>> tokens = torch.randint(0, 5000, (8, 100))          # (N, T) word ids
    >>> tuple(model.front(model.embed(tokens)).shape)      # T: 100 → 96 (conv) → 24 (pool)
    (8, 24, 64)
    >>> tuple(model(tokens).shape)
    (8, 1)
    """

    def __init__(self, vocab_size: int = 5000, embed_size: int = 100, dropout: float = 0.5, channels: int = 64,
                 kernel_size: int = 5, pool_size: int = 4, hidden_size: int = 55, num_classes: int = 1) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Sequential(nn.Embedding(vocab_size, embed_size, padding_idx=0), nn.Dropout(dropout))
        self.front = nn.Sequential(Conv1D(embed_size, channels, kernel_size), nn.ReLU(), MaxPool1D(pool_size))
        self.lstm = nn.LSTM(channels, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        check_tokens(tokens, self.vocab_size)
        z = self.front(self.embed(tokens))  # (N, T', C), T' = (T - k + 1) // m
        _, (h_T, _) = self.lstm(z)  # (1, N, H)
        return self.head(h_T[-1])  # (N, num_classes)


class ConvClassifier(nn.Module):
    """Embedding, Dropout, Conv1D + ReLU and global max pooling: "does this pattern occur anywhere?"."""

    def __init__(self, vocab_size: int = 5000, embed_size: int = 100, dropout: float = 0.5, channels: int = 64,
                 kernel_size: int = 5, num_classes: int = 1) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Sequential(nn.Embedding(vocab_size, embed_size, padding_idx=0), nn.Dropout(dropout))
        self.conv = Conv1D(embed_size, channels, kernel_size)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        check_tokens(tokens, self.vocab_size)
        y = F.relu(self.conv(self.embed(tokens)))  # (N, T - k + 1, C)
        return self.head(y.amax(dim=1))  # (N, num_classes)
# --8<-- [end:classifiers]


class LSTMClassifier(nn.Module):
    """Embedding, Dropout and LSTM(H) over the whole sequence, for comparison with the hybrid."""

    def __init__(self, vocab_size: int = 5000, embed_size: int = 100, dropout: float = 0.5, hidden_size: int = 55,
                 num_classes: int = 1) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Sequential(nn.Embedding(vocab_size, embed_size, padding_idx=0), nn.Dropout(dropout))
        self.lstm = nn.LSTM(embed_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        check_tokens(tokens, self.vocab_size)
        _, (h_T, _) = self.lstm(self.embed(tokens))  # all T steps
        return self.head(h_T[-1])  # (N, num_classes)


FORECASTERS = {"conv": ConvForecaster, "hybrid": HybridForecaster, "lstm": LSTMForecaster}
CLASSIFIERS = {"conv": ConvClassifier, "hybrid": HybridClassifier, "lstm": LSTMClassifier}


def _build(table: dict, kind: str, **kwargs) -> nn.Module:
    if kind not in table:
        raise ValueError(f"expected model to be one of {sorted(table)}, got {kind!r}")
    return table[kind](**kwargs)


# --8<-- [start:system]
class ForecastSystem(pl.LightningModule):
    """Trains a forecaster (``"conv"``, ``"hybrid"`` or ``"lstm"``) with the L1 loss on normalised
    targets; logs the MAE in the target's units (× ``target_std``)."""

    def __init__(self, model: str = "hybrid", input_size: int = 8, target_std: float = 1.0, lr: float = 1e-3,
                 **model_kwargs) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = _build(FORECASTERS, model, input_size=input_size, **model_kwargs)
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


class TextSystem(pl.LightningModule):
    """Trains a text classifier; one class means a sigmoid output (binary cross-entropy, as the
    notes' Dense(1) + sigmoid), more mean softmax (cross-entropy)."""

    def __init__(self, model: str = "hybrid", vocab_size: int = 5000, num_classes: int = 1, lr: float = 1e-3,
                 **model_kwargs) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = _build(CLASSIFIERS, model, vocab_size=vocab_size, num_classes=num_classes, **model_kwargs)
        task = {"task": "binary"} if num_classes == 1 else {"task": "multiclass", "num_classes": num_classes}
        self.metrics = nn.ModuleDict({f"{s}_acc": torchmetrics.Accuracy(**task) for s in ("train", "val", "test")})

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model(tokens)  # (N, num_classes): logits

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        tokens, labels = batch
        logits = self(tokens)
        if self.hparams.num_classes == 1:
            logits = logits.squeeze(-1)  # (N,)
            loss = F.binary_cross_entropy_with_logits(logits, labels.float())
        else:
            loss = F.cross_entropy(logits, labels)
        self.metrics[f"{stage}_acc"](logits, labels)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True)
        self.log(f"{stage}_acc", self.metrics[f"{stage}_acc"], prog_bar=True, on_step=False, on_epoch=True)
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
    """Every epoch's value of the logged metrics ``train_<name>`` and ``val_<name>``."""

    def __init__(self, name: str = "mae") -> None:
        self.name = name
        self.history: dict[str, list[float]] = {f"train_{name}": [], f"val_{name}": []}

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        key = f"val_{self.name}"
        if not trainer.sanity_checking and key in trainer.callback_metrics:
            self.history[key].append(float(trainer.callback_metrics[key]))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.history[f"train_{self.name}"].append(float(trainer.callback_metrics[f"train_{self.name}"]))


class KeepBest(pl.Callback):
    """Keep the weights of the best validation epoch (``mode`` "min" or "max") and restore them."""

    def __init__(self, monitor: str = "val_mae", mode: str = "min") -> None:
        self.monitor, self.sign = monitor, 1.0 if mode == "min" else -1.0
        self.best, self.best_epoch, self.state = float("inf") * self.sign, -1, None

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if not trainer.sanity_checking and value is not None and self.sign * float(value) < self.sign * self.best:
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
    parser = argparse.ArgumentParser(description="Train a Conv1D, CNN + LSTM or LSTM model on sequences.")
    parser.add_argument("--data", help="a torch.save'd dict with train/val/test (x, y) pairs and temp_std "
                                       "(forecasting) or num_classes (text, x of word ids)")
    parser.add_argument("--model", choices=["conv", "hybrid", "lstm"], default="hybrid")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accelerator", default="cpu", help="cpu, gpu or auto")
    parser.add_argument("--no-progress", action="store_true", help="hide Lightning's progress bar")
    args = parser.parse_args(argv)
    data = torch.load(args.data) if args.data else _synthetic()
    text = not data["train"][0].is_floating_point()
    loader = lambda part, shuffle: torch.utils.data.DataLoader(  # noqa: E731
        torch.utils.data.TensorDataset(*data[part]), batch_size=args.batch_size, shuffle=shuffle)
    pl.seed_everything(args.seed, verbose=False)
    if text:
        vocab = int(max(int(data[s][0].max()) for s in ("train", "val", "test"))) + 1
        system = TextSystem(args.model, vocab_size=vocab, num_classes=data.get("num_classes", 1))
        metric, mode = "acc", "max"
    else:
        system = ForecastSystem(args.model, input_size=data["train"][0].shape[-1], target_std=data["temp_std"])
        metric, mode = "mae", "min"
    best = KeepBest(f"val_{metric}", mode)
    trainer = fit(system, loader("train", True), loader("val", False), args.epochs,
                  progress=not args.no_progress, accelerator=args.accelerator, callbacks=[best])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(does not have many workers|LeafSpec).*")
        test = trainer.test(system, loader("test", False), verbose=False)[0][f"test_{metric}"]
    print(f"best epoch {best.best_epoch + 1}: val {metric} {best.best:.3f}, test {metric} {test:.3f}")


if __name__ == "__main__":
    main()
