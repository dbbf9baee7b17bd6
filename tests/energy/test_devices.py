"""Device physics against closed-form answers."""

from __future__ import annotations

import math

import pytest
import torch

from gridmarl.energy import devices

T64 = torch.float64


def t(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=T64)


def test_battery_soc_after_known_schedule() -> None:
    eta_c, eta_d, dt = 0.95, 0.9, 0.5
    e = t(5.0)
    # 2 kW charge for 4 steps (2 h), then 3 kW discharge for 2 steps (1 h)
    for u in [0.5] * 4 + [-0.75] * 2:
        p_c, p_d, clip = devices.battery_project(t(u), e, t(10.0), t(1.0), t(4.0), eta_c, eta_d, dt)
        assert clip.item() == 0.0
        e = devices.battery_update(e, p_c, p_d, eta_c, eta_d, dt)
    assert e.item() == pytest.approx(5.0 + eta_c * 2.0 * 2.0 - 3.0 / eta_d * 1.0, abs=1e-12)


def test_battery_projection_clips_at_limits_and_records_it() -> None:
    eta, dt = 0.95, 1.0
    # charge near full: headroom (10 - 9.5) / 0.95 kW
    p_c, p_d, clip = devices.battery_project(t(1.0), t(9.5), t(10.0), t(1.0), t(4.0), eta, eta, dt)
    assert p_c.item() == pytest.approx(0.5 / 0.95)
    assert p_d.item() == 0.0
    assert clip.item() == pytest.approx(4.0 - 0.5 / 0.95)
    e = devices.battery_update(t(9.5), p_c, p_d, eta, eta, dt)
    assert e.item() == pytest.approx(10.0)
    # discharge near empty: headroom (1.5 - 1) * 0.95 kW
    p_c, p_d, clip = devices.battery_project(t(-1.0), t(1.5), t(10.0), t(1.0), t(4.0), eta, eta, dt)
    assert (p_c.item(), p_d.item()) == (0.0, pytest.approx(0.5 * 0.95))
    assert clip.item() == pytest.approx(4.0 - 0.5 * 0.95)
    assert devices.battery_update(t(1.5), p_c, p_d, eta, eta, dt).item() == pytest.approx(1.0)
    # a setpoint outside [-1, 1] is clipped to the rating first (not counted as clipped power)
    p_c, _, clip = devices.battery_project(t(3.0), t(5.0), t(10.0), t(1.0), t(4.0), eta, eta, dt)
    assert (p_c.item(), clip.item()) == (4.0, 0.0)
    # below e_min (headroom floored at 0): nothing to discharge
    _, p_d, _ = devices.battery_project(t(-1.0), t(0.5), t(10.0), t(1.0), t(4.0), eta, eta, dt)
    assert p_d.item() == 0.0


def test_battery_degradation() -> None:
    assert devices.battery_degradation(t(2.0), t(0.0), 0.01, 0.25).item() == pytest.approx(0.005)


def test_ev_absent_gets_no_charge_and_full_request_is_clipped() -> None:
    u = t(1.0, 0.0, -1.0)
    present = torch.tensor([False, False, False])
    p, clip = devices.ev_project(u, t(10, 10, 10), present, t(50, 50, 50), t(7, 7, 7), 0.9, 1.0)
    assert p.tolist() == [0.0, 0.0, 0.0]
    assert clip.tolist() == [7.0, 3.5, 0.0]


def test_ev_present_share_and_headroom() -> None:
    present = torch.tensor([True, True, True])
    p, clip = devices.ev_project(
        t(1.0, 0.0, 1.0), t(10.0, 10.0, 48.0), present, t(50, 50, 50), t(7, 7, 7), 0.9, 1.0
    )
    assert p[:2].tolist() == [7.0, 3.5]
    assert p[2].item() == pytest.approx(2.0 / 0.9)
    assert clip[2].item() == pytest.approx(7.0 - 2.0 / 0.9)
    e = devices.ev_update(t(48.0), p[2:], 0.9, 1.0)
    assert e.item() == pytest.approx(50.0)


def test_ev_shortfall_only_at_departure() -> None:
    short = devices.ev_shortfall(
        t(30.0, 30.0, 45.0), t(40.0, 40.0, 40.0), torch.tensor([True, False, True])
    )
    assert short.tolist() == [10.0, 0.0, 0.0]


def test_hp_power_modes_and_no_heat_pump() -> None:
    has = torch.tensor([True, True, True, False])
    p, m = devices.hp_power(torch.tensor([0, 1, 5, 2]), t(3.0, 3.0, 3.0, 3.0), 3, has)
    assert p.tolist() == [0.0, 1.5, 3.0, 0.0]
    assert m.tolist() == [0, 1, 2, 0]


def test_rc_step_matches_analytic_exponential() -> None:
    r, c, cop, p, tout, th0, dt = 5.0, 4.0, 3.0, 1.2, 2.0, 21.0, 0.25
    has = torch.tensor([True])
    a = devices.thermal_decay(t(r), t(c), has, dt)
    assert a.item() == pytest.approx(math.exp(-dt / (r * c)))
    theta = t(th0)
    for _ in range(40):  # 10 h
        theta = devices.thermal_step(theta, t(tout), t(p), t(cop), t(r), a)
    steady = tout + r * cop * p
    exact = steady + (th0 - steady) * math.exp(-10.0 / (r * c))
    assert theta.item() == pytest.approx(exact, abs=1e-10)


def test_thermal_decay_without_heat_pump_is_one() -> None:
    a = devices.thermal_decay(t(5.0, 0.0), t(4.0, 0.0), torch.tensor([False, True]), 1.0)
    assert a.tolist() == [1.0, 1.0]


def test_comfort_violation() -> None:
    v = devices.comfort_violation(t(19.0, 21.0, 24.5), t(20.0, 20.0, 20.0), t(23.0, 23.0, 23.0))
    assert v.tolist() == [1.0, 0.0, 1.5]
