"""The batched cooperative-navigation twin against mpe2's own ``simple_spread_v3``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gridmarl.core.types import Action
from gridmarl.games.spread import AGENT_RADIUS, TRANSFER_SHRINK, SpreadEnv, SpreadView

pytest.importorskip("mpe2")


@pytest.mark.parametrize(("n", "radius"), [(3, AGENT_RADIUS), (8, AGENT_RADIUS / TRANSFER_SHRINK)])
def test_twin_matches_mpe2_step_by_step(n: int, radius: float) -> None:
    """Same start, same actions: same observation, reward and metrics for a whole episode,
    with collisions happening (agents pushed together)."""
    from gridmarl.games.mpe import MpeSpreadEnv

    ref = MpeSpreadEnv(n, agent_radius=radius)
    obs_ref = ref.reset(seed=4)
    w = ref.world
    pos = torch.tensor(np.stack([a.state.p_pos for a in w.agents]))[None]
    land = torch.tensor(np.stack([lm.state.p_pos for lm in w.landmarks]))[None]
    twin = SpreadEnv(n, num_envs=1, agent_radius=radius)
    obs = twin.set_state(pos, torch.zeros_like(pos), land)
    torch.testing.assert_close(obs.local, obs_ref.local)
    torch.testing.assert_close(obs.state, obs_ref.state)
    gen = torch.Generator().manual_seed(0)
    collided = 0.0
    for t in range(25):
        # first steps: everyone moves towards the centre, so that agents collide
        k = torch.randint(0, 5, (1, n), generator=gen)
        if t < 12:
            p = twin.pos
            k = torch.where(p[..., 0] > 0, 1, 2) if t % 2 else torch.where(p[..., 1] > 0, 3, 4)
        act = Action(discrete=k, continuous=torch.zeros(1, n, 0))
        s_ref, s = ref.step(act), twin.step(act)
        torch.testing.assert_close(s.obs.local, s_ref.obs.local, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(s.reward, s_ref.reward, atol=1e-5, rtol=1e-5)
        for key in ("penalty", "occupied"):
            torch.testing.assert_close(s.info[key], s_ref.info[key], atol=1e-6, rtol=1e-6)
        collided += float((s.reward < s.reward.max()).any())
        assert bool(s.truncated[0]) == bool(s_ref.truncated[0]) == (t == 24)
    ref.close()
    if radius == AGENT_RADIUS:
        assert collided > 0, "the episode never exercised the contact forces"


def test_view_masks_missing_agents_and_groups_landmarks() -> None:
    env = SpreadEnv(3, num_envs=2)
    obs = env.reset(seed=1)
    v = SpreadView(env.spec)(obs)
    assert v.entities.shape == (2, 3, 7, 2)
    # N = 3: two other agents; the third agent slot is absent
    assert v.mask[..., 3].logical_not().all() and v.mask[..., :3].all() and v.mask[..., 4:].all()
    assert (v.group[..., 4:] == 1).all() and (v.group[..., :4] == 0).all()
    assert (v.agent[..., 0] == torch.arange(3)).all()
