"""``simulate`` loads learned policies before it solves anything: a checkpoint that does not fit
the scenario is refused at once, not after the MILP."""

from __future__ import annotations

from pathlib import Path

import pytest

import baselines_opt.community as milp
from gridmarl.config import ScenarioError, load_scenario
from gridmarl.energy.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]


def test_unfit_checkpoint_is_refused_before_the_milp(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_solve(*args, **kwargs):
        raise AssertionError("the MILP ran before the checkpoint was checked")

    monkeypatch.setattr(milp, "solve_community_milp", no_solve)
    sc = load_scenario(
        ROOT / "scenarios" / "community_50.yaml",
        [
            "community.prosumers=6",
            "window.evaluate.days=1",
            "community.market.broadcast_loading=true",  # one more local feature than trained on
            "controllers=[{name: no_control}, {name: milp}, "
            "{name: matppo, checkpoint: data/checkpoints/community_50_matppo.pt}]",
        ],
    )
    with pytest.raises(ScenarioError, match="local_dim=24 in the checkpoint but 25"):
        simulate(sc)


def test_shipped_policy_is_refused_on_another_forecast_window() -> None:
    sc = load_scenario(
        ROOT / "scenarios" / "community_50.yaml",
        [
            "community.prosumers=6",
            "window.evaluate.days=1",
            "community.forecast.horizon_h=24",  # the shipped policy learnt on a 3 h window
            "controllers=[{name: matppo, checkpoint: data/checkpoints/community_50_matppo.pt}]",
        ],
    )
    with pytest.raises(ScenarioError, match="forecast_len=3 steps in the checkpoint but 24"):
        simulate(sc)


@pytest.mark.slow
def test_a_milp_far_from_its_bound_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    """A MILP stopped by its time limit far from its bound (a busy machine) makes every share
    meaningless: the summary says so instead of reporting the shares as if they were exact."""
    real = milp.solve_community_milp

    def stopped_early(*args, **kwargs):
        res = real(*args, **kwargs)
        res.gap = 0.25  # as if the time limit hit with a poor incumbent
        return res

    monkeypatch.setattr(milp, "solve_community_milp", stopped_early)
    sc = load_scenario(
        ROOT / "scenarios" / "community_50.yaml",
        [
            "community.prosumers=6",
            "window.evaluate.days=1",
            "controllers=[{name: no_control}, {name: milp, time_limit_s: 20}]",
        ],
    )
    res = simulate(sc)
    assert "Warning: the MILP stopped 25.0 % from its best bound" in res.summary
    monkeypatch.setattr(milp, "solve_community_milp", real)
    assert "Warning" not in simulate(sc).summary  # an exact MILP is not flagged
