"""Run folders of ``gridmarl train`` and ``gridmarl finetune``: what both drivers write and check.

Manifests and checkpoint sidecars (``run_meta``, ``versions``, ``utc_now``), the policy hash a
run is tied to, the checks before a resume (``open_resume_run``, ``check_train_settings``),
``validation.csv`` rows and TensorBoard scalars (``record_validation``), the best score so far
(``best_score``) and checkpoint retention (``prune_checkpoints``).  Every file is written
atomically (``gridmarl.core.io``).
"""

from __future__ import annotations

import csv
import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import torch

from gridmarl.config import scenario_hash
from gridmarl.core.errors import ScenarioError
from gridmarl.core.io import write_text
from gridmarl.core.training import ValidationResult, Validator


def policy_hash(scenario: Any) -> str:
    """SHA-256 of what a policy is trained on: the validated scenario without ``controllers``
    (what ``simulate`` runs) and ``train`` (budget and hyper-parameters, kept in the checkpoint)."""
    return scenario_hash(scenario, exclude=("controllers", "train"))


def check_train_settings(
    manifest: dict[str, Any], scenario: Any, run_dir: Path, ignore: tuple[str, ...]
) -> None:
    """Refuse to resume ``run_dir`` with other ``train`` settings than it started with.

    The policy hash leaves ``train`` out (a checkpoint serves any budget), so without this a
    resume that forgot a ``--set train.credit=…`` would go on with another reward, silently.
    Keys in ``ignore`` may change; keys the run's manifest does not know (added to the schema
    later) are not compared.

    Raises:
        ScenarioError: naming each setting that differs.
    """
    old = manifest.get("scenario", {}).get("train", {})
    new = scenario.model_dump(mode="json").get("train", {})
    diff = [k for k in old if k not in ignore and old[k] != new.get(k)]
    if diff:
        shown = "; ".join(f"train.{k}: run {old[k]!r}, now {new.get(k)!r}" for k in diff)
        raise ScenarioError(
            f"--resume {run_dir}: the run was started with other train settings ({shown}); "
            "resume with the same --set options"
        )


def open_resume_run(
    run_dir: Path, manifest_name: str, needed: tuple[str, ...], p_hash: str, command: str
) -> dict[str, Any]:
    """The manifest of a run folder to resume, after checking it is one and was started on
    this scenario (policy hash).

    Raises:
        ScenarioError: a file of ``needed`` (paths in the folder) or the manifest is missing,
            or the policy hash differs.
    """
    files = (*needed, manifest_name)
    if not all((run_dir / f).exists() for f in files):
        raise ScenarioError(
            f"--resume {run_dir}: no {', '.join(files)} there "
            f"(not a gridmarl {command} run folder?)"
        )
    manifest = json.loads((run_dir / manifest_name).read_text())
    if manifest.get("policy_hash") != p_hash:
        raise ScenarioError(
            f"--resume {run_dir}: the run was started with a different "
            f"scenario (policy hash {manifest.get('policy_hash', '?')[:12]}… "
            f"vs {p_hash[:12]}…); resume with the same scenario file"
        )
    return manifest


def run_meta(scenario: Any, p_hash: str, device: torch.device) -> dict[str, Any]:
    """What every checkpoint sidecar of a run records about the scenario and the machine."""
    return {
        "scenario": scenario.name,
        "scenario_hash": scenario_hash(scenario),
        "policy_hash": p_hash,
        "versions": versions(),
        "device": str(device),
    }


def best_score(validator: Validator | None, ck: Path) -> float:
    """Validation score of ``ck / best.json`` (−inf when there is none yet)."""
    best_json = ck / "best.json"
    if best_json.exists() and validator is not None:
        return validator.score_from_meta(json.loads(best_json.read_text()))
    return -math.inf


def record_validation(
    run_dir: Path, writer: Any, res: ValidationResult, row: dict[str, Any], step: int
) -> None:
    """Append ``row`` + the result's KPIs to ``validation.csv``; its scalars to TensorBoard."""
    append_csv(run_dir / "validation.csv", {**row, **res.row})
    for k, v in res.scalars.items():
        if math.isfinite(v):
            writer.add_scalar(f"validate/{k}", v, step)


def prune_checkpoints(ck: Path, pattern: str, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints ``ck / pattern`` and their sidecars."""
    for pt in sorted(ck.glob(pattern))[:-keep]:
        pt.unlink(missing_ok=True)
        pt.with_suffix(".json").unlink(missing_ok=True)


def versions() -> dict[str, str]:
    """Package versions recorded in manifests and checkpoint sidecars."""
    import numpy

    import gridmarl

    return {
        "gridmarl": gridmarl.__version__,
        "torch": str(torch.__version__),
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def append_csv(path: Path, row: dict[str, Any]) -> None:
    """Rewrite ``path`` atomically with ``row`` appended (small file)."""
    rows = list(csv.DictReader(path.open())) if path.exists() else []
    rows.append({k: str(v) for k, v in row.items()})
    header = list(row)
    lines = [",".join(header)] + [",".join(r.get(k, "") for k in header) for r in rows]
    write_text(path, "\n".join(lines) + "\n")


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (manifests, sidecars)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
