"""The MILP teacher of ``--warm-start milp``: it replays, in every env of a batch, the
perfect-foresight optimum of that env's own (random-start) episode."""

from __future__ import annotations

import pytest
import torch

from baselines_opt.community import solve_community_milp
from gridmarl.energy.env import CommunityEnv
from gridmarl.energy.rules import RuleBased
from gridmarl.energy.training import TEACHERS, MilpTeacher
from tests.energy.conftest import make_community


def _episode_costs(env: CommunityEnv, ctrl, seed: int) -> torch.Tensor:
    obs = env.reset(seed=seed)
    ctrl.reset(env)
    total = torch.zeros(env.num_envs, dtype=torch.float64)
    for _ in range(env.episode_len):
        step = env.step(ctrl.act(obs))
        total += step.info["cost_usd"]  # [B] community cost of the step [$]
        obs = step.obs
    return total


@pytest.mark.slow
def test_milp_teacher_replays_each_envs_optimum() -> None:
    c = make_community(n=4, days=2, transformer_kw=5.0)
    env = CommunityEnv(c, num_envs=3, dtype=torch.float64, episode_steps=12, random_start=True)
    teacher = MilpTeacher(episodes=3, time_limit_s=30.0, mip_gap=1e-6)
    cost = _episode_costs(env, teacher, seed=2)
    starts = env.start.tolist()
    assert len(set(starts)) > 1  # the envs really start at different steps
    for b, start in enumerate(starts):
        res = solve_community_milp(c, start=start, steps=12, mip_gap=1e-6)
        assert cost[b].item() == pytest.approx(res.objective_usd, rel=1e-6)
    rule = _episode_costs(env, RuleBased(), seed=2)
    assert bool((cost <= rule + 1e-9).all())
    assert len(teacher.gaps) == 3 and max(teacher.gaps) <= 1e-4


def test_milp_is_a_warm_start_teacher() -> None:
    assert {"rule_based", "no_control", "milp"} <= set(TEACHERS)
    with pytest.raises(RuntimeError, match="reset"):
        MilpTeacher().act(None)


@pytest.mark.slow
def test_a_value_learner_demonstrates_the_milp_schedule_of_its_own_episodes() -> None:
    """``--warm-start milp`` for DQN / DGN / LToS / HMF: the demonstrated rows are the MILP's
    optimum of the very episodes the env then runs (the teacher is reset after the env),
    mapped onto the learner's discrete actions."""
    from gridmarl.controllers.common.qlearning import QConfig
    from gridmarl.controllers.dqn import DQN
    from gridmarl.core.seeding import stream_seed
    from gridmarl.core.types import Action

    c = make_community(n=4, days=2, transformer_kw=5.0)

    def make_env() -> CommunityEnv:
        return CommunityEnv(c, num_envs=2, episode_steps=8, random_start=True)

    env = make_env()
    dqn = DQN(env.spec, QConfig.from_options({"capacity": 64, "action_levels": 5}), seed=0)
    dqn.demonstrate(env, MilpTeacher(episodes=2, time_limit_s=30.0, mip_gap=1e-6), 3, False)
    ref = make_env()
    ref.reset(seed=stream_seed(3, "warm_start", 0))  # the demonstrated episodes' starts
    starts = ref.start.tolist()
    assert len(set(starts)) > 1
    rows = dqn.replay.rows(torch.arange(len(dqn.replay)))  # row t·B + b: step t of env b
    assert len(dqn.replay) == 2 * 8
    for b, start in enumerate(starts):
        res = solve_community_milp(c, start=start, steps=8, mip_gap=1e-6)
        want = dqn.actions.index_of(
            Action(
                discrete=torch.from_numpy(res.discrete.copy()).long(),
                continuous=torch.from_numpy(res.continuous.copy()).float(),
            )
        )  # [T, N]
        assert torch.equal(rows.action.discrete[b::2], want)


def test_the_comfort_margin_narrows_each_band_at_most_to_its_midpoint() -> None:
    import numpy as np

    from gridmarl.energy.training import narrowed_band

    c = make_community(n=4, days=1)
    assert narrowed_band(c, 0.0) is c
    lo, hi = c.theta_lo_c, c.theta_hi_c
    n = narrowed_band(c, 0.5)
    np.testing.assert_allclose(n.theta_lo_c, lo + 0.5)
    np.testing.assert_allclose(n.theta_hi_c, hi - 0.5)
    wide = narrowed_band(c, 100.0)  # clamped: both bounds at the midpoint
    np.testing.assert_allclose(wide.theta_lo_c, (lo + hi) / 2)
    np.testing.assert_allclose(wide.theta_hi_c, (lo + hi) / 2)
    with pytest.raises(ValueError, match="comfort_margin_c"):
        MilpTeacher(comfort_margin_c=-1.0)


def _replay(env: CommunityEnv, ctrl, seed: int) -> tuple[float, float, torch.Tensor]:
    """Cost [$], comfort violation of the real band [C·h] and indoor temperatures [T, N] [C]."""
    obs = env.reset(seed=seed)
    ctrl.reset(env)
    cost = comfort = 0.0
    temps = []
    for _ in range(env.episode_len):
        step = env.step(ctrl.act(obs))
        cost += float(step.info["cost_usd"].sum())
        comfort += float(step.info["comfort_c_h"].sum())
        temps.append(env._theta[0].clone())
        obs = step.obs
    return cost, comfort, torch.stack(temps)


@pytest.mark.slow
def test_a_teacher_with_a_comfort_margin_keeps_inside_the_narrowed_band() -> None:
    """The optimum rides the band's edge; with a 0.5 C margin the replayed temperatures keep
    (about) 0.5 C inside the real band, at a cost no lower than the optimum's."""
    c = make_community(n=4, days=1, transformer_kw=5.0)
    env = CommunityEnv(c, num_envs=1, dtype=torch.float64, episode_steps=20)
    cost0, comfort0, temps0 = _replay(env, MilpTeacher(1, 30.0, 1e-6), seed=0)
    cost1, comfort1, temps1 = _replay(env, MilpTeacher(1, 30.0, 1e-6, comfort_margin_c=0.5), 0)
    hp = torch.from_numpy(c.has_hp)
    lo = torch.from_numpy(c.theta_lo_c)[hp]
    hi = torch.from_numpy(c.theta_hi_c)[hp]
    t0, t1 = temps0[:, hp], temps1[:, hp]
    edge0 = torch.minimum(t0 - lo, hi - t0)  # the optimum's distance to the band's edge [C]
    edge1 = torch.minimum(t1 - lo, hi - t1)
    assert float(edge0.min()) < 0.25  # the optimum does ride the edge
    # the narrowed band is priced, not hard: the teacher may pay for a few hundredths [C]
    assert float(edge1.min()) >= 0.45
    assert comfort1 <= comfort0 + 1e-9
    assert cost1 >= cost0 - 1e-6
