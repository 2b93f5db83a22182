"""Stage 05 as the scripts run it: evaluate BC-only and every fine-tuned run."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from optiq.atomic_io import read_json
from optiq.cli import check_writable
from optiq.errors import OptiqError
from optiq.evaluation.evaluate import evaluate_and_record
from optiq.evaluation.video import record_side_by_side
from optiq.paths import RunPaths, parse_finetune_run_name
from optiq.policies import PolicyFiles

console = Console()
BC_LABEL = "bc_only"
SIDE_BY_SIDE = "side_by_side.mp4"


def policies_to_evaluate(paths: RunPaths) -> dict[str, PolicyFiles]:
    """BC-only (the selected checkpoint) and each finished fine-tuning run, by label."""
    found: dict[str, PolicyFiles] = {}
    best = paths.select / "best.json"
    if best.is_file():
        found[BC_LABEL] = PolicyFiles.from_json(read_json(best))
    if paths.finetune_root.is_dir():
        for run_dir in sorted(p for p in paths.finetune_root.iterdir() if (p / "summary.json").is_file()):
            found[run_dir.name] = PolicyFiles.from_json(read_json(run_dir / "summary.json")["policy"])
    return found


def eval_stage(
    config: dict[str, Any],
    paths: RunPaths,
    seed: int,
    labels: list[str] | None = None,
    n_episodes: int | None = None,
    video: bool = True,
    device: str = "auto",
) -> dict[str, dict[str, Any]]:
    available = policies_to_evaluate(paths)
    if not available:
        raise OptiqError(f"nothing to evaluate under {paths.root} (run stages 03 and 04 first)")
    unknown = sorted(set(labels or []) - set(available))
    if unknown:
        raise OptiqError(f"no policy named {', '.join(unknown)}; available: {', '.join(available)}")
    check_writable(paths.evaluation)
    n = n_episodes or config["eval"]["final_episodes"]
    results = {}
    for label, files in available.items():
        if labels and label not in labels:
            continue
        result = evaluate_and_record(config, label, files, paths.evaluation / label, n, seed, video, device)
        results[label] = result
        console.print(
            f"{label}: return {result['return_mean']:.1f} +/- {result['return_std']:.1f}"
            + (f", video {result['video']}" if result["video"] else "")
        )
    if video and not labels:
        chosen = side_by_side_policies(available)
        if len(chosen) > 1:
            path = record_side_by_side(
                chosen,
                config["env_id"],
                paths.evaluation / SIDE_BY_SIDE,
                config["eval"]["video_length"],
                seed,
                device=device,
                obs_config=config.get("obs"),
            )
            if path:
                console.print(f"side-by-side video: {path}")
    return results


def side_by_side_policies(available: dict[str, PolicyFiles]) -> dict[str, PolicyFiles]:
    """BC only, BC -> RL and scratch of the lowest seed that has both fine-tuned runs."""
    chosen = {"BC only": available[BC_LABEL]} if BC_LABEL in available else {}
    by_seed: dict[int, dict[str, str]] = {}
    for label in available:
        parsed = parse_finetune_run_name(label)
        if parsed is not None:
            by_seed.setdefault(parsed[2], {})[parsed[1]] = label
    for seed in sorted(by_seed):
        if {"bc", "scratch"} <= set(by_seed[seed]):
            chosen[f"BC -> RL (seed {seed})"] = available[by_seed[seed]["bc"]]
            chosen[f"scratch (seed {seed})"] = available[by_seed[seed]["scratch"]]
            break
    return chosen
