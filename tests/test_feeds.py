"""Feeds over HTTP: a real loopback server, real feedparser, a real Beam pipeline.

Fixtures are the captured feeds in ../shared/data/feeds/feed-rs, served in place; their `.serde.json` files
(another parser's expected output) cross-check entry counts and titles.
"""
from __future__ import annotations

import codecs
import json
import time
import tracemalloc
import zlib
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.feeds import (USER_AGENT, FetchResult, ReadFeeds, UnsafeFeedError, apply_http_charset,
                            feed_raw_inputs, fetch_feed, full_text_fetcher, looks_like_html, read_feed_list,
                            refuse_entity_declarations, validate_feed_url)
from tests.conftest import beam_pipeline
from tests.feed_server import FeedServer, Route
from transforms.parse import (FullTextPolicy, ParseArticles, ParseError, ParseLimits, cap_entries,
                              feed_entries, parse_raw)

# Short backoffs, but timeouts a busy machine never hits with a local server: only the timeout test, against a
# route that stalls for a minute, uses a short read timeout (a 0.3 s one failed healthy fetches under load).
FAST = dict(connect_timeout=10.0, read_timeout=10.0, total_timeout=60.0, retries=2, backoff=0.01, max_backoff=0.05)
PASSWD_MARK = "root:"  # first field of /etc/passwd's first line; must never surface anywhere


# ------------------------------------------------------------------ fixtures and helpers
@pytest.fixture(scope="session")
def feeds_dir() -> Path:
    from modeling.training.corpora import shared_data_dir

    path = shared_data_dir() / "feeds" / "feed-rs"
    if not path.is_dir():
        pytest.skip(f"captured feeds not found at {path} (../shared/data beside the project root, or "
                    f"$NEWSBEAM_SHARED_DATA); these tests serve real third-party feeds in place")
    return path


@pytest.fixture
def server():
    with FeedServer() as srv:
        yield srv


def expected_titles(fixture: Path) -> list[str | None]:
    """Entry titles from the feed-rs expected output beside a fixture."""
    exp = json.loads(fixture.with_name(fixture.stem + ".serde.json").read_text(encoding="utf-8"))
    return [(e.get("title") or {}).get("content") for e in exp["entries"]]


def parsed(raws: list[dict]) -> tuple[list[dict], list[str]]:
    """(articles, dead-letter reasons) of raw inputs, exactly as the parse stage would see them."""
    articles, errors = [], []
    for raw in raws:
        for _, rec in parse_raw(raw):
            (errors.append(str(rec)) if isinstance(rec, ParseError) else articles.append(rec))
    return articles, errors


def fetch_parse(url: str, **kw) -> tuple[FetchResult, list[dict], list[dict], list[str]]:
    result = fetch_feed(url, **{**FAST, **kw})
    raws = feed_raw_inputs(result)
    return (result, raws, *parsed(raws))


# ------------------------------------------------------------------ formats
FORMATS = [  # fixture, content type, articles parse_raw makes (undated RSS 0.91 items take the fetch time)
    ("rss0/rss_0.91_spec_1.xml", "text/xml", 2),
    ("rss2/rss_2.0_bbc.xml", "application/rss+xml", 1),
    ("atom/atom_example_1.xml", "application/atom+xml", 1),
    ("rss1/rss_1.0_example_1.xml", "application/rdf+xml", 2),
]


@pytest.mark.parametrize("fixture, ctype, n_articles", FORMATS, ids=[f[0].split("/")[0] for f in FORMATS])
def test_feed_formats_over_http(server, feeds_dir, fixture, ctype, n_articles):
    path = feeds_dir / fixture
    url = server.add_file("/" + path.name, path, content_type=ctype)
    result, raws, articles, errors = fetch_parse(url)
    assert (result.status, result.error, result.data) == (200, None, path.read_bytes())
    assert [r["ref"] for r in raws] == [url] and not raws[0].get("error") and raws[0]["fetched_at"]
    titles = expected_titles(path)
    assert [f["title"] for _, f in feed_entries(raws[0]["data"], url)] == titles
    assert len(articles) == n_articles and len(articles) + len(errors) == len(titles)
    assert [a["title"] for a in articles] == titles[:n_articles]
    assert all(a["input_ref"].startswith(url + "#") and a["fetched_at"] == result.fetched_at for a in articles)
    assert all(e == "missing published date" for e in errors)  # parse.py's policy for undated items


def test_entry_fields_over_http(server):
    """The entry field mapping, end to end over HTTP: title, link, published (else updated) in UTC,
    summary/content with HTML stripped, the feed title as source, the entry id / guid kept."""
    atom = ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            '<title>Caucasus Desk</title><id>urn:feed:1</id><updated>2024-03-05T10:00:00+02:00</updated>'
            '<entry><title type="html">Talks &lt;em&gt;resume&lt;/em&gt;</title><id>urn:entry:1</id>'
            '<link rel="alternate" href="https://news.example/talks"/>'
            '<published>2024-03-05T01:30:00+03:00</published><updated>2024-03-06T09:00:00+03:00</updated>'
            '<content type="html">&lt;p&gt;Armenia &amp;amp; Azerbaijan met.&lt;/p&gt;&lt;p&gt;More soon.&lt;/p&gt;'
            '</content></entry>'
            '<entry><title>Only updated</title><id>urn:entry:2</id><link href="https://news.example/u"/>'
            '<updated>2024-03-04T23:45:00-05:00</updated><summary>Plain summary.</summary></entry></feed>')
    rss = ('<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title><item><title>Rates</title>'
           '<link>https://wire.example/rates</link><guid isPermaLink="false">wire-42</guid>'
           '<pubDate>Tue, 05 Mar 2024 23:30:00 -0200</pubDate>'
           '<description><![CDATA[<div>Bank <b>holds</b> rates.</div>]]></description></item></channel></rss>')
    a_url = server.add("/desk.atom", Route(body=atom.encode(), content_type="application/atom+xml"))
    r_url = server.add("/wire.rss", Route(body=rss.encode(), content_type="application/rss+xml"))
    _, _, atom_articles, atom_errors = fetch_parse(a_url)
    _, _, rss_articles, rss_errors = fetch_parse(r_url)
    assert atom_errors == [] and rss_errors == []
    first, second = atom_articles
    assert (first["title"], first["url"], first["guid"], first["source"]) == \
        ("Talks resume", "https://news.example/talks", "urn:entry:1", "Caucasus Desk")
    assert first["text"] == "Armenia & Azerbaijan met.\nMore soon."
    assert (first["published"], first["published_at"]) == ("2024-03-04", "2024-03-04T22:30:00+00:00")  # published wins
    assert (second["published"], second["published_at"]) == ("2024-03-05", "2024-03-05T04:45:00+00:00")  # updated
    assert (second["guid"], second["text"]) == ("urn:entry:2", "Plain summary.")
    (wire,) = rss_articles
    assert (wire["guid"], wire["url"], wire["source"], wire["text"]) == \
        ("wire-42", "https://wire.example/rates", "Wire", "Bank holds rates.")
    assert (wire["published"], wire["published_at"]) == ("2024-03-06", "2024-03-06T01:30:00+00:00")


@pytest.mark.parametrize("fixture", ["rss1/rss_1.0_iso8859.xml", "rss0/rss_0.91_encoding_1.xml",
                                     "rss0/rss_0.91_encoding_2.xml"])
def test_declared_iso_8859_1_encoding_is_honoured(server, feeds_dir, fixture):
    path = feeds_dir / fixture
    assert b'encoding="ISO-8859-1"' in path.read_bytes()[:60]
    url = server.add_file("/latin1.xml", path, content_type="text/xml", charset="ISO-8859-1")
    result, raws, articles, errors = fetch_parse(url)
    titles = [f["title"] for _, f in feed_entries(raws[0]["data"], url)]
    assert titles == expected_titles(path)
    assert any(ch in "".join(titles) for ch in "äöüãâêí")  # accents decoded, no mojibake
    assert "\ufffd" not in "".join(titles)


def test_http_charset_used_when_document_declares_none(server):
    title = "Ереван и Баку договорились"
    doc = (f"<rss version=\"2.0\"><channel><title>Лента</title><item><title>{title}</title>"
           f"<description>Текст новости.</description><pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate>"
           f"</item></channel></rss>").encode("windows-1251")
    url = server.add("/ru.xml", Route(body=doc, content_type="application/rss+xml", charset="windows-1251"))
    _, _, articles, errors = fetch_parse(url)
    assert errors == [] and [a["title"] for a in articles] == [title] and articles[0]["source"] == "Лента"
    assert apply_http_charset(doc, None) == doc  # without a charset the bytes are left to feedparser


def test_truncated_reuters_feed_is_a_clear_dead_letter(server, feeds_dir):
    """The captured Reuters feed breaks off after the channel header: it has no <item> at all, so the channel
    is read (partially readable) and the feed becomes one dead letter naming the XML error."""
    path = feeds_dir / "rss2/rss_2.0_invalid_1.xml"
    url = server.add_file("/reuters.xml", path)
    result, raws, articles, errors = fetch_parse(url)
    assert result.status == 200 and articles == []
    assert len(errors) == 1 and errors[0].startswith("no entries could be read from the feed:")
    import feedparser

    assert feedparser.parse(raws[0]["data"]).feed.title == "Reuters: Most Read Articles"


def test_feed_cut_mid_entry_still_yields_complete_entries(server, feeds_dir):
    path = feeds_dir / "atom/atom_mediarss_reddit_1.xml"
    data = path.read_bytes()
    last = data.rindex(b"<entry")
    url = server.add("/cut.xml", Route(body=data[: last + (len(data) - last) // 2]))  # cut inside entry 25
    _, _, articles, errors = fetch_parse(url)
    assert [a["title"] for a in articles] == expected_titles(path)[:24]
    assert len(errors) == 1  # the cut entry


def test_max_entries_cap(server, feeds_dir):
    url = server.add_file("/reddit.xml", feeds_dir / "atom/atom_mediarss_reddit_1.xml")
    raws = feed_raw_inputs(fetch_feed(url, **FAST), max_entries=10)
    articles, errors = parsed(raws)
    assert len(articles) == 10 and len(errors) == 1 and "more than max_entries 10" in errors[0]
    assert list(cap_entries(iter([("a", 1), ("b", 2)]), 2)) == [("a", 1), ("b", 2)]  # exactly N: no note


# ------------------------------------------------------------------ HTTP behaviour
def test_conditional_get_304_on_second_poll(server, feeds_dir):
    stamp = "Thu, 25 Feb 2021 10:15:00 GMT"
    url = server.add_file("/bbc.xml", feeds_dir / "rss2/rss_2.0_bbc.xml", etag='"v1"', last_modified=stamp)
    first = fetch_feed(url, **FAST)
    assert (first.status, first.etag, first.last_modified) == (200, '"v1"', stamp)
    second = fetch_feed(url, state=first, **FAST)
    assert (second.status, second.not_modified, second.data, second.error) == (304, True, None, None)
    assert (second.etag, second.last_modified) == ('"v1"', stamp)
    assert feed_raw_inputs(second) == []
    sent = server.requests_to("/bbc.xml")
    assert "if-none-match" not in sent[0].headers
    assert (sent[1].headers["if-none-match"], sent[1].headers["if-modified-since"]) == ('"v1"', stamp)
    third = fetch_feed(url, state=second.state(), **FAST)  # a dict loaded from a state file works too
    assert third.not_modified


def test_request_identity_and_gzip_deflate(server, feeds_dir):
    body = (feeds_dir / "rss2/rss_2.0_spec_1.xml").read_bytes()
    for enc in ("gzip", "deflate"):
        result = fetch_feed(server.add(f"/{enc}.xml", Route(body=body, encoding=enc)), **FAST)
        assert (result.status, result.data) == (200, body), enc
    headers = server.requests_to("/gzip.xml")[0].headers
    assert headers["user-agent"] == USER_AGENT == "newsbeam/0.1 (+https://github.com/newsbeam)"
    assert headers["accept-encoding"] == "gzip, deflate" and "application/rss+xml" in headers["accept"]


def test_redirect_chain_is_followed_and_bounded(server, feeds_dir):
    server.add_file("/final.xml", feeds_dir / "rss2/rss_2.0_bbc.xml")
    ok = fetch_feed(server.add_redirect_chain("/r", 3, "/final.xml", status=301), **FAST)
    assert (ok.status, ok.final_url, ok.error) == (200, server.url("/final.xml"), None)
    too_many = fetch_feed(server.add_redirect_chain("/loop", 6, "/final.xml"), **FAST)
    assert too_many.error == "too many redirects (more than max_redirects 5)"
    assert len(server.requests_to("/final.xml")) == 1  # the 6-hop chain never reached it
    to_file = fetch_feed(server.add("/evil", Route(status=302, redirect_to="file:///etc/passwd")), **FAST)
    assert to_file.error.startswith("redirect refused: feed URL must be http:// or https://")


def test_timeout_is_retried_then_reported(server):
    url = server.add("/slow.xml", Route(body=b"<rss/>", delay=60))
    start = time.monotonic()
    result = fetch_feed(url, **{**FAST, "read_timeout": 0.3})
    assert time.monotonic() - start < 60  # gave up on each attempt, never waited the stalled answer out
    assert result.error == "read timeout after 0.3 s" and result.attempts == 3
    assert server.routes["/slow.xml"].hits == 3
    _, errors = parsed(feed_raw_inputs(result))
    assert errors == ["feed fetch failed: read timeout after 0.3 s"]


def test_5xx_is_retried_with_backoff(server, feeds_dir):
    body = (feeds_dir / "rss2/rss_2.0_bbc.xml").read_bytes()
    ok = fetch_feed(server.add("/flaky.xml", Route(body=body, fail_times=2, fail_status=503)), **FAST)
    assert (ok.status, ok.attempts, ok.data) == (200, 3, body)
    down = fetch_feed(server.add("/down.xml", Route(body=body, fail_times=99)), **FAST)
    assert (down.status, down.error, down.attempts) == (500, "HTTP 500 Internal Server Error", 3)
    missing = fetch_feed(server.url("/nothing-here.xml"), **FAST)
    assert (missing.error, missing.attempts) == ("HTTP 404 Not Found", 1)  # 4xx: not retried
    _, errors = parsed(feed_raw_inputs(down) + feed_raw_inputs(missing))
    assert errors == ["feed fetch failed: HTTP 500 Internal Server Error", "feed fetch failed: HTTP 404 Not Found"]


@pytest.mark.parametrize("drop", ["before", "mid-body"])
def test_dropped_connection_is_retried_then_reported(server, drop):
    url = server.add("/drop.xml", Route(body=b"<rss>" + b"x" * 10_000 + b"</rss>", drop=drop))
    result = fetch_feed(url, **FAST)
    assert result.error.startswith("connection failed or dropped:") and result.attempts == 3
    assert ("RemoteDisconnected" if drop == "before" else "IncompleteRead") in result.error


def test_html_page_is_not_a_feed(server):
    page = b"<!DOCTYPE html>\n<html><head><title>Home</title></head><body><p>Welcome</p></body></html>"
    url = server.add("/index", Route(body=page, content_type="text/html", charset="utf-8"))
    result, raws, articles, errors = fetch_parse(url)
    assert result.status == 200 and articles == []
    assert errors == ["not a feed: the server returned an HTML page (Content-Type text/html; charset=utf-8); "
                      "expected RSS/Atom XML"]
    assert looks_like_html(b"<?xml version='1.0'?><!-- x --><html xmlns='http://www.w3.org/1999/xhtml'>")
    assert not looks_like_html(b"<?xml version='1.0'?><rss version='2.0'><channel><title>html</title>")


def test_size_cap(server):
    body = b"<rss>" + b"x" * 300_000 + b"</rss>"
    declared = fetch_feed(server.add("/big.xml", Route(body=body)), **FAST, max_bytes=100_000)
    assert declared.error == f"response too large: Content-Length {len(body)} > max_bytes 100000"
    streamed = fetch_feed(server.add("/endless.xml", Route(body=body, send_length=False)), **FAST,
                          max_bytes=100_000)
    assert streamed.error == "response too large: more than max_bytes 100000 bytes (decoded); stopped reading"
    assert fetch_feed(server.url("/big.xml"), **FAST, max_bytes=len(body)).data == body  # at the cap: fine
    _, errors = parsed(feed_raw_inputs(declared))
    assert errors[0].startswith("feed fetch failed: response too large")


def test_gzip_bomb_is_stopped_at_the_cap(server):
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    bomb = b"".join([comp.compress(b"\0" * (1 << 20)) for _ in range(100)] + [comp.flush()])  # 100 MB -> ~100 KB
    url = server.add("/bomb.xml", Route(body=bomb, encoding="gzip", precompressed=True))
    tracemalloc.start()
    try:
        result = fetch_feed(url, **FAST, max_bytes=1_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.error.startswith("response too large: more than max_bytes 1000000")
    assert peak < 10_000_000, f"decompression not bounded: peak {peak} bytes"


# ------------------------------------------------------------------ URLs and feed lists
@pytest.mark.parametrize("url, reason", [
    ("file:///etc/passwd", "must be http:// or https://, got file:"),
    ("ftp://example.org/feed.xml", "must be http:// or https://, got ftp:"),
    ("javascript:alert(1)", "must be http:// or https://"),
    ("example.org/feed.xml", "got no scheme"),
    ("http:///feed.xml", "has no host"),
    ("http://example.org:99999/feed", "invalid port"),
    ("http://exa mple.org/", "whitespace"),
    ("", "non-empty"),
])
def test_non_http_urls_are_rejected(url, reason):
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        validate_feed_url(url)
    with pytest.raises(ValueError):
        fetch_feed(url)
    with pytest.raises(ValueError):
        ReadFeeds(["https://example.org/ok.xml", url])


def test_read_feed_list(tmp_path):
    good = tmp_path / "feeds.txt"
    good.write_text("# world news\n\nhttps://example.org/rss.xml\n  http://example.net/atom  # a comment\n"
                    "https://example.org/rss.xml\n", encoding="utf-8")
    assert read_feed_list(good) == ["https://example.org/rss.xml", "http://example.net/atom"]
    bad = tmp_path / "bad.txt"
    bad.write_text("https://example.org/rss.xml\nfile:///etc/passwd\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.txt:2: feed URL must be http:// or https://"):
        read_feed_list(bad)
    two = tmp_path / "two.txt"
    two.write_text("https://a.org/x https://b.org/y\n", encoding="utf-8")
    with pytest.raises(ValueError, match="one URL per line"):
        read_feed_list(two)


# ------------------------------------------------------------------ XML security
LOL_ENTITIES = "".join(f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10}">\n' for i in range(1, 10))
BILLION_LAUGHS = (f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY lol0 "lol">\n{LOL_ENTITIES}]>\n'
                  '<rss version="2.0"><channel><title>laughs</title><item><title>&lol9;</title>'
                  '<description>&lol9;</description><pubDate>Mon, 01 Jan 2024 00:00:00 GMT</pubDate></item>'
                  '</channel></rss>').encode()
ONE_LINE_LAUGHS = BILLION_LAUGHS.replace(b"\n", b"")  # slips past feedparser's own line-anchored DOCTYPE regex
XXE = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       b'<rss version="2.0"><channel><title>t</title><item><title>leak: &xxe;</title><description>&xxe;'
       b'</description><pubDate>Mon, 01 Jan 2024 00:00:00 GMT</pubDate></item></channel></rss>')


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, ONE_LINE_LAUGHS, XXE], ids=["laughs", "laughs-one-line", "xxe"])
def test_entity_attacks_are_refused_as_dead_letters(server, doc):
    url = server.add("/attack.xml", Route(body=doc))
    result, raws, articles, errors = fetch_parse(url)  # refused before any expansion (no timing: a busy machine)
    assert result.status == 200 and articles == [] and len(raws) == 1
    assert errors == [raws[0]["error"]] and errors[0].startswith("refused: the document's DOCTYPE declares entities")
    assert "lollol" not in repr(raws) + repr(errors) and PASSWD_MARK not in repr(raws) + repr(errors)
    with pytest.raises(UnsafeFeedError):
        refuse_entity_declarations(doc)


def test_entities_hidden_by_encoding_are_refused():
    """The check looks at the text the parser will decode, not only at the bytes."""
    utf16 = ONE_LINE_LAUGHS.replace(b'version="1.0"', b'version="1.0" encoding="utf-16"').decode().encode("utf-16")
    utf16_bomless = utf16[len(codecs.BOM_UTF16_LE):] if utf16.startswith(codecs.BOM_UTF16_LE) else utf16[2:]
    utf7 = (b'<?xml version="1.0" encoding="utf-7"?>\n+ADw-!DOCTYPE rss +AFsAPA-!ENTITY a "AAAA"+AD4AXQA+-\n'
            b'<rss version="2.0"><channel><title>t</title><item><title>&a;</title></item></channel></rss>')
    assert b"<!DOCTYPE" not in utf7 and "<!DOCTYPE rss [<!ENTITY" in utf7.decode("utf-7")
    for doc in (utf16, utf16_bomless, utf7, XXE.decode().encode("utf-32")):
        with pytest.raises(UnsafeFeedError):
            refuse_entity_declarations(doc)


def test_external_dtd_is_never_fetched(server):
    """A DOCTYPE naming only an external DTD is allowed, and the DTD (which defines &xxe;) is not loaded."""
    server.add("/evil.dtd", Route(body=b'<!ENTITY xxe SYSTEM "file:///etc/passwd">', content_type="text/plain"))
    doc = (f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{server.url("/evil.dtd")}"><rss version="2.0"><channel>'
           f'<title>t</title><item><title>safe &xxe; title</title><description>body</description>'
           f'<pubDate>Mon, 01 Jan 2024 00:00:00 GMT</pubDate></item></channel></rss>').encode()
    url = server.add("/ext.xml", Route(body=doc))
    _, _, articles, errors = fetch_parse(url)
    assert errors == [] and len(articles) == 1 and PASSWD_MARK not in json.dumps(articles)
    assert server.requests_to("/evil.dtd") == []


def test_no_captured_feed_is_refused(feeds_dir):
    """No false positives: every real feed passes the check unchanged."""
    files = sorted(feeds_dir.glob("*/*.xml"))
    assert len(files) > 60
    for f in files:
        data = f.read_bytes()
        assert refuse_entity_declarations(data) is data, f.name


_misc = st.lists(st.sampled_from([" ", "\n", "<!-- <a> b -->", "<?pi x?>", "<!-- ]> -->", "\t"]), max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=_misc, between=_misc, keyword=st.sampled_from(["DOCTYPE", "doctype"]),
       ext=st.sampled_from(["", ' SYSTEM "x.dtd"', ' PUBLIC "-//x//EN" "x.dtd"']),
       entity=st.sampled_from(['<!ENTITY a "&b;&b;">', '<!ENTITY x SYSTEM "file:///etc/passwd">',
                               '<!ENTITY % p SYSTEM "http://127.0.0.1/p.dtd"> %p;']))
def test_any_prolog_with_entity_declarations_is_refused(before, between, keyword, ext, entity):
    doc = (f'{"".join(before)}<?xml version="1.0"?>{"".join(between)}<!{keyword} rss{ext} [{entity}]>'
           f"<rss/>").encode()
    with pytest.raises(UnsafeFeedError):
        refuse_entity_declarations(doc.lstrip())
    safe = f'<?xml version="1.0"?>{"".join(between)}<!DOCTYPE rss{ext}><rss><x>&lt;!ENTITY in text</x></rss>'
    assert refuse_entity_declarations(safe.encode()) == safe.encode()


# ------------------------------------------------------------------ Beam
def test_read_feeds_in_a_pipeline(server, feeds_dir):
    bbc = server.add_file("/bbc.xml", feeds_dir / "rss2/rss_2.0_bbc.xml", etag='"bbc-1"')
    atom = server.add_file("/atom.xml", feeds_dir / "atom/atom_example_1.xml", etag='"atom-1"')
    down = server.add("/down.xml", Route(fail_times=99))
    html = server.add("/page", Route(body=b"<html><body>hi</body></html>", content_type="text/html"))
    laughs = server.add("/laughs.xml", Route(body=ONE_LINE_LAUGHS))
    urls = [bbc, atom, down, html, laughs, atom]  # a duplicate is fetched once

    p = beam_pipeline()
    out = p | ReadFeeds(urls, **FAST)
    assert_that(out | beam.Map(lambda r: (r["ref"], (r.get("error") or "ok").split(":")[0])),
                equal_to([(bbc, "ok"), (atom, "ok"), (down, "feed fetch failed"), (html, "not a feed"),
                          (laughs, "refused")]), label="raw")
    parsed_out = out | ParseArticles()
    assert_that(parsed_out.articles | beam.Map(lambda a: a["title"]),
                equal_to(expected_titles(feeds_dir / "rss2/rss_2.0_bbc.xml") + ["Atom draft-07 snapshot"]),
                label="articles")
    assert_that(parsed_out.dead_letter | beam.Map(lambda d: d["input_ref"]), equal_to([down, html, laughs]),
                label="dead")
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed
                for c in result.metrics().query(MetricsFilter().with_namespace("newsbeam"))["counters"]}
    assert {k: counters.get(k) for k in ("feeds_fetched", "feeds_not_modified", "feeds_failed", "feeds_refused")} \
        == {"feeds_fetched": 4, "feeds_not_modified": None, "feeds_failed": 1, "feeds_refused": 2}
    assert len(server.requests_to("/atom.xml")) == 1


def test_cli_pulls_feeds_once_and_accounts_for_every_entry(server, feeds_dir, tmp_path):
    """`newsbeam run --feeds URL --feeds-file FILE`: the real CLI against the loopback server."""
    from tests.conftest import read_output, run_cli

    bbc = server.add_file("/bbc.xml", feeds_dir / "rss2" / "rss_2.0_bbc.xml", content_type="application/rss+xml")
    rdf = server.add_file("/rdf.xml", feeds_dir / "rss1" / "rss_1.0_example_1.xml", content_type="application/rdf+xml")
    page = server.add("/page.html", Route(body=b"<!DOCTYPE html><html><body>Hello</body></html>",
                                         content_type="text/html"))
    listing = tmp_path / "feeds.txt"
    listing.write_text(f"# feeds for the test\n{rdf}\n\n{page}\n")
    out = tmp_path / "out"
    proc = run_cli(["run", "--feeds", bbc, "--feeds-file", str(listing), "--output", str(out), "--targets", "BBC"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = read_output(out)
    assert len(res["articles"]) + len(res["duplicates"]) == 3
    assert [d["input_ref"] for d in res["dead"]] == [page]
    assert "every record accounted for" in proc.stdout


# ------------------------------------------------------------------ partly readable feeds, full text
def _counters(result) -> dict[str, int]:
    return {c.key.metric.name: c.committed
            for c in result.metrics().query(MetricsFilter().with_namespace("newsbeam"))["counters"]}


def _rss(title: str, items: list[str], namespaces: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"{namespaces}><channel><title>{title}</title>'
            f'<link>https://news.example/</link><description>test</description>{"".join(items)}</channel></rss>'
            ).encode()


def _item(title: str, text: str, link: str | None = None, extra: str = "") -> str:
    return (f"<item><title>{title}</title><description>{text}</description>"
            f"<pubDate>Tue, 05 Mar 2024 10:00:00 GMT</pubDate>{f'<link>{link}</link>' if link else ''}{extra}</item>")


def _write(articles, out: Path) -> None:
    from pipeline.sinks import WriteArticles

    articles | WriteArticles(str(out))


def _written(out: Path) -> list[dict]:
    from tests.conftest import read_jsonl

    return sorted((a for f in out.glob("dt=*/articles-*.jsonl") for a in read_jsonl(f)), key=lambda a: a["input_ref"])


def test_partly_readable_feeds_are_counted_and_their_entries_written(server, tmp_path, caplog):
    """feedparser's `bozo` with entries present: the entries go on (here to the article files) and each such
    feed counts once as `feeds_partial`, its bozo_exception logged once."""
    entity = server.add("/entity.xml", Route(body=_rss("Entity", [
        _item("Ceasefire&nbsp;holds", "Both sides reported a quiet night along the line."),
        _item("Markets", "Shares rose in early trading &copy; the desk.")])))
    broken = server.add("/broken.xml", Route(body=_rss("Broken", [
        _item("First story", "The first story of the broken feed is complete."),
        _item("Second story", "This description has an <b>unclosed tag in the middle of the document."),
        _item("Third story", "The third story comes after the XML error.")])))
    clean = server.add("/clean.xml", Route(body=_rss("Clean", [_item("Clean story", "A well-formed entry.")])))
    out = tmp_path / "out"
    p = beam_pipeline()
    parsed_out = p | ReadFeeds([entity, broken, clean], **FAST) | ParseArticles()
    _write(parsed_out.articles, out)
    with caplog.at_level("WARNING", logger="newsbeam.parse"):
        result = p.run()
        result.wait_until_finish()
    counters = _counters(result)
    assert counters["feeds_partial"] == 2 and counters["feeds_fetched"] == 3
    written = _written(out)
    by_feed = {}
    for a in written:
        by_feed.setdefault(a["source"], []).append(a["title"])
    assert by_feed["Entity"] == ["Ceasefire holds", "Markets"]
    assert by_feed["Broken"][0] == "First story" and len(by_feed["Broken"]) >= 2
    assert by_feed["Clean"] == ["Clean story"]
    partial_logs = [r.getMessage() for r in caplog.records if "partly readable" in r.getMessage()]
    assert len(partial_logs) == 2, partial_logs
    assert any(entity in m and "undefined entity" in m for m in partial_logs)
    assert any(broken in m and "mismatched tag" in m for m in partial_logs)


ARTICLE_BODY = [
    "Armenian and Azerbaijani negotiators met in Brussels on Monday for the first round of talks since the autumn, "
    "officials in Yerevan said, after months in which the two sides exchanged accusations over the border.",
    "The meeting, hosted by the European Council, lasted more than four hours and focused on the delimitation of "
    "the border and the reopening of transport links through the region, according to a late statement.",
    "Diplomats described the atmosphere as businesslike. Neither delegation spoke to reporters outside the "
    "building, but a spokesperson for the council said both sides had agreed to meet again within a month.",
    "Analysts in Tbilisi cautioned that earlier rounds had produced similar promises without a signed agreement, "
    "and that public opinion in both countries remained sceptical of a quick settlement.",
]
BOILERPLATE = ["We use cookies to improve your experience", "World news section", "Business and markets section",
               "Subscribe to our newsletter today", "Most read", "Celebrity chef opens new restaurant downtown",
               "Ten tips for a better night of sleep", "Copyright 2024 Caucasus Desk Media Group",
               "Privacy policy", "Terms of use", "Share this story on social media"]
ARTICLE_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Talks resume in Brussels | Caucasus Desk</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta property="og:title" content="Armenia and Azerbaijan resume talks in Brussels">
<link rel="stylesheet" href="/static/site.css">
<script>window.dataLayer = window.dataLayer || []; function gtag(){{dataLayer.push(arguments);}}</script>
<style>.cookie-banner {{ position: fixed; bottom: 0; }}</style>
</head>
<body>
<div class="cookie-banner">{BOILERPLATE[0]}. <button>Accept all cookies</button></div>
<header class="site-header">
  <a class="logo" href="/">Caucasus Desk</a>
  <nav class="main-nav"><ul>
    <li><a href="/world">{BOILERPLATE[1]}</a></li>
    <li><a href="/business">{BOILERPLATE[2]}</a></li>
    <li><a href="/subscribe">{BOILERPLATE[3]}</a></li>
  </ul></nav>
</header>
<main>
<article class="story">
  <h1>Armenia and Azerbaijan resume talks in Brussels</h1>
  <p class="byline">By Anna Petrosyan</p>
  {"".join(f"<p>{p}</p>" for p in ARTICLE_BODY)}
  <div class="share"><a href="/share">{BOILERPLATE[10]}</a></div>
</article>
<aside class="related">
  <h2>{BOILERPLATE[4]}</h2>
  <ul><li><a href="/a">{BOILERPLATE[5]}</a></li><li><a href="/b">{BOILERPLATE[6]}</a></li></ul>
</aside>
</main>
<footer class="site-footer">
  <p>{BOILERPLATE[7]}. All rights reserved.</p>
  <nav><a href="/privacy">{BOILERPLATE[8]}</a> <a href="/terms">{BOILERPLATE[9]}</a></nav>
</footer>
</body>
</html>
""".encode()


def test_fetch_full_text_replaces_summaries_with_the_page_text(server, tmp_path):
    """--fetch-full-text over real HTTP: a summary-only entry whose link (a redirect, then a gzip HTML page with
    navigation and boilerplate) yields its main text; a 404, a PDF and a redirect to file:// keep the summary and
    are counted; an entry with full <content> is not fetched at all."""
    server.add("/news/2024/03/talks.html", Route(body=ARTICLE_PAGE, content_type="text/html", charset="utf-8",
                                                 encoding="gzip"))
    server.add("/story/talks", Route(status=301, redirect_to="/news/2024/03/talks.html"))
    server.add("/files/report.pdf", Route(body=b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n" * 50,
                                          content_type="application/pdf"))
    server.add("/evil", Route(status=302, redirect_to="file:///etc/passwd"))
    long_text = " ".join(["The full story is already in the feed, with every paragraph of it."] * 12)
    items = [
        _item("Talks resume", "Negotiators met in Brussels.", server.url("/story/talks")),
        _item("Gone", "This story was taken down.", server.url("/news/missing")),
        _item("Annual report", "The ministry published its annual report.", server.url("/files/report.pdf")),
        _item("Sneaky", "A link that redirects to a local file.", server.url("/evil")),
        _item("Complete", "Short teaser.", server.url("/news/complete"),
              extra=f"<content:encoded><![CDATA[<p>{long_text}</p>]]></content:encoded>"),
    ]
    feed = server.add("/desk.xml", Route(body=_rss("Caucasus Desk", items,
                                                   ' xmlns:content="http://purl.org/rss/1.0/modules/content/"')))
    out = tmp_path / "out"
    p = beam_pipeline()
    limits, policy = ParseLimits(), FullTextPolicy(enabled=True, allow_private_hosts=True)
    parsed_out = p | ReadFeeds([feed], **FAST) | ParseArticles(limits, full_text_fetcher(limits, policy), policy)
    _write(parsed_out.articles, out)
    result = p.run()
    result.wait_until_finish()
    counters = _counters(result)
    assert (counters.get("full_text_fetched"), counters.get("full_text_failed")) == (1, 3)
    texts = {a["title"]: a["text"] for a in _written(out)}
    assert set(texts) == {"Talks resume", "Gone", "Annual report", "Sneaky", "Complete"}
    full = texts["Talks resume"]
    assert all(sentence in full for sentence in ARTICLE_BODY), full
    assert not [b for b in BOILERPLATE if b in full], full
    assert (texts["Gone"], texts["Annual report"], texts["Sneaky"]) == (
        "This story was taken down.", "The ministry published its annual report.",
        "A link that redirects to a local file.")  # the summaries, kept
    assert texts["Complete"] == long_text and server.requests_to("/news/complete") == []
    page_request = server.requests_to("/news/2024/03/talks.html")[0].headers
    assert page_request["user-agent"] == USER_AGENT and page_request["accept"].startswith("text/html")
    assert page_request["accept-encoding"] == "gzip, deflate"
    assert len(server.requests_to("/news/missing")) == 1  # a 404 is not retried


def test_full_text_fetcher_reasons(server):
    """The reasons a summary is kept, as logged."""
    from pipeline.feeds import FullTextFetcher

    server.add("/page", Route(body=ARTICLE_PAGE, content_type="text/html"))
    server.add("/empty", Route(body=b"<html><head><title>Gallery</title></head><body><img src='/a.jpg'>"
                                    b"<script>var slides = 12;</script></body></html>", content_type="text/html"))
    server.add("/big", Route(body=ARTICLE_PAGE + b"<!--" + b"x" * 200_000 + b"-->", content_type="text/html"))
    fetch = FullTextFetcher(max_chars=100_000, allow_private_hosts=True, **FAST)
    try:
        assert fetch(server.url("/page"), "Negotiators met.")[0].startswith("Armenia and Azerbaijan resume talks")
        assert fetch(None, "x") == (None, "the entry has no link")
        assert fetch("ftp://example.org/a", "x")[1].startswith("link refused: feed URL must be http:// or https://")
        assert fetch(server.url("/missing"), "x") == (None, "page fetch failed: HTTP 404 Not Found")
        assert fetch(server.url("/empty"), "x") == (None, "no main text found in the page")
        assert fetch(server.url("/page"), "word " * 2000)[1].startswith("the page's main text (")
        assert fetch(server.url("/big"), "x")[0] is not None  # the comment is not text; max_bytes is 10 MB
        small = FullTextFetcher(max_chars=100_000, allow_private_hosts=True, **{**FAST, "max_bytes": 1000})
        assert small(server.url("/big"), "x")[1].startswith("page fetch failed: response too large")
        small.close()
    finally:
        fetch.close()


def test_fetch_full_text_option_is_wired(tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import NewsbeamOptions
    from pipeline.launch import graph_config

    def cfg(*flags):
        return graph_config(PipelineOptions(["--output", str(tmp_path), "--targets", "A", *flags])
                            .view_as(NewsbeamOptions))

    assert cfg().full_text.enabled is False
    assert cfg("--fetch-full-text").full_text.enabled is True
    assert cfg("--fetch-full-text").full_text.allow_private_hosts is False
    assert cfg("--fetch-full-text", "--full-text-allow-private-hosts").full_text.allow_private_hosts is True
    assert cfg("--fetch-full-text", "--streaming").full_text.enabled is True  # streaming fetches too


# ------------------------------------------------------------------ SSRF: entry links must be public hosts
@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.1", "192.168.1.5", "169.254.169.254", "::1", "0.0.0.0",
                                  "224.0.0.1", "::ffff:127.0.0.1", "fe80::1", "localhost"])
def test_non_public_hosts_are_refused(host):
    from pipeline.feeds import non_public_address

    assert non_public_address(host) is not None


def test_literal_public_ip_is_accepted_without_network(monkeypatch):
    import socket

    from pipeline.feeds import non_public_address

    def no_dns(*a, **k):
        raise AssertionError("a literal IP must not be resolved")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    assert non_public_address("93.184.216.34") is None
    assert non_public_address("2606:2800:220:1:248:1893:25c8:1946") is None


def test_entry_link_to_a_private_host_is_refused_and_never_requested(server):
    from pipeline.feeds import FullTextFetcher

    server.add("/page", Route(body=ARTICLE_PAGE, content_type="text/html"))
    fetch = FullTextFetcher(max_chars=100_000, **FAST)  # allow_private_hosts off (the default)
    try:
        text, reason = fetch(server.url("/page"), "Negotiators met.")
    finally:
        fetch.close()
    assert text is None and "non-public address 127.0.0.1" in reason, reason
    assert server.requests_to("/page") == []


def test_redirect_to_a_private_host_is_refused(server, monkeypatch):
    """The check runs before every hop: 127.0.0.1 is treated as public here, so the first request is made, but
    its redirect to localhost (loopback) is refused and the target is never requested."""
    import pipeline.feeds as feeds

    real = feeds.non_public_address
    monkeypatch.setattr(feeds, "non_public_address", lambda host: None if host == "127.0.0.1" else real(host))
    server.add("/page", Route(body=ARTICLE_PAGE, content_type="text/html"))
    server.add("/hop", Route(status=302, redirect_to=server.base.replace("127.0.0.1", "localhost") + "/page"))
    fetch = feeds.FullTextFetcher(max_chars=100_000, **FAST)
    try:
        text, reason = fetch(server.url("/hop"), "Negotiators met.")
    finally:
        fetch.close()
    assert text is None and "non-public address" in reason and "'localhost'" in reason, reason
    assert len(server.requests_to("/hop")) == 1 and server.requests_to("/page") == []


def test_configured_feed_urls_may_be_private(server):
    """The user's own feed URLs are not restricted (only entry pages are)."""
    server.add("/feed.xml", Route(body=_rss("Local", [_item("One", "Text.")])))
    assert fetch_feed(server.url("/feed.xml"), **FAST).error is None
