"""What the value-based learners (DQN, DGN, LToS) share: configuration, ε-greedy acting over a
:class:`~gridmarl.controllers.common.discrete.DiscretizedAction`, replay collection, the
minibatch loop with a soft target update, checkpoints.

The algorithm files (``controllers/dqn.py``, ``dgn.py``, ``ltos.py``) hold only their
networks and their losses (:meth:`QLearner.build`, :meth:`QLearner.td_loss`); this module is
the cleanrl-``dqn.py`` skeleton they have in common:

* acting: ``a_i = argmax_a Q_i(o, a)`` over the allowed actions (the observation's mask), or,
  while training, a uniformly random allowed action with probability ε (ε-greedy, Mnih et al.
  2015); ε = max(ε_min, ε_0 · decay^episodes), decayed once per finished episode as in DGN's
  code (LToS seed Table 5: ε / decay / minimum);
* collection: ``steps_per_collect`` steps of every env into a
  :class:`~gridmarl.controllers.common.replay.ReplayBuffer` (one row = one step of all agents);
* update: ``sample_size`` rows drawn with *one* index set for all agents (the seed's
  "unified pseudo random number generator", §A.1), split into minibatches of ``batch_size``,
  one Adam step each on the squared TD error, then the soft target update
  ``θ' ← τ θ + (1 − τ) θ'`` (seed Alg. 1 line 23; Table 5 τ);
* observations: ``x_i = concat(local_i, flatten(forecast_i))`` normalised by running
  statistics that are updated only while the buffer holds fewer than ``norm_rows`` rows, then
  frozen (a moving input scale would make the TD targets non-stationary).
* pair features (``AgentSpec.pair_dim``, ``Observation.pair``): with ``action_head =
  "neighbours"`` each choice's features are normalised the same way (one statistic per
  feature, shared by every choice) and appended to ``x_i`` flattened, ``[K · pair_dim]``; the
  pointer head scores choice ``k`` with them (``DGNNet``), so the per-choice cost an env
  knows (a routing neighbour's delay to the packet's destination) reaches the Q-value on any
  graph.

Checkpoints hold the networks, the targets, the optimisers, the normaliser, the counters and the
generators, not the replay buffer: ``--resume`` continues the schedules and the weights and
refills the buffer from new episodes.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from gridmarl.controllers.common.checkpoint import (
    CheckpointedLearner,
    check_same_config,
    learner_state,
    load_parts,
    plain_meta,
    save_learner,
)
from gridmarl.controllers.common.demonstrations import (
    collect_demonstrations,
    demo_updates,
    large_margin_loss,
)
from gridmarl.controllers.common.discrete import DiscretizedAction
from gridmarl.controllers.common.neighbourhood import Neighbourhood
from gridmarl.controllers.common.normalizers import RunningMeanStd
from gridmarl.controllers.common.options import reject_unknown_options
from gridmarl.controllers.common.replay import ReplayBuffer, Transitions
from gridmarl.core.controller import Trainable
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.errors import ScenarioError
from gridmarl.core.seeding import make_generator, stream_seed, sub_seed
from gridmarl.core.types import Action, AgentSpec, Observation

#: spec fields that fix a weight shape (``n_agents`` and the graph do not: the networks are
#: shared by all agents and attend over any neighbourhood; with ``action_head="neighbours"``
#: neither does ``n_discrete``, and ``pair_dim`` does: the pointer head reads the pair features)
SHAPE_FIELDS = ("local_dim", "forecast_dim", "n_discrete", "n_continuous")


def shape_fields(action_head: str) -> tuple[str, ...]:
    """The spec fields a checkpoint must match for this Q head."""
    if action_head == "neighbours":
        return (*(f for f in SHAPE_FIELDS if f != "n_discrete"), "pair_dim")
    return SHAPE_FIELDS


@dataclass
class QConfig:
    """Hyper-parameters of DQN / DGN (and LToS's low level); ``scenario.train.options``
    overrides any by name.  Defaults: the seed's Table 5, *routing* column, except where noted;
    the *traffic* column is ``gamma 0.8, eps_start 0.4, eps_decay 0.9, eps_min 0.05,
    hidden 32, heads 1, sample_size 1000, batch_size 20, capacity 10000`` (a scenario sets it
    in ``train.options``, docs/controllers/ltos.md).

    Attributes:
        num_envs: parallel envs ``B`` collected from.
        steps_per_collect: env steps per collect round (then one update round) [steps].
        capacity: replay rows kept (a row = one step of all agents of one env) [rows]; the seed
            keeps 200,000, the default 50,000 bounds the preallocated memory.
        learning_starts: rows in the buffer before the first update [rows].
        sample_size: rows drawn per update round (Table 5 "sample size").
        batch_size: rows per gradient step (Table 5 "batch size").
        lr: Adam learning rate.
        gamma: discount γ per step [-].
        tau: soft target update τ [-].
        eps_start: ε at the start [-].
        eps_decay: ε multiplier per finished episode [-].
        eps_min: floor on ε [-].
        hidden: MLP units.
        encoder_layers: encoder MLP layers (ReLU).
        heads: attention heads of a DGN convolution.
        conv_layers: DGN convolution layers.
        action_levels: levels per continuous action dimension (``DiscretizedAction``).
        reward_scale: multiplies the env reward used for learning [-].
        max_grad_norm: global gradient-norm clip (not in the seed; large, a guard).
        norm_rows: rows after which the observation statistics freeze [rows].
        action_head: ``table`` (one Q output per action) or ``neighbours`` (DGN, LToS: the
            env's discrete choice ``k`` is neighbour slot ``k`` of ``AgentSpec.neighbors``,
            scored from the pair (own features, that neighbour's features), so the weights do
            not depend on the number of neighbours: a policy runs on another graph).
        demo_margin: the large-margin ``l(a_E, a)`` of a warm start from demonstrations
            (DQfD, Hester et al. 2018, Eq. 2: 0.8 for every ``a ≠ a_E``) [scaled reward units].
        demo_weight: the weight ``λ₂`` of the large-margin loss ``J_E`` beside the TD loss on
            demonstrated rows (DQfD: 1.0) [-].
        demo_share: after a warm start, demonstration minibatches (TD + margin loss) per
            update round, as a share of its learning minibatches (rounded up; 0 = none after
            the pre-training) [-].
    """

    num_envs: int = 8
    steps_per_collect: int = 10
    capacity: int = 50_000
    learning_starts: int = 200
    sample_size: int = 10
    batch_size: int = 10
    lr: float = 1e-3
    gamma: float = 0.99
    tau: float = 0.1
    eps_start: float = 0.2
    eps_decay: float = 0.98
    eps_min: float = 0.0
    hidden: int = 128
    encoder_layers: int = 2
    heads: int = 8
    conv_layers: int = 1
    action_levels: int = 5
    reward_scale: float = 1.0
    max_grad_norm: float = 10.0
    norm_rows: int = 2_000
    action_head: Literal["table", "neighbours"] = "table"
    demo_margin: float = 0.8
    demo_weight: float = 1.0
    demo_share: float = 0.25

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> QConfig:
        """Build from a mapping, rejecting unknown names with the list of allowed ones."""
        reject_unknown_options(cls, options, cls.__name__)
        cfg = cls(**options)
        if cfg.batch_size > cfg.sample_size or cfg.sample_size < 1:
            raise ScenarioError(
                f"train.options: batch_size ({cfg.batch_size}) must be ≤ sample_size "
                f"({cfg.sample_size}) and sample_size ≥ 1"
            )
        if min(cfg.demo_margin, cfg.demo_weight, cfg.demo_share) < 0:
            raise ScenarioError(
                f"train.options: demo_margin ({cfg.demo_margin}), demo_weight "
                f"({cfg.demo_weight}) and demo_share ({cfg.demo_share}) must be ≥ 0"
            )
        return cfg


def encoder(in_dim: int, hidden: int, layers: int) -> nn.Sequential:
    """The observation encoder: ``layers`` Linear + ReLU of width ``hidden`` (Table 5)."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.ReLU()]
    return nn.Sequential(*mods)


def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``θ' ← τ θ + (1 − τ) θ'`` for every parameter (seed Alg. 1 line 23); buffers copied."""
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters(), strict=True):
            t.mul_(1.0 - tau).add_(o, alpha=tau)
        for t, o in zip(target.buffers(), online.buffers(), strict=True):
            t.copy_(o)


def features(obs: Observation) -> Tensor:
    """``[B, N, local_dim + H·f]``: an agent's own observation, flattened."""
    b, n = obs.batch_shape
    return torch.cat([obs.local, obs.forecast.reshape(b, n, -1)], dim=-1).float()


def masked_max(q: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """``max`` and ``argmax`` of ``q [..., A]`` over the allowed actions ``mask [..., A]``."""
    return q.masked_fill(~mask, float("-inf")).max(dim=-1)


@dataclass
class QBatch:
    """What ``collect`` hands to ``update``.

    Attributes:
        agent_steps: agent-steps simulated (steps × envs × agents).
        env_s: wall time in ``env.step`` / resets [s].
        forward_s: wall time choosing actions [s].
        replay_s: wall time writing the buffer [s].
        episode_returns: team returns of the episodes that ended [reward units].
        t_start: ``time.perf_counter()`` at the start of the collection [s].
    """

    agent_steps: int
    env_s: float
    forward_s: float
    replay_s: float
    episode_returns: list[float]
    t_start: float


@dataclass
class _Flight:
    """The episodes in flight on one env between collections."""

    env: MultiAgentEnv
    obs: Observation
    running: Tensor
    t: int  # steps since the last reset [steps]


class QLearner(CheckpointedLearner, Trainable):
    """Parameter-shared value learner (the skeleton; see the module docstring).

    Subclasses set ``name``, ``config_class``, ``checkpoint_format`` and implement
    :meth:`build` and :meth:`q_values`; they may override :meth:`td_loss`,
    :meth:`extras_for_step`, :meth:`after_update` and the checkpoint hooks.

    Args:
        spec: the env's agent spec (feature and action sizes; the graph of this env).
        config: hyper-parameters.
        device: where the networks and the replay buffer live.
        seed: seeds the weights, ε-greedy draws and replay sampling.
    """

    name: ClassVar[str] = "qlearner"
    config_class: ClassVar[type] = QConfig
    checkpoint_format: ClassVar[str] = ""
    what: ClassVar[str] = ""

    def __init__(
        self, spec: AgentSpec, config: QConfig, device: torch.device | str = "cpu", seed: int = 0
    ) -> None:
        self.spec = spec
        self.cfg = config
        self.device = torch.device(device)
        self.seed = int(seed)
        self.meta: dict[str, Any] = {}
        torch.manual_seed(sub_seed(self.seed, 0))
        self.actions = DiscretizedAction(spec, config.action_levels, device=self.device)
        self.hood = Neighbourhood(spec.neighbors, self.device)
        self.check_head(spec)
        self.in_dim = spec.local_dim + spec.forecast_len * spec.forecast_dim
        self.obs_norm = RunningMeanStd((self.in_dim,)).to(self.device)
        # the env's per-choice features, read by a pointer head only (module docstring)
        self.pair_dim = spec.pair_dim if config.action_head == "neighbours" else 0
        self.pair_norm = RunningMeanStd((max(self.pair_dim, 1),)).to(self.device)
        self.qnet: nn.Module = self.build().to(self.device)
        self.target = copy.deepcopy(self.qnet)
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.qnet.parameters(), lr=config.lr)
        self.explore_gen = make_generator(sub_seed(self.seed, 1), self.device)
        self.replay_gen = make_generator(sub_seed(self.seed, 2), self.device)
        self.replay: ReplayBuffer | None = None
        self._flight: _Flight | None = None
        self.agent_steps = 0
        self.updates = 0
        self.episodes = 0  # finished episodes (drives ε)
        self._resets = 0
        self._act_t = 0  # steps since ``reset`` when acting outside training [steps]

    def check_head(self, spec: AgentSpec) -> None:
        """Refuse ``action_head="neighbours"`` where the actions are not the neighbour slots.

        Raises:
            ScenarioError: naming the option and the sizes.
        """
        if self.cfg.action_head != "neighbours":
            return
        k = int(spec.neighbors.shape[1])
        if spec.n_continuous or spec.n_discrete != k:
            raise ScenarioError(
                f"train.options.action_head: 'neighbours' needs a discrete action with one "
                f"choice per neighbour slot (n_discrete = K = {k}, no continuous part); this env "
                f"has n_discrete={spec.n_discrete}, n_continuous={spec.n_continuous}; use 'table'"
            )

    # -- the algorithm's parts --------------------------------------------------------------------
    def build(self) -> nn.Module:
        """The Q-network (``in_dim`` features in, ``actions.n_actions`` values out)."""
        raise NotImplementedError

    def q_values(self, net: nn.Module, x: Tensor, extra: dict[str, Tensor]) -> Tensor:
        """``Q [M, N, A]`` of ``net`` for normalised features ``x [M, N, F]``."""
        raise NotImplementedError

    def extras_for_step(self, obs: Observation, t: Tensor, explore: bool) -> dict[str, Tensor]:
        """Per-agent values stored with a step and fed to ``q_values`` (LToS: ``w_in``)."""
        return {}

    def extra_shapes(self) -> dict[str, tuple[int, ...]]:
        """The replay extras' per-agent shapes (match :meth:`extras_for_step`)."""
        return {}

    def learning_reward(self, rows: Transitions) -> Tensor:
        """``[M, N]`` reward the Q-values are regressed on (DQN / DGN: the agent's own)."""
        return rows.reward

    def next_extras(self, rows: Transitions, x_next: Tensor) -> dict[str, Tensor]:
        """The extras of the next observation in a TD target (LToS: the target actor's)."""
        return {}

    def after_update(self, batch: QBatch) -> dict[str, float]:
        """Called after each update round (LToS: the high-level update)."""
        return {}

    # -- acting -----------------------------------------------------------------------------------
    @property
    def epsilon(self) -> float:
        """Current ε of ε-greedy exploration [-]."""
        c = self.cfg
        return max(c.eps_min, c.eps_start * c.eps_decay**self.episodes)

    def reset(self, env: MultiAgentEnv) -> None:
        """Adopt ``env``'s graph (a trained policy runs on any graph)."""
        if env.spec.n_agents != self.spec.n_agents or not torch.equal(
            env.spec.neighbors.cpu(), self.spec.neighbors.cpu()
        ):
            self.check_head(env.spec)
            self.spec = env.spec
            self.hood = Neighbourhood(env.spec.neighbors, self.device)
            self.actions = DiscretizedAction(env.spec, self.cfg.action_levels, self.device)
        self._act_t = 0

    def _x(self, obs: Observation) -> Tensor:
        """``[B, N, in_dim (+ K · pair_dim)]``: the normalised features, then (pointer head with
        pair features) each choice's normalised pair features, flattened."""
        x = self.obs_norm.normalize(features(obs).to(self.device))
        if not self.pair_dim:
            return x
        if obs.pair is None:
            raise ScenarioError(
                f"{self.what}: trained with {self.pair_dim} features per (agent, choice) pair "
                "but the env gives none"
            )
        p = self.pair_norm.normalize(obs.pair.to(self.device).float())
        return torch.cat([x, p.flatten(-2)], dim=-1)

    def _update_norms(self, obs: Observation) -> None:
        """Feed the running statistics (observation, and pair features when read)."""
        self.obs_norm.update(features(obs).to(self.device))
        if self.pair_dim and obs.pair is not None:
            self.pair_norm.update(obs.pair.to(self.device).float().reshape(-1, self.pair_dim))

    @torch.no_grad()
    def greedy(self, obs: Observation, extra: dict[str, Tensor]) -> Tensor:
        """``[B, N]`` greedy action indices."""
        q = self.q_values(self.qnet, self._x(obs), extra)
        return masked_max(q, self.actions.mask(obs).to(q.device))[1]

    def choose(self, obs: Observation, extra: dict[str, Tensor], explore: bool) -> Tensor:
        """``[B, N]`` action indices: greedy, or ε-greedy when ``explore``."""
        idx = self.greedy(obs, extra)
        if explore and self.epsilon > 0:
            mask = self.actions.mask(obs).to(self.device)
            b, n, a = mask.shape
            r = torch.rand(b, n, generator=self.explore_gen, device=self.device)
            w = mask.float().reshape(b * n, a)
            rand = torch.multinomial(w, 1, generator=self.explore_gen).reshape(b, n)
            idx = torch.where(r < self.epsilon, rand, idx)
        return idx

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """The joint action ``[B, N]`` (greedy when ``deterministic``, else ε-greedy)."""
        t = torch.full((obs.batch_shape[0],), self._act_t, device=self.device)
        extra = self.extras_for_step(obs, t, explore=not deterministic)
        self._act_t += 1
        return self.actions.to_action(self.choose(obs, extra, explore=not deterministic))

    # -- learning ---------------------------------------------------------------------------------
    def _next_reset_seed(self) -> int:
        """The training seed stream (``core.seeding``), never a validation or test seed."""
        self._resets += 1
        return stream_seed(self.seed, "train", self.updates * 1_009 + self._resets)

    def collect(self, env: MultiAgentEnv, budget: int) -> QBatch:
        """``steps_per_collect`` ε-greedy steps of every env into the replay buffer (the first
        call on an env resets it; later calls continue its episodes)."""
        cfg = self.cfg
        if self._flight is None or self._flight.env is not env:
            if self.replay is None:
                self.replay = ReplayBuffer(
                    env.spec, cfg.capacity, self.device, extras=self.extra_shapes()
                )
            obs = env.reset(seed=self._next_reset_seed())
            running = torch.zeros(env.num_envs, dtype=torch.float64, device=self.device)
            self._flight = _Flight(env, obs, running, 0)
        fl = self._flight
        t_start = time.perf_counter()
        env_s = fwd_s = rep_s = 0.0
        returns: list[float] = []
        for _ in range(cfg.steps_per_collect):
            t0 = time.perf_counter()
            if len(self.replay) < cfg.norm_rows:
                self._update_norms(fl.obs)
            t = torch.full((env.num_envs,), fl.t, device=self.device)
            with torch.no_grad():
                extra = self.extras_for_step(fl.obs, t, explore=True)
                idx = self.choose(fl.obs, extra, explore=True)
            action = self.actions.to_action(idx)
            t1 = time.perf_counter()
            step = env.step(action)
            t2 = time.perf_counter()
            self.replay.add(fl.obs, Action(discrete=idx, continuous=action.continuous), step, extra)
            t3 = time.perf_counter()
            fwd_s, env_s, rep_s = fwd_s + t1 - t0, env_s + t2 - t1, rep_s + t3 - t2
            fl.running += step.team_reward.to(fl.running.dtype)
            fl.obs, fl.t = step.obs, fl.t + 1
            done = step.done
            if bool(done.any()):
                returns += fl.running[done].tolist()
                fl.running[done] = 0.0
                self.episodes += int(done.sum())
                fl.obs = env.reset_envs(done, seed=self._next_reset_seed())
                fl.t = 0  # every shipped domain ends all envs together (architecture.md)
                env_s += time.perf_counter() - t3
        per = cfg.steps_per_collect * env.num_envs * env.spec.n_agents
        return QBatch(per, env_s, fwd_s, rep_s, returns, t_start)

    def td_loss(self, rows: Transitions) -> tuple[Tensor, dict[str, float]]:
        """Mean squared TD error over agents and rows (seed Alg. 1 lines 16-18):
        ``y_i = r_i + γ (1 − terminated) max_a' Q'_i(o', a')``, ``L = (y_i − Q_i(o, a_i))²``."""
        x, x_next = self._x(rows.obs), self._x(rows.next_obs)
        extra = {k: rows.extras[k] for k in self.extra_shapes()}
        q = self.q_values(self.qnet, x, extra)
        q_taken = q.gather(-1, rows.action.discrete.unsqueeze(-1)).squeeze(-1)
        with torch.no_grad():
            q_next = self.q_values(self.target, x_next, self.next_extras(rows, x_next))
            v_next = masked_max(q_next, self.actions.mask(rows.next_obs).to(q_next.device))[0]
            alive = (~rows.terminated).float().unsqueeze(-1)
            y = self.learning_reward(rows) * self.cfg.reward_scale + self.cfg.gamma * alive * v_next
        loss = (y - q_taken).pow(2).mean()
        return loss, {"loss/td": float(loss.detach()), "q/mean": float(q_taken.mean().detach())}

    def update(self, batch: QBatch) -> dict[str, float]:
        """One update round: ``sample_size`` aligned rows in minibatches of ``batch_size``, an
        Adam step on each, the soft target update; then the subclass's ``after_update``."""
        cfg = self.cfg
        t0 = time.perf_counter()
        metrics: dict[str, float] = {}
        fwd_s = bwd_s = sample_s = 0.0
        if self.replay is not None and len(self.replay) >= max(cfg.learning_starts, 1):
            ts = time.perf_counter()
            rows = self.replay.sample(cfg.sample_size, self.replay_gen)  # one index set
            sample_s = time.perf_counter() - ts
            sums: dict[str, float] = {}
            count = 0
            for lo in range(0, cfg.sample_size, cfg.batch_size):
                part = _slice(rows, lo, lo + cfg.batch_size)
                tf = time.perf_counter()
                loss, stats = self.td_loss(part)
                tb = time.perf_counter()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                gn = nn.utils.clip_grad_norm_(self.qnet.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                fwd_s, bwd_s = fwd_s + tb - tf, bwd_s + time.perf_counter() - tb
                stats["loss/grad_norm"] = float(gn)
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
            demo = demo_updates(
                self.demo_step, self.demo_rows, cfg.demo_share, count, self.replay.kept
            )
            fwd_s, bwd_s = fwd_s + demo.pop("fwd_s"), bwd_s + demo.pop("bwd_s")
            soft_update(self.target, self.qnet, cfg.tau)
            metrics = {k: v / count for k, v in sums.items()} | demo
        metrics.update(self.after_update(batch))
        t1 = time.perf_counter()
        self.agent_steps += batch.agent_steps
        self.updates += 1
        metrics.update(
            {
                "time/env_s": batch.env_s,
                "time/policy_forward_s": batch.forward_s,
                "time/replay_s": batch.replay_s + sample_s,
                "time/update_forward_s": fwd_s,
                "time/update_backward_s": bwd_s,
                "time/update_s": t1 - t0,
                "perf/agent_steps_per_s": batch.agent_steps / max(t1 - batch.t_start, 1e-9),
                "train/epsilon": self.epsilon,
            }
        )
        if batch.episode_returns:
            metrics["train/episode_return"] = sum(batch.episode_returns) / len(
                batch.episode_returns
            )
        return metrics

    def margin_loss(self, rows: Transitions) -> Tensor:
        """DQfD's large-margin loss ``J_E`` (``common/demonstrations.large_margin_loss``,
        margin ``demo_margin``) of the Q-network on demonstrated rows."""
        x = self._x(rows.obs)
        extra = {k: rows.extras[k] for k in self.extra_shapes()}
        q = self.q_values(self.qnet, x, extra)
        mask = self.actions.mask(rows.obs).to(q.device)
        return large_margin_loss(q, rows.action.discrete, mask, self.cfg.demo_margin)

    def demonstrate(
        self, env: MultiAgentEnv, teacher: Any, seed: int, keep_prior: bool
    ) -> dict[str, float]:
        """Store one teacher episode of every env of ``env`` as the kept first rows of a new
        replay buffer (``common/demonstrations.collect_demonstrations``); from then on every
        update mixes them in (``demo_share``).  The same seed and teacher give the same rows
        (``--resume`` demonstrates again); the observation statistics are fed from them as
        collection would.

        Returns:
            ``warm/teacher_return`` (the demonstrated episodes' mean team return with the
            discretised actions) [reward units] and ``warm/rows``.
        """
        cfg = self.cfg
        self.reset(env)
        self.replay = ReplayBuffer(env.spec, cfg.capacity, self.device, extras=self.extra_shapes())

        def observe(obs: Observation) -> Observation:
            if len(self.replay) < cfg.norm_rows:
                self._update_norms(obs)
            return obs

        def extras(obs: Observation, t: int) -> dict[str, Tensor]:
            tt = torch.full((env.num_envs,), t, device=self.device)
            return self.extras_for_step(obs, tt, explore=False)

        ret = collect_demonstrations(
            env,
            teacher,
            self.actions,
            self.replay,
            seed,
            keep_prior,
            stored=lambda idx, action: Action(discrete=idx, continuous=action.continuous),
            extras=extras,
            observe=observe,
        )
        return {"warm/teacher_return": ret, "warm/rows": float(len(self.replay))}

    def demo_step(self, rows: Transitions) -> dict[str, float]:
        """One Adam step on demonstrated rows: the TD loss plus ``demo_weight`` ×
        :meth:`margin_loss` (DQfD's ``J(Q) = J_DQ + λ₂ J_E``, Hester et al. 2018 Eq. 3, without
        the n-step and L2 terms).  Returns both losses and the forward / backward times [s]."""
        t0 = time.perf_counter()
        td, _ = self.td_loss(rows)
        margin = self.margin_loss(rows)
        t1 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        (td + self.cfg.demo_weight * margin).backward()
        nn.utils.clip_grad_norm_(self.qnet.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()
        t2 = time.perf_counter()
        return {
            "td": float(td.detach()),
            "margin": float(margin.detach()),
            "fwd_s": t1 - t0,
            "bwd_s": t2 - t1,
        }

    def demo_rows(self) -> Transitions:
        """``batch_size`` demonstrated rows drawn uniformly (the learner's replay generator)."""
        assert self.replay is not None and self.replay.kept
        idx = torch.randint(
            0,
            self.replay.kept,
            (self.cfg.batch_size,),
            generator=self.replay_gen,
            device=self.replay_gen.device,
        )
        return self.replay.rows(idx.to(self.device))

    def warm_start(
        self, env: MultiAgentEnv, teacher: Any, epochs: int, seed: int, keep_prior: bool
    ) -> dict[str, float]:
        """Learn from the teacher's demonstrations before learning from its own (DQfD's
        pre-training phase, Hester et al. 2018 §3): :meth:`demonstrate`, then ``epochs``
        shuffled passes over the demonstrated rows in minibatches of ``batch_size`` on
        :meth:`demo_step`, with the soft target update after every ``sample_size`` rows as in
        :meth:`update`.  ε and the counters start from zero after it.

        Returns:
            what :meth:`demonstrate` returns, ``warm/td_loss`` and ``warm/margin_loss`` of the
            last minibatch, ``warm/agreement`` (share of the demonstrated actions the greedy Q
            picks afterwards) [-] and ``warm/gradient_steps``.
        """
        cfg = self.cfg
        out = self.demonstrate(env, teacher, seed, keep_prior)
        assert self.replay is not None
        rows = self.replay.kept
        steps = since_target = 0
        done = {"td": 0.0, "margin": 0.0}
        gen = self.replay_gen
        for _ in range(epochs):
            perm = torch.randperm(rows, generator=gen, device=gen.device).to(self.device)
            for lo in range(0, rows, cfg.batch_size):
                part = self.replay.rows(perm[lo : lo + cfg.batch_size])
                done = self.demo_step(part)
                steps += 1
                since_target += int(part.reward.shape[0])
                if since_target >= cfg.sample_size:
                    soft_update(self.target, self.qnet, cfg.tau)
                    since_target = 0
        agree = 0.0
        for lo in range(0, rows, cfg.sample_size):
            part = self.replay.rows(
                torch.arange(lo, min(lo + cfg.sample_size, rows), device=self.device)
            )
            pick = self.greedy(part.obs, {k: part.extras[k] for k in self.extra_shapes()})
            agree += float((pick == part.action.discrete).float().sum())
        return {
            **out,
            "warm/td_loss": done["td"],
            "warm/margin_loss": done["margin"],
            "warm/agreement": agree / (rows * env.spec.n_agents),
            "warm/gradient_steps": float(steps),
        }

    # -- checkpoints ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything a checkpoint holds (tensors and plain Python values only); ``actor`` is
        the acting Q-network."""
        return {
            **learner_state(
                self.checkpoint_format,
                self.cfg,
                self.spec,
                shape_fields(self.cfg.action_head),
                self.seed,
                self.agent_steps,
                self.updates,
            ),
            "episodes": self.episodes,
            "actor": self.qnet.state_dict(),
            "target": self.target.state_dict(),
            "obs_norm": self.obs_norm.state_dict(),
            "pair_norm": self.pair_norm.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": {
                "explore": self.explore_gen.get_state(),
                "replay": self.replay_gen.get_state(),
            },
            "extra": self.extra_state(),
            "meta": plain_meta(self.meta),
        }

    def extra_state(self) -> dict[str, Any]:
        """The subclass's further checkpoint content (LToS: the high level)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state`."""

    def save(self, path: str | Path) -> None:
        """Write the checkpoint atomically, then its sidecar JSON (``path`` with ``.json``)."""
        save_learner(path, self.state(), self.name, self.meta)

    def load(self, path: str | Path, scenario_hash: str | None = None) -> None:
        """Read a checkpoint with ``torch.load(weights_only=True)``.

        Raises:
            ScenarioError: not this learner's checkpoint, shapes that differ, or another
                scenario when ``scenario_hash`` is given.
        """
        state = type(self).check_checkpoint(path, self.spec, scenario_hash)
        check_same_config(path, state, self)
        parts = {
            "actor": self.qnet,
            "target": self.target,
            "obs_norm": self.obs_norm,
            "optimizer": self.optimizer,
        }
        if "pair_norm" in state:
            parts["pair_norm"] = self.pair_norm
        gens = {"explore": self.explore_gen, "replay": self.replay_gen}
        load_parts(path, state, self, parts, gens)
        self.episodes = int(state["episodes"])
        self.load_extra_state(state["extra"])

    @classmethod
    def checkpoint_checks(cls) -> dict[str, Any]:
        """What ``check_checkpoint`` requires of this learner's checkpoints."""
        return {
            "fmt": cls.checkpoint_format,
            "what": cls.what,
            "config_class": cls.config_class,
            # the shape fields depend on the action head: the hyper-parameters are read first
            "shape_fields": lambda cfg: shape_fields(cfg.action_head),
        }


def _slice(rows: Transitions, lo: int, hi: int) -> Transitions:
    """Rows ``lo … hi − 1`` of a sample (every field sliced on its first dimension)."""

    def obs(o: Observation) -> Observation:
        return Observation(
            local=o.local[lo:hi],
            forecast=o.forecast[lo:hi],
            state=o.state[lo:hi],
            global_=o.global_[lo:hi],
            action_mask=None if o.action_mask is None else o.action_mask[lo:hi],
            pair=None if o.pair is None else o.pair[lo:hi],
        )

    return Transitions(
        obs=obs(rows.obs),
        action=Action(rows.action.discrete[lo:hi], rows.action.continuous[lo:hi]),
        reward=rows.reward[lo:hi],
        team_reward=rows.team_reward[lo:hi],
        next_obs=obs(rows.next_obs),
        terminated=rows.terminated[lo:hi],
        truncated=rows.truncated[lo:hi],
        extras={k: v[lo:hi] for k, v in rows.extras.items()},
    )
