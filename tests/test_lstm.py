"""Tests of lessons/lstm.py: the from-scratch LSTM (readable and fast) equals torch.nn.LSTM in
outputs, final states and gradients, in every layout it supports; the hand-written cell backward
equals autograd; bad input is refused clearly; a short training reaches its target."""

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from lessons import lstm
from lessons.lstm import LSTM, FastLSTM, LSTMCell, LSTMClassifier, LSTMRegressor, LSTMSystem, cell_backward, fit

LAYERS = [LSTM, FastLSTM]


def _close(a, b, tol=1e-12):
    torch.testing.assert_close(a, b, rtol=0, atol=tol)


@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("batch_first", [True, False])
def test_equals_torch_lstm_outputs_and_states(cls, num_layers, batch_first):
    torch.manual_seed(0)
    reference = nn.LSTM(5, 7, num_layers=num_layers, batch_first=batch_first).double()
    ours = cls.from_torch(reference)  # copied after the cast
    x = torch.randn(4, 9, 5, dtype=torch.float64)  # (N, T, D) or (T, N, D)
    N = 4 if batch_first else 9
    state = (torch.randn(num_layers, N, 7, dtype=torch.float64), torch.randn(num_layers, N, 7, dtype=torch.float64))
    out, (h_n, c_n) = ours(x, state)
    out_ref, (h_ref, c_ref) = reference(x, state)
    _close(out, out_ref)
    _close(h_n, h_ref)
    _close(c_n, c_ref)
    out0, _ = ours(x)  # zero initial state by default, as torch
    _close(out0, reference(x)[0])


@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("batch_first", [True, False])
def test_equals_torch_lstm_gradients(cls, batch_first):
    torch.manual_seed(1)
    reference = nn.LSTM(3, 4, num_layers=2, batch_first=batch_first).double()
    ours = cls.from_torch(reference)
    x = torch.randn(3, 11, 3, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    N = 3 if batch_first else 11
    h0 = torch.randn(2, N, 4, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, N, 4, dtype=torch.float64, requires_grad=True)
    h0_ref, c0_ref = (s.detach().clone().requires_grad_(True) for s in (h0, c0))
    w_out = torch.randn(3, 11, 4, dtype=torch.float64)  # a loss that uses every output differently
    w_h, w_c = torch.randn(2, N, 4, dtype=torch.float64), torch.randn(2, N, 4, dtype=torch.float64)

    def loss(out, h_n, c_n):
        return (out * w_out).sum() + (h_n * w_h).sum() + (c_n * w_c).sum()

    out, (h_n, c_n) = ours(x, (h0, c0))
    loss(out, h_n, c_n).backward()
    out, (h_n, c_n) = reference(x_ref, (h0_ref, c0_ref))
    loss(out, h_n, c_n).backward()
    _close(x.grad, x_ref.grad)
    _close(h0.grad, h0_ref.grad)
    _close(c0.grad, c0_ref.grad)
    for k, cell in enumerate(ours.cells):
        _close(cell.W_xh.grad, getattr(reference, f"weight_ih_l{k}").grad.T)
        _close(cell.W_hh.grad, getattr(reference, f"weight_hh_l{k}").grad.T)
        _close(cell.b.grad, getattr(reference, f"bias_ih_l{k}").grad)  # b = b_ih + b_hh
        _close(cell.b.grad, getattr(reference, f"bias_hh_l{k}").grad)


def test_float32_matches_within_float32_precision():
    torch.manual_seed(2)
    reference = nn.LSTM(6, 8, num_layers=2, batch_first=True)
    x = torch.randn(5, 20, 6)
    for cls in LAYERS:
        torch.testing.assert_close(cls.from_torch(reference)(x)[0], reference(x)[0], rtol=0, atol=1e-5)


def test_cell_equals_torch_lstm_cell_gate_order_i_f_g_o():
    torch.manual_seed(3)
    reference = nn.LSTMCell(4, 3).double()
    cell = LSTMCell(4, 3).double()
    with torch.no_grad():
        cell.W_xh.copy_(reference.weight_ih.T)
        cell.W_hh.copy_(reference.weight_hh.T)
        cell.b.copy_(reference.bias_ih + reference.bias_hh)
    x, h, c = (torch.randn(6, d, dtype=torch.float64) for d in (4, 3, 3))
    h_ours, c_ours = cell(x, (h, c))
    h_ref, c_ref = reference(x, (h, c))
    _close(h_ours, h_ref)
    _close(c_ours, c_ref)
    # the forget gate is the second block: zeroing it makes c_t forget c_{t-1} entirely
    with torch.no_grad():
        cell.b[3:6] = -1e3
    _, c_forgot = cell(x, (h, c))
    _, c_from_zero = cell(x, (h, torch.zeros_like(c)))
    _close(c_forgot, c_from_zero)


def test_hand_written_cell_backward_equals_autograd():
    torch.manual_seed(4)
    cell = LSTMCell(5, 6).double()
    x = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    h = torch.randn(7, 6, dtype=torch.float64, requires_grad=True)
    c = torch.randn(7, 6, dtype=torch.float64, requires_grad=True)
    h_t, c_t = cell(x, (h, c))
    dh, dc = torch.randn_like(h_t), torch.randn_like(c_t)
    names = ["x", "h_prev", "c_prev", "W_xh", "W_hh", "b"]
    expected = torch.autograd.grad((h_t * dh).sum() + (c_t * dc).sum(), [x, h, c, cell.W_xh, cell.W_hh, cell.b])
    ours = cell_backward(x.detach(), h.detach(), c.detach(), cell, dh, dc)
    assert sorted(ours) == sorted(names)
    for name, grad in zip(names, expected):
        _close(ours[name], grad)


def test_fast_layer_passes_gradcheck():
    torch.manual_seed(5)
    layer = FastLSTM(3, 4, num_layers=2).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 4, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, 2, 4, dtype=torch.float64, requires_grad=True)

    def run(x, h0, c0):
        out, (h_n, c_n) = layer(x, (h0, c0))
        return out, h_n, c_n

    assert torch.autograd.gradcheck(run, (x, h0, c0))


def test_input_projection_is_done_once_before_the_loop(monkeypatch):
    layer = LSTM(3, 4)
    calls = {"recur": 0}
    recur = layer.cells[0].recur

    def counting_recur(xp_t, h, c):
        calls["recur"] += 1
        assert xp_t.shape == (2, 16)  # already projected: (N, 4H), not (N, D)
        return recur(xp_t, h, c)

    monkeypatch.setattr(layer.cells[0], "recur", counting_recur)
    monkeypatch.setattr(layer.cells[0], "forward", lambda *a: pytest.fail("no full cell call per step"))
    layer(torch.randn(2, 8, 3))
    assert calls["recur"] == 8


def test_parameter_count_is_four_times_the_rnn():
    D, H = 3, 5
    assert sum(p.numel() for p in LSTM(D, H).parameters()) == 4 * (D * H + H * H + H)
    assert sum(p.numel() for p in nn.LSTM(D, H).parameters()) == 4 * (D * H + H * H + 2 * H)  # two biases


def test_gate_trace_shapes_and_ranges():
    torch.manual_seed(6)
    layer = LSTM(2, 5, num_layers=2)
    x = torch.randn(3, 7, 2)
    trace = layer.gate_trace(x)
    assert sorted(trace) == sorted("ifgoch")
    assert all(v.shape == (3, 7, 5) for v in trace.values())
    assert all(((trace[k] > 0) & (trace[k] < 1)).all() for k in "ifo")
    _close(trace["h"], layer(x)[0], tol=1e-6)


def test_from_torch_refuses_what_it_cannot_copy():
    with pytest.raises(ValueError, match="one-direction"):
        LSTM.from_torch(nn.LSTM(3, 4, bidirectional=True))
    with pytest.raises(ValueError, match="proj_size"):
        LSTM.from_torch(nn.LSTM(3, 4, proj_size=2))
    no_bias = nn.LSTM(3, 4, bias=False, batch_first=True)
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(LSTM.from_torch(no_bias)(x)[0], no_bias(x)[0])


@pytest.mark.parametrize("cls", LAYERS)
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
def test_bad_input_gets_a_clear_error(cls, x, message):
    with pytest.raises(ValueError, match=message):
        cls(8, 4)(x)


def test_bad_state_gets_a_clear_error():
    layer = LSTM(8, 4, num_layers=2)
    x = torch.zeros(3, 5, 8)
    with pytest.raises(ValueError, match=r"expected h0 of shape \(L, N, H\) = \(2, 3, 4\), got \(3, 4\)"):
        layer(x, (torch.zeros(3, 4), torch.zeros(2, 3, 4)))
    with pytest.raises(ValueError, match=r"tuple \(h0, c0\)"):
        layer(x, torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="dtype"):
        layer(x, (torch.zeros(2, 3, 4), torch.zeros(2, 3, 4, dtype=torch.float64)))
    with pytest.raises(ValueError, match=r"\(T, N, D\)"):
        LSTM(8, 4, batch_first=False)(torch.zeros(3, 8))
    with pytest.raises(ValueError, match=r"word ids of shape \(N, T\)"):
        LSTMClassifier(10, 4, 4, 2)(torch.zeros(2, 3, 4))


def test_heads_shapes():
    assert LSTMRegressor(2, 6, num_layers=2)(torch.randn(5, 7, 2)).shape == (5, 1)
    assert LSTMClassifier(20, 4, 6, 3)(torch.randint(0, 20, (5, 7))).shape == (5, 3)
    with pytest.raises(ValueError, match="task"):
        LSTMSystem("ranking")


def _loader(x, y, batch_size, shuffle=False):
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle)


def test_short_multiplication_problem_learns_and_is_reproducible():
    """T = 10 in a few seconds: far below the baseline that predicts the mean (the page does T = 100)."""
    x, y = lstm._multiplication(1200, 10, seed=0)
    losses = []
    for _ in range(2):
        pl.seed_everything(0, verbose=False)
        system = LSTMSystem("regression", lr=0.01, input_size=2, hidden_size=16, num_layers=1)
        trainer = fit(system, _loader(x[:1000], y[:1000], 50, shuffle=True), _loader(x[1000:], y[1000:], 200),
                      max_epochs=12)
        losses.append(trainer.callback_metrics["val_mse"].item())
    assert losses[0] == losses[1]
    assert losses[0] < 0.2 * y[1000:].var().item()


def test_command_line_runs(capsys):
    lstm.main(["--steps", "5", "--epochs", "1", "--hidden", "4", "--layers", "1"])
    assert "of the target variance" in capsys.readouterr().out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fast_layer_on_gpu_equals_torch():
    torch.manual_seed(0)
    reference = nn.LSTM(5, 7, num_layers=2, batch_first=True).double().cuda()
    x = torch.randn(4, 9, 5, dtype=torch.float64, device="cuda")
    _close(FastLSTM.from_torch(reference)(x)[0], reference(x)[0], tol=1e-10)


# --------------------------------------------------------------------------------------------
# Data for the news-topic classifier, and the scripts whose results the pages include
# --------------------------------------------------------------------------------------------

import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from lessons.datasets import (  # noqa: E402
    REUTERS_SHA256,
    REUTERS_URL,
    WordVocab,
    encode_texts,
    load_bbc_news,
    load_reuters,
    text_split,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))


def _write_keras_npz(path: Path) -> None:
    """A small file in the format of Keras' reuters.npz: an object array x of word-id lists and int64 y."""
    np = pytest.importorskip("numpy")
    x = np.empty(3, dtype=object)
    x[0], x[1], x[2] = [1, 14, 22, 7], [1, 2], [1, 5, 5, 5, 9]
    np.savez(path, x=x, y=np.array([3, 0, 45], dtype=np.int64))


def test_reuters_loader_reads_the_keras_format_and_checks_the_checksum(tmp_path, monkeypatch):
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: pytest.fail("no download in tests"))
    path = tmp_path / "reuters.npz"
    _write_keras_npz(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    sequences, labels = load_reuters(path, sha256=digest)
    assert sequences == [[1, 14, 22, 7], [1, 2], [1, 5, 5, 5, 9]]
    assert labels == [3, 0, 45]
    with pytest.raises(ValueError, match="SHA-256"):
        load_reuters(path)  # the real file's checksum does not match the small one
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_reuters(tmp_path / "missing.npz")
    assert REUTERS_URL.endswith("/reuters.npz") and len(REUTERS_SHA256) == 64


def test_reuters_loader_refuses_code_in_the_pickle(tmp_path):
    import io
    import pickle
    import zipfile

    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (63 - len(header)) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + pickle.dumps(print)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", npy)
        archive.writestr("y.npy", npy)
    path = tmp_path / "evil.npz"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_reuters(path, sha256=None)


def test_bbc_news_loader_vocabulary_and_padding():
    texts, labels = load_bbc_news()
    assert len(texts) == len(labels) == 2225
    assert sorted(set(labels)) == [0, 1, 2, 3, 4]
    train, val, test = text_split(len(texts))
    assert len(set(train.tolist()) | set(val.tolist()) | set(test.tolist())) == 2225
    vocab = WordVocab([texts[i] for i in train], size=50)
    assert len(vocab) == 50 and vocab.words[:2] == ["<pad>", "<unk>"]
    tokens = encode_texts(texts[:3], vocab, maxlen=400)
    assert tokens.shape == (3, 400) and tokens.dtype == torch.long
    lengths = [min(len(WordVocab.tokenize(t)), 400) for t in texts[:3]]
    assert (tokens != 0).sum(dim=1).tolist() == lengths  # unknown words are 1, only padding is 0
    assert (tokens[:, -1] != 0).all()  # padding in front
    with pytest.raises(ValueError, match="size"):
        WordVocab(["a"], size=2)


def test_gated_multiplication_script_runs_quickly(tmp_path):
    import gated_multiplication

    result = gated_multiplication.main(["--quick", "--out", str(tmp_path)])
    table = (tmp_path / "gated-multiplication.md").read_text()
    assert table.startswith("<!-- generated by `python benchmarks/gated_multiplication.py --quick`")
    assert [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")][1:] == [
        "RNN", "LSTM", "GRU"
    ]
    assert set(result["models"]) == {"RNN", "LSTM", "GRU"}


def test_committed_multiplication_results_show_what_the_pages_say():
    """The pages include benchmarks/results/gated-multiplication.md; `pytest -m slow` regenerates it."""
    import gated_multiplication

    result = json.loads((RESULTS / "gated-multiplication.json").read_text())
    assert (RESULTS / "gated-multiplication.md").read_text() == gated_multiplication.table(result, result["command"])
    assert result["steps"] == 100 and result["sizes"] == [2048, 512, 440]
    best = {name: min(run["val_mse"]) / result["baseline_val_mse"] for name, run in result["models"].items()}
    assert best["LSTM"] < 0.1  # below 10% of the target variance
    assert best["RNN"] > 0.9  # the vanilla RNN stays near the baseline


def test_text_script_runs_quickly(tmp_path):
    import lstm_text

    result = lstm_text.main(["--quick", "--out", str(tmp_path)])
    table = (tmp_path / "lstm-bbc-news.md").read_text()
    assert table.startswith("<!-- generated by `python benchmarks/lstm_text.py --quick`")
    assert "**Test accuracy" in table and result["sizes"] == [240, 30, 30]


def test_committed_text_results_show_what_the_page_says():
    import lstm_text

    result = json.loads((RESULTS / "lstm-bbc-news.json").read_text())
    assert (RESULTS / "lstm-bbc-news.md").read_text() == lstm_text.table(result)
    assert result["sizes"] == [1780, 222, 223] and result["vocab_size"] == 1000 and result["maxlen"] == 100
    assert result["test_acc"] > 3 * result["majority_test_acc"]


def test_speed_script_measures_and_formats(tmp_path):
    import rnn_speed

    rows = rnn_speed.measure(rnn_speed.QUICK_SIZES["small"], rounds=1, warmup=0)
    assert [r["layer"] for r in rows][:3] == ["torch.nn.LSTM", "lessons.lstm.LSTM", "lessons.lstm.FastLSTM"]
    run = {"threads": 1, "torch": torch.__version__, "sizes": {"small": {"size": (4, 6, 3, 5), "rows": rows}}}
    text = rnn_speed.table({"default": run, "tuned": run, "rounds": 1, "seconds": 0.0, "threads": 1,
                            "torch": torch.__version__}, "python benchmarks/rnn_speed.py --quick")
    assert text.startswith("<!-- generated by `python benchmarks/rnn_speed.py --quick`")
    assert text.count("| small |") == 8
    committed = (RESULTS / "rnn-speed.md").read_text()
    assert committed.startswith("<!-- generated by `python benchmarks/rnn_speed.py` (")
    assert committed.count("| small |") == committed.count("| large |") == 8


@pytest.mark.slow
def test_full_multiplication_run_reproduces_the_committed_conclusion(tmp_path):
    import gated_multiplication

    result = gated_multiplication.main(["--out", str(tmp_path)])
    best = {name: min(run["val_mse"]) / result["baseline_val_mse"] for name, run in result["models"].items()}
    assert best["LSTM"] < 0.1 and best["GRU"] < 0.1 and best["RNN"] > 0.9


@pytest.mark.slow
def test_full_text_run_reproduces_the_committed_accuracy(tmp_path):
    import lstm_text

    result = lstm_text.main(["--out", str(tmp_path)])
    committed = json.loads((RESULTS / "lstm-bbc-news.json").read_text())
    assert result["test_acc"] == committed["test_acc"]  # seeded, one thread: identical run to run
