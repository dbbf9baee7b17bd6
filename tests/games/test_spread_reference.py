"""The hand-written nearest-landmark policy of the cooperative-navigation game."""

from __future__ import annotations

import torch

from gridmarl.core.types import Action
from gridmarl.games.spread import (
    AGENT_RADIUS,
    CAPTURE_RADIUS,
    TRANSFER_SHRINK,
    SpreadEnv,
    nearest_landmark_action,
)


def test_an_agent_at_rest_heads_for_its_landmark() -> None:
    env = SpreadEnv(1, num_envs=4)
    pos = torch.zeros(4, 1, 2)
    land = torch.tensor([[[0.8, 0.0]], [[-0.8, 0.0]], [[0.0, -0.8]], [[0.0, 0.8]]])
    obs = env.set_state(pos, torch.zeros_like(pos), land)
    # mpe2's directions: 1 −x, 2 +x, 3 −y, 4 +y
    assert nearest_landmark_action(obs).squeeze(1).tolist() == [2, 1, 3, 4]
    at = env.set_state(land, torch.zeros_like(pos), land)  # already there: hold
    assert (nearest_landmark_action(at) == 0).all()


def test_discrete_actions_hold_a_landmark_within_the_capture_radius() -> None:
    """Small agents (the transfer setting, so hardly any contact): after one episode every
    agent is within the capture radius of its nearest landmark."""
    env = SpreadEnv(20, num_envs=5, agent_radius=AGENT_RADIUS / TRANSFER_SHRINK)
    obs = env.reset(seed=7)
    for _ in range(env.episode_len):
        step = env.step(Action(nearest_landmark_action(obs), torch.zeros(5, 20, 0)))
        obs = step.obs
    assert (obs.local[..., 4:6].norm(dim=-1) < CAPTURE_RADIUS).all()
