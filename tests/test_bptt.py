"""Tests of lessons/bptt.py: the hand-written BPTT equals autograd, passes gradcheck and finite
differences; gradient norms vanish or explode with the spectral radius; clipping and truncated BPTT
do what the page says; the multiplication problem's data are right and two stacked RNN layers fail
to generalise on it."""

import importlib.util
import json
import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lessons import bptt
from lessons import rnn as rnn_lesson
from lessons.bptt import (
    RNN,
    GradNormHistory,
    LossHistory,
    ManualBPTT,
    RNNRegressionSystem,
    StackedRNNRegressor,
    clip_gradient_norm,
    finite_difference,
    fit,
    hidden_gradient_norms,
    loss_and_gradients,
    many_to_many_cross_entropy,
    many_to_one_mse,
    norms_by_radius,
    rnn_backward,
    rnn_forward,
    spectral_radius,
    truncated_bptt,
    with_spectral_radius,
)
from lessons.datasets import multiplication_problem, notes_split

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64


@pytest.fixture
def one_thread():
    """Training runs of this small model: (N, 30) matrices are faster on one thread than on two
    (and much faster when the machine is busy)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _params(D=4, H=5, C=3, seed=0, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    shapes = {"W_xh": (D, H), "W_hh": (H, H), "b": (H,), "W_hy": (H, C), "c": (C,)}
    return {k: scale * torch.randn(*s, generator=g, dtype=F64) for k, s in shapes.items()}


def _autograd(x, y, params, head):
    """The same loss differentiated by autograd on the RNN lesson's layer (lessons/rnn.py)."""
    D, H = params["W_xh"].shape
    layer = rnn_lesson.RNN(D, H).double()
    with torch.no_grad():
        layer.cell.W_xh.copy_(params["W_xh"])
        layer.cell.W_hh.copy_(params["W_hh"])
        layer.cell.b.copy_(params["b"])
    W_hy = params["W_hy"].clone().requires_grad_(True)
    c = params["c"].clone().requires_grad_(True)
    x = x.clone().requires_grad_(True)
    hs, h_T = layer(x)
    if head == "many_to_one":
        loss = nn.functional.mse_loss(h_T @ W_hy + c, y)
    else:
        loss = nn.functional.cross_entropy((hs @ W_hy + c).flatten(0, 1), y.flatten())
    loss.backward()
    grads = {"dW_xh": layer.cell.W_xh.grad, "dW_hh": layer.cell.W_hh.grad, "db": layer.cell.b.grad,
             "dW_hy": W_hy.grad, "dc": c.grad, "dx": x.grad}
    return loss.detach(), grads


# ---------------------------------------------------------------------------------------------
# The forward pass
# ---------------------------------------------------------------------------------------------


def test_layer_equals_the_rnn_lesson_and_torch():
    torch.manual_seed(0)
    reference = nn.RNN(3, 6, batch_first=True).double()
    ours = RNN.from_torch(reference)
    theirs = rnn_lesson.RNN.from_torch(reference)
    x, h0 = torch.randn(4, 9, 3, dtype=F64), torch.randn(4, 6, dtype=F64)
    hs_ref, hT_ref = reference(x, h0.unsqueeze(0))
    hs, hT = ours(x, h0)
    torch.testing.assert_close(hs, hs_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(hT, hT_ref[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(hs, theirs(x, h0)[0], rtol=0, atol=0)


def test_rnn_forward_equals_the_layer():
    torch.manual_seed(1)
    layer = RNN(3, 6).double()
    x, h0 = torch.randn(4, 9, 3, dtype=F64), torch.randn(4, 6, dtype=F64)
    hs, cache = rnn_forward(x, layer.cell.W_xh.detach(), layer.cell.W_hh.detach(), layer.cell.b.detach(), h0)
    torch.testing.assert_close(hs, layer(x, h0)[0].detach(), rtol=0, atol=1e-12)
    assert cache.hs is hs and cache.h0 is h0 and cache.x is x


# ---------------------------------------------------------------------------------------------
# The backward pass: autograd, gradcheck, finite differences
# ---------------------------------------------------------------------------------------------


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
    x = torch.randn(2, 6, 3, generator=g, dtype=F64)
    h0 = torch.randn(2, 4, generator=g, dtype=F64)
    dhs = torch.randn(2, 6, 4, generator=g, dtype=F64)  # the loss looks at every step
    hs, cache = rnn_forward(x, params["W_xh"], params["W_hh"], params["b"], h0)
    grads = rnn_backward(dhs, cache)
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


def test_many_to_one_puts_gradient_on_the_last_step_only():
    hs = torch.randn(2, 5, 3, dtype=F64)
    _, g = many_to_one_mse(hs, torch.randn(3, 1, dtype=F64), torch.zeros(1, dtype=F64), torch.zeros(2, 1, dtype=F64))
    assert g["dhs"][:, :-1].abs().max() == 0 and g["dhs"][:, -1].abs().max() > 0


# ---------------------------------------------------------------------------------------------
# Vanishing and exploding gradients
# ---------------------------------------------------------------------------------------------


def test_spectral_radius_scaling():
    W = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))
    assert abs(spectral_radius(with_spectral_radius(W, 0.7)) - 0.7) < 1e-5


def test_gradient_norms_vanish_below_radius_one_and_explode_above():
    norms = norms_by_radius()  # radii 0.9, 1.0, 1.1; T = 50; small inputs
    low, one, high = norms[0.9], norms[1.0], norms[1.1]
    assert low.shape == (50,) and abs(low[0].item() - 1) < 1e-12
    ratios = low[1:] / low[:-1]
    assert ((ratios - 0.9).abs() < 1e-3).all()  # geometric: one factor 0.9 per step back
    assert (high[1:] > high[:-1]).all() and high[-1] > 50  # grows every step back
    assert ((one - 1).abs() < 0.01).all()  # near 1: neither
    # the numbers the page shows
    assert round(low[-1].item(), 4) == round(0.9**49, 4)


def test_saturated_states_make_gradients_vanish_even_above_radius_one():
    norms = norms_by_radius(input_scale=1.0)
    assert all(n[-1] < 1e-5 for n in norms.values())


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


# ---------------------------------------------------------------------------------------------
# Remedies: clipping, truncated BPTT
# ---------------------------------------------------------------------------------------------


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
    x, y = multiplication_problem(count=256, steps=20, seed=0)
    pl.seed_everything(0, verbose=False)
    system = RNNRegressionSystem(lr=0.5, optimizer="sgd")
    history, norms = LossHistory(), GradNormHistory()
    before = torch.cat([p.detach().flatten() for p in system.parameters()])
    updates = []

    class Updates(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.before = torch.cat([p.detach().flatten().clone() for p in module.parameters()])

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            after = torch.cat([p.detach().flatten() for p in module.parameters()])
            updates.append((after - self.before).norm().item())

    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    fit(system, loader, max_epochs=3, gradient_clip_val=clip, callbacks=[history, norms, Updates()])
    assert before.numel() == 2851
    return history.history["train_loss"], norms.norms, updates


def test_training_diverges_without_clipping_and_trains_with_it(one_thread):
    losses, norms, _ = _clip_run(None)
    assert not math.isfinite(losses[-1]) and max(norms) > 1e6  # inf or nan: diverged
    losses, norms, updates = _clip_run(0.1)
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert max(norms) > 0.1  # clipping had work to do …
    assert max(updates) <= 0.5 * 0.1 * (1 + 1e-4)  # … and SGD's step is at most lr * clip_val


def test_truncated_bptt_with_one_chunk_is_full_bptt():
    torch.manual_seed(0)
    layer, head = RNN(2, 4).double(), nn.Linear(4, 1).double()
    x, y = torch.randn(3, 12, 2, dtype=F64), torch.randn(3, 12, 1, dtype=F64)
    truncated_bptt(layer, head, x, y, chunk=12)
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
    # truncated: the last chunk alone, starting from the carried (detached) state h_8
    _, chunk_cache = rnn_forward(x[:, 8:], params["W_xh"], params["W_hh"], params["b"], hs[:, 7])
    chunk = rnn_backward(dhs[:, 8:], chunk_cache)
    torch.testing.assert_close(chunk.dh, full.dh[:, 8:], rtol=0, atol=1e-12)  # same inside the chunk
    torch.testing.assert_close(chunk.dh0, full.dh[:, 7], rtol=0, atol=1e-12)  # what truncation drops
    assert full.dh[:, :8].abs().max() > 1e-3  # full BPTT keeps going back

    # and the autograd version carries the state but cuts the graph at every chunk boundary
    torch.manual_seed(1)
    layer, head = RNN(2, 4).double(), nn.Linear(4, 1).double()
    y = torch.randn(3, 12, 1, dtype=F64)
    losses = truncated_bptt(layer, head, x, y, chunk=4)
    assert len(losses) == 3
    chunk_grads = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    h, expected = None, 0
    for k in range(3):  # the same three chunks by hand, each with a detached start
        hs_k, h = layer(x[:, 4 * k: 4 * k + 4], None if h is None else h.detach())
        nn.functional.mse_loss(head(hs_k), y[:, 4 * k: 4 * k + 4]).backward()
    for a, p in zip(chunk_grads, layer.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=0, atol=1e-12)
    full_losses = nn.functional.mse_loss(head(layer(x)[0]), y, reduction="none").mean(dim=(0, 2))
    torch.testing.assert_close(torch.tensor(losses, dtype=F64), full_losses.view(3, 4).mean(1), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# The multiplication problem: data
# ---------------------------------------------------------------------------------------------


def test_multiplication_problem_shapes_markers_and_targets():
    x, y = multiplication_problem(count=500, steps=100, seed=3)
    assert x.shape == (500, 100, 2) and y.shape == (500, 1) and x.dtype == torch.float32
    marker, value = x[..., 0], x[..., 1]
    assert set(marker.unique().tolist()) == {0.0, 1.0}
    assert (marker.sum(dim=1) == 2).all()  # exactly two markers, at two distinct positions
    assert ((value >= 0) & (value < 1)).all()
    positions = marker.nonzero()[:, 1].view(500, 2)
    assert (positions[:, 0] < positions[:, 1]).all()
    torch.testing.assert_close(y, value.gather(1, positions).prod(dim=1, keepdim=True), rtol=0, atol=0)
    first = positions[:, 0].float()
    assert first.min() == 0 and positions[:, 1].max() == 99  # markers reach both ends


def test_multiplication_problem_is_reproducible_and_seeded():
    x1, y1 = multiplication_problem(count=50, steps=30, seed=0)
    x2, y2 = multiplication_problem(count=50, steps=30, seed=0)
    x3, _ = multiplication_problem(count=50, steps=30, seed=1)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    multiplication_problem(count=5)
    assert torch.equal(state, torch.get_rng_state())  # a private generator: the global state is untouched


def test_module_command_line_data_equals_the_shared_generator():
    for count, steps, seed in [(3000, 100, 0), (7, 5, 2)]:
        x, y = multiplication_problem(count=count, steps=steps, seed=seed)
        x2, y2 = bptt._multiplication_data(count, steps, seed)
        assert torch.equal(x, x2) and torch.equal(y, y2)


def test_multiplication_problem_target_statistics():
    _, y = multiplication_problem()
    # u1 * u2 for independent uniform values: mean 1/4, variance 1/9 - 1/16 = 7/144
    assert abs(y.mean().item() - 0.25) < 0.01
    assert abs(y.var().item() - 7 / 144) < 0.004


def test_multiplication_problem_refuses_bad_sizes():
    with pytest.raises(ValueError, match="at least 2 time steps"):
        multiplication_problem(steps=1)
    with pytest.raises(ValueError, match="count >= 1"):
        multiplication_problem(count=0)


def test_notes_split_sizes_and_order():
    x, y = multiplication_problem()
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = notes_split(x, y)
    assert [len(x_tr), len(x_va), len(x_te)] == [2048, 512, 440]
    assert torch.equal(torch.cat([x_tr, x_va, x_te]), x) and torch.equal(torch.cat([y_tr, y_va, y_te]), y)
    with pytest.raises(ValueError, match="fit_count"):
        notes_split(x, y, fit_count=5000)


# ---------------------------------------------------------------------------------------------
# The model, the system, bad input
# ---------------------------------------------------------------------------------------------


def test_stacked_regressor_matches_keras_parameter_count_and_torch():
    model = StackedRNNRegressor()  # SimpleRNN(30) -> SimpleRNN(30) -> Dense(1) on 2 features
    assert sum(p.numel() for p in model.parameters()) == 2851
    assert model(torch.zeros(5, 10, 2)).shape == (5, 1)
    # the same function as torch.nn.RNN(num_layers=2) with copied weights
    torch.manual_seed(0)
    reference = nn.RNN(2, 30, num_layers=2, batch_first=True).double()
    model = StackedRNNRegressor().double()
    with torch.no_grad():
        for i, layer in enumerate(model.layers):
            layer.cell.W_xh.copy_(getattr(reference, f"weight_ih_l{i}").T)
            layer.cell.W_hh.copy_(getattr(reference, f"weight_hh_l{i}").T)
            layer.cell.b.copy_(getattr(reference, f"bias_ih_l{i}") + getattr(reference, f"bias_hh_l{i}"))
    x = torch.randn(3, 20, 2, dtype=F64)
    torch.testing.assert_close(model(x), model.head(reference(x)[1][-1]), rtol=0, atol=1e-12)


def test_keras_initialisation_has_spectral_radius_one():
    torch.manual_seed(0)
    model = StackedRNNRegressor(init="keras")
    for layer in model.layers:
        assert abs(spectral_radius(layer.cell.W_hh.detach()) - 1) < 1e-5
        assert layer.cell.b.abs().max() == 0
    default = StackedRNNRegressor()
    assert all(0.4 < spectral_radius(layer.cell.W_hh.detach()) < 0.8 for layer in default.layers)


def test_system_saves_hyperparameters():
    system = RNNRegressionSystem(hidden_size=8, num_layers=3, lr=0.01, optimizer="sgd")
    assert dict(system.hparams) == {"input_size": 2, "hidden_size": 8, "num_layers": 3, "lr": 0.01,
                                    "optimizer": "sgd", "init": "torch"}
    assert len(system.model.layers) == 3


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: StackedRNNRegressor()(torch.zeros(32, 100)), r"expected x of shape \(N, T, D\) = \(\*, \*, 2\), got \(32, 100\)"),
        (lambda: StackedRNNRegressor()(torch.zeros(4, 0, 2)), "at least one time step"),
        (lambda: StackedRNNRegressor(num_layers=0), "num_layers >= 1"),
        (lambda: StackedRNNRegressor(init="xavier"), "init 'torch' or 'keras'"),
        (lambda: RNN(3, 4)(torch.zeros(2, 5, 3), torch.zeros(1, 2, 4)), r"expected h0 of shape \(N, H\) = \(2, 4\)"),
        (lambda: rnn_forward(torch.zeros(2, 5, 3), torch.zeros(3, 4), torch.zeros(4, 3), torch.zeros(4)),
         r"expected W_hh of shape \(H, H\) = \(4, 4\)"),
        (lambda: rnn_backward(torch.zeros(2, 5, 3), rnn_forward(torch.zeros(2, 5, 3), torch.zeros(3, 4),
                                                                torch.zeros(4, 4), torch.zeros(4))[1]),
         r"expected dhs of shape \(N, T, H\) = \(2, 5, 4\)"),
        (lambda: many_to_one_mse(torch.zeros(2, 5, 4), torch.zeros(4, 1), torch.zeros(1), torch.zeros(2)),
         r"expected y of shape \(N, C\) = \(2, 1\), got \(2,\)"),
        (lambda: many_to_many_cross_entropy(torch.zeros(2, 5, 4), torch.zeros(4, 3), torch.zeros(3),
                                            torch.zeros(2, 4, dtype=torch.long)),
         r"expected y of shape \(N, T\) = \(2, 5\)"),
        (lambda: loss_and_gradients(torch.zeros(2, 5, 3), torch.zeros(2, 1), _params(3, 4, 1), head="one_to_many"),
         "head"),
        (lambda: spectral_radius(torch.zeros(3, 4)), r"square matrix of shape \(H, H\)"),
        (lambda: truncated_bptt(RNN(2, 3), nn.Linear(3, 1), torch.zeros(1, 4, 2), torch.zeros(1, 4, 1), chunk=0),
         "chunk >= 1"),
        (lambda: RNNRegressionSystem(optimizer="rmsprop"), "optimizer"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------------------------------------
# Training on the multiplication problem
# ---------------------------------------------------------------------------------------------


def test_two_rnn_layers_do_not_beat_the_baseline_on_the_multiplication_problem(one_thread):
    """The fast version of the notes' experiment (T = 100, the notes' split, fewer epochs)."""
    x, y = multiplication_problem()
    (x_tr, y_tr), (x_va, y_va), _ = notes_split(x, y)
    baseline = ((y_va - y_tr.mean()) ** 2).mean().item()
    pl.seed_everything(0, verbose=False)
    system = RNNRegressionSystem()
    history = LossHistory()
    train = DataLoader(TensorDataset(x_tr, y_tr), batch_size=128, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
    fit(system, train, DataLoader(TensorDataset(x_va, y_va), batch_size=512), max_epochs=4, callbacks=[history])
    val = history.history["val_loss"]
    assert len(val) == 4
    assert min(val) > 0.95 * baseline  # never meaningfully better than predicting the mean


def test_command_line_runs(capsys):
    bptt.main(["--task", "norms", "--steps", "20", "--hidden", "8"])
    out = capsys.readouterr().out
    assert "radius" in out and "1.1" in out


def test_benchmark_script_quick_mode(tmp_path):
    spec = importlib.util.spec_from_file_location("bptt_multiplication", ROOT / "benchmarks" / "bptt_multiplication.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--out", str(tmp_path)])
    quick = (tmp_path / "bptt-multiplication.md").read_text(encoding="utf-8").splitlines()
    committed = (ROOT / "benchmarks" / "results" / "bptt-multiplication.md").read_text(encoding="utf-8").splitlines()
    assert quick[0].startswith("<!-- generated by `python benchmarks/bptt_multiplication.py --quick`")
    assert committed[0].startswith("<!-- generated by `python benchmarks/bptt_multiplication.py` (")
    assert quick[2:4] == committed[2:4]  # the same table header
    assert (tmp_path / "bptt-multiplication.json").exists()


def _check_notes_size_conclusions(results):
    torch_run, keras_run = results["torch"], results["keras"]
    assert len(torch_run["val_loss"]) == len(keras_run["val_loss"]) == 100
    assert torch_run["sizes"] == [2048, 512, 440]
    # PyTorch's initialisation: never meaningfully better than answering the training mean
    assert min(torch_run["val_loss"]) > 0.95 * torch_run["baseline_val"]
    assert min(torch_run["train_loss"]) > 0.9 * torch_run["train_loss"][1]  # training loss stays flat too
    # Keras' initialisation (orthogonal W_hh): it learns, and the train/validation gap widens
    assert keras_run["val_loss"][-1] < 0.5 * keras_run["baseline_val"]
    gap = [v - t for t, v in zip(keras_run["train_loss"], keras_run["val_loss"])]
    assert sum(gap[-10:]) / 10 > 2 * max(sum(gap[:10]) / 10, 1e-4)


def test_committed_notes_size_results_support_the_page():
    """The page's conclusions hold for the committed run of benchmarks/bptt_multiplication.py."""
    results = json.loads((ROOT / "benchmarks" / "results" / "bptt-multiplication.json").read_text(encoding="utf-8"))
    _check_notes_size_conclusions(results)


@pytest.mark.slow
def test_notes_size_run():
    """The notes' full experiment again (a few minutes): the same conclusions."""
    spec = importlib.util.spec_from_file_location("bptt_multiplication", ROOT / "benchmarks" / "bptt_multiplication.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    size = dict(steps=100, epochs=100, batch_size=32, count=3000)
    _check_notes_size_conclusions({init: module.run(**size, init=init) for init in ("torch", "keras")})
