"""Record an mp4 of a policy headlessly (MUJOCO_GL=egl, falling back to osmesa).

MuJoCo fixes its GL backend at import, so the backend is probed in a subprocess before
this process creates a renderer. Rendering uses a smaller shadow map and no multisampling:
about 4x faster than MuJoCo's defaults and fine for watching a gait. A pixel policy
(``obs_config`` settings in pixel mode) is fed its stacked camera frames, and the video shows
what it sees: its camera frame, scaled up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from optiq.atomic_io import atomic_path
from optiq.envs import fast_render_settings, make_env, make_pixel_env
from optiq.extras import missing_extra_message
from optiq.policies import PolicyFiles, load_model

_PROBE = (
    "import gymnasium as gym; e = gym.make('InvertedPendulum-v5', render_mode='rgb_array', width=32, height=32);"
    "e.reset(seed=0); assert e.render().shape == (32, 32, 3)"
)


def _probe_backend(backend: str) -> bool:
    env = {**os.environ, "MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend}
    try:
        result = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def ensure_render_backend() -> str | None:
    """Pick a working headless backend (egl, then osmesa) and set MUJOCO_GL; None if none works.

    The answer is cached in ``OPTIQ_GL_OK`` so child processes do not probe again.
    """
    if "OPTIQ_GL_OK" in os.environ:
        return os.environ["OPTIQ_GL_OK"] or None
    mujoco_loaded = "mujoco" in sys.modules
    candidates = [os.environ["MUJOCO_GL"]] if mujoco_loaded and "MUJOCO_GL" in os.environ else []
    if not mujoco_loaded:
        user_choice = os.environ.get("MUJOCO_GL")
        candidates = ([user_choice] if user_choice else []) + [b for b in ("egl", "osmesa") if b != user_choice]
    for backend in candidates:
        if _probe_backend(backend):
            os.environ["MUJOCO_GL"] = backend
            os.environ["PYOPENGL_PLATFORM"] = backend
            os.environ["OPTIQ_GL_OK"] = backend
            return backend
    os.environ["OPTIQ_GL_OK"] = ""
    return None


def _is_pixels(obs_config: dict[str, Any] | None) -> bool:
    return obs_config is not None and obs_config.get("mode") == "pixels"


def _upscale(frame: np.ndarray, height: int) -> np.ndarray:
    """A small camera frame scaled up by a whole factor (crisp pixels) to at most ``height`` rows.

    Sides are cut to even sizes, which H.264 needs.
    """
    factor = max(1, height // frame.shape[0])
    big = np.repeat(np.repeat(frame, factor, axis=0), factor, axis=1)
    return big[: big.shape[0] // 2 * 2, : big.shape[1] // 2 * 2]


def _render_frames(
    files: PolicyFiles,
    env_id: str,
    n_frames: int,
    seed: int,
    width: int,
    height: int,
    device: str,
    obs_config: dict[str, Any] | None = None,
) -> list[np.ndarray]:
    """Deterministic rollout frames of a saved policy."""
    vecnorm = None
    if files.vecnormalize is not None:
        vecnorm = VecNormalize.load(str(files.vecnormalize), DummyVecEnv([lambda: make_env(env_id)]))
        vecnorm.training = False
    return render_model_frames(
        load_model(files, device),
        env_id,
        n_frames,
        seed,
        width,
        height,
        vecnorm.normalize_obs if vecnorm else None,
        obs_config=obs_config,
    )


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
    """Deterministic rollout frames of an in-memory model; an episode that ends early is followed by a reset.

    ``preprocess`` maps a batch of raw observations to the policy's input (e.g. VecNormalize's
    normalize_obs); ``env_wrapper`` wraps the env (e.g. an adapter observation wrapper).
    With pixel ``obs_config`` the model sees camera frames and the video shows them scaled up.
    """
    if _is_pixels(obs_config):
        assert obs_config is not None
        env = make_pixel_env(env_id, obs_config)
    else:
        env = make_env(env_id, render_mode="rgb_array", width=width, height=height)
        fast_render_settings(env)
    if env_wrapper is not None:
        env = env_wrapper(env)
    frames = []
    obs, _ = env.reset(seed=seed)
    for _ in range(n_frames):
        frame = np.asarray(env.render())
        frames.append(_upscale(frame, height) if _is_pixels(obs_config) else frame)
        policy_obs = preprocess(obs[None]) if preprocess is not None else obs[None]
        action, _ = model.predict(policy_obs, deterministic=True)
        obs, _, terminated, truncated, _ = env.step(action[0])
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return frames


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, image.width, 22], fill=(0, 0, 0))
    draw.text((6, 5), text, fill=(255, 255, 255))
    return np.asarray(image)


def write_mp4(frames: list[np.ndarray], out_path: Path, fps: int) -> Path:
    from moviepy import ImageSequenceClip

    with atomic_path(out_path) as tmp:
        clip = ImageSequenceClip(frames, fps=fps)
        clip.write_videofile(str(tmp), codec="libx264", audio=False, logger=None)
        clip.close()
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


def record_video(
    files: PolicyFiles,
    env_id: str,
    out_path: str | Path,
    video_length: int = 1000,
    seed: int = 0,
    fps: int | None = None,
    width: int = 480,
    height: int = 360,
    device: str = "auto",
    label: str | None = None,
    obs_config: dict[str, Any] | None = None,
) -> Path | None:
    """Roll out the policy deterministically for ``video_length`` steps and write an mp4.

    Returns None (with a warning) when no headless GL backend works or moviepy is missing.
    ``obs_config`` is the config's observation settings (a pixel policy needs its camera frames).
    """
    if video_unavailable():
        return None
    frames = _render_frames(files, env_id, video_length, seed, width, height, device, obs_config)
    if label:
        frames = [_label(f, label) for f in frames]
    return write_mp4(frames, Path(out_path), fps or env_fps(env_id))


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
    """One mp4 with a labelled panel per policy, all started from the same env seed."""
    if video_unavailable() or not policies:
        return None
    panels = [
        [_label(f, label) for f in _render_frames(files, env_id, video_length, seed, width, height, device, obs_config)]
        for label, files in policies.items()
    ]
    frames = [np.concatenate(row, axis=1) for row in zip(*panels)]
    return write_mp4(frames, Path(out_path), env_fps(env_id))


def env_fps(env_id: str) -> int:
    env = make_env(env_id)
    fps = int(env.metadata.get("render_fps", 30))
    env.close()
    return fps


class PeriodicVideo(BaseCallback):
    """SB3 callback: an mp4 of the current policy every ``every`` env steps (``--record-video``)."""

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
        frames = render_model_frames(
            self.model, self.env_id, self.length, self.seed, 320, 240, preprocess, self.env_wrapper, self.obs_config
        )
        write_mp4(frames, self.out_dir / f"step_{self.num_timesteps:09d}.mp4", env_fps(self.env_id))
