"""run_all: stages 01 -> 06 in order, skipping stages whose outputs are complete.

Stages 01-03, 05 and 06 run in this process. Fine-tuning runs (BC->RL and scratch, per
seed; with ``--methods`` also bc_naive, AIRL, GAIL, DAgger) run as parallel
``scripts/04_finetune_rl.py`` subprocesses (``--jobs``, default one per CPU core): each is
single-threaded, so on 2 cores two runs take the time of one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from optiq.atomic_io import read_json
from optiq.bc.pipeline import select_stage, train_bc_stage
from optiq.compare.pipeline import compare_stage
from optiq.compare.report import DEFAULT_METHODS, METHOD_INITS
from optiq.config import REPO_ROOT
from optiq.demos.pipeline import collect_stage
from optiq.errors import OptiqError
from optiq.evaluation.pipeline import eval_stage, policies_to_evaluate
from optiq.evaluation.video import ensure_render_backend
from optiq.paths import RunPaths, finetune_run_name, parse_finetune_run_name, shipped_expert
from optiq.records import git_state, now_iso
from optiq.rl.imitation_methods import required_timesteps
from optiq.rl.training import read_eval_csv
from optiq.run_log import append_pipeline_run
from optiq.tracking import tracking_flags

console = Console()
STAGES = ("demos", "bc", "select", "finetune", "eval", "compare")
STAGE_ALIASES = {"01": "demos", "02": "bc", "03": "select", "04": "finetune", "05": "eval", "06": "compare"}


def normalise_stage(name: str) -> str:
    name = STAGE_ALIASES.get(name[:2], name) if name[:2].isdigit() else name
    if name not in STAGES:
        raise OptiqError(f"unknown stage '{name}' for --force; choose from: {', '.join(STAGES)} (or 01..06)")
    return name


@dataclass
class PipelineOptions:
    algo: str
    seeds: list[int]
    force: set[str]
    jobs: int
    expert: Path | None
    video: bool
    device: str
    progress_bar: bool
    hparams: Path
    overrides: list[str]
    preset: str
    tracker_args: Any = None
    inits: tuple[str, ...] = ("bc", "scratch")
    obs: str | None = None  # --obs, passed on to the fine-tuning subprocesses
    source: str = "expert"  # demo source of stage 01 and its arguments (see optiq.demos.pipeline)
    controller: str | None = None
    dataset: str | None = None
    names: list[str] | None = None
    methods: tuple[str, ...] | None = None  # --methods of stage 06 (None: its default rows)


def inits_for_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """The stage-04 ``--init`` of each method of ``--methods`` ("bc", BC only, has no fine-tuning run)."""
    return tuple(METHOD_INITS[name] for name in methods if name in METHOD_INITS)


def _finished(run_json: Path) -> bool:
    return run_json.is_file() and bool(read_json(run_json).get("finished"))


def stage_complete(stage: str, config: dict[str, Any], paths: RunPaths, opts: PipelineOptions) -> bool:
    """Whether a stage's outputs are all present and were written by a finished run."""
    if stage == "demos":
        return (paths.demos / "demos.npz").is_file() and _finished(paths.demos / "run.json")
    if stage == "bc":
        index = paths.bc / "checkpoints.json"
        if not index.is_file() or not _finished(paths.bc / "run.json"):
            return False
        data = read_json(index)
        last_epoch = max((c["epoch"] for c in data["checkpoints"]), default=0)
        return data.get("algo") == opts.algo and last_epoch >= config["bc"]["n_epochs"]
    if stage == "select":
        return (paths.select / "best.json").is_file() and _finished(paths.select / "run.json")
    if stage == "finetune":
        return all(_finetune_complete(paths.finetune(opts.algo, init, seed), config) for init, seed in _jobs(opts))
    if stage == "eval":
        labels = ["bc_only"] + [finetune_run_name(opts.algo, init, seed) for init, seed in _jobs(opts)]
        return all(_finished(paths.evaluation / label / "run.json") for label in labels)
    if stage == "compare":
        results = paths.compare / "results.json"
        if not (_finished(paths.compare / "run.json") and (paths.compare / "results.md").is_file()):
            return False
        compared = read_json(results).get("methods", list(DEFAULT_METHODS)) if results.is_file() else None
        return compared == list(opts.methods or DEFAULT_METHODS)
    raise AssertionError(stage)


def _finetune_complete(run_dir: Path, config: dict[str, Any]) -> bool:
    summary = run_dir / "summary.json"
    parsed = parse_finetune_run_name(run_dir.name)
    needed = required_timesteps(config, parsed[1] if parsed else "")
    return summary.is_file() and read_json(summary)["total_timesteps"] >= needed


def _jobs(opts: PipelineOptions) -> list[tuple[str, int]]:
    return [(init, seed) for seed in opts.seeds for init in opts.inits]


def _clear(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)


def run_pipeline(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions) -> dict[str, Any]:
    """Run stages 01-06 and record the run in ``outputs/pipeline_runs.json``; return the comparison."""
    entry = {
        "env_id": config["env_id"],
        "preset": opts.preset,
        "run_dir": str(paths.root),
        "algo": opts.algo,
        "seeds": opts.seeds,
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "git": git_state(),
        "started": now_iso(),
    }
    try:
        summary = _run_stages(config, paths, opts)
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        append_pipeline_run(paths.outputs, {**entry, "finished": now_iso(), "status": status, "error": str(exc)})
        raise
    append_pipeline_run(
        paths.outputs,
        {**entry, "finished": now_iso(), "status": "ok", "verdict": summary["verdict"], "results": str(paths.compare)},
    )
    return summary


def _run_stages(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions) -> dict[str, Any]:
    if opts.video:
        ensure_render_backend()  # before any env is made: MuJoCo fixes its GL backend at import
    started = time.monotonic()
    timings: dict[str, float] = {}
    seed = opts.seeds[0]
    upstream_ran = False
    for stage in STAGES:
        # Once a stage has (re)run, every later stage reads new inputs and must run too.
        if not upstream_ran and stage not in opts.force and stage_complete(stage, config, paths, opts):
            console.print(f"[dim]skip {stage}: outputs complete (use --force {stage} to redo)[/]")
            continue
        upstream_ran = True
        t0 = time.monotonic()
        console.rule(f"stage {STAGES.index(stage) + 1:02d}: {stage}")
        if stage == "demos":
            if stage in opts.force:
                _clear(paths.demos)
            train_expert_now = (
                opts.source == "expert" and opts.expert is None and shipped_expert(config["env_id"]) is None
            )
            collect_stage(
                config,
                paths,
                seed,
                expert=opts.expert,
                train=train_expert_now,
                device=opts.device,
                progress_bar=opts.progress_bar,
                source=opts.source,
                controller=opts.controller,
                dataset=opts.dataset,
                names=opts.names,
            )
        elif stage == "bc":
            restart = stage in opts.force
            train_bc_stage(
                config,
                paths,
                seed,
                opts.algo,
                restart=restart,
                device=opts.device,
                progress_bar=opts.progress_bar,
                tracker_args=opts.tracker_args,
            )
        elif stage == "select":
            select_stage(config, paths, seed, device=opts.device)
        elif stage == "finetune":
            run_finetune_jobs(config, paths, opts)
        elif stage == "eval":
            eval_stage(config, paths, seed=10_000, video=opts.video, device=opts.device)
        elif stage == "compare":
            compare_stage(config, paths, opts.algo, opts.methods)
        timings[stage] = time.monotonic() - t0
    summary = read_json(paths.compare / "results.json")
    _print_summary(summary, paths, timings, time.monotonic() - started)
    return summary


def run_finetune_jobs(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions) -> None:
    """Run every (init, seed) fine-tuning job as a subprocess, ``opts.jobs`` at a time."""
    pending = [
        (init, seed)
        for init, seed in _jobs(opts)
        if "finetune" in opts.force or not _finetune_complete(paths.finetune(opts.algo, init, seed), config)
    ]
    totals = {job: required_timesteps(config, job[0]) for job in pending}
    running: dict[tuple[str, int], tuple[subprocess.Popen[bytes], Any]] = {}
    failed: list[str] = []
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        TextColumn("{task.completed:>9,.0f}/{task.total:,.0f} steps"),
        TimeElapsedColumn(),
        console=console,
        disable=not opts.progress_bar,
    ) as progress:
        tasks = {job: progress.add_task(finetune_run_name(opts.algo, *job), total=totals[job]) for job in pending}
        while pending or running:
            while pending and len(running) < opts.jobs:
                job = pending.pop(0)
                running[job] = _launch(job, paths, opts)
            time.sleep(1.0)
            for job, (proc, log) in list(running.items()):
                progress.update(tasks[job], completed=_progress_steps(paths.finetune(opts.algo, *job)))
                if proc.poll() is not None:
                    log.close()
                    del running[job]
                    name = finetune_run_name(opts.algo, *job)
                    if proc.returncode != 0:
                        failed.append(name)
                        console.print(
                            f"[red]{name} failed (exit {proc.returncode}); see {_log_path(paths, opts, job)}[/]"
                        )
                    else:
                        progress.update(tasks[job], completed=totals[job])
    if failed:
        raise OptiqError(
            f"fine-tuning failed for {', '.join(failed)}; logs are in {paths.finetune_root} (rerun to resume)"
        )


def _log_path(paths: RunPaths, opts: PipelineOptions, job: tuple[str, int]) -> Path:
    return paths.finetune_root / f"{finetune_run_name(opts.algo, *job)}.log"


def _launch(job: tuple[str, int], paths: RunPaths, opts: PipelineOptions) -> tuple[subprocess.Popen[bytes], Any]:
    init, seed = job
    command = [
        sys.executable,
        str(REPO_ROOT / "scripts" / "04_finetune_rl.py"),
        "--env",
        paths.env_id,
        "--preset",
        opts.preset,
        "--run-name",
        paths.run_name,
        "--outputs",
        str(paths.outputs),
        "--hparams",
        str(opts.hparams),
        "--algo",
        opts.algo,
        "--init",
        init,
        "--seed",
        str(seed),
        "--device",
        opts.device,
        "--no-progress",
    ]
    if opts.obs is not None:
        command += ["--obs", opts.obs]
    for override in opts.overrides:
        command += ["--set", override]
    if "finetune" in opts.force:
        command.append("--restart")
    if opts.tracker_args is not None:
        command += tracking_flags(opts.tracker_args)
    log_path = _log_path(paths, opts, job)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), log


def _progress_steps(run_dir: Path) -> float:
    try:  # eval.csv is rewritten atomically, so a read never sees half a file
        rows = read_eval_csv(run_dir / "eval.csv")
    except OSError:
        return 0.0
    return rows[-1]["timesteps"] if rows else 0.0


def _print_summary(summary: dict[str, Any], paths: RunPaths, timings: dict[str, float], elapsed: float) -> None:
    table = Table(
        title=f"{summary['env_id']} ({summary['algo'].upper()}): expert return {summary['expert_return']:,.0f}"
    )
    for column in ("method", "n", "final return", "normalised", "steps to 90 % expert", "speedup"):
        table.add_column(column)
    for row in summary["rows"]:
        aggregate = "IQM" if row["aggregate"] == "iqm" else "mean"  # IQM of <= 3 seeds is their mean
        steps = row.get("steps_to_threshold")
        bound = ">= " if row.get("steps_is_lower_bound") else ""
        table.add_row(
            row["method"],
            str(row["n"]),
            f"{aggregate} {row['final_return']:,.1f}",
            f"{row['normalized']:.2f}",
            "" if steps is None else f"{bound}{steps:,.0f}",
            summary["speedup"]["text"] if row["method"] == "bc_rl" else "",
        )
    console.print(table)
    console.print(f"[bold]Verdict[/]: {summary['verdict']}")
    if timings:
        console.print(
            "stage times: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()) + f"; total {elapsed:.0f}s"
        )
    console.print(f"results: {paths.compare / 'results.md'}")
    labels = policies_to_evaluate(paths)
    videos = [
        paths.evaluation / label / "video.mp4" for label in labels if (paths.evaluation / label / "video.mp4").is_file()
    ]
    if videos:
        console.print(f"videos: {paths.evaluation}/*/video.mp4 ({len(videos)})")
