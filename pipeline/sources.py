"""Sources: files matched by patterns on any Beam filesystem, each read whole (decompressed, in chunks, up to
MAX_INPUT_BYTES: pipeline.bounded_read), RSS/Atom feeds over HTTP (`ReadFeeds`, which lives in pipeline/feeds.py
with its HTTP client) and article pages over HTTP (`ReadPages`, in pipeline/pages.py, --urls), both re-exported
here.

A file, feed or page that cannot be read becomes a raw input carrying the error, so it is dead-lettered, not lost.
Local patterns are matched by pipeline.local_match (links resolved once, none followed out of the input tree).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat
from typing import Iterable, Iterator, Sequence

import apache_beam as beam

from transforms.common import counter

from .bounded_read import MAX_INPUT_BYTES, InputTooLarge, read_limited, too_large
from .local_match import local_matches

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
    """A matched path that is not a readable regular file: a raw input carrying the reason (a dead letter;
    counted as `inputs_skipped` when read_matched meets it, once however many patterns matched it)."""
    log.warning("input %s skipped: %s", ref, reason)
    return {"ref": ref, "data": b"", "fetched_at": None, "error": reason}


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def match_pattern(pattern: str) -> Iterator[tuple[str, dict]]:
    """(key, what to read) for every path a pattern matches. The key is the file's real path, so a file is
    read once whatever its spelling (`in/a`, `in//a`, `in/../in/a`, a link to it); the value is {"ref", "path",
    "mtime"} (`ref`: the name as matched, `path`: the real path, read) or a raw input carrying `error` for a
    path that is not read (a file name that is not UTF-8; on local disks, a directory, a dangling link, a link
    loop, a link to a directory or out of the input tree: pipeline.local_match), keyed by its name."""
    if "://" not in pattern:
        for m in local_matches(pattern):
            ref = printable_path(m.path)
            if ref != m.path:
                yield ref, _skipped(ref, "file name is not valid UTF-8; rename the file to read it")
            elif m.reason:
                yield ref, _skipped(ref, m.reason)
            elif printable_path(m.real) != m.real:
                yield ref, _skipped(ref, f"a symbolic link to {printable_path(m.real)}, a file name that is not "
                                         f"valid UTF-8; rename the file to read it")
            else:
                yield m.real, {"ref": ref, "path": m.real, "mtime": m.mtime, "link": m.link}
        return
    from apache_beam.io.filesystems import FileSystems

    for meta in FileSystems.match([pattern])[0].metadata_list:
        ref = printable_path(meta.path)
        if ref != meta.path:
            yield ref, _skipped(ref, "file name is not valid UTF-8; rename the file to read it")
        else:
            yield ref, {"ref": ref, "path": meta.path, "mtime": meta.last_updated_in_seconds}


def read_matched(item: tuple[str, dict], limit: int = MAX_INPUT_BYTES) -> dict:
    """A matched path -> a raw input {ref, data, fetched_at}, or one carrying `error` (a dead letter, with no
    data, so no excerpt of it is copied): a non-regular file (a FIFO would block the read forever), an
    unreadable file, an mtime out of range, more than `limit` bytes once decompressed. Read whole, in chunks."""
    from apache_beam.io.filesystems import CompressionTypes, FileSystems

    key, info = item
    if "error" in info:
        counter("inputs_skipped").inc()
        return info
    ref, path = info.get("ref", key), info["path"]
    compression = CompressionTypes.detect_compression_type(path)
    if "://" not in path:
        try:
            st = os.stat(path)
        except OSError as exc:
            return _unread(ref, f"cannot read file: {type(exc).__name__}: {exc}", skipped=True)
        if not stat.S_ISREG(st.st_mode):
            return _unread(ref, f"not a regular file ({_kind(st.st_mode)}): reading it could block forever",
                           skipped=True)
        if compression == CompressionTypes.UNCOMPRESSED and st.st_size > limit:
            return _unread(ref, too_large(limit, compressed=False))
    try:
        mtime = (dt.datetime.fromtimestamp(info["mtime"], dt.timezone.utc).replace(microsecond=0).isoformat()
                 if info.get("mtime") else None)
    except (ValueError, OverflowError, OSError):
        return _unread(ref, f"file modification time out of range ({info['mtime']:.0f} s after 1970); fix the "
                            f"file's timestamp (it becomes the articles' fetched_at)")
    raw = {"ref": ref, "mtime": mtime, "fetched_at": mtime}
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            raw["data"] = read_limited(fh, compression, limit)
    except InputTooLarge as exc:
        return _unread(ref, str(exc))
    except Exception as exc:  # unreadable file: keep it as a record with the reason
        return _unread(ref, f"cannot read file: {type(exc).__name__}: {exc}")
    return raw


def _unread(ref: str, reason: str, skipped: bool = False) -> dict:
    """A file that was not read (whole): a raw input carrying the reason and no data (a dead letter)."""
    if skipped:
        counter("inputs_skipped").inc()
    log.warning("input %s not read: %s", ref, reason)
    return {"ref": ref, "data": b"", "fetched_at": None, "error": reason}


def _numbered_matches(item: tuple[int, str]) -> Iterator[tuple[str, tuple[int, dict]]]:
    """match_pattern with the pattern's position, so the first --input spelling of a file is the one kept."""
    index, pattern = item
    for key, info in match_pattern(pattern):
        yield key, (index, info)


def _first(infos: Iterable[tuple[int, dict]]) -> tuple[int, dict]:
    """One per file: the first pattern's match, a real name before a link's (an associative choice, so the
    combine may run in stages)."""
    return min(infos, key=lambda i: (i[0], bool(i[1].get("link")), i[1].get("ref", ""),
                                     json.dumps(i[1], sort_keys=True, default=str)))


def _unnumbered(key: str, numbered: tuple[int, dict]) -> tuple[str, dict]:
    return key, numbered[1]


class ReadInputFiles(beam.PTransform):
    """Patterns -> raw inputs {ref, data, fetched_at}; every file once (by its real path), named as the first
    pattern that matched it spells it, whatever else matches it.

    Paths that are not readable regular files (FIFO, socket, device, directory, dangling symlink, link loop,
    link to a folder or out of the input tree, a name that is not UTF-8, an mtime out of range, a file over
    MAX_INPUT_BYTES) become raw inputs carrying the reason and no data, so they are dead letters named in
    dead_letter/ and counted (`inputs_skipped` for what is not a file), not hangs, crashes or silence."""

    def __init__(self, patterns: Sequence[str]):
        super().__init__()
        self.patterns = list(patterns)

    def expand(self, pbegin):
        return (pbegin
                | "Patterns" >> beam.Create(list(enumerate(self.patterns)))
                | "Match" >> beam.FlatMap(_numbered_matches)
                | "OncePerPath" >> beam.CombinePerKey(_first)
                | "Unnumber" >> beam.MapTuple(_unnumbered)
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
    """`from pipeline.sources import ReadFeeds` (or ReadPages): imported on first use (the HTTP client is not
    needed for files)."""
    if name == "ReadFeeds":
        from .feeds import ReadFeeds

        return ReadFeeds
    if name == "ReadPages":
        from .pages import ReadPages

        return ReadPages
    raise AttributeError(name)
