"""What entity resolution (modeling.entities: trimming, base forms, grouping, ids) adds to the NER stage.

    python bench/bench_entities.py [--bsnlp 250] [--reuters 200] [--repeat 3]

In one process, on the same articles: the NER model pass (NerTagger.predict, the shipped model) against
resolve_entities on its spans, per article, best of --repeat. Sets: BSNLP-2017 documents (cs, pl, ru, sl, uk:
the inflecting languages where the lemmatisers run) and Reuters-21578 bodies (English). One-off costs per worker
process are reported apart: building the CLDR name table, loading the pymorphy3 dictionaries and simplemma's
data for a language.
Target: under 15% of the NER stage's time (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_stages import timed  # noqa: E402  (best of N, one copy for the benches)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bsnlp", type=int, default=250)
    ap.add_argument("--reuters", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from modeling import entity_ids, lemmas
    from modeling.evaluation.bsnlp import read_bsnlp
    from modeling.training.corpora import reuters_articles
    from modeling.entities import resolve_entities
    from modeling.ner import NerTagger
    from pipeline.options import DEFAULT_NER_MODEL

    t0 = time.perf_counter()
    entity_ids.cldr_names()
    t_cldr = time.perf_counter() - t0
    t0 = time.perf_counter()
    lemmas._morph("ru"), lemmas._morph("uk")
    t_morph = time.perf_counter() - t0
    simplemma_load = {}
    for lang in ("cs", "pl", "sl"):
        t0 = time.perf_counter()
        lemmas._simplemma("Komisji", lang)
        simplemma_load[lang] = time.perf_counter() - t0
    print(f"once per worker: CLDR name table {t_cldr:.2f}s, pymorphy3 ru+uk dictionaries {t_morph:.2f}s, simplemma "
          + ", ".join(f"{k} {v:.2f}s" for k, v in simplemma_load.items()) + " (each language's data on first use)")
    docs = read_bsnlp()
    step = max(1, len(docs) // args.bsnlp)
    sets = {"bsnlp": [(d.text, d.lang) for d in docs[::step][:args.bsnlp]],
            "reuters": [(r["body"], "en") for r in reuters_articles(limit=args.reuters)]}
    tagger = NerTagger.load(DEFAULT_NER_MODEL)
    tagger.predict([t for t, _ in sets["bsnlp"][:4]])  # warm-up
    print(f"{'set':8s} {'articles':>8s} {'NER model ms/article':>21s} {'resolution ms/article':>22s} {'added':>7s}")
    for name, arts in sets.items():
        texts = [t for t, _ in arts]
        spans = tagger.predict(texts)
        t_ner = timed(lambda: tagger.predict(texts), args.repeat)
        # resolution caches word lemmas per process (as a worker does): time it warm, as the stage runs
        t_res = timed(lambda: [resolve_entities(t, s, l) for (t, l), s in zip(arts, spans)], args.repeat)
        n = len(arts)
        print(f"{name:8s} {n:8d} {1000 * t_ner / n:21.1f} {1000 * t_res / n:22.2f} {100 * t_res / t_ner:6.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
