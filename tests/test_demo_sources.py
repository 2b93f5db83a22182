"""Demo sources beyond the expert: the scripted Ant trot gait and local Minari datasets."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from optiq.config import load_env_config
from optiq.demos.collect import collect_scripted_demos, import_minari_demos
from optiq.demos.minari_io import dataset_ids, export_minari, load_minari_demos
from optiq.demos.scripted import ScriptedPolicy, load_controller_factory, make_controller
from optiq.demos.storage import load_demos
from optiq.envs import make_env
from optiq.errors import OptiqError
from tests.helpers import REPO, synthetic_trajectories


@pytest.fixture
def minari_root(tmp_path, monkeypatch):
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def test_shipped_trot_gait_walks_forward_and_beats_random(tmp_path):
    config = load_env_config("Ant-v5", "quick")
    settings = config["scripted"]
    meta = collect_scripted_demos(config, settings["controller"], settings["params"], tmp_path, 2, seed=0)
    env = make_env("Ant-v5")
    demos = load_demos(tmp_path / "demos.npz", env.observation_space, env.action_space)
    assert len(demos) == 2
    for episode in demos:
        assert episode.obs.shape == (len(episode.acts) + 1, *env.observation_space.shape)
        assert episode.acts.shape[1:] == env.action_space.shape
        assert np.all(np.abs(episode.acts) <= 1.0)
    assert meta["source"] == "scripted"
    # Random actions on Ant-v5 return about 0; standing still earns ~1 per step from the healthy bonus.
    assert meta["expert_return_mean"] > meta["random_return_mean"] + 500
    assert meta["forward_distance_mean"] > 10.0  # metres per episode: it walks, not just stands


def test_scripted_policy_restarts_its_clock_each_episode():
    env = make_env("Ant-v5")
    seen: list[int] = []

    def factory(action_space, dt):
        return lambda obs, step: (seen.append(step), np.zeros(action_space.shape))[1]

    policy = ScriptedPolicy([factory(env.action_space, 0.05)], env.action_space)
    obs = np.zeros((1, *env.observation_space.shape))
    policy(obs, None, np.array([False]))
    policy(obs, None, np.array([False]))
    policy(obs, None, np.array([True]))
    assert seen == [0, 1, 0]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_colon", "expected module:function"),
        ("not_a_module_xyz:gait", "cannot import controller module"),
        ("optiq.demos.scripted:no_such_gait", "has no function 'no_such_gait'"),
    ],
)
def test_bad_controller_specs_are_one_line_errors(spec, message):
    with pytest.raises(OptiqError, match=message):
        load_controller_factory(spec)


def test_controller_for_the_wrong_env_or_params_is_rejected():
    with pytest.raises(OptiqError, match="drives Ant's 8 actuators"):
        make_controller("optiq.demos.scripted:trot_gait", make_env("Hopper-v5"))
    with pytest.raises(OptiqError, match="rejected its parameters"):
        make_controller("optiq.demos.scripted:trot_gait", make_env("Ant-v5"), {"speed": 3})


def test_scripted_section_is_validated(tmp_path):
    text = (
        (REPO / "hparams.yml").read_text().replace("controller: optiq.demos.scripted:trot_gait", "controller: [1, 2]")
    )
    path = tmp_path / "hparams.yml"
    path.write_text(text)
    with pytest.raises(OptiqError, match=r"'Ant-v5.scripted.controller' must be a string, got \[1, 2\]"):
        load_env_config("Ant-v5", "quick", path)


def test_minari_round_trip_and_combining_names(tmp_path, minari_root):
    demos = synthetic_trajectories(n=3, length=20)
    export_minari(demos, "optiq/hopper/test-v0", "Hopper-v5", "synthetic", "test")
    export_minari(demos[:1], "optiq/hopper/test-v1", "Hopper-v5", "synthetic", "test")
    env = make_env("Hopper-v5")

    loaded, sources = load_minari_demos(["optiq/hopper/test-v0"], env)
    assert len(loaded) == 3 and sources[0]["n_episodes"] == 3
    for ours, theirs in zip(demos, loaded):
        np.testing.assert_allclose(ours.obs, theirs.obs)
        np.testing.assert_allclose(ours.acts, theirs.acts)
        np.testing.assert_allclose(ours.rews, theirs.rews)
        assert ours.terminal == theirs.terminal

    config = load_env_config("Hopper-v5", "quick")
    ids = dataset_ids("optiq/hopper", ["test-v0", "test-v1"])
    meta = import_minari_demos(config, ids, tmp_path / "demos", seed=0)
    assert meta["n_episodes"] == 4
    assert [d["dataset_id"] for d in meta["datasets"]] == ["optiq/hopper/test-v0", "optiq/hopper/test-v1"]
    combined = load_demos(tmp_path / "demos" / "demos.npz", env.observation_space, env.action_space)
    np.testing.assert_allclose(combined[3].acts, demos[0].acts)


def test_minari_errors_name_the_fix(tmp_path, minari_root):
    with pytest.raises(OptiqError, match="minari download mujoco/hopper/expert-v0"):
        load_minari_demos(["mujoco/hopper/expert-v0"], make_env("Hopper-v5"))
    export_minari(synthetic_trajectories(n=1), "optiq/hopper/mine-v0", "Hopper-v5", "synthetic", "test")
    with pytest.raises(OptiqError, match="recorded on Hopper-v5, not Walker2d-v5"):
        load_minari_demos(["optiq/hopper/mine-v0"], make_env("Walker2d-v5"))
    before = sorted(p.name for p in (minari_root / "optiq" / "hopper" / "mine-v0").rglob("*"))
    with pytest.raises(OptiqError, match="already exists"):
        export_minari(synthetic_trajectories(n=2), "optiq/hopper/mine-v0", "Hopper-v5", "synthetic", "test")
    assert sorted(p.name for p in (minari_root / "optiq" / "hopper" / "mine-v0").rglob("*")) == before
    assert len(load_minari_demos(["optiq/hopper/mine-v0"], make_env("Hopper-v5"))[0]) == 1


def test_collect_script_exports_minari_and_rejects_mixed_flags(tmp_path, minari_root):
    env = {**os.environ, "MINARI_DATASETS_PATH": str(minari_root)}
    base = [sys.executable, "scripts/01_collect_demos.py", "--env", "Ant-v5", "--outputs", str(tmp_path)]
    base.append("--no-progress")
    run = subprocess.run(
        [*base, "--source", "scripted", "--n-episodes", "1", "--export-minari", "optiq/ant/trot-v0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert (minari_root / "optiq" / "ant" / "trot-v0" / "data").is_dir()
    bad = subprocess.run(
        [*base, "--source", "scripted", "--dataset", "x/y"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "--dataset" in bad.stderr


def test_reports_name_the_demonstrator_and_minari_refuses_pixels(tmp_path):
    from optiq.compare.verdict import demonstrator
    from optiq.demos.pipeline import collect_stage
    from optiq.paths import RunPaths

    assert demonstrator({"source": "expert"}) == "expert"
    assert demonstrator({"source": "scripted", "controller": "a:b"}) == "scripted controller a:b"
    assert demonstrator({"source": "minari", "datasets": [{"dataset_id": "x/y-v0"}]}) == "Minari demos x/y-v0"
    config = load_env_config("Hopper-v5", "quick", obs_mode="pixels")
    with pytest.raises(OptiqError, match="Minari datasets hold state observations"):
        collect_stage(config, RunPaths(tmp_path, "Hopper-v5", "px"), 0, source="minari", dataset="a/b-v0")
    assert not (tmp_path / "Hopper-v5").exists()
