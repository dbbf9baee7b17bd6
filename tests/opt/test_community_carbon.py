"""The carbon price of the community MILP / MPC objective (``baselines_opt.community.carbon``):
replay consistency (env cost = objective − carbon charge), the MPC reaching the same optimum,
and what pricing carbon does to the emissions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from baselines_opt.community import MPCController, schedule_cost, solve_community_milp
from baselines_opt.community.carbon import carbon_charge_usd, carbon_priced
from tests.opt.test_community_milp import EPISODE, make_community, rich_community

# a carbon intensity that is high in the evening peak and low at night [kg CO2/kWh]
CI = np.array([0.1, 0.1, 0.2, 0.3, 0.6, 0.7, 0.6, 0.4, 0.2, 0.1])
PRICE = 0.25  # carbon price [$/kg]


def _carbon_community():
    return replace(rich_community(), carbon_kg_per_kwh=CI)


def _env_run(c, controller):
    """(env community cost [$], imports [kW]) of one episode in ``CommunityEnv`` (float64)."""
    import torch

    from gridmarl.energy.env import CommunityEnv
    from gridmarl.experiment import run_episode

    env = CommunityEnv(
        c,
        num_envs=1,
        dtype=torch.float64,
        episode_steps=EPISODE,
        forecast_steps=c.steps - EPISODE - 1,
        seed=0,
    )
    run_episode(env, controller, seed=0)
    comm = env.community_records()
    np.testing.assert_allclose(comm["carbon_kg_per_kwh"], CI[:EPISODE])
    return float(comm["cost_usd"].sum()), comm["import_kw"].to_numpy()


def test_replay_cost_is_objective_minus_carbon_charge():
    c = _carbon_community()
    res = solve_community_milp(
        c, start=0, steps=EPISODE, time_limit_s=20, mip_gap=0.0, carbon_usd_per_kg=PRICE
    )
    cost, imp = _env_run(c, res.to_controller())
    charge = carbon_charge_usd(c, 0, imp, PRICE)
    assert charge > 0
    assert cost + charge == pytest.approx(res.objective_usd, rel=1e-6)
    # the numpy accounting on the priced community says the same
    acc = schedule_cost(carbon_priced(c, PRICE), res.discrete, res.continuous)
    assert acc["cost_usd"].sum() == pytest.approx(res.objective_usd, rel=1e-9)


def test_pricing_carbon_trades_cost_for_emissions():
    """Both solved to optimality: the priced schedule emits no more and costs no less."""
    c = _carbon_community()
    plain = solve_community_milp(c, start=0, steps=EPISODE, time_limit_s=20, mip_gap=0.0)
    priced = solve_community_milp(
        c, start=0, steps=EPISODE, time_limit_s=20, mip_gap=0.0, carbon_usd_per_kg=PRICE
    )
    cost0, imp0 = _env_run(c, plain.to_controller())
    cost1, imp1 = _env_run(c, priced.to_controller())
    co2_0, co2_1 = (float(np.sum(CI[:EPISODE] * i)) for i in (imp0, imp1))
    assert co2_1 <= co2_0 + 1e-9 and cost1 >= cost0 - 1e-9
    assert cost1 + PRICE * co2_1 <= cost0 + PRICE * co2_0 + 1e-9


def test_mpc_with_carbon_price_reaches_the_milp_optimum():
    c = _carbon_community()
    res = solve_community_milp(
        c, start=0, steps=EPISODE, time_limit_s=20, mip_gap=0.0, carbon_usd_per_kg=PRICE
    )
    for forecast in ("perfect", None):  # the model's own series, and the env's (exact) forecast
        mpc = MPCController(
            horizon_h=EPISODE,
            forecast=forecast,
            mip_gap=0.0,
            time_limit_s=20,
            relax_tail=False,
            carbon_usd_per_kg=PRICE,
        )
        cost, imp = _env_run(c, mpc)
        assert cost + carbon_charge_usd(c, 0, imp, PRICE) == pytest.approx(
            res.objective_usd, rel=1e-6
        )


def test_carbon_price_needs_carbon_data():
    c = make_community(np.ones((3, 1)), np.zeros((3, 1)), np.full(3, 0.2))
    assert carbon_priced(c, 0.0) is c
    with pytest.raises(ValueError, match="carbon intensity"):
        carbon_priced(c, 0.1)
    with pytest.raises(ValueError, match=">= 0"):
        carbon_priced(c, -1.0)
