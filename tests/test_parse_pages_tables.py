"""Saved HTML pages and CSV/TSV tables as inputs: the pure parsers (no Beam), then one `newsbeam run
--skip-models` over a folder holding a page, a CSV and a TSV, where every record is written or dead-lettered
with its reason."""
from __future__ import annotations

import pytest

from tests.conftest import read_output, run_cli
from transforms.page_input import page_text, parse_page, split_authors
from transforms.parse import ParseError, ParseLimits, detect_format, parse_raw
from transforms.table_input import parse_csv_columns, split_list, table_records

BODY = "<p>" + "Armenia and Azerbaijan signed a ceasefire in Moscow after six weeks of fighting. " * 4 + "</p>"
PAGE = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Ceasefire signed - Example Times</title>
<meta property="og:site_name" content="Example Times"><meta name="author" content="Jane Doe; John Roe">
<link rel="canonical" href="https://example.org/news/ceasefire">
<meta property="article:published_time" content="2020-11-10T08:00:00Z"></head>
<body><nav><a href="/">Home</a> | <a href="/world">World</a></nav>
<article><h1>Ceasefire signed</h1>{BODY}<p>Résumé: Łukasz Żółć reported from Baku.</p></article>
<footer>Contact us</footer></body></html>"""
UNDATED = f"<html><head><title>Undated</title></head><body><article>{BODY}</article></body></html>"


def records(data: bytes, ref: str, limits: ParseLimits = ParseLimits()) -> dict[str, dict | ParseError]:
    return dict(parse_raw({"ref": ref, "data": data}, limits))


# ------------------------------------------------------------------ pages
def test_a_page_becomes_one_article_with_its_metadata_and_main_text_only():
    a = parse_page(PAGE.encode(), "in/page.html", "page.html")
    assert (a["title"], a["published"], a["url"]) == ("Ceasefire signed", "2020-11-10",
                                                      "https://example.org/news/ceasefire")
    assert a["authors"] == ["Jane Doe", "John Roe"] and a["site_name"] == "Example Times"
    assert a["source"] == "Example Times"  # the publisher, not the file name
    assert "Łukasz Żółć" in a["text"] and "six weeks of fighting" in a["text"]
    assert "Home" not in a["text"] and "Contact us" not in a["text"]  # navigation and footer dropped


def test_a_page_in_a_declared_charset_or_utf16_is_read_and_undecodable_bytes_are_refused():
    latin = PAGE.replace('charset="utf-8"', 'charset="iso-8859-2"').encode("iso-8859-2")
    assert "Łukasz Żółć" in parse_page(latin, "p.html", "p.html")["text"]
    assert "Łukasz Żółć" in parse_page(PAGE.encode("utf-16"), "p.html", "p.html")["text"]
    with pytest.raises(ParseError, match=r"not valid UTF-8 \(byte 0xe9 .*no <meta charset>"):
        page_text(PAGE.replace('<meta charset="utf-8">', "").encode("iso-8859-2"))
    with pytest.raises(ParseError, match="binary content"):
        page_text(b"<html>\x00\x01\x02</html>")


def test_a_page_without_a_date_or_without_text_is_a_dead_letter_saying_which():
    with pytest.raises(ParseError, match="missing published date: the page declares none"):
        parse_page(UNDATED.encode(), "u.html", "u.html")
    shell = b"<html><head><meta name='date' content='2020-11-10'><script>app()</script></head><body></body></html>"
    with pytest.raises(ParseError, match="no main text could be extracted"):
        parse_page(shell, "s.html", "s.html")


def test_a_page_without_a_site_name_is_named_by_its_canonical_host_or_else_its_file():
    page = PAGE.replace('<meta property="og:site_name" content="Example Times">', "")
    assert parse_page(page.encode(), "p.html", "p.html")["source"] == "example.org"
    bare = page.replace('<link rel="canonical" href="https://example.org/news/ceasefire">', "")
    a = parse_page(bare.encode(), "p.html", "p.html")
    assert a["source"] == "p.html" and "site_name" not in a and a["url"] is None


def test_split_authors():
    assert split_authors("Jane Doe; John Roe") == ["Jane Doe", "John Roe"]
    assert split_authors("  ") is None and split_authors(None) is None


# ------------------------------------------------------------------ tables
TABLE = (b"title,text,published,url,source,targets,authors\n"
         b'One,"Armenia said, on\ntwo lines.",2020-11-10,https://ex.org/1,Wire,Armenia;Azerbaijan|Russia,Ann Lee\n'
         b"\n"
         b"Two,,2020-11-11,,,,\n"
         b"Three,Body three.,2020-02-31,,,,\n"
         b"Four,Body four.,2020-11-12,,,,,extra\n"
         b"Five,Body five.,2020-11-12T08:00:00+02:00,,,,\n")


def test_each_row_is_a_record_and_each_bad_row_its_own_dead_letter_at_its_line():
    got = records(TABLE, "in/t.csv")
    assert list(got) == ["in/t.csv:2", "in/t.csv:5", "in/t.csv:6", "in/t.csv:7", "in/t.csv:8"]
    one = got["in/t.csv:2"]
    assert one["text"] == "Armenia said, on\ntwo lines." and one["input_ref"] == "in/t.csv:2"
    assert (one["source"], one["url"], one["authors"]) == ("Wire", "https://ex.org/1", ["Ann Lee"])
    assert one["targets"] == ["Armenia", "Azerbaijan", "Russia"]
    assert str(got["in/t.csv:5"]) == "empty text"
    assert str(got["in/t.csv:6"]) == "unparseable date '2020-02-31'"
    assert str(got["in/t.csv:7"]).startswith("the row has 8 fields, the header 7")
    five = got["in/t.csv:8"]
    assert five["published_at"] == "2020-11-12T06:00:00+00:00" and five["source"] == "t.csv"
    assert "targets" not in five and "authors" not in five  # empty cells: the configured targets apply


def test_csv_columns_name_the_columns_and_a_missing_column_fails_the_file_with_the_fix():
    tsv = "Body\tDate\tHeadline\nHello from Baku.\t2020-11-10\tHi\n".encode()
    limits = ParseLimits(csv_columns=parse_csv_columns("text=body,published=date,title=Headline"))
    (a,) = records(tsv, "t.tsv", limits).values()
    assert (a["text"], a["published"], a["title"]) == ("Hello from Baku.", "2020-11-10", "Hi")
    (err,) = records(tsv, "t.tsv").values()
    assert str(err) == ("no 'text' column for text in the header (name it with --csv-columns text=COLUMN); the "
                        "header has 'Body', 'Date', 'Headline'")
    (err,) = records(b"text,published\nx,2020-11-10\n", "t.csv", limits).values()
    assert str(err).startswith("no 'body' column for text in the header (--csv-columns names it)")


def test_csv_columns_spec_errors_name_what_is_wrong():
    assert parse_csv_columns("text=body, published=date") == (("text", "body"), ("published", "date"))
    assert parse_csv_columns(None) == ()
    for spec, message in (("text", "not FIELD=COLUMN"), ("body=text", "unknown field 'body'"),
                          ("text=a,text=b", "named twice")):
        with pytest.raises(ValueError, match=message):
            parse_csv_columns(spec)


def test_a_table_with_no_rows_bad_bytes_or_an_ambiguous_header_is_one_dead_letter():
    assert {k: str(v) for k, v in records(b"text,published\n\n", "e.csv").items()} == {
        "e.csv": "no rows under the header"}
    assert str(records(b"text,published\n\xe9t\xe9,2020-11-10\n", "b.csv")["b.csv"]).startswith("not valid UTF-8")
    dup = records(b"text,text,published\na,b,2020-11-10\n", "d.csv")["d.csv"]
    assert str(dup) == "the header names column 'text' twice; which one is text is ambiguous"


def test_a_cell_as_long_as_max_chars_allows_is_read():
    long = "word " * 40_000  # 200,000 characters: over csv's default 131,072 cap, within --max-chars
    (a,) = list(table_records(f"text,published\n{long},2020-11-10\n".encode(), "l.csv", "l.csv", None,
                              ParseLimits()))
    assert isinstance(a[1], dict) and len(a[1]["text"]) == len(long.strip())


def test_split_list_and_format_detection():
    assert split_list("A; B|C ") == ["A", "B", "C"] and split_list(" ") is None
    assert [detect_format(r, b"x") for r in ("a.html", "a.HTM", "a.csv", "a.tsv.gz", "a.txt")] == [
        "page", "page", "csv", "tsv", "seed"]
    # no telling name: the content decides (a saved page named "article" or a URL path is a page, not a feed)
    assert [detect_format("article", d) for d in (b"\n<!DOCTYPE html><html>", b"<?xml version='1.0'?><rss>",
                                                  b'{"text": 1}', b"date 2020-01-01")] == [
        "page", "feed", "jsonl", "seed"]
    (saved,) = parse_raw({"ref": "saved/article", "data": PAGE.encode()})
    assert isinstance(saved[1], dict) and saved[1]["title"]
    # a feed fetched from a URL ending in .html is still read as a feed
    fetched = dict(parse_raw({"ref": "https://ex.org/feed.html", "data": b"<rss><channel></channel></rss>",
                              "max_entries": 5}))
    assert str(fetched["https://ex.org/feed.html"]).startswith("no entries could be read from the feed")


# ------------------------------------------------------------------ through the CLI
def test_run_over_a_page_a_csv_and_a_tsv_accounts_for_every_record(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    (inp / "page.html").write_text(PAGE, encoding="utf-8")
    (inp / "undated.htm").write_text(UNDATED, encoding="utf-8")
    (inp / "data.csv").write_bytes(b"body,date,targets\n"
                                   b"Armenia and Azerbaijan agreed to a ceasefire.,2020-11-10,Armenia|Azerbaijan\n"
                                   b"A row without a date.,,\n")
    (inp / "data.tsv").write_bytes(b"date\tbody\n2020-11-11\tRussian peacekeepers arrived in Stepanakert.\n")
    (inp / "plain.csv").write_bytes(b"text,published\nNamed as the fields.,2020-11-12\n")
    proc = run_cli(["run", "--input", str(inp), "--output", str(out), "--skip-models", "--format", "both",
                    "--csv-columns", "text=body,published=date", "--targets", "Armenia"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "read 6, written 3, duplicates 0, dead-lettered 3" in proc.stdout, proc.stdout
    got = read_output(out)
    written = {a["input_ref"].rsplit("/", 1)[-1]: a for a in got["articles"]}
    assert set(written) == {"page.html", "data.csv:2", "data.tsv:2"}
    assert written["page.html"]["authors"] == ["Jane Doe", "John Roe"]
    assert written["page.html"]["site_name"] == "Example Times"
    assert written["data.csv:2"]["targets"] == ["Armenia", "Azerbaijan"]
    dead = {d["input_ref"].rsplit("/", 1)[-1]: d["error"] for d in got["dead"]}
    assert dead == {"undated.htm": "missing published date: the page declares none (no date in its meta tags, "
                                   "JSON-LD, <time> or byline)",
                    "data.csv:3": "missing published date",
                    "plain.csv": "no 'body' column for text in the header (--csv-columns names it); the header "
                                 "has 'text', 'published'"}
    import newsbeam

    df = newsbeam.read_output(str(out))
    page = df[df["input_ref"].str.endswith("page.html")].iloc[0]
    assert page["authors"] == ["Jane Doe", "John Roe"] and page["site_name"] == "Example Times"
    import pyarrow.parquet as pq

    table = [r for shard in sorted(out.glob("dt=2020-11-10/*.parquet")) for r in pq.read_table(shard).to_pylist()]
    assert {r["input_ref"].rsplit("/", 1)[-1]: (r["authors"], r["site_name"]) for r in table} == {
        "page.html": (["Jane Doe", "John Roe"], "Example Times"), "data.csv:2": (None, None)}
