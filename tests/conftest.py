"""Shared fixtures: tiny configs and synthetic demos so unit tests run in seconds (helpers: tests/helpers.py)."""

from __future__ import annotations

from typing import Any

import pytest
from imitation.data import types

from optiq.config import load_env_config
from optiq.rendering import configure_mujoco_gl
from tests.helpers import TINY, synthetic_trajectories

# Tests make envs with gym.make too (not only through optiq.envs): pick the headless GL backend
# before any of them imports MuJoCo, as optiq.envs does before its first env.
configure_mujoco_gl()


@pytest.fixture
def tiny_config() -> dict[str, Any]:
    return load_env_config("Hopper-v5", "quick", overrides=TINY)


@pytest.fixture
def synthetic_demos() -> list[types.TrajectoryWithRew]:
    return synthetic_trajectories()
