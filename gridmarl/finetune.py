"""``gridmarl finetune``: ES fine-tuning of a trained policy (``gridmarl.controllers.es``).

:func:`finetune` takes a MATPPO checkpoint trained on the scenario (``gridmarl train``), runs
``scenario.train.es.generations`` generations of evolution strategies on the training window
and writes a run folder ``<out>/<scenario>/<UTC stamp>/`` like ``train``'s:

| file | what |
|---|---|
| ``finetune_manifest.json`` | scenario, hashes, source checkpoint, seed, ES, versions, git |
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
from gridmarl.report import git_revision

DEFAULT_VALIDATE_EVERY = 10  # [generations] between validations (and checkpoints)
KEEP_GEN_CHECKPOINTS = 5


def resume_finetune(
    run_dir: Path, scenario: Any, p_hash: str, seed: int | None, generations: int | None
) -> tuple[dict[str, Any], int, int | None]:
    """The manifest of a ``finetune`` run to resume, its seed and (unless given) its number
    of generations.

    Raises:
        ScenarioError: not a finetune run folder, another scenario, train settings or seed.
    """
    from gridmarl.run_folder import check_train_settings, open_resume_run

    needed = ("checkpoints/last.pt", "checkpoints/last.es.pt")
    manifest = open_resume_run(run_dir, "finetune_manifest.json", needed, p_hash, "finetune")
    # ES reads train.es (checked against last.es.pt) and the env's train settings
    check_train_settings(manifest, scenario, run_dir, ignore=("steps", "es", "options"))
    seed = int(manifest["seed"]) if seed is None else int(seed)
    if seed != int(manifest["seed"]):
        raise ScenarioError(f"--resume {run_dir}: the run's seed is {manifest['seed']}")
    generations = int(manifest["generations"]) if generations is None else generations
    return manifest, seed, generations


def copies_spec(make_env: Any, seed: int) -> Any:
    """The training env's ``AgentSpec``, after checking it runs copies of its episodes
    (``reset_copies``), before any run folder is made.

    Raises:
        ScenarioError: an env without ``reset_copies``.
    """
    probe = make_env(1)
    try:
        probe.reset_copies(seed, 1)
        return probe.spec
    except NotImplementedError as exc:
        raise ScenarioError(
            f"finetune: ES needs an env that runs copies of its episodes ({exc}); "
            "energy and traffic scenarios have one"
        ) from None
    finally:
        probe.close()


def load_source(source: Path, spec: Any, dev: torch.device) -> tuple[Any, Any]:
    """The registered controller of checkpoint ``source`` (by its format) and the policy read
    from it; shapes, feature names and forecast window must match the env.

    Raises:
        ScenarioError: an unknown checkpoint format, a controller without a fine-tuner, or a
            checkpoint that does not fit ``spec``.
    """
    from gridmarl.controllers import registry

    info = registry.for_checkpoint(source)
    if info.finetuner is None:
        raise ScenarioError(f"{source}: {info.name} checkpoints have no fine-tuner")
    return info, info.load_class().from_checkpoint(source, spec, device=dev)


class _Checkpointer:
    """Validation and checkpoints of a finetune run (``gen_*.pt``, ``last.pt`` + the tuner's
    state ``last.es.pt``, ``best.pt``), and the validation row / TensorBoard scalars."""

    def __init__(
        self,
        run_dir: Path,
        policy: Any,
        tuner: Any,
        validator: Any,
        writer: Any,
        per_gen: list[int],
        source: Path,
        source_meta: dict[str, Any],
        es_settings: dict[str, Any],
    ) -> None:
        from gridmarl.run_folder import best_score

        self.ck = run_dir / "checkpoints"
        self.run_dir, self.policy, self.tuner = run_dir, policy, tuner
        self.validator, self.writer, self.per_gen = validator, writer, per_gen
        self.source, self.source_meta, self.es_settings = source, source_meta, es_settings
        self.best = best_score(validator, self.ck)
        self.shown = "—"
        self.t_start = time.perf_counter()

    def agent_steps(self, g: int) -> int:
        """Agent-steps of the first ``g`` generations (generation i runs env i mod envs)."""
        k = len(self.per_gen)
        return sum(self.per_gen[i % k] for i in range(g))

    def __call__(self) -> None:
        from gridmarl.run_folder import prune_checkpoints, record_validation

        res = self.validator.evaluate(self.policy)
        self.shown = res.display
        g = self.tuner.progress().updates
        row = {
            "generation": g,
            "es_agent_steps": self.agent_steps(g),
            "wall_s": round(time.perf_counter() - self.t_start, 1),
        }
        record_validation(self.run_dir, self.writer, res, row, g)
        self.policy.meta.update(
            {
                **res.meta,
                "finetune": {
                    "method": "es",
                    "generations": g,
                    "source": str(self.source),
                    "source_meta": self.source_meta,
                    "es_agent_steps": self.agent_steps(g),
                    "es": self.es_settings,
                },
                "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
        self.policy.save(self.ck / f"gen_{g:06d}.pt")
        prune_checkpoints(self.ck, "gen_*.pt", KEEP_GEN_CHECKPOINTS)
        state = self.tuner.state()
        atomic_write(self.ck / "last.es.pt", lambda p: torch.save(state, p))
        self.policy.save(self.ck / "last.pt")
        if res.score > self.best:
            self.best = res.score
            self.policy.save(self.ck / "best.pt")


def run_generations(
    tuner: Any, envs: list[Any], generations: int, every: int, save: _Checkpointer, console: Any
) -> bool:
    """Run generations until ``generations``, checkpointing every ``every`` and at the end;
    generation g runs on ``envs[g mod len(envs)]`` (the scenario's env, then
    ``train.variants``'); returns whether the run was interrupted (Ctrl-C: the interrupted
    generation is dropped and ``last.pt`` written)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [
        TextColumn("[bold]ES[/bold]"),
        BarColumn(),
        TextColumn("generation {task.completed}/{task.total}"),
        TextColumn("return {task.fields[ret]} " + save.validator.return_unit),
        TextColumn(save.validator.label + " {task.fields[share]}"),
        TimeElapsedColumn(),
    ]
    before: dict[str, Any] | None = None
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            done = tuner.progress().updates
            task = progress.add_task(
                "es", total=generations, completed=done, ret="—", share=save.shown
            )
            while tuner.progress().updates < generations:
                tg = time.perf_counter()
                before = tuner.state()  # a copy: an interrupted generation is dropped
                env = envs[tuner.progress().updates % len(envs)]
                stats = tuner.update(tuner.collect(env, generations))
                stats["time/generation_s"] = time.perf_counter() - tg
                g = tuner.progress().updates
                for k, v in stats.items():
                    save.writer.add_scalar(k, v, g)
                if g % every == 0 or g == generations:
                    save()
                progress.update(
                    task, completed=g, ret=f"{stats['es/return_centre']:,.1f}", share=save.shown
                )
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: writing checkpoints/last.pt …[/yellow]")
        if before is not None and before["generations"] == tuner.progress().updates:
            tuner.load_state(before, "the state before the interrupted generation")
        save()
        return True
    return False


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
    """Fine-tune a trained checkpoint (its controller's fine-tuner, ES for MATPPO) on the
    scenario's training window.

    Args:
        scenario: a scenario file path or a validated scenario model.
        checkpoint: the checkpoint to start from (not needed with ``resume``).
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
    from torch.utils.tensorboard import SummaryWriter

    from gridmarl.core.training import set_torch_threads
    from gridmarl.run_folder import policy_hash, run_meta, versions
    from gridmarl.train import check_flags, domain_training, run_validator, variant_envs

    console = console or Console()
    check_flags(seed=seed, threads=threads, validate_every=validate_every)
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
        manifest, seed, generations = resume_finetune(run_dir, scenario, p_hash, seed, generations)
        source = run_dir / "checkpoints" / "last.pt"
    else:
        if checkpoint is None:
            raise ScenarioError("finetune needs --checkpoint (a trained checkpoint) or --resume")
        source = Path(checkpoint)
        if not source.exists():
            raise ScenarioError(f"--checkpoint {source}: no such file")
    seed = scenario.seed if seed is None else int(seed)
    generations = int(cfg.generations if generations is None else generations)
    if generations < 0:
        raise ScenarioError(f"--generations must be >= 0, got {generations}")
    seed_everything(seed)

    make_env = dom.train_env_factory(scenario, dev, seed)
    spec = copies_spec(make_env, seed)
    # the scenario may differ (another community size, a newer schema): said, not refused
    info, policy = load_source(source, spec, dev)
    src_hash = policy.meta.get("policy_hash")
    if resume is None and src_hash not in (None, p_hash):
        console.print(
            f"note: {source} was trained on a scenario that differs from this one (policy "
            f"hash {str(src_hash)[:12]}… vs {p_hash[:12]}…: other settings, or a schema with "
            "keys added since); ES adapts it to this scenario"
        )
    tuner = info.load_finetuner()(policy, cfg, seed)
    variants = variant_envs(scenario, dom, dev, seed, spec, type(tuner))
    set_torch_threads(threads, dom, scenario, tuner.num_envs())
    # the source's notes (its training command, evaluation figures) describe other weights
    source_meta = dict(policy.meta)
    policy.meta = run_meta(scenario, p_hash, dev)
    if resume is not None:
        es_path = run_dir / "checkpoints" / "last.es.pt"
        tuner.load_state(torch.load(es_path, map_location=dev, weights_only=True), str(es_path))
        source, source_meta = Path(manifest["source_checkpoint"]), manifest["source_meta"]
    else:
        run_dir = new_run_dir(out or "runs", scenario.name)
        manifest = {
            "method": "es",
            "controller": info.name,
            "source_checkpoint": str(source),
            "source_meta": source_meta,
            "source_agent_steps": policy.progress().agent_steps,
            "scenario": scenario.model_dump(mode="json"),
            "scenario_source": scenario.source,
            "scenario_hash": scenario_hash(scenario),
            "policy_hash": p_hash,
            "seed": seed,
            "generations": generations,
            "es": cfg.model_dump(),
            "weights_moved": tuner.dim,
            "device": str(dev),
            "threads": torch.get_num_threads(),
            "versions": versions(),
            "git": git_revision(),
            "argv": sys.argv,
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_json(run_dir / "finetune_manifest.json", manifest)
    envs = [make(tuner.num_envs()) for make in (make_env, *(m for _, _, m in variants))]
    per_gen = [tuner.agent_steps_per_generation(e) for e in envs]
    validator = run_validator(dom, scenario, run_dir, variants, console.print)
    done = tuner.progress().updates
    console.print(
        f"[bold]finetune[/bold] {info.name} on {scenario.name} by ES from {source}: "
        f"{tuner.dim:,} weights, {tuner.copies()} copies × {cfg.episodes} episodes = "
        f"{envs[0].num_envs} envs ({per_gen[0]:,} agent-steps) per generation, {generations} "
        f"generations, seed {seed} → {run_dir}"
        + (f"; generations alternate with {', '.join(v[0] for v in variants)}" if variants else "")
        + (f" (resuming at generation {done})" if resume else "")
    )
    console.print(validator.describe())

    writer = SummaryWriter(str(run_dir / "tb"), purge_step=done or None)
    save = _Checkpointer(
        run_dir, policy, tuner, validator, writer, per_gen, source, source_meta, cfg.model_dump()
    )
    if resume is None:
        save()  # generation 0: the source policy, so best.pt is never worse than it
    t0 = time.perf_counter()
    try:
        interrupted = run_generations(tuner, envs, generations, every, save, console)
    finally:
        writer.close()
        for env in envs:
            env.close()
    if interrupted:
        console.print(f"resume with: gridmarl finetune {scenario.source} --resume {run_dir}")
        return run_dir
    wall = time.perf_counter() - t0
    g = tuner.progress().updates
    final = {
        **manifest,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "generations_done": g,
        "es_agent_steps": save.agent_steps(g),
        "wall_s_last_session": round(wall, 1),
        f"best_validation_{validator.score_name}": save.best,
    }
    write_json(run_dir / "finetune_manifest.json", final)
    console.print(
        f"done: {g} generations ({save.agent_steps(g):,} agent-steps) in {wall:.0f} s; last "
        f"validation ({validator.label}) {save.shown}; checkpoints in {save.ck}"
    )
    return run_dir
