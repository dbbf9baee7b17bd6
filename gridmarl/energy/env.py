"""``CommunityEnv``: B parallel episodes of an energy community, stepped as ``[B, N]`` tensors.

(Over 600 lines because the observation layout, its forecast noise and the records are one
tensor pipeline with the physics; training-only rewards are in :mod:`gridmarl.energy.shaping`.)

The physics, the market and the rewards are exactly the model of
:mod:`gridmarl.energy.community` (device functions in :mod:`gridmarl.energy.devices`, the
platform in :mod:`gridmarl.energy.market`); :mod:`gridmarl.energy.reference` is a slow
per-agent twin used by the differential tests.

Episodes.  Each env ``b`` has a start offset ``start[b]`` into the community's span and runs
``episode_steps`` steps (default: span − forecast_steps − 1, so that the last observation still
has a full forecast window and the EV departure test can look one step ahead).  With
``random_start`` each env samples its offset uniformly from the offsets that fit, from a
``torch.Generator`` re-seeded by ``reset(seed)``.  Fixed horizon: ``truncated`` (a time limit,
never ``terminated``) is True for every env after the last step, and the caller calls ``reset``
(no auto-reset).

Actions (``AgentSpec``):

| part | shape | meaning |
|---|---|---|
| discrete | ``[B, N]`` | heat-pump mode in {0 … M−1}, M = ``community.hp_modes`` (*) |
| continuous[..., 0] | [-1, 1] | battery setpoint u_b: ``u_b * battery_kw`` (+ charge) |
| continuous[..., 1] | [-1, 1] | EV charge u_ev: share ``(u_ev + 1) / 2`` of the charger power |

(*) prosumers without a heat pump are masked to mode 0.  Infeasible requests are projected
as community.py item 2 says; ``records()`` and ``info`` carry what was clipped.

Local features ``Observation.local[b, n, :]`` (all at the current step t, i.e. before the
action; scales are the class constants below):

| idx | name | value |
|---|---|---|
| 0 | load | L [kW] / POWER_SCALE_KW |
| 1 | pv | P_pv [kW] / POWER_SCALE_KW |
| 2 | price | import price π [$/kWh] / PRICE_SCALE_USD_PER_KWH |
| 3 | feed_in | feed-in tariff π_fi [$/kWh] / PRICE_SCALE_USD_PER_KWH |
| 4 | price_level | (π − min π) / (max π − min π) over the span (0 for a flat tariff) [-] |
| 5 | tod_sin | sin(2π · hour of day / 24) [-] |
| 6 | tod_cos | cos(2π · hour of day / 24) [-] |
| 7 | battery_soc | e / e_max [-] (0 without a battery) — **triplet** |
| 8 | ev_soc | e_ev / ev_kwh while present, else 0 [-] — **triplet** |
| 9 | ev_present | 1 when the EV is home during step t [-] |
| 10 | ev_hours_left | hours the EV stays, this step included [h] / HOURS_SCALE_H (0 when absent) |
| 11 | ev_need_hours | max(0, target − e_ev) / (η_ev P_ev) [h] / HOURS_SCALE_H (**) |
| 12 | theta | (θ − THETA_REF_C) / THETA_SCALE_C, indoor temperature [C] — **triplet** |
| 13 | theta_lo | (θ_lo − THETA_REF_C) / THETA_SCALE_C [C] |
| 14 | theta_hi | (θ_hi − THETA_REF_C) / THETA_SCALE_C [C] |
| 15 | outdoor | (T_out − THETA_REF_C) / OUTDOOR_SCALE_C [C] |
| 16 | has_battery | 1 / 0 |
| 17 | has_ev | 1 / 0 |
| 18 | has_hp | 1 / 0 |
| 19 | battery_kw | P_max [kW] / POWER_SCALE_KW |
| 20 | battery_kwh | e_max [kWh] / ENERGY_SCALE_KWH |
| 21 | ev_kw | charger power P_ev [kW] / POWER_SCALE_KW (0 without an EV) |
| 22 | hp_kw | heat-pump power at full mode [kW] / POWER_SCALE_KW (0 without) |
| 23 | cop | COP at step t [-] / COP_SCALE |
| 24 | grid_loading_prev | only with ``community.broadcast_loading`` (***) |
| next | ev_rate_needed | only with ``community.ev.rate_feature`` (****) |
| next | ev_prior_u | only with ``community.ev.action_prior`` (*****) |
| last | headroom_import, headroom_export | with ``community.congestion_signal: headroom`` (†) |
| last | envelope_import, envelope_export | with ``community.congestion_signal: envelope`` (§) |
| last | congestion_price | with ``community.congestion_signal: price`` (‡) |

(**) full-power charging time still needed to reach the target (0 when absent).
(***) abs(G) of the previous step / transformer limit [-], the same for every prosumer (0 at the
first step): a broadcast, not the prosumer's own information.
(****) ev_need_hours / ev_hours_left [-], capped at EV_RATE_CAP, 0 when absent: the share of
full charger power the EV needs on average from this step to its departure (above 1 the target
is out of reach).  Local information (features 10 and 11), given as the ratio.
(*****) the EV action u_ev that spreads the energy still needed evenly over the hours left,
2 · min(1, ev_need_hours / ev_hours_left) − 1 (−1 when absent or full), declared in
``spec.action_prior`` as the EV dimension's default action: a residual policy's Gaussian mean
is this plus its network's output.  Local information; rule and optimisation controllers
ignore it.
(†) what the trading platform can publish to every home about the transformer: with
G_exp = Σ_n (L − P_pv)[t] + F_{t−1}, the community's inflexible net load of this step (the
smart-meter data the platform clears on) plus the power the devices drew in the previous step
(F_{t−1} = Σ_n (x_n − L_n + P_pv,n) at t − 1, 0 at the first step), the headroom per home left
for more import, (limit − G_exp) / N, and for more export, (limit + G_exp) / N [kW] /
POWER_SCALE_KW; negative = the transformer is expected over its limit in that direction.
Per home, so a community of another size behind the same transformer reads the same scale.
(§) a dynamic operating envelope per home: (limit − G_inf) / N and (limit + G_inf) / N [kW] /
POWER_SCALE_KW with G_inf = Σ_n (L − P_pv)[t], the community's inflexible net load alone.  Unlike
the headroom it does not depend on what the devices drew before, so it does not move with the
homes' own response: a home whose flexible import stays within its envelope (and every home
doing so) keeps the transformer within its limit.  Negative = the inflexible load alone
overloads it; the homes' batteries must then cover the difference.
(‡) a congestion price ρ [$/kWh] / PRICE_SCALE_USD_PER_KWH on the same G_exp: c_over ·
clip((G_exp / limit − θ) / (1 − θ), 0, 1) for import, minus the same for export (−G_exp),
θ = CONGESTION_FROM = 0.8: 0 below 80 % loading, the over-limit charge at 100 %, negative when
export congests.  A signal only: nobody is billed it.
``TRIPLET_IDX = (7, 8, 12)`` picks the device triplet (battery SOC, EV SOC, indoor temperature).

Forecast ``[B, N, H, 3]`` for steps t+1 … t+H: (load / POWER_SCALE_KW, pv / POWER_SCALE_KW,
price / PRICE_SCALE_USD_PER_KWH).  ``forecast_kind="noisy"`` multiplies each value of lead k by
``max(0, 1 + noise_std · sqrt(k) · ε)`` with ε ~ N(0, 1) a counter-based draw fixed by
(reset seed, env, episode step, lead, prosumer, feature) — the price draw is shared by all
prosumers — so a forecast is reproducible and ``forecast_tensors`` returns the same numbers.

``state [B, N, local_dim + 1]`` = local + own net power x of the previous step [kW] /
POWER_SCALE_KW (0 at the first step).  ``global_ [B, 8]`` = (Σ load / (N · POWER_SCALE_KW),
Σ pv / (N · POWER_SCALE_KW), G of the previous step / (N · POWER_SCALE_KW),
price / PRICE_SCALE_USD_PER_KWH, price_level, tod_sin, tod_cos, transformer headroom
(limit − |G_prev|) / limit).

Groups and neighbours (``spec.groups`` / ``spec.neighbors``, :mod:`gridmarl.energy.feeders`):
by default prosumers are grouped by device-ownership class, code = has_battery + 2 has_ev +
4 has_hp, renumbered 0, 1, … in increasing code order over the codes present, and a
prosumer's neighbours are the other prosumers on its feeder (``community.feeder``; default
layout: one feeder per 10 prosumers in index order), padded with −1.  The community's
``graph_groups`` / ``graph_neighbors`` (the scenario's ``graph`` block) replace them.

Rewards [$ per step], the cost accounting and nothing else: ``team_reward = −community
cost`` and ``reward[b, n] = −(bill + own degradation + own comfort + own unmet + share of
transformer and peak costs)``, each prosumer's own share of the community's bill, summing to the
team reward (community.py).  Training-only credit assignment and reward shaping are wrappers
over this env (:mod:`gridmarl.energy.shaping`); they read the per-prosumer accounting of
``info`` and ``stored_energy()``.

``info`` holds ``[B]`` community totals of the step (``cost_usd``, ``grid_kw``, …, the KPIs'
inputs) and the per-prosumer accounting ``[B, N]``: ``net_kw`` x [kW], ``bill_usd`` (the
platform's bill) [$], ``own_cost_usd`` (degradation + comfort + EV unmet) [$], with the import
price ``price_usd_per_kwh [B]`` [$/kWh].
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from gridmarl.core.controller import check_action
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.seeding import make_generator, resolve_device
from gridmarl.core.types import Action, AgentSpec, Observation, PolicyShape, Step
from gridmarl.energy import devices, market
from gridmarl.energy.community import Community
from gridmarl.energy.feeders import device_groups, feeder_neighbors, feeder_of

_MASK32 = 0xFFFFFFFF
_HASH_MUL = 0x45D9F3B  # < 2**27, so (x < 2**32) * mul stays inside int64
_GOLDEN = 0x9E3779B9  # separates successive keys


def _mix(x: Tensor) -> Tensor:
    """A 32-bit integer hash (Wellons' lowbias32 family) on int64 tensors."""
    x = x & _MASK32
    x = (((x >> 16) ^ x) * _HASH_MUL) & _MASK32
    x = (((x >> 16) ^ x) * _HASH_MUL) & _MASK32
    return (x >> 16) ^ x


def counter_normal(*keys: Tensor | int) -> Tensor:
    """Standard normal draws that are a pure function of broadcast integer ``keys``.

    Box–Muller on two uniforms hashed from the keys: the same keys give the same number on any
    device and batch layout, which makes noisy forecasts reproducible per (env, step, lead).
    """
    dev = next((k.device for k in keys if isinstance(k, Tensor)), None)
    h = torch.zeros((), dtype=torch.long, device=dev)
    for k in keys:
        h = _mix(h + k + _GOLDEN)
    u1 = (_mix(h ^ 0x1234567).double() + 0.5) / 2.0**32
    u2 = (_mix(h ^ 0x7654321).double() + 0.5) / 2.0**32
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)


CONGESTION_FEATURES: dict[str, tuple[str, ...]] = {
    "headroom": ("headroom_import", "headroom_export"),
    "envelope": ("envelope_import", "envelope_export"),
    "price": ("congestion_price",),
}


def local_feature_names(
    broadcast_loading: bool,
    ev_rate_feature: bool,
    ev_action_prior: bool,
    congestion_signal: str | None = None,
) -> tuple[str, ...]:
    """Names of the ``local`` features: ``CommunityEnv.LOCAL_FEATURES`` and then the optional
    ones the scenario switches on (``community.market.broadcast_loading``,
    ``community.ev.rate_feature``, ``community.ev.action_prior``,
    ``community.congestion_signal``), in that order."""
    if congestion_signal not in (None, *CONGESTION_FEATURES):
        raise ValueError(
            f"congestion_signal {congestion_signal!r}; allowed: None, "
            + ", ".join(CONGESTION_FEATURES)
        )
    return (
        CommunityEnv.LOCAL_FEATURES
        + (("grid_loading_prev",) if broadcast_loading else ())
        + (("ev_rate_needed",) if ev_rate_feature else ())
        + (("ev_prior_u",) if ev_action_prior else ())
        + CONGESTION_FEATURES.get(congestion_signal or "", ())
    )


def policy_shape(
    local_features: tuple[str, ...], forecast_steps: int, hp_modes: int
) -> PolicyShape:
    """The sizes a policy must match (``AgentSpec`` without the agents): ``local_features``
    (:func:`local_feature_names`), the forecast window [steps] and the heat-pump modes (the
    discrete choices); two continuous actions (battery, EV)."""
    prior = local_features.index("ev_prior_u") if "ev_prior_u" in local_features else None
    return PolicyShape(
        local_dim=len(local_features),
        forecast_len=int(forecast_steps),
        forecast_dim=len(CommunityEnv.FORECAST_FEATURES),
        state_dim=len(local_features) + 1,
        global_dim=len(CommunityEnv.GLOBAL_FEATURES),
        n_discrete=int(hp_modes),
        n_continuous=2,
        # the EV dimension's default action (a residual policy adds it to its mean)
        action_prior=(-1, prior) if prior is not None else (),
        local_features=tuple(local_features),
    )


class CommunityEnv(MultiAgentEnv):
    """Batched energy-community env (see the module docstring for features and rewards).

    Its per-agent reward is the cost accounting (each prosumer's own bill share); training
    credit and shaping wrap it (:mod:`gridmarl.energy.shaping`).

    Args:
        community: the community and its series over the span.
        num_envs: parallel episodes B.
        device: ``cpu``, ``cuda``, ``auto`` or a ``torch.device``.
        dtype: float dtype of every tensor (float64 for evaluation, float32 for training).
        episode_steps: steps T per episode (default span − forecast_steps − 1).
        forecast_steps: forecast window H [steps].
        forecast_kind: ``perfect`` or ``noisy``.
        noise_std: relative forecast error at one step ahead [-].
        random_start: sample each env's start offset (training) instead of starting at 0.
        seed: initial seed of the start sampler and of the forecast noise.
        record: keep env 0's per-step tensors for ``records()`` (default: ``num_envs == 1``).
    """

    POWER_SCALE_KW = 5.0
    ENERGY_SCALE_KWH = 20.0
    PRICE_SCALE_USD_PER_KWH = 0.5
    THETA_REF_C = 20.0
    THETA_SCALE_C = 5.0
    OUTDOOR_SCALE_C = 10.0
    HOURS_SCALE_H = 24.0
    COP_SCALE = 4.0
    EV_RATE_CAP = 2.0  # cap on the ev_rate_needed feature [-]
    CONGESTION_FROM = 0.8  # expected loading [-] where the congestion price starts to rise

    LOCAL_FEATURES: tuple[str, ...] = (
        "load",
        "pv",
        "price",
        "feed_in",
        "price_level",
        "tod_sin",
        "tod_cos",
        "battery_soc",
        "ev_soc",
        "ev_present",
        "ev_hours_left",
        "ev_need_hours",
        "theta",
        "theta_lo",
        "theta_hi",
        "outdoor",
        "has_battery",
        "has_ev",
        "has_hp",
        "battery_kw",
        "battery_kwh",
        "ev_kw",
        "hp_kw",
        "cop",
    )
    F = {name: i for i, name in enumerate(LOCAL_FEATURES)}
    TRIPLET_IDX: tuple[int, int, int] = (7, 8, 12)
    GLOBAL_FEATURES: tuple[str, ...] = (
        "load_mean",
        "pv_mean",
        "grid_prev_mean",
        "price",
        "price_level",
        "tod_sin",
        "tod_cos",
        "headroom",
    )
    FORECAST_FEATURES: tuple[str, ...] = ("load", "pv", "price")

    def __init__(
        self,
        community: Community,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        episode_steps: int | None = None,
        forecast_steps: int = 3,
        forecast_kind: str = "perfect",
        noise_std: float = 0.1,
        random_start: bool = False,
        seed: int = 0,
        record: bool | None = None,
    ) -> None:
        if forecast_kind not in ("perfect", "noisy"):
            raise ValueError(f"forecast_kind must be 'perfect' or 'noisy', got {forecast_kind!r}")
        if community.hp_modes < 2:
            raise ValueError(f"community.hp_modes must be >= 2, got {community.hp_modes}")
        s = community.steps
        max_t = s - forecast_steps - 1
        if episode_steps is None:
            episode_steps = max_t
        if not 1 <= episode_steps <= max_t:
            raise ValueError(
                f"episode_steps={episode_steps} does not fit a span of {s} steps "
                f"with forecast_steps={forecast_steps}; allowed 1 … {max_t}"
            )
        self.community = community
        self.num_envs = int(num_envs)
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.dtype = dtype
        self.episode_len = int(episode_steps)
        self.forecast_steps = int(forecast_steps)
        self.forecast_kind = forecast_kind
        self.noise_std = float(noise_std)
        self.random_start = bool(random_start)
        self.record = (self.num_envs == 1) if record is None else bool(record)
        self.local_features = local_feature_names(
            community.broadcast_loading,
            community.ev_rate_feature,
            community.ev_action_prior,
            community.congestion_signal,
        )
        # rows of the optional features in the observation buffer (None when off)
        idx_of = {name: i for i, name in enumerate(self.local_features)}
        self._loading_idx = idx_of.get("grid_loading_prev")
        self._rate_idx = idx_of.get("ev_rate_needed")
        self._prior_idx = idx_of.get("ev_prior_u")
        self._headroom_idx = idx_of.get("headroom_import")  # and the next row: export
        self._envelope_idx = idx_of.get("envelope_import")  # and the next row: export
        self._congestion_price_idx = idx_of.get("congestion_price")
        self.step_h = float(community.step_h)
        self.max_start = s - self.episode_len - self.forecast_steps - 1
        self._gen = make_generator(seed)
        self._build_tensors()
        self.spec = self._build_spec()
        self.t = 0
        self.start = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self._noise_seed = 0
        self._noise_env = torch.arange(self.num_envs, device=self.device)
        self._started = False

    # -- construction ---------------------------------------------------------------------------
    def _build_tensors(self) -> None:
        c = self.community
        dev, dt = self.device, self.dtype

        def f(a: Any) -> Tensor:
            return torch.as_tensor(np.asarray(a, dtype=np.float64), device=dev).to(dt)

        def b(a: Any) -> Tensor:
            return torch.as_tensor(np.asarray(a, dtype=bool), device=dev)

        has_ev = np.asarray(c.has_ev, bool)
        pres = np.asarray(c.ev_present, bool) & has_ev[None, :]
        arrive = pres.copy()
        arrive[1:] &= ~pres[:-1]
        depart = np.zeros_like(pres)
        depart[:-1] = pres[:-1] & ~pres[1:]
        left = c.ev_stay_steps()  # steps of the stay from s on, s included
        price = np.asarray(c.price_usd_per_kwh, np.float64)
        spread = float(price.max() - price.min())
        level = (price - price.min()) / spread if spread > 0 else np.zeros_like(price)
        hours = np.asarray(c.time.hour + c.time.minute / 60.0, np.float64)

        self._load, self._pv, self._cop = f(c.load_kw), f(c.pv_kw), f(c.cop)
        self._price, self._tout = f(price), f(c.outdoor_c)
        self._present, self._arrive, self._depart = b(pres), b(arrive), b(depart)
        self._arr_kwh = f(c.ev_arrival_kwh)
        self._hours_left = f(left * c.step_h)
        if c.ev_deadline_guard:  # [S, N] span step of the stay's departure, inf without one
            self._departure = f(c.ev_departure_step(left))
        self._level = f(level)
        self._tod_sin = f(np.sin(2 * np.pi * hours / 24.0))
        self._tod_cos = f(np.cos(2 * np.pi * hours / 24.0))

        self._e_max, self._e_min = f(c.battery_kwh), f(c.battery_min_kwh)
        self._p_bmax, self._e_init = f(c.battery_kw), f(c.battery_init_kwh)
        self._has_batt = b(np.asarray(c.battery_kwh) > 0)
        self._has_ev = b(has_ev)
        self._ev_cap, self._ev_kw, self._ev_target = f(c.ev_kwh), f(c.ev_kw), f(c.ev_target_kwh)
        self._has_hp = b(c.has_hp)
        self._hp_kw, self._r = f(c.hp_kw), f(c.r_c_per_kw)
        self._a = f(c.thermal_a())
        self._lo, self._hi, self._theta_init = f(c.theta_lo_c), f(c.theta_hi_c), f(c.theta_init_c)

        fl = self._has_batt.to(dt), self._has_ev.to(dt), self._has_hp.to(dt)
        self._static = torch.stack(
            [
                (self._lo - self.THETA_REF_C) / self.THETA_SCALE_C,
                (self._hi - self.THETA_REF_C) / self.THETA_SCALE_C,
                *fl,
                self._p_bmax / self.POWER_SCALE_KW,
                self._e_max / self.ENERGY_SCALE_KWH,
                self._ev_kw * fl[1] / self.POWER_SCALE_KW,
                self._hp_kw * fl[2] / self.POWER_SCALE_KW,
            ],
            0,
        )  # [9, N] = features 13, 14, 16 … 22
        self._has_batt_f = fl[0]
        self._e_max_safe = torch.where(self._e_max > 0, self._e_max, torch.ones_like(self._e_max))
        self._ev_cap_safe = torch.where(
            self._ev_cap > 0, self._ev_cap, torch.ones_like(self._ev_cap)
        )
        rate = c.ev_eta * self._ev_kw
        self._ev_rate_safe = torch.where(rate > 0, rate, torch.ones_like(rate))
        m = c.hp_modes
        mask = torch.ones(c.n, m, dtype=torch.bool, device=dev)
        mask[:, 1:] = self._has_hp[:, None]
        self._mask = mask

    def _build_spec(self) -> AgentSpec:
        c = self.community
        n = c.n
        groups = c.graph_groups if c.graph_groups is not None else device_groups(c)
        nbr = c.graph_neighbors
        if nbr is None:
            nbr = feeder_neighbors(feeder_of(c), c.feeder_reach)
        names = tuple(c.names) if len(c.names) == n else tuple(f"prosumer_{i}" for i in range(n))
        return AgentSpec(
            n_agents=n,
            groups=torch.as_tensor(np.asarray(groups).reshape(-1), dtype=torch.long),
            neighbors=torch.as_tensor(np.asarray(nbr), dtype=torch.long),
            agent_names=names,
            **policy_shape(self.local_features, self.forecast_steps, c.hp_modes).spec_fields(),
        )

    # -- public accessors -----------------------------------------------------------------------
    def device_state(self) -> dict[str, Tensor]:
        """Device states before the next action: ``battery_kwh [B,N]`` [kWh], ``ev_kwh [B,N]``
        [kWh] (after this step's arrival; stale while the EV is away), ``theta_c [B,N]`` [C],
        ``peak_kw [B]`` running peak import of the episode [kW]."""
        return {
            "battery_kwh": self._e,
            "ev_kwh": self._e_ev,
            "theta_c": self._theta,
            "peak_kw": self._peak,
        }

    def stored_energy(self) -> dict[str, Tensor]:
        """Energy stored now, before the next action: ``battery_kwh [B,N]`` [kWh] and
        ``ev_kwh [B,N]`` [kWh] in the EV parked at home at the current step (after its
        arrival; 0 while away).  After the last step: the episode's final storage."""
        pres = self._present[self.start + self.t]
        return {"battery_kwh": self._e, "ev_kwh": self._e_ev * pres}

    def forecast_tensors(self, steps: int) -> dict[str, Tensor]:
        """Series for steps t … t+steps−1 in physical units.

        Returns ``load_kw [B, N, steps]``, ``pv_kw [B, N, steps]``,
        ``price_usd_per_kwh [B, steps]``.  Index 0 (the current step) is exact; later ones
        carry the agents' forecast noise when ``forecast_kind == "noisy"``; indices past the
        span's end repeat its last step.
        """
        load, pv, price = self._window(0, steps)
        return {"load_kw": load, "pv_kw": pv, "price_usd_per_kwh": price}

    def _window(self, lead0: int, steps: int) -> tuple[Tensor, Tensor, Tensor]:
        """Series at leads ``lead0 … lead0+steps−1`` from the current step, noisy if asked:
        ``load [B,N,L]``, ``pv [B,N,L]``, ``price [B,L]``."""
        leads = torch.arange(lead0, lead0 + steps, device=self.device)
        idx = (self.start[:, None] + self.t + leads).clamp_max(self.community.steps - 1)
        load = self._load[idx].transpose(1, 2)
        pv = self._pv[idx].transpose(1, 2)
        price = self._price[idx]
        if self.forecast_kind == "noisy" and self.noise_std > 0:
            n = self.community.n
            env = self._noise_env[:, None, None, None]
            agent = torch.arange(n, device=self.device)[None, :, None, None]
            lk = leads[None, None, :, None]
            feat = torch.arange(2, device=self.device)[None, None, None, :]
            eps = counter_normal(self._noise_seed, env, self.t, lk, agent, feat)
            eps_p = counter_normal(self._noise_seed, env[:, 0], self.t, lk[:, 0], n, 2)[..., 0]
            amp = self.noise_std * torch.sqrt(leads.double())
            mul = (1.0 + amp[None, None, :, None] * eps).clamp_min(0.0).to(self.dtype)
            mul_p = (1.0 + amp[None, :] * eps_p).clamp_min(0.0).to(self.dtype)
            load, pv, price = load * mul[..., 0], pv * mul[..., 1], price * mul_p
        return load, pv, price

    # -- episode --------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> Observation:
        """Start B episodes; ``seed`` re-seeds the start sampler and the forecast noise."""
        return self._reset(seed, 1)

    def reset_copies(self, seed: int | None, copies: int) -> Observation:
        """Start ``E = B / copies`` episodes, each run by ``copies`` envs: env ``b`` gets episode
        ``b mod E``'s start offset and forecast noise (see ``MultiAgentEnv.reset_copies``)."""
        if copies < 1 or self.num_envs % copies:
            raise ValueError(f"copies={copies} must divide num_envs={self.num_envs}")
        return self._reset(seed, copies)

    def _reset(self, seed: int | None, copies: int) -> Observation:
        if seed is not None:
            self._gen.manual_seed(int(seed))
        self._noise_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self._gen))
        episodes = self.num_envs // copies
        if self.random_start and self.max_start > 0:
            start = torch.randint(0, self.max_start + 1, (episodes,), generator=self._gen)
        else:
            start = torch.zeros(episodes, dtype=torch.long)
        self.start = start.repeat(copies).to(self.device)
        # the forecast noise is keyed by episode, so the copies of one episode see the same
        self._noise_env = torch.arange(self.num_envs, device=self.device) % episodes
        self.t = 0
        b, n = self.num_envs, self.community.n
        shape = (b, n)
        self._e = self._e_init.expand(shape).clone()
        idx = self.start
        pres = self._present[idx]
        self._e_ev = torch.where(pres, self._arr_kwh[idx], torch.zeros_like(self._arr_kwh[idx]))
        self._theta = self._theta_init.expand(shape).clone()
        self._peak = torch.zeros(b, dtype=self.dtype, device=self.device)
        self._x_prev = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self._g_prev = torch.zeros(b, dtype=self.dtype, device=self.device)
        self._flex_prev = torch.zeros(b, dtype=self.dtype, device=self.device)
        self._rec: list[dict[str, Tensor]] = []
        self._started = True
        return self._observe()

    def step(self, action: Action) -> Step:
        """Apply the joint action and advance every env one step (see community.py)."""
        if not self._started or self.t >= self.episode_len:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        check_action(self.spec, action, self.num_envs)
        c = self.community
        dt = self.step_h
        idx = self.start + self.t
        load, pv, cop = self._load[idx], self._pv[idx], self._cop[idx]
        price, tout = self._price[idx], self._tout[idx]
        present, departs = self._present[idx], self._depart[idx]
        u = action.continuous.to(self.device, self.dtype)

        p_hp, mode = devices.hp_power(
            action.discrete.to(self.device), self._hp_kw, c.hp_modes, self._has_hp
        )
        p_c, p_d, b_clip = devices.battery_project(
            u[..., 0],
            self._e,
            self._e_max,
            self._e_min,
            self._p_bmax,
            c.eta_charge,
            c.eta_discharge,
            dt,
        )
        floor = None
        if c.ev_deadline_guard:  # community.py item 2: the least power that meets the target
            floor = devices.ev_deadline_floor(
                self._e_ev, self._ev_target, self._hours_left[idx], self._ev_kw, c.ev_eta, dt
            )
            billed = self._departure[idx] < (self.start + self.episode_len)[:, None]
            floor = torch.where(billed, floor, torch.zeros_like(floor))
        p_ev, ev_clip = devices.ev_project(
            u[..., 1], self._e_ev, present, self._ev_cap, self._ev_kw, c.ev_eta, dt, floor
        )
        e = devices.battery_update(self._e, p_c, p_d, c.eta_charge, c.eta_discharge, dt)
        e_ev = devices.ev_update(self._e_ev, p_ev, c.ev_eta, dt)
        theta = torch.where(
            self._has_hp,
            devices.thermal_step(self._theta, tout[:, None], p_hp, cop, self._r, self._a),
            self._theta,
        )

        viol = torch.where(
            self._has_hp,
            devices.comfort_violation(theta, self._lo, self._hi),
            torch.zeros_like(theta),
        )
        comfort_usd = c.comfort_usd_per_c_h * viol * dt
        short = devices.ev_shortfall(e_ev, self._ev_target, departs)
        unmet_usd = c.unmet_usd_per_kwh * short
        deg_usd = devices.battery_degradation(p_c, p_d, c.degradation_usd_per_kwh, dt)

        x = load + p_hp + p_ev + p_c - p_d - pv
        clr = market.clear(x, price, c.feed_in_usd_per_kwh, dt)
        over_kw = market.transformer_excess(clr.grid_kw, c.transformer_kw)
        over_usd = c.over_limit_usd_per_kwh * over_kw * dt
        d_peak, peak = market.peak_increment(clr.import_kw, self._peak)
        peak_usd = c.peak_usd_per_kw * d_peak
        shares = market.cost_shares(x)
        own = deg_usd + comfort_usd + unmet_usd
        # the accounting reward: each prosumer's own bill share (community.py)
        agent_cost = clr.bills_usd + own + shares * (over_usd + peak_usd)[:, None]
        cost = clr.grid_cost_usd + own.sum(-1) + over_usd + peak_usd
        reward = -agent_cost
        # the EV energy of the next step, after its arrivals
        nidx = idx + 1
        e_ev_next = torch.where(self._arrive[nidx], self._arr_kwh[nidx], e_ev)

        if self.record:
            self._rec.append(
                {
                    "load_kw": load[0],
                    "pv_kw": pv[0],
                    "hp_kw": p_hp[0],
                    "hp_mode": mode[0],
                    "battery_charge_kw": p_c[0],
                    "battery_discharge_kw": p_d[0],
                    "soc_kwh": e[0],
                    "ev_kw": p_ev[0],
                    "ev_kwh": e_ev[0],
                    "ev_present": present[0],
                    "theta_c": theta[0],
                    "net_kw": x[0],
                    "bill_usd": clr.bills_usd[0],
                    "degradation_usd": deg_usd[0],
                    "comfort_c_h": viol[0] * dt,
                    "comfort_usd": comfort_usd[0],
                    "ev_unmet_kwh": short[0],
                    "ev_unmet_usd": unmet_usd[0],
                    "reward": reward[0],
                    "battery_clipped_kw": b_clip[0],
                    "ev_clipped_kw": ev_clip[0],
                    "grid_kw": clr.grid_kw[0],
                    "import_kw": clr.import_kw[0],
                    "export_kw": clr.export_kw[0],
                    "price_usd_per_kwh": price[0],
                    "grid_cost_usd": clr.grid_cost_usd[0],
                    "over_kwh": over_kw[0] * dt,
                    "over_usd": over_usd[0],
                    "peak_usd": peak_usd[0],
                    "p2p_traded_kwh": clr.traded_kwh[0],
                    "cost_usd": cost[0],
                }
            )

        self._e, self._theta, self._peak = e, theta, peak
        self._x_prev, self._g_prev = x, clr.grid_kw
        self._flex_prev = (x - (load - pv)).sum(-1)  # the devices' power Σ_n (x − L + P_pv)
        self.t += 1
        self._e_ev = e_ev_next

        info = {
            "cost_usd": cost,
            "grid_kw": clr.grid_kw,
            "import_kw": clr.import_kw,
            "export_kw": clr.export_kw,
            "grid_cost_usd": clr.grid_cost_usd,
            "p2p_traded_kwh": clr.traded_kwh,
            "over_kwh": over_kw * dt,
            "over_usd": over_usd,
            "peak_usd": peak_usd,
            "peak_kw": peak,
            "degradation_usd": deg_usd.sum(-1),
            "comfort_c_h": viol.sum(-1) * dt,
            "comfort_usd": comfort_usd.sum(-1),
            "ev_unmet_kwh": short.sum(-1),
            "ev_unmet_usd": unmet_usd.sum(-1),
            "battery_clipped_kw": b_clip.sum(-1),
            "ev_clipped_kw": ev_clip.sum(-1),
            "clipped_kw": b_clip.sum(-1) + ev_clip.sum(-1),
            # per-prosumer accounting [B, N] (gridmarl.energy.shaping reads it)
            "net_kw": x,
            "bill_usd": clr.bills_usd,
            "own_cost_usd": own,
            "price_usd_per_kwh": price,
        }
        # the fixed horizon is a time limit: the last step is truncated, never terminated
        truncated = torch.full(
            (self.num_envs,), self.t >= self.episode_len, dtype=torch.bool, device=self.device
        )
        return Step(
            obs=self._observe(),
            reward=reward,
            team_reward=-cost,
            terminated=torch.zeros_like(truncated),
            truncated=truncated,
            info=info,
        )

    def _observe(self) -> Observation:
        b, n = self.num_envs, self.community.n
        idx = self.start + self.t
        ps, pr = self.POWER_SCALE_KW, self.PRICE_SCALE_USD_PER_KWH
        load, pv, cop = self._load[idx], self._pv[idx], self._cop[idx]
        price, level = self._price[idx], self._level[idx]
        sin, cos, tout = self._tod_sin[idx], self._tod_cos[idx], self._tout[idx]
        pres_f = self._present[idx].to(self.dtype)
        need = (self._ev_target - self._e_ev).clamp_min(0.0) * pres_f
        need_h = need / self._ev_rate_safe  # full-power charging time still needed [h]
        left_h = self._hours_left[idx]  # [h]
        # feature-major [K+1, B, N] (row copies are contiguous), transposed once at the end
        k = len(self.local_features)
        buf = torch.empty(k + 1, b, n, dtype=self.dtype, device=self.device)
        buf[0] = load / ps
        buf[1] = pv / ps
        buf[2] = (price / pr)[:, None]
        buf[3] = self.community.feed_in_usd_per_kwh / pr
        buf[4] = level[:, None]
        buf[5] = sin[:, None]
        buf[6] = cos[:, None]
        buf[7] = self._e / self._e_max_safe * self._has_batt_f
        buf[8] = self._e_ev / self._ev_cap_safe * pres_f
        buf[9] = pres_f
        buf[10] = left_h / self.HOURS_SCALE_H
        buf[11] = need_h / self.HOURS_SCALE_H
        buf[12] = (self._theta - self.THETA_REF_C) / self.THETA_SCALE_C
        buf[13:15] = self._static[0:2, None, :]
        buf[15] = ((tout - self.THETA_REF_C) / self.OUTDOOR_SCALE_C)[:, None]
        buf[16:23] = self._static[2:, None, :]
        buf[23] = cop / self.COP_SCALE
        lim = self.community.transformer_kw
        if self._loading_idx is not None:
            buf[self._loading_idx] = (self._g_prev.abs() / lim)[:, None]
        if self._envelope_idx is not None:
            # the fair share per home of what the limit leaves after the inflexible net load
            g_inf, i = (load - pv).sum(-1), self._envelope_idx
            buf[i] = ((lim - g_inf) / (n * ps))[:, None]
            buf[i + 1] = ((lim + g_inf) / (n * ps))[:, None]
        if self._headroom_idx is not None or self._congestion_price_idx is not None:
            # the loading the platform expects: this step's inflexible net load (smart-meter
            # data it clears on) plus what the devices drew in the previous step [kW]
            g_exp = (load - pv).sum(-1) + self._flex_prev
            if self._headroom_idx is not None:
                i = self._headroom_idx
                buf[i] = ((lim - g_exp) / (n * ps))[:, None]
                buf[i + 1] = ((lim + g_exp) / (n * ps))[:, None]
            if self._congestion_price_idx is not None:
                th, width = self.CONGESTION_FROM, 1.0 - self.CONGESTION_FROM
                up = ((g_exp / lim - th) / width).clamp(0.0, 1.0)
                down = ((-g_exp / lim - th) / width).clamp(0.0, 1.0)
                rho = self.community.over_limit_usd_per_kwh * (up - down)
                buf[self._congestion_price_idx] = (rho / pr)[:, None]
        if self._rate_idx is not None or self._prior_idx is not None:
            rate = need_h / left_h.clamp_min(self.step_h)
            if self._rate_idx is not None:
                buf[self._rate_idx] = rate.clamp_max(self.EV_RATE_CAP)
            if self._prior_idx is not None:
                buf[self._prior_idx] = 2.0 * rate.clamp_max(1.0) - 1.0
        buf[k] = self._x_prev / ps
        state = buf.permute(1, 2, 0).contiguous()
        local = buf[:-1].permute(1, 2, 0).contiguous()
        if self.forecast_steps > 0:
            fl, fp, fpr = self._window(1, self.forecast_steps)
            forecast = torch.stack([fl / ps, fp / ps, (fpr / pr)[:, None, :].expand_as(fl)], -1)
        else:
            forecast = local.new_zeros(b, n, 0, len(self.FORECAST_FEATURES))
        glob = torch.stack(
            [
                load.sum(-1) / (n * ps),
                pv.sum(-1) / (n * ps),
                self._g_prev / (n * ps),
                price / pr,
                level,
                sin,
                cos,
                (lim - self._g_prev.abs()) / lim,
            ],
            -1,
        )
        return Observation(
            local=local,
            forecast=forecast,
            state=state,
            global_=glob,
            action_mask=self._mask.expand(b, n, -1),
        )

    # -- records --------------------------------------------------------------------------------
    _AGENT_COLS = (
        "load_kw",
        "pv_kw",
        "hp_kw",
        "hp_mode",
        "battery_kw",
        "battery_charge_kw",
        "battery_discharge_kw",
        "soc_kwh",
        "ev_kw",
        "ev_kwh",
        "ev_present",
        "theta_c",
        "net_kw",
        "price_usd_per_kwh",
        "bill_usd",
        "degradation_usd",
        "comfort_c_h",
        "comfort_usd",
        "ev_unmet_kwh",
        "ev_unmet_usd",
        "reward",
        "battery_clipped_kw",
        "ev_clipped_kw",
    )
    _COMMUNITY_COLS = (
        "grid_kw",
        "import_kw",
        "export_kw",
        "price_usd_per_kwh",
        "feed_in_usd_per_kwh",
        "grid_cost_usd",
        "over_kwh",
        "over_usd",
        "peak_usd",
        "p2p_traded_kwh",
        "cost_usd",
    )

    def _stacked(self) -> dict[str, np.ndarray]:
        if not self.record:
            raise RuntimeError("records are off: build the env with record=True")
        rec = getattr(self, "_rec", [])
        if not rec:
            return {}
        return {k: torch.stack([r[k] for r in rec]).detach().cpu().numpy() for k in rec[0]}

    def _times(self, steps: int) -> pd.DatetimeIndex:
        s0 = int(self.start[0])
        return self.community.time[s0 : s0 + steps]

    def records(self) -> pd.DataFrame:
        """One row per (step, prosumer) of env 0 of the current episode; units in names.

        ``battery_kw = battery_charge_kw − battery_discharge_kw`` (+ charge / − discharge);
        ``soc_kwh``, ``ev_kwh`` and ``theta_c`` are after the step; ``comfort_c_h`` is the
        violation times Δt [C·h]; ``reward`` is the per-agent reward [$].
        """
        d = self._stacked()
        n = self.community.n
        if not d:
            return pd.DataFrame(columns=["step", "time", "prosumer", *self._AGENT_COLS])
        t = d["load_kw"].shape[0]
        d["battery_kw"] = d["battery_charge_kw"] - d["battery_discharge_kw"]
        d["price_usd_per_kwh"] = np.repeat(d["price_usd_per_kwh"][:, None], n, axis=1)
        cols: dict[str, Any] = {
            "step": np.repeat(np.arange(t), n),
            "time": np.repeat(np.asarray(self._times(t)), n),
            "prosumer": np.tile(np.asarray(self.spec.agent_names, dtype=object), t),
        }
        for k in self._AGENT_COLS:
            cols[k] = d[k].reshape(-1)
        return pd.DataFrame(cols)

    def community_records(self) -> pd.DataFrame:
        """One row per step of env 0 of the current episode: grid flows [kW], prices [$/kWh],
        costs [$], transformer excess [kWh], energy traded between peers [kWh] and the grid
        carbon intensity [kg CO2/kWh] (NaN when the dataset has none)."""
        d = self._stacked()
        if not d:
            return pd.DataFrame(columns=["step", "time", *self._COMMUNITY_COLS])
        t = d["grid_kw"].shape[0]
        d["feed_in_usd_per_kwh"] = np.full(t, self.community.feed_in_usd_per_kwh)
        cols: dict[str, Any] = {"step": np.arange(t), "time": np.asarray(self._times(t))}
        for k in self._COMMUNITY_COLS:
            cols[k] = d[k]
        # the dataset's grid carbon intensity [kg CO2/kWh] (NaN without one), for the KPIs
        ci = self.community.carbon_kg_per_kwh
        s0 = int(self.start[0])
        cols["carbon_kg_per_kwh"] = np.full(t, np.nan) if ci is None else ci[s0 : s0 + t]
        return pd.DataFrame(cols)
