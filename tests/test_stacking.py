"""Tests of lessons/stacking.py: the stack equals torch.nn.GRU(num_layers=L) in values and
gradients when dropout is off (or in eval mode); every layer reads the whole sequence of the layer
below; the masks are per sequence; bad input is refused clearly; a short seeded training learns;
the benchmark's quick mode writes the committed table format."""

import importlib.util
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lessons import stacking
from lessons.datasets import weather_forecast
from lessons.stacking import GRULayer, History, KeepBest, StackedForecastSystem, StackedGRU, fit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _pair(layers=3, D=5, H=7):
    torch.manual_seed(0)
    reference = nn.GRU(D, H, num_layers=layers, batch_first=True).double()
    return reference, StackedGRU.from_torch(reference)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_stack_equals_torch_gru_num_layers(layers):
    reference, ours = _pair(layers)
    x = torch.randn(4, 9, 5, dtype=torch.float64)
    hs_ref, h_ref = reference(x)  # (N, T, H), (L, N, H)
    hs, h_T = ours(x)
    torch.testing.assert_close(hs, hs_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(h_T, h_ref[-1], rtol=0, atol=1e-12)


def test_gradients_equal_torch():
    reference, ours = _pair(2)
    x = torch.randn(3, 11, 5, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    weights = torch.randn(3, 11, 7, dtype=torch.float64)
    (ours(x)[0] * weights).sum().backward()
    (reference(x_ref)[0] * weights).sum().backward()
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=0, atol=1e-12)  # noqa: E731
    close(x.grad, x_ref.grad)
    for l, layer in enumerate(ours.layers):
        close(layer.cell.W_xh.grad, getattr(reference, f"weight_ih_l{l}").grad.T)
        close(layer.cell.W_hh.grad, getattr(reference, f"weight_hh_l{l}").grad.T)
        close(layer.cell.b_hh.grad, getattr(reference, f"bias_hh_l{l}").grad)


def test_eval_mode_ignores_dropout():
    reference, ours = _pair(2)
    for layer in ours.layers:
        layer.dropout, layer.recurrent_dropout = 0.3, 0.5
    x = torch.randn(4, 9, 5, dtype=torch.float64)
    ours.eval()
    torch.testing.assert_close(ours(x)[0], reference(x)[0], rtol=0, atol=1e-12)
    ours.train()
    assert not torch.allclose(ours(x)[0], reference(x)[0])


def test_each_layer_reads_the_whole_sequence_below(monkeypatch):
    stack = StackedGRU(8, (16, 32, 4))
    seen = []
    for layer in stack.layers:
        forward = layer.forward
        monkeypatch.setattr(layer, "forward", lambda x, forward=forward: seen.append(tuple(x.shape)) or forward(x))
    hs, h_T = stack(torch.randn(2, 6, 8))
    assert seen == [(2, 6, 8), (2, 6, 16), (2, 6, 32)]
    assert tuple(hs.shape) == (2, 6, 4) and torch.equal(hs[:, -1], h_T)


def test_masks_are_the_same_at_every_step_of_a_sequence():
    torch.manual_seed(3)
    layer = GRULayer(16, 8, dropout=0.5)
    x = torch.randn(6, 10, 16, requires_grad=True)
    layer(x)[0].sum().backward()
    dropped = x.grad == 0
    assert dropped.any()
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped))
    assert len({tuple(row.tolist()) for row in dropped[:, 0]}) > 1


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.zeros(32, 64), r"expected x of shape \(N, T, D\) = \(\*, \*, 8\), got \(32, 64\)"),
        (torch.zeros(2, 3, 5), r"expected x of shape \(N, T, D\) = \(\*, \*, 8\), got \(2, 3, 5\)"),
        (torch.zeros(2, 0, 8), r"at least one time step"),
    ],
)
def test_bad_input_gets_a_clear_error(x, message):
    with pytest.raises(ValueError, match=message):
        StackedGRU(8, (4, 4))(x)


def test_bad_options_get_a_clear_error():
    with pytest.raises(ValueError, match="at least one layer"):
        StackedGRU(8, ())
    with pytest.raises(ValueError, match="0 <= recurrent_dropout < 1"):
        StackedGRU(8, (4,), recurrent_dropout=1.5)
    with pytest.raises(ValueError, match="one-direction"):
        StackedGRU.from_torch(nn.GRU(3, 4, bidirectional=True, batch_first=True))


def _short_run():
    data = weather_forecast(step=3)
    (xt, yt), (xv, yv) = data.train, data.val
    g = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(xt[::8], yt[::8]), batch_size=128, shuffle=True, generator=g)
    val = DataLoader(TensorDataset(xv[::4], yv[::4]), batch_size=512)
    pl.seed_everything(0, verbose=False)
    system = StackedForecastSystem(8, (16, 16), 0.1, 0.5, target_std=data.temp_std)
    history, best = History(), KeepBest()
    fit(system, train, val, max_epochs=3, callbacks=[history, best])
    return history, best


def test_short_training_learns_and_is_reproducible():
    history, best = _short_run()
    again, _ = _short_run()
    assert history.history == again.history
    assert history.history["train_mae"][-1] < history.history["train_mae"][0]
    assert best.best < 4.0  # °C; the training mean temperature is off by about 9


def test_command_line_runs(capsys):
    stacking.main(["--epochs", "1", "--hidden", "8", "8", "--no-progress"])
    assert "best epoch 1: val MAE" in capsys.readouterr().out


def _benchmark():
    spec = importlib.util.spec_from_file_location("forecasting_benchmark", ROOT / "benchmarks" / "forecasting.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table_shape(text):
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("|")]
    return lines[0].startswith("`python benchmarks/forecasting.py"), rows[:2], [r.split("|")[1] for r in rows[2:]]


def test_benchmark_quick_mode_writes_the_committed_table_format(tmp_path):
    _benchmark().main(["--quick", "--lesson", "stacking", "--out", str(tmp_path)])
    name = "forecast-stacking.md"
    quick = _table_shape((tmp_path / name).read_text(encoding="utf-8"))
    assert quick == _table_shape((ROOT / "benchmarks" / "results" / name).read_text(encoding="utf-8"))


@pytest.mark.slow
def test_benchmark_full_run_regenerates_the_table(tmp_path):
    results = _benchmark().main(["--lesson", "stacking", "--fresh", "--out", str(tmp_path)])
    assert results["stacked_gru"]["parameters"] > results["gru_dropout"]["parameters"]


def test_the_pages_claims_hold_in_the_committed_full_runs():
    import json

    runs = json.loads((ROOT / "benchmarks" / "results" / "forecast-curves.json").read_text(encoding="utf-8"))
    stacked, base = runs["stacked_gru"], runs["common_sense"]
    assert stacked["parameters"] > 5 * runs["gru"]["parameters"]
    assert stacked["best_epoch"] <= 5 and stacked["val_mae_last"] > stacked["val_mae_best"]
    assert stacked["val_mae_best"] > max(runs["gru"]["val_mae_best"], runs["gru_dropout"]["val_mae_best"])
    assert stacked["val_mae_best"] > base["val"]
