"""How much room is there next to MaxPressure on a traffic scenario?  Variants of the rule,
same demand seeds, same env.

    python benchmarks/traffic_rule_variants.py                       # traffic_grid_6x6.yaml
    python benchmarks/traffic_rule_variants.py --seeds 0 1 2 --margins 0 2 4 8 --holds 0 20 30

Every variant acts on the env's observation with ``traffic.pressure_features`` on (the
pressure of each phase and the time the current green has lasted); the plain MaxPressure row
uses the shipped ``MaxPressure`` controller, so the first two rows check each other.

* ``margin m, hold h``: switch to the highest-pressure phase only when its pressure exceeds
  the current phase's by more than ``m`` [veh] and the current green has lasted ``h`` [s]
  (hysteresis and a longer hold: fewer yellows).
* ``halting weight a``: the pressure computed from ``a`` × halting + (1 − a) × all vehicles
  per lane (queues instead of counts).

Prints, per variant, the mean ± std over the seeds of the average travel time of finished
trips [s], its ratio to MaxPressure's (same run), and the phase switches per hour.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from gridmarl.config import load_scenario
from gridmarl.core.types import Action
from gridmarl.traffic.env import TrafficEnv
from gridmarl.traffic.rules import MaxPressure


def run(env: TrafficEnv, seed: int, margin: float, hold_s: float, alpha: float) -> tuple:
    """One episode of the variant; returns (avg travel time [s], switches)."""
    mp = MaxPressure()
    mp.reset(env)
    obs = env.reset(seed=seed)
    p, lanes = env.n_phases, env.n_lanes
    switches = 0.0
    for _ in range(env.episode_len):
        veh = obs.local[..., p : p + lanes]
        halt = obs.local[..., p + lanes : p + 2 * lanes]
        pr = mp.model.pressures_of(alpha * halt + (1 - alpha) * veh)
        pr = pr.masked_fill(~obs.action_mask, -torch.inf)
        cur = obs.local[..., :p].argmax(-1)
        best = pr.argmax(-1)
        gain = pr.gather(-1, best[..., None])[..., 0] - pr.gather(-1, cur[..., None])[..., 0]
        green_s = obs.local[..., -1] * 60.0
        a = torch.where((gain > margin) & (green_s >= hold_s), best, cur)
        step = env.step(Action(discrete=a, continuous=torch.zeros(*a.shape, 0)))
        switches += float(step.info["switched"].sum())
        obs = step.obs
    return float(env.episode_kpis()[0]["avg_travel_time_s"]), switches


def run_rule(env: TrafficEnv, seed: int) -> tuple:
    """One episode of the shipped MaxPressure controller."""
    mp = MaxPressure()
    mp.reset(env)
    obs = env.reset(seed=seed)
    switches = 0.0
    for _ in range(env.episode_len):
        step = env.step(mp.act(obs))
        switches += float(step.info["switched"].sum())
        obs = step.obs
    return float(env.episode_kpis()[0]["avg_travel_time_s"]), switches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="scenarios/traffic_grid_6x6.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--margins", type=float, nargs="+", default=[2.0, 4.0, 8.0])
    ap.add_argument("--holds", type=float, nargs="+", default=[20.0, 30.0])
    ap.add_argument("--alphas", type=float, nargs="+", default=[1.0, 0.5])
    args = ap.parse_args()
    torch.set_num_threads(1)
    sc = load_scenario(args.scenario, ["traffic.pressure_features=true"])
    variants: list[tuple[str, float, float, float]] = [("MaxPressure (same rule)", 0, 0, 0)]
    variants += [(f"margin {m:g} veh", m, 0.0, 0.0) for m in args.margins]
    variants += [(f"hold {h:g} s", 0.0, h, 0.0) for h in args.holds]
    variants += [(f"halting weight {a:g}", 0.0, 0.0, a) for a in args.alphas]
    env = TrafficEnv(sc)
    try:
        ref = [run_rule(env, s) for s in args.seeds]
        base = float(np.mean([t for t, _ in ref]))
        hours = sc.traffic.horizon_s / 3600.0
        print(f"{'variant':<26} {'travel time [s]':>17} {'x MaxPressure':>14} {'switches/h':>11}")
        rows = [("MaxPressure (controller)", ref)]
        rows += [(n, [run(env, s, m, h, a) for s in args.seeds]) for n, m, h, a in variants]
        for name, res in rows:
            tt = np.array([t for t, _ in res])
            sw = np.mean([w for _, w in res]) / hours
            print(
                f"{name:<26} {tt.mean():>9.1f} ± {tt.std(ddof=1) if len(tt) > 1 else 0:4.1f}"
                f" {tt.mean() / base:>14.3f} {sw:>11.0f}",
                flush=True,
            )
    finally:
        env.close()


if __name__ == "__main__":
    main()
