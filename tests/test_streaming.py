"""Streaming mode (pipeline/streaming.py and the streaming graph of pipeline/graph.py): one bounded run
(`python -m pipeline.cli run --streaming`, a child process)
against loopback feeds that change between polls, checked from outside while it runs and after; plus unit tests
of the pieces that need no pipeline.

The run polls every 2 s for 10 s (5 ticks; 16 s and 8 ticks when the model weights are present, counted from
the first poll, which waits for the models to load). When they are, a second run of 10 s with --skip-models runs
too (test_files_appear_while_the_run_is_going checks both). Feeds:
  /growing.xml  ETag per version; a thread swaps in v2 after v1 was served and v3 after v2 was served
                (new entries, one dropped, one with an old guid and a new title, one with no guid and no link)
  /static.xml   ETag: 200 once then 304s; one entry repeats a growing entry's text (exact duplicate), one has
                an impossible date (dead letter, once)
  /noetag.xml   no validators: the same 200 every poll, so only the seen filter keeps its entries single
  /failing.xml  500 twice, then fine: failure 1 (next tick), failure 2 (backoff: one tick skipped), recovery
  /wire.xml     v1: a long story and a short dividend notice; v2 (swapped in after v1 was served) adds a near
                copy of the story (a few words and the title changed, new guid), a different story on the same
                topic, and the same notice text from another company (a different title)
"""
from __future__ import annotations

import datetime as dt
import json
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
# With the models, loading them (torch import, two models) delays the first poll by 20-30 s; the schedule moves
# by that lag (the paced generator of pipeline.streaming), and inference makes a tick slower than 2 s here, so
# the run gets more ticks to let the feeds change between polls. Ticks are 0, 2, ... < STOP_AFTER after the lag.
FAST_TICKS = 5  # a run without the model stages
TICKS = 8 if MODELS else FAST_TICKS
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
    # /wire.xml: w1 (110 words) and its near copy w1c (3 phrases changed: estimated Jaccard 0.85 >= 0.8); w2 the
    # same topic, another story; d1 a 20-word notice (under SHORT_TEXT_WORDS: identified by title + text)
    "w1": ("Armenia and Azerbaijan agreed on Tuesday to reopen the main road through the Lachin corridor after two "
           "days of talks in Geneva, the foreign ministries of both countries said in a joint statement. The road, "
           "the only land link between Armenia and the Karabakh region, had been closed since the middle of last "
           "month, and food and medicine had been running short in Stepanakert. Under the deal, Russian "
           "peacekeepers will escort convoys of trucks and the Red Cross will run a checkpoint at the bridge over "
           "the Hakari river. Officials in Yerevan said the first convoy could cross on Thursday morning, while "
           "Baku said customs checks would start next week."),
    "w2": ("Thousands of people marched through the centre of Yerevan on Saturday to demand the resignation of the "
           "prime minister over the handling of the Karabakh conflict. Opposition leaders told the crowd in "
           "Republic Square that the government had given away too much in its negotiations with Azerbaijan and "
           "called for early elections. Police said the rally was peaceful and that several roads near the "
           "parliament building were closed for the afternoon. The prime minister's office said he would not "
           "step down and that talks with Baku and Moscow would continue."),
    "d1": "The board declared a quarterly dividend of 12 cents a share, payable April 1 to holders of record March 15.",
}
TEXT["w1c"] = (TEXT["w1"].replace("on Tuesday", "on Wednesday").replace("two days", "three days")
               .replace("next week", "within days"))
G_V1 = [item("g1", "Talks resume", TEXT["g1"]), item("g2", "Rates on hold", TEXT["g2"])]
G_V2 = G_V1 + [item("g3", "Snow in Spain", TEXT["g3"]), item(None, "Museum opens", TEXT["g4"])]  # g4: link only
G_V3 = [item("g1", "Talks resume (updated title)", TEXT["g1"]), item("g3", "Snow in Spain", TEXT["g3"]),
        item(None, "Museum opens", TEXT["g4"]), item("g5", "Budget passed", TEXT["g5"]),
        item(None, "Farmers protest", TEXT["g6"], link=None)]  # g6: neither guid nor link (keyed by id)
# s2: an exact duplicate of g2 (another feed, guid and link; the same title and text: g2's text is short, so
# batch and streaming identify it by title + text)
STATIC = [item("s1", "Trees for Lyon", TEXT["s1"]), item("s2", "Rates on hold", TEXT["g2"]),
          item("s3", "Bad date", "This entry has a date that cannot be parsed at all.", date="not a date")]
NOETAG = [item("n1", "Electric ferry", TEXT["n1"]), item("n2", "Comet", TEXT["n2"])]
FAILING = [item("f1", "Pipeline", TEXT["f1"])]
NOTICE_TITLES = {"d1": "Acme Corp sets quarterly dividend", "d2": "Northwind Traders raises payout"}
W_V1 = [item("w1", "Lachin road to reopen", TEXT["w1"]), item("d1", NOTICE_TITLES["d1"], TEXT["d1"])]
W_V2 = W_V1 + [item("w1c", "Lachin corridor road reopens after Geneva talks", TEXT["w1c"]),
               item("w2", "Protest in Yerevan", TEXT["w2"]), item("d2", NOTICE_TITLES["d2"], TEXT["d1"])]
FEEDS = 5


def _summary(stdout: str) -> dict[str, int]:
    """The summary's counters: 'read 3, written 2, ...' and the 'stages: a 1, b 2' line."""
    values = {}
    for line in stdout.splitlines():
        if line.startswith("newsbeam summary") or line.strip().startswith("stages:"):
            body = line.split(":", 1)[1] if line.strip().startswith("stages:") else line.split("):", 1)[1]
            for name, number in re.findall(r"([a-z_-]+) (\d+)", body):
                values[name.replace("-", "_")] = int(number)
    return values


def _stream(out: Path, models: bool, ticks: int) -> dict:
    """One bounded streaming run (a child process) against the feeds above, watched from outside."""
    with FeedServer() as srv:
        v1 = Route(body=rss("Growing", G_V1), etag='"g-1"')
        v2 = Route(body=rss("Growing", G_V2), etag='"g-2"')
        v3 = Route(body=rss("Growing", G_V3), etag='"g-3"')
        growing = srv.add("/growing.xml", v1)
        static = srv.add("/static.xml", Route(body=rss("Static", STATIC), etag='"s-1"'))
        noetag = srv.add("/noetag.xml", Route(body=rss("NoEtag", NOETAG)))
        failing = srv.add("/failing.xml", Route(body=rss("Failing", FAILING), fail_times=2, fail_status=500))
        w1 = Route(body=rss("Wire", W_V1), etag='"w-1"')
        w2 = Route(body=rss("Wire", W_V2), etag='"w-2"')
        wire = srv.add("/wire.xml", w1)
        done = threading.Event()
        seen_files: dict[str, float] = {}

        def change_feed(path, versions):  # each version replaces the last as soon as the last was served once
            for served, nxt in zip(versions, versions[1:]):
                while served.hits == 0 and not done.is_set():
                    time.sleep(0.02)
                srv.add(path, nxt)

        def watch_files():  # what a reader sees while the run goes on
            while not done.is_set():
                for f in out.glob("*/stream-*.jsonl"):
                    seen_files.setdefault(str(f.relative_to(out)), time.monotonic())
                time.sleep(0.1)

        threads = [threading.Thread(target=change_feed, args=("/growing.xml", [v1, v2, v3]), daemon=True),
                   threading.Thread(target=change_feed, args=("/wire.xml", [w1, w2]), daemon=True),
                   threading.Thread(target=watch_files, daemon=True)]
        for t in threads:
            t.start()
        args = ["--streaming", "--feeds", growing, static, noetag, failing, wire, "--output", str(out),
                "--poll-interval", str(POLL), "--stop-after", str(POLL * ticks), "--fetch-retries", "0",
                "--window-seconds", "300", "--targets", "Armenia", "Azerbaijan", "--verbose"]  # stage counters
        if not models:
            args.append("--skip-models")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        started = time.monotonic()
        try:
            proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", *args], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=1800)  # it stops itself; a hang guard only
        finally:
            ended = time.monotonic()
            done.set()
            for t in threads:
                t.join(timeout=5)
        requests = {name: srv.requests_to(path) for name, path in
                    (("growing", "/growing.xml"), ("static", "/static.xml"), ("noetag", "/noetag.xml"),
                     ("failing", "/failing.xml"), ("wire", "/wire.xml"))}
        served = {"v1": v1.hits, "v2": v2.hits, "v3": v3.hits, "w1": w1.hits, "w2": w2.hits}
    articles = [a for f in sorted(out.glob("dt=*/stream-*.jsonl")) for a in read_jsonl(f)]
    return {"proc": proc, "out": out, "started": started, "ended": ended, "seen_files": seen_files,
            "requests": requests, "served": served, "counters": _summary(proc.stdout),
            "articles": articles, "duplicates": [d for f in sorted(out.glob("duplicates/stream-*.jsonl"))
                                                 for d in read_jsonl(f)],
            "dead": [d for f in sorted(out.glob("dead_letter/stream-*.jsonl")) for d in read_jsonl(f)],
            "urls": {"growing": growing, "static": static, "noetag": noetag, "failing": failing, "wire": wire},
            "models": models, "ticks": ticks}


@pytest.fixture(scope="module")
def stream_run(tmp_path_factory):
    return _stream(tmp_path_factory.mktemp("stream_out"), MODELS, TICKS)


@pytest.fixture(scope="module")
def stream_run_no_models(request, tmp_path_factory):
    """A run without the model stages: `stream_run` itself when the weights are absent, else a run of its own."""
    if not MODELS:
        return request.getfixturevalue("stream_run")
    return _stream(tmp_path_factory.mktemp("stream_out_no_models"), False, FAST_TICKS)


def _ok(run):
    proc = run["proc"]
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"


def _text_key(a: dict) -> str:
    key = next(k for k, v in TEXT.items() if v == a["text"])
    if key == "d1":  # two notices share this text: told apart by their titles
        key = next(k for k, t in NOTICE_TITLES.items() if t == a["title"])
    return key


def test_run_finishes_and_every_record_is_accounted_for(stream_run):
    _ok(stream_run)
    c = stream_run["counters"]
    assert "every record accounted for" in stream_run["proc"].stdout
    assert c["read"] == c["written"] + c["duplicates"] + c["dead_lettered"]
    # the counters match the files
    assert c["written"] == len(stream_run["articles"])
    assert c["duplicates"] == len(stream_run["duplicates"])
    assert c["dead_lettered"] == len(stream_run["dead"])
    assert c["feed_polls"] + c.get("feeds_backoff_skipped", 0) == FEEDS * stream_run["ticks"]


def test_report_reads_the_streaming_output(stream_run):
    """`newsbeam report` over a root written only by a streaming run: its window files of every kind."""
    _ok(stream_run)
    from pipeline.report_input import read_output as report_input

    seen = report_input(str(stream_run["out"]))
    assert sorted(a["id"] for a in seen.articles) == sorted(a["id"] for a in stream_run["articles"])
    assert sorted(map(json.dumps, seen.duplicates)) == sorted(map(json.dumps, stream_run["duplicates"]))
    assert sorted(map(json.dumps, seen.dead)) == sorted(map(json.dumps, stream_run["dead"]))
    assert seen.articles and seen.dead and not [p for p in seen.problems if not p.startswith("no ")]


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
    # g2 and s2 carry the same title and text: one is written, the other is an exact duplicate of it; w1c is a
    # near duplicate of w1; the notices d1 and d2 share their text but not their title: both are written
    assert set(keys) == {"g1", "g3", "g4", "g5", "g6", "g2", "s1", "n1", "n2", "f1", "w1", "w2", "d1", "d2"}
    # a guid seen before is not emitted again even with a new title
    g1 = next(a for a in arts if _text_key(a) == "g1")
    assert g1["title"] == "Talks resume"
    # keys: guid, else link, else content id
    by_key = {_text_key(a): a for a in arts}
    assert by_key["g4"]["guid"] is None and by_key["g4"]["url"].endswith("Museum-opens")
    assert by_key["g6"]["guid"] is None and by_key["g6"]["url"] is None


def test_exact_text_duplicate_across_feeds(stream_run):
    _ok(stream_run)
    dups = [d for d in stream_run["duplicates"] if d["kind"] == "exact"]
    assert len(dups) == 1, stream_run["duplicates"]
    kept = next(a for a in stream_run["articles"] if a["text"] == TEXT["g2"])
    assert dups[0]["kind"] == "exact" and dups[0]["duplicate_of"] == kept["id"] and dups[0]["id"] != kept["id"]


def _wire_pair(title_a, text_a, title_b, text_b):
    """The batch decision (transforms.dedup) on two wire entries: what streaming must agree with."""
    from modeling.minhash import duplicate_decision, text_signature

    return duplicate_decision(text_signature(text_a, title=title_a), text_signature(text_b, title=title_b))


def test_near_copy_gained_between_polls_is_a_near_duplicate(stream_run):
    _ok(stream_run)
    served = stream_run["served"]
    assert served["w1"] >= 1 and served["w2"] >= 1, f"the wire feed did not change between polls ({served})"
    # the pair is a near duplicate for batch too (precondition: the same functions and threshold)
    assert _wire_pair("Lachin road to reopen", TEXT["w1"], "Lachin corridor road reopens after Geneva talks",
                      TEXT["w1c"])[0] == "near"
    arts = {_text_key(a): a for a in stream_run["articles"]}
    assert "w1c" not in arts, "the near copy was written as an article"
    near = [d for d in stream_run["duplicates"] if d["kind"] == "near"]
    assert len(near) == 1, stream_run["duplicates"]
    d = near[0]
    assert d["duplicate_of"] == arts["w1"]["id"] and d["id"] != arts["w1"]["id"]
    assert d["title"] == "Lachin corridor road reopens after Geneva talks" and "/wire.xml" in d["input_ref"]
    assert 0.8 <= d["similarity"] < 1.0
    # a different story on the same topic (Armenia, Azerbaijan, Karabakh) is written
    assert _wire_pair("Lachin road to reopen", TEXT["w1"], "Protest in Yerevan", TEXT["w2"])[0] is None
    assert "w2" in arts
    c = stream_run["counters"]
    assert c["duplicates_near"] == 1 and c["duplicates_exact"] == 1


def test_short_notices_with_different_titles_are_not_merged(stream_run):
    # Two 20-word notices with the same text from different companies: batch identifies a text under
    # SHORT_TEXT_WORDS words by title + text, so they are neither exact nor near duplicates; nor in streaming.
    _ok(stream_run)
    from modeling.minhash import exact_key

    assert _wire_pair(NOTICE_TITLES["d1"], TEXT["d1"], NOTICE_TITLES["d2"], TEXT["d1"])[0] is None
    assert exact_key(TEXT["d1"]) == exact_key(TEXT["d1"])  # what streaming keyed on before: merged as exact
    notices = [a for a in stream_run["articles"] if a["text"] == TEXT["d1"]]
    assert sorted(a["title"] for a in notices) == sorted(NOTICE_TITLES.values())
    assert not any(d["title"] in NOTICE_TITLES.values() for d in stream_run["duplicates"])


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


@pytest.mark.parametrize("fixture", ["stream_run", "stream_run_no_models"])
def test_files_appear_while_the_run_is_going(fixture, request):
    # With the models, the polling stage starts only once RunInference has loaded both models (its DoFn setup, in
    # the same fused stage as the poller): 20-30 s on this busy 2-core machine. The paced generator moves its
    # schedule by that lag and emits one tick per bundle, so the polls still come one by one after the load and
    # each poll's records are written when its bundle ends (before, every tick was overdue and all came in one
    # bundle at the end). Without the models (--skip-models) the same holds from the start.
    run = request.getfixturevalue(fixture)
    _ok(run)
    seen = run["seen_files"]
    article_files = {f: t for f, t in seen.items() if f.startswith("dt=")}
    assert article_files, "no article file was visible during the run"
    first = min(article_files.values())
    # the first articles are written at the first poll, several polls before the run stops
    assert run["ended"] - first >= 2 * POLL, (run["ended"] - first, seen)
    # each poll's new entries get their own file (new entries arrive on 4 polls: 0 to 3)
    assert len(article_files) >= 3, f"articles should arrive in several files, poll by poll: {seen}"
    names = [Path(f).name for f in article_files]
    assert all(re.fullmatch(r"stream-\d{8}T\d{6}Z-[0-9a-f]{16}\.jsonl", n) for n in names), names
    leftovers = list(run["out"].rglob(".tmp-*"))
    assert not leftovers, leftovers
    if not run["models"]:
        assert all(a["ner"]["status"] == "skipped" and "--skip-models" in a["ner"]["reason"]
                   for a in run["articles"])
    # the run makes every poll it was asked for, also when the first one waited for the models
    assert run["counters"]["feed_polls"] + run["counters"].get("feeds_backoff_skipped", 0) == FEEDS * run["ticks"]


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


def test_entry_cap_per_poll_and_each_entry_once():
    """--max-entries-per-feed in streaming: at most N new entries of one poll become articles, the other new ones
    are dead-lettered once, and the same document polled again yields nothing (seen state). Real fetches from a
    loopback server; a batch pipeline runs the stateful Seen step (two polls of one feed, any order)."""
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.feeds import feed_raw_inputs, fetch_feed
    from pipeline.streaming import NewEntries
    from tests.conftest import beam_pipeline
    from transforms.parse import ParseArticles

    items = [item(f"c{i}", f"Story {i}", f"Story number {i} from the capped feed, with its own text.")
             for i in range(6)]
    with FeedServer() as srv:
        url = srv.add("/capped.xml", Route(body=rss("Capped", items)))
        polls = [(url, dict(raw, poll_time=float(n))) for n in range(2)
                 for raw in feed_raw_inputs(fetch_feed(url, retries=0), max_entries=4)]
    assert len(polls) == 2 and all(not raw.get("error") for _, raw in polls)
    with beam_pipeline() as p:
        new = p | beam.Create(polls) | NewEntries(max_entries=4)
        parsed = new["raws"] | ParseArticles()
        assert_that(parsed.articles | beam.Map(lambda a: a["guid"]), equal_to(["c0", "c1", "c2", "c3"]),
                    label="articles")
        assert_that(new["dead_letter"] | beam.Map(lambda d: (d["input_ref"], d["error"].split(";")[0])),
                    equal_to([(f"{url}#{i}", f"more than max_entries 4 new entries in one poll of {url}")
                              for i in (4, 5)]), label="dead")


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


def _member(added, order, sig, root=None):
    from transforms.dedup_stream import BandMember

    return BandMember(added, order, root or order, sig)


def _sig(values):
    import numpy as np

    return np.array(values, dtype="<u2").tobytes()


def test_band_state_expires_after_the_ttl():
    from transforms.dedup_stream import live_members

    members = [_member(0.0, (0.0, "a"), _sig([1] * 8)), _member(50.0, (50.0, "b"), _sig([2] * 8))]
    assert live_members(members, now=100.0, ttl=100.0) == members  # a: exactly ttl old, still live
    assert [m.order[1] for m in live_members(members, now=100.5, ttl=100.0)] == ["b"]
    assert live_members(members, now=151.0, ttl=100.0) == []


def test_band_state_is_bounded_per_key_copies_go_first():
    from transforms.dedup_stream import admit

    kept = [_member(float(t), (float(t), f"k{t}"), _sig([t] * 8)) for t in range(3)]
    copy = _member(3.0, (3.0, "c3"), _sig([0] * 8), root=(0.0, "k0"))  # a copy of k0
    members = admit(kept, copy, cap=4)
    assert [m.order[1] for m in members] == ["k0", "k1", "k2", "c3"]
    # over the cap: the copy goes first, then the oldest kept member
    members = admit(members, _member(4.0, (4.0, "k4"), _sig([4] * 8)), cap=4)
    assert [m.order[1] for m in members] == ["k0", "k1", "k2", "k4"]
    members = admit(members, _member(5.0, (5.0, "k5"), _sig([5] * 8)), cap=4)
    assert [m.order[1] for m in members] == ["k1", "k2", "k4", "k5"]
    assert len(admit([], _member(6.0, (6.0, "x"), _sig([6] * 8)), cap=0)) == 1  # never below one member


def test_band_verdict_points_at_the_earliest_root():
    from modeling.minhash import agreements_needed
    from transforms.dedup_stream import band_verdict

    need = agreements_needed(0.75, 8)  # 6 of 8 positions
    assert need == 6
    a = _member(0.0, (0.0, "a"), _sig([1, 2, 3, 4, 5, 6, 7, 8]))
    b = _member(1.0, (1.0, "b"), _sig([1, 2, 3, 4, 5, 6, 7, 0]), root=(0.0, "a"))  # b: a copy of a
    c = _member(2.0, (2.0, "c"), _sig([9, 9, 9, 9, 9, 9, 9, 9]))
    x = _sig([1, 2, 3, 4, 5, 6, 0, 0])  # 6/8 with a, 7/8 with b, 0/8 with c
    root, sim = band_verdict([a, b, c], (3.0, "x"), x, need)
    assert root == (0.0, "a") and sim in (0.75, 0.875)  # the earliest root, via whichever member matched
    assert band_verdict([c], (3.0, "x"), x, need) is None  # not similar enough
    assert band_verdict([a, b], (0.5, "x"), x, need) == ((0.0, "a"), 0.75)  # only earlier members count
    assert band_verdict([a], (3.0, "a"), x, need) is None  # never a duplicate of itself
    assert band_verdict([], (3.0, "x"), x, need) is None


def test_first_tick_lag_is_noted_once():
    from pipeline.streaming import first_tick_lag

    start = time.time() + 1e6 * (os.getpid() % 1000 + 1)  # a schedule no other test uses
    assert first_tick_lag(start, 2.0, 0, now=start + 25.0) == 25.0
    assert first_tick_lag(start, 2.0, 3, now=start + 40.0) == 25.0  # later calls keep the first lag
    assert first_tick_lag(start + 1, 2.0, 0, now=start) == 0.0  # on time: no shift
    assert first_tick_lag(start + 2, 2.0, 5, now=start + 99) == 0.0  # first call not for tick 0: no shift


def test_entry_key_prefers_guid_then_link_then_id():
    from pipeline.streaming import entry_key

    assert entry_key({"guid": "g", "url": "u", "id": "i"}) == "guid:g"
    assert entry_key({"guid": None, "url": "u", "id": "i"}) == "link:u"
    assert entry_key({"guid": " ", "url": None, "id": "i"}) == "id:i"
    assert entry_key({"title": "t", "text": "x"}).startswith("raw:")


def test_stream_file_name_is_content_addressed():
    from pipeline.stream_sinks import stream_file_name, window_start

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
    (["--feeds", "http://127.0.0.1:1/x.xml", "--output", "o", "--skip-models", "--band-max", "1"], "--band-max"),
    (["--feeds", "http://127.0.0.1:1/x.xml", "--output", "o", "--skip-models", "--dedup-max", "0"], "--dedup-max"),
    (["--feeds", "http://127.0.0.1:1/x.xml", "--output", "o", "--skip-models", "--seen-ttl", "0"], "--seen-ttl"),
    (["--feeds", "http://127.0.0.1:1/x.xml", "--output", "o", "--skip-models", "--fetch-retries", "-1"],
     "--fetch-retries"),
    (["--feeds", "http://127.0.0.1:1/x.xml", "--output", "o", "--skip-models", "--window-seconds", "0"],
     "--window-seconds"),
    (["--feeds", "http://127.0.0.1:1/x.xml", "--output", "o", "--skip-models", "--dedup-threshold", "1.5"],
     "--dedup-threshold"),
])
def test_usage_errors(argv, message):
    from pipeline.launch import UsageError
    from pipeline.run import run

    with pytest.raises(UsageError, match=re.escape(message)):
        run(["--streaming", *argv])


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
    """The NER/stance stages (one for both modes; no Partition/Flatten: routing inside the handler) send only
    supported, targeted articles to the model and skip the others with the reason."""
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from tests.conftest import beam_pipeline
    from transforms.ner import RecogniseEntities
    from transforms.stance import ClassifyStance

    def art(i, code, text):
        return {"id": i, "input_ref": f"feed#{i}", "text": text, "title": "t",
                "language": {"code": code, "confidence": 1.0, "detector": "x"}}

    arts = [art("en", "en", "Armenia and Azerbaijan met in Brussels."),
            art("sv", "sv", "Armenien och Azerbajdzjan möttes i Bryssel."),
            art("de", "de", "Armenia und Azerbaijan trafen sich in Brussel.")]
    ner = RecogniseEntities("stand-in-ner")
    ner.handler.load_model = _load_fake_tagger
    stance = ClassifyStance("stand-in-stance", {"Armenia": [], "Azerbaijan": []})
    stance.handler.load_model = _load_fake_stance

    def summary(a):
        return (a["id"], a["ner"]["status"], len(a["entities"]), a["stance_status"]["status"],
                a["stance_status"].get("reason"), sorted(s["target"] for s in a["stance"]))

    with beam_pipeline() as p:
        n = p | beam.Create(arts) | "NER" >> ner
        s = n["articles"] | "Stance" >> stance
        assert_that(s["articles"] | beam.Map(summary), equal_to([
            ("en", "done", 2, "done", None, ["Armenia", "Azerbaijan"]),
            # skipped stance still lists every target (label null, with the reason)
            ("sv", "skipped", 0, "skipped", "unsupported language: sv (stance covers en, ru)", ["Armenia", "Azerbaijan"]),
            ("de", "done", 2, "skipped", "unsupported language: de (stance covers en, ru)", ["Armenia", "Azerbaijan"]),
        ]))
        assert_that(n["failed_batches"], equal_to([]), label="NoFailedNer")
        assert_that(s["failed_batches"], equal_to([]), label="NoFailedStance")


# ------------------------------------------------------------------ the shared graph, in streaming mode
PAGE = ("<html><head><title>Talks</title></head><body><nav><a href='/'>Home</a></nav><article><h1>Talks resume"
        "</h1>" + "".join(f"<p>Paragraph {i} of the full story: negotiators from Armenia and Azerbaijan met in "
                           f"Brussels for a long day of talks about the border, transport links and prisoners."
                           f"</p>" for i in range(6)) + "</article><footer>All rights reserved.</footer></body></html>")


def test_fetch_full_text_in_streaming_fetches_new_entries_once():
    """--fetch-full-text in streaming: the streaming graph's processing (seen filter, then the shared
    ParseArticles with the page fetcher, language, stream dedup) replaces a summary with its page's main text,
    and an entry met again in the next poll is neither read nor fetched again."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.feeds import feed_raw_inputs, fetch_feed
    from pipeline.graph import ProcessArticles
    from pipeline.launch import graph_config
    from pipeline.options import NewsbeamOptions
    from pipeline.streaming import NewEntries
    from tests.conftest import beam_pipeline

    with FeedServer() as srv:
        page = srv.add("/story.html", Route(body=PAGE.encode(), content_type="text/html", charset="utf-8"))
        url = srv.add("/summary.xml", Route(body=rss("Summary", [item("t1", "Talks resume", "Negotiators met.",
                                                                      link=page)])))
        polls = [(url, dict(raw, poll_time=float(n))) for n in range(2)
                 for raw in feed_raw_inputs(fetch_feed(url, retries=0))]
        cfg = graph_config(PipelineOptions(["--streaming", "--feeds", url, "--output", "unused", "--skip-models",
                                            "--targets", "Armenia", "--fetch-full-text",
                                            "--full-text-allow-private-hosts"]).view_as(NewsbeamOptions))
        assert cfg.stream is not None and cfg.full_text.enabled
        p = beam_pipeline()
        new = p | beam.Create(polls) | NewEntries()
        out = new["raws"] | ProcessArticles(cfg)
        assert_that(out["articles"] | beam.Map(lambda a: (a["guid"], a["text"].count("Paragraph"))),
                    equal_to([("t1", 6)]))
        result = p.run()
        result.wait_until_finish()
        fetched = len(srv.requests_to("/story.html"))
    from pipeline.launch import counter_values

    counters = counter_values(result)
    assert counters["read"] == 1 and counters["entries_seen_before"] == 1
    assert counters.get("full_text_fetched") == 1 and fetched == 1


def test_every_streaming_option_reaches_the_config():
    """Each --streaming option is a field of the one StreamConfig, set from the command line."""
    import dataclasses

    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.graph import StreamConfig
    from pipeline.launch import graph_config
    from pipeline.options import NewsbeamOptions
    from pipeline.stream_sinks import PER_BUNDLE
    from pipeline.streaming import StreamRunner

    flags = {"--poll-interval": 7.0, "--stop-after": 9.0, "--window-seconds": 11, "--seen-ttl": 13.0,
             "--seen-max": 17, "--dedup-ttl": 19.0, "--dedup-max": 23, "--band-max": 29, "--max-backoff": 31.0,
             "--fetch-retries": 2}
    argv = ["--streaming", "--feeds", "http://127.0.0.1:1/x.xml", "--output", "o", "--targets", "A",
            "--dedup-threshold", "0.7", *[str(x) for kv in flags.items() for x in kv]]
    cfg = graph_config(PipelineOptions(argv).view_as(NewsbeamOptions), runner=StreamRunner(5.0, PER_BUNDLE))
    got = dataclasses.asdict(cfg.stream)
    assert {f.name for f in dataclasses.fields(StreamConfig)} == {f[2:].replace("-", "_") for f in flags} | {
        "idle_sleep", "writer"}  # the runner's choices (streaming_runner), not options
    assert got == {**{f[2:].replace("-", "_"): v for f, v in flags.items()}, "idle_sleep": 5.0, "writer": PER_BUNDLE}
    assert cfg.dedup_threshold == 0.7  # the dedup threshold is the batch option, in both modes
