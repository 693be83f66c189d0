"""Per-stage throughput on the seeds (and optionally on N Reuters bodies): each stage's own logic, timed alone.

    python bench/bench_stages.py [--reuters 200] [--repeat 5]

Stages: parse (seed/JSONL/feed parsing + normalisation + id), language ID, dedup signatures (shingles + MinHash
+ band keys), NER (the shipped model, batched), stance (the shipped model, the seeds' targets). Model load time is
reported apart. Beam's own overhead around the model stages is measured by bench_models.py and
bench_beam_batches.py (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reuters", type=int, default=0, help="also time on N Reuters-21578 bodies")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from modeling.ner import NerTagger
    from modeling.stance import StanceClassifier
    from pipeline.options import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL
    from modeling.minhash import band_keys, lsh_params, minhash, shingles
    from transforms.langid import detect_language, load_detector
    from transforms.ner import group_entities
    from transforms.parse import parse_raw
    from transforms.stance import plan_mentions, stance_records

    raws = [{"ref": f, "data": Path(f).read_bytes()} for pattern in ("seeds/*.txt", "seeds/*.jsonl", "seeds/*.xml")
            for f in sorted(glob.glob(str(ROOT / pattern)))]
    articles = [a for raw in raws for _, a in parse_raw(raw) if isinstance(a, dict)]
    sets = {"seeds": articles}
    if args.reuters:
        from modeling.training.corpora import reuters_articles

        sets["reuters"] = [{"id": str(r["id"]), "title": r["title"], "text": r["body"]}
                           for r in reuters_articles(limit=args.reuters)]
    t0 = time.perf_counter()
    detector = load_detector()
    t_lang = time.perf_counter() - t0
    t0 = time.perf_counter()
    tagger = NerTagger.load(DEFAULT_NER_MODEL)
    clf = StanceClassifier.load(DEFAULT_STANCE_MODEL)
    t_models = time.perf_counter() - t0
    bands, rows = lsh_params(0.8, 128)
    targets = {"Armenia": [], "Azerbaijan": []}
    print(f"load: language detector {t_lang:.2f}s, NER + stance models {t_models:.1f}s")
    print(f"{'set':8s} {'stage':10s} {'articles':>8s} {'seconds':>8s} {'articles/s':>11s}")
    for name, arts in sets.items():
        tagger.predict([a["text"] for a in arts[:4]])  # warm-up
        spans = tagger.predict([a["text"] for a in arts])
        ents = [group_entities(a["text"], s) for a, s in zip(arts, spans)]
        enriched = [dict(a, entities=e) for a, e in zip(arts, ents)]

        def stance():
            plans = [plan_mentions(a, targets) for a in enriched]
            flat = [i for p in plans for mp in p.values() for i in mp.items]
            probs = clf.predict_proba(flat)
            k = 0
            for p in plans:
                by = {}
                for t, mp in p.items():
                    by[t] = probs[k:k + len(mp.items)]
                    k += len(mp.items)
                stance_records(p, by)

        stages = {
            "langid": lambda: [detect_language(detector, a["title"], a["text"]) for a in arts],
            "dedup-sig": lambda: [band_keys(minhash(shingles(a["text"])), bands, rows) for a in arts],
            "ner": lambda: [group_entities(a["text"], s) for a, s in
                            zip(arts, tagger.predict([a["text"] for a in arts]))],
            "stance": stance,
        }
        if name == "seeds":
            stages = {"parse": lambda: [list(parse_raw(r)) for r in raws], **stages}
        for stage, fn in stages.items():
            sec = timed(fn, args.repeat)
            print(f"{name:8s} {stage:10s} {len(arts):8d} {sec:8.3f} {len(arts) / sec:11.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
