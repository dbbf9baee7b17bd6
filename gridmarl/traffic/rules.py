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
from gridmarl.core.types import Action, Observation
from gridmarl.traffic.roadnet import SignalLayout


class FixedTime(Controller):
    """Cycle through the green phases, each held ``green_s`` [s], all intersections in step.

    Args:
        green_s: green time per phase [s], rounded to whole decision steps (at least one).
        decision_s: length of an env step [s] (taken from the env in ``reset`` when possible).
    """

    name = "fixed_time"

    def __init__(self, green_s: float = 30.0, decision_s: float = 10.0) -> None:
        self.green_s = float(green_s)
        self.decision_s = float(decision_s)
        self._t = 0
        self._n_phases: torch.Tensor | None = None

    def reset(self, env: MultiAgentEnv) -> None:
        """Rewind the cycle; read the step length and phases per intersection from the env."""
        self._t = 0
        sc = getattr(env, "scenario", None)
        if sc is not None:
            self.decision_s = float(sc.traffic.decision_s)
        lay = getattr(env, "layout", None)
        if lay is not None:
            self._n_phases = torch.as_tensor(lay.n_phases)

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """Phase ``(t // k) mod n_phases`` with ``k = round(green_s / decision_s)`` steps."""
        b, n = obs.batch_shape
        k = max(1, round(self.green_s / self.decision_s))
        if self._n_phases is None:
            p = obs.action_mask.shape[-1] if obs.action_mask is not None else 2
            n_ph = torch.full((n,), p)
        else:
            n_ph = self._n_phases
        phase = (self._t // k) % n_ph.to(obs.local.device)
        self._t += 1
        d = phase.long().expand(b, n).clone()
        return Action(discrete=d, continuous=torch.zeros(b, n, 0, device=obs.local.device))


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
        return FixedTime(green_s=float(options.pop("green_s", 30.0)))
    if name == "max_pressure":
        return MaxPressure()
    raise KeyError(name)


def one_hot_phase(phase: np.ndarray, p: int) -> np.ndarray:
    """``[..., P]`` float one-hot of integer phases (helper for hand-built observations)."""
    return np.eye(p, dtype=np.float32)[phase]
