"""What a backfill may replace, through the real CLI (--skip-models: ids, dedup and bytes do not depend on the
models): the articles of its range that its input produced or that earlier backfills wrote, never what a plain run
wrote; overlapping ranges list each side record once and keep the same copy whatever their order; and after a run
killed between its partition writes and its index writes, the next run (on other input) leaves the index and the
partitions agreeing."""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

from pipeline.recovery import in_progress_mark
from tests.conftest import read_jsonl, read_output, run_cli
from transforms.dedup_index import index_dir

_WORDS = ("harbour council budget river station minister contract village winter school hospital factory bridge "
          "election railway farmers market tunnel museum airport festival court police storm harvest union ferry "
          "library teachers doctors engineers pilots bakers miners sailors nurses judges voters tenants rent water "
          "power coal wheat copper timber cotton steel glass paper salt sugar wool oil gas wind solar north south "
          "east west upper lower old new small large early late quiet busy").split()


def _story(name: str, day: str) -> dict:
    """A 45-word text of its own (seeded by its name), its url and day."""
    rng = random.Random(name)
    text = " ".join(rng.choice(_WORDS) for _ in range(45)) + "."
    return {"title": f"Story {name}", "text": text.capitalize(), "url": f"https://example.org/{name}",
            "published": day}


def _near_copy(story: dict, day: str, tag: str = "copy") -> dict:
    """Another wire's copy: one sentence more, another url (so another id), another day."""
    return dict(story, text=story["text"] + " Officials confirmed it.", url=story["url"] + f"/{tag}",
                published=day)


def _input(folder: Path, records: list[dict], extra_lines: tuple[str, ...] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "".join(f"{x}\n" for x in extra_lines),
                    encoding="utf-8")
    os.utime(path, (1_607_000_000, 1_607_000_000))  # the same fetched_at whenever the input is made
    return folder


def _ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every record accounted for" in proc.stdout, proc.stdout
    return proc.stdout


def _run(inp: Path, out: Path) -> str:
    return _ok(run_cli(["run", "--input", str(inp / "*"), "--output", str(out), "--targets", "x", "--skip-models"]))


def _backfill(inp: Path, out: Path, since: str, until: str) -> str:
    return _ok(run_cli(["backfill", "--since", since, "--until", until, "--input", str(inp / "*"), "--output",
                        str(out), "--targets", "x", "--skip-models"]))


def _written(out: Path) -> dict[str, str]:
    """url -> id of every article in the partitions."""
    return {a["url"]: a["id"] for a in read_output(out)["articles"]}


def _side(out: Path, kind: str) -> list[dict]:
    """Every duplicate or dead letter under the root, batch and backfill ranges, each once."""
    from pipeline.layout import once_each, output_files

    return list(once_each(r for path in output_files(str(out), kind) for r in read_jsonl(Path(path))))


def _index_ids(out: Path) -> list[str]:
    return sorted(r["id"] for f in Path(index_dir(str(out))).glob("part-*.jsonl") for r in read_jsonl(f))


def assert_index_agrees(out: Path) -> None:
    """Every written id is in the index (once), every index row is written or listed as a duplicate, and every
    duplicate points at a written article."""
    written = [a["id"] for a in read_output(out)["articles"]]
    duplicates = _side(out, "duplicates")
    index = _index_ids(out)
    assert len(written) == len(set(written)), "an id is written once per output root"
    assert len(index) == len(set(index)), "the index holds each id once"
    assert sorted(set(written) - set(index)) == [], "written but missing from the index"
    listed = {d["id"] for d in duplicates}
    assert sorted(set(index) - set(written) - listed) == [], "index rows of articles neither written nor listed"
    assert sorted({d["duplicate_of"] for d in duplicates} - set(written)) == [], "duplicates of nothing"


def test_a_backfill_keeps_what_a_plain_run_wrote(tmp_path):
    """A plain run writes E (12-12) and F (12-11); a backfill of 12-10..12-13 whose input holds F, G and H (on
    E's day) but not E keeps E: a later copy of E is a duplicate of an article that is there."""
    e, f, g, h = (_story("E", "2020-12-12"), _story("F", "2020-12-11"), _story("G", "2020-12-13"),
                  _story("H", "2020-12-12"))
    out = tmp_path / "out"
    _run(_input(tmp_path / "plain", [e, f]), out)
    _backfill(_input(tmp_path / "bf", [f, g, h]), out, "2020-12-10", "2020-12-13")
    assert sorted(_written(out)) == sorted(s["url"] for s in (e, f, g, h))
    assert_index_agrees(out)
    _run(_input(tmp_path / "later", [_near_copy(e, "2020-12-14")]), out)
    dups = _side(out, "duplicates")
    assert [(d["url"], d["duplicate_of"]) for d in dups] == [(e["url"] + "/copy", _written(out)[e["url"]])]
    assert_index_agrees(out)


def test_a_backfill_replaces_what_earlier_backfills_of_its_range_wrote(tmp_path):
    """A backfill of 12-10..12-13 writes A and B; the same range again without B removes B from its partition
    (C is on its day now) and from the index, so a later copy of B is written, not listed as a duplicate of an
    article in no partition. What a plain run wrote on those days stays."""
    a, b, p = _story("A", "2020-12-11"), _story("B", "2020-12-12"), _story("P", "2020-12-12")
    out = tmp_path / "out"
    _run(_input(tmp_path / "plain", [p]), out)
    _backfill(_input(tmp_path / "bf1", [a, b]), out, "2020-12-10", "2020-12-13")
    assert sorted(_written(out)) == sorted(s["url"] for s in (a, b, p))
    _backfill(_input(tmp_path / "bf2", [a, _story("C", "2020-12-12")]), out, "2020-12-10", "2020-12-13")
    c = _story("C", "2020-12-12")
    assert sorted(_written(out)) == sorted(s["url"] for s in (a, c, p))
    assert_index_agrees(out)
    _run(_input(tmp_path / "later", [_near_copy(b, "2020-12-20")]), out)
    assert sorted(_written(out)) == sorted([a["url"], c["url"], p["url"], b["url"] + "/copy"])
    assert _side(out, "duplicates") == []
    assert_index_agrees(out)


def _overlap_input(folder: Path) -> Path:
    """P (12-10) and its near copy Q (12-12), an exact re-send of R (12-11: another url, the same title and
    text), and one line that is not JSON (a dead letter)."""
    p, r = _story("P", "2020-12-10"), _story("R", "2020-12-11")
    q = _near_copy(p, "2020-12-12")
    r2 = dict(r, url=r["url"] + "/resent")
    return _input(folder, [p, q, r, r2], extra_lines=("{not json",))


def test_overlapping_backfills_list_side_records_once_and_keep_the_same_copy(tmp_path):
    """12-10..12-12 then 12-11..12-13, and the other way round, over the same input: the same articles are
    kept (P, the earliest copy, not Q), and read_output lists each duplicate and dead letter once."""
    import newsbeam

    inp = _overlap_input(tmp_path / "in")
    outs = {}
    for name, ranges in (("forward", [("2020-12-10", "2020-12-12"), ("2020-12-11", "2020-12-13")]),
                         ("reverse", [("2020-12-11", "2020-12-13"), ("2020-12-10", "2020-12-12")])):
        out = outs[name] = tmp_path / name
        for since, until in ranges:
            _backfill(inp, out, since, until)
        assert_index_agrees(out)
    p = _story("P", "2020-12-10")
    for out in outs.values():
        assert p["url"] in _written(out) and p["url"] + "/copy" not in _written(out)
        for kind, key in (("duplicates", ["id"]), ("dead_letters", ["input_ref", "stage", "error"])):
            df = newsbeam.read_output(str(out), kind)
            assert len(df) and not df.duplicated(subset=key).any(), (kind, df.to_dict("records"))
    frames = {name: {kind: newsbeam.read_output(str(out), kind).drop(columns=["id"] if kind == "articles" else [])
                     .to_dict("records") for kind in ("articles", "duplicates", "dead_letters")}
              for name, out in outs.items()}
    assert json.dumps(frames["forward"], default=str) == json.dumps(frames["reverse"], default=str)


def test_a_run_killed_between_partitions_and_index_then_other_input(tmp_path):
    """Run 1 writes; run 2 is killed after its partitions are in place and before its index shards are (the
    state it leaves: run 2's partitions, the index as run 1 left it, the run's in-progress mark). Run 3 brings
    near copies of run 2's articles: they are duplicates of them, and the index agrees with the partitions."""
    out = tmp_path / "out"
    one, two = [_story(f"one{i}", "2020-12-10") for i in range(2)], [_story(f"two{i}", "2020-12-11")
                                                                       for i in range(2)]
    _run(_input(tmp_path / "in1", one), out)
    index = Path(index_dir(str(out)))
    before = tmp_path / "index_before"
    shutil.copytree(index, before)
    _run(_input(tmp_path / "in2", two), out)
    assert not in_progress_mark(str(out)).exists(), "a run that ended removes its mark"
    shutil.rmtree(index)
    shutil.copytree(before, index)  # the kill: run 2's shards never written
    in_progress_mark(str(out)).write()  # and the mark the killed run left
    _run(_input(tmp_path / "in3", [_near_copy(s, "2020-12-09") for s in two]), out)
    written = _written(out)
    assert sorted(written) == sorted(s["url"] for s in one + two)
    dups = {d["url"]: d["duplicate_of"] for d in _side(out, "duplicates")}
    assert dups == {s["url"] + "/copy": written[s["url"]] for s in two}
    assert_index_agrees(out)



def test_ownership_of_a_day_is_first_writer_wins():
    """The pure rule: a plain run's line stays (and stays the plain run's, even when a backfill brings it again);
    a backfill's line is replaced by this input's version or removed when the input lacks it."""
    from transforms.backfill_owned import replace_owned

    keep, owned, removed = replace_owned({"plain", "bf1", "bf2"}, {"bf1", "new", "plain"}, {"bf1", "bf2"})
    assert (keep, owned, removed) == (set(), {"bf1", "new"}, {"bf2"})
    keep, owned, removed = replace_owned({"plain", "bf1"}, {"new"}, {"bf1", "gone-already"})
    assert (keep, owned, removed) == ({"plain"}, {"new"}, {"bf1"})
