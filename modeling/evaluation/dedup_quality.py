"""Dedup quality on the labelled set of real news pairs (dedup_pairs/ beside this module, built by its
build_pairs.py from Reuters-21578): the pure near-duplicate decision at the defaults, and precision/recall by category.
Shared by tests/test_dedup_quality.py (which asserts the targets) and `make eval` (which writes docs/quality.md).
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from modeling.minhash import duplicate_decision, jaccard, lsh_params, shingles, text_signature

DATA = Path(__file__).resolve().parent / "dedup_pairs"  # the labelled set, with the script that built it
THRESHOLD = 0.8

# Copies with small edits: programmatic edits of real articles, byte-identical bodies, real copies whose bodies
# differ by at most 10% of their words (same figures, or hand-reviewed).
SMALL_EDIT_COPIES = ("edit_punct_case", "edit_words", "edit_sentence_removed", "edit_sentence_added",
                     "edit_wire_wrap", "edit_combo", "real_exact", "real_copy", "real_same_day")
DIFFERENT_STORIES = ("topic_random", "topic_hard", "recurring_report", "reviewed_different")
SAME_TOPIC = ("topic_random", "topic_hard")
REPORTED_ONLY = ("real_copy_short", "real_update", "real_rewrite")  # same story, not "small edits": see docs


def load() -> tuple[dict[str, dict], list[dict]]:
    texts = {}
    with open(DATA / "texts.jsonl", encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)
            texts[t["key"]] = t
    with open(DATA / "pairs.jsonl", encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f]
    return texts, pairs


def decide(texts: dict, pairs: list[dict], **sig_kw) -> list[dict]:
    sigs = {k: text_signature(t["text"], title=t["title"], **sig_kw) for k, t in texts.items()}
    bands, rows = lsh_params(THRESHOLD, 128)
    out = []
    for p in pairs:
        kind, sim = duplicate_decision(sigs[p["a"]], sigs[p["b"]], THRESHOLD, bands, rows)
        out.append({**p, "kind": kind, "merged": kind is not None, "estimate": sim})
    return out


def report(decided: list[dict], texts: dict) -> dict:
    by_cat = defaultdict(list)
    for d in decided:
        by_cat[d["category"]].append(d)
    cats = {}
    for cat, rows in by_cat.items():
        truth = [jaccard(shingles(texts[r["a"]]["text"]), shingles(texts[r["b"]]["text"])) for r in rows]
        cats[cat] = {"n": len(rows), "merged": sum(r["merged"] for r in rows), "label": rows[0]["label"],
                     "jaccard_min": float(np.min(truth)), "jaccard_median": float(np.median(truth))}
    tp = sum(cats[c]["merged"] for c in SMALL_EDIT_COPIES if c in cats)
    pos = sum(cats[c]["n"] for c in SMALL_EDIT_COPIES if c in cats)
    fp = sum(cats[c]["merged"] for c in DIFFERENT_STORIES if c in cats)
    neg = sum(cats[c]["n"] for c in DIFFERENT_STORIES if c in cats)
    return {"categories": cats, "recall": tp / pos, "precision": tp / (tp + fp), "tp": tp, "positives": pos,
            "fp": fp, "negatives": neg}
