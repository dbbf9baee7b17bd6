"""Where the travel time of a traffic scenario goes, per controller: SUMO's own trip records.

    python benchmarks/traffic_delay_breakdown.py                    # traffic_grid_6x6.yaml
    python benchmarks/traffic_delay_breakdown.py --seeds 0 --set traffic.horizon_s=1800

Runs every controller the scenario lists (``gridmarl simulate``'s controllers, same demand
seeds, in-process SUMO) with SUMO's ``--tripinfo-output`` and prints, per controller, the
means over the finished trips of all seeds:

* travel time = SUMO duration + departure delay [s] (``avg_travel_time_s``: the clock starts at
  the scheduled departure);
* time loss [s]: travel time lost against driving the route at the vehicle's desired speed
  (SUMO ``timeLoss``), split into waiting (speed below 0.1 m/s, ``waitingTime``) and the rest
  (slowing, accelerating, turning, car following, drivers' speed noise ``sigma``);
* stops per trip (``waitingCount``).

Then, per 10-min departure period, the travel time of every controller, and the travel time
of a "best per period" mix (each period's trips at the travel time of the period's best
controller: a bound on what choosing between the listed controllers by time of day gives,
ignoring that periods interact).  SUMO only: CityFlow has no trip records.
"""

from __future__ import annotations

import argparse
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import torch

from gridmarl.config import load_scenario
from gridmarl.traffic.env import TrafficEnv
from gridmarl.traffic.simulate import build_controller

PERIOD_S = 600
FIELDS = ("duration", "departDelay", "waitingTime", "waitingCount", "timeLoss", "depart")


def record_trips(scenario, seeds: list[int], folder: Path) -> dict[tuple[str, int], Path]:
    """Run every controller of ``scenario`` on every demand seed in one in-process env, each
    episode writing SUMO's trip records to its own file in ``folder``."""
    files: dict[tuple[str, int], Path] = {}
    env = TrafficEnv(scenario, num_envs=1, in_process=True)
    try:
        for entry in scenario.controllers:
            for seed in seeds:
                out = files[(entry.display_name, seed)] = (
                    folder / f"{entry.display_name}_{seed}.xml"
                )
                env.engine.extra_args = ["--tripinfo-output", str(out)]
                ctrl = build_controller(entry, env, seed)
                obs = env.reset(seed=seed)
                ctrl.reset(env)
                with torch.no_grad():
                    for _ in range(env.episode_len):
                        obs = env.step(ctrl.act(obs, deterministic=True)).obs
    finally:
        env.close()  # SUMO writes an episode's last records when it closes (or reloads)
    return files


def read_trips(path: Path, seed: int) -> pd.DataFrame:
    """One episode's trip records, with the travel time [s] as the env's KPI counts it."""
    rows = [{k: float(t.get(k)) for k in FIELDS} for t in ET.parse(path).getroot().iter("tripinfo")]
    df = pd.DataFrame(rows)
    df["travel_time_s"] = df["duration"] + df["departDelay"]
    df["seed"] = seed
    return df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="scenarios/traffic_grid_6x6.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the scenario's")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    torch.set_num_threads(1)
    sc = load_scenario(args.scenario, args.overrides)
    if sc.engine != "sumo":
        raise SystemExit(f"{args.scenario}: engine {sc.engine!r}; this benchmark needs sumo")
    seeds = args.seeds if args.seeds is not None else [sc.seed + k for k in range(sc.demand.seeds)]
    with tempfile.TemporaryDirectory() as tmp:
        files = record_trips(sc, seeds, Path(tmp))
        trips = {
            e.display_name: pd.concat(
                [read_trips(files[(e.display_name, s)], s) for s in seeds], ignore_index=True
            )
            for e in sc.controllers
        }
    print(f"seeds {seeds}; means over finished trips")
    print(
        f"{'controller':<16} {'trips':>6} {'travel [s]':>11} {'time loss':>10} "
        f"{'waiting':>8} {'other':>6} {'stops':>6}"
    )
    for name, df in trips.items():
        print(
            f"{name:<16} {len(df):>6} {df['travel_time_s'].mean():>11.1f} "
            f"{df['timeLoss'].mean():>10.1f} {df['waitingTime'].mean():>8.1f} "
            f"{(df['timeLoss'] - df['waitingTime']).mean():>6.1f} "
            f"{df['waitingCount'].mean():>6.2f}"
        )
    names = list(trips)
    periods = {n: df.groupby(df["depart"] // PERIOD_S)["travel_time_s"] for n, df in trips.items()}
    total = pd.DataFrame({n: g.sum() for n, g in periods.items()})
    count = pd.DataFrame({n: g.size() for n, g in periods.items()})
    mean = total / count
    n_trips = count.mean(axis=1)  # trips per period, mean over the controllers
    print(f"\ntravel time [s] by departure period ({PERIOD_S // 60} min)")
    print(f"{'period':<8} {'trips':>6} " + " ".join(f"{n:>14}" for n in names))
    for p in mean.index:
        cells = " ".join(f"{mean.loc[p, n]:>14.1f}" for n in names)
        print(f"{int(p * PERIOD_S // 60):>3} min  {n_trips.loc[p]:>6.0f} {cells}")
    best = (mean.min(axis=1) * n_trips).sum() / n_trips.sum()
    print(f"\nbest controller per period, mixed: {best:.1f} s")
    for n in names:
        tt = trips[n]["travel_time_s"].mean()
        print(f"  vs {n:<14} {best / tt:.3f} x")
    if "max_pressure" in trips:
        mp = trips["max_pressure"]
        cut = 0.05 * mp["travel_time_s"].mean()
        print(
            f"5 % of MaxPressure's travel time: {cut:.1f} s per trip = "
            f"{cut / mp['waitingTime'].mean():.0%} of its waiting time, "
            f"{cut / mp['timeLoss'].mean():.0%} of its time loss"
        )


if __name__ == "__main__":
    main()
