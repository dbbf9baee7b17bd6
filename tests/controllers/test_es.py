"""ES fine-tuning (``gridmarl.controllers.es``): copies act as their own weights would, it
learns the toy env's best action, and the same seed gives the same weights."""

from __future__ import annotations

import copy

import pytest
import torch

from gridmarl.config import ESConfig, ScenarioError
from gridmarl.controllers.es import ESFinetuner
from gridmarl.controllers.matppo import MATPPO

from .test_matppo import SMALL
from .toy_env import TARGET_U, ToyEnv

torch.set_num_threads(1)


def _policy(seed: int = 0, **env_kw) -> MATPPO:
    return MATPPO(ToyEnv(**env_kw).spec, SMALL, seed=seed)


def test_copies_act_as_the_actor_with_their_weights():
    """Copy g's actions are what the actor itself does with copy g's weights, for every
    env of its block, and G equal copies act exactly as ``act`` does."""
    pol = _policy()
    es = ESFinetuner(pol, ESConfig(pairs=1, episodes=2), seed=0)
    env = ToyEnv(num_envs=6, n_agents=3)
    obs = env.reset(seed=4)
    g = torch.Generator().manual_seed(1)
    weights = es.flat_weights()[None] + 0.3 * torch.randn(3, es.dim, generator=g)
    got = es.act_copies(obs, weights)
    for c in range(3):
        other = copy.deepcopy(pol)
        ref_es = ESFinetuner(other, ESConfig(), seed=0)
        with torch.no_grad():
            ref_es.theta.copy_(weights[c])
        ref_es.write_weights()
        ref = other.act(obs)
        rows = slice(2 * c, 2 * c + 2)
        assert torch.equal(got.discrete[rows], ref.discrete[rows])
        assert torch.allclose(got.continuous[rows], ref.continuous[rows], atol=1e-6)
    same = es.act_copies(obs, es.flat_weights()[None].expand(3, -1))
    ref = pol.act(obs)
    assert torch.equal(same.discrete, ref.discrete)
    assert torch.allclose(same.continuous, ref.continuous, atol=1e-6)
    with pytest.raises(ValueError, match="cannot be split"):
        es.act_copies(obs, weights[:2].repeat(2, 1)[:4])


def test_reset_copies_repeats_each_episode():
    env = ToyEnv(num_envs=6, episode_len=3)
    env.reset_copies(seed=2, copies=3)
    t = env.targets
    assert torch.equal(t[0], t[2]) and torch.equal(t[1], t[5]) and not torch.equal(t[0], t[1])


def _learn(seed: int, generations: int) -> tuple[ESFinetuner, list[float]]:
    pol = _policy(seed)
    es = ESFinetuner(pol, ESConfig(pairs=16, episodes=4, sigma=0.05, lr=0.03), seed=seed)
    env = ToyEnv(num_envs=es.num_envs(), episode_len=4)
    curve = [es.generation(env)["es/return_centre"] for _ in range(generations)]
    return es, curve


def test_learns_the_known_best_action():
    """From an untrained actor, ES alone finds the toy env's best action."""
    es, curve = _learn(seed=0, generations=60)
    obs = ToyEnv(num_envs=64).reset(seed=123)
    act = es.policy.act(obs)
    k = obs.local[..., :2].argmax(-1)
    u_star = torch.where(k == 0, TARGET_U[0], TARGET_U[1])
    assert (act.discrete == k).float().mean() >= 0.95
    assert (act.continuous[..., 0] - u_star).abs().mean() <= 0.15
    # team return per episode: 2 agents × 4 steps, at most 8; a random actor scores about 0
    assert curve[-1] > curve[0] + 3.0


def test_same_seed_same_weights_and_resume_is_exact():
    a, _ = _learn(seed=3, generations=4)
    b, _ = _learn(seed=3, generations=4)
    assert torch.equal(a.theta, b.theta)
    # stop after 2 generations, restore into a fresh finetuner, continue: the same weights
    c, _ = _learn(seed=3, generations=2)
    state = copy.deepcopy(c.state())
    d = ESFinetuner(_policy(3), c.cfg, seed=3)
    d.load_state(state, "test")
    env = ToyEnv(num_envs=d.num_envs(), episode_len=4)
    for _ in range(2):
        d.generation(env)
    assert d.generations == 4 and torch.equal(d.theta, a.theta)
    for p_a, p_d in zip(a.policy.actor.parameters(), d.policy.actor.parameters(), strict=True):
        assert torch.equal(p_a, p_d)


def test_refusals():
    es = ESFinetuner(_policy(), ESConfig(pairs=2, episodes=1), seed=0)
    with pytest.raises(ValueError, match="needs 5 envs"):
        es.generation(ToyEnv(num_envs=4))
    other = ESFinetuner(_policy(), ESConfig(pairs=3, episodes=1), seed=0)
    with pytest.raises(ScenarioError, match="other weights or hyper-parameters"):
        other.load_state(es.state(), "x.es.pt")
    with pytest.raises(ScenarioError, match="not a gridmarl ES state"):
        es.load_state({"format": "something else"}, "x.es.pt")

    class NoCopies(ToyEnv):
        def reset_copies(self, seed, copies):
            return super(ToyEnv, self).reset_copies(seed, copies)

    with pytest.raises(ScenarioError, match="runs copies of its episodes"):
        es.generation(NoCopies(num_envs=5))
