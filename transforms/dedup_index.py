"""The cross-run dedup index on disk: content-named shards of one row per written article, checked on every read
and rebuilt from the written partitions when a shard is damaged.

Why checked: a shard that is empty, truncated or edited still looks like a shard, and every later run would read
it (or skip rewriting it, since its name exists) and silently forget or misjudge the articles it held. A shard's
name is the sha256 of its bytes, so the check is exact and needs no extra checksum; the rows are parsed strictly.
Why rebuildable: the articles' own JSONL partitions under the output root hold everything a row is made of (id,
published day, text and title for the signature, the record's fields for its fingerprint).

Only regular files are opened: the folder is listed first, and a FIFO, socket or device in it is refused by name
(opening a FIFO blocks forever). See docs/dedup.md for the layout.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from modeling.minhash import SCHEME_VERSION, SIG_DTYPE, text_signature

from .common import counter
from .files import write_atomically

log = logging.getLogger("newsbeam.dedup")

# A member of an exact group or an LSH bucket: (prio, published, id, signature bytes[, record]); 0 = already written.
INDEXED, NEW = 0, 1
SHARD_GLOB = "part-*.jsonl"
_SHARD_NAME = re.compile(r"part-([0-9a-f]{32})\.jsonl")
# the batch article partitions (pipeline.layout.READ_GLOBS[ARTICLES][0]); streaming files are never indexed
PARTITION_GLOB = "dt=*/articles-*.jsonl"
_ROW_KEYS, _ROW_REQUIRED = {"exact", "id", "published", "sig", "record"}, {"exact", "id", "published", "sig"}
_HEX = re.compile(r"[0-9a-f]+")


class IndexDamaged(ValueError):
    """The index cannot be used as it is and was not repaired; the message names the file and the way out."""


def rebuild_hint(index_root: str, shingle_size: int = 3, num_perm: int = 128) -> str:
    """The command that rebuilds the index of `index_root` from its written partitions (`main` below)."""
    extra = "".join(f" --{flag} {value}" for flag, value, default in
                    (("shingle-size", shingle_size, 3), ("num-perm", num_perm, 128)) if value != default)
    return f"rebuild it with `python -m transforms.dedup_index --rebuild --output {index_root}{extra}`"


# ---------------------------------------------------------------------------------------------- rows
def index_dir(index_root: str, shingle_size: int = 3, num_perm: int = 128) -> str:
    """<index_root>/_state/minhash/v<scheme>-k<shingle size>-p<num_perm>/ (bands/rows/threshold are not part of
    it: band keys are recomputed from the stored signature, so the threshold may change between runs)."""
    return FileSystems.join(index_root, "_state", "minhash", f"v{SCHEME_VERSION}-k{shingle_size}-p{num_perm}")


RECORD_FIELDS = ("source", "url", "title", "text", "published", "published_at", "fetched_at", "input_ref", "guid",
                 "targets")


def record_fingerprint(article: dict) -> str:
    """What tells a rerun of the same input record from another copy of an article with the same id: a hash of
    the parsed record (its input_ref, source, fetched_at and dates too, not only the id's url/title/text)."""
    key = json.dumps([article.get(k) for k in RECORD_FIELDS], ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def new_member(article: dict, shingle_size: int, num_perm: int, seed: int) -> tuple[str, tuple]:
    exact, sig = text_signature(article["text"], shingle_size, num_perm, seed, title=article.get("title"))
    return exact, (NEW, article["published"], article["id"], sig.tobytes(), record_fingerprint(article))


def index_row(member: tuple, exact: str) -> dict:
    _prio, published, article_id, sig, record = member
    return {"id": article_id, "published": published, "exact": exact, "sig": base64.b64encode(sig).decode("ascii"),
            "record": record}


def member_of_index_row(row: dict) -> tuple[str, tuple]:
    """(exact key, member); `record` is None for rows written before the record fingerprint was kept."""
    return row["exact"], (INDEXED, row["published"], row["id"], base64.b64decode(row["sig"]), row.get("record"))


def parse_index_row(line: str, num_perm: int) -> dict:
    """One shard line -> its row, or ValueError saying what is wrong. Strict: a row that parses but carries a
    wrong type, a short signature or an extra key would give wrong dedup decisions, not an error, later."""
    try:
        row = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(row, dict):
        raise ValueError(f"not a JSON object ({type(row).__name__})")
    if not _ROW_REQUIRED <= row.keys() <= _ROW_KEYS:
        raise ValueError(f"keys {sorted(row)}, expected {sorted(_ROW_REQUIRED)} and optionally 'record'")
    if not isinstance(row["id"], str) or not row["id"] or row["id"] != row["id"].strip():
        raise ValueError(f"id {row['id']!r} is not a non-empty string")
    if not isinstance(row["exact"], str) or len(row["exact"]) != 32 or not _HEX.fullmatch(row["exact"]):
        raise ValueError(f"exact {row['exact']!r} is not 32 hex digits")
    published = row["published"]
    try:
        if not isinstance(published, str) or dt.date.fromisoformat(published).isoformat() != published:
            raise ValueError
    except ValueError:
        raise ValueError(f"published {published!r} is not a YYYY-MM-DD date") from None
    try:
        sig = base64.b64decode(row["sig"], validate=True) if isinstance(row["sig"], str) else None
    except binascii.Error:
        sig = None
    if sig is None or len(sig) != num_perm * SIG_DTYPE.itemsize:
        raise ValueError(f"sig is not the base64 of {num_perm} uint32 values")
    record = row.get("record")
    if record is not None and (not isinstance(record, str) or len(record) != 24 or not _HEX.fullmatch(record)):
        raise ValueError(f"record {record!r} is not null or 24 hex digits")
    return row


def shard_bytes(rows: Iterable[dict]) -> tuple[str, bytes]:
    """(file name, content) of a shard: rows sorted by id, named by the sha256 of the content, so the same rows
    always give the same file and a reader can tell a damaged file from its name alone."""
    lines = [json.dumps(r, sort_keys=True, separators=(",", ":")) for r in sorted(rows, key=lambda r: r["id"])]
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    return f"part-{hashlib.sha256(data).hexdigest()[:32]}.jsonl", data


def shard_of(article_id: str, shards: int) -> int:
    return int.from_bytes(hashlib.blake2b(article_id.encode("utf-8"), digest_size=8).digest(), "little") % shards


# ---------------------------------------------------------------------------------------------- files
def _local(path: str) -> bool:
    return "://" not in path


def file_kind(path: str) -> str:
    """'file' (a regular file, or a symbolic link to one), 'directory', 'missing', or what else it is. Remote
    filesystems (gs://, s3://) hold only objects: 'file'. Never opens the path."""
    if not _local(path):
        return "file"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "dangling symbolic link" if os.path.islink(path) else "missing"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "not a regular file"


def _refused(path: str, kind: str) -> IndexDamaged:
    return IndexDamaged(f"dedup index: {path} is a {kind}, not a regular file; it was not opened (a FIFO or device "
                        f"could block the run forever). The index folder holds only part-*.jsonl files: remove "
                        f"it, then run again")


def _read(path: str) -> bytes:
    kind = file_kind(path)
    if kind != "file":
        raise _refused(path, kind)
    with FileSystems.open(path, compression_type="uncompressed") as fh:
        return fh.read()


def folder_entries(directory: str) -> list[tuple[str, str]]:
    """(path, kind) of every entry of the index folder, sorted; [] when it does not exist yet."""
    if not _local(directory):
        found = FileSystems.match([FileSystems.join(directory, "*")])[0].metadata_list
        return sorted((m.path, "file") for m in found)
    kind = file_kind(directory)
    if kind == "missing":
        return []
    if kind != "directory":
        raise IndexDamaged(f"dedup index: {directory} is a {kind}, not a folder; move it away, then run again")
    with os.scandir(directory) as it:
        return sorted((e.path, file_kind(e.path)) for e in it)


@dataclass
class IndexState:
    """What a check found: the intact shards and the damaged ones, each with the reason."""
    intact: list[str] = field(default_factory=list)
    damaged: list[tuple[str, str]] = field(default_factory=list)


def check_shard(path: str, data: bytes | None = None) -> str | None:
    """None if the shard's bytes match its content-hash name, else why not."""
    match = _SHARD_NAME.fullmatch(path.rsplit("/", 1)[-1])
    if match is None:
        return "its name is not part-<32 hex digits of the sha256 of its content>.jsonl"
    data = _read(path) if data is None else data
    if not data:
        return "it is empty (0 bytes)"
    if hashlib.sha256(data).hexdigest()[:32] != match.group(1):
        return f"its content ({len(data)} bytes) does not match the sha256 in its name"
    return None


def check_index(directory: str) -> IndexState:
    """Every shard checked against its name (read once, never parsed). A FIFO, socket or device anywhere in the
    folder raises IndexDamaged without being opened; a directory in a shard's place is a damaged shard."""
    state = IndexState()
    for path, kind in folder_entries(directory):
        name = path.rsplit("/", 1)[-1]
        is_shard = name.startswith("part-") and name.endswith(".jsonl")
        if kind not in ("file", "directory", "missing", "dangling symbolic link"):
            raise _refused(path, kind)
        if not is_shard or kind == "missing":
            continue  # temporary files of a write in progress, or an entry gone since the listing
        if kind != "file":
            state.damaged.append((path, f"it is a {kind}, not a file"))
            continue
        reason = check_shard(path)
        (state.intact.append(path) if reason is None else state.damaged.append((path, reason)))
    return state


def shard_rows(path: str, num_perm: int = 128) -> list[dict]:
    """The rows of one shard, its hash checked again on the bytes it parses; IndexDamaged names the file."""
    data = _read(path)
    reason = check_shard(path, data)
    rows, last = [], None
    if reason is None:
        for n, line in enumerate(data.decode("utf-8", "replace").split("\n")[:-1], start=1):
            try:
                row = parse_index_row(line, num_perm)
            except ValueError as exc:
                reason = f"line {n}: {exc}"
                break
            if last is not None and row["id"] <= last:
                reason = f"line {n}: id {row['id']!r} is not after {last!r} (rows are sorted by id, once each)"
                break
            rows.append(row)
            last = row["id"]
    if reason is not None:
        root, shingle_size = directory_root(path)
        raise IndexDamaged(f"dedup index shard {path} is damaged ({reason}); "
                           f"{rebuild_hint(root, shingle_size, num_perm)}. Rerunning as is fails the same way")
    return rows


def directory_root(shard_path: str) -> tuple[str, int]:
    """(output root, shingle size) of a shard at <root>/_state/minhash/v<scheme>-k<size>-p<perm>/part-*.jsonl."""
    root, _state, _minhash, scheme, _name = shard_path.rsplit("/", 4)
    size = re.search(r"-k(\d+)-", scheme)
    return root, int(size.group(1)) if size else 3


def _remove(path: str, kind: str) -> None:
    """A damaged shard out of the way: a file, or an empty directory (a non-empty one is left to a person)."""
    if kind == "directory":
        try:
            os.rmdir(path)
        except OSError as exc:
            raise IndexDamaged(f"dedup index: {path} is a directory in a shard's place and could not be removed "
                               f"({exc.strerror}); move it away, then run again") from None
    elif kind != "missing":
        FileSystems.delete([path])


# ---------------------------------------------------------------------------------------------- rebuild
def article_row(article: dict, shingle_size: int = 3, num_perm: int = 128, seed: int = 1) -> dict:
    """The index row of a written article line: the row the run that wrote it made. The writer's schema prints
    UTC timestamps as `...Z`, the parsed record (whose fingerprint the row holds) as `...+00:00`: undone here."""
    parsed = dict(article)
    for key in ("published_at", "fetched_at"):
        if parsed.get(key) is not None:
            parsed[key] = dt.datetime.fromisoformat(parsed[key]).isoformat()
    exact, member = new_member(parsed, shingle_size, num_perm, seed)
    return index_row(member, exact)


def partition_files(index_root: str) -> list[str]:
    """The batch article files under the output root, sorted; a FIFO or device among them is refused unopened."""
    found = FileSystems.match([FileSystems.join(index_root, PARTITION_GLOB)])[0].metadata_list
    return sorted(m.path for m in found)


def parquet_only_days(index_root: str) -> list[str]:
    """Day folders holding Parquet articles but no JSONL (--format parquet): the rebuild reads JSONL only."""
    parquet = FileSystems.match([FileSystems.join(index_root, "dt=*/articles-*.parquet")])[0].metadata_list
    jsonl = {p.rsplit("/", 1)[0] for p in partition_files(index_root)}
    return sorted({m.path.rsplit("/", 1)[0] for m in parquet} - jsonl)


def rows_from_partitions(index_root: str, shingle_size: int = 3, num_perm: int = 128, seed: int = 1
                         ) -> tuple[dict[str, dict], int]:
    """({id: index row} of every written batch article, number of partition files read). An id on two lines
    (outputs older than the once-per-root rule) keeps the row of its earliest day, for determinism."""
    rows: dict[str, dict] = {}
    files = partition_files(index_root)
    for path in files:
        for n, line in enumerate(_read(path).decode("utf-8").split("\n"), start=1):
            if not line.strip():
                continue
            try:
                row = article_row(json.loads(line), shingle_size, num_perm, seed)
            except Exception as exc:  # noqa: BLE001 - any bad line stops the rebuild, naming the line
                raise IndexDamaged(f"cannot rebuild the dedup index: {path} line {n} is not a readable article "
                                   f"({type(exc).__name__}: {exc})") from None
            old = rows.get(row["id"])
            if old is None or (row["published"], row["record"]) < (old["published"], old["record"]):
                rows[row["id"]] = row
    return rows, len(files)


def _replace_shards(directory: str, entries: list[tuple[str, str]], rows: Iterable[dict],
                    rows_per_shard: int) -> list[str]:
    """Write `rows` as the index's shards, then remove every other shard. New shards go first, so a crash in
    between leaves rows twice (harmless, and the next rebuild tidies it), never missing."""
    rows = list(rows)
    shards = max(1, math.ceil(len(rows) / rows_per_shard))
    groups: dict[int, list[dict]] = {}
    for r in rows:
        groups.setdefault(shard_of(r["id"], shards), []).append(r)
    new = dict(shard_bytes(g) for g in groups.values())
    kinds = dict(entries)
    paths = []
    for name, data in sorted(new.items()):
        path = FileSystems.join(directory, name)
        if kinds.get(path) == "directory":
            _remove(path, "directory")
        if kinds.get(path) != "file" or check_shard(path) is not None:
            write_atomically(path, data)
        paths.append(path)
    for path, kind in entries:
        name = path.rsplit("/", 1)[-1]
        if name.startswith("part-") and name.endswith(".jsonl") and name not in new:
            _remove(path, kind)
    return paths


@dataclass
class Rebuilt:
    """What a rebuild did, for its log line and the CLI's summary."""
    directory: str
    articles: int
    partition_files: int
    shards: list[str]

    def line(self) -> str:
        return (f"rebuilt the dedup index {self.directory} from the {self.articles} written articles in "
                f"{self.partition_files} partition files: {len(self.shards)} shards")


def rebuild_index(index_root: str, shingle_size: int = 3, num_perm: int = 128, seed: int = 1,
                  rows_per_shard: int = 50_000) -> Rebuilt:
    """The index made again from the written articles alone (`python -m transforms.dedup_index --rebuild`),
    whatever its shards hold now (damaged, missing, or rows of articles a backfill has since replaced).
    Byte-identical to a rebuild of the same partitions, and what later runs read as usual."""
    directory = index_dir(index_root, shingle_size, num_perm)
    entries = folder_entries(directory)
    for path, kind in entries:
        if kind not in ("file", "directory", "missing", "dangling symbolic link"):
            raise _refused(path, kind)
    days = parquet_only_days(index_root)
    if days:
        raise IndexDamaged(f"cannot rebuild the dedup index from {index_root}: {days[0]} (and {len(days) - 1} more) "
                           f"holds Parquet articles only, and the rebuild reads the JSONL partitions")
    rows, files = rows_from_partitions(index_root, shingle_size, num_perm, seed)
    done = Rebuilt(directory, len(rows), files, _replace_shards(directory, entries, rows.values(), rows_per_shard))
    log.warning("dedup index: %s", done.line())
    return done


def _rebuild_blocker(index_root: str, state: IndexState, rows: dict[str, dict], num_perm: int) -> str | None:
    """Why the partitions cannot be trusted to hold what the index held, or None. Every row of the intact shards
    must come back unchanged (rows older than the record fingerprint: all but it), and something must be there."""
    if not rows:
        return f"there are no written articles ({PARTITION_GLOB}) under {index_root} to rebuild it from"
    for path in state.intact:
        for row in shard_rows(path, num_perm):
            again = rows.get(row["id"])
            if again is not None and "record" not in row:
                again = {k: v for k, v in again.items() if k != "record"}
            if again != row:
                return (f"the intact shard {path.rsplit('/', 1)[-1]} holds article {row['id']}, which "
                        f"{'no written partition has' if again is None else 'its written line gives otherwise'}")
    return None


def usable_shards(index_root: str, shingle_size: int = 3, num_perm: int = 128, seed: int = 1,
                  rows_per_shard: int = 50_000) -> list[str]:
    """The shards a run may read: the checked ones, or, when one is damaged and the written partitions hold all
    the intact ones do, the shards of an automatic rebuild (logged). Otherwise IndexDamaged names the shard and
    the rebuild command: running the same command again would fail the same way."""
    directory = index_dir(index_root, shingle_size, num_perm)
    state = check_index(directory)
    if not state.damaged:
        return state.intact
    path, reason = state.damaged[0]
    more = f" (and {len(state.damaged) - 1} more shards)" if len(state.damaged) > 1 else ""
    days = parquet_only_days(index_root)
    rows, files = rows_from_partitions(index_root, shingle_size, num_perm, seed) if not days else ({}, 0)
    blocker = (f"{days[0]} holds Parquet articles only" if days
               else _rebuild_blocker(index_root, state, rows, num_perm))
    if blocker is not None:  # the first line names the shard and the command (a CLI may show only that much)
        error = IndexDamaged(f"dedup index shard {path} is damaged ({reason}){more}; "
                             f"{rebuild_hint(index_root, shingle_size, num_perm)}. "
                             f"Not rebuilt automatically: {blocker}. Rerunning as is fails the same way")
        log.error("%s", error)
        raise error
    counter("dedup_index_rebuilt").inc()
    entries = folder_entries(directory)
    done = Rebuilt(directory, len(rows), files, _replace_shards(directory, entries, rows.values(), rows_per_shard))
    log.warning("dedup index: shard %s was damaged (%s)%s; %s", path, reason, more, done.line())
    return done.shards


# ---------------------------------------------------------------------------------------------- Beam
class _WriteShard(beam.DoFn):
    """One shard, written by write_atomically under its content-hash name. An intact file of that name is the
    same rows (a retried or repeated write: a no-op); a damaged one is replaced."""

    def __init__(self, directory: str):
        self.directory = directory

    def process(self, item) -> Iterator[str]:
        _shard, rows = item
        rows = list(rows)
        name, data = shard_bytes(rows)
        final = FileSystems.join(self.directory, name)
        kind = file_kind(final)
        if kind not in ("file", "missing"):
            raise _refused(final, kind)
        if kind == "missing" or check_shard(final) is not None:
            write_atomically(final, data)
            counter("dedup_index_shards_written").inc()
            counter("dedup_index_rows_written").inc(len(rows))
        yield final


class ReadSignatureIndex(beam.PTransform):
    """All rows of the index under `index_root` (a missing folder is an empty index), checked first, with a
    damaged shard rebuilt from the written partitions when they allow it (`usable_shards`)."""

    def __init__(self, index_root: str, shingle_size: int = 3, num_perm: int = 128, seed: int = 1,
                 rows_per_shard: int = 50_000):
        super().__init__()
        self.args = (index_root, shingle_size, num_perm, seed, rows_per_shard)

    def expand(self, pbegin):
        return (pbegin
                | "IndexFolder" >> beam.Create([self.args])
                | "CheckIndex" >> beam.FlatMap(lambda args: usable_shards(*args))
                | "SpreadShards" >> beam.Reshuffle()
                | "IndexRows" >> beam.FlatMap(shard_rows, self.args[2]))


class WriteSignatureIndex(beam.PTransform):
    """New index rows -> content-named shard files of at most `rows_per_shard` rows; emits the shard paths."""

    def __init__(self, directory: str, rows_per_shard: int = 50_000):
        super().__init__()
        self.directory, self.rows_per_shard = directory, rows_per_shard

    def expand(self, rows):
        count = rows | "CountRows" >> beam.combiners.Count.Globally()
        per = self.rows_per_shard
        return (rows
                | "ToShard" >> beam.Map(lambda r, n: (shard_of(r["id"], max(1, math.ceil(n / per))), r),
                                        n=beam.pvalue.AsSingleton(count))
                | "GroupShard" >> beam.GroupByKey()
                | "WriteShard" >> beam.ParDo(_WriteShard(self.directory)))


# ---------------------------------------------------------------------------------------------- command
def main(argv: list[str] | None = None) -> int:
    """`python -m transforms.dedup_index --rebuild --output ROOT [--shingle-size K] [--num-perm N]`: rebuild the
    index from the written partitions (run it with no run writing to ROOT). 0 when rebuilt, 1 when it cannot be."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m transforms.dedup_index", description=main.__doc__)
    parser.add_argument("--rebuild", action="store_true", required=True, help="rebuild the index (the only action)")
    parser.add_argument("--output", required=True, metavar="ROOT", help="the output root the runs wrote")
    parser.add_argument("--shingle-size", type=int, default=3, metavar="WORDS", help="as given to the runs")
    parser.add_argument("--num-perm", type=int, default=128, metavar="N", help="as given to the runs")
    args = parser.parse_args(argv)
    try:
        done = rebuild_index(args.output, args.shingle_size, args.num_perm)
    except IndexDamaged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(done.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
