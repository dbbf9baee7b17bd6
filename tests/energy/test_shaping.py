"""Training-only credit assignment and stored-energy shaping (``gridmarl.energy.shaping``):
the wrappers against hand computations, the env's own reward as the cost accounting, and the
training factory's wrapping."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from gridmarl.core.env import MultiAgentEnv
from gridmarl.energy.env import CommunityEnv
from gridmarl.energy.shaping import CREDITS, CreditWrapper, PotentialShaping, training_env
from tests.energy.test_env import T64, random_action


def test_marginal_excess_credit_charges_each_agent_the_excess_it_causes() -> None:
    """credit="marginal_excess": same costs and team reward as "share"; each prosumer's
    transformer charge is c_over · (over(G) − over(G − x_n)) · Δt, by hand from the records."""
    from tests.energy.conftest import make_community

    c = make_community(n=6, transformer_kw=3.0, peak_usd_per_kw=0.0)
    share = CreditWrapper(CommunityEnv(c, num_envs=1, dtype=T64, episode_steps=24), "share")
    marg = CreditWrapper(
        CommunityEnv(c, num_envs=1, dtype=T64, episode_steps=24), "marginal_excess"
    )
    share.reset(seed=3)
    marg.reset(seed=3)
    g = torch.Generator().manual_seed(4)
    over_steps = 0
    for _ in range(24):
        a = random_action(g, 1, c.n, c.hp_modes)
        s1, s2 = share.step(a), marg.step(a)
        assert torch.equal(s1.team_reward, s2.team_reward)
        assert torch.allclose(s1.reward.sum(-1), s1.team_reward)
        x = torch.as_tensor(_last_step(marg)["net_kw"].to_numpy().copy())
        big_g = float(x.sum())
        over = max(0.0, abs(big_g) - c.transformer_kw)
        caused = torch.tensor(
            [over - max(0.0, abs(big_g - float(xn)) - c.transformer_kw) for xn in x], dtype=T64
        )
        over_steps += over > 0
        # the two rewards differ only in the transformer term
        diff = s1.reward[0] - s2.reward[0]
        share_term = c.over_limit_usd_per_kwh * over * c.step_h * market_shares(x)
        expect = c.over_limit_usd_per_kwh * caused * c.step_h - share_term
        assert torch.allclose(diff, expect, atol=1e-9)
    assert over_steps >= 5  # the limit binds often enough for the test to mean something
    with pytest.raises(ValueError, match="credit must be one of"):
        CreditWrapper(CommunityEnv(c, num_envs=1), credit="equal")


def test_marginal_credit_is_the_difference_in_community_cost() -> None:
    """credit="marginal": reward_n = −(own costs + f(G) − f(G − x_n)), f = grid bill +
    transformer cost + peak-charge rise, computed here by hand; team reward unchanged."""
    from tests.energy.conftest import make_community

    c = make_community(n=6, transformer_kw=3.0, peak_usd_per_kw=0.3)
    share = CreditWrapper(CommunityEnv(c, num_envs=1, dtype=T64, episode_steps=24), "share")
    marg = CreditWrapper(CommunityEnv(c, num_envs=1, dtype=T64, episode_steps=24), "marginal")
    share.reset(seed=3)
    marg.reset(seed=3)
    g = torch.Generator().manual_seed(5)
    seen = {"over": 0, "export": 0, "peak": 0}
    for _ in range(24):
        peak0 = float(marg.device_state()["peak_kw"][0])
        a = random_action(g, 1, c.n, c.hp_modes)
        s1, s2 = share.step(a), marg.step(a)
        assert torch.equal(s1.team_reward, s2.team_reward)
        rec = _last_step(marg)
        x = rec["net_kw"].to_numpy()
        price = float(rec["price_usd_per_kwh"].iloc[0])

        def f(big_g: float, price: float = price, peak0: float = peak0) -> float:
            imp, exp = max(big_g, 0.0), max(-big_g, 0.0)
            over = max(0.0, abs(big_g) - c.transformer_kw)
            rise = max(peak0, imp) - peak0
            return (
                (price * imp - c.feed_in_usd_per_kwh * exp) * c.step_h
                + c.over_limit_usd_per_kwh * over * c.step_h
                + c.peak_usd_per_kw * rise
            )

        big_g = float(x.sum())
        own = (rec["degradation_usd"] + rec["comfort_usd"] + rec["ev_unmet_usd"]).to_numpy()
        expect = -(own + np.array([f(big_g) - f(big_g - xn) for xn in x]))
        np.testing.assert_allclose(s2.reward[0].numpy(), expect, atol=1e-9)
        seen["over"] += abs(big_g) > c.transformer_kw
        seen["export"] += big_g < 0
        seen["peak"] += big_g > peak0
    assert seen["over"] >= 3 and seen["peak"] >= 1, seen  # the branches are exercised


def test_stored_energy_shaping_is_potential_based() -> None:
    """battery / EV values v, w: reward_n = unshaped + γ Φ_n(t+1) − Φ_n(t), Φ = v e + w e_ev
    while the EV is home, so the discounted shaping over an episode telescopes to
    γ^T Φ(T) − Φ(0); team reward and info unchanged."""
    from tests.energy.conftest import make_community

    c = make_community(n=6, transformer_kw=3.0, peak_usd_per_kw=0.3)
    v, w, gamma, steps = 0.3, 0.2, 0.9, 24
    plain = CreditWrapper(CommunityEnv(c, num_envs=2, dtype=T64, episode_steps=steps), "marginal")
    shaped = PotentialShaping(
        CreditWrapper(
            CommunityEnv(c, num_envs=2, dtype=T64, episode_steps=steps, record=True), "marginal"
        ),
        battery_value_usd_per_kwh=v,
        ev_value_usd_per_kwh=w,
        gamma=gamma,
    )
    plain.reset(seed=3)
    shaped.reset(seed=3)
    present = torch.as_tensor(c.ev_present)  # [S, N]; start offset 0

    def phi(t: int) -> torch.Tensor:
        st = shaped.device_state()
        return v * st["battery_kwh"] + w * st["ev_kwh"] * present[t]

    phi0 = phi(0)
    g = torch.Generator().manual_seed(5)
    disc_sum = torch.zeros(2, c.n, dtype=T64)
    moved = {"battery": 0.0, "ev": 0.0}
    for t in range(steps):
        before = phi(t)
        a = random_action(g, 2, c.n, c.hp_modes)
        s1, s2 = plain.step(a), shaped.step(a)
        after = phi(t + 1)
        assert torch.equal(s1.team_reward, s2.team_reward)
        assert torch.equal(s1.info["cost_usd"], s2.info["cost_usd"])
        f = s2.reward - s1.reward
        assert torch.allclose(f, gamma * after - before, atol=1e-12)
        disc_sum += gamma**t * f
        rec = _last_step(shaped)
        moved["battery"] += float(rec["battery_charge_kw"].abs().sum())
        moved["ev"] += float(rec["ev_kw"].abs().sum())
    assert torch.allclose(disc_sum, gamma**steps * phi(steps) - phi0, atol=1e-9)
    assert moved["battery"] > 1.0 and moved["ev"] > 1.0, moved  # both terms are exercised
    assert bool((present[1:steps] != present[: steps - 1]).any())  # an EV comes or goes
    with pytest.raises(ValueError, match="ev_value_usd_per_kwh must be >= 0"):
        PotentialShaping(CommunityEnv(c, num_envs=1), ev_value_usd_per_kwh=-0.1)


def _last_step(env: MultiAgentEnv):
    """Env 0's per-prosumer records of the step just taken."""
    rec = env.records()
    return rec[rec["step"] == env.t - 1]


def market_shares(x: torch.Tensor) -> torch.Tensor:
    from gridmarl.energy.market import cost_shares

    return cost_shares(x[None])[0]


def test_community_env_has_no_credit_or_shaping_parameters() -> None:
    """The env accounts cost and nothing else: no credit / shaping argument or attribute, its
    per-agent reward is the bill share (summing to the team reward), and ``info`` carries the
    per-prosumer accounting the wrappers read."""
    from tests.energy.conftest import make_community

    params = set(inspect.signature(CommunityEnv.__init__).parameters)
    for name in ("credit", "battery_value_usd_per_kwh", "ev_value_usd_per_kwh", "shaping_gamma"):
        assert name not in params
    c = make_community(n=6, transformer_kw=3.0, peak_usd_per_kw=0.3)
    with pytest.raises(TypeError):
        CommunityEnv(c, credit="marginal")  # type: ignore[call-arg]
    env = CommunityEnv(c, num_envs=2, dtype=T64, episode_steps=12)
    assert not any(hasattr(env, a) for a in ("credit", "battery_value", "shaping_gamma"))
    env.reset(seed=1)
    g = torch.Generator().manual_seed(2)
    for _ in range(12):
        s = env.step(random_action(g, 2, c.n, c.hp_modes))
        torch.testing.assert_close(s.reward.sum(-1), s.team_reward, rtol=0, atol=1e-12)
        info = s.info
        assert info["net_kw"].shape == (2, c.n) and info["price_usd_per_kwh"].shape == (2,)
        torch.testing.assert_close(info["net_kw"].sum(-1), info["grid_kw"], rtol=0, atol=1e-12)
        torch.testing.assert_close(
            info["bill_usd"].sum(-1), info["grid_cost_usd"], rtol=0, atol=1e-12
        )
        own = info["degradation_usd"] + info["comfort_usd"] + info["ev_unmet_usd"]
        torch.testing.assert_close(info["own_cost_usd"].sum(-1), own, rtol=0, atol=1e-12)


def test_share_credit_is_the_env_reward_and_records_stay_the_accounting() -> None:
    """``CreditWrapper(env, "share")`` returns the env's reward bit for bit; a wrapped env's
    ``records()`` keep the env's own (accounting) reward, not the shaped one."""
    from tests.energy.conftest import make_community

    c = make_community(n=4)
    bare = CommunityEnv(c, num_envs=1, dtype=T64, episode_steps=10)
    share = CreditWrapper(CommunityEnv(c, num_envs=1, dtype=T64, episode_steps=10), "share")
    shaped = PotentialShaping(
        CommunityEnv(c, num_envs=1, dtype=T64, episode_steps=10), 0.3, 0.2, gamma=0.9
    )
    for e in (bare, share, shaped):
        e.reset(seed=4)
    g = torch.Generator().manual_seed(6)
    acc = []
    for _ in range(10):
        a = random_action(g, 1, c.n, c.hp_modes)
        s0, s1, s2 = bare.step(a), share.step(a), shaped.step(a)
        assert torch.equal(s0.reward, s1.reward) and torch.equal(s0.team_reward, s2.team_reward)
        assert not torch.equal(s0.reward, s2.reward)
        acc.append(s0.reward[0])
    rec = shaped.records()
    np.testing.assert_array_equal(rec["reward"].to_numpy(), torch.stack(acc).reshape(-1).numpy())


def test_shaping_telescopes_for_gamma_one() -> None:
    """γ = 1: over a whole episode, Σ (shaped − accounting reward) = Φ(s_T) − Φ(s_0) per agent,
    with Φ = v · battery energy + w · parked-EV energy read from ``stored_energy()``."""
    from tests.energy.conftest import make_community

    c = make_community(n=6)
    v, w, steps = 0.25, 0.15, 30
    plain = CommunityEnv(c, num_envs=3, dtype=T64, episode_steps=steps, random_start=True)
    inner = CommunityEnv(c, num_envs=3, dtype=T64, episode_steps=steps, random_start=True)
    shaped = PotentialShaping(inner, v, w, gamma=1.0)
    plain.reset(seed=8)
    shaped.reset(seed=8)

    def phi() -> torch.Tensor:
        st = inner.stored_energy()
        return v * st["battery_kwh"] + w * st["ev_kwh"]

    phi0 = phi()
    total = torch.zeros(3, c.n, dtype=T64)
    g = torch.Generator().manual_seed(9)
    for _ in range(steps):
        a = random_action(g, 3, c.n, c.hp_modes)
        s1, s2 = plain.step(a), shaped.step(a)
        total += s2.reward - s1.reward
    assert bool(s2.done.all())
    torch.testing.assert_close(total, phi() - phi0, rtol=0, atol=1e-9)
    assert float((phi() - phi0).abs().max()) > 0.1  # the storage moved


def test_training_env_wraps_as_the_train_block_asks() -> None:
    """``training_env``: the bare env for ``share`` without shaping; else the credit wrapper
    inside the shaping wrapper; the training factory uses it."""
    from gridmarl.config import load_scenario
    from gridmarl.energy.training import energy_env_factory
    from tests.energy.conftest import make_community

    env = CommunityEnv(make_community(n=4), num_envs=1)
    assert training_env(env) is env and training_env(env, "share", 0.0, 0.0) is env
    for credit in CREDITS[1:]:
        w = training_env(env, credit, 0.3, 0.0, gamma=0.95)
        assert isinstance(w, PotentialShaping) and w.gamma == 0.95
        assert isinstance(w.env, CreditWrapper) and w.env.credit == credit
        assert w.unwrapped is env
    with pytest.raises(ValueError, match="must be >= 0"):
        training_env(env, "share", -0.1, 0.0)

    from tests.controllers.test_train_driver import SCENARIO, TINY

    sc = load_scenario(
        SCENARIO, [*TINY, "train.credit=marginal_excess", "train.ev_value_usd_per_kwh=0.2"]
    )
    made = energy_env_factory(sc, torch.device("cpu"), 7)(2)
    assert isinstance(made, PotentialShaping) and made.ev_value == 0.2
    assert isinstance(made.env, CreditWrapper) and made.env.credit == "marginal_excess"
    assert isinstance(made.unwrapped, CommunityEnv) and made.num_envs == 2
