"""PettingZoo ``ParallelEnv`` adapter over any ``MultiAgentEnv`` with ``B = 1``.

Spaces (per agent):

| key | space | meaning |
|---|---|---|
| obs ``local`` | ``Box(local_dim)`` | current local features |
| obs ``forecast`` | ``Box(H, f)`` | forecast window (only when ``H > 0``) |
| obs ``action_mask`` | ``MultiBinary(n)``, or ``{"mode": int8[n], "power": None}`` | allowed |
| action (hybrid) | ``Dict(mode=Discrete(n), power=Box(-1, 1, (c,)))`` | discrete + continuous |
| action (discrete only) | ``Discrete(n)`` | |
| action (continuous only) | ``Box(-1, 1, (c,))`` | |

For the hybrid action the mask is a dict with the same keys as the action space, so that
``action_space.sample(mask=obs["action_mask"])`` works; the continuous part has no mask (None).
Every agent ends together: ``terminations`` and ``truncations`` are the env's ``Step.terminated``
and ``Step.truncated`` (a fixed horizon is a truncation).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv

from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.types import Action, Observation


class PettingZooParallelEnv(ParallelEnv):
    """Wrap a ``MultiAgentEnv`` built with ``num_envs == 1`` as a PettingZoo ``ParallelEnv``.

    Args:
        make_env: zero-argument factory returning the batched env (``num_envs`` must be 1).
    """

    metadata = {"name": "gridmarl_parallel_v0", "render_modes": []}

    def __init__(self, make_env: Callable[[], MultiAgentEnv]) -> None:
        self.env = make_env()
        if self.env.num_envs != 1:
            raise ValueError("the PettingZoo adapter needs num_envs == 1")
        self.spec_ = self.env.spec
        self.possible_agents = list(self.spec_.agent_names)
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self._t = 0

    # -- spaces -------------------------------------------------------------------------------
    @functools.cache  # noqa: B019 - PettingZoo wants the same object back
    def observation_space(self, agent: str) -> spaces.Space:
        """The per-agent observation space (same object on every call)."""
        s = self.spec_
        d: dict[str, spaces.Space] = {
            "local": spaces.Box(-np.inf, np.inf, (s.local_dim,), np.float32)
        }
        if s.forecast_len > 0:
            d["forecast"] = spaces.Box(
                -np.inf, np.inf, (s.forecast_len, s.forecast_dim), np.float32
            )
        if s.n_discrete > 0:
            mask = spaces.MultiBinary(s.n_discrete)
            d["action_mask"] = spaces.Dict({"mode": mask}) if s.n_continuous > 0 else mask
        return spaces.Dict(d)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Space:
        """The per-agent action space (same object on every call)."""
        s = self.spec_
        box = spaces.Box(-1.0, 1.0, (s.n_continuous,), np.float32)
        if s.n_discrete > 0 and s.n_continuous > 0:
            return spaces.Dict({"mode": spaces.Discrete(s.n_discrete), "power": box})
        if s.n_discrete > 0:
            return spaces.Discrete(s.n_discrete)
        return box

    # -- conversion ---------------------------------------------------------------------------
    def _obs_dict(self, obs: Observation) -> dict[str, Any]:
        s = self.spec_
        local = obs.local[0].detach().cpu().numpy().astype(np.float32)
        fc = obs.forecast[0].detach().cpu().numpy().astype(np.float32)
        mask = None
        if s.n_discrete > 0:
            if obs.action_mask is None:
                mask = np.ones((s.n_agents, s.n_discrete), np.int8)
            else:
                mask = obs.action_mask[0].detach().cpu().numpy().astype(np.int8)
        out: dict[str, Any] = {}
        for a in self.agents:
            i = self._index[a]
            o: dict[str, Any] = {"local": local[i]}
            if s.forecast_len > 0:
                o["forecast"] = fc[i]
            if mask is not None:
                o["action_mask"] = {"mode": mask[i], "power": None} if s.n_continuous else mask[i]
            out[a] = o
        return out

    def _to_action(self, actions: dict[str, Any]) -> Action:
        s = self.spec_
        dev = self.env.device
        disc = torch.zeros(1, s.n_agents, dtype=torch.long, device=dev)
        cont = torch.zeros(1, s.n_agents, s.n_continuous, dtype=torch.float32, device=dev)
        for a, act in actions.items():
            if a not in self._index:
                raise KeyError(f"unknown agent {a!r}")
            i = self._index[a]
            if s.n_discrete > 0 and s.n_continuous > 0:
                disc[0, i] = int(act["mode"])
                cont[0, i] = torch.as_tensor(np.asarray(act["power"], np.float32), device=dev)
            elif s.n_discrete > 0:
                disc[0, i] = int(act)
            else:
                cont[0, i] = torch.as_tensor(np.asarray(act, np.float32), device=dev)
        return Action(discrete=disc, continuous=cont)

    # -- ParallelEnv API ----------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        """Start an episode; returns ``(observations, infos)``."""
        obs = self.env.reset(seed=seed)
        self.agents = list(self.possible_agents)
        self._t = 0
        return self._obs_dict(obs), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        """Apply the agents' actions; missing agents take action zero."""
        step = self.env.step(self._to_action(actions))
        self._t += 1
        rew = step.reward[0].detach().cpu().numpy()
        terminated = bool(step.terminated[0])
        # PettingZoo: an agent that is terminated is not also truncated
        truncated = bool(step.truncated[0]) and not terminated
        obs = self._obs_dict(step.obs)
        rewards = {a: float(rew[self._index[a]]) for a in self.agents}
        terms = {a: terminated for a in self.agents}
        truncs = {a: truncated for a in self.agents}
        infos = {a: {} for a in self.agents}
        if terminated or truncated:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def close(self) -> None:
        """Close the wrapped env."""
        self.env.close()
