"""Dedup: MinHash/LSH logic without Beam, then the Deduplicate PTransform (deterministic keep, chains)."""
from __future__ import annotations

import random

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import beam_pipeline
from transforms.dedup import (Deduplicate, candidate_probability, estimated_jaccard, exact_key, jaccard,
                              lsh_params, minhash, near_duplicate_edges, shingles)

BASE = ("The defence ministry said on Friday that its troops had entered the district, which forces handed "
        "over under the terms of the deal signed earlier this month by the three leaders in Moscow, and that "
        "peacekeepers were patrolling the corridor that links the region to the capital.")


def test_exact_key_ignores_case_spacing_and_punctuation():
    assert exact_key("Hello,  World!") == exact_key("hello world")
    assert exact_key("hello world") != exact_key("hello there world")


def test_minhash_estimates_jaccard():
    rng = random.Random(3)
    words = BASE.split()
    edited = list(words)
    for i in rng.sample(range(len(words)), 3):
        edited[i] = "changed"
    a, b = shingles(BASE), shingles(" ".join(edited))
    true = jaccard(a, b)
    est = estimated_jaccard(minhash(a, 256), minhash(b, 256))
    assert abs(true - est) < 0.1


def test_minhash_is_stable_across_calls():
    assert (minhash(shingles(BASE)) == minhash(shingles(BASE))).all()


def test_lsh_params_put_the_s_curve_at_the_threshold():
    bands, rows = lsh_params(0.8, 128)
    assert bands * rows <= 128
    assert candidate_probability(0.9, bands, rows) > 0.95
    assert candidate_probability(0.3, bands, rows) < 0.05


def test_edges_point_to_the_earlier_article():
    sig = minhash(shingles(BASE))
    members = [(("2020-01-02", "b"), "b", sig), (("2020-01-01", "z"), "z", sig)]
    assert near_duplicate_edges(members, 0.8) == [("b", (("2020-01-01", "z"), "z", 1.0))]


def _article(i, text, day):
    return {"id": i, "text": text, "published": day, "source": "s", "title": text[:20], "input_ref": f"{i}.txt"}


def test_deduplicate_transform_keeps_earliest_and_resolves_chains():
    words = BASE.split()
    v1 = " ".join(words[:-2] + ["capital", "city."])
    v2 = " ".join(words[:-4] + ["the", "capital", "city."])
    different = "Completely different story about markets and interest rates set by the central bank on Thursday."
    articles = [
        _article("c", v2, "2020-01-03"),
        _article("a", BASE, "2020-01-01"),
        _article("b", v1, "2020-01-02"),
        _article("x", BASE, "2020-01-05"),  # exact copy of a, published later
        _article("d", different, "2020-01-01"),
    ]
    random.Random(7).shuffle(articles)
    with beam_pipeline() as p:
        out = p | beam.Create(articles) | Deduplicate(threshold=0.8)
        assert_that(out["articles"] | "ids" >> beam.Map(lambda a: a["id"]), equal_to(["a", "d"]), label="kept")
        assert_that(out["duplicates"] | beam.Map(lambda d: (d["id"], d["duplicate_of"], d["kind"])),
                    equal_to([("x", "a", "exact"), ("b", "a", "near"), ("c", "a", "near")]), label="dups")
