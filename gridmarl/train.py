"""``gridmarl train``: train a learned controller on a scenario's training window.

One function, :func:`train`, drives everything; ``gridmarl.cli`` maps the flags onto it.

Run folder ``<out>/<scenario>/<UTC stamp>/`` (``out`` defaults to ``runs``):

| file | what |
|---|---|
| ``train_manifest.json`` | scenario (as validated), hashes, seed, device, budget, versions |
| ``checkpoints/step_<agent-steps>.pt`` + ``.json`` | periodic checkpoints + sidecar JSON |
| ``checkpoints/last.pt`` + ``.json`` | the newest checkpoint (what ``resume`` reads) |
| ``checkpoints/best.pt`` + ``.json`` | the best on the validation window so far |
| ``validation.csv`` | one row per validation: agent-steps, cost [$], share of optimal savings |
| ``validation_reference.json`` | no_control, rule_based and MILP cost on the validation window |

The validation references depend only on the scenario, so they are also cached beside the run
folders (``.validation_reference_<policy hash>.json``) and reused by later runs.
| ``tb/`` | TensorBoard scalars (``tensorboard --logdir runs``) |

Every file is written atomically (temp file + rename).  Killing the process loses at most the
updates since the last checkpoint; ``train(..., resume=RUN_DIR)`` continues from
``checkpoints/last.pt`` with the optimiser, normalisers, RNG streams and step counter restored
(episodes restart from fresh env resets, so a resumed curve is not bit-identical to an
uninterrupted one).

Validation: the deterministic policy runs the whole validation window (B = 1, float64, the
same accounting env as ``simulate``); its cost is compared with no_control and with the
perfect-foresight MILP on the same days (solved once per run and cached):
share = (C_no_control − C_policy) / (C_no_control − C_MILP).

Checkpoint compatibility: the sidecar records ``scenario_hash`` (the full validated scenario)
and ``policy_hash`` (the scenario without its ``controllers`` list and ``train`` block, i.e.
what the policy was trained on), so listing the checkpoint in the scenario file does not
invalidate it.  ``resume`` refuses a run whose ``policy_hash`` differs from the scenario's.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from gridmarl.config import ScenarioError, load_scenario, scenario_hash
from gridmarl.core.io import new_run_dir, write_json, write_text
from gridmarl.core.seeding import resolve_device, seed_everything

DEFAULT_VALIDATE_EVERY = 10  # [updates] between validations (and checkpoints)
MILP_TIME_LIMIT_S = 300.0  # [s] least time for the once-per-run validation MILP


def policy_hash(scenario: Any) -> str:
    """SHA-256 of what a policy is trained on: the validated scenario without ``controllers``
    (what ``simulate`` runs) and ``train`` (budget and hyper-parameters, kept in the checkpoint)."""
    data = scenario.model_dump(mode="json")
    data.pop("controllers", None)
    data.pop("train", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def versions() -> dict[str, str]:
    """Package versions recorded in manifests and checkpoint sidecars."""
    import numpy

    import gridmarl

    return {
        "gridmarl": gridmarl.__version__,
        "torch": str(torch.__version__),
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


# -- energy domain ----------------------------------------------------------------------------
def _forecast_steps(scenario: Any) -> int:
    return max(1, round(scenario.community.forecast.horizon_h / scenario.window.step_h))


def energy_env_factory(scenario: Any, device: torch.device, seed: int):
    """``num_envs -> CommunityEnv`` over the training window, random episode starts."""
    from gridmarl.energy.data import build_community
    from gridmarl.energy.env import CommunityEnv

    community = build_community(scenario, "train")
    fc = scenario.community.forecast
    steps = round(scenario.train.episode_days * 24 / scenario.window.step_h)
    h = _forecast_steps(scenario)
    max_steps = community.steps - h - 1
    if steps > max_steps:
        raise ScenarioError(
            f"train.episode_days: {scenario.train.episode_days} days do not fit "
            f"the training window ({scenario.window.train.days} days)"
        )

    def make(num_envs: int) -> CommunityEnv:
        return CommunityEnv(
            community,
            num_envs=num_envs,
            device=device,
            dtype=torch.float32,
            episode_steps=steps,
            forecast_steps=h,
            forecast_kind=fc.kind,
            noise_std=fc.noise_std,
            random_start=True,
            seed=seed,
            record=False,
        )

    return make


class EnergyValidator:
    """Cost of a policy on the validation window, against no_control, rule_based and the MILP.

    Args:
        scenario: the energy scenario.
        cache: JSON file holding the reference costs (reused when it exists).
        say: prints a line for a person.
    """

    def __init__(
        self, scenario: Any, cache: Path, say=print, shared_cache: Path | None = None
    ) -> None:
        from gridmarl.energy.data import build_community

        self.scenario = scenario
        self.community = build_community(scenario, "validate")
        if not cache.exists() and shared_cache is not None and shared_cache.exists():
            write_text(cache, shared_cache.read_text())
        self.ref = self._references(cache, say)
        if shared_cache is not None and math.isfinite(self.ref["milp_usd"]):
            write_json(shared_cache, self.ref)

    def _env(self):
        from gridmarl.energy.env import CommunityEnv

        fc = self.scenario.community.forecast
        steps = round(self.scenario.window.validate_.days * 24 / self.scenario.window.step_h)
        return CommunityEnv(
            self.community,
            num_envs=1,
            device="cpu",
            dtype=torch.float64,
            episode_steps=steps,
            forecast_steps=_forecast_steps(self.scenario),
            forecast_kind=fc.kind,
            noise_std=fc.noise_std,
            random_start=False,
            seed=self.scenario.seed,
            record=False,
        )

    @torch.no_grad()
    def cost(self, controller: Any) -> float:
        """Community cost [$] of ``controller`` (deterministic) over the validation window."""
        env = self._env()
        obs = env.reset(seed=self.scenario.seed)
        controller.reset(env)
        total = 0.0
        for _ in range(env.episode_len):
            step = env.step(controller.act(obs, deterministic=True))
            total += float(step.info["cost_usd"].sum())
            obs = step.obs
        return total

    def _references(self, cache: Path, say) -> dict[str, float]:
        if cache.exists():
            return json.loads(cache.read_text())
        from gridmarl.energy.rules import NoControl, RuleBased

        ref: dict[str, float] = {
            "no_control_usd": self.cost(NoControl()),
            "rule_based_usd": self.cost(RuleBased()),
        }
        try:
            from baselines_opt.community_milp import solve_community_milp

            entry = next((c for c in self.scenario.controllers if c.name == "milp"), None)
            say("[dim]solving the MILP on the validation window (once per run) …[/dim]")
            t0 = time.perf_counter()
            res = solve_community_milp(
                self.community,
                start=0,
                steps=self._env().episode_len,
                time_limit_s=max(
                    entry.time_limit_s if entry and entry.time_limit_s else 0.0, MILP_TIME_LIMIT_S
                ),
                mip_gap=(entry.mip_gap if entry and entry.mip_gap is not None else 1e-3),
            )
            ref["milp_usd"] = self.cost(res.to_controller())
            ref["milp_status"] = res.status  # type: ignore[assignment]
            ref["milp_gap"] = res.gap
            ref["milp_wall_s"] = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - the run continues with savings in $ only
            say(
                f"[yellow]MILP on the validation window failed ({type(exc).__name__}: {exc}); "
                "reporting savings vs no_control only[/yellow]"
            )
            ref["milp_usd"] = math.nan
        write_json(cache, ref)
        return ref

    def share(self, cost: float) -> float:
        """Share of optimal savings captured [-] (NaN without a MILP reference)."""
        den = self.ref["no_control_usd"] - self.ref["milp_usd"]
        if not math.isfinite(den) or abs(den) < 1e-9:
            return math.nan
        return (self.ref["no_control_usd"] - cost) / den


# -- the driver -------------------------------------------------------------------------------
class _DriverLogger:
    """Progress bar, TensorBoard, periodic validation and checkpoints (``TrainingLogger``)."""

    def __init__(
        self,
        ctrl: Any,
        run_dir: Path,
        validator: EnergyValidator | None,
        validate_every: int,
        progress: Any,
        task: Any,
        writer: Any,
    ) -> None:
        self.ctrl, self.run_dir, self.validator = ctrl, run_dir, validator
        self.validate_every = validate_every
        self.progress, self.task, self.writer = progress, task, writer
        self.last_return = math.nan
        self.last_share = math.nan
        self.best = -math.inf
        best_json = run_dir / "checkpoints" / "best.json"
        if best_json.exists():
            self.best = json.loads(best_json.read_text()).get("validation_share", -math.inf)
        self.t_start = time.perf_counter()
        self.steps_start = ctrl.agent_steps

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            if isinstance(v, float | int) and math.isfinite(v):
                self.writer.add_scalar(k, v, step)
        if "train/episode_return" in metrics:
            self.last_return = metrics["train/episode_return"]
        if self.ctrl.updates % self.validate_every == 0:
            self.checkpoint(step)
        rate = (step - self.steps_start) / max(time.perf_counter() - self.t_start, 1e-9)
        self.progress.update(
            self.task,
            completed=step,
            rate=f"{rate:,.0f}",
            ret=f"{self.last_return:,.1f}",
            share=_pct(self.last_share),
        )

    def validate(self, step: int) -> dict[str, float]:
        if self.validator is None:
            return {}
        cost = self.validator.cost(self.ctrl)
        share = self.validator.share(cost)
        self.last_share = share
        row = {
            "agent_steps": step,
            "updates": self.ctrl.updates,
            "wall_s": round(time.perf_counter() - self.t_start, 1),
            "cost_usd": cost,
            "savings_vs_no_control_usd": self.validator.ref["no_control_usd"] - cost,
            "share_of_optimal_savings": share,
        }
        _append_csv(self.run_dir / "validation.csv", row)
        self.writer.add_scalar("validate/cost_usd", cost, step)
        if math.isfinite(share):
            self.writer.add_scalar("validate/share_of_optimal_savings", share, step)
        return row

    def checkpoint(self, step: int) -> None:
        """Validate, then write ``step_*.pt``, ``last.pt`` and (if better) ``best.pt``."""
        row = self.validate(step)
        ck = self.run_dir / "checkpoints"
        share = row.get("share_of_optimal_savings", math.nan)
        self.ctrl.meta.update(
            {
                "validation_cost_usd": row.get("cost_usd"),
                "validation_share": share if math.isfinite(share) else None,
                "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
        self.ctrl.save(ck / f"step_{step:012d}.pt")
        self.ctrl.save(ck / "last.pt")
        score = share if math.isfinite(share) else -row.get("cost_usd", math.inf)
        if row and score > self.best:
            self.best = score
            self.ctrl.save(ck / "best.pt")


def _warm_start(ctrl: Any, make_env: Any, teacher: str, seed: int) -> dict[str, float]:
    from gridmarl.controllers.common.warm_start import warm_start
    from gridmarl.energy.rules import NoControl, RuleBased

    teachers = {"rule_based": RuleBased, "no_control": NoControl}
    if teacher not in teachers:
        raise ScenarioError(f"--warm-start {teacher!r}; allowed: {', '.join(teachers)}")
    return warm_start(ctrl, make_env(ctrl.cfg.num_envs), teachers[teacher](), seed=seed)


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %" if math.isfinite(x) else "—"


def _append_csv(path: Path, row: dict[str, Any]) -> None:
    """Rewrite ``path`` atomically with ``row`` appended (small file)."""
    rows = list(csv.DictReader(path.open())) if path.exists() else []
    rows.append({k: str(v) for k, v in row.items()})
    header = list(row)
    lines = [",".join(header)] + [",".join(r.get(k, "") for k in header) for r in rows]
    write_text(path, "\n".join(lines) + "\n")


def train(
    scenario: Any,
    controller: str = "matppo",
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
) -> Path:
    """Train ``controller`` on the scenario's training window; returns the run folder.

    Args:
        scenario: a scenario file path or a validated scenario model.
        controller: a registered learned controller (``gridmarl.controllers.registry``).
        device: ``auto`` (GPU when present), ``cpu`` or ``cuda``.
        steps: total agent-steps budget (env steps × agents); default ``scenario.train.steps``
            (on resume: the budget the run started with).
        seed: default ``scenario.seed``.
        out: root folder of runs (default ``runs``).
        resume: a run folder of an earlier ``train``; continues from its ``checkpoints/last.pt``.
        console: a ``rich.console.Console`` (default: a new one).
        validate_every: updates between validations + checkpoints (default 10).
        threads: ``torch.set_num_threads`` for CPU training (default: torch's choice).
        overrides: ``--set key=value`` items applied when ``scenario`` is a path.
        warm_start: name of a rule baseline (``rule_based`` | ``no_control``) to clone before PPO
            starts (``controllers/common/warm_start.py``); None = learn from scratch.  Ignored
            on resume.

    Raises:
        ScenarioError: unknown controller, non-energy scenario, or a checkpoint / run that does
            not match the scenario.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from gridmarl.controllers import registry

    console = console or Console()
    if isinstance(scenario, str | Path):
        scenario = load_scenario(scenario, overrides)
    if getattr(scenario, "domain", None) != "energy":
        raise ScenarioError(
            f"{scenario.source}: gridmarl train supports domain: energy for now "
            f"(got {getattr(scenario, 'domain', '?')!r})"
        )
    try:
        info = registry.get(controller)
    except KeyError as exc:
        raise ScenarioError(str(exc.args[0])) from None
    if threads:
        torch.set_num_threads(int(threads))
    dev = resolve_device(device)
    p_hash = policy_hash(scenario)

    manifest: dict[str, Any] = {}
    if resume is not None:
        run_dir = Path(resume)
        last = run_dir / "checkpoints" / "last.pt"
        man_path = run_dir / "train_manifest.json"
        if not last.exists() or not man_path.exists():
            raise ScenarioError(
                f"--resume {run_dir}: no checkpoints/last.pt and "
                "train_manifest.json there (not a gridmarl train run folder?)"
            )
        manifest = json.loads(man_path.read_text())
        if manifest.get("policy_hash") != p_hash:
            raise ScenarioError(
                f"--resume {run_dir}: the run was started with a different "
                f"scenario (policy hash {manifest.get('policy_hash', '?')[:12]}… "
                f"vs {p_hash[:12]}…); resume with the same scenario file"
            )
        if manifest.get("controller") != controller:
            raise ScenarioError(
                f"--resume {run_dir}: the run trains "
                f"{manifest.get('controller')!r}, not {controller!r}"
            )
        seed = int(manifest["seed"]) if seed is None else seed
        steps = int(manifest["steps"]) if steps is None else steps
    seed = scenario.seed if seed is None else int(seed)
    steps = int(scenario.train.steps if steps is None else steps)
    seed_everything(seed)

    make_env = energy_env_factory(scenario, dev, seed)
    spec = make_env(1).spec
    cls = info.load_class()
    if resume is not None:
        ctrl = cls.from_checkpoint(
            run_dir / "checkpoints" / "last.pt", spec, device=dev, scenario_hash=p_hash
        )
        if ctrl.seed != seed:
            raise ScenarioError(f"--resume {run_dir}: the run's seed is {ctrl.seed}, not {seed}")
    else:
        opts = dict(scenario.train.options)
        opts.setdefault("num_envs", scenario.train.num_envs)
        ctrl = cls(spec, info.load_config_class().from_options(opts), device=dev, seed=seed)
        run_dir = new_run_dir(out or "runs", scenario.name)
        manifest = {
            "controller": controller,
            "scenario": scenario.model_dump(mode="json"),
            "scenario_source": scenario.source,
            "scenario_hash": scenario_hash(scenario),
            "policy_hash": p_hash,
            "seed": seed,
            "steps": steps,
            "device": str(dev),
            "threads": torch.get_num_threads(),
            "config": asdict(ctrl.cfg),
            "versions": versions(),
            "argv": sys.argv,
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "warm_start": warm_start,
        }
        write_json(run_dir / "train_manifest.json", manifest)
    ctrl.meta.update(
        {
            "scenario": scenario.name,
            "scenario_hash": scenario_hash(scenario),
            "policy_hash": p_hash,
            "versions": versions(),
            "device": str(dev),
        }
    )

    console.print(
        f"[bold]train[/bold] {controller} on {scenario.name}: {spec.n_agents} agents, "
        f"{steps:,} agent-steps, device {dev}, seed {seed} → {run_dir}"
        + (f" (resuming at {ctrl.agent_steps:,})" if resume is not None else "")
    )
    # the references depend only on the scenario: runs of the same scenario share them
    shared = run_dir.parent / f".validation_reference_{p_hash[:16]}.json"
    validator = EnergyValidator(
        scenario, run_dir / "validation_reference.json", say=console.print, shared_cache=shared
    )
    ref = validator.ref
    console.print(
        f"validation window: no_control {ref['no_control_usd']:.2f} $, rule_based "
        f"{ref['rule_based_usd']:.2f} $ (share "
        f"{_pct(validator.share(ref['rule_based_usd']))}), MILP "
        f"{ref['milp_usd']:.2f} $"
    )

    from torch.utils.tensorboard import SummaryWriter

    warm: dict[str, float] = {}
    if warm_start is not None and resume is None:
        warm = _warm_start(ctrl, make_env, warm_start, seed)
        ctrl.meta["warm_start"] = warm_start
        console.print(
            f"warm start from {warm_start}: teacher return {warm['warm/teacher_return']:.1f} $ "
            f"per episode; CE {warm['warm/actor_ce']:.3f}, MSE {warm['warm/actor_mse']:.4f}, "
            f"value loss {warm['warm/value_loss']:.3f}"
        )

    writer = SummaryWriter(str(run_dir / "tb"), purge_step=ctrl.agent_steps or None)
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} agent-steps"),
        TextColumn("{task.fields[rate]} steps/s"),
        TextColumn("return {task.fields[ret]} $"),
        TextColumn("val share {task.fields[share]}"),
        TimeElapsedColumn(),
    ]
    t0 = time.perf_counter()
    for k, v in warm.items():
        writer.add_scalar(k, v, 0)
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(
            controller, total=steps, completed=ctrl.agent_steps, rate="—", ret="—", share="—"
        )
        logger = _DriverLogger(
            ctrl,
            run_dir,
            validator,
            validate_every or DEFAULT_VALIDATE_EVERY,
            progress,
            task,
            writer,
        )
        try:
            ctrl.train(make_env, steps, logger)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: writing checkpoints/last.pt …[/yellow]")
            logger.checkpoint(ctrl.agent_steps)
            writer.close()
            console.print(f"resume with: gridmarl train {scenario.source} --resume {run_dir}")
            return run_dir
        if ctrl.updates % logger.validate_every != 0 or ctrl.updates == 0:
            logger.checkpoint(ctrl.agent_steps)
    writer.close()
    wall = time.perf_counter() - t0
    final = {
        **manifest,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "agent_steps": ctrl.agent_steps,
        "updates": ctrl.updates,
        "wall_s_last_session": round(wall, 1),
        "best_validation_share": logger.best,
    }
    write_json(run_dir / "train_manifest.json", final)
    console.print(
        f"done: {ctrl.agent_steps:,} agent-steps in {wall:.0f} s; last validation "
        f"share {_pct(logger.last_share)}; checkpoints in {run_dir / 'checkpoints'}"
    )
    return run_dir
