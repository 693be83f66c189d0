"""A published day's articles in shards by a hash of the id (pipeline.layout, pipeline.day_shards), on real files
through WriteArticles in a TestPipeline: ids land in a fixed shard, only shards with lines have a file, reruns are
byte-identical, a day of the older single-file layout is migrated when it is rewritten, backfill ownership is kept
per shard, and every shard's Parquet agrees with its JSONL."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import apache_beam as beam

from pipeline.layout import ARTICLE_SHARDS, article_shard, parse_article_shard
from pipeline.parquet_sink import read_parquet_records, write_parquet_file
from pipeline.sinks import WriteArticles, to_json_line, validated
from tests.conftest import ROOT, beam_pipeline, read_jsonl
from transforms.backfill_owned import day_owned_files, legacy_owned_file, read_owned
from transforms.files import write_atomically

DAY = "2020-11-27"
BOTH = ("jsonl", "parquet")


def _article(name: str, day: str = DAY, title: str | None = None) -> dict:
    """A valid article (schemas.Article) whose id is a hash-like string of its name."""
    import hashlib

    return {"id": hashlib.sha256(name.encode()).hexdigest()[:24], "source": "Wire", "title": title or name,
            "text": f"{name} said Moscow.", "published": day, "input_ref": f"{name}.txt"}


def _write(out: Path, articles: list[dict], merge: bool = True, formats=("jsonl",), date_range=None) -> None:
    with beam_pipeline() as p:
        (p | beam.Create(articles)
         | WriteArticles(str(out), merge=merge, formats=tuple(formats), date_range=date_range))


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _day_ids(out: Path, day: str = DAY, ext: str = "jsonl") -> list[str]:
    files = sorted((out / f"dt={day}").glob(f"articles-*.{ext}"))
    rows = [r for f in files for r in (read_jsonl(f) if ext == "jsonl" else read_parquet_records(str(f)))]
    return sorted(r["id"] for r in rows)


def _assert_shards_hold_their_ids(out: Path, day: str = DAY) -> None:
    """Every file of the day is a shard of this layout holding only (and some of) its own ids, sorted; each
    shard's Parquet, if any, has exactly its JSONL's records."""
    for f in sorted((out / f"dt={day}").glob("articles-*")):
        shard, shards, ext = parse_article_shard(f.name)
        assert shards == ARTICLE_SHARDS, f
        rows = read_jsonl(f) if ext == "jsonl" else read_parquet_records(str(f))
        ids = [r["id"] for r in rows]
        assert ids and ids == sorted(ids) and {article_shard(i) for i in ids} == {shard}, f
        if ext == "jsonl" and f.with_suffix(".parquet").exists():
            assert read_parquet_records(str(f.with_suffix(".parquet"))) == rows, f


def test_an_ids_shard_is_pinned_and_ids_spread_over_every_shard():
    """The shard is a hash of the id (not Python's salted hash()): the same in another process, pinned here so a
    change to it (which would keep an id twice, in its old and its new shard) fails loudly."""
    ids = [f"{i:024x}" for i in range(2000)]
    shards = [article_shard(i) for i in ids]
    assert set(shards) == set(range(ARTICLE_SHARDS))
    assert max(shards.count(s) for s in set(shards)) < 3 * len(ids) / ARTICLE_SHARDS  # no shard takes a day
    code = "from pipeline.layout import article_shard; print([article_shard(f'{i:024x}') for i in range(2000)])"
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PYTHONPATH": str(ROOT)})
    assert json.loads(other.stdout) == shards
    assert [article_shard(i) for i in ("0" * 24, "f" * 24, "5fa1c2d3e4b5a6978889aabb")] == [26, 0, 31]


def test_a_day_is_written_in_the_shards_its_ids_fall_in_and_a_rerun_is_byte_identical(tmp_path):
    out = tmp_path / "out"
    articles = [_article(f"a{i}") for i in range(40)] + [_article("other-day", "2020-11-28")]
    _write(out, articles, formats=BOTH)
    names = {f.name for f in (out / f"dt={DAY}").glob("articles-*.jsonl")}
    expected = {f"articles-{s:05d}-of-{ARTICLE_SHARDS:05d}.jsonl" for s in {article_shard(a["id"])
                                                                            for a in articles[:40]}}
    assert names == expected and 1 < len(names) < ARTICLE_SHARDS  # no file for a shard without a line
    assert len(list((out / "dt=2020-11-28").glob("articles-*"))) == 2  # one article: one shard, both formats
    _assert_shards_hold_their_ids(out)
    assert _day_ids(out) == _day_ids(out, ext="parquet") == sorted(a["id"] for a in articles[:40])
    first = _files(out)
    _write(out, list(reversed(articles)), formats=BOTH)  # a rerun, the input in another order
    assert _files(out) == first
    _write(out, articles[:3], merge=False, formats=BOTH, date_range=(DAY, "2020-11-28"))  # backfill, twice
    backfilled = _files(out)
    _write(out, articles[:3], merge=False, formats=BOTH, date_range=(DAY, "2020-11-28"))
    assert _files(out) == backfilled


def test_a_run_adds_to_its_shards_and_merges_by_id_within_them(tmp_path):
    out = tmp_path / "out"
    first = [_article(f"a{i}") for i in range(12)]
    _write(out, first)
    before = _files(out)
    updated = dict(first[0], title="updated")
    _write(out, [updated, _article("new")])
    changed = {name for name in _files(out) if _files(out).get(name) != before.get(name)}
    assert len(changed) <= 2  # the shards of the two ids; every other shard left as it was
    rows = {r["id"]: r for f in (out / f"dt={DAY}").glob("articles-*.jsonl") for r in read_jsonl(f)}
    assert len(rows) == 13 and rows[updated["id"]]["title"] == "updated"
    _assert_shards_hold_their_ids(out)


def _single_file_day(out: Path, articles: list[dict], formats=BOTH, day: str = DAY) -> None:
    """A day as written before days were sharded: `articles-00000-of-00001.*`, validated lines sorted by id."""
    records = sorted((validated("articles", r)[0] for r in articles), key=lambda r: r["id"])
    if "jsonl" in formats:
        write_atomically(str(out / f"dt={day}" / "articles-00000-of-00001.jsonl"), [to_json_line(r) for r in records])
    if "parquet" in formats:
        write_parquet_file(str(out / f"dt={day}" / "articles-00000-of-00001.parquet"), records)


def test_a_day_of_the_single_file_layout_is_read_and_migrated_when_rewritten(tmp_path):
    """Readers read a single-file day as it is; a run that writes that day moves each line into its shard (this
    run's version of an id winning), in both formats the day had, and removes the single file. A day the run does
    not write is left in the old layout, and still read."""
    import newsbeam
    from pipeline.report import read_output

    out = tmp_path / "out"
    old = [_article(f"old{i}") for i in range(15)]
    untouched = [_article(f"kept{i}", "2020-11-20") for i in range(3)]
    _single_file_day(out, old)
    _single_file_day(out, untouched, formats=("jsonl",), day="2020-11-20")
    everything = sorted(a["id"] for a in old + untouched)
    assert sorted(newsbeam.read_output(str(out))["id"]) == everything
    updated = dict(old[3], title="updated")
    _write(out, [updated, _article("new")])  # a JSONL run: the day's Parquet is kept current all the same
    day = out / f"dt={DAY}"
    assert not list(day.glob("articles-00000-of-00001.*")), "the single file is removed once every shard is in"
    _assert_shards_hold_their_ids(out)
    assert _day_ids(out) == _day_ids(out, ext="parquet") == sorted(a["id"] for a in old + [_article("new")])
    rows = {r["id"]: r for f in day.glob("articles-*.jsonl") for r in read_jsonl(f)}
    assert rows[updated["id"]]["title"] == "updated"
    assert (out / "dt=2020-11-20" / "articles-00000-of-00001.jsonl").exists()
    assert sorted(a["id"] for a in read_output(str(out)).articles) == sorted(everything + [_article("new")["id"]])
    migrated = _files(out)
    _write(out, [updated, _article("new")])  # the migrated day rewritten again: the same bytes
    assert _files(out) == migrated


def test_a_parquet_only_single_file_day_is_migrated_in_parquet(tmp_path):
    out = tmp_path / "out"
    old = [_article(f"old{i}") for i in range(6)]
    _single_file_day(out, old, formats=("parquet",))
    _write(out, [_article("new")], formats=("parquet",))
    assert not list((out / f"dt={DAY}").glob("*.jsonl")) and not list((out / f"dt={DAY}").glob("*-of-00001.*"))
    assert _day_ids(out, ext="parquet") == sorted(a["id"] for a in old + [_article("new")])
    _assert_shards_hold_their_ids(out)


def test_backfill_ownership_is_kept_per_shard_and_replaces_only_what_backfills_wrote(tmp_path):
    """A plain run writes P*; backfills of the day write B*, each shard of the day recording its own backfilled ids
    (one writer per file: no two shard writers share a record). A backfill without some B* removes those and keeps
    every P*; one with nothing on the day (every article dropped) still rewrites the day's owned shards."""
    out = tmp_path / "out"
    plain = [_article(f"P{i}") for i in range(8)]
    backfilled = [_article(f"B{i}") for i in range(12)]
    rng = (DAY, DAY)
    _write(out, plain, formats=BOTH)
    _write(out, backfilled + plain[:2], merge=False, formats=BOTH, date_range=rng)  # a P brought again stays P's
    assert read_owned(str(out), DAY) == {a["id"] for a in backfilled}
    for path in day_owned_files(str(out), DAY):
        shard = int(Path(path).name.split("-")[1])
        ids = Path(path).read_text().split()
        assert ids == sorted(ids) and {article_shard(i) for i in ids} == {shard}, path
    assert _day_ids(out) == sorted(a["id"] for a in plain + backfilled)
    _write(out, backfilled[:4], merge=False, formats=("jsonl",), date_range=rng)
    assert _day_ids(out) == _day_ids(out, ext="parquet") == sorted(a["id"] for a in plain + backfilled[:4])
    assert read_owned(str(out), DAY) == {a["id"] for a in backfilled[:4]}
    _assert_shards_hold_their_ids(out)
    _write(out, [_article("elsewhere", "2020-11-28")], merge=False, date_range=rng)  # none of it on DAY
    assert _day_ids(out) == _day_ids(out, ext="parquet") == sorted(a["id"] for a in plain)
    assert day_owned_files(str(out), DAY) == [] and read_owned(str(out), DAY) == set()
    _assert_shards_hold_their_ids(out)


def test_a_backfill_migrates_the_single_file_day_and_its_one_ownership_file(tmp_path):
    """The older layout's day (one article file, one `dt=DAY.ids`): a backfill of it that drops some backfilled
    ids removes exactly those, keeps the plain run's lines, and leaves the ownership split per shard."""
    out = tmp_path / "out"
    plain, backfilled = [_article(f"P{i}") for i in range(5)], [_article(f"B{i}") for i in range(9)]
    _single_file_day(out, plain + backfilled, formats=("jsonl",))
    write_atomically(legacy_owned_file(str(out), DAY), sorted(a["id"] for a in backfilled))
    _write(out, backfilled[:3], merge=False, date_range=(DAY, DAY))
    assert not (out / f"dt={DAY}" / "articles-00000-of-00001.jsonl").exists()
    assert not Path(legacy_owned_file(str(out), DAY)).exists()
    assert _day_ids(out) == sorted(a["id"] for a in plain + backfilled[:3])
    assert read_owned(str(out), DAY) == {a["id"] for a in backfilled[:3]}
    _assert_shards_hold_their_ids(out)


def test_a_plain_run_migrating_a_day_keeps_its_backfill_ownership(tmp_path):
    """A plain run rewriting an older-layout day splits its ownership file too: a later backfill still knows which
    lines backfills wrote."""
    out = tmp_path / "out"
    plain, backfilled = [_article(f"P{i}") for i in range(4)], [_article(f"B{i}") for i in range(6)]
    _single_file_day(out, plain + backfilled, formats=("jsonl",))
    write_atomically(legacy_owned_file(str(out), DAY), sorted(a["id"] for a in backfilled))
    _write(out, [_article("new")])
    assert not Path(legacy_owned_file(str(out), DAY)).exists()
    assert read_owned(str(out), DAY) == {a["id"] for a in backfilled}
    _write(out, [], merge=False, date_range=(DAY, DAY))
    assert _day_ids(out) == sorted(a["id"] for a in plain + [_article("new")])


def test_a_format_a_day_lacks_is_added_to_every_shard_of_it(tmp_path):
    """A `--format both` run adding one article to a JSONL day writes every shard's Parquet, not only the new
    one's: a Parquet reader sees the whole day."""
    out = tmp_path / "out"
    old = [_article(f"a{i}") for i in range(10)]
    _write(out, old)
    _write(out, [_article("new")], formats=BOTH)
    assert _day_ids(out, ext="parquet") == _day_ids(out) == sorted(a["id"] for a in old + [_article("new")])
    _assert_shards_hold_their_ids(out)


def test_a_kill_before_the_single_file_is_removed_is_mended_by_the_next_rewrite(tmp_path):
    """Killed after the shards of a migrated day were written but before the single file was removed: the day
    holds its lines in both layouts (shards newer). The next rewrite keeps the shards' version of each id and
    removes the single file; the removal itself waits for every shard of the day."""
    from pipeline.day_shards import survey_day
    from pipeline.sinks import _RemoveMigrated

    out = tmp_path / "out"
    old = [_article(f"old{i}") for i in range(8)]
    _single_file_day(out, old, formats=("jsonl",))
    _write(out, [dict(old[0], title="newer")])
    _single_file_day(out, old, formats=("jsonl",))  # as the kill left it: the single file still there
    state = survey_day(str(out), DAY)
    assert state.foreign and state.migrates
    _RemoveMigrated().process((DAY, list(range(ARTICLE_SHARDS - 1))), {DAY: state})  # a shard not reported
    assert (out / f"dt={DAY}" / "articles-00000-of-00001.jsonl").exists()
    _write(out, [_article("new")])
    assert not (out / f"dt={DAY}" / "articles-00000-of-00001.jsonl").exists()
    rows = {r["id"]: r for f in (out / f"dt={DAY}").glob("articles-*.jsonl") for r in read_jsonl(f)}
    assert len(rows) == 9 and rows[old[0]["id"]]["title"] == "newer"
    _assert_shards_hold_their_ids(out)
