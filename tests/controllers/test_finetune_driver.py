"""``gridmarl finetune`` on a tiny energy scenario: run folder, checkpoints that simulate
loads, exact resume, refusals."""

from __future__ import annotations

import json

import pytest
import torch
from rich.console import Console

from gridmarl.config import ScenarioError, load_scenario
from gridmarl.controllers.registry import load_policy

from .test_train_driver import PER_UPDATE, SCENARIO, TINY

ES = [*TINY, "train.es={pairs: 2, episodes: 2, sigma: 0.02, lr: 0.01}"]
QUIET = Console(quiet=True)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from gridmarl.train import train

    torch.set_num_threads(1)
    run = train(
        load_scenario(SCENARIO, TINY),
        device="cpu",
        steps=PER_UPDATE,
        out=tmp_path_factory.mktemp("runs"),
        console=QUIET,
    )
    return run / "checkpoints" / "last.pt"


def _finetune(source, out, generations, **kw):
    from gridmarl.finetune import finetune

    return finetune(
        load_scenario(SCENARIO, ES),
        checkpoint=source,
        generations=generations,
        out=out,
        validate_every=1,
        console=QUIET,
        **kw,
    )


def _actor(path):
    return torch.load(path, weights_only=True)["actor"]


def test_run_folder_checkpoints_and_policy(source, tmp_path):
    run = _finetune(source, tmp_path, generations=2)
    ck = run / "checkpoints"
    for name in ("best", "last", "gen_000000", "gen_000001", "gen_000002"):
        assert (ck / f"{name}.pt").exists() and (ck / f"{name}.json").exists()
    assert (ck / "last.es.pt").exists()
    rows = (run / "validation.csv").read_text().splitlines()
    assert rows[0].startswith("generation,es_agent_steps") and len(rows) == 4  # gens 0, 1, 2
    side = json.loads((ck / "last.json").read_text())
    # 5 copies x 2 episodes x 24 steps x 3 prosumers per generation
    assert side["finetune"]["generations"] == 2
    assert side["finetune"]["es_agent_steps"] == 2 * 5 * 2 * 24 * 3
    assert side["finetune"]["source"] == str(source)
    man = json.loads((run / "finetune_manifest.json").read_text())
    assert man["generations_done"] == 2 and man["weights_moved"] > 0
    # ES moved the weights; gen 0 is the source itself
    src, last, gen0 = (_actor(p) for p in (source, ck / "last.pt", ck / "gen_000000.pt"))
    assert not all(torch.equal(src[k], last[k]) for k in src)
    assert all(torch.equal(src[k], gen0[k]) for k in src)
    from gridmarl.energy.data import build_community
    from gridmarl.energy.env import CommunityEnv

    sc = load_scenario(SCENARIO, TINY)
    env = CommunityEnv(build_community(sc, "validate"), num_envs=1, dtype=torch.float64)
    act = load_policy("matppo", ck / "best.pt", env=env).act(env.reset(seed=0))
    assert act.continuous.shape == (1, 3, 2)


def test_resume_is_exact(source, tmp_path):
    """Two generations, then resumed to three: the same weights as three in one go."""
    from gridmarl.finetune import finetune

    whole = _finetune(source, tmp_path / "a", generations=3)
    part = _finetune(source, tmp_path / "b", generations=2)
    finetune(
        load_scenario(SCENARIO, ES), generations=3, resume=part, validate_every=1, console=QUIET
    )
    a, b = _actor(whole / "checkpoints" / "last.pt"), _actor(part / "checkpoints" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (part / "validation.csv").read_text().count("\n") == 5  # gens 0, 1, 2, 3 + header
    other = load_scenario(SCENARIO, [*ES, "community.battery.soc_init=0.9"])
    with pytest.raises(ScenarioError, match="different scenario"):
        finetune(other, resume=part, console=QUIET)
    days = load_scenario(SCENARIO, [*ES, "train.episode_days=2"])
    with pytest.raises(ScenarioError, match="train.episode_days"):
        finetune(days, resume=part, console=QUIET)
    es = load_scenario(SCENARIO, [*ES, "train.es.pairs=3"])
    with pytest.raises(ScenarioError, match="other weights or hyper-parameters"):
        finetune(es, resume=part, console=QUIET)


def test_refusals(source, tmp_path):
    from gridmarl.finetune import finetune

    sc = load_scenario(SCENARIO, ES)
    with pytest.raises(ScenarioError, match="needs --checkpoint"):
        finetune(sc, console=QUIET, out=tmp_path)
    with pytest.raises(ScenarioError, match="no such file"):
        finetune(sc, checkpoint=tmp_path / "nope.pt", console=QUIET, out=tmp_path)
    with pytest.raises(ScenarioError, match="not a gridmarl finetune run folder"):
        finetune(sc, resume=source.parents[1], console=QUIET)  # a train run folder
    bigger = load_scenario(SCENARIO, [*ES, "community.ev.rate_feature=true"])
    with pytest.raises(ScenarioError, match="local feature"):
        finetune(bigger, checkpoint=source, console=QUIET, out=tmp_path)
    routing = load_scenario(SCENARIO.parent / "routing_ibm.yaml")  # no reset_copies
    with pytest.raises(ScenarioError, match="runs copies of its episodes"):
        finetune(routing, checkpoint=source, console=QUIET, out=tmp_path)
    assert not any(tmp_path.rglob("finetune_manifest.json"))


def test_generations_alternate_over_train_variants(source, tmp_path):
    from gridmarl.finetune import finetune

    sc = load_scenario(SCENARIO, [*ES, "train.variants=[{community.prosumers: 5}]"])
    run = finetune(
        sc, checkpoint=source, generations=3, out=tmp_path, validate_every=1, console=QUIET
    )
    rows = [r.split(",") for r in (run / "validation.csv").read_text().splitlines()]
    head = rows[0]
    assert "community.prosumers=5/share_of_optimal_savings" in head and "mixed_score" in head
    steps = [int(r[head.index("es_agent_steps")]) for r in rows[1:]]
    # (2·2 + 1) copies × 2 episodes × 24 steps × 3 prosumers, then × 5 prosumers, then × 3
    one = 5 * 2 * 24
    assert steps == [0, one * 3, one * 3 + one * 5, one * 3 + one * 5 + one * 3]
    side = json.loads((run / "checkpoints" / "last.json").read_text())
    assert "community.prosumers=5" in side["validation_variants"]
