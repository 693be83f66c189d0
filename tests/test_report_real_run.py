"""`newsbeam report` over what `newsbeam run --skip-models` really writes: a clean run raises no alarm and names
no file the layout no longer has, sources are publishers (not seed file names), dead letters are listed with the
reasons the run gave them, and every table's CSV download holds its rows."""
from __future__ import annotations

import base64
import csv
import io
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, read_output, run_cli
from tests.test_report import _rows, check_self_contained, parse_tables

SEEDS = ["seeds/*.txt", "seeds/*.jsonl", "seeds/*.xml"]


def _run_and_report(inputs: list[str], out: Path, html: Path) -> dict:
    proc = run_cli(["run", "--input", *inputs, "--output", str(out), "--skip-models", "--format", "both"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_cli(["report", "--output", str(out), "--html", str(html)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = html.read_text(encoding="utf-8")
    check_self_contained(page)
    return {"page": page, "tables": parse_tables(page), "report_stderr": proc.stderr, **read_output(out)}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clean")
    return _run_and_report(SEEDS, tmp / "out", tmp / "report.html")


@pytest.fixture(scope="module")
def with_dead_letters(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dirty")
    inputs = tmp / "in"
    inputs.mkdir()
    shutil.copy(ROOT / "seeds" / "de_lockdown.txt", inputs)
    (inputs / "empty.txt").write_bytes(b"")
    (inputs / "latin1.txt").write_bytes("date 2020-12-01\ntitle Caf\xe9\nUne caf\xe9 ferm\xe9e.\n".encode("latin-1"))
    return _run_and_report([str(inputs)], tmp / "out", tmp / "report.html")


def test_a_clean_run_raises_no_alarm_and_names_no_gone_file(clean):
    assert clean["dead"] == [] and clean["articles"]
    page = clean["page"]
    assert "Problems while reading the output" not in page and "warning:" not in clean["report_stderr"]
    assert "dead_letter.jsonl" not in page and "duplicates.jsonl" not in page
    assert _rows(clean["tables"], "dead-letters") == []
    assert "No dead letters: every record read was written or found a duplicate" in page


def test_sources_are_publishers_not_seed_files(clean):
    t = clean["tables"]
    sources = {r[0]: int(r[1]) for r in _rows(t, "articles-per-source")}
    seed_files = {p.name for p in (ROOT / "seeds").iterdir()}
    assert not set(sources) & seed_files, sources
    assert sum(sources.values()) == len(clean["articles"])
    # the feed's title and the sources the inputs named are kept; the rest say they have no known publisher
    named = {a["source"] for a in clean["articles"] if a["source"] not in seed_files}
    assert named and named <= set(sources)
    unnamed = [a for a in clean["articles"] if a["source"] in seed_files and not a.get("url")]
    assert sources.get("(publisher not known)", 0) == len(unnamed)
    totals = {r[0]: r[1] for r in _rows(t, "totals")}
    assert int(totals["sources"]) == len(sources) < len({a["input_ref"].split("#")[0] for a in clean["articles"]})
    dup_sources = {r[0] for r in _rows(t, "duplicates-per-source")}
    assert dup_sources and not dup_sources & seed_files


def _csv(page: str, table_id: str) -> list[list[str]]:
    m = re.search(rf'id="{table_id}-csv" download="{table_id}.csv" href="data:text/csv;charset=utf-8;base64,'
                  r'([^"]+)"', page)
    assert m, table_id
    return list(csv.reader(io.StringIO(base64.b64decode(m.group(1)).decode("utf-8-sig"))))


def test_every_table_of_a_real_report_downloads_as_csv(clean):
    page, t = clean["page"], clean["tables"]
    ids = re.findall(r'<table id="([^"]+)"', page)
    assert {"articles-per-source", "dead-letters", "totals", "drill-articles", "drill-duplicates"} <= set(ids)
    for table_id in ids:
        rows = _csv(page, table_id)
        assert [rows[0]] == t[(table_id, "head")] and len(rows) - 1 == len(_rows(t, table_id)), table_id
    articles = _csv(page, "drill-articles")
    link = articles[0].index("link")
    assert {r[link] for r in articles[1:] if r[link]} == {a["url"] for a in clean["articles"] if a.get("url")}


def test_dead_letters_are_listed_with_the_reasons_the_run_gave(with_dead_letters):
    dead = with_dead_letters["dead"]
    assert len(dead) == 2 and with_dead_letters["articles"]
    rows = _rows(with_dead_letters["tables"], "dead-letters")
    assert sorted((r[0], r[1], r[2]) for r in rows) == sorted(
        (d["stage"], d["input_ref"], " ".join(d["error"].split())) for d in dead)
    assert {r[1].rsplit("/", 1)[-1] for r in rows} == {"empty.txt", "latin1.txt"}
    assert "Problems while reading the output" not in with_dead_letters["page"]
