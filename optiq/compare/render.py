"""results.md's table and the report (markdown and self-contained HTML)."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

from optiq.compare.formatting import (
    count_text,
    format_number,
    interval_text,
    quote_aggregate,
)
from optiq.compare.methods import (
    METHOD_TITLES,
)
from optiq.compare.statistics import (
    Estimate,
    SpeedupEstimate,
)
from optiq.evaluation.pipeline import SIDE_BY_SIDE
from optiq.paths import RunPaths

NORMALIZED_CAPTION = "Normalised IQM with 95 % CI (mean with [min, max] where 3 seeds or fewer)"
LEARNED_REWARD_CAPTION = "IPMD's learned reward vs the true reward along one expert and one random episode"


TABLE_NOTE = (
    "Final return: IQM (interquartile mean) over seeds (BC only: over BC seeds, each BC's mean over the "
    "evaluation episodes; each BC -> RL seed starts from the BC of the same seed); with 3 values or "
    "fewer the IQM trims nothing and is the mean, so those rows say mean. [a, b]: 95 % stratified-bootstrap CI "
    "(rliable); [min a, max b]: with 2 or 3 values a percentile bootstrap can only return the smallest and largest, "
    "so the interval is shown as that range; one value: no interval. Normalised: the same aggregate, 0 = random "
    "policy, 1 = expert. Steps to 90 % expert: reached = two consecutive evaluations at or above the threshold (the "
    "last evaluation counts on its own), at the first of them; a seed that never got there counts as the whole "
    "budget and makes the number a lower bound ('>='). Speedup to scratch's final: mean steps to RL from scratch's "
    "final return (its row's aggregate), scratch's / BC -> RL's, reached as above; '>=' when some scratch seed "
    "never got there (a seed ending below the aggregate), '<=' when some BC -> RL seed did not, not bounded when "
    "both, 'at start' when BC -> RL was already there at step 0 on some seed (no finite ratio). "
    "Budget: the env steps the runs were asked for; a run stops at the first rollout end past it, and its final "
    "evaluation counts as its return at the budget. "
    "Unlearning ratio: worst evaluation return in the first 20 % of fine-tuning / return at step 0 "
    "(1 = nothing forgotten)."
)


def _source_text(summary: dict[str, Any]) -> str:
    """' (scripted controller ...)' where the demonstrator is not a trained expert, else ''."""
    source = summary.get("demonstrator", "expert")
    return "" if source == "expert" else f" ({source})"


def _speedup_target_text(summary: dict[str, Any]) -> str:
    """', speedup target (scratch's final return) 845.3' or '' without scratch (older results have no key)."""
    target = summary.get("speedup_target")
    return f", speedup target (RL from scratch's final return) {target:,.1f}" if target is not None else ""


def render_table(rows: list[dict[str, Any]], speedup: SpeedupEstimate) -> str:
    lines = [
        "| method | n | final return [interval] | mean ± std | normalised (same aggregate) | at 25 % | at 50 % "
        "| at 100 % | steps to 90 % expert [interval] | speedup to scratch's final [interval] | P(better than scratch) "
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
            f"| {METHOD_TITLES[row['method']]} | {count_text(row)} "
            f"| {quote_aggregate(row, 1)} "
            f"| {format_number(row['final_return_mean'])} ± {format_number(row['final_return_std'])} "
            f"| {interval_text(row, 'normalized', 2)} | {format_number(row.get('return_at_25pct'))} "
            f"| {format_number(row.get('return_at_50pct'))} "
            f"| {format_number(row.get('return_at_100pct'))} | {steps} | {speedup.text() if is_bc_rl else ''} "
            f"| {interval_text(row, 'prob_improvement_vs_scratch', 2) if has_p else ''} "
            f"| {format_number(row.get('unlearning_ratio_mean'), 2) if is_bc_rl else ''} |"
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


def find_videos(paths: RunPaths, out_dir: Path) -> list[tuple[str, str]]:
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


def unlearning_lines(summary: dict[str, Any]) -> list[str]:
    lines = ["| run | return at step 0 | worst return in first 20 % | ratio |", "|---|---|---|---|"]
    for name, report in summary["unlearning"].items():
        lines.append(
            f"| {name} | {format_number(report.get('return_at_start'))} "
            f"| {format_number(report.get('min_return_early'))} "
            f"| {format_number(report.get('unlearning_ratio'), 2)} |"
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
        f"Expert{_source_text(summary)} return {summary['expert_return']:,.1f}, "
        f"random policy {summary['random_return']:,.1f}, "
        f"threshold (90 % of expert) {summary['threshold']:,.1f}, reached = two consecutive evaluations at or "
        f"above{_speedup_target_text(summary)}, budget {int(summary['budget']):,} env steps.",
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
    if figures.get("learned_reward"):
        lines += ["## Learned reward (IPMD)", "", f"![{LEARNED_REWARD_CAPTION}]({figures['learned_reward'].name})", ""]
    lines += ["## Unlearning (BC -> RL runs)", "", *unlearning_lines(summary), "", "## Videos", ""]
    lines += [f"- [{label}]({path})" for label, path in videos] or ["(no videos recorded)"]
    return "\n".join(lines) + "\n"


def md_table_to_html(table: str) -> str:
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
    learned = image(figures.get("learned_reward"), LEARNED_REWARD_CAPTION)
    learned_reward = f"<h2>Learned reward (IPMD)</h2>\n{learned}\n" if learned else ""
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
<p>Expert{html.escape(_source_text(summary))} return {summary["expert_return"]:,.1f},
random policy {summary["random_return"]:,.1f},
threshold (90 % of expert) {summary["threshold"]:,.1f} (reached = two consecutive evaluations at or
above){html.escape(_speedup_target_text(summary))}, budget {int(summary["budget"]):,} env steps.</p>
<h2>Results</h2>
{md_table_to_html(table)}
<h2>Learning curves</h2>
{image(figures.get("learning_curves"), "Return vs env steps")}
{image(figures.get("normalized_curves"), NORMALIZED_CAPTION)}
<h2>BC training</h2>
{image(figures.get("bc_training"), "BC train/val loss")}
{learned_reward}<h2>Unlearning (BC -&gt; RL runs)</h2>
{md_table_to_html(chr(10).join(unlearning_lines(summary)))}
<h2>Videos</h2>
<ul>{video_items or "<li>no videos recorded</li>"}</ul>
</body></html>
"""
