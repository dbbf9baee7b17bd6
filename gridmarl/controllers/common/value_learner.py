"""What off-policy, value-based learners over a finite action set share (HMF, MFQ, IQL).

A :class:`ValueLearner` is a ``core.learner.Learner``: ``collect`` steps ``cfg.num_envs`` envs
for ``train_every`` steps with ε-greedy actions from the learner's per-agent Q-values and
stores the joint transitions in ``controllers/common/replay.ReplayBuffer``; ``update`` then
makes ``gradient_steps`` minibatch steps on the subclass's loss and soft-updates the target
networks (θ̂ ← τ θ + (1 − τ) θ̂, as in line 16–17 of HMF's Algorithm 1 and cleanrl's
``dqn.py``).  Actions are the ``controllers/common/discrete.DiscretizedAction`` of the env's
action (discrete domains 1:1; energy's hybrid action as modes × levels); the replay buffer
stores the env's ``Action`` and the index is recovered exactly with ``index_of``.

A subclass provides the networks (:meth:`ValueLearner.build`: a dict of modules, the one named
``"actor"`` being what acts), the Q-values an agent acts on (:meth:`ValueLearner.q_values`),
the loss of a sampled minibatch (:meth:`ValueLearner.loss`), and optionally per-episode state
(:meth:`ValueLearner.on_episode_start`, e.g. HMF's IPC regrouping) and per-agent replay extras.

Observation features (every subclass): ``f_k = concat(norm(local_k), norm(forecast_k))``
``[B, N, local_dim + H·f]`` with running mean / std normalisers updated on the collected
observations (``controllers/common/normalizers.RunningMeanStd``).

Checkpoints: ``torch.save`` of plain tensors and values (``weights_only`` loadable), written
atomically with a sidecar JSON, refused with a ``ScenarioError`` when they do not fit the env.
The replay buffer is not saved (it can take gigabytes): a resumed run refills it before
learning again (``learning_starts``), so a resumed curve is not bit-identical to an
uninterrupted one; the weights, optimiser, normalisers, generators and progress are exact.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

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
from gridmarl.controllers.common.normalizers import RunningMeanStd
from gridmarl.controllers.common.options import reject_unknown_options
from gridmarl.controllers.common.replay import ReplayBuffer, Transitions
from gridmarl.core.controller import Trainable
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.errors import ScenarioError
from gridmarl.core.seeding import make_generator, stream_seed
from gridmarl.core.types import Action, AgentSpec, Observation

#: spec fields whose value fixes a weight shape (``n_agents`` does not: Q_LOC is shared)
SHAPE_FIELDS = (
    "local_dim",
    "forecast_dim",
    "state_dim",
    "global_dim",
    "n_discrete",
    "n_continuous",
)


@dataclass
class ValueConfig:
    """Hyper-parameters every value learner has (``scenario.train.options`` overrides them).

    The HMF seed's hyper-parameter table is in its appendix, which the seed text does not
    include; these defaults are ours, sized for CPU runs (the ε schedule is cleanrl
    ``dqn.py``'s; docs/controllers/hmf.md lists each one's source).

    Attributes:
        num_envs: parallel envs ``B`` stepped by ``collect``.
        train_every: env steps per ``collect`` (one ``update`` follows) [steps].
        gradient_steps: minibatch steps per ``update``.
        buffer_size: replay capacity [env-steps of all N agents].
        batch_size: rows per minibatch [env-steps].
        learning_starts: rows stored before the first gradient step [env-steps].
        lr: Adam learning rate.
        gamma: discount γ per step [-].
        tau: soft target update rate τ [-] (HMF Algorithm 1, lines 16–17).
        eps_start: ε of the ε-greedy exploration at the start [-].
        eps_end: ε after ``eps_fraction`` of the budget (kept afterwards) [-].
        eps_fraction: share of the budget over which ε falls linearly [-].
        hidden: width of the hidden layers.
        levels: levels per continuous action dimension (``DiscretizedAction``).
        max_grad_norm: global gradient-norm clip.
        reward_scale: multiplier on the rewards used for learning [-].
        demo_margin: the large-margin ``l(a_E, a)`` of learning from demonstrations after
            ``--warm-start`` (DQfD, Hester et al. 2018, Eq. 2: 0.8) [Q units].
        demo_weight: the weight ``λ₂`` of that loss beside the learner's own (DQfD: 1.0) [-].
        demo_share: after a warm start, demonstration minibatches per update as a share of
            its ``gradient_steps`` (rounded up; 0 = none after the pre-training) [-].
    """

    num_envs: int = 8
    train_every: int = 1
    gradient_steps: int = 1
    buffer_size: int = 5_000
    batch_size: int = 64
    learning_starts: int = 200
    lr: float = 5e-4
    gamma: float = 0.95
    tau: float = 0.01
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_fraction: float = 0.5
    hidden: int = 64
    levels: int = 5
    max_grad_norm: float = 10.0
    reward_scale: float = 1.0
    demo_margin: float = 0.8
    demo_weight: float = 1.0
    demo_share: float = 0.25

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> ValueConfig:
        """Build from a mapping, rejecting unknown names with the list of allowed ones."""
        reject_unknown_options(cls, options, cls.__name__)
        try:
            cfg = cls(**options)
            cfg.check()
        except (TypeError, ValueError) as exc:
            raise ScenarioError(f"train.options: {exc}") from None
        return cfg

    def check(self) -> None:
        """Raise ``ValueError`` naming a value outside its range."""
        positive = ("num_envs", "train_every", "gradient_steps", "buffer_size", "batch_size")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("gamma", "tau", "eps_start", "eps_end", "eps_fraction"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("demo_margin", "demo_weight", "demo_share"):
            if float(getattr(self, name)) < 0.0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class CollectBatch:
    """What ``collect`` hands to ``update``.

    Attributes:
        agent_steps: agent-steps simulated (steps × envs × agents).
        epsilon: the exploration rate used [-].
        reward_per_step: mean per-agent reward of the collected steps.
        episode_returns: team returns of the episodes that ended.
        t_start: ``time.perf_counter()`` when the collection began [s].
        env_s: time spent in ``env.step`` [s].
        act_s: time spent choosing actions [s].
        replay_s: time spent writing the replay buffer [s].
    """

    agent_steps: int
    epsilon: float
    reward_per_step: float
    episode_returns: list[float]
    t_start: float
    env_s: float
    act_s: float = 0.0
    replay_s: float = 0.0


def features(obs: Observation, local_norm: RunningMeanStd, fc_norm: RunningMeanStd) -> Tensor:
    """``f_k = concat(norm(local), norm(forecast) flattened)`` ``[B, N, local_dim + H·f]``."""
    b, n = obs.batch_shape
    fc = fc_norm.normalize(obs.forecast).reshape(b, n, -1)
    return torch.cat([local_norm.normalize(obs.local), fc], dim=-1)


def masked_argmax(q: Tensor, mask: Tensor) -> Tensor:
    """``[..., A]`` Q-values and allowed mask -> index of the best allowed action ``[...]``."""
    return q.masked_fill(~mask, float("-inf")).argmax(-1)


def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """θ̂ ← τ θ + (1 − τ) θ̂ on every parameter (HMF Algorithm 1, lines 16–17)."""
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters(), strict=True):
            t.lerp_(o, tau)


class ValueLearner(CheckpointedLearner, Trainable):
    """Base of the value-based off-policy learners (see the module docstring).

    Args:
        spec: the env's agent spec (fixes the weight shapes, not the number of agents).
        config: hyper-parameters (the subclass's ``config_class``).
        device: where the networks and the replay buffer live.
        seed: seeds the weights, the exploration and the minibatch draws.
    """

    name: ClassVar[str] = "value"
    label: ClassVar[str] = "value learner"  # in error messages
    checkpoint_format: ClassVar[str] = "gridmarl.value/1"
    config_class: ClassVar[type] = ValueConfig

    def __init__(
        self,
        spec: AgentSpec,
        config: Any = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        self.spec = spec
        self.cfg = config or self.config_class()
        self.cfg.check()
        self.device = torch.device(device)
        self.seed = int(seed)
        self.actions = DiscretizedAction(spec, self.cfg.levels, device=self.device)
        self.n_actions = self.actions.n_actions
        self.obs_dim = spec.local_dim + spec.forecast_len * spec.forecast_dim
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.nets = nn.ModuleDict(self.build()).to(self.device)
        self.target = copy.deepcopy(self.nets)
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.local_norm = RunningMeanStd((spec.local_dim,)).to(self.device)
        self.fc_norm = RunningMeanStd((spec.forecast_dim,)).to(self.device)
        self.optimizer = torch.optim.Adam(self.nets.parameters(), lr=self.cfg.lr)
        self.explore_gen = make_generator(self.seed + 1, self.device)
        self.sample_gen = make_generator(self.seed + 2, self.device)
        self.agent_steps = 0
        self.updates = 0
        self.meta: dict[str, Any] = {}
        self.replay: ReplayBuffer | None = None
        self._env: MultiAgentEnv | None = None
        self._obs: Observation | None = None
        self._running: Tensor | None = None
        self._episodes = 0

    # -- what a subclass provides ------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        """The networks; ``"actor"`` is the one execution needs (Q_LOC)."""
        raise NotImplementedError

    def q_values(self, obs: Observation) -> Tensor:
        """``[B, N, A]`` Q-values each agent acts on (greedy / ε-greedy)."""
        raise NotImplementedError

    def loss(self, tr: Transitions, a: Tensor, a_next_mask: Tensor) -> tuple[Tensor, dict]:
        """Loss of a minibatch (``a`` ``[M, N]`` action indices; ``a_next_mask`` the allowed
        actions after the step ``[M, N, A]``) and its statistics."""
        raise NotImplementedError

    def replay_extras(self) -> dict[str, tuple[int, ...]]:
        """Per-agent values stored with every row (``ReplayBuffer`` extras)."""
        return {}

    def extras_for(self, obs: Observation) -> dict[str, Tensor]:
        """The extras of the rows about to be stored, ``name -> [B, N, *shape]``."""
        return {}

    def on_episode_start(self, obs: Observation, mask: Tensor) -> None:
        """Called when the envs in ``mask`` ``[B]`` begin an episode with ``obs``."""

    # -- acting -------------------------------------------------------------------------------
    def features(self, obs: Observation) -> Tensor:
        """``f_k`` ``[B, N, obs_dim]`` (module docstring)."""
        return features(obs, self.local_norm, self.fc_norm)

    def epsilon(self, budget: int) -> float:
        """ε now: linear from ``eps_start`` to ``eps_end`` over ``eps_fraction`` of ``budget``."""
        cfg = self.cfg
        span = max(1.0, cfg.eps_fraction * budget)
        frac = min(1.0, self.agent_steps / span)
        return cfg.eps_start + (cfg.eps_end - cfg.eps_start) * frac

    def _choose(self, obs: Observation, eps: float) -> Tensor:
        """ε-greedy action indices ``[B, N]`` among the allowed ones."""
        mask = self.actions.mask(obs)
        greedy = masked_argmax(self.q_values(obs), mask)
        if eps <= 0.0:
            return greedy
        b, n = greedy.shape
        g = self.explore_gen
        u = torch.rand(b, n, generator=g, device=g.device).to(self.device)
        # uniform among the allowed actions: argmax of random keys on the mask
        keys = torch.rand(b, n, self.n_actions, generator=g, device=g.device).to(self.device)
        rand = masked_argmax(keys, mask)
        return torch.where(u < eps, rand, greedy)

    @torch.no_grad()
    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """Each agent's action from its own Q-values (greedy; ε-greedy with ``eps_end`` when
        not ``deterministic``)."""
        out_device, out_dtype = obs.local.device, obs.local.dtype
        o = obs.to(self.device).floats()
        idx = self._choose(o, 0.0 if deterministic else self.cfg.eps_end)
        action = self.actions.to_action(idx, dtype=out_dtype)
        return Action(
            discrete=action.discrete.to(out_device), continuous=action.continuous.to(out_device)
        )

    # -- learning -------------------------------------------------------------------------------
    def _next_reset_seed(self) -> int:
        """Training seed stream index from (updates, episodes begun): never a validation or
        test seed (docs/protocol.md)."""
        self._episodes += 1
        return stream_seed(self.seed, "train", self.updates * 1_009 + self._episodes)

    @torch.no_grad()
    def collect(self, env: MultiAgentEnv, budget: int) -> CollectBatch:
        """``train_every`` ε-greedy steps of ``env`` into the replay buffer (a new env is
        reset first; its episodes continue across calls; ended episodes restart)."""
        t0 = time.perf_counter()
        if self._env is not env:
            self._env = env
            self._episodes = 0
            if self.replay is None or self.replay.spec.n_agents != env.spec.n_agents:
                self.replay = ReplayBuffer(
                    env.spec, self.cfg.buffer_size, self.device, extras=self.replay_extras()
                )
            self._obs = env.reset(seed=self._next_reset_seed()).to(self.device).floats()
            self._running = torch.zeros(env.num_envs, dtype=torch.float64, device=self.device)
            self._update_norms(self._obs)
            self.on_episode_start(self._obs, torch.ones(env.num_envs, dtype=torch.bool))
        assert self._obs is not None and self._running is not None and self.replay is not None
        eps = self.epsilon(budget)
        returns: list[float] = []
        rewards = 0.0
        env_s = act_s = replay_s = 0.0
        for _ in range(self.cfg.train_every):
            obs = self._obs
            t_act = time.perf_counter()
            idx = self._choose(obs, eps)
            extras = self.extras_for(obs)
            action = self.actions.to_action(idx)
            t_env = time.perf_counter()
            step = env.step(action)
            env_s += time.perf_counter() - t_env
            act_s += t_env - t_act
            step_obs = step.obs.to(self.device).floats()
            step = type(step)(
                obs=step_obs,
                reward=step.reward.to(self.device, torch.float32),
                team_reward=step.team_reward.to(self.device, torch.float32),
                terminated=step.terminated.to(self.device),
                truncated=step.truncated.to(self.device),
                info={},
            )
            t_rep = time.perf_counter()
            self.replay.add(obs, action, step, extras)
            replay_s += time.perf_counter() - t_rep
            rewards += float(step.reward.mean())
            self._running += step.team_reward.to(torch.float64)
            done = step.done
            nxt = step_obs
            if bool(done.any()):
                returns += self._running[done].tolist()
                self._running[done] = 0.0
                t_env = time.perf_counter()
                nxt = env.reset_envs(done, seed=self._next_reset_seed()).to(self.device).floats()
                env_s += time.perf_counter() - t_env
                self.on_episode_start(nxt, done)
            self._update_norms(nxt)
            self._obs = nxt
        steps = self.cfg.train_every * env.num_envs * env.spec.n_agents
        return CollectBatch(
            steps, eps, rewards / self.cfg.train_every, returns, t0, env_s, act_s, replay_s
        )

    def _update_norms(self, obs: Observation) -> None:
        b, n = obs.batch_shape
        self.local_norm.update(obs.local.reshape(b * n, -1))
        if obs.forecast.numel():
            self.fc_norm.update(obs.forecast.reshape(-1, self.spec.forecast_dim))

    def update(self, batch: CollectBatch) -> dict[str, float]:
        """``gradient_steps`` minibatch steps once ``learning_starts`` rows are stored, each
        followed by the soft target update; returns the loss statistics and timings."""
        t1 = time.perf_counter()
        cfg = self.cfg
        sums: dict[str, float] = {}
        steps = 0
        sample_s = fwd_s = bwd_s = 0.0
        demo: dict[str, float] = {}
        assert self.replay is not None
        if len(self.replay) >= cfg.learning_starts:
            for _ in range(cfg.gradient_steps):
                ts = time.perf_counter()
                tr = self.replay.sample(cfg.batch_size, self.sample_gen)
                tf = time.perf_counter()
                a = self.actions.index_of(tr.action)
                loss, stats = self.loss(tr, a, self.actions.mask(tr.next_obs))
                tb = time.perf_counter()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad = nn.utils.clip_grad_norm_(self.nets.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                soft_update(self.target, self.nets, cfg.tau)
                sample_s, fwd_s = sample_s + tf - ts, fwd_s + tb - tf
                bwd_s += time.perf_counter() - tb
                stats = {**stats, "loss/total": loss.detach(), "train/grad_norm": grad}
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                steps += 1
            demo = demo_updates(
                self.demo_step,
                lambda: self.demo_rows(cfg.batch_size),
                cfg.demo_share,
                steps,
                self.replay.kept,
            )
            fwd_s, bwd_s = fwd_s + demo.pop("fwd_s"), bwd_s + demo.pop("bwd_s")
        t2 = time.perf_counter()
        self.agent_steps += batch.agent_steps
        self.updates += 1
        out = ({k: v / steps for k, v in sums.items()} if steps else {}) | demo
        out.update(
            {
                "train/epsilon": batch.epsilon,
                "train/reward_per_step": batch.reward_per_step,
                "time/env_s": batch.env_s,
                "time/policy_forward_s": batch.act_s,
                "time/replay_s": batch.replay_s + sample_s,
                "time/update_forward_s": fwd_s,
                "time/update_backward_s": bwd_s,
                "time/update_s": t2 - t1,
                "perf/agent_steps_per_s": batch.agent_steps / max(t2 - batch.t_start, 1e-9),
            }
        )
        if batch.episode_returns:
            out["train/episode_return"] = sum(batch.episode_returns) / len(batch.episode_returns)
        return out

    # -- learning from demonstrations (common/demonstrations.py) --------------------------------
    def demonstrate(
        self, env: MultiAgentEnv, teacher: Any, seed: int, keep_prior: bool
    ) -> dict[str, float]:
        """Store one teacher episode of every env of ``env`` as the kept first rows of a new
        replay buffer (``common/demonstrations.collect_demonstrations``; IPC groups and other
        extras as in ``collect``); from then on every update mixes them in (``demo_share``).
        The same seed and teacher give the same rows (``--resume`` demonstrates again).

        Returns:
            ``warm/teacher_return`` [reward units] and ``warm/rows``.
        """
        self.replay = ReplayBuffer(
            env.spec, self.cfg.buffer_size, self.device, extras=self.replay_extras()
        )
        self._env = None  # learning starts its own episodes

        def observe(obs: Observation) -> Observation:
            o = obs.to(self.device).floats()
            self._update_norms(o)
            return o

        def extras(obs: Observation, t: int) -> dict[str, Tensor]:
            if t == 0:
                self.on_episode_start(obs, torch.ones(env.num_envs, dtype=torch.bool))
            return self.extras_for(obs)

        ret = collect_demonstrations(
            env,
            teacher,
            self.actions,
            self.replay,
            seed,
            keep_prior,
            stored=lambda idx, action: action,
            extras=extras,
            observe=observe,
        )
        return {"warm/teacher_return": ret, "warm/rows": float(len(self.replay))}

    def demo_rows(self, size: int) -> Transitions:
        """``size`` demonstrated rows drawn uniformly (the learner's minibatch generator)."""
        assert self.replay is not None and self.replay.kept
        g = self.sample_gen
        idx = torch.randint(0, self.replay.kept, (size,), generator=g, device=g.device)
        return self.replay.rows(idx.to(self.device))

    def demo_step(self, tr: Transitions) -> dict[str, float]:
        """One Adam step and soft target update on demonstrated rows: the learner's loss plus
        ``demo_weight`` × DQfD's large-margin loss on the Q-values each agent acts on (Hester
        et al. 2018, Eq. 3 without the n-step and L2 terms).  Returns the margin loss and the
        forward / backward times [s]."""
        t0 = time.perf_counter()
        a = self.actions.index_of(tr.action)
        loss, _ = self.loss(tr, a, self.actions.mask(tr.next_obs))
        q = self.q_values(tr.obs)
        margin = large_margin_loss(q, a, self.actions.mask(tr.obs), self.cfg.demo_margin)
        t1 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        (loss + self.cfg.demo_weight * margin).backward()
        nn.utils.clip_grad_norm_(self.nets.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()
        soft_update(self.target, self.nets, self.cfg.tau)
        return {
            "margin": float(margin.detach()),
            "fwd_s": t1 - t0,
            "bwd_s": time.perf_counter() - t1,
        }

    def warm_start(
        self, env: MultiAgentEnv, teacher: Any, epochs: int, seed: int, keep_prior: bool
    ) -> dict[str, float]:
        """DQfD's pre-training (Hester et al. 2018 §3): :meth:`demonstrate`, then ``epochs``
        shuffled passes over the demonstrated rows in minibatches of ``batch_size`` on
        :meth:`demo_step` (each followed by the soft target update, as in :meth:`update`).

        Returns:
            what :meth:`demonstrate` returns, ``warm/margin_loss`` of the last minibatch,
            ``warm/agreement`` (share of the demonstrated actions the greedy Q picks
            afterwards) [-] and ``warm/gradient_steps``.
        """
        cfg = self.cfg
        out = self.demonstrate(env, teacher, seed, keep_prior)
        assert self.replay is not None
        rows = self.replay.kept
        steps = 0
        done = {"margin": 0.0}
        g = self.sample_gen
        for _ in range(epochs):
            perm = torch.randperm(rows, generator=g, device=g.device).to(self.device)
            for lo in range(0, rows, cfg.batch_size):
                done = self.demo_step(self.replay.rows(perm[lo : lo + cfg.batch_size]))
                steps += 1
        agree = 0.0
        with torch.no_grad():
            for lo in range(0, rows, cfg.batch_size):
                tr = self.replay.rows(
                    torch.arange(lo, min(lo + cfg.batch_size, rows), device=self.device)
                )
                pick = masked_argmax(self.q_values(tr.obs), self.actions.mask(tr.obs))
                agree += float((pick == self.actions.index_of(tr.action)).float().sum())
        return {
            **out,
            "warm/margin_loss": done["margin"],
            "warm/agreement": agree / (rows * env.spec.n_agents),
            "warm/gradient_steps": float(steps),
        }

    # -- checkpoints ----------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Subclass values a checkpoint records (plain values)."""
        return {}

    def state(self) -> dict[str, Any]:
        """Everything a checkpoint holds (tensors and plain Python values only)."""
        return {
            **learner_state(
                self.checkpoint_format,
                self.cfg,
                self.spec,
                SHAPE_FIELDS,
                self.seed,
                self.agent_steps,
                self.updates,
            ),
            "actor": self.nets["actor"].state_dict(),
            "nets": self.nets.state_dict(),
            "target": self.target.state_dict(),
            "local_norm": self.local_norm.state_dict(),
            "fc_norm": self.fc_norm.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": {
                "explore": self.explore_gen.get_state(),
                "sample": self.sample_gen.get_state(),
            },
            "extra": self.extra_state(),
            "meta": plain_meta(self.meta),
        }

    def save(self, path: str | Path) -> None:
        """Write the checkpoint atomically, then its sidecar JSON (``path`` with ``.json``)."""
        save_learner(path, self.state(), self.name, self.meta)

    def load(self, path: str | Path, scenario_hash: str | None = None) -> None:
        """Read a checkpoint with ``torch.load(weights_only=True)``.

        Raises:
            ScenarioError: not this learner's checkpoint, or one that does not fit.
        """
        state = self.check_checkpoint(path, self.spec, scenario_hash)
        check_same_config(path, state, self)
        parts = {
            "nets": self.nets,
            "target": self.target,
            "local_norm": self.local_norm,
            "fc_norm": self.fc_norm,
            "optimizer": self.optimizer,
        }
        gens = {"explore": self.explore_gen, "sample": self.sample_gen}
        load_parts(path, state, self, parts, gens)

    @classmethod
    def checkpoint_checks(cls) -> dict[str, Any]:
        """What ``check_checkpoint`` requires of this learner's checkpoints."""
        return {
            "fmt": cls.checkpoint_format,
            "what": cls.label,
            "config_class": cls.config_class,
            "shape_fields": SHAPE_FIELDS,
            "check_config": True,
            "required_keys": ("nets", "actor"),
            "unreadable": ": its hyper-parameters, seed or weights do not read",
        }
