"""Reading a learner's hyper-parameters from ``scenario.train.options``."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from gridmarl.core.errors import ScenarioError


def reject_unknown_options(config_class: type, options: dict[str, Any], what: str) -> None:
    """Refuse option names that are not fields of the hyper-parameter dataclass.

    Args:
        config_class: the learner's hyper-parameter dataclass.
        options: ``scenario.train.options`` (name -> value).
        what: the learner's name in the message (e.g. ``MATPPO``).

    Raises:
        ScenarioError: naming the unknown options and every allowed one.
    """
    names = {f.name for f in fields(config_class)}
    bad = sorted(set(options) - names)
    if bad:
        raise ScenarioError(
            f"train.options: unknown {what} option(s) {', '.join(bad)}; "
            f"allowed: {', '.join(sorted(names))}"
        )
