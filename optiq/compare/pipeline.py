"""Stage 06 as the scripts run it.

``06_compare/fingerprint.json`` (:func:`compare_fingerprint`) records the methods, the seeds
and the sha256 of every file the comparison read, so run_all redoes it exactly when one of
them changed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from optiq.cli import check_writable
from optiq.compare.methods import DEFAULT_METHODS
from optiq.compare.report import compare
from optiq.compare.results import compare_inputs
from optiq.paths import RunPaths
from optiq.records import (
    file_identity,
    make_fingerprint,
    pick_settings,
    remove_fingerprint,
    run_finished,
    write_fingerprint,
)

console = Console()


def compare_fingerprint(
    config: dict[str, Any],
    paths: RunPaths,
    algo: str,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
) -> dict[str, Any]:
    """What the comparison depends on: env, algorithm, methods, seeds and every input file (by sha256)."""
    settings = pick_settings(config, ["env_id", "obs"])
    settings.update(
        algo=algo, methods=list(methods or DEFAULT_METHODS), seeds=sorted(seeds) if seeds is not None else None
    )
    inputs = {
        os.path.relpath(path, paths.root): file_identity(path) for path in compare_inputs(paths, algo, methods, seeds)
    }
    return make_fingerprint("compare", settings, None, inputs)


def compare_stage(
    config: dict[str, Any],
    paths: RunPaths,
    algo: str,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Stage 06; ``methods`` (``--methods``) picks the rows, None: BC only, BC -> RL and scratch;
    ``seeds`` picks the seeds (None: every seed that was run)."""
    check_writable(paths.compare)
    fingerprint = compare_fingerprint(config, paths, algo, methods, seeds)
    remove_fingerprint(paths.compare)
    summary = compare(paths, config, algo, methods=methods, seeds=seeds)
    write_fingerprint(paths.compare, fingerprint)
    console.print(f"[bold]Verdict[/]: {escape(summary['verdict'])}")  # its "[min, max]" is not markup
    console.print(f"results: {paths.compare / 'results.md'}")
    return summary


def compare_is_complete(folder: Path) -> bool:
    """Stage 06 is done in ``folder``: results.md and results.json written and the run finished."""
    return (
        (folder / "results.md").is_file() and (folder / "results.json").is_file() and run_finished(folder / "run.json")
    )
