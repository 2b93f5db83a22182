"""Stage 06 as the scripts run it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console

from optiq.cli import check_writable
from optiq.compare.report import compare
from optiq.paths import RunPaths

console = Console()


def compare_stage(
    config: dict[str, Any], paths: RunPaths, algo: str, methods: Sequence[str] | None = None
) -> dict[str, Any]:
    """Stage 06; ``methods`` (``--methods``) picks the rows, None: BC only, BC -> RL and scratch."""
    check_writable(paths.compare)
    summary = compare(paths, config, algo, methods=methods)
    console.print(f"[bold]Verdict[/]: {summary['verdict']}")
    console.print(f"results: {paths.compare / 'results.md'}")
    return summary
