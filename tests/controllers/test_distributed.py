"""Data-parallel MATPPO (``controllers/common/distributed.py``): two CPU processes (gloo) of
B envs each make the same update as one process on the 2·B envs' rollouts concatenated."""

from __future__ import annotations

import socket
import weakref
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from gridmarl.controllers.common.buffer import RolloutBuffer
from gridmarl.controllers.matppo import MATPPO, MATPPOConfig
from gridmarl.core.types import Observation

from .toy_env import ToyEnv

B, T, SEED = 4, 4, 3


def config(num_envs: int, value_target: str) -> MATPPOConfig:
    # one minibatch per epoch: each gradient step sees the whole (concatenated) batch
    return MATPPOConfig(
        num_envs=num_envs, rollout_steps=T, epochs=3, minibatches=1, value_target=value_target
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_main(rank: int, world: int, port: int, folder: str, value_target: str) -> None:
    """One data-parallel rank: collect B envs, save the rollout, update, save the weights."""
    import os

    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    from gridmarl.controllers.common.distributed import DataParallel

    dp = DataParallel.from_env(torch.device("cpu"))
    env = ToyEnv(n_agents=3, num_envs=B, episode_len=3)
    learner = MATPPO(env.spec, config(B, value_target), seed=SEED)
    learner.set_data_parallel(dp)
    batch = learner.collect(env, budget=10_000)
    buf = batch.buffer
    rollout = {k: v.clone() for k, v in vars(buf).items() if isinstance(v, torch.Tensor)}
    last = batch.last_obs
    torch.save({"rollout": rollout, "last": vars(last)}, Path(folder) / f"rollout{rank}.pt")
    learner.update(batch)
    state = {"params": [p.detach() for p in learner.params], "steps": learner.agent_steps}
    state["norm"] = learner.actor.local_norm.mean.clone()
    # the wrapper's gloo group must be gone before the interpreter shuts down (DataParallel.close)
    ddp = weakref.ref(learner._loss)
    del learner, batch
    dp.close()
    state["ddp_freed"] = ddp() is None
    torch.save(state, Path(folder) / f"after{rank}.pt")


@pytest.mark.slow
@pytest.mark.parametrize("value_target", ["agent", "team"])
def test_two_ranks_equal_one_process_on_concatenated_batch(
    tmp_path: Path, value_target: str
) -> None:
    mp.spawn(rank_main, args=(2, free_port(), str(tmp_path), value_target), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"after{r}.pt", weights_only=True) for r in range(2)]
    rolls = [torch.load(tmp_path / f"rollout{r}.pt", weights_only=True) for r in range(2)]
    # the ranks saw different episodes and sampled different actions ...
    assert not torch.equal(rolls[0]["rollout"]["discrete"], rolls[1]["rollout"]["discrete"])
    # ... yet hold identical weights after the update
    for a, b in zip(ranks[0]["params"], ranks[1]["params"], strict=True):
        assert torch.equal(a, b)
    assert ranks[0]["steps"] == 2 * T * B * 3  # every rank's agent-steps are counted
    assert all(r["ddp_freed"] for r in ranks)  # close() released DDP and its group

    # one process, the same initial weights, the 2·B envs' rollouts side by side
    env = ToyEnv(n_agents=3, num_envs=2 * B, episode_len=3)
    one = MATPPO(env.spec, config(2 * B, value_target), seed=SEED)
    v = 1 if value_target == "team" else 3
    buf = RolloutBuffer(env.spec, T, 2 * B, v, torch.device("cpu"))
    for k in rolls[0]["rollout"]:
        getattr(buf, k).copy_(torch.cat([r["rollout"][k] for r in rolls], dim=1))
    buf.ptr = T
    last = Observation(
        **{
            k: (torch.cat([r["last"][k] for r in rolls]) if r0 is not None else None)
            for k, r0 in rolls[0]["last"].items()
        }
    )
    one.ppo_update(buf, last)
    one.update_normalizers(buf)
    for a, b in zip(ranks[0]["params"], one.params, strict=True):
        torch.testing.assert_close(a, b.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ranks[0]["norm"], one.actor.local_norm.mean)
    # and it moved: the check is not trivially met by unchanged weights
    fresh = MATPPO(env.spec, config(2 * B, value_target), seed=SEED)
    pairs = zip(ranks[0]["params"], fresh.params, strict=True)
    moved = sum(float((a - b.detach()).abs().sum()) for a, b in pairs)
    assert moved > 1e-3


@pytest.mark.slow
def test_train_nproc_2_then_resume(tmp_path: Path) -> None:
    """``gridmarl train --nproc 2`` (torchrun, gloo): rank 0 alone writes the run folder; a
    ``--resume`` with two processes continues from ``last.pt``."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    args = [
        "--device",
        "cpu",
        "--validate-every",
        "2",
        "--nproc",
        "2",
        "--set",
        "traffic.profile=[{steps: 20, rate_pkt_per_step: 1.0}]",
        "--set",
        "evaluation.episodes=1",
        "--set",
        "train.num_envs=2",
        "--set",
        "train.options={rollout_steps: 10, value_target: team}",
    ]
    base = [sys.executable, "-m", "gridmarl", "train", "scenarios/routing_ibm.yaml"]

    def train(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*base, *args, *extra], cwd=root, capture_output=True, text=True, timeout=600
        )

    r = train("--out", str(tmp_path), "--steps", "1400")
    assert r.returncode == 0, r.stderr[-8000:]  # the ranks' own messages precede torchrun's
    (run,) = (tmp_path / "routing_ibm").iterdir()
    assert r.stdout.count("trained ") == 1  # one process reports
    man = json.loads((run / "train_manifest.json").read_text())
    # 2 processes x 2 envs x 10 steps x 18 routers per update
    assert man["processes"] == 2 and man["agent_steps"] == 2 * 720 and man["updates"] == 2
    assert len(list((run / "tb").glob("events.*"))) == 1

    r = train("--resume", str(run), "--steps", "2800")
    assert r.returncode == 0, r.stderr[-8000:]  # the ranks' own messages precede torchrun's
    assert "resuming at 1,440" in r.stdout
    man = json.loads((run / "train_manifest.json").read_text())
    assert man["updates"] == 4 and man["agent_steps"] == 4 * 720
    rows = (run / "validation.csv").read_text().strip().splitlines()[1:]
    assert [int(x.split(",")[1]) for x in rows] == [2, 4]
    assert list((tmp_path / "routing_ibm").iterdir()) == [run]
