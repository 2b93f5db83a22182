"""Shared fixtures: tiny configs and synthetic demos so unit tests run in seconds (helpers: tests/helpers.py)."""

from __future__ import annotations

from typing import Any

import pytest
from imitation.data import types

import optiq  # noqa: F401  (sets MUJOCO_GL before any env is made)
from optiq.config import load_env_config
from tests.helpers import TINY, synthetic_trajectories


@pytest.fixture
def tiny_config() -> dict[str, Any]:
    return load_env_config("Hopper-v5", "quick", overrides=TINY)


@pytest.fixture
def synthetic_demos() -> list[types.TrajectoryWithRew]:
    return synthetic_trajectories()
