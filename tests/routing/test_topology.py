"""GraphML reading (every shipped file, every documented gap) and generators."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from gridmarl.config import ScenarioError, load_scenario
from gridmarl.routing.topology import (
    ReadOptions,
    delay_from_km,
    great_circle_km,
    grid,
    random_geometric,
    read_graphml,
    waxman,
)

ROOT = Path(__file__).resolve().parents[2]
TOPO = ROOT / "data" / "topologies"


@pytest.mark.parametrize(
    ("name", "nodes", "edges"), [("Ibm", 18, 24), ("Abilene", 11, 14), ("Geant2012", 40, 61)]
)
def test_shipped_files_load(name: str, nodes: int, edges: int) -> None:
    t = read_graphml(TOPO / f"{name}.graphml")
    assert (t.n_routers, t.n_links) == (nodes, 2 * edges)
    assert t.delay_steps.min() >= 1
    assert np.isfinite(t.pos).all()
    # every link has its reverse with the same delay, and neighbour slots match the links
    for a in range(t.n_links):
        rev = t.link_id(int(t.link_dst[a]), int(t.link_src[a]))
        assert t.delay_steps[rev] == t.delay_steps[a]
    for r in range(t.n_routers):
        real = sorted(int(t.link_dst[a]) for a in np.flatnonzero(t.link_src == r))
        assert [int(x) for x in t.neighbors[r] if x >= 0] == real
        assert (t.neighbors[r][len(real) :] == -1).all()


def test_ibm_delays_follow_great_circle_distance() -> None:
    t = read_graphml(TOPO / "Ibm.graphml", ReadOptions(km_per_step=500.0))
    km = great_circle_km(
        t.pos[t.link_src, 0], t.pos[t.link_src, 1], t.pos[t.link_dst, 0], t.pos[t.link_dst, 1]
    )
    np.testing.assert_allclose(km, t.length_km)
    assert list(t.delay_steps) == list(np.maximum(1, np.ceil(km / 500.0)).astype(int))
    assert (t.delay_steps.min(), t.delay_steps.max()) == (1, 6)
    slower = read_graphml(TOPO / "Ibm.graphml", ReadOptions(km_per_step=100.0))
    assert (slower.delay_steps >= t.delay_steps).all() and slower.delay_steps.max() == 30


def test_delay_rounding() -> None:
    assert list(delay_from_km(np.array([0.0, 1.0, 500.0, 500.1, 1499.0]), 500.0)) == [1, 1, 1, 2, 3]
    # New York - London, about 5570 km
    assert great_circle_km(
        np.array(-74.006), np.array(40.7128), np.array(-0.1276), np.array(51.5072)
    ) == pytest.approx(5570, rel=0.01)


def test_geant_nodes_without_coordinates_default_and_error() -> None:
    t = read_graphml(TOPO / "Geant2012.graphml")
    assert any("UA" in n and "MD" in n and "BY" in n for n in t.notes)
    g = t.graph()
    for label in ("UA", "MD", "BY"):
        i = t.labels.index(label)
        nb = list(g.neighbors(i))
        if len(nb) == 1:  # placed exactly on its only neighbour
            np.testing.assert_allclose(t.pos[i], t.pos[nb[0]], atol=1e-9)
    with pytest.raises(
        ScenarioError,
        match=r"Geant2012.graphml.*3 node\(s\) have no "
        r"Latitude/Longitude.*UA",
    ):
        read_graphml(TOPO / "Geant2012.graphml", ReadOptions(missing_coordinates="error"))


def _write(tmp: Path, g: nx.Graph, name: str = "t.graphml") -> Path:
    p = tmp / name
    nx.write_graphml(g, p)
    return p


def _geo(g: nx.Graph) -> nx.Graph:
    for i, n in enumerate(g.nodes):
        g.nodes[n].update(Latitude=40.0 + i, Longitude=-100.0 + i, Internal=1, label=f"n{n}")
    return g


def test_components_refused_or_largest_kept(tmp_path: Path) -> None:
    g = _geo(nx.disjoint_union(nx.path_graph(4), nx.path_graph(2)))
    p = _write(tmp_path, g)
    with pytest.raises(ScenarioError, match=r"t.graphml.*2 disconnected parts \(sizes 4, 2\)"):
        read_graphml(p)
    t = read_graphml(p, ReadOptions(components="largest"))
    assert t.n_routers == 4 and any("largest" in n for n in t.notes)


def test_external_nodes_kept_or_dropped(tmp_path: Path) -> None:
    g = _geo(nx.cycle_graph(5))
    g.add_edge(0, 9)
    g.nodes[9].update(Latitude=0.0, Longitude=0.0, Internal=0, label="peer")
    p = _write(tmp_path, g)
    assert read_graphml(p).n_routers == 6
    t = read_graphml(p, ReadOptions(external_nodes="drop"))
    assert t.n_routers == 5 and "peer" not in t.labels


def test_zero_coordinates_are_coordinates(tmp_path: Path) -> None:
    g = _geo(nx.path_graph(2))
    g.nodes[0].update(Latitude=0.0, Longitude=0.0)
    t = read_graphml(_write(tmp_path, g))
    assert not t.notes and (t.pos[0] == 0.0).all()


def test_unplaceable_and_bad_files(tmp_path: Path) -> None:
    g = nx.path_graph(3)  # no coordinates at all
    with pytest.raises(ScenarioError, match="no coordinates and no neighbour"):
        read_graphml(_write(tmp_path, g))
    with pytest.raises(ScenarioError, match="missing.graphml: file not found"):
        read_graphml(tmp_path / "missing.graphml")
    bad = tmp_path / "bad.graphml"
    bad.write_text("not xml at all")
    with pytest.raises(ScenarioError, match="bad.graphml: not a readable GraphML file"):
        read_graphml(bad)
    one = _write(tmp_path, _geo(nx.empty_graph(1)), "one.graphml")
    with pytest.raises(ScenarioError, match="at least 2 routers"):
        read_graphml(one)


def test_generators_are_connected_and_seeded() -> None:
    for t in (waxman(40, 0), random_geometric(40, 0), grid(3, 4)):
        assert nx.is_connected(t.graph()) and t.delay_steps.min() >= 1
    assert grid(3, 4).n_routers == 12 and grid(3, 4).n_links == 2 * 17
    assert np.array_equal(waxman(40, 3).link_src, waxman(40, 3).link_src)
    assert waxman(200, 1).n_routers == 200


def test_set_network_topology_override() -> None:
    sc = ROOT / "scenarios" / "routing_ibm.yaml"
    ok = load_scenario(sc, [f"network.topology={TOPO / 'Abilene.graphml'}"])
    assert ok.network.topology.endswith("Abilene.graphml")
    with pytest.raises(
        ScenarioError,
        match=r"routing_ibm.yaml: network.topology .*Geant2012"
        r".*have no Latitude/Longitude",
    ):
        load_scenario(
            sc,
            [
                "network.topology=data/topologies/Geant2012.graphml",
                "network.missing_coordinates=error",
            ],
        )
    with pytest.raises(ScenarioError, match="nope.graphml: file not found"):
        load_scenario(sc, ["network.topology=nope.graphml"])
    with pytest.raises(ScenarioError, match="unknown routing controller 'magic'"):
        load_scenario(sc, ["controllers=[{name: magic}]"])


def test_cli_refuses_bad_topology_with_exit_2() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridmarl.cli",
            "validate",
            "scenarios/routing_ibm.yaml",
            "--set",
            "network.topology=data/topologies/Geant2012.graphml",
            "--set",
            "network.missing_coordinates=error",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Latitude/Longitude" in proc.stderr and "Traceback" not in proc.stderr
