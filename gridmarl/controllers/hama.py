"""HAMA: multi-agent actor-critic with a hierarchical graph attention network.

Paper: [HAMA] Ryu, Shin, Park 2020, "Multi-Agent Actor-Critic with Hierarchical Graph Attention
Network", AAAI, arXiv:1909.12557.  Its training is MADDPG's: [MADDPG] Lowe et al. 2017,
"Multi-agent actor-critic for mixed cooperative-competitive environments", arXiv:1706.02275;
[DDPG] Lillicrap et al. 2015, arXiv:1509.02971; [GS] Jang et al. 2017 (Gumbel-softmax).

Networks (``controllers/common/hgat.py`` for the encoder, ``common/views.py`` for the views)
--------
* **Actor** μ_g (one per agent group g, shared by the group's agents, [HAMA] "Multi-Agent
  Actor-Critic"): ``HGAT(view of agent i from its own observation) → [s_i, h_i] → MLP →
  (logits [K], pre-activation [C])``; the continuous action is ``tanh(pre)``, the discrete one
  a masked Gumbel-softmax sample (straight-through one-hot in training, argmax at decision
  time).  It reads only what agent i sees (its own features and the agents in its view),
  so execution is decentralised and the same weights run on any number of agents.
* **Critic** Q_g (one per group): the same HGAT over the same view, each entity's features
  extended with that agent's action (``[onehot(k), u]``; zeros for a non-acting entity) →
  MLP → Q_i.  It reads the actions of the agents in view, hence is used in training only.

Updates (one gradient step per ``update_every`` stored env-steps, after ``warmup_frac`` of the
buffer is filled; [HAMA] supplementary "Hyperparameters"):

* critic ([HAMA] Eq. 1, [MADDPG] Eq. 6):
  ``L = E[(Q_i(x, a_1 … a_N) − y_i)²]``, ``y_i = r_i + γ (1 − terminated) Q'_i(x', a'_1 … a'_N)``
  with ``a'_j = μ'_g(o'_j)`` from the target actors (deterministic).
* actor ([HAMA] Eq. 2, [MADDPG] Eq. 5): ascend ``Q_i(x, a_1 … μ_g(o_i) … a_N)``: agent i's
  own action from the current actor (Gumbel-softmax straight-through for the discrete part,
  [GS] Eq. 1-2), the others' from the buffer; plus MADDPG's 1e-3 penalty on the squared
  pre-activations (the reference implementation's regulariser).
* targets: ``θ' ← τ θ + (1 − τ) θ'`` ([DDPG] §7).

A truncated episode end (time limit) is bootstrapped, a terminated one is not
(``controllers/common/replay.py``).  The MADDPG ablation (``controllers/maddpg.py``) is this
class with the HGAT replaced by an MLP over the raw view in fixed slots.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gridmarl.controllers.common.checkpoint import (
    CheckpointedLearner,
    check_same_config,
    learner_state,
    load_parts,
    plain_meta,
    save_learner,
)
from gridmarl.controllers.common.hgat import (
    HGAT,
    Attention,
    EntityView,
    StackedMLPs,
    gumbel_softmax_st,
    hgat_forward,
    two_layer,
)
from gridmarl.controllers.common.options import reject_unknown_options
from gridmarl.controllers.common.replay import ReplayBuffer, Transitions
from gridmarl.controllers.common.views import NeighborView
from gridmarl.core.controller import Trainable
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.errors import ScenarioError
from gridmarl.core.seeding import make_generator, stream_seed
from gridmarl.core.types import Action, AgentSpec, Observation

SHAPE_FIELDS = (
    "local_dim",
    "forecast_dim",
    "state_dim",
    "global_dim",
    "n_discrete",
    "n_continuous",
)


@dataclass
class HAMAConfig:
    """Hyper-parameters (``scenario.train.options`` overrides any of them by name).

    Defaults follow the seed's supplementary "Hyperparameters" ([HAMA]); the copy of the seed
    in this project lost the learning rates' and τ's digits, so those take DDPG's published
    values ([DDPG] §7: actor 1e-4, critic 1e-3; τ = 0.01 as MADDPG's reference code).

    Attributes:
        num_envs: parallel envs ``B`` stepped per collection.
        hidden: width of every MLP (embedding, attention, heads) [units] (seed: 256).
        lr_actor: Adam learning rate of the actors.
        lr_critic: Adam learning rate of the critics.
        gamma: discount γ per step [-] (seed: 0.95).
        tau: soft target update rate τ [-].
        batch_size: sampled env-steps per gradient step (seed: 1024).
        buffer_size: replay capacity [env-steps] (seed: 10^6), capped by ``max_buffer_mb``.
        max_buffer_mb: memory cap on the replay buffer [MiB] (a row holds all N agents).
        update_every: env-steps stored between gradient steps (seed: 100).
        warmup_frac: fraction of ``buffer_size`` stored before learning starts (seed: 2.5 %).
        gumbel_tau: Gumbel-softmax temperature τ_GS [-].
        explore_std: std of the Gaussian exploration noise on continuous actions [-].
        max_grad_norm: global gradient-norm clip (MADDPG reference: 0.5).
        reward_scale: multiplier on the per-agent reward used for learning.
        reward: learn from the per-agent reward (``agent``) or the team reward / N (``team``).
    """

    num_envs: int = 8
    hidden: int = 256
    lr_actor: float = 1e-4
    lr_critic: float = 1e-3
    gamma: float = 0.95
    tau: float = 0.01
    batch_size: int = 1024
    buffer_size: int = 1_000_000
    max_buffer_mb: int = 2048
    update_every: int = 100
    warmup_frac: float = 0.025
    gumbel_tau: float = 1.0
    explore_std: float = 0.1
    max_grad_norm: float = 0.5
    reward_scale: float = 1.0
    reward: Literal["agent", "team"] = "agent"

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> HAMAConfig:
        """Build from a mapping, rejecting unknown names with the list of allowed ones."""
        reject_unknown_options(cls, options, "HAMA / MADDPG")
        cfg = cls(**options)
        if cfg.reward not in ("agent", "team"):
            raise ScenarioError(f"train.options.reward: {cfg.reward!r}; allowed: agent, team")
        return cfg


def action_vector(action: Action, n_discrete: int) -> Tensor:
    """``[B, N, K + C]``: one-hot discrete choice and the continuous action."""
    parts = []
    if n_discrete:
        parts.append(F.one_hot(action.discrete, n_discrete).to(action.continuous.dtype))
    parts.append(action.continuous)
    return torch.cat(parts, -1)


def critic_view(view: EntityView, all_act: Tensor, own_act: Tensor) -> EntityView:
    """The view with every acting entity's features extended by its action.

    Args:
        view: the observation's view.
        all_act: ``[B, N, A]`` the joint action (the buffer's).
        own_act: ``[B, N, A]`` each agent's own action (the buffer's for the critic loss, the
            current actor's for the actor loss: [HAMA] Eq. 2).
    """
    b, n, e = view.agent.shape
    a = all_act.shape[-1]
    idx = view.agent.clamp_min(0).reshape(b, n * e, 1).expand(b, n * e, a)
    ent_act = torch.gather(all_act, 1, idx).reshape(b, n, e, a)
    ent_act = ent_act * (view.agent >= 0).unsqueeze(-1).to(ent_act.dtype)
    is_self = view.agent == torch.arange(n, device=all_act.device).view(1, n, 1)
    ent_act = torch.where(is_self.unsqueeze(-1), own_act.unsqueeze(2), ent_act)
    return EntityView(
        own=torch.cat([view.own, own_act], -1),
        entities=torch.cat([view.entities, ent_act], -1),
        kind=view.kind,
        group=view.group,
        mask=view.mask,
        agent=view.agent,
        n_groups=view.n_groups,
    )


class GroupNets(nn.Module):
    """One encoder + head per policy group; agent i uses group ``policy_groups[i]``'s.

    Args:
        n_policy: number of policy groups.
        make_encoder: builds one encoder (``HGAT`` or ``FlatEncoder``).
        out_dim: head output size.
        hidden: head width.
    """

    def __init__(
        self, n_policy: int, make_encoder: Callable[[], nn.Module], out_dim: int, hidden: int
    ) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(make_encoder() for _ in range(n_policy))
        self.heads = nn.ModuleList(
            two_layer(self.encoders[0].out_dim, hidden, out_dim) for _ in range(n_policy)
        )
        for m in self.modules():  # seed: Xavier uniform initialisation
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, view: EntityView, policy_groups: Tensor) -> tuple[Tensor, Attention | None]:
        """``[B, N, out_dim]`` and the attention ``[B, N, G, E]`` / ``[B, N, G]`` (or None).

        The agents are put in group order once (no copy when they already are, as with one
        group), so each group's encoder reads a contiguous slice of them.
        """
        b, n, e = view.mask.shape
        if torch.is_inference_mode_enabled() and self._can_stack(policy_groups):
            return self._stacked_forward(view, policy_groups)
        order, counts = group_order(policy_groups, len(self.encoders))
        tensors = (view.own, view.entities, view.group, view.mask)
        if order is not None:
            tensors = tuple(t.index_select(1, order) for t in tensors)
        outs, alphas, betas = [], [], []
        start = 0
        for g, count in enumerate(counts):
            if count == 0:
                continue
            own, ent, grp, msk = (
                t[:, start : start + count].reshape(b * count, *t.shape[2:]) for t in tensors
            )
            start += count
            z, att = self.encoders[g](own, ent, view.kind, grp, msk, view.n_groups)
            outs.append(self.heads[g](z).reshape(b, count, -1))
            if att is not None:
                alphas.append(att.inter_agent.reshape(b, count, view.n_groups, e))
                betas.append(att.inter_group.reshape(b, count, view.n_groups))
        out = torch.cat(outs, 1) if len(outs) > 1 else outs[0]
        attention = None
        if alphas:
            alpha = torch.cat(alphas, 1) if len(alphas) > 1 else alphas[0]
            beta = torch.cat(betas, 1) if len(betas) > 1 else betas[0]
            attention = Attention(alpha, beta)
        if order is not None:  # back to agent order
            inverse = torch.empty_like(order)
            inverse[order] = torch.arange(n, device=order.device)
            out = out.index_select(1, inverse)
            if attention is not None:
                attention = Attention(
                    attention.inter_agent.index_select(1, inverse),
                    attention.inter_group.index_select(1, inverse),
                )
        return out, attention

    # -- decision time: every group at once ---------------------------------------------------
    def _can_stack(self, policy_groups: Tensor) -> bool:
        """Several HGAT groups whose padding to the largest group costs at most 25 % more rows."""
        p = len(self.encoders)
        if p == 1 or not all(type(enc) is HGAT for enc in self.encoders):  # not a subclass
            return False
        n = policy_groups.numel()
        return p * self._stack_layout(policy_groups)[0] <= n + n // 4

    def _stacked(self) -> StackedMLPs:
        """The groups' weights stacked ``[P, ...]``, rebuilt after any weight changed."""
        key = tuple((id(q), q._version) for q in self.parameters())
        if getattr(self, "_stack_key", None) != key:
            mlps: dict[tuple[str, int], list[nn.Sequential]] = {
                ("f_self", 0): [enc.f_self for enc in self.encoders],
                ("f_gatt", 0): [enc.f_gatt for enc in self.encoders],
                ("head", 0): list(self.heads),
            }
            for k in range(self.encoders[0].kinds):
                mlps[("f_emb", k)] = [enc.f_emb[k] for enc in self.encoders]
                mlps[("f_att", k)] = [enc.f_att[k] for enc in self.encoders]
            self._stack = StackedMLPs(mlps)
            self._stack_key = key
        return self._stack

    def _stack_layout(self, policy_groups: Tensor) -> tuple[int, Tensor, Tensor]:
        """Rows per group ``C``, the agent of each of the ``P·C`` rows (padding: agent 0) and
        each agent's row; computed once per layout (the view's ``policy_groups``)."""
        groups = policy_groups.tolist()
        key = (tuple(groups), str(policy_groups.device))
        if getattr(self, "_layout_key", None) != key:
            members = [[i for i, g in enumerate(groups) if g == q] for q in range(len(self.heads))]
            c = max(len(m) for m in members)
            rows = [i for m in members for i in m + [0] * (c - len(m))]
            back = [0] * len(groups)
            for q, m in enumerate(members):
                for r, i in enumerate(m):
                    back[i] = q * c + r
            dev = policy_groups.device
            self._layout = (c, torch.tensor(rows, device=dev), torch.tensor(back, device=dev))
            self._layout_key = key
        return self._layout

    def _stacked_forward(self, view: EntityView, policy_groups: Tensor) -> tuple[Tensor, Attention]:
        """``forward`` with all P groups in one batched matmul per layer: the agents of each
        group padded to the largest group's count ``C`` (padding repeats agent 0 and is
        dropped), ``[B, N, ...]`` → ``[P, B·C, ...]``."""
        b, n, e = view.mask.shape
        p = len(self.encoders)
        c, take, back = self._stack_layout(policy_groups)

        def stack(t: Tensor) -> Tensor:  # [B, N, ...] -> [P, B·C, ...]
            t = t.index_select(1, take).reshape(b, p, c, *t.shape[2:]).transpose(0, 1)
            return t.reshape(p, b * c, *t.shape[3:])

        def unstack(t: Tensor) -> Tensor:  # [P, B·C, ...] -> [B, N, ...]
            t = t.reshape(p, b, c, *t.shape[2:]).transpose(0, 1).reshape(b, p * c, *t.shape[2:])
            return t.index_select(1, back)

        f = self._stacked()
        z, att = hgat_forward(
            f,
            stack(view.own),
            stack(view.entities),
            view.kind,
            stack(view.group),
            stack(view.mask),
            view.n_groups,
        )
        out = unstack(f.mlp(("head", 0), z))
        return out, Attention(unstack(att.inter_agent), unstack(att.inter_group))


def group_order(policy_groups: Tensor, n_policy: int) -> tuple[Tensor | None, list[int]]:
    """The agents sorted by policy group (``None`` when already sorted) and each group's size."""
    counts = torch.bincount(policy_groups, minlength=n_policy).tolist()
    if bool((policy_groups[1:] >= policy_groups[:-1]).all()):
        return None, counts
    return torch.argsort(policy_groups, stable=True), counts


class HAMA(CheckpointedLearner, Trainable):
    """HAMA learner (the ``core.learner.Learner`` protocol; see the module docstring).

    Args:
        spec: the env's agent spec.
        config: hyper-parameters.
        device: where the networks and the replay buffer live.
        seed: seeds the weights, the exploration noise and the replay sampling.
        view: what each agent sees (default :class:`NeighborView` of ``spec``); a game may pass
            its own (``gridmarl.games``).
    """

    name = "hama"
    config_class: ClassVar[type[HAMAConfig]] = HAMAConfig
    checkpoint_format: ClassVar[str] = "gridmarl.hama/1"
    title: ClassVar[str] = "HAMA"

    def __init__(
        self,
        spec: AgentSpec,
        config: HAMAConfig | None = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
        view: nn.Module | None = None,
    ) -> None:
        self.spec = spec
        self.cfg = config or HAMAConfig()
        self.device = torch.device(device)
        self.seed = int(seed)
        self.view = (view if view is not None else NeighborView(spec)).to(self.device)
        self.act_dim = spec.n_discrete + spec.n_continuous
        self.n_policy = int(self.view.policy_groups.max()) + 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.actor = GroupNets(
                self.n_policy, lambda: self._encoder(0), self.act_dim, self.cfg.hidden
            ).to(self.device)
            self.critic = GroupNets(
                self.n_policy, lambda: self._encoder(self.act_dim), 1, self.cfg.hidden
            ).to(self.device)
        self.target_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=self.cfg.lr_actor)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=self.cfg.lr_critic)
        self.explore_gen = make_generator(self.seed + 1, self.device)
        self.sample_gen = make_generator(self.seed + 2, self.device)
        self.agent_steps = 0
        self.updates = 0
        self.meta: dict[str, Any] = {}
        self.last_attention: Attention | None = None
        self._buffer: ReplayBuffer | None = None
        self._env: MultiAgentEnv | None = None
        self._obs: Observation | None = None
        self._episodes = 0
        self._returns: Tensor | None = None

    def _encoder(self, act_dim: int) -> nn.Module:
        v = self.view
        return HGAT(v.own_dim + act_dim, v.ent_dim + act_dim, v.kinds, self.cfg.hidden)

    # -- acting ---------------------------------------------------------------------------------
    def _policy(
        self, obs: Observation, net: GroupNets | None = None
    ) -> tuple[Tensor, Tensor, Attention | None]:
        """Masked logits ``[B, N, K]`` and continuous pre-activations ``[B, N, C]``."""
        out, att = (net or self.actor)(self.view(obs), self.view.policy_groups)
        k = self.spec.n_discrete
        logits, pre = out[..., :k], out[..., k:]
        return logits, pre, att

    def _mask(self, obs: Observation) -> Tensor | None:
        return obs.action_mask if self.spec.n_discrete else None

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """Each agent's action from what it sees: ``[B, N]`` and ``[B, N, C]`` in [-1, 1]."""
        out_device, out_dtype = obs.local.device, obs.local.dtype
        with torch.inference_mode():  # no autograd bookkeeping at decision time
            obs = obs.to(self.device)
            logits, pre, att = self._policy(obs)
            self.last_attention = att
            gen = None if deterministic else self.explore_gen
            if self.spec.n_discrete:
                _, k = gumbel_softmax_st(logits, self._mask(obs), self.cfg.gumbel_tau, gen)
            else:
                k = torch.zeros(obs.batch_shape, dtype=torch.long, device=self.device)
            u = torch.tanh(pre)
            if not deterministic and self.spec.n_continuous:
                noise = torch.randn(u.shape, generator=self.explore_gen, device=self.device)
                u = (u + self.cfg.explore_std * noise).clamp(-1.0, 1.0)
        # ordinary tensors for the caller (an inference tensor refuses later in-place updates)
        return Action(
            discrete=k.to(out_device).clone(), continuous=u.to(out_device, out_dtype).clone()
        )

    # -- learning -------------------------------------------------------------------------------
    def _make_buffer(self, spec: AgentSpec) -> ReplayBuffer:
        row = ReplayBuffer(spec, 1, device="cpu").nbytes
        cap = min(self.cfg.buffer_size, max(1, self.cfg.max_buffer_mb * 2**20 // row))
        self.meta["replay_capacity"] = cap
        return ReplayBuffer(spec, cap, device=self.device)

    def collect(self, env: MultiAgentEnv, budget: int) -> dict[str, Any]:
        """Step ``env`` with exploration until ``update_every`` env-steps were stored (at least
        one step of every env); returns timing and the returns of finished episodes."""
        cfg = self.cfg
        if self._env is not env:
            self._env = env
            if self._buffer is None or self._buffer.spec.n_agents != env.spec.n_agents:
                self._buffer = self._make_buffer(env.spec)
            self._episodes = 0
            self._obs = env.reset(seed=self._next_reset_seed())
            self._returns = torch.zeros(env.num_envs, dtype=torch.float64)
        assert self._obs is not None and self._buffer is not None and self._returns is not None
        steps = max(1, math.ceil(cfg.update_every / env.num_envs))
        t0 = time.perf_counter()
        env_s = act_s = replay_s = 0.0
        finished: list[float] = []
        for _ in range(steps):
            obs = self._obs
            t1 = time.perf_counter()
            action = self.act(obs, deterministic=False)
            t2 = time.perf_counter()
            step = env.step(action)
            t3 = time.perf_counter()
            self._buffer.add(obs, action, step)
            replay_s += time.perf_counter() - t3
            act_s, env_s = act_s + t2 - t1, env_s + t3 - t2
            self.view.update(obs)
            self._returns += step.team_reward.detach().cpu().double()
            self._obs = step.obs
            done = step.done
            if bool(done.any()):
                finished += self._returns[done.cpu()].tolist()
                self._returns[done.cpu()] = 0.0
                t1 = time.perf_counter()
                self._obs = env.reset_envs(done, seed=self._next_reset_seed())
                env_s += time.perf_counter() - t1
        return {
            "agent_steps": steps * env.num_envs * env.spec.n_agents,
            "env_steps": steps * env.num_envs,
            "returns": finished,
            "env_s": env_s,
            "act_s": act_s,
            "replay_s": replay_s,
            "t0": t0,
        }

    def update(self, batch: dict[str, Any]) -> dict[str, float]:
        """One gradient step on critic and actor (once the buffer holds ``warmup_frac`` of its
        capacity), then the soft target update; returns losses and timings."""
        assert self._buffer is not None
        t1 = time.perf_counter()
        self.agent_steps += int(batch["agent_steps"])
        metrics: dict[str, float] = {}
        sample_s = 0.0
        warm = max(1, int(self.cfg.warmup_frac * self._buffer.capacity))
        if len(self._buffer) >= warm:
            rows = self._buffer.sample(self.cfg.batch_size, self.sample_gen)
            sample_s = time.perf_counter() - t1
            metrics = self.gradient_step(rows)
            self.updates += 1
        t2 = time.perf_counter()
        metrics.update(
            {
                "time/env_s": float(batch["env_s"]),
                "time/policy_forward_s": float(batch["act_s"]),
                "time/replay_s": float(batch["replay_s"]) + sample_s,
                "time/update_s": t2 - t1,
                "perf/agent_steps_per_s": batch["agent_steps"] / max(t2 - batch["t0"], 1e-9),
                "replay/rows": float(len(self._buffer)),
            }
        )
        if batch["returns"]:
            metrics["train/episode_return"] = sum(batch["returns"]) / len(batch["returns"])
        return metrics

    def _reward(self, t: Transitions) -> Tensor:
        if self.cfg.reward == "team":
            n = t.reward.shape[1]
            return (t.team_reward / n).unsqueeze(1).expand_as(t.reward) * self.cfg.reward_scale
        return t.reward * self.cfg.reward_scale

    def _q(self, net: GroupNets, view: EntityView, all_act: Tensor, own_act: Tensor) -> Tensor:
        q, _ = net(critic_view(view, all_act, own_act), self.view.policy_groups)
        return q.squeeze(-1)  # [M, N]

    def gradient_step(self, t: Transitions) -> dict[str, float]:
        """Critic ([HAMA] Eq. 1), actor ([HAMA] Eq. 2) and target updates on ``t``."""
        cfg = self.cfg
        k = self.spec.n_discrete
        t0 = time.perf_counter()
        view, next_view = self.view(t.obs), self.view(t.next_obs)
        a_buf = action_vector(t.action, k).float()
        with torch.no_grad():
            # a'_j = μ'(o'_j): the target actors' deterministic actions
            logits, pre, _ = self._policy(t.next_obs, self.target_actor)
            parts = []
            if k:
                parts.append(gumbel_softmax_st(logits, self._mask(t.next_obs), 1.0, None)[0])
            parts.append(torch.tanh(pre))
            a_next = torch.cat(parts, -1)
            q_next = self._q(self.target_critic, next_view, a_next, a_next)
            alive = (~t.terminated).float().unsqueeze(1)
            # y_i = r_i + γ Q'_i(x', a'_1 … a'_N), no bootstrap at a terminal state ([HAMA] Eq. 1)
            y = self._reward(t) + cfg.gamma * alive * q_next
        q = self._q(self.critic, view, a_buf, a_buf)
        critic_loss = (q - y).pow(2).mean()
        t1 = time.perf_counter()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        c_norm = nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
        self.critic_opt.step()
        t2 = time.perf_counter()

        logits, pre, _ = self._policy(t.obs)
        parts = []
        if k:  # straight-through Gumbel-softmax: a one-hot action with ∂/∂logits ([GS])
            sample, _ = gumbel_softmax_st(
                logits, self._mask(t.obs), cfg.gumbel_tau, self.sample_gen
            )
            parts.append(sample)
        parts.append(torch.tanh(pre))
        own = torch.cat(parts, -1)
        # the actor's gradient flows through the critic to the action; the critic's own weight
        # gradients are not needed here (they were cleared before its next step anyway)
        self.critic.requires_grad_(False)
        try:
            q_pi = self._q(self.critic, view, a_buf, own)
            # ∇θ J = E[∇θ μ(o_i) ∇a_i Q_i(x, a_1 … a_i = μ(o_i) … a_N)]   ([HAMA] Eq. 2)
            mask = self._mask(t.obs)
            allowed = logits if mask is None else logits.masked_fill(~mask, 0.0)
            reg = pre.pow(2).mean() if pre.numel() else pre.new_zeros(())
            if k:
                reg = reg + allowed.pow(2).mean()
            actor_loss = -q_pi.mean() + 1e-3 * reg  # MADDPG reference: 1e-3 · pre-activation²
            t3 = time.perf_counter()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
        finally:
            self.critic.requires_grad_(True)
        a_norm = nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.max_grad_norm)
        self.actor_opt.step()

        with torch.no_grad():  # θ' ← τ θ + (1 − τ) θ'   ([DDPG] §7)
            for net, target in ((self.actor, self.target_actor), (self.critic, self.target_critic)):
                for p, tp in zip(net.parameters(), target.parameters(), strict=True):
                    tp.lerp_(p, cfg.tau)
        t4 = time.perf_counter()
        return {
            # forward: targets, critic and actor losses; backward: gradients, Adam, soft update
            "time/update_forward_s": (t1 - t0) + (t3 - t2),
            "time/update_backward_s": (t2 - t1) + (t4 - t3),
            "loss/critic": float(critic_loss.detach()),
            "loss/actor": float(actor_loss.detach()),
            "value/q_mean": float(q.detach().mean()),
            "critic/grad_norm": float(c_norm),
            "policy/grad_norm": float(a_norm),
        }

    def warm_start(
        self, env: MultiAgentEnv, teacher: Any, epochs: int, seed: int, keep_prior: bool
    ) -> dict[str, float]:
        """Not offered: HAMA learns from scratch (as in the seed)."""
        raise ScenarioError(f"--warm-start is not available for {self.name}; train without it")

    def _next_reset_seed(self) -> int:
        """The next training-stream seed (``core.seeding``; never a validation or test seed)."""
        self._episodes += 1
        return stream_seed(self.seed, "train", self.updates * 1_009 + self._episodes)

    # -- attention ------------------------------------------------------------------------------
    @torch.no_grad()
    def attention(self, obs: Observation) -> Attention:
        """The actor's inter-agent ``[B, N, G, E]`` and inter-group ``[B, N, G]`` weights."""
        _, _, att = self._policy(obs.to(self.device))
        if att is None:
            raise ScenarioError(f"{self.name} has no attention (no HGAT)")
        return att

    # -- checkpoints ----------------------------------------------------------------------------
    def _extra_shapes(self) -> dict[str, Any]:
        """Sizes beyond the spec's that the weights depend on."""
        return {"view": self.view.name, "n_policy_groups": self.n_policy, "kinds": self.view.kinds}

    def state(self) -> dict[str, Any]:
        """Everything a checkpoint holds (tensors and plain values).  The replay buffer is not
        saved (it can take gigabytes): a resumed run refills it before learning again."""
        return {
            **learner_state(
                self.checkpoint_format,
                self.cfg,
                self.spec,
                SHAPE_FIELDS,
                self.seed,
                self.agent_steps,
                self.updates,
                structure=self._extra_shapes(),
            ),
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "target_actor": self.target_actor.state_dict(),
            "target_critic": self.target_critic.state_dict(),
            "view": self.view.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "rng": {"explore": self.explore_gen.get_state(), "sample": self.sample_gen.get_state()},
            "meta": plain_meta(self.meta),
        }

    def save(self, path: str | Path) -> None:
        """Write the checkpoint atomically, then its sidecar JSON (``path`` with ``.json``)."""
        save_learner(path, self.state(), self.name, self.meta, sidecar_fields=("structure",))

    def load(self, path: str | Path, scenario_hash: str | None = None) -> None:
        """Read a checkpoint (``torch.load(weights_only=True)``) into this learner.

        Raises:
            ScenarioError: another controller's checkpoint, shapes or structure that differ,
                or other hyper-parameters.
        """
        state = self.check_checkpoint(path, self.spec, scenario_hash)
        if state["structure"] != self._extra_shapes():
            raise ScenarioError(
                f"{path}: checkpoint structure {state['structure']} does not fit this env "
                f"({self._extra_shapes()}): the number of agent groups or the view differs"
            )
        check_same_config(path, state, self)
        names = ("actor", "critic", "target_actor", "target_critic", "view")
        parts = {name: getattr(self, name) for name in (*names, "actor_opt", "critic_opt")}
        gens = {"explore": self.explore_gen, "sample": self.sample_gen}
        load_parts(path, state, self, parts, gens)

    @classmethod
    def checkpoint_checks(cls) -> dict[str, Any]:
        """What ``check_checkpoint`` requires of this controller's checkpoints."""
        return {
            "fmt": cls.checkpoint_format,
            "what": cls.title,
            "config_class": HAMAConfig,
            "shape_fields": SHAPE_FIELDS,
            "dict_keys": ("structure",),
            "unreadable": "",
        }

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        spec: AgentSpec,
        device: torch.device | str = "cpu",
        scenario_hash: str | None = None,
        view: nn.Module | None = None,
    ) -> HAMA:
        """A learner built with the checkpoint's hyper-parameters and loaded from it
        (``spec.n_agents`` may differ: the actor is shared within each group)."""
        return super().from_checkpoint(path, spec, device, scenario_hash, view=view)
