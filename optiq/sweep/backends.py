"""Where a sweep's stage jobs run: this machine's process pool (default) or a Ray cluster.

Either way a job is the same stage-script command run_all builds; it reads and writes the same
``outputs/<env>/<run-name>/`` folders, so every node must see them at the same path (a shared
filesystem) and have optiq installed at the same path (e.g. the same container image).

On Ray each job is one task (``num_cpus`` / ``num_gpus`` per job). A task whose worker dies is
retried by Ray (``max_retries``); the stage script then resumes from its last checkpoint, as a
rerun of run_all does, because the retry drops ``--restart`` (only the first attempt of a stale
run starts over) and appends to the job's log instead of truncating it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from optiq.errors import OptiqError
from optiq.extras import require
from optiq.pipeline import Job, LocalProcess, RunningJob

BACKENDS = ("local", "ray")
PR_SET_PDEATHSIG = 1


try:  # loaded here, not in the forked child (no dlopen between fork and exec)
    _PRCTL: Any = ctypes.CDLL("libc.so.6", use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: an orphaned job is left to finish on its own
    _PRCTL = None


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL when the Ray worker that started it dies (Linux)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


def attempt_marker(job: Job) -> Path:
    """A file that exists while an attempt of ``job`` runs: a retry finds it and resumes instead of restarting."""
    return job.log.with_name(job.log.name + ".attempt")


def run_stage_job(command: list[str], log_path: str, extra_env: dict[str, str], marker_path: str) -> int:
    """Run one stage script on this node (the body of a Ray task); return its exit code."""
    marker, log = Path(marker_path), Path(log_path)
    retry = marker.exists()
    if retry:  # the previous attempt's worker died: resume its checkpoint, never wipe it
        command = [part for part in command if part != "--restart"]
    log.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))
    if Path(command[0]).name.startswith("python"):
        command = [sys.executable, *command[1:]]  # this node's interpreter
    with open(log, "ab" if retry else "wb") as out:
        if retry:
            out.write(b"\n[optiq sweep] the previous attempt's worker died; retrying (resumes its checkpoint)\n")
            out.flush()
        code = subprocess.call(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **extra_env},
            preexec_fn=_die_with_parent,
        )
    marker.unlink(missing_ok=True)
    return code


class RayJob:
    """A job submitted as a Ray task; ``poll()`` turns a Ray failure into a failed exit code and a log line."""

    def __init__(self, ray: Any, ref: Any, job: Job):
        self._ray, self._ref, self._job = ray, ref, job

    def poll(self) -> int | None:
        ready, _ = self._ray.wait([self._ref], timeout=0)
        if not ready:
            return None
        try:
            return int(self._ray.get(self._ref))
        except self._ray.exceptions.RayError as exc:
            with open(self._job.log, "a") as log:
                log.write(f"\n[optiq sweep] Ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0]}\n")
            return 1

    def terminate(self) -> None:
        self._ray.cancel(self._ref, force=True)


class RayLauncher:
    """Submits each job as a Ray task with its CPU/GPU request; connects to (or starts) the cluster once."""

    def __init__(
        self,
        address: str | None = None,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        max_retries: int = 3,
    ):
        self.ray = require("ray", "--backend ray")
        if not self.ray.is_initialized():
            try:  # None or "local": a fresh single-node cluster; "auto" or "ray://host:port": an existing one
                self.ray.init(address=None if address in (None, "local") else address, log_to_driver=False)
            except ConnectionError as exc:
                raise OptiqError(
                    f"cannot reach the Ray cluster at {address}: {exc} (start one with `ray start --head`, "
                    "or leave out --address to start a local one)"
                ) from None
        self.num_cpus, self.num_gpus = float(num_cpus), float(num_gpus)
        self._task = self.ray.remote(run_stage_job).options(
            num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=max_retries, retry_exceptions=False
        )

    def slots(self) -> int:
        """Jobs that fit on the cluster at once (its CPUs, or GPUs, divided by one job's request)."""
        resources = self.ray.cluster_resources()
        fits = [int(resources.get("CPU", 1) // self.num_cpus)] if self.num_cpus > 0 else []
        if self.num_gpus > 0:
            fits.append(int(resources.get("GPU", 0) // self.num_gpus))
        return max(1, min(fits)) if fits else 1

    def __call__(self, job: Job, extra_env: dict[str, str]) -> RunningJob:
        marker = attempt_marker(job)
        marker.unlink(missing_ok=True)  # a leftover from a crashed sweep is not a retry of this one
        ref = self._task.remote(job.command, str(job.log), extra_env, str(marker))
        return RayJob(self.ray, ref, job)


def local_launcher() -> type[LocalProcess]:
    return LocalProcess
