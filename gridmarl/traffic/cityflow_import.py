"""CityFlow-format networks and demand (roadnet + flow JSON) on CityFlow and on SUMO.

The public real-world signal-control benchmarks (Jinan, Hangzhou, New York) and CityFlow's own
examples ship as a CityFlow roadnet file and a flow file (formats:
https://cityflow.readthedocs.io/en/latest/roadnet.html, ``.../flow.html``).  A scenario points
at them with ``cityflow_files: {roadnet: PATH, flow: PATH}``; this module

* reads and checks both files (``read_cityflow_files``): JSON, every road's intersections
  present, every road link between roads of its intersection, every phase's road links in
  range, every flow's route a chain of existing, connected roads.  A problem is a
  ``ScenarioError`` naming the file and the problem (``gridmarl`` exits with code 2);
* runs them on **CityFlow directly** (the user's roadnet and flow file, CityFlow's own
  vehicle generation) and on **SUMO** through a conversion (``write_sumo_files``): plain-XML
  nodes (the roadnet's points; signalised where an intersection has light phases), edges (the
  road's points as shape, its lane count and speed), connections (one per start lane of a
  road link, parallel to the others: ``sumo_lane_links``; CityFlow lane k = SUMO lane
  ``lanes − 1 − k``), ``netconvert``; routes: every vehicle of every flow with its route of
  roads, one vType per distinct flow ``vehicle`` (its parameters, no random dawdling, as
  CityFlow);
* drives the signals from the roadnet: the **green phases** are the light phases with a road
  link that is not a right turn; a phase change shows the roadnet's first other light phase
  (its change interval, e.g. the yellow of the benchmark files) for ``traffic.yellow_s``, on
  SUMO the links losing green yellow (the change phase's own links keep theirs).  SUMO link
  states: green links of a phase are ``G``, ``g`` (yield) for left turns.

Controllers on both engines: ``fixed_time`` (the roadnet's own programme: each green phase for
its ``time`` [s], rounded to decisions) and ``max_pressure`` (Varaiya 2013, Eq. 5: per phase,
Σ over its road links of the vehicles on the link's start lanes minus the mean vehicles per
lane of its end road; the phase of largest pressure every ``traffic.decision_s``).  Learned
controllers and the store-and-forward plan need the grid env (``TrafficEnv``) and do not run
on imported networks.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gridmarl.core.errors import ScenarioError
from gridmarl.core.io import write_json
from gridmarl.traffic.install import sumo_binary, sumo_home

#: vehicle parameters CityFlow's examples use where a flow leaves one out (flow.html) [m, m/s²]
_DEFAULT_MAX_SPEED_M_PER_S = 11.111
#: a flow's ``vehicle`` keys (flow.html) -> the SUMO vType attribute that means the same: the
#: usual accelerations are the ones Krauss drives with, the largest braking is the emergency one
_VEHICLE_KEYS = {
    "length": "length",
    "width": "width",
    "minGap": "minGap",
    "maxSpeed": "maxSpeed",
    "usualPosAcc": "accel",
    "usualNegAcc": "decel",
    "maxNegAcc": "emergencyDecel",
    "headwayTime": "tau",
}
#: the SUMO vType where a flow leaves a parameter out [m, m/s²]
_SUMO_VTYPE_DEFAULTS = {
    "accel": "2.6",
    "decel": "4.5",
    "length": "5",
    "minGap": "2.5",
    "sigma": "0",
}


@dataclass
class Intersection:
    """A signalised intersection of an imported roadnet.

    Attributes:
        id: intersection id.
        links: road links as (start road, end road, type, [(start lane, end lane)]), CityFlow
            lane indices (0 = inner lane).
        phases: per light phase, the road-link indices with green.
        times: per light phase, its duration in the roadnet's programme [s].
        greens: the light phases that serve a road link other than a right turn.
        change: the light phase shown between two greens (None: the roadnet has none).
    """

    id: str
    links: list[tuple[str, str, str, list[tuple[int, int]]]]
    phases: list[list[int]]
    times: list[float]
    greens: list[int]
    change: int | None


@dataclass
class ImportedNetwork:
    """What the roadnet + flow files hold.

    Attributes:
        roadnet_path, flow_path: the files.
        roads: road id -> (start, end, points [(x, y)], lanes, speed limit [m/s]).
        nodes: intersection id -> (x, y, virtual).
        signals: the signalised intersections, in file order.
        trips: (id, departure [s], route of road ids, index into ``vehicle_types``), sorted
            by departure.
        vehicle_types: the distinct ``vehicle`` objects of the flows (CityFlow keys, e.g.
            ``length`` [m], ``maxPosAcc`` [m/s²], ``maxSpeed`` [m/s], ``headwayTime`` [s]).
    """

    roadnet_path: Path
    flow_path: Path
    roads: dict[str, tuple[str, str, list[tuple[float, float]], int, float]]
    nodes: dict[str, tuple[float, float, bool]]
    signals: list[Intersection] = field(default_factory=list)
    trips: list[tuple[str, float, tuple[str, ...], int]] = field(default_factory=list)
    vehicle_types: list[dict[str, float]] = field(default_factory=list)


def _load(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ScenarioError(f"{path}: CityFlow {what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScenarioError(f"{path}: CityFlow {what} is not JSON ({exc})") from None


def _need(cond: bool, path: Path, problem: str) -> None:
    if not cond:
        raise ScenarioError(f"{path}: {problem}")


def read_cityflow_files(
    roadnet: str | Path, flow: str | Path, horizon_s: float = 3600.0
) -> ImportedNetwork:
    """Read and check a CityFlow roadnet and flow file; expand the flows into trips departing
    before ``horizon_s`` [s] (a flow sends a vehicle at ``startTime`` and every ``interval``
    seconds up to ``endTime``; ``endTime`` −1 = until the horizon).

    Raises:
        ScenarioError: naming the file and the problem.
    """
    rp, fp = Path(roadnet), Path(flow)
    net = _load(rp, "roadnet file")
    _need(
        isinstance(net, dict) and isinstance(net.get("intersections"), list),
        rp,
        "a CityFlow roadnet is an object with an 'intersections' list and a 'roads' list",
    )
    _need(isinstance(net.get("roads"), list), rp, "the roadnet has no 'roads' list")
    nodes: dict[str, tuple[float, float, bool]] = {}
    for k, it in enumerate(net["intersections"]):
        try:
            nodes[str(it["id"])] = (
                float(it["point"]["x"]),
                float(it["point"]["y"]),
                bool(it.get("virtual", False)),
            )
        except (KeyError, TypeError, ValueError):
            raise ScenarioError(
                f"{rp}: intersections[{k}] lacks 'id' or 'point' {{x, y}}"
            ) from None
    _need(bool(nodes), rp, "the roadnet has no intersections")
    roads: dict[str, tuple[str, str, list[tuple[float, float]], int, float]] = {}
    for k, r in enumerate(net["roads"]):
        try:
            rid, a, b = str(r["id"]), str(r["startIntersection"]), str(r["endIntersection"])
            pts = [(float(p["x"]), float(p["y"])) for p in r["points"]]
            lanes = r["lanes"]
            speed = float(lanes[0].get("maxSpeed", _DEFAULT_MAX_SPEED_M_PER_S))
        except (KeyError, TypeError, ValueError, IndexError):
            raise ScenarioError(
                f"{rp}: roads[{k}] lacks 'id', 'startIntersection', 'endIntersection', "
                "'points' or 'lanes'"
            ) from None
        for end in (a, b):
            _need(end in nodes, rp, f"road {rid!r} refers to a missing intersection {end!r}")
        _need(len(pts) >= 2 and len(lanes) >= 1, rp, f"road {rid!r} needs 2 points and a lane")
        roads[rid] = (a, b, pts, len(lanes), speed)
    out = ImportedNetwork(rp, fp, roads, nodes)
    for it in net["intersections"]:
        nid = str(it["id"])
        links_raw = it.get("roadLinks") or []
        if nodes[nid][2] or not links_raw:
            continue
        links = []
        for k, rl in enumerate(links_raw):
            try:
                s, e, kind = str(rl["startRoad"]), str(rl["endRoad"]), str(rl["type"])
                lane_links = [
                    (int(x["startLaneIndex"]), int(x["endLaneIndex"])) for x in rl["laneLinks"]
                ]
            except (KeyError, TypeError, ValueError):
                raise ScenarioError(
                    f"{rp}: intersection {nid!r} roadLinks[{k}] lacks 'startRoad', 'endRoad', "
                    "'type' or 'laneLinks'"
                ) from None
            _need(s in roads and e in roads, rp, f"{nid!r} roadLinks[{k}]: road missing")
            _need(
                roads[s][1] == nid and roads[e][0] == nid,
                rp,
                f"{nid!r} roadLinks[{k}]: {s} does not end and {e} does not start here",
            )
            for a, b in lane_links:
                _need(
                    0 <= a < roads[s][3] and 0 <= b < roads[e][3],
                    rp,
                    f"{nid!r} roadLinks[{k}]: lane index out of range",
                )
            links.append((s, e, kind, lane_links))
        phases_raw = (it.get("trafficLight") or {}).get("lightphases") or []
        phases, times = [], []
        for k, ph in enumerate(phases_raw):
            avail = [int(x) for x in ph.get("availableRoadLinks", [])]
            _need(
                all(0 <= x < len(links) for x in avail),
                rp,
                f"{nid!r} lightphases[{k}]: availableRoadLinks out of range",
            )
            phases.append(avail)
            times.append(float(ph.get("time", 30)))
        greens = [j for j, av in enumerate(phases) if any(links[x][2] != "turn_right" for x in av)]
        _need(bool(greens), rp, f"intersection {nid!r} has no green light phase")
        others = [j for j in range(len(phases)) if j not in greens]
        out.signals.append(
            Intersection(nid, links, phases, times, greens, others[0] if others else None)
        )
    _need(bool(out.signals), rp, "the roadnet has no signalised intersection")
    flows = _load(fp, "flow file")
    _need(isinstance(flows, list), fp, "a CityFlow flow file is a JSON list of flows")
    trips: list[tuple[float, int, tuple[str, ...], int]] = []
    types: list[dict[str, float]] = []
    for k, f in enumerate(flows):
        try:
            route = tuple(str(r) for r in f["route"])
            t0, t1, dt = float(f["startTime"]), float(f["endTime"]), float(f["interval"])
        except (KeyError, TypeError, ValueError):
            raise ScenarioError(
                f"{fp}: flows[{k}] lacks 'route', 'startTime', 'endTime' or 'interval'"
            ) from None
        for rid in route:
            _need(rid in roads, fp, f"flows[{k}] runs on a missing road {rid!r}")
        for a, b in zip(route[:-1], route[1:], strict=False):
            _need(roads[a][1] == roads[b][0], fp, f"flows[{k}]: road {b!r} does not follow {a!r}")
        _need(bool(route) and dt > 0, fp, f"flows[{k}]: empty route or interval <= 0")
        vehicle = f.get("vehicle", {})
        _need(isinstance(vehicle, dict), fp, f"flows[{k}]: 'vehicle' is not an object")
        vtype: dict[str, float] = {}
        for key in _VEHICLE_KEYS:
            if key in vehicle:
                try:
                    vtype[key] = float(vehicle[key])
                except (TypeError, ValueError):
                    raise ScenarioError(
                        f"{fp}: flows[{k}].vehicle.{key} is not a number: {vehicle[key]!r}"
                    ) from None
                _need(vtype[key] > 0, fp, f"flows[{k}].vehicle.{key} must be > 0")
        if vtype not in types:
            types.append(vtype)
        ti = types.index(vtype)
        end = horizon_s - 1 if t1 < 0 else min(t1, horizon_s - 1)
        for t in np.arange(t0, end + 1e-9, dt):
            trips.append((math.floor(t), len(trips), route, ti))
    trips.sort()
    out.trips = [(f"v{i}", t, r, ti) for i, (t, _, r, ti) in enumerate(trips)]
    out.vehicle_types = types
    return out


# --------------------------------------------------------------------------------------------
# SUMO conversion
# --------------------------------------------------------------------------------------------
def write_sumo_files(net: ImportedNetwork, folder: str | Path) -> tuple[Path, Path]:
    """SUMO network (plain XML + ``netconvert``) and routes of ``net`` in ``folder``; returns
    (network, routes).

    Raises:
        ScenarioError: when ``netconvert`` fails.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    signal_ids = {s.id for s in net.signals}
    nodes = ET.Element("nodes")
    for nid, (x, y, _) in net.nodes.items():
        kind = "traffic_light" if nid in signal_ids else "priority"
        ET.SubElement(nodes, "node", id=nid, x=f"{x:.2f}", y=f"{y:.2f}", type=kind)
    edges = ET.Element("edges")
    for rid, (a, b, pts, lanes, speed) in net.roads.items():
        ET.SubElement(
            edges,
            "edge",
            id=rid,
            **{"from": a, "to": b},
            numLanes=str(lanes),
            speed=f"{speed}",
            shape=" ".join(f"{x:.2f},{y:.2f}" for x, y in pts),
        )
    conns = ET.Element("connections")
    for s in net.signals:
        for frm, to, kind, lane_links in s.links:
            n_from, n_to = net.roads[frm][3], net.roads[to][3]
            for a, b in sumo_lane_links(kind, lane_links):
                ET.SubElement(
                    conns,
                    "connection",
                    **{"from": frm, "to": to},
                    fromLane=str(n_from - 1 - a),
                    toLane=str(n_to - 1 - b),
                )
    files = {}
    for tag, root in (("nod", nodes), ("edg", edges), ("con", conns)):
        tree = ET.ElementTree(root)
        ET.indent(tree)
        files[tag] = folder / f"imported.{tag}.xml"
        tree.write(files[tag], encoding="utf-8", xml_declaration=True)
    path = folder / "imported.net.xml"
    cmd = [
        str(sumo_binary("netconvert")),
        *("--node-files", str(files["nod"]), "--edge-files", str(files["edg"])),
        *("--connection-files", str(files["con"]), "--no-turnarounds", "true"),
        *("--seed", "0", "--xml-validation", "never", "-o", str(path)),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not path.exists():
        raise ScenarioError(
            f"{net.roadnet_path}: netconvert could not build a SUMO network from it "
            f"({proc.returncode}): {proc.stderr.strip()[-400:]}"
        )
    routes = ET.Element("routes")
    for k, vtype in enumerate(net.vehicle_types):
        attrs = dict(_SUMO_VTYPE_DEFAULTS)
        attrs.update({_VEHICLE_KEYS[key]: f"{v:g}" for key, v in vtype.items()})
        if "decel" in attrs and float(attrs["decel"]) > float(attrs.get("emergencyDecel", 9)):
            attrs["emergencyDecel"] = attrs["decel"]
        ET.SubElement(routes, "vType", id=f"car{k}", **attrs)
    for vid, t, route, ti in net.trips:
        v = ET.SubElement(
            routes, "vehicle", id=vid, type=f"car{ti}", depart=f"{t:.2f}", departLane="best"
        )
        ET.SubElement(v, "route", edges=" ".join(route))
    rpath = folder / "imported.rou.xml"
    tree = ET.ElementTree(routes)
    ET.indent(tree)
    tree.write(rpath, encoding="utf-8", xml_declaration=True)
    return path, rpath


def sumo_lane_links(kind: str, lane_links: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """One end lane per start lane of a road link: the SUMO connections of ``lane_links``.

    CityFlow lets a vehicle on a start lane enter any end lane its lane links allow; the files
    (CityFlow's examples, the benchmarks) list every start lane to every end lane.  In SUMO each
    of those is a separate connection, and the connections of one movement cross each other
    inside the junction: netconvert makes them foes and vehicles wait for one another (on
    CityFlow's example < 40 % of the trips finish).  So each start lane keeps one of its lane
    links, parallel to the others: the i-th start lane (inner first) takes the i-th allowed end
    lane counted from the inner side for a left turn, from the outer side for a right turn,
    and its own index (the nearest allowed) for straight on, so lefts keep to the inner and
    rights to the outer end lanes as on a real junction, and no two connections of a movement
    cross.  Lane changes on the end road then reach the other lanes.

    Args:
        kind: the road link's ``type`` (``turn_left``, ``go_straight``, ``turn_right``).
        lane_links: (start lane, end lane) pairs, CityFlow lane indices (0 = inner).

    Returns:
        (start lane, end lane) pairs, one per start lane, in start-lane order.
    """
    allowed: dict[int, list[int]] = {}
    for a, b in lane_links:
        allowed.setdefault(a, []).append(b)
    starts = sorted(allowed)
    ends = sorted({b for _, b in lane_links})
    m, n = len(starts), len(ends)
    if kind == "turn_left":
        offset = 0
    elif kind == "turn_right":
        offset = n - m
    else:
        offset = int(np.argmin([abs(e - starts[0]) for e in ends]))
        offset = min(offset, max(n - m, 0))
    out = []
    for i, a in enumerate(starts):
        want = ends[min(max(offset + i, 0), n - 1)]
        out.append((a, min(sorted(allowed[a]), key=lambda b: (abs(b - want), b))))
    return out


def sumo_link_map(net: ImportedNetwork, net_xml: Path) -> dict[str, list[int]]:
    """Per signalised intersection, the roadnet's road-link index of each SUMO link index."""
    root = ET.parse(net_xml).getroot()
    index = {s.id: {(frm, to): k for k, (frm, to, _, _) in enumerate(s.links)} for s in net.signals}
    rows: dict[str, list[tuple[int, int]]] = {s.id: [] for s in net.signals}
    for c in root.iter("connection"):
        tl = c.get("tl")
        if tl in rows:
            key = (c.get("from"), c.get("to"))
            if key not in index[tl]:
                raise ScenarioError(f"{net_xml}: netconvert added a link {key} at {tl}")
            rows[tl].append((int(c.get("linkIndex")), index[tl][key]))
    return {tl: [k for _, k in sorted(r)] for tl, r in rows.items()}


# --------------------------------------------------------------------------------------------
# Running the imported network
# --------------------------------------------------------------------------------------------
class _Signals:
    """Lane bookkeeping shared by both engines: start lanes and end-road lanes per road link,
    as CityFlow lane ids ``<road>_<k>``."""

    def __init__(self, net: ImportedNetwork) -> None:
        self.net = net
        self.lane_ids = sorted({f"{r}_{k}" for r, v in net.roads.items() for k in range(v[3])})
        col = {lid: j for j, lid in enumerate(self.lane_ids)}
        self.pressure_terms: list[list[tuple[list[int], list[int]]]] = []
        for s in net.signals:
            terms = []
            for frm, to, _, lane_links in s.links:
                starts = sorted({col[f"{frm}_{a}"] for a, _ in lane_links})
                ends = [col[f"{to}_{k}"] for k in range(net.roads[to][3])]
                terms.append((starts, ends))
            self.pressure_terms.append(terms)

    def pressures(self, counts: np.ndarray) -> list[np.ndarray]:
        """Per intersection, the pressure of each green phase [veh] (module docstring)."""
        out = []
        for s, terms in zip(self.net.signals, self.pressure_terms, strict=True):
            w = np.array([counts[a].sum() - counts[b].mean() for a, b in terms])
            out.append(np.array([w[s.phases[j]].sum() for j in s.greens]))
        return out


def run_imported(
    net: ImportedNetwork,
    engine: str,
    controller: str,
    folder: Path,
    horizon_s: int,
    decision_s: int,
    yellow_s: int,
    seed: int = 0,
) -> dict[str, float]:
    """Simulate ``net`` for ``horizon_s`` [s] on ``engine`` under ``controller``
    (``fixed_time`` or ``max_pressure``); returns ``avg_travel_time_s`` (finished trips),
    ``throughput_veh``, ``finished_share`` and ``trips_scheduled_veh``."""
    sig = _Signals(net)
    sim = _CityFlowRun(net, folder, seed) if engine == "cityflow" else _SumoRun(net, folder, seed)
    try:
        n = len(net.signals)
        cur = [s.greens[0] for s in net.signals]
        for i in range(n):
            sim.show(i, cur[i], None)
        steps = horizon_s // decision_s
        elapsed = [0.0] * n
        for _ in range(steps):
            if controller == "fixed_time":
                want = []
                for i, s in enumerate(net.signals):
                    hold = max(1, round(s.times[cur[i]] / decision_s)) * decision_s
                    if elapsed[i] >= hold:
                        k = s.greens.index(cur[i])
                        want.append(s.greens[(k + 1) % len(s.greens)])
                    else:
                        want.append(cur[i])
            elif controller == "max_pressure":
                pr = sig.pressures(sim.counts(sig.lane_ids))
                want = [
                    s.greens[int(np.argmax(p + 1e-6 * (np.array(s.greens) == cur[i])))]
                    for i, (s, p) in enumerate(zip(net.signals, pr, strict=True))
                ]
            else:
                raise ScenarioError(
                    f"controllers: {controller!r} does not run on an imported CityFlow network; "
                    "allowed: fixed_time, max_pressure"
                )
            switch = [w != c for w, c in zip(want, cur, strict=True)]
            if any(switch) and yellow_s > 0:
                for i in np.flatnonzero(switch):
                    sim.show(int(i), None, cur[i])
                sim.advance(yellow_s)
            for i in np.flatnonzero(switch):
                sim.show(int(i), want[i], None)
                elapsed[i] = 0.0
            sim.advance(decision_s - (yellow_s if any(switch) else 0))
            elapsed = [e + decision_s for e in elapsed]
            cur = want
        scheduled = sum(1 for _, t, _, _ in net.trips if t < horizon_s)
        done, total = sim.finished()
        return {
            "avg_travel_time_s": total / max(done, 1),
            "throughput_veh": float(done),
            "finished_share": done / max(scheduled, 1),
            "trips_scheduled_veh": float(scheduled),
        }
    finally:
        sim.close()


class _CityFlowRun:
    """CityFlow on the user's roadnet and flow files (copied into ``folder``)."""

    def __init__(self, net: ImportedNetwork, folder: Path, seed: int) -> None:
        import importlib

        cityflow = importlib.import_module("cityflow")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(net.roadnet_path, folder / "roadnet.json")
        shutil.copyfile(net.flow_path, folder / "flow.json")
        cfg = {
            "interval": 1.0,
            "seed": int(seed),
            "dir": str(folder.resolve()) + "/",
            "roadnetFile": "roadnet.json",
            "flowFile": "flow.json",
            "rlTrafficLight": True,
            "laneChange": False,
            "saveReplay": False,
            "roadnetLogFile": "",
            "replayLogFile": "",
        }
        path = write_json(folder / "cityflow_config.json", cfg)  # both files read already
        self.eng = cityflow.Engine(str(path), thread_num=1)
        self.net = net
        self.t = 0
        self.depart: dict[str, int] = {}
        self.done = 0
        self.total = 0.0

    def show(self, i: int, green: int | None, leaving: int | None) -> None:
        s = self.net.signals[i]
        phase = green if green is not None else (s.change if s.change is not None else leaving)
        self.eng.set_tl_phase(s.id, int(phase))

    def advance(self, seconds: int) -> None:
        for _ in range(int(seconds)):
            before = set(self.depart)
            self.eng.next_step()
            self.t += 1
            now = set(self.eng.get_vehicles(include_waiting=True))
            for v in now - before:
                self.depart[v] = self.t - 1
            for v in before - now:
                self.done += 1
                self.total += self.t - self.depart.pop(v)

    def counts(self, lane_ids: list[str]) -> np.ndarray:
        c = self.eng.get_lane_vehicle_count()
        return np.array([c.get(lid, 0) for lid in lane_ids], np.float64)

    def finished(self) -> tuple[int, float]:
        return self.done, self.total

    def close(self) -> None:
        self.eng = None


class _SumoRun:
    """SUMO (libsumo) on the converted network and routes.  libsumo runs one simulation per
    process: nothing else in the process may hold a SUMO simulation meanwhile (``simulate``
    runs one at a time)."""

    def __init__(self, net: ImportedNetwork, folder: Path, seed: int) -> None:
        import importlib

        net_xml, routes = write_sumo_files(net, folder)
        self.map = sumo_link_map(net, net_xml)
        sumo_home()  # sets SUMO_HOME for libsumo
        self.ls = importlib.import_module("libsumo")
        self.ls.start(
            [
                "sumo",
                *("-n", str(net_xml), "-r", str(routes), "--seed", str(int(seed))),
                *("--no-step-log", "true", "--no-warnings", "true", "--step-length", "1"),
                *("--time-to-teleport", "300"),
            ]
        )
        self.net = net
        self.t = 0
        self.depart = {vid: t for vid, t, _, _ in net.trips}
        self.done = 0
        self.total = 0.0
        self.shown: dict[int, str] = {}

    def _state(self, i: int, phase: int) -> str:
        s = self.net.signals[i]
        green = set(s.phases[phase])
        return "".join(
            ("g" if s.links[k][2] == "turn_left" else "G") if k in green else "r"
            for k in self.map[s.id]
        )

    def show(self, i: int, green: int | None, leaving: int | None) -> None:
        s = self.net.signals[i]
        if green is not None:
            state = self._state(i, green)
        else:  # links losing green show yellow; those of the roadnet's change phase keep theirs
            keep = set(s.phases[s.change]) if s.change is not None else set()
            state = "".join(
                c if k in keep else ("y" if c in "Gg" else "r")
                for c, k in zip(self.shown[i], self.map[s.id], strict=True)
            )
        self.shown[i] = state
        self.ls.trafficlight.setRedYellowGreenState(s.id, state)

    def advance(self, seconds: int) -> None:
        for _ in range(int(seconds)):
            self.ls.simulationStep()
            self.t += 1
            for vid in self.ls.simulation.getArrivedIDList():
                self.done += 1
                self.total += self.t - self.depart[vid]

    def counts(self, lane_ids: list[str]) -> np.ndarray:
        out = np.zeros(len(lane_ids))
        for j, lid in enumerate(lane_ids):
            road, k = lid.rsplit("_", 1)
            n = self.net.roads[road][3]
            out[j] = self.ls.lane.getLastStepVehicleNumber(f"{road}_{n - 1 - int(k)}")
        return out

    def finished(self) -> tuple[int, float]:
        return self.done, self.total

    def close(self) -> None:
        self.ls.close()
