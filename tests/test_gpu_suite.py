"""``benchmarks/gpu_suite.py``: exits 2 at once without a GPU; ``--smoke`` runs every section
on the CPU at tiny sizes and writes the JSON and the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "gpu_suite.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SUITE), *args], capture_output=True, text=True, timeout=900, cwd=ROOT
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_no_gpu_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    r = run("--out", str(tmp_path))
    assert r.returncode == 2
    assert "no CUDA GPU visible" in r.stderr and "Traceback" not in r.stderr
    assert not list(tmp_path.iterdir())


def test_bad_section_exits_2(tmp_path: Path) -> None:
    r = run("--only", "nothing", "--out", str(tmp_path))
    assert r.returncode == 2 and "allowed: energy_env" in r.stderr


@pytest.mark.slow
def test_smoke_run_writes_every_section(tmp_path: Path) -> None:
    r = run("--smoke", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "gpu_suite.json").read_text())
    sec = res["sections"]
    assert set(sec) == {"energy_env", "routing_env", "matppo_energy", "learners"}
    assert all("status" not in s for s in sec.values()), sec  # none skipped or failed
    assert sec["energy_env"]["num_envs"] == 8 and sec["energy_env"]["agent_steps_per_s"] > 0
    assert sec["routing_env"]["routers"] == 18
    curve = sec["matppo_energy"]["curve"]
    assert curve and curve[-1][0] == sec["matppo_energy"]["agent_steps"]
    assert sec["learners"]["learners"]["matppo"]["status"] == "ok"
    table = (tmp_path / "gpu_suite.md").read_text()
    assert table.count("\n| ") >= 5 and "CPU (smoke run)" in table
