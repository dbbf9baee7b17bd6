"""Grid road network and seeded demand, and the SUMO files for them.

Layers:

* ``Grid``: the abstract rows × cols grid (intersections, roads, headings), named exactly as SUMO's
  ``netgenerate --grid`` names it: intersection ``<column letter><row number>`` (``A0`` is the
  south-west corner), boundary nodes ``left<r>``, ``right<r>``, ``bottom<c>``, ``top<c>``, road
  ``<from><to>`` (``left0A0``, ``A0B0``).
* ``generate_demand``: Poisson arrivals with a piecewise-constant total rate
  (``demand.profile`` [veh/s]) at uniformly chosen boundary entry roads; each vehicle's route
  is drawn turn by turn with ``demand.turning`` shares until it leaves the grid.  Seeded.
* Conventions both engines' files follow: ``turn_of`` (movement names), ``turn_lanes`` (the
  lanes each movement leaves from), ``PhaseDesign`` (the movements each green phase serves,
  protected or permitted, and the lane use; ``TWO_PHASE`` the default's), ``CAR`` (the vehicle
  type).
* SUMO writers: ``write_sumo_net`` (``netgenerate`` from the ``eclipse-sumo`` wheel),
  ``write_sumo_routes`` (SUMO XML).  CityFlow's files are written from the same ``Grid`` and
  conventions by ``gridmarl.traffic.cityflow_files``.
* ``read_signal_layout``: parses a SUMO network into the ``SignalLayout`` the env and the
  controllers use (incoming lanes per intersection, movements, phase states), on both engines.

Phases (both engines): the scenario's ``PhaseDesign`` (``traffic.phases``, ``PHASE_DESIGNS``).
The default has two green phases, ``0`` = north-south approaches, ``1`` = east-west
approaches; straight and right turns have priority (``G``), left turns are permissive and yield
(``g``).  The 4- and 8-phase designs give left turns an exclusive lane and phases of their own
(protected), right turns go in every phase.  A yellow (``y`` for every link that loses green),
then an optional all red, is inserted on a change; in CityFlow the change interval is the
all-red light phase 0.  ``write_sumo_net`` (netgenerate) builds the 2-phase network,
``write_sumo_plain_net`` (plain XML + netconvert) the networks with an exclusive left lane.

One file because every layer shares the ``Grid`` names and the conventions above: the SUMO
network, the layout reader and the CityFlow files must agree on them exactly.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gridmarl.core.errors import ScenarioError
from gridmarl.core.io import atomic_write
from gridmarl.traffic.config import DemandConfig, GridConfig
from gridmarl.traffic.install import sumo_binary

EAST, NORTH, WEST, SOUTH = 0, 1, 2, 3  # heading of travel, counter-clockwise
_DELTA = {EAST: (1, 0), NORTH: (0, 1), WEST: (-1, 0), SOUTH: (0, -1)}
APPROACH_ORDER = (SOUTH, WEST, NORTH, EAST)  # headings of the N, E, S, W approaches
N_PHASES = 2  # green phases of the default design: 0 = north-south, 1 = east-west
MAX_ROUTE_FACTOR = 4  # a route crossing more than 4·(rows+cols) intersections goes straight


# --------------------------------------------------------------------------------------------
# The abstract grid
# --------------------------------------------------------------------------------------------
def _col_name(c: int) -> str:
    return chr(ord("A") + c)


@dataclass(frozen=True)
class Road:
    """A directed road of the grid.

    Attributes:
        id: road (SUMO edge / CityFlow road) id.
        src, dst: node ids at its start and end.
        heading: direction of travel (EAST, NORTH, WEST, SOUTH).
        entry: starts at a boundary node (vehicles enter the grid here).
        exit: ends at a boundary node (vehicles leave the grid here).
    """

    id: str
    src: str
    dst: str
    heading: int
    entry: bool = False
    exit: bool = False


@dataclass
class Grid:
    """A rows × cols grid with a boundary node beyond every edge intersection.

    Intersection ``i = r * cols + c`` sits at ``(c, r)``, x = (c + 1)·length, y = (r + 1)·length
    [m] (boundary nodes one road length further out).
    """

    cfg: GridConfig
    nodes: dict[str, tuple[float, float]] = field(default_factory=dict)
    intersections: list[str] = field(default_factory=list)
    roads: dict[str, Road] = field(default_factory=dict)

    @classmethod
    def build(cls, cfg: GridConfig) -> Grid:
        """Lay out the nodes and roads of ``cfg`` with netgenerate's names."""
        g = cls(cfg)
        length = cfg.road_length_m
        for r in range(cfg.rows):
            for c in range(cfg.cols):
                nid = g.node_at(c, r)
                g.intersections.append(nid)
                g.nodes[nid] = ((c + 1) * length, (r + 1) * length)
        for r in range(cfg.rows):
            g.nodes[f"left{r}"] = (0.0, (r + 1) * length)
            g.nodes[f"right{r}"] = ((cfg.cols + 1) * length, (r + 1) * length)
        for c in range(cfg.cols):
            g.nodes[f"bottom{c}"] = ((c + 1) * length, 0.0)
            g.nodes[f"top{c}"] = ((c + 1) * length, (cfg.rows + 1) * length)
        for r in range(cfg.rows):
            for c in range(cfg.cols):
                here = g.node_at(c, r)
                for h, (dc, dr) in _DELTA.items():
                    there = g.node_at(c + dc, r + dr)
                    boundary = there not in g.intersections
                    g._add(Road(here + there, here, there, h, exit=boundary))
                    if boundary:
                        g._add(Road(there + here, there, here, (h + 2) % 4, entry=True))
        return g

    def _add(self, road: Road) -> None:
        self.roads[road.id] = road

    def node_at(self, c: int, r: int) -> str:
        """Node id at grid position (column c, row r); boundary names outside the grid."""
        if c < 0:
            return f"left{r}"
        if c >= self.cfg.cols:
            return f"right{r}"
        if r < 0:
            return f"bottom{c}"
        if r >= self.cfg.rows:
            return f"top{c}"
        return f"{_col_name(c)}{r}"

    def position(self, node: str) -> tuple[int, int]:
        """(column, row) of an intersection."""
        i = self.intersections.index(node)
        return i % self.cfg.cols, i // self.cfg.cols

    @property
    def entry_roads(self) -> list[str]:
        """Roads on which vehicles enter, in a fixed order."""
        return sorted(r.id for r in self.roads.values() if r.entry)

    def incoming(self, node: str) -> list[Road]:
        """The four roads into ``node``, ordered by approach N, E, S, W."""
        ins = {r.heading: r for r in self.roads.values() if r.dst == node}
        return [ins[h] for h in APPROACH_ORDER]

    def road_between(self, a: str, b: str) -> Road:
        """The road from node ``a`` to node ``b``."""
        return self.roads[a + b]

    def neighbors(self) -> np.ndarray:
        """``[N, 4]`` int index of the adjacent intersection to the N, E, S, W; -1 if none."""
        cols, rows = self.cfg.cols, self.cfg.rows
        out = -np.ones((rows * cols, 4), dtype=np.int64)
        for i in range(rows * cols):
            c, r = i % cols, i // cols
            for k, (dc, dr) in enumerate(((0, 1), (1, 0), (0, -1), (-1, 0))):
                cc, rr = c + dc, r + dr
                if 0 <= cc < cols and 0 <= rr < rows:
                    out[i, k] = rr * cols + cc
        return out

    def boundary_groups(self) -> np.ndarray:
        """``[N]`` group id: 0 = boundary intersection (an approach comes from outside the grid,
        where the demand enters and leaves), 1 = interior (every approach comes from another
        signal); a grid without interior intersections is all 0."""
        cols, rows = self.cfg.cols, self.cfg.rows
        c, r = np.arange(rows * cols) % cols, np.arange(rows * cols) // cols
        interior = (c > 0) & (c < cols - 1) & (r > 0) & (r < rows - 1)
        return interior.astype(np.int64)

    def groups(self, block: int = 3) -> np.ndarray:
        """``[N]`` group id: the grid is cut into ``block`` × ``block`` blocks (edge blocks are
        smaller), numbered row-major from the south-west corner."""
        cols = self.cfg.cols
        per_row = -(-cols // block)
        return np.array(
            [
                (i // cols) // block * per_row + (i % cols) // block
                for i in range(self.cfg.rows * cols)
            ],
            dtype=np.int64,
        )

    def free_flow_time_s(self, route: tuple[str, ...]) -> float:
        """Travel time of ``route`` at the speed limit with no stops [s]."""
        return len(route) * self.cfg.road_length_m / self.cfg.speed_limit_m_per_s


# --------------------------------------------------------------------------------------------
# Demand
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Vehicle:
    """One trip: scheduled departure [s] (whole seconds) and the roads it follows."""

    id: str
    depart_s: float
    route: tuple[str, ...]


def _route_from(
    grid: Grid, entry: Road, rng: np.random.Generator, shares: tuple[float, float, float]
) -> tuple[str, ...]:
    route = [entry.id]
    node, heading = entry.dst, entry.heading
    cap = MAX_ROUTE_FACTOR * (grid.cfg.rows + grid.cfg.cols)
    crossed = 0
    while node in grid.nodes and node in set(grid.intersections):
        turn = int(rng.choice(3, p=shares)) if crossed < cap else 1  # 0 left, 1 straight, 2 right
        heading = (heading + (1, 0, -1)[turn]) % 4
        c, r = grid.position(node)
        dc, dr = _DELTA[heading]
        nxt = grid.node_at(c + dc, r + dr)
        route.append(node + nxt)
        node = nxt
        crossed += 1
    return tuple(route)


def generate_demand(grid: Grid, demand: DemandConfig, horizon_s: float, seed: int) -> list[Vehicle]:
    """Seeded trips departing in ``[0, horizon_s)``, sorted by departure time.

    Per profile piece of length D [s] and rate λ [veh/s]: K ~ Poisson(λ·D) arrivals at uniform
    times within the piece, rounded down to whole seconds, each at an entry road drawn with
    probability proportional to the weight of its side (``side_weights``).
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7AFF1C]))
    entries = [grid.roads[r] for r in grid.entry_roads]
    side_of = {EAST: "west", NORTH: "south", WEST: "east", SOUTH: "north"}  # heading -> side
    shares = demand.turning.probabilities()
    trips: list[tuple[float, int, tuple[str, ...]]] = []
    t0 = 0.0
    for piece in demand.profile:
        t1 = min(t0 + piece.duration_s, horizon_s)
        if t1 > t0:
            sw = piece.side_weights or demand.side_weights
            w = np.array([getattr(sw, side_of[e.heading]) for e in entries], np.float64)
            k = int(rng.poisson(piece.rate_veh_per_s * (t1 - t0)))
            times = np.floor(rng.uniform(t0, t1, size=k))
            for t in np.sort(times):
                e = entries[int(rng.choice(len(entries), p=w / w.sum()))]
                trips.append((float(t), len(trips), _route_from(grid, e, rng, shares)))
        t0 += piece.duration_s
    trips.sort(key=lambda x: (x[0], x[1]))
    return [Vehicle(f"v{k}", t, route) for k, (t, _, route) in enumerate(trips)]


# --------------------------------------------------------------------------------------------
# Conventions both engines' files follow (CityFlow's files: gridmarl.traffic.cityflow_files)
# --------------------------------------------------------------------------------------------
def turn_of(a: Road, b: Road) -> str:
    """CityFlow's name of the movement from road ``a`` onto road ``b``: ``go_straight``,
    ``turn_left`` or ``turn_right``."""
    d = (b.heading - a.heading) % 4
    return {0: "go_straight", 1: "turn_left", 3: "turn_right"}[d]


def turn_lanes(turn: str, lanes: int, exclusive_left: bool = False) -> tuple[int, ...]:
    """SUMO lane indices (0 = rightmost) of an approach from which ``turn`` may leave.

    Shared left lane (``exclusive_left=False``, as ``netgenerate --grid`` connects them): right
    turns from the rightmost lane, left turns from the leftmost, straight from every lane (one
    lane: all three from it).  Exclusive left lane (the protected-left designs, ``lanes >= 2``):
    the leftmost lane carries left turns only, straight leaves from every other lane, right
    turns from the rightmost.
    """
    if turn == "turn_right":
        return (0,)
    if turn == "turn_left":
        return (lanes - 1,)
    if exclusive_left:
        if lanes < 2:
            raise ValueError("an exclusive left-turn lane needs at least 2 lanes")
        return tuple(range(lanes - 1))
    return tuple(range(lanes))


Movement = tuple[int, str]  # (heading of the incoming road, turn)
_NS, _EW = (SOUTH, NORTH), (WEST, EAST)  # headings of the north-south / east-west approaches


@dataclass(frozen=True)
class PhaseDesign:
    """An intersection's green phases, the same at every intersection and on both engines.

    Attributes:
        name: the scenario's value of ``traffic.phases`` (``"2"``, ``"4"``, ``"8"``).
        protected: per green phase, the movements with priority (SUMO ``G``).
        permitted: per green phase, the movements green but yielding to every conflicting
            stream (SUMO ``g``; CityFlow: turns yield to straight traffic by itself).
        exclusive_left: the leftmost lane carries left turns only (``turn_lanes``).
        fixed_cycle: the phases a fixed-time plan shows, in order (all of them for 2 and 4
            phases; the four dual phases of the 8-phase design, whose single-approach phases
            serve nothing the dual ones do not).
    """

    name: str
    protected: tuple[frozenset[Movement], ...]
    permitted: tuple[frozenset[Movement], ...]
    exclusive_left: bool
    fixed_cycle: tuple[int, ...]

    @property
    def n_phases(self) -> int:
        """Green phases P [-]."""
        return len(self.protected)

    @property
    def greens(self) -> tuple[frozenset[Movement], ...]:
        """Per phase, every movement with green (protected or permitted)."""
        return tuple(a | b for a, b in zip(self.protected, self.permitted, strict=True))

    def signal(self, phase: int, heading: int, turn: str) -> str:
        """SUMO signal of movement (``heading``, ``turn``) in green ``phase``: ``G``, ``g`` or
        ``r``."""
        if (heading, turn) in self.protected[phase]:
            return "G"
        return "g" if (heading, turn) in self.permitted[phase] else "r"

    def turn_lanes(self, turn: str, lanes: int) -> tuple[int, ...]:
        """``turn_lanes`` under this design's lane use."""
        return turn_lanes(turn, lanes, self.exclusive_left)


def _moves(heads: tuple[int, ...], turns: tuple[str, ...]) -> frozenset[Movement]:
    return frozenset((h, t) for h in heads for t in turns)


_ALL_RIGHTS = _moves(_NS + _EW, ("turn_right",))


def _protected_left_design(
    name: str, phases: list[frozenset[Movement]], fixed_cycle: tuple[int, ...]
) -> PhaseDesign:
    """Protected phases as given; right turns from an approach are protected where its straight
    movement is, and permitted in every other phase (right turns are allowed at all times)."""
    protected = tuple(
        ph | frozenset((h, "turn_right") for h, t in ph if t == "go_straight") for ph in phases
    )
    permitted = tuple(_ALL_RIGHTS - ph for ph in protected)
    return PhaseDesign(name, protected, permitted, True, fixed_cycle)


#: 2 phases (0 = north-south approaches, 1 = east-west): straight and right protected, left
#: permissive, one shared left/straight lane (netgenerate's lane use).
TWO_PHASE_DESIGN = PhaseDesign(
    "2",
    (_moves(_NS, ("go_straight", "turn_right")), _moves(_EW, ("go_straight", "turn_right"))),
    (_moves(_NS, ("turn_left",)), _moves(_EW, ("turn_left",))),
    False,
    (0, 1),
)
#: 4 phases, protected left turns on an exclusive left lane, right turns always allowed:
#: 0 = north-south straight, 1 = east-west straight, 2 = north-south left, 3 = east-west left
#: (the design of the CityFlow benchmarks and of LToS's setting, Wei et al. 2019).  A fixed-time
#: plan leads with the lefts of each axis: 2, 0, 3, 1.
FOUR_PHASE_DESIGN = _protected_left_design(
    "4",
    [
        _moves(_NS, ("go_straight",)),
        _moves(_EW, ("go_straight",)),
        _moves(_NS, ("turn_left",)),
        _moves(_EW, ("turn_left",)),
    ],
    (2, 0, 3, 1),
)
#: 8 phases: the four of ``FOUR_PHASE_DESIGN`` and one per approach (its straight and left
#: turn together): 4 = north approach, 5 = south, 6 = east, 7 = west (NEMA's eight phase pairs).
EIGHT_PHASE_DESIGN = _protected_left_design(
    "8",
    [
        _moves(_NS, ("go_straight",)),
        _moves(_EW, ("go_straight",)),
        _moves(_NS, ("turn_left",)),
        _moves(_EW, ("turn_left",)),
        _moves((SOUTH,), ("go_straight", "turn_left")),
        _moves((NORTH,), ("go_straight", "turn_left")),
        _moves((WEST,), ("go_straight", "turn_left")),
        _moves((EAST,), ("go_straight", "turn_left")),
    ],
    (2, 0, 3, 1),
)
PHASE_DESIGNS: dict[str, PhaseDesign] = {
    d.name: d for d in (TWO_PHASE_DESIGN, FOUR_PHASE_DESIGN, EIGHT_PHASE_DESIGN)
}

#: The green phases of the 2-phase design, as the set of movements each one serves: (heading of
#: the incoming road, turn).  Phase 0 serves the north and south approaches (vehicles heading
#: south and north), phase 1 the east and west approaches; every turn of an approach shares its
#: phase (left turns permissive).  ``read_signal_layout`` builds the same phases for SUMO.
TWO_PHASE: tuple[frozenset[tuple[int, str]], ...] = TWO_PHASE_DESIGN.greens


def phase_design(name: str | int) -> PhaseDesign:
    """The design called ``name`` (``traffic.phases``: 2, 4 or 8)."""
    key = str(name)
    if key not in PHASE_DESIGNS:
        raise ScenarioError(
            f"traffic.phases: unknown phase design {name!r}; allowed: {', '.join(PHASE_DESIGNS)}"
        )
    return PHASE_DESIGNS[key]


@dataclass(frozen=True)
class VehicleType:
    """The one vehicle type of the demand, in SUMO's terms (``vType``, Krauss car following).

    Attributes:
        accel_m_per_s2: maximum acceleration [m/s²].
        decel_m_per_s2: comfortable (and, for Krauss, safe-speed) deceleration [m/s²].
        length_m: vehicle length [m].
        min_gap_m: gap to the leader when stopped [m].
        sigma: SUMO's driver imperfection [-] (CityFlow has none).
        tau_s: desired time headway [s] (SUMO's default; not written to the route file).
        width_m: vehicle width [m] (CityFlow only; SUMO's default is 1.8 m).
    """

    accel_m_per_s2: float = 2.6
    decel_m_per_s2: float = 4.5
    length_m: float = 5.0
    min_gap_m: float = 2.5
    sigma: float = 0.5
    tau_s: float = 1.0
    width_m: float = 2.0


CAR = VehicleType()


# --------------------------------------------------------------------------------------------
# SUMO writers
# --------------------------------------------------------------------------------------------
def write_sumo_net(cfg: GridConfig, path: str | Path) -> Path:
    """Run ``netgenerate --grid`` for ``cfg`` and write the network to ``path``.

    Raises:
        ScenarioError: when ``netgenerate`` is missing or fails.
    """
    path = Path(path)
    exe = sumo_binary("netgenerate")
    length = f"{cfg.road_length_m:.2f}"
    tls = ",".join(Grid.build(cfg).intersections)  # --tls.guess skips thin grids (1 x n)
    cmd = [
        str(exe),
        "--grid",
        "--grid.x-number",
        str(cfg.cols),
        "--grid.y-number",
        str(cfg.rows),
        "--grid.length",
        length,
        "--grid.attach-length",
        length,
        "--default.lanenumber",
        str(cfg.lanes),
        "--default.speed",
        f"{cfg.speed_limit_m_per_s}",
        "--tls.set",
        tls,
        "--no-turnarounds",
        "true",
        "--seed",
        "0",
        "--xml-validation",
        "never",
        "-o",
        str(path),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not path.exists():
        raise ScenarioError(f"netgenerate failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return path


def write_sumo_plain_net(cfg: GridConfig, design: PhaseDesign, path: str | Path) -> Path:
    """The grid of ``cfg`` as SUMO plain XML (nodes, edges, connections with the lane use of
    ``design``) built by ``netconvert`` into the network ``path``.

    For designs with an exclusive left lane (``netgenerate`` connects left turns and straight
    movements from the same inner lane).  Names, node positions and lane counts are
    ``netgenerate --grid``'s; straight movements keep their lane index, a left turn reaches the
    inner lane and a right turn the outer lane of its end road.

    Raises:
        ScenarioError: when ``netconvert`` is missing or fails.
    """
    path = Path(path)
    grid = Grid.build(cfg)
    stem = path.parent / path.name.removesuffix(".net.xml")
    nodes = ET.Element("nodes")
    for nid, (x, y) in sorted(grid.nodes.items()):
        kind = "traffic_light" if nid in grid.intersections else "dead_end"
        ET.SubElement(nodes, "node", id=nid, x=f"{x:.2f}", y=f"{y:.2f}", type=kind)
    edges = ET.Element("edges")
    for road in sorted(grid.roads.values(), key=lambda r: r.id):
        ET.SubElement(
            edges,
            "edge",
            id=road.id,
            **{"from": road.src, "to": road.dst},
            numLanes=str(cfg.lanes),
            speed=f"{cfg.speed_limit_m_per_s}",
            priority="1",
        )
    conns = ET.Element("connections")
    for nid in grid.intersections:
        for a in grid.incoming(nid):
            for b in (r for r in grid.roads.values() if r.src == nid):
                if (b.heading - a.heading) % 4 == 2:
                    continue  # no U-turns
                kind = turn_of(a, b)
                for lane in design.turn_lanes(kind, cfg.lanes):
                    to_lane = {"turn_left": cfg.lanes - 1, "turn_right": 0}.get(kind, lane)
                    ET.SubElement(
                        conns,
                        "connection",
                        **{"from": a.id, "to": b.id},
                        fromLane=str(lane),
                        toLane=str(to_lane),
                    )
    files = {}
    for tag, root in (("nod", nodes), ("edg", edges), ("con", conns)):
        tree = ET.ElementTree(root)
        ET.indent(tree)
        files[tag] = Path(f"{stem}.{tag}.xml")
        tree.write(files[tag], encoding="utf-8", xml_declaration=True)
    cmd = [
        str(sumo_binary("netconvert")),
        "--node-files",
        str(files["nod"]),
        "--edge-files",
        str(files["edg"]),
        "--connection-files",
        str(files["con"]),
        "--no-turnarounds",
        "true",
        "--seed",
        "0",
        "--xml-validation",
        "never",
        "-o",
        str(path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not path.exists():
        raise ScenarioError(f"netconvert failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return path


def write_sumo_routes(vehicles: list[Vehicle], grid: Grid, path: str | Path) -> Path:
    """SUMO route file: one vehicle type (``CAR``), one ``<vehicle>`` with an explicit route per
    trip."""
    root = ET.Element("routes")
    ET.SubElement(
        root,
        "vType",
        id="car",
        accel=f"{CAR.accel_m_per_s2:g}",
        decel=f"{CAR.decel_m_per_s2:g}",
        length=f"{CAR.length_m:g}",
        minGap=f"{CAR.min_gap_m:g}",
        maxSpeed=f"{grid.cfg.speed_limit_m_per_s}",
        sigma=f"{CAR.sigma:g}",
    )
    for v in vehicles:
        el = ET.SubElement(
            root,
            "vehicle",
            id=v.id,
            type="car",
            depart=f"{v.depart_s:.2f}",
            departLane="best",
            departSpeed="max",
        )
        ET.SubElement(el, "route", edges=" ".join(v.route))
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return atomic_write(path, lambda p: tree.write(p, encoding="utf-8", xml_declaration=True))


# --------------------------------------------------------------------------------------------
# Signal layout (what the env and the controllers need to know about the network)
# --------------------------------------------------------------------------------------------
@dataclass
class SignalLayout:
    """Incoming lanes, movements and phase states of every intersection.

    Attributes:
        grid: the abstract grid.
        tls: intersection (= traffic light) ids, agent order.
        lanes: ``[N][L]`` incoming lanes as (road id, SUMO lane index), approach order N, E, S,
            W, lane 0 (rightmost) first; ``L = 4 · lanes``.
        n_phases: ``[N]`` green phases per intersection.
        green_states: ``[N][P]`` SUMO state string of each green phase.
        link_lane: ``[N][links]`` slot (index into ``lanes[i]``) of each SUMO link's from-lane.
        movements: ``[N][M]`` (slot of the incoming lane, outgoing road id) pairs.
        phase_movements: ``[N, P, M]`` bool, movement green (G or g) in the phase.
        design: the phase design the green states follow.
    """

    grid: Grid
    tls: list[str]
    lanes: list[list[tuple[str, int]]]
    n_phases: list[int]
    green_states: list[list[str]]
    link_lane: list[list[int]]
    movements: list[list[tuple[int, str]]]
    phase_movements: np.ndarray
    design: PhaseDesign = TWO_PHASE_DESIGN

    @property
    def max_lanes(self) -> int:
        """``L``: incoming lanes of the widest intersection."""
        return max(len(x) for x in self.lanes)

    @property
    def max_phases(self) -> int:
        """``P``: green phases of the intersection with most."""
        return max(self.n_phases)

    def yellow_state(self, i: int, frm: int, to: int) -> str:
        """SUMO state shown while intersection ``i`` changes from green ``frm`` to ``to``:
        links green in both keep their state, links losing green turn yellow, others red."""
        a, b = self.green_states[i][frm], self.green_states[i][to]
        return "".join(
            x if (x in "Gg" and y in "Gg") else ("y" if x in "Gg" else "r")
            for x, y in zip(a, b, strict=True)
        )

    def all_red_state(self, i: int) -> str:
        """SUMO state of intersection ``i`` during the all-red clearance: every link red."""
        return "r" * len(self.green_states[i][0])

    def sumo_lane_ids(self) -> list[list[str]]:
        """``[N][L]`` SUMO lane ids of the incoming lanes."""
        return [[f"{road}_{k}" for road, k in row] for row in self.lanes]

    def cityflow_lane_ids(self) -> list[list[str]]:
        """``[N][L]`` CityFlow lane ids (``<road>_<k>``, k counted from the inner lane)."""
        n = self.grid.cfg.lanes
        return [[f"{road}_{n - 1 - k}" for road, k in row] for row in self.lanes]


def read_signal_layout(
    net_path: str | Path, grid: Grid, design: PhaseDesign = TWO_PHASE_DESIGN
) -> SignalLayout:
    """Parse a SUMO network written for ``grid`` into its ``SignalLayout``, green states and
    phase movements from ``design`` (each link's movement from its roads, ``turn_of``).

    Raises:
        ScenarioError: when the file is missing, not valid XML, or does not match the grid
            (missing traffic lights, roads or connections).
    """
    net_path = Path(net_path)
    if not net_path.exists():
        raise ScenarioError(f"{net_path}: network file not found")
    try:
        root = ET.parse(net_path).getroot()
    except ET.ParseError as exc:
        raise ScenarioError(f"{net_path}: broken SUMO network file (XML error: {exc})") from None
    if root.tag != "net":
        raise ScenarioError(f"{net_path}: not a SUMO network (top element <{root.tag}>)")
    tl_ids = {el.get("id") for el in root.iter("tlLogic")}
    want = set(grid.intersections)
    if tl_ids != want:
        missing = sorted(want - tl_ids)[:5]
        raise ScenarioError(
            f"{net_path}: broken network: expected {len(want)} traffic lights "
            f"for a {grid.cfg.rows} x {grid.cfg.cols} grid, found {len(tl_ids)}"
            + (f" (missing {missing})" if missing else "")
        )
    edges = {el.get("id") for el in root.iter("edge") if el.get("function") != "internal"}
    if not set(grid.roads) <= edges:
        raise ScenarioError(
            f"{net_path}: broken network: roads {sorted(set(grid.roads) - edges)[:5]} are missing"
        )
    conns: dict[str, list[tuple[int, str, int, str, str]]] = {t: [] for t in grid.intersections}
    for el in root.iter("connection"):
        tl = el.get("tl")
        if tl in conns:
            conns[tl].append(
                (
                    int(el.get("linkIndex")),
                    el.get("from"),
                    int(el.get("fromLane")),
                    el.get("to"),
                    el.get("dir"),
                )
            )
    lanes, link_lane, greens, movements, phases_of = [], [], [], [], []
    mov_masks = []
    for nid in grid.intersections:
        rows = sorted(conns[nid])
        if not rows or [r[0] for r in rows] != list(range(len(rows))):
            raise ScenarioError(
                f"{net_path}: broken network: traffic light {nid} has missing or "
                "non-contiguous link indices"
            )
        slots = [(road.id, k) for road in grid.incoming(nid) for k in range(grid.cfg.lanes)]
        slot_of = {s: j for j, s in enumerate(slots)}
        n_ph = design.n_phases
        ll, states, movs = [], [""] * n_ph, []
        link_move: list[int] = []
        for _, frm, lane, to, _d in rows:
            if (frm, lane) not in slot_of or to not in grid.roads:
                raise ScenarioError(
                    f"{net_path}: broken network: link from {frm}_{lane} at {nid} "
                    "is not an incoming lane of the grid"
                )
            ll.append(slot_of[(frm, lane)])
            a = grid.roads[frm]
            turn = turn_of(a, grid.roads[to])
            for p in range(n_ph):
                states[p] += design.signal(p, a.heading, turn)
            if (slot_of[(frm, lane)], to) not in movs:
                movs.append((slot_of[(frm, lane)], to))
            link_move.append(movs.index((slot_of[(frm, lane)], to)))
        mask = np.zeros((n_ph, len(movs)), dtype=bool)
        for p in range(n_ph):
            for k, m in enumerate(link_move):
                mask[p, m] |= states[p][k] in "Gg"
        lanes.append(slots)
        link_lane.append(ll)
        greens.append(states)
        movements.append(movs)
        phases_of.append(n_ph)
        mov_masks.append(mask)
    m_max = max(m.shape[1] for m in mov_masks)
    pm = np.zeros((len(grid.intersections), design.n_phases, m_max), dtype=bool)
    for i, m in enumerate(mov_masks):
        pm[i, :, : m.shape[1]] = m
    return SignalLayout(
        grid, list(grid.intersections), lanes, phases_of, greens, link_lane, movements, pm, design
    )


def build_network(
    cfg: GridConfig,
    folder: str | Path,
    net_file: str | Path | None = None,
    design: PhaseDesign = TWO_PHASE_DESIGN,
) -> tuple[Grid, Path, SignalLayout]:
    """Write (or copy ``net_file``) the SUMO network into ``folder`` and read its layout under
    ``design`` (``netgenerate`` for a shared left lane, plain XML + ``netconvert`` for an
    exclusive one)."""
    grid = Grid.build(cfg)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    net = folder / "grid.net.xml"
    if net_file is not None:
        if not Path(net_file).exists():
            raise ScenarioError(f"{net_file}: network file not found")
        shutil.copyfile(net_file, net)
    elif design.exclusive_left:
        write_sumo_plain_net(cfg, design, net)
    else:
        write_sumo_net(cfg, net)
    return grid, net, read_signal_layout(net, grid, design)


def demand_json(vehicles: list[Vehicle]) -> str:
    """Compact JSON of the trips (for manifests and debugging)."""
    return json.dumps([[v.id, v.depart_s, list(v.route)] for v in vehicles])
