"""One signal-controlled simulation: engine + signal rules + trip bookkeeping (numpy only).

``SignalSim`` is what the env steps, in process or inside a worker process (``worker_main``), so
the worker never imports torch.

Signal rules of a step of ``decision_s`` [s] (all intersections at once):

1. Requested phase a_i; if it is not allowed by the mask (phase beyond the intersection's
   phases, or min green not yet served), the current phase is kept (counted as overridden).
2. Where a_i differs from the current phase: yellow for ``yellow_s`` [s], all red for
   ``all_red_s`` [s], then green a_i for the rest of the step; elsewhere the current green
   continues for the whole step.
3. Mask for the next step: phase j allowed iff j < n_phases_i and (j is current, or the current
   green has been shown at least ``min_green_s`` [s]).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from gridmarl.core.seeding import sub_seed
from gridmarl.traffic.config import TrafficScenario
from gridmarl.traffic.engines import make_engine
from gridmarl.traffic.kpis import episode_kpis
from gridmarl.traffic.roadnet import (
    Grid,
    SignalLayout,
    build_network,
    generate_demand,
    phase_design,
    read_signal_layout,
)


def demand_seed(seed: int, env_index: int) -> int:
    """Demand seed of parallel environment ``env_index`` when the env is reset with ``seed``:
    environment 0 uses ``seed`` itself (so ``simulate``'s seeds are the scenario's), the others
    ``core.seeding.sub_seed``, a seed of the same role (docs/protocol.md)."""
    if env_index == 0:
        return int(seed)
    return sub_seed(int(seed), int(env_index))


class SignalSim:
    """A traffic simulation with the env's signal rules.

    Args:
        scenario: the traffic scenario.
        layout: signal layout of the network (``roadnet.read_signal_layout``).
        folder: working folder holding ``grid.net.xml``; the demand files are written here.
    """

    def __init__(self, scenario: TrafficScenario, layout: SignalLayout, folder: Path) -> None:
        self.scenario = scenario
        self.layout = layout
        self.folder = Path(folder)
        self.engine = make_engine(scenario.engine, layout)
        n, p = len(layout.tls), layout.max_phases
        self.n, self.p = n, p
        self.allowed = np.arange(p)[None, :] < np.asarray(layout.n_phases)[:, None]  # [N, P]
        self.t_s = 0
        self.step_idx = 0
        self.phase = np.zeros(n, np.int64)
        self.green_since = np.zeros(n, np.int64)
        self._rec: dict[str, list[np.ndarray]] = {}
        self._depart = np.zeros(0)
        self._free = np.zeros(0)
        self._arrive = np.zeros(0)
        self._halting: list[np.ndarray] = []
        self.teleports = 0  # [veh]; stays 0 on an engine without teleports

    # -- episode ------------------------------------------------------------------------------
    def reset(self, seed: int) -> dict[str, Any]:
        """Draw the demand of ``seed``, (re)start the engine on it, all intersections on
        phase 0."""
        sc = self.scenario
        grid = self.layout.grid
        trips = generate_demand(grid, sc.demand, sc.traffic.horizon_s, seed)
        self._depart = np.array([v.depart_s for v in trips], np.float64)
        self._free = np.array([grid.free_flow_time_s(v.route) for v in trips], np.float64)
        self._arrive = np.full(len(trips), np.nan)
        self.engine.load(self.folder, seed, trips)
        self.t_s = 0
        self.step_idx = 0
        self.phase[:] = 0
        # as if phase 0 had been green long enough: every phase may be chosen at the first step
        self.green_since[:] = -sc.traffic.min_green_s
        for i in range(self.n):
            self.engine.show_green(i, 0)
        self._rec = {
            k: []
            for k in ("time_s", "phase", "switched", "overridden", "vehicles_veh", "halting_veh")
        }
        self._halting = []
        self.teleports = 0
        return self._observe()

    def mask(self) -> np.ndarray:
        """``[N, P]`` bool: phases that may be requested now."""
        held = (self.t_s - self.green_since) >= self.scenario.traffic.min_green_s
        cur = np.zeros((self.n, self.p), bool)
        cur[np.arange(self.n), self.phase] = True
        return self.allowed & (cur | held[:, None])

    def _observe(self) -> dict[str, Any]:
        veh, halt = self.engine.lane_counts()
        return {
            "phase": self.phase.copy(),
            "veh": veh,
            "halt": halt,
            "mask": self.mask(),
            "t_s": self.t_s,
            "green_s": self.t_s - self.green_since,
        }

    def step(self, actions: np.ndarray) -> dict[str, Any]:
        """Apply ``[N]`` requested phases for one decision step."""
        tr = self.scenario.traffic
        if self.t_s >= tr.horizon_s:
            raise RuntimeError("the episode is over (fixed horizon); call reset")
        a = np.asarray(actions, np.int64).reshape(self.n)
        mask = self.mask()
        ok = (a >= 0) & (a < self.p)
        ok[ok] = mask[np.arange(self.n)[ok], a[ok]]
        a = np.where(ok, a, self.phase)
        switch = a != self.phase
        t_start = self.t_s
        arrived: list[tuple[str, int]] = []
        if switch.any() and tr.yellow_s > 0:
            for i in np.flatnonzero(switch):
                self.engine.show_yellow(int(i), int(self.phase[i]), int(a[i]))
            got, tp = self.engine.advance(tr.yellow_s)
            arrived += got
            self.teleports += tp or 0
        if switch.any() and tr.all_red_s > 0:
            for i in np.flatnonzero(switch):
                self.engine.show_all_red(int(i))
            got, tp = self.engine.advance(tr.all_red_s)
            arrived += got
            self.teleports += tp or 0
        for i in np.flatnonzero(switch):
            self.engine.show_green(int(i), int(a[i]))
        rest = tr.decision_s - (tr.change_s if switch.any() else 0)
        got, tp = self.engine.advance(rest)
        arrived += got
        self.teleports += tp or 0
        self.t_s = t_start + tr.decision_s
        self.green_since = np.where(switch, t_start + tr.change_s, self.green_since)
        self.phase = a
        self.step_idx += 1
        for vid, t in arrived:
            self._arrive[int(vid[1:])] = t
        obs = self._observe()
        halt_i = obs["halt"].sum(1)
        self._halting.append(halt_i)
        r = self._rec
        r["time_s"].append(np.full(self.n, t_start))
        r["phase"].append(a.copy())
        r["switched"].append(switch)
        r["overridden"].append(~ok)
        r["vehicles_veh"].append(obs["veh"].sum(1))
        r["halting_veh"].append(halt_i)
        obs.update(
            reward=-halt_i,
            arrived=len(arrived),
            switched=switch,
            overridden=~ok,
            done=self.t_s >= tr.horizon_s,
        )
        return obs

    # -- results ------------------------------------------------------------------------------
    def records(self) -> dict[str, np.ndarray]:
        """``[steps, N]`` arrays of the episode so far (plus ``agent`` names)."""
        return {k: np.stack(v) if v else np.zeros((0, self.n)) for k, v in self._rec.items()}

    def kpis(self) -> dict[str, float]:
        """KPIs of the episode so far (``gridmarl.traffic.kpis``), plus trip counts."""
        halting = np.stack(self._halting) if self._halting else np.zeros((0, self.n))
        out = episode_kpis(self._depart, self._arrive, self._free, float(self.t_s), halting)
        out["trips_scheduled_veh"] = float((self._depart < self.t_s).sum())
        out["teleports_veh"] = float(self.teleports) if self.engine.teleports else float("nan")
        return out

    def close(self) -> None:
        """Stop the engine."""
        self.engine.close()


# --------------------------------------------------------------------------------------------
# Worker process
# --------------------------------------------------------------------------------------------
def worker_main(conn, scenario: TrafficScenario, folder: str, net_path: str) -> None:
    """Serve one ``SignalSim`` over a pipe: ``(command, argument)`` in, result out.

    Commands: ``reset`` (seed), ``step`` (actions), ``records``, ``kpis``, ``close``.
    An exception is sent back as ``("error", message)``.
    """
    sim = None
    try:
        grid = Grid.build(scenario.grid)
        layout = read_signal_layout(net_path, grid, phase_design(scenario.traffic.phases))
        sim = SignalSim(scenario, layout, Path(folder))
        conn.send(("ok", None))
    except Exception as exc:  # report to the parent instead of dying silently
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            cmd, arg = conn.recv()
        except EOFError:
            break
        try:
            if cmd == "reset":
                conn.send(("ok", sim.reset(arg)))
            elif cmd == "step":
                conn.send(("ok", sim.step(arg)))
            elif cmd == "records":
                conn.send(("ok", sim.records()))
            elif cmd == "kpis":
                conn.send(("ok", sim.kpis()))
            elif cmd == "close":
                sim.close()
                conn.send(("ok", None))
                break
            else:
                conn.send(("error", f"unknown command {cmd!r}"))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    conn.close()


class NodeSim:
    """A ``SignalSim`` in a fresh working folder of the machine it is built on: what a Ray
    actor runs (``train.workers: {backend: ray}``, ``core.cluster.RayWorker``), so a worker on
    another node writes its own network and demand files there.  The network is built from
    the scenario as ``prepare_folder`` builds it for process workers, so the same seed gives
    the same episode on either backend.  Methods as ``worker_main``'s commands."""

    def __init__(self, scenario: TrafficScenario) -> None:
        self.folder, _, layout = prepare_folder(scenario)
        try:
            self.sim = SignalSim(scenario, layout, self.folder)
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def reset(self, seed: int) -> dict[str, Any]:
        """``SignalSim.reset``: a new episode of demand ``seed``."""
        return self.sim.reset(seed)

    def step(self, actions: np.ndarray) -> dict[str, Any]:
        """``SignalSim.step``: ``actions [N]`` requested phases."""
        return self.sim.step(actions)

    def records(self) -> dict[str, np.ndarray]:
        """``SignalSim.records`` of the current episode."""
        return self.sim.records()

    def kpis(self) -> dict[str, float]:
        """``SignalSim.kpis`` of the current episode."""
        return self.sim.kpis()

    def close(self) -> None:
        """Stop the engine and delete the working folder."""
        try:
            self.sim.close()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def prepare_folder(
    scenario: TrafficScenario, root: str | Path | None = None
) -> tuple[Path, Path, SignalLayout]:
    """A fresh working folder with the SUMO network of ``scenario`` and its layout."""
    folder = Path(tempfile.mkdtemp(prefix="gridmarl_traffic_", dir=root))
    net_file = None
    if scenario.grid.net_file is not None:
        from gridmarl.config import resolve_path

        net_file = resolve_path(scenario, scenario.grid.net_file)
    try:
        design = phase_design(scenario.traffic.phases)
        _, net, layout = build_network(scenario.grid, folder, net_file, design)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, net, layout
