"""``gridmarl simulate`` for ``domain: routing``: every listed controller through the same env.

Each controller runs ``evaluation.episodes`` episodes, one per traffic seed ``seed + i``
(``B = 1`` each, the same packets for every controller), and is reported as mean and std over
them.  Outputs: KPIs (``avg_delay_steps`` first), a next-hop table per controller
(``next_hop_<controller>``: router, destination, next_hop, share, ...), and a figure of the
topology with each controller's mean link loads (``link_loads``).

A learned controller is listed as ``{name: matppo, checkpoint: PATH}`` (any name in
``gridmarl.controllers.registry``); it is read with ``registry.load_policy`` and must fit the
scenario's env (routers' degree, ``env.path_features``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from gridmarl.config import ControllerEntry, resolve_path
from gridmarl.core.controller import Controller
from gridmarl.core.errors import ScenarioError
from gridmarl.core.types import PolicyShape
from gridmarl.experiment import (
    ControllerResult,
    SimulationResult,
    failed_result,
    isolated,
    run_episode,
)
from gridmarl.routing.config import RoutingScenario
from gridmarl.routing.env import RoutingEnv, rates_from_profile
from gridmarl.routing.kpis import (
    KPI_ORDER,
    episode_kpis,
    format_mean_std,
    link_load_figure,
    summarise,
)
from gridmarl.routing.rules import (
    DecisionRecorder,
    SplitController,
    shortest_path_controller,
    shortest_path_slots,
)
from gridmarl.routing.topology import Topology, load_topology, scenario_groups


def scenario_rates(scenario: RoutingScenario) -> np.ndarray:
    """``[T]`` arrival rate of each step [pkt/step]."""
    return rates_from_profile([(s.steps, s.rate_pkt_per_step) for s in scenario.traffic.profile])


def policy_shape(scenario: RoutingScenario) -> PolicyShape:
    """What a learned policy must match to act in this scenario's env (``make_env``), from the
    scenario and its topology, without building the env."""
    from gridmarl.routing.env import policy_shape as shape

    topo = load_topology(scenario)
    return shape(
        topo.n_routers, topo.max_degree, scenario.env.path_features, scenario.env.observation
    )


def make_env(
    scenario: RoutingScenario,
    topology: Topology,
    num_envs: int = 1,
    seed: int = 0,
    device: Any = "cpu",
    rates: np.ndarray | None = None,
) -> RoutingEnv:
    """The scenario's env (rate profile, buffer, ``env`` options) with ``num_envs`` episodes."""
    return RoutingEnv(
        topology,
        scenario_rates(scenario) if rates is None else rates,
        num_envs=num_envs,
        buffer_pkt=scenario.traffic.buffer_pkt,
        device=device,
        seed=seed,
        path_features=scenario.env.path_features,
        observation=scenario.env.observation,
        loop_mask=bool(scenario.env.loop_mask),
        reward=scenario.env.reward,
        groups=scenario_groups(scenario, topology),
    )


def mcf_controller(
    entry: ControllerEntry,
    topology: Topology,
    scenario: RoutingScenario,
) -> tuple[SplitController, str, float]:
    """Solve one multicommodity flow per distinct rate of the profile and return the split
    controller, a note (solver status, times) and the total solve time [s].

    Options (``entry.options``): ``congestion_weight`` (default 1.0),
    ``traffic``: ``per_segment`` (default: a table per rate segment, switched at the segment's
    first step) or ``mean`` (one table for the episode's mean rate).
    """
    from baselines_opt.routing_mcf import solve_mcf, split_shares, uniform_demand
    from baselines_opt.solve import SolveOptions

    opts = dict(entry.options)
    weight = float(opts.pop("congestion_weight", 1.0))
    mode = opts.pop("traffic", "per_segment")
    if opts:
        raise ScenarioError(
            f"controllers[{entry.name}].options: unknown option(s) "
            f"{', '.join(sorted(opts))}; allowed: congestion_weight, traffic"
        )
    if mode not in ("per_segment", "mean"):
        raise ScenarioError(
            f"controllers[{entry.name}].options.traffic: {mode!r}; allowed: per_segment, mean"
        )
    segs = [(s.steps, s.rate_pkt_per_step) for s in scenario.traffic.profile]
    if mode == "mean":
        total = sum(n for n, _ in segs)
        segs = [(total, sum(n * r for n, r in segs) / total)]
    solve_opts = SolveOptions(
        time_limit_s=entry.time_limit_s or 60.0, mip_gap=None, threads=entry.threads
    )
    fallback = shortest_path_slots(topology, "distance")
    cache: dict[float, np.ndarray] = {}
    shares, starts, notes, solve_s, step = [], [], [], 0.0, 0
    for n_steps, rate in segs:
        if rate not in cache:
            sol = solve_mcf(
                topology,
                uniform_demand(topology.n_routers, max(rate, 1e-9)),
                congestion_weight=weight,
                options=solve_opts,
            )
            cache[rate] = split_shares(topology, sol.flow, fallback)
            solve_s += sol.build_s + sol.solve_s
            notes.append(
                f"rate {rate:.3g} pkt/step: {sol.report.message}; model build "
                f"{sol.build_s:.2f} s; max router load {sol.node_load.max():.3f} "
                "pkt/step"
            )
        shares.append(cache[rate])
        starts.append(step)
        step += n_steps
    ctrl = SplitController(entry.display_name, shares, starts, seed=scenario.seed)
    return ctrl, "; ".join(notes), solve_s


def build_controller(
    entry: ControllerEntry, topology: Topology, scenario: RoutingScenario
) -> tuple[Controller, str, float]:
    """The controller named by ``entry``, a note for the report and its setup time [s]."""
    if entry.name in ("shortest_path_hops", "shortest_path_distance"):
        t0 = time.perf_counter()
        weight = "hops" if entry.name.endswith("hops") else "distance"
        ctrl = shortest_path_controller(topology, weight, entry.display_name)
        return ctrl, f"shortest path by {weight} (networkx)", time.perf_counter() - t0
    if entry.name == "mcf":
        return mcf_controller(entry, topology, scenario)
    from gridmarl.controllers import registry

    if entry.name in registry.names():
        if entry.checkpoint is None:
            raise ScenarioError(
                f"controllers[{entry.name}]: a learned controller needs 'checkpoint'"
            )
        t0 = time.perf_counter()
        path = resolve_path(scenario, entry.checkpoint)
        policy = registry.load_policy(entry.name, path, make_env(scenario, topology), scenario)
        policy.name = entry.display_name
        ctrl = DecisionRecorder(policy, topology.n_routers, topology.max_degree)
        return (
            ctrl,
            f"learned policy {entry.checkpoint}, local observations only",
            (time.perf_counter() - t0),
        )
    raise ScenarioError(
        f"controllers: unknown routing controller {entry.name!r}; allowed: "
        "shortest_path_hops, shortest_path_distance, mcf, " + ", ".join(registry.names())
    )


#: the protocol's paired ratio (gridmarl.protocol): this KPI against this controller's, per episode
PAIRED_BASELINE = ("avg_delay_steps", "shortest_path_distance")


def split_parts(scenario: RoutingScenario, split: str) -> list[Any]:
    """``split`` ``test`` (``gridmarl.protocol``): one part, ``evaluation.test_episodes``
    traffic seeds from the test seed stream (``core.seeding``), which no training or validation
    draws."""
    from gridmarl.core.seeding import stream_seeds
    from gridmarl.protocol import SplitPart

    if split != "test":
        raise ScenarioError(f"--split {split!r}; allowed for routing: test")
    seeds = stream_seeds(scenario.seed, "test", scenario.evaluation.test_episodes)
    return [SplitPart("test seeds", scenario, seeds)] if seeds else []


def simulate(
    scenario: RoutingScenario, console: Any = None, seeds: list[int] | None = None
) -> SimulationResult:
    """Run every controller of the scenario (module docstring) on ``evaluation.episodes``
    traffic seeds (``seed``, ``seed + 1``, …), or on ``seeds`` when given."""

    def say(msg: str) -> None:
        if console is not None:
            console.print(msg)

    topo = load_topology(scenario)
    rates = scenario_rates(scenario)
    if seeds is None:
        seeds = [scenario.seed + i for i in range(scenario.evaluation.episodes)]
    results: list[ControllerResult] = []
    per_seed: list[dict[str, Any]] = []
    loads: dict[str, np.ndarray] = {}
    for entry in scenario.controllers:
        name = entry.display_name
        say(f"routing: {name} on {topo.name} ({topo.n_routers} routers), seeds {seeds}")
        t0 = time.perf_counter()
        built, err = isolated(
            lambda entry=entry: build_controller(entry, topo, scenario), console, name
        )
        if built is None:
            results.append(failed_result(name, err, _kpi_names(), time.perf_counter() - t0))
            continue
        ctrl, note, setup_s = built
        rows, wall, link, failed, ran = [], setup_s, np.zeros(topo.n_links), [], 0
        for seed in seeds:

            def episode(ctrl: Any = ctrl, seed: int = seed):
                env = make_env(scenario, topo, seed=seed, rates=rates)
                _, w = run_episode(env, ctrl, seed=seed)
                return env, w, episode_kpis(env)

            out, err = isolated(episode, console, f"{name} seed {seed}")
            if out is None:
                failed.append(f"seed {seed}: {err}")
                per_seed.append({"controller": name, "seed": seed, "error": err})
                continue
            env, w, ep = out
            wall += w
            rows += ep
            ran += 1
            per_seed += [{"controller": name, "seed": seed, **k} for k in ep]
            link += env.link_packets()[0].cpu().numpy() / env.episode_len
        if not rows:
            results.append(failed_result(name, "; ".join(failed), _kpi_names(), wall))
            continue
        loads[name] = link / ran
        results.append(
            ControllerResult(
                name=name,
                kpis=summarise(rows),
                tables={f"next_hop_{name}": ctrl.table(topo)},
                wall_s=wall,
                notes=note + (f"; mean over the {ran} seeds that ran" if failed else ""),
                error="; ".join(failed),
            )
        )
    summary = _summary(topo, scenario, seeds, results)
    figures = {"link_loads": link_load_figure(topo, loads)} if loads else {}
    return SimulationResult(
        scenario=scenario,
        controllers=results,
        headline=list(KPI_ORDER[:4]),
        tables={"kpis_per_seed": pd.DataFrame(per_seed)},
        figures=figures,
        summary=summary,
        extra_manifest={
            "topology": topo.source,
            "routers": topo.n_routers,
            "links": topo.n_links,
            "traffic_seeds": seeds,
            "topology_notes": list(topo.notes),
        },
    )


def _kpi_names() -> list[str]:
    """The KPI columns of a routing row (``summarise``'s keys), for a failed controller."""
    return [*KPI_ORDER, *(f"{n}_std" for n in KPI_ORDER)]


def _summary(
    topo: Topology, scenario: RoutingScenario, seeds: list[int], results: list[ControllerResult]
) -> str:
    lines = [
        f"Routing on **{topo.name}** ({topo.n_routers} routers, {topo.n_links // 2} links, "
        f"link delay 1-{int(topo.delay_steps.max())} steps at "
        f"{scenario.network.km_per_step:g} km/step), {scenario.traffic.episode_steps} steps, "
        f"traffic seeds {seeds}; mean ± std over the seeds.",
        "",
    ]
    if topo.notes:
        lines += ["Topology defaults applied: " + "; ".join(topo.notes) + ".", ""]
    lines += [
        "| controller | avg delay (steps) | throughput (pkt) | drops (pkt) | loops (pkt) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        k = r.kpis
        lines.append(
            f"| {r.name} | "
            + " | ".join(
                format_mean_std(k[n], k[f"{n}_std"], 2 if n == "avg_delay_steps" else 1)
                for n in KPI_ORDER[:4]
            )
            + " |"
        )
    return "\n".join(lines)
