"""Traffic's interaction graph (road adjacency) and groups (boundary vs interior)."""

from __future__ import annotations

import pytest
import torch

from gridmarl.config import ScenarioError
from gridmarl.core.graph import neighbor_sets
from gridmarl.traffic.config import GridConfig
from gridmarl.traffic.env import GROUP_BLOCK, TrafficEnv, scenario_groups, scenario_neighbors
from gridmarl.traffic.roadnet import Grid


def road_adjacency(grid: Grid) -> list[set[int]]:
    """Intersections joined by a road, from the road list itself."""
    index = {node: i for i, node in enumerate(grid.intersections)}
    out: list[set[int]] = [set() for _ in index]
    for road in grid.roads.values():
        if road.src in index and road.dst in index:
            out[index[road.src]].add(index[road.dst])
    return out


@pytest.mark.parametrize(("rows", "cols"), [(3, 4), (1, 3), (6, 6)])
def test_neighbours_are_road_adjacency(make_tiny, rows: int, cols: int) -> None:
    sc = make_tiny(grid={"rows": rows, "cols": cols, "lanes": 1, "road_length_m": 100})
    grid = Grid.build(sc.grid)
    table = scenario_neighbors(sc, grid)
    assert neighbor_sets(table) == road_adjacency(grid)
    assert table.tolist() == grid.neighbors().tolist()  # slots N, E, S, W


def test_boundary_groups_and_blocks(make_tiny) -> None:
    sc = make_tiny(grid={"rows": 4, "cols": 5, "lanes": 1, "road_length_m": 100})
    grid = Grid.build(sc.grid)
    assert scenario_groups(sc, grid).reshape(4, 5).tolist() == [
        [0, 0, 0, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 0, 0, 0],
    ]
    blocks = make_tiny(grid=sc.grid.model_dump(), graph={"groups": "blocks"})
    assert scenario_groups(blocks, grid).tolist() == grid.groups(GROUP_BLOCK).tolist()
    assert Grid.build(GridConfig(rows=2, cols=7)).boundary_groups().tolist() == [0] * 14


def test_env_reads_the_scenario_graph(make_tiny) -> None:
    graph = {"groups": [1, 0, 0, 1], "neighbors": [[3], [], [], [0]]}
    env = TrafficEnv(make_tiny(graph=graph))
    try:
        assert env.spec.groups.tolist() == [1, 0, 0, 1]
        assert torch.equal(env.spec.neighbors, torch.tensor([[3], [-1], [-1], [0]]))
    finally:
        env.close()


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        ({"groups": [0, 1]}, "graph.groups: 2 group ids for 4 agents"),
        ({"groups": "rows"}, "graph.groups: unknown rule 'rows'; allowed: boundary, blocks"),
        ({"neighbors": [[1], [], [], []]}, "agent 0 lists 1 but 1 does not list 0"),
        ({"neighbors": [[9], [], [], []]}, "graph.neighbors[0]: agent index 9; allowed: 0 … 3"),
    ],
)
def test_bad_graph_is_a_scenario_error(make_tiny, graph: dict, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        make_tiny(graph=graph)
    assert message in str(err.value)
