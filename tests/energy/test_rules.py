"""NoControl and RuleBased do what their docstrings say, on hand-made cases."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from gridmarl.core.types import Action, Observation
from gridmarl.energy.community import Community
from gridmarl.energy.env import CommunityEnv
from gridmarl.energy.kpis import community_kpis
from gridmarl.energy.rules import NoControl, RuleBased

from .conftest import OFF_PEAK, make_community

T64 = torch.float64
F = CommunityEnv.F


def with_features(obs: Observation, **values: list[float]) -> Observation:
    """``obs`` with local features (by name) of env 0 set per prosumer."""
    local = obs.local.clone()
    for name, v in values.items():
        local[0, :, F[name]] = torch.as_tensor(v, dtype=local.dtype)
    return replace(obs, local=local)


def theta_scaled(c: float) -> float:
    return (c - CommunityEnv.THETA_REF_C) / CommunityEnv.THETA_SCALE_C


def run(env: CommunityEnv, ctl) -> tuple:
    obs = env.reset(seed=0)
    done = False
    while not done:
        step = env.step(ctl.act(obs))
        obs, done = step.obs, bool(step.done.all())
    return env.records(), env.community_records()


def test_no_control_actions_by_hand(community: Community) -> None:
    env = CommunityEnv(community, dtype=T64)
    # prosumers 0 and 2 own heat pumps; band [20, 23]
    obs = with_features(env.reset(), theta=[theta_scaled(v) for v in (20.3, 20.3, 21.0, 22.0)])
    act = NoControl().act(obs)
    assert act.discrete[0].tolist() == [2, 0, 1, 0]
    obs = with_features(obs, theta=[theta_scaled(v) for v in (21.6, 19.0, 19.0, 19.0)])
    assert NoControl().act(obs).discrete[0].tolist() == [0, 0, 2, 0]
    assert act.continuous[0, :, 0].tolist() == [0.0] * 4
    assert act.continuous[0, :, 1].tolist() == [1.0] * 4


def test_no_control_rollout(community: Community) -> None:
    env = CommunityEnv(community, dtype=T64)
    rec, _ = run(env, NoControl())
    bat = rec[rec.prosumer.isin(["home_0", "home_1", "home_2"])]
    assert np.allclose(bat["soc_kwh"], 5.0) and np.allclose(bat["battery_kw"], 0.0)
    # EVs charge at full charger power on arrival (18:00) until the battery is full
    ev = rec[rec.prosumer.isin(["home_0", "home_1"])]
    arrival = ev[ev.time.dt.hour == 18]
    assert np.allclose(arrival["ev_kw"], 7.0)
    full = ev[ev.ev_present & (ev.ev_kwh < 50.0 - 1e-9)]
    assert np.allclose(full["ev_kw"], 7.0) and ev["ev_unmet_kwh"].sum() == 0.0
    # the thermostat keeps the heat-pump homes above the band's lower edge
    hp = rec[rec.prosumer.isin(["home_0", "home_2"])]
    assert hp["theta_c"].min() >= 20.0 and hp["comfort_c_h"].sum() == 0.0


def test_rule_based_battery_follows_the_residual(community: Community) -> None:
    env = CommunityEnv(community, dtype=T64)
    obs = env.reset()
    env_t = 12  # step to 12:00 (shoulder tariff, sun up)
    for _ in range(env_t):
        obs = env.step(Action.zeros(env.spec, 1, dtype=T64)).obs
    obs = with_features(obs, theta=[theta_scaled(22.0)] * 4)  # heat pumps off
    act = RuleBased().act(obs)
    s = env_t
    resid = community.load_kw[s] - community.pv_kw[s]
    expect = np.clip(-resid / 4.0, -1, 1)
    expect[3] = 0.0  # no battery
    assert community.price_usd_per_kwh[s] > OFF_PEAK
    np.testing.assert_allclose(act.continuous[0, :, 0].numpy(), expect)
    assert act.discrete[0].tolist() == [0, 0, 0, 0]
    # a deficit in a cheap hour is not covered from the battery
    cheap = with_features(obs, price_level=[0.0] * 4, pv=[0.0] * 4, load=[0.2] * 4)
    assert RuleBased().act(cheap).continuous[0, :3, 0].tolist() == [0.0] * 3


def test_rule_based_ev_cheap_hours_and_deadline(community: Community) -> None:
    env = CommunityEnv(community, dtype=T64)
    obs = env.reset()  # 00:00: off-peak, EVs home
    ctl = RuleBased()
    hs = CommunityEnv.HOURS_SCALE_H
    act = ctl.act(obs)
    # off-peak: the average rate that meets the target by departure, need / (left - slack)
    loc = obs.local[0]
    need = loc[:, CommunityEnv.F["ev_need_hours"]] * hs
    left = loc[:, CommunityEnv.F["ev_hours_left"]] * hs
    share = (need / (left - 1.0).clamp_min(1.0)).clamp(0.0, 1.0)
    share[2:] = 0.0  # prosumers 2, 3 have no EV at home
    assert 0.0 < share[0] < 1.0
    np.testing.assert_allclose(act.continuous[0, :, 1].numpy(), (2 * share - 1).numpy())
    # expensive hour, 6 h left, 2 h of charging needed -> wait; 5.5 h needed -> charge now
    obs = with_features(
        obs,
        price_level=[1.0] * 4,
        ev_hours_left=[6 / hs] * 4,
        ev_need_hours=[2 / hs, 5.5 / hs, 0.0, 0.0],
    )
    assert ctl.act(obs).continuous[0, :, 1].tolist() == [-1.0, 1.0, -1.0, -1.0]
    # the battery covers the planned EV and heat-pump power too: residual of prosumer 1
    u_b = ctl.act(with_features(obs, load=[0.0] * 4, pv=[20.0 / 5] * 4)).continuous[0, 1, 0]
    assert u_b.item() == pytest.approx(min(1.0, (20.0 - 7.0) / 4.0))


def test_rule_based_beats_no_control() -> None:
    c = make_community(n=8, days=3, seed=2)
    k = {}
    for ctl in (NoControl(), RuleBased()):
        rec, crec = run(CommunityEnv(c, dtype=T64), ctl)
        k[ctl.name] = community_kpis(rec, crec, c.step_h)
    nc, rb = k["no_control"], k["rule_based"]
    assert rb["cost_usd"] < 0.7 * nc["cost_usd"]
    assert rb["grid_cost_usd"] < nc["grid_cost_usd"]
    assert rb["self_sufficiency_pct"] > nc["self_sufficiency_pct"]
    assert rb["ev_unmet_kwh"] == 0.0 and rb["comfort_violation_c_h"] == 0.0
