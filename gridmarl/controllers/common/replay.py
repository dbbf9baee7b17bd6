"""A device-resident ring replay buffer of ``[B, N]`` multi-agent transitions.

One stored row is one env-step of all ``N`` agents: the observation acted on, the joint action,
the per-agent and team rewards, the next observation, ``terminated`` and ``truncated``, and any
per-agent extras declared at construction (e.g. LToS's sharing weights ``[N, K]``).  ``add``
writes the ``B`` rows of one batched env step; ``sample`` draws rows uniformly with replacement,
so the ``N`` agents of a sampled row are always at the same timestep of the same env (the joint
transition a graph or mean-field learner needs, LToS and HMF).  Everything lives in tensors
preallocated on one device; nothing is copied to the host to sample.

The next observation is the one ``MultiAgentEnv.step`` returned, i.e. the final observation of
an episode that ended (envs never reset themselves).  A TD target for row i is then
``r_i + γ (1 − terminated_i) · V(next_obs_i)``: it bootstraps a truncation (time limit) and not a
termination (Pardo et al. 2018, "Time Limits in Reinforcement Learning", arXiv:1712.00378).

Memory: a row holds ``N · (2 · (local_dim + H·f + state_dim) + n_continuous + Σ extras)`` floats,
``2 · global_dim + 1`` floats (team reward), ``N`` int64 (the discrete action), ``N`` floats
(reward), ``2 · N · n_discrete`` bools (the two action masks, when ``n_discrete > 0``) and 2 bools;
``ReplayBuffer.nbytes`` gives the exact total.  Example: ``community_50`` (N = 50, local_dim 24,
H·f = 3·3, state_dim 25, global_dim 8, n_discrete 3, n_continuous 2, no extras) takes
50 · (2 · 58 + 2 + 1) · 4 + 17 · 4 + 50 · 8 + 2 · 150 + 2 = 24,570 bytes per row in float32:
100 k rows ≈ 2.5 GB, 1 M rows ≈ 24.6 GB.

Why not TorchRL's ``ReplayBuffer`` over a ``LazyTensorStorage`` (the usual choice): it would
add ``torchrl`` and ``tensordict`` as dependencies pinned to the torch version for about 200
lines of indexing; this buffer speaks the core types (``Observation``, ``Action``, ``Step``)
directly and its ``state_dict`` loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from gridmarl.core.types import Action, AgentSpec, Observation, Step

_OBS_FIELDS = ("local", "forecast", "state", "global_")


@dataclass(frozen=True)
class Transitions:
    """``M`` stored rows, each one env-step of all ``N`` agents (aligned in time).

    Attributes:
        obs: the observation acted on, fields ``[M, N, ...]`` (``global_`` ``[M, global_dim]``;
            ``action_mask`` ``[M, N, n_discrete]`` bool, or None when ``n_discrete = 0``).
        action: discrete ``[M, N]`` long, continuous ``[M, N, n_continuous]``.
        reward: ``[M, N]`` per-agent reward.
        team_reward: ``[M]`` team reward.
        next_obs: the observation after the step (an ended episode's final observation).
        terminated: ``[M]`` bool, the step reached a terminal state (no bootstrap).
        truncated: ``[M]`` bool, the episode was cut off at this step (bootstrap).
        extras: the declared per-agent extras, ``name -> [M, N, *shape]``.
    """

    obs: Observation
    action: Action
    reward: Tensor
    team_reward: Tensor
    next_obs: Observation
    terminated: Tensor
    truncated: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)

    @property
    def done(self) -> Tensor:
        """``[M]`` bool, the episode ended at this step (``terminated | truncated``)."""
        return self.terminated | self.truncated


class ReplayBuffer:
    """Ring buffer of ``capacity`` rows; the oldest rows are overwritten first.

    Args:
        spec: the env's agent spec (fixes every row's shapes).
        capacity: rows kept [env-steps].
        device: where the storage lives and samples are returned.
        dtype: float dtype of observations, continuous actions, rewards and extras.
        extras: per-agent extras stored with every row, ``name -> shape`` of one agent's value
            (a row stores ``[N, *shape]``), e.g. ``{"share_weights": (K,)}``.
    """

    def __init__(
        self,
        spec: AgentSpec,
        capacity: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        extras: Mapping[str, tuple[int, ...]] | None = None,
    ) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.spec = spec
        self.capacity = int(capacity)
        self.device = torch.device(device)
        n, c = spec.n_agents, int(capacity)
        fkw: dict[str, Any] = {"device": self.device, "dtype": dtype}
        bkw: dict[str, Any] = {"device": self.device, "dtype": torch.bool}
        shapes = {
            "local": (n, spec.local_dim),
            "forecast": (n, spec.forecast_len, spec.forecast_dim),
            "state": (n, spec.state_dim),
            "global_": (spec.global_dim,),
        }
        self._storage: dict[str, Tensor] = {}
        for prefix in ("obs", "next_obs"):
            for name, shape in shapes.items():
                self._storage[f"{prefix}.{name}"] = torch.zeros(c, *shape, **fkw)
            if spec.n_discrete:
                self._storage[f"{prefix}.action_mask"] = torch.ones(c, n, spec.n_discrete, **bkw)
            if spec.pair_dim:
                self._storage[f"{prefix}.pair"] = torch.zeros(
                    c, n, spec.n_discrete, spec.pair_dim, **fkw
                )
        self._storage["action.discrete"] = torch.zeros(c, n, dtype=torch.long, device=self.device)
        self._storage["action.continuous"] = torch.zeros(c, n, spec.n_continuous, **fkw)
        self._storage["reward"] = torch.zeros(c, n, **fkw)
        self._storage["team_reward"] = torch.zeros(c, **fkw)
        self._storage["terminated"] = torch.zeros(c, **bkw)
        self._storage["truncated"] = torch.zeros(c, **bkw)
        self.extra_shapes = {k: tuple(int(d) for d in v) for k, v in (extras or {}).items()}
        for name, shape in self.extra_shapes.items():
            self._storage[f"extras.{name}"] = torch.zeros(c, n, *shape, **fkw)
        self.ptr = 0  # the row the next add writes first
        self.size = 0  # rows filled
        self.kept = 0  # rows 0 … kept − 1 are never overwritten (:meth:`keep_first`)

    def __len__(self) -> int:
        """Rows stored (at most ``capacity``)."""
        return self.size

    @property
    def nbytes(self) -> int:
        """Memory the storage takes [bytes] (fixed at construction)."""
        return sum(t.numel() * t.element_size() for t in self._storage.values())

    # -- writing --------------------------------------------------------------------------------
    def add(
        self,
        obs: Observation,
        action: Action,
        step: Step,
        extras: Mapping[str, Tensor] | None = None,
    ) -> None:
        """Store the ``B`` rows of one batched env step.

        Args:
            obs: the observation the action was taken on, ``[B, N, ...]``.
            action: the joint action ``[B, N]``.
            step: what ``env.step(action)`` returned; ``step.obs`` is the next observation,
                ``reward [B, N]``, ``team_reward [B]``, ``terminated`` and ``truncated [B]``.
            extras: every declared extra, ``name -> [B, N, *shape]``.
        """
        b, n = obs.batch_shape
        span = self.capacity - self.kept  # the rows the ring cycles through
        if n != self.spec.n_agents or b > span:
            raise ValueError(
                f"add takes [B, {self.spec.n_agents}] rows with B <= capacity "
                f"{self.capacity} (less {self.kept} kept rows), got [{b}, {n}]"
            )
        extras = dict(extras or {})
        if set(extras) != set(self.extra_shapes):
            raise ValueError(
                f"extras must be exactly {sorted(self.extra_shapes)}, got {sorted(extras)}"
            )
        values: dict[str, Tensor] = {
            "action.discrete": action.discrete,
            "action.continuous": action.continuous,
            "reward": step.reward,
            "team_reward": step.team_reward,
            "terminated": step.terminated,
            "truncated": step.truncated,
        }
        for prefix, o in (("obs", obs), ("next_obs", step.obs)):
            for name in _OBS_FIELDS:
                values[f"{prefix}.{name}"] = getattr(o, name)
            if self.spec.n_discrete:
                mask = o.action_mask
                values[f"{prefix}.action_mask"] = (
                    torch.ones(b, n, self.spec.n_discrete, dtype=torch.bool)
                    if mask is None
                    else mask
                )
            if self.spec.pair_dim:
                if o.pair is None:
                    raise ValueError(f"{prefix}.pair is missing; the spec has pair_dim > 0")
                values[f"{prefix}.pair"] = o.pair
        for name, value in extras.items():
            values[f"extras.{name}"] = value
        start = self.ptr - self.kept
        rows = self.kept + (start + torch.arange(b, device=self.device)) % span
        for key, value in values.items():
            store = self._storage[key]
            if tuple(value.shape) != (b, *store.shape[1:]):
                raise ValueError(
                    f"{key} has shape {tuple(value.shape)}, expected {(b, *store.shape[1:])}"
                )
            store[rows] = value.to(self.device, store.dtype)
        self.ptr = self.kept + (start + b) % span
        self.size = min(self.size + b, self.capacity)

    def keep_first(self, rows: int) -> None:
        """Never overwrite the rows stored so far (``rows`` of them, written from an empty
        buffer without wrapping): later adds cycle through the rest of the capacity
        (demonstrations kept for the whole run, as DQfD keeps them).

        Raises:
            ValueError: the buffer does not hold exactly ``rows`` unwrapped rows, or they leave
                no room for learning.
        """
        if self.kept or self.size != rows or self.ptr != rows % self.capacity:
            raise ValueError(
                f"keep_first({rows}) needs exactly {rows} rows written from an empty buffer; it "
                f"holds {self.size} (write position {self.ptr}, {self.kept} kept)"
            )
        if rows >= self.capacity:
            raise ValueError(f"keep_first({rows}) leaves no room in a capacity of {self.capacity}")
        self.kept = int(rows)

    # -- reading --------------------------------------------------------------------------------
    def sample(self, batch_size: int, generator: torch.Generator) -> Transitions:
        """``batch_size`` rows drawn uniformly with replacement, on the buffer's device.

        Args:
            batch_size: rows ``M``.
            generator: drives the draw (on the CPU or the buffer's device); the same generator
                state over the same buffer gives the same rows.
        """
        if self.size == 0:
            raise ValueError("sample from an empty replay buffer")
        idx = torch.randint(
            0, self.size, (batch_size,), generator=generator, device=generator.device
        )
        return self.rows(idx.to(self.device))

    def rows(self, idx: Tensor) -> Transitions:
        """The stored rows ``idx`` ``[M]`` (0 … len − 1 in storage order, not age order)."""
        s = {k: v[idx] for k, v in self._storage.items()}

        def observation(prefix: str) -> Observation:
            return Observation(
                **{name: s[f"{prefix}.{name}"] for name in _OBS_FIELDS},
                action_mask=s.get(f"{prefix}.action_mask"),
                pair=s.get(f"{prefix}.pair"),
            )

        return Transitions(
            obs=observation("obs"),
            action=Action(discrete=s["action.discrete"], continuous=s["action.continuous"]),
            reward=s["reward"],
            team_reward=s["team_reward"],
            next_obs=observation("next_obs"),
            terminated=s["terminated"],
            truncated=s["truncated"],
            extras={name: s[f"extras.{name}"] for name in self.extra_shapes},
        )

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The filled rows and the write position (plain tensors and ints, ``weights_only``
        loadable); ``load_state_dict`` of it into a buffer of the same layout resumes exactly."""
        return {
            "capacity": self.capacity,
            "ptr": self.ptr,
            "size": self.size,
            "kept": self.kept,
            "rows": {k: v[: self.size].clone() for k, v in self._storage.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore ``state_dict()``'s content; refuses another capacity or row layout."""
        if int(state["capacity"]) != self.capacity:
            raise ValueError(
                f"replay state has capacity {state['capacity']}, this buffer {self.capacity}"
            )
        rows: Mapping[str, Tensor] = state["rows"]
        if set(rows) != set(self._storage):
            raise ValueError(
                f"replay state stores {sorted(rows)}, this buffer {sorted(self._storage)}"
            )
        size = int(state["size"])
        for key, value in rows.items():
            store = self._storage[key]
            if tuple(value.shape) != (size, *store.shape[1:]) or value.dtype != store.dtype:
                raise ValueError(
                    f"replay state's {key} is {value.dtype} {tuple(value.shape)}, expected "
                    f"{store.dtype} {(size, *store.shape[1:])}"
                )
        for key, value in rows.items():
            self._storage[key][:size] = value.to(self.device)
        self.ptr, self.size = int(state["ptr"]), size
        self.kept = int(state.get("kept", 0))
