"""Rule baselines for signal control: FixedTime and MaxPressure.

Both read only the env's observation (``TrafficEnv`` layout: ``local = [phase one-hot P |
vehicles per incoming lane L | halting per incoming lane L]``) plus, for MaxPressure, the static
network topology taken from the env in ``reset``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gridmarl.core.controller import Controller
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.errors import ScenarioError
from gridmarl.core.types import Action, Observation
from gridmarl.traffic.roadnet import SignalLayout, turn_of


def critical_lane_shares(layout: SignalLayout, turning: tuple[float, float, float]) -> np.ndarray:
    """``[N, P]`` critical lane share y of every phase [-]: the largest share of an approach's
    flow carried by one lane that the phase serves (every movement leaving the lane green).

    A turn's share (``turning`` = left, straight, right) is spread evenly over the lanes it may
    leave from; lanes whose movements stay green in every phase (right turns that are always
    allowed) need no time and are left out.  Webster's equisaturation splits give each phase
    green in proportion to its y (Webster 1958; Roess, Prassas & McShane, Traffic Engineering,
    ch. 18: y = flow ratio of the critical lane group).
    """
    grid = layout.grid
    share = dict(zip(("turn_left", "go_straight", "turn_right"), turning, strict=True))
    n, p = len(layout.tls), layout.max_phases
    out = np.zeros((n, p))
    for i, movs in enumerate(layout.movements):
        lanes_of: dict[tuple[str, str], set[int]] = {}  # (road in, road out) -> lane slots
        for slot, road_out in movs:
            lanes_of.setdefault((layout.lanes[i][slot][0], road_out), set()).add(slot)
        load: dict[int, float] = {}
        served: dict[int, np.ndarray] = {}
        for m, (slot, road_out) in enumerate(movs):
            road_in = layout.lanes[i][slot][0]
            turn = turn_of(grid.roads[road_in], grid.roads[road_out])
            load[slot] = load.get(slot, 0.0) + share[turn] / len(lanes_of[(road_in, road_out)])
            green = layout.phase_movements[i, : layout.n_phases[i], m]
            served[slot] = served.get(slot, np.ones_like(green)) & green
        for slot, y in load.items():
            if served[slot].all():
                continue  # green in every phase
            out[i, : layout.n_phases[i]] = np.maximum(
                out[i, : layout.n_phases[i]], np.where(served[slot], y, 0.0)
            )
    return out


class FixedTime(Controller):
    """A fixed cycle, all intersections in step (no offsets).

    With one ``green_s`` (default 30 s) the cycle is the design's (``PhaseDesign.fixed_cycle``:
    both phases of the 2-phase design; leading lefts 2, 0, 3, 1 for 4 and 8 phases) and its
    splits are Webster's equisaturation splits for the scenario's turning shares
    (``critical_lane_shares``): the busiest phase gets ``green_s``, phase j ``green_s · y_j /
    max y``.  On the 2-phase design that is ``green_s`` for both phases.  With a list,
    ``green_s[j]`` is phase j's green [s] and the cycle shows the phases with a positive green
    in index order.  Greens are rounded to whole decision steps, at least
    ``traffic.min_green_steps`` (so that min green is served and the env's mask never holds a
    phase the cycle has left).

    Args:
        green_s: green time of the busiest phase [s], or one green time per phase [s].
        decision_s: length of an env step [s] (taken from the env in ``reset`` when possible).
    """

    name = "fixed_time"

    def __init__(self, green_s: float | list[float] = 30.0, decision_s: float = 10.0) -> None:
        if isinstance(green_s, list | tuple):
            self.green_s: float | list[float] = [float(g) for g in green_s]
        else:
            self.green_s = float(green_s)
        self.decision_s = float(decision_s)
        self._t = 0
        self._cycle: torch.Tensor | None = None  # [N, S] phase per step of the cycle
        self._length: torch.Tensor | None = None  # [N] steps of each cycle

    def greens(self, env: MultiAgentEnv) -> np.ndarray:
        """``[N, P]`` green time of every phase in the cycle [s] (0 = not shown)."""
        lay: SignalLayout = env.layout  # type: ignore[attr-defined]
        n, p = len(lay.tls), lay.max_phases
        if isinstance(self.green_s, list):
            if len(self.green_s) != p or min(self.green_s) < 0 or max(self.green_s) <= 0:
                raise ScenarioError(
                    f"controllers.fixed_time.options.green_s: {len(self.green_s)} values; "
                    f"allowed: one value, or one green time >= 0 per phase ({p}), not all 0"
                )
            return np.tile(np.asarray(self.green_s, np.float64), (n, 1))
        sc = env.scenario  # type: ignore[attr-defined]
        y = critical_lane_shares(lay, sc.demand.turning.probabilities())
        in_cycle = np.zeros((n, p), bool)
        in_cycle[:, list(lay.design.fixed_cycle)] = True
        y = np.where(in_cycle, y, 0.0)
        top = np.maximum(y.max(1, keepdims=True), 1e-12)
        return np.where(in_cycle & (y > 0), self.green_s * y / top, 0.0)

    def reset(self, env: MultiAgentEnv) -> None:
        """Rewind the cycle; read the step length and build each intersection's cycle from the
        env's layout and scenario."""
        self._t = 0
        sc = getattr(env, "scenario", None)
        if sc is not None:
            self.decision_s = float(sc.traffic.decision_s)
        lay = getattr(env, "layout", None)
        if lay is None or sc is None:
            self._cycle = None
            return
        greens = self.greens(env)
        least = sc.traffic.min_green_steps
        order = list(lay.design.fixed_cycle) if not isinstance(self.green_s, list) else []
        order += [j for j in range(lay.max_phases) if j not in order]
        cycles = [
            [j for j in order for _ in range(max(least, round(g[j] / self.decision_s))) if g[j] > 0]
            for g in greens
        ]
        width = max(len(c) for c in cycles)
        self._cycle = torch.tensor([c + [0] * (width - len(c)) for c in cycles])
        self._length = torch.tensor([len(c) for c in cycles])

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """Phase of step ``t mod cycle length`` of each intersection's cycle; without an env
        layout, phase ``(t // k) mod P`` with ``k = round(green_s / decision_s)``."""
        b, n = obs.batch_shape
        dev = obs.local.device
        if self._cycle is None:
            k = max(1, round(float(np.max(self.green_s)) / self.decision_s))
            p = obs.action_mask.shape[-1] if obs.action_mask is not None else 2
            phase = torch.full((n,), (self._t // k) % p)
        else:
            pos = self._t % self._length
            phase = self._cycle[torch.arange(n), pos]
        self._t += 1
        d = phase.long().to(dev).expand(b, n).clone()
        return Action(discrete=d, continuous=torch.zeros(b, n, 0, device=dev))


@dataclass
class PressureModel:
    """What MaxPressure needs to know about the network.

    Attributes:
        n_phases: P, green phases (max over intersections).
        n_lanes: L, incoming-lane slots per intersection.
        move_in: ``[N, M]`` long, incoming-lane slot of each movement (-1 = padding).
        move_out: ``[N * M, N * L]`` float, row = movement, weight 1 / lanes on every lane of
            the movement's outgoing road when that road enters another intersection (roads that
            leave the grid count as empty).
        phase_moves: ``[N, P, M]`` bool, movement has green (G or g) in the phase.
    """

    n_phases: int
    n_lanes: int
    move_in: torch.Tensor
    move_out: torch.Tensor
    phase_moves: torch.Tensor

    def __post_init__(self) -> None:
        # move_out as (column, weight) lists padded to the widest row: the outgoing term is then
        # a gather and a sum, not a BLAS matmul, whose thread pool would spin on the cores the
        # SUMO worker processes need (benchmarks/traffic_workers.py, 2 workers: median
        # efficiency 0.51 -> 0.78)
        nz = self.move_out != 0
        k = max(1, int(nz.sum(1).max())) if nz.numel() else 1
        order = torch.argsort(nz.to(torch.int8), dim=1, descending=True, stable=True)[:, :k]
        self._out_idx = order
        self._out_w = torch.gather(self.move_out, 1, order)

    @classmethod
    def from_layout(cls, lay: SignalLayout) -> PressureModel:
        """Build the model from a ``SignalLayout``."""
        n, m, lanes = len(lay.tls), lay.phase_movements.shape[2], lay.max_lanes
        slot_of: dict[str, list[int]] = {}
        for i, row in enumerate(lay.lanes):
            for j, (road, _) in enumerate(row):
                slot_of.setdefault(road, []).append(i * lanes + j)
        move_in = -torch.ones(n, m, dtype=torch.long)
        move_out = torch.zeros(n * m, n * lanes)
        for i, movs in enumerate(lay.movements):
            for k, (slot, out_road) in enumerate(movs):
                move_in[i, k] = slot
                down = slot_of.get(out_road, [])
                for s in down:
                    move_out[i * m + k, s] = 1.0 / len(down)
        return cls(lay.max_phases, lanes, move_in, move_out, torch.as_tensor(lay.phase_movements))

    def pressures(self, obs: Observation) -> torch.Tensor:
        """``[B, N, P]`` phase pressure: Σ over the phase's movements of (vehicles on the
        incoming lane − mean vehicles per lane of the outgoing road) [veh]."""
        p, lanes = self.n_phases, self.n_lanes
        return self.pressures_of(obs.local[..., p : p + lanes])

    def pressures_of(self, veh: torch.Tensor) -> torch.Tensor:
        """``[B, N, P]`` phase pressures [veh] from ``veh [B, N, L]``, the vehicles on every
        intersection's incoming-lane slots [veh]."""
        b, n, lanes = veh.shape
        dev = veh.device
        move_in = self.move_in.to(dev)
        m = move_in.shape[1]
        x_in = torch.gather(veh, 2, move_in.clamp(min=0).expand(b, n, m))
        x_in = x_in * (move_in >= 0)
        flat = veh.reshape(b, n * lanes)
        idx, wt = self._out_idx.to(dev), self._out_w.to(dev)
        x_out = (flat[:, idx] * wt).sum(-1).reshape(b, n, m)
        w = x_in - x_out  # [B, N, M]
        return (self.phase_moves.to(dev).float()[None] * w[:, :, None, :]).sum(-1)


class MaxPressure(Controller):
    """Max-pressure control: each intersection shows the allowed phase of largest pressure.

    Varaiya, P. (2013). Max pressure control of a network of signalized intersections.
    Transportation Research Part C 36, 177-195 (Eq. 5: pressure of a stage = Σ over its movements
    of the weight x_l − Σ_m r(l, m) x_m; here vehicle counts, turning split spread evenly over
    the lanes of the outgoing road).  Ties keep the current phase, then the lowest index.

    Args:
        model: network model; taken from the env's ``layout`` in ``reset`` when None.
    """

    name = "max_pressure"

    def __init__(self, model: PressureModel | None = None) -> None:
        self.model = model

    def reset(self, env: MultiAgentEnv) -> None:
        """Read the network from the env (``TrafficEnv.layout``)."""
        lay = getattr(env, "layout", None)
        if lay is not None:
            self.model = PressureModel.from_layout(lay)
        elif self.model is None:
            raise TypeError("MaxPressure needs an env with a signal layout (TrafficEnv)")

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """Argmax of the masked pressures."""
        if self.model is None:
            raise RuntimeError("MaxPressure.reset(env) was not called")
        pr = self.model.pressures(obs)
        p = self.model.n_phases
        current = obs.local[..., :p]  # one-hot [B, N, P]
        score = pr + 1e-6 * current  # tie -> stay
        if obs.action_mask is not None:
            score = score.masked_fill(~obs.action_mask, float("-inf"))
        d = score.argmax(-1)
        b, n = obs.batch_shape
        return Action(discrete=d, continuous=torch.zeros(b, n, 0, device=d.device))


def make_rule(name: str, options: dict | None = None) -> Controller:
    """A rule controller by scenario name: ``fixed_time`` (option ``green_s``) or
    ``max_pressure``."""
    options = dict(options or {})
    if name == "fixed_time":
        return FixedTime(green_s=fixed_time_green(options.pop("green_s", 30.0)))
    if name == "max_pressure":
        return MaxPressure()
    raise KeyError(name)


def fixed_time_green(value: object) -> float | list[float]:
    """``fixed_time``'s ``green_s`` option: one number or a list of numbers [s]."""
    if isinstance(value, list | tuple):
        return [float(v) for v in value]
    return float(value)  # type: ignore[arg-type]


def one_hot_phase(phase: np.ndarray, p: int) -> np.ndarray:
    """``[..., P]`` float one-hot of integer phases (helper for hand-built observations)."""
    return np.eye(p, dtype=np.float32)[phase]
