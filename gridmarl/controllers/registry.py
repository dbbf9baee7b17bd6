"""Learned controllers by name, with capability flags (BenchMARL-style) that drive the
controller × domain test matrix and tell ``simulate`` / ``train`` what a controller can do.

Rule and optimisation baselines are per domain and are not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch-free import: validating a scenario lists the names
    from gridmarl.core.controller import Controller
    from gridmarl.core.env import MultiAgentEnv


@dataclass(frozen=True)
class ControllerInfo:
    """What a learned controller is and what it supports.

    Attributes:
        name: registered name (``--controller``, ``controllers[].name``).
        target: ``"module:Class"`` of the ``Trainable`` (imported lazily).
        config: ``"module:Class"`` of its hyper-parameter dataclass.
        discrete: handles a discrete action part.
        continuous: handles a continuous action part.
        hybrid: handles both at once.
        action_mask: respects ``Observation.action_mask``.
        centralised_critic: trains with a critic that sees ``state`` / ``global_``.
        size_free: one set of weights runs on any number of agents.
        paper: the paper the implementation follows.
    """

    name: str
    target: str
    config: str
    discrete: bool
    continuous: bool
    hybrid: bool
    action_mask: bool
    centralised_critic: bool
    size_free: bool
    paper: str

    def load_class(self) -> type:
        """The controller class."""
        return _import(self.target)

    def load_config_class(self) -> type:
        """The hyper-parameter dataclass."""
        return _import(self.config)


def _import(target: str) -> type:
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)


REGISTRY: dict[str, ControllerInfo] = {
    "matppo": ControllerInfo(
        name="matppo",
        target="gridmarl.controllers.matppo:MATPPO",
        config="gridmarl.controllers.matppo:MATPPOConfig",
        discrete=True,
        continuous=True,
        hybrid=True,
        action_mask=True,
        centralised_critic=True,
        size_free=True,
        paper="Yu et al. 2022 (MAPPO), arXiv:2103.01955; Schulman et al. 2017 (PPO)",
    ),
}


def get(name: str) -> ControllerInfo:
    """The registered controller ``name``.

    Raises:
        KeyError: with the list of registered names.
    """
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown learned controller {name!r}; registered: {', '.join(sorted(REGISTRY))}"
        ) from None


def names() -> list[str]:
    """Registered learned controller names, sorted."""
    return sorted(REGISTRY)


def load_policy(
    name: str, checkpoint: str | Path, env: MultiAgentEnv, scenario: Any = None
) -> Controller:
    """A trained controller read from ``checkpoint``, ready to act in ``env``.

    The weights must fit ``env.spec`` (feature and action sizes); the number of agents may differ
    from the training community's (size-free actors).  The scenario is not required to be the
    training one: ``simulate`` runs shipped policies on other seeds and sizes too.

    Raises:
        ScenarioError: unknown name, unreadable checkpoint, or shapes that do not fit.
    """
    from gridmarl.core.errors import ScenarioError

    try:
        info = get(name)
    except KeyError as exc:
        raise ScenarioError(str(exc.args[0])) from None
    cls = info.load_class()
    return cls.from_checkpoint(checkpoint, env.spec, device="cpu")
