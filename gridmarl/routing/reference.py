"""A slow, per-packet, pure-Python reference of :class:`gridmarl.routing.env.RoutingEnv`.

It follows the env's timing rules (forward, propagate and deliver, new packets, FIFO joining
with the optional buffer limit) one packet at a time with ``collections.deque`` queues.  It
exists for differential tests (same arrivals + same deterministic policy => the same delivery
step for every packet) and as the baseline of the speed benchmark.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gridmarl.routing.topology import Topology

#: policy(router, destination) -> neighbour slot (action index) of the head-of-line packet
Policy = Callable[[int, int], int]


@dataclass
class _Packet:
    born: int  # [step]
    order: int  # draw index among the packets of its birth step
    dst: int
    loc: int
    visited: set[int] = field(default_factory=set)
    rem: int = 0  # [steps] of propagation left; 0 = queued
    prev: int = -1  # router that sent it over the current link
    looped: bool = False


@dataclass
class ReferenceResult:
    """Outcome of one reference episode.

    Attributes:
        packets: one row per delivered or dropped packet: ``born`` [step], ``order``,
            ``delivered_step`` (-1 if dropped), ``looped``, ``dropped``.
        delivered_pkt, dropped_pkt, loops_pkt, in_network_pkt: totals [pkt].
        avg_delay_steps: mean delay of delivered packets [steps].
        queue_pkt: ``[T, N]`` queue of each router after each step [pkt].
    """

    packets: pd.DataFrame
    delivered_pkt: int
    dropped_pkt: int
    loops_pkt: int
    in_network_pkt: int
    avg_delay_steps: float
    queue_pkt: np.ndarray


def simulate_reference(
    topology: Topology,
    counts: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    policy: Policy,
    buffer_pkt: int | None = None,
) -> ReferenceResult:
    """Run one episode packet by packet.

    Args:
        topology: the router network.
        counts: ``[T]`` new packets of each time step [pkt] (the episode has ``T`` steps).
        src, dst: ``[T, A]`` source and destination of the ``j``-th new packet of each step.
        policy: next-hop choice (neighbour slot) for a head-of-line packet.
        buffer_pkt: queue limit per router [pkt] (None = unbounded).
    """
    n = topology.n_routers
    nbrs = [[int(x) for x in row if x >= 0] for row in topology.neighbors]
    delay = {
        (int(s), int(d)): int(dl)
        for s, d, dl in zip(topology.link_src, topology.link_dst, topology.delay_steps, strict=True)
    }
    queues: list[deque[_Packet]] = [deque() for _ in range(n)]
    flying: list[_Packet] = []
    rows: list[tuple[int, int, int, bool, bool]] = []
    loops = 0
    qhist = np.zeros((len(counts), n), dtype=np.int64)

    def admit(joining: list[_Packet]) -> None:
        for pk in joining:
            if buffer_pkt is not None and len(queues[pk.loc]) >= buffer_pkt:
                rows.append((pk.born, pk.order, -1, pk.looped, True))
            else:
                queues[pk.loc].append(pk)

    def new_packets(tau: int) -> list[_Packet]:
        out = []
        for j in range(int(counts[tau])):
            s = int(src[tau, j])
            out.append(_Packet(born=tau, order=j, dst=int(dst[tau, j]), loc=s, visited={s}))
        return out

    admit(new_packets(0))
    for t in range(len(counts)):
        for r in range(n):  # 1. forward
            if not queues[r]:
                continue
            pk = queues[r].popleft()
            k = int(policy(r, pk.dst))
            if not 0 <= k < len(nbrs[r]):
                k %= len(nbrs[r])  # the env's documented fallback
            w = nbrs[r][k]
            if w in pk.visited and not pk.looped:
                pk.looped = True
                loops += 1
            pk.visited.add(w)
            pk.prev, pk.loc, pk.rem = r, w, delay[(r, w)]
            flying.append(pk)
        arrived, still = [], []
        for pk in flying:  # 2. propagate and deliver
            pk.rem -= 1
            (arrived if pk.rem == 0 else still).append(pk)
        flying = still
        joining = []
        for pk in arrived:
            if pk.loc == pk.dst:
                rows.append((pk.born, pk.order, t + 1, pk.looped, False))
            else:
                joining.append(pk)
        joining.sort(key=lambda p: p.prev)  # FIFO tie-break: by sending router
        if t + 1 < len(counts):  # 3. new packets after the link arrivals
            joining += new_packets(t + 1)
        admit(joining)  # 4. buffer
        qhist[t] = [len(q) for q in queues]
    df = pd.DataFrame(rows, columns=["born", "order", "delivered_step", "looped", "dropped"])
    df = df.sort_values(["born", "order"]).reset_index(drop=True)
    ok = df[~df["dropped"]]
    avg = float((ok["delivered_step"] - ok["born"]).mean()) if len(ok) else float("nan")
    return ReferenceResult(
        packets=df,
        delivered_pkt=int(len(ok)),
        dropped_pkt=int(df["dropped"].sum()),
        loops_pkt=loops,
        in_network_pkt=sum(len(q) for q in queues) + len(flying),
        avg_delay_steps=avg,
        queue_pkt=qhist,
    )
