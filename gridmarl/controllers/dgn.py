"""DGN: graph convolutional reinforcement learning over the agents' neighbourhoods.

Paper: Jiang, Dun, Huang and Lu 2020, "Graph Convolutional Reinforcement Learning", ICLR
(arXiv:1810.09202); the hyper-parameters are the LToS seed's Table 5 (DGN is also LToS's low
level).

Network (§3.2 of the DGN paper): ``h⁰_i = encoder(x_i)`` (``encoder_layers`` × Linear + ReLU of
``hidden`` units); ``conv_layers`` relation kernels, each multi-head dot-product attention of
agent ``i`` over its neighbourhood ``N⁺_i`` = itself + ``AgentSpec.neighbors[i]`` (Eq. 1,
``controllers/common/neighbourhood.NeighbourhoodAttention``); the Q head reads the
concatenation of every layer's features ``[h⁰_i, h¹_i, …]`` (DGN's dense connections, §3.2
"we concatenate the outputs of all layers") → Linear → ``Q_i(O_{N⁺_i}, ·) [A]``.  Weights are
shared by all agents and the attention runs over padded ``[B, N, K+1]`` neighbourhoods, so a
trained DGN runs on any graph with the same per-agent features.  With ``L`` convolutions agent
``i``'s action depends on the observations within ``L`` hops only (decentralised execution with
neighbour communication).

DGN's temporal relation regularisation (KL between attention at consecutive steps, §3.3) is not
implemented: the LToS seed uses DGN without it (its Table 5 lists no coefficient).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from gridmarl.controllers.common.neighbourhood import Neighbourhood, NeighbourhoodAttention
from gridmarl.controllers.common.qlearning import QConfig, QLearner, encoder

CHECKPOINT_FORMAT = "gridmarl.dgn/1"


class DGNNet(nn.Module):
    """Encoder, ``conv_layers`` attention convolutions, Q head on the concatenated features.

    With ``cfg.action_head = "table"`` the head is one Linear to ``A`` values; with
    ``"neighbours"`` action ``k`` is neighbour slot ``k`` and ``Q_i(k) = MLP(z_i, z_{j_k})`` on
    the concatenated features of the agent and of that neighbour (padded slots are masked by
    the env's action mask), which holds no weight per slot; with ``pair_dim`` the head also
    reads choice ``k``'s pair features (``Observation.pair``, appended to ``x`` by the learner
    after its first ``in_dim`` columns), ``Q_i(k) = MLP(z_i, z_{j_k}, p_ik)``.

    Args:
        in_dim: per-agent features ``F``.
        n_actions: ``A`` (a table head).
        cfg: widths, heads, layers and the head.
        extra_dim: further per-agent inputs of the Q head (LToS: its ``w_in`` features).
        pair_dim: features per (agent, choice) pair read by the pointer head (0 = none).
    """

    def __init__(
        self, in_dim: int, n_actions: int, cfg: QConfig, extra_dim: int = 0, pair_dim: int = 0
    ) -> None:
        super().__init__()
        self.in_dim, self.pair_dim = in_dim, pair_dim
        self.encoder = encoder(in_dim, cfg.hidden, cfg.encoder_layers)
        self.convs = nn.ModuleList(
            NeighbourhoodAttention(cfg.hidden, cfg.heads) for _ in range(cfg.conv_layers)
        )
        self.extra_dim = extra_dim
        feat = cfg.hidden * (1 + cfg.conv_layers)
        self.pointer = cfg.action_head == "neighbours"
        if self.pointer:
            self.head: nn.Module = nn.Sequential(
                nn.Linear(2 * feat + extra_dim + pair_dim, cfg.hidden),
                nn.ReLU(),
                nn.Linear(cfg.hidden, 1),
            )
        else:
            self.head = nn.Linear(feat + extra_dim, n_actions)

    def features(self, x: Tensor, hood: Neighbourhood) -> tuple[Tensor, Tensor]:
        """``(z [M, N, F'], h⁰ [M, N, d])``: every layer's features concatenated (DGN's
        dense connections), and the encoder's output."""
        h0 = h = self.encoder(x[..., : self.in_dim])
        outs = [h]
        for conv in self.convs:
            h, _ = conv(h, hood)
            outs.append(h)
        return torch.cat(outs, dim=-1), h0

    def pairs(self, x: Tensor) -> Tensor | None:
        """``[M, N, K, pair_dim]`` pair features from the columns of ``x`` after ``in_dim``."""
        if not self.pair_dim:
            return None
        return x[..., self.in_dim :].unflatten(-1, (-1, self.pair_dim))

    def q_head(
        self,
        z: Tensor,
        own_extra: Tensor | None,
        hood: Neighbourhood,
        pairs: Tensor | None = None,
    ) -> Tensor:
        """``Q [M, N, A]`` from the features ``z`` (and the agent's extra head inputs, and
        each choice's pair features)."""
        own = z if own_extra is None else torch.cat([z, own_extra], dim=-1)
        if not self.pointer:
            return self.head(own)
        nb = hood.gather(z)[:, :, 1:]  # [M, N, K, F'] the neighbours in slot order
        parts = [own.unsqueeze(2).expand(-1, -1, nb.shape[2], -1), nb]
        if pairs is not None:
            parts.append(pairs)
        return self.head(torch.cat(parts, dim=-1)).squeeze(-1)

    def forward(self, x: Tensor, hood: Neighbourhood, extra: Tensor | None = None) -> Tensor:
        """``x [M, N, F]`` (and ``extra [M, N, E]``) -> ``Q [M, N, A]``."""
        z, _ = self.features(x, hood)
        return self.q_head(z, extra if self.extra_dim else None, hood, self.pairs(x))


class DGN(QLearner):
    """DGN over the env's agent graph (module docstring)."""

    name: ClassVar[str] = "dgn"
    config_class: ClassVar[type] = QConfig
    checkpoint_format: ClassVar[str] = CHECKPOINT_FORMAT
    what: ClassVar[str] = "DGN"

    def build(self) -> nn.Module:
        """The shared DGN network."""
        return DGNNet(self.in_dim, self.actions.n_actions, self.cfg, pair_dim=self.pair_dim)

    def q_values(self, net: nn.Module, x: Tensor, extra: dict[str, Tensor]) -> Tensor:
        """``Q [M, N, A]`` from each agent's neighbourhood."""
        return net(x, self.hood)
