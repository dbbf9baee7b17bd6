"""One evaluation path for every domain and controller.

``evaluate_controller`` runs a controller through an env for one episode and returns the env's
own records; each domain's ``simulate`` turns those into a ``SimulationResult`` that
``gridmarl.report`` writes to a run folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from gridmarl.core.controller import Controller
from gridmarl.core.env import MultiAgentEnv


@dataclass
class ControllerResult:
    """What one controller did on the scenario.

    Attributes:
        name: controller label (first column of ``kpis.csv``).
        kpis: KPI name (unit in the name, e.g. ``cost_usd``) -> value, in display order.
        tables: file stem -> table to export as CSV (e.g. ``dispatch_milp``).
        wall_s: wall time the controller took, solving and simulating [s].
        notes: free text for ``comparison.md`` (solver status, gap, ...).
    """

    name: str
    kpis: dict[str, float]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    wall_s: float = 0.0
    notes: str = ""


@dataclass
class SimulationResult:
    """Everything ``simulate`` produced for one scenario.

    Attributes:
        scenario: the validated scenario model.
        controllers: one result per controller, in the scenario's order.
        headline: KPI names shown in the terminal table, in order.
        tables: extra file stem -> table (e.g. ``community_milp``).
        figures: file stem -> matplotlib Figure, saved as PNG.
        summary: markdown paragraphs placed at the top of ``comparison.md``.
        extra_manifest: extra fields for ``manifest.json``.
    """

    scenario: Any
    controllers: list[ControllerResult]
    headline: list[str]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    extra_manifest: dict[str, Any] = field(default_factory=dict)

    def kpi_table(self) -> pd.DataFrame:
        """One row per controller, first column ``controller``."""
        rows = [{"controller": c.name, **c.kpis} for c in self.controllers]
        return pd.DataFrame(rows)


@torch.no_grad()
def run_episode(
    env: MultiAgentEnv, controller: Controller, seed: int, deterministic: bool = True
) -> tuple[pd.DataFrame, float]:
    """Run ``controller`` for one full episode of ``env``.

    Returns:
        The env's ``records()`` of the episode and the wall time [s].
    """
    t0 = time.perf_counter()
    obs = env.reset(seed=seed)
    controller.reset(env)
    for _ in range(env.episode_len):
        step = env.step(controller.act(obs, deterministic=deterministic))
        obs = step.obs
    return env.records(), time.perf_counter() - t0
