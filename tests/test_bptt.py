"""Tests of lessons/bptt.py: the hand-written BPTT equals autograd (and torch.nn.RNN, lessons.rnn.RNN),
passes gradcheck and finite differences; gradient norms vanish or explode with the spectral radius;
clipping and truncated BPTT do what the page says; the regression model takes any torch.nn-style
layer; the system is complete (predict, checkpoint, resume, DDP, bf16, swap) and two stacked vanilla
RNN layers do not beat the baseline on the multiplication problem. Also the two multiplication
benchmarks' quick modes."""

import csv
import json
import statistics
import math
import tempfile
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_checks as lk
from lessons import bptt
from lessons.bptt import (
    ManualBPTT,
    MultiplicationData,
    RNNRegressionSystem,
    RNNRegressor,
    clip_gradient_norm,
    finite_difference,
    hidden_gradient_norms,
    loss_and_gradients,
    many_to_many_cross_entropy,
    many_to_one_mse,
    norms_by_radius,
    rnn_backward,
    rnn_forward,
    spectral_radius,
    truncated_bptt,
)
from lessons.datasets import multiplication_problem, notes_split
from lessons.rnn import RNN

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64


def _params(D=4, H=5, C=3, seed=0, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    shapes = {"W_xh": (D, H), "W_hh": (H, H), "b": (H,), "W_hy": (H, C), "c": (C,)}
    return {k: scale * torch.randn(*s, generator=g, dtype=F64) for k, s in shapes.items()}


def _layer(params):
    """The RNN lesson's layer (lessons/rnn.py) holding the same weights."""
    D, H = params["W_xh"].shape
    layer = RNN(D, H, batch_first=True).double()
    with torch.no_grad():
        for name in ("W_xh", "W_hh", "b"):
            getattr(layer.cells[0], name).copy_(params[name])
    return layer


def _autograd(x, y, params, head):
    """The same loss differentiated by autograd on lessons.rnn.RNN."""
    layer = _layer(params)
    cell = layer.cells[0]
    W_hy, c = (params[k].clone().requires_grad_(True) for k in ("W_hy", "c"))
    x = x.clone().requires_grad_(True)
    hs, h_n = layer(x)
    if head == "many_to_one":
        loss = nn.functional.mse_loss(h_n[-1] @ W_hy + c, y)
    else:
        loss = nn.functional.cross_entropy((hs @ W_hy + c).flatten(0, 1), y.flatten())
    loss.backward()
    return loss.detach(), {"dW_xh": cell.W_xh.grad, "dW_hh": cell.W_hh.grad, "db": cell.b.grad,
                           "dW_hy": W_hy.grad, "dc": c.grad, "dx": x.grad}


# ---- the forward pass ----

def test_rnn_forward_equals_torch_and_the_rnn_lesson():
    torch.manual_seed(0)
    reference = nn.RNN(3, 6, batch_first=True).double()
    theirs = RNN.from_torch(reference)
    cell = theirs.cells[0]
    x, h0 = torch.randn(4, 9, 3, dtype=F64), torch.randn(4, 6, dtype=F64)
    hs, cache = rnn_forward(x, cell.W_xh.detach(), cell.W_hh.detach(), cell.b.detach(), h0)
    torch.testing.assert_close(hs, reference(x, h0.unsqueeze(0))[0].detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(hs, theirs(x, h0.unsqueeze(0))[0].detach(), rtol=0, atol=1e-12)
    assert cache.hs is hs and cache.h0 is h0 and cache.x is x


# ---- the backward pass: autograd, gradcheck, finite differences ----

@pytest.mark.parametrize("head", ["many_to_one", "many_to_many"])
def test_manual_bptt_equals_autograd(head):
    N, T, D, H, C = 3, 8, 4, 5, 3
    params = _params(D, H, C)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, T, D, generator=g, dtype=F64)
    y = torch.randn(N, C, generator=g, dtype=F64) if head == "many_to_one" else torch.randint(0, C, (N, T), generator=g)
    loss, grads = loss_and_gradients(x, y, params, head)
    loss_ref, grads_ref = _autograd(x, y, params, head)
    torch.testing.assert_close(loss, loss_ref, rtol=0, atol=1e-12)
    assert grads.keys() == grads_ref.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=0, atol=1e-10, msg=name)


def test_rnn_backward_equals_autograd_with_any_upstream_gradient_and_h0():
    params = _params(3, 4)
    g = torch.Generator().manual_seed(2)
    x, h0 = torch.randn(2, 6, 3, generator=g, dtype=F64), torch.randn(2, 4, generator=g, dtype=F64)
    dhs = torch.randn(2, 6, 4, generator=g, dtype=F64)  # the loss looks at every step
    grads = rnn_backward(dhs, rnn_forward(x, params["W_xh"], params["W_hh"], params["b"], h0)[1])
    leaves = [t.clone().requires_grad_(True) for t in (x, params["W_xh"], params["W_hh"], params["b"], h0)]
    (rnn_forward(*leaves)[0] * dhs).sum().backward()
    for mine, leaf in zip((grads.dx, grads.dW_xh, grads.dW_hh, grads.db, grads.dh0), leaves):
        torch.testing.assert_close(mine, leaf.grad, rtol=0, atol=1e-10)


def test_gradcheck_of_the_hand_written_backward():
    g = torch.Generator().manual_seed(3)
    shapes = [(2, 5, 3), (3, 4), (4, 4), (4,), (2, 4)]  # x, W_xh, W_hh, b, h0
    inputs = [torch.randn(*s, generator=g, dtype=F64).requires_grad_(True) for s in shapes]
    assert torch.autograd.gradcheck(ManualBPTT.apply, inputs)


def test_finite_difference_spot_check():
    params = _params(2, 3, 1)
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(4, 7, 2, generator=g, dtype=F64), torch.randn(4, 1, generator=g, dtype=F64)
    _, grads = loss_and_gradients(x, y, params)
    for name, index in [("W_hh", (0, 1)), ("W_xh", (1, 2)), ("b", (0,)), ("W_hy", (2, 0))]:
        numeric = finite_difference(lambda: loss_and_gradients(x, y, params)[0], params[name], index)
        assert abs(numeric - grads["d" + name][index].item()) < 1e-8, name
    w = torch.tensor([3.0], dtype=F64)
    assert round(finite_difference(lambda: (w**2).sum(), w, (0,)), 6) == 6.0 and w.item() == 3.0  # restored


def test_many_to_one_puts_gradient_on_the_last_step_only():
    hs = torch.randn(2, 5, 3, dtype=F64)
    _, g = many_to_one_mse(hs, torch.randn(3, 1, dtype=F64), torch.zeros(1, dtype=F64), torch.zeros(2, 1, dtype=F64))
    assert g["dhs"][:, :-1].abs().max() == 0 and g["dhs"][:, -1].abs().max() > 0


# ---- vanishing and exploding gradients ----

def test_spectral_radius_and_scaling():
    assert spectral_radius(torch.tensor([[0.0, 2.0], [0.5, 0.0]])) == pytest.approx(1.0)
    W = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))
    assert abs(spectral_radius(W * (0.7 / spectral_radius(W))) - 0.7) < 1e-5  # scaling W scales the radius


def test_gradient_norms_vanish_below_radius_one_and_explode_above():
    norms = norms_by_radius()  # radii 0.9, 1.0, 1.1; T = 50; small inputs
    low, one, high = norms[0.9], norms[1.0], norms[1.1]
    assert low.shape == (50,) and abs(low[0].item() - 1) < 1e-12
    assert (((low[1:] / low[:-1]) - 0.9).abs() < 1e-3).all()  # geometric: one factor 0.9 per step back
    assert (high[1:] > high[:-1]).all() and high[-1] > 50  # grows every step back
    assert ((one - 1).abs() < 0.01).all()  # near 1: neither
    # the numbers the page shows
    assert [f"{norms[r][49].item():.2e}" for r in (0.9, 1.0, 1.1)] == ["5.73e-03", "9.99e-01", "9.06e+01"]


def test_saturated_states_make_gradients_vanish_even_above_radius_one():
    norms = norms_by_radius(input_scale=1.0)
    assert all(n[-1] < 1e-5 for n in norms.values())
    assert f"{norms[1.1][49].item():.2e}" == "3.71e-07"  # the page's number


def test_hidden_gradient_norms_equal_autograd():
    params = _params(2, 4)
    x = torch.randn(3, 6, 2, dtype=F64)
    norms = hidden_gradient_norms(x, params["W_xh"], params["W_hh"], params["b"])
    h, hs = torch.zeros(3, 4, dtype=F64, requires_grad=True), []
    for t in range(6):  # keep every h_t to read dL/dh_t from autograd
        h = torch.tanh(x[:, t] @ params["W_xh"] + h @ params["W_hh"] + params["b"])
        h.retain_grad()
        hs.append(h)
    (h * (1 / 2)).sum().backward()  # L = h_T . g with g = (1, 1, 1, 1) / sqrt(4)
    expected = torch.stack([h_t.grad.norm(dim=-1).mean() for h_t in reversed(hs)])
    torch.testing.assert_close(norms, expected, rtol=0, atol=1e-12)


# ---- remedies: clipping, truncated BPTT ----

def test_clip_gradient_norm_equals_torch_and_bounds_the_norm():
    torch.manual_seed(0)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    x = 100 * torch.randn(8, 4)
    a(x).pow(2).sum().backward()
    b(x).pow(2).sum().backward()
    before = clip_gradient_norm(a.parameters(), max_norm=1.0)
    before_ref = torch.nn.utils.clip_grad_norm_(b.parameters(), max_norm=1.0).item()
    assert before > 1 and abs(before - before_ref) < 1e-3 * before
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p.grad, q.grad)
    assert torch.stack([p.grad.norm() for p in a.parameters()]).norm() <= 1.0 + 1e-5
    small = nn.Linear(2, 1)
    small(torch.ones(1, 2) * 1e-3).sum().backward()
    grads = [p.grad.clone() for p in small.parameters()]
    clip_gradient_norm(small.parameters(), max_norm=10.0)  # already short: unchanged
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, small.parameters()))


def _clip_run(clip):
    """The page's run: 2 stacked lessons.rnn.RNN layers, SGD lr 0.5, CSVLogger for losses and grad_norm."""
    x, y = multiplication_problem(count=256, steps=20, seed=0)
    pl.seed_everything(0, verbose=False)
    system = RNNRegressionSystem(RNNRegressor(RNN(2, 30, num_layers=2, batch_first=True)), lr=0.5, optimizer="sgd")
    assert sum(p.numel() for p in system.parameters()) == 2851
    updates = []

    class Updates(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.before = torch.cat([p.detach().flatten().clone() for p in module.parameters()])

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            updates.append((torch.cat([p.detach().flatten() for p in module.parameters()]) - self.before).norm().item())

    with tempfile.TemporaryDirectory() as logs:
        logger = pl.loggers.CSVLogger(logs, name="", version="")
        trainer = lk.trainer(max_epochs=3, gradient_clip_val=clip, logger=logger, log_every_n_steps=1, callbacks=[Updates()])
        lk._fit(trainer, system, DataLoader(TensorDataset(x, y), batch_size=32))
        with open(Path(logger.log_dir) / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
    losses = [float(r["train_loss"]) for r in rows if r["train_loss"]]
    return losses, [float(r["grad_norm"]) for r in rows if r["grad_norm"]], updates


def test_training_diverges_without_clipping_and_trains_with_it():
    losses, norms, _ = _clip_run(None)
    assert not math.isfinite(losses[-1]) and max(norms) > 1e6 and len(norms) == 24  # diverged
    assert [f"{v:.3g}" for v in losses][:1] == ["6.3"] and losses[1] > 1e23  # the page's numbers
    losses, norms, updates = _clip_run(0.1)
    assert [f"{v:.3g}" for v in losses] == ["0.0758", "0.049", "0.0516"] and f"{max(norms):.3g}" == "1.17"
    assert max(norms) > 0.1  # clipping had work to do …
    assert max(updates) <= 0.5 * 0.1 * (1 + 1e-4)  # … and SGD's step is at most lr * clip_val


def test_grad_norm_is_logged_before_clipping():
    torch.manual_seed(0)
    system = RNNRegressionSystem(RNNRegressor(nn.RNN(2, 3, batch_first=True)))
    logged = {}
    system.log = lambda name, value, **kwargs: logged.setdefault(name, value)
    x, y = torch.randn(4, 5, 2), torch.randn(4, 1) * 100
    system.training_step((x, y), 0).backward()
    expected = torch.stack([p.grad.norm() for p in system.parameters()]).norm().item()
    system.on_before_optimizer_step(None)
    assert float(logged["grad_norm"]) == pytest.approx(expected)


@pytest.mark.parametrize("kind", [nn.RNN, RNN, nn.LSTM])
def test_truncated_bptt_with_one_chunk_is_full_bptt(kind):
    torch.manual_seed(0)
    layer, head = kind(2, 4, batch_first=True).double(), nn.Linear(4, 1).double()
    x, y = torch.randn(3, 12, 2, dtype=F64), torch.randn(3, 12, 1, dtype=F64)
    assert len(truncated_bptt(layer, head, x, y, chunk=12)) == 1
    tbptt = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    nn.functional.mse_loss(head(layer(x)[0]), y).backward()
    for a, p in zip(tbptt, layer.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=0, atol=1e-12)


def test_truncated_bptt_matches_full_bptt_inside_a_chunk():
    """Within a chunk the gradient flows exactly as in full BPTT; it stops at the chunk's start."""
    params = _params(2, 4, scale=0.8)
    x = torch.randn(3, 12, 2, dtype=F64)
    hs, cache = rnn_forward(x, params["W_xh"], params["W_hh"], params["b"])
    dhs = torch.zeros_like(hs)
    dhs[:, 8:] = torch.randn(3, 4, 4, dtype=F64)  # a loss on the last chunk (steps 8..11) only
    full = rnn_backward(dhs, cache)
    _, chunk_cache = rnn_forward(x[:, 8:], params["W_xh"], params["W_hh"], params["b"], hs[:, 7])
    chunk = rnn_backward(dhs[:, 8:], chunk_cache)
    torch.testing.assert_close(chunk.dh, full.dh[:, 8:], rtol=0, atol=1e-12)  # same inside the chunk
    torch.testing.assert_close(chunk.dh0, full.dh[:, 7], rtol=0, atol=1e-12)  # what truncation drops
    assert full.dh[:, :8].abs().max() > 1e-3  # full BPTT keeps going back

    # the layer version carries the state but cuts the graph at every chunk boundary
    torch.manual_seed(1)
    layer, head = RNN(2, 4, batch_first=True).double(), nn.Linear(4, 1).double()
    y = torch.randn(3, 12, 1, dtype=F64)
    losses = truncated_bptt(layer, head, x, y, chunk=4)
    assert len(losses) == 3
    chunk_grads = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    h = None
    for k in range(3):  # the same three chunks by hand, each with a detached start
        hs_k, h = layer(x[:, 4 * k: 4 * k + 4], None if h is None else h.detach())
        nn.functional.mse_loss(head(hs_k), y[:, 4 * k: 4 * k + 4]).backward()
    for a, p in zip(chunk_grads, layer.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=0, atol=1e-12)
    full_losses = nn.functional.mse_loss(head(layer(x)[0]), y, reduction="none").mean(dim=(0, 2))
    torch.testing.assert_close(torch.tensor(losses, dtype=F64), full_losses.view(3, 4).mean(1), rtol=0, atol=1e-12)


def test_truncated_bptt_with_an_optimizer_steps_once_per_chunk():
    torch.manual_seed(0)
    layer, head = nn.LSTM(2, 4, batch_first=True), nn.Linear(4, 1)
    optimizer = torch.optim.SGD([*layer.parameters(), *head.parameters()], lr=0.1)
    before = layer.weight_hh_l0.detach().clone()
    losses = truncated_bptt(layer, head, torch.randn(2, 10, 2), torch.randn(2, 10, 1), chunk=3, optimizer=optimizer)
    assert len(losses) == 4 and not torch.equal(before, layer.weight_hh_l0)
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in layer.parameters())  # zeroed after each step


# ---- the multiplication problem: data ----

def test_multiplication_problem_shapes_markers_and_targets():
    x, y = multiplication_problem(count=500, steps=100, seed=3)
    assert x.shape == (500, 100, 2) and y.shape == (500, 1) and x.dtype == torch.float32
    marker, value = x[..., 0], x[..., 1]
    assert set(marker.unique().tolist()) == {0.0, 1.0} and (marker.sum(dim=1) == 2).all()
    assert ((value >= 0) & (value < 1)).all()
    positions = marker.nonzero()[:, 1].view(500, 2)
    assert (positions[:, 0] < positions[:, 1]).all()
    torch.testing.assert_close(y, value.gather(1, positions).prod(dim=1, keepdim=True), rtol=0, atol=0)
    assert positions[:, 0].min() == 0 and positions[:, 1].max() == 99  # markers reach both ends


def test_multiplication_problem_is_reproducible_and_seeded():
    x1, y1 = multiplication_problem(count=50, steps=30, seed=0)
    x2, y2 = multiplication_problem(count=50, steps=30, seed=0)
    x3, _ = multiplication_problem(count=50, steps=30, seed=1)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    multiplication_problem(count=5)
    assert torch.equal(state, torch.get_rng_state())  # a private generator: the global state is untouched
    _, y = multiplication_problem()
    assert abs(y.mean().item() - 0.25) < 0.01 and abs(y.var().item() - 7 / 144) < 0.004  # u1 * u2


@pytest.mark.parametrize("count, steps, seed", [(3000, 100, 0), (300, 10, 2)])
def test_command_line_data_equals_the_shared_generator_and_split(count, steps, seed):
    data = MultiplicationData(count=count, steps=steps, seed=seed)
    x, y = multiplication_problem(count=count, steps=steps, seed=seed)
    (x_tr, y_tr), (x_va, y_va), _ = notes_split(x, y, fit_count=min(2560, count * 2560 // 3000))
    for part, (xs, ys) in zip(data.parts, ((x_tr, y_tr), (x_va, y_va))):
        assert torch.equal(part.tensors[0], xs) and torch.equal(part.tensors[1], ys)
    assert len(data.parts[0]) == (2048 if count == 3000 else 205)


def test_notes_split_sizes_and_refuses_bad_sizes():
    x, y = multiplication_problem()
    assert [len(p[0]) for p in notes_split(x, y)] == [2048, 512, 440]
    with pytest.raises(ValueError, match="fit_count"):
        notes_split(x, y, fit_count=5000)
    with pytest.raises(ValueError, match="at least 2 time steps"):
        multiplication_problem(steps=1)


# ---- the model ----

def test_regressor_matches_keras_parameter_count_and_torch():
    model = RNNRegressor(RNN(2, 30, num_layers=2, batch_first=True))  # SimpleRNN(30) -> SimpleRNN(30) -> Dense(1)
    assert sum(p.numel() for p in model.parameters()) == 2851
    torch.manual_seed(0)
    reference = RNNRegressor(nn.RNN(2, 30, num_layers=2, batch_first=True)).double()
    ours = RNNRegressor(RNN.from_torch(reference.rnn)).double()
    ours.head.load_state_dict(reference.head.state_dict())
    x, lengths = torch.randn(3, 20, 2, dtype=F64), torch.tensor([20, 7, 12])
    torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(ours(x, lengths), reference(x, lengths), rtol=0, atol=1e-12)
    torch.testing.assert_close(ours(x, lengths)[1], ours(x[1:2, :7])[0], rtol=0, atol=1e-12)  # padding ignored


@pytest.mark.parametrize("kind", [RNN, nn.RNN, nn.LSTM, nn.GRU])
def test_keras_initialisation_has_spectral_radius_one(kind):
    torch.manual_seed(0)
    model = RNNRegressor(kind(2, 30, num_layers=2, batch_first=True), init="keras")
    for name, p in model.rnn.named_parameters():
        if p.dim() == 1:
            assert p.abs().max() == 0, name
        elif "hh" in name and kind in (RNN, nn.RNN):
            assert abs(spectral_radius(p.detach()) - 1) < 1e-5, name
    assert model(torch.zeros(4, 5, 2)).shape == (4, 1)


def test_keras_initialisation_is_the_same_for_torch_nn_and_the_lesson():
    torch.manual_seed(0)
    reference = nn.RNN(2, 30, num_layers=2, batch_first=True)
    layer = RNN(2, 30, num_layers=2, batch_first=True)
    state = torch.get_rng_state()
    RNNRegressor(layer, init="keras")
    torch.set_rng_state(state)
    RNNRegressor(reference, init="keras")
    torch.testing.assert_close(layer.cells[1].W_hh, reference.weight_hh_l1.T, rtol=0, atol=0)
    torch.testing.assert_close(layer.cells[0].W_xh, reference.weight_ih_l0.T, rtol=0, atol=0)


def test_default_initialisation_has_spectral_radius_near_one_over_sqrt_three():
    torch.manual_seed(0)
    layer = RNNRegressor(RNN(2, 30, num_layers=2, batch_first=True)).rnn
    assert all(0.4 < spectral_radius(cell.W_hh.detach()) < 0.8 for cell in layer.cells)


def test_system_saves_hyperparameters_but_not_the_model():
    system = RNNRegressionSystem(RNNRegressor(nn.RNN(2, 4, batch_first=True)), lr=0.01, optimizer="sgd")
    assert dict(system.hparams) == {"lr": 0.01, "optimizer": "sgd"}
    assert isinstance(system.configure_optimizers(), torch.optim.SGD)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: rnn_forward(torch.zeros(32, 100), torch.zeros(2, 4), torch.zeros(4, 4), torch.zeros(4)),
         r"expected x of shape \(N, T, D\) = \(\*, \*, 2\), floating-point, got \(32, 100\) torch.float32"),
        (lambda: rnn_forward(torch.zeros(2, 5, 3, dtype=torch.long), torch.zeros(3, 4), torch.zeros(4, 4), torch.zeros(4)),
         "floating-point, got \\(2, 5, 3\\) torch.int64"),
        (lambda: rnn_forward(torch.zeros(2, 0, 3), torch.zeros(3, 4), torch.zeros(4, 4), torch.zeros(4)), "T = 0"),
        (lambda: rnn_forward(torch.zeros(2, 5, 3), torch.zeros(3, 4), torch.zeros(4, 3), torch.zeros(4)),
         r"\(H, H\), \(H,\), \(N, H\) = \(4, 4\), \(4,\), \(2, 4\), got T = 5, \(4, 3\)"),
        (lambda: rnn_forward(torch.zeros(2, 5, 3), torch.zeros(3, 4), torch.zeros(4, 4), torch.zeros(4), torch.zeros(1, 2, 4)),
         r"\(2, 4\), got T = 5, \(4, 4\), \(4,\), \(1, 2, 4\)"),
        (lambda: rnn_backward(torch.zeros(2, 5, 3), rnn_forward(torch.zeros(2, 5, 3), torch.zeros(3, 4),
                                                                torch.zeros(4, 4), torch.zeros(4))[1]),
         r"expected dhs of shape \(N, T, H\) = \(2, 5, 4\), got \(2, 5, 3\)"),
        (lambda: many_to_one_mse(torch.zeros(2, 5, 4), torch.zeros(4, 1), torch.zeros(1), torch.zeros(2)),
         r"expected y of shape \(N, C\) = \(2, 1\), got \(2,\)"),
        (lambda: many_to_many_cross_entropy(torch.zeros(2, 5, 4), torch.zeros(4, 3), torch.zeros(3),
                                            torch.zeros(2, 4, dtype=torch.long)),
         r"expected y of shape \(N, T\) = \(2, 5\), got \(2, 4\)"),
        (lambda: loss_and_gradients(torch.zeros(2, 5, 3), torch.zeros(2, 1), _params(3, 4, 1), head="one_to_many"),
         "head"),
        (lambda: spectral_radius(torch.zeros(3, 4)), r"square matrix of shape \(H, H\), got \(3, 4\)"),
        (lambda: truncated_bptt(nn.RNN(2, 3, batch_first=True), nn.Linear(3, 1), torch.zeros(1, 4, 2),
                                torch.zeros(1, 4, 1), chunk=0), "chunk >= 1"),
        (lambda: RNNRegressor(nn.RNN(2, 3), init="xavier"), "init 'torch' or 'keras'"),
        (lambda: RNNRegressor(RNN(8, 4, batch_first=True))(torch.zeros(32, 64, 3)),
         r"expected input of shape \(N, T, D\) = \(\*, \*, 8\)"),
        (lambda: RNNRegressionSystem(nn.Linear(2, 1), optimizer="rmsprop"), "optimizer"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---- training on the multiplication problem ----

def test_two_rnn_layers_do_not_beat_the_baseline_on_the_multiplication_problem():
    """The fast version of the notes' experiment (T = 100, the notes' split, 4 epochs, batch 128)."""
    x, y = multiplication_problem()
    (x_tr, y_tr), (x_va, y_va), _ = notes_split(x, y)
    baseline = ((y_va - y_tr.mean()) ** 2).mean().item()
    pl.seed_everything(0, verbose=False)
    system = RNNRegressionSystem(RNNRegressor(RNN(2, 30, num_layers=2, batch_first=True)))
    train = DataLoader(TensorDataset(x_tr, y_tr), batch_size=128, shuffle=True, generator=torch.Generator().manual_seed(0))
    val_losses = []

    class Record(pl.Callback):
        def on_validation_epoch_end(self, trainer, module):
            if not trainer.sanity_checking:
                val_losses.append(float(trainer.callback_metrics["val_loss"]))

    lk._fit(lk.trainer(max_epochs=4, callbacks=[Record()], num_sanity_val_steps=0), system, train,
            DataLoader(TensorDataset(x_va, y_va), batch_size=512))
    assert len(val_losses) == 4
    assert min(val_losses) > 0.95 * baseline  # never meaningfully better than predicting the mean


# ---- the system is complete: the checks every LightningModule of the course passes ----

def _windows():
    torch.manual_seed(0)
    x = torch.randn(16, 5, 2)
    lengths = torch.tensor([5, 3, 4, 2] * 4)
    return TensorDataset(x, lengths, x[:, :, 1].sum(1, keepdim=True))


def _system():
    pl.seed_everything(0, verbose=False)
    return RNNRegressionSystem(RNNRegressor(RNN(2, 6, num_layers=2, batch_first=True)), lr=0.01)


def test_predict():
    lk.check_predict(_system, DataLoader(_windows(), batch_size=4))
    system = _system().eval()
    x = _windows().tensors[0][:3]
    torch.testing.assert_close(system.predict_step(x, 0), system.predict_step((x,), 0))  # no targets


def test_checkpoint_round_trip(tmp_path):
    loader = DataLoader(_windows(), batch_size=4)
    lk.check_checkpoint(_system, loader, loader, tmp_path, model=RNNRegressor(RNN(2, 6, num_layers=2, batch_first=True)))


def test_resume_equals_uninterrupted(tmp_path):
    loader = DataLoader(_windows(), batch_size=4)
    lk.check_resume(_system, loader, loader, tmp_path)


def test_ddp_two_processes_equal_one(tmp_path):
    lk.check_ddp(_system, _windows(), batch_size=8, tmp_path=tmp_path)


def test_bf16_mixed_on_cpu():
    lk.check_bf16(_system, DataLoader(_windows(), batch_size=4))


def test_gpu():
    lk.check_gpu(_system, DataLoader(_windows(), batch_size=4))


def test_swap_torch_layer_for_the_lesson_inside_the_system():
    torch.manual_seed(0)
    system = RNNRegressionSystem(RNNRegressor(nn.RNN(2, 6, num_layers=2, batch_first=True), 2))
    x, lengths = torch.randn(4, 5, 2), torch.tensor([5, 3, 4, 1])
    lk.check_swap(system, {nn.RNN: RNN.from_torch}, (x, lengths))


def test_command_line_help_and_config(tmp_path):
    script = Path(bptt.__file__)
    run = lambda *a: lk.run_script(str(script), *a)  # noqa: E731
    help_text = run("fit", "--help")
    assert help_text.returncode == 0 and "--model.model" in help_text.stdout and "--trainer.max_epochs" in help_text.stdout
    config = run("fit", "--print_config")
    assert config.returncode == 0, config.stderr
    assert "class_path: bptt.RNNRegressor" in config.stdout and "class_path: bptt.TorchRNN" in config.stdout
    assert "class_path: bptt.MultiplicationData" in config.stdout


def test_command_line_trains_and_checkpoint_loads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bptt.main(["fit", "--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false",
               "--trainer.enable_model_summary", "false", "--trainer.gradient_clip_val", "1.0",
               "--data.count", "300", "--data.steps", "10", "--model.model.init", "keras"])
    (path,) = tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt")
    system = RNNRegressionSystem.load_from_checkpoint(path)  # the model is rebuilt from its saved class path
    assert isinstance(system.model.rnn, nn.RNN) and system.model.rnn.num_layers == 2 and system.model.rnn.batch_first
    with open(tmp_path / "lightning_logs" / "version_0" / "metrics.csv") as f:
        assert any(row["grad_norm"] for row in csv.DictReader(f))


# ---- the benchmarks' quick modes ----

def _benchmark(name):
    return lk.load_script(ROOT / "benchmarks" / f"{name}.py", name, register=True)


def test_bptt_benchmark_quick_mode(tmp_path):
    results = _benchmark("bptt_multiplication").main(["--quick", "--out", str(tmp_path)])
    heads = {"bptt-multiplication.en.md": "| epoch | train MSE (torch init) | validation MSE (torch init) | train MSE (keras init)",
             "bptt-multiplication.md": "| 에포크 | 훈련 MSE(torch 초기화) | 검증 MSE(torch 초기화) | 훈련 MSE(keras 초기화)"}
    for name, head in heads.items():
        quick = (tmp_path / name).read_text(encoding="utf-8").splitlines()
        assert quick[0].startswith("<!-- generated by `python benchmarks/bptt_multiplication.py --quick`"), name
        assert quick[2].startswith(head), name
    assert (tmp_path / "bptt-multiplication.json").exists()
    assert {init: len(r["val_loss"]) for init, r in results.items()} == {"torch": 2, "keras": 2}
    assert results["torch"]["sizes"] == [205, 51, 44]


@pytest.mark.parametrize("layers", ["lessons", "torch"])
def test_gated_benchmark_quick_mode(tmp_path, layers):
    module = _benchmark("gated_multiplication")
    result = module.main(["--quick", "--layers", layers, "--out", str(tmp_path)])
    labels = {"gated-multiplication.md": ["RNN", "RNN, Keras 초기화", "LSTM", "GRU"],
              "gated-multiplication.en.md": ["RNN", "RNN, Keras init", "LSTM", "GRU"]}
    heads = {"gated-multiplication.md": "|  | 파라미터 수 | 1 에포크 | 2 에포크 | 최고 에포크 | 최고 검증 MSE / 기준 | 테스트 MSE / 기준 |",
             "gated-multiplication.en.md": "|  | parameters | epoch 1 | epoch 2 | best epochs | best val MSE / baseline | "
                                           "test MSE / baseline |"}
    for name, rows in labels.items():
        table = (tmp_path / name).read_text(encoding="utf-8")
        assert table.startswith("<!-- generated by `python benchmarks/gated_multiplication.py --quick"), name
        lines = table.splitlines()
        assert lines[2] == heads[name] and [line.split("|")[1].strip() for line in lines[4:8]] == rows, name
        # the committed table has the same columns after the parameter count, with the full run's epochs
        committed_head = (ROOT / "benchmarks" / "results" / name).read_text(encoding="utf-8").splitlines()[2]
        assert committed_head.split("|")[-4:] == lines[2].split("|")[-4:], name
    assert (tmp_path / "gated-multiplication.md").read_text(encoding="utf-8") == module.table(result, result["command"], "ko")
    assert all([s["seed"] for s in run["seeds"]] == [0, 1] for run in result["models"].values())  # quick: 2 seeds
    counts = {name: run["parameters"] for name, run in result["models"].items()}
    # the lessons' layers keep one bias vector per gate block, torch.nn's two; the Keras init changes no shape
    assert counts == ({"RNN": 2851, "RNN, Keras init": 2851, "LSTM": 11311, "GRU": 8551} if layers == "lessons" else
                      {"RNN": 2911, "RNN, Keras init": 2911, "LSTM": 11551, "GRU": 8671})


def test_gated_benchmark_sets_the_forget_gate_bias():
    gated = _benchmark("gated_multiplication")
    for layers in ("lessons", "torch"):
        torch.manual_seed(0)
        lstm = gated.build("LSTM", 1.0, layers).rnn
        H, x = 30, torch.randn(1, 3, 2)
        total = lstm.bias_ih_l0 + lstm.bias_hh_l0 if layers == "torch" else lstm.cells[0].b
        assert (total[H: 2 * H] == 1.0).all() and not (total[:H] == 1.0).all(), layers
        assert torch.isfinite(lstm(x)[0]).all()


def _check_notes_size_conclusions(results):
    torch_run, keras_run = results["torch"], results["keras"]
    assert len(torch_run["val_loss"]) == len(keras_run["val_loss"]) == 100
    assert torch_run["sizes"] == [2048, 512, 440]
    assert [s["seed"] for s in torch_run["seeds"]] == [s["seed"] for s in keras_run["seeds"]] == [0, 1, 2]
    # PyTorch's initialisation: training and validation stay at the baseline in every seed
    assert all(s["best_val"] > 0.95 and s["last_train"] > 0.9 for s in torch_run["seeds"])
    # Keras' initialisation: the training loss falls below the baseline, the validation loss ends above it
    assert all(s["last_train"] < 1 < s["last_val"] for s in keras_run["seeds"])
    assert statistics.mean(s["best_val"] for s in keras_run["seeds"]) > 0.9  # never learns the rule


def _mean_std(run, key):
    values = [s[key] for s in run["seeds"]]
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def test_the_pages_claims_hold_in_the_committed_full_run():
    """The conclusions and the mean ± std the pages quote, from the committed three-seed run."""
    results = json.loads((ROOT / "benchmarks" / "results" / "bptt-multiplication.json").read_text())
    _check_notes_size_conclusions(results)
    quoted = {("torch", "best_val"): "0.989 ± 0.007", ("keras", "last_train"): "0.493 ± 0.327",
              ("keras", "best_val"): "0.977 ± 0.059", ("keras", "last_val"): "1.460 ± 0.294"}
    assert {k: _mean_std(results[k[0]], k[1]) for k in quoted} == quoted
    for page in ("bptt.md", "bptt.en.md"):
        text = (ROOT / "docs" / page).read_text(encoding="utf-8")
        assert all(q in text for q in ("0.989 ± 0.007", "0.49 ± 0.33", "0.977 ± 0.059", "1.46 ± 0.29")), page
    # the committed tables render the committed JSON, each in its page's language (the first line names
    # the machine that ran it, which this one need not be)
    module = _benchmark("bptt_multiplication")
    for name, lang in (("bptt-multiplication.en.md", "en"), ("bptt-multiplication.md", "ko")):
        committed = (ROOT / "benchmarks" / "results" / name).read_text(encoding="utf-8")
        rendered = module.table(results, "python benchmarks/bptt_multiplication.py", lang)
        assert committed.splitlines()[1:] == rendered.splitlines()[1:], name
        assert committed.startswith("<!-- generated by `python benchmarks/bptt_multiplication.py` ("), name


@pytest.mark.slow
def test_notes_size_run(tmp_path):
    """The notes' full experiment again (several minutes): the conclusions the page draws from its table."""
    _check_notes_size_conclusions(_benchmark("bptt_multiplication").main(["--out", str(tmp_path)]))


def test_docstrings_keep_their_backslashes():
    """A non-raw docstring turned ``\\approx`` into a bell character on the API page."""
    import ast

    tree = ast.parse(Path(bptt.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node, clean=False):
            doc = ast.get_docstring(node, clean=False)
            assert not any(ord(c) < 32 and c not in "\n\t" for c in doc), getattr(node, "name", "module")
