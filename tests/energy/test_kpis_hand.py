"""The energy KPIs on a two-prosumer case computed by hand (no devices, so the community's net
power is known in advance): CO2, ramping, daily peak, load factor, peak import."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gridmarl.energy.env import CommunityEnv
from gridmarl.energy.kpis import KPI_KEYS, community_kpis
from gridmarl.energy.rules import NoControl
from gridmarl.experiment import run_episode
from tests.energy.conftest import make_community

DAYS, PAD = 2, 4


def two_prosumers(carbon: bool = True):
    """Two days at 1 h from Monday 2022-01-10 00:00.  Prosumer 0 loads 2 kW, prosumer 1 1 kW;
    on day 1 each has 4 kW of PV at 10-13 h (G = 3 − 8 = −5 kW); on day 2 prosumer 0 loads
    6 kW at 18-19 h (G = 7 kW).  Carbon intensity 0.2 kg/kWh, 0.5 at 18-19 h."""
    s = DAYS * 24 + PAD
    h = np.arange(s) % 24
    day = np.arange(s) // 24
    load = np.column_stack([np.full(s, 2.0), np.full(s, 1.0)])
    load[(day == 1) & ((h == 18) | (h == 19)), 0] = 6.0
    pv = np.zeros((s, 2))
    pv[(day == 0) & (h >= 10) & (h <= 13)] = 4.0
    ci = np.where((h == 18) | (h == 19), 0.5, 0.2)
    none = np.zeros(2)
    return make_community(
        n=2,
        days=DAYS,
        pad_steps=PAD,
        load_kw=load,
        pv_kw=pv,
        carbon_kg_per_kwh=ci if carbon else None,
        battery_kwh=none,
        battery_kw=none,
        battery_min_kwh=none,
        battery_init_kwh=none,
        has_ev=np.zeros(2, bool),
        ev_kwh=none,
        ev_kw=none,
        ev_target_kwh=none,
        ev_present=np.zeros((s, 2), bool),
        ev_arrival_kwh=np.zeros((s, 2)),
        has_hp=np.zeros(2, bool),
        hp_kw=none,
        transformer_kw=100.0,
    )


def _kpis(c):
    env = CommunityEnv(c, dtype=torch.float64, episode_steps=DAYS * 24, forecast_steps=3)
    records, _ = run_episode(env, NoControl(), seed=0)
    return community_kpis(records, env.community_records(), c.step_h)


def test_new_kpis_agree_with_a_hand_computation():
    k = _kpis(two_prosumers())
    assert list(k) == list(KPI_KEYS)
    # import: day 1 3 kW for 20 h (export at 10-13 h); day 2 3 kW for 22 h and 7 kW for 2 h.
    # CO2: day 1 18 h·3 kW·0.2 + 2 h·3 kW·0.5 = 13.8; day 2 22·3·0.2 + 2·7·0.5 = 20.2 [kg]
    assert k["co2_kg"] == pytest.approx(34.0)
    # ramping: |−5 − 3| at 10 h and |3 − (−5)| at 14 h of day 1, |7 − 3| twice on day 2
    assert k["ramping_kw"] == pytest.approx(24.0)
    # daily peaks 3 and 7 kW
    assert k["daily_peak_kw"] == pytest.approx(5.0)
    assert k["peak_import_kw"] == pytest.approx(7.0)
    # load factor: day 1 (60 / 24) / 3 = 0.8333; day 2 (80 / 24) / 7 = 0.4762; mean 0.6548
    assert k["load_factor"] == pytest.approx((60 / 24 / 3 + 80 / 24 / 7) / 2)
    # self-sufficiency: consumption 3·48 + 8 = 152 kWh, import 60 + 80 = 140 kWh
    assert k["self_sufficiency_pct"] == pytest.approx(100 * (1 - 140 / 152))


def test_co2_is_nan_without_carbon_data():
    k = _kpis(two_prosumers(carbon=False))
    assert np.isnan(k["co2_kg"]) and k["ramping_kw"] == pytest.approx(24.0)
