"""Generalised advantage estimation (Schulman et al. 2016, "High-dimensional continuous control
using generalized advantage estimation", arXiv:1506.02438).

Shapes: ``T`` rollout steps, then any batch shape ``*S`` (``[B]`` for a team value, ``[B, N]``
for per-agent values).
"""

from __future__ import annotations

import torch
from torch import Tensor


def compute_gae(
    rewards: Tensor, values: Tensor, dones: Tensor, last_value: Tensor, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    """Advantages and λ-returns by the backward recursion.

    Args:
        rewards: ``[T, *S]`` reward received after the action at step t.
        values: ``[T, *S]`` V(s_t) under the current critic.
        dones: ``[T, *S]`` bool or 0/1, the episode ended with step t (s_{t+1} is a new episode's
            first state, so nothing is bootstrapped across it).
        last_value: ``[*S]`` V(s_T) of the observation after the last step.
        gamma: discount γ [-].
        lam: GAE λ [-].

    Returns:
        ``(advantages, returns)``, both ``[T, *S]``; returns = advantages + values (the TD(λ)
        target of the value loss).
    """
    t_len = rewards.shape[0]
    not_done = 1.0 - dones.to(values.dtype)
    adv = torch.zeros_like(values)
    running = torch.zeros_like(last_value)
    for t in reversed(range(t_len)):
        next_v = last_value if t == t_len - 1 else values[t + 1]
        # δ_t = r_t + γ V(s_{t+1}) − V(s_t)                          (GAE paper, Eq. 10)
        delta = rewards[t] + gamma * next_v * not_done[t] - values[t]
        # Â_t = Σ_l (γλ)^l δ_{t+l}, computed as Â_t = δ_t + γλ Â_{t+1} (GAE paper, Eq. 16)
        running = delta + gamma * lam * not_done[t] * running
        adv[t] = running
    return adv, adv + values
