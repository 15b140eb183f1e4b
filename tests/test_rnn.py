"""Tests of lessons/rnn.py: the from-scratch RNN is a drop-in for torch.nn.RNN (values, gradients,
packed and unbatched input, padding), bad input is refused clearly, the system is complete
(predict, checkpoint, resume, DDP, bf16) and the toy tasks train to their targets."""

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import layer_checks as lc
import lightning_checks as lk
from lessons import rnn
from lessons.datasets import char_sequence, sequence_windows
from lessons.rnn import RNN, ManyToMany, ManyToOne, RNNCell, RNNSystem


@pytest.mark.parametrize("config", [dict(c, nonlinearity=n) for c in lc.CONFIGS for n in ("tanh", "relu")],
                         ids=lambda c: lc.config_id(c))
def test_layer_equals_torch_rnn(config):
    lc.check_equal(RNN, nn.RNN, **config)


@pytest.mark.parametrize("config", lc.CONFIGS, ids=lc.config_id)
def test_layer_gradients_equal_torch_rnn(config):
    lc.check_gradients(RNN, nn.RNN, **config)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_padding_never_changes_an_answer(num_layers, bidirectional):
    lc.check_padding_invariance(RNN, num_layers=num_layers, bidirectional=bidirectional)


def _copy_cell(ours, reference):
    with torch.no_grad():
        ours.W_xh.copy_(reference.weight_ih.T)
        ours.W_hh.copy_(reference.weight_hh.T)
        if ours.b is not None:
            ours.b.copy_(reference.bias_ih + reference.bias_hh)


@pytest.mark.parametrize("config", [{}, {"bias": False}, {"nonlinearity": "relu"}])
def test_cell_equals_torch_rnn_cell(config):
    lc.check_cell_equal(RNNCell, nn.RNNCell, _copy_cell, **config)


def test_gradcheck_float64():
    torch.manual_seed(2)
    layer = RNN(3, 4, batch_first=True).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: layer(x)[0], (x,))


def test_weights_are_shared_across_time():
    layer = RNN(3, 4, batch_first=True)
    assert sum(p.numel() for p in layer.parameters()) == 3 * 4 + 4 * 4 + 4  # independent of T
    hs_short, _ = layer(torch.ones(1, 2, 3))
    hs_long, _ = layer(torch.ones(1, 6, 3))
    torch.testing.assert_close(hs_long[:, :2], hs_short)  # the same cell at every step


def test_input_projection_is_done_once_before_the_loop(monkeypatch):
    layer = RNN(3, 4, batch_first=True)
    cell = layer.cells[0]
    calls = {"recur": 0}
    recur = cell.recur

    def counting_recur(xp_t, h):
        calls["recur"] += 1
        assert xp_t.shape == (2, 4)  # already projected: (N, H), not (N, D)
        return recur(xp_t, h)

    monkeypatch.setattr(cell, "recur", counting_recur)
    monkeypatch.setattr(cell, "forward", lambda *a: pytest.fail("the layer must not call the full cell per step"))
    layer(torch.randn(2, 8, 3))
    assert calls["recur"] == 8


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    layer = RNN(3, 4, num_layers=2, dropout=0.5, batch_first=True)
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
        ([[0.0] * 8], r"got list"),
        (nn.utils.rnn.pack_sequence([torch.zeros(3, 5)]), r"PackedSequence of D = 8 features, got 5"),
    ],
)
def test_bad_input_gets_a_clear_error(x, message):
    with pytest.raises(ValueError, match=message):
        RNN(8, 4, batch_first=True)(x)


def test_bad_initial_state_gets_a_clear_error():
    layer = RNN(8, 4, batch_first=True)
    with pytest.raises(ValueError, match=r"\(L·num_directions, N, H\) = \(1, 2, 4\), got \(2, 4\)"):
        layer(torch.zeros(2, 3, 8), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(8, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="num_layers"):
        RNN(8, 4, num_layers=0)


@pytest.mark.parametrize("layer", [nn.RNN, RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_heads_take_any_dropin_layer_and_ignore_padding(layer, bidirectional):
    torch.manual_seed(0)
    x = torch.randn(3, 6, 4)
    lengths = torch.tensor([6, 2, 4])
    padded = x.clone()
    for i, n in enumerate(lengths):
        padded[i, n:] = 7.0  # whatever sits in the padding must not matter
    many_to_one = ManyToOne(layer(4, 5, batch_first=True, bidirectional=bidirectional), 2)
    many_to_many = ManyToMany(layer(4, 5, batch_first=True, bidirectional=bidirectional), 3)
    assert many_to_one(x).shape == (3, 2) and many_to_many(x).shape == (3, 6, 3)
    for i, n in enumerate(lengths):
        alone = x[i : i + 1, :n]
        torch.testing.assert_close(many_to_one(padded, lengths)[i], many_to_one(alone)[0])
        torch.testing.assert_close(many_to_many(padded, lengths)[i, :n], many_to_many(alone)[0])


def test_system_refuses_unknown_task():
    with pytest.raises(ValueError, match="task"):
        RNNSystem(nn.Linear(2, 2), task="ranking")


def test_accuracy_ignores_padded_targets():
    """-100 marks padding: the loss ignores it and so must the accuracy (it read 0.667 before)."""
    class Perfect(nn.Module):
        def forward(self, x):
            return x  # logits = the input

    y = torch.tensor([[0, 1, -100]])
    x = torch.nn.functional.one_hot(y.clamp(min=0), 2).float() * 10  # right wherever it counts
    system = RNNSystem(Perfect(), lr=0.1)
    system.metrics["val_metric"].reset()
    system.log = lambda *a, **k: None
    system._step((x, y), "val")
    assert float(system.metrics["val_metric"].compute()) == 1.0


def _hello():
    vocab, x, y = char_sequence("hello")
    return vocab, DataLoader(TensorDataset(x, y), batch_size=1)


def _hello_system():
    pl.seed_everything(0, verbose=False)
    return RNNSystem(ManyToMany(RNN(4, 8, batch_first=True), 4), lr=0.05)


def test_hello_char_model_learns_the_next_characters():
    vocab, loader = _hello()
    system = _hello_system()
    trainer = lk.trainer(max_epochs=100)
    lk._fit(trainer, system, loader)
    assert trainer.callback_metrics["train_acc"] == 1.0
    with torch.no_grad():
        assert vocab.decode(system(loader.dataset.tensors[0]).argmax(-1)[0]) == "ello"
    ids = vocab.encode("h")
    with torch.no_grad():
        for _ in range(4):  # greedy generation, as on the page: feed the text so far, append the argmax
            ids.append(int(system(torch.nn.functional.one_hot(torch.tensor([ids]), len(vocab)).float())[0, -1].argmax()))
    assert vocab.decode(ids) == "hello"


def test_sequence_toy_reaches_its_targets_and_is_reproducible():
    x, y = sequence_windows()
    probe = torch.tensor([[0.6, 0.7, 0.8, 0.9], [-0.1, 0.0, 0.1, 0.2]]).unsqueeze(-1)
    preds = []
    for _ in range(2):
        pl.seed_everything(0, verbose=False)
        system = RNNSystem(ManyToOne(RNN(1, 10, batch_first=True), 1), task="regression", lr=0.01)
        lk._fit(lk.trainer(max_epochs=300), system, DataLoader(TensorDataset(x, y), batch_size=6))
        with torch.no_grad():
            preds.append(system(probe).squeeze(-1))
    assert torch.equal(preds[0], preds[1])  # seeded and deterministic: identical run to run
    assert abs(preds[0][0].item() - 1.0) < 0.05  # closer to the target than to its neighbours (steps of 0.1)
    assert abs(preds[0][1].item() - 0.3) < 0.05


# ---- the system is complete: the checks every LightningModule of the course passes ----

def _windows():
    torch.manual_seed(0)
    x = torch.randn(16, 5, 3)
    lengths = torch.tensor([5, 3, 4, 2] * 4)
    return TensorDataset(x, lengths, x[:, :, 0].sum(1, keepdim=True))


def _window_system():
    pl.seed_everything(0, verbose=False)
    return RNNSystem(ManyToOne(RNN(3, 6, batch_first=True), 1), task="regression", lr=0.01)


def test_predict():
    lk.check_predict(_window_system, DataLoader(_windows(), batch_size=4))


def test_checkpoint_round_trip(tmp_path):
    loader = DataLoader(_windows(), batch_size=4)
    lk.check_checkpoint(_window_system, loader, loader, tmp_path, model=ManyToOne(RNN(3, 6, batch_first=True), 1))


def test_resume_equals_uninterrupted(tmp_path):
    loader = DataLoader(_windows(), batch_size=4)
    lk.check_resume(_window_system, loader, loader, tmp_path)


def test_ddp_two_processes_equal_one(tmp_path):
    lk.check_ddp(_window_system, _windows(), batch_size=8, tmp_path=tmp_path)


def test_ddp_spawn_end_to_end(tmp_path):
    """The one check with ``ddp_spawn`` itself (workers start afresh and receive the pickled system);
    every other system's DDP check forks its workers (tests/lightning_checks.py says why)."""
    lk.check_ddp(_window_system, _windows(), batch_size=8, tmp_path=tmp_path, strategy="ddp_spawn")


def test_bf16_mixed_on_cpu():
    lk.check_bf16(_window_system, DataLoader(_windows(), batch_size=4))


def test_gpu():
    lk.check_gpu(_window_system, DataLoader(_windows(), batch_size=4))


def test_swap_torch_layer_for_the_lesson_inside_the_system():
    torch.manual_seed(0)
    system = RNNSystem(ManyToOne(nn.RNN(3, 6, num_layers=2, batch_first=True, bidirectional=True), 2))
    x, lengths = torch.randn(4, 5, 3), torch.tensor([5, 3, 4, 1])
    lk.check_swap(system, {nn.RNN: RNN.from_torch}, (x, lengths))


def test_command_line_help_and_config(tmp_path):
    from pathlib import Path

    script = Path(rnn.__file__)
    run = lambda *a: lk.run_script(str(script), *a)  # noqa: E731
    help_text = run("fit", "--help")
    assert help_text.returncode == 0 and "--model.model" in help_text.stdout and "--trainer.max_epochs" in help_text.stdout
    config = run("fit", "--print_config")
    assert "class_path: rnn.ManyToMany" in config.stdout and "class_path: rnn.CharData" in config.stdout


def test_command_line_trains_and_checkpoint_loads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rnn.main(["fit", "--trainer.max_epochs", "120", "--trainer.enable_progress_bar", "false",
              "--trainer.enable_model_summary", "false"])
    (path,) = tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt")
    system = RNNSystem.load_from_checkpoint(path)  # the model is rebuilt from its saved class path
    vocab, loader = _hello()
    with torch.no_grad():
        assert vocab.decode(system(loader.dataset.tensors[0]).argmax(-1)[0]) == "ello"
