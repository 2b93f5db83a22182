"""``outputs/pipeline_runs.json``: an append-only record of every pipeline run.

Each append takes a file lock (two run_all processes may finish at once), reads the list,
adds one entry and atomically replaces the file, so a crash at any point leaves either
the old list or the new one, never a truncated file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from filelock import FileLock

from optiq.atomic_io import write_json
from optiq.errors import OptiqError

RUN_LOG = "pipeline_runs.json"


def append_pipeline_run(outputs: str | Path, entry: dict[str, Any], timeout: float = 60.0) -> Path:
    """Append ``entry`` to ``outputs/pipeline_runs.json`` under a lock; return the file's path."""
    path = Path(outputs) / RUN_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=timeout):
        runs = read_pipeline_runs(path)
        runs.append(entry)
        write_json(path, runs)
    return path


def read_pipeline_runs(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise OptiqError(f"corrupt run log {path}: {exc} (move it aside; it is only a record)") from None
    if not isinstance(data, list):
        raise OptiqError(f"corrupt run log {path}: expected a JSON list (move it aside; it is only a record)")
    return data
