"""Model stages' speed on 200 real articles (Reuters-21578 bodies), against a naive baseline in the same run.

newsbeam: NER (the shipped defaults: 128-piece windows, Viterbi decoding; length-sorted token-budget batches,
bf16 autocast) then stance toward each
article's two most-mentioned PER/ORG/LOC entities (all mentions of a batch in one call).
Naive baseline: the same models through plain `transformers.pipeline`, one article (one mention) per call,
fp32, as a first implementation would do it.
The same articles also go through the Beam model stages (RunInference, FnApiRunner) to show the pipeline keeps
the speed (its wall time less one model load).
Also: achieved FLOP/s of the model stages as a fraction of the bf16 matmul rate measured in this run, and peak
memory. Prints figures; docs/benchmarks.md records them.

    python bench/bench_models.py [--n 200] [--skip-baseline]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

H, FF, LAYERS = 384, 1536, 12


def forward_flops(n: int) -> float:
    """FLOPs of one encoder forward over n tokens: the linear layers plus attention scores and mixing."""
    linear = 2 * n * (4 * H * H + 2 * H * FF)
    attention = 4 * n * n * H
    return LAYERS * (linear + attention)


def bf16_matmul_rate(seconds: float = 3.0) -> float:
    """GFLOP/s of a bf16 matmul at BERT FFN shapes (4096 tokens x 384 -> 1536), the machine's practical limit."""
    import torch

    a = torch.randn(4096, H, dtype=torch.bfloat16)
    b = torch.randn(H, FF, dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return 2 * 4096 * H * FF * n / (time.perf_counter() - t0) / 1e9


def stance_targets(entities: list[dict], k: int = 2) -> dict[str, list[str]]:
    named = [e for e in entities if e["type"] in ("PER", "ORG", "LOC")]
    return {e["text"]: [] for e in named[:k]}


def run_newsbeam(tagger, clf, articles) -> tuple[float, list, int, dict[str, float]]:
    """(seconds, entities per article, stance mentions, {"ner": s, "stance": s}): the model calls' own shares,
    the rest being entity grouping and mention planning."""
    from transforms.ner import group_entities
    from transforms.stance import plan_mentions

    t0 = time.perf_counter()
    spans = tagger.predict([a["text"] for a in articles])
    t_ner = time.perf_counter()
    entities = [group_entities(a["text"], s) for a, s in zip(articles, spans)]
    plans = [plan_mentions(a, stance_targets(e)) for a, e in zip(articles, entities)]
    items = [i for plan in plans for p in plan.values() for i in p.items]
    t_plan = time.perf_counter()
    clf.predict_proba(items)
    end = time.perf_counter()
    return end - t0, entities, len(items), {"ner": t_ner - t0, "stance": end - t_plan}


def run_beam_stages(articles, batch_size: int = 32) -> float:
    """The same 200 articles through newsbeam's Beam model stages (RecogniseEntities -> ClassifyStance with the
    two most-mentioned entities as targets, as in run_newsbeam) on the local runner, read from a JSONL file.
    Returns the wall time including each stage's model load in DoFn.setup."""
    import json as _json
    import tempfile

    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL
    from transforms.ner import RecogniseEntities
    from transforms.stance import AUTO, ClassifyStance

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "articles.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for a in articles:
                f.write(_json.dumps(dict(a, language={"code": "en"}, input_ref=a["id"])) + "\n")
        t0 = time.perf_counter()
        with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
            arts = p | beam.io.ReadFromText(str(path)) | beam.Map(_json.loads)
            ner = arts | RecogniseEntities(DEFAULT_NER_MODEL, max_batch_size=batch_size)
            stance = ner["articles"] | ClassifyStance(DEFAULT_STANCE_MODEL, {AUTO: []}, max_batch_size=batch_size,
                                                      auto_top_n=2)
            _ = stance["articles"] | beam.combiners.Count.Globally()
        return time.perf_counter() - t0


def run_naive(tagger, clf, articles, entities) -> float:
    import torch
    from transformers import pipeline

    from modeling.stance import mark_mention
    from transforms.stance import plan_mentions

    ner = pipeline("token-classification", model=tagger.model, tokenizer=tagger.tokenizer,
                   aggregation_strategy="simple", stride=32, device="cpu")
    cls = pipeline("text-classification", model=clf.model, tokenizer=clf.tokenizer, device="cpu")
    t0 = time.perf_counter()
    with torch.inference_mode():
        for a, ents in zip(articles, entities):
            ner(a["text"])
            for p in plan_mentions(a, stance_targets(ents)).values():
                for i in p.items:
                    cls({"text": i.target, "text_pair": mark_mention(i.sentence, i.start, i.end)}, truncation=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--skip-beam", action="store_true", help="skip the run through the Beam stages")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ap.add_argument("--compile", action="store_true",
                    help="also time newsbeam with --compile-models (torch.compile; compile time reported apart)")
    args = ap.parse_args()

    import torch

    from modeling.corpora import reuters_articles
    from modeling.ner import NerTagger
    from modeling.stance import StanceClassifier
    from pipeline.options import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL

    torch.set_num_threads(os.cpu_count() or 2)
    articles = [{"id": r["id"], "text": r["body"], "title": r["title"]} for r in reuters_articles(limit=args.n)]
    chars = sum(len(a["text"]) for a in articles)
    t_load = time.perf_counter()
    tagger = NerTagger.load(DEFAULT_NER_MODEL)
    clf = StanceClassifier.load(DEFAULT_STANCE_MODEL)
    load_s = time.perf_counter() - t_load
    run_newsbeam(tagger, clf, articles[:8])  # warm-up (first-call allocations)
    tagger.segment_lengths.clear()
    clf.segment_lengths.clear()
    peak_gflops = bf16_matmul_rate()
    seconds, entities, n_mentions, stages = run_newsbeam(tagger, clf, articles)
    flops = sum(forward_flops(n) for n in tagger.segment_lengths + clf.segment_lengths)
    achieved = flops / seconds / 1e9
    peak_after = bf16_matmul_rate()
    limit = max(peak_gflops, peak_after)
    res = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {os.cpu_count()} cores, torch "
                                                     f"{torch.__version__}", "articles": len(articles),
        "characters": chars, "ner_tokens": sum(tagger.segment_lengths), "stance_mentions": n_mentions,
        "model_load_s": round(load_s, 1), "newsbeam_s": round(seconds, 2),
        "newsbeam_articles_per_s": round(len(articles) / seconds, 1),
        "ner_s": round(stages["ner"], 2), "stance_s": round(stages["stance"], 2),
        "bf16_matmul_gflops": round(limit, 1), "bf16_matmul_gflops_before_after": [round(peak_gflops, 1),
                                                                                    round(peak_after, 1)],
        "achieved_gflops": round(achieved, 1), "fraction_of_bf16_limit": round(achieved / limit, 3),
    }
    if args.compile:
        from modeling.shipping import compile_for_inference

        eager_models = tagger.model, clf.model
        t_c = time.perf_counter()
        tagger.model, clf.model = compile_for_inference(tagger.model), compile_for_inference(clf.model)
        # one untimed real run first: a guard the load-time warm-up missed would recompile here, not in the timing
        run_newsbeam(tagger, clf, articles[:8])
        res["compile_s"] = round(time.perf_counter() - t_c, 1)
        seconds_c, _, _, stages_c = run_newsbeam(tagger, clf, articles)
        res.update({"compiled_ner_s": round(stages_c["ner"], 2), "compiled_stance_s": round(stages_c["stance"], 2)})
        res.update({"compiled_s": round(seconds_c, 2), "compiled_articles_per_s": round(len(articles) / seconds_c, 1),
                    "compiled_fraction_of_bf16_limit": round(flops / seconds_c / 1e9 / limit, 3)})
        tagger.model, clf.model = eager_models
    if not args.skip_beam:
        t_load2 = time.perf_counter()
        NerTagger.load(DEFAULT_NER_MODEL)
        StanceClassifier.load(DEFAULT_STANCE_MODEL)
        load2 = time.perf_counter() - t_load2
        beam_s = run_beam_stages(articles)
        res.update({"beam_stages_s_incl_load": round(beam_s, 2), "model_load_again_s": round(load2, 1),
                    "beam_stages_articles_per_s_excl_load": round(len(articles) / max(beam_s - load2, 1e-9), 1)})
    if not args.skip_baseline:
        naive_s = run_naive(tagger, clf, articles, entities)
        res.update({"naive_s": round(naive_s, 2), "naive_articles_per_s": round(len(articles) / naive_s, 2),
                    "speedup_vs_naive": round(naive_s / seconds, 2)})
        if "beam_stages_s_incl_load" in res:
            beam_net = res["beam_stages_s_incl_load"] - res["model_load_again_s"]
            res["speedup_vs_naive_through_beam"] = round(naive_s / max(beam_net, 1e-9), 2)
        if "compiled_s" in res:
            res["compiled_speedup_vs_naive"] = round(naive_s / res["compiled_s"], 2)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    for k, v in res.items():
        print(f"{k:32s} {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
