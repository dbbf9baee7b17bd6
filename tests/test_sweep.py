"""``gridmarl sweep``: the sweep file's checks (exit 2), the statistics of the aggregate, and on
a local Ray a small sweep (2 scenarios × 3 seeds × 3 controllers) with a failing cell, a
resume, and a kill mid-way."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from scipy import stats

from gridmarl.sweep import CELL_FILE, CELLS, TMP_PREFIX, aggregate, load_sweep, t_interval

ROOT = Path(__file__).resolve().parents[1]
ROUTING = ROOT / "scenarios" / "routing_ibm.yaml"
POLICY = ROOT / "data" / "checkpoints" / "routing_ibm_matppo.pt"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gridmarl", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def routing_file(tmp_path: Path, name: str, rate: float) -> str:
    """The shipped routing scenario as ``name``: one 20-step period of ``rate`` [pkt/step]."""
    data = yaml.safe_load(ROUTING.read_text())
    data["name"] = name
    data["network"]["topology"] = str(ROOT / data["network"]["topology"])
    data["traffic"]["profile"] = [{"steps": 20, "rate_pkt_per_step": rate}]
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data))
    return f"{name}.yaml"


def tiny_sweep(tmp_path: Path, checkpoint: Path = POLICY, **changes) -> Path:
    """2 routing scenarios (1 and 3 pkt/step) × 3 seeds × 3 controllers, one 20-step episode."""
    data = {
        "name": "tiny",
        "scenarios": [routing_file(tmp_path, "calm", 1.0), routing_file(tmp_path, "busy", 3.0)],
        "set": ["evaluation.episodes=1"],
        "seeds": [0, 1, 2],
        "controllers": [
            "shortest_path_hops",
            "shortest_path_distance",
            {"name": "matppo", "checkpoint": str(checkpoint)},
        ],
        "baseline": "shortest_path_hops",
        **changes,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# -- the sweep file ---------------------------------------------------------------------------
def test_sweep_cells_expand_grid_seeds_controllers(tmp_path: Path) -> None:
    path = tiny_sweep(tmp_path, grid={"routing_unused": [1]})
    with pytest.raises(Exception, match="routing_unused"):
        load_sweep(path)
    path = tiny_sweep(tmp_path, grid={"evaluation.episodes": [1, 2]})
    sweep, cells = load_sweep(path)
    assert len(cells) == 2 * 2 * 3 * 3
    assert len({c.id for c in cells}) == len(cells)
    one = next(c for c in cells if c.seed == 2 and c.label == "matppo" and "2" in c.variant)
    assert one.overrides[-1] == "seed=2" and "evaluation.episodes=2" in one.overrides


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"seedz": [1]}, "seedz"),
        ({"baseline": "nobody"}, "baseline"),
        ({"scenarios": ["missing.yaml"]}, "scenarios[0]"),
        ({"mode": "train"}, "mode"),
        ({"mode": "train-then-evaluate"}, "train block"),
        ({"controllers": ["no_such_controller"]}, "no_such_controller"),
        ({"seeds": [1, 1]}, "seeds"),
    ],
)
def test_malformed_sweep_exits_2_naming_the_key(tmp_path: Path, change: dict, needle: str) -> None:
    r = run_cli("sweep", str(tiny_sweep(tmp_path, **change)), "--out", str(tmp_path / "o"))
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o" / CELLS).exists()


def test_core_commands_do_not_import_ray() -> None:
    """Ray is an optional extra: the command line, simulate, train, the sweep module and the
    traffic env import without it (Ray is imported only when a sweep or Ray workers run)."""
    code = (
        "import sys; import gridmarl.cli, gridmarl.sweep, gridmarl.train, gridmarl.traffic.env, "
        "gridmarl.routing.simulate, gridmarl.controllers.matppo; "
        "sys.exit(3 if 'ray' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=300).returncode == 0


@pytest.mark.slow
def test_train_then_evaluate_cell(tmp_path: Path) -> None:
    """A learned controller without a checkpoint is trained on the cell's seed, then its
    best.pt evaluated; a baseline is evaluated as it is (run_cell, no Ray needed)."""
    from gridmarl.sweep import run_cell

    path = tiny_sweep(
        tmp_path,
        controllers=["shortest_path_hops", "matppo"],
        mode="train-then-evaluate",
        train={"steps": 720, "validate_every": 1},
        set=[
            "evaluation.episodes=1",
            "train.num_envs=2",
            "train.options={rollout_steps: 10, value_target: team}",
        ],
        seeds=[4],
        scenarios=[routing_file(tmp_path, "calm", 1.0)],
    )
    _, cells = load_sweep(path)
    assert [(c.label, c.train_steps) for c in cells] == [
        ("shortest_path_hops", None),
        ("matppo", 720),
    ]
    rec = run_cell(cells[1], str(tmp_path / "out"))
    assert rec["status"] == "done", rec.get("error")
    folder = tmp_path / "out" / CELLS / cells[1].id
    ck = folder / rec["trained_checkpoint"]
    assert ck.name == "best.pt" and ck.exists()
    man = json.loads((ck.parent.parent / "train_manifest.json").read_text())
    assert man["seed"] == 4 and man["agent_steps"] == 720  # 2 updates x 2 envs x 10 x 18
    assert set(man["git"]) == {"commit", "dirty"}  # the source revision that trained it
    assert rec["kpis"]["avg_delay_steps"] > 0
    assert run_cell(cells[1], str(tmp_path / "out"))["status"] == "skipped"


# -- statistics -------------------------------------------------------------------------------
def test_t_interval_matches_closed_form() -> None:
    mean, std, lo, hi = t_interval([1.0, 2.0, 3.0])
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # t_{0.975,2} = 4.3027
    assert (mean, std) == (2.0, 1.0)
    assert lo == pytest.approx(2.0 - half) and hi == pytest.approx(2.0 + half)
    assert math.isnan(t_interval([5.0])[1])


def test_aggregate_pairs_ratios_on_seed() -> None:
    rows = []
    for seed, base, other in [(0, 2.0, 3.0), (1, 4.0, 4.0), (2, 5.0, 10.0)]:
        rows.append(("s", "-", seed, "base", "cost", base))
        rows.append(("s", "-", seed, "x", "cost", other))
    rows.append(("s", "-", 3, "x", "cost", 100.0))  # no baseline on seed 3: no ratio
    cells = pd.DataFrame(
        rows, columns=["scenario", "variant", "seed", "controller", "metric", "value"]
    )
    agg = aggregate(cells, "base").set_index("controller")
    x = agg.loc["x"]
    assert x["n"] == 4 and x["mean"] == pytest.approx((3 + 4 + 10 + 100) / 4)
    assert x["ratio_n"] == 3
    assert x["ratio"] == pytest.approx((1.5 + 1.0 + 2.0) / 3)
    assert math.isnan(agg.loc["base"].get("ratio", math.nan))


# -- on Ray -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def cell_files(out: Path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / CELLS).glob(f"*/{CELL_FILE}")}


def leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.startswith((TMP_PREFIX, ".")) and "tmp" in p.name]


@pytest.mark.slow
def test_sweep_failed_cell_then_resume(tmp_path: Path, ray_local) -> None:
    """A broken checkpoint fails the matppo cells; the others finish and the table is written;
    with the checkpoint repaired a re-run runs only the failed cells."""
    from gridmarl.sweep import run_sweep

    broken = tmp_path / "policy.pt"
    broken.write_bytes(b"not a checkpoint")
    path = tiny_sweep(tmp_path, checkpoint=broken)
    out = tmp_path / "out"
    first = run_sweep(path, out=out)
    assert (first.done, first.skipped, len(first.failed)) == (12, 0, 6)
    assert all(f["controller"] == "matppo" and "policy.pt" in f["error"] for f in first.failed)
    assert "Failed cells" in (out / "sweep.md").read_text()
    before = cell_files(out)
    assert len(before) == 12

    broken.write_bytes(POLICY.read_bytes())
    second = run_sweep(path, out=out)
    assert (second.done, second.skipped, second.failed) == (6, 12, [])
    after = cell_files(out)
    assert len(after) == 18 and all(after[k] == v for k, v in before.items())
    agg = pd.read_csv(out / "sweep.csv")
    assert len(agg.groupby(["scenario", "controller"])) == 6 and set(agg["n"]) == {3}
    # the table is the cells' own numbers
    cells = pd.read_csv(out / "cells.csv")
    d = cells[(cells.controller == "matppo") & (cells.metric == "avg_delay_steps")]
    for scen, grp in d.groupby("scenario"):
        row = agg[(agg.scenario == scen) & (agg.controller == "matppo")]
        row = row[row.metric == "avg_delay_steps"].iloc[0]
        assert row["mean"] == pytest.approx(grp["value"].mean())
    rec = json.loads(next((out / CELLS).glob(f"*matppo/{CELL_FILE}")).read_text())
    assert (out / CELLS / rec["cell"] / rec["run"] / "kpis.csv").exists()
    assert not leftovers(out)


@pytest.mark.slow
def test_sweep_killed_mid_way_resumes(tmp_path: Path, ray_local) -> None:
    """``gridmarl sweep`` killed (SIGKILL) after a few cells: the re-run keeps the finished
    cells untouched, runs the rest, and no partial folder or file is left."""
    from gridmarl.sweep import run_sweep

    path = tiny_sweep(tmp_path)
    out = tmp_path / "out"
    address = ray_local.get_runtime_context().gcs_address
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gridmarl",
            "sweep",
            str(path),
            "--out",
            str(out),
            "--address",
            address,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while len(cell_files(out)) < 4 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(2.0)  # Ray stops the dead driver's tasks
    before = cell_files(out)
    assert 4 <= len(before) < 18
    assert not (out / "sweep.csv").exists()

    again = run_sweep(path, out=out)
    after = cell_files(out)
    assert len(after) == 18 and not again.failed
    assert again.skipped >= len(before)
    assert all(after[k] == v for k, v in before.items())
    assert not leftovers(out)
