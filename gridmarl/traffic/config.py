"""Traffic scenario schema (``domain: traffic``).  Placeholder until the traffic domain lands."""

from __future__ import annotations

from typing import Literal

from gridmarl.config import ScenarioBase


class TrafficScenario(ScenarioBase):
    """``domain: traffic``."""

    domain: Literal["traffic"]
