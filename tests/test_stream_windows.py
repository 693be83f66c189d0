"""Streaming on Beam's windows (pipeline.stream_sinks, the `windowed` writer): a real Beam pipeline, TestStream on
the BundleBasedDirectRunner (the local runner with a watermark manager; TestStream does not run on the
FnApiRunner), feeding the streaming writer records across two event-time windows, with watermark advances and a
late record. Files come per window, pane and shard (not per element or bundle), named so the layout's readers
read them back. Also: the runner choice (which writer for which runner) and the event-time rule."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest

WINDOW = 60
T0 = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.timezone.utc).timestamp()  # a window start
SHARDS = 2


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _article(n: int, fetched: float, published: float | None = None, **extra) -> dict:
    rec = {"id": f"{n:024x}", "source": "feed", "url": f"https://example.org/{n}", "title": f"Title {n}",
           "text": f"Text of article {n}.", "published": dt.datetime.fromtimestamp(
               published if published is not None else fetched, dt.timezone.utc).date().isoformat(),
           "fetched_at": _iso(fetched), "input_ref": f"https://example.org/rss.xml#{n}"}
    if published is not None:
        rec["published_at"] = _iso(published)
    rec.update(extra)
    return rec


def _duplicate(n: int) -> dict:
    return {"id": f"{n:024x}", "duplicate_of": f"{1:024x}", "kind": "exact", "similarity": 1.0, "source": "feed",
            "title": f"Title {n}", "published": "2026-11-25", "input_ref": f"https://example.org/rss.xml#{n}"}


def _dead(n: int) -> dict:
    return {"input_ref": f"https://example.org/rss.xml#{n}", "stage": "parse", "error": "no title or text"}


def _same_shard_as(first: dict, fetched: float) -> dict:
    """An article of `first`'s day and window that lands in `first`'s shard (the shard is a hash of the written
    line, so it is searched for, not assumed): two bundles' records in one file, whatever the schema writes."""
    from pipeline.sinks import shard_of, to_json_line, validated

    def shard(rec: dict) -> int:
        return shard_of(to_json_line(validated("articles", rec)[0]), SHARDS)

    return next(a for a in (_article(n, fetched=fetched) for n in range(100, 200)) if shard(a) == shard(first))


# (branch key as in ProcessArticles' outputs, record, element timestamp); the element timestamp is the poll,
# as the records carry it through the graph (the dead letter and the duplicate have no time of their own)
_FIRST = _article(1, fetched=T0 + 30, published=T0 + 10)
ON_TIME = [
    [("articles", _FIRST, T0 + 30),
     ("duplicates", _duplicate(2), T0 + 15)],
    [("articles", _article(3, fetched=T0 + 40), T0 + 40),  # no published_at: its fetch time
     ("articles", _same_shard_as(_FIRST, fetched=T0 + 45), T0 + 45),  # with article 1, from another bundle
     ("articles", _article(4, fetched=T0 + 50, published=T0 - 3 * 86400), T0 + 50),  # too old: its fetch
     ("articles", _article(5, fetched=T0 + 55, published=T0 + 86400), T0 + 55)],  # in the future: its fetch
    [("articles", _article(6, fetched=T0 + 80, published=T0 + 70), T0 + 80),  # the second window
     ("articles", _article(7, fetched=T0 + 90, published=T0 + 75), T0 + 90),
     ("dead_letter_parse", _dead(8), T0 + 75),
     ("articles", {**_article(9, fetched=T0 + 20), "title": None}, T0 + 20)],  # invalid: a dead letter
]
LATE = [("articles", _article(10, fetched=T0 + 100, published=T0 + 5), T0 + 100)]  # after window 1 fired


def _run_windowed(out: str):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_stream import TestStream
    from apache_beam.transforms.window import TimestampedValue

    from pipeline.graph import WriteStreamOutputs
    from pipeline.stream_sinks import WINDOWED

    keys = sorted({key for bundle in ON_TIME + [LATE] for key, _r, _t in bundle})
    stream = TestStream().advance_watermark_to(T0)
    for bundle in ON_TIME:  # each add_elements is its own bundle
        stream = stream.add_elements([TimestampedValue((key, rec), ts) for key, rec, ts in bundle])
    stream = (stream.advance_watermark_to(T0 + WINDOW + 30)  # window 1 is complete: it fires
              .add_elements([TimestampedValue((key, rec), ts) for key, rec, ts in LATE])
              .advance_watermark_to(T0 + 3 * WINDOW)  # window 2 fires
              .advance_watermark_to_infinity())
    options = PipelineOptions(["--runner=BundleBasedDirectRunner", "--streaming"])
    p = beam.Pipeline(options=options)
    parts = p | stream | beam.Partition(lambda kv, n: keys.index(kv[0]), len(keys))
    outputs = {key: parts[i] | f"Record_{key}" >> beam.Map(lambda kv: kv[1]) for i, key in enumerate(keys)}
    outputs | WriteStreamOutputs(out, WINDOW, WINDOWED, shards=SHARDS, late_delay=0)
    p.run().wait_until_finish()


@pytest.fixture(scope="module")
def windowed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("windows")
    _run_windowed(str(out))
    return out


def _expected_files() -> dict[str, set[str]]:
    """file (relative to the root) -> ids in it, from the writer's own rules: validation, event time, shard."""
    from apache_beam.utils.timestamp import Timestamp

    from pipeline.layout import ARTICLES, DEAD_LETTER, DUPLICATES, stream_folder
    from pipeline.sinks import shard_of, to_json_line, validated
    from pipeline.stream_sinks import element_time, event_time, window_file_name, window_start

    kinds = {"articles": ARTICLES, "duplicates": DUPLICATES, "dead_letter_parse": DEAD_LETTER}
    files: dict[str, set[str]] = {}
    on_time_keys = set()
    for late, bundle in [(False, b) for b in ON_TIME] + [(True, LATE)]:
        for key, rec, ts in bundle:
            kind = kinds[key]
            clean, dead = validated(kind, rec)
            kind, clean = (kind, clean) if dead is None else (DEAD_LETTER, dead)
            line = to_json_line(clean)
            folder = stream_folder(kind, clean["published"] if kind == ARTICLES else None)
            start = window_start(event_time(kind, clean, element_time(Timestamp.of(ts))), WINDOW)
            file_key = (folder, start, shard_of(line, SHARDS))
            pane = 1 if late and file_key in on_time_keys else 0  # panes count per file key
            if not late:
                on_time_keys.add(file_key)
            name = f"{folder}/{window_file_name(start, pane, file_key[2], SHARDS)}"
            files.setdefault(name, set()).add(clean.get("id") or clean["input_ref"])
    return files


def _written(out) -> dict[str, list[dict]]:
    return {str(f.relative_to(out)): [json.loads(line) for line in f.read_text().splitlines()]
            for f in sorted(out.rglob("*.jsonl")) if "_state" not in f.parts}


def test_files_per_window_pane_and_shard(windowed_run):
    """Exactly the files the windows, panes and shards give: records of different bundles share a file, a record
    arriving after its window fired is in a late pane's file of that window, and nothing is written twice."""
    out = windowed_run
    written = _written(out)
    got = {name: {r.get("id") or r["input_ref"] for r in recs} for name, recs in written.items()}
    assert got == _expected_files()
    assert sum(len(recs) for recs in written.values()) == sum(len(b) for b in ON_TIME) + len(LATE)
    window_1 = [n for n in got if "T040000Z" in n and n.startswith("dt=")]
    assert any(len(got[n]) > 1 for n in window_1)  # several bundles, one file
    late_file = next(n for n, ids in got.items() if f"{10:024x}" in ids)
    assert got[late_file] == {f"{10:024x}"}  # a late pane holds only what came after the window fired


def test_window_of_each_record(windowed_run):
    """Published time when it is within a day before the fetch, else the fetch time; the dead letter and the
    duplicate by their element's time."""
    out = windowed_run
    window_of = {(r.get("id") or r["input_ref"]): name.split("/")[-1][7:23]
                 for name, recs in _written(out).items() for r in recs}
    first, second = "20261125T040000Z", "20261125T040100Z"
    assert window_of[f"{1:024x}"] == first and window_of[f"{3:024x}"] == first
    assert window_of[f"{4:024x}"] == first and window_of[f"{5:024x}"] == first  # too old / future: the fetch
    assert window_of[f"{6:024x}"] == second and window_of[f"{7:024x}"] == second
    assert window_of[f"{10:024x}"] == first  # late, still its published window
    assert window_of[f"{2:024x}"] == first and window_of["https://example.org/rss.xml#8"] == second


def test_files_are_sorted_validated_and_complete(windowed_run):
    import schemas

    out = windowed_run
    for name, recs in _written(out).items():
        lines = (out / name).read_text().splitlines()
        assert lines == sorted(lines) and all(lines)
        model = {"dt": schemas.Article, "du": schemas.DuplicateRecord, "de": schemas.DeadLetter}[name[:2]]
        for rec in recs:
            model.model_validate(rec)
        assert re.fullmatch(r"(dt=\d{4}-\d\d-\d\d|duplicates|dead_letter)/stream-\d{8}T\d{6}Z-p\d+-\d{5}-of-"
                            rf"{SHARDS:05d}\.jsonl", name), name
    invalid = [r for recs in _written(out).values() for r in recs if r.get("stage") == "validate"]
    assert [r["id"] for r in invalid] == [f"{9:024x}"]
    assert not [p for p in out.rglob("*") if p.is_file() and "_state" not in p.parts and p.suffix != ".jsonl"]


def test_counters_match_the_files(tmp_path):
    """The windowed writer counts written / duplicates / dead_lettered before its sink. Read on the FnApiRunner
    (a bounded input, the same writer): with TestStream the BundleBasedDirectRunner keeps only the last bundle's
    counter update (measured: 9 elements in 3 bundles counted 3)."""
    import apache_beam as beam
    from apache_beam.transforms.window import TimestampedValue

    from pipeline.graph import WriteStreamOutputs
    from pipeline.launch import counter_values
    from pipeline.stream_sinks import WINDOWED
    from tests.conftest import beam_pipeline

    rows = [row for bundle in ON_TIME + [LATE] for row in bundle]
    p = beam_pipeline()
    outputs = {key: (p | f"Create_{key}" >> beam.Create([(rec, ts) for k, rec, ts in rows if k == key])
                     | f"Stamp_{key}" >> beam.Map(lambda rt: TimestampedValue(*rt)))
               for key in sorted({k for k, _r, _t in rows})}
    outputs | WriteStreamOutputs(str(tmp_path), WINDOW, WINDOWED, shards=SHARDS, late_delay=0)
    result = p.run()
    result.wait_until_finish()
    counters = counter_values(result)
    written = _written(tmp_path)
    by_folder = {k: sum(len(v) for n, v in written.items() if n.startswith(k)) for k in ("dt=", "du", "de")}
    assert counters["written"] == by_folder["dt="] == 8
    assert counters["duplicates"] == by_folder["du"] == 1
    assert counters["dead_lettered"] == by_folder["de"] == 2
    assert counters["stream_files"] == len(written) and "stream_files_missing" not in counters
    assert {n.split("-p")[0] for n in written} == {n.split("-p")[0] for n in _expected_files()}  # same windows


def test_layout_readers_read_the_window_files(windowed_run):
    from newsbeam.output import read_output
    from pipeline.layout import ARTICLES, DEAD_LETTER, DUPLICATES, output_files

    out = windowed_run
    written = _written(out)
    for kind, prefix in ((ARTICLES, "dt="), (DUPLICATES, "duplicates/"), (DEAD_LETTER, "dead_letter/")):
        files = output_files(str(out), kind)
        assert sorted(str(out / n) for n in written if n.startswith(prefix)) == files
    articles = {rec["id"] for key, rec, _t in [r for b in ON_TIME + [LATE] for r in b] if key == "articles"}
    assert set(read_output(str(out))["id"]) == articles - {f"{9:024x}"}  # 9 is invalid: a dead letter
    assert len(read_output(str(out), "duplicates")) == 1 and len(read_output(str(out), "dead_letters")) == 2


# ------------------------------------------------------------------ the pure parts
def test_event_time_rule():
    from pipeline.stream_sinks import event_time

    fetched = T0 + 100
    art = {"fetched_at": _iso(fetched)}
    assert event_time("articles", {**art, "published_at": _iso(T0)}, 0.0) == T0
    assert event_time("articles", art, 0.0) == fetched
    assert event_time("articles", {**art, "published_at": _iso(fetched - 86401)}, 0.0) == fetched
    assert event_time("articles", {**art, "published_at": _iso(fetched + 1)}, 0.0) == fetched
    assert event_time("articles", {**art, "published_at": "2026-11-25T04:00:00"}, 0.0) == T0  # naive: UTC
    assert event_time("articles", {}, 42.0) == 42.0  # no fetch time: the fallback
    assert event_time("duplicates", {"published": "2026-11-25"}, 42.0) == 42.0


def test_element_time_ignores_the_end_of_the_global_window():
    from apache_beam.transforms.window import GlobalWindow
    from apache_beam.utils.timestamp import Timestamp

    from pipeline.stream_sinks import element_time

    assert element_time(Timestamp.of(T0)) == T0
    assert element_time(GlobalWindow().max_timestamp()) is None  # what RunInference outputs carry
    assert element_time(None) is None


def test_window_trigger_batches_late_panes_on_dataflow():
    """The graph's late panes wait `--window-seconds` of processing time, so late records of a window come in
    one file per shard and delay, not one per bundle (the tests above use 0: the BundleBasedDirectRunner stalls
    on processing-time triggers)."""
    from apache_beam.transforms import trigger

    from pipeline.stream_sinks import WriteEventWindows, window_trigger

    assert WriteEventWindows("out", 300).late_delay == 300
    assert repr(window_trigger(300)) == repr(trigger.AfterWatermark(late=trigger.AfterProcessingTime(300)))
    assert repr(window_trigger(0)) == repr(trigger.AfterWatermark(late=trigger.AfterCount(1)))


@pytest.mark.parametrize("argv, writer, idle", [
    ([], "per_bundle", 3600.0),
    (["--runner", "DirectRunner"], "per_bundle", 3600.0),
    (["--runner", "FnApiRunner"], "per_bundle", 3600.0),
    (["--runner", "PortableRunner", "--job_endpoint", "embed"], "per_bundle", 0.0),
    (["--runner", "DataflowRunner"], "windowed", 0.0),
])
def test_runner_chooses_the_writer(argv, writer, idle):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.streaming import streaming_runner

    assert tuple(streaming_runner(PipelineOptions(argv))) == (idle, writer)


def test_unknown_writer_is_refused():
    from pipeline.graph import WriteStreamOutputs

    with pytest.raises(ValueError, match="unknown streaming writer"):
        WriteStreamOutputs("out", 300, "hourly")


@pytest.mark.parametrize("runner, step, absent", [
    ("DataflowRunner", "Write/WriteWindows/Files", "Write/Write_articles"),
    ("DirectRunner", "Write/Write_articles", "Write/WriteWindows"),
])
def test_the_graph_takes_the_runners_writer(runner, step, absent):
    """One graph: the runner choice decides only which writer ends it (built here, not run)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.graph import build
    from pipeline.launch import graph_config, resolve_runner
    from pipeline.options import NewsbeamOptions

    url = "http://127.0.0.1:1/x.xml"
    options = PipelineOptions(["--streaming", "--runner", runner, "--feeds", url, "--output", "out",
                               "--skip-models", "--targets", "Armenia"])
    cfg = graph_config(options.view_as(NewsbeamOptions), runner=resolve_runner(options))
    p = beam.Pipeline(runner="FnApiRunner")
    build(p, cfg, feeds=[url])
    names = {t.unique_name for t in p.to_runner_api().components.transforms.values()}
    assert any(n.startswith(step) for n in names) and not any(n.startswith(absent) for n in names)
