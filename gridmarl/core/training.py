"""What ``gridmarl train`` needs from a domain (``gridmarl/<domain>/training.py``).

Each domain module provides

* ``train_env_factory(scenario, device, seed) -> Callable[[int], MultiAgentEnv]``: builds the
  training env for ``num_envs`` parallel episodes;
* ``make_validator(scenario, run_dir, say) -> Validator``: the validation KPI and its
  baselines (reference values cached in ``run_dir``);
* ``TEACHERS``: ``name -> (scenario) -> Controller``, what ``--warm-start`` may clone (rule
  baselines; energy also the MILP of the training episodes, routing the MCF split tables).
  A teacher with an ``episodes`` attribute demonstrates that many envs instead of the PPO
  batch's.
* optionally ``worker_processes(scenario, num_envs) -> int``: the processes its training env
  runs beside the driver (traffic: one SUMO simulation per env).  Without ``--threads`` the
  driver then leaves them a core each (``set_torch_threads``).

The domain's ``Domain`` entry (``gridmarl.domains``, ``core.domain.Domain.training``) names the
module; the drivers call it through the ``Domain`` object.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gridmarl.core.controller import Controller
from gridmarl.core.env import MultiAgentEnv

EnvFactory = Callable[[int], MultiAgentEnv]


def available_cores() -> int:
    """CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def set_torch_threads(threads: int | None, domain: Any, scenario: Any, num_envs: int) -> None:
    """``torch.set_num_threads(threads)``; without ``threads``, torch's count less the cores
    the domain's ``num_envs`` worker processes need (``threads_beside_workers``)."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    else:
        torch.set_num_threads(
            threads_beside_workers(domain, scenario, num_envs, torch.get_num_threads())
        )


def threads_beside_workers(domain: Any, scenario: Any, num_envs: int, current: int) -> int:
    """Torch CPU threads for a driver whose env runs ``domain.worker_processes(scenario,
    num_envs)`` worker processes: the cores they leave free (at least 1, at most ``current``),
    or ``current`` when the domain runs none.  Torch's thread pool spins between operations,
    on the cores the workers need."""
    busy = getattr(domain, "worker_processes", None)
    n = int(busy(scenario, num_envs)) if busy is not None else 0
    if n <= 0:
        return current
    return max(1, min(current, available_cores() - n))


@dataclass
class ValidationResult:
    """One validation of the policy.

    Attributes:
        row: columns appended to ``validation.csv`` after agent_steps, updates, wall_s.
        scalars: TensorBoard scalars (logged as ``validate/<name>``); only finite values.
        meta: keys written into the checkpoint sidecar (``validation_*``).
        score: higher is better; picks ``best.pt``.
        display: short text for the progress bar.
    """

    row: dict[str, Any]
    scalars: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    score: float = -math.inf
    display: str = "—"


class Validator(Protocol):
    """Measures a policy on held-out episodes against the domain's baselines.

    Attributes:
        ref: the baselines' values on the validation episodes (JSON-serialisable).
        label: progress-bar label of ``ValidationResult.display`` (e.g. ``val share``).
        return_unit: unit of the team episode return shown while training.
        score_name: names the best score in the final manifest (``best_validation_<name>``).
    """

    ref: dict[str, Any]
    label: str
    return_unit: str
    score_name: str

    def evaluate(self, controller: Controller) -> ValidationResult:
        """Run ``controller`` (deterministic) on the validation episodes."""

    def describe(self) -> str:
        """One line about the references, printed when training starts."""

    def score_from_meta(self, meta: dict[str, Any]) -> float:
        """The score of a checkpoint from its sidecar (to continue ``best`` on resume)."""


def meta_score(meta: dict[str, Any], key: str) -> float:
    """The validation score stored under ``key`` in a checkpoint sidecar (−inf when absent)."""
    v = meta.get(key)
    return -math.inf if v is None else float(v)


def cached_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it does not exist."""
    import json

    return json.loads(path.read_text()) if path.exists() else None


class MixedValidator:
    """The validator of a run that trains on several envs (``train.variants``): the scenario's
    own validator and one per variant, each on its own validation episodes and references.

    The score (``best.pt``) is the mean of their scores; ``validation.csv`` holds the
    scenario's columns, then each variant's, prefixed ``<label>/``.  The sidecar keeps the
    scenario's keys, ``validation_variants`` (each variant's) and ``validation_mixed_score``.

    Args:
        base: the scenario's validator.
        variants: ``(label, validator)`` per variant.
    """

    score_name = "mixed_score"

    def __init__(self, base: Validator, variants: list[tuple[str, Validator]]) -> None:
        self.base, self.variants = base, variants
        self.ref = {"scenario": base.ref, **{label: v.ref for label, v in variants}}
        self.label = f"{base.label} (mean of {1 + len(variants)})"
        self.return_unit = base.return_unit

    def evaluate(self, controller: Controller) -> ValidationResult:
        """Every validator on ``controller``; the score is the mean of their scores."""
        first = self.base.evaluate(controller)
        row, scalars = dict(first.row), dict(first.scalars)
        meta: dict[str, Any] = dict(first.meta)
        scores, shown = [first.score], [first.display]
        per_variant: dict[str, Any] = {}
        for label, validator in self.variants:
            res = validator.evaluate(controller)
            row.update({f"{label}/{k}": v for k, v in res.row.items()})
            scalars.update({f"{label}/{k}": v for k, v in res.scalars.items()})
            per_variant[label] = res.meta
            scores.append(res.score)
            shown.append(res.display)
        score = sum(scores) / len(scores)
        row["mixed_score"] = score
        if math.isfinite(score):
            scalars["mixed_score"] = score
        meta["validation_variants"] = per_variant
        meta["validation_mixed_score"] = score if math.isfinite(score) else None
        return ValidationResult(
            row=row, scalars=scalars, meta=meta, score=score, display=" | ".join(shown)
        )

    def describe(self) -> str:
        """The scenario's line and each variant's."""
        return "\n".join(
            [self.base.describe(), *(f"{label}: {v.describe()}" for label, v in self.variants)]
        )

    def score_from_meta(self, meta: dict[str, Any]) -> float:
        """``validation_mixed_score`` of a sidecar (−inf when absent)."""
        return meta_score(meta, "validation_mixed_score")
