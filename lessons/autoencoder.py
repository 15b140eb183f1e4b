r"""Sequence autoencoder: squeeze a window of a time series into $k$ numbers, rebuild it, and call strange what it rebuilds badly.

An encoder reads the window $x_1, \dots, x_T$ ($x_t \in \mathbb{R}^D$; in the lesson one step is one hour
of weather); its last hidden state becomes the code $z$, the bottleneck. A decoder reads $z$ at every
step (never the window itself: no teacher forcing) and a linear head writes the window back, by default
last step first (``reverse=True``: the encoder's last state knows the last hours best, Srivastava et al. 2015):

$$
h_t = \operatorname{LSTM}_{\text{enc}}(x_t, h_{t-1}), \qquad z = W_z h_T + b_z \in \mathbb{R}^k, \qquad
s_j = \operatorname{LSTM}_{\text{dec}}(z, s_{j-1}), \qquad \hat{x}_{T+1-j} = W_o s_j + b_o .
$$

Training minimises the mean squared error $\frac{1}{TD} \sum_{t,d} (\hat{x}_{t,d} - x_{t,d})^2$ on normalised
windows; the same error, window by window, is the anomaly score. `AutoencoderSystem` keeps the normalisation
(mean, std), the window length and the feature names in its checkpoint, so ``score`` needs nothing else.
Letters: N windows, T steps, D features, H hidden units, k bottleneck size.

To run:

```bash
python lessons/autoencoder.py fit --trainer.max_epochs 5                        # a built-in toy series
python -c "from lessons.datasets import write_weather_csv as w; w('ewr.csv')"   # a year of weather at EWR
python lessons/autoencoder.py fit --data.path ewr.csv --trainer.max_epochs 20
python lessons/autoencoder.py score --series ewr.csv --top 5 --skip_missing     # the newest checkpoint
```

Imports: stdlib, torch, pytorch_lightning, torchmetrics.
"""

from __future__ import annotations

import csv
import importlib
import math
import pathlib
import sys
import warnings

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["SequenceAutoencoder", "window_errors", "AutoencoderSystem", "make_windows", "read_series",
           "anomaly_scores", "toy_series", "AutoencoderData", "score"]


def _check_windows(x, features: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != features or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected float windows of shape (N, T, D) = (*, *, {features}), got {got}")


def _flip(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Each sequence's first ``lengths[n]`` steps in reverse order; padding stays where it is."""
    if lengths is None:
        return x.flip(1)
    j = torch.arange(x.shape[1], device=x.device)
    L = lengths.to(x.device).unsqueeze(1)  # (N, 1)
    index = torch.where(j < L, L - 1 - j, j)  # (N, T)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


# --8<-- [start:model]
class SequenceAutoencoder(nn.Module):
    """Any ``batch_first=True`` encoder layer → its top layer's last state → ``Linear`` to k numbers (the code)
    → any ``batch_first=True`` decoder layer fed the code at every step → ``Linear`` to D features per step.
    With ``lengths`` both layers are packed: a window never reads, nor is rebuilt from, padding."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, features: int, bottleneck: int, reverse: bool = True) -> None:
        super().__init__()
        if encoder.input_size != features or decoder.input_size != bottleneck:
            raise ValueError(f"expected an encoder reading {features} features and a decoder reading the {bottleneck}-number "
                             f"code, got input sizes {encoder.input_size} and {decoder.input_size}")
        self.encoder, self.decoder, self.features, self.reverse = encoder, decoder, features, reverse
        self.to_code = nn.Linear(encoder.hidden_size, bottleneck)  # h_T → z, (H, k)
        self.head = nn.Linear(decoder.hidden_size, features)  # s_j → x̂, (H, D)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        _check_windows(x, self.features)
        if lengths is not None:
            x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, state = self.encoder(x)
        h_n = state[0] if isinstance(state, tuple) else state  # (layers, N, H); LSTM: (h_n, c_n)
        return self.to_code(h_n[-1])  # (N, k)

    def decode(self, z: torch.Tensor, steps: int, lengths: torch.Tensor | None = None) -> torch.Tensor:
        inputs = z.unsqueeze(1).expand(-1, steps, -1)  # (N, T, k): the code at every step
        if lengths is None:
            out, _ = self.decoder(inputs)
        else:
            packed = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = pad_packed_sequence(self.decoder(packed)[0], batch_first=True, total_length=steps)
        x_hat = self.head(out)  # (N, T, D), in the order the decoder wrote it
        return _flip(x_hat, lengths) if self.reverse else x_hat

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x, lengths), x.shape[1], lengths)  # (N, T, D) in time order
# --8<-- [end:model]


def _mask(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:  # (N, T): True on real steps
    if lengths is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    return torch.arange(x.shape[1], device=x.device) < lengths.to(x.device).unsqueeze(1)


def window_errors(x_hat: torch.Tensor, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The mean squared error of each window over its real steps and all features, (N,): the anomaly score."""
    real = _mask(x, lengths).unsqueeze(-1)  # (N, T, 1)
    squared = (x_hat - x).to(torch.promote_types(x.dtype, torch.float32)).square() * real  # bf16 → float32
    return squared.sum((1, 2)) / (real.sum((1, 2)) * x.shape[-1])


def _split(batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``x``, ``(x,)`` or ``(x, lengths)`` → ``(x, lengths)``: the window is its own target."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    return batch[0], batch[1] if len(batch) > 1 else None


# --8<-- [start:system]
class AutoencoderSystem(pl.LightningModule):
    """Mean squared error of the rebuilt windows (padding excluded); MSE and MAE from torchmetrics per stage.
    ``predict_step`` returns each window's error. ``mean``/``std`` (per feature, the training data's), ``window``
    and ``features`` (names) travel in the checkpoint for `anomaly_scores`."""

    def __init__(self, model: nn.Module, mean: list[float] | None = None, std: list[float] | None = None,
                 window: int | None = None, features: list[str] | None = None, lr: float = 3e-3) -> None:
        super().__init__()
        for name, value in (("mean", mean), ("std", std), ("features", features)):
            if value is not None and len(value) != model.features:
                raise ValueError(f"expected {name} with one entry per feature of the model ({model.features}), got "
                                 f"{len(value)}: the checkpoint and the model come from different data")
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.metrics = nn.ModuleDict({f"{s}_metric": torchmetrics.MetricCollection(
            {"mse": torchmetrics.MeanSquaredError(), "mae": torchmetrics.MeanAbsoluteError()}, prefix=f"{s}_")
            for s in ("train", "val", "test")})

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x, lengths)  # (N, T, D) rebuilt windows

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, lengths = _split(batch)
        x_hat = self(x, lengths).float()
        real = _mask(x, lengths)
        loss = nn.functional.mse_loss(x_hat[real], x[real].float())
        self.metrics[f"{stage}_metric"].update(x_hat[real].detach(), x[real].float())
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x), sync_dist=True)
        self.log_dict(self.metrics[f"{stage}_metric"], on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx):
        x, lengths = _split(batch)
        return window_errors(self(x, lengths), x, lengths)  # (N,)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
# --8<-- [end:system]


# --8<-- [start:score]
def make_windows(series: torch.Tensor, window: int, stride: int = 1, skip_missing: bool = False):
    """A series (G, D) → windows ``(N, T, D)`` starting every ``stride`` rows, and their first rows ``(N,)``.
    A missing value (NaN) is refused, or with ``skip_missing`` every window that touches it is left out."""
    if not isinstance(series, torch.Tensor) or series.dim() != 2 or window < 1 or stride < 1:
        raise ValueError(f"expected a series of shape (G, D) and window, stride >= 1, got "
                         f"{getattr(series, 'shape', series)}, window={window}, stride={stride}")
    if len(series) < window:
        raise ValueError(f"expected a series of at least {window} rows (one window), got {len(series)}")
    windows = series.unfold(0, window, stride).transpose(1, 2)  # (N, T, D)
    starts = torch.arange(0, len(series) - window + 1, stride)
    missing = windows.isnan().any(2).any(1)
    if missing.any() and not skip_missing:
        row, column = (int(i) for i in series.isnan().nonzero()[0])
        raise ValueError(f"expected no missing values, got NaN at row {row}, column {column}: fill it in, or skip "
                         f"the {int(missing.sum())} windows that touch a missing value (skip_missing)")
    return windows[~missing], starts[~missing]


def anomaly_scores(system: AutoencoderSystem, windows: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Each raw window's reconstruction error (N,), normalised with the statistics saved in ``system``."""
    h, windows = system.hparams, torch.as_tensor(windows)
    if h.get("mean") is None or h.get("window") is None:
        raise ValueError("expected a system saved with its data (AutoencoderSystem(..., mean, std, window, features))")
    if windows.dim() != 3 or tuple(windows.shape[1:]) != (h.window, len(h.mean)):
        raise ValueError(f"expected windows of shape (N, T, D) = (*, {h.window}, {len(h.mean)}) (the checkpoint's "
                         f"window length and features), got {tuple(windows.shape)}")
    if windows.isnan().any():
        raise ValueError("expected windows without missing values (NaN)")
    x = ((windows.double() - torch.tensor(h.mean, dtype=torch.float64)) / torch.tensor(h.std, dtype=torch.float64)).float()
    system.eval()
    with torch.no_grad():
        return torch.cat([system.predict_step(part.to(system.device), 0).cpu() for part in x.split(batch_size)])
# --8<-- [end:score]


def read_series(path) -> tuple[list[str], list[str], torch.Tensor]:
    """A CSV with a header → ``(times, names, values (G, D) float64)``: a column named ``time`` is kept as text
    (row numbers if there is none), every other column is a number per row; an empty cell is NaN."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2 or not rows[0]:
        raise ValueError(f"{path}: expected a header row and at least one row of numbers")
    header = [name.strip() for name in rows[0]]
    keep = [i for i, name in enumerate(header) if name != "time"]
    times = [r[header.index("time")] for r in rows[1:]] if "time" in header else [str(i) for i in range(len(rows) - 1)]
    values = []
    for n, row in enumerate(rows[1:], start=2):
        try:
            values.append([float(row[i]) if row[i].strip() else math.nan for i in keep])
        except (ValueError, IndexError):
            raise ValueError(f"{path}: line {n}: expected {len(header)} cells, numbers or empty, got {row}") from None
    return times, [header[i] for i in keep], torch.tensor(values, dtype=torch.float64)


def toy_series(days: int = 60, seed: int = 0) -> tuple[list[str], list[str], torch.Tensor]:
    """A made-up hourly series with the weather CSV's six columns: a day–night cycle, noise, and rain now and then."""
    g = torch.Generator().manual_seed(seed)
    hours = torch.arange(days * 24, dtype=torch.float64)
    noise = lambda scale: scale * torch.randn(len(hours), generator=g, dtype=torch.float64)  # noqa: E731
    temp = 10 + 6 * torch.sin(2 * math.pi * (hours - 9) / 24) + 3 * torch.sin(2 * math.pi * hours / 24 / 17) + noise(1)
    dewp = temp - 6 + noise(1.5)
    rain = (torch.rand(len(hours), generator=g) < 0.05).double() * noise(2).abs()
    values = torch.stack([temp, dewp, 60 + 3 * (dewp - temp + 6) + noise(3), noise(2).abs() + 2, rain,
                          (16 - 4 * rain).clamp(min=1)], dim=1)
    return [f"h{int(h)}" for h in hours], ["temp", "dewp", "humid", "wind_speed", "precip", "visib"], values


class AutoencoderData(pl.LightningDataModule):
    """A series (CSV as `read_series`, or `toy_series` without ``path``) cut by time: the first rows train, then
    ``val_fraction`` validates and the last ``test_fraction`` tests. Windows lie inside one part and skip missing
    values; ``mean``/``std`` come from the training rows. Batches are ``(x,)``, x (N, T, D) normalised."""

    def __init__(self, path: str | None = None, window: int = 24, stride: int = 1, val_fraction: float = 0.15,
                 test_fraction: float = 0.15, batch_size: int = 64, seed: int = 0) -> None:
        super().__init__()
        if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
            raise ValueError(f"expected positive fractions summing below 1, got {val_fraction}, {test_fraction}")
        self.batch_size, self.seed, self.window = batch_size, seed, window
        _, self.features, values = toy_series() if path is None else read_series(path)
        cuts = [0, round(len(values) * (1 - val_fraction - test_fraction)), round(len(values) * (1 - test_fraction)), len(values)]
        train = values[: cuts[1]]
        self.mean = [float(c[~c.isnan()].mean()) for c in train.T]
        self.std = [float(c[~c.isnan()].std()) for c in train.T]
        normed = ((values - torch.tensor(self.mean, dtype=torch.float64)) / torch.tensor(self.std, dtype=torch.float64)).float()
        self.parts = {name: torch.utils.data.TensorDataset(make_windows(normed[a:b], window, stride, skip_missing=True)[0])
                      for name, a, b in zip(("train", "val", "test"), cuts, cuts[1:])}

    def _loader(self, split: str, shuffle: bool = False):
        return torch.utils.data.DataLoader(self.parts[split], self.batch_size, shuffle=shuffle,
                                           generator=torch.Generator().manual_seed(self.seed))

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val")

    def test_dataloader(self):
        return self._loader("test")

    predict_dataloader = test_dataloader


def _newest_checkpoint() -> pathlib.Path:
    path = max(pathlib.Path("lightning_logs").glob("*/checkpoints/*.ckpt"), key=lambda p: p.stat().st_mtime, default=None)
    if path is None:
        raise FileNotFoundError("no checkpoint under lightning_logs/: run `fit` first or pass --ckpt_path")
    return path


def score(args: list[str]) -> list[tuple[str, str, float]]:
    """``score --series file.csv [--ckpt_path file] [--top 5] [--stride 1] [--skip_missing]``: the strangest
    windows of a CSV series (columns named as the checkpoint's features, in any order, raw units), printed
    as ``first time, last time, error`` and returned. A ``.pt`` file may hold raw windows (N, T, D) instead."""
    import argparse
    parser = argparse.ArgumentParser(prog="autoencoder.py score", description=score.__doc__)
    parser.add_argument("--series", required=True, help="a CSV file (one row per step) or a .pt tensor of windows")
    parser.add_argument("--ckpt_path", default=None, help="a checkpoint written by fit (default: the newest)")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--skip_missing", action="store_true", help="leave out windows with a missing value")
    options = parser.parse_args(args)
    system = AutoencoderSystem.load_from_checkpoint(options.ckpt_path or _newest_checkpoint(), map_location="cpu")
    window, wanted = system.hparams.window, list(system.hparams.features or [])
    if options.series.endswith(".pt"):
        windows = torch.load(options.series)
        times, starts = [str(i) for i in range(len(windows) * window)], torch.arange(len(windows)) * window
    else:
        times, names, values = read_series(options.series)
        if sorted(names) != sorted(wanted):
            raise ValueError(f"expected the columns {wanted} (the checkpoint's features), got {names}")
        series = values[:, [names.index(name) for name in wanted]]
        windows, starts = make_windows(series, window, options.stride, options.skip_missing)
    errors = anomaly_scores(system, windows)
    order = []  # the highest errors among windows that do not overlap one already taken
    for i in errors.argsort(descending=True).tolist():
        if len(order) < options.top and all(abs(int(starts[i]) - int(starts[j])) >= window for j in order):
            order.append(i)
    found = [(times[int(starts[i])], times[int(starts[i]) + window - 1], float(errors[i])) for i in order]
    for first, last, error in found:
        print(f"{first}\t{last}\t{error:.3f}")
    return found


def main(args: list[str] | None = None):
    """``LightningCLI`` over `AutoencoderSystem` and `AutoencoderData` (LSTM encoder and decoder, k = 4); ``score`` runs `score`."""
    args = sys.argv[1:] if args is None else list(args)
    if args[:1] == ["score"]:
        return score(args[1:])
    from pytorch_lightning.cli import LightningCLI

    here = __name__  # importable (see the __main__ block), so checkpoints name classes that import again
    def lstm(inputs):
        return {"class_path": "torch.nn.LSTM", "init_args": {"input_size": inputs, "hidden_size": 32, "batch_first": True}}
    model = {"class_path": f"{here}.SequenceAutoencoder",
             "init_args": {"encoder": lstm(6), "decoder": lstm(4), "features": 6, "bottleneck": 4}}

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.set_defaults({"model.model": model, "trainer.max_epochs": 5, "trainer.log_every_n_steps": 1})
            for source in ("mean", "std", "window", "features"):  # the data's statistics go into the checkpoint
                parser.link_arguments(f"data.{source}", f"model.{source}", apply_on="instantiate")

        def instantiate_classes(self):  # keep the model's class path and arguments: load_from_checkpoint rebuilds it
            super().instantiate_classes()
            self.model.hparams["model"] = self.config_dump["model"]["model"]

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6.6, not ours to fix
    CLI(AutoencoderSystem, AutoencoderData, seed_everything_default=0, args=args)


if __name__ == "__main__":  # run the importable module's main: the classes a checkpoint names must import again
    importlib.import_module(__spec__.name if __spec__ else pathlib.Path(__file__).stem).main()
