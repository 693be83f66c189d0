"""Runner portability, proven: the same pipeline gives identical outputs (after sorting) and identical Metrics
counts on the in-memory local runner, the multi-process local runner with 2 workers, and PortableRunner with the
embedded job server and the LOOPBACK environment."""
from __future__ import annotations

import re

import pytest

from tests.conftest import read_output, run_cli

SEEDS = ["seeds/*.txt", "seeds/*.jsonl", "seeds/*.xml"]
RUNNERS = {
    "multi_processing": ["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"],
    "portable_loopback": ["--runner", "PortableRunner", "--job_endpoint", "embed", "--environment_type", "LOOPBACK"],
}


def _counters(stdout: str) -> dict[str, int]:
    """Every Beam counter of the run's summary: the totals line and the per-stage line (all of namespace
    newsbeam: parse, langid, dedup incl. index shards/rows, NER, stance, entities, ...)."""
    lines = stdout.splitlines()
    i = next(i for i, l in enumerate(lines) if l.startswith("newsbeam summary"))
    counters = dict(re.findall(r"([\w-]+) (\d+)", lines[i].split(":", 1)[1]))
    for line in lines[i + 1:]:  # the per-stage line (the summary is run with --verbose)
        if line.strip().startswith("stages:"):
            counters.update(re.findall(r"([\w-]+) (\d+)", line.split(":", 1)[1]))
    return {k: int(v) for k, v in counters.items()}


def _comparable(res: dict) -> dict:
    return {k: sorted(res[k], key=lambda r: (r.get("id") or "", r.get("input_ref", ""))) for k in
            ("articles", "duplicates", "dead")}


@pytest.mark.parametrize("name", sorted(RUNNERS))
def test_same_output_and_counts_on_every_runner(seeds_run, tmp_path, name):
    out = tmp_path / name
    proc = run_cli(["run", "--input", *SEEDS, "--output", str(out), "--targets", "Armenia", "Azerbaijan",
                    "--verbose", *RUNNERS[name]])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reference = _counters(seeds_run["stdout"])
    assert len(reference) > 4 and reference["read"] > 0  # the per-stage counters are compared too
    assert _counters(proc.stdout) == reference
    assert _comparable(read_output(out)) == _comparable(seeds_run)
