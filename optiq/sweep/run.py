"""Run a study: every env's stage jobs on one backend, then the cross-env report.

The default backend is this machine's process pool (as run_all); ``ray`` sends each job to a
Ray cluster as a task. Both run the same commands with the same seeds and thread counts, so
they give the same results. A rerun skips finished jobs and resumes unfinished ones.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console

from optiq.pipeline import LocalProcess, run_steps
from optiq.records import RunRecord
from optiq.seeding import available_cores, child_thread_env
from optiq.sweep.backends import RayLauncher
from optiq.sweep.graph import env_runs, study_steps
from optiq.sweep.spec import SweepSpec
from optiq.sweep.study import EnvResults, write_study

console = Console()


def study_dir(outputs: Path, spec: SweepSpec) -> Path:
    return Path(outputs) / "study" / spec.run_name


def run_sweep(
    spec: SweepSpec,
    outputs: Path,
    backend: str = "local",
    address: str | None = None,
    jobs: int | None = None,
    cpus_per_job: float = 1.0,
    gpus_per_job: float | None = None,
    progress_bar: bool = True,
) -> dict[str, Any]:
    """Run (or resume) the study and write ``outputs/study/<run-name>/``; return the study summary.

    ``jobs``: jobs at once (default: this machine's cores, or what fits on the Ray cluster).
    ``gpus_per_job`` (Ray): default 1 with ``device: cuda``, else 0.
    """
    runs = env_runs(spec, Path(outputs))  # every env's settings checked before any job starts
    out_dir = study_dir(outputs, spec)
    spec_json = {**asdict(spec), "hparams": str(spec.hparams)}
    record = RunRecord("sweep", out_dir, None, None, spec=spec_json, backend=backend, address=address)
    steps = study_steps(runs)
    if backend == "ray":
        if gpus_per_job is None:
            gpus_per_job = 1.0 if spec.device.startswith("cuda") else 0.0
        launcher = RayLauncher(address, num_cpus=cpus_per_job, num_gpus=gpus_per_job)
        parallel = jobs or launcher.slots()
        # Threads as a local job alone on its share of cores: same count as the local pool gives, same floats.
        job_env = child_thread_env(1, cores=max(1, int(cpus_per_job)))
        console.print(f"Ray cluster: {parallel} job(s) at a time, {cpus_per_job:g} CPU / {gpus_per_job:g} GPU each")
        run_steps(steps, parallel, progress_bar, launch=launcher, job_env=job_env)
    else:
        parallel = jobs or available_cores()
        run_steps(steps, parallel, progress_bar, launch=LocalProcess)
    envs = [EnvResults(r.entry.env_id, r.paths.compare / "results.json", r.paths.compare / "report.html") for r in runs]
    summary = write_study(envs, list(spec.seeds), out_dir)
    for name in ("results.json", "results.md", "index.html", "performance_profile.png"):
        record.add_artifact(out_dir / name)
    record.finish()
    console.print(f"study report: {out_dir / 'results.md'} and {out_dir / 'index.html'}")
    return summary
