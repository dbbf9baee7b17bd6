"""The batched multi-agent environment interface."""

from __future__ import annotations

from abc import ABC, abstractmethod

import pandas as pd
import torch
from torch import Tensor

from gridmarl.core.types import Action, AgentSpec, Observation, Step


class MultiAgentEnv(ABC):
    """``B`` parallel episodes of ``N`` agents, stepped together as tensors.

    Subclasses set ``spec``, ``num_envs``, ``device`` and ``episode_len`` and implement
    ``reset``, ``step`` and ``records``.  ``step`` always returns the same shapes and never
    resets by itself: where an episode ended (``Step.done``) the caller starts a new one with
    ``reset`` (all envs) or ``reset_envs`` (the envs whose episode ended).  ``episode_len`` is
    the longest an episode can last [steps].
    """

    spec: AgentSpec
    num_envs: int
    device: torch.device
    episode_len: int

    @abstractmethod
    def reset(self, seed: int | None = None) -> Observation:
        """Start new episodes; ``seed`` re-seeds every random stream of the env."""

    @abstractmethod
    def step(self, action: Action) -> Step:
        """Apply a joint action ``[B, N]`` and advance one step."""

    @abstractmethod
    def records(self) -> pd.DataFrame:
        """Per-step, per-agent records of environment 0 of the current episode.

        Columns carry units in their names (``battery_kw``, ``soc_kwh``); one row per step and
        agent, with ``step`` and ``agent`` columns first.
        """

    def reset_envs(self, mask: Tensor, seed: int | None = None) -> Observation:
        """Start new episodes in the envs where ``mask`` is True; leave the others running.

        Args:
            mask: ``[B]`` bool, the envs to reset (typically ``Step.done``).
            seed: seeds the new episodes' random draws.

        Returns:
            The observation of all ``B`` envs: the first of the new episode where ``mask`` is
            True, unchanged elsewhere.

        The default serves envs whose episodes all end together (a fixed horizon): when every
        env is masked it calls ``reset(seed)``.  An env whose episodes can end at different
        steps overrides it; the default raises ``NotImplementedError`` for a partial mask.
        """
        if tuple(mask.shape) != (self.num_envs,):
            raise ValueError(f"mask has shape {tuple(mask.shape)}, expected ({self.num_envs},)")
        if bool(mask.all()):
            return self.reset(seed=seed)
        raise NotImplementedError(
            f"{type(self).__name__} resets all its envs together (reset), not some (reset_envs)"
        )

    def reset_copies(self, seed: int | None, copies: int) -> Observation:
        """Start ``B / copies`` distinct episodes, each run by ``copies`` envs at once.

        Env ``b`` runs episode ``b mod (B / copies)``: the same data, initial state and
        random draws as every other copy of that episode, so policies acting in different
        copies are compared on common random numbers (ES fine-tuning,
        ``gridmarl.controllers.es``).  Optional: an env that cannot do it raises
        ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot run copies of its episodes")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release simulator resources (no-op by default)."""
