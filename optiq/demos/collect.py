"""Record demonstrations from a source and save them with what produced them.

Sources: a trained expert (rolled out with imitation's rollout utilities), a scripted
controller (:mod:`optiq.demos.scripted`) and local Minari datasets
(:mod:`optiq.demos.minari_io`). Every source writes the same ``demos.npz`` +
``metadata.json`` + ``README.txt`` + ``run.json``, so later stages never ask where demos
came from. ``metadata["expert_return_mean"]`` is the demonstrator's return, the
reference that stage 06 normalises scores by.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from imitation.data import rollout, types
from imitation.data.wrappers import RolloutInfoWrapper

from optiq.atomic_io import write_json, write_text
from optiq.demos.expert import expert_files, expert_info
from optiq.demos.scripted import ScriptedPolicy, make_controller
from optiq.demos.storage import DEMOS_FILE, save_demos
from optiq.envs import make_env, make_task_vec, make_vec, pixel_mode, random_policy_return
from optiq.policies import TrueStatePolicy, raw_obs_policy
from optiq.records import RunRecord
from optiq.seeding import seed_everything
from optiq.tracking import log_series

METADATA_FILE = "metadata.json"


def rollout_episodes(
    policy: Any, env_id: str, n_episodes: int, seed: int, obs: dict[str, Any] | None = None
) -> list[types.TrajectoryWithRew]:
    """``n_episodes`` whole episodes of ``policy`` (an imitation policy callable) on ``env_id``.

    With pixel ``obs`` settings (a config's ``obs``) the episodes record camera frames while
    the state ``policy`` acts on each env's true state (:class:`~optiq.policies.TrueStatePolicy`).
    """
    task = {"env_id": env_id, "obs": obs or {}}
    venv = make_task_vec(task, 1, seed, wrapper_class=lambda env: RolloutInfoWrapper(env))
    if pixel_mode(task):
        policy = TrueStatePolicy(policy, venv)
    try:
        trajectories = rollout.generate_trajectories(
            policy,
            venv,
            rollout.make_sample_until(min_episodes=n_episodes),
            rng=np.random.default_rng(seed),
        )
    finally:
        venv.close()
    return [mark_truncation(t) for t in trajectories[:n_episodes]]


def mark_truncation(trajectory: types.TrajectoryWithRew) -> types.TrajectoryWithRew:
    """``terminal=False`` for an episode the time limit cut short.

    imitation's rollout marks every finished episode terminal, including time-limit cuts;
    SB3's VecEnv records those as ``TimeLimit.truncated`` in the last info. Fine-tuning
    bootstraps truncated episodes with the critic instead of a return of zero.
    """
    infos = trajectory.infos
    if trajectory.terminal and infos is not None and len(infos) and infos[-1].get("TimeLimit.truncated", False):
        return dataclasses.replace(trajectory, terminal=False)
    return trajectory


def collect_demos(
    config: dict[str, Any],
    expert_dir: str | Path,
    out_dir: str | Path,
    n_episodes: int,
    seed: int,
    device: str = "auto",
) -> dict[str, Any]:
    """Record ``n_episodes`` deterministic expert episodes into ``out_dir``; return the metadata."""
    expert_dir = Path(expert_dir)
    record = RunRecord("01_collect_demos", Path(out_dir), config, seed, source="expert", expert=str(expert_dir))
    seed_everything(seed)
    files = expert_files(expert_dir)
    info = expert_info(expert_dir)
    probe = make_vec(config["env_id"], 1, seed)
    policy = raw_obs_policy(files, probe, device)
    probe.close()
    trajectories = rollout_episodes(policy, config["env_id"], n_episodes, seed, config.get("obs"))
    source = {
        "source": "expert",
        "expert_path": str(files.model),
        "expert_algo": files.algo,
        "expert_return_mean": info["return_mean"],
        "expert_return_std": info["return_std"],
        "description": f"expert {files.model} ({files.algo}), evaluated return "
        f"{info['return_mean']:.1f} +/- {info['return_std']:.1f}",
    }
    return write_demos(config, trajectories, out_dir, seed, source, record)


def collect_scripted_demos(
    config: dict[str, Any],
    controller: str,
    params: dict[str, Any],
    out_dir: str | Path,
    n_episodes: int,
    seed: int,
) -> dict[str, Any]:
    """Record episodes of the scripted ``controller`` (``module:function``) into ``out_dir``."""
    record = RunRecord("01_collect_demos", Path(out_dir), config, seed, source="scripted", controller=controller)
    seed_everything(seed)
    env = make_env(config["env_id"])
    policy = ScriptedPolicy([make_controller(controller, env, params)], env.action_space)
    env.close()
    trajectories = rollout_episodes(policy, config["env_id"], n_episodes, seed, config.get("obs"))
    returns = [float(np.sum(t.rews)) for t in trajectories]
    random_return = random_policy_return(config["env_id"], n_episodes=len(trajectories), seed=seed)
    distance = forward_distance(trajectories)
    source = {
        "source": "scripted",
        "controller": controller,
        "controller_params": params,
        # The controller is the demonstrator: its return is the reference stage 06 compares to.
        "expert_return_mean": float(np.mean(returns)),
        "expert_return_std": float(np.std(returns)),
        "random_return_mean": random_return,
        "forward_distance_mean": distance,
        "description": f"scripted controller {controller} {params}; random policy returns {random_return:.1f}"
        + (f"; moves {distance:.1f} m forward per episode" if distance is not None else ""),
    }
    return write_demos(config, trajectories, out_dir, seed, source, record)


def forward_distance(trajectories: list[types.TrajectoryWithRew]) -> float | None:
    """Mean x displacement per episode for envs that report ``x_position`` (MuJoCo locomotion)."""
    distances = []
    for t in trajectories:
        infos = t.infos if t.infos is not None else []
        if len(infos) == 0 or "x_position" not in infos[0]:
            return None
        # The first info is after one step; the displacement of that step is negligible.
        distances.append(float(infos[-1]["x_position"] - infos[0]["x_position"]))
    return float(np.mean(distances))


def import_minari_demos(
    config: dict[str, Any],
    ids: list[str],
    out_dir: str | Path,
    seed: int,
    max_episodes: int | None = None,
) -> dict[str, Any]:
    """Convert the local Minari datasets ``ids`` (combined, in order) into demos in ``out_dir``."""
    from optiq.demos.minari_io import load_minari_demos

    record = RunRecord("01_collect_demos", Path(out_dir), config, seed, source="minari", datasets=ids)
    env = make_env(config["env_id"])
    try:
        trajectories, datasets = load_minari_demos(ids, env, max_episodes)
    finally:
        env.close()
    returns = [float(np.sum(t.rews)) for t in trajectories]
    source = {
        "source": "minari",
        "datasets": datasets,
        "expert_return_mean": float(np.mean(returns)),
        "expert_return_std": float(np.std(returns)),
        "description": "Minari datasets "
        + ", ".join(f"{d['dataset_id']} ({d['n_episodes']} episodes)" for d in datasets),
    }
    return write_demos(config, trajectories, out_dir, seed, source, record)


def write_demos(
    config: dict[str, Any],
    trajectories: list[types.TrajectoryWithRew],
    out_dir: str | Path,
    seed: int,
    source: dict[str, Any],
    record: RunRecord,
) -> dict[str, Any]:
    """Save ``trajectories`` with metadata.json, README.txt and TensorBoard returns; finish ``record``."""
    out_dir = Path(out_dir)
    demos_path = save_demos(out_dir / DEMOS_FILE, trajectories)
    returns = np.array([float(np.sum(t.rews)) for t in trajectories])
    metadata = {
        "env_id": config["env_id"],
        **source,
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
        f"Source ({meta['source']}): {meta['description']}.\n"
        f"Demo episodes returned {meta['demo_return_mean']:.1f} +/- {meta['demo_return_std']:.1f}.\n\n"
        "Files: demos.npz (obs, acts, rews, lengths, terminal; see optiq/demos/storage.py),\n"
        "metadata.json (what produced them), run.json (command, versions, git commit, sha256).\n"
    )
