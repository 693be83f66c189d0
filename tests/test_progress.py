"""Progress numbers from the stage tallies (pure), and the bar fed by them into a stream."""
from __future__ import annotations

import io

from pipeline.progress import LiveProgress, postfix, progress_numbers


def test_finished_counts_every_outcome_and_never_exceeds_read():
    counts = {"read": 10, "stance_done": 4, "stance_skipped": 1, "duplicates_exact": 1, "duplicates_near": 1,
              "dead_letter_records": 2, "out_of_range": 0}
    assert progress_numbers(counts) == (9, 10)
    assert progress_numbers(dict(counts, dead_letter_records=9)) == (10, 10)
    assert progress_numbers({}) == (0, 0)


def test_postfix_names_the_four_numbers():
    assert postfix({"read": 5, "written": 3, "duplicates_near": 1, "dead_letter_records": 1}) == \
        "read 5, written 3, duplicates 1, dead letters 1"


def test_bar_counts_from_zero_for_each_run():
    counts = {"read": 7, "stance_done": 7}  # an earlier run in this process
    stream = io.StringIO()
    with LiveProgress(enabled=True, stream=stream, interval=3600, counts=lambda: dict(counts)) as bar:
        counts.update(read=10, stance_done=8)
        bar.update()
        assert (bar._bar.n, bar._bar.total) == (1, 3)
    assert "read 3, written 0" in stream.getvalue()


def test_not_wanted_off_a_terminal_or_when_quiet():
    assert not LiveProgress.wanted(quiet=False, stream=io.StringIO())

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert LiveProgress.wanted(quiet=False, stream=Tty()) and not LiveProgress.wanted(quiet=True, stream=Tty())
