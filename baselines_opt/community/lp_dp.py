"""The community MILP by its LP relaxation, priced heat-pump schedules and a fixed-mode LP.

A relax-and-round scheme for a few hundred prosumers (the week of 200 has 380 devices x 167
steps, about 196,000 LP columns), built on the decomposition of
:mod:`~baselines_opt.community.column_generation` (same device blocks, same community part):

1. **LP relaxation** of the whole model (heat-pump modes continuous, the import / export
   exclusivity as its convex hull), assembled directly as one ``highspy`` LP from the device
   blocks and the master's community rows, solved by HiGHS's interior-point method (IPX,
   crossover off).  Its balance duals ``λ*_t`` are an optimal point of the Lagrangian dual of
   the relaxation, which column generation only approaches round by round (Lübbecke &
   Desrosiers 2005, "Selected topics in column generation", Oper. Res. 53(6), §2.1: the master
   LP and the Lagrangian dual share their optimum).
2. **Heat pumps priced at λ*** (:func:`~baselines_opt.community.hp_dp.hp_schedules`): each heat
   pump's integer schedule of least priced cost, by dynamic programming over its temperature.
   This is the pricing step of price-and-round (the "restricted master heuristic" family of
   Joncour et al. 2010, "Column generation based primal heuristics", ENDM 36; Sadykov et al.
   2019, "Primal heuristics for branch and price", INFORMS J. Comput. 31(2)): a schedule is
   taken from the device's own problem at the master's prices, not by rounding the LP's
   fractional modes (measured on the 200-prosumer week: 0.18 % above the bound against 0.61 %
   for rounding the LP's temperature path up).
3. **Fixed-mode LP**: the modes fixed at those schedules, the LP is solved again, so batteries
   and EVs (convex, continuous) re-plan around the heat pumps' integer power.  Its device
   solutions are the schedule; the env's equations account its cost
   (:func:`~baselines_opt.community.accounting.schedule_cost`, in
   :func:`~baselines_opt.community.perfect_foresight.solve_by_lp_dp`).
4. **Bound** (weak Lagrangian duality at λ*, the bound of column generation):
   ``L(λ*) = Σ_t λ*_t net_t + C(λ*) + Σ_b v_b(λ*)``, each heat pump's ``v_b`` bounded from
   below by the better of two proofs (the lift over the LP bound that the heat pumps'
   integrality gives): the aggregated DP of
   :func:`~baselines_opt.community.hp_dp.hp_lower_bounds` (cells of 0.002 C; in half the
   time left after step 3, one heat pump after another), and HiGHS's proven MIP bound of the
   subproblem started from the DP schedule, in worker processes, in the rest.  The schedule
   comes first.  On the 50-prosumer week the cell DP proves 177.37 $ of the heat pumps' 178.21 $
   (DP schedules), HiGHS's MIP bounds 173.50 $ in 1 s each.  The bound is valid for any λ, so
   an inexact IPM solution only weakens it;
   ``bound_method = "lagrangian at the LP duals (heat-pump cell-DP and MIP bounds)"``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from baselines_opt.community.column_generation import Block, Pricer, _lp, _Master, make_blocks
from baselines_opt.community.horizon import Horizon
from baselines_opt.community.hp_dp import hp_lower_bounds, hp_schedules
from baselines_opt.solve import SolverError
from gridmarl.energy.community import Community

BOUND_METHOD = "lagrangian at the LP duals (heat-pump cell-DP and MIP bounds)"
#: share of the time limit the LP relaxation may take; beyond it the method gives up (and
#: :func:`~baselines_opt.community.perfect_foresight.solve_community_milp` falls back to column
#: generation in the time left) [-]
LP_SHARE = 0.6
#: at most this long per heat-pump MIP of the bound [s]; within it they share the time left.
#: HiGHS's bound of these MIPs stalls early (50-prosumer week: 0.3 s → 2,508.0 $, 1 s →
#: 2,511.7 $, 3 s → 2,511.6 $) while its incumbent rarely beats the DP's schedule
HP_MIP_MAX_S = 4.0
#: share of the time left after the fixed-mode LP for the heat pumps' cell-DP bounds [-]
CELL_SHARE = 0.5
#: seconds kept free at the end of the time limit for collecting the answers [s]
MARGIN_S = 2.0
#: share of the time left that the heat-pump MIPs' limits add up to (per worker): each MIP
#: overruns its limit a little (presolve, set-up) [-]
MIP_TIME_SHARE = 0.8


@dataclass
class LpDpResult:
    """Outcome of :func:`solve_lp_dp`.

    Attributes:
        bound: Lagrangian bound L(λ*) [$]; lp_objective: the LP relaxation's value [$].
        fixed_objective: the fixed-mode LP's value [$] (NaN if it was not solved).
        schedule: per block its solution (``x`` in the block's column order).
        build_s: blocks, master and LP assembly [s]; timings: seconds per phase (``lp``,
            ``dp``, ``fixed_lp``, ``hp_mip``: the bound's pricing, worker start included).
        hp_mip_limit_s: time limit of each heat-pump MIP of the bound [s].
        hp_cell_bounds: heat pumps whose cell-DP bound was computed in its share of the time.
    """

    bound: float
    lp_objective: float
    fixed_objective: float
    schedule: list[np.ndarray]
    build_s: float
    hp_mip_limit_s: float
    hp_cell_bounds: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def full_lp(h: Horizon, blocks: list[Block], master: _Master) -> tuple[Any, np.ndarray]:
    """The whole LP relaxation as one ``highspy.HighsLp``: the master's community columns and
    its first ``4T`` rows (balance, transformer excess, peak, exclusivity hull), then every
    block's columns and rows, its power entering the balance rows with sign −.

    Returns:
        (the LP, ``offsets [B + 1]``: block ``b``'s columns are ``offsets[b] … offsets[b+1]``).
    """
    T = h.T
    lp0 = master.hs.getLp()
    start = np.asarray(lp0.a_matrix_.start_)
    rows = [np.asarray(lp0.a_matrix_.index_)]
    cols = [np.repeat(np.arange(lp0.num_col_), np.diff(start))]
    vals = [np.asarray(lp0.a_matrix_.value_)]
    cost, lo, hi = [lp0.col_cost_], [lp0.col_lower_], [lp0.col_upper_]
    rlo, rhi = [np.asarray(lp0.row_lower_)[: 4 * T]], [np.asarray(lp0.row_upper_)[: 4 * T]]
    offsets = [lp0.num_col_]
    r0 = 4 * T
    for b in blocks:
        lp = b.lp
        s = np.asarray(lp.a_matrix_.start_)
        c0 = offsets[-1]
        rows += [np.asarray(lp.a_matrix_.index_) + r0, b.d_rows]
        cols += [np.repeat(np.arange(lp.num_col_), np.diff(s)) + c0, b.d_cols + c0]
        vals += [np.asarray(lp.a_matrix_.value_), -b.d_vals]
        cost.append(lp.col_cost_)
        lo.append(lp.col_lower_)
        hi.append(lp.col_upper_)
        rlo.append(lp.row_lower_)
        rhi.append(lp.row_upper_)
        offsets.append(c0 + lp.num_col_)
        r0 += lp.num_row_
    cat = lambda xs: np.concatenate([np.asarray(x, np.float64) for x in xs])  # noqa: E731
    lp = _lp(cat(cost), cat(lo), cat(hi), cat(rlo), cat(rhi), np.concatenate(rows),
             np.concatenate(cols), cat(vals))  # fmt: skip
    return lp, np.asarray(offsets)


def _ipm(hs: Any, time_limit_s: float, what: str) -> tuple[float, Any]:
    """Run HiGHS's interior-point method (no crossover) on the loaded LP: (value, solution)."""
    import highspy

    hs.setOptionValue("solver", "ipm")
    hs.setOptionValue("run_crossover", "off")
    # HiGHS's clock runs over every solve of this object: the limit is on its total
    hs.setOptionValue("time_limit", hs.getRunTime() + float(max(time_limit_s, 1.0)))
    hs.run()
    st = hs.getModelStatus()
    if st != highspy.HighsModelStatus.kOptimal:
        raise SolverError(f"{what}: HiGHS status {st} within {time_limit_s:.1f} s")
    return float(hs.getInfo().objective_function_value), hs.getSolution()


def solve_lp_dp(
    c: Community, h: Horizon, time_limit_s: float, workers: int | None = None
) -> LpDpResult:
    """The schedule and bound of the module docstring within ``time_limit_s`` [s] (wall).

    Args:
        c: the community; h: the horizon.
        time_limit_s: budget of the whole method [s]; the LP relaxation may use ``LP_SHARE`` of
            it, the heat-pump MIPs of the bound share what is left.
        workers: processes for the heat-pump MIPs (default ``os.cpu_count()``, at most 4).

    Raises:
        baselines_opt.solve.SolverError: the LP relaxation was not solved in its share.
    """
    import highspy

    t0 = time.perf_counter()
    deadline = t0 + time_limit_s
    blocks = make_blocks(c, h)
    master = _Master(c, h, blocks)
    lp, off = full_lp(h, blocks, master)
    hs = highspy.Highs()
    hs.setOptionValue("output_flag", False)
    hs.passModel(lp)
    build_s = time.perf_counter() - t0
    timings: dict[str, float] = {}

    t1 = time.perf_counter()
    lp_val, sol = _ipm(hs, LP_SHARE * time_limit_s - build_s, "LP relaxation")
    lp_val += master.offset
    lam = np.asarray(sol.row_dual[: h.T], np.float64)
    x = np.asarray(sol.col_value, np.float64)
    schedule = [x[off[b] : off[b + 1]] for b in range(len(blocks))]
    timings["lp"] = time.perf_counter() - t1

    hp = [b for b, blk in enumerate(blocks) if blk.integer]
    t1 = time.perf_counter()
    for b, xb in zip(hp, hp_schedules([blocks[b] for b in hp], lam), strict=True):
        schedule[b] = xb
    timings["dp"] = time.perf_counter() - t1

    fixed_val = math.nan
    if hp:  # 3. the modes fixed at their DP schedules; batteries and EVs re-planned
        t1 = time.perf_counter()
        idx = np.concatenate([np.arange(off[b], off[b] + h.T) for b in hp]).astype(np.int32)
        modes = np.concatenate([schedule[b][: h.T] for b in hp])
        hs.changeColsBounds(len(idx), idx, modes, modes)
        try:
            fixed_val, sol = _ipm(
                hs, deadline - time.perf_counter() - MARGIN_S, "LP with fixed heat-pump modes"
            )
            fixed_val += master.offset
            x = np.asarray(sol.col_value, np.float64)
            for b in range(len(blocks)):
                if not blocks[b].integer:
                    schedule[b] = x[off[b] : off[b + 1]]
        except SolverError:  # batteries and EVs keep the relaxation's plan (feasible)
            pass
        timings["fixed_lp"] = time.perf_counter() - t1
    del hs, lp  # the worker processes need not inherit the big LP

    # 4a. proven heat-pump bounds by the aggregated DP (hp_dp.hp_lower_bounds), one heat pump
    # after another while they fit in CELL_SHARE of the time left
    t1 = time.perf_counter()
    cell = np.full(len(blocks), -math.inf)
    budget = CELL_SHARE * (deadline - t1 - MARGIN_S)
    for i, b in enumerate(hp):
        spent = time.perf_counter() - t1
        if i and spent * (i + 1) / i > budget:
            break
        cell[b] = float(hp_lower_bounds([blocks[b]], lam)[0])
    timings["hp_cell"] = time.perf_counter() - t1
    cell_done = int(np.isfinite(cell).sum())

    # 4b. the bound: every device priced at λ*, the heat pumps' MIPs in the time left
    t1 = time.perf_counter()
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    pricer = Pricer(blocks, workers if len(blocks) >= 64 else 1)
    try:
        left = deadline - time.perf_counter() - MARGIN_S
        per = min(HP_MIP_MAX_S, MIP_TIME_SHARE * max(left, 0.0) * pricer.workers / max(len(hp), 1))
        starts = {b: schedule[b] for b in hp}
        priced = pricer.price(
            lam, integer=bool(hp) and per >= 0.05, time_limit_s=per, starts=starts
        )
    finally:
        pricer.close()
    timings["hp_mip"] = time.perf_counter() - t1
    # each heat pump's v_b(λ*) bound: the better of HiGHS's MIP bound and the cell DP's
    values = [max(r[1], cell[b]) for b, r in enumerate(priced)]
    bound = float(lam @ h.net_kw) + master.community_value(lam) + sum(values)
    return LpDpResult(
        bound=bound,
        lp_objective=lp_val,
        fixed_objective=fixed_val,
        schedule=schedule,
        build_s=build_s,
        hp_mip_limit_s=per,
        hp_cell_bounds=cell_done,
        timings=timings,
    )
