"""Learning from a teacher's demonstrations for the value learners: DQfD (Hester et al. 2018,
"Deep Q-learning from Demonstrations", AAAI).

What every value learner's ``--warm-start`` shares (``QLearner`` for DQN / DGN / LToS,
``ValueLearner`` for HMF / MFQ):

* :func:`collect_demonstrations`: one episode of every env acted by the teacher (reset from the
  run's warm-start seed stream, docs/protocol.md); each teacher action is mapped to the nearest
  action of the learner's finite set (``DiscretizedAction.index_of``) and that action is what
  the env executes, so every stored row is a transition of the learner's own actions.  The rows
  are the first of an empty replay buffer and are kept for the whole run
  (``ReplayBuffer.keep_first``), as DQfD keeps its demonstrations;
* :func:`large_margin_loss`: DQfD's supervised loss (Eq. 2)
  ``J_E = mean [max_{a allowed} (Q(o, a) + l(a_E, a)) − Q(o, a_E)]``, ``l = margin`` for
  ``a ≠ a_E`` and 0 for the demonstrated ``a_E``; the learner adds it, weighted, to its own
  TD loss on demonstrated rows (DQfD Eq. 3 without the n-step and L2 terms);
* :func:`demo_updates`: the demonstration steps every later update round adds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gridmarl.controllers.common.discrete import DiscretizedAction
from gridmarl.controllers.common.replay import ReplayBuffer
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.errors import ScenarioError
from gridmarl.core.seeding import stream_seed
from gridmarl.core.types import Action, Observation


def large_margin_loss(q: Tensor, a_e: Tensor, mask: Tensor, margin: float) -> Tensor:
    """DQfD's ``J_E`` (module docstring), averaged over rows and agents.

    Args:
        q: ``[M, N, A]`` Q-values.
        a_e: ``[M, N]`` demonstrated action indices.
        mask: ``[M, N, A]`` bool, the allowed actions.
        margin: ``l(a_E, a)`` for ``a ≠ a_E`` [Q units].
    """
    idx = a_e.unsqueeze(-1)
    bonus = torch.full_like(q, margin).scatter(-1, idx, 0.0)
    # ``max`` sends a tie's gradient to one action (``amax`` would split it)
    best = (q + bonus).masked_fill(~mask, float("-inf")).max(dim=-1).values
    return (best - q.gather(-1, idx).squeeze(-1)).mean()


def demo_updates(
    step: Callable[[Any], dict[str, float]],
    draw: Callable[[], Any],
    share: float,
    steps: int,
    kept: int,
) -> dict[str, float]:
    """DQfD keeps the demonstrations in every update's data: after an update round of
    ``steps`` learning minibatches, ``ceil(share × steps)`` steps of ``step`` (the learner's
    ``demo_step``) on demonstrated rows from ``draw`` (none when no rows are ``kept``).

    Returns:
        ``fwd_s`` and ``bwd_s``, their summed forward / backward times [s], and
        ``loss/demo_margin``, the mean margin loss (only when a step was taken).
    """
    fwd_s = bwd_s = 0.0
    margins: list[float] = []
    for _ in range(math.ceil(share * steps) if kept else 0):
        done = step(draw())
        fwd_s, bwd_s = fwd_s + done["fwd_s"], bwd_s + done["bwd_s"]
        margins.append(done["margin"])
    out = {"fwd_s": fwd_s, "bwd_s": bwd_s}
    if margins:
        out["loss/demo_margin"] = sum(margins) / len(margins)
    return out


def collect_demonstrations(
    env: MultiAgentEnv,
    teacher: Any,
    actions: DiscretizedAction,
    replay: ReplayBuffer,
    seed: int,
    keep_prior: bool,
    stored: Callable[[Tensor, Action], Action],
    extras: Callable[[Observation, int], dict[str, Tensor]],
    observe: Callable[[Observation], Observation],
) -> float:
    """Store one teacher episode of every env of ``env`` in the empty ``replay`` and keep it.

    Args:
        env: a training env.
        teacher: a controller acting on the same observations.
        actions: the learner's finite action set.
        replay: an empty buffer on the learner's device.
        seed: the run seed (its warm-start stream seeds the reset).
        keep_prior: on the continuous dimensions where the env declares a default action
            (``spec.action_prior``) the teacher's value is replaced by that default.
        stored: ``(index [B, N], env action) -> the Action the buffer stores``.
        extras: ``(obs, t) -> the replay extras of the rows`` (t = step of the episode).
        observe: called on every observation before it is acted on (the learner's
            normaliser updates); returns it as the learner reads it (device, dtype).

    Returns:
        The demonstrated episodes' mean team return with the discretised actions [reward units].

    Raises:
        ScenarioError: the rows would not fit beside one collection of learning, or the
            teacher chose a mode the observation's action mask forbids.
    """
    need = env.num_envs * env.episode_len
    if len(replay) or need + env.num_envs > replay.capacity:
        raise ScenarioError(
            f"--warm-start: the demonstrations ({env.num_envs} envs × {env.episode_len} steps = "
            f"{need} rows) need an empty replay buffer with room to learn beside them; its "
            f"capacity is {replay.capacity} rows: raise it or use fewer envs"
        )
    obs = env.reset(seed=stream_seed(seed, "warm_start", 0))
    teacher.reset(env)  # after the env's reset: a planning teacher (the MILP) reads its episodes
    ret = torch.zeros(env.num_envs, dtype=torch.float64)
    prior = env.spec.action_prior
    prior_dims = [d for d, i in enumerate(prior) if i >= 0]
    prior_cols = [i for i in prior if i >= 0]
    dev = actions.grid.device
    with torch.no_grad():
        for t in range(env.episode_len):
            seen = observe(obs)
            act = teacher.act(obs, deterministic=True)
            if keep_prior and prior_dims:
                cont = act.continuous.clone()
                cont[..., prior_dims] = obs.local[..., prior_cols].to(cont.dtype)
                act = Action(discrete=act.discrete, continuous=cont)
            idx = actions.index_of(
                Action(discrete=act.discrete.to(dev), continuous=act.continuous.to(dev))
            )
            allowed = actions.mask(seen).to(dev).gather(-1, idx.unsqueeze(-1))
            if not bool(allowed.all()):
                raise ScenarioError(
                    f"--warm-start: the teacher chose a mode the observation's action mask "
                    f"forbids (step {t}); it cannot be demonstrated"
                )
            row_extras = extras(seen, t)
            action = actions.to_action(idx)
            step = env.step(action)
            replay.add(seen, stored(idx, action), step, row_extras)
            ret += step.team_reward.detach().cpu().to(ret.dtype)
            obs = step.obs
            if bool(step.done.all()):
                break
    replay.keep_first(len(replay))
    return float(ret.mean())
