"""``gridmarl finetune``: ES fine-tuning of a trained policy (``gridmarl.controllers.es``).

:func:`finetune` takes a MATPPO checkpoint trained on the scenario (``gridmarl train``), runs
``scenario.train.es.generations`` generations of evolution strategies on the training window
and writes a run folder ``<out>/<scenario>/<UTC stamp>/`` like ``train``'s:

| file | what |
|---|---|
| ``finetune_manifest.json`` | scenario, hashes, source checkpoint, seed, ES settings, versions |
| ``checkpoints/gen_<generation>.pt`` + ``.json`` | periodic MATPPO checkpoints (newest 5 kept) |
| ``checkpoints/last.pt`` + ``.json`` + ``last.es.pt`` | the newest, and the ES state to resume |
| ``checkpoints/best.pt`` + ``.json`` | the best on validation (generation 0 included) |
| ``validation.csv`` | per validation: generation, agent-steps, wall [s], the domain's KPIs |
| ``tb/`` | TensorBoard scalars |

The checkpoints are ordinary MATPPO checkpoints (only the actor's tail weights differ from the
source), so ``simulate`` lists them as ``{name: matppo, checkpoint: ...}``; their sidecar
records ``finetune`` (method, generations, source).  Every file is written atomically; killing
the process loses the generations since the last checkpoint, and ``resume=RUN_DIR`` continues
from ``checkpoints/last.pt`` and ``last.es.pt`` — bit-identical to an uninterrupted run, since
every generation's random draws are a function of the seed and the generation index.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch

from gridmarl.config import load_scenario, scenario_hash
from gridmarl.core.errors import ScenarioError
from gridmarl.core.io import atomic_write, new_run_dir, write_json
from gridmarl.core.seeding import resolve_device, seed_everything

DEFAULT_VALIDATE_EVERY = 10  # [generations] between validations (and checkpoints)
KEEP_GEN_CHECKPOINTS = 5


def finetune(
    scenario: Any,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    generations: int | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    console: Any = None,
    validate_every: int | None = None,
    threads: int | None = None,
    overrides: list[str] | None = None,
) -> Path:
    """Fine-tune a MATPPO checkpoint by ES on the scenario's training window.

    Args:
        scenario: a scenario file path or a validated scenario model.
        checkpoint: the MATPPO checkpoint to start from (not needed with ``resume``).
        device: ``cpu``, ``cuda`` or ``auto``.
        generations: total ES generations (default ``scenario.train.es.generations``; on
            resume: the run's).
        seed: seeds the perturbations and episodes (default ``scenario.seed``).
        out: root folder of runs (default ``runs``).
        resume: a ``finetune`` run folder; continues from its ``checkpoints/last.pt``.
        console: a ``rich.console.Console``.
        validate_every: generations between validations + checkpoints (default 10).
        threads: ``torch.set_num_threads`` (default: torch's choice, less the cores the env's
            worker processes need, ``core.training.set_torch_threads``).
        overrides: ``--set key=value`` items applied when ``scenario`` is a path.

    Raises:
        ScenarioError: a missing or incompatible checkpoint (other weight shapes, feature
            names or forecast window), a run folder that is not a finetune run or was started
            on another scenario, or an env that cannot run ES.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from torch.utils.tensorboard import SummaryWriter

    from gridmarl.controllers.es import ESFinetuner
    from gridmarl.controllers.matppo import MATPPO
    from gridmarl.core.training import set_torch_threads
    from gridmarl.train import (
        best_score,
        check_train_settings,
        domain_training,
        open_resume_run,
        policy_hash,
        prune_checkpoints,
        record_validation,
        run_meta,
        versions,
    )

    console = console or Console()
    if isinstance(scenario, str | Path):
        scenario = load_scenario(scenario, overrides)
    dom = domain_training(scenario)
    dev = resolve_device(device)
    p_hash = policy_hash(scenario)
    cfg = scenario.train.es
    every = int(validate_every or DEFAULT_VALIDATE_EVERY)
    if every < 1:
        raise ScenarioError(f"--validate-every must be >= 1, got {every}")

    manifest: dict[str, Any] = {}
    if resume is not None:
        run_dir = Path(resume)
        source = run_dir / "checkpoints" / "last.pt"
        es_path = run_dir / "checkpoints" / "last.es.pt"
        needed = ("checkpoints/last.pt", "checkpoints/last.es.pt")
        manifest = open_resume_run(run_dir, "finetune_manifest.json", needed, p_hash, "finetune")
        # ES reads train.es (checked against last.es.pt) and the env's train settings
        check_train_settings(manifest, scenario, run_dir, ignore=("steps", "es", "options"))
        seed = int(manifest["seed"]) if seed is None else int(seed)
        if seed != int(manifest["seed"]):
            raise ScenarioError(f"--resume {run_dir}: the run's seed is {manifest['seed']}")
        generations = int(manifest["generations"]) if generations is None else generations
    else:
        if checkpoint is None:
            raise ScenarioError("finetune needs --checkpoint (a MATPPO checkpoint) or --resume")
        source = Path(checkpoint)
        if not source.exists():
            raise ScenarioError(f"--checkpoint {source}: no such file")
    seed = scenario.seed if seed is None else int(seed)
    generations = int(cfg.generations if generations is None else generations)
    if generations < 0:
        raise ScenarioError(f"--generations must be >= 0, got {generations}")
    seed_everything(seed)

    make_env = dom.train_env_factory(scenario, dev, seed)
    probe = make_env(1)
    spec = probe.spec
    try:  # fail before any run folder is made
        probe.reset_copies(seed, 1)
    except NotImplementedError as exc:
        raise ScenarioError(
            f"finetune: ES needs an env that runs copies of its episodes ({exc}); "
            "energy and traffic scenarios have one"
        ) from None
    finally:
        probe.close()
    # shapes, feature names and forecast window must match (from_checkpoint refuses others);
    # the scenario may differ (another community size, a newer schema): said, not refused
    policy = MATPPO.from_checkpoint(source, spec, device=dev)
    src_hash = policy.meta.get("policy_hash")
    if resume is None and src_hash not in (None, p_hash):
        console.print(
            f"note: {source} was trained on a scenario that differs from this one (policy "
            f"hash {str(src_hash)[:12]}… vs {p_hash[:12]}…: other settings, or a schema with "
            "keys added since); ES adapts it to this scenario"
        )
    es = ESFinetuner(policy, cfg, seed)
    set_torch_threads(threads, dom, scenario, es.num_envs())
    # the source's notes (its training command, evaluation figures) describe other weights
    source_meta = dict(policy.meta)
    policy.meta = run_meta(scenario, p_hash, dev)
    if resume is not None:
        es.load_state(torch.load(es_path, map_location=dev, weights_only=True), str(es_path))
        source, source_meta = Path(manifest["source_checkpoint"]), manifest["source_meta"]
    else:
        run_dir = new_run_dir(out or "runs", scenario.name)
        manifest = {
            "method": "es",
            "controller": "matppo",
            "source_checkpoint": str(source),
            "source_meta": source_meta,
            "source_agent_steps": policy.agent_steps,
            "scenario": scenario.model_dump(mode="json"),
            "scenario_source": scenario.source,
            "scenario_hash": scenario_hash(scenario),
            "policy_hash": p_hash,
            "seed": seed,
            "generations": generations,
            "es": cfg.model_dump(),
            "weights_moved": es.dim,
            "device": str(dev),
            "threads": torch.get_num_threads(),
            "versions": versions(),
            "argv": sys.argv,
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_json(run_dir / "finetune_manifest.json", manifest)
    env = make_env(es.num_envs())
    per_gen = es.agent_steps_per_generation(env)
    validator = dom.make_validator(scenario, run_dir, say=console.print)
    console.print(
        f"[bold]finetune[/bold] matppo on {scenario.name} by ES from {source}: {es.dim:,} "
        f"weights, {es.copies()} copies × {cfg.episodes} episodes = {env.num_envs} envs "
        f"({per_gen:,} agent-steps) per generation, {generations} generations, seed {seed} "
        f"→ {run_dir}" + (f" (resuming at generation {es.generations})" if resume else "")
    )
    console.print(validator.describe())

    ck = run_dir / "checkpoints"
    best = best_score(validator, ck)
    writer = SummaryWriter(str(run_dir / "tb"), purge_step=es.generations or None)
    t_start = time.perf_counter()
    shown = {"share": "—"}

    def checkpoint() -> None:
        nonlocal best
        res = validator.evaluate(policy)
        shown["share"] = res.display
        g = es.generations
        row = {
            "generation": g,
            "es_agent_steps": g * per_gen,
            "wall_s": round(time.perf_counter() - t_start, 1),
        }
        record_validation(run_dir, writer, res, row, g)
        policy.meta.update(
            {
                **res.meta,
                "finetune": {
                    "method": "es",
                    "generations": g,
                    "source": str(source),
                    "source_meta": source_meta,
                    "es_agent_steps": g * per_gen,
                    "es": cfg.model_dump(),
                },
                "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
        policy.save(ck / f"gen_{g:06d}.pt")
        prune_checkpoints(ck, "gen_*.pt", KEEP_GEN_CHECKPOINTS)
        state = es.state()
        atomic_write(ck / "last.es.pt", lambda p: torch.save(state, p))
        policy.save(ck / "last.pt")
        if res.score > best:
            best = res.score
            policy.save(ck / "best.pt")

    if resume is None:
        checkpoint()  # generation 0: the source policy, so best.pt is never worse than it
    columns = [
        TextColumn("[bold]ES[/bold]"),
        BarColumn(),
        TextColumn("generation {task.completed}/{task.total}"),
        TextColumn("return {task.fields[ret]} " + validator.return_unit),
        TextColumn(validator.label + " {task.fields[share]}"),
        TimeElapsedColumn(),
    ]
    t0 = time.perf_counter()
    before: dict[str, Any] | None = None
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(
                "es", total=generations, completed=es.generations, ret="—", share=shown["share"]
            )
            while es.generations < generations:
                tg = time.perf_counter()
                before = es.state()  # a copy: an interrupted generation is dropped
                stats = es.generation(env)
                stats["time/generation_s"] = time.perf_counter() - tg
                for k, v in stats.items():
                    writer.add_scalar(k, v, es.generations)
                if es.generations % every == 0 or es.generations == generations:
                    checkpoint()
                progress.update(
                    task,
                    completed=es.generations,
                    ret=f"{stats['es/return_centre']:,.1f}",
                    share=shown["share"],
                )
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: writing checkpoints/last.pt …[/yellow]")
        if before is not None and before["generations"] == es.generations:
            es.load_state(before, "the state before the interrupted generation")
        checkpoint()
        writer.close()
        env.close()
        console.print(f"resume with: gridmarl finetune {scenario.source} --resume {run_dir}")
        return run_dir
    writer.close()
    env.close()
    wall = time.perf_counter() - t0
    final = {
        **manifest,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "generations_done": es.generations,
        "es_agent_steps": es.generations * per_gen,
        "wall_s_last_session": round(wall, 1),
        f"best_validation_{validator.score_name}": best,
    }
    write_json(run_dir / "finetune_manifest.json", final)
    console.print(
        f"done: {es.generations} generations ({es.generations * per_gen:,} agent-steps) in "
        f"{wall:.0f} s; last validation ({validator.label}) {shown['share']}; checkpoints in {ck}"
    )
    return run_dir
