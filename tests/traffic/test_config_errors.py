"""Bad traffic scenarios fail with messages that name the key."""

from __future__ import annotations

import pytest

from gridmarl.config import ScenarioError, validate_scenario
from gridmarl.traffic import engines, install


def _data(**over):
    d = {"name": "x", "domain": "traffic"}
    d.update(over)
    return d


@pytest.mark.parametrize(
    ("over", "key"),
    [
        ({"grid": {"rows": 0}}, "grid.rows"),
        ({"grid": {"cols": -1}}, "grid.cols"),
        (
            {"demand": {"profile": [{"duration_s": 60, "rate_veh_per_s": -1}]}},
            "demand.profile.0.rate_veh_per_s",
        ),
        ({"traffic": {"yellow_s": 10, "decision_s": 10}}, "traffic"),
        ({"traffic": {"horizon_s": 95, "decision_s": 10}}, "traffic"),
        ({"engine": "vissim"}, "engine"),
        ({"grid": {"rows": 2, "colums": 2}}, "grid.colums"),
    ],
)
def test_bad_values_name_the_key(over, key):
    with pytest.raises(ScenarioError) as err:
        validate_scenario(_data(**over))
    assert key in str(err.value)


def test_missing_sumo_is_a_scenario_error(monkeypatch):
    def boom(name: str):
        raise ScenarioError(
            f"SUMO binary {name!r} not found under /nowhere; reinstall eclipse-sumo"
        )

    monkeypatch.setattr(install, "sumo_binary", boom)  # what validation checks
    monkeypatch.setattr(engines, "sumo_binary", boom)  # what doctor and the engines use
    with pytest.raises(ScenarioError, match="engine: 'sumo' is not usable"):
        validate_scenario(_data())
    assert engines.engine_status()["sumo"].startswith("unavailable")


def test_missing_libsumo_is_found_without_importing_it(monkeypatch):
    real = install.find_spec
    monkeypatch.setattr(install, "find_spec", lambda n: None if n == "libsumo" else real(n))
    with pytest.raises(ScenarioError, match="libsumo is not installed"):
        validate_scenario(_data())


def test_cityflow_missing_is_reported():
    ok, why = engines.cityflow_available()
    status = engines.engine_status()
    assert status["sumo"].startswith("available")
    if not ok:
        assert "not installed" in status["cityflow"]
        with pytest.raises(ScenarioError, match="engine: 'cityflow'"):
            validate_scenario(_data(engine="cityflow"))


def test_cityflow_engine_runs_when_installed(make_tiny):
    pytest.importorskip("cityflow", reason="CityFlow is not installed (build it from source)")
    from gridmarl.experiment import run_episode
    from gridmarl.traffic.env import TrafficEnv
    from gridmarl.traffic.rules import MaxPressure

    env = TrafficEnv(make_tiny(engine="cityflow"))
    try:
        run_episode(env, MaxPressure(), seed=0)
        assert env.episode_kpis()[0]["throughput_veh"] > 0
    finally:
        env.close()
