"""Optimization baselines of the energy community: the perfect-foresight MILP and rolling MPC.

The model is the one of :mod:`gridmarl.energy.community` (its docstring, items 1 to 8), written
as a mixed-integer linear program over the episode steps ``t = 0 … T-1`` (span index
``s = start + t``):

=============================  ============================================================
variable (index)               meaning
=============================  ============================================================
``pc, pd`` (t, n ∈ battery)    charge / discharge power p_c, p_d >= 0 [kW]
``yb`` (t, n ∈ battery)        binary: 1 = may charge, 0 = may discharge (exclusivity; lazy)
``e`` (t, n ∈ battery)         stored energy *after* step t, in [e_min, e_max] [kWh]
``mode`` (t, n ∈ heat pump)    integer heat-pump mode m ∈ {0 … M-1}
``theta`` (t, n ∈ heat pump)   indoor temperature θ_{t+1} after step t [C]
``v_lo, v_hi`` (t, n ∈ hp)     comfort slacks, degrees below θ_lo / above θ_hi [C]
``pev`` (t, n: EV present)     EV charge power p_ev in [0, P_ev] [kW]
``eev`` (t, n: EV present)     EV energy after step t, <= capacity [kWh]
``short`` (t, n: departure)    EV energy short of the target at departure [kWh]
``imp, exp`` (t)               community import / export, G = imp − exp [kW]
``z`` (t)                      binary: 1 = import allowed, 0 = export allowed (if π_fi > π)
``over`` (t)                   transformer excess max(0, |G| − limit) [kW]
``peak``                       running peak import max(peak_0, max_t imp_t) [kW]
=============================  ============================================================

Objective (= the env's community cost summed over the episode, item 7 and 8):
``Σ_t Δt (π imp − π_fi exp + c_over over + c_deg Σ(pc + pd) + c_comfort Σ(v_lo + v_hi))
+ c_unmet Σ short + c_peak (peak − peak_0)``.  Every slack is priced, so the model is always
feasible.  No terminal value: energy left at the end is worth nothing (as in the env).

How :func:`solve_community_milp` solves it (the model above is unchanged; only which
binaries are enforced when, and where the start and the bound come from):

* Exclusivity binaries that cannot change the optimum are relaxed to [0, 1]: ``z_t`` wherever
  ``π_fi <= π`` (overlapping imp and exp never pay there), and every battery ``yb``, which is
  made binary lazily where a solution charges and discharges at once, then re-solved (so the
  final schedule always fits the env's single battery setpoint).
* Warm start and bound by Lagrangian decomposition (:func:`_decomposition_start`): the LP's
  balance duals price every heat pump's own small MIP (25 independent problems instead of one
  tree), whose optima give the start (modes fixed, the rest re-solved) and whose bounds lift
  the LP bound; HiGHS runs on the full MILP only if that start is not within ``mip_gap``.

The schedule becomes env actions through the env's own projection (item 2):
``u_b = (p_c − p_d) / battery_kw``, ``u_ev = 2 p_ev / ev_kw − 1`` (−1 when absent), heat-pump
mode index.  Because the MILP keeps e, e_ev inside their bounds, the projection clips nothing
and replaying the schedule in ``CommunityEnv`` reproduces the MILP objective.

:class:`MPCController` re-solves the same model over a receding horizon from the env's current
device state, with the env's forecasts, and applies the first step (closed loop).  Its Pyomo
model is built once with mutable parameters and only the parameter values change between
solves.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyomo.environ as pyo
import torch

from baselines_opt.solve import (
    SolveOptions,
    SolveReport,
    SolverError,
    make_highs,
    relative_gap,
    set_start,
    solve_highs,
    use_threads,
)
from gridmarl.core.controller import Controller, ScheduleController
from gridmarl.core.types import Action, Observation
from gridmarl.energy.community import Community

STATE_TOL = 1e-6  # [kWh] / [C] an initial state this far outside its bounds is clamped silently
BIG_M_MARGIN_KW = 1e-3  # [kW] added to the import / export big-M so it never cuts a solution
LAZY_TOL_KW = 1e-7  # [kW] charge and discharge both above this at one step: add its binary
HP_TIME_SHARE = 0.8  # share of the time limit for the per-heat-pump subproblems (warm start)
HP_GAP_SHARE = 0.85  # share of the gap budget mip_gap · |LP*| for the subproblems to leave open

# --------------------------------------------------------------------------------------------
# Horizon data: plain numpy arrays of one MILP horizon
# --------------------------------------------------------------------------------------------


@dataclass
class _Horizon:
    """Numeric data of one optimisation horizon of ``T`` steps (span steps ``s0 … s0+T-1``).

    Series are ``[T]`` or ``[T, k]`` over the device subsets ``bat``, ``hp``, ``ev`` (prosumer
    indices).  ``w`` is 1 on steps that count and 0 on padding beyond the episode (MPC).
    """

    T: int
    net_kw: np.ndarray  # [T] Σ_n (L − P_pv) [kW]
    price: np.ndarray  # [T] π · w [$/kWh]
    feed_in: np.ndarray  # [T] π_fi · w [$/kWh]
    w: np.ndarray  # [T] 1 = counts, 0 = padding
    t_out: np.ndarray  # [T] outdoor temperature [C]
    hp_gain: np.ndarray  # [T, n_hp] (1 − a) R COP hp_kw / (M − 1) [C per mode step]
    ev_present: np.ndarray  # [T, n_ev] bool
    ev_reset: np.ndarray  # [T, n_ev] bool: stay starts here, e_ev := arrival (item 1)
    ev_arrival: np.ndarray  # [T, n_ev] arrival energy where reset [kWh]
    ev_depart: np.ndarray  # [T, n_ev] bool: departs after this step (item 5)
    e0: np.ndarray  # [n_bat] battery energy before step 0 [kWh]
    ev0: np.ndarray  # [n_ev] EV energy before step 0 (before any arrival reset) [kWh]
    theta0: np.ndarray  # [n_hp] indoor temperature before step 0 [C]
    peak0: float  # peak import so far [kW]

    def g_bounds(
        self, c: Community, bat: np.ndarray, hp: np.ndarray, ev: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Big-M of the import / export exclusivity: max import, max export per step [kW]."""
        up = (
            self.net_kw
            + c.battery_kw[bat].sum()
            + c.hp_kw[hp].sum()
            + (self.ev_present * c.ev_kw[ev]).sum(axis=1)
        )
        down = self.net_kw - c.battery_kw[bat].sum()
        return np.maximum(up, 0.0) + BIG_M_MARGIN_KW, np.maximum(-down, 0.0) + BIG_M_MARGIN_KW


def _device_sets(c: Community) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prosumer indices with a battery, a heat pump, an EV."""
    bat = np.flatnonzero((c.battery_kwh > 0) & (c.battery_kw > 0))
    hp = np.flatnonzero(c.has_hp)
    ev = np.flatnonzero(c.has_ev & (c.ev_kw > 0))
    return bat, hp, ev


def _clamp_state(name: str, x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Clamp a state within ``STATE_TOL`` of its bounds; raise if it is further out."""
    bad = (x < lo - STATE_TOL) | (x > hi + STATE_TOL)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"initial_state[{name!r}] = {x[i]:.6g} is outside its bounds "
            f"[{lo[i]:.6g}, {hi[i]:.6g}] (entry {i})"
        )
    return np.clip(x, lo, hi)


def _horizon(
    c: Community,
    s0: int,
    T: int,
    initial_state: dict[str, Any] | None,
    episode_start: bool,
    pad_to: int | None = None,
    net_kw: np.ndarray | None = None,
    price: np.ndarray | None = None,
) -> _Horizon:
    """Horizon data from the community's series (``net_kw``/``price`` override: forecasts).

    ``pad_to`` appends zero-weight steps up to that length (the fixed-size MPC model).
    """
    if T < 1 or s0 < 0 or s0 + T > c.steps:
        raise ValueError(
            f"steps [{s0}, {s0 + T}) do not lie in the community span of {c.steps} steps"
        )
    bat, hp, ev = _device_sets(c)
    sl = slice(s0, s0 + T)
    L = pad_to or T
    pad = L - T

    def padded(x: np.ndarray, fill: float = 0.0) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if pad == 0:
            return x
        tail = np.full((pad,) + x.shape[1:], fill, dtype=np.float64)
        return np.concatenate([x, tail])

    st = initial_state or {}
    e0 = np.asarray(st.get("battery_kwh", c.battery_init_kwh), np.float64)[bat]
    e0 = _clamp_state("battery_kwh", e0, c.battery_min_kwh[bat], c.battery_kwh[bat])
    theta0 = np.asarray(st.get("theta_c", c.theta_init_c), np.float64)[hp]
    ev0 = np.asarray(st.get("ev_kwh", np.zeros(c.n)), np.float64)[ev]
    peak0 = float(st.get("peak_kw", 0.0))

    present = c.ev_present[sl][:, ev].astype(bool)
    reset = c.ev_arrives()[sl][:, ev].copy()  # item 1: present now, absent the step before
    if episode_start:
        reset[0] = present[0]  # item 1: the episode's first step where present
    elif s0 > 0:
        reset[0] = present[0] & ~c.ev_present[s0 - 1, ev].astype(bool)
    arrival = np.where(reset, c.ev_arrival_kwh[sl][:, ev], 0.0)
    bad = reset & (arrival > c.ev_kwh[ev] + STATE_TOL)
    if bad.any():
        t, k = np.argwhere(bad)[0]
        raise ValueError(
            f"ev_arrival_kwh {arrival[t, k]:.6g} exceeds the EV capacity "
            f"{c.ev_kwh[ev][k]:.6g} (step {s0 + t}, prosumer {ev[k]})"
        )
    arrival = np.minimum(arrival, c.ev_kwh[ev])
    # An EV present at step 0 without a reset continues its stay: its state must be valid.
    cont = present[0] & ~reset[0]
    ev0 = np.where(
        cont, _clamp_state("ev_kwh", np.where(cont, ev0, 0.0), np.zeros(len(ev)), c.ev_kwh[ev]), 0.0
    )
    depart = c.ev_departs()[sl][:, ev]  # item 5: judged on present[s+1] (look-ahead)

    a = c.thermal_a()[hp]
    m1 = max(c.hp_modes - 1, 1)
    gain = (1.0 - a) * c.r_c_per_kw[hp] * c.cop[sl][:, hp] * c.hp_kw[hp] / m1  # item 3
    net = (c.load_kw[sl] - c.pv_kw[sl]).sum(axis=1) if net_kw is None else net_kw
    pi = c.price_usd_per_kwh[sl] if price is None else price
    w = padded(np.ones(T))
    t_out = padded(c.outdoor_c[sl], float(c.outdoor_c[s0 + T - 1]))
    return _Horizon(
        T=L,
        net_kw=padded(net),
        price=padded(pi) * w,
        feed_in=c.feed_in_usd_per_kwh * w,
        w=w,
        t_out=t_out,
        hp_gain=padded(gain),
        ev_present=padded(present).astype(bool),
        ev_reset=padded(reset).astype(bool),
        ev_arrival=padded(arrival),
        ev_depart=padded(depart).astype(bool),
        e0=e0,
        ev0=ev0,
        theta0=theta0,
        peak0=peak0,
    )


# --------------------------------------------------------------------------------------------
# The Pyomo model
# --------------------------------------------------------------------------------------------


class _Data:
    """Numbers a model rule reads: plain floats (one-shot model) or mutable Params (MPC).

    ``get(name)`` returns a mapping key -> value that rules index the same way in both modes.
    """

    def __init__(self, m: pyo.ConcreteModel, mutable: bool) -> None:
        self.m = m
        self.mutable = mutable
        self._maps: dict[str, Any] = {}

    def add(self, name: str, values: dict[Any, float]) -> None:
        """Register the values of ``name`` (``{None: x}`` for a scalar)."""
        if not self.mutable:
            self._maps[name] = values
            return
        if list(values) == [None]:
            p = pyo.Param(mutable=True, initialize=values[None], within=pyo.Reals)
        else:
            p = pyo.Param(list(values), mutable=True, initialize=values, within=pyo.Reals)
        self.m.add_component("q_" + name, p)
        self._maps[name] = p

    def __getitem__(self, name: str) -> Any:
        return self._maps[name]

    def set(self, name: str, values: dict[Any, float]) -> None:
        """New values of a mutable ``name`` (same keys as when it was added)."""
        p = self._maps[name]
        if list(values) == [None]:
            p.set_value(values[None])
        else:
            p.store_values(values)


def _vec(x: np.ndarray) -> dict[int, float]:
    return {t: float(v) for t, v in enumerate(np.asarray(x, np.float64))}


def _mat(x: np.ndarray, cols: np.ndarray) -> dict[tuple[int, int], float]:
    x = np.asarray(x, np.float64)
    return {(t, int(n)): float(x[t, k]) for t in range(x.shape[0]) for k, n in enumerate(cols)}


def _per(x: np.ndarray, cols: np.ndarray) -> dict[int, float]:
    return {int(n): float(v) for n, v in zip(cols, np.asarray(x, np.float64), strict=True)}


@dataclass
class _Model:
    """A built model with its index sets and data handle."""

    m: pyo.ConcreteModel
    data: _Data
    bat: np.ndarray
    hp: np.ndarray
    ev: np.ndarray
    ev_pairs: list[tuple[int, int]]
    dep_pairs: list[tuple[int, int]]
    T: int
    start: dict[int, float | None] | None = None  # start incumbent, id(var) -> value
    start_obj: float = math.inf  # its objective [$]


def _param_values(
    c: Community, h: _Horizon, bat: np.ndarray, hp: np.ndarray, ev: np.ndarray, dense: bool
) -> dict[str, dict]:
    """All data values of the model, keyed as the rules read them."""
    gmax, gmin = h.g_bounds(c, bat, hp, ev)
    vals: dict[str, dict] = {
        "net": _vec(h.net_kw),
        "price": _vec(h.price),
        "feed_in": _vec(h.feed_in),
        "w": _vec(h.w),
        "gmax": _vec(gmax),
        "gmin": _vec(gmin),
        "t_out": _vec(h.t_out),
        "gain": _mat(h.hp_gain, hp),
        "e0": _per(h.e0, bat),
        "theta0": _per(h.theta0, hp),
        "ev0": _per(h.ev0, ev),
        "peak0": {None: h.peak0},
    }
    if dense:
        vals["present"] = _mat(h.ev_present, ev)
        vals["reset"] = _mat(h.ev_reset, ev)
        vals["arrival"] = _mat(h.ev_arrival, ev)
        vals["depart"] = _mat(h.ev_depart, ev)
    return vals


def _build(c: Community, h: _Horizon, dense: bool, integer_steps: int | None = None) -> _Model:
    """Build the MILP of the horizon ``h``.

    Args:
        c: the community (parameters).
        h: the horizon data.
        dense: False = one-shot model: numbers are constants and EV variables exist only where
            the EV is present (departure slacks only at departures).  True = MPC template:
            every number that changes between horizons is a mutable Param and EV variables
            exist for every step of every EV prosumer (presence enters as a mutable bound).
        integer_steps: keep the integer decisions (heat-pump mode, battery and grid
            exclusivity) integer on the first ``integer_steps`` steps only and relax them on
            the rest (MPC: only the applied steps must be exact); None = every step.
    """
    bat, hp, ev = _device_sets(c)
    T, dt = h.T, c.step_h
    m = pyo.ConcreteModel(name="community_milp")
    q = _Data(m, mutable=dense)
    for name, vals in _param_values(c, h, bat, hp, ev, dense).items():
        q.add(name, vals)
    steps = list(range(T))
    bt = [(t, int(n)) for t in steps for n in bat]
    ht = [(t, int(n)) for t in steps for n in hp]
    if dense:
        et = [(t, int(n)) for t in steps for n in ev]
        dt_pairs = et
    else:
        et = [(t, int(n)) for t in steps for k, n in enumerate(ev) if h.ev_present[t, k]]
        dt_pairs = [(t, int(n)) for t in steps for k, n in enumerate(ev) if h.ev_depart[t, k]]
    m.T = pyo.Set(initialize=steps, ordered=True)
    m.BT = pyo.Set(initialize=bt, dimen=2, ordered=True)
    m.HT = pyo.Set(initialize=ht, dimen=2, ordered=True)
    m.ET = pyo.Set(initialize=et, dimen=2, ordered=True)
    m.DT = pyo.Set(initialize=dt_pairs, dimen=2, ordered=True)

    pmax = {int(n): float(c.battery_kw[n]) for n in bat}
    e_lo = {int(n): float(c.battery_min_kwh[n]) for n in bat}
    e_hi = {int(n): float(c.battery_kwh[n]) for n in bat}
    ev_kw = {int(n): float(c.ev_kw[n]) for n in ev}
    ev_cap = {int(n): float(c.ev_kwh[n]) for n in ev}
    ev_target = {int(n): float(c.ev_target_kwh[n]) for n in ev}
    a = dict(zip(hp.tolist(), c.thermal_a()[hp].tolist(), strict=True))
    th_lo = {int(n): float(c.theta_lo_c[n]) for n in hp}
    th_hi = {int(n): float(c.theta_hi_c[n]) for n in hp}
    hp_step_kw = {int(n): float(c.hp_kw[n]) / max(c.hp_modes - 1, 1) for n in hp}
    eta_c, eta_d, eta_ev = c.eta_charge, c.eta_discharge, c.ev_eta

    # battery (items 2, 3, 8)
    m.pc = pyo.Var(m.BT, bounds=lambda _, t, n: (0.0, pmax[n]))
    m.pd = pyo.Var(m.BT, bounds=lambda _, t, n: (0.0, pmax[n]))
    m.yb = pyo.Var(m.BT, within=pyo.Binary)
    m.e = pyo.Var(m.BT, bounds=lambda _, t, n: (e_lo[n], e_hi[n]))
    e0 = q["e0"]
    m.bat_dyn = pyo.Constraint(
        m.BT,
        rule=lambda m, t, n: (
            m.e[t, n]
            == (
                (m.e[t - 1, n] if t > 0 else e0[n]) + (eta_c * m.pc[t, n] - m.pd[t, n] / eta_d) * dt
            )
        ),
    )
    m.bat_ch = pyo.Constraint(m.BT, rule=lambda m, t, n: m.pc[t, n] <= pmax[n] * m.yb[t, n])
    m.bat_dis = pyo.Constraint(m.BT, rule=lambda m, t, n: m.pd[t, n] <= pmax[n] * (1 - m.yb[t, n]))

    # heat pump (items 2, 3, 4)
    m.mode = pyo.Var(m.HT, within=pyo.Integers, bounds=(0, c.hp_modes - 1))
    m.theta = pyo.Var(m.HT)
    m.v_lo = pyo.Var(m.HT, within=pyo.NonNegativeReals)
    m.v_hi = pyo.Var(m.HT, within=pyo.NonNegativeReals)
    theta0, gain, t_out = q["theta0"], q["gain"], q["t_out"]
    m.hp_dyn = pyo.Constraint(
        m.HT,
        rule=lambda m, t, n: (
            m.theta[t, n]
            == (
                a[n] * (m.theta[t - 1, n] if t > 0 else theta0[n])
                + (1.0 - a[n]) * t_out[t]
                + gain[t, n] * m.mode[t, n]
            )
        ),
    )
    # item 4: one slack per side, so the cost is exact even for a band with θ_lo > θ_hi
    m.comfort_lo = pyo.Constraint(
        m.HT, rule=lambda m, t, n: m.v_lo[t, n] >= th_lo[n] - m.theta[t, n]
    )
    m.comfort_hi = pyo.Constraint(
        m.HT, rule=lambda m, t, n: m.v_hi[t, n] >= m.theta[t, n] - th_hi[n]
    )

    # EV (items 1, 2, 3, 5)
    m.pev = pyo.Var(m.ET, bounds=lambda _, t, n: (0.0, ev_kw[n]))
    m.eev = pyo.Var(m.ET, bounds=lambda _, t, n: (0.0, ev_cap[n]))
    m.short = pyo.Var(m.DT, within=pyo.NonNegativeReals)
    ev0 = q["ev0"]
    if dense:
        present, reset, arrival, depart = q["present"], q["reset"], q["arrival"], q["depart"]

        def ev_start(m, t, n):
            prev = m.eev[t - 1, n] if t > 0 else ev0[n]
            return reset[t, n] * arrival[t, n] + (1 - reset[t, n]) * prev

        m.ev_avail = pyo.Constraint(
            m.ET, rule=lambda m, t, n: m.pev[t, n] <= ev_kw[n] * present[t, n]
        )
        m.ev_short = pyo.Constraint(
            m.DT, rule=lambda m, t, n: m.short[t, n] >= depart[t, n] * (ev_target[n] - m.eev[t, n])
        )
    else:
        ev_col = {int(n): k for k, n in enumerate(ev)}

        def ev_start(m, t, n):
            k = ev_col[n]
            if h.ev_reset[t, k]:
                return float(h.ev_arrival[t, k])
            return m.eev[t - 1, n] if t > 0 else ev0[n]

        m.ev_short = pyo.Constraint(
            m.DT, rule=lambda m, t, n: m.short[t, n] >= ev_target[n] - m.eev[t, n]
        )
    m.ev_dyn = pyo.Constraint(
        m.ET, rule=lambda m, t, n: m.eev[t, n] == (ev_start(m, t, n) + eta_ev * m.pev[t, n] * dt)
    )

    # community grid (items 6, 7)
    by_t_bat: dict[int, list[int]] = {t: [] for t in steps}
    for t, n in bt:
        by_t_bat[t].append(n)
    by_t_ev: dict[int, list[int]] = {t: [] for t in steps}
    for t, n in et:
        by_t_ev[t].append(n)
    m.imp = pyo.Var(m.T, within=pyo.NonNegativeReals)
    m.exp = pyo.Var(m.T, within=pyo.NonNegativeReals)
    m.z = pyo.Var(m.T, within=pyo.Binary)
    m.over = pyo.Var(m.T, within=pyo.NonNegativeReals)
    m.peak = pyo.Var(within=pyo.NonNegativeReals)
    net, gmax, gmin, w = q["net"], q["gmax"], q["gmin"], q["w"]
    m.balance = pyo.Constraint(
        m.T,
        rule=lambda m, t: (
            m.imp[t] - m.exp[t]
            == net[t]
            + sum(m.pc[t, n] - m.pd[t, n] for n in by_t_bat[t])
            + sum(hp_step_kw[int(n)] * m.mode[t, int(n)] for n in hp)
            + sum(m.pev[t, n] for n in by_t_ev[t])
        ),
    )
    m.imp_on = pyo.Constraint(m.T, rule=lambda m, t: m.imp[t] <= gmax[t] * m.z[t])
    m.exp_on = pyo.Constraint(m.T, rule=lambda m, t: m.exp[t] <= gmin[t] * (1 - m.z[t]))
    limit = float(c.transformer_kw)
    m.over_def = pyo.Constraint(m.T, rule=lambda m, t: m.over[t] >= m.imp[t] + m.exp[t] - limit)
    m.peak_imp = pyo.Constraint(m.T, rule=lambda m, t: m.peak >= w[t] * m.imp[t])
    peak0 = q["peak0"]
    m.peak_init = pyo.Constraint(expr=m.peak >= peak0[None])

    price, feed_in = q["price"], q["feed_in"]
    c_deg, c_cmf = c.degradation_usd_per_kwh * dt, c.comfort_usd_per_c_h * dt
    c_over = c.over_limit_usd_per_kwh * dt
    cost = (
        sum(dt * (price[t] * m.imp[t] - feed_in[t] * m.exp[t]) for t in steps)  # item 7
        + sum(c_over * w[t] * m.over[t] for t in steps)  # item 7
        + sum(c_deg * w[t] * (m.pc[t, n] + m.pd[t, n]) for t, n in bt)  # item 8
        + sum(c_cmf * w[t] * (m.v_lo[t, n] + m.v_hi[t, n]) for t, n in ht)  # item 4
        + c.unmet_usd_per_kwh * sum(m.short[t, n] for t, n in dt_pairs)  # item 5
        + c.peak_usd_per_kw * (m.peak - peak0[None])
    )  # item 7: Σ peak increments
    m.cost = pyo.Objective(expr=cost, sense=pyo.minimize)
    if integer_steps is not None:
        for var in (m.yb, m.mode, m.z):
            for idx, v in var.items():
                t = idx if isinstance(idx, int) else idx[0]
                if t >= integer_steps:
                    v.domain = pyo.Reals if var is m.mode else pyo.UnitInterval
    return _Model(m=m, data=q, bat=bat, hp=hp, ev=ev, ev_pairs=et, dep_pairs=dt_pairs, T=T)


def _values(var: pyo.Var) -> np.ndarray:
    """Values of an indexed variable in index order (NaN where unset)."""
    return np.fromiter(
        (np.nan if v.value is None else v.value for v in var.values()),
        dtype=np.float64,
        count=len(var),
    )


@dataclass
class _Plan:
    """Decoded schedule of a solved model: actions and per-step quantities."""

    discrete: np.ndarray  # [T, N] long
    continuous: np.ndarray  # [T, N, 2] (u_b, u_ev)
    battery_kw: np.ndarray  # [T, N] p_c − p_d
    battery_kwh: np.ndarray  # [T, N] after the step
    ev_kw: np.ndarray  # [T, N]
    ev_kwh: np.ndarray  # [T, N] after the step (NaN when absent)
    hp_kw: np.ndarray  # [T, N]
    theta_c: np.ndarray  # [T, N] after the step
    import_kw: np.ndarray  # [T]
    export_kw: np.ndarray  # [T]
    over_kw: np.ndarray  # [T]
    peak_kw: float


def _decode(c: Community, mod: _Model, e0_all: np.ndarray, theta0_all: np.ndarray) -> _Plan:
    """Read the incumbent out of the model and convert it to env actions (item 2 inverted)."""
    m, T, N = mod.m, mod.T, c.n
    bat, hp = mod.bat, mod.hp
    disc = np.zeros((T, N), np.int64)
    cont = np.zeros((T, N, 2))
    cont[:, :, 1] = -1.0
    p_b = np.zeros((T, N))
    e = np.broadcast_to(np.asarray(e0_all, np.float64), (T, N)).copy()
    if len(bat):
        shape = (T, len(bat))
        p_b[:, bat] = (_values(m.pc) - _values(m.pd)).reshape(shape)
        e[:, bat] = _values(m.e).reshape(shape)
        cont[:, bat, 0] = np.clip(p_b[:, bat] / c.battery_kw[bat], -1.0, 1.0)
    p_hp = np.zeros((T, N))
    theta = np.broadcast_to(np.asarray(theta0_all, np.float64), (T, N)).copy()
    if len(hp):
        shape = (T, len(hp))
        modes = np.clip(np.rint(_values(m.mode)), 0, c.hp_modes - 1).astype(np.int64)
        disc[:, hp] = modes.reshape(shape)
        p_hp[:, hp] = c.hp_kw[hp] * disc[:, hp] / max(c.hp_modes - 1, 1)
        theta[:, hp] = _values(m.theta).reshape(shape)
    p_ev = np.zeros((T, N))
    e_ev = np.full((T, N), np.nan)
    if mod.ev_pairs:
        tt, nn = np.array(mod.ev_pairs).T
        p_ev[tt, nn] = _values(m.pev)
        e_ev[tt, nn] = _values(m.eev)
        cont[tt, nn, 1] = np.clip(2.0 * p_ev[tt, nn] / c.ev_kw[nn] - 1.0, -1.0, 1.0)
    g = _values(m.imp) - _values(m.exp)  # relaxed z: imp and exp may overlap in a tie
    return _Plan(
        discrete=disc,
        continuous=cont,
        battery_kw=p_b,
        battery_kwh=e,
        ev_kw=p_ev,
        ev_kwh=e_ev,
        hp_kw=p_hp,
        theta_c=theta,
        import_kw=np.maximum(g, 0.0),
        export_kw=np.maximum(-g, 0.0),
        over_kw=_values(m.over),
        peak_kw=float(m.peak.value),
    )


# --------------------------------------------------------------------------------------------
# Perfect-foresight MILP
# --------------------------------------------------------------------------------------------


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


def _int_vars(mod: _Model) -> list:
    """Every integer decision of the model."""
    return [*mod.m.yb.values(), *mod.m.mode.values(), *mod.m.z.values()]


# --------------------------------------------------------------------------------------------
# Exclusivity binaries that cannot change the optimum, and lazy battery binaries
# --------------------------------------------------------------------------------------------


def _relax_exclusivity(mod: _Model, h: _Horizon) -> list:
    """Relax the exclusivity binaries that are not needed up front; returns the changed vars.

    * Grid ``z_t`` on every step with ``π_fi <= π``: reducing imp and exp by the same amount
      keeps G, never raises the cost (``−(π − π_fi) Δt <= 0``) and only loosens the over and
      peak rows, so the relaxation has an exclusive optimum with the same cost, and the cost of
      any solution is at least the env's cost of its G.  Only steps with ``π_fi > π`` (where
      exporting and importing at once would earn money) keep a binary.
    * Battery ``yb``: all relaxed to [0, 1] (``p_c + p_d <= P_max`` remains, a valid
      relaxation).  Simultaneous charge and discharge only pays in corner cases (e.g. burning
      PV surplus above the transformer limit); :func:`_lazy_battery` makes ``yb`` binary where
      a solution uses it and the caller re-solves.
    """
    m, changed = mod.m, []
    for t, v in m.z.items():
        if h.feed_in[t] <= h.price[t]:
            v.domain = pyo.UnitInterval
            changed.append(v)
    for v in m.yb.values():
        v.domain = pyo.UnitInterval
        changed.append(v)
    return changed


def _lazy_battery(mod: _Model) -> list:
    """Make ``yb`` binary where the loaded solution charges and discharges at once."""
    m = mod.m
    if len(m.pc) == 0:
        return []
    both = np.minimum(_values(m.pc), _values(m.pd)) > LAZY_TOL_KW
    out = []
    for (idx, v), hit in zip(m.yb.items(), both, strict=True):
        if hit and v.domain is not pyo.Binary:
            v.domain = pyo.Binary
            v.set_value(float(m.pc[idx].value >= m.pd[idx].value))
            out.append(v)
    return out


def _solve_lazy(
    mod: _Model, solver: Any, options: SolveOptions, what: str, stats: dict[str, Any]
) -> SolveReport:
    """Solve; while the battery charges and discharges at once somewhere, add those binaries
    and re-solve (each round only adds binaries, so it ends)."""
    while True:
        rep = solve_highs(mod.m, options, solver=solver, what=what)
        added = _lazy_battery(mod)
        if not added:
            return rep
        stats["lazy_battery_binaries"] = stats.get("lazy_battery_binaries", 0) + len(added)
        stats["lazy_rounds"] = stats.get("lazy_rounds", 0) + 1
        solver.update_variables(added)


# --------------------------------------------------------------------------------------------
# Warm start and bound: Lagrangian decomposition per heat pump
# --------------------------------------------------------------------------------------------


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
    slacks (item 4), exactly as in :func:`_build`.  Cost ``Σ mode_cost·mode +
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


def _round_up_modes(c: Community, h: _Horizon, mod: _Model) -> np.ndarray:
    """``[T, n_hp]`` modes tracking the loaded (LP) temperature path from above: the smallest
    mode that keeps θ_{t+1} >= θ_LP_{t+1} (item 3)."""
    th_lp = _values(mod.m.theta).reshape(mod.T, len(mod.hp))
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


def _decomposition_start(
    c: Community,
    h: _Horizon,
    mod: _Model,
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
    for v in _int_vars(mod):
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
                [_values(v).reshape(mod.T, n_hp) for v in (m.mode, m.theta, m.v_lo, m.v_hi)],
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
    _relax_exclusivity(mod, h)
    for v in m.mode.values():
        v.domain = pyo.Integers
    solver.update_variables(_int_vars(mod))
    try:
        inc = _solve_lazy(mod, solver, lp_opts, "LP with fixed heat-pump modes", stats)
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


def _restore_start(mod: _Model, load: bool = False) -> float:
    """The start incumbent's objective; with ``load`` also put its values back in the vars."""
    if mod.start is None:
        return math.inf
    if load:
        for v in mod.m.component_data_objects(pyo.Var):
            v.set_value(mod.start[id(v)], skip_validation=True)
    return mod.start_obj


def _fix_integers(mod: _Model) -> list:
    """Fix the heat-pump modes and the *binary* exclusivity variables at the incumbent.

    Modes are rounded; the binaries follow the continuous values they gate
    (``yb = [p_c >= p_d]``, ``z = [imp >= exp]``) so that a binary sitting within the
    integrality tolerance of the wrong side cannot make the fixed LP infeasible.  Relaxed
    exclusivity variables (:func:`_relax_exclusivity`) stay free in [0, 1].
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
) -> CommunityMilpResult:
    """Solve the perfect-foresight MILP over span steps ``[start, start + steps)``.

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
            decomposition (:func:`_decomposition_start`, up to ``HP_TIME_SHARE`` of the time
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
    h = _horizon(community, start, steps, initial_state, episode_start)
    mod = _build(community, h, dense=False)
    build_s = time.perf_counter() - t0

    options = SolveOptions(time_limit_s=time_limit_s, mip_gap=mip_gap, threads=threads, tee=tee)
    solver = make_highs(persistent_updates=True)
    stats: dict[str, Any] = {}
    t_solve = time.perf_counter()
    lp_bound = bound = -math.inf
    if warm_start:
        lp_bound, bound = _decomposition_start(
            community, h, mod, solver, options, HP_TIME_SHARE * time_limit_s, stats
        )
    else:
        _relax_exclusivity(mod, h)  # before the first solve: HiGHS has not seen the model yet
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
        remaining = time_limit_s - (time.perf_counter() - t_solve)
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
            added = _lazy_battery(mod)  # charge and discharge at once: add binaries, again
            if not added:
                break
            stats["lazy_battery_binaries"] = stats.get("lazy_battery_binaries", 0) + len(added)
            stats["lazy_rounds"] = stats.get("lazy_rounds", 0) + 1
            solver.update_variables(added)
            remaining = time_limit_s - (time.perf_counter() - t_solve)
        if rep is None or rep.objective > start_obj:
            _restore_start(mod, load=True)  # the decomposition incumbent is better: keep it
        status = rep.status if rep is not None else "time_limit"
        bound = max(bound, rep.bound if rep is not None else -math.inf)
        message = rep.message if rep is not None else "HiGHS found nothing better than the start"
    bound = max(bound, lp_bound)
    # Polish: with the integers fixed, the LP makes every priced slack tight, so the reported
    # objective is exactly what the env charges for this schedule; battery binaries are added
    # lazily wherever the LP would charge and discharge at once.
    incumbent = {id(v): v.value for v in mod.m.component_data_objects(pyo.Var)}
    inc_obj = min(start_obj, rep.objective if rep is not None else math.inf)
    fixed = _fix_integers(mod)
    solver.update_variables(fixed)
    try:
        polish = _solve_lazy(
            mod,
            solver,
            SolveOptions(time_limit_s=max(10.0, time_limit_s), mip_gap=0.0, threads=threads),
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
    plan = _decode(community, mod, e0_all, th0_all)
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
            "mip_objective_usd": rep.objective if rep is not None else math.nan,
            "start_objective_usd": start_obj,
            "lp_bound_usd": lp_bound,
            **stats,
            "n_vars": mod.m.nvariables(),
            "n_constraints": mod.m.nconstraints(),
        },
    )


# --------------------------------------------------------------------------------------------
# Independent accounting of a schedule (the env's equations in numpy, one episode)
# --------------------------------------------------------------------------------------------


def schedule_cost(
    community: Community,
    discrete: np.ndarray,
    continuous: np.ndarray,
    start: int = 0,
    initial_state: dict[str, Any] | None = None,
    episode_start: bool = True,
) -> dict[str, np.ndarray]:
    """Account a schedule with the equations of :mod:`gridmarl.energy.community` (numpy).

    A slow per-step reference, independent of the MILP and of the env: it applies the action
    projection (item 2) and the dynamics (items 1 to 8) to ``discrete [T, N]`` and
    ``continuous [T, N, 2]``.

    Returns:
        ``cost_usd [T]`` community cost per step [$] and its parts ``grid_usd``,
        ``degradation_usd``, ``comfort_usd``, ``unmet_usd``, ``over_usd``, ``peak_usd`` [T],
        plus ``grid_kw [T]`` and the clipped battery power ``clipped_kw [T, N]``.
    """
    c = community
    T, N = discrete.shape
    dt = c.step_h
    st = initial_state or {}
    e = np.array(st.get("battery_kwh", c.battery_init_kwh), np.float64)
    e_ev = np.array(st.get("ev_kwh", np.zeros(N)), np.float64)
    theta = np.array(st.get("theta_c", c.theta_init_c), np.float64)
    peak = float(st.get("peak_kw", 0.0))
    a = c.thermal_a()
    arrives, departs = c.ev_arrives(), c.ev_departs()
    m1 = max(c.hp_modes - 1, 1)
    out = {
        k: np.zeros(T)
        for k in (
            "cost_usd",
            "grid_usd",
            "degradation_usd",
            "comfort_usd",
            "unmet_usd",
            "over_usd",
            "peak_usd",
            "grid_kw",
        )
    }
    out["clipped_kw"] = np.zeros((T, N))
    for t in range(T):
        s = start + t
        present = c.ev_present[s].astype(bool)
        reset = present & (
            (t == 0 and episode_start)
            | arrives[s]
            | (t == 0 and s > 0 and ~c.ev_present[s - 1].astype(bool))
        )
        e_ev = np.where(reset, c.ev_arrival_kwh[s], e_ev)  # item 1
        mode = np.where(c.has_hp, np.clip(discrete[t], 0, c.hp_modes - 1), 0)  # item 2
        p_hp = c.hp_kw * mode / m1
        p = np.clip(continuous[t, :, 0], -1.0, 1.0) * c.battery_kw
        head_c = np.maximum((c.battery_kwh - e) / (c.eta_charge * dt), 0.0)
        head_d = np.maximum((e - c.battery_min_kwh) * c.eta_discharge / dt, 0.0)
        p_c = np.minimum(np.maximum(p, 0.0), head_c)
        p_d = np.minimum(np.maximum(-p, 0.0), head_d)
        out["clipped_kw"][t] = np.abs(p - (p_c - p_d))
        share = (np.clip(continuous[t, :, 1], -1.0, 1.0) + 1.0) / 2.0
        head_ev = np.maximum((c.ev_kwh - e_ev) / (c.ev_eta * dt), 0.0)
        p_ev = np.where(present & c.has_ev, np.minimum(share * c.ev_kw, head_ev), 0.0)
        e = e + (c.eta_charge * p_c - p_d / c.eta_discharge) * dt  # item 3
        e_ev = e_ev + c.ev_eta * p_ev * dt
        theta = np.where(
            c.has_hp, a * theta + (1 - a) * (c.outdoor_c[s] + c.r_c_per_kw * c.cop[s] * p_hp), theta
        )
        v = np.where(
            c.has_hp,
            np.maximum(c.theta_lo_c - theta, 0.0) + np.maximum(theta - c.theta_hi_c, 0.0),
            0.0,
        )  # item 4
        short = np.where(departs[s] & c.has_ev, np.maximum(c.ev_target_kwh - e_ev, 0.0), 0.0)
        x = c.load_kw[s] + p_hp + p_ev + p_c - p_d - c.pv_kw[s]  # item 6
        g = float(x.sum())  # item 7
        imp, exp = max(g, 0.0), max(-g, 0.0)
        out["grid_kw"][t] = g
        out["grid_usd"][t] = (c.price_usd_per_kwh[s] * imp - c.feed_in_usd_per_kwh * exp) * dt
        out["over_usd"][t] = c.over_limit_usd_per_kwh * max(0.0, abs(g) - c.transformer_kw) * dt
        out["peak_usd"][t] = c.peak_usd_per_kw * (max(peak, imp) - peak)
        peak = max(peak, imp)
        out["degradation_usd"][t] = c.degradation_usd_per_kwh * float((p_c + p_d).sum()) * dt
        out["comfort_usd"][t] = c.comfort_usd_per_c_h * float(v.sum()) * dt
        out["unmet_usd"][t] = c.unmet_usd_per_kwh * float(short.sum())
    out["cost_usd"] = sum(
        out[k]
        for k in ("grid_usd", "degradation_usd", "comfort_usd", "unmet_usd", "over_usd", "peak_usd")
    )
    return out


# --------------------------------------------------------------------------------------------
# Rolling-horizon MPC
# --------------------------------------------------------------------------------------------


def _np(x: Any) -> np.ndarray:
    """A tensor or array as float64 numpy."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, np.float64)


class MPCController(Controller):
    """Closed-loop rolling-horizon MPC on the community MILP.

    At each decision step it reads the env's device state (``env.device_state()``) and
    forecasts (``env.forecast_tensors(steps)``: load, PV, price; exact at lead 0, noisy later
    when the env's forecast is noisy), solves the MILP over the next ``horizon_h`` (cut at the
    episode end; no terminal value, like the env), and applies the first step.  COP, EV
    presence / arrival energy and outdoor temperature come from ``env.community`` (known
    schedules).

    The Pyomo model is built once per env (fixed horizon length; steps beyond the episode end
    get zero weight) with mutable parameters, and a persistent HiGHS interface re-solves it
    after pushing only the new parameter values.

    Args:
        horizon_h: look-ahead [h].
        forecast: ``None`` or ``"noisy"``: the env's forecasts (noisy exactly when the env's
            forecast kind is noisy); ``"perfect"``: the true series from ``env.community``.
        time_limit_s: HiGHS time limit per solve [s].
        mip_gap: relative MIP gap per solve [-].
        threads: HiGHS threads (None = HiGHS default).
        replan_every: decision interval k [steps]: re-solve every k steps and apply the plan
            open loop in between (1 = re-solve at every step, the default).
        relax_tail: keep the integer decisions integer only on the k applied steps of each
            plan and relax them on the rest of the horizon (default True: the applied actions
            are exact, the look-ahead is the LP relaxation, and a 24 h solve takes a fraction
            of a second); False solves the full MILP every time (much slower).
        name: label of the controller.

    Only ``B = 1`` envs are supported (one MILP per step).  If a solve finds no feasible
    schedule in time, the controller continues the previous plan (or a safe default: battery
    idle, EV charging, heat-pump thermostat) and counts it in ``stats["fallbacks"]``.
    """

    def __init__(
        self,
        horizon_h: float = 24.0,
        forecast: str | None = None,
        time_limit_s: float = 2.0,
        mip_gap: float = 0.01,
        threads: int | None = None,
        replan_every: int = 1,
        relax_tail: bool = True,
        name: str = "mpc",
    ) -> None:
        if forecast not in (None, "perfect", "noisy"):
            raise ValueError(f"forecast must be 'perfect', 'noisy' or None, got {forecast!r}")
        if replan_every < 1:
            raise ValueError(f"replan_every must be >= 1, got {replan_every}")
        if horizon_h <= 0:
            raise ValueError(f"horizon_h must be positive, got {horizon_h}")
        self.name = name
        self.horizon_h = float(horizon_h)
        self.forecast = forecast
        self.options = SolveOptions(time_limit_s=time_limit_s, mip_gap=mip_gap, threads=threads)
        self.replan_every = int(replan_every)
        self.relax_tail = bool(relax_tail)
        self._env: Any = None
        self._mod: _Model | None = None
        self._solver: Any = None
        self._plan: _Plan | None = None
        self._plan_t0 = 0
        self.stats: dict[str, Any] = {}

    def describe(self) -> str:
        """One line for reports."""
        return (
            f"horizon {self.horizon_h:g} h, forecast {self.forecast or 'env'}, gap "
            f"{self.options.mip_gap:.2%}, limit {self.options.time_limit_s:g} s per solve, "
            f"re-plan every {self.replan_every} step(s)"
            + (", integers on the applied steps only" if self.relax_tail else "")
        )

    def reset(self, env: Any) -> None:
        """Store the env; build the model template (once per community and horizon)."""
        if int(getattr(env, "num_envs", 1)) != 1:
            raise ValueError(
                f"MPCController supports B = 1 envs only, got num_envs = "
                f"{env.num_envs}; evaluate with one environment"
            )
        c: Community = env.community
        H = max(1, round(self.horizon_h / c.step_h))
        if (
            self._mod is None
            or self._env is None
            or self._env.community is not c
            or self._mod.T != H
        ):
            s0 = int(_np(env.start)[0])
            T = max(1, min(H, c.steps - s0 - 1))
            t0 = time.perf_counter()
            h = _horizon(c, s0, T, None, True, pad_to=H)
            self._mod = _build(
                c, h, dense=True, integer_steps=self.replan_every if self.relax_tail else None
            )
            self._solver = make_highs(persistent_updates=True)
            build_s = time.perf_counter() - t0
        else:
            build_s = 0.0
        self._env = env
        self._plan = None
        self.stats = {
            "build_s": build_s,
            "solve_s": [],
            "status": [],
            "gap": [],
            "fallbacks": 0,
            "solves": 0,
        }

    def _solve_from(self, t: int) -> None:
        """Solve the horizon starting at episode step ``t`` from the env's current state."""
        env, mod = self._env, self._mod
        assert mod is not None
        c: Community = env.community
        s0 = int(_np(env.start)[0]) + t
        T = max(1, min(mod.T, int(env.episode_len) - t))
        raw = env.device_state()
        state = {k: _np(raw[k])[0] for k in ("battery_kwh", "ev_kwh", "theta_c")}
        state["peak_kw"] = float(_np(raw["peak_kw"]).reshape(-1)[0])
        if self.forecast == "perfect":
            net = price = None
        else:
            fc = env.forecast_tensors(T)
            net = (_np(fc["load_kw"])[0] - _np(fc["pv_kw"])[0]).sum(axis=0)  # [T]
            price = _np(fc["price_usd_per_kwh"])[0]
        h = _horizon(c, s0, T, state, episode_start=(t == 0), pad_to=mod.T, net_kw=net, price=price)
        for name, vals in _param_values(c, h, mod.bat, mod.hp, mod.ev, dense=True).items():
            mod.data.set(name, vals)
        try:
            rep = solve_highs(mod.m, self.options, solver=self._solver, what="MPC horizon")
        except SolverError:
            self.stats["fallbacks"] += 1
            if self._plan is None or t - self._plan_t0 + 1 >= self._plan.discrete.shape[0]:
                self._plan = self._safe_plan(state)
                self._plan_t0 = t
            return
        self.stats["solves"] += 1
        self.stats["solve_s"].append(rep.solve_s)
        self.stats["status"].append(rep.status)
        self.stats["gap"].append(rep.gap)
        e0_all = state["battery_kwh"]
        self._plan = _decode(c, mod, e0_all, state["theta_c"])
        self._plan_t0 = t

    def _safe_plan(self, state: dict[str, Any]) -> _Plan:
        """One step: battery idle, EV charging at full power, heat pump as a thermostat."""
        c: Community = self._env.community
        N = c.n
        disc = np.where(c.has_hp & (state["theta_c"] < c.theta_lo_c), c.hp_modes - 1, 0)
        cont = np.zeros((1, N, 2))
        cont[:, :, 1] = 1.0
        z = np.zeros((1, N))
        return _Plan(
            discrete=disc[None].astype(np.int64),
            continuous=cont,
            battery_kw=z,
            battery_kwh=z,
            ev_kw=z,
            ev_kwh=z,
            hp_kw=z,
            theta_c=z,
            import_kw=z[0, :1],
            export_kw=z[0, :1],
            over_kw=z[0, :1],
            peak_kw=0.0,
        )

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """The plan's action for the env's current step (re-solving when due)."""
        if self._env is None:
            raise RuntimeError("MPCController.reset(env) must be called before act()")
        b, n = obs.batch_shape
        if b != 1:
            raise ValueError(f"MPCController supports B = 1 only, got B = {b}")
        t = int(self._env.t)
        k = t - self._plan_t0
        if (
            self._plan is None
            or k < 0
            or k >= self.replan_every
            or k >= self._plan.discrete.shape[0]
        ):
            self._solve_from(t)
            k = t - self._plan_t0
        assert self._plan is not None
        k = min(k, self._plan.discrete.shape[0] - 1)
        dev, dtype = obs.local.device, obs.local.dtype
        return Action(
            discrete=torch.as_tensor(self._plan.discrete[k], device=dev).long().view(1, n),
            continuous=torch.as_tensor(self._plan.continuous[k], device=dev, dtype=dtype).view(
                1, n, 2
            ),
        )
