"""The cross-run dedup index through the real pipeline: the CLI twice on one output root (a copy of a run-1
article is a duplicate in run 2 and is not written again), and an article dead-lettered after dedup (by stance)
is never indexed, so its later copies are still written. Plus the index-of-written join on its own."""
from __future__ import annotations

import json
import os
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import ROOT, beam_pipeline, read_jsonl, read_output, read_side, run_cli
from transforms.dedup import Deduplicate, KeepWhatWasWritten, index_dir

SEEDS = ROOT / "seeds"


def _index_ids(out: Path) -> list[str]:
    """Every id in the index's shards (sorted, repeats kept: the index must never hold one twice)."""
    return sorted(r["id"] for f in Path(index_dir(str(out))).glob("part-*.jsonl") for r in read_jsonl(f))


def _with_overlong_target(name: str, chars: int = 1200) -> str:
    """A seed story as a JSONL record whose own `targets` is its first `chars` characters: the target is
    mentioned, so stance runs, and the stance tokenizer cannot fit a target longer than its 160-piece input
    (truncation of the sentence only), so the article fails even alone and stance dead-letters it (after dedup)."""
    lines = (SEEDS / name).read_text(encoding="utf-8").splitlines()
    date, title = lines[0].split()[1], lines[1].split(" ", 1)[1]
    body = " ".join(" ".join(lines[2:]).split())  # one paragraph: the target is a verbatim span of the text
    target = body[:body.rindex(" ", 0, chars)]
    return json.dumps({"published": date, "title": title, "text": body, "targets": [target]})


def _run(inp: Path, out: Path, *extra: str) -> dict:
    proc = run_cli(["run", "--input", str(inp / "*"), "--output", str(out), "--targets", "Armenia", "Azerbaijan",
                    *extra])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every record accounted for" in proc.stdout, proc.stdout
    return {"stdout": proc.stdout, **read_output(out)}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Run 1: two stories, plus one (Suez) that stance dead-letters after dedup (`_with_overlong_target`).
    Run 2, same output root: a syndicated near copy of a run-1 story, and the Suez update, a near copy of the
    article run 1 never wrote."""
    tmp = tmp_path_factory.mktemp("across_runs")
    in1, in2, out = tmp / "in1", tmp / "in2", tmp / "out"
    in1.mkdir()
    in2.mkdir()
    for name in ("armenia_azerbaijan_ceasefire.txt", "ecb_rates.txt"):
        (in1 / name).write_text((SEEDS / name).read_text(encoding="utf-8"), encoding="utf-8")
    (in1 / "wire.jsonl").write_text(_with_overlong_target("suez_ship_wire.txt") + "\n", encoding="utf-8")
    for name in ("armenia_azerbaijan_ceasefire_copy.txt", "suez_ship_wire_update.txt"):
        (in2 / name).write_text((SEEDS / name).read_text(encoding="utf-8"), encoding="utf-8")
    (in2 / "same_day_as_ecb.txt").write_text(SAME_DAY_STORY, encoding="utf-8")
    first = _run(in1, out)
    first["index"] = _index_ids(out)
    first["files"] = _all_files(out)
    second = _run(in2, out)
    second["index"] = _index_ids(out)
    second["files"] = _all_files(out)
    rerun = _run(in2, out)
    rerun["files"] = _all_files(out)
    return {"out": out, "first": first, "second": second, "rerun": rerun}


# run 2 brings a different story published on the day of a run-1 article (ecb_rates.txt, 2020-12-10)
SAME_DAY_STORY = """date 2020-12-10
title Norway's parliament approves budget after fishing quota deal
OSLO - Norway's parliament approved the government's 2021 budget on Thursday after the minority coalition struck a
late deal with the opposition on fishing quotas and regional airport subsidies, ending weeks of negotiations.
"""


def _all_files(out: Path) -> dict[str, bytes]:
    """Every output file except the index shards (compared separately), by relative path."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and "_state" not in p.parts}


def _by_file(records: list[dict]) -> dict[str, dict]:
    return {Path(r["input_ref"].split(":")[0]).name: r for r in records}


def test_an_article_dead_lettered_after_dedup_is_not_indexed(two_runs):
    first = two_runs["first"]
    written = _by_file(first["articles"])
    assert set(written) == {"armenia_azerbaijan_ceasefire.txt", "ecb_rates.txt"}
    dead = _by_file(first["dead"])
    assert set(dead) == {"wire.jsonl"} and dead["wire.jsonl"]["stage"] == "stance"
    assert "Truncation error" in dead["wire.jsonl"]["error"] and dead["wire.jsonl"]["id"]
    assert first["duplicates"] == []  # the Suez story was kept by dedup: it is lost later, by stance
    assert first["index"] == sorted(a["id"] for a in first["articles"])  # written articles, and only those
    assert dead["wire.jsonl"]["id"] not in first["index"]


def test_second_run_marks_a_copy_of_a_first_run_article_and_does_not_write_it(two_runs):
    first, second = two_runs["first"], two_runs["second"]
    original = _by_file(first["articles"])["armenia_azerbaijan_ceasefire.txt"]
    dups = _by_file(second["duplicates"])
    assert set(dups) == {"armenia_azerbaijan_ceasefire_copy.txt"}
    copy = dups["armenia_azerbaijan_ceasefire_copy.txt"]
    assert copy["duplicate_of"] == original["id"] and copy["kind"] == "near" and copy["id"] != original["id"]
    assert copy["id"] not in {a["id"] for a in second["articles"]}
    assert not (two_runs["out"] / f"dt={copy['published']}").exists()
    assert "read 3, written 2, duplicates 1, dead-lettered 0" in second["stdout"]


def test_a_second_run_adds_to_what_the_first_wrote(two_runs):
    """A plain run merges into the output: run 1's articles, duplicates and dead letters stay, a day both runs
    wrote holds both runs' articles, and the days run 2 did not touch keep their bytes."""
    first, second = two_runs["first"], two_runs["second"]
    first_ids = {a["id"] for a in first["articles"]}
    assert first_ids <= {a["id"] for a in second["articles"]}
    day = [a for a in second["articles"] if a["published"] == "2020-12-10"]
    assert sorted(Path(a["input_ref"].split(":")[0]).name for a in day) == ["ecb_rates.txt", "same_day_as_ecb.txt"]
    assert {d["id"] for d in first["dead"]} <= {d["id"] for d in second["dead"]}  # run 1's dead letter kept
    for rel, data in first["files"].items():
        if rel.startswith("dt=") and "2020-12-10" not in rel:
            assert second["files"][rel] == data, rel


def test_rerunning_the_second_run_changes_no_byte(two_runs):
    """Idempotent: the same input again over the same output root leaves every file (and the index) as it was,
    and is accounted for the same way."""
    second, rerun = two_runs["second"], two_runs["rerun"]
    assert rerun["files"] == second["files"]
    assert _index_ids(two_runs["out"]) == second["index"]
    assert "read 3, written 2, duplicates 1, dead-lettered 0" in rerun["stdout"]


def test_a_copy_of_a_never_written_article_is_written_and_indexed(two_runs):
    first, second = two_runs["first"], two_runs["second"]
    update = _by_file(second["articles"])["suez_ship_wire_update.txt"]  # not a duplicate of the dead letter
    same_day = _by_file(second["articles"])["same_day_as_ecb.txt"]
    assert second["index"] == sorted(first["index"] + [update["id"], same_day["id"]])


# ------------------------------------------------------------------ the join, on its own (TestPipeline)
def _article(article_id: str, text: str) -> dict:
    return {"id": article_id, "text": text, "title": article_id, "published": "2020-01-01", "source": "t",
            "url": None, "input_ref": f"{article_id}.txt"}


STORIES = {
    "a": "The central bank raised its main interest rate by half a point on Thursday, the first rise in ten years, "
         "and said further increases were likely if inflation stayed above its target through the summer months.",
    "b": "Heavy snow closed the main mountain pass for a third day on Monday, stranding hundreds of lorries at the "
         "border crossing, while rescue teams cleared avalanches from the railway line further down the valley.",
}


def test_only_rows_of_written_articles_reach_the_index(tmp_path):
    """Dedup keeps a and b, but only a is "written": b's row is dropped (and counted), a's is indexed."""
    directory = index_dir(str(tmp_path))
    with beam_pipeline() as p:
        dedup = (p | beam.Create([_article(k, t) for k, t in STORIES.items()])
                 | Deduplicate(index_root=str(tmp_path), write_index=False))
        assert "index_shards" not in dedup
        assert_that(dedup["index_rows"] | beam.Keys(), equal_to(["a", "b"]), label="rows")
        written = p | "Written" >> beam.Create(["a"])
        no_dups = p | "NoDuplicates" >> beam.Create([])
        {"rows": dedup["index_rows"], "written": written, "duplicates": no_dups} | KeepWhatWasWritten(directory)
    assert _index_ids(tmp_path) == ["a"]
    # the next run: a's copy is its duplicate; b's copy is new (b was never written), so it is kept
    copies = [dict(_article(k + "2", t + " Officials confirmed."), published="2020-01-02") for k, t in STORIES.items()]
    with beam_pipeline() as p:
        dedup = p | beam.Create(copies) | Deduplicate(index_root=str(tmp_path), write_index=False)
        assert_that(dedup["articles"] | beam.Map(lambda a: a["id"]), equal_to(["b2"]), label="kept")
        assert_that(dedup["duplicates"] | beam.Map(lambda d: (d["id"], d["duplicate_of"])),
                    equal_to([("a2", "a")]), label="dups")


def _dup(dup_id: str, kept_id: str) -> dict:
    return {"id": dup_id, "duplicate_of": kept_id, "kind": "near", "similarity": 0.91, "source": "t", "url": None,
            "title": dup_id, "published": "2020-01-02", "input_ref": f"{dup_id}.txt"}


def test_a_duplicate_of_an_article_lost_after_dedup_is_dead_lettered_not_left_pointing_at_nothing(tmp_path):
    """Kept this run: a (written) and b (dead-lettered later, e.g. by stance). Copies of a pass; the copy of b
    becomes a dead letter naming b; a copy of an article of an earlier run (old, not kept here) passes."""
    from transforms.common import DEAD

    with beam_pipeline() as p:
        checked = {"duplicates": p | "Dups" >> beam.Create([_dup("a2", "a"), _dup("b2", "b"), _dup("o2", "old")]),
                   "rows": p | "Kept" >> beam.Create([("a", {"id": "a"}), ("b", {"id": "b"})]),
                   "written": p | "Written" >> beam.Create(["a"])} | KeepWhatWasWritten(index_dir(str(tmp_path)))
        assert_that(checked["duplicates"] | beam.Map(lambda d: d["id"]), equal_to(["a2", "o2"]), label="passed")
        assert_that(checked[DEAD] | beam.Map(lambda d: (d["id"], d["stage"], "article b, which was dead-lettered"
                                                        in d["error"])),
                    equal_to([("b2", "dedup", True)]), label="dead")
    assert _index_ids(tmp_path) == ["a"]  # the same join indexed the written keeper only


# ------------------------------------------------------------------ run order
X = {"title": "Ceasefire holds along the line of contact",
     "text": "Armenia and Azerbaijan said the ceasefire held overnight along the whole line of contact, and "
             "Russian peacekeepers reported no shooting near the corridor for the third night in a row.",
     "published": "2020-11-10", "url": "https://example.org/news/ceasefire-holds"}
W = {"title": "Yerevan protesters demand the prime minister resign",
     "text": "Thousands of protesters marched through Yerevan on Wednesday demanding that the prime minister "
             "resign over the peace deal, and opposition leaders called for a general strike next week.",
     "published": "2020-11-11", "url": "https://example.org/news/yerevan-protests"}
RUN_INPUTS = {
    "A": {"a.jsonl": [dict(X, source="Wire A")]},
    # B: X exactly (another source), Z (X's url, title and text, published a day later: the same id) and W
    "B": {"b.jsonl": [dict(X, source="Wire B"), dict(X, source="Wire B", published="2020-11-11"), W]},
}


def _lines_by_id(out: Path) -> dict[str, list[str]]:
    """Every article line under the output root, by id (a list: an id written twice shows up twice)."""
    lines: dict[str, list[str]] = {}
    for f in sorted(out.glob("dt=*/articles-*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                lines.setdefault(json.loads(line)["id"], []).append(line)
    return lines


@pytest.mark.parametrize("order", ["ABA", "BAB"])
def test_each_id_is_written_once_whatever_the_run_order(tmp_path, order):
    """Runs into one --output in the order A, B, A (and B, A, B): after every run each id is on one line of one
    partition, a line once written never changes (later copies are duplicates pointing at it), and the third
    run, a rerun of the first run's input, changes no byte."""
    out = tmp_path / "out"
    first_line: dict[str, str] = {}
    files_after: list[dict[str, bytes]] = []
    for n, name in enumerate(order):
        inp = tmp_path / f"in_{name}"  # a rerun reads the same files again
        inp.mkdir(exist_ok=True)
        for fname, records in RUN_INPUTS[name].items():
            path = inp / fname
            path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
            os.utime(path, (1_605_000_000, 1_605_000_000))  # the same fetched_at every time the input is made
        _run(inp, out, "--skip-models")  # ids, dedup and bytes do not depend on the models: none loaded
        by_id = _lines_by_id(out)
        assert all(len(v) == 1 for v in by_id.values()), {k: len(v) for k, v in by_id.items()}
        for article_id, (line,) in by_id.items():
            assert first_line.setdefault(article_id, line) == line, f"run {n + 1} ({name}) rewrote {article_id}"
        files_after.append(_all_files(out))
    assert files_after[2] == files_after[1]
    dups = read_side(out, "duplicates")
    x_id = next(i for i, (line,) in _lines_by_id(out).items() if json.loads(line)["url"] == X["url"])
    first_source = "Wire A" if order[0] == "A" else "Wire B"
    assert json.loads(first_line[x_id])["source"] == first_source
    # the other run's X and Z are duplicates of the X written first, under its id
    assert sorted((d["source"], d["published"]) for d in dups if d["duplicate_of"] == x_id) == sorted(
        [("Wire B", "2020-11-10"), ("Wire B", "2020-11-11")] if first_source == "Wire A" else
        [("Wire A", "2020-11-10"), ("Wire B", "2020-11-11")])
