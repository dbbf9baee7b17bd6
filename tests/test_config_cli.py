"""Scenario validation and the command line's handling of bad input (exit code 2, one clear
message, no traceback, no huge echo of the input)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gridmarl.config import ScenarioError, apply_overrides, load_scenario

ROOT = Path(__file__).resolve().parents[1]
COMMUNITY = ROOT / "scenarios" / "community_50.yaml"


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gridmarl.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def write(tmp_path: Path, data, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return p


def community(**changes) -> dict:
    data = yaml.safe_load(COMMUNITY.read_text())
    return apply_overrides(data, [f"{k}={v}" for k, v in changes.items()])


def test_shipped_scenario_validates() -> None:
    sc = load_scenario(COMMUNITY)
    assert sc.domain == "energy" and sc.community.prosumers == 50
    assert [c.name for c in sc.controllers][:3] == ["matppo", "no_control", "rule_based"]


def test_overrides_are_typed() -> None:
    sc = load_scenario(
        COMMUNITY, ["seed=3", "community.prosumers=80", "community.battery.capacity_kwh=[5, 6]"]
    )
    assert sc.seed == 3 and sc.community.prosumers == 80
    assert sc.community.battery.capacity_kwh == (5.0, 6.0)


BAD_CASES = {
    "not_yaml": ("name: [unclosed", "not valid YAML at line"),
    "not_mapping": ("- a\n- b\n", "top level must be a mapping"),
    "unknown_key": (community(**{"community.batery": "{}"}), "community.batery: unknown key"),
    "wrong_type": (community(**{"community.prosumers": "many"}), "community.prosumers"),
    "negative_capacity": (
        community(**{"community.battery.capacity_kwh": "[-5, 6]"}),
        "community.battery.capacity_kwh",
    ),
    "unknown_dataset": (
        community(**{"community.dataset": "no_such_data"}),
        "community.dataset: unknown dataset 'no_such_data'",
    ),
    "window_outside_data": (
        community(**{"window.evaluate.start": "2019-01-01"}),
        "window.evaluate: 2019-01-01 + 7 days lies outside the data",
    ),
    "unknown_domain": ({"name": "x", "domain": "water"}, "unknown domain; allowed: energy"),
    "duplicate_controller_names": (
        community(controllers="[{name: rule_based}, {name: milp}, {name: rule_based}]"),
        "controllers: Value error, entries 0 and 2 are both named 'rule_based'",
    ),
    "labels_naming_one_file": (
        community(controllers="[{name: rule_based, label: 'a/b'}, {name: milp, label: a_b}]"),
        "entries 0 and 1 are both named 'a/b' / 'a_b' in tables and file names",
    ),
    "eval_overlaps_train": (
        community(**{"window.evaluate.start": "2016-08-03"}),
        "overlaps window.train",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_scenarios_raise_clear_errors(tmp_path: Path, case: str) -> None:
    data, expected = BAD_CASES[case]
    path = write(tmp_path, data)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert expected in msg, msg
    assert str(path) in msg


def test_missing_file() -> None:
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario("does/not/exist.yaml")


def test_huge_input_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, community(**{"community.prosumers": "x" * 5000}))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize("case", ["not_yaml", "unknown_key", "window_outside_data"])
def test_cli_exits_2_without_traceback(tmp_path: Path, case: str) -> None:
    data, expected = BAD_CASES[case]
    path = write(tmp_path, data)
    for args in (["validate", str(path)], ["simulate", str(path), "--out", str(tmp_path / "runs")]):
        proc = run_cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
        assert expected in " ".join(proc.stderr.split()), proc.stderr
    assert not (tmp_path / "runs").exists()


def test_cli_missing_file_and_bad_set() -> None:
    proc = run_cli("simulate", "nope.yaml")
    assert proc.returncode == 2 and "nope.yaml: file not found" in proc.stderr
    proc = run_cli("validate", str(COMMUNITY), "--set", "community.prosumers")
    assert proc.returncode == 2 and "expected dotted.key=value" in proc.stderr
    proc = run_cli("validate", str(COMMUNITY), "--set", "seed=-1")
    assert proc.returncode == 2 and "seed" in proc.stderr


def test_cli_validate_ok_and_schema() -> None:
    proc = run_cli("validate", str(COMMUNITY))
    assert proc.returncode == 0, proc.stderr
    assert "energy scenario 'community_50'" in proc.stdout
    proc = run_cli("validate", str(COMMUNITY), "--schema")
    assert proc.returncode == 0 and '"energy"' in proc.stdout


def test_cli_unwritable_out_fails_fast(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = run_cli("simulate", str(COMMUNITY), "--out", str(blocker / "runs"))
    assert proc.returncode == 2, proc.stderr
    assert "cannot write there" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_cli_train_refuses_keep_prior_that_would_do_nothing(tmp_path: Path) -> None:
    """``--warm-start-keep-prior`` without a warm start, or on an env without a declared
    default action, is an error (exit 2) before any run folder is made."""
    base = ["train", str(COMMUNITY), "--device", "cpu", "--out", str(tmp_path / "runs")]
    for extra, expected in (
        (["--warm-start-keep-prior"], "no --warm-start given"),
        (["--warm-start", "rule_based", "--warm-start-keep-prior"], "this env declares none"),
    ):
        proc = run_cli(*base, *extra)
        assert proc.returncode == 2, proc.stderr
        assert expected in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
    assert not any((tmp_path / "runs").rglob("*manifest.json"))


def test_cli_finetune_bad_input_exits_2(tmp_path: Path) -> None:
    """``gridmarl finetune`` without a checkpoint, or with a missing one, exits 2 before any
    run folder is made."""
    base = ["finetune", str(COMMUNITY), "--out", str(tmp_path / "runs")]
    for extra, expected in (([], "needs --checkpoint"), (["--checkpoint", "nope.pt"], "no such")):
        proc = run_cli(*base, *extra)
        assert proc.returncode == 2, proc.stderr
        assert expected in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
    assert not any((tmp_path / "runs").rglob("*manifest.json"))
