"""What a person at a terminal sees: a streaming run's status line, and --verbose without Beam's chatter.

The CLI runs in a child process whose stderr is a real pseudo-terminal (progress is shown only on a terminal),
against a real local feed server.
"""
from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT
from tests.feed_server import FeedServer, Route
from tests.terminal import run_on_a_terminal
from tests.test_streaming import item, rss


def test_a_streaming_run_on_a_terminal_shows_polls_stages_and_outcomes(tmp_path):
    with FeedServer() as srv:
        url = srv.add("/wire.xml", Route(body=rss("Wire", [
            item("a1", "Talks resume", "Armenia and Azerbaijan resumed talks in Brussels on Monday."),
            item("a2", "Rates on hold", "The central bank kept its main interest rate unchanged on Thursday.")])))
        code, stdout, terminal = run_on_a_terminal(
            [sys.executable, "-m", "pipeline.cli", "run", "--streaming", "--feeds", url, "--output", str(tmp_path / "out"), "--skip-models",
             "--poll-interval", "1", "--stop-after", "4", "--window-seconds", "300"])
    assert code == 0, stdout + terminal
    lines = re.findall(r"polls (\d+), feeds failed (\d+); read (\d+); language \d+, NER \d+, stance \d+; "
                       r"written \d+, duplicates \d+, dead letters \d+", terminal)
    assert lines, repr(terminal)
    assert max(int(polls) for polls, _, _ in lines) >= 1 and max(int(read) for _, _, read in lines) == 2
    assert "read 2, written 2" in stdout


def test_verbose_shows_newsbeam_counters_without_beam_info_lines(tmp_path):
    seed = ROOT / "seeds" / "armenia_azerbaijan_ceasefire.txt"
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--input", str(seed), "--output",
                           str(tmp_path / "out"), "--skip-models", "--verbose"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stages:" in proc.stdout  # what --verbose adds: the stage counters
    beam_info = [line for line in proc.stderr.splitlines() if line.startswith("INFO") and "newsbeam" not in line]
    assert not beam_info, beam_info[:5]
