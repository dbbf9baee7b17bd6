"""Entity views for HGAT-style learners: what each agent sees of the others.

A view is an ``nn.Module`` (it may hold running normalisers, which travel with the checkpoint)
with ``forward(obs) -> EntityView`` and ``update(obs)`` (merge training statistics), plus the
sizes a network needs: ``own_dim``, ``ent_dim``, ``kinds``, ``slots`` (E), ``n_groups`` and
``policy_groups`` ``[N]`` (which shared actor / critic each agent uses).

:class:`NeighborView` is the view of every gridmarl env: agent i sees itself and the agents
``AgentSpec.neighbors[i]`` (its visual range, fixed by the domain's physics or the scenario's
``graph`` block), grouped by ``AgentSpec.groups``.  Agent i's observation of agent j is j's
normalised local features and flattened forecast; only agents in view enter, so changing an
agent outside agent i's view cannot change what agent i sees.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gridmarl.controllers.common.hgat import EntityView
from gridmarl.controllers.common.normalizers import RunningMeanStd
from gridmarl.core.types import AgentSpec, Observation


def agent_features(obs: Observation) -> Tensor:
    """``[B, N, local_dim + H·f]``: local features and the flattened forecast."""
    b, n = obs.batch_shape
    return torch.cat([obs.local, obs.forecast.reshape(b, n, -1)], -1)


class NeighborView(nn.Module):
    """Self + ``AgentSpec.neighbors`` as entity slots, grouped by ``AgentSpec.groups``.

    Args:
        spec: the env's spec.

    Slots: ``E = 1 + K`` (slot 0 is the agent itself, always visible, in its own group).
    """

    name = "neighbors"

    def __init__(self, spec: AgentSpec) -> None:
        super().__init__()
        self.own_dim = spec.local_dim + spec.forecast_len * spec.forecast_dim
        self.ent_dim = self.own_dim
        self.kinds = 1
        n = spec.n_agents
        idx = torch.cat([torch.arange(n).unsqueeze(1), spec.neighbors.long().cpu()], 1)
        self.slots = int(idx.shape[1])
        self.n_groups = int(spec.groups.max()) + 1
        self.register_buffer("idx", idx, persistent=False)  # [N, E], -1 padded
        self.register_buffer("policy_groups", spec.groups.long().cpu().clone(), persistent=False)
        self.norm = RunningMeanStd((self.own_dim,))

    @torch.no_grad()
    def update(self, obs: Observation) -> None:
        """Merge the observations' features into the normaliser."""
        self.norm.update(agent_features(obs))

    def forward(self, obs: Observation) -> EntityView:
        """The view of every agent of ``obs`` (``[B, N, E, ...]``)."""
        x = self.norm.normalize(agent_features(obs).float())
        b, n, _ = x.shape
        idx = self.idx.to(x.device)
        safe = idx.clamp_min(0)
        ent = x[:, safe]  # [B, N, E, d]
        groups = self.policy_groups.to(x.device)
        return EntityView(
            own=x,
            entities=ent,
            kind=torch.zeros(self.slots, dtype=torch.long, device=x.device),
            group=groups[safe].expand(b, n, self.slots),
            mask=(idx >= 0).expand(b, n, self.slots),
            agent=idx.expand(b, n, self.slots),
            n_groups=self.n_groups,
        )
