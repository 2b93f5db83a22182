"""Headless rendering for MuJoCo: backend selection, and the cameras videos use.

MuJoCo picks its OpenGL backend from ``MUJOCO_GL`` at import time, so
:func:`configure_mujoco_gl` runs before optiq makes its first env (optiq.envs), when MuJoCo is
imported; importing ``optiq`` itself leaves the environment alone. EGL (GPU or Mesa) is
preferred, OSMesa (software) is the fallback. A user's own ``MUJOCO_GL`` is never overridden.
"""

from __future__ import annotations

import ctypes.util
import functools
import os
import subprocess
import sys
from typing import Any

import numpy as np


@functools.cache  # configure_mujoco_gl runs before every env optiq makes; find_library spawns ldconfig
def available_gl_backends() -> tuple[str, ...]:
    """Headless backends whose shared libraries can be found on this machine."""
    found = []
    if ctypes.util.find_library("EGL"):
        found.append("egl")
    if ctypes.util.find_library("OSMesa"):
        found.append("osmesa")
    return tuple(found)


def configure_mujoco_gl() -> str | None:
    """Set ``MUJOCO_GL`` (and PyOpenGL's platform) if the user has not; return the choice."""
    if "MUJOCO_GL" in os.environ:
        backend = os.environ["MUJOCO_GL"]
    else:
        backends = available_gl_backends()
        if not backends:
            return None
        backend = backends[0]
        os.environ["MUJOCO_GL"] = backend
    if backend in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend


# --- Video cameras -------------------------------------------------------------------------
# ``mujoco`` is imported inside these functions, never at module level: optiq.envs imports this
# module to set MUJOCO_GL, and importing MuJoCo first would fix its GL backend too early.

TRACK_CAMERA = "track"  # the model camera Gymnasium's locomotion envs define to follow the robot
TRACK_BODY = "torso"


def robot_camera(model: Any, data: Any, default_config: dict[str, Any] | None = None) -> tuple[Any, bool]:
    """The camera a video of this model uses, and whether it follows the robot.

    Gymnasium 1.4's ``rgb_array`` camera is a free camera that stays where the robot started, so a
    robot that moves leaves the frame. Videos use instead, in order:

    1. the model's ``track`` camera when it follows a body (``trackcom``/``track`` mode): Hopper,
       Walker2d, HalfCheetah, Ant and Humanoid define one, fixed to the torso's centre of mass,
       side-on: the view Gymnasium's locomotion videos were designed with;
    2. else a tracking camera on the body named ``torso``, side-on and slightly from above;
    3. else (no locomotion, e.g. InvertedPendulum) Gymnasium's own free camera: the env's
       ``default_config`` (``default_camera_config``) on top of MuJoCo's default view.

    Returns a camera id (an int) or an ``MjvCamera`` for ``mujoco.Renderer.update_scene``.
    """
    import mujoco

    track = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, TRACK_CAMERA)
    following = {int(mujoco.mjtCamLight.mjCAMLIGHT_TRACK), int(mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM)}
    if track >= 0 and int(model.cam_mode[track]) in following:
        return track, True
    torso = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, TRACK_BODY)
    if torso > 0:
        return torso_tracking_camera(model, torso), True
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.fixedcamid = -1
    camera.lookat[:] = np.median(data.geom_xpos, axis=0)  # as Gymnasium's offscreen viewer starts
    camera.distance = model.stat.extent
    for key, value in (default_config or {}).items():
        if key in ("type", "fixedcamid", "trackbodyid"):
            continue  # a free camera: tracking settings mean nothing to it
        if isinstance(value, np.ndarray) or isinstance(value, (list, tuple)):
            getattr(camera, key)[:] = value
        else:
            setattr(camera, key, value)
    return camera, False


def torso_tracking_camera(model: Any, body: int) -> Any:
    """A camera that follows ``body``: side-on (looking along +y), 20 degrees from above."""
    import mujoco

    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    camera.trackbodyid = body
    camera.distance = min(float(model.stat.extent), 4.0)  # Gymnasium's distances: 3 to 4 m
    camera.azimuth = 90.0
    camera.elevation = -20.0
    return camera


def _followed_body(model: Any, camera: Any) -> int:
    """The body whose subtree a tracking camera follows (a ``track``/``trackcom`` camera: its own body)."""
    return int(model.cam_bodyid[camera]) if isinstance(camera, int) else int(camera.trackbodyid)


def _floor_tiles(model: Any) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``(geom, xy position, texture tile size)`` of each axis-aligned plane of the world body."""
    import mujoco

    floors = []
    for geom in range(model.ngeom):
        if model.geom_type[geom] != mujoco.mjtGeom.mjGEOM_PLANE or model.geom_bodyid[geom] != 0:
            continue
        if not np.allclose(model.geom_quat[geom], (1, 0, 0, 0)):
            continue
        size = model.geom_size[geom, :2]
        material = model.geom_matid[geom]
        if material < 0 or model.mat_texid[material].max() < 0:
            tile = np.full(2, 1e-3)  # untextured: any shift looks the same
        elif model.mat_texuniform[material]:
            tile = 1.0 / model.mat_texrepeat[material]
        else:
            tile = 2.0 * size / model.mat_texrepeat[material]  # the texture spans the whole plane
        if np.all(size > 0) and np.all(tile > 0):  # size 0: an infinite plane, drawn everywhere
            floors.append((geom, model.geom_pos[geom, :2].copy(), tile))
    return floors


class RobotCamera:
    """Renders the current state of a MuJoCo env from :func:`robot_camera`'s camera.

    Its own ``mujoco.Renderer`` (not the env's ``render()``): the camera is the video's choice,
    not Gymnasium's, and each renderer makes its GL context current before drawing, so several
    can live side by side in one process. ``fast`` draws no shadows or reflections and no
    multisampling: on 2 CPU cores (software EGL) a 480x360 Hopper frame renders about 4x faster
    (measured 20 -> 82 frames/s), and a gait is as easy to follow.
    """

    def __init__(self, env: Any, width: int = 480, height: int = 360, fast: bool = True):
        import mujoco

        base = env.unwrapped
        self.model, self.data = base.model, base.data
        if fast:
            self.model.vis.quality.shadowsize = 1024
            self.model.vis.quality.offsamples = 0
        # the offscreen buffer must hold the frame (MuJoCo's default is 640x480)
        self.model.vis.global_.offwidth = max(int(self.model.vis.global_.offwidth), width)
        self.model.vis.global_.offheight = max(int(self.model.vis.global_.offheight), height)
        self._renderer = mujoco.Renderer(self.model, height, width)
        if fast:
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        default_config = getattr(getattr(base, "mujoco_renderer", None), "default_cam_config", None)
        self.camera, self.tracking = robot_camera(self.model, self.data, default_config)
        self._followed = _followed_body(self.model, self.camera) if self.tracking else -1
        self._floors = _floor_tiles(self.model) if self._followed >= 0 else []

    def render(self) -> np.ndarray:
        """An (height, width, 3) uint8 frame of the env's current state."""
        self._recentre_floors()
        self._renderer.update_scene(self.data, camera=self.camera)
        return self._renderer.render()

    def _recentre_floors(self) -> None:
        """Draw each floor plane under the robot, moved by whole texture tiles so it looks unmoved.

        A floor is drawn only ``size`` metres out (Hopper-v5: 20 m), and a good policy runs past its
        edge within one episode (Hopper ~25 m, HalfCheetah several hundred). Only the drawn position
        changes (``data.geom_xpos``, which the next physics step recomputes), never the model.
        """
        robot = self.data.subtree_com[self._followed]
        for geom, origin, tile in self._floors:
            self.data.geom_xpos[geom, :2] = origin + np.round((robot[:2] - origin) / tile) * tile

    def close(self) -> None:
        self._renderer.close()


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
