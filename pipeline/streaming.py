"""Streaming mode: poll RSS/Atom feeds forever (or for `--stop-after` seconds) and write each new entry once.

    python -m pipeline.streaming --streaming --feeds https://example.org/rss.xml --output out/ \\
        --poll-interval 300 [--stop-after 3600] [--window-seconds 300] [--skip-models]

The graph (every step after the source is a ParDo fused into the source's stage; see docs/streaming.md for why:
on the local runner a GroupByKey, a Flatten or a windowed file sink only runs when the source stops):

    ticks (a PeriodicImpulse schedule, paced)  -> (feed URL, tick) per feed
      -> Poll        stateful, keyed by feed URL: conditional GET (ETag / Last-Modified kept in state), per-feed
                     exponential backoff after failures (failure count and next allowed poll kept in state)
      -> Entries     parse the document into entries, each with a key (guid, else link, else article id)
      -> Seen        stateful, keyed by feed URL: drop entries already emitted (bounded: TTL + cap per feed)
      -> records     count `read`; article, or dead letter with the reason
      -> Language    transforms.langid.DetectLanguage
      -> Dedup       transforms.dedup_stream.StreamDedup: the batch signature and threshold rule in keyed state
                     (exact-key bucket, LSH band key, arrival)
      -> NER, Stance the batch stages (transforms.ner, transforms.stance: routing by language inside one
                     RunInference handler, transforms.inference, not with Partition + Flatten)
      -> writers     one per output branch: each bundle's records into
                     <output>/dt=YYYY-MM-DD/stream-<window start>-<content hash>.jsonl (articles),
                     <output>/duplicates/stream-....jsonl, <output>/dead_letter/stream-....jsonl,
                     written whole to a temporary name and renamed (apache_beam.io.filesystems, so gs:// works)

Counters (namespace newsbeam) as in batch: read = written + duplicates + dead_lettered, where `read` counts new
entries (an entry seen in an earlier poll is not read again; it is counted as `entries_seen_before`) and
feed-level failures (one dead letter per failed poll).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.options.pipeline_options import (DirectOptions, PipelineOptions, SetupOptions,
                                                  StandardOptions)
from apache_beam.transforms import userstate
from apache_beam.transforms.periodicsequence import ImpulseSeqGenDoFn, ImpulseSeqGenRestrictionProvider
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Timestamp

from transforms.common import DEAD, REASONS_NAMESPACE, counter, dead_letter, tagged_dead
from transforms.dedup_stream import StreamDedup
from transforms.ner import RecogniseEntities
from transforms.parse import ParseError, ParseLimits, feed_records, guarded
from transforms.stance import ClassifyStance

from .feeds import DEFAULT_MAX_ENTRIES, FetchLimits, feed_raw_inputs, fetch_feed, new_session, validate_feed_url
from .options import (DEFAULT_BAND_MAX, DEFAULT_DEDUP_TTL, DEFAULT_TEXT_MAX, DEFAULT_FETCH_RETRIES, DEFAULT_MAX_BACKOFF,
                      DEFAULT_SEEN_MAX, DEFAULT_SEEN_TTL, DEFAULT_WINDOW_SECONDS, StreamingOptions)
from .layout import ARTICLES, join_path, stream_folder
from .sinks import to_json_line, write_atomically

log = logging.getLogger("newsbeam.streaming")

from .graph import MODELS_SKIPPED as MODELS_OFF  # noqa: E402  (one wording in both modes)


# ------------------------------------------------------------------ the schedule
_FIRST_TICK_LAG: dict[tuple[float, float], float] = {}  # (schedule start, interval) -> lag noted at the first call
_LAG_LOCK = threading.Lock()


def first_tick_lag(start_s: float, interval: float, first_index: int, now: float) -> float:
    """How late the generator's first call is (0 if on time, or if the first call is not for tick 0), noted once
    per schedule in this process and returned unchanged afterwards."""
    with _LAG_LOCK:
        lag = _FIRST_TICK_LAG.get((start_s, interval))
        if lag is None:
            lag = max(0.0, now - start_s) if first_index == 0 else 0.0
            _FIRST_TICK_LAG[(start_s, interval)] = lag
        return lag


class _PacedImpulseSeqGenDoFn(ImpulseSeqGenDoFn):
    """PeriodicImpulse's generator, but waiting for the next tick (up to `idle_sleep` seconds) before deferring,
    and (when pacing) starting the schedule when the generator first runs rather than when it was computed.

    Beam's ImpulseSeqGenDoFn defers its remainder at once when the next tick is not due, and the FnApiRunner
    re-runs a deferred bundle immediately: measured ~200 empty bundles/s and ~40% of a core while idle, and
    every bundle adds to the runner's in-memory monitoring chain (see docs/streaming.md). Sleeping until the
    next tick makes an idle run cost nothing. `idle_sleep=0` is Beam's behaviour (for distributed runners).

    When pacing (the local runner) it also differs from Beam's generator in two ways:
    - The first call can be late: the generator runs in the same fused stage as RunInference, whose setup loads
      the models (20-30 s here). Beam's generator would then emit every overdue tick at once, so all the polls
      of a short run came together at the end. The lag of the first call is noted once (per schedule, per
      process) and the whole schedule, stop included, moves by it: polls stay `interval` apart from the first
      one and the run makes as many polls as asked.
    - It emits one tick per call (per bundle). Downstream work runs inside the generator's loop, so with
      Beam's loop a tick whose processing outlasts the interval pulled the next ticks into the same bundle, and
      their files were written together when the bundle ended."""

    def __init__(self, idle_sleep: float = 0.0):
        super().__init__()
        self.idle_sleep = idle_sleep

    @beam.DoFn.unbounded_per_element()
    def process(self, element,
                restriction_tracker=beam.DoFn.RestrictionParam(ImpulseSeqGenRestrictionProvider()),
                watermark_estimator=beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())):
        if self.idle_sleep <= 0:
            yield from super().process(element, restriction_tracker, watermark_estimator)
            return
        start, _stop, interval = element
        start_s = start.micros / 1e6 if isinstance(start, Timestamp) else float(start)
        rest = restriction_tracker.current_restriction()
        index = rest.start
        if index >= rest.stop:  # nothing left
            return
        lag = first_tick_lag(start_s, interval, index, time.time())
        if lag > 0 and index == 0:
            log.info("first tick %.1f s late (pipeline start-up, model loading): the schedule and the stop move "
                     "by that", lag)
        # the restriction (tick indices) is fixed, so moving the start moves the stop and keeps the tick count
        due = start_s + lag + interval * index
        if due > time.time():
            time.sleep(max(0.0, min(due - time.time(), self.idle_sleep)))
        if due > time.time():  # still not due (a wait is capped at idle_sleep): come back later
            if watermark_estimator.current_watermark() is None or Timestamp.of(due) > \
                    watermark_estimator.current_watermark():
                watermark_estimator.set_watermark(Timestamp.of(due))
            restriction_tracker.defer_remainder(Timestamp.of(due))
            return
        if not restriction_tracker.try_claim(index):
            return
        out = self._get_output(index, due)
        if watermark_estimator.current_watermark() is None or out.timestamp > watermark_estimator.current_watermark():
            watermark_estimator.set_watermark(out.timestamp)
        yield out
        if index + 1 < rest.stop:
            # One tick per bundle: the bundle (and its files) ends here even when the next tick is already
            # overdue, so a slow tick delays the next poll but never merges it into its own output.
            restriction_tracker.defer_remainder()


class _Schedule(beam.DoFn):
    """The impulse -> (start, stop, interval), taken when the pipeline runs (not when it is built)."""

    def __init__(self, poll_interval: float, stop_after: float | None):
        self.poll_interval, self.stop_after = poll_interval, stop_after

    def process(self, _):
        now = Timestamp.now()
        stop = now + self.stop_after if self.stop_after is not None else MAX_TIMESTAMP
        yield now, stop, self.poll_interval


class Ticks(beam.PTransform):
    """A tick (epoch seconds, also the element timestamp) every `poll_interval` seconds from when the pipeline
    starts, until `stop_after` seconds later (exclusive) or forever. Beam's PeriodicImpulse with
    REBASE_ALL/REBASE_START semantics, plus pacing (`idle_sleep`)."""

    def __init__(self, poll_interval: float, stop_after: float | None = None, idle_sleep: float = 0.0):
        super().__init__()
        if poll_interval <= 0:
            raise ValueError("poll_interval must be > 0")
        if stop_after is not None and stop_after <= 0:
            raise ValueError("stop_after must be > 0 (or None: forever)")
        self.poll_interval, self.stop_after, self.idle_sleep = float(poll_interval), stop_after, idle_sleep

    def expand(self, pbegin):
        return (pbegin
                | "Impulse" >> beam.Impulse()
                | "Schedule" >> beam.ParDo(_Schedule(self.poll_interval, self.stop_after))
                | "GenSequence" >> beam.ParDo(_PacedImpulseSeqGenDoFn(self.idle_sleep)))


# ------------------------------------------------------------------ polling
def _fan_out(tick, urls: Sequence[str]):
    for url in urls:
        yield url, float(tick)


def backoff_seconds(failures: int, poll_interval: float, max_backoff: float) -> float:
    """Wait after the `failures`-th failure in a row: 1, 2, 4, 8 ... poll intervals, capped at max_backoff
    (never below one interval)."""
    return min(poll_interval * 2 ** max(0, failures - 1), max(max_backoff, poll_interval))


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).replace(microsecond=0).isoformat()


class _PollFeedDoFn(beam.DoFn):
    """(feed URL, tick) -> (feed URL, raw input) for parse; state per feed URL (runner-portable, no globals):
    the validators for conditional GET, and the failure count / earliest next poll for backoff."""

    FEED = userstate.ReadModifyWriteStateSpec("feed", PickleCoder())

    def __init__(self, poll_interval: float, max_backoff: float, max_entries: int, limits: Mapping[str, Any]):
        self.poll_interval, self.max_backoff, self.max_entries = poll_interval, max_backoff, max_entries
        self.limits = dict(limits)
        self.session = None
        self.polls, self.skipped = counter("feed_polls"), counter("feeds_backoff_skipped")
        self.fetched, self.not_modified = counter("feeds_fetched"), counter("feeds_not_modified")
        self.failed, self.refused = counter("feeds_failed"), counter("feeds_refused")

    def setup(self):
        self.session = new_session()

    def teardown(self):
        if self.session is not None:
            self.session.close()

    def process(self, item, feed=beam.DoFn.StateParam(FEED)):
        url, tick = item
        state = feed.read() or {}
        next_poll = state.get("next_poll")
        if next_poll is not None and tick < next_poll - self.poll_interval / 2:
            self.skipped.inc()
            log.info("poll %s skipped: backing off after %d failure(s) until %s", url, state.get("failures", 0),
                     _iso(next_poll))
            return
        self.polls.inc()
        result = fetch_feed(url, state, session=self.session, **self.limits)
        raws = feed_raw_inputs(result, self.max_entries)
        error = next((r["error"] for r in raws if r.get("error")), None)
        if error is None:
            (self.not_modified if result.not_modified else self.fetched).inc()
            feed.write({"etag": result.etag, "last_modified": result.last_modified, "failures": 0,
                        "next_poll": None})
            log.info("poll %s: %s", url, "304 not modified" if result.not_modified else
                     f"HTTP {result.status}, {len(result.data or b'')} bytes")
        else:
            (self.failed if result.error is not None else self.refused).inc()
            failures = state.get("failures", 0) + 1
            wait = backoff_seconds(failures, self.poll_interval, self.max_backoff)
            # keep the old validators: a feed that recovers is then fetched in full
            feed.write({**state, "failures": failures, "next_poll": tick + wait, "last_error": error})
            note = (f" (poll at {result.fetched_at}; failure {failures} in a row; next poll of this feed in "
                    f"{wait:g} s or later)")
            for raw in raws:
                raw["error"] = raw["error"] + note
            log.warning("poll %s failed: %s%s", url, error, note)
        for raw in raws:
            yield url, dict(raw, poll_time=tick)


class PollFeeds(beam.PTransform):
    """PeriodicImpulse-driven polling of `urls` every `poll_interval` seconds (forever, or until `stop_after`
    seconds after the start) -> (feed URL, raw input) pairs for parse (raw inputs as in pipeline.feeds: one per
    changed feed, one with `error` per failed poll, none on a 304 or while backing off).

    Counters: feed_polls, feeds_fetched, feeds_not_modified (304), feeds_failed, feeds_refused (HTML or unsafe
    XML), feeds_backoff_skipped (a tick on which a failing feed was not polled)."""

    def __init__(self, urls: Iterable[str], poll_interval: float, stop_after: float | None = None, *,
                 max_entries: int = DEFAULT_MAX_ENTRIES, max_backoff: float = DEFAULT_MAX_BACKOFF,
                 idle_sleep: float = 0.0, **limits: Any):
        super().__init__()
        self.urls = list(dict.fromkeys(validate_feed_url(u) for u in urls))
        if not self.urls:
            raise ValueError("PollFeeds needs at least one feed URL")
        limits.setdefault("retries", DEFAULT_FETCH_RETRIES)
        FetchLimits(**limits)  # an unknown limit is a TypeError now, not inside a worker
        self.poll_interval, self.stop_after, self.idle_sleep = float(poll_interval), stop_after, idle_sleep
        self.max_entries, self.max_backoff, self.limits = max_entries, max_backoff, limits

    def expand(self, pbegin):
        return (pbegin
                | "Ticks" >> Ticks(self.poll_interval, self.stop_after, self.idle_sleep)
                | "PerFeed" >> beam.FlatMap(_fan_out, self.urls).with_output_types(Tuple[str, float])
                | "Poll" >> beam.ParDo(_PollFeedDoFn(self.poll_interval, self.max_backoff, self.max_entries,
                                                     self.limits)).with_input_types(Tuple[str, float]))


# ------------------------------------------------------------------ entries and the seen filter
def entry_key(record: Mapping[str, Any]) -> str:
    """What makes an entry 'the same entry' across polls: its guid, else its link, else the article id (content
    hash), else a hash of its raw fields (an entry that failed to parse)."""
    for field_name, prefix in (("guid", "guid:"), ("url", "link:"), ("id", "id:")):
        value = record.get(field_name)
        if isinstance(value, str) and value.strip():
            return prefix + value.strip()
    raw = json.dumps([str(record.get(k)) for k in ("title", "text", "published")], ensure_ascii=False)
    return "raw:" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:24]


def feed_entry_records(raw: Mapping[str, Any], limits: ParseLimits = ParseLimits()) -> list[dict]:
    """One polled document -> entries: {"key", "ref", "article"} or {"key", "ref", "error"[, "excerpt"]}.

    Feed-level problems (fetch failed, not a feed, no entries) have key None: they are never filtered as seen.
    Unlike batch parse_raw, `max_entries` is applied later, to the *new* entries of a poll (Seen)."""
    ref, data = raw["ref"], raw.get("data")
    if raw.get("error"):
        return [{"key": None, "ref": ref, "error": raw["error"], "excerpt": data or None}]
    if not data or not data.strip():
        return [{"key": None, "ref": ref, "error": "empty feed document"}]
    fetched_at = raw.get("fetched_at")
    if isinstance(fetched_at, str):
        fetched_at = dt.datetime.fromisoformat(fetched_at)
    out = []
    # the batch per-entry code (transforms.parse.feed_records): a bad entry is its own error, keyed by its
    # guid/link when it has one, so it is reported once and the good entries of the document still pass
    for entry_ref, result, fields in guarded(feed_records(data, ref, fetched_at, limits), ref, 3):
        if isinstance(result, ParseError):
            key = entry_key(fields) if fields and entry_ref != ref else None
            out.append({"key": key, "ref": entry_ref, "error": str(result),
                        **({"excerpt": data} if entry_ref == ref else {})})
        else:
            out.append({"key": entry_key(result), "ref": entry_ref, "article": result})
    return out


def _entries(item, limits: ParseLimits):
    url, raw = item
    yield url, {"poll_time": raw.get("poll_time"), "entries": feed_entry_records(raw, limits)}


def remember(known: dict[str, float], present: Iterable[str], now: float, ttl: float, cap: int) -> dict[str, float]:
    """The bounded seen-set: keys in `present` (the current document) are refreshed to `now` and always kept;
    others are dropped `ttl` seconds after they were last present; beyond `cap`, the longest-absent go first."""
    present = set(present)
    for key in present:
        known[key] = now
    for key in [k for k, t in known.items() if k not in present and now - t > ttl]:
        del known[key]
    excess = len(known) - max(cap, len(present))
    if excess > 0:
        for key in sorted((k for k in known if k not in present), key=known.__getitem__)[:excess]:
            del known[key]
    return known


class _SeenEntriesDoFn(beam.DoFn):
    """(feed URL, {"entries": [...]}) -> entries not emitted before for that feed (key None: always emitted).

    State per feed URL: {entry key: last time present in the feed}, bounded by `remember` (an entry is
    remembered while its feed carries it, and for `ttl` seconds after; at most max(cap, current entries) keys).
    At most `max_entries` new entries per poll are emitted as articles; further new ones become dead letters
    (and are remembered, so they are reported once)."""

    SEEN = userstate.ReadModifyWriteStateSpec("seen", PickleCoder())

    def __init__(self, ttl: float, cap: int, max_entries: int):
        self.ttl, self.cap, self.max_entries = ttl, cap, max_entries
        self.already = counter("entries_seen_before")

    def process(self, item, seen=beam.DoFn.StateParam(SEEN)):
        url, polled = item
        entries = polled["entries"]
        keys = [e["key"] for e in entries if e.get("key") is not None]
        if not keys:  # only feed-level errors: nothing to remember
            yield from entries
            return
        known = seen.read() or {}
        fresh: set[str] = set()
        taken = 0
        for e in entries:
            key = e.get("key")
            if key is None:
                yield e
            elif key in known or key in fresh:
                self.already.inc()
            else:
                fresh.add(key)
                taken += "article" in e
                if "article" in e and taken > self.max_entries:
                    e = {"key": key, "ref": e["ref"],
                         "error": f"more than max_entries {self.max_entries} new entries in one poll of {url}; "
                                  f"this entry was skipped"}
                yield e
        seen.write(remember(known, keys, time.time(), self.ttl, self.cap))


class _EntryRecordDoFn(beam.DoFn):
    """A new entry -> its article (main) or a parse dead letter; every one counted as `read`."""

    def __init__(self):
        self.read = counter("read")

    def process(self, entry: dict):
        self.read.inc()
        if "article" in entry:
            yield entry["article"]
        else:
            yield tagged_dead(entry["ref"], "parse", entry["error"], excerpt=entry.get("excerpt"))


class NewEntries(beam.PTransform):
    """(feed URL, raw input) -> {"articles": articles of entries never emitted before, "dead_letter": ...}."""

    def __init__(self, limits: ParseLimits = ParseLimits(), seen_ttl: float = DEFAULT_SEEN_TTL,
                 seen_max: int = DEFAULT_SEEN_MAX, max_entries: int = DEFAULT_MAX_ENTRIES):
        super().__init__()
        self.limits, self.seen_ttl, self.seen_max, self.max_entries = limits, seen_ttl, seen_max, max_entries

    def expand(self, raws):
        records = (raws
                   | "Entries" >> beam.FlatMap(_entries, self.limits).with_output_types(Tuple[str, Any])
                   | "Seen" >> beam.ParDo(_SeenEntriesDoFn(self.seen_ttl, self.seen_max, self.max_entries)
                                          ).with_input_types(Tuple[str, Any])
                   | "Records" >> beam.ParDo(_EntryRecordDoFn()).with_outputs(DEAD, main="articles"))
        return {"articles": records.articles, DEAD: records[DEAD]}


def _models_off(article: dict, targets: Mapping[str, list[str]]) -> dict:
    from transforms.ner import skip_ner
    from transforms.stance import skip_stance

    return skip_stance(skip_ner(article, MODELS_OFF), targets, MODELS_OFF)


# ------------------------------------------------------------------ writing while the stream runs
def window_start(epoch: float, window_seconds: int) -> float:
    return math.floor(epoch / window_seconds) * window_seconds


def stream_file_name(window_epoch: float, lines: Sequence[str]) -> str:
    """`stream-<window start, UTC>-<hash of the content>.jsonl`: a retried bundle rewrites the same file."""
    stamp = dt.datetime.fromtimestamp(window_epoch, dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:16]
    return f"stream-{stamp}-{digest}.jsonl"


class _StreamFileWriter(beam.DoFn):
    """Each bundle's records -> one JSONL file per (folder, window), written atomically in finish_bundle.

    kind "articles": validated against schemas.Article, into dt=<published>/; an invalid article is written as
    a dead letter (stage validate). kind "duplicates" / "dead_letter": validated DuplicateRecord / DeadLetter
    into duplicates/ or dead_letter/. Windows are fixed windows of *processing time* (when the record is
    written): see docs/streaming.md for why not Beam windows. Counters: written, duplicates, dead_lettered."""

    MODELS = {"articles": "Article", "duplicates": "DuplicateRecord", "dead_letter": "DeadLetter"}
    COUNTERS = {"articles": "written", "duplicates": "duplicates", "dead_letter": "dead_lettered"}

    def __init__(self, output: str, kind: str, window_seconds: int):
        if kind not in self.MODELS:
            raise ValueError(f"unknown output kind {kind!r}")
        self.output, self.kind, self.window_seconds = output, kind, window_seconds
        self.buffer: dict[tuple[str, str, float], list[str]] = {}

    def start_bundle(self):
        self.buffer = {}

    def _add(self, kind: str, folder: str, line: str) -> None:
        self.buffer.setdefault((kind, folder, window_start(time.time(), self.window_seconds)), []).append(line)

    def process(self, record: dict):
        import schemas

        model = getattr(schemas, self.MODELS[self.kind])
        try:
            clean = model.model_validate(record).model_dump(mode="json")
        except Exception as exc:
            if self.kind != "articles":
                raise  # our own records: a bug, not data
            counter("dead_letter_validate").inc()
            dead = dead_letter(record.get("input_ref", "?"), "validate", f"schema validation failed: {exc}",
                               article_id=record.get("id"))
            self._add("dead_letter", "dead_letter",
                      to_json_line(schemas.DeadLetter.model_validate(dead).model_dump(mode="json")))
            return
        folder = stream_folder(self.kind, clean["published"] if self.kind == ARTICLES else None)
        self._add(self.kind, folder, to_json_line(clean))

    def finish_bundle(self):
        for (kind, folder, window), lines in sorted(self.buffer.items()):
            lines = sorted(lines)
            path = join_path(self.output, folder, stream_file_name(window, lines))
            write_atomically(path, lines)
            counter(self.COUNTERS[kind]).inc(len(lines))
            log.info("wrote %s (%d records)", path, len(lines))
        self.buffer = {}


def _write(pcoll, label: str, output: str, kind: str, window_seconds: int):
    return pcoll | f"Write{label}" >> beam.ParDo(_StreamFileWriter(output, kind, window_seconds))


# ------------------------------------------------------------------ the graph
@dataclass
class StreamSettings:
    """Everything streaming adds to GraphConfig (CLI: the StreamingOptions below)."""
    window_seconds: int = DEFAULT_WINDOW_SECONDS
    skip_models: bool = False
    max_entries: int = DEFAULT_MAX_ENTRIES
    seen_ttl: float = DEFAULT_SEEN_TTL
    seen_max: int = DEFAULT_SEEN_MAX
    text_ttl: float = DEFAULT_DEDUP_TTL  # exact and near-duplicate state (--dedup-ttl)
    text_max: int = DEFAULT_TEXT_MAX
    dedup_threshold: Optional[float] = None  # None: cfg.dedup_threshold (--dedup-threshold, as batch)
    max_per_band: int = DEFAULT_BAND_MAX
    max_backoff: float = DEFAULT_MAX_BACKOFF
    idle_sleep: float = 0.0  # see _PacedImpulseSeqGenDoFn; run_streaming sets it for the local runner
    fetch_limits: Optional[dict] = None  # FetchLimits overrides (retries defaults to DEFAULT_FETCH_RETRIES)


def build_streaming(p: beam.Pipeline, feeds: Sequence[str], cfg, poll_interval: float,
                    stop_after: float | None = None, settings: StreamSettings | None = None) -> None:
    """Add the streaming graph to `p`: poll `feeds` every `poll_interval` s (until `stop_after` s, or forever),
    process new entries with `cfg` (pipeline.graph.GraphConfig) and write windowed JSONL under cfg.output."""
    from transforms.langid import DetectLanguage

    s = settings or StreamSettings()
    out, win = cfg.output, s.window_seconds
    raws = p | "PollFeeds" >> PollFeeds(feeds, poll_interval, stop_after, max_entries=s.max_entries,
                                         max_backoff=s.max_backoff, idle_sleep=s.idle_sleep,
                                         **(s.fetch_limits or {}))
    new = raws | "NewEntries" >> NewEntries(cfg.limits, s.seen_ttl, s.seen_max, s.max_entries)
    _write(new[DEAD], "ParseDeadLetters", out, "dead_letter", win)
    lang = new["articles"] | "Language" >> DetectLanguage()
    _write(lang[DEAD], "LanguageDeadLetters", out, "dead_letter", win)
    threshold = cfg.dedup_threshold if s.dedup_threshold is None else s.dedup_threshold
    dedup = lang.articles | "Dedup" >> StreamDedup(threshold, cfg.num_perm, cfg.shingle_size, s.text_ttl,
                                                   s.text_max, s.max_per_band)
    _write(dedup["exact_duplicates"], "Duplicates", out, "duplicates", win)
    _write(dedup["near_duplicates"], "NearDuplicates", out, "duplicates", win)
    articles = dedup["articles"]
    if s.skip_models:
        articles = articles | "ModelsOff" >> beam.Map(_models_off, dict(cfg.targets))
    else:
        ner = articles | "NER" >> RecogniseEntities(cfg.ner_model, window=cfg.ner_window,
                                                          decoding=cfg.ner_decoding,
                                                          max_batch_size=cfg.ner_batch_size,
                                                          torch_threads=cfg.torch_threads,
                                                          compile_model=cfg.compile_models)
        _write(ner[DEAD], "NerDeadLetters", out, "dead_letter", win)
        _write(ner["failed_batches"], "NerFailedBatches", out, "dead_letter", win)
        stance = ner["articles"] | "Stance" >> ClassifyStance(cfg.stance_model, cfg.targets,
                                                                    max_batch_size=cfg.stance_batch_size,
                                                                    auto_top_n=cfg.auto_targets,
                                                                    torch_threads=cfg.torch_threads,
                                                                    compile_model=cfg.compile_models)
        _write(stance[DEAD], "StanceDeadLetters", out, "dead_letter", win)
        _write(stance["failed_batches"], "StanceFailedBatches", out, "dead_letter", win)
        articles = stance["articles"]
    _write(articles, "Articles", out, "articles", win)


# ------------------------------------------------------------------ CLI
def resolve_streaming_runner(options: PipelineOptions) -> float:
    """Pick the runner for a streaming run; returns the impulse's idle sleep for it.

    DirectRunner (or none) -> FnApiRunner, in_memory, one worker: the only local runner measured to run
    PeriodicImpulse in real time (docs/streaming.md). BundleBasedDirectRunner cannot run PeriodicImpulse, and
    more than one worker gives stateful DoFns inconsistent state, so both are refused."""
    from .launch import UsageError

    std, direct = options.view_as(StandardOptions), options.view_as(DirectOptions)
    std.streaming = True
    runner = std.runner if isinstance(std.runner, str) or std.runner is None else type(std.runner).__name__
    if runner in (None, "DirectRunner", "direct", "SwitchingDirectRunner", "FnApiRunner"):
        if (direct.direct_num_workers or 1) > 1:
            raise UsageError("--streaming runs locally with one worker: with --direct_num_workers > 1 the "
                             "seen-entries state was measured inconsistent (entries emitted twice)")
        std.runner = "FnApiRunner"
        direct.direct_running_mode = direct.direct_running_mode or "in_memory"
        return 3600.0  # sleep until the next tick (capped at an hour per wait)
    if runner in ("BundleBasedDirectRunner", "BundleBasedDirectRunner()"):
        raise UsageError("--streaming: BundleBasedDirectRunner cannot run PeriodicImpulse (Beam 2.77: 'Transform "
                         "node ...ProcessKeyedElements/GroupByKey... was not replaced'); use DirectRunner")
    return 0.0


def _check_streaming(opts, sopts) -> None:
    from .launch import UsageError

    if opts.input:
        raise UsageError("--streaming polls feeds only: --input (files) is for batch runs")
    if not opts.feeds and not opts.feeds_file:
        raise UsageError("--streaming needs --feeds and/or --feeds-file")
    if not opts.output:
        raise UsageError("--output is required")
    if sopts.poll_interval <= 0:
        raise UsageError("--poll-interval must be > 0 seconds")
    if sopts.stop_after is not None and sopts.stop_after <= 0:
        raise UsageError("--stop-after must be > 0 seconds")
    if sopts.window_seconds < 1:
        raise UsageError("--window-seconds must be at least 1")
    if opts.max_entries_per_feed < 1:
        raise UsageError("--max-entries-per-feed must be at least 1")
    if (sopts.seen_ttl <= 0 or sopts.dedup_ttl <= 0 or sopts.seen_max < 1 or sopts.max_backoff <= 0
            or sopts.fetch_retries < 0 or sopts.dedup_max < 1 or sopts.band_max < 2):
        raise UsageError("--seen-ttl, --dedup-ttl, --seen-max, --dedup-max and --max-backoff must be positive, "
                         "--band-max at least 2, --fetch-retries >= 0")
    if not opts.skip_models:
        for flag, value in (("--ner-model", opts.ner_model), ("--stance-model", opts.stance_model)):
            looks_local = value.startswith((".", "/", "~")) or value.count("/") > 1
            if looks_local and "://" not in value and not os.path.isdir(os.path.expanduser(value)):
                raise UsageError(f"{flag} {value}: no such model directory (or give --skip-models)")


def read_counters(result) -> tuple[dict[str, int], dict[str, int]]:
    """pipeline.launch.counter_values, working around the FnApiRunner's metrics recursion.

    After a streaming run the FnApiRunner's per-stage monitoring data is a chain of lazy generators, one per
    bundle, so reading it recurses once per bundle: RecursionError at the default limit (measured). It is read
    in a thread with a large stack and a raised recursion limit (restored afterwards)."""
    from .launch import counter_values

    box: dict[str, Any] = {}

    def target():
        try:
            box["values"] = counter_values(result)
            box["reasons"] = counter_values(result, REASONS_NAMESPACE)
        except BaseException as exc:  # reported in the caller's thread
            box["error"] = exc

    old_limit, old_stack = sys.getrecursionlimit(), threading.stack_size()
    try:
        threading.stack_size(512 * 1024 * 1024)
        sys.setrecursionlimit(max(old_limit, 200_000))
        worker = threading.Thread(target=target, name="read-counters")
        worker.start()
        worker.join()
    finally:
        threading.stack_size(old_stack)
        sys.setrecursionlimit(old_limit)
    if "error" in box:
        raise box["error"]
    return box["values"], box["reasons"]


def run_streaming(argv: list[str] | None = None) -> dict[str, int]:
    """`newsbeam run --streaming ...`: build, run until --stop-after (or forever), print the summary, return the
    counters. Raises pipeline.launch.UsageError for bad options."""
    from .options import NewsbeamOptions
    from .launch import REMOTE_RUNNERS, feed_urls, graph_config, remote_result_line, summary_lines, validate_runner

    options = PipelineOptions(argv)
    opts, sopts = options.view_as(NewsbeamOptions), options.view_as(StreamingOptions)
    _check_streaming(opts, sopts)
    validate_runner(options)  # on Dataflow: gs:// temp/staging, project/region, a cloud --output, up front
    feeds = feed_urls(opts)
    cfg = graph_config(opts)
    idle_sleep = resolve_streaming_runner(options)
    remote = options.view_as(StandardOptions).runner in REMOTE_RUNNERS
    options.view_as(SetupOptions).save_main_session = False
    settings = StreamSettings(window_seconds=sopts.window_seconds, skip_models=opts.skip_models,
                              max_entries=opts.max_entries_per_feed, seen_ttl=sopts.seen_ttl,
                              seen_max=sopts.seen_max, text_ttl=sopts.dedup_ttl, max_backoff=sopts.max_backoff,
                              idle_sleep=idle_sleep, fetch_limits={"retries": sopts.fetch_retries},
                              text_max=sopts.dedup_max, max_per_band=sopts.band_max)
    started = time.time()
    p = beam.Pipeline(options=options)
    build_streaming(p, feeds, cfg, sopts.poll_interval, sopts.stop_after, settings)
    result = p.run()
    if remote:  # a streaming job runs on until drained: report the submission, counters are in the console
        print(remote_result_line(result, options, "streaming graph"))
        return {}
    result.wait_until_finish()
    values, reasons = read_counters(result)
    for line in summary_lines(values, time.time() - started, reasons, verbose=opts.verbose):
        print(line)
    return values


def main(argv: list[str] | None = None) -> int:
    from .launch import UsageError

    from .launch import configure_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    configure_logging("--verbose" in argv)
    try:
        values = run_streaming(argv)
    except UsageError as exc:
        print(f"newsbeam: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("newsbeam: streaming run interrupted; every file already written is complete", file=sys.stderr)
        return 130
    from .launch import accounted

    return 0 if values.get("read", 0) == accounted(values) else 1  # a submitted remote job returns {}: 0 == 0


if __name__ == "__main__":  # `python -m pipeline.streaming ...` is `newsbeam run --streaming ...`
    from .arguments import check_pipeline_args

    _argv = sys.argv[1:] if "--streaming" in sys.argv[1:] else ["--streaming", *sys.argv[1:]]
    check_pipeline_args("run", _argv)
    raise SystemExit(main(_argv))
