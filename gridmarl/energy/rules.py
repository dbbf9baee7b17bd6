"""Rule baselines of the energy domain: decentralised controllers that read each prosumer's
own ``Observation.local`` features (indices of :attr:`CommunityEnv.F`, unscaled with the
env's class constants) and nothing else.

Features used (see the table in :mod:`gridmarl.energy.env`):

| feature | idx | used by |
|---|---|---|
| load, pv | 0, 1 | RuleBased battery |
| price_level | 4 | RuleBased (cheap hours) |
| ev_present | 9 | both (EV) |
| ev_hours_left, ev_need_hours | 10, 11 | RuleBased EV deadline |
| theta, theta_lo, theta_hi | 12, 13, 14 | both (thermostat) |
| has_battery, has_hp | 16, 18 | both |
| battery_kw | 19 | RuleBased battery |
| ev_kw, hp_kw | 21, 22 | RuleBased (planned own consumption) |

The number of heat-pump modes M is read from ``obs.action_mask`` (``[B, N, M]``); a masked mode
is never chosen.

Thermostat (both controllers; state-free, a pure function of the observation):
``mode = M−1`` (full) when θ < θ_lo + ``on_c`` (0.5 C), ``0`` (off) when θ > θ_lo + ``off_c``
(1.5 C), otherwise the mid mode ``M // 2``.  Heat pumps only heat, so the band is kept from below
whenever full power outruns the losses; nothing can be done above θ_hi.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gridmarl.core.controller import Controller
from gridmarl.core.types import Action, Observation
from gridmarl.energy.env import CommunityEnv

F = CommunityEnv.F
_E = CommunityEnv


def _celsius(scaled: Tensor) -> Tensor:
    """Undo the temperature scaling of the local features [C]."""
    return _E.THETA_REF_C + _E.THETA_SCALE_C * scaled


def _n_modes(obs: Observation) -> int:
    if obs.action_mask is None:
        raise ValueError("the energy rules need obs.action_mask to know the heat-pump modes")
    return int(obs.action_mask.shape[-1])


def thermostat(
    obs: Observation, on_c: float = 0.5, off_c: float = 1.5, shift_c: Tensor | float = 0.0
) -> Tensor:
    """Heat-pump modes ``[B, N]`` of the hysteresis-free thermostat described above.

    Args:
        obs: the observation.
        on_c: full power below θ_lo + on_c [C].
        off_c: off above θ_lo + off_c [C].
        shift_c: raise both thresholds by this much [C] (``[B, N]`` or a scalar; pre-heating).
    """
    loc = obs.local
    m = _n_modes(obs)
    theta = _celsius(loc[..., F["theta"]])
    lo = _celsius(loc[..., F["theta_lo"]])
    mode = torch.full(theta.shape, m // 2, dtype=torch.long, device=loc.device)
    mode = torch.where(theta < lo + on_c + shift_c, torch.full_like(mode, m - 1), mode)
    mode = torch.where(theta > lo + off_c + shift_c, torch.zeros_like(mode), mode)
    allowed = obs.action_mask.gather(-1, mode[..., None])[..., 0]  # type: ignore[union-attr]
    has_hp = loc[..., F["has_hp"]] > 0.5
    return torch.where(allowed & has_hp, mode, torch.zeros_like(mode))


class NoControl(Controller):
    """The no-control reference of the headline KPI: battery idle (u_b = 0), the EV charges at
    full power whenever it is home (u_ev = 1), the heat pump follows the thermostat."""

    name = "no_control"

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """Battery 0, EV +1, thermostat modes."""
        loc = obs.local
        b, n = obs.batch_shape
        cont = torch.zeros(b, n, 2, dtype=loc.dtype, device=loc.device)
        cont[..., 1] = 1.0
        return Action(discrete=thermostat(obs), continuous=cont)


class RuleBased(Controller):
    """Self-consumption battery, cheap-hour EV charging and a pre-heating thermostat.

    * cheap = ``price_level <= cheap_level`` (the tariff's low band on a time-of-use tariff;
      every hour on a flat tariff).
    * heat pump: the thermostat, thresholds raised by ``preheat_c`` in cheap hours (capped so
      the off threshold stays ``0.5 C`` below θ_hi).
    * EV (when home and short of its target): in cheap hours, the average rate that reaches the
      target by departure, share = need_h / max(left_h − slack_h, 1 h) of the charger power
      (spreads charging over the night instead of stacking every EV on the first cheap hour);
      full power whenever the full-power charging time still needed reaches the time left minus
      ``slack_h``; otherwise off (u_ev = −1).
    * battery: covers the planned own residual r = load + P_hp + p_ev − pv [kW] (P_hp from the
      chosen mode, p_ev = charger power when charging): ``u_b = clip(−r / battery_kw, −1, 1)``
      — charge from surplus, discharge to cover the deficit — but it never discharges in cheap
      hours (the stored energy is worth more later).

    Args:
        cheap_level: price level at or below which an hour is cheap [-].
        slack_h: safety margin of the EV deadline rule [h].
        preheat_c: thermostat shift in cheap hours [C] (0 by default: pre-heating in the
            off-peak band stacks on the EV charging there and raises the transformer excess).
    """

    name = "rule_based"

    def __init__(
        self, cheap_level: float = 0.25, slack_h: float = 1.0, preheat_c: float = 0.0
    ) -> None:
        self.cheap_level = cheap_level
        self.slack_h = slack_h
        self.preheat_c = preheat_c

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """Rule actions ``[B, N]`` (see the class docstring)."""
        loc = obs.local
        m = _n_modes(obs)
        ps, hs = _E.POWER_SCALE_KW, _E.HOURS_SCALE_H
        cheap = loc[..., F["price_level"]] <= self.cheap_level
        room = _celsius(loc[..., F["theta_hi"]]) - _celsius(loc[..., F["theta_lo"]]) - 2.0
        shift = torch.where(
            cheap, torch.clamp(room, max=self.preheat_c).clamp_min(0.0), torch.zeros_like(room)
        )
        mode = thermostat(obs, shift_c=shift)

        present = loc[..., F["ev_present"]] > 0.5
        need_h = loc[..., F["ev_need_hours"]] * hs
        left_h = loc[..., F["ev_hours_left"]] * hs
        urgent = present & (need_h > 0) & (need_h >= left_h - self.slack_h)
        spread = (need_h / (left_h - self.slack_h).clamp_min(1.0)).clamp(0.0, 1.0)
        share = torch.where(
            urgent,
            torch.ones_like(need_h),
            torch.where(present & cheap, spread, torch.zeros_like(need_h)),
        )
        u_ev = 2.0 * share - 1.0

        p_hp = loc[..., F["hp_kw"]] * ps * mode.to(loc.dtype) / (m - 1)
        p_ev = share * loc[..., F["ev_kw"]] * ps
        resid = loc[..., F["load"]] * ps + p_hp + p_ev - loc[..., F["pv"]] * ps
        p_max = loc[..., F["battery_kw"]] * ps
        has_b = (loc[..., F["has_battery"]] > 0.5) & (p_max > 0)
        u_b = torch.where(
            has_b,
            (-resid / torch.where(has_b, p_max, torch.ones_like(p_max))),
            torch.zeros_like(p_max),
        ).clamp(-1.0, 1.0)
        u_b = torch.where(cheap, u_b.clamp_min(0.0), u_b)
        return Action(discrete=mode, continuous=torch.stack([u_b, u_ev], -1))
