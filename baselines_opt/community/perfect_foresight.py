"""The perfect-foresight community MILP: :func:`solve_community_milp` and its result type.

How :func:`solve_community_milp` solves the MILP of :mod:`baselines_opt.community.model` (the
model is unchanged; only which binaries are enforced when, and where the start and the bound
come from):

* Exclusivity binaries that cannot change the optimum are relaxed to [0, 1]: ``z_t`` wherever
  ``π_fi <= π`` (overlapping imp and exp never pay there), and every battery ``yb``, which is
  made binary lazily where a solution charges and discharges at once, then re-solved (so the
  final schedule always fits the env's single battery setpoint).
* Warm start and bound by Lagrangian decomposition (:func:`decomposition_start`): the LP's
  balance duals price every heat pump's own small MIP (25 independent problems instead of one
  tree), whose optima give the start (modes fixed, the rest re-solved) and whose bounds lift
  the LP bound; HiGHS runs on the full MILP only if that start is not within ``mip_gap``.

After the search, the integer decisions are fixed and the LP re-solved (polish), so the reported
objective is exactly the env's cost of the decoded schedule.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyomo.environ as pyo
import torch

from baselines_opt.community.carbon import carbon_priced
from baselines_opt.community.decomposition import decomposition_start
from baselines_opt.community.exclusivity import lazy_battery, relax_exclusivity, solve_lazy
from baselines_opt.community.horizon import build_horizon, device_sets
from baselines_opt.community.model import Model, build_model, decode_plan
from baselines_opt.solve import (
    SolveOptions,
    SolverError,
    make_highs,
    relative_gap,
    set_start,
    solve_highs,
)
from gridmarl.core.controller import ScheduleController
from gridmarl.energy.community import Community

HP_TIME_SHARE = 0.8  # share of the time limit for the per-heat-pump subproblems (warm start)
POLISH_RESERVE_MAX_SHARE = 0.25  # at most this share of the limit is kept for the polish LP
POLISH_MIN_S = 2.0  # the polish LP gets at least this long, even past the limit [s]


@dataclass
class CommunityMilpResult:
    """The perfect-foresight schedule of steps ``[start, start + steps)`` and how it was found.

    Attributes:
        objective_usd: community cost of the schedule over the episode [$] (after fixing the
            integer decisions and re-solving the LP, so every priced slack is tight).
        bound_usd: best proven lower bound on the optimal cost [$].
        gap: ``(objective − bound) / |objective|`` [-].
        status: ``optimal`` | ``time_limit`` | ... (see :mod:`baselines_opt.solve`).
        build_s: Pyomo model construction [s]; solve_s: HiGHS, model transfer included [s].
        discrete: ``[T, N]`` heat-pump mode per step (0 without a heat pump).
        continuous: ``[T, N, 2]`` env actions (u_b, u_ev) in [-1, 1].
        grid_kw, import_kw, export_kw, over_kw: ``[T]`` G, imp, exp, transformer excess [kW].
        battery_kw, ev_kw, hp_kw: ``[T, N]`` device powers [kW] (battery + charge / − discharge).
        battery_kwh, ev_kwh, theta_c: ``[T, N]`` states *after* each step [kWh], [kWh] (NaN
            when the EV is away), [C].
        peak_kw: peak import of the episode [kW].
        start, steps: the span steps the schedule covers.
        message: the solver's one-line summary.
    """

    objective_usd: float
    bound_usd: float
    gap: float
    status: str
    build_s: float
    solve_s: float
    discrete: np.ndarray
    continuous: np.ndarray
    grid_kw: np.ndarray
    import_kw: np.ndarray
    export_kw: np.ndarray
    over_kw: np.ndarray
    battery_kw: np.ndarray
    ev_kw: np.ndarray
    hp_kw: np.ndarray
    battery_kwh: np.ndarray
    ev_kwh: np.ndarray
    theta_c: np.ndarray
    peak_kw: float
    start: int
    steps: int
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_controller(self, name: str = "milp") -> ScheduleController:
        """An open-loop controller that replays the schedule through the env."""
        return ScheduleController(
            name, torch.from_numpy(self.discrete.copy()), torch.from_numpy(self.continuous.copy())
        )


def _restore_start(mod: Model, load: bool = False) -> float:
    """The start incumbent's objective; with ``load`` also put its values back in the vars."""
    if mod.start is None:
        return math.inf
    if load:
        for v in mod.m.component_data_objects(pyo.Var):
            v.set_value(mod.start[id(v)], skip_validation=True)
    return mod.start_obj


def _fix_integers(mod: Model) -> list:
    """Fix the heat-pump modes and the *binary* exclusivity variables at the incumbent.

    Modes are rounded; the binaries follow the continuous values they gate
    (``yb = [p_c >= p_d]``, ``z = [imp >= exp]``) so that a binary sitting within the
    integrality tolerance of the wrong side cannot make the fixed LP infeasible.  Relaxed
    exclusivity variables (:func:`relax_exclusivity`) stay free in [0, 1].
    """
    m = mod.m
    val = {id(v): (v.value or 0.0) for v in m.component_data_objects(pyo.Var)}
    fixed = []
    for idx, v in m.yb.items():
        if v.domain is pyo.Binary:
            fixed.append((v, float(val[id(m.pc[idx])] >= val[id(m.pd[idx])])))
    for v in m.mode.values():
        fixed.append((v, float(np.rint(val[id(v)]))))
    for t, v in m.z.items():
        if v.domain is pyo.Binary:
            fixed.append((v, float(val[id(m.imp[t])] >= val[id(m.exp[t])])))
    for v, r in fixed:
        v.setlb(r)
        v.setub(r)
    return [v for v, _ in fixed]


def solve_by_columns(
    community: Community,
    start: int,
    steps: int,
    time_limit_s: float,
    mip_gap: float,
    initial_state: dict[str, Any] | None,
    episode_start: bool,
    workers: int | None = None,
) -> CommunityMilpResult:
    """The MILP by column generation per device (:mod:`~baselines_opt.community.column_generation`):
    the incumbent it builds, accounted by the env's equations, and its Lagrangian bound."""
    from baselines_opt.community.column_generation import (
        BOUND_METHOD,
        column_generation,
    )

    t0 = time.perf_counter()
    h = build_horizon(community, start, steps, initial_state, episode_start)
    res = column_generation(community, h, time_limit_s, gap=mip_gap, workers=workers)
    return _decomposition_result(
        community, h, res, start, steps, mip_gap, initial_state, episode_start, t0,
        message=lambda objective: (
            f"column generation: {res.rounds} rounds, {res.columns} columns, master "
            f"{res.rmp_objective:.6g}, bound {res.bound:.6g}, schedule {objective:.6g}"
        ),
        extra={
            "method": "column_generation",
            "bound_method": BOUND_METHOD,
            "rounds": res.rounds,
            "columns": res.columns,
            "rmp_objective_usd": res.rmp_objective,
            "history": [list(map(float, r)) for r in res.history],
        },
    )  # fmt: skip


def _decomposition_result(
    community: Community,
    h: Any,
    res: Any,
    start: int,
    steps: int,
    mip_gap: float,
    initial_state: dict[str, Any] | None,
    episode_start: bool,
    t0: float,
    message: Callable[[float], str],
    extra: dict[str, Any],
) -> CommunityMilpResult:
    """The result of a decomposition method (column generation, ``lp_dp``): its per-block
    ``res.schedule`` on the horizon ``h`` decoded to env actions and accounted with the env's
    equations, against its ``res.bound``; ``message(objective)`` is the one-line summary, and
    ``extra`` is completed with the energy the accounting clipped.  ``t0``: the method's start
    (``perf_counter``)."""
    from baselines_opt.community.accounting import schedule_cost
    from baselines_opt.community.column_generation import decode_schedule, make_blocks

    # make_blocks is cheap: the decoder reads the blocks' kinds and indices
    plan = decode_schedule(community, h, make_blocks(community, h), res.schedule)
    acc = schedule_cost(
        community, plan["discrete"], plan["continuous"], start, initial_state, episode_start
    )
    objective = float(acc["cost_usd"].sum())
    gap = relative_gap(objective, res.bound)
    return _accounted_result(
        community,
        plan,
        acc["grid_kw"],
        start,
        steps,
        initial_state,
        objective_usd=objective,
        bound_usd=res.bound,
        gap=gap,
        status="optimal" if gap <= mip_gap * (1 + 1e-6) + 1e-9 else "time_limit",
        build_s=res.build_s,
        solve_s=time.perf_counter() - t0 - res.build_s,
        message=message(objective),
        extra={**extra, "clipped_kwh": float(acc["clipped_kw"].sum() * community.step_h)},
    )


def solve_by_lp_dp(
    community: Community,
    start: int,
    steps: int,
    time_limit_s: float,
    mip_gap: float,
    initial_state: dict[str, Any] | None,
    episode_start: bool,
    workers: int | None = None,
) -> CommunityMilpResult:
    """The MILP by its LP relaxation, heat pumps priced by dynamic programming and a fixed-mode
    LP (:mod:`~baselines_opt.community.lp_dp`): its schedule accounted by the env's equations,
    and the Lagrangian bound at the LP's duals."""
    from baselines_opt.community.lp_dp import BOUND_METHOD, solve_lp_dp

    t0 = time.perf_counter()
    h = build_horizon(community, start, steps, initial_state, episode_start)
    res = solve_lp_dp(community, h, time_limit_s, workers=workers)
    return _decomposition_result(
        community, h, res, start, steps, mip_gap, initial_state, episode_start, t0,
        message=lambda objective: (
            f"LP relaxation {res.lp_objective:.6g}, fixed-mode LP {res.fixed_objective:.6g}, "
            f"bound {res.bound:.6g} (cell-DP bounds of {res.hp_cell_bounds} heat pumps, MIPs "
            f"{res.hp_mip_limit_s:.2f} s each), schedule {objective:.6g}"
        ),
        extra={
            "method": "lp_dp",
            "bound_method": BOUND_METHOD,
            "lp_objective_usd": res.lp_objective,
            "fixed_objective_usd": res.fixed_objective,
            "hp_mip_limit_s": res.hp_mip_limit_s,
            "hp_cell_bounds": res.hp_cell_bounds,
            **{f"{k}_s": v for k, v in res.timings.items()},
        },
    )  # fmt: skip


#: "auto" solves the whole MILP with HiGHS up to this many device-steps (devices x steps; the
#: week of 50 prosumers has 95 devices x 167 steps = 15,865 and goes to ``lp_dp``: 0.19 % in
#: 60 s there against 0.34 % in 70 s for the exact method, whose bound is the same Lagrangian
#: one and whose branch and bound does not raise it in a minute) [-]
EXACT_MAX_DEVICE_STEPS = 10_000
#: "auto" takes ``lp_dp`` up to this many device-steps (the week of 500 prosumers: 950 x 167),
#: column generation above: the LP relaxation of the whole week takes HiGHS's interior-point
#: method 64 s at 200 prosumers, 133 s at 500 and more than 355 s at 1,000 (wall, on 2 busy
#: cores), where column generation still reaches 1.1 % in 600 s [-]
LP_DP_MAX_DEVICE_STEPS = 200_000
METHODS = ("auto", "exact", "lp_dp", "columns")


def choose_method(community: Community, steps: int) -> str:
    """``exact`` (one HiGHS MILP) for a small model, ``lp_dp`` (LP relaxation, heat pumps by
    dynamic programming at its prices) up to ``LP_DP_MAX_DEVICE_STEPS``, ``columns`` (column
    generation) above: the whole MILP's branch and bound never closes the week of 200
    prosumers, and column generation's bound converges slowly where one LP still solves in
    a minute or two (200 prosumers, 120 s: column generation 2.5–3.2 %, ``lp_dp`` 0.2 %; 500
    in 300 s: 1.6 % against 0.13 %)."""
    bat, hp, ev = device_sets(community)
    size = (len(bat) + len(hp) + len(ev)) * steps
    if size <= EXACT_MAX_DEVICE_STEPS:
        return "exact"
    return "lp_dp" if size <= LP_DP_MAX_DEVICE_STEPS else "columns"


def solve_community_milp(
    community: Community,
    start: int = 0,
    steps: int | None = None,
    time_limit_s: float = 60.0,
    mip_gap: float = 1e-3,
    threads: int | None = None,
    initial_state: dict[str, Any] | None = None,
    episode_start: bool | None = None,
    warm_start: bool = True,
    tee: bool = False,
    carbon_usd_per_kg: float = 0.0,
    method: str = "auto",
    workers: int | None = None,
) -> CommunityMilpResult:
    """Solve the perfect-foresight MILP over span steps ``[start, start + steps)``; always
    return a schedule.

    ``method``: ``exact`` = the whole MILP with HiGHS (:func:`solve_exact`), ``lp_dp`` = LP
    relaxation, heat pumps priced by dynamic programming, fixed-mode LP
    (:func:`solve_by_lp_dp`, for a few hundred prosumers), ``columns`` = column generation per
    device (:func:`solve_by_columns`, for a thousand), ``auto`` = :func:`choose_method`.  An
    answer always comes back: if the exact solve finds no incumbent in its time limit, or
    ``lp_dp`` no LP relaxation in its share, column generation answers in the time left (at
    least a quarter of the limit); if that fails too, a feasible thermostat schedule
    (:func:`fallback_schedule`) does, with status ``fallback``.  ``extra["method"]`` and
    ``extra["bound_method"]`` say which method gave the schedule and the bound.  The other
    arguments are those of :func:`solve_exact`; ``workers``: processes of ``lp_dp`` and
    column generation; ``carbon_usd_per_kg``: carbon price c_CO2 [$/kg] in the objective of
    every method (:mod:`~baselines_opt.community.carbon`): ``objective_usd`` then includes
    the carbon charge, which the env does not bill.
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r}; allowed: {', '.join(METHODS)}")
    steps = community.steps - start - 1 if steps is None else int(steps)
    if episode_start is None:
        episode_start = initial_state is None
    chosen = choose_method(community, steps) if method == "auto" else method
    community = carbon_priced(community, carbon_usd_per_kg)  # objective term, carbon.py
    t0 = time.perf_counter()
    failures: list[str] = []
    if chosen == "exact":
        try:
            return solve_exact(
                community, start, steps, time_limit_s, mip_gap, threads, initial_state,
                episode_start, warm_start, tee,
            )  # fmt: skip
        except SolverError as exc:
            failures.append(f"exact: {exc}")
    if chosen == "lp_dp":
        try:
            return solve_by_lp_dp(
                community, start, steps, time_limit_s, mip_gap, initial_state, episode_start,
                workers,
            )  # fmt: skip
        except SolverError as exc:
            failures.append(f"lp_dp: {exc}")
    left = max(time_limit_s - (time.perf_counter() - t0), 0.25 * time_limit_s)
    try:
        res = solve_by_columns(
            community, start, steps, left, mip_gap, initial_state, episode_start, workers
        )
        res.extra["failed_methods"] = failures
        return res
    except Exception as exc:  # noqa: BLE001 - the thermostat schedule still answers
        failures.append(f"columns: {type(exc).__name__}: {exc}")
    res = fallback_schedule(community, start, steps, initial_state, episode_start)
    res.extra["failed_methods"] = failures
    res.message = "fallback schedule; " + "; ".join(failures)
    return res


def fallback_schedule(
    community: Community,
    start: int,
    steps: int,
    initial_state: dict[str, Any] | None,
    episode_start: bool,
) -> CommunityMilpResult:
    """A feasible schedule that needs no solver: batteries idle, EVs charged at full power
    while present, heat pumps as a thermostat holding θ_lo from above (item 3); accounted by
    the env's equations, with no bound (``bound_usd = -inf``)."""
    from baselines_opt.community.accounting import schedule_cost
    from baselines_opt.community.column_generation import decode_schedule, make_blocks, round_hp

    t0 = time.perf_counter()
    h = build_horizon(community, start, steps, initial_state, episode_start)
    blocks = make_blocks(community, h)
    T = h.T
    xs = []
    for blk in blocks:
        if blk.kind == "battery":
            e0 = float(blk.lp.row_lower_[0])
            xs.append(np.concatenate([np.zeros(2 * T), np.full(T, e0)]))
        elif blk.kind == "ev":
            pres = h.ev_present[:, blk.k]
            p = np.asarray(blk.lp.col_upper_[:T], np.float64)  # ev_kw · present
            x = np.concatenate([p, np.zeros(T), np.zeros(blk.lp.num_col_ - 2 * T)])
            x[:T] = np.where(pres, p, 0.0)
            xs.append(x)
        else:
            target = np.full(T, blk.meta["lo"])
            xs.append(round_hp(blk, np.concatenate([np.zeros(T), target, np.zeros(2 * T)])))
    plan = decode_schedule(community, h, blocks, xs)
    plan["battery_kwh"][:] = np.nan  # not tracked: the env's replay is the account
    acc = schedule_cost(
        community, plan["discrete"], plan["continuous"], start, initial_state, episode_start
    )
    return _accounted_result(
        community,
        plan,
        acc["grid_kw"],
        start,
        steps,
        initial_state,
        objective_usd=float(acc["cost_usd"].sum()),
        bound_usd=-math.inf,
        gap=math.inf,
        status="fallback",
        build_s=time.perf_counter() - t0,
        solve_s=0.0,
        extra={"method": "fallback", "bound_method": "none"},
    )


def _accounted_result(
    community: Community,
    plan: dict[str, np.ndarray],
    grid_kw: np.ndarray,
    start: int,
    steps: int,
    initial_state: dict[str, Any] | None,
    **fields: Any,
) -> CommunityMilpResult:
    """The result of a decoded schedule (``decode_schedule``'s ``plan``) whose grid exchange
    ``grid_kw`` [kW] the env's equations accounted (``schedule_cost``): the flows derived
    from it, the plan's device series, and ``fields`` (objective, bound, status, timings)."""
    g = grid_kw
    peak0 = (initial_state or {}).get("peak_kw", 0.0)
    return CommunityMilpResult(
        discrete=plan["discrete"],
        continuous=plan["continuous"],
        grid_kw=g,
        import_kw=np.maximum(g, 0.0),
        export_kw=np.maximum(-g, 0.0),
        over_kw=np.maximum(np.abs(g) - community.transformer_kw, 0.0),
        battery_kw=plan["battery_kw"],
        ev_kw=plan["ev_kw"],
        hp_kw=plan["hp_kw"],
        battery_kwh=plan["battery_kwh"],
        ev_kwh=plan["ev_kwh"],
        theta_c=plan["theta_c"],
        peak_kw=float(max(np.maximum(g, 0.0).max(initial=0.0), peak0)),
        start=start,
        steps=steps,
        **fields,
    )


def solve_exact(
    community: Community,
    start: int = 0,
    steps: int | None = None,
    time_limit_s: float = 60.0,
    mip_gap: float = 1e-3,
    threads: int | None = None,
    initial_state: dict[str, Any] | None = None,
    episode_start: bool | None = None,
    warm_start: bool = True,
    tee: bool = False,
) -> CommunityMilpResult:
    """Solve the whole perfect-foresight MILP over span steps ``[start, start + steps)`` with
    HiGHS (the strategy of the module docstring).

    Args:
        community: the data (its docstring is the model).
        start: first span step of the episode.
        steps: episode length T [steps]; default: every step after ``start`` but the last, so
            departures on the last step are judged with one step of look-ahead.  Pass the env's
            ``episode_len`` to optimise exactly its episode.
        time_limit_s: HiGHS time limit [s]; reaching it with an incumbent gives
            ``status == "time_limit"``.
        mip_gap: relative MIP gap to stop at [-].
        threads: HiGHS threads (None = HiGHS default).
        initial_state: device state before the first step, keys ``battery_kwh [N]``,
            ``ev_kwh [N]``, ``theta_c [N]``, ``peak_kw`` (float); missing keys take the
            community's episode-start values.
        episode_start: whether ``start`` is the first step of an env episode (an EV present
            there arrives, item 1); default: True when ``initial_state`` is None.
        warm_start: first find a start incumbent and a lower bound by Lagrangian
            decomposition (:func:`decomposition_start`, up to ``HP_TIME_SHARE`` of the time
            limit); stop there if it is within ``mip_gap``, else hand the start to HiGHS.
            Without it HiGHS reaches only ~0.4 % on one day of 50 prosumers in a minute.
        tee: stream the HiGHS log.

    Returns:
        The schedule, its cost and the solver's report.

    Raises:
        ValueError: steps outside the span or an initial state outside its bounds.
        baselines_opt.solve.SolverError: no usable solution (e.g. nothing found in time).
    """
    steps = community.steps - start - 1 if steps is None else int(steps)
    if episode_start is None:
        episode_start = initial_state is None
    t0 = time.perf_counter()
    h = build_horizon(community, start, steps, initial_state, episode_start)
    mod = build_model(community, h, dense=False)
    build_s = time.perf_counter() - t0

    options = SolveOptions(time_limit_s=time_limit_s, mip_gap=mip_gap, threads=threads, tee=tee)
    solver = make_highs(persistent_updates=True)
    stats: dict[str, Any] = {}
    t_solve = time.perf_counter()
    lp_bound = bound = -math.inf
    if warm_start:
        lp_bound, bound = decomposition_start(
            community, h, mod, solver, options, HP_TIME_SHARE * time_limit_s, stats
        )
    else:
        relax_exclusivity(mod, h)  # before the first solve: HiGHS has not seen the model yet
    start_obj = _restore_start(mod) if warm_start else math.inf
    rep = None
    if relative_gap(start_obj, bound) <= mip_gap:
        status, message = (
            "optimal",
            (
                f"decomposition start within the gap: objective {start_obj:.6g}, "
                f"bound {bound:.6g}, gap {relative_gap(start_obj, bound):.3%}"
            ),
        )
        _restore_start(mod, load=True)
    else:
        # the final fixed-integer LP (polish, below) runs inside the limit: keep its time
        # free, estimated by the LP relaxation's (the same model, fewer free columns)
        reserve = min(POLISH_RESERVE_MAX_SHARE * time_limit_s, stats.get("lp_s", 0.0))
        remaining = time_limit_s - reserve - (time.perf_counter() - t_solve)
        if mod.start is not None:
            _restore_start(mod, load=True)
            set_start(solver, list(mod.m.component_data_objects(pyo.Var)))
        while remaining >= 0.5 or (mod.start is None and rep is None):
            try:
                rep = solve_highs(
                    mod.m,
                    replace(options, time_limit_s=max(1.0, remaining)),
                    solver=solver,
                    what="community MILP",
                )
            except SolverError:
                if mod.start is None and rep is None:
                    raise
                break
            added = lazy_battery(mod)  # charge and discharge at once: add binaries, again
            if not added:
                break
            stats["lazy_battery_binaries"] = stats.get("lazy_battery_binaries", 0) + len(added)
            stats["lazy_rounds"] = stats.get("lazy_rounds", 0) + 1
            solver.update_variables(added)
            remaining = time_limit_s - reserve - (time.perf_counter() - t_solve)
        if rep is None or rep.objective > start_obj:
            _restore_start(mod, load=True)  # the decomposition incumbent is better: keep it
        status = rep.status if rep is not None else "time_limit"
        bound = max(bound, rep.bound if rep is not None else -math.inf)
        message = rep.message if rep is not None else "HiGHS found nothing better than the start"
    bound_method = (
        "HiGHS branch and bound"
        if rep is not None and rep.bound >= bound - 1e-9 * max(1.0, abs(bound))
        else "lagrangian per heat pump (LP duals)"
    )
    if lp_bound >= bound:
        bound_method = "LP relaxation"
    bound = max(bound, lp_bound)
    # Polish: with the integers fixed, the LP makes every priced slack tight, so the reported
    # objective is exactly what the env charges for this schedule; battery binaries are added
    # lazily wherever the LP would charge and discharge at once.
    incumbent = {id(v): v.value for v in mod.m.component_data_objects(pyo.Var)}
    inc_obj = min(start_obj, rep.objective if rep is not None else math.inf)
    fixed = _fix_integers(mod)
    solver.update_variables(fixed)
    try:
        polish = solve_lazy(
            mod,
            solver,
            SolveOptions(
                time_limit_s=max(POLISH_MIN_S, time_limit_s - (time.perf_counter() - t_solve)),
                mip_gap=0.0,
                threads=threads,
            ),
            "community MILP with fixed integers",
            stats,
        )
        objective = polish.objective
    except SolverError:  # keep the unpolished incumbent (its slacks may be slightly loose)
        for v in mod.m.component_data_objects(pyo.Var):
            v.set_value(incumbent[id(v)], skip_validation=True)
        objective = inc_obj
    solve_s = time.perf_counter() - t_solve

    st = initial_state or {}
    e0_all = np.asarray(st.get("battery_kwh", community.battery_init_kwh), np.float64)
    th0_all = np.asarray(st.get("theta_c", community.theta_init_c), np.float64)
    plan = decode_plan(community, mod, e0_all, th0_all)
    gap = relative_gap(objective, bound)
    if status == "optimal" and gap > mip_gap * (1 + 1e-6) + 1e-9:
        status = "time_limit"  # HiGHS stopped early; only the weaker bound is proven
    return CommunityMilpResult(
        objective_usd=objective,
        bound_usd=bound,
        gap=gap,
        status=status,
        build_s=build_s,
        solve_s=solve_s,
        discrete=plan.discrete,
        continuous=plan.continuous,
        grid_kw=plan.import_kw - plan.export_kw,
        import_kw=plan.import_kw,
        export_kw=plan.export_kw,
        over_kw=plan.over_kw,
        battery_kw=plan.battery_kw,
        ev_kw=plan.ev_kw,
        hp_kw=plan.hp_kw,
        battery_kwh=plan.battery_kwh,
        ev_kwh=plan.ev_kwh,
        theta_c=plan.theta_c,
        peak_kw=plan.peak_kw,
        start=start,
        steps=steps,
        message=message,
        extra={
            "method": "exact",
            "bound_method": bound_method,
            "mip_objective_usd": rep.objective if rep is not None else math.nan,
            "start_objective_usd": start_obj,
            "lp_bound_usd": lp_bound,
            **stats,
            "n_vars": mod.m.nvariables(),
            "n_constraints": mod.m.nconstraints(),
        },
    )
