"""A domain as one object: what ``simulate``, ``train``, ``finetune`` and the scenario loader need.

A :class:`Domain` names its parts by ``"module"`` / ``"module:attribute"`` strings and imports
them only when asked, so listing domains (or validating a scenario) imports no simulator, solver
or env.  The domains themselves are registered in one place, ``gridmarl.domains``; nothing in
``gridmarl.core`` or ``gridmarl.controllers`` imports a domain.

What a domain provides (the training hooks are the module named by ``training``; interface in
``gridmarl.core.training``):

* ``scenario_model``: the pydantic model of its scenarios (``gridmarl.config`` unions them);
* ``simulator``: a module with ``simulate(scenario, console) -> SimulationResult``;
* ``policy_shape``: ``(scenario) -> PolicyShape``, what a learned policy must match to act in
  the scenario's env, computed without building the env (``gridmarl validate`` checks
  checkpoints against it);
* ``training``: a module with ``train_env_factory``, ``make_validator``, ``TEACHERS`` and
  optionally ``worker_processes``;
* ``rule_baselines``, ``optimisation_baselines``: controller names ``simulate`` runs besides
  learned ones;
* ``action_kinds``: ``discrete`` / ``continuous`` / ``hybrid``, the action parts its env has;
* ``graph``: whether its env fills ``AgentSpec.neighbors`` with an interaction graph.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from gridmarl.core.env import MultiAgentEnv
    from gridmarl.core.training import Validator
    from gridmarl.core.types import PolicyShape

ActionKind = Literal["discrete", "continuous", "hybrid"]
ACTION_KINDS: tuple[ActionKind, ...] = ("discrete", "continuous", "hybrid")


def action_kind(n_discrete: int, n_continuous: int) -> ActionKind:
    """The kind of an action space with ``n_discrete`` choices and ``n_continuous`` dimensions
    (``n_discrete`` of 0 or 1 is no real discrete choice)."""
    if n_discrete > 1 and n_continuous > 0:
        return "hybrid"
    return "continuous" if n_continuous > 0 else "discrete"


def load_attr(target: str) -> Any:
    """The object ``"package.module:attribute"`` names (the module alone without ``:``)."""
    module, _, attr = target.partition(":")
    mod = import_module(module)
    return getattr(mod, attr) if attr else mod


@dataclass(frozen=True)
class Domain:
    """One application domain (energy, traffic, routing, …) and the parts gridmarl drives.

    Attributes:
        name: the ``domain:`` key of its scenarios.
        description: one line for listings.
        scenario_model: ``"module:Class"`` of its scenario model.
        simulator: module with ``simulate(scenario, console)``.
        policy_shape: ``"module:function"``, ``(scenario) -> core.types.PolicyShape``: what a
            learned policy must match in the scenario's env, without building it (no
            simulator, solver or data).
        training: module with the training hooks (``gridmarl.core.training``).
        rule_baselines: rule controllers ``simulate`` runs (``controllers[].name``).
        optimisation_baselines: optimisation controllers ``simulate`` runs (MILP, MPC, MCF …).
        action_kinds: the action parts of its env (a learner must handle all of them).
        graph: its env fills ``AgentSpec.neighbors`` with an interaction graph.
    """

    name: str
    description: str
    scenario_model: str
    simulator: str
    training: str
    rule_baselines: tuple[str, ...]
    optimisation_baselines: tuple[str, ...]
    action_kinds: frozenset[ActionKind]
    graph: bool
    policy_shape: str

    @property
    def baselines(self) -> tuple[str, ...]:
        """Every non-learned controller name ``simulate`` accepts, rules first."""
        return self.rule_baselines + self.optimisation_baselines

    def scenario_class(self) -> type:
        """The scenario model (imports the domain's config module, no simulator)."""
        return load_attr(self.scenario_model)

    def shape_for(self, scenario: Any) -> PolicyShape:
        """What a learned policy must match in ``scenario``'s env (``policy_shape``)."""
        return load_attr(self.policy_shape)(scenario)

    def simulate(self, scenario: Any, console: Any = None) -> Any:
        """Run ``scenario``'s controllers on its evaluation window (``SimulationResult``)."""
        return load_attr(self.simulator).simulate(scenario, console=console)

    def _hooks(self) -> Any:
        return load_attr(self.training)

    def train_env_factory(
        self, scenario: Any, device: Any, seed: int
    ) -> Callable[[int], MultiAgentEnv]:
        """The env factory learners train on: ``num_envs -> MultiAgentEnv`` on ``device``."""
        return self._hooks().train_env_factory(scenario, device, seed)

    def make_validator(self, scenario: Any, run_dir: Path, say: Any = print) -> Validator:
        """The validation KPI and its baselines (references cached in ``run_dir``)."""
        return self._hooks().make_validator(scenario, run_dir, say=say)

    def teachers(self) -> dict[str, Callable[[Any], Any]]:
        """``name -> (scenario) -> Controller``: what ``--warm-start`` may clone."""
        return dict(self._hooks().TEACHERS)

    def worker_processes(self, scenario: Any, num_envs: int) -> int:
        """Processes its training env runs beside the driver for ``num_envs`` episodes."""
        busy = getattr(self._hooks(), "worker_processes", None)
        return int(busy(scenario, num_envs)) if busy is not None else 0

    def refusal(self, learner: str, action_kinds: Collection[str], needs_graph: bool) -> str | None:
        """Why a learner that handles ``action_kinds`` (and ``needs_graph``) cannot train on
        this domain, or None when it can."""
        missing = sorted(set(self.action_kinds) - set(action_kinds))
        if missing:
            return (
                f"{learner} handles {', '.join(sorted(action_kinds)) or 'no'} actions, the "
                f"{self.name} domain's env has {', '.join(missing)} actions"
            )
        if needs_graph and not self.graph:
            return f"{learner} needs an agent graph, the {self.name} domain provides none"
        return None
