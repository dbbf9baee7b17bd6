"""One-shot GPU suite: every GPU measurement the docs still lack, in ≤ 8 minutes on one H200.

    python benchmarks/gpu_suite.py                      # needs a CUDA GPU; exit 2 without one
    python benchmarks/gpu_suite.py --out runs/gpu_suite --budget-s 480
    python benchmarks/gpu_suite.py --smoke              # tiny sizes on the CPU: checks the suite

Sections (each capped in time; a section that would pass the total budget is skipped and says
so):

* ``energy_env``: ``CommunityEnv`` agent-steps/s, B = 4096, N = 50, float32, vs the
  per-agent reference (CPU, same run); target ≥ 100M agent-steps/s.
* ``routing_env``: ``RoutingEnv`` on IBM, B = 4096, shortest path by hops, vs the per-packet
  reference (CPU, same run).
* ``matppo_energy``: ``gridmarl train scenarios/community_50.yaml --device cuda`` (the shipped
  recipe: warm start from rule_based), B = ``--train-envs``; the time until the validation
  share of optimal savings reaches 90 %, or the best share when the time cap ends the run
  (target: 90 % in ≤ 15 min on a GPU).
* ``learners``: every registered learned controller that fits the energy domain: training
  agent-steps/s including updates, B = ``--train-envs``.

Writes ``gpu_suite.json`` (every number, the device name, torch and CUDA versions, the
command) and ``gpu_suite.md`` (one table) into ``--out`` (default ``runs/gpu_suite``), both
atomically.  Exit codes: 0 done (a section may still report ``skipped`` or ``failed``), 2 no
GPU (unless ``--smoke``) or bad arguments.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARE_TARGET = 0.90  # [-] energy quality target: share of optimal savings on validation


def _bench_module(name: str) -> Any:
    """A sibling benchmark script as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", ROOT / "benchmarks" / name)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# -- sections ---------------------------------------------------------------------------------
def energy_env(args: argparse.Namespace, cap_s: float) -> dict[str, Any]:
    """``CommunityEnv`` at B = ``--env-envs`` vs the per-agent reference."""
    import torch

    mod = _bench_module("energy_env_throughput.py")
    community = mod._make_community(50, 14)
    rate = mod.bench_env(community, args.env_envs, args.env_steps, args.device, torch.float32)
    ref = mod.bench_reference(community, 8, 4)
    return {
        "num_envs": args.env_envs,
        "agents": community.n,
        "agent_steps_per_s": rate,
        "reference_agent_steps_per_s": ref,
        "ratio": rate / ref,
        "target_agent_steps_per_s": 1e8,
    }


def routing_env(args: argparse.Namespace, cap_s: float) -> dict[str, Any]:
    """``RoutingEnv`` on IBM at B = ``--env-envs`` vs the per-packet reference."""
    mod = _bench_module("routing_env_throughput.py")
    topo = str(ROOT / "data" / "topologies" / "Ibm.graphml")
    episodes = 1 if args.smoke else 2
    return mod.measure(topo, args.env_envs, args.device, episodes, 2 if args.smoke else 20)


def matppo_energy(args: argparse.Namespace, cap_s: float) -> dict[str, Any]:
    """Train MATPPO on community_50 for at most ``cap_s`` and read its validation curve."""
    out = Path(tempfile.mkdtemp(prefix="gpu_suite_train_"))
    cmd = [
        sys.executable,
        "-m",
        "gridmarl",
        "train",
        "scenarios/community_50.yaml",
        "--controller",
        "matppo",
        "--device",
        args.device,
        "--seed",
        "7",
        "--warm-start",
        "rule_based",
        "--validate-every",
        str(args.validate_every),
        "--steps",
        str(args.train_steps),
        "--out",
        str(out),
        "--set",
        f"train.num_envs={args.train_envs}",
        *[x for s in args.train_set for x in ("--set", s)],
    ]
    t0 = time.perf_counter()
    # this checkout's gridmarl, whatever is installed
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": path},
    )
    try:
        log, _ = proc.communicate(timeout=cap_s)
        ended = "budget spent"
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # the driver writes last.pt and stops
        try:
            log, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            log, _ = proc.communicate()
        ended = f"time cap {cap_s:.0f} s"
    wall = time.perf_counter() - t0
    runs = sorted(out.glob("*/*/validation.csv"))
    if not runs:
        tail = log.decode(errors="replace")[-1500:]
        raise RuntimeError(f"no validation.csv (exit {proc.returncode}): {tail}")
    rows = list(csv.DictReader(runs[-1].open()))
    curve = [
        (int(r["agent_steps"]), float(r["wall_s"]), float(r["share_of_optimal_savings"]))
        for r in rows
    ]
    hit = next((c for c in curve if c[2] >= SHARE_TARGET), None)
    best = max(curve, key=lambda c: c[2])
    return {
        "command": " ".join(cmd[2:]),
        "num_envs": args.train_envs,
        "ended": ended,
        "wall_s": wall,
        "agent_steps": curve[-1][0],
        "agent_steps_per_s": curve[-1][0] / max(wall, 1e-9),
        "target_share": SHARE_TARGET,
        "time_to_target_s": hit[1] if hit else None,
        "agent_steps_to_target": hit[0] if hit else None,
        "best_share": best[2],
        "best_at_agent_steps": best[0],
        "curve": curve,
        "run_folder": str(runs[-1].parent),
    }


def learners(args: argparse.Namespace, cap_s: float) -> dict[str, Any]:
    """Training agent-steps/s (collect + update) of each registered learner on the energy
    env: one warm-up update, then updates until ``--learner-updates`` or its share of
    ``cap_s``."""
    import torch

    from gridmarl import domains
    from gridmarl.config import load_scenario
    from gridmarl.controllers import registry

    scenario = load_scenario(ROOT / "scenarios" / "community_50.yaml", args.train_set)
    dom = domains.of(scenario)
    dev = torch.device(args.device)
    make = dom.train_env_factory(scenario, dev, scenario.seed)
    names = registry.names()
    out: dict[str, Any] = {}
    share = cap_s / max(len(names), 1)
    for name in names:
        info = registry.get(name)
        why = dom.refusal(info.name, info.action_kinds, info.needs_graph)
        if why is not None:
            out[name] = {"status": "skipped", "why": why}
            continue
        try:
            cls = info.load_class()
            cfg = cls.config_class.from_options({"num_envs": args.train_envs})
            env = make(args.train_envs)
            learner = cls(env.spec, cfg, device=dev, seed=0)
            budget = 10**12
            learner.update(learner.collect(env, budget))  # warm-up
            sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
            sync()
            s0, t0 = learner.progress().agent_steps, time.perf_counter()
            n = 0
            while n < args.learner_updates and time.perf_counter() - t0 < share:
                learner.update(learner.collect(env, budget))
                n += 1
            sync()
            wall = time.perf_counter() - t0
            steps = learner.progress().agent_steps - s0
            env.close()
            out[name] = {
                "status": "ok",
                "updates": n,
                "agent_steps_per_s": steps / wall,
                "num_envs": args.train_envs,
            }
        except Exception as exc:  # noqa: BLE001 - report and go on with the next learner
            out[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:500]}
    return {"learners": out}


SECTIONS: list[tuple[str, Callable[[argparse.Namespace, float], dict[str, Any]], float]] = [
    # name, function, time cap [s] (GPU run)
    ("energy_env", energy_env, 45),
    ("routing_env", routing_env, 75),
    ("matppo_energy", matppo_energy, 270),
    ("learners", learners, 60),
]


# -- report -----------------------------------------------------------------------------------
def _n(x: float | None, unit: str = "") -> str:
    if x is None:
        return "—"
    return f"{x:,.0f}{unit}" if abs(x) >= 100 else f"{x:.3g}{unit}"


def markdown(result: dict[str, Any]) -> str:
    """The one table of the suite (a row per measurement)."""
    dev = result["device"]
    lines = [
        f"GPU suite {result['utc']}: {dev['name']} (torch {dev['torch']}, CUDA {dev['cuda']}); "
        f"`{result['command']}`, {result['wall_s']:.0f} s.",
        "",
        "| measurement | result | baseline / target (same run) |",
        "|---|---|---|",
    ]
    s = result["sections"]
    for name, sec in s.items():
        if sec.get("status") in ("skipped", "failed"):
            lines.append(f"| {name} | {sec['status']}: {sec.get('why') or sec.get('error')} | |")
            continue
        if name == "energy_env":
            lines.append(
                f"| CommunityEnv, B = {sec['num_envs']}, N = {sec['agents']} | "
                f"{_n(sec['agent_steps_per_s'])} agent-steps/s | reference "
                f"{_n(sec['reference_agent_steps_per_s'])} ({sec['ratio']:.0f}×); target ≥ 100M |"
            )
        elif name == "routing_env":
            lines.append(
                f"| RoutingEnv {sec['topology']}, B = {sec['num_envs']} | "
                f"{_n(sec['env_steps_per_s'])} env-steps/s ({_n(sec['agent_steps_per_s'])} "
                f"agent-steps/s) | reference {_n(sec['reference_env_steps_per_s'])} env-steps/s "
                f"({sec['ratio']:.1f}×) |"
            )
        elif name == "matppo_energy":
            reached = (
                f"{SHARE_TARGET:.0%} after {sec['time_to_target_s']:.0f} s "
                f"({_n(sec['agent_steps_to_target'])} agent-steps)"
                if sec["time_to_target_s"] is not None
                else f"not reached; best {sec['best_share']:.1%} at "
                f"{_n(sec['best_at_agent_steps'])} agent-steps"
            )
            lines.append(
                f"| MATPPO community_50, B = {sec['num_envs']} ({sec['ended']}) | {reached}; "
                f"{_n(sec['agent_steps_per_s'])} agent-steps/s incl. validation | target "
                f"≥ {SHARE_TARGET:.0%} in ≤ 15 min |"
            )
        elif name == "learners":
            for lname, r in sec["learners"].items():
                if r.get("status") != "ok":
                    lines.append(
                        f"| {lname} training | {r['status']}: {r.get('why') or r.get('error')} | |"
                    )
                else:
                    lines.append(
                        f"| {lname} training, energy, B = {r['num_envs']} | "
                        f"{_n(r['agent_steps_per_s'])} agent-steps/s ({r['updates']} updates) | |"
                    )
    return "\n".join(lines) + "\n"


def device_info(device: str) -> dict[str, Any]:
    """Name and versions of the device the suite ran on."""
    import torch

    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (smoke run)"
    return {"name": name, "torch": torch.__version__, "cuda": torch.version.cuda}


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "runs" / "gpu_suite"), help="output folder")
    ap.add_argument("--budget-s", type=float, default=480, help="total time budget [s]")
    ap.add_argument("--env-envs", type=int, default=4096, help="B of the env sections")
    ap.add_argument("--env-steps", type=int, default=200, help="timed energy env steps")
    ap.add_argument("--train-envs", type=int, default=1024, help="B of the training sections")
    ap.add_argument("--train-steps", type=int, default=200_000_000, help="MATPPO agent-steps cap")
    ap.add_argument("--validate-every", type=int, default=10, help="updates between validations")
    ap.add_argument("--learner-updates", type=int, default=5, help="timed updates per learner")
    ap.add_argument(
        "--set", dest="train_set", action="append", default=[], help="scenario override"
    )
    ap.add_argument("--only", action="append", default=[], help="run only these sections")
    ap.add_argument(
        "--smoke", action="store_true", help="tiny sizes on the CPU (checks the suite runs)"
    )
    args = ap.parse_args(argv)
    if args.budget_s <= 0 or min(args.env_envs, args.train_envs, args.env_steps) < 1:
        ap.error("--budget-s, --env-envs, --train-envs and --env-steps must be positive")
    bad = set(args.only) - {s[0] for s in SECTIONS}
    if bad:
        ap.error(f"--only {', '.join(sorted(bad))}; allowed: {', '.join(s[0] for s in SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import torch

    if not args.smoke and not torch.cuda.is_available():
        print(
            "gpu_suite: no CUDA GPU visible (torch.cuda.is_available() is False; torch "
            f"{torch.__version__}, CUDA build {torch.version.cuda}). Run it on a GPU machine, "
            "or --smoke to check the suite on the CPU.",
            file=sys.stderr,
        )
        return 2
    args.device = "cpu" if args.smoke else "cuda"
    if args.smoke:  # every code path, at sizes a busy 2-core CPU runs in about a minute
        torch.set_num_threads(1)
        args.env_envs, args.env_steps, args.train_envs = 8, 5, 2
        args.train_steps, args.validate_every, args.learner_updates = 4 * 24 * 2 * 2, 1, 1
        args.train_set = [*args.train_set, "community.prosumers=4", "window.validate.days=1"]
    sys.path.insert(0, str(ROOT))
    from gridmarl.core.io import write_json, write_text

    t_start = time.perf_counter()
    sections: dict[str, Any] = {}
    for name, fn, cap in SECTIONS:
        if args.only and name not in args.only:
            continue
        left = args.budget_s - (time.perf_counter() - t_start)
        if left < 10:
            sections[name] = {
                "status": "skipped",
                "why": f"total budget {args.budget_s:.0f} s spent",
            }
            continue
        print(f"gpu_suite: {name} (cap {min(cap, left):.0f} s) …", flush=True)
        t0 = time.perf_counter()
        try:
            sections[name] = {**fn(args, min(cap, left)), "section_s": time.perf_counter() - t0}
        except Exception as exc:  # noqa: BLE001 - one failed section does not stop the others
            sections[name] = {
                "status": "failed",
                "error": f"{type(exc).__name__}: {exc}"[:800],
                "traceback": traceback.format_exc()[-3000:],
            }
    result = {
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(["python", "benchmarks/gpu_suite.py", *(argv or sys.argv[1:])]),
        "device": device_info(args.device),
        "wall_s": time.perf_counter() - t_start,
        "sections": sections,
    }
    out = Path(args.out)
    write_json(out / "gpu_suite.json", result)
    text = markdown(result)
    write_text(out / "gpu_suite.md", text)
    print(text)
    print(f"wrote {out / 'gpu_suite.json'} and gpu_suite.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
