"""The output layout, in one place: where batch, backfill and streaming runs write, and what a reader (the
report, a notebook) must read to see all of it.

    <root>/dt=YYYY-MM-DD/articles-SSSSS-of-NNNNN.jsonl    batch and backfill articles of a published day, sharded
    <root>/dt=YYYY-MM-DD/articles-SSSSS-of-NNNNN.parquet  by a hash of the id; the same shards as Parquet
                                                          (--format parquet|both)
    <root>/dt=YYYY-MM-DD/articles-00000-of-00001.jsonl    read, and migrated when the day is rewritten: a day
                                                          written before days were sharded (one file, .parquet too)
    <root>/dt=YYYY-MM-DD/stream-<window>-p<pane>-<shard>-of-<shards>.jsonl
                                                          streaming on Dataflow (pipeline.stream_sinks, windowed):
                                                          one file per event-time window, pane and shard
    <root>/dt=YYYY-MM-DD/stream-<window>-<hash>.jsonl     streaming on the local runner (per_bundle): one file per
                                                          window of processing time and bundle
    <root>/duplicates/part-SSSSS-of-NNNNN.jsonl           batch runs: side records sharded by a hash of the line
    <root>/dead_letter/part-SSSSS-of-NNNNN.jsonl          (merged across runs)
    <root>/_backfill/<since>_<until>/duplicates/part-*   a backfill range's (rewritten whole by a rerun; a record
                                                          two overlapping ranges both list is read once: once_each)
    <root>/duplicates/stream-*.jsonl, dead_letter/...     streaming (either name, as for the articles)
    <root>/duplicates.jsonl, <root>/dead_letter.jsonl     read only: outputs written before side files were sharded
    <root>/_state/minhash/                                the cross-run dedup index (transforms.dedup.index_dir)
    <root>/_state/backfilled/dt=YYYY-MM-DD/articles-SSSSS-of-NNNNN.ids  the ids backfills wrote in that shard of
                                                          the day (transforms.backfill_owned; `dt=DAY.ids`, one
                                                          file per day, is the older layout, migrated likewise)
    <root>/_state/run-in-progress                         while a batch run writes (pipeline.recovery)
    <root>/_state/lease                                   while a run or backfill holds the root (pipeline.lease)
    <root>/_state/lease.lock                              local roots: the lock each change of the lease takes
    <root>/_state/stream-tmp/                             streaming window files before they are moved in place

Article shards. A day's articles are spread over ARTICLE_SHARDS shards by a hash of their id (`article_shard`), so
one writer holds 1/ARTICLE_SHARDS of a day (at 1M articles a day and ~8 KB an article, ~16k articles, ~125 MB),
and an id always lands in the same shard: merging with what earlier runs wrote stays per shard. The count is
fixed, so reruns give the same files byte for byte. Only a shard that holds a line has a file: a day of three
articles has at most three files, and a reader reads whichever `articles-*` files a day has. Files of another
shard count (the single file of the older layout, or a changed ARTICLE_SHARDS) are read as part of the day; when
the day is rewritten, every shard takes its lines from them and they are removed once every shard is written
(pipeline.day_shards).
"""
from __future__ import annotations

import hashlib
import re

from apache_beam.io.filesystems import FileSystems

ARTICLES = "articles"
DUPLICATES = "duplicates"
DEAD_LETTER = "dead_letter"
ARTICLES_PARQUET = "articles_parquet"  # a reader's kind: the Parquet copy of the batch and backfill articles
ARTICLE_SHARDS = 64  # fixed: an id's shard must not change between runs (a changed count migrates, see above)
SIDE_SHARDS = 16  # fixed: a line's shard must not change between runs, or merging would keep it twice
LEGACY_SIDE_FILES = {DUPLICATES: "duplicates.jsonl", DEAD_LETTER: "dead_letter.jsonl"}
BACKFILL_DIR = "_backfill"
STATE_DIR = "_state"
LEASE = "lease"
_ARTICLE_SHARD = re.compile(r"articles-(\d{5})-of-(\d{5})\.(jsonl|parquet)")

# every file of each kind, whichever mode wrote it (globs relative to the output root)
READ_GLOBS = {
    kind: (f"{kind}/part-*.jsonl", f"{BACKFILL_DIR}/*/{kind}/part-*.jsonl", f"{kind}/stream-*.jsonl",
           LEGACY_SIDE_FILES[kind], f"{BACKFILL_DIR}/*/{LEGACY_SIDE_FILES[kind]}")
    for kind in (DUPLICATES, DEAD_LETTER)
}
READ_GLOBS[ARTICLES] = ("dt=*/articles-*.jsonl", "dt=*/stream-*.jsonl")
READ_GLOBS[ARTICLES_PARQUET] = ("dt=*/articles-*.parquet",)


def join_path(root: str, *parts: str) -> str:
    """`root/part/...` on any Beam filesystem (gs://, s3://) or locally, without doubling a trailing slash."""
    return FileSystems.join(root.rstrip("/"), *parts) if "://" in root else "/".join([root.rstrip("/"), *parts])


def lease_file(root: str) -> str:
    """The output root's lease: one run at a time per root (pipeline.lease)."""
    return join_path(root, STATE_DIR, LEASE)


def day_partition(root: str, day: str) -> str:
    return join_path(root, f"dt={day}")


def hash_shard(text: str, shards: int) -> int:
    """A stable shard of a string (not Python's salted hash()): the same text, the same shard, in every process."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") % shards


def article_shard(article_id: str, shards: int = ARTICLE_SHARDS) -> int:
    return hash_shard(article_id, shards)


def article_shard_name(shard: int, ext: str, shards: int = ARTICLE_SHARDS) -> str:
    return f"articles-{shard:05d}-of-{shards:05d}.{ext}"


def article_shard_file(root: str, day: str, shard: int, ext: str, shards: int = ARTICLE_SHARDS) -> str:
    """One shard of a day's batch articles, `ext` jsonl or parquet."""
    return join_path(day_partition(root, day), article_shard_name(shard, ext, shards))


def parse_article_shard(name: str) -> tuple[int, int, str] | None:
    """(shard, shard count, extension) of a batch article file name, None for any other name."""
    found = _ARTICLE_SHARD.fullmatch(name)
    return (int(found[1]), int(found[2]), found[3]) if found else None


def day_article_files(root: str, day: str) -> list[str]:
    """Every batch article file of one day, JSONL and Parquet, of any shard count, sorted."""
    patterns = [join_path(day_partition(root, day), f"articles-*.{ext}") for ext in ("jsonl", "parquet")]
    return sorted(m.path for result in FileSystems.match(patterns) for m in result.metadata_list)


def side_shard_file(side_root: str, kind: str, shard: int, shards: int = SIDE_SHARDS) -> str:
    """One shard of the duplicates / dead letters of a batch run (side_root = the output root) or of a backfill
    range (backfill_side_dir)."""
    return join_path(side_root, kind, f"part-{shard:05d}-of-{shards:05d}.jsonl")


def backfill_side_dir(root: str, since: str, until: str) -> str:
    return join_path(root, BACKFILL_DIR, f"{since}_{until}")


def stream_folder(kind: str, published: str | None = None) -> str:
    """The folder (relative to the root) a streaming window file of this kind goes to."""
    return f"dt={published}" if kind == ARTICLES else kind


def stream_temp_dir(root: str) -> str:
    """Where the windowed streaming writer writes its files before moving them into their folders."""
    return join_path(root, "_state", "stream-tmp")


def output_files(root: str, kind: str) -> list[str]:
    """Every file of one kind under an output root, sorted (batch, backfill and streaming layouts together)."""
    found: set[str] = set()
    for pattern in READ_GLOBS[kind]:
        found.update(m.path for m in FileSystems.match([join_path(root, pattern)])[0].metadata_list)
    return sorted(found)


def side_files(side_root: str, kind: str) -> list[str]:
    """The shard files of one kind written by a batch run (side_root = the output root) or a backfill range."""
    pattern = join_path(side_root, kind, "part-*.jsonl")
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


def once_each(records):
    """Side records (duplicates, dead letters) listed once each: overlapping backfill ranges each list the
    records of the days they share, the same line in both ranges' files; a reader shows it once. The key is the
    whole record, so two different decisions about one id are both shown."""
    import json

    seen: set[str] = set()
    for record in records:
        key = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
        if key not in seen:
            seen.add(key)
            yield record
