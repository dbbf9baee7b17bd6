"""LToS: learning to share rewards with neighbours, a decentralised bi-level hierarchy.

Paper (the seed): Yi, Li, Ma, Ye, Luo and Lu, "Learning to Share in Multi-Agent Reinforcement
Learning" (LToS; ``shared/seeds/004_*.txt``); sections, equations and tables cited below are
the seed's.  The low level is DGN (``controllers/dgn.py``), the high level DDPG (Lillicrap et al.
2016, arXiv:1509.02971).

* **Sharing weights** (§4.1): every agent ``i`` splits its env reward over itself and its graph
  neighbours, ``w_i^out = (w_ij)_{j ∈ N_i}`` with ``Σ_j w_ij = 1`` (softmax, Table 6 "last MLP
  layer activation").  Slot 0 of a neighbourhood is the agent itself
  (``common/neighbourhood.py``), so ``w_out[..., 0]`` is its *selfishness*.
* **Shaped reward** (§4.1 Eq. 3): ``r_i^w = Σ_{j ∈ N_i} w_ji r_j``, from the weights
  ``w_i^in = (w_ji)_j`` the neighbours chose (``Neighbourhood.incoming``).
* **High level** φ (shared parameters, §4.3): ``w_i^out = softmax(prior_i + f(o_i, o_{N_i}))``.
  ``f`` scores the self slot from the agent's encoded observation and each neighbour slot from
  the pair (own, neighbour's encoding), so one network serves any degree.  The *selfishness
  initializer* (§A.1): ``prior_i`` = log of (s₀ for self, (1 − s₀)/deg_i per neighbour) and the
  output layers start at zero, so every agent starts keeping ``s₀`` (Table 6: 0.9 routing,
  0.8 traffic) and sharing the rest evenly.  Acting at a slower time scale (§A.1 "Different
  time scales"): ``w`` is recomputed every ``action_interval`` steps and held in between.
  Exploration: an Ornstein-Uhlenbeck process on the logits with ``σ = ou_sigma · ε``
  (Table 6 "noise parameter" σ = 0.025 ε routing, 0.25 ε traffic; ε the low level's).
* **Low level** π (DGN on ``r_i^w``, §4.3): ``q_i(o, a; w_i^in)``; the Q head reads, besides
  DGN's features, ``w_ii`` and ``Σ_{j≠i} w_ji · E h⁰_j`` (the incoming weights applied to an
  embedding of each neighbour's encoding), size-free and differentiable in ``w_in``.  TD target
  (Alg. 1 lines 16-17): ``y_i = r_i^w + γ max_a' q'_i(o', a'; w_i^in')`` with ``w^in'`` from the
  target high level φ'(o').
* **High-level gradient** (Prop. 4.1, §4.3, Alg. 1 lines 19-22): the DGN Q-network is also the
  critic of DDPG, ``q_i^φ(o_i, w_i^out) = v_i^π(o_i; w_i^in) = max_a q_i(o_i, a; w_i^in)``.  The
  loss ``−mean_i max_a q_i(o, a; incoming(φ(o)))`` is differentiated through the low-level
  Q-network to ``w_in`` (``g_i^in``), and through ``incoming`` (a gather) back to the ``w_out``
  of the neighbours that chose those weights (``g_j^out = Σ_i ∂q_i/∂w_ji``); only φ steps
  (SGD, Table 6).  Every ``high_update_episodes`` finished episodes (Table 6 "update frequency").
* **Aligned replay** (§A.1 "unified pseudo random number generator"): one index set of rows
  per minibatch; a row holds every agent at the same step (``common/replay.py``).
* **Fixed LToS** (the ablation, §5): the weights stay at the initializer's (``fixed: true``,
  registered as ``ltos_fixed``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from gridmarl.controllers.common.neighbourhood import Neighbourhood
from gridmarl.controllers.common.qlearning import (
    QBatch,
    QConfig,
    QLearner,
    encoder,
    masked_max,
    soft_update,
)
from gridmarl.controllers.common.replay import Transitions
from gridmarl.controllers.dgn import DGNNet
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.errors import ScenarioError
from gridmarl.core.seeding import make_generator, sub_seed
from gridmarl.core.types import AgentSpec, Observation

CHECKPOINT_FORMAT = "gridmarl.ltos/1"
FIXED_CHECKPOINT_FORMAT = "gridmarl.ltos_fixed/1"


@dataclass
class LToSConfig(QConfig):
    """LToS's hyper-parameters: the low level's (``QConfig``, Table 5) and the high level's
    (Table 6, *routing* column; *traffic*: ``high_update_episodes 5, action_interval 15,
    high_sample_size 1000, high_batch_size 20, ou_sigma 0.25, initial_selfishness 0.8``).

    Attributes:
        high_lr: SGD learning rate of φ (Table 6).
        high_update_episodes: finished episodes between high-level updates (Table 6).
        action_interval: steps ``M`` a choice of weights is held (§A.1, Table 6) [steps].
        high_sample_size: rows drawn per high-level update (Table 6 "sample size").
        high_batch_size: rows per high-level SGD step (Table 6 "batch size").
        high_tau: soft update τ of the target φ' (Alg. 1 line 23; the seed's τ, Table 5).
        ou_sigma: OU noise scale as a multiple of the low level's ε (σ = ou_sigma · ε).
        ou_theta: OU mean-reversion rate per step [-] (DDPG's 0.15; the seed gives none).
        initial_selfishness: ``s₀`` of the selfishness initializer (§A.1, Table 6).
        fixed: keep the initial weights throughout (fixed LToS, the ablation).
    """

    high_lr: float = 1e-3
    high_update_episodes: int = 20
    action_interval: int = 30
    high_sample_size: int = 2_000
    high_batch_size: int = 32
    high_tau: float = 0.1
    ou_sigma: float = 0.025
    ou_theta: float = 0.15
    initial_selfishness: float = 0.9
    fixed: bool = False

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> LToSConfig:
        """As ``QConfig.from_options``; also checks ``0 < initial_selfishness ≤ 1``."""
        cfg = super().from_options(options)
        if not 0.0 < cfg.initial_selfishness <= 1.0:
            raise ScenarioError(
                f"train.options.initial_selfishness must be in (0, 1], got "
                f"{cfg.initial_selfishness}"
            )
        if cfg.high_batch_size > cfg.high_sample_size or cfg.action_interval < 1:
            raise ScenarioError(
                "train.options: high_batch_size must be ≤ high_sample_size and action_interval ≥ 1"
            )
        return cfg  # type: ignore[return-value]


@dataclass
class LToSFixedConfig(LToSConfig):
    """Fixed LToS: ``LToSConfig`` with ``fixed = True`` by default."""

    fixed: bool = True


def prior_logits(hood: Neighbourhood, selfishness: float) -> Tensor:
    """``[N, K+1]`` logits of the selfishness initializer (§A.1): softmax gives ``s₀`` to self
    and ``(1 − s₀) / deg_i`` to each real neighbour (1 to self without neighbours); −inf in
    padded slots."""
    deg = hood.degree.clamp_min(1).float()
    s = torch.full_like(deg, selfishness)
    s = torch.where(hood.degree > 0, s, torch.ones_like(s))
    own = torch.log(s).unsqueeze(1)
    share = torch.log(((1.0 - s) / deg).clamp_min(1e-12)).unsqueeze(1)
    logits = torch.cat([own, share.expand(-1, hood.slots - 1)], dim=1)
    return logits.masked_fill(~hood.mask, float("-inf"))


class SharingPolicy(nn.Module):
    """φ: the high-level deterministic policy (module docstring), shared by all agents."""

    def __init__(self, in_dim: int, cfg: LToSConfig) -> None:
        super().__init__()
        self.in_dim = in_dim  # further columns of ``x`` (pair features) are not φ's inputs
        self.encoder = encoder(in_dim, cfg.hidden, cfg.encoder_layers)
        self.own = nn.Linear(cfg.hidden, 1)
        self.pair = nn.Sequential(nn.Linear(2 * cfg.hidden, cfg.hidden), nn.ReLU())
        self.pair_out = nn.Linear(cfg.hidden, 1)
        for layer in (self.own, self.pair_out):  # selfishness initializer (§A.1)
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def logits(self, x: Tensor, hood: Neighbourhood, prior: Tensor) -> Tensor:
        """``x [M, N, F]`` -> ``[M, N, K+1]`` logits (−inf in padded slots)."""
        h = self.encoder(x[..., : self.in_dim])
        hn = hood.gather(h)[:, :, 1:]  # [M, N, K, d] neighbours' encodings
        pair = torch.cat([h.unsqueeze(2).expand_as(hn), hn], dim=-1)
        out = torch.cat([self.own(h), self.pair_out(self.pair(pair)).squeeze(-1)], dim=-1)
        return out + prior

    def forward(self, x: Tensor, hood: Neighbourhood, prior: Tensor) -> Tensor:
        """``w_out [M, N, K+1]``, a distribution over each agent's neighbourhood."""
        return torch.softmax(self.logits(x, hood, prior), dim=-1)


class LToSNet(DGNNet):
    """DGN with the incoming sharing weights as a further input of the Q head."""

    def __init__(self, in_dim: int, n_actions: int, cfg: QConfig, pair_dim: int = 0) -> None:
        super().__init__(in_dim, n_actions, cfg, extra_dim=1 + cfg.hidden, pair_dim=pair_dim)
        self.share = nn.Linear(cfg.hidden, cfg.hidden)

    def forward(self, x: Tensor, hood: Neighbourhood, extra: Tensor | None = None) -> Tensor:
        """``x [M, N, F]``, ``w_in = extra [M, N, K+1]`` -> ``q [M, N, A]``."""
        assert extra is not None
        z, h0 = self.features(x, hood)
        emb = self.share(hood.gather(h0)[:, :, 1:])  # [M, N, K, d]
        own = torch.cat([extra[..., :1], (extra[..., 1:].unsqueeze(-1) * emb).sum(2)], dim=-1)
        return self.q_head(z, own, hood, self.pairs(x))


class LToS(QLearner):
    """LToS (module docstring); ``fixed`` makes it the fixed-weights ablation."""

    name: ClassVar[str] = "ltos"
    config_class: ClassVar[type] = LToSConfig
    checkpoint_format: ClassVar[str] = CHECKPOINT_FORMAT
    what: ClassVar[str] = "LToS"

    def __init__(
        self,
        spec: AgentSpec,
        config: LToSConfig,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(spec, config, device, seed)
        cfg = self.cfg
        self.phi = SharingPolicy(self.in_dim, cfg).to(self.device)
        self.phi_target = SharingPolicy(self.in_dim, cfg).to(self.device)
        self.phi_target.load_state_dict(self.phi.state_dict())
        for p in self.phi_target.parameters():
            p.requires_grad_(False)
        self.high_optimizer = torch.optim.SGD(self.phi.parameters(), lr=cfg.high_lr)
        self.noise_gen = make_generator(sub_seed(self.seed, 3), self.device)
        self.prior = prior_logits(self.hood, cfg.initial_selfishness)
        self._held: Tensor | None = None  # [B, N, K+1] w_out held over the action interval
        self._ou: Tensor | None = None
        self._high_done_at = 0  # episodes count at the last high-level update
        self.high_updates = 0
        self.trace: list[Tensor] | None = None  # selfishness per step, when recording

    def reset(self, env: MultiAgentEnv) -> None:
        """Adopt ``env``'s graph and restart the held weights."""
        super().reset(env)
        self.prior = prior_logits(self.hood, self.cfg.initial_selfishness)
        self._held = None

    def build(self) -> nn.Module:
        """The low-level DGN with the ``w_in`` input."""
        return LToSNet(self.in_dim, self.actions.n_actions, self.cfg, self.pair_dim)

    def extra_shapes(self) -> dict[str, tuple[int, ...]]:
        """``w_in`` per agent, ``K + 1`` slots."""
        return {"w_in": (self.hood.slots,)}

    def q_values(self, net: nn.Module, x: Tensor, extra: dict[str, Tensor]) -> Tensor:
        """``q_i(o, a; w_i^in)`` ``[M, N, A]``."""
        return net(x, self.hood, extra["w_in"])

    # -- the high level ---------------------------------------------------------------------------
    def sharing_weights(self, x: Tensor, target: bool = False) -> Tensor:
        """``w_out [M, N, K+1]`` of φ (or φ') for normalised features ``x``."""
        if self.cfg.fixed:
            return torch.softmax(self.prior, -1).expand(x.shape[0], -1, -1)
        return (self.phi_target if target else self.phi)(x, self.hood, self.prior)

    def extras_for_step(self, obs: Observation, t: Tensor, explore: bool) -> dict[str, Tensor]:
        """``w_in`` of this step: φ's weights, recomputed every ``action_interval`` steps
        (§A.1) with OU noise on the logits while exploring, then exchanged (Eq. 3)."""
        b = obs.batch_shape[0]
        step = int(t[0]) if t.numel() else 0
        held = self._held
        if held is None or held.shape[0] != b or step % self.cfg.action_interval == 0:
            with torch.no_grad():
                x = self._x(obs)
                if self.cfg.fixed:
                    held = self.sharing_weights(x)
                else:
                    logits = self.phi.logits(x, self.hood, self.prior)
                    if explore:
                        logits = logits + self._ou_step(logits)
                    held = torch.softmax(logits, dim=-1)
            self._held = held
        if self.trace is not None:
            self.trace.append(held[..., 0].mean(0).cpu())
        return {"w_in": self.hood.incoming(held)}

    def _ou_step(self, like: Tensor) -> Tensor:
        """One step of the OU process ``dx = −θ x + σ dW`` on the logits (σ = ou_sigma · ε)."""
        if self._ou is None or self._ou.shape != like.shape:
            self._ou = torch.zeros_like(like)
        sigma = self.cfg.ou_sigma * self.epsilon
        dw = torch.randn(like.shape, generator=self.noise_gen, device=self.device)
        self._ou = self._ou - self.cfg.ou_theta * self._ou + sigma * dw
        return self._ou * self.hood.mask  # padded slots stay −inf

    # -- the low level's reward and target ---------------------------------------------------------
    def learning_reward(self, rows: Transitions) -> Tensor:
        """``r_i^w = Σ_j w_ji r_j`` (Eq. 3) from the stored ``w_in`` ``[M, N]``."""
        return shaped_reward(rows.reward, rows.extras["w_in"], self.hood)

    def next_extras(self, rows: Transitions, x_next: Tensor) -> dict[str, Tensor]:
        """``w^in'`` from the target φ'(o') (Alg. 1 line 16)."""
        return {"w_in": self.hood.incoming(self.sharing_weights(x_next, target=True))}

    def high_loss(self, x: Tensor, mask: Tensor) -> Tensor:
        """``−mean_i max_a q_i(o, a; incoming(φ(o)))`` (Prop. 4.1, Alg. 1 lines 19-22): its
        gradient in φ's parameters is ``Σ_i (∇_θ φ_i)ᵀ g_i^out``."""
        w_in = self.hood.incoming(self.phi(x, self.hood, self.prior))
        q = self.q_values(self.qnet, x, {"w_in": w_in})
        return -masked_max(q, mask)[0].mean()

    def after_update(self, batch: QBatch) -> dict[str, float]:
        """The high-level update, every ``high_update_episodes`` finished episodes."""
        cfg = self.cfg
        due = self.episodes - self._high_done_at >= cfg.high_update_episodes
        if cfg.fixed or not due or self.replay is None or len(self.replay) < cfg.learning_starts:
            return {}
        self._high_done_at = self.episodes
        rows = self.replay.sample(cfg.high_sample_size, self.replay_gen)  # one index set
        x = self._x(rows.obs)
        mask = self.actions.mask(rows.obs).to(self.device)
        losses = []
        for lo in range(0, cfg.high_sample_size, cfg.high_batch_size):
            part = slice(lo, lo + cfg.high_batch_size)
            loss = self.high_loss(x[part], mask[part])
            self.high_optimizer.zero_grad(set_to_none=True)
            self.qnet.zero_grad(set_to_none=True)
            loss.backward()
            self.high_optimizer.step()
            losses.append(float(loss.detach()))
        self.qnet.zero_grad(set_to_none=True)  # the low level is not moved by this loss
        soft_update(self.phi_target, self.phi, cfg.high_tau)
        self.high_updates += 1
        with torch.no_grad():
            w = self.phi(x, self.hood, self.prior)
        return {
            "high/loss": sum(losses) / len(losses),
            "high/selfishness": float(w[..., 0].mean()),
            "high/updates": float(self.high_updates),
        }

    # -- interpretability -------------------------------------------------------------------------
    @torch.no_grad()
    def selfishness(self, env: MultiAgentEnv, seed: int) -> np.ndarray:
        """``[T, N]`` selfishness ``w_ii`` (the weight each agent keeps, §5 Figs. 5-6) over one
        greedy episode of ``env`` (mean over its ``B`` envs)."""
        self.reset(env)
        self.trace = []
        try:
            obs = env.reset(seed=seed)
            for _ in range(env.episode_len):
                step = env.step(self.act(obs, deterministic=True))
                obs = step.obs
                if bool(step.done.all()):
                    break
            return torch.stack(self.trace).numpy()
        finally:
            self.trace = None

    def write_outputs(
        self, env_factory: Callable[[int], MultiAgentEnv], folder: Path, seed: int
    ) -> list[Path]:
        """Selfishness over one greedy episode of a one-env ``env_factory(1)`` with ``seed``,
        as CSV and figures in ``folder`` (``common/selfishness.py``; seed Figs. 5-6)."""
        from gridmarl.controllers.common.selfishness import write_selfishness

        env = env_factory(1)
        try:
            trace = self.selfishness(env, seed)
            names, nb = env.spec.agent_names, env.spec.neighbors.cpu().numpy()
        finally:
            env.close()
        return write_selfishness(trace, names, nb, folder)

    # -- checkpoints ------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """The high level: φ, φ', its optimiser, the noise generator and its counters."""
        return {
            "phi": self.phi.state_dict(),
            "phi_target": self.phi_target.state_dict(),
            "high_optimizer": self.high_optimizer.state_dict(),
            "noise": self.noise_gen.get_state(),
            "high_done_at": self._high_done_at,
            "high_updates": self.high_updates,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state`."""
        self.phi.load_state_dict(state["phi"])
        self.phi_target.load_state_dict(state["phi_target"])
        self.high_optimizer.load_state_dict(state["high_optimizer"])
        self.noise_gen.set_state(state["noise"].cpu())
        self._high_done_at = int(state["high_done_at"])
        self.high_updates = int(state["high_updates"])


class LToSFixed(LToS):
    """Fixed LToS, the ablation: sharing weights held at the selfishness initializer's."""

    name: ClassVar[str] = "ltos_fixed"
    config_class: ClassVar[type] = LToSFixedConfig
    checkpoint_format: ClassVar[str] = FIXED_CHECKPOINT_FORMAT
    what: ClassVar[str] = "fixed LToS"


def shaped_reward(reward: Tensor, w_in: Tensor, hood: Neighbourhood) -> Tensor:
    """``r_i^w = Σ_{j ∈ N_i} w_ji r_j`` (seed Eq. 3).

    Args:
        reward: ``[M, N]`` env rewards ``r_j``.
        w_in: ``[M, N, K+1]`` incoming weights (0 in padded slots).
        hood: the graph.
    """
    return (hood.gather(reward.unsqueeze(-1)).squeeze(-1) * w_in).sum(-1)
