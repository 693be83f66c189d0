"""Dedup quality on a labelled set of real news pairs (modeling/evaluation/dedup_pairs, built by build_pairs.py
from Reuters-21578):
precision and recall of the near-duplicate decision at the defaults (threshold 0.8, 3-word shingles, 128
permutations), and the Beam transform agreeing with the pure decision.

    PYTHONPATH=. python -m tests.test_dedup_quality   # prints the table for docs/dedup.md
"""
from __future__ import annotations

import datetime as dt
import json

import apache_beam as beam

from tests.conftest import beam_pipeline
from modeling.evaluation.dedup_quality import (DATA, DIFFERENT_STORIES, REPORTED_ONLY, SAME_TOPIC, SMALL_EDIT_COPIES,
                                    THRESHOLD, decide, load, report)
from transforms.dedup import Deduplicate

def test_labelled_set_is_small_and_well_formed():
    texts, pairs = load()
    assert sum(f.stat().st_size for f in DATA.iterdir()) < 1_000_000
    assert {p["category"] for p in pairs} == set(SMALL_EDIT_COPIES + DIFFERENT_STORIES + REPORTED_ONLY)
    assert all(p["a"] in texts and p["b"] in texts and p["a"] != p["b"] for p in pairs)
    assert sum(p["label"] == 1 for p in pairs) > 300 and sum(p["label"] == 0 for p in pairs) > 200


def test_precision_and_recall_at_the_default_threshold():
    texts, pairs = load()
    r = report(decide(texts, pairs), texts)
    cats = r["categories"]
    assert r["precision"] >= 0.98, r
    assert r["recall"] >= 0.9, r
    for cat in SAME_TOPIC:  # different stories on one topic are never merged
        assert cats[cat]["merged"] == 0, (cat, cats[cat])
    for cat in SMALL_EDIT_COPIES:  # no kind of small edit is systematically missed
        assert cats[cat]["merged"] >= 0.85 * cats[cat]["n"], (cat, cats[cat])


def test_titles_keep_short_templated_notices_apart():
    """Without the title rule, dividend notices of different companies merge (the reason the rule exists)."""
    texts, pairs = load()
    hard = [p for p in pairs if p["category"] == "topic_hard"]
    without = decide(texts, hard, short_text_words=0)
    assert sum(d["merged"] for d in without) > 0
    assert sum(d["merged"] for d in decide(texts, hard)) == 0


_FOUND: list = []


def _found(record):
    _FOUND.append((record["id"], record["duplicate_of"], record["kind"]))


def test_the_beam_transform_makes_the_same_decisions(tmp_path):
    """The programmatic-edit pairs (distinct articles per pair) through Deduplicate, read from a JSONL file."""
    texts, pairs = load()
    pairs = [p for p in pairs if p["category"].startswith("edit_")]
    expected = {(f"{p['pair']}-b", f"{p['pair']}-a", d["kind"]) for p, d in zip(pairs, decide(texts, pairs))
                if d["merged"]}
    path = tmp_path / "articles.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for p in pairs:
            for side, day in (("a", "2026-11-24"), ("b", "2026-11-25")):
                t = texts[p[side]]
                f.write(json.dumps({"id": f"{p['pair']}-{side}", "text": t["text"], "title": t["title"],
                                    "published": day, "source": "reuters", "url": None,
                                    "input_ref": f"{path}:{p['pair']}-{side}"}) + "\n")
    _FOUND.clear()
    with beam_pipeline() as pipe:
        out = (pipe | beam.io.ReadFromText(str(path)) | beam.Map(json.loads) | Deduplicate(THRESHOLD))
        out["duplicates"] | beam.Map(_found)
    assert set(_FOUND) == expected


_ALL: dict[str, list] = {"kept": [], "dups": []}


def _all_kept(article):
    _ALL["kept"].append(article["id"])


def _all_dup(record):
    _ALL["dups"].append((record["id"], record["duplicate_of"], record["kind"]))


def _published(reuters_date: str) -> str:
    """'3-MAR-1987 09:30:48.45' (some with trailing control junk) -> ISO, so the keep rule sees real dates."""
    return dt.datetime.strptime(reuters_date.strip()[:23], "%d-%b-%Y %H:%M:%S.%f").isoformat()


def test_the_whole_labelled_set_in_one_run_never_joins_different_stories():
    """Every labelled text in ONE Deduplicate run, so chains through third texts count too: the two sides of a
    different-story pair (same topic, recurring report, reviewed) never end with the same kept article, every
    duplicate points at an article that was kept, and small-edit copies still end on one article."""
    texts, pairs = load()
    _ALL["kept"], _ALL["dups"] = [], []
    articles = [{"id": k, "text": t["text"], "title": t["title"], "published": _published(t["date"]),
                 "source": "reuters", "url": None, "input_ref": f"texts.jsonl:{k}"} for k, t in texts.items()]
    with beam_pipeline() as pipe:
        out = pipe | beam.Create(articles) | Deduplicate(THRESHOLD)
        out["articles"] | "Kept" >> beam.Map(_all_kept)
        out["duplicates"] | "Dups" >> beam.Map(_all_dup)
    kept, dups = set(_ALL["kept"]), _ALL["dups"]
    assert len(kept) == len(_ALL["kept"]) and len(kept) + len(dups) == len(texts)  # each text exactly once
    root = {k: k for k in kept}
    root.update({d: parent for d, parent, _kind in dups})
    assert set(root) == set(texts)
    assert {parent for _d, parent, _kind in dups} <= kept  # the pointer is always to a kept article
    joined = [p["pair"] for p in pairs if p["category"] in DIFFERENT_STORIES and root[p["a"]] == root[p["b"]]]
    assert joined == [], joined
    small = [p for p in pairs if p["category"] in SMALL_EDIT_COPIES]
    together = sum(root[p["a"]] == root[p["b"]] for p in small)
    assert together >= 0.9 * len(small), (together, len(small))


if __name__ == "__main__":
    texts, pairs = load()
    r = report(decide(texts, pairs), texts)
    print(f"precision {r['precision']:.3f} ({r['tp']} of {r['tp'] + r['fp']} merges correct), recall "
          f"{r['recall']:.3f} ({r['tp']} of {r['positives']} small-edit copies), false merges {r['fp']} of "
          f"{r['negatives']} different-story pairs")
    print("| category | label | pairs | merged | true Jaccard min / median |")
    print("|---|---|---|---|---|")
    for cat, c in sorted(r["categories"].items(), key=lambda kv: (-kv[1]["label"], kv[0])):
        print(f"| {cat} | {'same' if c['label'] else 'different'} | {c['n']} | {c['merged']} "
              f"({c['merged'] / c['n']:.0%}) | {c['jaccard_min']:.2f} / {c['jaccard_median']:.2f} |")
    without = report(decide(texts, pairs, short_text_words=0), texts)
    print(f"without the title rule: precision {without['precision']:.3f}, recall {without['recall']:.3f}, "
          f"false merges {without['fp']}")
