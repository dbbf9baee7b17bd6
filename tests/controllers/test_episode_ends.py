"""Episode ends: ``Step.terminated`` / ``truncated``, per-env resets in rollouts, and GAE that
bootstraps a truncation (time limit) but not a termination, against hand-computed values."""

from __future__ import annotations

import pytest
import torch
from pettingzoo.test import parallel_api_test

from gridmarl.controllers.common.buffer import RolloutBuffer
from gridmarl.controllers.common.gae import compute_gae
from gridmarl.controllers.common.rollout import collect_rollout
from gridmarl.controllers.matppo import MATPPO, MATPPOConfig
from gridmarl.core.pettingzoo_adapter import PettingZooParallelEnv
from gridmarl.core.types import Observation, Step

from .toy_env import RaggedEnv, ToyEnv

torch.set_num_threads(1)


def _constant_policy(value: float):
    """A policy that always picks (0, 0.0) and values every state at ``value`` per agent."""

    def policy(obs: Observation):
        b, n = obs.batch_shape
        z = torch.zeros(b, n)
        return z.long(), z.unsqueeze(-1), z, torch.full((b, n), value)

    return policy


def test_done_is_terminated_or_truncated_and_flags_must_be_bool() -> None:
    obs = ToyEnv(num_envs=3).reset(seed=0)
    r = torch.zeros(3, 2)
    step = Step(
        obs=obs,
        reward=r,
        team_reward=r.sum(1),
        terminated=torch.tensor([True, False, False]),
        truncated=torch.tensor([False, True, False]),
    )
    assert step.done.tolist() == [True, True, False]
    with pytest.raises(ValueError, match="terminated"):
        Step(obs, r, r.sum(1), torch.zeros(3), torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="truncated"):
        Step(obs, r, r.sum(1), torch.zeros(3, dtype=torch.bool), torch.zeros(3, 1).bool())


def test_default_reset_envs_resets_all_or_refuses_a_partial_mask() -> None:
    env = ToyEnv(num_envs=3)
    a = env.reset(seed=5)
    env.step(env_action := _zero_action(env))
    b = env.reset_envs(torch.ones(3, dtype=torch.bool), seed=5)
    assert torch.equal(a.local, b.local) and torch.equal(a.forecast, b.forecast)
    env.step(env_action)
    with pytest.raises(NotImplementedError, match="reset_envs"):
        env.reset_envs(torch.tensor([True, False, False]), seed=1)
    with pytest.raises(ValueError, match="shape"):
        env.reset_envs(torch.ones(2, dtype=torch.bool), seed=1)


def _zero_action(env):
    from gridmarl.core.types import Action

    return Action.zeros(env.spec, env.num_envs)


def test_rollout_resets_only_the_envs_whose_episode_ended() -> None:
    # env 0 terminates every 2 steps, env 1 is truncated every 3, env 2 every 5
    env = RaggedEnv([2, 3, 5], [True, False, False], n_agents=2)
    buf = RolloutBuffer(env.spec, 7, 3, 2, torch.device("cpu"))
    seeds = iter(range(100, 200))
    obs = env.reset(seed=7)
    running = torch.zeros(3, dtype=torch.float64)
    last, stats = collect_rollout(
        env, obs, buf, _constant_policy(0.0), False, 1.0, running, lambda: next(seeds)
    )
    # t of the observation each step acted on: each env restarts after its own last step
    assert buf.local[:, :, 0, 0].T.tolist() == [
        [0, 1, 0, 1, 0, 1, 0],
        [0, 1, 2, 0, 1, 2, 0],
        [0, 1, 2, 3, 4, 0, 1],
    ]
    assert buf.dones[:, :, 0].T.tolist() == [
        [0, 1, 0, 1, 0, 1, 0],
        [0, 0, 1, 0, 0, 1, 0],
        [0, 0, 0, 0, 1, 0, 0],
    ]
    # one reset_envs per step on which any env ended, masking exactly those envs, one seed each
    masks = [(m.tolist(), s) for m, s in env.resets]
    assert masks == [
        ([True, True, True], 7),
        ([True, False, False], 100),
        ([False, True, False], 101),
        ([True, False, False], 102),
        ([False, False, True], 103),
        ([True, True, False], 104),
    ]
    # the returned observation continues every env's current episode
    assert last.local[:, 0].tolist() == [[1, 4, 104], [1, 3, 104], [2, 2, 103]]
    # team returns (2 agents x 1 per step) of the episodes that ended, in order of their end
    assert stats.episode_returns == [4.0, 6.0, 4.0, 10.0, 4.0, 6.0]
    assert running.tolist() == [2.0, 2.0, 4.0]


@pytest.mark.parametrize("bootstrap", [True, False])
def test_gae_bootstraps_a_truncation_but_not_a_termination(bootstrap: bool) -> None:
    """V(s) = 3 everywhere, r = 1, γ = λ = 0.5 (hand computation below).

    δ_t = r_t + γ V(s_{t+1}) (1 − done_t) − V(s_t); Â_t = δ_t + γλ (1 − done_t) Â_{t+1}.
    Not done: δ = 1 + 1.5 − 3 = −0.5.  Terminated: δ = 1 − 3 = −2.  Truncated with the
    bootstrap: the stored reward is 1 + γ V(final obs) = 2.5, δ = 2.5 − 3 = −0.5; without it
    the truncation is terminal, δ = −2.
    """
    gamma, lam, v = 0.5, 0.5, 3.0
    env = RaggedEnv([2, 3, 5], [True, False, False], n_agents=2)
    buf = RolloutBuffer(env.spec, 4, 3, 2, torch.device("cpu"))
    seeds = iter(range(100, 200))
    finals: list[Observation] = []

    def tail(obs: Observation) -> torch.Tensor:
        finals.append(obs)
        return gamma * torch.full((3, 2), v)

    last, _ = collect_rollout(
        env,
        env.reset(seed=0),
        buf,
        _constant_policy(v),
        False,
        1.0,
        torch.zeros(3, dtype=torch.float64),
        lambda: next(seeds),
        tail if bootstrap else None,
    )
    last_v = torch.full((3, 2), v)
    adv, ret = compute_gae(buf.rewards, buf.values, buf.dones, last_v, gamma, lam)
    # env 0: terminated after steps 1 and 3 (never bootstrapped)
    #   Â3 = −2, Â2 = −0.5 + 0.25·(−2) = −1, Â1 = −2, Â0 = −1
    # env 1: truncated after step 2; step 3 starts a new episode (next value = last_v = 3)
    #   bootstrap: Â3 = −0.5, Â2 = −0.5, Â1 = −0.5 + 0.25·(−0.5) = −0.625, Â0 = −0.65625
    #   terminal:  Â3 = −0.5, Â2 = −2,   Â1 = −0.5 + 0.25·(−2) = −1,       Â0 = −0.75
    # env 2: no end within the rollout: Â3 = −0.5, Â2 = −0.625, Â1 = −0.65625, Â0 = −0.6640625
    want = torch.tensor(
        [
            [-1.0, -2.0, -1.0, -2.0],
            [-0.65625, -0.625, -0.5, -0.5] if bootstrap else [-0.75, -1.0, -2.0, -0.5],
            [-0.6640625, -0.65625, -0.625, -0.5],
        ]
    )
    for j in range(2):  # every agent alike
        torch.testing.assert_close(adv[:, :, j].T, want, rtol=0, atol=0)
        torch.testing.assert_close(ret[:, :, j].T, want + v, rtol=0, atol=0)
    if bootstrap:
        # asked once (env 0's termination at step 1 asks nothing), on env 1's final observation
        assert len(finals) == 1
        assert finals[0].local[1, :, 0].tolist() == [3.0, 3.0]
        assert buf.rewards[2, 1].tolist() == [2.5, 2.5]
        assert buf.rewards[1, 0].tolist() == [1.0, 1.0]


def test_matppo_trains_on_envs_that_end_at_different_steps() -> None:
    """MATPPO's rollouts reset each env on its own; every reset draws the next seed."""
    env = RaggedEnv([3, 5, 4, 2], [False, True, False, True], n_agents=2)
    cfg = MATPPOConfig(
        num_envs=4,
        rollout_steps=6,
        epochs=1,
        minibatches=1,
        lstm_hidden=4,
        feat_dim=8,
        actor_hidden=8,
        critic_dim=8,
        critic_heads=1,
        critic_layers=1,
        bootstrap_time_limit=True,
    )
    ctrl = MATPPO(env.spec, cfg, seed=1)
    ctrl.train(lambda num_envs: env, budget=2 * 6 * 4 * 2)
    assert ctrl.updates == 2
    # 12 steps: env ends at steps (1-based) 2,3,4,5,6,8,9,10,12 -> 9 partial resets + the first
    assert len(env.resets) == 10
    seeds = [s for _, s in env.resets]
    assert len(set(seeds)) == len(seeds)
    assert env.resets[1][0].tolist() == [False, False, False, True]  # after step 2: env 3 only


@pytest.mark.parametrize(("terminal", "field"), [(True, "terms"), (False, "truncs")])
def test_pettingzoo_reports_terminations_and_truncations(terminal: bool, field: str) -> None:
    pz = PettingZooParallelEnv(lambda: RaggedEnv([2], [terminal], n_agents=3))
    pz.reset(seed=0)
    act = {a: {"mode": 0, "power": [0.0]} for a in pz.agents}
    _, _, terms, truncs, _ = pz.step(act)
    assert not any(terms.values()) and not any(truncs.values()) and len(pz.agents) == 3
    _, _, terms, truncs, _ = pz.step(act)
    ended, other = (terms, truncs) if field == "terms" else (truncs, terms)
    assert all(ended.values()) and len(ended) == 3 and not any(other.values())
    assert pz.agents == []
    parallel_api_test(PettingZooParallelEnv(lambda: RaggedEnv([4], [terminal])), num_cycles=10)
