"""run_all: stages 01 -> 06 in order, reusing only outputs whose fingerprint is current.

Every stage is made of units: the demos (shared, or one per seed with ``--demos-per-seed``),
one BC and one checkpoint selection per seed (``02_bc/seed<N>/``, ``03_select/seed<N>/``),
one fine-tuning run per (init, seed), one evaluation per policy (``bc_only_seed<N>`` and each
run), and the comparison. A unit is reused only if it finished and the ``fingerprint.json``
beside it equals the one the current settings give (optiq.records: the settings the stage
reads, its seed, the sha256 of its input files and the stage's code version). Otherwise it
reruns, with one line saying why (``finetune.ppo.bc_rl.bc_coeff changed 1.0 -> 0.5:
rerunning``); an unfinished unit with a current fingerprint resumes. Since fingerprints hold
the identity of the inputs, a unit whose upstream was redone is redone too. ``--force
STAGE`` redoes that stage and every later one.

Before a stage reuses outputs it checks they can be read (a corrupt demos file is a one-line
error before anything trains), and before fine-tuning starts it loads every BC checkpoint the
jobs start from.

Stages 01 and 06 run in this process. Stages 02-05 are one graph of subprocess jobs
(``python -m optiq train-bc --seed N``, ``select-best --seed N``, ``finetune`` per init and
seed, ``eval-video --only LABEL``: scripts/02-05 as optiq.commands), ``--jobs`` at a time (default one per
CPU core): a job starts as soon as what it reads exists and a slot is free, so BC -> RL seed 0
starts when BC seed 0 is selected, runs that read no BC (scratch) fill any slot the BC chain
leaves free, and each policy is evaluated when it is ready; no core idles waiting for a whole
stage to finish. A unit is planned (reused, resumed or redone) when its inputs
exist. Every process gets its share of the cores as torch threads (``OPTIQ_TORCH_THREADS``,
default 1: optiq.seeding.threads_per_process), so results do not depend on what ran beside.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from optiq.atomic_io import read_json
from optiq.bc.pipeline import bc_epochs, bc_fingerprint, bc_is_complete, select_fingerprint, select_is_complete
from optiq.bc.train import CHECKPOINTS_JSON, read_metrics
from optiq.commands import command_line
from optiq.compare.methods import METHOD_INITS
from optiq.compare.pipeline import compare_fingerprint, compare_is_complete, compare_stage
from optiq.demos.pipeline import collect_stage, demos_fingerprint, demos_is_complete
from optiq.demos.storage import DEMOS_FILE, load_demos
from optiq.errors import OptiqError
from optiq.evaluation.pipeline import (
    bc_label,
    eval_fingerprint,
    eval_is_complete,
    parse_bc_label,
    policies_to_evaluate,
    record_side_by_side_video,
)
from optiq.paths import RunPaths, finetune_run_name, seed_folders, shipped_expert
from optiq.policies import PolicyFiles
from optiq.records import git_state, now_iso, read_fingerprint, stale_reason
from optiq.rendering import ensure_render_backend
from optiq.rl.imitation_methods import required_timesteps
from optiq.rl.inits import IMITATION_INITS
from optiq.rl.pipeline import bc_start, finetune_fingerprint, finetune_is_complete, has_run_outputs, uses_demos
from optiq.rl.training import read_eval_csv
from optiq.run_log import append_pipeline_run
from optiq.seeding import child_thread_env, configure_torch_threads
from optiq.stage_options import EvalOptions, FinetuneJobOptions, RunSelection, SelectOptions, TrainBCOptions
from optiq.tracking import tracking_flags

console = Console()
STAGES = ("demos", "bc", "select", "finetune", "eval", "compare")
STAGE_ALIASES = {"01": "demos", "02": "bc", "03": "select", "04": "finetune", "05": "eval", "06": "compare"}
EVAL_SEED = 10_000  # seed of stage 05's evaluation episodes: never used in training
BC_STARTS = ("bc", "bc_naive")  # stage-04 inits that start from the selected BC checkpoint
# Fine-tuning jobs start longest first, so the last ones to finish run side by side.
JOB_ORDER = {"airl": 0, "gail": 0, "ipmd": 0, "bc": 1, "pretrained": 2, "bc_naive": 2, "scratch": 3, "dagger": 4}


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
    obs: str | None = None  # --obs, passed on to the stage subprocesses
    source: str = "expert"  # demo source of stage 01 and its arguments (see optiq.demos.pipeline)
    controller: str | None = None
    dataset: str | None = None
    names: list[str] | None = None
    methods: tuple[str, ...] | None = None  # --methods of stage 06 (None: its default rows)
    demos_per_seed: bool = False  # each BC seed collects its own demos (01_demos/seed<N>/) with its seed
    demos_seed: int = 0  # seed of the shared demos


@dataclass
class Unit:
    """One piece of a stage's work: a demos folder, a BC seed, a fine-tuning run, an evaluation, the comparison.

    ``status``: "complete" (reused), "new" (nothing yet), "resume" (unfinished, fingerprint current) or
    "stale" (outputs from other settings or inputs: redone from scratch); ``reason`` says why.
    """

    name: str
    key: Any
    folder: Path
    status: str
    reason: str | None = None

    @property
    def restart(self) -> bool:
        return self.status == "stale"


def inits_for_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """The stage-04 ``--init`` of each method of ``--methods`` ("bc_only" has no fine-tuning run)."""
    return tuple(METHOD_INITS[name] for name in methods if name in METHOD_INITS)


def _jobs(opts: PipelineOptions) -> list[tuple[str, int]]:
    return [(init, seed) for seed in opts.seeds for init in opts.inits]


def _clear(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)


def _unit(name: str, key: Any, folder: Path, done: bool, fingerprint: dict[str, Any], started: bool) -> Unit:
    """A unit whose outputs are ``done`` (finished) or ``started``: complete, stale, resumable or new."""
    reason = stale_reason(read_fingerprint(folder), fingerprint) if (done or started) else None
    if reason is not None:
        return Unit(name, key, folder, "stale", reason)
    if done:
        return Unit(name, key, folder, "complete")
    return Unit(name, key, folder, "resume" if started else "new")


# ----- planning: which units of a stage are complete ------------------------------------------
def _train_expert_now(config: dict[str, Any], opts: PipelineOptions) -> bool:
    return opts.source == "expert" and opts.expert is None and shipped_expert(config["env_id"]) is None


def _per_seed_expert(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions) -> Path | None:
    """With ``--demos-per-seed`` and no expert to hand: the one expert trained (once) for every seed's demos."""
    if not (opts.demos_per_seed and _train_expert_now(config, opts)):
        return None
    return paths.trained_expert(config["expert"]["algo"], opts.demos_seed)


def _demos_fingerprint(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions, seed: int) -> dict[str, Any]:
    trained = _per_seed_expert(config, paths, opts)
    expert = trained if trained is not None else opts.expert
    train = _train_expert_now(config, opts) and trained is None
    return demos_fingerprint(config, seed, opts.source, expert, train, opts.controller, opts.dataset, opts.names)


def _plan_demos(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions) -> list[Unit]:
    if not opts.demos_per_seed:
        folder, seed = paths.demos, opts.demos_seed
        done = demos_is_complete(folder)
        unit = _unit("", None, folder, done, _demos_fingerprint(config, paths, opts, seed), done)
        if unit.status == "complete" and seed_folders(folder):
            unit = Unit("", None, folder, "stale", "01_demos/ holds per-seed demos (--demos-per-seed is off)")
        return [unit]
    units = []
    for seed in opts.seeds:
        folder = paths.demos_dir(seed)
        done = demos_is_complete(folder)
        units.append(_unit(f"seed {seed}", seed, folder, done, _demos_fingerprint(config, paths, opts, seed), done))
    return units


def _bc_unit(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions, seed: int) -> Unit:
    n_epochs = int(config["bc"]["n_epochs"])
    folder = paths.bc_dir(seed)
    fingerprint = bc_fingerprint(config, opts.algo, paths.demos_for(seed) / DEMOS_FILE, seed)
    trained = bc_epochs(folder)
    unit = _unit(f"seed {seed}", seed, folder, False, fingerprint, trained > 0)
    if unit.status == "resume":
        if trained > n_epochs:
            unit = Unit(unit.name, seed, folder, "stale", f"bc.n_epochs changed {trained} -> {n_epochs}")
        elif bc_is_complete(folder, n_epochs):
            unit = Unit(unit.name, seed, folder, "complete")
        else:
            unit.reason = f"{trained} of {n_epochs} epochs done"
    return unit


def _select_unit(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions, seed: int) -> Unit:
    folder = paths.select_dir(seed)
    fingerprint = select_fingerprint(
        config, paths.bc_dir(seed), seed, config["bc"]["select_by"], config["bc"]["select_episodes"]
    )
    done = select_is_complete(folder)
    return _unit(f"seed {seed}", seed, folder, done, fingerprint, done)


def _finetune_unit_fingerprint(
    config: dict[str, Any], paths: RunPaths, opts: PipelineOptions, init: str, seed: int
) -> dict[str, Any]:
    bc_files = bc_start(paths, seed) if init in BC_STARTS else None
    demos = paths.demos_for(seed) / DEMOS_FILE if uses_demos(init) else None
    return finetune_fingerprint(config, opts.algo, init, seed, None, bc_files, demos)


def _finetune_unit(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions, init: str, seed: int) -> Unit:
    run_dir = paths.finetune(opts.algo, init, seed)
    done = finetune_is_complete(run_dir, config, init)
    fingerprint = _finetune_unit_fingerprint(config, paths, opts, init, seed)
    unit = _unit(run_dir.name, (init, seed), run_dir, done, fingerprint, has_run_outputs(run_dir))
    if unit.status == "resume":
        unit.reason = "unfinished" if init not in IMITATION_INITS else "unfinished (starts over)"
    return unit


def _eval_labels(opts: PipelineOptions) -> list[str]:
    return [bc_label(seed) for seed in opts.seeds] + [
        finetune_run_name(opts.algo, init, seed) for init, seed in _jobs(opts)
    ]


def _eval_unit(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions, label: str) -> Unit:
    available = policies_to_evaluate(paths)
    folder = paths.evaluation / label
    if label not in available:
        raise OptiqError(f"no policy {label} to evaluate under {paths.root} (rerun run_all.py)")
    n_episodes = config["eval"]["final_episodes"]
    fingerprint = eval_fingerprint(config, available[label], EVAL_SEED, n_episodes, opts.video)
    done = eval_is_complete(folder)
    return _unit(label, label, folder, done, fingerprint, done)


def _plan_bc(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions) -> list[Unit]:
    return [_bc_unit(config, paths, opts, seed) for seed in opts.seeds]


def _plan_select(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions) -> list[Unit]:
    return [_select_unit(config, paths, opts, seed) for seed in opts.seeds]


def _plan_finetune(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions) -> list[Unit]:
    return [_finetune_unit(config, paths, opts, init, seed) for init, seed in _jobs(opts)]


def _plan_eval(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions) -> list[Unit]:
    return [_eval_unit(config, paths, opts, label) for label in _eval_labels(opts)]


def _plan_compare(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions) -> list[Unit]:
    folder = paths.compare
    fingerprint = compare_fingerprint(config, paths, opts.algo, opts.methods, opts.seeds)
    done = compare_is_complete(folder)
    return [_unit("", None, folder, done, fingerprint, done)]


PLANS: dict[str, Callable[[dict[str, Any], RunPaths, PipelineOptions], list[Unit]]] = {
    "demos": _plan_demos,
    "bc": _plan_bc,
    "select": _plan_select,
    "finetune": _plan_finetune,
    "eval": _plan_eval,
    "compare": _plan_compare,
}


def plan_stage(stage: str, config: dict[str, Any], paths: RunPaths, opts: PipelineOptions) -> list[Unit]:
    """The units of ``stage`` with their status; needs the outputs of the stages before it."""
    return PLANS[stage](config, paths, opts)


def stage_complete(stage: str, config: dict[str, Any], paths: RunPaths, opts: PipelineOptions) -> bool:
    """Whether every unit of a stage finished with the current fingerprint."""
    return all(unit.status == "complete" for unit in plan_stage(stage, config, paths, opts))


# ----- checks of what is reused ---------------------------------------------------------------
def check_demos(config: dict[str, Any], folders: Sequence[Path]) -> None:
    """Load each demos file against the env's spaces: a corrupt or unfitting file is a one-line error now,
    before any training."""
    from optiq.envs import make_task_vec

    venv = make_task_vec(config, 1, 0)
    try:
        for folder in folders:
            try:
                load_demos(folder / DEMOS_FILE, venv.observation_space, venv.action_space)
            except OptiqError as exc:
                raise OptiqError(f"{exc}; run_all.py --force demos collects them again") from None
    finally:
        venv.close()


def _check_reused(stage: str, units: Sequence[Unit]) -> None:
    """The files of reused units can be read and name files that exist (a one-line error otherwise)."""
    for unit in units:
        if unit.status != "complete":
            continue
        try:
            if stage == "bc":
                for entry in read_json(unit.folder / CHECKPOINTS_JSON)["checkpoints"]:
                    _must_exist(unit.folder / entry["model"])
                read_metrics(unit.folder / "metrics.csv")
            elif stage == "select":
                _must_exist(PolicyFiles.from_json(read_json(unit.folder / "best.json")).model)
            elif stage == "finetune":
                _must_exist(PolicyFiles.from_json(read_json(unit.folder / "summary.json")["policy"]).model)
                read_eval_csv(unit.folder / "eval.csv")
            elif stage == "eval":
                read_json(unit.folder / "eval.json")["return_mean"]
            elif stage == "compare":
                read_json(unit.folder / "results.json")["verdict"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise OptiqError(
                f"outputs in {unit.folder} are unreadable or incomplete ({detail}); run_all.py --force {stage} "
                "redoes them"
            ) from None


def _must_exist(path: Path) -> None:
    if not Path(path).is_file():
        raise FileNotFoundError(f"missing {path}")


def _check_bc_starts(paths: RunPaths, units: Sequence[Unit]) -> None:
    """Load every BC checkpoint the fine-tuning jobs start from (a corrupt one fails here, before any job runs)."""
    from optiq.policies import load_model

    for seed in sorted({unit.key[1] for unit in units if unit.key[0] in ("bc", "bc_naive")}):
        load_model(bc_start(paths, seed), device="cpu")


# ----- the run --------------------------------------------------------------------------------
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


def _forced_stages(opts: PipelineOptions) -> set[str]:
    """``--force STAGE`` redoes that stage and every later one (they read its new outputs)."""
    if not opts.force:
        return set()
    first = min(STAGES.index(stage) for stage in opts.force)
    return set(STAGES[first:])


def _report(stage: str, units: Sequence[Unit]) -> None:
    """One line per reason: which units of the stage are redone or resumed, and why."""
    groups: dict[tuple[str, str], list[str]] = {}
    for unit in units:
        if unit.reason and unit.status in ("stale", "resume"):
            groups.setdefault((unit.reason, unit.status), []).append(unit.name)
    for (reason, status), names in groups.items():
        action = "rerunning" if status == "stale" else "resuming"
        which = f"{stage} {', '.join(names)}" if any(names) else stage
        console.print(f"{which}: {reason}: {action}")


def _run_stages(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions) -> dict[str, Any]:
    if opts.video:
        ensure_render_backend()  # before any env is made: MuJoCo fixes its GL backend at import
    configure_torch_threads()  # the in-process stages (01, 06) run alone
    started = time.monotonic()
    timings: dict[str, float] = {}
    forced = _forced_stages(opts)
    first_forced = next((stage for stage in STAGES if stage in forced), None)
    forced_reason = f"--force {first_forced}"

    t0 = time.monotonic()
    units = _forced(plan_stage("demos", config, paths, opts), "demos" in forced, forced_reason)
    todo = [unit for unit in units if unit.status != "complete"]
    if todo:
        console.rule("stage 01: demos")
        _report("demos", todo)
        _run_demos(config, paths, opts, todo)
        check_demos(config, [unit.folder for unit in units])
        timings["demos"] = time.monotonic() - t0
    else:
        check_demos(config, [unit.folder for unit in units])  # a corrupt file is an error before anything trains
        console.print("[dim]skip demos: outputs complete (use --force demos to redo)[/]")

    t0 = time.monotonic()
    ran = run_steps(job_graph(config, paths, opts), opts.jobs, opts.progress_bar, forced, forced_reason)
    if ran:
        timings["bc..eval"] = time.monotonic() - t0
    for stage in GRAPH_STAGES:
        if stage not in ran:
            console.print(f"[dim]skip {stage}: outputs complete (use --force {stage} to redo)[/]")
    if opts.video and "eval" in ran:
        record_side_by_side_video(config, paths, EVAL_SEED, opts.device)

    units = _forced(plan_stage("compare", config, paths, opts), "compare" in forced, forced_reason)
    _check_reused("compare", units)
    if any(unit.status != "complete" for unit in units):
        t0 = time.monotonic()
        console.rule("stage 06: compare")
        _report("compare", units)
        compare_stage(config, paths, opts.algo, opts.methods, opts.seeds)
        timings["compare"] = time.monotonic() - t0
    else:
        console.print("[dim]skip compare: outputs complete (use --force compare to redo)[/]")
    summary = read_json(paths.compare / "results.json")
    _print_summary(summary, paths, timings, time.monotonic() - started)
    return summary


def _forced(units: list[Unit], forced: bool, reason: str) -> list[Unit]:
    return [Unit(u.name, u.key, u.folder, "stale", reason) for u in units] if forced else units


def _run_demos(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions, todo: Sequence[Unit]) -> None:
    common = dict(
        device=opts.device,
        progress_bar=opts.progress_bar,
        source=opts.source,
        controller=opts.controller,
        dataset=opts.dataset,
        names=opts.names,
    )
    if not opts.demos_per_seed:
        _clear(paths.demos)  # shared demos replace everything, per-seed demos included
        collect_stage(
            config, paths, opts.demos_seed, expert=opts.expert, train=_train_expert_now(config, opts), **common
        )
        return
    expert = opts.expert
    trained = _per_seed_expert(config, paths, opts)
    if trained is not None:
        expert = trained
        if not (trained / "expert.json").is_file():  # one expert for every seed's demos, trained once
            collect_stage(config, paths, opts.demos_seed, train=True, skip_demos=True, **common)
    for unit in todo:
        _clear(unit.folder)
        collect_stage(config, paths, unit.key, expert=expert, per_seed=True, **common)


# ----- stages 02-05 as one graph of subprocess jobs --------------------------------------------
GRAPH_STAGES = ("bc", "select", "finetune", "eval")


@dataclass
class Job:
    """A stage script run as a subprocess, with where its log goes and how far it has got."""

    name: str
    command: list[str]
    log: Path
    total: float
    done: Callable[[], float]
    unit: str = "steps"


@dataclass
class Step:
    """One unit of stages 02-05: planned (complete, new, resume or stale) once the steps it reads from
    (``after``) are done, then run as a subprocess ``Job`` unless it is complete."""

    stage: str
    name: str
    after: tuple[str, ...]
    plan: Callable[[], Unit]
    job: Callable[[Unit], Job]


def job_graph(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions) -> list[Step]:
    """BC seed N -> its checkpoint selection -> BC->RL seed N -> its evaluation; runs that do not start from BC
    (scratch, AIRL, GAIL, DAgger) and BC-only evaluations depend only on what they read.

    The order is the priority among steps that are ready: BC first (everything from BC waits for it), then the
    runs from BC, then the others, evaluations last; a ready step of lower priority takes any slot the others
    leave free (e.g. a scratch run beside the last BC seed when no BC -> RL run is ready yet)."""
    steps = []
    for seed in opts.seeds:
        steps.append(
            Step(
                "bc",
                f"bc seed {seed}",
                (),
                partial(_bc_unit, config, paths, opts, seed),
                partial(_bc_job, config, paths, opts),
            )
        )
    for seed in opts.seeds:
        steps.append(
            Step(
                "select",
                f"select seed {seed}",
                (f"bc seed {seed}",),
                partial(_select_unit, config, paths, opts, seed),
                partial(_select_job, paths, opts),
            )
        )
    runs = sorted(_jobs(opts), key=lambda job: (JOB_ORDER.get(job[0], 2), job[1]))
    for init, seed in runs:
        after = (f"select seed {seed}",) if init in BC_STARTS else ()
        steps.append(
            Step(
                "finetune",
                finetune_run_name(opts.algo, init, seed),
                after,
                partial(_finetune_unit, config, paths, opts, init, seed),
                partial(_finetune_job, config, paths, opts),
            )
        )
    for label in _eval_labels(opts):
        is_bc, bc_seed = parse_bc_label(label)
        after = (f"select seed {bc_seed}",) if is_bc else (label,)
        steps.append(
            Step(
                "eval",
                f"eval {label}",
                after,
                partial(_eval_unit, config, paths, opts, label),
                partial(_eval_job, paths, opts),
            )
        )
    return steps


class RunningJob(Protocol):
    """A launched job, as :func:`run_steps` sees it: ``poll()`` returns its exit code once it has ended."""

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...


# Starts a job with extra environment variables (its thread counts) on some backend.
Launcher = Callable[[Job, dict[str, str]], RunningJob]


class LocalProcess:
    """A job as a subprocess of this process, its output in ``job.log`` (the default backend)."""

    def __init__(self, job: Job, extra_env: dict[str, str]):
        job.log.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(job.log, "wb")
        env = {**_base_env(), **extra_env}
        self._proc = subprocess.Popen(job.command, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def poll(self) -> int | None:
        code = self._proc.poll()
        if code is not None:
            self._log.close()
        return code

    def terminate(self) -> None:
        self._proc.terminate()
        self._proc.wait()
        self._log.close()


def run_steps(
    steps: Sequence[Step],
    parallel: int,
    progress_bar: bool,
    forced: set[str] = frozenset(),
    forced_reason: str = "",
    launch: Launcher = LocalProcess,
    job_env: dict[str, str] | None = None,
) -> set[str]:
    """Run the graph, ``parallel`` jobs at a time (``launch``: subprocesses here, or another backend);
    return the stages of which a unit ran.

    A step is planned when every step in its ``after`` is done; a complete one is reused at once (after a check
    that its files can be read), the others wait for a free slot in list order. A failed step fails the steps
    that depend on it; the rest go on, and the failures are one error at the end. Each job gets ``job_env``
    (default: the torch/BLAS threads of one of ``parallel`` jobs sharing this machine's cores)."""
    waiting = list(steps)
    planned: dict[str, Unit] = {}
    state: dict[str, str] = {}  # step name -> "done" | "failed"
    ran: set[str] = set()
    failed: list[str] = []
    running: dict[str, tuple[Job, RunningJob]] = {}
    env = {"PYTHONUNBUFFERED": "1", **(job_env or child_thread_env(min(parallel, max(1, len(steps)))))}
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        TextColumn("{task.completed:>9,.0f}/{task.total:,.0f} {task.fields[unit]}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[eta]}"),
        console=console,
        disable=not progress_bar,
    ) as progress:
        tasks: dict[str, Any] = {}
        started: dict[str, float] = {}
        overall = progress.add_task("all jobs", total=len(steps), unit="", eta="")
        t_start = time.monotonic()

        def show_overall() -> None:
            finished = sum(1 for name in state if name in {s.name for s in steps})
            queued = len(steps) - finished - len(running)
            bad = sum(1 for value in state.values() if value == "failed")
            elapsed = time.monotonic() - t_start
            eta = elapsed / finished * (len(steps) - finished) if finished else None
            text = f"queued {queued} · running {len(running)} · done {finished - bad} · failed {bad}"
            text += f" · ETA {eta / 60:.0f} min" if eta is not None and queued + len(running) else ""
            progress.update(overall, completed=finished, eta=text)

        try:
            while waiting or running:
                newly: dict[str, list[Unit]] = {}  # planned in this pass, reported together per stage
                for step in list(waiting):
                    if any(state.get(name) == "failed" for name in step.after):
                        waiting.remove(step)
                        state[step.name] = "failed"
                        failed.append(f"{step.name} (not run: a step it needs failed)")
                    elif step.name not in planned and all(state.get(name) == "done" for name in step.after):
                        unit = _forced([step.plan()], step.stage in forced, forced_reason)[0]
                        planned[step.name] = unit
                        newly.setdefault(step.stage, []).append(unit)
                        if unit.status == "complete":
                            _check_reused(step.stage, [unit])
                            waiting.remove(step)
                            state[step.name] = "done"
                for stage, units in newly.items():
                    _report(stage, units)
                for step in [s for s in waiting if s.name in planned]:
                    if len(running) >= parallel:
                        break
                    if not running and not ran:
                        console.rule("stages 02-05: BC, checkpoint selection, fine-tuning, evaluation")
                    job = step.job(planned[step.name])
                    running[step.name] = (job, launch(job, env))
                    started[step.name] = time.monotonic()
                    tasks[step.name] = progress.add_task(job.name, total=job.total, unit=job.unit, eta="")
                    waiting.remove(step)
                    ran.add(step.stage)
                show_overall()
                if not running:
                    continue
                time.sleep(1.0)
                for name, (job, handle) in list(running.items()):
                    progress.update(tasks[name], completed=job.done())
                    code = handle.poll()
                    if code is None:
                        continue
                    del running[name]
                    if code == 0:
                        state[name] = "done"
                        console.print(f"[dim]{name}: done in {time.monotonic() - started[name]:.0f}s[/]")
                        progress.update(tasks[name], completed=job.total)
                    else:
                        state[name] = "failed"
                        failed.append(name)
                        console.print(f"[red]{name} failed (exit {code}); see {job.log}[/]")
                show_overall()
        finally:
            for _, handle in running.values():  # an error or Ctrl-C here: stop the jobs, keep their files
                handle.terminate()
    if failed:
        raise OptiqError(f"failed: {'; '.join(failed)}; logs are beside each stage's outputs (rerun to resume)")
    return ran


def run_jobs(jobs: Sequence[Job], parallel: int, progress_bar: bool, what: str, logs: Path) -> None:
    """Run independent ``jobs`` as subprocesses, ``parallel`` at a time, each with its share of the cores."""
    steps = [
        Step(what, job.name, (), partial(Unit, job.name, None, logs, "new"), lambda _unit, job=job: job) for job in jobs
    ]
    run_steps(steps, parallel, progress_bar)


def _base_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _script_command(command_name: str, paths: RunPaths, opts: PipelineOptions) -> list[str]:
    """``python -m optiq COMMAND`` (optiq.commands) with the flags every stage job run by run_all shares."""
    selection = RunSelection(
        paths.env_id,
        opts.preset,
        paths.run_name,
        paths.outputs,
        Path(opts.hparams),
        opts.device,
        opts.obs,
        tuple(opts.overrides),
        no_progress=True,
    )
    command = command_line(command_name, *selection.to_argv())
    if opts.tracker_args is not None:
        command += tracking_flags(opts.tracker_args)
    return command


def _bc_job(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions, unit: Unit) -> Job:
    """``optiq train-bc --seed N`` (scripts/02_train_bc.py: trains or resumes BC seed N)."""
    job = TrainBCOptions(algo=opts.algo, seed=unit.key, restart=unit.restart)
    command = _script_command("train-bc", paths, opts) + job.to_argv()
    n_epochs = float(config["bc"]["n_epochs"])
    log = paths.bc / f"seed{unit.key}.log"
    return Job(f"BC seed {unit.key}", command, log, n_epochs, _epochs_done(unit.folder), "epochs")


def _select_job(paths: RunPaths, opts: PipelineOptions, unit: Unit) -> Job:
    """``optiq select-best --seed N`` (scripts/03_select_best.py)."""
    command = _script_command("select-best", paths, opts) + SelectOptions(seed=unit.key).to_argv()
    return Job(f"select seed {unit.key}", command, paths.select / f"seed{unit.key}.log", 1.0, lambda: 0.0, "")


def _finetune_job(config: dict[str, Any], paths: RunPaths, opts: PipelineOptions, unit: Unit) -> Job:
    """``optiq finetune --init I --seed N`` (04_finetune_rl.py): a stale run starts over (``--restart``), an unfinished
    one resumes. A run from BC first loads its BC checkpoint here: a corrupt one is an error before it starts."""
    init, seed = unit.key
    if init in BC_STARTS:
        _check_bc_starts(paths, [unit])
    job = FinetuneJobOptions(opts.algo, init, seed, unit.restart)
    command = _script_command("finetune", paths, opts) + job.to_argv()
    total = float(required_timesteps(config, init))
    return Job(unit.name, command, paths.finetune_root / f"{unit.name}.log", total, _steps_done(unit.folder))


def _eval_job(paths: RunPaths, opts: PipelineOptions, unit: Unit) -> Job:
    """``optiq eval-video --only LABEL`` (05_eval_video.py) on the evaluation seed (the side-by-side video: after)."""
    job = EvalOptions(only=(unit.key,), seed=EVAL_SEED, video=opts.video)
    command = _script_command("eval-video", paths, opts) + job.to_argv()
    return Job(f"eval {unit.key}", command, paths.evaluation / f"{unit.key}.log", 1.0, lambda: 0.0, "")


def _epochs_done(folder: Path) -> Callable[[], float]:
    def done() -> float:
        try:
            rows = read_metrics(folder / "metrics.csv")
        except (OSError, ValueError):
            return 0.0
        return float(rows[-1]["epoch"]) if rows else 0.0

    return done


def _steps_done(run_dir: Path) -> Callable[[], float]:
    def done() -> float:
        try:  # eval.csv is rewritten atomically, so a read never sees half a file
            rows = read_eval_csv(run_dir / "eval.csv")
        except (OSError, ValueError):
            return 0.0
        return rows[-1]["timesteps"] if rows else 0.0

    return done


def _print_summary(summary: dict[str, Any], paths: RunPaths, timings: dict[str, float], elapsed: float) -> None:
    table = Table(
        title=f"{summary['env_id']} ({summary['algo'].upper()}): expert return {summary['expert_return']:,.0f}"
    )
    for column in ("method", "n", "final return", "normalised", "steps to 90 % expert", "speedup to scratch's final"):
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
    console.print(f"[bold]Verdict[/]: {escape(summary['verdict'])}")  # its "[min, max]" is not markup
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
