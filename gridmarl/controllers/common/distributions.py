"""The hybrid action distribution: masked categorical × diagonal Gaussian.

An agent's action is ``(k, u)``: a discrete choice ``k`` from a masked categorical and a
continuous vector ``u ∈ R^C`` from a diagonal Gaussian, independent given the observation, so

    log π(k, u | o) = log π_cat(k | o) + Σ_c log N(u_c; μ_c, σ_c²)
    H[π] = H[cat] + Σ_c (½ log(2π e σ_c²)).

**Clipped, not tanh-squashed.**  ``u`` is an unbounded Gaussian sample; the env receives
``clamp(u, −1, 1)``.  The clip is treated as part of the environment, so the Gaussian log
density of the raw ``u`` (stored in the rollout) is the exact log-probability of the policy's
action, the entropy has the closed form above, and the PPO ratio needs no Jacobian correction.
Deterministic actions are ``argmax`` of the masked logits and ``clamp(μ, −1, 1)``.

Sampling uses explicit per-position noise (Gumbel-max for the categorical, ``randn`` for the
Gaussian) drawn from a ``torch.Generator`` with the full ``[..., K]`` / ``[..., C]`` shape, so one
agent's draw depends only on the generator and its own position, never on another agent's
logits.  Masked choices get logit −inf, so Gumbel-max never picks them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_2PI = math.log(2.0 * math.pi)


class HybridDistribution:
    """Masked categorical over ``K`` choices and a diagonal Gaussian over ``C`` dims.

    Args:
        logits: ``[..., K]`` unnormalised logits (``K`` may be 0: no discrete part).
        mask: ``[..., K]`` bool, True = allowed, or None (all allowed).  Every row must allow at
            least one choice.
        mean: ``[..., C]`` Gaussian mean (``C`` may be 0).
        log_std: ``[C]`` or ``[..., C]`` log standard deviation.
    """

    def __init__(self, logits: Tensor, mask: Tensor | None, mean: Tensor, log_std: Tensor) -> None:
        self.n_discrete = int(logits.shape[-1])
        self.n_continuous = int(mean.shape[-1])
        if self.n_discrete and mask is not None:
            logits = logits.masked_fill(~mask.bool(), float("-inf"))
        self.logits = logits
        self.log_p = torch.log_softmax(logits, dim=-1) if self.n_discrete else logits
        self.mean = mean
        self.log_std = log_std.expand_as(mean)

    # -- sampling -------------------------------------------------------------------------------
    def sample(self, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """A random action ``(k [...] long, u [..., C] raw Gaussian sample)``."""
        return self._sample_discrete(generator), self._sample_continuous(generator)

    def _sample_discrete(self, generator: torch.Generator | None) -> Tensor:
        if not self.n_discrete:
            return torch.zeros(self.logits.shape[:-1], dtype=torch.long, device=self.logits.device)
        u = torch.rand(
            self.logits.shape,
            generator=generator,
            device=self.logits.device,
            dtype=self.logits.dtype,
        )
        gumbel = -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))
        return torch.argmax(self.logits + gumbel, dim=-1)

    def _sample_continuous(self, generator: torch.Generator | None) -> Tensor:
        noise = torch.randn(
            self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
        )
        return self.mean + noise * self.log_std.exp()

    def mode(self) -> tuple[Tensor, Tensor]:
        """The deterministic action ``(argmax k, μ)`` (μ unclipped; see ``env_continuous``)."""
        if self.n_discrete:
            k = torch.argmax(self.logits, dim=-1)
        else:
            k = torch.zeros(self.logits.shape[:-1], dtype=torch.long, device=self.logits.device)
        return k, self.mean

    # -- densities ------------------------------------------------------------------------------
    def log_prob(self, discrete: Tensor, continuous: Tensor) -> Tensor:
        """Joint log-probability ``[...]`` of ``(k, u)`` (sum of both parts)."""
        lp = torch.zeros(self.mean.shape[:-1], dtype=self.mean.dtype, device=self.mean.device)
        if self.n_discrete:
            lp = lp + self.log_p.gather(-1, discrete.long().unsqueeze(-1)).squeeze(-1)
        if self.n_continuous:
            z = (continuous - self.mean) / self.log_std.exp()
            lp = lp + (-0.5 * z.pow(2) - self.log_std - 0.5 * LOG_2PI).sum(-1)
        return lp

    def entropy(self) -> Tensor:
        """Joint entropy ``[...]`` [nats] (sum of both parts; masked choices contribute 0)."""
        ent = torch.zeros(self.mean.shape[:-1], dtype=self.mean.dtype, device=self.mean.device)
        if self.n_discrete:
            p = self.log_p.exp()
            # 0·log 0 = 0 for masked choices; the where sits inside the product so the
            # gradient never sees 0·(−inf)
            safe_log_p = torch.where(p > 0, self.log_p, torch.zeros_like(p))
            ent = ent - (p * safe_log_p).sum(-1)
        if self.n_continuous:
            ent = ent + (self.log_std + 0.5 * (LOG_2PI + 1.0)).sum(-1)
        return ent


def env_continuous(u: Tensor) -> Tensor:
    """The continuous action the env receives: ``clamp(u, −1, 1)``."""
    return u.clamp(-1.0, 1.0)
