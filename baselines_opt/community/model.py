"""The Pyomo model of the community MILP, its data and the decoding of a solution to env actions.

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

The schedule becomes env actions through the env's own projection (item 2):
``u_b = (p_c − p_d) / battery_kw``, ``u_ev = 2 p_ev / ev_kw − 1`` (−1 when absent), heat-pump
mode index.  Because the MILP keeps e, e_ev inside their bounds, the projection clips nothing
and replaying the schedule in ``CommunityEnv`` reproduces the MILP objective.

:func:`build_model` builds the model of one :class:`~baselines_opt.community.horizon.Horizon`,
either with constant data (the one-shot solve,
:func:`~baselines_opt.community.perfect_foresight.solve_community_milp`) or as a template with
mutable parameters (:class:`~baselines_opt.community.mpc.MPCController`, new values through
:func:`param_values`); :func:`decode_plan` reads a solution back as a :class:`Plan` of env
actions and device trajectories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo

from baselines_opt.community.horizon import Horizon, device_sets
from gridmarl.energy.community import Community


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
class Model:
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


def param_values(
    c: Community, h: Horizon, bat: np.ndarray, hp: np.ndarray, ev: np.ndarray, dense: bool
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


def build_model(c: Community, h: Horizon, dense: bool, integer_steps: int | None = None) -> Model:
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
    bat, hp, ev = device_sets(c)
    T, dt = h.T, c.step_h
    m = pyo.ConcreteModel(name="community_milp")
    q = _Data(m, mutable=dense)
    for name, vals in param_values(c, h, bat, hp, ev, dense).items():
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
    return Model(m=m, data=q, bat=bat, hp=hp, ev=ev, ev_pairs=et, dep_pairs=dt_pairs, T=T)


def var_values(var: pyo.Var) -> np.ndarray:
    """Values of an indexed variable in index order (NaN where unset)."""
    return np.fromiter(
        (np.nan if v.value is None else v.value for v in var.values()),
        dtype=np.float64,
        count=len(var),
    )


@dataclass
class Plan:
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


def decode_plan(c: Community, mod: Model, e0_all: np.ndarray, theta0_all: np.ndarray) -> Plan:
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
        p_b[:, bat] = (var_values(m.pc) - var_values(m.pd)).reshape(shape)
        e[:, bat] = var_values(m.e).reshape(shape)
        cont[:, bat, 0] = np.clip(p_b[:, bat] / c.battery_kw[bat], -1.0, 1.0)
    p_hp = np.zeros((T, N))
    theta = np.broadcast_to(np.asarray(theta0_all, np.float64), (T, N)).copy()
    if len(hp):
        shape = (T, len(hp))
        modes = np.clip(np.rint(var_values(m.mode)), 0, c.hp_modes - 1).astype(np.int64)
        disc[:, hp] = modes.reshape(shape)
        p_hp[:, hp] = c.hp_kw[hp] * disc[:, hp] / max(c.hp_modes - 1, 1)
        theta[:, hp] = var_values(m.theta).reshape(shape)
    p_ev = np.zeros((T, N))
    e_ev = np.full((T, N), np.nan)
    if mod.ev_pairs:
        tt, nn = np.array(mod.ev_pairs).T
        p_ev[tt, nn] = var_values(m.pev)
        e_ev[tt, nn] = var_values(m.eev)
        cont[tt, nn, 1] = np.clip(2.0 * p_ev[tt, nn] / c.ev_kw[nn] - 1.0, -1.0, 1.0)
    g = var_values(m.imp) - var_values(m.exp)  # relaxed z: imp and exp may overlap in a tie
    return Plan(
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
        over_kw=var_values(m.over),
        peak_kw=float(m.peak.value),
    )


def int_vars(mod: Model) -> list:
    """Every integer decision of the model."""
    return [*mod.m.yb.values(), *mod.m.mode.values(), *mod.m.z.values()]
