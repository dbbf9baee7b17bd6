"""Controllers: anything that maps a batched observation to a batched action."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.types import Action, AgentSpec, Observation


class Controller(ABC):
    """Decides a joint action from an observation.  ``name`` labels results and files."""

    name: str = "controller"

    def reset(self, env: MultiAgentEnv) -> None:  # noqa: B027 - optional hook
        """Called once before an episode starts (open-loop controllers rewind here)."""

    @abstractmethod
    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """Return the joint action ``[B, N]`` for ``obs``."""


class Trainable(Controller):
    """A controller that learns from an env factory."""

    @abstractmethod
    def train(
        self, env_factory: Callable[[int], MultiAgentEnv], budget: int, logger: Any | None = None
    ) -> dict[str, float]:
        """Train for ``budget`` agent-steps on envs made by ``env_factory(num_envs)``."""

    @abstractmethod
    def save(self, path: str | Path) -> None:
        """Write a checkpoint (atomically)."""

    @abstractmethod
    def load(self, path: str | Path) -> None:
        """Read a checkpoint with ``torch.load(weights_only=True)``."""


class ScheduleController(Controller):
    """Replays a fixed schedule open loop, one action per step.

    Args:
        name: label of the controller.
        discrete: ``[T, N]`` long discrete choices per step, applied to every parallel env,
            or ``[T, B, N]``, one schedule per env.
        continuous: ``[T, N, n_continuous]`` (or ``[T, B, N, n_continuous]``) float continuous
            actions in [-1, 1].

    Asking for a step beyond ``T`` raises, so a schedule shorter than the episode is caught
    rather than padded.
    """

    def __init__(self, name: str, discrete: torch.Tensor, continuous: torch.Tensor) -> None:
        if (
            discrete.dim() not in (2, 3)
            or continuous.dim() != discrete.dim() + 1
            or discrete.shape != continuous.shape[:-1]
        ):
            raise ValueError(
                "schedule shapes must be discrete [T, N] and continuous [T, N, C] "
                "(or [T, B, N] and [T, B, N, C])"
            )
        self.name = name
        self.discrete = discrete.long()
        self.continuous = continuous
        self._t = 0

    def reset(self, env: MultiAgentEnv) -> None:
        """Rewind to the first step of the schedule."""
        self._t = 0

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """The schedule's action for the current step (broadcast over ``B`` if shared)."""
        if self._t >= self.discrete.shape[0]:
            raise IndexError(f"schedule {self.name!r} has only {self.discrete.shape[0]} steps")
        b, n = obs.batch_shape
        if self.discrete.shape[-1] != n or self.discrete.dim() == 3 and self.discrete.shape[1] != b:
            raise ValueError(
                f"schedule {self.name!r} is {tuple(self.discrete.shape[1:])} (envs, agents) "
                f"per step, env batch is ({b}, {n})"
            )
        dev = obs.local.device
        d = self.discrete[self._t].to(dev).expand(b, n)
        c = self.continuous[self._t].to(dev, obs.local.dtype).expand(b, n, -1)
        self._t += 1
        return Action(discrete=d.clone(), continuous=c.clone())


def check_action(spec: AgentSpec, action: Action, num_envs: int) -> None:
    """Raise a ValueError naming the problem if ``action`` does not fit ``spec``."""
    want_d = (num_envs, spec.n_agents)
    want_c = (num_envs, spec.n_agents, spec.n_continuous)
    if tuple(action.discrete.shape) != want_d:
        raise ValueError(
            f"action.discrete has shape {tuple(action.discrete.shape)}, expected {want_d}"
        )
    if tuple(action.continuous.shape) != want_c:
        raise ValueError(
            f"action.continuous has shape {tuple(action.continuous.shape)}, expected {want_c}"
        )
