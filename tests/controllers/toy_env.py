"""A tiny batched env with a known best action, for controller tests.

Each step every agent draws a target class ``k* ∈ {0, 1}``; it sees ``local = [onehot(k*),
agent_id_feature]`` and a forecast of the next ``H`` targets (``f = 1``).  Choice 2 of the
discrete head is always masked.  Best action: discrete ``k*``, continuous ``+0.6`` for class 0 and
``−0.6`` for class 1.  Per-agent reward = 1[k = k*] − (clamp(u) − u*)² ∈ [−4, 1]; the team
reward is the sum.  Episodes last ``episode_len`` steps and end ``truncated`` (a time limit);
like ``CommunityEnv`` the caller resets after ``done``.
"""

from __future__ import annotations

import pandas as pd
import torch

from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.types import Action, AgentSpec, Observation, Step

TARGET_U = (0.6, -0.6)  # best continuous action for class 0 / class 1


class ToyEnv(MultiAgentEnv):
    """Args: n_agents N, num_envs B, episode_len [steps], forecast_len H, device, n_continuous."""

    def __init__(
        self,
        n_agents: int = 2,
        num_envs: int = 8,
        episode_len: int = 4,
        forecast_len: int = 2,
        device: str = "cpu",
        n_continuous: int = 1,
        n_discrete: int = 3,
    ) -> None:
        self.num_envs, self.device, self.episode_len = num_envs, torch.device(device), episode_len
        self.n, self.h = n_agents, forecast_len
        self.spec = AgentSpec(
            n_agents=n_agents,
            local_dim=3,
            forecast_len=forecast_len,
            forecast_dim=1,
            state_dim=3,
            global_dim=2,
            n_discrete=n_discrete,
            n_continuous=n_continuous,
            groups=torch.zeros(n_agents, dtype=torch.long),
            neighbors=torch.full((n_agents, 1), -1, dtype=torch.long),
        )
        self.gen = torch.Generator().manual_seed(0)
        self.t = 0
        self.targets = torch.zeros(
            num_envs, n_agents, episode_len + forecast_len + 1, dtype=torch.long
        )

    def _obs(self) -> Observation:
        k = self.targets[:, :, self.t]
        onehot = torch.nn.functional.one_hot(k, 2).float()
        ident = torch.linspace(0, 1, self.n).expand(self.num_envs, self.n).unsqueeze(-1)
        local = torch.cat([onehot, ident], -1)
        fc = self.targets[:, :, self.t + 1 : self.t + 1 + self.h].float().unsqueeze(-1)
        mask = None
        if self.spec.n_discrete:
            mask = torch.ones(self.num_envs, self.n, self.spec.n_discrete, dtype=torch.bool)
            mask[..., 2:] = False
        return Observation(
            local=local,
            forecast=fc,
            state=local.clone(),
            global_=local[..., :2].mean(1),
            action_mask=mask,
        )

    def reset(self, seed: int | None = None) -> Observation:
        return self.reset_copies(seed, 1)

    def reset_copies(self, seed: int | None, copies: int) -> Observation:
        """Env ``b`` draws episode ``b mod (B / copies)``'s targets."""
        if seed is not None:
            self.gen.manual_seed(seed)
        self.t = 0
        e = self.num_envs // copies
        drawn = torch.randint(0, 2, (e, *self.targets.shape[1:]), generator=self.gen)
        self.targets = drawn.repeat(copies, 1, 1)
        return self._obs()

    def step(self, action: Action) -> Step:
        k = self.targets[:, :, self.t]
        u_star = torch.where(k == 0, TARGET_U[0], TARGET_U[1])
        r = torch.zeros(self.num_envs, self.n)
        if self.spec.n_discrete:
            r = r + (action.discrete == k).float()
        if self.spec.n_continuous:
            r = r - (action.continuous.clamp(-1, 1) - u_star.unsqueeze(-1)).pow(2).sum(-1)
        self.t += 1
        truncated = torch.full((self.num_envs,), self.t >= self.episode_len)
        return Step(
            obs=self._obs(),
            reward=r,
            team_reward=r.sum(1),
            terminated=torch.zeros_like(truncated),
            truncated=truncated,
            info={},
        )

    def records(self) -> pd.DataFrame:
        return pd.DataFrame({"step": [], "agent": []})


class RaggedEnv(MultiAgentEnv):
    """Envs whose episodes last different numbers of steps and end in different ways.

    Env ``b``'s episodes last ``lengths[b]`` steps and end ``terminated`` where ``terminal[b]``,
    else ``truncated``.  Every agent gets reward 1 per step (team reward ``N``).  ``local`` is
    ``[t, episodes begun, seed of the current episode]`` of the agent's env (``t`` = steps
    taken in the current episode), so a test can see which envs were reset and with which
    seed.  Implements the partial reset ``reset_envs`` and logs each call in ``resets`` as
    ``(mask [B] bool, seed)``; stepping an env whose episode ended raises ``RuntimeError``.
    """

    def __init__(
        self, lengths: list[int], terminal: list[bool], n_agents: int = 2, device: str = "cpu"
    ) -> None:
        if len(lengths) != len(terminal):
            raise ValueError("one length and one terminal flag per env")
        self.num_envs, self.device = len(lengths), torch.device(device)
        self.episode_len = max(lengths)
        self.n = n_agents
        self.lengths = torch.tensor(lengths)
        self.terminal = torch.tensor(terminal)
        self.spec = AgentSpec(
            n_agents=n_agents,
            local_dim=3,
            forecast_len=0,
            forecast_dim=1,
            state_dim=3,
            global_dim=1,
            n_discrete=2,
            n_continuous=1,
            groups=torch.zeros(n_agents, dtype=torch.long),
            neighbors=torch.full((n_agents, 1), -1, dtype=torch.long),
        )
        self.t = torch.zeros(self.num_envs, dtype=torch.long)
        self.episodes = torch.zeros(self.num_envs, dtype=torch.long)
        self.seeds = torch.full((self.num_envs,), -1, dtype=torch.long)
        self.resets: list[tuple[torch.Tensor, int | None]] = []

    def _obs(self) -> Observation:
        per_env = torch.stack([self.t, self.episodes, self.seeds], -1).float()  # [B, 3]
        local = per_env[:, None, :].expand(self.num_envs, self.n, 3).clone()
        return Observation(
            local=local,
            forecast=torch.zeros(self.num_envs, self.n, 0, 1),
            state=local.clone(),
            global_=self.t[:, None].float(),
            action_mask=torch.ones(self.num_envs, self.n, 2, dtype=torch.bool),
        )

    def reset(self, seed: int | None = None) -> Observation:
        return self.reset_envs(torch.ones(self.num_envs, dtype=torch.bool), seed)

    def reset_envs(self, mask: torch.Tensor, seed: int | None = None) -> Observation:
        self.resets.append((mask.clone(), seed))
        self.t[mask] = 0
        self.episodes[mask] += 1
        self.seeds[mask] = -1 if seed is None else seed
        return self._obs()

    def step(self, action: Action) -> Step:
        if bool((self.t >= self.lengths).any()):
            raise RuntimeError("an env's episode ended: call reset_envs first")
        self.t += 1
        end = self.t >= self.lengths
        r = torch.ones(self.num_envs, self.n)
        return Step(
            obs=self._obs(),
            reward=r,
            team_reward=r.sum(1),
            terminated=end & self.terminal,
            truncated=end & ~self.terminal,
        )

    def records(self) -> pd.DataFrame:
        return pd.DataFrame({"step": [], "agent": []})
