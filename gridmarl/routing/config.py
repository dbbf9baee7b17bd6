"""Routing scenario schema (``domain: routing``).  Placeholder until the routing domain lands."""

from __future__ import annotations

from typing import Literal

from gridmarl.config import ScenarioBase


class RoutingScenario(ScenarioBase):
    """``domain: routing``."""

    domain: Literal["routing"]
