"""What stage 06 reads from earlier stages (runs, BC evaluations, demo metadata) and one row per method."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optiq.atomic_io import read_json, write_text
from optiq.compare.methods import (
    BC_ONLY,
    DEFAULT_METHODS,
    METHOD_INITS,
)
from optiq.compare.metrics import return_at
from optiq.compare.statistics import (
    Estimate,
    aggregate_name,
    iqm_and_mean,
    normalized,
)
from optiq.errors import OptiqError
from optiq.evaluation.pipeline import BC_LABEL, bc_label, parse_bc_label
from optiq.paths import RunPaths, parse_finetune_run_name, seed_folders
from optiq.rl.training import read_eval_csv

THRESHOLD_FRACTION = 0.9


BUDGET_FRACTIONS = (0.25, 0.5, 1.0)


@dataclass
class MethodRuns:
    """All seeds of one fine-tuning method."""

    name: str
    curves: dict[int, list[dict[str, float]]] = field(default_factory=dict)  # final evaluation at the run's budget
    env_steps: dict[int, float] = field(default_factory=dict)  # where each run really stopped
    requested: dict[int, float | None] = field(default_factory=dict)  # the budget each run was asked for
    final_returns: dict[int, float] = field(default_factory=dict)
    unlearning: dict[int, dict[str, Any]] = field(default_factory=dict)
    run_names: dict[int, str] = field(default_factory=dict)


def gather_runs(
    paths: RunPaths, algo: str, names: Sequence[str] = ("bc_rl", "scratch"), seeds: Sequence[int] | None = None
) -> dict[str, MethodRuns]:
    """Read every ``04_finetune/<algo>_<init>_seed<N>`` run of the methods ``names`` (and its stage-05 evaluation);
    with ``seeds``, only those seeds."""
    methods = {name: MethodRuns(name) for name in names if name in METHOD_INITS}
    by_init = {METHOD_INITS[name]: name for name in methods}
    if not paths.finetune_root.is_dir():
        return methods
    for run_dir in sorted(paths.finetune_root.iterdir()):
        parsed = parse_finetune_run_name(run_dir.name)
        if parsed is None or parsed[0] != algo or parsed[1] not in by_init:
            continue
        if not (run_dir / "summary.json").is_file():
            continue
        _, init, seed = parsed
        if seeds is not None and seed not in seeds:
            continue
        method = methods[by_init[init]]
        summary = read_json(run_dir / "summary.json")
        curve = read_eval_csv(run_dir / "eval.csv")
        method.env_steps[seed] = curve[-1]["timesteps"] if curve else 0.0
        method.requested[seed] = requested_budget(run_dir)
        method.curves[seed] = align_to_budget(curve, method.requested[seed])
        final_eval = paths.evaluation / run_dir.name / "eval.json"
        method.final_returns[seed] = (
            read_json(final_eval)["return_mean"] if final_eval.is_file() else summary["final_return"]
        )
        method.unlearning[seed] = summary["unlearning"]
        method.run_names[seed] = run_dir.name
    return methods


def gather_bc(paths: RunPaths, seeds: Sequence[int] | None = None) -> dict[int | None, dict[str, Any]]:
    """The stage-05 evaluation of each BC seed (``bc_only_seed<N>/eval.json``; with ``seeds``, only those), or
    ``{None: ...}`` for the single BC (``bc_only``) of a run without per-seed BCs."""
    found: dict[int | None, dict[str, Any]] = {}
    if paths.evaluation.is_dir():
        for folder in paths.evaluation.iterdir():
            is_bc, seed = parse_bc_label(folder.name)
            if is_bc and seed is not None and (seeds is None or seed in seeds) and (folder / "eval.json").is_file():
                found[seed] = read_json(folder / "eval.json")
    single = paths.evaluation / BC_LABEL / "eval.json"
    if not found and not seed_folders(paths.select) and single.is_file():
        found[None] = read_json(single)
    return dict(sorted(found.items(), key=lambda item: -1 if item[0] is None else item[0]))


def demos_metadata(paths: RunPaths, seeds: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """``metadata.json`` of the shared demos, or of each seed's own demos (``01_demos/seed<N>/``)."""
    own = [s for s in seed_folders(paths.demos) if (paths.demos_dir(s) / "metadata.json").is_file()]
    if own:
        chosen = [s for s in own if seeds is None or s in seeds] or own
        return [read_json(paths.demos_dir(s) / "metadata.json") for s in chosen]
    meta_path = paths.demos / "metadata.json"
    if not meta_path.is_file():
        raise OptiqError(f"no {meta_path} (run scripts/01_collect_demos.py first)")
    return [read_json(meta_path)]


def compare_inputs(
    paths: RunPaths, algo: str, methods: Sequence[str] | None = None, seeds: Sequence[int] | None = None
) -> list[Path]:
    """Every file :func:`compare` reads, for the stage's fingerprint."""
    requested = tuple(methods) if methods is not None else DEFAULT_METHODS
    files: list[Path] = []
    own = seed_folders(paths.demos)
    files += [paths.demos_dir(s) / "metadata.json" for s in own] or [paths.demos / "metadata.json"]
    if BC_ONLY in requested:
        for seed in gather_bc(paths, seeds):
            files.append(paths.evaluation / bc_label(seed) / "eval.json")
            files.append(paths.bc_dir(seed) / "metrics.csv")
    for runs in gather_runs(paths, algo, [name for name in requested if name != BC_ONLY], seeds).values():
        for name in runs.run_names.values():
            run_dir = paths.finetune_root / name
            files += [run_dir / "eval.csv", run_dir / "summary.json", run_dir / "run.json"]
            files.append(paths.evaluation / name / "eval.json")
            if runs.name == "ipmd":  # the learned-reward figure reads it
                files.append(run_dir / "reward_net.pt")
    return files


def bc_seeds_on_disk(paths: RunPaths, seeds: Sequence[int] | None) -> list[int | None]:
    """BC seeds with metrics (for the BC training figure where BC only is not compared)."""
    found = [s for s in seed_folders(paths.bc) if (seeds is None or s in seeds)]
    return found or [None]


def requested_budget(run_dir: Path) -> float | None:
    """The env steps a stage-04 run was asked for (``run.json``), or None for a run without one."""
    record = run_dir / "run.json"
    requested = read_json(record).get("total_timesteps") if record.is_file() else None
    return float(requested) if requested else None


def align_to_budget(curve: list[dict[str, float]], requested: float | None) -> list[dict[str, float]]:
    """``curve`` with its final evaluation at the budget the run was asked for.

    A run stops at the first rollout end at or past its budget, so runs overshoot it by different
    amounts (up to a rollout; HybridPPO's noise check also shifts its grid): 50,067, 50,132 and
    50,223 for a 50,000-step budget. Compared at any one of those ends, the runs that stopped
    sooner would have no return there. The final policy is each run's policy at its budget, so
    its evaluation moves to ``requested``; evaluations between the budget and the end go. A run
    with more than one evaluation at or past its budget before the final one trained well past it
    (a run that crashed past a smaller budget and was resumed with it; stage 04 refuses a finished
    run's): it keeps its curve, read at the budget.
    """
    if requested is None or not curve or curve[-1]["timesteps"] <= requested:
        return curve
    if sum(row["timesteps"] >= requested for row in curve[:-1]) > 1:
        return curve
    kept = [row for row in curve[:-1] if row["timesteps"] < requested]
    return [*kept, {**curve[-1], "timesteps": float(requested)}]


def common_budget(methods: dict[str, MethodRuns], short_budget: Sequence[str]) -> float:
    """The budget the methods are compared at: the largest budget the full-budget runs were asked for.

    Runs without a recorded budget (no ``run.json``) count with their end only if no run has one.
    Methods with a smaller budget by design (``short_budget``: DAgger) keep their final policy past
    their end and do not set it; a method asked for fewer steps than the others has no return at 100 %.
    """
    full = [runs for name, runs in methods.items() if name not in short_budget] or list(methods.values())
    recorded = [budget for runs in full for seed, budget in runs.requested.items() if budget and runs.curves.get(seed)]
    ends = [curve[-1]["timesteps"] for runs in full for curve in runs.curves.values() if curve]
    return float(max(recorded or ends or [0.0]))


def return_at_budget(curve: list[dict[str, float]], timesteps: float, hold_final: bool) -> float | None:
    """Return at ``timesteps``; a method with a smaller budget by design keeps its final policy past its end."""
    if hold_final and curve and timesteps > curve[-1]["timesteps"]:
        return curve[-1]["return_mean"]
    return return_at(curve, timesteps)


def method_row(
    name: str, n: int, finals: list[float], stats: dict[str, Estimate], random_return: float, expert_return: float
) -> dict[str, Any]:
    """One method's row. ``final_return``/``normalized`` (with ``_ci_low``/``_ci_high``/``_interval``) are
    what the table and the verdict quote: the IQM, or the mean for n <= 3 (``aggregate`` says which).
    The ``*_iqm`` and ``*_mean`` keys stay for readers of older results."""
    norm = normalized(finals, random_return, expert_return)
    norm_stats = iqm_and_mean(norm)
    aggregate = aggregate_name(n)
    reported, norm_reported = stats[aggregate], norm_stats[aggregate]
    return {
        "method": name,
        "n": n,
        "aggregate": aggregate,
        "final_return": reported.value,
        "final_return_ci_low": reported.low,
        "final_return_ci_high": reported.high,
        "final_return_interval": reported.interval,
        "normalized": norm_reported.value,
        "normalized_ci_low": norm_reported.low,
        "normalized_ci_high": norm_reported.high,
        "normalized_interval": norm_reported.interval,
        "final_return_mean": stats["mean"].value,
        "final_return_mean_ci_low": stats["mean"].low,
        "final_return_mean_ci_high": stats["mean"].high,
        "final_return_iqm": stats["iqm"].value,
        "final_return_iqm_ci_low": stats["iqm"].low,
        "final_return_iqm_ci_high": stats["iqm"].high,
        "final_return_std": float(np.std(finals)),
        "normalized_iqm": norm_stats["iqm"].value,
        "normalized_iqm_ci_low": norm_stats["iqm"].low,
        "normalized_iqm_ci_high": norm_stats["iqm"].high,
    }


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fields: list[str] = []
    for row in rows:
        fields += [key for key in row if key not in fields]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def estimate_json(e: Estimate | None) -> dict[str, Any]:
    return e.to_json() if e is not None else {"value": None, "ci_low": None, "ci_high": None, "interval": None}
