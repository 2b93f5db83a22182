#!/usr/bin/env python
"""Does fine-tuning go beyond the demonstrations? BC -> RL against its BC start, its
demonstrator and the strongest from-scratch agent, per seed, over the whole run.

Two demo regimes per env: ``expert`` (the shipped expert, experts/<env>/) and ``medium``
(a demonstrator at 30-50 % of the expert's return, experts/<env>-medium/; both made by
01_collect_demos.py --train-expert, commands in their expert.json). For every seed each
regime collects its own demos, trains and selects its own BC (preset full: 20 episodes, 200
epochs), then fine-tunes with each method (04_finetune_rl.py --init bc; ``ppo``: HybridPPO
with finetune.ppo.bc_rl, ``sac``: DemoSAC with finetune.sac.bc_rl). Evaluations: 10
deterministic episodes every 10k env steps.

Scratch agents do not depend on BC, so their curves are computed once and stored under
bench/reference/<env>/ with the command that made them (``--make-reference``): PPO with
rl-baselines3-zoo's tuned settings (finetune.ppo), PPO with SB3's defaults, and SAC
(finetune.sac). The best of them at the budget (highest mean final return) is the baseline.

Per seed (see optiq/compare/finetune_metrics.py): floor = lowest evaluation after step 0 /
return at step 0 (expert regime); beyond = final / demonstrator return (medium regime);
vs_scratch = final / best scratch final; speedup = steps best scratch needs to reach its
own final return / steps this run needs. Targets (median over seeds, each env): floor >=
0.9 on every seed, beyond >= 2.0, vs_scratch >= 1.5, speedup >= 5 (with --full also final
>= 1.05 x expert in the expert regime). The last line is
`floor=<x> beyond=<y> vs_scratch=<z> speedup=<w>` for the first method on the first env,
vs_scratch and speedup taken from the worse regime.

  python bench/sample_efficiency.py --quick                   # Hopper-v5, 3 seeds, 200k steps
  python bench/sample_efficiency.py --full                    # Hopper-v5 + Walker2d-v5, 500k steps
  python bench/sample_efficiency.py --quick --methods ppo sac # also the off-policy method
  python bench/sample_efficiency.py --make-reference --envs Hopper-v5 --budget 200000
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from optiq.atomic_io import copy_file, read_json, write_json, write_text  # noqa: E402
from optiq.bc.pipeline import select_stage, train_bc_stage  # noqa: E402
from optiq.compare.finetune_metrics import (  # noqa: E402
    Speedup,
    final_return,
    first_sustained_step,
    floor_ratio,
    mean_curve,
    median_speedup,
    speedup,
)
from optiq.config import DEFAULT_HPARAMS, load_env_config, parse_override  # noqa: E402
from optiq.demos.pipeline import collect_stage  # noqa: E402
from optiq.paths import DEFAULT_OUTPUTS, SHIPPED_EXPERTS, RunPaths  # noqa: E402
from optiq.records import git_state, package_versions  # noqa: E402
from optiq.rl.training import read_eval_csv  # noqa: E402

REFERENCE_DIR = Path(os.environ.get("OPTIQ_BENCH_REFERENCE", REPO / "bench" / "reference"))
REGIMES = ("expert", "medium")
EVAL = ["eval.eval_freq=10000", "eval.n_eval_episodes=10"]
# Scratch recipes: (algorithm, --set overrides). SB3's defaults: PPO() with its own settings.
SCRATCH_RECIPES: dict[str, tuple[str, list[str]]] = {
    "ppo_zoo": ("ppo", []),
    "ppo_sb3": ("ppo", ["finetune.ppo.hyperparams={}", "finetune.ppo.policy_kwargs={}"]),
    "sac": ("sac", []),
}
TARGETS = {"floor": 0.9, "beyond": 2.0, "vs_scratch": 1.5, "speedup": 5.0, "final_vs_expert": 1.05}


@dataclass(frozen=True)
class Job:
    """One 04_finetune_rl.py run."""

    name: str
    run_dir: Path
    command: list[str]


def finetune_command(
    env_id: str, paths: RunPaths, algo: str, init: str, seed: int, budget: int, overrides: list[str]
) -> list[str]:
    command = [
        sys.executable,
        str(REPO / "scripts" / "04_finetune_rl.py"),
        "--env",
        env_id,
        "--preset",
        "full",
        "--run-name",
        paths.run_name,
        "--outputs",
        str(paths.outputs),
        "--algo",
        algo,
        "--init",
        init,
        "--seed",
        str(seed),
        "--total-steps",
        str(budget),
        "--device",
        "cpu",
        "--no-progress",
    ]
    for override in [*EVAL, *overrides]:
        command += ["--set", override]
    return command


def run_jobs(jobs: list[Job], n_parallel: int) -> None:
    """Run ``jobs`` as subprocesses, ``n_parallel`` at a time; skip those already finished."""
    pending = [j for j in jobs if not _finished(j.run_dir, j.command)]
    running: list[tuple[Job, subprocess.Popen[bytes], Any]] = []
    failed = []
    total, started = len(pending), time.monotonic()
    print(f"{total} fine-tuning runs to do ({len(jobs) - total} already finished), {n_parallel} at a time", flush=True)
    while pending or running:
        while pending and len(running) < n_parallel:
            job = pending.pop(0)
            job.run_dir.parent.mkdir(parents=True, exist_ok=True)
            log = open(job.run_dir.parent / f"{job.run_dir.name}.log", "ab")
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            running.append((job, subprocess.Popen(job.command, stdout=log, stderr=subprocess.STDOUT, env=env), log))
        time.sleep(5)
        for entry in list(running):
            job, proc, log = entry
            if proc.poll() is None:
                continue
            log.close()
            running.remove(entry)
            done = total - len(pending) - len(running)
            status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
            print(f"[{done}/{total}, {time.monotonic() - started:.0f}s] {job.name}: {status}", flush=True)
            if proc.returncode != 0:
                failed.append(job.name)
    if failed:
        raise SystemExit(f"runs failed: {', '.join(failed)} (see the .log beside each run folder; rerun to resume)")


def _finished(run_dir: Path, command: list[str]) -> bool:
    summary = run_dir / "summary.json"
    budget = int(command[command.index("--total-steps") + 1])
    return summary.is_file() and read_json(summary)["total_timesteps"] >= budget


# ----- scratch reference curves ----------------------------------------------------
def reference_paths(outputs: Path, env_id: str, recipe: str) -> RunPaths:
    return RunPaths(outputs, env_id, f"reference_{recipe}")


def make_reference(
    env_id: str, seeds: list[int], budget: int, outputs: Path, n_parallel: int, recipes: list[str]
) -> None:
    """Train the scratch ``recipes`` for ``seeds`` to ``budget`` and store the curves in bench/reference."""
    jobs = []
    for recipe in recipes:
        algo, overrides = SCRATCH_RECIPES[recipe]
        paths = reference_paths(outputs, env_id, recipe)
        for seed in seeds:
            command = finetune_command(env_id, paths, algo, "scratch", seed, budget, overrides)
            jobs.append(Job(f"{env_id} {recipe} seed {seed}", paths.finetune(algo, "scratch", seed), command))
    run_jobs(jobs, n_parallel)
    folder = REFERENCE_DIR / env_id
    index_path = folder / "reference.json"
    index = read_json(index_path) if index_path.is_file() else {"env_id": env_id, "recipes": {}}
    for recipe in recipes:
        algo, overrides = SCRATCH_RECIPES[recipe]
        paths = reference_paths(outputs, env_id, recipe)
        runs = {}
        for seed in seeds:
            run_dir = paths.finetune(algo, "scratch", seed)
            copy_file(run_dir / "eval.csv", folder / f"{recipe}_seed{seed}.csv")
            record = read_json(run_dir / "run.json")
            runs[str(seed)] = {
                "budget": budget,
                "final_return": final_return(read_eval_csv(run_dir / "eval.csv")),
                "command": " ".join(record["command"]),
                "git": record.get("git"),
                "versions": record.get("versions"),
            }
        entry = index["recipes"].setdefault(recipe, {"algo": algo, "overrides": overrides, "runs": {}})
        entry["runs"].update(runs)
    index["made_by"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    write_json(index_path, index)
    print(f"reference curves -> {folder}")


def load_reference(env_id: str, budget: int) -> dict[str, list[list[dict[str, float]]]]:
    """Scratch curves per recipe, cut at ``budget``; each must reach it."""
    index_path = REFERENCE_DIR / env_id / "reference.json"
    if not index_path.is_file():
        raise SystemExit(
            f"no scratch reference for {env_id}: run {Path(__file__).name} --make-reference --envs {env_id}"
        )
    index = read_json(index_path)
    curves: dict[str, list[list[dict[str, float]]]] = {}
    for recipe, entry in index["recipes"].items():
        for seed in sorted(entry["runs"], key=int):
            curve = read_eval_csv(REFERENCE_DIR / env_id / f"{recipe}_seed{seed}.csv")
            if curve[-1]["timesteps"] < budget:
                raise SystemExit(
                    f"reference {recipe} seed {seed} of {env_id} stops at {curve[-1]['timesteps']:.0f} steps < "
                    f"{budget}: run --make-reference --envs {env_id} --budget {budget}"
                )
            curves.setdefault(recipe, []).append(_cut(curve, budget))
    return curves


def _cut(curve: list[dict[str, float]], budget: int) -> list[dict[str, float]]:
    """Rows up to ``budget``; the last row is the final evaluation (a run may overshoot by a rollout)."""
    kept = [row for row in curve if row["timesteps"] <= budget]
    later = [row for row in curve if row["timesteps"] > budget]
    if later and later[0]["timesteps"] < budget + 10_000 and (not kept or kept[-1]["timesteps"] < budget):
        kept.append(later[0])
    return kept


def best_scratch(curves: dict[str, list[list[dict[str, float]]]]) -> dict[str, Any]:
    """The recipe with the highest mean final return, its final and the steps it needs to reach it."""
    finals = {recipe: float(np.mean([final_return(c) for c in cs])) for recipe, cs in curves.items()}
    recipe = max(finals, key=finals.get)  # type: ignore[arg-type]
    mean = mean_curve(curves[recipe])
    steps = first_sustained_step(mean, finals[recipe])
    return {"recipe": recipe, "final": finals[recipe], "steps": steps, "finals": finals}


# ----- the benchmark -----------------------------------------------------------------
def demonstrator(env_id: str, regime: str) -> Path:
    folder = SHIPPED_EXPERTS / (env_id if regime == "expert" else f"{env_id}-{regime}")
    if not (folder / "expert.json").is_file():
        raise SystemExit(f"no {regime} demonstrator for {env_id} in {folder} (train it with 01_collect_demos.py)")
    return folder


def prepare_bc(env_id: str, regime: str, algo: str, seed: int, outputs: Path, overrides: list[str]) -> RunPaths:
    """Demos from the regime's demonstrator, BC and checkpoint selection for one seed (skipped when done)."""
    config = load_env_config(env_id, "full", DEFAULT_HPARAMS, dict(parse_override(o) for o in overrides))
    paths = RunPaths(outputs, env_id, f"{regime}_{algo}_seed{seed}")
    if not (paths.demos / "metadata.json").is_file():
        collect_stage(config, paths, seed, expert=demonstrator(env_id, regime), progress_bar=False)
    if not (paths.bc / "run.json").is_file() or not read_json(paths.bc / "run.json").get("finished"):
        train_bc_stage(config, paths, seed, algo, progress_bar=False)
    if not (paths.select / "best.json").is_file():
        select_stage(config, paths, seed)
    return paths


def run_env(env_id: str, methods: list[str], seeds: list[int], budget: int, args: argparse.Namespace) -> dict[str, Any]:
    expert_return = read_json(demonstrator(env_id, "expert") / "expert.json")["return_mean"]
    regimes = [regime for regime in REGIMES if regime in args.regimes]
    jobs, runs = [], {}
    for regime in regimes:
        for method in methods:
            for seed in seeds:
                paths = prepare_bc(env_id, regime, method, seed, args.outputs, args.overrides)
                run_dir = paths.finetune(method, "bc", seed)
                command = finetune_command(env_id, paths, method, "bc", seed, budget, args.overrides)
                jobs.append(Job(f"{env_id} {regime} {method} seed {seed}", run_dir, command))
                runs[(regime, method, seed)] = run_dir
    run_jobs(jobs, args.jobs)
    scratch = best_scratch(load_reference(env_id, budget))

    results: dict[str, Any] = {
        "env_id": env_id,
        "budget": budget,
        "seeds": seeds,
        "expert_return": expert_return,
        "scratch": scratch,
        "regimes": {},
    }
    for regime in regimes:
        demo_return = read_json(demonstrator(env_id, regime) / "expert.json")["return_mean"]
        results["regimes"][regime] = {"demonstrator_return": demo_return, "methods": {}}
        for method in methods:
            rows = []
            for seed in seeds:
                curve = _cut(read_eval_csv(runs[(regime, method, seed)] / "eval.csv"), budget)
                final = final_return(curve)
                sp = speedup(curve, scratch["steps"], scratch["final"], budget)
                rows.append(
                    {
                        "seed": seed,
                        "bc_return": curve[0]["return_mean"],
                        "final": final,
                        "min_after_start": min(r["return_mean"] for r in curve[1:]),
                        "floor": floor_ratio(curve),
                        "beyond": final / demo_return,
                        "vs_scratch": final / scratch["final"],
                        "speedup": sp.value,
                        "speedup_text": sp.text(),
                        "speedup_at_start": sp.at_start,
                        "speedup_upper_bound": sp.upper_bound,
                        "final_vs_expert": final / expert_return,
                    }
                )
            med = median_speedup([Speedup(r["speedup"], r["speedup_at_start"], r["speedup_upper_bound"]) for r in rows])
            summary = {
                key: float(np.median([r[key] for r in rows]))
                for key in ("bc_return", "final", "floor", "beyond", "vs_scratch", "final_vs_expert")
            }
            summary["floor_min"] = float(min(r["floor"] for r in rows))
            summary["speedup"] = med.value
            summary["speedup_text"] = med.text()
            results["regimes"][regime]["methods"][method] = {"seeds": rows, "median": summary}
    return results


def _median(results: dict[str, Any], regime: str, method: str) -> dict[str, Any] | None:
    """The per-seed medians of one method in one regime, or None where that regime was not run."""
    entry = results["regimes"].get(regime)
    return None if entry is None else entry["methods"][method]["median"]


def targets(results: dict[str, Any], method: str, full: bool) -> list[tuple[str, str, bool]]:
    """(metric, measured, met) for every target of one method on one env ("not run" where its regime was not)."""
    expert = _median(results, "expert", method)
    medium = _median(results, "medium", method)
    ran = [m for m in (expert, medium) if m is not None]
    worst_vs = min(m["vs_scratch"] for m in ran)
    worst_speed = min(m["speedup"] for m in ran)
    which = "worse regime" if len(ran) == 2 else f"{'expert' if expert is not None else 'medium'} only"
    checks = [
        ("floor (every seed, expert)", expert and expert["floor_min"], "{:.2f}", TARGETS["floor"]),
        ("beyond (medium)", medium and medium["beyond"], "{:.2f}", TARGETS["beyond"]),
        (f"vs_scratch ({which})", worst_vs, "{:.2f}", TARGETS["vs_scratch"]),
        (f"speedup ({which})", worst_speed, "speed", TARGETS["speedup"]),
    ]
    if full:
        checks.append(
            ("final/expert (expert)", expert and expert["final_vs_expert"], "{:.2f}", TARGETS["final_vs_expert"])
        )
    return [
        (
            name,
            "not run" if value is None else (_speed_text(value) if fmt == "speed" else fmt.format(value)),
            value is not None and value >= target,
        )
        for name, value, fmt, target in checks
    ]


def _speed_text(value: float) -> str:
    return "at start" if math.isinf(value) else f"{value:.2f}"


def report(all_results: list[dict[str, Any]], methods: list[str], full: bool) -> str:
    lines = []
    for res in all_results:
        sc = res["scratch"]
        finals = ", ".join(f"{k} {v:,.0f}" for k, v in sc["finals"].items())
        lines.append(
            f"\n## {res['env_id']}: budget {res['budget']:,} env steps, seeds {res['seeds']}, "
            f"expert {res['expert_return']:,.0f}"
        )
        steps = "never" if sc["steps"] is None else f"{sc['steps']:,.0f}"
        lines.append(f"best scratch: {sc['recipe']} final {sc['final']:,.0f} (reached at {steps} steps); all: {finals}")
        for regime, reg in res["regimes"].items():
            lines.append(f"\n{regime} demos (demonstrator {reg['demonstrator_return']:,.0f})")
            lines.append(
                f"{'method':<6} {'seed':>4} {'BC':>7} {'final':>7} {'min>0':>7} {'floor':>6} "
                f"{'beyond':>7} {'vs_scr':>7} {'speedup':>9}"
            )
            for method, data in reg["methods"].items():
                for r in data["seeds"]:
                    lines.append(
                        f"{method:<6} {r['seed']:>4} {r['bc_return']:>7.0f} {r['final']:>7.0f} "
                        f"{r['min_after_start']:>7.0f} {r['floor']:>6.2f} {r['beyond']:>7.2f} "
                        f"{r['vs_scratch']:>7.2f} {r['speedup_text']:>9}"
                    )
                m = data["median"]
                lines.append(
                    f"{method:<6} {'med':>4} {m['bc_return']:>7.0f} {m['final']:>7.0f} {'':>7} {m['floor']:>6.2f} "
                    f"{m['beyond']:>7.2f} {m['vs_scratch']:>7.2f} {m['speedup_text']:>9}"
                )
        for method in methods:
            lines.append(f"\ntargets, {method}:")
            for name, value, met in targets(res, method, full):
                lines.append(f"  {name:<28} {value:>9}  {'met' if met else 'MISSED'}")
    return "\n".join(lines)


def summary_line(results: dict[str, Any], method: str) -> str:
    metrics = dict((name.split(" ")[0], value) for name, value, _ in targets(results, method, False))
    return " ".join(f"{key}={metrics[key]}" for key in ("floor", "beyond", "vs_scratch", "speedup")).replace(
        "not run", "n/a"
    )


def _tag(methods: list[str], regimes: list[str], budget: int) -> str:
    """File-name tag of one benchmark run: ``ppo_200000``, ``sac_medium_100000``."""
    parts = ["-".join(methods)] + ([] if set(regimes) == set(REGIMES) else ["-".join(regimes)])
    return "_".join([*parts, str(budget)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="Hopper-v5, 3 seeds, 200k steps (default)")
    mode.add_argument("--full", action="store_true", help="Hopper-v5 and Walker2d-v5, 500k steps")
    mode.add_argument("--make-reference", action="store_true", help="train and store the scratch reference curves")
    parser.add_argument("--envs", nargs="+", default=None, help="envs (default: per mode)")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=["ppo", "sac"],
        default=None,
        help="BC->RL methods, by algorithm (default: each env's run.algo)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--regimes", nargs="+", choices=REGIMES, default=list(REGIMES), help="demo regimes to run (default: both)"
    )
    parser.add_argument("--budget", type=int, default=None, help="env steps per run (quick 200k, full 500k)")
    parser.add_argument("--outputs", type=Path, default=DEFAULT_OUTPUTS / "bench")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs in parallel")
    parser.add_argument(
        "--recipes",
        nargs="+",
        choices=list(SCRATCH_RECIPES),
        default=list(SCRATCH_RECIPES),
        help="--make-reference: which scratch recipes to train",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="hparams override for the BC -> RL runs (and their BC)",
    )
    args = parser.parse_args()
    envs = args.envs or (["Hopper-v5", "Walker2d-v5"] if args.full else ["Hopper-v5"])
    budget = args.budget or (500_000 if args.full else 200_000)
    if args.make_reference:
        for env_id in envs:
            make_reference(env_id, args.seeds, budget, args.outputs, args.jobs, args.recipes)
        return
    all_results = []
    for env_id in envs:
        methods = args.methods or [load_env_config(env_id, "full")["run"]["algo"]]
        results = run_env(env_id, methods, args.seeds, budget, args)
        results.update(methods=methods, command=" ".join(sys.argv), git=git_state(), versions=package_versions())
        write_json(args.outputs / env_id / f"sample_efficiency_{_tag(methods, args.regimes, budget)}.json", results)
        all_results.append(results)
    text = report(all_results, all_results[0]["methods"], args.full)
    write_text(
        args.outputs / f"sample_efficiency_{_tag(all_results[0]['methods'], args.regimes, budget)}.md", text + "\n"
    )
    print(text)
    print(summary_line(all_results[0], all_results[0]["methods"][0]))


if __name__ == "__main__":
    main()
