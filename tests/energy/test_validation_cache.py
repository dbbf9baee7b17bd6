"""Runs share the validation references (a 5-minute MILP on community_50) exactly when the
references would be the same: the validation window and the community, nothing else."""

from __future__ import annotations

from pathlib import Path

from gridmarl.config import load_scenario
from gridmarl.energy.training import validation_hash

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "community_50.yaml"


def _hash(*overrides: str) -> str:
    return validation_hash(load_scenario(SCENARIO, list(overrides)))


def test_training_choices_share_the_references() -> None:
    base = _hash()
    assert _hash("window.train.start=2016-10-01", "window.train.days=89") == base
    assert _hash("window.evaluate.start=2017-02-06") == base
    assert _hash("window.test=[{start: 2017-04-03, days: 7}]", "window.dev=[]") == base
    assert _hash("train.credit=share", "train.options.lr=0.001") == base
    assert _hash("controllers=[{name: no_control}]") == base


def test_what_the_references_depend_on_changes_the_key() -> None:
    base = _hash()
    assert _hash("window.validate.start=2017-01-09") != base
    assert _hash("community.prosumers=20") != base
    assert _hash("community.market.transformer_kw=100") != base
