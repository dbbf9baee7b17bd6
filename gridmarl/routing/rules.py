"""Rule controllers for routing: shortest-path next-hop tables and split-table sampling.

* :class:`NextHopController` forwards every head-of-line packet by a fixed table
  ``slot[router, destination]`` (shortest path by hop count or by distance, networkx).
* :class:`SplitController` samples the next hop from per-destination split shares
  ``share[router, destination, slot]`` (the multicommodity-flow baseline's output), with a
  seeded generator, and can switch tables at given steps (one table per rate segment).

Both read the head-of-line destination from the observation (``head_destination``), so they
run through the env exactly like a learned policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import networkx as nx
import numpy as np
import pandas as pd
import torch

from gridmarl.core.controller import Controller
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.seeding import make_generator
from gridmarl.core.types import Action, Observation
from gridmarl.routing.env import head_destination
from gridmarl.routing.topology import Topology


def shortest_path_slots(topology: Topology, weight: Literal["hops", "distance"]) -> np.ndarray:
    """``[N, N]`` neighbour slot of the next hop from router ``r`` to destination ``d``.

    ``hops`` minimises the number of links, ``distance`` the great-circle length [km]; ties
    are broken by networkx's deterministic search order.  The diagonal is 0 (never used).
    Each hop strictly decreases the remaining shortest distance, so these routes never loop.
    """
    g = topology.graph()
    w = None if weight == "hops" else "km"
    n = topology.n_routers
    slot_of = {
        (int(r), int(v)): k for r in range(n) for k, v in enumerate(topology.neighbors[r]) if v >= 0
    }
    table = np.zeros((n, n), dtype=np.int64)
    paths = nx.all_pairs_shortest_path(g) if w is None else nx.all_pairs_dijkstra_path(g, weight=w)
    for r, by_dst in paths:
        for d, path in by_dst.items():
            if d != r:
                table[r, d] = slot_of[(r, path[1])]
    return table


class NextHopController(Controller):
    """Deterministic next hop from a table ``slot[router, destination]``.

    Args:
        name: label in tables and files.
        slots: ``[N, N]`` neighbour slot per (router, destination).
    """

    def __init__(self, name: str, slots: np.ndarray) -> None:
        self.name = name
        self.slots = torch.as_tensor(slots, dtype=torch.long)
        self._flat: torch.Tensor | None = None

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """The table's slot for each router's head-of-line destination (0 when empty)."""
        n = self.slots.shape[0]
        dst, has = head_destination(obs, n)
        flat = self.slots.to(dst.device).flatten()
        r = torch.arange(n, device=dst.device)
        a = torch.where(has, flat[r * n + dst], 0)
        return Action(discrete=a, continuous=torch.zeros(*a.shape, 0, device=a.device))

    def table(self, topology: Topology) -> pd.DataFrame:
        """The next-hop table: router, destination, next_hop, share (= 1)."""
        n = topology.n_routers
        r, d = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        keep = r != d
        nh = topology.neighbors[r[keep], self.slots.numpy()[keep]]
        return _frame(topology, r[keep], d[keep], nh, np.ones(keep.sum()))


def shortest_path_controller(
    topology: Topology, weight: Literal["hops", "distance"], name: str | None = None
) -> NextHopController:
    """Shortest path by ``hops`` or ``distance`` [km]."""
    return NextHopController(
        name or f"shortest_path_{weight}", shortest_path_slots(topology, weight)
    )


class SplitController(Controller):
    """Sample next hops from split shares, switching tables at given steps.

    Args:
        name: label.
        shares: one ``[N, N, K]`` table per phase: share of the traffic at router ``r`` for
            destination ``d`` sent to neighbour slot ``k`` (rows sum to 1).
        starts: step at which each phase begins (ascending, first 0) [step].
        seed: seed of the sampling generator (re-seeded at every ``reset``).

    The controller counts its own ``act`` calls since ``reset`` to know the step.
    """

    def __init__(
        self, name: str, shares: Sequence[np.ndarray], starts: Sequence[int], seed: int = 0
    ) -> None:
        if len(shares) != len(starts) or not shares or starts[0] != 0:
            raise ValueError("one share table per phase, the first phase starting at step 0")
        self.name = name
        self.cum = [torch.as_tensor(np.cumsum(s, axis=-1), dtype=torch.float32) for s in shares]
        self.shares = [np.asarray(s) for s in shares]
        self.starts = list(starts)
        self.seed = seed
        self._t = 0
        self._gen: torch.Generator | None = None

    def reset(self, env: MultiAgentEnv) -> None:
        """Rewind the step counter and re-seed the sampler."""
        self._t = 0
        self._gen = make_generator(self.seed, env.device)

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """Inverse-CDF sample of the slot for each head-of-line packet."""
        phase = max(i for i, s in enumerate(self.starts) if s <= self._t)
        self._t += 1
        cum = self.cum[phase].to(obs.local.device)
        n, _, k = cum.shape
        dst, has = head_destination(obs, n)
        if self._gen is None or self._gen.device != obs.local.device:
            self._gen = make_generator(self.seed, obs.local.device)
        u = torch.rand(dst.shape, generator=self._gen, device=dst.device)
        r = torch.arange(n, device=dst.device)
        rows = cum[r[None, :].expand_as(dst), dst]  # [B, N, K]
        a = (rows < u[..., None] * rows[..., -1:]).sum(-1).clamp(max=k - 1)
        a = torch.where(has, a, 0)
        return Action(discrete=a, continuous=torch.zeros(*a.shape, 0, device=a.device))

    def table(self, topology: Topology) -> pd.DataFrame:
        """Every (phase, router, destination, next hop) with a positive share."""
        out = []
        for start, sh in zip(self.starts, self.shares, strict=True):
            r, d, k = np.nonzero(sh)
            keep = r != d
            r, d, k = r[keep], d[keep], k[keep]
            df = _frame(topology, r, d, topology.neighbors[r, k], sh[r, d, k])
            df.insert(4, "from_step", start)
            out.append(df)
        return pd.concat(out, ignore_index=True)


def _frame(
    topology: Topology, r: np.ndarray, d: np.ndarray, nh: np.ndarray, share: np.ndarray
) -> pd.DataFrame:
    lab = np.array(topology.labels)
    return pd.DataFrame(
        {
            "router": r,
            "destination": d,
            "next_hop": nh,
            "share": share,
            "router_label": lab[r],
            "destination_label": lab[d],
            "next_hop_label": lab[nh],
        }
    )


class DecisionRecorder(Controller):
    """Wraps any controller and counts its (router, head destination, slot) decisions, so a
    learned policy gets a next-hop table like the baselines (shares = observed frequencies).

    Args:
        inner: the controller that acts.
        n_routers: ``N``.
        max_degree: ``K``.
    """

    def __init__(self, inner: Controller, n_routers: int, max_degree: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.counts = np.zeros((n_routers, n_routers, max_degree), dtype=np.int64)

    def reset(self, env: MultiAgentEnv) -> None:
        """Reset the wrapped controller (the counts accumulate over episodes)."""
        self.inner.reset(env)

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """The wrapped controller's action; its decisions for head-of-line packets are counted."""
        act = self.inner.act(obs, deterministic=deterministic)
        n = self.counts.shape[0]
        dst, has = head_destination(obs, n)
        r = torch.arange(n, device=dst.device).expand_as(dst)
        a = act.discrete.to(dst.device).long().clamp(0, self.counts.shape[2] - 1)
        np.add.at(
            self.counts, (r[has].cpu().numpy(), dst[has].cpu().numpy(), a[has].cpu().numpy()), 1
        )
        return act

    def table(self, topology: Topology) -> pd.DataFrame:
        """Observed next hops: router, destination, next_hop, share of that pair's decisions."""
        tot = self.counts.sum(-1, keepdims=True)
        share = np.divide(self.counts, np.maximum(tot, 1))
        r, d, k = np.nonzero(self.counts)
        return _frame(topology, r, d, topology.neighbors[r, k], share[r, d, k])
