"""Routing KPIs of every controller of a scenario, mean ± std over its traffic seeds.

    python benchmarks/routing_quality.py                              # scenarios/routing_ibm.yaml
    python benchmarks/routing_quality.py --set traffic.buffer_pkt=10

The same path as ``gridmarl simulate`` (``gridmarl.routing.simulate.simulate``), printed as a
markdown table with wall times.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gridmarl.config import load_scenario
from gridmarl.routing.kpis import KPI_ORDER, format_mean_std
from gridmarl.routing.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "routing_ibm.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    sc = load_scenario(args.scenario, args.overrides)
    t0 = time.perf_counter()
    res = simulate(sc)
    seeds = res.extra_manifest["traffic_seeds"]
    print(
        f"{sc.name}: {res.extra_manifest['routers']} routers, seeds {seeds}, "
        f"{time.perf_counter() - t0:.1f} s\n"
    )
    print(
        "| controller | avg delay [steps] | throughput [pkt] | drops [pkt] | loops [pkt] | "
        "left in network [pkt] | wall [s] |"
    )
    print("|---|---|---|---|---|---|---|")
    for c in res.controllers:
        k = c.kpis
        cells = [
            format_mean_std(k[n], k[f"{n}_std"], 2 if n == "avg_delay_steps" else 1)
            for n in KPI_ORDER
        ]
        print(f"| {c.name} | " + " | ".join(cells) + f" | {c.wall_s:.2f} |")
    for c in res.controllers:
        if c.notes:
            print(f"\n{c.name}: {c.notes}")


if __name__ == "__main__":
    main()
