"""Traffic scenario schema (``domain: traffic``).

A rows × cols grid of signalised intersections, a seeded demand with piecewise-constant arrival
rates, and the signal-control settings of the env.  Every field carries its unit in brackets.

```yaml
name: traffic_grid_6x6
domain: traffic
seed: 0
engine: sumo                       # sumo | cityflow | auto
grid: {rows: 6, cols: 6, lanes: 2, road_length_m: 200, speed_limit_m_per_s: 13.89}
demand:
  profile:                          # total arrival rate over all boundary entry roads
    - {duration_s: 600, rate_veh_per_s: 1.0}
    - {duration_s: 600, rate_veh_per_s: 0.25}
  turning: {left: 0.15, straight: 0.7, right: 0.15}
  seeds: 3                          # simulate averages over seed, seed+1, seed+2
traffic: {horizon_s: 3600, decision_s: 10, min_green_s: 10, yellow_s: 3, all_red_s: 0, phases: 2}
controllers: [{name: fixed_time}, {name: max_pressure}, {name: sf_plan}]
```
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from gridmarl.config import ScenarioBase, StrictModel, TrainBase, WorkersConfig
from gridmarl.core.errors import ScenarioError

#: trips one demand seed may draw: each trip and its route are Python objects (about 0.6 kB)
#: written to the simulator's route file, drawn at about 10 k trips per second [veh]
MAX_TRIPS_PER_SEED = 1_000_000


class GridConfig(StrictModel):
    """Geometry of the grid: every road between adjacent intersections and every boundary road."""

    rows: int = Field(6, ge=1, le=20, description="intersections along y [-]")
    cols: int = Field(6, ge=1, le=20, description="intersections along x [-]")
    lanes: int = Field(2, ge=1, le=4, description="lanes per road and direction [-]")
    road_length_m: float = Field(
        200.0, ge=50.0, le=2000.0, description="length of every road (also boundary roads) [m]"
    )
    speed_limit_m_per_s: float = Field(13.89, gt=0.0, le=40.0, description="speed limit [m/s]")
    net_file: str | None = Field(
        None,
        description="use this SUMO .net.xml instead of running "
        "netgenerate; it must be the same rows x cols grid with "
        "netgenerate's names (A0, left0A0, ...)",
    )


class SideWeights(StrictModel):
    """Relative weight of the entry roads on each side of the grid (uniform within a side)."""

    north: float = Field(1.0, ge=0.0, description="weight of entries on the north side [-]")
    east: float = Field(1.0, ge=0.0, description="weight of entries on the east side [-]")
    south: float = Field(1.0, ge=0.0, description="weight of entries on the south side [-]")
    west: float = Field(1.0, ge=0.0, description="weight of entries on the west side [-]")

    @model_validator(mode="after")
    def _positive(self) -> SideWeights:
        if self.north + self.east + self.south + self.west <= 0:
            raise ValueError("side weights must not all be zero")
        return self


class RateSegment(StrictModel):
    """One piece of the piecewise-constant demand profile."""

    duration_s: float = Field(gt=0.0, description="length of the piece [s]")
    rate_veh_per_s: float = Field(
        ge=0.0,
        description="total arrival rate over all boundary entry roads during the piece [veh/s]",
    )
    side_weights: SideWeights | None = Field(
        None, description="entry weights during the piece (default: demand.side_weights)"
    )


#: how far ``left + straight + right`` may be from 1 (rounding of decimal shares) [-]
TURNING_SUM_TOLERANCE = 1e-6


class TurningShares(StrictModel):
    """Probability of each turn at every intersection a vehicle crosses; the three sum to 1
    (within ``TURNING_SUM_TOLERANCE``)."""

    left: float = Field(0.15, ge=0.0, description="share of left turns [-]")
    straight: float = Field(0.7, ge=0.0, description="share of straight movements [-]")
    right: float = Field(0.15, ge=0.0, description="share of right turns [-]")

    @model_validator(mode="after")
    def _sum_to_one(self) -> TurningShares:
        total = self.left + self.straight + self.right
        if abs(total - 1.0) > TURNING_SUM_TOLERANCE:
            raise ValueError(
                f"left + straight + right = {total:.6g}; they are probabilities and must sum "
                "to 1 (e.g. left: 0.15, straight: 0.7, right: 0.15)"
            )
        return self

    def probabilities(self) -> tuple[float, float, float]:
        """(left, straight, right), divided by their sum (1 up to rounding) [-]."""
        s = self.left + self.straight + self.right
        return self.left / s, self.straight / s, self.right / s


def _default_profile() -> list[RateSegment]:
    return [RateSegment(duration_s=3600.0, rate_veh_per_s=1.0)]


class DemandConfig(StrictModel):
    """Seeded demand: Poisson arrivals at boundary entry roads chosen by side weight.

    Each vehicle's route is drawn turn by turn with ``turning`` shares until it leaves the grid
    (U-turns never happen).  Arrivals after the end of the profile do not occur.
    """

    profile: list[RateSegment] = Field(
        default_factory=_default_profile,
        min_length=1,
        description="piecewise-constant total arrival rate",
    )
    turning: TurningShares = Field(default_factory=TurningShares, description="turn shares")
    side_weights: SideWeights = Field(
        default_factory=SideWeights, description="entry weights per side of the grid"
    )
    seeds: int = Field(
        1,
        ge=1,
        le=20,
        description="demand seeds simulate averages over: scenario seed, seed+1, ... [-]",
    )
    test_seeds: int = Field(
        10,
        ge=0,
        le=100,
        description="demand seeds of the test split (simulate --split test), drawn from the "
        "test seed stream that no training or validation touches (docs/protocol.md) [-]",
    )

    @property
    def total_s(self) -> float:
        """Length of the profile [s]."""
        return float(sum(p.duration_s for p in self.profile))

    def expected_trips(self, horizon_s: float) -> float:
        """Mean trips of one demand seed: rate x the part of each piece before ``horizon_s``
        (what ``roadnet.generate_demand`` draws from) [veh]."""
        total, t0 = 0.0, 0.0
        for piece in self.profile:
            t1 = min(t0 + piece.duration_s, horizon_s)
            total += piece.rate_veh_per_s * max(0.0, t1 - t0)
            t0 += piece.duration_s
        return total


class SignalConfig(StrictModel):
    """How the env controls the signals."""

    horizon_s: int = Field(3600, gt=0, le=86400, description="episode length [s]")
    decision_s: int = Field(
        10, ge=1, le=120, description="time between two decisions of every agent [s]"
    )
    min_green_s: int = Field(
        10,
        ge=0,
        le=120,
        description="a green phase is shown at least this long before "
        "another may be chosen; earlier requests are masked [s]",
    )
    yellow_s: int = Field(
        3,
        ge=0,
        le=10,
        description="yellow inserted at the start of a step when the phase "
        "changes; part of the step [s]",
    )
    all_red_s: int = Field(
        0,
        ge=0,
        le=10,
        description="all-red clearance after the yellow of a phase change (every link red); "
        "part of the step [s]",
    )
    phases: Literal[2, 4, 8] = Field(
        2,
        description="intersection phase design (roadnet.PHASE_DESIGNS): 2 = north-south / "
        "east-west, left turns permissive from a shared lane; 4 = straight and protected "
        "left per axis on an exclusive left lane, right turns always allowed; 8 = the four "
        "of 4 plus one phase per approach (its straight and left together); 4 and 8 need "
        "grid.lanes >= 2 [-]",
    )
    pressure_features: bool = Field(
        False,
        description="append to each intersection's observation the pressure of each phase "
        "(what MaxPressure maximises: incoming-lane vehicles minus the mean vehicles per lane "
        "of the outgoing road, over the phase's movements, counted on the intersection's own "
        "entry and exit roads) [veh] and the time since its current green began / 60 [min]; "
        "policies trained without them do not load with them",
    )
    neighbor_features: bool = Field(
        False,
        description="append, for each adjacent intersection (N, E, S, W; zeros at the grid "
        "edge), its current phase one-hot, its phase pressures [veh] and its green time "
        "[min]: what a neighbour would tell over a link (CoLight-style); needs "
        "pressure_features",
    )

    @model_validator(mode="after")
    def _fits(self) -> SignalConfig:
        if self.yellow_s + self.all_red_s >= self.decision_s:
            raise ValueError(
                f"traffic.yellow_s + traffic.all_red_s ({self.yellow_s} + {self.all_red_s}) "
                f"must be below traffic.decision_s ({self.decision_s})"
            )
        if self.horizon_s % self.decision_s:
            raise ValueError("traffic.horizon_s must be a whole number of traffic.decision_s")
        if self.neighbor_features and not self.pressure_features:
            raise ValueError("traffic.neighbor_features needs traffic.pressure_features: true")
        return self

    @property
    def change_s(self) -> int:
        """Change interval of a phase change: yellow + all red [s]."""
        return self.yellow_s + self.all_red_s

    @property
    def min_green_steps(self) -> int:
        """Decision steps a newly shown phase must be requested so that its green (``decision_s
        − change_s`` in its first step) lasts ``min_green_s`` [-]."""
        short = max(0, self.min_green_s - (self.decision_s - self.change_s))
        return 1 + -(-short // self.decision_s)

    @property
    def steps(self) -> int:
        """Decisions per episode [-]."""
        return self.horizon_s // self.decision_s


class CityFlowFiles(StrictModel):
    """A CityFlow-format network and demand to import (``gridmarl.traffic.cityflow_import``):
    run on CityFlow directly and converted to SUMO; ``grid`` and ``demand`` are then unused."""

    roadnet: str = Field(description="CityFlow roadnet JSON (path, relative to the scenario)")
    flow: str = Field(description="CityFlow flow JSON (path, relative to the scenario)")


class TrainConfig(TrainBase):
    """Defaults for ``gridmarl train`` on a traffic scenario (command-line flags override)."""

    steps: int = Field(
        1_000_000, ge=1, description="agent-steps budget (decisions x intersections)"
    )
    OMIT_WHEN_NONE: ClassVar[tuple[str, ...]] = ("workers",)

    num_envs: int = Field(4, ge=1, description="parallel simulations B (one worker process each)")
    workers: WorkersConfig | None = Field(
        None, description="where the simulator workers run (default: local processes)"
    )

    @model_validator(mode="after")
    def _one_simulation_per_worker(self) -> TrainConfig:
        w = self.workers
        if w is not None and w.count is not None and w.count != self.num_envs:
            raise ValueError(
                f"train.workers.count {w.count}: each worker runs one simulation (libsumo: one "
                f"per process); allowed: train.num_envs ({self.num_envs}), or leave it out"
            )
        return self


class TrafficScenario(ScenarioBase):
    """``domain: traffic``: a signalised grid, its demand and the controllers to compare."""

    GRAPH_GROUPS: ClassVar[tuple[str, ...]] = ("boundary", "blocks")
    GRAPH_NEIGHBORS: ClassVar[tuple[str, ...]] = ("roads",)

    domain: Literal["traffic"]
    engine: Literal["sumo", "cityflow", "auto"] = Field(
        "sumo",
        description="simulator; cityflow needs `import cityflow` to work; auto = cityflow "
        "when the cityflow module is installed, else sumo (resolved when the scenario is "
        "loaded, so runs record the engine used)",
    )
    grid: GridConfig = Field(default_factory=GridConfig, description="road grid")
    demand: DemandConfig = Field(default_factory=DemandConfig, description="seeded demand")
    traffic: SignalConfig = Field(default_factory=SignalConfig, description="signal control")
    train: TrainConfig = Field(default_factory=TrainConfig, description="gridmarl train")
    cityflow_files: CityFlowFiles | None = Field(
        None,
        description="import a CityFlow roadnet + flow file instead of the grid and its demand "
        "(controllers fixed_time and max_pressure; docs/domains/traffic.md)",
    )

    @field_validator("engine", mode="after")
    @classmethod
    def _resolve_auto(cls, value: str) -> str:
        if value != "auto":
            return value
        from importlib.util import find_spec

        return "cityflow" if find_spec("cityflow") is not None else "sumo"

    @model_validator(mode="after")
    def _design_fits_lanes(self) -> TrafficScenario:
        if self.traffic.phases != 2 and self.grid.lanes < 2:
            raise ValueError(
                f"traffic.phases {self.traffic.phases} gives left turns an exclusive lane and "
                f"needs grid.lanes >= 2 (got {self.grid.lanes}); allowed with 1 lane: 2"
            )
        return self

    def check_resources(self) -> None:
        """Raise ``ScenarioError`` when one demand seed would draw more than
        ``MAX_TRIPS_PER_SEED`` trips, the chosen engine is not installed here (without
        importing it), or the ``cityflow_files`` are malformed; the controllers are checked by
        ``gridmarl.config.check_controllers``."""
        from gridmarl.traffic.install import check_installed

        trips = self.demand.expected_trips(self.traffic.horizon_s)
        if trips > MAX_TRIPS_PER_SEED:
            raise ScenarioError(
                f"demand.profile: about {trips:.4g} trips per demand seed (rate_veh_per_s x "
                f"duration_s within traffic.horizon_s); allowed: at most {MAX_TRIPS_PER_SEED} "
                "(each trip and its route are held in memory and written for the simulator); "
                "lower the rates"
            )
        check_installed(self.engine)
        if self.cityflow_files is not None:  # read and check both files (module docstring)
            from gridmarl.config import resolve_path
            from gridmarl.traffic.cityflow_import import read_cityflow_files

            read_cityflow_files(
                resolve_path(self, self.cityflow_files.roadnet),
                resolve_path(self, self.cityflow_files.flow),
                self.traffic.horizon_s,
            )

    def agent_count(self) -> int:
        """Intersections ``N = rows · cols`` (one agent each)."""
        return self.grid.rows * self.grid.cols
