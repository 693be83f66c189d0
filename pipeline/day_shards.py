"""The shards of one published day (pipeline.layout: `dt=DAY/articles-SSSSS-of-NNNNN.*`), planned before they are
written: what a day holds now (`survey_day`, once per day the run writes), which shards must be rewritten even
without a new article (`shards_to_visit`), and the earlier lines each shard merges with (`old_lines`).

Why a survey per day, taken before any shard is written: the shards of a day are written by different workers
at once, so a writer must not look at the day's folder to decide what the day is (which formats it has, which
files of the older layout it migrates): the survey is handed to every writer of the day (a side input), and all
of them decide from the same picture. Files of another layout (the one file per day written before days were
sharded, or another shard count) are read by every shard writer, each keeping the ids of its own shard, and
removed only after every shard of the day is written (`foreign_files`, after a GroupByKey of the writers'
reports): a kill in between leaves a line in both layouts (the reader sees it twice until the day is next
rewritten), never in neither.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from apache_beam.io.filesystems import FileSystems

from transforms.backfill_owned import day_owned_files, owned_shard

from .layout import ARTICLE_SHARDS, article_shard, day_article_files, parse_article_shard
from .parquet_sink import JSONL, PARQUET


@dataclass(frozen=True)
class DayState:
    """What one day holds before this run writes it."""
    formats: frozenset[str]                      # every format an article file of the day is in (any layout)
    shard_files: tuple[tuple[int, str], ...]     # (shard, format) of each file of the current layout
    foreign: tuple[str, ...] = ()                # article files of another layout: read, then removed
    owned_shards: tuple[int, ...] = ()           # shards with an ownership record (transforms.backfill_owned)
    foreign_owned: tuple[str, ...] = ()          # ownership files of another layout: read, then removed

    @property
    def shards(self) -> tuple[int, ...]:
        return tuple(sorted({s for s, _ in self.shard_files}))

    @property
    def migrates(self) -> bool:
        return bool(self.foreign or self.foreign_owned)

    def has(self, shard: int, fmt: str) -> bool:
        return (shard, fmt) in self.shard_files


def survey_day(root: str, day: str, shards: int = ARTICLE_SHARDS) -> DayState:
    """The day's article and ownership files, sorted into this layout's and any other's."""
    formats, shard_files, foreign = set(), set(), []
    for path in day_article_files(root, day):
        parsed = parse_article_shard(path.rsplit("/", 1)[-1])
        if parsed is None:  # not a name this writer gives: not read as part of the day here, never removed
            continue
        shard, count, fmt = parsed
        formats.add(fmt)
        if count == shards:
            shard_files.add((shard, fmt))
        else:
            foreign.append(path)
    owned_shards, foreign_owned = set(), []
    for path in day_owned_files(root, day):
        shard = owned_shard(path, shards)
        if shard is None:
            foreign_owned.append(path)
        else:
            owned_shards.add(shard)
    return DayState(frozenset(formats), tuple(sorted(shard_files)), tuple(foreign), tuple(sorted(owned_shards)),
                    tuple(foreign_owned))


def shards_to_visit(state: DayState, requested: tuple[str, ...], merge: bool,
                    shards: int = ARTICLE_SHARDS) -> list[int]:
    """The shards of a day this run rewrites whatever its articles are: every shard when the day has files of
    another layout (each takes its lines from them); every existing shard when the run asks for a format the day
    lacks (no shard left without it); in a backfill, every shard backfills own a line in (they may lose it)."""
    if state.migrates:
        return list(range(shards))
    visit = set(state.shards) if set(requested) - state.formats else set()
    if not merge:
        visit |= set(state.owned_shards)
    return sorted(visit)


def old_lines(state: DayState, shard: int, own: dict[str, str], read: Callable[[str], list[str]],
              shards: int = ARTICLE_SHARDS) -> list[str]:
    """The lines shard `shard` holds before this run, oldest layout first (merge_by_id keeps the last line of an
    id): those of the other layout's files whose id falls in this shard, then the shard's own file (`own`: its
    path per format). A file's JSONL is read when it has one, its Parquet otherwise (a --format parquet day);
    `read` gives a file's lines, whichever its format."""
    stems: dict[str, set[str]] = {}
    for path in state.foreign:
        stem, ext = path.rsplit(".", 1)
        stems.setdefault(stem, set()).add(ext)
    lines: list[str] = []
    for stem in sorted(stems):
        path = f"{stem}.{JSONL if JSONL in stems[stem] else PARQUET}"
        lines += [line for line in read(path) if article_shard(json.loads(line)["id"], shards) == shard]
    for fmt in (JSONL, PARQUET):
        if state.has(shard, fmt):
            return lines + read(own[fmt])
    return lines


def foreign_files(state: DayState) -> list[str]:
    """The files of another layout a migrated day leaves behind once every shard is written, those still there."""
    return [p for p in (*state.foreign, *state.foreign_owned) if FileSystems.exists(p)]
