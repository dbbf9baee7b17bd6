"""Traffic simulators behind one interface: SUMO through ``libsumo`` (default), CityFlow when
``import cityflow`` works.

An ``Engine`` runs one simulation with 1 s steps and exposes only what the env needs: show a
green phase or a yellow change on an intersection, advance whole seconds (returning the trips
that arrived), and read vehicles / halting vehicles on the incoming lanes.

SUMO notes:

* Signals are driven with ``trafficlight.setRedYellowGreenState``: the given state is held until
  the next call.  (``setPhase`` alone does not hold a phase: the static program moves on after
  the phase's own duration.)
* ``libsumo`` runs one simulation per process.  A second live ``SumoEngine`` in the same process
  raises; parallel simulations run in worker processes (``TrafficEnv(in_process=False)``).
* ``SUMO_HOME`` is set from the ``eclipse-sumo`` wheel (pip does not set it).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from gridmarl.core.errors import ScenarioError
from gridmarl.traffic.install import sumo_binary, sumo_home
from gridmarl.traffic.roadnet import SignalLayout

HALTING_SPEED_M_PER_S = 0.1  # SUMO's halting threshold; CityFlow's waiting count uses the same


class Engine(ABC):
    """One running traffic simulation (1 s steps)."""

    name: str = "engine"

    def __init__(self, layout: SignalLayout) -> None:
        self.layout = layout
        self.time_s = 0

    @abstractmethod
    def load(self, folder: Path, seed: int) -> None:
        """Start a new simulation from the network and the demand files in ``folder``."""

    @abstractmethod
    def show_green(self, i: int, phase: int) -> None:
        """Show green phase ``phase`` at intersection ``i`` until told otherwise."""

    @abstractmethod
    def show_yellow(self, i: int, frm: int, to: int) -> None:
        """Show the change interval from green ``frm`` to green ``to`` at intersection ``i``."""

    @abstractmethod
    def advance(self, seconds: int) -> tuple[list[tuple[str, int]], int]:
        """Simulate ``seconds`` [s]; returns (trip id, arrival time [s]) of the trips that
        arrived and the number of vehicles teleported (SUMO's gridlock resolution) meanwhile."""

    @abstractmethod
    def lane_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """``([N, L], [N, L])`` vehicles and halting vehicles on each incoming lane [veh]
        (zero-padded where an intersection has fewer than L lanes)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop the simulation."""


# --------------------------------------------------------------------------------------------
# SUMO (libsumo)
# --------------------------------------------------------------------------------------------
_LIBSUMO_OWNER: SumoEngine | None = None


def _libsumo():
    sumo_home()
    return importlib.import_module("libsumo")


class SumoEngine(Engine):
    """SUMO through ``libsumo`` (in process, one simulation per process).

    Attributes:
        extra_args: more SUMO options for the command line of the next ``load``
            (diagnostics, e.g. ``["--tripinfo-output", "trips.xml"]``; empty by default).
    """

    name = "sumo"

    def __init__(self, layout: SignalLayout) -> None:
        super().__init__(layout)
        self._ls = _libsumo()
        self._lane_ids = layout.sumo_lane_ids()
        self._flat = [
            (i, j, lid) for i, row in enumerate(self._lane_ids) for j, lid in enumerate(row)
        ]
        self._running = False
        self.extra_args: list[str] = []

    def load(self, folder: Path, seed: int) -> None:
        """Start SUMO on ``folder/grid.net.xml`` and ``folder/routes.rou.xml``."""
        global _LIBSUMO_OWNER
        if _LIBSUMO_OWNER is not None and _LIBSUMO_OWNER is not self:
            raise RuntimeError(
                "libsumo runs one simulation per process and another SumoEngine "
                "is live here; close it or use worker processes "
                "(TrafficEnv(..., in_process=False))"
            )
        if self._running:
            self._ls.close()
        cmd = [
            str(sumo_binary("sumo")),
            "-n",
            str(folder / "grid.net.xml"),
            "-r",
            str(folder / "routes.rou.xml"),
            "--begin",
            "0",
            "--step-length",
            "1",
            "--seed",
            str(int(seed) % 2**31),
            "--no-step-log",
            "true",
            "--no-warnings",
            "true",
            "--duration-log.disable",
            "true",
            "--time-to-teleport",
            "300",
            "--xml-validation",
            "never",
            *self.extra_args,
        ]
        try:
            self._ls.start(cmd)
        except Exception as exc:  # libsumo raises its own TraCIException / FatalTraCIError
            raise ScenarioError(f"SUMO could not load {folder}: {exc}") from None
        _LIBSUMO_OWNER = self
        self._running = True
        self.time_s = 0

    def show_green(self, i: int, phase: int) -> None:
        """Set the green state of phase ``phase`` (held until the next call)."""
        self._ls.trafficlight.setRedYellowGreenState(
            self.layout.tls[i], self.layout.green_states[i][phase]
        )

    def show_yellow(self, i: int, frm: int, to: int) -> None:
        """Set the yellow state between two greens (held until the next call)."""
        self._ls.trafficlight.setRedYellowGreenState(
            self.layout.tls[i], self.layout.yellow_state(i, frm, to)
        )

    def advance(self, seconds: int) -> tuple[list[tuple[str, int]], int]:
        """Step SUMO ``seconds`` times 1 s, collecting arrivals and teleports."""
        sim = self._ls.simulation
        arrived: list[tuple[str, int]] = []
        teleports = 0
        for k in range(1, int(seconds) + 1):
            self._ls.simulationStep()
            t = self.time_s + k
            arrived.extend((vid, t) for vid in sim.getArrivedIDList())
            teleports += sim.getStartingTeleportNumber()
        self.time_s += int(seconds)
        return arrived, teleports

    def lane_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Vehicles and halting vehicles (speed < 0.1 m/s) per incoming lane [veh]."""
        lay = self.layout
        veh = np.zeros((len(lay.tls), lay.max_lanes), np.float32)
        halt = np.zeros_like(veh)
        lane = self._ls.lane
        for i, j, lid in self._flat:
            veh[i, j] = lane.getLastStepVehicleNumber(lid)
            halt[i, j] = lane.getLastStepHaltingNumber(lid)
        return veh, halt

    def close(self) -> None:
        """Close libsumo and release the per-process slot."""
        global _LIBSUMO_OWNER
        if self._running:
            try:
                self._ls.close()
            finally:
                self._running = False
                if _LIBSUMO_OWNER is self:
                    _LIBSUMO_OWNER = None


# --------------------------------------------------------------------------------------------
# CityFlow
# --------------------------------------------------------------------------------------------
class CityFlowEngine(Engine):
    """CityFlow (https://cityflow-project.github.io), used when ``import cityflow`` works.

    Light phase 0 of every intersection is the change interval (all red); green phase j is
    light phase j + 1 (see ``roadnet.cityflow_roadnet``).  Trips are CityFlow flows
    ``flow_<k>_0`` = our ``v<k>``.
    """

    name = "cityflow"

    def __init__(self, layout: SignalLayout) -> None:
        super().__init__(layout)
        self._cf = importlib.import_module("cityflow")
        self._lane_ids = layout.cityflow_lane_ids()
        self._eng = None
        self._present: set[str] = set()

    def load(self, folder: Path, seed: int) -> None:
        """Start CityFlow from ``folder/cityflow_config.json``."""
        self._eng = self._cf.Engine(str(folder / "cityflow_config.json"), thread_num=1)
        self._present = set()
        self.time_s = 0

    def show_green(self, i: int, phase: int) -> None:
        """Light phase ``phase + 1``."""
        self._eng.set_tl_phase(self.layout.tls[i], phase + 1)

    def show_yellow(self, i: int, frm: int, to: int) -> None:
        """Light phase 0 (all red change interval)."""
        self._eng.set_tl_phase(self.layout.tls[i], 0)

    def advance(self, seconds: int) -> tuple[list[tuple[str, int]], int]:
        """Step CityFlow; a trip arrived when it disappears from the vehicle list."""
        arrived: list[tuple[str, int]] = []
        for k in range(1, int(seconds) + 1):
            self._eng.next_step()
            now = set(self._eng.get_vehicles(include_waiting=True))
            for vid in sorted(self._present - now):
                parts = vid.split("_")
                arrived.append((f"v{parts[1]}" if len(parts) == 3 else vid, self.time_s + k))
            self._present = now
        self.time_s += int(seconds)
        return arrived, 0

    def lane_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Vehicles and waiting vehicles per incoming lane [veh]."""
        lay = self.layout
        cnt = self._eng.get_lane_vehicle_count()
        wait = self._eng.get_lane_waiting_vehicle_count()
        veh = np.zeros((len(lay.tls), lay.max_lanes), np.float32)
        halt = np.zeros_like(veh)
        for i, row in enumerate(self._lane_ids):
            for j, lid in enumerate(row):
                veh[i, j] = cnt.get(lid, 0)
                halt[i, j] = wait.get(lid, 0)
        return veh, halt

    def close(self) -> None:
        """Drop the engine."""
        self._eng = None


# --------------------------------------------------------------------------------------------
# Availability
# --------------------------------------------------------------------------------------------
def cityflow_available() -> tuple[bool, str]:
    """Whether ``import cityflow`` works, and why not."""
    try:
        importlib.import_module("cityflow")
    except Exception as exc:  # ImportError, or a broken native build
        return False, (
            f"not installed ({type(exc).__name__}: {exc}); build it from source: "
            "https://cityflow.readthedocs.io/en/latest/install.html"
        )
    return True, "available"


def sumo_version() -> str:
    """Version of the installed SUMO (libsumo), or raise ScenarioError."""
    try:
        ls = _libsumo()
    except ImportError as exc:
        raise ScenarioError(f"libsumo is not installed ({exc}): pip install libsumo") from None
    ver = ls.getVersion()
    return ver[1] if isinstance(ver, tuple) else str(ver)


def engine_status() -> dict[str, str]:
    """One line per engine for ``gridmarl doctor``: available with version, or why not."""
    out: dict[str, str] = {}
    try:
        ver = sumo_version()
        net = sumo_binary("netgenerate")
        out["sumo"] = f"available ({ver}; libsumo; netgenerate at {net}; SUMO_HOME={sumo_home()})"
    except ScenarioError as exc:
        out["sumo"] = f"unavailable: {exc}"
    ok, why = cityflow_available()
    out["cityflow"] = why
    return out


def check_engine(name: str) -> None:
    """Raise ``ScenarioError`` (key ``engine``) when engine ``name`` cannot run here."""
    if name == "sumo":
        try:
            sumo_version()
            sumo_binary("netgenerate")
            sumo_binary("sumo")
        except ScenarioError as exc:
            raise ScenarioError(f"engine: 'sumo' is not usable here: {exc}") from None
    elif name == "cityflow":
        ok, why = cityflow_available()
        if not ok:
            raise ScenarioError(f"engine: 'cityflow' is {why}; or use engine: sumo")
    else:
        raise ScenarioError(f"engine: unknown engine {name!r}; allowed: sumo, cityflow")


def make_engine(name: str, layout: SignalLayout) -> Engine:
    """Build the engine called ``name`` (``sumo`` | ``cityflow``)."""
    check_engine(name)
    return SumoEngine(layout) if name == "sumo" else CityFlowEngine(layout)
