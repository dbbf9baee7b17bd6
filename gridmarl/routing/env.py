"""Batched packet-routing environment: ``B`` networks x ``N`` routers, pure tensor code.

One agent per router.  Each step, every router with a non-empty queue forwards its
head-of-line packet to the neighbour its agent chose.  The packet then propagates over the
link for ``delay_steps`` [steps] and joins the neighbour's FIFO queue, or is delivered if the
neighbour is its destination.

Spaces (per agent, ``K`` = largest router degree, ``N`` routers):

======================  ======================================================================
``local`` [local_dim]   ``[q, onehot(dst_head) (N), q_nbr (K), load_out (K)]`` where ``q`` =
                        own queue [pkt]; ``onehot(dst_head)`` = destination of the head-of-line
                        packet (all zeros when the queue is empty); ``q_nbr[k]`` = queue of
                        neighbour slot ``k`` [pkt]; ``load_out[k]`` = packets in flight on the
                        link to neighbour slot ``k`` [pkt]; padded slots are 0.
                        ``local_dim = 1 + N + 2K``.  Raw counts, not normalised.
``state``               same as ``local``
``path_delay`` [K]       only with ``path_features=True``, appended to ``local``: for neighbour
                        slot ``k``, link delay + shortest-path delay (by link delay) from that
                        neighbour to the head-of-line packet's destination [steps]; 0 for
                        padded slots and empty queues.  Static topology knowledge, local to the
                        router (what a distance-vector routing table holds).
                        ``local_dim = 1 + N + 3K`` then.
``global_`` [3]         packets queued [pkt], packets in flight [pkt], current arrival rate
                        [pkt/step]
``action``              ``Discrete(K)``: neighbour slot (slot ``k`` = ``k``-th neighbour in
                        ascending router id, ``Topology.neighbors``)
``action_mask`` [K]     True for the router's real neighbours
======================  ======================================================================

An invalid action (a padded slot or outside ``[0, K)``) falls back to slot ``a mod degree``
and is counted in ``info["invalid_actions"]``.  Reward of router ``r`` = −(its queue after the
step) [pkt]; team reward = −(all queued packets) [pkt].  With ``reward="queue_and_flight"`` the
packets in flight on the router's outgoing links count too, so the team reward is −(all packets
in the network) [pkt] and its sum over an episode is −(total delay of all packets) [steps].

Timing (one step, clock ``t`` -> ``t + 1``; the reference simulator implements the same):

1. Forward: each router's head-of-line packet leaves on the chosen link with
   ``remaining = delay`` [steps].  A packet sent to a router it has visited before is a *loop*
   (counted once per packet).
2. Propagate: every packet in flight loses one step; those at 0 arrive: at their destination
   they are delivered (delay = ``t + 1 − born`` [steps]); elsewhere they join the queue.
3. New packets of time ``t + 1`` (Poisson, ``rate[t + 1]`` [pkt/step] over the whole network)
   appear at uniformly random routers for uniformly random other destinations.
4. Joining order (FIFO): packets from links, by source router id, then new packets in draw
   order.  With ``buffer_pkt``, a packet joining a queue that already holds ``buffer_pkt``
   packets is dropped.

Packets live in a pool of slots per env (location, destination, birth step, FIFO stamp,
remaining delay, visited routers as a bit set); the pool doubles when it would overflow, so
queues are unbounded unless ``buffer_pkt`` is set.  The arrival schedule of the whole episode is
drawn at ``reset`` on the CPU from the seed, so CPU and GPU runs see the same packets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from gridmarl.core.controller import check_action
from gridmarl.core.env import MultiAgentEnv
from gridmarl.core.seeding import make_generator
from gridmarl.core.types import Action, AgentSpec, Observation, Step
from gridmarl.routing.topology import Topology

_INF = torch.iinfo(torch.int64).max
RECORD_COLUMNS = (
    "queue_pkt",
    "next_hop",
    "delivered_pkt",
    "new_pkt",
    "dropped_pkt",
    "in_flight_out_pkt",
    "reward",
)


@dataclass(frozen=True)
class Arrivals:
    """New packets of every step of an episode.

    Attributes:
        counts: ``[B, T]`` long, packets appearing at time ``t`` [pkt].
        src: ``[B, T, A]`` long, router of the ``j``-th new packet of time ``t``.
        dst: ``[B, T, A]`` long, its destination (never equal to ``src``).
    """

    counts: Tensor
    src: Tensor
    dst: Tensor


def sample_arrivals(
    rates: Tensor, n_routers: int, num_envs: int, generator: torch.Generator
) -> Arrivals:
    """Draw Poisson arrivals with uniform sources and destinations on the CPU.

    Args:
        rates: ``[T]`` mean new packets per step for the whole network [pkt/step].
        n_routers: ``N``.
        num_envs: ``B``.
        generator: a CPU generator (consumed in a fixed order).
    """
    t = rates.shape[0]
    counts = torch.poisson(
        rates.double().expand(num_envs, t).contiguous(), generator=generator
    ).long()
    a = max(int(counts.max()), 1)
    src = torch.randint(0, n_routers, (num_envs, t, a), generator=generator)
    # uniform over the other N - 1 routers
    dst = (src + torch.randint(1, n_routers, (num_envs, t, a), generator=generator)) % n_routers
    return Arrivals(counts=counts, src=src, dst=dst)


def head_destination(obs: Observation, n_routers: int) -> tuple[Tensor, Tensor]:
    """Decode the head-of-line packet's destination from ``obs.local``.

    Returns:
        ``dst`` ``[B, N]`` long (0 where the queue is empty) and ``has_head`` ``[B, N]`` bool.
    """
    onehot = obs.local[..., 1 : 1 + n_routers]
    has = onehot.sum(-1) > 0.5
    return onehot.argmax(-1), has


class RoutingEnv(MultiAgentEnv):
    """Hop-by-hop packet routing on a router network (module docstring: spaces and timing).

    Args:
        topology: the router network.
        rates: ``[T]`` arrival rate of each step [pkt/step]; ``T`` is the episode length.
        num_envs: parallel episodes ``B``.
        buffer_pkt: queue limit per router [pkt]; None = unbounded.
        device: torch device of the state.
        seed: seed of the first ``reset`` without a seed.
        pool_init: initial packet slots per env (doubles on demand).
        log_packets: keep a per-packet log of env 0 (``packet_log()``), for differential tests;
            it costs a host synchronisation per step.
        path_features: append the per-slot path delay to ``local`` and ``state`` (module
            docstring).
        reward: ``queue`` (default) or ``queue_and_flight`` (module docstring).
    """

    def __init__(
        self,
        topology: Topology,
        rates: Sequence[float] | np.ndarray | Tensor,
        num_envs: int = 1,
        buffer_pkt: int | None = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
        pool_init: int = 128,
        log_packets: bool = False,
        path_features: bool = False,
        reward: str = "queue",
    ) -> None:
        if reward not in ("queue", "queue_and_flight"):
            raise ValueError(f"reward: {reward!r}; allowed: queue, queue_and_flight")
        self.path_features = bool(path_features)
        self.reward_kind = reward
        self.topology = topology
        self.device = torch.device(device)
        self.num_envs = int(num_envs)
        self.rates = torch.as_tensor(np.asarray(rates, dtype=np.float64))
        if self.rates.dim() != 1 or self.rates.numel() == 0 or bool((self.rates < 0).any()):
            raise ValueError("rates must be a non-empty 1-D sequence of rates >= 0 [pkt/step]")
        self.episode_len = int(self.rates.numel())
        self.buffer_pkt = buffer_pkt
        self.seed = int(seed)
        self.pool_init = max(int(pool_init), 8)
        self.log_packets = log_packets
        n, k, dev = topology.n_routers, topology.max_degree, self.device
        self.n, self.k, self.n_links = n, k, topology.n_links
        nb = torch.as_tensor(topology.neighbors, dtype=torch.long)
        ol = torch.as_tensor(topology.out_links, dtype=torch.long)
        self.static_mask = (nb >= 0).to(dev)  # [N, K]
        self.degree = torch.as_tensor(topology.degree, dtype=torch.long, device=dev)  # [N]
        self.nbr_flat = nb.clamp(min=0).flatten().to(dev)  # [N*K]
        self.outl_flat = ol.clamp(min=0).flatten().to(dev)  # [N*K]
        self.nbr_pad = torch.where(nb >= 0, nb, n).flatten().to(dev)  # [N*K], pad -> N
        self.outl_pad = torch.where(ol >= 0, ol, self.n_links).flatten().to(dev)  # pad -> L
        self.link_src = (
            torch.cat([torch.as_tensor(topology.link_src), torch.zeros(1)]).long().to(dev)
        )  # [L+1], the dummy link L never carries a packet
        self.link_delay = torch.as_tensor(topology.delay_steps, dtype=torch.long, device=dev)
        self.router_ids = torch.arange(n, device=dev)
        self.words = (n + 63) // 64  # int64 words of the visited-router bit set
        dim = 1 + n + (3 if self.path_features else 2) * k
        if self.path_features:
            dist = _all_pairs_delay(topology)  # [N, N] steps
            ld = topology.delay_steps[ol.clamp(min=0).numpy()].astype(np.float64)  # [N, K]
            via = ld[:, :, None] + dist[nb.clamp(min=0).numpy()]  # [N, K, N(dst)]
            via = np.where((nb >= 0).numpy()[:, :, None], via, 0.0)
            self.via_delay = torch.as_tensor(via, dtype=torch.float32, device=dev)
        self.spec = AgentSpec(
            n_agents=n,
            local_dim=dim,
            forecast_len=0,
            forecast_dim=0,
            state_dim=dim,
            global_dim=3,
            n_discrete=k,
            n_continuous=0,
            groups=torch.zeros(n, dtype=torch.long),
            neighbors=nb,
            agent_names=tuple(f"router_{i}" for i in range(n)),
        )
        self._gen = make_generator(self.seed)
        self.t = 0
        self._started = False

    # -- episode ------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> Observation:
        """Draw the episode's arrivals and place the packets of time 0 (module docstring)."""
        if seed is not None:
            self.seed = int(seed)
            self._gen = make_generator(self.seed)
        arr = sample_arrivals(self.rates, self.n, self.num_envs, self._gen)
        self._host_cum_max = arr.counts.cumsum(1).max(0).values.tolist()  # [T] bound on pool use
        self.arr_counts = arr.counts.to(self.device)
        self.arr_src = arr.src.to(self.device)
        self.arr_dst = arr.dst.to(self.device)
        self.a_max = int(arr.src.shape[2])
        self.stamp_base = self.n + self.a_max  # stamp = time * stamp_base + order key
        b, dev = self.num_envs, self.device
        self._alloc(self.pool_init)
        z = torch.zeros(b, dtype=torch.long, device=dev)
        self.delivered, self.delay_sum, self.dropped = z.clone(), z.clone(), z.clone()
        self.loops, self.generated, self.invalid = z.clone(), z.clone(), z.clone()
        self.link_sent = torch.zeros(b, self.n_links + 1, dtype=torch.long, device=dev)
        self._rec = torch.zeros(self.episode_len, self.n, len(RECORD_COLUMNS), device=dev)
        self._log: list[tuple[np.ndarray, ...]] = []
        self._drop_log: list[np.ndarray] = []
        self.t = 0
        self._started = True
        placed = self._admit_new(0)
        if self.buffer_pkt is not None:
            self._apply_buffer(placed, 0)
        return self._observe()

    def _alloc(self, pool: int) -> None:
        """Fresh per-slot state with ``pool`` real slots plus one dummy slot (index ``pool``)."""
        b, dev = self.num_envs, self.device
        self.pool = pool
        shape = (b, pool + 1)
        self.active = torch.zeros(shape, dtype=torch.bool, device=dev)
        self.loc = torch.zeros(shape, dtype=torch.long, device=dev)
        self.dst = torch.zeros(shape, dtype=torch.long, device=dev)
        self.born = torch.zeros(shape, dtype=torch.long, device=dev)
        self.stamp = torch.zeros(shape, dtype=torch.long, device=dev)
        self.rem = torch.zeros(shape, dtype=torch.long, device=dev)
        self.link = torch.full(shape, self.n_links, dtype=torch.long, device=dev)
        self.looped = torch.zeros(shape, dtype=torch.bool, device=dev)
        self.pid = torch.zeros(shape, dtype=torch.long, device=dev)
        self.visited = torch.zeros(b, (pool + 1) * self.words, dtype=torch.long, device=dev)

    def _grow(self, pool: int) -> None:
        """Enlarge the pool to ``pool`` real slots, keeping every packet in its slot."""
        old = {
            k: getattr(self, k)
            for k in ("active", "loc", "dst", "born", "stamp", "rem", "link", "looped", "pid")
        }
        vis, p_old = self.visited, self.pool
        self._alloc(pool)
        for k, v in old.items():
            getattr(self, k)[:, :p_old] = v[:, :p_old]
        self.visited[:, : p_old * self.words] = vis[:, : p_old * self.words]

    def _admit_new(self, tau: int) -> Tensor:
        """Place the new packets of time ``tau`` in free slots; returns the placed mask."""
        if self._host_cum_max[tau] > self.pool:
            need = self.active.sum(1) + self.arr_counts[:, tau]
            top = int(need.max())
            if top > self.pool:
                pool = self.pool
                while pool < top:
                    pool *= 2
                self._grow(pool)
        p = self.pool
        free = ~self.active
        free[:, p] = False
        rank = free.long().cumsum(1) - 1
        place = free & (rank < self.arr_counts[:, tau : tau + 1])
        j = torch.where(place, rank, 0)
        s = self.arr_src[:, tau].gather(1, j)
        d = self.arr_dst[:, tau].gather(1, j)
        self.active |= place
        self.loc = torch.where(place, s, self.loc)
        self.dst = torch.where(place, d, self.dst)
        self.born = torch.where(place, tau, self.born)
        self.stamp = torch.where(place, tau * self.stamp_base + self.n + j, self.stamp)
        self.rem = torch.where(place, 0, self.rem)
        self.link = torch.where(place, self.n_links, self.link)
        self.looped &= ~place
        self.pid = torch.where(place, tau * self.a_max + j, self.pid)
        slots = torch.arange(p + 1, device=self.device)
        w = self.words
        vis = self.visited.view(self.num_envs, p + 1, w)
        vis.masked_fill_(place[..., None], 0)
        idx = torch.where(place, slots * w + s // 64, p * w)  # non-placed -> dummy slot
        bit = torch.bitwise_left_shift(torch.ones_like(s), s % 64)
        self.visited.scatter_(1, idx, self.visited.gather(1, idx) | bit)
        self.generated += place.sum(1)
        self._new_mask = place
        return place

    def _apply_buffer(self, joining: Tensor, tau: int) -> Tensor:
        """Drop joining packets beyond ``buffer_pkt`` per queue, in FIFO order; returns drops."""
        queued_stay = self.active & (self.rem == 0) & ~joining
        qstay = torch.zeros(self.num_envs, self.n, dtype=torch.long, device=self.device)
        qstay.scatter_add_(1, self.loc, queued_stay.long())
        base = self.stamp_base
        key = torch.where(joining, self.loc * base + (self.stamp - tau * base), _INF)
        skey, perm = torch.sort(key, dim=1)
        sloc = torch.where(skey < _INF, skey // base, -1)
        pos = torch.arange(key.shape[1], device=self.device).expand_as(key)
        start = torch.ones_like(joining)
        start[:, 1:] = sloc[:, 1:] != sloc[:, :-1]
        first = torch.cummax(torch.where(start, pos, 0), dim=1).values
        rank = torch.empty_like(pos).scatter_(1, perm, pos - first)
        drop = joining & (rank + qstay.gather(1, self.loc) >= self.buffer_pkt)
        self.active &= ~drop
        self.dropped += drop.sum(1)
        if self.log_packets and bool(drop[0].any()):
            self._drop_log.append(self.pid[0][drop[0]].cpu().numpy())
        return drop

    # -- step ---------------------------------------------------------------------------------
    def step(self, action: Action) -> Step:
        """Forward, propagate, deliver, admit new packets (module docstring)."""
        if not self._started or self.t >= self.episode_len:
            raise RuntimeError("call reset() first: the episode has ended (or never started)")
        check_action(self.spec, action, self.num_envs)
        a = action.discrete.to(self.device).long()
        b, n, k, p, t = self.num_envs, self.n, self.k, self.pool, self.t
        # 1. forward the heads of line
        in_range = (a >= 0) & (a < k)
        valid = (
            in_range
            & self.static_mask.expand(b, n, k).gather(2, a.clamp(0, k - 1)[..., None])[..., 0]
        )
        choice = torch.where(valid, a, torch.remainder(a, self.degree))
        flat = self.router_ids * k + choice
        nxt, lk = self.nbr_flat[flat], self.outl_flat[flat]  # [B, N]
        has = self.has_head
        self.invalid += (~valid & has).sum(1)
        send = torch.where(has, self.head_slot, p)  # routers without a packet write the dummy
        w = self.words
        vidx = send * w + nxt // 64
        bit = torch.bitwise_left_shift(torch.ones_like(nxt), nxt % 64)
        word = self.visited.gather(1, vidx)
        was = (word & bit) != 0
        first_loop = was & has & ~self.looped.gather(1, send)
        self.loops += first_loop.sum(1)
        self.looped.scatter_(1, send, self.looped.gather(1, send) | (was & has))
        self.visited.scatter_(1, vidx, word | bit)
        self.loc.scatter_(1, send, nxt)
        self.rem.scatter_(1, send, self.link_delay[lk])
        self.link.scatter_(1, send, torch.where(has, lk, self.n_links))
        self.link_sent.scatter_add_(1, torch.where(has, lk, self.n_links), has.long())
        self.active[:, p] = False
        # 2. propagate and deliver
        flying = self.active & (self.rem > 0)
        self.rem = self.rem - flying.long()
        arrived = flying & (self.rem == 0)
        deliv = arrived & (self.loc == self.dst)
        n_deliv = deliv.sum(1)
        d_sum = torch.where(deliv, t + 1 - self.born, 0).sum(1)
        self.delivered += n_deliv
        self.delay_sum += d_sum
        if self.log_packets and bool(deliv[0].any()):
            m = deliv[0]
            self._log.append(
                (
                    self.pid[0][m].cpu().numpy(),
                    np.full(int(m.sum()), t + 1),
                    self.looped[0][m].cpu().numpy(),
                )
            )
        self.active &= ~deliv
        join = arrived & ~deliv
        self.stamp = torch.where(
            join, (t + 1) * self.stamp_base + self.link_src[self.link], self.stamp
        )
        self.link = torch.where(arrived, self.n_links, self.link)
        zn = torch.zeros(self.n, device=self.device)
        deliv0 = zn.scatter_add(0, self.loc[0], deliv[0].float())  # env 0, per router
        # 3. new packets, 4. buffer
        if t + 1 < self.episode_len:
            placed = self._admit_new(t + 1)
            if placed.shape[1] != join.shape[1]:  # the pool grew
                join = torch.cat(
                    [
                        join,
                        torch.zeros(
                            b, placed.shape[1] - join.shape[1], dtype=torch.bool, device=self.device
                        ),
                    ],
                    1,
                )
                join[:, p] = False
            join = join | placed
        else:
            placed = torch.zeros_like(join)
        drops = (
            self._apply_buffer(join, t + 1)
            if self.buffer_pkt is not None
            else torch.zeros_like(join)
        )
        self.t = t + 1
        obs = self._observe()
        reward = -self.qlen.float()
        if self.reward_kind == "queue_and_flight":
            reward = reward - self._out_load
        self._record(t, has, nxt, deliv0, placed, drops, reward)
        done = torch.full((b,), self.t >= self.episode_len, dtype=torch.bool, device=self.device)
        info = {
            "delivered_pkt": n_deliv,
            "delay_sum_steps": d_sum,
            "dropped_pkt": drops.sum(1),
            "queued_pkt": self.qlen.sum(1),
            "loops_pkt": first_loop.sum(1),
            "invalid_actions": (~valid & has).sum(1),
        }
        return Step(obs=obs, reward=reward, team_reward=reward.sum(1), done=done, info=info)

    def _observe(self) -> Observation:
        """Heads of line, queues and link loads -> observation (caches the heads for ``step``)."""
        b, n, k, p = self.num_envs, self.n, self.k, self.pool
        queued = self.active & (self.rem == 0)
        slots = torch.arange(p + 1, device=self.device)
        key = torch.where(queued, self.stamp * (p + 1) + slots, _INF)
        head = torch.full((b, n), _INF, dtype=torch.long, device=self.device)
        head.scatter_reduce_(1, self.loc, key, reduce="amin", include_self=True)
        self.has_head = head < _INF
        self.head_slot = torch.where(self.has_head, head % (p + 1), p)
        self.qlen = torch.zeros(b, n, dtype=torch.long, device=self.device).scatter_add_(
            1, self.loc, queued.long()
        )
        hdst = self.dst.gather(1, self.head_slot)
        onehot = torch.zeros(b, n, n, device=self.device).scatter_(
            2, hdst[..., None], self.has_head[..., None].float()
        )
        q = self.qlen.float()
        qpad = torch.cat([q, torch.zeros(b, 1, device=self.device)], 1)
        nq = qpad[:, self.nbr_pad].view(b, n, k)
        flying = self.active & (self.rem > 0)
        load = torch.zeros(b, self.n_links + 1, device=self.device).scatter_add_(
            1, self.link, flying.float()
        )
        load[:, self.n_links] = 0.0
        lo = load[:, self.outl_pad].view(b, n, k)
        parts = [q[..., None], onehot, nq, lo]
        if self.path_features:
            rows = self.via_delay[self.router_ids[None, :].expand(b, n), :, hdst]  # [B, N, K]
            parts.append(rows * self.has_head[..., None].float())
        local = torch.cat(parts, -1)
        rate = float(self.rates[min(self.t, self.episode_len - 1)])
        glob = torch.stack(
            [q.sum(1), flying.sum(1).float(), torch.full((b,), rate, device=self.device)], 1
        )
        self._out_load = lo.sum(-1)
        return Observation(
            local=local,
            forecast=torch.zeros(b, n, 0, 0, device=self.device),
            state=local,
            global_=glob,
            action_mask=self.static_mask.expand(b, n, k),
        )

    def _record(
        self,
        t: int,
        has: Tensor,
        nxt: Tensor,
        deliv0: Tensor,
        placed: Tensor,
        drops: Tensor,
        reward: Tensor,
    ) -> None:
        """Store env 0's per-router values of step ``t`` (see ``RECORD_COLUMNS``); no host
        synchronisation."""
        z = torch.zeros(self.n, device=self.device)
        loc0 = self.loc[0]
        new = z.scatter_add(0, loc0, placed[0].float())
        dr = z.scatter_add(0, loc0, drops[0].float())
        self._rec[t] = torch.stack(
            [
                self.qlen[0].float(),
                torch.where(has[0], nxt[0], -1).float(),
                deliv0,
                new,
                dr,
                self._out_load[0],
                reward[0],
            ],
            1,
        )

    # -- results ------------------------------------------------------------------------------
    def records(self) -> pd.DataFrame:
        """Per step and router of env 0: queue after the step [pkt], next hop chosen (-1 = no
        packet), packets delivered at / created at (for time ``step + 1``) / dropped at the router
        [pkt], packets in flight on its outgoing links [pkt], reward [pkt]."""
        t = self.t
        rec = self._rec[:t].cpu().numpy()
        steps = np.repeat(np.arange(t), self.n)
        agents = np.tile(np.arange(self.n), t)
        df = pd.DataFrame(
            {"step": steps, "agent": agents, "router": np.tile(np.array(self.topology.labels), t)}
        )
        for i, c in enumerate(RECORD_COLUMNS):
            col = rec[:, :, i].reshape(-1)
            df[c] = col.astype(np.int64) if c != "reward" else col
        return df

    def kpis(self) -> dict[str, Tensor]:
        """Per-env totals so far, each ``[B]``: ``delivered_pkt``, ``avg_delay_steps`` (delivered
        packets only; nan when none), ``dropped_pkt``, ``loops_pkt`` (packets that revisited a
        router), ``generated_pkt``, ``in_network_pkt`` (queued or in flight), ``invalid_actions``.
        """
        d = self.delivered.double()
        avg = torch.where(d > 0, self.delay_sum.double() / d.clamp(min=1), torch.nan)
        return {
            "delivered_pkt": self.delivered,
            "avg_delay_steps": avg,
            "dropped_pkt": self.dropped,
            "loops_pkt": self.loops,
            "generated_pkt": self.generated,
            "in_network_pkt": self.active.sum(1),
            "invalid_actions": self.invalid,
        }

    def link_packets(self) -> Tensor:
        """``[B, L]`` packets sent over each directed link so far [pkt]."""
        return self.link_sent[:, : self.n_links]

    def packet_log(self) -> pd.DataFrame:
        """Env 0's delivered and dropped packets (needs ``log_packets=True``).

        Columns: ``born`` [step], ``order`` (draw index among the packets of that step),
        ``delivered_step`` (-1 if dropped), ``looped``, ``dropped``.
        """
        if not self.log_packets:
            raise RuntimeError("build the env with log_packets=True to keep a packet log")
        rows = []
        for pid, when, lp in self._log:
            rows.append(
                pd.DataFrame({"pid": pid, "delivered_step": when, "looped": lp, "dropped": False})
            )
        for pid in self._drop_log:
            rows.append(
                pd.DataFrame({"pid": pid, "delivered_step": -1, "looped": False, "dropped": True})
            )
        df = (
            pd.concat(rows, ignore_index=True)
            if rows
            else pd.DataFrame(columns=["pid", "delivered_step", "looped", "dropped"])
        )
        df["born"] = df["pid"].astype(np.int64) // self.a_max
        df["order"] = df["pid"].astype(np.int64) % self.a_max
        return (
            df[["born", "order", "delivered_step", "looped", "dropped"]]
            .sort_values(["born", "order"])
            .reset_index(drop=True)
        )

    def arrivals(self, env: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The episode's arrival schedule of one env: counts ``[T]``, src and dst ``[T, A]``."""
        return (
            self.arr_counts[env].cpu().numpy(),
            self.arr_src[env].cpu().numpy(),
            self.arr_dst[env].cpu().numpy(),
        )


def _all_pairs_delay(topology: Topology) -> np.ndarray:
    """``[N, N]`` shortest-path delay between routers, weighted by link delay [steps]."""
    import networkx as nx

    n = topology.n_routers
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    for s, d, w in zip(topology.link_src, topology.link_dst, topology.delay_steps, strict=True):
        g.add_edge(int(s), int(d), w=float(w))
    out = np.zeros((n, n), dtype=np.float64)
    for src, lengths in nx.all_pairs_dijkstra_path_length(g, weight="w"):
        for dst, v in lengths.items():
            out[src, dst] = v
    return out


def rates_from_profile(profile: Sequence[tuple[int, float]]) -> np.ndarray:
    """``[(steps, rate [pkt/step]), ...]`` -> ``[T]`` rate per step [pkt/step]."""
    return np.concatenate([np.full(int(s), float(r)) for s, r in profile])
