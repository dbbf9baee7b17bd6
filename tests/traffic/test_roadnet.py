"""Generator output: SUMO network and routes, CityFlow roadnet and flow JSON."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from gridmarl.config import ScenarioError
from gridmarl.traffic.cityflow_files import cityflow_flow, cityflow_roadnet
from gridmarl.traffic.config import GridConfig
from gridmarl.traffic.roadnet import (
    Grid,
    build_network,
    generate_demand,
    read_signal_layout,
    write_sumo_routes,
)


@pytest.mark.parametrize(("rows", "cols"), [(2, 3), (1, 1)])
def test_sumo_net_has_one_tls_per_intersection(tmp_path, rows, cols):
    cfg = GridConfig(rows=rows, cols=cols, lanes=2)
    grid, net, layout = build_network(cfg, tmp_path)
    root = ET.parse(net).getroot()
    assert len(root.findall("tlLogic")) == rows * cols
    assert sorted(layout.tls) == sorted(grid.intersections)
    # 4 approaches x 2 lanes; 2 green phases with one state char per controlled link
    assert layout.max_lanes == 8
    for i in range(rows * cols):
        n_links = len(layout.link_lane[i])
        assert [len(s) for s in layout.green_states[i]] == [n_links, n_links]
        # every link is green in exactly one phase, and yellow only when losing green
        for a, b in zip(*layout.green_states[i], strict=True):
            assert (a in "Gg") != (b in "Gg")
        assert set(layout.yellow_state(i, 0, 1)) <= {"y", "r"}


def test_broken_network_file_is_a_scenario_error(tmp_path):
    bad = tmp_path / "bad.net.xml"
    bad.write_text("<net><edge id='x'", encoding="utf-8")
    with pytest.raises(ScenarioError, match="broken SUMO network"):
        read_signal_layout(bad, Grid.build(GridConfig(rows=2, cols=2)))
    with pytest.raises(ScenarioError, match="network file not found"):
        build_network(GridConfig(rows=2, cols=2), tmp_path / "o", net_file=tmp_path / "no.xml")


def test_net_of_other_grid_is_rejected(tmp_path):
    _, net, _ = build_network(GridConfig(rows=2, cols=2), tmp_path)
    with pytest.raises(ScenarioError, match="expected 9 traffic lights"):
        read_signal_layout(net, Grid.build(GridConfig(rows=3, cols=3)))


def test_demand_is_seeded_and_routes_are_connected(tmp_path, make_tiny):
    sc = make_tiny()
    grid = Grid.build(sc.grid)
    a = generate_demand(grid, sc.demand, sc.traffic.horizon_s, seed=5)
    b = generate_demand(grid, sc.demand, sc.traffic.horizon_s, seed=5)
    c = generate_demand(grid, sc.demand, sc.traffic.horizon_s, seed=6)
    assert a == b and a != c
    assert all(0 <= v.depart_s < 120 for v in a)
    for v in a:
        assert grid.roads[v.route[0]].entry and grid.roads[v.route[-1]].exit
        for x, y in zip(v.route[:-1], v.route[1:], strict=False):
            assert grid.roads[x].dst == grid.roads[y].src
    path = write_sumo_routes(a, grid, tmp_path / "r.rou.xml")
    assert len(ET.parse(path).getroot().findall("vehicle")) == len(a)


def test_cityflow_json_follows_documented_schema(make_tiny):
    grid = Grid.build(GridConfig(rows=2, cols=2, lanes=2))
    net = cityflow_roadnet(grid)
    assert set(net) == {"intersections", "roads"}
    road_ids = {r["id"] for r in net["roads"]}
    inter_ids = {i["id"] for i in net["intersections"]}
    for r in net["roads"]:
        assert set(r) == {"id", "startIntersection", "endIntersection", "points", "lanes"}
        assert {r["startIntersection"], r["endIntersection"]} <= inter_ids
        assert all(set(p) == {"x", "y"} for p in r["points"])
        assert all(set(ln) == {"width", "maxSpeed"} for ln in r["lanes"])
    real = [i for i in net["intersections"] if not i["virtual"]]
    assert len(real) == 4 and len(net["intersections"]) == 4 + 8
    for i in net["intersections"]:
        assert {"id", "point", "width", "roads", "roadLinks", "trafficLight", "virtual"} <= set(i)
        assert set(i["roads"]) <= road_ids
        n_links = len(i["roadLinks"])
        for link in i["roadLinks"]:
            assert link["type"] in ("turn_left", "turn_right", "go_straight")
            assert link["startRoad"] in i["roads"] and link["endRoad"] in i["roads"]
            for ll in link["laneLinks"]:
                assert 0 <= ll["startLaneIndex"] < 2 and 0 <= ll["endLaneIndex"] < 2
        for ph in i["trafficLight"]["lightphases"]:
            assert ph["time"] > 0
            assert all(0 <= k < n_links for k in ph["availableRoadLinks"])
    # phase 0 is the change interval; greens 1 and 2 split every road link between them
    for i in real:
        ph = i["trafficLight"]["lightphases"]
        assert ph[0]["availableRoadLinks"] == []
        assert sorted(ph[1]["availableRoadLinks"] + ph[2]["availableRoadLinks"]) == list(
            range(len(i["roadLinks"]))
        )
    sc = make_tiny()
    flows = cityflow_flow(generate_demand(grid, sc.demand, 120, 0), grid)
    for f in flows:
        assert set(f) == {"vehicle", "route", "interval", "startTime", "endTime"}
        assert set(f["vehicle"]) == {
            "length",
            "width",
            "maxPosAcc",
            "maxNegAcc",
            "usualPosAcc",
            "usualNegAcc",
            "minGap",
            "maxSpeed",
            "headwayTime",
        }
        assert set(f["route"]) <= road_ids and f["startTime"] == f["endTime"]
