"""Parse stage: pure functions without Beam, then the PTransform on a TestPipeline."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import apache_beam as beam
import pytest
from tests.conftest import beam_pipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.parse import (ParseArticles, ParseError, ParseLimits, decode_text, detect_format, html_to_text,
                              parse_jsonl_record, parse_raw, parse_seed)
from transforms.records import article_id, first_sentence, normalise_text, parse_date

SEED = "date 2020-11-27\nArmenia and Azerbaijan agreed a ceasefire. Moscow brokered it.\n\nMore text here.\n"


def test_seed_format_title_is_first_sentence():
    a = parse_seed(SEED, "x.txt", "x.txt")
    assert a["published"] == "2020-11-27"
    assert a["title"] == "Armenia and Azerbaijan agreed a ceasefire."
    assert a["text"].startswith("Armenia and Azerbaijan")
    assert a["source"] == "x.txt"


def test_seed_format_header_lines():
    a = parse_seed("date 2021-01-02\ntitle My title\nsource Wire\nurl https://e.org/a\nBody text.", "f", "f")
    assert (a["title"], a["source"], a["url"], a["text"]) == ("My title", "Wire", "https://e.org/a", "Body text.")



SHARED_SAMPLE = Path(__file__).resolve().parents[1] / "seeds" / "sample_article.txt"


def test_the_design_sample_article_parses_byte_for_byte():
    raw = SHARED_SAMPLE.read_bytes()
    assert raw.startswith(b" date 2020-12-13 It insisted")  # the file kept exactly as the design supplied it
    [(ref, a)] = list(parse_raw({"ref": str(SHARED_SAMPLE), "data": raw}))
    assert a["published"] == "2020-12-13"
    assert a["text"].startswith("It insisted that Azerbaijani forces")
    assert a["title"].startswith("It insisted")


@pytest.mark.parametrize("text", [
    " date 2020-12-13 Body on the date line. More.\n\nSecond paragraph.",
    "\ufeffdate 2020-12-13 Body on the date line. More.\r\n\r\nSecond paragraph.\r\n",
    "\n\n\tdate: 2020-12-13 Body on the date line. More.\n\nSecond paragraph.",
    "Date 2020-12-13T10:00:00Z Body on the date line. More.\n\nSecond paragraph.",
])
def test_body_may_start_on_the_date_line(text):
    a = parse_seed(text, "f", "f")
    assert a["published"] == "2020-12-13"
    assert a["text"] == "Body on the date line. More.\n\nSecond paragraph."


def test_headers_only_in_the_block_right_after_a_bare_date_line():
    text = ("date 2021-01-02\ntitle My title\nsource: Wire\n"
            "Body starts.\ntitle this line is body\nTargets of the strike were depots.\nSource Ministry says so.")
    a = parse_seed(text, "f", "f")
    assert (a["title"], a["source"], a.get("targets")) == ("My title", "Wire", None)
    assert a["text"].endswith("title this line is body\nTargets of the strike were depots.\nSource Ministry says so.")


def test_capitalised_first_body_line_is_not_a_header():
    a = parse_seed("date 2021-01-02\nTargets of the strike were depots near Shusha.", "f", "f")
    assert a.get("targets") is None and a["text"] == "Targets of the strike were depots near Shusha."


def test_no_header_block_when_the_body_starts_on_the_date_line():
    a = parse_seed("date 2021-01-02 Moscow said.\ntitle not a header here", "f", "f")
    assert a["title"] == "Moscow said." and a["text"].endswith("title not a header here")

@pytest.mark.parametrize("text, reason", [
    ("", "empty file"),
    ("Armenia and Azerbaijan\nbody", "first line must be `date YYYY-MM-DD`"),
    ("date 2020-13-45\nbody", "unparseable date"),
    ("date tomorrow\nbody", "unparseable date"),
    ("date 1850-01-01\nbody", "implausible published date"),
    ("date 2020-12-13It insisted", "with a space before the body"),
    ("date\nbody", "the date line has no date"),
    ("date yesterday evening the minister said\nbody", "expected `date YYYY-MM-DD`"),
    ("date 2999-01-01\nbody", "in the future"),
    ("date 2020-01-01\n\n   \n", "empty text"),
])
def test_seed_errors_have_reasons(text, reason):
    with pytest.raises(ParseError, match=reason.replace("`", ".").replace("(", ".").replace(")", ".")):
        parse_seed(text, "f", "f")


def test_id_is_content_derived_and_stable():
    a = article_id("https://E.org/x", "Title", "Some  text\n")
    assert a == article_id("https://e.org/x ", "title", "Some text")
    assert a != article_id("https://e.org/x", "Title", "Other text")
    assert len(a) == 24


def test_normalise_text_drops_controls_and_unifies_newlines():
    assert normalise_text("\ufeffa\r\nb\x00c\r\n\n\n\nd  ") == "a\nbc\n\nd"


def test_first_sentence_is_capped():
    assert first_sentence("Word " * 100).endswith("…")
    assert len(first_sentence("Word " * 100)) <= 201


def test_dates_to_utc():
    day, stamp = parse_date("2020-12-21T23:30:00-05:00")
    assert day == dt.date(2020, 12, 22) and stamp.utcoffset() == dt.timedelta(0)
    assert parse_date("Sun, 06 Dec 2020 03:00:00 GMT")[0] == dt.date(2020, 12, 6)
    with pytest.raises(ParseError, match="wrong type"):
        parse_date(20201206)


def test_jsonl_record_and_wrong_types():
    rec = parse_jsonl_record('{"text": "Body.", "published": "2020-01-02", "targets": ["A"]}', "f:1", "f")
    assert rec["targets"] == ["A"] and rec["title"] == "Body."
    for bad, why in [('{"text": 5, "published": "2020-01-02"}', "not a string"),
                     ('{"text": "x", "published": ["2020"]}', "wrong type"),
                     ('[1, 2]', "must be an object"),
                     ('{"text": "x"', "invalid JSON"),
                     ('{"text": "x", "published": "2020-01-02", "targets": "A"}', "targets must be a list")]:
        with pytest.raises(ParseError, match=why):
            parse_jsonl_record(bad, "f:1", "f")


def test_decode_refuses_binary_and_latin1():
    with pytest.raises(ParseError, match="binary"):
        decode_text(b"\x89PNG\x00\x00")
    with pytest.raises(ParseError, match="not valid UTF-8"):
        decode_text("date 2020-01-01\ncaf\xe9".encode("latin-1"))
    assert decode_text("\ufeffhello".encode("utf-8")) == "hello"


def test_detect_format():
    assert detect_format("a.jsonl", b"") == "jsonl"
    assert detect_format("a.bin", b"  <rss>") == "feed"
    assert detect_format("a", b"date 2020-01-01") == "seed"


def test_html_to_text():
    assert html_to_text("<p>One &amp; two</p><p>three<br/>four</p><script>x()</script>") == "One & two\nthree\nfour\n"


def test_feed_and_not_a_feed():
    rss = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>Hello</title>'
           b'<link>https://e.org/1</link><pubDate>Sun, 06 Dec 2020 03:00:00 GMT</pubDate>'
           b'<description>&lt;b&gt;Body&lt;/b&gt; text.</description></item></channel></rss>')
    out = list(parse_raw({"ref": "f.xml", "data": rss}))
    assert len(out) == 1 and out[0][1]["text"] == "Body text." and out[0][1]["source"] == "T"
    out = list(parse_raw({"ref": "g.xml", "data": b"<html><body><p>not a feed</p></body></html>"}))
    assert len(out) == 1 and isinstance(out[0][1], ParseError)


def test_too_long_is_rejected_not_truncated():
    with pytest.raises(ParseError, match="too long"):
        parse_seed("date 2020-01-01\n" + "word " * 1000, "f", "f", limits=ParseLimits(max_chars=100))


def test_parse_transform_splits_articles_and_dead_letters():
    raws = [
        {"ref": "good.txt", "data": SEED.encode()},
        {"ref": "empty.txt", "data": b""},
        {"ref": "bin.txt", "data": b"\x00\x01\x02"},
        {"ref": "l.jsonl", "data": b'{"text": "A.", "published": "2020-01-01"}\nnot json\n'},
    ]
    with beam_pipeline() as p:
        out = p | beam.Create(raws) | ParseArticles()
        assert_that(out.articles | "refs" >> beam.Map(lambda a: a["input_ref"]), equal_to(["good.txt", "l.jsonl:1"]),
                    label="articles")
        assert_that(out.dead_letter | beam.Map(lambda d: (d["input_ref"], d["stage"])),
                    equal_to([("empty.txt", "parse"), ("bin.txt", "parse"), ("l.jsonl:2", "parse")]), label="dead")


FEED_ONE_SUMMARY = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Desk</title>
<item><title>Talks resume</title><link>https://example.org/story/talks</link><guid>talks-1</guid>
<pubDate>Tue, 05 Mar 2024 10:00:00 GMT</pubDate><description>Negotiators met in Brussels.</description></item>
</channel></rss>"""


def test_a_fetched_page_keeps_the_id_of_its_feed_entry():
    """--fetch-full-text replaces the summary with the page text but keeps the id the summary gives, so a rerun
    where the fetch fails (or the page changed) gives the same article, not a second one beside it."""
    raw = {"ref": "https://example.org/feed.xml", "data": FEED_ONE_SUMMARY}
    [(_, plain)] = list(parse_raw(raw))
    page = "Negotiators from Armenia and Azerbaijan met in Brussels on Tuesday. " * 20

    def fetched(url, summary):  # what FullTextFetcher returns for a page it could read: (text, reason)
        assert url == "https://example.org/story/talks" and summary == "Negotiators met in Brussels."
        return page, None

    def failed(url, summary):
        return None, "HTTP 404"

    [(_, full)] = list(parse_raw(raw, full_text=fetched))
    [(_, kept)] = list(parse_raw(raw, full_text=failed))
    assert full["text"] == normalise_text(page) and kept["text"] == "Negotiators met in Brussels."
    assert full["id"] == kept["id"] == plain["id"]
