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


def test_postfix_names_each_stage_and_the_four_outcomes():
    counts = {"read": 5, "langid_done": 5, "ner_done": 3, "ner_skipped": 1, "stance_done": 2, "written": 2,
              "duplicates_near": 1, "dead_letter_records": 0}
    assert postfix(counts) == "read 5; language 5, NER 4, stance 2; written 2, duplicates 1, dead letters 0"
    assert postfix(dict(counts, feed_polls=3, feeds_failed=1), streaming=True).startswith(
        "polls 3, feeds failed 1; read 5; language 5, NER 4, stance 2;")


def test_streaming_status_line_has_no_total():
    counts = {"read": 4, "feed_polls": 2, "stance_done": 4, "written": 4}
    stream = io.StringIO()
    with LiveProgress(enabled=True, stream=stream, interval=3600, counts=lambda: dict(counts),
                      streaming=True) as bar:
        counts.update(read=9, feed_polls=5, stance_done=9, written=9)
        bar.update()
        assert (bar._bar.n, bar._bar.total) == (5, None)
    assert "polls 3, feeds failed 0; read 5;" in stream.getvalue()


def test_bar_counts_from_zero_for_each_run():
    counts = {"read": 7, "stance_done": 7}  # an earlier run in this process
    stream = io.StringIO()
    with LiveProgress(enabled=True, stream=stream, interval=3600, counts=lambda: dict(counts)) as bar:
        counts.update(read=10, stance_done=8)
        bar.update()
        assert (bar._bar.n, bar._bar.total) == (1, 3)
    assert "read 3; language 0, NER 0, stance 1; written 0" in stream.getvalue()


def test_not_wanted_off_a_terminal_or_when_quiet():
    assert not LiveProgress.wanted(quiet=False, stream=io.StringIO())

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert LiveProgress.wanted(quiet=False, stream=Tty()) and not LiveProgress.wanted(quiet=True, stream=Tty())
