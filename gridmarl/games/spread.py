"""Cooperative navigation (``simple_spread``) as a batched torch env, and its HGAT view.

The paper's own benchmark ([HAMA] Ryu et al. 2020, arXiv:1909.12557, "Cooperative
Navigation", Table 1), not a gridmarl domain.  :class:`SpreadEnv` is a batched twin of
``mpe2``'s ``simple_spread_v3`` (mpe2 1.1.1, ``_mpe_utils/core.py`` and
``simple_spread/simple_spread.py``): the same physics, observation and reward, for ``B`` envs at
once; ``gridmarl/games/mpe.py`` wraps mpe2 itself (``B = 1``) and ``tests/games`` checks that
both agree step by step.  The twin exists because mpe2 steps every entity pair in Python
(N = 100: 40 000 pairs a step), too slow for 200 evaluation episodes on a CPU.

| quantity | value (mpe2) |
|---|---|
| arena | agents and landmarks start uniform in [-1, 1]² |
| step | dt = 0.1 [s], damping 0.25, mass 1, no speed cap |
| action | discrete: 0 hold, 1 −x, 2 +x, 3 −y, 4 +y; force = 5 (sensitivity) × direction |
| contact | pairs of agents: F = 100 · Δp / |Δp| · k · log(1 + exp(−(|Δp| − 2 r) / k)), k = 1e-3 |
| radius r | 0.15 (training); the seed's transfer setting: 25× smaller, 0.006 |
| reward r_i | 0.5 · (−Σ_l min_j |p_j − l|) + 0.5 · (−#{j ≠ i : |p_i − p_j| < 2 r}) |
| episode | 25 steps, then ``truncated`` |

Observation (``local``, 22 features, mpe2's with ``num_agent_neighbors = 3``,
``num_landmark_neighbors = 3``, so the size does not depend on N): own velocity (2), own
position (2), relative positions of the 3 nearest landmarks (6), of the 3 nearest other agents
(6; zero-padded when fewer exist), the others' communication (6, always 0: agents are
silent).  ``state`` = ``local`` + the indices of those 3 nearest agents (-1 padded), which the
critic's view needs to insert their actions.

Metrics (``info``, per step): ``penalty`` = (Σ_l min_j |p_j − l| + Σ_i #collisions_i) / N, the
per-landmark distance plus collisions, our reading of the seed's "normalised mean penalty";
``occupied`` = share of landmarks with an agent within 0.1 (mpe2's ``CAPTURE_RADIUS``).
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import Tensor, nn

from gridmarl.controllers.common.hgat import EntityView
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.types import Action, AgentSpec, Observation, Step

AGENT_RADIUS = 0.15  # mpe2 simple_spread agent.size
TRANSFER_SHRINK = 25.0  # the seed's transfer setting: agents 25 times smaller
NEAREST = 3  # agents and landmarks each agent observes
OBS_DIM = 4 + 2 * NEAREST + 2 * NEAREST + 2 * NEAREST
DT, DAMPING, SENSITIVITY = 0.1, 0.25, 5.0
CONTACT_FORCE, CONTACT_MARGIN = 1e2, 1e-3
CAPTURE_RADIUS = 0.1
LOCAL_RATIO = 0.5
#: discrete action -> unit direction (mpe2 SimpleEnv._set_action)
DIRECTIONS = torch.tensor([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


def spread_spec(n_agents: int) -> AgentSpec:
    """The spec of an ``n_agents`` game (no static graph: the view is the nearest agents)."""
    return AgentSpec(
        n_agents=n_agents,
        local_dim=OBS_DIM,
        forecast_len=0,
        forecast_dim=0,
        state_dim=OBS_DIM + NEAREST,
        global_dim=0,
        n_discrete=5,
        n_continuous=0,
        groups=torch.zeros(n_agents, dtype=torch.long),
        neighbors=torch.full((n_agents, 1), -1, dtype=torch.long),
        agent_names=tuple(f"agent_{i}" for i in range(n_agents)),
    )


def nearest(rel: Tensor, k: int, exclude_self: bool) -> Tensor:
    """Indices ``[B, N, k]`` of the ``k`` nearest by ``|rel|`` (``rel [B, N, M, 2]``), -1
    where fewer exist."""
    d = rel.norm(dim=-1)
    if exclude_self:
        d = d + torch.diag(torch.full((d.shape[1],), float("inf"))).to(d)
    m = d.shape[-1] - (1 if exclude_self else 0)
    idx = d.argsort(dim=-1)[..., : min(k, m)]
    if idx.shape[-1] < k:
        pad = idx.new_full((*idx.shape[:-1], k - idx.shape[-1]), -1)
        idx = torch.cat([idx, pad], -1)
    return idx


def observe(pos: Tensor, vel: Tensor, land: Tensor) -> tuple[Tensor, Tensor]:
    """mpe2's observation ``[B, N, 22]`` and the nearest agents' indices ``[B, N, 3]``."""
    b, n, _ = pos.shape
    rel_l = land.unsqueeze(1) - pos.unsqueeze(2)  # [B, N, L, 2] landmark − agent
    rel_a = pos.unsqueeze(1) - pos.unsqueeze(2)  # [B, N, N, 2] other − agent
    il = nearest(rel_l, NEAREST, exclude_self=False)
    ia = nearest(rel_a, NEAREST, exclude_self=True)

    def gather(rel: Tensor, idx: Tensor) -> Tensor:
        g = torch.gather(rel, 2, idx.clamp_min(0).unsqueeze(-1).expand(b, n, NEAREST, 2))
        return (g * (idx >= 0).unsqueeze(-1).to(g)).reshape(b, n, -1)

    comm = pos.new_zeros(b, n, 2 * NEAREST)
    obs = torch.cat([vel, pos, gather(rel_l, il), gather(rel_a, ia), comm], -1)
    return obs, ia


class SpreadEnv(MultiAgentEnv):
    """``B`` cooperative-navigation games of ``N`` agents and ``N`` landmarks (module table).

    Args:
        n_agents: N.
        num_envs: B.
        agent_radius: agent size r [arena units] (training 0.15; transfer 0.15 / 25).
        episode_len: steps per episode.
        dtype: float dtype of the state (float64 matches mpe2's numpy arithmetic).
    """

    def __init__(
        self,
        n_agents: int = 3,
        num_envs: int = 8,
        agent_radius: float = AGENT_RADIUS,
        episode_len: int = 25,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.spec = spread_spec(n_agents)
        self.num_envs, self.episode_len = num_envs, episode_len
        self.device = torch.device("cpu")
        self.n, self.radius, self.dtype = n_agents, agent_radius, dtype
        self.gen = torch.Generator().manual_seed(0)
        shape = (num_envs, n_agents, 2)
        self.pos = torch.zeros(shape, dtype=dtype)
        self.vel = torch.zeros(shape, dtype=dtype)
        self.land = torch.zeros(shape, dtype=dtype)
        self.t = torch.zeros(num_envs, dtype=torch.long)

    def set_state(self, pos: Tensor, vel: Tensor, land: Tensor) -> Observation:
        """Start from given positions / velocities ``[B, N, 2]`` (the differential test)."""
        self.pos, self.vel, self.land = (x.to(self.dtype).clone() for x in (pos, vel, land))
        self.t.zero_()
        return self._obs()

    def _obs(self) -> Observation:
        local, ia = observe(self.pos, self.vel, self.land)
        b, n = self.num_envs, self.n
        return Observation(
            local=local.float(),
            forecast=torch.zeros(b, n, 0, 0),
            state=torch.cat([local, ia.to(local.dtype)], -1).float(),
            global_=torch.zeros(b, 0),
            action_mask=torch.ones(b, n, 5, dtype=torch.bool),
        )

    def reset(self, seed: int | None = None) -> Observation:
        return self.reset_envs(torch.ones(self.num_envs, dtype=torch.bool), seed)

    def reset_envs(self, mask: Tensor, seed: int | None = None) -> Observation:
        """New episodes (positions uniform in [-1, 1]², still) in the masked envs."""
        if seed is not None:
            self.gen.manual_seed(int(seed))
        k = int(mask.sum())
        draw = torch.rand(2, k, self.n, 2, generator=self.gen, dtype=self.dtype) * 2 - 1
        self.pos[mask], self.land[mask] = draw[0], draw[1]
        self.vel[mask] = 0.0
        self.t[mask] = 0
        return self._obs()

    def _collisions(self) -> tuple[Tensor, Tensor]:
        """Contact forces ``[B, N, 2]`` and colliding pairs ``[B, N, N]`` bool."""
        delta = self.pos.unsqueeze(2) - self.pos.unsqueeze(1)  # p_i − p_j
        eye = torch.eye(self.n, dtype=torch.bool)
        dist = delta.norm(dim=-1).masked_fill(eye, 1.0)
        k = CONTACT_MARGIN
        pen = torch.logaddexp(torch.zeros_like(dist), -(dist - 2 * self.radius) / k) * k
        force = CONTACT_FORCE * delta / dist.unsqueeze(-1) * pen.unsqueeze(-1)
        force = force.masked_fill(eye.unsqueeze(-1), 0.0).sum(2)
        return force, (dist < 2 * self.radius) & ~eye

    def step(self, action: Action) -> Step:
        """One step of every env (mpe2 World.step, then the rewards)."""
        u = DIRECTIONS.to(self.dtype)[action.discrete.cpu()] * SENSITIVITY
        force, _ = self._collisions()
        self.pos = self.pos + self.vel * DT
        self.vel = self.vel * (1 - DAMPING) + (u + force) * DT
        self.t += 1
        dist_l = (self.land.unsqueeze(1) - self.pos.unsqueeze(2)).norm(dim=-1)  # [B, N, L]
        min_d = dist_l.min(1).values  # [B, L] nearest agent of each landmark
        _, hits = self._collisions()
        coll = hits.sum(-1).to(self.dtype)  # [B, N]
        glob = -min_d.sum(-1, keepdim=True)
        reward = (1 - LOCAL_RATIO) * glob + LOCAL_RATIO * (-coll)
        trunc = self.t >= self.episode_len
        info = {
            "penalty": (min_d.sum(-1) + coll.sum(-1)) / self.n,
            "occupied": (min_d < CAPTURE_RADIUS).to(self.dtype).mean(-1),
        }
        return Step(
            obs=self._obs(),
            reward=reward.float(),
            team_reward=reward.sum(-1).float(),
            terminated=torch.zeros_like(trunc),
            truncated=trunc,
            info=info,
        )

    def records(self) -> pd.DataFrame:
        return pd.DataFrame({"step": [], "agent": []})


def nearest_landmark_action(obs: Observation) -> Tensor:
    """A hand-written reference policy ``[B, N]``: each agent heads for its nearest landmark,
    choosing the direction whose effect two steps ahead (the action moves the agent from the
    next step on: ``p += v·dt``, then ``v ← (1 − damping) v + sensitivity · u · dt``) brings it
    closest.  No coordination: agents sharing a nearest landmark all go there, so it measures
    how precisely discrete actions can hold a landmark, not how well agents spread."""
    x = obs.local.double()
    vel, rel = x[..., 0:2].unsqueeze(2), x[..., 4:6].unsqueeze(2)  # rel: nearest landmark
    v1 = vel * (1 - DAMPING) + DIRECTIONS.to(x).view(1, 1, 5, 2) * SENSITIVITY * DT
    moved = vel * DT + v1 * DT + v1 * (1 - DAMPING) * DT  # [B, N, 5, 2] displacement
    return (rel - moved).norm(dim=-1).argmin(-1)


class SpreadView(nn.Module):
    """HGAT view of the game: the agent itself and its 3 nearest agents (group 0, kind 0),
    the 3 nearest landmarks (group 1, kind 1); each slot holds the relative position.  The
    agent slots' presence comes from the indices in ``state`` (-1 = fewer than 3 others)."""

    name = "spread"

    def __init__(self, spec: AgentSpec) -> None:
        super().__init__()
        self.own_dim, self.ent_dim, self.kinds = 4, 2, 2
        self.slots, self.n_groups = 1 + 2 * NEAREST, 2
        self.register_buffer(
            "policy_groups", torch.zeros(spec.n_agents, dtype=torch.long), persistent=False
        )
        kind = torch.tensor([0] + [0] * NEAREST + [1] * NEAREST)
        self.register_buffer("kind", kind, persistent=False)

    def update(self, obs: Observation) -> None:
        """Nothing to normalise (positions are O(1))."""

    def forward(self, obs: Observation) -> EntityView:
        """The view ``[B, N, 7, ...]`` of every agent."""
        x = obs.local
        b, n, _ = x.shape
        lands = x[..., 4 : 4 + 2 * NEAREST].reshape(b, n, NEAREST, 2)
        others = x[..., 4 + 2 * NEAREST : 4 + 4 * NEAREST].reshape(b, n, NEAREST, 2)
        idx = obs.state[..., OBS_DIM : OBS_DIM + NEAREST].round().long()  # [B, N, 3]
        me = torch.arange(n, device=x.device).view(1, n, 1).expand(b, n, 1)
        ent = torch.cat([x.new_zeros(b, n, 1, 2), others, lands], 2)
        agent = torch.cat([me, idx, idx.new_full((b, n, NEAREST), -1)], 2)
        mask = torch.cat(
            [torch.ones_like(me, dtype=torch.bool), idx >= 0, me.new_ones(b, n, NEAREST).bool()], 2
        )
        group = torch.cat(
            [torch.zeros_like(me).expand(b, n, 1 + NEAREST), me.new_ones(b, n, NEAREST)], 2
        )
        return EntityView(
            own=x[..., :4],
            entities=ent,
            kind=self.kind,
            group=group,
            mask=mask,
            agent=agent,
            n_groups=self.n_groups,
        )
