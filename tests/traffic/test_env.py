"""TrafficEnv on the core contract: shapes, masks, seeding, PettingZoo conformance."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import torch
from pettingzoo.test import parallel_api_test, parallel_seed_test

from gridmarl.config import ScenarioError
from gridmarl.core.pettingzoo_adapter import PettingZooParallelEnv
from gridmarl.core.types import Action
from gridmarl.experiment import run_episode
from gridmarl.traffic.env import TrafficEnv
from gridmarl.traffic.rules import FixedTime, MaxPressure


def test_shapes_mask_and_done(make_tiny):
    env = TrafficEnv(make_tiny())
    try:
        obs = env.reset(seed=1)
        s = env.spec
        assert (s.n_agents, s.n_discrete, s.local_dim) == (4, 2, 2 + 16)
        assert obs.local.shape == (1, 4, 18) and obs.action_mask.shape == (1, 4, 2)
        assert s.neighbors.tolist() == [
            [2, 1, -1, -1],
            [3, -1, -1, 0],
            [-1, 3, 0, -1],
            [-1, -1, 1, 2],
        ]
        assert s.groups.tolist() == [0, 0, 0, 0]
        assert obs.action_mask.all()  # every phase allowed at the start
        step = env.step(
            Action(discrete=torch.ones(1, 4, dtype=torch.long), continuous=torch.zeros(1, 4, 0))
        )
        # switched to phase 1: its green is 7 s old < min green 10 s -> only phase 1 allowed
        assert step.obs.action_mask[0, :, 1].all() and not step.obs.action_mask[0, :, 0].any()
        assert torch.equal(step.obs.local[0, :, :2], torch.tensor([[0.0, 1.0]] * 4))
        assert torch.equal(step.reward, -step.obs.local[..., 10:].sum(-1))
        for _ in range(env.episode_len - 1):
            step = env.step(
                Action(
                    discrete=torch.zeros(1, 4, dtype=torch.long), continuous=torch.zeros(1, 4, 0)
                )
            )
        assert bool(step.truncated.all()) and not bool(step.terminated.any())
        rec = env.records()
        assert list(rec.columns[:3]) == ["step", "agent", "time_s"]
        assert len(rec) == env.episode_len * 4
        # the masked request at step 1 (back to phase 0) was overridden: phase 1 kept
        assert rec[rec.step == 1].phase.tolist() == [1, 1, 1, 1]
        assert rec[rec.step == 1].overridden.all()
        with pytest.raises(RuntimeError, match="reset"):
            env.step(
                Action(
                    discrete=torch.zeros(1, 4, dtype=torch.long), continuous=torch.zeros(1, 4, 0)
                )
            )
    finally:
        env.close()


def test_same_seed_same_result_other_seed_differs(make_tiny):
    env = TrafficEnv(make_tiny())
    try:
        rec_a, _ = run_episode(env, MaxPressure(), seed=7)
        k_a = env.episode_kpis()[0]
        rec_b, _ = run_episode(env, MaxPressure(), seed=7)
        k_b = env.episode_kpis()[0]
        run_episode(env, MaxPressure(), seed=8)
        k_c = env.episode_kpis()[0]
    finally:
        env.close()
    assert rec_a.equals(rec_b) and k_a == k_b
    assert k_a != k_c


@pytest.mark.slow
def test_worker_processes_match_in_process(make_tiny):
    sc = make_tiny()
    local = TrafficEnv(sc)
    try:
        rec_l, _ = run_episode(local, FixedTime(), seed=4)
    finally:
        local.close()
    par = TrafficEnv(sc, num_envs=2)
    try:
        rec_w, _ = run_episode(par, FixedTime(), seed=4)
        kp = par.episode_kpis()
    finally:
        par.close()
    assert rec_l.equals(rec_w)  # env 0 of the workers = the in-process run
    assert len(kp) == 2 and kp[0] != kp[1]  # env 1 draws another demand


@pytest.mark.slow
def test_reset_copies_runs_each_demand_in_every_copy(make_tiny):
    """Four simulations as two copies of two episodes: envs b and b + 2 see the same demand
    and, under the same actions, the same traffic; the two episodes differ."""
    env = TrafficEnv(make_tiny(), num_envs=4)
    try:
        obs = env.reset_copies(seed=3, copies=2)
        mp = MaxPressure()
        mp.reset(env)
        for _ in range(env.episode_len):
            a = mp.act(obs).discrete
            a = torch.cat([a[:2], a[:2]])  # copy 1 acts as copy 0 does
            obs = env.step(Action(discrete=a, continuous=torch.zeros(4, a.shape[1], 0))).obs
        kp = env.episode_kpis()
        with pytest.raises(ValueError, match="must divide"):
            env.reset_copies(seed=3, copies=3)
    finally:
        env.close()
    assert kp[0] == kp[2] and kp[1] == kp[3] and kp[0] != kp[1]


@pytest.mark.slow
def test_pettingzoo_api_and_seed(make_tiny):
    sc = make_tiny(traffic={"horizon_s": 60, "decision_s": 10})
    pz = PettingZooParallelEnv(lambda: TrafficEnv(sc, in_process=False))
    try:
        parallel_api_test(pz, num_cycles=8)
    finally:
        pz.close()
    parallel_seed_test(lambda: PettingZooParallelEnv(lambda: TrafficEnv(sc, in_process=False)))


def test_two_in_process_sumo_envs_conflict_clearly(make_tiny):
    a = TrafficEnv(make_tiny())
    b = TrafficEnv(make_tiny())
    try:
        a.reset(seed=0)
        with pytest.raises(RuntimeError, match="one simulation per process"):
            b.reset(seed=0)
    finally:
        a.close()
        b.close()


def test_pressure_features_are_maxpressures_and_the_green_time(make_tiny):
    """With ``traffic.pressure_features`` every intersection also sees its phases' pressures
    (the quantity MaxPressure maximises, so a policy can see what that baseline sees) and the
    time its current green has lasted; the base features are unchanged."""
    base = make_tiny()
    extra = make_tiny(traffic={"horizon_s": 120, "decision_s": 10, "pressure_features": True})
    # two live simulations: worker processes (libsumo runs one per process)
    plain, env = TrafficEnv(base, in_process=False), TrafficEnv(extra, in_process=False)
    try:
        p, lanes = env.n_phases, env.n_lanes
        assert env.spec.local_dim == plain.spec.local_dim + p + 1 == 2 * p + 2 * lanes + 1
        mp, ft = MaxPressure(), FixedTime(green_s=20)
        mp.reset(env)
        ft.reset(env)
        o_plain, o = plain.reset(seed=4), env.reset(seed=4)
        green = [10.0] * 4  # reset: as if phase 0 had served its minimum green (10 s)
        for _ in range(env.episode_len):
            assert torch.equal(o.local[..., : plain.spec.local_dim], o_plain.local)
            assert torch.allclose(o.local[..., p + 2 * lanes : -1], mp.model.pressures(o))
            assert o.local[0, :, -1].tolist() == pytest.approx([g / 60 for g in green])
            a = ft.act(o)
            phase = o.local[0, :, :p].argmax(-1)
            o, o_plain = env.step(a).obs, plain.step(a).obs
            for i in range(4):  # a switch spends the yellow, then the new green starts
                switched = int(a.discrete[0, i]) != int(phase[i])
                green[i] = 10.0 - 3.0 if switched else green[i] + 10.0
        assert o.local[..., p + 2 * lanes : -1].abs().sum() > 0  # traffic was counted
    finally:
        plain.close()
        env.close()


def test_sumo_extra_args_reach_the_simulator(make_tiny, tmp_path):
    """``env.engine.extra_args`` adds SUMO options to the next load (here SUMO's own trip
    records, which ``benchmarks/traffic_delay_breakdown.py`` reads): one record per finished
    trip, at the time the env counted it."""
    out = tmp_path / "trips.xml"
    env = TrafficEnv(make_tiny())
    try:
        env.engine.extra_args = ["--tripinfo-output", str(out)]
        run_episode(env, MaxPressure(), seed=3)
        finished = env.episode_kpis()[0]["throughput_veh"]
    finally:
        env.close()
    trips = list(ET.parse(out).getroot().iter("tripinfo"))
    assert finished > 0 and len(trips) == finished
    workers = TrafficEnv(make_tiny(), in_process=False)
    try:
        with pytest.raises(RuntimeError, match="in_process"):
            _ = workers.engine
    finally:
        workers.close()


def test_neighbor_features_are_the_neighbours_own(make_tiny):
    """With ``traffic.neighbor_features`` each intersection also sees, per neighbour N, E, S,
    W, that neighbour's phase one-hot, pressures and green time (zeros at the grid edge)."""
    sc = make_tiny(
        traffic={
            "horizon_s": 60,
            "decision_s": 10,
            "pressure_features": True,
            "neighbor_features": True,
        }
    )
    env = TrafficEnv(sc)
    try:
        p, lanes = env.n_phases, env.n_lanes
        own = slice(p + 2 * lanes, None)
        base = 2 * p + 2 * lanes + 1
        f = 2 * p + 1
        assert env.spec.local_dim == base + 4 * f
        assert env.spec.local_features[base] == "N_phase_0"
        nb = env.spec.neighbors
        obs = env.reset(seed=2)
        ft = FixedTime(green_s=20)
        ft.reset(env)
        for _ in range(env.episode_len):
            loc = obs.local[0]
            mine = torch.cat([loc[:, :p], loc[:, p + 2 * lanes : base]], -1)
            for i in range(4):
                for d in range(4):
                    got = loc[i, base + d * f : base + (d + 1) * f]
                    j = int(nb[i, d])
                    assert torch.equal(got, mine[j] if j >= 0 else torch.zeros(f))
            obs = env.step(ft.act(obs)).obs
        assert obs.local[0, :, own].abs().sum() > 0
    finally:
        env.close()
    with pytest.raises(ScenarioError, match="neighbor_features needs"):
        make_tiny(traffic={"horizon_s": 60, "decision_s": 10, "neighbor_features": True})
