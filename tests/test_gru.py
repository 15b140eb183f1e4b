"""Tests of lessons/gru.py: the from-scratch GRU is a drop-in for torch.nn.GRU (values, gradients,
packed and unbatched input, padding), the notes' variant is a different function of the same
weights, bad input is refused clearly, the system is complete (predict, checkpoint, resume, DDP,
bf16) and a short training reaches its target."""

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import layer_checks as lc
import lightning_checks as lk
from lessons import gru
from lessons.datasets import multiplication_problem
from lessons.gru import GRU, GRUCell, GRUSystem, ManyToOne, MultiplicationData, notes_gru_step


@pytest.mark.parametrize("config", lc.CONFIGS, ids=lc.config_id)
def test_layer_equals_torch_gru(config):
    lc.check_equal(GRU, nn.GRU, **config)


@pytest.mark.parametrize("config", lc.CONFIGS, ids=lc.config_id)
def test_layer_gradients_equal_torch_gru(config):
    lc.check_gradients(GRU, nn.GRU, **config)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_padding_never_changes_an_answer(num_layers, bidirectional):
    lc.check_padding_invariance(GRU, num_layers=num_layers, bidirectional=bidirectional)


def _copy_cell(ours, reference):
    H = reference.hidden_size
    with torch.no_grad():
        ours.W_xh.copy_(reference.weight_ih.T)
        ours.W_hh.copy_(reference.weight_hh.T)
        if ours.b is not None:
            ours.b.copy_(torch.cat([reference.bias_ih[: 2 * H] + reference.bias_hh[: 2 * H], reference.bias_ih[2 * H :]]))
            ours.b_hg.copy_(reference.bias_hh[2 * H :])


@pytest.mark.parametrize("config", [{}, {"bias": False}])
def test_cell_equals_torch_gru_cell(config):
    lc.check_cell_equal(GRUCell, nn.GRUCell, _copy_cell, **config)


def test_weight_gradients_follow_the_bias_split():
    """b gets torch's bias_ih gradient (and bias_hh's for r, z); b_hg gets bias_hh's for g."""
    torch.manual_seed(1)
    reference = nn.GRU(3, 4, num_layers=2, bidirectional=True).double()
    ours = GRU.from_torch(reference)
    x = torch.randn(7, 2, 3, dtype=torch.float64)
    for layer in (reference, ours):
        out, h_n = layer(x)
        (out.sin().sum() + h_n.sum()).backward()
    H = 4
    for cell, torch_weight in ours._torch_names(reference):
        b_ih, b_hh = torch_weight("bias_ih").grad, torch_weight("bias_hh").grad
        torch.testing.assert_close(cell.W_xh.grad, torch_weight("weight_ih").grad.T, rtol=0, atol=1e-12)
        torch.testing.assert_close(cell.W_hh.grad, torch_weight("weight_hh").grad.T, rtol=0, atol=1e-12)
        torch.testing.assert_close(cell.b.grad, b_ih, rtol=0, atol=1e-12)
        torch.testing.assert_close(cell.b.grad[: 2 * H], b_hh[: 2 * H], rtol=0, atol=1e-12)
        torch.testing.assert_close(cell.b_hg.grad, b_hh[2 * H :], rtol=0, atol=1e-12)


def test_gradcheck_float64():
    torch.manual_seed(2)
    layer = GRU(3, 4, num_layers=2, batch_first=True, bidirectional=True).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h0: layer(x, h0), (x, h0))


def test_float32_matches_within_float32_precision():
    torch.manual_seed(2)
    reference = nn.GRU(6, 8, num_layers=2, batch_first=True)
    x = torch.randn(5, 20, 6)
    torch.testing.assert_close(GRU.from_torch(reference)(x)[0], reference(x)[0], rtol=0, atol=1e-5)


def test_notes_variant_is_a_different_function():
    torch.manual_seed(4)
    cell = GRUCell(4, 3).double()
    x, h = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    assert (notes_gru_step(cell, x, h) - cell(x, h)).abs().max() > 1e-3
    # they agree exactly when the reset gate is fully open (r = 1) ...
    with torch.no_grad():
        cell.b[:3] = 1e3
    torch.testing.assert_close(notes_gru_step(cell, x, h), cell(x, h), rtol=0, atol=1e-12)
    # ... and when the previous state is zero and b_hg = 0
    with torch.no_grad():
        cell.b[:3] = 0.0
        cell.b_hg.zero_()
    zero = torch.zeros_like(h)
    torch.testing.assert_close(notes_gru_step(cell, x, zero), cell(x, zero), rtol=0, atol=1e-12)
    # without biases too
    plain = GRUCell(4, 3, bias=False).double()
    assert (notes_gru_step(plain, x, h) - plain(x, h)).abs().max() > 1e-3


def test_parameter_count_is_three_quarters_of_the_lstm():
    D, H = 3, 5
    assert sum(p.numel() for p in GRU(D, H).parameters()) == 3 * (D * H + H * H + H) + H  # b_hg: the extra bias
    assert sum(p.numel() for p in GRU(D, H, bias=False).parameters()) == 3 * (D * H + H * H)
    assert sum(p.numel() for p in nn.GRU(D, H).parameters()) == 3 * (D * H + H * H + 2 * H)


def test_input_projection_is_done_once_before_the_loop(monkeypatch):
    layer = GRU(3, 4, batch_first=True)
    cell = layer.cells[0]
    calls = {"recur": 0}
    recur = cell.recur

    def counting_recur(xp_t, h):
        calls["recur"] += 1
        assert xp_t.shape == (2, 12)  # already projected: (N, 3H), not (N, D)
        return recur(xp_t, h)

    monkeypatch.setattr(cell, "recur", counting_recur)
    monkeypatch.setattr(cell, "forward", lambda *a: pytest.fail("the layer must not call the full cell per step"))
    layer(torch.randn(2, 8, 3))
    assert calls["recur"] == 8


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    layer = GRU(3, 4, num_layers=2, dropout=0.5, batch_first=True)
    x = torch.randn(2, 5, 3)
    layer.eval()
    torch.testing.assert_close(layer(x)[0], layer(x)[0])
    layer.train()
    assert not torch.equal(layer(x)[0], layer(x)[0])


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.zeros(32, 64, 3), r"expected input of shape \(N, T, D\) = \(\*, \*, 8\) or unbatched \(T, D\), got \(32, 64, 3\)"),
        (torch.zeros(32, 64), r"expected input of shape \(N, T, D\) = \(\*, \*, 8\) or unbatched \(T, D\), got \(32, 64\)"),
        (torch.zeros(2, 3, 8, dtype=torch.long), r"floating-point input, got torch.int64"),
        (torch.zeros(2, 0, 8), r"at least one time step"),
        ("abc", r"got str"),
        (nn.utils.rnn.pack_sequence([torch.zeros(3, 5)]), r"PackedSequence of D = 8 features, got 5"),
    ],
)
def test_bad_input_gets_a_clear_error(x, message):
    with pytest.raises(ValueError, match=message):
        GRU(8, 4, batch_first=True)(x)


def test_bad_state_and_arguments_get_a_clear_error():
    layer = GRU(8, 4, num_layers=2, batch_first=True)
    with pytest.raises(ValueError, match=r"\(L·num_directions, N, H\) = \(2, 3, 4\), got \(3, 4\)"):
        layer(torch.zeros(3, 5, 8), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, D\) = \(\*, 8\) or \(D,\), got \(2, 3\)"):
        GRUCell(8, 4)(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="num_layers"):
        GRU(3, 4, num_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        GRU(3, 4, dropout=1.5)


@pytest.mark.parametrize("layer", [nn.GRU, GRU, nn.LSTM])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_head_takes_any_dropin_layer_and_ignores_padding(layer, bidirectional):
    torch.manual_seed(0)
    x = torch.randn(3, 6, 4)
    lengths = torch.tensor([6, 2, 4])
    padded = x.clone()
    for i, n in enumerate(lengths):
        padded[i, n:] = 7.0  # whatever sits in the padding must not matter
    model = ManyToOne(layer(4, 5, num_layers=2, batch_first=True, bidirectional=bidirectional), 2)
    assert model(x).shape == (3, 2)
    for i, n in enumerate(lengths):
        torch.testing.assert_close(model(padded, lengths)[i], model(x[i : i + 1, :n])[0])


def test_built_in_data_is_the_notes_multiplication_problem():
    data = MultiplicationData(steps=12, count=50, seed=3)
    x, y = multiplication_problem(count=50, steps=12, seed=3)
    train, val = data.parts
    n = len(train)  # Keras' validation_split = 0.2 of the fitting part, as the notes
    assert torch.equal(train.tensors[0], x[:n]) and torch.equal(val.tensors[1], y[n : n + len(val)])


def _loader(x, y, batch_size, shuffle=False):
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle)


def test_short_multiplication_problem_learns():
    x, y = multiplication_problem(1200, 10, seed=0)
    pl.seed_everything(0, verbose=False)
    system = GRUSystem(ManyToOne(GRU(2, 16, batch_first=True), 1), lr=0.01)
    trainer = lk._fit(lk.trainer(max_epochs=12), system, _loader(x[:1000], y[:1000], 50, shuffle=True),
                      _loader(x[1000:], y[1000:], 200))
    assert trainer.callback_metrics["val_mse"].item() < 0.2 * y[1000:].var().item()
    torch.testing.assert_close(trainer.callback_metrics["val_mse"], trainer.callback_metrics["val_loss"])


# ---- the system is complete: the checks every LightningModule of the course passes ----

def _windows():
    torch.manual_seed(0)
    x = torch.randn(16, 5, 3)
    lengths = torch.tensor([5, 3, 4, 2] * 4)
    return TensorDataset(x, lengths, x[:, :, 0].sum(1, keepdim=True))


def _window_system():
    pl.seed_everything(0, verbose=False)
    return GRUSystem(ManyToOne(GRU(3, 6, batch_first=True), 1), lr=0.01)


def test_predict():
    lk.check_predict(_window_system, DataLoader(_windows(), batch_size=4))


def test_checkpoint_round_trip(tmp_path):
    loader = DataLoader(_windows(), batch_size=4)
    lk.check_checkpoint(_window_system, loader, loader, tmp_path, model=ManyToOne(GRU(3, 6, batch_first=True), 1))


def test_resume_equals_uninterrupted(tmp_path):
    loader = DataLoader(_windows(), batch_size=4)
    lk.check_resume(_window_system, loader, loader, tmp_path)


def test_ddp_two_processes_equal_one(tmp_path):
    lk.check_ddp(_window_system, _windows(), batch_size=8, tmp_path=tmp_path)


def test_bf16_mixed_on_cpu():
    lk.check_bf16(_window_system, DataLoader(_windows(), batch_size=4))


def test_gpu():
    lk.check_gpu(_window_system, DataLoader(_windows(), batch_size=4))


def test_swap_torch_layer_for_the_lesson_inside_the_system():
    torch.manual_seed(0)
    system = GRUSystem(ManyToOne(nn.GRU(3, 6, num_layers=2, batch_first=True, bidirectional=True), 2))
    x, lengths = torch.randn(4, 5, 3), torch.tensor([5, 3, 4, 1])
    lk.check_swap(system, {nn.GRU: GRU.from_torch}, (x, lengths))


def test_command_line_help_and_config(tmp_path):
    from pathlib import Path

    script = Path(gru.__file__)
    run = lambda *a: lk.run_script(str(script), *a)  # noqa: E731
    help_text = run("fit", "--help")
    assert help_text.returncode == 0 and "--model.model" in help_text.stdout and "--trainer.max_epochs" in help_text.stdout
    config = run("fit", "--print_config")
    assert "class_path: gru.ManyToOne" in config.stdout and "class_path: gru.MultiplicationData" in config.stdout


def test_command_line_trains_and_checkpoint_loads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gru.main(["fit", "--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false",
              "--trainer.enable_model_summary", "false", "--data.steps", "5", "--data.count", "200"])
    (path,) = tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt")
    system = GRUSystem.load_from_checkpoint(path)  # the model is rebuilt from its saved class path
    assert isinstance(system.model.rnn, GRU) and system.model.rnn.num_layers == 2
    x = MultiplicationData(steps=5, count=10).parts[1].tensors[0]
    assert system(x).shape == (2, 1)
