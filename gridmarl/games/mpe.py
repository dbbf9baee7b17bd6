"""mpe2's ``simple_spread_v3`` (a PettingZoo parallel env) behind the core contract (``B = 1``).

The reference :class:`gridmarl.games.spread.SpreadEnv` is checked against
(``tests/games/test_spread.py``).  Needs the ``games`` extra (``pip install -e .[games]``).
Observation, state, reward and ``info`` as ``SpreadEnv`` (see its module docstring); the
transfer setting's smaller agents are set on mpe2's world after construction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.errors import ScenarioError
from gridmarl.core.types import Action, Observation, Step
from gridmarl.games.spread import AGENT_RADIUS, NEAREST, spread_spec


class MpeSpreadEnv(MultiAgentEnv):
    """One mpe2 ``simple_spread_v3`` game (discrete actions, 3 nearest agents / landmarks).

    Args:
        n_agents: N (= landmarks).
        agent_radius: agent size [arena units].
        episode_len: ``max_cycles``.
    """

    def __init__(
        self, n_agents: int = 3, agent_radius: float = AGENT_RADIUS, episode_len: int = 25
    ) -> None:
        try:
            from mpe2 import simple_spread_v3
        except ImportError:
            raise ScenarioError(
                "the mpe2 package is missing; install the games extra: pip install -e .[games]"
            ) from None
        self.pz = simple_spread_v3.parallel_env(
            N=n_agents,
            max_cycles=episode_len,
            continuous_actions=False,
            num_agent_neighbors=NEAREST,
            num_landmark_neighbors=NEAREST,
        )
        self.spec = spread_spec(n_agents)
        self.num_envs, self.episode_len = 1, episode_len
        self.device = torch.device("cpu")
        self.radius = agent_radius

    @property
    def world(self):  # noqa: ANN201 - mpe2's World
        """mpe2's world (positions, velocities)."""
        return self.pz.unwrapped.world

    def _obs(self, raw: dict[str, np.ndarray]) -> Observation:
        names = self.pz.possible_agents
        local = torch.tensor(np.stack([raw[a] for a in names]), dtype=torch.float64)
        pos = np.stack([a.state.p_pos for a in self.world.agents])
        d = np.linalg.norm(pos[None, :, :] - pos[:, None, :], axis=-1)
        np.fill_diagonal(d, np.inf)
        idx = np.full((len(names), NEAREST), -1)
        k = min(NEAREST, len(names) - 1)
        idx[:, :k] = np.argsort(d, axis=1)[:, :k]
        state = torch.cat([local, torch.tensor(idx, dtype=torch.float64)], -1)
        n = len(names)
        return Observation(
            local=local.float().unsqueeze(0),
            forecast=torch.zeros(1, n, 0, 0),
            state=state.float().unsqueeze(0),
            global_=torch.zeros(1, 0),
            action_mask=torch.ones(1, n, 5, dtype=torch.bool),
        )

    def reset(self, seed: int | None = None) -> Observation:
        raw, _ = self.pz.reset(seed=seed)
        for agent in self.world.agents:
            agent.size = self.radius
        return self._obs(raw)

    def step(self, action: Action) -> Step:
        names = self.pz.possible_agents
        acts = {a: int(action.discrete[0, i]) for i, a in enumerate(names)}
        raw, rew, term, trunc, _ = self.pz.step(acts)
        reward = torch.tensor([[rew[a] for a in names]], dtype=torch.float32)
        pos = np.stack([a.state.p_pos for a in self.world.agents])
        land = np.stack([lm.state.p_pos for lm in self.world.landmarks])
        min_d = np.linalg.norm(land[:, None] - pos[None], axis=-1).min(1)
        dd = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
        np.fill_diagonal(dd, np.inf)
        coll = float((dd < 2 * self.radius).sum())
        n = len(names)
        return Step(
            obs=self._obs(raw),
            reward=reward,
            team_reward=reward.sum(1),
            terminated=torch.tensor([any(term.values())]),
            truncated=torch.tensor([any(trunc.values())]),
            info={
                "penalty": torch.tensor([(min_d.sum() + coll) / n], dtype=torch.float64),
                "occupied": torch.tensor([(min_d < 0.1).mean()], dtype=torch.float64),
            },
        )

    def records(self) -> pd.DataFrame:
        return pd.DataFrame({"step": [], "agent": []})

    def close(self) -> None:
        self.pz.close()
