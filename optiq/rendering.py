"""Headless rendering backend selection for MuJoCo.

MuJoCo picks its OpenGL backend from ``MUJOCO_GL`` at import time, so this runs when
``optiq`` is imported. EGL (GPU or Mesa) is preferred, OSMesa (software) is the fallback.
A user's own ``MUJOCO_GL`` is never overridden.
"""

from __future__ import annotations

import ctypes.util
import os


def available_gl_backends() -> list[str]:
    """Headless backends whose shared libraries can be found on this machine."""
    found = []
    if ctypes.util.find_library("EGL"):
        found.append("egl")
    if ctypes.util.find_library("OSMesa"):
        found.append("osmesa")
    return found


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
