"""Stage 05 as the scripts run it: evaluate BC-only and every fine-tuned run.

Labels: ``bc_only_seed<N>`` for each BC seed's selected checkpoint (``03_select/seed<N>/``),
or ``bc_only`` for the single BC of ``03_select/`` where there are no per-seed BCs, and
``<algo>_<init>_seed<N>`` for each finished fine-tuning run. Each evaluated label gets a
``fingerprint.json`` (:func:`eval_fingerprint`) beside its ``eval.json``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.console import Console

from optiq.atomic_io import read_json
from optiq.cli import check_writable
from optiq.errors import OptiqError
from optiq.evaluation.evaluate import evaluate_and_record
from optiq.evaluation.video import record_side_by_side
from optiq.paths import RunPaths, parse_finetune_run_name, seed_folders, seed_name
from optiq.policies import PolicyFiles
from optiq.records import (
    file_identity,
    make_fingerprint,
    pick_settings,
    remove_fingerprint,
    run_finished,
    write_fingerprint,
)

console = Console()
BC_LABEL = "bc_only"
SIDE_BY_SIDE = "side_by_side.mp4"
_BC_SEED_LABEL = re.compile(r"^bc_only_seed(\d+)$")


def bc_label(seed: int | None) -> str:
    """``bc_only_seed<N>`` for BC seed N, ``bc_only`` for the single BC (None)."""
    return BC_LABEL if seed is None else f"{BC_LABEL}_{seed_name(seed)}"


def parse_bc_label(label: str) -> tuple[bool, int | None]:
    """(is a BC-only label, its seed or None for the single BC)."""
    if label == BC_LABEL:
        return True, None
    match = _BC_SEED_LABEL.match(label)
    return (True, int(match.group(1))) if match else (False, None)


def bc_policies(paths: RunPaths) -> dict[int | None, PolicyFiles]:
    """The selected checkpoint of each BC seed, or ``{None: ...}`` for the single BC where there are no seeds."""
    found: dict[int | None, PolicyFiles] = {}
    for seed in seed_folders(paths.select):
        best = paths.select_dir(seed) / "best.json"
        if best.is_file():
            found[seed] = PolicyFiles.from_json(read_json(best))
    if not found and (paths.select / "best.json").is_file():
        found[None] = PolicyFiles.from_json(read_json(paths.select / "best.json"))
    return found


def policies_to_evaluate(paths: RunPaths) -> dict[str, PolicyFiles]:
    """BC-only (each BC seed's selected checkpoint) and each finished fine-tuning run, by label."""
    found = {bc_label(seed): files for seed, files in bc_policies(paths).items()}
    if paths.finetune_root.is_dir():
        for run_dir in sorted(p for p in paths.finetune_root.iterdir() if (p / "summary.json").is_file()):
            found[run_dir.name] = PolicyFiles.from_json(read_json(run_dir / "summary.json")["policy"])
    return found


def eval_fingerprint(
    config: dict[str, Any], files: PolicyFiles, seed: int, n_episodes: int, video: bool
) -> dict[str, Any]:
    """What an evaluation depends on: env and observation settings, the episodes, the video length
    (with video), the policy (its files by sha256, algorithm and class) and the evaluation seed."""
    settings = pick_settings(config, ["env_id", "obs"])
    settings["eval"] = {
        "final_episodes": n_episodes,
        "video": video,
        "video_length": config["eval"]["video_length"] if video else None,
    }
    settings["policy"] = {"algo": files.algo, "model_class": files.model_class, "raw_obs": files.raw_obs}
    inputs = {"policy": file_identity(files.model), "policy_vecnormalize": file_identity(files.vecnormalize)}
    return make_fingerprint("eval", settings, seed, inputs)


def eval_stage(
    config: dict[str, Any],
    paths: RunPaths,
    seed: int,
    labels: list[str] | None = None,
    n_episodes: int | None = None,
    video: bool = True,
    device: str = "auto",
    side_by_side: bool | None = None,
) -> dict[str, dict[str, Any]]:
    """Evaluate ``labels`` (None: every policy); ``side_by_side`` (default: with video, when evaluating all)
    also records ``side_by_side.mp4`` of BC only, BC -> RL and scratch of one seed."""
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
        out_dir = paths.evaluation / label
        remove_fingerprint(out_dir)
        result = evaluate_and_record(config, label, files, out_dir, n, seed, video, device)
        write_fingerprint(out_dir, eval_fingerprint(config, files, seed, n, video))
        results[label] = result
        console.print(
            f"{label}: return {result['return_mean']:.1f} +/- {result['return_std']:.1f}"
            + (f", video {result['video']}" if result["video"] else "")
        )
    if side_by_side is None:
        side_by_side = not labels
    if video and side_by_side:
        record_side_by_side_video(config, paths, seed, device)
    return results


def record_side_by_side_video(config: dict[str, Any], paths: RunPaths, seed: int, device: str = "auto") -> Path | None:
    """``05_eval/side_by_side.mp4``: BC only, BC -> RL and scratch of one seed, frame by frame."""
    chosen = side_by_side_policies(policies_to_evaluate(paths))
    if len(chosen) < 2:
        return None
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
    return path


def side_by_side_policies(available: dict[str, PolicyFiles]) -> dict[str, PolicyFiles]:
    """BC only, BC -> RL and scratch of the lowest seed that has both fine-tuned runs (its own BC seed, or the
    single BC)."""
    by_seed: dict[int, dict[str, str]] = {}
    for label in available:
        parsed = parse_finetune_run_name(label)
        if parsed is not None:
            by_seed.setdefault(parsed[2], {})[parsed[1]] = label
    for seed in sorted(by_seed):
        if {"bc", "scratch"} <= set(by_seed[seed]):
            chosen = {}
            if bc_label(seed) in available:
                chosen[f"BC only (seed {seed})"] = available[bc_label(seed)]
            elif BC_LABEL in available:
                chosen["BC only"] = available[BC_LABEL]
            chosen[f"BC -> RL (seed {seed})"] = available[by_seed[seed]["bc"]]
            chosen[f"scratch (seed {seed})"] = available[by_seed[seed]["scratch"]]
            return chosen
    return {"BC only": available[BC_LABEL]} if BC_LABEL in available else {}


def eval_is_complete(folder: Path) -> bool:
    """Stage 05 is done for one policy's ``folder``: eval.json written and the run finished."""
    return (folder / "eval.json").is_file() and run_finished(folder / "run.json")
