"""A finite action set for discrete-only learners over any ``AgentSpec`` action.

A hybrid action (a discrete choice among ``n_discrete`` modes and ``n_continuous`` dimensions in
[-1, 1]) becomes ``n_actions = max(1, n_discrete) · Π_d len(levels_d)`` combined actions: every
mode with every combination of one level per continuous dimension.  A discrete-only spec maps
1:1 (``n_actions = n_discrete``); a continuous-only spec is the grid of levels (the discrete part
of its ``Action`` is 0, as in ``Action.zeros``).

Index order: the mode is the slowest digit, then the continuous dimensions in order, the last one
fastest: ``index = mode · Π_d L_d + Σ_d level_d · Π_{e > d} L_e``.

Default levels: 5 per continuous dimension, evenly spaced over [-1, 1]: (−1, −0.5, 0, 0.5, 1).
For the energy env (``gridmarl/energy/env.py``: mode = heat-pump mode 0 = off … M−1 = full;
dimension 0 = battery setpoint u_b, + charge; dimension 1 = EV charging, share (u_ev + 1) / 2 of
the charger power) they are full / half discharge, idle, half / full charge of the battery and
0, 25, 50, 75, 100 % of the EV charger: 3 modes · 5 · 5 = 75 actions with the default 3 modes.
A combined action is allowed iff its mode is allowed by the observation's ``action_mask``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from gridmarl.core.types import Action, AgentSpec, Observation

#: levels of each continuous dimension when none are given
DEFAULT_LEVELS = 5


class DiscretizedAction:
    """A documented finite action set over a spec's (hybrid) action.

    Args:
        spec: the env's agent spec.
        levels: per continuous dimension, the values it may take, each in [-1, 1]: an int ``L``
            (``L >= 2`` values evenly spaced from −1 to 1) for every dimension, or one entry
            per dimension, each such an int or an explicit increasing sequence of values.
        device: where the level table lives (outputs follow their input's device).
    """

    def __init__(
        self,
        spec: AgentSpec,
        levels: int | Sequence[int | Sequence[float]] = DEFAULT_LEVELS,
        device: torch.device | str = "cpu",
    ) -> None:
        self.spec = spec
        c = spec.n_continuous
        per_dim = [levels] * c if isinstance(levels, int) else list(levels)
        if len(per_dim) != c:
            raise ValueError(f"levels names {len(per_dim)} dimensions, the spec has {c}")
        self.levels: tuple[Tensor, ...] = tuple(
            _level_values(d, v, device) for d, v in enumerate(per_dim)
        )
        self.n_modes = max(1, spec.n_discrete)
        #: ``[n_grid, C]`` the continuous part of each grid point, in index order
        self.grid = (
            torch.tensor(
                list(itertools.product(*[lv.tolist() for lv in self.levels])),
                dtype=torch.float32,
                device=device,
            )
            if c
            else torch.zeros(1, 0, device=device)
        )
        self.n_grid = int(self.grid.shape[0])
        self.n_actions = self.n_modes * self.n_grid
        # place value of each dimension's level index in the grid index
        sizes = [len(lv) for lv in self.levels]
        self._place = [math.prod(sizes[d + 1 :]) for d in range(c)]

    def to_action(self, index: Tensor, dtype: torch.dtype = torch.float32) -> Action:
        """The ``Action`` of each combined index.

        Args:
            index: ``[B, N]`` long in 0 … ``n_actions`` − 1.
            dtype: float dtype of the continuous part.

        Returns:
            discrete ``[B, N]`` (the mode; 0 without a discrete part), continuous
            ``[B, N, n_continuous]`` in [-1, 1].
        """
        if bool(((index < 0) | (index >= self.n_actions)).any()):
            raise ValueError(f"action index outside 0 … {self.n_actions - 1}")
        mode = torch.div(index, self.n_grid, rounding_mode="floor")
        point = index - mode * self.n_grid
        cont = self.grid.to(index.device)[point].to(dtype)
        if self.spec.n_discrete == 0:
            mode = torch.zeros_like(mode)
        return Action(discrete=mode, continuous=cont)

    def index_of(self, action: Action) -> Tensor:
        """``[B, N]`` index of the nearest combined action: the same mode, and in each continuous
        dimension the nearest level (ties go to the lower level; values outside [-1, 1] go to the
        end levels).  A pure-continuous spec ignores ``action.discrete``."""
        mode = action.discrete if self.spec.n_discrete else torch.zeros_like(action.discrete)
        index = mode * self.n_grid
        for d, lv in enumerate(self.levels):
            u = action.continuous[..., d : d + 1]
            k = (u - lv.to(u.device, u.dtype)).abs().argmin(-1)  # first minimum: lower level
            index = index + k * self._place[d]
        return index

    def mask(self, obs: Observation) -> Tensor:
        """``[B, N, n_actions]`` bool: a combined action is allowed iff its mode is allowed by
        ``obs.action_mask`` (all allowed when it is None or the spec has no discrete part)."""
        b, n = obs.batch_shape
        if obs.action_mask is None or self.spec.n_discrete == 0:
            return torch.ones(b, n, self.n_actions, dtype=torch.bool, device=obs.local.device)
        return obs.action_mask.repeat_interleave(self.n_grid, dim=-1)

    def labels(self) -> list[str]:
        """A readable name per combined action, in index order (``mode=1 u0=-0.5 u1=1``)."""
        out = []
        for i in range(self.n_actions):
            parts = [f"mode={i // self.n_grid}"] if self.spec.n_discrete else []
            parts += [f"u{d}={v:g}" for d, v in enumerate(self.grid[i % self.n_grid].tolist())]
            out.append(" ".join(parts))
        return out


def _level_values(dim: int, levels: int | Sequence[float], device: torch.device | str) -> Tensor:
    """The ``[L]`` values of one continuous dimension, checked."""
    if isinstance(levels, int):
        if levels < 2:
            raise ValueError(f"dimension {dim}: at least 2 levels (−1 and 1), got {levels}")
        return torch.linspace(-1.0, 1.0, levels, device=device)
    values = torch.tensor([float(v) for v in levels], device=device)
    if values.numel() == 0:
        raise ValueError(f"dimension {dim}: no levels")
    if bool((values.abs() > 1).any()) or bool((values[1:] <= values[:-1]).any()):
        raise ValueError(
            f"dimension {dim}: levels must increase strictly within [-1, 1], got {values.tolist()}"
        )
    return values
