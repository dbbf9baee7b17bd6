"""``EnvWrapper``: a ``MultiAgentEnv`` that wraps another and changes what it returns.

A wrapper forwards the contract (``spec``, ``num_envs``, ``device``, ``episode_len``,
``reset``, ``reset_envs``, ``reset_copies``, ``records``, ``close``) and any other attribute
(``__getattr__``) to the env it wraps, so code that reads an env's own attributes (an energy
env's ``community`` or ``start``) works through any stack of wrappers.  A subclass overrides
``reward`` (a function of the step the wrapped env returned) or, where it needs the state
before the step, ``step`` itself.

Training-only reward transformations live in wrappers so that an env's own ``step`` accounts
its task and nothing else: ``team_reward``, ``info`` and ``records()`` are the wrapped env's,
unchanged; only ``Step.reward`` is the wrapper's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.types import Action, AgentSpec, Observation, Step


class EnvWrapper(MultiAgentEnv):
    """Forwards everything to ``env``; subclasses change the per-agent reward.

    Args:
        env: the env (or wrapper) to wrap.
    """

    def __init__(self, env: MultiAgentEnv) -> None:
        self.env = env

    # -- the contract, forwarded ----------------------------------------------------------------
    @property
    def spec(self) -> AgentSpec:  # type: ignore[override]
        """The wrapped env's agent spec."""
        return self.env.spec

    @property
    def num_envs(self) -> int:  # type: ignore[override]
        """Parallel episodes B of the wrapped env."""
        return self.env.num_envs

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        """The wrapped env's device."""
        return self.env.device

    @property
    def episode_len(self) -> int:  # type: ignore[override]
        """The wrapped env's longest episode [steps]."""
        return self.env.episode_len

    @property
    def unwrapped(self) -> MultiAgentEnv:
        """The innermost env under every wrapper."""
        env = self.env
        return env.unwrapped if isinstance(env, EnvWrapper) else env

    def reset(self, seed: int | None = None) -> Observation:
        """``env.reset(seed)``."""
        return self.env.reset(seed)

    def reset_envs(self, mask: Tensor, seed: int | None = None) -> Observation:
        """``env.reset_envs(mask, seed)``."""
        return self.env.reset_envs(mask, seed)

    def reset_copies(self, seed: int | None, copies: int) -> Observation:
        """``env.reset_copies(seed, copies)``."""
        return self.env.reset_copies(seed, copies)

    def records(self) -> pd.DataFrame:
        """The wrapped env's records (its own accounting, not this wrapper's reward)."""
        return self.env.records()

    def close(self) -> None:
        """``env.close()``."""
        self.env.close()

    def __getattr__(self, name: str) -> Any:
        # called only for names the wrapper itself lacks; "env" is guarded so that a
        # half-built wrapper (copy, unpickling) does not recurse
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    # -- what a subclass changes ----------------------------------------------------------------
    def step(self, action: Action) -> Step:
        """Step the wrapped env; the per-agent reward is ``self.reward(step)``."""
        step = self.env.step(action)
        return replace(step, reward=self.reward(step))

    def reward(self, step: Step) -> Tensor:
        """The per-agent reward ``[B, N]`` of ``step`` (default: the wrapped env's)."""
        return step.reward

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env!r})"
