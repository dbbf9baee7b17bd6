"""MADDPG: the HAMA ablation without the hierarchical graph attention.

Paper: Lowe et al. 2017, "Multi-agent actor-critic for mixed cooperative-competitive
environments", arXiv:1706.02275; used as the baseline of [HAMA] (Ryu et al. 2020,
arXiv:1909.12557, Table 1).

Everything but the encoder is :class:`gridmarl.controllers.hama.HAMA` (the same critic and
actor losses, replay, targets, Gumbel-softmax for discrete actions, sharing within groups):
the actor reads the raw view of agent i (its own features and the agents in its view, in the
view's fixed slots, absent slots zeroed with a presence flag), the critic the same plus the
actions of those agents, each through a two-layer MLP (``common/hgat.FlatEncoder``).  The
input size grows with the number of slots, so a MADDPG policy runs only on envs whose agents
see as many slots as in training (the seed: MADDPG "cannot be transferred").
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from gridmarl.controllers.common.hgat import FlatEncoder
from gridmarl.controllers.hama import HAMA


class MADDPG(HAMA):
    """HAMA's learner with a flat MLP encoder over fixed view slots (see the module)."""

    name = "maddpg"
    checkpoint_format: ClassVar[str] = "gridmarl.maddpg/1"
    title: ClassVar[str] = "MADDPG"

    def _encoder(self, act_dim: int) -> nn.Module:
        v = self.view
        return FlatEncoder(v.own_dim + act_dim, v.ent_dim + act_dim, v.slots, self.cfg.hidden)

    def _extra_shapes(self) -> dict[str, Any]:
        return {**super()._extra_shapes(), "slots": int(self.view.slots)}
