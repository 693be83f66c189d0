"""Sinks: validated JSONL, articles partitioned by published date, duplicates and dead letters in one file each.

Files are written whole to a temporary name and then renamed, and their lines are sorted by id, so a rerun over
the same input gives byte-identical files and a crash never leaves a half-written partition behind.
"""
from __future__ import annotations

import json
import uuid

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.common import DEAD, counter, dead_letter


def to_json_line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def join_path(root: str, *parts: str) -> str:
    return FileSystems.join(root.rstrip("/"), *parts) if "://" in root else "/".join([root.rstrip("/"), *parts])


def write_atomically(path: str, lines: list[str]) -> None:
    """Write to a temporary sibling, then rename over the target (the rename replaces an older file).

    Temporary files left by an interrupted earlier run for the same target are removed, so a rerun leaves
    exactly what a clean run leaves.
    """
    directory, name = path.rsplit("/", 1)
    if not FileSystems.exists(directory):
        FileSystems.mkdirs(directory)
    stale = [m.path for m in FileSystems.match([f"{directory}/.tmp-*-{name}"])[0].metadata_list]
    if stale:
        FileSystems.delete(stale)
    tmp = f"{directory}/.tmp-{uuid.uuid4().hex}-{name}"
    with FileSystems.create(tmp) as fh:
        for line in lines:
            fh.write(line.encode("utf-8") + b"\n")
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


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
    def __init__(self, output: str):
        self.output = output
        self.written = counter("written")

    def process(self, item):
        day, records = item
        records = sorted(records, key=lambda r: r["id"])
        path = join_path(self.output, f"dt={day}", "articles-00000-of-00001.jsonl")
        write_atomically(path, [to_json_line(r) for r in records])
        self.written.inc(len(records))
        yield path


class WriteArticles(beam.PTransform):
    """Validate against schemas.Article and write `<output>/dt=YYYY-MM-DD/articles-*.jsonl`.

    Returns {"paths": written file paths, "dead_letter": articles that failed validation}.
    """

    def __init__(self, output: str):
        super().__init__()
        self.output = output

    def expand(self, articles):
        valid = articles | "Validate" >> beam.ParDo(_ValidateArticle()).with_outputs(DEAD, main="valid")
        paths = (valid.valid
                 | "ByDay" >> beam.Map(lambda r: (r["published"], r))
                 | "GroupDay" >> beam.GroupByKey()
                 | "WriteDay" >> beam.ParDo(_WritePartition(self.output)))
        return {"paths": paths, DEAD: valid[DEAD]}


class _WriteWhole(beam.DoFn):
    def __init__(self, path: str, model_name: str, counter_name: str):
        self.path = path
        self.model_name = model_name
        self.counter_name = counter_name

    def process(self, records: list):
        import schemas

        model = getattr(schemas, self.model_name)
        lines = []
        for r in records:
            lines.append(to_json_line(model.model_validate(r).model_dump(mode="json")))
        lines.sort()
        write_atomically(self.path, lines)
        counter(self.counter_name).inc(len(lines))
        yield self.path


class WriteRecordFile(beam.PTransform):
    """All records into one sorted JSONL file (written even when empty, so no stale file survives a rerun)."""

    def __init__(self, path: str, model_name: str, counter_name: str):
        super().__init__()
        self.path = path
        self.model_name = model_name
        self.counter_name = counter_name

    def expand(self, records):
        return (records
                | "Collect" >> beam.combiners.ToList()
                | "Write" >> beam.ParDo(_WriteWhole(self.path, self.model_name, self.counter_name)))
