"""Routing's interaction graph (the links) and groups (edge vs core routers)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from gridmarl.config import ScenarioError, load_scenario
from gridmarl.routing.env import RoutingEnv
from gridmarl.routing.simulate import make_env
from gridmarl.routing.topology import (
    CORE_MIN_DEGREE,
    Topology,
    core_edge_groups,
    grid,
    load_topology,
)

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "routing_ibm.yaml"


def test_ibm_groups_follow_the_degree_rule(ibm: Topology) -> None:
    groups = core_edge_groups(ibm)
    g = nx.Graph(ibm.graph())
    for r in range(ibm.n_routers):
        assert groups[r] == int(g.degree(r) >= CORE_MIN_DEGREE), ibm.labels[r]
    core = {ibm.labels[r] for r in np.flatnonzero(groups == 1)}
    assert core == {
        "White Plains",
        "Detroit",
        "Columbus",
        "Bethesda",
        "New York",
        "San Francisco",
        "Los Angeles",
        "Dallas",
        "Atlanta",
        "Chicago",
    }


def test_env_groups_and_neighbours(ibm: Topology) -> None:
    spec = RoutingEnv(ibm, [1.0] * 5).spec
    assert spec.groups.tolist() == core_edge_groups(ibm).tolist()
    assert spec.neighbors.tolist() == ibm.neighbors.tolist()  # the links = the action slots
    real = {(int(s), int(d)) for s, d in zip(ibm.link_src, ibm.link_dst, strict=True)}
    for r, row in enumerate(spec.neighbors.tolist()):
        assert {(r, v) for v in row if v >= 0} == {(s, d) for s, d in real if s == r}


def test_one_class_topology_is_group_zero() -> None:
    ring = grid(1, 2)  # two routers, one link: both edge
    assert core_edge_groups(ring).tolist() == [0, 0]


def test_scenario_overrides_groups_not_neighbours() -> None:
    sc = load_scenario(SCENARIO, ["graph.groups=single"])
    assert make_env(sc, load_topology(sc)).spec.groups.tolist() == [0] * 18
    listed = [i % 3 for i in range(18)]
    sc = load_scenario(SCENARIO, [f"graph.groups={listed}", "graph.neighbors=links"])
    assert make_env(sc, load_topology(sc)).spec.groups.tolist() == listed
    with pytest.raises(ScenarioError, match="graph.neighbors: this domain's neighbours are"):
        load_scenario(SCENARIO, ["graph.neighbors=[[1], [0]]"])
    with pytest.raises(ScenarioError, match="graph.groups: 3 group ids for 18 agents"):
        load_scenario(SCENARIO, ["graph.groups=[0, 1, 0]"])
    with pytest.raises(ScenarioError, match="allowed: core_edge, single or a list"):
        load_scenario(SCENARIO, ["graph.groups=blocks"])
