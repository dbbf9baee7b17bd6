"""``gridmarl simulate`` for ``domain: traffic``: every controller of the scenario on the same
demand seeds, through the same env, with the same KPIs.

Controllers (``controllers[].name``):

| name | what | options |
|---|---|---|
| ``fixed_time`` | design's cycle, Webster splits, busiest phase ``green_s`` (30 s) | ``green_s`` |
| ``max_pressure`` | Varaiya's max pressure every decision step | |
| ``sf_plan`` | store-and-forward splits, cycle, offsets (Pyomo/HiGHS) | see below |

``sf_plan`` options: ``period_s`` (default 300), ``cycle_s`` (60; a list = candidate common
cycles, the one of least modelled delay is run), ``offsets`` (true: optimise the offsets; false:
all intersections in step); entry key ``time_limit_s``.
A learned controller is listed as ``{name: matppo, checkpoint: PATH}`` (any name in
``gridmarl.controllers.registry``), read with ``registry.load_policy``; it must fit the grid's
observation and phase sizes.
Each controller runs once per demand seed (``seed``, ``seed + 1``, … ``demand.seeds`` of them);
its KPIs are the mean over seeds, with the standard deviation in ``<kpi>_std`` columns.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from gridmarl.config import ControllerEntry, resolve_path
from gridmarl.core.controller import Controller
from gridmarl.core.errors import ScenarioError
from gridmarl.experiment import (
    ControllerResult,
    SimulationResult,
    failed_result,
    isolated,
    run_episode,
)
from gridmarl.traffic.config import TrafficScenario
from gridmarl.traffic.env import TrafficEnv
from gridmarl.traffic.install import cityflow_build
from gridmarl.traffic.kpis import KPI_NAMES, MIN_FINISHED_SHARE
from gridmarl.traffic.roadnet import generate_demand
from gridmarl.traffic.rules import FixedTime, MaxPressure, fixed_time_green

CONTROLLERS = ("fixed_time", "max_pressure", "sf_plan")
KPI_DEFINITIONS = (
    "Average travel time is reported twice: `avg_travel_time_s` over **finished trips only**, "
    "and `avg_travel_time_all_s` **including vehicles still on the road (or waiting to enter)** "
    "at the horizon, counted until the horizon.  Both start the clock at the scheduled "
    "departure.  `finished_share`: trips finished over trips scheduled (read it beside the "
    "travel times: a jam that keeps trips from finishing shortens `avg_travel_time_s`).  "
    "`throughput_veh`: trips finished; `mean_queue_veh`: halting vehicles on an "
    "intersection's incoming lanes, averaged over steps and intersections; `mean_delay_s`: "
    "travel time minus free-flow time, finished trips.  Values are means over the demand seeds; "
    "`*_std` columns hold the standard deviation."
)


def _log(console: Any, text: str) -> None:
    if console is not None:
        console.print(text)


def build_controller(entry: ControllerEntry, env: TrafficEnv, seed: int) -> Controller:
    """The controller of ``entry`` for ``env`` (``sf_plan`` plans for demand ``seed``); raises
    ``ScenarioError`` for an unknown name or option."""
    opts = dict(entry.options)
    name = entry.name
    if name == "fixed_time":
        ctrl: Controller = FixedTime(green_s=fixed_time_green(opts.pop("green_s", 30.0)))
    elif name == "max_pressure":
        ctrl = MaxPressure()
    elif name == "sf_plan":
        from baselines_opt.traffic_sf import sf_controller

        trips = generate_demand(
            env.layout.grid, env.scenario.demand, env.scenario.traffic.horizon_s, seed
        )
        cycle = opts.pop("cycle_s", 60.0)
        ctrl, _ = sf_controller(
            env.layout,
            env.scenario,
            trips,
            name=entry.display_name,
            period_s=float(opts.pop("period_s", 300.0)),
            cycle_s=[float(c) for c in cycle] if isinstance(cycle, list) else float(cycle),
            time_limit_s=entry.time_limit_s or 60.0,
            offsets=bool(opts.pop("offsets", True)),
        )
    elif name in _learned():
        from gridmarl.controllers import registry

        if entry.checkpoint is None:
            raise ScenarioError(f"controllers[{name}]: a learned controller needs 'checkpoint'")
        path = resolve_path(env.scenario, entry.checkpoint)
        ctrl = registry.load_policy(name, path, env, env.scenario)
    else:
        raise ScenarioError(
            f"controllers: unknown traffic controller {name!r}; allowed: "
            f"{', '.join(CONTROLLERS + tuple(_learned()))}"
        )
    if opts:
        raise ScenarioError(f"controllers.{name}.options: unknown keys {sorted(opts)}")
    ctrl.name = entry.display_name
    return ctrl


def _learned() -> list[str]:
    from gridmarl.controllers import registry

    return registry.names()


def _queue_figure(series: dict[str, pd.Series]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4))  # outside pyplot's registry
    ax = fig.subplots()
    for label, s in series.items():
        ax.plot(s.index / 60.0, s.values, label=label)
    ax.set_xlabel("time [min]")
    ax.set_ylabel("halting vehicles per intersection [veh]")
    ax.set_title("Queue over time (first demand seed)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def finished_warning(label: str, shares: np.ndarray, seeds: list[int]) -> str:
    """A warning when most trips did not finish on some demand seed (finished share below
    ``MIN_FINISHED_SHARE``): the network jammed and the travel times are not to be believed;
    empty otherwise."""
    low = [(s, x) for s, x in zip(seeds, shares, strict=True) if x < MIN_FINISHED_SHARE]
    if not low:
        return ""
    worst = min(x for _, x in low)
    return (
        f"{label}: most trips did not finish on demand seeds {[s for s, _ in low]} (as few "
        f"as {worst:.0%}); the network jammed and its travel times are not to be believed"
    )


#: the protocol's paired ratio (gridmarl.protocol): this KPI against this controller's, per episode
PAIRED_BASELINE = ("avg_travel_time_s", "max_pressure")


def split_parts(scenario: TrafficScenario, split: str) -> list[Any]:
    """``split`` ``test`` (``gridmarl.protocol``): one part, ``demand.test_seeds`` demand seeds
    from the test seed stream (``core.seeding``), which no training or validation draws."""
    from gridmarl.core.seeding import stream_seeds
    from gridmarl.protocol import SplitPart

    if split != "test":
        raise ScenarioError(f"--split {split!r}; allowed for traffic: test")
    seeds = stream_seeds(scenario.seed, "test", scenario.demand.test_seeds)
    return [SplitPart("test seeds", scenario, seeds)] if seeds else []


def simulate(
    scenario: TrafficScenario, console: Any | None = None, seeds: list[int] | None = None
) -> SimulationResult:
    """Run every controller listed in ``scenario`` on ``demand.seeds`` demand seeds (``seed``,
    ``seed + 1``, …), or on ``seeds`` when given.

    Returns:
        A ``SimulationResult``: per controller the mean KPIs (first ``avg_travel_time_s``) and
        ``*_std``; ``tables`` hold ``signal_plan_<controller>`` (``time_s, intersection, phase``,
        first seed); ``figures["queue_over_time"]``; ``tables["kpis_per_seed"]``.

    Raises:
        ScenarioError: unknown controller, unusable engine, broken network, solver failure.
    """
    if scenario.cityflow_files is not None:
        return simulate_imported(scenario, console, seeds)
    entries = scenario.controllers or [ControllerEntry(name=n) for n in CONTROLLERS]
    for e in entries:
        if e.name not in CONTROLLERS and e.name not in _learned():
            raise ScenarioError(
                f"controllers: unknown traffic controller {e.name!r}; allowed: "
                f"{', '.join(CONTROLLERS + tuple(_learned()))}"
            )
    if seeds is None:
        seeds = [scenario.seed + i for i in range(scenario.demand.seeds)]
    env = TrafficEnv(scenario)
    results: list[ControllerResult] = []
    warnings: list[str] = []
    per_seed: list[dict[str, Any]] = []
    queues: dict[str, pd.Series] = {}
    try:
        for entry in entries:  # refuse an unfit checkpoint before minutes of simulation
            if entry.name in _learned():
                build_controller(entry, env, seeds[0])
        for entry in entries:
            label = entry.display_name
            rows, plan, t0 = [], None, time.perf_counter()
            failed: list[str] = []
            for seed in seeds:

                def episode(entry: ControllerEntry = entry, seed: int = seed):
                    ctrl = build_controller(entry, env, seed)
                    rec, wall = run_episode(env, ctrl, seed=seed)
                    return rec, wall, env.episode_kpis()[0]

                out, err = isolated(episode, console, f"{label} seed {seed}")
                if out is None:
                    failed.append(f"seed {seed}: {err}")
                    per_seed.append({"controller": label, "seed": seed, "error": err})
                    continue
                rec, wall, k = out
                rows.append(k)
                per_seed.append({"controller": label, "seed": seed, **k, "wall_s": wall})
                _log(
                    console,
                    f"  {label:<14} seed {seed}: avg travel time "
                    f"{k['avg_travel_time_s']:.1f} s, throughput {k['throughput_veh']:.0f} veh "
                    f"({k['finished_share']:.0%} of the trips finished)",
                )
                if plan is None:
                    plan = rec.rename(columns={"agent": "intersection"})[
                        ["time_s", "intersection", "phase"]
                    ].reset_index(drop=True)
                    queues[label] = rec.groupby("time_s")["halting_veh"].mean()
            if not rows:
                names = list(KPI_NAMES) + [f"{key}_std" for key in KPI_NAMES]
                results.append(
                    failed_result(label, "; ".join(failed), names, time.perf_counter() - t0)
                )
                continue
            arr = {key: np.array([r[key] for r in rows]) for key in rows[0]}
            kpis = {key: float(arr[key].mean()) for key in KPI_NAMES}
            kpis.update(
                {
                    f"{key}_std": float(arr[key].std(ddof=1)) if len(rows) > 1 else 0.0
                    for key in KPI_NAMES
                }
            )
            teleports = (
                f"teleports {arr['teleports_veh'].sum():.0f}"
                if not np.isnan(arr["teleports_veh"]).any()
                else f"no teleports on {scenario.engine} (a jam shows as unfinished trips)"
            )
            notes = (
                f"{len(seeds)} demand seeds {seeds}; trips scheduled "
                f"{arr['trips_scheduled_veh'].mean():.0f} per seed; {teleports}"
            )
            low = finished_warning(label, arr["finished_share"], seeds)
            if low:
                warnings.append(low)
                notes += f"; **{low}**"
                _log(console, f"[bold red]warning:[/bold red] {low}")
            if failed:
                notes += f"; mean over the {len(rows)} seeds that ran"
            results.append(
                ControllerResult(
                    name=label,
                    kpis=kpis,
                    tables={f"signal_plan_{label}": plan},
                    wall_s=time.perf_counter() - t0,
                    notes=notes,
                    error="; ".join(failed),
                )
            )
    finally:
        env.close()
    return SimulationResult(
        scenario=scenario,
        controllers=results,
        headline=list(KPI_NAMES),
        tables={"kpis_per_seed": pd.DataFrame(per_seed)},
        figures={"queue_over_time": _queue_figure(queues)},
        summary=(
            "".join(f"**Warning: {w}**\n\n" for w in warnings)
            + f"{scenario.grid.rows} x {scenario.grid.cols} signalised grid on "
            f"{scenario.engine}, {scenario.traffic.horizon_s} s, decisions every "
            f"{scenario.traffic.decision_s} s.\n\n" + KPI_DEFINITIONS
        ),
        extra_manifest={
            "engine": scenario.engine,
            **({"cityflow_build": cityflow_build()} if scenario.engine == "cityflow" else {}),
            "demand_seeds": seeds,
            "warnings": warnings,
        },
    )


IMPORTED_CONTROLLERS = ("fixed_time", "max_pressure")


def simulate_imported(
    scenario: TrafficScenario, console: Any | None = None, seeds: list[int] | None = None
) -> SimulationResult:
    """``simulate`` for a scenario with ``cityflow_files``: each controller
    (``IMPORTED_CONTROLLERS``) on the imported network, on the scenario's engine, once per seed
    (the engine's random seed; the flows are the file's)."""
    import shutil
    import tempfile
    from pathlib import Path

    from gridmarl.traffic.cityflow_import import read_cityflow_files, run_imported

    files = scenario.cityflow_files
    assert files is not None
    tr = scenario.traffic
    net = read_cityflow_files(
        resolve_path(scenario, files.roadnet), resolve_path(scenario, files.flow), tr.horizon_s
    )
    entries = scenario.controllers or [ControllerEntry(name=n) for n in IMPORTED_CONTROLLERS]
    for e in entries:
        if e.name not in IMPORTED_CONTROLLERS or e.options:
            raise ScenarioError(
                f"controllers: {e.name!r} (options {dict(e.options)}) on an imported CityFlow "
                f"network; allowed: {', '.join(IMPORTED_CONTROLLERS)} without options"
            )
    if seeds is None:
        seeds = [scenario.seed + i for i in range(scenario.demand.seeds)]
    results, per_seed = [], []
    for e in entries:
        rows, t0 = [], time.perf_counter()
        for seed in seeds:
            folder = Path(tempfile.mkdtemp(prefix="gridmarl_import_"))
            try:
                k = run_imported(
                    net, scenario.engine, e.name, folder, tr.horizon_s, tr.decision_s,
                    tr.yellow_s, seed,
                )  # fmt: skip
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            rows.append(k)
            per_seed.append({"controller": e.display_name, "seed": seed, **k})
            _log(
                console,
                f"  {e.display_name:<14} seed {seed}: avg travel time "
                f"{k['avg_travel_time_s']:.1f} s, throughput {k['throughput_veh']:.0f} veh",
            )
        kpis = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
        results.append(
            ControllerResult(
                name=e.display_name,
                kpis=kpis,
                wall_s=time.perf_counter() - t0,
                notes=f"imported {net.roadnet_path.name} + {net.flow_path.name}; seeds {seeds}",
            )
        )
    return SimulationResult(
        scenario=scenario,
        controllers=results,
        headline=["avg_travel_time_s", "throughput_veh", "finished_share"],
        tables={"kpis_per_seed": pd.DataFrame(per_seed)},
        summary=(
            f"Imported CityFlow network {net.roadnet_path} ({len(net.signals)} signals, "
            f"{len(net.trips)} trips in the flow file) on {scenario.engine}, "
            f"{tr.horizon_s} s, decisions every {tr.decision_s} s."
        ),
        extra_manifest={"engine": scenario.engine, "demand_seeds": seeds},
    )
