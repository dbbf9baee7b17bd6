"""Reading learned-controller checkpoints safely, with errors for people.

A checkpoint is a ``torch.save`` of a dict of tensors and plain Python values with at least
``format`` (``"<family>/<version>"``), ``shapes`` (spec field -> int), optionally
``forecast_len`` (the forecast window the policy learnt on [steps]) and ``meta`` (which may hold
``policy_hash``); it is read with ``torch.load(weights_only=True)``, so no code is unpickled.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from gridmarl.core.errors import ScenarioError
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
    if not isinstance(shapes, dict) or any(f not in shapes for f in shape_fields):
        raise ScenarioError(f"{path}: damaged checkpoint: it does not record its weight shapes")
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
