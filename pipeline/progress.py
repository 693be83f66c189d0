"""Live progress of a local run on stderr (tqdm): records read, written, duplicates, dead letters, articles/s,
elapsed, and a bar with an ETA once the number of records is known.

The stages count into Beam Metrics, which a local runner only reports after the run; they also keep a
process-local tally (transforms.common.local_counts) that a thread here reads twice a second. So progress shows
for runners that execute in this process (DirectRunner in_memory, the default); with worker processes the bar
shows elapsed time only. A streaming run shows a status line (polls, failed feeds, new entries, each stage,
written) instead of a bar, since it has no end. Shown only on a terminal, and never with --quiet: a cron job's
log stays clean.
"""
from __future__ import annotations

import sys
import threading
from typing import Callable, Mapping, TextIO

from transforms.common import local_counts

# an article is through the pipeline once stance has handled it (or skipped it); a record is also through once
# it is a duplicate, a dead letter, or outside a backfill's range
FINISHED = ("stance_done", "stance_skipped", "duplicates_exact", "duplicates_near", "dead_letter_records",
            "out_of_range")


def progress_numbers(counts: Mapping[str, int]) -> tuple[int, int]:
    """(records finished, records read) from the stage tallies; finished never exceeds read (a record that is
    dead-lettered after stance would count twice)."""
    read = counts.get("read", 0)
    return min(sum(counts.get(k, 0) for k in FINISHED), read), read


def stage_counts(counts: Mapping[str, int]) -> str:
    """How far the records are through the stages: while the models run, the finished count alone stands still
    for minutes, so each stage says how many records it has handled (done or skipped with its reason)."""
    ner = counts.get("ner_done", 0) + counts.get("ner_skipped", 0)
    stance = counts.get("stance_done", 0) + counts.get("stance_skipped", 0)
    return f"language {counts.get('langid_done', 0)}, NER {ner}, stance {stance}"


def postfix(counts: Mapping[str, int], streaming: bool = False) -> str:
    """The bar's text: (streaming: feed polls and failures,) the stages, then the four outcome numbers."""
    dead = counts.get("dead_letter_records", 0)
    dups = counts.get("duplicates_exact", 0) + counts.get("duplicates_near", 0)
    polls = (f"polls {counts.get('feed_polls', 0)}, feeds failed {counts.get('feeds_failed', 0)}; "
             if streaming else "")
    return (f"{polls}read {counts.get('read', 0)}; {stage_counts(counts)}; written {counts.get('written', 0)}, "
            f"duplicates {dups}, dead letters {dead}")


class LiveProgress:
    """A tqdm bar fed from the stage tallies by a daemon thread; a context manager around `p.run()`."""

    def __init__(self, enabled: bool, stream: TextIO | None = None, interval: float = 0.5,
                 counts: Callable[[], Mapping[str, int]] = local_counts, streaming: bool = False):
        """streaming: a status line with no total (polls, new entries, stages, written) instead of a bar."""
        self.stream = stream or sys.stderr
        self.enabled, self.streaming = enabled, streaming
        self.interval = interval
        self.counts = counts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar = None
        self._base: Mapping[str, int] = {}

    @staticmethod
    def wanted(quiet: bool, stream: TextIO | None = None) -> bool:
        stream = stream or sys.stderr
        return not quiet and hasattr(stream, "isatty") and stream.isatty()

    def _delta(self) -> dict[str, int]:
        now = self.counts()
        return {k: v - self._base.get(k, 0) for k, v in now.items()}

    def update(self) -> None:
        counts = self._delta()
        done, read = progress_numbers(counts)
        bar = self._bar
        if read and bar.total != read and not self.streaming:
            bar.total = read
        bar.n = done
        bar.set_postfix_str(postfix(counts, self.streaming), refresh=False)
        bar.refresh()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.update()

    def __enter__(self) -> "LiveProgress":
        if not self.enabled:
            return self
        from tqdm import tqdm

        self._base = dict(self.counts())  # an earlier run in this process (tests, newsbeam.run) starts at zero
        self._bar = tqdm(total=None, desc="newsbeam", unit=" records", file=self.stream, dynamic_ncols=True,
                         leave=False, mininterval=0)
        self._thread = threading.Thread(target=self._loop, name="newsbeam-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self.update()
        self._bar.close()
