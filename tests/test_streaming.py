"""Streaming mode (pipeline/streaming.py): one bounded run (`python -m pipeline.streaming`, a child process)
against loopback feeds that change between polls, checked from outside while it runs and after; plus unit tests
of the pieces that need no pipeline.

The run polls every 2 s for 10 s (5 ticks; 16 s and 8 ticks when the model weights are present). Feeds:
  /growing.xml  ETag per version; a thread swaps in v2 after v1 was served and v3 after v2 was served
                (new entries, one dropped, one with an old guid and a new title, one with no guid and no link)
  /static.xml   ETag: 200 once then 304s; one entry repeats a growing entry's text (exact duplicate), one has
                an impossible date (dead letter, once)
  /noetag.xml   no validators: the same 200 every poll, so only the seen filter keeps its entries single
  /failing.xml  500 twice, then fine: failure 1 (next tick), failure 2 (backoff: one tick skipped), recovery
"""
from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import threading
import time
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from tests.conftest import ROOT, read_jsonl
from tests.feed_server import FeedServer, Route

POLL = 2.0


def _weights_present() -> bool:
    from pipeline.options import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL

    return all((Path(d) / "config.json").is_file() for d in (DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL))


MODELS = _weights_present()
# With the models, loading them (torch import, two models) delays the first poll by several seconds and the
# overdue ticks then come together; a longer run keeps on-time ticks after that. Ticks are 0, 2, ... < STOP_AFTER.
TICKS = 8 if MODELS else 5
STOP_AFTER = POLL * TICKS


def item(guid: str | None, title: str, text: str, link: str | None = "auto", date: str | None = None) -> str:
    now = dt.datetime.now(dt.timezone.utc)
    parts = [f"<title>{escape(title)}</title>", f"<description>{escape(text)}</description>",
             f"<pubDate>{date or format_datetime(now)}</pubDate>"]
    if guid:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if link:
        href = "https://news.example/" + (guid or title.replace(" ", "-")) if link == "auto" else link
        parts.append(f"<link>{href}</link>")
    return "<item>" + "".join(parts) + "</item>"


def rss(title: str, items: list[str]) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
            f'<link>https://news.example/</link><description>test</description>{"".join(items)}</channel></rss>'
            ).encode("utf-8")


TEXT = {
    "g1": "Armenia and Azerbaijan resumed talks in Brussels on Monday, officials in Yerevan said.",
    "g2": "The European Central Bank kept its main interest rate unchanged on Thursday.",
    "g3": "Heavy snow closed roads across northern Spain and Madrid airport cancelled flights.",
    "g4": "A new museum of modern art opened in Rotterdam with works by Dutch painters.",
    "g5": "Parliament in Warsaw passed a budget bill after a long night of debate.",
    "g6": "Farmers protested in Berlin against new rules on diesel subsidies and land use.",
    "s1": "The city council of Lyon approved a plan to plant ten thousand trees by 2030.",
    "n1": "Engineers in Oslo tested a battery-powered ferry on its first winter crossing.",
    "n2": "A rare comet will be visible from the southern hemisphere next week, astronomers said.",
    "f1": "Officials in Baku said a new gas pipeline to Europe would open next spring.",
}
G_V1 = [item("g1", "Talks resume", TEXT["g1"]), item("g2", "Rates on hold", TEXT["g2"])]
G_V2 = G_V1 + [item("g3", "Snow in Spain", TEXT["g3"]), item(None, "Museum opens", TEXT["g4"])]  # g4: link only
G_V3 = [item("g1", "Talks resume (updated title)", TEXT["g1"]), item("g3", "Snow in Spain", TEXT["g3"]),
        item(None, "Museum opens", TEXT["g4"]), item("g5", "Budget passed", TEXT["g5"]),
        item(None, "Farmers protest", TEXT["g6"], link=None)]  # g6: neither guid nor link (keyed by id)
STATIC = [item("s1", "Trees for Lyon", TEXT["s1"]), item("s2", "Rates unchanged", TEXT["g2"]),  # s2: exact dup
          item("s3", "Bad date", "This entry has a date that cannot be parsed at all.", date="not a date")]
NOETAG = [item("n1", "Electric ferry", TEXT["n1"]), item("n2", "Comet", TEXT["n2"])]
FAILING = [item("f1", "Pipeline", TEXT["f1"])]


def _summary(stdout: str) -> dict[str, int]:
    """The summary's counters: 'read 3, written 2, ...' and the 'stages: a 1, b 2' line."""
    values = {}
    for line in stdout.splitlines():
        if line.startswith("newsbeam summary") or line.strip().startswith("stages:"):
            body = line.split(":", 1)[1] if line.strip().startswith("stages:") else line.split("):", 1)[1]
            for name, number in re.findall(r"([a-z_-]+) (\d+)", body):
                values[name.replace("-", "_")] = int(number)
    return values


@pytest.fixture(scope="module")
def stream_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stream_out")
    with FeedServer() as srv:
        v1 = Route(body=rss("Growing", G_V1), etag='"g-1"')
        v2 = Route(body=rss("Growing", G_V2), etag='"g-2"')
        v3 = Route(body=rss("Growing", G_V3), etag='"g-3"')
        growing = srv.add("/growing.xml", v1)
        static = srv.add("/static.xml", Route(body=rss("Static", STATIC), etag='"s-1"'))
        noetag = srv.add("/noetag.xml", Route(body=rss("NoEtag", NOETAG)))
        failing = srv.add("/failing.xml", Route(body=rss("Failing", FAILING), fail_times=2, fail_status=500))
        done = threading.Event()
        seen_files: dict[str, float] = {}

        def change_feed():  # each version replaces the last as soon as the last has been served once
            for served, nxt in ((v1, v2), (v2, v3)):
                while served.hits == 0 and not done.is_set():
                    time.sleep(0.02)
                srv.add("/growing.xml", nxt)

        def watch_files():  # what a reader sees while the run goes on
            while not done.is_set():
                for f in out.glob("*/stream-*.jsonl"):
                    seen_files.setdefault(str(f.relative_to(out)), time.monotonic())
                time.sleep(0.1)

        threads = [threading.Thread(target=change_feed, daemon=True), threading.Thread(target=watch_files,
                                                                                         daemon=True)]
        for t in threads:
            t.start()
        args = ["--streaming", "--feeds", growing, static, noetag, failing, "--output", str(out),
                "--poll-interval", str(POLL), "--stop-after", str(STOP_AFTER), "--fetch-retries", "0",
                "--window-seconds", "300", "--targets", "Armenia", "Azerbaijan"]
        if not MODELS:
            args.append("--skip-models")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        started = time.monotonic()
        try:
            proc = subprocess.run([sys.executable, "-m", "pipeline.streaming", *args], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=150)
        finally:
            ended = time.monotonic()
            done.set()
            for t in threads:
                t.join(timeout=5)
        requests = {name: srv.requests_to(path) for name, path in
                    (("growing", "/growing.xml"), ("static", "/static.xml"), ("noetag", "/noetag.xml"),
                     ("failing", "/failing.xml"))}
        served = {"v1": v1.hits, "v2": v2.hits, "v3": v3.hits}
    articles = [a for f in sorted(out.glob("dt=*/stream-*.jsonl")) for a in read_jsonl(f)]
    return {"proc": proc, "out": out, "started": started, "ended": ended, "seen_files": seen_files,
            "requests": requests, "served": served, "counters": _summary(proc.stdout),
            "articles": articles, "duplicates": [d for f in sorted(out.glob("duplicates/stream-*.jsonl"))
                                                 for d in read_jsonl(f)],
            "dead": [d for f in sorted(out.glob("dead_letter/stream-*.jsonl")) for d in read_jsonl(f)],
            "urls": {"growing": growing, "static": static, "noetag": noetag, "failing": failing}}


def _ok(run):
    proc = run["proc"]
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"


def _text_key(a: dict) -> str:
    return next(k for k, v in TEXT.items() if v == a["text"])


def test_run_finishes_and_every_record_is_accounted_for(stream_run):
    _ok(stream_run)
    c = stream_run["counters"]
    assert "every record accounted for" in stream_run["proc"].stdout
    assert c["read"] == c["written"] + c["duplicates"] + c["dead_lettered"]
    # the counters match the files
    assert c["written"] == len(stream_run["articles"])
    assert c["duplicates"] == len(stream_run["duplicates"])
    assert c["dead_lettered"] == len(stream_run["dead"])
    assert c["feed_polls"] + c.get("feeds_backoff_skipped", 0) == 4 * TICKS


def test_the_feed_gained_entries_between_polls(stream_run):
    _ok(stream_run)
    served = stream_run["served"]
    assert served["v1"] >= 1 and served["v2"] >= 1 and served["v3"] >= 1, (
        f"not every version of the growing feed was served (hits {served}): the run was too slow to see them")
    growing = {_text_key(a) for a in stream_run["articles"] if "/growing.xml" in a["input_ref"]}
    assert growing | {"g2"} >= {"g1", "g2", "g3", "g4", "g5", "g6"}


def test_each_entry_is_written_exactly_once(stream_run):
    _ok(stream_run)
    arts = stream_run["articles"]
    ids = [a["id"] for a in arts]
    assert len(ids) == len(set(ids)), "an article id was written twice"
    keys = sorted(_text_key(a) for a in arts)
    assert len(keys) == len(set(keys)), f"an entry was written twice: {keys}"
    # g2 and s2 carry the same text: one is written, the other is an exact duplicate of it
    assert set(keys) == {"g1", "g3", "g4", "g5", "g6", "g2", "s1", "n1", "n2", "f1"}
    # a guid seen before is not emitted again even with a new title
    g1 = next(a for a in arts if _text_key(a) == "g1")
    assert g1["title"] == "Talks resume"
    # keys: guid, else link, else content id
    by_key = {_text_key(a): a for a in arts}
    assert by_key["g4"]["guid"] is None and by_key["g4"]["url"].endswith("Museum-opens")
    assert by_key["g6"]["guid"] is None and by_key["g6"]["url"] is None


def test_exact_text_duplicate_across_feeds(stream_run):
    _ok(stream_run)
    dups = stream_run["duplicates"]
    assert len(dups) == 1
    kept = next(a for a in stream_run["articles"] if a["text"] == TEXT["g2"])
    assert dups[0]["kind"] == "exact" and dups[0]["duplicate_of"] == kept["id"] and dups[0]["id"] != kept["id"]


def test_unchanged_feed_costs_a_304(stream_run):
    _ok(stream_run)
    static = stream_run["requests"]["static"]
    assert len(static) == TICKS
    assert static[0].headers.get("if-none-match") is None
    assert all(s.headers.get("if-none-match") == '"s-1"' for s in static[1:])
    c = stream_run["counters"]
    # static answers 304 from the 2nd poll on; growing answers 304 whenever its version was already fetched
    assert c["feeds_not_modified"] >= TICKS - 1


def test_feed_without_validators_is_deduplicated_by_the_seen_filter(stream_run):
    _ok(stream_run)
    assert len(stream_run["requests"]["noetag"]) == TICKS
    assert stream_run["counters"]["entries_seen_before"] >= 2 * (TICKS - 1)
    assert sum(1 for a in stream_run["articles"] if "/noetag.xml" in a["input_ref"]) == 2


def test_failing_feed_backs_off_dead_letters_and_recovers(stream_run):
    _ok(stream_run)
    url = stream_run["urls"]["failing"]
    # ticks 0 and 1 fail; after the 2nd failure the feed waits 2 intervals (tick 2 skipped); tick 3 recovers
    assert len(stream_run["requests"]["failing"]) == TICKS - 1
    assert stream_run["counters"]["feeds_backoff_skipped"] == 1
    assert stream_run["counters"]["feeds_failed"] == 2
    dead = sorted((d for d in stream_run["dead"] if d["input_ref"] == url), key=lambda d: d["error"])
    assert len(dead) == 2
    for n, d in enumerate(dead, start=1):
        assert d["stage"] == "parse"
        assert "HTTP 500" in d["error"] and f"failure {n} in a row" in d["error"], d["error"]
    assert "in 2 s or later" in dead[0]["error"] and "in 4 s or later" in dead[1]["error"]
    assert any(_text_key(a) == "f1" for a in stream_run["articles"]), "the feed's entry after recovery"


def test_bad_entry_is_dead_lettered_once(stream_run):
    _ok(stream_run)
    bad = [d for d in stream_run["dead"] if d["input_ref"].startswith(stream_run["urls"]["static"])]
    assert len(bad) == 1 and "date" in bad[0]["error"], bad


def test_files_appear_while_the_run_is_going(stream_run):
    _ok(stream_run)
    seen = stream_run["seen_files"]
    article_files = {f: t for f, t in seen.items() if f.startswith("dt=")}
    assert article_files, "no article file was visible during the run"
    first = min(article_files.values())
    # the first articles are written at the first poll, several polls before the run stops
    assert stream_run["ended"] - first >= 2 * POLL, (stream_run["ended"] - first, seen)
    if not MODELS:
        # Without the model stages each poll's new entries get their own file. With them, the entries of several
        # polls are written in fewer files (measured: 2 files over 8 and over 12 polls; RunInference's batching
        # spans ticks), a known limit of streaming with models, tracked in the feeds issue.
        assert len(article_files) >= 3, "articles should arrive in several files, poll by poll"
    names = [Path(f).name for f in article_files]
    assert all(re.fullmatch(r"stream-\d{8}T\d{6}Z-[0-9a-f]{16}\.jsonl", n) for n in names), names
    leftovers = list(stream_run["out"].rglob(".tmp-*"))
    assert not leftovers, leftovers


def test_model_stages(stream_run):
    _ok(stream_run)
    arts = stream_run["articles"]
    if not MODELS:
        assert all(a["ner"]["status"] == "skipped" and "--skip-models" in a["ner"]["reason"] for a in arts)
        pytest.skip("model weights not found under modeling/weights/{ner,stance} (config.json): the streaming "
                    "run used --skip-models, so NER and stance were not exercised")
    english = [a for a in arts if a["language"]["code"] == "en"]
    assert english and all(a["ner"]["status"] == "done" for a in english)
    g1 = next(a for a in arts if _text_key(a) == "g1")
    assert g1["stance_status"]["status"] == "done"
    assert {s["target"] for s in g1["stance"]} == {"Armenia", "Azerbaijan"}


# ------------------------------------------------------------------ no pipeline needed
def test_backoff_schedule():
    from pipeline.streaming import backoff_seconds

    assert [backoff_seconds(n, 300, 3600) for n in range(1, 7)] == [300, 600, 1200, 2400, 3600, 3600]
    assert backoff_seconds(3, 300, 10) == 300  # never below one interval


def test_seen_set_is_bounded():
    from pipeline.streaming import remember

    known = remember({}, ["a", "b"], now=0, ttl=100, cap=3)
    known = remember(known, ["b", "c"], now=50, ttl=100, cap=3)
    assert known == {"a": 0, "b": 50, "c": 50}
    known = remember(known, ["c"], now=120, ttl=100, cap=3)  # a left 120 s ago > ttl; b 70 s ago
    assert known == {"b": 50, "c": 120}
    known = remember(known, ["d", "e", "f"], now=130, ttl=100, cap=3)  # over the cap: the longest absent go
    assert known == {"d": 130, "e": 130, "f": 130}
    assert len(remember({}, [str(i) for i in range(10)], now=0, ttl=1, cap=3)) == 10  # current ones always kept


def test_entry_key_prefers_guid_then_link_then_id():
    from pipeline.streaming import entry_key

    assert entry_key({"guid": "g", "url": "u", "id": "i"}) == "guid:g"
    assert entry_key({"guid": None, "url": "u", "id": "i"}) == "link:u"
    assert entry_key({"guid": " ", "url": None, "id": "i"}) == "id:i"
    assert entry_key({"title": "t", "text": "x"}).startswith("raw:")


def test_stream_file_name_is_content_addressed():
    from pipeline.streaming import stream_file_name, window_start

    w = window_start(1_700_000_123, 300)
    assert w % 300 == 0 and 0 <= 1_700_000_123 - w < 300
    a, b = stream_file_name(w, ["x", "y"]), stream_file_name(w, ["x", "y"])
    assert a == b and a != stream_file_name(w, ["x"])
    assert re.fullmatch(r"stream-20231114T\d{6}Z-[0-9a-f]{16}\.jsonl", a)


@pytest.mark.parametrize("argv, message", [
    (["--feeds", "http://127.0.0.1:1/x.xml"], "--output is required"),
    (["--output", "o"], "needs --feeds"),
    (["--input", "seeds/*.txt", "--feeds", "http://127.0.0.1:1/x.xml", "--output", "o"], "--input"),
    (["--feeds", "http://127.0.0.1:1/x.xml", "--output", "o", "--poll-interval", "0"], "--poll-interval"),
    (["--feeds", "http://127.0.0.1:1/x.xml", "--output", "o", "--skip-models",
      "--runner", "BundleBasedDirectRunner"], "BundleBasedDirectRunner"),
    (["--feeds", "http://127.0.0.1:1/x.xml", "--output", "o", "--skip-models", "--direct_num_workers", "2"],
     "one worker"),
    (["--feeds", "http://127.0.0.1:1/x.xml", "--output", "o", "--ner-model", "/nonexistent/ner"],
     "no such model directory"),
    (["--feeds", "file:///etc/passwd", "--output", "o", "--skip-models"], "http"),
])
def test_usage_errors(argv, message):
    from pipeline.run import UsageError
    from pipeline.streaming import run_streaming

    with pytest.raises(UsageError, match=re.escape(message)):
        run_streaming(["--streaming", *argv])


# ------------------------------------------------------------------ model stages, with stand-in models
class _Span:
    def __init__(self, start, end, type_, score):
        self.start, self.end, self.type, self.score = start, end, type_, score


class _FakeTagger:
    def predict(self, texts):
        return [[_Span(m.start(), m.end(), "LOC", 0.9) for m in re.finditer(r"Armenia|Azerbaijan", t)]
                for t in texts]


class _FakeStance:
    def predict_proba(self, items):
        return [[0.1, 0.2, 0.7] for _ in items]


def _load_fake_tagger():
    return _FakeTagger()


def _load_fake_stance():
    return _FakeStance()


def test_model_stage_routing_with_stand_in_models():
    """The streaming NER/stance stages (no Partition/Flatten: routing inside the handler) send only supported,
    targeted articles to the model and skip the others with the reason, as the batch stages do."""
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.streaming import StreamClassifyStance, StreamRecogniseEntities
    from tests.conftest import beam_pipeline

    def art(i, code, text):
        return {"id": i, "input_ref": f"feed#{i}", "text": text, "title": "t",
                "language": {"code": code, "confidence": 1.0, "detector": "x"}}

    arts = [art("en", "en", "Armenia and Azerbaijan met in Brussels."),
            art("fr", "fr", "L'Armenie et l'Azerbaidjan se sont rencontres."),
            art("de", "de", "Armenia und Azerbaijan trafen sich in Brussel.")]
    ner = StreamRecogniseEntities("stand-in-ner")
    ner.handler.load_model = _load_fake_tagger
    stance = StreamClassifyStance("stand-in-stance", {"Armenia": [], "Azerbaijan": []})
    stance.handler.load_model = _load_fake_stance

    def summary(a):
        return (a["id"], a["ner"]["status"], len(a["entities"]), a["stance_status"]["status"],
                a["stance_status"].get("reason"), sorted(s["target"] for s in a["stance"]))

    with beam_pipeline() as p:
        n = p | beam.Create(arts) | "NER" >> ner
        s = n["articles"] | "Stance" >> stance
        assert_that(s["articles"] | beam.Map(summary), equal_to([
            ("en", "done", 2, "done", None, ["Armenia", "Azerbaijan"]),
            ("fr", "skipped", 0, "skipped", "unsupported language: fr (stance covers en, ru)", []),
            ("de", "done", 2, "skipped", "unsupported language: de (stance covers en, ru)", []),
        ]))
        assert_that(n["failed_batches"], equal_to([]), label="NoFailedNer")
        assert_that(s["failed_batches"], equal_to([]), label="NoFailedStance")
