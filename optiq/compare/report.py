"""Stage 06: compare BC-only, BC->RL and RL-from-scratch; write results.csv/.md and a plot."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optiq.atomic_io import atomic_path, read_json, write_json, write_text
from optiq.compare.metrics import Speedup, mean_curve, mean_std, return_at, speedup, steps_to_threshold
from optiq.errors import OptiqError
from optiq.evaluation.pipeline import BC_LABEL
from optiq.paths import RunPaths
from optiq.records import RunRecord
from optiq.rl.training import read_eval_csv

THRESHOLD_FRACTION = 0.9
BUDGET_FRACTIONS = (0.25, 0.5, 1.0)
METHOD_TITLES = {"bc_only": "BC only", "bc_rl": "BC -> RL", "scratch": "RL from scratch"}


@dataclass
class MethodRuns:
    """All seeds of one fine-tuning method."""

    name: str
    curves: dict[int, list[dict[str, float]]] = field(default_factory=dict)
    final_returns: dict[int, float] = field(default_factory=dict)
    unlearning: dict[int, float | None] = field(default_factory=dict)


def gather_runs(paths: RunPaths, algo: str) -> dict[str, MethodRuns]:
    """Read every ``04_finetune/<algo>_<init>_seed<N>`` run (and its stage-05 evaluation)."""
    methods = {"bc_rl": MethodRuns("bc_rl"), "scratch": MethodRuns("scratch")}
    pattern = re.compile(rf"^{algo}_(bc|scratch)_seed(\d+)$")
    if not paths.finetune_root.is_dir():
        return methods
    for run_dir in sorted(paths.finetune_root.iterdir()):
        match = pattern.match(run_dir.name)
        if not match or not (run_dir / "summary.json").is_file():
            continue
        method = methods["bc_rl" if match.group(1) == "bc" else "scratch"]
        seed = int(match.group(2))
        summary = read_json(run_dir / "summary.json")
        method.curves[seed] = read_eval_csv(run_dir / "eval.csv")
        final_eval = paths.evaluation / run_dir.name / "eval.json"
        method.final_returns[seed] = (
            read_json(final_eval)["return_mean"] if final_eval.is_file() else summary["final_return"]
        )
        method.unlearning[seed] = summary["unlearning"].get("unlearning_ratio")
    return methods


def _fmt(value: float | None, std: float | None = None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:,.{digits}f}"
    return f"{text} ± {std:,.{digits}f}" if std is not None and not math.isnan(std) else text


def compare(paths: RunPaths, config: dict[str, Any], algo: str, out_dir: Path | None = None) -> dict[str, Any]:
    """Compute the comparison and write results.csv, results.md, learning_curves.png, results.json."""
    out_dir = out_dir or paths.compare
    record = RunRecord("06_compare", out_dir, config, None, algo=algo)
    meta_path = paths.demos / "metadata.json"
    if not meta_path.is_file():
        raise OptiqError(f"no {meta_path} (run scripts/01_collect_demos.py first)")
    expert_return = float(read_json(meta_path)["expert_return_mean"])
    threshold = THRESHOLD_FRACTION * expert_return
    methods = gather_runs(paths, algo)
    if not methods["bc_rl"].curves and not methods["scratch"].curves:
        raise OptiqError(f"no finished {algo} runs under {paths.finetune_root} (run scripts/04_finetune_rl.py first)")
    bc_eval_path = paths.evaluation / BC_LABEL / "eval.json"
    bc_only = read_json(bc_eval_path) if bc_eval_path.is_file() else None
    budget = float(max((c[-1]["timesteps"] for m in methods.values() for c in m.curves.values() if c), default=0.0))
    budget = budget or float(config["finetune"]["total_timesteps"])

    rows: list[dict[str, Any]] = []
    steps_mean: dict[str, tuple[float | None, bool]] = {}
    if bc_only is not None:
        rows.append(
            {
                "method": "bc_only",
                "n_seeds": 1,
                "final_return_mean": bc_only["return_mean"],
                "final_return_std": bc_only["return_std"],
                **{f"return_at_{int(f * 100)}pct": bc_only["return_mean"] for f in BUDGET_FRACTIONS},
                "steps_to_threshold_mean": 0.0 if bc_only["return_mean"] >= threshold else None,
                "seeds_reached": int(bc_only["return_mean"] >= threshold),
                "speedup_vs_scratch": None,
                "speedup_is_lower_bound": None,
                "unlearning_ratio_mean": None,
            }
        )
    for name in ("bc_rl", "scratch"):
        runs = methods[name]
        if not runs.curves:
            continue
        seeds = sorted(runs.curves)
        final_mean, final_std = mean_std([runs.final_returns[s] for s in seeds])
        final_std = final_std if len(seeds) > 1 else None
        reached = [steps_to_threshold(runs.curves[s], threshold) for s in seeds]
        n_reached = sum(r is not None for r in reached)
        # Seeds that never reached count as the full budget; the mean is then a lower bound.
        effective = [r if r is not None else budget for r in reached]
        steps_mean[name] = (float(sum(effective) / len(effective)), n_reached < len(seeds))
        rows.append(
            {
                "method": name,
                "n_seeds": len(seeds),
                "final_return_mean": final_mean,
                "final_return_std": final_std,
                **{
                    f"return_at_{int(f * 100)}pct": mean_std([return_at(runs.curves[s], f * budget) for s in seeds])[0]
                    for f in BUDGET_FRACTIONS
                },
                "steps_to_threshold_mean": steps_mean[name][0] if n_reached else None,
                "seeds_reached": n_reached,
                "speedup_vs_scratch": None,
                "speedup_is_lower_bound": None,
                "unlearning_ratio_mean": mean_std([runs.unlearning[s] for s in seeds])[0] if name == "bc_rl" else None,
            }
        )
    result_speedup = Speedup(None, False)
    if "bc_rl" in steps_mean and "scratch" in steps_mean:
        bc_steps, bc_partial = steps_mean["bc_rl"]
        scratch_steps, scratch_partial = steps_mean["scratch"]
        if bc_partial:
            result_speedup = Speedup(None, False)
        else:
            result_speedup = speedup(
                None if scratch_partial else scratch_steps, bc_steps, scratch_steps if scratch_partial else budget
            )
        for row in rows:
            if row["method"] == "bc_rl":
                row["speedup_vs_scratch"] = result_speedup.value
                row["speedup_is_lower_bound"] = result_speedup.lower_bound

    out_dir.mkdir(parents=True, exist_ok=True)
    _write_csv(out_dir / "results.csv", rows)
    plot_path = plot_learning_curves(
        methods, bc_only, expert_return, threshold, out_dir / "learning_curves.png", config
    )
    verdict = make_verdict(config, algo, rows, result_speedup, expert_return, budget)
    write_text(
        out_dir / "results.md",
        render_markdown(config, algo, rows, result_speedup, expert_return, threshold, verdict, plot_path),
    )
    summary = {
        "env_id": config["env_id"],
        "algo": algo,
        "expert_return": expert_return,
        "threshold": threshold,
        "budget": budget,
        "verdict": verdict,
        "speedup": {
            "value": result_speedup.value,
            "lower_bound": result_speedup.lower_bound,
            "text": result_speedup.text(),
        },
        "rows": rows,
    }
    write_json(out_dir / "results.json", summary)
    for name in ("results.csv", "results.md", "results.json", "learning_curves.png"):
        record.add_artifact(out_dir / name)
    record.finish(verdict=verdict)
    return summary


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def make_verdict(
    config: dict[str, Any],
    algo: str,
    rows: list[dict[str, Any]],
    result_speedup: Speedup,
    expert_return: float,
    budget: float,
) -> str:
    by_method = {row["method"]: row for row in rows}
    bc_rl, scratch, bc = by_method.get("bc_rl"), by_method.get("scratch"), by_method.get("bc_only")
    if not bc_rl or not scratch:
        return "Not enough runs for a verdict: both BC->RL and RL from scratch are needed."
    gain = bc_rl["final_return_mean"] - scratch["final_return_mean"]
    better = "better" if gain > 0 else "worse"
    text = (
        f"On {config['env_id']} with {algo.upper()} and {int(budget):,} env steps ({bc_rl['n_seeds']} seed(s)), "
        f"BC pre-training made RL {better}: final return {bc_rl['final_return_mean']:,.0f} vs "
        f"{scratch['final_return_mean']:,.0f} from scratch"
    )
    if bc:
        text += f" (BC alone {bc['final_return_mean']:,.0f}, expert {expert_return:,.0f})"
    text += f"; speedup to 90 % of expert return: {result_speedup.text()}."
    return text


def render_markdown(
    config: dict[str, Any],
    algo: str,
    rows: list[dict[str, Any]],
    result_speedup: Speedup,
    expert_return: float,
    threshold: float,
    verdict: str,
    plot_path: Path | None,
) -> str:
    lines = [
        f"# {config['env_id']}: BC only vs BC -> RL vs RL from scratch ({algo.upper()})",
        "",
        f"**Verdict.** {verdict}",
        "",
        f"Expert return {expert_return:,.1f}; threshold (90 %) {threshold:,.1f}. Returns are deterministic-policy "
        "episode returns; ± is the std across seeds (BC only: across evaluation episodes).",
        "",
        "| method | seeds | final return | at 25 % budget | at 50 % budget | at 100 % budget "
        "| steps to 90 % expert | speedup vs scratch | unlearning ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        steps = row["steps_to_threshold_mean"]
        steps_text = "never" if steps is None else f"{steps:,.0f} ({row['seeds_reached']}/{row['n_seeds']} seeds)"
        final = _fmt(row["final_return_mean"], row["final_return_std"])
        lines.append(
            f"| {METHOD_TITLES[row['method']]} | {row['n_seeds']} | {final} "
            f"| {_fmt(row['return_at_25pct'])} | {_fmt(row['return_at_50pct'])} | {_fmt(row['return_at_100pct'])} "
            f"| {steps_text} | {result_speedup.text() if row['method'] == 'bc_rl' else ''} "
            f"| {_fmt(row['unlearning_ratio_mean'], digits=2) if row['method'] == 'bc_rl' else ''} |"
        )
    lines += [
        "",
        "Speedup: env steps for RL from scratch to reach 90 % of expert return divided by those of BC -> RL; "
        "'>=' marks a lower bound when scratch never got there within the budget. Unlearning ratio: the worst "
        "evaluation return in the first 20 % of fine-tuning divided by the return at step 0 (1 = nothing forgotten).",
        "",
    ]
    if plot_path is not None:
        lines += [f"![learning curves]({plot_path.name})", ""]
    return "\n".join(lines)


def plot_learning_curves(
    methods: dict[str, MethodRuns],
    bc_only: dict[str, Any] | None,
    expert_return: float,
    threshold: float,
    out_path: Path,
    config: dict[str, Any],
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    colours = {"bc_rl": "tab:blue", "scratch": "tab:orange"}
    for name, runs in methods.items():
        if not runs.curves:
            continue
        x, mean, std = mean_curve(list(runs.curves.values()))
        label = f"{METHOD_TITLES[name]} ({len(runs.curves)} seed{'s' if len(runs.curves) > 1 else ''})"
        ax.plot(x, mean, color=colours[name], label=label, linewidth=2)
        if len(runs.curves) > 1:
            ax.fill_between(x, mean - std, mean + std, color=colours[name], alpha=0.2)
    ax.axhline(expert_return, color="black", linestyle="-", linewidth=1, label=f"expert ({expert_return:,.0f})")
    ax.axhline(threshold, color="black", linestyle=":", linewidth=1, label="90 % of expert")
    if bc_only is not None:
        ax.axhline(
            bc_only["return_mean"],
            color="tab:green",
            linestyle="--",
            linewidth=1.5,
            label=f"BC only ({bc_only['return_mean']:,.0f})",
        )
    ax.set_xlabel("environment steps")
    ax.set_ylabel("deterministic episode return")
    ax.set_title(f"{config['env_id']}: learning curves")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return out_path
