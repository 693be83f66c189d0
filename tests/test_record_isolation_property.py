"""Property: random JSONL, RSS and Atom files mixing good records with every
kind of bad record go through the real pipeline (the CLI, models included); every good record is written,
every bad one is its own dead letter naming its own record, and the summary balances.

Each example is one CLI run (20-40 s with the models on 2 busy cores), so the example count is small; the
kinds of bad record are few and each draw mixes many of them."""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.commands import EXIT_NOTHING_WRITTEN, EXIT_OK
from tests.conftest import read_output, run_cli

VOCAB = ("ministry officials said talks resumed after border clashes near the northern district while "
         "parliament debated budget cuts farmers protested rising fuel prices markets fell sharply investors "
         "awaited central bank decision shipping delays hit ports exporters warned of lower harvest yields "
         "regional governor announced inquiry into hospital funding teachers unions called strike over pay "
         "rail operator cancelled trains storm damaged power lines thousands homes without electricity police "
         "arrested suspects after bank robbery court adjourned hearing until next month election commission "
         "published preliminary results opposition disputed count observers reported irregularities").split()

# bad records by format: (raw record, a word the dead letter's reason must contain)
BAD_JSONL = {
    "bigint": ('{"text": "Armenia story", "published": "2020-11-10", "n": ' + "7" * 5000 + "}", "digits"),
    "nesting": ("[" * 100_000, "nested too deeply"),
    "utc-overflow": (json.dumps({"text": "Armenia story.", "published": "9999-12-31T23:00:00-05:00"}),
                     "out of range"),
    "broken-json": ('{"text": "Armenia story", "published": ', "invalid JSON"),
    "lone-surrogate": ('{"text": "Armenia \\ud800 story", "published": "2020-11-10"}', "surrogate"),
    "no-text": (json.dumps({"title": "Armenia", "published": "2020-11-10"}), "text is missing"),
    "ancient": (json.dumps({"text": "Armenia story.", "published": "1800-01-01"}), "implausible"),
}
GOOD_DATES = ("Tue, 10 Nov 2020 10:00:00 GMT", "2020-11-10T10:00:00Z")  # (RSS pubDate, Atom updated)
BAD_ITEM = {  # RSS <item> / Atom <entry> pieces: ((RSS date, Atom date), title, text, reason word)
    "utc-overflow-822": (("Fri, 31 Dec 9999 23:00:00 -0500", "9999-12-31T23:00:00-05:00"), "T", "Armenia story.",
                         "out of range"),
    "utc-overflow-iso": (("9999-12-31T23:00:00-05:00", "9999-12-31T23:00:00-05:00"), "T", "Armenia story.",
                         "out of range"),
    "surrogate-ref": (GOOD_DATES, "Bad &#xD800; title", "Armenia story.", "surrogate"),
    "ancient": (("Mon, 01 Jan 1800 10:00:00 GMT", "1800-01-01T10:00:00Z"), "T", "Armenia story.", "implausible"),
}


def _good_text(serial: int, words: list[str]) -> str:
    return f"Dispatch {serial} on Armenia: " + " ".join(words) + f". Filed as report {serial * 7919}."


GOOD = st.lists(st.sampled_from(VOCAB), min_size=25, max_size=40)
RECORD = st.one_of(st.tuples(st.just("good"), GOOD), st.tuples(st.just("bad"), st.integers(0, 1000)))
FILES = st.lists(st.tuples(st.sampled_from(["jsonl", "rss", "atom"]), st.lists(RECORD, min_size=1, max_size=6)),
                 min_size=1, max_size=4)


def _render(fmt: str, records: list, serial: list[int]) -> tuple[bytes, list[tuple[str, str | None]]]:
    """File bytes and, per record in order, (kind, the reason word if bad) ."""
    parts, expect = [], []
    bad_jsonl, bad_item = sorted(BAD_JSONL), sorted(BAD_ITEM)
    for kind, value in records:
        serial[0] += 1
        n = serial[0]
        if kind == "good":
            text, dates, title = _good_text(n, value), GOOD_DATES, f"Report {n}"
            expect.append(("good", None))
        elif fmt == "jsonl":
            line, word = BAD_JSONL[bad_jsonl[value % len(bad_jsonl)]]
            parts.append(line)
            expect.append(("bad", word))
            continue
        else:
            dates, title, text, word = BAD_ITEM[bad_item[value % len(bad_item)]]
            expect.append(("bad", word))
        if fmt == "jsonl":
            parts.append(json.dumps({"title": title, "text": text, "published": "2020-11-10"}))
        elif fmt == "rss":
            parts.append(f"<item><title>{title}</title><description>{text}</description>"
                         f"<pubDate>{dates[0]}</pubDate><guid>urn:r:{n}</guid></item>")
        else:
            parts.append(f"<entry><title>{title}</title><id>urn:a:{n}</id><updated>{dates[1]}</updated>"
                         f"<summary>{text}</summary></entry>")
    if fmt == "jsonl":
        return ("\n".join(parts) + "\n").encode("utf-8"), expect
    if fmt == "rss":
        return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>{"".join(parts)}'
                f"</channel></rss>").encode("utf-8"), expect
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
            f'<id>urn:a</id><updated>2020-11-10T10:00:00Z</updated>{"".join(parts)}</feed>').encode(), expect


def _record_ref(fmt: str, path: Path, i: int, expect: list) -> str:
    if fmt == "jsonl":
        return f"{path}:{i + 1}"  # one line per record, none blank
    return f"{path}#{i}"


_W = VOCAB[:30]
EVERY_KIND = [("jsonl", [("good", _W)] + [("bad", i) for i in range(len(BAD_JSONL))] + [("good", _W[::-1])]),
              ("rss", [("bad", i) for i in range(len(BAD_ITEM))] + [("good", _W[5:])]),
              ("atom", [("good", _W[:-3])] + [("bad", i) for i in range(len(BAD_ITEM))])]


@given(files=FILES)
@example(files=EVERY_KIND)  # every kind of bad record, always tried
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_every_good_record_written_every_bad_one_its_own_dead_letter(files):
    tmp = Path(tempfile.mkdtemp(prefix="newsbeam-prop-"))
    try:
        inp, out = tmp / "in", tmp / "out"
        inp.mkdir()
        serial = [0]
        good_refs, bad_refs = set(), {}
        for k, (fmt, records) in enumerate(files):
            path = inp / f"f{k}.{ {'jsonl': 'jsonl', 'rss': 'xml', 'atom': 'atom'}[fmt]}"
            data, expect = _render(fmt, records, serial)
            path.write_bytes(data)
            for i, (kind, word) in enumerate(expect):
                ref = _record_ref(fmt, path, i, expect)
                if kind == "good":
                    good_refs.add(ref)
                else:
                    bad_refs[ref] = word
        # the models run on the fixed example; the generated ones test parsing and accounting, without models
        models = [] if files == EVERY_KIND else ["--skip-models"]
        proc = run_cli(["run", "--input", str(inp / "*"), "--output", str(out), "--targets", "Armenia", *models])
        # a run in which every record was dead-lettered says so in its exit status
        assert proc.returncode == (EXIT_OK if good_refs else EXIT_NOTHING_WRITTEN), proc.stdout + proc.stderr
        res = read_output(out)
        written = [a["input_ref"] for a in res["articles"]]
        assert sorted(written) == sorted(good_refs)
        assert res["duplicates"] == []
        dead = {}
        for d in res["dead"]:
            assert d["input_ref"] not in dead, f"two dead letters for {d['input_ref']}"
            dead[d["input_ref"]] = d["error"]
        assert set(dead) == set(bad_refs), (dead, bad_refs)
        for ref, word in bad_refs.items():
            assert word in dead[ref], (ref, dead[ref])
        n = len(good_refs) + len(bad_refs)
        assert re.search(rf"read {n}, written {len(good_refs)}, duplicates 0, dead-lettered {len(bad_refs)}\b",
                         proc.stdout), proc.stdout
        assert "every record accounted for" in proc.stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
