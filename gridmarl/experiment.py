"""One evaluation path for every domain and controller.

``run_episode`` runs a controller through an env for one episode and returns the env's own
records; each domain's ``simulate`` turns those into a ``SimulationResult`` that
``gridmarl.report`` writes to a run folder.

No lost results: a domain runs each controller through :func:`isolated`, so one controller that
fails (a solver error, a broken checkpoint, an engine crash) becomes a row with its error
(:func:`failed_result`) and every other controller's row and file is still written; the command
then exits with :data:`PARTIAL_EXIT_CODE` after writing them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd
import torch

from gridmarl.core.controller import Controller
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.errors import ScenarioError

#: exit code of a command that wrote its results but some controller (or episode) failed;
#: 0 = every controller ran, 1 = internal error (nothing written), 2 = bad input
PARTIAL_EXIT_CODE = 3

T = TypeVar("T")


@dataclass
class ControllerResult:
    """What one controller did on the scenario.

    Attributes:
        name: controller label (first column of ``kpis.csv``).
        kpis: KPI name (unit in the name, e.g. ``cost_usd``) -> value, in display order.
        tables: file stem -> table to export as CSV (e.g. ``dispatch_milp``).
        wall_s: wall time the controller took, solving and simulating [s].
        notes: free text for ``comparison.md`` (solver status, gap, ...).
        error: why the controller failed (``"SolverError: ..."``), "" when it ran; a failed
            controller's KPIs are NaN.
    """

    name: str
    kpis: dict[str, float]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    wall_s: float = 0.0
    notes: str = ""
    error: str = ""


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
        errors: failures outside any one controller (e.g. a whole episode of a split), each a
            sentence; controller failures are in ``controllers[i].error``.
    """

    scenario: Any
    controllers: list[ControllerResult]
    headline: list[str]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    extra_manifest: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def failures(self) -> list[str]:
        """Every failure of the run, one sentence each ("" list when everything ran)."""
        return [f"{c.name}: {c.error}" for c in self.controllers if c.error] + list(self.errors)

    def kpi_table(self) -> pd.DataFrame:
        """One row per controller, first column ``controller``; a last column ``error`` (empty
        where the controller ran) only when some controller failed."""
        failed = any(c.error for c in self.controllers)
        rows = [
            {"controller": c.name, **c.kpis, **({"error": c.error} if failed else {})}
            for c in self.controllers
        ]
        df = pd.DataFrame(rows)
        if failed:  # failed rows lack the KPIs of the rows that ran: keep error last
            df = df[[col for col in df.columns if col != "error"] + ["error"]]
        return df


def describe_error(exc: BaseException) -> str:
    """One line for a table cell: ``"SolverError: the time limit ..."`` (newlines folded)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def isolated(fn: Callable[[], T], console: Any = None, label: str = "") -> tuple[T | None, str]:
    """Run ``fn()`` so that its failure cannot end the run.

    Returns:
        ``(value, "")`` when it returned, ``(None, error)`` when it raised an ``Exception``
        (:func:`describe_error`).  ``KeyboardInterrupt`` and ``SystemExit`` still propagate,
        and so does ``ScenarioError``: bad input (e.g. a checkpoint that does not fit the
        scenario) is the user's to fix, exit 2, not a controller's failure to record.
    """
    try:
        return fn(), ""
    except ScenarioError:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded in the row, the others still run
        err = describe_error(exc)
        if console is not None:
            from rich.markup import escape

            console.print(f"[bold red]failed:[/bold red] {escape(label)}: {escape(err)}")
        return None, err


def failed_result(
    name: str, error: str, kpi_names: list[str], wall_s: float = 0.0, notes: str = ""
) -> ControllerResult:
    """The row of a controller that failed: every KPI NaN, the error kept."""
    return ControllerResult(
        name,
        {k: math.nan for k in kpi_names},
        wall_s=wall_s,
        notes=notes or f"failed: {error}",
        error=error,
    )


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
