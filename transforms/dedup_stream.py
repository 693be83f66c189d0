"""Streaming dedup: the batch signature and threshold rule (modeling.minhash, transforms.dedup.duplicate_record)
held in keyed state instead of grouped, because on the local streaming runner a GroupByKey or Flatten only runs
when the source stops (docs/streaming.md).

    signed -> Exact  stateful, keyed by a bucket of the batch exact key: the first arrival of an identity is kept
           -> Bands  stateful, keyed by LSH band key: each bucket's verdict on the article, then it joins
           -> Decide stateful, keyed by the arrival: kept, or a near duplicate once every band has answered

The decisions are plain functions (`forget_texts`, `live_members`, `band_verdict`, `admit`, `decide`); the DoFns
only read and write state around them. Streaming keeps the first arrival (batch keeps the earliest published):
it cannot un-write an article it already wrote.
"""
from __future__ import annotations

import math
import time
import uuid
from typing import Any, NamedTuple, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.coders import PickleCoder
from apache_beam.transforms import userstate

from modeling.minhash import (BAND_SIG_DTYPE, agreement_counts, agreements_needed, band_keys, band_signature,
                              lsh_params, text_signature)

from .common import counter
from .dedup import duplicate_record

TEXT_BUCKETS = 256  # exact-dedup state keys: the first two hex digits of the exact key
DEFAULT_DEDUP_TTL = 7 * 24 * 3600.0  # seconds an article is remembered (--dedup-ttl)
DEFAULT_TEXT_MAX = 200_000  # exact keys remembered in all, spread over TEXT_BUCKETS (--dedup-max)
DEFAULT_BAND_MAX = 256  # members per LSH bucket (batch's max_bucket; --band-max)
DUPLICATES = "duplicates"


def signed(article: dict, shingle_size: int = 3, num_perm: int = 128, seed: int = 1) -> tuple[dict, str, bytes]:
    """article -> (article, exact key, MinHash signature bytes), exactly as batch computes them (identity tokens:
    the text, or title + text for a text under modeling.minhash.SHORT_TEXT_WORDS words)."""
    exact, sig = text_signature(article["text"], shingle_size, num_perm, seed, title=article.get("title"))
    return article, exact, sig.tobytes()


# ------------------------------------------------------------------ pure decisions
def forget_texts(known: dict[str, tuple[str, float]], now: float, ttl: float, cap: int) -> dict:
    """The exact-key memory {exact key: (kept id, last seen)} without keys unseen for `ttl` seconds and, beyond
    `cap`, without the least recently seen."""
    for key in [k for k, (_, seen) in known.items() if now - seen > ttl]:
        del known[key]
    if len(known) > cap:
        for key in sorted(known, key=lambda k: known[k][1])[: len(known) - cap]:
            del known[key]
    return known


class BandMember(NamedTuple):
    """One article in one LSH bucket's state. `order` is (arrival time, id), taken once per article before the
    fan-out to its bands, so every band compares the same way; `root` is the order of the earliest article this
    one was found similar to in this bucket (its own order if none); `sig` is its band signature (16-bit
    MinHash values, modeling.minhash.band_signature, as batch buckets carry)."""
    added: float  # when this bucket's state took it (the TTL counts from here)
    order: Tuple[float, str]
    root: Tuple[float, str]
    sig: bytes


def live_members(members: Sequence[BandMember], now: float, ttl: float) -> list[BandMember]:
    """Lazy expiry (timers do not fire on time on the local runner): the members taken at most `ttl` s ago."""
    return [m for m in members if now - m.added <= ttl]


def band_verdict(members: Sequence[BandMember], order: Tuple[float, str], sig: bytes, need: int
                 ) -> Optional[Tuple[Tuple[float, str], float]]:
    """(root order, similarity) for an article against one bucket's members, or None.

    Batch's rule on the same 16-bit values: only members that precede it (smaller order, never itself) count,
    and only those agreeing in at least `need` positions (modeling.minhash.agreements_needed). Of those, the
    earliest root wins, with the similarity to the member matched. Edges only point at an earlier order: no
    cycle."""
    earlier = [m for m in members if m.order < order and order[1] not in (m.order[1], m.root[1])]
    if not earlier:
        return None
    mine = np.frombuffer(sig, dtype=BAND_SIG_DTYPE)
    theirs = np.frombuffer(b"".join(m.sig for m in earlier), dtype=BAND_SIG_DTYPE).reshape(len(earlier), -1)
    agree = agreement_counts(mine[None, :], theirs)[0]
    hits = [(earlier[i].root, float(agree[i]) / mine.size) for i in np.flatnonzero(agree >= need)]
    return min(hits, key=lambda h: h[0]) if hits else None


def admit(members: list[BandMember], member: BandMember, cap: int) -> list[BandMember]:
    """Add `member`; beyond `cap` members, evict first the copies (members whose root is another article: they
    only link later copies to their root), then the kept ones, oldest first."""
    members = list(members) + [member]
    excess = len(members) - max(1, cap)
    if excess > 0:
        gone = set(sorted(range(len(members)), key=lambda i: (members[i].root == members[i].order,
                                                               members[i].added, members[i].order))[:excess])
        members = [m for i, m in enumerate(members) if i not in gone]
    return members


def decide(pending: dict, band: int, verdict, article: Optional[dict]) -> dict:
    """One band's verdict added to an arrival's pending decision {"bands", "best", "article"}."""
    pending["bands"].add(band)
    if article is not None:
        pending["article"] = article
    if verdict is not None and (pending["best"] is None or verdict[0] < pending["best"][0]):
        pending["best"] = verdict
    return pending


# ------------------------------------------------------------------ DoFns around them
class _ExactDoFn(beam.DoFn):
    """(bucket, signed article) -> the first arrival of each identity (main, still signed); later ones ->
    `duplicates` (kind exact). State per bucket: {exact key: (kept id, last seen)}."""

    TEXTS = userstate.ReadModifyWriteStateSpec("texts", PickleCoder())

    def __init__(self, ttl: float, cap_per_bucket: int):
        self.ttl, self.cap = ttl, cap_per_bucket

    def process(self, item, texts=beam.DoFn.StateParam(TEXTS)):
        _bucket, signed_article = item
        article, key, _sig = signed_article
        known, now = texts.read() or {}, time.time()
        if key in known:
            known[key] = (known[key][0], now)
            counter("duplicates_exact").inc()
            yield beam.pvalue.TaggedOutput(DUPLICATES, duplicate_record(article, known[key][0], "exact", 1.0))
        else:
            known[key] = (article["id"], now)
            yield signed_article
        texts.write(forget_texts(known, now, self.ttl, self.cap))


def _band_members(item: tuple[dict, str, bytes], bands: int, rows: int):
    """A signed article -> (band key, (order, band signature, decision key, band index, article on band 0))."""
    article, _exact, sig = item
    order = (time.time(), article["id"])
    token = f"{article['id']}/{uuid.uuid4().hex[:16]}"  # one decision per arrival, even of the same id
    bsig = band_signature(sig)
    for i, key in enumerate(band_keys(sig, bands, rows)):
        yield key, (order, bsig, token, i, article if i == 0 else None)


class _BandDoFn(beam.DoFn):
    """(band key, member) -> (decision key, (band, verdict, article or None)); then the member joins the bucket.
    State per band key: its members, at most `cap`, expiring `ttl` s after they joined (lazily)."""

    MEMBERS = userstate.ReadModifyWriteStateSpec("members", PickleCoder())

    def __init__(self, need: int, ttl: float, cap: int):
        self.need, self.ttl, self.cap = need, ttl, cap

    def process(self, item, state=beam.DoFn.StateParam(MEMBERS)):
        _key, (order, bsig, token, band, article) = item
        now = time.time()
        members = live_members(state.read() or [], now, self.ttl)
        verdict = band_verdict(members, order, bsig, self.need)
        state.write(admit(members, BandMember(now, order, verdict[0] if verdict else order, bsig), self.cap))
        yield token, (band, verdict, article)


class _DecideDoFn(beam.DoFn):
    """(decision key, band verdict) -> once all bands answered: the article (main), or a near DuplicateRecord
    pointing at the earliest root named (`duplicates`). The state is cleared when the decision is made."""

    PENDING = userstate.ReadModifyWriteStateSpec("pending", PickleCoder())

    def __init__(self, bands: int):
        self.bands = bands

    def process(self, item, state=beam.DoFn.StateParam(PENDING)):
        _token, (band, verdict, article) = item
        pending = decide(state.read() or {"bands": set(), "best": None, "article": None}, band, verdict, article)
        if len(pending["bands"]) < self.bands:
            state.write(pending)
            return
        state.clear()
        article, best = pending["article"], pending["best"]
        if best is None:
            yield article
        else:
            counter("duplicates_near").inc()
            yield beam.pvalue.TaggedOutput(DUPLICATES, duplicate_record(article, best[0][1], "near", best[1]))


class StreamDedup(beam.PTransform):
    """Articles -> {"articles": kept, "exact_duplicates", "near_duplicates"} against the articles of the last
    `ttl` seconds. Two duplicate outputs, not one: a Flatten would stall the local streaming runner."""

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, shingle_size: int = 3,
                 ttl: float = DEFAULT_DEDUP_TTL, max_texts: int = DEFAULT_TEXT_MAX,
                 max_per_band: int = DEFAULT_BAND_MAX):
        super().__init__()
        if not 0.0 < threshold <= 1.0:
            raise ValueError("dedup threshold must be in (0, 1]")
        self.shingle_size, self.num_perm, self.ttl = shingle_size, num_perm, ttl
        self.text_cap = max(1, math.ceil(max_texts / TEXT_BUCKETS))
        self.band_cap, self.need = max_per_band, agreements_needed(threshold, num_perm)
        self.bands, self.rows = lsh_params(threshold, num_perm)

    def expand(self, articles):
        exact = (articles
                 | "Signature" >> beam.Map(signed, self.shingle_size, self.num_perm)
                 | "ByTextBucket" >> beam.Map(lambda s: (s[1][:2], s)).with_output_types(Tuple[str, Any])
                 | "Exact" >> beam.ParDo(_ExactDoFn(self.ttl, self.text_cap)).with_input_types(Tuple[str, Any])
                 .with_outputs(DUPLICATES, main="articles"))
        near = (exact.articles
                | "BandMembers" >> beam.FlatMap(_band_members, self.bands, self.rows)
                .with_output_types(Tuple[bytes, Any])
                | "Bands" >> beam.ParDo(_BandDoFn(self.need, self.ttl, self.band_cap))
                .with_input_types(Tuple[bytes, Any]).with_output_types(Tuple[str, Any])
                | "Decide" >> beam.ParDo(_DecideDoFn(self.bands)).with_input_types(Tuple[str, Any])
                .with_outputs(DUPLICATES, main="articles"))
        return {"articles": near.articles, "exact_duplicates": exact[DUPLICATES],
                "near_duplicates": near[DUPLICATES]}
