"""Pure, batched device physics of an energy prosumer (the equations of
:mod:`gridmarl.energy.community`, items 2 to 5).

Every function takes and returns tensors that broadcast against each other (typically
``[B, N]`` states with ``[N]`` parameters); nothing is modified in place and nothing is stored.
Sign conventions: power drawn from the house connection is positive; a battery charges with
``p_c >= 0`` and discharges with ``p_d >= 0`` (``battery_kw = p_c - p_d``, + charge / - discharge).
"""

from __future__ import annotations

import torch
from torch import Tensor


def battery_project(
    u: Tensor,
    e_kwh: Tensor,
    e_max_kwh: Tensor,
    e_min_kwh: Tensor,
    p_max_kw: Tensor,
    eta_c: float,
    eta_d: float,
    step_h: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Project a battery setpoint onto the feasible set.

    ``u`` is clipped to [-1, 1] and ``p = u * p_max``; ``p >= 0`` charges with
    ``p_c = min(p, (e_max - e) / (eta_c dt))``, ``p < 0`` discharges with
    ``p_d = min(-p, (e - e_min) eta_d / dt)`` (both headrooms floored at 0).

    Args:
        u: setpoint [-] (any real; clipped to [-1, 1]).
        e_kwh: stored energy e before the step [kWh].
        e_max_kwh, e_min_kwh: energy limits [kWh].
        p_max_kw: charge / discharge power limit P_max [kW].
        eta_c, eta_d: charge / discharge efficiency [-].
        step_h: step length dt [h].

    Returns:
        ``(p_c, p_d, clipped)``: charge power [kW], discharge power [kW] and
        ``|u_clipped * p_max - (p_c - p_d)|``, the power the projection removed [kW].
    """
    p = u.clamp(-1.0, 1.0) * p_max_kw
    head_c = ((e_max_kwh - e_kwh) / (eta_c * step_h)).clamp_min(0.0)
    head_d = ((e_kwh - e_min_kwh) * eta_d / step_h).clamp_min(0.0)
    p_c = torch.minimum(p.clamp_min(0.0), head_c)
    p_d = torch.minimum((-p).clamp_min(0.0), head_d)
    clipped = (p - (p_c - p_d)).abs()
    return p_c, p_d, clipped


def battery_update(
    e_kwh: Tensor, p_c_kw: Tensor, p_d_kw: Tensor, eta_c: float, eta_d: float, step_h: float
) -> Tensor:
    """Stored energy after the step: ``e + (eta_c p_c - p_d / eta_d) dt`` [kWh]."""
    return e_kwh + (eta_c * p_c_kw - p_d_kw / eta_d) * step_h


def battery_degradation(
    p_c_kw: Tensor, p_d_kw: Tensor, usd_per_kwh: float, step_h: float
) -> Tensor:
    """Degradation cost ``c_deg (p_c + p_d) dt`` [$]."""
    return usd_per_kwh * (p_c_kw + p_d_kw) * step_h


def ev_project(
    u: Tensor,
    e_kwh: Tensor,
    present: Tensor,
    cap_kwh: Tensor,
    p_max_kw: Tensor,
    eta: float,
    step_h: float,
    floor_kw: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Project an EV charge request onto the feasible set.

    ``u`` is clipped to [-1, 1], mapped to ``share = (u + 1) / 2`` in [0, 1], and
    ``p_ev = present * min(max(share * P_ev, floor), (cap - e) / (eta dt))`` (headroom floored
    at 0; ``floor`` = 0 without a deadline guard, :func:`ev_deadline_floor`).

    Args:
        u: charge request [-].
        e_kwh: EV energy before the step [kWh].
        present: bool, EV at home during the step.
        cap_kwh: EV battery capacity [kWh].
        p_max_kw: charger power P_ev [kW].
        eta: charge efficiency eta_ev [-].
        step_h: step length dt [h].
        floor_kw: least charge power of the step [kW] (the deadline guard), or None.

    Returns:
        ``(p_ev, clipped)``: charge power [kW] and ``|share * P_ev - p_ev|`` [kW] (the whole
        request is clipped when the EV is absent; the guard's addition counts too).
    """
    want = (u.clamp(-1.0, 1.0) + 1.0) * 0.5 * p_max_kw
    head = ((cap_kwh - e_kwh) / (eta * step_h)).clamp_min(0.0)
    ask = want if floor_kw is None else torch.maximum(want, floor_kw)
    p_ev = torch.where(present, torch.minimum(ask, head), torch.zeros_like(want))
    return p_ev, (want - p_ev).abs()


def ev_deadline_floor(
    e_kwh: Tensor,
    target_kwh: Tensor,
    hours_left_h: Tensor,
    p_max_kw: Tensor,
    eta: float,
    step_h: float,
) -> Tensor:
    """Least charge power this step that still reaches the target at departure [kW] (the
    deadline guard, ``community.ev.deadline_guard``): what the full charger cannot deliver in
    the stay's later steps, ``clip((need / η − (left − Δt) P_ev) / Δt, 0, P_ev)`` with
    ``need = max(0, target − e)`` [kWh] and ``left`` the hours of the stay from this step on,
    this step included [h].  0 while the target is still reachable later; ``P_ev`` when it is
    not reachable at all (the shortfall is then as small as the charger allows).

    Args:
        e_kwh: EV energy before the step [kWh].
        target_kwh: energy wanted at departure [kWh].
        hours_left_h: hours of the stay from this step on, this step included [h].
        p_max_kw: charger power P_ev [kW].
        eta: charge efficiency η_ev [-].
        step_h: step length Δt [h].
    """
    need = (target_kwh - e_kwh).clamp_min(0.0) / eta
    later = (hours_left_h - step_h).clamp_min(0.0) * p_max_kw
    return torch.minimum(((need - later) / step_h).clamp_min(0.0), p_max_kw)


def ev_update(e_kwh: Tensor, p_ev_kw: Tensor, eta: float, step_h: float) -> Tensor:
    """EV energy after the step: ``e + eta p_ev dt`` [kWh]."""
    return e_kwh + eta * p_ev_kw * step_h


def ev_shortfall(e_kwh: Tensor, target_kwh: Tensor, departs: Tensor) -> Tensor:
    """Energy short of the target at departure: ``departs * max(0, target - e)`` [kWh]."""
    short = (target_kwh - e_kwh).clamp_min(0.0)
    return torch.where(departs, short, torch.zeros_like(short))


def hp_power(mode: Tensor, hp_kw: Tensor, modes: int, has_hp: Tensor) -> tuple[Tensor, Tensor]:
    """Electric heat-pump power of a discrete mode.

    Modes outside ``{0 … M-1}`` are clamped into it; prosumers without a heat pump run mode 0.

    Args:
        mode: ``long`` requested mode.
        hp_kw: electric power at full mode [kW].
        modes: number of modes M (>= 2).
        has_hp: bool, prosumer owns a heat pump.

    Returns:
        ``(p_hp, mode_applied)``: power ``hp_kw * m / (M - 1)`` [kW] and the applied mode.
    """
    m = torch.where(has_hp, mode.clamp(0, modes - 1), torch.zeros_like(mode))
    return hp_kw * m.to(hp_kw.dtype) / (modes - 1), m


def thermal_step(
    theta_c: Tensor, outdoor_c: Tensor, p_hp_kw: Tensor, cop: Tensor, r_c_per_kw: Tensor, a: Tensor
) -> Tensor:
    """One exact step of the first-order RC building model.

    ``theta' = a theta + (1 - a)(T_out + R COP P_hp)`` with ``a = exp(-dt / (R C))``: the exact
    discretisation of ``C dtheta/dt = (T_out - theta) / R + COP P_hp`` for inputs held over
    the step.  ``a = 1`` (no heat pump) keeps ``theta``.

    Args:
        theta_c: indoor temperature [C].
        outdoor_c: outdoor temperature T_out [C].
        p_hp_kw: electric heat-pump power [kW].
        cop: coefficient of performance [-].
        r_c_per_kw: thermal resistance R [C/kW].
        a: decay factor [-].

    Returns:
        indoor temperature after the step [C].
    """
    return a * theta_c + (1.0 - a) * (outdoor_c + r_c_per_kw * cop * p_hp_kw)


def thermal_decay(r_c_per_kw: Tensor, c_kwh_per_c: Tensor, has_hp: Tensor, step_h: float) -> Tensor:
    """``a = exp(-dt / (R C))`` [-]; 1 where there is no heat pump or ``R C = 0``."""
    rc = r_c_per_kw * c_kwh_per_c
    ok = has_hp & (rc > 0)
    return torch.where(
        ok, torch.exp(-step_h / torch.where(rc > 0, rc, torch.ones_like(rc))), torch.ones_like(rc)
    )


def comfort_violation(theta_c: Tensor, lo_c: Tensor, hi_c: Tensor) -> Tensor:
    """Degrees outside the comfort band: ``max(0, lo - theta) + max(0, theta - hi)`` [C]."""
    return (lo_c - theta_c).clamp_min(0.0) + (theta_c - hi_c).clamp_min(0.0)
