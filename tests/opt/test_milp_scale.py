"""The community MILP at scale: column generation per device (its Lagrangian bound, its
incumbent replayed through the env), the method choice and the answer that always comes back.

Model equations: the docstring of :mod:`gridmarl.energy.community` (items 1 to 8).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_community_milp import EPISODE, _env_cost, _hard_community, rich_community

import baselines_opt.community.perfect_foresight as pf
from baselines_opt.community import schedule_cost, solve_community_milp
from baselines_opt.community.column_generation import BOUND_METHOD
from baselines_opt.solve import SolverError


@pytest.fixture(scope="module")
def rich_optimum() -> float:
    res = solve_community_milp(
        rich_community(), steps=EPISODE, time_limit_s=20, mip_gap=0.0, method="exact"
    )
    assert res.status == "optimal" and res.extra["method"] == "exact"
    return res.objective_usd


def test_columns_bracket_the_optimum_and_replay_in_the_env(rich_optimum: float) -> None:
    """Lagrangian bound <= optimum <= the schedule's cost, and that cost is what the env
    charges for the schedule (replay consistency)."""
    c = rich_community()
    res = solve_community_milp(c, steps=EPISODE, time_limit_s=10, mip_gap=0.0, method="columns")
    assert res.extra["method"] == "column_generation"
    assert res.extra["bound_method"] == BOUND_METHOD
    tol = 1e-6 * abs(rich_optimum)
    assert res.bound_usd <= rich_optimum + tol
    assert res.objective_usd >= rich_optimum - tol
    assert res.gap == pytest.approx((res.objective_usd - res.bound_usd) / res.objective_usd)
    acc = schedule_cost(c, res.discrete, res.continuous)
    assert acc["cost_usd"].sum() == pytest.approx(res.objective_usd, rel=1e-9)
    assert _env_cost(c, res.to_controller()) == pytest.approx(res.objective_usd, rel=1e-6)
    # integer heat-pump modes within their range; EV actions only where present
    assert res.discrete.min() >= 0 and res.discrete.max() <= c.hp_modes - 1
    assert np.all(res.continuous[~c.ev_present[:EPISODE].astype(bool), 1] == -1.0)


@pytest.mark.slow
def test_columns_close_the_gap_on_many_heat_pumps() -> None:
    """Thirty heat pumps with a narrow comfort band: the bound holds against HiGHS's own
    incumbent and the schedule lies within a few per cent of the bound (measured on 2 busy
    cores: 453.4 $ against HiGHS's 455.5 $ in 30 s, bound 431.1 $ for both)."""
    c = _hard_community(n=30, steps=48)
    exact = solve_community_milp(c, steps=48, time_limit_s=20, mip_gap=1e-4, method="exact")
    cols = solve_community_milp(c, steps=48, time_limit_s=30, mip_gap=1e-4, method="columns")
    tol = 1e-6 * abs(exact.objective_usd)
    assert cols.bound_usd <= exact.objective_usd + tol
    assert cols.objective_usd >= exact.bound_usd - tol
    assert cols.gap < 0.15  # 5-6 % measured on the busy machine; far from it = broken
    acc = schedule_cost(c, cols.discrete, cols.continuous)
    assert acc["cost_usd"].sum() == pytest.approx(cols.objective_usd, rel=1e-9)


def test_exact_failure_falls_back_to_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_incumbent(*args, **kwargs):
        raise SolverError("the time limit was reached before HiGHS found any feasible solution")

    monkeypatch.setattr(pf, "solve_exact", no_incumbent)
    res = solve_community_milp(rich_community(), steps=EPISODE, time_limit_s=4, method="exact")
    assert res.extra["method"] == "column_generation"
    assert res.extra["failed_methods"][0].startswith("exact: the time limit")
    assert math.isfinite(res.bound_usd) and res.bound_usd <= res.objective_usd + 1e-9


def test_fallback_schedule_answers_when_every_solver_fails(
    monkeypatch: pytest.MonkeyPatch, rich_optimum: float
) -> None:
    def broken(*args, **kwargs):
        raise SolverError("injected")

    monkeypatch.setattr(pf, "solve_exact", broken)
    monkeypatch.setattr(pf, "solve_by_columns", broken)
    c = rich_community()
    res = solve_community_milp(c, steps=EPISODE, time_limit_s=4, method="auto")
    assert res.status == "fallback" and res.extra["method"] == "fallback"
    assert res.bound_usd == -math.inf and res.gap == math.inf
    assert len(res.extra["failed_methods"]) == 2
    assert res.objective_usd >= rich_optimum - 1e-9
    assert _env_cost(c, res.to_controller()) == pytest.approx(res.objective_usd, rel=1e-6)


def test_method_choice_and_bad_method() -> None:
    c = rich_community()
    assert pf.choose_method(c, EPISODE) == "exact"
    big = _hard_community(n=30, steps=48)
    assert pf.choose_method(big, 48) == "exact"  # 60 devices x 48 steps
    assert pf.choose_method(big, pf.EXACT_MAX_DEVICE_STEPS // 60 + 1) == "lp_dp"
    assert pf.choose_method(big, pf.LP_DP_MAX_DEVICE_STEPS // 60 + 1) == "columns"
    with pytest.raises(ValueError, match="allowed: auto, exact, lp_dp, columns"):
        solve_community_milp(c, steps=EPISODE, method="admm")


@pytest.mark.parametrize("options", ["{method: admm}", "{workers: 0}", "{threads_per_worker: 2}"])
def test_bad_milp_options_are_bad_input(options: str) -> None:
    from pathlib import Path

    from gridmarl.config import ScenarioError, load_scenario

    path = Path(__file__).resolve().parents[2] / "scenarios" / "community_50.yaml"
    with pytest.raises(ScenarioError, match=r"controllers\[milp\].options: .*allowed keys"):
        load_scenario(path, [f"controllers=[{{name: milp, options: {options}}}]"])


def test_mpc_reports_its_time_per_replan() -> None:
    from baselines_opt.community import MPCController

    c = rich_community()
    ctrl = MPCController(horizon_h=4, replan_every=2)
    _env_cost(c, ctrl)
    assert len(ctrl.stats["step_s"]) == EPISODE // 2  # one re-plan every 2 steps
    assert all(s > 0 for s in ctrl.stats["step_s"])
    assert ctrl.timing().startswith("time per re-plan ") and f"over {EPISODE // 2} re-plans" in (
        ctrl.timing()
    )
