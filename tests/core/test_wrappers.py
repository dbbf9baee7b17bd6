"""``EnvWrapper``: the contract and any attribute forwarded, the reward hook, stacking."""

from __future__ import annotations

import pytest
import torch

from gridmarl.core import EnvWrapper
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.types import Action, Step
from tests.controllers.toy_env import RaggedEnv, ToyEnv


class Doubled(EnvWrapper):
    """Twice the wrapped env's per-agent reward."""

    def reward(self, step: Step) -> torch.Tensor:
        return 2.0 * step.reward


def test_wrapper_forwards_the_contract_and_attributes() -> None:
    env = ToyEnv(n_agents=3, num_envs=4, episode_len=5)
    w = EnvWrapper(env)
    assert isinstance(w, MultiAgentEnv)
    assert w.spec is env.spec and w.num_envs == 4 and w.episode_len == 5
    assert w.device == env.device and w.unwrapped is env
    assert w.n == 3 and w.targets is env.targets  # any attribute of the env
    with pytest.raises(AttributeError):
        _ = w.no_such_attribute
    obs = w.reset(seed=3)
    ref = ToyEnv(n_agents=3, num_envs=4, episode_len=5)
    assert torch.equal(obs.local, ref.reset(seed=3).local)
    act = Action.zeros(env.spec, 4)
    s1, s2 = w.step(act), ref.step(act)
    assert torch.equal(s1.reward, s2.reward) and torch.equal(s1.team_reward, s2.team_reward)
    assert torch.equal(s1.obs.local, s2.obs.local) and s1.truncated.equal(s2.truncated)
    obs = w.reset_copies(seed=4, copies=2)
    assert torch.equal(obs.local[:2], obs.local[2:])
    assert list(w.records().columns) == ["step", "agent"]
    assert "ToyEnv" in repr(w)


def test_wrapper_forwards_partial_resets() -> None:
    env = RaggedEnv(lengths=[1, 2], terminal=[True, False])
    w = EnvWrapper(env)
    w.reset(seed=1)
    step = w.step(Action.zeros(env.spec, 2))
    w.reset_envs(step.done, seed=9)
    assert env.resets[-1][1] == 9 and env.resets[-1][0].tolist() == [True, False]


def test_reward_hook_changes_only_the_per_agent_reward() -> None:
    env, ref = ToyEnv(num_envs=2), ToyEnv(num_envs=2)
    w = Doubled(Doubled(env))  # wrappers stack
    assert w.unwrapped is env
    w.reset(seed=5)
    ref.reset(seed=5)
    act = Action.zeros(env.spec, 2)
    s, r = w.step(act), ref.step(act)
    assert torch.equal(s.reward, 4.0 * r.reward)
    assert torch.equal(s.team_reward, r.team_reward)
    assert torch.equal(s.obs.local, r.obs.local) and s.info == r.info
