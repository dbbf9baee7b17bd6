"""Energy-community scenario schema (``domain: energy``).

Every field carries its unit in brackets.  Ranges ``[lo, hi]`` are sampled uniformly per
prosumer from the scenario seed (see ``gridmarl.energy.data.build_community``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from gridmarl.config import ScenarioBase, StrictModel, TrainBase, resolve_path
from gridmarl.core.errors import ScenarioError

Range = tuple[float, float]


MILP_METHODS = ("auto", "exact", "lp_dp", "columns")


def check_milp_options(options: dict) -> None:
    """``controllers[milp].options``: ``method`` (one of ``MILP_METHODS``) and ``workers``
    (processes of the ``lp_dp`` and ``columns`` methods, an integer >= 1), nothing else.

    Raises:
        ScenarioError: naming the key and what is allowed.
    """
    extra = set(options) - {"method", "workers"}
    method = options.get("method", "auto")
    workers = options.get("workers", 1)
    if extra or method not in MILP_METHODS or not (isinstance(workers, int) and workers >= 1):
        raise ScenarioError(
            f"controllers[milp].options: {dict(options)}; allowed keys: method "
            f"({', '.join(MILP_METHODS)}), workers (an integer >= 1: processes of the "
            "lp_dp and columns methods)"
        )


def _check_range(v: Range, lo: float | None = None, hi: float | None = None) -> Range:
    a, b = v
    if a > b:
        raise ValueError(f"range lower bound {a} is above upper bound {b}")
    if lo is not None and a < lo:
        raise ValueError(f"must be >= {lo}")
    if hi is not None and b > hi:
        raise ValueError(f"must be <= {hi}")
    return v


class DateSpan(StrictModel):
    """A span of whole days of the dataset."""

    start: date = Field(description="first day (YYYY-MM-DD), local time of the dataset")
    days: int = Field(ge=1, le=366, description="number of days [d]")


class WindowConfig(StrictModel):
    """Which days train, validate, develop, test and evaluate, and the step length.

    Roles (docs/protocol.md): ``train`` is what learners see; ``validate`` picks checkpoints and
    any tuning; ``dev`` windows were looked at while developing (never a reported figure);
    ``test`` windows are touched once, to report (``gridmarl simulate --split test``), and by
    no training, selection or tuning code.  ``evaluate`` is the operator's window that plain
    ``gridmarl simulate`` runs.  Train, validate, dev and test windows are pairwise disjoint;
    ``evaluate`` lies outside train and validate.
    """

    step_h: Literal[1.0, 0.5, 0.25] = Field(1.0, description="decision step Δt [h]")
    train: DateSpan = Field(description="days learners train on")
    validate_: DateSpan = Field(
        alias="validate", description="days that select checkpoints during training (and tuning)"
    )
    evaluate: DateSpan = Field(description="held-out days plain simulate reports on")
    dev: list[DateSpan] = Field(
        default_factory=list,
        description="windows used while developing and comparing variants (not a test figure)",
    )
    test: list[DateSpan] = Field(
        default_factory=list,
        description="held-out test windows, reported with simulate --split test; never used "
        "for training, selection or tuning",
    )

    model_config = StrictModel.model_config | {"populate_by_name": True}

    def spans(self) -> list[tuple[str, DateSpan]]:
        """``(key, span)`` of every window, keys as in the file (``test[2]``)."""
        out = [("train", self.train), ("validate", self.validate_), ("evaluate", self.evaluate)]
        out += [(f"dev[{i}]", s) for i, s in enumerate(self.dev)]
        out += [(f"test[{i}]", s) for i, s in enumerate(self.test)]
        return out

    @model_validator(mode="after")
    def _disjoint(self) -> WindowConfig:
        def days(s: DateSpan) -> set[int]:
            return {s.start.toordinal() + i for i in range(s.days)}

        if days(self.evaluate) & days(self.train):
            raise ValueError(
                "window.evaluate overlaps window.train; the evaluation days must be held out"
            )
        if days(self.evaluate) & days(self.validate_):
            raise ValueError("window.evaluate overlaps window.validate")
        # the roles of the protocol never share a day
        roles = [("train", self.train), ("validate", self.validate_)]
        roles += [(f"dev[{i}]", s) for i, s in enumerate(self.dev)]
        roles += [(f"test[{i}]", s) for i, s in enumerate(self.test)]
        for i, (ka, a) in enumerate(roles):
            for kb, b in roles[i + 1 :]:
                if days(a) & days(b):
                    raise ValueError(
                        f"window.{kb} overlaps window.{ka}; train, validate, dev and test "
                        "windows must not share a day"
                    )
        return self


class ForecastConfig(StrictModel):
    """The upcoming window the agents (and the MPC) see."""

    horizon_h: float = Field(3.0, gt=0, le=48, description="forecast window length [h]")
    kind: Literal["perfect", "noisy"] = Field("perfect", description="perfect or noisy forecast")
    noise_std: float = Field(
        0.1,
        ge=0,
        le=1,
        description="relative std of the forecast error at "
        "one step ahead; grows with sqrt(lead steps) [-]",
    )


class PVConfig(StrictModel):
    """Rooftop PV of each prosumer (pvlib PVWatts chain)."""

    kwp: Range = Field((3.0, 6.0), description="DC nameplate [kWp]")
    tilt_deg: Range = Field((15.0, 35.0), description="panel tilt from horizontal [deg]")
    azimuth_deg: Range = Field((135.0, 225.0), description="panel azimuth, 180 = south [deg]")
    gamma_pdc: float = Field(-0.004, le=0, description="DC power temperature coefficient [1/C]")
    inverter_eta: float = Field(0.96, gt=0, le=1, description="nominal inverter efficiency [-]")
    losses_pct: float = Field(14.0, ge=0, lt=100, description="system losses (PVWatts) [%]")

    _r1 = field_validator("kwp")(lambda v: _check_range(v, 0.0))
    _r2 = field_validator("tilt_deg")(lambda v: _check_range(v, 0.0, 90.0))
    _r3 = field_validator("azimuth_deg")(lambda v: _check_range(v, 0.0, 360.0))


class BatteryConfig(StrictModel):
    """Home battery: e_{t+1} = e_t + (η_c p_c − p_d / η_d) Δt."""

    share: float = Field(1.0, ge=0, le=1, description="fraction of prosumers with a battery [-]")
    capacity_kwh: Range = Field((6.4, 13.5), description="usable capacity e_max [kWh]")
    power_kw: Range = Field((3.3, 5.0), description="max charge / discharge power P_max [kW]")
    eta_charge: float = Field(0.95, gt=0, le=1, description="charge efficiency η_c [-]")
    eta_discharge: float = Field(0.95, gt=0, le=1, description="discharge efficiency η_d [-]")
    soc_min: float = Field(0.1, ge=0, lt=1, description="e_min / e_max [-]")
    soc_init: float = Field(0.5, ge=0, le=1, description="initial e / e_max [-]")
    degradation_usd_per_kwh: float = Field(
        0.01, ge=0, description="c_deg per kWh throughput [$/kWh]"
    )

    _r1 = field_validator("capacity_kwh", "power_kw")(lambda v: _check_range(v, 0.0))

    @model_validator(mode="after")
    def _soc(self) -> BatteryConfig:
        if self.soc_init < self.soc_min:
            raise ValueError(f"soc_init {self.soc_init} is below soc_min {self.soc_min}")
        return self


class EVConfig(StrictModel):
    """Electric vehicle: home from arrival to departure each day, charged only when home."""

    share: float = Field(0.4, ge=0, le=1, description="fraction of prosumers with an EV [-]")
    capacity_kwh: Range = Field((40.0, 75.0), description="battery capacity [kWh]")
    charger_kw: Range = Field((3.7, 7.4), description="max charge power P_ev [kW]")
    efficiency: float = Field(0.92, gt=0, le=1, description="charge efficiency η_ev [-]")
    arrival_h: Range = Field((16.0, 20.0), description="arrival time of day [h]")
    departure_h: Range = Field((6.0, 9.0), description="departure time of day (next day) [h]")
    arrival_soc: Range = Field((0.2, 0.5), description="state of charge on arrival [-]")
    target_soc: float = Field(
        0.8, gt=0, le=1, description="state of charge wanted at departure [-]"
    )
    unmet_usd_per_kwh: float = Field(
        0.6, ge=0, description="c_unmet per kWh short of the target at departure [$/kWh]"
    )
    rate_feature: bool = Field(
        False,
        description=(
            "add one local feature: the share of its charger's power an EV needs on average "
            "from now to departure to reach the target (ev_need_hours / ev_hours_left, capped "
            "at 2; the prosumer's own information, a ratio the actor would otherwise have to "
            "learn; policies trained without it do not load with it)"
        ),
    )
    deadline_guard: bool = Field(
        False,
        description=(
            "action projection for every controller: an EV's charging is raised to the least "
            "power that still reaches its target at departure with the full charger in the "
            "hours left (0 while the target is reachable later); what it added is recorded as "
            "clipped. A schedule that meets every reachable target never triggers it, so the "
            "MILP's optimum is unchanged"
        ),
    )
    action_prior: bool = Field(
        False,
        description=(
            "add one local feature, the EV action that spreads the energy still needed evenly "
            "over the hours left (2 min(1, ev_need_hours / ev_hours_left) - 1, -1 without a car "
            "at home), declared as the EV action's prior: a learned policy's Gaussian mean is "
            "this plus its network's output (a residual policy); rule and optimisation "
            "controllers ignore it; policies trained without it do not load with it"
        ),
    )

    _r1 = field_validator("capacity_kwh", "charger_kw")(lambda v: _check_range(v, 0.0))
    _r2 = field_validator("arrival_h", "departure_h")(lambda v: _check_range(v, 0.0, 24.0))
    _r3 = field_validator("arrival_soc")(lambda v: _check_range(v, 0.0, 1.0))


class HeatPumpConfig(StrictModel):
    """Air-source heat pump heating a first-order RC building model."""

    share: float = Field(0.5, ge=0, le=1, description="fraction of prosumers with a heat pump [-]")
    power_kw: Range = Field((1.5, 3.0), description="electric power at full mode [kW]")
    modes: int = Field(3, ge=2, le=8, description="discrete modes, evenly spaced from off to full")
    cop_nominal: float = Field(3.5, gt=0, description="COP at 7 C outdoor, 20 C indoor [-]")
    cop_slope_per_c: float = Field(
        0.05, ge=0, description="COP gain per degree of outdoor temperature above 7 C [1/C]"
    )
    r_c_per_kw: Range = Field((4.0, 8.0), description="thermal resistance R [C/kW]")
    c_kwh_per_c: Range = Field((3.0, 6.0), description="thermal capacitance C [kWh/C]")
    comfort_c: Range = Field((20.0, 23.0), description="comfort band [θ_lo, θ_hi] [C]")
    init_c: float = Field(21.0, description="initial indoor temperature [C]")
    comfort_usd_per_c_h: float = Field(
        0.5, ge=0, description="c_comfort per degree-hour outside the band [$/(C·h)]"
    )

    _r1 = field_validator("power_kw", "r_c_per_kw", "c_kwh_per_c")(lambda v: _check_range(v, 0.0))
    _r2 = field_validator("comfort_c")(lambda v: _check_range(v, -50.0, 60.0))


class TariffConfig(StrictModel):
    """An import tariff set by the scenario: off-peak, and a peak price in a daily window.

    Replaces the dataset's ``pricing`` file (needed for datasets without one, e.g. the
    CityLearn 2020 and 2021 challenge data).  A step is in the peak when its start's time of
    day h [h, local] lies in ``[peak_hours[0], peak_hours[1])`` (on weekdays only with
    ``peak_days: weekdays``).  ``market.price_scale`` still multiplies it.
    """

    off_peak_usd_per_kwh: float = Field(gt=0, description="import price outside the peak [$/kWh]")
    peak_usd_per_kwh: float | None = Field(
        None, gt=0, description="import price in the peak window [$/kWh] (default: off-peak)"
    )
    peak_hours: Range = Field((16.0, 21.0), description="peak window [start, end) [h of day]")
    peak_days: Literal["all", "weekdays"] = Field("all", description="days with a peak window")

    _r1 = field_validator("peak_hours")(lambda v: _check_range(v, 0.0, 24.0))


class MarketConfig(StrictModel):
    """Cloud trading platform and the grid connection."""

    OMIT_WHEN_NONE: ClassVar[tuple[str, ...]] = ("tariff",)

    feed_in_usd_per_kwh: float = Field(0.05, ge=0, description="price paid for export [$/kWh]")
    internal_price: Literal["mid_market"] = Field(
        "mid_market", description="P2P clearing price: (import price + feed-in) / 2"
    )
    transformer_kw: float = Field(200.0, gt=0, description="limit on |G| [kW]")
    over_limit_usd_per_kwh: float = Field(
        1.0, ge=0, description="c_over per kWh above the limit [$/kWh]"
    )
    peak_usd_per_kw: float = Field(
        0.0, ge=0, description="charge on the window's peak import [$/kW]"
    )
    price_scale: float = Field(1.0, gt=0, description="multiplier on the dataset's import tariff")
    broadcast_loading: bool = Field(
        False,
        description=(
            "show every prosumer the transformer loading of the previous step, |G_prev| / "
            "limit, as a grid operator could broadcast it: an extra local feature that is not "
            "the prosumer's own information (a labelled variant; policies trained without it "
            "do not load with it)"
        ),
    )
    tariff: TariffConfig | None = Field(
        None,
        description="import tariff set by the scenario instead of the dataset's pricing file "
        "(required when the dataset has none)",
    )


class FeederConfig(StrictModel):
    """Radial low-voltage feeders under the transformer: which prosumers share a feeder.

    Graph metadata only (the interaction graph of ``AgentSpec.neighbors``, and the ``feeders``
    group rule): the feeders carry no line limits and change no cost or KPI.  Default (no
    ``community.feeders``): one feeder per ``DEFAULT_HOMES_PER_FEEDER`` prosumers, rounded
    up (5 feeders of 10 for 50 prosumers), filled in index order (``gridmarl/energy/feeders.py``).
    """

    count: int | None = Field(
        None,
        ge=1,
        description="number of feeders F; prosumers fill them in index order in contiguous "
        "blocks whose sizes differ by at most one (default: N / 10, rounded up)",
    )
    assignment: list[int] | None = Field(
        None,
        description="the feeder of every prosumer, 0 … F-1 with every feeder used (instead of "
        "count)",
    )
    reach: int | None = Field(
        None,
        ge=1,
        description="neighbours of a prosumer: the prosumers on its feeder at most this many "
        "places away along it (index order) (default: every other prosumer on the feeder)",
    )

    @model_validator(mode="after")
    def _one_layout(self) -> FeederConfig:
        if self.count is not None and self.assignment is not None:
            raise ValueError("give count or assignment, not both")
        return self


class CommunityConfig(StrictModel):
    """The prosumers behind one transformer."""

    OMIT_WHEN_NONE: ClassVar[tuple[str, ...]] = ("feeders", "congestion_signal")

    prosumers: int = Field(50, ge=1, le=10_000, description="number of prosumers N")
    dataset: str = Field(
        "citylearn_2022",
        description="'citylearn_2022' (shipped) or a path to a "
        "CityLearn-format folder (schema.json + building CSVs)",
    )
    load_scale: Range = Field((0.8, 1.2), description="multiplier on the measured load [-]")
    latitude_deg: float = Field(34.09, ge=-90, le=90, description="site latitude [deg]")
    longitude_deg: float = Field(-117.43, ge=-180, le=180, description="site longitude [deg]")
    utc_offset_h: float = Field(-8.0, ge=-12, le=14, description="dataset clock vs UTC [h]")
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    pv: PVConfig = Field(default_factory=PVConfig)
    battery: BatteryConfig = Field(default_factory=BatteryConfig)
    ev: EVConfig = Field(default_factory=EVConfig)
    heat_pump: HeatPumpConfig = Field(default_factory=HeatPumpConfig)
    market: MarketConfig = Field(default_factory=MarketConfig)
    feeders: FeederConfig | None = Field(
        None,
        description="radial feeders under the transformer (the agents' interaction graph; no "
        "physics); default: one feeder per 10 prosumers in index order",
    )

    congestion_signal: Literal["none", "headroom", "envelope", "price"] | None = Field(
        None,
        description=(
            "what the trading platform publishes to every home each step about the "
            "transformer (local features; gridmarl/energy/env.py): 'headroom' (the import and "
            "export headroom per home [kW] the transformer has left if the homes' devices draw "
            "what they drew in the previous step), 'envelope' (each home's fair share of what the "
            "transformer leaves after the homes' inflexible net load, for import and export "
            "[kW]: a dynamic operating envelope), 'price' (a congestion price [$/kWh] that "
            "rises from 0 at 80 % to the over-limit charge at 100 % of that expected loading; "
            "a signal, not billed) or 'none' (default); policies trained without it do not "
            "load with it, and vice versa"
        ),
    )

    _r1 = field_validator("load_scale")(lambda v: _check_range(v, 0.0))

    @field_validator("congestion_signal")
    @classmethod
    def _none_is_off(cls, v: str | None) -> str | None:
        return None if v == "none" else v

    @field_validator("feeders")
    @classmethod
    def _feeders_fit(cls, f: FeederConfig | None, info: ValidationInfo) -> FeederConfig | None:
        n = info.data.get("prosumers")
        if f is None or n is None:
            return f
        if f.count is not None and f.count > n:
            raise ValueError(f"count {f.count} is above the {n} prosumers")
        if f.assignment is not None:
            a = f.assignment
            if len(a) != n:
                raise ValueError(
                    f"assignment names {len(a)} feeders for {n} prosumers; give one per prosumer"
                )
            if min(a) < 0 or set(a) != set(range(max(a) + 1)):
                raise ValueError("assignment: feeder ids must be 0 … F-1 with every feeder used")
        return f


class TrainConfig(TrainBase):
    """Defaults for ``gridmarl train`` on an energy scenario (command-line flags override)."""

    episode_days: int = Field(7, ge=1, description="episode length [d]")
    demo_episodes: int = Field(
        16, ge=1, description="training episodes the MILP solves for `--warm-start milp`"
    )
    demo_time_limit_s: float = Field(
        20.0, gt=0, description="HiGHS limit per MILP demonstration episode [s]"
    )
    demo_comfort_margin_c: float = Field(
        0.0,
        ge=0,
        description=(
            "the MILP teacher plans with each heat pump's comfort band narrowed by this much on "
            "both sides [C], so that its demonstrations keep a margin a clone's timing errors "
            "can use; the bill is always scored on the real band (0 = the real band)"
        ),
    )
    credit: Literal["share", "marginal", "marginal_excess"] = Field(
        "share",
        description=(
            "per-agent training reward for the community-level costs: 'share' (P2P bill + "
            "proportional share of the transformer and peak costs; rewards sum to the team's), "
            "'marginal' (difference reward: the change in the community's grid, transformer "
            "and peak cost that the agent's own net power causes) or 'marginal_excess' (bill, "
            "and the transformer excess the agent causes); see gridmarl/energy/shaping.py"
        ),
    )
    battery_value_usd_per_kwh: float = Field(
        0.0,
        ge=0,
        description=(
            "v of the potential-based shaping gamma*v*e' - v*e added to each agent's training "
            "reward (e: energy in its own battery [kWh]); 0 = off; see gridmarl/energy/shaping.py"
        ),
    )
    ev_value_usd_per_kwh: float = Field(
        0.0,
        ge=0,
        description=(
            "w of the same shaping on the energy in the agent's parked EV [kWh] "
            "(0 while away); 0 = off; see gridmarl/energy/shaping.py"
        ),
    )


class EnergyScenario(ScenarioBase):
    """``domain: energy``: a community of prosumers trading behind one transformer."""

    GRAPH_GROUPS: ClassVar[tuple[str, ...]] = ("devices", "feeders")
    GRAPH_NEIGHBORS: ClassVar[tuple[str, ...]] = ("feeder",)

    domain: Literal["energy"]
    window: WindowConfig
    community: CommunityConfig = Field(default_factory=CommunityConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    def agent_count(self) -> int:
        """Prosumers ``N`` (one agent each)."""
        return self.community.prosumers

    def dataset_dir(self) -> Path:
        """The folder of the dataset named by ``community.dataset``."""
        from gridmarl.energy.citylearn import SHIPPED_DATASETS

        name = self.community.dataset
        if name in SHIPPED_DATASETS:
            return SHIPPED_DATASETS[name]
        return resolve_path(self, name)

    def check_resources(self) -> None:
        """Checks that need the data: the dataset exists and every window lies inside it (the
        controllers and their checkpoints: ``gridmarl.config.check_controllers``)."""
        from gridmarl.energy.citylearn import SHIPPED_DATASETS, dataset_span, has_pricing

        for entry in self.controllers:  # bad MILP options are bad input (exit 2), found early
            if entry.name == "milp":
                check_milp_options(entry.options)
        name = self.community.dataset
        folder = self.dataset_dir()
        if name not in SHIPPED_DATASETS and not folder.is_dir():
            raise ScenarioError(
                f"community.dataset: unknown dataset {name!r}; allowed: "
                f"{', '.join(sorted(SHIPPED_DATASETS))} or a folder with schema.json and "
                "building CSVs"
            )
        first, last = dataset_span(folder)
        for k, span in self.window.spans():
            end = date.fromordinal(span.start.toordinal() + span.days - 1)
            if span.start < first or end > last:
                raise ScenarioError(
                    f"window.{k}: {span.start} + {span.days} days lies outside the data "
                    f"({first} to {last})"
                )
        if self.community.market.tariff is None and not has_pricing(folder):
            raise ScenarioError(
                f"community.market.tariff: {folder} has no pricing file (pricing.csv); set "
                "the tariff (e.g. {off_peak_usd_per_kwh: 0.21, peak_usd_per_kwh: 0.5, "
                "peak_hours: [16, 21]})"
            )
