"""Backfills on real dates (Reuters-21578, 1987): a range twice gives identical bytes; an overlapping range
rewrites only its own days; the date filter runs before the models and is accounted for."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import read_side, run_cli


@pytest.fixture(scope="module")
def reuters_jsonl(tmp_path_factory, shared_data):
    """About 120 Reuters stories of 1 March - 10 April 1987 (an even sample over ~35 days) as JSONL.

    The range holds ~14,000 stories; every 12th (1,165) made each backfill run NER on ~900 articles, over the
    subprocess timeout on a busy 2-core machine. ~90 March articles keep the three backfills to minutes."""
    from modeling.training.corpora import reuters_articles

    out = tmp_path_factory.mktemp("reuters") / "reuters.jsonl"
    rows = []
    for a in reuters_articles():
        day = time.strftime("%Y-%m-%d", time.strptime(a["date"].split()[0], "%d-%b-%Y"))
        if "1987-03-01" <= day <= "1987-04-10":
            rows.append({"title": a["title"], "text": a["body"], "published": day,
                         "url": f"reuters21578://{a['id']}"})
    with open(out, "w") as fh:
        for row in rows[::max(1, len(rows) // 120)]:
            fh.write(json.dumps(row) + "\n")
    return out


def _partitions(out: Path) -> dict[str, tuple[bytes, int]]:
    """`dt=DAY/articles-SSSSS-of-NNNNN.jsonl` -> (bytes, mtime) of every shard of every day."""
    return {str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(out.glob("dt=*/articles-*.jsonl"))}


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


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
    assert march and all("1987-03-01" <= k[3:13] <= "1987-03-31" for k in march)
    side = out / "_backfill" / "1987-03-01_1987-03-31"
    march_side, march_index = _files(side), _files(out / "_state")
    assert march_index, "the backfill must extend the cross-run dedup index"
    time.sleep(0.05)
    _backfill(reuters_jsonl, out, "1987-03-01", "1987-03-31")
    again = _partitions(out)
    assert {k: v[0] for k, v in again.items()} == {k: v[0] for k, v in march.items()}  # byte-identical
    # the rerun finds its own articles in the index: same decisions, no new duplicates, nothing added to the index
    assert _files(side) == march_side
    assert _files(out / "_state") == march_index

    # A reprint (new url, same title and text) of a March article, dated inside the second range: the index
    # holds the March original, so the reprint is a duplicate of it and is not written again.
    written = {a["url"]: a["id"] for shard in march for a in _jsonl(out / shard)}
    original = next(r for r in _jsonl(reuters_jsonl) if r["url"] in written and r["published"] < "1987-03-20")
    reprint = tmp_path / "reprint.jsonl"
    reprint.write_text(json.dumps(dict(original, published="1987-04-07", url=original["url"] + "-reprint")) + "\n")
    proc = run_cli(["backfill", "--since", "1987-03-20", "--until", "1987-04-10", "--input", str(reuters_jsonl),
                    str(reprint), "--output", str(out), "--targets", "U.S.", "Japan"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = _partitions(out)
    dups = read_side(out / "_backfill" / "1987-03-20_1987-04-10", "duplicates")
    reprinted = [d for d in dups if d["duplicate_of"] == written[original["url"]]]
    assert len(reprinted) == 1 and reprinted[0]["kind"] == "exact", dups
    all_ids = {a["id"] for shard in after for a in _jsonl(out / shard)}
    assert reprinted[0]["id"] not in all_ids and written[original["url"]] in all_ids
    for shard, (data, mtime) in again.items():
        assert after[shard][0] == data
        if shard < "dt=1987-03-20":
            assert after[shard][1] == mtime, f"{shard} is outside the second range and must not be rewritten"
    assert any(k >= "dt=1987-04-01" for k in after)
    ranges = sorted(p.name for p in (out / "_backfill").iterdir())
    assert ranges == ["1987-03-01_1987-03-31", "1987-03-20_1987-04-10"]

    # `newsbeam report` over a root written only by backfills: every day, and both ranges' side files
    from pipeline.layout import once_each
    from pipeline.report_input import read_output as report_input

    seen = report_input(str(out))
    assert sorted(a["id"] for a in seen.articles) == sorted(all_ids)
    for kind, records in (("duplicates", seen.duplicates), ("dead_letter", seen.dead)):
        expected = list(once_each(r for name in ranges for r in read_side(out / "_backfill" / name, kind)))
        assert sorted(map(json.dumps, records)) == sorted(map(json.dumps, expected)), kind
    assert reprinted[0]["id"] in {d["id"] for d in seen.duplicates}


def test_dry_run_lists_days_and_counts(reuters_jsonl):
    proc = run_cli(["backfill", "--since", "1987-03-01", "--until", "1987-03-10", "--input", str(reuters_jsonl),
                    "--output", "/nonexistent/never-written", "--dry-run"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("backfill 1987-03-01 .. 1987-03-10:")
    expected: dict[str, int] = {}
    for row in _jsonl(reuters_jsonl):
        key = row["published"] if "1987-03-01" <= row["published"] <= "1987-03-10" else "(out of range)"
        expected[key] = expected.get(key, 0) + 1
    listed = dict(line.strip().rsplit("  ", 1) for line in lines[1:])
    assert {k: int(v) for k, v in listed.items()} == expected  # every day with its input count, and the rest
    days = sorted(k for k in expected if not k.startswith("("))
    assert lines[0] == (f"backfill 1987-03-01 .. 1987-03-10: {len(days)} days with articles, "
                        f"{sum(expected[d] for d in days)} articles")
    assert not Path("/nonexistent/never-written").exists()


def test_inverted_range_is_a_clear_error(reuters_jsonl):
    proc = run_cli(["backfill", "--since", "1987-04-01", "--until", "1987-03-01", "--input", str(reuters_jsonl),
                    "--output", "/tmp/x"])
    assert proc.returncode == 2 and "is after" in proc.stderr


def test_dry_run_refuses_an_input_that_matches_nothing(tmp_path):
    proc = run_cli(["backfill", "--since", "1987-03-01", "--until", "1987-03-10", "--input",
                    str(tmp_path / "missing-*.jsonl"), "--output", str(tmp_path / "out"), "--dry-run"])
    assert proc.returncode == 2 and "--input matches no file" in proc.stderr, proc.stdout + proc.stderr
