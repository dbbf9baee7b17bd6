"""The ``lp_dp`` method of the community MILP (LP relaxation, heat pumps by dynamic programming
at its duals, fixed-mode LP) and its heat-pump DP: the DP against HiGHS on the same heat-pump
problem, the method's bound and schedule around the proven optimum, replay in the env.

Model equations: the docstring of :mod:`gridmarl.energy.community` (items 1 to 8).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_community_milp import EPISODE, _env_cost, _hard_community, rich_community

import baselines_opt.community.lp_dp as lp_dp
from baselines_opt.community import schedule_cost, solve_community_milp
from baselines_opt.community.column_generation import _Solver, hp_block
from baselines_opt.community.horizon import build_horizon, device_sets
from baselines_opt.community.hp_dp import hp_lower_bounds, hp_schedules
from baselines_opt.solve import SolverError


def _priced(blk, x: np.ndarray, lam: np.ndarray) -> float:
    """f_b(x) + λ·d_b(x): the heat pump's own cost plus its priced power [$]."""
    base = np.asarray(blk.lp.col_cost_, np.float64)
    d = np.bincount(blk.d_rows, blk.d_vals * x[blk.d_cols], minlength=len(lam))
    return float(base @ x + lam @ d)


@pytest.mark.parametrize("seed", [0, 1])
def test_hp_dp_matches_highs_on_the_heat_pump_problem(seed: int) -> None:
    """At random prices the DP schedule follows the exact dynamics (item 3), its slacks are
    the comfort violations (item 4), and its priced cost lies within 1 % above HiGHS's
    optimum of the same MIP (never below HiGHS's proven bound)."""
    c = _hard_community(n=6, steps=24)
    h = build_horizon(c, 0, 24, None, True)
    _, hp, _ = device_sets(c)
    blocks = [hp_block(c, h, k, int(n)) for k, n in enumerate(hp)]
    lam = np.random.default_rng(seed).uniform(0.0, 0.6, 24)
    xs = hp_schedules(blocks, lam)
    exact = _Solver(blocks).price(lam, integer=True, time_limit_s=20.0)
    for blk, x, (_, bound, xm) in zip(blocks, xs, exact, strict=True):
        q, T = blk.meta, 24
        modes, theta = x[:T], x[T : 2 * T]
        assert set(np.unique(modes)) <= set(range(q["m1"] + 1))
        prev = np.concatenate([[q["theta0"]], theta[:-1]])
        np.testing.assert_allclose(
            theta, q["a"] * prev + (1 - q["a"]) * q["t_out"] + q["gain"] * modes, atol=1e-9
        )
        np.testing.assert_allclose(x[2 * T : 3 * T], np.maximum(q["lo"] - theta, 0), atol=1e-12)
        np.testing.assert_allclose(x[3 * T :], np.maximum(theta - q["hi"], 0), atol=1e-12)
        dp, opt = _priced(blk, x, lam), _priced(blk, xm, lam)
        assert dp >= bound - 1e-6 * max(1.0, abs(bound))
        assert dp <= opt + 0.01 * abs(opt) + 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cell_dp_bound_is_below_the_enumerated_optimum_and_close_to_it(seed: int) -> None:
    """Every mode sequence of 6 steps enumerated (4^6 of them): the cell DP's bound never
    exceeds the true optimum of any heat pump and lies within 1 % of it; the DP schedule's
    priced cost is never below the bound."""
    import itertools

    T = 6
    c = _hard_community(n=6, steps=T)
    h = build_horizon(c, 0, T, None, True)
    _, hp, _ = device_sets(c)
    blocks = [hp_block(c, h, k, int(n)) for k, n in enumerate(hp)]
    lam = np.random.default_rng(seed).uniform(0.0, 0.6, T)
    bounds = hp_lower_bounds(blocks, lam)
    xs = hp_schedules(blocks, lam)
    for blk, lb, x in zip(blocks, bounds, xs, strict=True):
        q = blk.meta
        seqs = np.array(list(itertools.product(range(q["m1"] + 1), repeat=T)), np.float64)
        th = np.full(len(seqs), q["theta0"])
        cost = seqs @ (np.asarray(blk.lp.col_cost_)[:T] + lam * blk.d_vals)
        k = np.asarray(blk.lp.col_cost_)[2 * T : 3 * T]
        for t in range(T):
            th = q["a"] * th + (1 - q["a"]) * q["t_out"][t] + q["gain"][t] * seqs[:, t]
            cost += k[t] * (np.maximum(q["lo"] - th, 0) + np.maximum(th - q["hi"], 0))
        opt = float(cost.min())
        assert lb <= opt + 1e-9
        assert lb >= opt - 0.01 * abs(opt) - 1e-6
        assert _priced(blk, x, lam) >= lb - 1e-9


@pytest.fixture(scope="module")
def hard_optimum() -> tuple[float, float]:
    """(incumbent, bound) of HiGHS's whole MILP on 12 heat pumps over 24 steps (8 s)."""
    res = solve_community_milp(
        _hard_community(n=12, steps=24), steps=24, time_limit_s=8, mip_gap=1e-4, method="exact"
    )
    return res.objective_usd, res.bound_usd


def test_lp_dp_brackets_the_optimum_and_replays_in_the_env(
    hard_optimum: tuple[float, float],
) -> None:
    """Bound <= HiGHS's incumbent and schedule >= HiGHS's bound, the schedule no worse than
    HiGHS's; its objective is what the env's equations charge for it; the bound is at least
    the LP relaxation's."""
    c = _hard_community(n=12, steps=24)
    res = solve_community_milp(c, steps=24, time_limit_s=4, mip_gap=1e-4, method="lp_dp")
    assert res.extra["method"] == "lp_dp" and res.extra["bound_method"] == lp_dp.BOUND_METHOD
    opt, opt_bound = hard_optimum
    tol = 1e-6 * abs(opt)
    assert res.bound_usd <= opt + tol
    assert res.objective_usd >= opt_bound - tol
    assert res.bound_usd >= res.extra["lp_objective_usd"] - tol  # the MIPs only lift it
    assert res.extra["fixed_objective_usd"] == pytest.approx(res.objective_usd, rel=1e-6)
    # measured: 60.42 $ (bound 57.65 $) against HiGHS's 62.25 $ (bound 57.70 $) in 8 s; the
    # schedule is deterministic, only the bound depends on the MIPs' time
    assert res.objective_usd <= 1.01 * opt
    assert res.gap < 0.08
    acc = schedule_cost(c, res.discrete, res.continuous, 0)
    assert acc["cost_usd"].sum() == pytest.approx(res.objective_usd, rel=1e-9)
    assert _env_cost(c, res.to_controller(), steps=24) == pytest.approx(res.objective_usd, rel=1e-6)


def test_lp_dp_on_the_rich_community_reaches_the_optimum() -> None:
    """Three heat pumps, batteries and EVs: within 1 % of the proven optimum, bound below it."""
    c = rich_community()
    opt = solve_community_milp(c, steps=EPISODE, time_limit_s=20, mip_gap=0.0, method="exact")
    res = solve_community_milp(c, steps=EPISODE, time_limit_s=10, mip_gap=0.0, method="lp_dp")
    assert opt.status == "optimal"
    assert res.bound_usd <= opt.objective_usd + 1e-6 * abs(opt.objective_usd)
    assert opt.objective_usd - 1e-6 <= res.objective_usd <= opt.objective_usd * 1.01
    assert _env_cost(c, res.to_controller()) == pytest.approx(res.objective_usd, rel=1e-6)


def test_lp_dp_without_its_lp_falls_back_to_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lp(*args, **kwargs):
        raise SolverError("LP relaxation: HiGHS status kTimeLimit within 0.1 s")

    monkeypatch.setattr(lp_dp, "_ipm", no_lp)
    res = solve_community_milp(rich_community(), steps=EPISODE, time_limit_s=4, method="lp_dp")
    assert res.extra["method"] == "column_generation"
    assert res.extra["failed_methods"][0].startswith("lp_dp: LP relaxation")
    assert math.isfinite(res.bound_usd) and res.bound_usd <= res.objective_usd + 1e-9


def test_ipm_time_limit_counts_from_this_solve() -> None:
    """HiGHS's clock runs over every solve of one ``Highs`` object: a second solve's limit is
    set past the time already spent (the fixed-mode LP at 200 prosumers was refused at once
    when its limit was below the relaxation's 64 s)."""
    import highspy

    class Recorder:
        options: dict = {}

        def getRunTime(self) -> float:  # noqa: N802 - the highspy name
            return 64.0

        def setOptionValue(self, key: str, value: object) -> None:  # noqa: N802
            self.options[key] = value

        def run(self) -> None:
            pass

        def getModelStatus(self) -> object:  # noqa: N802
            return highspy.HighsModelStatus.kTimeLimit

    hs = Recorder()
    with pytest.raises(SolverError, match="fixed modes: HiGHS status"):
        lp_dp._ipm(hs, 46.0, "fixed modes")
    assert hs.options["time_limit"] == pytest.approx(110.0)
    assert hs.options["solver"] == "ipm" and hs.options["run_crossover"] == "off"
