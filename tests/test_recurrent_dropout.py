"""Tests of lessons/recurrent_dropout.py: the wrapper around any torch.nn-style cell equals the
matching torch.nn layer with p = 0 (and in eval mode) in values, final states and gradients, for
tensors, initial states, unbatched and packed input; its masks are constant over time; padding never
changes an answer; bad input is refused clearly; the system is complete (predict, checkpoint, resume,
DDP, bf16, swap); the command line runs; the benchmark's quick mode writes the committed format."""

import importlib.util
import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils.data import DataLoader, TensorDataset

import lightning_checks as lk
from claims import check_quoted, committed
from lessons import recurrent_dropout
from lessons.datasets import weather_forecast
from lessons.recurrent_dropout import Dense, Forecaster, ForecastSystem, RecurrentDropout, sequence_mask
from lessons.rnn import RNN

ROOT = Path(__file__).resolve().parents[1]
D, H, N, T = 3, 5, 4, 6
CELLS = {nn.LSTM: nn.LSTMCell, nn.GRU: nn.GRUCell, nn.RNN: nn.RNNCell}


def cell_of(layer: nn.Module) -> nn.Module:
    """A torch.nn cell holding a one-layer torch.nn layer's weights."""
    cell = CELLS[type(layer)](layer.input_size, layer.hidden_size, bias=layer.bias).to(layer.weight_ih_l0)
    with torch.no_grad():
        for name, p in cell.named_parameters():
            p.copy_(getattr(layer, name + "_l0"))
    return cell


def _close(a, b):
    for x, y in zip(a, b) if isinstance(a, tuple) else ((a, b),):
        torch.testing.assert_close(x, y, atol=1e-12, rtol=0)


def _state(kind, shape):
    s = torch.randn(shape, dtype=torch.float64)
    return (s, torch.randn(shape, dtype=torch.float64)) if kind is nn.LSTM else s


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU, nn.RNN])
def test_without_dropout_equals_the_torch_layer(kind, batch_first):
    torch.manual_seed(0)
    reference = kind(D, H, batch_first=batch_first).double()
    ours = RecurrentDropout(cell_of(reference), batch_first=batch_first)
    x = torch.randn(N, T, D, dtype=torch.float64)
    x = x if batch_first else x.transpose(0, 1)
    for hx in (None, _state(kind, (1, N, H))):  # the whole final state, (h_n, c_n) for the LSTM
        a, b = reference(x, hx), ours(x, hx)
        _close(b[0], a[0])
        _close(b[1], a[1])
    seq, hx = torch.randn(T, D, dtype=torch.float64), _state(kind, (1, H))  # unbatched
    _close(ours(seq, hx)[0], reference(seq, hx)[0])
    _close(ours(seq, hx)[1], reference(seq, hx)[1])
    packed = pack_padded_sequence(x, torch.tensor([T, 2, 4, 1]), batch_first=batch_first, enforce_sorted=False)
    a, b = reference(packed), ours(packed)
    assert torch.equal(a[0].sorted_indices, b[0].sorted_indices)
    _close(b[0].data, a[0].data)
    _close(b[1], a[1])


def test_wraps_the_lessons_cell_too():
    torch.manual_seed(0)
    layer = RNN(D, H, batch_first=True).double()
    ours = RecurrentDropout(layer.cells[0], batch_first=True)
    x = torch.randn(N, T, D, dtype=torch.float64)
    _close(ours(x), layer(x))


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU])
def test_eval_mode_equals_torch_and_gradients_match(kind):
    torch.manual_seed(0)
    reference = kind(D, H, batch_first=True).double()
    ours = RecurrentDropout(cell_of(reference), 0.5, 0.5, batch_first=True).eval()
    x = torch.randn(N, T, D, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    weights = torch.randn(N, T, H, dtype=torch.float64)
    (ours(x)[0] * weights).sum().backward()
    (reference(x_ref)[0] * weights).sum().backward()
    _close(x.grad, x_ref.grad)
    _close(ours.cell.weight_hh.grad, reference.weight_hh_l0.grad)
    ours.train()
    assert not torch.allclose(ours(x)[0], reference(x)[0])  # training mode does drop


@pytest.mark.parametrize("cell", [nn.LSTMCell, nn.GRUCell])
def test_input_mask_is_constant_over_time_and_differs_between_sequences(cell):
    torch.manual_seed(3)
    layer = RecurrentDropout(cell(16, 8), dropout=0.5, batch_first=True)
    x = torch.randn(6, 10, 16, requires_grad=True)
    layer(x)[0].sum().backward()
    dropped = x.grad == 0  # (N, T, D): a dropped input feature gets no gradient
    assert dropped.any()
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped))  # the same features at every step
    assert len({tuple(row.tolist()) for row in dropped[:, 0]}) > 1  # other features in other sequences


def _reads(layer, x):
    """The states the cell read, divided by the states the wrapper holds: the masks, step by step."""
    reads, held, forward = [], [], layer.cell.forward

    def spy(x_t, state):
        reads.append(state[0] if isinstance(state, tuple) else state)
        out = forward(x_t, state)
        held.append(out[0] if isinstance(out, tuple) else out)
        return out

    layer.cell.forward = spy
    layer(x)
    return [r / h for r, h in zip(reads[1:], held[:-1])]


@pytest.mark.parametrize("cell, kept", [(nn.LSTMCell, 2.0), (nn.GRUCell, 1.0)])
def test_recurrent_mask_is_constant_over_time(cell, kept):
    torch.manual_seed(4)
    masks = _reads(RecurrentDropout(cell(3, 12), recurrent_dropout=0.5, batch_first=True), torch.randn(5, 8, 3))
    for mask in masks:  # LSTM: 0 or 1/(1-p) on h (c untouched); GRU: 0 or 1, it passes h on
        assert set(mask.round(decimals=4).unique().tolist()) == {0.0, kept}
        torch.testing.assert_close(mask, masks[0])
    assert len({tuple(row.tolist()) for row in masks[0]}) > 1


def test_lstm_cell_state_is_never_masked_and_is_returned():
    torch.manual_seed(5)
    reference = nn.LSTM(D, H, batch_first=True)
    ours = RecurrentDropout(cell_of(reference), recurrent_dropout=0.5, batch_first=True)
    output, (h_n, c_n) = ours(torch.randn(N, T, D))
    assert c_n.shape == (1, N, H) and not torch.equal(c_n, h_n)
    torch.testing.assert_close(h_n[0], output[:, -1])


def test_per_step_masks_change_from_step_to_step():
    torch.manual_seed(5)
    masks = _reads(RecurrentDropout(nn.LSTMCell(3, 12), recurrent_dropout=0.5, per_step=True), torch.randn(8, 5, 3))
    assert not all(torch.equal(m, masks[0]) for m in masks)


def test_padding_never_changes_an_answer():
    torch.manual_seed(6)
    layer = RecurrentDropout(nn.LSTMCell(D, H), 0.3, 0.3, batch_first=True).eval()
    seq, other = torch.randn(1, 4, D), torch.randn(1, T, D)
    padded = torch.cat([torch.cat([seq, torch.full((1, T - 4, D), 9.0)], 1), other])
    out, (h_n, c_n) = layer(pack_padded_sequence(padded, torch.tensor([4, T]), batch_first=True, enforce_sorted=False))
    out, _ = pad_packed_sequence(out, batch_first=True)
    alone, (h_a, c_a) = layer(seq)
    torch.testing.assert_close(out[:1, :4], alone)
    torch.testing.assert_close(c_n[:, :1], c_a)
    model = Forecaster(layer).eval()
    torch.testing.assert_close(model(padded, torch.tensor([4, T]))[:1], model(seq))


def test_sequence_mask_is_inverted_dropout():
    torch.manual_seed(6)
    mask = sequence_mask(2000, 50, 0.2, torch.zeros(1))
    assert set(mask.unique().tolist()) == {0.0, 1.25}
    assert abs(mask.mean().item() - 1.0) < 0.01


@pytest.mark.parametrize("x, message", [
    (torch.zeros(32, 64, 3), r"expected input of shape \(N, T, D\) = \(\*, \*, 8\) or unbatched \(T, D\), got \(32, 64, 3\)"),
    (torch.zeros(2, 3, 8, dtype=torch.long), r"floating-point"),
    (torch.zeros(2, 0, 8), r"at least one time step"),
    ([[0.0] * 8], r"got list"),
])
def test_bad_input_gets_a_clear_error(x, message):
    with pytest.raises(ValueError, match=message):
        RecurrentDropout(nn.GRUCell(8, 4), batch_first=True)(x)


def test_bad_options_get_a_clear_error():
    with pytest.raises(ValueError, match="0 <= recurrent_dropout < 1"):
        RecurrentDropout(nn.GRUCell(8, 4), recurrent_dropout=1.0)
    with pytest.raises(ValueError, match=r"\(1, N, H\) = \(1, 2, 4\), got \(2, 4\)"):
        RecurrentDropout(nn.GRUCell(8, 4), batch_first=True)(torch.zeros(2, 3, 8), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\(N, T, D\) = \(\*, 40, 8\), got \(2, 39, 8\)"):
        Dense(40, 8)(torch.zeros(2, 39, 8))


def test_short_weather_training_learns_and_is_reproducible():
    data = weather_forecast(step=3)
    (xt, yt), (xv, yv) = data.train, data.val
    runs = []
    for _ in range(2):
        pl.seed_everything(0, verbose=False)
        model = Forecaster(RecurrentDropout(nn.GRUCell(8, 16), 0.2, 0.2, batch_first=True))
        system = ForecastSystem(model, target_std=data.temp_std)
        g = torch.Generator().manual_seed(0)
        trainer = lk.trainer(max_epochs=2)
        lk._fit(trainer, system, DataLoader(TensorDataset(xt[::16], yt[::16]), batch_size=128, shuffle=True,
                                            generator=g), DataLoader(TensorDataset(xv[::8], yv[::8]), batch_size=512))
        runs.append(float(trainer.callback_metrics["val_mae"]))
    assert runs[0] == runs[1]  # seeded and deterministic
    assert runs[0] < 5.0  # °C; predicting the training mean temperature is off by about 9


# ---- the system is complete: the checks every LightningModule of the course passes ----

def _windows():
    torch.manual_seed(0)
    x = torch.randn(16, 5, 3)
    return TensorDataset(x, torch.tensor([5, 3, 4, 2] * 4), x[:, :, 0].sum(1, keepdim=True))


def _model():
    return Forecaster(RecurrentDropout(nn.LSTMCell(3, 6), 0.2, 0.2, batch_first=True))


def _system():
    pl.seed_everything(0, verbose=False)
    return ForecastSystem(_model(), lr=0.01)


def test_predict():
    lk.check_predict(_system, DataLoader(_windows(), batch_size=4))


def test_checkpoint_round_trip(tmp_path):
    loader = DataLoader(_windows(), batch_size=4)
    lk.check_checkpoint(_system, loader, loader, tmp_path, model=_model())


def _plain_system():
    # without dropout: the masks come from the global random state, which a checkpoint does not hold
    # and which differs from process to process
    pl.seed_everything(0, verbose=False)
    return ForecastSystem(Forecaster(RecurrentDropout(nn.LSTMCell(3, 6), batch_first=True)), lr=0.01)


def test_resume_equals_uninterrupted(tmp_path):
    system = _plain_system
    loader = DataLoader(_windows(), batch_size=4)
    lk.check_resume(system, loader, loader, tmp_path)


def test_ddp_two_processes_equal_one(tmp_path):
    lk.check_ddp(_plain_system, _windows(), batch_size=8, tmp_path=tmp_path)


def test_bf16_mixed_on_cpu():
    lk.check_bf16(_system, DataLoader(_windows(), batch_size=4))


def test_gpu():
    lk.check_gpu(_system, DataLoader(_windows(), batch_size=4))


def test_swap_torch_layer_for_the_wrapper_inside_the_system():
    torch.manual_seed(0)
    system = ForecastSystem(Forecaster(nn.LSTM(3, 6, batch_first=True)))
    x, lengths = torch.randn(4, 5, 3), torch.tensor([5, 3, 4, 1])
    lk.check_swap(system, {nn.LSTM: lambda m: RecurrentDropout(cell_of(m), 0.5, 0.5, batch_first=True).train(m.training)}, (x, lengths))


def test_command_line_help_and_config(tmp_path):
    run = lambda *a: lk.run_script(recurrent_dropout.__file__, *a)  # noqa: E731
    help_text = run("fit", "--help")
    assert help_text.returncode == 0 and "--model.model" in help_text.stdout
    config = run("fit", "--print_config")
    assert "class_path: recurrent_dropout.RecurrentDropout" in config.stdout and "torch.nn.GRUCell" in config.stdout


def test_command_line_trains_and_checkpoint_loads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recurrent_dropout.main(["fit", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
                            "--trainer.enable_model_summary", "false", "--trainer.limit_train_batches", "2"])
    (path,) = tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt")
    system = ForecastSystem.load_from_checkpoint(path)  # the model is rebuilt from its saved class path
    assert isinstance(system.model.rnn.cell, nn.GRUCell)


# ---- the benchmark that makes the page's tables ----

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
    _benchmark().main(["--quick", "--lesson", "recurrent_dropout", "--out", str(tmp_path)])
    for name in ("forecast-recurrent-dropout.md", "forecast-speed.md"):
        quick = _table_shape((tmp_path / name).read_text(encoding="utf-8"))
        committed = _table_shape((ROOT / "benchmarks" / "results" / name).read_text(encoding="utf-8"))
        assert quick == committed, name


def _check_claims(runs, tol=None):
    """The page's numbers (``tol=None``: as rounded there) and conclusions, for a run's results."""
    base = runs["common_sense"]
    dense, gru, drop, step, lstm = (runs[n] for n in ("dense", "gru", "gru_dropout", "gru_dropout_per_step", "lstm_dropout"))
    rows = [dense, gru, drop, step, lstm]
    # the numbers the page quotes, rounded as in the table
    quoted = {("dense", "train_mae_last"): 1.03, ("dense", "val_mae_best"): 2.62, ("gru", "val_mae_best"): 2.40,
              ("gru", "val_mae_last"): 2.67, ("gru", "test_mae"): 3.42, ("gru_dropout", "val_mae_best"): 2.29,
              ("gru_dropout", "val_mae_last"): 2.32, ("gru_dropout", "train_mae_last"): 2.67,
              ("gru_dropout", "test_mae"): 3.49, ("gru_dropout_per_step", "val_mae_best"): 4.87,
              ("gru_dropout_per_step", "train_mae_last"): 2.58, ("lstm_dropout", "val_mae_best"): 2.45,
              ("lstm_dropout", "test_mae"): 3.35}
    quoted[("common_sense", "val")] = 2.51
    check_quoted({key: runs[key[0]][key[1]] for key in quoted}, quoted, tol)
    assert (gru["epochs"], drop["epochs"]) == (20, 30)
    assert (gru["best_epoch"], drop["best_epoch"]) == (4, 23) or tol is not None  # the page names them
    assert (lstm["parameters"], gru["parameters"]) == (5409, 4065)
    assert lstm["parameters"] - 4 * 32 == 4 * (32 * 8 + 32 * 32 + 32) + 33  # Keras's LSTM(32), one bias, + the output layer
    # the dense model memorises: lowest training MAE, validation worse than common sense
    assert dense["train_mae_last"] < min(r["train_mae_last"] for r in rows[1:])
    assert dense["val_mae_best"] > base["val"]
    # the GRU without dropout overfits: an early best epoch, validation rises after it
    assert gru["best_epoch"] <= gru["epochs"] // 4 and gru["val_mae_last"] > gru["val_mae_best"] + 0.2
    # one mask per sequence delays the overfitting: a late best epoch, the last epoch close to the best
    assert drop["best_epoch"] > 0.7 * drop["epochs"] and drop["val_mae_last"] - drop["val_mae_best"] < 0.1
    # ... and is the lowest on validation, but only a little below the GRU without dropout, and not better on test
    assert drop["val_mae_best"] == min(r["val_mae_best"] for r in rows)
    assert 0 < gru["val_mae_best"] - drop["val_mae_best"] < 0.15 and drop["test_mae"] > gru["test_mae"]
    # new masks every step: far worse, worse than common sense, while the training MAE (masks on) stays low
    assert step["val_mae_best"] > base["val"] + 1 and step["val_mae_best"] > 1.5 * drop["val_mae_best"]
    assert step["val_mae_best"] - step["train_mae_last"] > 2  # the network without masks is not the one trained
    assert drop["val_mae_last"] < drop["train_mae_last"]  # one mask per sequence: no such gap
    # the LSTM: behind both GRUs on validation, lowest on test; test orders the three the other way, ~0.1 °C apart
    assert lstm["val_mae_best"] > max(gru["val_mae_best"], drop["val_mae_best"])
    assert lstm["test_mae"] == min(r["test_mae"] for r in rows)
    assert lstm["test_mae"] < gru["test_mae"] < drop["test_mae"] and drop["test_mae"] - lstm["test_mae"] < 0.2
    # the best model on validation is 9% better than common sense there; the test gain is larger
    gain_val = 1 - drop["val_mae_best"] / base["val"]
    gain_test = 1 - drop["test_mae"] / base["test"]
    assert (round(100 * gain_val) == 9 or tol is not None and abs(100 * gain_val - 9) < 2) and gain_test > gain_val
    # the published Jena reference quoted on the page: about 7% (baseline 2.44 / 2.62, best 2.27 / 2.45)
    assert round(1 - 2.27 / 2.44, 2) == 0.07 and round(1 - 2.45 / 2.62, 2) == 0.06
    # speed: the only claim is the order, per-step masks cost more than one mask per sequence
    speed = {(r["cell"], r["variant"]): r for r in runs["speed"]}
    for cell in ("gru", "lstm"):
        assert speed[cell, "per_step"]["ms"] > speed[cell, "per_sequence"]["ms"]
        assert speed[cell, "per_step"]["ratio"] > speed[cell, "per_sequence"]["ratio"]


def test_the_pages_claims_hold_in_the_committed_full_runs():
    _check_claims(committed("forecast-curves.json"))


@pytest.mark.slow
def test_the_pages_claims_hold_in_a_fresh_full_run(tmp_path):
    _benchmark().main(["--lesson", "recurrent_dropout", "--fresh", "--out", str(tmp_path)])
    _check_claims(json.loads((tmp_path / "forecast-curves.json").read_text(encoding="utf-8")), tol=0.05)
