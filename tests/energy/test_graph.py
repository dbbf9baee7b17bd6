"""The energy community's interaction graph and groups: radial feeders, scenario overrides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gridmarl.config import ScenarioError, load_scenario, scenario_hash, validate_scenario
from gridmarl.core.graph import neighbor_sets
from gridmarl.energy.community import Community
from gridmarl.energy.data import build_community
from gridmarl.energy.env import CommunityEnv
from gridmarl.energy.feeders import device_groups, feeder_neighbors, radial_feeders

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "community_50.yaml"


def scenario(prosumers: int = 12, graph: dict | None = None, **feeders) -> object:
    """A one-day energy scenario on the shipped data with ``prosumers`` prosumers."""
    raw = {
        "name": "g",
        "domain": "energy",
        "seed": 3,
        "window": {
            "train": {"start": "2016-08-01", "days": 2},
            "validate": {"start": "2017-01-02", "days": 1},
            "evaluate": {"start": "2017-01-16", "days": 1},
        },
        "community": {"prosumers": prosumers, **({"feeders": feeders} if feeders else {})},
    }
    if graph is not None:
        raw["graph"] = graph
    return validate_scenario(raw)


def spec_of(sc: object):
    return CommunityEnv(build_community(sc), dtype=torch.float64).spec


def check_symmetric(table: np.ndarray) -> list[set[int]]:
    sets = neighbor_sets(table)
    for i, s in enumerate(sets):
        assert i not in s
        assert all(i in sets[j] for j in s), f"agent {i}: {sorted(s)}"
    return sets


def test_default_layout_contiguous_blocks() -> None:
    assert radial_feeders(50).tolist() == [f for f in range(5) for _ in range(10)]
    assert radial_feeders(4).tolist() == [0, 0, 0, 0]
    f = radial_feeders(23, 3)
    assert np.bincount(f).tolist() == [8, 8, 7] and (np.diff(f) >= 0).all()
    with pytest.raises(ValueError):
        radial_feeders(3, 4)


def test_shipped_community_neighbours_share_a_feeder() -> None:
    sc = load_scenario(SCENARIO)
    c = build_community(sc, "evaluate")
    spec = CommunityEnv(c, dtype=torch.float64).spec
    assert c.feeder is not None and np.bincount(c.feeder).tolist() == [10] * 5
    assert tuple(spec.neighbors.shape) == (50, 9)  # K = feeder size - 1, no padding needed
    sets = check_symmetric(spec.neighbors.numpy())
    for i, s in enumerate(sets):
        assert s == {j for j in range(50) if c.feeder[j] == c.feeder[i] and j != i}
    # groups stay the device classes
    assert torch.equal(spec.groups, torch.as_tensor(device_groups(c)))


def test_uneven_feeders_pad_and_stay_symmetric() -> None:
    spec = spec_of(scenario(prosumers=7, count=3))  # feeders of 3, 2, 2 prosumers
    assert spec.neighbors.tolist() == [
        [1, 2],
        [0, 2],
        [0, 1],
        [4, -1],
        [3, -1],
        [6, -1],
        [5, -1],
    ]
    check_symmetric(spec.neighbors.numpy())


def test_reach_keeps_the_nearest_along_the_feeder() -> None:
    nbr = feeder_neighbors(radial_feeders(10, 2), reach=2)  # feeders 0-4 and 5-9
    sets = check_symmetric(nbr)
    assert sets[0] == {1, 2} and sets[2] == {0, 1, 3, 4} and sets[5] == {6, 7}
    assert nbr.shape == (10, 4)
    spec = spec_of(scenario(prosumers=6, count=1, reach=1))
    assert neighbor_sets(spec.neighbors.numpy()) == [{1}, {0, 2}, {1, 3}, {2, 4}, {3, 5}, {4}]


def test_explicit_assignment_and_feeder_groups() -> None:
    sc = scenario(prosumers=5, assignment=[1, 0, 1, 0, 1], graph={"groups": "feeders"})
    spec = spec_of(sc)
    assert spec.groups.tolist() == [1, 0, 1, 0, 1]
    assert neighbor_sets(spec.neighbors.numpy()) == [{2, 4}, {3}, {0, 4}, {1}, {0, 2}]


def test_explicit_groups_and_neighbours_override() -> None:
    graph = {"groups": [0, 1, 1, 0], "neighbors": [[1], [0, 2], [1], []]}
    spec = spec_of(scenario(prosumers=4, graph=graph))
    assert spec.groups.tolist() == [0, 1, 1, 0]
    assert spec.neighbors.tolist() == [[1, -1], [0, 2], [1, -1], [-1, -1]]
    # named defaults spelled out change nothing
    same = spec_of(scenario(prosumers=4, graph={"groups": "devices", "neighbors": "feeder"}))
    base = spec_of(scenario(prosumers=4))
    assert torch.equal(same.groups, base.groups) and torch.equal(same.neighbors, base.neighbors)


@pytest.mark.parametrize(
    ("graph", "feeders", "message"),
    [
        ({"groups": [0, 1]}, {}, "graph.groups: 2 group ids for 4 agents"),
        ({"groups": [0, 2, 2, 0]}, {}, "graph.groups: group ids must be 0 … G-1"),
        ({"groups": [0, -1, 0, 0]}, {}, "graph.groups[1]: group id -1"),
        ({"groups": "hubs"}, {}, "graph.groups: unknown rule 'hubs'; allowed: devices, feeders"),
        ({"groups": [0, "a", 0, 0]}, {}, "graph.groups: Value error, expected a rule name"),
        ({"neighbors": [[1], [0]]}, {}, "graph.neighbors: 2 neighbour lists for 4 agents"),
        ({"neighbors": [[0], [], [], []]}, {}, "graph.neighbors[0]: agent 0 lists itself"),
        ({"neighbors": [[4], [], [], []]}, {}, "graph.neighbors[0]: agent index 4; allowed"),
        ({"neighbors": [[1, 1], [0], [], []]}, {}, "graph.neighbors[0]: a neighbour is listed"),
        ({"neighbors": [[1], [], [], []]}, {}, "agent 0 lists 1 but 1 does not list 0"),
        ({"neighbors": "ring"}, {}, "graph.neighbors: unknown rule 'ring'; allowed: feeder"),
        ({"color": 1}, {}, "graph.color: unknown key"),
        (None, {"count": 5}, "community.feeders: Value error, count 5 is above the 4"),
        (None, {"assignment": [0, 1]}, "community.feeders: Value error, assignment names 2"),
        (None, {"assignment": [0, 2, 2, 0]}, "feeder ids must be 0 … F-1"),
        (None, {"count": 2, "assignment": [0, 0, 1, 1]}, "give count or assignment, not both"),
        (None, {"reach": 0}, "community.feeders.reach"),
    ],
)
def test_bad_overrides_are_scenario_errors(graph, feeders, message) -> None:
    with pytest.raises(ScenarioError) as err:
        scenario(prosumers=4, graph=graph, **feeders)
    assert message in str(err.value)


def test_unset_graph_keys_leave_the_scenario_hash_alone() -> None:
    sc = load_scenario(SCENARIO)
    dumped = sc.model_dump(mode="json")
    assert "graph" not in dumped and "feeders" not in dumped["community"]
    base = scenario_hash(sc)
    assert scenario_hash(load_scenario(SCENARIO, ["community.feeders.count=5"])) != base
    assert scenario_hash(load_scenario(SCENARIO, ["graph.groups=devices"])) != base
    again = load_scenario(SCENARIO, ["graph.groups=feeders"]).model_dump(mode="json")
    assert again["graph"] == {"groups": "feeders", "neighbors": None}


def test_community_without_scenario_uses_the_default_layout(community: Community) -> None:
    spec = CommunityEnv(community, dtype=torch.float64).spec  # 4 prosumers, one feeder
    assert spec.neighbors.tolist() == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]
