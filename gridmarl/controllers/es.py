"""ES fine-tuning: evolution strategies on a trained shared actor's deterministic team return.

Paper: [ES] Salimans, Ho, Chen, Sidor & Sutskever 2017, "Evolution strategies as a scalable
alternative to reinforcement learning", arXiv:1703.03864 (§2 and its Algorithm 1: the
Gaussian-smoothed objective, its gradient estimate, mirrored sampling and rank-based fitness
shaping).

Why.  PPO learns from the returns of a *stochastic* policy and credits each agent through a
per-agent reward; the policy is judged acting on its *mean*, and the community's cost couples the
agents (a transformer limit, a balance that turns an export's value from the import price into
the feed-in tariff).  ES needs neither: it perturbs the actor's weights, runs every perturbed
copy deterministically on the same training episodes, and moves the weights towards the copies
whose whole community did better.  What it optimises is the team return of the deterministic
joint policy — the quantity the evaluation measures — and the actor stays the shared,
decentralised one (every agent still acts on its own observation with the same weights).

One generation (``ESFinetuner.generation``), with θ the flattened weights of the actor's
``tail`` layers (``Actor.tail``: local feature, body, heads; the LSTM forecast encoder and the
normalisers are kept as trained, so the LSTM runs once for every copy):

1. ε_1 … ε_P ~ N(0, I); the copies θ + σ ε_i, θ − σ ε_i (antithetic, "mirrored" pairs) and
   θ itself.
2. ``env.reset_copies``: E episodes (``episodes``), each run by all 2P + 1 copies at once
   (common random numbers: the copies differ only by their weights).  Every step, copy g's
   actions come from its own weights (a batched matrix product per layer).  F_g = the team
   return (Σ_t ``team_reward``, −cost for energy) averaged over the E episodes.
3. Fitness shaping: centred ranks of the 2P perturbed returns in [−0.5, 0.5] (the rank
   transformation [ES] uses).
4. ĝ = 1 / (2Pσ) Σ_i (rank(θ + σε_i) − rank(θ − σε_i)) ε_i, the antithetic estimate of
   ∇_θ E_ε F(θ + σε) = (1/σ) E_ε[F(θ + σε) ε] ([ES] §2, Algorithm 1, in paired form), and an
   Adam step on θ along ĝ (Adam, as [ES] uses for its updates).

Costs: each generation runs (2P + 1)·E episodes of the training env forward only (no
backward pass); ``agent_steps_per_generation`` says how many agent-steps that is.  The random
streams (ε, the episodes) are functions of ``seed`` and the generation index, so the same seed
gives the same weights.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gridmarl.config import ESConfig
from gridmarl.controllers.common.distributions import HybridDistribution, env_continuous
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.errors import ScenarioError
from gridmarl.core.learner import Progress
from gridmarl.core.seeding import make_generator, stream_seed
from gridmarl.core.types import Action, Observation

STATE_FORMAT = "gridmarl.es/1"


@dataclass
class ESBatch:
    """One generation's evaluation, as ``ESFinetuner.collect`` hands it to ``update``.

    Attributes:
        eps: ``[P, D]`` the perturbation directions ε_i.
        returns: ``[2P + 1]`` team returns of θ + σε_i, θ − σε_i and θ (float64, CPU).
        agent_steps: agent-steps the generation simulated.
    """

    eps: Tensor
    returns: Tensor
    agent_steps: int


class ESFinetuner:
    """Evolution strategies on the tail of a MATPPO actor (see the module docstring).

    A generation runs on the env it is given, and nothing carries over to the next one but
    the weights and Adam's moments, so generations may alternate between envs of other sizes
    (``train.variants``: the ranks of a generation compare copies on the same episodes).

    Args:
        policy: a trained ``MATPPO`` (its actor's weights are updated in place).
        config: ES hyper-parameters (``scenario.train.es``).
        seed: seeds the perturbations and the episodes of every generation.
    """

    mixes_envs = True

    def __init__(self, policy: Any, config: ESConfig, seed: int) -> None:
        self.policy = policy
        self.actor = policy.actor
        self.cfg = config
        self.seed = int(seed)
        self.layers = self.actor.tail
        self.shapes = [(lin.weight.shape, lin.bias.shape) for lin in self.layers]
        self.theta = torch.nn.Parameter(self.flat_weights())
        self.optimizer = torch.optim.Adam([self.theta], lr=config.lr)
        self.generations = 0
        self.agent_steps = 0  # [agent-steps] simulated by this run's generations
        self.timing = {"policy_s": 0.0, "env_s": 0.0}

    @property
    def dim(self) -> int:
        """Number of weights ES moves."""
        return int(self.theta.numel())

    def copies(self) -> int:
        """Weight copies run per generation: 2P perturbed + the centre."""
        return 2 * self.cfg.pairs + 1

    def num_envs(self) -> int:
        """Envs of the training env ES needs: copies × episodes."""
        return self.copies() * self.cfg.episodes

    def agent_steps_per_generation(self, env: MultiAgentEnv) -> int:
        """Agent-steps one generation simulates on ``env``."""
        return env.num_envs * env.episode_len * env.spec.n_agents

    # -- weights --------------------------------------------------------------------------------
    def flat_weights(self) -> Tensor:
        """The tail layers' weights and biases as one vector ``[D]``."""
        parts = [torch.cat([lin.weight.reshape(-1), lin.bias.reshape(-1)]) for lin in self.layers]
        return torch.cat(parts).detach().clone()

    def unflatten(self, v: Tensor) -> list[tuple[Tensor, Tensor]]:
        """``v [..., D]`` -> per layer ``(weight [..., out, in], bias [..., out])``."""
        out, i = [], 0
        lead = v.shape[:-1]
        for ws, bs in self.shapes:
            nw, nb = ws.numel(), bs.numel()
            w = v[..., i : i + nw].reshape(*lead, *ws)
            out.append((w, v[..., i + nw : i + nw + nb].reshape(*lead, *bs)))
            i += nw + nb
        return out

    @torch.no_grad()
    def write_weights(self) -> None:
        """Copy θ into the actor's layers (what ``act``, validation and checkpoints use)."""
        for lin, (w, b) in zip(self.layers, self.unflatten(self.theta.detach()), strict=True):
            lin.weight.copy_(w)
            lin.bias.copy_(b)

    # -- acting with many weight copies ---------------------------------------------------------
    @torch.no_grad()
    def act_copies(self, obs: Observation, weights: Tensor) -> Action:
        """Deterministic actions of ``G = weights.shape[0]`` weight copies.

        Args:
            obs: a batch of ``B = G · E`` envs; envs ``g·E … g·E + E − 1`` act with copy ``g``.
            weights: ``[G, D]`` flattened tail weights.
        """
        b, n = obs.batch_shape
        g = weights.shape[0]
        if b % g:
            raise ValueError(f"{b} envs cannot be split among {g} weight copies")
        params = self.unflatten(weights.to(obs.local.dtype))
        x = self.actor.trunk(obs.local, obs.forecast).reshape(g, (b // g) * n, -1)
        local = obs.local.reshape(g, (b // g) * n, -1)

        def linear(i: int, h: Tensor) -> Tensor:
            w, bias = params[i]
            return torch.baddbmm(bias[:, None, :], h, w.transpose(1, 2))

        logits, mean = self.actor.heads(x, local, linear)
        mask = obs.action_mask.reshape(g, (b // g) * n, -1) if obs.action_mask is not None else None
        dist = HybridDistribution(logits, mask, mean, self.actor.log_std.to(mean.dtype))
        k, u = dist.mode()
        return Action(discrete=k.reshape(b, n), continuous=env_continuous(u).reshape(b, n, -1))

    @torch.no_grad()
    def returns(self, env: MultiAgentEnv, weights: Tensor, reset_seed: int) -> Tensor:
        """Team return of each weight copy ``[G]``, averaged over ``env.num_envs / G``
        common episodes (Σ_t ``team_reward``, float64).  Adds the wall time spent in the
        env and in the policy to ``self.timing`` [s]."""
        g = weights.shape[0]
        try:
            obs = env.reset_copies(reset_seed, g)
        except NotImplementedError as exc:
            raise ScenarioError(
                f"ES fine-tuning needs an env that runs copies of its episodes: {exc}"
            ) from None
        total = torch.zeros(env.num_envs, dtype=torch.float64, device=env.device)
        for _ in range(env.episode_len):
            t0 = time.perf_counter()
            action = self.act_copies(obs, weights)
            t1 = time.perf_counter()
            step = env.step(action)
            self.timing["policy_s"] += t1 - t0
            self.timing["env_s"] += time.perf_counter() - t1
            total += step.team_reward.double()
            obs = step.obs
        return total.reshape(g, -1).mean(1)

    # -- one update -----------------------------------------------------------------------------
    def _generators(self) -> tuple[torch.Generator, int]:
        """The perturbation stream and the env reset seed of the current generation."""
        key = (self.seed * 1_000_003 + self.generations * 7_919) % (2**31 - 1)
        # the episodes come from the training seed stream (docs/protocol.md)
        return make_generator(key), stream_seed(self.seed, "train", self.generations)

    def progress(self) -> Progress:
        """Generations done (``updates``) and the agent-steps they simulated."""
        return Progress(agent_steps=self.agent_steps, updates=self.generations)

    def collect(self, env: MultiAgentEnv, budget: int | None = None) -> ESBatch:
        """Run the current generation's weight copies on ``env`` (``num_envs()`` envs).

        ``budget`` is unused (ES has no schedule); it keeps the ``Learner`` signature.
        """
        cfg = self.cfg
        if env.num_envs != self.num_envs():
            raise ValueError(f"ES needs {self.num_envs()} envs, got {env.num_envs}")
        gen, reset_seed = self._generators()
        self.timing = {"policy_s": 0.0, "env_s": 0.0}
        theta = self.theta.detach()
        eps = torch.randn(cfg.pairs, self.dim, generator=gen).to(theta)
        weights = torch.cat([theta + cfg.sigma * eps, theta - cfg.sigma * eps, theta[None]])
        f = self.returns(env, weights, reset_seed).cpu()
        return ESBatch(eps, f, self.agent_steps_per_generation(env))

    def update(self, batch: ESBatch) -> dict[str, float]:
        """The ES step on θ from one generation's returns; returns its statistics."""
        cfg = self.cfg
        theta, eps = self.theta.detach(), batch.eps
        perturbed, centre = batch.returns[:-1], float(batch.returns[-1])
        # centred ranks in [-0.5, 0.5]: higher return, higher rank ([ES] fitness shaping)
        ranks = torch.empty_like(perturbed)
        ranks[perturbed.argsort()] = torch.arange(len(perturbed), dtype=perturbed.dtype)
        ranks = ranks / (len(perturbed) - 1) - 0.5
        diff = (ranks[: cfg.pairs] - ranks[cfg.pairs :]).to(theta)
        # ĝ = 1/(2Pσ) Σ_i (F_i⁺ − F_i⁻) ε_i: ∇θ E[F(θ+σε)] = E[F(θ+σε) ε]/σ ([ES] §2, Alg. 1)
        grad = (diff[:, None] * eps).sum(0) / (2 * cfg.pairs * cfg.sigma)
        before = theta.clone()
        self.optimizer.zero_grad(set_to_none=True)
        self.theta.grad = -grad  # Adam descends: ascend the return
        self.optimizer.step()
        self.write_weights()
        self.generations += 1
        self.agent_steps += batch.agent_steps
        return {
            "es/return_centre": centre,
            "es/return_mean": float(perturbed.mean()),
            "es/return_best": float(perturbed.max()),
            "es/grad_norm": float(grad.norm()),
            "es/step_norm": float((self.theta.detach() - before).norm()),
            "time/policy_forward_s": self.timing["policy_s"],
            "time/env_s": self.timing["env_s"],
        }

    def generation(self, env: MultiAgentEnv) -> dict[str, float]:
        """Run one generation on ``env`` (``num_envs()`` envs) and update θ; returns stats."""
        return self.update(self.collect(env))

    # -- resume ---------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What resuming needs beyond the policy checkpoint (tensors and plain values), as a
        copy that later generations do not change."""
        return {
            "format": STATE_FORMAT,
            "generations": self.generations,
            "agent_steps": self.agent_steps,
            "seed": self.seed,
            "dim": self.dim,
            "config": self.cfg.model_dump(),
            "theta": self.theta.detach().clone(),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }

    def load_state(self, state: dict[str, Any], path: str) -> None:
        """Restore :meth:`state` (read with ``torch.load(weights_only=True)``).

        Raises:
            ScenarioError: not an ES state, or one of other weights / hyper-parameters.
        """
        if state.get("format") != STATE_FORMAT:
            raise ScenarioError(f"{path}: not a gridmarl ES state ({STATE_FORMAT})")
        if int(state["dim"]) != self.dim or state["config"] != self.cfg.model_dump():
            raise ScenarioError(
                f"{path}: the ES state was written for other weights or hyper-parameters "
                f"(dim {state['dim']} vs {self.dim}, config {state['config']} vs "
                f"{self.cfg.model_dump()}); resume with the same scenario"
            )
        with torch.no_grad():
            self.theta.copy_(state["theta"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generations = int(state["generations"])
        self.agent_steps = int(state.get("agent_steps", 0))  # absent in older states
        self.seed = int(state["seed"])
        self.write_weights()
