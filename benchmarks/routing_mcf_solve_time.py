"""Build and solve times of the multicommodity-flow routing LP (Pyomo + HiGHS).

    python benchmarks/routing_mcf_solve_time.py                    # IBM, Waxman 40 and 200
    python benchmarks/routing_mcf_solve_time.py --sizes 40 100 200

Demand: the env's uniform traffic matrix at the LToS peak (10/3 pkt/step on IBM's 18 routers).
Generated topologies get the rate that gives the same mean router utilisation under shortest
path by hops: rate = u x N / mean_hops with u = 10/3 x mean_hops(IBM) / 18 [pkt/step per router
of capacity 1], so that bigger networks are not simply more overloaded.  Target: IBM <= 5 s.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import networkx as nx

from baselines_opt.routing_mcf import IPM_ABOVE_VARS, solve_mcf, uniform_demand
from baselines_opt.solve import SolveOptions, SolverError
from gridmarl.routing.topology import Topology, read_graphml, waxman

ROOT = Path(__file__).resolve().parents[1]
PEAK = 10.0 / 3.0  # [pkt/step] LToS peak rate on the 18-router IBM network


def mean_hops(topo: Topology) -> float:
    """Mean shortest-path hop count over ordered pairs of distinct routers."""
    n = topo.n_routers
    total = sum(sum(d.values()) for _, d in nx.all_pairs_shortest_path_length(topo.graph()))
    return total / (n * (n - 1))


def run(topo: Topology, rate: float, threads: int | None, limit_s: float) -> str:
    """Build and solve one LP; one markdown row."""
    nvar = topo.n_routers * topo.n_links - topo.n_links + topo.n_routers
    method = "ipm" if nvar > IPM_ABOVE_VARS else "choose"
    head = f"| {topo.name} | {topo.n_routers} | {topo.n_links // 2} | {nvar:,} | {rate:.2f} |"
    t0 = time.perf_counter()
    try:
        sol = solve_mcf(
            topo,
            uniform_demand(topo.n_routers, rate),
            options=SolveOptions(time_limit_s=limit_s, mip_gap=None, threads=threads),
        )
    except SolverError as exc:
        total = time.perf_counter() - t0
        return f"{head} n/a | n/a | {total:.0f} | {method} | {exc.status} | n/a |"
    total = time.perf_counter() - t0
    return (
        f"{head} {sol.build_s:.2f} | {sol.solve_s:.2f} | {total:.2f} | {method} | "
        f"{sol.report.status} | {sol.node_load.max():.3f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=[40, 200],
        help="routers of the generated Waxman topologies",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=900.0, help="HiGHS limit per LP [s]")
    args = ap.parse_args()
    print(
        "| topology | routers | links | LP variables | rate [pkt/step] | build [s] | "
        "solve [s] | total [s] | HiGHS method | status | max router load [pkt/step] |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    ibm = read_graphml(ROOT / "data" / "topologies" / "Ibm.graphml")
    util = PEAK * mean_hops(ibm) / ibm.n_routers
    print(run(ibm, PEAK, args.threads, args.time_limit), flush=True)
    for n in args.sizes:
        topo = waxman(n, seed=0)
        print(run(topo, util * n / mean_hops(topo), args.threads, args.time_limit), flush=True)


if __name__ == "__main__":
    main()
