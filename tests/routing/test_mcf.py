"""Multicommodity-flow routing against hand-solved optima, and its split tables in the env."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from baselines_opt.routing_mcf import FORTZ_THORUP, solve_mcf, split_shares, uniform_demand
from gridmarl.config import ControllerEntry
from gridmarl.experiment import run_episode
from gridmarl.routing.env import RoutingEnv, rates_from_profile
from gridmarl.routing.rules import SplitController, shortest_path_slots
from gridmarl.routing.topology import Topology, from_graph


def phi(x: float) -> float:
    """Fortz-Thorup cost at capacity 1."""
    return max(s * x - b for s, b in FORTZ_THORUP)


def diamond(far: float) -> Topology:
    """0 -> {1, 2} -> 3; links to and from router 2 are ``far`` km long (1 km per step)."""
    g = nx.Graph([(0, 1), (1, 3), (0, 2), (2, 3)])
    pos = {0: (0.0, 0.0), 1: (0.5, 0.5), 3: (1.0, 0.0), 2: (0.5, -far)}
    return from_graph(g, pos, "diamond", km_per_step=1.0)


def only_0_to_3(rate: float) -> np.ndarray:
    d = np.zeros((4, 4))
    d[0, 3] = rate
    return d


def test_phi_is_the_published_fortz_thorup_function() -> None:
    # breakpoints 1/3, 2/3, 9/10, 1, 11/10 with phi continuous, phi(1) = 32/3 (FT 2000)
    assert phi(1 / 3) == pytest.approx(1 / 3)
    assert phi(2 / 3) == pytest.approx(4 / 3)
    assert phi(0.9) == pytest.approx(11 / 3)
    assert phi(1.0) == pytest.approx(32 / 3)
    assert phi(1.1) == pytest.approx(32 / 3 + 50)


def test_two_parallel_paths_split_under_load() -> None:
    # 0.9 pkt/step from 0 to 3; both paths 2 steps long.  Router 0 forwards everything
    # (phi(0.9) = 11/3); one path alone would cost phi(0.9) again, two halves 2 phi(0.45).
    topo = diamond(far=0.5)
    assert set(topo.delay_steps.tolist()) == {1}
    sol = solve_mcf(topo, only_0_to_3(0.9))
    hand = 2 * 0.9 + phi(0.9) + 2 * phi(0.45)
    assert sol.objective == pytest.approx(hand, rel=1e-6)
    assert hand < 2 * 0.9 + 2 * phi(0.9)  # better than one path
    via1 = sol.flow[3, topo.link_id(0, 1)]
    via2 = sol.flow[3, topo.link_id(0, 2)]
    assert via1 + via2 == pytest.approx(0.9)
    # every split with both paths in the same Fortz-Thorup piece (1/3 .. 2/3) is optimal
    assert 1 / 3 - 1e-6 <= via1 <= 0.9 - 1 / 3 + 1e-6
    share = split_shares(topo, sol.flow, shortest_path_slots(topo, "hops"))
    assert share[0, 3].sum() == pytest.approx(1.0) and (share[0, 3][:2] > 0).all()


def test_light_traffic_takes_the_short_path() -> None:
    # path via 2 is 2 x 4 steps long: at 0.3 pkt/step all flow uses the 2-step path via 1
    topo = diamond(far=3.0)
    assert topo.delay_steps[topo.link_id(0, 2)] == 4
    sol = solve_mcf(topo, only_0_to_3(0.3))
    assert sol.objective == pytest.approx(2 * 0.3 + 2 * phi(0.3), rel=1e-6)
    assert sol.flow[3, topo.link_id(0, 2)] == pytest.approx(0.0, abs=1e-9)
    share = split_shares(topo, sol.flow, shortest_path_slots(topo, "hops"))
    slot_to_1 = list(topo.neighbors[0]).index(1)
    assert share[0, 3, slot_to_1] == pytest.approx(1.0)


def test_ibm_mcf_splits_run_loop_free_and_seeded(ibm: Topology) -> None:
    sol = solve_mcf(ibm, uniform_demand(ibm.n_routers, 10 / 3))
    assert sol.report.status == "optimal"
    # flow conservation: every router forwards what it originates plus what passes through
    assert sol.node_load.sum() == pytest.approx(
        sum((sol.flow[d].sum()) for d in range(ibm.n_routers))
    )
    share = split_shares(ibm, sol.flow, shortest_path_slots(ibm, "distance"))
    off = ~np.eye(ibm.n_routers, dtype=bool)
    np.testing.assert_allclose(share.sum(-1)[off], 1.0)
    assert (share[:, :, :][~(ibm.neighbors >= 0)[:, None, :].repeat(ibm.n_routers, 1)] == 0).all()
    ctrl = SplitController("mcf", [share], [0], seed=3)
    env = RoutingEnv(ibm, rates_from_profile([(150, 10 / 3)]), num_envs=2)
    a, _ = run_episode(env, ctrl, seed=1)
    k = env.kpis()
    assert int(k["loops_pkt"].sum()) == 0 and int(k["invalid_actions"].sum()) == 0
    b, _ = run_episode(env, ctrl, seed=1)
    assert a.equals(b)
    table = ctrl.table(ibm)
    assert list(table.columns[:5]) == ["router", "destination", "next_hop", "share", "from_step"]
    sums = table.groupby(["router", "destination"])["share"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0)


def test_mcf_options_are_checked(ibm: Topology) -> None:
    from gridmarl.config import ScenarioError, load_scenario
    from gridmarl.routing.simulate import mcf_controller

    sc = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "routing_ibm.yaml")
    with pytest.raises(ScenarioError, match="unknown option"):
        mcf_controller(ControllerEntry(name="mcf", options={"wieght": 2}), ibm, sc)


def test_mcf_tables_per_segment_or_mean(ibm: Topology) -> None:
    from gridmarl.config import load_scenario
    from gridmarl.routing.simulate import mcf_controller

    sc = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "routing_ibm.yaml")
    per_seg, note, _ = mcf_controller(ControllerEntry(name="mcf"), ibm, sc)
    assert per_seg.starts == [0, 100, 200] and note.count("optimal") == 2  # 2 distinct rates
    assert np.array_equal(per_seg.shares[0], per_seg.shares[2])
    mean, _, _ = mcf_controller(ControllerEntry(name="mcf", options={"traffic": "mean"}), ibm, sc)
    assert mean.starts == [0]
