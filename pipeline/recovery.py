"""The dedup index and the partitions agree after any kill: a batch run marks the output root while it writes.

Why: a run writes its partitions first and the index rows of what it wrote after, as separate files; a kill in
between leaves written articles without rows, and a later run with other input keeps their copies as new. So a
batch run puts `<root>/_state/run-in-progress` in place before anything is written and removes it once every
write (the index included) is done. A run that finds the mark knows the last one stopped mid-write, and rebuilds
the index from the written partitions (transforms.dedup_index.rebuild_index) before reading it. A backfill that
removed or re-decided articles an earlier backfill wrote also ends with that rebuild, so no index row is left
for an article no partition holds.

The mark is not a lock: mutual exclusion is the root's lease (pipeline.lease), which pipeline.run takes before
it calls begin_writes. So a mark found here is always a stopped run's, never that of a run still writing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from transforms.dedup_index import check_index, index_dir, parquet_only_days, rebuild_index
from transforms.files import write_atomically

from .layout import join_path

log = logging.getLogger("newsbeam.recovery")
MARK = "run-in-progress"


@dataclass(frozen=True)
class InProgressMark:
    path: str

    def exists(self) -> bool:
        return FileSystems.exists(self.path)

    def write(self) -> None:
        write_atomically(self.path, ["a batch run is writing to this output root, or was stopped while it did"])

    def clear(self) -> None:
        if self.exists():
            FileSystems.delete([self.path])


def in_progress_mark(root: str) -> InProgressMark:
    return InProgressMark(join_path(root, "_state", MARK))


def rebuild(root: str, shingle_size: int, num_perm: int, why: str) -> None:
    """The index made again from the partitions; a root of Parquet-only days cannot be (logged, left as is)."""
    days = parquet_only_days(root)
    if days:
        log.warning("dedup index of %s not rebuilt (%s): %s holds Parquet articles only", root, why, days[0])
        return
    done = rebuild_index(root, shingle_size, num_perm)
    log.warning("dedup index: %s; %s", why, done.line())


def begin_writes(root: str, shingle_size: int, num_perm: int) -> InProgressMark:
    """Before a batch run: recover from a run stopped mid-write, then mark this one."""
    mark = in_progress_mark(root)
    # a damaged shard is left to the run's own check (transforms.dedup_index.usable_shards), which rebuilds only
    # when the partitions hold every row of the intact shards, and otherwise stops naming the shard
    if mark.exists() and not check_index(index_dir(root, shingle_size, num_perm)).damaged:
        rebuild(root, shingle_size, num_perm, f"the last run into {root} stopped while writing ({mark.path})")
    mark.write()
    return mark


def end_writes(mark: InProgressMark, root: str, shingle_size: int, num_perm: int, reconcile: bool) -> None:
    """After every write of a run: the index rebuilt when a backfill replaced what backfills wrote, then the
    mark removed (a kill before this point leaves it, and the next run recovers)."""
    if reconcile:
        rebuild(root, shingle_size, num_perm, "a backfill replaced articles that earlier backfills wrote")
    mark.clear()
