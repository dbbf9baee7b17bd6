"""What ``gridmarl train`` and ``gridmarl finetune`` drive: the :class:`Learner` protocol.

A learner is a controller that improves from experience in rounds: ``collect`` experience from
an env, then ``update`` from it.  The drivers only call the methods below (never a learner's
private attributes), so one driver serves every learned controller, on-policy (MATPPO: a
rollout, then a PPO update) or off-policy (a step into the replay buffer, then a sampled
update).  :func:`run` is the loop; a learner's own ``train(env_factory, budget, logger)`` is
that loop too.

| member | what |
|---|---|
| ``config_class`` | its hyper-parameter dataclass; ``config_class.from_options(mapping)`` |
| ``__init__(spec, config, device, seed)`` | a fresh learner for an env's ``AgentSpec`` |
| ``from_checkpoint(path, spec, device, scenario_hash)`` | one read from a checkpoint |
| ``check_checkpoint(path, spec, scenario_hash)`` | refuse a checkpoint that does not fit (no env) |
| ``cfg`` | its config (``cfg.num_envs``: the parallel episodes it collects from) |
| ``seed``, ``meta`` | its seed; notes written to the checkpoint sidecar |
| ``progress()`` | :class:`Progress`: agent-steps and updates so far |
| ``collect(env, budget)`` | experience from ``env`` (opaque to the driver) |
| ``update(batch)`` | learn from it; returns the metrics to log |
| ``act(obs, deterministic)`` | the ``Controller`` interface (validation runs it) |
| ``state()``, ``save(path)`` | the checkpoint's content; write it atomically (+ sidecar) |
| ``warm_start(env, teacher, epochs, seed, keep_prior)`` | clone a teacher before learning |
| ``mixes_envs`` (optional) | true: ``collect`` may alternate envs of other sizes (variants) |
| ``init_from(path)`` (optional) | start from another run's weights (``train --init-from``) |
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from gridmarl.core.env import MultiAgentEnv
    from gridmarl.core.types import Action, AgentSpec, Observation, PolicyShape


@dataclass(frozen=True)
class Progress:
    """How far a learner has come.

    Attributes:
        agent_steps: experience consumed [agent-steps] (env steps × agents).
        updates: learning updates done [-].
    """

    agent_steps: int
    updates: int


class LearnerConfig(Protocol):
    """A learner's hyper-parameters (a dataclass)."""

    num_envs: int

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> LearnerConfig:
        """Build from ``scenario.train.options``; unknown names raise ``ScenarioError``."""


class TrainingLogger(Protocol):
    """Receives the metrics after every update (the driver adds progress, TensorBoard,
    validation and checkpoints)."""

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """``step`` = agent-steps so far; ``metrics`` = name -> value."""


@runtime_checkable
class Learner(Protocol):
    """A trainable controller as the drivers see it (table in the module docstring)."""

    name: str
    seed: int
    meta: dict[str, Any]
    cfg: Any
    config_class: ClassVar[type]

    def __init__(
        self, spec: AgentSpec, config: Any, device: torch.device | str, seed: int
    ) -> None: ...

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        spec: AgentSpec,
        device: torch.device | str = "cpu",
        scenario_hash: str | None = None,
    ) -> Learner:
        """A learner built with a checkpoint's hyper-parameters and loaded from it.

        Raises:
            ScenarioError: not this learner's checkpoint, or one that does not fit ``spec``
                (or was trained on another scenario, when ``scenario_hash`` is given).
        """

    @classmethod
    def check_checkpoint(
        cls,
        path: str | Path,
        spec: AgentSpec | PolicyShape,
        scenario_hash: str | None = None,
    ) -> dict[str, Any]:
        """The checkpoint's content, read safely, after the checks ``from_checkpoint`` makes
        against ``spec`` (an env's spec, or the shape a scenario implies: ``gridmarl
        validate`` builds no env).

        Raises:
            ScenarioError: as ``from_checkpoint``.
        """

    def progress(self) -> Progress:
        """Agent-steps and updates so far (restored by ``from_checkpoint``)."""

    def collect(self, env: MultiAgentEnv, budget: int) -> Any:
        """Experience from ``env`` (``cfg.num_envs`` envs; the first call on an env resets it,
        later calls continue its episodes); ``budget`` [agent-steps] drives schedules."""

    def update(self, batch: Any) -> dict[str, float]:
        """Learn from ``collect``'s batch; advances :meth:`progress`; returns metrics."""

    def act(self, obs: Observation, deterministic: bool = True) -> Action:
        """The joint action ``[B, N]`` for ``obs``."""

    def state(self) -> dict[str, Any]:
        """Everything a checkpoint holds (tensors and plain values only)."""

    def save(self, path: str | Path) -> None:
        """Write :meth:`state` atomically, and its sidecar JSON."""

    def warm_start(
        self, env: MultiAgentEnv, teacher: Any, epochs: int, seed: int, keep_prior: bool
    ) -> dict[str, float]:
        """Clone ``teacher``'s actions (and fit the value to its returns) before learning."""


def run(
    learner: Learner,
    env_factory: Callable[[int], MultiAgentEnv],
    budget: int,
    logger: TrainingLogger | None = None,
    more_envs: Sequence[Callable[[int], MultiAgentEnv]] = (),
) -> dict[str, float]:
    """Collect and update until ``learner.progress().agent_steps >= budget``.

    Args:
        learner: continues from its progress (after ``from_checkpoint``: where it stopped).
        env_factory: ``num_envs -> env``; called once with ``learner.cfg.num_envs``.
        budget: total agent-steps, counting those already done.
        logger: gets ``log(agent_steps, metrics)`` after every update.
        more_envs: factories of further training envs (``train.variants``): update ``u``
            collects from env ``u mod (1 + len(more_envs))``, the scenario's own first; only
            for a learner whose ``mixes_envs`` is true (its networks serve every env's spec).

    Returns:
        The metrics of the last update (empty when the budget was already spent).
    """
    if more_envs and not getattr(learner, "mixes_envs", False):
        raise ValueError(f"{type(learner).__name__} cannot train on several envs")
    envs: list[MultiAgentEnv] = []
    metrics: dict[str, float] = {}
    try:
        for make in (env_factory, *more_envs):
            envs.append(make(learner.cfg.num_envs))
        while learner.progress().agent_steps < budget:
            env = envs[learner.progress().updates % len(envs)]
            metrics = learner.update(learner.collect(env, budget))
            if logger is not None:
                logger.log(learner.progress().agent_steps, metrics)
    finally:
        for env in envs:
            env.close()
    return metrics
