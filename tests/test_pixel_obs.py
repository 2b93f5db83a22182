"""Pixel observations (``--obs pixels``): wrappers, config, uint8 demos, and the pipeline end to end."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from imitation.data import types

from optiq.atomic_io import read_json
from optiq.cli import resolve
from optiq.config import load_env_config, state_config
from optiq.demos.collect import rollout_episodes
from optiq.demos.storage import load_demos, save_demos
from optiq.envs import make_task_vec
from optiq.errors import OptiqError
from tests.helpers import REPO, TINY, run_python

ENV = "InvertedPendulum-v5"


def pixel_config(**obs: object) -> dict:
    return load_env_config(ENV, "quick", obs_mode="pixels", overrides={f"obs.{k}": v for k, v in obs.items()})


def test_grayscale_frames_are_stacked_channel_first_oldest_first():
    venv = make_task_vec(pixel_config(frame_stack=3), 1, seed=0)
    assert venv.observation_space.shape == (3, 64, 64) and venv.observation_space.dtype == np.uint8
    first = venv.reset()
    assert first.shape == (1, 3, 64, 64) and first.dtype == np.uint8
    assert np.array_equal(first[0, 0], first[0, 2])  # the reset frame fills the stack
    assert first[0].max() > first[0].min()  # an actual picture, not a blank frame
    previous = first
    for _ in range(3):  # a push that moves the cart but does not yet drop the pole (4+ steps would)
        obs, _, done, _ = venv.step(np.array([[1.0]]))
        assert not done[0]
        assert np.array_equal(obs[0, :2], previous[0, 1:])  # frames shift by one per step
        previous = obs
    assert not np.array_equal(previous[0, 0], previous[0, 2])  # the cart moved between the oldest and newest


def test_rgb_frames_concatenate_on_the_channel_axis():
    venv = make_task_vec(pixel_config(grayscale=False, frame_stack=2, width=48, height=40), 2, seed=0)
    assert venv.observation_space.shape == (6, 40, 48)
    venv.reset()
    obs, *_ = venv.step(np.zeros((2, 1)))
    assert obs.shape == (2, 6, 40, 48) and obs.dtype == np.uint8
    assert np.array_equal(obs[0, 3:], venv.envs[0].render().transpose(2, 0, 1))  # newest frame last, as rendered


def test_pixel_config_keeps_state_settings_apart(tmp_path):
    config = pixel_config()
    state = state_config(config)
    assert config["obs"]["mode"] == "pixels" and state["obs"]["mode"] == "state"
    assert not config["finetune"]["ppo"]["normalize"] and state["finetune"]["ppo"]["normalize"]
    assert config["finetune"]["ppo"]["policy_kwargs"]["features_extractor_kwargs"] == {"features_dim": 256}
    assert "features_extractor_kwargs" not in state["finetune"]["ppo"]["policy_kwargs"]
    assert load_env_config(ENV, "quick") == state  # a state run is untouched by the pixel settings
    common = {"env": ENV, "preset": "quick", "hparams": REPO / "hparams.yml", "overrides": [], "run_name": None}
    args = argparse.Namespace(**common, obs="pixels", outputs=tmp_path)
    assert resolve(args)[1].run_name == "quick-pixels"
    with pytest.raises(OptiqError, match=r"obs.width' is 20; CnnPolicy needs at least 36") as err:
        pixel_config(width=20)
    assert "\n" not in str(err.value)
    with pytest.raises(OptiqError, match=r"'finetune.ppo.normalize' must be false with obs.mode pixels"):
        load_env_config(ENV, obs_mode="pixels", overrides={"finetune.ppo.normalize": True})
    with pytest.raises(OptiqError, match="choose one of: state, pixels"):
        load_env_config(ENV, overrides={"obs.mode": "camera"})


def test_state_policy_acts_on_the_true_state_while_pixels_are_recorded():
    seen: list[np.ndarray] = []

    def policy(obs, state=None, episode_start=None):
        seen.append(np.array(obs))
        return np.full((len(obs), 1), 0.5, dtype=np.float32), None

    pixels = rollout_episodes(policy, ENV, 1, seed=3, obs=pixel_config()["obs"])[0]
    state_obs = np.array(seen)[:, 0]
    seen.clear()
    states = rollout_episodes(policy, ENV, 1, seed=3)[0]
    assert pixels.obs.dtype == np.uint8 and pixels.obs.shape[1:] == (4, 64, 64)
    assert state_obs.shape[1:] == (4,)  # the policy never saw a frame
    np.testing.assert_allclose(state_obs, states.obs[:-1], rtol=1e-5)  # the same states the state env returns
    np.testing.assert_array_equal(pixels.rews, states.rews)


def test_uint8_demos_round_trip_and_mismatches_are_one_line_errors(tmp_path):
    rng = np.random.default_rng(0)
    episode = types.TrajectoryWithRew(
        obs=rng.integers(0, 256, size=(6, 4, 64, 64), dtype=np.uint8),
        acts=rng.uniform(-1, 1, size=(5, 1)).astype(np.float32),
        infos=None,
        terminal=True,
        rews=np.ones(5, dtype=np.float32),
    )
    path = save_demos(tmp_path / "demos.npz", [episode])
    pixel_venv = make_task_vec(pixel_config(), 1, seed=0)
    loaded = load_demos(path, pixel_venv.observation_space, pixel_venv.action_space)[0]
    assert loaded.obs.dtype == np.uint8 and np.array_equal(loaded.obs, episode.obs)

    state_space = make_task_vec(load_env_config(ENV), 1, seed=0).observation_space
    with pytest.raises(OptiqError, match=r"shape \(4, 64, 64\) but the env expects \(4,\).*same --obs"):
        load_demos(path, state_space)
    as_float = save_demos(tmp_path / "float.npz", [dataclasses.replace(episode, obs=episode.obs / 1.0)])
    assert np.load(as_float)["obs"].dtype == np.float32
    with pytest.raises(OptiqError, match="float32 observations but the env's are uint8") as err:
        load_demos(as_float, pixel_venv.observation_space)
    assert "\n" not in str(err.value)


def _overrides() -> list[str]:
    args = []
    for key, value in TINY.items():
        text = str(value).replace("'", '"') if isinstance(value, dict) else str(value)
        args += ["--set", f"{key}={text}"]
    tiny_pixels = {
        "demos.n_episodes": 10,
        "bc.batch_size": 16,
        "finetune.total_timesteps": 512,
        "finetune.ppo.hyperparams.n_steps": 128,
    }
    return args + [f"--set={key}={value}" for key, value in tiny_pixels.items()]


def test_pixel_pipeline_end_to_end(tmp_path):
    """State expert (trained by a pixel command) -> pixel demos -> CNN BC -> BC->RL, scratch -> eval -> compare."""
    outputs, expert = tmp_path / "outputs", tmp_path / "expert"
    common = ["--env", ENV, "--obs", "pixels", "--outputs", str(outputs), "--no-progress", *_overrides()]
    train = ["--train-expert", "--expert-timesteps", "256", "--expert-out", str(expert), "--skip-demos"]
    trained = run_python("scripts/01_collect_demos.py", *common, *train)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert read_json(expert / "run.json")["config"]["obs"]["mode"] == "state"  # experts learn from states

    result = run_python("run_all.py", *common, "--expert", str(expert), "--seeds", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    root = outputs / ENV / "quick-pixels"
    assert sorted(p.name for p in (outputs / ENV).iterdir()) == ["quick-pixels"]  # no state outputs mixed in
    with np.load(root / "01_demos" / "demos.npz") as demos:
        assert demos["obs"].dtype == np.uint8 and demos["obs"].shape[1:] == (4, 64, 64)
    from optiq.policies import PolicyFiles, load_model

    bc = load_model(PolicyFiles.from_json(read_json(root / "03_select" / "seed0" / "best.json")), device="cpu")
    assert type(bc.policy).__name__ == "ActorCriticCnnPolicy" and bc.observation_space.shape == (4, 64, 64)
    copied = dict(map(tuple, read_json(root / "04_finetune" / "ppo_bc_seed0" / "copy_report.json")["copied_layers"]))
    assert copied["pi_features_extractor.cnn.0"] and not copied["vf_features_extractor.cnn.0"]
    run = read_json(root / "04_finetune" / "ppo_scratch_seed0" / "run.json")
    assert run["command"][run["command"].index("--obs") + 1] == "pixels"  # run_all passed --obs on
    assert run["config"]["finetune"]["ppo"]["normalize"] is False
    for label in ("bc_only_seed0", "ppo_bc_seed0", "ppo_scratch_seed0"):
        assert read_json(root / "05_eval" / label / "eval.json")["n_episodes"] == 1
        assert (root / "05_eval" / label / "video.mp4").stat().st_size > 1000, label
    report = (root / "06_compare" / "results.md").read_text()
    for method in ("BC only", "BC -> RL", "RL from scratch"):
        assert f"| {method} |" in report


def test_pixel_demos_do_not_feed_a_state_run(tmp_path):
    """Stage 02 in state mode on pixel demos: a one-line error naming --obs, not a crash."""
    demos = tmp_path / ENV / "quick" / "01_demos"
    frames = np.zeros((3, 4, 64, 64), dtype=np.uint8)
    episode = types.TrajectoryWithRew(frames, np.zeros((2, 1), np.float32), None, True, np.ones(2, np.float32))
    save_demos(demos / "demos.npz", [episode])
    result = run_python("scripts/02_train_bc.py", "--env", ENV, "--outputs", str(tmp_path), "--no-progress")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith("error: ") and "same --obs" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_video_of_a_pixel_policy_shows_its_camera(tmp_path):
    from optiq.algos import build_model
    from optiq.evaluation.video import render_model_frames

    config = pixel_config()
    model = build_model(config, "ppo", make_task_vec(config, 1, seed=0), seed=0, device="cpu")
    frames = render_model_frames(model, ENV, 3, seed=0, height=200, obs_config=config["obs"])
    assert len(frames) == 3 and frames[0].shape == (192, 192, 3)  # 64 x 3, crisp whole-factor upscaling


def test_pretrained_start_is_refused_with_pixels(tmp_path):
    from optiq.rl.finetune import START_BUILDERS, BootstrapOptions, StartRequest

    options = BootstrapOptions(tmp_path / "x.pt")
    request = StartRequest(pixel_config(), "ppo", "pretrained", 0, Path(tmp_path), None, None, "cpu", None, options)
    with pytest.raises(OptiqError, match="--obs state"):
        START_BUILDERS["pretrained"](request)
