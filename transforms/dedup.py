"""Deduplication: exact (same normalised text) then near-duplicate (MinHash + LSH banding over word shingles),
within one run and, with `index_root`, against the articles kept by earlier runs (a persistent signature index).

Which copy is kept is deterministic whatever the runner's order. Everything is keyed and grouped (by exact text
hash, by LSH band, by article id), never gathered into one in-memory set, so the stage scales out on a distributed
runner. See docs/dedup.md for the design, the on-disk index layout, quality figures and the benchmark.

Keep rule. Each member of a group is `(prio, published, id, signature)`: prio 0 = already written by an earlier
run (an index row, or a current article whose id is in the index: ids are content hashes, so the same id is the
same article), prio 1 = new in this run. Already-written articles are never re-decided: they are never made a
duplicate. A new article is a duplicate of every confirmed similar member that precedes it in `(prio, published,
id)` order (so every index article, and earlier new articles); it points at the one with the smallest
`(published, id)`, and chains (c -> b -> a) are resolved to the root by pointer jumping, which is what is kept.

The S-curve: with b bands of r rows, two articles of Jaccard similarity s share at least one band with
probability 1 - (1 - s^r)^b; `lsh_params` picks (b, r) for the threshold by minimising the weighted false
positive and false negative areas under that curve; candidates are then confirmed on the full signature.
"""
from __future__ import annotations

import heapq
import itertools
import json
from typing import Iterable, Sequence

import apache_beam as beam
import numpy as np

from modeling.minhash import BAND_SIG_DTYPE, agreement_counts, agreements_needed, band_keys, band_signature, lsh_params

from .backfill_owned import NotReopened
from .common import DEAD, counter, dead_letter
from .dedup_index import (INDEXED, NEW, RECORD_FIELDS, IndexDamaged, ReadSignatureIndex,  # noqa: F401 - re-exported
                          WriteSignatureIndex, index_dir, index_row, member_of_index_row, new_member,
                          rebuild_index, record_fingerprint)

# ---------------------------------------------------------------------------------------------- keep rule
def _order(member: tuple) -> tuple:
    return member[0], member[1], member[2]


def duplicate_record(article: dict, kept_id: str, kind: str, similarity: float) -> dict:
    return {"id": article["id"], "duplicate_of": kept_id, "kind": kind, "similarity": round(similarity, 4),
            "source": article["source"], "url": article.get("url"), "title": article["title"],
            "published": article["published"], "input_ref": article["input_ref"]}


def _sig_matrix(members: Sequence[tuple]) -> np.ndarray:
    return np.frombuffer(b"".join(m[3] for m in members), dtype=BAND_SIG_DTYPE).reshape(len(members), -1)


def near_duplicate_edges(members: Iterable[tuple], threshold: float, max_bucket: int = 256
                         ) -> list[tuple[str, tuple]]:
    """Within one LSH bucket (members carry `band_signature`s): one edge per new member that has a confirmed
    similar member before it in (prio, published, id) order: (child id, (parent published, parent id, "near",
    similarity)), the parent being the confirmed one with the smallest (published, id).

    Buckets of at most `max_bucket` members are compared all-pairs. In a larger bucket (boilerplate, wire copy
    sent many times) the first `max_bucket` members in keep order are the leaders: they are compared all-pairs
    and every other member is compared with the leaders only (O(n * max_bucket) time, O(max_bucket) memory: the
    group is streamed twice, never held). No member is dropped either way: a pair that was not compared here can
    still meet in another band, and anything never confirmed a duplicate stays kept."""
    first = heapq.nsmallest(max_bucket + 1, members, key=_order)
    capped = len(first) > max_bucket
    # the same id twice (cannot happen with content-hash ids; a guard): keep its first occurrence
    seen, leaders = set(), []
    for m in first[:max_bucket]:
        if m[2] not in seen:
            seen.add(m[2])
            leaders.append(m)
    if len(leaders) < 2:
        return []
    sig_l = _sig_matrix(leaders)
    need = agreements_needed(threshold, sig_l.shape[1])
    edges = []
    agree = agreement_counts(sig_l, sig_l)
    for j in range(1, len(leaders)):
        if leaders[j][0] != NEW:
            continue
        edges += _best_parent(leaders[j], leaders[:j], agree[j, :j], need)
    if capped:
        counter("dedup_buckets_capped").inc()
        last = _order(leaders[-1])
        batch = []
        for m in members:
            if m[0] == NEW and _order(m) > last and m[2] not in seen:
                batch.append(m)
                if len(batch) == 256:
                    edges += _edges_to_leaders(batch, leaders, sig_l, need)
                    batch = []
        if batch:
            edges += _edges_to_leaders(batch, leaders, sig_l, need)
    return edges


def _best_parent(child: tuple, parents: Sequence[tuple], agree: np.ndarray, need: int) -> list[tuple]:
    hits = np.flatnonzero(agree >= need)
    if hits.size == 0:
        return []
    i = min(hits, key=lambda k: (parents[k][1], parents[k][2]))
    p = parents[i]
    return [(child[2], (p[1], p[2], "near", float(agree[i]) / (len(child[3]) // BAND_SIG_DTYPE.itemsize)))]


def _edges_to_leaders(batch, leaders, sig_l, need):
    agree = agreement_counts(_sig_matrix(batch), sig_l)
    edges = []
    for row, child in enumerate(batch):
        edges += _best_parent(child, leaders, agree[row], need)
    return edges


# ---------------------------------------------------------------------------------------------- index
def same_as_written(article: dict, written: dict, rewrite_same_day: bool) -> bool:
    """An article whose id an earlier run wrote (`written`: that index row's published and record): is it that
    record again (a rerun: written back unchanged) rather than a later copy (a duplicate of it)?

    rewrite_same_day (backfill, which replaces each day's partition): any copy published on the written day
    is written again, since that day's file is being rebuilt from this run's input. Otherwise the parsed record
    must be the same; for index rows without a record fingerprint (older indexes), the same published day."""
    if rewrite_same_day or written.get("record") is None:
        return article["published"] == written["published"]
    return record_fingerprint(article) == written["record"]


def _against_written(item: tuple[str, dict]) -> Iterable:
    """One id kept by dedup this run (it has an index row) or written or pointed at: its index row goes to the
    index only if the article was written, and this run's copies of it pass only if it was written too.

    An article dead-lettered after dedup (NER, stance, the writer) must neither make tomorrow's copies
    duplicates of something never written, nor leave today's copies pointing at nothing: those become dead
    letters with the reason. Copies of an article written by an earlier run (no row here) pass."""
    kept_id, g = item
    row = next(iter(g["row"]), None)
    lost = row is not None and next(iter(g["written"]), None) is None
    if row is not None:
        if lost:
            counter("dedup_index_rows_not_written").inc()
        else:
            yield beam.pvalue.TaggedOutput("index_rows", row)
    for dup in g["duplicates"]:
        if not lost:
            yield dup
            continue
        counter("duplicates_of_dead_lettered").inc()
        yield beam.pvalue.TaggedOutput(DEAD, dead_letter(
            dup["input_ref"], "dedup",
            f"duplicate ({dup['kind']}, similarity {dup['similarity']}) of article {kept_id}, which was "
            f"dead-lettered after dedup; rerun once the cause is fixed and this copy is reconsidered",
            article_id=dup["id"]))


class KeepWhatWasWritten(beam.PTransform):
    """{"rows": (id, index row) from `Deduplicate(write_index=False)`, "written": ids of the articles actually
    written, "duplicates": this run's duplicate records} -> {"index_shards": paths of the index shards written
    (rows of written articles only), "duplicates": those whose kept copy exists, "dead_letter": copies of a kept
    article that was dead-lettered after dedup}.

    One keyed join (CoGroupByKey by kept id), so nothing is gathered in memory and it runs on any runner."""

    def __init__(self, directory: str, rows_per_shard: int = 50_000):
        super().__init__()
        self.directory, self.rows_per_shard = directory, rows_per_shard

    def expand(self, pcolls: dict):
        split = ({"row": pcolls["rows"],
                  "written": pcolls["written"] | "KeyWritten" >> beam.Map(lambda article_id: (article_id, True)),
                  "duplicates": pcolls["duplicates"] | "ByKeptId" >> beam.Map(lambda d: (d["duplicate_of"], d))}
                 | "JoinWritten" >> beam.CoGroupByKey()
                 | "AgainstWritten" >> beam.FlatMap(_against_written).with_outputs("index_rows", DEAD,
                                                                                     main="duplicates"))
        shards = split.index_rows | "WriteIndex" >> WriteSignatureIndex(self.directory, self.rows_per_shard)
        return {"index_shards": shards, "duplicates": split.duplicates, DEAD: split[DEAD]}


# ---------------------------------------------------------------------------------------------- Beam
class SplitExact(beam.DoFn):
    """One exact-key group (new articles of this run plus index rows with that text).

    The keeper is the smallest member in (prio, published, id) order: an already-written article if there is one.
    Every other new article is an exact duplicate of it. A new article with the id of an already-written keeper
    is decided by `DecideKeep` (`same_as_written`: the same record again, or a later copy and so a duplicate): the
    keeper's published day and record go out tagged "written". The keeper goes on to the LSH bands: its id under
    each band key (main output), its band member once, tagged "band_members" (`BandBuckets` puts the member in
    the buckets it shares with another article). If it is new, its index row is offered for writing (written only
    if it is still kept after the near-duplicate stage). The group is streamed twice, never held in memory."""

    def __init__(self, bands: int, rows: int, with_index: bool):
        self.bands, self.rows, self.with_index = bands, rows, with_index

    def process(self, item):
        exact, members = item
        keeper, has_new = None, False
        for m in members:
            has_new |= m[0] == NEW
            if keeper is None or _order(m) < _order(keeper):
                keeper = m
        if has_new:
            copy_of_written = False
            for m in members:
                if m[0] == NEW and m[2] != keeper[2]:
                    yield beam.pvalue.TaggedOutput("parents", (m[2], (keeper[1], keeper[2], "exact", 1.0)))
                copy_of_written |= m[0] == NEW and m[2] == keeper[2] and keeper[0] == INDEXED
            if copy_of_written:
                yield beam.pvalue.TaggedOutput("written", (keeper[2], {"published": keeper[1], "record": keeper[4]}))
        yield beam.pvalue.TaggedOutput("band_members", (keeper[2], keeper[:3] + (band_signature(keeper[3]),)))
        for key in band_keys(keeper[3], self.bands, self.rows):
            yield key, keeper[2]
        if self.with_index and keeper[0] == NEW:
            yield beam.pvalue.TaggedOutput("index_rows", (keeper[2], index_row(keeper, exact)))


def shared_buckets(item: tuple[bytes, Iterable[str]]) -> Iterable[tuple[str, bytes]]:
    """One LSH bucket of ids -> (id, bucket key) for each of them if the bucket holds at least two, else nothing:
    a lone member has nothing to be compared with. The ids are streamed twice, never held."""
    key, ids = item
    if len(list(itertools.islice(ids, 2))) < 2:
        return
    for article_id in ids:
        yield article_id, key


def into_buckets(item: tuple[str, dict]) -> Iterable[tuple[bytes, tuple]]:
    """One id's band member(s) and the shared buckets it is in -> (bucket key, member) for each of them."""
    _id, g = item
    members = list(g["member"])
    for key in g["bucket"]:
        for member in members:
            yield key, member


class BandBuckets(beam.PTransform):
    """{"ids": (band key, id) for every band of every exact keeper, "members": (id, band member)} -> (band key,
    members) for every bucket of at least two: the same buckets with the same members as grouping
    (band key, member) rows directly, which would shuffle every member's band signature once per band (14
    times) although most buckets hold one article. Here the band rows carry the id only, and a member's
    signature travels once, plus once per bucket it shares with another article."""

    def expand(self, pcolls: dict):
        shared = (pcolls["ids"]
                  | "GroupBandIds" >> beam.GroupByKey()
                  | "SharedBuckets" >> beam.FlatMap(shared_buckets))
        return ({"member": pcolls["members"], "bucket": shared}
                | "JoinMembers" >> beam.CoGroupByKey()
                | "IntoBuckets" >> beam.FlatMap(into_buckets)
                | "GroupBand" >> beam.GroupByKey())


def bucket_edges(item, threshold: float, max_bucket: int):
    _key, members = item
    return near_duplicate_edges(members, threshold, max_bucket)


def jump_to_root(item):
    """One pointer-jumping round over child -> (parent, kind, similarity, parent_is_root). In node n's group: its
    own entry (`up`, at most one) and the entries of its children (`down`); each child moves to n's parent.
    An exact copy of n inherits n's kind and similarity (same text); a near copy keeps its own similarity."""
    node, g = item
    up = next(iter(g["up"]), None)
    for child, kind, sim, _done in g["down"]:
        if up is None:
            yield child, (node, kind, sim, True)
        elif kind == "exact":
            yield child, up
        else:
            yield child, (up[0], "near", sim, up[3])


class DecideKeep(beam.DoFn):
    """Per id: the article(s), its resolved parent if any, its new index row if any, and what an earlier run
    wrote under this id if it did -> kept or duplicate. An id is written once per output root: a copy of an
    article an earlier run wrote is its exact duplicate, unless it is that very record again (a rerun, which is
    written back unchanged: `same_as_written`)."""

    def __init__(self, rewrite_same_day: bool = False):
        self.rewrite_same_day = rewrite_same_day

    def process(self, item):
        article_id, g = item
        articles = list(g["article"])
        if not articles:
            return
        written = next(iter(g.get("written", ())), None)
        parent = next(iter(g["parent"]), None)
        if parent is not None:
            parent_id, kind, sim, done = parent
            if not done:
                counter("dedup_chain_unresolved").inc()
            for a in articles:
                counter(f"duplicates_{kind}").inc()
                yield beam.pvalue.TaggedOutput("duplicates", duplicate_record(a, parent_id, kind, sim))
            return
        # The same article read twice in one run (same content id): one is kept, the others are exact copies.
        articles.sort(key=lambda a: (a["published"], str(a.get("input_ref")), json.dumps(a, sort_keys=True,
                                                                                          default=str)))
        if written is not None:  # an earlier run wrote this id: only that record again is kept (a rerun)
            again = [a for a in articles if same_as_written(a, written, self.rewrite_same_day)][:1]
            articles = again + [a for a in articles if a not in again]
            if not again:
                counter("duplicates_of_written").inc(len(articles))
        else:
            again = articles[:1]
        yield from again
        for a in articles[len(again):]:
            counter("duplicates_exact").inc()
            yield beam.pvalue.TaggedOutput("duplicates", duplicate_record(a, article_id, "exact", 1.0))
        row = next(iter(g.get("index_row", ())), None)
        if row is not None and again:
            yield beam.pvalue.TaggedOutput("index_rows", (article_id, row))


class Deduplicate(beam.PTransform):
    """Articles -> {"articles": kept, "duplicates": duplicate records (with `duplicate_of`)}, and with
    `index_root` also "index_shards": the paths of the index shards this run wrote (rows of every kept article),
    or with `write_index=False` "index_rows": (id, row) of every kept new article, unwritten, so that a caller
    whose later stages may still dead-letter an article indexes only what it wrote (`KeepWhatWasWritten`).

    threshold: estimated Jaccard similarity of word shingles at or above which two articles are near duplicates.
    index_root: the output root; the index lives under <index_root>/_state/minhash/ (see docs/dedup.md). Articles
      already in the index are never re-decided; new articles similar to them are their duplicates.
    max_bucket: LSH buckets larger than this are compared against their first `max_bucket` members only.
    resolve_rounds: pointer-jumping rounds; chains up to 2**rounds long resolve to their kept root.
    write_index: with `index_root`, write the new rows here (True) or return them as "index_rows" (False).
    rewrite_same_day: a copy of an indexed article published on its indexed day is kept (backfill, which
      replaces that day's partition); otherwise only the same record again is kept (`same_as_written`).
    reopen: a backfill's (since, until): index rows of that range that backfills wrote are decided again with
      this input, not as already written (transforms.backfill_owned.NotReopened).
    """

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, shingle_size: int = 3, *,
                 index_root: str | None = None, max_bucket: int = 256, resolve_rounds: int = 6, seed: int = 1,
                 index_rows_per_shard: int = 50_000, write_index: bool = True, rewrite_same_day: bool = False,
                 reopen: tuple[str, str] | None = None):
        super().__init__()
        if not 0.0 < threshold <= 1.0:
            raise ValueError("dedup threshold must be in (0, 1]")
        if max_bucket < 2:
            raise ValueError("max_bucket must be at least 2")
        self.threshold, self.num_perm, self.shingle_size, self.seed = threshold, num_perm, shingle_size, seed
        self.bands, self.rows = lsh_params(threshold, num_perm)
        self.index_root, self.max_bucket, self.resolve_rounds = index_root, max_bucket, resolve_rounds
        self.index_rows_per_shard, self.write_index = index_rows_per_shard, write_index
        self.rewrite_same_day, self.reopen = rewrite_same_day, reopen

    def expand(self, articles):
        with_index = self.index_root is not None
        members = articles | "Signature" >> beam.Map(new_member, self.shingle_size, self.num_perm, self.seed)
        if with_index:
            directory = index_dir(self.index_root, self.shingle_size, self.num_perm)
            indexed = (articles.pipeline
                       | "ReadIndex" >> ReadSignatureIndex(self.index_root, self.shingle_size, self.num_perm,
                                                           self.seed, self.index_rows_per_shard))
            if self.reopen is not None:
                indexed = indexed | "NotReopened" >> beam.ParDo(NotReopened(self.index_root, *self.reopen))
            indexed = indexed | "IndexMembers" >> beam.Map(member_of_index_row)
            members = (members, indexed) | "WithIndex" >> beam.Flatten()
        exact = (members
                 | "GroupExact" >> beam.GroupByKey()
                 | "SplitExact" >> beam.ParDo(SplitExact(self.bands, self.rows, with_index))
                 .with_output_types(tuple[bytes, str])  # the main output; without it Beam infers a Union
                 .with_outputs("parents", "index_rows", "written", "band_members", main="bands"))
        near = ({"ids": exact.bands, "members": exact.band_members}
                | "Bands" >> BandBuckets()
                | "BucketEdges" >> beam.FlatMap(bucket_edges, self.threshold, self.max_bucket))
        # child id -> (parent id, kind, similarity, parent is known to be a root)
        parents = ((exact.parents, near)
                   | "AllEdges" >> beam.Flatten()
                   | "EarliestParent" >> beam.CombinePerKey(min)
                   | "Entry" >> beam.MapTuple(lambda child, e: (child, (e[1], e[2], e[3], False))))
        for r in range(self.resolve_rounds):
            down = parents | f"ByParent{r}" >> beam.MapTuple(lambda child, e: (e[0], (child, e[1], e[2], e[3])))
            parents = ({"up": parents, "down": down}
                       | f"JoinParents{r}" >> beam.CoGroupByKey()
                       | f"Jump{r}" >> beam.FlatMap(jump_to_root))
        joined = {"article": articles | "ById" >> beam.Map(lambda a: (a["id"], a)), "parent": parents}
        if with_index:
            joined["index_row"] = exact.index_rows
            joined["written"] = exact.written
        decided = (joined
                   | "JoinArticles" >> beam.CoGroupByKey()
                   | "Decide" >> beam.ParDo(DecideKeep(self.rewrite_same_day))
                   .with_outputs("duplicates", "index_rows", main="kept"))
        out = {"articles": decided.kept, "duplicates": decided.duplicates}
        if with_index and not self.write_index:
            out["index_rows"] = decided.index_rows
        elif with_index:
            out["index_shards"] = (decided.index_rows
                                   | "IndexRow" >> beam.Values()
                                   | "WriteIndex" >> WriteSignatureIndex(directory, self.index_rows_per_shard))
        return out
