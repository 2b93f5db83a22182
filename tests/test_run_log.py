"""outputs/pipeline_runs.json: append-only, safe with concurrent writers."""

import json
import multiprocessing as mp

from optiq.run_log import append_pipeline_run, read_pipeline_runs


def _writer(outputs: str, worker: int, n: int) -> None:
    for i in range(n):
        append_pipeline_run(outputs, {"worker": worker, "i": i})


def test_two_processes_appending_at_once_lose_nothing(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 25)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    runs = json.loads((tmp_path / "pipeline_runs.json").read_text())
    assert len(runs) == 50
    for worker in range(2):
        assert [r["i"] for r in runs if r["worker"] == worker] == list(range(25))  # order kept per writer


def test_existing_entries_are_never_rewritten(tmp_path):
    append_pipeline_run(tmp_path, {"n": 1})
    first = read_pipeline_runs(tmp_path / "pipeline_runs.json")
    append_pipeline_run(tmp_path, {"n": 2})
    assert read_pipeline_runs(tmp_path / "pipeline_runs.json")[:1] == first
