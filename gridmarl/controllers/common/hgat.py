"""Hierarchical graph attention (HGAT) over entity views, and the Gumbel-softmax helper.

Paper: [HAMA] Ryu, Shin, Park 2020, "Multi-Agent Actor-Critic with Hierarchical Graph
Attention Network", AAAI, arXiv:1909.12557 (section "State Representation Using HGAT").

An **entity view** (:class:`EntityView`) is what one agent sees: its own features ``own`` and
``E`` entity slots (other agents in view, itself, or non-acting entities such as landmarks),
each with features, a *kind* (which embedding / attention functions read it), an aggregation
*group* (``0 … G-1``) and a visibility mask.  :class:`HGAT` turns it into one embedding per
agent whose size does not depend on ``E``, ``G`` or the number of agents:

1. node embedding      e_ij = f_emb^k([x_i, z_ij])             (2-layer MLP, ReLU)
2. inter-agent attn.   α_ij = softmax_{j ∈ g, visible}(f_att^k([s_i, e_ij]))
                       h_i^g = Σ_j α_ij e_ij                     ([HAMA] inter-agent attention)
3. inter-group attn.   β_ig = softmax_{g non-empty}(f_gatt([s_i, h_i^g]))
                       h_i   = Σ_g β_ig h_i^g                    ([HAMA] multi-graph attention)

with ``s_i = f_self(x_i)`` the agent's own embedding; the output is ``[s_i, h_i]`` (``2 d``).
The seed feeds ``h_i`` alone to the actor / critic; keeping ``s_i`` beside it (as MAAC's
critic does with its own encoding) means an agent never loses its own state when attention
looks elsewhere.  Every function is a two-layer MLP with ``hidden`` units and ReLU ([HAMA]
supplementary "Hyperparameters": 256 units).  Attention is plain single-head (as the seed).

Shapes: ``M`` rows (agents folded into the batch), ``E`` entity slots, ``G`` groups, ``d`` the
embedding width.  Masked slots get exactly zero weight; a group with no visible member gets
zero inter-group weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: logit given to masked entries before a softmax (exp underflows to exactly 0 in float32)
_MASKED = -1e9


def two_layer(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """``Linear(in, hidden) → ReLU → Linear(hidden, hidden) → ReLU → Linear(hidden, out)``:
    the seed's "two-layered MLP with 256 units and a ReLU"."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, out_dim),
    )


def masked_softmax(logits: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Softmax of ``logits`` over ``dim`` restricted to ``mask`` (True = allowed).

    Masked entries get exactly 0; a slice with no allowed entry gets all zeros (not NaN), and
    gradients stay finite.
    """
    w = torch.softmax(logits.masked_fill(~mask, _MASKED), dim=dim)
    return w * mask.to(w.dtype)


@dataclass(frozen=True)
class EntityView:
    """What each agent sees, as entity slots (``B`` envs × ``N`` agents × ``E`` slots).

    Attributes:
        own: ``[B, N, d_own]`` the agent's own features ``x_i``.
        entities: ``[B, N, E, d_ent]`` features ``z_ij`` of the entity in slot j, as agent i
            observes it.
        kind: ``[E]`` long, which embedding / attention function reads slot j (``0 … kinds-1``).
        group: ``[B, N, E]`` long, the aggregation group of slot j (``0 … G-1``).
        mask: ``[B, N, E]`` bool, slot j is visible to agent i (False = padding / out of view).
        agent: ``[B, N, E]`` long, the acting agent in slot j (0 … N-1) or -1 (a non-acting
            entity or padding): where a critic inserts that agent's action.
        n_groups: ``G``.
    """

    own: Tensor
    entities: Tensor
    kind: Tensor
    group: Tensor
    mask: Tensor
    agent: Tensor
    n_groups: int


@dataclass(frozen=True)
class Attention:
    """Attention weights of one HGAT forward pass.

    Attributes:
        inter_agent: ``[M, G, E]`` α: for each group, a distribution over the visible slots of
            that group (zeros for a group with no visible slot).
        inter_group: ``[M, G]`` β: a distribution over the non-empty groups.
    """

    inter_agent: Tensor
    inter_group: Tensor


class HGAT(nn.Module):
    """Hierarchical graph attention encoder ([HAMA]; equations in the module docstring).

    Args:
        own_dim: features of ``EntityView.own``.
        ent_dim: features per entity slot.
        kinds: number of entity kinds (one embedding and one inter-agent attention function
            each).
        hidden: MLP width (and the embedding width ``d``).

    ``forward(own [M, d_own], ent [M, E, d_ent], kind [E], group [M, E], mask [M, E], G)`` →
    ``([M, 2 d], Attention)``.
    """

    def __init__(self, own_dim: int, ent_dim: int, kinds: int, hidden: int) -> None:
        super().__init__()
        self.out_dim = 2 * hidden
        self.kinds = kinds
        self.f_self = two_layer(own_dim, hidden, hidden)
        self.f_emb = nn.ModuleList(
            two_layer(own_dim + ent_dim, hidden, hidden) for _ in range(kinds)
        )
        self.f_att = nn.ModuleList(two_layer(2 * hidden, hidden, 1) for _ in range(kinds))
        self.f_gatt = two_layer(2 * hidden, hidden, 1)

    def forward(
        self,
        own: Tensor,
        ent: Tensor,
        kind: Tensor,
        group: Tensor,
        mask: Tensor,
        n_groups: int,
    ) -> tuple[Tensor, Attention]:
        """The embedding ``[s_i, h_i]`` ``[M, 2 d]`` and the attention weights.

        Every slot j of row i is one (agent, seen entity) pair, so the cost is ``M·E`` passes
        through ``f_emb`` and ``f_att``.  What depends on the row alone (``x_i``, ``s_i``)
        enters each first layer once per row, not once per pair (:func:`pair_mlp`); slots of
        one kind are read as contiguous runs (no gather), and the per-group aggregation is one
        masked batched matmul.  ``tests/controllers/test_hgat_fast.py`` checks the result
        against a per-agent, per-slot loop over the equations.
        """
        return hgat_forward(ModuleMLPs(self), own, ent, kind, group, mask, n_groups)


class MLPs(Protocol):
    """How :func:`hgat_forward` applies HGAT's functions (one encoder's modules, or several
    encoders' weights stacked)."""

    def mlp(self, key: tuple[str, int], x: Tensor) -> Tensor:
        """The function ``key`` on ``x [..., in]``."""
        ...

    def pair(self, key: tuple[str, int], row: Tensor, pair: Tensor) -> Tensor:
        """The function ``key`` on ``[row_i, pair_ij]`` (:func:`pair_mlp`)."""
        ...


def hgat_forward(
    f: MLPs,
    own: Tensor,
    ent: Tensor,
    kind: Tensor,
    group: Tensor,
    mask: Tensor,
    n_groups: int,
) -> tuple[Tensor, Attention]:
    """HGAT's equations (module docstring) over any leading dimensions ``...`` (``M`` rows, or
    ``[P, R]`` for P stacked encoders): ``own [..., d_own]``, ``ent [..., E, d_ent]``,
    ``group``/``mask [..., E]`` → ``([..., 2 d], Attention)``."""
    e = ent.shape[-2]
    s = F.relu(f.mlp(("f_self", 0), own))  # s_i = f_self(x_i)   [..., d]
    embs, logits = [], []
    for k, start, stop in kind_runs(kind):
        z = ent if stop - start == e else ent[..., start:stop, :]
        e_k = F.relu(f.pair(("f_emb", k), own, z))  # e_ij = f_emb([x_i, z_ij])
        embs.append(e_k)
        # a_ij = f_att([s_i, e_ij]) (inter-agent attention logit)
        logits.append(f.pair(("f_att", k), s, e_k).squeeze(-1))
    emb = embs[0] if len(embs) == 1 else torch.cat(embs, -2)  # [..., E, d]
    logit = logits[0] if len(logits) == 1 else torch.cat(logits, -1)  # [..., E]
    # α_ij = softmax over the visible members j of each group g   [..., G, E]
    in_group = group.unsqueeze(-2) == torch.arange(n_groups, device=group.device).view(-1, 1)
    member = in_group & mask.unsqueeze(-2)
    alpha = masked_softmax(logit.unsqueeze(-2).expand(member.shape), member)
    h_g = torch.matmul(alpha, emb)  # h_i^g = Σ_j α_ij e_ij   [..., G, d]
    present = member.any(-1)  # [..., G]
    # β_ig = softmax over the non-empty groups of f_gatt([s_i, h_i^g])
    beta = masked_softmax(f.pair(("f_gatt", 0), s, h_g).squeeze(-1), present)
    h = torch.matmul(beta.unsqueeze(-2), h_g).squeeze(-2)  # h_i = Σ_g β_ig h_i^g
    return torch.cat([s, h], -1), Attention(alpha, beta)


class ModuleMLPs:
    """One :class:`HGAT`'s own modules."""

    def __init__(self, net: HGAT) -> None:
        self.net = net

    def _get(self, key: tuple[str, int]) -> nn.Sequential:
        name, k = key
        mod = getattr(self.net, name)
        return mod[k] if isinstance(mod, nn.ModuleList) else mod

    def mlp(self, key: tuple[str, int], x: Tensor) -> Tensor:
        return self._get(key)(x)

    def pair(self, key: tuple[str, int], row: Tensor, pair: Tensor) -> Tensor:
        return pair_mlp(self._get(key), row, pair)


class StackedMLPs:
    """The same functions of ``P`` modules with equal shapes, their weights stacked, applied
    to ``[P, ...]`` inputs with one batched matmul per layer (module ``p`` on slice ``p``).

    Args:
        mlps: ``key -> [P two_layer MLPs]``; the key ``("head", 0)`` may name any MLP.
    """

    def __init__(self, mlps: dict[tuple[str, int], list[nn.Sequential]]) -> None:
        # per key: [(W^T [P, in, out], bias [P, 1, out])] per linear layer
        self.layers = {
            key: [
                (
                    torch.stack([m[i].weight.t() for m in mods]),
                    torch.stack([m[i].bias for m in mods]).unsqueeze(1),
                )
                for i in range(0, len(mods[0]), 2)
            ]
            for key, mods in mlps.items()
        }

    @staticmethod
    def _rest(layers: list[tuple[Tensor, Tensor]], h: Tensor) -> Tensor:
        """ReLU, then each further layer (``h [P, X, in]``)."""
        for w, b in layers:
            h = torch.baddbmm(b, h.relu_(), w)
        return h

    def mlp(self, key: tuple[str, int], x: Tensor) -> Tensor:
        (w, b), *rest = self.layers[key]
        p, lead = x.shape[0], x.shape[1:-1]
        h = torch.baddbmm(b, x.reshape(p, -1, x.shape[-1]), w)
        return self._rest(rest, h).reshape(p, *lead, -1)

    def pair(self, key: tuple[str, int], row: Tensor, pair: Tensor) -> Tensor:
        (w, b), *rest = self.layers[key]
        a = row.shape[-1]
        p, r, j = pair.shape[:3]
        h = torch.bmm(pair.reshape(p, r * j, -1), w[:, a:]).view(p, r, j, -1)
        h = h.add_(torch.baddbmm(b, row, w[:, :a]).unsqueeze(2))
        return self._rest(rest, h.view(p, r * j, -1)).view(p, r, j, -1)


def kind_runs(kind: Tensor) -> list[tuple[int, int, int]]:
    """``(kind, start, stop)`` for each run of equal kinds in ``kind [E]``, in slot order.

    A view lists its slots kind by kind (self and agents, then landmarks, ...), so this is one
    run per kind and each run is a slice of the slots rather than a gather.
    """
    ks = kind.tolist()
    runs: list[tuple[int, int, int]] = []
    start = 0
    for j in range(1, len(ks) + 1):
        if j == len(ks) or ks[j] != ks[start]:
            runs.append((int(ks[start]), start, j))
            start = j
    return runs


def pair_mlp(mlp: nn.Sequential, row: Tensor, pair: Tensor) -> Tensor:
    """``mlp(cat([row_i, pair_ij]))`` for every pair, ``row [M, a]``, ``pair [M, J, b]`` →
    ``[M, J, out]``, without building the concatenation.

    The first layer is linear, ``W [r; p] + c = (W_r r + c) + W_p p``: its row part is
    computed once per row and broadcast over the ``J`` pairs (the same weights, the same
    function; only the floating-point summation order differs).
    """
    first = mlp[0]
    a = row.shape[-1]
    w = first.weight
    h = F.linear(pair, w[:, a:]).add_(F.linear(row, w[:, :a], first.bias).unsqueeze(-2))
    for layer in mlp[1:]:
        # in place: h is a fresh intermediate, and ReLU's backward needs only its output
        h = h.relu_() if isinstance(layer, nn.ReLU) else layer(h)
    return h


class FlatEncoder(nn.Module):
    """The MADDPG ablation's encoder: the raw view in fixed slots, no graph, no attention.

    ``[x_i, z_i1 · m_i1, …, z_iE · m_iE, m_i1 … m_iE]`` → two-layer MLP (ReLU) → ``[M, 2 d]``
    (Lowe et al. 2017 feed the concatenated observations to an MLP).  Its input size grows
    with ``E``, so its weights fit one slot count only.

    Args:
        own_dim, ent_dim: as :class:`HGAT`.
        slots: ``E``, fixed at construction.
        hidden: MLP width ``d``.
    """

    def __init__(self, own_dim: int, ent_dim: int, slots: int, hidden: int) -> None:
        super().__init__()
        self.out_dim = 2 * hidden
        self.slots = slots
        self.net = two_layer(own_dim + slots * (ent_dim + 1), hidden, 2 * hidden)

    def forward(
        self,
        own: Tensor,
        ent: Tensor,
        kind: Tensor,
        group: Tensor,
        mask: Tensor,
        n_groups: int,
    ) -> tuple[Tensor, Attention | None]:
        """``[M, 2 d]`` features (no attention)."""
        m, e = ent.shape[:2]
        if e != self.slots:
            raise ValueError(f"MADDPG encoder built for {self.slots} view slots, got {e}")
        mf = mask.to(ent.dtype)
        x = torch.cat([own, (ent * mf.unsqueeze(-1)).reshape(m, -1), mf], -1)
        return F.relu(self.net(x)), None


def gumbel_softmax_st(
    logits: Tensor,
    mask: Tensor | None,
    tau: float,
    generator: torch.Generator | None,
    hard: bool = True,
) -> tuple[Tensor, Tensor]:
    """Gumbel-softmax sample with the straight-through estimator (Jang et al. 2017,
    "Categorical reparameterization with Gumbel-softmax", Eq. 1-2; Maddison et al. 2017).

    ``y = softmax((logits + g) / τ)`` with ``g = −log(−log U)``; the returned one-hot is
    ``onehot(argmax y) − sg(y) + y``: exactly one-hot in the forward pass, ``∂y/∂logits`` in
    the backward pass.  Masked choices (``mask`` False) are never drawn.  With
    ``generator=None`` no noise is added (the deterministic argmax, still differentiable).

    Args:
        logits: ``[..., K]``.
        mask: ``[..., K]`` bool (True = allowed) or None.
        tau: temperature τ > 0.
        generator: the noise's generator, or None for no noise.
        hard: return the straight-through one-hot (True) or the soft sample.

    Returns:
        ``(sample [..., K], index [...] long)``.
    """
    if mask is not None:
        logits = logits.masked_fill(~mask, _MASKED)
    if generator is not None:
        u = torch.rand(logits.shape, generator=generator, device=generator.device).to(logits)
        logits = logits - torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))
    y = torch.softmax(logits / tau, dim=-1)
    index = y.argmax(-1)
    if not hard:
        return y, index
    onehot = F.one_hot(index, y.shape[-1]).to(y.dtype)
    return onehot - y.detach() + y, index
