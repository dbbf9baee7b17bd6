"""CommunityEnv: differential test against the reference, seeding, accessors, records, KPIs
and the PettingZoo conformance suite."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from pettingzoo.test import parallel_api_test, parallel_seed_test

from gridmarl.core.pettingzoo_adapter import PettingZooParallelEnv
from gridmarl.core.types import Action
from gridmarl.energy.community import Community
from gridmarl.energy.env import CommunityEnv
from gridmarl.energy.kpis import KPI_KEYS, community_kpis, share_of_optimal_savings
from gridmarl.energy.reference import INFO_KEYS, ReferenceCommunityEnv

T64 = torch.float64


def random_action(g: torch.Generator, b: int, n: int, m: int) -> Action:
    """Modes beyond the allowed ones and setpoints beyond [-1, 1] exercise the projection."""
    disc = torch.randint(-1, m + 1, (b, n), generator=g)
    cont = torch.rand(b, n, 2, generator=g, dtype=T64) * 2.6 - 1.3
    return Action(discrete=disc, continuous=cont)


@pytest.mark.parametrize("guard", [False, True])
@pytest.mark.parametrize("num_envs", [1, 3, 6])
@pytest.mark.parametrize("which", ["community", "community_quarter"])
def test_batched_env_agrees_with_reference(
    num_envs: int, which: str, guard: bool, request: pytest.FixtureRequest
) -> None:
    from dataclasses import replace

    c: Community = replace(request.getfixturevalue(which), ev_deadline_guard=guard)
    env = CommunityEnv(
        c,
        num_envs=num_envs,
        dtype=T64,
        random_start=num_envs > 1,
        episode_steps=24 if num_envs > 1 else None,
        seed=num_envs,
    )
    env.reset()
    ref = ReferenceCommunityEnv(c, env.start.tolist(), env.episode_len)
    g = torch.Generator().manual_seed(num_envs)
    for _ in range(env.episode_len):
        act = random_action(g, num_envs, c.n, c.hp_modes)
        step = env.step(act)
        out = ref.step(act.discrete.tolist(), act.continuous.tolist())
        torch.testing.assert_close(
            step.reward, torch.tensor(out["reward"], dtype=T64), rtol=0, atol=1e-9
        )
        torch.testing.assert_close(
            step.team_reward, torch.tensor(out["team_reward"], dtype=T64), rtol=0, atol=1e-9
        )
        torch.testing.assert_close(step.reward.sum(-1), step.team_reward, rtol=0, atol=1e-12)
        for k in INFO_KEYS:
            torch.testing.assert_close(
                step.info[k], torch.tensor(out[k], dtype=T64), rtol=0, atol=1e-9, msg=k
            )
        for k, v in env.device_state().items():
            torch.testing.assert_close(
                v, torch.tensor(ref.device_state()[k], dtype=T64), rtol=0, atol=1e-9, msg=k
            )
    assert bool(step.done.all())
    # the fixed horizon is a time limit: truncated, never terminated
    assert bool(step.truncated.all()) and not bool(step.terminated.any())
    with pytest.raises(RuntimeError, match="reset"):
        env.step(act)


def rollout(env: CommunityEnv, seed: int, act_seed: int = 0) -> tuple[torch.Tensor, ...]:
    obs = env.reset(seed=seed)
    g = torch.Generator().manual_seed(act_seed)
    first = obs.forecast.clone()
    total = torch.zeros(env.num_envs, dtype=env.dtype)
    done = False
    while not done:
        step = env.step(random_action(g, env.num_envs, env.community.n, env.community.hp_modes))
        total += step.team_reward
        done = bool(step.done.all())
    return env.start.clone(), first, total


def test_same_seed_same_result_different_seed_differs(community: Community) -> None:
    def make() -> CommunityEnv:
        return CommunityEnv(
            community,
            num_envs=4,
            dtype=T64,
            random_start=True,
            episode_steps=12,
            forecast_kind="noisy",
            noise_std=0.2,
        )

    a, b = rollout(make(), 5), rollout(make(), 5)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    c = rollout(make(), 6)
    assert not torch.equal(a[0], c[0])  # starts
    assert not torch.equal(a[1], c[1])  # noisy forecasts


def test_forecast_window_and_forecast_tensors(community: Community) -> None:
    for kind in ("perfect", "noisy"):
        env = CommunityEnv(
            community,
            num_envs=2,
            dtype=T64,
            random_start=True,
            episode_steps=10,
            forecast_kind=kind,
            noise_std=0.3,
            forecast_steps=4,
        )
        obs = env.reset(seed=1)
        env.step(Action.zeros(env.spec, 2, dtype=T64))
        obs = env.step(Action.zeros(env.spec, 2, dtype=T64)).obs
        ft = env.forecast_tensors(30)
        s = (env.start + env.t).tolist()
        assert ft["load_kw"].shape == (2, 4, 30) and ft["price_usd_per_kwh"].shape == (2, 30)
        for b in range(2):  # index 0 is the current step, exact
            np.testing.assert_allclose(ft["load_kw"][b, :, 0].numpy(), community.load_kw[s[b]])
            np.testing.assert_allclose(
                ft["price_usd_per_kwh"][b, 0].item(), community.price_usd_per_kwh[s[b]]
            )
        # the agents' forecast is leads 1 … H of the same tensors, scaled
        ps, pr = env.POWER_SCALE_KW, env.PRICE_SCALE_USD_PER_KWH
        torch.testing.assert_close(obs.forecast[..., 0], ft["load_kw"][..., 1:5] / ps)
        torch.testing.assert_close(obs.forecast[..., 1], ft["pv_kw"][..., 1:5] / ps)
        torch.testing.assert_close(
            obs.forecast[..., 2], (ft["price_usd_per_kwh"][:, None, 1:5] / pr).expand(-1, 4, -1)
        )
        exact = torch.as_tensor(
            community.load_kw[
                np.minimum(np.asarray(s)[:, None] + np.arange(30), community.steps - 1)
            ]
        ).transpose(1, 2)
        if kind == "perfect":
            torch.testing.assert_close(ft["load_kw"], exact)
        else:
            assert not torch.allclose(ft["load_kw"], exact)
            assert torch.all(ft["load_kw"] >= 0)
            torch.testing.assert_close(env.forecast_tensors(30)["load_kw"], ft["load_kw"])


def test_observation_spec_mask_and_triplet(community: Community) -> None:
    env = CommunityEnv(community, num_envs=2, dtype=T64)
    spec = env.spec
    obs = env.reset()
    b, n = 2, community.n
    assert obs.local.shape == (b, n, spec.local_dim) == (b, n, len(env.LOCAL_FEATURES))
    assert obs.forecast.shape == (b, n, 3, 3)
    assert obs.state.shape == (b, n, spec.state_dim)
    assert obs.global_.shape == (b, spec.global_dim)
    assert (spec.n_discrete, spec.n_continuous) == (community.hp_modes, 2)
    assert obs.action_mask[0].tolist() == [
        [True] * 3,
        [True, False, False],
        [True] * 3,
        [True, False, False],
    ]
    assert spec.groups.tolist() == [3, 1, 2, 0]  # codes 7, 3, 5, 0
    # 4 prosumers: one feeder of the default layout, everyone neighbours everyone
    assert spec.neighbors.tolist() == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]
    ds = env.device_state()
    trip = obs.local[..., list(env.TRIPLET_IDX)]
    torch.testing.assert_close(
        trip[..., 0] * torch.as_tensor(community.battery_kwh), ds["battery_kwh"]
    )
    ev_soc = torch.where(
        torch.as_tensor(community.ev_present[0]),
        ds["ev_kwh"] / torch.as_tensor(np.maximum(community.ev_kwh, 1)),
        0.0,
    )
    torch.testing.assert_close(trip[..., 1], ev_soc.to(T64))
    torch.testing.assert_close(trip[..., 2] * env.THETA_SCALE_C + env.THETA_REF_C, ds["theta_c"])
    assert float(obs.local.abs().max()) < 5.0  # features are O(1)


def test_records_and_kpis_are_consistent(community: Community) -> None:
    env = CommunityEnv(community, dtype=T64)
    assert env.record
    obs = env.reset()
    g = torch.Generator().manual_seed(0)
    team, agent = [], []
    for _ in range(env.episode_len):
        step = env.step(random_action(g, 1, community.n, community.hp_modes))
        team.append(float(step.team_reward[0]))
        agent.append(step.reward[0].tolist())
    rec, crec = env.records(), env.community_records()
    assert list(rec.columns[:3]) == ["step", "time", "prosumer"]
    assert len(rec) == env.episode_len * community.n and len(crec) == env.episode_len
    np.testing.assert_allclose(
        rec["battery_kw"], rec["battery_charge_kw"] - rec["battery_discharge_kw"]
    )
    np.testing.assert_allclose(rec["reward"].to_numpy().reshape(-1, community.n), agent)
    np.testing.assert_allclose(crec["cost_usd"], -np.asarray(team))
    np.testing.assert_allclose(
        rec.groupby("step")["bill_usd"].sum(), crec["grid_cost_usd"], atol=1e-12
    )
    assert crec["time"].iloc[0] == community.time[0]
    kpi = community_kpis(rec, crec, community.step_h)
    assert list(kpi) == list(KPI_KEYS)
    assert kpi["cost_usd"] == pytest.approx(-sum(team))
    cons = (rec["load_kw"] + rec["hp_kw"] + rec["ev_kw"] + rec["battery_charge_kw"]).sum()
    assert kpi["self_sufficiency_pct"] == pytest.approx(100 * (1 - crec["import_kw"].sum() / cons))
    assert 0.0 <= kpi["self_sufficiency_pct"] <= 100.0
    assert kpi["peak_import_kw"] == pytest.approx(float(env.device_state()["peak_kw"][0]))
    obs  # noqa: B018 - the first observation is not needed


def test_share_of_optimal_savings() -> None:
    assert share_of_optimal_savings(100.0, 80.0, 60.0) == pytest.approx(0.5)
    assert math.isnan(share_of_optimal_savings(100.0, 80.0, 100.0))


def test_float32_and_random_start_bounds(community: Community) -> None:
    env = CommunityEnv(community, num_envs=64, random_start=True, episode_steps=20, seed=3)
    assert env.dtype == torch.float32 and not env.record
    obs = env.reset()
    assert obs.local.dtype == torch.float32
    assert int(env.start.min()) >= 0 and int(env.start.max()) <= community.steps - 20 - 3 - 1
    assert len(set(env.start.tolist())) > 5
    step = env.step(Action.zeros(env.spec, 64))
    assert torch.isfinite(step.reward).all() and step.team_reward.shape == (64,)
    with pytest.raises(RuntimeError, match="record"):
        env.records()
    with pytest.raises(ValueError, match="episode_steps"):
        CommunityEnv(community, episode_steps=community.steps)


def test_reset_copies_runs_each_episode_in_every_copy(community: Community) -> None:
    """``reset_copies``: envs b and b + E run the same episode (start, noisy forecast, costs
    under the same actions), and the E episodes differ; a plain reset is unchanged."""
    kw = dict(random_start=True, episode_steps=12, forecast_kind="noisy", noise_std=0.2, seed=5)
    env = CommunityEnv(community, num_envs=6, dtype=T64, **kw)
    obs = env.reset_copies(seed=11, copies=3)
    assert env.start.tolist()[:2] == env.start.tolist()[2:4] == env.start.tolist()[4:]
    assert env.start[0] != env.start[1]
    g = torch.Generator().manual_seed(0)
    pair = random_action(g, 2, community.n, community.hp_modes)
    act = Action(discrete=pair.discrete.repeat(3, 1), continuous=pair.continuous.repeat(3, 1, 1))
    for _ in range(env.episode_len):
        for a, b in ((0, 2), (1, 5)):
            assert torch.equal(obs.local[a], obs.local[b])
            assert torch.equal(obs.forecast[a], obs.forecast[b])
        step = env.step(act)
        assert torch.equal(step.info["cost_usd"][:2], step.info["cost_usd"][4:])
        obs = step.obs
    assert not torch.equal(obs.forecast[0], obs.forecast[1])
    with pytest.raises(ValueError, match="must divide"):
        env.reset_copies(seed=1, copies=4)
    # copies=1 is reset itself: the same starts as a fresh env's plain reset
    plain = CommunityEnv(community, num_envs=6, dtype=T64, **kw)
    plain.reset(seed=11)
    env.reset_copies(seed=11, copies=1)
    assert torch.equal(plain.start, env.start)


def test_pettingzoo_conformance(community: Community) -> None:
    def make() -> PettingZooParallelEnv:
        return PettingZooParallelEnv(
            lambda: CommunityEnv(
                community, episode_steps=12, forecast_kind="noisy", random_start=True
            )
        )

    parallel_api_test(make(), num_cycles=20)
    parallel_seed_test(make, num_cycles=20)


def test_broadcast_loading_adds_one_shared_feature() -> None:
    """community.broadcast_loading appends |G_prev| / limit to every prosumer's local features
    (and to the state before x_prev); everything else, and the default, is unchanged."""
    from dataclasses import replace

    from tests.energy.conftest import make_community

    c = make_community(n=5, transformer_kw=3.0)
    plain = CommunityEnv(c, num_envs=2, dtype=T64, episode_steps=6)
    wide = CommunityEnv(replace(c, broadcast_loading=True), num_envs=2, dtype=T64, episode_steps=6)
    assert wide.spec.local_dim == plain.spec.local_dim + 1 == 25
    assert wide.spec.state_dim == plain.spec.state_dim + 1
    o1, o2 = plain.reset(seed=1), wide.reset(seed=1)
    g = torch.Generator().manual_seed(2)
    for _ in range(5):
        assert torch.equal(o2.local[..., :24], o1.local)
        assert torch.equal(o2.state[..., :24], o1.state[..., :24])
        assert torch.equal(o2.state[..., -1], o1.state[..., -1])
        a = random_action(g, 2, c.n, c.hp_modes)
        s1, s2 = plain.step(a), wide.step(a)
        assert torch.equal(s1.reward, s2.reward)
        o1, o2 = s1.obs, s2.obs
        loading = o2.local[..., 24]
        assert torch.allclose(loading, loading[:, :1].expand_as(loading))  # shared
        assert torch.allclose(loading[:, 0], s1.info["grid_kw"].abs() / c.transformer_kw)


def test_ev_rate_feature_is_need_over_hours_left() -> None:
    """community.ev.rate_feature appends ev_need_hours / ev_hours_left (capped, 0 without a car
    at home) after the other local features; the default observation is unchanged."""
    from dataclasses import replace

    from tests.energy.conftest import make_community

    c = make_community(n=5, transformer_kw=3.0)
    plain = CommunityEnv(c, num_envs=2, dtype=T64, episode_steps=20)
    both = replace(c, broadcast_loading=True, ev_rate_feature=True)
    wide = CommunityEnv(both, num_envs=2, dtype=T64, episode_steps=20)
    assert wide.spec.local_dim == plain.spec.local_dim + 2 == 26
    assert wide.local_features[-2:] == ("grid_loading_prev", "ev_rate_needed")
    o1, o2 = plain.reset(seed=1), wide.reset(seed=1)
    g = torch.Generator().manual_seed(2)
    f = CommunityEnv.F
    seen_need = False
    for _ in range(19):
        assert torch.equal(o2.local[..., :24], o1.local)
        left = o1.local[..., f["ev_hours_left"]]
        need = o1.local[..., f["ev_need_hours"]]
        home = left > 0
        want = torch.where(home, need / left.clamp_min(1e-9), torch.zeros_like(need))
        assert torch.allclose(o2.local[..., 25], want.clamp_max(CommunityEnv.EV_RATE_CAP))
        assert torch.all(o2.local[..., 25][~home] == 0)
        seen_need |= bool((o2.local[..., 25] > 0).any())
        a = random_action(g, 2, c.n, c.hp_modes)
        s1, s2 = plain.step(a), wide.step(a)
        assert torch.equal(s1.reward, s2.reward)
        o1, o2 = s1.obs, s2.obs
    assert seen_need  # the test community has cars that need charging


def test_ev_action_prior_spreads_the_need_evenly() -> None:
    """community.ev.action_prior appends the even-spread EV action 2 min(1, need / left) - 1
    (-1 without a car at home) and declares it as the EV dimension's prior; acting on it charges
    each car at one constant power over its stay and meets every reachable target."""
    from dataclasses import replace

    from tests.energy.conftest import make_community

    c = make_community(n=8, days=3)
    kw = {"num_envs": 1, "dtype": T64, "episode_steps": 60, "record": True}
    plain = CommunityEnv(c, **kw)
    env = CommunityEnv(replace(c, ev_action_prior=True), **kw)
    assert env.local_features[-1] == "ev_prior_u" and env.spec.local_dim == 25
    assert env.spec.action_prior == (-1, 24) and plain.spec.action_prior == ()
    o1, o = plain.reset(seed=1), env.reset(seed=1)
    f = CommunityEnv.F
    for _ in range(60):
        assert torch.equal(o.local[..., :24], o1.local)
        left = o.local[..., f["ev_hours_left"]]
        need = o.local[..., f["ev_need_hours"]]
        home = left > 0
        share = torch.where(home, need / left.clamp_min(1e-9), torch.zeros_like(need))
        assert torch.allclose(o.local[..., 24], 2 * share.clamp_max(1.0) - 1)
        assert torch.all(o.local[..., 24][~home] == -1)
        u = torch.stack([torch.zeros_like(share), o.local[..., 24]], -1)
        a = Action(discrete=torch.zeros_like(share, dtype=torch.long), continuous=u)
        s1, st = plain.step(a), env.step(a)
        assert torch.equal(s1.reward, st.reward)  # the feature changes nothing physical
        o1, o = s1.obs, st.obs
    rec = env.records()
    assert rec.ev_unmet_kwh.sum() == pytest.approx(0.0, abs=1e-9)  # every target is reachable
    stays = 0
    for _, r in rec.sort_values("step").groupby("prosumer"):
        p = r.ev_kw.to_numpy()
        run = np.split(p, np.flatnonzero(np.diff(p > 0)) + 1)  # charging / idle stretches
        for seg in run:
            if seg[0] > 0:
                stays += 1
                assert np.allclose(seg, seg[0])  # one constant power per stay
    assert stays >= 4


@pytest.mark.parametrize("signal", ["headroom", "envelope", "price"])
def test_congestion_signal_features(signal: str) -> None:
    """community.congestion_signal appends what the platform publishes, computed by hand here
    from the previous step's device power and this step's inflexible net load."""
    from dataclasses import replace

    from gridmarl.energy.env import CONGESTION_FEATURES
    from tests.energy.conftest import make_community

    c = replace(make_community(n=4, days=2), transformer_kw=6.0, congestion_signal=signal)
    env = CommunityEnv(c, num_envs=1, dtype=T64, episode_steps=12)
    names = CONGESTION_FEATURES[signal]
    assert env.local_features[-len(names) :] == names
    assert env.spec.local_dim == len(CommunityEnv.LOCAL_FEATURES) + len(names)
    obs = env.reset()
    g = torch.Generator().manual_seed(0)
    ps, pr = CommunityEnv.POWER_SCALE_KW, CommunityEnv.PRICE_SCALE_USD_PER_KWH
    flex_prev = 0.0
    seen = []
    for t in range(env.episode_len):
        base = float((c.load_kw[t] - c.pv_kw[t]).sum())
        g_exp = base + flex_prev
        got = obs.local[0, :, -len(names) :]
        assert torch.allclose(got, got[:1].expand_as(got))  # the same for every home
        if signal == "headroom":
            want = [(6.0 - g_exp) / (4 * ps), (6.0 + g_exp) / (4 * ps)]
        elif signal == "envelope":  # the inflexible net load only: not what the devices drew
            want = [(6.0 - base) / (4 * ps), (6.0 + base) / (4 * ps)]
        else:
            load = g_exp / 6.0
            up = min(max((load - 0.8) / 0.2, 0.0), 1.0)
            down = min(max((-load - 0.8) / 0.2, 0.0), 1.0)
            want = [c.over_limit_usd_per_kwh * (up - down) / pr]
        np.testing.assert_allclose(got[0].numpy(), want, atol=1e-12)
        seen.append(want[0])
        step = env.step(random_action(g, 1, c.n, c.hp_modes))
        obs = step.obs
        flex_prev = float(step.info["grid_kw"][0]) - base
    assert len(set(np.round(seen, 9))) >= 3  # the signal moves
    if signal == "price":
        assert max(seen) > 0  # the 6 kW transformer is congested in this case


def test_ev_deadline_guard_meets_every_reachable_target() -> None:
    """With ``ev_deadline_guard`` an EV that is never asked to charge still reaches every
    target the full charger can reach: its shortfall equals that of charging at full power from
    arrival, it charges no more than that, and only as late as it can; without the guard it
    misses every target."""
    from dataclasses import replace

    from tests.energy.conftest import make_community

    c = make_community(n=8, days=2, seed=3)
    assert c.has_ev.any()

    def run(community: Community, u_ev: float) -> tuple[float, float, pd.DataFrame]:
        """EV shortfall [kWh], summed charge power [kW] and env 0's records."""
        env = CommunityEnv(community, num_envs=1, dtype=T64)
        env.reset(seed=0)
        unmet = 0.0
        hold = torch.zeros(1, c.n, dtype=torch.long)
        for _ in range(env.episode_len):
            cont = torch.zeros(1, c.n, 2, dtype=T64)
            cont[..., 1] = u_ev
            step = env.step(Action(discrete=hold, continuous=cont))
            unmet += float(step.info["ev_unmet_kwh"].sum())
        rec = env.records()
        return unmet, float(rec["ev_kw"].sum()), rec

    unmet_idle, kw_idle, _ = run(c, -1.0)
    unmet_full, kw_full, rec_full = run(c, 1.0)
    unmet_guard, kw_guard, rec_guard = run(replace(c, ev_deadline_guard=True), -1.0)
    assert unmet_idle > unmet_full + 1.0  # there are targets to miss
    assert unmet_guard == pytest.approx(unmet_full, abs=1e-9)
    assert 0 < kw_guard <= kw_full + 1e-9

    # as late as it can: the guard's first charging hour of each prosumer is no earlier
    def first(rec: pd.DataFrame) -> pd.Series:
        return rec[rec["ev_kw"] > 1e-9].groupby("prosumer")["step"].min()

    g, f = first(rec_guard), first(rec_full)
    assert bool((g.reindex(f.index) >= f).all()) and bool((g > f.reindex(g.index)).any())


def test_ev_deadline_guard_in_the_accounting_and_the_milp() -> None:
    """The MILP's independent accounting applies the guard as the env does (random actions,
    float64), and the MILP's optimum, which meets every reachable target, never triggers it."""
    from dataclasses import replace

    from baselines_opt.community import schedule_cost, solve_community_milp
    from tests.energy.conftest import make_community

    c = replace(make_community(n=8, days=2, seed=3), ev_deadline_guard=True)
    env = CommunityEnv(c, num_envs=1, dtype=T64)
    env.reset(seed=0)
    g = torch.Generator().manual_seed(4)
    acts, cost = [], []
    for _ in range(env.episode_len):
        a = random_action(g, 1, c.n, c.hp_modes)
        acts.append(a)
        cost.append(float(env.step(a).team_reward[0]))
    disc = torch.cat([a.discrete for a in acts]).numpy()
    cont = torch.cat([a.continuous for a in acts]).numpy()
    acc = schedule_cost(c, disc, cont)
    np.testing.assert_allclose(-acc["cost_usd"], cost, atol=1e-9)
    plain = replace(c, ev_deadline_guard=False)
    assert schedule_cost(plain, disc, cont)["unmet_usd"].sum() > acc["unmet_usd"].sum() + 1.0
    res = solve_community_milp(plain, start=0, steps=env.episode_len, mip_gap=1e-6)
    guarded = schedule_cost(c, res.discrete, res.continuous)["cost_usd"].sum()
    assert guarded == pytest.approx(res.objective_usd, rel=1e-7)


@pytest.mark.parametrize("episode_steps", [48, 30])
def test_ev_deadline_guard_agrees_with_reference_when_it_binds(episode_steps: int) -> None:
    """EVs never asked to charge, so the guard does all the charging: the env and the reference
    agree, including the stays that outlast the episode (not billed, so not guarded)."""
    from dataclasses import replace

    from tests.energy.conftest import make_community

    c = replace(make_community(n=8, days=2, seed=3), ev_deadline_guard=True)
    env = CommunityEnv(c, num_envs=1, dtype=T64, episode_steps=episode_steps)
    env.reset(seed=0)
    ref = ReferenceCommunityEnv(c, env.start.tolist(), env.episode_len)
    g = torch.Generator().manual_seed(5)
    charged = 0.0
    for _ in range(env.episode_len):
        act = random_action(g, 1, c.n, c.hp_modes)
        act.continuous[..., 1] = -1.0
        step = env.step(act)
        out = ref.step(act.discrete.tolist(), act.continuous.tolist())
        for k in INFO_KEYS:
            torch.testing.assert_close(
                step.info[k], torch.tensor(out[k], dtype=T64), rtol=0, atol=1e-9, msg=k
            )
        charged += float(env.records()["ev_kw"].iloc[-c.n :].sum())
    assert charged > 0
