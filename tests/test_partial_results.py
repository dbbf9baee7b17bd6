"""No lost results: a controller (or an episode of a split) that fails is recorded with its error,
every other row and file is written, and ``gridmarl simulate`` exits with the partial code."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

import baselines_opt.community as opt
from gridmarl.config import load_scenario
from gridmarl.experiment import (
    PARTIAL_EXIT_CODE,
    ControllerResult,
    SimulationResult,
    describe_error,
    isolated,
)
from gridmarl.protocol import SplitPart, run_split

ROOT = Path(__file__).resolve().parents[1]
COMMUNITY = ROOT / "scenarios" / "community_50.yaml"
SMALL = ["community.prosumers=4", "window.evaluate.days=1"]


class Boom(RuntimeError):
    pass


def _broken_mpc(*args, **kwargs):
    raise Boom("injected MPC failure")


def test_isolated_returns_the_value_or_the_error() -> None:
    assert isolated(lambda: 5) == (5, "")
    value, err = isolated(lambda: 1 / 0)
    assert value is None and err.startswith("ZeroDivisionError: ")
    assert describe_error(Boom("two\nlines")) == "Boom: two lines"

    def interrupt():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # a person's Ctrl-C is never swallowed
        isolated(interrupt)


def _energy(monkeypatch: pytest.MonkeyPatch, controllers: str, milp_fails: bool = False):
    from gridmarl.energy.simulate import simulate

    monkeypatch.setattr(opt, "MPCController", _broken_mpc)
    if milp_fails:

        def no_milp(*args, **kwargs):
            raise Boom("injected MILP failure")

        monkeypatch.setattr(opt, "solve_community_milp", no_milp)
    sc = load_scenario(COMMUNITY, [*SMALL, f"controllers={controllers}"])
    return simulate(sc)


def test_energy_failed_controller_keeps_the_other_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    res = _energy(
        monkeypatch,
        "[{name: no_control}, {name: mpc}, {name: rule_based}, {name: milp, time_limit_s: 30}]",
    )
    rows = {c.name: c for c in res.controllers}
    assert list(rows) == ["no_control", "mpc", "rule_based", "milp"]
    assert rows["mpc"].error == "Boom: injected MPC failure"
    assert math.isnan(rows["mpc"].kpis["cost_usd"])
    for name in ("no_control", "rule_based", "milp"):
        assert rows[name].error == "" and math.isfinite(rows[name].kpis["cost_usd"])
    assert rows["milp"].kpis["share_of_optimal_savings_pct"] == pytest.approx(100.0)
    assert rows["rule_based"].kpis["share_basis"] in ("optimum", "incumbent")
    table = res.kpi_table()
    assert table.columns[-1] == "error"
    assert table.set_index("controller").loc["mpc", "error"].startswith("Boom")
    assert res.failures() == ["mpc: Boom: injected MPC failure"]
    assert "dispatch_mpc" not in {s for c in res.controllers for s in c.tables}
    assert "net_load_vs_price" in res.figures


def test_energy_failed_milp_reference_leaves_shares_undefined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The MILP not listed: its failure is still reported (run-level), rows keep their costs."""
    res = _energy(monkeypatch, "[{name: no_control}, {name: rule_based}]", milp_fails=True)
    assert [c.name for c in res.controllers] == ["no_control", "rule_based"]
    assert all(not c.error for c in res.controllers)
    rb = res.controllers[1].kpis
    assert math.isfinite(rb["cost_usd"]) and math.isnan(rb["share_of_optimal_savings_pct"])
    assert rb["share_basis"] == "n/a"
    assert len(res.errors) == 1 and "injected MILP failure" in res.errors[0]
    assert "milp failed" in res.summary


def test_cli_writes_everything_then_exits_partial(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gridmarl import cli

    monkeypatch.setattr(opt, "MPCController", _broken_mpc)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "gridmarl",
            "simulate",
            str(COMMUNITY),
            "--out",
            str(tmp_path),
            *[a for s in SMALL for a in ("--set", s)],
            "--set",
            "controllers=[{name: no_control}, {name: mpc}, {name: rule_based}]",
        ],
    )
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == PARTIAL_EXIT_CODE
    (run_dir,) = [p for p in tmp_path.rglob("kpis.csv")]
    kpis = pd.read_csv(run_dir)
    assert list(kpis["controller"]) == ["no_control", "mpc", "rule_based"]
    assert kpis["error"].fillna("").tolist()[1].startswith("Boom: injected MPC failure")
    assert kpis["cost_usd"].isna().tolist() == [False, True, False]
    folder = run_dir.parent
    md = (folder / "comparison.md").read_text()
    assert "Partial run: 1 failure(s)" in md and "## Failures" in md
    assert (folder / "dispatch_rule_based.csv").exists()
    assert (folder / "manifest.json").exists()


class _FakeSim:
    """A domain whose second part fails as a whole and whose ``b`` fails on the first part."""

    @staticmethod
    def split_parts(scenario, split):
        return [SplitPart(lbl, lbl) for lbl in ("w1", "w2", "w3")]

    @staticmethod
    def simulate(scenario, console=None, seeds=None):
        if scenario == "w2":
            raise Boom("no data for w2")
        cost = {"w1": 1.0, "w3": 3.0}[scenario]
        b = (
            ControllerResult("b", {"cost": math.nan}, error="Boom: b broke")
            if scenario == "w1"
            else ControllerResult("b", {"cost": 2 * cost})
        )
        return SimulationResult(
            scenario=scenario,
            controllers=[ControllerResult("a", {"cost": cost}), b],
            headline=["cost"],
        )


def test_split_keeps_the_episodes_that_ran() -> None:
    sc = type("Sc", (), {"source": "fake.yaml"})()
    res = run_split(_FakeSim, sc, "test")
    rows = {c.name: c for c in res.controllers}
    assert rows["a"].kpis["cost"] == pytest.approx(2.0)  # mean of w1 and w3
    assert rows["b"].kpis["cost"] == pytest.approx(6.0)  # w3 only
    assert rows["a"].error == "" and rows["b"].error == "w1: Boom: b broke"
    assert res.errors == ["test part w2: Boom: no data for w2"]
    assert len(res.failures()) == 2
    ep = res.tables["kpis_per_episode"]
    assert ep.set_index(["controller", "part"]).loc[("b", "w1"), "error"] == "Boom: b broke"


def test_split_with_every_part_failing_raises() -> None:
    class AllFail(_FakeSim):
        @staticmethod
        def simulate(scenario, console=None, seeds=None):
            raise Boom("nothing")

    with pytest.raises(RuntimeError, match="every part of the 'test' split failed"):
        run_split(AllFail, type("Sc", (), {"source": "f"})(), "test")


def test_mpc_that_never_solves_is_flagged_not_ranked_silently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An MPC whose every re-plan finds no schedule in its limit runs on its fallback: the
    summary and its row's notes say so (at 1,000 prosumers a 2-s limit does this)."""
    from baselines_opt.community import mpc as mpc_module
    from baselines_opt.solve import SolverError
    from gridmarl.energy.simulate import simulate

    def no_schedule(*args, **kwargs):
        raise SolverError("the time limit was reached before HiGHS found any feasible solution")

    monkeypatch.setattr(mpc_module, "solve_highs", no_schedule)
    sc = load_scenario(
        COMMUNITY, [*SMALL, "controllers=[{name: no_control}, {name: mpc, time_limit_s: 3}]"]
    )
    res = simulate(sc)
    mpc = {c.name: c for c in res.controllers}["mpc"]
    assert mpc.error == "" and math.isfinite(mpc.kpis["cost_usd"])
    assert "24 of 24 re-plans found no schedule within 3 s" in mpc.notes
    assert "Warning: mpc found no schedule within its 3 s limit in 24 of 24 re-plans" in res.summary
