"""Env overhead: one simulated episode through ``TrafficEnv`` vs stepping the bare engine.

Both runs use the same scenario, demand seed and signal decisions (FixedTime), and read the
same observations (vehicles and halting vehicles on every incoming lane each decision step);
the env adds the signal rules, the tensor observation, the records and the KPIs.  The bare
loop drives the scenario's engine directly (``Engine.load`` writes what that engine reads:
SUMO's route file, CityFlow's roadnet and config), including the engine's arrival bookkeeping.

    python benchmarks/traffic_env_overhead.py [scenario.yaml] [--set key=value ...]
    python benchmarks/traffic_env_overhead.py --set engine=cityflow
"""

from __future__ import annotations

import sys
import time

import numpy as np

from gridmarl.config import load_scenario
from gridmarl.experiment import run_episode
from gridmarl.traffic.engines import make_engine
from gridmarl.traffic.env import TrafficEnv
from gridmarl.traffic.roadnet import generate_demand
from gridmarl.traffic.rules import FixedTime


def bare_engine_s(env: TrafficEnv, seed: int, green_steps: int = 3) -> float:
    """Wall time [s] of the bare-engine loop with FixedTime's phases and yellow changes."""
    sc, lay = env.scenario, env.layout
    folder = env.folder / "bare"
    folder.mkdir(exist_ok=True)
    (folder / "grid.net.xml").write_bytes((env.folder / "grid.net.xml").read_bytes())
    t0 = time.perf_counter()
    eng = make_engine(sc.engine, lay)
    eng.load(folder, seed, generate_demand(lay.grid, sc.demand, sc.traffic.horizon_s, seed))
    n, tr, phase = len(lay.tls), sc.traffic, 0
    for i in range(n):
        eng.show_green(i, 0)
    for k in range(tr.steps):
        new = (k // green_steps) % 2
        if new != phase:
            for i in range(n):
                eng.show_yellow(i, phase, new)
            eng.advance(tr.yellow_s)
            for i in range(n):
                eng.show_green(i, new)
            eng.advance(tr.decision_s - tr.yellow_s)
        else:
            eng.advance(tr.decision_s)
        phase = new
        veh, halt = eng.lane_counts()
        np.asarray(veh).sum()
    wall = time.perf_counter() - t0
    eng.close()
    return wall


def main(argv: list[str]) -> None:
    path = argv[0] if argv and not argv[0].startswith("--") else "scenarios/traffic_grid_6x6.yaml"
    overrides = [a.split("=", 1)[0] + "=" + a.split("=", 1)[1] for a in argv if "=" in a]
    sc = load_scenario(path, overrides)
    env = TrafficEnv(sc)
    try:
        rows = []
        for rep in range(2):
            _, env_s = run_episode(env, FixedTime(green_s=30.0), seed=sc.seed)
            env._sims[0].engine.close()  # free libsumo's one slot (CityFlow: rebuilt next rep)
            bare_s = bare_engine_s(env, sc.seed)
            rows.append((env_s, bare_s))
            print(
                f"rep {rep}: env {env_s:.2f} s, bare engine {bare_s:.2f} s, "
                f"ratio {env_s / bare_s:.3f}"
            )
        env_s, bare_s = (min(x) for x in zip(*rows, strict=True))
        print(
            f"best of 2: env {env_s:.2f} s, bare {bare_s:.2f} s, ratio {env_s / bare_s:.3f} "
            f"({sc.traffic.horizon_s} simulated s, {len(env.layout.tls)} intersections)"
        )
    finally:
        env.close()


if __name__ == "__main__":
    main(sys.argv[1:])
