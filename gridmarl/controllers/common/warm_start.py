"""Behaviour-cloning warm start of an actor-critic from a teacher controller.

Optional, and off unless asked for (``gridmarl train --warm-start rule_based``): the teacher (a
rule baseline that acts on local observations only) runs full episodes of the training env;
the actor's normalisers are fitted to what it saw, the actor is fitted to the teacher's actions
(cross-entropy on the discrete choice, squared error of the Gaussian mean against the
teacher's continuous action; the log-std is left alone so PPO still explores), and the critic
is fitted to the teacher's discounted returns.  PPO then starts from a policy that already
behaves like the rule baseline and a critic that already values it.  With ``keep_prior`` the
continuous dimensions for which the env declares a default action (``spec.action_prior``) take
that default instead of the teacher's action, in the episodes and as the clone's target: a
residual policy then starts from the env's default there and from the teacher elsewhere.
Controllers opt in by having ``actor``, ``critic``, ``value_norm``, ``cfg``, ``params``,
``update_normalizers`` and ``_denorm`` like :class:`gridmarl.controllers.matppo.MATPPO`.
"""

from __future__ import annotations

from typing import Any

import torch

from gridmarl.controllers.common.buffer import RolloutBuffer
from gridmarl.controllers.common.gae import compute_gae
from gridmarl.core.controller import Controller
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.seeding import stream_seed
from gridmarl.core.types import Action


def warm_start(
    ctrl: Any,
    env: MultiAgentEnv,
    teacher: Controller,
    epochs: int = 4,
    minibatch: int = 32768,
    lr: float = 1e-3,
    seed: int = 0,
    keep_prior: bool = False,
) -> dict[str, float]:
    """Fit ``ctrl``'s actor to ``teacher`` and its critic to the teacher's returns.

    Args:
        ctrl: the learner (see the module docstring for what it must have).
        env: a training env; one full episode of every env is collected.
        teacher: acts on the same observations.
        epochs: passes over the collected data.
        minibatch: agent samples per gradient step (critic samples scale down by ``N``).
        lr: Adam learning rate of the warm start.
        seed: the run seed: seeds the env reset (its warm-start stream) and the shuffles.
        keep_prior: act and clone the env's default action on the dimensions that have one.

    Returns:
        Final losses: ``warm/actor_ce``, ``warm/actor_mse``, ``warm/value_loss``, the number
        of gradient steps taken ``warm/gradient_steps`` (epochs × minibatches), and
        ``warm/teacher_return`` (mean undiscounted team return of the teacher's episodes).
    """
    cfg = ctrl.cfg
    team = cfg.value_target == "team"
    n = env.spec.n_agents
    scale = cfg.reward_scale / (n if team else 1)
    buf = RolloutBuffer(env.spec, env.episode_len, env.num_envs, 1 if team else n, ctrl.device)
    # the teacher's episodes come from the warm-start seed stream (docs/protocol.md)
    obs = env.reset(seed=stream_seed(seed, "warm_start", 0))
    teacher.reset(env)
    ret = torch.zeros(env.num_envs, dtype=torch.float64, device=ctrl.device)
    prior = env.spec.action_prior
    prior_dims = [d for d, i in enumerate(prior) if i >= 0]
    prior_cols = [i for i in prior if i >= 0]
    with torch.no_grad():
        for _ in range(env.episode_len):
            act = teacher.act(obs, deterministic=True)
            if keep_prior and prior_dims:
                cont = act.continuous.clone()
                cont[..., prior_dims] = obs.local[..., prior_cols].to(cont.dtype)
                act = Action(discrete=act.discrete, continuous=cont)
            step = env.step(act)
            reward = step.team_reward.unsqueeze(-1) if team else step.reward
            zeros = torch.zeros_like(step.reward)
            buf.add(
                obs,
                act.discrete,
                act.continuous,
                zeros,
                zeros[:, :1] * 0,
                reward * scale,
                step.done,
            )
            ret += step.team_reward.to(ret.dtype)
            obs = step.obs
    ctrl.update_normalizers(buf)
    # discounted returns of the teacher (λ = 1, V = 0: plain reward-to-go; episodes are full)
    _, returns = compute_gae(
        buf.rewards,
        torch.zeros_like(buf.rewards),
        buf.dones,
        torch.zeros_like(buf.rewards[0]),
        cfg.gamma,
        1.0,
    )
    if cfg.value_norm:
        ctrl.value_norm.update(returns)
        returns = ctrl.value_norm.normalize(returns)
    opt = torch.optim.Adam(ctrl.params, lr=lr)
    gen = torch.Generator(device=ctrl.device).manual_seed(seed)
    n_samples = buf.horizon * buf.num_envs * n
    n_mb = max(1, n_samples // minibatch)
    dummy_adv = torch.zeros(buf.horizon, buf.num_envs, n, device=ctrl.device)
    out: dict[str, float] = {}
    for _ in range(epochs):
        for a, c in buf.minibatches(n_mb, gen, dummy_adv, returns):
            dist = ctrl.actor(a.local, a.forecast, a.mask)
            ce = (
                -dist.log_p.gather(-1, a.discrete.unsqueeze(-1)).mean()
                if dist.n_discrete
                else dist.mean.new_zeros(())
            )
            mse = (
                (dist.mean - a.continuous).pow(2).mean()
                if dist.n_continuous
                else dist.mean.new_zeros(())
            )
            v_loss = (ctrl.critic(c.state, c.global_) - c.returns).pow(2).mean()
            loss = ce + mse + cfg.vf_coef * v_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ctrl.params, cfg.max_grad_norm)
            opt.step()
            out = {
                "warm/actor_ce": float(ce.detach()),
                "warm/actor_mse": float(mse.detach()),
                "warm/value_loss": float(v_loss.detach()),
            }
    out["warm/teacher_return"] = float(ret.mean())
    out["warm/gradient_steps"] = float(epochs * n_mb)
    return out
