"""What a backfill owns on a day: the ids backfills wrote there, kept in `<root>/_state/backfilled/dt=DAY.ids`.

Why: a backfill rebuilds the days of its range from its input, but an article a plain run wrote on one of those
days is not its to remove (its input may simply not hold it). The day's file alone cannot tell who wrote a line,
so each backfill records the ids it wrote per day; a later backfill replaces exactly those (and the ones its own
input brings again) and keeps every other line. An id first written by a plain run stays the plain run's.
Outputs written before this record existed have none: their lines are all kept (nothing is lost).
"""
from __future__ import annotations

from typing import Iterable

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from .common import counter
from .files import write_atomically

OWNED_DIR = ("_state", "backfilled")


def owned_file(root: str, day: str) -> str:
    return "/".join([root.rstrip("/"), *OWNED_DIR, f"dt={day}.ids"])


def read_owned(root: str, day: str) -> set[str]:
    """The ids backfills wrote on `day` (empty when none did, or before this record existed)."""
    path = owned_file(root, day)
    if not FileSystems.exists(path):
        return set()
    with FileSystems.open(path, compression_type="uncompressed") as fh:
        return {line for line in fh.read().decode("utf-8").split("\n") if line}


def owned_days(root: str, since: str, until: str) -> list[str]:
    """The days in [since, until] where backfills wrote (listed once, when the graph is built)."""
    pattern = "/".join([root.rstrip("/"), *OWNED_DIR, "dt=*.ids"])
    found = FileSystems.match([pattern])[0].metadata_list
    days = (m.path.rsplit("/", 1)[-1][len("dt="):-len(".ids")] for m in found)
    return sorted(d for d in days if since <= d <= until)


def write_owned(root: str, day: str, ids: Iterable[str]) -> None:
    write_atomically(owned_file(root, day), sorted(set(ids)))


def replace_owned(old_ids: Iterable[str], new_ids: Iterable[str], owned_before: set[str]
                  ) -> tuple[set[str], set[str], set[str]]:
    """(old ids whose lines stay, ids this backfill owns after writing, old ids it removes) for one day.

    Lines stay unless a backfill owns them (they are replaced by this input's version, or removed if it lacks
    them); this run's ids become its own, except those a plain run wrote first."""
    old, new = set(old_ids), set(new_ids)
    plain = old - owned_before
    return plain - new, new - plain, (old & owned_before) - new


class NotReopened(beam.DoFn):
    """Index rows of a backfill's range that backfills own are left out of its dedup: they are decided again
    with its input, so which copy of a near duplicate is kept does not depend on the order of the ranges.
    Rows of plain runs (and of days outside the range) are kept, and never re-decided."""

    def __init__(self, root: str, since: str, until: str):
        self.root, self.since, self.until = root, since, until
        self.owned: dict[str, set[str]] = {}

    def process(self, row: dict):
        day = row["published"]
        if self.since <= day <= self.until:
            if day not in self.owned:
                self.owned[day] = read_owned(self.root, day)
            if row["id"] in self.owned[day]:
                counter("backfill_reopened").inc()
                return
        yield row
