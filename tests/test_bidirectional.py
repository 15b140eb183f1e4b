"""Tests of lessons/bidirectional.py: two one-direction layers joined by `Bidirectional` equal
torch.nn's ``bidirectional=True`` with copied weights (LSTM, GRU, RNN, both layouts, initial states,
packed variable-length input); the backward layer starts at each sequence's last real step, so a
sentence alone and inside a padded batch gets the same tags; each direction sees only its side; bad
input is refused clearly; on a toy that needs the right context, both directions beat one; the system
is complete; the command line runs; the benchmark's quick mode writes the committed formats."""

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
from lessons import bidirectional
from lessons.bidirectional import Bidirectional, Reversed, Tagger, TaggerSystem, toy_tagging
from lessons.rnn import RNN
from lessons.stacking import Stacked

ROOT = Path(__file__).resolve().parents[1]
D, H, N, T = 3, 5, 4, 6


def _close(a, b):
    for x, y in zip(a, b) if isinstance(a, tuple) else ((a, b),):
        torch.testing.assert_close(x, y, atol=1e-12, rtol=0)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU, nn.RNN])
def test_equals_torch_bidirectional(kind, batch_first):
    torch.manual_seed(0)
    reference = kind(D, H, batch_first=batch_first, bidirectional=True).double()
    ours = Bidirectional.from_torch(reference)
    x = torch.randn(N, T, D, dtype=torch.float64)
    x = x if batch_first else x.transpose(0, 1)
    hx = torch.randn(2, N, H, dtype=torch.float64)
    for h0 in (None, (hx, hx.flip(0)) if kind is nn.LSTM else hx):
        a, b = reference(x, h0), ours(x, h0)
        _close(b[0], a[0])
        _close(b[1], a[1])  # h_n: forward's last step, then backward's first
    seq = torch.randn(T, D, dtype=torch.float64)  # unbatched
    _close(ours(seq)[0], reference(seq)[0])
    packed = pack_padded_sequence(x, torch.tensor([T, 2, 4, 1]), batch_first=batch_first, enforce_sorted=False)
    a, b = reference(packed), ours(packed)  # variable lengths: the backward layer starts at each last real step
    assert torch.equal(a[0].sorted_indices, b[0].sorted_indices) and torch.equal(a[0].batch_sizes, b[0].batch_sizes)
    _close(b[0].data, a[0].data)
    _close(b[1], a[1])


def test_stacked_bidirectional_lessons_layers_equal_torch():
    torch.manual_seed(0)
    reference = nn.RNN(D, H, num_layers=2, bidirectional=True, batch_first=True).double()
    layers = []
    for l, d in enumerate((D, 2 * H)):
        pair = Bidirectional(*(RNN.from_torch(nn.RNN(d, H, batch_first=True).double()) for _ in range(2)))
        for layer, suffix in ((pair.forward_layer, ""), (pair.backward_layer, "_reverse")):
            copy = nn.RNN(d, H, batch_first=True).double()
            with torch.no_grad():
                for name, p in copy.named_parameters():
                    p.copy_(getattr(reference, name.replace("_l0", f"_l{l}") + suffix))
            layer.load_state_dict(RNN.from_torch(copy).state_dict())
        layers.append(pair)
    ours = Stacked(layers)
    x = torch.randn(N, T, D, dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor([T, 2, 4, 1]), batch_first=True, enforce_sorted=False)
    _close(ours(x), reference(x))
    _close(ours(packed)[0].data, reference(packed)[0].data)
    _close(ours(packed)[1], reference(packed)[1])


def test_gradients_equal_torch():
    torch.manual_seed(0)
    reference = nn.LSTM(D, H, batch_first=True, bidirectional=True).double()
    ours = Bidirectional.from_torch(reference)
    x = torch.randn(N, T, D, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    weights = torch.randn(N, T, 2 * H, dtype=torch.float64)
    (ours(x)[0] * weights).sum().backward()
    (reference(x_ref)[0] * weights).sum().backward()
    _close(x.grad, x_ref.grad)
    _close(ours.backward_layer.weight_hh_l0.grad, reference.weight_hh_l0_reverse.grad)


def test_each_direction_sees_only_its_side():
    torch.manual_seed(1)
    layer = Bidirectional(nn.LSTM(3, 4, batch_first=True), nn.LSTM(3, 4, batch_first=True))
    x = torch.randn(1, 8, 3, requires_grad=True)
    hs, _ = layer(x)
    t = 5
    grad_f = torch.autograd.grad(hs[0, t, :4].sum(), x, retain_graph=True)[0][0].abs().sum(-1)  # (T,)
    grad_b = torch.autograd.grad(hs[0, t, 4:].sum(), x)[0][0].abs().sum(-1)
    assert (grad_f[: t + 1] > 0).all() and (grad_f[t + 1:] == 0).all()  # forward: x_1..x_t
    assert (grad_b[t:] > 0).all() and (grad_b[:t] == 0).all()  # backward: x_t..x_T


def test_reversed_reader_equals_forward_reader_on_the_flipped_sequence():
    torch.manual_seed(2)
    layer = nn.GRU(3, 4, batch_first=True)
    x = torch.randn(2, 6, 3)
    out, h_n = Reversed(layer)(x)
    out_f, h_f = layer(x.flip(1))
    torch.testing.assert_close(out, out_f.flip(1))
    torch.testing.assert_close(h_n, h_f)


@pytest.mark.parametrize("rnn", [
    lambda: Bidirectional(nn.LSTM(8, 6, batch_first=True), nn.LSTM(8, 6, batch_first=True)),
    lambda: Reversed(nn.GRU(8, 6, batch_first=True)),
    lambda: Bidirectional(RNN(8, 6, batch_first=True), RNN(8, 6, batch_first=True)),
])
def test_a_sentence_alone_and_in_a_padded_batch_gets_the_same_tags(rnn):
    torch.manual_seed(3)
    tagger = Tagger(20, 8, rnn(), 5).eval()
    sentence = torch.randint(1, 20, (1, 4))
    other = torch.randint(1, 20, (1, 7))
    batch = torch.cat([torch.cat([sentence, torch.full((1, 3), 19)], 1), other])  # any ids in the padding
    with torch.no_grad():
        alone = tagger(sentence)
        padded = tagger(batch, torch.tensor([4, 7]))
    torch.testing.assert_close(padded[:1, :4], alone)
    assert torch.equal(padded[0, :4].argmax(-1), alone[0].argmax(-1))


def test_bad_input_and_options_get_a_clear_error():
    with pytest.raises(ValueError, match="same input_size, hidden_size and batch_first"):
        Bidirectional(nn.LSTM(8, 4), nn.LSTM(8, 5))
    with pytest.raises(ValueError, match="one-layer torch.nn layer with bidirectional=True"):
        Bidirectional.from_torch(nn.LSTM(3, 4))
    with pytest.raises(ValueError, match=r"tokens of shape \(N, T\)"):
        Tagger(10, 4, nn.LSTM(4, 3, batch_first=True), 3)(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="tensor or a PackedSequence, got list"):
        Reversed(nn.GRU(3, 4))([[0.0] * 3])
    with pytest.raises(ValueError, match=r"\(N, T, D\) = \(\*, \*, 8\)"):
        Bidirectional(RNN(8, 4, batch_first=True), RNN(8, 4, batch_first=True))(torch.zeros(2, 3, 5))


def _toy_accuracy(rnn):
    tokens, lengths, tags = toy_tagging()
    g = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(tokens[:384], lengths[:384], tags[:384]), batch_size=64, shuffle=True, generator=g)
    val = DataLoader(TensorDataset(tokens[384:], lengths[384:], tags[384:]), batch_size=128)
    pl.seed_everything(0, verbose=False)
    system = TaggerSystem(Tagger(6, 16, rnn(), 6))
    trainer = lk._fit(lk.trainer(max_epochs=15), system, train, val)
    return float(trainer.callback_metrics["val_acc"])


def test_right_context_task_needs_the_backward_direction():
    lstm = lambda: nn.LSTM(16, 16, batch_first=True)  # noqa: E731
    forward, both = _toy_accuracy(lstm), _toy_accuracy(lambda: Bidirectional(lstm(), lstm()))
    assert both > 0.99
    assert forward < 0.97  # a 2 followed by 3 cannot be told from a 2 followed by anything else


# ---- the system is complete: the checks every LightningModule of the course passes ----

def _data():
    return TensorDataset(*toy_tagging(N=16, T=6, min_length=2))


def _model():
    return Tagger(6, 4, Bidirectional(nn.LSTM(4, 5, batch_first=True), nn.LSTM(4, 5, batch_first=True)), 6)


def _system():
    pl.seed_everything(0, verbose=False)
    return TaggerSystem(_model(), lr=0.01)


def test_predict():
    lk.check_predict(_system, DataLoader(_data(), batch_size=4))


def test_checkpoint_round_trip(tmp_path):
    loader = DataLoader(_data(), batch_size=4)
    lk.check_checkpoint(_system, loader, loader, tmp_path, model=_model())


def test_resume_equals_uninterrupted(tmp_path):
    loader = DataLoader(_data(), batch_size=4)
    lk.check_resume(_system, loader, loader, tmp_path)


def test_ddp_two_processes_equal_one(tmp_path):
    # equal lengths: DDP averages the processes' means, equal only when they hold as many tokens
    lk.check_ddp(_system, TensorDataset(*toy_tagging(N=16, T=6, min_length=6)), batch_size=8, tmp_path=tmp_path)


def test_bf16_mixed_on_cpu():
    lk.check_bf16(_system, DataLoader(_data(), batch_size=4))


def test_gpu():
    lk.check_gpu(_system, DataLoader(_data(), batch_size=4))


def test_swap_torch_layer_for_the_wrapper_inside_the_system():
    torch.manual_seed(0)
    system = TaggerSystem(Tagger(6, 4, nn.GRU(4, 5, batch_first=True, bidirectional=True), 6))
    tokens, lengths, _ = toy_tagging(N=4, T=6, min_length=2)
    system.model.embed.weight.requires_grad_()  # the embedding's gradient flows back through the swapped layer
    lk.check_swap(system, {nn.GRU: Bidirectional.from_torch}, (tokens, lengths))


def test_command_line_help_and_config(tmp_path):
    run = lambda *a: lk.run_script(bidirectional.__file__, *a)  # noqa: E731
    help_text = run("fit", "--help")
    assert help_text.returncode == 0 and "--model.model" in help_text.stdout
    config = run("fit", "--print_config").stdout
    assert "class_path: bidirectional.Bidirectional" in config and "class_path: bidirectional.ToyTagging" in config


def test_command_line_trains_and_checkpoint_loads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bidirectional.main(["fit", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
                        "--trainer.enable_model_summary", "false"])
    (path,) = tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt")
    system = TaggerSystem.load_from_checkpoint(path)
    assert isinstance(system.model.rnn, Bidirectional)


# ---- the benchmark that makes the page's tables ----

LESSON_ROWS = ("dense", "gru", "gru_reversed", "bigru")


def _benchmark():
    return lk.load_script(ROOT / "benchmarks" / "forecasting.py", "forecasting_benchmark", register=True)


def _table_shape(text):
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("|")]
    return lines[0].startswith("`python benchmarks/forecasting.py"), rows[:2], [r.split("|")[1] for r in rows[2:]]


TABLES = ("forecast-bidirectional.md", "forecast-bidirectional.en.md", "pos-tagging.md", "pos-tagging.en.md")


def test_benchmark_quick_mode_writes_the_committed_table_formats(tmp_path):
    _benchmark().main(["--quick", "--lesson", "bidirectional", "--out", str(tmp_path)])
    for name in TABLES:
        quick = _table_shape((tmp_path / name).read_text(encoding="utf-8"))
        assert quick == _table_shape((ROOT / "benchmarks" / "results" / name).read_text(encoding="utf-8")), name
    curves = json.loads((tmp_path / "forecast-curves.json").read_text(encoding="utf-8"))
    assert curves["bigru"]["seeds"] == [0, 1, 2][:2] and len(curves["pos_tagging"]["both"]["runs"]) == 2


def test_committed_tables_are_the_rendering_of_the_committed_runs():
    module = _benchmark()
    module._register_optional_lessons()
    curves = committed("forecast-curves.json")
    rows = [{**curves[name], "name": name} for name in module.LESSONS["bidirectional"]]
    assert [r["name"] for r in rows] == list(LESSON_ROWS)
    made_by = "  \n".join(sorted({r["command"] for r in rows}))
    results = ROOT / "benchmarks" / "results"
    for lang, suffix in (("ko", ".md"), ("en", ".en.md")):
        table = f"{made_by}\n\n{module.results_table(rows, curves['common_sense'], frozenset(), lang)}\n"
        assert (results / f"forecast-bidirectional{suffix}").read_text(encoding="utf-8") == table, lang
        tags = module.tagging_table(curves["pos_tagging"], lang)
        assert (results / f"pos-tagging{suffix}").read_text(encoding="utf-8") == tags, lang


def _ms(row, key):
    return row[key], row[f"{key}_std"]


def _apart(a, b):
    """Two (mean, std) pairs differ by more than their spreads together: the only difference the page calls one."""
    return abs(a[0] - b[0]) > a[1] + b[1]


# what the page quotes, as written there (mean ± std, rounded as in the table), for each (row, key)
QUOTED_FORECAST = {("gru", "val_mae_best"): "2.47 ± 0.07", ("gru", "test_mae"): "3.47 ± 0.13",
                   ("gru_reversed", "val_mae_best"): "2.95 ± 0.15", ("gru_reversed", "test_mae"): "4.23 ± 0.33",
                   ("bigru", "val_mae_best"): "2.33 ± 0.01", ("bigru", "test_mae"): "3.69 ± 0.10"}
QUOTED_TAGGING = {("both", "test_acc"): "0.893 ± 0.010", ("backward", "test_acc"): "0.866 ± 0.003",
                  ("forward", "test_acc"): "0.883 ± 0.008"}


def _as_numbers(quoted):
    out = {}
    for (row, key), text in quoted.items():
        mean, std = map(float, text.split(" ± "))
        out[row, key], out[row, f"{key}_std"] = mean, std
    return out


def _check_claims(runs, tol=None):
    """The page's numbers (``tol=None``: as rounded there) and conclusions, for a run's results.
    A difference is claimed only where the two means differ by more than the two standard deviations together."""
    base = runs["common_sense"]
    gru, back, both = runs["gru"], runs["gru_reversed"], runs["bigru"]
    quoted = _as_numbers(QUOTED_FORECAST) | {("bigru", "val_mae_last"): 2.74}
    check_quoted({key: runs[key[0]][key[1]] for key in quoted}, quoted, tol)
    check_quoted({"val": base["val"], "test": base["test"]}, {"val": 2.51, "test": 4.00}, tol)
    # the same budget for every row: 30 epochs, seeds 0, 1, 2
    for name in LESSON_ROWS:
        assert runs[name]["epochs"] == 30 and runs[name]["seeds"] == [0, 1, 2], name
    # reading backwards: worse than forward on both sets beyond the spread; worse than common sense on
    # validation beyond the spread; on test its mean is above common sense, within its spread
    for key in ("val_mae_best", "test_mae"):
        assert back[key] > gru[key] and _apart(_ms(back, key), _ms(gru, key)), key
    assert back["val_mae_best"] - back["val_mae_best_std"] > base["val"]
    assert back["test_mae"] > base["test"] > back["test_mae"] - back["test_mae_std"]
    # both directions: the lowest validation MAE of the table, below forward beyond the spread; not lower on test
    assert both["val_mae_best"] == min(runs[name]["val_mae_best"] for name in LESSON_ROWS)
    assert both["val_mae_best"] < gru["val_mae_best"] and _apart(_ms(both, "val_mae_best"), _ms(gru, "val_mae_best"))
    assert both["test_mae"] > gru["test_mae"]
    # early best epochs in every seed, then the validation MAE rises beyond the spread: overfitting
    assert both["best_epochs"] == [2, 6, 4] or (tol is not None and max(both["best_epochs"]) <= 10)
    assert _apart(_ms(both, "val_mae_last"), _ms(both, "val_mae_best")) and both["val_mae_last"] > both["val_mae_best"]
    assert both["parameters"] > 1.9 * gru["parameters"]
    # tagging: 3 seeds, 30 epochs
    tags = runs["pos_tagging"]
    check_quoted({key: tags[key[0]][key[1]] for key in _as_numbers(QUOTED_TAGGING)}, _as_numbers(QUOTED_TAGGING), tol,
                 digits=3)
    for direction in ("forward", "backward", "both"):
        assert tags[direction]["epochs"] == 30 and [r["seed"] for r in tags[direction]["runs"]] == [0, 1, 2]
    for split in ("val_acc", "test_acc"):
        tag = lambda d: _ms(tags[d], split)  # noqa: E731
        # each one direction beats the context-free baseline beyond its spread
        for direction in ("forward", "backward"):
            assert tags[direction][split] - tags[direction][f"{split}_std"] > tags["majority"][split], (direction, split)
        # both directions: the highest mean, beyond the spread over right to left, within it over left to right
        assert tags["both"][split] > max(tags["forward"][split], tags["backward"][split])
        assert _apart(tag("both"), tag("backward")) and not _apart(tag("both"), tag("forward")), split
    # eight of the nine runs peak at one of the last two epochs: still improving at 30 epochs
    best = [e for d in ("forward", "backward", "both") for e in tags[d]["best_epochs"]]
    assert sum(e >= 29 for e in best) == 8 or (tol is not None and sum(e >= 25 for e in best) >= 6)


def test_the_pages_claims_hold_in_the_committed_full_runs():
    _check_claims(committed("forecast-curves.json"))
    for page in ("bidirectional.md", "bidirectional.en.md"):
        text = (ROOT / "docs" / page).read_text(encoding="utf-8")
        missing = [q for q in (*QUOTED_FORECAST.values(), *QUOTED_TAGGING.values(), "2.74", "2.51", "4.00")
                   if q not in text]
        assert not missing, (page, missing)


@pytest.mark.slow
def test_the_pages_claims_hold_in_a_fresh_full_run(tmp_path):
    _benchmark().main(["--lesson", "bidirectional", "--fresh", "--jobs", "2", "--out", str(tmp_path)])
    _check_claims(json.loads((tmp_path / "forecast-curves.json").read_text(encoding="utf-8")), tol=0.05)
