"""Sources: files matched by patterns on any Beam filesystem, read whole (MatchFiles + ReadMatches), and RSS/Atom
feeds over HTTP (`ReadFeeds`, which lives in pipeline/feeds.py with its HTTP client and is re-exported here).

A file or feed that cannot be read becomes a raw input carrying the error, so it is dead-lettered, not lost.
"""
from __future__ import annotations

import datetime as dt
import glob
import json
import logging
import os
import stat
from typing import Iterator, Sequence

import apache_beam as beam

from transforms.common import counter

log = logging.getLogger("newsbeam.sources")


def printable_path(path: str) -> str:
    """A path as valid UTF-8 text: a name that is not UTF-8 (undecodable bytes kept by Python as surrogate
    escapes) shows those bytes as \\xNN, so it can be named in a dead letter and carried by Beam's coders."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")


def _skipped(ref: str, reason: str) -> dict:
    """A matched path that is not a readable regular file: a raw input carrying the reason (a dead letter)."""
    counter("inputs_skipped").inc()
    log.warning("input %s skipped: %s", ref, reason)
    return {"ref": ref, "data": b"", "fetched_at": None, "error": reason}


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def match_pattern(pattern: str) -> Iterator[tuple[str, dict]]:
    """(ref, what to read) for every path a pattern matches: {"path", "mtime"} for a file to read, or a raw
    input with `error` for a path that cannot be one (a file name that is not UTF-8; on local disks, a directory
    or a dangling symbolic link that a glob matched: Beam's match leaves those out silently)."""
    from apache_beam.io.filesystems import FileSystems

    for meta in FileSystems.match([pattern])[0].metadata_list:
        ref = printable_path(meta.path)
        if ref != meta.path:
            yield ref, _skipped(ref, "file name is not valid UTF-8; rename the file to read it")
        else:
            yield ref, {"path": meta.path, "mtime": meta.last_updated_in_seconds}
    if "://" in pattern or "**" in pattern or not glob.has_magic(pattern):
        return
    for path in glob.glob(pattern):
        if os.path.isdir(path):
            yield printable_path(path), _skipped(printable_path(path), "a directory, not a file (the pattern "
                                                                        "matched a folder; use folder/* to read it)")
        elif os.path.islink(path) and not os.path.exists(path):
            yield printable_path(path), _skipped(printable_path(path), "a dangling symbolic link (its target "
                                                                        f"{printable_path(os.readlink(path))} does "
                                                                        "not exist)")


def read_matched(item: tuple[str, dict]) -> dict:
    """A matched path -> a raw input {ref, data, fetched_at}, or one carrying `error` (a dead letter): a
    non-regular file (a FIFO would block the read forever), an unreadable file, an mtime out of range."""
    from apache_beam.io.filesystems import CompressionTypes, FileSystems

    ref, info = item
    if "error" in info:
        return info
    path = info["path"]
    if "://" not in path:
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            return _skipped(ref, f"cannot read file: {type(exc).__name__}: {exc}")
        if not stat.S_ISREG(mode):
            return _skipped(ref, f"not a regular file ({_kind(mode)}): reading it could block forever")
    try:
        mtime = (dt.datetime.fromtimestamp(info["mtime"], dt.timezone.utc).replace(microsecond=0).isoformat()
                 if info.get("mtime") else None)
    except (ValueError, OverflowError, OSError):
        return {"ref": ref, "data": b"", "fetched_at": None,
                "error": f"file modification time out of range ({info['mtime']:.0f} s after 1970); fix the "
                         f"file's timestamp (it becomes the articles' fetched_at)"}
    raw = {"ref": ref, "mtime": mtime, "fetched_at": mtime}
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as fh:
            raw["data"] = fh.read()
    except Exception as exc:  # unreadable file: keep it as a record with the reason
        raw["data"] = b""
        raw["error"] = f"cannot read file: {type(exc).__name__}: {exc}"
    return raw


def _first(infos):
    """One per path: a file matched by several patterns is read once (its records counted once)."""
    return min(infos, key=lambda i: json.dumps(i, sort_keys=True, default=str))


class ReadInputFiles(beam.PTransform):
    """Patterns -> raw inputs {ref, data, fetched_at}; every matched path once, whatever matches it.

    Paths that are not readable regular files (FIFO, socket, device, directory, dangling symlink, a name that
    is not UTF-8, an mtime out of range) become raw inputs carrying the reason, so they are dead letters named
    in dead_letter/ and counted (`inputs_skipped` for what is not a file), not hangs, crashes or silence."""

    def __init__(self, patterns: Sequence[str]):
        super().__init__()
        self.patterns = list(patterns)

    def expand(self, pbegin):
        return (pbegin
                | "Patterns" >> beam.Create(self.patterns)
                | "Match" >> beam.FlatMap(match_pattern)
                | "OncePerPath" >> beam.CombinePerKey(_first)
                | "Spread" >> beam.Reshuffle()
                | "Read" >> beam.Map(read_matched))


def check_patterns(patterns: Sequence[str]) -> list[str]:
    """Patterns that match no file (checked before the run, so a typo is a clear error, not an empty output)."""
    from apache_beam.io.filesystems import FileSystems

    missing = []
    for pattern in patterns:
        try:
            result = FileSystems.match([pattern])[0]
            if not result.metadata_list:
                missing.append(pattern)
        except Exception as exc:  # e.g. gs:// without apache-beam[gcp] installed: say why
            missing.append(f"{pattern} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
    return missing


def __getattr__(name: str):
    """`from pipeline.sources import ReadFeeds`: imported on first use (the HTTP client is not needed for files)."""
    if name == "ReadFeeds":
        from .feeds import ReadFeeds

        return ReadFeeds
    raise AttributeError(name)
