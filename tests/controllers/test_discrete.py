"""DiscretizedAction: the finite action set of discrete-only learners over hybrid actions."""

from __future__ import annotations

import pytest
import torch

from gridmarl.controllers.common.discrete import DiscretizedAction
from gridmarl.core.types import Action, AgentSpec, Observation


def _spec(n_discrete: int, n_continuous: int, n: int = 2) -> AgentSpec:
    return AgentSpec(
        n_agents=n,
        local_dim=1,
        forecast_len=0,
        forecast_dim=1,
        state_dim=1,
        global_dim=1,
        n_discrete=n_discrete,
        n_continuous=n_continuous,
        groups=torch.zeros(n, dtype=torch.long),
        neighbors=torch.full((n, 1), -1, dtype=torch.long),
    )


def _obs(mask: torch.Tensor | None, b: int = 1, n: int = 2) -> Observation:
    z = torch.zeros(b, n, 1)
    return Observation(
        local=z, forecast=torch.zeros(b, n, 0, 1), state=z, global_=torch.zeros(b, 1),
        action_mask=mask,
    )  # fmt: skip


def test_hybrid_energy_like_action_set_in_documented_order() -> None:
    """3 heat-pump modes x 5 battery levels x 5 EV levels = 75; the mode is the slowest digit,
    the last continuous dimension the fastest."""
    da = DiscretizedAction(_spec(3, 2))
    assert da.n_actions == 75 and da.n_grid == 25
    assert da.levels[0].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    idx = torch.tensor([[0, 1], [5, 74], [31, 62]])
    act = da.to_action(idx)
    assert act.discrete.tolist() == [[0, 0], [0, 2], [1, 2]]
    # 31 = 1·25 + 1·5 + 1 -> (−0.5, −0.5); 62 = 2·25 + 2·5 + 2 -> (0, 0); 5 -> (−0.5, −1)
    assert act.continuous.tolist() == [
        [[-1.0, -1.0], [-1.0, -0.5]],
        [[-0.5, -1.0], [1.0, 1.0]],
        [[-0.5, -0.5], [0.0, 0.0]],
    ]
    assert da.labels()[31] == "mode=1 u0=-0.5 u1=-0.5"
    every = torch.arange(75).reshape(25, 3)
    assert torch.equal(da.index_of(da.to_action(every)), every)  # round trip


def test_index_of_picks_the_nearest_level_per_dimension() -> None:
    da = DiscretizedAction(_spec(2, 2), levels=[3, [-1.0, 0.2, 1.0]])
    act = Action(
        discrete=torch.tensor([[1, 0]]),
        continuous=torch.tensor([[[0.49, 0.61], [-7.0, 0.59]]]),
    )
    # dim 0 levels (−1, 0, 1): 0.49 -> 0, −7 -> −1; dim 1 levels (−1, 0.2, 1): 0.61 -> 1,
    # 0.59 -> 0.2.  index = mode·9 + level0·3 + level1
    assert da.index_of(act).tolist() == [[9 + 1 * 3 + 2, 0 + 0 * 3 + 1]]
    # a tie (0.5 between 0 and 1) goes to the lower level
    tie = Action(
        discrete=torch.zeros(1, 2, dtype=torch.long), continuous=torch.full((1, 2, 2), 0.5)
    )
    assert da.to_action(da.index_of(tie)).continuous[0, 0, 0].item() == 0.0


def test_mask_allows_a_combined_action_iff_its_mode_is_allowed() -> None:
    da = DiscretizedAction(_spec(3, 1), levels=4)
    mode_mask = torch.tensor([[[True, False, False], [True, True, False]]])
    m = da.mask(_obs(mode_mask))
    assert m.shape == (1, 2, 12)
    allowed = da.to_action(torch.arange(12).expand(1, 2, 12).reshape(1, 24)).discrete
    want = mode_mask[0].gather(1, allowed.reshape(2, 12))
    assert torch.equal(m[0], want)
    assert m[0, 0].sum() == 4 and m[0, 1].sum() == 8
    assert bool(da.mask(_obs(None)).all())


def test_pure_discrete_maps_one_to_one_and_pure_continuous_is_a_grid() -> None:
    disc = DiscretizedAction(_spec(4, 0))
    idx = torch.tensor([[3, 0]])
    act = disc.to_action(idx)
    assert disc.n_actions == 4 and torch.equal(act.discrete, idx) and act.continuous.shape[-1] == 0
    assert torch.equal(disc.index_of(act), idx)
    mask = torch.tensor([[[True, False, True, False], [False, True, True, True]]])
    assert torch.equal(disc.mask(_obs(mask)), mask)

    cont = DiscretizedAction(_spec(0, 1), levels=[[-1.0, 0.0, 0.5]])
    assert cont.n_actions == 3
    act = cont.to_action(torch.tensor([[2, 1]]))
    assert act.discrete.tolist() == [[0, 0]] and act.continuous[..., 0].tolist() == [[0.5, 0.0]]
    assert torch.equal(cont.index_of(act), torch.tensor([[2, 1]]))
    assert cont.mask(_obs(None)).shape == (1, 2, 3)


def test_bad_levels_and_indices_are_refused() -> None:
    with pytest.raises(ValueError, match="dimensions"):
        DiscretizedAction(_spec(2, 2), levels=[3])
    with pytest.raises(ValueError, match="at least 2"):
        DiscretizedAction(_spec(2, 1), levels=1)
    with pytest.raises(ValueError, match="within"):
        DiscretizedAction(_spec(2, 1), levels=[[0.0, 1.5]])
    with pytest.raises(ValueError, match="increase"):
        DiscretizedAction(_spec(2, 1), levels=[[0.5, 0.0]])
    with pytest.raises(ValueError, match="outside"):
        DiscretizedAction(_spec(2, 1), levels=3).to_action(torch.tensor([[6, 0]]))


def test_energy_env_masks_the_heat_pump_modes_of_prosumers_without_one() -> None:
    """On the real hybrid env: the set has hp_modes · 25 actions; the combined actions of modes
    1 … M−1 are masked exactly for the prosumers without a heat pump, and a greedy pick among
    the allowed ones steps the env."""
    from gridmarl.energy.env import CommunityEnv
    from tests.energy.conftest import make_community

    community = make_community(n=8)
    env = CommunityEnv(community, num_envs=2, dtype=torch.float32, random_start=False)
    da = DiscretizedAction(env.spec)
    assert da.n_actions == community.hp_modes * 25
    obs = env.reset(seed=0)
    m = da.mask(obs)
    has_hp = obs.local[0, :, 18] > 0.5
    assert torch.equal(m[0, :, da.n_grid :].all(-1), has_hp)
    assert bool(m[..., : da.n_grid].all())
    g = torch.Generator().manual_seed(0)
    logits = torch.rand(m.shape, generator=g).masked_fill(~m, -1.0)
    idx = logits.argmax(-1)
    assert bool(m.gather(-1, idx[..., None]).all())
    act = da.to_action(idx)
    assert bool(obs.action_mask.gather(-1, act.discrete[..., None]).all())
    step = env.step(act)
    assert torch.isfinite(step.team_reward).all()
