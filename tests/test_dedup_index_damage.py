"""A damaged cross-run dedup index is found on read and repaired from the written partitions, or the run stops
naming the shard and the rebuild command; nothing but regular files under the index folder is ever opened.

Through the real CLI (--skip-models: ids, dedup and bytes do not depend on the models) on one output root, and
on the transform alone where no partitions exist."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import apache_beam as beam
import pytest

from tests.conftest import ROOT, beam_pipeline, read_jsonl, read_output, run_cli
from transforms.dedup import Deduplicate
from transforms.dedup_index import (PARTITION_GLOB, IndexDamaged, article_row, check_index, index_dir,
                                    parse_index_row, rebuild_index)

_WORDS = ("harbour council budget river station minister contract village winter school hospital factory bridge "
          "election railway farmers market tunnel museum airport festival court police storm harvest union ferry "
          "museum library teachers doctors engineers pilots bakers miners sailors nurses judges voters tenants "
          "rent water power coal wheat copper timber cotton steel glass paper salt sugar wool oil gas wind solar "
          "north south east west upper lower old new small large early late quiet busy").split()
N = 8


def _story(i: int) -> dict:
    """A 45-word text of its own (no two stories share a run of three words, practically), its url and day."""
    rng = random.Random(i)
    text = " ".join(rng.choice(_WORDS) for _ in range(45)) + "."
    return {"title": f"Story number {i}", "text": text.capitalize(), "url": f"https://example.org/story/{i}",
            "published": f"2021-03-0{1 + i % 3}"}


def _copy(i: int) -> dict:
    """A near copy of story i from another wire: a different url (so another id), one sentence more."""
    s = _story(i)
    return dict(s, text=s["text"] + " Officials confirmed it.", url=f"https://wire-b.example/{i}", source="Wire B")


def _write_input(folder: Path, records: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    os.utime(path, (1_615_000_000, 1_615_000_000))  # the same fetched_at whenever the input is made
    return folder


def _run(inp: Path, out: Path):
    return run_cli(["run", "--input", str(inp / "*"), "--output", str(out), "--targets", "x", "--skip-models"])


def _ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every record accounted for" in proc.stdout, proc.stdout
    return proc.stdout


def _files(out: Path) -> dict[str, bytes]:
    """Every output file but the index, by relative path."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and "_state" not in p.parts}


def _index_rows(out: Path) -> list[dict]:
    return sorted((r for f in Path(index_dir(str(out))).glob("part-*.jsonl") for r in read_jsonl(f)),
                  key=lambda r: r["id"])


def _shards(out: Path) -> list[Path]:
    return sorted(Path(index_dir(str(out))).glob("part-*.jsonl"))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """Run A: the eight stories from "Wire A", into a fresh output root (copied by each test)."""
    tmp = tmp_path_factory.mktemp("index_damage")
    inp = _write_input(tmp / "in_a", [dict(_story(i), source="Wire A") for i in range(N)])
    out = tmp / "out"
    assert "read 8, written 8, duplicates 0" in _ok(_run(inp, out))
    (shard,) = _shards(out)
    return {"tmp": tmp, "in_a": inp, "out": out, "shard": shard.name, "rows": _index_rows(out),
            "in_b": _write_input(tmp / "in_b", [_copy(i) for i in range(N)])}


def _fresh(first_run, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(first_run["out"], out, symlinks=True)
    return out


def _rewrite_rows(shard: Path, change) -> None:
    """Edit the rows in place, keeping the file name (so the name no longer matches the content)."""
    rows = read_jsonl(shard)
    change(rows)
    shard.write_text("".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows))


def _damage(shard: Path, how: str) -> None:
    if how == "empty":  # a zero-length shard: before, never rewritten (its name exists), its memory gone for good
        shard.write_bytes(b"")
    elif how == "directory":  # a directory in its place: before, skipped silently by the reader
        shard.unlink()
        shard.mkdir()
    elif how == "signature":  # valid-looking rows with each other's signatures: wrong pointers before
        _rewrite_rows(shard, lambda rows: [r.update(sig=s) for r, s in zip(rows, [x["sig"] for x in rows[1:] +
                                                                                  rows[:1]])])
    elif how == "fingerprint":  # a changed record fingerprint: a rerun's records became duplicates before
        _rewrite_rows(shard, lambda rows: [r.update(record="0" * 24) for r in rows])


@pytest.mark.parametrize("how", ["empty", "directory", "signature", "fingerprint"])
def test_a_damaged_shard_is_rebuilt_from_the_partitions_and_decisions_stay_right(first_run, tmp_path, how):
    """Damage the shard run A wrote, then run B (near copies of A's stories from another wire) and A again: B's
    eight are duplicates of A's originals (not eight copies written), the repair is logged, the index holds
    A's rows again, and the rerun of A changes no byte."""
    out = _fresh(first_run, tmp_path)
    _damage(Path(index_dir(str(out))) / first_run["shard"], how)
    proc = _run(first_run["in_b"], out)
    assert "read 8, written 0, duplicates 8" in _ok(proc), proc.stdout
    originals = {a["url"]: a["id"] for a in read_output(out)["articles"]}
    dups = {d["url"]: d["duplicate_of"] for d in read_output(out)["duplicates"]}
    assert dups == {_copy(i)["url"]: originals[_story(i)["url"]] for i in range(N)}
    after_b = _files(out)
    rerun = _run(first_run["in_a"], out)
    assert "read 8, written 8, duplicates 0" in _ok(rerun) and "damaged" not in rerun.stderr
    assert _files(out) == after_b
    assert f"shard {index_dir(str(out))}/{first_run['shard']} was damaged" in proc.stderr, proc.stderr
    assert "rebuilt the dedup index" in proc.stderr and "from the 8 written articles" in proc.stderr
    assert _index_rows(out) == first_run["rows"]
    assert [p.name for p in _shards(out)] == [first_run["shard"]]  # the very shard run A wrote, byte for byte


class _FifoWriter:
    """Holds the other end of a FIFO, so that a reader that opens it meets end-of-file instead of blocking (the
    old code then went on as if the shard were empty) and the test never hangs, whatever the code does."""

    def __init__(self, path: Path):
        self.path = path
        self.thread = threading.Thread(target=lambda: os.close(os.open(path, os.O_WRONLY)), daemon=True)
        self.thread.start()

    def release(self) -> None:
        """Let the writer's open return if no reader ever came (the fixed code never opens the FIFO)."""
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self.thread.join()
        os.close(fd)


def test_a_fifo_in_the_index_folder_is_refused_by_name_and_never_opened(first_run, tmp_path):
    out = _fresh(first_run, tmp_path)
    fifo = Path(index_dir(str(out))) / f"part-{'0' * 32}.jsonl"
    os.mkfifo(fifo)
    writer = _FifoWriter(fifo)
    try:
        proc = _run(first_run["in_b"], out)
    finally:
        writer.release()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert f"{fifo} is a FIFO, not a regular file; it was not opened" in error, proc.stderr
    assert not (out / "duplicates").exists()  # stopped before anything was written
    fifo.unlink()
    assert "read 8, written 0, duplicates 8" in _ok(_run(first_run["in_b"], out))


def test_damage_the_partitions_cannot_repair_stops_the_run_naming_the_shard_and_the_rebuild(first_run, tmp_path):
    """Run C adds a second shard; then A's shard is emptied and C's partition removed. The partitions no longer
    hold the rows of C's intact shard, so they cannot be trusted to hold A's lost ones either: the run stops,
    naming the shard and the rebuild, and leaves the index as it is. The rebuild then makes it from what is
    written (A's eight), and the run goes through."""
    out = _fresh(first_run, tmp_path)
    new = _write_input(tmp_path / "in_c", [dict(_story(100 + i), source="Wire C", published="2021-03-09")
                                           for i in range(2)])
    _ok(_run(new, out))
    shard_a = Path(index_dir(str(out))) / first_run["shard"]
    (shard_c,) = [p for p in _shards(out) if p.name != shard_a.name]
    shard_a.write_bytes(b"")
    for shard in (out / "dt=2021-03-09").glob("articles-*"):
        shard.unlink()  # C's articles gone, its rows intact
    proc = _run(first_run["in_b"], out)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = proc.stderr.strip().splitlines()[-1]  # the CLI's one line: the shard and the way out come first
    assert (f"dedup index shard {shard_a} is damaged (it is empty (0 bytes)); rebuild it with `python -m "
            f"transforms.dedup_index --rebuild --output {out}`") in error, error
    logged = next(line for line in proc.stderr.splitlines() if line.startswith("ERROR newsbeam.dedup"))
    assert f"Not rebuilt automatically: the intact shard {shard_c.name} holds article" in logged, logged
    assert "no written partition has. Rerunning as is fails the same way" in logged, logged
    assert shard_a.read_bytes() == b""  # left as it was for the person to decide
    rebuilt = subprocess.run([sys.executable, "-m", "transforms.dedup_index", "--rebuild", "--output", str(out)],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)  # the command the error names
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert f"from the {N} written articles in" in rebuilt.stdout and ": 1 shards" in rebuilt.stdout, rebuilt.stdout
    assert [p.name for p in _shards(out)] == [first_run["shard"]]
    assert "read 8, written 0, duplicates 8" in _ok(_run(first_run["in_b"], out))


def test_a_malformed_row_under_a_matching_name_is_an_error_naming_the_shard_and_line(first_run, tmp_path):
    out = _fresh(first_run, tmp_path)
    folder = Path(index_dir(str(out)))
    lines = (folder / first_run["shard"]).read_text().splitlines()
    row = json.loads(lines[1])
    row["sig"] = base64.b64encode(base64.b64decode(row["sig"])[:-4]).decode()  # 127 values, not 128
    lines[1] = json.dumps(row, sort_keys=True, separators=(",", ":"))
    data = "".join(line + "\n" for line in lines).encode()
    (folder / first_run["shard"]).unlink()
    bad = folder / f"part-{hashlib.sha256(data).hexdigest()[:32]}.jsonl"
    bad.write_bytes(data)
    proc = _run(first_run["in_b"], out)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert (f"dedup index shard {bad} is damaged (line 2: sig is not the base64 of 128 uint32 values); rebuild it "
            f"with `python -m transforms.dedup_index --rebuild --output {out}`") in error, error


# ------------------------------------------------------------------ the transform alone, and the pure pieces
def _article(i: int) -> dict:
    s = _story(i)
    return dict(s, id=f"a{i}", source="t", input_ref=f"a{i}.txt")


def test_without_partitions_a_damaged_shard_fails_the_run_instead_of_forgetting(tmp_path):
    """Deduplicate on its own writes the index with no article files beside it: nothing to rebuild from."""
    with beam_pipeline() as p:
        _ = p | beam.Create([_article(i) for i in range(3)]) | Deduplicate(index_root=str(tmp_path))
    (shard,) = Path(index_dir(str(tmp_path))).glob("part-*.jsonl")
    shard.write_bytes(b"")
    with pytest.raises(Exception) as caught:
        with beam_pipeline() as p:
            _ = p | beam.Create([_article(0)]) | Deduplicate(index_root=str(tmp_path))
    message = str(caught.value)
    assert f"dedup index shard {shard} is damaged (it is empty (0 bytes))" in message, message
    assert "there are no written articles" in message and "python -m transforms.dedup_index --rebuild" in message


def test_the_rebuild_of_a_healthy_index_is_byte_identical(first_run, tmp_path):
    out = _fresh(first_run, tmp_path)
    before = {p.name: p.read_bytes() for p in _shards(out)}
    assert rebuild_index(str(out)).shards == [str(Path(index_dir(str(out))) / first_run["shard"])]
    assert {p.name: p.read_bytes() for p in _shards(out)} == before
    assert check_index(index_dir(str(out))).damaged == []


def test_the_rebuild_refuses_a_fifo_without_opening_it(first_run, tmp_path):
    out = _fresh(first_run, tmp_path)
    fifo = Path(index_dir(str(out))) / "stray"
    os.mkfifo(fifo)
    writer = _FifoWriter(fifo)
    try:
        with pytest.raises(IndexDamaged, match=f"{fifo} is a FIFO, not a regular file; it was not opened"):
            rebuild_index(str(out))
    finally:
        writer.release()


def test_a_written_article_gives_back_the_row_its_run_indexed(first_run):
    """What makes the rebuild possible: each article line holds all its row is made of."""
    lines = [json.loads(line) for f in sorted(first_run["out"].glob(PARTITION_GLOB))
             for line in f.read_text(encoding="utf-8").splitlines()]
    assert sorted((article_row(a) for a in lines), key=lambda r: r["id"]) == first_run["rows"]


def test_the_rebuild_reads_the_partitions_the_layout_names():
    from pipeline.layout import READ_GLOBS, ARTICLES

    assert PARTITION_GLOB == READ_GLOBS[ARTICLES][0]


GOOD = {"exact": "a" * 32, "id": "x1", "published": "2021-03-01", "sig": base64.b64encode(bytes(512)).decode(),
        "record": "b" * 24}


@pytest.mark.parametrize("change", [
    {"sig": base64.b64encode(bytes(508)).decode()}, {"sig": "not base64!"}, {"sig": 5}, {"exact": "a" * 31},
    {"exact": "A" * 32}, {"published": "2021-02-30"}, {"published": "20210301"}, {"id": ""}, {"id": 7},
    {"record": "b" * 23}, {"extra": 1}, {"id": None},
], ids=lambda c: json.dumps(c)[:40])
def test_a_row_is_parsed_strictly(change):
    with pytest.raises(ValueError):
        parse_index_row(json.dumps({**GOOD, **change}), num_perm=128)


@pytest.mark.parametrize("line", ["", "[1]", "{", '{"id": "x"}'])
def test_a_line_that_is_not_a_row_is_refused(line):
    with pytest.raises(ValueError):
        parse_index_row(line, num_perm=128)


def test_a_good_row_parses_and_may_lack_its_record():
    assert parse_index_row(json.dumps(GOOD), 128) == GOOD
    old = {k: v for k, v in GOOD.items() if k != "record"}
    assert parse_index_row(json.dumps(old), 128) == old
