"""Minari datasets in and out (``--source minari`` and ``--export-minari``).

Datasets are read from the local Minari root only (``MINARI_DATASETS_PATH``, default
``~/.minari/datasets``): this suite never downloads. Episodes become the same imitation
trajectories the expert source produces, after checking they fit the env.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from imitation.data import types

from optiq.errors import OptiqError
from optiq.extras import require


def dataset_ids(dataset: str, names: list[str] | None) -> list[str]:
    """Full dataset ids: ``dataset`` alone, or ``dataset/name`` for each of ``names``.

    ``--dataset mujoco/hopper --names expert-v0 medium-v0`` combines two datasets.
    """
    dataset = dataset.strip("/")
    if not dataset:
        raise OptiqError("--source minari needs --dataset ID, e.g. --dataset mujoco/hopper/expert-v0")
    return [f"{dataset}/{name.strip('/')}" for name in names] if names else [dataset]


def _load_dataset(dataset_id: str) -> Any:
    minari = require("minari", "Minari datasets")
    from minari.storage import get_dataset_path

    try:
        return minari.load_dataset(dataset_id, download=False)
    except FileNotFoundError:
        raise OptiqError(
            f"Minari dataset '{dataset_id}' is not on this machine (looked in {get_dataset_path(dataset_id)}); "
            f"on a connected machine run `minari download {dataset_id}` and copy the folder here "
            "(or set MINARI_DATASETS_PATH)"
        ) from None
    except Exception as exc:  # minari raises many types for a damaged dataset
        raise OptiqError(f"cannot read Minari dataset '{dataset_id}': {exc} (re-download or re-export it)") from None


def _check_matches_env(dataset_id: str, dataset: Any, env: gym.Env) -> None:
    spec = getattr(dataset, "spec", None)
    env_spec = getattr(spec, "env_spec", None)
    recorded = getattr(env_spec, "id", None)
    if recorded is not None and recorded != env.spec.id:
        raise OptiqError(
            f"Minari dataset '{dataset_id}' was recorded on {recorded}, not {env.spec.id} (use --env {recorded})"
        )
    for kind, theirs, ours in (
        ("observations", dataset.observation_space, env.observation_space),
        ("actions", dataset.action_space, env.action_space),
    ):
        if not isinstance(theirs, gym.spaces.Box) or theirs.shape != ours.shape:
            raise OptiqError(
                f"Minari dataset '{dataset_id}' has {kind} {theirs} but {env.spec.id} expects {ours} "
                "(pick a dataset recorded on this env)"
            )


def load_minari_demos(
    ids: list[str], env: gym.Env, max_episodes: int | None = None
) -> tuple[list[types.TrajectoryWithRew], list[dict[str, Any]]]:
    """Episodes of every dataset in ``ids`` (each checked against ``env``) and per-dataset info.

    ``max_episodes`` caps the episodes taken from each dataset (its first ones, in order).
    """
    trajectories: list[types.TrajectoryWithRew] = []
    sources = []
    for dataset_id in ids:
        dataset = _load_dataset(dataset_id)
        _check_matches_env(dataset_id, dataset, env)
        taken = []
        for episode in dataset.iterate_episodes():
            if max_episodes is not None and len(taken) >= max_episodes:
                break
            taken.append(
                types.TrajectoryWithRew(
                    obs=np.asarray(episode.observations, dtype=np.float32),
                    acts=np.asarray(episode.actions, dtype=np.float32),
                    infos=None,
                    terminal=bool(np.asarray(episode.terminations)[-1]),
                    rews=np.asarray(episode.rewards, dtype=np.float32),
                )
            )
        if not taken:
            raise OptiqError(f"Minari dataset '{dataset_id}' holds no episodes (pick another dataset)")
        returns = [float(t.rews.sum()) for t in taken]
        sources.append(
            {
                "dataset_id": dataset_id,
                "n_episodes": len(taken),
                "n_episodes_in_dataset": int(dataset.total_episodes),
                "return_mean": float(np.mean(returns)),
                "ref_max_score": getattr(dataset.spec, "ref_max_score", None),
                "ref_min_score": getattr(dataset.spec, "ref_min_score", None),
            }
        )
        trajectories += taken
    return trajectories, sources


def check_new_dataset_id(dataset_id: str) -> None:
    """Fail before any work if ``--export-minari`` would collide with an existing dataset."""
    require("minari", "Minari datasets")
    from minari.storage import get_dataset_path

    target = get_dataset_path(dataset_id)
    if target.exists():
        raise OptiqError(
            f"Minari dataset '{dataset_id}' already exists at {target} "
            f"(choose another id, e.g. bump its -vN, or run `minari delete {dataset_id}`)"
        )


def export_minari(
    trajectories: list[types.TrajectoryWithRew],
    dataset_id: str,
    env_id: str,
    algorithm_name: str,
    description: str,
) -> Path:
    """Write ``trajectories`` as the local Minari dataset ``dataset_id``; return its folder.

    An existing dataset is never overwritten; a failed export leaves no partial dataset.
    """
    require("minari", "Minari datasets")
    from minari import create_dataset_from_buffers
    from minari.data_collector import EpisodeBuffer
    from minari.storage import get_dataset_path

    check_new_dataset_id(dataset_id)
    target = get_dataset_path(dataset_id)
    buffers = [
        EpisodeBuffer(
            id=i,
            observations=np.asarray(t.obs),
            actions=np.asarray(t.acts),
            rewards=np.asarray(t.rews),
            terminations=np.array([False] * (len(t.acts) - 1) + [bool(t.terminal)]),
            truncations=np.array([False] * (len(t.acts) - 1) + [not bool(t.terminal)]),
        )
        for i, t in enumerate(trajectories)
    ]
    try:
        with warnings.catch_warnings():
            # Minari advises a code permalink and author e-mail; run.json records the code version instead.
            warnings.filterwarnings("ignore", message=r"`(code_permalink|author_email)` is set to None")
            create_dataset_from_buffers(
                dataset_id,
                buffers,
                env=env_id,
                eval_env=env_id,
                algorithm_name=algorithm_name,
                author="optiq",
                description=description,
            )
    except ValueError as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise OptiqError(f"cannot export Minari dataset '{dataset_id}': {exc}") from None
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target
