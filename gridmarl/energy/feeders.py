"""The energy community's interaction graph and groups (``AgentSpec.neighbors`` / ``groups``).

Feeders.  The prosumers sit on radial low-voltage feeders that leave the transformer
(``community.feeders``).  Default: ``F = ceil(N / DEFAULT_HOMES_PER_FEEDER)`` feeders, filled
in prosumer index order in contiguous blocks whose sizes differ by at most one (prosumer ``i``
is on feeder ``i · F // N``): 5 feeders of 10 homes for the shipped 50-prosumer community, a
secondary substation with a handful of outgoing feeders, each a street's worth of homes, so
that a prosumer's neighbourhood (K = 9) is a local group rather than the whole community.
Index order stands for the order along the feeder.  The feeders are metadata: they carry no
line limits and change no cost, reward or KPI.

Neighbours: the other prosumers on the same feeder in index order (``K`` = largest feeder − 1,
padded with -1), or with ``community.feeders.reach = r`` only those at most ``r`` places away
along the feeder (``K <= 2 r``).  Both are symmetric.

Groups (``graph.groups``): ``devices`` (default), the device-ownership class, code =
has_battery + 2 has_ev + 4 has_hp renumbered 0, 1, … over the codes present; ``feeders``, the
feeder index.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gridmarl.core.graph import check_groups, check_neighbors, pad_neighbors, renumber

DEFAULT_HOMES_PER_FEEDER = 10  # prosumers per feeder of the default layout [-]


def radial_feeders(n: int, count: int | None = None) -> np.ndarray:
    """``[N]`` feeder of each prosumer: ``count`` feeders (default ``ceil(N / 10)``) filled in
    index order in contiguous blocks whose sizes differ by at most one."""
    f = count if count is not None else math.ceil(n / DEFAULT_HOMES_PER_FEEDER)
    if not 1 <= f <= max(n, 1):
        raise ValueError(f"feeder count {f} does not fit {n} prosumers; allowed 1 … {n}")
    return (np.arange(n, dtype=np.int64) * f) // n


def feeder_neighbors(feeder: np.ndarray, reach: int | None = None) -> np.ndarray:
    """``[N, K]`` neighbours: the other prosumers on each one's feeder in index order, only those
    at most ``reach`` places away along it when given; padded with -1."""
    feeder = np.asarray(feeder, dtype=np.int64)
    members = {int(f): np.flatnonzero(feeder == f).tolist() for f in np.unique(feeder)}
    rows: list[list[int]] = []
    for i, f in enumerate(feeder.tolist()):
        line = members[f]
        at = line.index(i)
        lo, hi = (0, len(line)) if reach is None else (max(0, at - reach), at + reach + 1)
        rows.append([j for j in line[lo:hi] if j != i])
    return pad_neighbors(rows)


def device_groups(community: Any) -> np.ndarray:
    """``[N]`` device-ownership class: has_battery + 2 has_ev + 4 has_hp, renumbered 0, 1, …
    in increasing code order over the codes present."""
    c = community
    code = (
        (np.asarray(c.battery_kwh) > 0).astype(int)
        + 2 * np.asarray(c.has_ev, int)
        + 4 * np.asarray(c.has_hp, int)
    )
    return renumber(code)


def feeder_of(community: Any) -> np.ndarray:
    """``[N]`` feeder of each prosumer of a ``Community`` (the default layout when it has
    none)."""
    if community.feeder is not None:
        return np.asarray(community.feeder, dtype=np.int64)
    return radial_feeders(community.n)


def scenario_graph(
    scenario: Any, n: int
) -> tuple[np.ndarray, int | None, np.ndarray | None, np.ndarray | None]:
    """What ``build_community`` stores of an energy scenario's graph: the feeder of each of the
    ``n`` prosumers, the feeder reach, and the groups and neighbours tables that replace the
    defaults (None where the default rule applies)."""
    cfg = scenario.community.feeders
    if cfg is not None and cfg.assignment is not None:
        feeder = np.asarray(cfg.assignment, dtype=np.int64)
    else:
        feeder = radial_feeders(n, cfg.count if cfg is not None else None)
    reach = cfg.reach if cfg is not None else None
    rule = scenario.graph_rule("groups")
    groups = None
    if isinstance(rule, list):
        groups = check_groups(rule, n)
    elif rule == "feeders":
        groups = renumber(feeder)
    rule = scenario.graph_rule("neighbors")
    neighbors = check_neighbors(rule, n) if isinstance(rule, list) else None
    return feeder, reach, groups, neighbors
