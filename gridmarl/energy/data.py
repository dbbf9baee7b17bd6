"""The community of an energy scenario: ``build_community`` samples prosumers and their devices.

Datasets are read by :mod:`gridmarl.energy.citylearn` (format, time base, irradiance columns);
PV output and heat-pump COP come from :mod:`gridmarl.energy.pv`.  This module resamples the
dataset to the window's step and draws the community.

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
* Price = dataset import tariff (or ``market.tariff`` when set; required for a dataset without
  a pricing file) × ``market.price_scale``; carbon intensity = the dataset's (None without a
  carbon file); the dataset's thermal demand columns are ignored (a warning names them);
  feed-in, transformer limit, over-limit and peak charges from ``community.market``.

Span: the window's days (``train`` / ``validate`` / ``evaluate``) from 00:00 of the first day,
plus ``extra_steps`` look-ahead steps (default ``ceil(horizon_h / step_h) + 1``); where the
data end, the last step is repeated.  Results are in the units of ``Community``.
"""

from __future__ import annotations

import functools
import logging
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from gridmarl.core.errors import ScenarioError
from gridmarl.energy.citylearn import (
    CityLearnData,
    dataset_span,
    dataset_stamp,
    load_resolved_dataset,
    resolve_dataset_folder,
)
from gridmarl.energy.community import Community
from gridmarl.energy.feeders import scenario_graph
from gridmarl.energy.pv import heat_pump_cop, pv_ac_per_kwp

if TYPE_CHECKING:
    from gridmarl.energy.config import TariffConfig

log = logging.getLogger(__name__)

_STREAMS = {"building": 1, "load_scale": 2, "pv": 3, "battery": 4, "ev": 5, "ev_soc": 6, "hp": 7}
Span = Literal["train", "validate", "evaluate"]


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
    data = load_resolved_dataset(folder)
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


def tariff_price(tariff: TariffConfig, time: pd.DatetimeIndex) -> np.ndarray:
    """``[S]`` import price [$/kWh] of a ``TariffConfig`` at each step start (local time)."""
    h = ((time - time.normalize()) / pd.Timedelta(hours=1)).to_numpy()
    lo, hi = tariff.peak_hours
    peak = (h >= lo) & (h < hi)
    if tariff.peak_days == "weekdays":
        peak &= time.day_of_week.to_numpy() < 5
    high = tariff.peak_usd_per_kwh
    high = tariff.off_peak_usd_per_kwh if high is None else high
    return np.where(peak, high, tariff.off_peak_usd_per_kwh)


def _import_price(
    scenario: Any,
    data: CityLearnData,
    folder: Path,
    time: pd.DatetimeIndex,
    rows: np.ndarray,
    pad: np.ndarray,
) -> np.ndarray:
    """The dataset's tariff, or ``community.market.tariff`` (which replaces it when set)."""
    tariff = scenario.community.market.tariff
    if tariff is not None:
        return tariff_price(tariff, time)
    if data.price_usd_per_kwh is None:
        raise ScenarioError(
            f"{folder}: the dataset has no pricing file (pricing.csv); set "
            "community.market.tariff (e.g. {off_peak_usd_per_kwh: 0.21, peak_usd_per_kwh: "
            "0.5, peak_hours: [16, 21]})"
        )
    return data.price_usd_per_kwh[rows][pad]


_THERMAL_NAMES = {"dhw": "DHW Heating", "cooling": "Cooling Load", "heating": "Heating Load"}


def _warn_thermal(data: CityLearnData, rows: np.ndarray, folder: Path) -> None:
    """Log the thermal demand columns the model ignores (non-zero in the window only)."""
    ignored = []
    for kind, kw in data.thermal_kw.items():
        kwh = float(kw[np.unique(rows)].sum() * data.data_step_h)
        if kwh > 0:
            ignored.append(f"{_THERMAL_NAMES[kind]} {kwh:.0f} kWh")
    if ignored:
        log.warning(
            "%s: thermal demand columns ignored by the model (all buildings, the window's "
            "rows; thermal kWh): %s; the load is the 'Equipment Electric Power' column and the "
            "heat pumps are the scenario's (community.heat_pump)",
            folder,
            ", ".join(ignored),
        )


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

    folder = resolve_dataset_folder(scenario.dataset_dir())
    data = load_resolved_dataset(folder)
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
        dataset_stamp(folder),
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
    price = _import_price(scenario, data, folder, time, rows, pad) * cfg.market.price_scale
    carbon = None if data.carbon_kg_per_kwh is None else data.carbon_kg_per_kwh[rows][pad]
    _warn_thermal(data, rows, folder)
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
        carbon_kg_per_kwh=carbon,
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
        congestion_signal=cfg.congestion_signal,
        ev_rate_feature=ev.rate_feature,
        ev_action_prior=ev.action_prior,
        ev_deadline_guard=ev.deadline_guard,
        names=tuple(f"prosumer_{i:0{width}d}" for i in range(n)),
        sources=tuple(data.buildings[j] for j in building),
        feeder=feeder,
        feeder_reach=reach,
        graph_groups=groups,
        graph_neighbors=neighbors,
    )
