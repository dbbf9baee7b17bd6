"""CityFlow-format import (``gridmarl.traffic.cityflow_import``): the shipped example runs on
both engines with the roadnet's phases; malformed files are refused naming file and problem."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gridmarl.config import ScenarioError
from gridmarl.traffic.cityflow_import import (
    read_cityflow_files,
    run_imported,
    sumo_lane_links,
    sumo_link_map,
    write_sumo_files,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "scenarios" / "data" / "cityflow_2x2"
SCENARIO = ROOT / "scenarios" / "traffic_cityflow_example.yaml"
#: CityFlow's own example (Apache-2.0, upstream commit 81ee0f4; see its README.md)
UPSTREAM = ROOT / "tests" / "data" / "cityflow_upstream"


def test_example_reads_as_the_format_says():
    net = read_cityflow_files(DATA / "roadnet.json", DATA / "flow.json", horizon_s=1200)
    assert [s.id for s in net.signals] == ["A0", "A1", "B0", "B1"]
    flows = json.loads((DATA / "flow.json").read_text())
    # a vehicle at startTime and every interval up to endTime (900 s), per flow
    assert len(net.trips) == sum(int(900 // f["interval"]) + 1 for f in flows)
    s = net.signals[0]
    assert s.greens == [1, 2, 3, 4] and s.change == 0  # light phase 0 has no road link


def test_sumo_conversion_keeps_links_and_phases(tmp_path):
    """Every start lane of every road link is one SUMO connection along one of its lane links
    (lane indices mirrored), and each SUMO link of a signal maps back to its road link."""
    net = read_cityflow_files(DATA / "roadnet.json", DATA / "flow.json", horizon_s=1200)
    net_xml, routes = write_sumo_files(net, tmp_path)
    root = ET.parse(net_xml).getroot()
    got = {
        (c.get("from"), c.get("to"), int(c.get("fromLane")), int(c.get("toLane")))
        for c in root.iter("connection")
        if c.get("tl")
    }
    want = set()
    for s in net.signals:
        for frm, to, kind, lane_links in s.links:
            chosen = sumo_lane_links(kind, lane_links)
            assert set(chosen) <= set(lane_links)
            assert [a for a, _ in chosen] == sorted({a for a, _ in lane_links})
            want |= {
                (frm, to, net.roads[frm][3] - 1 - a, net.roads[to][3] - 1 - b) for a, b in chosen
            }
    assert got == want
    link_map = sumo_link_map(net, net_xml)
    for s in net.signals:
        assert sorted(set(link_map[s.id])) == list(range(len(s.links)))
    assert len(list(ET.parse(routes).getroot().iter("vehicle"))) == len(net.trips)


@pytest.mark.parametrize("engine", ["sumo", "cityflow"])
def test_example_simulates_on_both_engines(tmp_path, engine):
    if engine == "cityflow":
        pytest.importorskip("cityflow", reason="CityFlow is not installed")
    net = read_cityflow_files(DATA / "roadnet.json", DATA / "flow.json", horizon_s=1200)
    out = {
        c: run_imported(net, engine, c, tmp_path / c, 1200, 10, 3)
        for c in ("fixed_time", "max_pressure")
    }
    for k in out.values():
        # demand ends at 900 s; a 2 x 2 crossing takes about a minute
        assert k["finished_share"] > 0.98 and k["throughput_veh"] == k["trips_scheduled_veh"]
    # the roadnet's programme (30 s per green, 4 greens) against MaxPressure at light demand
    assert out["max_pressure"]["avg_travel_time_s"] < out["fixed_time"]["avg_travel_time_s"]


def test_all_to_all_lane_links_become_parallel_connections():
    """CityFlow's example lists every start lane to all 7 end lanes; SUMO gets one connection
    per start lane: lefts to the inner end lanes, rights to the outer, straight on its own
    index, never two connections of a movement crossing."""
    full = [(a, b) for a in (0, 1) for b in range(7)]
    assert sumo_lane_links("turn_left", full) == [(0, 0), (1, 1)]
    full = [(a, b) for a in (5, 6) for b in range(7)]
    assert sumo_lane_links("turn_right", full) == [(5, 5), (6, 6)]
    full = [(a, b) for a in (2, 3, 4) for b in range(7)]
    assert sumo_lane_links("go_straight", full) == [(2, 2), (3, 3), (4, 4)]
    # fewer end lanes than start lanes: clamped, still in order
    assert sumo_lane_links("go_straight", [(a, b) for a in (0, 1, 2) for b in (0, 1)]) == [
        (0, 0),
        (1, 1),
        (2, 1),
    ]
    # a start lane keeps one of its own lane links even where the pattern wants another
    assert sumo_lane_links("turn_right", [(0, 0), (1, 0)]) == [(0, 0), (1, 0)]
    net = read_cityflow_files(UPSTREAM / "roadnet.json", UPSTREAM / "flow.json", horizon_s=60)
    for s in net.signals:
        for _, _, kind, lane_links in s.links:
            chosen = sumo_lane_links(kind, lane_links)
            ends = [b for _, b in chosen]
            assert ends == sorted(ends) and len(set(ends)) == len(ends)


def test_upstream_example_comparable_on_both_engines(tmp_path):
    """CityFlow's own example (1 signal, 7-lane roads, 1,440 trips in 600 s) delivers
    comparable throughput and travel time on CityFlow and through the SUMO conversion: per
    controller, SUMO's finished trips within 5 % and mean travel time within 12 % of
    CityFlow's (measured: -2.0 % / +1.2 % fixed_time, +1.4 % / -7.9 % max_pressure; before
    the conversion kept one parallel connection per start lane SUMO finished 57 % fewer)."""
    pytest.importorskip("cityflow", reason="CityFlow is not installed")
    net = read_cityflow_files(UPSTREAM / "roadnet.json", UPSTREAM / "flow.json", horizon_s=600)
    assert [s.id for s in net.signals] == ["intersection_1_1"]
    assert net.signals[0].greens == [0, 2, 4, 6] and net.signals[0].change == 1
    assert len(net.trips) == 12 * 120 and len(net.vehicle_types) == 1
    for c in ("fixed_time", "max_pressure"):
        cf = run_imported(net, "cityflow", c, tmp_path / "cf" / c, 600, 10, 3)
        su = run_imported(net, "sumo", c, tmp_path / "sumo" / c, 600, 10, 3)
        assert cf["trips_scheduled_veh"] == su["trips_scheduled_veh"] == 1440
        assert cf["finished_share"] > 0.8, (c, cf)
        assert abs(su["throughput_veh"] / cf["throughput_veh"] - 1) < 0.05, (c, cf, su)
        assert abs(su["avg_travel_time_s"] / cf["avg_travel_time_s"] - 1) < 0.12, (c, cf, su)


def test_flow_vehicle_parameters_reach_sumo(tmp_path):
    """The flow's vehicle (length, gaps, usual/max accelerations, speed, headway) is the SUMO
    vType of its trips; a non-numeric one is refused naming file, flow and key."""
    net = read_cityflow_files(UPSTREAM / "roadnet.json", UPSTREAM / "flow.json", horizon_s=60)
    _, routes = write_sumo_files(net, tmp_path / "sumo")
    vtypes = {v.get("id"): v.attrib for v in ET.parse(routes).getroot().iter("vType")}
    assert vtypes["car0"]["accel"] == "2" and vtypes["car0"]["tau"] == "1.5"
    assert vtypes["car0"]["maxSpeed"] == "16.67" and vtypes["car0"]["emergencyDecel"] == "4.5"
    assert vtypes["car0"]["sigma"] == "0"
    flow = json.loads((UPSTREAM / "flow.json").read_text())
    flow[3]["vehicle"]["headwayTime"] = "fast"
    r, f = _write(tmp_path, (UPSTREAM / "roadnet.json").read_text(), flow)
    with pytest.raises(ScenarioError, match=r"flow.json: flows\[3\].vehicle.headwayTime is not"):
        read_cityflow_files(r, f)


def _write(tmp_path: Path, roadnet: object, flow: object) -> tuple[Path, Path]:
    r, f = tmp_path / "roadnet.json", tmp_path / "flow.json"
    r.write_text(roadnet if isinstance(roadnet, str) else json.dumps(roadnet))
    f.write_text(flow if isinstance(flow, str) else json.dumps(flow))
    return r, f


def _example() -> tuple[dict, list]:
    return json.loads((DATA / "roadnet.json").read_text()), json.loads(
        (DATA / "flow.json").read_text()
    )


def _no_intersections(net: dict, flow: list) -> None:
    net["intersections"] = [x for x in net["intersections"] if x["id"] != "B1"]


def _flow_on_missing_road(net: dict, flow: list) -> None:
    flow[0]["route"] = ["left0A0", "A0Z9"]


def _disconnected_route(net: dict, flow: list) -> None:
    flow[0]["route"] = ["left0A0", "B1top1"]


def _phase_out_of_range(net: dict, flow: list) -> None:
    inter = next(x for x in net["intersections"] if x["id"] == "A0")
    inter["trafficLight"]["lightphases"][1]["availableRoadLinks"] = [99]


@pytest.mark.parametrize(
    ("break_it", "which", "fragment"),
    [
        (_no_intersections, "roadnet", "refers to a missing intersection 'B1'"),
        (_flow_on_missing_road, "flow", "flows[0] runs on a missing road 'A0Z9'"),
        (_disconnected_route, "flow", "road 'B1top1' does not follow 'left0A0'"),
        (_phase_out_of_range, "roadnet", "'A0' lightphases[1]: availableRoadLinks out of range"),
    ],
)
def test_malformed_files_name_file_and_problem(tmp_path, break_it, which, fragment):
    net, flow = _example()
    break_it(net, flow)
    r, f = _write(tmp_path, net, flow)
    with pytest.raises(ScenarioError) as err:
        read_cityflow_files(r, f)
    assert str(err.value).startswith(str(r if which == "roadnet" else f))
    assert fragment in str(err.value)


def test_not_json_and_wrong_shape(tmp_path):
    net, flow = _example()
    r, f = _write(tmp_path, "{not json", flow)
    with pytest.raises(ScenarioError, match=r"roadnet.json: CityFlow roadnet file is not JSON"):
        read_cityflow_files(r, f)
    r, f = _write(tmp_path, net, {"flows": []})
    with pytest.raises(ScenarioError, match=r"flow.json: a CityFlow flow file is a JSON list"):
        read_cityflow_files(r, f)
    r, f = _write(tmp_path, {"roads": []}, flow)
    with pytest.raises(ScenarioError, match=r"an object with an 'intersections' list"):
        read_cityflow_files(r, f)


def test_cli_exits_2_naming_the_file(tmp_path):
    net, flow = _example()
    r, f = _write(tmp_path, net, "[{]")
    sc = tmp_path / "sc.yaml"
    sc.write_text(
        SCENARIO.read_text()
        .replace("data/cityflow_2x2/roadnet.json", str(r))
        .replace("data/cityflow_2x2/flow.json", str(f))
    )
    proc = subprocess.run(
        [sys.executable, "-m", "gridmarl.cli", "simulate", str(sc), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "flow.json: CityFlow flow file is not JSON" in proc.stdout + proc.stderr
