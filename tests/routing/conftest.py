"""Shared fixtures of the routing tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridmarl.routing.topology import Topology, read_graphml

ROOT = Path(__file__).resolve().parents[2]
TOPO = ROOT / "data" / "topologies"


@pytest.fixture(scope="session")
def ibm() -> Topology:
    """The IBM backbone with default options."""
    return read_graphml(TOPO / "Ibm.graphml")
