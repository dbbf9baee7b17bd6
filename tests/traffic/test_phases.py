"""Phase designs (``traffic.phases``: 2, 4, 8) on SUMO and CityFlow.

Every phase's green movements are checked against tables written out here by hand (not derived
from ``roadnet.PhaseDesign``), on the SUMO network (``tlLogic`` link states of the layout and
the lanes the connections leave from) and on CityFlow's roadnet (``availableRoadLinks`` and
``laneLinks``); the rules run on every design and engine and trips finish; the FixedTime splits
and the store-and-forward lane service match hand computations.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from baselines_opt.traffic_sf import lane_service
from gridmarl.config import ScenarioError, validate_scenario
from gridmarl.experiment import run_episode
from gridmarl.traffic.cityflow_files import cityflow_roadnet
from gridmarl.traffic.config import GridConfig
from gridmarl.traffic.roadnet import (
    EAST,
    NORTH,
    SOUTH,
    WEST,
    Grid,
    build_network,
    phase_design,
    turn_of,
)
from gridmarl.traffic.rules import FixedTime, MaxPressure, critical_lane_shares

NS, EW = (SOUTH, NORTH), (WEST, EAST)  # headings of the north-south / east-west approaches
L, S, R = "turn_left", "go_straight", "turn_right"


def _all(heads, turns, sig):
    return {(h, t): sig for h in heads for t in turns}


#: the design tables, by hand: phase -> {(heading of the incoming road, turn): G or g}
EXPECTED: dict[int, list[dict[tuple[int, str], str]]] = {
    2: [
        {**_all(NS, (S, R), "G"), **_all(NS, (L,), "g")},
        {**_all(EW, (S, R), "G"), **_all(EW, (L,), "g")},
    ],
    4: [
        {**_all(NS, (S, R), "G"), **_all(EW, (R,), "g")},
        {**_all(EW, (S, R), "G"), **_all(NS, (R,), "g")},
        {**_all(NS, (L,), "G"), **_all(NS + EW, (R,), "g")},
        {**_all(EW, (L,), "G"), **_all(NS + EW, (R,), "g")},
    ],
}
EXPECTED[8] = EXPECTED[4] + [
    {**_all((h,), (S, L, R), "G"), **_all(tuple(x for x in NS + EW if x != h), (R,), "g")}
    for h in (SOUTH, NORTH, WEST, EAST)  # north, south, east, west approach
]


def _scenario(engine: str, phases: int, lanes: int, horizon_s: int = 360, **traffic) -> object:
    """2 x 2 grid, 150 m roads, 0.4 veh/s until 2 min before the horizon."""
    return validate_scenario(
        {
            "name": "phases",
            "domain": "traffic",
            "seed": 0,
            "engine": engine,
            "grid": {"rows": 2, "cols": 2, "lanes": lanes, "road_length_m": 150},
            "demand": {
                "profile": [{"duration_s": max(horizon_s - 120, 10), "rate_veh_per_s": 0.4}]
            },
            "traffic": {"horizon_s": horizon_s, "decision_s": 10, "phases": phases, **traffic},
            "controllers": [{"name": "max_pressure"}],
        }
    )


# --------------------------------------------------------------------------------------------
# SUMO: link states and lane use
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("phases", "lanes"), [(2, 2), (4, 2), (4, 3), (8, 2)])
def test_sumo_phase_states_are_the_design(tmp_path, phases, lanes):
    cfg = GridConfig(rows=2, cols=2, lanes=lanes)
    grid, net, lay = build_network(cfg, tmp_path, design=phase_design(phases))
    root = ET.parse(net).getroot()
    assert lay.n_phases == [phases] * 4
    for i, nid in enumerate(lay.tls):
        conns = sorted(
            (int(c.get("linkIndex")), c.get("from"), int(c.get("fromLane")), c.get("to"))
            for c in root.iter("connection")
            if c.get("tl") == nid
        )
        for p, table in enumerate(EXPECTED[phases]):
            got = {}
            for k, frm, _, to in conns:
                move = (grid.roads[frm].heading, turn_of(grid.roads[frm], grid.roads[to]))
                got.setdefault(move, set()).add(lay.green_states[i][p][k])
            want = {m: {table.get(m, "r")} for m in got}
            assert got == want, (phases, nid, p)
        # lane use: left turns from the inner lane; with protected lefts that lane is theirs
        for _, frm, lane, to in conns:
            turn = turn_of(grid.roads[frm], grid.roads[to])
            if turn == L:
                assert lane == lanes - 1
            elif turn == R:
                assert lane == 0
            elif phases != 2:
                assert lane < lanes - 1  # no straight movement from the left-turn lane
        assert len(lay.all_red_state(i)) == len(conns) and set(lay.all_red_state(i)) == {"r"}


def test_yellow_keeps_links_green_in_both_phases(tmp_path):
    """Right turns, allowed in every phase of the 4-phase design, keep their state across a
    change; the links losing green turn yellow."""
    grid, _, lay = build_network(
        GridConfig(rows=2, cols=2, lanes=3), tmp_path, design=phase_design(4)
    )
    y = lay.yellow_state(0, 0, 2)
    for a, b, c in zip(lay.green_states[0][0], lay.green_states[0][2], y, strict=True):
        assert c == (a if (a in "Gg" and b in "Gg") else ("y" if a in "Gg" else "r"))
    assert "y" in y and "g" in y


# --------------------------------------------------------------------------------------------
# CityFlow: road links per light phase and lane links
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("phases", "lanes"), [(2, 2), (4, 3), (8, 2)])
def test_cityflow_phases_are_the_design(phases, lanes):
    grid = Grid.build(GridConfig(rows=2, cols=2, lanes=lanes))
    net = cityflow_roadnet(grid, design=phase_design(phases))
    for inter in (x for x in net["intersections"] if not x["virtual"]):
        links = inter["roadLinks"]
        lights = inter["trafficLight"]["lightphases"]
        assert len(lights) == phases + 1 and lights[0]["availableRoadLinks"] == []
        for p, table in enumerate(EXPECTED[phases]):
            green = {
                (grid.roads[links[k]["startRoad"]].heading, links[k]["type"])
                for k in lights[p + 1]["availableRoadLinks"]
            }
            assert green == set(table), (inter["id"], p)
        for link in links:
            starts = {ll["startLaneIndex"] for ll in link["laneLinks"]}  # 0 = inner lane
            ends = {ll["endLaneIndex"] for ll in link["laneLinks"]}
            assert ends == set(range(lanes))  # every lane of the end road
            if link["type"] == L:
                assert starts == {0}
            elif link["type"] == R:
                assert starts == {lanes - 1}
            else:
                assert starts == (set(range(1, lanes)) if phases != 2 else set(range(lanes)))


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("traffic", "lanes", "fragment"),
    [
        ({"phases": 3}, 2, "traffic.phases: Input should be 2, 4 or 8"),
        ({"phases": "four"}, 2, "traffic.phases: Input should be 2, 4 or 8"),
        ({"phases": 4}, 1, "needs grid.lanes >= 2 (got 1); allowed with 1 lane: 2"),
        ({"yellow_s": 3, "all_red_s": 7}, 2, "traffic.yellow_s + traffic.all_red_s (3 + 7)"),
        ({"all_red_s": -1}, 2, "traffic.all_red_s"),
    ],
)
def test_bad_phase_settings_name_the_key(traffic, lanes, fragment):
    data = {
        "name": "bad",
        "domain": "traffic",
        "grid": {"rows": 2, "cols": 2, "lanes": lanes},
        "traffic": {"horizon_s": 60, "decision_s": 10, **traffic},
        "controllers": [{"name": "max_pressure"}],
    }
    with pytest.raises(ScenarioError, match=None) as err:
        validate_scenario(data)
    assert fragment in str(err.value)


# --------------------------------------------------------------------------------------------
# Rules on every design and engine
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ["sumo", "cityflow"])
@pytest.mark.parametrize(("phases", "lanes"), [(2, 2), (4, 3), (8, 2)])
def test_rules_run_and_trips_finish(engine, phases, lanes):
    if engine == "cityflow":
        pytest.importorskip("cityflow", reason="CityFlow is not installed")
    from gridmarl.traffic.env import TrafficEnv

    sc = _scenario(engine, phases, lanes, all_red_s=2)
    env = TrafficEnv(sc)
    try:
        assert env.spec.n_discrete == phases
        assert env.spec.local_dim == phases + 2 * 4 * lanes
        shares = {}
        for ctrl in (FixedTime(), MaxPressure()):
            rec, _ = run_episode(env, ctrl, seed=0)
            k = env.episode_kpis()[0]
            shares[ctrl.name] = k["finished_share"]
            # trips cross a 2 x 2 grid in well under two minutes at 0.4 veh/s
            assert k["finished_share"] > 0.95, (ctrl.name, k)
            used = set(rec["phase"].unique().tolist())
            if ctrl.name == "fixed_time":
                assert used == set(phase_design(phases).fixed_cycle)
            else:
                assert used <= set(range(phases)) and len(used) >= 2
            assert not rec["overridden"].any()  # the rules respect min green
    finally:
        env.close()


def test_all_red_clearance_delays_the_green():
    """A change shows yellow_s + all_red_s before the new green: the green time the env reports
    after a switching step is decision_s - yellow_s - all_red_s."""
    from gridmarl.traffic.sim import SignalSim, prepare_folder

    sc = _scenario("sumo", 4, 2, horizon_s=60, yellow_s=3, all_red_s=2, min_green_s=0)
    folder, _, layout = prepare_folder(sc)
    sim = SignalSim(sc, layout, folder)
    try:
        sim.reset(0)
        obs = sim.step(np.full(4, 2))
        assert (obs["green_s"] == 10 - 3 - 2).all() and (obs["phase"] == 2).all()
        obs = sim.step(np.full(4, 2))
        assert (obs["green_s"] == 15).all()
    finally:
        sim.close()


# --------------------------------------------------------------------------------------------
# Fixed-time splits and store-and-forward lane service, by hand
# --------------------------------------------------------------------------------------------
def test_fixed_time_splits_by_hand(tmp_path):
    """4 phases, 3 lanes, turning left 0.15 / straight 0.7 / right 0.15: the straight lanes
    carry 0.7 / 2 = 0.35 each, the outer one also the right turns (0.5, critical); the left
    lane 0.15.  So the lefts get 30 · 0.15 / 0.5 = 9 s, raised to the 2 steps min green needs
    (10 s green, 3 s yellow: 7 s in the first step); the cycle leads with the lefts."""
    grid, _, lay = build_network(
        GridConfig(rows=2, cols=2, lanes=3), tmp_path, design=phase_design(4)
    )
    y = critical_lane_shares(lay, (0.15, 0.7, 0.15))
    assert np.allclose(y, [[0.5, 0.5, 0.15, 0.15]] * 4)
    grid2, _, lay2 = build_network(GridConfig(rows=2, cols=2, lanes=2), tmp_path / "two")
    assert np.allclose(critical_lane_shares(lay2, (0.15, 0.7, 0.15)), 0.5)  # 2 phases: equal

    class _Env:
        layout = lay
        scenario = _scenario("sumo", 4, 3)

    ft = FixedTime(green_s=30.0)
    ft.reset(_Env())  # type: ignore[arg-type]
    assert np.allclose(ft.greens(_Env())[0], [30, 30, 9, 9])  # type: ignore[arg-type]
    assert ft._cycle[0].tolist() == [2, 2, 0, 0, 0, 3, 3, 1, 1, 1]
    ft = FixedTime(green_s=[20, 20, 0, 0])
    ft.reset(_Env())  # type: ignore[arg-type]
    assert ft._cycle[0].tolist() == [0, 0, 1, 1]
    with pytest.raises(ScenarioError, match="one green time >= 0 per phase"):
        FixedTime(green_s=[20, 20]).reset(_Env())  # type: ignore[arg-type]


def test_sf_lane_service_by_hand(tmp_path):
    """A 3-lane road in the 4-phase design: its straight phase serves the two straight lanes
    (2/3), its left phase the left lane (1/3), the other axis's phases none (the shared
    straight/right lane waits for its straight)."""
    _, _, lay = build_network(GridConfig(rows=2, cols=2, lanes=3), tmp_path, design=phase_design(4))
    serves = lane_service(lay)
    assert serves.shape == (16, 4)
    ns_road = np.array([[2 / 3, 0, 1 / 3, 0]])  # approaches N and S of every intersection
    ew_road = np.array([[0, 2 / 3, 0, 1 / 3]])
    want = np.concatenate([ns_road, ew_road, ns_road, ew_road] * 4)
    assert np.allclose(serves, want)
    _, _, lay2 = build_network(GridConfig(rows=2, cols=2, lanes=2), tmp_path / "two")
    assert set(np.unique(lane_service(lay2))) == {0.0, 1.0}


def test_ltos_scenario_design_and_engine_choice():
    """The LToS scenario: 4 phases (the policy shape follows), 3 lanes, 10-s decisions, the
    Table 1 profile; ``engine: auto`` is CityFlow exactly when the module is installed."""
    from importlib.util import find_spec
    from pathlib import Path

    from gridmarl.config import load_scenario
    from gridmarl.traffic.env import policy_shape

    path = Path(__file__).resolve().parents[2] / "scenarios" / "traffic_ltos_6x6.yaml"
    sc = load_scenario(path)
    assert sc.engine == ("cityflow" if find_spec("cityflow") is not None else "sumo")
    assert sc.traffic.phases == 4 and sc.traffic.decision_s == 10 and sc.grid.lanes == 3
    rates = [p.rate_veh_per_s for p in sc.demand.profile]
    assert rates == pytest.approx([1, 1 / 4, 1 / 3, 2, 1 / 5, 1 / 2], abs=1e-3)
    assert policy_shape(sc).n_discrete == 4
    assert load_scenario(path, overrides=["engine=sumo"]).engine == "sumo"
