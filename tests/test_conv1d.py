"""Tests of lessons/conv1d.py: the layer from the definition equals torch.nn.Conv1d in values and
gradients over a grid of (T, kernel, stride, padding, dilation); the output-length formula holds;
pooling equals torch's; the pooled features of a shifted pattern are the same; the receptive field
formula matches the gradient's support; the hybrid's shapes are the notes'; bad input is refused
with a clear error; short seeded trainings learn and repeat; the benchmarks' quick modes write the
committed table formats, and the claims the page makes hold in the committed full runs."""

import importlib.util
import itertools
import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lessons import conv1d
from lessons.conv1d import (
    Conv1D,
    ConvClassifier,
    ConvForecaster,
    ForecastSystem,
    HybridClassifier,
    HybridForecaster,
    KeepBest,
    LSTMClassifier,
    MaxPool1D,
    TextSystem,
    conv1d_output_length,
    fit,
    receptive_field,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


GRID = [(T, k, s, p, d) for T, k, s, p, d in itertools.product((7, 20), (1, 3, 5), (1, 2, 3), (0, 2), (1, 2))
        if conv1d_output_length(T, k, s, p, d) >= 1]


@pytest.mark.parametrize("T, k, s, p, d", GRID)
def test_conv_equals_torch_in_values_and_gradients(T, k, s, p, d):
    torch.manual_seed(0)
    reference = nn.Conv1d(3, 4, k, stride=s, padding=p, dilation=d).double()
    ours = Conv1D.from_torch(reference)
    x = torch.randn(2, T, 3, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    y, y_ref = ours(x), reference(x_ref.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)
    weights = torch.randn_like(y)
    (y * weights).sum().backward()
    (y_ref * weights).sum().backward()
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=0, atol=1e-12)  # noqa: E731
    close(x.grad, x_ref.grad)
    close(ours.W.grad, reference.weight.grad)
    close(ours.b.grad, reference.bias.grad)


def test_output_length_formula_matches_torch_on_a_grid():
    checked = 0
    for T, k, s, p, d in itertools.product(range(1, 25), (1, 2, 3, 5, 7), (1, 2, 3, 4), (0, 1, 3), (1, 2, 3)):
        expected = conv1d_output_length(T, k, s, p, d)
        reference = nn.Conv1d(1, 1, k, stride=s, padding=p, dilation=d)
        if expected < 1:
            with pytest.raises(RuntimeError):
                reference(torch.zeros(1, 1, T))
            with pytest.raises(ValueError, match="time steps"):
                Conv1D(1, 1, k, s, p, d)(torch.zeros(1, T, 1))
            continue
        assert reference(torch.zeros(1, 1, T)).shape[-1] == expected
        checked += 1
    assert checked > 3000


def test_gradcheck():
    torch.manual_seed(0)
    layer = Conv1D(2, 3, 3, stride=2, padding=1, dilation=2).double()
    x = torch.randn(2, 9, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


def test_no_bias_and_float32():
    torch.manual_seed(0)
    reference = nn.Conv1d(8, 16, 5, bias=False)
    ours = Conv1D.from_torch(reference)
    assert ours.b is None
    x = torch.randn(4, 30, 8)
    torch.testing.assert_close(ours(x), reference(x.transpose(1, 2)).transpose(1, 2), rtol=1e-5, atol=1e-5)


def test_causal_padding_keeps_length_and_never_reads_the_future():
    torch.manual_seed(0)
    layer = Conv1D(2, 3, 3, padding="causal", dilation=2).double()
    x = torch.randn(1, 12, 2, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    assert y.shape == (1, 12, 3)
    for t in range(12):
        (grad,) = torch.autograd.grad(y[0, t].sum(), x, retain_graph=True)
        assert grad[0, t + 1:].abs().sum() == 0  # nothing after t
        assert grad[0, t].abs().sum() > 0
    # the same numbers as torch's convolution with zeros on the front only
    reference = nn.Conv1d(2, 3, 3, dilation=2).double()
    with torch.no_grad():
        reference.weight.copy_(layer.W)
        reference.bias.copy_(layer.b)
    expected = reference(F.pad(x.transpose(1, 2), (4, 0))).transpose(1, 2)
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("m, T", [(1, 5), (2, 9), (4, 100), (3, 3)])
def test_max_pool_equals_torch(m, T):
    x = torch.randn(3, T, 5)
    expected = F.max_pool1d(x.transpose(1, 2), m).transpose(1, 2)
    torch.testing.assert_close(MaxPool1D(m)(x), expected, rtol=0, atol=0)


def _with_pattern(t, pattern, T=60):
    x = torch.zeros(1, T, pattern.shape[-1], dtype=torch.float64)
    x[0, t:t + len(pattern)] = pattern
    return x


@pytest.mark.parametrize("shift", [1, 7, 30])
def test_global_max_of_a_shifted_pattern_is_the_same(shift):
    torch.manual_seed(shift)
    conv = Conv1D(3, 16, 5).double()
    pattern = torch.randn(6, 3, dtype=torch.float64)
    a, b = conv(_with_pattern(10, pattern)), conv(_with_pattern(10 + shift, pattern))
    torch.testing.assert_close(a[:, 6:16], b[:, 6 + shift:16 + shift], rtol=0, atol=1e-12)  # moved, not changed
    torch.testing.assert_close(a.amax(dim=1), b.amax(dim=1), rtol=0, atol=1e-12)


def test_the_conv_forecaster_cannot_tell_early_from_recent():
    # Two pooling layers of 2: a shift by a multiple of 4 keeps the pooled blocks aligned, and
    # both places keep the pattern's whole receptive field (32 steps) inside the sequence.
    torch.manual_seed(0)
    model = ConvForecaster(8).double().eval()
    pattern = torch.randn(5, 8, dtype=torch.float64)
    early, recent = _with_pattern(40, pattern, T=200), _with_pattern(160, pattern, T=200)
    torch.testing.assert_close(model(early), model(recent), rtol=0, atol=1e-12)
    lstm = conv1d.LSTMForecaster(8).double().eval()  # its last state knows how recent the pattern is
    assert (lstm(early) - lstm(_with_pattern(195, pattern, T=200))).abs().item() > 1e-4


@pytest.mark.parametrize("layers", [
    [(5, 1, 1)],
    [(5, 1, 1), (4, 4, 1), (5, 1, 1)],
    [(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)],
    [(3, 2, 1), (3, 2, 1), (2, 1, 3)],
])
def test_receptive_field_is_the_support_of_the_gradient(layers):
    torch.manual_seed(0)
    stack = nn.Sequential(*(Conv1D(1, 1, k, stride=s, dilation=d) for k, s, d in layers)).double()
    x = torch.randn(1, 200, 1, dtype=torch.float64, requires_grad=True)
    stack(x)[0, 1, 0].backward()
    seen = x.grad[0, :, 0].nonzero().flatten()
    assert seen.max() - seen.min() + 1 == receptive_field(layers)  # the span (dilations may leave holes)


def test_the_hybrid_has_the_notes_shapes():
    model = HybridClassifier()
    tokens = torch.randint(0, 5000, (6, 100))
    assert model.front(model.embed(tokens)).shape == (6, 24, 64)
    assert model(tokens).shape == (6, 1)
    assert HybridClassifier(num_classes=5)(tokens).shape == (6, 5)
    assert ConvClassifier()(tokens).shape == (6, 1)
    assert LSTMClassifier(num_classes=5)(tokens).shape == (6, 5)
    assert HybridForecaster(8)(torch.randn(6, 40, 8)).shape == (6, 1)
    assert HybridForecaster(8).front(torch.randn(6, 40, 8)).shape == (6, 18, 32)  # the page: 40 → 18 steps
    assert model.front(model.embed(torch.randint(0, 5000, (2, 400)))).shape == (2, 99, 64)  # 400 words → 99
    assert ConvForecaster(8)(torch.randn(6, 40, 8)).shape == (6, 1)


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.zeros(32, 64), r"expected x of shape \(N, T, D\) = \(\*, \*, 8\), got \(32, 64\)"),
        (torch.zeros(2, 30, 5), r"expected x of shape \(N, T, D\) = \(\*, \*, 8\), got \(2, 30, 5\)"),
        (torch.zeros(2, 30, 8, dtype=torch.long), r"floating-point"),
        (torch.zeros(2, 3, 8), r"expected at least 5 time steps for kernel_size=5"),
        ([[0.0] * 8], r"expected x to be a torch.Tensor"),
    ],
)
def test_bad_input_gets_a_clear_error(x, message):
    with pytest.raises(ValueError, match=message):
        ConvForecaster(8)(x)
    with pytest.raises(ValueError, match=message):
        HybridForecaster(8)(x)


def test_bad_tokens_and_options_get_a_clear_error():
    with pytest.raises(ValueError, match=r"expected word ids of shape \(N, T\) and an integer dtype, got \(2, 100, 1\)"):
        HybridClassifier()(torch.zeros(2, 100, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="integer dtype"):
        ConvClassifier()(torch.zeros(2, 100))
    with pytest.raises(ValueError, match=r"word ids in \[0, 5000\), got values in \[0, 5000\]"):
        HybridClassifier()(torch.tensor([[0, 5000]]))
    with pytest.raises(ValueError, match="pool_size = 4 time steps, got T = 3"):
        MaxPool1D(4)(torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match=r"expected x of shape \(N, T, C\)"):
        MaxPool1D(2)(torch.zeros(5, 4))
    for kwargs, message in (({"kernel_size": 0}, "kernel_size >= 1"), ({"stride": 0}, "stride >= 1"),
                            ({"dilation": 1.5}, "integer dilation"), ({"padding": "same"}, "'causal'")):
        with pytest.raises(ValueError, match=message):
            Conv1D(2, 3, **{"kernel_size": 3, **kwargs})
    with pytest.raises(ValueError, match="pool_size >= 1"):
        MaxPool1D(0)
    with pytest.raises(ValueError, match=r"one of \['conv', 'hybrid', 'lstm'\], got 'gru'"):
        ForecastSystem("gru")
    with pytest.raises(ValueError, match="groups=1"):
        Conv1D.from_torch(nn.Conv1d(4, 4, 3, groups=2))


def _keyword_data(N=600, T=60, V=50, seed=0):
    """Label 1 when word 7 occurs anywhere: a pattern whose position does not matter."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(8, V, (N, T), generator=g)
    y = torch.randint(0, 2, (N,), generator=g)
    where = torch.randint(0, T, (N,), generator=g)
    x[y == 1, where[y == 1]] = 7
    return x, y


def _text_run(kind):
    x, y = _keyword_data()
    g = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(x[:500], y[:500]), batch_size=50, shuffle=True, generator=g)
    val = DataLoader(TensorDataset(x[500:], y[500:]), batch_size=100)
    pl.seed_everything(0, verbose=False)
    sizes = {"hidden_size": 16} if kind == "lstm" else {"channels": 16}
    system = TextSystem(kind, vocab_size=50, embed_size=16, dropout=0.0, lr=1e-2, **sizes)
    best = KeepBest("val_acc", "max")
    fit(system, train, val, max_epochs=5, callbacks=[best])
    return best.best


def test_the_conv_classifier_learns_a_keyword_anywhere_and_repeats():
    first = _text_run("conv")
    assert first >= 0.95
    assert _text_run("conv") == first
    assert _text_run("lstm") < 0.75  # the same budget: the LSTM has to carry the word to the end


def test_short_forecasting_run_learns():
    data = conv1d._synthetic(N=512)
    g = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(*data["train"]), batch_size=64, shuffle=True, generator=g)
    val = DataLoader(TensorDataset(*data["val"]), batch_size=256)
    pl.seed_everything(0, verbose=False)
    system = ForecastSystem("hybrid", input_size=1)
    history, best = conv1d.History(), KeepBest()
    fit(system, train, val, max_epochs=4, callbacks=[history, best])
    assert history.history["val_mae"][-1] < history.history["val_mae"][0]


def test_command_line_runs_on_series_and_on_text(tmp_path, capsys):
    conv1d.main(["--epochs", "1", "--model", "conv", "--no-progress"])
    assert "best epoch 1: val mae" in capsys.readouterr().out
    x, y = _keyword_data(N=200)
    path = tmp_path / "reviews.pt"
    torch.save({"train": (x[:120], y[:120]), "val": (x[120:160], y[120:160]), "test": (x[160:], y[160:]),
                "num_classes": 1}, path)
    conv1d.main(["--epochs", "1", "--model", "hybrid", "--data", str(path), "--no-progress"])
    assert "val acc" in capsys.readouterr().out


def test_flushing_subnormal_floats_leaves_training_unchanged():
    """The page: gradients below the smallest normal float barely move a weight, so flushing them to
    zero (what the benchmarks do, for speed) leaves a training run where it was."""

    def run(flush):
        torch.set_flush_denormal(flush)
        try:
            torch.manual_seed(0)
            lstm, head = nn.LSTM(8, 16, batch_first=True), nn.Linear(16, 1)
            optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-2)
            g = torch.Generator().manual_seed(1)
            x, y = torch.randn(32, 300, 8, generator=g), torch.randn(32, 1, generator=g)
            for _ in range(20):
                optimizer.zero_grad()
                ((head(lstm(x)[1][0][-1]) - y) ** 2).mean().backward()
                optimizer.step()
            return torch.cat([p.detach().flatten() for p in (*lstm.parameters(), *head.parameters())])
        finally:
            torch.set_flush_denormal(False)

    torch.testing.assert_close(run(True), run(False), rtol=0, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_gpu():
    data = conv1d._synthetic(N=256)
    train = DataLoader(TensorDataset(*data["train"]), batch_size=64)
    pl.seed_everything(0, verbose=False)
    system = ForecastSystem("hybrid", input_size=1)
    trainer = fit(system, train, max_epochs=2, accelerator="gpu")
    assert trainer.callback_metrics["train_mae"] < 2.0


# --- benchmarks: the quick modes write the committed formats; the committed runs hold the page's claims


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table_shape(text):
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("|")]
    return lines[0].split("`")[1].split()[:2], rows[:2], [r.count("|") for r in rows]


def test_forecasting_quick_mode_writes_the_committed_table_format(tmp_path):
    _load("forecasting").main(["--quick", "--lesson", "conv1d", "--out", str(tmp_path)])
    name = "forecast-conv1d.md"
    assert _table_shape((tmp_path / name).read_text()) == _table_shape((RESULTS / name).read_text())


def test_text_quick_mode_writes_the_committed_table_format(tmp_path):
    _load("conv_text").main(["--quick", "--out", str(tmp_path)])
    quick, committed = (tmp_path / "conv-text.md").read_text(), (RESULTS / "conv-text.md").read_text()
    assert _table_shape(quick)[:2] == _table_shape(committed)[:2]
    assert json.loads((tmp_path / "conv-text.json").read_text())["quick"] is True


def test_the_forecasting_claims_hold_in_the_committed_runs():
    runs = json.loads((RESULTS / "forecast-curves.json").read_text())
    base, conv, hybrid, lstm = runs["common_sense"], runs["conv"], runs["cnn_lstm"], runs["lstm"]
    assert conv["test_mae"] > base["test"] and min(conv["history"]["val_mae"]) > base["val"]
    assert conv["train_mae_last"] < min(lstm["train_mae_last"], hybrid["train_mae_last"], runs["gru"]["train_mae_last"])
    assert lstm["test_mae"] < hybrid["test_mae"] < conv["test_mae"]
    assert lstm["val_mae_best"] < hybrid["val_mae_best"] < conv["val_mae_best"]
    seconds = [r["seconds_per_epoch"] for r in (conv, hybrid, lstm)]
    assert max(seconds) < 1.5 * min(seconds)  # "about the same time per epoch" at T = 40


def test_the_text_claims_hold_in_the_committed_run():
    run = json.loads((RESULTS / "conv-text.json").read_text())
    assert run["quick"] is False and run["epochs"] == 30
    acc = {(T, kind): r["test_acc"] for T, runs in run["runs"].items() for kind, r in runs.items()}
    sec = {(T, kind): r["seconds_per_epoch"] for T, runs in run["runs"].items() for kind, r in runs.items()}
    quoted = {("100", "conv"): 0.816, ("400", "conv"): 0.874, ("100", "lstm"): 0.704, ("400", "lstm"): 0.623,
              ("100", "hybrid"): 0.848, ("400", "hybrid"): 0.901}  # the numbers the page quotes
    assert {key: round(acc[key], 3) for key in quoted} == quoted
    for T in ("100", "400"):
        assert acc[T, "hybrid"] > acc[T, "conv"] > acc[T, "lstm"] > run["majority_test_acc"]
        assert max(sec[T, k] for k in ("conv", "hybrid", "lstm")) < 1.5 * min(sec[T, k] for k in ("conv", "hybrid", "lstm"))
    assert acc["400", "conv"] > acc["100", "conv"] and acc["400", "lstm"] < acc["100", "lstm"]
    assert sec["400", "lstm"] < min(sec["400", "conv"], sec["400", "hybrid"])
    assert sum(r["best_epoch"] >= 25 for runs in run["runs"].values() for r in runs.values()) >= 5


@pytest.mark.slow
def test_forecasting_full_run_regenerates_the_rows(tmp_path):
    results = _load("forecasting").main(["--lesson", "conv1d", "--fresh", "--out", str(tmp_path)])
    committed = json.loads((RESULTS / "forecast-curves.json").read_text())
    for name in ("lstm", "conv", "cnn_lstm"):
        assert results[name]["val_mae_best"] == pytest.approx(committed[name]["val_mae_best"], abs=1e-6)


@pytest.mark.slow
def test_text_full_run_regenerates_the_table(tmp_path):
    result = _load("conv_text").main(["--out", str(tmp_path)])
    committed = json.loads((RESULTS / "conv-text.json").read_text())
    for T, runs in committed["runs"].items():
        for kind, run in runs.items():
            assert result["runs"][T][kind]["test_acc"] == pytest.approx(run["test_acc"], abs=1e-6)
