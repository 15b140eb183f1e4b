"""Tests of lessons/stacking.py: layers stacked with `Stacked` equal torch.nn's ``num_layers=k`` with
copied weights (GRU, LSTM, RNN, bidirectional, tensors, initial states, packed input), for torch.nn's
layers, the lessons' and recurrent dropout layers; every layer reads the whole sequence below;
bad input is refused clearly; the system is complete; the command line runs; the benchmark's quick
mode writes the committed table format."""

import importlib.util
import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import DataLoader, TensorDataset

import lightning_checks as lk
from claims import check_quoted, committed
from lessons import stacking
from lessons.recurrent_dropout import RecurrentDropout
from lessons.rnn import RNN
from lessons.stacking import Forecaster, ForecastSystem, Stacked

ROOT = Path(__file__).resolve().parents[1]
D, H, N, T = 3, 5, 4, 6


def _close(a, b):
    for x, y in zip(a, b) if isinstance(a, tuple) else ((a, b),):
        torch.testing.assert_close(x, y, atol=1e-12, rtol=0)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", [nn.GRU, nn.LSTM, nn.RNN])
@pytest.mark.parametrize("layers", [1, 3])
def test_stack_equals_torch_num_layers(kind, layers, bidirectional):
    torch.manual_seed(0)
    reference = kind(D, H, num_layers=layers, bidirectional=bidirectional).double()
    ours = Stacked.from_torch(reference)
    assert len(ours.layers) == layers and all(layer.num_layers == 1 for layer in ours.layers)
    x = torch.randn(T, N, D, dtype=torch.float64)
    shape = (layers * (2 if bidirectional else 1), N, H)
    hx = torch.randn(shape, dtype=torch.float64)
    hx = (hx, hx.flip(0)) if kind is nn.LSTM else hx
    for h0 in (None, hx):
        a, b = reference(x, h0), ours(x, h0)
        _close(b[0], a[0])
        _close(b[1], a[1])  # h_n: (L·directions, N, H), bottom layer first
    packed = pack_padded_sequence(x, torch.tensor([T, 2, 4, 1]), enforce_sorted=False)
    a, b = reference(packed), ours(packed)
    assert torch.equal(a[0].sorted_indices, b[0].sorted_indices)
    _close(b[0].data, a[0].data)
    _close(b[1], a[1])


def test_gradients_equal_torch():
    torch.manual_seed(0)
    reference = nn.GRU(D, H, num_layers=2, batch_first=True).double()
    ours = Stacked.from_torch(reference)
    x = torch.randn(N, T, D, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    weights = torch.randn(N, T, H, dtype=torch.float64)
    (ours(x)[0] * weights).sum().backward()
    (reference(x_ref)[0] * weights).sum().backward()
    _close(x.grad, x_ref.grad)
    _close(ours.layers[1].weight_hh_l0.grad, reference.weight_hh_l1.grad)


def test_stacks_the_lessons_layers_and_recurrent_dropout_layers():
    torch.manual_seed(0)
    reference = RNN(D, H, num_layers=2, batch_first=True).double()
    first, second = (RNN(d, H, batch_first=True).double() for d in (D, H))
    first.cells[0].load_state_dict(reference.cells[0].state_dict())
    second.cells[0].load_state_dict(reference.cells[1].state_dict())
    x = torch.randn(N, T, D, dtype=torch.float64)
    _close(Stacked([first, second])(x), reference(x))
    wrapped = Stacked([RecurrentDropout(first.cells[0], batch_first=True), RecurrentDropout(second.cells[0], batch_first=True)])
    _close(wrapped(x), reference(x))


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    stack = Stacked.from_torch(nn.GRU(D, H, num_layers=2, dropout=0.5, batch_first=True))
    x = torch.randn(2, 5, D)
    stack.eval()
    torch.testing.assert_close(stack(x)[0], stack(x)[0])
    stack.train()
    assert not torch.equal(stack(x)[0], stack(x)[0])


def test_each_layer_reads_the_whole_sequence_below(monkeypatch):
    stack = Stacked([nn.GRU(8, 16, batch_first=True), nn.GRU(16, 32, batch_first=True), nn.GRU(32, 4, batch_first=True)])
    seen = []
    for layer in stack.layers:
        forward = layer.forward
        monkeypatch.setattr(layer, "forward", lambda x, h=None, f=forward: seen.append(tuple(x.shape)) or f(x, h))
    output, h_n = stack(torch.randn(2, 6, 8))
    assert seen == [(2, 6, 8), (2, 6, 16), (2, 6, 32)]
    assert tuple(output.shape) == (2, 6, 4) and torch.equal(output[:, -1], h_n[0])  # sizes differ: top layer's h_n


def test_bad_options_and_input_get_a_clear_error():
    with pytest.raises(ValueError, match="at least one layer"):
        Stacked([])
    with pytest.raises(ValueError, match="input_size 16 and batch_first True, got 8 and True"):
        Stacked([nn.GRU(8, 16, batch_first=True), nn.GRU(8, 4, batch_first=True)])
    with pytest.raises(ValueError, match="no initial state for layers of different hidden sizes"):
        Stacked([nn.GRU(8, 16), nn.GRU(16, 4)])(torch.zeros(3, 2, 8), torch.zeros(2, 2, 16))
    with pytest.raises(ValueError, match=r"\(N, T, D\) = \(\*, \*, 8\)"):
        Stacked([RNN(8, 4, batch_first=True)])(torch.zeros(2, 3, 5))


# ---- the system is complete: the checks every LightningModule of the course passes ----

def _windows():
    torch.manual_seed(0)
    x = torch.randn(16, 5, 3)
    return TensorDataset(x, torch.tensor([5, 3, 4, 2] * 4), x[:, :, 0].sum(1, keepdim=True))


def _model():
    return Forecaster(Stacked([nn.GRU(3, 6, batch_first=True), nn.GRU(6, 6, batch_first=True)]))


def _system():
    pl.seed_everything(0, verbose=False)
    return ForecastSystem(_model(), lr=0.01)


def test_predict():
    lk.check_predict(_system, DataLoader(_windows(), batch_size=4))


def test_checkpoint_round_trip(tmp_path):
    loader = DataLoader(_windows(), batch_size=4)
    lk.check_checkpoint(_system, loader, loader, tmp_path, model=_model())


def test_resume_equals_uninterrupted(tmp_path):
    loader = DataLoader(_windows(), batch_size=4)
    lk.check_resume(_system, loader, loader, tmp_path)


def test_ddp_two_processes_equal_one(tmp_path):
    lk.check_ddp(_system, _windows(), batch_size=8, tmp_path=tmp_path)


def test_bf16_mixed_on_cpu():
    lk.check_bf16(_system, DataLoader(_windows(), batch_size=4))


def test_gpu():
    lk.check_gpu(_system, DataLoader(_windows(), batch_size=4))


def test_swap_torch_layer_for_the_stack_inside_the_system():
    torch.manual_seed(0)
    system = ForecastSystem(Forecaster(nn.LSTM(3, 6, num_layers=3, batch_first=True, bidirectional=True)))
    x, lengths = torch.randn(4, 5, 3), torch.tensor([5, 3, 4, 1])
    lk.check_swap(system, {nn.LSTM: Stacked.from_torch}, (x, lengths))


def test_command_line_help_and_config(tmp_path):
    run = lambda *a: lk.run_script(stacking.__file__, *a)  # noqa: E731
    help_text = run("fit", "--help")
    assert help_text.returncode == 0 and "--model.model" in help_text.stdout
    assert "class_path: stacking.Stacked" in run("fit", "--print_config").stdout


def test_command_line_trains_and_checkpoint_loads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stacking.main(["fit", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
                   "--trainer.enable_model_summary", "false", "--trainer.limit_train_batches", "2"])
    (path,) = tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt")
    system = ForecastSystem.load_from_checkpoint(path)
    assert [layer.hidden_size for layer in system.model.rnn.layers] == [32, 64]


# ---- the benchmark that makes the page's table ----

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
    results = _benchmark().main(["--quick", "--lesson", "stacking", "--out", str(tmp_path)])
    name = "forecast-stacking.md"
    quick = _table_shape((tmp_path / name).read_text(encoding="utf-8"))
    assert quick == _table_shape((ROOT / "benchmarks" / "results" / name).read_text(encoding="utf-8"))
    assert results["stacked_gru"]["train_mae_last"] < 20  # recurrent dropout 0.5 on a GRU stays finite


def _check_claims(runs, tol=None):
    """The page's numbers (``tol=None``: as rounded there) and conclusions, for a run's results."""
    stacked, gru, drop, base = runs["stacked_gru"], runs["gru"], runs["gru_dropout"], runs["common_sense"]
    # the numbers the page quotes, rounded as in the table
    quoted = {("stacked_gru", "val_mae_best"): 2.30, ("stacked_gru", "val_mae_last"): 5.83,
              ("stacked_gru", "train_mae_last"): 2.80, ("stacked_gru", "test_mae"): 3.71,
              ("gru_dropout", "val_mae_best"): 2.29, ("gru_dropout", "test_mae"): 3.49, ("gru", "test_mae"): 3.42}
    check_quoted({key: runs[key[0]][key[1]] for key in quoted}, quoted, tol)
    assert (stacked["parameters"], gru["parameters"]) == (22913, 4065)
    assert stacked["best_epoch"] == 4 or tol is not None  # the page names it
    # more than five times the parameters, but no better than one GRU layer with dropout, and worse on test
    assert stacked["parameters"] > 5 * gru["parameters"]
    assert stacked["val_mae_best"] >= drop["val_mae_best"]
    assert stacked["test_mae"] > max(gru["test_mae"], drop["test_mae"])
    # after the early best epoch: validation more than doubles while the training MAE (masks on) keeps falling
    history = stacked["history"]
    assert stacked["best_epoch"] <= 5 and stacked["val_mae_last"] > 2 * stacked["val_mae_best"]
    assert stacked["train_mae_last"] < history["train_mae"][stacked["best_epoch"] - 1]
    assert stacked["train_mae_last"] == min(history["train_mae"][stacked["best_epoch"]:])
    # the last epoch's model, without the checkpoint, is more than twice as bad as common sense on validation
    assert stacked["val_mae_last"] > 2 * base["val"]


def test_the_pages_claims_hold_in_the_committed_full_runs():
    _check_claims(committed("forecast-curves.json"))


@pytest.mark.slow
def test_the_pages_claims_hold_in_a_fresh_full_run(tmp_path):
    _benchmark().main(["--lesson", "stacking", "--fresh", "--out", str(tmp_path)])
    _check_claims(json.loads((tmp_path / "forecast-curves.json").read_text(encoding="utf-8")), tol=0.05)
