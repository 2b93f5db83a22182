"""Demonstrations from a hand-written controller (``01_collect_demos.py --source scripted``).

A controller is named ``module:function``. The function is a factory called as
``factory(action_space, dt, **params)`` (``params`` from hparams.yml ``scripted.params``)
that returns ``controller(observation, step) -> action`` for one episode's step index.
Open-loop gaits ignore the observation; closed-loop ones use it.

Shipped: :func:`trot_gait`, an open-loop diagonal trot for Ant-v5.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from optiq.errors import OptiqError

Controller = Callable[[np.ndarray, int], np.ndarray]
ControllerFactory = Callable[..., Controller]

# Ant-v5 actuators as (hip, ankle) per leg: 1 front-left, 2 front-right, 3 back-left, 4 back-right.
ANT_LEGS = {1: (2, 3), 2: (4, 5), 3: (6, 7), 4: (0, 1)}
# Ankles of legs 2 and 3 bend the other way (their joint ranges are negative).
ANT_ANKLE_SIGNS = {1: 1.0, 2: -1.0, 3: -1.0, 4: 1.0}
# Diagonal pairs (1, 3) and (2, 4) swing half a cycle apart: a trot.
ANT_TROT_PHASES = {1: 0.0, 3: 0.0, 2: np.pi, 4: np.pi}


def trot_gait(
    action_space: gym.spaces.Box,
    dt: float,
    frequency: float = 1.0,
    hip_amplitude: float = 0.3,
    ankle_amplitude: float = 0.15,
    ankle_phase: float = 0.0,
    ankle_offset: float = 0.0,
    hip_signs: list[float] | tuple[float, ...] = (1.0, 1.0, -1.0, -1.0),
) -> Controller:
    """Open-loop diagonal trot for Ant-v5: one sinusoid per joint, diagonal legs in phase.

    Hip torque of leg ``i`` is ``hip_signs[i] * hip_amplitude * sin(2 pi f t + phase_i)``;
    its ankle is ``sign_i * (ankle_offset + ankle_amplitude * sin(2 pi f t + phase_i +
    ankle_phase))``, so the foot lifts while the hip swings forward.
    """
    if action_space.shape != (8,):
        raise OptiqError(f"trot_gait drives Ant's 8 actuators; this env has {action_space.shape} actions")
    if len(hip_signs) != 4:
        raise OptiqError(f"scripted.params.hip_signs needs 4 values (one per leg), got {list(hip_signs)}")
    low, high = action_space.low, action_space.high

    def controller(observation: np.ndarray, step: int) -> np.ndarray:
        angle = 2.0 * np.pi * frequency * step * dt
        action = np.zeros(8, dtype=np.float32)
        for leg, (hip, ankle) in ANT_LEGS.items():
            phase = angle + ANT_TROT_PHASES[leg]
            action[hip] = hip_signs[leg - 1] * hip_amplitude * np.sin(phase)
            action[ankle] = ANT_ANKLE_SIGNS[leg] * (ankle_offset + ankle_amplitude * np.sin(phase + ankle_phase))
        return np.clip(action, low, high)

    return controller


def load_controller_factory(spec: str) -> ControllerFactory:
    """Import ``module:function``; each failure is one line naming what to fix."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise OptiqError(f"bad --controller '{spec}': expected module:function, e.g. optiq.demos.scripted:trot_gait")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise OptiqError(f"cannot import controller module '{module_name}': {exc} (is it on PYTHONPATH?)") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise OptiqError(f"controller '{spec}': module '{module_name}' has no function '{attribute}'")
    return factory


def make_controller(spec: str, env: gym.Env, params: dict[str, Any] | None = None) -> Controller:
    """Build the controller named ``spec`` for ``env`` with ``params``."""
    factory = load_controller_factory(spec)
    dt = float(getattr(env.unwrapped, "dt", 1.0))
    try:
        return factory(env.action_space, dt, **(params or {}))
    except TypeError as exc:
        raise OptiqError(
            f"controller '{spec}' rejected its parameters {params or {}}: {exc} (fix scripted.params)"
        ) from None


class ScriptedPolicy:
    """An imitation rollout policy (``(obs, state, episode_start) -> (actions, state)``).

    Keeps each sub-env's step index, reset when imitation reports an episode start.
    """

    def __init__(self, controllers: list[Controller], action_space: gym.spaces.Box) -> None:
        self.controllers = controllers
        self.action_space = action_space
        self.steps = np.zeros(len(controllers), dtype=np.int64)

    def __call__(
        self, observations: np.ndarray, state: Any, episode_starts: np.ndarray | None
    ) -> tuple[np.ndarray, None]:
        if episode_starts is not None:
            self.steps[np.asarray(episode_starts, dtype=bool)] = 0
        actions = []
        for i, controller in enumerate(self.controllers):
            action = np.asarray(controller(observations[i], int(self.steps[i])), dtype=np.float32)
            if action.shape != self.action_space.shape or not np.all(np.isfinite(action)):
                raise OptiqError(
                    f"controller returned action of shape {action.shape} (or NaN); the env expects "
                    f"{self.action_space.shape} finite values"
                )
            actions.append(action)
        self.steps += 1
        return np.stack(actions), None
