"""Demonstrations on disk: one compressed ``demos.npz`` of whole episodes.

Arrays: ``obs`` (sum(T_i + 1), *obs_shape) with each episode's final observation, ``acts``
(sum(T_i), act_dim), ``rews`` (sum(T_i),), ``lengths`` (n_episodes,) and
``terminal`` (n_episodes,) saying whether an episode ended by termination (not
time-limit truncation), and ``layout`` (a scalar, 2). Files of layout 1 (no ``layout``
array) were written while imitation's rollout marked time-limit cuts terminal too: loading
them with ``time_limit`` treats episodes of exactly that length as truncated. State
observations are stored as float32, camera frames (``--obs pixels``) as uint8, 4x smaller.
Loading validates shapes, dtypes and values against the env.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
from imitation.data import types

from optiq.atomic_io import write_with
from optiq.errors import OptiqError

DEMOS_FILE = "demos.npz"
LAYOUT = 2  # 2: ``terminal`` is False for time-limit truncations


def save_demos(path: str | Path, trajectories: list[types.TrajectoryWithRew]) -> Path:
    """Atomically save whole episodes to ``path``."""
    if not trajectories:
        raise OptiqError("no demonstration episodes to save (collect at least one)")
    obs_dtype = np.uint8 if np.asarray(trajectories[0].obs).dtype == np.uint8 else np.float32
    arrays = {
        "obs": np.concatenate([np.asarray(t.obs, dtype=obs_dtype) for t in trajectories]),
        "acts": np.concatenate([np.asarray(t.acts, dtype=np.float32) for t in trajectories]),
        "rews": np.concatenate([np.asarray(t.rews, dtype=np.float32) for t in trajectories]),
        "lengths": np.array([len(t.acts) for t in trajectories], dtype=np.int64),
        "terminal": np.array([bool(t.terminal) for t in trajectories]),
        "layout": np.array(LAYOUT),
    }

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    return write_with(path, _write)


def load_demos(
    path: str | Path,
    observation_space: gym.Space | None = None,
    action_space: gym.Space | None = None,
    time_limit: int | None = None,
) -> list[types.TrajectoryWithRew]:
    """Load and validate episodes; each problem is a one-line :class:`OptiqError`.

    ``time_limit`` (the env's ``max_episode_steps``) repairs the terminal flags of layout-1 files.
    """
    path = Path(path)
    if not path.is_file():
        raise OptiqError(f"demos not found: {path} (run scripts/01_collect_demos.py first)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in ("obs", "acts", "rews", "lengths", "terminal")}
            layout = int(data["layout"]) if "layout" in data.files else 1
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise OptiqError(f"corrupt or incomplete demos file {path}: {exc} (rerun 01_collect_demos.py)") from None
    lengths = arrays["lengths"]
    if lengths.size == 0 or int(lengths.sum()) == 0:
        raise OptiqError(f"demos file {path} holds no transitions (collect at least one episode)")
    n_steps, n_eps = int(lengths.sum()), len(lengths)
    if len(arrays["acts"]) != n_steps or len(arrays["rews"]) != n_steps or len(arrays["obs"]) != n_steps + n_eps:
        raise OptiqError(
            f"demos file {path} is inconsistent: array lengths do not match the episode lengths (recollect)"
        )
    for key in ("obs", "acts", "rews"):
        if not np.all(np.isfinite(arrays[key])):
            bad = int(np.size(arrays[key]) - np.isfinite(arrays[key]).sum())
            raise OptiqError(f"demos file {path} has {bad} NaN/inf values in '{key}' (recollect or clean the data)")
    if observation_space is not None and arrays["obs"].shape[1:] != observation_space.shape:
        raise OptiqError(
            f"demos {path} have observations of shape {arrays['obs'].shape[1:]} but the env expects "
            f"{observation_space.shape} (collect demos on this env with the same --obs and obs settings)"
        )
    if observation_space is not None and (arrays["obs"].dtype == np.uint8) != (observation_space.dtype == np.uint8):
        raise OptiqError(
            f"demos {path} have {arrays['obs'].dtype} observations but the env's are {observation_space.dtype} "
            "(pixel demos are uint8, state demos float; collect demos with the same --obs)"
        )
    if action_space is not None and arrays["acts"].shape[1:] != action_space.shape:
        raise OptiqError(
            f"demos {path} have actions of shape {arrays['acts'].shape[1:]} but the env expects "
            f"{action_space.shape} (collect demos on this env)"
        )
    if layout < 2 and time_limit is not None:
        arrays["terminal"] = arrays["terminal"] & (lengths < time_limit)
    trajectories = []
    obs_start = act_start = 0
    for length, terminal in zip(lengths.tolist(), arrays["terminal"].tolist()):
        trajectories.append(
            types.TrajectoryWithRew(
                obs=arrays["obs"][obs_start : obs_start + length + 1],
                acts=arrays["acts"][act_start : act_start + length],
                infos=None,
                terminal=bool(terminal),
                rews=arrays["rews"][act_start : act_start + length],
            )
        )
        obs_start += length + 1
        act_start += length
    return trajectories


def split_episodes(
    trajectories: list[types.TrajectoryWithRew], val_fraction: float, seed: int
) -> tuple[list[types.TrajectoryWithRew], list[types.TrajectoryWithRew]]:
    """Hold out whole episodes for validation (at least one each side when there are two or more)."""
    order = np.random.default_rng(seed).permutation(len(trajectories))
    n_val = int(round(val_fraction * len(trajectories)))
    if len(trajectories) >= 2:
        n_val = min(max(n_val, 1), len(trajectories) - 1)
    else:
        n_val = 0
    val = [trajectories[i] for i in sorted(order[:n_val])]
    train = [trajectories[i] for i in sorted(order[n_val:])]
    return train, val
