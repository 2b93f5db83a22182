"""Roll out an expert with imitation's rollout utilities and save the demonstrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from imitation.data import rollout
from imitation.data.wrappers import RolloutInfoWrapper

from optiq.atomic_io import write_json, write_text
from optiq.demos.expert import expert_files, expert_info
from optiq.demos.storage import DEMOS_FILE, save_demos
from optiq.envs import make_vec
from optiq.policies import raw_obs_policy
from optiq.records import RunRecord
from optiq.seeding import seed_everything
from optiq.tracking import log_series

METADATA_FILE = "metadata.json"


def collect_demos(
    config: dict[str, Any],
    expert_dir: str | Path,
    out_dir: str | Path,
    n_episodes: int,
    seed: int,
    device: str = "auto",
) -> dict[str, Any]:
    """Record ``n_episodes`` deterministic expert episodes into ``out_dir``; return the metadata."""
    out_dir = Path(out_dir)
    expert_dir = Path(expert_dir)
    record = RunRecord("01_collect_demos", out_dir, config, seed, expert=str(expert_dir))
    seed_everything(seed)
    files = expert_files(expert_dir)
    info = expert_info(expert_dir)

    venv = make_vec(config["env_id"], 1, seed, wrapper_class=lambda env: RolloutInfoWrapper(env))
    policy = raw_obs_policy(files, venv, device)
    trajectories = rollout.generate_trajectories(
        policy,
        venv,
        rollout.make_sample_until(min_episodes=n_episodes),
        rng=np.random.default_rng(seed),
    )[:n_episodes]
    venv.close()

    demos_path = save_demos(out_dir / DEMOS_FILE, trajectories)
    returns = np.array([float(np.sum(t.rews)) for t in trajectories])
    metadata = {
        "env_id": config["env_id"],
        "source": "expert",
        "expert_path": str(files.model),
        "expert_algo": files.algo,
        "expert_return_mean": info["return_mean"],
        "expert_return_std": info["return_std"],
        "n_episodes": len(trajectories),
        "n_transitions": int(sum(len(t.acts) for t in trajectories)),
        "demo_return_mean": float(returns.mean()),
        "demo_return_std": float(returns.std()),
        "obs_shape": list(trajectories[0].obs.shape[1:]),
        "act_shape": list(trajectories[0].acts.shape[1:]),
        "seed": seed,
        "versions": record.data["versions"],
    }
    write_json(out_dir / METADATA_FILE, metadata)
    log_series(out_dir / "tb", [(i, {"demos/episode_return": float(v)}) for i, v in enumerate(returns)])
    write_text(out_dir / "README.txt", _readme(metadata))
    record.add_artifact(demos_path)
    record.add_artifact(out_dir / METADATA_FILE)
    record.finish(n_episodes=metadata["n_episodes"], n_transitions=metadata["n_transitions"])
    return metadata


def _readme(meta: dict[str, Any]) -> str:
    return (
        f"Demonstrations for {meta['env_id']}\n"
        f"{meta['n_episodes']} episodes, {meta['n_transitions']} transitions, seed {meta['seed']}.\n"
        f"Expert: {meta['expert_path']} ({meta['expert_algo']}), evaluated return "
        f"{meta['expert_return_mean']:.1f} +/- {meta['expert_return_std']:.1f}.\n"
        f"Demo episodes returned {meta['demo_return_mean']:.1f} +/- {meta['demo_return_std']:.1f}.\n\n"
        "Files: demos.npz (obs, acts, rews, lengths, terminal; see optiq/demos/storage.py),\n"
        "metadata.json (what produced them), run.json (command, versions, git commit, sha256).\n"
    )
