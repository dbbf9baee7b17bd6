"""The energy-community MILP (``baselines_opt.community``): a hand-solved optimum, solver
statuses, replay consistency with ``CommunityEnv`` and optimality against simple schedules.

Model equations: the docstring of :mod:`gridmarl.energy.community` (items 1 to 8).
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from baselines_opt.community import (
    CommunityMilpResult,
    schedule_cost,
    solve_community_milp,
)
from baselines_opt.solve import SolverError
from gridmarl.energy.community import Community


def make_community(load: np.ndarray, pv: np.ndarray, price: np.ndarray, **kw: Any) -> Community:
    """A community from ``load [S, N]``, ``pv [S, N]``, ``price [S]``; devices via ``kw``.

    Defaults: no battery, no EV, no heat pump, Δt = 1 h, feed-in 0.05 $/kWh, no transformer
    or peak charge.
    """
    load = np.asarray(load, float)
    S, N = load.shape
    z = np.zeros(N)
    base: dict[str, Any] = dict(
        step_h=1.0,
        time=pd.date_range("2017-01-16", periods=S, freq="h"),
        load_kw=load,
        pv_kw=np.asarray(pv, float),
        price_usd_per_kwh=np.asarray(price, float),
        outdoor_c=np.full(S, 5.0),
        cop=np.full((S, N), 3.0),
        ev_present=np.zeros((S, N), bool),
        ev_arrival_kwh=np.zeros((S, N)),
        battery_kwh=z.copy(),
        battery_kw=z.copy(),
        battery_min_kwh=z.copy(),
        battery_init_kwh=z.copy(),
        eta_charge=1.0,
        eta_discharge=1.0,
        degradation_usd_per_kwh=0.0,
        has_ev=np.zeros(N, bool),
        ev_kwh=z.copy(),
        ev_kw=z.copy(),
        ev_target_kwh=z.copy(),
        ev_eta=1.0,
        unmet_usd_per_kwh=0.6,
        has_hp=np.zeros(N, bool),
        hp_kw=z.copy(),
        hp_modes=3,
        r_c_per_kw=z.copy(),
        c_kwh_per_c=z.copy(),
        theta_lo_c=np.full(N, 20.0),
        theta_hi_c=np.full(N, 23.0),
        theta_init_c=np.full(N, 21.0),
        comfort_usd_per_c_h=0.5,
        feed_in_usd_per_kwh=0.05,
        transformer_kw=1e3,
        over_limit_usd_per_kwh=1.0,
        peak_usd_per_kw=0.0,
        names=tuple(f"p{i}" for i in range(N)),
        sources=tuple("synthetic" for _ in range(N)),
    )
    base.update(kw)
    return Community(**base)


def two_prosumer_case() -> Community:
    """Two prosumers, three steps (+ one look-ahead step), Δt = 1 h.

    Prosumer 0 has PV (4 kW at step 0) and a battery (10 kWh, 5 kW, empty, lossless,
    c_deg = 0.01 $/kWh); prosumer 1 only loads (0, 1, 6 kW).  Import price 0.10, 0.12,
    0.40 $/kWh; feed-in 0.05 $/kWh (below the mid-market rate).
    """
    load = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 6.0], [0.0, 0.0]])
    pv = np.array([[4.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    return make_community(
        load,
        pv,
        np.array([0.10, 0.12, 0.40, 0.10]),
        battery_kwh=np.array([10.0, 0.0]),
        battery_kw=np.array([5.0, 0.0]),
        battery_min_kwh=np.zeros(2),
        battery_init_kwh=np.zeros(2),
        degradation_usd_per_kwh=0.01,
    )


def test_two_prosumer_hand_solved_optimum() -> None:
    """Hand-solved: charge 5 kW at step 0, idle at step 1, discharge 5 kW at step 2; 0.72 $.

    Every kWh discharged at step 2 saves π_2 = 0.40 $ and costs 2 · c_deg = 0.02 $ of wear.
    The first 4 kWh come from the PV surplus at step 0 (forgoing feed-in 0.05 $/kWh): gain
    0.33 $/kWh.  The discharge power limits step 2 to 5 kWh, so 1 kWh more is bought from the
    grid at the cheapest earlier price, 0.10 $ at step 0 (step 1 costs 0.12 $): gain 0.28 $.
    Charging 5 kW at step 0 is exactly the power limit, so nothing serves step 1 from storage.

    Grid: G_0 = −4 + 5 = 1, G_1 = 1, G_2 = 6 − 5 = 1 kW.
    Cost = 0.10·1 + 0.01·5 (step 0) + 0.12·1 (step 1) + 0.40·1 + 0.01·5 (step 2) = 0.72 $,
    against 2.32 $ without the battery (−0.20 + 0.12 + 2.40): savings 1.60 = 4·0.33 + 0.28.
    """
    c = two_prosumer_case()
    res = solve_community_milp(c, start=0, steps=3, time_limit_s=10, mip_gap=0.0)
    assert res.status == "optimal"
    assert res.objective_usd == pytest.approx(0.72, abs=1e-9)
    assert res.bound_usd == pytest.approx(0.72, abs=1e-6)
    np.testing.assert_allclose(res.battery_kw[:, 0], [5.0, 0.0, -5.0], atol=1e-9)
    np.testing.assert_allclose(res.continuous[:, 0, 0], [1.0, 0.0, -1.0], atol=1e-9)
    np.testing.assert_allclose(res.grid_kw, [1.0, 1.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(res.battery_kwh[:, 0], [5.0, 5.0, 0.0], atol=1e-9)
    np.testing.assert_array_equal(res.continuous[:, :, 1], -1.0)  # no EV: u_ev = −1
    idle = schedule_cost(
        c, np.zeros((3, 2), np.int64), np.stack([np.zeros((3, 2)), -np.ones((3, 2))], axis=-1)
    )
    assert idle["cost_usd"].sum() == pytest.approx(2.32, abs=1e-12)


def rich_community() -> Community:
    """Four prosumers, 8 episode steps + 2 look-ahead steps, every device and every coupling.

    * p0: battery (lossy, e_min > 0), PV, heat pump.
    * p1: EV present at steps 0–3 (a stay that starts at the episode's first step; departs
      after step 3 short of its target) and 6–7 (departs after step 7, the episode's last
      step, judged on the look-ahead step 8).
    * p2: battery and heat pump; p3: EV (home 2–9, no departure inside the span's episode)
      and heat pump.
    * Transformer limit 9 kW with c_over = 1 $/kWh (binding in the evening), peak charge
      0.5 $/kW, feed-in 0.05 $/kWh, import price 0.10–0.45 $/kWh.
    """
    S, N = 10, 4
    hour = np.arange(S)
    load = np.array([[0.5, 0.8, 0.6, 0.7]] * S) + np.array([0, 0, 0.5, 1, 2, 3, 3.5, 2.5, 1, 0.5])[
        :, None
    ] * np.array([1.0, 0.8, 1.2, 0.9])
    pv = np.zeros((S, N))
    pv[1:4, 0] = [3.0, 6.0, 4.0]
    pv[2:4, 2] = [2.0, 3.0]
    price = np.array([0.10, 0.12, 0.15, 0.20, 0.30, 0.45, 0.45, 0.30, 0.15, 0.10])
    present = np.zeros((S, N), bool)
    present[0:4, 1] = True
    present[6:8, 1] = True
    present[2:10, 3] = True
    arrival = np.zeros((S, N))
    arrival[0:4, 1] = 10.0
    arrival[6:8, 1] = 20.0
    arrival[2:10, 3] = 12.0
    return make_community(
        load,
        pv,
        price,
        outdoor_c=2.0 + 0.5 * hour,
        cop=np.full((S, N), 3.0) + 0.02 * hour[:, None],
        battery_kwh=np.array([8.0, 0.0, 6.0, 0.0]),
        battery_kw=np.array([4.0, 0.0, 3.0, 0.0]),
        battery_min_kwh=np.array([1.0, 0.0, 0.6, 0.0]),
        battery_init_kwh=np.array([4.0, 0.0, 3.0, 0.0]),
        eta_charge=0.95,
        eta_discharge=0.9,
        degradation_usd_per_kwh=0.01,
        ev_present=present,
        ev_arrival_kwh=arrival,
        has_ev=np.array([False, True, False, True]),
        ev_kwh=np.array([0.0, 40.0, 0.0, 50.0]),
        ev_kw=np.array([0.0, 3.7, 0.0, 7.4]),
        ev_target_kwh=np.array([0.0, 30.0, 0.0, 40.0]),
        ev_eta=0.92,
        unmet_usd_per_kwh=0.6,
        has_hp=np.array([True, False, True, True]),
        hp_kw=np.array([3.0, 0.0, 2.0, 2.5]),
        r_c_per_kw=np.array([5.0, 0.0, 6.0, 4.0]),
        c_kwh_per_c=np.array([4.0, 0.0, 3.0, 5.0]),
        theta_lo_c=np.full(N, 20.0),
        theta_hi_c=np.full(N, 22.0),
        theta_init_c=np.array([20.5, 21.0, 21.5, 20.2]),
        transformer_kw=9.0,
        over_limit_usd_per_kwh=1.0,
        peak_usd_per_kw=0.5,
    )


EPISODE = 8  # rich_community(): 10 span steps − forecast_steps 1 − 1


def test_schedule_accounting_matches_objective() -> None:
    """The numpy accounting of the schedule (community.py items 1–8) equals the objective."""
    c = rich_community()
    res = solve_community_milp(c, start=0, steps=EPISODE, time_limit_s=20, mip_gap=0.0)
    acc = schedule_cost(c, res.discrete, res.continuous)
    assert acc["cost_usd"].sum() == pytest.approx(res.objective_usd, rel=1e-9, abs=1e-9)
    assert acc["clipped_kw"].max() < 1e-7  # the schedule never needs projecting
    # the instance exercises every coupling
    assert acc["unmet_usd"][3] > 0 and acc["peak_usd"].sum() > 0
    assert np.max(np.abs(res.grid_kw)) >= c.transformer_kw - 1e-6
    assert res.discrete[:, 1].max() == 0 and res.discrete[:, [0, 2, 3]].max() > 0
    assert np.isnan(res.ev_kwh[4, 1]) and res.ev_kwh[0, 1] >= 10.0


env_missing = importlib.util.find_spec("gridmarl.energy.env") is None


def _env_cost(c: Community, controller: Any, steps: int = EPISODE) -> float:
    """Community cost [$] of one episode of ``controller`` in ``CommunityEnv`` (float64)."""
    import torch

    from gridmarl.energy.env import CommunityEnv
    from gridmarl.experiment import run_episode

    env = CommunityEnv(
        c,
        num_envs=1,
        device="cpu",
        dtype=torch.float64,
        episode_steps=steps,
        forecast_steps=c.steps - steps - 1,
        random_start=False,
        seed=0,
    )
    records, _ = run_episode(env, controller, seed=0)
    assert len(records) == steps * c.n
    return float(env.community_records()["cost_usd"].sum())


@pytest.mark.skipif(env_missing, reason="gridmarl.energy.env not available")
def test_milp_schedule_replayed_in_env_reproduces_objective() -> None:
    """Consistency (DESIGN §4): ScheduleController replay in CommunityEnv = MILP objective."""
    c = rich_community()
    res = solve_community_milp(c, start=0, steps=EPISODE, time_limit_s=20, mip_gap=0.0)
    cost = _env_cost(c, res.to_controller())
    assert abs(cost - res.objective_usd) <= 1e-6 * abs(res.objective_usd)


@pytest.mark.skipif(env_missing, reason="gridmarl.energy.env not available")
def test_milp_beats_simple_schedules_in_env() -> None:
    """Optimality: the MILP's env cost is <= all-idle, full-charge and random schedules."""
    from gridmarl.core.controller import ScheduleController

    c = rich_community()
    res = solve_community_milp(c, start=0, steps=EPISODE, time_limit_s=20, mip_gap=0.0)
    milp = _env_cost(c, res.to_controller())
    rng = np.random.default_rng(0)
    shape = (EPISODE, c.n)
    idle = (np.zeros(shape, np.int64), np.stack([np.zeros(shape), -np.ones(shape)], -1))
    busy = (np.full(shape, 2), np.stack([np.zeros(shape), np.ones(shape)], -1))
    rand = [(rng.integers(0, 3, shape), rng.uniform(-1, 1, shape + (2,))) for _ in range(3)]
    for i, (d, u) in enumerate([idle, busy, *rand]):
        import torch

        other = _env_cost(c, ScheduleController(f"s{i}", torch.from_numpy(d), torch.from_numpy(u)))
        assert milp <= other + 1e-9, f"schedule {i}: MILP {milp} > {other}"


def test_slacks_keep_impossible_targets_feasible() -> None:
    """Unreachable EV target, unreachable comfort band, a transformer limit below the base
    load: the model still solves, and the slacks carry the penalties."""
    c = rich_community()
    c = replace(
        c,
        ev_target_kwh=np.array([0.0, 40.0, 0.0, 50.0]),
        transformer_kw=0.5,
        theta_lo_c=np.array([35.0, 20.0, 20.0, 20.0]),
        theta_hi_c=np.array([40.0, 22.0, 22.0, 22.0]),
        ev_arrival_kwh=np.where(c.ev_present, 5.0, 0.0),
    )
    res = solve_community_milp(c, start=0, steps=EPISODE, time_limit_s=20, mip_gap=1e-6)
    assert res.status == "optimal" and math.isfinite(res.objective_usd)
    acc = schedule_cost(c, res.discrete, res.continuous)
    assert acc["cost_usd"].sum() == pytest.approx(res.objective_usd, rel=1e-7)
    assert acc["unmet_usd"].sum() > 0 and acc["comfort_usd"].sum() > 0
    assert acc["over_usd"].sum() > 0


def _hard_community(n: int = 30, steps: int = 48, seed: int = 1) -> Community:
    """Many heat pumps with a narrow comfort band and a time-of-use tariff: many integers."""
    rng = np.random.default_rng(seed)
    S = steps + 2
    hour = np.arange(S) % 24
    load = 0.5 + 0.8 * np.exp(-((hour - 19) ** 2) / 4.0)[:, None] * rng.uniform(0.5, 1.5, n)
    pv = np.clip(np.sin(np.pi * (hour - 7) / 10), 0, None)[:, None] * rng.uniform(2, 5, n)
    price = np.where((hour >= 16) & (hour < 21), 0.45, 0.2)
    cap = rng.uniform(5, 12, n)
    return make_community(
        load,
        pv,
        price,
        outdoor_c=4 + 4 * np.sin(2 * np.pi * hour / 24),
        battery_kwh=cap,
        battery_kw=rng.uniform(3, 5, n),
        battery_min_kwh=0.1 * cap,
        battery_init_kwh=0.5 * cap,
        eta_charge=0.95,
        eta_discharge=0.95,
        degradation_usd_per_kwh=0.01,
        has_hp=np.ones(n, bool),
        hp_kw=rng.uniform(1.5, 3, n),
        hp_modes=4,
        r_c_per_kw=rng.uniform(4, 8, n),
        c_kwh_per_c=rng.uniform(3, 6, n),
        theta_lo_c=np.full(n, 20.5),
        theta_hi_c=np.full(n, 21.5),
        theta_init_c=np.full(n, 21.0),
        transformer_kw=0.6 * n,
        peak_usd_per_kw=0.2,
    )


def test_time_limit_is_reported_not_raised() -> None:
    """A hard instance with a tiny time limit and a zero gap: a usable incumbent comes back
    with ``status == "time_limit"``, a finite bound below it and a positive gap; or, if HiGHS
    found nothing in time, a SolverError that says so (never another exception)."""
    c = _hard_community()
    try:
        res = solve_community_milp(c, start=0, steps=48, time_limit_s=1.0, mip_gap=0.0)
    except SolverError as err:
        assert err.status == "time_limit" and "time limit" in str(err)
        return
    assert isinstance(res, CommunityMilpResult)
    assert res.status == "time_limit"
    assert math.isfinite(res.bound_usd) and res.bound_usd <= res.objective_usd + 1e-9
    assert 0 < res.gap < math.inf
    assert res.discrete.shape == (48, c.n) and res.continuous.shape == (48, c.n, 2)
    acc = schedule_cost(c, res.discrete, res.continuous)
    assert acc["cost_usd"].sum() == pytest.approx(res.objective_usd, rel=1e-6)


def test_bad_inputs_raise_clear_errors() -> None:
    c = two_prosumer_case()
    with pytest.raises(ValueError, match="do not lie in the community span"):
        solve_community_milp(c, start=2, steps=5)
    with pytest.raises(ValueError, match="battery_kwh"):
        solve_community_milp(c, steps=3, initial_state={"battery_kwh": np.array([11.0, 0.0])})


@pytest.mark.skipif(env_missing, reason="gridmarl.energy.env not available")
def test_mpc_with_perfect_forecast_and_full_horizon_reaches_the_milp_optimum(capfd) -> None:
    """Closed-loop MPC over the whole remaining episode with perfect forecasts and exact
    integers re-solves the same problem from the states it reaches (principle of optimality):
    its env cost equals the MILP optimum.  With the relaxed tail it can only cost more.  And
    it prints nothing: HiGHS used to warn on the console for every coefficient an update set
    to 0."""
    from baselines_opt.community import MPCController

    c = rich_community()
    res = solve_community_milp(c, start=0, steps=EPISODE, time_limit_s=20, mip_gap=0.0)
    exact = MPCController(
        horizon_h=EPISODE, forecast="perfect", mip_gap=0.0, time_limit_s=20, relax_tail=False
    )
    cost = _env_cost(c, exact)
    assert exact.stats["solves"] == EPISODE and exact.stats["fallbacks"] == 0
    assert cost == pytest.approx(res.objective_usd, rel=1e-6)
    fast = MPCController(horizon_h=4, mip_gap=0.0, time_limit_s=20, replan_every=2)
    assert _env_cost(c, fast) >= res.objective_usd - 1e-9
    assert fast.stats["solves"] == EPISODE // 2
    out, err = capfd.readouterr()
    assert "changeCoeff" not in out + err and "WARNING" not in out + err


@pytest.mark.skipif(env_missing, reason="gridmarl.energy.env not available")
def test_mpc_rejects_batched_envs() -> None:
    import torch

    from baselines_opt.community import MPCController
    from gridmarl.energy.env import CommunityEnv

    env = CommunityEnv(
        rich_community(), num_envs=2, dtype=torch.float64, episode_steps=EPISODE, forecast_steps=1
    )
    with pytest.raises(ValueError, match="B = 1"):
        MPCController().reset(env)


def _burn_case(price_1: float = 0.30) -> Community:
    """One prosumer, a full lossy battery (η_c = η_d = 0.8) and 10 kW of PV against a 2 kW
    transformer limit on steps 0 and 1: charging and discharging at once would burn
    1 − η_c η_d of the throughput and save c_over = 1 $/kWh of excess export, but the env's
    single battery setpoint cannot do that."""
    load = np.array([[0.0], [0.0], [0.0]])
    pv = np.array([[10.0], [10.0], [0.0]])
    return make_community(
        load,
        pv,
        np.array([0.30, price_1, 0.30]),
        battery_kwh=np.array([10.0]),
        battery_kw=np.array([5.0]),
        battery_min_kwh=np.array([0.0]),
        battery_init_kwh=np.array([10.0]),
        eta_charge=0.8,
        eta_discharge=0.8,
        degradation_usd_per_kwh=0.01,
        transformer_kw=2.0,
    )


def test_lazy_battery_binaries_keep_the_schedule_exclusive() -> None:
    """The battery exclusivity binaries start relaxed and are added where a solution charges
    and discharges at once.  Here the relaxation would burn energy, so binaries must be added;
    the result is the exclusive optimum, proven, and the env agrees.  Hand-solved: discharge
    3.2 kW at step 0 (making 3.2 / 0.8 = 4 kWh of room; export 13.2 kW: −0.66 + 11.2 over +
    0.032 wear = 10.572 $) to charge 5 kW at step 1 (0.8 · 5 = 4 kWh; export 5 kW: −0.25 + 3 +
    0.05 = 2.8 $): 13.372 $ against 15 $ idle (discharging more raises the export at step 0
    by more than step 1 can absorb)."""
    c = _burn_case()
    res = solve_community_milp(c, start=0, steps=2, time_limit_s=10, mip_gap=0.0)
    assert res.extra.get("lazy_battery_binaries", 0) > 0
    assert res.status == "optimal"
    assert res.objective_usd == pytest.approx(13.372, abs=1e-9)
    assert res.bound_usd == pytest.approx(13.372, abs=1e-6)
    np.testing.assert_allclose(res.battery_kw[:, 0], [-3.2, 5.0], atol=1e-9)
    acc = schedule_cost(c, res.discrete, res.continuous)
    assert acc["cost_usd"].sum() == pytest.approx(res.objective_usd, rel=1e-9)
    assert acc["clipped_kw"].max() < 1e-7
    if not env_missing:
        cost = _env_cost(c, res.to_controller(), steps=2)
        assert abs(cost - res.objective_usd) <= 1e-6 * abs(res.objective_usd)


@pytest.mark.parametrize("warm_start", [True, False])
def test_grid_binary_kept_where_feed_in_beats_the_price(warm_start: bool) -> None:
    """Where π_fi > π (step 1: 0.02 < 0.05) importing and exporting at once would earn money,
    so the grid exclusivity stays binary there; elsewhere it is relaxed (it cannot pay).
    Replaying the schedule gives the objective, with and without the decomposition start."""
    c = replace(
        rich_community(),
        price_usd_per_kwh=np.array([0.10, 0.02, 0.15, 0.20, 0.30, 0.45, 0.45, 0.30, 0.15, 0.10]),
    )
    res = solve_community_milp(
        c, start=0, steps=EPISODE, time_limit_s=20, mip_gap=0.0, warm_start=warm_start
    )
    assert res.status == "optimal"
    np.testing.assert_allclose(np.minimum(res.import_kw, res.export_kw), 0.0, atol=1e-12)
    acc = schedule_cost(c, res.discrete, res.continuous)
    assert acc["cost_usd"].sum() == pytest.approx(res.objective_usd, rel=1e-9, abs=1e-9)
    assert acc["clipped_kw"].max() < 1e-7
    if not env_missing:
        cost = _env_cost(c, res.to_controller())
        assert abs(cost - res.objective_usd) <= 1e-6 * abs(res.objective_usd)


def test_decomposition_bound_is_valid_and_start_is_used() -> None:
    """The per-heat-pump Lagrangian bound never exceeds the proven optimum (solved without
    the warm start, gap 0), and with it the solve ends at the same optimum."""
    c = rich_community()
    exact = solve_community_milp(
        c, start=0, steps=EPISODE, time_limit_s=20, mip_gap=0.0, warm_start=False
    )
    warm = solve_community_milp(c, start=0, steps=EPISODE, time_limit_s=20, mip_gap=0.0)
    assert exact.status == "optimal" and warm.status == "optimal"
    assert warm.extra["hp_subproblems"] == 3
    assert warm.extra["lp_bound_usd"] <= exact.objective_usd + 1e-7
    assert warm.objective_usd == pytest.approx(exact.objective_usd, rel=1e-7)
    assert warm.bound_usd <= exact.objective_usd + 1e-6 * abs(exact.objective_usd)


def test_solves_with_different_thread_counts_in_one_process() -> None:
    """HiGHS keeps one thread pool per process and refuses a solve asking for another count;
    a MILP teacher (1 thread) after a validation MILP (default) used to fail with "no
    solution for the LP relaxation"."""
    import pyomo.environ as pyo

    from baselines_opt.solve import SolveOptions, solve_highs

    def tiny() -> pyo.ConcreteModel:
        m = pyo.ConcreteModel()
        m.x = pyo.Var(bounds=(0, 4), domain=pyo.Integers)
        m.y = pyo.Var(bounds=(0, 10))
        m.c = pyo.Constraint(expr=m.x + m.y >= 2.5)
        m.obj = pyo.Objective(expr=3 * m.x + 2 * m.y)
        return m

    for threads in (None, 1, 2, 1, None, 2):
        rep = solve_highs(tiny(), SolveOptions(time_limit_s=10, mip_gap=0.0, threads=threads))
        assert rep.status == "optimal" and rep.objective == pytest.approx(5.0)
    c = rich_community()  # the decomposition's per-heat-pump solves, at other counts again
    a = solve_community_milp(c, start=0, steps=EPISODE, time_limit_s=20, mip_gap=0.0, threads=1)
    b = solve_community_milp(c, start=0, steps=EPISODE, time_limit_s=20, mip_gap=0.0, threads=2)
    assert a.status == "optimal" and a.extra["hp_subproblems"] == 3
    assert a.objective_usd == pytest.approx(b.objective_usd, rel=1e-6)
