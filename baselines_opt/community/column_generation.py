"""The community MILP at operator scale: Dantzig–Wolfe column generation per device, with the
Lagrangian bound it proves.

The MILP of :mod:`baselines_opt.community.model` couples its devices only through the
community power balance (item 7)::

    imp_t − exp_t = net_t + Σ_b d_b,t        (d_b,t: power of device b at step t [kW])

Every battery, EV and heat pump is otherwise its own small problem (items 2 to 5, 8), and the
community variables ``imp, exp, over, peak`` carry the grid, transformer and peak costs (item 7).
Column generation (Dantzig & Wolfe 1960, Oper. Res. 8(1); the bound as in Lübbecke &
Desrosiers 2005, "Selected topics in column generation", Oper. Res. 53(6), §2.1, eq. (9)):

* **Restricted master LP** (RMP): the community variables and, per device ``b``, a convex
  combination ``Σ_k μ_bk = 1`` of the schedules (columns) found so far; its balance duals
  ``λ_t`` [$/kW per step] price the devices' power.
* **Pricing**: each device solves its own problem with its power priced at ``λ``:
  ``v_b(λ) = min_x f_b(x) + Σ_t λ_t d_b,t(x)`` (batteries and EVs: LPs; heat pumps: MIPs with
  integer modes).  Device problems are built once as ``highspy`` models; each round only
  changes their costs (a warm-started simplex for the LPs).  They are shared out over worker
  processes (``workers``).
* **Bound** (weak Lagrangian duality, valid for *any* λ):
  ``L(λ) = Σ_t λ_t net_t + C(λ) + Σ_b v_b(λ) <= optimum``, where ``C(λ)`` is the community
  part ``min cost(imp, exp, over, peak) − λ·(imp − exp)`` (a small LP with the import / export
  exclusivity relaxed to its convex hull) and each heat pump contributes HiGHS's proven MIP
  bound of its subproblem.  The best ``L`` over the rounds is the reported bound; the method
  is named ``lagrangian (column generation)``.
* **Stabilisation** (Wentges 1997, "Weighted Dantzig–Wolfe decomposition for linear
  mixed-integer programming", ITOR 4(2), eq. (6)): devices are priced at
  ``α λ_best + (1 − α) λ_RMP`` (``α = SMOOTHING``), which damps the oscillation of the duals.
* **Incumbent**: every heat pump takes its integer schedule at the best prices (its MIP,
  started from the cheaper there of the master's relaxed schedule rounded up and its DP
  schedule, :mod:`~baselines_opt.community.hp_dp`; the better of start and MIP), the RMP is
  re-solved with those fixed, and batteries and EVs take the RMP's convex combination of their
  columns (feasible: their sets are convex), priced again against the fixed heat pumps.  The
  schedule is then accounted with the env's own equations
  (:func:`~baselines_opt.community.accounting.schedule_cost`): the reported objective is
  exactly what the env charges for it.

The relative gap ``(objective − bound) / objective`` shrinks with the community: at most ``T``
(linking rows) devices mix columns in an optimal RMP basis, so the integer rounding costs a
share of order ``T / (devices)`` of the device flexibility.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from baselines_opt.community.decomposition import _hp_lp
from baselines_opt.community.horizon import Horizon, device_sets
from baselines_opt.community.hp_dp import hp_schedules
from gridmarl.energy.community import Community

#: weight of the best dual point in the prices the devices see (Wentges smoothing) [-]
SMOOTHING = 0.8
#: relative MIP gap of each heat-pump subproblem (its proven bound enters L(λ)) [-]
HP_SUB_GAP = 1e-4
#: share of the time limit for the rounds with relaxed heat pumps [-]
LP_SHARE = 0.55
#: share of the time limit the heat-pump MIPs may use after them [-]; the rest polishes the
#: batteries and EVs against the heat pumps' fixed integer schedules
MIP_SHARE = 0.2
BOUND_METHOD = "lagrangian (column generation)"


@dataclass
class Block:
    """One device's own problem as a ``highspy`` LP / MIP.

    Attributes:
        kind: ``battery`` | ``ev`` | ``hp``.
        k: index of the device in its set (``bat``, ``ev`` or ``hp`` of ``device_sets``).
        lp: the ``highspy.HighsLp``; its ``col_cost_`` is the device's own cost ``f_b`` [$].
        d_rows, d_cols, d_vals: ``d_t = Σ d_vals · x[d_cols]`` over entries with row ``t``
            (the device's power [kW]).
        integer: whether the problem has integer columns (heat-pump modes).
    """

    kind: str
    k: int
    lp: Any
    d_rows: np.ndarray
    d_cols: np.ndarray
    d_vals: np.ndarray
    integer: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


def _colwise(n_col: int, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> tuple:
    order = np.lexsort((rows, cols))
    rows, cols, vals = rows[order], cols[order], vals[order]
    start = np.searchsorted(cols, np.arange(n_col + 1)).astype(np.int32)
    return start, rows.astype(np.int32), vals.astype(np.float64)


def _lp(
    cost: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    rlo: np.ndarray,
    rhi: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
) -> Any:
    import highspy

    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(cost), len(rlo)
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, lo, hi
    lp.row_lower_, lp.row_upper_ = rlo, rhi
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    s, i, v = _colwise(len(cost), rows, cols, vals)
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = s, i, v
    return lp


def battery_block(c: Community, h: Horizon, k: int, n: int) -> Block:
    """Battery ``n``: columns ``pc[T], pd[T], e[T]``; rows the dynamics (item 3); cost the
    degradation (item 8); power ``pc − pd``."""
    T, dt = h.T, c.step_h
    t = np.arange(T)
    pc, pd, e = t, T + t, 2 * T + t
    rows = np.concatenate([t, t[1:], t, t])
    cols = np.concatenate([e, e[:-1], pc, pd])
    vals = np.concatenate(
        [
            np.ones(T),
            -np.ones(T - 1),
            np.full(T, -c.eta_charge * dt),
            np.full(T, dt / c.eta_discharge),
        ]
    )
    rhs = np.zeros(T)
    rhs[0] = h.e0[k]
    deg = c.degradation_usd_per_kwh * dt * h.w
    p = float(c.battery_kw[n])
    lp = _lp(
        np.concatenate([deg, deg, np.zeros(T)]),
        np.concatenate([np.zeros(2 * T), np.full(T, c.battery_min_kwh[n])]),
        np.concatenate([np.full(2 * T, p), np.full(T, c.battery_kwh[n])]),
        rhs,
        rhs,
        rows,
        cols,
        vals,
    )
    return Block(
        "battery", k, lp, np.concatenate([t, t]), np.concatenate([pc, pd]),
        np.concatenate([np.ones(T), -np.ones(T)]),
    )  # fmt: skip


def ev_block(c: Community, h: Horizon, k: int, n: int) -> Block:
    """EV ``n``: columns ``pev[T], eev[T], short[departures]``; rows the dynamics with arrival
    resets (items 1, 3) and the departure shortfalls (item 5); power ``pev``."""
    T, dt = h.T, c.step_h
    t = np.arange(T)
    reset, present = h.ev_reset[:, k], h.ev_present[:, k]
    deps = np.flatnonzero(h.ev_depart[:, k])
    pev, eev, sh = t, T + t, 2 * T + np.arange(len(deps))
    carry = t[1:][~reset[1:]]  # eev_t − eev_{t−1} where no new stay starts
    rows = np.concatenate([t, carry, t, T + np.arange(len(deps)), T + np.arange(len(deps))])
    cols = np.concatenate([eev, eev[carry - 1], pev, sh, eev[deps]])
    vals = np.concatenate(
        [
            np.ones(T),
            -np.ones(len(carry)),
            np.full(T, -c.ev_eta * dt),
            np.ones(len(deps)),
            np.ones(len(deps)),
        ]
    )
    rhs = np.where(reset, h.ev_arrival[:, k], 0.0)
    if not reset[0]:
        rhs[0] = h.ev0[k]
    target = np.full(len(deps), float(c.ev_target_kwh[n]))
    inf = math.inf
    lp = _lp(
        np.concatenate([np.zeros(2 * T), np.full(len(deps), c.unmet_usd_per_kwh)]),
        np.zeros(2 * T + len(deps)),
        np.concatenate([c.ev_kw[n] * present, np.full(T, c.ev_kwh[n]), np.full(len(deps), inf)]),
        np.concatenate([rhs, target]),
        np.concatenate([rhs, np.full(len(deps), inf)]),
        rows,
        cols,
        vals,
    )
    return Block("ev", k, lp, t, pev, np.ones(T))


def hp_block(c: Community, h: Horizon, k: int, n: int) -> Block:
    """Heat pump ``n``: :func:`~baselines_opt.community.decomposition._hp_lp` (columns
    ``mode[T], θ[T], v_lo[T], v_hi[T]``, items 2 to 4); its modes are made integer only in
    the final pricing (``integer=True``); power ``P_hp · mode / (M − 1)``."""

    m1 = max(c.hp_modes - 1, 1)
    lp = _hp_lp(
        float(c.thermal_a()[n]),
        float(h.theta0[k]),
        h.t_out,
        h.hp_gain[:, k],
        np.zeros(h.T),
        c.comfort_usd_per_c_h * c.step_h * h.w,
        float(c.theta_lo_c[n]),
        float(c.theta_hi_c[n]),
        float(m1),
    )
    T = h.T
    t = np.arange(T)
    meta = {
        "a": float(c.thermal_a()[n]),
        "theta0": float(h.theta0[k]),
        "t_out": h.t_out,
        "gain": h.hp_gain[:, k],
        "m1": m1,
        "lo": float(c.theta_lo_c[n]),
        "hi": float(c.theta_hi_c[n]),
    }
    return Block("hp", k, lp, t, t, np.full(T, float(c.hp_kw[n]) / m1), integer=True, meta=meta)


def round_hp(blk: Block, x: np.ndarray) -> np.ndarray:
    """An integer heat-pump solution near the (fractional) ``x``: at each step the smallest mode
    that keeps θ_{t+1} >= x's θ_{t+1} (item 3), tracked from the rounded path; slacks exact."""
    q = blk.meta
    T = len(q["t_out"])
    th_x = x[T : 2 * T]
    modes, theta = np.zeros(T), np.zeros(T)
    th = q["theta0"]
    for t in range(T):
        free = q["a"] * th + (1.0 - q["a"]) * q["t_out"][t]
        g = q["gain"][t]
        need = (th_x[t] - free) / g if g > 0 else 0.0
        modes[t] = min(max(math.ceil(need - 1e-6), 0), q["m1"])
        th = free + g * modes[t]
        theta[t] = th
    return np.concatenate(
        [modes, theta, np.maximum(q["lo"] - theta, 0.0), np.maximum(theta - q["hi"], 0.0)]
    )


def _priced_cost(blk: Block, x: np.ndarray, lam: np.ndarray) -> float:
    """f_b(x) + λ·d_b(x): the device's own cost plus its power at the prices ``lam`` [$]."""
    d = np.bincount(blk.d_rows, blk.d_vals * x[blk.d_cols], minlength=len(lam))
    return float(np.asarray(blk.lp.col_cost_, np.float64) @ x + lam @ d)


def make_blocks(c: Community, h: Horizon) -> list[Block]:
    """Every device's block, batteries, then EVs, then heat pumps (``device_sets`` order)."""
    bat, hp, ev = device_sets(c)
    out = [battery_block(c, h, k, int(n)) for k, n in enumerate(bat)]
    out += [ev_block(c, h, k, int(n)) for k, n in enumerate(ev)]
    if c.hp_modes > 1:
        out += [hp_block(c, h, k, int(n)) for k, n in enumerate(hp)]
    return out


class _Solver:
    """Persistent ``highspy`` models of a list of blocks; ``price(λ)`` solves them all.

    No ``threads`` option is set: HiGHS keeps one task scheduler per process and refuses a
    solve that asks for another thread count than the one it started with
    (:func:`baselines_opt.solve.use_threads`); these small LPs run single-threaded anyway."""

    def __init__(self, blocks: list[Block]) -> None:
        import highspy

        self.blocks = blocks
        self.models = []
        for b in blocks:
            hs = highspy.Highs()
            hs.setOptionValue("output_flag", False)
            # no presolve: each round changes only the costs, and simplex restarts from the
            # last basis (presolve would discard it; measured 5x slower per round)
            hs.setOptionValue("presolve", "off")
            hs.passModel(b.lp)
            self.models.append(hs)

    def price(
        self,
        lam: np.ndarray,
        integer: bool = False,
        time_limit_s: float = math.inf,
        starts: dict[int, np.ndarray] | None = None,
        skip_integer: bool = False,
    ) -> list[tuple[float, float, np.ndarray] | None]:
        """Per block: (own cost f_b(x), proven lower bound of v_b(λ), solution x); None for
        the heat pumps with ``skip_integer``.

        ``integer``: heat-pump modes integer (a MIP each, within ``time_limit_s`` [s] and
        ``HP_SUB_GAP``, started from ``starts[i]`` for the i-th block when given); otherwise
        their LP relaxation (a lower bound all the same)."""
        import highspy

        out = []
        for i, (b, hs) in enumerate(zip(self.blocks, self.models, strict=True)):
            if skip_integer and b.integer:
                out.append(None)
                continue
            base = np.asarray(b.lp.col_cost_, np.float64)
            cost = base + np.bincount(b.d_cols, b.d_vals * lam[b.d_rows], minlength=len(base))
            hs.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), cost)
            mip = integer and b.integer
            if mip:
                T = len(b.d_cols)
                idx = np.asarray(b.d_cols, np.int32)
                hs.changeColsIntegrality(T, idx, np.full(T, 1, np.uint8))  # 1 = kInteger
                hs.setOptionValue("mip_rel_gap", HP_SUB_GAP)
                hs.setOptionValue("presolve", "on")
                hs.setOptionValue("time_limit", float(max(time_limit_s, 0.05)))
                if starts is not None and i in starts:
                    sol = highspy.HighsSolution()
                    sol.col_value = list(map(float, starts[i]))
                    sol.value_valid = True
                    hs.setSolution(sol)
            hs.run()
            info = hs.getInfo()
            st = hs.getModelStatus()
            ok = st in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit)
            if not ok or info.primal_solution_status != 2:
                raise RuntimeError(f"{b.kind} subproblem {b.k}: HiGHS status {st}")
            x = np.asarray(hs.getSolution().col_value, np.float64)
            val = float(info.objective_function_value)
            bound = float(info.mip_dual_bound) if mip else val
            if not math.isfinite(bound):
                bound = -math.inf
            if mip:
                hs.changeColsIntegrality(T, idx, np.zeros(T, np.uint8))
                hs.setOptionValue("time_limit", math.inf)
                hs.setOptionValue("presolve", "off")
            out.append((float(base @ x), min(bound, val), x))
        return out


def _worker(conn: Any, blocks: list[Block]) -> None:
    import highspy

    # a forked child inherits the parent's HiGHS task scheduler without its threads: start anew
    highspy.Highs.resetGlobalScheduler(True)
    solver = _Solver(blocks)
    while True:
        msg = conn.recv()
        if msg is None:
            break
        try:
            conn.send(solver.price(*msg))
        except Exception as exc:  # noqa: BLE001 - reported by the parent
            conn.send(exc)
    conn.close()


class Pricer:
    """The device blocks shared out over ``workers`` processes (1 = in this process)."""

    def __init__(self, blocks: list[Block], workers: int) -> None:
        self.n = len(blocks)
        self.workers = max(1, min(int(workers), self.n or 1))
        self.parts = [list(range(i, self.n, self.workers)) for i in range(self.workers)]
        self.local: _Solver | None = None
        self.conns: list[Any] = []
        self.procs: list[Any] = []
        if self.workers == 1:
            self.local = _Solver(blocks)
            return
        ctx = mp.get_context("fork")
        for part in self.parts:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(child, [blocks[i] for i in part]), daemon=True)
            p.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(p)

    def price(
        self,
        lam: np.ndarray,
        integer: bool = False,
        time_limit_s: float = math.inf,
        starts: dict[int, np.ndarray] | None = None,
        skip_integer: bool = False,
    ) -> list[Any]:
        """Solve every block at prices ``lam``, in block order (``_Solver.price``; ``starts``
        keyed by block index)."""
        if self.local is not None:
            return self.local.price(lam, integer, time_limit_s, starts, skip_integer)
        for part, conn in zip(self.parts, self.conns, strict=True):
            mine = None
            if starts is not None:
                mine = {j: starts[i] for j, i in enumerate(part) if i in starts}
            conn.send((lam, integer, time_limit_s, mine, skip_integer))
        out: list[Any] = [None] * self.n
        for part, conn in zip(self.parts, self.conns, strict=True):
            res = conn.recv()
            if isinstance(res, Exception):
                raise res
            for i, r in zip(part, res, strict=True):
                out[i] = r
        return out

    def close(self) -> None:
        """Stop the worker processes."""
        for conn in self.conns:
            try:
                conn.send(None)
                conn.close()
            except OSError:
                pass
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        self.conns, self.procs = [], []


@dataclass
class CGResult:
    """Outcome of :func:`column_generation`.

    Attributes:
        bound: best Lagrangian bound L(λ) [$].
        rmp_objective: last restricted-master value (a relaxation's value, not a schedule) [$].
        lp_bound: best L(λ) with the heat pumps' LP relaxations (before step 2) [$].
        fixed_objective: the master's value with the heat pumps' integer schedules fixed [$].
        schedule: per block the chosen solution (``x``, the convex combination for LPs).
        rounds: pricing rounds; columns: columns in the master; history: per round
            ``(elapsed [s], rmp [$], bound [$])``.
        build_s: device and master model construction [s].
    """

    bound: float
    rmp_objective: float
    lp_bound: float
    fixed_objective: float
    schedule: list[np.ndarray]
    rounds: int
    polish_rounds: int
    columns: int
    build_s: float
    history: list[tuple[float, float, float]] = field(default_factory=list)


class _Master:
    """The restricted master LP (``highspy``): community columns, then device columns."""

    def __init__(self, c: Community, h: Horizon, blocks: list[Block]) -> None:
        import highspy

        T, dt = h.T, c.step_h
        bat, hp, ev = device_sets(c)
        self.T, self.nb = T, len(blocks)
        gmax, gmin = h.g_bounds(c, bat, hp, ev)
        t = np.arange(T)
        imp, exp, over, peak = t, T + t, 2 * T + t, 3 * T
        # rows: balance [0, T), over_def [T, 2T), peak_def [2T, 3T), exclusivity hull
        # [3T, 4T), convexity [4T, 4T + B)
        rows = np.concatenate(
            [t, t, T + t, T + t, T + t, 2 * T + t, 2 * T + t, 3 * T + t, 3 * T + t]
        )
        cols = np.concatenate([imp, exp, over, imp, exp, np.full(T, peak), imp, imp, exp])
        vals = np.concatenate(
            [np.ones(T), -np.ones(T), np.ones(T), -np.ones(T), -np.ones(T), np.ones(T), -h.w,
             1.0 / gmax, 1.0 / gmin]
        )  # fmt: skip
        inf = highspy.kHighsInf
        limit = float(c.transformer_kw)
        self.cost0 = np.concatenate(
            [
                dt * h.price,
                -dt * h.feed_in,
                c.over_limit_usd_per_kwh * dt * h.w,
                [c.peak_usd_per_kw],
            ]
        )
        self.offset = -c.peak_usd_per_kw * h.peak0
        n_row = 4 * T + self.nb
        rlo = np.concatenate(
            [h.net_kw, np.full(T, -limit), np.zeros(T), np.full(T, -inf), np.ones(self.nb)]
        )
        rhi = np.concatenate(
            [h.net_kw, np.full(T, inf), np.full(T, inf), np.ones(T), np.ones(self.nb)]
        )
        lo = np.concatenate([np.zeros(3 * T), [h.peak0]])
        hi = np.full(3 * T + 1, inf)
        lp = _lp(self.cost0, lo, hi, rlo[: 4 * T], rhi[: 4 * T], rows, cols, vals)
        lp.num_row_ = n_row
        lp.row_lower_, lp.row_upper_ = rlo, rhi
        self.hs = highspy.Highs()
        self.hs.setOptionValue("output_flag", False)
        self.hs.setOptionValue("presolve", "off")  # keep the basis as columns come in
        self.hs.passModel(lp)
        self.n_comm = 3 * T + 1
        self.col_block: list[int] = []
        self.col_x: list[np.ndarray] = []
        # the community part alone, for C(λ): same columns and rows, no balance / convexity
        self.comm = highspy.Highs()
        self.comm.setOptionValue("output_flag", False)
        self.comm.setOptionValue("presolve", "off")
        keep = rows >= T
        sub = _lp(self.cost0, lo, hi, rlo[T : 4 * T], rhi[T : 4 * T], rows[keep] - T,
                  cols[keep], vals[keep])  # fmt: skip
        self.comm.passModel(sub)

    def add(self, b: int, block: Block, cost: float, x: np.ndarray) -> None:
        """Add the column of block ``b`` with own cost ``cost`` [$] and solution ``x``."""
        d = np.bincount(block.d_rows, block.d_vals * x[block.d_cols], minlength=self.T)
        nz = np.flatnonzero(np.abs(d) > 1e-12)
        idx = np.concatenate([nz, [4 * self.T + b]]).astype(np.int32)
        val = np.concatenate([-d[nz], [1.0]])
        self.hs.addCol(float(cost), 0.0, 1.0, len(idx), idx, val)
        self.col_block.append(b)
        self.col_x.append(x)

    def solve(self) -> tuple[float, np.ndarray, np.ndarray]:
        """(objective [$], balance duals λ [T], column values)."""
        self.hs.run()
        sol = self.hs.getSolution()
        obj = float(self.hs.getInfo().objective_function_value) + self.offset
        return (
            obj,
            np.asarray(sol.row_dual[: self.T], np.float64),
            np.asarray(sol.col_value[self.n_comm :], np.float64),
        )

    def community_value(self, lam: np.ndarray) -> float:
        """C(λ) = min community cost − λ·(imp − exp) [$] (constant included)."""
        T = self.T
        cost = self.cost0.copy()
        cost[:T] -= lam
        cost[T : 2 * T] += lam
        self.comm.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), cost)
        self.comm.run()
        return float(self.comm.getInfo().objective_function_value) + self.offset

    def conv_dual(self, b: int) -> float:
        """Dual σ_b of block ``b``'s convexity row at the last solve [$]."""
        return float(self.hs.getSolution().row_dual[4 * self.T + b])

    def fix_columns(self, keep: np.ndarray) -> None:
        """Upper bound 1 on the device columns where ``keep``, 0 elsewhere."""
        n = len(self.col_block)
        idx = np.arange(self.n_comm, self.n_comm + n, dtype=np.int32)
        self.hs.changeColsBounds(n, idx, np.zeros(n), np.where(keep, 1.0, 0.0))


def column_generation(
    c: Community,
    h: Horizon,
    time_limit_s: float,
    gap: float = 1e-3,
    workers: int | None = None,
    min_rounds: int = 3,
) -> CGResult:
    """Dantzig–Wolfe column generation of the community MILP (module docstring).

    Args:
        c: the community; h: the horizon.
        time_limit_s: wall-clock budget of the rounds (the incumbent is built after) [s].
        gap: stop once (RMP − best bound) <= ``gap`` · |RMP| [-].
        workers: processes for the device problems (default: ``os.cpu_count()``, at most 4).
        min_rounds: rounds run even when the budget is spent (an answer always comes back).

    Returns:
        The bound, the incumbent's device solutions and the convergence history.
    """
    t0 = time.perf_counter()
    blocks = make_blocks(c, h)
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    pricer = Pricer(blocks, workers if len(blocks) >= 64 else 1)
    master = _Master(c, h, blocks)
    build_s = time.perf_counter() - t0
    # first prices [$/kW per step]: the balance duals of the community without its devices:
    # the import price where it imports, the feed-in price where it exports, ± the transformer
    # excess price where |net| exceeds the limit (item 7)
    over = c.over_limit_usd_per_kwh * h.w * (np.abs(h.net_kw) > c.transformer_kw)
    lam0 = c.step_h * np.where(h.net_kw >= 0.0, h.price + over, h.feed_in - over)
    history: list[tuple[float, float, float]] = []
    best_bound, best_lam = -math.inf, lam0
    rmp = math.inf
    lam_sep = lam0
    rounds = 0
    n_int = sum(b.integer for b in blocks)
    lp_budget = time_limit_s * (LP_SHARE if n_int else 1.0)

    def bound_at(lam: np.ndarray, priced: list) -> float:
        return float(lam @ h.net_kw) + master.community_value(lam) + sum(r[1] for r in priced)

    try:
        while True:  # 1. column generation with the heat pumps' LP relaxations
            priced = pricer.price(lam_sep)
            rounds += 1
            lb = bound_at(lam_sep, priced)
            if lb > best_bound:
                best_bound, best_lam = lb, lam_sep
            for b, (cost, _, x) in enumerate(priced):
                master.add(b, blocks[b], cost, x)
            rmp, lam_rmp, _ = master.solve()
            history.append((time.perf_counter() - t0, rmp, best_bound))
            if rmp - best_bound <= 0.1 * gap * max(abs(rmp), 1e-9):
                break
            if time.perf_counter() - t0 >= lp_budget and rounds >= min_rounds:
                break
            lam_sep = SMOOTHING * best_lam + (1.0 - SMOOTHING) * lam_rmp
        # 2. the heat pumps' MIPs at the best prices: integer schedules and a bound with the
        # heat pumps' integrality (Lagrangian relaxation, not only the LP's)
        int_bound = -math.inf
        int_cols: dict[int, int] = {}
        if n_int:
            # the relaxed heat pumps' schedules in the master, rounded up (MIP starts)
            _, _, mu = master.solve()
            col_block = np.asarray(master.col_block)
            starts = {}
            for b, blk in enumerate(blocks):
                if blk.integer:
                    mine = np.flatnonzero(col_block == b)
                    w = np.clip(mu[mine], 0.0, None)
                    w = w / w.sum() if w.sum() > 0 else np.full(len(mine), 1.0 / len(mine))
                    x = sum(wi * master.col_x[i] for wi, i in zip(w, mine, strict=True))
                    starts[b] = round_hp(blk, x)
            # ... or the heat pump's DP schedule at the best prices where it is cheaper there
            # (hp_dp.py: measured at 200 prosumers it beats HiGHS's 1-s MIP solutions)
            hp_idx = [b for b, blk in enumerate(blocks) if blk.integer]
            dp = hp_schedules([blocks[b] for b in hp_idx], best_lam)
            for b, x in zip(hp_idx, dp, strict=True):
                if _priced_cost(blocks[b], x, best_lam) < _priced_cost(
                    blocks[b], starts[b], best_lam
                ):
                    starts[b] = x
            per = MIP_SHARE * time_limit_s / max(1, -(-n_int // pricer.workers))
            priced = pricer.price(best_lam, integer=True, time_limit_s=per, starts=starts)
            int_bound = bound_at(best_lam, priced)
            for b, (cost, _, x) in enumerate(priced):
                if not blocks[b].integer:
                    continue
                blk = blocks[b]
                base = np.asarray(blk.lp.col_cost_, np.float64)
                if _priced_cost(blk, starts[b], best_lam) < _priced_cost(blk, x, best_lam):
                    x, cost = starts[b], float(base @ starts[b])  # the MIP ended above its start
                int_cols[b] = len(master.col_block)
                master.add(b, blk, cost, x)
            history.append((time.perf_counter() - t0, math.nan, max(best_bound, int_bound)))
        # 3. incumbent: each heat pump its integer column; batteries and EVs the convex
        # combination of theirs, priced again against those fixed heat-pump schedules while
        # time is left (their sets are convex, so every combination is a feasible schedule)
        col_block = np.asarray(master.col_block)
        keep = np.ones(len(col_block), bool)
        for b, blk in enumerate(blocks):
            if blk.integer:
                keep[col_block == b] = False
                keep[int_cols[b]] = True
        master.fix_columns(keep)
        final, lam_fix, mu = master.solve()
        polish = 0
        last_round = 0.0  # a polish round starts only if one as long as the last still fits [s]
        while time.perf_counter() - t0 + last_round < time_limit_s and n_int:
            t_round = time.perf_counter()
            priced = pricer.price(lam_fix, skip_integer=True)
            added = 0
            for b, r in enumerate(priced):
                if r is None:
                    continue
                cost, val, x = r
                sigma = float(master.conv_dual(b))
                if val - sigma < -1e-7 * max(1.0, abs(final)):  # negative reduced cost
                    master.add(b, blocks[b], cost, x)
                    added += 1
            polish += 1
            new_final, lam_fix, mu = master.solve()
            history.append((time.perf_counter() - t0, new_final, max(best_bound, int_bound)))
            last_round = time.perf_counter() - t_round
            if added == 0 or final - new_final <= 1e-6 * abs(final):
                final = new_final
                break
            final = new_final
        col_block = np.asarray(master.col_block)
        keep = np.concatenate([keep, np.ones(len(col_block) - len(keep), bool)])
    finally:
        pricer.close()
    lp_bound = best_bound
    best_bound = max(best_bound, int_bound)
    schedule = []
    for b in range(len(blocks)):
        mine = np.flatnonzero(col_block == b)
        w = np.clip(mu[mine], 0.0, None) * keep[mine]
        w = w / w.sum() if w.sum() > 0 else keep[mine] / keep[mine].sum()
        schedule.append(sum(wi * master.col_x[i] for wi, i in zip(w, mine, strict=True)))
    return CGResult(
        bound=best_bound,
        rmp_objective=rmp,
        lp_bound=lp_bound,
        fixed_objective=final,
        schedule=schedule,
        rounds=rounds,
        polish_rounds=polish,
        columns=len(col_block),
        build_s=build_s,
        history=history,
    )


def decode_schedule(
    c: Community, h: Horizon, blocks: list[Block], schedule: list[np.ndarray]
) -> dict[str, np.ndarray]:
    """The device solutions as env actions and trajectories (``[T, N]`` arrays, the fields of
    :class:`~baselines_opt.community.perfect_foresight.CommunityMilpResult`)."""
    bat, hp, ev = device_sets(c)
    T, N = h.T, c.n
    out = {
        "discrete": np.zeros((T, N), np.int64),
        "continuous": np.zeros((T, N, 2)),
        "battery_kw": np.zeros((T, N)),
        "battery_kwh": np.broadcast_to(c.battery_init_kwh, (T, N)).astype(np.float64),
        "ev_kw": np.zeros((T, N)),
        "ev_kwh": np.full((T, N), np.nan),
        "hp_kw": np.zeros((T, N)),
        "theta_c": np.full((T, N), np.nan),
    }
    out["continuous"][:, :, 1] = -1.0
    for blk, x in zip(blocks, schedule, strict=True):
        if blk.kind == "battery":
            n = int(bat[blk.k])
            p = x[:T] - x[T : 2 * T]
            out["battery_kw"][:, n] = p
            out["battery_kwh"][:, n] = x[2 * T : 3 * T]
            out["continuous"][:, n, 0] = np.clip(p / c.battery_kw[n], -1.0, 1.0)
        elif blk.kind == "ev":
            n = int(ev[blk.k])
            pres = h.ev_present[:, blk.k]
            out["ev_kw"][:, n] = np.where(pres, x[:T], 0.0)
            out["ev_kwh"][:, n] = np.where(pres, x[T : 2 * T], np.nan)
            u = np.clip(2.0 * x[:T] / c.ev_kw[n] - 1.0, -1.0, 1.0)
            out["continuous"][:, n, 1] = np.where(pres, u, -1.0)
        else:
            n = int(hp[blk.k])
            m = np.clip(np.rint(x[:T]), 0, c.hp_modes - 1).astype(np.int64)
            out["discrete"][:, n] = m
            out["hp_kw"][:, n] = c.hp_kw[n] * m / max(c.hp_modes - 1, 1)
            out["theta_c"][:, n] = x[T : 2 * T]
    return out
