r"""Stacking recurrent layers: every layer hands its whole output sequence to the next one.

A recurrent layer that returns only its last state $h_T$ ends the sequence; a layer that returns
every $h_t$ (Keras's ``return_sequences=True``, and every torch.nn layer's ``output``) produces a
new sequence, so another recurrent layer can read it. With $h^{(0)}_t = x_t$ and layers
$l = 1, \dots, L$:

$$
h^{(l)}_t = f^{(l)}\left(h^{(l-1)}_t,\; h^{(l)}_{t-1}\right), \qquad \hat{y} = h^{(L)}_T W_{hy} + b_y
$$

`Stacked` puts **any** one-layer drop-ins on top of each other (``nn.GRU``, ``nn.LSTM``, the
lessons' layers, a recurrent dropout layer, a bidirectional layer …) and keeps torch.nn's
interface: ``output`` is the top layer's, ``h_n`` every layer's last state, (L, N, H).
With copied weights ``Stacked([nn.GRU(D, H), nn.GRU(H, H)])`` equals ``nn.GRU(D, H, num_layers=2)``.
`Forecaster` puts a linear head on the stack and `ForecastSystem` trains it with Lightning.
Letters: N batch, T time steps, D input features, H hidden units.

To run:

```bash
python lessons/stacking.py fit --trainer.max_epochs 5        # LSTM(32) → LSTM(64) on a noisy cycle
python lessons/stacking.py fit --help                        # every model, data and trainer option
python lessons/stacking.py fit --data.path weather.pt --model.target_std 10.52
```

``weather.pt`` holds ``{"train": (x, y), "val": (x, y), "test": (x, y)}``. The file imports only the
standard library, torch, pytorch_lightning and torchmetrics (plus jsonargparse for the command line).
"""

from __future__ import annotations

import math
import warnings

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

__all__ = ["Stacked", "Forecaster", "ForecastSystem", "WindowData"]


def _states(layer: nn.Module) -> int:
    """How many (N, H) states a layer keeps in h_n: layers × directions."""
    return getattr(layer, "num_layers", 1) * (2 if getattr(layer, "bidirectional", False) else 1)


# --8<-- [start:stack]
class Stacked(nn.Module):
    """Recurrent layers on top of each other: layer l reads the whole output sequence of layer l - 1.

    ``h_n`` holds every layer's last state, (L, N, H), bottom first, as torch.nn's, when all layers
    have the same H; states of different sizes cannot share one tensor, so then it is the top layer's.

    Parameters
    ----------
    layers : list of nn.Module
        Drop-ins with torch.nn's interface, bottom first; layer l's input size is layer l - 1's
        output size (H, or 2H when it is bidirectional); all share ``batch_first``.
    dropout : float
        Ordinary dropout on the outputs between layers in training, as ``nn.GRU``'s ``dropout``.


    Examples
    --------
    >>> stack = Stacked([nn.GRU(8, 32, batch_first=True), nn.GRU(32, 64, batch_first=True)])
    >>> output, h_n = stack(torch.zeros(5, 40, 8))  # (N, T, D)
    >>> tuple(output.shape), tuple(h_n.shape)        # the top layer's sequence and last state
    ((5, 40, 64), (1, 5, 64))
    """

    def __init__(self, layers: list[nn.Module], dropout: float = 0.0) -> None:
        super().__init__()
        if not layers:
            raise ValueError("expected at least one layer, got none")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"expected 0 <= dropout <= 1, got {dropout}")
        for below, above in zip(layers[:-1], layers[1:]):
            size = below.hidden_size * (2 if getattr(below, "bidirectional", False) else 1)
            if above.input_size != size or above.batch_first != below.batch_first:
                raise ValueError(f"expected each layer to read the one below: input_size {size} and batch_first "
                                 f"{below.batch_first}, got {above.input_size} and {above.batch_first}")
        self.layers, self.dropout = nn.ModuleList(layers), dropout
        self.input_size, self.hidden_size = layers[0].input_size, layers[-1].hidden_size
        self.batch_first = layers[0].batch_first
        self.bidirectional = getattr(layers[-1], "bidirectional", False)
        self.num_layers = sum(_states(layer) for layer in layers) // (2 if self.bidirectional else 1)

    def forward(self, input, hx=None):
        same = len({layer.hidden_size for layer in self.layers}) == 1  # else the states cannot share a tensor
        if hx is not None and not same:
            raise ValueError("expected no initial state for layers of different hidden sizes "
                             f"{[layer.hidden_size for layer in self.layers]}")
        x, finals, first = input, [], 0
        for l, layer in enumerate(self.layers):
            k = _states(layer)  # this layer's slice of hx: (k, N, H)
            h0 = None if hx is None else _map(lambda s: s[first:first + k], hx)
            x, h_n = layer(x, h0)  # the whole sequence, for the next layer
            finals.append(h_n)
            first += k
            if self.dropout and self.training and l < len(self.layers) - 1:  # between layers, as torch.nn
                x = x._replace(data=F.dropout(x.data, self.dropout)) if isinstance(x, PackedSequence) \
                    else F.dropout(x, self.dropout)
        if not same:
            return x, finals[-1]  # only the top layer's h_n
        return x, _map(lambda *s: torch.cat(s), *finals)  # (L, N, H): bottom layer first, as torch.nn
# --8<-- [end:stack]

    @classmethod
    def from_torch(cls, reference: nn.RNNBase) -> "Stacked":
        """One-layer copies of each layer of ``nn.RNN``/``GRU``/``LSTM(num_layers=L)``, stacked."""
        K = 2 if reference.bidirectional else 1
        options = {k: getattr(reference, k) for k in ("bias", "batch_first", "bidirectional")}
        if isinstance(reference, nn.RNN):
            options["nonlinearity"] = reference.nonlinearity
        layers = []
        for l in range(reference.num_layers):
            D = reference.input_size if l == 0 else K * reference.hidden_size
            layer = type(reference)(D, reference.hidden_size, **options).to(reference.weight_ih_l0)
            with torch.no_grad():
                for name, p in layer.named_parameters():  # weight_ih_l0(_reverse) ← weight_ih_l{l}(_reverse)
                    p.copy_(getattr(reference, name.replace("_l0", f"_l{l}")))
            layers.append(layer)
        return cls(layers, reference.dropout)


def _map(f, *states):
    return tuple(map(f, *states)) if isinstance(states[0], tuple) else f(*states)


def _last_state(rnn: nn.Module, h_n) -> torch.Tensor:
    """The top layer's final state from any torch.nn-style ``h_n``: both directions side by side."""
    h_n = h_n[0] if isinstance(h_n, tuple) else h_n  # an LSTM's (h_n, c_n)
    K = 2 if getattr(rnn, "bidirectional", False) else 1
    return torch.cat(list(h_n[-K:]), dim=-1)  # (N, K·H)


# --8<-- [start:models]
class Forecaster(nn.Module):
    """Many-to-one: read the window with any ``batch_first=True`` layer, predict from its last state.

    With ``lengths`` each window answers from its own last real step (the layer gets packed input).
    """

    def __init__(self, rnn: nn.Module, output_size: int = 1) -> None:
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(rnn.hidden_size * (2 if rnn.bidirectional else 1), output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:
            x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h_n = self.rnn(x)
        return self.head(_last_state(self.rnn, h_n))  # (N, 1)
# --8<-- [end:models]


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
# --8<-- [end:system]


class WindowData(pl.LightningDataModule):
    """Windows (N, T, D) → the value 8 steps after each window: a noisy cycle, or a saved dict.

    ``path`` names a ``torch.save``'d ``{"train": (x, y), "val": (x, y), "test": (x, y)}``;
    without it the data is a daily cycle of period 8 plus noise, D = 1, T = 40.
    """

    def __init__(self, path: str | None = None, batch_size: int = 128) -> None:
        super().__init__()
        self.path, self.batch_size = path, batch_size
        self.parts = torch.load(path) if path else _noisy_cycle()

    def _loader(self, part: str, shuffle: bool = False):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*self.parts[part]), self.batch_size, shuffle)

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val")

    def test_dataloader(self):
        return self._loader("test")

    predict_dataloader = test_dataloader


def _noisy_cycle(N: int = 1024, T: int = 40) -> dict:
    g = torch.Generator().manual_seed(0)
    t = torch.arange(N + T + 8).float()
    series = torch.sin(2 * math.pi * t / 8) + 0.3 * torch.randn(len(t), generator=g)
    x = torch.stack([series[i:i + T] for i in range(N)]).unsqueeze(-1)  # (N, T, 1)
    y = series[T + 7:T + 7 + N].unsqueeze(-1)  # (N, 1): 8 steps after the window's last value
    a, b = int(0.6 * N), int(0.8 * N)
    return {"train": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "test": (x[b:], y[b:])}


def main(args: list[str] | None = None) -> None:
    """``LightningCLI`` over `ForecastSystem`; the defaults train LSTM(32) → LSTM(64) (jsonargparse cannot build nn.GRU: it passes proj_size)."""
    from pytorch_lightning.cli import LightningCLI

    here = __name__  # the importable name (see the __main__ block), so checkpoints can name their classes
    lstm = lambda d, h: {"class_path": "torch.nn.LSTM", "init_args": {  # noqa: E731
        "input_size": d, "hidden_size": h, "batch_first": True}}
    model = {"class_path": f"{here}.Forecaster", "init_args": {"rnn": {
        "class_path": f"{here}.Stacked", "init_args": {"layers": [lstm(1, 32), lstm(32, 64)], "dropout": 0.1}}}}

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model.model": model, "data": {"class_path": f"{here}.WindowData"},
                                 "trainer.max_epochs": 20, "trainer.log_every_n_steps": 1})

        def instantiate_classes(self):
            super().instantiate_classes()
            # the system ignores its model object; its class path and arguments let load_from_checkpoint rebuild it
            self.model.hparams["model"] = self.config_dump["model"]["model"]

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix
    CLI(ForecastSystem, WindowData, subclass_mode_data=True, seed_everything_default=0, args=args)


if __name__ == "__main__":
    # run the importable module's main, not __main__'s: the classes a checkpoint names must import again
    import importlib
    import pathlib

    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
