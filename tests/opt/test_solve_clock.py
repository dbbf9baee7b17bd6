"""HiGHS's run clock: a persistent LP gets its whole time limit on every re-solve."""

from __future__ import annotations

import pyomo.environ as pyo

from baselines_opt.solve import SolveOptions, make_highs, solve_highs


def _lp(n: int) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, n - 1)
    m.c = pyo.Param(m.I, mutable=True, initialize=lambda _, i: ((i * 7919) % 101) / 50 - 1)
    m.x = pyo.Var(m.I, bounds=(0, 10))
    m.pair = pyo.Constraint(
        pyo.RangeSet(0, n // 2 - 1), rule=lambda m, k: m.x[2 * k] + m.x[2 * k + 1] <= 5
    )
    m.obj = pyo.Objective(expr=sum(m.c[i] * m.x[i] for i in m.I))
    return m


def test_a_persistent_lp_is_not_timed_out_by_earlier_runs() -> None:
    """HiGHS 1.x adds up an LP's runs on one object against ``time_limit``
    (ERGO-Code/HiGHS#1331): without the correction in ``solve_highs`` the re-solves after the
    first 0.05 s in total end at once with "time limit" and no solution."""
    m = _lp(4000)
    solver = make_highs(persistent_updates=True)
    opts = SolveOptions(time_limit_s=0.05, mip_gap=None)
    runs = 0
    while runs < 10 or solver._solver_model.getRunTime() < 3 * opts.time_limit_s:  # noqa: SLF001
        assert runs < 500, "the LP solves too fast to pass the limit in total"
        for i in m.I:  # new costs: a real re-solve each time
            m.c[i] = (((i + 13 * runs) * 7919) % 101) / 50 - 1
        rep = solve_highs(m, opts, solver=solver, what="LP")
        assert rep.status == "optimal"
        runs += 1
