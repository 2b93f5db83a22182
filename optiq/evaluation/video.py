"""Record mp4s of policies headlessly (MUJOCO_GL=egl, falling back to osmesa).

MuJoCo fixes its GL backend at import, so the backend is probed in a subprocess before
this process creates a renderer. What a video shows:

* the robot: the camera follows its torso (:class:`optiq.rendering.RobotCamera`). Gymnasium
  1.4's own ``rgb_array`` camera stays where the robot started, and a hopper leaves its frame
  after about 1.2 s;
* real time: one frame per env step, played at the env's own 1/dt frames per second
  (Hopper-v5: 125);
* one deterministic episode from the given seed, at least :data:`MIN_VIDEO_SECONDS` long
  (``video_length`` frames is raised to that), or the whole episode when it is shorter. An
  episode that ends holds its last frame for :data:`END_HOLD_SECONDS`, labelled how it ended;
* side by side: every policy on the same episode seed (the same initial state) and every panel
  as long as the longest episode; a panel whose episode ended holds its last frame, labelled
  e.g. "fell at step 57".

A policy is rolled out first (physics only, fast), keeping the physics state of each frame; the
frames are rendered from those states afterwards and streamed to ffmpeg, so a long clip never
holds its frames in memory. Rendering draws no shadows, reflections or multisampling: about 4x
faster than MuJoCo's defaults on a CPU and fine for watching a gait. A pixel policy
(``obs_config`` settings in pixel mode) is fed its stacked camera frames, and the video shows
what it sees: its camera frame, scaled up.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from optiq.atomic_io import atomic_path
from optiq.envs import make_env, make_pixel_env
from optiq.extras import missing_extra_message
from optiq.policies import PolicyFiles, load_model
from optiq.rendering import RobotCamera, ensure_render_backend
from optiq.rl.averaging import evaluated_policy

MIN_VIDEO_SECONDS = 10.0  # a clip is at least this long in real time, unless the episode is shorter
END_HOLD_SECONDS = 1.0  # an episode that ended holds its last frame this long


def _is_pixels(obs_config: dict[str, Any] | None) -> bool:
    return obs_config is not None and obs_config.get("mode") == "pixels"


def _upscale(frame: np.ndarray, height: int) -> np.ndarray:
    """A small camera frame scaled up by a whole factor (crisp pixels) to at most ``height`` rows.

    Sides are cut to even sizes, which H.264 needs.
    """
    factor = max(1, height // frame.shape[0])
    big = np.repeat(np.repeat(frame, factor, axis=0), factor, axis=1)
    return big[: big.shape[0] // 2 * 2, : big.shape[1] // 2 * 2]


# --- Timing -------------------------------------------------------------------------------------


def env_fps(env_id: str) -> float:
    """Real-time frames per second: one frame per env step, 1/dt (Hopper-v5: 125, Humanoid-v5: 66.67)."""
    env = make_env(env_id)
    dt = getattr(env.unwrapped, "dt", None)
    fps = 1.0 / dt if dt else float(env.metadata.get("render_fps", 30))
    env.close()
    return round(fps, 6)  # 1 / 0.008 is 125.00000000000001


def video_frame_count(video_length: int, fps: float, min_seconds: float = MIN_VIDEO_SECONDS) -> int:
    """Frames a clip may have: ``video_length`` raised to ``min_seconds`` of real time.

    The clip is one episode, so it stops sooner when the episode ends (the whole episode is shown).
    """
    return max(int(video_length), math.ceil(min_seconds * fps))


# --- Rollouts -----------------------------------------------------------------------------------


@dataclass
class Episode:
    """One deterministic episode: the physics state of each frame, and how it ended."""

    seed: int
    states: list[np.ndarray]  # MuJoCo's full physics state after the reset and after each step
    outcome: str | None = None  # "fell at step N", "episode ended at step N"; None: cut at the clip's length

    @property
    def steps(self) -> int:
        return len(self.states) - 1


def _physics_state(env: Any) -> np.ndarray:
    import mujoco

    model, data = env.unwrapped.model, env.unwrapped.data
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, state, spec)
    return state


def _set_physics_state(env: Any, state: np.ndarray) -> None:
    import mujoco

    model, data = env.unwrapped.model, env.unwrapped.data
    mujoco.mj_setState(model, data, state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    mujoco.mj_forward(model, data)  # positions, centres of mass and tracking cameras of that state


def _rollout_env(env_id: str, obs_config: dict[str, Any] | None, env_wrapper: Any = None) -> Any:
    env = make_pixel_env(env_id, obs_config) if obs_config is not None and _is_pixels(obs_config) else make_env(env_id)
    return env_wrapper(env) if env_wrapper is not None else env


def rollout_episode(model: Any, env: Any, seed: int, max_frames: int, preprocess: Any = None) -> Episode:
    """Roll ``model`` out deterministically from ``env.reset(seed=seed)`` for one episode of at most ``max_frames``.

    ``preprocess`` maps a batch of raw observations to the policy's input (e.g. VecNormalize's
    normalize_obs). Every policy given the same seed starts from the same initial state.
    """
    obs, _ = env.reset(seed=seed)
    states = [_physics_state(env)]
    while len(states) < max_frames:
        policy_obs = preprocess(obs[None]) if preprocess is not None else obs[None]
        action, _ = model.predict(policy_obs, deterministic=True)
        obs, _, terminated, truncated, _ = env.step(action[0])
        states.append(_physics_state(env))
        if terminated or truncated:
            how = "fell" if terminated else "episode ended"
            return Episode(seed, states, f"{how} at step {len(states) - 1}")
    return Episode(seed, states)


def rollout_model(
    model: Any,
    env_id: str,
    max_frames: int,
    seed: int,
    preprocess: Any = None,
    env_wrapper: Any = None,
    obs_config: dict[str, Any] | None = None,
) -> Episode:
    """:func:`rollout_episode` in a fresh env (``env_wrapper`` wraps it, e.g. an adapter observation wrapper)."""
    env = _rollout_env(env_id, obs_config, env_wrapper)
    try:
        return rollout_episode(model, env, seed, max_frames, preprocess)
    finally:
        env.close()


# --- Frames -------------------------------------------------------------------------------------


class FrameSource:
    """Renders physics states of ``env_id``: from the robot-tracking camera, or a pixel policy's own camera.

    One source serves every panel of a side-by-side clip (the camera keeps no state between
    frames), so one GL context is enough.
    """

    def __init__(self, env_id: str, width: int, height: int, obs_config: dict[str, Any] | None = None):
        self.height = height
        self.pixels = _is_pixels(obs_config)
        self.env = _rollout_env(env_id, obs_config)
        self.env.reset(seed=0)
        self.camera = None if self.pixels else RobotCamera(self.env, width, height)

    def frame(self, state: np.ndarray) -> np.ndarray:
        _set_physics_state(self.env, state)
        if self.camera is None:
            return _upscale(np.asarray(self.env.render()), self.height)
        return self.camera.render()

    def close(self) -> None:
        if self.camera is not None:
            self.camera.close()
        self.env.close()


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    """``text`` on a black bar across the top. Pillow's default font at its own size 10 runs the
    words together in these frames ("fellatstep509"), so the size follows the frame's height."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(frame)
    font = ImageFont.load_default(size=max(14, image.height // 24))
    draw = ImageDraw.Draw(image)
    bottom = draw.textbbox((6, 4), text, font=font)[3]
    draw.rectangle([0, 0, image.width, bottom + 4], fill=(0, 0, 0))
    draw.text((6, 4), text, fill=(255, 255, 255), font=font)
    return np.asarray(image)


def _caption(label: str | None, outcome: str | None) -> str | None:
    parts = [part for part in (label, outcome) if part]
    return ": ".join(parts) if parts else None


def clip_frames(
    source: FrameSource, episodes: list[Episode], labels: list[str | None], hold_frames: int = 0
) -> Iterator[np.ndarray]:
    """The frames of a clip: one panel per episode, side by side, rendered one at a time.

    Every panel lasts as long as the longest episode; an episode that ended holds its last frame,
    captioned how it ended. ``hold_frames`` more frames hold the end when the longest episode ended.
    """
    total = max(len(episode.states) for episode in episodes)
    if episodes[int(np.argmax([len(e.states) for e in episodes]))].outcome:
        total += hold_frames
    last: list[np.ndarray | None] = [None] * len(episodes)
    for i in range(total):
        row = []
        for k, (episode, label) in enumerate(zip(episodes, labels)):
            if i < len(episode.states):
                frame = source.frame(episode.states[i])
                ended = i == len(episode.states) - 1
                caption = _caption(label, episode.outcome if ended else None)
                frame = _label(frame, caption) if caption else frame
                if ended:
                    last[k] = frame
            else:
                frame = last[k]
            row.append(frame)
        yield row[0] if len(row) == 1 else np.concatenate(row, axis=1)


def render_model_frames(
    model: Any,
    env_id: str,
    n_frames: int,
    seed: int,
    width: int = 480,
    height: int = 360,
    preprocess: Any = None,
    env_wrapper: Any = None,
    obs_config: dict[str, Any] | None = None,
) -> list[np.ndarray]:
    """Frames of one deterministic episode of an in-memory model: ``n_frames``, fewer if the episode ends.

    The first frame is the reset state, then one frame per step. ``preprocess`` maps a batch of
    raw observations to the policy's input (e.g. VecNormalize's normalize_obs); ``env_wrapper``
    wraps the env (e.g. an adapter observation wrapper). With pixel ``obs_config`` the model sees
    camera frames and the video shows them scaled up.
    """
    episode = rollout_model(model, env_id, n_frames, seed, preprocess, env_wrapper, obs_config)
    source = FrameSource(env_id, width, height, obs_config)
    try:
        return list(clip_frames(source, [episode], [None]))
    finally:
        source.close()


# --- Writing ------------------------------------------------------------------------------------


def write_mp4(frames: Iterable[np.ndarray], out_path: Path, fps: float) -> Path:
    """Stream ``frames`` (H, W, 3 uint8, all the same size) to an H.264 mp4 playing at ``fps``."""
    from moviepy.video.io.ffmpeg_writer import FFMPEG_VideoWriter

    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise ValueError("no frames to write")
    height, width = first.shape[0] // 2 * 2, first.shape[1] // 2 * 2  # H.264 (yuv420p) needs even sides
    with atomic_path(out_path) as tmp:
        # x264's "veryfast" preset: ~4x faster than "medium" here, and files no bigger (~1.6 MB per 10 s at 480x360)
        writer = FFMPEG_VideoWriter(
            str(tmp), (width, height), fps, codec="libx264", preset="veryfast", ffmpeg_params=["-crf", "23"]
        )
        try:
            writer.write_frame(np.ascontiguousarray(first[:height, :width]))
            for frame in iterator:
                writer.write_frame(np.ascontiguousarray(frame[:height, :width]))
        finally:
            writer.close()
    return out_path


def video_unavailable() -> bool:
    """True (with a warning) when no headless GL backend or moviepy is available."""
    if ensure_render_backend() is None:
        warnings.warn("no headless OpenGL backend works (install libegl1 or libosmesa6); skipping video", stacklevel=3)
        return True
    message = missing_extra_message("moviepy", "video recording")
    if message:
        warnings.warn(f"{message}; skipping video", stacklevel=3)
        return True
    return False


def _load_policy(files: PolicyFiles, env_id: str, device: str) -> tuple[Any, Any]:
    """A saved policy and its observation preprocessing (VecNormalize statistics, frozen)."""
    vecnorm = None
    if files.vecnormalize is not None:
        vecnorm = VecNormalize.load(str(files.vecnormalize), DummyVecEnv([lambda: make_env(env_id)]))
        vecnorm.training = False
    return load_model(files, device), vecnorm.normalize_obs if vecnorm else None


def record_clip(
    policies: list[tuple[str | None, Any, Any]],
    env_id: str,
    out_path: str | Path,
    video_length: int,
    seed: int,
    width: int,
    height: int,
    obs_config: dict[str, Any] | None = None,
    fps: float | None = None,
    env_wrapper: Any = None,
) -> Path:
    """An mp4 of one episode per ``(label, model, preprocess)``, side by side, all from env seed ``seed``.

    Each clip has up to :func:`video_frame_count` frames at the env's real-time fps (``fps``
    overrides the playback rate only).
    """
    real_fps = env_fps(env_id)
    n_frames = video_frame_count(video_length, real_fps)
    episodes = [
        rollout_model(model, env_id, n_frames, seed, preprocess, env_wrapper, obs_config)
        for _, model, preprocess in policies
    ]
    play_fps = fps or real_fps
    source = FrameSource(env_id, width, height, obs_config)
    try:
        frames = clip_frames(source, episodes, [label for label, _, _ in policies], round(END_HOLD_SECONDS * play_fps))
        return write_mp4(frames, Path(out_path), play_fps)
    finally:
        source.close()


def record_video(
    files: PolicyFiles,
    env_id: str,
    out_path: str | Path,
    video_length: int = 1000,
    seed: int = 0,
    fps: float | None = None,
    width: int = 480,
    height: int = 360,
    device: str = "auto",
    label: str | None = None,
    obs_config: dict[str, Any] | None = None,
) -> Path | None:
    """An mp4 of one deterministic episode of a saved policy from env seed ``seed``.

    At least ``video_length`` frames and 10 s of real time (:func:`video_frame_count`), or the
    whole episode when it is shorter. Returns None (with a warning) when no headless GL backend
    works or moviepy is missing. ``obs_config`` is the config's observation settings (a pixel
    policy needs its camera frames).
    """
    if video_unavailable():
        return None
    policy = (label, *_load_policy(files, env_id, device))
    return record_clip([policy], env_id, out_path, video_length, seed, width, height, obs_config, fps)


def record_side_by_side(
    policies: dict[str, PolicyFiles],
    env_id: str,
    out_path: str | Path,
    video_length: int = 1000,
    seed: int = 0,
    width: int = 360,
    height: int = 270,
    device: str = "auto",
    obs_config: dict[str, Any] | None = None,
) -> Path | None:
    """One mp4 with a labelled panel per policy, every one on the same episode (env seed ``seed``).

    All panels have the same number of frames: a panel whose episode ended holds its last frame,
    captioned e.g. "fell at step 57".
    """
    if video_unavailable() or not policies:
        return None
    loaded = [(label, *_load_policy(files, env_id, device)) for label, files in policies.items()]
    return record_clip(loaded, env_id, out_path, video_length, seed, width, height, obs_config)


class PeriodicVideo(BaseCallback):
    """SB3 callback: an mp4 of the current policy every ``every`` env steps (``--record-video``).

    ``length`` frames, raised to 10 s of real time like every clip (:func:`video_frame_count`).
    """

    def __init__(
        self,
        env_id: str,
        out_dir: Path,
        every: int,
        length: int,
        seed: int = 0,
        env_wrapper: Any = None,
        obs_config: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.env_id, self.out_dir, self.every, self.length = env_id, out_dir, every, length
        self.seed, self.env_wrapper, self.obs_config = seed, env_wrapper, obs_config
        self._last = -every

    def _on_step(self) -> bool:
        if self.every > 0 and self.num_timesteps - self._last >= self.every:
            self._last = self.num_timesteps
            self.record()
        return True

    def record(self) -> None:
        if video_unavailable():
            return
        train_env = self.model.get_env()
        preprocess = train_env.normalize_obs if isinstance(train_env, VecNormalize) else None
        with evaluated_policy(self.model):
            record_clip(
                [(None, self.model, preprocess)],
                self.env_id,
                self.out_dir / f"step_{self.num_timesteps:09d}.mp4",
                self.length,
                self.seed,
                320,
                240,
                self.obs_config,
                env_wrapper=self.env_wrapper,
            )
