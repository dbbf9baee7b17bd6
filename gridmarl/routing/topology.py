"""Router networks: Internet Topology Zoo GraphML files and synthetic generators.

A :class:`Topology` is an undirected connected graph of ``N`` routers stored as ``L = 2E``
directed links (each undirected edge gives two links, one per direction).

Link delay [steps] = max(1, ceil(great-circle distance [km] / ``km_per_step`` [km/step])),
with the great-circle distance from the haversine formula on a sphere of radius
``EARTH_RADIUS_KM``.  Generated topologies place routers in a square of ``side_km`` [km] and
use the plane (Euclidean) distance.  Every link carries at most one packet per step: each router
forwards one packet (its head of line) per step, so no link ever receives more.

Gaps in real files, and what the reader does about each (``ReadOptions``):

=======================================  ===================================================
gap                                      handling
=======================================  ===================================================
file missing, not GraphML, < 2 nodes     ``ScenarioError`` naming the file
node without ``Latitude``/``Longitude``  ``missing_coordinates="neighbour_mean"`` (default):
                                         placed at the mean position of its neighbours that
                                         have coordinates (repeated until every node is
                                         placed; a note is recorded); ``"error"``: refused
                                         with the node ids and labels
link without ``LinkSpeed``               ignored: speeds are not used (capacity is one packet
                                         per step per link for every link)
node with ``Internal=0`` (external)      ``external_nodes="keep"`` (default): an ordinary
                                         router; ``"drop"``: removed with its links
several connected components             ``components="error"`` (default): refused (packets
                                         between components could never be delivered);
                                         ``"largest"``: keep the largest component
self-loops, parallel edges, directed     self-loops dropped, parallel edges merged, directed
                                         files read as undirected
=======================================  ===================================================

The Topology Zoo: S. Knight, H. X. Nguyen, N. Falkner, R. Bowden, M. Roughan, "The Internet
Topology Zoo", IEEE JSAC 29(9):1765-1775, 2011.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from xml.etree.ElementTree import ParseError

import networkx as nx
import numpy as np

from gridmarl.core.errors import ScenarioError

#: longest link delay a topology may have [steps]: the env keeps a delivery schedule of
#: episode + longest delay steps per env (the shipped networks: 1 to 6 steps)
MAX_DELAY_STEPS = 1 << 20

EARTH_RADIUS_KM = 6371.0088  # [km] mean Earth radius (IUGG)
CORE_MIN_DEGREE = 3  # [links] a router with at least this many links is a core router
DEFAULT_KM_PER_STEP = 500.0  # [km/step] propagation per step (IBM links: 1 to 6 steps)


@dataclass(frozen=True)
class Topology:
    """A connected router network with per-link delays.

    Attributes:
        name: short name (file stem or generator name).
        labels: ``N`` router labels (city names where the file has them).
        pos: ``[N, 2]`` float, (longitude, latitude) [deg] for files, (x, y) [km] for generated.
        geographic: True when ``pos`` is (lon, lat) on the sphere.
        link_src: ``[L]`` int, source router of each directed link.
        link_dst: ``[L]`` int, destination router of each directed link.
        length_km: ``[L]`` float, link length [km].
        delay_steps: ``[L]`` int, propagation delay [steps], >= 1.
        notes: the documented defaults that were applied while reading (for reports).
        source: path of the file read, or a description of the generator.
    """

    name: str
    labels: tuple[str, ...]
    pos: np.ndarray
    geographic: bool
    link_src: np.ndarray
    link_dst: np.ndarray
    length_km: np.ndarray
    delay_steps: np.ndarray
    notes: tuple[str, ...] = ()
    source: str = ""
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_routers(self) -> int:
        """Number of routers ``N``."""
        return len(self.labels)

    @property
    def n_links(self) -> int:
        """Number of directed links ``L``."""
        return int(self.link_src.shape[0])

    @property
    def degree(self) -> np.ndarray:
        """``[N]`` int, neighbours per router."""
        return np.bincount(self.link_src, minlength=self.n_routers)

    @property
    def max_degree(self) -> int:
        """``K`` = largest number of neighbours (the size of the action space)."""
        return int(self.degree.max())

    @property
    def neighbors(self) -> np.ndarray:
        """``[N, K]`` int, neighbour routers in ascending order, padded with -1.

        Slot ``k`` of router ``r`` is the action ``k`` of agent ``r``.
        """
        if "neighbors" not in self._cache:
            self._build_slots()
        return self._cache["neighbors"]

    @property
    def out_links(self) -> np.ndarray:
        """``[N, K]`` int, the directed link id behind each neighbour slot, padded with -1."""
        if "out_links" not in self._cache:
            self._build_slots()
        return self._cache["out_links"]

    def _build_slots(self) -> None:
        n, k = self.n_routers, self.max_degree
        nb = -np.ones((n, k), dtype=np.int64)
        ol = -np.ones((n, k), dtype=np.int64)
        order = np.lexsort((self.link_dst, self.link_src))
        fill = np.zeros(n, dtype=np.int64)
        for link in order:
            s = self.link_src[link]
            nb[s, fill[s]] = self.link_dst[link]
            ol[s, fill[s]] = link
            fill[s] += 1
        self._cache["neighbors"] = nb
        self._cache["out_links"] = ol

    def link_id(self, u: int, v: int) -> int:
        """Id of the directed link ``u -> v`` (KeyError if there is none)."""
        if "link_index" not in self._cache:
            self._cache["link_index"] = {
                (int(s), int(d)): i
                for i, (s, d) in enumerate(zip(self.link_src, self.link_dst, strict=True))
            }
        return self._cache["link_index"][(u, v)]

    def graph(self) -> nx.Graph:
        """An undirected networkx graph with edge attributes ``km`` and ``delay_steps``."""
        g = nx.Graph()
        g.add_nodes_from(range(self.n_routers))
        for s, d, km, dl in zip(
            self.link_src, self.link_dst, self.length_km, self.delay_steps, strict=True
        ):
            if s < d:
                g.add_edge(int(s), int(d), km=float(km), delay_steps=int(dl))
        return g

    def delay_matrix(self) -> np.ndarray:
        """``[N, N]`` shortest-path delay between routers, weighted by link delay [steps]
        (the least time a packet can take with no queueing; cached)."""
        if "delay_matrix" not in self._cache:
            g = nx.DiGraph()
            g.add_nodes_from(range(self.n_routers))
            for s, d, w in zip(self.link_src, self.link_dst, self.delay_steps, strict=True):
                g.add_edge(int(s), int(d), w=float(w))
            out = np.zeros((self.n_routers, self.n_routers), dtype=np.float64)
            for src, lengths in nx.all_pairs_dijkstra_path_length(g, weight="w"):
                for dst, v in lengths.items():
                    out[src, dst] = v
            self._cache["delay_matrix"] = out
        return self._cache["delay_matrix"]


def great_circle_km(
    lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray
) -> np.ndarray:
    """Haversine distance [km] between points given in degrees."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def delay_from_km(length_km: np.ndarray, km_per_step: float) -> np.ndarray:
    """Propagation delay [steps] = max(1, ceil(length / km_per_step)).

    Raises:
        ScenarioError: (key ``network.km_per_step``) a link longer than ``MAX_DELAY_STEPS``
            steps.
    """
    if not km_per_step > 0:
        raise ValueError(f"km_per_step must be positive, got {km_per_step}")
    # the small tolerance keeps an exact multiple (e.g. 500 km at 500 km/step) at 1 step
    steps = np.ceil(np.asarray(length_km, dtype=float) / km_per_step - 1e-9)
    longest = float(steps.max()) if steps.size else 1.0
    if longest > MAX_DELAY_STEPS:
        raise ScenarioError(
            f"network.km_per_step: {km_per_step:g} km/step makes the longest link "
            f"({float(np.max(length_km)):.0f} km) {longest:.3g} steps long; allowed: at most "
            f"{MAX_DELAY_STEPS} steps per link (a larger km_per_step)"
        )
    return np.maximum(1, steps).astype(np.int64)


@dataclass(frozen=True)
class ReadOptions:
    """How the GraphML reader fills the gaps of real files (see the module docstring)."""

    km_per_step: float = DEFAULT_KM_PER_STEP
    missing_coordinates: Literal["neighbour_mean", "error"] = "neighbour_mean"
    external_nodes: Literal["keep", "drop"] = "keep"
    components: Literal["error", "largest"] = "error"


def _as_float(value: object) -> float | None:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _coord(value: object) -> float:
    """A coordinate [deg], nan when absent or not a number."""
    x = _as_float(value)
    return np.nan if x is None else x


def read_graphml(path: str | Path, options: ReadOptions | None = None) -> Topology:
    """Read an Internet Topology Zoo GraphML file.

    Args:
        path: the ``.graphml`` file.
        options: gap handling and propagation speed (defaults: ``ReadOptions()``).

    Raises:
        ScenarioError: naming the file and what is missing or wrong.
    """
    opt = options or ReadOptions()
    path = Path(path)
    where = f"network.topology {path}"
    if not path.exists():
        raise ScenarioError(f"{where}: file not found")
    if path.is_dir():
        raise ScenarioError(f"{where}: is a folder, expected a .graphml file")
    try:
        raw = nx.read_graphml(path)
    except (ParseError, nx.NetworkXError, ValueError, KeyError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{where}: not a readable GraphML file ({exc})") from None
    g = nx.Graph(raw.to_undirected() if raw.is_directed() else raw)
    notes: list[str] = []
    loops = nx.number_of_selfloops(g)
    if loops:
        g.remove_edges_from(list(nx.selfloop_edges(g)))
        notes.append(f"{loops} self-loop(s) dropped")
    if opt.external_nodes == "drop":
        ext = [n for n, d in g.nodes(data=True) if _as_float(d.get("Internal", 1)) == 0]
        if ext:
            g.remove_nodes_from(ext)
            notes.append(f"{len(ext)} external node(s) (Internal=0) dropped")
    if g.number_of_nodes() < 2:
        raise ScenarioError(f"{where}: needs at least 2 routers, found {g.number_of_nodes()}")
    comps = sorted(nx.connected_components(g), key=len, reverse=True)
    if len(comps) > 1:
        if opt.components == "error":
            sizes = ", ".join(str(len(c)) for c in comps)
            raise ScenarioError(
                f"{where}: the network has {len(comps)} disconnected parts (sizes {sizes}); "
                "packets between them could never be delivered; set "
                "network.components=largest to keep the largest part"
            )
        g = g.subgraph(comps[0]).copy()
        notes.append(f"kept the largest of {len(comps)} components ({len(comps[0])} routers)")
        if g.number_of_nodes() < 2:
            raise ScenarioError(f"{where}: the largest component has fewer than 2 routers")
    nodes = list(g.nodes())
    index = {n: i for i, n in enumerate(nodes)}
    labels = tuple(str(g.nodes[n].get("label", n)) for n in nodes)
    lon = np.array([_coord(g.nodes[n].get("Longitude")) for n in nodes])
    lat = np.array([_coord(g.nodes[n].get("Latitude")) for n in nodes])
    missing = np.isnan(lon) | np.isnan(lat)
    if missing.any():
        names = ", ".join(f"{nodes[i]} ({labels[i]})" for i in np.flatnonzero(missing))
        if opt.missing_coordinates == "error":
            raise ScenarioError(
                f"{where}: {int(missing.sum())} node(s) have no Latitude/Longitude: {names}; "
                "link delays need coordinates; set network.missing_coordinates=neighbour_mean "
                "to place them between their neighbours"
            )
        lon, lat = _fill_from_neighbours(g, nodes, index, lon, lat, where)
        notes.append(f"no coordinates for {names}: placed at the mean of their neighbours")
    src, dst = [], []
    for u, v in g.edges():
        src += [index[u], index[v]]
        dst += [index[v], index[u]]
    link_src, link_dst = np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64)
    km = great_circle_km(lon[link_src], lat[link_src], lon[link_dst], lat[link_dst])
    return Topology(
        name=path.stem,
        labels=labels,
        pos=np.stack([lon, lat], axis=1),
        geographic=True,
        link_src=link_src,
        link_dst=link_dst,
        length_km=km,
        delay_steps=delay_from_km(km, opt.km_per_step),
        notes=tuple(notes),
        source=str(path),
    )


def _fill_from_neighbours(
    g: nx.Graph, nodes: list, index: dict, lon: np.ndarray, lat: np.ndarray, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Place nodes without coordinates at the mean of their placed neighbours, repeatedly."""
    lon, lat = lon.copy(), lat.copy()
    todo = set(np.flatnonzero(np.isnan(lon) | np.isnan(lat)).tolist())
    while todo:
        placed = {}
        for i in sorted(todo):
            nb = [index[m] for m in g.neighbors(nodes[i]) if index[m] not in todo]
            if nb:
                # mean of unit vectors, so that neighbours across the date line average well
                xyz = np.stack(
                    [
                        np.cos(np.radians(lat[nb])) * np.cos(np.radians(lon[nb])),
                        np.cos(np.radians(lat[nb])) * np.sin(np.radians(lon[nb])),
                        np.sin(np.radians(lat[nb])),
                    ]
                ).mean(axis=1)
                placed[i] = (
                    math.degrees(math.atan2(xyz[1], xyz[0])),
                    math.degrees(math.atan2(xyz[2], math.hypot(xyz[0], xyz[1]))),
                )
        if not placed:
            names = ", ".join(str(nodes[i]) for i in sorted(todo))
            raise ScenarioError(
                f"{where}: nodes {names} have no coordinates and no neighbour "
                "with coordinates to place them by"
            )
        for i, (x, y) in placed.items():
            lon[i], lat[i] = x, y
            todo.discard(i)
    return lon, lat


def from_graph(
    g: nx.Graph, pos: dict, name: str, km_per_step: float = DEFAULT_KM_PER_STEP, source: str = ""
) -> Topology:
    """A planar topology from a connected networkx graph with positions ``pos[node] = (x, y)``
    [km]; link length = Euclidean distance [km]."""
    if g.number_of_nodes() < 2 or not nx.is_connected(g):
        raise ValueError(f"generated topology {name!r} must be connected with >= 2 routers")
    nodes = sorted(g.nodes())
    index = {n: i for i, n in enumerate(nodes)}
    xy = np.array([pos[n] for n in nodes], dtype=float)
    src, dst = [], []
    for u, v in g.edges():
        if u == v:
            continue
        src += [index[u], index[v]]
        dst += [index[v], index[u]]
    link_src, link_dst = np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64)
    km = np.linalg.norm(xy[link_src] - xy[link_dst], axis=1)
    return Topology(
        name=name,
        labels=tuple(str(n) for n in range(len(nodes))),
        pos=xy,
        geographic=False,
        link_src=link_src,
        link_dst=link_dst,
        length_km=km,
        delay_steps=delay_from_km(km, km_per_step),
        source=source or name,
    )


def _connect(g: nx.Graph, pos: dict) -> nx.Graph:
    """Join the components of ``g`` by their closest pairs of nodes (generators only)."""
    comps = [sorted(c) for c in nx.connected_components(g)]
    while len(comps) > 1:
        a, rest = comps[0], [n for c in comps[1:] for n in c]
        pa = np.array([pos[n] for n in a])
        pr = np.array([pos[n] for n in rest])
        d = np.linalg.norm(pa[:, None, :] - pr[None, :, :], axis=2)
        i, j = np.unravel_index(np.argmin(d), d.shape)
        g.add_edge(a[i], rest[j])
        comps = [sorted(c) for c in nx.connected_components(g)]
    return g


def waxman(
    n: int,
    seed: int,
    side_km: float = 4000.0,
    alpha: float = 0.4,
    beta: float | None = None,
    km_per_step: float = DEFAULT_KM_PER_STEP,
) -> Topology:
    """Waxman random graph of ``n`` routers in a ``side_km`` square, made connected by adding the
    shortest missing bridges.  P(edge u,v) = beta * exp(-d / (alpha * L)), L = largest distance
    (networkx's parameter names).  ``beta`` defaults to a mean degree of about 4, like real
    backbones (E[exp(-d / (0.4 L))] is about 0.45 in a square)."""
    if beta is None:
        beta = min(1.0, 4.0 / (0.45 * max(n - 1, 1)))
    g = nx.waxman_graph(n, beta=beta, alpha=alpha, domain=(0, 0, side_km, side_km), seed=seed)
    pos = {i: tuple(g.nodes[i]["pos"]) for i in g.nodes}
    return from_graph(
        _connect(g, pos),
        pos,
        f"waxman{n}",
        km_per_step,
        f"waxman(n={n}, seed={seed}, side_km={side_km}, alpha={alpha}, beta={beta:.3g})",
    )


def grid(
    rows: int, cols: int, spacing_km: float = 500.0, km_per_step: float = DEFAULT_KM_PER_STEP
) -> Topology:
    """A ``rows x cols`` grid, neighbours ``spacing_km`` apart."""
    g = nx.grid_2d_graph(rows, cols)
    g = nx.convert_node_labels_to_integers(g, ordering="sorted")
    pos = {r * cols + c: (c * spacing_km, r * spacing_km) for r in range(rows) for c in range(cols)}
    return from_graph(
        g,
        pos,
        f"grid{rows}x{cols}",
        km_per_step,
        f"grid(rows={rows}, cols={cols}, spacing_km={spacing_km})",
    )


def random_geometric(
    n: int,
    seed: int,
    side_km: float = 4000.0,
    radius_km: float | None = None,
    km_per_step: float = DEFAULT_KM_PER_STEP,
) -> Topology:
    """Random geometric graph: ``n`` routers uniform in a ``side_km`` square, linked when closer
    than ``radius_km`` (default: 1.2 x the connectivity threshold sqrt(ln n / (pi n)) x side),
    then made connected by adding the shortest missing bridges."""
    rng = np.random.default_rng(seed)
    pos = {i: tuple(rng.uniform(0, side_km, 2)) for i in range(n)}
    r = (
        radius_km
        if radius_km is not None
        else 1.2 * side_km * math.sqrt(math.log(max(n, 2)) / (math.pi * n))
    )
    g = nx.random_geometric_graph(n, radius=r, pos=pos)
    return from_graph(
        _connect(g, pos),
        pos,
        f"rgg{n}",
        km_per_step,
        f"random_geometric(n={n}, seed={seed}, side_km={side_km}, radius_km={r:.0f})",
    )


def core_edge_groups(topology: Topology) -> np.ndarray:
    """``[N]`` group of each router from the topology alone: edge routers (fewer than
    ``CORE_MIN_DEGREE`` links: a stub or a router on a chain, whose packets can only go on or
    back) before core routers (``CORE_MIN_DEGREE`` links or more: branch points where a packet
    has a choice of onward paths); ids renumbered 0, 1 over the classes present (0 = edge,
    1 = core when both occur)."""
    from gridmarl.core.graph import renumber

    return renumber((topology.degree >= CORE_MIN_DEGREE).astype(np.int64))


def scenario_groups(scenario: Any, topology: Topology) -> np.ndarray:
    """``[N]`` router groups of a ``RoutingScenario`` (``graph.groups``): ``core_edge``
    (default, :func:`core_edge_groups`), ``single`` (one group) or the scenario's list."""
    from gridmarl.core.graph import check_groups

    rule = scenario.graph_rule("groups")
    if isinstance(rule, list):
        return check_groups(rule, topology.n_routers)
    if rule == "single":
        return np.zeros(topology.n_routers, dtype=np.int64)
    return core_edge_groups(topology)


def load_topology(scenario: Any) -> Topology:
    """The topology of a ``RoutingScenario`` (its file or generator).

    Raises:
        ScenarioError: the file is missing, unreadable, or has a gap the options refuse.
    """
    net = scenario.network
    if net.generator is not None:
        g = net.generator
        if g.kind == "grid":
            return grid(int(g.rows or 1), int(g.cols or 1), g.spacing_km, net.km_per_step)
        make = waxman if g.kind == "waxman" else random_geometric
        return make(g.routers, g.seed, side_km=g.side_km, km_per_step=net.km_per_step)
    assert net.topology is not None
    from gridmarl.config import resolve_path

    path = resolve_path(scenario, net.topology)
    opts = ReadOptions(
        km_per_step=net.km_per_step,
        missing_coordinates=net.missing_coordinates,
        external_nodes=net.external_nodes,
        components=net.components,
    )
    return read_graphml(path, opts)
