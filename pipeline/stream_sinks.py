"""Streaming writers: the `write` choice of the streaming graph (pipeline.graph.WriteStreamOutputs), chosen with the
runner (pipeline.streaming.streaming_runner). Both write JSONL validated by pipeline.sinks.validated (an invalid
article becomes a dead letter) into the layout's folders (`dt=DAY/`, `duplicates/`, `dead_letter/`), as
`stream-*.jsonl` (pipeline.layout.READ_GLOBS):

    windowed    Dataflow and any runner with a watermark: Beam's event-time FixedWindows of --window-seconds
                (`event_time`: the published time, else the fetch time) and fileio.WriteToFiles; one file per
                folder, window, pane and shard: stream-<window start>-p<pane>-<shard>-of-<shards>.jsonl
    per_bundle  the local real-time runner (FnApiRunner): a ParDo fused after the source writes each bundle's
                records per window of processing time in finish_bundle: stream-<window start>-<hash>.jsonl.
                On that runner a GroupByKey (inside WriteToFiles) after an unbounded source only fires when the
                source stops (docs/streaming.md), so Beam's windowed writer would write nothing while it runs.

Both count what they write (written / duplicates / dead_lettered, pipeline.sinks.COUNTERS).
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import math
import time

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.value_provider import StaticValueProvider
from apache_beam.transforms import trigger as beam_trigger
from apache_beam.transforms import window as beam_window
from apache_beam.utils.timestamp import Duration

from transforms.common import counter
from transforms.files import write_atomically

from .layout import ARTICLES, DEAD_LETTER, join_path, stream_folder, stream_temp_dir
from .sinks import COUNTERS, SCHEMAS, shard_of, to_json_line, validated

log = logging.getLogger("newsbeam.sinks")

WINDOWED, PER_BUNDLE = "windowed", "per_bundle"
WRITERS = (WINDOWED, PER_BUNDLE)
STREAM_SHARDS = 1  # files per folder, window and pane: a window of news polls is small, and files should be few
PUBLISHED_MAX_AGE = 86400.0  # a published time up to a day before the fetch places the record; older: the fetch
ALLOWED_LATENESS = 2 * 86400.0  # PUBLISHED_MAX_AGE + a day for a record's way from its fetch to the writer


def _stamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def window_start(epoch: float, window_seconds: int) -> float:
    return math.floor(epoch / window_seconds) * window_seconds


# ------------------------------------------------------------------ windowed: Beam windows of event time
def epoch_of(value) -> float | None:
    """An ISO datetime (as written by the schemas; naive means UTC) -> epoch seconds; None if absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


def element_time(timestamp) -> float | None:
    """An element's timestamp if it is a real time: not the end of the global window, which is what RunInference
    outputs carry (its batching emits in finish_bundle), nor the start of time."""
    if timestamp is None:
        return None
    end = beam_window.GlobalWindow().max_timestamp()
    if timestamp >= end or timestamp <= beam_window.MIN_TIMESTAMP:
        return None
    return timestamp.micros / 1e6


def event_time(kind: str, record: dict, fallback: float, max_age: float = PUBLISHED_MAX_AGE) -> float:
    """The time a record's window is chosen by. An article: its `published_at` when that is at most `max_age`
    before its `fetched_at` and not after it, else its `fetched_at` (else `fallback`). A published time older
    than that (an archive entry, a feed's first poll) would arrive later than the windows keep open, and a
    future one (a wrong clock) would hold its file until the watermark gets there. A duplicate or a dead letter
    carries no time of its own: `fallback` (the element's timestamp, the poll, or the time it is written)."""
    if kind != ARTICLES:
        return fallback
    fetched = epoch_of(record.get("fetched_at"))
    fetched = fallback if fetched is None else fetched
    published = epoch_of(record.get("published_at"))
    if published is not None and fetched - max_age <= published <= fetched:
        return published
    return fetched


def destination(folder: str, shard: int) -> str:
    """WriteToFiles' destination: the folder and the shard (by a hash of the line, so a record's file is fixed).
    The shard is in the destination, not Beam's `shards`: Beam numbers a group's files by position, which could
    repeat a name across two firings; (folder, shard, window, pane) names one file exactly."""
    return f"{folder}|{shard}"


def window_file_name(start: float, pane_index: int, shard: int, shards: int) -> str:
    """`stream-<window start, UTC>-p<pane index>-<shard>-of-<shards>.jsonl`."""
    return f"stream-{_stamp(start)}-p{pane_index}-{shard:05d}-of-{shards:05d}.jsonl"


def _file_naming(shards: int, window, pane, _index, _total, _compression, dest: str) -> str:
    if pane is None:  # only unsharded writes lack a pane, and they are off (max_writers_per_bundle=0)
        raise ValueError(f"window file for {dest} without a pane: its name would not be unique")
    folder, shard = dest.rsplit("|", 1)
    return f"{folder}/{window_file_name(window.start.micros / 1e6, pane.index, int(shard), shards)}"


class _SortedLinesSink(fileio.FileSink):
    """A file of one destination's lines, sorted; creates the destination folder first (a local rename into a
    missing folder fails, and WriteToFiles only logs that)."""

    def __init__(self, root: str, dest: str):
        self.folder = join_path(root, dest.rsplit("|", 1)[0])
        self.fh, self.lines = None, []

    def open(self, fh) -> None:
        if not FileSystems.exists(self.folder):
            try:
                FileSystems.mkdirs(self.folder)
            except IOError:  # made meanwhile by another writer
                pass
        self.fh, self.lines = fh, []

    def write(self, record) -> None:
        self.lines.append(record[1])

    def flush(self) -> None:
        for line in sorted(self.lines):
            self.fh.write(line.encode("utf-8") + b"\n")
        self.lines = []
        self.fh.flush()


class _ToLines(beam.DoFn):
    """(kind, record) -> its line with its destination, at its event time; counted here, before the sink."""

    def __init__(self, shards: int, max_age: float):
        self.shards, self.max_age = shards, max_age
        self.counts = {kind: counter(name) for kind, name in COUNTERS.items()}

    def process(self, item, timestamp=beam.DoFn.TimestampParam):
        kind, record = item
        clean, dead = validated(kind, record)
        kind, record = (kind, clean) if dead is None else (DEAD_LETTER, dead)
        line = to_json_line(record)
        folder = stream_folder(kind, record["published"] if kind == ARTICLES else None)
        self.counts[kind].inc()
        fallback = element_time(timestamp)
        when = event_time(kind, record, time.time() if fallback is None else fallback, self.max_age)
        yield beam_window.TimestampedValue((destination(folder, shard_of(line, self.shards)), line), when)


class _CheckWritten(beam.DoFn):
    """WriteToFiles logs a failed move only at debug level: each file it reports is checked here, and one that is
    not there is an error in the log and counted (stream_files_missing)."""

    def __init__(self, root: str):
        self.root = root
        self.files, self.missing = counter("stream_files"), counter("stream_files_missing")

    def process(self, result):
        path = join_path(self.root, result.file_name)
        if FileSystems.exists(path):
            self.files.inc()
            log.info("wrote %s", path)
        else:
            self.missing.inc()
            log.error("window file %s was not written (WriteToFiles could not move it in place)", path)
        yield path


def window_trigger(late_delay: int):
    """On time when the watermark passes the window's end; each later arrival (within the allowed lateness)
    fires a late pane, at most one per `late_delay` seconds of processing time per file (0: at once; the
    BundleBasedDirectRunner stalls on processing-time triggers, so its tests use 0)."""
    late = beam_trigger.AfterProcessingTime(late_delay) if late_delay > 0 else beam_trigger.AfterCount(1)
    return beam_trigger.AfterWatermark(late=late)


class WriteEventWindows(beam.PTransform):
    """(kind, record) pairs -> <output>/<folder>/stream-<window>-p<pane>-<shard>-of-<shards>.jsonl, in Beam's
    event-time FixedWindows of `window_seconds` (the panes discard: a record is in exactly one file). Returns
    the paths written.

    Lateness: windows accept records up to ALLOWED_LATENESS after their end. `event_time` places a record at
    most PUBLISHED_MAX_AGE before its fetch, so a record is late beyond that only if it took more than
    ALLOWED_LATENESS - PUBLISHED_MAX_AGE (a day) from its fetch to this step; Beam drops such a record (on
    Dataflow the step's droppedDueToLateness counter shows it)."""

    def __init__(self, output: str, window_seconds: int, shards: int = STREAM_SHARDS, late_delay: int | None = None,
                 max_age: float = PUBLISHED_MAX_AGE, allowed_lateness: float = ALLOWED_LATENESS):
        super().__init__()
        if shards < 1:
            raise ValueError("shards must be >= 1")
        self.output, self.window_seconds, self.shards = output, window_seconds, shards
        self.late_delay = int(window_seconds if late_delay is None else late_delay)  # whole seconds: the proto
        self.max_age, self.allowed_lateness = max_age, allowed_lateness

    def expand(self, pairs):
        return (pairs
                | "Lines" >> beam.ParDo(_ToLines(self.shards, self.max_age))
                | "Windows" >> beam.WindowInto(beam_window.FixedWindows(self.window_seconds),
                                               trigger=window_trigger(self.late_delay),
                                               allowed_lateness=Duration(seconds=self.allowed_lateness),
                                               accumulation_mode=beam_trigger.AccumulationMode.DISCARDING)
                | "Files" >> fileio.WriteToFiles(
                    self.output, file_naming=functools.partial(_file_naming, self.shards),
                    destination=lambda pair: pair[0], sink=functools.partial(_SortedLinesSink, self.output),
                    shards=1, max_writers_per_bundle=0,  # every record through the shuffle: files per window
                    temp_directory=StaticValueProvider(str, stream_temp_dir(self.output)))
                | "Check" >> beam.ParDo(_CheckWritten(self.output)))


# ------------------------------------------------------------------ per bundle: the local real-time runner
def stream_file_name(window_epoch: float, lines: list[str]) -> str:
    """`stream-<window start, UTC>-<hash of the content>.jsonl`: a retried bundle rewrites the same file."""
    digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:16]
    return f"stream-{_stamp(window_epoch)}-{digest}.jsonl"


class _BundleFileWriter(beam.DoFn):
    """Each bundle's records -> one file per (folder, window), written atomically in finish_bundle. Windows are
    of processing time (when the record is written): Beam windows only fire when the source stops on the local
    runner (docs/streaming.md). An invalid article is written as a dead letter (`validated`)."""

    def __init__(self, output: str, kind: str, window_seconds: int):
        if kind not in SCHEMAS:
            raise ValueError(f"unknown output kind {kind!r}")
        self.output, self.kind, self.window_seconds = output, kind, window_seconds
        self.buffer: dict[tuple[str, str, float], list[str]] = {}

    def start_bundle(self):
        self.buffer = {}

    def process(self, record: dict):
        clean, dead = validated(self.kind, record)
        kind, record = (self.kind, clean) if dead is None else (DEAD_LETTER, dead)
        folder = stream_folder(kind, record["published"] if kind == ARTICLES else None)
        window = window_start(time.time(), self.window_seconds)
        self.buffer.setdefault((kind, folder, window), []).append(to_json_line(record))

    def finish_bundle(self):
        for (kind, folder, window), lines in sorted(self.buffer.items()):
            lines = sorted(lines)
            path = join_path(self.output, folder, stream_file_name(window, lines))
            write_atomically(path, lines)
            counter(COUNTERS[kind]).inc(len(lines))
            log.info("wrote %s (%d records)", path, len(lines))
        self.buffer = {}


class WriteBundleFiles(beam.PTransform):
    """Records of one kind -> <output>/<folder>/stream-<window>-<hash>.jsonl, per bundle (the local runner:
    every writer is its own ParDo fused after the source, since a Flatten or GroupByKey would wait for its end)."""

    def __init__(self, output: str, kind: str, window_seconds: int):
        super().__init__()
        self.writer = _BundleFileWriter(output, kind, window_seconds)

    def expand(self, records):
        return records | "WriteWindows" >> beam.ParDo(self.writer)
