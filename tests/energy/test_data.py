"""Tests of the energy data layer: the CityLearn importer, pvlib PV and ``build_community``."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import fields
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridmarl.config import ScenarioError, validate_scenario
from gridmarl.energy import citylearn as cl
from gridmarl.energy import data as d
from gridmarl.energy import pv

SHIPPED = cl.SHIPPED_DATASETS["citylearn_2022"]
FONTANA = {"latitude_deg": 34.09, "longitude_deg": -117.43, "utc_offset_h": -8.0}


def make_scenario(
    seed: int = 3,
    step_h: float = 1.0,
    evaluate=("2017-01-16", 7),
    train=("2016-08-01", 30),
    validate=("2017-01-02", 7),
    **community,
):
    """A validated ``EnergyScenario`` on the shipped data (or ``community["dataset"]``)."""
    raw = {
        "name": "t",
        "domain": "energy",
        "seed": seed,
        "window": {
            "step_h": step_h,
            "train": {"start": train[0], "days": train[1]},
            "validate": {"start": validate[0], "days": validate[1]},
            "evaluate": {"start": evaluate[0], "days": evaluate[1]},
        },
        "community": {"prosumers": 50, **community},
    }
    return validate_scenario(raw)


def write_snake_dataset(
    folder: Path, hours: int = 72, gz: bool = True, declare_start: bool = True
) -> Path:
    """A two-building CityLearn >= 2.0 (snake_case) dataset starting Monday 2018-01-01 00:00.

    ``declare_start`` writes the start into schema.json; without it the start is inferred.
    """
    folder.mkdir(parents=True, exist_ok=True)
    t = pd.date_range("2018-01-01", periods=hours, freq="h")
    cal = {
        "month": t.month,
        "hour": t.hour + 1,
        "day_type": t.day_of_week + 1,
        "daylight_savings_status": 0,
    }
    sun = np.clip(np.sin((t.hour - 6) / 12 * np.pi), 0, None)
    for i, name in enumerate(("Building_1", "Building_2")):
        frame = pd.DataFrame(
            {
                **cal,
                "non_shiftable_load": 1.0 + i + 0.1 * (t.hour % 3),
                "solar_generation": 600 * sun,
            }
        )
        path = folder / (f"{name}.csv" + (".gz" if gz and i == 1 else ""))
        frame.to_csv(path, index=False)
    pd.DataFrame(
        {
            "outdoor_dry_bulb_temperature": 10 + 5 * sun,
            "outdoor_relative_humidity": 50,
            "diffuse_solar_irradiance": 100 * sun,
            "direct_solar_irradiance": 700 * sun,
        }
    ).to_csv(folder / "weather.csv", index=False)
    pd.DataFrame({"electricity_pricing": np.where(t.hour >= 16, 0.4, 0.2)}).to_csv(
        folder / "pricing.csv", index=False
    )
    schema = {
        "seconds_per_time_step": 3600,
        "buildings": {
            name: {
                "include": True,
                "energy_simulation": f"{name}.csv",
                "weather": "weather.csv",
                "pricing": "pricing.csv",
            }
            for name in ("Building_1", "Building_2")
        },
    }
    if declare_start:
        schema["gridmarl"] = {"start_time": "2018-01-01T00:00:00"}
    (folder / "schema.json").write_text(json.dumps(schema))
    return folder


# --------------------------------------------------------------------------------------------
# importer


def test_shipped_files_are_the_upstream_files():
    """Every shipped .csv.gz decompresses to the CityLearn 2.1.2 file listed in SHA256SUMS."""
    sums = dict(line.split()[::-1] for line in (SHIPPED / "SHA256SUMS").read_text().splitlines())
    assert len(sums) == 20  # 17 buildings + weather, pricing, carbon intensity
    for name, digest in sums.items():
        raw = gzip.decompress((SHIPPED / f"{name}.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == digest, name


def test_shipped_dataset_loads_with_time_base():
    data = cl.load_dataset(SHIPPED)
    assert data.buildings == tuple(f"Building_{i}" for i in range(1, 18))
    assert data.load_kw.shape == data.solar_w_per_kw.shape == (8760, 17)
    assert data.time[0] == pd.Timestamp("2016-07-31 23:00")
    assert data.time[-1] == pd.Timestamp("2017-07-31 22:00")
    assert data.horizontal_is_global
    # README statistics: Building_1 mean load 1.208 kW, price mean 0.2731 $/kWh
    assert data.load_kw[:, 0].mean() == pytest.approx(1.208, abs=1e-3)
    assert data.price_usd_per_kwh.mean() == pytest.approx(0.2731, abs=1e-4)
    assert cl.dataset_span(SHIPPED) == (date(2016, 8, 1), date(2017, 7, 30))
    assert cl.load_dataset(str(SHIPPED)) is data  # cached by resolved path


def test_dataset_span_is_cached():
    """Repeated calls reuse one parse (timed in benchmarks/energy_data_build.py)."""
    cl.dataset_span(SHIPPED)
    before = cl._reading_cached.cache_info()
    for _ in range(100):
        assert cl.dataset_span(SHIPPED) == (date(2016, 8, 1), date(2017, 7, 30))
    after = cl._reading_cached.cache_info()
    assert after.misses == before.misses and after.hits >= before.hits + 100


def test_data_root_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv(cl.ENV_DATA, str(tmp_path))
    assert cl.data_root() == tmp_path
    monkeypatch.delenv(cl.ENV_DATA)
    assert cl.data_root() == Path(cl.__file__).resolve().parents[2] / "data"


def test_snake_case_dataset_loads(tmp_path):
    folder = write_snake_dataset(tmp_path / "snake")
    data = cl.load_dataset(folder)
    assert data.buildings == ("Building_1", "Building_2")
    assert data.time[0] == pd.Timestamp("2018-01-01 00:00")
    assert not data.horizontal_is_global
    assert data.load_kw[:3, 1].tolist() == pytest.approx([2.0, 2.1, 2.2])
    assert cl.dataset_span(folder) == (date(2018, 1, 1), date(2018, 1, 3))


def test_start_inferred_from_calendar_columns(tmp_path):
    # Monday 2018-01-01 also fits 2001-01-01, the first fitting year from 2000 on
    folder = write_snake_dataset(tmp_path / "infer", declare_start=False)
    assert cl.load_dataset(folder).time[0] == pd.Timestamp("2001-01-01 00:00")
    # the shipped 2022 data fit 2005, 2016 and 2022 (so their schema states 2016)
    data = cl.load_dataset(SHIPPED)
    cal = cl._read_csv(SHIPPED / "Building_1.csv.gz", ("month", "hour", "day_type"))
    assert cl._infer_start(SHIPPED / "Building_1.csv.gz", cal, 1.0) == pd.Timestamp(
        "2005-07-31 23:00"
    )
    assert data.time[0].month == 7 and data.time[0].day == 31
    (folder / "pricing.csv").write_text("electricity_pricing\n0.2\n")
    with pytest.raises(ScenarioError, match="pricing.csv: 1 rows"):
        cl.load_dataset(tmp_path / "infer" / ".")


def test_glob_fallback_without_schema(tmp_path):
    folder = write_snake_dataset(tmp_path / "noschema", gz=False)
    schema = json.loads((folder / "schema.json").read_text())
    (folder / "schema.json").unlink()
    (folder / "Building_10.csv").write_bytes((folder / "Building_2.csv").read_bytes())
    data = cl.load_dataset(folder)
    assert data.buildings == ("Building_1", "Building_2", "Building_10")  # natural order
    assert len(schema["buildings"]) == 2


def test_missing_column_names_file_and_column(tmp_path):
    folder = write_snake_dataset(tmp_path / "nocol")
    frame = pd.read_csv(folder / "weather.csv").drop(columns="direct_solar_irradiance")
    frame.to_csv(folder / "weather.csv", index=False)
    with pytest.raises(ScenarioError) as err:
        cl.load_dataset(folder)
    msg = str(err.value)
    assert "weather.csv" in msg and "direct_solar_irradiance" in msg
    assert "Direct Solar Radiation [W/m2]" in msg  # the allowed alternative


def test_missing_file_names_it(tmp_path):
    folder = write_snake_dataset(tmp_path / "nofile")
    (folder / "Building_2.csv.gz").unlink()
    with pytest.raises(ScenarioError, match=r"Building_2\.csv"):
        cl.load_dataset(folder)
    with pytest.raises(ScenarioError, match="not found"):
        cl.dataset_span(tmp_path / "nowhere")


def test_scenario_on_user_dataset(tmp_path):
    folder = write_snake_dataset(tmp_path / "user", hours=24 * 10)
    sc = make_scenario(
        dataset=str(folder),
        evaluate=("2018-01-09", 2),
        train=("2018-01-01", 3),
        validate=("2018-01-04", 2),
        prosumers=4,
        forecast={"horizon_h": 2},
    )
    c = d.build_community(sc)
    assert c.steps == 48 + 3 and c.n == 4
    assert set(c.sources) == {"Building_1", "Building_2"}
    # the data end with the row of 2018-01-10 23:00; the look-ahead past it repeats that step
    assert c.time[-1] == pd.Timestamp("2018-01-11 02:00")
    assert (c.load_kw[-4:] == c.load_kw[-4]).all()
    with pytest.raises(ScenarioError, match="outside the data"):
        make_scenario(dataset=str(folder))


# --------------------------------------------------------------------------------------------
# build_community


def _same(a, b) -> bool:
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            if not np.array_equal(x, y):
                return False
        elif isinstance(x, pd.DatetimeIndex):
            if not x.equals(y):
                return False
        elif x != y:
            return False
    return True


def test_same_seed_same_community_different_seed_different():
    a = d.build_community(make_scenario(seed=5))
    b = d.build_community(make_scenario(seed=5))
    c = d.build_community(make_scenario(seed=6))
    assert _same(a, b)
    assert not np.array_equal(a.load_kw, c.load_kw)
    assert not np.array_equal(a.pv_kw, c.pv_kw)
    assert not np.array_equal(a.has_ev, c.has_ev)


def test_shapes_and_units():
    sc = make_scenario()
    c = d.build_community(sc)
    s, n = 7 * 24 + 3 + 1, 50  # days + horizon 3 h + 1 look-ahead step
    assert (c.steps, c.n) == (s, n)
    for name in ("load_kw", "pv_kw", "cop", "ev_present", "ev_arrival_kwh"):
        assert getattr(c, name).shape == (s, n), name
    for name in ("price_usd_per_kwh", "outdoor_c"):
        assert getattr(c, name).shape == (s,), name
    assert c.time[0] == pd.Timestamp("2017-01-16 00:00") and c.time.freq == pd.Timedelta("1h")
    assert c.names[0] == "prosumer_00" and c.names[-1] == "prosumer_49"
    assert set(c.sources) == {f"Building_{i}" for i in range(1, 18)}  # 50 prosumers use all 17
    assert (c.load_kw >= 0).all() and c.load_kw.max() < 8.9 * 1.2
    night = c.time.hour.isin([0, 1, 2, 3, 4, 21, 22, 23])
    assert (c.pv_kw[night] == 0).all()
    assert c.pv_kw.max() <= 6.0 and c.pv_kw.max() > 2.0  # kWp in [3, 6], a sunny January noon
    assert set(np.unique(c.price_usd_per_kwh)) <= {0.21, 0.22, 0.40, 0.50, 0.54}
    assert ((c.cop >= 1.0) & (c.cop <= 6.0)).all()
    cop = np.clip(3.5 + 0.05 * (c.outdoor_c - 7.0), 1.0, 6.0)
    np.testing.assert_allclose(c.cop[:, 7], cop)
    assert (c.battery_min_kwh <= c.battery_init_kwh).all()
    np.testing.assert_allclose(c.battery_min_kwh, 0.1 * c.battery_kwh)
    assert ((c.battery_kwh >= 6.4) & (c.battery_kwh <= 13.5)).all()
    np.testing.assert_allclose(c.ev_target_kwh, 0.8 * c.ev_kwh)
    assert (c.r_c_per_kw > 0).all() and (c.c_kwh_per_c > 0).all()
    assert (c.theta_lo_c == 20.0).all() and (c.theta_hi_c == 23.0).all()
    # the load is the measured building load times a factor in [0.8, 1.2]
    data = cl.load_dataset(SHIPPED)
    row0 = int((c.time[0] - data.time[0]) / pd.Timedelta("1h"))
    j = data.buildings.index(c.sources[0])
    factor = c.load_kw[:, 0] / data.load_kw[row0 : row0 + s, j]
    assert np.ptp(factor) < 1e-9 and 0.8 <= factor[0] <= 1.2


def test_shares_respected_exactly():
    c = d.build_community(
        make_scenario(battery={"share": 0.3}, ev={"share": 0.4}, heat_pump={"share": 0.5})
    )
    assert (c.battery_kwh > 0).sum() == 15 and (c.battery_kw > 0).sum() == 15
    assert c.has_ev.sum() == 20 and (c.ev_kwh > 0).sum() == 20
    assert c.has_hp.sum() == 25 and (c.hp_kw > 0).sum() == 25
    assert not c.ev_present[:, ~c.has_ev].any() and (c.ev_arrival_kwh[:, ~c.has_ev] == 0).all()
    small = d.build_community(make_scenario(prosumers=5, ev={"share": 0.5}))
    assert small.has_ev.sum() == 3  # 2.5 rounds half up


def test_ev_presence_pattern():
    c = d.build_community(make_scenario(seed=11))
    tod = c.time.hour.to_numpy()
    for n in np.flatnonzero(c.has_ev):
        present = c.ev_present[:, n]
        arrives = np.flatnonzero(c.ev_arrives()[:, n])
        departs = np.flatnonzero(c.ev_departs()[:, n])
        # first step at 00:00 is inside a stay; then one arrival in [16, 20] h and one departure
        # (last present step) in [5, 8] h each day
        assert present[0] and arrives[0] == 0
        assert set(tod[arrives[1:]]) <= set(range(16, 21)) and len(set(tod[arrives[1:]])) == 1
        assert set(tod[departs]) <= set(range(5, 9)) and len(set(tod[departs])) == 1
        assert len(arrives) == 8 and len(departs) == 7  # 7 days + 4 look-ahead steps
        # the arrival energy is constant over a stay, in arrival_soc x capacity, 0 when absent
        e = c.ev_arrival_kwh[:, n]
        assert (e[~present] == 0).all()
        stay = np.cumsum(c.ev_arrives()[:, n])
        for k in np.unique(stay[present]):
            vals = e[present & (stay == k)]
            assert np.ptp(vals) == 0
            assert 0.2 * c.ev_kwh[n] <= vals[0] <= 0.5 * c.ev_kwh[n]


def test_spans_share_the_community_and_look_ahead_is_a_prefix():
    sc = make_scenario(seed=2)
    ev, tr = d.build_community(sc, "evaluate"), d.build_community(sc, "train")
    for name in ("battery_kwh", "ev_kwh", "hp_kw", "has_ev", "r_c_per_kw"):
        assert np.array_equal(getattr(ev, name), getattr(tr, name)), name
    assert ev.sources == tr.sources
    long = d.build_community(sc, "evaluate", extra_steps=30)
    assert long.steps == 7 * 24 + 30
    short = long.slice(0, ev.steps)
    for name in ("load_kw", "pv_kw", "ev_present", "ev_arrival_kwh", "price_usd_per_kwh"):
        np.testing.assert_allclose(getattr(short, name), getattr(ev, name), err_msg=name)


def test_padding_repeats_last_step_past_the_data():
    c = d.build_community(make_scenario(evaluate=("2017-07-24", 7)), extra_steps=30)
    # the data end at 2017-07-31 22:00 (row 8759): steps from 23:00 on repeat that row
    assert c.time[-1] == pd.Timestamp("2017-07-31 00:00") + pd.Timedelta(hours=29)
    last = c.time.get_loc(pd.Timestamp("2017-07-31 22:00"))
    for name in ("load_kw", "pv_kw", "price_usd_per_kwh", "outdoor_c"):
        arr = getattr(c, name)
        assert (arr[last + 1 :] == arr[last]).all(), name


def test_quarter_hour_steps():
    hourly = d.build_community(make_scenario(seed=4), extra_steps=0)
    quarter = d.build_community(make_scenario(seed=4, step_h=0.25), extra_steps=0)
    assert quarter.steps == 4 * hourly.steps and quarter.step_h == 0.25
    # load and price held within the hour
    np.testing.assert_array_equal(quarter.load_kw, np.repeat(hourly.load_kw, 4, axis=0))
    np.testing.assert_array_equal(quarter.price_usd_per_kwh, np.repeat(hourly.price_usd_per_kwh, 4))
    # PV at the finer step: varies within the hour, same energy over the week within 5 %
    assert not np.array_equal(quarter.pv_kw[::4], quarter.pv_kw[1::4])
    e_q, e_h = quarter.pv_kw.sum() * 0.25, hourly.pv_kw.sum()
    assert e_q == pytest.approx(e_h, rel=0.05)
    # weather interpolated linearly between row middles: the mean of the four quarters of an
    # hour is T_i + (T_{i+1} - 2 T_i + T_{i-1}) / 8 (closed form of the interpolation)
    t = hourly.outdoor_c
    np.testing.assert_allclose(
        quarter.outdoor_c.reshape(-1, 4).mean(1)[1:-1],
        t[1:-1] + (t[2:] - 2 * t[1:-1] + t[:-2]) / 8,
        atol=1e-9,
    )


def test_build_of_200_prosumers_has_the_window_shape():
    """Build time is measured by benchmarks/energy_data_build.py, not asserted here."""
    sc = make_scenario(seed=9, prosumers=200)
    c = d.build_community(sc, "train")  # 30 days
    assert c.pv_kw.shape == (30 * 24 + 4, 200)


# --------------------------------------------------------------------------------------------
# PV model against the measured PV


def _fit(model: np.ndarray, measured: np.ndarray) -> tuple[int, float]:
    """Orientation with the highest hourly correlation and that correlation."""
    mc = model - model.mean(0)
    xc = measured - measured.mean()
    r = (mc * xc[:, None]).sum(0) / np.sqrt((mc**2).sum(0) * (xc**2).sum())
    return int(r.argmax()), float(r.max())


def test_pv_model_agrees_with_measured_pv():
    """pvlib PVWatts per kWp vs the measured ``Solar Generation [W/kW]``, one year, hourly.

    For each of the 15 buildings with real PV (B14 and B15 are left out: their annual yield,
    493 and 29 kWh/kWp, is 3 to 50 times below the others, so their arrays are shaded, faulty
    or mostly off, which no weather-driven model reproduces), the orientation with the best
    hourly correlation is picked from tilt {5..30} x azimuth {90..270}.  Measured (pvlib
    0.16.1, ``pytest tests/energy/test_data.py -k measured -s``):

    * hourly correlation r: 0.849 to 0.901, median 0.883;
    * annual energy ratio model / measured: 0.75 to 1.14, median 0.96;
    * normalised RMSE (RMSE / mean measured): 0.64 to 0.79, median 0.70;
    * daily-energy correlation: median 0.62 (the weather file's cloudy days only loosely
      match the homes' cloudy days, which bounds the hourly agreement).

    Reading the "Diffuse Solar Radiation" column as diffuse (as labelled) is worse for every
    building (r 0.825 to 0.873, median energy ratio 1.40): the column is global horizontal.
    """
    data = cl.load_dataset(SHIPPED)
    tilts, azims = np.meshgrid(
        [5.0, 10.0, 15.0, 20.0, 25.0, 30.0], [90.0, 135.0, 180.0, 225.0, 270.0]
    )
    common = dict(
        horizontal_w_m2=data.horizontal_w_m2,
        dni_w_m2=data.dni_w_m2,
        temp_air_c=data.outdoor_c,
        tilt_deg=tilts.ravel(),
        azimuth_deg=azims.ravel(),
        **FONTANA,
    )
    as_global = 1000 * pv.pv_ac_per_kwp(data.time, 1.0, horizontal_is_global=True, **common)
    as_diffuse = 1000 * pv.pv_ac_per_kwp(data.time, 1.0, horizontal_is_global=False, **common)
    r_all, ratio_all, nrmse_all, daily_all, ratio_diffuse = [], [], [], [], []
    days = slice(1, 1 + 364 * 24)  # whole days
    for j, name in enumerate(data.buildings):
        if name in ("Building_14", "Building_15"):
            continue
        measured = data.solar_w_per_kw[:, j]
        k, r = _fit(as_global, measured)
        model = as_global[:, k]
        k2, r2 = _fit(as_diffuse, measured)
        assert r > r2, name
        r_all.append(r)
        ratio_all.append(model.sum() / measured.sum())
        ratio_diffuse.append(as_diffuse[:, k2].sum() / measured.sum())
        nrmse_all.append(np.sqrt(np.mean((model - measured) ** 2)) / measured.mean())
        daily = np.corrcoef(
            model[days].reshape(-1, 24).sum(1), measured[days].reshape(-1, 24).sum(1)
        )[0, 1]
        daily_all.append(daily)
    print(
        f"r {min(r_all):.3f}..{max(r_all):.3f} median {np.median(r_all):.3f}; "
        f"ratio {min(ratio_all):.2f}..{max(ratio_all):.2f} median {np.median(ratio_all):.2f}; "
        f"nrmse {min(nrmse_all):.2f}..{max(nrmse_all):.2f} median {np.median(nrmse_all):.2f}; "
        f"daily r median {np.median(daily_all):.2f}; "
        f"as-diffuse ratio median {np.median(ratio_diffuse):.2f}"
    )
    assert len(r_all) == 15
    assert min(r_all) >= 0.84 and np.median(r_all) >= 0.88
    assert 0.70 <= min(ratio_all) and max(ratio_all) <= 1.20
    assert 0.92 <= np.median(ratio_all) <= 1.00
    assert max(nrmse_all) <= 0.82 and np.median(nrmse_all) <= 0.72
    assert np.median(daily_all) >= 0.6
    assert np.median(ratio_diffuse) >= 1.3
