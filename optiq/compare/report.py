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
"""

from __future__ import annotations

import base64
import csv
import html
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optiq.atomic_io import atomic_path, read_json, write_json, write_text
from optiq.compare.metrics import return_at
from optiq.compare.statistics import (
    ALPHA,
    IQM_MIN_N,
    Estimate,
    SpeedupEstimate,
    aggregate_name,
    efficiency_curve,
    iqm_and_mean,
    normalized,
    probability_of_improvement,
    separation_chance,
    speedup_ci,
    steps_to_threshold_ci,
)
from optiq.errors import OptiqError
from optiq.evaluation.pipeline import BC_LABEL, SIDE_BY_SIDE, bc_label, parse_bc_label
from optiq.paths import RunPaths, parse_finetune_run_name, seed_folders
from optiq.records import RunRecord
from optiq.rl.training import read_eval_csv
from optiq.tracking import log_scalars

THRESHOLD_FRACTION = 0.9
BUDGET_FRACTIONS = (0.25, 0.5, 1.0)
METHOD_TITLES = {
    "bc_only": "BC only",
    "bc_rl": "BC -> RL",
    "scratch": "RL from scratch",
    "bc_naive": "BC -> RL (naive)",
    "airl": "AIRL",
    "gail": "GAIL",
    "dagger": "DAgger",
}
COLOURS = {
    "bc_rl": "tab:blue",
    "scratch": "tab:orange",
    "bc_naive": "tab:purple",
    "airl": "tab:red",
    "gail": "tab:brown",
    "dagger": "tab:cyan",
}
# ``--methods`` of 06_compare and run_all: "bc" is the BC-only row, the others are the
# stage-04 runs of this ``--init``.
METHOD_INITS = {
    "bc_rl": "bc",
    "scratch": "scratch",
    "bc_naive": "bc_naive",
    "airl": "airl",
    "gail": "gail",
    "dagger": "dagger",
}
METHODS = ("bc", *METHOD_INITS)
DEFAULT_METHODS = ("bc", "bc_rl", "scratch")
EXTRA_METHODS = ("bc_naive", "airl", "gail", "dagger")
# Methods that spend a smaller budget by design: past their last evaluation they keep their final policy.
SHORT_BUDGET_METHODS = ("dagger",)


def parse_methods(text: str) -> tuple[str, ...]:
    """``--methods bc,bc_rl,airl`` as a tuple; an unknown name is a one-line error listing the choices."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in METHODS]
    if unknown or not names:
        raise OptiqError(
            f"unknown method '{unknown[0] if unknown else text}' in --methods; choose from: {', '.join(METHODS)}"
        )
    return names


@dataclass
class MethodRuns:
    """All seeds of one fine-tuning method."""

    name: str
    curves: dict[int, list[dict[str, float]]] = field(default_factory=dict)
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
        method.curves[seed] = read_eval_csv(run_dir / "eval.csv")
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
    if "bc" in requested:
        for seed in gather_bc(paths, seeds):
            files.append(paths.evaluation / bc_label(seed) / "eval.json")
            files.append(paths.bc_dir(seed) / "metrics.csv")
    for runs in gather_runs(paths, algo, [name for name in requested if name != "bc"], seeds).values():
        for name in runs.run_names.values():
            run_dir = paths.finetune_root / name
            files += [run_dir / "eval.csv", run_dir / "summary.json", paths.evaluation / name / "eval.json"]
    return files


def random_policy_return(env_id: str, n_episodes: int = 10, seed: int = 0) -> float:
    """Mean return of uniformly random actions: the 0 of normalised scores."""
    from optiq.envs import make_env

    env = make_env(env_id)
    env.action_space.seed(seed)
    returns = []
    for episode in range(n_episodes):
        env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def _est(e: Estimate | None) -> dict[str, Any]:
    return e.to_json() if e is not None else {"value": None, "ci_low": None, "ci_high": None, "interval": None}


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
    methods = gather_runs(paths, algo, [name for name in requested if name != "bc"], seeds)
    missing = [name for name, runs in methods.items() if not runs.curves]
    if strict and missing:
        name = missing[0]
        raise OptiqError(
            f"no finished {algo} runs of method '{name}' under {paths.finetune_root} "
            f"(run scripts/04_finetune_rl.py --algo {algo} --init {METHOD_INITS[name]})"
        )
    if not strict and not any(runs.curves for runs in methods.values()):
        raise OptiqError(f"no finished {algo} runs under {paths.finetune_root} (run scripts/04_finetune_rl.py first)")
    bc_evals = gather_bc(paths, seeds) if "bc" in requested else {}
    if strict and "bc" in requested and not bc_evals:
        raise OptiqError(
            f"no BC-only evaluation in {paths.evaluation} (bc_only_seed<N>/eval.json; run scripts/05_eval_video.py)"
        )
    bc_finals = [float(result["return_mean"]) for result in bc_evals.values()]
    bc_only = {"return_mean": float(np.mean(bc_finals)), "n": len(bc_finals)} if bc_finals else None
    budget = float(max((c[-1]["timesteps"] for m in methods.values() for c in m.curves.values() if c), default=0.0))

    rows: list[dict[str, Any]] = []
    if bc_only is not None:
        # One score per BC seed (its mean over the evaluation episodes): the spread is BC's seed-to-seed variance.
        rows.append(_row("bc_only", len(bc_finals), bc_finals, iqm_and_mean(bc_finals), random_return, expert_return))
        rows[-1]["seeds"] = [seed for seed in bc_evals if seed is not None]
        rows[-1].update({f"return_at_{int(f * 100)}pct": bc_only["return_mean"] for f in BUDGET_FRACTIONS})
    steps_by_method = {}
    for name, runs in methods.items():
        if not runs.curves:
            continue
        seeds = sorted(runs.curves)
        finals = [runs.final_returns[s] for s in seeds]
        row = _row(name, len(seeds), finals, iqm_and_mean(finals), random_return, expert_return)
        row["env_steps"] = float(np.mean([runs.curves[s][-1]["timesteps"] for s in seeds]))
        for f in BUDGET_FRACTIONS:
            values = [_return_at(runs.curves[s], f * budget, name in SHORT_BUDGET_METHODS) for s in seeds]
            present = [v for v in values if v is not None]
            row[f"return_at_{int(f * 100)}pct"] = float(np.mean(present)) if present else None
        steps = steps_to_threshold_ci([runs.curves[s] for s in seeds], threshold, budget)
        steps_by_method[name] = steps
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
    if scratch_runs is not None and scratch_runs.curves:
        scratch_finals = list(scratch_runs.final_returns.values())
        # Every compared method against scratch; BC -> RL also gets the speedup (the verdict's question).
        for row in rows:
            if row["method"] not in ("bc_rl", *EXTRA_METHODS):
                continue
            runs = methods[row["method"]]
            if row["method"] == "bc_rl":
                speedup = speedup_ci(list(runs.curves.values()), list(scratch_runs.curves.values()), threshold, budget)
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
            {seed: paths.bc_dir(seed) / "metrics.csv" for seed in (bc_evals or _bc_seeds_on_disk(paths, seeds))},
            out_dir / "bc_training.png",
        ),
    }
    verdict = make_verdict(config, algo, rows, speedup, improvement, expert_return, budget, reference)
    summary = {
        "env_id": config["env_id"],
        "algo": algo,
        "expert_return": expert_return,
        "demonstrator": reference,
        "random_return": random_return,
        "threshold": threshold,
        "budget": budget,
        "methods": list(requested),
        "seeds": seeds,
        "bc_seeds": [seed for seed in bc_evals if seed is not None],
        "verdict": verdict,
        "speedup": speedup.to_json(),
        "probability_of_improvement": _est(improvement),
        "rows": rows,
        "unlearning": {
            runs.run_names[s]: runs.unlearning[s]
            for runs in methods.values()
            if runs.name == "bc_rl"
            for s in sorted(runs.curves)
        },
    }
    _write_csv(out_dir / "results.csv", rows)
    log_scalars(
        out_dir / "tb",
        {f"{row['method']}/final_return_iqm": row["final_return_iqm"] for row in rows}
        | {f"{row['method']}/normalized_iqm": row["normalized_iqm"] for row in rows}
        | {"bc_rl/speedup": speedup.estimate.value if speedup.estimate else None},
    )
    write_json(out_dir / "results.json", summary)
    table = render_table(rows, speedup)
    write_text(out_dir / "results.md", f"# Results\n\n**Verdict.** {verdict}\n\n{table}\n")
    videos = _videos(paths, out_dir)
    write_text(out_dir / "report.md", render_report_md(config, algo, summary, table, figures, videos))
    write_text(out_dir / "report.html", render_report_html(config, algo, summary, table, figures, videos))
    for name in ("results.csv", "results.md", "results.json", "report.md", "report.html"):
        record.add_artifact(out_dir / name)
    for figure in figures.values():
        if figure is not None:
            record.add_artifact(figure)
    record.finish(verdict=verdict)
    return summary


def _bc_seeds_on_disk(paths: RunPaths, seeds: Sequence[int] | None) -> list[int | None]:
    """BC seeds with metrics (for the BC training figure where BC only is not compared)."""
    found = [s for s in seed_folders(paths.bc) if (seeds is None or s in seeds)]
    return found or [None]


def _return_at(curve: list[dict[str, float]], timesteps: float, hold_final: bool) -> float | None:
    """Return at ``timesteps``; a method with a smaller budget by design keeps its final policy past its end."""
    if hold_final and curve and timesteps > curve[-1]["timesteps"]:
        return curve[-1]["return_mean"]
    return return_at(curve, timesteps)


def _row(
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


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fields: list[str] = []
    for row in rows:
        fields += [key for key in row if key not in fields]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def _unit(row: dict[str, Any]) -> str:
    """What the row's n counts: seeds (BC seeds for BC only); "episode" only in results written before BC seeds."""
    return row.get("unit", "seed")


def _count(row: dict[str, Any]) -> str:
    unit = _unit(row)
    return f"{row['n']} {unit}{'s' if row['n'] != 1 else ''}"


AGGREGATE_TITLES = {"iqm": "IQM", "mean": "mean"}


def _estimate(row: dict[str, Any], key: str, interval_key: str | None = None) -> Estimate | None:
    """The row's ``key`` with its interval (``<key>_ci_low``/``_ci_high``, kind in ``<key>_interval``)."""
    value = row.get(key)
    if value is None:
        return None
    low, high = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
    interval = row.get(interval_key or f"{key}_interval") or "ci95"
    if low is None or high is None:
        low, high, interval = value, value, "none"
    return Estimate(value, low, high, interval, row.get("n"))


def _ci(row: dict[str, Any], key: str, digits: int = 1) -> str:
    est = _estimate(row, key, "prob_improvement_interval" if key == "prob_improvement_vs_scratch" else None)
    return "n/a" if est is None else est.text(digits)


def _quote(row: dict[str, Any], digits: int = 0, key: str = "final_return") -> str:
    """The reported aggregate as the table shows it: "IQM 1,234 [1,100, 1,300]", "mean 1,234 [min .., max ..]",
    or the one value."""
    est = _estimate(row, key)
    if est is None:
        return "n/a"
    if est.interval == "none":
        return est.text(digits)
    return f"{AGGREGATE_TITLES[row.get('aggregate', 'iqm')]} {est.text(digits)}"


def demonstrator(demos_meta: dict[str, Any]) -> str:
    """What the "expert" reference is: the demos' source (a policy, a scripted controller, a dataset)."""
    source = demos_meta.get("source", "expert")
    if source == "scripted":
        return f"scripted controller {demos_meta.get('controller', '')}".strip()
    if source == "minari":
        return "Minari demos " + ", ".join(d["dataset_id"] for d in demos_meta.get("datasets", []))
    return "expert"


def make_verdict(
    config: dict[str, Any],
    algo: str,
    rows: list[dict[str, Any]],
    speedup: SpeedupEstimate,
    improvement: Estimate | None,
    expert_return: float,
    budget: float,
    reference: str = "expert",
) -> str:
    """The answer, worded by the numbers; then a sentence about the other methods, if any were compared.

    * The regime (when BC only was evaluated): BC's reported return is at or above
      ``THRESHOLD_FRACTION`` of the demonstrator's ("BC alone already matches the <reference>
      (X % of its return)") or below it ("BC is below the <reference> (X % ...)").
    * BC -> RL against scratch, and against BC alone, quoting the aggregate and interval the
      table shows (IQM, or the mean for n <= 3). The rule: one is "better"/"worse" only when
      the two intervals do not overlap; otherwise the difference is "not resolved ... within
      noise at <n> seeds". Intervals are 95 % CIs, or [min, max] of 2-3 seeds: disjoint ranges
      mean every run of one beat every run of the other, which with no real difference
      happens by chance 1 / C(n_a + n_b, n_a) of the time (1 in 6 for 2 vs 2 seeds), so with
      a range it also takes that chance <= ``ALPHA`` (5 %, e.g. 3 vs 3 seeds). One value has no
      interval, so it is never resolved.
    * The speedup with its bound ("<=", ">=", "at start", "not bounded") and P(BC->RL > scratch).
    """
    by_method = {row["method"]: row for row in rows}
    bc_rl, scratch, bc = by_method.get("bc_rl"), by_method.get("scratch"), by_method.get("bc_only")
    others = _others_sentence(rows, budget)
    regime = _regime(bc, expert_return, reference) + ". " if bc else ""
    if not bc_rl or not scratch:
        return regime + "Not enough runs for a verdict: both BC->RL and RL from scratch are needed." + others
    seeds = (
        _count(bc_rl) + " each"
        if bc_rl["n"] == scratch["n"]
        else f"{_count(bc_rl)} BC -> RL, {_count(scratch)} scratch"
    )
    text = (
        f"On {config['env_id']} with {algo.upper()} and {int(budget):,} env steps ({seeds}): {regime}"
        f"BC -> RL vs RL from scratch, final return {_quote(bc_rl)} vs {_quote(scratch)}: "
        f"{_difference(bc_rl, scratch, 'RL from scratch')}"
    )
    if bc:
        text += f"; vs BC alone ({_quote(bc)} over {_count(bc)}): {_difference(bc_rl, bc, 'BC alone')}"
    text += f"; speedup to 90 % of {reference} return {speedup.text()}"
    if improvement is not None:
        text += f"; P(BC->RL > scratch) = {improvement.text(2)}"
    fewest = min(bc_rl["n"], scratch["n"])
    if fewest == 1:
        text += "; with 1 seed there is no interval"
    elif fewest < IQM_MIN_N:
        text += f"; with {fewest} seeds the intervals are the [min, max] of the seeds, not 95 % CIs"
    return text + "." + others


def _regime(bc: dict[str, Any], expert_return: float, reference: str) -> str:
    """'BC alone already matches the <reference> (X % of its return R)' or 'BC is below the <reference> (...)'."""
    if expert_return > 0:
        matches = bc["final_return"] >= THRESHOLD_FRACTION * expert_return
        share = f"{100 * bc['final_return'] / expert_return:.0f} % of its return {expert_return:,.0f}"
    else:  # a share of a negative return means nothing: the normalised score (0 random, 1 demonstrator)
        matches = bc["normalized"] >= THRESHOLD_FRACTION
        share = f"normalised score {bc['normalized']:.2f}"
    if matches:
        return f"BC alone already matches the {reference} ({share})"
    return f"BC is below the {reference} ({share})"


def _difference(a: dict[str, Any], b: dict[str, Any], b_title: str) -> str:
    """How ``a`` (BC -> RL) compares with ``b`` by the non-overlap rule of :func:`make_verdict`."""
    ea, eb = _estimate(a, "final_return"), _estimate(b, "final_return")
    if ea is None or eb is None:
        return "not resolved (no number)"
    single = [row for row, est in ((a, ea), (b, eb)) if est.interval == "none"]
    if single:
        return f"not resolved with {_count(single[0])} (no interval)"
    same_size = (a["n"], _unit(a)) == (b["n"], _unit(b))
    sizes = _count(a) if same_size else f"{_count(a)} and {_count(b)}"
    if ea.low <= eb.high and ea.high >= eb.low:
        return f"not resolved, the intervals overlap (within noise at {sizes})"
    above = ea.low > eb.high
    chance = separation_chance(a["n"], b["n"])
    if "range" in (ea.interval, eb.interval) and chance > ALPHA:
        return (
            f"not resolved at {sizes}: every BC -> RL run is {'above' if above else 'below'} every {b_title} one, "
            f"but with this few that happens by chance 1 time in {round(1 / chance)}"
        )
    return f"BC -> RL is {'better' if above else 'worse'} than {b_title} (the intervals do not overlap)"


def _others_sentence(rows: list[dict[str, Any]], budget: float) -> str:
    """' Other methods, final return: AIRL IQM 1,234 [..] (P(> scratch) = 0.50 [..]), ...' or ''."""
    others = [row for row in rows if row["method"] in EXTRA_METHODS]
    if not others:
        return ""
    parts = []
    for row in others:
        part = f"{METHOD_TITLES[row['method']]} {_quote(row)}"
        if row.get("env_steps") is not None and row["env_steps"] < 0.9 * budget:
            part += f" after {row['env_steps']:,.0f} env steps"
        if row.get("prob_improvement_vs_scratch") is not None:
            part += f" (P(> scratch) = {_ci(row, 'prob_improvement_vs_scratch', 2)})"
        parts.append(part)
    best = max(others, key=lambda row: row["final_return"])
    text = f" Other methods, final return: {', '.join(parts)}"
    return text + (f"; highest point estimate: {METHOD_TITLES[best['method']]}." if len(others) > 1 else ".")


NORMALIZED_CAPTION = "Normalised IQM with 95 % CI (mean with [min, max] where 3 seeds or fewer)"
TABLE_NOTE = (
    "Final return: IQM (interquartile mean) over seeds (BC only: over BC seeds, each BC's mean over the "
    "evaluation episodes; each BC -> RL seed starts from the BC of the same seed); with 3 values or "
    "fewer the IQM trims nothing and is the mean, so those rows say mean. [a, b]: 95 % stratified-bootstrap CI "
    "(rliable); [min a, max b]: with 2 or 3 values a percentile bootstrap can only return the smallest and largest, "
    "so the interval is shown as that range; one value: no interval. Normalised: the same aggregate, 0 = random "
    "policy, 1 = expert. Steps to 90 % expert: reached = two consecutive evaluations at or above the threshold (the "
    "last evaluation counts on its own), at the first of them; a seed that never got there counts as the whole "
    "budget and makes the number a lower bound ('>='). Speedup: scratch's steps / BC -> RL's steps; '>=' when "
    "scratch missed the threshold on some seed, '<=' when BC -> RL did, not bounded when both did, 'at start' when "
    "BC -> RL was already there at step 0 on some seed (no finite ratio). Unlearning ratio: worst evaluation return "
    "in the first 20 % of fine-tuning / return at step 0 (1 = nothing forgotten)."
)


def render_table(rows: list[dict[str, Any]], speedup: SpeedupEstimate) -> str:
    lines = [
        "| method | n | final return [interval] | mean ± std | normalised (same aggregate) | at 25 % | at 50 % "
        "| at 100 % | steps to 90 % expert [interval] | speedup vs scratch [interval] | P(better than scratch) "
        "| unlearning ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["method"] == "bc_only":
            steps = "n/a (no RL)"
        elif row.get("steps_to_threshold") is None:
            steps = "n/a"
        else:
            bound = ">= " if row["steps_is_lower_bound"] else ""
            interval = row.get("steps_interval") or "ci95"
            est = Estimate(row["steps_to_threshold"], row["steps_ci_low"], row["steps_ci_high"], interval, row["n"])
            steps = f"{bound}{est.text(0)} ({row['seeds_reached']}/{row['n']} reached)"
        is_bc_rl = row["method"] == "bc_rl"
        has_p = row.get("prob_improvement_vs_scratch") is not None
        lines.append(
            f"| {METHOD_TITLES[row['method']]} | {_count(row)} "
            f"| {_quote(row, 1)} | {_fmt(row['final_return_mean'])} ± {_fmt(row['final_return_std'])} "
            f"| {_ci(row, 'normalized', 2)} | {_fmt(row.get('return_at_25pct'))} "
            f"| {_fmt(row.get('return_at_50pct'))} "
            f"| {_fmt(row.get('return_at_100pct'))} | {steps} | {speedup.text() if is_bc_rl else ''} "
            f"| {_ci(row, 'prob_improvement_vs_scratch', 2) if has_p else ''} "
            f"| {_fmt(row.get('unlearning_ratio_mean'), 2) if is_bc_rl else ''} |"
        )
    lines += ["", TABLE_NOTE]
    present = {row["method"] for row in rows}
    if present & {"airl", "gail"}:
        lines[-1] += (
            " AIRL/GAIL: imitation's adversarial IRL, PPO trained on the learned reward only (raw observations), "
            "evaluated on the true reward."
        )
    if "dagger" in present:
        lines[-1] += (
            " DAgger: imitation's DAgger querying the demo expert, with imitation.dagger.budget_fraction of the "
            "budget; past its last evaluation its columns hold its final policy."
        )
    return "\n".join(lines)


def _videos(paths: RunPaths, out_dir: Path) -> list[tuple[str, str]]:
    """(label, path relative to the report) of every recorded video, side-by-side first."""
    found = []
    if paths.evaluation.is_dir():
        side = paths.evaluation / SIDE_BY_SIDE
        if side.is_file():
            found.append(("side by side", os.path.relpath(side, out_dir)))
        for folder in sorted(p for p in paths.evaluation.iterdir() if p.is_dir()):
            if (folder / "video.mp4").is_file():
                found.append((folder.name, os.path.relpath(folder / "video.mp4", out_dir)))
    return found


def _unlearning_lines(summary: dict[str, Any]) -> list[str]:
    lines = ["| run | return at step 0 | worst return in first 20 % | ratio |", "|---|---|---|---|"]
    for name, report in summary["unlearning"].items():
        lines.append(
            f"| {name} | {_fmt(report.get('return_at_start'))} | {_fmt(report.get('min_return_early'))} "
            f"| {_fmt(report.get('unlearning_ratio'), 2)} |"
        )
    return lines


def render_report_md(
    config: dict[str, Any],
    algo: str,
    summary: dict[str, Any],
    table: str,
    figures: dict[str, Path | None],
    videos: list[tuple[str, str]],
) -> str:
    lines = [
        f"# Does imitation pre-training help on {config['env_id']}? ({algo.upper()})",
        "",
        f"**Verdict.** {summary['verdict']}",
        "",
        f"Expert ({summary.get('demonstrator', 'expert')}) return {summary['expert_return']:,.1f}, "
        f"random policy {summary['random_return']:,.1f}, "
        f"threshold (90 % of expert) {summary['threshold']:,.1f}, reached = two consecutive evaluations at or "
        f"above, budget {int(summary['budget']):,} env steps.",
        "",
        "## Results",
        "",
        table,
        "",
        "## Learning curves",
        "",
    ]
    for key, caption in (
        ("learning_curves", "Return vs env steps"),
        ("normalized_curves", NORMALIZED_CAPTION),
    ):
        if figures.get(key):
            lines += [f"![{caption}]({figures[key].name})", ""]
    lines += ["## BC training", ""]
    lines += (
        [f"![BC train/val loss]({figures['bc_training'].name})", ""]
        if figures.get("bc_training")
        else ["(no BC metrics)", ""]
    )
    lines += ["## Unlearning (BC -> RL runs)", "", *_unlearning_lines(summary), "", "## Videos", ""]
    lines += [f"- [{label}]({path})" for label, path in videos] or ["(no videos recorded)"]
    return "\n".join(lines) + "\n"


def _md_table_to_html(table: str) -> str:
    rows = [line for line in table.splitlines() if line.startswith("|") and not line.startswith("|---")]
    notes = [line for line in table.splitlines() if line and not line.startswith("|")]
    out = ["<table>"]
    for i, line in enumerate(rows):
        cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
        tag = "th" if i == 0 else "td"
        out.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
    out.append("</table>")
    out += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    return "\n".join(out)


def render_report_html(
    config: dict[str, Any],
    algo: str,
    summary: dict[str, Any],
    table: str,
    figures: dict[str, Path | None],
    videos: list[tuple[str, str]],
) -> str:
    def image(path: Path | None, alt: str) -> str:
        if path is None or not path.is_file():
            return ""
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        caption = html.escape(alt)
        img = f"<img alt='{caption}' src='data:image/png;base64,{data}'>"
        return f"<figure>{img}<figcaption>{caption}</figcaption></figure>"

    video_items = "".join(f"<li><a href='{html.escape(p)}'>{html.escape(label)}</a></li>" for label, p in videos)
    title = f"Does imitation pre-training help on {config['env_id']}? ({algo.upper()})"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
.verdict {{ font-size: 1.15em; background: #eef5ff; border-left: 4px solid #3b82f6; padding: .8em 1em; }}
table {{ border-collapse: collapse; font-size: .9em; }} th, td {{ border: 1px solid #ccc; padding: .3em .5em; }}
th {{ background: #f4f4f4; }} img {{ max-width: 100%; }} .note {{ color: #555; font-size: .85em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="verdict"><strong>Verdict.</strong> {html.escape(summary["verdict"])}</p>
<p>Expert ({html.escape(summary.get("demonstrator", "expert"))}) return {summary["expert_return"]:,.1f},
random policy {summary["random_return"]:,.1f},
threshold {summary["threshold"]:,.1f} (reached = two consecutive evaluations at or above),
budget {int(summary["budget"]):,} env steps.</p>
<h2>Results</h2>
{_md_table_to_html(table)}
<h2>Learning curves</h2>
{image(figures.get("learning_curves"), "Return vs env steps")}
{image(figures.get("normalized_curves"), NORMALIZED_CAPTION)}
<h2>BC training</h2>
{image(figures.get("bc_training"), "BC train/val loss")}
<h2>Unlearning (BC -&gt; RL runs)</h2>
{_md_table_to_html(chr(10).join(_unlearning_lines(summary)))}
<h2>Videos</h2>
<ul>{video_items or "<li>no videos recorded</li>"}</ul>
</body></html>
"""


def _save_figure(fig: Any, out_path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return out_path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _with_runs(methods: dict[str, MethodRuns]) -> list[tuple[str, MethodRuns]]:
    return [(name, runs) for name, runs in methods.items() if runs.curves]


def plot_learning_curves(
    methods: dict[str, MethodRuns],
    bc_only: dict[str, Any] | None,
    expert_return: float,
    threshold: float,
    out_path: Path,
    config: dict[str, Any],
) -> Path:
    """Mean return vs env steps per method (band: min..max over seeds), with reference lines."""
    fig, ax = _pyplot().subplots(figsize=(8, 5), dpi=110)
    for name, runs in _with_runs(methods):
        grid = sorted({row["timesteps"] for curve in runs.curves.values() for row in curve})
        values = np.array(
            [[v if (v := return_at(c, t)) is not None else np.nan for t in grid] for c in runs.curves.values()]
        )
        n = len(runs.curves)
        ax.plot(
            grid,
            np.nanmean(values, axis=0),
            color=COLOURS[name],
            linewidth=2,
            label=f"{METHOD_TITLES[name]} ({n} seed{'s' if n > 1 else ''})",
        )
        if n > 1:
            ax.fill_between(grid, np.nanmin(values, axis=0), np.nanmax(values, axis=0), color=COLOURS[name], alpha=0.2)
    ax.axhline(expert_return, color="black", linewidth=1, label=f"expert ({expert_return:,.0f})")
    ax.axhline(threshold, color="black", linestyle=":", linewidth=1, label="90 % of expert")
    if bc_only is not None:
        ax.axhline(
            bc_only["return_mean"],
            color="tab:green",
            linestyle="--",
            linewidth=1.5,
            label=f"BC only ({bc_only['return_mean']:,.0f}"
            + (f", mean of {bc_only['n']} seeds)" if bc_only.get("n", 1) > 1 else ")"),
        )
    ax.set(
        xlabel="environment steps", ylabel="deterministic episode return", title=f"{config['env_id']}: learning curves"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save_figure(fig, out_path)


def plot_normalized_curves(
    methods: dict[str, MethodRuns],
    bc_only: dict[str, Any] | None,
    random_return: float,
    expert_return: float,
    out_path: Path,
    config: dict[str, Any],
) -> Path:
    """Sample-efficiency curves: normalised IQM over seeds with 95 % bootstrap CI bands."""
    fig, ax = _pyplot().subplots(figsize=(8, 5), dpi=110)
    for name, runs in _with_runs(methods):
        curves = [
            [
                {
                    "timesteps": r["timesteps"],
                    "return_mean": float(normalized(r["return_mean"], random_return, expert_return)),
                }
                for r in c
            ]
            for c in runs.curves.values()
        ]
        grid = sorted({row["timesteps"] for curve in curves for row in curve})
        x, mid, low, high = efficiency_curve(curves, grid)
        ax.plot(x, mid, color=COLOURS[name], linewidth=2, label=METHOD_TITLES[name])
        ax.fill_between(x, low, high, color=COLOURS[name], alpha=0.2)
    ax.axhline(1.0, color="black", linewidth=1, label="expert")
    if bc_only is not None:
        ax.axhline(
            float(normalized(bc_only["return_mean"], random_return, expert_return)),
            color="tab:green",
            linestyle="--",
            label="BC only",
        )
    ax.set(
        xlabel="environment steps",
        ylabel="normalised return (IQM; mean for n <= 3)",
        title=f"{config['env_id']}: sample efficiency",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save_figure(fig, out_path)


def plot_bc_training(metrics: dict[int | None, Path] | Path, out_path: Path) -> Path | None:
    """BC train and validation loss per epoch (and validation action MSE), one line per BC seed.

    ``metrics``: each BC seed's ``metrics.csv`` (None: the single BC), or one path.
    """
    from optiq.bc.train import read_metrics

    if isinstance(metrics, Path):
        metrics = {None: metrics}
    curves = {seed: read_metrics(path) for seed, path in metrics.items() if path.is_file()}
    curves = {seed: rows for seed, rows in curves.items() if rows}
    if not curves:
        return None
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=110)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (seed, rows) in enumerate(curves.items()):
        colour = colours[i % len(colours)]
        tag = "" if seed is None else f" (seed {seed})"
        epochs = [r["epoch"] for r in rows]
        left.plot(epochs, [r["train_loss"] for r in rows], color=colour, linestyle=":", label=f"train loss{tag}")
        left.plot(epochs, [r["val_loss"] for r in rows], color=colour, label=f"val loss (NLL){tag}")
        right.plot(epochs, [r["val_mse"] for r in rows], color=colour, label=f"val action MSE{tag}")
    left.set(xlabel="epoch", ylabel="BC loss", title="BC loss")
    left.legend(fontsize=7)
    right.set(xlabel="epoch", ylabel="MSE", title="held-out action MSE", yscale="log")
    right.legend(fontsize=7)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return _save_figure(fig, out_path)
