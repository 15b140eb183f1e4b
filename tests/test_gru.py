"""Tests of lessons/gru.py: the from-scratch GRU (readable and fast) equals torch.nn.GRU in
outputs, final states and gradients; the notes' variant is a different function of the same
weights; bad input is refused clearly; a short training reaches its target."""

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from lessons import gru
from lessons.gru import GRU, FastGRU, GRUCell, GRURegressor, GRUSystem, fit, notes_gru_step

LAYERS = [GRU, FastGRU]


def _close(a, b, tol=1e-12):
    torch.testing.assert_close(a, b, rtol=0, atol=tol)


@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("batch_first", [True, False])
def test_equals_torch_gru_outputs_and_states(cls, num_layers, batch_first):
    torch.manual_seed(0)
    reference = nn.GRU(5, 7, num_layers=num_layers, batch_first=batch_first).double()
    ours = cls.from_torch(reference)
    x = torch.randn(4, 9, 5, dtype=torch.float64)
    h0 = torch.randn(num_layers, 4 if batch_first else 9, 7, dtype=torch.float64)
    out, h_n = ours(x, h0)
    out_ref, h_ref = reference(x, h0)
    _close(out, out_ref)
    _close(h_n, h_ref)
    _close(ours(x)[0], reference(x)[0])


@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("batch_first", [True, False])
def test_equals_torch_gru_gradients(cls, batch_first):
    torch.manual_seed(1)
    reference = nn.GRU(3, 4, num_layers=2, batch_first=batch_first).double()
    ours = cls.from_torch(reference)
    x = torch.randn(3, 11, 3, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    N = 3 if batch_first else 11
    h0 = torch.randn(2, N, 4, dtype=torch.float64, requires_grad=True)
    h0_ref = h0.detach().clone().requires_grad_(True)
    w_out, w_h = torch.randn(3, 11, 4, dtype=torch.float64), torch.randn(2, N, 4, dtype=torch.float64)
    out, h_n = ours(x, h0)
    ((out * w_out).sum() + (h_n * w_h).sum()).backward()
    out, h_n = reference(x_ref, h0_ref)
    ((out * w_out).sum() + (h_n * w_h).sum()).backward()
    _close(x.grad, x_ref.grad)
    _close(h0.grad, h0_ref.grad)
    H = 4
    for k, cell in enumerate(ours.cells):
        b_ih, b_hh = (getattr(reference, f"bias_{s}_l{k}").grad for s in ("ih", "hh"))
        _close(cell.W_xh.grad, getattr(reference, f"weight_ih_l{k}").grad.T)
        _close(cell.W_hh.grad, getattr(reference, f"weight_hh_l{k}").grad.T)
        _close(cell.b.grad, b_ih)  # r, z: summed biases; g: the input-side bias
        _close(cell.b.grad[: 2 * H], b_hh[: 2 * H])
        _close(cell.b_hg.grad, b_hh[2 * H :])


def test_float32_matches_within_float32_precision():
    torch.manual_seed(2)
    reference = nn.GRU(6, 8, num_layers=2, batch_first=True)
    x = torch.randn(5, 20, 6)
    for cls in LAYERS:
        torch.testing.assert_close(cls.from_torch(reference)(x)[0], reference(x)[0], rtol=0, atol=1e-5)


def test_cell_equals_torch_gru_cell():
    torch.manual_seed(3)
    reference = nn.GRUCell(4, 3).double()
    layer = GRU.from_torch(nn.GRU(4, 3, batch_first=True).double())
    cell = layer.cells[0]
    with torch.no_grad():
        cell.W_xh.copy_(reference.weight_ih.T)
        cell.W_hh.copy_(reference.weight_hh.T)
        cell.b.copy_(torch.cat([reference.bias_ih[:6] + reference.bias_hh[:6], reference.bias_ih[6:]]))
        cell.b_hg.copy_(reference.bias_hh[6:])
    x, h = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    _close(cell(x, h), reference(x, h))


def test_notes_variant_is_a_different_function():
    torch.manual_seed(4)
    cell = GRUCell(4, 3).double()
    x, h = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    assert (notes_gru_step(cell, x, h) - cell(x, h)).abs().max() > 1e-3
    # they agree exactly when the reset gate is fully open (r = 1) ...
    with torch.no_grad():
        cell.b[:3] = 1e3
    _close(notes_gru_step(cell, x, h), cell(x, h))
    # ... and when the previous state is zero and b_hg = 0
    with torch.no_grad():
        cell.b[:3] = 0.0
        cell.b_hg.zero_()
    zero = torch.zeros_like(h)
    _close(notes_gru_step(cell, x, zero), cell(x, zero))


def test_fast_layer_passes_gradcheck():
    torch.manual_seed(5)
    layer = FastGRU(3, 4, num_layers=2).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h0: layer(x, h0), (x, h0))


def test_parameter_count_is_three_quarters_of_the_lstm():
    D, H = 3, 5
    ours = sum(p.numel() for p in GRU(D, H).parameters())
    assert ours == 3 * (D * H + H * H + H) + H  # b_hg is the one extra bias vector
    assert sum(p.numel() for p in nn.GRU(D, H).parameters()) == 3 * (D * H + H * H + 2 * H)


@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize(
    "x, message",
    [
        (torch.zeros(32, 64), r"expected x of shape \(N, T, D\) = \(\*, \*, 8\), got \(32, 64\)"),
        (torch.zeros(2, 3, 8, dtype=torch.long), r"floating-point .* got dtype torch.int64"),
        (torch.zeros(2, 0, 8), r"at least one time step"),
        ("abc", r"torch.Tensor of shape \(N, T, D\), got str"),
    ],
)
def test_bad_input_gets_a_clear_error(cls, x, message):
    with pytest.raises(ValueError, match=message):
        cls(8, 4)(x)


def test_bad_state_gets_a_clear_error():
    layer = GRU(8, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"expected h0 of shape \(L, N, H\) = \(2, 3, 4\), got \(3, 4\)"):
        layer(torch.zeros(3, 5, 8), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="dtype"):
        layer(torch.zeros(3, 5, 8), torch.zeros(2, 3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="one-direction"):
        GRU.from_torch(nn.GRU(3, 4, bidirectional=True))
    with pytest.raises(ValueError, match="num_layers"):
        GRU(3, 4, num_layers=0)


def _loader(x, y, batch_size, shuffle=False):
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle)


def test_short_multiplication_problem_learns():
    x, y = gru._multiplication(1200, 10, seed=0)
    pl.seed_everything(0, verbose=False)
    system = GRUSystem(2, 16, 1, lr=0.01)
    trainer = fit(system, _loader(x[:1000], y[:1000], 50, shuffle=True), _loader(x[1000:], y[1000:], 200),
                  max_epochs=12)
    assert trainer.callback_metrics["val_mse"].item() < 0.2 * y[1000:].var().item()
    assert GRURegressor(2, 5, num_layers=2)(torch.randn(4, 6, 2)).shape == (4, 1)


def test_command_line_runs(capsys):
    gru.main(["--steps", "5", "--epochs", "1", "--hidden", "4", "--layers", "1"])
    assert "of the target variance" in capsys.readouterr().out
