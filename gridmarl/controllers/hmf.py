"""HMF: hierarchical mean-field Q-learning, with IPC dynamic grouping.

Paper: Chao Yu, "Hierarchical Mean-Field Deep Reinforcement Learning for Large-Scale
Multiagent Systems", AAAI 2023 (``shared/seeds/003_*``); equation numbers below are the
paper's.  The rest of the learner (ε-greedy collection into the replay buffer, soft target
updates, checkpoints) is ``controllers/common/value_learner.py``.

Networks (one set of weights; ``A`` = actions of ``DiscretizedAction``, ``G`` = groups):

* ``Q_LOC(o_k, ·)``: ``f_k [obs_dim] → MLP (ReLU) → [A]``, shared by every agent (the seed's
  Algorithm 1 gives each agent its own θ_k; one shared network keeps the learner size-free,
  as MATPPO's actor).  Execution: each agent acts (ε-)greedily on its own ``Q_LOC`` only
  (Algorithm 1, line 4).
* attention weights λ within each group (the seed: "computed using the attention mechanism
  (Vaswani et al. 2017)"): scaled dot product of a key per member ``W_K x_k`` with a query of
  the group's centroid ``W_Q x̄^(i)``, soft-maxed over the group's members, so λ is a
  distribution over each group (Eq. 7: λ_k ∈ [0, 1], Σ λ_k = 1).
* ``x_k = (o_k, a_k) = concat(f_k, onehot(a_k))``; the group mean field
  ``μ(x^(i)) = Σ_{k∈i} λ_k x_k`` (Eq. 9).
* ``Q_GMF^(i)(μ)``: one MLP per group (φ^(i), Algorithm 1 line 1), batched over groups.

Losses (a minibatch of joint transitions; ``r^(i)`` = sum of the group's rewards, ``r`` = sum
of all rewards; the next actions ``a'`` are greedy on the target ``Q̂_LOC``, Algorithm 1 line 9):

* bottom level, Eq. 11–12: ``Q_GRP^(i) = Σ_{k∈i} λ_k Q_LOC(x_k) + 2 Q_GMF^(i)(μ^(i))``,
  ``y^(i) = r^(i) + γ (Σ_{k∈i} λ'_k Q̂_LOC(x'_k) + 2 Q̂_GMF^(i)(μ'^(i)))``, loss
  ``Σ_i (Q_GRP^(i) − y^(i))²``;
* top level, Eq. 13–14: ``Q_TOT = Σ_i Q_GMF^(i)(μ^(i))``,
  ``y = r + γ Σ_i Q̂_GMF^(i)(μ'^(i))``, loss ``(Q_TOT − y)²``;
* the error-reduction regulariser ("Error Reduction in the MF Approximation"):
  ``α Σ_k ‖x_k − μ^(g(k))‖²``, here averaged over the agents (``reg_coef`` = α per agent, so
  one value serves every N);
* IPC (``grouping = "ipc"``): the KL term of Eq. 18, ``D_KL(π_k ‖ π̄^(i))`` with ``π_k =
  softmax(Q_LOC(o_k, ·) / T)`` and the group mean policy ``π̄^(i)`` = the mean over the group's
  members of the target network's policy (the target is the slowly moving average of past
  parameters: the group's "average historical policy"), weighted by ``kl_coef``.

The TD targets bootstrap except at ``terminated`` (a time limit is not terminal).

Groups: ``grouping = "spec"`` takes ``AgentSpec.groups`` (the domain's prior knowledge,
``core/graph.py``; a scenario's ``graph.groups`` overrides it); ``"ipc"`` regroups every
episode with the seed's K-means-like procedure (:func:`ipc_groups`, Eq. 17) into ``n_groups``
groups, deterministically for the learner's seed.  The group of each agent is stored with every
replay row, so a minibatch is scored with the groups it was collected under.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from gridmarl.controllers.common.replay import Transitions
from gridmarl.controllers.common.value_learner import (
    ValueConfig,
    ValueLearner,
    masked_argmax,
)
from gridmarl.core.errors import ScenarioError
from gridmarl.core.seeding import make_generator
from gridmarl.core.types import AgentSpec, Observation

CHECKPOINT_FORMAT = "gridmarl.hmf/1"


@dataclass
class HMFConfig(ValueConfig):
    """HMF hyper-parameters (besides ``ValueConfig``'s).

    Attributes:
        grouping: ``spec`` (the env's groups) or ``ipc`` (IPC dynamic grouping every episode).
        n_groups: groups G; 0 = as many as the env's spec has (``spec``); required ≥ 1 for
            ``ipc``.  A checkpoint records the resolved value.
        attn_dim: width of the attention keys and queries.
        reg_coef: α of the error-reduction regulariser, per agent [-].
        kl_coef: weight of the IPC KL term (Eq. 18) [-]; used with ``ipc`` only.
        kl_temperature: T of the Boltzmann policy softmax(Q / T) of the KL term.
        ipc_iters: K-means reassignment rounds of the IPC grouping.
        mf_action: the action part of ``x_k`` in the mean field μ at time t: ``taken`` (the
            transition's action, the seed's ``x_k = (o_k, a_k)`` read literally) or
            ``greedy`` (the current Q_LOC's greedy action, as the target's ``a'`` at t + 1,
            Algorithm 1 line 9).  With ``taken``, Q_GMF(μ) can explain every reward that
            depends on the group's action counts and Q_LOC, the only part that acts, is left
            no credit (it fails the two-group game of ``tests/controllers/test_hmf.py``);
            ``greedy`` makes Q_GMF value the group's policy and leaves the credit for the
            taken action to Q_LOC.
    """

    grouping: Literal["spec", "ipc"] = "spec"
    n_groups: int = 0
    attn_dim: int = 32
    reg_coef: float = 0.01
    kl_coef: float = 0.1
    kl_temperature: float = 1.0
    ipc_iters: int = 5
    mf_action: Literal["taken", "greedy"] = "greedy"

    def check(self) -> None:
        super().check()
        if self.grouping not in ("spec", "ipc"):
            raise ValueError(f"grouping must be 'spec' or 'ipc', got {self.grouping!r}")
        if self.mf_action not in ("taken", "greedy"):
            raise ValueError(f"mf_action must be 'taken' or 'greedy', got {self.mf_action!r}")
        if self.grouping == "ipc" and self.n_groups < 1:
            raise ValueError("grouping 'ipc' needs n_groups >= 1")
        if self.n_groups < 0 or self.ipc_iters < 0 or self.kl_temperature <= 0:
            raise ValueError("n_groups, ipc_iters >= 0 and kl_temperature > 0 are required")


class GroupMLP(nn.Module):
    """One two-hidden-layer MLP per group, evaluated for all groups at once.

    ``forward(x [M, G, d_in]) -> [M, G]``: group ``i``'s network applied to ``x[:, i]``.
    """

    def __init__(self, groups: int, d_in: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(groups, d_in, hidden))
        self.b1 = nn.Parameter(torch.zeros(groups, hidden))
        self.w2 = nn.Parameter(torch.empty(groups, hidden, hidden))
        self.b2 = nn.Parameter(torch.zeros(groups, hidden))
        self.w3 = nn.Parameter(torch.empty(groups, hidden, 1))
        self.b3 = nn.Parameter(torch.zeros(groups, 1))
        for w in (self.w1, self.w2, self.w3):
            for g in range(groups):
                nn.init.kaiming_uniform_(w.data[g].T, a=math.sqrt(5))

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(torch.einsum("mgd,gdh->mgh", x, self.w1) + self.b1)
        h = torch.relu(torch.einsum("mgh,ghk->mgk", h, self.w2) + self.b2)
        return (torch.einsum("mgh,ghk->mgk", h, self.w3) + self.b3).squeeze(-1)


class GroupAttention(nn.Module):
    """λ within each group: softmax over the group's members of ``(W_K x_k)·(W_Q x̄^(i))/√d``."""

    def __init__(self, d_x: int, d_attn: int) -> None:
        super().__init__()
        self.key = nn.Linear(d_x, d_attn)
        self.query = nn.Linear(d_x, d_attn)
        self.scale = 1.0 / math.sqrt(d_attn)

    def forward(self, x: Tensor, groups: Tensor, n_groups: int) -> Tensor:
        """``x [M, N, d_x]``, ``groups [M, N]`` -> λ ``[M, N]`` (sums to 1 over each group)."""
        centroid, _ = group_mean(x, groups, n_groups)
        q = self.query(centroid)  # [M, G, d]
        q_k = q.gather(1, groups.unsqueeze(-1).expand(-1, -1, q.shape[-1]))  # [M, N, d]
        logits = (self.key(x) * q_k).sum(-1) * self.scale
        return group_softmax(logits, groups, n_groups)


def group_mean(x: Tensor, groups: Tensor, n_groups: int) -> tuple[Tensor, Tensor]:
    """Unweighted mean of ``x [M, N, d]`` over each group ``[M, G, d]`` and the member counts
    ``[M, G]`` (an empty group's mean is 0)."""
    m, _, d = x.shape
    idx = groups.unsqueeze(-1).expand(-1, -1, d)
    sums = x.new_zeros(m, n_groups, d).scatter_add(1, idx, x)
    count = x.new_zeros(m, n_groups).scatter_add(1, groups, torch.ones_like(groups, dtype=x.dtype))
    return sums / count.clamp(min=1).unsqueeze(-1), count


def group_softmax(logits: Tensor, groups: Tensor, n_groups: int) -> Tensor:
    """Softmax of ``logits [M, N]`` within each group ``groups [M, N]`` -> ``[M, N]``."""
    m = logits.shape[0]
    top = logits.new_full((m, n_groups), float("-inf"))
    top = top.scatter_reduce(1, groups, logits.detach(), reduce="amax", include_self=True)
    e = (logits - top.gather(1, groups)).exp()
    total = logits.new_zeros(m, n_groups).scatter_add(1, groups, e)
    return e / total.gather(1, groups)


def group_max(values: Tensor, groups: Tensor, n_groups: int) -> Tensor:
    """Largest of ``values [M, N]`` in each non-empty group -> ``[K]`` (K non-empty groups)."""
    top = values.new_full((values.shape[0], n_groups), float("-inf"))
    top = top.scatter_reduce(1, groups, values, reduce="amax", include_self=True)
    return top[torch.isfinite(top)]


def group_sum(values: Tensor, groups: Tensor, n_groups: int) -> Tensor:
    """Sum of ``values [M, N]`` over each group -> ``[M, G]``."""
    return values.new_zeros(values.shape[0], n_groups).scatter_add(1, groups, values)


def mean_field(x: Tensor, lam: Tensor, groups: Tensor, n_groups: int) -> Tensor:
    """``μ(x^(i)) = Σ_{k∈i} λ_k x_k`` (Eq. 9) ``[M, G, d_x]``."""
    d = x.shape[-1]
    idx = groups.unsqueeze(-1).expand(-1, -1, d)
    return x.new_zeros(x.shape[0], n_groups, d).scatter_add(1, idx, lam.unsqueeze(-1) * x)


def ipc_groups(
    x: Tensor, n_groups: int, iters: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """IPC's K-means-like grouping (seed, "The Dynamic Grouping Mechanism", Eq. 17).

    A random agent is the first central node; each further central node is the agent with
    the largest distance ``D_k = min_r ‖x_k − μ_r‖²`` to the nodes so far.  Then ``iters``
    rounds: assign every agent to the group with the nearest centre ``d(k, i) = ‖x_k −
    x̄^(i)‖²`` and move each centre to its members' mean (Eq. 17; an emptied group keeps its
    centre).  The result puts every agent in the group of its nearest returned centre.

    Args:
        x: ``[B, N, d]`` each agent's observation–action features.
        n_groups: G.
        iters: reassignment rounds.
        generator: draws the first central node (on the CPU): same state, same groups.

    Returns:
        ``groups [B, N]`` long in 0 … G−1 and ``centres [B, G, d]``.
    """
    b, n, _ = x.shape
    first = torch.randint(0, n, (b,), generator=generator).to(x.device)
    rows = torch.arange(b, device=x.device)
    centres = [x[rows, first]]
    dist = (x - centres[0].unsqueeze(1)).pow(2).sum(-1)  # [B, N]
    for _ in range(1, n_groups):
        far = dist.argmax(-1)  # the agent farthest from every centre so far
        centres.append(x[rows, far])
        dist = torch.minimum(dist, (x - centres[-1].unsqueeze(1)).pow(2).sum(-1))
    c = torch.stack(centres, 1)  # [B, G, d]
    for _ in range(iters):
        groups = torch.cdist(x, c).argmin(-1)
        mean, count = group_mean(x, groups, n_groups)
        c = torch.where((count > 0).unsqueeze(-1), mean, c)
    return torch.cdist(x, c).argmin(-1), c


def kl_to_group_mean(
    logits: Tensor, mean_logits: Tensor, mask: Tensor, groups: Tensor, n_groups: int
) -> Tensor:
    """``D_KL(π_k ‖ π̄^(i))`` (Eq. 18) per agent ``[M, N]``.

    Args:
        logits: ``[M, N, A]`` of the agents' policies π_k = softmax(logits).
        mean_logits: ``[M, N, A]`` logits whose softmax, averaged over each group's members,
            is the group mean policy π̄^(i).
        mask: ``[M, N, A]`` allowed actions (probability 0 elsewhere).
        groups: ``[M, N]``.
    """
    neg = float("-inf")
    # masked actions have probability 0: their log-probabilities are set to 0 (not −inf) so
    # that 0 · log 0 and its gradient stay finite
    logp = torch.log_softmax(logits.masked_fill(~mask, neg), -1).masked_fill(~mask, 0.0)
    p_mean = torch.softmax(mean_logits.masked_fill(~mask, neg), -1)
    m, n, a = p_mean.shape
    idx = groups.unsqueeze(-1).expand(-1, -1, a)
    bar = p_mean.new_zeros(m, n_groups, a).scatter_add(1, idx, p_mean)
    bar = bar / bar.sum(-1, keepdim=True).clamp(min=1e-12)
    log_bar = bar.gather(1, idx).clamp(min=1e-12).log()
    p = logp.exp() * mask
    return (p * (logp - log_bar.masked_fill(~mask, 0.0))).sum(-1)


class HMF(ValueLearner):
    """Hierarchical mean-field Q-learning (module docstring).

    Args:
        spec: the env's agent spec.
        config: :class:`HMFConfig`.
        device: where the networks and the replay buffer live.
        seed: seeds the weights, the exploration, the minibatches and the IPC grouping.
    """

    name: ClassVar[str] = "hmf"
    label: ClassVar[str] = "HMF"
    checkpoint_format: ClassVar[str] = CHECKPOINT_FORMAT
    config_class: ClassVar[type] = HMFConfig

    def __init__(
        self,
        spec: AgentSpec,
        config: HMFConfig | None = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        cfg = config or HMFConfig()
        if cfg.n_groups == 0:  # resolve "as many as the spec" once; checkpoints record it
            cfg = replace(cfg, n_groups=int(spec.groups.max()) + 1 if spec.n_agents else 1)
        super().__init__(spec, cfg, device, seed)
        self.ipc_gen = make_generator(self.seed + 3, "cpu")
        self._groups: Tensor | None = None  # [B, N] of the episodes in flight

    @property
    def n_groups(self) -> int:
        """G."""
        return int(self.cfg.n_groups)

    def build(self) -> dict[str, nn.Module]:
        h, a = self.cfg.hidden, self.n_actions
        d_x = self.obs_dim + a
        return {
            "actor": nn.Sequential(
                nn.Linear(self.obs_dim, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, a)
            ),
            "attention": GroupAttention(d_x, self.cfg.attn_dim),
            "gmf": GroupMLP(self.n_groups, d_x, h),
        }

    # -- acting and grouping ----------------------------------------------------------------
    def q_values(self, obs: Observation) -> Tensor:
        """Q_LOC(o_k, ·) ``[B, N, A]``: execution needs nothing else (Algorithm 1, line 4)."""
        return self.nets["actor"](self.features(obs))

    def pair(self, f: Tensor, a: Tensor) -> Tensor:
        """``x_k = (o_k, a_k)`` = ``concat(f_k, onehot(a_k))`` ``[..., obs_dim + A]``."""
        return torch.cat([f, nn.functional.one_hot(a, self.n_actions).to(f.dtype)], -1)

    def spec_groups(self, b: int, n: int) -> Tensor:
        """The env's groups ``[B, N]``, checked against G."""
        g = self.spec.groups.to(self.device)
        if g.shape[0] != n or int(g.max()) >= self.n_groups:
            raise ScenarioError(
                f"HMF with {self.n_groups} groups cannot use this env's {int(g.max()) + 1} "
                f"groups of {n} agents; set train.options.n_groups or grouping: ipc"
            )
        return g.unsqueeze(0).expand(b, -1)

    @torch.no_grad()
    def on_episode_start(self, obs: Observation, mask: Tensor) -> None:
        """The groups of the new episodes: the spec's, or IPC's regrouping of the agents'
        (observation, greedy action) pairs."""
        b, n = obs.batch_shape
        if self._groups is None or self._groups.shape != (b, n):
            self._groups = torch.zeros(b, n, dtype=torch.long, device=self.device)
        if self.cfg.grouping == "spec":
            self._groups[mask] = self.spec_groups(b, n)[mask]
            return
        f = self.features(obs)
        x = self.pair(f, masked_argmax(self.q_values(obs), self.actions.mask(obs)))
        groups, _ = ipc_groups(x[mask], self.n_groups, self.cfg.ipc_iters, self.ipc_gen)
        self._groups[mask] = groups

    def replay_extras(self) -> dict[str, tuple[int, ...]]:
        return {"group": ()}

    def extras_for(self, obs: Observation) -> dict[str, Tensor]:
        assert self._groups is not None
        return {"group": self._groups.to(torch.float32)}

    # -- the losses -------------------------------------------------------------------------
    def group_values(
        self, nets: nn.ModuleDict, f: Tensor, a: Tensor, groups: Tensor, a_mf: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """For features ``f [M, N, obs_dim]``, actions ``a [M, N]`` (Q_LOC's) and ``a_mf``
        (the mean field's): Q_LOC ``[M, N, A]``, ``x`` ``[M, N, d_x]``, λ ``[M, N]``, μ
        ``[M, G, d_x]``, ``Σ_{k∈i} λ_k Q_LOC(o_k, a_k)`` ``[M, G]`` and
        ``Q_GMF^(i)(μ^(i))`` ``[M, G]``."""
        g = self.n_groups
        q_all = nets["actor"](f)
        x = self.pair(f, a_mf)
        lam = nets["attention"](x, groups, g)
        mu = mean_field(x, lam, groups, g)  # Eq. 9
        q_taken = q_all.gather(-1, a.unsqueeze(-1)).squeeze(-1)
        loc = group_sum(lam * q_taken, groups, g)
        return q_all, x, lam, mu, loc, nets["gmf"](mu)

    def loss(self, tr: Transitions, a: Tensor, a_next_mask: Tensor) -> tuple[Tensor, dict]:
        cfg, g = self.cfg, self.n_groups
        groups = tr.extras["group"].long()
        f, f_next = self.features(tr.obs), self.features(tr.next_obs)
        r = tr.reward * cfg.reward_scale
        cont = (~tr.terminated).to(r.dtype).unsqueeze(-1)  # [M, 1]: bootstrap unless terminal
        _, count = group_mean(f[..., :1], groups, g)
        present = (count > 0).to(r.dtype)  # [M, G]: empty groups take no part
        with torch.no_grad():
            a_mf = a
            if cfg.mf_action == "greedy":
                a_mf = masked_argmax(self.nets["actor"](f), self.actions.mask(tr.obs))
            a_next = masked_argmax(self.target["actor"](f_next), a_next_mask)  # Alg. 1, line 9
            nxt = self.group_values(self.target, f_next, a_next, groups, a_next)
            loc_n, gmf_n = nxt[4], nxt[5]
        q_all, x, lam, mu, loc, gmf = self.group_values(self.nets, f, a, groups, a_mf)
        with torch.no_grad():
            # Eq. 12: y^(i) = r^(i) + γ [Σ λ'_k Q̂_LOC(x'_k) + 2 Q̂_GMF^(i)(μ')]
            y_grp = group_sum(r, groups, g) + cfg.gamma * cont * (loc_n + 2.0 * gmf_n)
            # Eq. 14: y = r + γ Σ_i Q̂_GMF^(i)(μ'^(i))
            y_tot = r.sum(-1) + cfg.gamma * cont.squeeze(-1) * (gmf_n * present).sum(-1)
        q_grp = loc + 2.0 * gmf  # Eq. 11
        l_grp = ((q_grp - y_grp).pow(2) * present).sum(-1).mean()  # Eq. 12, summed over i
        q_tot = (gmf * present).sum(-1)  # Eq. 13
        l_tot = (q_tot - y_tot).pow(2).mean()  # Eq. 14
        # error reduction: α ‖x_k − μ(x)‖² keeps the members near their mean field
        centre = mu.gather(1, groups.unsqueeze(-1).expand(-1, -1, mu.shape[-1]))
        reg = (x - centre).pow(2).sum(-1).mean()
        loss = l_grp + l_tot + cfg.reg_coef * reg
        stats: dict[str, Any] = {
            "loss/group": l_grp.detach(),
            "loss/top": l_tot.detach(),
            "loss/mf_reg": reg.detach(),
            "q/loc_mean": q_all.detach().mean(),
            # 1 / n_i for uniform weights, 1 when the attention picks one member
            "attn/max_lambda": group_max(lam.detach(), groups, g).mean(),
        }
        if cfg.grouping == "ipc":
            mask = self.actions.mask(tr.obs)
            with torch.no_grad():
                hist = self.target["actor"](f)  # the group's historical policy (target)
            t = cfg.kl_temperature
            kl = kl_to_group_mean(q_all / t, hist / t, mask, groups, g).mean()  # Eq. 18
            loss = loss + cfg.kl_coef * kl
            stats["loss/ipc_kl"] = kl.detach()
        return loss, stats

    def extra_state(self) -> dict[str, Any]:
        return {"n_groups": self.n_groups, "ipc_rng": self.ipc_gen.get_state()}

    def load(self, path: Any, scenario_hash: str | None = None) -> None:
        super().load(path, scenario_hash)
        from gridmarl.controllers.common.checkpoint import read_checkpoint

        extra = read_checkpoint(path, self.checkpoint_format, self.label).get("extra", {})
        if "ipc_rng" in extra:
            self.ipc_gen.set_state(extra["ipc_rng"].cpu())
