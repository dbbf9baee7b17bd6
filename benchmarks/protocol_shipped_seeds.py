"""Did a shipped policy see a test seed?  The traffic and routing policies in data/checkpoints
were trained before the seed streams (docs/protocol.md) existed, with the reset seeds
``(seed * 1_000_003 + updates * 1_009 + episodes) % (2**31 - 1)`` (MATPPO), the warm start's
``seed`` and the validator's ``scenario.seed + 100_003``; a traffic env's parallel episode
``b > 0`` drew demand ``SeedSequence([s, b]).generate_state(1)[0]``.  This script enumerates
every seed those runs could have drawn (a superset: every episode count up to ``--episodes``
per update) and intersects it with the test stream of each shipped scenario.

    python benchmarks/protocol_shipped_seeds.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gridmarl.config import load_scenario
from gridmarl.core.seeding import stream_seeds

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {
    "traffic_grid_6x6.yaml": ("traffic_grid_6x6_matppo.json", lambda sc: sc.demand.test_seeds),
    "routing_ibm.yaml": ("routing_ibm_matppo.json", lambda sc: sc.evaluation.test_episodes),
}


def old_training_seeds(seed: int, updates: int, episodes: int, num_envs: int) -> set[int]:
    """Every reset seed (and traffic per-env demand seed) the pre-stream code could draw."""
    base = {seed, seed + 100_003}  # warm start, validator
    for u in range(updates + 1):
        for e in range(episodes + 1):
            base.add((seed * 1_000_003 + u * 1_009 + e) % (2**31 - 1))
    out = set(base)
    for s in base:
        for b in range(1, num_envs):
            out.add(int(np.random.SeedSequence([int(s), b]).generate_state(1)[0]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=64, help="episodes per update to cover")
    args = ap.parse_args()
    for scenario, (sidecar, count) in SHIPPED.items():
        sc = load_scenario(ROOT / "scenarios" / scenario)
        meta = json.loads((ROOT / "data" / "checkpoints" / sidecar).read_text())
        seen = old_training_seeds(
            int(meta["seed"]), int(meta["updates"]), args.episodes, int(meta["config"]["num_envs"])
        )
        test = set(stream_seeds(sc.seed, "test", count(sc)))
        evaluate = set(range(sc.seed, sc.seed + 20))
        print(
            f"{scenario}: {len(seen):,} seeds the shipped policy could have drawn; "
            f"test seeds among them: {len(seen & test)} of {len(test)}; "
            f"evaluation seeds among them: {sorted(seen & evaluate)}"
        )


if __name__ == "__main__":
    main()
