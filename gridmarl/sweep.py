"""``gridmarl sweep``: a grid of scenarios × ``--set`` variants × seeds × controllers, each cell
a Ray task (``gridmarl.core.cluster``), with one aggregate table.

Sweep file (YAML, every key checked; unknown keys are errors):

| key | what |
|---|---|
| ``name`` | names the sweep (``sweep.md`` title) |
| ``scenarios`` | scenario files, relative to the sweep file; distinct scenario ``name`` s |
| ``set`` | ``dotted.key=value`` overrides applied to every cell (like ``--set``) |
| ``grid`` | ``dotted.key: [v1, v2, …]``: every combination is one variant |
| ``seeds`` | scenario seeds; each cell runs with ``seed=<s>`` |
| ``controllers`` | names or controller entries (``{name, label, checkpoint, options, …}``) |
| ``mode`` | ``evaluate`` (default) or ``train-then-evaluate`` |
| ``train`` | ``{steps, validate_every}``: the budget of each learned controller's training |
| ``baseline`` | a controller label: every metric is also given as a ratio to it, per seed |

A cell is (scenario, variant, seed, controller).  ``evaluate`` runs the scenario's ``simulate``
with that one controller; ``train-then-evaluate`` first trains a learned controller (one the
controller registry lists and that has no ``checkpoint``) with ``gridmarl train`` on the cell's
seed, then evaluates its ``best.pt``.  Each cell is written into a temporary folder
``<out>/cells/.tmp-<cell>-<random>/`` and renamed to ``<out>/cells/<cell>/`` when complete,
so a cell folder is always whole; ``cell.json`` in it holds the KPIs.  A re-run skips the cells
whose folder exists and deletes temporary folders left by a killed run.  A cell that fails is
reported with its error (``failed.json``) and does not stop the others; the next run retries it.

Outputs in ``<out>`` (default ``sweeps/<name>``): ``cells/`` (one run folder per cell),
``cells.csv`` (every finished cell's KPIs), ``sweep.csv`` and ``sweep.md`` (per scenario,
variant, controller and metric: n, mean, std, the 95 % Student-t interval of the mean, and the
mean of the per-seed ratio to the baseline with its 95 % interval; pairs are matched on seed),
``failed.json`` (the cells that failed in the last run).  All written atomically
(``gridmarl.core.io``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import Field, ValidationError, field_validator, model_validator

from gridmarl.config import (
    ControllerEntry,
    StrictModel,
    apply_overrides,
    file_stem,
    format_validation_error,
    parse_override,
    read_yaml,
    validate_scenario,
)
from gridmarl.core.errors import ScenarioError
from gridmarl.core.io import write_csv, write_json, write_text

CELLS = "cells"
TMP_PREFIX = ".tmp-"
CELL_FILE = "cell.json"
HEADER = ("scenario", "variant", "seed", "controller")


class SweepTrain(StrictModel):
    """How ``train-then-evaluate`` trains each learned controller."""

    steps: int = Field(ge=1, description="agent-steps budget of each training (env steps x agents)")
    validate_every: int | None = Field(
        None, ge=1, description="PPO updates between validations (default: train's)"
    )


class SweepFile(StrictModel):
    """A sweep file (module docstring)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=80, description="sweep name")
    scenarios: list[str] = Field(min_length=1, description="scenario files (relative paths)")
    set: list[str] = Field(default_factory=list, description="overrides for every cell")
    grid: dict[str, list[Any]] = Field(
        default_factory=dict, description="dotted key -> values; each combination is a variant"
    )
    seeds: list[int] = Field(min_length=1, description="scenario seeds, one cell each")
    controllers: list[str | ControllerEntry] = Field(
        min_length=1, description="controller names or entries"
    )
    mode: Literal["evaluate", "train-then-evaluate"] = "evaluate"
    train: SweepTrain | None = Field(None, description="training budget (train-then-evaluate)")
    baseline: str | None = Field(None, description="controller label the ratios are taken to")

    @field_validator("grid")
    @classmethod
    def _grid_values(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid.{key}: give at least one value")
        return grid

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds repeat; each seed is one cell")
        return seeds

    @model_validator(mode="after")
    def _consistent(self) -> SweepFile:
        labels = [e.display_name for e in self.entries()]
        if len(set(labels)) != len(labels):
            raise ValueError("controllers: two entries have one label; give one a distinct 'label'")
        if self.baseline is not None and self.baseline not in labels:
            raise ValueError(
                f"baseline {self.baseline!r} is not a controller of the sweep; "
                f"allowed: {', '.join(labels)}"
            )
        if self.mode == "train-then-evaluate" and self.train is None:
            raise ValueError("mode train-then-evaluate needs a train block ({steps: …})")
        return self

    def entries(self) -> list[ControllerEntry]:
        """The controllers as entries (a bare name becomes ``{name: …}``)."""
        return [ControllerEntry(name=c) if isinstance(c, str) else c for c in self.controllers]

    def variants(self) -> list[list[str]]:
        """Every combination of the ``grid`` values, as ``key=value`` override lists."""
        keys = list(self.grid)
        combos = itertools.product(*(self.grid[k] for k in keys))
        return [[f"{k}={json.dumps(v)}" for k, v in zip(keys, c, strict=True)] for c in combos]


@dataclass(frozen=True)
class Cell:
    """One run of a sweep.

    Attributes:
        id: folder name under ``cells/`` (unique in the sweep).
        scenario_file: absolute path of the scenario file.
        scenario: the scenario's name.
        variant: the grid overrides, ``key=value`` joined by ``,`` (``-`` for none).
        overrides: ``set`` then the variant's overrides then ``seed=<seed>``.
        seed: the scenario seed.
        controller: the controller entry (``ControllerEntry`` as a plain mapping).
        label: the controller's label.
        train_steps: agent-steps to train first, or None to evaluate as given.
        validate_every: updates between validations while training (None: train's default).
    """

    id: str
    scenario_file: str
    scenario: str
    variant: str
    overrides: tuple[str, ...]
    seed: int
    controller: dict[str, Any]
    label: str
    train_steps: int | None
    validate_every: int | None


def cell_id(scenario: str, variant: str, seed: int, label: str) -> str:
    """A folder name for a cell; a long variant is replaced by a hash of it."""
    v = variant if len(variant) <= 60 else "v" + hashlib.sha256(variant.encode()).hexdigest()[:12]
    return file_stem(f"{scenario}__{v}__seed{seed}__{label}")


def load_sweep(path: str | Path) -> tuple[SweepFile, list[Cell]]:
    """Read and check a sweep file and every cell's scenario (with its overrides) before any
    run.

    Raises:
        ScenarioError: naming the sweep file, the key and what is allowed (exit code 2).
    """
    from gridmarl.controllers import registry

    path = Path(path)
    data = read_yaml(path)
    try:
        sweep = SweepFile.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(format_validation_error(err, str(path))) from None
    for i, item in enumerate([*sweep.set, *(f"{k}=0" for k in sweep.grid)]):
        try:
            parse_override(item)
        except ScenarioError as exc:
            key = f"set[{i}]" if i < len(sweep.set) else "grid"
            raise ScenarioError(f"{path}: {key}: {exc}") from None
    learned = set(registry.names())
    cells: list[Cell] = []
    names: dict[str, str] = {}
    for j, rel in enumerate(sweep.scenarios):
        file = (path.parent / rel).resolve()
        if not file.exists():
            raise ScenarioError(f"{path}: scenarios[{j}]: file not found: {rel}")
        for variant in sweep.variants():
            base = [*sweep.set, *variant]
            sc = _cell_scenario(file, base, sweep.seeds[0], None, f"{path}: scenarios[{j}]")
            if names.setdefault(sc.name, rel) != rel:
                raise ScenarioError(
                    f"{path}: scenarios: {names[sc.name]} and {rel} are both named "
                    f"{sc.name!r}; give one another name (--set name=… in set)"
                )
            for seed in sweep.seeds:
                for entry in sweep.entries():
                    train = (
                        sweep.train is not None
                        and sweep.mode == "train-then-evaluate"
                        and entry.name in learned
                        and entry.checkpoint is None
                    )
                    if not train:
                        # the entry must be valid for this domain as given
                        _cell_scenario(file, base, seed, entry, f"{path}: scenarios[{j}]")
                    label = entry.display_name
                    vtext = ",".join(variant) or "-"
                    cells.append(
                        Cell(
                            id=cell_id(sc.name, vtext, seed, label),
                            scenario_file=str(file),
                            scenario=sc.name,
                            variant=vtext,
                            overrides=(*base, f"seed={seed}"),
                            seed=seed,
                            controller=entry.model_dump(mode="json", exclude_none=True),
                            label=label,
                            train_steps=sweep.train.steps if train and sweep.train else None,
                            validate_every=sweep.train.validate_every if sweep.train else None,
                        )
                    )
    ids = [c.id for c in cells]
    if len(set(ids)) != len(ids):
        raise ScenarioError(f"{path}: two cells share a folder name; shorten the grid values")
    return sweep, cells


def _cell_scenario(
    file: Path, overrides: list[str], seed: int, entry: ControllerEntry | None, where: str
) -> Any:
    """The validated scenario of a cell: ``overrides``, the seed, and ``entry`` as its only
    controller (when given)."""
    data = apply_overrides(read_yaml(file), [*overrides, f"seed={seed}"])
    if entry is not None:
        data["controllers"] = [entry.model_dump(mode="json", exclude_none=True)]
    try:
        return validate_scenario(data, source=str(file), base_dir=file.parent)
    except ScenarioError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


# -- one cell (runs in a Ray worker) ---------------------------------------------------------
def run_cell(cell: Cell, out: str) -> dict[str, Any]:
    """Run one cell into ``<out>/cells/<id>/`` (temporary folder + rename) and return its
    record: ``status`` (``done``, ``skipped``: finished before, or ``failed``), the KPIs and
    the error of a failed cell.  Never raises for a failure of the cell itself."""
    import torch

    final = Path(out) / CELLS / cell.id
    if (final / CELL_FILE).exists():
        return {**json.loads((final / CELL_FILE).read_text()), "status": "skipped"}
    tmp = final.parent / f"{TMP_PREFIX}{cell.id}-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    torch.set_num_threads(1)
    try:
        tmp.mkdir(parents=True)
        record = _run_cell_into(cell, tmp)
        record["wall_s"] = round(time.perf_counter() - t0, 3)
        write_json(tmp / CELL_FILE, record)
        try:
            os.rename(tmp, final)  # atomic: the folder appears whole or not at all
        except OSError:
            if not (final / CELL_FILE).exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another run finished it first
        return {**record, "status": "done"}
    except Exception as exc:  # noqa: BLE001 - a failed cell is reported, the sweep goes on
        shutil.rmtree(tmp, ignore_errors=True)
        return {
            **_cell_header(cell),
            "status": "failed",
            "error": f"{type(exc).__name__}: {str(exc)[:2000]}",
        }


def _cell_header(cell: Cell) -> dict[str, Any]:
    return {
        "cell": cell.id,
        "scenario": cell.scenario,
        "variant": cell.variant,
        "seed": cell.seed,
        "controller": cell.label,
    }


def _run_cell_into(cell: Cell, folder: Path) -> dict[str, Any]:
    """Train (when the cell says so) and simulate into ``folder``; returns the cell record."""
    from rich.console import Console

    from gridmarl import domains
    from gridmarl.config import check_for_simulate
    from gridmarl.report import write_run

    quiet = Console(file=open(os.devnull, "w"))  # noqa: SIM115 - closed with the console
    entry = dict(cell.controller)
    file = Path(cell.scenario_file)
    trained = None
    if cell.train_steps is not None:
        from gridmarl.train import train

        sc = _cell_scenario(file, list(cell.overrides), cell.seed, None, str(file))
        run = train(
            sc,
            controller=entry["name"],
            device="cpu",
            steps=cell.train_steps,
            seed=cell.seed,
            out=folder / "train",
            console=quiet,
            validate_every=cell.validate_every,
            threads=1,
        )
        trained = run / "checkpoints" / "best.pt"
        entry["checkpoint"] = str(trained)
    sc = _cell_scenario(file, list(cell.overrides), cell.seed, ControllerEntry(**entry), str(file))
    check_for_simulate(sc)
    sim = __import__(domains.get(sc.domain).simulator, fromlist=["simulate"])
    result = sim.simulate(sc, console=quiet)
    run_dir = write_run(result, folder / "run")
    quiet.file.close()
    row = result.kpi_table().iloc[0].to_dict()
    # a KPI's ``*_std`` twin is its spread over the cell's own episodes, not a metric to pool
    kpis = {
        k: float(v)
        for k, v in row.items()
        if k != "controller" and not k.endswith("_std") and _is_number(v)
    }
    return {
        **_cell_header(cell),
        "kpis": kpis,
        "run": str(run_dir.relative_to(folder)),
        "trained_checkpoint": str(trained.relative_to(folder)) if trained else None,
    }


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))


# -- aggregation -----------------------------------------------------------------------------
def t_interval(values: list[float], level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, sample std (ddof 1) and the Student-t interval of the mean at ``level``:
    ``mean ± t_{(1+level)/2, n−1} · std / √n``.  With one value: std and interval NaN."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def cells_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Long table of finished cells: scenario, variant, seed, controller, metric, value."""
    rows = [
        {**{k: r[k] for k in HEADER}, "metric": m, "value": v}
        for r in records
        for m, v in r.get("kpis", {}).items()
    ]
    cols = ["scenario", "variant", "seed", "controller", "metric", "value"]
    return pd.DataFrame(rows, columns=cols)


def aggregate(cells: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """Per scenario, variant, controller and metric: n, mean, std, 95 % interval; with a
    baseline also the per-seed ratio value / baseline value (seeds where both finished and the
    baseline is not 0): its n, mean and 95 % interval."""
    keys = ["scenario", "variant", "controller", "metric"]
    base = (
        cells[cells["controller"] == baseline].set_index(["scenario", "variant", "seed", "metric"])
        if baseline is not None
        else None
    )
    rows = []
    for key, grp in cells.groupby(keys, sort=False):
        mean, std, lo, hi = t_interval(grp["value"].tolist())
        row = dict(zip(keys, key, strict=True))
        row.update(n=len(grp), mean=mean, std=std, ci95_low=lo, ci95_high=hi)
        if base is not None and row["controller"] != baseline:
            ratios = []
            for _, r in grp.iterrows():
                k = (r["scenario"], r["variant"], r["seed"], r["metric"])
                if k in base.index:
                    b = float(base.loc[k, "value"])
                    if b != 0:
                        ratios.append(float(r["value"]) / b)
            if ratios:
                rm, _, rlo, rhi = t_interval(ratios)
                row.update(ratio_n=len(ratios), ratio=rm, ratio_ci95_low=rlo, ratio_ci95_high=rhi)
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "—"
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:,.0f}"


def sweep_markdown(
    sweep: SweepFile, agg: pd.DataFrame, failed: list[dict[str, Any]], total: int
) -> str:
    """``sweep.md``: one table per scenario and variant (mean ± 95 % half-width, n; the ratio
    to the baseline below it), then the failed cells."""
    lines = [f"# Sweep {sweep.name}", ""]
    lines.append(
        f"{total} cells ({len(sweep.seeds)} seeds × {len(sweep.controllers)} controllers × "
        f"{len(sweep.scenarios)} scenarios × {len(sweep.variants())} variants), mode "
        f"{sweep.mode}; {len(failed)} failed.  Cells: mean ± half-width of the 95 % Student-t "
        "interval over seeds (n)"
        + (
            f"; ×: mean ratio to {sweep.baseline} on the same seed, with its 95 % interval."
            if sweep.baseline
            else "."
        )
    )
    for (scen, var), grp in agg.groupby(["scenario", "variant"], sort=False):
        lines += ["", f"## {scen} · {var}", ""]
        metrics = list(dict.fromkeys(grp["metric"]))
        lines.append("| controller | " + " | ".join(metrics) + " |")
        lines.append("|---|" + "---:|" * len(metrics))
        for ctrl, cg in grp.groupby("controller", sort=False):
            by = cg.set_index("metric")
            cells = []
            for m in metrics:
                if m not in by.index:
                    cells.append("—")
                    continue
                r = by.loc[m]
                half = (r["ci95_high"] - r["ci95_low"]) / 2
                text = f"{_fmt(r['mean'])} ± {_fmt(half)} ({int(r['n'])})"
                if "ratio" in r and isinstance(r["ratio"], float) and math.isfinite(r["ratio"]):
                    text += (
                        f"<br>× {r['ratio']:.3f} [{_fmt(r['ratio_ci95_low'])}, "
                        f"{_fmt(r['ratio_ci95_high'])}]"
                    )
                cells.append(text)
            lines.append(f"| {ctrl} | " + " | ".join(cells) + " |")
    if failed:
        lines += ["", "## Failed cells", "", "| cell | error |", "|---|---|"]
        for f in failed:
            err = f["error"].replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {f['cell']} | {err} |")
    return "\n".join(lines) + "\n"


def write_outputs(
    out: Path, sweep: SweepFile, records: list[dict[str, Any]], failed: list[dict[str, Any]]
) -> pd.DataFrame:
    """Write ``cells.csv``, ``sweep.csv``, ``sweep.md`` and ``failed.json``; returns the
    aggregate."""
    cells = cells_table(records)
    agg = aggregate(cells, sweep.baseline) if len(cells) else pd.DataFrame()
    write_csv(out / "cells.csv", cells)
    write_csv(out / "sweep.csv", agg)
    write_text(out / "sweep.md", sweep_markdown(sweep, agg, failed, len(records) + len(failed)))
    write_json(out / "failed.json", failed)
    return agg


def clean_partial(out: Path) -> int:
    """Delete the temporary cell folders a killed run left; returns how many."""
    root = out / CELLS
    if not root.exists():
        return 0
    stale = [p for p in root.iterdir() if p.name.startswith(TMP_PREFIX)]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return len(stale)


@dataclass
class SweepOutcome:
    """What a sweep did: cell counts and the output folder."""

    out: Path
    done: int
    skipped: int
    failed: list[dict[str, Any]]
    total: int


def run_sweep(
    path: str | Path,
    out: str | Path | None = None,
    address: str | None = None,
    console: Any = None,
) -> SweepOutcome:
    """Run (or resume) the sweep of ``path`` on Ray and write its outputs.

    Args:
        path: the sweep file.
        out: output folder (default ``sweeps/<name>``).
        address: a Ray cluster to join (``gridmarl.core.cluster.connect``); None: local Ray.
        console: a ``rich.console.Console`` for the live progress (default: a new one).

    Raises:
        ScenarioError: a malformed sweep file or scenario, Ray missing or unreachable.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gridmarl.core.cluster import connect

    console = console or Console()
    sweep, cells = load_sweep(path)
    out = Path(out) if out is not None else Path("sweeps") / sweep.name
    (out / CELLS).mkdir(parents=True, exist_ok=True)
    removed = clean_partial(out)
    write_json(
        out / "sweep.json",
        {"sweep": sweep.model_dump(mode="json"), "source": str(path), "cells": len(cells)},
    )
    todo = [c for c in cells if not (out / CELLS / c.id / CELL_FILE).exists()]
    records = [
        json.loads((out / CELLS / c.id / CELL_FILE).read_text()) for c in cells if c not in todo
    ]
    console.print(
        f"[bold]sweep[/bold] {sweep.name}: {len(cells)} cells, {len(cells) - len(todo)} "
        f"finished before, {len(todo)} to run → {out}"
        + (f" (removed {removed} partial cell folders)" if removed else "")
    )
    failed: list[dict[str, Any]] = []
    done = 0
    if todo:
        ray = connect(address)
        task = ray.remote(num_cpus=1, max_retries=0)(run_cell)
        pending = {task.remote(c, str(out.resolve())): c for c in todo}
        cols = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("failed {task.fields[failed]}"),
            TextColumn("{task.fields[last]}"),
            TimeElapsedColumn(),
        ]
        with Progress(*cols, console=console) as progress:
            bar = progress.add_task(sweep.name, total=len(todo), failed=0, last="")
            try:
                _collect(ray, pending, records, failed, progress, bar, console)
            except KeyboardInterrupt:
                # the finished cells stay; the table covers them; a re-run does the rest
                write_outputs(out, sweep, records, failed)
                raise
        done = sum(1 for r in records if r.get("cell") in {c.id for c in todo})
    write_outputs(out, sweep, records, failed)
    console.print(
        f"[green]wrote[/green] {out / 'sweep.md'}: {len(records)} of {len(cells)} cells"
        + (f", [red]{len(failed)} failed[/red] (listed in failed.json)" if failed else "")
    )
    skipped = len(cells) - len(todo)
    return SweepOutcome(out, done, skipped, failed, len(cells))


def _collect(
    ray: Any,
    pending: dict[Any, Cell],
    records: list[dict[str, Any]],
    failed: list[dict[str, Any]],
    progress: Any,
    bar: Any,
    console: Any,
) -> None:
    """Wait for the cells' tasks one by one; append each record to ``records`` or ``failed``
    and advance the progress bar."""
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        cell = pending.pop(ready[0])
        try:
            rec = ray.get(ready[0])
        except Exception as exc:  # noqa: BLE001 - a worker that died: the cell failed
            rec = {
                **_cell_header(cell),
                "status": "failed",
                "error": f"{type(exc).__name__}: {str(exc)[:2000]}",
            }
        if rec["status"] == "failed":
            failed.append(rec)
            console.print(f"[red]failed[/red] {cell.id}: {rec['error']}")
        else:
            records.append({k: v for k, v in rec.items() if k != "status"})
        progress.update(bar, advance=1, failed=len(failed), last=cell.id)
