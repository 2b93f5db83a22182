"""V-trace targets (Espeholt et al., 2018) and discounted returns for demonstration segments.

Given one episode of behaviour data with log importance ratios log(pi/mu), rewards and
value estimates, V-trace returns value targets ``vs`` and policy-gradient advantages with
the ratios truncated at ``rho_bar`` (the TD errors and advantages) and ``c_bar`` (the
trace), so a single large ratio cannot blow up the update.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VTraceResult:
    vs: np.ndarray  # value targets, shape (T,)
    pg_advantages: np.ndarray  # rho_t * (r_t + gamma * vs_{t+1} - V(x_t)), shape (T,)
    rhos: np.ndarray  # min(rho_bar, pi/mu)
    cs: np.ndarray  # min(c_bar, pi/mu)


def vtrace(
    log_rhos: np.ndarray,
    rewards: np.ndarray,
    values: np.ndarray,
    bootstrap_value: float,
    gamma: float,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
) -> VTraceResult:
    """V-trace for one episode segment of length T (``bootstrap_value`` = V(x_T), 0 if terminal)."""
    log_rhos = np.asarray(log_rhos, dtype=np.float64)
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    ratios = np.exp(np.clip(log_rhos, -20.0, 20.0))
    rhos = np.minimum(rho_bar, ratios)
    cs = np.minimum(c_bar, ratios)
    next_values = np.append(values[1:], bootstrap_value)
    deltas = rhos * (rewards + gamma * next_values - values)
    vs_minus_v = np.zeros_like(values)
    acc = 0.0
    for t in reversed(range(len(values))):
        acc = deltas[t] + gamma * cs[t] * acc
        vs_minus_v[t] = acc
    vs = values + vs_minus_v
    next_vs = np.append(vs[1:], bootstrap_value)
    pg_advantages = rhos * (rewards + gamma * next_vs - values)
    return VTraceResult(vs, pg_advantages, rhos, cs)


def discounted_returns(rewards: np.ndarray, bootstrap_value: float, gamma: float) -> np.ndarray:
    """Return-to-go of every step of one episode segment: sum_k gamma^k r_{t+k} + gamma^(T-t) V(x_T).

    ``bootstrap_value`` is 0 for an episode that terminated, V(x_T) for one cut by a time limit.
    """
    returns = np.zeros(len(rewards), dtype=np.float64)
    acc = float(bootstrap_value)
    for t in reversed(range(len(rewards))):
        acc = float(rewards[t]) + gamma * acc
        returns[t] = acc
    return returns
