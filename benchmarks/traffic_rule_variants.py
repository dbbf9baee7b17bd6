"""How much room is there next to MaxPressure on a traffic scenario?  Variants of the rule,
same demand seeds, same env.

    python benchmarks/traffic_rule_variants.py                       # traffic_grid_6x6.yaml
    python benchmarks/traffic_rule_variants.py --seeds 0 1 2 --margins 0 2 4 8 --holds 0 20 30

Every variant acts on the env's observation with ``traffic.pressure_features`` on (the
pressure of each phase and the time the current green has lasted); the plain MaxPressure row
uses the shipped ``MaxPressure`` controller, so the first two rows check each other.

Switching less:

* ``margin m``: switch to the highest-pressure phase only when its pressure exceeds the current
  phase's by more than ``m`` [veh] (hysteresis: fewer yellows).
* ``hold h``: switch only once the current green has lasted ``h`` [s].

Other pressures:

* ``halting weight a``: the pressure computed from ``a`` × halting + (1 − a) × all vehicles per
  lane (queues instead of counts).
* ``incoming only``: the pressure without its outgoing-road term.  Where every phase feeds
  every outgoing road equally (two phases, each serving straight, left and right from two
  opposite approaches) the term is the same for all phases and this row equals MaxPressure.
* ``turning-ratio outgoing term``: Varaiya's weight x_l − Σ r(l, m) x_m with r the scenario's
  turning shares (``demand.turning``) instead of 1 per movement.
* ``Advanced-MP`` (Zhang et al. 2022, "Expression might be enough", ICML): keep the current
  phase while its moving vehicles (vehicles − halting, summed over the lanes with green) are
  at least the largest queue pressure (``halting weight 1``'s pressure); otherwise switch to
  the phase of largest queue pressure.
* ``look-ahead g``: each approach also counts ``g`` × the vehicles on the upstream
  intersection's incoming lanes whose movement has green there and leads onto the approach
  (the platoon that is about to arrive).

Coordination:

* ``coordination bias k``: ``k`` [veh] added to the pressure of the phase that a 40 s
  common-cycle plan with half-cycle alternate offsets (checkerboard) shows now: the plan that
  ``sf_plan`` executes on this grid (``docs/domains/traffic.md``); ``k`` large = that plan.

Prints, per variant, the mean ± std over the seeds of the average travel time of finished
trips [s], its ratio to MaxPressure's (same run), and the phase switches per hour.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch

from gridmarl.config import load_scenario
from gridmarl.core.types import Action, Observation
from gridmarl.traffic.env import TrafficEnv
from gridmarl.traffic.roadnet import SignalLayout, turn_of
from gridmarl.traffic.rules import MaxPressure, PressureModel

Rule = Callable[[Observation, int], torch.Tensor]  # (obs, step) -> [B, N] phases
TURN_KEY = {"turn_left": "left", "go_straight": "straight", "turn_right": "right"}


class Parts:
    """The observation's pieces and the network matrices the variants need."""

    def __init__(self, env: TrafficEnv) -> None:
        lay: SignalLayout = env.layout
        self.p, self.lanes = env.n_phases, env.n_lanes
        self.model = PressureModel.from_layout(lay)
        n, m, lanes = len(lay.tls), self.model.move_in.shape[1], self.lanes
        self.n, self.m = n, m
        self.cols = lay.grid.cfg.cols
        slot_of: dict[str, list[int]] = {}
        for i, row in enumerate(lay.lanes):
            for j, (road, _) in enumerate(row):
                slot_of.setdefault(road, []).append(i * lanes + j)
        share = env.scenario.demand.turning
        moves_of_slot: dict[tuple[int, int], int] = {}
        for i, movs in enumerate(lay.movements):
            for slot, _ in movs:
                moves_of_slot[(i, slot)] = moves_of_slot.get((i, slot), 0) + 1
        # turning-ratio outgoing weights [N*M, N*L]; upstream feed [N*L (lane fed), N*M]
        self.turn_out = torch.zeros(n * m, n * lanes)
        self.feed = torch.zeros(n * lanes, n * m)
        self.src = torch.zeros(n * m, dtype=torch.long)
        self.phase_lanes = torch.zeros(n, self.p, lanes)  # lane has green in the phase
        for i, movs in enumerate(lay.movements):
            for k, (slot, out_road) in enumerate(movs):
                self.src[i * m + k] = i * lanes + slot
                self.phase_lanes[i, :, slot] += self.model.phase_moves[i, :, k].float()
                in_road = lay.grid.roads[lay.lanes[i][slot][0]]
                turn = TURN_KEY[turn_of(in_road, lay.grid.roads[out_road])]
                down = slot_of.get(out_road, [])
                for s in down:
                    self.turn_out[i * m + k, s] = getattr(share, turn) / len(down)
                    self.feed[s, i * m + k] = 1.0 / moves_of_slot[(i, slot)] / len(down)

        self.phase_lanes = self.phase_lanes.clamp(max=1.0)
        # MaxPressure's model with another outgoing term: none, or weighted by turning shares
        mi, pm = self.model.move_in, self.model.phase_moves
        self.no_out = PressureModel(self.p, lanes, mi, torch.zeros_like(self.turn_out), pm)
        self.turning = PressureModel(self.p, lanes, mi, self.turn_out, pm)

    def split(self, obs: Observation) -> tuple[torch.Tensor, ...]:
        """(vehicles [B, N, L], halting [B, N, L], current phase [B, N], green [s] [B, N])."""
        p, lanes = self.p, self.lanes
        loc = obs.local
        veh, halt = loc[..., p : p + lanes], loc[..., p + lanes : p + 2 * lanes]
        return veh, halt, loc[..., :p].argmax(-1), loc[..., -1] * 60.0

    def arriving(self, veh: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        """``[B, N, L]``: vehicles upstream, on a movement with green there, that lead onto
        each incoming lane."""
        b = veh.shape[0]
        x = veh.reshape(b, -1)[:, self.src]
        green = self.model.phase_moves.float()[torch.arange(self.n)[None, :], cur]
        return ((x * green.reshape(b, -1)) @ self.feed.T).reshape(b, self.n, self.lanes)

    def plan_phase(self, step: int, cycle_steps: int = 4) -> torch.Tensor:
        """``[N]`` phase of the common-cycle checkerboard plan at decision ``step``."""
        i = torch.arange(self.n)
        half = cycle_steps // 2
        offset = ((i // self.cols + i % self.cols) % 2) * half
        return ((step + offset) // half) % 2


def choose(score: torch.Tensor, obs: Observation, cur: torch.Tensor) -> torch.Tensor:
    """Masked argmax; ties keep the current phase (as ``MaxPressure``)."""
    score = score + 1e-6 * torch.nn.functional.one_hot(cur, score.shape[-1])
    return score.masked_fill(~obs.action_mask, -torch.inf).argmax(-1)


def variants(parts: Parts, args: argparse.Namespace) -> list[tuple[str, Rule]]:
    """Every variant, named."""
    out: list[tuple[str, Rule]] = []

    def pressure(x: torch.Tensor) -> torch.Tensor:
        return parts.model.pressures_of(x)

    def switch_less(margin: float, hold_s: float) -> Rule:
        def rule(obs: Observation, step: int) -> torch.Tensor:
            veh, _, cur, green_s = parts.split(obs)
            pr = pressure(veh).masked_fill(~obs.action_mask, -torch.inf)
            best = pr.argmax(-1)
            gain = pr.gather(-1, best[..., None])[..., 0] - pr.gather(-1, cur[..., None])[..., 0]
            return torch.where((gain > margin) & (green_s >= hold_s), best, cur)

        return rule

    def weighted(alpha: float) -> Rule:
        def rule(obs: Observation, step: int) -> torch.Tensor:
            veh, halt, cur, _ = parts.split(obs)
            return choose(pressure(alpha * halt + (1 - alpha) * veh), obs, cur)

        return rule

    def incoming_only(obs: Observation, step: int) -> torch.Tensor:
        veh, _, cur, _ = parts.split(obs)
        return choose(parts.no_out.pressures_of(veh), obs, cur)

    def turning_ratio(obs: Observation, step: int) -> torch.Tensor:
        veh, _, cur, _ = parts.split(obs)
        return choose(parts.turning.pressures_of(veh), obs, cur)

    def advanced_mp(obs: Observation, step: int) -> torch.Tensor:
        veh, halt, cur, _ = parts.split(obs)
        queue = pressure(halt).masked_fill(~obs.action_mask, -torch.inf)
        moving = torch.einsum("npl,bnl->bnp", parts.phase_lanes, veh - halt)
        moving = moving.gather(-1, cur[..., None])[..., 0]
        return torch.where(moving >= queue.max(-1).values, cur, queue.argmax(-1))

    def look_ahead(g: float) -> Rule:
        def rule(obs: Observation, step: int) -> torch.Tensor:
            veh, _, cur, _ = parts.split(obs)
            return choose(parts.no_out.pressures_of(veh + g * parts.arriving(veh, cur)), obs, cur)

        return rule

    def coordination(k: float) -> Rule:
        def rule(obs: Observation, step: int) -> torch.Tensor:
            veh, _, cur, _ = parts.split(obs)
            plan = torch.nn.functional.one_hot(parts.plan_phase(step), parts.p)
            return choose(pressure(veh) + k * plan, obs, cur)

        return rule

    out.append(("MaxPressure (same rule)", switch_less(0.0, 0.0)))
    out += [(f"margin {m:g} veh", switch_less(m, 0.0)) for m in args.margins]
    out += [(f"hold {h:g} s", switch_less(0.0, h)) for h in args.holds]
    out += [(f"halting weight {a:g}", weighted(a)) for a in args.alphas]
    out.append(("incoming only", incoming_only))
    out.append(("turning-ratio outgoing term", turning_ratio))
    out.append(("Advanced-MP", advanced_mp))
    out += [(f"look-ahead {g:g}", look_ahead(g)) for g in args.look_ahead]
    out += [(f"coordination bias {k:g} veh", coordination(k)) for k in args.coordination]
    return out


def episode(env: TrafficEnv, seed: int, act: Callable[[Observation, int], Action]) -> tuple:
    """One episode; returns (avg travel time of finished trips [s], phase switches)."""
    obs = env.reset(seed=seed)
    switches = 0.0
    for t in range(env.episode_len):
        step = env.step(act(obs, t))
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
    ap.add_argument("--look-ahead", type=float, nargs="+", default=[0.25, 0.5])
    ap.add_argument("--coordination", type=float, nargs="+", default=[2.0, 5.0, 10.0, 1000.0])
    ap.add_argument("--only", default="", help="run the variants whose name contains this")
    args = ap.parse_args()
    torch.set_num_threads(1)
    sc = load_scenario(args.scenario, ["traffic.pressure_features=true"])
    env = TrafficEnv(sc)
    try:
        mp = MaxPressure()
        mp.reset(env)
        parts = Parts(env)
        ref = [episode(env, s, lambda o, t: mp.act(o)) for s in args.seeds]
        base = float(np.mean([t for t, _ in ref]))
        hours = sc.traffic.horizon_s / 3600.0
        print(f"{'variant':<30} {'travel time [s]':>17} {'x MaxPressure':>14} {'switches/h':>11}")

        def show(label: str, res: list[tuple[float, float]]) -> None:
            tt = np.array([t for t, _ in res])
            sd = tt.std(ddof=1) if len(tt) > 1 else 0.0
            sw = np.mean([w for _, w in res]) / hours
            print(
                f"{label:<30} {tt.mean():>9.1f} ± {sd:4.1f} {tt.mean() / base:>14.3f} {sw:>11.0f}",
                flush=True,
            )

        show("MaxPressure (controller)", ref)
        for name, rule in variants(parts, args):
            if args.only not in name:
                continue

            def act(o: Observation, t: int, rule: Rule = rule) -> Action:
                a = rule(o, t)
                return Action(discrete=a, continuous=torch.zeros(*a.shape, 0))

            show(name, [episode(env, s, act) for s in args.seeds])
    finally:
        env.close()


if __name__ == "__main__":
    main()
