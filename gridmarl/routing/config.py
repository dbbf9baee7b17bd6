"""Routing scenario schema (``domain: routing``).

Every field carries its unit in brackets.  A scenario names a Topology Zoo GraphML file
(``network.topology``, overridable with ``--set network.topology=PATH``) or a generator
(``network.generator``), a packet-arrival rate profile and the controllers ``simulate`` runs.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from gridmarl.config import ScenarioBase, StrictModel, TrainBase
from gridmarl.core.errors import ScenarioError

#: routers a generated topology may have (``routers``, or ``rows * cols`` of a grid) [-]
ROUTERS_RANGE = (2, 5000)


class GeneratorConfig(StrictModel):
    """A synthetic topology (networkx generators, positions in a square of ``side_km``)."""

    kind: Literal["waxman", "grid", "random_geometric"] = Field(description="generator")
    routers: int = Field(
        40, ge=ROUTERS_RANGE[0], le=ROUTERS_RANGE[1], description="routers N (grid: rows * cols)"
    )
    rows: int | None = Field(None, ge=1, description="grid rows (grid only)")
    cols: int | None = Field(None, ge=1, description="grid columns (grid only)")
    side_km: float = Field(4000.0, gt=0, description="side of the square the routers lie in [km]")
    spacing_km: float = Field(500.0, gt=0, description="grid spacing [km] (grid only)")
    seed: int = Field(0, ge=0, description="seed of the random layout")

    @model_validator(mode="after")
    def _grid_shape(self) -> GeneratorConfig:
        if self.kind == "grid":
            if self.rows is None or self.cols is None:
                raise ValueError("a grid generator needs rows and cols")
            lo, hi = ROUTERS_RANGE
            if not lo <= self.rows * self.cols <= hi:
                raise ValueError(
                    f"a grid of rows x cols = {self.rows} x {self.cols} = "
                    f"{self.rows * self.cols} routers; allowed: {lo} to {hi} routers"
                )
        return self


class NetworkConfig(StrictModel):
    """The router network and how gaps in a GraphML file are handled."""

    topology: str | None = Field(
        None, description="Topology Zoo GraphML file, relative to the repo or the scenario file"
    )
    generator: GeneratorConfig | None = Field(None, description="a synthetic topology instead")
    km_per_step: float = Field(
        500.0,
        gt=0,
        description="propagation distance per step "
        "[km/step]; link delay = max(1, ceil(km / km_per_step)) [steps]",
    )
    missing_coordinates: Literal["neighbour_mean", "error"] = Field(
        "neighbour_mean",
        description="nodes without Latitude/Longitude: placed at the mean of "
        "their neighbours, or refused",
    )
    external_nodes: Literal["keep", "drop"] = Field(
        "keep", description="nodes marked Internal=0: kept as routers, or removed"
    )
    components: Literal["error", "largest"] = Field(
        "error", description="a network in several parts: refused, or the largest part kept"
    )

    @model_validator(mode="after")
    def _one_source(self) -> NetworkConfig:
        if (self.topology is None) == (self.generator is None):
            raise ValueError(
                "give exactly one of network.topology (a GraphML file) and network.generator"
            )
        return self


class RateSegment(StrictModel):
    """A stretch of the episode with a constant Poisson arrival rate."""

    steps: int = Field(ge=1, description="length of the segment [steps]")
    rate_pkt_per_step: float = Field(
        ge=0, description="mean new packets per step, whole network [pkt/step]"
    )


def _ltos_profile() -> list[RateSegment]:
    # LToS's routing setting: 1, 10/3 and 1 packets per step over steps 0-100, 100-200, 200-300
    return [
        RateSegment(steps=100, rate_pkt_per_step=1.0),
        RateSegment(steps=100, rate_pkt_per_step=10.0 / 3.0),
        RateSegment(steps=100, rate_pkt_per_step=1.0),
    ]


class TrafficConfig(StrictModel):
    """Packet arrivals and queues."""

    profile: list[RateSegment] = Field(
        default_factory=_ltos_profile,
        min_length=1,
        description="rate segments, in order; the episode is their total length [steps]",
    )
    buffer_pkt: int | None = Field(
        None,
        ge=1,
        description="queue limit per router [pkt]; a "
        "packet arriving at a full queue is dropped (None = unbounded)",
    )

    @property
    def episode_steps(self) -> int:
        """Episode length T [steps]."""
        return sum(s.steps for s in self.profile)


class EvaluationConfig(StrictModel):
    """How ``simulate`` measures each controller."""

    episodes: int = Field(
        3,
        ge=1,
        le=100,
        description="traffic seeds seed, seed+1, ... (one "
        "episode each); KPIs are reported as mean and std over them",
    )
    test_episodes: int = Field(
        20,
        ge=0,
        le=200,
        description="traffic seeds of the test split (simulate --split test), drawn from the "
        "test seed stream that no training or validation touches (docs/protocol.md) [-]",
    )


class EnvOptions(StrictModel):
    """What learned controllers see and are rewarded for (the baselines ignore both)."""

    OMIT_WHEN_NONE = ("observation", "loop_mask")

    path_features: bool = Field(
        False,
        description="append to each router's observation, per neighbour slot, the link delay + "
        "shortest-path delay from that neighbour to the head-of-line packet's destination [steps]",
    )
    observation: Literal["neighbourhood"] | None = Field(
        None,
        description="None: the slot layout (local = state = [q, onehot(dst) (N), per-slot "
        "features (K)], sized for one topology); neighbourhood: local = size-free features "
        "(queue, head packet, own and destination position in the topology's bounding box, "
        "degree, packets on own links), the same on every topology, for graph learners "
        "that read the neighbours' features (DGN, LToS); state keeps the slot layout",
    )
    loop_mask: bool | None = Field(
        None,
        description="loopback detection (LToS seed §5.3): the action mask of a router also "
        "hides the neighbours its head packet has visited (all real neighbours stay allowed "
        "when it has visited every one); only learners that follow the mask are affected",
    )
    reward: Literal["queue", "queue_and_flight", "network", "queue_and_hop"] = Field(
        "queue",
        description="reward of a router: -(its queue) [pkt], or -(its queue + packets in flight "
        "on its outgoing links) [pkt] (the team's sum over an episode is then -(total delay) "
        "[steps]), or network: -(all packets in the network) / N [pkt], the same for every "
        "router, or queue_and_hop: -(its queue) [pkt] - the cost of its forwarding [steps] "
        "(link delay + the next router's queue + the detour over the shortest path)",
    )


class TrainConfig(TrainBase):
    """Defaults for ``gridmarl train`` on a routing scenario (command-line flags override)."""


class RoutingScenario(ScenarioBase):
    """``domain: routing``: packets routed hop by hop over a router network."""

    GRAPH_GROUPS: ClassVar[tuple[str, ...]] = ("core_edge", "single")
    GRAPH_NEIGHBORS: ClassVar[tuple[str, ...]] = ("links",)
    GRAPH_EXPLICIT_NEIGHBORS: ClassVar[bool] = False  # the neighbours are the action slots

    domain: Literal["routing"]
    network: NetworkConfig
    traffic: TrafficConfig = Field(default_factory=TrafficConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    env: EnvOptions = Field(default_factory=EnvOptions, description="learned-controller view")
    train: TrainConfig = Field(default_factory=TrainConfig, description="gridmarl train")

    def check_resources(self) -> None:
        """The topology loads (or is refused with what is missing) and one episode fits one
        env's memory and packet pool (``routing.env.episode_size_problem``); the controllers
        are checked by ``gridmarl.config.check_controllers``."""
        from gridmarl.routing.env import episode_size_problem
        from gridmarl.routing.topology import load_topology

        topo = load_topology(self)
        profile = [(s.steps, s.rate_pkt_per_step) for s in self.traffic.profile]
        problem = episode_size_problem(profile, topo.n_routers, int(topo.delay_steps.max()))
        if problem is not None:
            raise ScenarioError(f"traffic.profile: {problem}")

    def agent_count(self) -> int:
        """Routers ``N`` of the topology (one agent each)."""
        from gridmarl.routing.topology import load_topology

        return load_topology(self).n_routers
