"""Cost of CityFlow's arrival bookkeeping: one simulated episode of the engine loop with the same
pushed trips and signals (FixedTime, 60 s per phase), CPU time, best of ``--repeats``:

* ``bare``: push the trips due, ``next_step`` (no bookkeeping);
* ``set of all ids``: a set of every vehicle id (waiting ones too) each second, diffed with the
  last second's (the bookkeeping before 2026-12-06);
* ``incremental``: ``CityFlowEngine.advance`` (arrivals counted from CityFlow's average travel
  time; the running vehicles listed only in a second with arrivals).

``--gridlock`` rewrites the roadnet to the lane links before the fix (each start lane to the one
end lane of the same index, links of no length), on which the grid gridlocks.

    python benchmarks/cityflow_bookkeeping.py [scenario.yaml] [--gridlock] [--repeats N]
        [--set key=value ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gridmarl.config import load_scenario
from gridmarl.traffic import cityflow_files
from gridmarl.traffic.engines import CityFlowEngine
from gridmarl.traffic.roadnet import TWO_PHASE, Grid, build_network, generate_demand


def _pre_fix_links(grid: Grid, phases: tuple = TWO_PHASE) -> dict:
    """The roadnet with the lane links of before the fix: start lane k to end lane k only, every
    link a point (the intersection's centre)."""
    net = _FIXED(grid, phases)
    for inter in net["intersections"]:
        for link in inter["roadLinks"]:
            link["laneLinks"] = [
                {**ll, "points": [inter["point"], inter["point"]]}
                for ll in link["laneLinks"]
                if ll["startLaneIndex"] == ll["endLaneIndex"]
            ]
    return net


_FIXED = cityflow_files.cityflow_roadnet


def _loop(eng: CityFlowEngine, n_tls: int, horizon_s: int, mode: str) -> tuple[float, int]:
    """CPU time [s] of one episode and the trips that arrived (0 for ``bare``)."""
    raw, arrived, present = eng._eng, 0, set()
    t0 = time.process_time()
    if mode == "incremental":
        for t in range(0, horizon_s, 10):
            if t % 60 == 0:
                for i in range(n_tls):
                    eng.show_green(i, (t // 60) % 2)
            arrived += len(eng.advance(10)[0])
        return time.process_time() - t0, arrived
    for t in range(horizon_s):
        if t % 60 == 0:
            for i in range(n_tls):
                eng.show_green(i, (t // 60) % 2)
        eng._push_due(t)
        raw.next_step()
        if mode == "set of all ids":
            now = set(raw.get_vehicles(include_waiting=True))
            arrived += len(sorted(present - now))
            present = now
    return time.process_time() - t0, arrived


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", nargs="?", default="scenarios/traffic_grid_6x6.yaml")
    ap.add_argument("--gridlock", action="store_true", help="the lane links before the fix")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    sc = load_scenario(args.scenario, args.overrides)
    if args.gridlock:
        cityflow_files.cityflow_roadnet = _pre_fix_links
    folder = Path(tempfile.mkdtemp(prefix="gridmarl_cf_bookkeeping_"))
    grid, _, layout = build_network(sc.grid, folder)
    trips = generate_demand(grid, sc.demand, sc.traffic.horizon_s, sc.seed)
    eng = CityFlowEngine(layout)
    modes = ("bare", "set of all ids", "incremental")
    best: dict[str, float] = {}
    arrived = 0
    for _ in range(args.repeats):
        for mode in modes:
            eng.load(folder, sc.seed, trips)
            cpu, n = _loop(eng, len(layout.tls), sc.traffic.horizon_s, mode)
            best[mode] = min(best.get(mode, cpu), cpu)
            arrived = n or arrived
    eng.close()
    print(f"{len(trips)} trips, {arrived} arrived ({'gridlock' if args.gridlock else 'fixed'})")
    for mode in modes:
        print(f"{mode:16s} {best[mode]:.3f} s CPU, {best[mode] / best['bare']:.3f} x bare")


if __name__ == "__main__":
    main()
