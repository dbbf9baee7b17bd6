"""Hand-made energy communities for the energy tests (no data files needed).

``make_community`` builds a small, deterministic, realistic-looking community: a household load
with morning and evening peaks, PV on a clear-sky bell, a three-level time-of-use tariff, a cold
outdoor temperature, EVs home from 18:00 to 07:00.  Prosumer ``n`` owns devices by ``n % 4``:
0 → battery + EV + heat pump, 1 → battery + EV, 2 → battery + heat pump, 3 → nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gridmarl.energy.community import Community

OFF_PEAK, SHOULDER, PEAK = 0.12, 0.22, 0.40  # [$/kWh]


def tou_price(hours: np.ndarray) -> np.ndarray:
    """Three-level tariff [$/kWh]: off-peak 22–7 h, peak 16–21 h, shoulder otherwise."""
    price = np.full(hours.shape, SHOULDER)
    price[(hours >= 22) | (hours < 7)] = OFF_PEAK
    price[(hours >= 16) & (hours < 21)] = PEAK
    return price


def make_community(
    n: int = 4,
    days: int = 2,
    step_h: float = 1.0,
    seed: int = 0,
    pad_steps: int = 4,
    transformer_kw: float | None = None,
    peak_usd_per_kw: float = 0.2,
    hp_modes: int = 3,
    **overrides: object,
) -> Community:
    """A community of ``n`` prosumers over ``days`` days plus ``pad_steps`` look-ahead steps.

    ``overrides`` replace any ``Community`` field (e.g. ``battery_init_kwh=...``).
    """
    rng = np.random.default_rng(seed)
    s = int(round(days * 24 / step_h)) + pad_steps
    time = pd.date_range("2022-01-10", periods=s, freq=pd.Timedelta(hours=step_h))
    h = np.asarray(time.hour + time.minute / 60.0, float)
    kind = np.arange(n) % 4
    has_batt = kind <= 2
    has_ev = kind <= 1
    has_hp = (kind == 0) | (kind == 2)

    morning = np.exp(-(((h - 8.0) / 1.5) ** 2))
    evening = np.exp(-(((h - 19.0) / 2.0) ** 2))
    shape = 0.35 + 0.6 * morning + 1.1 * evening
    load = shape[:, None] * rng.uniform(0.8, 1.2, n)[None, :] * rng.uniform(0.9, 1.1, (s, n))
    sun = np.clip(np.sin(np.pi * (h - 6.0) / 12.0), 0.0, None)
    cloud = rng.uniform(0.6, 1.0, (s // max(1, int(24 / step_h)) + 1))[
        (np.arange(s) * step_h // 24).astype(int)
    ]
    kwp = rng.uniform(3.0, 6.0, n)
    pv = 0.8 * sun[:, None] * cloud[:, None] * kwp[None, :]
    outdoor = 6.0 + 5.0 * np.sin(2 * np.pi * (h - 9.0) / 24.0)
    cop = np.repeat((3.5 + 0.05 * (outdoor - 7.0))[:, None], n, axis=1)

    present = ((h >= 18.0) | (h < 7.0))[:, None] & has_ev[None, :]
    ev_cap = np.where(has_ev, 50.0, 0.0)
    arrive = present.copy()
    arrive[1:] &= ~present[:-1]
    stay = np.cumsum(arrive, axis=0)
    arr_soc = rng.uniform(0.2, 0.5, (s + 1, n))
    arr_kwh = np.where(present, np.take_along_axis(arr_soc, stay, axis=0) * ev_cap, 0.0)

    fields: dict[str, object] = dict(
        step_h=step_h,
        time=time,
        load_kw=load,
        pv_kw=pv,
        price_usd_per_kwh=tou_price(h),
        outdoor_c=outdoor,
        cop=cop,
        ev_present=present,
        ev_arrival_kwh=arr_kwh,
        battery_kwh=np.where(has_batt, 10.0, 0.0),
        battery_kw=np.where(has_batt, 4.0, 0.0),
        battery_min_kwh=np.where(has_batt, 1.0, 0.0),
        battery_init_kwh=np.where(has_batt, 5.0, 0.0),
        eta_charge=0.95,
        eta_discharge=0.95,
        degradation_usd_per_kwh=0.01,
        has_ev=has_ev,
        ev_kwh=ev_cap,
        ev_kw=np.where(has_ev, 7.0, 0.0),
        ev_target_kwh=np.where(has_ev, 40.0, 0.0),
        ev_eta=0.92,
        unmet_usd_per_kwh=0.6,
        has_hp=has_hp,
        hp_kw=np.where(has_hp, 2.5, 0.0),
        hp_modes=hp_modes,
        r_c_per_kw=np.where(has_hp, 6.0, 0.0),
        c_kwh_per_c=np.where(has_hp, 4.5, 0.0),
        theta_lo_c=np.full(n, 20.0),
        theta_hi_c=np.full(n, 23.0),
        theta_init_c=np.full(n, 21.0),
        comfort_usd_per_c_h=0.5,
        feed_in_usd_per_kwh=0.05,
        transformer_kw=float(transformer_kw if transformer_kw is not None else 4.0 * n),
        over_limit_usd_per_kwh=1.0,
        peak_usd_per_kw=peak_usd_per_kw,
        names=tuple(f"home_{i}" for i in range(n)),
        sources=tuple("synthetic" for _ in range(n)),
    )
    fields.update(overrides)
    return Community(**fields)  # type: ignore[arg-type]


@pytest.fixture
def community() -> Community:
    """Four prosumers (one of each device class), two days at 1 h, +4 look-ahead steps."""
    return make_community()


@pytest.fixture
def community_quarter() -> Community:
    """Eight prosumers, one day at 15 min."""
    return make_community(n=8, days=1, step_h=0.25, seed=1, pad_steps=16)
