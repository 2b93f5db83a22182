"""The cross-env report of a study: normalised scores over env x seed, per method.

Each env's ``06_compare/results.json`` gives per-seed final returns and the env's random and
expert returns; scores are normalised per env (0 = random policy, 1 = expert) and aggregated
with rliable (Agarwal et al. 2021): IQM and mean with stratified-bootstrap 95 % CIs (seeds
resampled within each env), performance profiles (fraction of runs above each normalised
score) and the probability of improvement for every pair of methods. With 3 scores or fewer
per method the IQM trims nothing: the mean and the [min, max] range are reported instead.
"""

from __future__ import annotations

import html
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optiq.atomic_io import read_json, write_json, write_text
from optiq.compare.methods import COLOURS, METHOD_TITLES
from optiq.compare.plots import _pyplot, _save_figure
from optiq.compare.render import md_table_to_html
from optiq.compare.statistics import IQM_MIN_N, _rliable, _rliable_seed, normalized
from optiq.errors import OptiqError

REPS = 2000
TAUS = np.linspace(-0.25, 1.5, 71)  # normalised-score thresholds of the performance profile


@dataclass
class EnvResults:
    env_id: str
    results: Path  # 06_compare/results.json
    report: Path  # 06_compare/report.html


def normalised_scores(envs: list[EnvResults], seeds: list[int]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per method, a (seeds x envs) matrix of normalised final returns; methods every env has, in row order."""
    per_env = []
    for env in envs:
        try:
            summary = read_json(env.results)
        except (OSError, ValueError):
            raise OptiqError(
                f"no readable {env.results} (the env's comparison did not finish; rerun the sweep)"
            ) from None
        by_seed = summary.get("final_returns_by_seed")
        if by_seed is None:
            raise OptiqError(f"{env.results} has no per-seed returns (written by an older optiq: rerun its compare)")
        per_env.append((summary, by_seed))
    methods = [m for m in per_env[0][1] if all(m in by_seed for _, by_seed in per_env)]
    scores: dict[str, np.ndarray] = {}
    for method in methods:
        matrix = np.full((len(seeds), len(envs)), np.nan)
        for j, (summary, by_seed) in enumerate(per_env):
            for i, seed in enumerate(seeds):
                if str(seed) in by_seed[method]:
                    raw = by_seed[method][str(seed)]
                    matrix[i, j] = normalized(raw, summary["random_return"], summary["expert_return"])
        complete = ~np.isnan(matrix).any(axis=1)  # rliable needs the same seeds in every env
        if complete.any():
            scores[method] = matrix[complete]
    return scores, list(scores)


def _interval_estimates(scores: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    rly, metrics = _rliable()
    out: dict[str, dict[str, Any]] = {}
    for method, matrix in scores.items():
        n = matrix.size
        if n < IQM_MIN_N:
            values = matrix.ravel()
            mean = float(values.mean())
            low, high = (float(values.min()), float(values.max())) if n > 1 else (mean, mean)
            interval = "range" if n > 1 else "none"
            out[method] = {"n": n, "aggregate": "mean", "value": mean, "low": low, "high": high, "interval": interval}
            out[method]["mean"] = dict(out[method])
            continue

        def aggregate(x: np.ndarray) -> np.ndarray:
            return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)])

        with warnings.catch_warnings(), _rliable_seed(0) as random_state:
            warnings.filterwarnings("ignore", category=FutureWarning)  # arch's random_state deprecation
            points, cis = rly.get_interval_estimates({method: matrix}, aggregate, reps=REPS, random_state=random_state)
        point, ci = points[method], cis[method]
        out[method] = {
            "n": n,
            "aggregate": "iqm",
            "value": float(point[0]),
            "low": float(ci[0, 0]),
            "high": float(ci[1, 0]),
            "interval": "ci95",
            "mean": {"value": float(point[1]), "low": float(ci[0, 1]), "high": float(ci[1, 1]), "interval": "ci95"},
        }
    return out


def _improvements(scores: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """P(a run of X beats a run of Y), averaged over envs, for every ordered pair with the same seeds."""
    rly, metrics = _rliable()
    pairs = []
    names = list(scores)
    for a in names:
        for b in names:
            if a == b or scores[a].shape != scores[b].shape:
                continue
            with warnings.catch_warnings(), _rliable_seed(0) as random_state:
                warnings.filterwarnings("ignore", category=FutureWarning)
                points, cis = rly.get_interval_estimates(
                    {"xy": [scores[a], scores[b]]},
                    lambda x, y: np.array([metrics.probability_of_improvement(x, y)]),
                    reps=REPS,
                    random_state=random_state,
                )
            pairs.append(
                {
                    "x": a,
                    "y": b,
                    "value": float(points["xy"][0]),
                    "low": float(cis["xy"][0, 0]),
                    "high": float(cis["xy"][1, 0]),
                }
            )
    return pairs


def _profile_figure(scores: dict[str, np.ndarray], out_path: Path) -> Path:
    rly, _ = _rliable()
    with warnings.catch_warnings(), _rliable_seed(0):
        warnings.filterwarnings("ignore", category=FutureWarning)
        distributions, cis = rly.create_performance_profile(scores, TAUS, reps=REPS)
    fig, ax = _pyplot().subplots(figsize=(7, 4.5), dpi=110)
    for method in scores:
        colour = COLOURS.get(method, "tab:green")
        ax.plot(TAUS, distributions[method], label=METHOD_TITLES.get(method, method), color=colour)
        ax.fill_between(TAUS, cis[method][0], cis[method][1], color=colour, alpha=0.2)
    ax.set_xlabel("normalised score τ (0 = random, 1 = expert)")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_title("Performance profile over env x seed")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save_figure(fig, out_path)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _fmt(e: dict[str, Any]) -> str:
    if e["interval"] == "none":
        return f"{e['value']:.2f}"
    label = "95 % CI" if e["interval"] == "ci95" else "min..max"
    return f"{e['value']:.2f} [{e['low']:.2f}, {e['high']:.2f}] ({label})"


def write_study(envs: list[EnvResults], seeds: list[int], out_dir: Path) -> dict[str, Any]:
    """Write results.json, results.md, index.html and performance_profile.png of the study."""
    scores, methods = normalised_scores(envs, seeds)
    if not methods:
        raise OptiqError("no method has results in every env of the study; see each env's 06_compare/")
    estimates = _interval_estimates(scores)
    pairs = _improvements(scores)
    out_dir.mkdir(parents=True, exist_ok=True)
    figure = _profile_figure(scores, out_dir / "performance_profile.png")
    env_ids = [env.env_id for env in envs]
    summary = {
        "envs": env_ids,
        "seeds": seeds,
        "methods": methods,
        "normalised": estimates,
        "per_env_mean": {m: dict(zip(env_ids, map(float, scores[m].mean(axis=0)), strict=True)) for m in methods},
        "scores": {m: scores[m].tolist() for m in methods},
        "probability_of_improvement": pairs,
        "reports": {env.env_id: os.path.relpath(env.report, out_dir) for env in envs},
    }
    write_json(out_dir / "results.json", summary)
    head = "| method | runs | normalised score | " + " | ".join(env_ids) + " |"
    lines = [head, "|" + "---|" * (3 + len(env_ids))]
    for m in methods:
        e = estimates[m]
        cells = " | ".join(f"{summary['per_env_mean'][m][env]:.2f}" for env in env_ids)
        label = "IQM" if e["aggregate"] == "iqm" else "mean"
        lines.append(f"| {METHOD_TITLES.get(m, m)} | {e['n']} | {label} {_fmt(e)} | {cells} |")
    table = "\n".join(lines)
    pair_lines = ["| X | Y | P(X > Y) [95 % CI] |", "|---|---|---|"]
    if not pairs:
        pair_lines.append("| (one method: no pairs) | | |")
    pair_lines += [
        f"| {METHOD_TITLES.get(p['x'], p['x'])} | {METHOD_TITLES.get(p['y'], p['y'])} | "
        f"{p['value']:.2f} [{p['low']:.2f}, {p['high']:.2f}] |"
        for p in pairs
    ]
    links = [f"- [{env}]({summary['reports'][env]})" for env in env_ids]
    note = (
        f"Scores: final return normalised per env (0 = random policy, 1 = expert), {_count(len(env_ids), 'env')} x "
        f"{_count(len(seeds), 'seed')}. Per-env columns: mean over seeds. Intervals: rliable's stratified "
        f"bootstrap (95 % CI) from {IQM_MIN_N} runs per method, else the mean and [min, max] of the runs."
    )
    md = "\n\n".join(
        [
            "# Study",
            note,
            table,
            "## Probability of improvement",
            "\n".join(pair_lines),
            "## Per-env reports",
            "\n".join(links),
            f"![performance profile]({figure.name})",
        ]
    )
    write_text(out_dir / "results.md", md + "\n")
    write_text(out_dir / "index.html", _html(note, table, "\n".join(pair_lines), summary, figure.name))
    return summary


def _html(note: str, table: str, pairs: str, summary: dict[str, Any], figure: str) -> str:
    links = "".join(
        f'<li><a href="{html.escape(path)}">{html.escape(env)}</a></li>' for env, path in summary["reports"].items()
    )
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>optiq study</title>"
        f"<style>{style}</style></head><body>"
        f"<h1>Study</h1><p>{html.escape(note)}</p>{md_table_to_html(table)}"
        f"<h2>Probability of improvement</h2>{md_table_to_html(pairs)}"
        f"<h2>Performance profile</h2><img src='{html.escape(figure)}' alt='performance profile' width='700'>"
        f"<h2>Per-env reports</h2><ul>{links}</ul></body></html>\n"
    )
