"""Dedup: MinHash/LSH logic without Beam, then the Deduplicate PTransform (deterministic keep, long chains, ties,
capped buckets, the same article twice) and the persistent signature index across runs."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import numpy as np
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import ROOT, beam_pipeline
from modeling.minhash import (band_keys, band_signature, candidate_probability, estimated_jaccard, exact_key, jaccard,
                              lsh_params, minhash, normalised_words, shingles, signature, text_signature)
from transforms.dedup import Deduplicate, index_dir, near_duplicate_edges

BASE = ("The defence ministry said on Friday that its troops had entered the district, which forces handed "
        "over under the terms of the deal signed earlier this month by the three leaders in Moscow, and that "
        "peacekeepers were patrolling the corridor that links the region to the capital.")


# ------------------------------------------------------------------------------------------ pure logic
def test_exact_key_ignores_case_spacing_and_punctuation():
    assert exact_key("Hello,  World!") == exact_key("hello world")
    assert exact_key("hello world") != exact_key("hello there world")


def test_ascii_fast_path_tokenises_like_the_unicode_regex():
    import re
    import unicodedata

    for text in (BASE, "A_b c-d E.F 3.5% $10 don't", "tab\there\nnew\x0bline", "UPPER lower MiXeD 1987/88"):
        assert normalised_words(text) == re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold())
    assert normalised_words("Ｆｕｌｌ-width Straße") == ["full", "width", "strasse"]  # NFKC + casefold


def test_signature_of_text_equals_minhash_of_its_shingle_strings():
    for text in (BASE, "", "one", "two words", "Ünïcode café: naïve résumé, text here"):
        assert (signature(text) == minhash(shingles(text))).all(), text


def test_signature_is_pinned():
    """The index on disk stores signatures: if this changes, bump minhash.SCHEME_VERSION (new index folder)."""
    sig = signature(BASE)
    assert sig.dtype == np.dtype("<u4") and sig.shape == (128,)
    assert sig[:4].tolist() == PINNED


PINNED = [131881972, 18658216, 4492986, 18204799]


def test_signature_is_stable_across_processes():
    code = ("import sys; sys.path.insert(0, '.'); from modeling.minhash import signature; "
            f"print(signature({BASE!r}).tobytes().hex())")
    env = dict(os.environ, PYTHONHASHSEED="123")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == signature(BASE).tobytes().hex()


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


def test_lsh_params_put_the_s_curve_at_the_threshold():
    bands, rows = lsh_params(0.8, 128)
    assert (bands, rows) == (14, 9)
    assert candidate_probability(0.85, bands, rows) > 0.97
    assert candidate_probability(0.5, bands, rows) < 0.03


def test_short_texts_are_identified_by_title_and_text():
    notice = "Qtly div 15 cts vs 15 cts prior\nPay April 30\nRecord April 15"
    a = text_signature(notice, title="VARLEN CORP <VRLN> DECLARES QTLY DIVIDEND")
    b = text_signature(notice, title="BIC CORP <BIC> SETS QUARTERLY")
    assert a[0] != b[0] and estimated_jaccard(a[1], b[1]) < 0.8
    assert text_signature(notice, title="X")[0] == text_signature(notice.upper(), title="x")[0]
    long_a = text_signature(BASE, title="One headline")
    assert long_a[0] == text_signature(BASE, title="Another headline")[0] == exact_key(BASE)  # long: text only


def test_band_keys_are_per_band_and_deterministic():
    sig = signature(BASE)
    keys = band_keys(sig, 11, 11)
    assert len(set(keys)) == 11 and keys == band_keys(sig.tobytes(), 11, 11)
    other = sig.copy()
    other[0] ^= 1  # only band 0 changes
    assert [a == b for a, b in zip(keys, band_keys(other, 11, 11))] == [False] + [True] * 10


def _member(i, text, day, prio=1):
    return (prio, day, i, band_signature(signature(text)))


def test_edges_point_to_the_earlier_article():
    members = [_member("b", BASE, "2020-01-02"), _member("z", BASE, "2020-01-01")]
    assert near_duplicate_edges(members, 0.8) == [("b", ("2020-01-01", "z", "near", 1.0))]


def test_indexed_articles_are_never_children_and_always_parents():
    members = [_member("new", BASE, "2020-01-01"), _member("old", BASE, "2020-03-01", prio=0),
               _member("old2", BASE, "2020-02-01", prio=0)]
    # the new article is earlier but the written ones win; among them the earliest published
    assert near_duplicate_edges(members, 0.8) == [("new", ("2020-02-01", "old2", "near", 1.0))]


def _variants(base_words: list[str], n: int, edits: int, seed: int) -> list[str]:
    """n texts, each one `edits` word substitutions away from the previous (never the same position twice)."""
    rng = random.Random(seed)
    positions = list(range(len(base_words)))
    rng.shuffle(positions)
    words, out = list(base_words), []
    for i in range(n):
        out.append(" ".join(words))
        for p in positions[i * edits:(i + 1) * edits]:
            words[p] = f"edit{i}x{p}"
    return out


def _vocabulary_text(n_words: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"w{rng.randrange(10**6)}" for _ in range(n_words)]


def test_capped_bucket_compares_everyone_with_the_leaders_and_drops_no_one():
    words = _vocabulary_text(120, 1)
    texts = _variants(words, 2, 1, 2)  # two near-identical texts
    members = [_member(f"a{i:03d}", texts[i % 2], "2020-01-01") for i in range(300)]
    random.Random(4).shuffle(members)
    edges = dict(near_duplicate_edges(members, 0.8, max_bucket=16))
    assert set(edges) == {f"a{i:03d}" for i in range(1, 300)}  # everyone but the first found its parent
    assert {e[1] for e in edges.values()} == {"a000"}


# ------------------------------------------------------------------------------------------ Beam
def _article(i, text, day, **extra):
    return {"id": i, "text": text, "published": day, "source": "s", "title": text[:20], "input_ref": f"{i}.txt",
            "url": None, **extra}


_OUT: dict[str, list] = {"kept": [], "dups": []}  # the FnApiRunner runs in this process: module functions
                                                  # are pickled by reference, so they append here


def _keep(article):
    _OUT["kept"].append(article["id"])


def _dup(record):
    _OUT["dups"].append((record["id"], record["duplicate_of"], record["kind"]))


def _run(articles, **kw):
    """Run Deduplicate; returns (sorted kept ids, sorted (id, duplicate_of, kind) of duplicates)."""
    _OUT["kept"], _OUT["dups"] = [], []
    with beam_pipeline() as p:
        out = p | beam.Create(articles) | Deduplicate(**kw)
        out["articles"] | "k" >> beam.Map(_keep)
        out["duplicates"] | "d" >> beam.Map(_dup)
    return sorted(_OUT["kept"]), sorted(_OUT["dups"])


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


def _chain(n=14):
    """A chain of n versions, each close to the previous one only: the pure logic must see a deep chain."""
    texts = _variants(_vocabulary_text(300, 5), n, 7, 6)
    members = [_member(f"v{i:02d}", t, "2020-01-01") for i, t in enumerate(texts)]
    parent = dict((c, e[1]) for c, e in near_duplicate_edges(members, 0.8))
    depth = max(_depth(parent, c) for c in parent)
    return texts, depth


def _depth(parent, node):
    d = 0
    while node in parent:
        node, d = parent[node], d + 1
    return d


def test_long_chain_with_tied_dates_resolves_to_the_smallest_id():
    texts, depth = _chain()
    assert depth >= 5, depth  # deeper than the old 2 rounds (4 levels) could resolve
    # tie on the published date: the id decides; an exact copy of the last version rides along
    articles = [_article(f"v{i:02d}", t, "2020-01-01") for i, t in enumerate(texts)]
    articles.append(_article("zz-copy", texts[-1] + " !", "2020-01-02"))  # an exact copy of the last version
    random.Random(1).shuffle(articles)
    kept, dups = _run(articles)
    assert kept == ["v00"], (kept, dups)
    # the copy is an exact copy of v13, itself a near copy of v00: relative to v00 it is a near copy
    assert dups == sorted([(f"v{i:02d}", "v00", "near") for i in range(1, 14)] + [("zz-copy", "v00", "near")])


def test_chain_keep_is_independent_of_input_order_and_reversed_ids_flip_the_root():
    texts, _ = _chain()
    forward = [_article(f"v{i:02d}", t, "2020-01-01") for i, t in enumerate(texts)]
    backward = [_article(f"v{len(texts) - 1 - i:02d}", t, "2020-01-01") for i, t in enumerate(texts)]
    a = _run(list(reversed(forward)))
    assert a == _run(forward)
    kept, dups = _run(backward)  # now the last version has the smallest id
    assert kept == ["v00"] and {d[1] for d in dups} == {"v00"}


def test_boilerplate_bucket_is_capped_and_every_article_ends_kept_or_duplicate():
    base = _vocabulary_text(200, 8)
    texts = [" ".join(base[:p] + ["boiler"] + base[p + 1:]) for p in range(0, 200, 5)]  # 40 one-word variants
    articles = [_article(f"b{i:03d}", texts[i % 40], f"2020-01-{1 + i % 28:02d}") for i in range(120)]
    different = [_article(f"o{i}", " ".join(_vocabulary_text(60, 100 + i)), "2020-01-01") for i in range(5)]
    kept, dups = _run(articles + different, max_bucket=8)
    assert len(kept) + len(dups) == 125
    assert set(kept) >= {f"o{i}" for i in range(5)}
    dup_ids = {d[0] for d in dups}
    assert len(dup_ids) == len(dups)
    assert {d[1] for d in dups} <= set(kept)  # every duplicate points at a kept article, never at another copy
    assert len([k for k in kept if k.startswith("b")]) == 1  # the whole cluster collapsed onto one article


def test_the_same_article_twice_is_kept_once():
    a = _article("same", BASE, "2020-01-01")
    b = dict(a, input_ref="other.txt")
    assert _run([a, b, _article("q", "Another story entirely, about rain in Spain.", "2020-01-02")]) == (
        ["q", "same"], [("same", "same", "exact")])


# ------------------------------------------------------------------------------------------ index across runs
def _run_indexed(articles, root: Path, **kw):
    kept, dups = _run(articles, index_root=str(root), **kw)
    return kept, dups


def _index_files(root: Path) -> dict[str, list[dict]]:
    folder = Path(index_dir(str(root)))
    return {f.name: [json.loads(x) for x in f.read_text().splitlines()] for f in sorted(folder.glob("part-*.jsonl"))}


def test_index_makes_later_runs_duplicates_of_earlier_ones_and_reruns_idempotent(tmp_path):
    texts = _variants(_vocabulary_text(300, 5), 3, 3, 6)  # three versions, three words apart
    other = " ".join(_vocabulary_text(80, 40))
    day1 = [_article("a", BASE, "2020-01-01"), _article("b", texts[0], "2020-01-01"),
            _article("b2", texts[1], "2020-01-01"), _article("x", BASE + " .", "2020-01-01")]
    assert _run_indexed(day1, tmp_path) == (["a", "b"], [("b2", "b", "near"), ("x", "a", "exact")])
    files1 = _index_files(tmp_path)
    assert sorted(r["id"] for rows in files1.values() for r in rows) == ["a", "b"]  # kept only

    # rerun of the same day: same decisions, nothing new written
    assert _run_indexed(list(reversed(day1)), tmp_path) == (["a", "b"], [("b2", "b", "near"), ("x", "a", "exact")])
    assert _index_files(tmp_path) == files1

    # next day: an exact copy of a (published EARLIER than a), a near copy of b, and a new story
    day2 = [_article("a-copy", BASE.upper(), "2019-12-31"), _article("b3", texts[2], "2020-01-02"),
            _article("n", other, "2020-01-02")]
    assert _run_indexed(day2, tmp_path) == (["n"], [("a-copy", "a", "exact"), ("b3", "b", "near")])
    files2 = _index_files(tmp_path)
    assert set(files1) < set(files2)
    assert sorted(r["id"] for rows in files2.values() for r in rows) == ["a", "b", "n"]  # no duplicate rows

    # rerun of day 2, and day 1 again after day 2: each article keeps its first decision, the index stays put
    assert _run_indexed(day2, tmp_path) == (["n"], [("a-copy", "a", "exact"), ("b3", "b", "near")])
    assert _run_indexed(day1, tmp_path) == (["a", "b"], [("b2", "b", "near"), ("x", "a", "exact")])
    assert _index_files(tmp_path) == files2


def test_index_rows_and_shards_are_deterministic(tmp_path):
    arts = [_article(f"s{i}", " ".join(_vocabulary_text(50, 200 + i)), "2020-02-01") for i in range(7)]
    one, two = tmp_path / "one", tmp_path / "two"
    _run_indexed(arts, one, index_rows_per_shard=3)
    _run_indexed(list(reversed(arts)), two, index_rows_per_shard=3)
    assert _index_files(one) == _index_files(two) and len(_index_files(one)) >= 2
    row = next(iter(_index_files(one).values()))[0]
    assert set(row) == {"id", "published", "exact", "sig", "record"}
    exact, sig = text_signature(next(a["text"] for a in arts if a["id"] == row["id"]))
    assert row["exact"] == exact


def test_a_copy_of_an_indexed_article_is_a_duplicate_not_a_second_write(tmp_path):
    """Run A writes X; run B brings X again from another input (same id: same url, title and
    text) and Z, X's content published a day later (same id too): both are exact duplicates of A's X, neither
    is written again. Rerunning A's input keeps its own record (the same record: written back unchanged), and
    the order of runs decides only which copy came first."""
    x = _article("X", BASE, "2020-01-01", input_ref="a.jsonl:1")
    x_from_b = dict(x, input_ref="b.jsonl:1", source="b")
    z = dict(x, input_ref="b.jsonl:2", published="2020-01-02")
    assert _run_indexed([x], tmp_path) == (["X"], [])
    assert _run_indexed([x_from_b, z], tmp_path) == ([], [("X", "X", "exact"), ("X", "X", "exact")])
    assert _run_indexed([x], tmp_path) == (["X"], [])  # A again: its own record, unchanged
    assert _run_indexed([x, x_from_b], tmp_path) == (["X"], [("X", "X", "exact")])
    assert sorted(r["id"] for rows in _index_files(tmp_path).values() for r in rows) == ["X"]


def test_backfill_rewrites_an_indexed_article_only_on_its_own_day(tmp_path):
    """A backfill replaces each day's partition with its input's articles, so a copy of an indexed article
    published on the indexed day is written again (its day is being rewritten); one published on another day
    is a duplicate (the id already lives in the other day's partition)."""
    x = _article("X", BASE, "2020-01-01", input_ref="a.jsonl:1")
    assert _run_indexed([x], tmp_path) == (["X"], [])
    moved = dict(x, input_ref="b.jsonl:1", fetched_at="2020-01-05T00:00:00+00:00")
    assert _run_indexed([moved], tmp_path, rewrite_same_day=True) == (["X"], [])
    assert _run_indexed([dict(moved, published="2020-01-02")], tmp_path, rewrite_same_day=True) == (
        [], [("X", "X", "exact")])
