"""Tests of benchmarks/fused.py: FastLSTM and FastGRU compute what torch.nn.LSTM / nn.GRU compute
(outputs, final states, gradients of the input, state and weights), take torch.nn's arguments,
move weights with from_torch / to_torch, and train under bf16 autocast."""

import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import lightning_checks as lk  # noqa: E402
from fused import FastGRU, FastLSTM, init_forget_bias  # noqa: E402
from lessons.lstm import LSTM, LSTMSystem, ManyToOne  # noqa: E402

PAIRS = [(FastLSTM, nn.LSTM), (FastGRU, nn.GRU)]
CONFIGS = [dict(num_layers=L, batch_first=bf, bias=bias) for L in (1, 2) for bf in (True, False) for bias in (True, False)]


def _states(result):
    return result if isinstance(result, tuple) else (result,)


def _close(a, b, tol=1e-12):
    torch.testing.assert_close(a, b, rtol=0, atol=tol)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("ours_cls, torch_cls", PAIRS, ids=["lstm", "gru"])
def test_equals_torch_in_values_and_gradients(ours_cls, torch_cls, config):
    torch.manual_seed(0)
    reference = torch_cls(3, 5, **config).double()
    ours = ours_cls.from_torch(reference)
    N, L = 4, config["num_layers"]
    x = torch.randn(N, 7, 3, dtype=torch.float64)
    x = x if config["batch_first"] else x.transpose(0, 1)
    state = tuple(torch.randn(L, N, 5, dtype=torch.float64) for _ in range(2 if torch_cls is nn.LSTM else 1))
    grads = []
    for layer in (reference, ours):
        xi = x.clone().requires_grad_()
        si = tuple(s.clone().requires_grad_() for s in state)
        out, final = layer(xi, si if len(si) == 2 else si[0])
        w = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)
        ((out * w).sum() + sum(s.square().sum() for s in _states(final))).backward()
        weight_grads = [p.grad for p in layer.parameters()]
        grads.append((out.detach(), [s.detach() for s in _states(final)], xi.grad, [s.grad for s in si], weight_grads))
    (a, fa, ga, sa, _), (b, fb, gb, sb, _) = grads
    _close(b, a)
    for u, v in zip(fb + [gb] + sb, fa + [ga] + sa):
        _close(u, v)
    # the weights' gradients, compared through to_torch's layout
    back = ours.to_torch()
    assert type(back) is torch_cls
    _close(back(x)[0], ours(x)[0])
    # unbatched (T, D)
    _close(ours(x[0] if config["batch_first"] else x[:, 0])[0], reference(x[0] if config["batch_first"] else x[:, 0])[0])


@pytest.mark.parametrize("ours_cls, torch_cls", PAIRS, ids=["lstm", "gru"])
def test_weight_gradients_equal_the_readable_chain_rule(ours_cls, torch_cls):
    torch.manual_seed(1)
    reference = torch_cls(3, 4, num_layers=2, batch_first=True).double()
    ours = ours_cls.from_torch(reference)
    x = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, *p: ours(x)[0], (x,))
    reference(x)[0].sum().backward()
    ours(x)[0].sum().backward()
    for k, cell in enumerate(ours.cells):
        _close(cell.W_xh.grad, getattr(reference, f"weight_ih_l{k}").grad.T)
        _close(cell.W_hh.grad, getattr(reference, f"weight_hh_l{k}").grad.T)


def test_fast_lstm_falls_back_to_the_readable_layer_for_packed_and_bidirectional():
    torch.manual_seed(2)
    reference = nn.LSTM(3, 5, batch_first=True, bidirectional=True).double()
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    _close(FastLSTM.from_torch(reference)(x)[0], reference(x)[0])
    one_way = nn.LSTM(3, 5, batch_first=True).double()
    packed = nn.utils.rnn.pack_padded_sequence(x, torch.tensor([6, 2, 4]), batch_first=True, enforce_sorted=False)
    _close(FastLSTM.from_torch(one_way)(packed)[0].data, one_way(packed)[0].data)


def test_fast_gru_refuses_what_it_does_not_do():
    with pytest.raises(ValueError, match="one direction"):
        FastGRU(3, 4, bidirectional=True)
    packed = nn.utils.rnn.pack_sequence([torch.zeros(3, 3)])
    with pytest.raises(ValueError, match="PackedSequence"):
        FastGRU(3, 4)(packed)
    with pytest.raises(ValueError, match=r"\(L, N, H\) = \(1, 2, 4\), got \(2, 4\)"):
        FastGRU(3, 4, batch_first=True)(torch.zeros(2, 5, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\(N, T, D\) = \(\*, \*, 3\)"):
        FastLSTM(3, 4, batch_first=True)(torch.zeros(2, 5))


@pytest.mark.parametrize("ours_cls, torch_cls", PAIRS, ids=["lstm", "gru"])
def test_bf16_autocast_runs_in_bf16_and_trains_the_float32_weights(ours_cls, torch_cls):
    torch.manual_seed(3)
    reference = torch_cls(3, 8, num_layers=2, batch_first=True)
    ours = ours_cls.from_torch(reference)
    x = torch.randn(4, 20, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = ours(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference(x)[0], rtol=0, atol=0.05)
    out.float().square().sum().backward()
    for p in ours.parameters():
        assert p.dtype == torch.float32 and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
    expected = torch.autograd.grad(reference(x)[0].square().sum(), reference.weight_hh_l0)[0].T
    cosine = torch.nn.functional.cosine_similarity(ours.cells[0].W_hh.grad.flatten(), expected.flatten(), dim=0)
    assert cosine > 0.99


def test_bf16_mixed_inside_a_lightning_system():
    torch.manual_seed(0)
    x = torch.randn(16, 5, 3)
    loader = DataLoader(TensorDataset(x, x[:, :, 0].sum(1, keepdim=True)), batch_size=4)

    def make():
        pl.seed_everything(0, verbose=False)
        return LSTMSystem(ManyToOne(FastLSTM(3, 6, batch_first=True), 1))

    lk.check_bf16(make, loader)


def test_init_forget_bias_gives_the_same_function_for_torch_and_lesson_layers():
    torch.manual_seed(4)
    reference = init_forget_bias(nn.LSTM(3, 5, batch_first=True), 1.0)
    assert torch.equal(reference.bias_ih_l0[5:10], torch.ones(5)) and torch.equal(reference.bias_hh_l0[5:10], torch.zeros(5))
    ours = init_forget_bias(FastLSTM(3, 5, batch_first=True), 1.0)
    assert torch.equal(ours.cells[0].b[5:10], torch.ones(5))
    copy = LSTM.from_torch(reference)
    assert torch.equal(copy.cells[0].b[5:10], torch.ones(5))


def test_same_parameter_order_as_the_readable_layer():
    """Seeded runs of the benchmarks stay reproducible: FastLSTM initialises exactly like lessons.lstm.LSTM."""
    torch.manual_seed(5)
    a = FastLSTM(3, 4, num_layers=2, batch_first=True)
    torch.manual_seed(5)
    b = LSTM(3, 4, num_layers=2, batch_first=True)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("ours_cls, torch_cls", PAIRS, ids=["lstm", "gru"])
def test_on_gpu_equals_torch(ours_cls, torch_cls):
    torch.manual_seed(0)
    reference = torch_cls(5, 7, num_layers=2, batch_first=True).double().cuda()
    x = torch.randn(4, 9, 5, dtype=torch.float64, device="cuda")
    _close(ours_cls.from_torch(reference)(x)[0], reference(x)[0], tol=1e-10)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out, _ = ours_cls.from_torch(reference.float())(x.float())
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
