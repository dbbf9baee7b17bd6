"""Batched neighbourhood operations over ``AgentSpec.neighbors`` (padded with -1).

An agent's *neighbourhood* is itself followed by its graph neighbours: slot 0 = self, slot
``k + 1`` = ``neighbors[i, k]``; ``K + 1`` slots, padded ones masked.  Everything works on
``[B, N, ...]`` tensors with one gather per call (no Python loop over agents), so the same
weights run on any graph and any number of agents.

* :class:`Neighbourhood`: the index tables of one graph (``index [N, K+1]``, ``mask``, and the
  reverse slots ``reverse[i, k]`` = the slot agent ``i`` holds in its ``k``-th neighbour's
  neighbourhood, what LToS needs to route a sharing weight ``w_ij`` to ``j``).
* :class:`NeighbourhoodAttention`: DGN's multi-head dot-product attention convolution (Jiang et
  al. 2020, "Graph Convolutional Reinforcement Learning", ICLR, §3.2 Eq. 1): agent ``i`` attends
  over its neighbourhood (itself included) with softmax(τ · Q h_i · K h_j) weights and sums
  ``V h_j`` per head; the heads are concatenated and passed through a ReLU layer.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Neighbourhood:
    """Index tables of a graph's neighbourhoods (self first).

    Args:
        neighbors: ``[N, K]`` long, ``AgentSpec.neighbors`` (symmetric, -1 padded, no self).
        device: where the tables live.

    Attributes:
        index: ``[N, K+1]`` long, the agent in each slot (padded slots hold the agent itself, so
            a gather never goes out of range; ``mask`` hides them).
        mask: ``[N, K+1]`` bool, real slots.
        degree: ``[N]`` long, real neighbours (self excluded).
        reverse: ``[N, K+1]`` long, for slot ``k`` of agent ``i`` (holding agent ``j``), the slot
            of ``i`` in ``j``'s neighbourhood (0 for self and padded slots).
    """

    def __init__(self, neighbors: Tensor, device: torch.device | str = "cpu") -> None:
        nb = neighbors.to("cpu", torch.long)
        n, k = nb.shape
        real = nb >= 0
        own = torch.arange(n).unsqueeze(1)
        self.index = torch.cat([own, torch.where(real, nb, own.expand(n, k))], dim=1)
        self.mask = torch.cat([torch.ones(n, 1, dtype=torch.bool), real], dim=1)
        self.degree = real.sum(1)
        reverse = torch.zeros(n, k + 1, dtype=torch.long)
        for i, j in real.nonzero().tolist():  # once per graph, not per step
            other = int(nb[i, j])
            hits = (nb[other] == i).nonzero()
            if hits.numel() == 0:
                raise ValueError(f"neighbors is not symmetric: {i} lists {other}, not the reverse")
            reverse[i, j + 1] = int(hits[0]) + 1
        self.reverse = reverse
        self.index, self.mask = self.index.to(device), self.mask.to(device)
        self.degree, self.reverse = self.degree.to(device), self.reverse.to(device)

    @property
    def slots(self) -> int:
        """``K + 1`` slots per agent."""
        return int(self.index.shape[1])

    def gather(self, x: Tensor) -> Tensor:
        """``x [B, N, ...]`` -> ``[B, N, K+1, ...]``: each agent's neighbourhood's values."""
        return x[:, self.index]

    def incoming(self, w_out: Tensor) -> Tensor:
        """LToS's exchange of sharing weights (seed §4.3, Alg. 1 line 19).

        Args:
            w_out: ``[B, N, K+1]``, ``w_out[b, i, k]`` = ``w_ij``, the share of agent ``i``'s
                reward that ``i`` gives to the agent in its slot ``k`` (slot 0: kept).

        Returns:
            ``w_in [B, N, K+1]``: ``w_in[b, i, k]`` = ``w_ji`` for ``j`` the agent in ``i``'s
            slot ``k`` (slot 0: ``w_ii``), 0 in padded slots.  Differentiable: the gradient of
            a loss in ``w_in`` flows back to the ``w_out`` of the agents that chose it (Alg. 1
            line 21).
        """
        got = w_out[:, self.index, self.reverse]  # [B, N, K+1]: w_out[j, slot of i in j]
        return got * self.mask


class NeighbourhoodAttention(nn.Module):
    """One DGN convolution layer (Jiang et al. 2020, §3.2, Eq. 1; the relation kernel).

    ``h'_i = ReLU(W_o · concat_m Σ_{j ∈ N⁺_i} α^m_ij W^m_V h_j)``, ``α^m_ij = softmax_j(
    (W^m_Q h_i)·(W^m_K h_j) / √d_k)`` over the neighbourhood ``N⁺_i`` (self included, padded
    slots masked).

    Args:
        dim: feature width in and out.
        heads: attention heads ``M`` (each of width ``dim``, as in DGN's code).
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.dim = heads, dim
        self.q = nn.Linear(dim, dim * heads, bias=False)
        self.k = nn.Linear(dim, dim * heads, bias=False)
        self.v = nn.Linear(dim, dim * heads, bias=False)
        self.out = nn.Linear(dim * heads, dim)

    def forward(self, h: Tensor, hood: Neighbourhood) -> tuple[Tensor, Tensor]:
        """``h [B, N, d]`` -> ``(h' [B, N, d], attention [B, N, M, K+1])``."""
        b, n, d = h.shape
        m = self.heads
        q = self.q(h).view(b, n, m, d)
        kv = hood.gather(h)  # [B, N, K+1, d]
        k = self.k(kv).view(b, n, -1, m, d)
        v = self.v(kv).view(b, n, -1, m, d)
        logits = torch.einsum("bnmd,bnsmd->bnms", q, k) / math.sqrt(d)
        logits = logits.masked_fill(~hood.mask[None, :, None, :], float("-inf"))
        att = torch.softmax(logits, dim=-1)
        mixed = torch.einsum("bnms,bnsmd->bnmd", att, v).reshape(b, n, m * d)
        return torch.relu(self.out(mixed)), att
