"""MATPPO: multi-agent PPO with a shared LSTM actor and a Transformer critic.

(One file over ~600 lines on purpose: the networks, the PPO update and the ``Learner``
methods cite the same equations and share the configuration; the parts any learner can reuse
already live in ``controllers/common``.)

Papers (equation numbers are cited where the code implements them):

* [PPO]  Schulman et al. 2017, "Proximal Policy Optimization Algorithms", arXiv:1707.06347.
* [GAE]  Schulman et al. 2016, "High-dimensional continuous control using generalized advantage
  estimation", arXiv:1506.02438 (in ``controllers/common/gae.py``).
* [MAPPO] Yu et al. 2022, "The surprising effectiveness of PPO in cooperative multi-agent games",
  NeurIPS Datasets & Benchmarks, arXiv:2103.01955 (centralised value, shared actor, value
  normalisation).
* [Transformer] Vaswani et al. 2017, "Attention is all you need" (the critic's encoder).

Networks
--------
**Actor** (one set of weights shared by every agent; decentralised execution):
``forecast [M, H, f] → LSTM → h_H [M, d_h]``; ``concat(local [M, local_dim], h_H) → Linear →
local feature [M, d_feat] → MLP (tanh) → hybrid head`` (masked categorical logits ``[M, K]`` and a
Gaussian mean ``[M, C]`` with a state-independent log-std ``[C]``; where the env declares a
default action in ``spec.action_prior``, the mean is that local feature plus the head's output,
a residual policy).  ``M = B·N``: agents are
folded into the batch, so an agent's action depends on its own observation only, and the same
actor runs on any number of agents.  The design (DESIGN §7) names the device triplet as the
actor's non-forecast input; the actor takes all of ``local`` (which contains the triplet at
``CommunityEnv.TRIPLET_IDX``, plus e.g. time of day and current PV / load), so one actor serves
every domain.  The continuous part is a **clipped** Gaussian (see
``controllers/common/distributions.py``): exact log-prob and entropy of the raw sample; the env
receives ``clamp(u, −1, 1)``.

**Critic** (training only): per-agent tokens ``Linear(state [B, N, state_dim])`` plus one global
token ``Linear(global_ [B, global_dim]) + type embedding``, a Transformer encoder with no
positional encoding, then either mean pooling over all ``N + 1`` tokens → MLP → ``V(s) [B, 1]``
(team value: invariant to permuting the agents) or the same MLP on each agent's output token →
``V_n(s) [B, N]`` (per-agent values: permuting the agents permutes them).

Rewards and advantages (``value_target``).  The critic is always centralised: every agent token
attends to every other agent and to the global token.
* ``"team"``: global pooling → the team value V(s) of the **team reward** (community cost,
  divided by ``N`` so the scale does not depend on the community size); every agent's action is
  credited with the same team advantage ([MAPPO] §3).
* ``"agent"`` (default): the same encoder, but the value head reads each agent's output token →
  V_n(s), regressed on the **per-agent reward** (own bill + own penalties + share of the
  transformer penalty; the per-agent rewards sum to the team reward), and agent n's action gets
  its own GAE advantage.  With 50 agents the team advantage mixes each agent's contribution
  with the other 49 agents' noise (its variance grows with N), which is why the per-agent
  variant is the default; a short from-scratch A/B on community_50 did not separate the two
  (docs/controllers/matppo.md).  The transformer excess is charged to the importers in
  proportion to their import, so each agent still feels the coupling constraint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from gridmarl.controllers.common.buffer import ActorBatch, CriticBatch, RolloutBuffer
from gridmarl.controllers.common.checkpoint import (
    CheckpointedLearner,
    check_compatible,
    check_same_config,
    learner_state,
    load_parts,
    plain_meta,
    read_checkpoint,
    save_learner,
)
from gridmarl.controllers.common.distributed import DataParallel, LossModule
from gridmarl.controllers.common.distributions import HybridDistribution, env_continuous
from gridmarl.controllers.common.gae import compute_gae
from gridmarl.controllers.common.layers import (
    ForecastEncoder,
    SetTransformerEncoder,
    mlp,
    orthogonal_init,
)
from gridmarl.controllers.common.normalizers import RunningMeanStd, ValueNorm
from gridmarl.controllers.common.options import reject_unknown_options
from gridmarl.controllers.common.rollout import RolloutStats, collect_rollout
from gridmarl.core.controller import Trainable
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.seeding import make_generator, stream_seed
from gridmarl.core.types import Action, AgentSpec, Observation

CHECKPOINT_FORMAT = "gridmarl.matppo/1"
MAX_FLIGHTS = 8  # envs whose episodes collect() keeps in flight (train.variants) [-]
#: hyper-parameters that fix the networks' shapes: init_from needs them equal
ARCHITECTURE_FIELDS = (
    "lstm_hidden",
    "feat_dim",
    "actor_hidden",
    "critic_dim",
    "critic_heads",
    "critic_layers",
    "value_target",
)
#: spec fields whose value fixes a weight shape (``n_agents`` and ``forecast_len`` do not; a
#: checkpoint records ``forecast_len`` too and is refused on an env with another window).
SHAPE_FIELDS = (
    "local_dim",
    "forecast_dim",
    "state_dim",
    "global_dim",
    "n_discrete",
    "n_continuous",
)


@dataclass
class MATPPOConfig:
    """Hyper-parameters (``scenario.train.options`` overrides any of them by name).

    Attributes:
        num_envs: parallel envs ``B`` in a rollout.
        rollout_steps: steps ``T`` per env per rollout.
        epochs: passes over each rollout.
        minibatches: minibatches per epoch (split of ``T·B·N`` actor and ``T·B`` critic samples).
        lr: initial Adam learning rate; decays linearly to ``lr_final_frac · lr`` over the budget.
        lr_final_frac: final learning rate as a fraction of ``lr`` [-].
        gamma: discount γ per step [-].
        gae_lambda: GAE λ [-].
        clip: PPO ratio clip ε [-].
        ent_coef: entropy bonus coefficient c₂ [-].
        vf_coef: value loss coefficient c₁ [-].
        max_grad_norm: global gradient-norm clip.
        value_norm: regress the critic on running-normalised returns ([MAPPO] value norm).
        value_target: ``team`` (pooled V(s), team reward) or ``agent`` (per-agent values/rewards).
        reward_scale: extra multiplier on the reward used for learning.
        bootstrap_time_limit: bootstrap the last step of a ``truncated`` episode (a time
            limit) with γ V(final observation) (``collect_rollout``'s ``truncation_value``);
            off by default (a truncation is treated as terminal), as every checkpoint shipped
            before it was trained without.
        lstm_hidden: LSTM hidden size d_h.
        feat_dim: local feature width d_feat.
        actor_hidden: actor MLP width.
        init_log_std: initial Gaussian log σ.
        log_std_final: None, or a ceiling on the Gaussian's log σ that falls linearly from
            ``init_log_std`` to this value over the budget (applied to the parameter before
            every rollout): less exploration noise as training ends, closer to the mean action
            the policy is judged on.
        critic_dim: Transformer width d_model.
        critic_heads: attention heads.
        critic_layers: encoder layers.
    """

    num_envs: int = 64
    rollout_steps: int = 24
    epochs: int = 4
    minibatches: int = 2
    lr: float = 3e-4
    lr_final_frac: float = 0.1
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    ent_coef: float = 0.001
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    value_norm: bool = True
    value_target: Literal["team", "agent"] = "agent"
    reward_scale: float = 1.0
    bootstrap_time_limit: bool = False
    lstm_hidden: int = 32
    feat_dim: int = 64
    actor_hidden: int = 64
    init_log_std: float = -1.0
    log_std_final: float | None = None
    critic_dim: int = 32
    critic_heads: int = 2
    critic_layers: int = 2

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> MATPPOConfig:
        """Build from a mapping, rejecting unknown names with the list of allowed ones."""
        reject_unknown_options(cls, options, "MATPPO")
        return cls(**options)


@dataclass
class PPOBatch:
    """One rollout, as ``MATPPO.collect`` hands it to ``MATPPO.update``.

    Attributes:
        buffer: the filled rollout buffer.
        last_obs: the observation after its last step (bootstraps GAE).
        stats: env / policy timing and the returns of the episodes that ended.
        lr: the learning rate of this update (linear decay over the budget).
        scale: the factor the rewards were scaled by (``reward_scale``, / N for a team value).
        agent_steps: agent-steps the rollout simulated (steps × envs × agents).
        t_start: ``time.perf_counter()`` when the collection began [s].
    """

    buffer: RolloutBuffer
    last_obs: Observation
    stats: RolloutStats
    lr: float
    scale: float
    agent_steps: int
    t_start: float


@dataclass
class _Episodes:
    """The episodes in flight on one env between rollouts."""

    env: MultiAgentEnv
    buffer: RolloutBuffer
    obs: Observation
    running: Tensor
    team: bool
    scale: float


class Actor(nn.Module):
    """Shared decentralised actor (see the module docstring for the shapes)."""

    def __init__(self, spec: AgentSpec, cfg: MATPPOConfig) -> None:
        super().__init__()
        self.n_discrete = spec.n_discrete
        self.n_continuous = spec.n_continuous
        self.local_norm = RunningMeanStd((spec.local_dim,))
        self.forecast_norm = RunningMeanStd((spec.forecast_dim,))
        self.encoder = ForecastEncoder(spec.forecast_dim, cfg.lstm_hidden)
        self.to_feature = nn.Linear(spec.local_dim + cfg.lstm_hidden, cfg.feat_dim)
        self.body = mlp(cfg.feat_dim, cfg.actor_hidden, cfg.actor_hidden, layers=1)
        self.act_fn = nn.Tanh()
        # a missing action part has no head (its tensors are [M, 0])
        self.logits = nn.Linear(cfg.actor_hidden, spec.n_discrete) if spec.n_discrete else None
        self.mean = nn.Linear(cfg.actor_hidden, spec.n_continuous) if spec.n_continuous else None
        self.log_std = nn.Parameter(torch.full((spec.n_continuous,), cfg.init_log_std))
        # residual policy: the dimensions with a prior, and the local features that hold it
        self.prior_dims = [d for d, i in enumerate(spec.action_prior) if i >= 0]
        self.prior_cols = [i for i in spec.action_prior if i >= 0]
        orthogonal_init(self)
        # small output layers: a near-uniform categorical and μ ≈ 0 at the start
        for head in (self.logits, self.mean):
            if head is not None:
                nn.init.orthogonal_(head.weight, 0.01)

    def forward(self, local: Tensor, forecast: Tensor, mask: Tensor | None) -> HybridDistribution:
        """``local [M, local_dim]``, ``forecast [M, H, f]``, ``mask [M, K]`` -> the policy."""
        tail = self.tail
        logits, mean = self.heads(self.trunk(local, forecast), local, lambda i, x: tail[i](x))
        return HybridDistribution(logits, mask, mean, self.log_std)

    @property
    def tail(self) -> list[nn.Linear]:
        """The linear layers after the forecast encoder, in order: local feature, the body's
        two layers, then the logits and mean heads where present (what ES fine-tuning
        perturbs, ``gridmarl.controllers.es``)."""
        heads = [h for h in (self.logits, self.mean) if h is not None]
        return [self.to_feature, self.body[0], self.body[2], *heads]

    def trunk(self, local: Tensor, forecast: Tensor) -> Tensor:
        """The normalised input of the local-feature layer ``[..., local_dim + d_h]``:
        ``concat(normalised local, LSTM summary of the normalised forecast)``."""
        m = local.shape[:-1].numel()
        h = self.encoder(self.forecast_norm.normalize(forecast.reshape(m, *forecast.shape[-2:])))
        h = h.reshape(*local.shape[:-1], h.shape[-1])
        return torch.cat([self.local_norm.normalize(local), h], dim=-1)

    def heads(
        self, x: Tensor, local: Tensor, linear: Callable[[int, Tensor], Tensor]
    ) -> tuple[Tensor, Tensor]:
        """Logits ``[..., K]`` and Gaussian mean ``[..., C]`` from the trunk ``x``, with
        ``linear(i, x)`` applying ``tail[i]`` (or a stand-in with other weights)."""
        z = self.act_fn(linear(2, torch.tanh(linear(1, linear(0, x)))))
        i = 3
        if self.logits is not None:
            logits, i = linear(i, z), i + 1
        else:
            logits = z.new_zeros(*z.shape[:-1], 0)
        mean = linear(i, z) if self.mean is not None else z.new_zeros(*z.shape[:-1], 0)
        if self.prior_dims:
            # μ = the env's default action + the network's residual (Silver et al. 2018)
            prior = torch.zeros_like(mean)
            prior[..., self.prior_dims] = local[..., self.prior_cols]
            mean = mean + prior
        return logits, mean


class Critic(nn.Module):
    """Centralised Transformer critic over agent tokens plus a global token."""

    def __init__(self, spec: AgentSpec, cfg: MATPPOConfig) -> None:
        super().__init__()
        d = cfg.critic_dim
        self.team = cfg.value_target == "team"
        self.state_norm = RunningMeanStd((spec.state_dim,))
        self.global_norm = RunningMeanStd((spec.global_dim,))
        self.agent_token = nn.Linear(spec.state_dim, d)
        self.global_token = nn.Linear(spec.global_dim, d)
        self.global_type = nn.Parameter(torch.zeros(d))  # marks the global token; not positional
        self.encoder = SetTransformerEncoder(d, cfg.critic_heads, cfg.critic_layers, 2 * d)
        self.head = mlp(d, d, 1, layers=1, act=nn.GELU)
        orthogonal_init(self.head)
        nn.init.orthogonal_(self.head[-1].weight, 1.0)

    def forward(self, state: Tensor, global_: Tensor) -> Tensor:
        """``state [M, N, state_dim]``, ``global_ [M, global_dim]`` -> values ``[M, V]``
        (``V = 1`` team value, ``V = N`` per-agent values), in normalised units."""
        agents = self.agent_token(self.state_norm.normalize(state))
        glob = self.global_token(self.global_norm.normalize(global_)) + self.global_type
        out = self.encoder(torch.cat([agents, glob.unsqueeze(1)], dim=1))
        if self.team:
            return self.head(out.mean(dim=1))  # global pooling -> [M, 1]
        return self.head(out[:, :-1]).squeeze(-1)  # one value per agent [M, N]


class MATPPO(CheckpointedLearner, Trainable):
    """Multi-agent PPO with a shared hybrid LSTM actor and a Transformer critic.

    Args:
        spec: the env's agent spec (fixes the weight shapes, not the number of agents).
        config: hyper-parameters.
        device: where the networks live and the rollouts are collected.
        seed: seeds the weights, the action sampling and the minibatch shuffles.
    """

    name = "matppo"
    config_class: ClassVar[type[MATPPOConfig]] = MATPPOConfig
    # collect() keeps one rollout buffer and episodes per env, and the networks read any
    # number of agents: train.variants may mix community sizes (gridmarl/train.py)
    mixes_envs: ClassVar[bool] = True

    def __init__(
        self,
        spec: AgentSpec,
        config: MATPPOConfig | None = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        self.spec = spec
        self.cfg = config or MATPPOConfig()
        self.device = torch.device(device)
        self.seed = int(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.actor = Actor(spec, self.cfg).to(self.device)
            self.critic = Critic(spec, self.cfg).to(self.device)
        self.value_norm = ValueNorm().to(self.device)
        self.params = [*self.actor.parameters(), *self.critic.parameters()]
        self.optimizer = torch.optim.Adam(self.params, lr=self.cfg.lr, eps=1e-5)
        self.sample_gen = make_generator(self.seed + 1, self.device)
        self.shuffle_gen = make_generator(self.seed + 2, self.device)
        self.agent_steps = 0
        self.updates = 0
        self.meta: dict[str, Any] = {}  # written to the checkpoint's sidecar JSON
        self._episodes = 0  # episodes begun since collection started
        # the episodes in flight on each env collected from (several with train.variants)
        self._flights: list[_Episodes] = []
        # local feature columns (the same columns of state) whose normaliser statistics the
        # next rollout sets outright (features new to a policy started with init_from)
        self._fresh_cols: list[int] = []
        # the minibatch loss over both networks; under DistributedDataParallel when
        # set_data_parallel is called (controllers/common/distributed.py)
        self._loss_module = LossModule(self._minibatch_loss, actor=self.actor, critic=self.critic)
        self._loss: nn.Module = self._loss_module
        self.dp: DataParallel | None = None

    def set_data_parallel(self, dp: DataParallel) -> None:
        """Train as rank ``dp.rank`` of ``dp.world`` data-parallel processes
        (``controllers/common/distributed.py``): the loss runs under DistributedDataParallel,
        the batch statistics read every rank's rollout, each rank samples actions and draws
        episode seeds of its own (rank 0 as a single process would), and ``agent_steps``
        counts every rank's experience.  Call after building or loading."""
        self.dp = dp
        self._loss = dp.wrap(self._loss_module)
        if dp.rank > 0:
            # rank 0 keeps the checkpoint's sampling stream; the others derive theirs from
            # (seed, rank, updates), so a resumed run samples afresh but reproducibly
            ss = np.random.SeedSequence([self.seed, 1, dp.rank, self.updates])
            self.sample_gen = make_generator(int(ss.generate_state(1)[0]), self.device)

    def _gather(self, x: Tensor, dim: int = 0) -> Tensor:
        """Every rank's ``x`` concatenated along ``dim`` (``x`` itself in one process)."""
        return self.dp.gather(x, dim) if self.dp is not None else x

    # -- acting ---------------------------------------------------------------------------------
    def _dist(self, obs: Observation) -> HybridDistribution:
        b, n = obs.batch_shape
        mask = obs.action_mask.reshape(b * n, -1) if obs.action_mask is not None else None
        return self.actor(
            obs.local.reshape(b * n, -1), obs.forecast.reshape(b * n, *obs.forecast.shape[2:]), mask
        )

    @torch.no_grad()
    def act(
        self, obs: Observation, deterministic: bool = True, generator: torch.Generator | None = None
    ) -> Action:
        """Each agent's action from its own observation; ``[B, N]`` and ``[B, N, C]`` in [-1, 1].

        ``generator`` (sampling only) defaults to the controller's own sampling generator.
        """
        b, n = obs.batch_shape
        out_device, out_dtype = obs.local.device, obs.local.dtype
        dtype = self.actor.log_std.dtype
        obs = obs.to(self.device).floats(dtype)
        dist = self._dist(obs)
        if deterministic:
            k, u = dist.mode()
        else:
            k, u = dist.sample(generator or self.sample_gen)
        cont = env_continuous(u).reshape(b, n, self.spec.n_continuous)
        return Action(
            discrete=k.reshape(b, n).to(out_device), continuous=cont.to(out_device, out_dtype)
        )

    @torch.no_grad()
    def _policy_step(self, obs: Observation) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Sample for a rollout: discrete ``[B, N]``, raw continuous ``[B, N, C]``, log π
        ``[B, N]``, de-normalised V(s) ``[B, V]``."""
        b, n = obs.batch_shape
        dist = self._dist(obs)
        k, u = dist.sample(self.sample_gen)
        logp = dist.log_prob(k, u)
        return (k.reshape(b, n), u.reshape(b, n, -1), logp.reshape(b, n), self._value(obs))

    @torch.no_grad()
    def _truncation_value(self, obs: Observation) -> Tensor:
        """γ V(s_T) ``[B, V]`` of the observation after an episode's last step (de-normalised)."""
        return self.cfg.gamma * self._value(obs)

    def _value(self, obs: Observation) -> Tensor:
        """De-normalised V(s) ``[B, V]`` of the critic."""
        return self._denorm(self.critic(obs.state, obs.global_))

    def _denorm(self, v: Tensor) -> Tensor:
        return self.value_norm.denormalize(v) if self.cfg.value_norm else v

    # -- learning -------------------------------------------------------------------------------
    def collect(self, env: MultiAgentEnv, budget: int) -> PPOBatch:
        """One rollout of ``rollout_steps`` steps on ``env`` (a new env is reset first; its
        episodes continue across calls), sampled with this update's schedules: the learning
        rate and the ceiling on log σ fall linearly over ``budget`` [agent-steps]."""
        cfg = self.cfg
        fl = next((f for f in self._flights if f.env is env), None)
        if fl is None:
            team = cfg.value_target == "team"
            n = env.spec.n_agents
            buffer = RolloutBuffer(
                env.spec, cfg.rollout_steps, env.num_envs, 1 if team else n, self.device
            )
            # a resumed run starts fresh episodes, seeded by how far training had come (with
            # train.variants, each env's first episodes start at another update)
            self._episodes = 0
            obs = env.reset(seed=self._next_reset_seed())
            running = torch.zeros(env.num_envs, dtype=torch.float64, device=self.device)
            scale = cfg.reward_scale / (n if team else 1)
            fl = _Episodes(env, buffer, obs, running, team, scale)
            # keep the envs of train.variants; forget envs collected from long ago
            self._flights = [*self._flights[-(MAX_FLIGHTS - 1) :], fl]
        frac = min(1.0, self.agent_steps / max(budget, 1))
        lr = cfg.lr * (1.0 - (1.0 - cfg.lr_final_frac) * frac)  # linear decay
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if cfg.log_std_final is not None:  # linearly falling ceiling on log σ
            cap = cfg.init_log_std + (cfg.log_std_final - cfg.init_log_std) * frac
            with torch.no_grad():
                self.actor.log_std.clamp_(max=cap)
        t0 = time.perf_counter()
        fl.obs, rs = collect_rollout(
            env,
            fl.obs,
            fl.buffer,
            self._policy_step,
            fl.team,
            fl.scale,
            fl.running,
            self._next_reset_seed,
            self._truncation_value if self.cfg.bootstrap_time_limit else None,
        )
        per_update = cfg.rollout_steps * env.num_envs * env.spec.n_agents
        per_update *= self.dp.world if self.dp is not None else 1  # every rank's rollout
        return PPOBatch(fl.buffer, fl.obs, rs, lr, fl.scale, per_update, t0)

    def update(self, batch: PPOBatch) -> dict[str, float]:
        """The PPO update from one rollout, then the observation statistics; returns the loss
        statistics, timings and training metrics."""
        t1 = time.perf_counter()
        buffer, rs, per_update = batch.buffer, batch.stats, batch.agent_steps
        metrics = self.ppo_update(buffer, batch.last_obs)
        self.update_normalizers(buffer)
        t2 = time.perf_counter()
        self.agent_steps += per_update
        self.updates += 1
        metrics.update(
            {
                "time/env_s": rs.env_s,
                "time/policy_forward_s": rs.policy_s,
                "time/update_s": t2 - t1,
                "time/rollout_s": t1 - batch.t_start,
                "perf/agent_steps_per_s": per_update / max(t2 - batch.t_start, 1e-9),
                "train/lr": batch.lr,
                "train/reward_per_step": float(buffer.rewards.mean()) / batch.scale,
            }
        )
        if rs.episode_returns:
            metrics["train/episode_return"] = sum(rs.episode_returns) / len(rs.episode_returns)
        return metrics

    def ppo_update(self, buffer: RolloutBuffer, last_obs: Observation) -> dict[str, float]:
        """One PPO update from a full rollout; returns the loss statistics."""
        cfg = self.cfg
        with torch.no_grad():
            last_v = self._value(last_obs)
        adv, ret = compute_gae(
            buffer.rewards, buffer.values, buffer.dones, last_v, cfg.gamma, cfg.gae_lambda
        )
        buffer.advantages.copy_(adv)
        buffer.returns.copy_(ret)
        if cfg.value_norm:
            self.value_norm.update(self._gather(ret, dim=1))
            ret_n = self.value_norm.normalize(ret)
        else:
            ret_n = ret
        agent_adv = buffer.actor_agent_advantages()
        every = self._gather(agent_adv, dim=1)  # the whole batch's advantages (all ranks)
        agent_adv = (agent_adv - every.mean()) / (every.std() + 1e-8)
        sums: dict[str, float] = {}
        count = 0
        fwd_s = bwd_s = 0.0  # [s] loss forward vs backward + optimiser step (CPU timing)
        for _ in range(cfg.epochs):
            for a, c in buffer.minibatches(cfg.minibatches, self.shuffle_gen, agent_adv, ret_n):
                t_mb = time.perf_counter()
                loss, stats = self._loss(a, c)
                t_fwd = time.perf_counter()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                self.optimizer.step()
                t_bwd = time.perf_counter()
                fwd_s += t_fwd - t_mb
                bwd_s += t_bwd - t_fwd
                stats["policy/grad_norm"] = grad_norm
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                count += 1
        out = {k: v / count for k, v in sums.items()}
        out["time/update_forward_s"], out["time/update_backward_s"] = fwd_s, bwd_s
        var_r = float(buffer.returns.var())
        out["value/explained_var"] = (
            1.0 - float((buffer.returns - buffer.values).var()) / var_r
            if var_r > 0
            else float("nan")
        )
        if self.spec.n_continuous:
            out["policy/std"] = float(self.actor.log_std.detach().exp().mean())
        return out

    def _minibatch_loss(self, a: ActorBatch, c: CriticBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """The PPO loss of one minibatch and its statistics (no grad in the statistics)."""
        cfg = self.cfg
        dist = self.actor(a.local, a.forecast, a.mask)
        logp = dist.log_prob(a.discrete, a.continuous)
        log_ratio = logp - a.old_log_prob
        # r_t(θ) = π_θ(a|o) / π_θold(a|o)                          ([PPO] Eq. 6)
        ratio = log_ratio.exp()
        # L^CLIP = E[min(r Â, clip(r, 1−ε, 1+ε) Â)]                ([PPO] Eq. 7)
        surr = torch.min(ratio * a.advantage, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * a.advantage)
        entropy = dist.entropy().mean()
        value = self.critic(c.state, c.global_)
        # L^VF = (V_θ(s_t) − V_t^targ)², V^targ = GAE λ-return ([PPO] Eq. 9, [GAE] Eq. 18;
        # targets normalised as in [MAPPO] §4.1 "value normalization")
        v_loss = (value - c.returns).pow(2).mean()
        # L = −L^CLIP + c₁ L^VF − c₂ S[π]   (sign flipped to minimise; [PPO] Eq. 9)
        loss = -surr.mean() + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
        with torch.no_grad():
            stats = {
                "loss/policy": -surr.mean(),
                "loss/value": v_loss.detach(),
                "policy/entropy": entropy.detach(),
                # k3 estimator of KL(π_old ‖ π) (Schulman 2020, "Approximating KL")
                "policy/approx_kl": ((ratio - 1) - log_ratio).mean(),
                "policy/clip_frac": ((ratio - 1).abs() > cfg.clip).float().mean(),
            }
        return loss, stats

    def update_normalizers(self, buffer: RolloutBuffer) -> None:
        """Merge the rollout's observations into the running statistics.

        Called after the PPO update, so the update sees the statistics the rollout was
        collected with (otherwise the ratio would not start at 1).
        """
        local, state = self._gather(buffer.local, dim=1), self._gather(buffer.state, dim=1)
        self.actor.local_norm.update(local)
        self.actor.forecast_norm.update(self._gather(buffer.forecast, dim=1))
        self.critic.state_norm.update(state)
        self.critic.global_norm.update(self._gather(buffer.global_, dim=1))
        # features new to the policy (init_from): their statistics are this rollout's own,
        # not merged into the source's counts (which would leave them at mean 0, variance 1)
        cols, self._fresh_cols = self._fresh_cols, []
        if cols:
            for norm, x in ((self.actor.local_norm, local), (self.critic.state_norm, state)):
                flat = x.detach().reshape(-1, x.shape[-1])[:, cols].to(torch.float64)
                norm.mean[cols] = flat.mean(0)
                norm.var[cols] = flat.var(0, unbiased=False)

    def warm_start(
        self, env: MultiAgentEnv, teacher: Any, epochs: int, seed: int, keep_prior: bool
    ) -> dict[str, float]:
        """Behaviour cloning of ``teacher`` on ``env`` (``controllers/common/warm_start.py``)."""
        from gridmarl.controllers.common.warm_start import warm_start

        return warm_start(self, env, teacher, epochs=epochs, seed=seed, keep_prior=keep_prior)

    def _next_reset_seed(self) -> int:
        """Seed of the next ``env.reset``: the training seed stream (``core.seeding``) at an index
        that is a function of (updates done, episodes begun), so it never is a validation, test or
        evaluation seed (docs/protocol.md)."""
        self._episodes += 1
        index = self.updates * 1_009 + self._episodes
        if self.dp is not None:  # rank r of K: every K-th index from r (rank 0 = one process)
            index = index * self.dp.world + self.dp.rank
        return stream_seed(self.seed, "train", index)

    # -- checkpoints ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything a checkpoint holds (tensors and plain Python values only)."""
        return {
            **learner_state(
                CHECKPOINT_FORMAT,
                self.cfg,
                self.spec,
                SHAPE_FIELDS,
                self.seed,
                self.agent_steps,
                self.updates,
            ),
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "value_norm": self.value_norm.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": {"sample": self.sample_gen.get_state(), "shuffle": self.shuffle_gen.get_state()},
            "meta": plain_meta(self.meta),
        }

    def save(self, path: str | Path) -> None:
        """Write the checkpoint atomically, then its sidecar JSON (``path`` with ``.json``)."""
        save_learner(path, self.state(), self.name, self.meta)

    def load(self, path: str | Path, scenario_hash: str | None = None) -> None:
        """Read a checkpoint with ``torch.load(weights_only=True)``.

        Raises:
            ScenarioError: the file is not a MATPPO checkpoint, its weight shapes differ from
                this env's, or ``scenario_hash`` is given and differs from the checkpoint's.
        """
        state = read_checkpoint(path, CHECKPOINT_FORMAT, "MATPPO")
        check_compatible(state, self.spec, SHAPE_FIELDS, path, scenario_hash)
        check_same_config(path, state, self)
        parts = {
            "actor": self.actor,
            "critic": self.critic,
            "value_norm": self.value_norm,
            "optimizer": self.optimizer,
        }
        gens = {"sample": self.sample_gen, "shuffle": self.shuffle_gen}
        load_parts(path, state, self, parts, gens)
        self.seed = int(state["seed"])

    def init_from(self, path: str | Path) -> list[str]:
        """Start from another MATPPO run's weights (``gridmarl train --init-from``), keeping
        this run's hyper-parameters, seed, optimiser (fresh) and progress (none).

        The checkpoint may have been trained on fewer local features (e.g. before an
        observation option was switched on): every feature it knows is mapped by name, and a
        feature it lacks gets zero weight in the actor's feature layer and the critic's agent
        token, so the policy and the values start exactly as the source's; the normaliser
        statistics of those features are set from the first rollout.

        Returns:
            The names of the features new to the policy.

        Raises:
            ScenarioError: not a MATPPO checkpoint, other network sizes, other forecast,
                global or action shapes, features without names, or features it has that
                this env lacks.
        """
        from gridmarl.core.errors import ScenarioError

        state = read_checkpoint(path, CHECKPOINT_FORMAT, "MATPPO")
        src_cfg = MATPPOConfig(**state["config"])
        problems = [
            f"{f}={getattr(src_cfg, f)!r} in the checkpoint but {getattr(self.cfg, f)!r} here"
            for f in ARCHITECTURE_FIELDS
            if getattr(src_cfg, f) != getattr(self.cfg, f)
        ]
        shapes = state["shapes"]
        for f in ("forecast_dim", "global_dim", "n_discrete", "n_continuous"):
            if int(shapes[f]) != int(getattr(self.spec, f)):
                problems.append(f"{f}={shapes[f]} in the checkpoint but {getattr(self.spec, f)}")
        names = list(state.get("local_features", ()))
        mine = list(self.spec.local_features)
        if not names or not mine:
            problems.append("the checkpoint or the env does not name its local features")
        missing = [f for f in names if f not in mine]
        if missing:
            problems.append(f"the env lacks the checkpoint's features {missing}")
        prior_src = [names[i] if i >= 0 else None for i in state.get("action_prior", [])]
        prior_new = [mine[i] if i >= 0 else None for i in self.spec.action_prior]
        if names and mine and prior_src != prior_new:
            problems.append(f"default actions differ ({prior_src} vs {prior_new})")
        if problems:
            raise ScenarioError(f"--init-from {path}: " + "; ".join(problems))
        cols = [mine.index(f) for f in names]  # new column of each source feature
        added = [f for f in mine if f not in names]
        k_src, k_new = len(names), len(mine)

        def widen(t: Tensor, dim: int, fill: float) -> Tensor:
            """``t`` with its first ``k_src`` entries along ``dim`` moved to ``cols`` of a
            tensor with ``k_new`` there (``fill`` in the new ones), the rest kept after them."""
            shape = list(t.shape)
            shape[dim] = shape[dim] - k_src + k_new
            out = torch.full(shape, fill, dtype=t.dtype)
            idx = torch.tensor(cols + list(range(k_new, shape[dim])))
            out.index_copy_(dim, idx, t)
            return out

        actor, critic = dict(state["actor"]), dict(state["critic"])
        actor["to_feature.weight"] = widen(actor["to_feature.weight"], 1, 0.0)
        critic["agent_token.weight"] = widen(critic["agent_token.weight"], 1, 0.0)
        for sd, key in ((actor, "local_norm"), (critic, "state_norm")):
            sd[f"{key}.mean"] = widen(sd[f"{key}.mean"], 0, 0.0)
            sd[f"{key}.var"] = widen(sd[f"{key}.var"], 0, 1.0)
        self.actor.load_state_dict(actor)
        self.critic.load_state_dict(critic)
        self.value_norm.load_state_dict(state["value_norm"])
        self._fresh_cols = [mine.index(f) for f in added]
        meta = state.get("meta", {})
        self.meta["init_from"] = {
            "file": str(path),
            "agent_steps": int(state["agent_steps"]),
            "seed": int(state["seed"]),
            "policy_hash": meta.get("policy_hash"),
            "new_features": added,
        }
        return added

    @classmethod
    def checkpoint_checks(cls) -> dict[str, Any]:
        """What ``check_checkpoint`` requires of a MATPPO checkpoint."""
        return {
            "fmt": CHECKPOINT_FORMAT,
            "what": "MATPPO",
            "config_class": MATPPOConfig,
            "shape_fields": SHAPE_FIELDS,
        }
