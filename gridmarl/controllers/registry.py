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
    from gridmarl.core.types import PolicyShape


@dataclass(frozen=True)
class ControllerInfo:
    """What a learned controller is and what it supports.

    ``gridmarl train`` reads ``action_kinds`` and ``needs_graph`` to refuse a domain the
    controller cannot run on (``core.domain.Domain.refusal``); the controller x domain test
    matrix is built from this registry.

    Attributes:
        name: registered name (``--controller``, ``controllers[].name``).
        target: ``"module:Class"`` of the learner (``core.learner.Learner``; imported lazily).
        action_kinds: the action spaces it handles: ``discrete``, ``continuous``, ``hybrid``
            (both parts at once) (``core.domain.ACTION_KINDS``).
        needs_graph: it needs the env's agent graph (``AgentSpec.neighbors``).
        on_policy: learns from the current policy's rollouts (False: off-policy, from a
            replay buffer).
        action_mask: respects ``Observation.action_mask``.
        centralised_critic: trains with a critic that sees ``state`` / ``global_``.
        size_free: one set of weights runs on any number of agents.
        checkpoint_format: the ``format`` its checkpoints record (``for_checkpoint``).
        finetuner: ``"module:Class"`` of what ``gridmarl finetune`` runs on its checkpoints
            (``ESFinetuner(policy, es_config, seed)``), or None.
        paper: the paper the implementation follows.
    """

    name: str
    target: str
    action_kinds: frozenset[str]
    needs_graph: bool
    on_policy: bool
    action_mask: bool
    centralised_critic: bool
    size_free: bool
    checkpoint_format: str
    finetuner: str | None
    paper: str

    @property
    def off_policy(self) -> bool:
        """Learns from a replay buffer (not only the current policy's rollouts)."""
        return not self.on_policy

    def load_class(self) -> Any:
        """The learner class (``core.learner.Learner``)."""
        return _import(self.target)

    def load_config_class(self) -> type:
        """The hyper-parameter dataclass (the learner's ``config_class``)."""
        return self.load_class().config_class

    def load_finetuner(self) -> Any:
        """The fine-tuner class, or None when the controller has none."""
        return _import(self.finetuner) if self.finetuner is not None else None


def _import(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)


REGISTRY: dict[str, ControllerInfo] = {
    "matppo": ControllerInfo(
        name="matppo",
        target="gridmarl.controllers.matppo:MATPPO",
        action_kinds=frozenset({"discrete", "continuous", "hybrid"}),
        needs_graph=False,
        on_policy=True,
        action_mask=True,
        centralised_critic=True,
        size_free=True,
        checkpoint_format="gridmarl.matppo/1",
        finetuner="gridmarl.controllers.es:ESFinetuner",
        paper="Yu et al. 2022 (MAPPO), arXiv:2103.01955; Schulman et al. 2017 (PPO)",
    ),
    "dqn": ControllerInfo(
        name="dqn",
        target="gridmarl.controllers.dqn:DQN",
        action_kinds=frozenset({"discrete", "continuous", "hybrid"}),
        needs_graph=False,
        on_policy=False,
        action_mask=True,
        centralised_critic=False,
        size_free=True,
        checkpoint_format="gridmarl.dqn/1",
        finetuner=None,
        paper="Mnih et al. 2015 (DQN), Nature 518; parameter-shared independent Q-learning",
    ),
    "dgn": ControllerInfo(
        name="dgn",
        target="gridmarl.controllers.dgn:DGN",
        action_kinds=frozenset({"discrete", "continuous", "hybrid"}),
        needs_graph=True,
        on_policy=False,
        action_mask=True,
        centralised_critic=False,
        size_free=True,
        checkpoint_format="gridmarl.dgn/1",
        finetuner=None,
        paper="Jiang et al. 2020 (DGN), ICLR, arXiv:1810.09202",
    ),
    "ltos": ControllerInfo(
        name="ltos",
        target="gridmarl.controllers.ltos:LToS",
        action_kinds=frozenset({"discrete", "continuous", "hybrid"}),
        needs_graph=True,
        on_policy=False,
        action_mask=True,
        centralised_critic=False,
        size_free=True,
        checkpoint_format="gridmarl.ltos/1",
        finetuner=None,
        paper="Yi et al. (LToS), Learning to Share in Multi-Agent RL (shared/seeds/004)",
    ),
    "ltos_fixed": ControllerInfo(
        name="ltos_fixed",
        target="gridmarl.controllers.ltos:LToSFixed",
        action_kinds=frozenset({"discrete", "continuous", "hybrid"}),
        needs_graph=True,
        on_policy=False,
        action_mask=True,
        centralised_critic=False,
        size_free=True,
        checkpoint_format="gridmarl.ltos_fixed/1",
        finetuner=None,
        paper="Yi et al. (LToS), fixed-weights ablation (shared/seeds/004 §5)",
    ),
    "hama": ControllerInfo(
        name="hama",
        target="gridmarl.controllers.hama:HAMA",
        action_kinds=frozenset({"discrete", "continuous", "hybrid"}),
        needs_graph=True,
        on_policy=False,
        action_mask=True,
        centralised_critic=True,
        size_free=True,
        checkpoint_format="gridmarl.hama/1",
        finetuner=None,
        paper="Ryu et al. 2020 (HAMA), arXiv:1909.12557",
    ),
    "maddpg": ControllerInfo(
        name="maddpg",
        target="gridmarl.controllers.maddpg:MADDPG",
        action_kinds=frozenset({"discrete", "continuous", "hybrid"}),
        needs_graph=True,
        on_policy=False,
        action_mask=True,
        centralised_critic=True,
        size_free=False,
        checkpoint_format="gridmarl.maddpg/1",
        finetuner=None,
        paper="Lowe et al. 2017 (MADDPG), arXiv:1706.02275; the HAMA ablation",
    ),
}


#: what ``gridmarl train`` trains without ``--controller``
DEFAULT = "matppo"


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


def _info(name: str) -> ControllerInfo:
    from gridmarl.core.errors import ScenarioError

    try:
        return get(name)
    except KeyError as exc:
        raise ScenarioError(str(exc.args[0])) from None


def check_policy(name: str, checkpoint: str | Path, shape: PolicyShape) -> ControllerInfo:
    """Refuse ``checkpoint`` unless it is a ``name`` checkpoint that loads safely (weights
    only) and fits ``shape``, the shape a scenario's env has (``Domain.shape_for``): the check
    :func:`load_policy` makes before it builds the controller, without an env
    (``gridmarl validate``).

    Raises:
        ScenarioError: unknown name, missing or unreadable checkpoint, another controller's
            checkpoint, or sizes and features that do not fit.
    """
    info = _info(name)
    info.load_class().check_checkpoint(checkpoint, shape)
    return info


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
    cls = _info(name).load_class()
    return cls.from_checkpoint(checkpoint, env.spec, device="cpu")


def for_checkpoint(path: str | Path) -> ControllerInfo:
    """The registered controller whose checkpoint ``path`` is (by its recorded ``format``).

    Raises:
        ScenarioError: an unreadable file, or a format no registered controller writes.
    """
    from gridmarl.controllers.common.checkpoint import load_state
    from gridmarl.core.errors import ScenarioError

    state = load_state(path)
    fmt = state.get("format") if isinstance(state, dict) else None
    for info in REGISTRY.values():
        if info.checkpoint_format == fmt:
            return info
    known = ", ".join(f"{i.checkpoint_format} ({i.name})" for i in REGISTRY.values())
    raise ScenarioError(f"{path}: checkpoint format {fmt!r} is not one of {known}")
