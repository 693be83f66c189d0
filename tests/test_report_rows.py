"""The report's row helpers (pipeline.report_rows): who published a record, the dead-letter list, and the CSV of a
table; pure functions over record dicts, no Beam."""
from __future__ import annotations

import base64
import csv
import io

from pipeline.report_rows import (NO_PUBLISHER, csv_cell, csv_data_uri, dead_letter_rows, publisher, table_csv,
                                  url_host)


def test_the_publisher_is_never_the_file_an_article_was_read_from():
    assert publisher({"source": "Reuters", "input_ref": "in/a.txt"}) == "Reuters"
    assert publisher({"source": "Newsbeam sample feed", "input_ref": "seeds/feed_sample.xml#1"}) == \
        "Newsbeam sample feed"  # a feed title
    assert publisher({"source": "a.txt", "input_ref": "seeds/a.txt"}) == NO_PUBLISHER  # the parser's fallback
    assert publisher({"source": "b.jsonl", "input_ref": "seeds/b.jsonl:3",
                      "url": "https://www.example.org/x"}) == "example.org"  # the URL's host instead
    assert publisher({"site_name": "Le Monde", "source": "lm.html", "input_ref": "p/lm.html"}) == "Le Monde"
    assert url_host("ftp://example.org/x") is None and url_host(None) is None


def test_dead_letters_keep_their_reason_in_stage_order():
    rows = dead_letter_rows([
        {"stage": "parse", "input_ref": "in/z.txt", "error": "empty file"},
        {"stage": "ner", "input_ref": "in/a.txt", "error": "RuntimeError:\n  boom", "id": "ab" * 12,
         "excerpt": "x" * 500},
        {"input_ref": "in/b.txt", "error": "?"},
    ])
    assert [r[:4] for r in rows] == [["?", "in/b.txt", "?", None], ["ner", "in/a.txt", "RuntimeError: boom", "ab" * 12],
                                     ["parse", "in/z.txt", "empty file", None]]
    assert len(rows[1][4]) == 120 and rows[1][4].endswith("…")


def test_csv_cells_are_what_a_spreadsheet_should_read():
    assert csv_cell(None) == "" and csv_cell(3) == "3" and csv_cell(0.70000001) == "0.7" and csv_cell(-0.25) == "-0.25"
    assert csv_cell({"text": "https://a.org/x", "url": "https://a.org/x"}) == "https://a.org/x"
    assert csv_cell({"sentences": ["One.", "Two."]}) == "One. | Two."
    assert csv_cell("=HYPERLINK(\"http://evil\")") == "'=HYPERLINK(\"http://evil\")"  # not run as a formula
    assert csv_cell("-3") == "-3" and csv_cell("@home") == "'@home"


def test_a_table_round_trips_through_its_csv_data_uri():
    columns, rows = ["source", "articles"], [["Wire, A", 2], ["Агентство \"Б\"", 1]]
    assert list(csv.reader(io.StringIO(table_csv(columns, rows)))) == [["source", "articles"], ["Wire, A", "2"],
                                                                      ["Агентство \"Б\"", "1"]]
    uri = csv_data_uri(columns, rows)
    prefix = "data:text/csv;charset=utf-8;base64,"
    assert uri.startswith(prefix)
    text = base64.b64decode(uri[len(prefix):]).decode("utf-8")
    assert text.startswith("\ufeffsource,articles\r\n") and text == "\ufeff" + table_csv(columns, rows)
