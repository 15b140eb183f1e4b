"""Tests of lessons/stacking.py: layers stacked with `Stacked` equal torch.nn's ``num_layers=k`` with
copied weights (GRU, LSTM, RNN, bidirectional, tensors, initial states, packed input), for torch.nn's
layers, the lessons' and recurrent dropout layers; every layer reads the whole sequence below;
bad input is refused clearly; the system is complete; the command line runs; the benchmark's quick
mode writes the committed table format."""

import json
import statistics
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
    return lk.load_script(ROOT / "benchmarks" / "forecasting.py", "forecasting_benchmark")


def _table_shape(text):
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("|")]
    return lines[0].startswith("`python benchmarks/forecasting.py"), rows[:2], [r.split("|")[1] for r in rows[2:]]


TABLES = ("forecast-stacking.md", "forecast-stacking.en.md")


def test_benchmark_quick_mode_writes_the_committed_table_format(tmp_path):
    results = _benchmark().main(["--quick", "--lesson", "stacking", "--out", str(tmp_path)])
    for name in TABLES:
        quick = _table_shape((tmp_path / name).read_text(encoding="utf-8"))
        assert quick == _table_shape((ROOT / "benchmarks" / "results" / name).read_text(encoding="utf-8")), name
    assert results["stacked_gru"]["seeds"] == [0, 1] and len(results["stacked_gru"]["runs"]) == 2  # quick: two seeds
    assert results["stacked_gru"]["train_mae_last"] < 20  # recurrent dropout 0.5 on a GRU stays finite


def test_committed_tables_are_the_rendering_of_the_committed_json():
    bench = _benchmark()
    bench._register_optional_lessons()
    curves = committed("forecast-curves.json")
    rows = [{**curves[n], "name": n} for n in bench.LESSONS["stacking"]]
    made_by = "  \n".join(sorted({r["command"] for r in rows}))  # as main() writes the header
    timed = bench.TIMED.get("stacking", frozenset())
    for lang, name in (("ko", TABLES[0]), ("en", TABLES[1])):
        text = (ROOT / "benchmarks" / "results" / name).read_text(encoding="utf-8")
        assert text == f"{made_by}\n\n{bench.results_table(rows, curves['common_sense'], timed, lang)}\n", name


def _apart(a, b, key):
    """The mean ± std ranges of two rows do not overlap (the page's rule for a difference that counts)."""
    return abs(a[key] - b[key]) > a[f"{key}_std"] + b[f"{key}_std"]


def _check_claims(runs, tol=None):
    """The page's numbers (``tol=None``: as rounded there) and conclusions, for a run's results."""
    base = runs["common_sense"]
    names = ("dense", "gru", "gru_dropout", "stacked_gru_same", "stacked_gru")
    dense, gru, drop, same, notes = (runs[n] for n in names)
    rows = [dense, gru, drop, same, notes]
    # the numbers the page quotes, rounded as in the table (mean and std over the seeds)
    quoted = {("common_sense", "val"): 2.51,
              ("stacked_gru_same", "val_mae_best"): 2.45, ("stacked_gru_same", "val_mae_best_std"): 0.03,
              ("stacked_gru_same", "test_mae"): 3.46, ("stacked_gru_same", "test_mae_std"): 0.08,
              ("stacked_gru_same", "train_mae_last"): 2.56, ("stacked_gru_same", "val_mae_last"): 2.58,
              ("gru_dropout", "val_mae_best"): 2.47, ("gru_dropout", "val_mae_best_std"): 0.23,
              ("gru_dropout", "test_mae"): 3.42, ("gru_dropout", "test_mae_std"): 0.08,
              ("gru", "test_mae"): 3.47, ("gru", "test_mae_std"): 0.13,
              ("stacked_gru", "val_mae_best"): 2.27, ("stacked_gru", "val_mae_best_std"): 0.04,
              ("stacked_gru", "test_mae"): 3.80, ("stacked_gru", "test_mae_std"): 0.13,
              ("stacked_gru", "val_mae_last"): 3.79, ("stacked_gru", "train_mae_last"): 2.58}
    check_quoted({key: runs[key[0]][key[1]] for key in quoted}, quoted, tol)
    # exercise 4: test MAE of the stack minus the single layer (both 0.2/0.2), paired by seed
    diffs = [b["test_mae"] - a["test_mae"] for a, b in zip(drop["runs"], same["runs"])]
    assert [r["seed"] for r in drop["runs"]] == [r["seed"] for r in same["runs"]] == [0, 1, 2]
    check_quoted({"seed0": diffs[0], "seed1": diffs[1], "seed2": diffs[2], "mean": statistics.mean(diffs),
                  "std": statistics.stdev(diffs)},
                 {"seed0": -0.08, "seed1": 0.04, "seed2": 0.17, "mean": 0.04, "std": 0.12}, tol)
    assert abs(statistics.mean(diffs)) < statistics.stdev(diffs) and min(diffs) < 0 < max(diffs)
    # the same budget for every row: 30 epochs, seeds 0, 1, 2
    assert all(r["epochs"] == 30 and r["seeds"] == [0, 1, 2] and len(r["runs"]) == 3 for r in rows)
    assert (same["parameters"], notes["parameters"], gru["parameters"]) == (22913, 22913, 4065)
    assert (gru["best_epochs"], drop["best_epochs"], same["best_epochs"], notes["best_epochs"]) == (
        [4, 9, 4], [27, 27, 19], [27, 21, 30], [4, 8, 4]) or tol is not None  # the page names them
    # depth alone (same dropout, epochs, seeds): more than five times the parameters, nothing gained beyond the spread
    assert same["parameters"] > 5 * drop["parameters"]
    assert not _apart(same, drop, "val_mae_best") and not _apart(same, drop, "test_mae")
    assert min(same["best_epochs"]) > max(gru["best_epochs"])  # as late as the single layer with dropout
    # exercise 3: the single GRU without dropout is best early, its best epoch spread over five epochs
    assert max(gru["best_epochs"]) <= 10 and max(gru["best_epochs"]) - min(gru["best_epochs"]) == 5 or tol is not None
    assert gru["val_mae_last"] - gru["val_mae_best"] > gru["val_mae_last_std"] + gru["val_mae_best_std"]  # overfits
    # the notes' rates: lowest mean validation MAE, below the 0.2/0.2 stack beyond the spread ...
    assert notes["val_mae_best"] == min(r["val_mae_best"] for r in rows) < base["val"]
    assert _apart(notes, same, "val_mae_best") and notes["val_mae_best"] < same["val_mae_best"]
    # ... but worse on test than the 0.2/0.2 stack and both single GRU rows, beyond the spread
    for other in (same, drop, gru):
        assert notes["test_mae"] > other["test_mae"] and _apart(notes, other, "test_mae")
    assert notes["test_mae"] == max(r["test_mae"] for r in rows[1:])  # the worst recurrent row
    # early best epochs; afterwards validation climbs while the training MAE (masks on) keeps falling
    assert max(notes["best_epochs"]) <= 10
    assert notes["val_mae_last"] - notes["val_mae_best"] > notes["val_mae_last_std"] + notes["val_mae_best_std"]
    for r in notes["runs"]:
        assert r["history"]["train_mae"][-1] < r["history"]["train_mae"][r["best_epoch"] - 1]
    # with the masks on the two stacks fit the training windows alike; without masks they are far apart
    assert not _apart(notes, same, "train_mae_last") and _apart(notes, same, "val_mae_last")
    # without the checkpoint the last epoch's model is worse than common sense on validation, for every seed
    assert all(r["val_mae_last"] > base["val"] for r in notes["runs"])


def test_the_pages_claims_hold_in_the_committed_full_runs():
    _check_claims(committed("forecast-curves.json"))


@pytest.mark.slow
def test_the_pages_claims_hold_in_a_fresh_full_run(tmp_path):
    _benchmark().main(["--lesson", "stacking", "--fresh", "--jobs", "2", "--out", str(tmp_path)])
    _check_claims(json.loads((tmp_path / "forecast-curves.json").read_text(encoding="utf-8")), tol=0.05)
