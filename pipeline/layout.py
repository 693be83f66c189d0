"""The output layout, in one place: where batch, backfill and streaming runs write, and what a reader (the
report, a notebook) must read to see all of it.

    <root>/dt=YYYY-MM-DD/articles-00000-of-00001.jsonl    batch and backfill articles, one file per published day
    <root>/dt=YYYY-MM-DD/articles-00000-of-00001.parquet  the same articles as Parquet (--format parquet|both)
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
    <root>/_state/backfilled/dt=YYYY-MM-DD.ids            the ids backfills wrote on a day (transforms.backfill_owned)
    <root>/_state/run-in-progress                         while a batch run writes (pipeline.recovery)
    <root>/_state/lease                                   while a run or backfill holds the root (pipeline.lease)
    <root>/_state/lease.lock                              local roots: the lock each change of the lease takes
    <root>/_state/stream-tmp/                             streaming window files before they are moved in place
"""
from __future__ import annotations

from apache_beam.io.filesystems import FileSystems

ARTICLES = "articles"
DUPLICATES = "duplicates"
DEAD_LETTER = "dead_letter"
BATCH_ARTICLE_FILE = "articles-00000-of-00001.jsonl"
ARTICLES_PARQUET = "articles_parquet"  # a reader's kind: the Parquet copy of the batch and backfill articles
BATCH_PARQUET_FILE = "articles-00000-of-00001.parquet"
SIDE_SHARDS = 16  # fixed: a line's shard must not change between runs, or merging would keep it twice
LEGACY_SIDE_FILES = {DUPLICATES: "duplicates.jsonl", DEAD_LETTER: "dead_letter.jsonl"}
BACKFILL_DIR = "_backfill"
STATE_DIR = "_state"
LEASE = "lease"

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


def batch_article_file(root: str, day: str) -> str:
    return join_path(day_partition(root, day), BATCH_ARTICLE_FILE)


def batch_parquet_file(root: str, day: str) -> str:
    return join_path(day_partition(root, day), BATCH_PARQUET_FILE)


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
