"""MFQ: mean-field Q-learning (Yang et al. 2018), and independent Q-learning as its ablation.

Paper: Yang, Luo, Li, Zhou, Zhang and Wang, "Mean Field Multi-Agent Reinforcement Learning",
ICML 2018 (arXiv:1802.05438); its equations as the HMF seed restates them
(``shared/seeds/003_*``, Eq. 1–4).  The HMF baseline: one group (all agents), uniform weights,
no top level.  Collection, replay, soft target updates and checkpoints are
``controllers/common/value_learner.py``.

* ``Q(o_k, a_k, ā_k)``: one network shared by every agent, ``concat(f_k, ā_k) → MLP → [A]``,
  with ``ā_k = 1/(N−1) Σ_{j≠k} onehot(a_j)`` the mean action of the other agents (the
  mean-field approximation of Eq. 1: the whole population is every agent's neighbourhood).
* TD target (Eq. 2–4): ``y_k = r_k + γ v^MF(o'_k)``, ``v^MF = Σ_a π(a | o'_k, ā'_k)
  Q̂(o'_k, a, ā'_k)`` with the Boltzmann policy ``π ∝ exp(β Q̂)`` (the seed writes Eq. 4 with
  ``−β`` for costs; rewards here are maximised) and ``ā'_k`` the mean of the other agents'
  Boltzmann policies at ``o'`` given the current mean actions (one step of Yang et al.'s
  fixed-point iteration).
* Execution: ε-greedy (greedy when deterministic) on ``Q(o_k, ·, ā_k)`` where ``ā_k`` is the
  mean action of the others at the previous step (uniform at an episode's first step), as in
  Yang et al.'s MAgent implementation: the current mean action is not known before acting.

:class:`IndependentQ` is the same code without the mean field: ``Q(o_k, a_k)`` and the DQN
target ``y_k = r_k + γ max_a Q̂(o'_k, a)``: independent Q-learning with a shared network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from gridmarl.controllers.common.replay import Transitions
from gridmarl.controllers.common.value_learner import ValueConfig, ValueLearner, masked_argmax
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.types import Observation

CHECKPOINT_FORMAT = "gridmarl.mfq/1"


@dataclass
class MFQConfig(ValueConfig):
    """MFQ hyper-parameters (besides ``ValueConfig``'s).

    Attributes:
        beta: inverse temperature β of the Boltzmann policy of the target's value (Eq. 3–4).
    """

    beta: float = 1.0

    def check(self) -> None:
        super().check()
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")


def others_mean(p: Tensor) -> Tensor:
    """``[M, N, A]`` per-agent action distributions -> the mean over the *other* agents
    ``[M, N, A]`` (zeros for a single agent)."""
    n = p.shape[1]
    if n == 1:
        return torch.zeros_like(p)
    return (p.sum(1, keepdim=True) - p) / (n - 1)


class MFQ(ValueLearner):
    """Mean-field Q-learning (module docstring).

    Args:
        spec: the env's agent spec.
        config: :class:`MFQConfig`.
        device: where the networks and the replay buffer live.
        seed: seeds the weights, the exploration and the minibatches.
    """

    name: ClassVar[str] = "mfq"
    label: ClassVar[str] = "MFQ"
    checkpoint_format: ClassVar[str] = CHECKPOINT_FORMAT
    config_class: ClassVar[type] = MFQConfig
    #: the network sees the mean action of the others (False: independent Q-learning)
    mean_field: ClassVar[bool] = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._abar: Tensor | None = None  # [B, N, A] ā_k of the previous step

    def build(self) -> dict[str, nn.Module]:
        h, a = self.cfg.hidden, self.n_actions
        d_in = self.obs_dim + (a if self.mean_field else 0)
        return {
            "actor": nn.Sequential(
                nn.Linear(d_in, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, a)
            )
        }

    def q(self, net: nn.Module, f: Tensor, abar: Tensor | None) -> Tensor:
        """``Q(o_k, ·, ā_k)`` ``[..., A]`` (``abar`` ignored without the mean field)."""
        return net(torch.cat([f, abar], -1) if self.mean_field else f)

    # -- acting ---------------------------------------------------------------------------------
    def reset(self, env: MultiAgentEnv) -> None:
        """A new episode: no previous mean action."""
        self._abar = None

    def previous_mean(self, b: int, n: int) -> Tensor:
        """ā_k of the previous step ``[B, N, A]`` (uniform when there is none)."""
        if self._abar is None or self._abar.shape[:2] != (b, n):
            self._abar = torch.full((b, n, self.n_actions), 1.0 / self.n_actions)
            self._abar = self._abar.to(self.device)
        return self._abar

    def q_values(self, obs: Observation) -> Tensor:
        b, n = obs.batch_shape
        return self.q(self.nets["actor"], self.features(obs), self.previous_mean(b, n))

    def _choose(self, obs: Observation, eps: float) -> Tensor:
        idx = super()._choose(obs, eps)
        self._abar = others_mean(nn.functional.one_hot(idx, self.n_actions).float())
        return idx

    def on_episode_start(self, obs: Observation, mask: Tensor) -> None:
        """The restarted envs' first step sees a uniform ā."""
        b, n = obs.batch_shape
        abar = self.previous_mean(b, n).clone()
        abar[mask] = 1.0 / self.n_actions
        self._abar = abar

    # -- learning -------------------------------------------------------------------------------
    def loss(self, tr: Transitions, a: Tensor, a_next_mask: Tensor) -> tuple[Tensor, dict]:
        cfg = self.cfg
        f, f_next = self.features(tr.obs), self.features(tr.next_obs)
        r = tr.reward * cfg.reward_scale
        cont = (~tr.terminated).to(r.dtype).unsqueeze(-1)
        abar = others_mean(nn.functional.one_hot(a, self.n_actions).to(f.dtype))
        q_taken = self.q(self.nets["actor"], f, abar).gather(-1, a.unsqueeze(-1)).squeeze(-1)
        with torch.no_grad():
            neg = float("-inf")
            if self.mean_field:
                # the others' Boltzmann policies at o' given the current mean actions -> ā'
                q0 = self.q(self.target["actor"], f_next, abar).masked_fill(~a_next_mask, neg)
                abar_next = others_mean(torch.softmax(cfg.beta * q0, -1))
                q1 = self.q(self.target["actor"], f_next, abar_next)
                pi = torch.softmax(cfg.beta * q1.masked_fill(~a_next_mask, neg), -1)  # Eq. 4
                v = (pi * q1.masked_fill(~a_next_mask, 0.0)).sum(-1)  # Eq. 3
            else:  # DQN target
                q1 = self.q(self.target["actor"], f_next, None)
                v = q1.gather(-1, masked_argmax(q1, a_next_mask).unsqueeze(-1)).squeeze(-1)
            y = r + cfg.gamma * cont * v  # Eq. 2
        loss = (q_taken - y).pow(2).mean()
        return loss, {"loss/td": loss.detach(), "q/taken_mean": q_taken.detach().mean()}


class IndependentQ(MFQ):
    """Independent Q-learning with a shared network: MFQ without the mean field."""

    name: ClassVar[str] = "iql"
    label: ClassVar[str] = "independent Q"
    checkpoint_format: ClassVar[str] = "gridmarl.iql/1"
    mean_field: ClassVar[bool] = False
