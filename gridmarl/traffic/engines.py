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

CityFlow notes (``gridmarl.traffic.cityflow_files`` describes its files):

* One ``cityflow.Engine`` per ``CityFlowEngine``, built on the first ``load`` and ``reset`` for
  every later episode: the trips are pushed at their departure second (``push_vehicle``)
  instead of read from a flow file, so a new demand seed needs no new engine.  Upstream
  CityFlow can deadlock when an engine is destroyed (``Engine::~Engine`` waits on its worker
  barrier); the fix is in ``install.CITYFLOW_RECIPE``.  Reusing the engine keeps destruction to
  one per worker.
* The config and its files are checked before CityFlow reads them
  (``cityflow_files.check_cityflow_config``), and a network CityFlow did not load (no lanes) is
  refused: CityFlow itself only prints "load config failed!" and simulates nothing.
* Arrivals are counted incrementally (``CityFlowEngine._arrivals``): a vehicle list is read only
  in a second in which some trip arrived.  CityFlow does not teleport: a jam shows as unfinished
  trips (``advance`` reports None teleports).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from gridmarl.core.errors import ScenarioError
from gridmarl.traffic.cityflow_files import (
    check_cityflow_config,
    vehicle_params,
    write_cityflow_network,
)
from gridmarl.traffic.install import CITYFLOW_RECIPE, cityflow_build, sumo_binary, sumo_home
from gridmarl.traffic.roadnet import SignalLayout, Vehicle, write_sumo_routes

HALTING_SPEED_M_PER_S = 0.1  # SUMO's halting threshold; CityFlow's waiting count uses the same


class Engine(ABC):
    """One running traffic simulation (1 s steps)."""

    name: str = "engine"
    #: whether the engine removes stuck vehicles (SUMO's teleports); False: ``advance``
    #: reports None and a jam shows only as unfinished trips
    teleports: bool = True

    def __init__(self, layout: SignalLayout) -> None:
        self.layout = layout
        self.time_s = 0

    @abstractmethod
    def load(self, folder: Path, seed: int, trips: list[Vehicle]) -> None:
        """Start a new simulation of ``trips`` (trip ``v<k>`` departs at its ``depart_s``) on
        the network in ``folder``; the engine writes what else it reads there."""

    @abstractmethod
    def show_green(self, i: int, phase: int) -> None:
        """Show green phase ``phase`` at intersection ``i`` until told otherwise."""

    @abstractmethod
    def show_yellow(self, i: int, frm: int, to: int) -> None:
        """Show the change interval from green ``frm`` to green ``to`` at intersection ``i``."""

    @abstractmethod
    def show_all_red(self, i: int) -> None:
        """Show the all-red clearance (every link red) at intersection ``i``."""

    @abstractmethod
    def advance(self, seconds: int) -> tuple[list[tuple[str, int]], int | None]:
        """Simulate ``seconds`` [s]; returns (trip id, arrival time [s]) of the trips that
        arrived and the number of vehicles teleported (SUMO's gridlock resolution) meanwhile
        (None for an engine that never teleports)."""

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

    def load(self, folder: Path, seed: int, trips: list[Vehicle]) -> None:
        """Write ``trips`` to ``folder/routes.rou.xml`` and start SUMO on it and
        ``folder/grid.net.xml``."""
        global _LIBSUMO_OWNER
        write_sumo_routes(trips, self.layout.grid, folder / "routes.rou.xml")
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

    def show_all_red(self, i: int) -> None:
        """Every link red (held until the next call)."""
        self._ls.trafficlight.setRedYellowGreenState(
            self.layout.tls[i], self.layout.all_red_state(i)
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
    light phase j + 1 (``cityflow_files.cityflow_roadnet``).  Trips are pushed with
    ``push_vehicle`` at their departure second; CityFlow names them ``manually_pushed_<n>``
    with one counter over the engine's life, which maps them back to our ``v<k>``.
    """

    name = "cityflow"
    teleports = False

    def __init__(self, layout: SignalLayout) -> None:
        super().__init__(layout)
        self._cf = importlib.import_module("cityflow")
        self._lane_ids = layout.cityflow_lane_ids()
        flat = [(i, j, lid) for i, row in enumerate(self._lane_ids) for j, lid in enumerate(row)]
        self._flat_i = np.array([f[0] for f in flat], np.int64)
        self._flat_j = np.array([f[1] for f in flat], np.int64)
        self._flat_ids = [f[2] for f in flat]
        self._eng: Any = None
        self._folder: Path | None = None
        self._params = vehicle_params(layout.grid.cfg.speed_limit_m_per_s)
        self._trips: list[Vehicle] = []
        self._next = 0  # index of the next trip to push
        self._pushed = 0  # CityFlow's push counter (Engine::reset does not reset it)
        self._trip_of: dict[str, str] = {}  # CityFlow id -> trip id, trips not yet arrived
        self._running: set[str] = set()  # running vehicles when last listed
        self._total = 0  # pushed vehicles' summed time in the network [veh·s]
        self._finished = 0  # vehicles arrived this episode [veh]

    def _start(self, folder: Path, seed: int) -> None:
        """Write the network files into ``folder`` and build the engine on them."""
        config = write_cityflow_network(self.layout.grid, folder, seed, self.layout.design)
        check_cityflow_config(config)
        self._eng = None
        eng = self._cf.Engine(str(config), thread_num=1)
        if not eng.get_lane_vehicle_count():  # CityFlow prints "load config failed!" only
            raise ScenarioError(f"{config}: CityFlow did not load this network (see above)")
        self._eng, self._folder, self._pushed = eng, folder, 0

    def load(self, folder: Path, seed: int, trips: list[Vehicle]) -> None:
        """Start a new episode of ``trips``: the engine of ``folder`` is reset (built on the
        first call), its random seed set to ``seed``."""
        if self._eng is None or self._folder != folder:
            self._start(folder, seed)
        else:
            self._eng.reset()
        self._eng.set_random_seed(int(seed) % 2**31)
        self._trips = sorted(trips, key=lambda v: v.depart_s)
        self._next = 0
        self._trip_of = {}
        self._running = set()
        self._total = 0
        self._finished = 0
        self.time_s = 0

    def show_green(self, i: int, phase: int) -> None:
        """Light phase ``phase + 1``."""
        self._eng.set_tl_phase(self.layout.tls[i], phase + 1)

    def show_yellow(self, i: int, frm: int, to: int) -> None:
        """Light phase 0 (all red change interval)."""
        self._eng.set_tl_phase(self.layout.tls[i], 0)

    def show_all_red(self, i: int) -> None:
        """Light phase 0, as for the yellow (CityFlow has no yellow)."""
        self._eng.set_tl_phase(self.layout.tls[i], 0)

    def _push_due(self, now_s: int) -> None:
        """Push the trips departing at or before second ``now_s``."""
        trips, eng = self._trips, self._eng
        while self._next < len(trips) and trips[self._next].depart_s <= now_s:
            v = trips[self._next]
            eng.push_vehicle(self._params, list(v.route))
            cf_id = f"manually_pushed_{self._pushed}"
            if self._next == 0:
                try:
                    eng.get_vehicle_info(cf_id)
                except Exception:  # noqa: BLE001 - pybind11 maps CityFlow's error
                    raise RuntimeError(
                        f"CityFlow did not name a pushed vehicle {cf_id!r}; this CityFlow "
                        "build numbers pushed vehicles differently"
                    ) from None
            self._trip_of[cf_id] = v.id
            self._pushed += 1
            self._next += 1

    def _arrivals(self, t: int) -> list[tuple[str, int]]:
        """Trips that arrived in the step that just ended at second ``t``.

        Incremental: CityFlow's average travel time covers every vehicle pushed this episode
        (finished ones until their arrival, the others until now), so its total grows by one
        second per vehicle still in the network.  That count [veh] says how many arrived this
        step, without listing vehicles; the running vehicles are listed only in a step with
        arrivals (and every vehicle, waiting ones included, only when one arrived unseen).
        """
        eng = self._eng
        total = round(eng.get_average_travel_time() * self._next)  # [veh·s]
        alive = total - self._total
        self._total = total
        n_new = self._next - alive - self._finished
        if n_new <= 0:
            return []
        now = set(eng.get_vehicles(include_waiting=False))
        gone = self._running - now
        if len(gone) != n_new:  # entered and arrived between two looks at the running list
            gone = self._trip_of.keys() - set(eng.get_vehicles(include_waiting=True))
        if len(gone) != n_new:
            raise RuntimeError(
                f"CityFlow's counts disagree at {t} s: {n_new} vehicles arrived by its average "
                f"travel time, {len(gone)} left its vehicle list"
            )
        self._running = now
        self._finished += n_new
        trips = sorted((self._trip_of.pop(cf_id) for cf_id in gone), key=lambda v: int(v[1:]))
        return [(v, t) for v in trips]

    def advance(self, seconds: int) -> tuple[list[tuple[str, int]], None]:
        """Step CityFlow ``seconds`` times 1 s, pushing the trips due and collecting
        arrivals (``_arrivals``)."""
        arrived: list[tuple[str, int]] = []
        eng = self._eng
        for k in range(int(seconds)):
            self._push_due(self.time_s + k)
            eng.next_step()
            arrived += self._arrivals(self.time_s + k + 1)
        self.time_s += int(seconds)
        return arrived, None

    def lane_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Vehicles and waiting vehicles (speed < 0.1 m/s) per incoming lane [veh]."""
        lay = self.layout
        cnt = self._eng.get_lane_vehicle_count()
        wait = self._eng.get_lane_waiting_vehicle_count()
        veh = np.zeros((len(lay.tls), lay.max_lanes), np.float32)
        halt = np.zeros_like(veh)
        k = len(self._flat_ids)
        veh[self._flat_i, self._flat_j] = np.fromiter(
            map(cnt.__getitem__, self._flat_ids), np.float32, k
        )
        halt[self._flat_i, self._flat_j] = np.fromiter(
            map(wait.__getitem__, self._flat_ids), np.float32, k
        )
        return veh, halt

    def close(self) -> None:
        """Drop the engine (destroyed once, here)."""
        self._eng = None
        self._folder = None


# --------------------------------------------------------------------------------------------
# Availability
# --------------------------------------------------------------------------------------------
def cityflow_available() -> tuple[bool, str]:
    """Whether ``import cityflow`` works, and why not (with the command that installs it)."""
    try:
        importlib.import_module("cityflow")
    except Exception as exc:  # ImportError, or a broken native build
        return False, (
            f"not installed ({type(exc).__name__}: {exc}); it is not on PyPI: run "
            f"`{CITYFLOW_RECIPE}` in a gridmarl checkout (builds its source with the "
            "destructor fix; docs/domains/traffic.md)"
        )
    return True, (
        f"available (CityFlow {cityflow_build()}); it must carry the destructor fix of "
        f"tools/cityflow-patches.diff, which `{CITYFLOW_RECIPE}` builds in"
    )


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
