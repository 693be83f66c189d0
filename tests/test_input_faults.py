"""Inputs that are not plain readable files, through the real CLI: a FIFO, a
directory and a dangling symlink matched by a glob, a file name that is not UTF-8, a file whose mtime is in
year 10000, and one file matched by two patterns. Each odd input is its own dead letter naming it, the good
files are written, nothing hangs, and the summary balances. Plus `--output` naming a regular file is a usage
error before anything runs."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import read_output, run_cli

GOOD = {"text": "Armenia and Azerbaijan said the ceasefire held overnight along the whole line of contact.",
        "published": "2020-11-10", "title": "Ceasefire holds"}


@pytest.fixture
def odd_inputs():
    """A folder on tmpfs when there is one (ext4 cannot store a year-10000 mtime; tmpfs can)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix="newsbeam-odd-", dir=base))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_odd_inputs_are_dead_letters_and_the_run_goes_on(odd_inputs, tmp_path):
    inp = odd_inputs / "in"
    inp.mkdir()
    (inp / "good.jsonl").write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    bad_lines = [json.dumps(dict(GOOD, text=f"Story {i} about the ceasefire.", published="not a date"))
                 for i in range(2)]
    (inp / "bad.jsonl").write_text("\n".join(bad_lines) + "\n", encoding="utf-8")
    os.mkfifo(inp / "pipe.jsonl")
    (inp / "folder.jsonl").mkdir()
    os.symlink(inp / "nowhere.jsonl", inp / "dangling.jsonl")
    latin1 = os.fsencode(str(inp)) + b"/caf\xe9.jsonl"  # a Latin-1 file name: not valid UTF-8
    with open(latin1, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(dict(GOOD, text="Another story from the cafe about the ceasefire.")) + "\n")
    future = inp / "future.jsonl"
    future.write_text(json.dumps(dict(GOOD, text="A story from the far future about the ceasefire.")) + "\n")
    os.utime(future, (253_402_400_000, 253_402_400_000))  # 10000-01-02
    year_10000 = os.stat(future).st_mtime > 253_402_300_799  # the filesystem kept it (tmpfs does, ext4 not)

    out = tmp_path / "out"
    # bad.jsonl is matched by both patterns: it must be read once (2 dead letters, not 4 counted and 2 kept)
    proc = run_cli(["run", "--input", str(inp / "*.jsonl"), str(inp / "bad*"), "--output", str(out),
                    "--targets", "Armenia"], timeout=3600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = read_output(out)
    dead = {Path(d["input_ref"].split(":")[0]).name: d["error"] for d in res["dead"]}
    written = sorted(Path(a["input_ref"].split(":")[0]).name for a in res["articles"])
    assert written == ["good.jsonl"] + ([] if year_10000 else ["future.jsonl"])
    assert "not a regular file" in dead["pipe.jsonl"] and "FIFO" in dead["pipe.jsonl"]
    assert "directory" in dead["folder.jsonl"]
    assert "dangling symbolic link" in dead["dangling.jsonl"]
    assert "not valid UTF-8" in dead["caf\\xe9.jsonl"]
    if year_10000:
        assert "modification time" in dead["future.jsonl"] and "out of range" in dead["future.jsonl"]
    assert sum(1 for d in res["dead"] if d["input_ref"].startswith(str(inp / "bad.jsonl"))) == 2
    n_dead = 6 + year_10000
    assert len(res["dead"]) == n_dead
    assert f"read {len(written) + n_dead}, written {len(written)}, duplicates 0, dead-lettered {n_dead}" \
        in proc.stdout, proc.stdout
    assert "every record accounted for" in proc.stdout
    assert "4 inputs skipped" in proc.stdout  # FIFO, directory, dangling link, non-UTF-8 name: said without --verbose


def test_output_that_is_a_regular_file_is_a_usage_error(tmp_path):
    (tmp_path / "in.jsonl").write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    target = tmp_path / "out"
    target.write_text("not a folder")
    proc = run_cli(["run", "--input", str(tmp_path / "in.jsonl"), "--output", str(target), "--targets", "Armenia"])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--output" in proc.stderr and "is a file" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert target.read_text() == "not a folder"
