"""The importer on every CityLearn dataset style (the sample folders in ``shared/data``)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridmarl.config import ScenarioError, validate_scenario
from gridmarl.energy import citylearn as cl
from gridmarl.energy import data as d

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
PHASE_ALL = SHARED / "citylearn_2022_phase_all"
SAMPLES = SHARED / "citylearn_datasets"
SHIPPED = cl.SHIPPED_DATASETS["citylearn_2022"]

# folder -> (first whole day the importer gives it, whether it has a pricing file)
STYLES = {
    "citylearn_challenge_2020_climate_zone_1": ("2001-01-01", False),
    "citylearn_challenge_2021": ("2009-01-01", False),
    "citylearn_challenge_2023_phase_1": ("2001-06-01", True),
    "baeda_3dem": ("2009-06-01", True),
}
TARIFF = {"off_peak_usd_per_kwh": 0.2, "peak_usd_per_kwh": 0.45, "peak_hours": [16, 21]}

needs_phase_all = pytest.mark.skipif(not PHASE_ALL.is_dir(), reason="no shared 2022 copy")
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="no shared sample folders")


def scenario_on(folder: Path, first_day: str, tariff: dict | None = None, **community):
    """4 prosumers, train / validate / evaluate on the first three days of the data."""
    day0 = pd.Timestamp(first_day)

    def span(k: int) -> dict:
        return {"start": (day0 + pd.Timedelta(days=k)).date().isoformat(), "days": 1}

    market = {"transformer_kw": 500.0, **({"tariff": tariff} if tariff else {})}
    raw = {
        "name": f"style_{folder.name}",
        "domain": "energy",
        "seed": 1,
        "window": {"train": span(0), "validate": span(1), "evaluate": span(2)},
        "community": {
            "prosumers": 4,
            "dataset": str(folder),
            "forecast": {"horizon_h": 2},
            "market": market,
            **community,
        },
        "controllers": [
            {"name": "no_control"},
            {"name": "rule_based"},
            {"name": "milp", "time_limit_s": 20},
        ],
    }
    return validate_scenario(raw)


@needs_phase_all
def test_shipped_and_citylearn_copy_read_to_the_same_series():
    """CityLearn's own folder (no gridmarl block in its schema) is recognised by its weather
    file: same start (2016, not 2005), same irradiance reading (global), same series."""
    a, b = cl.load_dataset(SHIPPED), cl.load_dataset(PHASE_ALL)
    assert "gridmarl" not in json.loads((PHASE_ALL / "schema.json").read_text())
    assert b.reading.start_from == "known" and a.reading.start_from == "schema"
    assert a.time.equals(b.time) and b.time[0] == pd.Timestamp("2016-07-31 23:00")
    assert a.horizontal_is_global and b.horizontal_is_global
    assert a.buildings == b.buildings
    for name in (
        "load_kw",
        "solar_w_per_kw",
        "outdoor_c",
        "horizontal_w_m2",
        "dni_w_m2",
        "price_usd_per_kwh",
        "carbon_kg_per_kwh",
    ):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert cl.dataset_span(PHASE_ALL) == cl.dataset_span(SHIPPED)
    # the evaluation week of community_50 on either folder: the same community, PV included
    kw = {"evaluate": ("2017-01-16", 7), "train": ("2016-08-01", 30)}
    ca = d.build_community(_fontana(SHIPPED, **kw))
    cb = d.build_community(_fontana(PHASE_ALL, **kw))
    np.testing.assert_array_equal(ca.pv_kw, cb.pv_kw)
    np.testing.assert_array_equal(ca.load_kw, cb.load_kw)
    np.testing.assert_array_equal(ca.carbon_kg_per_kwh, cb.carbon_kg_per_kwh)


def _fontana(folder: Path, evaluate, train):
    raw = {
        "name": "t",
        "domain": "energy",
        "seed": 7,
        "window": {
            "train": {"start": train[0], "days": train[1]},
            "validate": {"start": "2017-01-02", "days": 7},
            "evaluate": {"start": evaluate[0], "days": evaluate[1]},
        },
        "community": {"prosumers": 20, "dataset": str(folder)},
    }
    return validate_scenario(raw)


@needs_samples
@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_style_loads_with_warnings_for_silent_schemas(style, caplog):
    cl._reading_cached.cache_clear()
    folder = SAMPLES / style
    with caplog.at_level(logging.WARNING, logger="gridmarl.energy.citylearn"):
        data = cl.load_dataset(folder)
    first, has_price = STYLES[style]
    assert cl.dataset_span(folder)[0].isoformat() == first
    assert (data.price_usd_per_kwh is not None) == has_price
    assert data.reading.start_from == "default" and data.reading.irradiance_from == "default"
    text = caplog.text
    assert "gives no start date" in text and "gridmarl" in text and "start_time" in text
    assert "horizontal_irradiance" in text
    assert np.isfinite(data.load_kw).all() and (data.load_kw >= 0).all()
    # thermal demand columns are read, and non-zero in these styles
    assert set(data.thermal_kw) >= {"cooling", "dhw"}


@needs_samples
def test_parenthesised_units_read_like_bracketed_ones(tmp_path):
    """2023 style: 'Equipment Electric Power (kWh)'; the same file with brackets reads equal."""
    src = SAMPLES / "citylearn_challenge_2023_phase_1"
    dst = tmp_path / "brackets"
    shutil.copytree(src, dst)
    for name in ("Building_1.csv", "Building_2.csv", "Building_3.csv", "weather.csv"):
        text = (dst / name).read_text()
        head, rest = text.split("\n", 1)
        (dst / name).write_text(head.replace("(", "[").replace(")", "]") + "\n" + rest)
    a, b = cl.load_dataset(src), cl.load_dataset(dst)
    np.testing.assert_array_equal(a.load_kw, b.load_kw)
    np.testing.assert_array_equal(a.outdoor_c, b.outdoor_c)
    assert a.load_kw[0, 0] == pytest.approx(0.356839337505185)


def test_units_are_converted_or_refused(tmp_path):
    folder = tmp_path / "units"
    folder.mkdir()
    t = pd.date_range("2018-01-01", periods=48, freq="h")
    cal = {"Month": t.month, "Hour": t.hour + 1, "Day Type": t.day_of_week + 1}
    pd.DataFrame(
        {**cal, "Equipment Electric Power (Wh)": 1500.0, "Solar Generation (W/kW)": 0.0}
    ).to_csv(folder / "Building_1.csv", index=False)
    pd.DataFrame(
        {
            "Outdoor Drybulb Temperature [C]": 10.0,
            "Diffuse Solar Radiation [W/m2]": 0.0,
            "Direct Solar Radiation [W/m2]": 0.0,
        },
        index=t,
    ).to_csv(folder / "weather.csv", index=False)
    pd.DataFrame({"carbon_intensity": np.full(48, 0.3)}).to_csv(
        folder / "carbon_intensity.csv", index=False
    )
    data = cl.load_dataset(folder)
    assert data.load_kw[0, 0] == pytest.approx(1.5)  # 1500 Wh per hour = 1.5 kW
    assert data.price_usd_per_kwh is None  # no pricing file: the scenario must give a tariff
    assert data.carbon_kg_per_kwh[0] == pytest.approx(0.3)
    frame = pd.read_csv(folder / "Building_1.csv").rename(
        columns={"Equipment Electric Power (Wh)": "Equipment Electric Power (MWh)"}
    )
    frame.to_csv(folder / "Building_1.csv", index=False)
    with pytest.raises(ScenarioError) as err:
        cl.load_dataset(folder)
    msg = str(err.value)
    assert "Building_1.csv" in msg and "Equipment Electric Power (MWh)" in msg and "kwh" in msg


@needs_samples
def test_missing_pricing_asks_for_the_tariff_key():
    folder = SAMPLES / "citylearn_challenge_2020_climate_zone_1"
    with pytest.raises(ScenarioError, match=r"community\.market\.tariff") as err:
        scenario_on(folder, STYLES[folder.name][0])  # gridmarl validate refuses it
    assert "pricing" in str(err.value)
    sc = scenario_on(folder, STYLES[folder.name][0], TARIFF)
    sc.community.market.tariff = None  # past validation: build_community refuses it too
    with pytest.raises(ScenarioError, match=r"community\.market\.tariff"):
        d.build_community(sc)


def test_tariff_replaces_the_dataset_price():
    idx = pd.date_range("2018-01-05", periods=72, freq="h")  # Friday, Saturday, Sunday
    sc = validate_scenario(
        {
            "name": "t",
            "domain": "energy",
            "window": {
                "train": {"start": "2016-08-01", "days": 3},
                "validate": {"start": "2016-09-01", "days": 1},
                "evaluate": {"start": "2017-01-16", "days": 1},
            },
            "community": {"market": {"tariff": {**TARIFF, "peak_days": "weekdays"}}},
        }
    )
    price = d.tariff_price(sc.community.market.tariff, idx)
    h = idx.hour.to_numpy()
    weekday = idx.day_of_week.to_numpy() < 5
    expected = np.where((h >= 16) & (h < 21) & weekday, 0.45, 0.2)
    np.testing.assert_array_equal(price, expected)
    c = d.build_community(sc)
    np.testing.assert_array_equal(
        c.price_usd_per_kwh, d.tariff_price(sc.community.market.tariff, c.time)
    )


@needs_samples
@pytest.mark.slow
@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_style_simulates(style, caplog):
    """All four sample folders simulate (a tariff where the data have none); the thermal
    demand columns are reported as ignored."""
    from gridmarl.energy.simulate import simulate

    folder = SAMPLES / style
    first, has_price = STYLES[style]
    sc = scenario_on(folder, first, None if has_price else TARIFF)
    with caplog.at_level(logging.WARNING, logger="gridmarl.energy.data"):
        result = simulate(sc)
    names = [c.name for c in result.controllers]
    assert names == ["no_control", "rule_based", "milp"]
    costs = {c.name: c.kpis["cost_usd"] for c in result.controllers}
    assert costs["milp"] <= costs["no_control"] + 1e-6
    assert all(np.isfinite(v) for v in costs.values())
    assert "thermal demand columns ignored" in caplog.text
    co2 = {c.name: c.kpis["co2_kg"] for c in result.controllers}
    if style == "baeda_3dem":  # no carbon file
        assert all(np.isnan(v) for v in co2.values())
    else:
        assert all(v > 0 for v in co2.values())


@needs_samples
@pytest.mark.parametrize("case", ["bad_unit", "no_tariff"])
def test_cli_refuses_bad_dataset_with_exit_2(case, tmp_path):
    """A bad unit names the file and the column; a dataset without prices names the key."""
    import subprocess
    import sys

    import yaml

    src = "citylearn_challenge_2023_phase_1" if case == "bad_unit" else "citylearn_challenge_2021"
    folder = tmp_path / "data"
    shutil.copytree(SAMPLES / src, folder)
    if case == "bad_unit":
        text = (folder / "Building_2.csv").read_text()
        (folder / "Building_2.csv").write_text(
            text.replace("Equipment Electric Power (kWh)", "Equipment Electric Power (MWh)", 1)
        )
    sc = scenario_on(folder, STYLES[src][0], None if STYLES[src][1] else TARIFF)
    raw = sc.model_dump(mode="json", by_alias=True)
    raw.pop("train", None)
    raw["community"]["market"].pop("tariff", None)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    proc = subprocess.run(
        [sys.executable, "-m", "gridmarl.cli", "simulate", str(tmp_path / "s.yaml")]
        + ["--out", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=300,
    )
    err = proc.stderr + proc.stdout
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    if case == "bad_unit":
        assert "Building_2.csv" in err and "Equipment Electric Power (MWh)" in err
    else:
        assert "community.market.tariff" in err


@needs_samples
def test_carbon_price_without_carbon_data_is_refused_before_solving(monkeypatch):
    import baselines_opt.community as milp
    from gridmarl.config import ControllerEntry
    from gridmarl.energy.simulate import simulate

    def no_solve(*args, **kwargs):
        raise AssertionError("a MILP ran before the carbon option was checked")

    monkeypatch.setattr(milp, "solve_community_milp", no_solve)
    sc = scenario_on(SAMPLES / "baeda_3dem", STYLES["baeda_3dem"][0])
    sc.controllers = [
        ControllerEntry(name="no_control"),
        ControllerEntry(name="mpc", options={"carbon_usd_per_kg": 0.1}),
    ]
    with pytest.raises(ScenarioError, match=r"controllers\[mpc\]\.options\.carbon_usd_per_kg"):
        simulate(sc)
