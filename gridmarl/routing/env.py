"""Batched packet-routing environment: ``B`` networks x ``N`` routers, pure tensor code.

(One file over ~600 lines on purpose: the packet pool, the FIFO queues, link propagation and
the observation are one tensor state updated together in ``step``; split apart they would pass
that state between modules on every step.)

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
``local`` with           ``observation="neighbourhood"``: size-free features, the same on every
``neighbourhood``        topology: ``[q, has_head, u, v, u_dst, v_dst, degree, load_out_sum]``
                        (+ ``sp_delay`` with ``path_features``): ``(u, v)`` = the router's
                        position scaled to the topology's bounding box [0, 1]; ``(u_dst,
                        v_dst)`` = the head packet destination's (0 without a packet);
                        degree [links]; packets in flight on the router's outgoing links
                        [pkt]; ``sp_delay`` = shortest-path delay (by link delay) to the head
                        packet's destination [steps].  ``state`` keeps the slot layout above
                        (the rules read the head destination there).  A graph learner reads its
                        neighbours' features through ``spec.neighbors`` and scores neighbour
                        slot ``k`` as the action ``k``.
``pair`` [K, 2 (3)]     only with ``observation="neighbourhood"``, per neighbour slot ``k``
                        (``Observation.pair``, ``spec.pair_dim``): the neighbour's queue [pkt],
                        packets in flight on the link to it [pkt] (+ with ``path_features``
                        the link delay + shortest-path delay from it to the head packet's
                        destination [steps]); the slot layout's per-slot columns, 0 in padded
                        slots.  What choosing neighbour ``k`` costs, in a form that does not
                        depend on ``N`` or ``K``.
``global_`` [3]         packets queued [pkt], packets in flight [pkt], current arrival rate
                        [pkt/step]
``action``              ``Discrete(K)``: neighbour slot (slot ``k`` = ``k``-th neighbour in
                        ascending router id, ``Topology.neighbors``)
``action_mask`` [K]     True for the router's real neighbours; with ``loop_mask=True`` only
                        those its head packet has not visited (all real ones when it has
                        visited every one): the seed's loopback detection (LToS §5.3)
======================  ======================================================================

An invalid action (a padded slot or outside ``[0, K)``) falls back to slot ``a mod degree``
and is counted in ``info["invalid_actions"]``.  Reward of router ``r`` = −(its queue after the
step) [pkt]; team reward = −(all queued packets) [pkt].  With ``reward="queue_and_flight"`` the
packets in flight on the router's outgoing links count too, so the team reward is −(all packets
in the network) [pkt] and its sum over an episode is −(total delay of all packets) [steps].
With ``reward="network"`` every router gets the same −(all packets in the network) / N [pkt]
(the team's objective, shared: not the LToS seed's reward).  With ``reward="queue_and_hop"`` a
router that forwards also pays the hop's cost [steps]: link delay + the next router's queue
(its FIFO wait, one packet per step) + the next router's shortest-path delay to the destination
− its own (the detour).  That prices, at the step it is taken, what a next hop costs the packet
downstream (a one-step Q-routing cost, Boyan and Littman 1994, with the shortest-path delay for
the bootstrap); the seed's −(own queue) cannot tell next hops apart.  Not the seed's reward.

Graph: ``spec.neighbors`` is the neighbour-slot table (the links, ``Topology.neighbors``);
``spec.groups`` is ``groups`` (default: edge routers 0, core routers 1, by degree,
``topology.core_edge_groups``).

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

Packets live in a pool of slots per env (32 slots at first, ``pool_init``): position (a bin:
router queue, link in flight, or free), next position and arrival step while on a link,
destination, birth step, FIFO key (stamp and slot), visited routers as a bit set.  The pool
doubles when it would overflow (checked against a host-side bound, synchronising only when the
bound reaches the pool size), so queues are unbounded unless ``buffer_pkt`` is set; results do
not depend on the pool size.  Per step the pool is touched by a handful of full-width tensor ops
(arrivals, free-slot ranks, one ``scatter_add`` for queue and link counts, one ``amin`` scatter
for the heads of line); the rest works on ``[B, N]`` or ``[B, A]`` tensors.  Deliveries are
booked at send time by arrival step.  The arrival schedule of the whole episode is
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
from gridmarl.core.errors import ScenarioError
from gridmarl.core.seeding import make_generator
from gridmarl.core.types import Action, AgentSpec, Observation, PolicyShape, Step
from gridmarl.routing.topology import Topology, core_edge_groups

_INF = torch.iinfo(torch.int64).max
_SLOT_BITS = 24  # a FIFO key is ``stamp << _SLOT_BITS | slot``: at most 2**24 - 1 slots per env
_SLOT_MASK = (1 << _SLOT_BITS) - 1
#: packets one env holds at most: the pool doubles from a power of two, so it stays below the
#: FIFO key's 2**24 - 1 slots while it holds at most 2**23 packets [pkt]
MAX_PACKETS = 1 << (_SLOT_BITS - 1)
#: cells of the largest tables one env keeps for an episode (arrivals ``[T, A]`` int64 for the
#: sources and again for the destinations, the delivery schedule, the per-step records
#: ``[T, N, 7]``): 2**28 cells, 2 GiB as int64 [-]
MAX_TABLE_CELLS = 1 << 28
#: what ``reward`` may be (module docstring)
REWARDS = ("queue", "queue_and_flight", "network", "queue_and_hop")
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
    # uniform over the other N - 1 routers: (src + U{1, N-1}) mod N, in place (large tensors)
    dst = torch.randint(1, n_routers, (num_envs, t, a), generator=generator)
    dst.add_(src).remainder_(n_routers)
    return Arrivals(counts=counts, src=src, dst=dst)


#: names of the size-free local features of ``observation="neighbourhood"`` (module docstring)
NEIGHBOURHOOD_FEATURES = (
    "queue_pkt",
    "has_head",
    "u",
    "v",
    "u_dst",
    "v_dst",
    "degree_links",
    "load_out_pkt",
)


def policy_shape(
    n_routers: int, max_degree: int, path_features: bool, observation: str | None = None
) -> PolicyShape:
    """The sizes a policy must match (``AgentSpec`` without the agents; module docstring):
    ``state_dim = 1 + N + 2K`` (``3K`` with path features), ``local`` the same, or the 8 (9)
    size-free features with ``observation="neighbourhood"`` (and 2 (3) pair features per
    neighbour slot); a global token of 3, ``K`` discrete choices, no forecast and no
    continuous action."""
    dim = 1 + n_routers + (3 if path_features else 2) * max_degree
    names: tuple[str, ...] = ()
    if observation == "neighbourhood":
        names = NEIGHBOURHOOD_FEATURES + (("sp_delay_steps",) if path_features else ())
    elif observation is not None:
        raise ValueError(f"observation: {observation!r}; allowed: None, 'neighbourhood'")
    return PolicyShape(
        local_dim=len(names) if names else dim,
        forecast_len=0,
        forecast_dim=0,
        state_dim=dim,
        global_dim=3,
        n_discrete=max_degree,
        n_continuous=0,
        local_features=names,
        pair_dim=(3 if path_features else 2) if names else 0,
    )


def poisson_high(mean: float) -> float:
    """A count a Poisson draw of ``mean`` exceeds with probability below 1e-8 (mean + 6 std +
    6) [-]."""
    return mean + 6.0 * float(np.sqrt(mean)) + 6.0


def episode_size_problem(
    profile: Sequence[tuple[int, float]], n_routers: int, max_delay: int
) -> str | None:
    """Why one env of this episode would not fit the packet pool, the order keys or
    ``MAX_TABLE_CELLS``, or None when it fits.

    Computed from the scenario alone, with counts a Poisson draw stays below
    (:func:`poisson_high`): total packets of the episode (the pool must hold them if none is
    delivered), most packets in one step ``A``, and the episode length ``T``.

    Args:
        profile: ``[(steps, rate [pkt/step]), ...]`` (as :func:`rates_from_profile`; finite
            rates >= 0), read without building the ``[T]`` rates.
        n_routers: routers ``N``.
        max_delay: the longest link delay [steps].
    """
    t = sum(int(n) for n, _ in profile)
    total = sum(int(n) * float(r) for n, r in profile)
    peak = max(float(r) for _, r in profile)
    a = 1 if peak == 0 else int(np.ceil(poisson_high(peak)))
    if poisson_high(total) > MAX_PACKETS:
        return (
            f"about {total:.4g} packets per episode (sum of rate_pkt_per_step x steps); one "
            f"env's packet pool holds at most {MAX_PACKETS} (2**23, the FIFO key's slot bits); "
            "lower the rates or shorten the profile"
        )
    cells = {
        "the arrival table (steps x most packets in one step)": t * a,
        "the per-step records (steps x routers x columns)": t * n_routers * len(RECORD_COLUMNS),
        "the delivery schedule (steps + longest link delay)": t + max_delay + 1,
    }
    for what, n in cells.items():
        if n > MAX_TABLE_CELLS:
            return (
                f"{what} would hold {n:.4g} cells per env; allowed: at most {MAX_TABLE_CELLS} "
                "(2**28, 2 GiB as int64); lower the rates or shorten the profile"
            )
    if (t + max_delay + 1) * (n_routers + a) >= 1 << (62 - _SLOT_BITS):
        return (
            f"(steps + longest link delay + 1) x (routers + most packets in one step) = "
            f"{(t + max_delay + 1) * (n_routers + a):.4g} exceeds the packet order keys "
            f"(2**{62 - _SLOT_BITS}); shorten the profile or lower the rates"
        )
    return None


def head_destination(obs: Observation, n_routers: int) -> tuple[Tensor, Tensor]:
    """Decode the head-of-line packet's destination from ``obs.state`` (the slot layout, also
    ``obs.local`` without ``observation="neighbourhood"``).

    Returns:
        ``dst`` ``[B, N]`` long (0 where the queue is empty) and ``has_head`` ``[B, N]`` bool.
    """
    onehot = obs.state[..., 1 : 1 + n_routers]  # state keeps the slot layout
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
        pool_init: initial packet slots per env [slots] (doubles on demand; results do not
            depend on it).
        log_packets: keep a per-packet log of env 0 (``packet_log()``), for differential tests;
            it costs a host synchronisation per step.
        path_features: append the per-slot path delay to ``local`` and ``state`` (module
            docstring).
        reward: ``queue`` (default), ``queue_and_flight``, ``network`` or ``queue_and_hop``
            (module docstring).
        groups: ``[N]`` group of each router in ``spec.groups`` (default: core and edge
            routers, ``topology.core_edge_groups``).
        observation: None (the slot layout) or ``neighbourhood`` (module docstring).
        loop_mask: hide the neighbours the head packet has visited from the action mask.
    """

    def __init__(
        self,
        topology: Topology,
        rates: Sequence[float] | np.ndarray | Tensor,
        num_envs: int = 1,
        buffer_pkt: int | None = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
        pool_init: int = 32,
        log_packets: bool = False,
        path_features: bool = False,
        reward: str = "queue",
        groups: Sequence[int] | np.ndarray | None = None,
        observation: str | None = None,
        loop_mask: bool = False,
    ) -> None:
        if reward not in REWARDS:
            raise ValueError(f"reward: {reward!r}; allowed: {', '.join(REWARDS)}")
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
        n_links = topology.n_links
        self.n, self.k, self.n_links = n, k, n_links
        nb = torch.as_tensor(topology.neighbors, dtype=torch.long)
        ol = torch.as_tensor(topology.out_links, dtype=torch.long)
        self.static_mask = (nb >= 0).to(dev)  # [N, K]; real slots come first (ascending ids)
        self.degree = torch.as_tensor(topology.degree, dtype=torch.long, device=dev)  # [N]
        link_delay = torch.as_tensor(topology.delay_steps, dtype=torch.long)  # [L] steps
        self.max_delay = int(link_delay.max())
        # Bins of a packet's position ``pos``: router r (queued there; bins N..NK-1 stay
        # empty), NK + r * K + k (in flight on the link of neighbour slot k of router r), FREE
        # (empty slot), DUMMY (the dummy slot), ZERO (never used: reads as 0).  Per-bin counts
        # then hold the queues and, in slot order, the link loads of the observation.
        nk = n * k
        self.nk = nk
        self.free_bin, self.dummy_bin, self.zero_bin = 2 * nk, 2 * nk + 1, 2 * nk + 2
        self.n_bins = 2 * nk + 3
        # per (router, neighbour slot), flattened to [N*K]; padded slots are never chosen:
        # neighbour router, link id, delay [steps], visited bit and word of the neighbour, bin
        nbc, olc = nb.clamp(min=0), ol.clamp(min=0)
        bit = torch.bitwise_left_shift(torch.ones_like(nbc), nbc % 64)
        self._hop_table = (
            torch.stack(
                [nbc, olc, link_delay[olc], bit, nbc // 64, nk + torch.arange(nk).view(n, k)], -1
            )
            .view(nk, 6)
            .to(dev)
        )
        self.router_ids = torch.arange(n, device=dev)
        self.rk = self.router_ids * k  # [N] row offset into the flat tables
        self._router_key = self.router_ids << _SLOT_BITS  # [N] sender id in FIFO key position
        self.words = (n + 63) // 64  # int64 words of the visited-router bit set
        ids = torch.arange(n)
        bitrows = torch.zeros(n, self.words, dtype=torch.long)
        bitrows.scatter_(
            1,
            (ids // 64)[:, None],
            torch.bitwise_left_shift(torch.ones(n, 1, dtype=torch.long), (ids % 64)[:, None]),
        )
        self.bitrows = bitrows.to(dev)  # [N, W] visited set {r} of a packet born at r
        shape = policy_shape(n, k, self.path_features, observation)
        self.neighbourhood_obs = observation == "neighbourhood"
        self.loop_mask = bool(loop_mask)
        pos = np.asarray(topology.pos, dtype=np.float64)
        span = np.where(np.ptp(pos, 0) > 0, np.ptp(pos, 0), 1.0)
        #: [N, 2] position in the bounding box [0, 1]² and [N] degree (size-free features)
        self.uv = torch.as_tensor((pos - pos.min(0)) / span, dtype=torch.float32, device=dev)
        if (self.neighbourhood_obs and self.path_features) or reward == "queue_and_hop":
            # [N, N] shortest-path delay [steps]: a feature, and the hop cost's baseline
            self.sp_delay = torch.as_tensor(
                topology.delay_matrix(), dtype=torch.float32, device=dev
            )
        self.nbr_bin = torch.where(nb >= 0, nb, self.zero_bin).flatten().to(dev)  # [N*K]
        if self.path_features:
            dist = topology.delay_matrix()  # [N, N] steps
            ld = topology.delay_steps[ol.clamp(min=0).numpy()].astype(np.float64)  # [N, K]
            via = ld[:, :, None] + dist[nb.clamp(min=0).numpy()]  # [N, K, N(dst)]
            via = np.where((nb >= 0).numpy()[:, :, None], via, 0.0)
            self.via_delay = torch.as_tensor(via, dtype=torch.float32, device=dev)
        self.spec = AgentSpec(
            n_agents=n,
            **shape.spec_fields(),
            groups=torch.as_tensor(
                np.asarray(core_edge_groups(topology) if groups is None else groups),
                dtype=torch.long,
            ),
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
        self._host_max_counts = arr.counts.max(0).values.tolist()  # [T] over the envs [pkt]
        self._bound = 0  # upper bound on max_b (packets in env b) after the last admission
        b, dev = self.num_envs, self.device
        self.arr_counts = arr.counts.to(dev)
        self.arr_src = arr.src.to(dev)
        self.arr_dst = arr.dst.to(dev)
        self._cnt_t = self.arr_counts.t().contiguous()  # [T, B]
        self.a_max = int(arr.src.shape[2])
        self.stamp_base = self.n + self.a_max  # stamp = time * stamp_base + order key
        if (self.episode_len + self.max_delay + 1) * self.stamp_base >= 1 << (62 - _SLOT_BITS):
            raise ScenarioError(
                "traffic.profile: episode too long for the packet order keys; shorten the "
                "profile or lower the rates"
            )
        jr = torch.arange(self.a_max, device=dev)
        self._arr_valid = jr < self.arr_counts[..., None]  # [B, T, A]
        self._jq = (jr + 1).int().expand(b, self.a_max).contiguous()  # [B, A] free-slot ranks
        self._jkey = jr << _SLOT_BITS  # [A] order key n + j of new packets, in key position
        self._jr = jr
        self._alloc(self.pool_init)
        z = torch.zeros(b, dtype=torch.long, device=dev)
        self.delivered, self.delay_sum, self.dropped = z.clone(), z.clone(), z.clone()
        self.loops, self.generated, self.invalid = z.clone(), z.clone(), z.clone()
        self.link_sent = torch.zeros(b, self.n_links + 1, dtype=torch.long, device=dev)
        horizon = self.episode_len + self.max_delay + 1
        self._sched = torch.zeros(b, horizon, dtype=torch.long, device=dev)  # deliveries
        self._rec = torch.zeros(self.episode_len, self.n, len(RECORD_COLUMNS), device=dev)
        self._zn = torch.zeros(self.n, device=dev)
        self._no_forecast = torch.zeros(b, self.n, 0, 0, device=dev)  # holds no elements
        self._log: list[tuple[np.ndarray, ...]] = []
        self._drop_log: list[np.ndarray] = []
        self.t = 0
        self._started = True
        placed = self._admit_new(0)
        if self.buffer_pkt is not None:
            self._apply_buffer(self._placed_mask(placed), 0)
        return self._observe()

    def _alloc(self, pool: int) -> None:
        """Fresh per-slot state with ``pool`` real slots plus one dummy slot (index ``pool``).

        Per slot: ``pos`` (bin: router, link slot, free, dummy), ``npos`` (bin after the current
        link: the next router, or free when that router is the destination), ``arrive``
        (arrival time of the current link [step]), ``skey`` (FIFO key ``stamp << 24 | slot``),
        destination, birth step, packet id, loop flag and the visited-router bit set.
        """
        b, dev = self.num_envs, self.device
        self.pool = pool
        shape = (b, pool + 1)
        self.pos = torch.full(shape, self.free_bin, dtype=torch.long, device=dev)
        self.pos[:, pool] = self.dummy_bin
        self.npos = torch.full(shape, self.dummy_bin, dtype=torch.long, device=dev)
        self.arrive = torch.zeros(shape, dtype=torch.long, device=dev)
        self.skey = torch.zeros(shape, dtype=torch.long, device=dev)
        self.dst = torch.zeros(shape, dtype=torch.long, device=dev)
        self.born = torch.zeros(shape, dtype=torch.long, device=dev)
        self.pid = torch.zeros(shape, dtype=torch.long, device=dev)
        self.looped = torch.zeros(shape, dtype=torch.bool, device=dev)
        self.visited = torch.zeros(b, (pool + 1) * self.words, dtype=torch.long, device=dev)
        self._ones = torch.ones(shape, device=dev)
        self._inf_key = (1 << 62) | pool  # "no packet": its slot bits name the dummy slot

    def _grow(self, pool: int) -> None:
        """Enlarge the pool to ``pool`` real slots, keeping every packet in its slot."""
        if pool >= _SLOT_MASK:
            raise ScenarioError(
                f"traffic.profile: packet pool of {pool} slots per env exceeds the FIFO key "
                f"(at most {MAX_PACKETS} packets in one env); lower the rates"
            )
        names = ("pos", "npos", "arrive", "skey", "dst", "born", "pid", "looped")
        old = {k: getattr(self, k) for k in names}
        vis, p_old = self.visited, self.pool
        self._alloc(pool)
        for k, v in old.items():
            getattr(self, k)[:, :p_old] = v[:, :p_old]
        self.visited[:, : p_old * self.words] = vis[:, : p_old * self.words]

    def _admit_new(self, tau: int) -> tuple[Tensor, Tensor]:
        """Place the new packets of time ``tau`` in the first free slots.

        Returns:
            ``slot`` ``[B, A]`` slot of the ``j``-th new packet (the dummy slot when there is
            none) and ``valid`` ``[B, A]`` bool (packet ``j`` exists).
        """
        self._bound += self._host_max_counts[tau]
        if self._bound > self.pool:  # maybe full: count exactly (a host synchronisation)
            busy = (self.pos < self.free_bin).sum(1)
            top = int((busy + self._cnt_t[tau]).max())
            self._bound = top
            if top > self.pool:
                pool = self.pool
                while pool < top:
                    pool *= 2
                self._grow(pool)
        p, w, b = self.pool, self.words, self.num_envs
        free = self.pos == self.free_bin
        rank = free.cumsum(1, dtype=torch.int32)
        valid = self._arr_valid[:, tau]
        slot = torch.where(valid, torch.searchsorted(rank, self._jq), p)  # j-th free slot
        src = self.arr_src[:, tau]
        self.pos.scatter_(1, slot, torch.where(valid, src, self.dummy_bin))
        self.dst.scatter_(1, slot, self.arr_dst[:, tau])
        self.born.scatter_(1, slot, tau)
        self.skey.scatter_(
            1, slot, slot + (self._jkey + ((tau * self.stamp_base + self.n) << _SLOT_BITS))
        )
        self.pid.scatter_(1, slot, (self._jr + tau * self.a_max).expand_as(slot))
        self.looped.scatter_(1, slot, False)
        if w == 1:
            self.visited.scatter_(
                1, slot, self.bitrows.view(-1).index_select(0, src.reshape(-1)).view_as(src)
            )
        else:
            self.visited.view(b, p + 1, w).scatter_(
                1, slot[..., None].expand(-1, -1, w), self.bitrows[src]
            )
        self.generated += self._cnt_t[tau]
        return slot, valid

    def _placed_mask(self, placed: tuple[Tensor, Tensor]) -> Tensor:
        """``[B, P+1]`` bool mask of the slots filled by ``_admit_new``."""
        slot, valid = placed
        m = torch.zeros(self.num_envs, self.pool + 1, dtype=torch.bool, device=self.device)
        return m.scatter_(1, slot, valid)

    def _apply_buffer(self, joining: Tensor, tau: int) -> Tensor:
        """Drop joining packets beyond ``buffer_pkt`` per queue, in FIFO order; returns drops."""
        loc = self.pos
        queued_stay = (loc < self.n) & ~joining
        qstay = torch.zeros(self.num_envs, self.n_bins, dtype=torch.long, device=self.device)
        qstay.scatter_add_(1, loc, queued_stay.long())
        base = self.stamp_base
        stamp = self.skey >> _SLOT_BITS
        key = torch.where(joining, loc * base + (stamp - tau * base), _INF)
        skey, perm = torch.sort(key, dim=1)
        sloc = torch.where(skey < _INF, skey // base, -1)
        pos = torch.arange(key.shape[1], device=self.device).expand_as(key)
        start = torch.ones_like(joining)
        start[:, 1:] = sloc[:, 1:] != sloc[:, :-1]
        first = torch.cummax(torch.where(start, pos, 0), dim=1).values
        rank = torch.empty_like(pos).scatter_(1, perm, pos - first)
        drop = joining & (rank + qstay.gather(1, loc) >= self.buffer_pkt)
        self._drop_rec = self._zn.scatter_add(0, loc[0].clamp(max=self.n - 1), drop[0].float())
        self.pos = torch.where(drop, self.free_bin, self.pos)
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
        a = action.discrete
        if a.device != self.device or a.dtype != torch.long:
            a = a.to(self.device).long()
        b, n, p, t = self.num_envs, self.n, self.pool, self.t
        # 1. forward the heads of line; an invalid slot falls back to a mod degree
        choice = torch.remainder(a, self.degree)
        has, send, hdst = self.has_head, self.head_slot, self.head_dst
        invalid = (has & (choice != a)).sum(1)
        self.invalid += invalid
        hop = self._hop_table.index_select(0, (self.rk + choice).view(-1))  # [B*N, 6]
        nxt, lk, delay, bit, word_i, lbin = (c.view(b, n) for c in hop.unbind(1))
        arrive = delay + t  # [step] the packet arrives at time arrive
        if self.reward_kind == "queue_and_hop":  # the hop's cost [steps], before anything moves
            hop_cost = self._hop_cost(has, nxt, delay, hdst)
        final = has & (nxt == hdst)
        # routers without a packet write the dummy slot (send = p)
        if self.words == 1:
            vidx = send
        else:
            vidx = send * self.words + word_i
        word = self.visited.gather(1, vidx)
        was = (word & bit) != 0
        lg = self.looped.gather(1, send)
        first_loop = (was & ~lg & has).sum(1)
        self.loops += first_loop
        self.looped.scatter_(1, send, lg | was)
        self.visited.scatter_(1, vidx, word | bit)
        self.arrive.scatter_(1, send, arrive)
        self.npos.scatter_(
            1, send, torch.where(has, torch.where(final, self.free_bin, nxt), self.dummy_bin)
        )
        self.pos.scatter_(1, send, torch.where(has, lbin, self.dummy_bin))
        self.skey.scatter_(
            1, send, torch.add(self._router_key + send, arrive, alpha=self.stamp_base << _SLOT_BITS)
        )
        has_l = has.long()
        self.link_sent.scatter_add_(1, lk, has_l)
        # deliveries by arrival time: count << 32 | summed delay [steps]
        self._sched.scatter_add_(
            1, arrive, (arrive - self.born.gather(1, send) + (1 << 32)) * final
        )
        # 2. propagate and deliver: packets due at t + 1 leave their link
        arrived = self.arrive == t + 1
        deliv0 = arrived[0] & (self.npos[0] == self.free_bin)
        if self.log_packets and bool(deliv0.any()):
            self._log.append(
                (
                    self.pid[0][deliv0].cpu().numpy(),
                    np.full(int(deliv0.sum()), t + 1),
                    self.looped[0][deliv0].cpu().numpy(),
                )
            )
        deliv0_r = self._zn.scatter_add(0, self.dst[0], deliv0.float())  # env 0, per router
        self.pos = torch.where(arrived, self.npos, self.pos)
        due = self._sched[:, t + 1]
        n_deliv = due >> 32
        d_sum = due & 0xFFFFFFFF
        self.delivered += n_deliv
        self.delay_sum += d_sum
        join = arrived & (self.pos < n) if self.buffer_pkt is not None else None
        # 3. new packets, 4. buffer
        if t + 1 < self.episode_len:
            placed = self._admit_new(t + 1)
            new0 = self._zn.scatter_add(0, self.arr_src[0, t + 1], placed[1][0].float())
        else:
            placed = None
            new0 = self._zn
        if join is not None:
            if self.pool != p:  # the pool grew: pad the arrivals
                join = torch.cat([join[:, :p], join.new_zeros(b, self.pool + 1 - p)], 1)
            if placed is not None:
                join = join | self._placed_mask(placed)
            drops = self._apply_buffer(join, t + 1).sum(1)
            drop0 = self._drop_rec
        else:
            drops = torch.zeros(b, dtype=torch.long, device=self.device)
            drop0 = self._zn
        self.t = t + 1
        obs = self._observe()
        q = self._counts[:, :n]
        reward = -q
        if self.reward_kind != "queue":
            reward = reward - self._out_load(obs.state)
        if self.reward_kind == "network":  # every router: the network's mean, shared
            reward = reward.mean(1, keepdim=True).expand_as(reward)
        if self.reward_kind == "queue_and_hop":
            reward = -q - hop_cost
        out0 = self._out_load(obs.state[:1])[0]
        torch.stack(
            [
                q[0],
                torch.where(has[0], nxt[0], -1).float(),
                deliv0_r,
                new0,
                drop0,
                out0,
                reward[0],
            ],
            1,
            out=self._rec[t],
        )
        # the fixed horizon is a time limit: the last step is truncated, never terminated
        truncated = torch.full(
            (b,), self.t >= self.episode_len, dtype=torch.bool, device=self.device
        )
        info = {
            "delivered_pkt": n_deliv,
            "delay_sum_steps": d_sum,
            "dropped_pkt": drops,
            "queued_pkt": obs.global_[:, 0].long(),
            "loops_pkt": first_loop,
            "invalid_actions": invalid,
        }
        return Step(
            obs=obs,
            reward=reward,
            team_reward=reward.sum(1),
            terminated=torch.zeros_like(truncated),
            truncated=truncated,
            info=info,
        )

    def _hop_cost(self, has: Tensor, nxt: Tensor, delay: Tensor, dst: Tensor) -> Tensor:
        """``[B, N]`` cost of each router's forwarding [steps] (``reward="queue_and_hop"``): link
        delay + the next router's queue (its FIFO wait at one packet per step, as seen now) +
        the next router's shortest-path delay to the destination − the router's own; 0 without
        a packet.  It is ≥ 0 and 0 only for an uncongested hop on a shortest path."""
        rows = self.router_ids[None, :].expand_as(nxt)
        detour = delay.float() + self.sp_delay[nxt, dst] - self.sp_delay[rows, dst]
        wait = self._counts.gather(1, nxt)
        return torch.where(has, detour + wait, torch.zeros_like(wait))

    def _out_load(self, local: Tensor) -> Tensor:
        """``[B, N]`` packets in flight on each router's outgoing links [pkt]."""
        o = 1 + self.n + self.k
        return local[..., o : o + self.k].sum(-1)

    def _observe(self) -> Observation:
        """Heads of line, queues and link loads -> observation (caches the heads for ``step``)."""
        b, n, k = self.num_envs, self.n, self.k
        dev = self.device
        counts = torch.zeros(b, self.n_bins, device=dev).scatter_add_(1, self.pos, self._ones)
        head = torch.full((b, self.n_bins), self._inf_key, dtype=torch.long, device=dev)
        head.scatter_reduce_(1, self.pos, self.skey, reduce="amin", include_self=True)
        self.head_slot = head[:, :n] & _SLOT_MASK  # the dummy slot where the queue is empty
        self.has_head = self.head_slot != self.pool
        self.head_dst = self.dst.gather(1, self.head_slot)
        self._counts = counts
        local = torch.zeros(b, n, self.spec.state_dim, device=dev)
        local[..., 0] = counts[:, :n]
        local[..., 1 + n : 1 + n + k] = counts.index_select(1, self.nbr_bin).view(b, n, k)
        nk = self.nk
        local[..., 1 + n + k : 1 + n + 2 * k] = counts[:, nk : 2 * nk].view(b, n, k)
        hf = self.has_head.float()[..., None]
        local[..., 1 : 1 + n].scatter_(2, self.head_dst[..., None], hf)
        if self.path_features:
            rows = self.via_delay[self.router_ids[None, :].expand(b, n), :, self.head_dst]
            local[..., 1 + n + 2 * k :] = rows * hf
        rate = float(self.rates[min(self.t, self.episode_len - 1)])
        glob = torch.cat(
            [counts[:, : 2 * nk].view(b, 2, nk).sum(2), torch.full((b, 1), rate, device=dev)], 1
        )
        mask = self.static_mask.expand(b, n, k)
        if self.loop_mask:
            mask = self._unvisited_mask(mask)
        state = local
        pair = None
        if self.neighbourhood_obs:
            local = self._neighbourhood_features(state, hf)
            # the slot layout's per-slot columns (queues, in flight, path delay) → [B, N, K, P]
            pair = state[..., 1 + n :].unflatten(-1, (self.spec.pair_dim, k)).transpose(-1, -2)
        return Observation(
            local=local,
            forecast=self._no_forecast,
            state=state,
            global_=glob,
            action_mask=mask,
            pair=pair,
        )

    def _unvisited_mask(self, mask: Tensor) -> Tensor:
        """``[B, N, K]``: the real neighbour slots whose router the head packet has not
        visited, or all real slots where it has visited every one (or there is no packet)."""
        b, n, k, w = self.num_envs, self.n, self.k, self.words
        words = self.visited.view(b, self.pool + 1, w).gather(
            1, self.head_slot[..., None].expand(b, n, w)
        )  # [B, N, W] visited set of each head packet
        table = self._hop_table.view(n, k, 6)
        bit, word_i = table[..., 3], table[..., 4]  # [N, K] the neighbour's bit and word
        seen = (words.gather(2, word_i.expand(b, n, k)) & bit) != 0
        fresh = mask & ~(seen & self.has_head[..., None])  # the dummy slot's set is junk
        return torch.where(fresh.any(-1, keepdim=True), fresh, mask)

    def _neighbourhood_features(self, slots: Tensor, has: Tensor) -> Tensor:
        """``[B, N, 8 (9)]`` size-free features from the slot layout ``slots`` (module
        docstring); ``has [B, N, 1]`` marks routers with a head packet."""
        b, n, k = self.num_envs, self.n, self.k
        uv = self.uv.expand(b, n, 2)
        parts = [
            slots[..., :1],
            has,
            uv,
            self.uv[self.head_dst] * has,
            self.degree.float().expand(b, n).unsqueeze(-1),
            slots[..., 1 + n + k : 1 + n + 2 * k].sum(-1, keepdim=True),
        ]
        if self.path_features:
            parts.append(self.sp_delay[self.router_ids[None, :], self.head_dst][..., None] * has)
        return torch.cat(parts, dim=-1)

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
            "in_network_pkt": (self.pos < self.free_bin).sum(1),
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


def rates_from_profile(profile: Sequence[tuple[int, float]]) -> np.ndarray:
    """``[(steps, rate [pkt/step]), ...]`` -> ``[T]`` rate per step [pkt/step]."""
    return np.concatenate([np.full(int(s), float(r)) for s, r in profile])
