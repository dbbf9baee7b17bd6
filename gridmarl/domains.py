"""The domains gridmarl knows, registered in this one place.

The CLI, ``gridmarl.config`` (the scenario union), ``train`` and ``finetune`` read this
registry; a new domain is one :class:`~gridmarl.core.domain.Domain` entry here plus its folder.
Entries name their modules as strings and import them on use, so ``names()`` and ``get()``
import no simulator, solver or env.
"""

from __future__ import annotations

from gridmarl.core.domain import Domain
from gridmarl.core.errors import ScenarioError

DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in (
        Domain(
            name="energy",
            description="a community of prosumers trading behind one transformer",
            scenario_model="gridmarl.energy.config:EnergyScenario",
            simulator="gridmarl.energy.simulate",
            policy_shape="gridmarl.energy.simulate:policy_shape",
            training="gridmarl.energy.training",
            rule_baselines=("no_control", "rule_based"),
            optimisation_baselines=("milp", "mpc"),
            action_kinds=frozenset({"hybrid"}),  # heat-pump mode x battery / EV power
            graph=True,
        ),
        Domain(
            name="traffic",
            description="signalised intersections of a road grid (SUMO or CityFlow)",
            scenario_model="gridmarl.traffic.config:TrafficScenario",
            simulator="gridmarl.traffic.simulate",
            policy_shape="gridmarl.traffic.env:policy_shape",
            training="gridmarl.traffic.training",
            rule_baselines=("fixed_time", "max_pressure"),
            optimisation_baselines=("sf_plan",),
            action_kinds=frozenset({"discrete"}),  # the next green phase
            graph=True,
        ),
        Domain(
            name="routing",
            description="packets routed hop by hop over a router network",
            scenario_model="gridmarl.routing.config:RoutingScenario",
            simulator="gridmarl.routing.simulate",
            policy_shape="gridmarl.routing.simulate:policy_shape",
            training="gridmarl.routing.training",
            rule_baselines=("shortest_path_hops", "shortest_path_distance"),
            optimisation_baselines=("mcf",),
            action_kinds=frozenset({"discrete"}),  # the next hop of the head-of-line packet
            graph=True,
        ),
    )
}


def names() -> list[str]:
    """Registered domain names, in registration order."""
    return list(DOMAINS)


def get(name: str) -> Domain:
    """The domain ``name``.

    Raises:
        ScenarioError: an unknown name, with the registered ones.
    """
    try:
        return DOMAINS[name]
    except KeyError:
        raise ScenarioError(f"unknown domain {name!r}; allowed: {', '.join(DOMAINS)}") from None


def of(scenario: object) -> Domain:
    """The domain of a validated scenario (``scenario.domain``).

    Raises:
        ScenarioError: naming the scenario's source and the registered domains.
    """
    name = getattr(scenario, "domain", None)
    if name not in DOMAINS:
        source = getattr(scenario, "source", "<scenario>")
        raise ScenarioError(
            f"{source}: unknown domain {name!r}; gridmarl supports domain: {', '.join(DOMAINS)}"
        )
    return DOMAINS[name]
