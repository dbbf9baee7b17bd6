"""``gridmarl train``: train a learned controller on a scenario (any registered domain).

:func:`train` is a short driver over the helpers below; ``gridmarl.cli`` maps the flags onto
it.  It speaks only the ``Learner`` protocol (``gridmarl.core.learner``) to the controller,
which it looks up in ``gridmarl.controllers.registry``, and only the ``Domain`` object
(``gridmarl.domains``) to the domain: the training env, the validation KPI and its baselines,
the teachers ``--warm-start`` may clone (interface: ``gridmarl.core.training``).  A controller
whose capability flags the domain does not fit is refused (``learner_info``).

Run folder ``<out>/<scenario>/<UTC stamp>/`` (``out`` defaults to ``runs``):

| file | what |
|---|---|
| ``train_manifest.json`` | scenario (as validated), hashes, seed, device, budget, versions, git |
| ``checkpoints/step_<agent-steps>.pt`` + ``.json`` | periodic checkpoints + JSON (newest 5 kept) |
| ``checkpoints/last.pt`` + ``.json`` | the newest checkpoint (what ``resume`` reads) |
| ``checkpoints/best.pt`` + ``.json`` | the best on the validation episodes so far |
| ``validation.csv`` | one row per validation: agent-steps, updates, wall [s], the domain's KPIs |
| ``validation_reference.json`` | the domain's baselines on the validation episodes |
| ``tb/`` | TensorBoard scalars (``tensorboard --logdir runs``) |

Every file is written atomically (temp file + rename).  Killing the process loses at most the
updates since the last checkpoint; ``train(..., resume=RUN_DIR)`` continues from
``checkpoints/last.pt`` with the optimiser, normalisers, RNG streams and step counter restored
(episodes restart from fresh env resets, so a resumed curve is not bit-identical to an
uninterrupted one).

Validation, per domain (the deterministic policy; ``best.pt`` = the best score so far):

* energy: the whole validation window (B = 1, float64, the accounting env of ``simulate``);
  cost [$] vs no_control, rule_based and the perfect-foresight MILP (solved once, cached beside
  the run folders as ``.validation_reference_<validation hash>.json``, keyed by the validation
  window and the community only: ``gridmarl.energy.training.validation_hash``); score = share
  of optimal savings = (C_no_control − C_policy) / (C_no_control − C_MILP).
* routing: ``evaluation.episodes`` episodes of held-out traffic; avg delay [steps] and
  throughput [pkt] vs shortest path (distance, hops); score = −delay × max(1, throughput_SP /
  throughput).
* traffic: one held-out demand seed; avg travel time [s] (finished trips / all vehicles) vs
  MaxPressure; score = −avg travel time including the vehicles still on the road.

Checkpoint compatibility: the sidecar records ``scenario_hash`` (the full validated scenario)
and ``policy_hash`` (the scenario without its ``controllers`` list and ``train`` block, i.e.
what the policy was trained on), so listing the checkpoint in the scenario file does not
invalidate it.  ``resume`` refuses a run whose ``policy_hash`` differs from the scenario's, and
one started with other ``train`` settings (credit, shaping, episode length, options; the budget
may change): ``check_train_settings``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from gridmarl.config import file_stem, load_scenario, scenario_hash
from gridmarl.core.errors import ScenarioError
from gridmarl.core.io import new_run_dir, write_json
from gridmarl.core.learner import Learner
from gridmarl.core.seeding import resolve_device, seed_everything, stream_seed
from gridmarl.core.training import (
    MixedValidator,
    ValidationResult,
    Validator,
    set_torch_threads,
)
from gridmarl.report import git_revision
from gridmarl.run_folder import (
    best_score,
    check_train_settings,
    open_resume_run,
    policy_hash,
    prune_checkpoints,
    record_validation,
    run_meta,
    utc_now,
    versions,
)

if TYPE_CHECKING:
    from gridmarl.controllers.common.distributed import DataParallel
    from gridmarl.controllers.registry import ControllerInfo
    from gridmarl.core.domain import Domain

DEFAULT_VALIDATE_EVERY = 10  # [updates] between validations (and checkpoints)

# Periodic checkpoints kept per run (best.pt and last.pt are always kept) [-].
KEEP_STEP_CHECKPOINTS = 5


def domain_training(scenario: Any) -> Domain:
    """The registered domain of ``scenario`` (``gridmarl.domains``), whose training hooks the
    drivers call.

    Raises:
        ScenarioError: a domain that is not registered.
    """
    from gridmarl import domains

    return domains.of(scenario)


def learner_info(controller: str, domain: Domain) -> ControllerInfo:
    """The registered learned controller ``controller``, after checking it can train on
    ``domain`` (its action kinds and graph, ``Domain.refusal``).

    Raises:
        ScenarioError: an unknown controller, or one the domain's env does not fit (naming
            both and why).
    """
    from gridmarl.controllers import registry

    try:
        info = registry.get(controller)
    except KeyError as exc:
        raise ScenarioError(str(exc.args[0])) from None
    why = domain.refusal(info.name, info.action_kinds, info.needs_graph)
    if why is not None:
        raise ScenarioError(f"{controller} cannot train on the {domain.name} domain: {why}")
    return info


def check_flags(
    seed: int | None = None,
    threads: int | None = None,
    validate_every: int | None = None,
    steps: int | None = None,
    warm_start_epochs: int | None = None,
) -> None:
    """Refuse out-of-range ``train`` / ``finetune`` options before any work (None = not
    given, the default applies).

    Raises:
        ScenarioError: naming the option and what is allowed.
    """
    from gridmarl.config import SEED_LIMIT

    if seed is not None and not 0 <= seed < SEED_LIMIT:
        raise ScenarioError(
            f"--seed {seed}: allowed: 0 … {SEED_LIMIT - 1} (a scenario's seeds, docs/protocol.md)"
        )
    for flag, value, least, what in (
        ("--threads", threads, 1, "CPU threads"),
        ("--validate-every", validate_every, 1, "updates or generations"),
        ("--steps", steps, 0, "agent-steps"),
        ("--warm-start-epochs", warm_start_epochs, 1, "passes over the teacher's episodes"),
    ):
        if value is not None and value < least:
            raise ScenarioError(f"{flag} {value}: allowed: {least} or more {what}")


def default_learner(scenario: Any = None) -> str:
    """The learned controller ``train`` trains when none is named: the scenario's
    ``train.controller``, else ``registry.DEFAULT``."""
    from gridmarl.controllers import registry

    named = getattr(getattr(scenario, "train", None), "controller", None)
    return named or registry.DEFAULT


def train_options(scenario: Any, controller: str | None = None) -> dict[str, Any]:
    """The hyper-parameters of ``controller`` (default: the scenario's default learner) from
    ``scenario.train``: its ``controller_options`` entry; else ``options`` when the scenario
    names no ``train.controller`` or names this one; else none (the learner's own defaults).
    ``num_envs`` comes from the block unless set.  A scenario that names the learner its
    ``options`` are written for never hands them to another."""
    t = scenario.train
    name = controller or default_learner(scenario)
    per = t.controller_options or {}
    if name in per:
        opts = dict(per[name])
    elif t.controller is None or name == t.controller:
        opts = dict(t.options)
    else:
        opts = {}
    opts.setdefault("num_envs", scenario.train.num_envs)
    return opts


# -- the driver -------------------------------------------------------------------------------
class _DriverLogger:
    """Progress bar, TensorBoard, periodic validation and checkpoints (``TrainingLogger``)."""

    def __init__(
        self,
        learner: Learner,
        run_dir: Path,
        validator: Validator | None,
        validate_every: int,
        progress: Any,
        task: Any,
        writer: Any,
    ) -> None:
        self.learner, self.run_dir, self.validator = learner, run_dir, validator
        self.validate_every = validate_every
        self.progress, self.task, self.writer = progress, task, writer
        self.last_return = math.nan
        self.last_display = "—"
        self.best = best_score(validator, run_dir / "checkpoints")
        self.t_start = time.perf_counter()
        self.steps_start = learner.progress().agent_steps
        # the update count at the last scheduled validation: a learner still warming up (no
        # update yet) or logging twice at one count is not validated again, and one whose
        # count jumps past a multiple of ``validate_every`` is
        self.updates_seen = learner.progress().updates

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            if isinstance(v, float | int) and math.isfinite(v):
                self.writer.add_scalar(k, v, step)
        if "train/episode_return" in metrics:
            self.last_return = metrics["train/episode_return"]
        updates = self.learner.progress().updates
        if updates // self.validate_every > self.updates_seen // self.validate_every:
            self.checkpoint(step)
        self.updates_seen = updates
        rate = (step - self.steps_start) / max(time.perf_counter() - self.t_start, 1e-9)
        self.progress.update(
            self.task,
            completed=step,
            rate=f"{rate:,.0f}",
            ret=f"{self.last_return:,.1f}",
            share=self.last_display,
        )

    def validate(self, step: int) -> ValidationResult | None:
        """Run the validator; append its row to ``validation.csv`` and log its scalars."""
        if self.validator is None:
            return None
        res = self.validator.evaluate(self.learner)
        self.last_display = res.display
        row = {
            "agent_steps": step,
            "updates": self.learner.progress().updates,
            "wall_s": round(time.perf_counter() - self.t_start, 1),
        }
        record_validation(self.run_dir, self.writer, res, row, step)
        return res

    def checkpoint(self, step: int) -> None:
        """Validate, then write ``step_*.pt``, ``last.pt`` and (if better) ``best.pt``."""
        res = self.validate(step)
        ck = self.run_dir / "checkpoints"
        self.learner.meta.update(
            {
                **(res.meta if res is not None else {}),
                "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
        self.learner.save(ck / f"step_{step:012d}.pt")
        self.learner.save(ck / "last.pt")
        prune_checkpoints(ck, "step_*.pt", KEEP_STEP_CHECKPOINTS)
        score = res.score if res is not None else -math.inf
        if res is not None and score > self.best:
            self.best = score
            self.learner.save(ck / "best.pt")


def resume_settings(
    run_dir: Path, controller: str, scenario: Any, p_hash: str, seed: int | None, steps: int | None
) -> tuple[dict[str, Any], int | None, int | None]:
    """The manifest of a ``train`` run to resume, and the seed and budget it started with
    (unless given).

    Raises:
        ScenarioError: not a train run folder, another scenario, controller or train settings.
    """
    manifest = open_resume_run(
        run_dir, "train_manifest.json", ("checkpoints/last.pt",), p_hash, "train"
    )
    if manifest.get("controller") != controller:
        raise ScenarioError(
            f"--resume {run_dir}: the run trains {manifest.get('controller')!r}, not {controller!r}"
        )
    # where the simulator workers run does not change the episodes
    check_train_settings(manifest, scenario, run_dir, ignore=("steps", "es", "workers"))
    seed = int(manifest["seed"]) if seed is None else seed
    steps = int(manifest["steps"]) if steps is None else steps
    return manifest, seed, steps


def join_data_parallel(dev: torch.device) -> tuple[DataParallel | None, torch.device]:
    """This process's data-parallel group when ``torchrun`` started several
    (``controllers/common/distributed.py``), and its device (``cuda:<LOCAL_RANK>`` on GPUs);
    ``(None, dev)`` in one process."""
    from gridmarl.controllers.common.distributed import DataParallel, launched_world_size

    if launched_world_size() <= 1:
        return None, dev
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    return DataParallel.from_env(dev), dev


def check_data_parallel(dp: DataParallel | None, learner: Learner, warm_start: str | None) -> None:
    """Hand the group to the learner (``set_data_parallel``).

    Raises:
        ScenarioError: the learner cannot train data-parallel, or ``--warm-start`` was asked
            for several processes (each would clone on its own data).
    """
    if dp is None:
        return
    if not hasattr(learner, "set_data_parallel"):
        raise ScenarioError(
            f"{learner.name} cannot train in several processes (no set_data_parallel); "
            "run it without torchrun / --nproc"
        )
    if warm_start is not None:
        raise ScenarioError(
            "--warm-start runs in one process: warm-start with --steps 0 first, then "
            "continue with torchrun / --nproc and --resume RUN_FOLDER"
        )
    learner.set_data_parallel(dp)


def env_spec(make_env: Any) -> Any:
    """The ``AgentSpec`` of the training env (one env built and closed)."""
    probe = make_env(1)
    try:
        return probe.spec
    finally:
        probe.close()


def check_keep_prior(keep_prior: bool, teacher: str | None, spec: Any) -> None:
    """``--warm-start-keep-prior`` needs a warm start and an env with a default action.

    Raises:
        ScenarioError: saying which is missing.
    """
    if keep_prior and (teacher is None or not any(i >= 0 for i in spec.action_prior)):
        raise ScenarioError(
            "--warm-start-keep-prior needs --warm-start and an env that declares a default "
            "action (energy: community.ev.action_prior=true); "
            + ("no --warm-start given" if teacher is None else "this env declares none")
        )


# spec fields every training env of a run must share (the networks' shapes and meaning)
SHARED_SPEC_FIELDS = (
    "local_dim",
    "forecast_len",
    "forecast_dim",
    "state_dim",
    "global_dim",
    "n_discrete",
    "n_continuous",
    "action_prior",
    "local_features",
)


def variant_envs(
    scenario: Any, dom: Domain, dev: torch.device, seed: int, spec: Any, learner_cls: type
) -> list[tuple[str, Any, Any]]:
    """``(label, scenario, env factory)`` of each of ``train.variants`` (none without).

    Raises:
        ScenarioError: the learner cannot alternate between envs, or a variant's env differs
            from the scenario's in what the networks read (naming the variant and the field).
    """
    from gridmarl.config import variant_scenarios

    variants = variant_scenarios(scenario)
    if variants and not getattr(learner_cls, "mixes_envs", False):
        raise ScenarioError(
            f"train.variants: {learner_cls.__name__} cannot train on several envs (its "
            "experience store holds one env's agents); remove train.variants or train a "
            "learner whose mixes_envs is true (docs/architecture.md)"
        )
    out = []
    for label, sc in variants:
        make = dom.train_env_factory(sc, dev, seed)
        other = env_spec(make)
        diff = [
            f"{f}: {getattr(other, f)} vs {getattr(spec, f)}"
            for f in SHARED_SPEC_FIELDS
            if getattr(other, f) != getattr(spec, f)
        ]
        if diff:
            raise ScenarioError(
                f"train.variants ({label}): its env does not fit the scenario's networks ("
                + "; ".join(diff)
                + "); a variant may change the size of the system, not what an agent observes"
            )
        out.append((label, sc, make))
    return out


def run_validator(
    dom: Domain, scenario: Any, run_dir: Path, variants: list[tuple[str, Any, Any]], say: Any
) -> Validator:
    """The domain's validator of a run; with ``train.variants`` (:func:`variant_envs`) a
    :class:`MixedValidator` over the scenario and each variant, whose references live in
    ``run_dir/variants/<label>/``."""
    validator = dom.make_validator(scenario, run_dir, say=say)
    if not variants:
        return validator
    per_variant = [
        (label, dom.make_validator(sc, run_dir / "variants" / file_stem(label), say=say))
        for label, sc, _ in variants
    ]
    return MixedValidator(validator, per_variant)


def init_from_checkpoint(learner: Learner, path: Path, say: Any) -> None:
    """Start ``learner`` from another run's weights (``--init-from``): its own
    ``init_from(path)``, which maps the weights by feature name (new features start with zero
    weight, so the policy starts as the source's) and records the source in ``meta``.

    Raises:
        ScenarioError: the learner cannot, or the checkpoint does not fit.
    """
    init = getattr(learner, "init_from", None)
    if not callable(init):
        raise ScenarioError(
            f"--init-from {path}: {type(learner).__name__} cannot start from another "
            "checkpoint's weights"
        )
    if not path.is_file():
        raise ScenarioError(f"--init-from {path}: file not found")
    added = init(path)
    say(
        f"initialised from {path}"
        + (f" (new features with zero weight: {', '.join(added)})" if added else "")
    )


def build_learner(
    info: ControllerInfo,
    spec: Any,
    scenario: Any,
    dev: torch.device,
    seed: int,
    p_hash: str,
    resume: Path | None,
) -> Learner:
    """A fresh learner (hyper-parameters from ``train.options``), or the one in
    ``resume/checkpoints/last.pt``.

    Raises:
        ScenarioError: bad options, or a checkpoint of another scenario or seed.
    """
    cls = info.load_class()
    if resume is None:
        return cls(
            spec,
            cls.config_class.from_options(train_options(scenario, info.name)),
            device=dev,
            seed=seed,
        )
    learner = cls.from_checkpoint(
        resume / "checkpoints" / "last.pt", spec, device=dev, scenario_hash=p_hash
    )
    if learner.seed != seed:
        raise ScenarioError(f"--resume {resume}: the run's seed is {learner.seed}, not {seed}")
    return learner


def new_manifest(
    controller: str,
    learner: Learner,
    scenario: Any,
    p_hash: str,
    seed: int,
    steps: int,
    dev: torch.device,
    warm_start: str | None,
    keep_prior: bool,
) -> dict[str, Any]:
    """``train_manifest.json`` of a new run."""
    return {
        "controller": controller,
        "scenario": scenario.model_dump(mode="json"),
        "scenario_source": scenario.source,
        "scenario_hash": scenario_hash(scenario),
        "policy_hash": p_hash,
        "seed": seed,
        "steps": steps,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "config": asdict(learner.cfg),
        "versions": versions(),
        "git": git_revision(),
        "argv": sys.argv,
        "started_utc": utc_now(),
        "warm_start": warm_start,
        "warm_start_keep_prior": keep_prior,
    }


def teacher_and_env(
    learner: Any, make_env: Any, teacher: str, domain: Domain, scenario: Any
) -> tuple[Any, Any]:
    """The domain's teacher ``teacher`` and a training env for it to act in (an expensive
    teacher, the MILP, demonstrates fewer episodes than the learner has envs).

    Raises:
        ScenarioError: a teacher the domain does not have.
    """
    teachers = domain.teachers()
    if teacher not in teachers:
        raise ScenarioError(f"--warm-start {teacher!r}; allowed: {', '.join(teachers)}")
    teach = teachers[teacher](scenario)
    n_envs = learner.cfg.num_envs
    return teach, make_env(min(n_envs, getattr(teach, "episodes", n_envs)))


def run_warm_start(
    learner: Learner,
    make_env: Any,
    teacher: str,
    domain: Domain,
    scenario: Any,
    seed: int,
    epochs: int,
    keep_prior: bool,
    say: Any,
    unit: str,
) -> dict[str, float]:
    """Clone the domain's teacher ``teacher`` into the learner before training; prints what
    the clone reached and returns its metrics (``warm/*``).

    Raises:
        ScenarioError: a teacher the domain does not have.
    """
    teach, env = teacher_and_env(learner, make_env, teacher, domain, scenario)
    try:
        warm = learner.warm_start(env, teach, epochs, seed, keep_prior)
    finally:
        env.close()
    learner.meta["warm_start"] = teacher + (" (env prior kept)" if keep_prior else "")
    losses = ", ".join(
        f"{k.removeprefix('warm/').replace('_', ' ')} {v:.4g}"
        for k, v in warm.items()
        if k not in ("warm/teacher_return", "warm/gradient_steps")
    )
    say(
        f"warm start from {teacher}: teacher return {warm['warm/teacher_return']:.1f} {unit} "
        f"per episode; {losses} after {warm['warm/gradient_steps']:.0f} gradient steps"
        + (
            " (few: the clone may be unfinished; raise --warm-start-epochs)"
            if warm["warm/gradient_steps"] < 50
            else ""
        )
    )
    return warm


def redemonstrate(
    learner: Any,
    make_env: Any,
    manifest: dict[str, Any],
    domain: Domain,
    scenario: Any,
    seed: int,
    say: Any,
) -> None:
    """On ``--resume``: store the run's warm-start demonstrations in the learner's fresh
    replay buffer again (``learner.demonstrate``; the learner's weights are not touched)."""
    teacher = str(manifest["warm_start"])
    teach, env = teacher_and_env(learner, make_env, teacher, domain, scenario)
    try:
        out = learner.demonstrate(
            env, teach, seed, bool(manifest.get("warm_start_keep_prior", False))
        )
    finally:
        env.close()
    say(f"demonstrations of {teacher} stored again: {out['warm/rows']:.0f} rows")


def progress_columns(validator: Validator) -> list[Any]:
    """The columns of the training progress bar."""
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

    return [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} agent-steps"),
        TextColumn("{task.fields[rate]} steps/s"),
        TextColumn("return {task.fields[ret]} " + validator.return_unit),
        TextColumn(validator.label + " {task.fields[share]}"),
        TimeElapsedColumn(),
    ]


def drive(
    learner: Learner,
    make_env: Any,
    steps: int,
    name: str,
    run_dir: Path,
    validator: Validator,
    validate_every: int,
    writer: Any,
    console: Any,
    more_envs: list[Any] | None = None,
    validate_first: bool = False,
) -> tuple[_DriverLogger, bool]:
    """Collect and update until ``steps`` agent-steps, validating and checkpointing every
    ``validate_every`` updates and at the end (and before the first update when
    ``validate_first``: a warm-started policy is a candidate for ``best.pt`` too); returns the
    logger and whether the run was interrupted (Ctrl-C: ``last.pt`` is written first)."""
    from rich.progress import Progress

    from gridmarl.core.learner import run

    with Progress(*progress_columns(validator), console=console, transient=False) as progress:
        done = learner.progress().agent_steps
        task = progress.add_task(name, total=steps, completed=done, rate="—", ret="—", share="—")
        logger = _DriverLogger(learner, run_dir, validator, validate_every, progress, task, writer)
        if validate_first and done == 0:
            logger.checkpoint(0)
        try:
            run(learner, make_env, steps, logger, more_envs or ())
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: writing checkpoints/last.pt …[/yellow]")
            logger.checkpoint(learner.progress().agent_steps)
            return logger, True
        p = learner.progress()
        if p.updates % logger.validate_every != 0 or p.updates == 0:
            logger.checkpoint(p.agent_steps)
    return logger, False


def train(
    scenario: Any,
    controller: str | None = None,
    device: str = "auto",
    steps: int | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    console: Any = None,
    validate_every: int | None = None,
    threads: int | None = None,
    overrides: list[str] | None = None,
    warm_start: str | None = None,
    warm_start_epochs: int = 4,
    warm_start_keep_prior: bool = False,
    init_from: str | Path | None = None,
) -> Path:
    """Train ``controller`` on the scenario's training window; returns the run folder.

    Args:
        scenario: a scenario file path or a validated scenario model.
        controller: a registered learned controller (``gridmarl.controllers.registry``) that
            fits the scenario's domain (``learner_info``); default ``registry.DEFAULT``.
        device: ``auto`` (GPU when present), ``cpu`` or ``cuda``.
        steps: total agent-steps budget (env steps × agents); default ``scenario.train.steps``
            (on resume: the budget the run started with).
        seed: default ``scenario.seed``.
        out: root folder of runs (default ``runs``).
        resume: a run folder of an earlier ``train``; continues from its ``checkpoints/last.pt``.
        console: a ``rich.console.Console`` (default: a new one).
        validate_every: updates between validations + checkpoints (default 10).
        threads: ``torch.set_num_threads`` for CPU training (default: torch's choice, less the
            cores the env's worker processes need, ``core.training.set_torch_threads``).
        overrides: ``--set key=value`` items applied when ``scenario`` is a path.
        warm_start: name of a teacher of the domain (``Domain.teachers()``: energy
            ``rule_based`` | ``no_control`` | ``milp``, routing ``shortest_path_distance`` |
            ``shortest_path_hops`` | ``mcf``, traffic ``max_pressure`` | ``fixed_time``) to
            clone before training starts (``Learner.warm_start``); None = learn from scratch.
            Ignored on resume.
        warm_start_epochs: passes of the warm start over the teacher's episodes.
        warm_start_keep_prior: on the action dimensions where the env declares a default
            action (``spec.action_prior``), the warm start keeps that default instead of the
            teacher's action.
        init_from: a checkpoint of the same learner to start from (``init_from_checkpoint``;
            another scenario's too, e.g. with fewer local features); ignored on resume.

    Raises:
        ScenarioError: unknown controller, a controller the domain does not fit, or a
            checkpoint / run that does not match the scenario.
    """
    from rich.console import Console

    console = console or Console()
    check_flags(seed, threads, validate_every, steps, warm_start_epochs)
    if isinstance(scenario, str | Path):
        scenario = load_scenario(scenario, overrides)
    dom = domain_training(scenario)
    info = learner_info(controller or default_learner(scenario), dom)
    t = scenario.train
    if t.options and t.controller not in (None, info.name):
        if info.name not in (t.controller_options or {}):
            console.print(
                f"[yellow]note[/yellow]: train.options are {t.controller}'s; {info.name} trains "
                f"with its own defaults (set train.controller_options.{info.name} to change them)"
            )
        elif any(o.split("=", 1)[0].startswith("train.options") for o in overrides or []):
            console.print(
                f"[yellow]note[/yellow]: train.options are {t.controller}'s and --set changed "
                f"them; {info.name} reads train.controller_options.{info.name} (set that)"
            )
    if warm_start is not None and init_from is not None:
        raise ScenarioError(
            "--warm-start and --init-from both set where training starts: give one of them"
        )
    if warm_start is not None and warm_start not in (teachers := dom.teachers()):
        raise ScenarioError(f"--warm-start {warm_start!r}; allowed: {', '.join(teachers)}")
    set_torch_threads(threads, dom, scenario, int(train_options(scenario, info.name)["num_envs"]))
    dp, dev = join_data_parallel(resolve_device(device))
    try:
        return _train(
            scenario,
            dom,
            info,
            dev,
            dp,
            steps,
            seed,
            out,
            resume,
            console,
            validate_every,
            warm_start,
            warm_start_epochs,
            warm_start_keep_prior,
            Path(init_from) if init_from is not None else None,
        )
    finally:
        if dp is not None:
            dp.close()


def _train(
    scenario: Any,
    dom: Domain,
    info: ControllerInfo,
    dev: torch.device,
    dp: DataParallel | None,
    steps: int | None,
    seed: int | None,
    out: str | Path | None,
    resume: str | Path | None,
    console: Any,
    validate_every: int | None,
    warm_start: str | None,
    warm_start_epochs: int,
    warm_start_keep_prior: bool,
    init_from: Path | None = None,
) -> Path:
    """The body of :func:`train` once the device and the process group are known; with
    ``dp`` only rank 0 writes the run folder, validates and logs."""
    from torch.utils.tensorboard import SummaryWriter

    from gridmarl.core.learner import run

    controller = info.name
    p_hash = policy_hash(scenario)
    resume = Path(resume) if resume is not None else None
    manifest: dict[str, Any] = {}
    if resume is not None:
        manifest, seed, steps = resume_settings(resume, controller, scenario, p_hash, seed, steps)
    seed = scenario.seed if seed is None else int(seed)
    steps = int(scenario.train.steps if steps is None else steps)
    seed_everything(seed)

    make_env = dom.train_env_factory(scenario, dev, seed)
    spec = env_spec(make_env)
    check_keep_prior(warm_start_keep_prior, warm_start, spec)
    variants = variant_envs(scenario, dom, dev, seed, spec, info.load_class())
    more_envs = [make for _, _, make in variants]
    learner = build_learner(info, spec, scenario, dev, seed, p_hash, resume)
    if init_from is not None and resume is None:
        init_from_checkpoint(learner, init_from, console.print)
    check_data_parallel(dp, learner, warm_start)
    main = dp is None or dp.is_main
    if resume is None and main:
        run_dir = new_run_dir(out or "runs", scenario.name)
        manifest = new_manifest(
            controller,
            learner,
            scenario,
            p_hash,
            seed,
            steps,
            dev,
            warm_start,
            warm_start_keep_prior,
        )
        if dp is not None:
            manifest["processes"] = dp.world
        if init_from is not None:
            manifest["init_from"] = {"path": str(init_from), **learner.meta.get("init_from", {})}
        write_json(run_dir / "train_manifest.json", manifest)
    elif resume is not None:
        run_dir = resume
    if dp is not None:
        # the other ranks learn where rank 0 writes; they write nothing themselves
        run_dir = Path(dp.broadcast_object(str(run_dir) if main else None))
        if not main:
            run(learner, make_env, steps, more_envs=more_envs)
            return run_dir
    learner.meta.update(run_meta(scenario, p_hash, dev))
    done = learner.progress().agent_steps
    console.print(
        f"[bold]train[/bold] {controller} on {scenario.name}: {spec.n_agents} agents, "
        f"{steps:,} agent-steps, device {dev}, seed {seed} → {run_dir}"
        + (f" (resuming at {done:,})" if resume is not None else "")
    )
    validator = run_validator(dom, scenario, run_dir, variants, console.print)
    if variants:
        console.print(
            f"training envs: the scenario and {', '.join(label for label, _, _ in variants)}, "
            "one rollout each in turn"
        )
    console.print(validator.describe())

    warm: dict[str, float] = {}
    if warm_start is not None and resume is None:
        warm = run_warm_start(
            learner,
            make_env,
            warm_start,
            dom,
            scenario,
            seed,
            warm_start_epochs,
            warm_start_keep_prior,
            console.print,
            validator.return_unit,
        )
    elif resume is not None and manifest.get("warm_start") and hasattr(learner, "demonstrate"):
        # a learner that keeps its teacher's demonstrations (not in the checkpoint) shows them
        # again: the same teacher and warm-start seed stream give the same rows
        redemonstrate(learner, make_env, manifest, dom, scenario, seed, console.print)
    writer = SummaryWriter(str(run_dir / "tb"), purge_step=done or None)
    for k, v in warm.items():
        writer.add_scalar(k, v, 0)
    t0 = time.perf_counter()
    every = validate_every or DEFAULT_VALIDATE_EVERY
    logger, interrupted = drive(
        learner,
        make_env,
        steps,
        controller,
        run_dir,
        validator,
        every,
        writer,
        console,
        more_envs,
        validate_first=bool(warm),
    )
    writer.close()
    if interrupted:
        console.print(f"resume with: gridmarl train {scenario.source} --resume {run_dir}")
        return run_dir
    p = learner.progress()
    wall = time.perf_counter() - t0
    final = {
        **manifest,
        "finished_utc": utc_now(),
        "agent_steps": p.agent_steps,
        "updates": p.updates,
        "wall_s_last_session": round(wall, 1),
        f"best_validation_{validator.score_name}": logger.best,
    }
    write_json(run_dir / "train_manifest.json", final)
    # a learner's own outputs for the run folder, when it has any (LToS: selfishness over an
    # episode of the validation seed stream, seed Figs. 5-6)
    write_outputs = getattr(learner, "write_outputs", None)
    if callable(write_outputs):
        for path in write_outputs(make_env, run_dir, stream_seed(seed, "validate", 0)):
            console.print(f"wrote {path}")
    console.print(
        f"done: {p.agent_steps:,} agent-steps in {wall:.0f} s; last validation "
        f"({validator.label}) {logger.last_display}; checkpoints in {run_dir / 'checkpoints'}"
    )
    return run_dir
