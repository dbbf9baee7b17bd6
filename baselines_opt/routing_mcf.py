"""Multicommodity-flow routing (Pyomo + HiGHS) turned into next-hop split tables.

Model (one commodity per destination ``d``; flows in [pkt/step]; ``f[d, a]`` = flow towards
``d`` on directed link ``a = (u, v)``; ``D[s, d]`` = expected traffic matrix [pkt/step]):

    min   sum_{d, a} delay_a f[d, a]  +  w * sum_v Phi_v                    [pkt]
    s.t.  sum_{a out of v} f[d, a] - sum_{a into v} f[d, a] = D[v, d]      for v != d
          f[d, a] = 0 for links leaving d (delivered packets leave the network)
          u_v = sum_d sum_{a out of v} f[d, a]                              [pkt/step]
          Phi_v >= s_i u_v - b_i c_v   for each Fortz-Thorup piece i;  Phi_v >= 0

``c_v`` = 1 [pkt/step] is the router's forwarding rate (one head-of-line packet per step, which
also bounds every link at one packet per step).  By Little's law the first term is the mean
number of packets in flight and the convex piecewise-linear Phi (B. Fortz, M. Thorup,
"Internet traffic engineering by optimizing OSPF weights", INFOCOM 2000, Sec. II: slopes 1, 3,
10, 70, 500, 5000 at utilisations 1/3, 2/3, 9/10, 1, 11/10) approximates the M/M/1 number of
packets queued at a router, so the objective approximates the mean number of packets in the
network, i.e. rate x mean delay.  Every link has a delay >= 1 step, so an optimal flow has no
cycles and the split tables below never loop.

Split table: ``share[r, d, k] = f[d, link(r, slot k)] / sum_k f[d, link(r, slot k)]``; shares
below ``min_share`` are dropped; a router with no flow towards ``d`` uses the given fallback
next hop (shortest distance).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import pyomo.environ as pyo

from baselines_opt.solve import SolveOptions, SolveReport, solve_highs
from gridmarl.routing.topology import Topology

#: Fortz-Thorup pieces (slope [-], intercept [-] at capacity 1): Phi(x) = max_i(s_i x - b_i)
FORTZ_THORUP = (
    (1.0, 0.0),
    (3.0, 2.0 / 3.0),
    (10.0, 16.0 / 3.0),
    (70.0, 178.0 / 3.0),
    (500.0, 1468.0 / 3.0),
    (5000.0, 16318.0 / 3.0),
)


IPM_ABOVE_VARS = 20_000  # LP size above which ``method="auto"`` uses interior point


@dataclass(frozen=True)
class McfSolution:
    """Optimal destination-based flows.

    Attributes:
        flow: ``[N, L]`` flow towards destination ``d`` on directed link ``a`` [pkt/step].
        node_load: ``[N]`` packets forwarded per step by each router [pkt/step].
        objective: model objective [pkt] (approx. mean packets in the network).
        report: HiGHS status, gap and solve time.
        build_s: time to build the Pyomo model [s].
        solve_s: time of the HiGHS solve, including the model transfer [s].
    """

    flow: np.ndarray
    node_load: np.ndarray
    objective: float
    report: SolveReport
    build_s: float
    solve_s: float


def uniform_demand(n: int, rate_pkt_per_step: float) -> np.ndarray:
    """``[N, N]`` traffic matrix of the env's arrivals: uniform source, uniform other
    destination, ``rate`` packets per step in total [pkt/step]."""
    d = np.full((n, n), rate_pkt_per_step / (n * (n - 1)))
    np.fill_diagonal(d, 0.0)
    return d


def solve_mcf(
    topology: Topology,
    demand: np.ndarray,
    capacity_pkt_per_step: float = 1.0,
    congestion_weight: float = 1.0,
    options: SolveOptions | None = None,
    method: str = "auto",
) -> McfSolution:
    """Solve the multicommodity-flow LP of the module docstring.

    Args:
        topology: the router network (link delays [steps]).
        demand: ``[N, N]`` expected traffic matrix [pkt/step] (diagonal ignored).
        capacity_pkt_per_step: router forwarding rate ``c_v`` [pkt/step].
        congestion_weight: ``w``, weight of the queueing term [-].
        options: HiGHS options (defaults: 60 s limit).
        method: HiGHS LP ``solver`` option: ``auto`` = interior point (with crossover) above
            ``IPM_ABOVE_VARS`` variables, where it was 2-3x faster than simplex on Waxman
            networks of 100 routers, else HiGHS's own choice; or ``simplex`` / ``ipm`` /
            ``choose``.
    """
    t0 = time.perf_counter()
    n, nl = topology.n_routers, topology.n_links
    src, dst = topology.link_src, topology.link_dst
    delay = topology.delay_steps.astype(float)
    out_of = [np.flatnonzero(src == v).tolist() for v in range(n)]
    into = [np.flatnonzero(dst == v).tolist() for v in range(n)]
    # commodity d uses every link except those leaving d
    keys = [(d, a) for d in range(n) for a in range(nl) if src[a] != d]
    m = pyo.ConcreteModel(name="routing_mcf")
    m.F = pyo.Var(keys, domain=pyo.NonNegativeReals)
    m.Phi = pyo.Var(range(n), domain=pyo.NonNegativeReals)
    f = m.F

    def conserve(mm: pyo.ConcreteModel, d: int, v: int):
        if v == d:
            return pyo.Constraint.Skip
        outflow = sum(f[d, a] for a in out_of[v])
        inflow = sum(f[d, a] for a in into[v] if src[a] != d)
        return outflow - inflow == float(demand[v, d])

    m.conserve = pyo.Constraint(range(n), range(n), rule=conserve)
    load = {v: sum(f[d, a] for a in out_of[v] for d in range(n) if d != v) for v in range(n)}
    pieces = range(len(FORTZ_THORUP))
    cap = float(capacity_pkt_per_step)

    def congestion(mm: pyo.ConcreteModel, v: int, i: int):
        s, b = FORTZ_THORUP[i]
        return mm.Phi[v] >= s * load[v] - b * cap

    m.congestion = pyo.Constraint(range(n), pieces, rule=congestion)
    m.obj = pyo.Objective(
        expr=sum(delay[a] * f[d, a] for d, a in keys)
        + congestion_weight * sum(m.Phi[v] for v in range(n)),
        sense=pyo.minimize,
    )
    build_s = time.perf_counter() - t0
    opts = options or SolveOptions(time_limit_s=60.0, mip_gap=None)
    if method == "auto":
        method = "ipm" if len(keys) > IPM_ABOVE_VARS else "choose"
    if "solver" not in opts.extra:
        opts = replace(opts, extra={**opts.extra, "solver": method})
    t1 = time.perf_counter()
    report = solve_highs(m, opts, what="multicommodity-flow routing LP")
    solve_s = time.perf_counter() - t1
    flow = np.zeros((n, nl))
    for (d, a), var in m.F.items():
        flow[d, a] = max(0.0, float(var.value or 0.0))
    node_load = np.array([sum(flow[d, a] for a in out_of[v] for d in range(n)) for v in range(n)])
    return McfSolution(
        flow=flow,
        node_load=node_load,
        objective=report.objective,
        report=report,
        build_s=build_s,
        solve_s=solve_s,
    )


def split_shares(
    topology: Topology, flow: np.ndarray, fallback_slots: np.ndarray, min_share: float = 1e-4
) -> np.ndarray:
    """``[N, N, K]`` next-hop shares per (router, destination) from destination flows.

    Args:
        topology: the router network.
        flow: ``[N, L]`` flow towards each destination on each link [pkt/step].
        fallback_slots: ``[N, N]`` neighbour slot used where a router has no flow towards a
            destination (e.g. shortest distance).
        min_share: shares below this are dropped and the rest renormalised [-].
    """
    ol = topology.out_links  # [N, K], -1 padded
    per_slot = np.where(ol[None, :, :] >= 0, flow[:, np.clip(ol, 0, None)], 0.0)  # [D, N, K]
    per_slot = per_slot.transpose(1, 0, 2)  # [N (router), D, K]
    total = per_slot.sum(-1, keepdims=True)
    share = np.divide(per_slot, total, out=np.zeros_like(per_slot), where=total > 1e-12)
    share[share < min_share] = 0.0
    total = share.sum(-1, keepdims=True)
    share = np.divide(share, total, out=np.zeros_like(share), where=total > 0)
    r, d = np.nonzero(total[..., 0] <= 0)
    share[r, d, :] = 0.0
    share[r, d, fallback_slots[r, d]] = 1.0
    return share
