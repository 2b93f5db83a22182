"""Stage 06: compare BC-only, BC->RL and RL-from-scratch (and, with ``--methods``, BC->RL
without extensions, AIRL, GAIL and DAgger), and write the verdict.

Outputs (in ``06_compare/``): ``results.csv`` and ``results.json`` (numbers),
``results.md`` (the table), ``report.md`` and a self-contained ``report.html`` (verdict
first, table, learning curves, BC training curves, unlearning reports, videos), and the
figures ``learning_curves.png``, ``normalized_curves.png`` and ``bc_training.png``.

The BC-only row has one score per BC seed (the mean return of ``05_eval/bc_only_seed<N>``),
so its interval is BC's seed-to-seed variance, like every other row's; each BC -> RL seed
starts from its own BC seed, so BC's variance is inside BC -> RL's interval too. Where the run
has a single BC (no per-seed BCs), the row is that one BC: 1 seed, no interval.

This module runs the stage; the pieces live beside it: ``methods`` (names, titles),
``results`` (reading runs, one row per method), ``verdict``, ``formatting`` (how numbers are
written), ``render`` (table, markdown and HTML report) and ``plots``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from optiq.atomic_io import write_json, write_text
from optiq.compare.methods import (
    BC_ONLY,
    DEFAULT_METHODS,
    EXTRA_METHODS,
    METHOD_INITS,
    SHORT_BUDGET_METHODS,
)
from optiq.compare.plots import (
    plot_bc_training,
    plot_learned_reward,
    plot_learning_curves,
    plot_normalized_curves,
)
from optiq.compare.render import (
    find_videos,
    render_report_html,
    render_report_md,
    render_table,
)
from optiq.compare.results import (
    BUDGET_FRACTIONS,
    THRESHOLD_FRACTION,
    MethodRuns,
    bc_seeds_on_disk,
    common_budget,
    demos_metadata,
    estimate_json,
    gather_bc,
    gather_runs,
    method_row,
    return_at_budget,
    write_csv,
)
from optiq.compare.statistics import (
    SpeedupEstimate,
    iqm_and_mean,
    probability_of_improvement,
    speedup_ci,
    steps_to_threshold_ci,
)
from optiq.compare.verdict import (
    demonstrator,
    make_verdict,
)
from optiq.envs import random_policy_return
from optiq.errors import OptiqError
from optiq.paths import RunPaths
from optiq.records import RunRecord
from optiq.tracking import log_scalars


def compare(
    paths: RunPaths,
    config: dict[str, Any],
    algo: str,
    out_dir: Path | None = None,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Compute the comparison and write every file of ``06_compare``; return results.json's content.

    ``methods`` (``--methods``) picks the rows; each requested one must have finished runs.
    Without it: BC only, BC -> RL and scratch, each where present. ``seeds`` (None: all that were
    run) picks the seeds of every row, the BC seeds included.
    """
    out_dir = out_dir or paths.compare
    requested = tuple(methods) if methods is not None else DEFAULT_METHODS
    strict = methods is not None
    seeds = sorted(seeds) if seeds is not None else None
    record = RunRecord("06_compare", out_dir, config, None, algo=algo, methods=list(requested), seeds=seeds)
    metas = demos_metadata(paths, seeds)
    # Per-seed demos of one expert share its return; a scripted or dataset demonstrator's varies: the mean.
    expert_return = float(np.mean([float(meta["expert_return_mean"]) for meta in metas]))
    reference = demonstrator(metas[0])
    random_return = random_policy_return(config["env_id"])
    threshold = THRESHOLD_FRACTION * expert_return
    methods = gather_runs(paths, algo, [name for name in requested if name != BC_ONLY], seeds)
    missing = [name for name, runs in methods.items() if not runs.curves]
    if strict and missing:
        name = missing[0]
        raise OptiqError(
            f"no finished {algo} runs of method '{name}' under {paths.finetune_root} "
            f"(run scripts/04_finetune_rl.py --algo {algo} --init {METHOD_INITS[name]})"
        )
    if not strict and not any(runs.curves for runs in methods.values()):
        raise OptiqError(f"no finished {algo} runs under {paths.finetune_root} (run scripts/04_finetune_rl.py first)")
    bc_evals = gather_bc(paths, seeds) if BC_ONLY in requested else {}
    if strict and BC_ONLY in requested and not bc_evals:
        raise OptiqError(
            f"no BC-only evaluation in {paths.evaluation} (bc_only_seed<N>/eval.json; run scripts/05_eval_video.py)"
        )
    bc_finals = [float(result["return_mean"]) for result in bc_evals.values()]
    bc_only = {"return_mean": float(np.mean(bc_finals)), "n": len(bc_finals)} if bc_finals else None
    budget = common_budget(methods, SHORT_BUDGET_METHODS)

    rows: list[dict[str, Any]] = []
    if bc_only is not None:
        # One score per BC seed (its mean over the evaluation episodes): the spread is BC's seed-to-seed variance.
        bc_stats = iqm_and_mean(bc_finals)
        rows.append(method_row("bc_only", len(bc_finals), bc_finals, bc_stats, random_return, expert_return))
        rows[-1]["seeds"] = [seed for seed in bc_evals if seed is not None]
        rows[-1].update({f"return_at_{int(f * 100)}pct": bc_only["return_mean"] for f in BUDGET_FRACTIONS})
    for name, runs in methods.items():
        if not runs.curves:
            continue
        seeds = sorted(runs.curves)
        finals = [runs.final_returns[s] for s in seeds]
        row = method_row(name, len(seeds), finals, iqm_and_mean(finals), random_return, expert_return)
        row["env_steps"] = float(np.mean([runs.env_steps[s] for s in seeds]))
        for f in BUDGET_FRACTIONS:
            values = [return_at_budget(runs.curves[s], f * budget, name in SHORT_BUDGET_METHODS) for s in seeds]
            present = [v for v in values if v is not None]
            row[f"return_at_{int(f * 100)}pct"] = float(np.mean(present)) if present else None
        steps = steps_to_threshold_ci([runs.curves[s] for s in seeds], threshold, budget)
        row.update(
            steps_to_threshold=steps.estimate.value,
            steps_ci_low=steps.estimate.low,
            steps_ci_high=steps.estimate.high,
            steps_interval=steps.estimate.interval,
            seeds_reached=steps.reached,
            steps_is_lower_bound=steps.lower_bound,
        )
        if name == "bc_rl":
            ratios = [runs.unlearning[s].get("unlearning_ratio") for s in seeds]
            present = [r for r in ratios if r is not None]
            row["unlearning_ratio_mean"] = float(np.mean(present)) if present else None
        rows.append(row)

    speedup = SpeedupEstimate()
    improvement = None
    scratch_runs = methods.get("scratch")
    speedup_target = None
    if scratch_runs is not None and scratch_runs.curves:
        scratch_finals = list(scratch_runs.final_returns.values())
        # The speedup's target is where scratch ends (its row's aggregate), not 90 % of the expert: scratch
        # reaches its own final return by construction, so the target depends on scratch only and the ratio
        # does not hinge on whether BC noise lets BC -> RL reach a level scratch never saw.
        speedup_target = next(row["final_return"] for row in rows if row["method"] == "scratch")
        # Every compared method against scratch; BC -> RL also gets the speedup (the verdict's question).
        for row in rows:
            if row["method"] not in ("bc_rl", *EXTRA_METHODS):
                continue
            runs = methods[row["method"]]
            if row["method"] == "bc_rl":
                speedup = speedup_ci(
                    list(runs.curves.values()), list(scratch_runs.curves.values()), speedup_target, budget
                )
                # speedup_vs_scratch is None where there is no number: "at_start" or "unknown" (speedup_bound).
                row.update(
                    speedup_vs_scratch=speedup.estimate.value if speedup.estimate else None,
                    speedup_ci_low=speedup.estimate.low if speedup.estimate else None,
                    speedup_ci_high=speedup.estimate.high if speedup.estimate else None,
                    speedup_interval=speedup.estimate.interval if speedup.estimate else None,
                    speedup_bound=speedup.bound,
                    speedup_at_start_seeds=speedup.at_start,
                    speedup_is_lower_bound=speedup.lower_bound,
                )
            estimate = probability_of_improvement(list(runs.final_returns.values()), scratch_finals)
            if row["method"] == "bc_rl":
                improvement = estimate
            row.update(
                prob_improvement_vs_scratch=estimate.value,
                prob_improvement_ci_low=estimate.low,
                prob_improvement_ci_high=estimate.high,
                prob_improvement_interval=estimate.interval,
            )

    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {
        "learning_curves": plot_learning_curves(
            methods, bc_only, expert_return, threshold, out_dir / "learning_curves.png", config
        ),
        "normalized_curves": plot_normalized_curves(
            methods, bc_only, random_return, expert_return, out_dir / "normalized_curves.png", config
        ),
        "bc_training": plot_bc_training(
            {seed: paths.bc_dir(seed) / "metrics.csv" for seed in (bc_evals or bc_seeds_on_disk(paths, seeds))},
            out_dir / "bc_training.png",
        ),
        "learned_reward": _learned_reward_figure(methods.get("ipmd"), paths, config, out_dir / "learned_reward.png"),
    }
    verdict = make_verdict(config, algo, rows, speedup, improvement, expert_return, budget, reference)
    summary = {
        "env_id": config["env_id"],
        "algo": algo,
        "expert_return": expert_return,
        "demonstrator": reference,
        "random_return": random_return,
        "threshold": threshold,
        "speedup_target": speedup_target,
        "budget": budget,
        "methods": list(requested),
        "seeds": seeds,
        "bc_seeds": [seed for seed in bc_evals if seed is not None],
        "verdict": verdict,
        "speedup": speedup.to_json(),
        "probability_of_improvement": estimate_json(improvement),
        "rows": rows,
        # Per seed, for studies across envs (optiq.sweep.study): the final return each row aggregates.
        "final_returns_by_seed": {
            **({"bc_only": {str(seed): float(r["return_mean"]) for seed, r in bc_evals.items()}} if bc_evals else {}),
            **{
                name: {str(seed): float(runs.final_returns[seed]) for seed in sorted(runs.curves)}
                for name, runs in methods.items()
                if runs.curves
            },
        },
        "unlearning": {
            runs.run_names[s]: runs.unlearning[s]
            for runs in methods.values()
            if runs.name == "bc_rl"
            for s in sorted(runs.curves)
        },
    }
    write_csv(out_dir / "results.csv", rows)
    log_scalars(
        out_dir / "tb",
        {f"{row['method']}/final_return_iqm": row["final_return_iqm"] for row in rows}
        | {f"{row['method']}/normalized_iqm": row["normalized_iqm"] for row in rows}
        | {"bc_rl/speedup": speedup.estimate.value if speedup.estimate else None},
    )
    write_json(out_dir / "results.json", summary)
    table = render_table(rows, speedup)
    write_text(out_dir / "results.md", f"# Results\n\n**Verdict.** {verdict}\n\n{table}\n")
    videos = find_videos(paths, out_dir)
    write_text(out_dir / "report.md", render_report_md(config, algo, summary, table, figures, videos))
    write_text(out_dir / "report.html", render_report_html(config, algo, summary, table, figures, videos))
    for name in ("results.csv", "results.md", "results.json", "report.md", "report.html"):
        record.add_artifact(out_dir / name)
    for figure in figures.values():
        if figure is not None:
            record.add_artifact(figure)
    record.finish(verdict=verdict)
    return summary


RANDOM_EPISODE_SEED = 20_000  # the learned-reward figure's random episode: apart from training and evaluation


def _learned_reward_figure(
    runs: MethodRuns | None, paths: RunPaths, config: dict[str, Any], out_path: Path
) -> Path | None:
    """IPMD's learned reward along one expert and one random episode (its first seed), where an IPMD run is compared."""
    if runs is None or not runs.curves:
        return None
    seed = min(runs.curves)
    run_dir = paths.finetune_root / runs.run_names[seed]
    demos = paths.demos_for(seed) / "demos.npz"
    if not (run_dir / "reward_net.pt").is_file() or not demos.is_file():
        return None
    from optiq.rl.ipmd import reward_traces

    traces = reward_traces(run_dir / "reward_net.pt", demos, config["env_id"], seed + RANDOM_EPISODE_SEED)
    return plot_learned_reward(traces, out_path, run_dir.name)
