"""Every off-policy learner splits its training time the same way (``benchmarks/offpolicy_speed.py``
reads these keys): env, choosing actions, replay, loss forward, backward; each part is
non-negative and together they fit in the round's wall time."""

from __future__ import annotations

import time

import pytest
import torch

from gridmarl import domains
from gridmarl.controllers import registry

from .test_train_domains import tiny_routing

PARTS = (
    "time/env_s",
    "time/policy_forward_s",
    "time/replay_s",
    "time/update_forward_s",
    "time/update_backward_s",
)
SMALL = {
    "dqn": {"hidden": 8, "learning_starts": 10},
    "dgn": {"hidden": 8, "heads": 1, "learning_starts": 10},
    "ltos": {"hidden": 8, "heads": 1, "learning_starts": 10},
    "hama": {"hidden": 8, "batch_size": 8, "buffer_size": 400, "update_every": 4},
    "maddpg": {"hidden": 8, "batch_size": 8, "buffer_size": 400, "update_every": 4},
    "hmf": {"hidden": 8, "batch_size": 4, "learning_starts": 10},
    "mfq": {"hidden": 8, "batch_size": 4, "learning_starts": 10},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_learning_round_reports_each_part(name: str) -> None:
    scenario = tiny_routing()
    cls = registry.get(name).load_class()
    cfg = cls.config_class.from_options({**SMALL[name], "num_envs": 2})
    env = domains.get("routing").train_env_factory(scenario, torch.device("cpu"), 0)(2)
    learner = cls(env.spec, cfg, device="cpu", seed=0)
    try:
        m: dict[str, float] = {}
        for _ in range(200):
            if any(k.startswith("loss/") for k in m):
                break
            t0 = time.perf_counter()
            m = learner.update(learner.collect(env, 10**6))
            wall = time.perf_counter() - t0
    finally:
        env.close()
    assert any(k.startswith("loss/") for k in m), f"{name} never learned in 200 rounds"
    for key in PARTS:
        assert key in m, f"{name} does not report {key}"
        assert m[key] >= 0.0
    assert m["time/update_forward_s"] > 0.0 and m["time/update_backward_s"] > 0.0
    assert sum(m[k] for k in PARTS) <= wall + 1e-3
