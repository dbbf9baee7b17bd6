"""The Bar game (El Farol; Arthur 1994) as the HMF seed defines it, on the core env contract.

Seed (``shared/seeds/003_*``, "The Bar Game"): ``N = 100`` agents decide each night whether
to attend a bar; the only observation is the number of agents who attended the night before;
attending pays ``+1`` when the night's attendance is at most the capacity ``C = 60`` and ``−1``
when it exceeds it.  Staying home pays 0 (the seed names no payoff for it).  The cooperative
optimum is an attendance of exactly ``C``: a population attendance fraction ``C / N = 0.6``,
the value the seed reports HMF reaching.

| item | value |
|---|---|
| agents | ``n_agents`` (100) |
| actions | discrete, 2: 0 = stay home, 1 = attend (``n_continuous = 0``) |
| local obs | ``[N, 1 + I]``: last night's attendance / N [-], then the identity (below) |
| identity | ``index``: k / (N − 1), I = 1; ``onehot``: e_k, I = N; ``none``: I = 0 |
| forecast | none (``forecast_len = 0``, ``forecast_dim = 1``) |
| state | the local obs |
| global ``[1]`` | last night's attendance / N [-] |
| reward ``[N]`` | attend: +1 if attendance ≤ C else −1; stay: 0 |
| team reward | the sum of the rewards |
| episode | ``nights`` steps (10), ending ``truncated`` |
| first night | its "previous attendance" is drawn uniformly in [0, 1] per env (reset seed) |
| groups | ``n_groups`` contiguous blocks of agents (the game has no prior grouping) |
| info | ``attendance`` ``[B]`` the night's attendance fraction [-] |

``identity`` (``index`` by default) adds each agent's identity to its observation.  The
seed's Algorithm 1 gives every agent its own Q_LOC parameters θ_k; gridmarl's learners share
one network, and with identical observations a shared greedy network sends every agent the
same way (attendance 0 or 1).  The identity is what a per-agent network has implicitly:
``onehot`` gives the shared network's first layer a weight column of its own per agent (the
closest to per-agent parameters), ``index`` one scalar the network must cut into attendees and
stayers.  Every method compared on this game sees the same observation.
"""

from __future__ import annotations

import pandas as pd
import torch

from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.types import Action, AgentSpec, Observation, Step

#: the allowed ``identity`` values of :class:`BarEnv`
IDENTITIES = ("index", "onehot", "none")


class BarEnv(MultiAgentEnv):
    """``B`` parallel Bar games (module docstring for the spaces and the payoff).

    Args:
        num_envs: parallel games B.
        n_agents: population N [agents].
        capacity: C, the most attendees for which attending pays +1 [agents].
        nights: episode length [steps].
        n_groups: contiguous groups in ``AgentSpec.groups``.
        identity: the agent identity in the observation: ``index`` (k / (N − 1)),
            ``onehot`` (e_k, N features) or ``none``.
        device: where the tensors live.
    """

    def __init__(
        self,
        num_envs: int = 1,
        n_agents: int = 100,
        capacity: int = 60,
        nights: int = 10,
        n_groups: int = 2,
        identity: str = "index",
        device: torch.device | str = "cpu",
    ) -> None:
        if n_agents < 1 or not 0 <= capacity <= n_agents:
            raise ValueError(f"need 0 <= capacity <= n_agents, got {capacity}, {n_agents}")
        if nights < 1 or num_envs < 1 or not 1 <= n_groups <= n_agents:
            raise ValueError("nights, num_envs >= 1 and 1 <= n_groups <= n_agents are required")
        self.num_envs, self.n, self.capacity = int(num_envs), int(n_agents), int(capacity)
        self.episode_len = int(nights)
        self.device = torch.device(device)
        if identity not in IDENTITIES:
            raise ValueError(f"identity must be one of {', '.join(IDENTITIES)}, got {identity!r}")
        self.identity = identity
        id_dim = {"index": 1, "onehot": self.n, "none": 0}[identity]
        local_dim = 1 + id_dim
        groups = torch.arange(self.n) * n_groups // self.n
        self.spec = AgentSpec(
            n_agents=self.n,
            local_dim=local_dim,
            forecast_len=0,
            forecast_dim=1,
            state_dim=local_dim,
            global_dim=1,
            n_discrete=2,
            n_continuous=0,
            groups=groups,
            neighbors=torch.full((self.n, 1), -1, dtype=torch.long),
            local_features=("attendance_prev",)
            + tuple(f"agent_id_{j}" for j in range(id_dim) if identity == "onehot")
            + (("agent_index",) if identity == "index" else ()),
        )
        self.gen = torch.Generator().manual_seed(0)
        self.t = 0
        self.prev = torch.zeros(self.num_envs, device=self.device)
        self._log: list[tuple[int, torch.Tensor, float]] = []

    def _obs(self) -> Observation:
        b, n = self.num_envs, self.n
        cols = [self.prev[:, None].expand(b, n)]
        if self.identity == "index":
            cols.append(torch.linspace(0.0, 1.0, n, device=self.device).expand(b, n))
        local = torch.stack(cols, -1)
        if self.identity == "onehot":
            eye = torch.eye(n, device=self.device).expand(b, n, n)
            local = torch.cat([local, eye], -1)
        return Observation(
            local=local,
            forecast=torch.zeros(b, n, 0, 1, device=self.device),
            state=local.clone(),
            global_=self.prev[:, None].clone(),
            action_mask=torch.ones(b, n, 2, dtype=torch.bool, device=self.device),
        )

    def reset(self, seed: int | None = None) -> Observation:
        if seed is not None:
            self.gen.manual_seed(int(seed))
        self.t = 0
        self.prev = torch.rand(self.num_envs, generator=self.gen).to(self.device)
        self._log = []
        return self._obs()

    def step(self, action: Action) -> Step:
        go = action.discrete.to(self.device) == 1  # [B, N]
        count = go.sum(1)  # [B] attendees tonight
        pay = torch.where(count <= self.capacity, 1.0, -1.0)  # [B]
        reward = go.float() * pay[:, None]  # stay home: 0
        self.prev = count.float() / self.n
        self._log.append((self.t, go[0].cpu(), float(self.prev[0])))
        self.t += 1
        truncated = torch.full((self.num_envs,), self.t >= self.episode_len, device=self.device)
        return Step(
            obs=self._obs(),
            reward=reward,
            team_reward=reward.sum(1),
            terminated=torch.zeros_like(truncated),
            truncated=truncated,
            info={"attendance": self.prev.clone()},
        )

    def records(self) -> pd.DataFrame:
        """Per night and agent of env 0: ``attend`` (0/1) and the night's ``attendance_frac``."""
        rows = [
            {"step": t, "agent": k, "attend": int(go[k]), "attendance_frac": frac}
            for t, go, frac in self._log
            for k in range(self.n)
        ]
        return pd.DataFrame(rows, columns=["step", "agent", "attend", "attendance_frac"])
