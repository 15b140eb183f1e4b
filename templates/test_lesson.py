"""Tests of lessons/topic.py: the model equals its torch.nn reference in values and gradients,
bad input is refused with a clear message, and a short training reaches its target.

Template note (delete this paragraph): copy to `tests/test_<name>.py` with the same replacements
as `templates/lesson.py`. Keep the kinds of test (equality, shapes, bad input, training, the Lightning checks); the numbers a page shows are asserted by the
page's own executed examples, so a test here checks the behaviour behind them.
"""

import pytest
import torch
from torch import nn

from torch.utils.data import DataLoader, TensorDataset

import lightning_checks as lk
from lessons.topic import TopicClassifier, TopicData, TopicModel, make_data


def model_like(reference: nn.RNN, num_classes: int = 2) -> TopicModel:
    """A TopicModel with the reference's weights (call after any dtype cast: a bias summed in
    float32 and then cast differs by ~1e-8)."""
    model = TopicModel(reference.input_size, reference.hidden_size, num_classes).to(reference.weight_ih_l0.dtype)
    with torch.no_grad():
        model.cell.W_xh.copy_(reference.weight_ih_l0.T)  # torch stores (H, D); the page uses (D, H)
        model.cell.W_hh.copy_(reference.weight_hh_l0.T)
        model.cell.b_h.copy_(reference.bias_ih_l0 + reference.bias_hh_l0)  # torch has two biases
    return model


@pytest.fixture
def pair() -> tuple[nn.RNN, TopicModel]:
    torch.manual_seed(0)
    reference = nn.RNN(input_size=3, hidden_size=5, batch_first=True).double()
    return reference, model_like(reference)


def test_hidden_states_equal_torch(pair):
    reference, model = pair
    x = torch.randn(4, 7, 3, dtype=torch.float64)  # (N, T, D)
    expected, h_T = reference(x)  # (N, T, H), (1, N, H)
    hs = model.hidden_states(x)
    torch.testing.assert_close(hs, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(hs[:, -1], h_T[0], rtol=0, atol=1e-12)


def test_gradients_equal_torch(pair):
    reference, model = pair
    x = torch.randn(4, 7, 3, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    weights = torch.randn(4, 7, 5, dtype=torch.float64)  # a loss that weighs every step differently
    (model.hidden_states(x) * weights).sum().backward()
    (reference(x_ref)[0] * weights).sum().backward()
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=0, atol=1e-12)  # noqa: E731
    close(x.grad, x_ref.grad)
    close(model.cell.W_xh.grad, reference.weight_ih_l0.grad.T)
    close(model.cell.W_hh.grad, reference.weight_hh_l0.grad.T)
    close(model.cell.b_h.grad, reference.bias_ih_l0.grad)


def test_output_shape():
    model = TopicModel(input_size=3, hidden_size=5, num_classes=4)
    assert model(torch.zeros(2, 6, 3)).shape == (2, 4)  # (N, C)


@pytest.mark.parametrize("shape", [(6, 3), (2, 6, 4), (2, 6, 3, 1)])
def test_bad_input_is_refused(shape):
    model = TopicModel(input_size=3, hidden_size=5, num_classes=2)
    with pytest.raises(ValueError, match=r"expected x of shape \(N, T, D\) = \(\*, \*, 3\)"):
        model(torch.zeros(shape))


def test_data_is_deterministic_and_balanced():
    x, y = make_data(seed=0)
    x2, y2 = make_data(seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert x.shape == (768, 9, 1) and set(x.unique().tolist()) == {-1.0, 1.0}
    assert 0.4 < y.float().mean().item() < 0.6


def _system() -> TopicClassifier:
    torch.manual_seed(0)
    return TopicClassifier(TopicModel(input_size=1, hidden_size=8, num_classes=2), lr=0.1)


def _data(n: int = 32) -> TensorDataset:
    return TensorDataset(*make_data(num_sequences=n))


def test_hyperparameters_are_saved():
    system = TopicClassifier(TopicModel(1, 8, 2), lr=0.1)
    assert system.hparams.lr == 0.1 and "model" not in system.hparams


def test_short_training_reaches_its_target():
    trainer = lk.trainer(max_epochs=15)
    data = TopicData()
    lk._fit(trainer, _system(), data.train_dataloader(), data.val_dataloader())
    assert trainer.callback_metrics["val_acc"] > 0.9


def test_system_is_complete(tmp_path):
    loader = DataLoader(_data(), batch_size=8)
    lk.check_predict(_system, loader)
    lk.check_checkpoint(_system, loader, loader, tmp_path, model=TopicModel(1, 8, 2))
    lk.check_resume(_system, loader, loader, tmp_path)
    lk.check_bf16(_system, loader)
