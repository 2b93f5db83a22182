"""A study as one graph of stage jobs: per env, its demos, run_all's stages 02-05, and its comparison.

Every env keeps run_all's folders (``outputs/<env>/<run-name>/``) and its rules for reuse: a
finished unit whose fingerprint is current is skipped, an unfinished one resumes, a stale one
starts over. Step names carry the env (``Hopper-v5: bc seed 0``) so one graph holds them all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from optiq.compare.methods import BC_ONLY
from optiq.config import load_env_config, parse_override
from optiq.paths import RunPaths, parse_finetune_run_name
from optiq.pipeline import (
    BC_STARTS,
    Job,
    PipelineOptions,
    Step,
    Unit,
    _clear,
    _script_command,
    _train_expert_now,
    inits_for_methods,
    job_graph,
    plan_stage,
)
from optiq.rl.imitation_methods import check_imitation_init
from optiq.rl.pipeline import uses_demos
from optiq.sweep.spec import EnvEntry, SweepSpec


@dataclass
class EnvRun:
    """One env of the study: its resolved settings, folders and run_all options."""

    entry: EnvEntry
    config: dict[str, Any]
    paths: RunPaths
    opts: PipelineOptions


def env_runs(spec: SweepSpec, outputs: Path) -> list[EnvRun]:
    """Resolve every env's settings up front: a bad env, key or method fails before any job starts."""
    overrides = dict(parse_override(text) for text in spec.overrides)
    runs = []
    for entry in spec.envs:
        config = load_env_config(entry.env_id, spec.preset, spec.hparams, overrides)
        algo = spec.algo or config["run"]["algo"]
        inits = inits_for_methods(spec.methods)
        for init in inits:
            check_imitation_init(algo, init, config)
        opts = PipelineOptions(
            algo=algo,
            seeds=list(spec.seeds),
            force=set(),
            jobs=1,
            expert=entry.expert,
            video=spec.video,
            device=spec.device,
            progress_bar=False,
            hparams=spec.hparams,
            overrides=list(spec.overrides),
            preset=spec.preset,
            inits=inits,
            source=entry.source,
            controller=entry.controller,
            dataset=entry.dataset,
            names=entry.names,
            methods=tuple(spec.methods),
        )
        runs.append(EnvRun(entry, config, RunPaths(outputs, entry.env_id, spec.run_name), opts))
    return runs


def _demos_job(run: EnvRun, unit: Unit) -> Job:
    """``optiq collect-demos`` (01_collect_demos.py) with the env's source; an env with no shipped expert trains one."""
    if unit.status == "stale":
        _clear(unit.folder)  # as run_all: shared demos replace whatever was there
    opts = run.opts
    command = _script_command("collect-demos", run.paths, opts) + ["--seed", str(opts.demos_seed)]
    command += ["--source", opts.source]
    if opts.controller:
        command += ["--controller", opts.controller]
    if opts.dataset:
        command += ["--dataset", opts.dataset]
    if opts.names:
        command += ["--names", *opts.names]
    if opts.expert is not None:
        command += ["--expert", str(opts.expert)]
    elif _train_expert_now(run.config, opts):
        command.append("--train-expert")
    return Job(f"{run.entry.env_id} demos", command, run.paths.demos.parent / "01_demos.log", 1.0, lambda: 0.0, "")


def _compare_job(run: EnvRun, unit: Unit) -> Job:
    """``optiq compare`` (06_compare.py) over the study's methods and seeds."""
    opts = run.opts
    command = _script_command("compare", run.paths, opts) + ["--algo", opts.algo]
    command += ["--methods", ",".join(opts.methods or ()), "--seeds", *map(str, opts.seeds)]
    return Job(
        f"{run.entry.env_id} compare", command, run.paths.compare.parent / "06_compare.log", 1.0, lambda: 0.0, ""
    )


def _reads_demos(run_name: str) -> bool:
    parsed = parse_finetune_run_name(run_name)
    return parsed is not None and uses_demos(parsed[1])


def _first_unit(stage: str, run: EnvRun) -> Unit:
    return plan_stage(stage, run.config, run.paths, run.opts)[0]


def study_steps(runs: list[EnvRun]) -> list[Step]:
    """All envs' steps in one list, ordered so that every env's BC gets going before anyone's fine-tuning."""
    demos, graphs, compares = [], [], []
    for run in runs:
        env = run.entry.env_id
        demos_name = f"{env}: demos"
        demos.append(Step("demos", demos_name, (), partial(_first_unit, "demos", run), partial(_demos_job, run)))
        steps = job_graph(run.config, run.paths, run.opts)
        if BC_ONLY not in (run.opts.methods or ()) and not any(init in BC_STARTS for init in run.opts.inits):
            dropped = {step.name for step in steps if step.stage in ("bc", "select")}  # nothing reads a BC
            steps = [step for step in steps if step.name not in dropped and not dropped & set(step.after)]
        renamed = []
        for step in steps:
            after = tuple(f"{env}: {name}" for name in step.after)
            if step.stage == "bc" or (step.stage == "finetune" and not after and _reads_demos(step.name)):
                after = (demos_name, *after)  # BC, AIRL, GAIL, DAgger read the demos; scratch runs need not wait
            renamed.append(replace(step, name=f"{env}: {step.name}", after=after))
        graphs.append(renamed)
        compares.append(
            Step(
                "compare",
                f"{env}: compare",
                tuple(step.name for step in renamed),
                partial(_first_unit, "compare", run),
                partial(_compare_job, run),
            )
        )
    # Interleave stage by stage: demos of every env, then each env's graph in order, then the comparisons.
    ordered: list[Step] = list(demos)
    for stage in ("bc", "select", "finetune", "eval"):
        for steps in graphs:
            ordered += [step for step in steps if step.stage == stage]
    return ordered + compares
