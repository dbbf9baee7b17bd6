"""MaxPressure's decision interval, tuned on the validation demand seeds (docs/protocol.md).

    python benchmarks/traffic_decision_interval.py                 # traffic_ltos_6x6.yaml
    python benchmarks/traffic_decision_interval.py SCENARIO --engines sumo cityflow \
        --intervals 5 10 15 --seeds 3

For every engine: MaxPressure with ``traffic.decision_s`` set to each interval, and FixedTime
at the scenario's own interval with each busiest-phase green of ``--fixed-greens`` (the
fixed-time plan tuned the same way, so that the reference is fair), on the first ``--seeds``
seeds of the ``validate`` stream (``core.seeding.stream_seeds(scenario.seed, "validate", n)``),
which neither the development seeds (``seed, seed + 1, …``) nor the test stream share.
Min green and yellow stay the scenario's: at 5 s a new green must then be requested for
``traffic.min_green_steps`` steps.

Prints, per engine and row, the average travel time of finished trips (mean ± std over the
seeds) [s], its paired ratio to MaxPressure at the scenario's interval, the finished share and
the phase switches per intersection and hour; the interval with the least mean travel time,
over the engines, is the one to put in the scenario.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from gridmarl.config import load_scenario
from gridmarl.core.seeding import stream_seeds
from gridmarl.experiment import run_episode
from gridmarl.traffic.env import TrafficEnv
from gridmarl.traffic.rules import FixedTime, MaxPressure


def _runs(scenario, ctrl, seeds: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Travel time [s], finished share [-] and switches per intersection-hour of ``ctrl`` on
    each seed."""
    env = TrafficEnv(scenario)
    tt, share, sw = [], [], []
    try:
        for s in seeds:
            rec, _ = run_episode(env, ctrl, seed=s)
            k = env.episode_kpis()[0]
            tt.append(k["avg_travel_time_s"])
            share.append(k["finished_share"])
            n = rec["agent"].nunique()
            sw.append(rec["switched"].sum() / n * 3600.0 / scenario.traffic.horizon_s)
    finally:
        env.close()
    return np.array(tt), np.array(share), np.array(sw)


def main() -> None:
    """Parse the arguments, run every row, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", nargs="?", default="scenarios/traffic_ltos_6x6.yaml")
    ap.add_argument("--engines", nargs="+", default=["sumo", "cityflow"])
    ap.add_argument("--intervals", nargs="+", type=int, default=[5, 10, 15])
    ap.add_argument("--seeds", type=int, default=3, help="validation seeds [-]")
    ap.add_argument("--fixed-greens", nargs="+", type=float, default=[30.0], help="[s]")
    ap.add_argument("--set", action="append", default=[], help="extra scenario override")
    args = ap.parse_args()
    torch.set_num_threads(1)
    base = load_scenario(args.scenario, overrides=list(args.set))
    seeds = stream_seeds(base.seed, "validate", args.seeds)
    own = base.traffic.decision_s
    print(f"{args.scenario}: validation seeds {seeds}")
    print(
        "| engine | controller | decision [s] | travel time [s] | ÷ MaxPressure @ "
        f"{own} s (paired) | finished share | switches / h |"
    )
    print("|---|---|---|---|---|---|---|")
    best: dict[int, list[float]] = {}
    for engine in args.engines:
        t0 = time.perf_counter()
        rows = []
        sc = load_scenario(args.scenario, overrides=[*args.set, f"engine={engine}"])
        for g in args.fixed_greens:
            rows.append((f"fixed_time {g:g} s", own, *_runs(sc, FixedTime(green_s=g), seeds)))
        for dec in args.intervals:
            sc = load_scenario(
                args.scenario,
                overrides=[*args.set, f"engine={engine}", f"traffic.decision_s={dec}"],
            )
            rows.append(("max_pressure", dec, *_runs(sc, MaxPressure(), seeds)))
        ref = next(r[2] for r in rows if r[0] == "max_pressure" and r[1] == own)
        for name, dec, tt, share, sw in rows:
            if name == "max_pressure":
                best.setdefault(dec, []).extend(tt.tolist())
            print(
                f"| {engine} | {name} | {dec} | {tt.mean():.1f} ± {tt.std(ddof=1):.1f} | "
                f"{np.mean(tt / ref):.3f} | {share.mean():.3f} | {sw.mean():.0f} |"
            )
        print(f"<!-- {engine}: {time.perf_counter() - t0:.0f} s wall -->")
    means = {d: float(np.mean(v)) for d, v in best.items()}
    pick = min(means, key=means.get)
    print(
        "\nmean over engines and seeds: "
        + ", ".join(f"{d} s {m:.1f} s" for d, m in means.items())
        + f"; best decision interval: {pick} s"
    )


if __name__ == "__main__":
    main()
