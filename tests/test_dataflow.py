"""Dataflow: the real graph builds, validates and serialises with DataflowRunner options (--dry_run=True, no
job submitted, nothing leaves the machine); bad Dataflow options are refused up front with the fix."""
from __future__ import annotations

import pytest

from tests.conftest import run_cli

pytest.importorskip("apache_beam.io.gcp.gcsio", reason="apache-beam[gcp] (the `dataflow` extra) is not installed")

DATAFLOW = ["--runner", "DataflowRunner", "--project", "newsbeam-test", "--region", "europe-west1",
            "--temp_location", "gs://newsbeam-test-bucket/tmp", "--staging_location", "gs://newsbeam-test-bucket/stage"]


def test_graph_builds_and_pickles_for_dataflow():
    proc = run_cli(["run", "--input", "seeds/*.txt", "--output", "gs://newsbeam-test-bucket/out", "--targets",
                    "Armenia", *DATAFLOW, "--dry_run=True", "--setup_file", "./setup.py"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dry run: the graph was built" in proc.stdout


@pytest.mark.parametrize("drop, message", [("--temp_location", "needs --temp_location gs://"),
                                           ("--staging_location", "needs --staging_location gs://")])
def test_missing_gcs_locations_are_clear_errors(drop, message):
    i = DATAFLOW.index(drop)
    args = DATAFLOW[:i] + DATAFLOW[i + 2:]
    proc = run_cli(["run", "--input", "seeds/*.txt", "--output", "gs://b/out", *args, "--dry_run=True"])
    assert proc.returncode == 2 and message in proc.stderr


def test_local_output_is_refused_on_dataflow(tmp_path):
    proc = run_cli(["run", "--input", "seeds/*.txt", "--output", str(tmp_path), *DATAFLOW, "--dry_run=True"])
    assert proc.returncode == 2 and "must be a cloud path" in proc.stderr
