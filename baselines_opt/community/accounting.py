"""Independent accounting of a community schedule: the env's equations in numpy, one episode.

:func:`schedule_cost` replays ``discrete`` / ``continuous`` actions through the equations of
:mod:`gridmarl.energy.community` step by step, independent of the MILP and of the env, and
returns the community cost per step and its parts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gridmarl.energy.community import Community


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
    left_h = billed = None
    if c.ev_deadline_guard:
        stay = c.ev_stay_steps()
        left_h = stay * dt  # [S, N] hours of the stay from each step on [h]
        billed = c.ev_departure_step(stay) < start + T  # [S, N] departs within the episode
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
        ask = share * c.ev_kw
        if billed is not None:  # the deadline guard: the least power that meets the target
            need = np.maximum(c.ev_target_kwh - e_ev, 0.0) / c.ev_eta
            later = np.maximum(left_h[s] - dt, 0.0) * c.ev_kw
            floor = np.minimum(np.maximum((need - later) / dt, 0.0), c.ev_kw)
            ask = np.maximum(ask, np.where(billed[s], floor, 0.0))
        p_ev = np.where(present & c.has_ev, np.minimum(ask, head_ev), 0.0)
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
