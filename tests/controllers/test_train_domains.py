"""``gridmarl train`` on routing and traffic with the same MATPPO code: tiny budgets, run folder,
checkpoint, resume, and the checkpoint listed in ``simulate``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from gridmarl.config import ScenarioError, validate_scenario
from gridmarl.controllers.common.normalizers import RunningMeanStd
from gridmarl.controllers.matppo import MATPPO

QUIET = Console(quiet=True)
TINY_OPTS = {
    "rollout_steps": 10,
    "epochs": 1,
    "minibatches": 1,
    "feat_dim": 8,
    "actor_hidden": 8,
    "critic_dim": 8,
    "critic_heads": 1,
    "critic_layers": 1,
    "value_target": "team",
}


def tiny_routing(**over: object) -> object:
    """A generated 6-router network, 40 steps, path features and the delay reward."""
    data = {
        "name": "tiny_routing",
        "domain": "routing",
        "seed": 3,
        "network": {
            "generator": {"kind": "waxman", "routers": 6, "seed": 1, "side_km": 1500},
            "km_per_step": 500,
        },
        "traffic": {
            "profile": [
                {"steps": 20, "rate_pkt_per_step": 1.0},
                {"steps": 20, "rate_pkt_per_step": 2.5},
            ]
        },
        "env": {"path_features": True, "reward": "queue_and_flight"},
        "evaluation": {"episodes": 2},
        "train": {"steps": 1000, "num_envs": 4, "options": TINY_OPTS},
        "controllers": [{"name": "shortest_path_distance"}],
    }
    data.update(over)
    return validate_scenario(data)


PER_UPDATE = 10 * 4 * 6  # rollout_steps x num_envs x routers


@pytest.fixture(scope="module")
def routing_run(tmp_path_factory):
    from gridmarl.train import train

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs")
    return train(
        tiny_routing(),
        device="cpu",
        steps=2 * PER_UPDATE,
        out=out,
        validate_every=1,
        console=QUIET,
        warm_start="shortest_path_distance",
        warm_start_epochs=2,
    )


def test_routing_train_writes_checkpoints_and_validation(routing_run):
    ck = routing_run / "checkpoints"
    for name in ("last", "best", f"step_{2 * PER_UPDATE:012d}"):
        assert (ck / f"{name}.pt").exists() and (ck / f"{name}.json").exists()
    side = json.loads((ck / "last.json").read_text())
    assert side["agent_steps"] == 2 * PER_UPDATE and side["validation_avg_delay_steps"] > 0
    rows = (routing_run / "validation.csv").read_text().splitlines()
    assert rows[0].startswith("agent_steps,updates,wall_s,avg_delay_steps,throughput_pkt")
    assert len(rows) == 4  # the warm-started clone (step 0), then both updates
    assert rows[1].startswith("0,0,")
    ref = json.loads((routing_run / "validation_reference.json").read_text())
    assert ref["shortest_path_distance_avg_delay_steps"] > 0
    # discrete-only, no forecast: what the MATPPO docs promise to handle
    ctrl = MATPPO.from_checkpoint(ck / "last.pt", _routing_env().spec, device="cpu")
    assert ctrl.spec.n_continuous == 0 and ctrl.spec.forecast_len == 0


def _routing_env(**kw: object):
    from gridmarl.routing.simulate import load_topology, make_env

    sc = tiny_routing(**kw)
    return make_env(sc, load_topology(sc))


def test_routing_resume_continues(routing_run):
    from gridmarl.train import train

    train(
        tiny_routing(),
        device="cpu",
        steps=3 * PER_UPDATE,
        resume=routing_run,
        validate_every=1,
        console=QUIET,
    )
    side = json.loads((routing_run / "checkpoints" / "last.json").read_text())
    assert side["agent_steps"] == 3 * PER_UPDATE and side["updates"] == 3


def test_routing_simulate_lists_the_checkpoint(routing_run):
    from gridmarl.routing.simulate import simulate

    path = str(routing_run / "checkpoints" / "best.pt")
    sc = tiny_routing(
        controllers=[
            {"name": "shortest_path_distance"},
            {"name": "matppo", "label": "learned", "checkpoint": path},
        ]
    )
    res = simulate(sc)
    names = [r.name for r in res.controllers]
    assert names == ["shortest_path_distance", "learned"]
    learned = res.controllers[1]
    assert learned.kpis["throughput_pkt"] > 0
    table = learned.tables["next_hop_learned"]
    assert {"router", "destination", "next_hop", "share"} <= set(table.columns)
    assert np.allclose(table.groupby(["router", "destination"])["share"].sum(), 1.0)


def test_routing_warm_start_from_mcf(tmp_path):
    """``--warm-start mcf`` clones the multicommodity-flow split tables of every rate segment."""
    from gridmarl.routing.training import TEACHERS
    from gridmarl.train import train

    sc = tiny_routing()
    teacher = TEACHERS["mcf"](sc)
    assert len(teacher.shares) == 2 and teacher.starts == [0, 20]  # one table per segment
    for sh in teacher.shares:  # every (router, destination) row is a distribution over slots
        assert np.allclose(sh.sum(-1)[~np.eye(6, dtype=bool)], 1.0)
    run = train(
        sc,
        device="cpu",
        steps=PER_UPDATE,
        out=tmp_path,
        validate_every=1,
        console=QUIET,
        warm_start="mcf",
        warm_start_epochs=2,
    )
    ck = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert ck["meta"]["warm_start"] == "mcf"


def test_routing_unknown_or_incomplete_learned_entry_is_refused(tmp_path):
    with pytest.raises(ScenarioError, match="unknown routing controller 'nope'"):
        tiny_routing(controllers=[{"name": "nope"}])
    with pytest.raises(ScenarioError, match="needs 'checkpoint'"):
        tiny_routing(controllers=[{"name": "matppo"}])
    with pytest.raises(ScenarioError, match="file not found"):
        tiny_routing(controllers=[{"name": "matppo", "checkpoint": str(tmp_path / "x.pt")}])


def test_path_features_and_delay_reward():
    env = _routing_env()
    n, k = env.n, env.k
    obs = env.reset(seed=5)
    for _ in range(12):
        step = env.step(
            __import__("gridmarl.routing.rules", fromlist=["x"])
            .shortest_path_controller(env.topology, "distance")
            .act(obs)
        )
        obs = step.obs
    from gridmarl.routing.env import head_destination

    dist = env.topology.delay_matrix()
    dst, has = head_destination(obs, n)
    feat = obs.local[..., -k:]
    mask = obs.action_mask
    best = torch.where(mask, feat, torch.inf).min(-1).values
    r = torch.arange(n).expand_as(dst)
    want = torch.as_tensor(dist, dtype=best.dtype)[r, dst]
    assert bool(has.any())
    assert torch.allclose(best[has], want[has])
    assert float(feat[~has].abs().sum()) == 0.0
    # team reward = -(packets queued + packets in flight)
    queued, flying = obs.global_[0, 0], obs.global_[0, 1]
    assert float(step.team_reward[0]) == pytest.approx(-float(queued + flying))


def test_running_norm_ignores_empty_batches():
    norm = RunningMeanStd((0, 0))
    norm.update(torch.zeros(4, 3, 0, 0))  # H = 0 forecasts: no error, nothing merged
    assert float(norm.count) == 0.0


def test_unknown_domain_is_refused():
    from gridmarl.train import domain_training

    class _S:
        domain, source = "weather", "<s>"

    with pytest.raises(ScenarioError, match="supports domain"):
        domain_training(_S())


# -- traffic ----------------------------------------------------------------------------------
def _tiny_traffic(**over: object) -> object:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "traffic"))
    from conftest import tiny  # tests/traffic/conftest.py

    sys.path.pop(0)
    return tiny(**over)


@pytest.mark.slow
def test_traffic_train_and_simulate_on_a_2x2_grid(tmp_path):
    """2 updates on SUMO workers (7 s idle, 20 s under load); the checkpoint runs in simulate."""
    from gridmarl.traffic.engines import check_engine

    try:
        check_engine("sumo")
    except ScenarioError as exc:
        pytest.skip(f"SUMO is not usable here: {exc}")
    from gridmarl.traffic.simulate import simulate
    from gridmarl.train import train

    opts = {**TINY_OPTS, "rollout_steps": 6}
    sc = _tiny_traffic(train={"steps": 48, "num_envs": 2, "options": opts})
    run = train(
        sc, device="cpu", steps=2 * 6 * 2 * 4, out=tmp_path, validate_every=2, console=QUIET
    )
    side = json.loads((run / "checkpoints" / "last.json").read_text())
    assert side["agent_steps"] == 96 and side["validation_avg_travel_time_s"] > 0
    ref = json.loads((run / "validation_reference.json").read_text())
    assert ref["max_pressure_avg_travel_time_s"] > 0
    # a jam cannot hide in the validation row: the finished share and every vehicle's time
    # against MaxPressure's stand beside the finished-trip ratio
    import csv

    row = list(csv.DictReader((run / "validation.csv").open()))[-1]
    assert 0.0 <= float(row["finished_share"]) <= 1.0
    assert float(row["travel_time_all_vs_max_pressure"]) == pytest.approx(
        float(row["avg_travel_time_all_s"]) / ref["max_pressure_avg_travel_time_all_s"]
    )
    path = str(run / "checkpoints" / "last.pt")
    res = simulate(
        _tiny_traffic(
            demand={"profile": [{"duration_s": 120, "rate_veh_per_s": 0.5}], "seeds": 1},
            controllers=[{"name": "matppo", "checkpoint": path}],
        )
    )
    assert res.controllers[0].name == "matppo"
    assert res.controllers[0].kpis["throughput_veh"] > 0
    with pytest.raises(ScenarioError, match="unknown traffic controller 'nope'"):
        simulate(_tiny_traffic(controllers=[{"name": "nope"}]))


def test_checkpoint_retention_keeps_newest(tmp_path) -> None:
    """Only the newest KEEP_STEP_CHECKPOINTS periodic checkpoints (and their JSON) survive."""
    from gridmarl import train as train_mod

    for i in range(8):
        (tmp_path / f"step_{i:012d}.pt").write_bytes(b"x")
        (tmp_path / f"step_{i:012d}.json").write_text("{}")
    (tmp_path / "best.pt").write_bytes(b"x")
    (tmp_path / "last.pt").write_bytes(b"x")
    keep = train_mod.KEEP_STEP_CHECKPOINTS
    train_mod.prune_checkpoints(tmp_path, "step_*.pt", keep)
    kept = sorted(p.name for p in tmp_path.glob("step_*.pt"))
    assert kept == [f"step_{i:012d}.pt" for i in range(8 - keep, 8)]
    assert len(list(tmp_path.glob("step_*.json"))) == keep
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()
