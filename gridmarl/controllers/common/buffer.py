"""A rollout buffer for on-policy multi-agent training.

Holds ``T`` steps of ``B`` parallel envs of ``N`` agents on one device, preallocated.  The
actor's samples are per agent (``T·B·N`` of them), the team critic's per env step (``T·B``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from gridmarl.core.types import AgentSpec, Observation


@dataclass
class ActorBatch:
    """A minibatch of per-agent samples (``M`` rows).

    Attributes:
        local: ``[M, local_dim]``; forecast ``[M, H, f]``; mask ``[M, K]`` bool or None;
        discrete ``[M]`` long; continuous ``[M, C]`` raw Gaussian samples; old_log_prob ``[M]``;
        advantage ``[M]``.
    """

    local: Tensor
    forecast: Tensor
    mask: Tensor | None
    discrete: Tensor
    continuous: Tensor
    old_log_prob: Tensor
    advantage: Tensor


@dataclass
class CriticBatch:
    """A minibatch of env-step samples (``M`` rows): state ``[M, N, state_dim]``, global_
    ``[M, global_dim]``, returns ``[M, V]`` (``V`` = 1 team, ``N`` per agent) in the units the
    critic regresses on (normalised when value normalisation is on)."""

    state: Tensor
    global_: Tensor
    returns: Tensor


class RolloutBuffer:
    """Preallocated storage of one rollout.

    Args:
        spec: the env's agent spec.
        horizon: steps ``T`` per rollout.
        num_envs: parallel envs ``B``.
        value_width: ``V``, values per env step (1 for a team critic, ``N`` per agent).
        device: where everything lives.
    """

    def __init__(
        self,
        spec: AgentSpec,
        horizon: int,
        num_envs: int,
        value_width: int,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        t, b, n = horizon, num_envs, spec.n_agents
        kw = {"device": device, "dtype": dtype}
        self.horizon, self.num_envs, self.n_agents = t, b, n
        self.local = torch.zeros(t, b, n, spec.local_dim, **kw)
        self.forecast = torch.zeros(t, b, n, spec.forecast_len, spec.forecast_dim, **kw)
        self.state = torch.zeros(t, b, n, spec.state_dim, **kw)
        self.global_ = torch.zeros(t, b, spec.global_dim, **kw)
        self.mask = (
            torch.ones(t, b, n, spec.n_discrete, dtype=torch.bool, device=device)
            if spec.n_discrete
            else None
        )
        self.discrete = torch.zeros(t, b, n, dtype=torch.long, device=device)
        self.continuous = torch.zeros(t, b, n, spec.n_continuous, **kw)
        self.log_prob = torch.zeros(t, b, n, **kw)
        self.values = torch.zeros(t, b, value_width, **kw)  # de-normalised V(s_t)
        self.rewards = torch.zeros(t, b, value_width, **kw)
        self.dones = torch.zeros(t, b, value_width, **kw)
        self.advantages = torch.zeros(t, b, value_width, **kw)
        self.returns = torch.zeros(t, b, value_width, **kw)
        self.ptr = 0

    def add(
        self,
        obs: Observation,
        discrete: Tensor,
        continuous: Tensor,
        log_prob: Tensor,
        value: Tensor,
        reward: Tensor,
        done: Tensor,
    ) -> None:
        """Store step ``ptr``: the observation acted on, the action, ``log π`` ``[B, N]``,
        ``V(s) [B, V]``, the reward ``[B, V]`` and done ``[B]``."""
        i = self.ptr
        self.local[i] = obs.local
        self.forecast[i] = obs.forecast
        self.state[i] = obs.state
        self.global_[i] = obs.global_
        if self.mask is not None and obs.action_mask is not None:
            self.mask[i] = obs.action_mask
        self.discrete[i] = discrete
        self.continuous[i] = continuous
        self.log_prob[i] = log_prob
        self.values[i] = value
        self.rewards[i] = reward
        self.dones[i] = done.to(self.dones.dtype).unsqueeze(-1)
        self.ptr += 1

    def clear(self) -> None:
        """Start the next rollout."""
        self.ptr = 0

    def actor_agent_advantages(self) -> Tensor:
        """``[T, B, N]`` advantage of each agent's action (a team advantage is broadcast)."""
        return (
            self.advantages.expand(-1, -1, self.n_agents)
            if self.advantages.shape[-1] == 1
            else self.advantages
        )

    def minibatches(
        self,
        n_minibatches: int,
        generator: torch.Generator,
        advantages: Tensor,
        returns_n: Tensor,
    ) -> Iterator[tuple[ActorBatch, CriticBatch]]:
        """Shuffle and split into ``n_minibatches`` paired actor / critic minibatches.

        Args:
            n_minibatches: how many minibatches one epoch has.
            generator: drives the shuffle.
            advantages: ``[T, B, N]`` per-agent advantages (already normalised if wanted).
            returns_n: ``[T, B, V]`` value targets in the units the critic regresses on.
        """
        t, b, n = self.horizon, self.num_envs, self.n_agents
        dev = self.local.device
        a_perm = torch.randperm(t * b * n, generator=generator, device=generator.device).to(dev)
        c_perm = torch.randperm(t * b, generator=generator, device=generator.device).to(dev)
        a_flat = {
            "local": self.local.reshape(t * b * n, -1),
            "forecast": self.forecast.reshape(t * b * n, *self.forecast.shape[-2:]),
            "discrete": self.discrete.reshape(-1),
            "continuous": self.continuous.reshape(t * b * n, -1),
            "old_log_prob": self.log_prob.reshape(-1),
            "advantage": advantages.reshape(-1),
        }
        mask_flat = self.mask.reshape(t * b * n, -1) if self.mask is not None else None
        state = self.state.reshape(t * b, n, -1)
        glob = self.global_.reshape(t * b, -1)
        ret = returns_n.reshape(t * b, -1)
        a_chunks = a_perm.chunk(n_minibatches)
        c_chunks = c_perm.chunk(n_minibatches)
        for ai, ci in zip(a_chunks, c_chunks, strict=True):
            yield (
                ActorBatch(
                    mask=mask_flat[ai] if mask_flat is not None else None,
                    **{k: v[ai] for k, v in a_flat.items()},
                ),
                CriticBatch(state=state[ci], global_=glob[ci], returns=ret[ci]),
            )
