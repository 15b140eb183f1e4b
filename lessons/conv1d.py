r"""1D convolution over time, from its definition: drop-ins for ``torch.nn.Conv1d`` and ``nn.MaxPool1d``.

A kernel of k steps slides along the sequence and applies the same weights to every window. For an
input $x$ of shape (N, C_in, L) (torch's layout, channels first), a kernel $W$ (C_out, C_in, k),
stride $s$, zero padding $p$ and dilation $d$, output channel $o$ at step $t$ is

$$
y_{o,t} = b_o + \sum_{i=0}^{k-1} \sum_{c=1}^{C_{in}} W_{o,c,i}\, x_{c,\; st + di - p}, \qquad
L_{\text{out}} = \left\lfloor \frac{L + 2p - d(k-1) - 1}{s} \right\rfloor + 1 .
$$

Max pooling keeps the largest value of each block, so a shifted pattern keeps its global maximum
(translation invariance); layers (k_l, s_l, d_l) see $1 + \sum_l (k_l - 1) d_l \prod_{j<l} s_j$ input steps.
`Conv1d`, `MaxPool1d`: torch.nn's interface, (N, C, L) or (C, L); models read (N, T, D) and transpose.

To run: ``python lessons/conv1d.py fit --trainer.max_epochs 5`` (a CNN + LSTM forecaster on a built-in
noisy cycle) or ``python lessons/conv1d.py fit --help``. Imports: stdlib, torch, Lightning, torchmetrics.
"""

from __future__ import annotations

import math
import warnings

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

__all__ = ["Conv1d", "MaxPool1d", "conv1d_output_length", "receptive_field", "ConvForecaster", "HybridForecaster",
           "LSTMForecaster", "HybridClassifier", "ForecastSystem", "TextSystem", "SeriesData"]


def _channels_first(input, C: int | None = None) -> torch.Tensor:
    """(N, C, L) as it is, unbatched (C, L) as (1, C, L); anything else is refused by its shape."""
    if not isinstance(input, torch.Tensor) or input.dim() not in (2, 3) or input.shape[-2] != (C or input.shape[-2]):
        got, c = tuple(input.shape) if isinstance(input, torch.Tensor) else type(input).__name__, C or "C"
        raise ValueError(f"expected input of shape (N, C, L) = (*, {c}, *) or unbatched (C, L) = ({c}, *), got {got}")
    if not input.is_floating_point():
        raise ValueError(f"expected a floating-point input, got {input.dtype}")
    return input if input.dim() == 3 else input.unsqueeze(0)


# --8<-- [start:length]
def conv1d_output_length(L: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """$L_{out} = \\lfloor (L + 2p - d(k-1) - 1) / s \\rfloor + 1$: the number of whole windows."""
    span = dilation * (kernel_size - 1) + 1  # steps one window covers, holes included
    return (L + 2 * padding - span) // stride + 1
# --8<-- [end:length]


# --8<-- [start:conv]
class Conv1d(nn.Module):
    """``torch.nn.Conv1d``'s interface, (N, C_in, L) → (N, C_out, L_out): ``unfold`` cuts every window, one
    matrix product weighs them all. ``padding``: steps on both ends, "valid", "same" or, beyond torch, "causal":
    d(k - 1) steps at the front only, so that output step t reads no input after t."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | str = 0, dilation: int = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__()
        k, s, d, padding = (v[0] if isinstance(v, tuple) else v for v in (kernel_size, stride, dilation, padding))
        ok_padding = padding in ("valid", "same", "causal") or isinstance(padding, int) and padding >= 0
        if min(k, s, d) < 1 or groups != 1 or padding_mode not in ("zeros", "reflect", "replicate", "circular") or \
                (padding == "same" and s > 1) or not ok_padding:
            raise ValueError(f"expected kernel_size, stride, dilation >= 1, groups=1, padding_mode 'zeros', 'reflect', "
                             f"'replicate' or 'circular', padding >= 0, 'valid', 'same' (stride 1) or 'causal', got "
                             f"{k}, {s}, {d}, {groups}, {padding_mode!r}, {padding!r}")
        self.in_channels, self.out_channels, self.kernel_size, self.stride = in_channels, out_channels, k, s
        self.padding, self.dilation, self.groups, self.padding_mode = padding, d, groups, padding_mode
        self.W = nn.Parameter(torch.empty(out_channels, in_channels, k, device=device, dtype=dtype))  # (C_out, C_in, k)
        self.b = nn.Parameter(torch.empty(out_channels, device=device, dtype=dtype)) if bias else None  # (C_out,)
        bound = 1.0 / math.sqrt(in_channels * k)  # torch.nn.Conv1d's scale, U(-1/sqrt(C_in k), 1/sqrt(C_in k))
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        x = _channels_first(input, self.in_channels)  # (N, C_in, L)
        k, s, d = self.kernel_size, self.stride, self.dilation
        span = d * (k - 1) + 1  # steps one window covers
        front, back = {"causal": (span - 1, 0), "same": ((span - 1) // 2, span // 2), "valid": (0, 0)}.get(
            self.padding, (self.padding, self.padding))
        if x.shape[-1] + front + back < span:
            raise ValueError(f"expected at least {span - front - back} time steps for kernel_size={k}, "
                             f"dilation={d}, padding={self.padding!r}, got L = {x.shape[-1]}")
        x = F.pad(x, (front, back), mode="constant" if self.padding_mode == "zeros" else self.padding_mode)
        windows = x.unfold(2, span, s)[..., ::d]  # (N, C_in, L_out, k): tap i of window t is x[:, :, s t + d i]
        y = windows.transpose(1, 2).flatten(2) @ self.W.flatten(1).T  # (N, L_out, C_in k) @ (C_in k, C_out)
        y = (y if self.b is None else y + self.b).transpose(1, 2)  # (N, C_out, L_out)
        return y if input.dim() == 3 else y[0]
# --8<-- [end:conv]

    @classmethod
    def from_torch(cls, ref: nn.Conv1d) -> "Conv1d":
        """A copy of a ``torch.nn.Conv1d``: ``W = weight``, ``b = bias``."""
        layer = cls(ref.in_channels, ref.out_channels, ref.kernel_size, ref.stride, ref.padding, ref.dilation,
                    ref.groups, ref.bias is not None, ref.padding_mode, ref.weight.device, ref.weight.dtype)
        layer.load_state_dict({"W": ref.weight, **({} if ref.bias is None else {"b": ref.bias})})
        return layer

    def to_torch(self) -> nn.Conv1d:
        """The same function as a ``torch.nn.Conv1d`` (which refuses ``padding="causal"``)."""
        ref = nn.Conv1d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                        self.dilation, 1, self.b is not None, self.padding_mode, self.W.device, self.W.dtype)
        ref.load_state_dict({"weight": self.W, **({} if self.b is None else {"bias": self.b})})
        return ref


# --8<-- [start:pool]
class MaxPool1d(nn.Module):
    """The largest value of each window, ``torch.nn.MaxPool1d``'s interface (dilation 1, no ceil_mode): by default
    ``stride = kernel_size``, blocks that do not overlap; a last incomplete block is dropped, as in Keras."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0, dilation: int = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        if min(kernel_size, stride or 1) < 1 or not 0 <= 2 * padding <= kernel_size or \
                (dilation, return_indices, ceil_mode) != (1, False, False):
            raise ValueError(f"expected kernel_size, stride >= 1, 0 <= padding <= kernel_size / 2, dilation=1 and no "
                             f"indices or ceil_mode, got {kernel_size}, {stride}, {padding}, {dilation}, ...")
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride or kernel_size, padding, 1

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        x = F.pad(_channels_first(input), (self.padding, self.padding), value=-math.inf)  # -inf never wins
        if x.shape[-1] < self.kernel_size:
            raise ValueError(f"expected at least {self.kernel_size - 2 * self.padding} time steps for "
                             f"kernel_size={self.kernel_size}, got L = {input.shape[-1]}")
        y = x.unfold(2, self.kernel_size, self.stride).amax(-1)  # (N, C, L_out): the largest step of each window
        return y if input.dim() == 3 else y[0]
# --8<-- [end:pool]


# --8<-- [start:receptive]
def receptive_field(layers: list[tuple[int, int, int]]) -> int:
    """Input steps one output step of a stack sees; ``layers`` lists (kernel_size, stride, dilation), pooling
    of size m is (m, m, 1). A layer adds (k - 1) d steps of its input, each ``jump`` steps apart."""
    field, jump = 1, 1
    for kernel_size, stride, dilation in layers:
        field += (kernel_size - 1) * dilation * jump
        jump *= stride
    return field
# --8<-- [end:receptive]


def check_input(x, input_size: int | None = None) -> None:
    """Refuse all but float (N, T, D) batches with D = input_size, or integer word ids (N, T) when it is None."""
    want = f"input of shape (N, T, D) = (*, *, {input_size})" if input_size else "integer word ids of shape (N, T)"
    if not isinstance(x, torch.Tensor) or x.dim() != (3 if input_size else 2) or input_size not in (None, x.shape[-1]):
        raise ValueError(f"expected {want}, got {tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if x.is_floating_point() == (input_size is None):
        raise ValueError(f"expected {want} and a{'n integer' if input_size is None else ' floating-point'} dtype, "
                         f"got {x.dtype}")


# --8<-- [start:forecasters]
class ConvForecaster(nn.Module):
    """Conv1d + ReLU + MaxPool1d blocks, a last Conv1d, global max pooling, one output: (N, T, D) → (N, 1).
    Global max pooling forgets *when* a feature fired (translation invariance); see the page on overfitting."""

    def __init__(self, input_size: int, channels: int = 32, kernel_size: int = 5, pool_size: int = 2,
                 blocks: int = 2) -> None:
        super().__init__()
        self.input_size = input_size
        stages = [[Conv1d(input_size if i == 0 else channels, channels, kernel_size), nn.ReLU(), MaxPool1d(pool_size)]
                  for i in range(blocks)]
        self.features = nn.Sequential(*sum(stages, []), Conv1d(channels if blocks else input_size, channels,
                                                               kernel_size), nn.ReLU())
        self.head = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.input_size)
        y = self.features(x.transpose(1, 2))  # channels first: (N, D, T) → (N, C, T')
        return self.head(y.amax(dim=2))  # global max pooling over time (N, C) → (N, 1)


class HybridForecaster(nn.Module):
    """Conv1d + ReLU + MaxPool1d shorten the sequence, an LSTM reads the rest in order (with lengths: real steps)."""

    def __init__(self, input_size: int, channels: int = 32, kernel_size: int = 5, pool_size: int = 2,
                 hidden_size: int = 32, output_size: int = 1) -> None:
        super().__init__()
        self.input_size, self.kernel_size, self.pool_size = input_size, kernel_size, pool_size
        self.front = nn.Sequential(Conv1d(input_size, channels, kernel_size), nn.ReLU(), MaxPool1d(pool_size))
        self.lstm = nn.LSTM(channels, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        check_input(x, self.input_size)
        z = self.front(x.transpose(1, 2)).transpose(1, 2)  # (N, (T - k + 1) // m, C): shorter, channels last
        if lengths is not None:  # what each sequence alone would give: (length - k + 1) // m steps
            lengths = (lengths.cpu() - self.kernel_size + 1) // self.pool_size
            z = pack_padded_sequence(z, lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
        return self.head(self.lstm(z)[1][0][-1])  # h_T of the top layer (N, H) → (N, output_size)
# --8<-- [end:forecasters]


class LSTMForecaster(nn.Module):
    """The plain LSTM(H) → one output, for comparison."""

    def __init__(self, input_size: int, hidden_size: int = 32) -> None:
        super().__init__()
        self.input_size, self.lstm, self.head = input_size, nn.LSTM(input_size, hidden_size, batch_first=True), \
            nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.input_size)
        return self.head(self.lstm(x)[1][0][-1])  # h_T of the top layer (N, H) → (N, 1)


# --8<-- [start:classifiers]
class HybridClassifier(nn.Module):
    """The notes' movie-review model: Embedding(5000, 100), Dropout(0.5), Conv1D(64, 5) + ReLU, MaxPooling1D(4),
    LSTM(55), Dense(1) (a logit: the sigmoid lives in the loss); (N, T) word ids [, lengths] → (N, num_classes)."""

    def __init__(self, vocab_size: int = 5000, embed_size: int = 100, dropout: float = 0.5, channels: int = 64,
                 kernel_size: int = 5, pool_size: int = 4, hidden_size: int = 55, num_classes: int = 1) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Embedding(vocab_size, embed_size, padding_idx=0), nn.Dropout(dropout))
        self.hybrid = HybridForecaster(embed_size, channels, kernel_size, pool_size, hidden_size, num_classes)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        check_input(tokens)
        return self.hybrid(self.embed(tokens), lengths)  # (N, T, E) → (N, num_classes)
# --8<-- [end:classifiers]


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``x``, ``(x,)``, ``(x, y)`` or ``(x, lengths, y)`` → ``(x, lengths, y)``."""
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    return tuple(batch) if len(batch) == 3 else (batch[0], None, batch[1] if len(batch) == 2 else None)


# --8<-- [start:system]
class ForecastSystem(pl.LightningModule):
    """L1 loss on normalised targets; the MAE is logged in the target's units (× ``target_std``)."""

    def __init__(self, model: nn.Module, target_std: float = 1.0, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.metrics = nn.ModuleDict({f"{s}_metric": torchmetrics.MeanAbsoluteError()
                                      for s in ("train", "val", "test")})

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x) if lengths is None else self.model(x, lengths)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, lengths, y = split_batch(batch)
        pred = self(x, lengths)  # (N, 1)
        loss = F.l1_loss(pred, y.view_as(pred))
        std = self.hparams.target_std
        self.metrics[f"{stage}_metric"].update(pred * std, y.view_as(pred) * std)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x), sync_dist=True)
        self.log(f"{stage}_mae", self.metrics[f"{stage}_metric"], on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx):
        x, lengths, _ = split_batch(batch)
        return self(x, lengths)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class TextSystem(ForecastSystem):
    """ForecastSystem's hooks, another loss and metric. One class: a logit, binary cross-entropy (the notes'
    Dense(1) + sigmoid), "1" where the logit is > 0 (sigmoid > 0.5); more: cross-entropy. −100 counts nowhere."""

    def __init__(self, model: nn.Module, num_classes: int = 1, lr: float = 1e-3) -> None:
        super(ForecastSystem, self).__init__()  # LightningModule.__init__, skipping ForecastSystem's
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        task = {"task": "binary"} if num_classes == 1 else {"task": "multiclass", "num_classes": num_classes}
        self.metrics = nn.ModuleDict({f"{s}_metric": torchmetrics.Accuracy(**task) for s in ("train", "val", "test")})

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, lengths, y = split_batch(batch)
        real = y != -100
        logits, y = self(x, lengths)[real], y[real]  # (n, num_classes), (n,)
        if self.hparams.num_classes == 1:
            logits = logits.squeeze(-1)
            loss = F.binary_cross_entropy_with_logits(logits, y.float())
            preds = (logits > 0).long()  # threshold the logit at 0: logits are not probabilities
        else:
            loss, preds = F.cross_entropy(logits, y), logits.argmax(-1)
        self.metrics[f"{stage}_metric"].update(preds, y)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x), sync_dist=True)
        self.log(f"{stage}_acc", self.metrics[f"{stage}_metric"], on_step=False, on_epoch=True, prog_bar=True)
        return loss
# --8<-- [end:system]


class SeriesData(pl.LightningDataModule):
    """A noisy cycle of period 8: windows (N, T, 1) → the value 8 steps later; the last fifth validates."""

    def __init__(self, N: int = 1024, T: int = 40, batch_size: int = 64) -> None:
        super().__init__()
        t, g, self.batch_size = torch.arange(N + T + 8).float(), torch.Generator().manual_seed(0), batch_size
        series = torch.sin(2 * math.pi * t / 8) + 0.3 * torch.randn(len(t), generator=g)
        self.data = torch.utils.data.TensorDataset(series.unfold(0, T, 1)[:N, :, None], series[T + 7:T + 7 + N, None])

    def train_dataloader(self, part: slice = slice(0, 0.8)):
        n = len(self.data)  # (N, T, 1) windows, (N, 1) targets
        subset = torch.utils.data.Subset(self.data, range(int(part.start * n), int(part.stop * n)))
        return torch.utils.data.DataLoader(subset, batch_size=self.batch_size, shuffle=part.start == 0)

    val_dataloader = test_dataloader = predict_dataloader = lambda self: self.train_dataloader(slice(0.8, 1.0))


def main(args: list[str] | None = None) -> None:
    """``LightningCLI`` over either system and any data module; the defaults forecast `SeriesData`."""
    from pytorch_lightning.cli import LightningCLI

    here = __name__  # the importable name (see the __main__ block), so checkpoints can name their classes
    model = {"class_path": f"{here}.HybridForecaster", "init_args": {"input_size": 1}}

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model": {"class_path": f"{here}.ForecastSystem", "init_args": {"model": model}},
                                 "data": {"class_path": f"{here}.SeriesData"}, "trainer.max_epochs": 10,
                                 "trainer.log_every_n_steps": 1})

        def instantiate_classes(self):
            super().instantiate_classes()
            # the system ignores its model object; its class path and arguments let load_from_checkpoint rebuild it
            self.model.hparams["model"] = self.config_dump["model"]["init_args"]["model"]

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix
    CLI(pl.LightningModule, pl.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
        seed_everything_default=0, args=args)


if __name__ == "__main__":
    # run the importable module's main, not __main__'s: the classes a checkpoint names must import again
    import importlib
    import pathlib

    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
