"""Videos keep the robot in frame, play in real time, last long enough, and compare policies on one episode."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from optiq.config import load_hparams_file
from optiq.evaluation import video
from optiq.evaluation.video import (
    END_HOLD_SECONDS,
    FrameSource,
    clip_frames,
    env_fps,
    record_clip,
    render_model_frames,
    rollout_model,
    video_frame_count,
)

pytestmark = pytest.mark.skipif(video.ensure_render_backend() is None, reason="no headless OpenGL backend")

LOCOMOTION = ["Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5", "Humanoid-v5"]
NOT_LOCOMOTION = ["InvertedPendulum-v5"]  # its cart stays on a 2 m rail: a fixed camera sees it all


@pytest.fixture(autouse=True)
def _mujoco_log_in_tmp(tmp_path, monkeypatch):
    """MuJoCo writes compiler warnings (Humanoid's) to MUJOCO_LOG.TXT in the working directory."""
    monkeypatch.chdir(tmp_path)


def robot_pixels(frame: np.ndarray) -> np.ndarray:
    """Mask of the robots' brown-orange body (MuJoCo's texgeom, rgb .8 .6 .4).

    Nothing else in these scenes is red before blue: the floor is greenish white and black,
    the sky blue-grey.
    """
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    return (r > b + 40) & (r >= g)


class ConstantPolicy:
    """A stand-in SB3 model: the same action whatever it sees."""

    def __init__(self, action: float, size: int):
        self.action = np.full((1, size), action, dtype=np.float32)

    def predict(self, obs, deterministic=True):
        return self.action, None


class Push(gym.Wrapper):
    """Carries the robot forward ``speed`` m per step, upright, and ends the episode after ``steps``."""

    def __init__(self, env: gym.Env, speed: float = 0.03, steps: int = 130):
        super().__init__(env)
        self.speed, self.steps, self.t = speed, steps, 0

    def reset(self, **kwargs):
        self.t = 0
        obs, info = self.env.reset(**kwargs)
        self.start = self.env.unwrapped.data.qpos.copy()
        return obs, info

    def step(self, action):
        obs, reward, _, _, info = self.env.step(action)
        self.t += 1
        base = self.env.unwrapped
        qpos = self.start.copy()
        qpos[0] += self.speed * self.t  # the root's x slide (Hopper) or free joint's x
        base.set_state(qpos, np.zeros_like(base.data.qvel))
        return obs, reward, False, self.t >= self.steps, info


class NeverEnds(gym.Wrapper):
    """An episode that never terminates: only the clip's length cuts it."""

    def step(self, action):
        obs, reward, _, _, info = self.env.step(action)
        return obs, reward, False, False, info


def test_robot_pushed_3m_is_in_the_last_frame():
    """The issue's test: a Hopper that moved > 3 m is still in frame (Gymnasium 1.4's free camera loses it)."""
    policy = ConstantPolicy(0.0, 3)
    frames = render_model_frames(policy, "Hopper-v5", 1000, seed=0, width=160, height=120, env_wrapper=Push)
    assert len(frames) == 131  # reset + 130 steps: the whole episode, then it stops
    episode = rollout_model(policy, "Hopper-v5", 1000, seed=0, env_wrapper=Push)
    assert episode.states[-1][1] - episode.states[0][1] > 3.0  # state = [time, qpos...]: root x moved 3.9 m
    first, last = robot_pixels(frames[0]), robot_pixels(frames[-1])
    assert first.mean() > 0.01, "detector sees the robot at the start"
    assert last.mean() > 0.5 * first.mean(), "the robot left the frame"
    columns = np.nonzero(last.any(axis=0))[0]
    assert 0.25 * 160 < columns.mean() < 0.75 * 160, "the robot is not near the middle of the frame"


@pytest.mark.parametrize("env_id", LOCOMOTION)
def test_every_locomotion_env_is_tracked(env_id):
    """Each supported robot carried 5 m (and 500 m: past where its floor is drawn) stays in frame, on a floor."""
    from optiq.rendering import RobotCamera

    env = gym.make(env_id)
    env.reset(seed=0)
    base = env.unwrapped
    camera = RobotCamera(env, 96, 72)
    assert camera.tracking
    seen = {}
    for distance in (0.0, 5.0, 500.0):
        qpos = base.init_qpos.copy()
        qpos[0] += distance
        base.set_state(qpos, base.init_qvel)
        frame = camera.render()
        seen[distance] = robot_pixels(frame).mean()
        assert seen[distance] > 0.5 * seen[0.0] > 0, (env_id, distance, "the robot left the frame")
        floor = frame[frame.shape[0] * 3 // 4 :]
        assert (floor.max(axis=2) < 40).mean() > 0.1, (env_id, distance, "no black checker squares: floor not drawn")
    camera.close()
    env.close()


def test_supported_envs_are_all_covered():
    assert set(load_hparams_file()) <= set(LOCOMOTION) | set(NOT_LOCOMOTION)


def test_non_locomotion_keeps_gymnasiums_view():
    from optiq.rendering import RobotCamera

    env = gym.make("InvertedPendulum-v5", render_mode="rgb_array", width=64, height=48)
    env.reset(seed=0)
    camera = RobotCamera(env, 64, 48, fast=False)
    assert not camera.tracking
    assert np.abs(camera.render().astype(int) - env.render()).mean() < 2.0  # the view Gymnasium renders
    camera.close()
    env.close()


def test_fps_is_real_time_and_clips_last_10s():
    for env_id in ("Hopper-v5", "InvertedPendulum-v5", "Humanoid-v5"):
        env = gym.make(env_id)
        assert env_fps(env_id) == pytest.approx(1.0 / env.unwrapped.dt)
        env.close()
    assert env_fps("Hopper-v5") == 125.0
    assert video_frame_count(300, 125.0) == 1250  # the quick preset's 300 frames were 2.4 s
    assert video_frame_count(2000, 125.0) == 2000  # a longer video_length is kept
    assert video_frame_count(200, 25.0) == 250


def _frames_and_seconds(path: Path) -> tuple[int, float]:
    import imageio_ffmpeg

    return imageio_ffmpeg.count_frames_and_secs(str(path))


def test_clip_is_cut_at_10s_when_the_episode_goes_on(tmp_path):
    policy = ConstantPolicy(0.0, 1)
    out = record_clip(
        [(None, policy, None)], "InvertedPendulum-v5", tmp_path / "v.mp4", 20, 0, 64, 48, env_wrapper=NeverEnds
    )
    n_frames, seconds = _frames_and_seconds(out)
    assert n_frames == 250 and seconds == pytest.approx(10.0, abs=0.1)  # 25 fps, no end hold


def test_clip_of_a_short_episode_is_the_whole_episode_then_holds(tmp_path):
    policy = ConstantPolicy(3.0, 1)  # full push: the pole falls within a few steps
    episode = rollout_model(policy, "InvertedPendulum-v5", 250, seed=0)
    assert episode.outcome == f"fell at step {episode.steps}" and episode.steps < 50
    out = record_clip([("push", policy, None)], "InvertedPendulum-v5", tmp_path / "v.mp4", 20, 0, 64, 48)
    n_frames, _ = _frames_and_seconds(out)
    assert n_frames == len(episode.states) + round(END_HOLD_SECONDS * 25)


def test_side_by_side_panels_play_the_same_episode_seed():
    steady, push = ConstantPolicy(0.0, 1), ConstantPolicy(3.0, 1)
    episodes = [rollout_model(p, "InvertedPendulum-v5", 250, seed=7) for p in (steady, push, steady)]
    assert all(np.array_equal(e.states[0], episodes[0].states[0]) for e in episodes)  # one initial state
    other_seed = rollout_model(steady, "InvertedPendulum-v5", 2, seed=8)
    assert not np.array_equal(other_seed.states[0], episodes[0].states[0])
    assert np.array_equal(np.stack(episodes[0].states), np.stack(episodes[2].states))  # deterministic

    source = FrameSource("InvertedPendulum-v5", 64, 48)
    hold = 5
    frames = list(clip_frames(source, episodes, [None, None, None], hold))
    source.close()
    longest = max(len(e.states) for e in episodes)
    assert len(frames) == longest + (hold if episodes[0].outcome else 0)
    assert all(f.shape == (48, 3 * 64, 3) for f in frames)
    left, middle, right = np.split(frames[0], 3, axis=1)
    assert np.array_equal(left, middle) and np.array_equal(left, right)  # same first frame in every panel
    assert all(np.array_equal(f[:, :64], f[:, 128:]) for f in frames)  # same policy, same seed: same video
    ended = len(episodes[1].states) - 1  # the pushed panel fell first and holds its last frame, captioned
    assert ended < longest - 1
    assert all(np.array_equal(f[:, 64:128], frames[ended][:, 64:128]) for f in frames[ended:])
    white_text = [(f[:22, 64:128].min(axis=2) > 200).any() for f in frames]
    assert white_text[ended:] == [True] * (len(frames) - ended) and not any(white_text[:ended])  # "fell at step N"


def test_record_side_by_side_from_saved_policies(tmp_path):
    from stable_baselines3 import PPO

    from optiq.envs import make_env
    from optiq.policies import PolicyFiles

    model = PPO("MlpPolicy", make_env("InvertedPendulum-v5"), n_steps=64, batch_size=32, seed=0, device="cpu")
    model.save(tmp_path / "m.zip")
    files = PolicyFiles(tmp_path / "m.zip", None, "ppo")
    out = video.record_side_by_side(
        {"a": files, "b": files}, "InvertedPendulum-v5", tmp_path / "sbs.mp4", 10, seed=3, width=64, height=48
    )
    assert out is not None
    n_frames, seconds = _frames_and_seconds(out)
    episode = rollout_model(model, "InvertedPendulum-v5", 250, seed=3)
    hold = round(END_HOLD_SECONDS * 25) if episode.outcome else 0
    assert n_frames == len(episode.states) + hold
    assert seconds == pytest.approx(n_frames / 25.0, abs=0.1)


def test_captions_are_drawn_at_a_readable_size():
    """Pillow's default size-10 font ran words together ("fellatstep509"); captions scale with the frame."""
    from optiq.evaluation.video import _label

    frame = _label(np.zeros((480, 480, 3), np.uint8), "fell at step 509")
    ink_rows = int((frame.max(axis=2) > 128).any(axis=1).sum())
    assert ink_rows >= 480 // 24 - 4  # glyphs about the font size tall (the old font: 10 rows)
    for height in (360, 1080, 2160):  # the text stays on its black bar, whatever the frame
        frame = _label(np.full((height, 640, 3), 90, np.uint8), "RL from scratch: episode ended at step 1000")
        bar_rows = np.flatnonzero((frame[:, -1] == 0).all(axis=1))
        text_rows = np.flatnonzero((frame.max(axis=2) > 200).any(axis=1))
        assert bar_rows[0] == 0 and text_rows.max() < bar_rows.max() < height // 8
