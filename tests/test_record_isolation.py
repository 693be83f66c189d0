"""Every record on its own: one bad record in a file -- a JSON line the decoder refuses (a
5,000-digit integer, 100,000 nested brackets), a date that overflows on its conversion to UTC, a feed entry that
breaks feedparser or the entry code (`&#xD800;`, a year-10000 date) -- becomes its own dead letter with its
reason, and the good records of the same file are still parsed; `read` counts records, not files. The same holds
for streaming, which parses feed entries through the same per-entry code."""
from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import beam_pipeline
from transforms.parse import ParseArticles, parse_raw
from transforms.records import ParseError, parse_date

GOOD = [json.dumps({"text": f"Good story number {i} about the ceasefire in Armenia.", "published": "2020-11-10"})
        for i in range(3)]

BAD_JSONL = {
    "5000-digit integer": ('{"text": "x", "published": "2020-11-10", "n": ' + "9" * 5000 + "}",
                           "integer with more than"),
    "deep nesting": ("[" * 100_000, "nested too deeply"),
    "date overflows in UTC": (json.dumps({"text": "Overflow.", "published": "9999-12-31T23:00:00-05:00"}),
                              "out of range"),
}


def _outcomes(ref: str, data: bytes) -> list[tuple[str, str]]:
    """(record ref, "ok" | the dead-letter reason) for each record parse_raw yields."""
    return [(r, "ok" if isinstance(x, dict) else str(x)) for r, x in parse_raw({"ref": ref, "data": data})]


@pytest.mark.parametrize("kind", sorted(BAD_JSONL))
def test_a_bad_jsonl_line_is_its_own_dead_letter(kind):
    line, reason = BAD_JSONL[kind]
    data = "\n".join(GOOD[:2] + [line] + GOOD[2:]).encode()
    got = _outcomes("a.jsonl", data)
    assert [r for r, _ in got] == ["a.jsonl:1", "a.jsonl:2", "a.jsonl:3", "a.jsonl:4"]
    assert [o for _, o in got][:2] == ["ok", "ok"] and got[3][1] == "ok"
    assert reason in got[2][1], got[2]


def test_date_overflowing_on_utc_conversion_is_a_parse_error():
    with pytest.raises(ParseError, match="out of range"):
        parse_date("9999-12-31T23:00:00-05:00")
    with pytest.raises(ParseError, match="out of range"):
        parse_date("Fri, 31 Dec 9999 23:00:00 -0500")


def _rss(*items: str, title: str = "Wire") -> bytes:
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>{"".join(items)}'
            f"</channel></rss>").encode()


def _item(n: int, date: str = "Tue, 10 Nov 2020 10:00:00 GMT", title: str | None = None, text: str | None = None,
          link: str | None = None) -> str:
    return (f"<item><title>{title or f'Story {n}'}</title>"
            f"<description>{text or f'Good story {n} about the ceasefire in Armenia.'}</description>"
            f"<pubDate>{date}</pubDate><link>{link or f'http://example.org/{n}'}</link>"
            f"<guid>g{n}</guid></item>")


def _atom(*entries: str) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
            f'<id>urn:a</id><updated>2020-11-10T10:00:00Z</updated>{"".join(entries)}</feed>').encode()


def _entry(n: int, date: str = "2020-11-10T10:00:00Z", text: str | None = None) -> str:
    return (f"<entry><title>Story {n}</title><id>urn:{n}</id><updated>{date}</updated>"
            f'<link href="http://example.org/{n}"/>'
            f"<summary>{text or f'Good story {n} about the ceasefire in Armenia.'}</summary></entry>")


BAD_FEEDS = {
    "rss date 9999 -05:00 (RFC 822)": (_rss(_item(1), _item(2, date="Fri, 31 Dec 9999 23:00:00 -0500"), _item(3)),
                                       "out of range"),
    "rss date 9999 -05:00 (ISO)": (_rss(_item(1), _item(2, date="9999-12-31T23:00:00-05:00"), _item(3)),
                                   "out of range"),
    "rss &#xD800; in an item": (_rss(_item(1), _item(2, title="Bad &#xD800; title"), _item(3)), "surrogate"),
    "rss &#55296; (decimal) in a description": (_rss(_item(1), _item(2, text="bad &#55296; text"), _item(3)),
                                                "surrogate"),
    "atom date 9999 -05:00": (_atom(_entry(1), _entry(2, date="9999-12-31T23:00:00-05:00"), _entry(3)),
                              "out of range"),
    "atom &#xDFFF; in a summary": (_atom(_entry(1), _entry(2, text="x &#xDFFF; y"), _entry(3)), "surrogate"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FEEDS))
def test_a_bad_feed_entry_is_its_own_dead_letter(kind):
    data, reason = BAD_FEEDS[kind]
    got = _outcomes("f.xml", data)
    assert [r for r, _ in got] == ["f.xml#0", "f.xml#1", "f.xml#2"], got
    assert got[0][1] == "ok" and got[2][1] == "ok", got
    assert reason in got[1][1], got[1]


def test_a_surrogate_reference_in_the_channel_title_does_not_lose_the_entries():
    got = _outcomes("f.xml", _rss(_item(1), _item(2), title="Wire &#xD800;"))
    assert [o for _, o in got] == ["ok", "ok"]


def test_parse_articles_counts_records_not_files():
    """Through the Beam transform: 3 good + 3 bad JSONL lines and 2 good + 1 bad feed entries -> 5 articles,
    4 dead letters each naming its own record, and `read` = 9."""
    jsonl = "\n".join(GOOD + [line for line, _ in BAD_JSONL.values()]).encode()
    feed = BAD_FEEDS["rss &#xD800; in an item"][0]
    with beam_pipeline() as p:
        parsed = p | beam.Create([{"ref": "a.jsonl", "data": jsonl}, {"ref": "f.xml", "data": feed}]) \
            | ParseArticles()
        assert_that(parsed.articles | beam.Map(lambda a: a["input_ref"]),
                    equal_to(["a.jsonl:1", "a.jsonl:2", "a.jsonl:3", "f.xml#0", "f.xml#2"]), label="articles")
        assert_that(parsed.dead_letter | beam.Map(lambda d: d["input_ref"]),
                    equal_to(["a.jsonl:4", "a.jsonl:5", "a.jsonl:6", "f.xml#1"]), label="dead")
    result = p.result
    from pipeline.launch import counter_values

    assert counter_values(result)["read"] == 9


def test_streaming_entries_keep_the_good_ones():
    """Streaming keys a polled document's entries (pipeline.streaming.document_entries, for the seen filter) and
    parses the new ones with the batch code (parse_raw): the good entries of a feed with a bad one are articles,
    the bad one a keyed error (so it is reported once, not every poll)."""
    from pipeline.streaming import document_entries
    from transforms.parse import ParseError, parse_raw

    for kind in ("rss date 9999 -05:00 (RFC 822)", "rss &#xD800; in an item", "atom date 9999 -05:00"):
        data = BAD_FEEDS[kind][0]
        raw = {"ref": "http://h/f.xml", "data": data, "fetched_at": "2020-11-10T12:00:00+00:00"}
        keyed = document_entries(raw)
        assert len(keyed) == 3 and keyed[1][1] is not None, (kind, keyed)
        recs = [r for _ref, r in parse_raw(dict(raw, entries=[ref for ref, _key, _ok in keyed]))]
        assert [not isinstance(r, ParseError) for r in recs] == [True, False, True], (kind, recs)
        assert BAD_FEEDS[kind][1] in str(recs[1]), recs[1]
