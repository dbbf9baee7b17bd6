"""CityLearn-format datasets: finding, parsing and caching them (no PV model, no sampling).

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
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from gridmarl.core.errors import ScenarioError

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

INFER_FIRST_YEAR, INFER_LAST_YEAR = 2000, 2040  # years tried when the start is inferred


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


def dataset_stamp(folder: Path) -> tuple:
    """Names, sizes and modification times of the folder's files (a changed file is reread)."""
    with os.scandir(folder) as it:
        return tuple(
            sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in it if e.is_file())
        )


def _time_base(folder: Path) -> tuple[pd.Timestamp, float, int]:
    return _time_base_cached(folder, dataset_stamp(folder))


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


def resolve_dataset_folder(folder: str | Path) -> Path:
    """``folder`` as an absolute path (``~`` expanded); ScenarioError if it is not a folder."""
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise ScenarioError(f"{folder}: dataset folder not found")
    return path


def dataset_span(folder: str | Path) -> tuple[date, date]:
    """First and last whole day [local dates] covered by the dataset in ``folder``.  Cached."""
    start, step_h, rows = _time_base(resolve_dataset_folder(folder))
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
    return load_resolved_dataset(resolve_dataset_folder(folder))


def load_resolved_dataset(folder: Path) -> CityLearnData:
    """:func:`load_dataset` of a folder already passed through :func:`resolve_dataset_folder`."""
    return _load_dataset_cached(folder, dataset_stamp(folder))


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
