"""Tiny traffic scenarios shared by the traffic tests (2 x 2 grids, short horizons)."""

from __future__ import annotations

import pytest

from gridmarl.config import validate_scenario


def tiny(**over) -> object:
    """A 2 x 2 grid, 120 s horizon, moderate demand; ``over`` replaces top-level keys."""
    data = {
        "name": "tiny",
        "domain": "traffic",
        "seed": 3,
        "grid": {"rows": 2, "cols": 2, "lanes": 2, "road_length_m": 100},
        "demand": {
            "profile": [
                {"duration_s": 60, "rate_veh_per_s": 0.8},
                {"duration_s": 60, "rate_veh_per_s": 0.3},
            ]
        },
        "traffic": {"horizon_s": 120, "decision_s": 10},
        "controllers": [{"name": "fixed_time"}, {"name": "max_pressure"}],
    }
    data.update(over)
    return validate_scenario(data)


@pytest.fixture
def make_tiny():
    """The ``tiny`` scenario factory."""
    return tiny
