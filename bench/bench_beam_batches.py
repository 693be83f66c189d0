"""What batch sizes RunInference hands newsbeam's model stages, and what they cost, on 200 Reuters-21578 bodies.

Runs the Beam model stages (bench_models.run_beam_stages, FnApiRunner) twice in one process: with Beam's adaptive
batching (BatchElements from min_batch_size 1, Beam's default) and with the fixed batches newsbeam ships
(transforms.common.fixed_batches). Prints each run's wall time (model loads included), the batch sizes seen by each
handler's run_inference, and the time spent inside it, against the same models called directly on all the
articles at once in the same process (the baseline). docs/benchmarks.md records the figures.

    python bench/bench_beam_batches.py [--n 200] [--batch-size 32]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    import torch

    import transforms.ner as ner
    import transforms.stance as stance
    from bench_models import run_beam_stages, run_newsbeam
    from modeling.training.corpora import reuters_articles
    from modeling.ner import NerTagger
    from modeling.stance import StanceClassifier
    from pipeline.options import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL
    from transforms.common import fixed_batches

    torch.set_num_threads(os.cpu_count() or 2)
    seen: dict[str, list] = {}

    def recording(handler_cls, key):
        inner = handler_cls.run_inference

        def run_inference(self, batch, model, inference_args=None):
            t0 = time.perf_counter()
            out = inner(self, batch, model, inference_args)
            seen[key].append((len(batch), time.perf_counter() - t0))
            return out

        handler_cls.run_inference = run_inference

    recording(ner.NerModelHandler, "ner")
    recording(stance.StanceModelHandler, "stance")
    articles = [{"id": r["id"], "text": r["body"], "title": r["title"]} for r in reuters_articles(limit=args.n)]
    run_beam_stages(articles[:8], batch_size=args.batch_size)  # warm-up: first-call allocations, imports
    tagger, clf = NerTagger.load(DEFAULT_NER_MODEL), StanceClassifier.load(DEFAULT_STANCE_MODEL)
    run_newsbeam(tagger, clf, articles[:8])
    direct = run_newsbeam(tagger, clf, articles)[3]
    print(f"direct (baseline): ner {direct['ner']:.2f} s, stance {direct['stance']:.2f} s, all {len(articles)} "
          "articles in one call each")
    modes = {"adaptive (Beam's default, min 1)": {"min_batch_size": 1, "max_batch_size": args.batch_size},
             "fixed (shipped)": fixed_batches(args.batch_size)}
    for label, kwargs in modes.items():
        for cls in (ner.NerModelHandler, stance.StanceModelHandler):
            cls.batch_elements_kwargs = (lambda kw: lambda self: kw)(kwargs)
        seen.update(ner=[], stance=[])
        wall = run_beam_stages(articles, batch_size=args.batch_size)
        print(f"{label}: Beam model stages {wall:.2f} s for {len(articles)} articles (model loads included)")
        for key, calls in seen.items():
            sizes = [n for n, _ in calls]
            spent = sum(s for _, s in calls)
            print(f"  {key:6s} {len(sizes)} batches, sizes {min(sizes)}-{max(sizes)} (mean {sum(sizes) / len(sizes):.1f}), "
                  f"{spent:.2f} s in run_inference, {spent / direct[key]:.2f}x the direct call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
