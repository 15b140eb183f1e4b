"""Tests of lessons/bidirectional.py: the layer equals torch.nn.LSTM/GRU(bidirectional=True) in
values and gradients with copied weights; the backward direction at position t has read exactly
x_t..x_T; bad input is refused clearly; on a toy that needs the right context, both directions
beat one; the benchmark's quick mode writes the committed table formats."""

import importlib.util
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lessons import bidirectional
from lessons.bidirectional import Bidirectional, DirectionalRNN, DirectionForecaster, Tagger, TaggerSystem, fit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _pair(kind="lstm", D=5, H=7):
    torch.manual_seed(0)
    reference = (nn.LSTM if kind == "lstm" else nn.GRU)(D, H, batch_first=True, bidirectional=True).double()
    return reference, Bidirectional.from_torch(reference)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_equals_torch_bidirectional(kind):
    reference, ours = _pair(kind)
    x = torch.randn(4, 9, 5, dtype=torch.float64)
    hs_ref, h_n = reference(x)
    h_n = h_n[0] if kind == "lstm" else h_n  # (2, N, H): forward's h_T, backward's h_1
    hs, h_last = ours(x)
    torch.testing.assert_close(hs, hs_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(h_last, torch.cat([h_n[0], h_n[1]], dim=-1), rtol=0, atol=1e-12)


def test_gradients_equal_torch():
    reference, ours = _pair("lstm")
    x = torch.randn(3, 11, 5, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    weights = torch.randn(3, 11, 14, dtype=torch.float64)
    (ours(x)[0] * weights).sum().backward()
    (reference(x_ref)[0] * weights).sum().backward()
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=0, atol=1e-12)  # noqa: E731
    close(x.grad, x_ref.grad)
    close(ours.backward_rnn.cell.W_hh.grad, reference.weight_hh_l0_reverse.grad.T)
    close(ours.forward_rnn.cell.W_xh.grad, reference.weight_ih_l0.grad.T)


def test_each_direction_sees_only_its_side():
    torch.manual_seed(1)
    layer = Bidirectional(3, 4)
    x = torch.randn(1, 8, 3, requires_grad=True)
    t = 5
    hs, _ = layer(x)
    grad_f = torch.autograd.grad(hs[0, t, :4].sum(), x, retain_graph=True)[0][0].abs().sum(-1)  # (T,)
    grad_b = torch.autograd.grad(hs[0, t, 4:].sum(), x)[0][0].abs().sum(-1)
    assert (grad_f[: t + 1] > 0).all() and (grad_f[t + 1 :] == 0).all()  # forward: x_1..x_t
    assert (grad_b[t:] > 0).all() and (grad_b[:t] == 0).all()  # backward: x_t..x_T


def test_reversed_reader_equals_forward_reader_on_the_flipped_sequence():
    torch.manual_seed(2)
    backward = DirectionalRNN(3, 4, "gru", reverse=True)
    forward = DirectionalRNN(3, 4, "gru")
    forward.load_state_dict(backward.state_dict())
    x = torch.randn(2, 6, 3)
    hs_b, last_b = backward(x)
    hs_f, last_f = forward(x.flip(1))
    torch.testing.assert_close(hs_b, hs_f.flip(1))
    torch.testing.assert_close(last_b, last_f)


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
        Bidirectional(8, 4)(x)


def test_bad_options_get_a_clear_error():
    with pytest.raises(ValueError, match="direction"):
        DirectionForecaster(8, 4, direction="sideways")
    with pytest.raises(ValueError, match="cell"):
        DirectionalRNN(8, 4, cell="rnn")
    with pytest.raises(ValueError, match=r"tokens of shape \(N, T\)"):
        Tagger(10, 3)(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="bidirectional=True"):
        Bidirectional.from_torch(nn.LSTM(3, 4, batch_first=True))


def _toy_accuracy(direction):
    tokens, tags = bidirectional.toy_tagging()
    g = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(tokens[:384], tags[:384]), batch_size=64, shuffle=True, generator=g)
    val = DataLoader(TensorDataset(tokens[384:], tags[384:]), batch_size=128)
    pl.seed_everything(0, verbose=False)
    system = TaggerSystem(6, 6, 16, 16, direction)
    trainer = fit(system, train, val, max_epochs=15)
    return float(trainer.callback_metrics["val_acc"])


def test_right_context_task_needs_the_backward_direction():
    forward, both = _toy_accuracy("forward"), _toy_accuracy("both")
    assert both > 0.99
    assert forward < 0.97  # a 2 followed by 3 cannot be told from a 2 followed by anything else


def test_command_line_runs(capsys):
    bidirectional.main(["--epochs", "1", "--no-progress"])
    assert "both: validation accuracy" in capsys.readouterr().out


def _benchmark():
    spec = importlib.util.spec_from_file_location("forecasting_benchmark", ROOT / "benchmarks" / "forecasting.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table_shape(text):
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("|")]
    return lines[0].startswith("`python benchmarks/forecasting.py"), rows[:2], [r.split("|")[1] for r in rows[2:]]


def test_benchmark_quick_mode_writes_the_committed_table_formats(tmp_path):
    _benchmark().main(["--quick", "--lesson", "bidirectional", "--out", str(tmp_path)])
    for name in ("forecast-bidirectional.md", "pos-tagging.md"):
        quick = _table_shape((tmp_path / name).read_text(encoding="utf-8"))
        assert quick == _table_shape((ROOT / "benchmarks" / "results" / name).read_text(encoding="utf-8")), name


@pytest.mark.slow
def test_benchmark_full_run_regenerates_the_tables(tmp_path):
    results = _benchmark().main(["--lesson", "bidirectional", "--fresh", "--out", str(tmp_path)])
    assert results["gru_reversed"]["val_mae_best"] > results["gru"]["val_mae_best"]


def test_the_pages_claims_hold_in_the_committed_full_runs():
    import json

    runs = json.loads((ROOT / "benchmarks" / "results" / "forecast-curves.json").read_text(encoding="utf-8"))
    base = runs["common_sense"]
    # forecasting: reading backwards is worse than forwards, and worse than common sense
    for split, key in (("val", "val_mae_best"), ("test", "test_mae")):
        assert runs["gru_reversed"][key] > runs["gru"][key]
        assert runs["gru_reversed"][key] > base[split]
    # both directions: better than forwards on validation, worse on test; an early best epoch, then overfitting
    assert runs["bigru"]["val_mae_best"] < runs["gru"]["val_mae_best"]
    assert runs["bigru"]["test_mae"] > runs["gru"]["test_mae"]
    assert runs["bigru"]["best_epoch"] <= 5 and runs["bigru"]["val_mae_last"] > runs["bigru"]["val_mae_best"]
    assert runs["bigru"]["parameters"] > 1.9 * runs["gru"]["parameters"]
    # tagging: each direction beats the context-free baseline, both directions beat each one
    tags = runs["pos_tagging"]
    for split in ("val_acc", "test_acc"):
        assert min(tags["forward"][split], tags["backward"][split]) > tags["majority"][split]
        assert tags["both"][split] > max(tags["forward"][split], tags["backward"][split])
