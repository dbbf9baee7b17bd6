"""Run folders: KPI tables, CSV exports, plots, ``comparison.md`` and the run manifest.

Layout (DESIGN §8)::

    runs/<scenario>/<UTC timestamp>/
        kpis.csv            one row per controller, first column ``controller``
        <table>.csv         per-controller schedules (dispatch_<c>.csv, signal_plan_<c>.csv, ...)
        <figure>.png        plots
        comparison.md       the same table as the terminal, with notes
        manifest.json       scenario, seed, package versions, git revision, files

Every file is written atomically (temp file + rename) and a run folder is never reused.
"""

from __future__ import annotations

import io
import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from gridmarl.config import file_stem, scenario_hash
from gridmarl.core.io import atomic_write, new_run_dir, write_csv, write_json, write_text
from gridmarl.experiment import SimulationResult

PACKAGES = (
    "gridmarl",
    "torch",
    "numpy",
    "pandas",
    "pvlib",
    "pyomo",
    "highspy",
    "pettingzoo",
    "gymnasium",
    "networkx",
    "pydantic",
    "eclipse-sumo",
    "libsumo",
    "cityflow",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on (``missing`` when absent)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def git_revision() -> dict[str, Any]:
    """Git commit of the source tree and whether it had uncommitted changes (None outside git)."""
    root = Path(__file__).resolve().parents[1]
    try:
        rev = _git(root, "rev-parse", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no") != ""
        return {"commit": rev, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def manifest(scenario: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run manifest: what ran, on what, from which source."""
    return {
        "scenario_name": scenario.name,
        "scenario_source": getattr(scenario, "source", None),
        "scenario_sha256": scenario_hash(scenario),
        "seed": scenario.seed,
        "domain": scenario.domain,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "git": git_revision(),
        "versions": package_versions(),
        "platform": {"system": platform.platform(), "machine": platform.machine()},
        "scenario": scenario.model_dump(mode="json", by_alias=True),
        **(extra or {}),
    }


def format_value(v: Any) -> str:
    """Short human formatting for a KPI value."""
    if isinstance(v, float):
        if v != v:  # NaN
            return "n/a"
        if abs(v) < 1e-9:  # solver / float round-off, e.g. 1.7e-13 kWh of excess
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.3g}"
    return str(v)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub markdown table of ``df`` (no extra dependency)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(format_value(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def comparison_markdown(result: SimulationResult) -> str:
    """``comparison.md``: summary, KPI table, per-controller notes."""
    sc = result.scenario
    parts = [f"# {sc.name}: controller comparison", ""]
    failures = result.failures()
    if failures:
        parts += [
            f"**Partial run: {len(failures)} failure(s)**; every other row and file was "
            "written (details under Failures).",
            "",
        ]
    if result.summary:
        parts += [result.summary.strip(), ""]
    parts += [markdown_table(result.kpi_table()), ""]
    notes = [f"- **{c.name}**: {c.notes}" for c in result.controllers if c.notes]
    if notes:
        parts += ["## Notes", "", *notes, ""]
    if failures:
        parts += ["## Failures", "", *[f"- {f}" for f in failures], ""]
    parts += [
        f"Scenario `{sc.source}`, seed {sc.seed}. Files in this folder are described in "
        "`manifest.json`.",
        "",
    ]
    return "\n".join(parts)


def save_figure(path: Path, fig: Any) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    def _write(tmp: Path) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        tmp.write_bytes(buf.getvalue())

    try:
        return atomic_write(path, _write)
    finally:
        plt.close(fig)


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    """Drop IEEE negative zeros (``-0``) from float columns so CSVs read naturally."""
    floats = df.select_dtypes("float").columns
    if len(floats) == 0:
        return df
    out = df.copy()
    out[floats] = out[floats] + 0.0
    return out


def write_run(result: SimulationResult, out_root: str | Path = "runs") -> Path:
    """Write every output of ``result`` into a fresh run folder and return its path."""
    run_dir = new_run_dir(out_root, result.scenario.name)
    files: list[str] = []
    write_csv(run_dir / "kpis.csv", result.kpi_table())
    files.append("kpis.csv")
    for c in result.controllers:
        for stem, table in c.tables.items():
            write_csv(run_dir / f"{file_stem(stem)}.csv", _clean(table))
            files.append(f"{file_stem(stem)}.csv")
    for stem, table in result.tables.items():
        write_csv(run_dir / f"{file_stem(stem)}.csv", _clean(table))
        files.append(f"{file_stem(stem)}.csv")
    for stem, fig in result.figures.items():
        save_figure(run_dir / f"{file_stem(stem)}.png", fig)
        files.append(f"{file_stem(stem)}.png")
    write_text(run_dir / "comparison.md", comparison_markdown(result))
    files.append("comparison.md")
    extra = {
        "files": files + ["manifest.json"],
        "controllers": [
            {
                "name": c.name,
                "wall_s": round(c.wall_s, 3),
                "notes": c.notes,
                **({"error": c.error} if c.error else {}),
            }
            for c in result.controllers
        ],
        "failures": result.failures(),
        **result.extra_manifest,
    }
    write_json(
        run_dir / "manifest.json",
        json.loads(json.dumps(manifest(result.scenario, extra), default=str)),
    )
    return run_dir
