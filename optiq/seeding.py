"""Seeding in one place: python, numpy, torch, and (via SB3) env resets and action spaces."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from optiq.errors import OptiqError

THREADS_ENV = "OPTIQ_TORCH_THREADS"
# Thread-pool sizes of the numerical libraries a child process may load besides torch.
BLAS_THREAD_ENVS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def requested_threads() -> int:
    """``OPTIQ_TORCH_THREADS`` (default 1); a value that is not a positive integer is a one-line error."""
    text = os.environ.get(THREADS_ENV, "1").strip()
    try:
        threads = int(text)
    except ValueError:
        threads = 0
    if threads < 1:
        raise OptiqError(f"{THREADS_ENV}={text!r}: must be a positive integer (threads per process; default 1)")
    return threads


def threads_per_process(concurrent: int = 1, cores: int | None = None) -> int:
    """Intra-op threads for each of ``concurrent`` processes running side by side.

    ``OPTIQ_TORCH_THREADS`` (default 1), capped at this process's cores divided by
    ``concurrent`` (at least 1), so processes run together never ask for more threads than
    there are cores: torch's default (one thread per core in every process) made stock BC
    14x slower per epoch next to fine-tuning jobs than with one thread.
    """
    cores = cores or available_cores()
    return max(1, min(requested_threads(), cores // max(1, concurrent)))


def child_thread_env(concurrent: int, cores: int | None = None) -> dict[str, str]:
    """Environment variables for a child process run beside ``concurrent - 1`` others: its torch threads
    (``OPTIQ_TORCH_THREADS``, read by :func:`configure_torch_threads`) and its OpenMP/BLAS pools."""
    threads = str(threads_per_process(concurrent, cores))
    return {THREADS_ENV: threads, **{name: threads for name in BLAS_THREAD_ENVS}}


def configure_torch_threads(concurrent: int = 1) -> int:
    """Use one intra-op thread unless ``OPTIQ_TORCH_THREADS`` says otherwise (see :func:`threads_per_process`).

    Small MLP policies on CPU run fastest single-threaded (measured ~40 % faster PPO on
    Hopper-v5 with 2 cores), and a fixed thread count keeps runs bit-reproducible (a float
    reduction split over more threads adds up in another order). run_all gives every child
    process its share in ``OPTIQ_TORCH_THREADS`` (:func:`child_thread_env`).
    """
    threads = threads_per_process(concurrent)
    torch.set_num_threads(threads)
    return threads


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy and torch (all devices); ask CUDA for deterministic kernels.

    Env resets and action spaces are seeded by SB3/gymnasium from the same seed (``seed=``
    of the model and ``make_vec_env``). On CPU the kernels optiq uses are deterministic
    already (tests/test_bc_transfer.py checks bit-identical weights), and
    ``use_deterministic_algorithms`` would import torch's compiler stack (~2.5 s per
    process), so it is only switched on where CUDA is present.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic and torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    configure_torch_threads()
