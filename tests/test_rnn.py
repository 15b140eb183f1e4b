"""Tests of lessons/rnn.py: the from-scratch RNN equals torch.nn.RNN, gradients are right,
bad input is refused clearly, and the toy tasks train to their targets."""

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from lessons import rnn
from lessons.datasets import char_sequence, sequence_windows
from lessons.rnn import RNN, ManyToMany, ManyToOne, RNNCell, RNNSystem, fit


def _pair(D=5, H=7, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    reference = nn.RNN(D, H, batch_first=True).to(dtype)
    return reference, RNN.from_torch(reference)  # copied after the cast (bias sums in float64)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_layer_equals_torch_rnn_outputs(dtype, tol):
    reference, ours = _pair(dtype=dtype)
    x = torch.randn(4, 9, 5, dtype=dtype)
    h0 = torch.randn(4, 7, dtype=dtype)
    hs_ref, hT_ref = reference(x, h0.unsqueeze(0))
    hs, hT = ours(x, h0)
    torch.testing.assert_close(hs, hs_ref, rtol=0, atol=tol)
    torch.testing.assert_close(hT, hT_ref[0], rtol=0, atol=tol)


def test_layer_equals_torch_rnn_gradients():
    reference, ours = _pair()
    x = torch.randn(3, 11, 5, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    weights = torch.randn(3, 11, 7, dtype=torch.float64)  # a loss that weighs every step differently
    (ours(x)[0] * weights).sum().backward()
    (reference(x_ref)[0] * weights).sum().backward()
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=0, atol=1e-12)  # noqa: E731
    close(x.grad, x_ref.grad)
    close(ours.cell.W_xh.grad, reference.weight_ih_l0.grad.T)
    close(ours.cell.W_hh.grad, reference.weight_hh_l0.grad.T)
    # b = b_ih + b_hh, so each of PyTorch's two biases gets the same gradient as ours
    close(ours.cell.b.grad, reference.bias_ih_l0.grad)
    close(ours.cell.b.grad, reference.bias_hh_l0.grad)


def test_cell_equals_torch_rnn_cell():
    torch.manual_seed(1)
    reference = nn.RNNCell(4, 3).double()
    cell = RNNCell(4, 3).double()
    with torch.no_grad():
        cell.W_xh.copy_(reference.weight_ih.T)
        cell.W_hh.copy_(reference.weight_hh.T)
        cell.b.copy_(reference.bias_ih + reference.bias_hh)
    x, h = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    torch.testing.assert_close(cell(x, h), reference(x, h), rtol=0, atol=1e-12)


def test_gradcheck_float64():
    torch.manual_seed(2)
    layer = RNN(3, 4).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: layer(x)[0], (x,))


def test_weights_are_shared_across_time():
    layer = RNN(3, 4)
    assert sum(p.numel() for p in layer.parameters()) == 3 * 4 + 4 * 4 + 4  # independent of T
    hs_short, _ = layer(torch.ones(1, 2, 3))
    hs_long, _ = layer(torch.ones(1, 6, 3))
    torch.testing.assert_close(hs_long[:, :2], hs_short)  # the same layer at every step


def test_input_projection_is_done_once_before_the_loop(monkeypatch):
    layer = RNN(3, 4)
    calls = {"recur": 0}
    recur = layer.cell.recur

    def counting_recur(xp_t, h):
        calls["recur"] += 1
        assert xp_t.shape == (2, 4)  # already projected: (N, H), not (N, D)
        return recur(xp_t, h)

    monkeypatch.setattr(layer.cell, "recur", counting_recur)
    monkeypatch.setattr(layer.cell, "forward", lambda *a: pytest.fail("the layer must not call the full cell per step"))
    layer(torch.randn(2, 8, 3))
    assert calls["recur"] == 8


def test_from_torch_refuses_what_it_cannot_copy():
    with pytest.raises(ValueError, match="batch_first=True"):
        RNN.from_torch(nn.RNN(3, 4))
    with pytest.raises(ValueError, match="one-layer"):
        RNN.from_torch(nn.RNN(3, 4, num_layers=2, batch_first=True))
    no_bias = nn.RNN(3, 4, bias=False, batch_first=True)
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(RNN.from_torch(no_bias)(x)[0], no_bias(x)[0])


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.zeros(32, 64), r"expected x of shape \(N, T, D\) = \(\*, \*, 8\), got \(32, 64\)"),
        (torch.zeros(2, 3, 5), r"expected x of shape \(N, T, D\) = \(\*, \*, 8\), got \(2, 3, 5\)"),
        (torch.zeros(2, 3, 8, dtype=torch.long), r"floating-point .* got dtype torch.int64"),
        (torch.zeros(2, 0, 8), r"at least one time step"),
        ([[0.0] * 8], r"torch.Tensor of shape \(N, T, D\), got list"),
    ],
)
def test_bad_input_gets_a_clear_error(x, message):
    with pytest.raises(ValueError, match=message):
        RNN(8, 4)(x)


def test_bad_initial_state_gets_a_clear_error():
    layer = RNN(8, 4)
    with pytest.raises(ValueError, match=r"expected h0 of shape \(N, H\) = \(2, 4\), got \(1, 2, 4\)"):
        layer(torch.zeros(2, 3, 8), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="dtype"):
        layer(torch.zeros(2, 3, 8), torch.zeros(2, 4, dtype=torch.float64))


def test_heads_shapes():
    x = torch.randn(5, 7, 3)
    assert ManyToOne(3, 8, 2)(x).shape == (5, 2)
    assert ManyToMany(3, 8, 4)(x).shape == (5, 7, 4)


def test_system_refuses_unknown_options():
    with pytest.raises(ValueError, match="head"):
        RNNSystem(3, 4, 2, head="one_to_many")
    with pytest.raises(ValueError, match="task"):
        RNNSystem(3, 4, 2, task="ranking")


def _loader(x, y, batch_size):
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size)


def test_hello_char_model_learns_the_next_characters():
    vocab, x, y = char_sequence("hello")
    pl.seed_everything(0, verbose=False)
    system = RNNSystem(len(vocab), 8, len(vocab), head="many_to_many", lr=0.05)
    trainer = fit(system, _loader(x, y, 1), max_epochs=100)
    assert trainer.callback_metrics["train_acc"] == 1.0
    with torch.no_grad():
        assert vocab.decode(system(x).argmax(-1)[0]) == "ello"


def test_sequence_toy_reaches_its_targets_and_is_reproducible():
    x, y = sequence_windows()
    probe = torch.tensor([[0.6, 0.7, 0.8, 0.9], [-0.1, 0.0, 0.1, 0.2]]).unsqueeze(-1)
    preds = []
    for _ in range(2):
        pl.seed_everything(0, verbose=False)
        system = RNNSystem(1, 10, 1, head="many_to_one", task="regression", lr=0.01)
        fit(system, _loader(x, y, 6), max_epochs=300)
        with torch.no_grad():
            preds.append(system(probe).squeeze(-1))
    assert torch.equal(preds[0], preds[1])  # seeded and deterministic: identical run to run
    assert abs(preds[0][0].item() - 1.0) < 0.1
    assert abs(preds[0][1].item() - 0.3) < 0.1


def test_command_line_runs(capsys):
    rnn.main(["--task", "hello", "--epochs", "150"])
    out = capsys.readouterr().out
    assert "generated from 'h': hello" in out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_gpu():
    vocab, x, y = char_sequence("hello")
    system = RNNSystem(len(vocab), 8, len(vocab), head="many_to_many", lr=0.05)
    trainer = fit(system, _loader(x, y, 1), max_epochs=100, accelerator="gpu")
    assert trainer.callback_metrics["train_acc"] == 1.0
