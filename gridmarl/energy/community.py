"""The data of one energy community over a span of steps: the single source of truth that the
env, the reference implementation and the MILP all read.

Model (DESIGN §4; Δt = ``step_h`` [h]; prosumer n; step t of an episode, t = 0 … T-1):

Time series (``[S, N]`` or ``[S]``, S = steps in the span, including look-ahead):
    load_kw L, pv_kw P_pv, price_usd_per_kwh π (import), outdoor_c T_out, cop COP,
    ev_present, ev_arrival_kwh (energy of the EV when its current stay began).

1. EV arrival (before the action): at an episode's first step where ``ev_present`` and at every
   step with ``ev_present[t] and not ev_present[t-1]``, e_ev := ev_arrival_kwh[t].
2. Action projection (the one documented way; what was clipped is recorded):
   * heat pump: mode m ∈ {0 … M-1} (no heat pump → mode 0 is the only allowed choice, others are
     treated as 0); P_hp = hp_kw · m / (M − 1).
   * battery: u_b clipped to [-1, 1]; p = u_b · battery_kw;
     p ≥ 0 → p_c = min(p, (e_max − e) / (η_c Δt)), p_d = 0;
     p < 0 → p_d = min(−p, (e − e_min) η_d / Δt), p_c = 0   (headrooms floored at 0).
   * EV: u_ev clipped to [-1, 1]; share = (u_ev + 1) / 2;
     p_ev = present · min(max(share · ev_kw, floor), (ev_kwh − e_ev) / (η_ev Δt)), floor = 0
     unless ``ev_deadline_guard``: then floor = clip((need / η_ev − (left − Δt) ev_kw) / Δt, 0,
     ev_kw), need = max(0, ev_target_kwh − e_ev), left = hours of the stay from t on, t included:
     the least power that still reaches the target at departure (devices.ev_deadline_floor),
     for stays that depart within the episode (the only ones billed, item 5).  A schedule that
     meets every reachable target never triggers it, so the MILP's optimum is the same with and
     without it.
3. Devices: e ← e + (η_c p_c − p_d / η_d) Δt;  e_ev ← e_ev + η_ev p_ev Δt;
   θ ← a θ + (1 − a)(T_out[t] + R · COP[t, n] · P_hp), a = exp(−Δt / (R C))  (exact
   discretisation of C dθ/dt = (T_out − θ)/R + COP · P_hp).  Prosumers without a heat pump keep
   θ = theta_init and pay no comfort cost.
4. Comfort: v = max(0, θ_lo − θ_{t+1}) + max(0, θ_{t+1} − θ_hi) [C]; cost c_comfort · v · Δt.
5. EV departure: if present[t] and not present[t+1]: short = max(0, ev_target_kwh − e_ev_{t+1})
   [kWh]; cost c_unmet · short.
6. Net power x_n = L + P_hp + p_ev + p_c − p_d − P_pv [kW]  (+ import, − export).
7. Grid: G = Σ_n x_n; imp = max(G, 0), exp = max(−G, 0);
   grid cost = (π imp − π_fi exp) Δt; over = max(0, |G| − transformer_kw);
   over cost = c_over · over · Δt; peak cost = c_peak · (max(peak, imp) − peak), where peak is the
   running maximum of imp over the episode starting at 0 (so the episode total is
   c_peak · max_t imp_t).
8. Degradation: c_deg (p_c + p_d) Δt.
Community cost of the step = grid + Σ degradation + Σ comfort + Σ unmet + over + peak;
team reward = −community cost.

Cloud trading platform (per-agent bills; zero-sum): buyers D = Σ max(x_n, 0), sellers
S = Σ max(−x_n, 0), traded Q = min(D, S), internal price π_int = (π + π_fi) / 2.  Buyer n gets
Q · max(x_n, 0) / D from peers at π_int and the rest from the grid at π; seller n sells
Q · max(−x_n, 0) / S to peers at π_int and the rest to the grid at π_fi.  Σ bills = grid cost.
The transformer and peak costs are shared in proportion to max(x_n, 0) / D when G ≥ 0 and to
max(−x_n, 0) / S when G < 0 (equal shares when the denominator is 0).  Per-agent reward =
−(bill + own degradation + own comfort + own unmet + share of over and peak costs); the
per-agent rewards sum to the team reward.

Episodes have no terminal value: energy left in the battery at the end is worth nothing (the
same in the env and the MILP).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Community:
    """Prosumer parameters and time series for a span of ``S`` steps.

    Per-prosumer arrays have shape ``[N]``; series ``[S, N]`` or ``[S]``.  A prosumer without a
    battery has ``battery_kwh == battery_kw == 0``; without an EV ``has_ev`` is False and its
    EV arrays are 0; without a heat pump ``has_hp`` is False and ``hp_kw == 0``.
    """

    step_h: float  # Δt [h]
    time: pd.DatetimeIndex  # [S] start of each step, dataset local time
    load_kw: np.ndarray  # [S, N] non-shiftable load L [kW]
    pv_kw: np.ndarray  # [S, N] PV AC output P_pv [kW]
    price_usd_per_kwh: np.ndarray  # [S] import price π [$/kWh]
    outdoor_c: np.ndarray  # [S] outdoor dry-bulb temperature T_out [C]
    cop: np.ndarray  # [S, N] heat-pump coefficient of performance [-]
    ev_present: np.ndarray  # [S, N] bool, EV at home during the step
    ev_arrival_kwh: np.ndarray  # [S, N] EV energy at the start of the current stay [kWh]
    # battery [N]
    battery_kwh: np.ndarray  # e_max [kWh]
    battery_kw: np.ndarray  # P_max [kW]
    battery_min_kwh: np.ndarray  # e_min [kWh]
    battery_init_kwh: np.ndarray  # e at episode start [kWh]
    eta_charge: float  # η_c [-]
    eta_discharge: float  # η_d [-]
    degradation_usd_per_kwh: float  # c_deg [$/kWh]
    # EV [N]
    has_ev: np.ndarray  # bool
    ev_kwh: np.ndarray  # EV battery capacity [kWh]
    ev_kw: np.ndarray  # charger power P_ev [kW]
    ev_target_kwh: np.ndarray  # energy wanted at departure [kWh]
    ev_eta: float  # η_ev [-]
    unmet_usd_per_kwh: float  # c_unmet [$/kWh]
    # heat pump [N]
    has_hp: np.ndarray  # bool
    hp_kw: np.ndarray  # electric power at full mode [kW]
    hp_modes: int  # M discrete modes (0 = off … M-1 = full)
    r_c_per_kw: np.ndarray  # R [C/kW]
    c_kwh_per_c: np.ndarray  # C [kWh/C]
    theta_lo_c: np.ndarray  # comfort lower bound [C]
    theta_hi_c: np.ndarray  # comfort upper bound [C]
    theta_init_c: np.ndarray  # indoor temperature at episode start [C]
    comfort_usd_per_c_h: float  # c_comfort [$/(C·h)]
    # market
    feed_in_usd_per_kwh: float  # π_fi [$/kWh]
    transformer_kw: float  # limit on |G| [kW]
    over_limit_usd_per_kwh: float  # c_over [$/kWh]
    peak_usd_per_kw: float  # c_peak [$/kW]
    broadcast_loading: bool = False  # observation only: |G_prev| / limit shown to every prosumer
    ev_rate_feature: bool = False  # observation only: EV charging share needed until departure
    ev_action_prior: bool = False  # observation only: even-spread EV action, the policy's prior
    ev_deadline_guard: bool = False  # item 2: raise each EV's charging to what its target needs
    # observation only: None, "headroom", "envelope" or "price"
    congestion_signal: str | None = None
    carbon_kg_per_kwh: np.ndarray | None = None  # [S] grid carbon intensity [kg CO2/kWh]
    names: tuple[str, ...] = field(default=())  # prosumer names
    sources: tuple[str, ...] = field(default=())  # dataset building each prosumer's load is from
    # the agents' interaction graph and groups (energy/feeders.py): metadata, no physics
    feeder: np.ndarray | None = None  # [N] feeder of each prosumer (None = default layout)
    feeder_reach: int | None = None  # neighbours at most this many places along the feeder
    graph_groups: np.ndarray | None = None  # [N] replaces the device groups of AgentSpec
    graph_neighbors: np.ndarray | None = None  # [N, K] replaces the feeder neighbours

    @property
    def n(self) -> int:
        """Number of prosumers N."""
        return int(self.load_kw.shape[1])

    @property
    def steps(self) -> int:
        """Steps S in the span."""
        return int(self.load_kw.shape[0])

    def thermal_a(self) -> np.ndarray:
        """a = exp(−Δt / (R C)) per prosumer [-] (1 where there is no heat pump)."""
        rc = self.r_c_per_kw * self.c_kwh_per_c
        return np.where(
            self.has_hp & (rc > 0), np.exp(-self.step_h / np.where(rc > 0, rc, 1.0)), 1.0
        )

    def ev_arrives(self) -> np.ndarray:
        """``[S, N]`` bool: a stay begins at this step (the first step counts if present)."""
        prev = np.vstack([np.zeros((1, self.n), bool), self.ev_present[:-1]])
        return self.ev_present & ~prev

    def ev_departs(self) -> np.ndarray:
        """``[S, N]`` bool: present now and absent next step (the last step of the span never)."""
        nxt = np.vstack([self.ev_present[1:], self.ev_present[-1:]])
        return self.ev_present & ~nxt

    def ev_stay_steps(self) -> np.ndarray:
        """``[S, N]`` steps of the current stay from each step on, that step included (0 while
        absent; a stay that reaches the span's end counts to the end)."""
        pres = self.ev_present.astype(bool) & np.asarray(self.has_ev, bool)[None, :]
        dep = self.ev_departs()
        left = np.zeros(pres.shape, np.float64)
        for i in range(self.steps - 1, -1, -1):
            nxt = left[i + 1] if i + 1 < self.steps else 0.0
            left[i] = np.where(pres[i], 1.0 + np.where(dep[i], 0.0, nxt), 0.0)
        return left

    def ev_departure_step(self, stay: np.ndarray | None = None) -> np.ndarray:
        """``[S, N]`` span step at which the current stay departs (its last step at home), or
        ``inf`` while absent and for a stay that outlasts the span; ``stay``: the result of
        :meth:`ev_stay_steps` when the caller has it."""
        stay = self.ev_stay_steps() if stay is None else stay
        last = np.arange(self.steps, dtype=np.float64)[:, None] + stay - 1.0
        rows = np.clip(last, 0, self.steps - 1).astype(np.int64)
        departs = np.take_along_axis(self.ev_departs(), rows, 0) & (stay > 0)
        return np.where(departs, last, np.inf)

    def slice(self, start: int, stop: int) -> Community:
        """The same community over steps ``[start, stop)`` of the span."""
        sl = slice(start, stop)
        series = {
            k: getattr(self, k)[sl]
            for k in (
                "load_kw",
                "pv_kw",
                "price_usd_per_kwh",
                "outdoor_c",
                "cop",
                "ev_present",
                "ev_arrival_kwh",
            )
        }
        if self.carbon_kg_per_kwh is not None:
            series["carbon_kg_per_kwh"] = self.carbon_kg_per_kwh[sl]
        return replace(self, time=self.time[sl], **series)
