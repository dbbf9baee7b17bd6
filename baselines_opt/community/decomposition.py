"""Warm start and lower bound of the community MILP by Lagrangian decomposition per heat pump.

:func:`decomposition_start` prices every heat pump's own small MIP with the LP's power-balance
duals; the subproblem optima give a start incumbent (modes fixed, the rest re-solved) and their
bounds lift the LP bound.  The subproblems are built directly as ``highspy`` models.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pyomo.environ as pyo

from baselines_opt.community.exclusivity import relax_exclusivity, solve_lazy
from baselines_opt.community.horizon import Horizon
from baselines_opt.community.model import Model, int_vars, var_values
from baselines_opt.solve import SolveOptions, SolverError, solve_highs, use_threads
from gridmarl.energy.community import Community

HP_GAP_SHARE = 0.85  # share of the gap budget mip_gap · |LP*| for the subproblems to leave open


def _hp_lp(
    a: float,
    theta0: float,
    t_out: np.ndarray,
    gain: np.ndarray,
    mode_cost: np.ndarray,
    comfort_cost: np.ndarray,
    lo: float,
    hi: float,
    m_max: float,
) -> Any:
    """The single heat-pump problem as a ``highspy.HighsLp`` (continuous modes).

    Columns ``mode[T], θ[T], v_lo[T], v_hi[T]``; rows: the dynamics (item 3) and the comfort
    slacks (item 4), exactly as in :func:`build_model`.  Cost ``Σ mode_cost·mode +
    comfort_cost·(v_lo + v_hi)``.
    """
    import highspy

    T, inf = len(t_out), highspy.kHighsInf
    t = np.arange(T)
    th = T + t
    # (row, col, value) triplets: dyn rows 0..T-1, lo rows T..2T-1, hi rows 2T..3T-1
    rows = np.concatenate([t, t[1:], t, T + t, T + t, 2 * T + t, 2 * T + t])
    cols = np.concatenate([th, th[:-1], t, th, 2 * T + t, th, 3 * T + t])
    vals = np.concatenate(
        [np.ones(T), np.full(T - 1, -a), -gain, np.ones(T), np.ones(T), np.ones(T), -np.ones(T)]
    )
    order = np.lexsort((rows, cols))
    rows, cols, vals = rows[order], cols[order], vals[order]
    rhs = (1.0 - a) * t_out
    rhs[0] += a * theta0
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = 4 * T, 3 * T
    lp.col_cost_ = np.concatenate([mode_cost, np.zeros(T), comfort_cost, comfort_cost])
    lp.col_lower_ = np.concatenate([np.zeros(T), np.full(T, -inf), np.zeros(2 * T)])
    lp.col_upper_ = np.concatenate([np.full(T, m_max), np.full(3 * T, inf)])
    lp.row_lower_ = np.concatenate([rhs, np.full(T, lo), np.full(T, -inf)])
    lp.row_upper_ = np.concatenate([rhs, np.full(T, inf), np.full(T, hi)])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.searchsorted(cols, np.arange(4 * T + 1)).astype(np.int32)
    lp.a_matrix_.index_ = rows.astype(np.int32)
    lp.a_matrix_.value_ = vals
    return lp


def _hp_solve(
    lp: Any, integer: bool, abs_gap: float, time_limit_s: float, threads: int | None
) -> tuple[float, float, np.ndarray | None]:
    """Solve a :func:`_hp_lp` model: (objective, proven bound, modes or None)."""
    import highspy

    T = lp.num_col_ // 4
    if integer:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * T + [
            highspy.HighsVarType.kContinuous
        ] * (3 * T)
    hs = highspy.Highs()
    hs.setOptionValue("output_flag", False)
    hs.setOptionValue("time_limit", float(time_limit_s))
    hs.setOptionValue("mip_rel_gap", 0.0)
    hs.setOptionValue("mip_abs_gap", float(max(abs_gap, 1e-9)))
    if threads is not None:  # HiGHS keeps one thread pool per process (use_threads)
        hs.setOptionValue("threads", int(threads))
    use_threads(threads)
    if not str(hs.passModel(lp)).endswith("kOk"):
        return math.nan, -math.inf, None
    hs.run()
    status = hs.getModelStatus()
    info = hs.getInfo()
    ok = (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit)
    if status not in ok or info.primal_solution_status != 2:  # 2 = feasible point
        return math.nan, -math.inf, None
    obj = float(info.objective_function_value)
    bound = float(info.mip_dual_bound) if integer else obj
    if not math.isfinite(bound):
        bound = -math.inf
    return obj, bound, np.asarray(hs.getSolution().col_value[:T], np.float64)


def _round_up_modes(c: Community, h: Horizon, mod: Model) -> np.ndarray:
    """``[T, n_hp]`` modes tracking the loaded (LP) temperature path from above: the smallest
    mode that keeps θ_{t+1} >= θ_LP_{t+1} (item 3)."""
    th_lp = var_values(mod.m.theta).reshape(mod.T, len(mod.hp))
    a = c.thermal_a()[mod.hp]
    theta = h.theta0.copy()
    out = np.zeros((mod.T, len(mod.hp)))
    for t in range(mod.T):
        free = a * theta + (1.0 - a) * h.t_out[t]
        g = h.hp_gain[t]
        need = np.where(g > 0, (th_lp[t] - free) / np.where(g > 0, g, 1.0), 0.0)
        out[t] = np.clip(np.ceil(need - 1e-6), 0, c.hp_modes - 1)
        theta = free + g * out[t]
    return out


def decomposition_start(
    c: Community,
    h: Horizon,
    mod: Model,
    solver: Any,
    options: SolveOptions,
    hp_time_s: float,
    stats: dict[str, Any],
) -> tuple[float, float]:
    """Warm start and lower bound by Lagrangian decomposition; returns (LP bound, bound).

    1. LP relaxation of every integer decision: LP* (a lower bound) and the duals λ_t of the
       power balance (the marginal cost of 1 kW at step t) [$/kW].
    2. With the balance dualized at λ the problem separates per device.  The heat pumps are
       the only ones with integers, so L(λ) = LP* + Σ_n (MIP_n(λ) − LP_n(λ)), where MIP_n /
       LP_n is heat pump n alone (its modes priced at λ_t · P_hp / (M − 1), its comfort as in
       the model) with integer / continuous modes.  L(λ) <= optimum (weak duality; here with
       HiGHS's proven MIP bound of each subproblem, and exact up to the LP tolerances of λ).
       The subproblems get an absolute-gap budget (``HP_GAP_SHARE · mip_gap · |LP*|``, shared
       out as they finish) and a time budget ``hp_time_s``; one out of time keeps LP_n as bound
       and its modes come from rounding up along the LP's temperature path.
    3. Modes fixed at the subproblem optima, the rest re-solved (LP, lazy battery binaries):
       the incumbent, stored in ``mod.start``.
    """
    m = mod.m
    for v in int_vars(mod):
        v.domain = pyo.Reals if v.parent_component() is m.mode else pyo.UnitInterval
    lp_opts = replace(options, mip_gap=0.0)
    t0 = time.perf_counter()
    balance = [m.balance[t] for t in m.T]
    lp = solve_highs(m, lp_opts, solver=solver, what="LP relaxation", duals_of=balance)
    lp_obj = lp.objective
    stats["lp_s"] = time.perf_counter() - t0
    bound = lp_obj
    n_hp = len(mod.hp)
    if n_hp:
        rounded = _round_up_modes(c, h, mod)
        modes = rounded.copy()
        lam = None if lp.duals is None else np.array([lp.duals[r] for r in balance], np.float64)
        t1 = time.perf_counter()
        if lam is not None and np.isfinite(lam).all() and c.hp_modes > 1:
            a = c.thermal_a()
            m1 = c.hp_modes - 1
            cmf = c.comfort_usd_per_c_h * c.step_h * h.w
            gap_left = HP_GAP_SHARE * (options.mip_gap or 0.0) * abs(lp_obj)
            gain_sum, solved = 0.0, 0
            lp_hp = np.stack(
                [var_values(v).reshape(mod.T, n_hp) for v in (m.mode, m.theta, m.v_lo, m.v_hi)],
                axis=-1,
            )
            for k, n in enumerate(mod.hp):
                left = hp_time_s - (time.perf_counter() - t1)
                if left <= 0.02:
                    break
                sub = _hp_lp(
                    float(a[n]),
                    float(h.theta0[k]),
                    h.t_out,
                    h.hp_gain[:, k],
                    lam * float(c.hp_kw[n]) / m1,
                    cmf,
                    float(c.theta_lo_c[n]),
                    float(c.theta_hi_c[n]),
                    float(m1),
                )
                # LP_n(λ) at the full LP's point (optimal for the subproblem when λ is the exact
                # dual; otherwise it is above the true LP_n, which only lowers the bound)
                lp_n = float(
                    np.dot(sub.col_cost_, np.concatenate([lp_hp[:, k, j] for j in range(4)]))
                )
                share = left / (n_hp - k)
                mip_n, bd_n, x = _hp_solve(sub, True, gap_left / (n_hp - k), share, options.threads)
                if not math.isfinite(lp_n) or x is None:
                    continue
                modes[:, k] = np.clip(np.rint(x), 0, m1)
                if math.isfinite(bd_n):
                    gain_sum += bd_n - lp_n
                    gap_left = max(0.0, gap_left - (mip_n - bd_n))
                solved += 1
            bound = lp_obj + gain_sum
            stats["hp_subproblems"] = solved
        stats["hp_s"] = time.perf_counter() - t1
        for v, r in zip(m.mode.values(), modes.reshape(-1), strict=True):
            v.setlb(float(r))
            v.setub(float(r))
        solver.update_variables(list(m.mode.values()))
    for v in (*m.yb.values(), *m.z.values()):
        v.domain = pyo.Binary
    relax_exclusivity(mod, h)
    for v in m.mode.values():
        v.domain = pyo.Integers
    solver.update_variables(int_vars(mod))
    try:
        inc = solve_lazy(mod, solver, lp_opts, "LP with fixed heat-pump modes", stats)
        mod.start = {id(v): v.value for v in m.component_data_objects(pyo.Var)}
        mod.start_obj = inc.objective
    except SolverError:
        mod.start, mod.start_obj = None, math.inf
    if bound > mod.start_obj + 1e-6 * max(1.0, abs(mod.start_obj)):
        bound = lp_obj  # inconsistent duals (should not happen): keep only the LP bound
    for v in m.mode.values():
        v.setlb(0.0)
        v.setub(float(c.hp_modes - 1))
    solver.update_variables(list(m.mode.values()))
    return lp_obj, bound
