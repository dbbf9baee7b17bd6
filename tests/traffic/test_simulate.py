"""simulate() returns the table, the plans and the figure for every listed controller."""

from __future__ import annotations

import pytest

from gridmarl.config import ScenarioError
from gridmarl.report import write_run
from gridmarl.traffic.simulate import simulate


def test_simulate_tiny(make_tiny, tmp_path):
    sc = make_tiny(
        controllers=[
            {"name": "fixed_time", "options": {"green_s": 20}},
            {"name": "max_pressure", "label": "mp/10s"},
            {"name": "sf_plan", "options": {"period_s": 60, "cycle_s": 60}},
        ],
        demand={"seeds": 2, "profile": [{"duration_s": 120, "rate_veh_per_s": 0.6}]},
    )
    res = simulate(sc)
    table = res.kpi_table()
    assert table.columns[0] == "controller" and table.columns[1] == "avg_travel_time_s"
    assert table.controller.tolist() == ["fixed_time", "mp/10s", "sf_plan"]
    assert "avg_travel_time_all_s" in table and "avg_travel_time_s_std" in table
    plan = res.controllers[1].tables["signal_plan_mp/10s"]
    assert list(plan.columns) == ["time_s", "intersection", "phase"]
    assert len(plan) == 12 * 4 and set(plan.intersection) == {"A0", "B0", "A1", "B1"}
    assert "queue_over_time" in res.figures
    assert len(res.tables["kpis_per_seed"]) == 6
    # a label is a file name in the run folder, never a path into a sub-folder
    run = write_run(res, tmp_path)
    assert (run / "signal_plan_mp_10s.csv").exists() and (run / "kpis.csv").exists()


def test_unknown_controller(make_tiny):
    with pytest.raises(ScenarioError, match="unknown traffic controller 'nope'"):
        simulate(make_tiny(controllers=[{"name": "nope"}]))
    # a learned controller is known (gridmarl.controllers.registry) but needs its checkpoint
    with pytest.raises(ScenarioError, match="needs 'checkpoint'"):
        simulate(make_tiny(controllers=[{"name": "matppo"}]))
