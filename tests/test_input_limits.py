"""Inputs that used to lose records silently, through the real CLI (--skip-models) over real files:

- a `.jsonl.gz` larger than 16 MiB decompressed (one read() of Beam's CompressedFile stopped at its buffer);
- a gzip bomb (1 MB -> 1 GiB): one dead letter naming the limit, never held in memory;
- one invalid UTF-8 byte or a NUL in a JSONL line (the whole file was one dead letter);
- symbolic links out of the input tree (their targets' bytes were copied into dead-letter excerpts), to folders,
  dangling or looping under a directory input (they vanished), and one file given in three spellings (read three
  times);
- a record with more targets than MAX_TARGETS;
- `backfill --dry-run` over a FIFO (it blocked; the real run dead-letters it).

The pure pieces (bounded reading, per-line decoding, link classification) are tested without Beam below.
"""
from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import random
import struct
import subprocess
import sys
import threading
import tracemalloc
import zlib
from pathlib import Path

import pytest

from pipeline.bounded_read import MAX_INPUT_BYTES, InputTooLarge, read_limited
from pipeline.local_match import local_matches
from pipeline.sources import read_matched
from tests.conftest import ROOT, read_output, run_cli
from transforms.decode import DecodeError, text_lines
from transforms.parse import parse_raw
from transforms.records import MAX_TARGETS, ParseError

BEAM_BUFFER = 16 * 1024 * 1024  # Beam's CompressedFile read buffer: what one read() returned at most
WORDS = ("ceasefire border talks minister army village road water market school winter harvest bridge river "
         "council election court trade railway hospital port factory grain mayor police storm flood doctor "
         "teacher museum festival airport ferry bank union strike parliament budget").split()
SECRET = "newsbeam-secret-4f1c9a"  # in the run's environment and in a file outside the input tree


def _record(i: int, **extra) -> str:
    rng = random.Random(i)
    text = f"Report {i}: " + " ".join(rng.choice(WORDS) for _ in range(60)) + "."
    return json.dumps({"text": text, "published": "2020-11-10", "title": f"Report {i}", **extra})


def _bomb(path: Path, mib: int = 1024) -> None:
    """One gzip member of about 1 MB that decompresses to `mib` MiB of zeros. Each MiB is deflated after a full
    flush, so its compressed bytes are the same every time and are written `mib` times (built in about a second)."""
    zeros = bytes(2**20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    with open(path, "wb") as fh:
        fh.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")  # gzip header: deflate, no name, no mtime
        for _ in range(mib):
            fh.write(block)
        fh.write(deflate.flush(zlib.Z_FINISH) + struct.pack("<II", crc, (mib * 2**20) & 0xFFFFFFFF))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """One CLI run over a directory holding every case of this module, plus one file in three spellings."""
    base = tmp_path_factory.mktemp("limits")
    inp, outside, spell = base / "in", base / "outside", base / "spell"
    for d in (inp / "sub", outside, spell):
        d.mkdir(parents=True)
    pad = "<p>" + "page markup " * 40_000 + "</p>"  # ~480 KB of a field the parser ignores, per line
    big = "\n".join(_record(i, html=pad) for i in range(40)) + "\n"
    assert len(big.encode()) > BEAM_BUFFER + 2 * 2**20
    with gzip.open(inp / "big.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(big)
    _bomb(inp / "bomb.jsonl.gz")
    lines = [_record(100 + i).encode() for i in range(12)]
    lines[4] = lines[4].replace(b"Report", b"Caf\xe9 report", 1)  # Latin-1, not UTF-8
    lines[7] = lines[7].replace(b"Report", b"Re\x00port", 1)
    (inp / "mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (inp / "latin1.txt").write_bytes("date 2020-11-10\nCaf\xe9 talks on the ceasefire.\n".encode("latin-1"))
    (inp / "targets.jsonl").write_text("\n".join([
        _record(200, targets=[f"Target {n}" for n in range(MAX_TARGETS + 1)]),
        _record(201, targets=[f"Target {n}" for n in range(MAX_TARGETS)]),
        _record(202, targets=["Armenia"])]) + "\n", encoding="utf-8")
    (outside / "secret.txt").write_text(f"date 2020-11-10\n{SECRET} is not news.\n", encoding="utf-8")
    links = {"passwd.txt": "/etc/passwd", "environ.jsonl": "/proc/self/environ", "foreign.txt": outside / "secret.txt",
             "foreign_dir": outside, "linked_dir": inp / "sub", "sub/dangling.jsonl": inp / "nowhere.jsonl",
             "loop_a": inp / "loop_b", "loop_b": inp / "loop_a", "alias.jsonl": inp / "mixed.jsonl"}
    for name, target in links.items():
        os.symlink(target, inp / name)
    (inp / "sub" / "good.jsonl").write_text(_record(300) + "\n", encoding="utf-8")
    (spell / "bad.txt").write_text("no date line here\n", encoding="utf-8")

    out = base / "out"
    env = dict(os.environ, NEWSBEAM_TEST_SECRET=SECRET)
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", "--input", str(inp), f"{spell}/bad.txt", f"{spell}//bad.txt",
         f"{spell}/../spell/bad.txt", "--output", str(out), "--skip-models"],
        cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stdout = proc.stdout
    res = read_output(out)
    return {"in": inp, "spell": spell, "out": out, "stdout": stdout, **res,
            "dead_by_ref": {d["input_ref"]: d for d in res["dead"]},
            "written_refs": sorted(a["input_ref"] for a in res["articles"])}


def _refs(h: dict, name: str) -> list[str]:
    prefix = f"{h['in']}/{name}"
    return [r for r in h["written_refs"] if r == prefix or r.startswith(prefix + ":")]


def test_a_compressed_input_over_16_mib_is_read_whole(hostile):
    assert len(_refs(hostile, "big.jsonl.gz")) == 40
    assert not [r for r in hostile["dead_by_ref"] if "big.jsonl.gz" in r]


def test_a_gzip_bomb_is_one_dead_letter_naming_the_limit_and_is_never_held(hostile):
    dead = hostile["dead_by_ref"][f"{hostile['in']}/bomb.jsonl.gz"]
    assert "MAX_INPUT_BYTES" in dead["error"] and "256 MiB" in dead["error"], dead
    assert not dead.get("excerpt")


def test_reading_a_gzip_bomb_never_holds_more_than_the_limit(tmp_path):
    """The read path the run uses, measured by what Python allocates (tracemalloc sees every bytes object the
    decompressor returns): the 1 GiB bomb costs the 256 MiB limit plus a chunk, never its decompressed size.
    Allocations, unlike a process's peak RSS, do not depend on what else the interpreter or machine is doing."""
    _bomb(tmp_path / "bomb.jsonl.gz")
    path = str(tmp_path / "bomb.jsonl.gz")
    tracemalloc.start()
    try:
        raw = read_matched((path, {"ref": path, "path": path, "mtime": None}))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "MAX_INPUT_BYTES" in raw["error"] and raw["data"] == b"", raw
    assert peak < MAX_INPUT_BYTES + 64 * 2**20, f"peak allocation {peak / 2**20:.0f} MiB"


def test_a_bad_byte_or_nul_costs_only_its_jsonl_line(hostile):
    mixed = f"{hostile['in']}/mixed.jsonl"
    assert _refs(hostile, "mixed.jsonl") == sorted(f"{mixed}:{n}" for n in range(1, 13) if n not in (5, 8))
    assert "not valid UTF-8 (byte 0xe9" in hostile["dead_by_ref"][f"{mixed}:5"]["error"]
    assert "NUL byte" in hostile["dead_by_ref"][f"{mixed}:8"]["error"]
    # a seed file is one document: decoded whole, one dead letter
    assert "not valid UTF-8" in hostile["dead_by_ref"][f"{hostile['in']}/latin1.txt"]["error"]


def test_links_out_of_the_input_tree_are_dead_letters_without_content(hostile):
    for name in ("passwd.txt", "environ.jsonl", "foreign.txt", "foreign_dir"):
        dead = hostile["dead_by_ref"][f"{hostile['in']}/{name}"]
        assert "outside the input folder" in dead["error"], dead
        assert not dead.get("excerpt"), dead
    everything = "".join(p.read_text(errors="replace") for p in hostile["out"].rglob("*") if p.is_file())
    assert SECRET not in everything and "root:x:0:0" not in everything


def test_linked_folders_dangling_and_looping_links_under_a_folder_are_each_a_dead_letter(hostile):
    dead = hostile["dead_by_ref"]
    assert "symbolic link to a directory" in dead[f"{hostile['in']}/linked_dir"]["error"]
    assert "dangling symbolic link" in dead[f"{hostile['in']}/sub/dangling.jsonl"]["error"]
    for name in ("loop_a", "loop_b"):
        assert "symbolic link loop" in dead[f"{hostile['in']}/{name}"]["error"]
    assert _refs(hostile, "sub/good.jsonl") == [f"{hostile['in']}/sub/good.jsonl:1"]


def test_a_file_is_read_once_whatever_its_spelling(hostile):
    assert not [r for r in hostile["written_refs"] + list(hostile["dead_by_ref"]) if "alias.jsonl" in r]
    spelled = [d for d in hostile["dead"] if "bad.txt" in d["input_ref"]]
    assert [d["input_ref"] for d in spelled] == [f"{hostile['spell']}/bad.txt"]


def test_a_record_with_too_many_targets_is_a_dead_letter(hostile):
    tref = f"{hostile['in']}/targets.jsonl"
    assert f"too many targets ({MAX_TARGETS + 1} > {MAX_TARGETS}" in hostile["dead_by_ref"][f"{tref}:1"]["error"]
    assert _refs(hostile, "targets.jsonl") == [f"{tref}:2", f"{tref}:3"]
    kept = {a["input_ref"]: a for a in hostile["articles"]}
    assert len(kept[f"{tref}:2"]["targets"]) == MAX_TARGETS


def test_the_summary_balances(hostile):
    n_written, n_dup, n_dead = len(hostile["articles"]), len(hostile["duplicates"]), len(hostile["dead"])
    assert (f"read {n_written + n_dup + n_dead}, written {n_written}, duplicates {n_dup}, "
            f"dead-lettered {n_dead}") in hostile["stdout"], hostile["stdout"]
    assert "every record accounted for" in hostile["stdout"]


def test_dry_run_does_not_open_a_fifo(tmp_path):
    """The dry run reads as the real run does, so a FIFO is a counted reason, never opened. A helper thread
    opens the FIFO's write end (which waits for a reader): a dry run that opens the FIFO meets it and reads an
    empty file instead of hanging, which the test sees; afterwards the test opens the read end itself, which
    releases the helper either way."""
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "good.jsonl").write_text(_record(1) + "\n", encoding="utf-8")
    fifo = inp / "pipe.jsonl"
    os.mkfifo(fifo)
    os.symlink("/etc/passwd", inp / "passwd.txt")
    writer = threading.Thread(target=lambda: os.close(os.open(fifo, os.O_WRONLY)), daemon=True)
    writer.start()
    try:
        proc = run_cli(["backfill", "--since", "2020-11-01", "--until", "2020-11-30", "--input", str(inp),
                        "--output", str(tmp_path / "out"), "--dry-run"])
    finally:
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        writer.join()
        os.close(reader)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2020-11-10  1" in proc.stdout, proc.stdout
    assert "not a regular file (a FIFO)" in proc.stdout, proc.stdout
    assert "outside the input folder" in proc.stdout, proc.stdout
    assert "(unreadable: would be dead letters)  2" in proc.stdout, proc.stdout


# ------------------------------------------------------------------ the pure pieces, without Beam
COMPRESSORS = {"gzip": gzip.compress, "bzip2": bz2.compress, "lzma": lzma.compress, "deflate": zlib.compress,
               "uncompressed": bytes}


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_read_limited_reads_past_beams_buffer_and_stops_at_the_limit(compression):
    data = random.Random(0).randbytes(2**20) + b"x" * (BEAM_BUFFER + 2**20)
    packed = COMPRESSORS[compression](data)
    assert read_limited(io.BytesIO(packed), compression) == data
    assert read_limited(io.BytesIO(packed), compression, limit=len(data)) == data
    with pytest.raises(InputTooLarge, match="MAX_INPUT_BYTES"):
        read_limited(io.BytesIO(packed), compression, limit=len(data) - 1)


def test_the_bomb_is_a_valid_gzip_of_its_size(tmp_path):
    _bomb(tmp_path / "b.gz", mib=8)
    assert os.path.getsize(tmp_path / "b.gz") < 2**16
    assert gzip.decompress((tmp_path / "b.gz").read_bytes()) == bytes(8 * 2**20)
    with open(tmp_path / "b.gz", "rb") as fh, pytest.raises(InputTooLarge):
        read_limited(fh, "gzip", limit=2**20)


def test_read_limited_reads_concatenated_gzip_members():
    assert read_limited(io.BytesIO(gzip.compress(b"a\n") + gzip.compress(b"b\n")), "gzip") == b"a\nb\n"


def test_the_default_limit_is_256_mib():
    assert MAX_INPUT_BYTES == 256 * 2**20


def test_text_lines_decodes_each_line_on_its_own():
    data = b'\xef\xbb\xbf{"a": 1}\n\n{"b": "caf\xe9"}\r\n{"c": "\x00"}\n  \n{"d": 4}'
    got = list(text_lines(data))
    assert [n for n, _ in got] == [1, 3, 4, 6]
    assert got[0][1] == '{"a": 1}' and got[3][1] == '{"d": 4}'
    assert isinstance(got[1][1], DecodeError) and "byte 0xe9 at column 11" in str(got[1][1])
    assert isinstance(got[2][1], DecodeError) and "NUL byte" in str(got[2][1])
    assert [line for _, line in text_lines('{"a": 1}\n{"b": 2}\n'.encode("utf-16"))] == ['{"a": 1}', '{"b": 2}']


def test_parse_raw_keeps_the_good_lines_around_an_undecodable_one():
    data = b"\n".join([_record(1).encode(), b'{"text": "caf\xe9"}', _record(2).encode()])
    got = [(ref, isinstance(res, dict)) for ref, res in parse_raw({"ref": "f.jsonl", "data": data})]
    assert got == [("f.jsonl:1", True), ("f.jsonl:2", False), ("f.jsonl:3", True)]


def test_targets_over_the_limit_are_refused():
    line = _record(1, targets=[f"T{n}" for n in range(MAX_TARGETS + 1)])
    [(_ref, res)] = parse_raw({"ref": "f.jsonl", "data": line.encode()})
    assert isinstance(res, ParseError) and "too many targets" in str(res)


def test_local_matches_resolve_links_once_and_never_leave_the_tree(tmp_path):
    inp = tmp_path / "in"
    (inp / "sub").mkdir(parents=True)
    (inp / "a.jsonl").write_text("{}\n")
    (tmp_path / "secret.txt").write_text("x")
    os.symlink(inp / "a.jsonl", inp / "b.jsonl")
    os.symlink(tmp_path / "secret.txt", inp / "c.jsonl")
    os.symlink(inp / "sub", inp / "d")
    os.symlink(inp / "e", inp / "e")
    got = {Path(m.path).name: m for m in local_matches(f"{inp}/**")}
    assert got["a.jsonl"].real == got["b.jsonl"].real == str(inp / "a.jsonl") and got["b.jsonl"].link
    assert got["c.jsonl"].real is None and "outside the input folder" in got["c.jsonl"].reason
    assert "symbolic link to a directory" in got["d"].reason
    assert "symbolic link loop" in got["e"].reason
    assert "sub" not in got  # a real folder under ** is walked, not an input
