"""Sinks: validated JSONL, articles partitioned by published date, duplicates and dead letters in one file each.

Files are written whole to a temporary name and then renamed, and their lines are sorted by id, so a rerun over
the same input gives byte-identical files and a crash never leaves a half-written partition behind.

Two ways to meet a file an earlier run wrote:
- merge (plain `newsbeam run`): the day's partition and the side files keep what earlier runs wrote and gain this
  run's records (a record with the same id, or the same line, replaces or equals the old one), so a second run
  with new articles on an old day adds to it and a rerun leaves the bytes unchanged;
- replace (`newsbeam backfill`): the day's partition becomes exactly this run's articles of that day, so a
  backfill of a range is a function of its input.
One run at a time per output root: two concurrent runs merging the same day could lose one's records.
"""
from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.common import DEAD, counter, dead_letter
from transforms.files import write_atomically

from .layout import batch_article_file

WRITTEN_IDS = "written_ids"


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


class _ValidateArticle(beam.DoFn):
    def process(self, article: dict):
        from schemas import Article

        try:
            model = Article.model_validate(article)
        except Exception as exc:
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter(article.get("input_ref", "?"), "validate",
                                                             f"schema validation failed: {exc}",
                                                             article_id=article.get("id")))
            return
        yield model.model_dump(mode="json")


class _WritePartition(beam.DoFn):
    """One day's articles -> its partition file (main output: the path); then, tagged WRITTEN_IDS, the id of
    every article in it, emitted only once the file is in place, so downstream (the cross-run dedup index) sees
    only what was really written."""

    def __init__(self, output: str, merge: bool = True):
        self.output = output
        self.merge = merge
        self.written = counter("written")

    def process(self, item):
        day, records = item
        records = sorted(records, key=lambda r: r["id"])
        path = batch_article_file(self.output, day)
        old = read_lines(path) if self.merge else []
        write_atomically(path, merge_by_id(old, records))
        self.written.inc(len(records))
        yield path
        for r in records:
            yield beam.pvalue.TaggedOutput(WRITTEN_IDS, r["id"])


class WriteArticles(beam.PTransform):
    """Validate against schemas.Article and write `<output>/dt=YYYY-MM-DD/articles-*.jsonl`.

    Returns {"paths": written file paths, "written_ids": ids of the articles written, "dead_letter": articles
    that failed validation}. merge=False replaces each day's partition instead of adding to it (backfill).
    """

    def __init__(self, output: str, merge: bool = True):
        super().__init__()
        self.output = output
        self.merge = merge

    def expand(self, articles):
        valid = articles | "Validate" >> beam.ParDo(_ValidateArticle()).with_outputs(DEAD, main="valid")
        paths = (valid.valid
                 | "ByDay" >> beam.Map(lambda r: (r["published"], r))
                 | "GroupDay" >> beam.GroupByKey()
                 | "WriteDay" >> beam.ParDo(_WritePartition(self.output, self.merge)).with_outputs(WRITTEN_IDS, main="paths"))
        return {"paths": paths.paths, WRITTEN_IDS: paths[WRITTEN_IDS], DEAD: valid[DEAD]}


class _WriteWhole(beam.DoFn):
    def __init__(self, path: str, model_name: str, counter_name: str, merge: bool = False):
        self.path = path
        self.model_name = model_name
        self.counter_name = counter_name
        self.merge = merge

    def process(self, records: list):
        import schemas

        model = getattr(schemas, self.model_name)
        lines = []
        for r in records:
            lines.append(to_json_line(model.model_validate(r).model_dump(mode="json")))
        counter(self.counter_name).inc(len(lines))
        if self.merge:  # earlier runs' records stay; a rerun's identical lines collapse into one
            lines = sorted(set(lines) | set(read_lines(self.path)))
        else:
            lines.sort()
        write_atomically(self.path, lines)
        yield self.path


class WriteRecordFile(beam.PTransform):
    """All records into one sorted JSONL file (written even when empty, so no stale file survives a rerun);
    merge=True keeps the lines earlier runs wrote there."""

    def __init__(self, path: str, model_name: str, counter_name: str, merge: bool = False):
        super().__init__()
        self.path = path
        self.model_name = model_name
        self.counter_name = counter_name
        self.merge = merge

    def expand(self, records):
        return (records
                | "Collect" >> beam.combiners.ToList()
                | "Write" >> beam.ParDo(_WriteWhole(self.path, self.model_name, self.counter_name, self.merge)))
