"""On-policy rollout collection from a batched ``MultiAgentEnv``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from gridmarl.controllers.common.buffer import RolloutBuffer
from gridmarl.controllers.common.distributions import env_continuous
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.types import Action, Observation

#: ``policy(obs) -> (discrete [B, N], raw continuous [B, N, C], log π [B, N], V(s) [B, V])``
PolicyFn = Callable[[Observation], tuple[Tensor, Tensor, Tensor, Tensor]]


@dataclass
class RolloutStats:
    """What one rollout saw.

    Attributes:
        episode_returns: undiscounted team returns of the episodes that ended [reward units].
        env_s: wall time inside ``env.step`` [s].
        policy_s: wall time in the policy forward pass [s].
    """

    episode_returns: list[float] = field(default_factory=list)
    env_s: float = 0.0
    policy_s: float = 0.0


def collect_rollout(
    env: MultiAgentEnv,
    obs: Observation,
    buffer: RolloutBuffer,
    policy: PolicyFn,
    team: bool,
    reward_scale: float,
    running_return: Tensor,
    reset_seed: Callable[[], int],
    truncation_value: Callable[[Observation], Tensor] | None = None,
) -> tuple[Observation, RolloutStats]:
    """Fill ``buffer`` with ``buffer.horizon`` steps of every env, starting from ``obs``.

    Args:
        env: the batched env; whenever an env's episode ends (``Step.done``) that env is
            started again with ``env.reset_envs(done, reset_seed())`` (one seed per call), the
            others keep running (envs with a fixed horizon end together and reset together).
        obs: the current observation.
        buffer: cleared and refilled.
        policy: samples the action and evaluates the critic (no grad).
        team: store the team reward ``[B, 1]`` (True) or per-agent rewards ``[B, N]``.
        reward_scale: multiplies the stored reward (the logged returns are unscaled).
        running_return: ``[B]`` team return so far of each env's current episode; updated in place.
        reset_seed: gives the seed of each ``env.reset_envs``.
        truncation_value: when given, a ``truncated`` episode end (a time limit) is bootstrapped
            (Pardo et al. 2018, "Time Limits in Reinforcement Learning", arXiv:1712.00378): the
            stored reward of that env's last step gets ``truncation_value(final obs)`` ``[B, V]``
            added, i.e. γ V(s_T) in the stored reward's units, so that what would follow the cut
            is counted instead of zero.  A ``terminated`` end gets nothing added.  ``done``
            still stops GAE's recursion at either.  None: every end is terminal (a truncation
            is treated like a termination).

    Returns:
        The observation after the last step (for bootstrapping) and the rollout's stats.
    """
    stats = RolloutStats()
    buffer.clear()
    for _ in range(buffer.horizon):
        t0 = time.perf_counter()
        with torch.no_grad():
            disc, raw, logp, value = policy(obs)
        t1 = time.perf_counter()
        step = env.step(Action(discrete=disc, continuous=env_continuous(raw)))
        t2 = time.perf_counter()
        stats.policy_s += t1 - t0
        stats.env_s += t2 - t1
        reward = step.team_reward.unsqueeze(-1) if team else step.reward
        reward = reward * reward_scale
        done = step.done
        ended = bool(done.any())
        # a step both terminated and truncated is terminal: nothing follows a terminal state
        cut = step.truncated & ~step.terminated
        if truncation_value is not None and bool(cut.any()):
            with torch.no_grad():
                tail = truncation_value(step.obs)
            reward = reward + torch.where(cut[:, None], tail, torch.zeros_like(tail))
        buffer.add(obs, disc, raw, logp, value, reward, done)
        running_return += step.team_reward.to(running_return.dtype)
        obs = step.obs
        if ended:
            stats.episode_returns += running_return[done].tolist()
            running_return[done] = 0.0
            t3 = time.perf_counter()
            obs = env.reset_envs(done, seed=reset_seed())
            stats.env_s += time.perf_counter() - t3
    return obs, stats
