"""Shared fixtures: the repository root, the shared corpora (tests that need them skip when absent), and one
end-to-end CLI run over seeds/ reused by several tests."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Property tests explore new examples on every local run; in CI (CI=true) they are derandomised, so a landing
# never depends on a lucky draw (what local exploration finds becomes a fix and a fixed example).
from hypothesis import settings as _hyp_settings  # noqa: E402

_hyp_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    _hyp_settings.load_profile("ci")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    from modeling.training.corpora import shared_data_dir

    path = shared_data_dir()
    if not (path / "ner").is_dir():
        pytest.skip(f"shared corpora not found at {path} (../shared/data beside the project root, or "
                    f"$NEWSBEAM_SHARED_DATA); these tests read real third-party data in place")
    return path


def run_cli(args: list[str], cwd: Path = ROOT, timeout: int = 3600) -> subprocess.CompletedProcess:
    """Run the installed CLI in a subprocess, exactly as a user would."""
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_output(out: Path) -> dict:
    articles = []
    for f in sorted(out.glob("dt=*/articles-*.jsonl")):
        articles += read_jsonl(f)
    return {"articles": articles, "duplicates": read_side(out, "duplicates"), "dead": read_side(out, "dead_letter")}


def read_side(side_root: Path, kind: str) -> list[dict]:
    """The duplicates or dead letters of a batch run (side_root = the output root) or a backfill range: every
    shard, found through pipeline.layout."""
    from pipeline.layout import side_files

    return [r for path in side_files(str(side_root), kind) for r in read_jsonl(Path(path))]


@pytest.fixture(scope="session")
def seeds_run(tmp_path_factory):
    """`newsbeam run` over every seed file (as `make run`: JSONL and Parquet), once per test session."""
    out = tmp_path_factory.mktemp("seeds_out")
    proc = run_cli(["run", "--input", "seeds/*.txt", "seeds/*.jsonl", "seeds/*.xml", "--output", str(out),
                    "--targets", "Armenia", "Azerbaijan", "--format", "both",  # as `make run`
                    "--verbose"])  # --verbose: the stage counters too
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"out": out, "stdout": proc.stdout, "log": proc.stderr, **read_output(out)}


def beam_pipeline():
    """A TestPipeline on the FnApiRunner (what DirectRunner runs batch on), skipping the Prism download try."""
    from apache_beam.testing.test_pipeline import TestPipeline

    return TestPipeline(runner="FnApiRunner")
