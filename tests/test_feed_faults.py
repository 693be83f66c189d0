"""Hostile or broken feed servers, against the real loopback server of
tests/feed_server.py: a server that drips headers or body one byte at a time is cut off at the fetch's total
deadline; feeds are fetched concurrently, each with its own deadline; a response cut mid-headers is a fetch
failure; Retry-After is honoured up to a cap, beyond it the fetch fails saying so; only http(s) entry links are
stored."""
from __future__ import annotations

import threading
import time

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline.feeds import ReadFeeds, feed_raw_inputs, fetch_feed
from pipeline.launch import counter_values
from tests.conftest import beam_pipeline
from tests.feed_server import FeedServer, Route
from transforms.parse import ParseArticles, parse_raw

RSS = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>W</title><item><title>One</title>'
       b"<description>Armenia and Azerbaijan agreed a ceasefire.</description>"
       b"<pubDate>Tue, 10 Nov 2020 10:00:00 GMT</pubDate><link>https://example.org/1</link></item>"
       b"</channel></rss>")


@pytest.fixture
def server():
    with FeedServer() as srv:
        yield srv


@pytest.mark.parametrize("part", ["headers", "body"])
def test_total_deadline_holds_while_a_server_drips(server, part):
    """Every byte arrives well within the read timeout, so only a deadline on the whole response stops it;
    without it the fetch would last as long as the server drips (drip_for, 60 s here)."""
    url = server.add(f"/drip-{part}.xml", Route(drip=part, drip_interval=0.05))
    result = fetch_feed(url, total_timeout=2, read_timeout=1, retries=0)
    assert result.data is None and result.error is not None
    assert "total_timeout 2 s" in result.error and part in result.error, result.error
    assert not server.routes[f"/drip-{part}.xml"].dripped_all  # the client hung up, not the server


def test_feeds_are_fetched_concurrently_each_with_its_own_deadline(server):
    """/a answers only once /b was requested and /b only once /a was: fetched one after the other, the first
    would wait out its deadline and fail. A third feed drips forever and fails on its own deadline only."""
    a_in, b_in = threading.Event(), threading.Event()
    a = server.add("/a.xml", Route(body=RSS, arrived=a_in, wait_for=b_in))
    b = server.add("/b.xml", Route(body=RSS.replace(b"One", b"Two"), arrived=b_in, wait_for=a_in))
    slow = server.add("/slow.xml", Route(drip="body", drip_interval=0.05))
    with beam_pipeline() as p:
        raws = p | ReadFeeds([a, b, slow], total_timeout=20, read_timeout=10, retries=0)
        assert_that(raws | beam.Map(lambda r: (r["ref"], r.get("error") is None)),
                    equal_to([(a, True), (b, True), (slow, False)]))
    values = counter_values(p.result)
    assert values["feeds_fetched"] == 2 and values["feeds_failed"] == 1


def test_response_cut_mid_headers_is_a_fetch_failure(server):
    url = server.add("/cut.xml", Route(drop="mid-headers"))
    result = fetch_feed(url, retries=1, backoff=0.01)
    assert result.error is not None and result.attempts == 2, result
    raws = feed_raw_inputs(result)
    (ref, err), = [(r, str(e)) for raw in raws for r, e in parse_raw(raw)]
    assert err.startswith("feed fetch failed:") and "empty file" not in err, err


def test_retry_after_is_honoured_up_to_a_cap(server):
    """Retry-After: 1 is waited for in full (longer than max_backoff); Retry-After: 120, beyond
    max_retry_after, is not retried early: the fetch fails at once and says why."""
    soon = server.add("/soon.xml", Route(body=RSS, fail_times=1, fail_status=503, headers={"Retry-After": "1"}))
    start = time.monotonic()
    ok = fetch_feed(soon, backoff=0.01, max_backoff=0.05)
    assert ok.error is None and ok.attempts == 2 and time.monotonic() - start >= 1.0
    later = server.add("/later.xml", Route(body=RSS, fail_times=9, fail_status=503,
                                           headers={"Retry-After": "120"}))
    failed = fetch_feed(later, max_retry_after=30)
    assert failed.attempts == 1 and server.routes["/later.xml"].hits == 1
    assert "Retry-After 120 s" in failed.error and "max_retry_after 30 s" in failed.error, failed.error


def test_only_http_entry_links_are_stored():
    links = ["javascript:alert(1)", "data:text/html,<b>x</b>", "vbscript:msgbox", " JavaScript:alert(2)",
             "https://example.org/ok", "http://example.org/ok2"]
    items = "".join(f"<item><title>T{i}</title><description>Story {i} about Armenia.</description>"
                    f"<pubDate>Tue, 10 Nov 2020 10:00:00 GMT</pubDate><link>{link.replace('<', '&lt;').replace('>', '&gt;')}"
                    f"</link><guid>g{i}</guid></item>" for i, link in enumerate(links))
    doc = f'<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>{items}</channel></rss>'.encode()
    urls = [a["url"] for _, a in parse_raw({"ref": "f.xml", "data": doc})]
    assert urls == [None, None, None, None, "https://example.org/ok", "http://example.org/ok2"]
    with beam_pipeline() as p:
        _ = p | beam.Create([{"ref": "f.xml", "data": doc}]) | ParseArticles()
    assert counter_values(p.result)["entry_links_dropped"] == 4


def test_fetch_concurrency_and_retry_after_cap_are_options(tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.launch import UsageError, validate
    from pipeline.options import NewsbeamOptions

    def opts(*flags):
        return PipelineOptions(["--feeds", "https://example.org/rss", "--output", str(tmp_path / "out"), *flags]
                               ).view_as(NewsbeamOptions)

    assert (opts().fetch_concurrency, opts().max_retry_after) == (8, 30.0)
    assert (opts("--fetch-concurrency", "2").fetch_concurrency, opts("--max-retry-after", "5").max_retry_after) \
        == (2, 5.0)
    with pytest.raises(UsageError, match="--fetch-concurrency must be at least 1"):
        validate(opts("--fetch-concurrency", "0"))
    with pytest.raises(UsageError, match="--max-retry-after must be 0 or more"):
        validate(opts("--max-retry-after", "-1"))
