"""Sinks: validated JSONL (one validation for every mode: `validated`). Batch: articles partitioned by published
day and sharded by a hash of the id (pipeline.layout, pipeline.day_shards), duplicates and dead letters sharded by
a hash of the line. Streaming's writers are pipeline.stream_sinks.

Files are written whole to a temporary name and then renamed, and their lines are sorted by id, so a rerun over
the same input gives byte-identical files and a crash never leaves a half-written partition behind.

Two ways to meet a file an earlier run wrote:
- merge (plain `newsbeam run`): a day's shards and the side files keep what earlier runs wrote and gain this
  run's records (a record with the same id, or the same line, replaces or equals the old one), so a second run
  with new articles on an old day adds to it and a rerun leaves the bytes unchanged;
- replace what it owns (`newsbeam backfill`): a day's shards become this run's articles of that day plus the
  lines a plain run wrote there (transforms.backfill_owned: backfills record the ids they write per shard of a
  day, and replace or remove only those), so a backfill of a range is a function of its input and of what plain
  runs wrote, never removing the latter.
One run at a time per output root: two concurrent runs merging the same day could lose one's records, so every run
takes the root's lease first (pipeline.lease; a second one is refused).
"""
from __future__ import annotations

import json
import logging

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.backfill_owned import owned_days, owned_file, read_ids, replace_owned, write_owned
from transforms.common import DEAD, counter, dead_letter
from transforms.files import write_atomically

from .day_shards import foreign_files, old_lines, shards_to_visit, survey_day
from .layout import (ARTICLE_SHARDS, ARTICLES, DEAD_LETTER, DUPLICATES, SIDE_SHARDS, article_shard,
                     article_shard_file, hash_shard, side_shard_file)
from .parquet_sink import JSONL, PARQUET, read_parquet_records, write_parquet_file

log = logging.getLogger("newsbeam.sinks")
WRITTEN_IDS = "written_ids"
MIGRATED = "migrated"
SCHEMAS = {ARTICLES: "Article", DUPLICATES: "DuplicateRecord", DEAD_LETTER: "DeadLetter"}
COUNTERS = {ARTICLES: "written", DUPLICATES: "duplicates", DEAD_LETTER: "dead_lettered"}


def validated(kind: str, record: dict) -> tuple[dict | None, dict | None]:
    """(the record as written, None), or for an article that fails its schema (None, its dead letter). Our own
    side records (duplicates, dead letters) failing their schema is a bug, not data: that raises."""
    import schemas

    try:
        return getattr(schemas, SCHEMAS[kind]).model_validate(record).model_dump(mode="json"), None
    except Exception as exc:
        if kind != ARTICLES:
            raise
        counter("dead_letter_validate").inc()
        dead = dead_letter(record.get("input_ref", "?"), "validate", f"schema validation failed: {exc}",
                           article_id=record.get("id"))
        return None, validated(DEAD_LETTER, dead)[0]


def to_json_line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def read_lines(path: str) -> list[str]:
    """The non-empty lines of an existing file ([] if there is none)."""
    if not FileSystems.exists(path):
        return []
    with FileSystems.open(path) as fh:
        # split on "\n" only: str.splitlines() also splits on U+2028/U+2029/U+0085, which JSON keeps unescaped
        return [line for line in fh.read().decode("utf-8").split("\n") if line.strip()]


def merge_by_id(old_lines: list[str], records: list[dict]) -> list[str]:
    """Earlier lines plus this run's records, one line per id (this run's version wins), sorted by id."""
    by_id = {json.loads(line)["id"]: line for line in old_lines}
    by_id.update((r["id"], to_json_line(r)) for r in records)
    return [by_id[k] for k in sorted(by_id)]


def _validate_article(article: dict):
    clean, dead = validated(ARTICLES, article)
    yield clean if dead is None else beam.pvalue.TaggedOutput(DEAD, dead)


def day_formats(requested: tuple[str, ...], jsonl_exists: bool, parquet_exists: bool) -> tuple[str, ...]:
    """The formats a day is written in: those asked for, and every other one the day already has, so a day
    rewritten in one format never leaves a stale copy in another (a JSONL backfill into a `--format both` root)."""
    present = {JSONL: jsonl_exists, PARQUET: parquet_exists}
    return tuple(f for f in (JSONL, PARQUET) if f in requested or present[f])


def _shard_key(record: dict) -> tuple[tuple[str, int], dict]:
    return (record["published"], article_shard(record["id"])), record


class _WriteDayShard(beam.DoFn):
    """One shard of a day -> its file(s), JSONL and/or Parquet (main output: the paths); then, tagged WRITTEN_IDS,
    the id of every article in it, emitted only once every file of the shard is in place, so downstream (the
    cross-run dedup index) sees only what was really written; and, tagged MIGRATED, (day, shard) when the day had
    files of another layout, so they are removed once every shard has its lines (_RemoveMigrated).

    `states` (a side input, {day: pipeline.day_shards.DayState}) is what each day held before any of its shards
    was written: every writer of a day decides its formats and its migration from the same picture."""

    def __init__(self, output: str, merge: bool = True, formats: tuple[str, ...] = (JSONL,)):
        self.output, self.merge, self.formats = output, merge, tuple(formats)
        self.written, self.replaced = counter("written"), counter("backfill_replaced")

    def process(self, item, states):
        (day, shard), records = item
        state = states[day]
        records = sorted((r for r in records if r is not None), key=lambda r: r["id"])
        own = {fmt: article_shard_file(self.output, day, shard, fmt) for fmt in (JSONL, PARQUET)}
        formats = day_formats(self.formats, JSONL in state.formats, PARQUET in state.formats)
        old = old_lines(state, shard, own, _file_lines)
        owned_path = owned_file(self.output, day, shard, ARTICLE_SHARDS)
        owned_paths = (owned_path, *state.foreign_owned)
        owned_after = None
        if not self.merge:
            old, owned_after = self._not_owned(owned_path, owned_paths, shard, old, records)
        elif state.foreign_owned:  # a plain run migrating the day: the shard's share of the older record
            owned_after = read_ids(owned_paths, lambda i: article_shard(i) == shard)
        lines = merge_by_id(old, records)
        if not lines:  # a backfill removed every line of the shard: no empty file is left behind
            stale = [own[fmt] for fmt in (JSONL, PARQUET) if state.has(shard, fmt)]
            if stale:
                FileSystems.delete(stale)
            formats = ()
        if JSONL in formats:
            write_atomically(own[JSONL], lines)
            yield own[JSONL]
        if PARQUET in formats:  # from the same lines as the JSONL: the two never disagree
            yield write_parquet_file(own[PARQUET], [json.loads(line) for line in lines])
        if owned_after is not None:
            write_owned(owned_path, owned_after)
        self.written.inc(len(records))
        for r in records:
            yield beam.pvalue.TaggedOutput(WRITTEN_IDS, r["id"])
        if state.migrates:
            yield beam.pvalue.TaggedOutput(MIGRATED, (day, shard))

    def _not_owned(self, owned_path: str, owned_paths: tuple[str, ...], shard: int, old: list[str],
                   records: list[dict]) -> tuple[list[str], set[str]]:
        """Backfill: (the old lines that stay, the ids this backfill owns once the shard is written). The
        ownership record first grows to cover both the old and the new owned ids, so a crash before the shard is
        written leaves every backfilled line replaceable, and never claims a plain run's line."""
        by_id = {json.loads(line)["id"]: line for line in old}
        owned_before = read_ids(owned_paths, lambda i: article_shard(i) == shard)
        keep, owned_after, removed = replace_owned(by_id, (r["id"] for r in records), owned_before)
        if owned_after - owned_before:
            write_owned(owned_path, owned_before | owned_after)
        self.replaced.inc(len(removed))
        return [by_id[i] for i in sorted(keep)], owned_after


def _file_lines(path: str) -> list[str]:
    """An article file's lines, JSONL or (as the JSONL would have them) Parquet."""
    if path.endswith(f".{PARQUET}"):
        return [to_json_line(r) for r in read_parquet_records(path)]
    return read_lines(path)


class _RemoveMigrated(beam.DoFn):
    """A migrated day, once every shard reported its write: the files of the other layout removed (a day some
    shard did not report keeps them, and a later rewrite migrates it again: lines are never in neither)."""

    def __init__(self):
        self.removed = counter("migrated_files_removed")

    def process(self, item, states):
        day, shards = item
        if set(shards) != set(range(ARTICLE_SHARDS)):
            log.warning("dt=%s: %d of %d shards written, its older files kept", day, len(set(shards)),
                        ARTICLE_SHARDS)
            return
        stale = foreign_files(states[day])
        if stale:
            FileSystems.delete(stale)
            self.removed.inc(len(stale))
            log.info("dt=%s: migrated to %d shards, removed %s", day, ARTICLE_SHARDS, stale)


class WriteArticles(beam.PTransform):
    """Validate against schemas.Article and write `<output>/dt=YYYY-MM-DD/articles-SSSSS-of-NNNNN.jsonl` (and/or
    `.parquet`: `formats`, --format; pipeline.parquet_sink), one GroupByKey key per (day, shard of the id): no
    worker holds more than one shard of a day (pipeline.layout: ARTICLE_SHARDS).

    Returns {"paths": written file paths, "written_ids": ids of the articles written, "dead_letter": articles
    that failed validation}. merge=False replaces what backfills wrote on each day instead of adding to it
    (backfill; counter `backfill_replaced`: lines an earlier backfill wrote that this input no longer has).
    """

    def __init__(self, output: str, merge: bool = True, formats: tuple[str, ...] = (JSONL,),
                 date_range: tuple[str, str] | None = None):
        super().__init__()
        self.output = output
        self.merge = merge
        self.formats = tuple(formats)
        self.date_range = date_range  # backfill: its days where backfills wrote are rewritten even if it has none

    def expand(self, articles):
        valid = articles | "Validate" >> beam.FlatMap(_validate_article).with_outputs(DEAD, main="valid")
        keyed = valid.valid | "ByDayShard" >> beam.Map(_shard_key)
        days = keyed | "Day" >> beam.Map(lambda kv: kv[0][0])
        if self.date_range and not self.merge:  # a day whose every article this input dropped (or made a
            # duplicate) is still rewritten; listed when the pipeline runs, on the workers, so a cloud launcher
            # reads nothing from the bucket while it builds the graph
            owned = (articles.pipeline | "Backfill" >> beam.Create([self.date_range])
                     | "OwnedDays" >> beam.FlatMap(lambda r, root: owned_days(root, *r), self.output))
            days = (days, owned) | "WithOwnedDays" >> beam.Flatten()
        states = (days | "EachDay" >> beam.Distinct()
                  | "Survey" >> beam.Map(lambda day, root: (day, survey_day(root, day)), self.output))
        visits = states | "Visit" >> beam.FlatMap(
            lambda kv, formats, merge: [((kv[0], s), None) for s in shards_to_visit(kv[1], formats, merge)],
            self.formats, self.merge)
        as_dict = beam.pvalue.AsDict(states)
        written = ((keyed, visits) | "WithVisits" >> beam.Flatten()
                   | "GroupDayShard" >> beam.GroupByKey()
                   | "WriteDayShard" >> beam.ParDo(_WriteDayShard(self.output, self.merge, self.formats), as_dict)
                   .with_outputs(WRITTEN_IDS, MIGRATED, main="paths"))
        _ = (written[MIGRATED] | "MigratedDay" >> beam.GroupByKey()
             | "RemoveMigrated" >> beam.ParDo(_RemoveMigrated(), as_dict))
        return {"paths": written.paths, WRITTEN_IDS: written[WRITTEN_IDS], DEAD: valid[DEAD]}


def shard_of(line: str, shards: int = SIDE_SHARDS) -> int:
    """A side record's shard: a hash of its line, so the same record always lands in the same file."""
    return hash_shard(line, shards)


def _keyed_line(record: dict, kind: str) -> tuple[int, str]:
    line = to_json_line(validated(kind, record)[0])
    return shard_of(line), line


class _WriteShard(beam.DoFn):
    """One shard's lines -> its file, sorted (reruns are byte-identical). merge: earlier runs' lines stay and a
    rerun's identical lines collapse into one (a shard with no new line is left alone); otherwise the shard is
    rewritten with exactly this run's lines, empty if none, so no stale record survives a rerun."""

    def __init__(self, side_root: str, kind: str, merge: bool):
        self.side_root, self.kind, self.merge = side_root, kind, merge
        self.count = counter(COUNTERS[kind])

    def process(self, item):
        shard, lines = item
        lines = [line for line in lines if line is not None]
        path = side_shard_file(self.side_root, self.kind, shard)
        self.count.inc(len(lines))
        if self.merge:
            if not lines:
                return
            lines = set(lines) | set(read_lines(path))
        write_atomically(path, sorted(lines))
        yield path


class WriteRecordFiles(beam.PTransform):
    """Duplicates or dead letters (`kind`) of a batch run -> SIDE_SHARDS files under <side_root>/<kind>/, each
    line validated and placed by a hash of its content: no worker gathers every record. merge=True keeps the
    lines earlier runs wrote (run); False rewrites all SIDE_SHARDS files with this run's lines (backfill)."""

    def __init__(self, side_root: str, kind: str, merge: bool = False):
        super().__init__()
        self.side_root, self.kind, self.merge = side_root, kind, merge

    def expand(self, records):
        every_shard = (records.pipeline
                       | "EveryShard" >> beam.Create([(s, None) for s in range(SIDE_SHARDS)]))
        return ((records | "Line" >> beam.Map(_keyed_line, self.kind), every_shard)
                | "WithEveryShard" >> beam.Flatten()
                | "GroupShard" >> beam.GroupByKey()
                | "WriteShard" >> beam.ParDo(_WriteShard(self.side_root, self.kind, self.merge)))
