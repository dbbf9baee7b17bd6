"""CityFlow against SUMO, CityFlow's files and the CityFlow engine's bookkeeping.

The tests that run CityFlow skip when ``import cityflow`` fails; CI installs the wheel of
``../shared/wheels/`` (``.ci/run``), so there they run.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from gridmarl.config import ScenarioError, validate_scenario
from gridmarl.traffic.cityflow_files import (
    LANE_WIDTH_M,
    check_cityflow_config,
    cityflow_roadnet,
    junction_half_size_m,
    write_cityflow_config,
    write_cityflow_flow,
    write_cityflow_network,
)
from gridmarl.traffic.config import GridConfig
from gridmarl.traffic.kpis import MIN_FINISHED_SHARE
from gridmarl.traffic.roadnet import TWO_PHASE, Grid, build_network, generate_demand, turn_lanes
from gridmarl.traffic.simulate import finished_warning


def _grid_scenario(engine: str, rows: int, rate: float, horizon_s: int, **traffic) -> object:
    return validate_scenario(
        {
            "name": "engines",
            "domain": "traffic",
            "seed": 0,
            "engine": engine,
            "grid": {"rows": rows, "cols": rows, "lanes": 2, "road_length_m": 200},
            "demand": {"profile": [{"duration_s": horizon_s, "rate_veh_per_s": rate}]},
            "traffic": {"horizon_s": horizon_s, "decision_s": 10, **traffic},
        }
    )


# --------------------------------------------------------------------------------------------
# The engines agree (a test that fails on gridlock)
# --------------------------------------------------------------------------------------------
def test_cityflow_delivers_the_trips_sumo_delivers():
    """The same 3 x 3 grid (2 lanes, 200 m roads) and demand (2 veh/s for 20 min, about 90 %
    of what the grid can clear) under FixedTime (30 s greens) on SUMO and on CityFlow.

    Measured (demand seeds 0, 1, 2): finished share SUMO 0.894 / 0.906 / 0.907, CityFlow
    0.903 / 0.915 / 0.914; throughput CityFlow / SUMO 1.010 / 1.010 / 1.007; average travel
    time of finished trips SUMO 114.3 / 116.1 / 112.6 s, CityFlow 108.6 / 108.5 / 106.3 s
    (0.93-0.95: CityFlow has no driver imperfection, SUMO's ``sigma`` 0.5).  Tolerances, with
    margin: finished share within 0.05, throughput within 5 %, travel time within 15 %.  The
    roadnet that linked each lane to one lane (before the fix) gridlocks here: share 0.035,
    83 trips, 75 s for the few that finish.
    """
    pytest.importorskip("cityflow", reason="CityFlow is not installed (tools/install_cityflow.sh)")
    from gridmarl.experiment import run_episode
    from gridmarl.traffic.env import TrafficEnv
    from gridmarl.traffic.rules import FixedTime

    kpis = {}
    for engine in ("sumo", "cityflow"):
        env = TrafficEnv(_grid_scenario(engine, rows=3, rate=2.0, horizon_s=1200))
        try:
            run_episode(env, FixedTime(green_s=30.0), seed=0)
            kpis[engine] = env.episode_kpis()[0]
        finally:
            env.close()
    sumo, cf = kpis["sumo"], kpis["cityflow"]
    assert sumo["trips_scheduled_veh"] == cf["trips_scheduled_veh"] > 2000
    assert sumo["finished_share"] > 0.8
    assert abs(cf["finished_share"] - sumo["finished_share"]) <= 0.05
    assert abs(cf["throughput_veh"] / sumo["throughput_veh"] - 1.0) <= 0.05
    assert abs(cf["avg_travel_time_s"] / sumo["avg_travel_time_s"] - 1.0) <= 0.15
    assert np.isnan(cf["teleports_veh"]) and not np.isnan(sumo["teleports_veh"])


# --------------------------------------------------------------------------------------------
# The roadnet matches SUMO's network
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lanes", [1, 2, 3])
def test_roadnet_lanes_and_geometry_match_netgenerate(tmp_path, lanes):
    cfg = GridConfig(rows=2, cols=2, lanes=lanes, road_length_m=200)
    grid, net_path, _ = build_network(cfg, tmp_path)
    root = ET.parse(net_path).getroot()
    lengths = {ln.get("id"): float(ln.get("length")) for ln in root.iter("lane")}
    # CityFlow's stop line is netgenerate's: lanes of a road between intersections agree
    assert lengths["A0B0_0"] == pytest.approx(200 - 2 * junction_half_size_m(lanes), abs=0.01)
    sumo_from: dict[tuple[str, str], set[int]] = {}
    for c in root.iter("connection"):
        if c.get("tl") == "A0":
            sumo_from.setdefault((c.get("from"), c.get("to")), set()).add(int(c.get("fromLane")))
    net = cityflow_roadnet(grid)
    a0 = next(i for i in net["intersections"] if i["id"] == "A0")
    assert a0["width"] == junction_half_size_m(lanes)
    assert {(rl["startRoad"], rl["endRoad"]) for rl in a0["roadLinks"]} == set(sumo_from)
    for rl in a0["roadLinks"]:
        starts = {ll["startLaneIndex"] for ll in rl["laneLinks"]}
        # the lanes SUMO lets the movement leave from (CityFlow counts from the inner lane) ...
        assert {lanes - 1 - k for k in sumo_from[(rl["startRoad"], rl["endRoad"])]} == starts
        assert {lanes - 1 - k for k in turn_lanes(rl["type"], lanes)} == starts
        # ... each to every lane of the end road, so the next movement's lane is reachable
        assert len(rl["laneLinks"]) == len(starts) * lanes
        assert {ll["endLaneIndex"] for ll in rl["laneLinks"]} == set(range(lanes))
        for ll in rl["laneLinks"]:
            pts = ll["points"]
            assert len(pts) == (2 if rl["type"] == "go_straight" else 11)
            assert (pts[0]["x"], pts[0]["y"]) != (pts[-1]["x"], pts[-1]["y"])
    assert all(r["lanes"][0]["width"] == LANE_WIDTH_M for r in net["roads"])


def _segments(points: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
    p = [np.array([q["x"], q["y"]]) for q in points]
    return list(zip(p[:-1], p[1:], strict=True))


def _cross(a: list[dict], b: list[dict]) -> bool:
    def side(o, p, q):
        d = (p - o)[0] * (q - o)[1] - (p - o)[1] * (q - o)[0]
        return np.sign(d)

    for p1, p2 in _segments(a):
        for q1, q2 in _segments(b):
            if side(p1, p2, q1) * side(p1, p2, q2) < 0 and side(q1, q2, p1) * side(q1, q2, p2) < 0:
                return True
    return False


def test_left_turn_crosses_the_opposing_straight_and_phases_split_the_links():
    """CityFlow finds conflicts where lane links cross: the permissive left turn from the north
    approach must cross the straight movement from the south (it yields there); links with no
    length (both points the centre) never cross."""
    grid = Grid.build(GridConfig(rows=1, cols=1, lanes=2))
    net = cityflow_roadnet(grid)
    a0 = next(i for i in net["intersections"] if i["id"] == "A0")
    links = {(rl["startRoad"], rl["type"]): rl for rl in a0["roadLinks"]}
    left_from_north = links[("top0A0", "turn_left")]["laneLinks"][0]["points"]
    straight_from_south = links[("bottom0A0", "go_straight")]["laneLinks"][0]["points"]
    right_from_south = links[("bottom0A0", "turn_right")]["laneLinks"][0]["points"]
    assert _cross(left_from_north, straight_from_south)
    assert not _cross(left_from_north, right_from_south)
    phases = a0["trafficLight"]["lightphases"]
    assert phases[0]["availableRoadLinks"] == [] and len(phases) == 1 + len(TWO_PHASE)
    for j, served in enumerate(TWO_PHASE):
        green = {
            (a0["roadLinks"][k]["startRoad"], a0["roadLinks"][k]["type"])
            for k in phases[j + 1]["availableRoadLinks"]
        }
        heads = {grid.roads[road].heading for road, _ in green}
        assert {(grid.roads[r].heading, t) for r, t in green} <= served and len(heads) == 2


# --------------------------------------------------------------------------------------------
# Files CityFlow cannot load are caught before it reads them
# --------------------------------------------------------------------------------------------
def test_config_problems_name_the_file(tmp_path):
    with pytest.raises(ScenarioError, match=r"cityflow_config.json: CityFlow config not found"):
        check_cityflow_config(tmp_path / "cityflow_config.json")
    (tmp_path / "cityflow_config.json").write_text("{not json")
    with pytest.raises(ScenarioError, match="config is not readable JSON"):
        check_cityflow_config(tmp_path / "cityflow_config.json")
    grid = Grid.build(GridConfig(rows=1, cols=2, lanes=1))
    cfg = write_cityflow_network(grid, tmp_path)
    assert check_cityflow_config(cfg)["rlTrafficLight"] is True
    (tmp_path / "roadnet.json").unlink()
    with pytest.raises(ScenarioError, match=r"roadnet.json: CityFlow roadnet file not found"):
        check_cityflow_config(cfg)
    (tmp_path / "roadnet.json").write_text(json.dumps({"roads": []}))
    with pytest.raises(ScenarioError, match="'intersections' and 'roads'"):
        check_cityflow_config(cfg)
    write_cityflow_network(grid, tmp_path)
    (tmp_path / "no_flows.json").write_text("{}")
    with pytest.raises(ScenarioError, match="no_flows.json: CityFlow flow file must be a JSON"):
        check_cityflow_config(cfg)


# --------------------------------------------------------------------------------------------
# One engine per worker; pushed trips = a flow file; reproducible episodes
# --------------------------------------------------------------------------------------------
def test_one_engine_serves_every_episode_and_repeats_itself():
    pytest.importorskip("cityflow", reason="CityFlow is not installed (tools/install_cityflow.sh)")
    from gridmarl.experiment import run_episode
    from gridmarl.traffic.env import TrafficEnv
    from gridmarl.traffic.rules import MaxPressure

    env = TrafficEnv(_grid_scenario("cityflow", rows=2, rate=1.0, horizon_s=300))
    try:
        runs = []
        for seed in (0, 1, 0):
            run_episode(env, MaxPressure(), seed=seed)
            runs.append((env._sims[0].engine._eng, env.episode_kpis()[0], env.records()))
    finally:
        env.close()
    assert runs[0][0] is runs[1][0] is runs[2][0]  # reset, never rebuilt
    np.testing.assert_equal(runs[0][1], runs[2][1])  # NaN teleports compare equal here
    assert runs[0][1]["avg_travel_time_s"] != runs[1][1]["avg_travel_time_s"]
    assert runs[0][2].equals(runs[2][2])
    assert runs[0][1]["throughput_veh"] > 0


def test_cityflow_worker_processes_match_in_process():
    """Each worker process builds its own engine, runs its episodes on it and destroys it at
    close (once, with the destructor fix); env 0 of the workers = the in-process run."""
    pytest.importorskip("cityflow", reason="CityFlow is not installed (tools/install_cityflow.sh)")
    from gridmarl.experiment import run_episode
    from gridmarl.traffic.env import TrafficEnv
    from gridmarl.traffic.rules import FixedTime

    sc = _grid_scenario("cityflow", rows=2, rate=1.0, horizon_s=200)
    local = TrafficEnv(sc)
    try:
        rec_l, _ = run_episode(local, FixedTime(), seed=4)
    finally:
        local.close()
    par = TrafficEnv(sc, num_envs=2)
    try:
        run_episode(par, FixedTime(), seed=9)
        rec_w, _ = run_episode(par, FixedTime(), seed=4)
        kp = par.episode_kpis()
    finally:
        par.close()
    assert rec_l.equals(rec_w)
    assert kp[0]["avg_travel_time_s"] != kp[1]["avg_travel_time_s"]


def test_pushed_trips_run_as_the_flow_file_would(tmp_path):
    """The trips pushed at their departure second give the run CityFlow gives on the flow file
    ``cityflow_flow`` writes for them (same travel times, same vehicles left)."""
    cityflow = pytest.importorskip("cityflow", reason="CityFlow is not installed")
    from gridmarl.traffic.engines import CityFlowEngine

    sc = _grid_scenario("cityflow", rows=2, rate=1.0, horizon_s=300)
    grid, _, layout = build_network(sc.grid, tmp_path)
    trips = generate_demand(grid, sc.demand, 300, seed=4)
    pushed = CityFlowEngine(layout)
    pushed.load(tmp_path, 4, trips)
    for i in range(len(layout.tls)):
        pushed.show_green(i, 0)
    arrived, teleports = pushed.advance(300)
    assert teleports is None and len(arrived) > 50  # east-west waits at red throughout
    assert all(int(v[1:]) < len(trips) and 0 < t <= 300 for v, t in arrived)
    by_flow = tmp_path / "flow"
    by_flow.mkdir()
    write_cityflow_network(grid, by_flow, seed=4)
    write_cityflow_flow(trips, grid, by_flow / "flow.json")
    eng = cityflow.Engine(str(write_cityflow_config(by_flow, "roadnet.json", "flow.json", 4)), 1)
    for tl in layout.tls:  # green phase 0 = light phase 1
        eng.set_tl_phase(tl, 1)
    for _ in range(300):
        eng.next_step()
    assert eng.get_vehicle_count() == pushed._eng.get_vehicle_count()
    assert eng.get_average_travel_time() == pytest.approx(pushed._eng.get_average_travel_time())
    pushed.close()


# --------------------------------------------------------------------------------------------
# Runs that are not to be believed say so
# --------------------------------------------------------------------------------------------
def test_most_trips_unfinished_is_a_warning():
    assert finished_warning("ft", np.array([0.95, 0.9]), [0, 1]) == ""
    msg = finished_warning("ft", np.array([0.95, MIN_FINISHED_SHARE - 0.01, 0.03]), [0, 1, 2])
    assert "ft: most trips did not finish on demand seeds [1, 2]" in msg
    assert "as few as 3%" in msg and "not to be believed" in msg


# --------------------------------------------------------------------------------------------
# Installing: the error, doctor and the manifest say what to run and what ran
# --------------------------------------------------------------------------------------------
def test_missing_cityflow_names_the_install_command(monkeypatch):
    from gridmarl.traffic import install

    real = install.find_spec
    monkeypatch.setattr(install, "find_spec", lambda n: None if n == "cityflow" else real(n))
    with pytest.raises(ScenarioError, match=r"not on PyPI.*bash tools/install_cityflow.sh"):
        _grid_scenario("cityflow", rows=1, rate=0.1, horizon_s=60)
    assert install.cityflow_build() == "missing"


def test_installed_cityflow_is_named_in_doctor_and_manifest():
    pytest.importorskip("cityflow", reason="CityFlow is not installed")
    from gridmarl.report import package_versions
    from gridmarl.traffic.engines import engine_status
    from gridmarl.traffic.install import cityflow_build

    build = cityflow_build()
    assert "module sha256" in build and package_versions()["cityflow"] != "missing"
    assert engine_status()["cityflow"].startswith(f"available (CityFlow {build})")
