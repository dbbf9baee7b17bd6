"""Horizon data of the community MILP: the numbers of one optimisation horizon as numpy arrays.

:func:`build_horizon` cuts span steps ``[s0, s0 + T)`` out of a
:class:`~gridmarl.energy.community.Community` (optionally with forecast net load and price,
optionally padded with zero-weight steps for the fixed-size MPC model), clamps the initial device
state to its bounds and applies the EV arrival rule (item 1).  :func:`device_sets` names the
prosumers with a battery, a heat pump, an EV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gridmarl.energy.community import Community

STATE_TOL = 1e-6  # [kWh] / [C] an initial state this far outside its bounds is clamped silently
BIG_M_MARGIN_KW = 1e-3  # [kW] added to the import / export big-M so it never cuts a solution


@dataclass
class Horizon:
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


def device_sets(c: Community) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def build_horizon(
    c: Community,
    s0: int,
    T: int,
    initial_state: dict[str, Any] | None,
    episode_start: bool,
    pad_to: int | None = None,
    net_kw: np.ndarray | None = None,
    price: np.ndarray | None = None,
) -> Horizon:
    """Horizon data from the community's series (``net_kw``/``price`` override: forecasts).

    ``pad_to`` appends zero-weight steps up to that length (the fixed-size MPC model).
    """
    if T < 1 or s0 < 0 or s0 + T > c.steps:
        raise ValueError(
            f"steps [{s0}, {s0 + T}) do not lie in the community span of {c.steps} steps"
        )
    bat, hp, ev = device_sets(c)
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
    return Horizon(
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
