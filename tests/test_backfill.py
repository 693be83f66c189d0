"""Backfills on real dates (Reuters-21578, 1987): a range twice gives identical bytes; an overlapping range
rewrites only its own days; the date filter runs before the models and is accounted for."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture(scope="module")
def reuters_jsonl(tmp_path_factory, shared_data):
    """Every 12th Reuters story of 1 March - 10 April 1987 as JSONL (about 120 stories over ~35 days)."""
    from modeling.corpora import reuters_articles

    out = tmp_path_factory.mktemp("reuters") / "reuters.jsonl"
    rows = []
    for a in reuters_articles():
        day = time.strftime("%Y-%m-%d", time.strptime(a["date"].split()[0], "%d-%b-%Y"))
        if "1987-03-01" <= day <= "1987-04-10":
            rows.append({"title": a["title"], "text": a["body"], "published": day,
                         "url": f"reuters21578://{a['id']}"})
    with open(out, "w") as fh:
        for row in rows[::12]:
            fh.write(json.dumps(row) + "\n")
    return out


def _partitions(out: Path) -> dict[str, tuple[bytes, int]]:
    return {p.parent.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.glob("dt=*/articles-*.jsonl"))}


def _backfill(inp: Path, out: Path, since: str, until: str):
    proc = run_cli(["backfill", "--since", since, "--until", until, "--input", str(inp), "--output", str(out),
                    "--targets", "U.S.", "Japan"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_backfill_is_idempotent_and_overlaps_rewrite_only_their_days(reuters_jsonl, tmp_path):
    out = tmp_path / "out"
    first = _backfill(reuters_jsonl, out, "1987-03-01", "1987-03-31")
    assert "out-of-range" in first.stdout and "every record accounted for" in first.stdout
    march = _partitions(out)
    assert march and all("1987-03-01" <= k[3:] <= "1987-03-31" for k in march)
    time.sleep(0.05)
    _backfill(reuters_jsonl, out, "1987-03-01", "1987-03-31")
    again = _partitions(out)
    assert {k: v[0] for k, v in again.items()} == {k: v[0] for k, v in march.items()}  # byte-identical
    _backfill(reuters_jsonl, out, "1987-03-20", "1987-04-10")
    after = _partitions(out)
    for day, (data, mtime) in again.items():
        assert after[day][0] == data
        if day < "dt=1987-03-20":
            assert after[day][1] == mtime, f"{day} is outside the second range and must not be rewritten"
    assert any(k >= "dt=1987-04-01" for k in after)
    ranges = sorted(p.name for p in (out / "_backfill").iterdir())
    assert ranges == ["1987-03-01_1987-03-31", "1987-03-20_1987-04-10"]


def test_dry_run_lists_days_and_counts(reuters_jsonl):
    proc = run_cli(["backfill", "--since", "1987-03-01", "--until", "1987-03-10", "--input", str(reuters_jsonl),
                    "--output", "/nonexistent/never-written", "--dry-run"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("backfill 1987-03-01 .. 1987-03-10:")
    assert any(line.strip().startswith("1987-03-0") for line in lines[1:])
    assert not Path("/nonexistent/never-written").exists()


def test_inverted_range_is_a_clear_error(reuters_jsonl):
    proc = run_cli(["backfill", "--since", "1987-04-01", "--until", "1987-03-01", "--input", str(reuters_jsonl),
                    "--output", "/tmp/x"])
    assert proc.returncode == 2 and "is after" in proc.stderr
