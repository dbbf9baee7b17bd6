"""CityFlow's files for a ``roadnet.Grid``: roadnet, flow and engine config, in CityFlow's
documented JSON formats (https://cityflow.readthedocs.io/en/latest/roadnet.html and
``.../flow.html``), built to match the SUMO network ``netgenerate --grid`` writes for the same
grid, so that both engines simulate the same streets.

* **Geometry.**  Roads run between node centres; lanes are ``LANE_WIDTH_M`` (3.2 m, SUMO's
  default) wide.  An intersection's ``width`` is the distance from its centre to the stop line;
  it is netgenerate's junction half-size (``junction_half_size_m``: 3.2 m per lane + 4 m), so
  lanes have SUMO's lengths (179.2 m between intersections 200 m apart with 2 lanes, 189.6 m on
  boundary roads) and crossing an intersection straight is SUMO's 20.8 m.  Boundary nodes are
  ``virtual`` (no signal; vehicles enter and leave there).
* **Lane links.**  Each movement leaves from the lanes SUMO connects for it
  (``PhaseDesign.turn_lanes``: left turns from the inner lane, right turns from the outer lane,
  straight from every lane, or from every lane but the inner one where the design gives left
  turns an exclusive lane) and reaches **every** lane of its end road, as CityFlow's own grid
  generator does.  CityFlow runs without lane changing (``laneChange: false``); its router
  chooses, inside the intersection, the end lane from which the vehicle's next movement may
  leave.  That replaces SUMO's lane changes along the road.  (With one end lane per start lane a
  vehicle cannot reach the lane its next turn needs, and the grid gridlocks.)
* **Link shapes.**  A straight link is a line from the end of its start lane to the start of its
  end lane; a turn is a quarter ellipse between them (cubic Bézier, ``_TURN_POINTS`` points).
  CityFlow finds the conflict points of crossing links from these shapes, so a permissive left
  turn yields to the opposing straight traffic (links with no length would never conflict).
* **Signals.**  ``rlTrafficLight``: signals are set from Python.  Light phase 0 has no green
  link: it is the change interval (SUMO shows yellow on the links losing green; CityFlow has no
  yellow, its vehicles stop at red when they can still brake).  Light phase ``j + 1`` is green
  phase ``j`` of the phase design (``roadnet.PhaseDesign.greens``: the movements each green
  serves, protected or permitted; CityFlow resolves the conflicts of links green together at the
  crossing points of their shapes).
* **Vehicles.**  ``roadnet.CAR`` in CityFlow's terms (``vehicle_params``).  CityFlow has no
  driver imperfection (SUMO's ``sigma``) and drives turns at a fixed 8.33 m/s (SUMO: the
  junction's curve speed, 6.5 m/s right and 9.3 m/s left here).
* **Demand.**  The trips are pushed into the engine at their departure second
  (``engines.CityFlowEngine``), so one engine serves every episode of a worker; the engine's
  flow file (``NO_FLOWS``) is empty.  ``cityflow_flow`` writes the same trips as a CityFlow flow
  file (one single-vehicle flow per trip) for use outside gridmarl.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gridmarl.core.errors import ScenarioError
from gridmarl.core.io import write_json
from gridmarl.traffic.roadnet import (
    CAR,
    EAST,
    NORTH,
    SOUTH,
    TWO_PHASE_DESIGN,
    WEST,
    Grid,
    PhaseDesign,
    Road,
    Vehicle,
    turn_of,
)

LANE_WIDTH_M = 3.2  # SUMO's default lane width [m]
NO_FLOWS = "no_flows.json"  # the engine's flow file: trips are pushed through the API instead
_TURN_POINTS = 11  # points along a turning lane link (CityFlow's own curves use 11)
_KAPPA = 0.5523  # cubic Bézier handle of a quarter circle, 4/3·(√2 − 1), per unit radius
_UNIT = {EAST: (1.0, 0.0), NORTH: (0.0, 1.0), WEST: (-1.0, 0.0), SOUTH: (0.0, -1.0)}

Point = tuple[float, float]


def junction_half_size_m(lanes: int) -> float:
    """Distance from an intersection's centre to its stop lines [m]: netgenerate's junction
    half-size for ``lanes`` lanes of 3.2 m per direction (``lanes`` · 3.2 + 4)."""
    return lanes * LANE_WIDTH_M + 4.0


def vehicle_params(speed_limit_m_per_s: float) -> dict[str, float]:
    """``roadnet.CAR`` as CityFlow's vehicle parameters (flow file ``vehicle`` block, and
    ``Engine.push_vehicle``): SUMO's ``accel`` is CityFlow's maximum and usual acceleration,
    ``decel`` its usual and maximum deceleration (Krauss' safe speed uses ``decel``), ``tau``
    its ``headwayTime``; top speed the speed limit [m, m/s, m/s², s]."""
    return {
        "length": CAR.length_m,
        "width": CAR.width_m,
        "maxPosAcc": CAR.accel_m_per_s2,
        "maxNegAcc": CAR.decel_m_per_s2,
        "usualPosAcc": CAR.accel_m_per_s2,
        "usualNegAcc": CAR.decel_m_per_s2,
        "minGap": CAR.min_gap_m,
        "maxSpeed": float(speed_limit_m_per_s),
        "headwayTime": CAR.tau_s,
    }


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------
def _pt(xy: Point) -> dict[str, float]:
    return {"x": round(float(xy[0]), 4), "y": round(float(xy[1]), 4)}


def _lane_offset(k: int) -> float:
    """Distance of CityFlow lane ``k``'s centre line right of its road's centre line [m]
    (CityFlow lays lanes out from the centre line outwards, lane 0 innermost)."""
    return (k + 0.5) * LANE_WIDTH_M


def _lane_end(centre: Point, road: Road, k: int, half: float) -> Point:
    """Where lane ``k`` of incoming ``road`` meets the stop line of the intersection at
    ``centre`` (half-size ``half`` [m])."""
    ux, uy = _UNIT[road.heading]
    off = _lane_offset(k)
    return centre[0] - ux * half + uy * off, centre[1] - uy * half - ux * off


def _lane_start(centre: Point, road: Road, k: int, half: float) -> Point:
    """Where lane ``k`` of outgoing ``road`` leaves the intersection at ``centre``."""
    ux, uy = _UNIT[road.heading]
    off = _lane_offset(k)
    return centre[0] + ux * half + uy * off, centre[1] + uy * half - ux * off


def link_points(a: Road, b: Road, p0: Point, p3: Point) -> list[Point]:
    """Shape of a lane link from ``p0`` (end of a lane of road ``a``) to ``p3`` (start of a lane
    of road ``b``): a line when ``a`` and ``b`` have the same heading, else a quarter ellipse
    tangent to both lanes (cubic Bézier with handles ``_KAPPA`` × the distance to the corner)."""
    if a.heading == b.heading:
        return [p0, p3]
    ua, ub = _UNIT[a.heading], _UNIT[b.heading]
    dx, dy = p3[0] - p0[0], p3[1] - p0[1]
    s = dx * ua[0] + dy * ua[1]  # p0 -> corner along a  (ua ⟂ ub)
    t = dx * ub[0] + dy * ub[1]  # corner -> p3 along b
    p1 = (p0[0] + _KAPPA * s * ua[0], p0[1] + _KAPPA * s * ua[1])
    p2 = (p3[0] - _KAPPA * t * ub[0], p3[1] - _KAPPA * t * ub[1])
    out = []
    for i in range(_TURN_POINTS):
        u = i / (_TURN_POINTS - 1)
        w = ((1 - u) ** 3, 3 * u * (1 - u) ** 2, 3 * u * u * (1 - u), u**3)
        out.append(
            (
                w[0] * p0[0] + w[1] * p1[0] + w[2] * p2[0] + w[3] * p3[0],
                w[0] * p0[1] + w[1] * p1[1] + w[2] * p2[1] + w[3] * p3[1],
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Roadnet, flow, config
# --------------------------------------------------------------------------------------------
def cityflow_roadnet(
    grid: Grid,
    phases: Sequence[frozenset[tuple[int, str]]] | None = None,
    design: PhaseDesign = TWO_PHASE_DESIGN,
) -> dict[str, Any]:
    """CityFlow roadnet dict (``intersections`` and ``roads``) of ``grid``.

    Args:
        grid: the abstract grid.
        phases: the green phases, each the set of (incoming heading, turn) movements it serves
            (protected or permitted); default ``design.greens``.
        design: the phase design: its green phases and its lane use (``PhaseDesign.turn_lanes``,
            the lanes each movement leaves from, as the SUMO network connects them).

    CityFlow numbers lanes from the inner (left) lane: CityFlow lane k = SUMO lane
    ``lanes - 1 - k``.  Light phase 0 (no road links) is the change interval; light phase
    ``j + 1`` is green phase ``j``.  Road links are listed per approach N, E, S, W.
    """
    if phases is None:
        phases = design.greens
    lanes = grid.cfg.lanes
    half = junction_half_size_m(lanes)
    lane_spec = [
        {"width": LANE_WIDTH_M, "maxSpeed": grid.cfg.speed_limit_m_per_s} for _ in range(lanes)
    ]
    roads = [
        {
            "id": road.id,
            "startIntersection": road.src,
            "endIntersection": road.dst,
            "points": [_pt(grid.nodes[road.src]), _pt(grid.nodes[road.dst])],
            "lanes": [dict(x) for x in lane_spec],
        }
        for road in sorted(grid.roads.values(), key=lambda r: r.id)
    ]
    inters = []
    for nid in sorted(grid.nodes):
        touching = sorted(r.id for r in grid.roads.values() if nid in (r.src, r.dst))
        if nid not in grid.intersections:
            inters.append(
                {
                    "id": nid,
                    "point": _pt(grid.nodes[nid]),
                    "width": 0,
                    "roads": touching,
                    "roadLinks": [],
                    "trafficLight": {
                        "roadLinkIndices": [],
                        "lightphases": [{"time": 30, "availableRoadLinks": []}],
                    },
                    "virtual": True,
                }
            )
            continue
        centre = grid.nodes[nid]
        outgoing = sorted((r for r in grid.roads.values() if r.src == nid), key=lambda r: r.id)
        links: list[dict[str, Any]] = []
        green: list[list[int]] = [[] for _ in phases]
        for a in grid.incoming(nid):
            for b in outgoing:
                if (b.heading - a.heading) % 4 == 2:
                    continue  # no U-turns
                kind = turn_of(a, b)
                lane_links = []
                for sumo_lane in design.turn_lanes(kind, lanes):
                    s = lanes - 1 - sumo_lane
                    for e in range(lanes):
                        pts = link_points(
                            a, b, _lane_end(centre, a, s, half), _lane_start(centre, b, e, half)
                        )
                        lane_links.append(
                            {
                                "startLaneIndex": s,
                                "endLaneIndex": e,
                                "points": [_pt(p) for p in pts],
                            }
                        )
                for j, served in enumerate(phases):
                    if (a.heading, kind) in served:
                        green[j].append(len(links))
                links.append(
                    {
                        "type": kind,
                        "startRoad": a.id,
                        "endRoad": b.id,
                        "direction": a.heading,
                        "laneLinks": lane_links,
                    }
                )
        inters.append(
            {
                "id": nid,
                "point": _pt(centre),
                "width": half,
                "roads": touching,
                "roadLinks": links,
                "trafficLight": {
                    "roadLinkIndices": list(range(len(links))),
                    "lightphases": [{"time": 5, "availableRoadLinks": []}]
                    + [{"time": 30, "availableRoadLinks": g} for g in green],
                },
                "virtual": False,
            }
        )
    return {"intersections": inters, "roads": roads}


def cityflow_flow(vehicles: list[Vehicle], grid: Grid) -> list[dict[str, Any]]:
    """CityFlow flow list (documented format): one single-vehicle flow per trip, departing at
    its scheduled second."""
    veh = vehicle_params(grid.cfg.speed_limit_m_per_s)
    return [
        {
            "vehicle": dict(veh),
            "route": list(v.route),
            "interval": 1.0,
            "startTime": int(v.depart_s),
            "endTime": int(v.depart_s),
        }
        for v in vehicles
    ]


def write_cityflow_roadnet(
    grid: Grid,
    path: str | Path,
    phases: Sequence[frozenset[tuple[int, str]]] | None = None,
    design: PhaseDesign = TWO_PHASE_DESIGN,
) -> Path:
    """Write ``cityflow_roadnet(grid, phases, design)`` as JSON."""
    return write_json(path, cityflow_roadnet(grid, phases, design))


def write_cityflow_flow(vehicles: list[Vehicle], grid: Grid, path: str | Path) -> Path:
    """Write ``cityflow_flow(vehicles, grid)`` as JSON."""
    return write_json(path, cityflow_flow(vehicles, grid))


def write_cityflow_config(folder: str | Path, roadnet: str, flow: str, seed: int) -> Path:
    """CityFlow engine config ``folder/cityflow_config.json`` (``interval`` 1 s, signals set
    from Python, no lane changing, no replay); ``roadnet`` and ``flow`` are file names in
    ``folder``."""
    folder = Path(folder)
    cfg = {
        "interval": 1.0,
        "seed": int(seed),
        "dir": str(folder.resolve()) + os.sep,
        "roadnetFile": roadnet,
        "flowFile": flow,
        "rlTrafficLight": True,
        "laneChange": False,
        "saveReplay": False,
        "roadnetLogFile": "",
        "replayLogFile": "",
    }
    return write_json(folder / "cityflow_config.json", cfg)


def write_cityflow_network(
    grid: Grid, folder: str | Path, seed: int = 0, design: PhaseDesign = TWO_PHASE_DESIGN
) -> Path:
    """The files one ``CityFlowEngine`` runs on, in ``folder``: ``roadnet.json`` (phases and
    lane use of ``design``), the empty flow file ``NO_FLOWS`` and ``cityflow_config.json``
    (returned)."""
    folder = Path(folder)
    write_cityflow_roadnet(grid, folder / "roadnet.json", design=design)
    write_json(folder / NO_FLOWS, [])
    return write_cityflow_config(folder, "roadnet.json", NO_FLOWS, seed)


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ScenarioError(f"{path}: CityFlow {what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScenarioError(f"{path}: CityFlow {what} is not readable JSON ({exc})") from None


def check_cityflow_config(path: str | Path) -> dict[str, Any]:
    """Read a CityFlow engine config and check what CityFlow would otherwise report only as
    "load config failed!" before simulating an empty network: the file exists and is a JSON
    object with ``dir``, ``roadnetFile`` and ``flowFile``; the roadnet is a JSON object with
    ``intersections`` and ``roads``; the flow file is a JSON list.

    Raises:
        ScenarioError: naming the file and the problem.
    """
    path = Path(path)
    cfg = _read_json(path, "config")
    if not isinstance(cfg, dict):
        raise ScenarioError(f"{path}: CityFlow config must be a JSON object")
    missing = [k for k in ("dir", "roadnetFile", "flowFile") if not isinstance(cfg.get(k), str)]
    if missing:
        raise ScenarioError(f"{path}: CityFlow config lacks {', '.join(missing)} (strings)")
    base = Path(cfg["dir"])
    net = _read_json(base / cfg["roadnetFile"], "roadnet file")
    if not isinstance(net, dict) or not {"intersections", "roads"} <= set(net):
        raise ScenarioError(
            f"{base / cfg['roadnetFile']}: CityFlow roadnet must be an object with "
            "'intersections' and 'roads'"
        )
    flows = _read_json(base / cfg["flowFile"], "flow file")
    if not isinstance(flows, list):
        raise ScenarioError(f"{base / cfg['flowFile']}: CityFlow flow file must be a JSON list")
    return cfg
