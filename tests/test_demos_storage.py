import numpy as np
import pytest

from optiq.demos.storage import load_demos, save_demos, split_episodes
from optiq.envs import make_env
from optiq.errors import OptiqError


def test_round_trip_keeps_every_array(tmp_path, synthetic_demos):
    path = save_demos(tmp_path / "demos.npz", synthetic_demos)
    loaded = load_demos(path)
    assert len(loaded) == len(synthetic_demos)
    for a, b in zip(synthetic_demos, loaded):
        np.testing.assert_array_equal(a.obs, b.obs)
        np.testing.assert_array_equal(a.acts, b.acts)
        np.testing.assert_array_equal(a.rews, b.rews)
        assert a.terminal == b.terminal


def test_shapes_are_checked_against_the_env(tmp_path, synthetic_demos):
    path = save_demos(tmp_path / "demos.npz", synthetic_demos)
    hopper = make_env("Hopper-v5")
    load_demos(path, hopper.observation_space, hopper.action_space)  # 11 / 3: fits
    walker = make_env("Walker2d-v5")
    with pytest.raises(OptiqError, match=r"observations of shape \(11,\) but the env expects \(17,\)"):
        load_demos(path, walker.observation_space, walker.action_space)


def test_nan_empty_and_corrupt_files_are_rejected(tmp_path, synthetic_demos):
    synthetic_demos[1].acts[3, 0] = np.nan
    path = save_demos(tmp_path / "nan.npz", synthetic_demos)
    with pytest.raises(OptiqError, match="NaN/inf values in 'acts'"):
        load_demos(path)

    empty = tmp_path / "empty.npz"
    np.savez(
        empty,
        obs=np.zeros((0, 11)),
        acts=np.zeros((0, 3)),
        rews=np.zeros(0),
        lengths=np.zeros(0, dtype=int),
        terminal=np.zeros(0, bool),
    )
    with pytest.raises(OptiqError, match="holds no transitions"):
        load_demos(empty)

    good = save_demos(tmp_path / "good.npz", synthetic_demos[:1])
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(OptiqError, match="corrupt or incomplete demos file"):
        load_demos(truncated)
    with pytest.raises(OptiqError, match="demos not found"):
        load_demos(tmp_path / "missing.npz")
    with pytest.raises(OptiqError):
        save_demos(tmp_path / "none.npz", [])


def test_failed_save_leaves_existing_file_untouched(tmp_path, synthetic_demos, monkeypatch):
    path = save_demos(tmp_path / "demos.npz", synthetic_demos)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(RuntimeError):
        save_demos(path, synthetic_demos[:1])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["demos.npz"]  # no temp file left behind


def test_split_holds_out_whole_episodes(synthetic_demos):
    train, val = split_episodes(synthetic_demos, 0.25, seed=0)
    assert len(train) == 3 and len(val) == 1
    assert not any(any(v is t for t in train) for v in val)
    assert split_episodes(synthetic_demos[:1], 0.5, seed=0)[1] == []


def test_time_limit_cuts_are_recorded_as_truncated_not_terminal():
    """imitation's rollout marks every finished episode terminal; collection must undo that for time-limit cuts."""
    from imitation.data import rollout
    from imitation.data.wrappers import RolloutInfoWrapper
    from stable_baselines3.common.env_util import make_vec_env

    from optiq.demos.collect import mark_truncation

    venv = make_vec_env(
        "Hopper-v5", n_envs=1, seed=0, env_kwargs={"max_episode_steps": 5}, wrapper_class=RolloutInfoWrapper
    )
    standing = rollout.generate_trajectories(
        lambda obs, state, start: (np.zeros((len(obs), 3)), None),
        venv,
        rollout.make_sample_until(min_episodes=2),
        rng=np.random.default_rng(0),
    )
    assert all(t.terminal for t in standing)  # imitation's own flag: the defect
    assert [len(t.acts) for t in standing[:2]] == [5, 5]
    assert not any(mark_truncation(t).terminal for t in standing)


def test_layout_1_files_get_their_time_limit_cuts_repaired(tmp_path, synthetic_demos):
    path = save_demos(tmp_path / "demos.npz", synthetic_demos)  # all of one length
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files if k != "layout"}
    arrays["terminal"][:] = True  # what layout 1 stored for every episode
    old = tmp_path / "old.npz"
    np.savez_compressed(old, **arrays)
    length = int(arrays["lengths"][0])
    assert all(t.terminal for t in load_demos(old))
    assert not any(t.terminal for t in load_demos(old, time_limit=length))
    assert all(t.terminal for t in load_demos(old, time_limit=length + 1))
    # files written now keep their flags whatever the time limit
    assert [t.terminal for t in load_demos(path, time_limit=length)] == [t.terminal for t in synthetic_demos]
