"""The ``gridmarl`` command line (Typer + rich).

Exit codes: 0 success, 1 internal error, 2 bad input (scenario, flag, file), 3 partial
(``simulate`` wrote its run folder but some controller or episode failed: the failed rows of
``kpis.csv`` carry the error), 130 interrupted.
A bad input prints one clear message naming the file, key and what is allowed — never a
traceback (set ``GRIDMARL_DEBUG=1`` to see one for an internal error).
"""

from __future__ import annotations

import json
import os
import sys
import time
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gridmarl.config import check_for_simulate, load_scenario, scenario_adapter
from gridmarl.core.errors import ScenarioError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Multi-agent RL scheduling for smart infrastructure, measured against the MILP optimum.",
)
# Piped output (CI logs, files) gets a wide table instead of rich's 80-column default.
console = Console() if sys.stdout.isatty() else Console(width=200)
err_console = Console(stderr=True, soft_wrap=True)

ScenarioArg = Annotated[Path, typer.Argument(help="scenario YAML file", show_default=False)]
THREADS_HELP = "CPU threads for torch (default: the cores the env's worker processes leave)"
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="override a scenario key: dotted.key=value (repeatable), e.g. seed=3"
    ),
]


class UsageError(Exception):
    """Bad input found by a command (exit code 2)."""


def _load(path: Path, overrides: list[str] | None):
    return load_scenario(path, overrides or [])


def _check_writable(out: Path) -> None:
    """Fail fast (exit 2) when the output folder cannot be written, before any long run."""
    import tempfile

    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".gridmarl-write-check-"):
            pass
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None


def _prepare_learning(path: Path, overrides: list[str] | None, out: Path, device: str):
    """The scenario of ``train`` / ``finetune``, after checking ``--device`` and ``--out``."""
    from gridmarl.core.seeding import resolve_device

    try:
        resolve_device(device)
    except ValueError as exc:
        raise UsageError(f"--device {device}: {exc}") from None
    sc = _load(path, overrides)
    _check_writable(out)
    return sc


def _simulator(domain: str):
    """The simulate module of a registered domain (``gridmarl.domains``)."""
    from gridmarl import domains

    try:
        return import_module(domains.get(domain).simulator)
    except ModuleNotFoundError as exc:
        raise UsageError(
            f"domain {domain!r} is not available in this build ({exc.name} is missing)"
        ) from None


UNITS = {
    "_usd": "$",
    "_kwh": "kWh",
    "_kw": "kW",
    "_kg": "kg",
    "_pct": "%",
    "_c_h": "°C·h",
    "_s": "s",
    "_veh": "veh",
    "_pkt": "pkt",
    "_steps": "steps",
}


def column_label(name: str) -> str:
    """``peak_import_kw`` -> ``peak import\n[kW]`` for narrow terminal tables."""
    for suffix, unit in sorted(UNITS.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(suffix):
            return f"{name[: -len(suffix)].replace('_', ' ')}\n[{unit}]"
    return name.replace("_", " ")


def kpi_rich_table(result: Any) -> Table:
    """The terminal table of a SimulationResult: headline KPIs per controller."""
    from gridmarl.report import format_value

    df = result.kpi_table()
    cols = ["controller"] + [c for c in result.headline if c in df.columns]
    table = Table(title=f"{result.scenario.name}", show_lines=False)
    for c in cols:
        table.add_column(
            escape(column_label(c)),
            justify="left" if c == "controller" else "right",
            no_wrap=c == "controller",
        )
    for _, row in df.iterrows():
        table.add_row(*[format_value(row[c]) for c in cols])
    return table


@app.command()
def simulate(
    scenario: ScenarioArg,
    out: Annotated[Path, typer.Option(help="root folder of run folders")] = Path("runs"),
    set_: SetOpt = None,
    split: Annotated[
        str,
        typer.Option(
            help="evaluate: the scenario's evaluation window / seeds (default); test: every "
            "test window (energy) or test seed (traffic, routing), with means, std and 95 % "
            "intervals (docs/protocol.md); energy also dev, validate"
        ),
    ] = "evaluate",
) -> None:
    """Run every controller the scenario lists over its evaluation window and write a run folder
    (KPIs, schedules as CSV, plots, comparison.md, manifest.json)."""
    import torch

    from gridmarl.protocol import SPLITS, run_split
    from gridmarl.report import write_run

    if split not in SPLITS:
        raise UsageError(f"--split {split!r}; allowed: {', '.join(SPLITS)}")

    sc = _load(scenario, set_)
    check_for_simulate(sc)
    _check_writable(out)
    sim = _simulator(sc.domain)
    # Policies act on one episode at a time (tiny tensors): one intra-op thread is the fastest,
    # and it keeps a busy machine from collapsing under OpenMP oversubscription (measured: a
    # 168-step MATPPO episode 0.15 s on one thread, 17 s with two threads beside another simulate).
    # HiGHS and the SUMO workers have their own threads.
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    if split == "evaluate":
        result = sim.simulate(sc, console=console)
    else:
        result = run_split(sim, sc, split, console=console)
    run_dir = write_run(result, out)
    console.print(kpi_rich_table(result))
    if result.summary:
        console.print(result.summary)
    failures = result.failures()
    if failures:
        from gridmarl.experiment import PARTIAL_EXIT_CODE

        for f in failures:
            err_console.print(f"[bold red]failed:[/bold red] {escape(f)}", highlight=False)
        console.print(
            f"[yellow]wrote[/yellow] {run_dir} with {len(failures)} failure(s) "
            f"({time.perf_counter() - t0:.1f} s); exit code {PARTIAL_EXIT_CODE} (partial)"
        )
        raise typer.Exit(PARTIAL_EXIT_CODE)
    console.print(f"[green]wrote[/green] {run_dir}  ({time.perf_counter() - t0:.1f} s)")


@app.command()
def train(
    scenario: ScenarioArg,
    controller: Annotated[
        str | None, typer.Option(help="learned controller to train (default: matppo)")
    ] = None,
    device: Annotated[str, typer.Option(help="auto (GPU when present) | cpu | cuda")] = "auto",
    steps: Annotated[
        int | None,
        typer.Option(
            help="agent-steps budget (env steps x agents); default: the scenario's train.steps"
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="default: the scenario's seed")] = None,
    out: Annotated[Path, typer.Option(help="root folder of run folders")] = Path("runs"),
    resume: Annotated[
        Path | None,
        typer.Option(help="run folder of an earlier train to continue from its last checkpoint"),
    ] = None,
    warm_start: Annotated[
        str | None,
        typer.Option(
            help="clone a teacher first: energy rule_based | no_control | milp (MILP "
            "schedules of training episodes); routing shortest_path_distance | "
            "shortest_path_hops | mcf; traffic max_pressure | fixed_time"
        ),
    ] = None,
    warm_start_epochs: Annotated[
        int, typer.Option(help="passes of the warm start over the teacher's episodes")
    ] = 4,
    warm_start_keep_prior: Annotated[
        bool,
        typer.Option(
            help="where the env declares a default action (energy: community.ev.action_prior), "
            "the warm start keeps it instead of the teacher's action"
        ),
    ] = False,
    validate_every: Annotated[
        int | None, typer.Option(help="PPO updates between validations and checkpoints")
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(
            help="start from this checkpoint's weights (same learner and network sizes; "
            "local features it lacks start with zero weight); ignored with --resume"
        ),
    ] = None,
    threads: Annotated[int | None, typer.Option(help=THREADS_HELP)] = None,
    nproc: Annotated[
        int | None,
        typer.Option(
            help="data-parallel processes on this machine (starts torchrun; docs/scaling.md)"
        ),
    ] = None,
    set_: SetOpt = None,
) -> None:
    """Train a learned controller on the scenario (energy: the training window, validated against
    the MILP; routing: vs shortest path; traffic: vs MaxPressure); checkpoints are written
    atomically and --resume continues."""
    from gridmarl.train import check_flags
    from gridmarl.train import train as run_training

    check_flags(seed, threads, validate_every, steps, warm_start_epochs)
    if nproc is not None and nproc < 1:
        raise UsageError(f"--nproc {nproc}: allowed: 1 or more processes")
    sc = _prepare_learning(scenario, set_, out, device)
    if nproc is not None and nproc > 1:
        raise typer.Exit(launch_torchrun(nproc))
    run_dir = run_training(
        sc,
        controller=controller,
        device=device,
        steps=steps,
        seed=seed,
        out=out,
        resume=resume,
        console=console,
        validate_every=validate_every,
        threads=threads,
        warm_start=warm_start,
        warm_start_epochs=warm_start_epochs,
        warm_start_keep_prior=warm_start_keep_prior,
        init_from=init_from,
    )
    if os.environ.get("RANK", "0") == "0":  # one line, from rank 0, under torchrun
        console.print(f"[green]trained[/green] {run_dir}")


def launch_torchrun(nproc: int) -> int:
    """Run this ``gridmarl train`` command again as ``nproc`` data-parallel processes on this
    machine (``torchrun --standalone``); returns their exit code."""
    import subprocess

    argv, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            argv.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += [f"--nproc-per-node={nproc}", "-m", "gridmarl", *argv]
    console.print(f"[bold]torchrun[/bold] {nproc} processes: {' '.join(cmd[3:])}")
    return subprocess.run(cmd).returncode


@app.command()
def finetune(
    scenario: ScenarioArg,
    checkpoint: Annotated[
        Path | None, typer.Option(help="MATPPO checkpoint trained on this scenario")
    ] = None,
    generations: Annotated[
        int | None, typer.Option(help="ES generations; default: the scenario's train.es")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda | auto")] = "cpu",
    seed: Annotated[int | None, typer.Option(help="default: the scenario's seed")] = None,
    out: Annotated[Path, typer.Option(help="root folder of run folders")] = Path("runs"),
    resume: Annotated[
        Path | None,
        typer.Option(help="run folder of an earlier finetune to continue from its last checkpoint"),
    ] = None,
    validate_every: Annotated[
        int | None, typer.Option(help="generations between validations and checkpoints")
    ] = None,
    threads: Annotated[int | None, typer.Option(help=THREADS_HELP)] = None,
    set_: SetOpt = None,
) -> None:
    """Fine-tune a trained MATPPO policy by evolution strategies on the deterministic team
    return of the training data (energy, traffic), validated like train; checkpoints are
    written atomically and --resume continues."""
    from gridmarl.finetune import finetune as run_finetune
    from gridmarl.train import check_flags

    check_flags(seed=seed, threads=threads, validate_every=validate_every)
    sc = _prepare_learning(scenario, set_, out, device)
    run_dir = run_finetune(
        sc,
        checkpoint=checkpoint,
        device=device,
        generations=generations,
        seed=seed,
        out=out,
        resume=resume,
        console=console,
        validate_every=validate_every,
        threads=threads,
    )
    console.print(f"[green]fine-tuned[/green] {run_dir}")


@app.command()
def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="sweep YAML file", show_default=False)],
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to join (auto, HOST:6379, ray://HOST:10001); default: "
            "RAY_ADDRESS, else a local Ray on this machine's cores"
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="output folder (default: sweeps/<sweep name>)")
    ] = None,
) -> None:
    """Run scenarios x --set variants x seeds x controllers, each cell a Ray task with its own
    run folder, and write sweep.csv / sweep.md (mean, std, 95 % intervals, ratios to the
    baseline); a re-run skips finished cells.  Exit code 3 (partial) when a cell failed: the
    others finish and every table is written first."""
    from gridmarl.experiment import PARTIAL_EXIT_CODE
    from gridmarl.sweep import run_sweep

    if out is not None:
        _check_writable(out)
    outcome = run_sweep(sweep_file, out=out, address=address, console=console)
    if outcome.failed:
        raise typer.Exit(PARTIAL_EXIT_CODE)


@app.command()
def attention(
    scenario: ScenarioArg,
    checkpoint: Annotated[
        Path, typer.Option(help="an attention learner's (HAMA) checkpoint for the scenario")
    ],
    step: Annotated[int, typer.Option(help="the episode step whose attention is written")] = 0,
    out: Annotated[Path, typer.Option(help="folder the CSV tables and the plot go to")] = Path(
        "runs/attention"
    ),
    seed: Annotated[int | None, typer.Option(help="episode seed; default: the scenario's")] = None,
    set_: SetOpt = None,
) -> None:
    """Write a learner's inter-agent and inter-group attention weights (HAMA's) at one step of an
    episode of the scenario's training env (CSV tables and a PNG, as the HAMA paper's Figure 5).
    Any learner with an ``attention`` method (and a ``view``) qualifies."""
    import torch

    from gridmarl import domains
    from gridmarl.attention import export_attention
    from gridmarl.controllers import registry

    sc = _load(scenario, set_)
    info = registry.for_checkpoint(checkpoint)
    learner = info.load_class()
    if not callable(getattr(learner, "attention", None)):
        raise UsageError(f"--checkpoint {checkpoint}: a {info.name} checkpoint has no attention")
    torch.set_num_threads(1)
    env = domains.get(sc.domain).train_env_factory(sc, torch.device("cpu"), sc.seed)(1)
    try:
        policy = registry.load_policy(info.name, checkpoint, env, sc)
        if not 0 <= step < env.episode_len:
            raise UsageError(f"--step {step}; allowed: 0 … {env.episode_len - 1}")
        paths = export_attention(policy, env, step, out, sc.seed if seed is None else seed)
    finally:
        env.close()
    for p in paths:
        console.print(f"[green]wrote[/green] {p}")


@app.command()
def validate(
    scenario: ScenarioArg,
    set_: SetOpt = None,
    schema: Annotated[
        bool, typer.Option("--schema", help="print the JSON Schema of scenario files and exit")
    ] = False,
) -> None:
    """Check a scenario file (keys, types, finite numbers, ranges, data files, windows, sizes,
    controllers and their checkpoints) without running it: what simulate refuses, validate
    refuses."""
    if schema:
        print(json.dumps(scenario_adapter().json_schema(by_alias=True), indent=2))
        return
    sc = _load(scenario, set_)
    check_for_simulate(sc)
    names = ", ".join(c.display_name for c in sc.controllers) or "none"
    console.print(
        f"[green]ok[/green] {scenario}: {sc.domain} scenario {sc.name!r}, seed {sc.seed}"
        f", controllers: {names}"
    )


@app.command()
def doctor() -> None:
    """Report versions, the HiGHS solver, CUDA, SUMO and CityFlow availability."""
    from gridmarl.report import package_versions

    table = Table(title="gridmarl doctor")
    table.add_column("component")
    table.add_column("status")
    for k, v in package_versions().items():
        table.add_row(k, v)
    try:
        import highspy

        h = highspy.Highs()
        ver = f"{h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"
        table.add_row("HiGHS solver", f"ok ({ver})")
    except Exception as exc:  # noqa: BLE001 - report, never crash
        table.add_row("HiGHS solver", f"unavailable: {exc}")
    import torch

    cuda = (
        f"ok ({torch.cuda.get_device_name(0)})"
        if torch.cuda.is_available()
        else "not available (training runs on CPU)"
    )
    table.add_row("CUDA", cuda)
    try:
        engines = import_module("gridmarl.traffic.engines").engine_status()
    except Exception as exc:  # noqa: BLE001
        engines = {"SUMO": f"unknown ({exc})", "CityFlow": "unknown"}
    for k, v in engines.items():
        table.add_row(k, str(v))
    console.print(table)


def main() -> None:
    """Console entry point: maps bad input to exit code 2 and hides tracebacks."""
    try:
        # standalone_mode=False: click returns the code of a ``typer.Exit`` instead of exiting
        code = app(standalone_mode=False)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except (ScenarioError, UsageError) as exc:
        # escaped: keys such as controllers[matppo] are text, not rich markup
        err_console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted; completed runs are kept, the current one was not written")
        sys.exit(130)
    except Exception as exc:
        # Typer's (vendored click) usage errors know how to show themselves and their exit code.
        if callable(getattr(exc, "show", None)) and isinstance(
            getattr(exc, "exit_code", None), int
        ):
            exc.show()
            sys.exit(exc.exit_code)
        if os.environ.get("GRIDMARL_DEBUG"):
            raise
        err_console.print(
            f"[bold red]internal error:[/bold red] {type(exc).__name__}: {escape(str(exc))}\n"
            "(set GRIDMARL_DEBUG=1 for a traceback)",
            highlight=False,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
