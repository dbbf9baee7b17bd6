"""Interaction graphs and groups of agents: ``AgentSpec.neighbors`` and ``AgentSpec.groups``.

Every domain fills both (``Domain.graph``); graph-based controllers read them.  Conventions:

* ``neighbors [N, K]``: row ``i`` lists the agents that agent ``i`` interacts with, in a fixed
  order, padded with -1; ``K >= 1`` (a graph without edges is one column of -1).  No agent is
  its own neighbour and no neighbour is listed twice.
* ``groups [N]``: a group id per agent, ``0 … G-1`` with every id used.

A scenario may replace either with explicit lists (the ``graph`` block of ``ScenarioBase``);
:func:`check_groups` and :func:`check_neighbors` validate such lists and raise
``ScenarioError`` naming the key.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gridmarl.core.errors import ScenarioError


def pad_neighbors(rows: Sequence[Sequence[int]]) -> np.ndarray:
    """``[N, K]`` int64 neighbour table of per-agent lists, padded with -1 (``K`` = the longest
    list, at least 1)."""
    k = max([1, *(len(r) for r in rows)])
    out = np.full((len(rows), k), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = list(r)
    return out


def renumber(codes: Sequence[int] | np.ndarray) -> np.ndarray:
    """``[N]`` group ids ``0 … G-1`` of per-agent codes, in increasing code order over the codes
    present."""
    _, ids = np.unique(np.asarray(codes), return_inverse=True)
    return ids.reshape(-1).astype(np.int64)


def check_groups(values: Sequence[int], n_agents: int, key: str = "graph.groups") -> np.ndarray:
    """Validate an explicit group list and return it as ``[N]`` int64.

    Raises:
        ScenarioError: naming ``key``: not one id per agent, a negative id, or an id skipped
            (ids must be ``0 … G-1``, every one used).
    """
    if len(values) != n_agents:
        raise ScenarioError(
            f"{key}: {len(values)} group ids for {n_agents} agents; give one id per agent"
        )
    arr = np.asarray(values, dtype=np.int64).reshape(-1)
    if arr.size and int(arr.min()) < 0:
        i = int(np.argmin(arr))
        raise ScenarioError(f"{key}[{i}]: group id {int(arr[i])}; allowed: 0 or more")
    missing = sorted(set(range(int(arr.max()) + 1 if arr.size else 0)) - set(arr.tolist()))
    if missing:
        raise ScenarioError(
            f"{key}: group ids must be 0 … G-1 with every id used; missing {missing[:10]}"
        )
    return arr


def check_neighbors(
    rows: Sequence[Sequence[int]],
    n_agents: int,
    key: str = "graph.neighbors",
    symmetric: bool = True,
) -> np.ndarray:
    """Validate explicit neighbour lists (one list of agent indices per agent) and return the
    ``[N, K]`` table (:func:`pad_neighbors`).

    Raises:
        ScenarioError: naming ``key``: not one list per agent, an index outside ``0 … N-1``,
            an agent listed as its own neighbour or twice, or (``symmetric``) ``j`` listed by
            ``i`` but not ``i`` by ``j``.
    """
    if len(rows) != n_agents:
        raise ScenarioError(
            f"{key}: {len(rows)} neighbour lists for {n_agents} agents; give one list per agent"
        )
    sets: list[set[int]] = []
    for i, row in enumerate(rows):
        for j in row:
            if not 0 <= j < n_agents:
                raise ScenarioError(f"{key}[{i}]: agent index {j}; allowed: 0 … {n_agents - 1}")
            if j == i:
                raise ScenarioError(f"{key}[{i}]: agent {i} lists itself; no self-loops")
        if len(set(row)) != len(row):
            raise ScenarioError(f"{key}[{i}]: a neighbour is listed twice ({list(row)})")
        sets.append(set(row))
    if symmetric:
        for i, s in enumerate(sets):
            for j in sorted(s):
                if i not in sets[j]:
                    raise ScenarioError(
                        f"{key}: agent {i} lists {j} but {j} does not list {i}; "
                        "the interaction graph must be symmetric"
                    )
    return pad_neighbors(rows)


def neighbor_sets(table: np.ndarray) -> list[set[int]]:
    """The neighbours of each agent of a ``[N, K]`` table, padding dropped."""
    return [{int(j) for j in row if j >= 0} for row in np.asarray(table)]
