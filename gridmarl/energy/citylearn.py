"""CityLearn-format datasets: finding, parsing and caching them (no PV model, no sampling).

``SHIPPED_DATASETS["citylearn_2022"]`` is the CityLearn Challenge 2022 data (17 homes in
Fontana, CA, hourly, 2016-07-31 23:00 to 2017-07-31 23:00 local standard time, MIT license; see
``data/README.md`` for provenance, hashes and quirks).  The repository's ``data/`` folder is
found next to the package, or in ``$GRIDMARL_DATA`` when that is set.

Any CityLearn-format folder can be read (every style CityLearn 1.x and 2.x ship: the 2020,
2021, 2022 and 2023 challenge folders, ``baeda_3dem``): ``schema.json`` plus building, weather,
pricing and carbon-intensity CSVs, plain (``.csv``) or gzipped (``.csv.gz``).  Building files
come from the schema's ``buildings.<name>.energy_simulation`` (buildings with ``include:
false`` are skipped), weather / pricing / carbon files from ``buildings.<name>.weather`` /
``.pricing`` / ``.carbon_intensity`` or the top-level keys of the same name; a key set to
``null`` means the dataset has no such file.  Without a schema, ``Building_*.csv[.gz]``,
``weather.csv[.gz]`` and, when present, ``pricing.csv[.gz]`` and ``carbon_intensity.csv[.gz]``
are globbed.

Columns.  A header is split into a name and a unit, the unit in brackets or parentheses
(``Equipment Electric Power [kWh]``, ``Equipment Electric Power (kWh)``); names compare
case-insensitively with runs of blanks collapsed.  CityLearn >= 2.0 snake_case names carry no
unit (the unit below is implied).  A unit not in the allowed list is refused, naming file,
column and the units allowed (``ScenarioError``).

==================  =====================================  ===============================
quantity            name [unit] (CityLearn 1.x / 2023)     CityLearn >= 2.0 (snake_case)
==================  =====================================  ===============================
load [kWh/row]      ``Equipment Electric Power [kWh]``     ``non_shiftable_load``
measured PV [W/kW]  ``Solar Generation [W/kW]``            ``solar_generation``
T_out [C]           ``Outdoor Drybulb Temperature [C]``    ``outdoor_dry_bulb_temperature``
horizontal [W/m2]   ``Diffuse Solar Radiation [W/m2]``     ``diffuse_solar_irradiance``
DNI [W/m2]          ``Direct Solar Radiation [W/m2]``      ``direct_solar_irradiance``
import price        ``Electricity Pricing [$/kWh]``        ``electricity_pricing``
carbon intensity    ``kg_CO2/kWh`` (the whole header)      ``carbon_intensity``
DHW demand          ``DHW Heating [kWh]``                  ``dhw_demand``
cooling demand      ``Cooling Load [kWh]``                 ``cooling_demand``
heating demand      ``Heating Load [kWh]``                 ``heating_demand``
calendar            ``Month``, ``Hour``, ``Day Type``      ``month``, ``hour``, ``day_type``
==================  =====================================  ===============================

Loads: the model's non-shiftable load is the "Equipment Electric Power" column.  The thermal
demand columns (DHW, cooling, heating; thermal kWh that CityLearn serves with its own heat pump
and electric heater models) are read and **ignored** by the model: :func:`load_dataset` keeps
their totals, and ``build_community`` logs a warning naming them when they are non-zero in the
window (the 2022 data have them all 0; the 2020, 2021, 2023 and baeda datasets do not).

Pricing: a dataset without a price file (the 2020 and 2021 challenge data) has
``price_usd_per_kwh = None``; the scenario then supplies the tariff
(``community.market.tariff``) or ``build_community`` raises a ``ScenarioError`` naming that key.
Carbon: ``carbon_kg_per_kwh`` [kg CO2/kWh] per row, ``None`` without a carbon file.

How each dataset is read (``DatasetReading``), in this order of precedence:

1. The optional gridmarl block of ``schema.json``:
   ``{"gridmarl": {"start_time": "2016-07-31T23:00:00", "horizontal_irradiance": "global"}}``
   (local standard time of the dataset; ``horizontal_irradiance``: what the "diffuse" column
   holds).
2. ``KNOWN_DATASETS``: CityLearn datasets recognised by the SHA-256 of their weather file
   (``citylearn_challenge_2022_phase_all``: start 2016-07-31 23:00, the "diffuse" column is
   global horizontal irradiance, as ``data/README.md`` shows), so CityLearn's own copy of the
   2022 data reads exactly like the shipped one.
3. Defaults, each with a logged warning that names the schema key to set (never a silent
   guess): the start is inferred from the calendar columns (``Hour`` 1-24 is hour-ending,
   ``Day Type`` 1-7 = Monday-Sunday, 8 = holiday): **the first year from 2000 on whose calendar
   matches every row** (the warning lists every fitting year up to 2040); the "diffuse"
   column is taken **as labelled** (diffuse horizontal irradiance, GHI = DHI + DNI·cos z).

Time step: ``seconds_per_time_step`` of the schema (CityLearn's own key; default 3600 s with a
warning when absent; it must divide 3600).  Row *i* starts at ``start + i·Δt_data``.

Irradiance.  ``"diffuse"``: GHI = column + DNI·cos z; ``"global"``: GHI = column, DHI =
max(GHI − DNI·cos z, 0).  The 2022 data hold GHI in their "Diffuse Solar Radiation" column:
its median is 0.95 × the clear-sky GHI in sunlit hours, and DHI + DNI·cos z would be 1.6 ×
clear sky; the "Direct Solar Radiation" column is plausible as direct *normal* irradiance
(median 0.75 × clear-sky DNI, never above 0.70 × the extraterrestrial DNI).
``tests/energy/test_data.py`` checks the choice against measured PV.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from gridmarl.core.errors import ScenarioError

log = logging.getLogger(__name__)

ENV_DATA = "GRIDMARL_DATA"  # environment variable that overrides the repository's data/ folder


def data_root() -> Path:
    """The folder holding the shipped datasets: ``$GRIDMARL_DATA`` or the repository's ``data/``."""
    env = os.environ.get(ENV_DATA)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data"


SHIPPED_DATASETS: dict[str, Path] = {"citylearn_2022": data_root() / "citylearn_2022"}


@dataclass(frozen=True)
class Quantity:
    """A column the importer reads: its names in both styles and the units it accepts."""

    name: str  # CityLearn 1.x name without the unit ("Equipment Electric Power")
    snake: str  # CityLearn >= 2.0 name ("non_shiftable_load"), unit implied
    units: dict[str, float] = field(default_factory=dict)  # allowed unit -> factor to ours
    unit: str = ""  # the unit shown in messages ("kWh"); "" = dimensionless
    whole_headers: tuple[str, ...] = ()  # headers that are the unit alone ("kg_CO2/kWh")

    @property
    def label(self) -> str:
        """The 1.x header, e.g. ``Equipment Electric Power [kWh]``."""
        return f"{self.name} [{self.unit}]" if self.unit else self.name


_KWH = {"kwh": 1.0, "wh": 1e-3}
_WM2 = {"w/m2": 1.0, "w/m^2": 1.0, "w/m²": 1.0, "wm-2": 1.0}
QUANTITIES: dict[str, Quantity] = {
    "load": Quantity("Equipment Electric Power", "non_shiftable_load", _KWH, "kWh"),
    "solar": Quantity("Solar Generation", "solar_generation", {"w/kw": 1.0}, "W/kW"),
    "month": Quantity("Month", "month"),
    "hour": Quantity("Hour", "hour"),
    "day_type": Quantity("Day Type", "day_type"),
    "outdoor_c": Quantity(
        "Outdoor Drybulb Temperature", "outdoor_dry_bulb_temperature", {"c": 1.0, "°c": 1.0}, "C"
    ),
    "horizontal": Quantity("Diffuse Solar Radiation", "diffuse_solar_irradiance", _WM2, "W/m2"),
    "dni": Quantity("Direct Solar Radiation", "direct_solar_irradiance", _WM2, "W/m2"),
    "price": Quantity("Electricity Pricing", "electricity_pricing", {"$/kwh": 1.0}, "$/kWh"),
    "carbon": Quantity(
        "Carbon Intensity",
        "carbon_intensity",
        {"kg_co2/kwh": 1.0, "kgco2/kwh": 1.0, "kg/kwh": 1.0, "g_co2/kwh": 1e-3, "gco2/kwh": 1e-3},
        "kg_CO2/kWh",
        whole_headers=("kg_co2/kwh", "kgco2/kwh"),
    ),
    "dhw": Quantity("DHW Heating", "dhw_demand", _KWH, "kWh"),
    "cooling": Quantity("Cooling Load", "cooling_demand", _KWH, "kWh"),
    "heating": Quantity("Heating Load", "heating_demand", _KWH, "kWh"),
}
# quantity -> (CityLearn 1.x bracketed name, CityLearn >= 2.0 snake_case name)
COLUMNS: dict[str, tuple[str, str]] = {k: (q.label, q.snake) for k, q in QUANTITIES.items()}
THERMAL = ("dhw", "cooling", "heating")  # thermal demand columns, read and ignored by the model

INFER_FIRST_YEAR, INFER_LAST_YEAR = 2000, 2040  # years tried when the start is inferred
DEFAULT_STEP_S = 3600  # seconds_per_time_step when the schema is silent


@dataclass(frozen=True)
class KnownDataset:
    """How to read a CityLearn dataset whose schema does not say (recognised by its weather)."""

    name: str
    start_time: str  # local start of row 0 (ISO)
    horizontal_irradiance: str  # "diffuse" | "global"
    source: str  # where the facts come from


# SHA-256 of the (decompressed) weather file -> facts (data/README.md gives the evidence)
KNOWN_DATASETS: dict[str, KnownDataset] = {
    "e8f4cbbf90694f672f1595e8b59057fd4e01828e6d180d404cdcbe035ae12815": KnownDataset(
        "citylearn_challenge_2022_phase_all",
        "2016-07-31T23:00:00",
        "global",
        "data/README.md (Time base; Quirks: the 'Diffuse Solar Radiation' column is GHI)",
    ),
}


@dataclass(frozen=True)
class DatasetReading:
    """Where each reading choice of a dataset came from (``schema``, ``known``, ``default``)."""

    start: pd.Timestamp
    start_from: str
    horizontal_irradiance: str
    irradiance_from: str
    step_from: str
    known: str | None  # KNOWN_DATASETS name when recognised


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
    price_usd_per_kwh: np.ndarray | None  # [H] import tariff [$/kWh]; None: no price file
    horizontal_is_global: bool  # True: the "diffuse" column holds GHI
    carbon_kg_per_kwh: np.ndarray | None = None  # [H] grid carbon intensity [kg/kWh]; None: none
    thermal_kw: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> [H, B] [kW th]
    reading: DatasetReading | None = None  # where the time base and irradiance choice came from

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


_UNSET = object()


@dataclass(frozen=True)
class DatasetFiles:
    """The files of a dataset; ``pricing`` / ``carbon`` None when the dataset has none."""

    buildings: list[Path]
    weather: Path
    pricing: Path | None
    carbon: Path | None


def _side_file(folder: Path, schema: dict, names: list, key: str, default: str) -> Path | None:
    """A weather / pricing / carbon file: named in the schema (``null`` = none), else globbed."""
    top = schema.get(key, _UNSET)
    named = [v for v in ([top] if top is not _UNSET else []) + names if v is not _UNSET]
    strings = [v for v in named if isinstance(v, str)]
    if strings:
        return _find_file(folder, strings[0], key)
    if named:  # the schema says null: the dataset has none
        return None
    for cand in (folder / default, folder / (default + ".gz")):
        if cand.is_file():
            return cand
    return None


def dataset_files(folder: Path, schema: dict) -> DatasetFiles:
    """Building, weather, pricing and carbon-intensity files of a dataset."""
    buildings = schema.get("buildings")
    side: dict[str, list] = {"weather": [], "pricing": [], "carbon_intensity": []}
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
            for k, vals in side.items():
                vals.append(spec.get(k, _UNSET))
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
    weather = _side_file(folder, schema, side["weather"], "weather", "weather.csv")
    if weather is None:
        raise ScenarioError(
            f"{folder}: weather file 'weather.csv' not found (looked for weather.csv and "
            "weather.csv.gz; schema.json key 'weather')"
        )
    pricing = _side_file(folder, schema, side["pricing"], "pricing", "pricing.csv")
    carbon = _side_file(
        folder, schema, side["carbon_intensity"], "carbon_intensity", "carbon_intensity.csv"
    )
    return DatasetFiles(paths, weather, pricing, carbon)


_UNIT_RE = re.compile(r"^(?P<name>.*?)\s*[\[(](?P<unit>[^\[\]()]*)[\])]\s*$")


def _norm(text: str) -> str:
    return " ".join(str(text).strip().lower().split())


def split_header(header: str) -> tuple[str, str | None]:
    """``"Equipment Electric Power (kWh)"`` -> ``("equipment electric power", "kwh")``: the
    name (lower case, blanks collapsed) and the unit in brackets or parentheses (None if none)."""
    m = _UNIT_RE.match(str(header))
    if m is None:
        return _norm(header), None
    return _norm(m.group("name")), _norm(m.group("unit")).replace(" ", "")


def _match(path: Path, header: pd.Index, q: Quantity) -> tuple[str, float] | None:
    """The column of ``header`` holding quantity ``q`` and its factor to our unit, or None."""
    for col in header:
        text = _norm(col).replace(" ", "")
        if text in q.whole_headers:
            return str(col), q.units.get(text, 1.0)
        if str(col).strip() == q.snake:
            return str(col), 1.0
        name, unit = split_header(col)
        if name != _norm(q.name):
            continue
        if not q.units:  # dimensionless (calendar)
            return str(col), 1.0
        if unit is None:
            raise ScenarioError(
                f"{path}: column {col!r} has no unit; allowed: {q.label} "
                f"(units {', '.join(q.units)}) or {q.snake!r}"
            )
        if unit not in q.units:
            raise ScenarioError(
                f"{path}: column {col!r}: unit {unit!r} not allowed; allowed units: "
                f"{', '.join(q.units)}"
            )
        return str(col), q.units[unit]
    return None


def _read_csv(path: Path, quantities: tuple[str, ...], optional: bool = False) -> dict:
    """Columns of a CSV by quantity name (either column style), in our units."""
    try:
        header = pd.read_csv(path, nrows=0).columns
    except Exception as exc:  # pandas raises several types for unreadable files
        raise ScenarioError(f"{path}: cannot be read as CSV ({exc})") from None
    names: dict[str, tuple[str, float]] = {}
    for key in quantities:
        q = QUANTITIES[key]
        found = _match(path, header, q)
        if found is None:
            if optional:
                continue
            raise ScenarioError(
                f"{path}: missing column {q.label!r} (or {q.snake!r}; units in brackets or "
                f"parentheses); columns found: {', '.join(map(str, header))}"
            )
        names[key] = found
    if not names:
        return {}
    frame = pd.read_csv(path, usecols=[c for c, _ in names.values()])
    out = {}
    for key, (col, factor) in names.items():
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ScenarioError(
                f"{path}: column {col!r} has {bad.size} empty or non-numeric "
                f"values (first at data row {bad[0] + 1})"
            )
        out[key] = values * factor if factor != 1.0 else values
    return out


def _gridmarl_block(folder: Path, schema: dict) -> dict:
    block = schema.get("gridmarl", {})
    if not isinstance(block, dict):
        raise ScenarioError(f"{folder / 'schema.json'}: key 'gridmarl' must be an object")
    return block


def _step_h(folder: Path, schema: dict) -> tuple[float, str]:
    """(Δt_data [h], where it came from: "schema" or "default")."""
    if "seconds_per_time_step" not in schema:
        return DEFAULT_STEP_S / 3600.0, "default"
    seconds = schema["seconds_per_time_step"]
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or seconds <= 0
        or 3600 % seconds
    ):
        raise ScenarioError(
            f"{folder / 'schema.json'}: seconds_per_time_step {seconds!r}; allowed: "
            "a divisor of 3600"
        )
    return float(seconds) / 3600.0, "schema"


def _fitting_starts(cal: dict, step_h: float) -> tuple[list[pd.Timestamp], int]:
    """Every start (one per fitting year, 2000-2040) the calendar columns allow."""
    month, hour, dtype = (cal[k].astype(int) for k in ("month", "hour", "day_type"))
    firsts = np.flatnonzero((hour == 1) & (np.diff(month, prepend=-1) != 0))
    if firsts.size == 0:
        return [], -1
    i = int(firsts[0])
    rows = np.arange(len(month))
    out = []
    for year in range(INFER_FIRST_YEAR, INFER_LAST_YEAR + 1):
        start = pd.Timestamp(year, month[i], 1) - pd.Timedelta(hours=i)
        t = start + pd.to_timedelta(rows, unit="h")
        ok_month = np.array_equal(t.month.to_numpy(), month)
        ok_hour = np.array_equal(t.hour.to_numpy() + 1, hour)
        weekday = t.day_of_week.to_numpy() + 1
        ok_day = np.all((dtype == 8) | (dtype == weekday))
        if ok_month and ok_hour and ok_day:
            out.append(start)
    return out, i


def _infer_start(path: Path, cal: dict, step_h: float) -> pd.Timestamp:
    """Start of row 0 from the Month / Hour (1-24, hour-ending) / Day Type columns: the first
    fitting year from 2000 on."""
    starts = _infer_starts(path, cal, step_h)
    return starts[0]


def _start_hint(path: Path) -> str:
    return (
        f'; add {{"gridmarl": {{"start_time": "YYYY-MM-DDTHH:MM:SS"}}}} to '
        f"{path.parent / 'schema.json'}"
    )


def _infer_starts(path: Path, cal: dict, step_h: float) -> list[pd.Timestamp]:
    hint = _start_hint(path)
    if step_h != 1.0:
        raise ScenarioError(f"{path}: the start time can only be inferred for hourly data{hint}")
    starts, first = _fitting_starts(cal, step_h)
    if first < 0:
        raise ScenarioError(f"{path}: no month boundary in the data, cannot infer the start{hint}")
    year_rows = int(round(8760 / step_h))
    if not starts and len(cal["month"]) > year_rows:
        # e.g. the 2021 challenge data: one calendar year repeated four times
        starts, _ = _fitting_starts({k: v[:year_rows] for k, v in cal.items()}, step_h)
        if starts:
            log.warning(
                "%s: the Month / Hour / Day Type columns fit no continuous calendar over all "
                "%d rows (a repeated year?); the start is inferred from the first %d rows and "
                "later rows follow it in steps of the time step (their calendar columns are "
                "not used)",
                path,
                len(cal["month"]),
                year_rows,
            )
    if not starts:
        raise ScenarioError(
            f"{path}: the Month / Hour / Day Type columns fit no year from "
            f"{INFER_FIRST_YEAR} to {INFER_LAST_YEAR}{hint}"
        )
    return starts


def dataset_stamp(folder: Path) -> tuple:
    """Names, sizes and modification times of the folder's files (a changed file is reread)."""
    with os.scandir(folder) as it:
        return tuple(
            sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in it if e.is_file())
        )


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content (of the decompressed content for ``.gz``)."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return hashlib.sha256(raw).hexdigest()


def _time_base(folder: Path) -> tuple[pd.Timestamp, float, int]:
    reading, step_h, rows = _reading_cached(folder, dataset_stamp(folder))
    return reading.start, step_h, rows


def dataset_reading(folder: str | Path) -> DatasetReading:
    """How the dataset in ``folder`` is read: start, irradiance and where each came from."""
    path = resolve_dataset_folder(folder)
    return _reading_cached(path, dataset_stamp(path))[0]


@functools.lru_cache(maxsize=16)
def _reading_cached(folder: Path, stamp: tuple) -> tuple[DatasetReading, float, int]:
    """(reading, Δt_data [h], rows H), from the schema, KNOWN_DATASETS or the defaults (module
    docstring); each default logs a warning naming the key to set."""
    schema = _schema(folder)
    files = dataset_files(folder, schema)
    step_h, step_from = _step_h(folder, schema)
    schema_path = folder / "schema.json"
    if step_from == "default":
        log.warning(
            "%s: no seconds_per_time_step; taking the default %d s (set it in the schema)",
            schema_path,
            DEFAULT_STEP_S,
        )
    block = _gridmarl_block(folder, schema)
    known = KNOWN_DATASETS.get(file_sha256(files.weather))
    first = files.buildings[0]
    rows = len(pd.read_csv(first, usecols=[0]))
    if "start_time" in block:
        raw, start_from = block["start_time"], "schema"
    elif known is not None:
        raw, start_from = known.start_time, "known"
    else:
        raw, start_from = None, "default"
    if raw is not None:
        try:
            start = pd.Timestamp(raw)
        except (ValueError, TypeError):
            raise ScenarioError(
                f"{schema_path}: gridmarl.start_time {raw!r} is not an ISO date-time"
            ) from None
    else:
        cal = _read_csv(first, ("month", "hour", "day_type"))
        starts = _infer_starts(first, cal, step_h)
        start = starts[0]
        log.warning(
            "%s: the schema gives no start date; inferred %s from the calendar columns (the "
            "first year from %d that fits; years that fit: %s)%s",
            folder,
            start.isoformat(),
            INFER_FIRST_YEAR,
            ", ".join(str(s.year) for s in starts),
            _start_hint(first),
        )
    if start.tzinfo is not None:
        raise ScenarioError(
            f"{schema_path}: gridmarl.start_time must be local time "
            "without a UTC offset (the offset is community.utc_offset_h)"
        )
    if "horizontal_irradiance" in block:
        kind, kind_from = block["horizontal_irradiance"], "schema"
    elif known is not None:
        kind, kind_from = known.horizontal_irradiance, "known"
    else:
        kind, kind_from = "diffuse", "default"
        log.warning(
            "%s: the schema does not say what the 'Diffuse Solar Radiation' column holds; "
            'reading it as labelled (diffuse); add {"gridmarl": {"horizontal_irradiance": '
            '"global"}} to %s if it holds global horizontal irradiance',
            folder,
            schema_path,
        )
    if kind not in ("diffuse", "global"):
        raise ScenarioError(
            f"{schema_path}: gridmarl.horizontal_irradiance {kind!r}; allowed: diffuse, global"
        )
    if known is not None:
        log.info("%s: recognised as %s (%s)", folder, known.name, known.source)
    reading = DatasetReading(
        start=start,
        start_from=start_from,
        horizontal_irradiance=kind,
        irradiance_from=kind_from,
        step_from=step_from,
        known=known.name if known is not None else None,
    )
    return reading, step_h, rows


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


def has_pricing(folder: str | Path) -> bool:
    """Whether the dataset in ``folder`` has a pricing file (no data read)."""
    path = resolve_dataset_folder(folder)
    return dataset_files(path, _schema(path)).pricing is not None


def load_dataset(folder: str | Path) -> CityLearnData:
    """Parse a CityLearn-format dataset folder (cached by resolved path and file times).

    Raises:
        ScenarioError: a missing file or column, naming the file, the column and what is allowed.
    """
    return load_resolved_dataset(resolve_dataset_folder(folder))


def load_resolved_dataset(folder: Path) -> CityLearnData:
    """:func:`load_dataset` of a folder already passed through :func:`resolve_dataset_folder`."""
    return _load_dataset_cached(folder, dataset_stamp(folder))


def _side_series(path: Path | None, key: str, rows: int) -> np.ndarray | None:
    if path is None:
        return None
    values = _read_csv(path, (key,))[key]
    if len(values) < rows:
        raise ScenarioError(
            f"{path}: {len(values)} rows, expected at least {rows} like the buildings"
        )
    return values[:rows]


@functools.lru_cache(maxsize=4)
def _load_dataset_cached(folder: Path, stamp: tuple) -> CityLearnData:
    schema = _schema(folder)
    files = dataset_files(folder, schema)
    reading, step_h, rows = _reading_cached(folder, stamp)
    loads, solars = [], []
    thermal: dict[str, list[np.ndarray]] = {k: [] for k in THERMAL}
    for path in files.buildings:
        cols = _read_csv(path, ("load", "solar"))
        extra = _read_csv(path, THERMAL, optional=True)
        if len(cols["load"]) != rows:
            raise ScenarioError(
                f"{path}: {len(cols['load'])} rows, expected {rows} like {files.buildings[0].name}"
            )
        loads.append(cols["load"] / step_h)  # [kWh per row] -> mean [kW]
        solars.append(cols["solar"])
        for k in THERMAL:
            thermal[k].append(extra[k] / step_h if k in extra else np.zeros(rows))
    weather = _read_csv(files.weather, ("outdoor_c", "horizontal", "dni"))
    n = len(weather["outdoor_c"])
    if n < rows:
        raise ScenarioError(
            f"{files.weather}: {n} rows, expected at least {rows} like the buildings"
        )
    thermal_kw = {k: np.column_stack(v) for k, v in thermal.items() if np.any(np.column_stack(v))}
    return CityLearnData(
        folder=folder,
        time=pd.date_range(reading.start, periods=rows, freq=pd.Timedelta(hours=step_h)),
        data_step_h=step_h,
        buildings=tuple(_stem(p) for p in files.buildings),
        load_kw=np.column_stack(loads),
        solar_w_per_kw=np.column_stack(solars),
        outdoor_c=weather["outdoor_c"][:rows],
        horizontal_w_m2=weather["horizontal"][:rows],
        dni_w_m2=weather["dni"][:rows],
        price_usd_per_kwh=_side_series(files.pricing, "price", rows),
        horizontal_is_global=reading.horizontal_irradiance == "global",
        carbon_kg_per_kwh=_side_series(files.carbon, "carbon", rows),
        thermal_kw=thermal_kw,
        reading=reading,
    )
