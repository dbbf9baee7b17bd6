"""Reading learned-controller checkpoints safely, with errors for people.

A checkpoint is a ``torch.save`` of a dict of tensors and plain Python values with at least
``format`` (``"<family>/<version>"``), ``shapes`` (spec field -> int), optionally
``forecast_len`` (the forecast window the policy learnt on [steps]) and ``meta`` (which may hold
``policy_hash``); it is read with ``torch.load(weights_only=True)``, so no code is unpickled.

The learners (MATPPO, HAMA/MADDPG, the Q-learners, the value learners) share the plumbing around
that: :func:`learner_state` (the fields every learner's checkpoint starts with),
:func:`save_learner` (the file, written atomically, and its sidecar JSON),
:func:`check_learner_checkpoint` (format, shapes, readable hyper-parameters),
:func:`check_same_config` and :func:`restore_progress` (in ``load``) and
:class:`CheckpointedLearner` (``progress``, ``check_checkpoint``, ``from_checkpoint``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Any, ClassVar, Self

import torch

from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.errors import ScenarioError
from gridmarl.core.io import atomic_write, write_json
from gridmarl.core.learner import Progress, TrainingLogger, run
from gridmarl.core.types import AgentSpec, PolicyShape


def load_state(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU: no code is unpickled.

    Raises:
        ScenarioError: a missing or unreadable file (any loading failure is the user's input).
    """
    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the same user error
        raise ScenarioError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc)[:200]}); "
            "expected a file written by `gridmarl train` or `gridmarl finetune`"
        ) from None


def read_checkpoint(path: str | Path, fmt: str, what: str) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` (:func:`load_state`); checks
    ``state["format"] == fmt``.

    Raises:
        ScenarioError: missing file, unreadable file, or another format (``what`` names the
            expected kind, e.g. ``MATPPO``).
    """
    state = load_state(path)
    if not isinstance(state, dict) or state.get("format") != fmt:
        got = state.get("format") if isinstance(state, dict) else "?"
        raise ScenarioError(f"{path}: not a {what} checkpoint (format {got!r}, expected {fmt!r})")
    return state


def check_compatible(
    state: dict[str, Any],
    spec: AgentSpec | PolicyShape,
    shape_fields: Iterable[str],
    path: str | Path,
    policy_hash: str | None,
) -> None:
    """Raise ``ScenarioError`` naming every shape (and the scenario) that does not match.

    Args:
        state: a checkpoint read by :func:`read_checkpoint`.
        spec: the env's spec, or the shape a scenario implies (``gridmarl validate``, no env).
        shape_fields: spec fields that fix weight shapes.
        path: for the message.
        policy_hash: when given, must equal ``state["meta"]["policy_hash"]`` (if recorded).
    """
    shapes = state.get("shapes")
    # a shape field added to the contract later (``pair_dim``) reads as its default when an
    # older checkpoint does not record it
    defaults = {f.name: f.default for f in fields(PolicyShape) if f.default is not MISSING}
    recorded = isinstance(shapes, dict) and all(f in shapes or f in defaults for f in shape_fields)
    if not recorded:
        raise ScenarioError(f"{path}: damaged checkpoint: it does not record its weight shapes")
    shapes = {f: shapes.get(f, defaults.get(f)) for f in shape_fields}
    problems = [
        f"{f}={shapes[f]} in the checkpoint but {getattr(spec, f)} in the env"
        for f in shape_fields
        if int(shapes[f]) != int(getattr(spec, f))
    ]
    # no weight depends on the forecast window's length, but the policy learnt on that length
    trained_len = state.get("forecast_len")
    if trained_len is not None and int(trained_len) != int(spec.forecast_len):
        problems.append(
            f"forecast_len={trained_len} steps in the checkpoint but {spec.forecast_len} in the env"
        )
    # a residual policy's mean adds the env's default action: both must declare the same one
    trained_prior = tuple(state.get("action_prior", ()))
    if trained_prior != tuple(spec.action_prior):
        problems.append(
            f"action_prior={list(trained_prior)} (local features holding a default action) in "
            f"the checkpoint but {list(spec.action_prior)} in the env"
        )
    # the same number of local features can mean other features (energy options add one each);
    # checkpoints written before the names were recorded are not checked
    trained_names = tuple(state.get("local_features", ()))
    if trained_names and spec.local_features and trained_names != tuple(spec.local_features):
        extra = [f for f in spec.local_features if f not in trained_names]
        missing = [f for f in trained_names if f not in spec.local_features]
        problems.append(
            "local features differ: the env "
            + (f"adds {extra}" if extra else "")
            + (" and " if extra and missing else "")
            + (f"lacks {missing}" if missing else "")
            + ("orders them differently" if not extra and not missing else "")
        )
    if problems:
        raise ScenarioError(
            f"{path}: checkpoint does not fit this env: "
            + "; ".join(problems)
            + ". Train a policy for this scenario with `gridmarl train`."
        )
    have = state.get("meta", {}).get("policy_hash")
    if policy_hash is not None and have is not None and have != policy_hash:
        raise ScenarioError(
            f"{path}: checkpoint was trained on a different scenario (policy hash {have[:12]}… "
            f"vs {policy_hash[:12]}…); resume only with the scenario the run started with"
        )


def learner_state(
    fmt: str,
    config: Any,
    spec: AgentSpec,
    shape_fields: Iterable[str],
    seed: int,
    agent_steps: int,
    updates: int,
    structure: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The fields every learner's checkpoint starts with (its weights and optimiser follow).

    Args:
        fmt: ``"<family>/<version>"``.
        config: the hyper-parameter dataclass (stored as a dict).
        spec: the env's spec (shapes, forecast window [steps], default action, feature names).
        shape_fields: spec fields that fix weight shapes.
        seed: the learner's seed.
        agent_steps: experience consumed so far [agent-steps].
        updates: learning updates so far [-].
        structure: sizes beyond the spec's that the weights depend on (HAMA: view, groups),
            recorded after ``shapes`` when given.
    """
    return {
        "format": fmt,
        "config": asdict(config),
        "shapes": {f: int(getattr(spec, f)) for f in shape_fields},
        **({} if structure is None else {"structure": structure}),
        "n_agents": spec.n_agents,
        "forecast_len": spec.forecast_len,
        "action_prior": list(spec.action_prior),
        "local_features": list(spec.local_features),
        "seed": seed,
        "agent_steps": agent_steps,
        "updates": updates,
    }


def plain_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with plain JSON types only (others as ``str``), so weights-only loading reads it."""
    return json.loads(json.dumps(meta, default=str))


def save_learner(
    path: str | Path,
    state: dict[str, Any],
    controller: str,
    meta: dict[str, Any],
    sidecar_fields: Iterable[str] = (),
) -> None:
    """Write ``state`` atomically with ``torch.save``, then its sidecar JSON (``path`` with
    ``.json``).

    The sidecar holds ``format``, ``controller``, ``file``, ``seed``, ``agent_steps``, ``updates``,
    ``shapes``, the ``sidecar_fields`` of ``state`` (e.g. HAMA's ``structure``), ``forecast_len``
    [steps], ``n_agents``, ``config`` and then every entry of ``meta``.

    Args:
        path: the checkpoint file.
        state: a learner's ``state()`` (starting with :func:`learner_state`'s fields).
        controller: the controller's registry name.
        meta: the learner's notes (the run's scenario, policy hash ...).
        sidecar_fields: further keys of ``state`` the sidecar repeats, after ``shapes``.
    """
    path = Path(path)
    atomic_write(path, lambda p: torch.save(state, p))
    write_json(
        path.with_suffix(".json"),
        {
            "format": state["format"],
            "controller": controller,
            "file": path.name,
            "seed": state["seed"],
            "agent_steps": state["agent_steps"],
            "updates": state["updates"],
            "shapes": state["shapes"],
            **{key: state[key] for key in sidecar_fields},
            "forecast_len": state["forecast_len"],
            "n_agents": state["n_agents"],
            "config": state["config"],
            **meta,
        },
    )


def check_learner_checkpoint(
    path: str | Path,
    spec: AgentSpec | PolicyShape,
    scenario_hash: str | None,
    *,
    fmt: str,
    what: str,
    config_class: Callable[..., Any],
    shape_fields: Iterable[str] | Callable[[Any], Iterable[str]],
    check_config: bool = False,
    required_keys: Iterable[str] = (),
    dict_keys: Iterable[str] = (),
    unreadable: str = ": its hyper-parameters or seed do not read",
) -> dict[str, Any]:
    """Read a learner's checkpoint safely (weights only) and refuse it unless it has format
    ``fmt``, fits ``spec`` (:func:`check_compatible`) and its hyper-parameters and seed read.

    Args:
        path: the checkpoint file.
        spec: an env's spec, or the shape a scenario implies (``gridmarl validate``, no env).
        scenario_hash: when given, the scenario's policy hash the checkpoint must record.
        fmt: the expected ``"<family>/<version>"``.
        what: the learner's name in messages (e.g. ``MATPPO``).
        config_class: the hyper-parameter dataclass, built from ``state["config"]``.
        shape_fields: spec fields that fix weight shapes; or a function of the hyper-parameters
            giving them (then the hyper-parameters are read before the shapes are compared).
        check_config: also call the hyper-parameters' ``check()``.
        required_keys: further keys the checkpoint must hold.
        dict_keys: further keys that must hold mappings.
        unreadable: what follows ``damaged <what> checkpoint`` in the message.

    Returns:
        The checkpoint's content.

    Raises:
        ScenarioError: naming the file and what does not match or does not read.
    """
    state = read_checkpoint(path, fmt, what)
    if not callable(shape_fields):
        check_compatible(state, spec, shape_fields, path, scenario_hash)
    try:
        cfg = config_class(**state["config"])
        if check_config:
            cfg.check()
        int(state["seed"])
        for key in required_keys:
            state[key]  # noqa: B018 - presence check
        for key in dict_keys:
            dict(state[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(
            f"{path}: damaged {what} checkpoint{unreadable} "
            f"({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    if callable(shape_fields):
        check_compatible(state, spec, shape_fields(cfg), path, scenario_hash)
    return state


def check_same_config(path: str | Path, state: dict[str, Any], learner: Any) -> None:
    """Refuse to ``load`` a checkpoint whose hyper-parameters (read with
    ``learner.config_class``) differ from ``learner.cfg``
    (options added after it was written take their defaults, which reproduce the behaviour it
    was trained with).

    Raises:
        ScenarioError: naming the file and ``from_checkpoint``, which builds a fitting learner.
    """
    if asdict(learner.config_class(**state["config"])) != asdict(learner.cfg):
        raise ScenarioError(
            f"{path}: checkpoint hyper-parameters differ from this controller's; build it "
            f"with {type(learner).__name__}.from_checkpoint"
        )


def restore_progress(learner: Any, state: dict[str, Any]) -> None:
    """Set ``learner.agent_steps``, ``updates`` and ``meta`` from a checkpoint's content."""
    learner.agent_steps = int(state["agent_steps"])
    learner.updates = int(state["updates"])
    learner.meta = dict(state.get("meta", {}))


def load_parts(
    path: str | Path,
    state: dict[str, Any],
    learner: Any,
    parts: dict[str, Any],
    generators: dict[str, torch.Generator],
) -> None:
    """Load a checkpoint's content into a learner: each of ``parts`` (``state`` key ->
    module or optimiser, ``load_state_dict``), each of ``generators`` (``state["rng"]`` key ->
    generator), then its progress (:func:`restore_progress`).

    Raises:
        ScenarioError: naming the file, when a part's weights or optimiser state do not fit
            (another network size that the recorded shapes did not catch).
    """
    try:
        for key, part in parts.items():
            part.load_state_dict(state[key])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ScenarioError(
            f"{path}: weights do not fit this env ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    for key, gen in generators.items():
        gen.set_state(state["rng"][key].cpu())
    restore_progress(learner, state)


class CheckpointedLearner:
    """``progress``, ``check_checkpoint`` and ``from_checkpoint`` (``core.learner.Learner``) for
    a learner whose ``__init__`` takes ``(spec, config, device, seed, ...)`` and that keeps
    ``agent_steps`` and ``updates``, and ``train`` (the ``core.learner.run`` loop).  The class
    sets ``config_class`` and defines :meth:`checkpoint_checks` and ``load``."""

    config_class: ClassVar[type]
    agent_steps: int
    updates: int

    def progress(self) -> Progress:
        """Agent-steps and updates so far."""
        return Progress(agent_steps=self.agent_steps, updates=self.updates)

    def train(
        self,
        env_factory: Callable[[int], MultiAgentEnv],
        budget: int,
        logger: TrainingLogger | None = None,
    ) -> dict[str, float]:
        """Collect and update until ``agent_steps >= budget`` (continues from
        ``agent_steps`` after a load) on ``env_factory(cfg.num_envs)``: ``core.learner.run``.

        Returns:
            The metrics of the last update.
        """
        return run(self, env_factory, budget, logger)

    @classmethod
    def checkpoint_checks(cls) -> dict[str, Any]:
        """The keyword arguments of :func:`check_learner_checkpoint` for this class's
        checkpoints (``fmt``, ``what``, ``config_class``, ``shape_fields`` ...)."""
        raise NotImplementedError(f"{cls.__name__} does not say how to check its checkpoints")

    @classmethod
    def check_checkpoint(
        cls,
        path: str | Path,
        spec: AgentSpec | PolicyShape,
        scenario_hash: str | None = None,
    ) -> dict[str, Any]:
        """Read a checkpoint safely (weights only) and refuse it unless it is this learner's,
        with readable hyper-parameters, and fits ``spec`` (an env's spec, or the shape a
        scenario implies); what :meth:`from_checkpoint` checks before building.

        Returns:
            The checkpoint's content.

        Raises:
            ScenarioError: naming the file and what does not match.
        """
        return check_learner_checkpoint(path, spec, scenario_hash, **cls.checkpoint_checks())

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        spec: AgentSpec,
        device: torch.device | str = "cpu",
        scenario_hash: str | None = None,
        **kwargs: Any,
    ) -> Self:
        """A learner built with the checkpoint's hyper-parameters and seed, then loaded from it
        (``spec.n_agents`` may differ from the training env's: the networks are shared);
        ``kwargs`` go to ``__init__``.

        Raises:
            ScenarioError: as ``check_checkpoint`` and ``load``.
        """
        state = cls.check_checkpoint(path, spec, scenario_hash)
        learner = cls(  # type: ignore[call-arg]
            spec, cls.config_class(**state["config"]), device, int(state["seed"]), **kwargs
        )
        learner.load(path, scenario_hash)  # type: ignore[attr-defined]
        return learner
