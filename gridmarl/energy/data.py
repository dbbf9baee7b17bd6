"""Real data for the energy domain: CityLearn-format datasets, pvlib PV, and ``build_community``.

Datasets
--------
``SHIPPED_DATASETS["citylearn_2022"]`` is the CityLearn Challenge 2022 data (17 homes in
Fontana, CA, hourly, 2016-07-31 23:00 to 2017-07-31 23:00 local standard time, MIT license; see
``data/README.md`` for provenance, hashes and quirks).  The repository's ``data/`` folder is
found next to the package, or in ``$GRIDMARL_DATA`` when that is set.

Any CityLearn-format folder can be read: ``schema.json`` plus building, weather and pricing
CSVs, plain (``.csv``) or gzipped (``.csv.gz``).  Building files come from the schema's
``buildings.<name>.energy_simulation`` (buildings with ``include: false`` are skipped), weather
and pricing files from ``buildings.<name>.weather`` / ``.pricing`` or the top-level keys of
the same name; without a schema, ``Building_*.csv[.gz]``, ``weather.csv[.gz]`` and
``pricing.csv[.gz]`` are globbed.  Both column styles are accepted:

==================  =====================================  ===============================
quantity            CityLearn 1.x (bracketed)              CityLearn >= 2.0 (snake_case)
==================  =====================================  ===============================
load [kWh/step]     ``Equipment Electric Power [kWh]``     ``non_shiftable_load``
measured PV [W/kW]  ``Solar Generation [W/kW]``            ``solar_generation``
T_out [C]           ``Outdoor Drybulb Temperature [C]``    ``outdoor_dry_bulb_temperature``
horizontal [W/m2]   ``Diffuse Solar Radiation [W/m2]``     ``diffuse_solar_irradiance``
DNI [W/m2]          ``Direct Solar Radiation [W/m2]``      ``direct_solar_irradiance``
import price        ``Electricity Pricing [$/kWh]``        ``electricity_pricing``
calendar            ``Month``, ``Hour``, ``Day Type``      ``month``, ``hour``, ``day_type``
==================  =====================================  ===============================

Time base.  CityLearn files have no timestamps; row *i* starts at ``start + i·Δt_data``
(``Δt_data = seconds_per_time_step``, default 3600 s).  ``start`` is read from the optional
gridmarl block of ``schema.json``, ``{"gridmarl": {"start_time": "2016-07-31T23:00:00"}}``
(local standard time of the dataset).  Without it, it is inferred from the calendar columns
(``Hour`` 1-24 is hour-ending, ``Day Type`` 1-7 = Monday-Sunday): the first year from 2000 on
whose calendar matches every row.  That is ambiguous (the 2022 data fit 2005, 2016 and 2022),
which is why the shipped schema states its start.

Irradiance.  ``"horizontal_irradiance"`` in the same gridmarl block says what the "diffuse"
column holds: ``"diffuse"`` (default, as labelled: GHI = DHI + DNI·cos z) or ``"global"``
(GHI = column, DHI = max(GHI − DNI·cos z, 0)).  The shipped 2022 data say ``"global"``: their
"Diffuse Solar Radiation" has a median of 0.95 × the clear-sky GHI in sunlit hours, and
DHI + DNI·cos z would be 1.6 × clear sky; the "Direct Solar Radiation" column is plausible
as direct *normal* irradiance (median 0.75 × clear-sky DNI, never above 0.70 × the
extraterrestrial DNI).  ``tests/energy/test_data.py`` checks the choice against measured PV.

PV model (pvlib PVWatts chain, per kWp, vectorised over orientations)
--------------------------------------------------------------------
1. Solar position at the middle of each step (``pvlib.solarposition.get_solarposition``, site
   ``community.latitude_deg/longitude_deg``, data clock = UTC + ``utc_offset_h``).
2. GHI/DHI/DNI as above; plane-of-array irradiance with ``pvlib.irradiance
   .get_total_irradiance(model="haydavies", dni_extra=get_extra_radiation(...))``, albedo 0.25.
3. Beam angle-of-incidence loss ``pvlib.iam.physical`` (PVWatts applies the AOI loss before
   the DC model).
4. Cell temperature ``pvlib.temperature.faiman`` (u0 = 25, u1 = 6.84, wind 1 m/s: the data
   have no wind) from the dataset's air temperature.
5. ``pvlib.pvsystem.pvwatts_dc(pdc0 = 1 kW, gamma_pdc)`` × (1 − ``losses_pct``/100)
   (``pvlib.pvsystem.pvwatts_losses()`` defaults give 14.08 %, the config default is 14 %).
6. ``pvlib.inverter.pvwatts(pdc0 = 1 kW, eta_inv_nom = inverter_eta)``: DC/AC ratio 1.
P_pv = kWp × that output [kW].  Weather between the data's rows is interpolated linearly (each
row's value is taken at the middle of its interval), so Δt = 0.5 / 0.25 h gets PV computed at
the finer step.

Heat-pump COP: ``cop = clip(cop_nominal + cop_slope_per_c · (T_out − 7), 1.0, 6.0)`` [-].

Sampling in ``build_community`` (everything from ``scenario.seed``)
------------------------------------------------------------------
Each quantity has its own random stream, ``np.random.default_rng(SeedSequence(seed,
spawn_key=(k,)))`` with ``k`` from ``_STREAMS``, so changing one setting (say the EV share)
does not move any other draw, and the community is the same for the train, validate and
evaluate spans.  Ranges ``[lo, hi]`` are uniform per prosumer.

* Buildings: a seeded permutation of the dataset's buildings, cycled (prosumer n gets
  ``perm[n % B]``): 50 prosumers use all 17 buildings.  Load = measured load [kWh/step] /
  Δt_data × a factor from ``community.load_scale``; within an hour the load and price are held
  (kW, $/kWh).
* PV: kWp, tilt, azimuth per prosumer from ``community.pv``; every prosumer has PV.
* Ownership: exactly ``floor(share·N + 0.5)`` prosumers (chosen without replacement) have a
  battery / an EV / a heat pump.  Device sizes are drawn for everyone and zeroed for
  non-owners (R and C of the RC model stay positive for everyone, unused without a heat pump).
* Battery: e_max, P_max from the ranges; e_min = soc_min·e_max, e_init = soc_init·e_max.
* EV: capacity, charger power, arrival hour a_n, departure hour d_n per prosumer.  The EV is
  present in a step whose start has time of day h ∈ [a_n, 24) ∪ [0, d_n).  A stay is named by
  the date it begins on; its arrival SOC is drawn per (prosumer, date) from ``arrival_soc``
  and ``ev_arrival_kwh = arrival_soc · capacity`` fills every step of the stay (0 when absent).
  ``ev_target_kwh = target_soc · capacity``.
* Heat pump: full-mode power, R, C; comfort band and initial temperature from the config.
* Price = dataset import tariff × ``market.price_scale``; feed-in, transformer limit, over-limit
  and peak charges from ``community.market``.

Span: the window's days (``train`` / ``validate`` / ``evaluate``) from 00:00 of the first day,
plus ``extra_steps`` look-ahead steps (default ``ceil(horizon_h / step_h) + 1``); where the
data end, the last step is repeated.  Results are in the units of ``Community``.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pvlib

from gridmarl.core.errors import ScenarioError
from gridmarl.energy.community import Community
from gridmarl.energy.feeders import scenario_graph

ENV_DATA = "GRIDMARL_DATA"  # environment variable that overrides the repository's data/ folder


def data_root() -> Path:
    """The folder holding the shipped datasets: ``$GRIDMARL_DATA`` or the repository's ``data/``."""
    env = os.environ.get(ENV_DATA)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data"


SHIPPED_DATASETS: dict[str, Path] = {"citylearn_2022": data_root() / "citylearn_2022"}

# quantity -> (CityLearn 1.x bracketed name, CityLearn >= 2.0 snake_case name)
COLUMNS: dict[str, tuple[str, str]] = {
    "load": ("Equipment Electric Power [kWh]", "non_shiftable_load"),
    "solar": ("Solar Generation [W/kW]", "solar_generation"),
    "month": ("Month", "month"),
    "hour": ("Hour", "hour"),
    "day_type": ("Day Type", "day_type"),
    "outdoor_c": ("Outdoor Drybulb Temperature [C]", "outdoor_dry_bulb_temperature"),
    "horizontal": ("Diffuse Solar Radiation [W/m2]", "diffuse_solar_irradiance"),
    "dni": ("Direct Solar Radiation [W/m2]", "direct_solar_irradiance"),
    "price": ("Electricity Pricing [$/kWh]", "electricity_pricing"),
}

COP_REF_C = 7.0  # [C] outdoor temperature at which cop_nominal holds
COP_MIN, COP_MAX = 1.0, 6.0  # [-] clip of the linear COP model
FAIMAN_WIND_M_S = 1.0  # [m/s] wind speed for the cell temperature (the data have no wind)
ALBEDO = 0.25  # [-] ground reflectance for the transposition
INFER_FIRST_YEAR, INFER_LAST_YEAR = 2000, 2040  # years tried when the start is inferred

_STREAMS = {"building": 1, "load_scale": 2, "pv": 3, "battery": 4, "ev": 5, "ev_soc": 6, "hp": 7}
Span = Literal["train", "validate", "evaluate"]


@dataclass(frozen=True)
class CityLearnData:
    """One CityLearn-format dataset, parsed.  ``H`` rows, ``B`` buildings."""

    folder: Path
    time: pd.DatetimeIndex  # [H] start of each row, dataset local time
    data_step_h: float  # Δt_data [h]
    buildings: tuple[str, ...]  # [B] building file stems (e.g. "Building_1")
    load_kw: np.ndarray  # [H, B] measured non-shiftable load [kW] (mean over the row)
    solar_w_per_kw: np.ndarray  # [H, B] measured PV AC output per kWp [W/kW]
    outdoor_c: np.ndarray  # [H] outdoor dry-bulb temperature [C]
    horizontal_w_m2: np.ndarray  # [H] the "diffuse" column [W/m2]
    dni_w_m2: np.ndarray  # [H] direct normal irradiance [W/m2]
    price_usd_per_kwh: np.ndarray  # [H] import tariff [$/kWh]
    horizontal_is_global: bool  # True: the "diffuse" column holds GHI

    @property
    def rows(self) -> int:
        """Rows H."""
        return len(self.time)


# ---------------------------------------------------------------------------------------------
# files and columns


def _schema(folder: Path) -> dict:
    path = folder / "schema.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: the top level must be a JSON object")
    return data


def _find_file(folder: Path, name: str, what: str) -> Path:
    base = name[:-3] if name.endswith(".gz") else name
    for cand in (folder / base, folder / (base + ".gz")):
        if cand.is_file():
            return cand
    raise ScenarioError(
        f"{folder}: {what} file {base!r} not found (looked for {base} and {base}.gz)"
    )


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv"):
        name = name.removesuffix(suffix)
    return name


def _natural_key(path: Path) -> tuple:
    stem = _stem(path)
    digits = "".join(ch for ch in stem if ch.isdigit())
    return (stem.rstrip("0123456789"), int(digits) if digits else -1, stem)


def _files(folder: Path, schema: dict) -> tuple[list[Path], Path, Path]:
    """Building, weather and pricing files of a dataset."""
    buildings = schema.get("buildings")
    weather_name = schema.get("weather") if isinstance(schema.get("weather"), str) else None
    pricing_name = schema.get("pricing") if isinstance(schema.get("pricing"), str) else None
    if isinstance(buildings, dict) and buildings:
        paths = []
        for key, spec in buildings.items():
            if not isinstance(spec, dict) or not spec.get("include", True):
                continue
            sim = spec.get("energy_simulation")
            if not isinstance(sim, str):
                raise ScenarioError(
                    f"{folder / 'schema.json'}: buildings.{key}.energy_simulation "
                    "missing; expected a CSV file name"
                )
            paths.append(_find_file(folder, sim, f"buildings.{key}.energy_simulation"))
            weather_name = weather_name or spec.get("weather")
            pricing_name = pricing_name or spec.get("pricing")
        if not paths:
            raise ScenarioError(f"{folder / 'schema.json'}: no building with include: true")
    else:
        paths = sorted(
            {*folder.glob("Building_*.csv"), *folder.glob("Building_*.csv.gz")}, key=_natural_key
        )
        if not paths:
            raise ScenarioError(
                f"{folder}: no schema.json buildings and no Building_*.csv[.gz] "
                "files; expected a CityLearn-format dataset folder"
            )
    weather = _find_file(folder, weather_name or "weather.csv", "weather")
    pricing = _find_file(folder, pricing_name or "pricing.csv", "pricing")
    return paths, weather, pricing


def _read_csv(path: Path, quantities: tuple[str, ...], optional: bool = False) -> dict:
    """Columns of a CSV by quantity name (either column style)."""
    try:
        header = pd.read_csv(path, nrows=0).columns
    except Exception as exc:  # pandas raises several types for unreadable files
        raise ScenarioError(f"{path}: cannot be read as CSV ({exc})") from None
    names = {}
    for q in quantities:
        old, new = COLUMNS[q]
        found = old if old in header else new if new in header else None
        if found is None:
            if optional:
                continue
            raise ScenarioError(
                f"{path}: missing column {old!r} (or {new!r}); columns found: "
                f"{', '.join(map(str, header))}"
            )
        names[q] = found
    frame = pd.read_csv(path, usecols=list(names.values()))
    out = {}
    for q, col in names.items():
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ScenarioError(
                f"{path}: column {col!r} has {bad.size} empty or non-numeric "
                f"values (first at data row {bad[0] + 1})"
            )
        out[q] = values
    return out


def _gridmarl_block(folder: Path, schema: dict) -> dict:
    block = schema.get("gridmarl", {})
    if not isinstance(block, dict):
        raise ScenarioError(f"{folder / 'schema.json'}: key 'gridmarl' must be an object")
    return block


def _step_h(folder: Path, schema: dict) -> float:
    seconds = schema.get("seconds_per_time_step", 3600)
    if not isinstance(seconds, int | float) or seconds <= 0 or 3600 % seconds:
        raise ScenarioError(
            f"{folder / 'schema.json'}: seconds_per_time_step {seconds!r}; allowed: "
            "a divisor of 3600"
        )
    return float(seconds) / 3600.0


def _infer_start(path: Path, cal: dict, step_h: float) -> pd.Timestamp:
    """Start of row 0 from the Month / Hour (1-24, hour-ending) / Day Type columns."""
    month, hour, dtype = (cal[k].astype(int) for k in ("month", "hour", "day_type"))
    hint = (
        f'; add {{"gridmarl": {{"start_time": "YYYY-MM-DDTHH:MM:SS"}}}} to '
        f"{path.parent / 'schema.json'}"
    )
    if step_h != 1.0:
        raise ScenarioError(f"{path}: the start time can only be inferred for hourly data{hint}")
    firsts = np.flatnonzero((hour == 1) & (np.diff(month, prepend=-1) != 0))
    if firsts.size == 0:
        raise ScenarioError(f"{path}: no month boundary in the data, cannot infer the start{hint}")
    i = int(firsts[0])
    rows = np.arange(len(month))
    for year in range(INFER_FIRST_YEAR, INFER_LAST_YEAR + 1):
        start = pd.Timestamp(year, month[i], 1) - pd.Timedelta(hours=i)
        t = start + pd.to_timedelta(rows, unit="h")
        ok_month = np.array_equal(t.month.to_numpy(), month)
        ok_hour = np.array_equal(t.hour.to_numpy() + 1, hour)
        weekday = t.day_of_week.to_numpy() + 1
        ok_day = np.all((dtype == 8) | (dtype == weekday))
        if ok_month and ok_hour and ok_day:
            return start
    raise ScenarioError(
        f"{path}: the Month / Hour / Day Type columns fit no year from "
        f"{INFER_FIRST_YEAR} to {INFER_LAST_YEAR}{hint}"
    )


def _stamp(folder: Path) -> tuple:
    """Names, sizes and modification times of the folder's files (a changed file is reread)."""
    with os.scandir(folder) as it:
        return tuple(
            sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in it if e.is_file())
        )


def _time_base(folder: Path) -> tuple[pd.Timestamp, float, int]:
    return _time_base_cached(folder, _stamp(folder))


@functools.lru_cache(maxsize=16)
def _time_base_cached(folder: Path, stamp: tuple) -> tuple[pd.Timestamp, float, int]:
    """(start of row 0, Δt_data [h], rows H), read from the schema and the first building file."""
    schema = _schema(folder)
    buildings, _, _ = _files(folder, schema)
    step_h = _step_h(folder, schema)
    block = _gridmarl_block(folder, schema)
    first = buildings[0]
    if "start_time" in block:
        try:
            start = pd.Timestamp(block["start_time"])
        except (ValueError, TypeError):
            raise ScenarioError(
                f"{folder / 'schema.json'}: gridmarl.start_time "
                f"{block['start_time']!r} is not an ISO date-time"
            ) from None
        rows = len(pd.read_csv(first, usecols=[0]))
    else:
        cal = _read_csv(first, ("month", "hour", "day_type"))
        start = _infer_start(first, cal, step_h)
        rows = len(cal["month"])
    if start.tzinfo is not None:
        raise ScenarioError(
            f"{folder / 'schema.json'}: gridmarl.start_time must be local time "
            "without a UTC offset (the offset is community.utc_offset_h)"
        )
    return start, step_h, rows


def _resolve(folder: str | Path) -> Path:
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise ScenarioError(f"{folder}: dataset folder not found")
    return path


def dataset_span(folder: str | Path) -> tuple[date, date]:
    """First and last whole day [local dates] covered by the dataset in ``folder``.  Cached."""
    start, step_h, rows = _time_base(_resolve(folder))
    end = start + pd.Timedelta(hours=rows * step_h)  # end of the last row
    first = start.normalize() + (
        pd.Timedelta(days=1) if start != start.normalize() else pd.Timedelta(0)
    )
    last = end.normalize() - pd.Timedelta(days=1)
    return first.date(), last.date()


def load_dataset(folder: str | Path) -> CityLearnData:
    """Parse a CityLearn-format dataset folder (cached by resolved path and file times).

    Raises:
        ScenarioError: a missing file or column, naming the file, the column and what is allowed.
    """
    return _load_dataset(_resolve(folder))


def _load_dataset(folder: Path) -> CityLearnData:
    return _load_dataset_cached(folder, _stamp(folder))


@functools.lru_cache(maxsize=4)
def _load_dataset_cached(folder: Path, stamp: tuple) -> CityLearnData:
    schema = _schema(folder)
    building_files, weather_file, pricing_file = _files(folder, schema)
    start, step_h, rows = _time_base(folder)
    block = _gridmarl_block(folder, schema)
    kind = block.get("horizontal_irradiance", "diffuse")
    if kind not in ("diffuse", "global"):
        raise ScenarioError(
            f"{folder / 'schema.json'}: gridmarl.horizontal_irradiance {kind!r}; "
            "allowed: diffuse, global"
        )
    loads, solars = [], []
    for path in building_files:
        cols = _read_csv(path, ("load", "solar"))
        if len(cols["load"]) != rows:
            raise ScenarioError(
                f"{path}: {len(cols['load'])} rows, expected {rows} like {building_files[0].name}"
            )
        loads.append(cols["load"] / step_h)  # [kWh per row] -> mean [kW]
        solars.append(cols["solar"])
    weather = _read_csv(weather_file, ("outdoor_c", "horizontal", "dni"))
    pricing = _read_csv(pricing_file, ("price",))
    for path, cols in ((weather_file, weather), (pricing_file, pricing)):
        n = len(next(iter(cols.values())))
        if n < rows:
            raise ScenarioError(f"{path}: {n} rows, expected at least {rows} like the buildings")
    return CityLearnData(
        folder=folder,
        time=pd.date_range(start, periods=rows, freq=pd.Timedelta(hours=step_h)),
        data_step_h=step_h,
        buildings=tuple(_stem(p) for p in building_files),
        load_kw=np.column_stack(loads),
        solar_w_per_kw=np.column_stack(solars),
        outdoor_c=weather["outdoor_c"][:rows],
        horizontal_w_m2=weather["horizontal"][:rows],
        dni_w_m2=weather["dni"][:rows],
        price_usd_per_kwh=pricing["price"][:rows],
        horizontal_is_global=kind == "global",
    )


# ---------------------------------------------------------------------------------------------
# PV and COP


def pv_ac_per_kwp(
    time: pd.DatetimeIndex,
    step_h: float,
    *,
    horizontal_w_m2: np.ndarray,
    dni_w_m2: np.ndarray,
    temp_air_c: np.ndarray,
    tilt_deg: np.ndarray,
    azimuth_deg: np.ndarray,
    latitude_deg: float,
    longitude_deg: float,
    utc_offset_h: float,
    horizontal_is_global: bool,
    gamma_pdc: float = -0.004,
    losses_pct: float = 14.0,
    inverter_eta: float = 0.96,
) -> np.ndarray:
    """PVWatts AC output per kWp [kW/kWp], ``[T, K]`` for K orientations (module docstring).

    Args:
        time: ``[T]`` start of each step, dataset local time (naive).
        step_h: Δt [h]; the sun is placed at the middle of each step.
        horizontal_w_m2: ``[T]`` the dataset's "diffuse" column [W/m2] (GHI if
            ``horizontal_is_global``).
        dni_w_m2: ``[T]`` direct normal irradiance [W/m2].
        temp_air_c: ``[T]`` air temperature [C].
        tilt_deg, azimuth_deg: ``[K]`` panel tilt from horizontal and azimuth (180 = south) [deg].
    """
    tz = timezone(timedelta(hours=utc_offset_h))
    mid = (time + pd.Timedelta(hours=step_h / 2)).tz_localize(tz)
    sun = pvlib.solarposition.get_solarposition(mid, latitude_deg, longitude_deg)
    zen = sun["apparent_zenith"].to_numpy()[:, None]
    sazi = sun["azimuth"].to_numpy()[:, None]
    cosz = np.clip(np.cos(np.radians(zen)), 0.0, None)
    horiz = np.clip(np.asarray(horizontal_w_m2, float)[:, None], 0.0, None)
    dni = np.clip(np.asarray(dni_w_m2, float)[:, None], 0.0, None)
    if horizontal_is_global:
        ghi, dhi = horiz, np.clip(horiz - dni * cosz, 0.0, None)
    else:
        ghi, dhi = horiz + dni * cosz, horiz
    dni_extra = pvlib.irradiance.get_extra_radiation(mid).to_numpy()[:, None]
    tilt = np.asarray(tilt_deg, float)[None, :]
    azim = np.asarray(azimuth_deg, float)[None, :]
    poa = pvlib.irradiance.get_total_irradiance(
        tilt, azim, zen, sazi, dni, ghi, dhi, dni_extra=dni_extra, albedo=ALBEDO, model="haydavies"
    )
    aoi = pvlib.irradiance.aoi(tilt, azim, zen, sazi)
    effective = np.nan_to_num(poa["poa_direct"] * pvlib.iam.physical(aoi) + poa["poa_diffuse"])
    t_cell = pvlib.temperature.faiman(
        np.nan_to_num(poa["poa_global"]),
        np.asarray(temp_air_c, float)[:, None],
        wind_speed=FAIMAN_WIND_M_S,
    )
    pdc = pvlib.pvsystem.pvwatts_dc(effective, t_cell, pdc0=1.0, gamma_pdc=gamma_pdc)
    pdc = np.clip(pdc, 0.0, None) * (1.0 - losses_pct / 100.0)
    ac = pvlib.inverter.pvwatts(pdc, pdc0=1.0, eta_inv_nom=inverter_eta)
    return np.clip(np.nan_to_num(np.asarray(ac, float)), 0.0, None)


def heat_pump_cop(outdoor_c: np.ndarray, cop_nominal: float, cop_slope_per_c: float) -> np.ndarray:
    """COP = clip(cop_nominal + cop_slope_per_c · (T_out − 7 C), 1, 6) [-], same shape as T_out."""
    return np.clip(
        cop_nominal + cop_slope_per_c * (np.asarray(outdoor_c) - COP_REF_C), COP_MIN, COP_MAX
    )


@functools.lru_cache(maxsize=32)
def _pv_cached(
    folder: Path,
    stamp: tuple,
    row0: int,
    steps: int,
    step_h: float,
    site: tuple,
    orientations: tuple,
    params: tuple,
) -> np.ndarray:
    """Per-kWp PV ``[steps, K]`` for the data rows from ``row0``; read-only (shared by callers)."""
    data = _load_dataset(folder)
    time, weather = _fine_weather(data, row0, steps, step_h)
    tilt, azim = (np.array(v) for v in zip(*orientations, strict=True))
    out = pv_ac_per_kwp(
        time,
        step_h,
        horizontal_w_m2=weather["horizontal"],
        dni_w_m2=weather["dni"],
        temp_air_c=weather["outdoor_c"],
        tilt_deg=tilt,
        azimuth_deg=azim,
        latitude_deg=site[0],
        longitude_deg=site[1],
        utc_offset_h=site[2],
        horizontal_is_global=data.horizontal_is_global,
        gamma_pdc=params[0],
        losses_pct=params[1],
        inverter_eta=params[2],
    )
    out.setflags(write=False)
    return out


# ---------------------------------------------------------------------------------------------
# resampling


def _fine_index(data: CityLearnData, row0: int, steps: int, step_h: float) -> np.ndarray:
    """Position of each fine step's start in data rows (float), steps from ``row0``."""
    return row0 + np.arange(steps) * (step_h / data.data_step_h)


def _fine_weather(data: CityLearnData, row0: int, steps: int, step_h: float):
    """Fine time index and weather interpolated at each step's middle (row value = row middle)."""
    pos = _fine_index(data, row0, steps, step_h)
    mid = pos + 0.5 * step_h / data.data_step_h - 0.5  # in "row middles"
    rows = np.arange(data.rows)
    weather = {
        q: np.interp(mid, rows, getattr(data, attr))
        for q, attr in (
            ("outdoor_c", "outdoor_c"),
            ("horizontal", "horizontal_w_m2"),
            ("dni", "dni_w_m2"),
        )
    }
    time = data.time[0] + pd.to_timedelta(pos * data.data_step_h, unit="h")
    return pd.DatetimeIndex(time), weather


# ---------------------------------------------------------------------------------------------
# community


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAMS[stream],)))


def _uniform(rng: np.random.Generator, bounds: tuple[float, float], n: int) -> np.ndarray:
    return rng.uniform(bounds[0], bounds[1], size=n)


def _owners(rng: np.random.Generator, share: float, n: int) -> np.ndarray:
    """Exactly floor(share·n + 0.5) owners, chosen without replacement."""
    k = min(n, int(math.floor(share * n + 0.5)))
    mask = np.zeros(n, bool)
    mask[rng.choice(n, size=k, replace=False)] = True
    return mask


def build_community(scenario, span: Span = "evaluate", extra_steps: int | None = None) -> Community:
    """The ``Community`` of an energy scenario over one window span (see the module docstring).

    Args:
        scenario: a validated ``EnergyScenario``.
        span: which window: ``"train"``, ``"validate"`` or ``"evaluate"``.
        extra_steps: look-ahead steps after the window's last day (default: forecast horizon
            in steps + 1); beyond the end of the data the last step is repeated.

    Returns:
        ``Community`` with S = days · 24 / step_h + extra_steps steps starting at 00:00 of the
        window's first day, N = ``community.prosumers``.
    """
    key = {"train": "train", "validate": "validate_", "evaluate": "evaluate"}.get(span)
    if key is None:
        raise ScenarioError(f"span {span!r}; allowed: train, validate, evaluate")
    cfg = scenario.community
    step_h = float(scenario.window.step_h)
    window = getattr(scenario.window, key)
    if extra_steps is None:
        extra_steps = math.ceil(cfg.forecast.horizon_h / step_h - 1e-9) + 1
    if extra_steps < 0:
        raise ScenarioError(f"extra_steps {extra_steps}; allowed: >= 0")

    folder = _resolve(scenario.dataset_dir())
    data = _load_dataset(folder)
    if data.data_step_h < step_h or not float(data.data_step_h / step_h).is_integer():
        raise ScenarioError(
            f"window.step_h {step_h}: must divide the data step {data.data_step_h} h"
        )
    first, last = dataset_span(folder)
    end_day = window.start + timedelta(days=window.days - 1)
    if window.start < first or end_day > last:
        raise ScenarioError(
            f"window.{span}: {window.start} + {window.days} days lies outside "
            f"the data ({first} to {last})"
        )
    offset_h = (
        datetime.combine(window.start, datetime.min.time()) - data.time[0]
    ).total_seconds() / 3600.0
    row0 = round(offset_h / data.data_step_h)
    steps = round(window.days * 24 / step_h) + extra_steps
    per_row = round(data.data_step_h / step_h)
    avail = min(steps, (data.rows - row0) * per_row)  # fine steps backed by data

    n = cfg.prosumers
    rows = row0 + np.arange(avail) // per_row
    pad = np.r_[np.arange(avail), np.full(steps - avail, avail - 1)]  # repeat the last step

    # buildings and load
    b = len(data.buildings)
    perm = _rng(scenario.seed, "building").permutation(b)
    building = perm[np.arange(n) % b]
    scale = _uniform(_rng(scenario.seed, "load_scale"), cfg.load_scale, n)
    load_kw = (data.load_kw[rows][:, building] * scale)[pad]

    # PV
    rng = _rng(scenario.seed, "pv")
    kwp = _uniform(rng, cfg.pv.kwp, n)
    tilt = _uniform(rng, cfg.pv.tilt_deg, n)
    azim = _uniform(rng, cfg.pv.azimuth_deg, n)
    per_kwp = _pv_cached(
        folder,
        _stamp(folder),
        row0,
        avail,
        step_h,
        (cfg.latitude_deg, cfg.longitude_deg, cfg.utc_offset_h),
        tuple(zip(tilt.tolist(), azim.tolist(), strict=True)),
        (cfg.pv.gamma_pdc, cfg.pv.losses_pct, cfg.pv.inverter_eta),
    )
    pv_kw = (per_kwp * kwp)[pad]

    time_avail, weather = _fine_weather(data, row0, avail, step_h)
    time = pd.date_range(time_avail[0], periods=steps, freq=pd.Timedelta(hours=step_h))
    outdoor_c = weather["outdoor_c"][pad]
    price = data.price_usd_per_kwh[rows][pad] * cfg.market.price_scale
    hp = cfg.heat_pump
    cop = np.repeat(
        heat_pump_cop(outdoor_c, hp.cop_nominal, hp.cop_slope_per_c)[:, None], n, axis=1
    )

    # battery
    bat = cfg.battery
    rng = _rng(scenario.seed, "battery")
    has_bat = _owners(rng, bat.share, n)
    bat_kwh = _uniform(rng, bat.capacity_kwh, n) * has_bat
    bat_kw = _uniform(rng, bat.power_kw, n) * has_bat

    # EV
    ev = cfg.ev
    rng = _rng(scenario.seed, "ev")
    has_ev = _owners(rng, ev.share, n)
    ev_kwh = _uniform(rng, ev.capacity_kwh, n) * has_ev
    ev_kw = _uniform(rng, ev.charger_kw, n) * has_ev
    arrival = _uniform(rng, ev.arrival_h, n)
    departure = _uniform(rng, ev.departure_h, n)
    tod = ((time - time.normalize()) / pd.Timedelta(hours=1)).to_numpy()[:, None]
    after_arrival = tod >= arrival[None, :]
    ev_present = (after_arrival | (tod < departure[None, :])) & has_ev[None, :]
    # a stay is named by the day it began on; one arrival SOC per (dataset day, prosumer)
    day0 = data.time[0].normalize()
    day_idx = ((time.normalize() - day0) / pd.Timedelta(days=1)).to_numpy().astype(int)
    stay_day = day_idx[:, None] - (~after_arrival).astype(int) + 1  # >= 0
    n_days = int(math.ceil(data.rows * data.data_step_h / 24)) + 3 + int(stay_day.max())
    arrival_soc = _uniform(_rng(scenario.seed, "ev_soc"), ev.arrival_soc, n_days * n)
    arrival_soc = arrival_soc.reshape(n_days, n)
    ev_arrival_kwh = np.where(
        ev_present, arrival_soc[stay_day, np.arange(n)[None, :]] * ev_kwh[None, :], 0.0
    )

    # heat pump
    rng = _rng(scenario.seed, "hp")
    has_hp = _owners(rng, hp.share, n)
    hp_kw = _uniform(rng, hp.power_kw, n) * has_hp
    r_c = _uniform(rng, hp.r_c_per_kw, n)
    c_c = _uniform(rng, hp.c_kwh_per_c, n)

    width = max(2, len(str(n - 1)))
    market = cfg.market
    feeder, reach, groups, neighbors = scenario_graph(scenario, n)
    return Community(
        step_h=step_h,
        time=time,
        load_kw=load_kw,
        pv_kw=pv_kw,
        price_usd_per_kwh=price,
        outdoor_c=outdoor_c,
        cop=cop,
        ev_present=ev_present,
        ev_arrival_kwh=ev_arrival_kwh,
        battery_kwh=bat_kwh,
        battery_kw=bat_kw,
        battery_min_kwh=bat.soc_min * bat_kwh,
        battery_init_kwh=bat.soc_init * bat_kwh,
        eta_charge=bat.eta_charge,
        eta_discharge=bat.eta_discharge,
        degradation_usd_per_kwh=bat.degradation_usd_per_kwh,
        has_ev=has_ev,
        ev_kwh=ev_kwh,
        ev_kw=ev_kw,
        ev_target_kwh=ev.target_soc * ev_kwh,
        ev_eta=ev.efficiency,
        unmet_usd_per_kwh=ev.unmet_usd_per_kwh,
        has_hp=has_hp,
        hp_kw=hp_kw,
        hp_modes=hp.modes,
        r_c_per_kw=r_c,
        c_kwh_per_c=c_c,
        theta_lo_c=np.full(n, hp.comfort_c[0]),
        theta_hi_c=np.full(n, hp.comfort_c[1]),
        theta_init_c=np.full(n, hp.init_c),
        comfort_usd_per_c_h=hp.comfort_usd_per_c_h,
        feed_in_usd_per_kwh=market.feed_in_usd_per_kwh,
        transformer_kw=market.transformer_kw,
        over_limit_usd_per_kwh=market.over_limit_usd_per_kwh,
        peak_usd_per_kw=market.peak_usd_per_kw,
        broadcast_loading=market.broadcast_loading,
        ev_rate_feature=ev.rate_feature,
        ev_action_prior=ev.action_prior,
        names=tuple(f"prosumer_{i:0{width}d}" for i in range(n)),
        sources=tuple(data.buildings[j] for j in building),
        feeder=feeder,
        feeder_reach=reach,
        graph_groups=groups,
        graph_neighbors=neighbors,
    )
