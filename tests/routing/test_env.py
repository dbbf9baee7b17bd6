"""RoutingEnv: packet-for-packet agreement with the reference, masks, seeding, PettingZoo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pettingzoo.test import parallel_api_test, parallel_seed_test

from gridmarl.core.pettingzoo_adapter import PettingZooParallelEnv
from gridmarl.core.types import Action
from gridmarl.experiment import run_episode
from gridmarl.routing.env import RoutingEnv, rates_from_profile
from gridmarl.routing.reference import simulate_reference
from gridmarl.routing.rules import NextHopController, shortest_path_controller
from gridmarl.routing.topology import Topology

LTOS = rates_from_profile([(100, 1.0), (100, 10 / 3), (100, 1.0)])


def _compare(
    topo: Topology,
    ctrl: NextHopController,
    rates: np.ndarray,
    buffer: int | None,
    seed: int,
    num_envs: int = 3,
    min_packets: int = 100,
) -> int:
    env = RoutingEnv(
        topo, rates, num_envs=num_envs, buffer_pkt=buffer, seed=seed, pool_init=8, log_packets=True
    )  # a tiny pool: exercises its growth
    rec, _ = run_episode(env, ctrl, seed=seed)
    slots = ctrl.slots.numpy()
    ref = simulate_reference(
        topo, *env.arrivals(0), policy=lambda r, d: int(slots[r, d]), buffer_pkt=buffer
    )
    log = env.packet_log()
    pd_cols = ["born", "order", "delivered_step", "looped", "dropped"]
    assert len(log) >= min_packets
    assert log[pd_cols].astype(int).equals(ref.packets[pd_cols].astype(int))
    k = env.kpis()
    assert int(k["delivered_pkt"][0]) == ref.delivered_pkt
    assert int(k["dropped_pkt"][0]) == ref.dropped_pkt
    assert int(k["loops_pkt"][0]) == ref.loops_pkt
    assert int(k["in_network_pkt"][0]) == ref.in_network_pkt
    assert float(k["avg_delay_steps"][0]) == pytest.approx(ref.avg_delay_steps)
    q = rec.pivot(index="step", columns="agent", values="queue_pkt").to_numpy()
    np.testing.assert_array_equal(q, ref.queue_pkt)
    r = rec.pivot(index="step", columns="agent", values="reward").to_numpy()
    np.testing.assert_array_equal(r, -ref.queue_pkt)
    assert rec["delivered_pkt"].sum() == ref.delivered_pkt
    assert rec["dropped_pkt"].sum() == ref.dropped_pkt
    assert rec["new_pkt"].sum() == int(k["generated_pkt"][0]) - int(env.arrivals(0)[0][0])
    return ref.loops_pkt


@pytest.mark.parametrize("weight", ["hops", "distance"])
def test_env_matches_reference_shortest_path(ibm: Topology, weight: str) -> None:
    _compare(ibm, shortest_path_controller(ibm, weight), LTOS, None, seed=11)


def test_env_matches_reference_with_buffer_drops(ibm: Topology) -> None:
    ctrl = shortest_path_controller(ibm, "hops")
    _compare(ibm, ctrl, LTOS * 1.5, buffer=2, seed=5)


def test_env_matches_reference_with_loops_and_invalid_actions(ibm: Topology) -> None:
    # slot 3 for everything: invalid at routers of degree < 4 (falls back to 3 mod degree),
    # and packets wander and loop
    ctrl = NextHopController("slot3", np.full((ibm.n_routers, ibm.n_routers), 3))
    loops = _compare(
        ibm, ctrl, rates_from_profile([(120, 0.5)]), None, seed=2, num_envs=2, min_packets=1
    )
    assert loops > 10


def test_masks_allow_only_neighbours_and_moves_follow_links(ibm: Topology) -> None:
    env = RoutingEnv(ibm, LTOS[:60] * 3, num_envs=4, seed=0)
    obs = env.reset(seed=0)
    real = set(zip(ibm.link_src.tolist(), ibm.link_dst.tolist(), strict=True))
    for r in range(ibm.n_routers):
        for k in range(env.k):
            allowed = bool(obs.action_mask[0, r, k])
            assert allowed == (ibm.neighbors[r, k] >= 0)
            if allowed:
                assert (r, int(ibm.neighbors[r, k])) in real
    assert (obs.action_mask == obs.action_mask[:1]).all()
    g = torch.Generator().manual_seed(1)
    for _ in range(env.episode_len):
        a = torch.randint(-3, 8, (4, ibm.n_routers), generator=g)  # many invalid choices
        env.step(Action(discrete=a, continuous=torch.zeros(4, ibm.n_routers, 0)))
    rec = env.records()
    moves = rec[rec["next_hop"] >= 0]
    assert len(moves) > 100
    assert all(
        (int(r), int(n)) in real for r, n in zip(moves["agent"], moves["next_hop"], strict=True)
    )
    assert int(env.kpis()["invalid_actions"].sum()) > 0


def test_observation_layout(ibm: Topology) -> None:
    env = RoutingEnv(ibm, LTOS[:20] * 4, num_envs=2, seed=3)
    obs = env.reset(seed=3)
    n, k = ibm.n_routers, env.k
    assert obs.local.shape == (2, n, 1 + n + 2 * k) == (2, n, env.spec.local_dim)
    q = obs.local[..., 0]
    onehot = obs.local[..., 1 : 1 + n]
    assert torch.equal(onehot.sum(-1) > 0, q > 0)  # a head destination iff the queue is busy
    assert not bool(onehot[torch.arange(2)[:, None], torch.arange(n), torch.arange(n)].any())
    nq = obs.local[..., 1 + n : 1 + n + k]
    nb = torch.as_tensor(ibm.neighbors)
    expect = torch.where(nb >= 0, q[:, nb.clamp(min=0)], 0.0)
    assert torch.equal(nq, expect)
    assert float(obs.global_[0, 0]) == float(q[0].sum())


def test_same_seed_same_result(ibm: Topology) -> None:
    ctrl = shortest_path_controller(ibm, "hops")
    env = RoutingEnv(ibm, LTOS, num_envs=2)
    a, _ = run_episode(env, ctrl, seed=4)
    ka = {k: v.clone() for k, v in env.kpis().items()}
    b, _ = run_episode(env, ctrl, seed=4)
    assert a.equals(b)
    assert all(torch.equal(ka[k], v) for k, v in env.kpis().items() if k != "avg_delay_steps")
    c, _ = run_episode(env, ctrl, seed=5)
    assert not a.equals(c)
    # the two envs of a batch see different traffic
    k = env.kpis()
    assert int(k["generated_pkt"][0]) != int(k["generated_pkt"][1])


def test_step_after_end_refused(ibm: Topology) -> None:
    env = RoutingEnv(ibm, [1.0, 1.0], num_envs=1)
    env.reset(seed=0)
    z = Action.zeros(env.spec, 1)
    assert not bool(env.step(z).done[0])
    last = env.step(z)
    # the fixed horizon is a time limit: truncated, never terminated
    assert bool(last.truncated[0]) and not bool(last.terminated[0])
    with pytest.raises(RuntimeError, match="reset"):
        env.step(z)


def _pz(ibm: Topology) -> PettingZooParallelEnv:
    return PettingZooParallelEnv(lambda: RoutingEnv(ibm, LTOS[:40] * 3, num_envs=1))


def test_pettingzoo_api(ibm: Topology) -> None:
    parallel_api_test(_pz(ibm), num_cycles=50)


def test_pettingzoo_seed(ibm: Topology) -> None:
    parallel_seed_test(lambda: _pz(ibm), num_cycles=30)


def test_env_matches_reference_beyond_64_routers() -> None:
    # 70 routers: the visited-router bit set spans two int64 words
    from gridmarl.routing.topology import grid

    topo = grid(7, 10)
    ctrl = NextHopController("slot1", np.ones((70, 70), dtype=np.int64))
    loops = _compare(
        topo, ctrl, rates_from_profile([(80, 2.0)]), None, seed=9, num_envs=2, min_packets=1
    )
    assert loops > 10
    _compare(
        topo,
        shortest_path_controller(topo, "hops"),
        rates_from_profile([(80, 3.0)]),
        None,
        seed=9,
        num_envs=2,
        min_packets=100,
    )


def test_results_do_not_depend_on_the_pool_size(ibm: Topology) -> None:
    # a pool of 8 slots grows several times; one of 512 never does: same packets, same records
    ctrl = NextHopController("slot3", np.full((ibm.n_routers, ibm.n_routers), 3))
    out = []
    for pool in (8, 512):
        env = RoutingEnv(ibm, LTOS * 2, num_envs=3, buffer_pkt=6, pool_init=pool, log_packets=True)
        rec, _ = run_episode(env, ctrl, seed=21)
        out.append((rec, env.kpis(), env.packet_log(), env.link_packets(), env.pool))
    (ra, ka, la, lka, pa), (rb, kb, lb, lkb, pb) = out
    assert 8 < pa < pb == 512
    assert ra.equals(rb) and la.equals(lb) and torch.equal(lka, lkb)
    assert all(torch.equal(ka[k], kb[k]) for k in ka if k != "avg_delay_steps")


def test_reward_kinds_by_hand(ibm: Topology) -> None:
    """``queue``: −(own queue); ``queue_and_flight``: − also the packets on the router's own
    links; ``network``: every router −(all packets in the network) / N; the team reward of the
    last two is −(all packets in the network)."""
    ctrl = shortest_path_controller(ibm, "distance")
    steps = {}
    for kind in ("queue", "queue_and_flight", "network"):
        env = RoutingEnv(ibm, LTOS, num_envs=2, seed=5, reward=kind)
        ctrl.reset(env)
        obs = env.reset(seed=5)
        for _ in range(150):  # into the 10/3 peak
            step = env.step(ctrl.act(obs))
            obs = step.obs
        steps[kind] = (step, env._counts[:, : env.n].clone(), env._out_load(step.obs.state))
    step, q, flight = steps["queue"]
    assert torch.equal(step.reward, -q.to(step.reward.dtype))
    step, q, flight = steps["queue_and_flight"]
    assert torch.equal(step.reward, -(q + flight).to(step.reward.dtype))
    total = (q + flight).sum(1)
    assert bool((flight.sum(1) > 0).all())  # the shortest paths are busy: a real check
    step_n = steps["network"][0]
    n = q.shape[1]
    expected = (-total.to(step_n.reward.dtype) / n)[:, None].expand(-1, n)
    torch.testing.assert_close(step_n.reward, expected)
    torch.testing.assert_close(step_n.team_reward, -total.to(step_n.reward.dtype))


def test_queue_and_hop_reward_by_hand(ibm: Topology) -> None:
    """``queue_and_hop``: −(own queue after the step) − (link delay + the next router's queue
    as observed + its shortest-path delay to the destination − the router's own); a shortest
    path by distance makes (almost) no detour, a random next hop many."""
    import networkx as nx

    g = nx.DiGraph()
    for s, d, w in zip(ibm.link_src, ibm.link_dst, ibm.delay_steps, strict=True):
        g.add_edge(int(s), int(d), w=float(w))
    dist = dict(nx.all_pairs_dijkstra_path_length(g, weight="w"))
    nb, ol = ibm.neighbors, ibm.out_links
    n = ibm.n_routers
    rng = np.random.default_rng(3)
    sp = shortest_path_controller(ibm, "distance")
    env = RoutingEnv(ibm, LTOS, num_envs=2, seed=5, reward="queue_and_hop")
    sp.reset(env)
    obs = env.reset(seed=5)
    detours = {"sp": 0.0, "random": 0.0}
    for t in range(160):
        kind = "sp" if t % 2 else "random"
        if kind == "sp":
            act = sp.act(obs).discrete
        else:
            act = torch.as_tensor(rng.integers(0, ibm.degree[None, :], (2, n)))
        q_before = obs.local[..., 0].clone()  # [B, N] queues as observed [pkt]
        dst = obs.local[..., 1 : 1 + n].argmax(-1)
        has = obs.local[..., 1 : 1 + n].sum(-1) > 0
        step = env.step(Action(discrete=act, continuous=torch.zeros(2, n, 0)))
        q_after = env._counts[:, :n]
        for b in range(2):
            for r in range(n):
                want = -float(q_after[b, r])
                if has[b, r]:
                    k = int(act[b, r])
                    j, d = int(nb[r, k]), int(dst[b, r])
                    detour = ibm.delay_steps[ol[r, k]] + dist[j][d] - dist[r][d]
                    detours[kind] += detour
                    want -= detour + float(q_before[b, j])
                assert float(step.reward[b, r]) == pytest.approx(want), (t, b, r)
        obs = step.obs
    # shortest by km, priced by whole steps: a few rounding detours [steps]
    assert detours["sp"] < 0.1 * detours["random"], detours


def test_an_unknown_reward_is_refused(ibm: Topology) -> None:
    with pytest.raises(ValueError, match="queue_and_hop"):
        RoutingEnv(ibm, LTOS, reward="delay")
