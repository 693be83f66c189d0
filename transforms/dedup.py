"""Deduplication: exact (same normalised text) then near-duplicate (MinHash + LSH banding over word shingles).

Which copy is kept is deterministic whatever the runner's order: the smallest (published, id). In Beam terms
everything is keyed and grouped (by text hash, by LSH band), never gathered into one in-memory set, so the
stage scales out on a distributed runner.

The S-curve: with b bands of r rows, two articles of Jaccard similarity s share at least one band with
probability 1 - (1 - s^r)^b; `lsh_params` picks (b, r) for the threshold by minimising the weighted false
positive and false negative areas under that curve; candidates are then confirmed on the full signature.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from typing import Iterable, Sequence

import apache_beam as beam
import numpy as np

from .common import counter

_WORD = re.compile(r"\w+", re.UNICODE)
_MASK32 = np.uint64(0xFFFFFFFF)


def normalised_words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def exact_key(text: str) -> str:
    """Exact-duplicate key: the hash of the text's normalised words (punctuation, case, spacing ignored)."""
    return hashlib.sha256(" ".join(normalised_words(text)).encode("utf-8")).hexdigest()[:32]


def shingles(text: str, k: int = 3) -> set[str]:
    """Word k-shingles of the normalised text (a text shorter than k words is one shingle)."""
    words = normalised_words(text)
    if len(words) < k:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)  # odd multipliers
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    return a, b


def shingle_hashes(items: Iterable[str]) -> np.ndarray:
    """Stable 64-bit hashes (blake2b; Python's hash() is salted per process and would differ across workers)."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "little")
                        for s in items), dtype=np.uint64)


def minhash(items: set[str], num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """MinHash signature (uint32 x num_perm) with multiply-shift hashing, vectorised over shingles."""
    a, b = _permutations(num_perm, seed)
    h = shingle_hashes(sorted(items))
    if h.size == 0:
        return np.full(num_perm, 0xFFFFFFFF, dtype=np.uint32)
    with np.errstate(over="ignore"):
        values = (h[:, None] * a[None, :] + b[None, :]) >> np.uint64(32)
    return (values & _MASK32).min(axis=0).astype(np.uint32)


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    return float(np.mean(sig_a == sig_b))


def candidate_probability(s: float, bands: int, rows: int) -> float:
    """The LSH S-curve: P(two items of similarity s share a band)."""
    return 1.0 - (1.0 - s**rows) ** bands


@lru_cache(maxsize=32)
def lsh_params(threshold: float, num_perm: int = 128, fp_weight: float = 0.3, fn_weight: float = 0.7
               ) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive area below the threshold and false-negative area
    above it (the same criterion as datasketch); false negatives weigh more since candidates are verified."""
    xs_lo = np.linspace(0.0, threshold, 200)
    xs_hi = np.linspace(threshold, 1.0, 200)
    best, best_err = (1, num_perm), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = np.trapezoid([candidate_probability(x, bands, rows) for x in xs_lo], xs_lo)
            fn = np.trapezoid([1 - candidate_probability(x, bands, rows) for x in xs_hi], xs_hi)
            err = fp_weight * fp + fn_weight * fn
            if err < best_err:
                best, best_err = (bands, rows), err
    return best


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[str]:
    """One bucket key per band: band index + hash of that band's rows."""
    return [f"{i}:{hashlib.blake2b(sig[i * rows:(i + 1) * rows].tobytes(), digest_size=8).hexdigest()}"
            for i in range(bands)]


def keep_order(article: dict) -> tuple[str, str]:
    """The deterministic keep rule: earliest published, then smallest id."""
    return (article["published"], article["id"])


def duplicate_record(article: dict, kept_id: str, kind: str, similarity: float) -> dict:
    return {"id": article["id"], "duplicate_of": kept_id, "kind": kind, "similarity": round(similarity, 4),
            "source": article["source"], "url": article.get("url"), "title": article["title"],
            "published": article["published"], "input_ref": article["input_ref"]}


def near_duplicate_edges(bucket: Sequence[tuple], threshold: float) -> list[tuple[str, tuple]]:
    """Within one LSH bucket: (later id, (earlier order, earlier id, similarity)) for confirmed pairs."""
    members = sorted(bucket, key=lambda m: m[0])
    edges = []
    for j in range(1, len(members)):
        for i in range(j):
            sim = estimated_jaccard(members[i][2], members[j][2])
            if sim >= threshold:
                edges.append((members[j][1], (members[i][0], members[i][1], sim)))
    return edges


# ---------------------------------------------------------------------------------------------- Beam
class _SplitExact(beam.DoFn):
    """One exact-key group: the first by keep order goes on, the rest are exact duplicates."""

    def process(self, item):
        _key, group = item
        members = sorted(group, key=keep_order)
        yield members[0]
        for dup in members[1:]:
            counter("duplicates_exact").inc()
            yield beam.pvalue.TaggedOutput("duplicates", duplicate_record(dup, members[0]["id"], "exact", 1.0))


def _signature_rows(article: dict, shingle_size: int, num_perm: int, bands: int, rows: int):
    sig = minhash(shingles(article["text"], shingle_size), num_perm)
    order = keep_order(article)
    for key in band_keys(sig, bands, rows):
        yield key, (order, article["id"], sig)


def _bucket_edges(item, threshold: float):
    _key, members = item
    members = list(members)
    if len(members) < 2:
        return []
    return near_duplicate_edges(members, threshold)


def _earliest_parent(edges: Iterable[tuple]) -> tuple:
    return min(edges, key=lambda e: (e[0], e[1]))


def _resolve_round(item):
    """child -> parent, lifted to the grandparent when the parent is itself a duplicate."""
    _node, grouped = item
    as_child = list(grouped["parent_of_node"])  # [(parent_id, sim)] where node is the child
    as_parent = list(grouped["children"])  # [child_id, ...] whose parent is node
    if not as_child:
        for child in as_parent:
            yield child, None
        return
    grand_id, _ = as_child[0]
    for child in as_parent:
        yield child, grand_id


def _apply_lift(item):
    child, grouped = item
    parent_id, sim = list(grouped["p"])[0]
    grand = next((x for x in grouped["lift"] if x), None)
    return child, (grand or parent_id, sim)


class Deduplicate(beam.PTransform):
    """Articles -> kept articles (main) and duplicate records (tag `duplicates`, with `duplicate_of`)."""

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, shingle_size: int = 3, resolve_rounds: int = 2):
        super().__init__()
        if not 0.0 < threshold <= 1.0:
            raise ValueError("dedup threshold must be in (0, 1]")
        self.threshold = threshold
        self.num_perm = num_perm
        self.shingle_size = shingle_size
        self.bands, self.rows = lsh_params(threshold, num_perm)
        self.resolve_rounds = resolve_rounds

    def expand(self, articles):
        exact = (articles
                 | "ExactKey" >> beam.Map(lambda a: (exact_key(a["text"]), a))
                 | "GroupExact" >> beam.GroupByKey()
                 | "SplitExact" >> beam.ParDo(_SplitExact()).with_outputs("duplicates", main="kept"))
        kept = exact.kept
        edges = (kept
                 | "BandRows" >> beam.FlatMap(_signature_rows, self.shingle_size, self.num_perm, self.bands, self.rows)
                 | "GroupBand" >> beam.GroupByKey()
                 | "BucketEdges" >> beam.FlatMap(_bucket_edges, self.threshold)
                 | "EarliestParent" >> beam.CombinePerKey(_earliest_parent))
        # parents: child id -> (parent id, similarity)
        parents = edges | "ParentOf" >> beam.MapTuple(lambda child, e: (child, (e[1], e[2])))
        for r in range(self.resolve_rounds):
            children = parents | f"ByParent{r}" >> beam.MapTuple(lambda child, ps: (ps[0], child))
            lifted = ({"parent_of_node": parents, "children": children}
                      | f"JoinParents{r}" >> beam.CoGroupByKey()
                      | f"Lift{r}" >> beam.FlatMap(_resolve_round))
            parents = ({"p": parents, "lift": lifted}
                       | f"JoinLift{r}" >> beam.CoGroupByKey()
                       | f"Apply{r}" >> beam.Map(_apply_lift))
        joined = ({"article": kept | "ById" >> beam.Map(lambda a: (a["id"], a)), "parent": parents}
                  | "JoinArticles" >> beam.CoGroupByKey())

        def split(item):
            _id, g = item
            parent = list(g["parent"])
            for article in g["article"]:
                if parent:
                    parent_id, sim = parent[0]
                    counter("duplicates_near").inc()
                    yield beam.pvalue.TaggedOutput("duplicates", duplicate_record(article, parent_id, "near", sim))
                else:
                    yield article

        near = joined | "SplitNear" >> beam.FlatMap(split).with_outputs("duplicates", main="kept")
        duplicates = (exact.duplicates, near.duplicates) | "AllDuplicates" >> beam.Flatten()
        return {"articles": near.kept, "duplicates": duplicates}
