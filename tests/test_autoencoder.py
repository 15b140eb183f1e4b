"""Tests of lessons/autoencoder.py and its data (lessons/datasets.py, ``# --- autoencoder``): day-long weather
windows are split by time, complete and normalised with the training hours; the autoencoder rebuilds in reverse
when asked, never reads padding and takes any drop-in layer; bad input is refused clearly (wrong window length
or feature count, missing values, a checkpoint of other data); the system is complete; the command line trains
and then scores a reader's CSV; the benchmark's quick mode writes the committed formats, and the page's claims
hold in the committed full run and in the raw data (``-m slow`` runs the benchmark again)."""

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_checks as lk
from claims import check_quoted, committed
from lessons import autoencoder, datasets
from lessons.autoencoder import (AutoencoderSystem, AutoencoderData, SequenceAutoencoder, anomaly_scores, make_windows,
                                 read_series, window_errors)
from lessons.gru import GRU
from lessons.lstm import LSTM

ROOT = Path(__file__).resolve().parents[1]


# ---- data ----

def test_weather_windows_are_complete_normalised_and_split_by_time():
    data = datasets.weather_autoencoder()
    assert [len(data.train), len(data.val), len(data.test)] == [16709, 4127, 4053]
    grid = datasets.weather_grid()
    cut_val, cut_test = (grid.hour(c) for c in datasets.WEATHER_SPLITS)
    assert int(data.start["train"].max()) + 24 <= cut_val <= int(data.start["val"].min())
    assert int(data.start["val"].max()) + 24 <= cut_test <= int(data.start["test"].min())
    for split in ("train", "val", "test"):
        x = getattr(data, split)
        assert tuple(x.shape[1:]) == (24, 6) and not x.isnan().any()
    # windows are the grid's hours, normalised with the training hours' statistics
    columns = [datasets.WEATHER_FEATURES.index(f) for f in datasets.AUTOENCODER_FEATURES]
    s, g = int(data.station["test"][100]), int(data.start["test"][100])
    torch.testing.assert_close(data.raw("test")[100].double(), grid.values[s, g:g + 24][:, columns], atol=1e-4, rtol=1e-5)
    assert data.train.mean((0, 1)).abs().max() < 0.01 and (data.train.std((0, 1)) - 1).abs().max() < 0.02


def test_weather_csv_reads_back_as_the_grid(tmp_path):
    path = tmp_path / "jfk.csv"
    assert datasets.write_weather_csv(path, "JFK", "2013-11-01", "2013-11-03") == 48
    times, names, values = read_series(path)
    grid = datasets.weather_grid()
    a = grid.hour("2013-11-01")
    columns = [datasets.WEATHER_FEATURES.index(f) for f in names]
    assert names == list(datasets.AUTOENCODER_FEATURES) and times[0] == "2013-11-01T00:00:00+00:00"
    torch.testing.assert_close(values, grid.values[1, a:a + 48][:, columns], atol=1e-3, rtol=1e-4, equal_nan=True)
    with pytest.raises(ValueError, match="station"):
        datasets.write_weather_csv(path, "XYZ")


# ---- the model ----

def _autoencoder(layer=nn.LSTM, reverse=True, D=3, k=2, H=5):
    return SequenceAutoencoder(layer(D, H, batch_first=True), layer(k, H, batch_first=True), D, k, reverse=reverse)


def test_reverse_writes_the_last_step_first():
    torch.manual_seed(0)
    backwards = _autoencoder().double().eval()
    forwards = _autoencoder(reverse=False).double().eval()
    forwards.load_state_dict(backwards.state_dict())
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    torch.testing.assert_close(backwards(x), forwards(x).flip(1))
    # the decoder never sees the window: the reconstruction is a function of the code alone
    torch.testing.assert_close(backwards.decode(backwards.encode(x), 7), backwards(x))
    assert tuple(backwards.encode(x).shape) == (2, 2)


@pytest.mark.parametrize("layer", [nn.LSTM, LSTM, nn.GRU, GRU], ids=["nn.LSTM", "LSTM", "nn.GRU", "GRU"])
@pytest.mark.parametrize("reverse", [True, False])
def test_padding_never_changes_the_answer(layer, reverse):
    torch.manual_seed(0)
    model = _autoencoder(layer, reverse).double().eval()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    x[0, 4:] = 99.0  # padding: must be neither read nor rebuilt
    lengths = torch.tensor([4, 6])
    both = model(x, lengths)
    alone = model(x[:1, :4])
    torch.testing.assert_close(both[:1, :4], alone, atol=1e-12, rtol=0)
    torch.testing.assert_close(window_errors(both, x, lengths)[:1], window_errors(alone, x[:1, :4]), atol=1e-12, rtol=0)


def test_window_errors_are_each_windows_mean_squared_error():
    x, x_hat = torch.zeros(2, 3, 2), torch.zeros(2, 3, 2)
    x_hat[1, 0, 0] = 3.0
    assert window_errors(x_hat, x).tolist() == [0.0, 1.5]
    assert window_errors(x_hat, x, torch.tensor([3, 1])).tolist() == [0.0, 4.5]


# ---- bad input ----

def test_windows_of_the_wrong_shape_are_refused():
    model = _autoencoder()
    with pytest.raises(ValueError, match=r"expected float windows of shape \(N, T, D\) = \(\*, \*, 3\), got \(2, 5, 4\)"):
        model(torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match=r"\(N, T, D\)"):
        model(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="reading 3 features and a decoder reading the 2-number code, got input sizes 4 and 2"):
        SequenceAutoencoder(nn.LSTM(4, 5), nn.LSTM(2, 5), 3, 2)


def test_make_windows_refuses_missing_values_and_short_series():
    series = torch.arange(20.0).view(10, 2)
    windows, starts = make_windows(series, 4, stride=3)
    assert tuple(windows.shape) == (3, 4, 2) and starts.tolist() == [0, 3, 6]
    torch.testing.assert_close(windows[1], series[3:7])
    series[5, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN at row 5, column 1.*the 4 windows that touch"):
        make_windows(series, 4)
    assert make_windows(series, 4, skip_missing=True)[1].tolist() == [0, 1, 6]
    with pytest.raises(ValueError, match="at least 12 rows"):
        make_windows(series, 12)


def _saved_system(tmp_path):
    system = AutoencoderSystem(_autoencoder(), mean=[1.0, 2.0, 3.0], std=[1.0, 1.0, 2.0], window=5, features=["a", "b", "c"])
    lk._fit(lk.trainer(max_epochs=1), system, DataLoader(TensorDataset(torch.randn(8, 5, 3)), batch_size=4))
    path = tmp_path / "ae.ckpt"
    system.trainer.save_checkpoint(path)
    return system, path


def test_checkpoint_of_other_data_and_bad_windows_are_refused(tmp_path):
    system, path = _saved_system(tmp_path)
    with pytest.raises(ValueError, match=r"mean with one entry per feature of the model \(4\), got 3.*different data"):
        AutoencoderSystem.load_from_checkpoint(path, model=_autoencoder(D=4))
    loaded = AutoencoderSystem.load_from_checkpoint(path, model=_autoencoder())
    assert loaded.hparams.window == 5 and loaded.hparams.features == ["a", "b", "c"]
    assert tuple(anomaly_scores(loaded, torch.randn(6, 5, 3)).shape) == (6,)
    for bad in (torch.randn(6, 4, 3), torch.randn(6, 5, 2), torch.randn(5, 3)):
        with pytest.raises(ValueError, match=r"expected windows of shape \(N, T, D\) = \(\*, 5, 3\) \(the checkpoint's"):
            anomaly_scores(loaded, bad)
    nan = torch.randn(2, 5, 3)
    nan[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="missing values"):
        anomaly_scores(loaded, nan)
    with pytest.raises(ValueError, match="saved with its data"):
        anomaly_scores(AutoencoderSystem(_autoencoder()), torch.randn(2, 5, 3))


def test_anomaly_scores_undo_the_saved_normalisation(tmp_path):
    system, _ = _saved_system(tmp_path)
    raw = torch.randn(4, 5, 3) * torch.tensor([1.0, 1.0, 2.0]) + torch.tensor([1.0, 2.0, 3.0])
    normed = (raw - torch.tensor([1.0, 2.0, 3.0])) / torch.tensor([1.0, 1.0, 2.0])
    system.eval()
    with torch.no_grad():
        expected = window_errors(system(normed), normed)
    torch.testing.assert_close(anomaly_scores(system, raw), expected)


# ---- the system is complete: the checks every LightningModule of the course passes ----

def _data(N=16, T=6):
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(N, T, 3, generator=g))


def _system():
    pl.seed_everything(0, verbose=False)
    return AutoencoderSystem(_autoencoder(), mean=[0.0] * 3, std=[1.0] * 3, window=6, features=["a", "b", "c"], lr=0.01)


def test_predict():
    lk.check_predict(_system, DataLoader(_data(), batch_size=4))


def test_checkpoint_round_trip(tmp_path):
    loader = DataLoader(_data(), batch_size=4)
    lk.check_checkpoint(_system, loader, loader, tmp_path, model=_autoencoder())


def test_resume_equals_uninterrupted(tmp_path):
    loader = DataLoader(_data(), batch_size=4)
    lk.check_resume(_system, loader, loader, tmp_path)


def test_ddp_two_processes_equal_one(tmp_path):
    lk.check_ddp(_system, _data(), batch_size=8, tmp_path=tmp_path)


def test_bf16_mixed_on_cpu():
    lk.check_bf16(_system, DataLoader(_data(), batch_size=4))


def test_gpu():
    lk.check_gpu(_system, DataLoader(_data(), batch_size=4))


@pytest.mark.parametrize("with_lengths", [False, True])
def test_swap_torch_layer_for_the_lessons_layer_inside_the_system(with_lengths):
    torch.manual_seed(0)
    system = AutoencoderSystem(_autoencoder())
    x = _data(N=4).tensors[0]
    lk.check_swap(system, {nn.LSTM: LSTM.from_torch}, (x, torch.tensor([6, 3, 5, 1])) if with_lengths else (x,))


# ---- the command line: fit, then score the reader's series ----

def test_command_line_help_and_config(tmp_path):
    run = lambda *a: lk.run_script(autoencoder.__file__, *a, cwd=tmp_path)  # noqa: E731
    help_text = run("fit", "--help")
    assert help_text.returncode == 0 and "--data.window" in help_text.stdout
    config = run("fit", "--print_config").stdout
    assert "class_path: autoencoder.SequenceAutoencoder" in config and "class_path: torch.nn.LSTM" in config


def test_command_line_fits_then_scores_the_readers_series(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    autoencoder.main(["fit", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
                      "--trainer.enable_model_summary", "false"])
    (path,) = tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt")
    system = AutoencoderSystem.load_from_checkpoint(path)  # the model is rebuilt from its saved class path
    data = AutoencoderData()
    assert system.hparams.mean == data.mean and system.hparams.window == 24
    assert system.hparams.features == list(datasets.AUTOENCODER_FEATURES)
    datasets.write_weather_csv(tmp_path / "ewr.csv", "EWR", "2013-11-01", "2013-11-08")
    with pytest.raises(ValueError, match="NaN at row"):  # EWR misses hours on 3 November
        autoencoder.main(["score", "--series", "ewr.csv"])
    capsys.readouterr()
    found = autoencoder.main(["score", "--series", "ewr.csv", "--top", "3", "--skip_missing"])
    assert len(found) == 3 and found[0][2] >= found[1][2] >= found[2][2]
    assert capsys.readouterr().out.splitlines()[0] == f"{found[0][0]}\t{found[0][1]}\t{found[0][2]:.3f}"
    starts = [datetime_hours(first) for first, _, _ in found]
    assert all(abs(a - b) >= 24 for i, a in enumerate(starts) for b in starts[:i])  # windows that do not overlap
    times, names, values = read_series(tmp_path / "ewr.csv")
    torch.save(make_windows(values, 24, 24, skip_missing=True)[0], tmp_path / "w.pt")
    assert len(autoencoder.main(["score", "--series", "w.pt", "--top", "2"])) == 2
    torch.save(torch.zeros(3, 12, 6), tmp_path / "short.pt")
    with pytest.raises(ValueError, match=r"\(\*, 24, 6\)"):
        autoencoder.main(["score", "--series", "short.pt"])
    (tmp_path / "other.csv").write_text("time,temp,wind\n0,1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"expected the columns \['temp', 'dewp'.*got \['temp', 'wind'\]"):
        autoencoder.main(["score", "--series", "other.csv"])
    (tmp_path / "bad.csv").write_text("time,temp\n0,warm\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: expected 2 cells, numbers or empty"):
        read_series(tmp_path / "bad.csv")


def datetime_hours(text: str) -> float:
    import datetime

    return datetime.datetime.fromisoformat(text).timestamp() / 3600


# ---- the benchmark that makes the page's tables and figures ----

def _benchmark():
    return lk.load_script(ROOT / "benchmarks" / "autoencoder.py", "autoencoder_benchmark")


def _shape(text):
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [r.split("|")[1].strip() for r in rows]


def test_benchmark_quick_mode_writes_the_committed_formats(tmp_path):
    results = _benchmark().main(["--quick", "--out", str(tmp_path)])
    saved = committed("autoencoder.json")
    assert json.loads((tmp_path / "autoencoder.json").read_text(encoding="utf-8")).keys() == saved.keys()
    assert results["anomalies"].keys() == saved["anomalies"].keys()
    for name in ("autoencoder.md", "autoencoder.en.md"):
        quick, full = ((d / name).read_text(encoding="utf-8") for d in (tmp_path, ROOT / "benchmarks" / "results"))
        assert _shape(quick)[0] == _shape(full)[0] and _shape(quick)[-3:] == _shape(full)[-3:], name
    for name in ("autoencoder-bottleneck.png", "autoencoder-anomalies.en.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_committed_tables_are_the_render_of_the_committed_json():
    bench, results = _benchmark(), committed("autoencoder.json")
    for lang, suffix in (("ko", ""), ("en", ".en")):
        path = ROOT / "benchmarks" / "results" / f"autoencoder{suffix}.md"
        assert path.read_text(encoding="utf-8") == bench.render_table(results, lang)
        for figure in ("bottleneck", "anomalies"):
            assert (ROOT / "docs" / "figures" / f"autoencoder-{figure}{suffix}.png").is_file()


def _check_claims(runs, tol=None):
    """What the pages say about a run (``tol=None``: the committed one, numbers as rounded there)."""
    lstm, pca, forward, mean = runs["lstm"], runs["pca"], runs["forward"]["8"], runs["window_mean"]
    assert runs["config"]["ks"] == [1, 2, 4, 8, 16, 32] and runs["config"]["epochs"] == 10 and runs["config"]["hidden"] == 64
    assert runs["data"] == {"train": 16709, "val": 4127, "test": 4053, "window": 24}
    quoted = {("lstm", "1"): 0.543, ("lstm", "2"): 0.384, ("lstm", "4"): 0.270, ("lstm", "8"): 0.186, ("lstm", "32"): 0.168,
              ("forward", "8"): 0.188, ("pca", "1"): 0.674, ("pca", "2"): 0.491, ("pca", "4"): 0.332, ("pca", "8"): 0.228,
              ("pca", "16"): 0.119, ("pca", "32"): 0.068, ("mean",): 0.355}
    actual = {key: lstm[key[1]]["test_mse_mean"] if key[0] == "lstm" else forward["test_mse_mean"] if key[0] == "forward"
              else pca[key[1]]["test_mse"] if key[0] == "pca" else mean["test_mse"] for key in quoted}
    check_quoted(actual, quoted, tol, digits=3)

    def hi(k):
        return lstm[k]["test_mse_mean"] + lstm[k]["test_mse_std"]

    def lo(k):
        return lstm[k]["test_mse_mean"] - lstm[k]["test_mse_std"]
    # small bottlenecks: the LSTM beats PCA beyond its spread; 4 numbers beat the window mean's 6, 2 do not
    assert all(hi(k) < pca[k]["test_mse"] for k in ("1", "2", "4", "8"))
    assert hi("4") < mean["test_mse"] < lo("2")
    # large bottlenecks: PCA wins; the LSTM hardly improves after k = 8 (8 and 16 within the spread)
    assert all(pca[k]["test_mse"] < lo(k) for k in ("16", "32"))
    assert lo("8") < hi("16") and lo("16") < hi("8")
    assert all(e >= 9 for k in ("16", "32") for e in lstm[k]["best_epochs"])
    # teacher forcing's shortcut, "the same as an hour ago", beats most of the autoencoders (all but k = 32)
    x = datasets.weather_autoencoder().test
    copy_mse = float((x[:, 1:] - x[:, :-1]).square().mean())
    assert round(copy_mse, 3) == 0.168 and all(copy_mse < lstm[k]["test_mse_mean"] for k in ("1", "2", "4", "8", "16"))
    # reversal: no difference beyond the spread
    assert abs(forward["test_mse_mean"] - lstm["8"]["test_mse_mean"]) < forward["test_mse_std"] + lstm["8"]["test_mse_std"]
    epoch_s = [s["epoch_s"] for s in lstm.values()]
    assert runs["cpu_seconds"] < 25 * 60 and all(s < 5 * 60 for s in (r["cpu_s"] for s in lstm.values() for r in s["runs"]))
    if tol is None:
        assert {round(s, 1) for s in epoch_s} <= {2.6, 2.7, 2.8} and round(lstm["8"]["epoch_s"], 1) == 2.7
        assert round(runs["cpu_seconds"]) == 614
        assert round(runs["anomalies"]["median_score"], 3) == 0.098
    _check_anomalies(runs["anomalies"], exact=tol is None)


def _check_anomalies(anomalies, exact=True):
    """The pages' account of the strangest test windows, recomputed from the raw readings of weather_grid."""
    grid, data = datasets.weather_grid(), datasets.weather_autoencoder()
    names = ("temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib")
    top = anomalies["top"]
    assert len(top) == 5 and anomalies["k"] == 8 and anomalies["seed"] == 0
    scores = torch.tensor(anomalies["scores"])
    assert len(scores) == len(data.test) and [round(w["score"], 4) for w in top] == sorted(
        [round(w["score"], 4) for w in top], reverse=True)
    assert all(w["score"] > 13 * float(scores.median()) for w in top)  # "about 15 times the median"
    for w in top:
        s, g = grid.stations.index(w["station"]), grid.hour(w["first"][:19])
        v = grid.values[s, g:g + 24]
        assert not v[:, [names.index(n) for n in datasets.AUTOENCODER_FEATURES]].isnan().any()
        rain, visib, temp = v[:, names.index("precip")], v[:, names.index("visib")], v[:, names.index("temp")]
        assert float(rain.max()) >= 6.5 and float(visib.min()) <= 3.3  # every strangest window
        assert abs(float(rain.max()) - w["max_precip"]) < 1e-9 and abs(float(temp.min()) - w["min_temp"]) < 1e-9
    raw = data.raw("test").double()
    assert round(float((raw[..., 4].amax(1) >= 6.5).double().mean()), 3) == 0.056  # "only 5.6%"
    span = raw[..., 0].amax(1) - raw[..., 0].amin(1)
    assert round(float(span.median()), 1) == 6.7 and round(float((span >= 13).double().mean()), 3) == 0.038
    if exact:  # the three events as the pages list them
        assert [(w["station"], w["first"][:13]) for w in top] == [
            ("JFK", "2013-12-14T11"), ("LGA", "2013-12-06T05"), ("LGA", "2013-12-14T10"), ("JFK", "2013-11-27T05"),
            ("LGA", "2013-11-27T06")]
        by_day = {w["first"][:10]: w for w in top}
        assert by_day["2013-12-06"]["min_visib"] == 0.0
        assert all(round(w["min_temp"]) == -4 for w in top if w["first"].startswith("2013-12-14"))
        assert all(w["max_temp"] - w["min_temp"] > 13.5 for w in top if w["first"].startswith("2013-11-27"))


def test_the_pages_claims_hold_in_the_committed_full_run():
    _check_claims(committed("autoencoder.json"))


@pytest.mark.slow
def test_full_benchmark_reproduces_the_committed_run(tmp_path):
    _check_claims(_benchmark().main(["--out", str(tmp_path), "--figures", str(tmp_path)]), tol=0.05)
