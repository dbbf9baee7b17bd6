"""Batched data types of the core contract.

Every domain env and every controller speaks these types.  Shapes use ``B`` for parallel
episodes (environments), ``N`` for agents, ``H`` for the forecast window length.
All tensors of one object live on one device.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import torch
from torch import Tensor


@dataclass(frozen=True)
class AgentSpec:
    """Static description of the agents of an env.

    Attributes:
        n_agents: number of agents ``N``.
        local_dim: features in ``Observation.local``.
        forecast_len: forecast window length ``H`` [steps] (0 = no forecast).
        forecast_dim: features per forecast step ``f``.
        state_dim: per-agent features in ``Observation.state`` (centralised critic input).
        global_dim: features in ``Observation.global_`` (aggregate token).
        n_discrete: choices of the discrete head (0 = no discrete action).
        n_continuous: dimensions of the continuous action, each in [-1, 1] (0 = none).
        groups: ``[N]`` int group id of each agent (HAMA / HMF).
        neighbors: ``[N, K]`` int neighbour indices, padded with -1 (LToS, HAMA).
        agent_names: ``N`` names used by the PettingZoo adapter and the exports.
        action_prior: empty, or one entry per continuous action dimension: the index of a
            ``Observation.local`` feature that holds a default action for that dimension, in
            the env's units [-1, 1], or -1 for none.  A residual policy adds it to its Gaussian
            mean (Silver et al. 2018, "Residual policy learning", arXiv:1812.06298).
        local_features: empty, or the name of each ``Observation.local`` feature (``local_dim``
            names): checkpoints record them, so that a policy is not run on features of the
            same count and another meaning.
        pair_dim: features of each (agent, discrete choice) pair in ``Observation.pair``
            (0 = none), e.g. for a routing agent whose choice ``k`` is its ``k``-th neighbour,
            what sending the head packet there costs.  Their number per agent does not depend
            on ``N`` or ``K``, so a learner that scores each choice from its pair features runs
            on any graph.
    """

    n_agents: int
    local_dim: int
    forecast_len: int
    forecast_dim: int
    state_dim: int
    global_dim: int
    n_discrete: int
    n_continuous: int
    groups: Tensor
    neighbors: Tensor
    agent_names: tuple[str, ...] = ()
    action_prior: tuple[int, ...] = ()
    local_features: tuple[str, ...] = ()
    pair_dim: int = 0

    def __post_init__(self) -> None:
        if self.n_agents <= 0:
            raise ValueError(f"n_agents must be positive, got {self.n_agents}")
        if self.n_discrete == 0 and self.n_continuous == 0:
            raise ValueError("an agent needs a discrete or a continuous action (both are 0)")
        if tuple(self.groups.shape) != (self.n_agents,):
            raise ValueError(
                f"groups must have shape [{self.n_agents}], got {tuple(self.groups.shape)}"
            )
        if self.neighbors.dim() != 2 or self.neighbors.shape[0] != self.n_agents:
            raise ValueError(f"neighbors must have shape [{self.n_agents}, K]")
        if self.action_prior and (
            len(self.action_prior) != self.n_continuous
            or not all(-1 <= i < self.local_dim for i in self.action_prior)
        ):
            raise ValueError(
                f"action_prior must name a local feature (0 … {self.local_dim - 1}) or -1 for "
                f"each of the {self.n_continuous} continuous dimensions, got {self.action_prior}"
            )
        if self.local_features and len(self.local_features) != self.local_dim:
            raise ValueError(
                f"local_features names {len(self.local_features)} features, "
                f"local_dim is {self.local_dim}"
            )
        if self.pair_dim < 0 or (self.pair_dim and not self.n_discrete):
            raise ValueError(
                f"pair_dim must be 0, or positive with a discrete action; got {self.pair_dim} "
                f"with n_discrete={self.n_discrete}"
            )
        if not self.agent_names:
            object.__setattr__(
                self, "agent_names", tuple(f"agent_{i}" for i in range(self.n_agents))
            )
        if len(self.agent_names) != self.n_agents:
            raise ValueError("agent_names must name every agent")


@dataclass(frozen=True)
class PolicyShape:
    """What a trained policy must match in an env, known from a scenario without building the
    env: the ``AgentSpec`` fields that fix weight shapes or the meaning of the inputs (not the
    number of agents, their graph or names; size-free actors run on any number of agents).

    ``gridmarl validate`` compares a checkpoint with the scenario's shape (each domain's
    ``policy_shape``); every env builds its ``AgentSpec`` from the same shape, so the two agree.
    Attributes as in :class:`AgentSpec`.
    """

    local_dim: int
    forecast_len: int
    forecast_dim: int
    state_dim: int
    global_dim: int
    n_discrete: int
    n_continuous: int
    action_prior: tuple[int, ...] = ()
    local_features: tuple[str, ...] = ()
    pair_dim: int = 0

    @classmethod
    def of(cls, spec: AgentSpec) -> PolicyShape:
        """The shape of an env's spec."""
        return cls(**{f.name: getattr(spec, f.name) for f in fields(cls)})

    def spec_fields(self) -> dict[str, object]:
        """The shape as ``AgentSpec`` keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _map_tensors(obj, fn):
    """Apply ``fn`` to every tensor field of a dataclass, returning a new instance."""
    changes = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Tensor):
            changes[f.name] = fn(value)
        elif isinstance(value, dict):
            changes[f.name] = {k: fn(v) if isinstance(v, Tensor) else v for k, v in value.items()}
    return replace(obj, **changes)


@dataclass(frozen=True)
class Observation:
    """What the agents see at one step.

    Attributes:
        local: ``[B, N, local_dim]`` current local features, including device states.
        forecast: ``[B, N, H, f]`` the upcoming window (``H`` may be 0).
        state: ``[B, N, state_dim]`` per-agent features for a centralised critic.
        global_: ``[B, global_dim]`` aggregate token (community / network totals).
        action_mask: ``[B, N, n_discrete]`` bool, True = allowed; None = all allowed.
        pair: ``[B, N, n_discrete, pair_dim]`` features of each (agent, discrete choice) pair
            (``AgentSpec.pair_dim``); None when the env has none.
    """

    local: Tensor
    forecast: Tensor
    state: Tensor
    global_: Tensor
    action_mask: Tensor | None = None
    pair: Tensor | None = None

    @property
    def batch_shape(self) -> tuple[int, int]:
        """``(B, N)``."""
        return int(self.local.shape[0]), int(self.local.shape[1])

    def to(self, device: torch.device | str) -> Observation:
        """Move every tensor to ``device``."""
        return _map_tensors(self, lambda t: t.to(device))

    def floats(self, dtype: torch.dtype = torch.float32) -> Observation:
        """The observation with its float tensors in ``dtype`` (the mask stays bool)."""
        if self.local.dtype == dtype:
            return self
        return _map_tensors(self, lambda t: t if t.dtype == torch.bool else t.to(dtype))

    def index(self, b: slice | int | Tensor) -> Observation:
        """Select environments along the batch dimension (keeps the dimension for slices)."""
        return _map_tensors(self, lambda t: t[b])


@dataclass(frozen=True)
class Action:
    """A joint action.

    Attributes:
        discrete: ``[B, N]`` long, index into the discrete choices (zeros when n_discrete = 0).
        continuous: ``[B, N, n_continuous]`` float in [-1, 1] (last dim 0 when none).
    """

    discrete: Tensor
    continuous: Tensor

    @property
    def batch_shape(self) -> tuple[int, int]:
        """``(B, N)``."""
        return int(self.discrete.shape[0]), int(self.discrete.shape[1])

    def to(self, device: torch.device | str) -> Action:
        """Move every tensor to ``device``."""
        return _map_tensors(self, lambda t: t.to(device))

    @staticmethod
    def zeros(
        spec: AgentSpec,
        num_envs: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> Action:
        """An all-zero action (discrete choice 0, continuous 0)."""
        return Action(
            discrete=torch.zeros(num_envs, spec.n_agents, dtype=torch.long, device=device),
            continuous=torch.zeros(
                num_envs, spec.n_agents, spec.n_continuous, dtype=dtype, device=device
            ),
        )


@dataclass(frozen=True)
class Step:
    """What ``MultiAgentEnv.step`` returns.

    An episode ends in one of two ways (Gymnasium's convention; Pardo et al. 2018, "Time Limits
    in Reinforcement Learning", arXiv:1712.00378): it is ``terminated`` when it reached a
    terminal state of the task (nothing follows it, so a value target adds nothing after it),
    or ``truncated`` when it was cut off by something outside the task, such as a time limit
    (the state still has a future, so a value target may bootstrap γ V(final obs)).  Every
    shipped domain has a fixed horizon: its last step is ``truncated``, never ``terminated``.

    Attributes:
        obs: the observation after the step; where the episode ended this is its final
            observation (envs never reset themselves: the caller resets them with
            ``MultiAgentEnv.reset`` or ``reset_envs``).
        reward: ``[B, N]`` per-agent reward.
        team_reward: ``[B]`` team reward.
        terminated: ``[B]`` bool, the episode reached a terminal state at this step.
        truncated: ``[B]`` bool, the episode was cut off at this step (time limit) without
            reaching a terminal state.
        info: named ``[B, ...]`` tensors (domain specific KPIs of the step).
    """

    obs: Observation
    reward: Tensor
    team_reward: Tensor
    terminated: Tensor
    truncated: Tensor
    info: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("terminated", "truncated"):
            flag = getattr(self, name)
            if flag.dtype != torch.bool or flag.dim() != 1:
                raise ValueError(
                    f"Step.{name} must be a [B] bool tensor, got {flag.dtype} {tuple(flag.shape)}"
                )

    @property
    def done(self) -> Tensor:
        """``[B]`` bool, the episode ended at this step (``terminated | truncated``)."""
        return self.terminated | self.truncated
