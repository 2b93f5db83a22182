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
