"""A day's JSONL and Parquet never disagree: a day rewritten in one format rewrites its file in every other format
the day already has (pipeline.sinks.day_formats), through backfill and run, in each format order."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.parquet_sink import read_parquet_records
from pipeline.sinks import day_formats
from tests.conftest import read_jsonl, run_cli

DAY = "2020-12-13"


def _day(out: Path) -> tuple[list[dict], list[dict]]:
    """The day's JSONL and Parquet articles, every shard, in shard order; each shard's two files agree."""
    part = out / f"dt={DAY}"
    jsonl = [r for f in sorted(part.glob("articles-*.jsonl")) for r in read_jsonl(f)]
    parquet = [r for f in sorted(part.glob("articles-*.parquet")) for r in read_parquet_records(str(f))]
    for f in sorted(part.glob("articles-*.jsonl")):
        assert read_parquet_records(str(f.with_suffix(".parquet"))) == read_jsonl(f) or not parquet, f
    return jsonl, parquet


def _targets(records: list[dict]) -> set[str]:
    return {s["target"] for r in records for s in r["stance"]}


def test_day_formats_are_the_asked_and_the_present():
    assert day_formats(("jsonl",), False, False) == ("jsonl",)
    assert day_formats(("jsonl",), True, True) == ("jsonl", "parquet")
    assert day_formats(("parquet",), True, False) == ("jsonl", "parquet")
    assert day_formats(("jsonl", "parquet"), False, False) == ("jsonl", "parquet")


def test_a_jsonl_backfill_rewrites_the_days_parquet(tmp_path):
    out = tmp_path / "out"
    first = run_cli(["run", "--input", "seeds/*.txt", "--output", str(out), "--targets", "Armenia", "--format", "both",
                     "--skip-models"])
    assert first.returncode == 0, first.stderr
    jsonl, parquet = _day(out)
    assert jsonl and _targets(parquet) == {"Armenia"}
    again = run_cli(["backfill", "--since", DAY, "--until", DAY, "--input", "seeds/*.txt", "--output", str(out),
                     "--targets", "Russia", "--format", "jsonl", "--skip-models"])
    assert again.returncode == 0, again.stderr
    jsonl, parquet = _day(out)
    assert _targets(jsonl) == _targets(parquet) == {"Russia"}
    assert parquet == jsonl


@pytest.mark.parametrize("first_format, second_format", [("jsonl", "parquet"), ("parquet", "jsonl")])
def test_a_run_in_one_format_keeps_the_other_formats_file_current(tmp_path, first_format, second_format):
    out = tmp_path / "out"
    first = run_cli(["run", "--input", "seeds/sample_article.txt", "--output", str(out), "--format", first_format,
                     "--skip-models"])
    assert first.returncode == 0, first.stderr
    second = run_cli(["run", "--input", "seeds/de_lockdown.txt", "--output", str(out), "--format", second_format,
                      "--skip-models"])  # the same published day
    assert second.returncode == 0, second.stderr
    jsonl, parquet = _day(out)
    assert parquet == jsonl and len(jsonl) == 2  # the first run's article kept in both
