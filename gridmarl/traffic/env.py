"""Traffic-signal control of a grid on a real simulator, as a ``MultiAgentEnv``.

One agent per intersection (agent ``i = r * cols + c``, named by its SUMO id ``A0``, ``B0``,
...).  ``B`` parallel simulations: in this process (``B = 1``, the default for one env) or one
worker process each (``in_process=False``; libsumo runs one simulation per process).

| item | shape | meaning |
|---|---|---|
| action ``discrete`` | ``[B, N]`` long | next green phase of the design (``traffic.phases``) |
| obs ``local`` | ``[B, N, P + 2L (+P+1)]`` | phase one-hot, vehicles, halting per lane [veh] (+) |
| obs ``state`` | same | same as ``local`` |
| obs ``global_`` | ``[B, 3]`` | time / horizon [-], mean vehicles, mean halting [veh] |
| obs ``action_mask`` | ``[B, N, P]`` bool | phase exists here and min green is served |
| obs ``forecast`` | ``[B, N, 0, 0]`` | none |
| reward | ``[B, N]`` | −(halting vehicles on the incoming lanes) after the step [veh] |
| team_reward | ``[B]`` | sum of the rewards |
| info | ``[B]`` each | ``arrived_veh``, ``halting_veh``, ``switched``, ``overridden`` |

Incoming lanes are ordered by approach N, E, S, W, rightmost lane first, zero-padded to L;
"vehicles per intersection" in ``global_`` are sums over its incoming lanes.

(+) With ``traffic.pressure_features``, ``P + 1`` more: the pressure of each phase [veh] and
the green time so far [min]; with ``traffic.neighbor_features`` also, per neighbour N, E, S, W,
its phase one-hot, its phase pressures [veh] and its green time [min] (``4 (2P + 1)``; zeros
where there is no neighbour).  The pressure of a phase is MaxPressure's (``PressureModel``,
Varaiya 2013 Eq. 5): over the phase's movements, vehicles on the incoming lane minus the mean
vehicles per lane of the outgoing road, i.e. what the intersection's own entry and exit
detectors count; the green time is the time since the intersection's current green began.

Each step lasts ``traffic.decision_s`` [s]; a phase change starts with ``traffic.yellow_s`` [s]
of yellow and ``traffic.all_red_s`` [s] of all red inside the step; a green is shown at least
``traffic.min_green_s`` [s] (masked, and a masked request keeps the current phase).  The
episode has a fixed horizon (``traffic.horizon_s``); ``truncated`` (a time limit, never
``terminated``) is True at the last step for every environment; no auto-reset (call ``reset``).

Graph (``spec.neighbors`` / ``spec.groups``; the scenario's ``graph`` block overrides both):
neighbours are the road adjacency, the adjacent intersections N, E, S, W (``-1`` at the grid
edge; ``graph.neighbors: roads``).  Groups: ``boundary`` (default), 0 for an intersection on
the grid's edge (some approach comes from outside: demand enters there) and 1 for an interior
one (``Grid.boundary_groups``); ``blocks``, ``GROUP_BLOCK`` × ``GROUP_BLOCK`` blocks numbered
row-major from the south-west corner (``Grid.groups``).  ``traffic.neighbor_features`` always
reads the road adjacency.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from gridmarl.config import WorkersConfig
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.graph import check_groups, check_neighbors
from gridmarl.core.types import Action, AgentSpec, Observation, PolicyShape, Step
from gridmarl.traffic.config import TrafficScenario
from gridmarl.traffic.engines import Engine
from gridmarl.traffic.roadnet import Grid, SignalLayout, phase_design
from gridmarl.traffic.rules import PressureModel
from gridmarl.traffic.sim import NodeSim, SignalSim, demand_seed, prepare_folder, worker_main

if TYPE_CHECKING:
    from gridmarl.core.cluster import RayWorker

GROUP_BLOCK = 3  # intersections per side of a group block


def layout_policy_shape(
    n_phases: int, n_lanes: int, pressure_features: bool, neighbor_features: bool
) -> PolicyShape:
    """The sizes a policy must match (``AgentSpec`` without the agents; module docstring) for
    ``n_phases`` green phases and ``n_lanes`` incoming lanes per intersection: the local
    features by name, the same ``state``, a global token of 3, one discrete choice per phase."""
    p = n_phases
    names = (
        [f"phase_{k}" for k in range(p)]
        + [f"vehicles_lane_{j}" for j in range(n_lanes)]
        + [f"halting_lane_{j}" for j in range(n_lanes)]
    )
    if pressure_features:
        names += [f"pressure_phase_{k}" for k in range(p)] + ["green_min"]
    if neighbor_features:
        for d in "NESW":
            names += [f"{d}_phase_{k}" for k in range(p)]
            names += [f"{d}_pressure_phase_{k}" for k in range(p)] + [f"{d}_green_min"]
    return PolicyShape(
        local_dim=len(names),
        forecast_len=0,
        forecast_dim=0,
        state_dim=len(names),
        global_dim=3,
        n_discrete=p,
        n_continuous=0,
        local_features=tuple(names),
    )


def policy_shape(scenario: TrafficScenario) -> PolicyShape:
    """What a learned policy must match to act in this scenario's env, from the scenario
    alone (no network file written, no simulator): every intersection of the grid has the
    green phases of the design ``traffic.phases`` and ``grid.lanes`` lanes on each incoming
    road (``roadnet.read_signal_layout``)."""
    grid = Grid.build(scenario.grid)
    lanes = max(len(grid.incoming(i)) for i in grid.intersections) * scenario.grid.lanes
    return layout_policy_shape(
        phase_design(scenario.traffic.phases).n_phases,
        lanes,
        scenario.traffic.pressure_features,
        scenario.traffic.neighbor_features,
    )


def scenario_groups(scenario: TrafficScenario, grid: Grid) -> np.ndarray:
    """``[N]`` intersection groups (``graph.groups``): ``boundary`` (default), ``blocks`` or
    the scenario's list (module docstring)."""
    rule = scenario.graph_rule("groups")
    if isinstance(rule, list):
        return check_groups(rule, len(grid.intersections))
    return grid.groups(GROUP_BLOCK) if rule == "blocks" else grid.boundary_groups()


def scenario_neighbors(scenario: TrafficScenario, grid: Grid) -> np.ndarray:
    """``[N, K]`` neighbours (``graph.neighbors``): the road adjacency N, E, S, W (``roads``,
    default) or the scenario's lists."""
    rule = scenario.graph_rule("neighbors")
    if isinstance(rule, list):
        return check_neighbors(rule, len(grid.intersections))
    return grid.neighbors()


class _Worker:
    """A ``SignalSim`` in a spawned process, driven over a pipe."""

    def __init__(self, scenario: TrafficScenario, folder: Path, net_path: Path) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=worker_main, args=(child, scenario, str(folder), str(net_path)), daemon=True
        )
        self.proc.start()
        child.close()
        self._pending = False
        self.result()

    def send(self, cmd: str, arg: Any = None) -> None:
        self.conn.send((cmd, arg))
        self._pending = True

    def result(self) -> Any:
        status, value = self.conn.recv()
        self._pending = False
        if status != "ok":
            raise RuntimeError(f"traffic worker failed: {value}")
        return value

    def call(self, cmd: str, arg: Any = None) -> Any:
        self.send(cmd, arg)
        return self.result()

    def close(self) -> None:
        try:
            if self.proc.is_alive():
                self.call("close")
        except (OSError, EOFError, RuntimeError, BrokenPipeError):
            pass
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=5)


class TrafficEnv(MultiAgentEnv):
    """Signal control of ``scenario``'s grid (see the module docstring for the spaces).

    Args:
        scenario: validated traffic scenario.
        num_envs: ``B`` parallel simulations.
        device: torch device of the returned tensors.
        in_process: run the simulation in this process (only ``B = 1``); default: True for
            ``B = 1``, worker processes otherwise.
        work_root: folder for the temporary network and demand files (default: system temp).
        workers: where the worker simulations run (``train.workers``): None or backend
            ``process``, local worker processes; ``ray``, one Ray actor each
            (``traffic.sim.NodeSim``, on any node of the cluster), the same episodes for the
            same seeds.
    """

    def __init__(
        self,
        scenario: TrafficScenario,
        num_envs: int = 1,
        device: torch.device | str = "cpu",
        in_process: bool | None = None,
        work_root: str | Path | None = None,
        workers: WorkersConfig | None = None,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if in_process is None:
            in_process = num_envs == 1
        if in_process and num_envs != 1:
            raise ValueError("in_process=True runs one simulation; use worker processes for B > 1")
        self.scenario = scenario
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.episode_len = scenario.traffic.steps
        self.folder, net_path, self.layout = prepare_folder(scenario, work_root)
        lay: SignalLayout = self.layout
        n, p, lanes = len(lay.tls), lay.max_phases, lay.max_lanes
        self.n_phases, self.n_lanes = p, lanes
        # MaxPressure's network model, when the observation carries the phase pressures
        pressure = scenario.traffic.pressure_features
        self._pressure = PressureModel.from_layout(lay) if pressure else None
        self._neighbors = None
        if scenario.traffic.neighbor_features:
            self._neighbors = torch.as_tensor(lay.grid.neighbors())  # [N, 4], -1 = none
        shape = layout_policy_shape(p, lanes, pressure, bool(scenario.traffic.neighbor_features))
        self.spec = AgentSpec(
            n_agents=n,
            **shape.spec_fields(),
            groups=torch.as_tensor(scenario_groups(scenario, lay.grid)),
            neighbors=torch.as_tensor(scenario_neighbors(scenario, lay.grid)),
            agent_names=tuple(lay.tls),
        )
        self._sims: list[SignalSim] = []
        self._workers: list[_Worker | RayWorker] = []
        try:
            if in_process:
                self._sims.append(SignalSim(scenario, lay, self.folder))
            elif workers is not None and workers.backend == "ray":
                from gridmarl.core.cluster import RayWorker

                for _ in range(num_envs):
                    self._workers.append(
                        RayWorker(NodeSim, scenario, address=workers.address, what="traffic worker")
                    )
            else:
                for b in range(num_envs):
                    sub = self.folder / f"w{b}"
                    sub.mkdir()
                    shutil.copyfile(net_path, sub / "grid.net.xml")
                    self._workers.append(_Worker(scenario, sub, sub / "grid.net.xml"))
        except BaseException:
            self.close()
            raise
        self._next_seed = scenario.seed
        self._done = True
        self._t = 0

    @property
    def engine(self) -> Engine:
        """The simulator of an in-process env."""
        if not self._sims:
            raise RuntimeError("the simulations run in worker processes; use in_process=True")
        return self._sims[0].engine

    # -- helpers ------------------------------------------------------------------------------
    def _broadcast(self, cmd: str, args: list[Any]) -> list[Any]:
        if self._sims:
            sim = self._sims[0]
            return [getattr(sim, cmd)(args[0]) if args[0] is not None else getattr(sim, cmd)()]
        for w, a in zip(self._workers, args, strict=True):
            w.send(cmd, a)
        return [w.result() for w in self._workers]

    def _obs(self, outs: list[dict[str, Any]]) -> Observation:
        p = self.n_phases
        phase = torch.as_tensor(np.stack([o["phase"] for o in outs]))
        veh = torch.as_tensor(np.stack([o["veh"] for o in outs]))
        halt = torch.as_tensor(np.stack([o["halt"] for o in outs]))
        onehot = torch.nn.functional.one_hot(phase, p).float()
        parts = [onehot, veh, halt]
        if self._pressure is not None:
            green_min = torch.as_tensor(np.stack([o["green_s"] for o in outs])) / 60.0
            own = [self._pressure.pressures_of(veh.float()), green_min.float()[..., None]]
            parts += own
            if self._neighbors is not None:
                parts.append(self._neighbor_parts(torch.cat([onehot, *own], dim=-1)))
        local = torch.cat([x.float() for x in parts], dim=-1).to(self.device)
        t = torch.tensor([float(o["t_s"]) / self.scenario.traffic.horizon_s for o in outs])
        glob = torch.stack([t, veh.sum(-1).mean(-1), halt.sum(-1).mean(-1)], dim=-1)
        mask = torch.as_tensor(np.stack([o["mask"] for o in outs])).to(self.device)
        b, n = local.shape[:2]
        return Observation(
            local=local,
            forecast=torch.zeros(b, n, 0, 0, device=self.device),
            state=local.clone(),
            global_=glob.to(self.device),
            action_mask=mask,
        )

    def _neighbor_parts(self, own: torch.Tensor) -> torch.Tensor:
        """``[B, N, 4 F]``: each neighbour's ``own [B, N, F]`` features (zeros for none)."""
        nb = self._neighbors
        got = own[:, nb.clamp(min=0)]  # [B, N, 4, F]
        got = got * (nb >= 0)[None, :, :, None]
        return got.reshape(own.shape[0], own.shape[1], -1)

    # -- MultiAgentEnv ------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> Observation:
        """New episodes; environment ``b`` draws its demand from ``demand_seed(seed, b)``
        (``seed`` itself for ``b = 0``).  ``seed=None`` takes the scenario seed, then +1 per
        later reset."""
        return self.reset_copies(seed, 1)

    def reset_copies(self, seed: int | None, copies: int) -> Observation:
        """Like ``reset``, but ``B / copies`` episodes, each run by ``copies`` simulations:
        environment ``b`` draws the demand (and SUMO seed) of episode ``b mod (B / copies)``."""
        if copies < 1 or self.num_envs % copies:
            raise ValueError(f"copies={copies} must divide num_envs={self.num_envs}")
        if seed is None:
            seed = self._next_seed
        self._next_seed = int(seed) + 1
        self.seed = int(seed)
        e = self.num_envs // copies
        outs = self._broadcast("reset", [demand_seed(seed, b % e) for b in range(self.num_envs)])
        self._done = False
        self._t = 0
        return self._obs(outs)

    def step(self, action: Action) -> Step:
        """Advance every simulation by ``traffic.decision_s`` [s]."""
        if self._done:
            raise RuntimeError("call reset() first (the episode has a fixed horizon and ended)")
        d = action.discrete
        if tuple(d.shape) != (self.num_envs, self.spec.n_agents):
            raise ValueError(
                f"action.discrete has shape {tuple(d.shape)}, expected "
                f"{(self.num_envs, self.spec.n_agents)}"
            )
        acts = d.detach().to("cpu", torch.long).numpy()
        outs = self._broadcast("step", [acts[b] for b in range(self.num_envs)])
        self._t += 1
        obs = self._obs(outs)
        dev = self.device
        reward = torch.as_tensor(
            np.stack([o["reward"] for o in outs]), dtype=torch.float32, device=dev
        )
        # the horizon is a time limit: the last step is truncated, never terminated
        truncated = torch.tensor([bool(o["done"]) for o in outs], dtype=torch.bool, device=dev)
        self._done = bool(truncated.all())
        info = {
            "arrived_veh": torch.tensor([float(o["arrived"]) for o in outs], device=dev),
            "halting_veh": -reward.sum(-1),
            "switched": torch.tensor([float(o["switched"].sum()) for o in outs], device=dev),
            "overridden": torch.tensor([float(o["overridden"].sum()) for o in outs], device=dev),
        }
        return Step(
            obs=obs,
            reward=reward,
            team_reward=reward.sum(-1),
            terminated=torch.zeros_like(truncated),
            truncated=truncated,
            info=info,
        )

    def records(self) -> pd.DataFrame:
        """Per step and intersection of environment 0: ``step, agent, time_s`` (start of the
        step), ``phase`` (green requested and shown after any yellow), ``switched``,
        ``overridden``, ``vehicles_veh``, ``halting_veh`` (after the step), ``reward``."""
        rec = self._sims[0].records() if self._sims else self._workers[0].call("records")
        steps, n = rec["phase"].shape
        df = pd.DataFrame(
            {
                "step": np.repeat(np.arange(steps), n),
                "agent": np.tile(np.asarray(self.layout.tls), steps),
                "time_s": rec["time_s"].reshape(-1).astype(np.int64),
                "phase": rec["phase"].reshape(-1).astype(np.int64),
                "switched": rec["switched"].reshape(-1).astype(bool),
                "overridden": rec["overridden"].reshape(-1).astype(bool),
                "vehicles_veh": rec["vehicles_veh"].reshape(-1),
                "halting_veh": rec["halting_veh"].reshape(-1),
            }
        )
        df["reward"] = -df["halting_veh"]
        return df

    def episode_kpis(self) -> list[dict[str, float]]:
        """KPIs (``gridmarl.traffic.kpis``) of the current episode of every environment."""
        if self._sims:
            return [self._sims[0].kpis()]
        return self._broadcast("kpis", [None] * self.num_envs)

    def close(self) -> None:
        """Stop the simulations and workers and delete the working folder."""
        for sim in self._sims:
            sim.close()
        for w in self._workers:
            w.close()
        self._sims, self._workers = [], []
        if getattr(self, "folder", None) is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __del__(self) -> None:  # best effort; close() is the API
        try:
            self.close()
        except Exception:
            pass
