"""What a backfill owns on a day: the ids backfills wrote there, kept per shard of the day's articles in
`<root>/_state/backfilled/dt=DAY/articles-SSSSS-of-NNNNN.ids` (the shard of pipeline.layout.article_shard).

Why: a backfill rebuilds the days of its range from its input, but an article a plain run wrote on one of those
days is not its to remove (its input may simply not hold it). The day's files alone cannot tell who wrote a line,
so each backfill records the ids it wrote; a later backfill replaces exactly those (and the ones its own input
brings again) and keeps every other line. An id first written by a plain run stays the plain run's.
Outputs written before this record existed have none: their lines are all kept (nothing is lost).

Why per shard: the shards of one day are written by different workers at once, and each rewrites its own record;
one file per day would be rewritten by all of them, the last rename winning. A day's ownership is the union of
its files; `dt=DAY.ids` (one file per day, written before days were sharded) and files of another shard count
are read as part of it, split into the shards when the day is next rewritten, and then removed.
"""
from __future__ import annotations

import re
from typing import Callable, Iterable

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from .common import counter
from .files import write_atomically

OWNED_DIR = ("_state", "backfilled")
_SHARD_FILE = re.compile(r"articles-(\d{5})-of-(\d{5})\.ids")


def _owned_root(root: str) -> str:
    return "/".join([root.rstrip("/"), *OWNED_DIR])


def owned_file(root: str, day: str, shard: int, shards: int) -> str:
    """The ids backfills wrote in one shard of `day`."""
    return f"{_owned_root(root)}/dt={day}/articles-{shard:05d}-of-{shards:05d}.ids"


def legacy_owned_file(root: str, day: str) -> str:
    """The one file per day of outputs written before days were sharded (read, and migrated)."""
    return f"{_owned_root(root)}/dt={day}.ids"


def owned_shard(path: str, shards: int) -> int | None:
    """The shard an ownership file is of, None if it is of another layout (the day's single file, another count)."""
    found = _SHARD_FILE.fullmatch(path.rsplit("/", 1)[-1])
    return int(found[1]) if found and int(found[2]) == shards else None


def day_owned_files(root: str, day: str) -> list[str]:
    """Every ownership file of `day`, sorted: its shards' and the older layout's."""
    patterns = [f"{_owned_root(root)}/dt={day}/*.ids", legacy_owned_file(root, day)]
    return sorted(m.path for result in FileSystems.match(patterns) for m in result.metadata_list)


def read_ids(paths: Iterable[str], where: Callable[[str], bool] | None = None) -> set[str]:
    """The ids listed in these files (those `where` accepts), a missing file listing none."""
    ids: set[str] = set()
    for path in paths:
        if not FileSystems.exists(path):
            continue
        with FileSystems.open(path, compression_type="uncompressed") as fh:
            ids.update(line for line in fh.read().decode("utf-8").split("\n") if line and (where is None or where(line)))
    return ids


def read_owned(root: str, day: str) -> set[str]:
    """The ids backfills wrote on `day`, every shard (empty when none did, or before this record existed)."""
    return read_ids(day_owned_files(root, day))


def owned_days(root: str, since: str, until: str) -> list[str]:
    """The days in [since, until] where backfills wrote (listed on a worker, when the pipeline runs)."""
    patterns = [f"{_owned_root(root)}/dt=*/*.ids", f"{_owned_root(root)}/dt=*.ids"]
    days = set()
    for result in FileSystems.match(patterns):
        for m in result.metadata_list:
            rel = m.path[len(_owned_root(root)) + 1:]
            days.add(rel.split("/", 1)[0][len("dt="):].removesuffix(".ids"))
    return sorted(d for d in days if since <= d <= until)


def write_owned(path: str, ids: Iterable[str]) -> None:
    """One shard's ownership record, sorted (reruns give the same bytes); none at all when it owns nothing."""
    ids = sorted(set(ids))
    if ids:
        write_atomically(path, ids)
    elif FileSystems.exists(path):
        FileSystems.delete([path])


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
