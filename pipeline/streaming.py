"""Streaming mode's own steps: what polling feeds forever needs that a batch run does not. The graph itself (parse,
language, dedup, models, writers) is pipeline.graph's, shared with batch; docs/streaming.md says why each step
is a ParDo fused after the source (on the local runner a GroupByKey or Flatten runs only when the source stops).

    Ticks      a PeriodicImpulse schedule, paced (sleeps until the next tick instead of spinning)
    PollFeeds  stateful, keyed by feed URL: conditional GET (ETag / Last-Modified kept in state), exponential
               backoff after failures (failure count and next allowed poll kept in state)
    NewEntries stateful, keyed by feed URL: each polled document reduced to the entries never emitted before
               (bounded: TTL + cap per feed), the raw input then parsed by transforms.parse.ParseArticles
    streaming_runner  the runner choice: the local runner that runs this graph in real time (paced, per-bundle
               files), or Beam's own behaviour and windows elsewhere (StreamRunner)

`read` counts new entries (an entry met again in a later poll is `entries_seen_before`) and failed polls.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
from typing import Any, Iterable, Mapping, NamedTuple, Sequence, Tuple

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, PortableOptions, StandardOptions
from apache_beam.transforms import userstate
from apache_beam.transforms.periodicsequence import ImpulseSeqGenDoFn, ImpulseSeqGenRestrictionProvider
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Timestamp

from transforms.common import DEAD, counter, tagged_dead
from transforms.parse import ParseError, feed_entries

from .feeds import DEFAULT_MAX_ENTRIES, FetchLimits, feed_raw_inputs, fetch_feed, new_session, validate_feed_url
from .options import DEFAULT_FETCH_RETRIES, DEFAULT_MAX_BACKOFF, DEFAULT_SEEN_MAX, DEFAULT_SEEN_TTL
from .stream_sinks import PER_BUNDLE, WINDOWED

log = logging.getLogger("newsbeam.streaming")


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
        out = TimestampedValue(due, due)  # what Beam's generator emits for a tick without data
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


# ------------------------------------------------------------------ the seen filter
def entry_key(record: Mapping[str, Any]) -> str:
    """What makes an entry 'the same entry' across polls: its guid, else its link, else the article id (content
    hash), else a hash of its raw fields (an entry that failed to parse)."""
    for field_name, prefix in (("guid", "guid:"), ("url", "link:"), ("id", "id:")):
        value = record.get(field_name)
        if isinstance(value, str) and value.strip():
            return prefix + value.strip()
    raw = json.dumps([str(record.get(k)) for k in ("title", "text", "published")], ensure_ascii=False)
    return "raw:" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:24]


def document_entries(raw: Mapping[str, Any]) -> list[tuple[str, str | None, bool]] | None:
    """A polled document -> (entry ref, key, is an entry with readable fields) per entry; None for a document
    that is a problem as a whole (a failed poll, no readable entry): parse reports that, never filtered as
    seen. An entry whose fields could not be read is keyed by what was readable (guid, link), else None."""
    if raw.get("error") or not raw.get("data") or not raw["data"].strip():
        return None
    entries = []
    for ref, fields in feed_entries(raw["data"], raw["ref"]):
        if ref == raw["ref"]:
            return None
        if isinstance(fields, ParseError):
            keys = getattr(fields, "fields", None)
            entries.append((ref, entry_key(keys) if keys else None, False))
        else:
            entries.append((ref, entry_key(fields), True))
    return entries


def select_new(entries: Sequence[tuple[str, str | None, bool]], known: Mapping[str, float], max_entries: int
               ) -> tuple[list[str], list[str], int]:
    """(refs to parse, refs of new entries over `max_entries` in this poll, entries seen before): an entry is new
    if its key is neither remembered nor met earlier in the document; keyless entries always pass."""
    take, over, fresh, before, taken = [], [], set(), 0, 0
    for ref, key, readable in entries:
        if key is not None and (key in known or key in fresh):
            before += 1
            continue
        if key is not None:
            fresh.add(key)
        taken += readable
        (over if readable and taken > max_entries else take).append(ref)
    return take, over, before


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
    """(feed URL, raw input) -> the raw input restricted to its new entries (`entries`, for parse_raw), and a
    dead letter for each new entry beyond `max_entries` in one poll (remembered, so reported once).

    State per feed URL: {entry key: last time present in the feed}, bounded by `remember`."""

    SEEN = userstate.ReadModifyWriteStateSpec("seen", PickleCoder())

    def __init__(self, ttl: float, cap: int, max_entries: int):
        self.ttl, self.cap, self.max_entries = ttl, cap, max_entries
        self.already, self.read = counter("entries_seen_before"), counter("read")

    def process(self, item, seen=beam.DoFn.StateParam(SEEN)):
        url, raw = item
        entries = document_entries(raw)
        if entries is None:
            yield raw
            return
        known = seen.read() or {}
        take, over, before = select_new(entries, known, self.max_entries)
        self.already.inc(before)
        for ref in over:
            self.read.inc()
            yield tagged_dead(ref, "parse", f"more than max_entries {self.max_entries} new entries in one poll "
                                            f"of {url}; this entry was skipped")
        if take:
            yield dict(raw, entries=take, max_entries=None)
        keys = [key for _ref, key, _readable in entries if key is not None]
        if keys:
            seen.write(remember(known, keys, time.time(), self.ttl, self.cap))


class NewEntries(beam.PTransform):
    """(feed URL, raw input) -> {"raws": raw inputs of the new entries only, for ParseArticles,
    "dead_letter": new entries over the per-poll cap}."""

    def __init__(self, seen_ttl: float = DEFAULT_SEEN_TTL, seen_max: int = DEFAULT_SEEN_MAX,
                 max_entries: int = DEFAULT_MAX_ENTRIES):
        super().__init__()
        self.seen = _SeenEntriesDoFn(seen_ttl, seen_max, max_entries)

    def expand(self, raws):
        out = raws | "Seen" >> beam.ParDo(self.seen).with_input_types(Tuple[str, Any]).with_outputs(
            DEAD, main="raws")
        return {"raws": out.raws, DEAD: out[DEAD]}


# ------------------------------------------------------------------ the runner
class StreamRunner(NamedTuple):
    """What the runner decides in the streaming graph: the impulse's pacing and the writer."""
    idle_sleep: float  # seconds the impulse may sleep until its next tick (0: Beam's own generator)
    writer: str  # pipeline.stream_sinks: WINDOWED (Beam's windows) or PER_BUNDLE (the local real-time runner)


def streaming_runner(options: PipelineOptions) -> StreamRunner:
    """Pick the runner for a streaming run, and with it the impulse's pacing and the writer.

    DirectRunner (or none) -> FnApiRunner, in_memory, one worker: the only local runner measured to run
    PeriodicImpulse in real time (docs/streaming.md); paced, and per-bundle files, since there a GroupByKey after
    the source (Beam's windowed file writing) fires only when the source stops. PortableRunner on the embedded
    job server is that engine too: per-bundle files. Any other runner (Dataflow) gets Beam's generator and
    Beam's event-time windows. BundleBasedDirectRunner cannot run PeriodicImpulse, and more than one local
    worker gives stateful DoFns inconsistent state, so both are refused (ValueError)."""
    std, direct = options.view_as(StandardOptions), options.view_as(DirectOptions)
    std.streaming = True
    runner = std.runner if isinstance(std.runner, str) or std.runner is None else type(std.runner).__name__
    if runner in (None, "DirectRunner", "direct", "SwitchingDirectRunner", "FnApiRunner"):
        if (direct.direct_num_workers or 1) > 1:
            raise ValueError("--streaming runs locally with one worker: with --direct_num_workers > 1 the "
                             "seen-entries state was measured inconsistent (entries emitted twice)")
        std.runner = "FnApiRunner"
        direct.direct_running_mode = direct.direct_running_mode or "in_memory"
        return StreamRunner(3600.0, PER_BUNDLE)  # sleep until the next tick (capped at an hour per wait)
    if runner in ("BundleBasedDirectRunner", "BundleBasedDirectRunner()"):
        raise ValueError("--streaming: BundleBasedDirectRunner cannot run PeriodicImpulse (Beam 2.77: 'Transform "
                         "node ...ProcessKeyedElements/GroupByKey... was not replaced'); use DirectRunner")
    if runner in ("PortableRunner", "portable") and options.view_as(PortableOptions).job_endpoint == "embed":
        return StreamRunner(0.0, PER_BUNDLE)
    return StreamRunner(0.0, WINDOWED)
