"""The evaluation protocol (docs/protocol.md): windows with roles, the split driver's summary
statistics, and ``gridmarl simulate --split``."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gridmarl.config import ScenarioError, load_scenario
from gridmarl.core.seeding import role_of
from gridmarl.protocol import add_paired_ratio, interval, summary_table

ROOT = Path(__file__).resolve().parents[1]
COMMUNITY = ROOT / "scenarios" / "community_50.yaml"


def test_interval_matches_the_t_formula():
    v = np.array([1.0, 2.0, 4.0, 7.0])
    r = interval(v)
    # t_{0.975, 3} = 3.182446305...
    half = 3.182446305284263 * v.std(ddof=1) / 2.0
    assert r["n"] == 4 and r["mean"] == pytest.approx(3.5)
    assert r["ci95_lo"] == pytest.approx(3.5 - half) and r["ci95_hi"] == pytest.approx(3.5 + half)
    one = interval(np.array([2.0, math.nan]))
    assert one["n"] == 1 and math.isnan(one["std"]) and math.isnan(one["ci95_lo"])


def test_tagged_entries_are_summarised_over_tags():
    ep = pd.DataFrame(
        {
            "controller": ["m@s1", "m@s1", "m@s2", "m@s2", "rule", "rule"],
            "part": ["w1", "w2"] * 3,
            "episode": ["w1", "w2"] * 3,
            "cost": [10.0, 14.0, 20.0, 22.0, 30.0, 40.0],
        }
    )
    s = summary_table(ep, ["cost"]).set_index("controller")
    assert s.loc["m@s1", "mean"] == pytest.approx(12.0)
    # group row: mean of the per-seed means (12, 21), std over seeds
    assert s.loc["m", "mean"] == pytest.approx(16.5)
    assert s.loc["m", "std_over_tags"] == pytest.approx(np.std([12.0, 21.0], ddof=1))
    assert s.loc["m", "tags"] == 2 and s.loc["m", "n"] == 4
    assert math.isnan(s.loc["rule"].get("std_over_tags", math.nan))


def test_paired_ratio_divides_by_the_same_episode():
    ep = pd.DataFrame(
        {
            "controller": ["a", "a", "base", "base"],
            "part": ["p", "p", "p", "p"],
            "episode": [1, 2, 2, 1],
            "t": [9.0, 30.0, 20.0, 10.0],
        }
    )
    col = add_paired_ratio(ep, "t", "base")
    assert col == "t_vs_base"
    assert ep.loc[ep["controller"] == "a", col].tolist() == pytest.approx([0.9, 1.5])
    assert add_paired_ratio(ep, "t", "missing") is None


def test_shipped_energy_scenario_has_disjoint_roles():
    sc = load_scenario(COMMUNITY)
    w = sc.window
    assert len(w.test) >= 4 and sum(s.days for s in w.test) >= 28
    assert w.evaluate in w.dev  # the week developed on is named as such
    months = {s.start.month for s in w.test}
    assert len(months) == len(w.test)  # spread over the year, one per month at most
    from gridmarl.energy.simulate import split_parts

    parts = split_parts(sc, "test")
    assert [p.scenario.window.evaluate for p in parts] == w.test
    assert all(p.scenario.window.train == w.train for p in parts)
    assert sc.window.evaluate == load_scenario(COMMUNITY).window.evaluate  # not mutated


@pytest.mark.parametrize(
    "override, message",
    [
        ("window.test=[{start: 2016-12-20, days: 7}]", "window.test[0] overlaps window.train"),
        ("window.test=[{start: 2017-01-05, days: 7}]", "overlaps window.validate"),
        (
            "window.test=[{start: 2017-02-13, days: 7}, {start: 2017-02-15, days: 7}]",
            "window.test[1] overlaps window.test[0]",
        ),
        ("window.dev=[{start: 2017-02-14, days: 3}]", "overlaps window.dev[0]"),
        ("window.test=[{start: 2017-07-28, days: 7}]", "window.test[0]: 2017-07-28 + 7 days"),
    ],
)
def test_overlapping_or_outside_windows_are_refused(override, message):
    with pytest.raises(ScenarioError, match=re.escape(message)):
        load_scenario(COMMUNITY, [override]).check_resources()


def test_traffic_and_routing_test_seeds_come_from_the_test_stream():
    from gridmarl.routing.simulate import split_parts as routing_parts
    from gridmarl.traffic.simulate import split_parts as traffic_parts

    for scenario, parts in (
        ("traffic_grid_6x6.yaml", traffic_parts),
        ("routing_ibm.yaml", routing_parts),
    ):
        sc = load_scenario(ROOT / "scenarios" / scenario)
        (part,) = parts(sc, "test")
        assert len(part.seeds) >= 10 and {role_of(s) for s in part.seeds} == {"test"}
        with pytest.raises(ScenarioError, match="allowed"):
            parts(sc, "dev")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gridmarl.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


def test_simulate_split_test_writes_a_summary(tmp_path):
    scenario = {
        "name": "tiny_routing",
        "domain": "routing",
        "seed": 2,
        "network": {
            "generator": {"kind": "waxman", "routers": 6, "seed": 1, "side_km": 1500},
            "km_per_step": 500,
        },
        "traffic": {"profile": [{"steps": 30, "rate_pkt_per_step": 1.5}]},
        "evaluation": {"episodes": 2, "test_episodes": 4},
        "controllers": [{"name": "shortest_path_hops"}, {"name": "shortest_path_distance"}],
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    r = _cli("simulate", str(path), "--split", "test", "--out", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr + r.stdout
    (run,) = (tmp_path / "runs" / "tiny_routing").iterdir()
    ep = pd.read_csv(run / "kpis_per_episode.csv")
    assert len(ep) == 2 * 4 and {role_of(int(s)) for s in ep["episode"]} == {"test"}
    ratio = ep[ep["controller"] == "shortest_path_distance"][
        "avg_delay_steps_vs_shortest_path_distance"
    ]
    assert ratio.tolist() == pytest.approx([1.0] * 4)
    kpis = pd.read_csv(run / "kpis.csv").set_index("controller")
    hops = ep[ep["controller"] == "shortest_path_hops"]["avg_delay_steps"]
    assert kpis.loc["shortest_path_hops", "avg_delay_steps"] == pytest.approx(hops.mean())
    assert kpis.loc["shortest_path_hops", "avg_delay_steps_std"] == pytest.approx(hops.std())
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["split"] == "test" and len(manifest["parts"][0]["seeds"]) == 4
    bad = _cli("simulate", str(path), "--split", "holdout", "--out", str(tmp_path / "runs"))
    assert bad.returncode == 2 and "--split 'holdout'" in bad.stderr + bad.stdout
